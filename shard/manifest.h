/*
 * The shard's manifest: which SSTables make up each level of the LSM tree,
 * the next file number, and the WAL index the SSTables cover. Kept as an
 * append-only log of CRC'd records, each one edit (applied whole), replayed
 * at start-up into a struct manifest_version. A rewrite (the log grew, or a
 * snapshot is shipped) writes the version as edits into a new file, which
 * replaces the old one atomically (write temp, fsync, rename, fsync dir).
 * Pure codec: the caller does the I/O.
 *
 * File (little-endian):
 *   header, 16 bytes: magic "RKVMAN\0\1", u32 version (1), u32 CRC32C of
 *   the first 12 bytes
 *   records, each:
 *     u32 payload_len   at most MANIFEST_MAX_PAYLOAD
 *     u32 payload_crc   CRC32C of the payload
 *     u32 header_crc    CRC32C of the 8 bytes above
 *     u32 reserved      0
 *     payload: items, each a varint tag then its fields (varints, keys as
 *     varint length + bytes):
 *       1 next file number     number
 *       2 flushed WAL index    index
 *       3 delete file          level, file number
 *       4 add file             level, file number, file size, entry count,
 *                              smallest key, largest key
 *       5 damaged file         level, file number: the file is in the
 *                              version and a block of it failed its
 *                              checksum; it stays (its other blocks are
 *                              read) but is never compacted (issue 14;
 *                              docs/DAMAGED-DATADIR.md). Applied after the
 *                              record's deletes and adds; a delete of the
 *                              file drops the mark with it. A manifest
 *                              without damage has no such item, so older
 *                              readers read it; one with damage is refused
 *                              by them ("unknown manifest item").
 *
 * Torn tail versus corruption, as for the WAL (shard/wal_format.h): fewer
 * bytes than a record header, an invalid header followed only by zeros, a
 * payload running past the end, or a bad payload CRC on a record ending
 * exactly at the end: torn (an append cut short; replay stops there and the
 * caller truncates). Anything else invalid, or a record whose CRC is good but
 * whose edit does not fit the version (a delete of an absent file, levels
 * overlapping, a file number not below the next file number): corrupt, with
 * its offset. A file shorter than its header is corrupt too: the header is
 * written before the file is renamed into place.
 *
 * Version invariants (checked after every edit): level 0 is ordered newest
 * first (file number descending); each level >= 1 is sorted by smallest key
 * and its files' key ranges do not overlap; every file has smallest <=
 * largest; file numbers are unique within a level and below
 * next_file_number.
 */
#ifndef RINGKV_SHARD_MANIFEST_H
#define RINGKV_SHARD_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shard/sstable_block.h"

#define MANIFEST_LEVELS 7
#define MANIFEST_HEADER_SIZE 16
#define MANIFEST_RECORD_HEADER_SIZE 16
#define MANIFEST_MAX_PAYLOAD (64u << 20)
#define MANIFEST_FORMAT_VERSION 1

/* One SSTable. In a version the keys are owned by the version. */
struct manifest_file {
	uint32_t level;
	uint64_t number;          /* names the file; never reused */
	uint64_t size;            /* bytes */
	uint64_t entry_count;
	const uint8_t *smallest;
	uint32_t smallest_len;
	const uint8_t *largest;
	uint32_t largest_len;
	bool damaged;             /* in a version: marked damaged (item 5) */
};

struct manifest_file_id {
	uint32_t level;
	uint64_t number;
};

/* A change applied whole: deletes first, then adds. Arrays are borrowed. */
struct manifest_edit {
	bool has_next_file_number;
	uint64_t next_file_number;
	bool has_flushed_index;
	uint64_t flushed_index;    /* WAL entries up to here are in SSTables */
	const struct manifest_file_id *deleted;
	size_t ndeleted;
	const struct manifest_file *added;
	size_t nadded;
	const struct manifest_file_id *damaged; /* files to mark damaged */
	size_t ndamaged;
};

void manifest_header_encode(uint8_t out[MANIFEST_HEADER_SIZE]);

/* Bytes manifest_edit_encode() writes: record header + payload. */
size_t manifest_edit_size(const struct manifest_edit *e);

/*
 * Encodes `e` as one record into `out` (manifest_edit_size bytes, to append
 * to the manifest). Returns the bytes written. The payload must stay under
 * MANIFEST_MAX_PAYLOAD (asserted).
 */
size_t manifest_edit_encode(const struct manifest_edit *e, uint8_t *out);

struct manifest_level {
	struct manifest_file *files; /* ordered as the invariants say; keys owned */
	size_t count;
	size_t cap;
	uint64_t bytes;              /* sum of file sizes */
};

struct manifest_version {
	uint64_t next_file_number;
	uint64_t flushed_index;
	size_t ndamaged;             /* files marked damaged */
	struct manifest_level levels[MANIFEST_LEVELS];
};

/* An empty version: no files, next file number 1, flushed index 0. */
void manifest_version_init(struct manifest_version *v);

void manifest_version_destroy(struct manifest_version *v);

/*
 * Applies `e` (keys are copied). 0; RKV_ECORRUPT with *reason when the edit
 * does not fit the version (a bug on the live path, corruption on replay):
 * the version is then partly changed and only good for destroy. -ENOMEM: the
 * same.
 */
int manifest_version_apply(struct manifest_version *v, const struct manifest_edit *e,
			   const char **reason);

struct manifest_replay {
	size_t records;      /* edits applied */
	size_t valid_len;    /* bytes of whole records (header included): keep these */
	bool torn;           /* a torn tail starts at valid_len */
	size_t offset;       /* on RKV_ECORRUPT: where the bad record starts */
	const char *reason;  /* on RKV_ECORRUPT: static text */
};

/*
 * Replays a whole manifest file's bytes into `v` (initialized, normally
 * empty). 0 (r->torn says whether the caller must truncate to r->valid_len);
 * RKV_ECORRUPT with r->offset and r->reason; -ENOMEM. On error `v` is only
 * good for destroy.
 */
int manifest_replay(struct manifest_version *v, const uint8_t *buf, size_t len,
		    struct manifest_replay *r);

/* The file numbered `number` of `v`, or NULL. */
const struct manifest_file *manifest_version_find(const struct manifest_version *v,
						  uint64_t number);

/*
 * Appends a whole manifest file describing `v` to `out`: header, then edits
 * (next file number, flushed index, every file), split so no record passes
 * MANIFEST_MAX_PAYLOAD. Replaying it gives an equal version. 0 or -ENOMEM
 * (`out` keeps its former length).
 */
int manifest_version_snapshot(const struct manifest_version *v, struct sstable_buf *out);

#endif
