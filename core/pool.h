/*
 * Per-core allocator for the hot path: power-of-two size classes from 64 bytes
 * to POOL_MAX_SIZE, each with a free list, carved from large chunks mapped on
 * the owning core (first touch puts them on its NUMA node). Memory goes back
 * to its class's free list, never to the OS, so the steady state never calls
 * malloc or mmap. Owned by one core; not thread-safe: a block allocated on one
 * core is freed on that core (send it back over the SPSC ring).
 *
 * A class size counts the block's POOL_HEADER_SIZE-byte header (it records
 * the class), so a class of 2^k bytes serves requests up to 2^k - 16 and the
 * largest request is POOL_MAX_ALLOC. A class larger than what a chunk can
 * hold gets a mapping of its own, which also returns to the free list.
 */
#ifndef RINGKV_CORE_POOL_H
#define RINGKV_CORE_POOL_H

#include <stddef.h>
#include <stdint.h>

#define POOL_MIN_SHIFT 6                 /* 64-byte smallest class */
#define POOL_MAX_SHIFT 23                /* 8 MiB largest class */
#define POOL_MAX_SIZE ((size_t)1 << POOL_MAX_SHIFT)
#define POOL_CLASSES (POOL_MAX_SHIFT - POOL_MIN_SHIFT + 1)
#define POOL_HEADER_SIZE ((size_t)16)    /* before every block; keeps 16-byte alignment */
#define POOL_MAX_ALLOC (POOL_MAX_SIZE - POOL_HEADER_SIZE) /* largest request served */
#define POOL_DEFAULT_CHUNK ((size_t)16 << 20)
#define POOL_MIN_CHUNK ((size_t)4 << 10)
#define POOL_MAX_CHUNK ((size_t)1 << 30)

struct pool_stats {
	uint64_t allocs;       /* pool_alloc calls that succeeded */
	uint64_t frees;
	uint64_t bytes_mapped; /* chunk bytes obtained from the OS */
	uint64_t bytes_in_use; /* class-size bytes handed out and not freed */
};

struct pool {
	void *free_list[POOL_CLASSES]; /* singly linked through the first word after the header */
	uint8_t *chunk;                /* current chunk being carved */
	size_t chunk_left;             /* bytes left in it */
	size_t chunk_size;             /* bytes per chunk mapping */
	void *chunks;                  /* list of every mapping (chunk or own), for pool_destroy */
	struct pool_stats stats;
};

/*
 * `chunk_size` 0 picks POOL_DEFAULT_CHUNK (16 MiB); otherwise a power of two
 * from POOL_MIN_CHUNK to POOL_MAX_CHUNK. 0 or -EINVAL. Maps nothing yet.
 */
int pool_init(struct pool *p, size_t chunk_size);

/* Unmaps every chunk and own mapping. Outstanding blocks become invalid. */
void pool_destroy(struct pool *p);

/*
 * Returns at least `size` bytes, 16-byte aligned, owned by the caller until
 * pool_free(), or NULL when size is 0, above POOL_MAX_ALLOC, or the OS
 * refuses memory. Contents are not zeroed.
 */
void *pool_alloc(struct pool *p, size_t size);

/*
 * Like pool_alloc, but sizes above POOL_MAX_ALLOC get a mapping of their own,
 * unmapped again by pool_free. For the rare buffers that outgrow the classes
 * (a reply to a huge MGET, a value near the frame limit); never the hot path.
 */
void *pool_alloc_large(struct pool *p, size_t size);

/* Returns a block from pool_alloc or pool_alloc_large to its class (or unmaps
 * a large one). NULL is ignored. */
void pool_free(struct pool *p, void *block);

/*
 * Usable bytes of a block from pool_alloc() (its class size minus the
 * header): at least what was asked for, and all of it may be written.
 */
size_t pool_block_size(const void *block);

#endif
