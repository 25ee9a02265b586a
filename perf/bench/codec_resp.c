/*
 * RESP2 for ringkv-bench: requests are multibulk SET/GET; replies are read
 * one at a time in order. A nil bulk ($-1) is a not-found GET, not an error;
 * an error reply (-ERR ...) counts as RESP_ERROR. Arrays are not expected for
 * SET/GET and are treated as a protocol error.
 */
#include "perf/bench/codec.h"

#include <stdio.h>
#include <string.h>

#include "core/errors.h"

/* Lines longer than this without CRLF are a protocol error. */
#define RESP_MAX_LINE 4096

static size_t put_bulk(char *out, const char *data, size_t len)
{
	int n = sprintf(out, "$%zu\r\n", len);

	memcpy(out + n, data, len);
	memcpy(out + n + len, "\r\n", 2);
	return (size_t)n + len + 2;
}

size_t resp_encode(char *out, enum bench_op op, const char *key, size_t key_len,
		   const char *value, size_t value_len)
{
	size_t n;

	if (op == BENCH_OP_GET) {
		memcpy(out, "*2\r\n$3\r\nGET\r\n", 13);
		n = 13;
		n += put_bulk(out + n, key, key_len);
		return n;
	}
	memcpy(out, "*3\r\n$3\r\nSET\r\n", 13);
	n = 13;
	n += put_bulk(out + n, key, key_len);
	n += put_bulk(out + n, value, value_len);
	return n;
}

/* Length of the line at buf (CRLF excluded), or RKV_EAGAIN / RKV_EPROTO. */
static long line_len(const char *buf, size_t len)
{
	const char *cr;
	size_t scan = len < RESP_MAX_LINE ? len : RESP_MAX_LINE;

	cr = memchr(buf, '\r', scan);
	if (cr == NULL)
		return len < RESP_MAX_LINE ? RKV_EAGAIN : RKV_EPROTO;
	if ((size_t)(cr - buf) + 1 >= len)
		return RKV_EAGAIN;
	if (cr[1] != '\n')
		return RKV_EPROTO;
	return cr - buf;
}

/* Parse the signed decimal in buf[1..line) (after the type byte). */
static int parse_int(const char *buf, long line, long long *value)
{
	long long v = 0;
	long i = 1;
	int negative = 0;

	if (i < line && buf[i] == '-') {
		negative = 1;
		i++;
	}
	if (i == line)
		return RKV_EPROTO;
	for (; i < line; i++) {
		if (buf[i] < '0' || buf[i] > '9' || v > (long long)CODEC_MAX_FRAME)
			return RKV_EPROTO;
		v = v * 10 + (buf[i] - '0');
	}
	*value = negative ? -v : v;
	return 0;
}

int resp_parse(const char *buf, size_t len, struct bench_reply *reply, size_t *consumed)
{
	long line;
	long long bulk;
	size_t total;

	*consumed = 0;
	if (len == 0)
		return RKV_EAGAIN;
	line = line_len(buf, len);
	if (line < 0)
		return (int)line;
	reply->id = 0;
	switch (buf[0]) {
	case '+':
	case ':':
		reply->status = BENCH_STATUS_OK;
		*consumed = (size_t)line + 2;
		return 0;
	case '-':
		reply->status = BENCH_STATUS_RESP_ERROR;
		*consumed = (size_t)line + 2;
		return 0;
	case '$':
		if (parse_int(buf, line, &bulk) != 0 || bulk < -1)
			return RKV_EPROTO;
		if (bulk == -1) {
			reply->status = BENCH_STATUS_NOT_FOUND;
			*consumed = (size_t)line + 2;
			return 0;
		}
		total = (size_t)line + 2 + (size_t)bulk + 2;
		if (len < total) {
			*consumed = total;
			return RKV_EAGAIN;
		}
		if (buf[total - 2] != '\r' || buf[total - 1] != '\n')
			return RKV_EPROTO;
		reply->status = BENCH_STATUS_OK;
		*consumed = total;
		return 0;
	default:
		return RKV_EPROTO;
	}
}
