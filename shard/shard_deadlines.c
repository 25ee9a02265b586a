/*
 * A shard's deadline index (shard/deadline_index.h): kept by shard_exec,
 * emptied by FLUSH, rebuilt after open by bounded scan steps.
 *
 * Why a rebuild step may trust what its scan reports: the index changes
 * only through shard_deadlines_note (every write, any deadline) and
 * FLUSH, each bumping the shard's `seq` (kept beside the index, not in it:
 * the index is allocated only at the shard's first deadline, and a write
 * without one must still count as a change). A step's scan reads the memtables and
 * tables as they are while it runs; it can report a value older than the
 * key's current one only if a write landed while it waited for a block.
 * So a value is taken only while seq is what it was when the step began;
 * otherwise the step stops there and the next one starts again from its
 * last key. Whatever apply recorded before or after is then never
 * overwritten by something older.
 *
 * Memory: a shard that never held a deadline has no index (an idle
 * replica's size, issue #18), and a complete one no rebuild state.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/log.h"
#include "shard/shard_internal.h"
#include "shard/value_deadline.h"

struct shard_deadlines_rebuild {
	bool stepping;                  /* a rebuild step's scan runs */
	bool aborted;                   /* that step stopped at a write */
	bool have_cursor;               /* the rebuild's last key examined ... */
	uint8_t *cursor;                /* ... (malloc) */
	size_t cursor_len, cursor_cap;
	uint64_t step_seq;              /* seq when the step began */
	uint64_t step_epoch;
	unsigned scan_errors;           /* steps that failed in a row */
	shard_deadlines_step_fn *done;
	void *arg;
};

static const struct deadline_index no_index;

static void rebuild_free(struct shard_deadlines *d)
{
	if (!d->rebuild)
		return;
	free(d->rebuild->cursor);
	free(d->rebuild);
	d->rebuild = NULL;
}

/* The index was emptied (memory) and must be rebuilt from the first key. */
static void emptied(struct shard_deadlines *d)
{
	d->complete = false;
	if (d->rebuild)
		d->rebuild->have_cursor = false;
	d->epoch++;
}

void shard_deadlines_note(struct shard *s, const void *key, size_t key_len,
			  uint64_t deadline)
{
	struct shard_deadlines *d = &s->deadlines;

	d->seq++;
	if (!d->index) {
		if (!deadline)
			return; /* a keyspace without deadlines costs no index */
		d->index = calloc(1, sizeof *d->index);
		if (!d->index)
			goto no_memory;
	}
	if (deadline_index_set(d->index, key, key_len, deadline) == 0)
		return;
no_memory:
	log_warn("shard %u: no memory for the deadline index; it is rebuilt", s->id);
	emptied(d);
}

void shard_deadlines_open(struct shard *s)
{
	/* Replicated: the state is the tables. WAL mode: replay went through
	 * shard_exec, but the tables were not read. */
	s->deadlines.complete = s->stats.table_files == 0;
}

void shard_deadlines_dropped(struct shard *s)
{
	struct shard_deadlines *d = &s->deadlines;

	if (d->index) {
		deadline_index_clear(d->index);
		d->index->failed = false;
	}
	d->seq++;
	d->complete = true;
	d->epoch++;
	if (d->rebuild && d->rebuild->stepping)
		d->rebuild->have_cursor = false; /* the step under way frees it */
	else
		rebuild_free(d);
}

void shard_deadlines_close(struct shard *s)
{
	struct shard_deadlines *d = &s->deadlines;

	if (d->index) {
		deadline_index_destroy(d->index);
		free(d->index);
		d->index = NULL;
	}
	rebuild_free(d);
}

bool shard_deadlines_complete(const struct shard *s)
{
	return s->deadlines.complete;
}

const struct deadline_index *shard_deadline_index(const struct shard *s)
{
	return s->deadlines.index ? s->deadlines.index : &no_index;
}

static bool rebuild_found(void *arg, const void *key, size_t key_len, uint64_t deadline,
			  bool expired)
{
	struct shard *s = arg;
	struct shard_deadlines *d = &s->deadlines;
	struct shard_deadlines_rebuild *r = d->rebuild;

	(void)expired;
	if (d->seq != r->step_seq || d->epoch != r->step_epoch) {
		r->aborted = true; /* a write landed meanwhile: this key again next step */
		return false;
	}
	shard_deadlines_note(s, key, key_len, deadline);
	r->step_seq = d->seq;
	return d->epoch == r->step_epoch;
}

static void rebuild_scanned(void *arg, int rv, bool exhausted, const void *last,
			    size_t last_len)
{
	struct shard *s = arg;
	struct shard_deadlines *d = &s->deadlines;
	struct shard_deadlines_rebuild *r = d->rebuild;
	shard_deadlines_step_fn *done = r->done;
	void *done_arg = r->arg;

	r->stepping = false;
	r->done = NULL;
	if (d->epoch != r->step_epoch) {
		/* Emptied meanwhile (FLUSH, or memory): that decided the state. */
		if (d->complete)
			rebuild_free(d);
	} else if (rv != 0) {
		if (r->scan_errors++ == 0)
			log_warn("shard %u: deadline index rebuild: scan failed: %s; retried",
				 s->id, rkv_strerror(rv));
	} else {
		r->scan_errors = 0;
		if (exhausted && !r->aborted) {
			d->complete = true;
			rebuild_free(d);
			log_info("shard %u: deadline index rebuilt: %zu keys with a deadline",
				 s->id, deadline_index_count(shard_deadline_index(s)));
		} else if (last) {
			if (r->cursor_cap < last_len) {
				uint8_t *p = realloc(r->cursor, last_len);

				if (!p) {
					r->have_cursor = false; /* from the first key again */
					goto out;
				}
				r->cursor = p;
				r->cursor_cap = last_len;
			}
			if (last_len)
				memcpy(r->cursor, last, last_len);
			r->cursor_len = last_len;
			r->have_cursor = true;
		}
	}
out:
	if (done)
		done(done_arg);
}

int shard_deadlines_rebuild_step(struct shard *s, size_t examine,
				 shard_deadlines_step_fn *done, void *arg)
{
	struct shard_deadlines *d = &s->deadlines;
	struct shard_deadlines_rebuild *r = d->rebuild;
	int rv;

	if (d->complete || (r && r->stepping))
		return 1;
	if (!r) {
		r = calloc(1, sizeof *r);
		if (!r)
			return -ENOMEM;
		d->rebuild = r;
	}
	if (d->index && d->index->failed) {
		d->index->failed = false;
		r->have_cursor = false;
	}
	r->stepping = true;
	r->aborted = false;
	r->step_seq = d->seq;
	r->step_epoch = d->epoch;
	r->done = done;
	r->arg = arg;
	rv = shard_scan_expired(s, r->have_cursor ? r->cursor : (const uint8_t *)"",
				r->have_cursor ? r->cursor_len : 0, r->have_cursor, examine,
				rebuild_found, rebuild_scanned, s);
	if (rv) {
		r->stepping = false;
		r->done = NULL;
	}
	return rv;
}

uint64_t shard_visible_keys(const struct shard *s, uint64_t now, uint64_t *expires)
{
	const struct deadline_index *x = shard_deadline_index(s);
	uint64_t live = shard_live_keys(s);
	uint64_t due = deadline_index_due_count(x, now);

	if (expires)
		*expires = deadline_index_count(x) - due;
	return live > due ? live - due : 0;
}

size_t shard_deadlines_due(const struct shard *s, uint64_t now, size_t limit,
			   deadline_index_fn *fn, void *arg)
{
	return deadline_index_due(shard_deadline_index(s), now, limit, fn, arg);
}
