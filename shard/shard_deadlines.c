/*
 * A shard's deadline index (shard/deadline_index.h): kept by shard_exec,
 * emptied by FLUSH, rebuilt after open by bounded scan steps.
 *
 * Why a rebuild step may trust what its scan reports: the index changes
 * only through shard_deadlines_note (every write, any deadline) and
 * FLUSH, each bumping index.seq. A step's scan reads the memtables and
 * tables as they are while it runs; it can report a value older than the
 * key's current one only if a write landed while it waited for a block.
 * So a value is taken only while seq is what it was when the step began;
 * otherwise the step stops there and the next one starts again from its
 * last key. Whatever apply recorded before or after is then never
 * overwritten by something older.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/log.h"
#include "shard/shard_internal.h"
#include "shard/value_deadline.h"

void shard_deadlines_note(struct shard *s, const void *key, size_t key_len,
			  uint64_t deadline)
{
	struct shard_deadlines *d = &s->deadlines;

	if (deadline_index_set(&d->index, key, key_len, deadline) == 0)
		return;
	/* Emptied for lack of memory: rebuilt from the first key. */
	log_warn("shard %u: no memory for the deadline index; it is rebuilt", s->id);
	d->complete = false;
	d->have_cursor = false;
	d->epoch++;
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

	deadline_index_clear(&d->index);
	d->index.failed = false;
	d->complete = true;
	d->have_cursor = false;
	d->epoch++;
}

void shard_deadlines_close(struct shard *s)
{
	deadline_index_destroy(&s->deadlines.index);
	free(s->deadlines.cursor);
	s->deadlines.cursor = NULL;
}

bool shard_deadlines_complete(const struct shard *s)
{
	return s->deadlines.complete;
}

const struct deadline_index *shard_deadline_index(const struct shard *s)
{
	return &s->deadlines.index;
}

static bool rebuild_found(void *arg, const void *key, size_t key_len, uint64_t deadline,
			  bool expired)
{
	struct shard *s = arg;
	struct shard_deadlines *d = &s->deadlines;

	(void)expired;
	if (d->index.seq != d->step_seq || d->epoch != d->step_epoch) {
		d->aborted = true; /* a write landed meanwhile: this key again next step */
		return false;
	}
	shard_deadlines_note(s, key, key_len, deadline);
	d->step_seq = d->index.seq;
	return d->epoch == d->step_epoch;
}

static void rebuild_scanned(void *arg, int rv, bool exhausted, const void *last,
			    size_t last_len)
{
	struct shard *s = arg;
	struct shard_deadlines *d = &s->deadlines;
	shard_deadlines_step_fn *done = d->done;

	d->stepping = false;
	if (d->epoch != d->step_epoch) {
		/* Emptied meanwhile (FLUSH, or memory): that decided the state. */
	} else if (rv != 0) {
		if (d->scan_errors++ == 0)
			log_warn("shard %u: deadline index rebuild: scan failed: %s; retried",
				 s->id, rkv_strerror(rv));
	} else {
		d->scan_errors = 0;
		if (exhausted && !d->aborted) {
			d->complete = true;
			d->have_cursor = false;
			log_info("shard %u: deadline index rebuilt: %zu keys with a deadline",
				 s->id, deadline_index_count(&d->index));
		} else if (last) {
			if (d->cursor_cap < last_len) {
				uint8_t *p = realloc(d->cursor, last_len);

				if (!p) {
					d->have_cursor = false; /* from the first key again */
					goto out;
				}
				d->cursor = p;
				d->cursor_cap = last_len;
			}
			if (last_len)
				memcpy(d->cursor, last, last_len);
			d->cursor_len = last_len;
			d->have_cursor = true;
		}
	}
out:
	d->done = NULL;
	if (done)
		done(d->arg);
}

int shard_deadlines_rebuild_step(struct shard *s, size_t examine,
				 shard_deadlines_step_fn *done, void *arg)
{
	struct shard_deadlines *d = &s->deadlines;
	int rv;

	if (d->complete || d->stepping)
		return 1;
	if (d->index.failed) {
		d->index.failed = false;
		d->have_cursor = false;
	}
	d->stepping = true;
	d->aborted = false;
	d->step_seq = d->index.seq;
	d->step_epoch = d->epoch;
	d->done = done;
	d->arg = arg;
	rv = shard_scan_expired(s, d->have_cursor ? d->cursor : (const uint8_t *)"",
				d->have_cursor ? d->cursor_len : 0, d->have_cursor, examine,
				rebuild_found, rebuild_scanned, s);
	if (rv) {
		d->stepping = false;
		d->done = NULL;
	}
	return rv;
}

uint64_t shard_visible_keys(const struct shard *s, uint64_t now, uint64_t *expires)
{
	const struct deadline_index *x = &s->deadlines.index;
	uint64_t live = shard_live_keys(s);
	uint64_t due = deadline_index_due_count(x, now);

	if (expires)
		*expires = deadline_index_count(x) - due;
	return live > due ? live - due : 0;
}

size_t shard_deadlines_due(const struct shard *s, uint64_t now, size_t limit,
			   deadline_index_fn *fn, void *arg)
{
	return deadline_index_due(&s->deadlines.index, now, limit, fn, arg);
}
