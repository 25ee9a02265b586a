/*
 * Tests of the Leaders peer frame (PeerFrame field 10, cluster/peer_msg.c
 * and peer_msg_decode.c) and of the table every core keeps from them
 * (cluster/leaders.c): round trips at varint edges and at the entry limit,
 * hand-made frames the decoder must refuse, every cut of a frame decoded
 * from an exact-size copy (for ASan), and the table's rules: terms and
 * configuration indexes never go down, stale claims are not given out, the
 * epoch sums the configurations' indexes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/leaders.h"
#include "cluster/peer_msg.h"
#include "core/errors.h"

static struct peer_msg_limits limits;

static int decode_copy(struct peer_msg_frame *f, uint8_t **copy, const uint8_t *p, size_t len)
{
	*copy = malloc(len ? len : 1);
	assert_non_null(*copy);
	memcpy(*copy, p, len);
	return peer_msg_decode(f, *copy, len, &limits, NULL, 0);
}

static uint32_t read_all(const struct peer_msg_leaders *l, struct peer_msg_leader *out,
			 uint32_t cap)
{
	struct peer_msg_leaders_iter it;
	uint32_t n = 0;

	peer_msg_leaders_begin(&it, l);
	while (n < cap && peer_msg_leaders_next(&it, &out[n]) == 1)
		n++;
	return n;
}

static void round_trip(const struct peer_msg_leader *in, uint32_t n)
{
	struct peer_msg_leader *back = calloc(n ? n : 1, sizeof *back);
	struct peer_msg_buf out;
	struct peer_msg_frame f;
	uint8_t *copy;

	assert_non_null(back);
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_leaders(&out, in, n), 0);
	assert_true(out.len <= PEER_MSG_HEADER_SIZE + 20 + 30 * (size_t)n);
	assert_int_equal(decode_copy(&f, &copy, out.data + PEER_MSG_HEADER_SIZE,
				     out.len - PEER_MSG_HEADER_SIZE), 0);
	assert_int_equal(f.kind, PEER_MSG_LEADERS);
	assert_int_equal(f.leaders.count, n);
	assert_int_equal(read_all(&f.leaders, back, n), n);
	if (n)
		assert_memory_equal(back, in, n * sizeof *in);
	free(copy);
	free(back);
	peer_msg_buf_free(&out);
}

static void test_round_trip(void **state)
{
	static const uint64_t v[] = { 0, 1, 127, 128, 16383, UINT32_MAX, UINT64_MAX };
	struct peer_msg_leader e[7 * 7];
	uint32_t n = 0;

	(void)state;
	peer_msg_limits_default(&limits);
	for (int i = 0; i < 7; i++)
		for (int k = 0; k < 7; k++)
			e[n++] = (struct peer_msg_leader){ v[i], v[k], v[(i + k) % 7] };
	round_trip(e, 0);
	round_trip(e, 1);
	round_trip(e, n);
}

static void test_entry_limit(void **state)
{
	struct peer_msg_leader *e = calloc(PEER_MSG_MAX_LEADERS + 1, sizeof *e);
	struct peer_msg_buf out;

	(void)state;
	peer_msg_limits_default(&limits);
	assert_non_null(e);
	for (uint32_t i = 0; i <= PEER_MSG_MAX_LEADERS; i++)
		e[i] = (struct peer_msg_leader){ i, 1000 + i, i * 7 };
	round_trip(e, PEER_MSG_MAX_LEADERS);
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_leaders(&out, e, PEER_MSG_MAX_LEADERS + 1),
			 RKV_ETOOLARGE);
	assert_int_equal(out.len, 0);
	peer_msg_buf_free(&out);
	free(e);
}

/* Envelope field 10 around `body`. */
static size_t envelope(uint8_t *buf, size_t n)
{
	size_t at = 0;

	buf[at++] = 10 << 3 | 2;
	do {
		buf[at++] = (uint8_t)((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
	} while ((n >>= 7) != 0 && at < 8);
	return at;
}

static int decode_body(const uint8_t *body, size_t n)
{
	uint8_t *buf = malloc(n + 8), *copy;
	struct peer_msg_frame f;
	size_t h;
	int rv;

	assert_non_null(buf);
	h = envelope(buf, n);
	memcpy(buf + h, body, n);
	rv = decode_copy(&f, &copy, buf, h + n);
	free(copy);
	free(buf);
	return rv;
}

static void test_refused(void **state)
{
	static const uint8_t ok[] = { 0x0a, 1, 5, 0x12, 1, 9, 0x1a, 1, 0 };
	static const uint8_t unequal[] = { 0x0a, 1, 5, 0x12, 2, 9, 9, 0x1a, 1, 0 };
	static const uint8_t missing[] = { 0x0a, 1, 5, 0x12, 1, 9 };
	static const uint8_t twice[] = { 0x0a, 1, 5, 0x12, 1, 9, 0x1a, 1, 0, 0x0a, 1, 6 };
	static const uint8_t bad_varint[] = { 0x0a, 1, 0x80, 0x12, 1, 9, 0x1a, 1, 0 };
	static const uint8_t long_varint[] = { 0x0a, 11, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					       0xff, 0xff, 0xff, 0xff, 0x01 };
	static const uint8_t wrong_wire[] = { 0x08, 5, 0x12, 1, 9, 0x1a, 1, 0 };
	static const uint8_t unknown_field[] = { 0x20, 7, 0x0a, 1, 5, 0x12, 1, 9, 0x1a, 1, 0 };
	size_t big = PEER_MSG_MAX_LEADERS + 1;
	uint8_t *many = malloc(3 * (big + 4));
	size_t at = 0;

	(void)state;
	peer_msg_limits_default(&limits);
	assert_int_equal(decode_body(ok, sizeof ok), 0);
	assert_int_equal(decode_body(unknown_field, sizeof unknown_field), 0);
	assert_int_equal(decode_body(unequal, sizeof unequal), RKV_EPROTO);
	assert_int_equal(decode_body(missing, sizeof missing), RKV_EPROTO);
	assert_int_equal(decode_body(twice, sizeof twice), RKV_EPROTO);
	assert_int_equal(decode_body(bad_varint, sizeof bad_varint), RKV_EPROTO);
	assert_int_equal(decode_body(long_varint, sizeof long_varint), RKV_EPROTO);
	assert_int_equal(decode_body(wrong_wire, sizeof wrong_wire), RKV_EPROTO);
	/* One entry past the limit in each list. */
	assert_non_null(many);
	for (uint8_t tag = 0x0a; tag <= 0x1a; tag += 8) {
		many[at++] = tag;
		many[at++] = (uint8_t)(0x80 | (big & 0x7f));
		many[at++] = (uint8_t)(0x80 | ((big >> 7) & 0x7f));
		many[at++] = (uint8_t)(big >> 14);
		memset(many + at, 1, big);
		at += big;
	}
	assert_int_equal(decode_body(many, at), RKV_ETOOLARGE);
	free(many);
}

static void test_every_cut(void **state)
{
	struct peer_msg_leader e[5] = { { 0, 1, 0 }, { 300, 70000, 5 }, { 7, UINT64_MAX, 1 },
					{ 16383, 2, 1ull << 40 }, { 9, 9, 9 } };
	struct peer_msg_buf out;

	(void)state;
	peer_msg_limits_default(&limits);
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_leaders(&out, e, 5), 0);
	for (size_t cut = 0; cut < out.len - PEER_MSG_HEADER_SIZE; cut++) {
		struct peer_msg_frame f;
		uint8_t *copy;
		int rv = decode_copy(&f, &copy, out.data + PEER_MSG_HEADER_SIZE, cut);

		assert_true(rv == RKV_EPROTO);
		free(copy);
	}
	peer_msg_buf_free(&out);
}

/* ---- the table ------------------------------------------------------------ */

static struct peer_msg_leaders frame_of(struct peer_msg_buf *out, uint8_t **copy,
					const struct peer_msg_leader *e, uint32_t n)
{
	struct peer_msg_frame f;

	out->len = 0;
	assert_int_equal(peer_msg_encode_leaders(out, e, n), 0);
	assert_int_equal(decode_copy(&f, copy, out->data + PEER_MSG_HEADER_SIZE,
				     out->len - PEER_MSG_HEADER_SIZE), 0);
	return f.leaders;
}

static void learn(struct cluster_leaders *t, uint64_t from, uint64_t now,
		  const struct peer_msg_leader *e, uint32_t n, uint32_t refused)
{
	struct peer_msg_buf out;
	uint8_t *copy;
	struct peer_msg_leaders l;

	peer_msg_buf_init(&out);
	l = frame_of(&out, &copy, e, n);
	assert_int_equal(cluster_leaders_learn(t, from, &l, now), refused);
	free(copy);
	peer_msg_buf_free(&out);
}

#define ASSERT_LEADER(t, shard, now, want_leader, want_term)                         \
	do {                                                                        \
		uint64_t leader_, term_;                                            \
		bool known_ = cluster_leaders_get(t, shard, now, &leader_, &term_); \
		assert_int_equal(leader_, want_leader);                             \
		assert_int_equal(term_, want_term);                                 \
		assert_int_equal(known_, (want_leader) != 0);                       \
	} while (0)

static void test_table(void **state)
{
	struct cluster_leaders *t;
	uint64_t now = 1000000;

	(void)state;
	peer_msg_limits_default(&limits);
	assert_int_equal(cluster_leaders_create(&t, 8), 0);
	assert_int_equal(cluster_leaders_epoch(t), 1);
	ASSERT_LEADER(t, 3, now, 0, 0);

	/* Node 2 leads shards 0 and 3; shard 9 is past the table, term 0 is
	 * no claim. */
	learn(t, 2, now, (struct peer_msg_leader[]){ { 0, 4, 0 }, { 3, 5, 12 }, { 9, 1, 1 },
						    { 1, 0, 0 } }, 4, 2);
	ASSERT_LEADER(t, 0, now, 2, 4);
	ASSERT_LEADER(t, 3, now, 2, 5);
	ASSERT_LEADER(t, 1, now, 0, 0);
	assert_int_equal(cluster_leaders_epoch(t), 13);

	/* A deposed leader's late claim (older term) changes nothing; its
	 * configuration index still counts if higher. */
	learn(t, 1, now, (struct peer_msg_leader[]){ { 3, 4, 20 } }, 1, 0);
	ASSERT_LEADER(t, 3, now, 2, 5);
	assert_int_equal(cluster_leaders_conf_index(t, 3), 20);
	assert_int_equal(cluster_leaders_epoch(t), 21);

	/* A new term's leader replaces it; a lower index never lowers the
	 * epoch. */
	learn(t, 3, now + 10, (struct peer_msg_leader[]){ { 3, 6, 15 } }, 1, 0);
	ASSERT_LEADER(t, 3, now + 10, 3, 6);
	assert_int_equal(cluster_leaders_epoch(t), 21);

	/* Not heard again: given out until LEADERS_STALE_US, then not. */
	ASSERT_LEADER(t, 0, now + LEADERS_STALE_US, 2, 4);
	ASSERT_LEADER(t, 0, now + LEADERS_STALE_US + 1, 0, 4);
	/* Heard again (the whole table every 2 s): known again. */
	learn(t, 2, now + LEADERS_STALE_US + 2, (struct peer_msg_leader[]){ { 0, 4, 0 } }, 1, 0);
	ASSERT_LEADER(t, 0, now + LEADERS_STALE_US + 2, 2, 4);
	cluster_leaders_destroy(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_entry_limit),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_every_cut),
		cmocka_unit_test(test_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
