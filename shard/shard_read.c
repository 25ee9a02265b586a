/*
 * Reads of one shard: point gets and scans over the memtables and the
 * SSTables, blocks through the core's block cache, misses read on the core's
 * io_uring ring.
 *
 * A get checks the active memtable, the immutable one, then the tables of the
 * current version in order (L0 newest first, then the one table per level
 * whose range holds the key), each through its bloom filter and index. The
 * memtables and cached blocks answer synchronously; the first missing block
 * makes the get asynchronous: the read holds the version (so no table it may
 * still visit is closed or unlinked), lands in a malloc'd buffer that is
 * checked (CRC, structure) before it enters the cache, and the walk resumes
 * from the table it stopped at. A block that fails its checks answers
 * RKV_ECORRUPT and logs the file and offset: never wrong data.
 *
 * A scan merges every source (memtables, each L0 table, one concatenating
 * iterator per deeper level) with the k-way merge of compaction_pick.h,
 * newest source winning, holding references to the memtables and the
 * version while it waits for blocks.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/log.h"
#include "shard/shard_internal.h"
#include "shard/value_deadline.h"

#define LOOKUP_NEXT 1 /* not in this table: go on */

static int block_lookup(struct shard *s, struct lsm_table *t, uint64_t offset,
			const uint8_t *data, size_t len, const void *key, size_t key_len,
			const void **value, size_t *value_len)
{
	const char *why = NULL;
	int rv = sstable_block_get(&s->get_scratch, data, len, false, key, key_len, value,
				   value_len, NULL, &why);

	switch (rv) {
	case 0:
		return 0;
	case RKV_EDELETED:
		return RKV_ENOTFOUND;
	case RKV_ENOTFOUND:
		return LOOKUP_NEXT;
	case RKV_ECORRUPT:
		lsm_report_corrupt(s, t->number, offset, why);
		return RKV_ECORRUPT;
	default:
		return rv;
	}
}

static int try_table(struct shard *s, struct lsm_table *t, const void *key, size_t key_len,
		     uint64_t hash, const void **value, size_t *value_len,
		     struct block_cache_handle **pin, struct sstable_handle *h)
{
	const struct sstable_meta *m = &t->meta;
	struct block_cache_handle *bh;
	const void *data;
	size_t len;
	int rv;

	if (key_order_cmp(key, key_len, m->smallest, m->smallest_len) < 0 ||
	    key_order_cmp(key, key_len, m->largest, m->largest_len) > 0)
		return LOOKUP_NEXT;
	if (!sstable_meta_may_contain(m, hash))
		return LOOKUP_NEXT;
	if (!sstable_meta_find_block(m, key, key_len, h, NULL))
		return LOOKUP_NEXT;
	bh = block_cache_lookup(s->cache, lsm_cache_file(s, t->number), h->offset);
	if (!bh)
		return RKV_EAGAIN;
	data = block_cache_data(bh, &len);
	rv = block_lookup(s, t, h->offset, data, len, key, key_len, value, value_len);
	if (rv == 0)
		*pin = bh;
	else
		block_cache_release(s->cache, bh);
	return rv;
}

/* The first file of a level >= 1 whose largest key is >= key. */
static size_t level_seek(const struct lsm_version *v, unsigned level, const void *key,
			 size_t key_len)
{
	size_t lo = 0, hi = v->count[level];

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct sstable_meta *m = &v->files[level][mid]->meta;

		if (key_order_cmp(m->largest, m->largest_len, key, key_len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void position_next(unsigned *level, size_t *file)
{
	if (*level == 0) {
		(*file)++;
	} else {
		(*level)++;
		*file = 0;
	}
}

int lsm_lookup_cached(struct shard *s, struct lsm_version *v, const void *key,
		      size_t key_len, uint64_t hash, unsigned *level, size_t *file,
		      const void **value, size_t *value_len,
		      struct block_cache_handle **pin, struct lsm_table **t,
		      struct sstable_handle *h)
{
	while (*level < MANIFEST_LEVELS) {
		struct lsm_table *cand = NULL;
		int rv;

		if (*level == 0) {
			if (*file < v->count[0])
				cand = v->files[0][*file];
		} else if (*file == 0 && v->count[*level] > 0) {
			size_t i = level_seek(v, *level, key, key_len);

			if (i < v->count[*level])
				cand = v->files[*level][i];
		}
		if (!cand) {
			(*level)++;
			*file = 0;
			continue;
		}
		rv = try_table(s, cand, key, key_len, hash, value, value_len, pin, h);
		if (rv == RKV_EAGAIN) {
			*t = cand;
			return rv;
		}
		if (rv != LOOKUP_NEXT)
			return rv;
		position_next(level, file);
	}
	return RKV_ENOTFOUND;
}

static int mem_lookup(struct shard *s, const void *key, size_t key_len, const void **value,
		      size_t *value_len, unsigned *flags)
{
	int rv = memtable_get_flags(s->mem->mt, key, key_len, value, value_len, flags);

	if (rv == RKV_ENOTFOUND && s->imm)
		rv = memtable_get_flags(s->imm->mt, key, key_len, value, value_len, flags);
	return rv;
}

/*
 * What a reader sees of a value found with `flags`: 0 with the deadline
 * stripped (*deadline set, 0 for none), or RKV_ENOTFOUND once the serving
 * node's clock is past it.
 */
static int visible(struct shard *s, const void **value, size_t *value_len, unsigned flags,
		   uint64_t *deadline)
{
	if (!(flags & MEMTABLE_DEADLINE)) {
		*deadline = 0;
		return 0;
	}
	return value_deadline_strip(value, value_len, true, value_deadline_now(), deadline) ?
		       0 : RKV_ENOTFOUND;
}

static void release_sync_pin(struct shard *s)
{
	if (s->sync_pin) {
		block_cache_release(s->cache, s->sync_pin);
		s->sync_pin = NULL;
	}
}

static void read_done(struct io_op *op, int res, unsigned flags);

static void read_finish(struct shard_read *rd, int rv, const void *value, size_t len,
			unsigned flags)
{
	struct shard *s = rd->s;
	struct block_cache_handle *pin = rd->pin;
	struct lsm_version *v = rd->version;

	/* A warming read (the write path settling a key) wants the stored
	 * bytes: the apply step judges them by the entry's time, never by
	 * this clock. */
	rd->found_flags = rv == 0 ? flags : 0;
	if (rv == 0 && !rd->warm_only)
		rv = visible(s, &value, &len, flags, &rd->deadline);

	rd->version = NULL;
	if (!rd->warm_only)
		rd->pin = NULL;
	else
		pin = NULL; /* the owner keeps it */
	rd->done(rd, rv, value, len);
	if (pin)
		block_cache_release(s->cache, pin);
	lsm_version_unref(s, v);
}

static void read_issue(struct shard *s, struct shard_read *rd, struct lsm_table *t,
		       const struct sstable_handle *h)
{
	struct io_uring_sqe *sqe;

	rd->buf = malloc(h->len);
	if (!rd->buf) {
		read_finish(rd, -ENOMEM, NULL, 0, 0);
		return;
	}
	rd->table = t;
	rd->offset = h->offset;
	rd->len = h->len;
	t->refs++;
	rd->op.done = read_done;
	rd->op.data = rd;
	sqe = shard_sqe(s, &rd->op);
	io_uring_prep_read(sqe, t->fd, rd->buf, h->len, h->offset);
	s->stats.block_reads++;
}

/* Walks on from rd's position with what is cached; reads the next miss. */
static void read_continue(struct shard_read *rd)
{
	struct shard *s = rd->s;
	struct sstable_handle h;
	struct lsm_table *t = NULL;
	const void *value = NULL;
	size_t len = 0;
	int rv;

	rv = lsm_lookup_cached(s, rd->version, rd->key, rd->key_len, rd->hash, &rd->level,
			       &rd->file, &value, &len, &rd->pin, &t, &h);
	if (rv == RKV_EAGAIN)
		read_issue(s, rd, t, &h);
	else
		read_finish(rd, rv, value, len, lsm_found_flags(s));
}

static void read_done(struct io_op *op, int res, unsigned flags)
{
	struct shard_read *rd = op->data;
	struct shard *s = rd->s;
	struct lsm_table *t = rd->table;
	struct block_cache_handle *pin = NULL;
	struct sstable_block blk;
	const char *why = NULL;
	const void *value = NULL;
	size_t len = 0;
	int rv;

	shard_op_put(s);
	rd->table = NULL;
	if (res != (int)rd->len) {
		rv = res < 0 ? res : -EIO;
		log_error("shard %u: table %" PRIu64 ": read of %u bytes at offset %" PRIu64
			  " returned %d", s->id, t->number, rd->len, rd->offset, res);
		free(rd->buf);
		goto finish;
	}
	if (sstable_block_open(&blk, rd->buf, rd->len, true, &why) != 0) {
		lsm_report_corrupt(s, t->number, rd->offset, why);
		free(rd->buf);
		rv = RKV_ECORRUPT;
		goto finish;
	}
	rv = block_cache_insert(s->cache, lsm_cache_file(s, t->number), rd->offset, rd->buf, rd->len, &pin);
	if (rv) {
		free(rd->buf);
		goto finish;
	}
	{
		const void *data;
		size_t dlen;

		data = block_cache_data(pin, &dlen);
		rv = block_lookup(s, t, rd->offset, data, dlen, rd->key, rd->key_len, &value,
				  &len);
	}
	lsm_table_unref(s, t);
	if (rv == 0) {
		rd->pin = pin;
		read_finish(rd, 0, value, len, lsm_found_flags(s));
		return;
	}
	block_cache_release(s->cache, pin);
	if (rv == LOOKUP_NEXT) {
		position_next(&rd->level, &rd->file);
		read_continue(rd);
		return;
	}
	read_finish(rd, rv, NULL, 0, 0);
	return;

finish:
	lsm_table_unref(s, t);
	read_finish(rd, rv, NULL, 0, 0);
}

void shard_read_start(struct shard *s, struct shard_read *rd, const void *key,
		      size_t key_len)
{
	rd->s = s;
	rd->key = key;
	rd->key_len = key_len;
	rd->hash = bloom_hash(key, key_len);
	rd->version = lsm_version_ref(s->version);
	rd->level = 0;
	rd->file = 0;
	rd->pin = NULL;
	read_continue(rd);
}

int shard_get(struct shard *s, const void *key, size_t key_len,
	      const void **value, size_t *value_len)
{
	struct sstable_handle h;
	struct lsm_table *t;
	unsigned level = 0, flags = 0;
	size_t file = 0;
	uint64_t deadline;
	int rv;

	release_sync_pin(s);
	s->stats.reads++;
	rv = mem_lookup(s, key, key_len, value, value_len, &flags);
	if (rv == RKV_ENOTFOUND) {
		rv = lsm_lookup_cached(s, s->version, key, key_len, bloom_hash(key, key_len),
				       &level, &file, value, value_len, &s->sync_pin, &t, &h);
		flags = lsm_found_flags(s);
	} else if (rv == RKV_EDELETED) {
		rv = RKV_ENOTFOUND;
	}
	return rv == 0 ? visible(s, value, value_len, flags, &deadline) : rv;
}

int shard_read(struct shard *s, const void *key, size_t key_len, struct shard_read *rd,
	       const void **value, size_t *value_len)
{
	struct sstable_handle h;
	struct lsm_table *t = NULL;
	unsigned flags = 0;
	int rv;

	release_sync_pin(s);
	s->stats.reads++;
	rd->deadline = 0;
	rv = mem_lookup(s, key, key_len, value, value_len, &flags);
	if (rv == 0)
		return visible(s, value, value_len, flags, &rd->deadline);
	if (rv != RKV_ENOTFOUND)
		return rv == RKV_EDELETED ? RKV_ENOTFOUND : rv;
	rd->s = s;
	rd->key = key;
	rd->key_len = key_len;
	rd->hash = bloom_hash(key, key_len);
	rd->level = 0;
	rd->file = 0;
	rd->pin = NULL;
	rd->warm_only = false;
	rv = lsm_lookup_cached(s, s->version, key, key_len, rd->hash, &rd->level, &rd->file,
			       value, value_len, &s->sync_pin, &t, &h);
	if (rv == 0)
		return visible(s, value, value_len, lsm_found_flags(s), &rd->deadline);
	if (rv != RKV_EAGAIN)
		return rv;
	rd->version = lsm_version_ref(s->version);
	read_issue(s, rd, t, &h);
	return SHARD_READ_PENDING;
}

/* ---- scans ---- */

enum scan_src_kind { SRC_MEM, SRC_L0, SRC_LEVEL };

struct scan_src {
	enum scan_src_kind kind;
	struct lsm_mem *mem;
	struct memtable_iter mit;
	unsigned level;
	size_t file;                     /* L0: index; level: current file */
	struct lsm_table *table;         /* current table */
	struct sstable_iter it;
	bool it_live;
	uint64_t block_off;              /* last block fed */
	struct block_cache_handle *pin;  /* block the iterator walks */
	bool started;
};

struct scan {
	struct shard *s;
	struct lsm_version *v;
	uint8_t *start;
	size_t start_len;
	bool after;
	size_t examine;
	shard_scan_fn *fn;                /* live values, or NULL */
	shard_scan_expired_fn *expired;   /* values past their deadline, or NULL */
	shard_scan_done_fn *done;
	void *arg;
	struct merge merge;
	struct scan_src *src;
	size_t nsrc;
	size_t seen;
	struct sstable_buf last;
	bool have_last;
	size_t need_slot;
	struct io_op op;
	uint8_t *buf;
	struct sstable_handle h;
	struct lsm_table *rtable;
};

static void scan_free(struct scan *sc)
{
	struct shard *s = sc->s;

	for (size_t i = 0; i < sc->nsrc; i++) {
		struct scan_src *src = &sc->src[i];

		if (src->pin)
			block_cache_release(s->cache, src->pin);
		if (src->it_live)
			sstable_iter_destroy(&src->it);
		lsm_mem_unref(src->mem);
	}
	merge_destroy(&sc->merge);
	lsm_version_unref(s, sc->v);
	sstable_buf_free(&sc->last);
	free(sc->src);
	free(sc->start);
	free(sc);
}

static void scan_finish(struct scan *sc, int rv, bool exhausted)
{
	sc->done(sc->arg, rv, exhausted, sc->have_last ? sc->last.data : NULL,
		 sc->have_last ? sc->last.len : 0);
	scan_free(sc);
}

static void scan_read_done(struct io_op *op, int res, unsigned flags);
static void scan_run(struct scan *sc);

static void open_src_table(struct scan_src *src, struct lsm_table *t)
{
	if (src->it_live)
		sstable_iter_destroy(&src->it);
	src->table = t;
	sstable_iter_init(&src->it, &t->meta);
	src->it_live = true;
}

/*
 * Drives a table source from state `st` until it feeds the merge (0), needs
 * a read (SHARD_READ_PENDING, issued), or fails.
 */
static int src_drive(struct scan *sc, size_t slot, enum sstable_iter_state st)
{
	struct scan_src *src = &sc->src[slot];
	struct shard *s = sc->s;

	for (;;) {
		switch (st) {
		case SSTABLE_ITER_ENTRY: {
			const struct sstable_block_iter *b = &src->it.block;

			merge_feed(&sc->merge, slot, b->key, b->key_len,
				   b->kind == SSTABLE_TOMBSTONE ? NULL : b->value,
				   b->kind == SSTABLE_TOMBSTONE ? 0 : b->value_len, b->kind);
			return 0;
		}
		case SSTABLE_ITER_END:
			if (src->kind == SRC_LEVEL && src->file + 1 < sc->v->count[src->level]) {
				if (src->pin) {
					block_cache_release(s->cache, src->pin);
					src->pin = NULL;
				}
				src->file++;
				open_src_table(src, sc->v->files[src->level][src->file]);
				st = sstable_iter_first(&src->it);
				continue;
			}
			merge_feed_end(&sc->merge, slot);
			return 0;
		case SSTABLE_ITER_ERROR:
			if (src->it.error == RKV_ECORRUPT)
				lsm_report_corrupt(s, src->table->number, src->block_off,
						   src->it.reason);
			return src->it.error;
		case SSTABLE_ITER_NEED_BLOCK: {
			struct block_cache_handle *bh;
			struct io_uring_sqe *sqe;

			if (src->pin) {
				block_cache_release(s->cache, src->pin);
				src->pin = NULL;
			}
			src->block_off = src->it.need.offset;
			bh = block_cache_lookup(s->cache, lsm_cache_file(s, src->table->number),
							src->it.need.offset);
			if (bh) {
				const void *data;
				size_t len;

				src->pin = bh;
				data = block_cache_data(bh, &len);
				st = sstable_iter_feed(&src->it, data, len, false);
				continue;
			}
			sc->h = src->it.need;
			sc->buf = malloc(sc->h.len);
			if (!sc->buf)
				return -ENOMEM;
			sc->need_slot = slot;
			sc->rtable = src->table;
			sc->op.done = scan_read_done;
			sc->op.data = sc;
			sqe = shard_sqe(s, &sc->op);
			io_uring_prep_read(sqe, src->table->fd, sc->buf, sc->h.len, sc->h.offset);
			s->stats.block_reads++;
			return SHARD_READ_PENDING;
		}
		}
	}
}

static int src_advance(struct scan *sc, size_t slot)
{
	struct scan_src *src = &sc->src[slot];

	if (src->kind == SRC_MEM) {
		if (!src->started) {
			memtable_iter_seek(&src->mit, src->mem->mt, sc->start, sc->start_len);
			src->started = true;
		} else {
			memtable_iter_next(&src->mit);
		}
		if (memtable_iter_valid(&src->mit)) {
			size_t klen, vlen;
			const void *key = memtable_iter_key(&src->mit, &klen);
			const void *value = memtable_iter_value(&src->mit, &vlen);

			merge_feed(&sc->merge, slot, key, klen, value, vlen,
				   memtable_iter_kind(&src->mit));
		} else {
			merge_feed_end(&sc->merge, slot);
		}
		return 0;
	}
	if (!src->started) {
		struct lsm_table *t;

		src->started = true;
		if (src->kind == SRC_LEVEL) {
			src->file = level_seek(sc->v, src->level, sc->start, sc->start_len);
			if (src->file >= sc->v->count[src->level]) {
				merge_feed_end(&sc->merge, slot);
				return 0;
			}
			t = sc->v->files[src->level][src->file];
		} else {
			t = sc->v->files[0][src->file];
		}
		open_src_table(src, t);
		return src_drive(sc, slot, sstable_iter_seek(&src->it, sc->start, sc->start_len));
	}
	return src_drive(sc, slot, sstable_iter_next(&src->it));
}

static void scan_read_done(struct io_op *op, int res, unsigned flags)
{
	struct scan *sc = op->data;
	struct shard *s = sc->s;
	struct scan_src *src = &sc->src[sc->need_slot];
	struct sstable_block blk;
	const char *why = NULL;
	const void *data;
	size_t len;
	int rv;

	shard_op_put(s);
	if (res != (int)sc->h.len) {
		log_error("shard %u: table %" PRIu64 ": read at offset %" PRIu64 " returned %d",
			  s->id, sc->rtable->number, sc->h.offset, res);
		free(sc->buf);
		scan_finish(sc, res < 0 ? res : -EIO, false);
		return;
	}
	if (sstable_block_open(&blk, sc->buf, sc->h.len, true, &why) != 0) {
		lsm_report_corrupt(s, sc->rtable->number, sc->h.offset, why);
		free(sc->buf);
		scan_finish(sc, RKV_ECORRUPT, false);
		return;
	}
	rv = block_cache_insert(s->cache, lsm_cache_file(s, sc->rtable->number), sc->h.offset,
				sc->buf, sc->h.len, &src->pin);
	if (rv) {
		free(sc->buf);
		scan_finish(sc, rv, false);
		return;
	}
	data = block_cache_data(src->pin, &len);
	rv = src_drive(sc, sc->need_slot, sstable_iter_feed(&src->it, data, len, false));
	if (rv == SHARD_READ_PENDING)
		return;
	if (rv) {
		scan_finish(sc, rv, false);
		return;
	}
	scan_run(sc);
}

static void scan_run(struct scan *sc)
{
	uint64_t now = value_deadline_now(); /* one clock read per run */

	for (;;) {
		struct merge_entry e;
		size_t slot;
		int rv;

		switch (merge_next(&sc->merge, &e, &slot)) {
		case MERGE_NEED:
			rv = src_advance(sc, slot);
			if (rv == SHARD_READ_PENDING)
				return;
			if (rv) {
				scan_finish(sc, rv, false);
				return;
			}
			break;
		case MERGE_ENTRY:
			if (sc->after && key_order_cmp(e.key, e.key_len, sc->start,
							 sc->start_len) == 0)
				break;
			if (sc->seen == sc->examine) {
				scan_finish(sc, 0, false);
				return;
			}
			if (e.kind == SSTABLE_VALUE_DEADLINE) {
				uint64_t deadline = value_deadline_get(e.value);

				bool passed = value_deadline_passed(deadline, now);

				/* Expired: examined, not shown, as a tombstone. */
				if (passed)
					e.kind = SSTABLE_TOMBSTONE;
				if (sc->expired &&
				    !sc->expired(sc->arg, e.key, e.key_len, deadline, passed)) {
					scan_finish(sc, 0, false);
					return;
				}
				e.value += VALUE_DEADLINE_SIZE;
				e.value_len -= VALUE_DEADLINE_SIZE;
			}
			if (e.kind != SSTABLE_TOMBSTONE && sc->fn &&
			    !sc->fn(sc->arg, e.key, e.key_len, e.value, e.value_len)) {
				scan_finish(sc, 0, false);
				return;
			}
			sc->seen++;
			sc->last.len = 0;
			if (sstable_buf_append(&sc->last, e.key, e.key_len) != 0) {
				scan_finish(sc, -ENOMEM, false);
				return;
			}
			sc->have_last = true;
			break;
		case MERGE_END:
			scan_finish(sc, 0, true);
			return;
		case MERGE_ERROR:
			scan_finish(sc, sc->merge.error, false);
			return;
		}
	}
}

static int scan_begin(struct shard *s, const void *start, size_t start_len, bool after,
		      size_t examine, shard_scan_fn *fn, shard_scan_expired_fn *expired,
		      shard_scan_done_fn *done, void *arg)
{
	struct scan *sc = calloc(1, sizeof *sc);
	size_t max = 2 + MANIFEST_LEVELS, n = 0;
	uint64_t *ages = NULL;

	if (!sc)
		return -ENOMEM;
	sc->s = s;
	sc->v = lsm_version_ref(s->version);
	max += sc->v->count[0];
	sc->src = calloc(max, sizeof *sc->src);
	ages = calloc(max, sizeof *ages);
	sc->start = malloc(start_len ? start_len : 1);
	if (!sc->src || !ages || !sc->start)
		goto err;
	if (start_len)
		memcpy(sc->start, start, start_len);
	sc->start_len = start_len;
	sc->after = after;
	sc->examine = examine;
	sc->fn = fn;
	sc->expired = expired;
	sc->done = done;
	sc->arg = arg;
	sc->src[n].kind = SRC_MEM;
	sc->src[n++].mem = s->mem;
	s->mem->refs++;
	if (s->imm) {
		sc->src[n].kind = SRC_MEM;
		sc->src[n++].mem = s->imm;
		s->imm->refs++;
	}
	for (size_t i = 0; i < sc->v->count[0]; i++) {
		sc->src[n].kind = SRC_L0;
		sc->src[n++].file = i;
	}
	for (unsigned l = 1; l < MANIFEST_LEVELS; l++) {
		if (sc->v->count[l] == 0)
			continue;
		sc->src[n].kind = SRC_LEVEL;
		sc->src[n++].level = l;
	}
	sc->nsrc = n;
	for (size_t i = 0; i < n; i++)
		ages[i] = n - i; /* earlier sources are newer */
	if (merge_init(&sc->merge, ages, n, false) != 0)
		goto err;
	free(ages);
	scan_run(sc);
	return 0;

err:
	free(ages);
	scan_free(sc);
	return -ENOMEM;
}

int shard_scan(struct shard *s, const void *start, size_t start_len, bool after,
	       size_t examine, shard_scan_fn *fn, shard_scan_done_fn *done, void *arg)
{
	return scan_begin(s, start, start_len, after, examine, fn, NULL, done, arg);
}

int shard_scan_expired(struct shard *s, const void *start, size_t start_len, bool after,
		       size_t examine, shard_scan_expired_fn *fn, shard_scan_done_fn *done,
		       void *arg)
{
	return scan_begin(s, start, start_len, after, examine, NULL, fn, done, arg);
}

int shard_scan_all(struct shard *s, const void *start, size_t start_len, bool after,
		   size_t examine, shard_scan_fn *fn, shard_scan_expired_fn *expired,
		   shard_scan_done_fn *done, void *arg)
{
	return scan_begin(s, start, start_len, after, examine, fn, expired, done, arg);
}
