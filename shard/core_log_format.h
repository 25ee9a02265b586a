/*
 * On-disk format of the per-core Raft log (shard/core_log.h): segment files
 * log-<seq, 20 digits>.log in the core's log directory, seq 1, 2, 3, ...
 * without gaps. Every multi-byte field is little-endian. The byte-by-byte
 * layout, with the reasons, is in docs/cluster/core-log.md; in short:
 *
 * Segment page 0 (CORE_LOG_RECORDS_START = 4096 bytes), records after it:
 *   0     header (32 bytes):
 *   0  magic "RKVCLOG" 0x01 (8)
 *   8  u32 version (2)
 *   12 u32 reserved, 0
 *   16 u64 seq        must equal the seq in the file name
 *   24 u32 reserved, 0
 *   28 u32 crc32c of bytes 0..27
 *   512   mark slot 0 (32 bytes), 1024 mark slot 1 (each in its own sector):
 *   0  u32 magic "CLMK"
 *   4  u32 crc32c of bytes 8..31
 *   8  u64 seq        the segment's
 *   16 u64 count      mark number in the segment (slot = count % 2)
 *   24 u64 end        the segment's records up to here were durable when
 *                     the mark was written (>= CORE_LOG_RECORDS_START)
 *   every other byte of page 0 is zero.
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
/* 2: page 0 with mark slots, records from CORE_LOG_RECORDS_START, SEAL
 * records. Version 1 (records at 32, no marks) is refused by name: it was
 * never deployed (docs/cluster/core-log.md, "Format versions"). */
#define CORE_LOG_FORMAT_VERSION 2
#define CORE_LOG_RECORDS_START 4096
#define CORE_LOG_MARK_SIZE 32
#define CORE_LOG_MARK_SLOT0 512
#define CORE_LOG_MARK_SLOT1 1024
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
	 * its records end (>= CORE_LOG_RECORDS_START): written in the checkpoint
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
 * 0 with *seq set, RKV_ETORN (shorter than page 0: a segment is created
 * with its whole page 0 in one write) or RKV_ECORRUPT (bad magic, version,
 * CRC or reserved bytes).
 */
int core_log_segment_header_check(const uint8_t *buf, size_t len, uint64_t *seq);

/* The version a segment header with a good magic and CRC names (whether or
 * not this build reads it), else 0: for refusal messages. */
uint32_t core_log_segment_header_version(const uint8_t *buf, size_t len);

/*
 * A durable-end mark: the segment's records up to `end` were durable (an
 * fdatasync of them had completed) when the mark was written. Marks only
 * grow within a segment (count and end both), so the valid slot with the
 * higher count is the newest; recovery refuses a segment whose records end
 * below it (docs/cluster/core-log.md, "The durable-end mark").
 */
struct core_log_mark {
	uint64_t seq;   /* segment */
	uint64_t count; /* its number in the segment; the slot is count % 2 */
	uint64_t end;   /* records durable up to here */
};

/* Offset in page 0 of the slot mark number `count` goes to. */
static inline uint64_t core_log_mark_offset(uint64_t count)
{
	return count % 2 ? CORE_LOG_MARK_SLOT1 : CORE_LOG_MARK_SLOT0;
}

void core_log_mark_encode(uint8_t out[CORE_LOG_MARK_SIZE], const struct core_log_mark *m);

/* A new segment's page 0: header and both slots holding mark numbers 0
 * and 1 with end = CORE_LOG_RECORDS_START (nothing durable yet). */
void core_log_segment_page0_encode(uint8_t out[CORE_LOG_RECORDS_START], uint64_t seq);

/*
 * The newest valid mark of segment `seq` (page 0 in buf[0..len)): 0 with *m
 * set, or RKV_ENOTFOUND when neither slot holds a valid mark of this
 * segment (untrusted bytes: a slot is valid when its magic, CRC, seq and
 * slot parity hold and end >= CORE_LOG_RECORDS_START).
 */
int core_log_mark_read(const uint8_t *buf, size_t len, uint64_t seq, struct core_log_mark *m);

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

/* Starts at CORE_LOG_RECORDS_START (the caller checked the header). */
void core_log_scan_init(struct core_log_scanner *s, const uint8_t *buf, size_t len);

/* Decodes the next record; its payload points into the buffer. */
enum core_log_scan_result core_log_scan_next(struct core_log_scanner *s,
					     struct core_log_record *out);

/*
 * What one segment held in memory says about its own end, for tools that
 * check a log without opening it (server/repair.c); core_log_open.c applies
 * the same rules while it replays. Untrusted bytes: every verdict is data.
 */
struct core_log_segment_facts {
	int header;          /* 0, or core_log_segment_header_check's error */
	uint32_t version;    /* the version the header names (0: no good header) */
	enum core_log_scan_result res; /* how the scan stopped (END/TORN/CORRUPT) */
	bool cut;            /* TORN: the file ends inside a record */
	const char *reason;  /* CORRUPT: why */
	size_t end;          /* where the records end, or the bad bytes start */
	uint64_t records;    /* records read */
	bool marked;         /* `mark` holds the segment's newest valid mark */
	struct core_log_mark mark;
	bool sealed;         /* a SEAL record: the segment before ends at */
	uint64_t seal_seq;   /* seal_end (seal_seq = its seq) */
	uint64_t seal_end;
	size_t seal_at;      /* offset of the SEAL record */
};

/* Reads segment `seq` (buf[0..len)) through: header, records, mark, SEAL. */
void core_log_segment_examine(const uint8_t *buf, size_t len, uint64_t seq,
			      struct core_log_segment_facts *out);

#endif
