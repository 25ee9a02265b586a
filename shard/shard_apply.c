/*
 * Replicated mode: the shard is the state machine of a Raft group. It has no
 * WAL of its own; the log lives elsewhere (the core's log), Raft numbers the
 * entries, and committed entries come in through shard_apply() in index
 * order. At open the state is the SSTables, whose manifest says up to which
 * log index they hold (the flushed index): that is the applied index after
 * a restart, and entries at or below it are skipped when handed in again.
 *
 * Invariants:
 * - entries are applied strictly in index order, one at a time, always the
 *   head of the queue; an entry that must wait (its key's current value is
 *   only in an SSTable block being read, or the memtables are full while a
 *   flush runs) holds every later entry back;
 * - a command's current value is settled (shard_prior_resolve, on the
 *   queue's own carrier waiter) in the same synchronous step that executes
 *   it, except when a block must be read first; then the step is retried
 *   when the block lands, and re-settles if the memtables or tables changed
 *   meanwhile. So the value used is the one replay and every other replica
 *   use: memtables first, then the tables;
 * - applied_index is the last entry executed into the memtables; the active
 *   memtable's last_index follows it, so a memtable made immutable holds
 *   exactly the entries up to its last_index, and its flush records that as
 *   the manifest's flushed index;
 * - an entry is never refused once accepted: a command that cannot be
 *   decoded is skipped (counted, logged) on every replica alike; a value
 *   that cannot be read (a damaged block) stops apply for good instead of
 *   letting this replica diverge.
 *
 * Memory: a full active memtable is sealed at once (no segment to create)
 * when no immutable one exists; otherwise the head waits for the flush, the
 * queue fills, and past apply_limit bytes shard_apply answers RKV_EAGAIN
 * until the queue drains to half (on_apply_ready).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/log.h"
#include "shard/shard_internal.h"

#define APPLY_DEFAULT_LIMIT (16ull << 20)
/* Small: an idle replica's queue holds an election's no-op now and then,
 * and a node holds thousands; a busy one doubles to its working size once. */
#define APPLY_QUEUE_MIN (1u << 10)

/* One accepted entry in the queue; its payload follows. */
struct apply_rec {
	uint64_t index;
	struct shard_waiter *w;
	uint32_t len;
	uint8_t type;
};

enum step {
	STEP_DONE,    /* executed or skipped: answer and pop */
	STEP_WAIT,    /* a block read or a flush; shard_resume() runs it again */
	STEP_STOPPED, /* apply stopped for good (apply.error) */
};

static size_t rec_size(size_t len)
{
	return (sizeof(struct apply_rec) + len + 7) & ~(size_t)7;
}

void shard_apply_init(struct shard *s, const struct shard_config *cfg)
{
	struct apply_queue *q = &s->apply;

	q->limit = cfg->apply_limit ? cfg->apply_limit : APPLY_DEFAULT_LIMIT;
	q->on_flushed = cfg->on_flushed;
	q->on_ready = cfg->on_apply_ready;
	q->hook_arg = cfg->hook_arg;
	q->last_index = s->applied_index;
}

void shard_apply_destroy(struct shard *s)
{
	struct apply_queue *q = &s->apply;

	shard_prior_release(s, &q->carrier);
	if (q->prefetch) {
		/* shard_close waited for their reads: only the buffers are left. */
		for (int i = 0; i < SHARD_APPLY_PREFETCH; i++)
			free(q->prefetch[i].key);
		free(q->prefetch);
		q->prefetch = NULL;
	}
	shard_multi_release(s);
	free(q->buf);
	free(q->key);
	q->buf = NULL;
	q->key = NULL;
}

/*
 * Room for `size` more bytes at the tail. The live records move down only
 * when at least as many bytes were popped before them as they hold, so a
 * move is paid for by the pops (no quadratic copying while the queue stays
 * nearly full); otherwise the buffer grows to twice what is needed, so it
 * settles at a few times its peak and stops allocating.
 */
static int queue_reserve(struct apply_queue *q, size_t size)
{
	size_t used = q->tail - q->head;
	size_t cap = q->cap ? q->cap : APPLY_QUEUE_MIN;
	uint8_t *buf;

	if (q->tail + size <= q->cap)
		return 0;
	if (used + size <= q->cap && q->head >= used) {
		/* The live records fit before the old head: move them down.
		 * (A block read in flight for the head reads its key from
		 * q->key, not from here.) */
		memcpy(q->buf, q->buf + q->head, used);
		q->head = 0;
		q->tail = used;
		return 0;
	}
	while (cap < 2 * (used + size))
		cap *= 2;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	if (used)
		memcpy(buf, q->buf + q->head, used);
	free(q->buf);
	q->buf = buf;
	q->cap = cap;
	q->head = 0;
	q->tail = used;
	return 0;
}

static void queue_pop(struct apply_queue *q, size_t size)
{
	q->head += size;
	q->count--;
	if (q->count == 0)
		q->head = q->tail = 0;
}

/*
 * Does the active memtable have room for `cost`? An empty memtable takes
 * any entry its arena holds (an entry larger than memtable_size gets an
 * oversized memtable of its own, see make_room).
 */
static bool fits(const struct shard *s, size_t cost)
{
	if (memtable_count(s->mem->mt) == 0)
		return memtable_remaining(s->mem->mt) >= cost;
	return shard_mem_room(s) >= cost;
}

/* Seals the active memtable for a fresh one that holds `cost`: true, or
 * false when the head must wait (a flush still runs, or no memory). */
static bool make_room(struct shard *s, size_t cost)
{
	struct apply_queue *q = &s->apply;
	uint64_t size = s->memtable_size;
	struct lsm_mem *fresh;

	if (s->imm) {
		if (!q->waiting_room)
			s->stats.stalls++;
		q->waiting_room = true;
		return false;
	}
	/* A committed entry must apply on every replica, whatever its
	 * memtable size: one that a normal memtable cannot hold gets a
	 * memtable of its own size. */
	if (cost > size / 2)
		size += cost;
	fresh = lsm_mem_new_sized(size, memtable_count(s->mem->mt));
	if (!fresh) {
		log_warn("shard %u: no memory for a memtable of %" PRIu64 " bytes; apply waits",
			 s->id, size);
		q->waiting_room = true;
		return false;
	}
	q->waiting_room = false;
	shard_seal_memtable(s, fresh);
	return true;
}

static bool needs_prior(const struct command *c, const struct shard_waiter *w)
{
	switch (c->op) {
	case COMMAND_PUT_AT:
		return c->flags != 0 || (w && w->want_prior); /* else a blind write */
	case COMMAND_PUT:
		return w && w->want_prior;
	case COMMAND_DELETE:
		return w != NULL; /* only the client asks whether the key existed */
	case COMMAND_FLUSH:
		return false;
	default:
		return true;
	}
}

bool shard_apply_room(struct shard *s, size_t cost)
{
	return fits(s, cost) || make_room(s, cost);
}

/* Stops apply for good: the replica cannot compute the entry's effect. */
static enum step stop(struct shard *s, const struct apply_rec *r, int err)
{
	log_error("shard %u: entry %" PRIu64 ": the current value could not be read: %s; "
		  "apply stopped, the replica needs repair", s->id, r->index, rkv_strerror(err));
	s->apply.error = err;
	return STEP_STOPPED;
}

/* Works on the head entry `r`: executes it into the memtables, or says why
 * it must wait. On STEP_DONE, *rv and *res are the waiter's answer. */
static enum step step_head(struct shard *s, const struct apply_rec *r, int *rv,
			   struct shard_result *res)
{
	struct apply_queue *q = &s->apply;
	struct shard_waiter *c = &q->carrier;
	const uint8_t *payload = (const uint8_t *)(r + 1);
	struct command cmd;
	size_t cost;
	int err;

	memset(res, 0, sizeof *res);
	*rv = 0;
	if (r->type == SHARD_ENTRY_NOOP)
		return STEP_DONE;
	err = command_decode(payload, r->len, &cmd);
	if (err) {
		/* Committed by Raft, so every replica meets the same bytes and
		 * skips them the same way. */
		log_error("shard %u: entry %" PRIu64 ": %u bytes that are not a command; "
			  "skipped", s->id, r->index, r->len);
		s->stats.apply_errors++;
		*rv = RKV_ECORRUPT;
		return STEP_DONE;
	}
	if (command_is_multi(cmd.op)) {
		err = shard_multi_step(s, r->index, &cmd, res);
		if (err == SHARD_PRIOR_WAIT)
			return STEP_WAIT;
		return err ? stop(s, r, err) : STEP_DONE;
	}
	if (cmd.op == COMMAND_FLUSH) {
		/* Every key goes, in time independent of their number. */
		shard_prior_release(s, c);
		return shard_drop_head(s, r->index) ? STEP_DONE : STEP_WAIT;
	}
	/* Decoded afresh at every step: the queue may have moved since. */
	c->cmd = cmd;
	if (needs_prior(&cmd, r->w)) {
		/* A block read for the key may outlive this step (and the
		 * queue's buffer): it reads the key from q->key. */
		if (!c->warming) {
			if (q->key_cap < cmd.key_len || !q->key) {
				size_t cap = q->key_cap ? q->key_cap : 64;
				uint8_t *k;

				while (cap < cmd.key_len)
					cap *= 2;
				k = realloc(q->key, cap);
				if (!k)
					return stop(s, r, -ENOMEM);
				q->key = k;
				q->key_cap = cap;
			}
			if (cmd.key_len)
				memcpy(q->key, cmd.key, cmd.key_len);
		}
		c->cmd.key = q->key;
		err = shard_prior_resolve(s, c);
		if (err == SHARD_PRIOR_WAIT)
			return STEP_WAIT;
		if (err)
			return stop(s, r, err);
	} else {
		shard_prior_release(s, c);
	}
	cost = shard_exec_cost(s, c);
	if (!fits(s, cost) && !make_room(s, cost))
		return STEP_WAIT;
	err = shard_exec(s, &c->cmd, c, res);
	if (err)
		return stop(s, r, err);
	return STEP_DONE;
}

static void prefetch_done(struct shard_read *rd, int rv, const void *value, size_t len)
{
	struct apply_prefetch *p = rd->arg;

	(void)rv;
	(void)value;
	(void)len;
	/* Only the cache was the point: the head finds the block there. */
	if (rd->pin)
		block_cache_release(rd->s->cache, rd->pin);
	rd->pin = NULL;
	p->busy = false;
}

/*
 * An entry queued behind a head that waits: when it will need a current
 * value that the memtables do not hold, start reading its block into the
 * cache now, so that a run of commands on cold keys costs about one read
 * time, not one per entry. Warming only: the entry still settles its value
 * when it is the head, in order. Best effort (no free slot, no memory:
 * nothing).
 */
static void prefetch(struct shard *s, const struct apply_rec *r)
{
	struct apply_queue *q = &s->apply;
	struct apply_prefetch *p = NULL;
	const void *value;
	struct command cmd;
	size_t len;

	if (r->type != SHARD_ENTRY_COMMAND ||
	    command_decode((const uint8_t *)(r + 1), r->len, &cmd) != 0 ||
	    !needs_prior(&cmd, r->w) ||
	    memtable_get(s->mem->mt, cmd.key, cmd.key_len, &value, &len) != RKV_ENOTFOUND ||
	    (s->imm && memtable_get(s->imm->mt, cmd.key, cmd.key_len, &value, &len) !=
			       RKV_ENOTFOUND))
		return;
	if (!q->prefetch) {
		q->prefetch = calloc(SHARD_APPLY_PREFETCH, sizeof *q->prefetch);
		if (!q->prefetch)
			return;
	}
	for (int i = 0; i < SHARD_APPLY_PREFETCH && !p; i++)
		if (!q->prefetch[i].busy)
			p = &q->prefetch[i];
	if (!p)
		return;
	if (p->key_cap < cmd.key_len || !p->key) {
		size_t cap = p->key_cap ? p->key_cap : 64;
		uint8_t *k;

		while (cap < cmd.key_len)
			cap *= 2;
		k = realloc(p->key, cap);
		if (!k)
			return;
		p->key = k;
		p->key_cap = cap;
	}
	if (cmd.key_len)
		memcpy(p->key, cmd.key, cmd.key_len);
	p->busy = true;
	p->rd.done = prefetch_done;
	p->rd.arg = p;
	p->rd.warm_only = true;
	shard_read_start(s, &p->rd, p->key, cmd.key_len);
}

/* Answers every queued entry's waiter with the error that stopped apply. */
static void fail_queue(struct shard *s)
{
	struct apply_queue *q = &s->apply;

	while (q->count > 0) {
		const struct apply_rec *r = (const struct apply_rec *)(q->buf + q->head);
		struct shard_waiter *w = r->w;

		queue_pop(q, rec_size(r->len));
		if (w)
			w->done(w, q->error, NULL);
	}
}

void shard_apply_drain(struct shard *s)
{
	struct apply_queue *q = &s->apply;

	if (q->draining) {
		q->drain_again = true;
		return;
	}
	q->draining = true;
	do {
		q->drain_again = false;
		while (q->count > 0 && !q->error) {
			const struct apply_rec *r = (const struct apply_rec *)(q->buf + q->head);
			struct block_cache_handle *pin;
			struct shard_result res;
			struct shard_waiter *w;
			enum step st;
			int rv;

			st = step_head(s, r, &rv, &res);
			if (st == STEP_WAIT)
				break;
			if (st == STEP_STOPPED) {
				shard_prior_release(s, &q->carrier);
				fail_queue(s);
				break;
			}
			s->applied_index = r->index;
			s->mem->last_index = r->index;
			s->stats.applied++;
			w = r->w;
			/* Popped before the answer: the callback may hand in more. */
			queue_pop(q, rec_size(r->len));
			/* res.old_value may point into the carrier's pinned block:
			 * released only after the callback. */
			pin = q->carrier.prior_pin;
			q->carrier.prior_pin = NULL;
			if (w) {
				if (!w->want_prior) {
					res.old_value = NULL;
					res.old_len = 0;
				}
				w->done(w, rv, rv == 0 ? &res : NULL);
			}
			if (pin)
				block_cache_release(s->cache, pin);
			shard_prior_release(s, &q->carrier);
		}
	} while (q->drain_again);
	q->draining = false;
	shard_budget_sync(s);
	if (q->refused && q->tail - q->head <= q->limit / 2) {
		q->refused = false;
		if (q->on_ready)
			q->on_ready(q->hook_arg, s);
	}
}

int shard_apply(struct shard *s, uint64_t index, enum shard_entry_type type,
		const void *payload, size_t len, struct shard_waiter *w)
{
	struct apply_queue *q = &s->apply;
	struct apply_rec *r;
	size_t size;
	int rv;

	if (!s->replicated || (type != SHARD_ENTRY_COMMAND && type != SHARD_ENTRY_NOOP))
		return RKV_EINVAL;
	if (q->error)
		return q->error;
	if (index <= q->last_index) {
		s->stats.apply_skipped++;
		if (w)
			w->done(w, -EALREADY, NULL);
		return 0;
	}
	if (index != q->last_index + 1)
		return RKV_EINVAL;
	if (type == SHARD_ENTRY_NOOP)
		len = 0;
	if (len > UINT32_MAX)
		len = 0; /* no command is this long: kept empty, skipped as undecodable */
	size = rec_size(len);
	if (q->count > 0 && q->tail - q->head + size > q->limit) {
		q->refused = true;
		return RKV_EAGAIN;
	}
	rv = queue_reserve(q, size);
	if (rv)
		return rv;
	r = (struct apply_rec *)(q->buf + q->tail);
	r->index = index;
	r->w = w;
	r->len = (uint32_t)len;
	r->type = (uint8_t)type;
	if (len)
		memcpy(r + 1, payload, len);
	q->tail += size;
	q->count++;
	q->last_index = index;
	/* Behind another entry, this one waits its turn: whatever holds the
	 * head back resumes the queue (shard_resume) when it is done. */
	if (q->count == 1)
		shard_apply_drain(s);
	else if (q->carrier.warming)
		prefetch(s, r);
	return 0;
}

int shard_apply_skip(struct shard *s, uint64_t index)
{
	return shard_apply(s, index, SHARD_ENTRY_NOOP, NULL, 0, NULL);
}

void shard_apply_flushed(struct shard *s)
{
	if (s->apply.on_flushed)
		s->apply.on_flushed(s->apply.hook_arg, s, s->manifest.flushed_index);
}

uint64_t shard_applied_index(const struct shard *s)
{
	return s->applied_index;
}

uint64_t shard_flushed_index(const struct shard *s)
{
	return s->manifest.flushed_index;
}

uint64_t shard_apply_last(const struct shard *s)
{
	return s->replicated ? s->apply.last_index : s->applied_index;
}

size_t shard_apply_pending(const struct shard *s, size_t *bytes)
{
	if (bytes)
		*bytes = s->apply.tail - s->apply.head;
	return s->apply.count;
}

int shard_apply_error(const struct shard *s)
{
	return s->apply.error;
}
