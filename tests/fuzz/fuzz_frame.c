/*
 * libFuzzer harness for the frame codec: frame_peek on the raw input, then
 * the payload decoders (request, response, response with its cluster map
 * and status parts, response with its shard-move part) on what follows the prefix (complete or not;
 * requests include Auth, whose user and password are the key and value slices), with
 * the default limits and with tiny ones so the too-large paths run too.
 * Invariants: only documented return codes, and every returned slice (scan
 * pairs included) lies inside the input.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/errors.h"
#include "proto/frame.h"
#include "proto/frame_move.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

static int in_range(struct frame_slice s, const uint8_t *p, size_t n)
{
	return s.len == 0 || (s.data >= p && s.len <= n && s.data <= p + n - s.len);
}

static const uint8_t *fuzz_data;
static size_t fuzz_size;

/* Every SCAN pair of a response lies inside the input too. */
static int check_pair(void *arg, const struct frame_kv *pair)
{
	(void)arg;
	CHECK(pair->key.data != NULL && pair->value.data != NULL);
	CHECK(in_range(pair->key, fuzz_data, fuzz_size) &&
	      in_range(pair->value, fuzz_data, fuzz_size));
	return 0;
}

/* The cluster parts of a response: slices inside the input, counts
 * within the decoder's limits. */
static int check_node(void *arg, const struct frame_map_node *n)
{
	(void)arg;
	CHECK(n->peer.data && n->client.data && n->resp.data);
	CHECK(n->peer.len <= FRAME_ADDRESS_MAX && n->client.len <= FRAME_ADDRESS_MAX &&
	      n->resp.len <= FRAME_ADDRESS_MAX);
	CHECK(in_range(n->peer, fuzz_data, fuzz_size) &&
	      in_range(n->client, fuzz_data, fuzz_size) &&
	      in_range(n->resp, fuzz_data, fuzz_size));
	return 0;
}

static int check_shard(void *arg, const struct frame_map_shard *sh)
{
	(void)arg;
	CHECK(sh->replica_count <= FRAME_MAP_MAX_REPLICAS);
	return 0;
}

static int check_replica(void *arg, const struct frame_replica_status *r)
{
	(void)arg;
	CHECK(r->role.data && r->role.len <= FRAME_ADDRESS_MAX &&
	      in_range(r->role, fuzz_data, fuzz_size));
	CHECK(r->snapshot.data && r->snapshot.len <= FRAME_ADDRESS_MAX &&
	      in_range(r->snapshot, fuzz_data, fuzz_size));
	CHECK(r->follower_count <= FRAME_STATUS_MAX_FOLLOWERS);
	return 0;
}

static int check_peer(void *arg, const struct frame_peer_status *p)
{
	(void)arg;
	(void)p;
	return 0;
}

static void run(const uint8_t *data, size_t size, const struct frame_limits *l)
{
	static const struct frame_cluster_handlers cluster = { check_node, check_shard,
							       check_replica, check_peer,
							       NULL };
	struct frame_cluster_answer answer;
	struct frame_request req;
	struct frame_move move;
	bool has_move;
	struct frame_slice value, error;
	uint64_t id;
	uint32_t plen = 0;
	int status, rc;
	char err[80];

	rc = frame_peek(data, size, l, &plen);
	CHECK(rc == 0 || rc == RKV_EAGAIN || rc == RKV_ETOOLARGE);
	if (rc == 0)
		CHECK((size_t)plen <= size - FRAME_HEADER_SIZE);
	if (size < FRAME_HEADER_SIZE)
		return;
	data += FRAME_HEADER_SIZE;
	size -= FRAME_HEADER_SIZE;

	rc = frame_decode_request(data, size, l, &req, err, sizeof(err));
	CHECK(rc == 0 || rc == RKV_EPROTO || rc == RKV_EINVAL || rc == RKV_ETOOLARGE);
	if (rc == 0) {
		CHECK(req.op == FRAME_OP_GET || req.op == FRAME_OP_PUT ||
		      req.op == FRAME_OP_DELETE || req.op == FRAME_OP_SCAN ||
		      req.op == FRAME_OP_CLUSTER_MAP || req.op == FRAME_OP_CLUSTER_STATUS ||
		      req.op == FRAME_OP_BACKUP || req.op == FRAME_OP_SHARD_MOVE ||
		      req.op == FRAME_OP_AUTH);
		/* Any key may be empty (the empty key is a key); none is
		 * over the limit. */
		CHECK(req.key.len <= l->max_key && req.end.len <= l->max_key);
		CHECK(req.value.len <= l->max_value);
		CHECK(in_range(req.key, data, size) && in_range(req.value, data, size) &&
		      in_range(req.end, data, size));
		CHECK(req.op != FRAME_OP_SCAN ||
		      (req.limit >= 1 && req.limit <= FRAME_SCAN_MAX_LIMIT));
	}
	fuzz_data = data;
	fuzz_size = size;
	rc = frame_decode_response_pairs(data, size, &id, &status, &value, &error,
					 check_pair, NULL);
	CHECK(rc == 0 || rc == RKV_EPROTO);
	if (rc == 0)
		CHECK(status >= 0 && in_range(value, data, size) &&
		      in_range(error, data, size));
	rc = frame_decode_move_answer(data, size, &id, &status, &error, &move, &has_move);
	CHECK(rc == 0 || rc == RKV_EPROTO);
	if (rc == 0)
		CHECK(status >= 0 && in_range(error, data, size));
	rc = frame_decode_cluster_answer(data, size, &answer, &cluster);
	CHECK(rc == 0 || rc == RKV_EPROTO || rc == RKV_ETOOLARGE);
	if (rc == 0)
		CHECK(answer.status >= 0 && answer.error.data != NULL &&
		      in_range(answer.error, data, size));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame_limits l;
	static const struct frame_limits tiny = { .max_frame = 64, .max_key = 4,
						  .max_value = 8 };

	frame_limits_default(&l);
	run(data, size, &l);
	run(data, size, &tiny);
	return 0;
}
