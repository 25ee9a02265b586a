/*
 * Start-up recovery of one shard's WAL directory. Runs before the reactor loop
 * starts, so it uses ordinary blocking file calls.
 *
 * Segments are read in index order; every record is handed to `replay`. A torn
 * tail in the LAST segment is truncated away (ftruncate + fsync) and reported
 * (a last segment whose 16-byte header itself was cut short, so it holds no
 * record, gets its header written again);
 * a torn or corrupt record anywhere else, a gap between segments, or corruption
 * in the last segment stops recovery with an error naming the file and byte
 * offset in `err`. Recovery never drops a record that is followed by a valid one.
 */
#ifndef RINGKV_SHARD_WAL_RECOVER_H
#define RINGKV_SHARD_WAL_RECOVER_H

#include <stddef.h>
#include <stdint.h>

#include "shard/wal_format.h"

/* Called once per record in order; a non-zero return stops recovery with it. */
typedef int wal_replay_fn(void *arg, const struct wal_record *record);

struct wal_recovery {
	uint64_t first_index;   /* first index found, 0 if the WAL is empty */
	uint64_t last_index;    /* last index replayed, 0 if none */
	unsigned segments;      /* segment files read */
	char last_segment[4096];/* path of the segment to keep appending to, "" if none */
	uint64_t append_offset; /* byte offset in last_segment after the last good record */
	uint64_t torn_bytes;    /* bytes truncated from the tail, 0 if none */
};

/*
 * Replays the WAL in directory `dir` (created if missing). Returns 0, a
 * negative errno for I/O failures, RKV_ECORRUPT for corruption, or what
 * `replay` returned; on error `err` (errlen bytes) says which file and offset.
 */
int wal_recover(const char *dir, wal_replay_fn *replay, void *arg,
		struct wal_recovery *out, char *err, size_t errlen);

/*
 * Formats the path of the segment whose first record is `first_index`:
 * "<dir>/wal-<20 digits>.log". 0, or -ENAMETOOLONG when it does not fit.
 */
int wal_segment_path(char *buf, size_t buflen, const char *dir, uint64_t first_index);

/*
 * Parses a directory entry name of the form "wal-<20 digits>.log" (no
 * directory part). 0 with *first_index set, or RKV_EINVAL for any other name.
 * The writer uses it to learn the next index of an empty last segment.
 */
int wal_segment_name_parse(const char *name, uint64_t *first_index);

#endif
