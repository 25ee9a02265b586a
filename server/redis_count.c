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
 * docs/REDIS-PARITY.md ("Exact DBSIZE").
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

struct count_job {
	struct node_core *c;
	struct kv_req *req;
	redis_count_fn *finish;
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
	struct count_job *prev, *next;
};

struct redis_counts {
	struct redis_count_cache *cache; /* [node->shards] */
	struct count_job *jobs;          /* passes running on this core */
	uint64_t passes;                 /* counting passes finished */
};

static struct redis_counts *counts_of(struct node_core *c)
{
	struct redis_core *rc = c->redis;

	if (!rc->counts) {
		struct redis_counts *k = calloc(1, sizeof *k);

		if (!k)
			return NULL;
		k->cache = calloc(c->node->shards ? c->node->shards : 1, sizeof *k->cache);
		if (!k->cache) {
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

static void job_unlink(struct redis_counts *k, struct count_job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		k->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	j->prev = j->next = NULL;
}

static void job_free(struct count_job *j)
{
	free(j->cursor);
	free(j);
}

static void job_finish(struct count_job *j, int rv, uint64_t visible, uint64_t expires)
{
	struct redis_counts *k = j->c->redis->counts;
	struct kv_req *req = j->req;
	redis_count_fn *finish = j->finish;

	reactor_timer_cancel(j->c->reactor, &j->timer);
	job_unlink(k, j);
	job_free(j);
	finish(req, rv, visible, expires);
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

	if (!s) {
		/* The shard left this core between steps (a move). */
		job_finish(j, RKV_ESHUTDOWN, 0, 0);
		return;
	}
	if (s != j->s) {
		/* A snapshot installed a new shard object: count it afresh. */
		j->s = s;
		j->applied = shard_applied_index(s);
		j->live = j->expired = 0;
		j->have_cursor = false;
		j->cursor_len = 0;
	}
	j->stepping = true;
	rv = shard_scan_all(s, j->cursor, j->have_cursor ? j->cursor_len : 0, j->have_cursor,
			    COUNT_STEP, count_live, count_deadline, step_done, j);
	if (rv) {
		j->stepping = false;
		job_finish(j, rv, 0, 0);
	}
}

void redis_count_shard(struct node_core *c, uint32_t shard, struct kv_req *req,
		       redis_count_fn *finish)
{
	struct shard *s = shard < c->node->shards ? c->shards[shard] : NULL;
	struct redis_counts *k;
	struct count_job *j;
	uint64_t now = value_deadline_now();

	if (!s) {
		finish(req, RKV_ESHUTDOWN, 0, 0);
		return;
	}
	if (shard_live_keys_exact(s)) {
		uint64_t expires;
		uint64_t visible = shard_visible_keys(s, now, &expires);

		finish(req, 0, visible, expires);
		return;
	}
	k = counts_of(c);
	if (!k) {
		finish(req, -ENOMEM, 0, 0);
		return;
	}
	if (k->cache[shard].valid && k->cache[shard].s == s &&
	    k->cache[shard].applied == shard_applied_index(s) && shard_deadlines_complete(s)) {
		finish(req, 0, visible_from(s, k->cache[shard].stored, now), expires_of(s, now));
		return;
	}
	j = calloc(1, sizeof *j);
	if (!j) {
		finish(req, -ENOMEM, 0, 0);
		return;
	}
	j->c = c;
	j->req = req;
	j->finish = finish;
	j->shard = shard;
	j->s = s;
	j->applied = shard_applied_index(s);
	j->next = k->jobs;
	if (k->jobs)
		k->jobs->prev = j;
	k->jobs = j;
	job_step(j);
}

uint64_t redis_count_passes(const struct node_core *c)
{
	return c->redis && c->redis->counts ? c->redis->counts->passes : 0;
}

void redis_count_stop(struct node_core *c)
{
	struct redis_counts *k = c->redis ? c->redis->counts : NULL;

	if (!k)
		return;
	/* The core stops: its connections are gone, nobody waits for these
	 * answers. A step still in the shard's hands frees its job when it
	 * ends. */
	while (k->jobs) {
		struct count_job *j = k->jobs;

		reactor_timer_cancel(c->reactor, &j->timer);
		job_unlink(k, j);
		if (j->stepping)
			j->orphan = true;
		else
			job_free(j);
	}
	free(k->cache);
	free(k);
	c->redis->counts = NULL;
}
