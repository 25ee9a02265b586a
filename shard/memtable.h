/*
 * Arena memtable: an ordered map from key to value (or tombstone) whose nodes,
 * keys and values all live in one bump-pointer arena. The index is a skiplist
 * ordered by memcmp on the key bytes (shorter key first on a common prefix).
 * An overwrite allocates the new value and repoints the node; the old bytes
 * stay in the arena until the whole memtable is dropped. Owned by one core;
 * not thread-safe.
 */
#ifndef RINGKV_SHARD_MEMTABLE_H
#define RINGKV_SHARD_MEMTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct memtable;

/* Creates an empty memtable over an arena of `arena_bytes`. 0 or -ENOMEM. */
int memtable_create(struct memtable **out, size_t arena_bytes);

/*
 * The same, with its hash index sized up front for `expected_keys` distinct
 * keys (e.g. the count the memtable it replaces reached), so that a steady
 * workload never waits for the index to double. An arena over 32 GiB gets
 * no index (it names nodes by offset / 8 in 32 bits): the skiplist alone.
 */
int memtable_create_sized(struct memtable **out, size_t arena_bytes, size_t expected_keys);

void memtable_destroy(struct memtable *mt);

/*
 * Upper bound of the arena bytes one put (or delete, value_len 0) of these
 * sizes can consume. A caller that reserves this much before a write is sure
 * the later put cannot fail with RKV_EFULL.
 */
size_t memtable_entry_cost(size_t key_len, size_t value_len);

/* Arena bytes still free. */
size_t memtable_remaining(const struct memtable *mt);

/* Arena bytes used so far. */
size_t memtable_used(const struct memtable *mt);

/* Number of distinct keys (tombstones included). */
size_t memtable_count(const struct memtable *mt);

/* Slots of the hash index (8 bytes each); 0 once it was dropped. */
size_t memtable_index_slots(const struct memtable *mt);

/*
 * Frees the hash index: lookups search the skiplist from then on. What a
 * failed growth of the index does by itself; tests use it to check that
 * the memtable answers the same without one.
 */
void memtable_drop_index(struct memtable *mt);

/*
 * A hint that `key` will be written or read soon: with `node` false, loads
 * its hash index slot into the cache; with `node` true (later, once that
 * slot is there), also the node the slot names, when its hash matches.
 * Changes nothing; a memtable without an index ignores it. A caller with a
 * run of keys ahead (a replica applying a batch of committed entries)
 * issues the first a few keys ahead and the second half as far, so the two
 * cache misses of a write to a key already in the table overlap with the
 * writes before it instead of following one another.
 */
void memtable_prefetch(const struct memtable *mt, const void *key, size_t key_len, bool node);

/*
 * Inserts or overwrites `key` with `value` (copied into the arena).
 * 0, or RKV_EFULL when the arena cannot hold it (the memtable is unchanged).
 */
int memtable_put(struct memtable *mt, const void *key, size_t key_len,
		 const void *value, size_t value_len);

/*
 * Flags a stored value carries beside its bytes.
 * MEMTABLE_DEADLINE: the stored bytes are an expiry deadline (u64
 * little-endian, MEMTABLE_DEADLINE_SIZE bytes) then the value, what an
 * SSTABLE_VALUE_DEADLINE entry holds (shard/value_deadline.h). The
 * memtable stores the deadline and gives it back, and gives it no meaning.
 */
#define MEMTABLE_DEADLINE 0x1u
#define MEMTABLE_DEADLINE_SIZE 8

/* What a key held before a write, found by the write's own search. */
struct memtable_prior {
	int state;            /* 0 value, RKV_EDELETED tombstone, RKV_ENOTFOUND absent */
	const void *value;    /* the old value (stays valid: the arena keeps it) */
	size_t value_len;
	unsigned flags;       /* the old value's MEMTABLE_* flags */
};

/*
 * memtable_put_prior of a value with an expiry deadline: stores the
 * deadline then the value, flagged MEMTABLE_DEADLINE (deadline 0: a plain
 * value, as memtable_put_prior). Costs memtable_entry_cost(key_len,
 * value_len + MEMTABLE_DEADLINE_SIZE). `prior` may be NULL.
 */
int memtable_put_deadline(struct memtable *mt, const void *key, size_t key_len,
			  const void *value, size_t value_len, uint64_t deadline,
			  struct memtable_prior *prior);

/*
 * memtable_put / memtable_delete that also report what the key held before,
 * with one skiplist search instead of a get and a put. On RKV_EFULL nothing
 * changed (`prior` may already describe the key).
 */
int memtable_put_prior(struct memtable *mt, const void *key, size_t key_len,
		       const void *value, size_t value_len, struct memtable_prior *prior);
int memtable_delete_prior(struct memtable *mt, const void *key, size_t key_len,
			  struct memtable_prior *prior);

/* Records a tombstone for `key`. 0 or RKV_EFULL (unchanged). */
int memtable_delete(struct memtable *mt, const void *key, size_t key_len);

/*
 * Looks `key` up. 0 with *value and *value_len pointing into the arena (valid
 * until the memtable is destroyed); RKV_EDELETED for a tombstone;
 * RKV_ENOTFOUND when the key was never written here.
 */
int memtable_get(const struct memtable *mt, const void *key, size_t key_len,
		 const void **value, size_t *value_len);

/* memtable_get that also gives the value's flags (*flags, when not NULL):
 * with MEMTABLE_DEADLINE, *value starts with the deadline. */
int memtable_get_flags(const struct memtable *mt, const void *key, size_t key_len,
		       const void **value, size_t *value_len, unsigned *flags);

/* Forward iterator in key order, tombstones included. */
struct memtable_iter {
	const struct memtable *mt;
	const void *node; /* current node, NULL when past the end */
};

void memtable_iter_first(struct memtable_iter *it, const struct memtable *mt);
/* Positions at the first key >= `key`. */
void memtable_iter_seek(struct memtable_iter *it, const struct memtable *mt,
			const void *key, size_t key_len);
bool memtable_iter_valid(const struct memtable_iter *it);
void memtable_iter_next(struct memtable_iter *it);
const void *memtable_iter_key(const struct memtable_iter *it, size_t *key_len);
/* NULL with *value_len 0 for a tombstone. */
const void *memtable_iter_value(const struct memtable_iter *it, size_t *value_len);
bool memtable_iter_is_tombstone(const struct memtable_iter *it);
/* The current value's MEMTABLE_* flags (0 for a tombstone). */
unsigned memtable_iter_flags(const struct memtable_iter *it);

#endif
