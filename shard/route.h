/*
 * Key placement: a key hashes to one of ROUTE_SLOTS slots, and contiguous
 * ranges of slots map to shards. Every node and client must compute the same
 * answer, so each slot function is fixed forever: changing one moves every
 * key. There are two, numbered: a data directory records the one its
 * cluster was made with (CLUSTER's `slot-function` line), every node of a
 * cluster must use the same (peers refuse a hello that names another), and
 * a new function is a new number, never an edit of an old one.
 */
#ifndef RINGKV_SHARD_ROUTE_H
#define RINGKV_SHARD_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#define ROUTE_SLOTS 16384u

/* The slot functions (CLUSTER's `slot-function N`; a file without the line
 * means 1). */
enum route_slot_fn {
	ROUTE_SLOT_FN_WHOLE_KEY = 1, /* XXH3 of the whole key (clusters made before hash tags) */
	ROUTE_SLOT_FN_HASH_TAG = 2,  /* XXH3 of the key's hash tag when it has one */
};
#define ROUTE_SLOT_FN_DEFAULT ROUTE_SLOT_FN_HASH_TAG /* for new data directories */
#define ROUTE_SLOT_FN_MAX 2u

/*
 * The part of `key` that places it, Redis Cluster's rule: when the key holds
 * a '{' and, after the first '{', a '}' with at least one byte between them,
 * the bytes between that first '{' and the first '}' after it; else the
 * whole key. Sets *part_len and returns where the part starts (inside key).
 * "{user1000}.following" -> "user1000"; "foo{}{bar}" -> the whole key (the
 * first tag is empty); "foo{{bar}}zap" -> "{bar"; "foo{bar}{zap}" -> "bar".
 */
const void *route_hash_tag(const void *key, size_t key_len, size_t *part_len);

/*
 * The slot of `key`: XXH3_64bits(key, key_len) % ROUTE_SLOTS, with the
 * default seed (0). The empty key is a key like any other. Pure; never fails.
 */
uint32_t route_slot(const void *key, size_t key_len);

/*
 * The slot of `key` under slot function `fn`: ROUTE_SLOT_FN_WHOLE_KEY is
 * route_slot(); ROUTE_SLOT_FN_HASH_TAG is route_slot() of route_hash_tag().
 * Precondition (asserted; callers pass a recorded, checked value):
 * 1 <= fn <= ROUTE_SLOT_FN_MAX.
 */
uint32_t route_slot_fn(unsigned fn, const void *key, size_t key_len);

/*
 * The shard that owns `slot` when the slots are split into `shard_count`
 * contiguous, near-equal ranges: slot * shard_count / ROUTE_SLOTS (computed
 * in 64 bits). Shard i owns slots [ceil(i * S / n), ceil((i + 1) * S / n)),
 * S = ROUTE_SLOTS. Preconditions (asserted; callers pass values from the
 * cluster map, not from the wire): slot < ROUTE_SLOTS and
 * 1 <= shard_count <= ROUTE_SLOTS.
 */
uint32_t route_shard(uint32_t slot, uint32_t shard_count);

#endif
