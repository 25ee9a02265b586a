/*
 * libFuzzer harness for the RESP2 request parser (proto/resp.c).
 *
 * Input: one control byte, then the stream. The control byte picks small or
 * default limits and a chunk size. The stream is parsed twice, all at once and
 * in chunks (moving the unconsumed bytes to a fresh block before each call),
 * and the two runs must give the same commands and the same outcome. Every
 * parsed command is echoed through the reply writer, whose output must be
 * exactly the size resp_size_* announced. The integer parser is checked
 * against a reference built on strtoll, and the short path for length lines
 * against the general one. With the small limits, half the inputs switch to
 * the defaults after the first command, as a connection does once it
 * authenticates (resp_parser_set_limits).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/strint.h"
#include "proto/resp.h"
#include "proto/resp_commands.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FNV-1a over everything the parser reports: the runs must agree on it. */
struct digest {
	uint64_t hash;
	size_t commands;
	int outcome;
};

static void mix(struct digest *d, const void *bytes, size_t len)
{
	const uint8_t *b = bytes;

	for (size_t i = 0; i < len; i++)
		d->hash = (d->hash ^ b[i]) * 1099511628211ull;
}

static void echo_replies(const struct resp_command *cmd)
{
	static uint8_t out[4u << 20];
	struct resp_out o = { out, 0, sizeof(out) };
	size_t expect = resp_size_array(cmd->argc);

	if (resp_write_array(&o, cmd->argc) != 0)
		abort();
	for (size_t i = 0; i < cmd->argc; i++) {
		size_t before = o.len;

		if (resp_write_bulk(&o, cmd->argv[i].data, cmd->argv[i].len) != 0) {
			/* Out of room is legal for a big command; nothing written. */
			if (o.len != before)
				abort();
			return;
		}
		if (o.len - before != resp_size_bulk(cmd->argv[i].len))
			abort();
		expect += resp_size_bulk(cmd->argv[i].len);
	}
	if (o.len != expect)
		abort();
	(void)resp_command_lookup(cmd->argv[0].data, cmd->argv[0].len);
}

static void run(const uint8_t *stream, size_t len, const struct resp_limits *l,
		size_t chunk, bool widen, struct digest *d)
{
	struct resp_parser p;
	struct resp_command cmd;
	uint8_t *held = NULL;
	size_t held_len = 0, given = 0;
	int rv = RKV_EAGAIN;

	memset(d, 0, sizeof(*d));
	d->hash = 1469598103934665603ull;
	resp_parser_init(&p, l);
	while (given < len || rv == 0) {
		size_t piece = rv == 0 ? 0 : len - given;
		size_t consumed;
		uint8_t *moved;

		if (chunk && piece > chunk)
			piece = chunk;
		moved = malloc(held_len + piece + 1);
		if (!moved)
			abort();
		if (held_len)
			memcpy(moved, held, held_len);
		if (piece)
			memcpy(moved + held_len, stream + given, piece);
		free(held);
		held = moved;
		held_len += piece;
		given += piece;

		rv = resp_parse(&p, held, held_len, &cmd, &consumed);
		if (consumed > held_len)
			abort();
		if (rv == 0) {
			if (cmd.argc == 0)
				abort();
			d->commands++;
			mix(d, &cmd.argc, sizeof(cmd.argc));
			for (size_t i = 0; i < cmd.argc; i++) {
				mix(d, &cmd.argv[i].len, sizeof(cmd.argv[i].len));
				mix(d, cmd.argv[i].data, cmd.argv[i].len);
			}
			echo_replies(&cmd);
			if (widen && d->commands == 1)
				resp_parser_set_limits(&p, NULL);
		} else if (rv == RKV_EPROTO) {
			const char *e = resp_parser_error(&p);

			if (strncmp(e, "ERR Protocol error: ", 20) != 0 ||
			    strpbrk(e, "\r\n"))
				abort();
			mix(d, e, strlen(e));
			break;
		} else if (rv == RKV_EAGAIN) {
			if (resp_parser_wanted(&p) <= held_len - consumed ||
			    resp_parser_wanted(&p) > (size_t)p.limits.max_request + 64)
				abort();
		} else {
			abort();
		}
		memmove(held, held + consumed, held_len - consumed);
		held_len -= consumed;
	}
	d->outcome = rv;
	free(held);
	resp_parser_destroy(&p);
}

static void check_int64(const uint8_t *s, size_t len)
{
	char text[32];
	int64_t got;
	long long ref;
	char *end;
	int rv = resp_parse_int64(s, len, &got);
	int ok;

	if (len == 0 || len >= sizeof(text)) {
		if (len >= sizeof(text) && rv == 0)
			abort();
		return;
	}
	memcpy(text, s, len);
	text[len] = '\0';
	errno = 0;
	ref = strtoll(text, &end, 10);
	/* strtoll is laxer: require the canonical spelling on top of it. */
	ok = errno == 0 && *end == '\0' && memchr(s, '\0', len) == NULL;
	if (ok) {
		char canonical[32];

		snprintf(canonical, sizeof(canonical), "%lld", ref);
		ok = strcmp(canonical, text) == 0;
	}
	if ((rv == 0) != ok || (ok && got != ref))
		abort();
}

/*
 * The parser's short path for length lines (strint_parse_short_line) against
 * the general reading of a line: digits before the first CR, then LF. What
 * it accepts the general path must accept alike, and every line of 1-4
 * digits the general path accepts it must take.
 */
static void check_short_line(const uint8_t *s, size_t len)
{
	const uint8_t *cr = memchr(s, '\r', len);
	bool general = false, fast;
	int64_t general_value = -1;
	uint32_t fast_value;
	size_t fast_len, general_len = 0;

	if (cr && (size_t)(cr - s) + 1 < len && cr[1] == '\n' &&
	    resp_parse_int64(s, (size_t)(cr - s), &general_value) == 0) {
		general = true;
		general_len = (size_t)(cr - s) + 2;
	}
	fast = strint_parse_short_line(s, len, &fast_value, &fast_len);
	if (fast && (!general || general_value != fast_value || general_len != fast_len))
		abort();
	if (!fast && general && general_value >= 0 && general_len <= 6)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct resp_limits small = { .max_args = 4, .max_bulk = 16,
				     .max_inline = 32, .max_request = 128 };
	struct digest whole, pieces;
	const struct resp_limits *l;
	size_t chunk;

	if (size < 1)
		return 0;
	l = (data[0] & 1) ? &small : NULL;
	chunk = (size_t)(data[0] >> 1) % 17 + 1;
	run(data + 1, size - 1, l, 0, l && (data[0] & 0x80), &whole);
	run(data + 1, size - 1, l, chunk, l && (data[0] & 0x80), &pieces);
	if (whole.hash != pieces.hash || whole.commands != pieces.commands ||
	    whole.outcome != pieces.outcome)
		abort();
	check_int64(data + 1, size - 1);
	check_short_line(data + 1, size - 1);
	return 0;
}
