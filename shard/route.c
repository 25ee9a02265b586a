/*
 * Key -> slot -> shard. The hash is the one fixed by the design (XXH3, 64
 * bits, seed 0) so that libringkv and every node agree without talking.
 */
#include "shard/route.h"

#include <assert.h>
#include <string.h>
#include <xxhash.h>

const void *route_hash_tag(const void *key, size_t key_len, size_t *part_len)
{
	const char *open = key_len ? memchr(key, '{', key_len) : NULL;
	const char *close;
	size_t after;

	*part_len = key_len;
	if (!open)
		return key;
	after = key_len - (size_t)(open + 1 - (const char *)key);
	close = after ? memchr(open + 1, '}', after) : NULL;
	if (!close || close == open + 1)
		return key;
	*part_len = (size_t)(close - (open + 1));
	return open + 1;
}

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

uint32_t route_slot_fn(unsigned fn, const void *key, size_t key_len)
{
	const void *part;
	size_t part_len;

	assert(fn >= 1 && fn <= ROUTE_SLOT_FN_MAX);
	if (fn == ROUTE_SLOT_FN_WHOLE_KEY)
		return route_slot(key, key_len);
	part = route_hash_tag(key, key_len, &part_len);
	return route_slot(part, part_len);
}
