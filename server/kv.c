/*
 * Request execution and cross-core forwarding; see server/kv.h.
 */
#include "server/kv.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "core/errors.h"
#include "core/log.h"
#include "ringkv.pb.h"
#include "server/conn.h"
#include "server/node.h"
#include "shard/route.h"

/* Spare room a forwarded GET carries for its answer; larger values take one
 * more round trip (see kv.h). */
#define KV_GET_ROOM 1024u

#define KV_STATUS_NEED_ROOM (-1)

static void on_request(struct reactor *r, struct reactor_msg *m);
static void on_answer(struct reactor *r, struct reactor_msg *m);

static struct node_core *core_of(struct reactor *r)
{
	return r->user;
}

static struct kv_req *req_alloc(struct node_core *c, uint32_t key_len, uint32_t room)
{
	struct kv_req *req = pool_alloc(&c->reactor->pool, sizeof *req + key_len + room);

	if (!req)
		return NULL;
	memset(req, 0, sizeof *req);
	req->cap = (uint32_t)(pool_block_size(req) - sizeof *req);
	return req;
}

/* Origin core: the request is answered; hand it to its connection. */
static void finish(struct node_core *c, struct kv_req *req)
{
	struct conn *conn = req->conn;

	if (req->status == KV_STATUS_NEED_ROOM) {
		struct kv_req *bigger = req_alloc(c, req->key_len, req->need);

		if (bigger) {
			bigger->conn = conn;
			bigger->id = req->id;
			bigger->shard = req->shard;
			bigger->origin = req->origin;
			bigger->op = req->op;
			bigger->key_len = req->key_len;
			memcpy(bigger->data, req->data, req->key_len);
			pool_free(&c->reactor->pool, req);
			bigger->msg.handle = on_request;
			c->stats.forwarded++;
			reactor_send(c->reactor, node_shard_core(c->node, bigger->shard),
				     &bigger->msg);
			return;
		}
		req->status = ringkv_Status_RESOURCE_EXHAUSTED;
		req->error = "out of memory for the value";
		req->value_len = 0;
	}
	conn_reply(conn, req->id, req->status,
		   req->op == FRAME_OP_GET ? req->data + req->key_len : NULL,
		   req->op == FRAME_OP_GET ? req->value_len : 0, req->error);
	c->outstanding--;
	pool_free(&c->reactor->pool, req);
	conn_request_done(conn);
}

/* Owning core: the request has its result; send it home. */
static void answer(struct node_core *c, struct kv_req *req)
{
	if (req->origin == c->reactor->id) {
		finish(c, req);
		return;
	}
	req->msg.handle = on_answer;
	reactor_send(c->reactor, req->origin, &req->msg);
}

static void set_write_error(struct kv_req *req, int rv, bool queued)
{
	switch (rv) {
	case 0:
		req->status = ringkv_Status_OK;
		req->error = NULL;
		break;
	case RKV_EFULL:
		req->status = ringkv_Status_RESOURCE_EXHAUSTED;
		req->error = queued ? "disk full: the write was not stored"
				    : "memtable full: the shard cannot take more data";
		break;
	case RKV_ETOOLARGE:
		req->status = ringkv_Status_TOO_LARGE;
		req->error = "record too large for the WAL";
		break;
	case -EIO:
		req->status = ringkv_Status_UNAVAILABLE;
		req->error = "the shard's WAL failed; writes are refused until restart";
		break;
	default:
		req->status = ringkv_Status_INTERNAL;
		req->error = "internal error";
		break;
	}
}

static void write_done(struct shard_waiter *w, int rv)
{
	struct kv_req *req = (struct kv_req *)((char *)w - offsetof(struct kv_req, waiter));

	set_write_error(req, rv, true);
	answer(req->exec, req);
}

static void execute(struct node_core *c, struct kv_req *req)
{
	struct shard *s = c->shards[req->shard];
	struct command cmd;
	int rv;

	if (!s) {
		/* The table is fixed at start-up, so this cannot happen. */
		panic("core %u got a request for shard %u it does not own",
		      c->reactor->id, req->shard);
	}
	if (req->op == FRAME_OP_GET) {
		const void *value;
		size_t len;

		rv = shard_get(s, req->data, req->key_len, &value, &len);
		if (rv == RKV_ENOTFOUND) {
			req->status = ringkv_Status_NOT_FOUND;
			req->value_len = 0;
		} else if (len > req->cap - req->key_len) {
			req->status = KV_STATUS_NEED_ROOM;
			req->need = (uint32_t)len;
		} else {
			memcpy(req->data + req->key_len, value, len);
			req->value_len = (uint32_t)len;
			req->status = ringkv_Status_OK;
		}
		answer(c, req);
		return;
	}
	req->exec = c;
	cmd.op = req->op == FRAME_OP_PUT ? COMMAND_PUT : COMMAND_DELETE;
	cmd.key = req->data;
	cmd.key_len = req->key_len;
	cmd.value = req->op == FRAME_OP_PUT ? req->data + req->key_len : NULL;
	cmd.value_len = req->op == FRAME_OP_PUT ? req->value_len : 0;
	req->waiter.done = write_done;
	rv = shard_write(s, &cmd, &req->waiter);
	if (rv != 0) {
		set_write_error(req, rv, false);
		answer(c, req);
	}
}

static void on_request(struct reactor *r, struct reactor_msg *m)
{
	struct node_core *c = core_of(r);

	c->stats.served_for_peers++;
	execute(c, (struct kv_req *)m);
}

static void on_answer(struct reactor *r, struct reactor_msg *m)
{
	finish(core_of(r), (struct kv_req *)m);
}

void kv_submit(struct node_core *c, struct conn *conn, const struct frame_request *fr)
{
	uint32_t shard = route_shard(route_slot(fr->key.data, fr->key.len), c->node->shards);
	unsigned owner = node_shard_core(c->node, shard);
	uint32_t room;
	struct kv_req *req;

	if (fr->op == FRAME_OP_GET && owner == c->reactor->id) {
		const void *value;
		size_t len;

		if (shard_get(c->shards[shard], fr->key.data, fr->key.len, &value, &len) == 0)
			conn_reply(conn, fr->id, ringkv_Status_OK, value, len, NULL);
		else
			conn_reply(conn, fr->id, ringkv_Status_NOT_FOUND, NULL, 0, NULL);
		return;
	}
	room = fr->op == FRAME_OP_PUT ? fr->value.len :
	       fr->op == FRAME_OP_GET ? KV_GET_ROOM : 0;
	req = req_alloc(c, fr->key.len, room);
	if (!req) {
		conn_reply(conn, fr->id, ringkv_Status_RESOURCE_EXHAUSTED, NULL, 0,
			   "out of memory");
		return;
	}
	req->conn = conn;
	req->id = fr->id;
	req->shard = shard;
	req->origin = (uint16_t)c->reactor->id;
	req->op = (uint8_t)fr->op;
	req->key_len = fr->key.len;
	memcpy(req->data, fr->key.data, fr->key.len);
	if (fr->op == FRAME_OP_PUT) {
		req->value_len = fr->value.len;
		memcpy(req->data + fr->key.len, fr->value.data, fr->value.len);
	}
	conn->inflight++;
	c->outstanding++;
	if (owner == c->reactor->id) {
		execute(c, req);
		return;
	}
	c->stats.forwarded++;
	req->msg.handle = on_request;
	reactor_send(c->reactor, owner, &req->msg);
}
