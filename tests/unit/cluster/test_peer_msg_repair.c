/*
 * Tests of the SnapshotRequest frame (PeerFrame field 7, cluster/peer_msg.c
 * and peer_msg_decode.c): a damaged replica's request for a snapshot from
 * its leader. Round trips at varint edges; the bytes against nanopb's own
 * encoder and decoder for proto/peer.proto; every cut of a frame refused
 * without reading past it (exact-size heap copies, for ASan); wrong wire
 * types, a second body, a Raft message beside it refused; unknown fields
 * skipped. Kept apart from test_peer_msg.c, which is being split.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "cluster/peer_msg.h"
#include "core/errors.h"
#include "peer.pb.h"

static struct peer_msg_limits limits;

static int setup(void **state)
{
	(void)state;
	peer_msg_limits_default(&limits);
	return 0;
}

/* Decodes `len` bytes from an exact-size heap copy: ASan sees overreads. */
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

static void encode(struct peer_msg_buf *out, uint64_t group, uint64_t applied)
{
	/* The restart fields ride along with values of their own. */
	struct peer_msg_snapshot_request q = { .group = group, .applied = applied,
					       .restart_stream = group ^ applied,
					       .boot_id = applied - group, .stream_seen = ~group };

	out->len = 0;
	assert_int_equal(peer_msg_encode_snapshot_request(out, &q), 0);
}

static void test_round_trip(void **state)
{
	static const uint64_t values[] = { 0, 1, 127, 128, 16383, 16384, UINT32_MAX,
					   (uint64_t)UINT32_MAX + 1, UINT64_MAX - 1,
					   UINT64_MAX };
	struct peer_msg_buf out;
	size_t n = sizeof(values) / sizeof(values[0]);

	(void)state;
	peer_msg_buf_init(&out);
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < n; k++) {
			struct peer_msg_frame f;
			size_t frame_len = 0;

			encode(&out, values[i], values[k]);
			/* 4-byte prefix, tag 7 and a one-byte length, then at
			 * most five 10-byte varints with one-byte tags. */
			assert_true(out.len <= PEER_MSG_HEADER_SIZE + 2 + 55);
			assert_int_equal(peer_msg_peek(out.data, out.len, &limits, &frame_len), 0);
			assert_int_equal(frame_len, out.len);
			assert_int_equal(decode_copy(&f, out.data + PEER_MSG_HEADER_SIZE,
						     out.len - PEER_MSG_HEADER_SIZE), 0);
			assert_int_equal(f.kind, PEER_MSG_SNAPSHOT_REQUEST);
			assert_true(f.snapshot_request.group == values[i]);
			assert_true(f.snapshot_request.applied == values[k]);
			assert_true(f.snapshot_request.restart_stream == (values[i] ^ values[k]));
			assert_true(f.snapshot_request.boot_id == values[k] - values[i]);
			assert_true(f.snapshot_request.stream_seen == ~values[i]);
		}
	}
	peer_msg_buf_free(&out);
}

/* Frames append: a request after another frame in the same buffer. */
static void test_appends(void **state)
{
	struct peer_msg_snapshot_request q = { .group = 3, .applied = 900 };
	struct peer_msg_buf out;
	struct peer_msg_frame f;
	size_t first, frame_len = 0;

	(void)state;
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_snapshot_request(&out, &q), 0);
	first = out.len;
	q.group = 4;
	assert_int_equal(peer_msg_encode_snapshot_request(&out, &q), 0);
	assert_int_equal(out.len, 2 * first);
	assert_int_equal(peer_msg_peek(out.data + first, out.len - first, &limits, &frame_len),
			 0);
	assert_int_equal(decode_copy(&f, out.data + first + PEER_MSG_HEADER_SIZE,
				     frame_len - PEER_MSG_HEADER_SIZE), 0);
	assert_int_equal(f.snapshot_request.group, 4);
	assert_int_equal(f.snapshot_request.applied, 900);
	peer_msg_buf_free(&out);
}

static void test_nanopb_agrees(void **state)
{
	ringkv_peer_Envelope env = ringkv_peer_Envelope_init_zero;
	struct peer_msg_buf out;
	struct peer_msg_frame f;
	uint8_t buf[64];
	pb_ostream_t os;
	pb_istream_t is;

	(void)state;
	/* nanopb writes, we read. */
	env.which_body = ringkv_peer_Envelope_snapshot_request_tag;
	env.body.snapshot_request.group = 17;
	env.body.snapshot_request.applied = UINT64_MAX;
	env.body.snapshot_request.restart_stream = 17 ^ UINT64_MAX; /* as encode() sets */
	env.body.snapshot_request.boot_id = UINT64_MAX - 17;
	env.body.snapshot_request.stream_seen = ~UINT64_C(17);
	os = pb_ostream_from_buffer(buf, sizeof(buf));
	assert_true(pb_encode(&os, ringkv_peer_Envelope_fields, &env));
	assert_int_equal(decode_copy(&f, buf, os.bytes_written), 0);
	assert_int_equal(f.kind, PEER_MSG_SNAPSHOT_REQUEST);
	assert_int_equal(f.snapshot_request.group, 17);
	assert_true(f.snapshot_request.applied == UINT64_MAX);
	assert_true(f.snapshot_request.restart_stream == (17 ^ UINT64_MAX));
	assert_true(f.snapshot_request.boot_id == UINT64_MAX - 17);
	assert_true(f.snapshot_request.stream_seen == ~UINT64_C(17));

	/* We write, nanopb reads, and the bytes are the same as its own. */
	peer_msg_buf_init(&out);
	encode(&out, 17, UINT64_MAX);
	assert_int_equal(out.len - PEER_MSG_HEADER_SIZE, os.bytes_written);
	assert_memory_equal(out.data + PEER_MSG_HEADER_SIZE, buf, os.bytes_written);
	memset(&env, 0, sizeof(env));
	is = pb_istream_from_buffer(out.data + PEER_MSG_HEADER_SIZE,
				    out.len - PEER_MSG_HEADER_SIZE);
	assert_true(pb_decode(&is, ringkv_peer_Envelope_fields, &env));
	assert_int_equal(env.which_body, ringkv_peer_Envelope_snapshot_request_tag);
	assert_int_equal(env.body.snapshot_request.group, 17);
	assert_true(env.body.snapshot_request.applied == UINT64_MAX);
	assert_true(env.body.snapshot_request.restart_stream == (17 ^ UINT64_MAX));
	assert_true(env.body.snapshot_request.boot_id == UINT64_MAX - 17);
	assert_true(env.body.snapshot_request.stream_seen == ~UINT64_C(17));
	peer_msg_buf_free(&out);
}

/* Every cut of a whole frame is refused, never read past. */
static void test_every_cut_refused(void **state)
{
	struct peer_msg_buf out;
	struct peer_msg_frame f;
	size_t len;

	(void)state;
	peer_msg_buf_init(&out);
	encode(&out, UINT64_MAX, 1u << 20);
	len = out.len - PEER_MSG_HEADER_SIZE;
	for (size_t cut = 0; cut < len; cut++) {
		int rv = decode_copy(&f, out.data + PEER_MSG_HEADER_SIZE, cut);

		assert_int_equal(rv, RKV_EPROTO);
		assert_int_equal(f.kind, PEER_MSG_NONE);
		assert_true(f.err[0] != '\0');
	}
	assert_int_equal(decode_copy(&f, out.data + PEER_MSG_HEADER_SIZE, len), 0);
	peer_msg_buf_free(&out);
}

static void test_bad_shapes_refused(void **state)
{
	/* Envelope field 7 (tag 0x3a), then the body. */
	static const uint8_t group_as_bytes[] = { 0x3a, 0x03, 0x0a, 0x01, 0x05 };
	static const uint8_t applied_fixed64[] = { 0x3a, 0x09, 0x11, 1, 2, 3, 4, 5, 6, 7, 8 };
	static const uint8_t varint_11_bytes[] = { 0x3a, 0x0c, 0x08, 0xff, 0xff, 0xff, 0xff,
						   0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
	static const uint8_t varint_overflow[] = { 0x3a, 0x0b, 0x08, 0xff, 0xff, 0xff, 0xff,
						   0xff, 0xff, 0xff, 0xff, 0xff, 0x02 };
	static const uint8_t field_zero[] = { 0x3a, 0x02, 0x00, 0x01 };
	static const uint8_t group_wire[] = { 0x3a, 0x02, 0x0b, 0x0c };
	static const uint8_t two_bodies[] = { 0x3a, 0x02, 0x08, 0x01, 0x3a, 0x02, 0x08, 0x02 };
	static const uint8_t with_chunk[] = { 0x3a, 0x02, 0x08, 0x01, 0x22, 0x00 };
	static const uint8_t with_raft[] = { 0x1a, 0x04, 0x10, 0x05, 0x28, 0x01,
					     0x3a, 0x02, 0x08, 0x01 };
	static const uint8_t body_not_len[] = { 0x38, 0x05 };
	static const uint8_t len_past_end[] = { 0x3a, 0x05, 0x08, 0x01 };
	static const struct {
		const uint8_t *p;
		size_t len;
	} bad[] = {
		{ group_as_bytes, sizeof(group_as_bytes) },
		{ applied_fixed64, sizeof(applied_fixed64) },
		{ varint_11_bytes, sizeof(varint_11_bytes) },
		{ varint_overflow, sizeof(varint_overflow) },
		{ field_zero, sizeof(field_zero) },
		{ group_wire, sizeof(group_wire) },
		{ two_bodies, sizeof(two_bodies) },
		{ with_chunk, sizeof(with_chunk) },
		{ with_raft, sizeof(with_raft) },
		{ body_not_len, sizeof(body_not_len) },
		{ len_past_end, sizeof(len_past_end) },
	};
	struct peer_msg_frame f;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rv = decode_copy(&f, bad[i].p, bad[i].len);

		assert_int_equal(rv, RKV_EPROTO);
		assert_int_equal(f.kind, PEER_MSG_NONE);
	}
}

/* The format grows additively: unknown fields inside and beside the body
 * are skipped; an empty body is a request for group 0 at applied 0. */
static void test_unknown_fields_skipped(void **state)
{
	static const uint8_t extra[] = { 0x3a, 0x0f, 0x08, 0x02, 0x10, 0x2a,
					 0x18, 0x07,             /* field 3 varint */
					 0x32, 0x02, 0xaa, 0xbb, /* field 6 bytes */
					 0x3d, 0x01, 0x02, 0x03, 0x04 }; /* 7 fixed32 */
	static const uint8_t beside[] = { 0x78, 0x01, 0x3a, 0x02, 0x08, 0x09 };
	static const uint8_t empty[] = { 0x3a, 0x00 };
	struct peer_msg_frame f;

	(void)state;
	assert_int_equal(decode_copy(&f, extra, sizeof(extra)), 0);
	assert_int_equal(f.kind, PEER_MSG_SNAPSHOT_REQUEST);
	assert_int_equal(f.snapshot_request.group, 2);
	assert_int_equal(f.snapshot_request.applied, 42);
	assert_int_equal(decode_copy(&f, beside, sizeof(beside)), 0);
	assert_int_equal(f.kind, PEER_MSG_SNAPSHOT_REQUEST);
	assert_int_equal(f.snapshot_request.group, 9);
	assert_int_equal(decode_copy(&f, empty, sizeof(empty)), 0);
	assert_int_equal(f.kind, PEER_MSG_SNAPSHOT_REQUEST);
	assert_int_equal(f.snapshot_request.group, 0);
	assert_int_equal(f.snapshot_request.applied, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_appends),
		cmocka_unit_test(test_nanopb_agrees),
		cmocka_unit_test(test_every_cut_refused),
		cmocka_unit_test(test_bad_shapes_refused),
		cmocka_unit_test(test_unknown_fields_skipped),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
