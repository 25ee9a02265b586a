/*
 * Compaction picking and the k-way merge; the policy is in compaction_pick.h.
 *
 * The merge's invariant: merge_next() decides only when no slot is EMPTY, so
 * every source's current entry is in the heap, and because each source's
 * keys increase, every copy of the smallest key is at the heap's top. The
 * heap orders by key, then newest first, so the top is the entry to keep and
 * the copies popped after it are shadowed.
 */
#include "shard/compaction_pick.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"

void compaction_options_default(struct compaction_options *opt)
{
	assert(opt != NULL);
	opt->base_bytes = 8u << 20;
	opt->level_ratio = 10;
	opt->l0_trigger = 4;
}

uint64_t compaction_level_target(const struct compaction_options *opt, unsigned level)
{
	uint64_t target;

	assert(opt != NULL && level >= 1);
	target = opt->base_bytes * 10;
	for (unsigned l = 1; l < level; l++) {
		if (target > UINT64_MAX / opt->level_ratio)
			return UINT64_MAX;
		target *= opt->level_ratio;
	}
	return target;
}

void compaction_cursor_init(struct compaction_cursor *cur)
{
	assert(cur != NULL);
	memset(cur, 0, sizeof(*cur));
}

void compaction_cursor_destroy(struct compaction_cursor *cur)
{
	assert(cur != NULL);
	for (int l = 0; l < MANIFEST_LEVELS; l++)
		sstable_buf_free(&cur->key[l]);
	memset(cur, 0, sizeof(*cur));
}

int compaction_cursor_advance(struct compaction_cursor *cur, const struct manifest_version *v,
			      const struct compaction *c)
{
	const struct manifest_file *f;
	struct sstable_buf *k;
	int rv;

	assert(cur != NULL && v != NULL && c != NULL && c->level < MANIFEST_LEVELS);
	if (c->level == 0)
		return 0; /* L0 is compacted whole */
	assert(c->inputs[0].count == 1 && c->inputs[0].first < v->levels[c->level].count);
	f = &v->levels[c->level].files[c->inputs[0].first];
	k = &cur->key[c->level];
	k->len = 0;
	rv = sstable_buf_append(k, f->largest, f->largest_len);
	cur->set[c->level] = rv == 0;
	return rv;
}

static int key_cmp_files_largest(const struct manifest_file *f, const void *key, size_t len)
{
	return key_order_cmp(f->largest, f->largest_len, key, len);
}

size_t compaction_overlapping(const struct manifest_version *v, unsigned level,
			      const void *smallest, size_t smallest_len, const void *largest,
			      size_t largest_len, size_t *first)
{
	const struct manifest_level *lv;
	size_t lo = 0, hi, n;

	assert(v != NULL && first != NULL && level >= 1 && level < MANIFEST_LEVELS);
	lv = &v->levels[level];
	hi = lv->count;
	/* First file whose largest key is >= smallest. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (key_cmp_files_largest(&lv->files[mid], smallest, smallest_len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*first = lo;
	for (n = 0; lo + n < lv->count; n++) {
		const struct manifest_file *f = &lv->files[lo + n];

		if (key_order_cmp(f->smallest, f->smallest_len, largest, largest_len) > 0)
			break;
	}
	return n;
}

/* Widens [*lo, *hi] to cover the files of `in`. */
static void widen(const struct manifest_version *v, const struct compaction_input *in,
		  struct compaction *c)
{
	const struct manifest_level *lv = &v->levels[in->level];

	for (size_t i = in->first; i < in->first + in->count; i++) {
		const struct manifest_file *f = &lv->files[i];

		if (c->smallest == NULL ||
		    key_order_cmp(f->smallest, f->smallest_len, c->smallest, c->smallest_len) < 0) {
			c->smallest = f->smallest;
			c->smallest_len = f->smallest_len;
		}
		if (c->largest == NULL ||
		    key_order_cmp(f->largest, f->largest_len, c->largest, c->largest_len) > 0) {
			c->largest = f->largest;
			c->largest_len = f->largest_len;
		}
	}
}

/* The level-n file to compact next: first past the cursor, else the first. */
static size_t next_file(const struct manifest_level *lv, const struct compaction_cursor *cur,
			unsigned level)
{
	if (cur == NULL || !cur->set[level])
		return 0;
	for (size_t i = 0; i < lv->count; i++) {
		const struct manifest_file *f = &lv->files[i];

		if (key_order_cmp(f->smallest, f->smallest_len, cur->key[level].data,
				    cur->key[level].len) > 0)
			return i;
	}
	return 0;
}

bool compaction_pick(const struct manifest_version *v, const struct compaction_options *opt,
		     const struct compaction_cursor *cur, struct compaction *out)
{
	double best = 0;
	int level = -1;
	size_t first, n;

	assert(v != NULL && opt != NULL && out != NULL && opt->l0_trigger >= 1);
	if (v->levels[0].count != 0) {
		best = (double)v->levels[0].count / opt->l0_trigger;
		level = 0;
	}
	for (unsigned l = 1; l + 1 < MANIFEST_LEVELS; l++) {
		double score = (double)v->levels[l].bytes / (double)compaction_level_target(opt, l);

		if (v->levels[l].count != 0 && (level < 0 || score > best)) {
			best = score;
			level = (int)l;
		}
	}
	if (level < 0 || best < 1.0)
		return false;

	memset(out, 0, sizeof(*out));
	out->level = (uint32_t)level;
	out->output_level = (uint32_t)level + 1;
	out->score = best;
	out->inputs[0].level = (uint32_t)level;
	if (level == 0) {
		out->inputs[0].first = 0;
		out->inputs[0].count = v->levels[0].count;
	} else {
		out->inputs[0].first = next_file(&v->levels[level], cur, (unsigned)level);
		out->inputs[0].count = 1;
	}
	widen(v, &out->inputs[0], out);
	n = compaction_overlapping(v, out->output_level, out->smallest, out->smallest_len,
				   out->largest, out->largest_len, &first);
	out->inputs[1].level = out->output_level;
	out->inputs[1].first = first;
	out->inputs[1].count = n;
	widen(v, &out->inputs[1], out);
	out->trivial_move = out->inputs[0].count == 1 && n == 0;

	out->drop_tombstones = true;
	for (unsigned l = out->output_level + 1; l < MANIFEST_LEVELS; l++) {
		if (compaction_overlapping(v, l, out->smallest, out->smallest_len, out->largest,
					   out->largest_len, &first) != 0) {
			out->drop_tombstones = false;
			break;
		}
	}
	return true;
}

/* --- k-way merge --- */

/* true: slot a's entry comes before slot b's (smaller key, or same key and newer). */
static bool before(const struct merge *m, uint32_t a, uint32_t b)
{
	const struct merge_slot *x = &m->slots[a], *y = &m->slots[b];
	int c = key_order_cmp(x->entry.key, x->entry.key_len, y->entry.key, y->entry.key_len);

	return c < 0 || (c == 0 && x->age > y->age);
}

static void heap_push(struct merge *m, uint32_t slot)
{
	size_t i = m->heap_len++;

	m->heap[i] = slot;
	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!before(m, m->heap[i], m->heap[parent]))
			break;
		uint32_t t = m->heap[i];
		m->heap[i] = m->heap[parent];
		m->heap[parent] = t;
		i = parent;
	}
}

static uint32_t heap_pop(struct merge *m)
{
	uint32_t top = m->heap[0];
	size_t i = 0;

	m->heap[0] = m->heap[--m->heap_len];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;

		if (l < m->heap_len && before(m, m->heap[l], m->heap[min]))
			min = l;
		if (r < m->heap_len && before(m, m->heap[r], m->heap[min]))
			min = r;
		if (min == i)
			break;
		uint32_t t = m->heap[i];
		m->heap[i] = m->heap[min];
		m->heap[min] = t;
		i = min;
	}
	return top;
}

int merge_init(struct merge *m, const uint64_t *ages, size_t nslots, bool drop_tombstones)
{
	assert(m != NULL && ages != NULL && nslots >= 1 && nslots < UINT32_MAX);
	memset(m, 0, sizeof(*m));
	m->slots = calloc(nslots, sizeof(*m->slots));
	m->heap = calloc(nslots, sizeof(*m->heap));
	if (m->slots == NULL || m->heap == NULL) {
		merge_destroy(m);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nslots; i++) {
		for (size_t j = 0; j < i; j++)
			assert(ages[i] != ages[j]);
		m->slots[i].state = MERGE_SLOT_EMPTY;
		m->slots[i].age = ages[i];
	}
	m->nslots = nslots;
	m->nempty = nslots;
	m->drop_tombstones = drop_tombstones;
	return 0;
}

void merge_destroy(struct merge *m)
{
	assert(m != NULL);
	free(m->slots);
	free(m->heap);
	sstable_buf_free(&m->last_key);
	m->slots = NULL;
	m->heap = NULL;
}

void merge_feed(struct merge *m, size_t slot, const void *key, size_t key_len,
		const void *value, size_t value_len, enum sstable_kind kind)
{
	struct merge_slot *s;

	assert(m != NULL && slot < m->nslots);
	s = &m->slots[slot];
	assert(s->state == MERGE_SLOT_EMPTY);
	assert(key != NULL || key_len == 0);
	s->entry.key = key;
	s->entry.key_len = key_len;
	s->entry.value = kind == SSTABLE_TOMBSTONE ? NULL : value;
	s->entry.value_len = kind == SSTABLE_TOMBSTONE ? 0 : value_len;
	s->entry.kind = kind;
	s->entry.slot = slot;
	s->state = MERGE_SLOT_FULL;
	m->nempty--;
	heap_push(m, (uint32_t)slot);
}

void merge_feed_end(struct merge *m, size_t slot)
{
	assert(m != NULL && slot < m->nslots && m->slots[slot].state == MERGE_SLOT_EMPTY);
	m->slots[slot].state = MERGE_SLOT_DONE;
	m->nempty--;
}

static void take(struct merge *m, uint32_t slot)
{
	m->slots[slot].state = MERGE_SLOT_EMPTY;
	m->nempty++;
}

enum merge_result merge_next(struct merge *m, struct merge_entry *out, size_t *need_slot)
{
	assert(m != NULL && out != NULL && need_slot != NULL);
	for (;;) {
		const struct merge_entry *e;
		uint32_t w;

		if (m->nempty != 0) {
			for (size_t i = 0; i < m->nslots; i++) {
				if (m->slots[i].state == MERGE_SLOT_EMPTY) {
					*need_slot = i;
					return MERGE_NEED;
				}
			}
		}
		if (m->heap_len == 0)
			return MERGE_END;
		w = heap_pop(m);
		e = &m->slots[w].entry;
		if (m->have_last &&
		    key_order_cmp(e->key, e->key_len, m->last_key.data, m->last_key.len) <= 0) {
			m->error = RKV_ECORRUPT;
			return MERGE_ERROR;
		}
		m->last_key.len = 0;
		if (sstable_buf_append(&m->last_key, e->key, e->key_len) != 0) {
			m->error = -ENOMEM;
			return MERGE_ERROR;
		}
		m->have_last = true;
		take(m, w);
		/* Older copies of the same key sit right below the top. */
		while (m->heap_len != 0) {
			uint32_t top = m->heap[0];
			const struct merge_entry *o = &m->slots[top].entry;

			if (key_order_cmp(o->key, o->key_len, e->key, e->key_len) != 0)
				break;
			heap_pop(m);
			take(m, top);
			m->dropped_shadowed++;
		}
		if (e->kind == SSTABLE_TOMBSTONE && m->drop_tombstones) {
			m->dropped_tombstones++;
			continue;
		}
		*out = *e;
		return MERGE_ENTRY;
	}
}
