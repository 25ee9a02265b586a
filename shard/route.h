/*
 * Key placement: a key hashes to one of ROUTE_SLOTS slots, and contiguous
 * ranges of slots map to shards. Every node and client must compute the same
 * answer, so both functions are fixed forever: changing them moves every key.
 */
#ifndef RINGKV_SHARD_ROUTE_H
#define RINGKV_SHARD_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#define ROUTE_SLOTS 16384u

/*
 * The slot of `key`: XXH3_64bits(key, key_len) % ROUTE_SLOTS, with the
 * default seed (0). The empty key is a key like any other. Pure; never fails.
 */
uint32_t route_slot(const void *key, size_t key_len);

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
