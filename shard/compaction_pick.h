/*
 * Leveled compaction as pure functions: which compaction to run next (from a
 * manifest version and the level targets), and the k-way merge that turns
 * the inputs' sorted entry streams into the output's. Neither does I/O:
 * the caller reads input blocks and writes output tables (sstable.h) in
 * slices on the core's ring, and applies the result as one manifest edit.
 *
 * Levels: L0 holds flushed memtables, which may overlap; it is compacted
 * into L1 once it has `l0_trigger` files (4). Level n >= 1 has a target size
 * of base_bytes * 10 * ratio^(n-1) (L1 = 10x the base, ratio 10); the level
 * whose size most exceeds its target (score = bytes / target, L0: files /
 * trigger) is compacted first, one file at a time, round-robin through the
 * level's key space, into the overlapping files of the next level. The last
 * level is never compacted down. One compaction runs at a time per shard.
 *
 * Tombstones may be dropped when the output level is the bottom-most level
 * holding data for the compaction's key range: no file below it overlaps
 * the range, so nothing older could resurface.
 */
#ifndef RINGKV_SHARD_COMPACTION_PICK_H
#define RINGKV_SHARD_COMPACTION_PICK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shard/manifest.h"
#include "shard/sstable_block.h"

struct compaction_options {
	uint64_t base_bytes;  /* L1 target is 10x this */
	unsigned level_ratio; /* target growth from one level to the next (10) */
	unsigned l0_trigger;  /* L0 files that start a compaction (4) */
};

/* base 8 MiB (L1 80 MiB), ratio 10, L0 trigger 4. */
void compaction_options_default(struct compaction_options *opt);

/* Target bytes of level `level` (>= 1). */
uint64_t compaction_level_target(const struct compaction_options *opt, unsigned level);

/* A run of files of one level: v->levels[level].files[first .. first + count). */
struct compaction_input {
	uint32_t level;
	size_t first;
	size_t count;
};

struct compaction {
	struct compaction_input inputs[2]; /* [0]: level, [1]: output level (may be empty) */
	uint32_t level;
	uint32_t output_level;
	bool drop_tombstones;  /* output is the bottom-most level for the range */
	bool trivial_move;     /* one input file, nothing to merge with: just move it */
	double score;          /* of the level picked, >= 1 */
	const uint8_t *smallest; /* key range of all inputs, into the version */
	uint32_t smallest_len;
	const uint8_t *largest;
	uint32_t largest_len;
};

/*
 * Round-robin position per level: the largest key of the last file
 * compacted out of it. Owned by the caller (one per shard), kept across
 * picks; not persisted (a restart starts the round again).
 */
struct compaction_cursor {
	struct sstable_buf key[MANIFEST_LEVELS];
	bool set[MANIFEST_LEVELS];
};

/* Zeroes the cursor (no allocation). */
void compaction_cursor_init(struct compaction_cursor *cur);
void compaction_cursor_destroy(struct compaction_cursor *cur);

/*
 * Moves the level's cursor past `c`'s input (the next pick of that level
 * starts after it). Call right after compaction_pick(), while `v` is the
 * version `c` points into. 0 or -ENOMEM (the cursor is then reset).
 */
int compaction_cursor_advance(struct compaction_cursor *cur, const struct manifest_version *v,
			      const struct compaction *c);

/*
 * The compaction to run next, or false when every level is within its
 * target. `out` points into `v`: valid until `v` changes. `cur` may be NULL
 * (always start at a level's first file).
 */
bool compaction_pick(const struct manifest_version *v, const struct compaction_options *opt,
		     const struct compaction_cursor *cur, struct compaction *out);

/*
 * Files of `level` (>= 1) overlapping [smallest, largest]: they are
 * contiguous, *first and the returned count say which.
 */
size_t compaction_overlapping(const struct manifest_version *v, unsigned level,
			      const void *smallest, size_t smallest_len, const void *largest,
			      size_t largest_len, size_t *first);

/*
 * K-way merge over caller-fed slots, one per input source (an SSTable
 * iterator, a level's files in order, a memtable). Each source yields keys
 * strictly increasing and has an age (larger = newer, distinct). The merge
 * holds each source's current entry by reference, asks the caller for the
 * next entry of a source when it needs it (MERGE_NEED), and yields every key
 * once with the newest source's entry, dropping tombstones when allowed.
 *
 *   merge_init(&m, ages, n, drop);
 *   for (;;) switch (merge_next(&m, &e, &slot)) {
 *   case MERGE_NEED:  advance source `slot`; merge_feed(...) or
 *                     merge_feed_end(&m, slot); (may wait for a read)
 *   case MERGE_ENTRY: add e to the output table
 *   case MERGE_END:   done
 *   case MERGE_ERROR: m.error: RKV_ECORRUPT (a source's keys did not
 *                     increase) or -ENOMEM
 *   }
 *
 * Fed keys and values are borrowed: they must stay valid until the merge
 * asks for that slot again (so an entry returned by MERGE_ENTRY stays valid
 * until the next call to merge_next). Heap of slots: O(log k) per entry, no
 * allocation after init.
 */
enum merge_result {
	MERGE_NEED,
	MERGE_ENTRY,
	MERGE_END,
	MERGE_ERROR,
};

enum merge_slot_state {
	MERGE_SLOT_EMPTY, /* waiting for the caller to feed it */
	MERGE_SLOT_FULL,  /* holds the source's current entry */
	MERGE_SLOT_DONE,  /* source exhausted */
};

struct merge_entry {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *value; /* NULL for a tombstone */
	size_t value_len;
	enum sstable_kind kind;
	size_t slot;          /* source it came from */
};

struct merge_slot {
	enum merge_slot_state state;
	uint64_t age;
	struct merge_entry entry;
};

struct merge {
	struct merge_slot *slots;
	size_t nslots;
	uint32_t *heap;            /* FULL slots, min key first, then newest */
	size_t heap_len;
	size_t nempty;             /* slots in state EMPTY */
	bool drop_tombstones;
	struct sstable_buf last_key; /* last key taken, to check sources' order */
	bool have_last;
	int error;                   /* after MERGE_ERROR */
	uint64_t dropped_tombstones; /* stats */
	uint64_t dropped_shadowed;
};

/* Slots start EMPTY. ages[i] distinct (asserted). 0 or -ENOMEM. */
int merge_init(struct merge *m, const uint64_t *ages, size_t nslots, bool drop_tombstones);
void merge_destroy(struct merge *m);

/* Gives source `slot`'s next entry; the slot must be EMPTY. value NULL for a tombstone. */
void merge_feed(struct merge *m, size_t slot, const void *key, size_t key_len,
		const void *value, size_t value_len, enum sstable_kind kind);

/* Source `slot` has no more entries; the slot must be EMPTY. */
void merge_feed_end(struct merge *m, size_t slot);

/*
 * Next step: MERGE_NEED with *need_slot, MERGE_ENTRY with *out, MERGE_END, or
 * MERGE_ERROR with m->error set (RKV_ECORRUPT: a source's keys did not
 * increase; -ENOMEM). After MERGE_ERROR the merge is only good for destroy.
 */
enum merge_result merge_next(struct merge *m, struct merge_entry *out, size_t *need_slot);

#endif
