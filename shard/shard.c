/*
 * One shard: WAL group commit through the core's io_uring ring, the
 * memtables it feeds, and the memtable switch. See shard/shard.h for the
 * write path's contract, shard_internal.h for who owns what; opening and
 * closing (blocking, outside the loop) are in shard_open.c.
 *
 * Invariants:
 * - at most one batch is in flight (stored into the mapped segment, then one
 *   fdatasync: see wal_map.h); WAL offsets and indexes therefore advance
 *   strictly in order, and a batch is stored only after the one before it
 *   is durable;
 * - a batch is stored only into space the file already holds (FALLOCATE
 *   through the ring, wal_step ahead of the writer); a batch that does not
 *   fit waits for the FALLOCATE, and fails with RKV_EFULL, untouched, when
 *   the disk is full;
 * - reserved <= room of the active memtable: every queued record has its
 *   memtable space set aside, so applying a durable batch cannot fail;
 * - a record reaches the memtable only after its batch's fdatasync succeeded;
 * - writes enter the log in arrival order: once one waits (stall queue),
 *   every later write of the shard waits behind it;
 * - a command whose effect depends on the current value has that value
 *   settled when it enters the batch: found in the memtables (which keep it
 *   until the command is applied: an immutable memtable is dropped only once
 *   every record queued before its table was installed is applied), or read
 *   from the tables of the current version through a pinned cache block.
 *   Records applied in between land in the memtables, which apply consults
 *   first; so the result is the one replay computes (memtable, then tables,
 *   read directly at start-up).
 *
 * Memtable switch: when the active memtable cannot hold the next write, the
 * shard stops queueing (writes wait in the stall queue), lets both batches
 * finish, creates the next WAL segment (OPENAT, header WRITE, FSYNC, FSYNC of
 * the directory), then makes the active memtable immutable (it holds exactly
 * the records up to the new segment's first index - 1) and starts a fresh
 * one. Only one immutable memtable exists; while it is still being flushed,
 * writes that need room wait (bounded by stall_limit bytes, beyond which they
 * get RKV_EFULL).
 */
#include "shard/shard.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/log.h"
#include "shard/command.h"
#include "shard/memtable.h"
#include "shard/shard_internal.h"
#include "shard/wal_format.h"

#define QUEUE_STALL SHARD_PRIOR_WAIT /* the same meaning: wait, in order */

static uint32_t load_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void batch_reset(struct wal_batch *b)
{
	b->len = 0;
	b->count = 0;
	b->reserved = 0;
	b->appended = 0;
	b->head = b->tail = NULL;
}

/* Grows the batch buffer geometrically: only while the load climbs to a new
 * peak, never per request in the steady state. */
static int batch_reserve(struct wal_batch *b, size_t more)
{
	size_t need = b->len + more;
	size_t cap = b->cap ? b->cap : 64 * 1024;
	uint8_t *buf;

	if (need <= b->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	buf = realloc(b->buf, cap);
	if (!buf)
		return -ENOMEM;
	b->buf = buf;
	b->cap = cap;
	return 0;
}

struct io_uring_sqe *shard_sqe(struct shard *s, struct io_op *op)
{
	struct io_uring_sqe *sqe = io_ring_get_sqe(s->io);

	io_op_attach(sqe, op);
	s->io_inflight++;
	return sqe;
}

struct io_uring_sqe *shard_write_chain(struct shard *s, struct io_op *write_op,
				       struct io_op *sync_op, int fd, const void *buf,
				       size_t len, uint64_t offset, unsigned extra)
{
	struct io_uring_sqe *sqe;

	io_ring_reserve(s->io, (sync_op ? 2 : 1) + extra);
	sqe = shard_sqe(s, write_op);
	io_uring_prep_write(sqe, fd, buf, (unsigned)len, offset);
	if (!sync_op)
		return sqe;
	sqe->flags |= IOSQE_IO_LINK;
	sqe = shard_sqe(s, sync_op);
	io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
	return sqe;
}

void shard_op_get(struct shard *s)
{
	s->io_inflight++;
}

void shard_op_put(struct shard *s)
{
	s->io_inflight--;
}

static void misc_done(struct io_op *op, int res, unsigned flags)
{
	struct shard *s = op->data;

	shard_op_put(s);
	if (res < 0)
		log_warn("shard %u: close/unlink failed: %s", s->id, strerror(-res));
}

int shard_replay_record(void *arg, const struct wal_record *rec)
{
	struct shard *s = arg;
	struct shard_result res;
	struct command c;
	int rv;

	if (rec->index <= s->manifest.flushed_index)
		return 0; /* already in an SSTable */
	rv = command_decode(rec->payload, rec->payload_len, &c);
	if (rv)
		return rv;
	rv = shard_exec(s, &c, NULL, &res);
	if (rv == 0) {
		s->stats.replayed++;
		s->applied_index = rec->index;
		s->mem->last_index = rec->index;
	}
	return rv;
}

static void grow_done(struct io_op *op, int res, unsigned flags);
static void sync_done(struct io_op *op, int res, unsigned flags);
static void switch_done(struct io_op *op, int res, unsigned flags);

void shard_ops_init(struct shard *s)
{
	s->misc_op.done = misc_done;
	s->misc_op.data = s;
	s->grow_op.done = grow_done;
	s->grow_op.data = s;
	s->sync_op.done = sync_done;
	s->sync_op.data = s;
	for (int i = 0; i < 3; i++) {
		s->switch_op[i].done = switch_done;
		s->switch_op[i].data = s;
	}
}

void shard_seal_memtable(struct shard *s, struct lsm_mem *fresh)
{
	s->imm = s->mem;
	/* Both modes seal only with nothing queued unapplied (the WAL switch
	 * waits for both batches), so this is the memtable's last record. */
	s->imm->last_index = s->applied_index;
	s->imm_installed = false;
	s->mem = fresh;
	s->gen++;
	shard_budget_sync(s); /* its bytes now count as flushing */
	shard_job_schedule_flush(s);
}

uint32_t shard_id(const struct shard *s)
{
	return s->id;
}

void shard_get_stats(const struct shard *s, struct shard_stats *out)
{
	*out = s->stats;
}

void shard_level_files(const struct shard *s, unsigned counts[], unsigned nlevels)
{
	for (unsigned l = 0; l < nlevels; l++)
		counts[l] = l < MANIFEST_LEVELS ? (unsigned)s->manifest.levels[l].count : 0;
}

bool shard_disk_full(const struct shard *s)
{
	return s->disk_full;
}
static void start_switch(struct shard *s)
{
	s->switching = true;
	s->switch_stage = 0;
}

/*
 * Moves `w` into the pending batch: 0; QUEUE_STALL (it must wait: memtable
 * switch, table lookup); or an error for it (nothing queued).
 */
static int try_queue(struct shard *s, struct shard_waiter *w)
{
	const struct command *cmd = &w->cmd;
	struct wal_batch *b = s->pending;
	size_t payload = command_encoded_size(cmd);
	size_t size = wal_record_size((uint32_t)payload);
	size_t cost;
	uint8_t *rec;
	int rv;

	if (s->failed)
		return -EIO;
	if (shard_writes_refused(s))
		return RKV_ECORRUPT; /* a damaged table holds flushes (shard_damage.c) */
	if (s->switching)
		return QUEUE_STALL;
	if (shard_needs_prior(w)) {
		rv = shard_prior_resolve(s, w);
		if (rv)
			return rv;
	}
	cost = shard_exec_cost(s, w);
	if (shard_mem_room(s) < s->reserved + cost) {
		shard_prior_release(s, w);
		if (s->reserved == 0 && memtable_count(s->mem->mt) == 0)
			return RKV_EFULL; /* larger than a whole memtable */
		if (s->imm && s->disk_full)
			return RKV_EFULL;
		if (!s->imm)
			start_switch(s);
		return QUEUE_STALL;
	}
	if (s->wal_offset + (s->inflight ? s->inflight->len : 0) + b->len + size >
	    s->wal_map.len) {
		/* The segment's mapping is full (rare: writes that change no
		 * memtable bytes, like refused PUT_NX): go on in a new one. */
		shard_prior_release(s, w);
		if (s->imm && s->disk_full)
			return RKV_EFULL;
		if (!s->imm)
			start_switch(s);
		return QUEUE_STALL;
	}
	if (batch_reserve(b, size)) {
		shard_prior_release(s, w);
		return -ENOMEM;
	}
	rec = b->buf + b->len;
	command_encode(cmd, rec + WAL_RECORD_HEADER_SIZE);
	wal_record_finish(rec, s->next_index, 0, (uint32_t)payload);
	if (b->count == 0)
		b->first_index = s->next_index;
	s->next_index++;
	b->len += size;
	b->count++;
	w->reserved = cost;
	b->reserved += cost;
	s->reserved += cost;
	/* APPEND, SETRANGE, SETBIT: what they may add to a value. */
	b->appended += command_growth(cmd);
	s->appended += command_growth(cmd);
	w->next = NULL;
	if (b->tail)
		b->tail->next = w;
	else
		b->head = w;
	b->tail = w;
	return 0;
}

/* Removes the head of the stall queue, whose successor was `next` (its own
 * link may already serve a batch list). */
static void stall_pop(struct shard *s, struct shard_waiter *next)
{
	struct shard_waiter *w = s->stall_head;

	s->stall_head = next;
	if (!s->stall_head)
		s->stall_tail = NULL;
	s->stall_bytes -= w->stall_bytes;
}

void shard_stall_drain(struct shard *s)
{
	if (s->draining) {
		s->drain_again = true;
		return;
	}
	s->draining = true;
	do {
		struct shard_waiter *w;

		s->drain_again = false;
		while ((w = s->stall_head) != NULL) {
			struct shard_waiter *next = w->next;
			int rv = try_queue(s, w);

			if (rv == QUEUE_STALL)
				break;
			stall_pop(s, next);
			if (rv) {
				shard_prior_release(s, w);
				w->done(w, rv, NULL);
			}
		}
	} while (s->drain_again);
	s->draining = false;
}

void shard_resume(struct shard *s)
{
	if (s->replicated)
		shard_apply_drain(s);
	else
		shard_stall_drain(s);
}

int shard_write(struct shard *s, const struct command *cmd, struct shard_waiter *w)
{
	size_t payload = command_encoded_size(cmd);
	int rv;

	if (s->replicated || cmd->op == COMMAND_FLUSH)
		return RKV_EINVAL; /* FLUSH: replicated shards only (shard_drop.c) */
	if (s->failed)
		return -EIO;
	if (payload > WAL_MAX_PAYLOAD)
		return RKV_ETOOLARGE;
	w->cmd = *cmd;
	w->next = NULL;
	w->prior_state = SHARD_PRIOR_UNKNOWN;
	w->prior_pin = NULL;
	w->prior = NULL;
	w->prior_len = 0;
	w->warming = false;
	w->warm_done = false;
	if (!s->stall_head) {
		rv = try_queue(s, w);
		if (rv != QUEUE_STALL)
			return rv;
	}
	w->stall_bytes = payload + sizeof *w;
	if (s->stall_bytes + w->stall_bytes > s->stall_limit ||
	    (s->disk_full && s->imm)) {
		/* A warm lookup in flight still points at w: let it finish. */
		if (w->warming) {
			w->stall_bytes = 0;
		} else {
			shard_prior_release(s, w);
			return RKV_EFULL;
		}
	}
	s->stats.stalls++;
	s->stall_bytes += w->stall_bytes;
	if (s->stall_tail)
		s->stall_tail->next = w;
	else
		s->stall_head = w;
	s->stall_tail = w;
	return 0;
}

/*
 * Makes the segment's file at least `need` bytes long, and wal_step beyond
 * unless the last attempt failed, with one FALLOCATE through the ring;
 * nothing if one is in flight. grow_done submits a batch that waited.
 */
static void wal_grow(struct shard *s, uint64_t need)
{
	struct io_uring_sqe *sqe;
	uint64_t size;

	if (s->grow_inflight)
		return;
	size = wal_map_grow_target(&s->wal_map, need, s->grow_failed ? 0 : s->wal_step,
				   WAL_MAP_RELEASE_CHUNK);
	if (size <= s->wal_map.alloc)
		return;
	s->grow_inflight = true;
	s->grow_size = size;
	sqe = shard_sqe(s, &s->grow_op);
	io_uring_prep_fallocate(sqe, s->wal_fd, 0, s->wal_map.alloc, size - s->wal_map.alloc);
}

/*
 * Stores the pending batch into the mapped segment and makes it durable:
 * one FSYNC (datasync) through the ring, or, in the benchmark-only sync-off
 * mode, a NOP, so a batch always completes through the same callback and
 * never inside the call that submitted it.
 */
static void submit_batch(struct shard *s)
{
	struct wal_batch *b = s->pending;
	uint64_t end = s->wal_offset + b->len;
	struct io_uring_sqe *sqe;

	if (end > s->wal_map.alloc) {
		wal_grow(s, end);
		return;
	}
	wal_map_store(&s->wal_map, s->wal_offset, b->buf, b->len);
	s->inflight = b;
	s->pending = b == &s->batches[0] ? &s->batches[1] : &s->batches[0];
	s->sync_res = 0;
	sqe = shard_sqe(s, &s->sync_op);
	if (s->wal_sync_off)
		io_uring_prep_nop(sqe);
	else
		io_uring_prep_fsync(sqe, s->wal_fd, IORING_FSYNC_DATASYNC);
	/* Keep wal_step preallocated ahead, so writers rarely wait for it. */
	if (!s->grow_failed && s->wal_map.alloc - end < s->wal_step / 2)
		wal_grow(s, end);
}

/* Fails every stalled write with `rv`. */
static void fail_stalled(struct shard *s, int rv)
{
	struct shard_waiter *w;

	while ((w = s->stall_head) != NULL) {
		if (w->warming)
			break; /* its lookup still points at it; failed when it lands */
		stall_pop(s, w->next);
		shard_prior_release(s, w);
		w->done(w, rv, NULL);
	}
}

static void switch_fail(struct shard *s, int err)
{
	log_every(LOG_ERROR, 10000, "shard %u: creating WAL segment %" PRIu64 " failed: %s", s->id,
		  s->next_index, strerror(-err));
	s->switching = false;
	if (s->switch_fd >= 0) {
		char name[64];

		close(s->switch_fd);
		snprintf(name, sizeof name, "wal-%020" PRIu64 ".log", s->next_index);
		unlinkat(s->dir_fd, name, 0);
		s->switch_fd = -1;
	}
	fail_stalled(s, err == -ENOSPC ? RKV_EFULL : -EIO);
}

static void switch_step(struct shard *s)
{
	struct io_uring_sqe *sqe;
	char name[64];

	if (s->switch_stage != 0 || s->inflight || s->pending->count > 0 || s->grow_inflight)
		return;
	s->switch_stage = 1;
	s->switch_fd = -1;
	s->switch_cqes = 1;
	snprintf(name, sizeof name, "wal-%020" PRIu64 ".log", s->next_index);
	sqe = shard_sqe(s, &s->switch_op[0]);
	/* The name is copied by the kernel when the SQE is submitted. */
	io_uring_prep_openat(sqe, s->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			     0644);
	io_uring_submit(&s->io->ring);
}

static void switch_complete(struct shard *s)
{
	struct lsm_mem *fresh = lsm_mem_new_sized(s->memtable_size, memtable_count(s->mem->mt));
	struct io_uring_sqe *sqe;
	struct wal_map map;
	int rv;

	rv = wal_map_open(&map, s->switch_fd, s->wal_map_min);
	if (rv) {
		lsm_mem_unref(fresh);
		switch_fail(s, rv);
		return;
	}
	if (!fresh || shard_add_segment(s, s->next_index) != 0) {
		wal_map_close(&map);
		lsm_mem_unref(fresh);
		switch_fail(s, -ENOMEM);
		return;
	}
	wal_map_close(&s->wal_map);
	s->wal_map = map;
	s->grow_failed = false;
	sqe = shard_sqe(s, &s->misc_op);
	io_uring_prep_close(sqe, s->wal_fd);
	s->wal_fd = s->switch_fd;
	s->switch_fd = -1;
	s->wal_offset = WAL_SEGMENT_HEADER_SIZE;
	s->switching = false;
	wal_grow(s, s->wal_offset);
	shard_seal_memtable(s, fresh);
	shard_stall_drain(s);
}

static void switch_done(struct io_op *op, int res, unsigned flags)
{
	struct shard *s = op->data;
	struct io_uring_sqe *sqe;
	int i = (int)(op - s->switch_op);

	shard_op_put(s);
	s->switch_res[i] = res;
	if (--s->switch_cqes > 0)
		return;
	if (s->switch_stage == 1) {
		if (res < 0) {
			switch_fail(s, res);
			return;
		}
		s->switch_fd = res;
		if (s->closing) {
			switch_fail(s, -ESHUTDOWN);
			return;
		}
		s->switch_stage = 2;
		s->switch_cqes = 3;
		wal_segment_header_encode(s->switch_header);
		/* header, its fsync, the directory's fsync: one chain */
		sqe = shard_write_chain(s, &s->switch_op[0], &s->switch_op[1], s->switch_fd,
					s->switch_header, WAL_SEGMENT_HEADER_SIZE, 0, 1);
		sqe->flags |= IOSQE_IO_LINK;
		sqe = shard_sqe(s, &s->switch_op[2]);
		io_uring_prep_fsync(sqe, s->dir_fd, 0);
		return;
	}
	if (s->switch_res[0] != WAL_SEGMENT_HEADER_SIZE || s->switch_res[1] < 0 ||
	    s->switch_res[2] < 0) {
		switch_fail(s, s->switch_res[0] < 0 ? s->switch_res[0] :
			       s->switch_res[1] < 0 ? s->switch_res[1] :
			       s->switch_res[2] < 0 ? s->switch_res[2] : -ENOSPC);
		return;
	}
	switch_complete(s);
}

void shard_flush(struct shard *s)
{
	if (s->closing)
		return;
	if (s->replicated) {
		/* Resumes a head that waited for memory (the other waits
		 * resume from their own completions). */
		if (s->apply.count > 0 && s->apply.waiting_room && !s->imm)
			shard_apply_drain(s);
		shard_jobs_step(s);
		return;
	}
	if (s->stall_head)
		shard_stall_drain(s);
	if (!s->inflight && s->pending->count > 0)
		submit_batch(s);
	if (s->switching)
		switch_step(s);
	shard_jobs_step(s);
}

uint64_t shard_live_keys(const struct shard *s)
{
	int64_t n = s->mem->live_delta;

	if (s->imm)
		n += s->imm->live_delta;
	if (s->version) {
		for (unsigned l = 0; l < MANIFEST_LEVELS; l++)
			for (size_t i = 0; i < s->version->count[l]; i++) {
				const struct sstable_meta *m = &s->version->files[l][i]->meta;

				n += (int64_t)m->entry_count - 2 * (int64_t)m->tombstone_count;
			}
	}
	return n > 0 ? (uint64_t)n : 0;
}

bool shard_live_keys_exact(const struct shard *s)
{
	if (s->version)
		for (unsigned l = 0; l < MANIFEST_LEVELS; l++)
			if (s->version->count[l] > 0)
				return false;
	return true;
}

void shard_memory(const struct shard *s, size_t *used, size_t *capacity)
{
	*used = memtable_used(s->mem->mt) + (s->imm ? memtable_used(s->imm->mt) : 0);
	*capacity = s->memtable_size;
}

void shard_budget_sync(struct shard *s)
{
	uint64_t now = 0, sealed = 0;

	if (!s->budget)
		return;
	if (!s->closing && s->mem) {
		sealed = s->imm ? memtable_used(s->imm->mt) : 0;
		now = memtable_used(s->mem->mt) + sealed;
	}
	s->budget->used = s->budget->used - s->budget_counted + now;
	s->budget_counted = now;
	s->budget->flushing = s->budget->flushing - s->budget_sealed + sealed;
	s->budget_sealed = sealed;
}

size_t shard_active_memtable(const struct shard *s)
{
	return s->mem ? memtable_used(s->mem->mt) : 0;
}

bool shard_sealable(const struct shard *s)
{
	return s->replicated && !s->closing && !s->imm && s->mem &&
	       memtable_count(s->mem->mt) > 0 && !shard_drop_waiting(s);
}

int shard_seal(struct shard *s)
{
	struct lsm_mem *fresh;

	if (!shard_sealable(s))
		return 0;
	fresh = lsm_mem_new(s->memtable_size);
	if (!fresh)
		return -ENOMEM;
	shard_seal_memtable(s, fresh);
	return 1;
}

bool shard_background_busy(const struct shard *s)
{
	if (!s->replicated)
		return true;
	return s->imm != NULL || (s->apply.count > 0 && s->apply.waiting_room) ||
	       !shard_jobs_idle(s) ||
	       shard_drop_waiting(s) || s->mrw_stage != 0 || s->ndamage_new > 0;
}

bool shard_idle(const struct shard *s)
{
	if (s->replicated)
		return s->apply.count == 0;
	return !s->inflight && s->pending->count == 0 && !s->stall_head && !s->switching;
}

/* Answers a detached list of waiters with `rv`. */
static void complete_waiters(struct shard *s, struct shard_waiter *w, int rv)
{
	while (w) {
		struct shard_waiter *next = w->next;

		shard_prior_release(s, w);
		w->done(w, rv, NULL);
		w = next;
	}
}

/* Applies a durable batch in index order and answers each waiter with what
 * its own command did. */
static void apply_batch(struct shard *s, struct wal_batch *b)
{
	struct shard_waiter *w = b->head;
	uint64_t index = b->first_index;
	size_t off = 0;

	while (off < b->len) {
		uint32_t payload = load_le32(b->buf + off);
		struct shard_result res;
		struct shard_waiter *next;
		struct command c;
		int rv;

		rv = command_decode(b->buf + off + WAL_RECORD_HEADER_SIZE, payload, &c);
		if (rv == 0)
			rv = shard_exec(s, &c, w, &res);
		/* We encoded these bytes and reserved their space ourselves. */
		if (rv)
			panic("shard %u: applying a durable record failed: %s",
			      s->id, rkv_strerror(rv));
		off += wal_record_size(payload);
		s->applied_index = index;
		s->mem->last_index = index;
		index++;
		/* Applied: its bytes are in the memtable now, not set aside, so
		 * a write queued from the callback below sees the true room. */
		s->reserved -= w->reserved;
		b->reserved -= w->reserved;
		s->appended -= command_growth(&c);
		b->appended -= command_growth(&c);
		next = w->next;
		if (!w->want_prior) {
			res.old_value = NULL;
			res.old_len = 0;
		}
		{
			/* old_value may point into the pinned block: release it
			 * after the callback, which may free w. */
			struct block_cache_handle *pin = w->prior_pin;

			w->prior_pin = NULL;
			w->done(w, 0, &res);
			if (pin)
				block_cache_release(s->cache, pin);
		}
		w = next;
	}
}

/* Fails every queued write with `rv` and forgets their indexes, so the next
 * record again follows the last durable one. */
static void fail_batches(struct shard *s, struct wal_batch *inflight, int rv)
{
	struct wal_batch *pending = s->pending;
	struct shard_waiter *failed_inflight = inflight ? inflight->head : NULL;
	struct shard_waiter *failed_pending = pending->head;

	/* Make the shard consistent before any callback runs: a callback may
	 * queue a new write at once, which must get the next free index, go
	 * into an empty batch, and be reserved from correct totals. */
	if (inflight) {
		s->next_index = inflight->first_index;
		s->reserved -= inflight->reserved;
		s->appended -= inflight->appended;
		batch_reset(inflight);
	} else if (pending->count > 0) {
		s->next_index = pending->first_index;
	}
	s->reserved -= pending->reserved;
	s->appended -= pending->appended;
	s->inflight = NULL;
	batch_reset(pending);
	complete_waiters(s, failed_inflight, rv);
	complete_waiters(s, failed_pending, rv);
}

/* Submits a batch that gathered meanwhile, or lets a switch go on. */
static void wal_continue(struct shard *s)
{
	if (s->closing || s->inflight)
		return;
	if (s->pending->count > 0)
		submit_batch(s);
	else if (s->switching)
		switch_step(s);
}

static void batch_finished(struct shard *s)
{
	struct wal_batch *b = s->inflight;

	if (s->sync_res == 0) {
		s->stats.writes += b->count;
		s->stats.batches++;
		s->stats.wal_bytes += b->len;
		apply_batch(s, b);
		assert(b->reserved == 0 && b->appended == 0);
		/* Only now: while the callbacks ran, wal_offset + inflight->len
		 * was where the next batch goes (try_queue counts it so). */
		s->wal_offset += b->len;
		s->inflight = NULL;
		batch_reset(b);
		shard_imm_maybe_drop(s);
		wal_map_release(&s->wal_map, s->wal_offset);
		/* Writes that gathered behind this batch go out at once. */
		wal_continue(s);
		return;
	}
	/* fdatasync failed: what the kernel kept is unknown, so stop taking
	 * writes until restart replays the WAL. */
	s->failed = s->sync_res != -ECANCELED ? -s->sync_res : EIO;
	log_error("shard %u: WAL fdatasync failed: %s; shard read-only until restart",
		  s->id, strerror(-s->sync_res));
	fail_batches(s, b, -EIO);
	fail_stalled(s, -EIO);
}

static void sync_done(struct io_op *op, int res, unsigned flags)
{
	struct shard *s = op->data;

	shard_op_put(s);
	s->sync_res = res;
	batch_finished(s);
}

static void grow_done(struct io_op *op, int res, unsigned flags)
{
	struct shard *s = op->data;
	bool exact = s->grow_failed;
	uint64_t need;

	shard_op_put(s);
	s->grow_inflight = false;
	if (res == 0) {
		wal_map_allocated(&s->wal_map, s->grow_size);
		s->grow_failed = false;
		wal_continue(s);
		return;
	}
	s->grow_failed = true;
	need = s->wal_offset + s->pending->len;
	if (s->closing || s->inflight || s->pending->count == 0 || need <= s->wal_map.alloc) {
		wal_continue(s);
		return; /* an early grow: retried, exactly, when a batch needs it */
	}
	if (!exact) {
		wal_grow(s, need); /* ask for just what this batch needs */
		return;
	}
	/* Nothing of the batch reached the file: fail its writes, keep serving;
	 * the next batch tries again and may find space. */
	/* Every batch retries on a full disk: one line per 10 s, not per batch. */
	log_every(LOG_ERROR, 10000, "shard %u: preallocating the WAL to %" PRIu64 " bytes failed: %s",
		  s->id, s->grow_size, strerror(-res));
	fail_batches(s, NULL, res == -ENOSPC ? RKV_EFULL : -EIO);
	wal_continue(s);
}

void shard_prefetch(const struct shard *s, const void *payload, size_t len, bool node)
{
	const uint8_t *key;
	uint32_t key_len;

	if (command_peek_key(payload, len, &key, &key_len))
		memtable_prefetch(s->mem->mt, key, key_len, node);
}
