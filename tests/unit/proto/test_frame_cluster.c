/*
 * Tests of the cluster parts of proto/frame.c: the cluster map and status
 * requests and answers round-trip, the bounds hold (frame_*_max_size never
 * under-counts), the decoder's limits refuse what passes them, handlers can
 * stop decoding, and damaged frames give an error, never a crash.
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

static struct frame_slice slice_str(const char *s)
{
	return (struct frame_slice){ (const uint8_t *)s, (uint32_t)strlen(s) };
}

/* What the handlers saw. */
struct seen {
	struct frame_map_node nodes[8];
	char node_text[8][3][600];
	unsigned n_nodes;
	struct frame_map_shard shards[8];
	unsigned n_shards;
	struct frame_replica_status replicas[4];
	char roles[4][32];
	unsigned n_replicas;
	struct frame_peer_status peers[4];
	unsigned n_peers;
	int stop_at_node;          /* return 99 from this node's call (1-based) */
};

static void text_of(char *dst, size_t cap, struct frame_slice s)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;

	assert_non_null(s.data);
	memcpy(dst, s.data, n);
	dst[n] = '\0';
}

static int on_node(void *arg, const struct frame_map_node *n)
{
	struct seen *s = arg;

	if (s->n_nodes >= 8)
		return 0;
	s->nodes[s->n_nodes] = *n;
	text_of(s->node_text[s->n_nodes][0], 600, n->peer);
	text_of(s->node_text[s->n_nodes][1], 600, n->client);
	text_of(s->node_text[s->n_nodes][2], 600, n->resp);
	s->n_nodes++;
	if (s->stop_at_node && (int)s->n_nodes == s->stop_at_node)
		return 99;
	return 0;
}

static int on_shard(void *arg, const struct frame_map_shard *sh)
{
	struct seen *s = arg;

	if (s->n_shards < 8)
		s->shards[s->n_shards++] = *sh;
	return 0;
}

static int on_replica(void *arg, const struct frame_replica_status *r)
{
	struct seen *s = arg;

	if (s->n_replicas < 4) {
		text_of(s->roles[s->n_replicas], 32, r->role);
		s->replicas[s->n_replicas++] = *r;
	}
	return 0;
}

static int on_peer(void *arg, const struct frame_peer_status *p)
{
	struct seen *s = arg;

	if (s->n_peers < 4)
		s->peers[s->n_peers++] = *p;
	return 0;
}

static const struct frame_map_node map_nodes[3] = {
	{ 1, { (const uint8_t *)"127.0.2.11:22100", 16 },
	  { (const uint8_t *)"127.0.2.11:22070", 16 }, { NULL, 0 } },
	{ 2, { (const uint8_t *)"127.0.2.12:22100", 16 },
	  { (const uint8_t *)"127.0.2.12:22070", 16 }, { (const uint8_t *)"127.0.2.12:6379", 15 } },
	{ 3, { (const uint8_t *)"127.0.2.13:22100", 16 }, { NULL, 0 }, { NULL, 0 } },
};

static void make_shards(struct frame_map_shard *sh)
{
	memset(sh, 0, 2 * sizeof *sh);
	sh[0] = (struct frame_map_shard){ .id = 0, .slot_start = 0, .slot_end = 8192,
					  .leader = 2, .term = 7, .replica_count = 3 };
	sh[0].replicas[0] = (struct frame_map_replica){ 1, 0 };
	sh[0].replicas[1] = (struct frame_map_replica){ 2, 1 };
	sh[0].replicas[2] = (struct frame_map_replica){ 3, 0 };
	sh[1] = (struct frame_map_shard){ .id = 1, .slot_start = 8192, .slot_end = 16384,
					  .leader = 0, .term = 0, .replica_count = 1 };
	sh[1].replicas[0] = (struct frame_map_replica){ 3, 5 };
}

/* Encodes, checks the bound and the length prefix; returns the payload. */
static uint8_t *encode(const struct frame_response *r, size_t *payload_len)
{
	size_t bound = frame_response_max_size(r);
	uint8_t *buf = malloc(bound);
	uint8_t *payload;
	int n;

	assert_non_null(buf);
	n = frame_encode_response(r, buf, bound);
	assert_true(n > FRAME_HEADER_SIZE);
	assert_true((size_t)n <= bound);
	/* One byte less than needed fails cleanly. */
	assert_int_equal(frame_encode_response(r, buf, (size_t)n - 1), RKV_ETOOLARGE);
	n = frame_encode_response(r, buf, bound);
	*payload_len = (size_t)n - FRAME_HEADER_SIZE;
	payload = malloc(*payload_len ? *payload_len : 1);
	assert_non_null(payload);
	memcpy(payload, buf + FRAME_HEADER_SIZE, *payload_len);
	free(buf);
	return payload;
}

static void test_request_ops(void **state)
{
	struct frame_limits l;
	struct frame_request req = { .id = 42, .op = FRAME_OP_CLUSTER_MAP, .no_forward = true };
	struct frame_request out;
	uint8_t buf[64];
	int n;

	(void)state;
	frame_limits_default(&l);
	n = frame_encode_request(&req, buf, sizeof buf);
	assert_true(n > 0 && (size_t)n <= frame_request_max_size(&req));
	assert_int_equal(frame_decode_request(buf + 4, (size_t)n - 4, &l, &out, NULL, 0), 0);
	assert_int_equal(out.id, 42);
	assert_int_equal(out.op, FRAME_OP_CLUSTER_MAP);
	assert_true(out.no_forward);
	assert_int_equal(out.key.len, 0);

	req.op = FRAME_OP_CLUSTER_STATUS;
	req.no_forward = false;
	n = frame_encode_request(&req, buf, sizeof buf);
	assert_int_equal(frame_decode_request(buf + 4, (size_t)n - 4, &l, &out, NULL, 0), 0);
	assert_int_equal(out.op, FRAME_OP_CLUSTER_STATUS);
	assert_false(out.no_forward);

	/* A PUT marked no_forward keeps its key and value. */
	req = (struct frame_request){ .id = 7, .op = FRAME_OP_PUT, .key = slice_str("k"),
				      .value = slice_str("v"), .no_forward = true };
	n = frame_encode_request(&req, buf, sizeof buf);
	assert_int_equal(frame_decode_request(buf + 4, (size_t)n - 4, &l, &out, NULL, 0), 0);
	assert_int_equal(out.op, FRAME_OP_PUT);
	assert_true(out.no_forward);
	assert_int_equal(out.value.len, 1);
}

static void test_map_round_trip(void **state)
{
	struct frame_map_shard shards[2];
	struct frame_map map = { .version = (1ull << 40) | 7, .cluster_id = 0xabcdef,
				 .epoch = 1, .node_id = 2, .slots = 16384,
				 .nodes = map_nodes, .node_count = 3,
				 .shards = shards, .shard_count = 2 };
	struct frame_response r = { .id = 9, .status = 0, .map = &map };
	struct seen s = { 0 };
	struct frame_cluster_handlers h = { on_node, on_shard, on_replica, on_peer, &s };
	struct frame_cluster_answer a;
	uint64_t id;
	int status;
	struct frame_slice value, error;
	uint8_t *payload;
	size_t len;

	(void)state;
	make_shards(shards);
	payload = encode(&r, &len);
	assert_int_equal(frame_decode_cluster_answer(payload, len, &a, &h), 0);
	assert_int_equal(a.id, 9);
	assert_int_equal(a.status, 0);
	assert_true(a.has_map);
	assert_false(a.has_status);
	assert_int_equal(a.map.version, (1ull << 40) | 7);
	assert_int_equal(a.map.cluster_id, 0xabcdef);
	assert_int_equal(a.map.epoch, 1);
	assert_int_equal(a.map.node_id, 2);
	assert_int_equal(a.map.slots, 16384);
	assert_int_equal(s.n_nodes, 3);
	assert_int_equal(s.nodes[1].id, 2);
	assert_string_equal(s.node_text[0][0], "127.0.2.11:22100");
	assert_string_equal(s.node_text[0][1], "127.0.2.11:22070");
	assert_string_equal(s.node_text[0][2], "");
	assert_string_equal(s.node_text[1][2], "127.0.2.12:6379");
	assert_string_equal(s.node_text[2][1], "");
	assert_int_equal(s.n_shards, 2);
	assert_int_equal(s.shards[0].leader, 2);
	assert_int_equal(s.shards[0].term, 7);
	assert_int_equal(s.shards[0].slot_end, 8192);
	assert_int_equal(s.shards[0].replica_count, 3);
	assert_int_equal(s.shards[0].replicas[1].node, 2);
	assert_int_equal(s.shards[0].replicas[1].core, 1);
	assert_int_equal(s.shards[1].slot_start, 8192);
	assert_int_equal(s.shards[1].replica_count, 1);
	assert_int_equal(s.shards[1].replicas[0].core, 5);
	assert_int_equal(s.n_replicas + s.n_peers, 0);

	/* The old decoder reads the same frame (and skips the map). */
	assert_int_equal(frame_decode_response(payload, len, &id, &status, &value, &error), 0);
	assert_int_equal(id, 9);

	/* No handlers: checked and skipped. */
	assert_int_equal(frame_decode_cluster_answer(payload, len, &a, NULL), 0);
	assert_true(a.has_map);

	/* A handler stops decoding with its own code. */
	memset(&s, 0, sizeof s);
	s.stop_at_node = 2;
	assert_int_equal(frame_decode_cluster_answer(payload, len, &a, &h), 99);
	assert_int_equal(s.n_nodes, 2);
	assert_int_equal(s.n_shards, 0);
	free(payload);
}

static void test_status_round_trip(void **state)
{
	struct frame_replica_status reps[2];
	struct frame_peer_status peers[2] = {
		{ .node = 1, .reachable = true, .connected_cores = 2, .cores = 2,
		  .bytes_sent = 1000, .bytes_received = 2000, .reconnects = 3 },
		{ .node = 3, .reachable = false, .cores = 2, .last_error = -111 },
	};
	struct frame_status st = { .node_id = 2, .cluster_id = 5, .cores = 2,
				   .replicas = reps, .replica_count = 2,
				   .peers = peers, .peer_count = 2 };
	struct frame_response r = { .id = 1, .status = 0, .cluster_status = &st };
	struct seen s = { 0 };
	struct frame_cluster_handlers h = { on_node, on_shard, on_replica, on_peer, &s };
	struct frame_cluster_answer a;
	uint8_t *payload;
	size_t len;

	(void)state;
	memset(reps, 0, sizeof reps);
	reps[0] = (struct frame_replica_status){ .shard = 4, .core = 1, .role = slice_str("leader"),
						 .term = 3, .leader = 2, .commit = 100,
						 .applied = 99, .last_index = 101, .persisted = 101,
						 .snapshot_index = 50, .proposals = 1, .reads = 2,
						 .sleeping = true, .follower_count = 2 };
	reps[0].followers[0] = (struct frame_follower){ 1, 101, 0 };
	reps[0].followers[1] = (struct frame_follower){ 3, 40, 61 };
	reps[1] = (struct frame_replica_status){ .shard = 5, .role = slice_str("follower"),
						 .term = 3, .leader = 1, .apply_stopped = true,
						 .snapshot = slice_str("receiving") };
	payload = encode(&r, &len);
	assert_int_equal(frame_decode_cluster_answer(payload, len, &a, &h), 0);
	assert_true(a.has_status);
	assert_false(a.has_map);
	assert_int_equal(a.cluster_status.node_id, 2);
	assert_int_equal(a.cluster_status.cluster_id, 5);
	assert_int_equal(a.cluster_status.cores, 2);
	assert_int_equal(s.n_replicas, 2);
	assert_string_equal(s.roles[0], "leader");
	assert_string_equal(s.roles[1], "follower");
	assert_int_equal(s.replicas[0].shard, 4);
	assert_int_equal(s.replicas[0].commit, 100);
	assert_int_equal(s.replicas[0].applied, 99);
	assert_int_equal(s.replicas[0].snapshot_index, 50);
	assert_int_equal(s.replicas[0].follower_count, 2);
	assert_int_equal(s.replicas[0].followers[1].node, 3);
	assert_int_equal(s.replicas[0].followers[1].lag, 61);
	assert_true(s.replicas[1].apply_stopped);
	assert_true(s.replicas[0].sleeping);
	assert_false(s.replicas[1].sleeping);
	assert_int_equal(s.replicas[1].snapshot.len, 9);
	assert_memory_equal(s.replicas[1].snapshot.data, "receiving", 9);
	assert_int_equal(s.replicas[0].snapshot.len, 0);
	assert_non_null(s.replicas[0].snapshot.data);
	assert_int_equal(s.replicas[1].follower_count, 0);
	assert_int_equal(s.n_peers, 2);
	assert_true(s.peers[0].reachable);
	assert_int_equal(s.peers[0].bytes_received, 2000);
	assert_false(s.peers[1].reachable);
	assert_int_equal(s.peers[1].last_error, -111);
	free(payload);
}

/* A NOT_LEADER answer's hint is read (field 6, shared with forwarding). */
static void test_leader_hint(void **state)
{
	/* id 5, status NOT_LEADER (6), leader_hint 3 */
	static const uint8_t payload[] = { 0x08, 5, 0x10, 6, 0x30, 3 };
	struct frame_cluster_answer a;

	(void)state;
	assert_int_equal(frame_decode_cluster_answer(payload, sizeof payload, &a, NULL), 0);
	assert_int_equal(a.status, 6);
	assert_int_equal(a.leader_hint, 3);
	assert_false(a.has_map);
}

/* Past a decoder limit: RKV_ETOOLARGE, never a write past an array. */
static void test_limits(void **state)
{
	static struct frame_map_shard big;
	struct frame_map map = { .slots = 16384, .shards = &big, .shard_count = 1 };
	struct frame_response r = { .map = &map };
	static char long_addr[FRAME_ADDRESS_MAX + 2];
	struct frame_map_node node = { 1, { NULL, 0 }, { NULL, 0 }, { NULL, 0 } };
	struct frame_replica_status rep;
	struct frame_status st = { .replicas = &rep, .replica_count = 1 };
	struct frame_cluster_answer a;
	struct seen s = { 0 };
	struct frame_cluster_handlers h = { on_node, on_shard, on_replica, on_peer, &s };
	uint8_t *payload;
	size_t len;

	(void)state;
	/* A shard with one replica more than the limit: the encoder has no
	 * limit (real maps never get there), the decoder refuses. */
	big.replica_count = FRAME_MAP_MAX_REPLICAS;
	payload = encode(&r, &len);
	assert_int_equal(frame_decode_cluster_answer(payload, len, &a, &h), 0);
	free(payload);
	{
		/* Append one more replica submessage to the shard by hand:
		 * re-encode with a second shard that is the first's
		 * continuation is not possible, so build the bytes. */
		uint8_t buf[4096];
		size_t n = 0;
		/* ClusterShard { id 0, 65 x replicas { node 1 } } */
		uint8_t shard[4096];
		size_t sn = 0;

		for (unsigned i = 0; i < FRAME_MAP_MAX_REPLICAS + 1; i++) {
			shard[sn++] = 0x22; /* replicas, len 2 */
			shard[sn++] = 2;
			shard[sn++] = 0x08; /* node = 1 */
			shard[sn++] = 1;
		}
		/* Response { cluster_map (8) { shards (7) { shard } } } */
		uint8_t cm[4096];
		size_t cn = 0;

		cm[cn++] = 0x3a;
		cm[cn++] = (uint8_t)(sn | 0x80);
		cm[cn++] = (uint8_t)(sn >> 7);
		memcpy(cm + cn, shard, sn);
		cn += sn;
		buf[n++] = 0x42;
		buf[n++] = (uint8_t)(cn | 0x80);
		buf[n++] = (uint8_t)(cn >> 7);
		memcpy(buf + n, cm, cn);
		n += cn;
		assert_int_equal(frame_decode_cluster_answer(buf, n, &a, &h), RKV_ETOOLARGE);
	}

	/* An address over FRAME_ADDRESS_MAX. */
	memset(long_addr, 'a', sizeof long_addr - 1);
	node.client = slice_str(long_addr);
	map = (struct frame_map){ .nodes = &node, .node_count = 1 };
	payload = encode(&r, &len);
	assert_int_equal(frame_decode_cluster_answer(payload, len, &a, &h), RKV_ETOOLARGE);
	free(payload);

	/* More followers than the limit: the encoder writes what the array
	 * holds, so build it with the count past the limit by encoding twice
	 * the same replica status and checking the bound only. */
	memset(&rep, 0, sizeof rep);
	rep.follower_count = FRAME_STATUS_MAX_FOLLOWERS;
	r = (struct frame_response){ .cluster_status = &st };
	payload = encode(&r, &len);
	memset(&s, 0, sizeof s);
	assert_int_equal(frame_decode_cluster_answer(payload, len, &a, &h), 0);
	assert_int_equal(s.replicas[0].follower_count, FRAME_STATUS_MAX_FOLLOWERS);
	free(payload);
}

/* Every truncation and many byte flips of a real answer decode to a code. */
static void test_damaged(void **state)
{
	struct frame_map_shard shards[2];
	struct frame_map map = { .version = 3, .slots = 16384, .nodes = map_nodes,
				 .node_count = 3, .shards = shards, .shard_count = 2 };
	struct frame_replica_status rep = { .shard = 1, .role = slice_str("leader"),
					    .follower_count = 1 };
	struct frame_peer_status peer = { .node = 3 };
	struct frame_status st = { .replicas = &rep, .replica_count = 1, .peers = &peer,
				   .peer_count = 1 };
	struct frame_response r = { .id = 1, .map = &map, .cluster_status = &st };
	struct seen s;
	struct frame_cluster_handlers h = { on_node, on_shard, on_replica, on_peer, &s };
	struct frame_cluster_answer a;
	uint8_t *payload;
	size_t len;
	unsigned seed = 12345;

	(void)state;
	make_shards(shards);
	payload = encode(&r, &len);
	memset(&s, 0, sizeof s);
	assert_int_equal(frame_decode_cluster_answer(payload, len, &a, &h), 0);
	assert_int_equal(s.n_nodes, 3);
	assert_int_equal(s.n_replicas, 1);
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		int rv;

		memcpy(copy, payload, cut);
		memset(&s, 0, sizeof s);
		rv = frame_decode_cluster_answer(copy, cut, &a, &h);
		assert_true(rv == 0 || rv == RKV_EPROTO || rv == RKV_ETOOLARGE);
		free(copy);
	}
	for (unsigned i = 0; i < 20000; i++) {
		uint8_t *copy = malloc(len);
		int rv;

		memcpy(copy, payload, len);
		for (unsigned k = 0; k < 1 + i % 3; k++) {
			seed = seed * 1103515245u + 12345u;
			copy[(seed >> 8) % len] ^= (uint8_t)(1u << ((seed >> 4) % 8));
		}
		memset(&s, 0, sizeof s);
		rv = frame_decode_cluster_answer(copy, len, &a, &h);
		assert_true(rv == 0 || rv == RKV_EPROTO || rv == RKV_ETOOLARGE);
		free(copy);
	}
	free(payload);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_ops),
		cmocka_unit_test(test_map_round_trip),
		cmocka_unit_test(test_status_round_trip),
		cmocka_unit_test(test_leader_hint),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_damaged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
