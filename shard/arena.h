/*
 * Bump-pointer arena: one contiguous mapping, allocations only move a pointer
 * forward, everything is released at once. Owned by one core; not thread-safe.
 * The mapping is touched first by the owning core, so pages land on its NUMA
 * node.
 */
#ifndef RINGKV_SHARD_ARENA_H
#define RINGKV_SHARD_ARENA_H

#include <stddef.h>
#include <stdint.h>

struct arena {
	uint8_t *base;   /* start of the mapping */
	size_t capacity; /* bytes mapped */
	size_t used;     /* bytes handed out, alignment padding included */
	size_t back;     /* of `used`, bytes handed out from the end */
};

/* Maps `capacity` bytes. Returns 0 or -ENOMEM. */
int arena_init(struct arena *a, size_t capacity);

/* Unmaps. Safe on a zeroed struct. */
void arena_destroy(struct arena *a);

/*
 * Returns `size` bytes aligned to `align` (a power of two), or NULL when they
 * do not fit; a failed call changes nothing.
 */
void *arena_alloc(struct arena *a, size_t size, size_t align);

/*
 * Returns `size` unaligned bytes taken from the END of the free space, or
 * NULL when they do not fit; a failed call changes nothing. Front and back
 * allocations share the same free space (arena_remaining counts both), so a
 * user can keep small hot objects packed together at the front and bulky
 * cold ones (values) out of their way at the back.
 */
void *arena_alloc_back(struct arena *a, size_t size);

/* Bytes still available (ignoring alignment padding). */
size_t arena_remaining(const struct arena *a);

/* Forgets every allocation; the mapping stays. */
void arena_reset(struct arena *a);

#endif
