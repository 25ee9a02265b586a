/*
 * SSTable data block: a run of sorted entries, prefix-compressed against the
 * previous key, with a restart point (a key stored whole) every
 * `restart_interval` entries, the restart offsets at the end, and a CRC32C
 * trailer. The builder appends finished blocks to a caller-owned buffer; the
 * reader works on block bytes the caller read (from disk or the block cache)
 * and never reads outside them, whatever they contain.
 *
 * Block layout (little-endian, byte by byte in docs/SSTABLE.md):
 *   entry*      varint shared | varint unshared | varint value_len * 2 + kind
 *               | key[shared..shared+unshared) | value
 *               (kind bit 1 with value_len 0: a tombstone; kind bit 1 with
 *               value_len >= 8: a value whose first 8 bytes are its expiry
 *               deadline, shard/value_deadline.h; 1..7: corrupt. Builds
 *               before expiry refuse the latter as "tombstone with a value",
 *               so they never misread a table holding deadlines.)
 *   u32 restart[nrestarts]   offset of each restart entry, first 0, increasing
 *   u32 nrestarts            0 only for a block without entries
 *   u32 crc32c               over every byte before it
 *
 * This header also holds the little helpers every SSTable and manifest codec
 * shares: the growable output buffer, fixed-width and varint coding, and the
 * key order (memcmp on the common prefix, then the shorter key first, as in
 * the memtable).
 */
#ifndef RINGKV_SHARD_SSTABLE_BLOCK_H
#define RINGKV_SHARD_SSTABLE_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "shard/key_order.h"

#define SSTABLE_BLOCK_DEFAULT_RESTART_INTERVAL 16
#define SSTABLE_BLOCK_TRAILER_SIZE 8 /* nrestarts + crc */
#define SSTABLE_VARINT_MAX 10

enum sstable_kind {
	SSTABLE_VALUE = 0,
	SSTABLE_TOMBSTONE = 1,
	SSTABLE_VALUE_DEADLINE = 2, /* value = u64 LE deadline (ms) + the bytes */
};

/* Bytes of the deadline that leads an SSTABLE_VALUE_DEADLINE value. */
#define SSTABLE_DEADLINE_SIZE 8

/* A growable byte buffer owned by whoever holds the struct (malloc'd). */
struct sstable_buf {
	uint8_t *data;
	size_t len; /* bytes in use */
	size_t cap; /* bytes allocated */
};

/* Makes room for `extra` more bytes (doubling). 0 or -ENOMEM. */
int sstable_buf_reserve(struct sstable_buf *b, size_t extra);
/* Appends `n` bytes. 0 or -ENOMEM. */
int sstable_buf_append(struct sstable_buf *b, const void *p, size_t n);
/* Frees the memory and zeroes the struct. Safe on a zeroed struct. */
void sstable_buf_free(struct sstable_buf *b);

static inline void sstable_put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void sstable_put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t sstable_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t sstable_get_u64(const uint8_t *p)
{
	return (uint64_t)sstable_get_u32(p) | (uint64_t)sstable_get_u32(p + 4) << 32;
}

/* Writes `v` as a LEB128 varint (1..10 bytes); returns the bytes written. */
static inline size_t sstable_put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/*
 * Reads a varint from [p, end). Returns the byte after it, or NULL when it
 * runs past `end` or is longer than 10 bytes / overflows 64 bits.
 */
static inline const uint8_t *sstable_get_varint(const uint8_t *p, const uint8_t *end,
						uint64_t *v)
{
	uint64_t result = 0;

	if (p < end && *p < 0x80) { /* the common one-byte case */
		*v = *p;
		return p + 1;
	}
	for (unsigned shift = 0; shift < 64 && p < end; shift += 7) {
		uint64_t byte = *p++;

		if (shift == 63 && byte > 1)
			return NULL;
		result |= (byte & 0x7f) << shift;
		if (byte < 0x80) {
			*v = result;
			return p;
		}
	}
	return NULL;
}


/* Builds one block at a time; reusable after finish. */
struct sstable_block_builder {
	struct sstable_buf entries;  /* encoded entries of the block being built */
	uint32_t *restarts;          /* restart offsets, malloc'd, grown by doubling */
	size_t nrestarts;
	size_t restarts_cap;
	unsigned restart_interval;   /* entries per restart point */
	unsigned since_restart;      /* entries since the last restart point */
	size_t count;                /* entries in the block being built */
	struct sstable_buf last_key; /* whole key of the last entry added */
};

/* Prepares an empty builder (no allocation yet). restart_interval >= 1. */
void sstable_block_builder_init(struct sstable_block_builder *b, unsigned restart_interval);

void sstable_block_builder_destroy(struct sstable_block_builder *b);

/*
 * Appends an entry. Keys must come strictly increasing (asserted: it is our
 * own data); a tombstone has no value (value_len 0). 0 or -ENOMEM (the
 * builder is unchanged).
 */
int sstable_block_builder_add(struct sstable_block_builder *b, const void *key, size_t key_len,
			      const void *value, size_t value_len, enum sstable_kind kind);

/* Bytes the block would take if finished now, trailer included. */
size_t sstable_block_builder_size(const struct sstable_block_builder *b);

static inline bool sstable_block_builder_empty(const struct sstable_block_builder *b)
{
	return b->count == 0;
}

/*
 * Appends the finished block (entries, restarts, count, CRC) to `out` and
 * empties the builder for the next block; *block_len gets its size. The last
 * key stays readable in b->last_key until the next add. 0 or -ENOMEM (the
 * builder is unchanged, `out` keeps its length).
 */
int sstable_block_builder_finish(struct sstable_block_builder *b, struct sstable_buf *out,
				 size_t *block_len);

/* A checked, borrowed view of a block. */
struct sstable_block {
	const uint8_t *data;      /* first byte of the block */
	uint32_t entries_len;     /* bytes of entries; the restart array follows */
	uint32_t nrestarts;
	const uint8_t *restarts;  /* u32 offsets, little-endian */
};

/*
 * Checks a block of `len` untrusted bytes: CRC (when verify_crc; a caller may
 * skip it for bytes it checked before, e.g. from the block cache), restart
 * count and array within the block, first restart at 0, offsets increasing
 * and inside the entries. Entry contents are checked as they are decoded.
 * 0, or RKV_ECORRUPT with *reason (static text) when `reason` is not NULL.
 */
int sstable_block_open(struct sstable_block *blk, const uint8_t *buf, size_t len,
		       bool verify_crc, const char **reason);

/*
 * Walks one block's entries. The key is rebuilt in a buffer the iterator owns
 * (grown on demand, never per entry); value points into the block bytes,
 * which the caller keeps alive while it uses the iterator.
 */
struct sstable_block_iter {
	struct sstable_block blk; /* block being walked (a copy of the view) */
	uint32_t offset;          /* current entry */
	uint32_t next;            /* entry after the current one */
	bool valid;               /* positioned on an entry */
	enum sstable_kind kind;   /* of the current entry */
	uint8_t *key;             /* current key, owned, key_cap bytes */
	uint32_t key_len;
	uint32_t key_cap;
	const uint8_t *value;     /* into the block; NULL for a tombstone */
	uint32_t value_len;
	const char *reason;       /* static text after RKV_ECORRUPT */
};

/* A zeroed iterator; no allocation until the first key. */
void sstable_block_iter_init(struct sstable_block_iter *it);

/* Frees the key buffer. */
void sstable_block_iter_destroy(struct sstable_block_iter *it);

/*
 * Positions on the first entry of `blk` (it->valid false for an empty
 * block). 0, RKV_ECORRUPT (it->reason says why; it->valid is false), or
 * -ENOMEM. The same codes for seek and next.
 */
int sstable_block_iter_first(struct sstable_block_iter *it, const struct sstable_block *blk);

/*
 * Positions on the first entry whose key is >= `key` (it->valid false when
 * every key is smaller): binary search over the restart points, then a
 * linear scan of at most one restart interval.
 */
int sstable_block_iter_seek(struct sstable_block_iter *it, const struct sstable_block *blk,
			    const void *key, size_t key_len);

/* Moves to the next entry (it->valid false past the last). Requires valid. */
int sstable_block_iter_next(struct sstable_block_iter *it);

#endif
