/*
 * On-disk format of the per-core Raft log (shard/core_log.h): segment files
 * log-<seq, 20 digits>.log in the core's log directory, seq 1, 2, 3, ...
 * without gaps. Every multi-byte field is little-endian. The byte-by-byte
 * layout, with the reasons, is in docs/cluster/core-log.md; in short:
 *
 * Segment header (32 bytes):
 *   0  magic "RKVCLOG" 0x01 (8)
 *   8  u32 version (1)
 *   12 u32 reserved, 0
 *   16 u64 seq        must equal the seq in the file name
 *   24 u32 reserved, 0
 *   28 u32 crc32c of bytes 0..27
 *
 * Record (48-byte header, then payload_len bytes):
 *   0  u32 payload_len  <= CORE_LOG_MAX_PAYLOAD
 *   4  u32 payload_crc  crc32c of header bytes 8..39, then of the payload
 *   8  u8  kind         enum core_log_kind
 *   9  u8  reserved, 0
 *   10 u16 reserved, 0
 *   12 u32 type         ENTRY: the Raft entry type; otherwise 0
 *   16 u64 group
 *   24 u64 a            see enum core_log_kind
 *   32 u64 b
 *   40 u32 header_crc   crc32c of bytes 0..39
 *   44 u32 reserved, 0
 *
 * A segment is preallocated ahead of its records, so it normally ends in
 * zeros: space never written. The scanner (core_log_scan_next) tells the end,
 * a torn tail and corruption apart with the rules of shard/wal_format.h,
 * plus the shape checks of each kind (a record whose CRCs hold but whose
 * fields make no sense was written whole by a broken writer, or changed on
 * disk: corruption, never a torn tail).
 */
#ifndef RINGKV_SHARD_CORE_LOG_FORMAT_H
#define RINGKV_SHARD_CORE_LOG_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CORE_LOG_SEGMENT_HEADER_SIZE 32
#define CORE_LOG_RECORD_HEADER_SIZE 48
#define CORE_LOG_MAX_PAYLOAD (16u << 20)
#define CORE_LOG_FORMAT_VERSION 1
/* One CHECKPOINT item: group, term, vote, start index, start term. */
#define CORE_LOG_CHECKPOINT_ITEM 40
/* Items per CHECKPOINT record (160 KiB of payload at most). */
#define CORE_LOG_CHECKPOINT_MAX_ITEMS 4096

enum core_log_kind {
	/* a = index (>= 1), b = term; type = entry type; payload = entry data.
	 * Appending at index i drops the group's stored entries >= i. */
	CORE_LOG_ENTRY = 1,
	/* a = term, b = vote; no payload. */
	CORE_LOG_HARD_STATE = 2,
	/* a = index, b = term: the group's log now starts after (a, b) (a
	 * snapshot was installed); every stored entry of the group is dropped. */
	CORE_LOG_RESET = 3,
	/* The group left this core: everything stored for it is dropped. */
	CORE_LOG_REMOVE = 4,
	/* group 0, a = seq (>= 1): segments below seq may be deleted; those
	 * from seq on must exist. Written (and made durable) before any unlink. */
	CORE_LOG_RETAIN = 5,
	/* group 0, a = the seq of the segment it heads, b = item count (>= 1);
	 * payload = b items of CORE_LOG_CHECKPOINT_ITEM bytes: the hard state
	 * and log start of every group live when the segment began, so that no
	 * older segment ever holds the only copy of one. */
	CORE_LOG_CHECKPOINT = 6,
	/* group 0, a = seq of the segment before this one (>= 1), b = where
	 * its records end (>= the segment header): written in the checkpoint
	 * of a segment begun after every batch of the one before was durable,
	 * so recovery can tell that segment's end was cut or zeroed even at a
	 * record and page boundary. No payload. */
	CORE_LOG_SEAL = 7,
};

struct core_log_record {
	uint8_t kind;           /* enum core_log_kind */
	uint32_t type;          /* ENTRY: raft entry type */
	uint64_t group;
	uint64_t a;             /* meaning by kind, see above */
	uint64_t b;
	const uint8_t *payload; /* borrowed from the scanned buffer */
	uint32_t payload_len;
};

/* One checkpoint item, decoded. */
struct core_log_checkpoint_item {
	uint64_t group;
	uint64_t term;
	uint64_t vote;
	uint64_t start_index;
	uint64_t start_term;
};

/* Bytes a record with this payload occupies on disk. */
static inline size_t core_log_record_size(uint32_t payload_len)
{
	return CORE_LOG_RECORD_HEADER_SIZE + (size_t)payload_len;
}

/*
 * Writes the header of record `r` at `out`, whose r->payload_len payload
 * bytes are already in place at out + CORE_LOG_RECORD_HEADER_SIZE (r->payload
 * is ignored: the caller encodes payloads straight into its batch). Returns
 * the record's size. Preconditions (asserted): a well-formed record of its
 * kind.
 */
size_t core_log_record_finish(uint8_t *out, const struct core_log_record *r);

/* Encodes one checkpoint item (CORE_LOG_CHECKPOINT_ITEM bytes). */
void core_log_checkpoint_item_encode(uint8_t *out, const struct core_log_checkpoint_item *it);
/* Decodes item `i` of a CHECKPOINT record the scanner returned. */
void core_log_checkpoint_item_decode(const struct core_log_record *r, uint32_t i,
				     struct core_log_checkpoint_item *it);

void core_log_segment_header_encode(uint8_t out[CORE_LOG_SEGMENT_HEADER_SIZE], uint64_t seq);

/*
 * 0 with *seq set, RKV_ETORN (shorter than a header) or RKV_ECORRUPT (bad
 * magic, version, CRC or reserved bytes).
 */
int core_log_segment_header_check(const uint8_t *buf, size_t len, uint64_t *seq);

enum core_log_scan_result {
	CORE_LOG_SCAN_RECORD,  /* *out holds the next record */
	CORE_LOG_SCAN_END,     /* every byte consumed, or only zeros left */
	CORE_LOG_SCAN_TORN,    /* torn tail starting at scanner.offset */
	CORE_LOG_SCAN_CORRUPT, /* corruption at scanner.offset; .reason says what */
};

/* Walks the records of one segment held in memory (untrusted bytes). */
struct core_log_scanner {
	const uint8_t *buf;
	size_t len;
	size_t offset;      /* start of the next record, or of the bad bytes */
	const char *reason; /* static text for CORE_LOG_SCAN_CORRUPT */
	bool cut;           /* CORE_LOG_SCAN_TORN: the end of the buffer falls
			     * inside the record (its header checks out, or is
			     * partly there), rather than zeros following it */
};

/* Starts right after the segment header (which the caller checked). */
void core_log_scan_init(struct core_log_scanner *s, const uint8_t *buf, size_t len);

/* Decodes the next record; its payload points into the buffer. */
enum core_log_scan_result core_log_scan_next(struct core_log_scanner *s,
					     struct core_log_record *out);

#endif
