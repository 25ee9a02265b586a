/*
 * The per-core Raft log at run time: staging records of every group into
 * one batch, group commit (one WRITEV and one fdatasync per batch, whatever
 * the number of groups), durable-end marks in each segment's page 0,
 * segments prepared ahead and switched at a size bound, and retention. Opening (recovery) is
 * in core_log_open.c, the group table and pins in core_log_group.c.
 *
 * Invariants (besides those in core_log.h):
 * - a batch is stored whole into one segment; the switch to the next
 *   segment happens only with no batch in flight and no preallocation in flight
 *   on the old file, so every completion refers to the active segment;
 * - the first batch stored into a segment is preceded by the segment's
 *   checkpoint (RETAIN + CHECKPOINT records built from the groups' written
 *   views, which hold exactly what the older segments say), so the older
 *   segments are not needed for any hard state or log start once that
 *   batch is durable (checkpoint_durable);
 * - a group's staged view differs from its written view only by records in
 *   the pending batch, so failing that batch (disk full) rolls back exactly;
 * - segments are unlinked one at a time, oldest first, and only below
 *   retain_durable: a crash leaves a suffix of the segments, and recovery can
 *   tell a segment deleted on purpose from one that went missing.
 */
#include "shard/core_log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/log.h"
#include "shard/core_log_internal.h"

#define BATCH_MIN_CAP (64u << 10)


struct io_uring_sqe *core_log_sqe(struct core_log *log, struct io_op *op)
{
	struct io_uring_sqe *sqe = io_ring_get_sqe(log->io);

	io_op_attach(sqe, op);
	log->ops++;
	return sqe;
}

/* ENOSPC and its cousins are "the disk is full": RKV_EFULL. */
static int full_or(int err)
{
	return err == -ENOSPC || err == -EDQUOT || err == -EFBIG ? RKV_EFULL : err;
}

static struct core_log_seg *active_seg(struct core_log *log)
{
	return &log->segs[log->nsegs - 1];
}

/* ---- staging ---------------------------------------------------------- */

static int buf_reserve(uint8_t **buf, size_t *cap, size_t len, size_t more)
{
	size_t want;
	uint8_t *grown;

	if (more > SIZE_MAX - len)
		return -ENOMEM;
	if (len + more <= *cap)
		return 0;
	want = *cap ? *cap : BATCH_MIN_CAP;
	while (want < len + more) {
		if (want > SIZE_MAX / 2)
			return -ENOMEM;
		want *= 2;
	}
	grown = realloc(*buf, want);
	if (!grown)
		return -ENOMEM;
	*buf = grown;
	*cap = want;
	return 0;
}

/* The group's slot in the pending batch, made on first use; NULL: -ENOMEM. */
static struct core_log_slot *slot_of(struct core_log *log, uint32_t gi)
{
	struct core_log_batch *b = log->pending;
	struct core_log_group *g = &log->groups[gi];
	struct core_log_slot *s;

	if (g->slot != CORE_LOG_NONE)
		return &b->slots[g->slot];
	if (b->nslots == b->slots_cap) {
		size_t cap = b->slots_cap ? b->slots_cap * 2 : 64;
		struct core_log_slot *grown = realloc(b->slots, cap * sizeof *grown);

		if (!grown)
			return NULL;
		b->slots = grown;
		b->slots_cap = cap;
		/* fail_pending copies the slots aside: room made now, so that
		 * failing a batch never needs memory. */
		if (cap > log->scratch_cap) {
			grown = realloc(log->scratch, cap * sizeof *grown);
			if (!grown)
				return NULL;
			log->scratch = grown;
			log->scratch_cap = cap;
		}
	}
	g->slot = (uint32_t)b->nslots;
	s = &b->slots[b->nslots++];
	memset(s, 0, sizeof *s);
	s->group = gi;
	return s;
}

/* Appends one record to the pending batch; space was reserved. */
static void put_record(struct core_log *log, const struct core_log_record *r)
{
	struct core_log_batch *b = log->pending;
	uint8_t *at = b->buf + b->len;

	assert(b->len + core_log_record_size(r->payload_len) <= b->cap);
	if (r->payload_len)
		memcpy(at + CORE_LOG_RECORD_HEADER_SIZE, r->payload, r->payload_len);
	b->len += core_log_record_finish(at, r);
	b->records++;
}

/* Reserves room for one payload-less record and gets the group's slot. */
static struct core_log_slot *stage_small(struct core_log *log, uint32_t gi)
{
	struct core_log_batch *b = log->pending;

	if (buf_reserve(&b->buf, &b->cap, b->len, CORE_LOG_RECORD_HEADER_SIZE) != 0)
		return NULL;
	return slot_of(log, gi);
}

int core_log_append(struct core_log *log, uint64_t group, uint64_t first_index,
		    const struct raft_entry *entries, size_t n)
{
	struct core_log_batch *b = log->pending;
	struct core_log_record r = { .kind = CORE_LOG_ENTRY, .group = group };
	struct core_log_slot *slot;
	struct core_log_view *v;
	size_t bytes = 0;
	uint32_t gi;

	assert(log != NULL && (entries != NULL || n == 0));
	if (log->failed)
		return log->failed;
	if (n == 0)
		return 0;
	if (first_index == 0 || first_index > UINT64_MAX - 1 - n)
		return RKV_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (entries[i].len > CORE_LOG_MAX_PAYLOAD ||
		    (entries[i].len > 0 && entries[i].data == NULL))
			return RKV_EINVAL;
		bytes += core_log_record_size(entries[i].len);
	}
	gi = core_log_group_get(log, group);
	if (gi == CORE_LOG_NONE)
		return -ENOMEM;
	v = &log->groups[gi].staged;
	if (first_index <= v->start_index || (v->has_entries && first_index > v->last_index + 1))
		return RKV_EINVAL;
	if (buf_reserve(&b->buf, &b->cap, b->len, bytes) != 0)
		return -ENOMEM;
	slot = slot_of(log, gi);
	if (!slot)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		r.a = first_index + i;
		r.b = entries[i].term;
		r.type = entries[i].type;
		r.payload = entries[i].data;
		r.payload_len = entries[i].len;
		put_record(log, &r);
	}
	if (slot->min_append == 0 || first_index < slot->min_append)
		slot->min_append = first_index;
	slot->entries = true;
	slot->last_index = first_index + n - 1;
	slot->last_term = entries[n - 1].term;
	v = &log->groups[gi].staged;
	v->last_index = slot->last_index;
	v->last_term = slot->last_term;
	v->has_entries = true;
	return 0;
}

int core_log_set_hard_state(struct core_log *log, uint64_t group,
			    const struct raft_hard_state *hs)
{
	struct core_log_record r = { .kind = CORE_LOG_HARD_STATE, .group = group };
	struct core_log_slot *slot;
	uint32_t gi;

	assert(log != NULL && hs != NULL);
	if (log->failed)
		return log->failed;
	gi = core_log_group_get(log, group);
	if (gi == CORE_LOG_NONE || !(slot = stage_small(log, gi)))
		return -ENOMEM;
	r.a = hs->term;
	r.b = hs->vote;
	put_record(log, &r);
	slot->hard_state = true;
	log->groups[gi].staged.hs = *hs;
	return 0;
}

int core_log_reset(struct core_log *log, uint64_t group, uint64_t index, uint64_t term)
{
	struct core_log_record r = { .kind = CORE_LOG_RESET, .group = group, .a = index,
				     .b = term };
	struct core_log_slot *slot;
	struct core_log_view *v;
	uint32_t gi;

	assert(log != NULL);
	if (log->failed)
		return log->failed;
	gi = core_log_group_get(log, group);
	if (gi == CORE_LOG_NONE || !(slot = stage_small(log, gi)))
		return -ENOMEM;
	put_record(log, &r);
	slot->reset = true;
	slot->entries = false;
	slot->min_append = 0;
	v = &log->groups[gi].staged;
	v->start_index = index;
	v->start_term = term;
	v->last_index = index;
	v->last_term = term;
	v->has_entries = false;
	return 0;
}

static int stage_remove(struct core_log *log, uint32_t gi)
{
	struct core_log_record r = { .kind = CORE_LOG_REMOVE, .group = log->groups[gi].id };
	struct core_log_slot *slot = stage_small(log, gi);

	if (!slot)
		return -ENOMEM;
	put_record(log, &r);
	slot->remove = true;
	return 0;
}

int core_log_remove_group(struct core_log *log, uint64_t group)
{
	uint32_t gi;
	int rv;

	assert(log != NULL);
	if (log->failed)
		return log->failed;
	gi = core_log_group_find(log, group);
	if (gi == CORE_LOG_NONE)
		return 0;
	rv = stage_remove(log, gi);
	if (rv != 0)
		return rv;
	core_log_group_unlink(log, gi);
	log->groups[gi].dead = true;
	return 0;
}

void core_log_release(struct core_log *log, uint64_t group, uint64_t index)
{
	uint32_t gi = core_log_group_find(log, group);

	if (gi == CORE_LOG_NONE || index <= log->groups[gi].released)
		return;
	log->groups[gi].released = index;
	core_log_group_repin(log, gi);
}

/* ---- batch completion and failure ------------------------------------ */

static void batch_clear(struct core_log *log, struct core_log_batch *b)
{
	for (size_t i = 0; i < b->nslots; i++)
		if (b == log->pending)
			log->groups[b->slots[i].group].slot = CORE_LOG_NONE;
	b->len = 0;
	b->nslots = 0;
	b->records = 0;
	b->retain = 0;
	b->seq = 0;
	b->end = 0;
	b->gen = 0;
	b->checkpoint = false;
}

static void call_back(struct core_log *log, const struct core_log_batch *b,
		      const struct core_log_slot *s, int status)
{
	const struct core_log_group *g = &log->groups[s->group];
	struct core_log_persisted p = {
		.group = g->id,
		.status = status,
		.entries = s->entries,
		.last_index = s->entries ? s->last_index : 0,
		.last_term = s->entries ? s->last_term : 0,
		.hard_state = s->hard_state,
		.reset = s->reset,
		.batch = b ? b->gen : 0,
	};

	log->cfg.persisted(log->cfg.persisted_arg, &p);
}

/*
 * Fails the pending batch, untouched on disk: each group's staged view goes
 * back to its written one and it is told `err`; a removed group's REMOVE is
 * staged again (the removal stands).
 */
static void fail_pending(struct core_log *log, int err)
{
	struct core_log_batch *b = log->pending;
	size_t n = b->nslots;

	if (b->len == 0)
		return;
	assert(n <= log->scratch_cap);
	if (n > 0)
		memcpy(log->scratch, b->slots, n * sizeof *b->slots);
	if (b->retain)
		log->retain_staged = log->retain_durable;
	log->switch_waiting = false;
	batch_clear(log, b);
	if (err == RKV_EFULL)
		log->stats.full++;
	log_every(LOG_WARN, 10000, "core log %s: batch of %zu groups failed: %s", log->cfg.dir, n,
		  rkv_strerror(err));
	for (size_t i = 0; i < n; i++) {
		struct core_log_group *g = &log->groups[log->scratch[i].group];

		if (g->dead) {
			if (stage_remove(log, log->scratch[i].group) != 0)
				log_error("core log %s: cannot stage removal of group %" PRIu64,
					  log->cfg.dir, g->id);
			continue;
		}
		g->staged = g->written;
		call_back(log, NULL, &log->scratch[i], err);
	}
}

/* A failed fdatasync: the log is failed for good (see core_log.h). Every
 * batch not yet durable fails, even those a later fdatasync may have
 * covered: after a failed one, a later success proves nothing (the kernel
 * may have dropped the pages that failed). */
static void fail_log(struct core_log *log, int err)
{
	struct core_log_batch *b;

	log->failed = err < 0 ? err : -EIO;
	log_error("core log %s: fdatasync failed (%s): the log stops taking writes",
		  log->cfg.dir, strerror(-log->failed));
	for (; log->nstored > 0; log->nstored--) {
		b = &log->batches[log->head];
		for (size_t i = 0; i < b->nslots; i++)
			if (!log->groups[b->slots[i].group].dead)
				call_back(log, b, &b->slots[i], log->failed);
		batch_clear(log, b);
		log->head = (log->head + 1) % (CORE_LOG_MAX_SYNCS + 1);
	}
	b = log->pending;
	for (size_t i = 0; i < b->nslots; i++)
		if (!log->groups[b->slots[i].group].dead)
			call_back(log, b, &b->slots[i], log->failed);
	batch_clear(log, b);
}

/* The oldest stored batch is durable: its groups are told. */
static void batch_durable(struct core_log *log)
{
	struct core_log_batch *b = &log->batches[log->head];

	if (b->checkpoint && b->seq > log->checkpoint_durable)
		log->checkpoint_durable = b->seq;
	if (b->seq == active_seg(log)->seq && b->end > log->durable_end)
		log->durable_end = b->end;
	if (b->retain > log->retain_durable)
		log->retain_durable = b->retain;
	log->gen_durable = b->gen;
	/* b stays counted in nstored while calling back: a callback that
	 * flushes must not reuse it. */
	for (size_t i = 0; i < b->nslots; i++) {
		const struct core_log_slot *s = &b->slots[i];
		struct core_log_group *g = &log->groups[s->group];

		if (s->remove) {
			if (g->used && g->dead)
				core_log_group_free(log, s->group);
			continue;
		}
		if (g->dead)
			continue;
		call_back(log, b, s, 0);
	}
	batch_clear(log, b);
	log->head = (log->head + 1) % (CORE_LOG_MAX_SYNCS + 1);
	log->nstored--;
}

static void mark_timer_arm(struct core_log *log);

static uint64_t monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The bucket of `v` among ascending upper bounds (the last: above all). */
static unsigned bucket_of(const uint64_t *bounds, uint64_t v)
{
	unsigned i = 0;

	while (i < CORE_LOG_SYNC_BUCKETS && v > bounds[i])
		i++;
	return i;
}

static void count_sync(struct core_log *log, const struct core_log_sync *sync)
{
	static const uint64_t us_bounds[] = CORE_LOG_SYNC_US_BOUNDS;
	static const uint64_t record_bounds[] = CORE_LOG_BATCH_RECORD_BOUNDS;
	uint64_t us = monotonic_us() - sync->start_us;

	log->stats.sync_us[bucket_of(us_bounds, us)]++;
	log->stats.sync_us_sum += us;
	log->stats.batch_records[bucket_of(record_bounds, sync->records)]++;
	log->stats.batch_records_sum += sync->records;
}

/*
 * Batch `gen`'s WRITE and then its fdatasync succeeded: that batch and
 * every earlier one are durable (each earlier batch's WRITE completed
 * before this one was issued, see store(), and an fdatasync writes back or
 * waits for every dirty page of the file, then flushes the disk's cache).
 * fdatasyncs may finish out of order; one that finishes after a later one
 * has nothing left to do.
 */
static void sync_finished(struct core_log *log, struct core_log_sync *sync, int res)
{
	sync->busy = false;
	log->syncs_busy--;
	if (log->failed)
		return;
	/* A failed or short WRITE cancels its linked fdatasync. */
	if (sync->write_res < 0 || (size_t)sync->write_res != sync->write_len)
		res = sync->write_res < 0 ? sync->write_res : -EIO;
	else if (sync->marked && sync->mark_res != (int)sync->mark_len)
		res = sync->mark_res < 0 ? sync->mark_res : -EIO;
	if (res < 0) {
		fail_log(log, res);
		return;
	}
	count_sync(log, sync);
	while (log->nstored > 0 && log->gen_durable < sync->gen)
		batch_durable(log);
	mark_timer_arm(log);
}

static void sync_done(struct io_op *op, int res, unsigned flags)
{
	struct core_log *log = op->data;
	struct core_log_sync *sync = (struct core_log_sync *)op;

	(void)flags;
	log->ops--;
	/* A direct batch's records WRITE completes here (no write_op). */
	if (sync->direct) {
		sync->write_res = res;
		res = res < 0 ? res : 0;
		if (--sync->writes == 0)
			log->write_inflight = false;
	}
	if (--sync->cqes == 0)
		sync_finished(log, sync, res);
}

/* One WRITE of a chain (the records, or the mark behind them) is back. */
static void chain_write_done(struct core_log *log, struct core_log_sync *sync)
{
	log->ops--;
	if (--sync->writes == 0)
		log->write_inflight = false;
	if (--sync->cqes == 0)
		sync_finished(log, sync, 0);
}

static void write_done(struct io_op *op, int res, unsigned flags)
{
	struct core_log_sync *sync =
		(struct core_log_sync *)((char *)op - offsetof(struct core_log_sync, write_op));

	(void)flags;
	sync->write_res = res;
	chain_write_done(op->data, sync);
}

static void mark_done(struct io_op *op, int res, unsigned flags)
{
	struct core_log_sync *sync =
		(struct core_log_sync *)((char *)op - offsetof(struct core_log_sync, mark_op));

	(void)flags;
	sync->mark_res = res;
	chain_write_done(op->data, sync);
}

/* ---- durable-end marks -------------------------------------------------
 *
 * Page 0 of a segment holds two mark slots (core_log_format.h). A mark
 * names an offset the segment's records were durable up to when it was
 * written: the end of the newest batch whose fdatasync had completed. So a
 * mark is never above what a power loss can leave (recovery never refuses
 * a genuinely torn tail), whichever order the kernel writes the pages back
 * in; and recovery refuses a segment whose records end below its mark
 * (cut or zeroed at a record and page boundary: synced data lost).
 *
 * A mark rides in the chain of the next batch (WRITEV, WRITE of the slot,
 * one FSYNC): no fdatasync of its own, one more page written. What it
 * cannot cover is the batch in flight itself: the newest durable batch is
 * marked only by the next one. When none comes within mark_delay_ms, a
 * TIMEOUT through the ring writes the mark alone with one fdatasync: one
 * per quiet period, never one per batch. The window that stays: the last
 * batch(es) made durable less than mark_delay_ms before a crash, or while
 * batches keep coming, the last one before it.
 *
 * One mark WRITE in flight at a time (write_inflight), alternating slots:
 * a torn write can spoil only the slot being written, the other still
 * holds the previous mark.
 */

/* Encodes the next mark (end = durable_end) into `out`; its slot offset. */
uint64_t core_log_mark_next(struct core_log *log, uint8_t *out)
{
	struct core_log_mark m = { .seq = active_seg(log)->seq, .count = ++log->mark_count,
				   .end = log->durable_end };

	core_log_mark_encode(out, &m);
	log->mark_end = log->durable_end;
	return core_log_mark_offset(m.count);
}

static void idle_mark_done(struct io_op *op, int res, unsigned flags)
{
	struct core_log *log = op->data;

	(void)flags;
	log->ops--;
	if (op == &log->idle_mark_op) {
		log->write_inflight = false;
		if (res != (int)log->idle_len && log->idle_res >= 0)
			log->idle_res = res < 0 ? res : -EIO;
	} else if (res < 0 && log->idle_res >= 0) {
		log->idle_res = res;
	}
	if (--log->idle_cqes > 0)
		return;
	/* Its fdatasync failed (or was cancelled by the failed WRITE): what
	 * it covered may not be durable; the log fails as for a batch. */
	if (log->idle_res < 0 && !log->failed)
		fail_log(log, log->idle_res);
}

static void mark_timer_done(struct io_op *op, int res, unsigned flags)
{
	struct core_log *log = op->data;
	struct io_uring_sqe *sqe;
	uint64_t at;

	(void)res; /* -ETIME: it expired */
	(void)flags;
	log->ops--;
	log->mark_timer_armed = false;
	if (log->failed || log->durable_end <= log->mark_end)
		return;
	/* A batch in flight re-arms the timer when it is durable. */
	if (log->nstored > 0 || log->write_inflight)
		return;
	at = core_log_mark_next(log, log->idle_mark);
	log->stats.idle_marks++;
	log->write_inflight = true;
	log->idle_res = 0;
	if (log->direct) {
		/* Page 0 whole, durable when the write completes. */
		memcpy(log->dio_page0 + at, log->idle_mark, CORE_LOG_MARK_SIZE);
		log->idle_len = CORE_LOG_DIO_BLOCK;
		log->idle_cqes = 1;
		sqe = core_log_sqe(log, &log->idle_mark_op);
		io_uring_prep_write(sqe, log->fd, log->dio_page0, CORE_LOG_DIO_BLOCK, 0);
		sqe->rw_flags = RWF_DSYNC;
		return;
	}
	log->idle_len = CORE_LOG_MARK_SIZE;
	log->idle_cqes = 2;
	io_ring_reserve(log->io, 2);
	sqe = core_log_sqe(log, &log->idle_mark_op);
	io_uring_prep_write(sqe, log->fd, log->idle_mark, CORE_LOG_MARK_SIZE, at);
	sqe->flags |= IOSQE_IO_LINK;
	sqe = core_log_sqe(log, &log->idle_sync_op);
	io_uring_prep_fsync(sqe, log->fd, IORING_FSYNC_DATASYNC);
}

/* Starts the quiet-period timer if a durable end is not marked yet. */
static void mark_timer_arm(struct core_log *log)
{
	struct io_uring_sqe *sqe;

	if (log->mark_timer_armed || log->failed || log->durable_end <= log->mark_end)
		return;
	log->mark_timer_armed = true;
	sqe = core_log_sqe(log, &log->mark_timer_op);
	io_uring_prep_timeout(sqe, &log->mark_delay, 0, 0);
}

/* ---- preallocation ---------------------------------------------------- */

/* Bytes the pending batch takes in the active segment (with its checkpoint
 * when it is the segment's first; ckpt_len is from the last build). */
static uint64_t pending_need(const struct core_log *log)
{
	return log->pending->len + (log->active_checkpointed ? 0 : log->ckpt_len);
}

/* FALLOCATE (or the zeros' WRITEVs) and the fdatasync linked after them:
 * all complete, then the space is the writer's. */
static void grow_done(struct io_op *op, int res, unsigned flags)
{
	struct core_log *log = op->data;

	(void)flags;
	log->ops--;
	/* The first error wins over the -ECANCELED of what it cancelled. A
	 * short WRITEV (the disk full) cancels the rest without an error of
	 * its own: caught by the count of bytes written. The space is the
	 * writer's only if the fdatasync itself returned 0. */
	if (op == &log->grow_op) {
		struct core_log_grow_tally *t = &log->grow_tally;

		if (res > 0)
			t->zeroed += (uint64_t)res;
		else if (res == -ECANCELED)
			t->cancelled = true;
		else if (res < 0 && t->first_err == 0)
			t->first_err = res;
	} else {
		log->grow_tally.sync_res = res;
	}
	if (--log->grow_cqes > 0)
		return;
	res = core_log_grow_verdict(&log->grow_tally);
	log->grow_inflight = false;
	if (res >= 0) {
		wal_map_allocated(&log->map, log->grow_size);
		log->grow_failed = false;
		return;
	}
	log->grow_failed = true;
	log_every(LOG_WARN, 10000, "core log %s: preallocating %" PRIu64 " bytes failed: %s",
		  log->cfg.dir, log->grow_size, strerror(-res));
	/* A batch that waited for an exact grow fails; after a grow with room
	 * ahead, the next flush retries the exact size first. */
	if (log->grow_exact && log->nstored == 0 &&
	    log->offset + pending_need(log) > log->map.alloc)
		fail_pending(log, full_or(res));
}

/* How far ahead of the writer the active segment is grown: `prealloc`, but
 * in direct mode, where the space is zeros written, never more than a
 * segment (a small segment must not write megabytes of zeros per file). */
static uint64_t grow_ahead(const struct core_log *log)
{
	uint64_t seg = (log->cfg.segment_size + CORE_LOG_PAGE - 1) / CORE_LOG_PAGE * CORE_LOG_PAGE;

	return log->direct && seg < log->cfg.prealloc ? seg : log->cfg.prealloc;
}

/* Makes the active segment at least `need` bytes, with room ahead unless
 * the last attempt failed: zeros written through the ring in direct mode
 * (core_log_direct.c, "Zero-filled space"), else one FALLOCATE. */
static void grow(struct core_log *log, uint64_t need)
{
	struct io_uring_sqe *sqe;
	uint64_t size, granule;

	if (log->grow_inflight)
		return;
	/* In direct mode zeros are written: rounding to 1 MiB would write them
	 * beyond what the ahead asked for. */
	granule = log->direct ? CORE_LOG_PAGE : WAL_MAP_RELEASE_CHUNK;
	size = wal_map_grow_target(&log->map, need, log->grow_failed ? 0 : grow_ahead(log), granule);
	if (size <= log->map.alloc)
		return;
	log->grow_exact = size == wal_map_grow_target(&log->map, need, 0, granule);
	log->grow_inflight = true;
	log->grow_size = size;
	/* The new size is made durable before a record goes into the space:
	 * after a crash, zeros follow the last bytes written, never the end
	 * of the file, so recovery can tell a file cut short (damage) from a
	 * torn write (core_log_open.c). One fdatasync per `prealloc` bytes. */
	log->grow_tally = (struct core_log_grow_tally){ 0 };
	if (log->direct && log->map.alloc % CORE_LOG_DIO_BLOCK == 0) {
		log->grow_tally.zero = size - log->map.alloc;
		log->grow_cqes = core_log_zero_sqes(log->grow_tally.zero) + 1;
		io_ring_reserve(log->io, log->grow_cqes);
		core_log_zero_fill(log, &log->grow_op, log->fd, log->map.alloc, size);
	} else {
		log->grow_cqes = 2;
		io_ring_reserve(log->io, 2);
		sqe = core_log_sqe(log, &log->grow_op);
		io_uring_prep_fallocate(sqe, log->fd, 0, log->map.alloc, size - log->map.alloc);
		sqe->flags |= IOSQE_IO_LINK;
	}
	sqe = core_log_sqe(log, &log->grow_sync_op);
	io_uring_prep_fsync(sqe, log->fd, IORING_FSYNC_DATASYNC);
}

/* ---- the next segment ------------------------------------------------- */

static void queue_close(struct core_log *log, int fd)
{
	if (fd < 0)
		return;
	if (log->nclose == log->close_cap) {
		size_t cap = log->close_cap ? log->close_cap * 2 : 4;
		int *grown = realloc(log->close_fds, cap * sizeof *grown);

		if (!grown) {
			close(fd); /* rare: a regular file's close does not wait on I/O */
			return;
		}
		log->close_fds = grown;
		log->close_cap = cap;
	}
	log->close_fds[log->nclose++] = fd;
}

static void close_done(struct io_op *op, int res, unsigned flags)
{
	struct core_log *log = op->data;

	(void)flags;
	log->ops--;
	log->close_inflight = false;
	if (res < 0)
		log_warn("core log %s: close: %s", log->cfg.dir, strerror(-res));
}

static void close_step(struct core_log *log)
{
	struct io_uring_sqe *sqe;

	if (log->close_inflight || log->nclose == 0)
		return;
	log->close_inflight = true;
	sqe = core_log_sqe(log, &log->close_op);
	io_uring_prep_close(sqe, log->close_fds[--log->nclose]);
}

static void prep_failed(struct core_log *log, int err)
{
	log_warn("core log %s/%s: preparing the next segment failed: %s", log->cfg.dir,
		 log->prep_name, strerror(-err));
	queue_close(log, log->prep_fd);
	log->prep_fd = -1;
	log->prep_err = err;
	log->prep = PREP_FAILED;
	/* The batch that waited for this attempt fails; a later one tries
	 * again (never fails on an old attempt's error). */
	if (log->switch_waiting) {
		log->switch_waiting = false;
		if (log->nstored == 0)
			fail_pending(log, full_or(err));
	}
}

static void prep_done(struct io_op *op, int res, unsigned flags)
{
	struct core_log *log = op->data;
	struct io_uring_sqe *sqe;
	int err = 0;

	(void)flags;
	log->ops--;
	if (log->prep == PREP_WRITING && op == &log->prep_op[0]) {
		/* The zeros may take a WRITEV and a WRITE: what they wrote,
		 * and the first error. */
		if (res > 0)
			log->prep_zeroed += (uint64_t)res;
		else if (res < 0 && log->prep_res[0] >= 0)
			log->prep_res[0] = res;
	} else {
		log->prep_res[op - log->prep_op] = res;
	}
	if (--log->prep_cqes > 0)
		return;
	if (log->prep == PREP_OPENING) {
		if (res < 0) {
			prep_failed(log, res);
			return;
		}
		log->prep_fd = res;
		log->prep = PREP_WRITING;
		log->prep_cqes = 4;
		log->prep_res[0] = 0;
		log->prep_zeroed = 0;
		log->prep_direct = false;
		/* The space, page 0, its fsync, the directory's fsync: one chain,
		 * so the segment is complete and its name durable when READY. */
		io_ring_reserve(log->io, 4);
		if (log->direct && grow_ahead(log) > CORE_LOG_RECORDS_START &&
		    core_log_direct_on(log, log->prep_fd)) {
			/* Zeros after page 0 up to the ahead (a WRITEV and a
			 * WRITE at most: a larger one is grown into later),
			 * page 0 itself from a block-aligned copy. */
			uint64_t end = grow_ahead(log);

			log->prep_direct = true;
			if (end > CORE_LOG_RECORDS_START + CORE_LOG_ZERO_MAX)
				end = CORE_LOG_RECORDS_START + CORE_LOG_ZERO_MAX;
			static_assert(CORE_LOG_ZERO_MAX % CORE_LOG_ZERO_CHUNK == 0 &&
				      CORE_LOG_RECORDS_START < CORE_LOG_ZERO_CHUNK,
				      "one WRITEV and one WRITE fill up to ZERO_MAX after page 0");
			log->prep_space = (int)(end - CORE_LOG_RECORDS_START);
			log->prep_cqes += core_log_zero_sqes(end - CORE_LOG_RECORDS_START) - 1;
			io_ring_reserve(log->io, log->prep_cqes);
			core_log_zero_fill(log, &log->prep_op[0], log->prep_fd,
					   CORE_LOG_RECORDS_START, end);
			memcpy(log->prep_page, log->prep_header, CORE_LOG_RECORDS_START);
			sqe = core_log_sqe(log, &log->prep_op[1]);
			io_uring_prep_write(sqe, log->prep_fd, log->prep_page,
					    CORE_LOG_RECORDS_START, 0);
		} else {
			log->prep_space = 0;
			sqe = core_log_sqe(log, &log->prep_op[0]);
			io_uring_prep_fallocate(sqe, log->prep_fd, 0, 0, log->cfg.prealloc);
			sqe->flags |= IOSQE_IO_LINK;
			sqe = core_log_sqe(log, &log->prep_op[1]);
			io_uring_prep_write(sqe, log->prep_fd, log->prep_header,
					    CORE_LOG_RECORDS_START, 0);
		}
		sqe->flags |= IOSQE_IO_LINK;
		sqe = core_log_sqe(log, &log->prep_op[2]);
		io_uring_prep_fsync(sqe, log->prep_fd, 0);
		sqe->flags |= IOSQE_IO_LINK;
		sqe = core_log_sqe(log, &log->prep_op[3]);
		io_uring_prep_fsync(sqe, log->dir_fd, 0);
		return;
	}
	for (int i = 0; i < 4 && err == 0; i++)
		if (log->prep_res[i] < 0 && log->prep_res[i] != -ECANCELED)
			err = log->prep_res[i];
	/* A short zero-fill cancels the rest without an error of its own; a
	 * cancelled chain (io_ring_cancel_all) is no full disk. */
	if (err == 0 && log->prep_res[0] == -ECANCELED)
		err = log->prep_zeroed > 0 ? -ENOSPC : -ECANCELED;
	if (err == 0 && log->prep_zeroed != (uint64_t)log->prep_space)
		err = -ENOSPC;
	if (err == 0 && log->prep_res[1] != CORE_LOG_RECORDS_START)
		err = log->prep_res[1] < 0 ? -EIO : -ENOSPC;
	if (err == 0 && (log->prep_res[2] < 0 || log->prep_res[3] < 0))
		err = -EIO;
	if (err != 0) {
		prep_failed(log, err);
		return;
	}
	log->prep = PREP_READY;
}

static void prepare_start(struct core_log *log)
{
	struct io_uring_sqe *sqe;
	uint64_t seq = active_seg(log)->seq + 1;

	assert(log->prep == PREP_NONE);
	core_log_segment_name(log->prep_name, sizeof log->prep_name, seq);
	core_log_segment_page0_encode(log->prep_header, seq);
	log->prep = PREP_OPENING;
	log->prep_cqes = 1;
	log->prep_err = 0;
	sqe = core_log_sqe(log, &log->prep_op[0]);
	/* O_TRUNC, not O_EXCL: a file of this seq can only be the leftover of
	 * an attempt that failed (the name is above every segment in use). */
	io_uring_prep_openat(sqe, log->dir_fd, log->prep_name,
			     O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

/* Moves to the prepared segment. 0, or the error the pending batch got. */
static int switch_segment(struct core_log *log, uint64_t need)
{
	struct core_log_seg *seg;
	struct wal_map map;
	uint64_t min_len = log->cfg.segment_size + log->cfg.prealloc;
	int rv;

	assert(log->prep == PREP_READY && log->nstored == 0 && !log->grow_inflight);
	if (need > min_len / 2)
		min_len = need * 2 + log->cfg.prealloc;
	if (log->nsegs == log->segs_cap) {
		size_t cap = log->segs_cap * 2;
		struct core_log_seg *grown = realloc(log->segs, cap * sizeof *grown);

		if (!grown) {
			fail_pending(log, -ENOMEM);
			return -ENOMEM;
		}
		log->segs = grown;
		log->segs_cap = cap;
	}
	rv = wal_map_open(&map, log->prep_fd, min_len);
	if (rv != 0) {
		log->switch_waiting = true;
		prep_failed(log, rv); /* fails the pending batch */
		return rv;
	}
	log->switch_waiting = false;
	/* Every batch stored into the old segment is durable (nstored == 0):
	 * the new segment's checkpoint says where its records end. */
	log->sealed_seq = active_seg(log)->seq;
	log->sealed_end = log->offset;
	wal_map_close(&log->map);
	queue_close(log, log->fd);
	log->map = map;
	log->fd = log->prep_fd;
	log->prep_fd = -1;
	log->prep = PREP_NONE;
	seg = &log->segs[log->nsegs++];
	seg->seq = log->segs[log->nsegs - 2].seq + 1;
	seg->bytes = CORE_LOG_RECORDS_START;
	seg->pins = 0;
	log->offset = CORE_LOG_RECORDS_START;
	/* Its page 0 holds marks 0 and 1, both naming no record. */
	log->durable_end = CORE_LOG_RECORDS_START;
	log->mark_end = CORE_LOG_RECORDS_START;
	log->mark_count = 1;
	if (log->direct) {
		/* Records start on a block: no tail block to carry over. The
		 * prepared fd took O_DIRECT already, or is asked now. */
		log->direct = log->prep_direct || core_log_direct_on(log, log->fd);
		memcpy(log->dio_page0, log->prep_header, CORE_LOG_RECORDS_START);
	}
	log->active_checkpointed = false;
	log->active_batches = 0;
	log->grow_failed = false;
	log->stats.created++;
	log->stats.segments = log->nsegs;
	return 0;
}

/* ---- storing a batch -------------------------------------------------- */

/*
 * Whether a group goes into checkpoints: not removed, and with a hard state
 * or log start to keep (a group with neither is what recovery assumes of a
 * group it never heard of).
 */
static bool in_checkpoint(const struct core_log_group *g)
{
	const struct core_log_view *v = &g->written;

	return g->used && !g->written_dead &&
	       (v->hs.term || v->hs.vote || v->start_index || v->start_term);
}

/*
 * Builds the active segment's checkpoint into ckpt_buf: a RETAIN record,
 * then the hard state and log start of every group not removed, as the
 * stored records say (written views). 0 or -ENOMEM.
 */
static int build_checkpoint(struct core_log *log)
{
	struct core_log_record r = { .kind = CORE_LOG_CHECKPOINT, .a = active_seg(log)->seq };
	struct core_log_record retain = { .kind = CORE_LOG_RETAIN, .a = log->retain_staged };
	struct core_log_record seal = { .kind = CORE_LOG_SEAL, .a = log->sealed_seq,
					.b = log->sealed_end };
	bool sealed = log->sealed_seq != 0 && log->sealed_seq + 1 == active_seg(log)->seq;
	size_t count = 0, size, at;
	uint32_t gi = 0;

	for (uint32_t i = 0; i < log->ngroups; i++)
		if (in_checkpoint(&log->groups[i]))
			count++;
	size = CORE_LOG_RECORD_HEADER_SIZE * (3 + count / CORE_LOG_CHECKPOINT_MAX_ITEMS) +
	       count * CORE_LOG_CHECKPOINT_ITEM;
	if (buf_reserve(&log->ckpt_buf, &log->ckpt_cap, 0, size) != 0)
		return -ENOMEM;
	log->ckpt_len = core_log_record_finish(log->ckpt_buf, &retain);
	log->ckpt_records = 1;
	if (sealed) {
		log->ckpt_len += core_log_record_finish(log->ckpt_buf + log->ckpt_len, &seal);
		log->ckpt_records++;
	}
	while (count > 0) {
		uint32_t items = count < CORE_LOG_CHECKPOINT_MAX_ITEMS ?
					 (uint32_t)count : CORE_LOG_CHECKPOINT_MAX_ITEMS;
		uint8_t *p;

		at = log->ckpt_len;
		p = log->ckpt_buf + at + CORE_LOG_RECORD_HEADER_SIZE;
		for (uint32_t k = 0; k < items; gi++) {
			const struct core_log_group *g = &log->groups[gi];
			struct core_log_checkpoint_item it;

			if (!in_checkpoint(g))
				continue;
			it.group = g->id;
			it.term = g->written.hs.term;
			it.vote = g->written.hs.vote;
			it.start_index = g->written.start_index;
			it.start_term = g->written.start_term;
			core_log_checkpoint_item_encode(p, &it);
			p += CORE_LOG_CHECKPOINT_ITEM;
			k++;
		}
		r.b = items;
		r.payload_len = items * CORE_LOG_CHECKPOINT_ITEM;
		log->ckpt_len += core_log_record_finish(log->ckpt_buf + at, &r);
		log->ckpt_records++;
		count -= items;
	}
	assert(log->ckpt_len <= size);
	return 0;
}

/* The pending batch goes into the segment; its groups' written views and
 * runs follow, and one fdatasync covers it. */
static struct core_log_sync *free_sync(struct core_log *log)
{
	for (unsigned i = 0; i < CORE_LOG_MAX_SYNCS; i++)
		if (!log->syncs[i].busy)
			return &log->syncs[i];
	assert(!"a batch stored with every fdatasync busy");
	return NULL;
}

/* Whether another batch may be stored now: fewer than max_syncs batches
 * wait for their fdatasync, an fdatasync slot is free (one that finished
 * late may still hold one after its batch became durable), and the last
 * batch's WRITE is done (see store()). */
static bool may_store(const struct core_log *log)
{
	return log->nstored < log->cfg.max_syncs && log->syncs_busy < log->cfg.max_syncs &&
	       !log->write_inflight;
}

static void store(struct core_log *log)
{
	struct core_log_batch *b = log->pending;
	struct core_log_seg *seg = active_seg(log);
	struct core_log_sync *sync;
	struct io_uring_sqe *sqe;
	uint64_t sqe_off;

	sync = free_sync(log);
	sync->write_len = 0;
	sync->iov[1].iov_len = 0;
	if (!log->active_checkpointed) {
		sync->iov[0] = (struct iovec){ log->ckpt_buf, log->ckpt_len };
		sync->write_len += log->ckpt_len;
		log->stats.bytes += log->ckpt_len;
		log->stats.records += log->ckpt_records;
		log->active_checkpointed = true;
		b->checkpoint = true;
		if (log->retain_staged > b->retain)
			b->retain = log->retain_staged;
	}
	sync->iov[sync->write_len ? 1 : 0] = (struct iovec){ b->buf, b->len };
	sqe_off = log->offset;
	log->offset += sync->write_len + b->len;
	sync->write_len += b->len;
	seg->bytes = log->offset;
	b->seq = seg->seq;
	for (size_t i = 0; i < b->nslots; i++) {
		const struct core_log_slot *s = &b->slots[i];
		struct core_log_group *g = &log->groups[s->group];

		g->slot = CORE_LOG_NONE;
		if (s->remove) {
			g->written_dead = true;
			continue;
		}
		g->written = g->staged;
		if ((s->reset || s->min_append) &&
		    core_log_group_wrote(log, s->group, seg->seq, s->reset, s->min_append) != 0) {
			/* Without its runs the group's pins would be wrong:
			 * keep every segment rather than risk one it needs. */
			log_error("core log %s: out of memory: segments are no longer deleted",
				  log->cfg.dir);
			log->unlink_broken = true;
		}
		core_log_group_repin(log, s->group);
	}
	log->stats.batches++;
	log->stats.records += b->records;
	log->stats.bytes += b->len;
	log->active_batches++;
	b->end = log->offset;
	b->gen = ++log->gen_stored;
	log->nstored++;
	log->pending = &log->batches[(log->head + log->nstored) % (CORE_LOG_MAX_SYNCS + 1)];
	assert(log->pending->len == 0 && log->pending->nslots == 0);
	sync->busy = true;
	sync->gen = b->gen;
	sync->start_us = monotonic_us();
	sync->records = b->records;
	sync->cqes = 2;
	sync->writes = 1;
	sync->write_res = 0;
	sync->direct = false;
	sync->mark_res = 0;
	sync->mark_len = CORE_LOG_MARK_SIZE;
	/* The end of the newest durable batch, if not marked yet. */
	sync->marked = log->durable_end > log->mark_end;
	log->syncs_busy++;
	/*
	 * Through the ring, not stores into a mapping of the file: a mapping
	 * costs a page fault per 4 KiB written and a TLB flush on every CPU
	 * per page written back, which perf put at about a tenth of a
	 * replicated write's CPU. One WRITE is in flight at a time
	 * (may_store), so each batch's bytes are in the page cache before
	 * any later batch's WRITE, hence its fdatasync, starts: the later
	 * fdatasync covers them. A killed or crashed WRITE leaves a prefix
	 * of its bytes followed by the preallocated zeros: a torn tail.
	 */
	log->write_inflight = true;
	log->stats.fsyncs++;
	if (log->direct) {
		core_log_store_direct(log, sync, sqe_off);
	} else {
		io_ring_reserve(log->io, 3);
		sqe = core_log_sqe(log, &sync->write_op);
		io_uring_prep_writev(sqe, log->fd, sync->iov, sync->iov[1].iov_len ? 2 : 1,
				     sqe_off);
		sqe->flags |= IOSQE_IO_LINK;
		if (sync->marked) {
			uint64_t at = core_log_mark_next(log, sync->mark);

			sync->cqes++;
			sync->writes++;
			log->stats.marks++;
			sqe = core_log_sqe(log, &sync->mark_op);
			io_uring_prep_write(sqe, log->fd, sync->mark, CORE_LOG_MARK_SIZE, at);
			sqe->flags |= IOSQE_IO_LINK;
		}
		sqe = core_log_sqe(log, &sync->op);
		io_uring_prep_fsync(sqe, log->fd, IORING_FSYNC_DATASYNC);
	}
	if (!log->grow_failed && log->map.alloc - log->offset < grow_ahead(log) / 2 &&
	    log->offset + grow_ahead(log) / 2 <= log->map.len)
		grow(log, log->offset);
}

static void submit(struct core_log *log)
{
	struct core_log_batch *b = log->pending;
	uint64_t need;

	for (int round = 0; round < 2; round++) {
		if (!log->active_checkpointed && build_checkpoint(log) != 0) {
			fail_pending(log, -ENOMEM);
			return;
		}
		need = b->len + (log->active_checkpointed ? 0 : log->ckpt_len);
		if (log->offset + need <= log->map.len &&
		    (log->offset + need <= log->cfg.segment_size || log->active_batches == 0))
			break;
		/* The active segment is done: move to the next one, once the
		 * batches stored into it are durable (the flush after the last
		 * one's fdatasync comes back to here). */
		if (round > 0 || log->grow_inflight || log->nstored > 0 || log->write_inflight)
			return;
		switch (log->prep) {
		case PREP_FAILED: /* an earlier attempt: try again for this batch */
			log->prep = PREP_NONE;
			/* fall through */
		case PREP_NONE:
			prepare_start(log);
			log->switch_waiting = true;
			return;
		case PREP_OPENING:
		case PREP_WRITING:
			log->switch_waiting = true;
			return;
		case PREP_READY:
			if (switch_segment(log, need) != 0)
				return;
			break;
		}
	}
	if (log->offset + need > log->map.alloc) {
		grow(log, log->offset + need);
		return;
	}
	/* Staging for a direct write: the batch, the head of its first block
	 * and the padding of its last. */
	if (log->direct && core_log_dio_reserve(log, need + 2 * CORE_LOG_DIO_BLOCK) != 0) {
		fail_pending(log, -ENOMEM);
		return;
	}
	store(log);
}

/* ---- retention ------------------------------------------------------- */

static void unlink_done(struct io_op *op, int res, unsigned flags)
{
	struct core_log *log = op->data;

	(void)flags;
	log->ops--;
	log->unlink_inflight = false;
	if (res < 0 && res != -ENOENT) {
		/* Deleting a later one would leave a hole recovery refuses. */
		log_error("core log %s/%s: unlink: %s; segments are no longer deleted",
			  log->cfg.dir, log->unlink_name, strerror(-res));
		log->unlink_broken = true;
		return;
	}
	assert(log->nsegs > 1 && log->segs[0].pins == 0);
	memmove(log->segs, log->segs + 1, (log->nsegs - 1) * sizeof *log->segs);
	log->nsegs--;
	log->stats.deleted++;
	log->stats.segments = log->nsegs;
}

static void retention_step(struct core_log *log)
{
	struct core_log_batch *b = log->pending;
	uint64_t keep = log->segs[0].seq;
	struct io_uring_sqe *sqe;

	if (log->unlink_broken)
		return;
	for (size_t k = 0; k + 1 < log->nsegs; k++) {
		const struct core_log_seg *s = &log->segs[k];

		if (s->pins > 0 || s->seq >= log->checkpoint_durable)
			break;
		keep = s->seq + 1;
	}
	if (keep > log->retain_staged &&
	    buf_reserve(&b->buf, &b->cap, b->len, CORE_LOG_RECORD_HEADER_SIZE) == 0) {
		struct core_log_record r = { .kind = CORE_LOG_RETAIN, .a = keep };

		put_record(log, &r);
		b->retain = keep;
		log->retain_staged = keep;
	}
	if (log->unlink_inflight || log->nsegs < 2 || log->segs[0].seq >= log->retain_durable)
		return;
	log->unlink_inflight = true;
	core_log_segment_name(log->unlink_name, sizeof log->unlink_name, log->segs[0].seq);
	sqe = core_log_sqe(log, &log->unlink_op);
	io_uring_prep_unlinkat(sqe, log->dir_fd, log->unlink_name, 0);
}

void core_log_flush(struct core_log *log)
{
	assert(log != NULL);
	if (log->failed)
		return;
	close_step(log);
	retention_step(log);
	if (may_store(log) && log->pending->len > 0)
		submit(log);
	if (log->prep == PREP_NONE && log->active_batches > 0 &&
	    log->offset >= log->cfg.segment_size / 2)
		prepare_start(log);
}

/* ---- open, close, queries -------------------------------------------- */

int core_log_open(struct core_log **out, const struct core_log_config *cfg,
		  struct io_ring *io, char *err, size_t errlen)
{
	struct core_log *log;
	int rv;

	assert(out != NULL && cfg != NULL && io != NULL);
	if (!cfg->dir || !cfg->persisted) {
		snprintf(err, errlen, "core log: no directory or persisted callback");
		return RKV_EINVAL;
	}
	log = calloc(1, sizeof *log);
	if (!log)
		return -ENOMEM;
	log->cfg = *cfg;
	if (log->cfg.segment_size == 0)
		log->cfg.segment_size = CORE_LOG_DEFAULT_SEGMENT_SIZE;
	if (log->cfg.prealloc == 0)
		log->cfg.prealloc = CORE_LOG_DEFAULT_PREALLOC;
	/* Whole pages: recovery tells a cut segment by its size. */
	log->cfg.prealloc = (log->cfg.prealloc + CORE_LOG_PAGE - 1) / CORE_LOG_PAGE * CORE_LOG_PAGE;
	if (log->cfg.segment_size < 4096)
		log->cfg.segment_size = 4096;
	log->io = io;
	log->dir_fd = -1;
	log->fd = -1;
	log->prep_fd = -1;
	if (log->cfg.max_syncs == 0)
		log->cfg.max_syncs = CORE_LOG_DEFAULT_SYNCS;
	if (log->cfg.max_syncs > CORE_LOG_MAX_SYNCS)
		log->cfg.max_syncs = CORE_LOG_MAX_SYNCS;
	log->pending = &log->batches[0];
	for (int i = 0; i < CORE_LOG_MAX_SYNCS; i++) {
		log->syncs[i].op = (struct io_op){ .done = sync_done, .data = log };
		log->syncs[i].write_op = (struct io_op){ .done = write_done, .data = log };
		log->syncs[i].mark_op = (struct io_op){ .done = mark_done, .data = log };
	}
	if (log->cfg.mark_delay_ms == 0)
		log->cfg.mark_delay_ms = CORE_LOG_DEFAULT_MARK_DELAY_MS;
	log->mark_delay.tv_sec = log->cfg.mark_delay_ms / 1000;
	log->mark_delay.tv_nsec = (long long)(log->cfg.mark_delay_ms % 1000) * 1000000;
	log->mark_timer_op = (struct io_op){ .done = mark_timer_done, .data = log };
	log->idle_mark_op = (struct io_op){ .done = idle_mark_done, .data = log };
	log->idle_sync_op = (struct io_op){ .done = idle_mark_done, .data = log };
	log->grow_op = (struct io_op){ .done = grow_done, .data = log };
	log->grow_sync_op = (struct io_op){ .done = grow_done, .data = log };
	log->unlink_op = (struct io_op){ .done = unlink_done, .data = log };
	log->close_op = (struct io_op){ .done = close_done, .data = log };
	for (int i = 0; i < 4; i++)
		log->prep_op[i] = (struct io_op){ .done = prep_done, .data = log };
	rv = core_log_groups_init(log);
	if (rv == 0)
		rv = core_log_open_segments(log, err, errlen);
	if (rv == 0) {
		rv = core_log_direct_start(log);
		if (rv != 0)
			snprintf(err, errlen, "core log %s: reading the last block of the active "
				 "segment: %s", log->cfg.dir, strerror(-rv));
	}
	if (rv != 0) {
		core_log_close(log);
		return rv;
	}
	log_info("core log %s: %zu segments, %u groups, append at %" PRIu64 " of %s/log-%020"
		 PRIu64 ".log, %s writes", log->cfg.dir, log->nsegs, log->live, log->offset,
		 log->cfg.dir, active_seg(log)->seq, log->direct ? "direct (O_DSYNC)" : "buffered");
	*out = log;
	return 0;
}

void core_log_close(struct core_log *log)
{
	if (!log)
		return;
	assert(log->ops == 0);
	wal_map_close(&log->map);
	free(log->dio_buf);
	free(log->dio_page0);
	free(log->prep_page);
	free(log->zeros);
	free(log->zero_iov);
	if (log->fd >= 0)
		close(log->fd);
	if (log->prep_fd >= 0)
		close(log->prep_fd);
	for (size_t i = 0; i < log->nclose; i++)
		close(log->close_fds[i]);
	if (log->dir_fd >= 0)
		close(log->dir_fd);
	for (int i = 0; i < CORE_LOG_MAX_SYNCS + 1; i++) {
		free(log->batches[i].buf);
		free(log->batches[i].slots);
	}
	core_log_groups_free(log);
	free(log->segs);
	free(log->ckpt_buf);
	free(log->close_fds);
	free(log->scratch);
	free(log);
}

bool core_log_idle(const struct core_log *log)
{
	return log->ops == 0 && log->nstored == 0 && log->nclose == 0 &&
	       (log->pending->len == 0 || log->failed);
}

int core_log_error(const struct core_log *log)
{
	return log->failed;
}

void core_log_group_pinned(const struct core_log *log, uint64_t group, uint64_t *segments,
			   uint64_t *bytes)
{
	uint32_t gi = core_log_group_find(log, group);
	uint64_t pin;

	*segments = 0;
	*bytes = 0;
	if (gi == CORE_LOG_NONE || (pin = log->groups[gi].pin_seq) == 0)
		return;
	for (size_t k = 0; k < log->nsegs; k++) {
		if (log->segs[k].seq < pin)
			continue;
		(*segments)++;
		*bytes += log->segs[k].bytes;
	}
}

bool core_log_oldest_pinner(const struct core_log *log, uint64_t *group, uint64_t *bytes)
{
	uint64_t best = 0, segments;

	for (uint32_t gi = 0; gi < log->ngroups; gi++) {
		const struct core_log_group *g = &log->groups[gi];

		if (g->used && !g->dead && g->pin_seq != 0 && (best == 0 || g->pin_seq < best)) {
			best = g->pin_seq;
			*group = g->id;
		}
	}
	if (best == 0)
		return false;
	core_log_group_pinned(log, *group, &segments, bytes);
	return true;
}

void core_log_stats(const struct core_log *log, struct core_log_stats *out)
{
	*out = log->stats;
	out->groups = log->live;
	out->segments = log->nsegs;
}
