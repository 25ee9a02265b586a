/*
 * The one key order of ringkv: bytewise (memcmp) on the common prefix, then
 * the shorter key first. Memtables, SSTables, compaction, the manifest's key
 * ranges and the scans that merge shards all sort by it; two of them
 * disagreeing would lose keys, so there is exactly one definition.
 */
#ifndef RINGKV_SHARD_KEY_ORDER_H
#define RINGKV_SHARD_KEY_ORDER_H

#include <stddef.h>
#include <string.h>

/* < 0, 0 or > 0 as key a sorts before, equal to or after key b. */
static inline int key_order_cmp(const void *a, size_t a_len, const void *b, size_t b_len)
{
	size_t n = a_len < b_len ? a_len : b_len;
	int c = n != 0 ? memcmp(a, b, n) : 0;

	if (c != 0)
		return c;
	return (a_len > b_len) - (a_len < b_len);
}

#endif
