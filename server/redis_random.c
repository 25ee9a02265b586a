/*
 * RANDOMKEY (issue #21): a key taken at random from the whole keyspace, or
 * nil when it holds none. Never a key past its deadline: the answer comes
 * from SCAN steps (KV_SCAN, linearizable at each shard's leader), which
 * skip those as they skip deleted keys.
 *
 * How: a random shard, and in it a random position (random_position); one
 * step from there (REDIS_RANDOM_STEP keys examined)
 * answers one of the keys it found, at random. A step that met only
 * deleted keys goes on from where it stopped; one that reached the end of
 * the shard without a key starts again from the shard's first key (any key
 * it finds lies before the random position); a shard found empty passes
 * the turn to the next shard, from a new random position. Every shard
 * empty: nil.
 *
 * Not uniform, as Redis's is not either: a key after a wide gap in the key
 * order (or first in its shard) is picked more often than one in a dense
 * run. Cost: one step per shard when the keyspace is empty, one step
 * otherwise (more only while steps meet runs of deleted keys).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ringkv.pb.h"
#include "server/conn.h"
#include "server/node.h"
#include "server/redis.h"
#include "server/redis_impl.h"

#define REDIS_RANDOM_STEP 16u

static _Thread_local uint64_t rng;

static uint64_t random_u64(void)
{
	if (!rng)
		rng = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)&rng;
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Sends the step of the slot's shard from its cursor key (the random
 * position, the resume key, or the first key with `from_start`). */
static int random_step(struct redis_slot *slot)
{
	struct conn *conn = slot->conn;
	struct node_core *c = conn->core;
	uint32_t max_key = c->node->cfg.max_key;
	struct kv_req *req;

	if (slot->reqs[0]) {
		kv_req_free(c, slot->reqs[0]);
		slot->reqs[0] = NULL;
	}
	req = kv_req_new(c, slot->cursor_len, 2 * max_key + 8 + REDIS_RANDOM_STEP * 48);
	if (!req)
		return -1;
	req->complete = redis_part_done;
	req->ctx = slot;
	req->part = 0;
	req->op = KV_SCAN;
	req->shard = slot->random_shard;
	req->key_len = slot->cursor_len;
	if (slot->cursor_len)
		memcpy(req->data, slot->cursor_key, slot->cursor_len);
	req->flags = slot->random_phase == 0 ? 0 : KV_SCAN_AFTER;
	req->limit = REDIS_RANDOM_STEP;
	redis_send_part(slot, req);
	return 0;
}

/*
 * A fresh random position in the slot's shard: 1-3 bytes, printable
 * (where most keys begin) but for a first byte of any value one time in
 * eight, or (one time in 32) no byte at all, the shard's first key: every
 * key can be reached, whatever its bytes.
 */
static void random_position(struct redis_slot *slot)
{
	uint64_t r = random_u64();
	uint32_t len = 1 + (uint32_t)(r % 3);

	for (uint32_t i = 0; i < len; i++)
		slot->cursor_key[i] = (uint8_t)(0x21 + (r >> (8 + 8 * i)) % 94);
	if ((r >> 40) % 8 == 0)
		slot->cursor_key[0] = (uint8_t)(r >> 48);
	if ((r >> 56) % 32 == 0)
		len = 0;
	slot->cursor_len = len;
	slot->random_phase = 0;
	slot->random_wrapped = false;
}

void redis_cmd_randomkey(struct conn *conn)
{
	struct node_core *c = conn->core;
	struct redis_slot *slot = redis_slot_new(conn, RESP_CMD_RANDOMKEY, 1);

	if (!slot) {
		redis_out_of_memory(conn);
		return;
	}
	slot->cursor_key = pool_alloc(redis_pool(conn), c->node->cfg.max_key + 1);
	if (!slot->cursor_key) {
		slot->oom = true;
		redis_drain(conn);
		return;
	}
	slot->random_shard = (uint32_t)(random_u64() % c->node->shards);
	random_position(slot);
	slot->stage = 2;
	if (random_step(slot) != 0)
		slot->oom = true;
	redis_drain(conn);
}

/* A step answered: the answer, or the next step. */
void redis_randomkey_continue(struct redis_slot *slot)
{
	struct conn *conn = slot->conn;
	struct node_core *c = conn->core;
	const struct kv_req *req = slot->reqs[0];
	uint32_t max_key = c->node->cfg.max_key;
	size_t len;
	const uint8_t *resume;

	if (!req || req->status != ringkv_Status_OK || req->integer > 0) {
		redis_drain(conn); /* an error, or a key to answer */
		return;
	}
	resume = kv_answer(req, &len);
	if (!req->done && req->need <= max_key) {
		/* Only deleted keys so far: on from where the step stopped. */
		memcpy(slot->cursor_key, resume, req->need);
		slot->cursor_len = req->need;
		slot->random_phase = 1;
	} else if (!slot->random_wrapped) {
		/* Nothing after the position: from the shard's first key. */
		slot->cursor_len = 0;
		slot->random_phase = 0;
		slot->random_wrapped = true;
	} else if (++slot->random_tried < c->node->shards) {
		/* This shard holds no key: the next one. */
		slot->random_shard = (slot->random_shard + 1) % c->node->shards;
		random_position(slot);
	} else {
		slot->stage = 3; /* every shard empty: nil */
		redis_drain(conn);
		return;
	}
	if (random_step(slot) != 0)
		slot->oom = true;
	redis_drain(conn);
}

void redis_format_randomkey(struct conn *conn, struct redis_slot *slot, struct reply *r)
{
	const struct kv_req *req = slot->reqs[0];
	uint32_t max_key = conn->core->node->cfg.max_key;
	const uint8_t *p;
	uint32_t pick, klen;
	size_t len;

	if (slot->stage == 3) {
		reply_null(conn, r);
		return;
	}
	if (!req) {
		reply_error(conn, r, "ERR out of memory");
		return;
	}
	if (req->status != ringkv_Status_OK) {
		reply_status_error(conn, r, req);
		return;
	}
	p = kv_answer(req, &len) + max_key;
	pick = (uint32_t)(random_u64() % (uint64_t)req->integer);
	for (;;) {
		memcpy(&klen, p, 4);
		if (pick-- == 0)
			break;
		p += 4 + klen;
	}
	reply_bulk(conn, r, p + 4, klen);
}
