/*
 * Arena memtable: a skiplist whose nodes, keys and values are all carved from
 * one bump arena, so a put costs no malloc and the whole table is released by
 * unmapping.
 *
 * Layout. Each distinct key gets one 8-byte aligned node from the FRONT of
 * the arena:
 *
 *   struct mt_node | next[height] | key bytes
 *
 * and each value is taken from the BACK (arena_alloc_back). The key sits
 * right after the tower, so comparing a node's key during a search touches
 * the cache line already loaded to read its next pointers; keeping values
 * out of the front packs the nodes a search walks into fewer lines and
 * pages (about 30% faster gets at 100k keys with 100-byte values). An
 * overwrite allocates only the new value and repoints `value`; the old
 * bytes stay until the memtable is dropped.
 *
 * Invariants:
 * - level-0 list is strictly increasing by key (memcmp, shorter first on a
 *   common prefix); every higher level is a sub-list of the one below.
 * - a write checks room for everything it will allocate (node and value)
 *   after the search and before allocating anything, so RKV_EFULL means no
 *   allocation, link, count or PRNG change.
 * - memtable_entry_cost() covers the most a write can take: a new node at
 *   the maximum height, its worst alignment padding, and the value.
 *
 * A hash index beside the skiplist finds a key's node without the search:
 * an open-addressing table (linear probing) of 8-byte slots, each the
 * upper 32 bits of the key's XXH3 hash and the node's position in the
 * arena (offset / 8, plus 1 so that 0 means empty). Gets, overwrites and
 * deletes of a key already in the table cost a hash and one or two cache
 * misses instead of a miss per skiplist level (perf put the skiplist
 * search at 28% of a replicated write's CPU); a get of an absent key ends
 * at the first empty slot. Only a new key still searches the skiplist, for
 * its predecessors. Nodes are never removed, so slots never are either (no
 * tombstones in the table). The table doubles when it is 3/4 full; the
 * slots keep enough hash bits to be rehashed without touching a node. Its
 * memory is a mapping of its own beside the arena (8 bytes per slot, at
 * most 2 slots per 3/4 key: about 11-21 bytes per key); a memtable can be
 * started at the size its predecessor reached (memtable_create_sized), so
 * a steady workload never rehashes. The index only accelerates: if a
 * mapping cannot be grown the memtable drops the index and searches the
 * skiplist from then on, so it adds no failure to a write.
 *
 * Heights come from an internal xorshift64* generator with a fixed seed: the
 * same sequence of successful inserts builds the same shape every run.
 *
 * Arenas are reused: each thread (a core, whose shards share it) keeps the
 * arena of the last memtable it destroyed, and the next memtable of the
 * same size takes it with its pages still mapped. A fresh mapping costs a
 * page fault and a zeroed page per 4 KiB written, which perf put at about
 * 5% of a replicated write's CPU. The cost is one memtable's pages per core
 * staying resident between memtables.
 */
#include "shard/memtable.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <xxhash.h>

#include "core/errors.h"
#include "core/le.h"
#include "shard/arena.h"
#include "shard/key_order.h"

#define MT_MAX_HEIGHT 12           /* with p = 1/4: ~16M keys before it caps */
#define MT_NODE_ALIGN (_Alignof(struct mt_node))
#define MT_MAX_LEN UINT32_MAX      /* key and value lengths are stored as u32 */
#define MT_SEED 0x9E3779B97F4A7C15ull
#define MT_INDEX_MIN 512           /* slots: one 4 KiB page */
#define MT_INDEX_MAX_ARENA (((size_t)UINT32_MAX - 1) * 8) /* node offset / 8 fits 32 bits */

struct mt_node {
	const uint8_t *value; /* value bytes in the arena; NULL for a tombstone */
	uint32_t key_len;
	uint32_t value_len;   /* 0 for a tombstone */
	uint8_t height;       /* entries in next[] */
	uint8_t flags;        /* MEMTABLE_DEADLINE (in the padding: no cost) */
	struct mt_node *next[];
};

/* The arena of the memtable this thread destroyed last (base NULL: none). */
static __thread struct arena spare_arena;

/*
 * The hash index: `cap` slots (a power of two, mapped), `slots` NULL when
 * the index was dropped (a failed growth) and every lookup searches the
 * skiplist. A slot is hash32 << 32 | (node offset / 8 + 1); 0 is empty.
 */
struct mt_index {
	uint64_t *slots;
	size_t cap;
};

struct memtable {
	struct arena arena;
	struct mt_node *head; /* sentinel, MT_MAX_HEIGHT tall, malloc'd */
	size_t count;         /* distinct keys, tombstones included */
	uint64_t rng;         /* xorshift64* state for tower heights */
	unsigned height;      /* tallest tower in use, >= 1 */
	struct mt_index index;
	uint64_t hash_seed;   /* the index's, random per memtable */
};

static inline const uint8_t *node_key(const struct mt_node *n)
{
	return (const uint8_t *)&n->next[n->height];
}

static inline size_t node_size(unsigned height, size_t key_len)
{
	return sizeof(struct mt_node) + height * sizeof(struct mt_node *) + key_len;
}

static inline int node_cmp(const struct mt_node *n, const uint8_t *key,
			   size_t key_len)
{
	return key_order_cmp(node_key(n), n->key_len, key, key_len);
}

static uint64_t rng_next(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* Height h with probability (3/4) * (1/4)^(h-1), capped at MT_MAX_HEIGHT. */
static unsigned random_height(uint64_t *state)
{
	uint64_t r = rng_next(state) | (1ull << 62);
	unsigned h = 1 + (unsigned)__builtin_ctzll(r) / 2;

	return h < MT_MAX_HEIGHT ? h : MT_MAX_HEIGHT;
}

/*
 * Finds the first node >= key. When `prev` is not NULL, fills prev[l] with
 * the last node < key at every level l < MT_MAX_HEIGHT.
 */
static struct mt_node *find_ge(const struct memtable *mt, const uint8_t *key,
			       size_t key_len, struct mt_node **prev)
{
	struct mt_node *x = mt->head;
	struct mt_node *known_ge = NULL; /* compared >= key one level up */
	unsigned level = mt->height - 1;

	for (;;) {
		struct mt_node *next = x->next[level];

		if (next != NULL && next != known_ge) {
			__builtin_prefetch(next->next[level]);
			if (node_cmp(next, key, key_len) < 0) {
				x = next;
				continue;
			}
			known_ge = next;
		}
		if (prev != NULL)
			prev[level] = x;
		if (level == 0)
			return x->next[0];
		level--;
	}
}

/*
 * Keys come from clients: with a hash anyone can compute, keys made to
 * share a few slots turn every lookup into a long probe (a review measured
 * puts 200x slower). Each memtable draws its own seed.
 */
static uint32_t key_hash(const struct memtable *mt, const uint8_t *key, size_t key_len)
{
	return (uint32_t)(XXH3_64bits_withSeed(key, key_len, mt->hash_seed) >> 32);
}

static uint64_t random_seed(void)
{
	uint64_t seed = 0;

	/* Start-up and memtable switches only. A failure falls back to the
	 * clock: weaker, but the memtable still works. */
	if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		seed = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec;
	}
	return seed;
}

static uint64_t *index_map(size_t cap)
{
	void *p = mmap(NULL, cap * sizeof(uint64_t), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void index_unmap(struct mt_index *ix)
{
	if (ix->slots != NULL)
		munmap(ix->slots, ix->cap * sizeof(uint64_t));
	ix->slots = NULL;
	ix->cap = 0;
}

static inline uint64_t slot_of(const struct memtable *mt, const struct mt_node *n, uint32_t h)
{
	size_t off = (size_t)((const uint8_t *)n - mt->arena.base);

	return (uint64_t)h << 32 | (uint64_t)(off / MT_NODE_ALIGN + 1);
}

static inline struct mt_node *slot_node(const struct memtable *mt, uint64_t slot)
{
	return (struct mt_node *)(mt->arena.base +
				  ((size_t)(uint32_t)slot - 1) * MT_NODE_ALIGN);
}

/*
 * The node of `key` through the index, or NULL. *pos is the slot where it
 * was found or, when absent, the empty slot that ends its probe run.
 */
static struct mt_node *index_find(const struct memtable *mt, uint32_t h,
				  const uint8_t *key, size_t key_len, size_t *pos)
{
	const struct mt_index *ix = &mt->index;
	size_t mask = ix->cap - 1;
	size_t i = h & mask;

	for (;;) {
		uint64_t slot = ix->slots[i];

		if (slot == 0) {
			*pos = i;
			return NULL;
		}
		if ((uint32_t)(slot >> 32) == h) {
			struct mt_node *n = slot_node(mt, slot);

			if (node_cmp(n, key, key_len) == 0) {
				*pos = i;
				return n;
			}
		}
		i = (i + 1) & mask;
	}
}

/* Moves every slot into a table of `cap` slots. -ENOMEM leaves it as it was. */
static int index_resize(struct mt_index *ix, size_t cap)
{
	uint64_t *slots = index_map(cap);
	size_t mask = cap - 1;

	if (slots == NULL)
		return -ENOMEM;
	for (size_t j = 0; j < ix->cap; j++) {
		uint64_t slot = ix->slots[j];
		size_t i;

		if (slot == 0)
			continue;
		for (i = (uint32_t)(slot >> 32) & mask; slots[i] != 0; i = (i + 1) & mask)
			;
		slots[i] = slot;
	}
	index_unmap(ix);
	ix->slots = slots;
	ix->cap = cap;
	return 0;
}

/*
 * Makes room for one more key (the table stays at most 3/4 full). A table
 * that cannot grow is dropped: the skiplist alone serves from then on.
 */
static void index_reserve_one(struct memtable *mt)
{
	struct mt_index *ix = &mt->index;

	if (ix->slots == NULL || (mt->count + 1) * 4 <= ix->cap * 3)
		return;
	if (index_resize(ix, ix->cap * 2) != 0)
		index_unmap(ix);
}

/* Index slots for `keys` keys at most 3/4 full, a power of two. */
static size_t index_cap_for(size_t keys)
{
	size_t cap = MT_INDEX_MIN;

	while (cap < SIZE_MAX / 8 && keys * 4 > cap * 3)
		cap *= 2;
	return cap;
}

int memtable_create(struct memtable **out, size_t arena_bytes)
{
	return memtable_create_sized(out, arena_bytes, 0);
}

int memtable_create_sized(struct memtable **out, size_t arena_bytes, size_t expected_keys)
{
	struct memtable *mt;
	int rv;

	assert(out != NULL);
	mt = calloc(1, sizeof(*mt));
	if (mt == NULL) {
		rv = -ENOMEM;
		goto err;
	}
	mt->head = calloc(1, node_size(MT_MAX_HEIGHT, 0));
	if (mt->head == NULL) {
		rv = -ENOMEM;
		goto err_after_alloc;
	}
	mt->head->height = MT_MAX_HEIGHT;
	if (spare_arena.base != NULL && spare_arena.capacity == arena_bytes) {
		mt->arena = spare_arena;
		arena_reset(&mt->arena);
		spare_arena.base = NULL;
	} else {
		rv = arena_init(&mt->arena, arena_bytes);
		if (rv != 0)
			goto err_after_head;
	}
	mt->rng = MT_SEED;
	mt->height = 1;
	/* Without an index the memtable still works (the skiplist alone):
	 * an arena too large for 32-bit node numbers has none. */
	mt->hash_seed = random_seed();
	if (arena_bytes <= MT_INDEX_MAX_ARENA) {
		mt->index.cap = index_cap_for(expected_keys);
		mt->index.slots = index_map(mt->index.cap);
	}
	if (mt->index.slots == NULL)
		mt->index.cap = 0;
	*out = mt;
	return 0;

err_after_head:
	free(mt->head);
err_after_alloc:
	free(mt);
err:
	assert(rv != 0);
	return rv;
}

void memtable_destroy(struct memtable *mt)
{
	if (mt == NULL)
		return;
	/* The newest is kept: an older spare may be of a size no longer
	 * asked for (a shard's first memtable is larger). */
	if (mt->arena.base != NULL) {
		if (spare_arena.base != NULL)
			arena_destroy(&spare_arena);
		spare_arena = mt->arena;
	}
	index_unmap(&mt->index);
	free(mt->head);
	free(mt);
}

size_t memtable_entry_cost(size_t key_len, size_t value_len)
{
	if (key_len > MT_MAX_LEN || value_len > MT_MAX_LEN)
		return SIZE_MAX; /* never fits: put refuses it with RKV_EFULL */
	/* A new node at full height, worst-case padding, and the value. */
	return (MT_NODE_ALIGN - 1) + node_size(MT_MAX_HEIGHT, key_len) + value_len;
}

size_t memtable_remaining(const struct memtable *mt)
{
	return arena_remaining(&mt->arena);
}

size_t memtable_used(const struct memtable *mt)
{
	return mt->arena.used;
}

size_t memtable_count(const struct memtable *mt)
{
	return mt->count;
}

size_t memtable_index_slots(const struct memtable *mt)
{
	return mt->index.cap;
}

void memtable_drop_index(struct memtable *mt)
{
	index_unmap(&mt->index);
}

/* The node of `key`, or NULL: through the index, or the skiplist without one. */
static struct mt_node *find_eq(const struct memtable *mt, const uint8_t *key, size_t key_len)
{
	struct mt_node *node;
	size_t pos;

	if (mt->index.slots != NULL)
		return index_find(mt, key_hash(mt, key, key_len), key, key_len, &pos);
	node = find_ge(mt, key, key_len, NULL);
	return node != NULL && node_cmp(node, key, key_len) == 0 ? node : NULL;
}

void memtable_prefetch(const struct memtable *mt, const void *key, size_t key_len, bool node)
{
	const struct mt_index *ix = &mt->index;
	uint32_t h;
	uint64_t slot;
	size_t i;

	if (ix->slots == NULL)
		return;
	h = key_hash(mt, key, key_len);
	i = h & (ix->cap - 1);
	if (!node) {
		__builtin_prefetch(&ix->slots[i], 0, 1);
		return;
	}
	slot = ix->slots[i];
	if (slot != 0 && (uint32_t)(slot >> 32) == h)
		__builtin_prefetch(slot_node(mt, slot), 1, 1);
}

static void store_value(uint8_t *mem, const uint8_t *value, size_t value_len,
			uint64_t deadline)
{
	if (deadline) {
		put_le64(mem, deadline);
		mem += MEMTABLE_DEADLINE_SIZE;
	}
	if (value_len != 0)
		memcpy(mem, value, value_len);
}

/* The common write: `value` NULL with tombstone true records a delete. */
static int write_entry(struct memtable *mt, const uint8_t *key, size_t key_len,
		       const uint8_t *value, size_t value_len, bool tombstone, uint64_t deadline,
		       struct memtable_prior *prior)
{
	/* A value with a deadline is stored behind it (memtable.h). */
	size_t stored_len = value_len + (deadline ? MEMTABLE_DEADLINE_SIZE : 0);
	uint8_t flags = deadline ? MEMTABLE_DEADLINE : 0;

	struct mt_node *prev[MT_MAX_HEIGHT];
	struct mt_node *node;
	uint64_t rng;
	unsigned height;
	uint8_t *mem;
	uint32_t h = 0;
	size_t pos = 0;

	assert(mt != NULL);
	assert(key != NULL || key_len == 0);
	assert(value != NULL || value_len == 0);
	if (key_len > MT_MAX_LEN || stored_len > MT_MAX_LEN)
		return RKV_EFULL;

	if (mt->index.slots != NULL) {
		h = key_hash(mt, key, key_len);
		node = index_find(mt, h, key, key_len, &pos);
	} else {
		node = find_ge(mt, key, key_len, prev);
		if (node != NULL && node_cmp(node, key, key_len) != 0)
			node = NULL;
	}
	if (node != NULL) {
		if (prior) {
			/* The old bytes stay in the arena: the pointer outlives
			 * the overwrite. */
			prior->state = node->value ? 0 : RKV_EDELETED;
			prior->value = node->value;
			prior->value_len = node->value_len;
			prior->flags = node->flags;
		}
		if (tombstone) {
			node->value = NULL;
			node->value_len = 0;
			node->flags = 0;
			return 0;
		}
		/* A non-NULL pointer marks "not a tombstone", even for 0 bytes. */
		mem = arena_alloc_back(&mt->arena, stored_len);
		if (mem == NULL)
			return RKV_EFULL;
		store_value(mem, value, value_len, deadline);
		node->value = mem;
		node->value_len = (uint32_t)stored_len;
		node->flags = flags;
		return 0;
	}

	if (prior) {
		prior->state = RKV_ENOTFOUND;
		prior->value = NULL;
		prior->value_len = 0;
		prior->flags = 0;
	}
	rng = mt->rng;
	height = random_height(&rng);
	/* Two allocations, node and value: check room for both (with the
	 * worst-case padding) so that neither can fail after the other. */
	if (arena_remaining(&mt->arena) <
	    (MT_NODE_ALIGN - 1) + node_size(height, key_len) + stored_len)
		return RKV_EFULL;
	if (mt->index.slots != NULL) {
		size_t cap = mt->index.cap;

		index_reserve_one(mt);
		if (mt->index.cap != cap && mt->index.slots != NULL)
			(void)index_find(mt, h, key, key_len, &pos); /* moved */
		/* The predecessors the index spared us: a new key needs them. */
		node = find_ge(mt, key, key_len, prev);
		assert(node == NULL || node_cmp(node, key, key_len) > 0);
	}
	mem = arena_alloc(&mt->arena, node_size(height, key_len), MT_NODE_ALIGN);
	assert(mem != NULL);
	mt->rng = rng;

	node = (struct mt_node *)mem;
	node->height = (uint8_t)height;
	node->flags = tombstone ? 0 : flags;
	node->key_len = (uint32_t)key_len;
	if (key_len != 0)
		memcpy((uint8_t *)node_key(node), key, key_len);
	if (tombstone) {
		node->value = NULL;
		node->value_len = 0;
	} else {
		uint8_t *v = arena_alloc_back(&mt->arena, stored_len);

		assert(v != NULL);
		store_value(v, value, value_len, deadline);
		node->value = v;
		node->value_len = (uint32_t)stored_len;
	}
	if (height > mt->height) {
		for (unsigned l = mt->height; l < height; l++)
			prev[l] = mt->head;
		mt->height = height;
	}
	for (unsigned l = 0; l < height; l++) {
		node->next[l] = prev[l]->next[l];
		prev[l]->next[l] = node;
	}
	if (mt->index.slots != NULL)
		mt->index.slots[pos] = slot_of(mt, node, h);
	mt->count++;
	return 0;
}

int memtable_put(struct memtable *mt, const void *key, size_t key_len,
		 const void *value, size_t value_len)
{
	return write_entry(mt, key, key_len, value, value_len, false, 0, NULL);
}

int memtable_put_prior(struct memtable *mt, const void *key, size_t key_len,
		       const void *value, size_t value_len, struct memtable_prior *prior)
{
	return write_entry(mt, key, key_len, value, value_len, false, 0, prior);
}

int memtable_put_deadline(struct memtable *mt, const void *key, size_t key_len,
			  const void *value, size_t value_len, uint64_t deadline,
			  struct memtable_prior *prior)
{
	return write_entry(mt, key, key_len, value, value_len, false, deadline, prior);
}

int memtable_delete_prior(struct memtable *mt, const void *key, size_t key_len,
			  struct memtable_prior *prior)
{
	return write_entry(mt, key, key_len, NULL, 0, true, 0, prior);
}

int memtable_delete(struct memtable *mt, const void *key, size_t key_len)
{
	return write_entry(mt, key, key_len, NULL, 0, true, 0, NULL);
}

int memtable_get(const struct memtable *mt, const void *key, size_t key_len,
		 const void **value, size_t *value_len)
{
	return memtable_get_flags(mt, key, key_len, value, value_len, NULL);
}

int memtable_get_flags(const struct memtable *mt, const void *key, size_t key_len,
		       const void **value, size_t *value_len, unsigned *flags)
{
	const struct mt_node *node;

	assert(mt != NULL);
	assert(key != NULL || key_len == 0);
	node = find_eq(mt, key, key_len);
	if (node == NULL)
		return RKV_ENOTFOUND;
	if (node->value == NULL)
		return RKV_EDELETED;
	if (value != NULL)
		*value = node->value;
	if (value_len != NULL)
		*value_len = node->value_len;
	if (flags != NULL)
		*flags = node->flags;
	return 0;
}

void memtable_iter_first(struct memtable_iter *it, const struct memtable *mt)
{
	assert(it != NULL && mt != NULL);
	it->mt = mt;
	it->node = mt->head->next[0];
}

void memtable_iter_seek(struct memtable_iter *it, const struct memtable *mt,
			const void *key, size_t key_len)
{
	assert(it != NULL && mt != NULL);
	assert(key != NULL || key_len == 0);
	it->mt = mt;
	it->node = find_ge(mt, key, key_len, NULL);
}

bool memtable_iter_valid(const struct memtable_iter *it)
{
	return it->node != NULL;
}

void memtable_iter_next(struct memtable_iter *it)
{
	const struct mt_node *n = it->node;

	assert(n != NULL);
	it->node = n->next[0];
}

const void *memtable_iter_key(const struct memtable_iter *it, size_t *key_len)
{
	const struct mt_node *n = it->node;

	assert(n != NULL);
	if (key_len != NULL)
		*key_len = n->key_len;
	return node_key(n);
}

const void *memtable_iter_value(const struct memtable_iter *it, size_t *value_len)
{
	const struct mt_node *n = it->node;

	assert(n != NULL);
	if (value_len != NULL)
		*value_len = n->value_len;
	return n->value;
}

bool memtable_iter_is_tombstone(const struct memtable_iter *it)
{
	const struct mt_node *n = it->node;

	assert(n != NULL);
	return n->value == NULL;
}

unsigned memtable_iter_flags(const struct memtable_iter *it)
{
	const struct mt_node *n = it->node;

	assert(n != NULL);
	return n->flags;
}
