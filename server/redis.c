/*
 * RESP2 connections: command dispatch, ordered replies, fan-out over shards.
 * See server/redis.h for the ordering, atomicity and cursor rules.
 */
#include "server/redis.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/log.h"
#include "proto/resp.h"
#include "proto/resp_commands.h"
#include "ringkv.pb.h"
#include "server/conn.h"
#include "server/kv.h"
#include "server/node.h"

#include "server/redis_impl.h"


static void format_slot(struct conn *conn, struct redis_slot *slot, struct reply *r);

struct pool *redis_pool(struct conn *conn)
{
	return &conn->core->reactor->pool;
}

/* ---- reply ordering ---------------------------------------------------- */

static void slot_free(struct conn *conn, struct redis_slot *slot)
{
	struct pool *p = redis_pool(conn);
	uint32_t i;

	for (i = 0; i < slot->parts; i++)
		if (slot->reqs[i])
			kv_req_free(conn->core, slot->reqs[i]);
	if (slot->reqs != &slot->one)
		pool_free(p, slot->reqs);
	pool_free(p, slot->bytes);
	pool_free(p, slot->pattern);
	pool_free(p, slot->cursor_key);
	pool_free(p, slot->keys);
	pool_free(p, slot);
}

/* Copies a finished reply to the connection's output. A reply that could
 * not be built whole is never sent in part: the client gets an error and
 * the connection closes (its stream of replies would be off by one). */
static void emit(struct conn *conn, const struct reply *r)
{
	uint8_t *out;

	if (r->failed) {
		static const char oom[] = "-ERR out of memory building the reply\r\n";

		out = conn_out_reserve(conn, sizeof oom - 1);
		if (out) {
			memcpy(out, oom, sizeof oom - 1);
			conn_out_commit(conn, sizeof oom - 1);
		}
		conn_close_after_reply(conn);
		return;
	}
	out = conn_out_reserve(conn, r->len);

	if (out) {
		memcpy(out, r->data, r->len);
		conn_out_commit(conn, r->len);
	}
}


/* Writes out every finished reply at the head of the FIFO, in order. */
void redis_drain(struct conn *conn)
{
	struct redis_conn *rc = conn->redis;

	while (rc->head && rc->head->pending == 0) {
		struct redis_slot *slot = rc->head;

		if (slot->bytes) {
			struct reply r = { slot->bytes, slot->len, slot->len, false };
			emit(conn, &r);
		} else {
			reply_reset(&rc->scratch);
			rc->scratch.failed = false;
			format_slot(conn, slot, &rc->scratch);
			emit(conn, &rc->scratch);
		}
		if (slot->timed) {
			const struct node_metric_ids *ids = conn->core->node->metric_ids;

			metrics_observe(conn->core->metrics, slot->timed == 2 ? ids->write_latency_resp
									      : ids->read_latency_resp,
					conn->core->reactor->now_us - slot->start_us);
		}
		rc->head = slot->next;
		if (!rc->head)
			rc->tail = NULL;
		slot_free(conn, slot);
		conn->inflight--;
	}
	/* Last: this may resume reading, or free the connection. */
	conn_poke(conn);
}

struct redis_slot *redis_slot_new(struct conn *conn, enum resp_cmd_id cmd, uint32_t parts)
{
	struct redis_conn *rc = conn->redis;
	struct redis_slot *slot = pool_alloc(redis_pool(conn), sizeof *slot);

	if (!slot)
		return NULL;
	memset(slot, 0, sizeof *slot);
	slot->conn = conn;
	slot->cmd = cmd;
	{
		const struct resp_command_info *ci = resp_command_by_id(cmd);

		slot->timed = !ci ? 0 : (ci->flags & RESP_CMDF_WRITE) ? 2 :
			      (ci->flags & RESP_CMDF_READONLY) ? 1 : 0;
		slot->start_us = conn->core->reactor->now_us;
	}
	slot->reqs = &slot->one;
	if (parts > 1) {
		slot->reqs = pool_alloc(redis_pool(conn), parts * sizeof *slot->reqs);
		if (!slot->reqs) {
			pool_free(redis_pool(conn), slot);
			return NULL;
		}
		memset(slot->reqs, 0, parts * sizeof *slot->reqs);
	}
	if (rc->tail)
		rc->tail->next = slot;
	else
		rc->head = slot;
	rc->tail = slot;
	conn->inflight++;
	return slot;
}

/* The reply in scratch is complete: out now if nothing waits before it,
 * else parked in a slot of its own. */
void redis_reply_now(struct conn *conn)
{
	struct redis_conn *rc = conn->redis;
	struct redis_slot *slot;

	if (rc->scratch.failed) {
		/* Not sent in part: an error in its place, then close. */
		reply_reset(&rc->scratch);
		reply_error(conn, &rc->scratch, "ERR out of memory building the reply");
		conn_close_after_reply(conn);
	}
	if (!rc->head) {
		emit(conn, &rc->scratch);
		return;
	}
	slot = redis_slot_new(conn, RESP_CMD_PING, 0);
	if (slot) {
		slot->bytes = pool_alloc_large(redis_pool(conn),
					       rc->scratch.len ? rc->scratch.len : 1);
		if (slot->bytes) {
			memcpy(slot->bytes, rc->scratch.data, rc->scratch.len);
			slot->len = rc->scratch.len;
			return;
		}
	}
	log_warn("connection %llu: out of memory queueing a reply; closing",
		 (unsigned long long)conn->serial);
	conn_close_after_reply(conn);
}

void redis_part_done(struct node_core *c, struct kv_req *req);

static struct kv_req *part_new(struct conn *conn, struct redis_slot *slot, uint32_t part,
			       enum kv_op op, const struct resp_arg *key, uint32_t extra,
			       uint32_t room)
{
	struct kv_req *req = kv_req_new(conn->core, key->len, extra + room);

	if (!req)
		return NULL;
	req->complete = redis_part_done;
	req->ctx = slot;
	req->owner = conn;
	req->part = part;
	req->op = (uint8_t)op;
	req->shard = kv_shard_of(conn->core, key->data, key->len);
	req->key_len = key->len;
	memcpy(req->data, key->data, key->len);
	return req;
}

struct kv_req *redis_part_new(struct redis_slot *slot, uint32_t part, uint32_t room)
{
	struct conn *conn = slot->conn;
	struct kv_req *req = kv_req_new(conn->core, 0, room);

	if (!req) {
		slot->pending--;
		slot->oom = true;
		redis_out_of_memory(conn);
		return NULL;
	}
	req->complete = redis_part_done;
	req->ctx = slot;
	req->part = part;
	return req;
}

static bool is_write(enum kv_op op);

void redis_send_part(struct redis_slot *slot, struct kv_req *req)
{
	if (is_write(req->op))
		slot->conn->writes_inflight++;
	else
		slot->conn->reads_inflight++;
	slot->pending++;
	slot->parts = req->part + 1 > slot->parts ? req->part + 1 : slot->parts;
	kv_dispatch(slot->conn->core, req);
}

/* ---- completion and formatting ---------------------------------------- */

static bool is_write(enum kv_op op)
{
	return kv_op_is_write(op);
}

void redis_part_done(struct node_core *c, struct kv_req *req)
{
	struct redis_slot *slot = req->ctx;
	struct conn *conn = slot->conn;

	if (is_write(req->op))
		conn->writes_inflight--;
	else
		conn->reads_inflight--;
	slot->reqs[req->part] = req;
	if (--slot->pending)
		return;
	if (slot->cmd == RESP_CMD_SCAN && slot->stage == 1) {
		size_t len;
		const uint8_t *key = kv_answer(req, &len);

		if (req->status == ringkv_Status_OK) {
			slot->cursor_key = pool_alloc(redis_pool(conn), len ? len : 1);
			if (slot->cursor_key) {
				memcpy(slot->cursor_key, key, len);
				slot->cursor_len = (uint32_t)len;
				if (redis_scan_start(slot) == 0) {
					redis_drain(conn);
					return;
				}
			}
		}
		/* Unknown cursor (or no memory): answer with the error now. */
		slot->stage = 3;
	}
	if (slot->cmd == RESP_CMD_KEYS) {
		redis_keys_continue(slot); /* the next round, or the answer */
		return;
	}
	if (slot->cmd == RESP_CMD_RANDOMKEY) {
		redis_randomkey_continue(slot); /* the next step, or the answer */
		return;
	}
	redis_drain(conn);
}

static void format_slot(struct conn *conn, struct redis_slot *slot, struct reply *r)
{
	struct kv_req *req = slot->reqs[0];
	int64_t sum = 0;
	size_t len;
	uint32_t i;

	if (slot->oom) {
		reply_error(conn, r, "ERR out of memory");
		return;
	}
	if (slot->cmd == RESP_CMD_KEYS) {
		redis_format_keys(conn, slot, r);
		return;
	}
	if (slot->cmd == RESP_CMD_RANDOMKEY) {
		redis_format_randomkey(conn, slot, r);
		return;
	}
	if (slot->cmd == RESP_CMD_SCAN) {
		if (slot->stage != 2)
			reply_error(conn, r, RESP_ERR_INVALID_CURSOR);
		else
			redis_format_scan(conn, slot, r);
		return;
	}
	if (slot->cmd == RESP_CMD_INFO) {
		redis_format_info(conn, slot, r);
		return;
	}
	if (slot->cmd == RESP_CMD_FLUSHDB || slot->cmd == RESP_CMD_FLUSHALL) {
		redis_format_flush(conn, slot, r);
		return;
	}
	if (slot->cmd == RESP_CMD_DBSIZE) {
		struct kv_core_stats st;

		redis_format_stats(conn, slot, &st);
		reply_int(conn, r, (int64_t)st.live_keys);
		return;
	}
	/* Any part that failed outright fails the command. */
	if (slot->oom || slot->parts == 0) {
		reply_error(conn, r, "ERR out of memory");
		return;
	}
	for (i = 0; i < slot->parts; i++) {
		const struct kv_req *p = slot->reqs[i];

		if (!p) {
			reply_error(conn, r, "ERR out of memory");
			return;
		}
		if (p->status != ringkv_Status_OK && p->status != ringkv_Status_NOT_FOUND) {
			reply_status_error(conn, r, p);
			return;
		}
	}
	if (slot->cmd == RESP_CMD_LCS) {
		const uint8_t *a = NULL, *b = NULL;
		size_t alen = 0, blen = 0;

		if (slot->reqs[0]->status == ringkv_Status_OK)
			a = kv_answer(slot->reqs[0], &alen);
		if (slot->reqs[1]->status == ringkv_Status_OK)
			b = kv_answer(slot->reqs[1], &blen);
		redis_format_lcs(conn, r, &slot->ra, a, alen, b, blen);
		return;
	}
	if (slot->has_ra) {
		const uint8_t *v = NULL;

		len = 0;
		if (req->status == ringkv_Status_OK)
			v = kv_answer(req, &len);
		redis_format_read(conn, r, slot->cmd, &slot->ra, req->status == ringkv_Status_OK,
				  v, len);
		return;
	}
	switch (slot->cmd) {
	case RESP_CMD_GET:
		if (req->status == ringkv_Status_OK) {
			const uint8_t *v = kv_answer(req, &len);
			reply_bulk(conn, r, v, len);
		} else {
			reply_null(conn, r);
		}
		return;
	case RESP_CMD_MGET:
		reply_array(conn, r, slot->parts);
		for (i = 0; i < slot->parts; i++) {
			if (slot->reqs[i]->status == ringkv_Status_OK) {
				const uint8_t *v = kv_answer(slot->reqs[i], &len);
				reply_bulk(conn, r, v, len);
			} else {
				reply_null(conn, r);
			}
		}
		return;
	case RESP_CMD_SET:
		if (slot->opts & SET_GET) {
			if (req->existed) {
				const uint8_t *v = kv_answer(req, &len);
				reply_bulk(conn, r, v, len);
			} else {
				reply_null(conn, r);
			}
		} else if (req->applied) {
			reply_simple(conn, r, "OK");
		} else {
			reply_null(conn, r);
		}
		return;
	case RESP_CMD_GETSET:
	case RESP_CMD_GETDEL:
		if (req->existed) {
			const uint8_t *v = kv_answer(req, &len);
			reply_bulk(conn, r, v, len);
		} else {
			reply_null(conn, r);
		}
		return;
	case RESP_CMD_SETNX:
		reply_int(conn, r, req->applied);
		return;
	case RESP_CMD_MSET:
		reply_simple(conn, r, "OK");
		return;
	case RESP_CMD_DEL:
	case RESP_CMD_EXISTS:
	case RESP_CMD_UNLINK:
	case RESP_CMD_TOUCH:
		for (i = 0; i < slot->parts; i++)
			sum += slot->reqs[i]->existed;
		reply_int(conn, r, sum);
		return;
	case RESP_CMD_INCR:
	case RESP_CMD_DECR:
	case RESP_CMD_INCRBY:
	case RESP_CMD_DECRBY:
		if (req->result == RKV_EINVAL)
			reply_error(conn, r, RESP_ERR_NOT_INTEGER);
		else if (req->result)
			reply_error(conn, r, RESP_ERR_OVERFLOW);
		else
			reply_int(conn, r, req->integer);
		return;
	case RESP_CMD_STRLEN:
		reply_int(conn, r, req->integer);
		return;
	case RESP_CMD_APPEND:
	case RESP_CMD_SETRANGE:
	case RESP_CMD_SETBIT:
		if (req->result)
			reply_errorf(conn, r, "ERR string exceeds maximum allowed size (%u bytes)",
				     redis_max_value(conn->core));
		else
			reply_int(conn, r, req->integer);
		return;
	case RESP_CMD_INCRBYFLOAT:
		if (req->result == RKV_EINVAL) {
			reply_error(conn, r, "ERR value is not a valid float");
		} else if (req->result) {
			reply_error(conn, r, "ERR increment would produce NaN or Infinity");
		} else {
			const uint8_t *v = kv_answer(req, &len);
			reply_bulk(conn, r, v, len);
		}
		return;
	case RESP_CMD_MSETNX:
	case RESP_CMD_RENAME:
	case RESP_CMD_RENAMENX:
	case RESP_CMD_COPY:
		redis_format_multi(conn, r, slot->cmd, req); /* server/redis_multi.c */
		return;
	case RESP_CMD_TYPE:
		/* Every ringkv value is a string. */
		reply_simple(conn, r, req->existed ? "string" : "none");
		return;
	default:
		if (redis_format_expire(conn, r, slot->cmd, req)) /* server/redis_expire.c */
			return;
		reply_error(conn, r, "ERR internal error: unexpected reply");
		return;
	}
}

/* ---- commands ------------------------------------------------------------ */

bool redis_arg_is(const struct resp_arg *a, const char *word)
{
	size_t n = strlen(word);

	return a->len == n && strncasecmp((const char *)a->data, word, n) == 0;
}

static bool key_ok(struct conn *conn, struct reply *r, const struct resp_arg *key)
{
	if (key->len > conn->core->node->cfg.max_key) {
		reply_errorf(conn, r, "ERR key too long (%u bytes, the limit is %u)",
			 key->len, conn->core->node->cfg.max_key);
		return false;
	}
	return true;
}

/* Out of memory while building a request: the connection cannot keep its
 * reply order any more, so it is closed after what is queued. */
void redis_out_of_memory(struct conn *conn)
{
	log_warn("connection %llu: out of memory; closing", (unsigned long long)conn->serial);
	conn_close_after_reply(conn);
	redis_drain(conn);
}

void redis_single_key(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id,
		      enum kv_op op, const struct resp_arg *value, unsigned opts, int64_t integer,
		      const struct redis_read_args *ra)
{
	struct redis_conn *rc = conn->redis;
	const struct resp_arg *key = &cmd->argv[1];
	uint32_t room = value ? value->len : 0;
	struct redis_slot *slot;
	struct kv_req *req;

	reply_reset(&rc->scratch);
	if (!key_ok(conn, &rc->scratch, key)) {
		redis_reply_now(conn);
		return;
	}
	if ((op == KV_GET || op == KV_STRLEN) && !rc->head && !redis_is_ttl_read(id)) {
		/* Nothing queued before it and the key's shard is on this core:
		 * answer from memory (memtables, blooms, cached blocks) with no
		 * slot and no request. A block to read takes the path below. */
		uint32_t shard = kv_shard_of(conn->core, key->data, key->len);

		if (node_shard_core(conn->core->node, shard) == conn->core->reactor->id &&
		    replica_read_local_ok(conn->core->replicas[shard])) {
			const void *v;
			size_t len;
			int rv = shard_get(conn->core->shards[shard], key->data, key->len,
					   &v, &len);

			if (rv == 0 || rv == RKV_ENOTFOUND) {
				if (ra)
					redis_format_read(conn, &rc->scratch, id, ra, rv == 0, v, len);
				else if (id == RESP_CMD_TYPE)
					reply_simple(conn, &rc->scratch, rv == 0 ? "string" : "none");
				else if (op == KV_STRLEN)
					reply_int(conn, &rc->scratch, rv == 0 ? (int64_t)len : 0);
				else if (rv == 0)
					reply_bulk(conn, &rc->scratch, v, len);
				else
					reply_null(conn, &rc->scratch);
				/* Within this loop pass: 0 on the loop's clock. */
				metrics_observe(conn->core->metrics,
						conn->core->node->metric_ids->read_latency_resp, 0);
				redis_reply_now(conn);
				return;
			}
		}
	}
	if (op == KV_GET || (opts & SET_GET) || id == RESP_CMD_GETSET)
		room = room > REDIS_GET_ROOM ? room : REDIS_GET_ROOM;
	slot = redis_slot_new(conn, id, 1);
	if (!slot) {
		redis_out_of_memory(conn);
		return;
	}
	slot->opts = opts;
	if (ra) {
		slot->ra = *ra;
		slot->has_ra = true;
	}
	req = part_new(conn, slot, 0, op, key, 0, room);
	if (!req) {
		redis_out_of_memory(conn);
		return;
	}
	if (value) {
		memcpy(req->data + key->len, value->data, value->len);
		req->value_len = value->len;
	}
	req->integer = integer;
	req->limit = redis_max_value(conn->core);
	if (op == KV_PUT_AT || op == KV_EXPIRE_AT)
		req->limit = opts >> REDIS_OPTS_FLAGS_SHIFT;
	if ((opts & SET_GET) || id == RESP_CMD_GETSET)
		req->flags |= KV_WANT_PRIOR;
	redis_send_part(slot, req);
	redis_drain(conn);
}

void redis_two_keys(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id,
		    const struct redis_read_args *ra)
{
	struct redis_conn *rc = conn->redis;
	struct redis_slot *slot;

	reply_reset(&rc->scratch);
	if (!key_ok(conn, &rc->scratch, &cmd->argv[1]) ||
	    !key_ok(conn, &rc->scratch, &cmd->argv[2])) {
		redis_reply_now(conn);
		return;
	}
	slot = redis_slot_new(conn, id, 2);
	if (!slot) {
		redis_out_of_memory(conn);
		return;
	}
	slot->ra = *ra;
	slot->has_ra = true;
	/* Both counted before either is sent (see multi_key). */
	slot->pending = 1;
	for (uint32_t i = 0; i < 2; i++) {
		struct kv_req *req = part_new(conn, slot, i, KV_GET, &cmd->argv[1 + i], 0,
					      REDIS_GET_ROOM);

		if (!req) {
			slot->pending--;
			slot->oom = true;
			redis_out_of_memory(conn);
			return;
		}
		redis_send_part(slot, req);
	}
	slot->pending--;
	redis_drain(conn);
}

/* DEL/UNLINK, EXISTS/TOUCH, MGET over argv[1..]; MSET over pairs. Keys on
 * different shards are written or read one by one: not atomic. */
static void multi_key(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id)
{
	struct redis_conn *rc = conn->redis;
	bool pairs = id == RESP_CMD_MSET;
	uint32_t n = (uint32_t)(pairs ? (cmd->argc - 1) / 2 : cmd->argc - 1);
	enum kv_op op = id == RESP_CMD_DEL || id == RESP_CMD_UNLINK ? KV_DELETE
			: id == RESP_CMD_EXISTS || id == RESP_CMD_TOUCH ? KV_EXISTS
			: id == RESP_CMD_MGET ? KV_GET : KV_PUT;
	struct redis_slot *slot;
	uint32_t i;

	reply_reset(&rc->scratch);
	if (n > REDIS_MAX_KEYS) {
		reply_errorf(conn, &rc->scratch, "ERR too many keys in one command (the limit is %u)",
			     REDIS_MAX_KEYS);
		redis_reply_now(conn);
		return;
	}
	for (i = 0; i < n; i++) {
		if (!key_ok(conn, &rc->scratch, &cmd->argv[1 + (pairs ? 2 * i : i)])) {
			redis_reply_now(conn);
			return;
		}
	}
	slot = redis_slot_new(conn, id, n);
	if (!slot) {
		redis_out_of_memory(conn);
		return;
	}
	/* Every part is counted before any is sent: a part answered in place
	 * must not find the slot complete while others are still unsent. */
	slot->pending = 1;
	for (i = 0; i < n; i++) {
		const struct resp_arg *key = &cmd->argv[1 + (pairs ? 2 * i : i)];
		const struct resp_arg *value = pairs ? &cmd->argv[2 + 2 * i] : NULL;
		struct kv_req *req = part_new(conn, slot, i, op, key, 0,
					      value ? value->len : op == KV_GET ? REDIS_MGET_ROOM : 0);

		if (!req) {
			slot->pending--;
			slot->oom = true;
			redis_out_of_memory(conn);
			return;
		}
		if (value) {
			memcpy(req->data + key->len, value->data, value->len);
			req->value_len = value->len;
		}
		redis_send_part(slot, req);
	}
	slot->pending--;
	redis_drain(conn);
}

static void cmd_incr(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id)
{
	struct reply *r = &conn->redis->scratch;
	int64_t delta = id == RESP_CMD_DECR ? -1 : 1;

	reply_reset(r);
	if (id == RESP_CMD_INCRBY || id == RESP_CMD_DECRBY) {
		if (resp_parse_int64(cmd->argv[2].data, cmd->argv[2].len, &delta) != 0) {
			reply_error(conn, r, RESP_ERR_NOT_INTEGER);
			redis_reply_now(conn);
			return;
		}
		if (id == RESP_CMD_DECRBY) {
			if (delta == INT64_MIN) {
				reply_error(conn, r, RESP_ERR_DECRBY_MIN);
				redis_reply_now(conn);
				return;
			}
			delta = -delta;
		}
	}
	redis_single_key(conn, cmd, id, KV_INCRBY, NULL, 0, delta, NULL);
}

static void execute(struct conn *conn, const struct resp_command *cmd)
{
	struct reply *r = &conn->redis->scratch;
	const struct resp_command_info *ci;
	char err[256];
	int64_t db;

	reply_reset(r);
	ci = resp_command_lookup(cmd->argv[0].data, cmd->argv[0].len);
	conn->core->stats.resp_ops[ci ? (unsigned)ci->id : RESP_CMD_TOP_COUNT]++;
	if (!ci) {
		resp_format_unknown_command(err, sizeof err, cmd->argv, cmd->argc);
		reply_error(conn, r, err);
		redis_reply_now(conn);
		return;
	}
	if (!resp_command_arity_ok(ci, cmd->argc) ||
	    ((ci->id == RESP_CMD_MSET || ci->id == RESP_CMD_MSETNX) && cmd->argc % 2 == 0)) {
		resp_format_wrong_arity(err, sizeof err, ci);
		reply_error(conn, r, err);
		redis_reply_now(conn);
		return;
	}
	conn->core->stats.requests++;
	if (!redis_auth_allows(conn, cmd, ci)) /* server/redis_auth.c */
		return;
	switch (ci->id) {
	case RESP_CMD_PING:
		if (cmd->argc > 2) {
			/* PING's arity is -1 in Redis's table; the command itself
			 * refuses more than one argument. */
			resp_format_wrong_arity(err, sizeof err, ci);
			reply_error(conn, r, err);
		} else if (cmd->argc == 2)
			reply_bulk(conn, r, cmd->argv[1].data, cmd->argv[1].len);
		else
			reply_simple(conn, r, "PONG");
		redis_reply_now(conn);
		return;
	case RESP_CMD_ECHO:
		reply_bulk(conn, r, cmd->argv[1].data, cmd->argv[1].len);
		redis_reply_now(conn);
		return;
	case RESP_CMD_QUIT:
		reply_simple(conn, r, "OK");
		redis_reply_now(conn);
		conn_close_after_reply(conn);
		return;
	case RESP_CMD_SELECT:
		if (resp_parse_int64(cmd->argv[1].data, cmd->argv[1].len, &db) != 0)
			reply_error(conn, r, RESP_ERR_NOT_INTEGER);
		else if (db != 0)
			reply_error(conn, r, RESP_ERR_DB_INDEX);
		else
			reply_simple(conn, r, "OK");
		redis_reply_now(conn);
		return;
	case RESP_CMD_HELLO:
		redis_cmd_hello(conn, cmd);
		return;
	case RESP_CMD_AUTH:
		redis_cmd_auth(conn, cmd);
		return;
	case RESP_CMD_GET:
		redis_single_key(conn, cmd, ci->id, KV_GET, NULL, 0, 0, NULL);
		return;
	case RESP_CMD_SET:
		redis_cmd_set(conn, cmd); /* server/redis_expire.c */
		return;
	case RESP_CMD_SETNX:
		redis_single_key(conn, cmd, ci->id, KV_PUT_NX, &cmd->argv[2], 0, 0, NULL);
		return;
	case RESP_CMD_GETSET:
		redis_single_key(conn, cmd, ci->id, KV_PUT, &cmd->argv[2], 0, 0, NULL);
		return;
	case RESP_CMD_APPEND:
		redis_single_key(conn, cmd, ci->id, KV_APPEND, &cmd->argv[2], 0, 0, NULL);
		return;
	case RESP_CMD_STRLEN:
	case RESP_CMD_TYPE:
		redis_single_key(conn, cmd, ci->id, KV_STRLEN, NULL, 0, 0, NULL);
		return;
	case RESP_CMD_INCR:
	case RESP_CMD_DECR:
	case RESP_CMD_INCRBY:
	case RESP_CMD_DECRBY:
		cmd_incr(conn, cmd, ci->id);
		return;
	case RESP_CMD_DEL:
	case RESP_CMD_EXISTS:
	case RESP_CMD_UNLINK:
	case RESP_CMD_TOUCH:
	case RESP_CMD_MGET:
	case RESP_CMD_MSET:
		multi_key(conn, cmd, ci->id);
		return;
	case RESP_CMD_SCAN:
		redis_cmd_scan(conn, cmd);
		return;
	case RESP_CMD_KEYS:
		redis_cmd_keys(conn, cmd);
		return;
	case RESP_CMD_RANDOMKEY:
		redis_cmd_randomkey(conn);
		return;
	case RESP_CMD_TIME: {
		struct timespec now;
		char text[24];

		clock_gettime(CLOCK_REALTIME, &now);
		reply_array(conn, r, 2);
		snprintf(text, sizeof text, "%lld", (long long)now.tv_sec);
		reply_str(conn, r, text);
		snprintf(text, sizeof text, "%ld", now.tv_nsec / 1000);
		reply_str(conn, r, text);
		redis_reply_now(conn);
		return;
	}
	case RESP_CMD_FLUSHDB:
	case RESP_CMD_FLUSHALL:
		redis_cmd_flush(conn, cmd, ci->id); /* server/redis_flush.c */
		return;
	case RESP_CMD_DBSIZE:
		redis_all_cores(conn, ci->id, NULL);
		return;
	case RESP_CMD_INFO:
		redis_all_cores(conn, ci->id, cmd->argc > 1 ? &cmd->argv[1] : NULL);
		return;
	case RESP_CMD_COMMAND:
		redis_cmd_command(conn, cmd, ci);
		return;
	case RESP_CMD_CONFIG:
	case RESP_CMD_CLIENT: {
		const struct resp_command_info *sub = redis_subcommand(conn, cmd, ci);

		if (!sub)
			return;
		if (ci->id == RESP_CMD_CONFIG)
			redis_cmd_config(conn, cmd, sub);
		else
			redis_cmd_client(conn, cmd, sub);
		return;
	}
	default:
		if (redis_cmd_string(conn, cmd, ci->id)) /* server/redis_strings.c */
			return;
		if (redis_cmd_multi(conn, cmd, ci->id)) /* server/redis_multi.c */
			return;
		if (redis_cmd_expire(conn, cmd, ci->id)) /* server/redis_expire.c */
			return;
		resp_format_unknown_command(err, sizeof err, cmd->argv, cmd->argc);
		reply_error(conn, r, err);
		redis_reply_now(conn);
		return;
	}
}

/* Commands that read the keyspace (and so must see earlier writes). */
/*
 * A connection answered a protocol error: closed once its answer is out,
 * then drained until the peer closes (server/conn.c), so the error is not
 * lost to a reset. A peer that keeps sending would keep it open for ever
 * (Redis's "protocol desync" tests send for 30 s): it is dropped a second
 * after the error, as Redis closes such a connection at once.
 */
static void desync_close(struct timer *t, void *arg)
{
	(void)t;
	conn_drop(arg);
}

static bool has_flag(const struct resp_command *cmd, uint32_t flag)
{
	const struct resp_command_info *ci =
		resp_command_lookup(cmd->argv[0].data, cmd->argv[0].len);

	return ci && (ci->flags & flag) != 0;
}

void redis_process(struct conn *conn)
{
	struct redis_conn *rc = conn->redis;
	size_t off = conn->roff;

	rc->last_us = conn->core->reactor->now_us; /* CONFIG SET timeout */
	while (!conn->closing) {
		struct resp_command cmd;
		size_t consumed = 0;
		int rv;

		if (conn_is_paused(conn)) {
			/* (Also while a password is verified: what follows runs
			 * as the user it makes, or is refused.) */
			conn->held = true;
			break;
		}
		rv = resp_parse(&rc->parser, conn->rbuf + off, conn->rlen - off, &cmd, &consumed);
		off += consumed;
		if (rv == RKV_EAGAIN) {
			/* The whole command must fit: arm_recv grows the buffer
			 * (never while a recv is in flight into it). */
			conn->rwant = resp_parser_wanted(&rc->parser);
			break;
		}
		if (rv == 0 && ((conn->writes_inflight && has_flag(&cmd, RESP_CMDF_READONLY)) ||
				(conn->reads_inflight && has_flag(&cmd, RESP_CMDF_WRITE)))) {
			/* Commands of a connection take effect in order, as with
			 * Redis: a read waits for the connection's earlier writes
			 * (a pipelined SET then GET sees the SET), and a write for
			 * its earlier reads (a pipelined GET then INCR does not see
			 * the INCR, even when the GET waits for a read index). The
			 * command stays in the buffer; the last completion resumes
			 * decoding here. */
			off -= consumed;
			conn->held = true;
			break;
		}
		if (rv != 0) {
			conn->core->stats.bad_frames++;
			reply_reset(&rc->scratch);
			reply_error(conn, &rc->scratch, rv == RKV_EPROTO ? resp_parser_error(&rc->parser)
							  : "ERR out of memory");
			redis_reply_now(conn);
			conn_close_after_reply(conn);
			reactor_timer_arm(conn->core->reactor, &rc->desync_close,
					  REDIS_DESYNC_CLOSE_US, desync_close, conn);
			break;
		}
		if (conn->core->node->users && auth_needed(conn) && !auth_preauth_request(conn)) {
			reply_reset(&rc->scratch);
			reply_error(conn, &rc->scratch, "ERR too many commands before AUTH; closing");
			redis_reply_now(conn);
			conn_close_after_reply(conn);
			break;
		}
		execute(conn, &cmd);
	}
	conn->roff = off;
}

void redis_parser_limits(struct conn *conn, struct resp_limits *limits)
{
	const struct config *cfg = &conn->core->node->cfg;
	uint32_t max_value = redis_max_value(conn->core); /* CONFIG SET proto-max-bulk-len */

	resp_limits_default(limits);
	limits->max_bulk = max_value > cfg->max_key ? max_value : cfg->max_key;
}

void redis_preauth_limits(struct conn *conn)
{
	struct resp_limits limits;

	redis_parser_limits(conn, &limits);
	limits.max_args = 16;
	limits.max_bulk = USERS_PASSWORD_MAX + 64;
	limits.max_inline = AUTH_PREAUTH_FRAME;
	limits.max_request = AUTH_PREAUTH_FRAME;
	resp_parser_set_limits(&conn->redis->parser, &limits);
}

int redis_conn_init(struct conn *conn)
{
	struct redis_conn *rc = pool_alloc(redis_pool(conn), sizeof *rc);
	struct resp_limits limits;

	if (!rc)
		return -ENOMEM;
	memset(rc, 0, sizeof *rc);
	conn->redis = rc;
	redis_parser_limits(conn, &limits);
	resp_parser_init(&rc->parser, &limits);
	if (conn->core->node->users)
		redis_preauth_limits(conn);
	rc->id = ((uint64_t)conn->core->reactor->id << 48) | conn->serial;
	rc->created = time(NULL);
	rc->last_us = conn->core->reactor->now_us;
	return 0;
}

void redis_conn_free(struct conn *conn)
{
	struct redis_conn *rc = conn->redis;

	while (rc->head) {
		struct redis_slot *slot = rc->head;

		rc->head = slot->next;
		slot_free(conn, slot);
	}
	reactor_timer_cancel(conn->core->reactor, &rc->desync_close);
	resp_parser_destroy(&rc->parser);
	pool_free(redis_pool(conn), rc->scratch.data);
	pool_free(redis_pool(conn), rc);
	conn->redis = NULL;
}

int redis_core_init(struct node_core *c)
{
	struct redis_core *rcore = calloc(1, sizeof *rcore);

	if (!rcore)
		return -ENOMEM;
	rcore->started = time(NULL);
	c->redis = rcore;
	redis_settings_init(c); /* server/redis_config.c */
	if (redis_expiry_start(c) != 0) { /* server/redis_expiry.c */
		free(rcore);
		c->redis = NULL;
		return -ENOMEM;
	}
	return 0;
}

void redis_core_destroy(struct node_core *c)
{
	struct redis_core *rcore = c->redis;
	unsigned i;

	if (!rcore)
		return;
	redis_expiry_stop(c);
	redis_count_stop(c); /* server/redis_count.c */
	redis_settings_stop(c); /* server/redis_config.c */
	for (i = 0; i < REDIS_CURSORS; i++)
		pool_free(&c->reactor->pool, rcore->cursors[i].key);
	free(rcore);
	c->redis = NULL;
}
