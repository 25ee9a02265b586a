/*
 * Per-core LRU cache of SSTable blocks, bounded in bytes. Keyed by (file
 * number, block offset); file numbers are never reused, so a key always names
 * the same bytes. One core owns a cache: no locks, no atomics.
 *
 * Ownership: the cache takes the block buffer handed to block_cache_insert()
 * (typically the buffer the read landed in, so a miss costs no copy) and
 * frees it with the configured free function (free() by default) once the
 * entry is evicted or erased and no handle pins it.
 *
 * Pinning: lookup and insert return a handle that pins the entry; the bytes
 * stay valid until block_cache_release(). Pinned entries are never evicted
 * but their bytes count toward the capacity, so usage may exceed capacity
 * while many blocks are pinned; releasing the last pin of an entry in excess
 * evicts it. Unpinned entries form the LRU list, evicted oldest first in
 * O(1). Lookup is O(1) expected: a chained hash table that doubles as it
 * fills.
 */
#ifndef RINGKV_SHARD_BLOCK_CACHE_H
#define RINGKV_SHARD_BLOCK_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct block_cache;
struct block_cache_handle;

typedef void block_cache_free_fn(void *ctx, void *data, size_t len);

struct block_cache_options {
	size_t capacity;               /* bytes, as counted by block_cache_charge */
	block_cache_free_fn *free_fn;  /* NULL: free() */
	void *free_ctx;
};

struct block_cache_stats {
	uint64_t hits;
	uint64_t misses;
	uint64_t inserts;
	uint64_t evictions;  /* entries dropped to make room */
	size_t usage;        /* bytes charged for live entries, pinned included */
	size_t pinned;       /* bytes of entries held by at least one handle */
	size_t entries;      /* entries findable by lookup */
};

/* 0 or -ENOMEM. */
int block_cache_create(struct block_cache **out, const struct block_cache_options *opt);

/* Frees every entry. All handles must have been released (asserted). */
void block_cache_destroy(struct block_cache *c);

/* Bytes one block of `len` bytes is charged: its bytes plus bookkeeping. */
size_t block_cache_charge(size_t len);

/* A pinned handle, or NULL on a miss. */
struct block_cache_handle *block_cache_lookup(struct block_cache *c, uint64_t file,
					      uint64_t offset);

/*
 * Adds a block and returns it pinned in *out. The cache owns `data` from now
 * on (0 returned). When the key is already cached (two reads of one block
 * raced), `data` is freed at once and *out pins the cached copy. -ENOMEM:
 * nothing changed and `data` still belongs to the caller. May evict
 * unpinned entries.
 */
int block_cache_insert(struct block_cache *c, uint64_t file, uint64_t offset, void *data,
		       size_t len, struct block_cache_handle **out);

/* The pinned block's bytes. */
const void *block_cache_data(const struct block_cache_handle *h, size_t *len);

/* Drops one pin. */
void block_cache_release(struct block_cache *c, struct block_cache_handle *h);

/*
 * Forgets every block of `file` (deleted by a compaction): unpinned ones are
 * freed now, pinned ones when their last handle is released.
 */
void block_cache_erase_file(struct block_cache *c, uint64_t file);

void block_cache_get_stats(const struct block_cache *c, struct block_cache_stats *out);

#endif
