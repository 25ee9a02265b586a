/*
 * DBSIZE's exact count of one shard (KV_COUNT, run at the shard's leader
 * once its read index is applied; issue #21, "DBSIZE exact").
 *
 * Where the stored-key count (shard_live_keys) is inexact: a blind SET or
 * DEL does not look into the SSTables (that would cost a table lookup per
 * write), and each table counts its own values less its tombstones. So a
 * key overwritten while a table holds it counts once per place, a DEL of a
 * key only a table holds subtracts nothing until its tombstone is flushed,
 * a tombstone of a key nobody held subtracts one once flushed, and a
 * compaction that drops a value but keeps its tombstone (above the last
 * level) subtracts one. None of that happens while no table exists: apply
 * then sees every key's prior value, and the count is exact.
 *
 * So, per shard:
 * - no table (shard_live_keys_exact): the stored-key count less the keys
 *   the deadline index has past their deadline, O(1) plus the due keys;
 * - else the count of the last exact pass when nothing was applied since
 *   (same shard object, same applied index) and the deadline index is
 *   complete: that count less the due keys, O(1) plus the due keys;
 * - else a counting pass: a merged scan of the memtables and tables in
 *   steps of COUNT_STEP keys, one step per turn of the core's loop (a timer
 *   of 0 ms between steps, so requests interleave), counting the live
 *   values and those past their deadline; O(keys stored + tombstones) in
 *   time and the block reads of a full scan, memory O(1) (the cursor).
 *   Writes applied while it runs land before or after its cursor, so a
 *   pass during writes is exact only up to them: a key written behind
 *   the cursor is missed, one ahead of it counted, and a key renamed
 *   from behind the cursor to ahead of it counted twice (or, the other
 *   way, not at all). The next DBSIZE counts again.
 * A DBSIZE costs one pass per shard that took writes since the last; see
 * docs/REDIS-PARITY.md ("Exact DBSIZE"). A shard has at most one pass at a
 * time: DBSIZEs arriving while it runs share it, or the next one when a
 * write was applied since it began (struct count_job). Once the node
 * stops, no pass starts and a running one ends at its next step, its
 * callers told the node is stopping.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/reactor.h"
#include "server/kv.h"
#include "server/node.h"
#include "server/redis.h"
#include "server/redis_impl.h"
#include "shard/deadline_index.h"
#include "shard/shard.h"
#include "shard/value_deadline.h"

#define COUNT_STEP 4096 /* keys (tombstones included) examined per step */

struct redis_count_cache {
	const struct shard *s; /* the shard object counted (a new one after an install) */
	uint64_t applied;      /* its applied index then */
	uint64_t stored;       /* values stored, past their deadline or not */
	bool valid;
};

/* A DBSIZE's shard count waiting for a pass. */
struct count_waiter {
	struct kv_req *req;
	redis_count_fn *finish;
	struct count_waiter *next;
};

/*
 * A counting pass: at most one per shard at a time on its core, answering
 * every caller that waits for it. A caller that arrives while a pass runs
 * and nothing was applied since the pass began joins it (the pass counts
 * the state the caller would count); one that arrives after a write
 * waits for the next pass (this one may have passed that write's key),
 * which starts when this one ends and answers every such caller at once.
 */
struct count_job {
	struct node_core *c;
	uint32_t shard;
	struct shard *s;
	uint64_t applied;  /* the shard's applied index when the pass began */
	uint64_t live;     /* live values seen */
	uint64_t expired;  /* values past their deadline seen */
	uint8_t *cursor;   /* the last key examined */
	size_t cursor_len, cursor_cap;
	bool have_cursor;
	bool stepping;     /* a step is in the shard's hands */
	bool orphan;       /* the core stopped: the step's end frees the job */
	struct timer timer;
	struct count_waiter *waiters; /* answered by this pass */
	struct count_waiter *later;   /* came after a write: the next pass's */
};

struct redis_counts {
	struct redis_count_cache *cache; /* [node->shards] */
	struct count_job **running;      /* [node->shards]: the shard's pass, or NULL */
	uint64_t passes;                 /* counting passes finished */
};

static struct redis_counts *counts_of(struct node_core *c)
{
	struct redis_core *rc = c->redis;

	if (!rc->counts) {
		struct redis_counts *k = calloc(1, sizeof *k);
		size_t shards = c->node->shards ? c->node->shards : 1;

		if (!k)
			return NULL;
		k->cache = calloc(shards, sizeof *k->cache);
		k->running = calloc(shards, sizeof *k->running);
		if (!k->cache || !k->running) {
			free(k->cache);
			free(k->running);
			free(k);
			return NULL;
		}
		rc->counts = k;
	}
	return rc->counts;
}

/* The shard's visible keys from a count of its stored ones, when the
 * deadline index is complete (every key with a deadline is in it). */
static uint64_t visible_from(const struct shard *s, uint64_t stored, uint64_t now)
{
	uint64_t due = deadline_index_due_count(shard_deadline_index(s), now);

	return stored > due ? stored - due : 0;
}

static uint64_t expires_of(const struct shard *s, uint64_t now)
{
	uint64_t expires = 0;

	(void)shard_visible_keys(s, now, &expires);
	return expires;
}

static void waiters_free(struct count_waiter *w)
{
	while (w) {
		struct count_waiter *next = w->next;

		free(w);
		w = next;
	}
}

static void job_free(struct count_job *j)
{
	waiters_free(j->waiters);
	waiters_free(j->later);
	free(j->cursor);
	free(j);
}

static void step_timer(struct timer *t, void *arg);

/* The shard's pass for `waiters`, recorded as the one running; NULL when
 * out of memory (nothing recorded, `waiters` still the caller's). Its
 * first step notes the applied index it starts from (job_step). */
static struct count_job *job_new(struct node_core *c, uint32_t shard, struct shard *s,
				 struct count_waiter *waiters)
{
	struct count_job *j = calloc(1, sizeof *j);

	if (!j)
		return NULL;
	j->c = c;
	j->shard = shard;
	j->s = s;
	j->applied = s ? shard_applied_index(s) : 0;
	j->waiters = waiters;
	c->redis->counts->running[shard] = j;
	return j;
}

/* Ends the pass: answers its callers, then starts the next pass for those
 * that came after a write, on a later turn of the loop (this may run
 * inside a step's scan). */
static void job_finish(struct count_job *j, int rv, uint64_t visible, uint64_t expires)
{
	struct node_core *c = j->c;
	struct count_waiter *w = j->waiters;

	reactor_timer_cancel(c->reactor, &j->timer);
	c->redis->counts->running[j->shard] = NULL;
	j->waiters = NULL;
	if (j->later) {
		struct count_job *next = job_new(c, j->shard, c->shards[j->shard], j->later);

		if (next) {
			j->later = NULL;
			reactor_timer_arm(c->reactor, &next->timer, 0, step_timer, next);
		} else {
			for (struct count_waiter *l = j->later; l; l = l->next)
				l->finish(l->req, -ENOMEM, 0, 0);
		}
	}
	job_free(j);
	while (w) {
		struct count_waiter *next = w->next;

		w->finish(w->req, rv, visible, expires);
		free(w);
		w = next;
	}
}

static bool count_live(void *arg, const void *key, size_t key_len, const void *value,
		       size_t value_len)
{
	struct count_job *j = arg;

	(void)key;
	(void)key_len;
	(void)value;
	(void)value_len;
	j->live++;
	return true;
}

static bool count_deadline(void *arg, const void *key, size_t key_len, uint64_t deadline,
			   bool expired)
{
	struct count_job *j = arg;

	(void)key;
	(void)key_len;
	(void)deadline;
	j->expired += expired;
	return true;
}

static void job_step(struct count_job *j);

static void step_timer(struct timer *t, void *arg)
{
	(void)t;
	job_step(arg);
}

static void step_done(void *arg, int rv, bool exhausted, const void *last, size_t last_len)
{
	struct count_job *j = arg;
	struct redis_counts *k;
	uint64_t now, stored;

	j->stepping = false;
	if (j->orphan) {
		job_free(j);
		return;
	}
	if (rv) {
		job_finish(j, rv, 0, 0);
		return;
	}
	if (j->c->shards[j->shard] != j->s) {
		/* Swapped (a snapshot install) or moved during the step: the
		 * next step starts over on the new one, or ends the pass. */
		reactor_timer_arm(j->c->reactor, &j->timer, 0, step_timer, j);
		return;
	}
	if (!exhausted && last) {
		if (last_len > j->cursor_cap) {
			uint8_t *p = realloc(j->cursor, last_len);

			if (!p) {
				job_finish(j, -ENOMEM, 0, 0);
				return;
			}
			j->cursor = p;
			j->cursor_cap = last_len;
		}
		if (last_len)
			memcpy(j->cursor, last, last_len);
		j->cursor_len = last_len;
		j->have_cursor = true;
		/* The next step on a later turn of the loop, never from inside
		 * this call (done may run inside shard_scan_all). */
		reactor_timer_arm(j->c->reactor, &j->timer, 0, step_timer, j);
		return;
	}
	k = j->c->redis->counts;
	stored = j->live + j->expired;
	k->passes++;
	if (j->shard < j->c->node->shards) {
		struct redis_count_cache *e = &k->cache[j->shard];

		e->s = j->s;
		e->applied = j->applied;
		e->stored = stored;
		e->valid = true;
	}
	now = value_deadline_now();
	/* The steps read the clock each; with a complete index the due keys
	 * are taken at one moment, now. */
	job_finish(j, 0, shard_deadlines_complete(j->s) ? visible_from(j->s, stored, now) : j->live,
		   expires_of(j->s, now));
}

static void job_step(struct count_job *j)
{
	struct shard *s = j->c->shards[j->shard];
	int rv;

	if (reactor_stopping(j->c->reactor)) {
		/* The node stops: a pass may take seconds, which the stop
		 * would wait for; its callers are told instead. */
		job_finish(j, RKV_ESHUTDOWN, 0, 0);
		return;
	}
	if (!s) {
		/* The shard left this core between steps (a move). */
		job_finish(j, RKV_ESHUTDOWN, 0, 0);
		return;
	}
	if (s != j->s) {
		/* A snapshot installed a new shard object: count it afresh. */
		j->s = s;
		j->live = j->expired = 0;
		j->have_cursor = false;
		j->cursor_len = 0;
	}
	if (!j->have_cursor)
		j->applied = shard_applied_index(s); /* what the pass starts from */
	j->stepping = true;
	rv = shard_scan_all(s, j->cursor, j->have_cursor ? j->cursor_len : 0, j->have_cursor,
			    COUNT_STEP, count_live, count_deadline, step_done, j);
	if (rv) {
		j->stepping = false;
		job_finish(j, rv, 0, 0);
	}
}

/* Answers at once, from the shard's exact stored-key count or the cache
 * of its last pass, when either is exact now; else false. */
static bool answer_now(struct node_core *c, struct shard *s, uint32_t shard,
		       struct kv_req *req, redis_count_fn *finish)
{
	struct redis_counts *k = c->redis->counts;
	uint64_t now = value_deadline_now();

	if (!s) {
		finish(req, RKV_ESHUTDOWN, 0, 0);
		return true;
	}
	if (shard_live_keys_exact(s)) {
		uint64_t expires;
		uint64_t visible = shard_visible_keys(s, now, &expires);

		finish(req, 0, visible, expires);
		return true;
	}
	if (k && k->cache[shard].valid && k->cache[shard].s == s &&
	    k->cache[shard].applied == shard_applied_index(s) && shard_deadlines_complete(s)) {
		finish(req, 0, visible_from(s, k->cache[shard].stored, now), expires_of(s, now));
		return true;
	}
	if (reactor_stopping(c->reactor)) {
		finish(req, RKV_ESHUTDOWN, 0, 0); /* no pass starts once the node stops */
		return true;
	}
	return false;
}

/* Makes `w` wait for the pass of shard `s` (not NULL): the running one
 * when nothing was applied since it began, else the next; starts one when
 * none runs. Takes `w`. */
static void count_enqueue(struct node_core *c, struct shard *s, uint32_t shard,
			  struct count_waiter *w)
{
	struct redis_counts *k = c->redis->counts;
	struct count_job *j = k->running[shard];

	if (j) {
		if (j->s == s && j->applied == shard_applied_index(s)) {
			w->next = j->waiters;
			j->waiters = w;
		} else {
			w->next = j->later;
			j->later = w;
		}
		return;
	}
	j = job_new(c, shard, s, w);
	if (!j) {
		w->finish(w->req, -ENOMEM, 0, 0);
		free(w);
		return;
	}
	job_step(j);
}

void redis_count_shard(struct node_core *c, uint32_t shard, struct kv_req *req,
		       redis_count_fn *finish)
{
	struct shard *s = shard < c->node->shards ? c->shards[shard] : NULL;
	struct count_waiter *w;

	if (answer_now(c, s, shard, req, finish))
		return;
	w = counts_of(c) ? calloc(1, sizeof *w) : NULL;
	if (!w) {
		finish(req, -ENOMEM, 0, 0);
		return;
	}
	w->req = req;
	w->finish = finish;
	count_enqueue(c, s, shard, w);
}

uint64_t redis_count_passes(const struct node_core *c)
{
	return c->redis && c->redis->counts ? c->redis->counts->passes : 0;
}

void redis_count_stop(struct node_core *c)
{
	struct redis_counts *k = c->redis ? c->redis->counts : NULL;
	uint32_t shard;

	if (!k)
		return;
	/* The core is destroyed: its connections are gone, nobody waits for
	 * these answers (a pass ends at its next step once the node stops, so
	 * one is left only when the stop's grace period ran out). A step
	 * still in the shard's hands frees its job when it ends. */
	for (shard = 0; shard < (c->node->shards ? c->node->shards : 1); shard++) {
		struct count_job *j = k->running[shard];

		if (!j)
			continue;
		reactor_timer_cancel(c->reactor, &j->timer);
		k->running[shard] = NULL;
		if (j->stepping)
			j->orphan = true;
		else
			job_free(j);
	}
	free(k->running);
	free(k->cache);
	free(k);
	c->redis->counts = NULL;
}
