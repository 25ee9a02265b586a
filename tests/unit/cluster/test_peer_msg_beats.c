/*
 * Tests of the Heartbeats peer frame (Envelope field 11: coalesced
 * heartbeats and the liveness beacon; cluster/peer_msg.c and
 * peer_msg_decode.c): round trips at varint edges, empty (the beacon) and
 * at the entry limit; hand-made bodies the decoder must refuse; every cut
 * of a frame decoded from an exact-size copy (for ASan); and which Raft
 * messages may travel as entries, and back to the same message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/peer_msg.h"
#include "cluster/replica_ident.h"
#include "core/errors.h"

static struct peer_msg_limits limits;

static int decode_copy(struct peer_msg_frame *f, uint8_t **copy, const uint8_t *p, size_t len)
{
	*copy = malloc(len ? len : 1);
	assert_non_null(*copy);
	memcpy(*copy, p, len);
	return peer_msg_decode(f, *copy, len, &limits, NULL, 0);
}

static uint32_t read_all(const struct peer_msg_heartbeats *h, struct peer_msg_beat *out,
			 uint32_t cap)
{
	struct peer_msg_heartbeats_iter it;
	uint32_t n = 0;

	peer_msg_heartbeats_begin(&it, h);
	while (n < cap && peer_msg_heartbeats_next(&it, &out[n]) == 1)
		n++;
	return n;
}

static void round_trip(const struct peer_msg_beat *in, uint32_t n)
{
	struct peer_msg_beat *back = calloc(n ? n : 1, sizeof *back);
	struct peer_msg_buf out;
	struct peer_msg_frame f;
	uint8_t *copy;

	assert_non_null(back);
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_heartbeats(&out, in, n), 0);
	assert_true(out.len <= PEER_MSG_HEADER_SIZE + 20 + 50 * (size_t)n);
	assert_int_equal(decode_copy(&f, &copy, out.data + PEER_MSG_HEADER_SIZE,
				     out.len - PEER_MSG_HEADER_SIZE), 0);
	assert_int_equal(f.kind, PEER_MSG_HEARTBEATS);
	assert_int_equal(f.heartbeats.count, n);
	assert_int_equal(read_all(&f.heartbeats, back, n), n);
	if (n)
		assert_memory_equal(back, in, n * sizeof *in);
	free(copy);
	free(back);
	peer_msg_buf_free(&out);
}

static void test_round_trip(void **state)
{
	static const uint64_t v[] = { 0, 1, 127, 128, 16383, UINT32_MAX, UINT64_MAX };
	struct peer_msg_beat e[7 * 7];
	uint32_t n = 0;

	(void)state;
	peer_msg_limits_default(&limits);
	for (int i = 0; i < 7; i++)
		for (int k = 0; k < 7; k++)
			e[n++] = (struct peer_msg_beat){ v[i], v[k], v[(i + k) % 7],
							 v[(i * k) % 7], v[(i + 2 * k) % 7] };
	round_trip(e, 0); /* the liveness beacon */
	round_trip(e, 1);
	round_trip(e, n);
}

/* The beacon is a few bytes; a beat of a small group is about 6. */
static void test_sizes(void **state)
{
	struct peer_msg_beat e[100];
	struct peer_msg_buf out;

	(void)state;
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_heartbeats(&out, NULL, 0), 0);
	assert_true(out.len <= PEER_MSG_HEADER_SIZE + 2);
	out.len = 0;
	for (int i = 0; i < 100; i++)
		e[i] = (struct peer_msg_beat){ (uint64_t)i, 3, 100, 0, 0 };
	assert_int_equal(peer_msg_encode_heartbeats(&out, e, 100), 0);
	assert_true(out.len <= PEER_MSG_HEADER_SIZE + 2 + 5 * 3 + 100 * 6);
	peer_msg_buf_free(&out);
}

static void test_entry_limit(void **state)
{
	struct peer_msg_beat *e = calloc(PEER_MSG_MAX_BEATS + 1, sizeof *e);
	struct peer_msg_buf out;

	(void)state;
	peer_msg_limits_default(&limits);
	assert_non_null(e);
	for (uint32_t i = 0; i <= PEER_MSG_MAX_BEATS; i++)
		e[i] = (struct peer_msg_beat){ i, 1000 + i, i * 7, i & 3, i & 7 };
	round_trip(e, PEER_MSG_MAX_BEATS);
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_heartbeats(&out, e, PEER_MSG_MAX_BEATS + 1),
			 RKV_ETOOLARGE);
	assert_int_equal(out.len, 0);
	peer_msg_buf_free(&out);
	free(e);
}

/* Envelope field 11 around `body`. */
static int decode_body(const uint8_t *body, size_t n)
{
	uint8_t *buf = malloc(n + 8), *copy;
	struct peer_msg_frame f;
	size_t h = 0, len = n;
	int rv;

	assert_non_null(buf);
	buf[h++] = 11 << 3 | 2;
	do {
		buf[h++] = (uint8_t)((len & 0x7f) | (len >= 0x80 ? 0x80 : 0));
	} while ((len >>= 7) != 0 && h < 8);
	if (n)
		memcpy(buf + h, body, n); /* body may be NULL when empty */
	rv = decode_copy(&f, &copy, buf, h + n);
	free(copy);
	free(buf);
	return rv;
}

static void test_refused(void **state)
{
	static const uint8_t ok[] = { 0x0a, 1, 5, 0x12, 1, 9, 0x1a, 1, 0, 0x22, 1, 0, 0x2a, 1, 2 };
	static const uint8_t unequal[] = { 0x0a, 1, 5, 0x12, 2, 9, 9, 0x1a, 1, 0,
					   0x22, 1, 0, 0x2a, 1, 2 };
	static const uint8_t missing[] = { 0x0a, 1, 5, 0x12, 1, 9, 0x1a, 1, 0, 0x22, 1, 0 };
	static const uint8_t twice[] = { 0x0a, 1, 5, 0x12, 1, 9, 0x1a, 1, 0, 0x22, 1, 0,
					 0x2a, 1, 2, 0x0a, 1, 6 };
	static const uint8_t bad_varint[] = { 0x0a, 1, 0x80, 0x12, 1, 9, 0x1a, 1, 0,
					      0x22, 1, 0, 0x2a, 1, 2 };
	static const uint8_t wrong_wire[] = { 0x08, 5, 0x12, 1, 9 };
	static const uint8_t unknown_field[] = { 0x30, 7, 0x0a, 1, 5, 0x12, 1, 9, 0x1a, 1, 0,
						 0x22, 1, 0, 0x2a, 1, 2 };
	size_t big = PEER_MSG_MAX_BEATS + 1;
	uint8_t *many = malloc(5 * (big + 4));
	size_t at = 0;

	(void)state;
	peer_msg_limits_default(&limits);
	assert_int_equal(decode_body(ok, sizeof ok), 0);
	assert_int_equal(decode_body(NULL, 0), 0); /* the beacon */
	assert_int_equal(decode_body(unknown_field, sizeof unknown_field), 0);
	assert_int_equal(decode_body(unequal, sizeof unequal), RKV_EPROTO);
	assert_int_equal(decode_body(missing, sizeof missing), RKV_EPROTO);
	assert_int_equal(decode_body(twice, sizeof twice), RKV_EPROTO);
	assert_int_equal(decode_body(bad_varint, sizeof bad_varint), RKV_EPROTO);
	assert_int_equal(decode_body(wrong_wire, sizeof wrong_wire), RKV_EPROTO);
	assert_non_null(many);
	for (uint8_t tag = 0x0a; tag <= 0x2a; tag += 8) {
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
	struct peer_msg_beat e[4] = { { 0, 1, 0, 0, 0 }, { 300, 70000, 5, 9, 3 },
				      { 7, UINT64_MAX, 1, UINT64_MAX, 1 },
				      { 16383, 2, 1ull << 40, 0, 6 } };
	struct peer_msg_buf out;

	(void)state;
	peer_msg_limits_default(&limits);
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_heartbeats(&out, e, 4), 0);
	for (size_t cut = 0; cut < out.len - PEER_MSG_HEADER_SIZE; cut++) {
		struct peer_msg_frame f;
		uint8_t *copy;
		int rv = decode_copy(&f, &copy, out.data + PEER_MSG_HEADER_SIZE, cut);

		/* a cut at a list boundary leaves unequal lists: refused too */
		assert_int_not_equal(rv, 0);
		free(copy);
	}
	peer_msg_buf_free(&out);
}

/* Heartbeats and answers between incarnation-0 replicas go compact, and
 * come back as the same message; anything else stays a RaftMessage. */
static void test_raft_mapping(void **state)
{
	struct raft_msg hb = { .type = RAFT_MSG_HEARTBEAT, .from = 2, .to = 3, .term = 7,
			       .commit = 41, .context = 5, .done = true };
	struct raft_msg resp = { .type = RAFT_MSG_HEARTBEAT_RESP, .from = 3, .to = 2, .term = 7,
				 .context = 5, .reject = true };
	struct raft_msg back, m;
	struct peer_msg_beat b;

	(void)state;
	assert_true(peer_msg_beat_from_raft(&hb, 12, &b));
	assert_int_equal(b.group, 12);
	assert_int_equal(b.flags, PEER_BEAT_DONE);
	peer_msg_beat_to_raft(&b, 2, 3, &back);
	assert_memory_equal(&back, &hb, sizeof hb);
	assert_true(peer_msg_beat_from_raft(&resp, 12, &b));
	assert_int_equal(b.flags, PEER_BEAT_RESP | PEER_BEAT_REJECT);
	peer_msg_beat_to_raft(&b, 3, 2, &back);
	assert_memory_equal(&back, &resp, sizeof resp);
	/* another incarnation on either side */
	m = hb;
	m.to = replica_ident(3, 1);
	assert_false(peer_msg_beat_from_raft(&m, 12, &b));
	m = hb;
	m.from = replica_ident(2, 4);
	assert_false(peer_msg_beat_from_raft(&m, 12, &b));
	/* other types, or fields the entry has no room for */
	m = hb;
	m.type = RAFT_MSG_APPEND;
	assert_false(peer_msg_beat_from_raft(&m, 12, &b));
	m = hb;
	m.index = 1;
	assert_false(peer_msg_beat_from_raft(&m, 12, &b));
	m = resp;
	m.commit = 1;
	assert_false(peer_msg_beat_from_raft(&m, 12, &b));
	/* unknown flag bits are ignored */
	b = (struct peer_msg_beat){ 1, 2, 3, 4, 0xf8 | PEER_BEAT_DONE };
	peer_msg_beat_to_raft(&b, 5, 6, &back);
	assert_int_equal(back.type, RAFT_MSG_HEARTBEAT);
	assert_true(back.done);
	assert_false(back.reject);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_entry_limit),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_every_cut),
		cmocka_unit_test(test_raft_mapping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
