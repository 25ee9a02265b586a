/*
 * Background work of one shard, in bounded slices on the core's ring: the
 * flush of the immutable memtable to an L0 SSTable, leveled compaction, the
 * manifest appends that make their results part of the tree, and the
 * deletion of WAL segments whose records are all in SSTables.
 *
 * A job is a small state machine advanced from shard_flush() (once per loop
 * iteration: at most one slice of about SHARD_SLICE_BYTES of output, or one
 * chunk read) and from its I/O completions; at most one I/O of a job is in
 * flight. Output tables are created with OPENAT, written slice by slice,
 * finished with a WRITE linked to an FSYNC, then the directory is synced and
 * one manifest record (add / delete files, next file number, flushed WAL
 * index) is appended and fdatasync'ed. Only then does the in-memory version
 * change, and only then may inputs go (compaction: unlinked once no reader
 * holds them) and WAL segments be deleted (flush).
 *
 * Failure (ENOSPC, EIO, a short write): the job's unfinished outputs are
 * closed and unlinked, the manifest is cut back to its last whole record
 * (a blocking ftruncate, on this error path only), and the job retries after
 * a back-off (IORING_OP_TIMEOUT, doubling from 100 ms to 5 s). The immutable
 * memtable stays, so nothing acknowledged is lost; meanwhile writes that need
 * a new memtable are answered RKV_EFULL ("disk full"). A corrupt compaction
 * input marks its table damaged: no compaction takes it again, and if the
 * one due needs it, level 0 grows only to a limit, where flushes are held
 * (shard_damage.c). Corruption with no table to name stops compaction.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/log.h"
#include "shard/shard_internal.h"
#include "shard/wal_format.h"
#include "shard/wal_recover.h"

enum io_kind {
	IO_OPEN = 1,
	IO_WRITE,
	IO_FINAL,      /* last write of an output, linked to its fsync */
	IO_READ,
	IO_DIRSYNC,
	IO_MANIFEST,   /* manifest record, linked to its fdatasync */
	IO_TIMER,
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t shard_wal_retention_point(const struct shard *s)
{
	/* Everything up to the flushed index is in SSTables. Raft will lower
	 * this to what lagging followers still need. */
	return s->manifest.flushed_index;
}

size_t shard_wal_droppable(const struct shard *s)
{
	uint64_t keep = shard_wal_retention_point(s);
	size_t drop = 0;

	/* A segment goes when its last record (the next segment's first index
	 * minus one) is kept elsewhere. The last segment is the one being
	 * appended to: never deleted. */
	while (drop + 1 < s->nsegments && s->segments[drop + 1] - 1 <= keep)
		drop++;
	return drop;
}

void shard_wal_forget(struct shard *s, size_t drop)
{
	if (drop == 0)
		return;
	s->stats.wal_deleted += drop;
	memmove(s->segments, s->segments + drop, (s->nsegments - drop) * sizeof *s->segments);
	s->nsegments -= drop;
}

void shard_wal_retain(struct shard *s)
{
	size_t drop = shard_wal_droppable(s);

	for (size_t i = 0; i < drop; i++) {
		char name[64];
		struct io_uring_sqe *sqe;

		snprintf(name, sizeof name, "wal-%020" PRIu64 ".log", s->segments[i]);
		sqe = shard_sqe(s, &s->misc_op);
		io_uring_prep_unlinkat(sqe, s->dir_fd, name, 0);
		io_uring_submit(&s->io->ring); /* the kernel copies the name here */
	}
	shard_wal_forget(s, drop);
}

void shard_imm_maybe_drop(struct shard *s)
{
	if (!s->imm || !s->imm_installed || s->applied_index < s->imm_drop_index)
		return;
	lsm_mem_unref(s->imm);
	s->imm = NULL;
	s->imm_installed = false;
	s->gen++;
	shard_budget_sync(s);
	/* Writes waiting for room can switch memtables now. */
	if (!s->closing)
		shard_resume(s);
}

static void job_io_done(struct io_op *op, int res, unsigned flags);

static void job_init(struct shard *s, struct bg_job *job, bool compaction)
{
	memset(job, 0, sizeof *job);
	job->compaction = compaction;
	job->op.done = job_io_done;
	job->op.data = s;
	job->op2.done = job_io_done;
	job->op2.data = s;
	job->timer_op.done = job_io_done;
	job->timer_op.data = s;
	job->out.fd = -1;
}

/*
 * The two jobs' state (about 2 KiB: table writers, merge, pick), made when
 * the first flush or compaction is due and kept until the shard closes: a
 * node holds thousands of replicas, most of them idle.
 */
static bool jobs_make(struct shard *s)
{
	struct compaction pick;

	if (s->jobs)
		return true;
	if (!(s->imm && !s->imm_installed && !shard_flush_held(s)) && s->ndamage_new == 0 &&
	    (shard_compaction_stopped(s) ||
	     !compaction_pick(&s->manifest, &s->compact_opt, &s->cursor, &pick)))
		return false;
	s->jobs = malloc(sizeof *s->jobs);
	if (!s->jobs) {
		if (!s->jobs_nomem)
			log_warn("shard %u: no memory to flush or compact; trying again", s->id);
		s->jobs_nomem = true;
		return false;
	}
	s->jobs_nomem = false;
	job_init(s, &s->jobs->flush, false);
	job_init(s, &s->jobs->compact, true);
	return true;
}

void shard_job_schedule_flush(struct shard *s)
{
	/* shard_jobs_step() starts it: the immutable memtable is the signal. */
	(void)s;
}

static void unlink_number(struct shard *s, uint64_t number)
{
	char name[64];
	struct io_uring_sqe *sqe;

	snprintf(name, sizeof name, "%06" PRIu64 ".sst", number);
	if (s->closing) {
		unlinkat(s->dir_fd, name, 0);
		return;
	}
	sqe = shard_sqe(s, &s->misc_op);
	io_uring_prep_unlinkat(sqe, s->dir_fd, name, 0);
	io_uring_submit(&s->io->ring);
}

/* Drops the job's unfinished work; `unlink_outputs`: its files too. */
static void job_reset(struct shard *s, struct bg_job *job, bool unlink_outputs)
{
	for (size_t i = 0; i < job->noutputs; i++) {
		struct lsm_table *t = job->out_tables[i];

		if (!t)
			continue;
		t->obsolete = unlink_outputs;
		if (unlink_outputs)
			lsm_table_destroy(s, t);
	}
	job->noutputs = 0;
	if (job->out.fd >= 0) {
		close(job->out.fd);
		unlink_number(s, job->out.number);
		job->out.fd = -1;
	}
	sstable_builder_destroy(&job->out.b);
	memset(&job->out.b, 0, sizeof job->out.b);
	if (job->out.have_meta)
		sstable_meta_free(&job->out.meta);
	job->out.have_meta = false;
	job->out.finished = false;
	for (size_t i = 0; i < job->nsrc; i++) {
		sstable_iter_destroy(&job->src[i].it);
		free(job->src[i].chunk);
	}
	free(job->src);
	job->src = NULL;
	job->nsrc = 0;
	if (job->merge_live)
		merge_destroy(&job->merge);
	job->merge_live = false;
	job->merge_end = false;
	job->have_held = false;
	if (job->version)
		lsm_version_unref(s, job->version);
	job->version = NULL;
	free(job->deleted);
	job->deleted = NULL;
	job->ndeleted = 0;
	job->mem = NULL;
	job->mem_done = false;
	job->edit_submitted = false;
	job->trivial = false;
	job->marks_only = false;
	job->corrupt_named = false;
	job->nmarks = 0;
	job->state = JOB_IDLE;
}

void shard_jobs_destroy(struct shard *s)
{
	struct bg_job *jobs[2];

	if (!s->jobs)
		return;
	jobs[0] = &s->jobs->flush;
	jobs[1] = &s->jobs->compact;
	for (int i = 0; i < 2; i++) {
		struct bg_job *job = jobs[i];

		/* Finished outputs not in the manifest go at the next start. */
		for (size_t j = 0; j < job->noutputs; j++) {
			if (job->out_tables[j]) {
				close(job->out_tables[j]->fd);
				sstable_meta_free(&job->out_tables[j]->meta);
				free(job->out_tables[j]);
			}
		}
		job->noutputs = 0;
		if (job->out.fd >= 0)
			close(job->out.fd);
		job->out.fd = -1;
		job_reset(s, job, false);
		sstable_buf_free(&job->out.buf);
		free(job->outputs);
		free(job->out_tables);
		free(job->edit_buf);
	}
}

static void job_fail(struct shard *s, struct bg_job *job, int err, const char *what)
{
	struct io_uring_sqe *sqe;

	if (err == RKV_ECORRUPT)
		log_error("shard %u: %s failed: corrupt input; not retried", s->id, what);
	else
		log_error("shard %u: %s failed: %s; retrying in %u ms", s->id, what,
			  strerror(-err),
			  job->backoff_ms ? job->backoff_ms * 2 : SHARD_BACKOFF_MIN_MS);
	s->stats.bg_errors++;
	if (err == RKV_ECORRUPT && !job->corrupt_named) {
		/* Keys out of order in a merge, or our own output unreadable:
		 * no table to hold apart, so compaction stops. (A damaged input
		 * was marked by lsm_report_corrupt: picks that take it are
		 * held, shard_damage_in_pick.) */
		s->compaction_broken = true;
		log_error("shard %u: compaction stopped: corrupt data with no table to name", s->id);
	}
	job_reset(s, job, true);
	if (err == RKV_ECORRUPT)
		return;
	if (err == -ENOSPC) {
		s->disk_full = true;
		/* Writes waiting for a memtable now get "disk full". */
		shard_resume(s);
	}
	job->backoff_ms = job->backoff_ms ? job->backoff_ms * 2 : SHARD_BACKOFF_MIN_MS;
	if (job->backoff_ms > SHARD_BACKOFF_MAX_MS)
		job->backoff_ms = SHARD_BACKOFF_MAX_MS;
	job->ts.tv_sec = job->backoff_ms / 1000;
	job->ts.tv_nsec = (long long)(job->backoff_ms % 1000) * 1000000;
	job->state = JOB_BACKOFF;
	job->io_kind = IO_TIMER;
	job->pending_cqes = 1;
	sqe = shard_sqe(s, &job->timer_op);
	io_uring_prep_timeout(sqe, &job->ts, 0, 0);
}

static void job_open_output(struct shard *s, struct bg_job *job)
{
	struct io_uring_sqe *sqe;
	char name[64];

	job->out.number = s->next_file++;
	snprintf(name, sizeof name, "%06" PRIu64 ".sst", job->out.number);
	job->state = JOB_OPEN;
	job->io_kind = IO_OPEN;
	job->pending_cqes = 1;
	sqe = shard_sqe(s, &job->op);
	io_uring_prep_openat(sqe, s->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	io_uring_submit(&s->io->ring); /* the kernel copies the name here */
}

/* Writes what the builder finished; `final` ends the output (with fsync). */
static int job_write(struct shard *s, struct bg_job *job, bool final)
{
	struct table_writer *out = &job->out;
	uint64_t offset;

	sstable_builder_take(&out->b, &out->buf);
	offset = sstable_builder_taken(&out->b) - out->buf.len;
	if (final) {
		const char *why = NULL;
		size_t pos;
		int rv;

		out->file_size = sstable_builder_file_size(&out->b);
		rv = sstable_footer_decode(&out->footer, out->buf.data, out->buf.len,
					   out->file_size, &why);
		if (rv == 0 && out->footer.meta_offset < out->file_size - out->buf.len)
			rv = RKV_ECORRUPT;
		if (rv == 0) {
			pos = out->footer.meta_offset - (out->file_size - out->buf.len);
			rv = sstable_meta_load(&out->meta, &out->footer, out->buf.data + pos,
					       out->footer.meta_len, &why);
		}
		if (rv)
			panic("shard %u: a table we built does not load: %s", s->id,
			      why ? why : rkv_strerror(rv));
		out->have_meta = true;
	}
	job->state = JOB_IO;
	job->io_kind = final ? IO_FINAL : IO_WRITE;
	job->pending_cqes = final ? 2 : 1;
	job->res = job->res2 = 0;
	shard_write_chain(s, &job->op, final ? &job->op2 : NULL, out->fd, out->buf.data,
			  out->buf.len, offset, 0);
	if (job->compaction)
		s->stats.compact_written += out->buf.len;
	return 0;
}

static int grow_outputs(struct bg_job *job)
{
	if (job->noutputs < job->outputs_cap)
		return 0;
	size_t cap = job->outputs_cap ? job->outputs_cap * 2 : 4;
	struct manifest_file *o = realloc(job->outputs, cap * sizeof *o);

	if (!o)
		return -ENOMEM;
	job->outputs = o;
	struct lsm_table **t = realloc(job->out_tables, cap * sizeof *t);

	if (!t)
		return -ENOMEM;
	job->out_tables = t;
	job->outputs_cap = cap;
	return 0;
}

/* The manifest entry of table `t` at `level`; keys point into t's metadata. */
static void manifest_file_of(struct manifest_file *mf, unsigned level,
			     const struct lsm_table *t)
{
	mf->level = level;
	mf->number = t->number;
	mf->size = t->size;
	mf->entry_count = t->meta.entry_count;
	mf->smallest = t->meta.smallest;
	mf->smallest_len = t->meta.smallest_len;
	mf->largest = t->meta.largest;
	mf->largest_len = t->meta.largest_len;
	mf->damaged = false;
}

/* The output just written and synced becomes a table of the job. */
static int job_output_done(struct shard *s, struct bg_job *job)
{
	struct table_writer *out = &job->out;
	struct manifest_file *mf;
	struct lsm_table *t;

	if (grow_outputs(job))
		return -ENOMEM;
	t = lsm_table_new(out->number, out->file_size, out->fd, &out->meta);
	if (!t)
		return -ENOMEM;
	out->fd = -1;
	out->have_meta = false;
	mf = &job->outputs[job->noutputs];
	manifest_file_of(mf, job->compaction ? job->pick.output_level : 0, t);
	job->out_tables[job->noutputs++] = t;
	sstable_builder_destroy(&out->b);
	memset(&out->b, 0, sizeof out->b);
	return 0;
}

static void job_dirsync(struct shard *s, struct bg_job *job)
{
	struct io_uring_sqe *sqe;

	job->state = JOB_SYNC;
	job->io_kind = IO_DIRSYNC;
	job->pending_cqes = 1;
	sqe = shard_sqe(s, &job->op);
	io_uring_prep_fsync(sqe, s->dir_fd, 0);
}

/* The manifest edit a finished job records: its outputs in, its inputs out,
 * and for a flush the WAL index now covered by tables. */
static void job_edit(const struct shard *s, const struct bg_job *job, struct manifest_edit *e)
{
	e->has_next_file_number = true;
	e->next_file_number = s->next_file;
	if (!job->compaction) {
		e->has_flushed_index = true;
		e->flushed_index = job->mem->last_index;
	}
	e->deleted = job->deleted;
	e->ndeleted = job->ndeleted;
	e->added = job->outputs;
	e->nadded = job->noutputs;
	e->damaged = s->damage_new;
	e->ndamaged = job->nmarks;
}

/* Encodes the job's manifest record and appends it when the manifest is free. */
static int job_manifest(struct shard *s, struct bg_job *job)
{
	struct manifest_edit e = { 0 };
	size_t size;
	int rv;

	job->state = JOB_MANIFEST;
	if (s->manifest_busy)
		return 0; /* the next step tries again */
	if (job->marks_only) {
		/* The manifest is ours from here to the install, so the marks
		 * taken now still name tables of the version then. */
		job->nmarks = shard_damage_prepare(s);
		if (job->nmarks == 0) {
			job_reset(s, job, false);
			return 0;
		}
	}
	rv = shard_manifest_fd(s);
	if (rv)
		return rv;
	job_edit(s, job, &e);
	size = manifest_edit_size(&e);
	free(job->edit_buf);
	job->edit_buf = malloc(size);
	if (!job->edit_buf)
		return -ENOMEM;
	job->edit_len = manifest_edit_encode(&e, job->edit_buf);
	s->manifest_busy = true;
	job->edit_submitted = true;
	job->io_kind = IO_MANIFEST;
	job->pending_cqes = 2;
	job->res = job->res2 = 0;
	shard_write_chain(s, &job->op, &job->op2, s->manifest_fd, job->edit_buf,
			  job->edit_len, s->manifest_len, 0);
	return 0;
}

/* The manifest record is durable: the tree changes now. */
static int job_install(struct shard *s, struct bg_job *job)
{
	struct manifest_edit e = { 0 };
	const char *why = NULL;
	int rv;

	job_edit(s, job, &e);
	s->manifest_len += job->edit_len;
	rv = manifest_version_apply(&s->manifest, &e, &why);
	if (rv)
		panic("shard %u: our own manifest edit does not apply: %s", s->id,
		      why ? why : rkv_strerror(rv));
	if (job->compaction && job->version) {
		/* The inputs left the manifest: unlinked once nobody reads them. */
		for (int k = 0; k < 2; k++) {
			const struct compaction_input *in = &job->pick.inputs[k];

			if (job->trivial)
				break;
			for (size_t i = 0; i < in->count; i++)
				job->version->files[in->level][in->first + i]->obsolete = true;
		}
	}
	rv = lsm_version_install(s, job->trivial ? NULL : job->out_tables,
				 job->trivial ? 0 : job->noutputs);
	if (rv)
		panic("shard %u: out of memory installing a version", s->id);
	shard_damage_recorded(s, job->nmarks);
	job->noutputs = 0; /* the tables belong to the shard now */
	s->gen++;
	job->backoff_ms = 0;
	s->disk_full = false;
	if (!job->compaction) {
		s->stats.flushes++;
		s->imm_installed = true;
		/* WAL mode: records queued before now settled their current
		 * value against the memtables, so the immutable one stays until
		 * they are applied. Replicated mode settles and applies in one
		 * step: nothing waits on it. */
		s->imm_drop_index = s->replicated ? s->applied_index : s->next_index - 1;
		log_debug("shard %u: flushed %" PRIu64 " records up to index %" PRIu64
			  " in %" PRIu64 " us", s->id, memtable_count(job->mem->mt),
			  job->mem->last_index, now_us() - job->started_us);
		job_reset(s, job, false);
		shard_wal_retain(s);
		shard_apply_flushed(s);
		shard_imm_maybe_drop(s);
	} else {
		if (!job->marks_only) {
			s->stats.compactions++;
			s->stats.compact_us += now_us() - job->started_us;
		}
		job_reset(s, job, false);
	}
	return 0;
}

/* ---- flush ---- */

static void flush_start(struct shard *s, struct bg_job *job)
{
	job->mem = s->imm;
	job->mem_done = false;
	job->started_us = now_us();
	memtable_iter_first(&job->mit, job->mem->mt);
	if (memtable_count(job->mem->mt) == 0) {
		/* Nothing to write: only the flushed index moves. */
		int rv = job_manifest(s, job);

		if (rv)
			job_fail(s, job, rv, "flush");
		return;
	}
	job_open_output(s, job);
}

static void flush_slice(struct shard *s, struct bg_job *job)
{
	struct table_writer *out = &job->out;
	int rv;

	while (!job->mem_done && sstable_builder_ready(&out->b) < SHARD_SLICE_BYTES) {
		size_t klen, vlen;
		const void *key, *value;
		bool tomb;

		if (!memtable_iter_valid(&job->mit)) {
			job->mem_done = true;
			break;
		}
		key = memtable_iter_key(&job->mit, &klen);
		value = memtable_iter_value(&job->mit, &vlen);
		tomb = memtable_iter_is_tombstone(&job->mit);
		rv = sstable_builder_add(&out->b, key, klen, tomb ? NULL : value, tomb ? 0 : vlen,
					 memtable_iter_kind(&job->mit));
		if (rv) {
			job_fail(s, job, rv, "flush");
			return;
		}
		memtable_iter_next(&job->mit);
	}
	if (job->mem_done) {
		rv = sstable_builder_finish(&out->b);
		if (rv) {
			job_fail(s, job, rv, "flush");
			return;
		}
		job_write(s, job, true);
		return;
	}
	job_write(s, job, false);
}

/* ---- compaction ---- */

static void compact_report(struct shard *s, struct compact_src *src)
{
	lsm_report_corrupt(s, src->table->number, src->it.need.offset, src->it.reason);
}

static int csrc_drive(struct shard *s, struct bg_job *job, size_t slot,
		      enum sstable_iter_state st)
{
	struct compact_src *src = &job->src[slot];

	for (;;) {
		switch (st) {
		case SSTABLE_ITER_ENTRY: {
			const struct sstable_block_iter *b = &src->it.block;
			bool tomb = b->kind == SSTABLE_TOMBSTONE;

			merge_feed(&job->merge, slot, b->key, b->key_len, tomb ? NULL : b->value,
				   tomb ? 0 : b->value_len, b->kind);
			return 0;
		}
		case SSTABLE_ITER_END:
			merge_feed_end(&job->merge, slot);
			return 0;
		case SSTABLE_ITER_ERROR:
			if (src->it.error == RKV_ECORRUPT) {
				compact_report(s, src);
				job->corrupt_named = true;
			}
			return src->it.error;
		case SSTABLE_ITER_NEED_BLOCK: {
			struct sstable_handle h = src->it.need;
			uint64_t end = src->table->meta.block_start[src->table->meta.nblocks];
			struct io_uring_sqe *sqe;
			size_t len;

			if (src->chunk && h.offset >= src->chunk_off &&
			    h.offset + h.len <= src->chunk_off + src->chunk_len) {
				st = sstable_iter_feed(&src->it, src->chunk + (h.offset - src->chunk_off),
						       h.len, true);
				continue;
			}
			len = SHARD_READ_CHUNK;
			if (h.len > len)
				len = h.len;
			if (h.offset + len > end)
				len = end - h.offset > h.len ? (size_t)(end - h.offset) : h.len;
			if (!src->chunk || len > SHARD_READ_CHUNK) {
				uint8_t *c = realloc(src->chunk,
						     len > SHARD_READ_CHUNK ? len : SHARD_READ_CHUNK);

				if (!c)
					return -ENOMEM;
				src->chunk = c;
			}
			src->chunk_off = h.offset;
			src->chunk_len = 0;
			job->need_slot = slot;
			job->state = JOB_IO;
			job->io_kind = IO_READ;
			job->pending_cqes = 1;
			job->res2 = (int)h.len; /* the least the read must return */
			sqe = shard_sqe(s, &job->op);
			io_uring_prep_read(sqe, src->table->fd, src->chunk, (unsigned)len, h.offset);
			return SHARD_READ_PENDING;
		}
		}
	}
}

static bool compact_pick(struct shard *s, struct bg_job *job)
{
	struct compaction *c = &job->pick;
	size_t n = 0;
	uint64_t *ages = NULL;

	if (!compaction_pick(&s->manifest, &s->compact_opt, &s->cursor, c)) {
		s->compaction_blocked = false;
		return false;
	}
	if (shard_damage_in_pick(s, c)) {
		/* Held (shard_damage.c). Past level 0 the cursor moves on, so
		 * the next pick tries the level's next range. */
		s->compaction_blocked = true;
		if (c->level >= 1)
			(void)compaction_cursor_advance(&s->cursor, &s->manifest, c);
		return false;
	}
	s->compaction_blocked = false;
	if (compaction_cursor_advance(&s->cursor, &s->manifest, c) != 0)
		return false;
	job->version = lsm_version_ref(s->version);
	job->started_us = now_us();
	job->ndeleted = c->inputs[0].count + c->inputs[1].count;
	job->deleted = calloc(job->ndeleted, sizeof *job->deleted);
	if (!job->deleted)
		goto err;
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < c->inputs[k].count; i++) {
			job->deleted[n].level = c->inputs[k].level;
			job->deleted[n++].number =
				job->version->files[c->inputs[k].level][c->inputs[k].first + i]->number;
		}
	if (c->trivial_move) {
		struct lsm_table *t = job->version->files[c->level][c->inputs[0].first];
		struct manifest_file *mf;

		if (grow_outputs(job))
			goto err;
		mf = &job->outputs[0];
		manifest_file_of(mf, c->output_level, t);
		job->out_tables[0] = NULL; /* already open and listed */
		job->noutputs = 1;
		job->trivial = true;
		return true;
	}
	job->nsrc = job->ndeleted;
	job->src = calloc(job->nsrc, sizeof *job->src);
	ages = calloc(job->nsrc, sizeof *ages);
	if (!job->src || !ages)
		goto err;
	n = 0;
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < c->inputs[k].count; i++, n++) {
			struct lsm_table *t =
				job->version->files[c->inputs[k].level][c->inputs[k].first + i];

			job->src[n].table = t;
			sstable_iter_init(&job->src[n].it, &t->meta);
			/* Upper level newer than the output level; L0 newest first. */
			ages[n] = (k == 0 ? 1000000u : 1000u) - i;
		}
	if (merge_init(&job->merge, ages, job->nsrc, c->drop_tombstones) != 0)
		goto err;
	job->merge_live = true;
	free(ages);
	return true;

err:
	free(ages);
	job_reset(s, job, false);
	return false;
}

static void compact_slice(struct shard *s, struct bg_job *job)
{
	struct table_writer *out = &job->out;
	int rv;

	for (;;) {
		struct merge_entry e;
		size_t slot;

		if (job->have_held) {
			e = job->held;
			job->have_held = false;
		} else {
			switch (merge_next(&job->merge, &e, &slot)) {
			case MERGE_NEED: {
				struct compact_src *src = &job->src[slot];
				enum sstable_iter_state st;

				if (!src->started) {
					src->started = true;
					st = sstable_iter_first(&src->it);
				} else {
					st = sstable_iter_next(&src->it);
				}
				rv = csrc_drive(s, job, slot, st);
				if (rv == SHARD_READ_PENDING)
					return;
				if (rv) {
					job_fail(s, job, rv, "compaction");
					return;
				}
				continue;
			}
			case MERGE_END:
				job->merge_end = true;
				if (out->b.entry_count == 0) {
					/* Everything was dropped: no file. */
					if (out->fd >= 0) {
						close(out->fd);
						unlink_number(s, out->number);
						out->fd = -1;
					}
					sstable_builder_destroy(&out->b);
					memset(&out->b, 0, sizeof out->b);
					job_dirsync(s, job);
					return;
				}
				rv = sstable_builder_finish(&out->b);
				if (rv) {
					job_fail(s, job, rv, "compaction");
					return;
				}
				job_write(s, job, true);
				return;
			case MERGE_ERROR:
				job_fail(s, job, job->merge.error, "compaction");
				return;
			case MERGE_ENTRY:
				break;
			}
		}
		if (out->b.entry_count > 0 &&
		    sstable_builder_taken(&out->b) + sstable_builder_ready(&out->b) >=
			    s->table_size) {
			/* Rotate: this entry opens the next output. */
			job->held = e;
			job->have_held = true;
			rv = sstable_builder_finish(&out->b);
			if (rv) {
				job_fail(s, job, rv, "compaction");
				return;
			}
			job_write(s, job, true);
			return;
		}
		rv = sstable_builder_add(&out->b, e.key, e.key_len, e.value, e.value_len, e.kind);
		if (rv) {
			job_fail(s, job, rv, "compaction");
			return;
		}
		if (sstable_builder_ready(&out->b) >= SHARD_SLICE_BYTES) {
			job_write(s, job, false);
			return;
		}
	}
}

/* ---- completions and stepping ---- */

static void job_io_complete(struct shard *s, struct bg_job *job)
{
	const char *what = job->compaction ? "compaction" : "flush";
	int rv;

	switch (job->io_kind) {
	case IO_TIMER:
		job->state = JOB_IDLE;
		return;
	case IO_OPEN:
		if (job->res < 0) {
			job_fail(s, job, job->res, what);
			return;
		}
		job->out.fd = job->res;
		sstable_builder_init(&job->out.b, &s->sst_opt);
		job->state = JOB_RUN;
		return;
	case IO_WRITE:
		if (job->res != (int)job->out.buf.len) {
			job_fail(s, job, job->res < 0 ? job->res : -ENOSPC, what);
			return;
		}
		job->state = JOB_RUN;
		return;
	case IO_FINAL:
		if (job->res != (int)job->out.buf.len || job->res2 < 0) {
			job_fail(s, job, job->res < 0 ? job->res :
				 job->res2 < 0 && job->res2 != -ECANCELED ? job->res2 : -ENOSPC,
				 what);
			return;
		}
		rv = job_output_done(s, job);
		if (rv) {
			job_fail(s, job, rv, what);
			return;
		}
		if (!job->compaction || job->merge_end)
			job_dirsync(s, job);
		else
			job_open_output(s, job);
		return;
	case IO_READ: {
		struct compact_src *src = &job->src[job->need_slot];

		if (job->res < job->res2) {
			job_fail(s, job, job->res < 0 ? job->res : -EIO, what);
			return;
		}
		s->stats.compact_read += (uint64_t)job->res;
		src->chunk_len = (size_t)job->res;
		rv = csrc_drive(s, job, job->need_slot,
				sstable_iter_feed(&src->it, src->chunk, src->it.need.len, true));
		if (rv == SHARD_READ_PENDING)
			return;
		if (rv) {
			job_fail(s, job, rv, what);
			return;
		}
		job->state = JOB_RUN;
		return;
	}
	case IO_DIRSYNC:
		if (job->res < 0) {
			job_fail(s, job, job->res, what);
			return;
		}
		rv = job_manifest(s, job);
		if (rv)
			job_fail(s, job, rv, what);
		return;
	case IO_MANIFEST:
		s->manifest_busy = false;
		if (job->res != (int)job->edit_len || job->res2 < 0) {
			/* Cut the manifest back to its last whole record (a
			 * blocking call, on this error path only). */
			if (ftruncate(s->manifest_fd, (off_t)s->manifest_len) != 0)
				log_error("shard %u: manifest truncate: %s", s->id, strerror(errno));
			job_fail(s, job, job->res < 0 ? job->res :
				 job->res2 < 0 && job->res2 != -ECANCELED ? job->res2 : -ENOSPC,
				 what);
			return;
		}
		job_install(s, job);
		return;
	}
}

static void job_io_done(struct io_op *op, int res, unsigned flags)
{
	struct shard *s = op->data;
	struct bg_job *job;

	shard_op_put(s);
	if (op == &s->jobs->flush.op || op == &s->jobs->flush.op2 ||
	    op == &s->jobs->flush.timer_op)
		job = &s->jobs->flush;
	else
		job = &s->jobs->compact;
	if (op == &job->op2)
		job->res2 = res;
	else if (op == &job->op)
		job->res = res;
	if (--job->pending_cqes > 0)
		return;
	if (s->closing) {
		if (job->io_kind == IO_OPEN && res >= 0)
			job->out.fd = res;
		if (job->io_kind == IO_MANIFEST)
			s->manifest_busy = false;
		return;
	}
	job_io_complete(s, job);
}

void shard_jobs_step(struct shard *s)
{
	struct bg_job *f, *c;
	int rv;

	if (s->closing)
		return;
	shard_manifest_maybe_rewrite(s);
	if (shard_drop_waiting(s)) {
		/* A FLUSH drops the tables these jobs would write. */
		shard_drop_poll(s);
		return;
	}
	if (!jobs_make(s))
		return;
	f = &s->jobs->flush;
	c = &s->jobs->compact;
	if (f->state == JOB_IDLE && s->imm && !s->imm_installed && !shard_flush_held(s))
		flush_start(s, f);
	else if (f->state == JOB_RUN)
		flush_slice(s, f);
	else if (f->state == JOB_MANIFEST && !f->edit_submitted && (rv = job_manifest(s, f)))
		job_fail(s, f, rv, "flush");

	if (c->state == JOB_IDLE && s->ndamage_new > 0) {
		/* A table found damaged: mark it in the manifest (shard_damage.c). */
		c->marks_only = true;
		c->trivial = true;
		if ((rv = job_manifest(s, c)))
			job_fail(s, c, rv, "marking a damaged table");
	} else if (c->state == JOB_IDLE && !shard_compaction_stopped(s) && compact_pick(s, c)) {
		if (c->trivial)
			rv = job_manifest(s, c);
		else
			rv = 0, job_open_output(s, c);
		if (rv)
			job_fail(s, c, rv, "compaction");
	} else if (c->state == JOB_RUN) {
		compact_slice(s, c);
	} else if (c->state == JOB_MANIFEST && !c->edit_submitted &&
		   (rv = job_manifest(s, c))) {
		job_fail(s, c, rv, "compaction");
	}
}

bool shard_jobs_abandon(struct shard *s)
{
	struct bg_job *jobs[2];
	bool idle = true;

	if (!s->jobs)
		return true;
	jobs[0] = &s->jobs->flush;
	jobs[1] = &s->jobs->compact;

	for (int i = 0; i < 2; i++) {
		struct bg_job *job = jobs[i];

		if (job->state == JOB_RUN || (job->state == JOB_MANIFEST && !job->edit_submitted))
			job_reset(s, job, true);
		else if (job->state != JOB_IDLE)
			idle = false;
	}
	return idle;
}

bool shard_background_idle(const struct shard *s)
{
	struct compaction c;

	/* A flush held by damage waits for a repair, not for time. */
	if ((s->imm && !shard_flush_held(s)) || !shard_jobs_idle(s) || s->ndamage_new > 0)
		return false;
	return shard_compaction_stopped(s) ||
	       !compaction_pick(&s->manifest, &s->compact_opt, &s->cursor, &c) ||
	       shard_damage_in_pick(s, &c);
}
