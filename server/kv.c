/*
 * Request execution and cross-core forwarding; see server/kv.h.
 */
#include "server/kv.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/replica.h"
#include "core/errors.h"
#include "core/le.h"
#include "core/glob.h"
#include "core/log.h"
#include "proto/frame.h"
#include "ringkv.pb.h"
#include "server/backup.h"
#include "server/move.h"
#include "server/cluster_info.h"
#include "server/conn.h"
#include "server/forward.h"
#include "shard/core_log.h"
#include "shard/deadline_index.h"
#include "server/node.h"
#include "server/redis.h"
#include "shard/key_order.h"
#include "shard/route.h"
#include "shard/value_deadline.h"

/* Spare room a forwarded GET carries for its answer; larger values take one
 * more round trip (see kv.h). */
#define KV_GET_ROOM 1024u

const char kv_error_disk_full[] = "disk full: the write was not stored";
const char kv_error_damaged[] = "the shard has a damaged table (a block failed its "
	"checksum, see the server log) and refuses writes until it is repaired "
	"(ringkvd repair); the write was not stored";

static void on_request(struct reactor *r, struct reactor_msg *m);
static void on_answer(struct reactor *r, struct reactor_msg *m);

static struct node_core *core_of(struct reactor *r)
{
	return r->user;
}

struct kv_req *kv_req_new(struct node_core *c, uint32_t key_len, uint32_t room)
{
	struct kv_req *req = pool_alloc_large(&c->reactor->pool,
					    sizeof *req + (size_t)key_len + room);

	if (!req)
		return NULL;
	memset(req, 0, sizeof *req);
	req->cap = (uint32_t)(pool_block_size(req) - sizeof *req);
	req->shard = KV_NO_SHARD;
	return req;
}

void kv_req_free(struct node_core *c, struct kv_req *req)
{
	if (req->charged)
		req->owner->answer_bytes -= req->charged;
	free(req->big);
	pool_free(&c->reactor->pool, req);
}

static uint8_t *answer_room(struct kv_req *req, size_t *room)
{
	size_t used = (size_t)req->key_len + req->arg_len;

	*room = req->cap - used;
	return req->data + used;
}

const uint8_t *kv_answer(const struct kv_req *req, size_t *len)
{
	*len = req->value_len;
	if (req->big)
		return req->big;
	return req->data + req->key_len + req->arg_len;
}

bool kv_scan_bound(struct kv_req *const *steps, uint32_t n, kv_scan_finished_fn *finished,
		   void *arg, const uint8_t **key, uint32_t *len)
{
	bool found = false;

	for (uint32_t i = 0; i < n; i++) {
		const struct kv_req *req = steps[i];
		const uint8_t *resume;
		size_t answer_len;

		if (!req || finished(req, arg))
			continue;
		resume = kv_answer(req, &answer_len);
		if (!found || key_order_cmp(resume, req->need, *key, *len) < 0) {
			*key = resume;
			*len = req->need;
			found = true;
		}
	}
	return found;
}

uint32_t kv_shard_of(const struct node_core *c, const void *key, size_t key_len)
{
	return route_shard(route_slot_fn(c->node->slot_function, key, key_len), c->node->shards);
}

/* Origin core: the answer is in. */
static void finish(struct node_core *c, struct kv_req *req)
{
	if (req->status == KV_STATUS_NEED_ROOM) {
		/* Repeat the read with room for the value, unless the client
		 * already holds as much as it may in unread answers. */
		struct kv_req *bigger = NULL;

		if (req->owner && !conn_answer_room(req->owner, req->need)) {
			req->status = ringkv_Status_RESOURCE_EXHAUSTED;
			req->error = "replies waiting on this connection exceed the 64 MiB limit "
				     "(read replies before asking for more)";
			req->value_len = 0;
			c->outstanding--;
			req->complete(c, req);
			return;
		}
		bigger = kv_req_new(c, req->key_len + req->arg_len, req->need);
		if (bigger) {
			size_t head = offsetof(struct kv_req, status);

			memcpy(bigger, req, head);
			bigger->cap = (uint32_t)(pool_block_size(bigger) - sizeof *bigger);
			bigger->key_len = req->key_len;
			bigger->arg_len = req->arg_len;
			bigger->limit = req->limit;
			bigger->integer = req->integer;
			memcpy(bigger->data, req->data, req->key_len + req->arg_len);
			bigger->charged = 0;
			if (bigger->owner) {
				bigger->charged = (uint32_t)pool_block_size(bigger);
				bigger->owner->answer_bytes += bigger->charged;
			}
			kv_req_free(c, req);
			c->outstanding--;
			kv_dispatch(c, bigger);
			return;
		}
		req->status = ringkv_Status_RESOURCE_EXHAUSTED;
		req->error = "out of memory for the value";
		req->value_len = 0;
	}
	c->outstanding--;
	req->complete(c, req);
}

/* Executing core: the request has its answer; send it home. */
static void answer(struct node_core *c, struct kv_req *req)
{
	if (req->origin == c->reactor->id) {
		finish(c, req);
		return;
	}
	req->msg.handle = on_answer;
	reactor_send(c->reactor, req->origin, &req->msg);
}

void kv_answer_home(struct node_core *c, struct kv_req *req)
{
	answer(c, req);
}

static void set_write_error(struct kv_req *req, int rv)
{
	switch (rv) {
	case 0:
		req->status = ringkv_Status_OK;
		req->error = NULL;
		break;
	case RKV_EFULL:
		req->status = ringkv_Status_RESOURCE_EXHAUSTED;
		/* Writes go through the replication engine, whose only
		 * RKV_EFULL is its log's full disk (a shard that cannot flush
		 * holds apply back instead of refusing entries). */
		req->error = kv_error_disk_full;
		break;
	case RKV_ECORRUPT:
		req->status = ringkv_Status_DATA_LOSS;
		req->error = "stored data failed its checksum (see the server log)";
		break;
	case RKV_ETOOLARGE:
		req->status = ringkv_Status_TOO_LARGE;
		req->error = "record too large for the log";
		break;
	case -EIO:
		req->status = ringkv_Status_UNAVAILABLE;
		req->error = "this node's log failed (a write or fdatasync error, see the server "
			     "log); writes are refused until restart";
		break;
	case RAFT_ENOTLEADER:
		/* Refused before it entered the log, or overwritten in it by
		 * another leader's entry: not applied, safe to retry. */
		req->status = ringkv_Status_NOT_LEADER;
		req->error = "this node does not lead the key's shard; the write was not applied";
		break;
	case RAFT_EBUSY:
		req->status = ringkv_Status_UNAVAILABLE;
		req->error = "leadership of the key's shard is moving; retry shortly";
		break;
	case RKV_EUNKNOWN:
		req->status = ringkv_Status_UNKNOWN;
		req->error = "outcome unknown: leadership was lost before the write was seen "
			     "committed; it may or may not have been applied";
		break;
	case RKV_ESHUTDOWN:
		req->status = ringkv_Status_UNAVAILABLE;
		req->error = "the node is stopping; the write was not applied";
		break;
	default:
		req->status = ringkv_Status_INTERNAL;
		req->error = "internal error";
		break;
	}
}

static void write_done(struct shard_waiter *w, int rv, const struct shard_result *res)
{
	struct kv_req *req = (struct kv_req *)((char *)w - offsetof(struct kv_req, waiter));

	if (rv == RAFT_ENOTLEADER) {
		/* Overwritten by another leader's entry: not applied, so it
		 * may go to the new leader (bounded by the hop limit). */
		struct node_core *c = req->exec;

		forward_route(c, req, c->replicas[req->shard]);
		return;
	}
	set_write_error(req, rv);
	if (rv == 0) {
		req->existed = res->existed;
		req->applied = res->applied;
		req->integer = res->integer;
		req->result = res->error;
		req->value_len = 0;
		if (res->old_value) {
			size_t room;
			uint8_t *out = answer_room(req, &room);

			if (res->old_len > room) {
				req->big = malloc(res->old_len);
				out = req->big;
			}
			if (out) {
				memcpy(out, res->old_value, res->old_len);
				req->value_len = (uint32_t)res->old_len;
			} else {
				req->status = ringkv_Status_RESOURCE_EXHAUSTED;
				req->error = "out of memory for the previous value";
			}
		}
	}
	answer(req->exec, req);
}

struct scan_step {
	uint8_t *out;             /* entries: u32 length + key, packed */
	size_t room;
	size_t used;
	uint64_t count;
	uint64_t visited;         /* keys handed to scan_visit */
	uint64_t work;            /* glob steps spent so far */
	const uint8_t *pattern;
	size_t pattern_len;
};

static bool key_matches(struct scan_step *st, const void *key, size_t len)
{
	if (st->pattern_len == 0)
		return true;
	return glob_match_counted(st->pattern, st->pattern_len, key, len, false, &st->work);
}

static bool scan_visit(void *arg, const void *key, size_t key_len,
		       const void *value, size_t value_len)
{
	struct kv_req *req = arg;
	struct scan_step *st = (struct scan_step *)(void *)req->big;

	/* A pathological MATCH pattern (long, many '*') over long keys costs
	 * pattern x key steps per key: past the budget the step ends early
	 * (this key not examined, the cursor resumes at it), so one SCAN
	 * holds its core for a bounded time. The first key always goes in,
	 * so every step makes progress. */
	if (st->visited > 0 && st->work >= KV_SCAN_WORK_MAX)
		return false;
	st->visited++;
	if (!key_matches(st, key, key_len))
		return true;
	if (st->used + 4 + key_len > st->room)
		return false;
	memcpy(st->out + st->used, &(uint32_t){ (uint32_t)key_len }, 4);
	memcpy(st->out + st->used + 4, key, key_len);
	st->used += 4 + key_len;
	st->count++;
	return true;
}

static void scan_done(void *arg, int rv, bool exhausted, const void *last, size_t last_len)
{
	struct kv_req *req = arg;
	struct node_core *c = req->exec;
	size_t room;
	uint8_t *out = answer_room(req, &room);
	struct scan_step *st = (struct scan_step *)(void *)req->big;

	req->big = NULL;
	req->done = exhausted;
	if (last) {
		memcpy(out, last, last_len);
		req->need = (uint32_t)last_len;
	} else {
		/* Nothing examined: resume where this step started. */
		memmove(out, req->data, req->key_len);
		req->need = req->key_len;
	}
	req->integer = (int64_t)st->count;
	req->value_len = (uint32_t)st->used;
	req->status = ringkv_Status_OK;
	if (rv == RKV_ECORRUPT) {
		req->status = ringkv_Status_DATA_LOSS;
		req->error = "stored data failed its checksum (see the server log)";
	} else if (rv) {
		req->status = ringkv_Status_INTERNAL;
		req->error = "scan failed";
	}
	free(st);
	answer(c, req);
}

/*
 * One shard's step of a SCAN. Answer room layout: max_key bytes holding the
 * resume key (its length in req->need), then the matching keys packed as
 * u32 length + bytes (req->integer of them, req->value_len bytes in all).
 * The step may wait for SSTable blocks; the request is answered from
 * scan_done. The step's state rides in req->big until then (freed there).
 */
static void execute_scan(struct node_core *c, struct shard *s, struct kv_req *req)
{
	uint32_t max_key = c->node->cfg.max_key;
	struct scan_step *st = calloc(1, sizeof *st);
	size_t room;
	uint8_t *out = answer_room(req, &room);
	int rv;

	if (!st) {
		req->status = ringkv_Status_RESOURCE_EXHAUSTED;
		req->error = "out of memory";
		answer(c, req);
		return;
	}
	st->out = out + max_key;
	st->room = room - max_key;
	st->pattern = req->data + req->key_len;
	st->pattern_len = req->arg_len;
	req->exec = c;
	req->big = (uint8_t *)st;
	rv = shard_scan(s, req->data, req->key_len, req->flags & KV_SCAN_AFTER, req->limit,
			scan_visit, scan_done, req);
	if (rv) {
		req->big = NULL;
		free(st);
		req->status = ringkv_Status_RESOURCE_EXHAUSTED;
		req->error = "out of memory";
		answer(c, req);
	}
}

/* A read's answer, from memory or from blocks read on the ring. */
static void read_answer(struct kv_req *req, int rv, const void *value, size_t len)
{
	size_t room;
	uint8_t *out = answer_room(req, &room);

	req->status = ringkv_Status_OK;
	req->value_len = 0;
	if (rv == RKV_ECORRUPT) {
		req->status = ringkv_Status_DATA_LOSS;
		req->error = "stored data failed its checksum (see the server log)";
		return;
	}
	if (rv != 0 && rv != RKV_ENOTFOUND) {
		req->status = ringkv_Status_INTERNAL;
		req->error = "read failed";
		return;
	}
	if (req->op != KV_GET) {
		req->existed = rv == 0;
		req->integer = rv == 0 ? (int64_t)len : 0;
		return;
	}
	req->integer = rv == 0 ? (int64_t)req->read.deadline : 0; /* TTL */
	if (rv == RKV_ENOTFOUND) {
		req->status = ringkv_Status_NOT_FOUND;
	} else if (len > room) {
		req->status = KV_STATUS_NEED_ROOM;
		req->need = (uint32_t)len;
	} else {
		memcpy(out, value, len);
		req->value_len = (uint32_t)len;
	}
}

static void read_done(struct shard_read *rd, int rv, const void *value, size_t len)
{
	struct kv_req *req = rd->arg;

	read_answer(req, rv, value, len);
	answer(req->exec, req);
}

static void execute_core(struct node_core *c, struct kv_req *req)
{
	size_t room;
	uint8_t *out = answer_room(req, &room);

	req->status = ringkv_Status_OK;
	if (req->op == KV_CORE_STATS) {
		struct kv_core_stats st = { 0 };
		unsigned i;

		for (i = 0; i < c->owned_count; i++) {
			struct shard_stats ss;
			size_t used, capacity;

			shard_get_stats(c->owned[i], &ss);
			shard_memory(c->owned[i], &used, &capacity);
			/* Stored keys, O(1), an estimate once tables exist:
			 * the fallback of DBSIZE when a shard's leader does not
			 * answer (KV_COUNT is exact: server/redis_count.c). */
			st.live_keys += shard_live_keys(c->owned[i]);
			st.writes += ss.writes + ss.applied;
			st.memtable_used += used;
			st.memtable_capacity += capacity;
			st.damaged_tables += shard_damaged_tables(c->owned[i]);
			st.writes_refused += shard_writes_refused(c->owned[i]);
		}
		if (c->cluster) {
			/* One log per core, whatever its number of shards. */
			struct core_log_stats ls;

			core_log_stats(cluster_core_log(c->cluster), &ls);
			st.wal_bytes = ls.bytes;
			st.batches = ls.batches;
			st.fsyncs = ls.fsyncs;
		}
		st.count_scans = redis_count_passes(c);
		st.shards = c->owned_count;
		st.connections = c->conn_count;
		st.requests = c->stats.requests;
		st.forwarded = c->stats.forwarded;
		if (room >= sizeof st) {
			memcpy(out, &st, sizeof st);
			req->value_len = sizeof st;
		}
		return;
	}
	if (req->op == KV_CORE_CURSOR) {
		const void *key;
		size_t len;

		if (redis_cursor_lookup(c, (uint64_t)req->integer, &key, &len) != 0 || len > room) {
			req->status = ringkv_Status_NOT_FOUND;
			return;
		}
		memcpy(out, key, len);
		req->value_len = (uint32_t)len;
	}
}

/* KV_COUNT's answer: the shard's visible keys in integer, the keys with a
 * deadline (INFO's expires=) after as a u64 when the request has room. */
static void count_answer(struct kv_req *req, int rv, uint64_t visible, uint64_t expires)
{
	size_t room;
	uint8_t *out = answer_room(req, &room);

	req->value_len = 0;
	if (rv == RKV_ECORRUPT) {
		req->status = ringkv_Status_DATA_LOSS;
		req->error = "stored data failed its checksum (see the server log)";
	} else if (rv == RKV_ESHUTDOWN) {
		req->status = ringkv_Status_UNAVAILABLE;
		req->error = reactor_stopping(req->exec->reactor) ? "the node is stopping"
								  : "the shard left this core";
	} else if (rv) {
		req->status = ringkv_Status_INTERNAL;
		req->error = "count failed";
	} else {
		req->integer = (int64_t)visible;
		if (room >= 8) {
			put_le64(out, expires);
			req->value_len = 8;
		}
	}
	answer(req->exec, req);
}

/* A read whose read index is confirmed (or that needs none): read the shard. */
static void execute_read(struct node_core *c, struct kv_req *req)
{
	struct shard *s = c->shards[req->shard];
	const void *value;
	size_t len;
	int rv;

	req->status = ringkv_Status_OK;
	if (req->op == KV_SCAN) {
		execute_scan(c, s, req);
		return;
	}
	if (req->op == KV_COUNT) {
		/* Exact, by this (the leader's) clock: server/redis_count.c. */
		req->exec = c;
		redis_count_shard(c, req->shard, req, count_answer);
		return;
	}
	req->exec = c;
	req->read.done = read_done;
	req->read.arg = req;
	rv = shard_read(s, req->data, req->key_len, &req->read, &value, &len);
	if (rv == SHARD_READ_PENDING)
		return;
	read_answer(req, rv, value, len);
	answer(c, req);
}

static void set_read_error(struct kv_req *req, int status)
{
	req->value_len = 0;
	if (status == RAFT_ENOTLEADER) {
		req->status = ringkv_Status_NOT_LEADER;
		req->error = "this node does not lead the key's shard";
	} else if (status == RKV_ESHUTDOWN) {
		req->status = ringkv_Status_UNAVAILABLE;
		req->error = "the node is stopping";
	} else {
		req->status = ringkv_Status_INTERNAL;
		req->error = "read failed";
	}
}

/* The read index of a linearizable read is confirmed and applied. */
static void read_index_done(struct replica_read *rd, int status)
{
	struct kv_req *req = rd->arg;

	if (status == 0) {
		execute_read(req->exec, req);
		return;
	}
	if (status == RAFT_ENOTLEADER) {
		/* Leadership lost before the read was confirmed: nothing was
		 * read; ask the new leader. */
		forward_route(req->exec, req, req->exec->replicas[req->shard]);
		return;
	}
	set_read_error(req, status);
	answer(req->exec, req);
}

static bool is_read(const struct kv_req *req)
{
	return req->op == KV_GET || req->op == KV_EXISTS || req->op == KV_STRLEN ||
	       req->op == KV_SCAN || req->op == KV_COUNT;
}

static void execute(struct node_core *c, struct kv_req *req)
{
	struct replica *rep;
	struct command cmd;
	int rv;

	if (req->shard == KV_NO_SHARD) {
		execute_core(c, req);
		answer(c, req);
		return;
	}
	rep = c->replicas[req->shard];
	if (!rep) {
		/* A replica hosted here by a move since start-up (kv_dispatch
		 * found it in the engine's table): this core's own entry,
		 * adopted into the tables built at start-up. */
		rep = cluster_core_replica(c->cluster, req->shard);
		if (!rep)
			panic("core %u got a request for shard %u it does not own",
			      c->reactor->id, req->shard);
		c->replicas[req->shard] = rep;
		c->shards[req->shard] = replica_shard(rep);
		c->owned[c->owned_count++] = c->shards[req->shard];
	}
	req->status = ringkv_Status_OK;
	req->exec = c;
	req->leader_hint = replica_leader(rep);
	if (is_read(req) && (req->flags & KV_STALE)) {
		/* Stale read: this replica's applied state, no ReadIndex
		 * (docs/cluster/forwarding.md says what it may return), unless
		 * that state went back behind what it served before (a
		 * repair's snapshot is below its applied index until the
		 * replica re-applied its log): never older than an earlier
		 * answer of the same replica. */
		if (!replica_stale_ok(rep)) {
			req->value_len = 0;
			req->status = ringkv_Status_UNAVAILABLE;
			req->error = "this replica is re-applying its log after a repair; "
				     "read from the leader or retry";
			answer(c, req);
			return;
		}
		execute_read(c, req);
		return;
	}
#ifdef RINGKV_TEST_STALE_READS
	/* DELIBERATELY BROKEN, test build only (tests/lincheck builds
	 * ringkvd-stale-reads with this defined; the product never is): every
	 * replica serves reads from its own state, as a follower read without
	 * ReadIndex would. The cluster linearizability run must catch it. */
	if (is_read(req)) {
		execute_read(c, req);
		return;
	}
#endif
	if (is_read(req)) {
		/* Linearizable: served by the leader once a majority confirmed
		 * its leadership after the read arrived (ReadIndex, batched),
		 * or at once by a group of one that leads. */
		if (replica_read_local_ok(rep)) {
			execute_read(c, req);
			return;
		}
		req->rread.done = read_index_done;
		req->rread.arg = req;
		rv = replica_read(rep, &req->rread);
		if (rv == RAFT_ENOTLEADER) {
			forward_route(c, req, rep);
			return;
		}
		if (rv != 0) {
			set_read_error(req, rv);
			answer(c, req);
		}
		return;
	}

	memset(&cmd, 0, sizeof cmd);
	cmd.key = req->data;
	cmd.key_len = req->key_len;
	cmd.value = req->data + req->key_len;
	cmd.value_len = req->value_len;
	switch (req->op) {
	case KV_PUT:
		cmd.op = COMMAND_PUT;
		break;
	case KV_PUT_NX:
		cmd.op = COMMAND_PUT_NX;
		break;
	case KV_PUT_XX:
		cmd.op = COMMAND_PUT_XX;
		break;
	case KV_APPEND:
		cmd.op = COMMAND_APPEND;
		cmd.limit = req->limit;
		break;
	case KV_INCRBY:
		cmd.op = COMMAND_INCRBY;
		cmd.delta = req->integer;
		cmd.value = NULL;
		cmd.value_len = 0;
		break;
	case KV_SETRANGE:
	case KV_SETBIT:
		cmd.op = req->op == KV_SETRANGE ? COMMAND_SETRANGE : COMMAND_SETBIT;
		cmd.offset = (uint64_t)req->integer;
		cmd.limit = req->limit;
		break;
	case KV_INCRBYFLOAT:
		cmd.op = COMMAND_INCRBYFLOAT;
		break;
	case KV_MSETNX:
	case KV_RENAME:
	case KV_RENAMENX:
	case KV_COPY:
	case KV_COPY_REPLACE:
		/* server/redis_multi.c; the ops keep COMMAND_MSETNX's order */
		cmd.op = (enum command_op)(COMMAND_MSETNX + (req->op - KV_MSETNX));
		break;
	case KV_FLUSH:
		cmd.op = COMMAND_FLUSH;
		cmd.key_len = 0;
		cmd.value = NULL;
		cmd.value_len = 0;
		break;
	case KV_PUT_AT:
	case KV_EXPIRE_AT:
	case KV_PERSIST:
	case KV_EXPIRE_DELETE:
		/* server/redis_expire.c; the ops keep COMMAND_PUT_AT's order */
		cmd.op = (enum command_op)(COMMAND_PUT_AT + (req->op - KV_PUT_AT));
		cmd.deadline = (uint64_t)req->integer;
		cmd.flags = (uint8_t)req->limit;
		if (req->op != KV_PUT_AT) {
			cmd.value = NULL;
			cmd.value_len = 0;
		}
		break;
	default:
		cmd.op = COMMAND_DELETE;
		cmd.value = NULL;
		cmd.value_len = 0;
		break;
	}
	/* The proposer's time: the apply step judges expiry by it, the same
	 * on every replica (shard/command.h). A blind SET needs none. */
	if (cmd.op != COMMAND_PUT || (req->flags & KV_WANT_PRIOR))
		cmd.now = value_deadline_now();
	req->waiter.done = write_done;
	req->waiter.want_prior = (req->flags & KV_WANT_PRIOR) != 0;
	if (replica_is_leader(rep) && shard_writes_refused(replica_shard(rep))) {
		/* Its level 0 is full behind a damaged table (shard_damage.c):
		 * refused before it enters the log, so it never applies. */
		req->status = ringkv_Status_DATA_LOSS;
		req->error = kv_error_damaged;
		answer(c, req);
		return;
	}
	rv = replica_propose(rep, &cmd, &req->waiter);
	if (rv == RAFT_ENOTLEADER) {
		forward_route(c, req, rep);
		return;
	}
	if (rv != 0) {
		set_write_error(req, rv);
		answer(c, req);
	}
}

void kv_route_again(struct node_core *c, struct kv_req *req)
{
	if (req->shard != KV_NO_SHARD &&
	    (c->replicas[req->shard] || cluster_core_replica(c->cluster, req->shard)))
		execute(c, req);
	else
		forward_route(c, req, NULL);
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

void kv_dispatch(struct node_core *c, struct kv_req *req)
{
	unsigned target = req->shard == KV_NO_SHARD ? req->target :
			  node_shard_core(c->node, req->shard);

	/* The start-up table knows no replica a move hosted here since: the
	 * engine's table (written by the hosting core) does. */
	if (target == NODE_NO_CORE && req->shard != KV_NO_SHARD) {
		int hosted = cluster_node_shard_core(c->node->cluster, req->shard);

		if (hosted >= 0)
			target = (unsigned)hosted;
	}
	req->origin = (uint16_t)c->reactor->id;
	req->target = (uint16_t)target;
	c->outstanding++;
	if (target == NODE_NO_CORE) {
		/* No replica of the key's shard on this node: to a node that
		 * holds one (server/forward.h). */
		forward_route(c, req, NULL);
		return;
	}
	if (target == c->reactor->id) {
		execute(c, req);
		return;
	}
	c->stats.forwarded++;
	req->msg.handle = on_request;
	reactor_send(c->reactor, target, &req->msg);
}

/* Native protocol: encode the answer on the connection. */
static void native_complete(struct node_core *c, struct kv_req *req)
{
	struct conn *conn = req->ctx;
	size_t len = 0;
	const uint8_t *value = req->op == KV_GET ? kv_answer(req, &len) : NULL;

	conn_reply_hint(conn, req->id, req->status, value, len, req->error,
			req->status == ringkv_Status_NOT_LEADER ? req->leader_hint : 0);
	if (req->op != KV_GET) {
		conn->writes_inflight--;
		metrics_observe(c->metrics, c->node->metric_ids->write_latency,
				c->reactor->now_us - req->start_us);
	} else {
		conn->reads_inflight--;
		metrics_observe(c->metrics, c->node->metric_ids->read_latency,
				c->reactor->now_us - req->start_us);
	}
	kv_req_free(c, req);
	conn_request_done(conn);
}

void kv_submit_native(struct node_core *c, struct conn *conn, const struct frame_request *fr)
{
	uint32_t shard = kv_shard_of(c, fr->key.data, fr->key.len);
	struct kv_req *req;

	if (cluster_info_submit(c, conn, fr))
		return; /* cluster map or status: server/cluster_info.c */
	if (backup_submit(c, conn, fr))
		return; /* online backups: server/backup.c */
	if (move_submit(c, conn, fr))
		return; /* shard moves: server/move.c */
	if (fr->op == FRAME_OP_GET && node_shard_core(c->node, shard) == c->reactor->id &&
	    ((fr->stale && replica_stale_ok(c->replicas[shard])) ||
	     replica_read_local_ok(c->replicas[shard]))) {
		const void *value;
		size_t len;

		int rv;

		/* A read of this core's shard answered from memory (memtables,
		 * blooms, cached blocks): no request. A block to read takes the
		 * request path below. A stale read may be served so by any
		 * replica, leader or not. */
		rv = shard_get(c->shards[shard], fr->key.data, fr->key.len, &value, &len);
		if (rv == 0 || rv == RKV_ENOTFOUND || rv == RKV_ECORRUPT)
			/* Answered within this loop pass: 0 on the loop's clock
			 * (the first bucket), without reading the clock again. */
			metrics_observe(c->metrics, c->node->metric_ids->read_latency, 0);
		if (rv == 0) {
			conn_reply(conn, fr->id, ringkv_Status_OK, value, len, NULL);
			return;
		}
		if (rv == RKV_ENOTFOUND) {
			conn_reply(conn, fr->id, ringkv_Status_NOT_FOUND, NULL, 0, NULL);
			return;
		}
		if (rv == RKV_ECORRUPT) {
			conn_reply(conn, fr->id, ringkv_Status_DATA_LOSS, NULL, 0,
				   "stored data failed its checksum (see the server log)");
			return;
		}
	}
	req = kv_req_new(c, fr->key.len, fr->op == FRAME_OP_PUT ? fr->value.len :
				       fr->op == FRAME_OP_GET ? KV_GET_ROOM : 0);
	if (!req) {
		conn_reply(conn, fr->id, ringkv_Status_RESOURCE_EXHAUSTED, NULL, 0,
			   "out of memory");
		return;
	}
	req->complete = native_complete;
	req->ctx = conn;
	req->owner = conn;
	req->id = fr->id;
	req->shard = shard;
	req->op = fr->op == FRAME_OP_GET ? KV_GET : fr->op == FRAME_OP_PUT ? KV_PUT : KV_DELETE;
	if (fr->no_forward)
		req->flags |= KV_NO_FORWARD;
	if (fr->stale && req->op == KV_GET)
		req->flags |= KV_STALE;
	req->key_len = fr->key.len;
	memcpy(req->data, fr->key.data, fr->key.len);
	if (fr->op == FRAME_OP_PUT) {
		req->value_len = fr->value.len;
		memcpy(req->data + fr->key.len, fr->value.data, fr->value.len);
	}
	conn->inflight++;
	if (req->op != KV_GET)
		conn->writes_inflight++;
	else
		conn->reads_inflight++;
	req->start_us = c->reactor->now_us;
	kv_dispatch(c, req);
}
