/*
 * FLUSHDB and FLUSHALL over RESP (ringkv has one database, so they are the
 * same command): one FLUSH write (KV_FLUSH, applied by shard/shard_drop.c)
 * per shard, sent through the ordinary write path, so each goes to its
 * shard's leader, on this node or forwarded to another, is committed by the
 * shard's Raft group and applied on every replica in log order. Writes a
 * shard committed before its FLUSH are gone, writes after it stay.
 *
 * The reply is +OK only when every shard answered OK. Otherwise it is an
 * error that says on how many shards the flush was applied, names the
 * shards whose outcome is unknown (they may or may not have dropped their
 * keys: leadership lost, a forward unanswered in time) apart from those
 * where it was not applied, with the first reason of each; FLUSHDB again
 * completes it. Shards are flushed one by one, not at one instant: a write
 * racing with the FLUSHDB may survive on one shard and not on another.
 *
 * ASYNC and SYNC are accepted, as by Redis 7.0, and do the same here: a
 * shard's drop is one manifest edit whatever its number of keys, and the
 * table files are deleted in the background once no reader holds them.
 *
 * Without --enable-flush the command is refused, naming the flag.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ringkv.pb.h"
#include "server/conn.h"
#include "server/node.h"
#include "server/redis.h"
#include "server/redis_impl.h"

/* Answer room of a part: a forwarded error's text travels in it. */
#define FLUSH_ERROR_ROOM 256u
/* Shards named in an error before "...". */
#define FLUSH_NAMED_MAX 16u

void redis_cmd_flush(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id)
{
	struct node_core *c = conn->core;
	struct reply *r = &conn->redis->scratch;
	unsigned shards = c->node->shards;
	struct redis_slot *slot;

	reply_reset(r);
	if (cmd->argc > 2 || (cmd->argc == 2 && !redis_arg_is(&cmd->argv[1], "ASYNC") &&
			      !redis_arg_is(&cmd->argv[1], "SYNC"))) {
		reply_error(conn, r, RESP_ERR_SYNTAX);
		redis_reply_now(conn);
		return;
	}
	if (!c->node->cfg.enable_flush) {
		reply_error(conn, r, RESP_ERR_FLUSH_DISABLED);
		redis_reply_now(conn);
		return;
	}
	slot = redis_slot_new(conn, id, shards);
	if (!slot) {
		redis_out_of_memory(conn);
		return;
	}
	/* Every part is counted before any is sent (see multi_key). */
	slot->pending = 1;
	for (unsigned i = 0; i < shards; i++) {
		struct kv_req *req = redis_part_new(slot, i, FLUSH_ERROR_ROOM);

		if (!req)
			return;
		req->op = KV_FLUSH;
		req->shard = i;
		redis_send_part(slot, req);
	}
	slot->pending--;
	redis_drain(conn);
}

struct text {
	char buf[512];
	size_t len;
};

static void add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->len >= sizeof t->buf)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, sizeof t->buf - t->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->len += (size_t)n;
}

/* Whether shard part `p` ended in class `unknown` (its outcome unknown) or
 * not (not applied). */
static bool outcome_unknown(const struct kv_req *p)
{
	return p->status == ringkv_Status_UNKNOWN || p->status == ringkv_Status_INTERNAL;
}

/* "; outcome unknown on shards 1, 4 (why)" for the parts of one class. */
static void add_class(struct text *t, const struct redis_slot *slot, bool unknown,
		      const char *label)
{
	const char *why = NULL;
	uint32_t named = 0, count = 0;

	for (uint32_t i = 0; i < slot->parts; i++)
		count += slot->reqs[i] && slot->reqs[i]->status != ringkv_Status_OK &&
			 outcome_unknown(slot->reqs[i]) == unknown;
	for (uint32_t i = 0; i < slot->parts; i++) {
		const struct kv_req *p = slot->reqs[i];

		if (!p || p->status == ringkv_Status_OK || outcome_unknown(p) != unknown)
			continue;
		if (named == 0)
			add(t, "; %s on shard%s %" PRIu32, label, count > 1 ? "s" : "", i);
		else if (named < FLUSH_NAMED_MAX)
			add(t, ", %" PRIu32, i);
		else if (named == FLUSH_NAMED_MAX)
			add(t, ", ...");
		named++;
		if (!why)
			why = p->error ? p->error : "no reason given";
	}
	if (why)
		add(t, " (%s)", why);
}

void redis_format_flush(struct conn *conn, struct redis_slot *slot, struct reply *r)
{
	const char *name = slot->cmd == RESP_CMD_FLUSHALL ? "FLUSHALL" : "FLUSHDB";
	struct text t = { .len = 0 };
	uint32_t ok = 0, missing = 0;

	for (uint32_t i = 0; i < slot->parts; i++) {
		if (!slot->reqs[i])
			missing++;
		else if (slot->reqs[i]->status == ringkv_Status_OK)
			ok++;
	}
	if (ok == slot->parts && ok == conn->core->node->shards) {
		reply_simple(conn, r, "OK");
		return;
	}
	add(&t, "ERR %s incomplete: applied on %" PRIu32 " of %u shards", name, ok,
	    conn->core->node->shards);
	add_class(&t, slot, true, "outcome unknown (may or may not have been applied)");
	add_class(&t, slot, false, "not applied");
	if (missing || slot->parts < conn->core->node->shards)
		add(&t, "; not sent to every shard (out of memory)");
	add(&t, "; %s again completes it", name);
	if (t.len >= sizeof t.buf)
		memcpy(t.buf + sizeof t.buf - 4, "...", 4);
	reply_error(conn, r, t.buf);
}
