/*
 * Tests of proto/resp.c and proto/resp_commands.c: the RESP2 request parser
 * (whole buffers, pipelines, every split point, limits and malformed input),
 * the reply writer's exact bytes and sizes, strict integer parsing, and the
 * command table.
 *
 * Most parser tests go through feed(), which renders the parsed commands and
 * the final outcome as one line of text ("GET|k;SET|k|v;" then "EAGAIN" or
 * the error text), so the same expectation can be checked however the bytes
 * are split.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "proto/resp.h"
#include "proto/resp_commands.h"

#define TRACE_MAX 4096

struct trace {
	char text[TRACE_MAX];
	size_t len;
};

static void trace_put(struct trace *t, const char *s)
{
	size_t n = strlen(s);

	assert_true(t->len + n < TRACE_MAX);
	memcpy(t->text + t->len, s, n + 1);
	t->len += n;
}

static void trace_command(struct trace *t, const struct resp_command *c)
{
	char hex[8];

	for (size_t i = 0; i < c->argc; i++) {
		if (i)
			trace_put(t, "|");
		for (size_t j = 0; j < c->argv[i].len; j++) {
			uint8_t b = c->argv[i].data[j];

			if (b >= 0x21 && b < 0x7f && b != '|' && b != ';' && b != '\\')
				snprintf(hex, sizeof(hex), "%c", b);
			else
				snprintf(hex, sizeof(hex), "\\x%02x", b);
			trace_put(t, hex);
		}
	}
	trace_put(t, c->is_inline ? ";i " : "; ");
}

/*
 * Feeds `data` to a fresh parser in pieces of `chunk` bytes (0: all at once;
 * `split` > 0 overrides: two pieces cut at `split`). The unconsumed bytes
 * are moved to a fresh heap block before every call, so a parser that kept
 * a pointer across calls reads freed memory (caught by ASan).
 */
static void feed(const void *data, size_t len, const struct resp_limits *limits,
		 size_t chunk, size_t split, struct trace *t)
{
	struct resp_parser p;
	struct resp_command cmd;
	uint8_t *held = NULL;
	size_t held_len = 0, given = 0;
	int rv = RKV_EAGAIN;

	memset(t, 0, sizeof(*t));
	resp_parser_init(&p, limits);
	while (given < len || rv == 0) {
		size_t piece = len - given;
		uint8_t *moved;

		if (rv != 0) {
			if (split)
				piece = given < split ? split : len - given;
			else if (chunk && chunk < piece)
				piece = chunk;
			if (piece > len - given)
				piece = len - given;
		} else {
			piece = 0;
		}
		moved = malloc(held_len + piece + 1);
		assert_non_null(moved);
		if (held_len)
			memcpy(moved, held, held_len);
		memcpy(moved + held_len, (const uint8_t *)data + given, piece);
		free(held);
		held = moved;
		held_len += piece;
		given += piece;

		size_t consumed = 99;
		rv = resp_parse(&p, held, held_len, &cmd, &consumed);
		assert_true(consumed <= held_len);
		if (rv == 0)
			trace_command(t, &cmd);
		if (rv == RKV_EPROTO) {
			assert_int_equal(consumed, 0);
			trace_put(t, resp_parser_error(&p));
			/* The error is sticky. */
			assert_int_equal(resp_parse(&p, held, held_len, &cmd, &consumed),
					 RKV_EPROTO);
			goto out;
		}
		assert_true(rv == 0 || rv == RKV_EAGAIN);
		if (rv == RKV_EAGAIN)
			assert_true(resp_parser_wanted(&p) > held_len - consumed);
		memmove(held, held + consumed, held_len - consumed);
		held_len -= consumed;
	}
	trace_put(t, held_len ? "EAGAIN" : "END");
out:
	free(held);
	resp_parser_destroy(&p);
}

/* Checks the trace of `data` whole, byte by byte, and cut at every point. */
static void expect_stream(const void *data, size_t len,
			  const struct resp_limits *limits, const char *expected)
{
	struct trace t;

	feed(data, len, limits, 0, 0, &t);
	assert_string_equal(t.text, expected);
	feed(data, len, limits, 1, 0, &t);
	assert_string_equal(t.text, expected);
	feed(data, len, limits, 7, 0, &t);
	assert_string_equal(t.text, expected);
	for (size_t cut = 1; cut < len; cut++) {
		feed(data, len, limits, 0, cut, &t);
		if (strcmp(t.text, expected) != 0)
			fail_msg("cut at %zu: got \"%s\", want \"%s\"", cut, t.text,
				 expected);
	}
}

#define EXPECT(literal, expected) \
	expect_stream(literal, sizeof(literal) - 1, NULL, expected)
#define EXPECT_LIMITS(literal, limits, expected) \
	expect_stream(literal, sizeof(literal) - 1, limits, expected)

/* ---- multibulk ---- */

static void test_multibulk_basic(void **state)
{
	(void)state;
	EXPECT("*1\r\n$4\r\nPING\r\n", "PING; END");
	EXPECT("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n", "SET|key|value; END");
	EXPECT("*2\r\n$3\r\nGET\r\n$0\r\n\r\n", "GET|; END");
}

static void test_multibulk_pipeline(void **state)
{
	(void)state;
	EXPECT("*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n"
	       "*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n",
	       "PING; GET|k; PING;i ECHO|hi; END");
}

static void test_multibulk_binary_safe(void **state)
{
	static const uint8_t wire[] = "*2\r\n$4\r\nECHO\r\n$6\r\n\0\r\n*$\xff\r\n";

	(void)state;
	expect_stream(wire, sizeof(wire) - 1, NULL,
		      "ECHO|\\x00\\x0d\\x0a*$\\xff; END");
}

static void test_multibulk_empty_skipped(void **state)
{
	(void)state;
	/* "*0" and any negative count are no command; Redis skips them too. */
	EXPECT("*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n", "PING; END");
	EXPECT("*-10\r\n*1\r\n$4\r\nPING\r\n*-9223372036854775808\r\n", "PING; END");
	EXPECT("*0\r\n", "END");
}

static void test_multibulk_incomplete(void **state)
{
	(void)state;
	EXPECT("*2\r\n$3\r\nGET\r\n$1\r\n", "EAGAIN");
	EXPECT("*2\r\n$3\r\nGET\r\n$1\r\nk", "EAGAIN");
	EXPECT("*2\r\n$3\r\nGET\r\n$1\r\nk\r", "EAGAIN");
	EXPECT("*1\r\n$4\r\nPING\r\n*", "PING; EAGAIN");
}

static void test_multibulk_wanted_is_exact_for_payload(void **state)
{
	static const char head[] = "*2\r\n$3\r\nSET\r\n$100000\r\n";
	struct resp_parser p;
	struct resp_command cmd;
	uint8_t *buf = calloc(1, sizeof(head) + 100000 + 2);
	size_t consumed, total = sizeof(head) - 1 + 100000 + 2;

	(void)state;
	assert_non_null(buf);
	memcpy(buf, head, sizeof(head) - 1);
	resp_parser_init(&p, NULL);
	assert_int_equal(resp_parse(&p, buf, sizeof(head) - 1, &cmd, &consumed),
			 RKV_EAGAIN);
	assert_int_equal(consumed, 0);
	assert_int_equal(resp_parser_wanted(&p), total);
	buf[total - 2] = '\r';
	buf[total - 1] = '\n';
	assert_int_equal(resp_parse(&p, buf, total - 1, &cmd, &consumed), RKV_EAGAIN);
	assert_int_equal(resp_parser_wanted(&p), total);
	assert_int_equal(resp_parse(&p, buf, total, &cmd, &consumed), 0);
	assert_int_equal(consumed, total);
	assert_int_equal(cmd.argc, 2);
	assert_int_equal(cmd.argv[1].len, 100000);
	assert_ptr_equal(cmd.argv[1].data, buf + sizeof(head) - 1);
	resp_parser_destroy(&p);
	free(buf);
}

static void test_multibulk_many_args_reuse_argv(void **state)
{
	struct resp_parser p;
	struct resp_command cmd;
	size_t consumed, n = 3000, len = 0;
	char *wire = malloc(16 + n * 16);

	(void)state;
	assert_non_null(wire);
	len += (size_t)sprintf(wire + len, "*%zu\r\n", n);
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(wire + len, "$%zu\r\n%zu\r\n",
				       i < 10 ? (size_t)1 : i < 100 ? (size_t)2 :
				       i < 1000 ? (size_t)3 : (size_t)4, i);
	resp_parser_init(&p, NULL);
	assert_int_equal(resp_parse(&p, (uint8_t *)wire, len, &cmd, &consumed), 0);
	assert_int_equal(consumed, len);
	assert_int_equal(cmd.argc, n);
	assert_memory_equal(cmd.argv[2999].data, "2999", 4);
	size_t cap = p.argv_cap;
	struct resp_arg *argv = p.argv;
	/* A smaller command reuses the same storage. */
	assert_int_equal(resp_parse(&p, (const uint8_t *)"*1\r\n$1\r\nx\r\n", 11,
				    &cmd, &consumed), 0);
	assert_int_equal(p.argv_cap, cap);
	assert_ptr_equal(p.argv, argv);
	resp_parser_destroy(&p);
	free(wire);
}

/* ---- limits and malformed multibulk ---- */

static void test_multibulk_count_limits(void **state)
{
	struct resp_limits l = { .max_args = 3 };

	(void)state;
	EXPECT("*1048577\r\n", "ERR Protocol error: invalid multibulk length");
	EXPECT("*1048576\r\n$4\r\nPING\r\n", "EAGAIN");
	EXPECT("*-2\r\n", "END");
	EXPECT("*-99999999999999999999\r\n", "ERR Protocol error: invalid multibulk length");
	EXPECT("*-\r\n", "ERR Protocol error: invalid multibulk length");
	EXPECT("*abc\r\n", "ERR Protocol error: invalid multibulk length");
	EXPECT("*\r\n", "ERR Protocol error: invalid multibulk length");
	EXPECT("*+1\r\n", "ERR Protocol error: invalid multibulk length");
	EXPECT("* 1\r\n", "ERR Protocol error: invalid multibulk length");
	EXPECT("*01\r\n", "ERR Protocol error: invalid multibulk length");
	EXPECT("*1\rX", "ERR Protocol error: invalid multibulk length");
	EXPECT("*99999999999999999999\r\n",
	       "ERR Protocol error: invalid multibulk length");
	EXPECT("*1111111111111111111111111111111111111111",
	       "ERR Protocol error: invalid multibulk length");
	EXPECT_LIMITS("*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", &l, "a|b|c; END");
	EXPECT_LIMITS("*4\r\n", &l, "ERR Protocol error: invalid multibulk length");
}

static void test_bulk_length_limits(void **state)
{
	struct resp_limits l = { .max_bulk = 5 };

	(void)state;
	/* A 2 GiB header is refused from the header alone. */
	EXPECT("*1\r\n$2147483648\r\n",
	       "ERR Protocol error: invalid bulk length 2147483648 (the limit is 1048576 bytes)");
	EXPECT("*1\r\n$1048577\r\n",
	       "ERR Protocol error: invalid bulk length 1048577 (the limit is 1048576 bytes)");
	EXPECT("*1\r\n$1048576\r\n", "EAGAIN");
	EXPECT("*1\r\n$-1\r\n", "ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$-5\r\n", "ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$x\r\n", "ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$\r\n", "ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$9223372036854775808\r\n",
	       "ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$123456789012345678901234567890",
	       "ERR Protocol error: invalid bulk length");
	EXPECT_LIMITS("*1\r\n$5\r\nhello\r\n", &l, "hello; END");
	EXPECT_LIMITS("*1\r\n$6\r\n", &l,
		      "ERR Protocol error: invalid bulk length 6 (the limit is 5 bytes)");
}

/* CONFIG SET proto-max-bulk-len reaches connections part-way through a
 * command: the bulk limit changes in any state (no reset, no assert), the
 * lengths already accepted stand, the next header meets the new limit. */
static void test_max_bulk_changed_mid_command(void **state)
{
	static const char head[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\nab";
	static const char all[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\nabcd\r\n"
				  "*2\r\n$3\r\nGET\r\n$4\r\nabcd\r\n";
	struct resp_limits l = { .max_bulk = 8 };
	struct resp_parser p;
	struct resp_command cmd;
	size_t used, off = 0;

	(void)state;
	resp_parser_init(&p, &l);
	assert_int_equal(resp_parse(&p, (const uint8_t *)head, sizeof head - 1, &cmd, &used),
			 RKV_EAGAIN);
	off += used;
	resp_parser_set_max_bulk(&p, 3);
	assert_int_equal(resp_parse(&p, (const uint8_t *)all + off, sizeof all - 1 - off, &cmd,
				    &used), 0);
	assert_int_equal(cmd.argc, 3);
	assert_memory_equal(cmd.argv[2].data, "abcd", 4);
	off += used;
	assert_int_equal(resp_parse(&p, (const uint8_t *)all + off, sizeof all - 1 - off, &cmd,
				    &used), RKV_EPROTO);
	assert_string_equal(resp_parser_error(&p),
			    "ERR Protocol error: invalid bulk length 4 (the limit is 3 bytes)");
	resp_parser_destroy(&p);
}

/*
 * Length lines of 1-4 digits take a fast path (strint_parse_short_line);
 * its edges must answer exactly as the general path: where it stops (a
 * fifth digit, a leading zero, a sign, a bad terminator, a line not all
 * there) the general path decides, and limits apply to what it reads.
 */
static void test_length_line_fast_path_edges(void **state)
{
	struct resp_limits l = { .max_args = 2, .max_bulk = 999 };

	(void)state;
	EXPECT("*1\r\n$9999\r\n", "EAGAIN");
	EXPECT("*1\r\n$10000\r\n", "EAGAIN");
	EXPECT("*1\r\n$0\r\n\r\n", "; END");
	EXPECT("*1\r\n$00\r\n", "ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$0001\r\n", "ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$01234\r\n", "ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$-0\r\n", "ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$12\rX", "ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$1234\n\r\n", "ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$1234\n\r", "EAGAIN");
	EXPECT("*1\r\n$12\n", "EAGAIN");
	EXPECT("*1\r\n$12 \r\n", "ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$1\r\r\n", "ERR Protocol error: invalid bulk length");
	EXPECT("*1\r\n$12\r", "EAGAIN");
	EXPECT("*1\r\n$1234", "EAGAIN");
	EXPECT("*0001\r\n", "ERR Protocol error: invalid multibulk length");
	EXPECT("*9\rx", "ERR Protocol error: invalid multibulk length");
	EXPECT("*1:\r\n", "ERR Protocol error: invalid multibulk length");
	EXPECT("*2\r\n$1\r\na\r\n$1000\r\n", "EAGAIN");
	EXPECT_LIMITS("*3\r\n", &l, "ERR Protocol error: invalid multibulk length");
	EXPECT_LIMITS("*1\r\n$1000\r\n", &l,
		      "ERR Protocol error: invalid bulk length 1000 (the limit is 999 bytes)");
	EXPECT_LIMITS("*2\r\n$999\r\n", &l, "EAGAIN");
}

static void test_request_limit(void **state)
{
	struct resp_limits l = { .max_request = 40 };

	(void)state;
	/* The payload would end at 27 + 12 + 2 = 41 > 40: refused at its header. */
	EXPECT_LIMITS("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$12\r\n", &l,
		      "ERR Protocol error: request too large");
	/* Ends at 27 + 11 + 2 = 40: fine. */
	EXPECT_LIMITS("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$11\r\n0123456789a\r\n",
		      &l, "SET|key|0123456789a; END");
}

static void test_bad_type_byte(void **state)
{
	(void)state;
	EXPECT("*1\r\n:5\r\n", "ERR Protocol error: expected '$', got ':'");
	EXPECT("*2\r\n$1\r\na\r\n+b\r\n", "ERR Protocol error: expected '$', got '+'");
	EXPECT("*1\r\n\r\n", "ERR Protocol error: expected '$', got '\\x0d'");
}

static void test_missing_crlf_after_bulk(void **state)
{
	(void)state;
	EXPECT("*1\r\n$1\r\nabc\r\n", "ERR Protocol error: expected CRLF after bulk data");
	EXPECT("*1\r\n$1\r\na\n\r", "ERR Protocol error: expected CRLF after bulk data");
	EXPECT("*1\r\n$1\r\na\r\r", "ERR Protocol error: expected CRLF after bulk data");
}

static void test_error_is_sticky_and_reset(void **state)
{
	struct resp_parser p;
	struct resp_command cmd;
	size_t consumed;

	(void)state;
	resp_parser_init(&p, NULL);
	assert_int_equal(resp_parse(&p, (const uint8_t *)"*x\r\n", 4, &cmd, &consumed),
			 RKV_EPROTO);
	assert_int_equal(resp_parse(&p, (const uint8_t *)"PING\r\n", 6, &cmd, &consumed),
			 RKV_EPROTO);
	resp_parser_reset(&p);
	assert_string_equal(resp_parser_error(&p), "");
	assert_int_equal(resp_parse(&p, (const uint8_t *)"PING\r\n", 6, &cmd, &consumed),
			 0);
	assert_int_equal(consumed, 6);
	resp_parser_destroy(&p);
}

/* ---- inline ---- */

static void test_inline_basic(void **state)
{
	(void)state;
	EXPECT("PING\r\n", "PING;i END");
	EXPECT("SET  key\tvalue \r\n", "SET|key|value;i END");
	EXPECT("GET k\n", "GET|k;i END");
	EXPECT("\r\n\n   \r\nPING\r\n", "PING;i END");
	EXPECT("GET k", "EAGAIN");
	EXPECT("\r\n", "END");
}

static void test_inline_quotes(void **state)
{
	(void)state;
	EXPECT("SET \"a b\" 'c d'\r\n", "SET|a\\x20b|c\\x20d;i END");
	EXPECT("ECHO \"\\x41\\x4a\\n\\\\\\\"\"\r\n", "ECHO|AJ\\x0a\\x5c\";i END");
	EXPECT("ECHO 'it\\'s'\r\n", "ECHO|it's;i END");
	EXPECT("ECHO \"\"\r\n", "ECHO|;i END");
	EXPECT("ECHO foo\"bar baz\"qux\r\n",
	       "ERR Protocol error: unbalanced quotes in request");
	EXPECT("ECHO foo\"bar baz\" qux\r\n", "ECHO|foobar\\x20baz|qux;i END");
	EXPECT("ECHO \"abc\r\n", "ERR Protocol error: unbalanced quotes in request");
	EXPECT("ECHO 'abc\r\n", "ERR Protocol error: unbalanced quotes in request");
	EXPECT("ECHO \"\\xzz\"\r\n", "ECHO|xzz;i END");
}

static void test_inline_too_long(void **state)
{
	struct resp_limits l = { .max_inline = 16 };
	size_t big = RESP_DEFAULT_MAX_INLINE + 10;
	char *line = malloc(big);
	struct trace t;

	(void)state;
	EXPECT_LIMITS("GET 0123456789\r\n", &l, "GET|0123456789;i END");
	EXPECT_LIMITS("GET 01234567890\r\n", &l,
		      "ERR Protocol error: too big inline request");
	EXPECT_LIMITS("GET 0123456789012", &l,
		      "ERR Protocol error: too big inline request");
	assert_non_null(line);
	memset(line, 'a', big);
	feed(line, big, NULL, 4096, 0, &t);
	assert_string_equal(t.text, "ERR Protocol error: too big inline request");
	feed(line, big, NULL, 0, 0, &t);
	assert_string_equal(t.text, "ERR Protocol error: too big inline request");
	free(line);
}

/*
 * A NUL before the end of an inline line is another protocol: ringkv's
 * native frame (u32 length, then protobuf) is refused as soon as its first
 * four bytes are in, instead of both sides waiting for each other.
 */
static void test_inline_binary_refused(void **state)
{
	static const uint8_t native_ping[] = { 0x04, 0x00, 0x00, 0x00, 0x08, 0x01 };
	static const char refused[] = "ERR Protocol error: binary data in an inline "
				      "command: this is a Redis protocol (RESP) port";
	struct trace t;

	(void)state;
	expect_stream(native_ping, 4, NULL, refused);
	expect_stream(native_ping, sizeof native_ping, NULL, refused);
	feed(native_ping, sizeof native_ping, NULL, 1, 0, &t);
	assert_string_equal(t.text, refused);
	EXPECT("GET a\0b\r\n", refused);
	EXPECT("GET k\r\n\x01\0", "GET|k;i ERR Protocol error: binary data in an inline "
				      "command: this is a Redis protocol (RESP) port");
	/* Other bytes stay the inline line's, as in Redis. */
	EXPECT("\x01\x02\xff\r\n", "\\x01\\x02\\xff;i END");
}

static void test_inline_arg_limit(void **state)
{
	struct resp_limits l = { .max_args = 2 };

	(void)state;
	EXPECT_LIMITS("GET k\r\n", &l, "GET|k;i END");
	EXPECT_LIMITS("GET k x\r\n", &l,
		      "ERR Protocol error: too many arguments in inline request");
}

/* ---- integers ---- */

static int64_t parse_ok(const char *s)
{
	int64_t v = 12345;

	assert_int_equal(resp_parse_int64((const uint8_t *)s, strlen(s), &v), 0);
	return v;
}

static void parse_bad(const char *s)
{
	int64_t v = 12345;

	if (resp_parse_int64((const uint8_t *)s, strlen(s), &v) != RKV_EINVAL)
		fail_msg("\"%s\" was accepted", s);
	assert_int_equal(v, 12345);
}

static void test_parse_int64(void **state)
{
	uint64_t u;

	(void)state;
	assert_int_equal(parse_ok("0"), 0);
	assert_int_equal(parse_ok("1"), 1);
	assert_int_equal(parse_ok("-1"), -1);
	assert_int_equal(parse_ok("1234567890"), 1234567890);
	assert_true(parse_ok("9223372036854775807") == INT64_MAX);
	assert_true(parse_ok("-9223372036854775808") == INT64_MIN);
	parse_bad("");
	parse_bad("-");
	parse_bad("+1");
	parse_bad(" 1");
	parse_bad("1 ");
	parse_bad("01");
	parse_bad("-0");
	parse_bad("00");
	parse_bad("1.5");
	parse_bad("1e3");
	parse_bad("0x10");
	parse_bad("9223372036854775808");
	parse_bad("-9223372036854775809");
	parse_bad("99999999999999999999");
	parse_bad("abc");
	assert_int_equal(resp_parse_int64((const uint8_t *)"12\0", 3, &(int64_t){ 0 }),
			 RKV_EINVAL);
	assert_int_equal(resp_parse_int64(NULL, 0, &(int64_t){ 0 }), RKV_EINVAL);

	assert_int_equal(resp_parse_uint64((const uint8_t *)"18446744073709551615", 20,
					   &u), 0);
	assert_true(u == UINT64_MAX);
	assert_int_equal(resp_parse_uint64((const uint8_t *)"18446744073709551616", 20,
					   &u), RKV_EINVAL);
	assert_int_equal(resp_parse_uint64((const uint8_t *)"-1", 2, &u), RKV_EINVAL);
	assert_int_equal(resp_parse_uint64((const uint8_t *)"0", 1, &u), 0);
	assert_true(u == 0);
	assert_int_equal(resp_parse_uint64((const uint8_t *)"01", 2, &u), RKV_EINVAL);
}

/* ---- reply writer ---- */

static void expect_out(const struct resp_out *o, const char *bytes, size_t len)
{
	assert_int_equal(o->len, len);
	assert_memory_equal(o->data, bytes, len);
}

static void test_writer_exact_bytes(void **state)
{
	uint8_t buf[256];
	struct resp_out o = { buf, 0, sizeof(buf) };

	(void)state;
	assert_int_equal(resp_write_simple_str(&o, "OK"), 0);
	expect_out(&o, "+OK\r\n", 5);
	o.len = 0;
	assert_int_equal(resp_write_error_str(&o, "ERR bad\r\nthing"), 0);
	expect_out(&o, "-ERR bad  thing\r\n", 17);
	o.len = 0;
	assert_int_equal(resp_write_integer(&o, 0), 0);
	assert_int_equal(resp_write_integer(&o, -42), 0);
	assert_int_equal(resp_write_integer(&o, INT64_MAX), 0);
	assert_int_equal(resp_write_integer(&o, INT64_MIN), 0);
	expect_out(&o, ":0\r\n:-42\r\n:9223372036854775807\r\n:-9223372036854775808\r\n",
		   4 + 6 + 22 + 23);
	o.len = 0;
	assert_int_equal(resp_write_bulk(&o, "a\0\r\nb", 5), 0);
	assert_int_equal(resp_write_bulk(&o, NULL, 0), 0);
	assert_int_equal(resp_write_null_bulk(&o), 0);
	expect_out(&o, "$5\r\na\0\r\nb\r\n$0\r\n\r\n$-1\r\n", 11 + 6 + 5);
	o.len = 0;
	assert_int_equal(resp_write_array(&o, 2), 0);
	assert_int_equal(resp_write_array(&o, 0), 0);
	assert_int_equal(resp_write_null_array(&o), 0);
	assert_int_equal(resp_write_simple(&o, "", 0), 0);
	expect_out(&o, "*2\r\n*0\r\n*-1\r\n+\r\n", 16);
}

static void test_writer_sizes_match(void **state)
{
	static const int64_t ints[] = { 0, 1, 9, 10, 99, 100, -1, -9, -10,
					INT64_MAX, INT64_MIN, 1000000 };
	static const size_t lens[] = { 0, 1, 9, 10, 99, 100, 1048576 };
	static uint8_t buf[1048576 + 64];
	struct resp_out o = { buf, 0, sizeof(buf) };
	static uint8_t payload[1048576];

	(void)state;
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		o.len = 0;
		assert_int_equal(resp_write_integer(&o, ints[i]), 0);
		assert_int_equal(o.len, resp_size_integer(ints[i]));
	}
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		o.len = 0;
		assert_int_equal(resp_write_bulk(&o, payload, lens[i]), 0);
		assert_int_equal(o.len, resp_size_bulk(lens[i]));
		o.len = 0;
		assert_int_equal(resp_write_array(&o, lens[i]), 0);
		assert_int_equal(o.len, resp_size_array(lens[i]));
	}
	assert_int_equal(resp_size_simple(2), 5);
	assert_int_equal(resp_size_error(3), 6);
	assert_int_equal(resp_size_null_bulk(), 5);
	assert_int_equal(resp_size_null_array(), 5);
}

static void test_writer_no_room(void **state)
{
	uint8_t buf[9];
	struct resp_out o = { buf, 0, 8 };

	(void)state;
	memset(buf, '#', sizeof(buf));
	assert_int_equal(resp_write_bulk(&o, "abc", 3), -ENOBUFS);
	assert_int_equal(o.len, 0);
	assert_int_equal(buf[0], '#');
	assert_int_equal(resp_write_integer(&o, 1234567), -ENOBUFS);
	assert_int_equal(resp_write_simple_str(&o, "123456"), -ENOBUFS);
	assert_int_equal(resp_write_error_str(&o, "123456"), -ENOBUFS);
	assert_int_equal(resp_write_array(&o, 123456), -ENOBUFS);
	assert_int_equal(resp_write_integer(&o, 123), 0);
	assert_int_equal(resp_write_null_bulk(&o), -ENOBUFS);
	assert_int_equal(resp_write_null_array(&o), -ENOBUFS);
	expect_out(&o, ":123\r\n", 6);
	o.cap = 9;
	o.len = 0;
	assert_int_equal(resp_write_bulk(&o, "abc", 3), 0);
	expect_out(&o, "$3\r\nabc\r\n", 9);
}

/* RESP3's types, byte for byte as the protocol's specification writes them. */
static void test_writer_resp3(void **state)
{
	uint8_t buf[128];
	struct resp_out o = { buf, 0, sizeof(buf) };

	(void)state;
	assert_int_equal(resp_write_aggregate(&o, RESP3_MAP, 3), 0);
	assert_int_equal(resp_write_aggregate(&o, RESP3_SET, 0), 0);
	assert_int_equal(resp_write_aggregate(&o, RESP3_PUSH, 12), 0);
	assert_int_equal(resp_write_aggregate(&o, RESP3_ATTRIBUTE, 1), 0);
	assert_int_equal(resp_write_null3(&o), 0);
	expect_out(&o, "%3\r\n~0\r\n>12\r\n|1\r\n_\r\n", 4 + 4 + 5 + 4 + 3);
	assert_int_equal(o.len - 3, resp_size_aggregate(3) + resp_size_aggregate(0) +
		resp_size_aggregate(12) + resp_size_aggregate(1));
	o.len = 0;
	assert_int_equal(resp_write_bool(&o, true), 0);
	assert_int_equal(resp_write_bool(&o, false), 0);
	assert_int_equal(resp_write_double(&o, "3.1410000000000000", 18), 0);
	assert_int_equal(resp_write_double(&o, "-inf", 4), 0);
	assert_int_equal(resp_write_bignum(&o, "-12345678901234567890", 21), 0);
	expect_out(&o, "#t\r\n#f\r\n,3.1410000000000000\r\n,-inf\r\n(-12345678901234567890\r\n",
		   8 + 21 + 7 + 24);
	o.len = 0;
	assert_int_equal(resp_write_verbatim(&o, "txt", "Some\r\nstring", 12), 0);
	assert_int_equal(resp_write_verbatim(&o, "mkd", NULL, 0), 0);
	expect_out(&o, "=16\r\ntxt:Some\r\nstring\r\n=4\r\nmkd:\r\n", 5 + 16 + 2 + 4 + 4 + 2);
	assert_int_equal(o.len, resp_size_verbatim(12) + resp_size_verbatim(0));
	/* No room: nothing written. */
	o.len = 0;
	o.cap = 6;
	assert_int_equal(resp_write_verbatim(&o, "txt", "ab", 2), -ENOBUFS);
	assert_int_equal(resp_write_aggregate(&o, RESP3_MAP, 123456), -ENOBUFS);
	assert_int_equal(resp_write_double(&o, "1.5e100", 7), -ENOBUFS);
	assert_int_equal(o.len, 0);
	assert_int_equal(resp_write_bool(&o, true), 0);
	assert_int_equal(resp_write_null3(&o), -ENOBUFS);
	expect_out(&o, "#t\r\n", 4);
}

/* ---- command table ---- */

static const struct resp_command_info *lookup(const char *name)
{
	return resp_command_lookup((const uint8_t *)name, strlen(name));
}

static void test_command_lookup(void **state)
{
	static const char *const names[] = {
		"PING", "ECHO", "QUIT", "SELECT", "HELLO", "GET", "SET", "SETNX",
		"GETSET", "DEL", "EXISTS", "MGET", "MSET", "INCR", "DECR", "INCRBY",
		"DECRBY", "APPEND", "STRLEN", "SCAN", "DBSIZE", "INFO", "COMMAND",
		"CONFIG", "CLIENT", "KEYS", "TYPE", "TIME", "FLUSHDB", "FLUSHALL",
		"GETDEL", "GETRANGE", "SUBSTR", "SETRANGE", "GETBIT", "SETBIT", "BITCOUNT",
		"BITPOS", "LCS", "INCRBYFLOAT", "UNLINK", "TOUCH",
		"MSETNX", "RENAME", "RENAMENX", "COPY",
		"SETEX", "PSETEX", "GETEX", "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT",
		"PERSIST", "TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME",
		"RANDOMKEY", "OBJECT", "DEBUG", "AUTH",
	};
	size_t count;
	const struct resp_command_info *table = resp_command_table(&count);

	(void)state;
	assert_int_equal(count, sizeof(names) / sizeof(names[0]));
	assert_int_equal(count, RESP_CMD_TOP_COUNT);
	for (size_t i = 0; i < count; i++) {
		const struct resp_command_info *c = lookup(names[i]);

		assert_non_null(c);
		assert_ptr_equal(c, &table[i]);
		assert_int_equal(c->id, (int)i);
		assert_non_null(c->summary);
	}
	assert_ptr_equal(lookup("get"), lookup("GET"));
	assert_ptr_equal(lookup("gEt"), lookup("GET"));
	assert_ptr_equal(lookup("MgEt"), lookup("mget"));
	assert_null(lookup("GE"));
	assert_null(lookup("GETT"));
	assert_null(lookup("GET "));
	assert_null(lookup(""));
	assert_null(lookup("LPUSH"));
	assert_null(resp_command_lookup((const uint8_t *)"GET\0", 4));
	/* Non-ASCII bytes must not fold into letters. */
	assert_null(lookup("G\xc5T"));
}

static void test_command_arity(void **state)
{
	(void)state;
	assert_int_equal(lookup("get")->arity, 2);
	assert_true(resp_command_arity_ok(lookup("get"), 2));
	assert_false(resp_command_arity_ok(lookup("get"), 1));
	assert_false(resp_command_arity_ok(lookup("get"), 3));
	assert_int_equal(lookup("set")->arity, -3);
	assert_false(resp_command_arity_ok(lookup("set"), 2));
	assert_true(resp_command_arity_ok(lookup("set"), 3));
	assert_true(resp_command_arity_ok(lookup("set"), 7));
	assert_true(resp_command_arity_ok(lookup("ping"), 1));
	assert_true(resp_command_arity_ok(lookup("ping"), 2));
	assert_false(resp_command_arity_ok(lookup("dbsize"), 2));
	assert_false(resp_command_arity_ok(lookup("mset"), 2));
	assert_false(resp_command_arity_ok(lookup("del"), 1));
	assert_int_equal(lookup("mset")->key_step, 2);
	assert_int_equal(lookup("del")->last_key, -1);
	assert_int_equal(lookup("scan")->first_key, 0);
	assert_true(lookup("get")->flags & RESP_CMDF_READONLY);
	assert_true(lookup("incr")->flags & RESP_CMDF_WRITE);
}

static void test_subcommands(void **state)
{
	const struct resp_command_info *config = lookup("config");
	const struct resp_command_info *sub;

	(void)state;
	sub = resp_subcommand_lookup(config, (const uint8_t *)"GeT", 3);
	assert_non_null(sub);
	assert_int_equal(sub->id, RESP_CMD_CONFIG_GET);
	assert_string_equal(sub->name, "config|get");
	assert_false(resp_command_arity_ok(sub, 2));
	assert_true(resp_command_arity_ok(sub, 3));
	assert_null(resp_subcommand_lookup(config, (const uint8_t *)"config|get", 10));
	assert_null(resp_subcommand_lookup(config, (const uint8_t *)"id", 2));
	sub = resp_subcommand_lookup(lookup("CLIENT"), (const uint8_t *)"setname", 7);
	assert_non_null(sub);
	assert_int_equal(sub->arity, 3);
	assert_non_null(resp_subcommand_lookup(lookup("command"),
					       (const uint8_t *)"DOCS", 4));
	assert_null(resp_subcommand_lookup(lookup("get"), (const uint8_t *)"x", 1));
}

static void test_flags(void **state)
{
	(void)state;
	assert_string_equal(resp_command_flag_name(RESP_CMDF_WRITE), "write");
	assert_string_equal(resp_command_flag_name(RESP_CMDF_ALLOW_BUSY), "allow_busy");
	assert_null(resp_command_flag_name(3));
	assert_null(resp_command_flag_name(1u << RESP_CMDF_COUNT));
	assert_int_equal(resp_command_flag_count(lookup("quit")->flags), 6);
	assert_int_equal(resp_command_flag_count(lookup("config")->flags), 0);
}

static void test_error_formats(void **state)
{
	struct resp_arg argv[3] = {
		{ (const uint8_t *)"foo", 3, 0 },
		{ (const uint8_t *)"a", 1, 0 },
		{ (const uint8_t *)"b\r\nc", 4, 0 },
	};
	char out[256], tiny[8];
	size_t n;

	(void)state;
	n = resp_format_unknown_command(out, sizeof(out), argv, 3);
	assert_string_equal(out, "ERR unknown command 'foo', with args beginning with: "
				 "'a' 'b  c' ");
	assert_int_equal(n, strlen(out));
	resp_format_unknown_command(out, sizeof(out), argv, 1);
	assert_string_equal(out, "ERR unknown command 'foo', with args beginning with: ");
	n = resp_format_unknown_command(tiny, sizeof(tiny), argv, 3);
	assert_string_equal(tiny, "ERR unk");
	assert_int_equal(n, 7);
	resp_format_wrong_arity(out, sizeof(out), lookup("GET"));
	assert_string_equal(out, "ERR wrong number of arguments for 'get' command");
	resp_format_wrong_arity(out, sizeof(out),
				resp_subcommand_lookup(lookup("config"),
						       (const uint8_t *)"get", 3));
	assert_string_equal(out, "ERR wrong number of arguments for 'config|get' command");
	resp_format_unknown_subcommand(out, sizeof(out), lookup("config"),
				       (const uint8_t *)"foo", 3);
	assert_string_equal(out, "ERR unknown subcommand 'foo'. Try CONFIG HELP.");
}

static void test_error_format_long_args(void **state)
{
	char arg[300], out[1024], expect[1024];
	struct resp_arg argv[4];
	size_t n;

	(void)state;
	memset(arg, 'x', sizeof(arg));
	argv[0] = (struct resp_arg){ (const uint8_t *)arg, 300, 0 };
	argv[1] = (struct resp_arg){ (const uint8_t *)arg, 100, 0 };
	argv[2] = (struct resp_arg){ (const uint8_t *)arg, 100, 0 };
	argv[3] = (struct resp_arg){ (const uint8_t *)arg, 100, 0 };
	resp_format_unknown_command(out, sizeof(out), argv, 4);
	/* Redis: name cut at 128; args listed while the list is < 128 bytes. */
	n = (size_t)snprintf(expect, sizeof(expect),
			     "ERR unknown command '%.128s', with args beginning with: "
			     "'%.100s' '%.25s' ", arg, arg, arg);
	assert_int_equal(strlen(out), n);
	assert_string_equal(out, expect);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_multibulk_basic),
		cmocka_unit_test(test_multibulk_pipeline),
		cmocka_unit_test(test_multibulk_binary_safe),
		cmocka_unit_test(test_multibulk_empty_skipped),
		cmocka_unit_test(test_multibulk_incomplete),
		cmocka_unit_test(test_multibulk_wanted_is_exact_for_payload),
		cmocka_unit_test(test_multibulk_many_args_reuse_argv),
		cmocka_unit_test(test_multibulk_count_limits),
		cmocka_unit_test(test_bulk_length_limits),
		cmocka_unit_test(test_max_bulk_changed_mid_command),
		cmocka_unit_test(test_length_line_fast_path_edges),
		cmocka_unit_test(test_request_limit),
		cmocka_unit_test(test_bad_type_byte),
		cmocka_unit_test(test_missing_crlf_after_bulk),
		cmocka_unit_test(test_error_is_sticky_and_reset),
		cmocka_unit_test(test_inline_basic),
		cmocka_unit_test(test_inline_quotes),
		cmocka_unit_test(test_inline_too_long),
		cmocka_unit_test(test_inline_arg_limit),
		cmocka_unit_test(test_inline_binary_refused),
		cmocka_unit_test(test_parse_int64),
		cmocka_unit_test(test_writer_exact_bytes),
		cmocka_unit_test(test_writer_sizes_match),
		cmocka_unit_test(test_writer_no_room),
		cmocka_unit_test(test_writer_resp3),
		cmocka_unit_test(test_command_lookup),
		cmocka_unit_test(test_command_arity),
		cmocka_unit_test(test_subcommands),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_error_formats),
		cmocka_unit_test(test_error_format_long_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
