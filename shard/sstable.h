/*
 * SSTable: one immutable sorted file of a shard's LSM tree. Everything here
 * is pure: the builder appends finished bytes to buffers the caller writes
 * out, and every reader function works on bytes the caller read and says
 * which byte range it needs next. No function does I/O, so flush, compaction
 * and gets can run in bounded slices on the core's io_uring ring.
 *
 * File layout (byte by byte in docs/SSTABLE.md):
 *   data block 0 .. data block n-1   sstable_block format, each with its CRC
 *   index block                      sstable_block format: one entry per data
 *                                    block, key = separator, value = varint
 *                                    offset, varint length of the block
 *   bloom block                      bloom.h filter over every key, u32 CRC
 *   keys block                       smallest key, largest key, u32 CRC
 *   footer (64 bytes)                where the above are, counts, magic,
 *                                    version, CRC
 *
 * Writing: sstable_builder_add() in key order; whenever it suits the caller,
 * sstable_builder_take() hands over the bytes finished so far (whole data
 * blocks) to write at the next file offset; sstable_builder_finish() then a
 * last take gives the tail (last block, index, bloom, keys, footer).
 *
 * Reading a table:
 *   1. read the last SSTABLE_FOOTER_SIZE bytes; sstable_footer_decode() says
 *      where the metadata lies (footer.meta_offset, footer.meta_len);
 *   2. read that range; sstable_meta_load() checks it and builds the
 *      in-memory index and bloom filter (one malloc, at open time);
 *   3. a get: sstable_meta_may_contain() (bloom), sstable_meta_find_block()
 *      (the only block that can hold the key), read it (or take it from the
 *      block cache), sstable_block_get();
 *   4. a scan or a compaction: struct sstable_iter, which asks for blocks one
 *      at a time (NEED_BLOCK) and is fed their bytes when they arrive.
 */
#ifndef RINGKV_SHARD_SSTABLE_H
#define RINGKV_SHARD_SSTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shard/bloom.h"
#include "shard/sstable_block.h"

#define SSTABLE_FOOTER_SIZE 64
#define SSTABLE_FORMAT_VERSION 1
#define SSTABLE_DEFAULT_BLOCK_SIZE 4096
/* Metadata above this is refused as corrupt rather than allocated. */
#define SSTABLE_MAX_META_SIZE (1ull << 30)

/* Where a block lies in the file. */
struct sstable_handle {
	uint64_t offset;
	uint32_t len; /* trailer included */
};

struct sstable_options {
	size_t block_size;           /* a data block is cut once it reaches this */
	unsigned restart_interval;   /* entries per restart point */
	unsigned bloom_bits_per_key; /* >= 1 */
};

/* 4 KiB blocks, restart every 16 entries, 10 bloom bits per key. */
void sstable_options_default(struct sstable_options *opt);

struct sstable_builder {
	struct sstable_options opt;
	struct sstable_block_builder data;  /* data block being filled */
	struct sstable_block_builder index; /* index block, one entry per data block */
	struct sstable_buf out;             /* finished bytes not yet taken */
	uint64_t taken;                     /* bytes handed out by take */
	uint64_t *hashes;                   /* bloom hash of every key added */
	size_t hashes_cap;
	struct sstable_buf smallest;        /* first key added */
	struct sstable_buf sep;             /* scratch for index separators */
	bool pending_index;                 /* a finished block awaits its index entry */
	struct sstable_handle pending;      /* that block */
	uint64_t entry_count;
	uint64_t tombstone_count;
	uint32_t block_count;
	bool finished;
};

/* `opt` NULL = defaults. No allocation until the first add. */
void sstable_builder_init(struct sstable_builder *b, const struct sstable_options *opt);

void sstable_builder_destroy(struct sstable_builder *b);

/*
 * Adds an entry; keys strictly increasing (asserted: our own data). A
 * tombstone has value_len 0. Cuts a data block when it reaches
 * opt.block_size. 0 or -ENOMEM (the entry was not added).
 */
int sstable_builder_add(struct sstable_builder *b, const void *key, size_t key_len,
			const void *value, size_t value_len, enum sstable_kind kind);

/* Bytes finished and not yet taken. */
static inline size_t sstable_builder_ready(const struct sstable_builder *b)
{
	return b->out.len;
}

/*
 * Hands the finished bytes to the caller by swapping buffers: afterwards
 * dst->data[0..dst->len) are the bytes to write at file offset
 * sstable_builder_taken(b) - dst->len, and the builder goes on filling the
 * buffer `dst` held before (emptied). The caller owns what it holds in
 * `dst` (free with sstable_buf_free, or pass it to the next take to reuse
 * it), so the builder can keep adding while a write is in flight.
 */
void sstable_builder_take(struct sstable_builder *b, struct sstable_buf *dst);

/* Bytes handed out by take so far: the file offset of the next bytes. */
static inline uint64_t sstable_builder_taken(const struct sstable_builder *b)
{
	return b->taken;
}

/*
 * Ends the table: last data block, index, bloom, keys block and footer go to
 * the ready bytes; take them afterwards. 0 or -ENOMEM (call again to retry).
 */
int sstable_builder_finish(struct sstable_builder *b);

/* Size of the whole file (valid after finish). */
uint64_t sstable_builder_file_size(const struct sstable_builder *b);

/* What the footer says. All fields checked against each other and the file size. */
struct sstable_footer {
	uint64_t index_offset;    /* = bytes of data blocks */
	uint32_t index_len;
	uint32_t bloom_len;       /* CRC included */
	uint32_t smallest_len;
	uint32_t largest_len;
	uint64_t entry_count;
	uint64_t tombstone_count;
	uint32_t block_count;     /* data blocks */
	uint64_t meta_offset;     /* read [meta_offset, meta_offset + meta_len) next */
	uint64_t meta_len;
};

/*
 * Decodes the footer from `tail`, the last `tail_len` bytes of a file of
 * `file_size` bytes (only the last SSTABLE_FOOTER_SIZE are used). 0, or
 * RKV_ECORRUPT with *reason set: too short, bad magic, CRC or version, or
 * lengths that do not add up to the file size.
 */
int sstable_footer_decode(struct sstable_footer *f, const uint8_t *tail, size_t tail_len,
			  uint64_t file_size, const char **reason);

/* A table's metadata in memory: sparse index, bloom filter, key range. */
struct sstable_meta {
	uint32_t nblocks;
	const uint64_t *block_start; /* nblocks + 1 offsets: block i is [start[i], start[i+1]) */
	const uint32_t *sep_start;   /* nblocks + 1 offsets into seps */
	const uint8_t *seps;         /* separator of block i: seps[sep_start[i]..sep_start[i+1]) */
	struct bloom_view bloom;
	const uint8_t *smallest;
	uint32_t smallest_len;
	const uint8_t *largest;
	uint32_t largest_len;
	uint64_t entry_count;
	uint64_t tombstone_count;
	void *mem;                   /* the one allocation holding all of the above */
};

/*
 * Checks the metadata bytes `meta` (footer.meta_len bytes read from
 * footer.meta_offset; `f` as sstable_footer_decode() filled it) and builds `m`, which owns one malloc'd copy (free with
 * sstable_meta_free; the input may be dropped). Checks: every CRC, the index
 * entries decode, blocks are contiguous from offset 0 to the index, the
 * separators increase, the count matches the footer, the key range agrees
 * with the index. 0, RKV_ECORRUPT with *reason, or -ENOMEM.
 */
int sstable_meta_load(struct sstable_meta *m, const struct sstable_footer *f,
		      const uint8_t *meta, size_t meta_len, const char **reason);

void sstable_meta_free(struct sstable_meta *m);

/* Bloom check; `hash` is bloom_hash(key), computed once per get for all tables. */
static inline bool sstable_meta_may_contain(const struct sstable_meta *m, uint64_t hash)
{
	return bloom_view_may_contain(&m->bloom, hash);
}

/*
 * The only data block that can hold `key`: true with *h (and *block_index
 * when not NULL) set, false when the key is outside the table's range.
 */
bool sstable_meta_find_block(const struct sstable_meta *m, const void *key, size_t key_len,
			     struct sstable_handle *h, uint32_t *block_index);

/* Handle of data block `i` (< nblocks). */
struct sstable_handle sstable_meta_block(const struct sstable_meta *m, uint32_t i);

/*
 * Looks `key` up in one data block's bytes. `scratch` is an initialized block
 * iterator the caller reuses across gets (its key buffer). 0 with *value and
 * *value_len pointing into `block` and *kind (when not NULL) SSTABLE_VALUE
 * or SSTABLE_VALUE_DEADLINE (the value then starts with the deadline);
 * RKV_EDELETED for a tombstone;
 * RKV_ENOTFOUND; RKV_ECORRUPT with *reason; -ENOMEM.
 */
int sstable_block_get(struct sstable_block_iter *scratch, const uint8_t *block, size_t len,
		      bool verify_crc, const void *key, size_t key_len, const void **value,
		      size_t *value_len, enum sstable_kind *kind, const char **reason);

enum sstable_iter_state {
	SSTABLE_ITER_NEED_BLOCK, /* feed the bytes of sstable_iter.need */
	SSTABLE_ITER_ENTRY,      /* key, value, kind in sstable_iter.block */
	SSTABLE_ITER_END,        /* past the last entry */
	SSTABLE_ITER_ERROR,      /* sstable_iter.error (RKV_ECORRUPT, -ENOMEM), .reason */
};

/*
 * Table iterator driven by the caller's reads. The fed block's bytes are
 * borrowed: the caller keeps them alive (a pinned cache handle) until the
 * iterator asks for the next block or is destroyed.
 */
struct sstable_iter {
	const struct sstable_meta *meta;
	enum sstable_iter_state state;
	uint32_t block_index;         /* block needed or being walked */
	struct sstable_handle need;   /* its handle, in NEED_BLOCK */
	struct sstable_block_iter block; /* in ENTRY: .key, .key_len, .value, .value_len, .kind */
	bool seeking;                 /* the needed block is to be sought, not started */
	struct sstable_buf target;    /* seek target while waiting for the block */
	int error;
	const char *reason;
};

void sstable_iter_init(struct sstable_iter *it, const struct sstable_meta *m);
void sstable_iter_destroy(struct sstable_iter *it);

/* Starts at the first entry: NEED_BLOCK, or END for an empty table. */
enum sstable_iter_state sstable_iter_first(struct sstable_iter *it);

/* Starts at the first entry >= key: NEED_BLOCK, END, or ERROR (-ENOMEM). */
enum sstable_iter_state sstable_iter_seek(struct sstable_iter *it, const void *key,
					  size_t key_len);

/*
 * Gives the bytes of the block asked for (it->need; `len` must be
 * it->need.len). ENTRY, NEED_BLOCK (the sought key lies past this block), END
 * or ERROR.
 */
enum sstable_iter_state sstable_iter_feed(struct sstable_iter *it, const uint8_t *block,
					  size_t len, bool verify_crc);

/* Moves on from ENTRY: ENTRY, NEED_BLOCK, END or ERROR. */
enum sstable_iter_state sstable_iter_next(struct sstable_iter *it);

#endif
