/*
 * Lock-free single-producer/single-consumer ring of pointers, the only channel
 * between two cores. Exactly one thread pushes and exactly one thread pops.
 *
 * The producer stages messages with spsc_push() and makes them visible in one
 * release store with spsc_publish(), so a batch costs one cache-line transfer.
 * The published indexes (head, tail) each sit alone on a cache line, and each
 * side keeps its private state (its cached view of the other's index, the
 * producer's staged end) on a line of its own, so a push touches only the
 * producer's line and the slot, and a pop touches only the consumer's line
 * and the slots, until the cached view says the ring looks full (producer) or
 * cannot fill the requested batch (consumer); only then is the shared index
 * re-read.
 *
 * Indexes are free-running uint32_t counters; a slot is `index & mask`. The
 * difference of two indexes is the number of messages between them, correct
 * across wraparound because capacity <= 2^31.
 *
 * Memory order: the producer writes a slot, then publishes tail with release;
 * the consumer loads tail with acquire before reading slots, and stores head
 * with release after reading them; the producer loads head with acquire before
 * overwriting a slot. Each side reads its own index relaxed.
 *
 * A message pointer transfers ownership: after publishing, the producer no
 * longer touches what it points to until it comes back.
 *
 * The hot calls (push, publish, pop_batch) are static inline: they run per
 * message on every core's loop and a cross-unit call would cost as much as
 * the work itself.
 */
#ifndef RINGKV_CORE_SPSC_H
#define RINGKV_CORE_SPSC_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SPSC_CACHE_LINE 64
#define SPSC_MAX_CAPACITY ((uint32_t)1 << 31)

struct spsc_ring {
	/* shared, written by the consumer */
	alignas(SPSC_CACHE_LINE) _Atomic uint32_t head; /* next slot to pop */

	/* shared, written by the producer */
	alignas(SPSC_CACHE_LINE) _Atomic uint32_t tail; /* published end */

	/* consumer-private */
	alignas(SPSC_CACHE_LINE) uint32_t tail_cache;   /* consumer's view of tail */
	uint32_t consumer_mask;                         /* copy of mask */
	void **consumer_slots;                          /* copy of slots */

	/* producer-private */
	alignas(SPSC_CACHE_LINE) uint32_t staged;       /* pushed, not yet published end */
	uint32_t head_cache;                            /* producer's view of head */

	/* read-only after init */
	uint32_t mask;                                  /* capacity - 1 */
	void **slots;                                   /* capacity entries, own lines */
};

/*
 * Capacity must be a power of two from 2 to SPSC_MAX_CAPACITY. Allocates the
 * slot array (not on the hot path). 0, -EINVAL or -ENOMEM.
 */
int spsc_init(struct spsc_ring *r, uint32_t capacity);

/* Frees the slot array. Messages still in the ring are not touched. */
void spsc_destroy(struct spsc_ring *r);

/*
 * Producer: stages one message (any pointer, NULL included). Returns false,
 * staging nothing, when the ring is full (staged messages count as used).
 * The consumer sees nothing until spsc_publish().
 */
static inline bool spsc_push(struct spsc_ring *r, void *msg)
{
	uint32_t staged = r->staged;

	if (staged - r->head_cache > r->mask) {
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		if (staged - r->head_cache > r->mask)
			return false;
	}
	r->slots[staged & r->mask] = msg;
	r->staged = staged + 1;
	return true;
}

/*
 * Producer: makes every staged message visible to the consumer. Cheap when
 * nothing is staged: it then reads tail and does not write it, so a loop may
 * publish every ring on every iteration without stealing the consumer's copy
 * of the line.
 */
static inline void spsc_publish(struct spsc_ring *r)
{
	/* Only this thread writes tail, so a relaxed read of it is exact. */
	if (atomic_load_explicit(&r->tail, memory_order_relaxed) != r->staged)
		atomic_store_explicit(&r->tail, r->staged, memory_order_release);
}

/* Producer: number of free slots, staged ones counted as used (re-reads head). */
uint32_t spsc_free(struct spsc_ring *r);

/*
 * Consumer: pops up to `max` published messages, oldest first, into `out`
 * (room for `max`). Returns how many; 0 when none is published. Every message
 * published before the call is returned, up to `max`.
 */
static inline uint32_t spsc_pop_batch(struct spsc_ring *r, void **out, uint32_t max)
{
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint32_t avail = r->tail_cache - head;
	uint32_t mask = r->consumer_mask;
	void **slots = r->consumer_slots;

	if (avail < max) {
		r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
		avail = r->tail_cache - head;
	}
	if (avail > max)
		avail = max;
	if (avail == 0)
		return 0;
	for (uint32_t i = 0; i < avail; i++)
		out[i] = slots[(head + i) & mask];
	atomic_store_explicit(&r->head, head + avail, memory_order_release);
	return avail;
}

/* Consumer: true when nothing published is waiting (re-reads the tail). */
bool spsc_empty(struct spsc_ring *r);

#endif
