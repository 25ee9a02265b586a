/*
 * Tests of cluster/peer_msg.c against nanopb's reading of proto/peer.proto:
 * the codec writes the wire format by hand, so nanopb's encoder writes
 * frames it must decode, and its decoder reads the frames the codec writes.
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

#include <pb_decode.h>
#include <pb_encode.h>

#include "peer.pb.h"
#include "peer_msg_fixture.h"

/* ---- conformance with nanopb's reading of proto/peer.proto ------------- */

struct nb_bytes {
	const void *data;
	size_t len;
};

static bool nb_put_bytes(pb_ostream_t *s, const pb_field_t *field, void *const *arg)
{
	const struct nb_bytes *b = *arg;

	if (b->len == 0)
		return true;
	return pb_encode_tag_for_field(s, field) && pb_encode_string(s, b->data, b->len);
}

static bool nb_put_entries(pb_ostream_t *s, const pb_field_t *field, void *const *arg)
{
	const struct raft_msg *m = *arg;

	for (uint32_t i = 0; i < m->n_entries; i++) {
		struct nb_bytes data = { m->entries[i].data, m->entries[i].len };
		ringkv_peer_Entry e = ringkv_peer_Entry_init_zero;

		e.term = m->entries[i].term;
		e.type = (ringkv_peer_EntryType)m->entries[i].type;
		e.data.funcs.encode = nb_put_bytes;
		e.data.arg = &data;
		if (!pb_encode_tag_for_field(s, field) ||
		    !pb_encode_submessage(s, ringkv_peer_Entry_fields, &e))
			return false;
	}
	return true;
}

static bool nb_put_msgs(pb_ostream_t *s, const pb_field_t *field, void *const *arg)
{
	const struct raft_msg *m = *arg;
	struct nb_bytes data = { m->data, m->len }, conf = { conf_bytes, conf_len };
	ringkv_peer_RaftMessage rm = ringkv_peer_RaftMessage_init_zero;

	rm.group = 4242;
	rm.type = (ringkv_peer_MessageType)m->type;
	rm.reject = m->reject;
	rm.done = m->done;
	rm.from = m->from;
	rm.to = m->to;
	rm.term = m->term;
	rm.index = m->index;
	rm.log_term = m->log_term;
	rm.commit = m->commit;
	rm.hint = m->hint;
	rm.context = m->context;
	rm.offset = m->offset;
	rm.entries.funcs.encode = nb_put_entries;
	rm.entries.arg = (void *)m;
	rm.data.funcs.encode = nb_put_bytes;
	rm.data.arg = &data;
	rm.conf.funcs.encode = nb_put_bytes;
	rm.conf.arg = &conf;
	return pb_encode_tag_for_field(s, field) &&
	       pb_encode_submessage(s, ringkv_peer_RaftMessage_fields, &rm);
}

/* nanopb writes, peer_msg reads. */
static void test_nanopb_encodes_we_decode(void **state)
{
	static uint8_t buf[300000];
	struct raft_msg m = full_msg(RAFT_MSG_SNAPSHOT), got;
	ringkv_peer_Envelope env = ringkv_peer_Envelope_init_zero;
	struct peer_msg_frame f;
	pb_ostream_t s;
	uint64_t group;

	(void)state;
	env.raft.funcs.encode = nb_put_msgs;
	env.raft.arg = &m;
	s = pb_ostream_from_buffer(buf, sizeof(buf));
	assert_true(pb_encode(&s, ringkv_peer_Envelope_fields, &env));
	assert_int_equal(peer_msg_decode(&f, buf, s.bytes_written, &limits, scratch,
					 SCRATCH), 0);
	assert_int_equal(f.kind, PEER_MSG_RAFT);
	assert_int_equal(f.n_msgs, 1);
	assert_int_equal(peer_msg_next(&f, &group, &got), 1);
	assert_int_equal(group, 4242);
	assert_msg_eq(&got, &m);

	memset(&env, 0, sizeof(env));
	env.which_body = ringkv_peer_Envelope_hello_tag;
	env.body.hello = (ringkv_peer_Hello){ .cluster_id = 11, .node_id = 12, .from_core = 13,
					      .to_core = 14, .version = 1, .to_node_id = 15 };
	s = pb_ostream_from_buffer(buf, sizeof(buf));
	assert_true(pb_encode(&s, ringkv_peer_Envelope_fields, &env));
	assert_int_equal(peer_msg_decode(&f, buf, s.bytes_written, &limits, NULL, 0), 0);
	assert_int_equal(f.kind, PEER_MSG_HELLO);
	assert_int_equal(f.hello.cluster_id, 11);
	assert_int_equal(f.hello.node_id, 12);
	assert_int_equal(f.hello.from_core, 13);
	assert_int_equal(f.hello.to_core, 14);
	assert_int_equal(f.hello.version, 1);
	assert_int_equal(f.hello.to_node_id, 15);
}

struct nb_seen {
	ringkv_peer_RaftMessage msgs[4];
	uint32_t n_msgs;
	uint32_t n_entries[4];
	uint64_t entry_bytes[4];
	uint64_t data_len[4];
	uint64_t conf_len[4];
};

static bool nb_get_len(pb_istream_t *s, const pb_field_t *field, void **arg)
{
	uint64_t *len = *arg;

	(void)field;
	*len += s->bytes_left;
	return pb_read(s, NULL, s->bytes_left);
}

static bool nb_get_entry(pb_istream_t *s, const pb_field_t *field, void **arg)
{
	struct nb_seen *seen = *arg;
	uint32_t i = seen->n_msgs;
	ringkv_peer_Entry e = ringkv_peer_Entry_init_zero;

	(void)field;
	e.data.funcs.decode = nb_get_len;
	e.data.arg = &seen->entry_bytes[i];
	if (!pb_decode(s, ringkv_peer_Entry_fields, &e))
		return false;
	seen->n_entries[i]++;
	return true;
}

static bool nb_get_msg(pb_istream_t *s, const pb_field_t *field, void **arg)
{
	struct nb_seen *seen = *arg;
	uint32_t i = seen->n_msgs;
	ringkv_peer_RaftMessage *rm = &seen->msgs[i];

	(void)field;
	if (i >= 4)
		return false;
	*rm = (ringkv_peer_RaftMessage)ringkv_peer_RaftMessage_init_zero;
	rm->entries.funcs.decode = nb_get_entry;
	rm->entries.arg = seen;
	rm->data.funcs.decode = nb_get_len;
	rm->data.arg = &seen->data_len[i];
	rm->conf.funcs.decode = nb_get_len;
	rm->conf.arg = &seen->conf_len[i];
	if (!pb_decode(s, ringkv_peer_RaftMessage_fields, rm))
		return false;
	seen->n_msgs++;
	return true;
}

/* peer_msg writes, nanopb reads. */
static void test_we_encode_nanopb_decodes(void **state)
{
	struct raft_msg m = full_msg(RAFT_MSG_APPEND);
	struct raft_msg hb = { .type = RAFT_MSG_HEARTBEAT_RESP, .from = 3, .to = 1,
			       .context = 9 };
	struct peer_msg_item items[2] = { { 77, &m }, { 78, &hb } };
	struct peer_msg_hello h = { .cluster_id = 1ull << 60, .node_id = 5, .from_core = 6, .to_core = 7, .version = 1, .to_node_id = 8,
				    .data_dir_id = 1ull << 63 | 5, .data_dir_new = true,
				    .boot_id = UINT64_MAX - 1 };
	static struct nb_seen seen;
	ringkv_peer_Envelope env;
	struct peer_msg_buf out;
	const uint8_t *payload;
	pb_istream_t s;
	size_t len, at;
	uint64_t bytes = 0;

	(void)state;
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_batch(&out, &limits, items, 2), 0);
	at = out.len;
	assert_int_equal(peer_msg_encode_hello(&out, &h), 0);

	payload = payload_of(&out, 0, &len);
	memset(&seen, 0, sizeof(seen));
	memset(&env, 0, sizeof(env));
	env.raft.funcs.decode = nb_get_msg;
	env.raft.arg = &seen;
	s = pb_istream_from_buffer(payload, len);
	assert_true(pb_decode(&s, ringkv_peer_Envelope_fields, &env));
	assert_int_equal(env.which_body, 0);
	assert_int_equal(seen.n_msgs, 2);
	assert_int_equal(seen.msgs[0].group, 77);
	assert_int_equal(seen.msgs[0].type, RAFT_MSG_APPEND);
	assert_true(seen.msgs[0].reject && seen.msgs[0].done);
	assert_int_equal(seen.msgs[0].from, m.from);
	assert_int_equal(seen.msgs[0].to, m.to);
	assert_int_equal(seen.msgs[0].term, m.term);
	assert_int_equal(seen.msgs[0].index, m.index);
	assert_int_equal(seen.msgs[0].log_term, m.log_term);
	assert_int_equal(seen.msgs[0].commit, m.commit);
	assert_int_equal(seen.msgs[0].hint, m.hint);
	assert_int_equal(seen.msgs[0].context, m.context);
	assert_int_equal(seen.msgs[0].offset, m.offset);
	assert_int_equal(seen.n_entries[0], 5);
	for (int i = 0; i < 5; i++)
		bytes += entries[i].len;
	assert_int_equal(seen.entry_bytes[0], bytes);
	assert_int_equal(seen.data_len[0], 5000);
	assert_int_equal(seen.conf_len[0], conf_len);
	assert_int_equal(seen.msgs[1].group, 78);
	assert_int_equal(seen.msgs[1].type, RAFT_MSG_HEARTBEAT_RESP);
	assert_int_equal(seen.msgs[1].context, 9);
	assert_int_equal(seen.n_entries[1], 0);
	assert_int_equal(seen.conf_len[1], 0);

	payload = payload_of(&out, at, &len);
	memset(&env, 0, sizeof(env));
	s = pb_istream_from_buffer(payload, len);
	assert_true(pb_decode(&s, ringkv_peer_Envelope_fields, &env));
	assert_int_equal(env.which_body, ringkv_peer_Envelope_hello_tag);
	assert_true(env.body.hello.data_dir_id == (1ull << 63 | 5));
	assert_true(env.body.hello.data_dir_new);
	assert_true(env.body.hello.boot_id == UINT64_MAX - 1);
	assert_int_equal(env.body.hello.cluster_id, h.cluster_id);
	assert_int_equal(env.body.hello.node_id, 5);
	assert_int_equal(env.body.hello.from_core, 6);
	assert_int_equal(env.body.hello.to_core, 7);
	assert_int_equal(env.body.hello.version, 1);
	assert_int_equal(env.body.hello.to_node_id, 8);
	peer_msg_buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nanopb_encodes_we_decode),
		cmocka_unit_test(test_we_encode_nanopb_decodes),
	};

	return cmocka_run_group_tests(tests, peer_msg_fixture_setup, NULL);
}
