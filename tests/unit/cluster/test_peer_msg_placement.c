/*
 * Tests of the Placement frame (PeerFrame field 8, cluster/peer_msg.c and
 * peer_msg_decode.c): a replica move's host / drop requests and answers.
 * Round trips at varint edges, the bytes against nanopb's encoder for
 * proto/peer.proto, every cut of a frame refused without reading past it
 * (exact-size heap copies, for ASan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pb_encode.h>

#include "cluster/peer_msg.h"
#include "core/errors.h"
#include "peer.pb.h"

static struct peer_msg_limits limits;

static int decode_copy(struct peer_msg_frame *f, const uint8_t *p, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	int rv;

	assert_non_null(copy);
	memcpy(copy, p, len);
	rv = peer_msg_decode(f, copy, len, &limits, NULL, 0);
	free(copy);
	return rv;
}

static void test_round_trip(void **state)
{
	static const uint64_t values[] = { 0, 1, 127, 128, UINT32_MAX, UINT64_MAX };
	struct peer_msg_buf out;
	size_t n = sizeof(values) / sizeof(values[0]);

	(void)state;
	peer_msg_limits_default(&limits);
	peer_msg_buf_init(&out);
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < n; k++) {
			struct peer_msg_placement q = {
				.op = values[k], .group = values[i], .core = values[k],
				.term = values[i], .status = values[k], .index = values[i],
				.from = values[k], .to = values[i],
			};
			struct peer_msg_frame f;

			out.len = 0;
			assert_int_equal(peer_msg_encode_placement(&out, &q), 0);
			assert_true(out.len <= PEER_MSG_HEADER_SIZE + 90);
			assert_int_equal(decode_copy(&f, out.data + PEER_MSG_HEADER_SIZE,
						     out.len - PEER_MSG_HEADER_SIZE), 0);
			assert_int_equal(f.kind, PEER_MSG_PLACEMENT);
			assert_memory_equal(&f.placement, &q, sizeof q);
		}
	peer_msg_buf_free(&out);
}

static void test_nanopb_agrees_and_cuts_refused(void **state)
{
	ringkv_peer_Envelope env = ringkv_peer_Envelope_init_zero;
	struct peer_msg_placement q = { .op = PEER_PLACEMENT_HOST, .group = 5, .core = 1,
					.term = 7, .index = 900, .from = 2, .to = 4 };
	struct peer_msg_buf out;
	struct peer_msg_frame f;
	uint8_t buf[128];
	pb_ostream_t os;
	size_t len;

	(void)state;
	peer_msg_limits_default(&limits);
	env.which_body = ringkv_peer_Envelope_placement_tag;
	env.body.placement.op = q.op;
	env.body.placement.group = q.group;
	env.body.placement.core = q.core;
	env.body.placement.term = q.term;
	env.body.placement.index = q.index;
	env.body.placement.from = q.from;
	env.body.placement.to = q.to;
	os = pb_ostream_from_buffer(buf, sizeof(buf));
	assert_true(pb_encode(&os, ringkv_peer_Envelope_fields, &env));
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_placement(&out, &q), 0);
	len = out.len - PEER_MSG_HEADER_SIZE;
	assert_int_equal(len, os.bytes_written);
	assert_memory_equal(out.data + PEER_MSG_HEADER_SIZE, buf, len);
	/* Every cut of the frame: refused, never a shorter valid request. */
	for (size_t cut = 1; cut < len; cut++)
		assert_int_not_equal(decode_copy(&f, buf, cut), 0);
	peer_msg_buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_nanopb_agrees_and_cuts_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
