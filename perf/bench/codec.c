/*
 * Protocol-independent parts of the bench codecs: status and op names and the
 * dispatch on --protocol. The protocols themselves live in codec_native.c and
 * codec_resp.c.
 */
#include "perf/bench/codec.h"

#define RESP_DIGITS 20 /* enough for any size_t in decimal */

const char *codec_status_name(enum bench_status status)
{
	static const char *const names[] = {
#define BENCH_STATUS_NAME(name, text) text,
		BENCH_STATUSES(BENCH_STATUS_NAME)
#undef BENCH_STATUS_NAME
	};

	if ((unsigned)status >= BENCH_STATUS_COUNT)
		return "?";
	return names[status];
}

const char *codec_op_name(enum bench_op op)
{
	return op == BENCH_OP_GET ? "get" : "put";
}

size_t codec_request_size_max(enum bench_protocol protocol, size_t key_size, size_t value_size)
{
	if (protocol == BENCH_PROTOCOL_NATIVE) {
		/* length prefix, 3 tags, id varint, 3 length varints. */
		return 4 + 3 + 10 + 3 * 10 + key_size + value_size;
	}
	/* "*3\r\n$3\r\nSET\r\n$<k>\r\n<key>\r\n$<v>\r\n<value>\r\n" */
	return 4 + 9 + 2 * (1 + RESP_DIGITS + 2 + 2) + key_size + value_size;
}

size_t codec_encode(enum bench_protocol protocol, char *out, uint64_t id, enum bench_op op,
		    const char *key, size_t key_len, const char *value, size_t value_len)
{
	if (protocol == BENCH_PROTOCOL_NATIVE)
		return native_encode(out, id, op, key, key_len, value, value_len);
	return resp_encode(out, op, key, key_len, value, value_len);
}

int codec_parse(enum bench_protocol protocol, const char *buf, size_t len,
		struct bench_reply *reply, size_t *consumed)
{
	if (protocol == BENCH_PROTOCOL_NATIVE)
		return native_parse(buf, len, reply, consumed);
	return resp_parse(buf, len, reply, consumed);
}
