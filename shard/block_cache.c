/*
 * LRU block cache; the contract is in block_cache.h.
 *
 * Every entry is in exactly one of three places:
 *   - the `lru` list (findable, refs == 0), oldest at lru.next;
 *   - the `in_use` list (findable, refs > 0);
 *   - nowhere (erased while pinned: refs > 0, freed at its last release).
 * Findable entries are also chained in the hash table. Entry structs are
 * recycled through a free list, so a steady state allocates only the table.
 */
#include "shard/block_cache.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

struct block_cache_handle {
	uint64_t file;
	uint64_t offset;
	void *data;
	size_t len;
	uint32_t refs;
	bool in_table;                      /* findable by lookup */
	struct block_cache_handle *chain;   /* next in the hash bucket; free list link */
	struct block_cache_handle *prev;    /* lru / in_use list links */
	struct block_cache_handle *next;
};

struct block_cache {
	struct block_cache_options opt;
	struct block_cache_handle **buckets;
	size_t nbuckets;                    /* power of two */
	struct block_cache_handle lru;      /* sentinel: unpinned, oldest first */
	struct block_cache_handle in_use;   /* sentinel: pinned */
	struct block_cache_handle *free_entries;
	struct block_cache_stats stats;
};

#define INITIAL_BUCKETS 256

size_t block_cache_charge(size_t len)
{
	return len + sizeof(struct block_cache_handle);
}

static size_t bucket_of(const struct block_cache *c, uint64_t file, uint64_t offset)
{
	/* splitmix64 finalizer over the pair. */
	uint64_t x = file * 0x9e3779b97f4a7c15ull ^ offset;

	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return (size_t)x & (c->nbuckets - 1);
}

static void list_init(struct block_cache_handle *head)
{
	head->prev = head;
	head->next = head;
}

static void list_remove(struct block_cache_handle *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->prev = e;
	e->next = e;
}

/* Appends at the tail (most recent). */
static void list_append(struct block_cache_handle *head, struct block_cache_handle *e)
{
	e->prev = head->prev;
	e->next = head;
	head->prev->next = e;
	head->prev = e;
}

int block_cache_create(struct block_cache **out, const struct block_cache_options *opt)
{
	struct block_cache *c;

	assert(out != NULL && opt != NULL);
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->buckets = calloc(INITIAL_BUCKETS, sizeof(*c->buckets));
	if (c->buckets == NULL) {
		free(c);
		return -ENOMEM;
	}
	c->opt = *opt;
	c->nbuckets = INITIAL_BUCKETS;
	list_init(&c->lru);
	list_init(&c->in_use);
	*out = c;
	return 0;
}

static void free_block(struct block_cache *c, struct block_cache_handle *e)
{
	if (c->opt.free_fn != NULL)
		c->opt.free_fn(c->opt.free_ctx, e->data, e->len);
	else
		free(e->data);
	e->data = NULL;
}

void block_cache_destroy(struct block_cache *c)
{
	struct block_cache_handle *e, *next;

	if (c == NULL)
		return;
	assert(c->in_use.next == &c->in_use); /* every handle released */
	assert(c->stats.pinned == 0);
	for (e = c->lru.next; e != &c->lru; e = next) {
		next = e->next;
		free_block(c, e);
		free(e);
	}
	for (e = c->free_entries; e != NULL; e = next) {
		next = e->chain;
		free(e);
	}
	free(c->buckets);
	free(c);
}

static struct block_cache_handle **find_slot(struct block_cache *c, uint64_t file,
					     uint64_t offset)
{
	struct block_cache_handle **p = &c->buckets[bucket_of(c, file, offset)];

	while (*p != NULL && ((*p)->file != file || (*p)->offset != offset))
		p = &(*p)->chain;
	return p;
}

static void pin(struct block_cache *c, struct block_cache_handle *e)
{
	if (e->refs++ == 0) {
		list_remove(e);
		list_append(&c->in_use, e);
		c->stats.pinned += block_cache_charge(e->len);
	}
}

struct block_cache_handle *block_cache_lookup(struct block_cache *c, uint64_t file,
					      uint64_t offset)
{
	struct block_cache_handle *e;

	assert(c != NULL);
	e = *find_slot(c, file, offset);
	if (e == NULL) {
		c->stats.misses++;
		return NULL;
	}
	c->stats.hits++;
	pin(c, e);
	return e;
}

/* Unlinks a findable entry from the hash table. */
static void unhash(struct block_cache *c, struct block_cache_handle *e)
{
	struct block_cache_handle **p = find_slot(c, e->file, e->offset);

	assert(*p == e);
	*p = e->chain;
	e->chain = NULL;
	e->in_table = false;
	c->stats.entries--;
}

/* Frees an entry nobody pins and the table no longer holds. */
static void drop(struct block_cache *c, struct block_cache_handle *e)
{
	assert(e->refs == 0 && !e->in_table);
	list_remove(e);
	c->stats.usage -= block_cache_charge(e->len);
	free_block(c, e);
	e->chain = c->free_entries;
	c->free_entries = e;
}

static void evict(struct block_cache *c)
{
	while (c->stats.usage > c->opt.capacity && c->lru.next != &c->lru) {
		struct block_cache_handle *e = c->lru.next;

		unhash(c, e);
		drop(c, e);
		c->stats.evictions++;
	}
}

/* Doubles the bucket array; on failure the table just stays denser. */
static void grow(struct block_cache *c)
{
	size_t n = c->nbuckets * 2;
	struct block_cache_handle **b = calloc(n, sizeof(*b));
	struct block_cache_handle **old = c->buckets;
	size_t old_n = c->nbuckets;

	if (b == NULL)
		return;
	c->buckets = b;
	c->nbuckets = n;
	for (size_t i = 0; i < old_n; i++) {
		struct block_cache_handle *e = old[i], *next;

		for (; e != NULL; e = next) {
			size_t j = bucket_of(c, e->file, e->offset);

			next = e->chain;
			e->chain = b[j];
			b[j] = e;
		}
	}
	free(old);
}

int block_cache_insert(struct block_cache *c, uint64_t file, uint64_t offset, void *data,
		       size_t len, struct block_cache_handle **out)
{
	struct block_cache_handle **slot, *e;

	assert(c != NULL && out != NULL && (data != NULL || len == 0));
	slot = find_slot(c, file, offset);
	if (*slot != NULL) {
		e = *slot;
		if (c->opt.free_fn != NULL)
			c->opt.free_fn(c->opt.free_ctx, data, len);
		else
			free(data);
		pin(c, e);
		*out = e;
		return 0;
	}
	e = c->free_entries;
	if (e != NULL) {
		c->free_entries = e->chain;
	} else {
		e = malloc(sizeof(*e));
		if (e == NULL)
			return -ENOMEM;
	}
	e->file = file;
	e->offset = offset;
	e->data = data;
	e->len = len;
	e->refs = 1;
	e->in_table = true;
	e->chain = *slot;
	*slot = e;
	list_append(&c->in_use, e);
	c->stats.entries++;
	c->stats.inserts++;
	c->stats.usage += block_cache_charge(len);
	c->stats.pinned += block_cache_charge(len);
	evict(c);
	if (c->stats.entries > c->nbuckets)
		grow(c);
	*out = e;
	return 0;
}

const void *block_cache_data(const struct block_cache_handle *h, size_t *len)
{
	assert(h != NULL && len != NULL && h->refs > 0);
	*len = h->len;
	return h->data;
}

void block_cache_release(struct block_cache *c, struct block_cache_handle *h)
{
	assert(c != NULL && h != NULL && h->refs > 0);
	if (--h->refs != 0)
		return;
	c->stats.pinned -= block_cache_charge(h->len);
	list_remove(h);
	if (!h->in_table) {
		drop(c, h);
		return;
	}
	list_append(&c->lru, h);
	evict(c);
}

void block_cache_erase_file(struct block_cache *c, uint64_t file)
{
	assert(c != NULL);
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct block_cache_handle **p = &c->buckets[i];

		while (*p != NULL) {
			struct block_cache_handle *e = *p;

			if (e->file != file) {
				p = &e->chain;
				continue;
			}
			*p = e->chain;
			e->chain = NULL;
			e->in_table = false;
			c->stats.entries--;
			if (e->refs == 0)
				drop(c, e);
			else
				list_remove(e); /* freed at its last release */
		}
	}
}

void block_cache_get_stats(const struct block_cache *c, struct block_cache_stats *out)
{
	assert(c != NULL && out != NULL);
	*out = c->stats;
}
