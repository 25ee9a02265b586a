/*
 * Lock-free single-producer/single-consumer ring of pointers, the only channel
 * between two cores. Exactly one thread pushes and exactly one thread pops.
 *
 * The producer stages messages with spsc_push() and makes them visible in one
 * release store with spsc_publish(), so a batch costs one cache-line transfer.
 * Head (consumer) and tail (producer) live on separate cache lines, and each
 * side caches the other's index to touch the shared line only when the cached
 * value says the ring looks full (producer) or empty (consumer).
 *
 * A message pointer transfers ownership: after publishing, the producer no
 * longer touches what it points to until it comes back.
 */
#ifndef RINGKV_CORE_SPSC_H
#define RINGKV_CORE_SPSC_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SPSC_CACHE_LINE 64

struct spsc_ring {
	/* consumer side */
	alignas(SPSC_CACHE_LINE) _Atomic uint32_t head; /* next slot to pop */
	uint32_t tail_cache;                            /* consumer's view of tail */

	/* producer side */
	alignas(SPSC_CACHE_LINE) _Atomic uint32_t tail; /* published end */
	uint32_t staged;                                /* pushed, not yet published end */
	uint32_t head_cache;                            /* producer's view of head */

	/* read-only after init */
	alignas(SPSC_CACHE_LINE) uint32_t mask;         /* capacity - 1 */
	void **slots;
};

/* Capacity must be a power of two >= 2. 0, -EINVAL or -ENOMEM. */
int spsc_init(struct spsc_ring *r, uint32_t capacity);
void spsc_destroy(struct spsc_ring *r);

/* Producer: stages one message. false (nothing staged) when the ring is full. */
bool spsc_push(struct spsc_ring *r, void *msg);

/* Producer: makes every staged message visible to the consumer. */
void spsc_publish(struct spsc_ring *r);

/* Producer: number of free slots, staged ones counted as used. */
uint32_t spsc_free(struct spsc_ring *r);

/* Consumer: pops up to `max` published messages in order. Returns how many. */
uint32_t spsc_pop_batch(struct spsc_ring *r, void **out, uint32_t max);

/* Consumer: true when nothing published is waiting (re-reads the tail). */
bool spsc_empty(struct spsc_ring *r);

#endif
