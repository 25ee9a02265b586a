/*
 * The ringkv native protocol, hand-encoded: frame = u32 little-endian length
 * + one protobuf message. Requests are written field by field (Request.id = 1
 * varint, get = 2 / put = 3 sub-messages with key = 1 and value = 2 bytes).
 * Responses are decoded in full protobuf generality: any field order, unknown
 * fields of every wire type skipped, repeated scalars last-one-wins, so a
 * newer server that adds fields still parses.
 */
#include "perf/bench/codec.h"

#include <string.h>

#include "core/errors.h"

enum wire_type {
	WIRE_VARINT = 0,
	WIRE_FIXED64 = 1,
	WIRE_LEN = 2,
	WIRE_FIXED32 = 5,
};

#define TAG(field, wire) ((char)(((field) << 3) | (wire)))

static size_t put_varint(char *out, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		out[n++] = (char)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (char)v;
	return n;
}

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static size_t put_bytes_field(char *out, int field, const char *data, size_t len)
{
	size_t n = 0;

	out[n++] = TAG(field, WIRE_LEN);
	n += put_varint(out + n, len);
	memcpy(out + n, data, len);
	return n + len;
}

size_t native_encode(char *out, uint64_t id, enum bench_op op, const char *key, size_t key_len,
		     const char *value, size_t value_len)
{
	size_t inner, body, n = 4;

	inner = 1 + varint_len(key_len) + key_len;
	if (op == BENCH_OP_PUT)
		inner += 1 + varint_len(value_len) + value_len;
	out[n++] = TAG(1, WIRE_VARINT);
	n += put_varint(out + n, id);
	out[n++] = op == BENCH_OP_GET ? TAG(2, WIRE_LEN) : TAG(3, WIRE_LEN);
	n += put_varint(out + n, inner);
	n += put_bytes_field(out + n, 1, key, key_len);
	if (op == BENCH_OP_PUT)
		n += put_bytes_field(out + n, 2, value, value_len);
	body = n - 4;
	out[0] = (char)(body & 0xff);
	out[1] = (char)((body >> 8) & 0xff);
	out[2] = (char)((body >> 16) & 0xff);
	out[3] = (char)((body >> 24) & 0xff);
	return n;
}

/* Read a varint from p[*pos..end); 0 or RKV_EPROTO (truncated or > 10 bytes). */
static int get_varint(const unsigned char *p, size_t end, size_t *pos, uint64_t *value)
{
	uint64_t v = 0;
	unsigned shift;

	for (shift = 0; shift < 70 && *pos < end; shift += 7) {
		unsigned char b = p[(*pos)++];

		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*value = v;
			return 0;
		}
	}
	return RKV_EPROTO;
}

int native_parse(const char *buf, size_t len, struct bench_reply *reply, size_t *consumed)
{
	const unsigned char *p = (const unsigned char *)buf;
	size_t frame, pos, end;
	uint64_t status = 0;

	*consumed = 0;
	if (len < 4)
		return RKV_EAGAIN;
	frame = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
	if (frame > CODEC_MAX_FRAME)
		return RKV_EPROTO;
	if (len < 4 + frame) {
		*consumed = 4 + frame;
		return RKV_EAGAIN;
	}
	reply->id = 0;
	pos = 4;
	end = 4 + frame;
	while (pos < end) {
		uint64_t key, v;
		int rv = get_varint(p, end, &pos, &key);

		if (rv != 0)
			return rv;
		switch (key & 7) {
		case WIRE_VARINT:
			if (get_varint(p, end, &pos, &v) != 0)
				return RKV_EPROTO;
			if (key >> 3 == 1)
				reply->id = v;
			else if (key >> 3 == 2)
				status = v;
			break;
		case WIRE_FIXED64:
			if (end - pos < 8)
				return RKV_EPROTO;
			pos += 8;
			break;
		case WIRE_LEN:
			/* value (3) and error (4) are not needed by the bench. */
			if (get_varint(p, end, &pos, &v) != 0 || v > end - pos)
				return RKV_EPROTO;
			pos += v;
			break;
		case WIRE_FIXED32:
			if (end - pos < 4)
				return RKV_EPROTO;
			pos += 4;
			break;
		default: /* groups (3, 4) are not proto3; 6 and 7 do not exist */
			return RKV_EPROTO;
		}
	}
	reply->status = status <= BENCH_STATUS_INTERNAL ? (enum bench_status)status
							: BENCH_STATUS_UNKNOWN;
	*consumed = end;
	return 0;
}
