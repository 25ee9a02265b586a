/*
 * FLUSH: a committed entry that drops every key of a replicated shard
 * ("drop everything up to this index"), in time independent of how many
 * keys there are.
 *
 * The shard's durable state is its SSTables at the manifest's flushed
 * index (shard_apply.c). So FLUSH at index F is one manifest edit that
 * deletes every table and sets the flushed index to F, appended and
 * fdatasync'ed through the ring; once it is durable, the current version
 * becomes the empty one (the tables it dropped are closed and unlinked when
 * the last reader of an older version lets go, as after a compaction) and
 * an empty memtable takes the place of the active and immutable ones. Only
 * then is the entry applied (applied index F) and the entries behind it go
 * on, into the empty memtable.
 *
 * Invariants:
 * - the edit names exactly the tables of the manifest when it is built, and
 *   no other manifest edit may come between it and its install: it is built
 *   and appended only while the manifest is free and neither the memtable
 *   flush nor a compaction is running (jobs that are between slices are
 *   abandoned, their files unlinked; one with I/O in flight is waited for,
 *   and no new job starts while a FLUSH waits: shard_job.c asks
 *   shard_drop_waiting);
 * - a crash before the edit is durable leaves the old tables and a flushed
 *   index below F, so Raft hands FLUSH in again and it is applied again; a
 *   crash after it leaves no table and flushed index F: no key written
 *   before the FLUSH comes back, and every entry after F is replayed;
 * - while the FLUSH waits, it is the head of the apply queue: nothing after
 *   it is applied, and reads see the state before it (it is not applied).
 *
 * Failure to write the edit (ENOSPC, EIO): the manifest is cut back to its
 * last whole record, as for a failed flush, and the edit is tried again
 * after a back-off (100 ms doubling to 5 s); the entries behind it wait, and
 * past the apply queue's limit the replication engine holds them back.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/log.h"
#include "shard/shard_internal.h"

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The edit: every table of the manifest out, the flushed index to F. */
static void drop_edit(const struct shard *s, struct manifest_edit *e)
{
	const struct shard_drop *d = &s->drop;

	memset(e, 0, sizeof *e);
	e->has_next_file_number = true;
	e->next_file_number = s->next_file;
	e->has_flushed_index = true;
	e->flushed_index = d->index;
	e->deleted = d->deleted;
	e->ndeleted = d->ndeleted;
}

/* Lists the manifest's tables in d->deleted. 0 or -ENOMEM. */
static int list_tables(struct shard *s)
{
	struct shard_drop *d = &s->drop;
	size_t n = 0;

	for (unsigned l = 0; l < MANIFEST_LEVELS; l++)
		n += s->manifest.levels[l].count;
	free(d->deleted);
	d->deleted = calloc(n ? n : 1, sizeof *d->deleted);
	d->ndeleted = 0;
	if (!d->deleted)
		return -ENOMEM;
	for (unsigned l = 0; l < MANIFEST_LEVELS; l++)
		for (size_t i = 0; i < s->manifest.levels[l].count; i++) {
			d->deleted[d->ndeleted].level = l;
			d->deleted[d->ndeleted++].number = s->manifest.levels[l].files[i].number;
		}
	return 0;
}

static void retry_later(struct shard *s, const char *why)
{
	struct shard_drop *d = &s->drop;

	d->backoff_ms = d->backoff_ms ? d->backoff_ms * 2 : SHARD_BACKOFF_MIN_MS;
	if (d->backoff_ms > SHARD_BACKOFF_MAX_MS)
		d->backoff_ms = SHARD_BACKOFF_MAX_MS;
	d->retry_us = now_us() + (uint64_t)d->backoff_ms * 1000u;
	s->stats.bg_errors++;
	log_error("shard %u: FLUSH at index %" PRIu64 ": %s; retrying in %u ms", s->id,
		  d->index, why, d->backoff_ms);
}

/* The edit is durable: the tree and the memtables change now. */
static void drop_install(struct shard *s)
{
	struct shard_drop *d = &s->drop;
	struct manifest_edit e;
	const char *why = NULL;
	int rv;

	drop_edit(s, &e);
	s->manifest_len += d->edit_len;
	rv = manifest_version_apply(&s->manifest, &e, &why);
	if (rv)
		panic("shard %u: our own FLUSH edit does not apply: %s", s->id,
		      why ? why : rkv_strerror(rv));
	for (unsigned l = 0; l < MANIFEST_LEVELS; l++)
		for (size_t i = 0; i < s->version->count[l]; i++)
			s->version->files[l][i]->obsolete = true;
	rv = lsm_version_install(s, NULL, 0);
	if (rv)
		panic("shard %u: out of memory installing a version", s->id);
	lsm_mem_unref(s->imm);
	s->imm = NULL;
	s->imm_installed = false;
	lsm_mem_unref(s->mem);
	s->mem = d->fresh;
	s->mem->last_index = d->index;
	d->fresh = NULL;
	shard_budget_sync(s);
	s->gen++;
	s->disk_full = false;
	/* A damaged table that stopped compaction is gone with the rest. */
	s->compaction_broken = false;
	s->apply.waiting_room = false;
	d->backoff_ms = 0;
	d->state = DROP_DONE;
	s->stats.drops++;
	shard_deadlines_dropped(s);
	log_info("shard %u: FLUSH at index %" PRIu64 ": %zu tables dropped", s->id, d->index,
		 d->ndeleted);
	/* The log up to F is no longer needed by this replica. */
	shard_apply_flushed(s);
}

static void drop_io_done(struct io_op *op, int res, unsigned flags)
{
	struct shard *s = op->data;
	struct shard_drop *d = &s->drop;

	(void)flags;
	shard_op_put(s);
	if (op == &d->op2)
		d->res2 = res;
	else
		d->res = res;
	if (--d->pending_cqes > 0)
		return;
	s->manifest_busy = false;
	if (s->closing)
		return; /* not installed: the FLUSH is applied again after the restart */
	if (d->res != (int)d->edit_len || d->res2 < 0) {
		int err = d->res < 0 ? d->res : d->res2 < 0 && d->res2 != -ECANCELED ? d->res2
										   : -ENOSPC;

		/* Cut the manifest back to its last whole record (a blocking
		 * call, on this error path only, as shard_job.c does). */
		if (ftruncate(s->manifest_fd, (off_t)s->manifest_len) != 0)
			log_error("shard %u: manifest truncate: %s", s->id, strerror(errno));
		if (err == -ENOSPC)
			s->disk_full = true;
		d->state = DROP_WAIT;
		retry_later(s, strerror(-err));
		return;
	}
	drop_install(s);
	shard_resume(s);
}

bool shard_drop_waiting(const struct shard *s)
{
	return s->drop.state == DROP_WAIT || s->drop.state == DROP_IO;
}

void shard_drop_poll(struct shard *s)
{
	struct shard_drop *d = &s->drop;
	struct manifest_edit e;
	int rv;

	if (d->state != DROP_WAIT || s->closing)
		return;
	if (d->retry_us && now_us() < d->retry_us)
		return;
	/* Jobs between slices are abandoned; one with I/O in flight is
	 * waited for (its completion comes back through shard_flush). */
	if (!shard_jobs_abandon(s) || s->manifest_busy)
		return;
	if (!d->fresh) {
		d->fresh = lsm_mem_new(s->memtable_size);
		if (!d->fresh) {
			retry_later(s, "no memory for an empty memtable");
			return;
		}
	}
	rv = list_tables(s);
	if (rv == 0) {
		drop_edit(s, &e);
		free(d->edit_buf);
		d->edit_buf = malloc(manifest_edit_size(&e));
		rv = d->edit_buf ? 0 : -ENOMEM;
	}
	if (rv) {
		retry_later(s, "out of memory");
		return;
	}
	rv = shard_manifest_fd(s);
	if (rv) {
		retry_later(s, strerror(-rv));
		return;
	}
	d->edit_len = manifest_edit_encode(&e, d->edit_buf);
	d->retry_us = 0;
	d->state = DROP_IO;
	d->pending_cqes = 2;
	d->res = d->res2 = 0;
	s->manifest_busy = true;
	shard_write_chain(s, &d->op, &d->op2, s->manifest_fd, d->edit_buf, d->edit_len,
			  s->manifest_len, 0);
}

bool shard_drop_head(struct shard *s, uint64_t index)
{
	struct shard_drop *d = &s->drop;

	if (d->state == DROP_DONE) {
		assert(d->index == index);
		d->state = DROP_NONE;
		return true;
	}
	if (d->state == DROP_NONE) {
		d->state = DROP_WAIT;
		d->index = index;
		d->retry_us = 0;
		d->backoff_ms = 0;
	}
	shard_drop_poll(s);
	return false;
}

void shard_drop_init(struct shard *s)
{
	struct shard_drop *d = &s->drop;

	memset(d, 0, sizeof *d);
	d->op.done = drop_io_done;
	d->op.data = s;
	d->op2.done = drop_io_done;
	d->op2.data = s;
}

void shard_drop_destroy(struct shard *s)
{
	struct shard_drop *d = &s->drop;

	lsm_mem_unref(d->fresh);
	d->fresh = NULL;
	free(d->edit_buf);
	d->edit_buf = NULL;
	free(d->deleted);
	d->deleted = NULL;
}
