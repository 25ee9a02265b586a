/*
 * Per-core allocator for the hot path: power-of-two size classes from 64 bytes
 * to POOL_MAX_SIZE, each with a free list, carved from large chunks mapped on
 * the owning core (first touch puts them on its NUMA node). Memory goes back
 * to its class's free list, never to the OS, so the steady state never calls
 * malloc or mmap. Owned by one core; not thread-safe: a block allocated on one
 * core is freed on that core (send it back over the SPSC ring).
 */
#ifndef RINGKV_CORE_POOL_H
#define RINGKV_CORE_POOL_H

#include <stddef.h>
#include <stdint.h>

#define POOL_MIN_SHIFT 6                 /* 64-byte smallest class */
#define POOL_MAX_SHIFT 23                /* 8 MiB largest class */
#define POOL_MAX_SIZE ((size_t)1 << POOL_MAX_SHIFT)
#define POOL_CLASSES (POOL_MAX_SHIFT - POOL_MIN_SHIFT + 1)

struct pool_stats {
	uint64_t allocs;       /* pool_alloc calls that succeeded */
	uint64_t frees;
	uint64_t bytes_mapped; /* chunk bytes obtained from the OS */
	uint64_t bytes_in_use; /* class-size bytes handed out and not freed */
};

struct pool {
	void *free_list[POOL_CLASSES]; /* singly linked through the first word */
	uint8_t *chunk;                /* current chunk being carved */
	size_t chunk_left;             /* bytes left in it */
	size_t chunk_size;             /* bytes per chunk mapping */
	void *chunks;                  /* list of every mapping, for pool_destroy */
	struct pool_stats stats;
};

/* `chunk_size` 0 picks a default (16 MiB). 0 or -EINVAL. Maps nothing yet. */
int pool_init(struct pool *p, size_t chunk_size);

/* Unmaps every chunk. Outstanding blocks become invalid. */
void pool_destroy(struct pool *p);

/*
 * Returns at least `size` bytes, 16-byte aligned, or NULL when size is 0,
 * above POOL_MAX_SIZE, or the OS refuses memory.
 */
void *pool_alloc(struct pool *p, size_t size);

/* Returns a block to its class. NULL is ignored. */
void pool_free(struct pool *p, void *block);

/* Usable bytes of a block (its class size minus the header). */
size_t pool_block_size(const void *block);

#endif
