/*
 * Unit tests for the bench codecs. The hand-written native encoder and
 * decoder are checked against nanopb's generated code for proto/ringkv.proto,
 * so the two cannot drift apart silently; RESP is checked byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pb_decode.h>
#include <pb_encode.h>

#include "core/errors.h"
#include "perf/bench/codec.h"
#include "ringkv.pb.h"

struct captured {
	char data[256];
	size_t len;
};

static bool capture_bytes(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
	struct captured *c = *arg;

	c->len = stream->bytes_left;
	if (c->len > sizeof(c->data))
		return false;
	return pb_read(stream, (pb_byte_t *)c->data, c->len);
}

static bool emit_bytes(pb_ostream_t *stream, const pb_field_t *field, void *const *arg)
{
	const char *s = *arg;

	return pb_encode_tag_for_field(stream, field) &&
	       pb_encode_string(stream, (const pb_byte_t *)s, strlen(s));
}

static uint32_t frame_len(const char *buf)
{
	const unsigned char *p = (const unsigned char *)buf;

	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_native_put_decodes_with_nanopb(void **state)
{
	char buf[512];
	struct captured key = { .len = 0 }, value = { .len = 0 };
	ringkv_Request req = ringkv_Request_init_zero;
	pb_istream_t in;
	size_t n;

	n = native_encode(buf, 0x123456789abcull, BENCH_OP_PUT, "key:0042", 8, "hello world", 11);
	assert_true(n <= codec_request_size_max(BENCH_PROTOCOL_NATIVE, 8, 11));
	assert_int_equal(frame_len(buf), n - 4);
	/* nanopb clears a oneof member's callbacks unless the member is
	 * already selected, so select it before decoding. */
	req.which_op = ringkv_Request_put_tag;
	req.op.put.key.funcs.decode = capture_bytes;
	req.op.put.key.arg = &key;
	req.op.put.value.funcs.decode = capture_bytes;
	req.op.put.value.arg = &value;
	in = pb_istream_from_buffer((const pb_byte_t *)buf + 4, n - 4);
	assert_true(pb_decode_ex(&in, ringkv_Request_fields, &req, PB_DECODE_NOINIT));
	assert_true(req.id == 0x123456789abcull);
	assert_int_equal(req.which_op, ringkv_Request_put_tag);
	assert_int_equal(key.len, 8);
	assert_memory_equal(key.data, "key:0042", 8);
	assert_int_equal(value.len, 11);
	assert_memory_equal(value.data, "hello world", 11);
}

static void test_native_get_decodes_with_nanopb(void **state)
{
	char buf[512];
	struct captured key = { .len = 0 };
	ringkv_Request req = ringkv_Request_init_zero;
	pb_istream_t in;
	size_t n;

	n = native_encode(buf, 1, BENCH_OP_GET, "key:0000000000000007", 20, NULL, 0);
	req.which_op = ringkv_Request_get_tag;
	req.op.get.key.funcs.decode = capture_bytes;
	req.op.get.key.arg = &key;
	in = pb_istream_from_buffer((const pb_byte_t *)buf + 4, n - 4);
	assert_true(pb_decode_ex(&in, ringkv_Request_fields, &req, PB_DECODE_NOINIT));
	assert_true(req.id == 1);
	assert_int_equal(req.which_op, ringkv_Request_get_tag);
	assert_int_equal(key.len, 20);
	assert_memory_equal(key.data, "key:0000000000000007", 20);
}

/* A framed Response encoded by nanopb, plus optional extra body bytes. */
static size_t frame_response(char *buf, size_t cap, uint64_t id, ringkv_Status status,
			     const char *value, const char *error, const char *extra,
			     size_t extra_len)
{
	ringkv_Response resp = ringkv_Response_init_zero;
	pb_ostream_t out = pb_ostream_from_buffer((pb_byte_t *)buf + 4, cap - 4);
	size_t body;

	resp.id = id;
	resp.status = status;
	if (value != NULL) {
		resp.value.funcs.encode = emit_bytes;
		resp.value.arg = (void *)value;
	}
	if (error != NULL) {
		resp.error.funcs.encode = emit_bytes;
		resp.error.arg = (void *)error;
	}
	assert_true(pb_encode(&out, ringkv_Response_fields, &resp));
	body = out.bytes_written;
	if (extra_len != 0)
		memcpy(buf + 4 + body, extra, extra_len);
	body += extra_len;
	buf[0] = (char)(body & 0xff);
	buf[1] = (char)(body >> 8 & 0xff);
	buf[2] = (char)(body >> 16 & 0xff);
	buf[3] = (char)(body >> 24 & 0xff);
	return 4 + body;
}

static void test_native_parse_nanopb_responses(void **state)
{
	char buf[1024];
	struct bench_reply reply;
	size_t n, consumed;

	n = frame_response(buf, sizeof(buf), 77, ringkv_Status_OK, "some value", NULL, NULL, 0);
	assert_int_equal(native_parse(buf, n, &reply, &consumed), 0);
	assert_int_equal(consumed, n);
	assert_true(reply.id == 77);
	assert_int_equal(reply.status, BENCH_STATUS_OK);

	n = frame_response(buf, sizeof(buf), UINT64_MAX, ringkv_Status_NOT_LEADER, NULL,
			   "leader is node 3", NULL, 0);
	assert_int_equal(native_parse(buf, n, &reply, &consumed), 0);
	assert_true(reply.id == UINT64_MAX);
	assert_int_equal(reply.status, BENCH_STATUS_NOT_LEADER);

	n = frame_response(buf, sizeof(buf), 5, ringkv_Status_NOT_FOUND, NULL, NULL, NULL, 0);
	assert_int_equal(native_parse(buf, n, &reply, &consumed), 0);
	assert_int_equal(reply.status, BENCH_STATUS_NOT_FOUND);
}

static void test_native_parse_skips_unknown_fields(void **state)
{
	/* field 9 varint, 10 fixed64, 11 fixed32, 12 bytes, then status 99 */
	static const char extra[] = { 9 << 3 | 0, (char)0x96, 0x01,
				      10 << 3 | 1, 1, 2, 3, 4, 5, 6, 7, 8,
				      11 << 3 | 5, 1, 2, 3, 4,
				      12 << 3 | 2, 3, 'a', 'b', 'c',
				      2 << 3 | 0, 99 };
	char buf[256];
	struct bench_reply reply;
	size_t n, consumed;

	n = frame_response(buf, sizeof(buf), 9, ringkv_Status_OK, NULL, NULL, extra, sizeof(extra));
	assert_int_equal(native_parse(buf, n, &reply, &consumed), 0);
	assert_true(reply.id == 9);
	assert_int_equal(reply.status, BENCH_STATUS_UNKNOWN);
	assert_int_equal(consumed, n);
}

static void test_native_parse_partial_and_bad(void **state)
{
	char buf[256];
	struct bench_reply reply;
	size_t n, consumed, i;

	n = frame_response(buf, sizeof(buf), 3, ringkv_Status_OK, "v", NULL, NULL, 0);
	for (i = 0; i < n; i++) {
		assert_int_equal(native_parse(buf, i, &reply, &consumed), RKV_EAGAIN);
		assert_true(consumed == (i < 4 ? 0 : n));
	}
	/* A length-delimited field running past the frame. */
	memcpy(buf, "\x03\x00\x00\x00\x1a\x05\x61", 7);
	assert_int_equal(native_parse(buf, 7, &reply, &consumed), RKV_EPROTO);
	/* A group wire type. */
	memcpy(buf, "\x01\x00\x00\x00\x0b", 5);
	assert_int_equal(native_parse(buf, 5, &reply, &consumed), RKV_EPROTO);
	/* A frame above the limit is refused before anything is read. */
	memcpy(buf, "\xff\xff\xff\x7f", 4);
	assert_int_equal(native_parse(buf, 4, &reply, &consumed), RKV_EPROTO);
}

static void test_resp_encode(void **state)
{
	char buf[256];
	size_t n;

	n = resp_encode(buf, BENCH_OP_PUT, "key:1", 5, "abc", 3);
	assert_int_equal(n, strlen("*3\r\n$3\r\nSET\r\n$5\r\nkey:1\r\n$3\r\nabc\r\n"));
	assert_memory_equal(buf, "*3\r\n$3\r\nSET\r\n$5\r\nkey:1\r\n$3\r\nabc\r\n", n);
	assert_true(n <= codec_request_size_max(BENCH_PROTOCOL_RESP, 5, 3));
	n = resp_encode(buf, BENCH_OP_GET, "key:1", 5, NULL, 0);
	assert_memory_equal(buf, "*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n", n);
}

static void expect_resp(const char *wire, int rv, enum bench_status status, size_t consumed)
{
	struct bench_reply reply;
	size_t got;

	assert_int_equal(resp_parse(wire, strlen(wire), &reply, &got), rv);
	if (rv == 0)
		assert_int_equal(reply.status, status);
	assert_int_equal(got, consumed);
}

static void test_resp_parse(void **state)
{
	expect_resp("+OK\r\n", 0, BENCH_STATUS_OK, 5);
	expect_resp("+OK\r\n+OK\r\n", 0, BENCH_STATUS_OK, 5);
	expect_resp("$-1\r\n", 0, BENCH_STATUS_NOT_FOUND, 5);
	expect_resp("$5\r\nhello\r\n", 0, BENCH_STATUS_OK, 11);
	expect_resp("$0\r\n\r\n", 0, BENCH_STATUS_OK, 6);
	expect_resp("-ERR wrong type\r\n", 0, BENCH_STATUS_RESP_ERROR, 17);
	expect_resp(":12\r\n", 0, BENCH_STATUS_OK, 5);
	expect_resp("", RKV_EAGAIN, 0, 0);
	expect_resp("+O", RKV_EAGAIN, 0, 0);
	expect_resp("+OK\r", RKV_EAGAIN, 0, 0);
	expect_resp("$5\r\nhel", RKV_EAGAIN, 0, 11);
	expect_resp("$5\r\nhello\r", RKV_EAGAIN, 0, 11);
	expect_resp("$5\r\nhelloXY", RKV_EPROTO, 0, 0);
	expect_resp("$x\r\n", RKV_EPROTO, 0, 0);
	expect_resp("$-2\r\n", RKV_EPROTO, 0, 0);
	expect_resp("$99999999999\r\n", RKV_EPROTO, 0, 0);
	expect_resp("*1\r\n", RKV_EPROTO, 0, 0);
	expect_resp("+OK\rX", RKV_EPROTO, 0, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_native_put_decodes_with_nanopb),
		cmocka_unit_test(test_native_get_decodes_with_nanopb),
		cmocka_unit_test(test_native_parse_nanopb_responses),
		cmocka_unit_test(test_native_parse_skips_unknown_fields),
		cmocka_unit_test(test_native_parse_partial_and_bad),
		cmocka_unit_test(test_resp_encode),
		cmocka_unit_test(test_resp_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
