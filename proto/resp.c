/*
 * RESP2 request parser and reply writer (see proto/resp.h).
 *
 * Invariant of the parser: between calls it holds only offsets relative to
 * the first byte of the command in progress (pos, argv[i].offset), never
 * pointers into the caller's buffer, so the caller may move its buffer while
 * a command is incomplete. Pointers are made when a command is complete.
 * Every number read from the peer is validated (digits, range, limit) before
 * it is used for anything, and argv grows with arguments that have arrived,
 * not with the count the peer announced (Redis CVE-2021-32675 let an
 * unauthenticated "*<huge>" header reserve memory).
 */
#include "proto/resp.h"

#include "core/errors.h"
#include "core/strint.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest valid number: "-9223372036854775808". */
#define RESP_NUMBER_MAX 20
#define RESP_ARGV_MIN 8

void resp_limits_default(struct resp_limits *l)
{
	assert(l != NULL);
	l->max_args = RESP_DEFAULT_MAX_ARGS;
	l->max_bulk = RESP_DEFAULT_MAX_BULK;
	l->max_inline = RESP_DEFAULT_MAX_INLINE;
	l->max_request = RESP_DEFAULT_MAX_REQUEST;
}

void resp_parser_init(struct resp_parser *p, const struct resp_limits *limits)
{
	struct resp_limits def;

	assert(p != NULL);
	resp_limits_default(&def);
	memset(p, 0, sizeof(*p));
	p->limits = def;
	if (limits) {
		if (limits->max_args)
			p->limits.max_args = limits->max_args;
		if (limits->max_bulk)
			p->limits.max_bulk = limits->max_bulk;
		if (limits->max_inline)
			p->limits.max_inline = limits->max_inline;
		if (limits->max_request)
			p->limits.max_request = limits->max_request;
	}
	p->state = RESP_STATE_START;
	p->wanted = 1;
}

void resp_parser_set_limits(struct resp_parser *p, const struct resp_limits *limits)
{
	struct resp_arg *argv = p->argv;
	size_t argv_cap = p->argv_cap;

	assert(p->state == RESP_STATE_START);
	free(p->scratch); /* sized by the old max_inline; made again when needed */
	resp_parser_init(p, limits);
	p->argv = argv;
	p->argv_cap = argv_cap;
}

void resp_parser_set_max_bulk(struct resp_parser *p, uint32_t max_bulk)
{
	if (max_bulk)
		p->limits.max_bulk = max_bulk;
}

void resp_parser_destroy(struct resp_parser *p)
{
	assert(p != NULL);
	free(p->argv);
	free(p->scratch);
	p->argv = NULL;
	p->scratch = NULL;
	p->argv_cap = 0;
}

void resp_parser_reset(struct resp_parser *p)
{
	assert(p != NULL);
	p->state = RESP_STATE_START;
	p->pos = 0;
	p->args_expected = 0;
	p->args_done = 0;
	p->bulk_len = 0;
	p->wanted = 1;
	p->error[0] = '\0';
}

size_t resp_parser_wanted(const struct resp_parser *p)
{
	assert(p != NULL);
	return p->wanted;
}

const char *resp_parser_error(const struct resp_parser *p)
{
	assert(p != NULL);
	return p->error;
}

int resp_parse_int64(const uint8_t *s, size_t len, int64_t *value)
{
	return strint_parse_i64(s, len, value);
}

int resp_parse_uint64(const uint8_t *s, size_t len, uint64_t *value)
{
	return strint_parse_u64(s, len, value);
}

/* ---- parser ---- */

static int fail(struct resp_parser *p, const char *what)
{
	snprintf(p->error, sizeof(p->error), "ERR Protocol error: %s", what);
	p->state = RESP_STATE_ERROR;
	p->wanted = 0;
	return RKV_EPROTO;
}

static int fail_bulk_too_large(struct resp_parser *p, int64_t len)
{
	snprintf(p->error, sizeof(p->error),
		 "ERR Protocol error: invalid bulk length %lld (the limit is %zu bytes)",
		 (long long)len, (size_t)p->limits.max_bulk);
	p->state = RESP_STATE_ERROR;
	p->wanted = 0;
	return RKV_EPROTO;
}

static int fail_type_byte(struct resp_parser *p, uint8_t got)
{
	/* Redis prints the byte raw; a CR or LF there would break the reply. */
	if (got >= 0x20 && got < 0x7f)
		snprintf(p->error, sizeof(p->error),
			 "ERR Protocol error: expected '$', got '%c'", got);
	else
		snprintf(p->error, sizeof(p->error),
			 "ERR Protocol error: expected '$', got '\\x%02x'", got);
	p->state = RESP_STATE_ERROR;
	p->wanted = 0;
	return RKV_EPROTO;
}

/* Makes room for argv[0..need); grows geometrically, at most to `limit`. */
static int argv_reserve(struct resp_parser *p, size_t need, size_t limit)
{
	struct resp_arg *grown;
	size_t cap;

	if (need <= p->argv_cap)
		return 0;
	cap = p->argv_cap ? p->argv_cap : RESP_ARGV_MIN;
	while (cap < need)
		cap *= 2;
	if (cap > limit)
		cap = limit;
	assert(cap >= need);
	grown = realloc(p->argv, cap * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	p->argv = grown;
	p->argv_cap = cap;
	return 0;
}

/* read_number_line's general path: any line, every check. */
static __attribute__((noinline)) int read_number_line_general(const uint8_t *cmd, size_t avail,
							    size_t start, int64_t *value,
							    size_t *next)
{
	size_t end = start + RESP_NUMBER_MAX + 1;
	const uint8_t *cr;

	if (end > avail)
		end = avail;
	cr = start < end ? memchr(cmd + start, '\r', end - start) : NULL;
	if (!cr)
		return avail - start > RESP_NUMBER_MAX ? RKV_EINVAL : RKV_EAGAIN;
	if ((size_t)(cr - cmd) + 1 >= avail)
		return RKV_EAGAIN;
	if (cr[1] != '\n')
		return RKV_EINVAL;
	if (resp_parse_int64(cmd + start, (size_t)(cr - cmd) - start, value) != 0)
		return RKV_EINVAL;
	*next = (size_t)(cr - cmd) + 2;
	return 0;
}

/*
 * Reads "<number>\r\n" starting at `start` of cmd[0..avail). Returns 0 with
 * *value and *next (the offset after LF), RKV_EAGAIN, or RKV_EINVAL. The
 * answer does not depend on how much of the line is there: a line with no CR
 * within RESP_NUMBER_MAX + 1 bytes could not hold a valid number anyway.
 * Nearly every length line a client sends is 1-4 digits, all there: that
 * case is read in line, without a call, memchr or range checks.
 */
static inline int read_number_line(const uint8_t *cmd, size_t avail, size_t start,
				   int64_t *value, size_t *next)
{
	uint32_t short_value;
	size_t short_len;

	if (strint_parse_short_line(cmd + start, avail - start, &short_value, &short_len)) {
		*value = short_value;
		*next = start + short_len;
		return 0;
	}
	return read_number_line_general(cmd, avail, start, value, next);
}

/* Token ends, as in Redis' sdssplitargs. */
static bool is_token_end(uint8_t c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
	       c == '\r';
}

/*
 * Unescapes one token that contains quotes, from line[*at..end) into
 * scratch. Follows sdssplitargs: quotes may open anywhere in a token; a
 * closing quote must be followed by a space or the end of the line.
 */
static int split_quoted(const uint8_t *line, size_t end, size_t *at,
			uint8_t *scratch, size_t *out_len)
{
	size_t i = *at, n = 0;
	int quote = 0; /* 0, '"' or '\'' */

	for (;;) {
		if (quote == '"') {
			if (i >= end)
				return RKV_EPROTO;
			if (line[i] == '\\' && i + 3 < end && line[i + 1] == 'x' &&
			    strint_hex_digit(line[i + 2]) >= 0 &&
			    strint_hex_digit(line[i + 3]) >= 0) {
				scratch[n++] = (uint8_t)(strint_hex_digit(line[i + 2]) * 16 +
							 strint_hex_digit(line[i + 3]));
				i += 4;
			} else if (line[i] == '\\' && i + 1 < end) {
				uint8_t c = line[i + 1];

				switch (c) {
				case 'n': c = '\n'; break;
				case 'r': c = '\r'; break;
				case 't': c = '\t'; break;
				case 'b': c = '\b'; break;
				case 'a': c = '\a'; break;
				default: break;
				}
				scratch[n++] = c;
				i += 2;
			} else if (line[i] == '"') {
				if (i + 1 < end && !is_space(line[i + 1]))
					return RKV_EPROTO;
				i++;
				break;
			} else {
				scratch[n++] = line[i++];
			}
		} else if (quote == '\'') {
			if (i >= end)
				return RKV_EPROTO;
			if (line[i] == '\\' && i + 1 < end && line[i + 1] == '\'') {
				scratch[n++] = '\'';
				i += 2;
			} else if (line[i] == '\'') {
				if (i + 1 < end && !is_space(line[i + 1]))
					return RKV_EPROTO;
				i++;
				break;
			} else {
				scratch[n++] = line[i++];
			}
		} else {
			if (i >= end || is_token_end(line[i]))
				break;
			if (line[i] == '"' || line[i] == '\'')
				quote = line[i++];
			else
				scratch[n++] = line[i++];
		}
	}
	*at = i;
	*out_len = n;
	return 0;
}

/*
 * Splits one inline line (CR LF stripped) into p->argv. Unquoted tokens are
 * slices of the line; quoted ones are unescaped into p->scratch, which can
 * never overflow since unescaping only shrinks and the line fits max_inline.
 */
static int split_inline(struct resp_parser *p, const uint8_t *line, size_t end,
			size_t *argc)
{
	size_t i = 0, n = 0, scratch_used = 0;
	int rv;

	for (;;) {
		size_t start, tok_len;
		bool quoted = false;

		while (i < end && is_space(line[i]))
			i++;
		if (i >= end)
			break;
		start = i;
		while (i < end && !is_token_end(line[i])) {
			if (line[i] == '"' || line[i] == '\'') {
				quoted = true;
				break;
			}
			i++;
		}
		if (n >= p->limits.max_args)
			return fail(p, "too many arguments in inline request");
		rv = argv_reserve(p, n + 1, p->limits.max_args);
		if (rv != 0)
			return rv;
		if (!quoted) {
			p->argv[n].data = line + start;
			p->argv[n].len = (uint32_t)(i - start);
		} else {
			if (!p->scratch) {
				p->scratch = malloc(p->limits.max_inline);
				if (!p->scratch)
					return -ENOMEM;
			}
			i = start;
			rv = split_quoted(line, end, &i, p->scratch + scratch_used,
					  &tok_len);
			if (rv != 0)
				return fail(p, "unbalanced quotes in request");
			p->argv[n].data = p->scratch + scratch_used;
			p->argv[n].len = (uint32_t)tok_len;
			scratch_used += tok_len;
			assert(scratch_used <= p->limits.max_inline);
		}
		p->argv[n].offset = 0;
		n++;
	}
	*argc = n;
	return 0;
}

/* An inline command: everything up to LF, bounded by max_inline. */
static int parse_inline(struct resp_parser *p, const uint8_t *cmd, size_t avail,
			struct resp_command *out, size_t *line_len)
{
	size_t limit = avail < p->limits.max_inline ? avail : p->limits.max_inline;
	const uint8_t *lf = NULL;
	size_t end, argc = 0;
	int rv;

	if (p->pos < limit)
		lf = memchr(cmd + p->pos, '\n', limit - p->pos);
	/*
	 * No one types a NUL: binary bytes before the end of the line are
	 * another protocol, most likely ringkv's native client (whose frame's
	 * u32 length holds a zero byte in its first four), which would wait
	 * for an answer while this waits for a newline. Refused at once.
	 */
	if (p->pos < limit &&
	    memchr(cmd + p->pos, '\0', (lf ? (size_t)(lf - cmd) : limit) - p->pos))
		return fail(p, "binary data in an inline command: this is a Redis "
			       "protocol (RESP) port");
	if (!lf) {
		if (avail >= p->limits.max_inline)
			return fail(p, "too big inline request");
		p->pos = avail;
		p->wanted = avail + 1;
		return RKV_EAGAIN;
	}
	end = (size_t)(lf - cmd);
	*line_len = end + 1;
	if (end > 0 && cmd[end - 1] == '\r')
		end--;
	rv = split_inline(p, cmd, end, &argc);
	if (rv != 0)
		return rv;
	out->argv = p->argv;
	out->argc = argc;
	out->is_inline = true;
	return 0;
}

int resp_parse(struct resp_parser *p, const uint8_t *buf, size_t len,
	       struct resp_command *out, size_t *consumed)
{
	size_t base = 0; /* start of the command in progress within buf */
	int64_t number;
	size_t next, line_len;
	int rv;

	assert(p != NULL);
	assert(out != NULL);
	assert(consumed != NULL);
	assert(buf != NULL || len == 0);
	*consumed = 0;
	if (p->state == RESP_STATE_ERROR)
		return RKV_EPROTO;
	/* Caller contract: the bytes already looked at are passed again. */
	assert(p->state == RESP_STATE_START || p->pos <= len);

	for (;;) {
		const uint8_t *cmd = buf + base;
		size_t avail = len - base;

		switch (p->state) {
		case RESP_STATE_START:
			p->pos = 0;
			p->args_done = 0;
			if (avail == 0) {
				p->wanted = 1;
				goto need_more;
			}
			if (cmd[0] != '*') {
				p->state = RESP_STATE_INLINE;
				break;
			}
			rv = read_number_line(cmd, avail, 1, &number, &next);
			if (rv == RKV_EAGAIN) {
				p->wanted = avail + 1;
				goto need_more;
			}
			if (rv != 0 || number > (int64_t)p->limits.max_args)
				return fail(p, "invalid multibulk length");
			if (number <= 0) {
				/* "*0", "*-1", "*-10": no command, skipped as Redis
				 * does for any count not above 0. */
				base += next;
				break;
			}
			p->args_expected = (uint32_t)number;
			p->pos = next;
			p->state = RESP_STATE_BULK_HEAD;
			break;

		case RESP_STATE_BULK_HEAD:
			if (p->pos >= avail) {
				p->wanted = p->pos + 1;
				goto need_more;
			}
			if (cmd[p->pos] != '$')
				return fail_type_byte(p, cmd[p->pos]);
			rv = read_number_line(cmd, avail, p->pos + 1, &number, &next);
			if (rv == RKV_EAGAIN) {
				p->wanted = avail + 1;
				goto need_more;
			}
			if (rv != 0 || number < 0)
				return fail(p, "invalid bulk length");
			if (number > (int64_t)p->limits.max_bulk)
				return fail_bulk_too_large(p, number);
			if (next + (uint64_t)number + 2 > p->limits.max_request)
				return fail(p, "request too large");
			rv = argv_reserve(p, (size_t)p->args_done + 1,
					  p->args_expected);
			if (rv != 0)
				return rv;
			p->argv[p->args_done].data = NULL;
			p->argv[p->args_done].len = (uint32_t)number;
			p->argv[p->args_done].offset = (uint32_t)next;
			p->bulk_len = (uint32_t)number;
			p->pos = next;
			p->state = RESP_STATE_BULK_DATA;
			break;

		case RESP_STATE_BULK_DATA:
			next = p->pos + p->bulk_len + 2;
			if (avail < next) {
				p->wanted = next;
				goto need_more;
			}
			if (cmd[next - 2] != '\r' || cmd[next - 1] != '\n')
				return fail(p, "expected CRLF after bulk data");
			p->pos = next;
			p->args_done++;
			if (p->args_done < p->args_expected) {
				p->state = RESP_STATE_BULK_HEAD;
				break;
			}
			for (size_t i = 0; i < p->args_done; i++)
				p->argv[i].data = cmd + p->argv[i].offset;
			out->argv = p->argv;
			out->argc = p->args_done;
			out->is_inline = false;
			*consumed = base + next;
			p->state = RESP_STATE_START;
			p->pos = 0;
			p->wanted = 1;
			return 0;

		case RESP_STATE_INLINE:
			rv = parse_inline(p, cmd, avail, out, &line_len);
			if (rv == RKV_EAGAIN)
				goto need_more;
			if (rv != 0)
				return rv;
			p->state = RESP_STATE_START;
			p->pos = 0;
			if (out->argc == 0) {
				/* An empty line: no command, as in Redis. */
				base += line_len;
				break;
			}
			*consumed = base + line_len;
			p->wanted = 1;
			return 0;

		case RESP_STATE_ERROR:
		default:
			return RKV_EPROTO;
		}
	}

need_more:
	*consumed = base;
	return RKV_EAGAIN;
}

/* ---- reply writer ---- */

static size_t u64_digits(uint64_t v)
{
	size_t n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

static size_t i64_digits(int64_t v)
{
	if (v < 0)
		return 1 + u64_digits((uint64_t)0 - (uint64_t)v);
	return u64_digits((uint64_t)v);
}

/* Writes the decimal form of v at dst; returns its length. */
static size_t put_i64(uint8_t *dst, int64_t v)
{
	uint64_t magnitude = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	size_t n = i64_digits(v), i = n;

	do {
		dst[--i] = (uint8_t)('0' + magnitude % 10);
		magnitude /= 10;
	} while (magnitude);
	if (v < 0)
		dst[0] = '-';
	return n;
}

static size_t put_u64(uint8_t *dst, uint64_t v)
{
	size_t n = u64_digits(v), i = n;

	do {
		dst[--i] = (uint8_t)('0' + v % 10);
		v /= 10;
	} while (v);
	return n;
}

static bool has_room(const struct resp_out *out, size_t need)
{
	assert(out != NULL);
	assert(out->len <= out->cap);
	return out->cap - out->len >= need;
}

size_t resp_size_simple(size_t text_len) { return 1 + text_len + 2; }
size_t resp_size_error(size_t text_len) { return 1 + text_len + 2; }
size_t resp_size_integer(int64_t value) { return 1 + i64_digits(value) + 2; }
size_t resp_size_null_bulk(void) { return 5; }
size_t resp_size_array(size_t count) { return 1 + u64_digits(count) + 2; }
size_t resp_size_null_array(void) { return 5; }

size_t resp_size_bulk(size_t data_len)
{
	return 1 + u64_digits(data_len) + 2 + data_len + 2;
}

static int write_line(struct resp_out *out, uint8_t type, const char *text,
		      size_t len)
{
	uint8_t *dst;

	assert(text != NULL || len == 0);
	if (!has_room(out, 1 + len + 2))
		return -ENOBUFS;
	dst = out->data + out->len;
	*dst++ = type;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		*dst++ = (uint8_t)(c == '\r' || c == '\n' ? ' ' : c);
	}
	*dst++ = '\r';
	*dst++ = '\n';
	out->len += 1 + len + 2;
	return 0;
}

int resp_write_simple(struct resp_out *out, const char *text, size_t len)
{
	return write_line(out, '+', text, len);
}

int resp_write_error(struct resp_out *out, const char *text, size_t len)
{
	return write_line(out, '-', text, len);
}

int resp_write_simple_str(struct resp_out *out, const char *text)
{
	return write_line(out, '+', text, strlen(text));
}

int resp_write_error_str(struct resp_out *out, const char *text)
{
	return write_line(out, '-', text, strlen(text));
}

int resp_write_integer(struct resp_out *out, int64_t value)
{
	uint8_t *dst;
	size_t n;

	if (!has_room(out, resp_size_integer(value)))
		return -ENOBUFS;
	dst = out->data + out->len;
	dst[0] = ':';
	n = 1 + put_i64(dst + 1, value);
	dst[n++] = '\r';
	dst[n++] = '\n';
	out->len += n;
	return 0;
}

/* "<type><count>\r\n" for a bulk or array header. */
static size_t put_header(uint8_t *dst, uint8_t type, uint64_t count)
{
	size_t n;

	dst[0] = type;
	n = 1 + put_u64(dst + 1, count);
	dst[n++] = '\r';
	dst[n++] = '\n';
	return n;
}

/* A bulk-like reply's payload after its header of `n` bytes at dst: the
 * bytes and the closing CRLF; the reply is then taken into out. */
static void put_body(struct resp_out *out, uint8_t *dst, size_t n, const void *data, size_t len)
{
	if (len)
		memcpy(dst + n, data, len);
	n += len;
	dst[n++] = '\r';
	dst[n++] = '\n';
	out->len += n;
}

int resp_write_bulk(struct resp_out *out, const void *data, size_t len)
{
	uint8_t *dst;
	size_t n;

	assert(data != NULL || len == 0);
	if (!has_room(out, resp_size_bulk(len)))
		return -ENOBUFS;
	dst = out->data + out->len;
	n = put_header(dst, '$', len);
	put_body(out, dst, n, data, len);
	return 0;
}

int resp_write_array(struct resp_out *out, size_t count)
{
	if (!has_room(out, resp_size_array(count)))
		return -ENOBUFS;
	out->len += put_header(out->data + out->len, '*', count);
	return 0;
}

static int write_raw(struct resp_out *out, const char *bytes, size_t len)
{
	if (!has_room(out, len))
		return -ENOBUFS;
	memcpy(out->data + out->len, bytes, len);
	out->len += len;
	return 0;
}

int resp_write_null_bulk(struct resp_out *out)
{
	return write_raw(out, "$-1\r\n", 5);
}

int resp_write_null_array(struct resp_out *out)
{
	return write_raw(out, "*-1\r\n", 5);
}

/* ---- RESP3 ---- */

size_t resp_size_aggregate(size_t count) { return resp_size_array(count); }
size_t resp_size_null3(void) { return 3; }

size_t resp_size_verbatim(size_t data_len)
{
	return resp_size_bulk(data_len + 4);
}

int resp_write_aggregate(struct resp_out *out, uint8_t type, size_t count)
{
	if (!has_room(out, resp_size_aggregate(count)))
		return -ENOBUFS;
	out->len += put_header(out->data + out->len, type, count);
	return 0;
}

int resp_write_null3(struct resp_out *out)
{
	return write_raw(out, "_\r\n", 3);
}

int resp_write_bool(struct resp_out *out, bool value)
{
	return write_raw(out, value ? "#t\r\n" : "#f\r\n", 4);
}

int resp_write_double(struct resp_out *out, const char *text, size_t len)
{
	return write_line(out, ',', text, len);
}

int resp_write_bignum(struct resp_out *out, const char *text, size_t len)
{
	return write_line(out, '(', text, len);
}

int resp_write_verbatim(struct resp_out *out, const char *format, const void *data, size_t len)
{
	uint8_t *dst;
	size_t n;

	assert(format != NULL && strlen(format) == 3);
	assert(data != NULL || len == 0);
	if (!has_room(out, resp_size_verbatim(len)))
		return -ENOBUFS;
	dst = out->data + out->len;
	n = put_header(dst, '=', len + 4);
	memcpy(dst + n, format, 3);
	dst[n + 3] = ':';
	n += 4;
	put_body(out, dst, n, data, len);
	return 0;
}
