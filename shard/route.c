/*
 * Key -> slot -> shard. The hash is the one fixed by the design (XXH3, 64
 * bits, seed 0) so that libringkv and every node agree without talking.
 */
#include "shard/route.h"

#include <assert.h>
#include <xxhash.h>

uint32_t route_slot(const void *key, size_t key_len)
{
	assert(key != NULL || key_len == 0);
	return (uint32_t)(XXH3_64bits(key, key_len) % ROUTE_SLOTS);
}

uint32_t route_shard(uint32_t slot, uint32_t shard_count)
{
	assert(slot < ROUTE_SLOTS);
	assert(shard_count >= 1 && shard_count <= ROUTE_SLOTS);
	return (uint32_t)((uint64_t)slot * shard_count / ROUTE_SLOTS);
}
