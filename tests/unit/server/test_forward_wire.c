/*
 * Tests of server/forward_wire.c: round trips of forwarded requests and
 * answers (every field, empty and non-empty parts), and refusal of every
 * truncation, every wrong total length, a foreign version, a negative
 * status and undefined flag bits; a bounded mutation loop feeds damaged
 * copies (exact-size heap buffers, so ASan sees any read past the end).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/errors.h"
#include "server/forward_wire.h"

static struct peer_msg_slice str(const char *s)
{
	return (struct peer_msg_slice){ (const uint8_t *)s, (uint32_t)strlen(s) };
}

static const uint8_t request_data[] = "key\0pattern*value-bytes";

static struct fwd_request sample_request(void)
{
	return (struct fwd_request){
		.op = 9,
		.flags = 0x6,
		.hops = 2,
		.shard = 16383,
		.integer = -1234567890123LL,
		.limit = 4000,
		.room = 1u << 20,
		.key_len = 4,
		.arg_len = 8,
		.value_len = 11,
		.data = request_data,
	};
}

static void request_round_trip(void **state)
{
	struct fwd_request in = sample_request(), out;
	struct peer_msg_buf b;

	(void)state;
	peer_msg_buf_init(&b);
	assert_int_equal(fwd_request_encode(&b, &in), 0);
	assert_int_equal(b.len, FWD_REQUEST_HEAD + 23);
	assert_int_equal(fwd_request_decode(b.data, b.len, &out), 0);
	assert_int_equal(out.op, 9);
	assert_int_equal(out.flags, 0x6);
	assert_int_equal(out.hops, 2);
	assert_int_equal(out.shard, 16383);
	assert_true(out.integer == -1234567890123LL);
	assert_int_equal(out.limit, 4000);
	assert_int_equal(out.room, 1u << 20);
	assert_int_equal(out.key_len, 4);
	assert_int_equal(out.arg_len, 8);
	assert_int_equal(out.value_len, 11);
	assert_memory_equal(out.data, request_data, 23);
	assert_ptr_equal(out.data, b.data + FWD_REQUEST_HEAD); /* no copy */

	/* Appends: a second encoding goes after the first. */
	in.key_len = 0;
	in.arg_len = 0;
	in.value_len = 0;
	assert_int_equal(fwd_request_encode(&b, &in), 0);
	assert_int_equal(fwd_request_decode(b.data + FWD_REQUEST_HEAD + 23, FWD_REQUEST_HEAD,
					    &out), 0);
	assert_int_equal(out.key_len + out.arg_len + out.value_len, 0);
	peer_msg_buf_free(&b);
}

static void request_refusals(void **state)
{
	struct fwd_request in = sample_request(), out;
	struct peer_msg_buf b;
	uint8_t *copy;

	(void)state;
	peer_msg_buf_init(&b);
	assert_int_equal(fwd_request_encode(&b, &in), 0);
	/* Every truncation, and one byte too many. */
	for (size_t len = 0; len < b.len; len++) {
		copy = malloc(len ? len : 1);
		memcpy(copy, b.data, len);
		assert_int_equal(fwd_request_decode(copy, len, &out), RKV_EPROTO);
		free(copy);
	}
	assert_int_equal(peer_msg_buf_reserve(&b, 1), 0);
	b.data[b.len] = 0;
	assert_int_equal(fwd_request_decode(b.data, b.len + 1, &out), RKV_EPROTO);
	/* Lengths that overflow 32 bits when added up. */
	b.data[24] = b.data[25] = b.data[26] = b.data[27] = 0xff;
	assert_int_equal(fwd_request_decode(b.data, b.len, &out), RKV_EPROTO);
	/* Another version. */
	b.len = 0;
	assert_int_equal(fwd_request_encode(&b, &in), 0);
	b.data[0] = FWD_WIRE_VERSION + 1;
	assert_int_equal(fwd_request_decode(b.data, b.len, &out), RKV_EPROTO);
	peer_msg_buf_free(&b);
}

static void reply_round_trip(void **state)
{
	struct fwd_reply in = {
		.status = 10,
		.result = -34,
		.existed = true,
		.applied = false,
		.done = true,
		.integer = INT64_MIN,
		.leader_hint = UINT64_MAX,
		.resume = str("resume-key"),
		.value = str("the value"),
		.error = str("outcome unknown"),
	}, out;
	struct peer_msg_buf b;

	(void)state;
	peer_msg_buf_init(&b);
	assert_int_equal(fwd_reply_encode(&b, &in), 0);
	assert_int_equal(fwd_reply_decode(b.data, b.len, &out), 0);
	assert_int_equal(out.status, 10);
	assert_int_equal(out.result, -34);
	assert_true(out.existed && !out.applied && out.done);
	assert_true(out.integer == INT64_MIN);
	assert_true(out.leader_hint == UINT64_MAX);
	assert_int_equal(out.resume.len, 10);
	assert_memory_equal(out.resume.data, "resume-key", 10);
	assert_int_equal(out.value.len, 9);
	assert_memory_equal(out.value.data, "the value", 9);
	assert_int_equal(out.error.len, 15);
	assert_memory_equal(out.error.data, "outcome unknown", 15);

	/* All parts empty, flags clear: slices still point into the bytes. */
	memset(&in, 0, sizeof in);
	in.resume = in.value = in.error = str("");
	b.len = 0;
	assert_int_equal(fwd_reply_encode(&b, &in), 0);
	assert_int_equal(b.len, FWD_REPLY_HEAD);
	assert_int_equal(fwd_reply_decode(b.data, b.len, &out), 0);
	assert_true(!out.existed && !out.applied && !out.done);
	assert_non_null(out.value.data);
	peer_msg_buf_free(&b);
}

static void reply_refusals(void **state)
{
	struct fwd_reply in = {
		.status = 0,
		.resume = str("r"),
		.value = str("vv"),
		.error = str(""),
	}, out;
	struct peer_msg_buf b;

	(void)state;
	peer_msg_buf_init(&b);
	assert_int_equal(fwd_reply_encode(&b, &in), 0);
	for (size_t len = 0; len < b.len; len++) {
		uint8_t *copy = malloc(len ? len : 1);

		memcpy(copy, b.data, len);
		assert_int_equal(fwd_reply_decode(copy, len, &out), RKV_EPROTO);
		free(copy);
	}
	b.data[1] = 8; /* an undefined flag bit */
	assert_int_equal(fwd_reply_decode(b.data, b.len, &out), RKV_EPROTO);
	b.data[1] = 0;
	b.data[2] = 1; /* reserved bytes must be zero */
	assert_int_equal(fwd_reply_decode(b.data, b.len, &out), RKV_EPROTO);
	b.data[2] = 0;
	b.data[7] = 0x80; /* status < 0 */
	assert_int_equal(fwd_reply_decode(b.data, b.len, &out), RKV_EPROTO);
	b.data[7] = 0;
	assert_int_equal(fwd_reply_decode(b.data, b.len, &out), 0);
	peer_msg_buf_free(&b);
}

/* Random damage: decoding either refuses or yields slices inside the copy. */
static void mutations(void **state)
{
	struct fwd_request rq = sample_request(), r1;
	struct fwd_reply rp = { .status = 1, .resume = str("abc"), .value = str("defgh"),
				.error = str("ij") }, r2;
	struct peer_msg_buf b;
	uint32_t seed = 12345;

	(void)state;
	peer_msg_buf_init(&b);
	for (int round = 0; round < 4000; round++) {
		bool request = round % 2 == 0;
		uint8_t *copy;
		size_t len;

		b.len = 0;
		assert_int_equal(request ? fwd_request_encode(&b, &rq) : fwd_reply_encode(&b, &rp),
				 0);
		len = b.len;
		copy = malloc(len);
		memcpy(copy, b.data, len);
		for (int flips = 1 + round % 3; flips > 0; flips--) {
			seed = seed * 1103515245u + 12345u;
			copy[(seed >> 8) % len] ^= (uint8_t)(1u << ((seed >> 4) % 8));
		}
		if (request) {
			if (fwd_request_decode(copy, len, &r1) == 0)
				assert_true((size_t)r1.key_len + r1.arg_len + r1.value_len ==
					    len - FWD_REQUEST_HEAD);
		} else if (fwd_reply_decode(copy, len, &r2) == 0) {
			assert_true((size_t)r2.resume.len + r2.value.len + r2.error.len ==
				    len - FWD_REPLY_HEAD);
			assert_true(r2.status >= 0);
		}
		free(copy);
	}
	peer_msg_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(request_round_trip),
		cmocka_unit_test(request_refusals),
		cmocka_unit_test(reply_round_trip),
		cmocka_unit_test(reply_refusals),
		cmocka_unit_test(mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
