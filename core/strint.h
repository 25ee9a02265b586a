/*
 * Strict decimal integers, the way Redis' string2ll reads them: an optional
 * '-' (signed only) then digits, no leading zeros (except "0" itself), no '+',
 * no spaces, no "-0", nothing empty, nothing out of range. One implementation
 * for protocol arguments (proto/resp.c) and for stored values that INCRBY
 * reads (shard/shard.c), so both agree on what an integer is.
 */
#ifndef RINGKV_CORE_STRINT_H
#define RINGKV_CORE_STRINT_H

#include <stddef.h>
#include <stdint.h>

/* 0 with *value set, or RKV_EINVAL. */
int strint_parse_i64(const void *text, size_t len, int64_t *value);
int strint_parse_u64(const void *text, size_t len, uint64_t *value);

#endif
