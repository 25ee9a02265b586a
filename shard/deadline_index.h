/*
 * The deadline index of a shard (issue #21): every key of the shard whose
 * value carries an expiry deadline (shard/value_deadline.h), by key and
 * ordered by deadline, in memory.
 *
 * What it is for: active expiry takes the keys that are due from the top
 * of the order, without scanning the keyspace; DBSIZE leaves out the keys
 * past their deadline that are not deleted yet, and INFO's `expires=`
 * counts the keys with a deadline, both exactly as far as the index is
 * complete (below).
 *
 * Kept by the apply step on every replica: every value written into the
 * shard's memtable goes through shard_exec (shard_exec.c), which tells the
 * index the key's new deadline (0: none, or the key deleted). That costs
 * no read: whatever the key held before, its entry (or the lack of one) is
 * replaced. A FLUSH empties it. The index is not stored: at open (and so
 * after a snapshot install, which opens a new shard) a shard with tables
 * does not know which of their values carry deadlines, and the index is
 * rebuilt by a scan of the shard's values in bounded steps
 * (shard_deadlines_rebuild_step) while the shard serves; a shard without
 * tables starts complete. A rebuild step that meets a write made while it
 * waited for a block stops and goes on from its last key, so what it adds
 * is never older than what apply recorded.
 *
 * Memory, per key with a deadline: an entry of 16 bytes plus the key,
 * rounded up to 16 (pooled, 64 KiB chunks; keys over 496 bytes are one
 * malloc each), a hash slot of 12 bytes (pointer and 32 hash bits) at a
 * load between 3/8 and 3/4, and a heap slot of 16 bytes (the array
 * doubles): about 65 bytes plus the key on average. It grows with the
 * keys that have a deadline only; pooled entries freed are reused, not
 * given back, until the shard closes or a
 * FLUSH empties the index. Growing the hash table or the heap copies it
 * once (about 10 ms per million keys, on the apply path of the write that
 * grows it).
 *
 * If memory runs out while an entry is added, the index is emptied and
 * marked incomplete: it is rebuilt as at open (nothing is ever wrong,
 * only not yet known).
 */
#ifndef RINGKV_SHARD_DEADLINE_INDEX_H
#define RINGKV_SHARD_DEADLINE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEADLINE_INDEX_CLASSES 31       /* pooled sizes: 32..512 bytes by 16 */

struct di_entry;

struct di_slot {                        /* one place in the heap */
	uint64_t deadline;
	struct di_entry *e;
};

struct deadline_index {
	struct di_entry **table;        /* open addressing, linear probing */
	uint32_t *hashes;               /* [table_cap]: each slot's key hash, low
					 * 32 bits (in table's block) */
	size_t table_cap;               /* a power of two, or 0 */
	size_t count;
	struct di_slot *heap;           /* min-heap by deadline */
	size_t heap_cap;
	void *free_list[DEADLINE_INDEX_CLASSES];
	void **chunks;                  /* pool chunks (64 KiB each) */
	size_t nchunks, chunks_cap;
	uint8_t *chunk_at;              /* unused tail of the newest chunk */
	size_t chunk_left;
	uint64_t seq;                   /* bumped by every change */
	bool failed;                    /* out of memory: emptied, needs a rebuild */
};

/* Sets `key`'s deadline (0: removes it). 0, or -ENOMEM: the index is then
 * emptied and `failed` set. */
int deadline_index_set(struct deadline_index *x, const void *key, size_t key_len,
		       uint64_t deadline);
/* The deadline recorded for `key`, 0 when none. */
uint64_t deadline_index_get(const struct deadline_index *x, const void *key, size_t key_len);
/* Keys with a deadline. */
static inline size_t deadline_index_count(const struct deadline_index *x)
{
	return x->count;
}
/* Keys whose deadline `now` is past (value_deadline_passed): O(their number). */
size_t deadline_index_due_count(const struct deadline_index *x, uint64_t now);
/*
 * Visits keys whose deadline `now` is past, at most `limit`, earliest
 * deadlines first only roughly (heap order). `fn` must not change the
 * index. Returns how many were visited.
 */
typedef void deadline_index_fn(void *arg, const void *key, size_t key_len, uint64_t deadline);
size_t deadline_index_due(const struct deadline_index *x, uint64_t now, size_t limit,
			  deadline_index_fn *fn, void *arg);
/* The earliest deadline, 0 when empty. */
static inline uint64_t deadline_index_first(const struct deadline_index *x)
{
	return x->count ? x->heap[0].deadline : 0;
}
/* Empties it (memory kept for reuse, except the pool's large entries). */
void deadline_index_clear(struct deadline_index *x);
/* Frees everything; the index is then empty and usable. */
void deadline_index_destroy(struct deadline_index *x);
/* The longest run of occupied table slots (wrapping around): what the
 * longest probe walks. For tests and diagnostics; O(table). */
size_t deadline_index_longest_run(const struct deadline_index *x);
/* Bytes held (tables, heap, pool chunks, large entries). */
size_t deadline_index_memory(const struct deadline_index *x);

/* ---- the shard's index (shard/shard_deadlines.c) ---- */

struct shard;
typedef void shard_deadlines_step_fn(void *arg);

/* A rebuild under way (shard_deadlines.c): from its first step until the
 * index is complete. */
struct shard_deadlines_rebuild;

/*
 * A shard's index and the state of its rebuild (struct shard.deadlines).
 * Kept small: a replica that never saw a deadline (most idle ones) holds
 * this and no index. The index is allocated at the shard's first value
 * with a deadline; the rebuild's state at its first step.
 */
struct shard_deadlines {
	struct deadline_index *index;   /* NULL until a first deadline (malloc) */
	struct shard_deadlines_rebuild *rebuild; /* NULL unless rebuilding */
	uint64_t seq;                   /* bumped by every note and emptying,
					 * index or not */
	uint64_t epoch;                 /* bumped when the index is emptied */
	bool complete;                  /* every key with a deadline is in it */
};

/* shard_exec: `key`'s value is now written with `deadline` (0: none, or
 * deleted). */
void shard_deadlines_note(struct shard *s, const void *key, size_t key_len,
			  uint64_t deadline);
/* shard_open (the shard's tables are loaded): complete when there are none. */
void shard_deadlines_open(struct shard *s);
/* A FLUSH dropped every key: the index is empty and complete. */
void shard_deadlines_dropped(struct shard *s);
void shard_deadlines_close(struct shard *s);

/* The index is complete: every key of the shard with a deadline is in it. */
bool shard_deadlines_complete(const struct shard *s);
/*
 * One bounded step of the rebuild, at most `examine` keys from where the
 * last step stopped. 0: started, `done(arg)` runs once when it ends
 * (possibly before this returns); 1: nothing to do (complete, or a step
 * runs); or a negative errno (done not called).
 */
int shard_deadlines_rebuild_step(struct shard *s, size_t examine,
				 shard_deadlines_step_fn *done, void *arg);
/* The shard's keys as a reader at `now` sees them: shard_live_keys less
 * the indexed keys past their deadline (never below 0); *expires: the keys
 * with a deadline not past. */
uint64_t shard_visible_keys(const struct shard *s, uint64_t now, uint64_t *expires);
/* Up to `limit` keys past their deadline at `now`, for active expiry. */
size_t shard_deadlines_due(const struct shard *s, uint64_t now, size_t limit,
			   deadline_index_fn *fn, void *arg);
/* The shard's index (an empty one while none is allocated). */
const struct deadline_index *shard_deadline_index(const struct shard *s);

#endif
