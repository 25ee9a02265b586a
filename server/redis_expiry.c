/*
 * Active expiry (issue #21): the leader of a shard deletes keys whose
 * deadline passed, in the background, so that a key nobody reads again
 * does not stay on disk.
 *
 * Every 100 ms each core takes the next shard it hosts and leads and that
 * may hold deadlines (one was written or met since start, or since a whole
 * sweep met none), or, once a second from a minute after start, one whose
 * tables may hold deadlines from before the start (swept once, slowly, so
 * that start-up is not slowed by a read of every table), and scans
 * it from where the last pass stopped, at most REDIS_EXPIRY_EXAMINE keys
 * (shard_scan_expired: expired values only, by this node's clock), and
 * proposes an EXPIRE_DELETE of key and deadline for each expired one, at
 * most REDIS_EXPIRY_DELETES per pass. The next pass starts once those
 * proposals are answered; while a pass keeps finding as many keys as it may
 * delete, the next one follows after 1 ms instead of 100 ms (as Redis does
 * while over a quarter of its sample is expired), so a million keys due at
 * once go in some minutes of bounded slices rather than one long stall.
 *
 * An EXPIRE_DELETE is an ordinary log entry: every replica deletes the key
 * at the same place in its history, and only if its stored deadline is
 * still the one seen here (a key written again meanwhile is kept). Its
 * tombstone is what compaction later drops with the old value. The
 * proposals are never forwarded (KV_NO_FORWARD): a node that lost the
 * leadership meanwhile answers NOT_LEADER, and the new leader's own passes
 * take over.
 *
 * Proposals are made from the timer, never from inside the scan's
 * callbacks (which run inside the shard), and a pass counts as one
 * outstanding request so that shutdown waits for its scan.
 */
#include <stdlib.h>
#include <string.h>

#include "cluster/replica.h"
#include "core/log.h"
#include "core/reactor.h"
#include "server/kv.h"
#include "server/node.h"
#include "server/redis_impl.h"

#define REDIS_EXPIRY_PASS_US (100u * 1000u)
#define REDIS_EXPIRY_BUSY_US 1000u
#define REDIS_EXPIRY_EXAMINE 1024  /* keys one pass looks at */
#define REDIS_EXPIRY_DELETES 64    /* EXPIRE_DELETEs one pass proposes */
/* Shards whose tables may hold deadlines from before the node started
 * (shard_deadlines_unknown) are swept once, slowly, from a minute after
 * start: start-up and recovery are not slowed by a read of every table. */
#define REDIS_EXPIRY_UNKNOWN_DELAY_US (60ull * 1000 * 1000)
#define REDIS_EXPIRY_UNKNOWN_EVERY_US (1000ull * 1000)

struct redis_expiry {
	struct node_core *c;
	struct timer timer;
	uint32_t shard;            /* the shard being swept */
	uint8_t *cursor;           /* its last key examined (malloc) ... */
	size_t cursor_len, cursor_cap;
	bool have_cursor;          /* ... when there is one */
	uint64_t sweep_writes;     /* shard_deadline_writes when the sweep began */
	bool sweep_saw_deadline;   /* the sweep met a value with a deadline */
	uint64_t started_us;       /* the loop's clock at start */
	uint64_t next_unknown_us;  /* the next pass over an unknown shard, not before */
	bool scanning;             /* a scan is running */
	bool busy;                 /* the last pass filled its batch */
	unsigned inflight;         /* EXPIRE_DELETEs not answered yet */
	unsigned nbatch;           /* found by the scan, not proposed yet */
	struct kv_req *batch[REDIS_EXPIRY_DELETES];
};

static void pass(struct timer *t, void *arg);

static void arm(struct redis_expiry *x)
{
	reactor_timer_arm(x->c->reactor, &x->timer,
			  x->busy ? REDIS_EXPIRY_BUSY_US : REDIS_EXPIRY_PASS_US, pass, x);
}

static void deleted(struct node_core *c, struct kv_req *req)
{
	struct redis_expiry *x = req->ctx;

	x->inflight--;
	kv_req_free(c, req);
	if (x->inflight == 0 && !x->scanning)
		arm(x);
}

static bool found(void *arg, const void *key, size_t key_len, uint64_t deadline,
		  bool expired)
{
	struct redis_expiry *x = arg;
	struct kv_req *req;

	x->sweep_saw_deadline = true;
	if (!expired)
		return true;
	if (x->nbatch == REDIS_EXPIRY_DELETES)
		return false; /* the rest at the next pass */
	req = kv_req_new(x->c, (uint32_t)key_len, 0);
	if (!req)
		return false;
	memcpy(req->data, key, key_len);
	req->key_len = (uint32_t)key_len;
	req->value_len = 0;
	req->op = KV_EXPIRE_DELETE;
	req->shard = x->shard;
	req->integer = (int64_t)deadline;
	req->flags = KV_NO_FORWARD;
	req->complete = deleted;
	req->ctx = x;
	x->batch[x->nbatch++] = req;
	return true;
}

static void scanned(void *arg, int rv, bool exhausted, const void *last, size_t last_len)
{
	struct redis_expiry *x = arg;

	x->scanning = false;
	x->c->outstanding--;
	if (rv != 0 || exhausted || !last) {
		if (rv != 0)
			log_warn("shard %u: expiry scan failed (%d); it starts over", x->shard, rv);
		else if (!x->sweep_saw_deadline && x->c->shards[x->shard])
			/* A whole sweep without a deadline: skip the shard
			 * until one is written. */
			shard_deadlines_none(x->c->shards[x->shard], x->sweep_writes);
		x->shard++; /* the next shard from its first key */
		x->have_cursor = false;
	} else {
		if (x->cursor_cap < last_len) {
			uint8_t *p = realloc(x->cursor, last_len);

			if (!p) {
				x->have_cursor = false;
				goto out;
			}
			x->cursor = p;
			x->cursor_cap = last_len;
		}
		memcpy(x->cursor, last, last_len);
		x->cursor_len = last_len;
		x->have_cursor = true;
	}
out:
	x->busy = x->nbatch == REDIS_EXPIRY_DELETES;
	/* Proposed from the timer, outside the shard's scan. */
	reactor_timer_arm(x->c->reactor, &x->timer, x->nbatch ? 0 : (x->busy ? REDIS_EXPIRY_BUSY_US :
					  REDIS_EXPIRY_PASS_US), pass, x);
}

/* 0: not to sweep; 1: may hold deadlines; 2: unknown (the slow kind). */
static int want(const struct node_core *c, uint32_t i)
{
	if (!c->shards[i] || !c->replicas[i] || !replica_is_leader(c->replicas[i]))
		return 0;
	if (shard_may_hold_deadlines(c->shards[i]))
		return 1;
	return shard_deadlines_unknown(c->shards[i]) ? 2 : 0;
}

static void pass(struct timer *t, void *arg)
{
	struct redis_expiry *x = arg;
	struct node_core *c = x->c;
	uint32_t shards = c->node->shards, i = 0, n;
	uint64_t now = c->reactor->now_us;
	bool slow_ok = now >= x->started_us + REDIS_EXPIRY_UNKNOWN_DELAY_US &&
		       now >= x->next_unknown_us;
	int w = 0, rv;

	(void)t;
	if (x->nbatch) {
		unsigned count = x->nbatch;

		x->nbatch = 0;
		x->inflight += count;
		for (unsigned k = 0; k < count; k++)
			kv_dispatch(c, x->batch[k]); /* may answer at once */
		return; /* `deleted` arms the next pass */
	}
	if (!c->accepting || x->scanning || x->inflight)
		return; /* stopping, or the answers will arm it */
	if (x->have_cursor && x->shard < shards) {
		/* Go on with the sweep under way. */
		i = x->shard;
		w = want(c, i);
		if (w == 2 && !slow_ok) {
			arm(x);
			return;
		}
	}
	if (!w) {
		x->have_cursor = false;
		for (n = 0; n < shards && !w; n++) {
			i = (x->shard + n) % shards;
			if (want(c, i) == 1)
				w = 1;
		}
		for (n = 0; n < shards && !w && slow_ok; n++) {
			i = (x->shard + n) % shards;
			if (want(c, i) == 2)
				w = 2;
		}
		if (!w) {
			x->busy = false;
			arm(x);
			return;
		}
		x->shard = i;
	}
	if (w == 2)
		x->next_unknown_us = now + REDIS_EXPIRY_UNKNOWN_EVERY_US;
	if (!x->have_cursor) {
		/* A sweep begins. */
		x->sweep_writes = shard_deadline_writes(c->shards[i]);
		x->sweep_saw_deadline = false;
	}
	x->scanning = true;
	c->outstanding++;
	rv = shard_scan_expired(c->shards[i], x->have_cursor ? x->cursor : (const uint8_t *)"",
				x->have_cursor ? x->cursor_len : 0, x->have_cursor,
				REDIS_EXPIRY_EXAMINE, found, scanned, x);
	if (rv) {
		x->scanning = false;
		c->outstanding--;
		x->busy = false;
		arm(x);
	}
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
	free(x->cursor);
	free(x);
	c->redis->expiry = NULL;
}
