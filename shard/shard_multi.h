/*
 * Multi-key commands in the apply step (MSETNX, RENAME, RENAMENX, COPY,
 * COPY_REPLACE; shard/command.h): what the head of the apply queue keeps
 * while it settles its keys one at a time. Private to the shard.
 */
#ifndef RINGKV_SHARD_SHARD_MULTI_H
#define RINGKV_SHARD_SHARD_MULTI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Settled so far for the head entry `index`. Nothing else changes the
 * logical state while the head waits (entries apply one at a time, in
 * order), so what was settled before a wait still holds after it: a
 * memtable switch or a flush moves values, never changes them.
 */
struct apply_multi {
	uint64_t index;       /* the entry this belongs to; 0 = none */
	uint32_t next;        /* keys settled: the next to look up */
	bool any;             /* MSETNX: some key holds a value */
	bool source;          /* RENAME/COPY: the source holds a value ... */
	bool source_in_table; /* ... found in a table, not a memtable */
	bool dest;            /* the destination holds a value ... */
	bool dest_in_table;   /* ... found in a table */
	uint8_t *value;       /* the source's value, copied (malloc, reused) */
	size_t value_len;
	size_t value_cap;
	uint64_t deadline;    /* the source value's deadline (0 none) */
};

#endif
