/*
 * WAL on-disk format. A shard's WAL is a sequence of segment files named
 * wal-<first index, 20 digits>.log. Each segment starts with a 16-byte header
 * and holds records with consecutive indexes. The record layout is the Raft
 * log entry layout: index and term travel with every payload, so the WAL can
 * become the Raft log unchanged (term is 0 until replication exists).
 *
 * Segment header (16 bytes): magic "RKVWAL\0\1" (8), u32 version (1),
 * u32 crc32c of the first 12 bytes.
 *
 * Record (little-endian), 32-byte header then payload:
 *   u32 payload_len
 *   u32 payload_crc   crc32c over index, term and payload bytes
 *   u64 index
 *   u64 term
 *   u32 header_crc    crc32c over the 24 bytes above
 *   u32 reserved      0
 *   payload_len bytes
 *
 * The writer preallocates a segment ahead of its records (wal_map.h), so a
 * segment normally ends in zeros: space that was never written.
 *
 * End, torn tail and corruption, as decided by wal_scanner_next():
 * - nothing left, or only zero bytes left: the end of the log;
 * - fewer than 32 bytes left, or a valid header whose payload runs past the end
 *   of the buffer: torn (an append that never completed);
 * - an invalid header followed by nothing but zeros: torn (only part of the
 *   header reached the disk);
 * - a valid header with a bad payload_crc whose record is followed by nothing
 *   but zeros: torn (the last write of the file was cut short);
 * - anything else invalid (bad header followed by non-zero bytes, bad payload
 *   CRC with non-zero bytes after it, an index that does not follow the
 *   previous one or is 0 or UINT64_MAX, payload_len above WAL_MAX_PAYLOAD):
 *   corrupt.
 */
#ifndef RINGKV_SHARD_WAL_FORMAT_H
#define RINGKV_SHARD_WAL_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define WAL_SEGMENT_HEADER_SIZE 16
#define WAL_RECORD_HEADER_SIZE 32
#define WAL_MAX_PAYLOAD (16u << 20)
#define WAL_FORMAT_VERSION 1

struct wal_record {
	uint64_t index;         /* log position, consecutive within a WAL;
				   1 .. UINT64_MAX - 1 */
	uint64_t term;          /* Raft term; 0 before replication */
	const uint8_t *payload; /* borrowed */
	uint32_t payload_len;
};

/* Bytes a record with this payload occupies on disk. */
size_t wal_record_size(uint32_t payload_len);

/* Writes `r` (wal_record_size bytes) to `out`. Returns the bytes written. */
size_t wal_record_encode(const struct wal_record *r, uint8_t *out);

/*
 * Writes the 32-byte header of a record whose payload_len bytes of payload
 * are already in place at out + WAL_RECORD_HEADER_SIZE (so a caller can encode
 * the payload straight into its batch buffer, without a second copy). Returns
 * the record's total size.
 */
size_t wal_record_finish(uint8_t *out, uint64_t index, uint64_t term, uint32_t payload_len);

void wal_segment_header_encode(uint8_t out[WAL_SEGMENT_HEADER_SIZE]);

/* 0, or RKV_ECORRUPT (bad magic, version or CRC), or RKV_ETORN (too short). */
int wal_segment_header_check(const uint8_t *buf, size_t len);

enum wal_scan_result {
	WAL_SCAN_RECORD,  /* *out holds the next record */
	WAL_SCAN_END,     /* clean end: every byte consumed, or only zeros left */
	WAL_SCAN_TORN,    /* torn tail starting at scanner.offset */
	WAL_SCAN_CORRUPT, /* corruption at scanner.offset; scanner.reason says what */
};

/* Walks the records of one segment held in memory. */
struct wal_scanner {
	const uint8_t *buf;
	size_t len;
	size_t offset;        /* start of the next record (or of the bad bytes) */
	uint64_t next_index;  /* index the next record must carry; 0 = any */
	const char *reason;   /* static text for WAL_SCAN_CORRUPT */
};

/*
 * Starts after the segment header (the caller checks it). `expect_index` is
 * the index the first record must carry, or 0 to accept any.
 */
void wal_scanner_init(struct wal_scanner *s, const uint8_t *buf, size_t len,
		      uint64_t expect_index);

/* Decodes the next record; payload points into the buffer. */
enum wal_scan_result wal_scanner_next(struct wal_scanner *s, struct wal_record *out);

#endif
