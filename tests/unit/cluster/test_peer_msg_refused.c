/*
 * Tests of cluster/peer_msg.c, refusals: hand-made frames the encoder would
 * never write (valid ones read, every documented refusal with its code and
 * reason, sizes past the limits), truncation at every byte, truncated
 * batches and flipped bytes (documented codes only). Damaged frames are
 * decoded from exact-size heap copies, so ASan sees any read past the end.
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
#include "peer.pb.h"
#include "peer_msg_fixture.h"
#include "shard/crc32c.h"

/* ---- hand-made frames ---------------------------------------------------- */

/* A tiny protobuf writer for frames the encoder would never make. */
struct w {
	uint8_t b[1024];
	size_t n;
};

static void w_varint(struct w *w, uint64_t v)
{
	while (v >= 0x80) {
		w->b[w->n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	w->b[w->n++] = (uint8_t)v;
}

static void w_tag(struct w *w, uint32_t field, uint32_t wire)
{
	w_varint(w, (uint64_t)field << 3 | wire);
}

static void w_u64(struct w *w, uint32_t field, uint64_t v)
{
	w_tag(w, field, 0);
	w_varint(w, v);
}

static void w_bytes(struct w *w, uint32_t field, const void *p, size_t n)
{
	w_tag(w, field, 2);
	w_varint(w, n);
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void w_sub(struct w *w, uint32_t field, const struct w *sub)
{
	w_bytes(w, field, sub->b, sub->n);
}

/* A valid RaftMessage body: HEARTBEAT from 1 to 2, group 9. */
static void w_heartbeat(struct w *m)
{
	m->n = 0;
	w_u64(m, ringkv_peer_RaftMessage_group_tag, 9);
	w_u64(m, ringkv_peer_RaftMessage_type_tag, RAFT_MSG_HEARTBEAT);
	w_u64(m, ringkv_peer_RaftMessage_from_tag, 1);
	w_u64(m, ringkv_peer_RaftMessage_to_tag, 2);
}


static void test_hand_made_valid(void **state)
{
	struct w m, e, env = { .n = 0 };
	uint8_t eight[8] = { 0 };

	(void)state;
	/* Unknown fields of every wire type, everywhere, are skipped. */
	w_heartbeat(&m);
	w_u64(&m, 99, 5);
	w_tag(&m, 100, 1);
	memcpy(m.b + m.n, eight, 8);
	m.n += 8;
	w_bytes(&m, 101, "xyz", 3);
	w_tag(&m, 2000, 5);
	memcpy(m.b + m.n, eight, 4);
	m.n += 4;
	e.n = 0;
	w_u64(&e, ringkv_peer_Entry_type_tag, RAFT_ENTRY_NOOP);
	w_u64(&e, 50, 1);
	w_sub(&m, ringkv_peer_RaftMessage_entries_tag, &e);
	w_u64(&env, 77, 1);
	w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
	w_bytes(&env, 78, "future", 6);
	w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
	assert_int_equal(decode_all(env.b, env.n, &limits, NULL, 0), 0);

	/* A repeated scalar: the last one wins (protobuf's rule); a
	 * non-minimal varint (5 as 0x85 0x00) is still 5. */
	w_heartbeat(&m);
	w_u64(&m, ringkv_peer_RaftMessage_term_tag, 3);
	w_tag(&m, ringkv_peer_RaftMessage_term_tag, 0);
	m.b[m.n++] = 0x85;
	m.b[m.n++] = 0x00;
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
	{
		struct peer_msg_frame f;
		struct raft_msg msg;
		uint64_t group;

		assert_int_equal(peer_msg_decode(&f, env.b, env.n, &limits, scratch,
						 SCRATCH), 0);
		assert_int_equal(peer_msg_next(&f, &group, &msg), 1);
		assert_int_equal(msg.term, 5);
		assert_int_equal(group, 9);
		assert_int_equal(msg.type, RAFT_MSG_HEARTBEAT);
	}
}

static void expect(const struct w *env, int code, const char *fragment)
{
	char why[128];

	assert_int_equal(decode_all(env->b, env->n, &limits, why, sizeof(why)), code);
	if (fragment != NULL && strstr(why, fragment) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", why, fragment);
}

/* expect() of an envelope holding just the RaftMessage m. */
static void expect_raft(const struct w *m, int code, const char *fragment)
{
	struct w env = { .n = 0 };

	w_sub(&env, ringkv_peer_Envelope_raft_tag, m);
	expect(&env, code, fragment);
}

static void test_hand_made_refused(void **state)
{
	struct w m, e, h, env;
	uint8_t bad_conf[RAFT_CONF_ENCODED_MAX];

	(void)state;
	/* Empty frame, unknown-only frame. */
	env.n = 0;
	expect(&env, RKV_EPROTO, "no known kind");
	w_u64(&env, 99, 1);
	expect(&env, RKV_EPROTO, "no known kind");

	/* Unknown message type, type 0 (absent), type past u32. */
	for (uint64_t t = 0; t < 3; t++) {
		uint64_t type = t == 0 ? 12 : t == 1 ? 0 : (1ull << 32) + 5;

		m.n = 0;
		w_u64(&m, ringkv_peer_RaftMessage_type_tag, type);
		w_u64(&m, ringkv_peer_RaftMessage_from_tag, 1);
		w_u64(&m, ringkv_peer_RaftMessage_to_tag, 2);
		expect_raft(&m, RKV_EINVAL, "unknown type");
	}

	/* from or to missing (node 0). */
	m.n = 0;
	w_u64(&m, ringkv_peer_RaftMessage_type_tag, RAFT_MSG_VOTE);
	w_u64(&m, ringkv_peer_RaftMessage_from_tag, 1);
	expect_raft(&m, RKV_EINVAL, "node 0");

	/* A bool that is neither 0 nor 1. */
	w_heartbeat(&m);
	w_u64(&m, ringkv_peer_RaftMessage_reject_tag, 2);
	expect_raft(&m, RKV_EINVAL, "out of range");

	/* Unknown entry type; entry without a type. */
	for (int t = 0; t < 2; t++) {
		w_heartbeat(&m);
		e.n = 0;
		w_u64(&e, ringkv_peer_Entry_term_tag, 1);
		if (t == 0)
			w_u64(&e, ringkv_peer_Entry_type_tag, 4);
		w_sub(&m, ringkv_peer_RaftMessage_entries_tag, &e);
		expect_raft(&m, RKV_EINVAL, "entry: unknown type");
	}

	/* Bad confs: a bad role, a duplicate id, a wrong length, empty. */
	for (int t = 0; t < 4; t++) {
		struct raft_conf c = conf3;
		size_t n;

		if (t == 1)
			c.servers[2].id = 1;
		n = raft_conf_encode(&c, bad_conf);
		if (t == 0)
			bad_conf[n - 4] = 7;
		if (t == 2)
			n--;
		if (t == 3)
			n = 0; /* empty bytes field written explicitly */
		w_heartbeat(&m);
		w_bytes(&m, ringkv_peer_RaftMessage_conf_tag, bad_conf, n);
		expect_raft(&m, RKV_EINVAL, "bad conf");
	}

	/* Wrong wire types for known fields. */
	w_heartbeat(&m);
	w_bytes(&m, ringkv_peer_RaftMessage_term_tag, "ab", 2);
	expect_raft(&m, RKV_EPROTO, "field 7");
	w_heartbeat(&m);
	w_u64(&m, ringkv_peer_RaftMessage_entries_tag, 1);
	expect_raft(&m, RKV_EPROTO, "field 14");
	env.n = 0;
	w_u64(&env, ringkv_peer_Envelope_raft_tag, 1);
	expect(&env, RKV_EPROTO, "envelope");

	/* Groups (wire types 3 and 4) and wire types 6 and 7. */
	for (uint32_t wt = 3; wt <= 7; wt++) {
		if (wt == 5)
			continue;
		w_heartbeat(&m);
		w_tag(&m, 60, wt);
		w_varint(&m, 0);
		expect_raft(&m, RKV_EPROTO, NULL);
	}

	/* A zero field number, a varint of 11 bytes, one past 64 bits. */
	w_heartbeat(&m);
	m.b[m.n++] = 0x00;
	expect_raft(&m, RKV_EPROTO, "key");
	w_heartbeat(&m);
	w_tag(&m, ringkv_peer_RaftMessage_term_tag, 0);
	for (int i = 0; i < 10; i++)
		m.b[m.n++] = 0xff;
	m.b[m.n++] = 0x01;
	expect_raft(&m, RKV_EPROTO, "field 7");
	w_heartbeat(&m);
	w_tag(&m, ringkv_peer_RaftMessage_term_tag, 0);
	for (int i = 0; i < 9; i++)
		m.b[m.n++] = 0xff;
	m.b[m.n++] = 0x02; /* bit 64 */
	expect_raft(&m, RKV_EPROTO, "field 7");

	/* Kinds mixed, or one kind twice. */
	h.n = 0;
	w_u64(&h, ringkv_peer_Hello_node_id_tag, 1);
	w_u64(&h, ringkv_peer_Hello_version_tag, 1);
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_hello_tag, &h);
	expect(&env, 0, NULL);
	w_heartbeat(&m);
	w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
	expect(&env, RKV_EPROTO, "more than one");
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_raft_tag, &m);
	w_sub(&env, ringkv_peer_Envelope_hello_tag, &h);
	expect(&env, RKV_EPROTO, "more than one");
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_hello_tag, &h);
	w_sub(&env, ringkv_peer_Envelope_hello_tag, &h);
	expect(&env, RKV_EPROTO, "more than one");

	/* Hello: node 0, version 0, a core past u32. */
	h.n = 0;
	w_u64(&h, ringkv_peer_Hello_version_tag, 1);
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_hello_tag, &h);
	expect(&env, RKV_EINVAL, "node id 0");
	h.n = 0;
	w_u64(&h, ringkv_peer_Hello_node_id_tag, 1);
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_hello_tag, &h);
	expect(&env, RKV_EINVAL, "version 0");
	w_u64(&h, ringkv_peer_Hello_version_tag, 1);
	w_u64(&h, ringkv_peer_Hello_to_core_tag, 1ull << 32);
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_hello_tag, &h);
	expect(&env, RKV_EPROTO, "field 4");

	/* Snapshot chunk: a path in the name, a name with NUL, crc as varint. */
	h.n = 0;
	w_bytes(&h, ringkv_peer_SnapshotChunk_file_tag, "a/b", 3);
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_snapshot_chunk_tag, &h);
	expect(&env, RKV_EINVAL, "file name");
	h.n = 0;
	w_bytes(&h, ringkv_peer_SnapshotChunk_file_tag, "a\0b", 3);
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_snapshot_chunk_tag, &h);
	expect(&env, RKV_EINVAL, "file name");
	h.n = 0;
	w_bytes(&h, ringkv_peer_SnapshotChunk_file_tag, "ok", 2);
	w_u64(&h, ringkv_peer_SnapshotChunk_crc32c_tag, 0);
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_snapshot_chunk_tag, &h);
	expect(&env, RKV_EPROTO, "field 7");
	h.n = 0;
	w_bytes(&h, ringkv_peer_SnapshotChunk_file_tag, "ok", 2);
	w_u64(&h, ringkv_peer_SnapshotChunk_offset_tag, UINT64_MAX);
	w_bytes(&h, ringkv_peer_SnapshotChunk_data_tag, "z", 1);
	w_tag(&h, ringkv_peer_SnapshotChunk_crc32c_tag, 5);
	{
		uint32_t crc = crc32c(0, "z", 1);

		for (int i = 0; i < 4; i++)
			h.b[h.n++] = (uint8_t)(crc >> (8 * i));
	}
	env.n = 0;
	w_sub(&env, ringkv_peer_Envelope_snapshot_chunk_tag, &h);
	expect(&env, RKV_EINVAL, "offset overflows");
}

/* Hand-made frames past the limits the encoder never writes. */
static void test_hand_made_too_large(void **state)
{
	static uint8_t frame[8192];
	struct peer_msg_limits small = limits;
	struct peer_msg_frame f;
	uint8_t name[PEER_MSG_MAX_FILE_NAME + 1];
	struct w *h = malloc(sizeof(*h)), *env = malloc(sizeof(*env));
	char why[128];
	size_t n;

	(void)state;
	assert_non_null(h);
	assert_non_null(env);
	/* A refusal reason over PEER_MSG_MAX_REASON: built in `frame` by hand
	 * (struct w is too small). Envelope field 2, HelloReply field 2. */
	n = 0;
	frame[n++] = (ringkv_peer_Envelope_hello_reply_tag << 3) | 2;
	frame[n++] = 0x84; /* body: 3 + 1025 = 1028 bytes */
	frame[n++] = 0x08;
	frame[n++] = (ringkv_peer_HelloReply_reason_tag << 3) | 2;
	frame[n++] = 0x81; /* 1025 */
	frame[n++] = 0x08;
	memset(frame + n, 'r', PEER_MSG_MAX_REASON + 1);
	n += PEER_MSG_MAX_REASON + 1;
	assert_int_equal(decode_all(frame, n, &limits, why, sizeof(why)), RKV_ETOOLARGE);
	assert_non_null(strstr(why, "reason"));
	frame[4] = 0x80; /* exactly 1024 bytes: accepted */
	frame[1] = 0x83;
	assert_int_equal(decode_all(frame, n - 1, &limits, NULL, 0), 0);

	/* A file name over PEER_MSG_MAX_FILE_NAME. */
	memset(name, 'n', sizeof(name));
	h->n = 0;
	w_bytes(h, ringkv_peer_SnapshotChunk_file_tag, name, sizeof(name));
	env->n = 0;
	w_sub(env, ringkv_peer_Envelope_snapshot_chunk_tag, h);
	assert_int_equal(decode_all(env->b, env->n, &limits, why, sizeof(why)),
			 RKV_ETOOLARGE);
	assert_non_null(strstr(why, "file name"));

	/* Chunk data, forwarded request and response over max_data_bytes. */
	small.max_data_bytes = 3;
	h->n = 0;
	w_bytes(h, ringkv_peer_SnapshotChunk_file_tag, "f", 1);
	w_bytes(h, ringkv_peer_SnapshotChunk_data_tag, "abcd", 4);
	env->n = 0;
	w_sub(env, ringkv_peer_Envelope_snapshot_chunk_tag, h);
	assert_int_equal(decode_all(env->b, env->n, &small, NULL, 0), RKV_ETOOLARGE);
	h->n = 0;
	w_bytes(h, ringkv_peer_Forward_request_tag, "abcd", 4);
	env->n = 0;
	w_sub(env, ringkv_peer_Envelope_forward_tag, h);
	assert_int_equal(decode_all(env->b, env->n, &small, NULL, 0), RKV_ETOOLARGE);
	assert_int_equal(decode_all(env->b, env->n, &limits, NULL, 0), 0);
	h->n = 0;
	w_bytes(h, ringkv_peer_ForwardReply_response_tag, "abcd", 4);
	env->n = 0;
	w_sub(env, ringkv_peer_Envelope_forward_reply_tag, h);
	assert_int_equal(decode_all(env->b, env->n, &small, NULL, 0), RKV_ETOOLARGE);
	assert_int_equal(decode_all(env->b, env->n, &limits, NULL, 0), 0);

	/* No bytes at all. */
	assert_int_equal(peer_msg_decode(&f, NULL, 0, &limits, NULL, 0), RKV_EPROTO);
	free(h);
	free(env);
}

/* ---- damaged frames ------------------------------------------------------ */

/* Every proper prefix of a one-message frame is refused. */
static void test_truncated_every_byte(void **state)
{
	struct raft_msg m = full_msg(RAFT_MSG_SNAPSHOT);
	struct peer_msg_item it = { 12, &m };
	struct peer_msg_buf out;
	const uint8_t *payload;
	size_t len;

	(void)state;
	m.entries = entries;
	m.n_entries = 3;
	m.len = 10;
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_batch(&out, &limits, &it, 1), 0);
	payload = payload_of(&out, 0, &len);
	for (size_t n = 0; n < len; n++) {
		int rv = decode_all(payload, n, &limits, NULL, 0);

		assert_int_equal(rv, RKV_EPROTO);
	}
	assert_int_equal(decode_all(payload, len, &limits, NULL, 0), 0);
	peer_msg_buf_free(&out);
}

/* Truncating a batch: refused, or a shorter batch of the first messages. */
static void test_truncated_batch(void **state)
{
	struct raft_msg want[3] = { full_msg(RAFT_MSG_VOTE), full_msg(RAFT_MSG_APPEND),
				    full_msg(RAFT_MSG_HEARTBEAT_RESP) };
	struct peer_msg_item items[3] = { { 1, &want[0] }, { 2, &want[1] },
					   { 3, &want[2] } };
	struct peer_msg_buf out;
	const uint8_t *payload;
	size_t len, whole = 0;

	(void)state;
	for (int i = 0; i < 3; i++) {
		want[i].n_entries = 2;
		want[i].len = 3;
	}
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_batch(&out, &limits, items, 3), 0);
	payload = payload_of(&out, 0, &len);
	for (size_t n = 0; n < len; n++) {
		struct peer_msg_frame f;
		struct raft_msg m;
		uint64_t group;
		uint32_t got = 0;
		int rv = peer_msg_decode(&f, payload, n, &limits, scratch, SCRATCH);

		if (rv != 0) {
			assert_int_equal(rv, RKV_EPROTO);
			continue;
		}
		whole++;
		assert_true(f.n_msgs < 3);
		while ((rv = peer_msg_next(&f, &group, &m)) == 1) {
			assert_int_equal(group, got + 1);
			assert_msg_eq(&m, &want[got]);
			got++;
		}
		assert_int_equal(rv, 0);
		assert_int_equal(got, f.n_msgs);
	}
	assert_int_equal(whole, 2); /* cut after the first and the second */
	peer_msg_buf_free(&out);
}

/* Every byte flipped (each bit, and all bits): documented codes only,
 * every slice inside the copy (checked in decode_all; ASan checks reads). */
static void test_flipped_bytes(void **state)
{
	struct raft_msg m = full_msg(RAFT_MSG_SNAPSHOT);
	struct raft_msg a = full_msg(RAFT_MSG_APPEND);
	struct peer_msg_item items[2] = { { 300, &m }, { 5, &a } };
	struct peer_msg_chunk c = { .group = 1, .file = { (const uint8_t *)"f.sst", 5 },
				    .data = { big, 40 }, .last = true };
	struct peer_msg_hello h = { .cluster_id = 1, .node_id = 2, .from_core = 3, .to_core = 4, .version = 1, .to_node_id = 2 };
	struct peer_msg_buf out;
	uint8_t *copy;
	size_t at[3], n_ok = 0;

	(void)state;
	m.n_entries = 3;
	m.len = 20;
	a.n_entries = 3;
	a.len = 0;
	a.conf = NULL;
	peer_msg_buf_init(&out);
	at[0] = out.len;
	assert_int_equal(peer_msg_encode_batch(&out, &limits, items, 2), 0);
	at[1] = out.len;
	assert_int_equal(peer_msg_encode_chunk(&out, &limits, &c), 0);
	at[2] = out.len;
	assert_int_equal(peer_msg_encode_hello(&out, &h), 0);
	for (int k = 0; k < 3; k++) {
		const uint8_t *payload;
		size_t len;

		payload = payload_of(&out, at[k], &len);
		copy = malloc(len);
		assert_non_null(copy);
		for (size_t i = 0; i < len; i++) {
			for (int bit = 0; bit <= 8; bit++) {
				uint8_t flip = bit == 8 ? 0xff : (uint8_t)(1u << bit);
				int rv;

				memcpy(copy, payload, len);
				copy[i] ^= flip;
				rv = decode_all(copy, len, &limits, NULL, 0);
				assert_true(rv == 0 || rv == RKV_EPROTO ||
					    rv == RKV_EINVAL || rv == RKV_ETOOLARGE ||
					    rv == RKV_ECORRUPT);
				n_ok += rv == 0;
			}
		}
		free(copy);
	}
	/* Some flips land in values (terms, data bytes): still valid. */
	assert_true(n_ok > 0);
	peer_msg_buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hand_made_valid),
		cmocka_unit_test(test_hand_made_refused),
		cmocka_unit_test(test_hand_made_too_large),
		cmocka_unit_test(test_truncated_every_byte),
		cmocka_unit_test(test_truncated_batch),
		cmocka_unit_test(test_flipped_bytes),
	};

	return cmocka_run_group_tests(tests, peer_msg_fixture_setup, NULL);
}
