/*
 * Tests of proto/frame.c: round trips, frame_peek on every kind of partial
 * input, each documented decode error, and a bounded mutation loop that
 * feeds damaged frames to the decoders (exact-size heap copies, so ASan sees
 * any read past the end).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/errors.h"
#include "proto/frame.h"

static struct frame_limits limits;

static int setup(void **state)
{
	(void)state;
	frame_limits_default(&limits);
	return 0;
}

static struct frame_slice slice_str(const char *s)
{
	return (struct frame_slice){ (const uint8_t *)s, (uint32_t)strlen(s) };
}

static void assert_slice_eq(struct frame_slice s, const void *data, size_t len)
{
	assert_int_equal(s.len, len);
	if (len)
		assert_memory_equal(s.data, data, len);
}

/* Decodes a whole frame produced by frame_encode_request. */
static int decode_framed_request(const uint8_t *buf, int n, struct frame_request *out)
{
	uint32_t plen = 0;

	assert_true(n >= FRAME_HEADER_SIZE);
	assert_int_equal(frame_peek(buf, (size_t)n, &limits, &plen), 0);
	assert_int_equal(plen + FRAME_HEADER_SIZE, n);
	return frame_decode_request(buf + FRAME_HEADER_SIZE, plen, &limits, out,
				    NULL, 0);
}

static void test_limits_default(void **state)
{
	(void)state;
	assert_int_equal(limits.max_frame, 4u << 20);
	assert_int_equal(limits.max_key, 4u << 10);
	assert_int_equal(limits.max_value, 1u << 20);
}

static void test_request_round_trip(void **state)
{
	static const enum frame_op ops[] = { FRAME_OP_GET, FRAME_OP_PUT, FRAME_OP_DELETE };
	uint8_t buf[256];

	(void)state;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct frame_request in = {
			.id = UINT64_MAX - i,
			.op = ops[i],
			.key = slice_str("user:42"),
			.value = ops[i] == FRAME_OP_PUT ? slice_str("hello\0world")
							: (struct frame_slice){ 0 },
		};
		struct frame_request out;
		int n = frame_encode_request(&in, buf, sizeof(buf));

		assert_true(n > 0);
		assert_true((size_t)n <= frame_request_max_size(&in));
		assert_int_equal(decode_framed_request(buf, n, &out), 0);
		assert_true(out.id == in.id);
		assert_int_equal(out.op, in.op);
		assert_slice_eq(out.key, "user:42", 7);
		assert_slice_eq(out.value, in.value.data, in.value.len);
		/* Zero-copy: the key points into the frame. */
		assert_true(out.key.data > buf && out.key.data < buf + n);
	}
}

static void test_request_binary_and_empty_value(void **state)
{
	uint8_t key[256], buf[600];
	struct frame_request in = { .id = 0, .op = FRAME_OP_PUT }, out;
	int n;

	(void)state;
	for (int i = 0; i < 256; i++)
		key[i] = (uint8_t)i;
	in.key = (struct frame_slice){ key, sizeof(key) };
	n = frame_encode_request(&in, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(decode_framed_request(buf, n, &out), 0);
	assert_int_equal(out.op, FRAME_OP_PUT);
	assert_slice_eq(out.key, key, sizeof(key));
	assert_int_equal(out.value.len, 0);
	assert_true(out.id == 0);
}

static void test_response_round_trip(void **state)
{
	uint8_t buf[256];
	struct frame_response in = {
		.id = 77,
		.status = 8,
		.value = slice_str("v\x01v"),
		.error = "disk on fire",
	};
	struct frame_slice value, error;
	uint64_t id;
	int status;
	uint32_t plen;
	int n;

	(void)state;
	n = frame_encode_response(&in, buf, sizeof(buf));
	assert_true(n > 0);
	assert_true((size_t)n <= frame_response_max_size(&in));
	assert_int_equal(frame_peek(buf, (size_t)n, &limits, &plen), 0);
	assert_int_equal(plen + FRAME_HEADER_SIZE, n);
	assert_int_equal(frame_decode_response(buf + 4, plen, &id, &status, &value,
					       &error), 0);
	assert_true(id == 77);
	assert_int_equal(status, 8);
	assert_slice_eq(value, "v\x01v", 3);
	assert_slice_eq(error, "disk on fire", 12);

	/* All defaults: an empty payload, which decodes to id 0, OK. */
	in = (struct frame_response){ 0 };
	n = frame_encode_response(&in, buf, sizeof(buf));
	assert_int_equal(n, FRAME_HEADER_SIZE);
	assert_int_equal(frame_decode_response(buf + 4, 0, &id, &status, &value,
					       &error), 0);
	assert_true(id == 0);
	assert_int_equal(status, 0);
	assert_int_equal(value.len, 0);
	assert_int_equal(error.len, 0);
}

/* Request.no_forward, GetRequest.stale, ScanRequest.stale and
 * Response.leader_hint: encoded when set, absent (false, 0) otherwise, and a
 * stale flag never leaks from one op to another. */
static void test_forward_fields(void **state)
{
	static const enum frame_op ops[] = { FRAME_OP_GET, FRAME_OP_PUT, FRAME_OP_DELETE,
					     FRAME_OP_SCAN };
	uint8_t buf[256];
	struct frame_response resp = { .id = 5, .status = 6, .leader_hint = 0x123456789aULL };
	struct frame_slice value, error;
	uint64_t id, hint;
	int status, n;

	(void)state;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		for (int bits = 0; bits < 4; bits++) {
			struct frame_request in = {
				.id = 9,
				.op = ops[i],
				.key = slice_str("k"),
				.no_forward = (bits & 1) != 0,
				.stale = (bits & 2) != 0,
			}, out;
			bool has_stale = ops[i] == FRAME_OP_GET || ops[i] == FRAME_OP_SCAN;

			n = frame_encode_request(&in, buf, sizeof(buf));
			assert_true(n > 0);
			assert_true((size_t)n <= frame_request_max_size(&in));
			assert_int_equal(decode_framed_request(buf, n, &out), 0);
			assert_int_equal(out.no_forward, in.no_forward);
			assert_int_equal(out.stale, in.stale && has_stale);
		}
	}
	n = frame_encode_response(&resp, buf, sizeof(buf));
	assert_true(n > 0 && (size_t)n <= frame_response_max_size(&resp));
	assert_int_equal(frame_decode_response(buf + 4, (size_t)n - 4, &id, &status, &value,
					       &error), 0);
	assert_int_equal(status, 6);
	assert_int_equal(frame_decode_response_hint(buf + 4, (size_t)n - 4, &hint), 0);
	assert_true(hint == 0x123456789aULL);
	resp.leader_hint = 0;
	n = frame_encode_response(&resp, buf, sizeof(buf));
	assert_int_equal(frame_decode_response_hint(buf + 4, (size_t)n - 4, &hint), 0);
	assert_true(hint == 0);
	/* Damaged bytes are refused, not read. */
	assert_int_equal(frame_decode_response_hint((const uint8_t *)"\x30", 1, &hint),
			 RKV_EPROTO);
}

static void test_scan_request_round_trip(void **state)
{
	static const uint32_t limits_in[] = { 7, 0, FRAME_SCAN_MAX_LIMIT,
					      FRAME_SCAN_MAX_LIMIT + 1, UINT32_MAX };
	static const uint32_t limits_out[] = { 7, FRAME_SCAN_DEFAULT_LIMIT,
					       FRAME_SCAN_MAX_LIMIT, FRAME_SCAN_MAX_LIMIT,
					       FRAME_SCAN_MAX_LIMIT };
	uint8_t buf[256];

	(void)state;
	for (size_t i = 0; i < sizeof(limits_in) / sizeof(limits_in[0]); i++) {
		struct frame_request in = {
			.id = 40 + i,
			.op = FRAME_OP_SCAN,
			.key = slice_str("user:\0042"),
			.end = slice_str("user:9"),
			.limit = limits_in[i],
		};
		struct frame_request out;
		int n = frame_encode_request(&in, buf, sizeof(buf));

		assert_true(n > 0);
		assert_true((size_t)n <= frame_request_max_size(&in));
		assert_int_equal(decode_framed_request(buf, n, &out), 0);
		assert_true(out.id == in.id);
		assert_int_equal(out.op, FRAME_OP_SCAN);
		assert_slice_eq(out.key, in.key.data, in.key.len);
		assert_slice_eq(out.end, "user:9", 6);
		assert_int_equal(out.value.len, 0);
		assert_int_equal(out.limit, limits_out[i]);
		/* Zero-copy: start and end point into the frame. */
		assert_true(out.key.data > buf && out.key.data < buf + n);
		assert_true(out.end.data > buf && out.end.data < buf + n);
	}

	/* Empty start and end: the whole key space, which is not an error. */
	{
		struct frame_request in = { .id = 9, .op = FRAME_OP_SCAN }, out;
		int n = frame_encode_request(&in, buf, sizeof(buf));

		assert_true(n > 0);
		assert_int_equal(decode_framed_request(buf, n, &out), 0);
		assert_int_equal(out.op, FRAME_OP_SCAN);
		assert_int_equal(out.key.len, 0);
		assert_int_equal(out.end.len, 0);
		assert_int_equal(out.limit, FRAME_SCAN_DEFAULT_LIMIT);
		/* Empty slices are not NULL: callers may memcpy them. */
		assert_non_null(out.key.data);
		assert_non_null(out.end.data);
		assert_non_null(out.value.data);
	}
}

static void test_scan_request_too_large(void **state)
{
	size_t cap = 2 * limits.max_key + 64;
	uint8_t *key = malloc(limits.max_key + 1), *buf = malloc(cap);
	struct frame_request in = { .id = 31, .op = FRAME_OP_SCAN }, out;
	char err[128];
	uint32_t plen;
	int n;

	(void)state;
	assert_non_null(key);
	assert_non_null(buf);
	memset(key, 'k', limits.max_key + 1);

	/* Both at the limit: fine. */
	in.key = (struct frame_slice){ key, limits.max_key };
	in.end = (struct frame_slice){ key, limits.max_key };
	n = frame_encode_request(&in, buf, cap);
	assert_true(n > 0);
	assert_int_equal(decode_framed_request(buf, n, &out), 0);

	/* Start one byte over. */
	in.key.len = limits.max_key + 1;
	n = frame_encode_request(&in, buf, cap);
	assert_true(n > 0);
	assert_int_equal(frame_peek(buf, (size_t)n, &limits, &plen), 0);
	assert_int_equal(frame_decode_request(buf + 4, plen, &limits, &out, err, sizeof(err)),
			 RKV_ETOOLARGE);
	assert_true(out.id == 31);
	assert_non_null(strstr(err, "key"));

	/* End one byte over. */
	in.key.len = 1;
	in.end.len = limits.max_key + 1;
	n = frame_encode_request(&in, buf, cap);
	assert_true(n > 0);
	assert_int_equal(frame_peek(buf, (size_t)n, &limits, &plen), 0);
	assert_int_equal(frame_decode_request(buf + 4, plen, &limits, &out, err, sizeof(err)),
			 RKV_ETOOLARGE);
	assert_true(out.id == 31);
	assert_non_null(strstr(err, "end key"));
	free(key);
	free(buf);
}

struct pair_sink {
	const uint8_t *payload; /* the frame being decoded */
	size_t payload_len;
	size_t count;
	size_t stop_at;         /* stop decoding (code 42) at this pair; 0 = never */
	const struct frame_kv *want;
};

static int check_pair(void *arg, const struct frame_kv *pair)
{
	struct pair_sink *sink = arg;
	const struct frame_kv *want = &sink->want[sink->count];

	assert_slice_eq(pair->key, want->key.data, want->key.len);
	assert_slice_eq(pair->value, want->value.data, want->value.len);
	/* Zero-copy: both point into the payload. */
	if (pair->key.len)
		assert_true(pair->key.data >= sink->payload &&
			    pair->key.data + pair->key.len <= sink->payload + sink->payload_len);
	if (pair->value.len)
		assert_true(pair->value.data >= sink->payload &&
			    pair->value.data + pair->value.len <=
				    sink->payload + sink->payload_len);
	sink->count++;
	if (sink->stop_at && sink->count == sink->stop_at)
		return 42;
	return 0;
}

static void test_scan_response_many_pairs(void **state)
{
	enum { PAIRS = 5000 };
	struct frame_kv *pairs = calloc(PAIRS, sizeof(*pairs));
	uint8_t (*keys)[16] = calloc(PAIRS, sizeof(*keys));
	static uint8_t big_value[300];
	struct frame_response in = { .id = 5, .status = 0 };
	struct frame_slice value, error;
	struct pair_sink sink = { 0 };
	size_t max, exact_sum = 0;
	uint8_t *buf;
	uint64_t id;
	int status, n;
	uint32_t plen;

	(void)state;
	assert_non_null(pairs);
	assert_non_null(keys);
	memset(big_value, 0xab, sizeof(big_value));
	for (size_t i = 0; i < PAIRS; i++) {
		int kl = snprintf((char *)keys[i], sizeof(keys[i]), "key-%06zu", i);

		pairs[i].key = (struct frame_slice){ keys[i], (uint32_t)kl };
		/* Empty, short and 300-byte values; one empty key. */
		pairs[i].value = (struct frame_slice){ big_value, (uint32_t)(i % 3 == 0 ? 0 :
							     i % 3 == 1 ? 7 : 300) };
		exact_sum += kl + pairs[i].value.len;
	}
	pairs[0].key.len = 0;
	in.pairs = pairs;
	in.pair_count = PAIRS;
	max = frame_response_max_size(&in);
	assert_true(max >= exact_sum);
	buf = malloc(max);
	assert_non_null(buf);
	n = frame_encode_response(&in, buf, max);
	assert_true(n > 0 && (size_t)n <= max);
	/* The bound is within the frame limit, as a server filling it needs. */
	assert_true((size_t)n - FRAME_HEADER_SIZE <= limits.max_frame);
	/* One byte short of the exact size fails cleanly. */
	assert_int_equal(frame_encode_response(&in, buf, (size_t)n - 1), RKV_ETOOLARGE);
	n = frame_encode_response(&in, buf, max);

	assert_int_equal(frame_peek(buf, (size_t)n, &limits, &plen), 0);
	sink = (struct pair_sink){ .payload = buf + 4, .payload_len = plen, .want = pairs };
	assert_int_equal(frame_decode_response_pairs(buf + 4, plen, &id, &status, &value,
						     &error, check_pair, &sink), 0);
	assert_true(id == 5);
	assert_int_equal(status, 0);
	assert_int_equal(sink.count, PAIRS);

	/* Plain decoding skips the pairs. */
	assert_int_equal(frame_decode_response(buf + 4, plen, &id, &status, &value, &error), 0);
	assert_true(id == 5);

	/* The callback can stop decoding with its own code. */
	sink = (struct pair_sink){ .payload = buf + 4, .payload_len = plen, .want = pairs,
				   .stop_at = 10 };
	assert_int_equal(frame_decode_response_pairs(buf + 4, plen, &id, &status, &value,
						     &error, check_pair, &sink), 42);
	assert_int_equal(sink.count, 10);

	/* A cut frame is a protocol error. */
	sink = (struct pair_sink){ .payload = buf + 4, .payload_len = plen, .want = pairs };
	assert_int_equal(frame_decode_response_pairs(buf + 4, plen - 3, &id, &status,
						     &value, &error, check_pair, &sink),
			 RKV_EPROTO);

	/* frame_pair_max_size is what the bound adds per pair. */
	{
		struct frame_response one = { .pairs = pairs + 2, .pair_count = 1 };
		struct frame_response none = { 0 };

		assert_int_equal(frame_response_max_size(&one) - frame_response_max_size(&none),
				 frame_pair_max_size(pairs[2].key.len, pairs[2].value.len));
	}
	free(buf);
	free(keys);
	free(pairs);
}

static void test_encode_cap(void **state)
{
	uint8_t buf[128];
	struct frame_request req = { .id = 300, .op = FRAME_OP_PUT,
				     .key = slice_str("abc"), .value = slice_str("defg") };
	struct frame_response resp = { .id = 1u << 30, .status = 1,
				       .value = slice_str("xyz"), .error = "nope" };
	int n;

	(void)state;
	n = frame_encode_request(&req, buf, sizeof(buf));
	assert_true(n > 0);
	for (int cap = 0; cap < n; cap++)
		assert_int_equal(frame_encode_request(&req, buf, (size_t)cap),
				 RKV_ETOOLARGE);
	assert_int_equal(frame_encode_request(&req, buf, (size_t)n), n);

	n = frame_encode_response(&resp, buf, sizeof(buf));
	assert_true(n > 0);
	for (int cap = 0; cap < n; cap++)
		assert_int_equal(frame_encode_response(&resp, buf, (size_t)cap),
				 RKV_ETOOLARGE);
	assert_int_equal(frame_encode_response(&resp, buf, (size_t)n), n);
}

/* The worst case of every field: max ids, negative status, big lengths. */
static void test_max_size_is_upper_bound(void **state)
{
	size_t big = 200000;
	uint8_t *data = calloc(1, big);
	char *err = malloc(big + 1);
	uint8_t *buf = malloc(2 * big + 64);
	struct frame_request req = { .id = UINT64_MAX, .op = FRAME_OP_PUT };
	struct frame_response resp = { .id = UINT64_MAX, .status = -1 };
	int n;

	(void)state;
	assert_non_null(data);
	assert_non_null(err);
	assert_non_null(buf);
	memset(err, 'e', big);
	err[big] = '\0';
	req.key = (struct frame_slice){ data, (uint32_t)big };
	req.value = (struct frame_slice){ data, (uint32_t)big };
	n = frame_encode_request(&req, buf, frame_request_max_size(&req));
	assert_true(n > 0);
	resp.value = (struct frame_slice){ data, (uint32_t)big };
	resp.error = err;
	n = frame_encode_response(&resp, buf, frame_response_max_size(&resp));
	assert_true(n > 0);
	free(buf);
	free(err);
	free(data);
}

static void test_peek(void **state)
{
	uint8_t buf[16] = { 5, 0, 0, 0, 'a', 'b', 'c', 'd', 'e', 'f' };
	uint32_t plen;

	(void)state;
	for (size_t len = 0; len < FRAME_HEADER_SIZE; len++) {
		plen = 12345;
		assert_int_equal(frame_peek(buf, len, &limits, &plen), RKV_EAGAIN);
		assert_int_equal(plen, 12345);
	}
	assert_int_equal(frame_peek(NULL, 0, &limits, &plen), RKV_EAGAIN);
	for (size_t len = FRAME_HEADER_SIZE; len < 9; len++) {
		plen = 0;
		assert_int_equal(frame_peek(buf, len, &limits, &plen), RKV_EAGAIN);
		assert_int_equal(plen, 5);
	}
	assert_int_equal(frame_peek(buf, 9, &limits, &plen), 0);
	assert_int_equal(plen, 5);
	assert_int_equal(frame_peek(buf, 10, &limits, &plen), 0);
	assert_int_equal(plen, 5);

	/* Zero-length frame: complete with 4 bytes; its payload has no op. */
	memset(buf, 0, 4);
	assert_int_equal(frame_peek(buf, 4, &limits, &plen), 0);
	assert_int_equal(plen, 0);
	{
		struct frame_request r;

		assert_int_equal(frame_decode_request(buf + 4, 0, &limits, &r, NULL, 0),
				 RKV_EINVAL);
	}

	/* Little-endian, max_frame accepted, one more refused. */
	buf[0] = 0x00;
	buf[1] = 0x00;
	buf[2] = 0x40;
	buf[3] = 0x00;
	assert_int_equal(frame_peek(buf, 4, &limits, &plen), RKV_EAGAIN);
	assert_int_equal(plen, 4u << 20);
	buf[0] = 0x01;
	assert_int_equal(frame_peek(buf, 4, &limits, &plen), RKV_ETOOLARGE);
	assert_int_equal(plen, (4u << 20) + 1); /* the error can name the size */
	memset(buf, 0xff, 4);
	assert_int_equal(frame_peek(buf, 16, &limits, &plen), RKV_ETOOLARGE);
	assert_int_equal(plen, 0xffffffffu);
}

/* The last buffer decode_bytes decoded; kept so the slices stay valid. */
static uint8_t *last_copy;

static int teardown(void **state)
{
	(void)state;
	free(last_copy);
	last_copy = NULL;
	return 0;
}

static int decode_bytes(const uint8_t *bytes, size_t len, struct frame_request *out,
			char *err, size_t errlen)
{
	/* Exact-size heap copy: ASan catches any over-read. */
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	free(last_copy);
	last_copy = copy;
	if (len)
		memcpy(copy, bytes, len);
	rc = frame_decode_request(copy, len, &limits, out, err, errlen);
	/* Slices must not outlive their buffer here, so check them now. */
	if (rc == 0) {
		assert_true(out->key.data >= copy && out->key.data + out->key.len <= copy + len);
	}
	return rc;
}

static void test_decode_garbage(void **state)
{
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					   0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t group[] = { 0x0b, 0x0c };       /* wire types 3/4 */
	static const uint8_t bad_tag0[] = { 0x00, 0x01 };    /* field number 0 */
	struct frame_request r;
	char err[128] = "";

	(void)state;
	assert_int_equal(decode_bytes(garbage, sizeof(garbage), &r, err, sizeof(err)),
			 RKV_EPROTO);
	assert_true(strlen(err) > 0);
	assert_int_equal(decode_bytes(group, sizeof(group), &r, NULL, 0), RKV_EPROTO);
	assert_int_equal(decode_bytes(bad_tag0, sizeof(bad_tag0), &r, NULL, 0),
			 RKV_EPROTO);
}

static void test_decode_truncated(void **state)
{
	/* id 5, get { key "k" } */
	static const uint8_t msg[] = { 0x08, 0x05, 0x12, 0x03, 0x0a, 0x01, 'k' };
	/* Prefixes that happen to be whole messages lack the op. */
	static const int expect[] = { RKV_EINVAL, RKV_EPROTO, RKV_EINVAL, RKV_EPROTO,
				      RKV_EPROTO, RKV_EPROTO, RKV_EPROTO, 0 };
	struct frame_request r;

	(void)state;
	for (size_t len = 0; len <= sizeof(msg); len++) {
		int rc = decode_bytes(msg, len, &r, NULL, 0);

		assert_int_equal(rc, expect[len]);
		if (len >= 2)
			assert_true(r.id == 5);
	}
	assert_int_equal(r.op, FRAME_OP_GET);
	assert_slice_eq(r.key, "k", 1);
}

static void test_decode_wrong_wire_types(void **state)
{
	static const uint8_t id_as_bytes[] = { 0x0a, 0x01, 0x05 };
	static const uint8_t get_as_varint[] = { 0x10, 0x05 };
	static const uint8_t key_as_varint[] = { 0x08, 0x09, 0x12, 0x02, 0x08, 0x05 };
	static const uint8_t key_as_fixed32[] = { 0x12, 0x05, 0x0d, 'a', 'b', 'c', 'd' };
	static const uint8_t value_as_fixed64[] = { 0x1a, 0x0c, 0x0a, 0x01, 'k', 0x11,
						    1, 2, 3, 4, 5, 6, 7, 8 };
	struct frame_request r;

	(void)state;
	assert_int_equal(decode_bytes(id_as_bytes, sizeof(id_as_bytes), &r, NULL, 0),
			 RKV_EPROTO);
	assert_int_equal(decode_bytes(get_as_varint, sizeof(get_as_varint), &r, NULL, 0),
			 RKV_EPROTO);
	assert_int_equal(decode_bytes(key_as_varint, sizeof(key_as_varint), &r, NULL, 0),
			 RKV_EPROTO);
	assert_true(r.id == 9);
	assert_int_equal(decode_bytes(key_as_fixed32, sizeof(key_as_fixed32), &r, NULL, 0),
			 RKV_EPROTO);
	assert_int_equal(decode_bytes(value_as_fixed64, sizeof(value_as_fixed64), &r,
				      NULL, 0),
			 RKV_EPROTO);
}

/* Appends a varint; returns the new end. */
static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* put { key: klen bytes, value: vlen bytes } then id, id last on purpose. */
static size_t build_put(uint8_t *buf, uint32_t klen, uint32_t vlen, uint64_t id)
{
	uint8_t inner_hdr[32], *q = inner_hdr, *p = buf;
	size_t inner;

	*q++ = 0x0a;
	q = put_varint(q, klen);
	inner = (size_t)(q - inner_hdr) + klen;
	if (vlen) {
		uint8_t tmp[16];

		inner += 1 + (size_t)(put_varint(tmp, vlen) - tmp) + vlen;
	}
	*p++ = 0x1a;
	p = put_varint(p, inner);
	memcpy(p, inner_hdr, (size_t)(q - inner_hdr));
	p += q - inner_hdr;
	memset(p, 'k', klen);
	p += klen;
	if (vlen) {
		*p++ = 0x12;
		p = put_varint(p, vlen);
		memset(p, 'v', vlen);
		p += vlen;
	}
	*p++ = 0x08;
	p = put_varint(p, id);
	return (size_t)(p - buf);
}

static void test_decode_too_large(void **state)
{
	size_t cap = limits.max_value + limits.max_key + 64;
	uint8_t *buf = malloc(cap);
	struct frame_request r;
	char err[128];
	size_t n;

	(void)state;
	assert_non_null(buf);

	n = build_put(buf, limits.max_key, limits.max_value, 1234567);
	assert_int_equal(decode_bytes(buf, n, &r, NULL, 0), 0);
	assert_true(r.id == 1234567);
	assert_int_equal(r.key.len, limits.max_key);

	n = build_put(buf, limits.max_key + 1, 3, 1234567);
	err[0] = '\0';
	assert_int_equal(decode_bytes(buf, n, &r, err, sizeof(err)), RKV_ETOOLARGE);
	assert_true(r.id == 1234567);
	assert_non_null(strstr(err, "key"));

	n = build_put(buf, 3, limits.max_value + 1, 99);
	assert_int_equal(decode_bytes(buf, n, &r, err, sizeof(err)), RKV_ETOOLARGE);
	assert_true(r.id == 99);
	assert_non_null(strstr(err, "value"));

	/* Tighter limits apply too. */
	{
		struct frame_limits small = { .max_frame = 100, .max_key = 2, .max_value = 2 };

		n = build_put(buf, 3, 1, 5);
		assert_int_equal(frame_decode_request(buf, n, &small, &r, NULL, 0),
				 RKV_ETOOLARGE);
		assert_true(r.id == 5);
	}
	free(buf);
}

static void test_decode_missing_op_and_empty_key(void **state)
{
	static const uint8_t only_id[] = { 0x08, 0x07 };
	static const uint8_t empty_get[] = { 0x08, 0x07, 0x12, 0x00 };
	static const uint8_t empty_key_del[] = { 0x22, 0x02, 0x0a, 0x00, 0x08, 0x07 };
	struct frame_request r;
	char err[64];

	(void)state;
	assert_int_equal(decode_bytes(only_id, sizeof(only_id), &r, err, sizeof(err)),
			 RKV_EINVAL);
	assert_true(r.id == 7);
	assert_int_equal(r.op, FRAME_OP_NONE);
	assert_non_null(strstr(err, "operation"));
	/* The empty key is a key, on both protocols. */
	assert_int_equal(decode_bytes(empty_get, sizeof(empty_get), &r, err, sizeof(err)), 0);
	assert_true(r.id == 7);
	assert_int_equal(r.op, FRAME_OP_GET);
	assert_int_equal(r.key.len, 0);
	assert_non_null(r.key.data);
	assert_int_equal(decode_bytes(empty_key_del, sizeof(empty_key_del), &r, NULL, 0), 0);
	assert_int_equal(r.op, FRAME_OP_DELETE);
	assert_int_equal(r.key.len, 0);
	/* A tiny err buffer is still NUL-terminated. */
	err[0] = 'x';
	assert_int_equal(decode_bytes(only_id, sizeof(only_id), &r, err, 1), RKV_EINVAL);
	assert_int_equal(err[0], '\0');
}

static void test_decode_unknown_fields_and_oneof(void **state)
{
	/* get{key "a"}, unknown field 15 (varint), then put{key "b", value "c"}:
	 * unknown fields are skipped, the last oneof member wins. */
	static const uint8_t msg[] = { 0x12, 0x03, 0x0a, 0x01, 'a', 0x78, 0x01,
				       0x1a, 0x06, 0x0a, 0x01, 'b', 0x12, 0x01, 'c' };
	/* put{key "a"} put{value "z"}: a repeated member merges. */
	static const uint8_t merge[] = { 0x1a, 0x03, 0x0a, 0x01, 'a',
					 0x1a, 0x03, 0x12, 0x01, 'z' };
	/* put{key huge...} replaced by get{key "g"}: the big key is gone. */
	struct frame_limits small = { .max_frame = 100, .max_key = 2, .max_value = 2 };
	static const uint8_t replaced[] = { 0x1a, 0x05, 0x0a, 0x03, 'x', 'x', 'x',
					    0x12, 0x03, 0x0a, 0x01, 'g' };
	struct frame_request r;

	(void)state;
	assert_int_equal(decode_bytes(msg, sizeof(msg), &r, NULL, 0), 0);
	assert_int_equal(r.op, FRAME_OP_PUT);
	assert_slice_eq(r.key, "b", 1);
	assert_slice_eq(r.value, "c", 1);
	assert_int_equal(decode_bytes(merge, sizeof(merge), &r, NULL, 0), 0);
	assert_int_equal(r.op, FRAME_OP_PUT);
	assert_slice_eq(r.key, "a", 1);
	assert_slice_eq(r.value, "z", 1);
	assert_int_equal(frame_decode_request(replaced, sizeof(replaced), &small, &r,
					      NULL, 0),
			 0);
	assert_int_equal(r.op, FRAME_OP_GET);
	assert_slice_eq(r.key, "g", 1);
}

static void test_decode_response_errors(void **state)
{
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff };
	static const uint8_t negative_status[] = { 0x08, 0x01, 0x10, 0xff, 0xff, 0xff,
						   0xff, 0x0f };
	static const uint8_t huge_status[] = { 0x10, 0xff, 0xff, 0xff, 0xff, 0x1f };
	static const uint8_t future_status[] = { 0x08, 0x02, 0x10, 0x63 };
	static const uint8_t value_as_varint[] = { 0x18, 0x01 };
	static const uint8_t truncated[] = { 0x08, 0x03, 0x1a, 0x05, 'a' };
	struct frame_slice value, error;
	uint64_t id;
	int status;

	(void)state;
	assert_int_equal(frame_decode_response(garbage, sizeof(garbage), &id, &status,
					       &value, &error),
			 RKV_EPROTO);
	assert_int_equal(frame_decode_response(negative_status, sizeof(negative_status),
					       &id, &status, &value, &error),
			 RKV_EPROTO);
	assert_int_equal(frame_decode_response(huge_status, sizeof(huge_status), &id,
					       &status, &value, &error),
			 RKV_EPROTO);
	assert_int_equal(frame_decode_response(value_as_varint, sizeof(value_as_varint),
					       &id, &status, &value, &error),
			 RKV_EPROTO);
	assert_int_equal(frame_decode_response(truncated, sizeof(truncated), &id,
					       &status, &value, &error),
			 RKV_EPROTO);
	assert_int_equal(frame_decode_response(future_status, sizeof(future_status), &id,
					       &status, &value, &error),
			 0);
	assert_int_equal(status, 99);
	assert_true(id == 2);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void mutate(uint8_t *buf, size_t *len, size_t cap)
{
	int edits = 1 + (int)(rng_next() % 4);

	for (int i = 0; i < edits; i++) {
		size_t at = *len ? rng_next() % *len : 0;

		switch (rng_next() % 5) {
		case 0: /* flip a bit */
			if (*len)
				buf[at] ^= (uint8_t)(1u << (rng_next() % 8));
			break;
		case 1: /* random byte */
			if (*len)
				buf[at] = (uint8_t)rng_next();
			break;
		case 2: /* truncate */
			*len = at;
			break;
		case 3: /* insert a byte */
			if (*len < cap) {
				memmove(buf + at + 1, buf + at, *len - at);
				buf[at] = (uint8_t)rng_next();
				(*len)++;
			}
			break;
		default: /* delete a byte */
			if (*len) {
				memmove(buf + at, buf + at + 1, *len - at - 1);
				(*len)--;
			}
			break;
		}
	}
}

struct fuzz_pairs {
	const uint8_t *p;
	size_t n;
	size_t count;
};

/* Every pair of a damaged frame still lies inside it. */
static int fuzz_pair(void *arg, const struct frame_kv *pair)
{
	struct fuzz_pairs *fp = arg;

	assert_true(pair->key.len == 0 ||
		    (pair->key.data >= fp->p && pair->key.data + pair->key.len <= fp->p + fp->n));
	assert_true(pair->value.len == 0 ||
		    (pair->value.data >= fp->p &&
		     pair->value.data + pair->value.len <= fp->p + fp->n));
	fp->count++;
	return 0;
}

static void test_mutation_fuzz(void **state)
{
	struct frame_limits small = { .max_frame = 256, .max_key = 8, .max_value = 16 };
	enum { SEEDS = 6 };
	uint8_t seed[SEEDS][128];
	int seed_len[SEEDS];
	static const struct frame_kv pairs[] = {
		{ { (const uint8_t *)"k1", 2 }, { (const uint8_t *)"v1", 2 } },
		{ { (const uint8_t *)"k22", 3 }, { (const uint8_t *)"", 0 } },
	};
	struct frame_request req = { .id = 0x1234567, .op = FRAME_OP_PUT,
				     .key = slice_str("key-1"), .value = slice_str("value-22") };
	struct frame_response resp = { .id = 300, .status = 5, .value = slice_str("vvv"),
				       .error = "try later" };

	(void)state;
	seed_len[0] = frame_encode_request(&req, seed[0], sizeof(seed[0]));
	req.op = FRAME_OP_GET;
	seed_len[1] = frame_encode_request(&req, seed[1], sizeof(seed[1]));
	req.op = FRAME_OP_DELETE;
	req.key = slice_str("a-key-that-is-too-long");
	seed_len[2] = frame_encode_request(&req, seed[2], sizeof(seed[2]));
	seed_len[3] = frame_encode_response(&resp, seed[3], sizeof(seed[3]));
	req.op = FRAME_OP_SCAN;
	req.key = slice_str("a");
	req.end = slice_str("zz");
	req.limit = 12;
	seed_len[4] = frame_encode_request(&req, seed[4], sizeof(seed[4]));
	resp.pairs = pairs;
	resp.pair_count = 2;
	seed_len[5] = frame_encode_response(&resp, seed[5], sizeof(seed[5]));
	for (int i = 0; i < SEEDS; i++)
		assert_true(seed_len[i] > 0);

	for (int iter = 0; iter < 20000; iter++) {
		uint8_t work[160];
		size_t len = (size_t)seed_len[iter % SEEDS];
		uint8_t *copy;
		uint32_t plen = 0;
		struct frame_request out;
		struct frame_slice value, error;
		uint64_t id;
		int status, rc;
		char err[64];

		memcpy(work, seed[iter % SEEDS], len);
		mutate(work, &len, sizeof(work));
		copy = malloc(len ? len : 1);
		assert_non_null(copy);
		memcpy(copy, work, len);

		rc = frame_peek(copy, len, &small, &plen);
		assert_true(rc == 0 || rc == RKV_EAGAIN || rc == RKV_ETOOLARGE);
		if (rc == 0)
			assert_true((size_t)plen + FRAME_HEADER_SIZE <= len);
		/* Decode whatever follows the prefix, complete or not. */
		if (len >= FRAME_HEADER_SIZE) {
			const uint8_t *p = copy + FRAME_HEADER_SIZE;
			size_t n = len - FRAME_HEADER_SIZE;

			rc = frame_decode_request(p, n, &small, &out, err, sizeof(err));
			assert_true(rc == 0 || rc == RKV_EPROTO || rc == RKV_EINVAL ||
				    rc == RKV_ETOOLARGE);
			if (rc == 0) {
				assert_true(out.op != FRAME_OP_NONE);
				assert_true(out.key.len <= small.max_key);
				assert_true(out.value.len <= small.max_value);
				assert_true(out.end.len <= small.max_key);
				assert_true(out.end.len == 0 ||
					    (out.end.data >= p &&
					     out.end.data + out.end.len <= p + n));
				if (out.op == FRAME_OP_SCAN)
					assert_true(out.limit >= 1 &&
						    out.limit <= FRAME_SCAN_MAX_LIMIT);
				assert_true(out.key.len == 0 ||
					    (out.key.data >= p &&
					     out.key.data + out.key.len <= p + n));
				assert_true(out.value.len == 0 ||
					    (out.value.data >= p &&
					     out.value.data + out.value.len <= p + n));
			} else {
				assert_true(memchr(err, '\0', sizeof(err)) != NULL);
			}
			{
				struct fuzz_pairs fp = { p, n, 0 };

				rc = frame_decode_response_pairs(p, n, &id, &status, &value,
								 &error, fuzz_pair, &fp);
			}
			assert_true(rc == 0 || rc == RKV_EPROTO);
			if (rc == 0) {
				assert_true(status >= 0);
				assert_true(value.len == 0 ||
					    (value.data >= p && value.data + value.len <= p + n));
				assert_true(error.len == 0 ||
					    (error.data >= p && error.data + error.len <= p + n));
			}
		}
		free(copy);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limits_default),
		cmocka_unit_test(test_request_round_trip),
		cmocka_unit_test(test_request_binary_and_empty_value),
		cmocka_unit_test(test_response_round_trip),
		cmocka_unit_test(test_scan_request_round_trip),
		cmocka_unit_test(test_forward_fields),
		cmocka_unit_test(test_scan_request_too_large),
		cmocka_unit_test(test_scan_response_many_pairs),
		cmocka_unit_test(test_encode_cap),
		cmocka_unit_test(test_max_size_is_upper_bound),
		cmocka_unit_test(test_peek),
		cmocka_unit_test(test_decode_garbage),
		cmocka_unit_test(test_decode_truncated),
		cmocka_unit_test(test_decode_wrong_wire_types),
		cmocka_unit_test(test_decode_too_large),
		cmocka_unit_test(test_decode_missing_op_and_empty_key),
		cmocka_unit_test(test_decode_unknown_fields_and_oneof),
		cmocka_unit_test(test_decode_response_errors),
		cmocka_unit_test(test_mutation_fuzz),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
