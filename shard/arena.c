/*
 * Bump-pointer arena over one anonymous mapping, allocating from both ends:
 * the front cursor is at used - back, the back cursor at capacity - back.
 * The invariant is used <= capacity (the cursors never cross): an allocation
 * that would make them cross fails without moving either, so a caller can
 * probe and fall back.
 *
 * The mapping is MAP_NORESERVE and never pre-faulted: pages are populated by
 * the first write, which the owning core does, so they land on its NUMA node.
 */
#include "shard/arena.h"

#include <assert.h>
#include <errno.h>
#include <sys/mman.h>

int arena_init(struct arena *a, size_t capacity)
{
	void *p;

	assert(a != NULL);
	a->base = NULL;
	a->capacity = 0;
	a->used = 0;
	a->back = 0;
	/* An empty arena is legal: every allocation fails, nothing is mapped. */
	if (capacity == 0)
		return 0;
	p = mmap(NULL, capacity, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	a->base = p;
	a->capacity = capacity;
	return 0;
}

void arena_destroy(struct arena *a)
{
	assert(a != NULL);
	if (a->base != NULL)
		munmap(a->base, a->capacity);
	a->base = NULL;
	a->capacity = 0;
	a->used = 0;
	a->back = 0;
}

void *arena_alloc(struct arena *a, size_t size, size_t align)
{
	uintptr_t cursor;
	size_t pad;
	size_t left;

	assert(a != NULL);
	assert(align != 0 && (align & (align - 1)) == 0);
	assert(a->used <= a->capacity);
	if (a->base == NULL)
		return NULL;
	/* Align the address, not the offset: the base is only page aligned. */
	cursor = (uintptr_t)a->base + (a->used - a->back);
	pad = (size_t)(-cursor & (uintptr_t)(align - 1));
	left = a->capacity - a->used;
	if (pad > left || size > left - pad)
		return NULL;
	a->used += pad + size;
	return (uint8_t *)cursor + pad;
}

void *arena_alloc_back(struct arena *a, size_t size)
{
	assert(a != NULL);
	assert(a->used <= a->capacity && a->back <= a->used);
	if (a->base == NULL || size > a->capacity - a->used)
		return NULL;
	a->used += size;
	a->back += size;
	return a->base + (a->capacity - a->back);
}

size_t arena_remaining(const struct arena *a)
{
	assert(a != NULL);
	return a->capacity - a->used;
}

void arena_reset(struct arena *a)
{
	assert(a != NULL);
	a->used = 0;
	a->back = 0;
}
