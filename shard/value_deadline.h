/*
 * Values with an expiry deadline (issue #21), as the shard stores them.
 *
 * A value with a deadline is stored as the deadline (u64 little-endian, Unix
 * milliseconds) followed by its bytes, and marked out of band: the memtable
 * node's MEMTABLE_DEADLINE flag, the SSTable entry's SSTABLE_VALUE_DEADLINE
 * kind. A plain value is stored as before, so data written before expiry
 * existed reads unchanged, and a plain value costs nothing new. The marker
 * is never in the bytes: any user value, whatever its bytes, reads back as
 * written.
 *
 * Deadline 0 means "none" in every interface (a deadline is always a time
 * after 1970, and the RESP door refuses 0). A key is expired once the time
 * is strictly past its deadline (Redis: `now > when`); at the deadline
 * itself it is still there.
 *
 * Who reads which clock: reads (GET, EXISTS, SCAN...) compare against the
 * serving node's wall clock (value_deadline_now); the apply step never
 * reads a clock: it compares against the time the proposer wrote into the
 * entry (shard/command.h, COMMAND_AT_TIME), so every replica decides alike.
 */
#ifndef RINGKV_SHARD_VALUE_DEADLINE_H
#define RINGKV_SHARD_VALUE_DEADLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/le.h"

#define VALUE_DEADLINE_SIZE 8

/* The deadline of a stored value that carries one (>= 8 bytes). */
static inline uint64_t value_deadline_get(const void *stored)
{
	return get_le64(stored);
}

/* Whether a value with `deadline` (0 = none) is gone at time `now`. */
static inline bool value_deadline_passed(uint64_t deadline, uint64_t now)
{
	return deadline != 0 && now > deadline;
}

/*
 * A stored value as a reader at time `now` sees it: with `has_deadline`,
 * strips the deadline from *value / *len into *deadline and answers false
 * once `now` is past it (the value is then absent); without, *deadline 0
 * and true.
 */
static inline bool value_deadline_strip(const void **value, size_t *len, bool has_deadline,
					uint64_t now, uint64_t *deadline)
{
	*deadline = 0;
	if (!has_deadline)
		return true;
	*deadline = value_deadline_get(*value);
	*value = (const uint8_t *)*value + VALUE_DEADLINE_SIZE;
	*len -= VALUE_DEADLINE_SIZE;
	return !value_deadline_passed(*deadline, now);
}

/* The wall clock in Unix milliseconds: what reads compare deadlines with. */
static inline uint64_t value_deadline_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
