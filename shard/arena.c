/*
 * Bump-pointer arena over one anonymous mapping, allocating from both ends:
 * the front cursor is at used - back, the back cursor at capacity - back.
 * The invariant is used <= capacity (the cursors never cross): an allocation
 * that would make them cross fails without moving either, so a caller can
 * probe and fall back.
 *
 * The mapping is MAP_NORESERVE and never pre-faulted: pages are populated by
 * the first write, which the owning core does, so they land on its NUMA node.
 *
 * Huge pages inside, small pages at the ends: in a large arena the range
 * more than ARENA_EDGE from either end is advised MADV_HUGEPAGE (used when
 * the system's transparent_hugepage setting is `madvise` or `always`). A
 * memtable that fills takes one page fault per 2 MiB there instead of one
 * per 4 KiB (perf put first-touch faults of the arena at about 6% of a
 * replicated write's CPU, most of it the fault's entry and exit, not the
 * zeroing); a quiet one (a few keys at the front, their values at the
 * back) touches only small pages, so an idle shard still costs kilobytes.
 */
#include "shard/arena.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

#define ARENA_HUGE (2u << 20)          /* the x86-64 transparent huge page */
#define ARENA_EDGE ARENA_HUGE          /* small pages this far from either end */
#define ARENA_HUGE_MIN (8u * ARENA_HUGE) /* smaller arenas stay small-paged */

/* Advises huge pages for the interior; a refusal only costs speed. */
static void advise_huge(void *base, size_t capacity)
{
	uintptr_t lo = (uintptr_t)base + ARENA_EDGE;
	uintptr_t hi = (uintptr_t)base + capacity - ARENA_EDGE;

	if (capacity < ARENA_HUGE_MIN)
		return;
	lo = (lo + ARENA_HUGE - 1) & ~(uintptr_t)(ARENA_HUGE - 1);
	hi &= ~(uintptr_t)(ARENA_HUGE - 1);
	if (hi > lo)
		(void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
}

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
	advise_huge(p, capacity);
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
