/*
 * The deadline index (shard/deadline_index.h): a hash table of entries by
 * key (open addressing, linear probing, backward-shift deletion) and a
 * binary min-heap of (deadline, entry); each entry knows its heap place.
 *
 * Beside each slot's entry pointer the table keeps the low 32 bits of its
 * key's hash (`hashes`), so that walking a run of the table reads only the
 * table: an entry is read when its hash bits match (a probe's last step,
 * almost always), never to learn where another entry's home is. Reading
 * each entry of the run cost a cache miss per step and was the largest
 * part of a mass expiry's apply (docs/PERFORMANCE.md, "Session 10: mass
 * expiry").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "shard/deadline_index.h"

#define DI_CHUNK (64u << 10)
#define DI_POOL_MAX (16u * (DEADLINE_INDEX_CLASSES + 1)) /* 512: larger is malloc'd */
#define DI_TABLE_MIN 64
#define DI_HEAP_MIN 64
/*
 * The table's hash is seeded, never XXH3_64bits(key) itself: a key's slot
 * is that hash mod 16384 (shard/route.c), and a shard holds a range of
 * slots, so every key of a shard shares that hash's low bits' range. Homes
 * taken from those bits would fall in a sixteenth of the table (with 16
 * shards) and pile up into runs of thousands of entries: that made a mass
 * expiry's apply walk them, 68% of the nodes' CPU (docs/PERFORMANCE.md,
 * "Session 10: mass expiry"). Any other seed than 0 is as good.
 */
#define DI_HASH_SEED 0x9e3779b97f4a7c15ull

static uint64_t key_hash(const void *key, size_t key_len)
{
	return XXH3_64bits_withSeed(key, key_len, DI_HASH_SEED);
}

struct di_entry {
	uint64_t hash;
	uint32_t heap;                  /* its place in the heap */
	uint32_t len;
	uint8_t key[];
};

static size_t entry_size(size_t key_len)
{
	size_t n = (sizeof(struct di_entry) + key_len + 15) & ~(size_t)15;

	return n < 32 ? 32 : n;
}

static struct di_entry *entry_alloc(struct deadline_index *x, size_t key_len)
{
	size_t size = entry_size(key_len);
	size_t cls = size / 16 - 2;
	void *p;

	if (size > DI_POOL_MAX)
		return malloc(size);
	if (x->free_list[cls]) {
		p = x->free_list[cls];
		x->free_list[cls] = *(void **)p;
		return p;
	}
	if (x->chunk_left < size) {
		if (x->nchunks == x->chunks_cap) {
			size_t cap = x->chunks_cap ? 2 * x->chunks_cap : 16;
			void **c = realloc(x->chunks, cap * sizeof *c);

			if (!c)
				return NULL;
			x->chunks = c;
			x->chunks_cap = cap;
		}
		/* The old chunk's tail (under 512 bytes) is left unused. */
		p = malloc(DI_CHUNK);
		if (!p)
			return NULL;
		x->chunks[x->nchunks++] = p;
		x->chunk_at = p;
		x->chunk_left = DI_CHUNK;
	}
	p = x->chunk_at;
	x->chunk_at += size;
	x->chunk_left -= size;
	return p;
}

static void entry_free(struct deadline_index *x, struct di_entry *e)
{
	size_t size = entry_size(e->len);

	if (size > DI_POOL_MAX) {
		free(e);
		return;
	}
	*(void **)(void *)e = x->free_list[size / 16 - 2];
	x->free_list[size / 16 - 2] = e;
}

/* ---- the heap ---- */

static void heap_put(struct deadline_index *x, size_t i, struct di_slot s)
{
	x->heap[i] = s;
	s.e->heap = (uint32_t)i;
}

static void sift_up(struct deadline_index *x, size_t i)
{
	struct di_slot s = x->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (x->heap[parent].deadline <= s.deadline)
			break;
		heap_put(x, i, x->heap[parent]);
		i = parent;
	}
	heap_put(x, i, s);
}

static void sift_down(struct deadline_index *x, size_t i)
{
	struct di_slot s = x->heap[i];
	size_t n = x->count;

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= n)
			break;
		if (child + 1 < n && x->heap[child + 1].deadline < x->heap[child].deadline)
			child++;
		if (x->heap[child].deadline >= s.deadline)
			break;
		heap_put(x, i, x->heap[child]);
		i = child;
	}
	heap_put(x, i, s);
}

/* Moves heap place i after its deadline changed. */
static void heap_fix(struct deadline_index *x, size_t i)
{
	if (i > 0 && x->heap[(i - 1) / 2].deadline > x->heap[i].deadline)
		sift_up(x, i);
	else
		sift_down(x, i);
}

/* ---- the hash table ---- */

static size_t probe(const struct deadline_index *x, uint64_t hash, const void *key,
		    size_t key_len, bool *found)
{
	size_t mask = x->table_cap - 1;
	size_t i = (size_t)hash & mask;
	uint32_t low = (uint32_t)hash;

	for (;;) {
		const struct di_entry *e = x->table[i];

		if (!e) {
			*found = false;
			return i;
		}
		if (x->hashes[i] == low && e->hash == hash && e->len == key_len &&
		    !memcmp(e->key, key, key_len)) {
			*found = true;
			return i;
		}
		i = (i + 1) & mask;
	}
}

/* One block: the pointers, then the hash bits (freed with the table). */
static int table_grow(struct deadline_index *x)
{
	size_t cap = x->table_cap ? 2 * x->table_cap : DI_TABLE_MIN;
	struct di_entry **t;
	uint32_t *h;

	if (cap > (size_t)UINT32_MAX + 1) /* homes come from 32 hash bits */
		return -ENOMEM;
	t = calloc(cap, sizeof *t + sizeof *h);
	if (!t)
		return -ENOMEM;
	h = (uint32_t *)(void *)(t + cap);
	for (size_t i = 0; i < x->table_cap; i++) {
		size_t j;

		if (!x->table[i])
			continue;
		for (j = x->hashes[i] & (cap - 1); t[j]; j = (j + 1) & (cap - 1))
			;
		t[j] = x->table[i];
		h[j] = x->hashes[i];
	}
	free(x->table);
	x->table = t;
	x->hashes = h;
	x->table_cap = cap;
	return 0;
}

/* Empties slot i, moving later entries of its run back (no tombstones). */
static void table_remove_at(struct deadline_index *x, size_t i)
{
	size_t mask = x->table_cap - 1;
	size_t j = i;

	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!x->table[j])
			break;
		home = x->hashes[j] & mask;
		/* Entry j may fill the hole at i when its home is not in (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			x->table[i] = x->table[j];
			x->hashes[i] = x->hashes[j];
			i = j;
		}
	}
	x->table[i] = NULL;
}

static void remove_entry(struct deadline_index *x, size_t slot)
{
	struct di_entry *e = x->table[slot];
	size_t at = e->heap;

	table_remove_at(x, slot);
	x->count--;
	if (at != x->count) {
		heap_put(x, at, x->heap[x->count]);
		heap_fix(x, at);
	}
	entry_free(x, e);
}

static int fail(struct deadline_index *x)
{
	deadline_index_clear(x);
	x->failed = true;
	return -ENOMEM;
}

int deadline_index_set(struct deadline_index *x, const void *key, size_t key_len,
		       uint64_t deadline)
{
	struct di_entry *e;
	bool found = false;
	size_t slot = 0;
	uint64_t hash;

	x->seq++;
	if (!deadline && !x->count)
		return 0; /* a keyspace without deadlines costs no hash */
	hash = key_hash(key, key_len);
	if (x->table_cap)
		slot = probe(x, hash, key, key_len, &found);
	if (found) {
		e = x->table[slot];
		if (!deadline) {
			remove_entry(x, slot);
			return 0;
		}
		x->heap[e->heap].deadline = deadline;
		heap_fix(x, e->heap);
		return 0;
	}
	if (!deadline || key_len > UINT32_MAX)
		return 0;
	if ((x->count + 1) * 4 > x->table_cap * 3) {
		if (table_grow(x))
			return fail(x);
		slot = probe(x, hash, key, key_len, &found);
	}
	if (x->count == x->heap_cap) {
		size_t cap = x->heap_cap ? 2 * x->heap_cap : DI_HEAP_MIN;
		struct di_slot *h = realloc(x->heap, cap * sizeof *h);

		if (!h)
			return fail(x);
		x->heap = h;
		x->heap_cap = cap;
	}
	e = entry_alloc(x, key_len);
	if (!e)
		return fail(x);
	e->hash = hash;
	e->len = (uint32_t)key_len;
	if (key_len)
		memcpy(e->key, key, key_len);
	x->table[slot] = e;
	x->hashes[slot] = (uint32_t)hash;
	x->heap[x->count] = (struct di_slot){ deadline, e };
	e->heap = (uint32_t)x->count;
	x->count++;
	sift_up(x, x->count - 1);
	return 0;
}

uint64_t deadline_index_get(const struct deadline_index *x, const void *key, size_t key_len)
{
	bool found;
	size_t slot;

	if (!x->table_cap)
		return 0;
	slot = probe(x, key_hash(key, key_len), key, key_len, &found);
	return found ? x->heap[x->table[slot]->heap].deadline : 0;
}

/*
 * The keys past their deadline are a part of the heap closed under
 * parents (a node is past when any child is), so a depth-first walk that
 * stops at nodes not past visits exactly them; its stack holds at most one
 * pending sibling per level.
 */
size_t deadline_index_due(const struct deadline_index *x, uint64_t now, size_t limit,
			  deadline_index_fn *fn, void *arg)
{
	size_t stack[64];
	size_t depth = 0, n = 0, i = 0;

	if (!x->count)
		return 0;
	for (;;) {
		if (i < x->count && now > x->heap[i].deadline && n < limit) {
			if (fn)
				fn(arg, x->heap[i].e->key, x->heap[i].e->len, x->heap[i].deadline);
			n++;
			if (depth < sizeof stack / sizeof stack[0])
				stack[depth++] = 2 * i + 2;
			i = 2 * i + 1;
			continue;
		}
		if (!depth || n >= limit)
			break;
		i = stack[--depth];
	}
	return n;
}

size_t deadline_index_due_count(const struct deadline_index *x, uint64_t now)
{
	return deadline_index_due(x, now, SIZE_MAX, NULL, NULL);
}

void deadline_index_clear(struct deadline_index *x)
{
	for (size_t i = 0; i < x->table_cap; i++)
		if (x->table[i] && entry_size(x->table[i]->len) > DI_POOL_MAX)
			free(x->table[i]);
	if (x->table)
		memset(x->table, 0, x->table_cap * sizeof *x->table);
	for (size_t i = 0; i < x->nchunks; i++)
		free(x->chunks[i]);
	x->nchunks = 0;
	x->chunk_at = NULL;
	x->chunk_left = 0;
	memset(x->free_list, 0, sizeof x->free_list);
	x->count = 0;
	x->seq++;
}

void deadline_index_destroy(struct deadline_index *x)
{
	uint64_t seq = x->seq;

	deadline_index_clear(x);
	free(x->table);
	free(x->heap);
	free(x->chunks);
	memset(x, 0, sizeof *x);
	x->seq = seq + 1;
}

size_t deadline_index_longest_run(const struct deadline_index *x)
{
	size_t longest = 0, run = 0, first = 0;

	for (size_t i = 0; i < x->table_cap; i++) {
		if (x->table[i]) {
			run++;
			continue;
		}
		if (run == i)
			first = run; /* the run at slot 0 may go on from the end */
		longest = run > longest ? run : longest;
		run = 0;
	}
	if (run == x->table_cap)
		return run;
	run += first;
	return run > longest ? run : longest;
}

size_t deadline_index_memory(const struct deadline_index *x)
{
	size_t n = x->table_cap * (sizeof *x->table + sizeof *x->hashes) +
		   x->heap_cap * sizeof *x->heap +
		   x->nchunks * (DI_CHUNK + sizeof *x->chunks);

	for (size_t i = 0; i < x->table_cap; i++)
		if (x->table[i] && entry_size(x->table[i]->len) > DI_POOL_MAX)
			n += entry_size(x->table[i]->len);
	return n;
}
