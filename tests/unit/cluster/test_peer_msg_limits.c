/*
 * Tests of cluster/peer_msg.c, limits: what the decoder refuses past each
 * limit and accepts at it, what the encoder refuses to write, and that a
 * steady sender reuses its buffer (no allocation once at its peak).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/errors.h"
#include "peer_msg_fixture.h"

/* ---- limits -------------------------------------------------------------- */

/* Decoding the frame under `l` is refused as too large, the reason
 * naming `what` (NULL: any reason). */
static void expect_too_large(const uint8_t *payload, size_t len, const struct peer_msg_limits *l,
			     const char *what)
{
	char why[128];

	assert_int_equal(decode_all(payload, len, l, why, sizeof(why)), RKV_ETOOLARGE);
	if (what)
		assert_non_null(strstr(why, what));
}

static void test_decode_limits(void **state)
{
	struct peer_msg_limits small = limits;
	struct peer_msg_buf out;
	struct raft_msg m = full_msg(RAFT_MSG_APPEND);
	struct peer_msg_item items[3] = { { 1, &m }, { 2, &m }, { 3, &m } };
	struct peer_msg_frame f;
	const uint8_t *payload;
	size_t len;

	(void)state;
	peer_msg_buf_init(&out);
	m.n_entries = 5;
	assert_int_equal(peer_msg_encode_batch(&out, &limits, items, 3), 0);
	payload = payload_of(&out, 0, &len);
	assert_int_equal(decode_all(payload, len, &limits, NULL, 0), 0);

	small.max_msgs = 2;
	expect_too_large(payload, len, &small, "messages");
	small = limits;
	small.max_entries = 4;
	expect_too_large(payload, len, &small, "entries");
	/* The caller's scratch array is a cap too. */
	assert_int_equal(peer_msg_decode(&f, payload, len, &limits, scratch, 4), 0);
	{
		struct raft_msg got;
		uint64_t group;

		assert_int_equal(peer_msg_next(&f, &group, &got), RKV_ETOOLARGE);
		assert_int_equal(peer_msg_next(&f, &group, &got), RKV_ETOOLARGE);
	}
	small = limits;
	small.max_entry_bytes = 149999;
	expect_too_large(payload, len, &small, "entry of 150000");
	small = limits;
	small.max_data_bytes = 4999;
	expect_too_large(payload, len, &small, "data of 5000");
	small = limits;
	small.max_frame = (uint32_t)len - 1;
	expect_too_large(payload, len, &small, NULL);
	peer_msg_buf_free(&out);
}

static void test_encode_limits(void **state)
{
	struct peer_msg_limits small = limits;
	struct peer_msg_buf out;
	struct peer_msg_batch batch;
	struct raft_msg m = full_msg(RAFT_MSG_APPEND);
	struct raft_msg hb = { .type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2 };
	size_t one, before;

	(void)state;
	peer_msg_buf_init(&out);
	/* Per-message limits: refused even by an empty batch. */
	assert_int_equal(peer_msg_batch_begin(&out, &batch), 0);
	small.max_entries = 4;
	assert_int_equal(peer_msg_batch_add(&out, &batch, &small, 1, &m), RKV_ETOOLARGE);
	small = limits;
	small.max_entry_bytes = 150000 - 1;
	assert_int_equal(peer_msg_batch_add(&out, &batch, &small, 1, &m), RKV_ETOOLARGE);
	small = limits;
	small.max_data_bytes = 4999;
	assert_int_equal(peer_msg_batch_add(&out, &batch, &small, 1, &m), RKV_ETOOLARGE);
	assert_int_equal(peer_msg_batch_bytes(&out, &batch), 0);
	assert_int_equal(peer_msg_batch_end(&out, &batch), 0);
	assert_int_equal(out.len, 0); /* an empty batch leaves nothing */

	/* Frame limits: a full batch refuses the next message, unchanged. */
	assert_int_equal(peer_msg_batch_begin(&out, &batch), 0);
	assert_int_equal(peer_msg_batch_add(&out, &batch, &limits, 1, &hb), 0);
	one = peer_msg_batch_bytes(&out, &batch);
	small = limits;
	small.max_frame = (uint32_t)(2 * one);
	assert_int_equal(peer_msg_batch_add(&out, &batch, &small, 1, &hb), 0);
	before = out.len;
	assert_int_equal(peer_msg_batch_add(&out, &batch, &small, 1, &hb), RKV_ETOOLARGE);
	assert_int_equal(out.len, before);
	small = limits;
	small.max_msgs = 2;
	assert_int_equal(peer_msg_batch_add(&out, &batch, &small, 1, &hb), RKV_ETOOLARGE);
	assert_int_equal(peer_msg_batch_end(&out, &batch), out.len);
	assert_int_equal(out.len, PEER_MSG_HEADER_SIZE + 2 * one);
	{
		const uint8_t *payload;
		size_t len;
		uint64_t groups[2] = { 1, 1 };
		struct raft_msg want[2] = { hb, hb };

		payload = payload_of(&out, 0, &len);
		check_batch(payload, len, groups, want, 2);
	}

	/* peer_msg_encode_batch leaves nothing behind when it fails. */
	{
		struct peer_msg_item items[3] = { { 1, &hb }, { 2, &hb }, { 3, &hb } };

		before = out.len;
		small = limits;
		small.max_msgs = 2;
		assert_int_equal(peer_msg_encode_batch(&out, &small, items, 3),
				 RKV_ETOOLARGE);
		assert_int_equal(out.len, before);
	}
	peer_msg_buf_free(&out);
}

/* A steady sender reuses its buffer: no allocation once at its peak. */
static void test_buffer_reuse(void **state)
{
	struct raft_msg m = full_msg(RAFT_MSG_APPEND);
	struct peer_msg_item items[4] = { { 1, &m }, { 2, &m }, { 3, &m }, { 4, &m } };
	struct peer_msg_buf out;
	uint8_t *data;
	size_t cap;

	(void)state;
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_batch(&out, &limits, items, 4), 0);
	data = out.data;
	cap = out.cap;
	assert_true(cap >= out.len && cap < 4 * out.len);
	for (int i = 0; i < 100; i++) {
		out.len = 0;
		assert_int_equal(peer_msg_encode_batch(&out, &limits, items, 4), 0);
		assert_ptr_equal(out.data, data);
		assert_int_equal(out.cap, cap);
	}
	peer_msg_buf_free(&out);
	assert_null(out.data);
	assert_int_equal(out.cap, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_limits),
		cmocka_unit_test(test_encode_limits),
		cmocka_unit_test(test_buffer_reuse),
	};

	return cmocka_run_group_tests(tests, peer_msg_fixture_setup, NULL);
}
