/*
 * SCAN over the ordered keyspace with key-position cursors; see
 * server/redis.h for the completeness rule and the cursor table.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/log.h"
#include "ringkv.pb.h"
#include "server/conn.h"
#include "server/node.h"
#include "server/redis.h"
#include "server/redis_impl.h"
#include "shard/key_order.h"


static int cursor_register(struct node_core *c, const void *key, size_t len, uint64_t *out)
{
	struct redis_core *rcore = c->redis;
	struct redis_cursor *e;
	uint64_t seq = ++rcore->next_seq & ((1ull << 48) - 1);
	uint8_t *copy = pool_alloc(&c->reactor->pool, len ? len : 1);

	if (!copy)
		return -ENOMEM;
	e = &rcore->cursors[seq % REDIS_CURSORS];
	pool_free(&c->reactor->pool, e->key);
	memcpy(copy, key, len);
	e->seq = seq;
	e->key = copy;
	e->len = (uint32_t)len;
	*out = ((uint64_t)(c->reactor->id + 1) << 48) | seq;
	return 0;
}

int redis_cursor_lookup(struct node_core *c, uint64_t cursor, const void **key, size_t *len)
{
	struct redis_core *rcore = c->redis;
	uint64_t seq = cursor & ((1ull << 48) - 1);
	struct redis_cursor *e = &rcore->cursors[seq % REDIS_CURSORS];

	if ((cursor >> 48) != c->reactor->id + 1 || e->seq != seq || !e->key)
		return -ENOENT;
	*key = e->key;
	*len = e->len;
	return 0;
}

int redis_scan_start(struct redis_slot *slot)
{
	struct conn *conn = slot->conn;
	struct node_core *c = conn->core;
	uint32_t max_key = c->node->cfg.max_key;
	uint32_t room = 2 * max_key + 8 + slot->count * 48;
	uint32_t shards = c->node->shards;
	struct kv_req **reqs;
	uint32_t i;

	/* The cursor lookup (if any) is done with; make room for one request
	 * per shard. */
	reqs = pool_alloc(redis_pool(conn), shards * sizeof *reqs);
	if (!reqs)
		return -ENOMEM;
	memset(reqs, 0, shards * sizeof *reqs);
	for (i = 0; i < slot->parts; i++)
		if (slot->reqs[i])
			kv_req_free(c, slot->reqs[i]);
	if (slot->reqs != &slot->one)
		pool_free(redis_pool(conn), slot->reqs);
	slot->reqs = reqs;
	slot->parts = 0;
	slot->stage = 2;
	/* Held open until every shard's step is sent (see multi_key). */
	slot->pending++;
	for (i = 0; i < shards; i++) {
		struct kv_req *req = kv_req_new(c, slot->cursor_len,
						slot->pattern_len + room);

		if (!req) {
			slot->pending--;
			slot->oom = true;
			return -ENOMEM;
		}
		req->complete = redis_part_done;
		req->ctx = slot;
		req->part = i;
		req->op = KV_SCAN;
		req->shard = i;
		req->key_len = slot->cursor_len;
		if (slot->cursor_len)
			memcpy(req->data, slot->cursor_key, slot->cursor_len);
		req->arg_len = slot->pattern_len;
		if (slot->pattern_len)
			memcpy(req->data + req->key_len, slot->pattern, slot->pattern_len);
		req->flags = slot->from_start ? 0 : KV_SCAN_AFTER;
		req->limit = slot->count;
		redis_send_part(slot, req);
	}
	slot->pending--;
	return 0;
}

static bool step_done(const struct kv_req *req, void *arg)
{
	(void)arg;
	return req->done;
}

void redis_format_scan(struct conn *conn, struct redis_slot *slot, struct reply *r)
{
	uint32_t max_key = conn->core->node->cfg.max_key;
	const uint8_t *min_key = NULL;
	uint32_t min_len = 0;
	size_t total = 0, len;
	uint64_t cursor = 0;
	char text[24];
	uint32_t i;

	/* Keys up to the bound are complete; the cursor resumes after it. */
	if (!kv_scan_bound(slot->reqs, slot->parts, step_done, NULL, &min_key, &min_len))
		min_key = NULL;
	for (i = 0; i < slot->parts; i++) {
		const struct kv_req *req = slot->reqs[i];
		const uint8_t *p = kv_answer(req, &len) + max_key;
		const uint8_t *end = p + req->value_len;

		while (p < end) {
			uint32_t klen;

			memcpy(&klen, p, 4);
			if (!min_key || key_order_cmp(p + 4, klen, min_key, min_len) <= 0)
				total++;
			p += 4 + klen;
		}
	}
	if (min_key && cursor_register(conn->core, min_key, min_len, &cursor) != 0) {
		reply_error(conn, r, "OOM no memory for a SCAN cursor");
		return;
	}
	reply_array(conn, r, 2);
	snprintf(text, sizeof text, "%" PRIu64, cursor);
	reply_str(conn, r, text);
	reply_array(conn, r, total);
	for (i = 0; i < slot->parts; i++) {
		const struct kv_req *req = slot->reqs[i];
		const uint8_t *p = kv_answer(req, &len) + max_key;
		const uint8_t *end = p + req->value_len;

		while (p < end) {
			uint32_t klen;

			memcpy(&klen, p, 4);
			if (!min_key || key_order_cmp(p + 4, klen, min_key, min_len) <= 0)
				reply_bulk(conn, r, p + 4, klen);
			p += 4 + klen;
		}
	}
}

void redis_cmd_scan(struct conn *conn, const struct resp_command *cmd)
{
	struct node_core *c = conn->core;
	struct reply *r = &conn->redis->scratch;
	const struct resp_arg *pattern = NULL;
	uint64_t cursor, count = REDIS_SCAN_DEFAULT_COUNT;
	bool wrong_type = false;
	struct redis_slot *slot;
	size_t i;

	reply_reset(r);
	if (resp_parse_uint64(cmd->argv[1].data, cmd->argv[1].len, &cursor) != 0) {
		reply_error(conn, r, RESP_ERR_INVALID_CURSOR);
		redis_reply_now(conn);
		return;
	}
	for (i = 2; i < cmd->argc; i++) {
		const struct resp_arg *a = &cmd->argv[i];
		int64_t v;

		if (i + 1 >= cmd->argc) {
			reply_error(conn, r, RESP_ERR_SYNTAX);
			redis_reply_now(conn);
			return;
		}
		if (redis_arg_is(a, "MATCH")) {
			pattern = &cmd->argv[++i];
		} else if (redis_arg_is(a, "COUNT")) {
			if (resp_parse_int64(cmd->argv[i + 1].data, cmd->argv[i + 1].len, &v) != 0) {
				reply_error(conn, r, RESP_ERR_NOT_INTEGER);
				redis_reply_now(conn);
				return;
			}
			if (v < 1) {
				reply_error(conn, r, RESP_ERR_SYNTAX);
				redis_reply_now(conn);
				return;
			}
			count = (uint64_t)v > REDIS_SCAN_MAX_COUNT ? REDIS_SCAN_MAX_COUNT : (uint64_t)v;
			i++;
		} else if (redis_arg_is(a, "TYPE")) {
			wrong_type = !redis_arg_is(&cmd->argv[++i], "string");
		} else {
			reply_error(conn, r, RESP_ERR_SYNTAX);
			redis_reply_now(conn);
			return;
		}
	}
	if (wrong_type) {
		/* Every ringkv value is a string. */
		reply_array(conn, r, 2);
		reply_str(conn, r, "0");
		reply_array(conn, r, 0);
		redis_reply_now(conn);
		return;
	}
	if (pattern && pattern->len > c->node->cfg.max_key) {
		reply_error(conn, r, "ERR MATCH pattern too long");
		redis_reply_now(conn);
		return;
	}
	slot = redis_slot_new(conn, RESP_CMD_SCAN, 1);
	if (!slot) {
		redis_out_of_memory(conn);
		return;
	}
	slot->count = (uint32_t)count;
	if (pattern) {
		slot->pattern = pool_alloc(redis_pool(conn), pattern->len ? pattern->len : 1);
		if (!slot->pattern) {
			redis_out_of_memory(conn);
			return;
		}
		memcpy(slot->pattern, pattern->data, pattern->len);
		slot->pattern_len = pattern->len;
	}
	if (cursor == 0) {
		slot->from_start = true;
		if (redis_scan_start(slot) != 0)
			redis_out_of_memory(conn);
		redis_drain(conn);
		return;
	}
	/* Find the cursor's key on the core that issued it. */
	{
		unsigned owner = (unsigned)(cursor >> 48);
		struct kv_req *req;

		if (owner == 0 || owner > c->node->cores) {
			slot->stage = 3;
			redis_drain(conn);
			return;
		}
		req = kv_req_new(c, 0, c->node->cfg.max_key);
		if (!req) {
			redis_out_of_memory(conn);
			return;
		}
		req->complete = redis_part_done;
		req->ctx = slot;
		req->part = 0;
		req->op = KV_CORE_CURSOR;
		req->target = (uint16_t)(owner - 1);
		req->integer = (int64_t)cursor;
		slot->stage = 1;
		redis_send_part(slot, req);
		redis_drain(conn);
	}
}

/*
 * KEYS is SCAN run to its end inside the server: rounds of one step per
 * shard (REDIS_KEYS_STEP keys examined each), every round keeping the keys
 * up to kv_scan_bound, SCAN's completeness rule, and resuming after that
 * bound. Its cost is a pass over the whole keyspace, O(N) in the keys
 * stored, on every shard's core, while the later commands of the connection
 * wait behind it. The answer is whole or refused: past REDIS_KEYS_MAX_REPLY
 * bytes of matches it is an error pointing to SCAN, never a partial list.
 */

#define KEYS_EMPTY_PATTERN 0x1 /* slot->opts: KEYS "" (only the empty key) */

void redis_cmd_keys(struct conn *conn, const struct resp_command *cmd)
{
	struct reply *r = &conn->redis->scratch;
	const struct resp_arg *pattern = &cmd->argv[1];
	struct redis_slot *slot;

	reply_reset(r);
	if (pattern->len > conn->core->node->cfg.max_key) {
		reply_error(conn, r, "ERR pattern too long");
		redis_reply_now(conn);
		return;
	}
	slot = redis_slot_new(conn, RESP_CMD_KEYS, 1);
	if (!slot) {
		redis_out_of_memory(conn);
		return;
	}
	slot->count = REDIS_KEYS_STEP;
	slot->from_start = true;
	/* A step without a pattern keeps every key: right for "*", and for ""
	 * once the round filters all but the empty key. */
	if (pattern->len == 0)
		slot->opts = KEYS_EMPTY_PATTERN;
	else if (pattern->len > 1 || pattern->data[0] != '*') {
		slot->pattern = pool_alloc(redis_pool(conn), pattern->len);
		if (!slot->pattern) {
			redis_out_of_memory(conn);
			return;
		}
		memcpy(slot->pattern, pattern->data, pattern->len);
		slot->pattern_len = pattern->len;
	}
	if (redis_scan_start(slot) != 0)
		slot->oom = true;
	redis_keys_continue(slot);
}

/* Appends one match as a bulk string. 0; -E2BIG past the reply's cap,
 * -ENOMEM (the stage or slot->oom says which). */
static int keys_append(struct redis_slot *slot, const uint8_t *key, uint32_t len)
{
	struct pool *p = redis_pool(slot->conn);
	size_t need = resp_size_bulk(len);
	struct resp_out o;

	if (slot->keys_len + need > REDIS_KEYS_MAX_REPLY) {
		slot->stage = KEYS_TOO_MANY;
		return -E2BIG;
	}
	if (slot->keys_len + need > slot->keys_cap) {
		size_t cap = slot->keys_cap ? slot->keys_cap : 4096;
		uint8_t *grown;

		while (cap < slot->keys_len + need)
			cap *= 2;
		grown = pool_alloc_large(p, cap);
		if (!grown) {
			slot->oom = true;
			return -ENOMEM;
		}
		if (slot->keys_len)
			memcpy(grown, slot->keys, slot->keys_len);
		pool_free(p, slot->keys);
		slot->keys = grown;
		slot->keys_cap = pool_block_size(grown);
	}
	o = (struct resp_out){ slot->keys, slot->keys_len, slot->keys_cap };
	if (resp_write_bulk(&o, key, len) != 0) {
		slot->oom = true;
		return -ENOMEM;
	}
	slot->keys_len = o.len;
	slot->keys_found++;
	return 0;
}

/* Takes one finished round: its complete keys, then the next round or the
 * end (slot->stage, slot->oom). */
static void keys_round(struct redis_slot *slot)
{
	struct conn *conn = slot->conn;
	uint32_t max_key = conn->core->node->cfg.max_key;
	const uint8_t *bound = NULL;
	uint32_t bound_len = 0, i;
	uint8_t *resume;

	for (i = 0; i < slot->parts; i++) {
		if (!slot->reqs[i]) {
			slot->oom = true;
			return;
		}
		if (slot->reqs[i]->status != ringkv_Status_OK) {
			slot->stage = KEYS_FAILED;
			return;
		}
	}
	if (!kv_scan_bound(slot->reqs, slot->parts, step_done, NULL, &bound, &bound_len))
		bound = NULL;
	for (i = 0; i < slot->parts; i++) {
		const struct kv_req *req = slot->reqs[i];
		size_t len;
		const uint8_t *p = kv_answer(req, &len) + max_key;
		const uint8_t *end = p + req->value_len;
		uint32_t klen;

		for (; p < end; p += 4 + klen) {
			memcpy(&klen, p, 4);
			if (bound && key_order_cmp(p + 4, klen, bound, bound_len) > 0)
				continue;
			if ((slot->opts & KEYS_EMPTY_PATTERN) && klen)
				continue;
			if (keys_append(slot, p + 4, klen) != 0)
				return;
		}
	}
	if (!bound) {
		slot->stage = KEYS_DONE;
		return;
	}
	/* The bound lives in a step's answer, which the next round frees. */
	resume = pool_alloc(redis_pool(conn), bound_len ? bound_len : 1);
	if (!resume) {
		slot->oom = true;
		return;
	}
	memcpy(resume, bound, bound_len);
	pool_free(redis_pool(conn), slot->cursor_key);
	slot->cursor_key = resume;
	slot->cursor_len = bound_len;
	slot->from_start = false;
	if (redis_scan_start(slot) != 0)
		slot->oom = true;
}

void redis_keys_continue(struct redis_slot *slot)
{
	struct conn *conn = slot->conn;

	/* A round whose steps all answered at once is taken here too. */
	while (slot->stage == 2 && slot->pending == 0 && !slot->oom)
		keys_round(slot);
	redis_drain(conn);
}

void redis_format_keys(struct conn *conn, struct redis_slot *slot, struct reply *r)
{
	uint32_t i;

	switch (slot->stage) {
	case KEYS_DONE:
		reply_array(conn, r, slot->keys_found);
		if (!reply_reserve(conn, r, slot->keys_len)) {
			r->failed = true;
			return;
		}
		if (slot->keys_len)
			memcpy(r->data + r->len, slot->keys, slot->keys_len);
		r->len += slot->keys_len;
		return;
	case KEYS_TOO_MANY:
		reply_errorf(conn, r, "ERR KEYS would answer more than %u MiB; iterate with "
			     "SCAN (MATCH, COUNT) instead", REDIS_KEYS_MAX_REPLY >> 20);
		return;
	case KEYS_FAILED:
		for (i = 0; i < slot->parts; i++)
			if (slot->reqs[i] && slot->reqs[i]->status != ringkv_Status_OK) {
				reply_status_error(conn, r, slot->reqs[i]);
				return;
			}
		break;
	default:
		break;
	}
	reply_error(conn, r, "ERR out of memory");
}
