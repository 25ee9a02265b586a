/*
 * The in-memory Raft log of one group: entries offset+1 .. offset+n, after a
 * compaction point whose term is remembered. Entry data is owned by the log:
 * copied in, in index order, into chunks it allocates a few at a time (not a
 * malloc per entry), given back on truncation and compaction. An entry's
 * data never moves while the entry is in the log.
 *
 * Invariants: entries are dense; entries[i] has index offset + 1 + i and
 * terms never decrease along the log. The data of entries in index order
 * lies in chunks[0], chunks[1], ... in that order, each chunk's in the order
 * placed, the last one's ending at its `used`.
 */
#ifndef RINGKV_RAFT_LOG_H
#define RINGKV_RAFT_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

struct raft_log_chunk;

struct raft_log {
	uint64_t offset;      /* index just before entries[0] */
	uint64_t offset_term; /* term at offset (0 when offset is 0) */
	struct raft_entry *entries;
	uint64_t n;
	uint64_t cap;
	uint64_t bytes;       /* sum of entry lengths held */
	struct raft_log_chunk **chunks; /* oldest first; data of the entries */
	size_t nchunks;
	size_t chunks_cap;
	struct raft_log_chunk *spare;   /* one emptied chunk kept for reuse */
	size_t chunk_bytes;   /* capacity of chunks and spare */
};

void raft_log_init(struct raft_log *log);
void raft_log_free(struct raft_log *log);
uint64_t raft_log_last_index(const struct raft_log *log);
uint64_t raft_log_last_term(const struct raft_log *log);
/* Term at index when known: offset .. last. */
bool raft_log_term(const struct raft_log *log, uint64_t index, uint64_t *term);
/* Entry at index, offset < index <= last, else NULL. */
const struct raft_entry *raft_log_get(const struct raft_log *log,
				      uint64_t index);
/* Append a copy of (term, type, data, len). Returns 0 or -ENOMEM. */
int raft_log_append(struct raft_log *log, uint64_t term, uint32_t type,
		    const void *data, uint32_t len);
/* Drop entries index .. last; index > offset. */
void raft_log_truncate(struct raft_log *log, uint64_t index);
/* Drop entries up to and including index (offset < index <= last). */
void raft_log_compact(struct raft_log *log, uint64_t index);
/* Drop everything; the log restarts after (index, term). */
void raft_log_reset(struct raft_log *log, uint64_t index, uint64_t term);
/*
 * Frees the emptied full-size chunks this thread keeps for its logs to
 * reuse (see log.c). A thread that used logs calls it once every one of
 * them is freed, before it exits; a log used afterwards simply allocates.
 */
void raft_log_cache_release(void);
/* Heap bytes held. */
size_t raft_log_footprint(const struct raft_log *log);

#endif
