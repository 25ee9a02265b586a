/*
 * Set-up and the slow-path queries of the SPSC ring; the per-message calls
 * are static inline in core/spsc.h. Invariant: 0 <= tail - head <= staged -
 * head <= capacity, all in free-running uint32_t arithmetic.
 */
#include "core/spsc.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int spsc_init(struct spsc_ring *r, uint32_t capacity)
{
	size_t bytes;
	void **slots;

	assert(r != NULL);
	if (capacity < 2 || capacity > SPSC_MAX_CAPACITY ||
	    (capacity & (capacity - 1)) != 0)
		return -EINVAL;

	/* Whole cache lines, so no neighbour shares the first or last slot. */
	bytes = (size_t)capacity * sizeof(void *);
	bytes = (bytes + SPSC_CACHE_LINE - 1) & ~(size_t)(SPSC_CACHE_LINE - 1);
	slots = aligned_alloc(SPSC_CACHE_LINE, bytes);
	if (slots == NULL)
		return -ENOMEM;

	memset(r, 0, sizeof(*r));
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	r->mask = capacity - 1;
	r->slots = slots;
	r->consumer_mask = r->mask;
	r->consumer_slots = slots;
	return 0;
}

void spsc_destroy(struct spsc_ring *r)
{
	assert(r != NULL);
	free(r->slots);
	r->slots = NULL;
	r->consumer_slots = NULL;
}

uint32_t spsc_free(struct spsc_ring *r)
{
	r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
	assert(r->staged - r->head_cache <= r->mask + 1);
	return r->mask + 1 - (r->staged - r->head_cache);
}

bool spsc_empty(struct spsc_ring *r)
{
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);

	r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
	return r->tail_cache == head;
}
