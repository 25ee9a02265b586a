/*
 * Active expiry (issue #21): the leader of a shard deletes keys whose
 * deadline passed, in the background, so that a key nobody reads again
 * does not stay on disk; and every replica rebuilds its shards' deadline
 * indexes after a start or a snapshot install.
 *
 * Every 100 ms each core takes, from the deadline index of each shard it
 * hosts and leads (shard/deadline_index.h), the keys whose deadline this
 * node's clock has passed, at most REDIS_EXPIRY_DELETES per pass over all
 * its shards, and proposes an EXPIRE_DELETE of key and deadline for each.
 * No keyspace is scanned: a shard without due keys costs a look at the top
 * of its heap, and a pass looks at no more than REDIS_EXPIRY_SCAN hosted
 * shards, the next pass going on from where it stopped, so that 10,000
 * idle replicas on a core cost a bounded look ten times a second (issue
 * #18), not a walk of them all. The next pass starts once those proposals
 * are answered; while a pass fills its batch, the next one follows after
 * 5 ms instead of 100 ms (as Redis repeats while over a quarter of its
 * sample is expired), so a million keys due at once go in bounded slices
 * rather than one long stall.
 *
 * An EXPIRE_DELETE is an ordinary log entry: every replica deletes the key
 * at the same place in its history, and only if its stored deadline is
 * still the one seen here (a key written again meanwhile is kept). Its
 * tombstone is what compaction later drops with the old value. The
 * proposals are never forwarded (KV_NO_FORWARD): a node that lost the
 * leadership meanwhile answers NOT_LEADER, and the new leader's own passes
 * take over. A key stays in the index until its delete applies; a pass
 * starts only when the last one's proposals are answered, so none is
 * proposed twice.
 *
 * Rebuilds: a shard opened with tables does not know which of their values
 * carry deadlines until its index is rebuilt. From a minute after start,
 * each pass also runs one rebuild step (REDIS_EXPIRY_REBUILD keys) of the
 * next hosted shard whose index is incomplete, leader or not, and the
 * passes follow each other after 5 ms while one is: a million keys take
 * some seconds. Until then,
 * keys the index does not hold yet are neither expired actively nor left
 * out of DBSIZE (reads hide them all the same).
 *
 * Proposals are made from the timer, never from inside the shard's calls,
 * and a rebuild step counts as one outstanding request so that shutdown
 * waits for its scan.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/replica.h"
#include "core/log.h"
#include "core/reactor.h"
#include "ringkv.pb.h"
#include "server/conn.h"
#include "server/kv.h"
#include "server/node.h"
#include "server/redis_impl.h"
#include "shard/deadline_index.h"
#include "shard/value_deadline.h"

#define REDIS_EXPIRY_PASS_US (100u * 1000u)
/* After a pass that filled its batch: 5 ms, so that a mass expiry takes at
 * most some 13,000 entries a second per core from the log it shares with
 * clients (measured: 1 ms gave 8-10x the p99 of other requests on a loaded
 * 2-CPU machine, docs/PERFORMANCE.md "Session 9: mass expiry"). */
#define REDIS_EXPIRY_BUSY_US 5000u
#define REDIS_EXPIRY_DELETES 64    /* EXPIRE_DELETEs one pass proposes */
#define REDIS_EXPIRY_REBUILD 4096  /* keys one rebuild step examines */
/* Hosted shards one pass (and one look for a rebuild) examines: with 100
 * ms passes, every shard of a core holding 10,000 at most once a second. */
#define REDIS_EXPIRY_SCAN 1024u
/* Rebuilds start a minute after the core: start-up and recovery are not
 * slowed by a read of every table (which would also find a damaged block
 * before any client's read does, something the repair tests rely on). */
#define REDIS_EXPIRY_REBUILD_DELAY_US (60ull * 1000 * 1000)

struct redis_expiry {
	struct node_core *c;
	struct timer timer;
	uint32_t shard;            /* where the next pass starts looking */
	uint32_t rebuild_shard;    /* where the next rebuild step starts looking */
	uint32_t collecting;       /* the shard `found` collects for */
	bool rebuilding;           /* a rebuild step runs */
	uint64_t started_us;       /* the loop's clock at start */
	bool busy;                 /* the last pass filled its batch, or a
				    * rebuild is under way */
	unsigned inflight;         /* EXPIRE_DELETEs not answered yet */
	unsigned nbatch;           /* found, not proposed yet */
	struct kv_req *batch[REDIS_EXPIRY_DELETES];
};

static void pass(struct timer *t, void *arg);

/* Keys this node's passes deleted (their EXPIRE_DELETE applied), all cores:
 * INFO's expired_keys. One node per process. */
static _Atomic uint64_t expired_keys;
/* DEBUG SET-ACTIVE-EXPIRE 0: this node's passes delete nothing (tests). */
static _Atomic bool active_off;

uint64_t redis_expired_keys(void)
{
	return atomic_load_explicit(&expired_keys, memory_order_relaxed);
}

static void arm(struct redis_expiry *x)
{
	reactor_timer_arm(x->c->reactor, &x->timer,
			  x->busy ? REDIS_EXPIRY_BUSY_US : REDIS_EXPIRY_PASS_US, pass, x);
}

static void deleted(struct node_core *c, struct kv_req *req)
{
	struct redis_expiry *x = req->ctx;

	x->inflight--;
	if (req->status == ringkv_Status_OK && req->applied)
		atomic_fetch_add_explicit(&expired_keys, 1, memory_order_relaxed);
	kv_req_free(c, req);
	if (x->inflight == 0 && !x->rebuilding)
		arm(x);
}

static void found(void *arg, const void *key, size_t key_len, uint64_t deadline)
{
	struct redis_expiry *x = arg;
	struct kv_req *req;

	if (x->nbatch == REDIS_EXPIRY_DELETES)
		return;
	req = kv_req_new(x->c, (uint32_t)key_len, 0);
	if (!req)
		return;
	memcpy(req->data, key, key_len);
	req->key_len = (uint32_t)key_len;
	req->value_len = 0;
	req->op = KV_EXPIRE_DELETE;
	req->shard = x->collecting;
	req->integer = (int64_t)deadline;
	req->flags = KV_NO_FORWARD;
	req->complete = deleted;
	req->ctx = x;
	x->batch[x->nbatch++] = req;
}

static void rebuilt(void *arg)
{
	struct redis_expiry *x = arg;

	x->rebuilding = false;
	x->c->outstanding--;
	if (x->inflight == 0)
		arm(x);
}

/* One rebuild step of the next hosted shard whose index is incomplete:
 * true when one was started. */
static bool rebuild_step(struct redis_expiry *x)
{
	struct node_core *c = x->c;
	uint32_t shards = c->node->shards;

	if (c->reactor->now_us < x->started_us + REDIS_EXPIRY_REBUILD_DELAY_US)
		return false;
	for (uint32_t n = 0, looked = 0; n < shards; n++) {
		uint32_t i = (x->rebuild_shard + n) % shards;
		int rv;

		if (!c->shards[i])
			continue;
		if (++looked > REDIS_EXPIRY_SCAN) {
			x->rebuild_shard = i; /* the next pass goes on here */
			return false;
		}
		if (shard_deadlines_complete(c->shards[i]))
			continue;
		x->rebuild_shard = i;
		x->rebuilding = true;
		c->outstanding++;
		rv = shard_deadlines_rebuild_step(c->shards[i], REDIS_EXPIRY_REBUILD, rebuilt, x);
		if (rv == 0)
			return true;
		x->rebuilding = false;
		c->outstanding--;
		if (rv < 0)
			log_warn("shard %u: deadline index rebuild step: %d", i, rv);
		x->rebuild_shard = i + 1;
	}
	return false;
}

static void pass(struct timer *t, void *arg)
{
	struct redis_expiry *x = arg;
	struct node_core *c = x->c;
	uint32_t shards = c->node->shards;
	uint32_t n = 0, looked = 0;
	uint64_t now;
	bool rebuilding;

	(void)t;
	if (!c->accepting || x->rebuilding || x->inflight)
		return; /* stopping, or the answers will arm it */
	now = value_deadline_now();
	for (; n < shards && looked < REDIS_EXPIRY_SCAN && x->nbatch < REDIS_EXPIRY_DELETES &&
	       !atomic_load_explicit(&active_off, memory_order_relaxed); n++) {
		uint32_t i = (x->shard + n) % shards;

		if (!c->shards[i])
			continue;
		looked++;
		if (!c->replicas[i] || !replica_is_leader(c->replicas[i]))
			continue;
		x->collecting = i;
		shard_deadlines_due(c->shards[i], now, REDIS_EXPIRY_DELETES - x->nbatch, found, x);
	}
	/* The next pass starts after the last shard looked at (one further
	 * at least): none starves another. */
	x->shard = shards ? (x->shard + (n ? n : 1)) % shards : 0;
	x->busy = x->nbatch == REDIS_EXPIRY_DELETES;
	rebuilding = rebuild_step(x);
	if (rebuilding)
		x->busy = true;
	if (x->nbatch) {
		unsigned count = x->nbatch;

		x->nbatch = 0;
		x->inflight += count;
		for (unsigned k = 0; k < count; k++)
			kv_dispatch(c, x->batch[k]); /* may answer at once */
		return; /* `deleted` or `rebuilt` arms the next pass */
	}
	if (!x->rebuilding)
		arm(x);
}

/*
 * DEBUG SET-ACTIVE-EXPIRE 0|1 (Redis's test suite switches active expiry
 * off to see an expired key still stored): this node's passes stop or
 * resume deleting; reads hide expired keys all the same. Any other DEBUG
 * subcommand is refused as Redis refuses an unknown one.
 */
/*
 * DEBUG PROTOCOL <type>: one reply of each RESP type, as Redis 7.0 answers
 * it (clients and Redis's suite test their parsers with it). A RESP2
 * connection gets each in its RESP2 form; an attribute is left out, a push
 * refused.
 */
static void debug_protocol(struct conn *conn, struct reply *r, const struct resp_arg *type)
{
	static const char attrib_reply[] = "Some real reply following the attribute";
	bool resp3 = conn->redis->resp3;
	char num[32];

	if (redis_arg_is(type, "string")) {
		reply_str(conn, r, "Hello World");
	} else if (redis_arg_is(type, "integer")) {
		reply_int(conn, r, 12345);
	} else if (redis_arg_is(type, "double")) {
		snprintf(num, sizeof num, "%.17g", 3.141);
		reply_double(conn, r, num);
	} else if (redis_arg_is(type, "bignum")) {
		reply_bignum(conn, r, "1234567999999999999999999999999999999");
	} else if (redis_arg_is(type, "null")) {
		reply_null(conn, r);
	} else if (redis_arg_is(type, "array") || redis_arg_is(type, "set")) {
		if (redis_arg_is(type, "set"))
			reply_set(conn, r, 3);
		else
			reply_array(conn, r, 3);
		for (int j = 0; j < 3; j++)
			reply_int(conn, r, j);
	} else if (redis_arg_is(type, "map")) {
		reply_map(conn, r, 3);
		for (int j = 0; j < 3; j++) {
			reply_int(conn, r, j);
			reply_bool(conn, r, j == 1);
		}
	} else if (redis_arg_is(type, "attrib")) {
		if (resp3) {
			reply_aggregate3(conn, r, RESP3_ATTRIBUTE, 1);
			reply_str(conn, r, "key-popularity");
			reply_array(conn, r, 2);
			reply_str(conn, r, "key:123");
			reply_int(conn, r, 90);
		}
		reply_str(conn, r, attrib_reply);
	} else if (redis_arg_is(type, "push")) {
		if (!resp3) {
			reply_error(conn, r, "ERR RESP2 is not supported by this command");
			return;
		}
		reply_aggregate3(conn, r, RESP3_PUSH, 2);
		reply_str(conn, r, "server-cpu-usage");
		reply_int(conn, r, 42);
		reply_str(conn, r, "Some real reply following the push reply");
	} else if (redis_arg_is(type, "true") || redis_arg_is(type, "false")) {
		reply_bool(conn, r, redis_arg_is(type, "true"));
	} else if (redis_arg_is(type, "verbatim")) {
		reply_verbatim(conn, r, "This is a verbatim\nstring", 25);
	} else {
		reply_error(conn, r, "ERR Wrong protocol type name. Please use one of the following: "
			    "string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|"
			    "true|false");
	}
}

void redis_cmd_debug(struct conn *conn, const struct resp_command *cmd)
{
	struct reply *r = &conn->redis->scratch;

	reply_reset(r);
	if (cmd->argc == 3 && redis_arg_is(&cmd->argv[1], "SET-ACTIVE-EXPIRE") &&
	    cmd->argv[2].len == 1 && (cmd->argv[2].data[0] == '0' || cmd->argv[2].data[0] == '1')) {
		atomic_store_explicit(&active_off, cmd->argv[2].data[0] == '0',
				      memory_order_relaxed);
		reply_simple(conn, r, "OK");
	} else if (cmd->argc == 3 && redis_arg_is(&cmd->argv[1], "PROTOCOL")) {
		debug_protocol(conn, r, &cmd->argv[2]);
	} else {
		reply_errorf(conn, r, "ERR unknown subcommand or wrong number of arguments for "
			     "'%.*s'. Try DEBUG HELP.",
			     (int)(cmd->argv[1].len < 128 ? cmd->argv[1].len : 128),
			     (const char *)cmd->argv[1].data);
	}
	redis_reply_now(conn);
}

int redis_expiry_start(struct node_core *c)
{
	struct redis_expiry *x = calloc(1, sizeof *x);

	if (!x)
		return -1;
	x->c = c;
	x->started_us = c->reactor->now_us;
	c->redis->expiry = x;
	arm(x);
	return 0;
}

void redis_expiry_stop(struct node_core *c)
{
	struct redis_expiry *x = c->redis ? c->redis->expiry : NULL;

	if (!x)
		return;
	reactor_timer_cancel(c->reactor, &x->timer);
	for (unsigned k = 0; k < x->nbatch; k++)
		kv_req_free(c, x->batch[k]);
	free(x);
	c->redis->expiry = NULL;
}
