/*
 * SSTable builder and reader; the file layout is in sstable.h and, byte by
 * byte, in docs/SSTABLE.md.
 *
 * The index's invariant: separator i is >= every key of block i and < every
 * key of block i + 1, and the last separator is the table's largest key. So
 * the first separator >= a key names the only block that can hold it, and a
 * key above the last separator is in no block. The builder picks a short
 * separator once it sees the next block's first key (the last block's index
 * entry waits for finish).
 *
 * The reader trusts nothing: sstable_meta_load() checks every CRC and that
 * the index tiles the data region exactly, so a handle it hands out always
 * lies inside the file.
 */
#include "shard/sstable.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "shard/crc32c.h"

static const uint8_t sstable_magic[8] = { 'R', 'K', 'V', 'S', 'S', 'T', 0, 1 };

/* Footer field offsets. */
#define FT_INDEX_OFFSET 0
#define FT_INDEX_LEN 8
#define FT_BLOOM_LEN 12
#define FT_SMALLEST_LEN 16
#define FT_LARGEST_LEN 20
#define FT_ENTRY_COUNT 24
#define FT_TOMBSTONE_COUNT 32
#define FT_BLOCK_COUNT 40
#define FT_RESERVED 44
#define FT_MAGIC 48
#define FT_VERSION 56
#define FT_CRC 60

void sstable_options_default(struct sstable_options *opt)
{
	assert(opt != NULL);
	opt->block_size = SSTABLE_DEFAULT_BLOCK_SIZE;
	opt->restart_interval = SSTABLE_BLOCK_DEFAULT_RESTART_INTERVAL;
	opt->bloom_bits_per_key = BLOOM_DEFAULT_BITS_PER_KEY;
}

void sstable_builder_init(struct sstable_builder *b, const struct sstable_options *opt)
{
	assert(b != NULL);
	memset(b, 0, sizeof(*b));
	if (opt != NULL)
		b->opt = *opt;
	else
		sstable_options_default(&b->opt);
	assert(b->opt.restart_interval >= 1 && b->opt.bloom_bits_per_key >= 1);
	sstable_block_builder_init(&b->data, b->opt.restart_interval);
	sstable_block_builder_init(&b->index, b->opt.restart_interval);
}

void sstable_builder_destroy(struct sstable_builder *b)
{
	assert(b != NULL);
	sstable_block_builder_destroy(&b->data);
	sstable_block_builder_destroy(&b->index);
	sstable_buf_free(&b->out);
	sstable_buf_free(&b->smallest);
	sstable_buf_free(&b->sep);
	free(b->hashes);
	b->hashes = NULL;
}

/* Adds the index entry of the pending block, separator `key`. */
static int index_add(struct sstable_builder *b, const uint8_t *key, size_t key_len)
{
	uint8_t value[2 * SSTABLE_VARINT_MAX];
	size_t n = sstable_put_varint(value, b->pending.offset);
	int rv;

	n += sstable_put_varint(value + n, b->pending.len);
	rv = sstable_block_builder_add(&b->index, key, key_len, value, n, SSTABLE_VALUE);
	if (rv == 0)
		b->pending_index = false;
	return rv;
}

/*
 * A short key S with last < S < next, or last itself: find the first byte
 * where they differ (p); `last` cut after byte j >= p with that byte raised
 * by one, where j is the first position at which raising stays below `next`
 * (at p: last[p] + 1 < next[p]; after p: any byte below 0xff, since S[p] =
 * last[p] < next[p] already decides). "apricot" | "banana" gives "aq".
 */
static int separator(struct sstable_builder *b, const uint8_t *last, size_t last_len,
		     const uint8_t *next, size_t next_len)
{
	size_t n = last_len < next_len ? last_len : next_len;
	size_t p = 0;
	int rv;

	while (p < n && last[p] == next[p])
		p++;
	b->sep.len = 0;
	if (p < n) {
		for (size_t j = p; j < last_len; j++) {
			if (j == p ? (unsigned)last[p] + 1 < next[p] : last[j] < 0xff) {
				rv = sstable_buf_append(&b->sep, last, j + 1);
				if (rv == 0)
					b->sep.data[j]++;
				return rv;
			}
		}
	}
	return sstable_buf_append(&b->sep, last, last_len);
}

static int finish_data_block(struct sstable_builder *b)
{
	size_t len;
	uint64_t offset = b->taken + b->out.len;
	int rv = sstable_block_builder_finish(&b->data, &b->out, &len);

	if (rv != 0)
		return rv;
	b->pending.offset = offset;
	b->pending.len = (uint32_t)len;
	b->pending_index = true;
	b->block_count++;
	return 0;
}

int sstable_builder_add(struct sstable_builder *b, const void *key, size_t key_len,
			const void *value, size_t value_len, enum sstable_kind kind)
{
	int rv;

	assert(b != NULL && !b->finished);
	assert(b->entry_count == 0 || key_order_cmp(b->data.last_key.data, b->data.last_key.len,
						      key, key_len) < 0);
	assert(b->block_count < UINT32_MAX - 1);
	if (b->entry_count == b->hashes_cap) {
		size_t cap = b->hashes_cap != 0 ? b->hashes_cap * 2 : 1024;
		uint64_t *p = realloc(b->hashes, cap * sizeof(*p));

		if (p == NULL)
			return -ENOMEM;
		b->hashes = p;
		b->hashes_cap = cap;
	}
	if (b->entry_count == 0 && (rv = sstable_buf_append(&b->smallest, key, key_len)) != 0)
		return rv;
	if (b->pending_index) {
		rv = separator(b, b->data.last_key.data, b->data.last_key.len, key, key_len);
		if (rv == 0)
			rv = index_add(b, b->sep.data, b->sep.len);
		if (rv != 0)
			goto err;
	}
	rv = sstable_block_builder_add(&b->data, key, key_len, value, value_len, kind);
	if (rv != 0)
		goto err;
	b->hashes[b->entry_count++] = bloom_hash(key, key_len);
	b->tombstone_count += kind == SSTABLE_TOMBSTONE;
	if (sstable_block_builder_size(&b->data) >= b->opt.block_size)
		(void)finish_data_block(b); /* on -ENOMEM the block just grows; retried next add */
	return 0;
err:
	if (b->entry_count == 0)
		b->smallest.len = 0;
	return rv;
}

void sstable_builder_take(struct sstable_builder *b, struct sstable_buf *dst)
{
	struct sstable_buf tmp;

	assert(b != NULL && dst != NULL);
	tmp = *dst;
	tmp.len = 0;
	*dst = b->out;
	b->out = tmp;
	b->taken += dst->len;
}

int sstable_builder_finish(struct sstable_builder *b)
{
	const uint8_t *largest = b->entry_count != 0 ? b->data.last_key.data : NULL;
	size_t largest_len = b->entry_count != 0 ? b->data.last_key.len : 0;
	size_t bloom_size, index_len, tail;
	uint64_t index_offset;
	uint8_t *p, *footer;
	int rv;

	assert(b != NULL && !b->finished);
	/* Each step changes nothing when it fails, so a retry resumes. */
	if (!sstable_block_builder_empty(&b->data) && (rv = finish_data_block(b)) != 0)
		return rv;
	if (b->pending_index && (rv = index_add(b, largest, largest_len)) != 0)
		return rv;
	bloom_size = bloom_encoded_size(b->entry_count, b->opt.bloom_bits_per_key);
	tail = sstable_block_builder_size(&b->index) + bloom_size + 4 + b->smallest.len +
	       largest_len + 4 + SSTABLE_FOOTER_SIZE;
	if ((rv = sstable_buf_reserve(&b->out, tail)) != 0)
		return rv;

	index_offset = b->taken + b->out.len;
	rv = sstable_block_builder_finish(&b->index, &b->out, &index_len);
	assert(rv == 0); /* reserved above */
	p = b->out.data + b->out.len;
	bloom_build(b->hashes, b->entry_count, b->opt.bloom_bits_per_key, p);
	sstable_put_u32(p + bloom_size, crc32c(0, p, bloom_size));
	p += bloom_size + 4;
	footer = p;
	if (b->smallest.len != 0)
		memcpy(p, b->smallest.data, b->smallest.len);
	p += b->smallest.len;
	if (largest_len != 0)
		memcpy(p, largest, largest_len);
	p += largest_len;
	sstable_put_u32(p, crc32c(0, footer, b->smallest.len + largest_len));
	p += 4;

	footer = p;
	sstable_put_u64(footer + FT_INDEX_OFFSET, index_offset);
	sstable_put_u32(footer + FT_INDEX_LEN, (uint32_t)index_len);
	sstable_put_u32(footer + FT_BLOOM_LEN, (uint32_t)(bloom_size + 4));
	sstable_put_u32(footer + FT_SMALLEST_LEN, (uint32_t)b->smallest.len);
	sstable_put_u32(footer + FT_LARGEST_LEN, (uint32_t)largest_len);
	sstable_put_u64(footer + FT_ENTRY_COUNT, b->entry_count);
	sstable_put_u64(footer + FT_TOMBSTONE_COUNT, b->tombstone_count);
	sstable_put_u32(footer + FT_BLOCK_COUNT, b->block_count);
	sstable_put_u32(footer + FT_RESERVED, 0);
	memcpy(footer + FT_MAGIC, sstable_magic, sizeof(sstable_magic));
	sstable_put_u32(footer + FT_VERSION, SSTABLE_FORMAT_VERSION);
	sstable_put_u32(footer + FT_CRC, crc32c(0, footer, FT_CRC));
	p += SSTABLE_FOOTER_SIZE;
	b->out.len = (size_t)(p - b->out.data);
	b->finished = true;
	return 0;
}

uint64_t sstable_builder_file_size(const struct sstable_builder *b)
{
	assert(b != NULL && b->finished);
	return b->taken + b->out.len;
}

static int fail(const char **reason, const char *why)
{
	if (reason != NULL)
		*reason = why;
	return RKV_ECORRUPT;
}

int sstable_footer_decode(struct sstable_footer *f, const uint8_t *tail, size_t tail_len,
			  uint64_t file_size, const char **reason)
{
	const uint8_t *p;
	uint64_t meta_len;

	assert(f != NULL && (tail != NULL || tail_len == 0));
	if (tail_len < SSTABLE_FOOTER_SIZE || file_size < SSTABLE_FOOTER_SIZE)
		return fail(reason, "file shorter than the footer");
	p = tail + tail_len - SSTABLE_FOOTER_SIZE;
	if (memcmp(p + FT_MAGIC, sstable_magic, sizeof(sstable_magic)) != 0)
		return fail(reason, "bad sstable magic");
	if (sstable_get_u32(p + FT_CRC) != crc32c(0, p, FT_CRC))
		return fail(reason, "footer crc mismatch");
	if (sstable_get_u32(p + FT_VERSION) != SSTABLE_FORMAT_VERSION)
		return fail(reason, "unknown sstable format version");
	if (sstable_get_u32(p + FT_RESERVED) != 0)
		return fail(reason, "footer reserved field not zero");
	f->index_offset = sstable_get_u64(p + FT_INDEX_OFFSET);
	f->index_len = sstable_get_u32(p + FT_INDEX_LEN);
	f->bloom_len = sstable_get_u32(p + FT_BLOOM_LEN);
	f->smallest_len = sstable_get_u32(p + FT_SMALLEST_LEN);
	f->largest_len = sstable_get_u32(p + FT_LARGEST_LEN);
	f->entry_count = sstable_get_u64(p + FT_ENTRY_COUNT);
	f->tombstone_count = sstable_get_u64(p + FT_TOMBSTONE_COUNT);
	f->block_count = sstable_get_u32(p + FT_BLOCK_COUNT);
	/* Four u32 lengths: the sum cannot overflow 64 bits. */
	meta_len = (uint64_t)f->index_len + f->bloom_len + f->smallest_len + f->largest_len + 4;
	if (f->index_len < SSTABLE_BLOCK_TRAILER_SIZE || f->bloom_len < 4)
		return fail(reason, "index or bloom block too short");
	if (meta_len > SSTABLE_MAX_META_SIZE)
		return fail(reason, "metadata larger than SSTABLE_MAX_META_SIZE");
	if (f->index_offset > file_size - SSTABLE_FOOTER_SIZE ||
	    meta_len != file_size - SSTABLE_FOOTER_SIZE - f->index_offset)
		return fail(reason, "footer lengths do not add up to the file size");
	if ((f->block_count == 0) != (f->entry_count == 0) || f->entry_count < f->block_count ||
	    f->tombstone_count > f->entry_count)
		return fail(reason, "footer counts inconsistent");
	if (f->entry_count == 0 && (f->smallest_len != 0 || f->largest_len != 0))
		return fail(reason, "empty table with a key range");
	f->meta_offset = f->index_offset;
	f->meta_len = meta_len;
	return 0;
}

/* Decodes an index entry's value: the block's offset and length. */
static bool decode_handle(const struct sstable_block_iter *it, struct sstable_handle *h)
{
	const uint8_t *p, *end;
	uint64_t offset, len;

	if (it->kind != SSTABLE_VALUE)
		return false;
	p = it->value;
	end = p + it->value_len;
	if ((p = sstable_get_varint(p, end, &offset)) == NULL ||
	    (p = sstable_get_varint(p, end, &len)) == NULL || p != end)
		return false;
	if (len < SSTABLE_BLOCK_TRAILER_SIZE || len > UINT32_MAX)
		return false;
	h->offset = offset;
	h->len = (uint32_t)len;
	return true;
}

/*
 * One pass over the index: checks the handles tile [0, index_offset) and
 * counts blocks and separator bytes; with `m->mem` set, also copies them.
 */
static int walk_index(struct sstable_meta *m, const struct sstable_block *blk,
		      const struct sstable_footer *f, uint32_t *nblocks, uint64_t *sep_bytes,
		      const char **reason)
{
	struct sstable_block_iter it;
	uint64_t expect = 0, bytes = 0;
	uint32_t n = 0;
	uint64_t *start = m->mem != NULL ? (uint64_t *)m->block_start : NULL;
	uint32_t *sep_start = m->mem != NULL ? (uint32_t *)m->sep_start : NULL;
	uint8_t *seps = m->mem != NULL ? (uint8_t *)m->seps : NULL;
	int rv;

	sstable_block_iter_init(&it);
	for (rv = sstable_block_iter_first(&it, blk); rv == 0 && it.valid;
	     rv = sstable_block_iter_next(&it)) {
		struct sstable_handle h;

		if (!decode_handle(&it, &h)) {
			rv = fail(reason, "bad block handle in the index");
			break;
		}
		if (h.offset != expect || h.len > f->index_offset - expect) {
			rv = fail(reason, "index blocks do not tile the data region");
			break;
		}
		if (n == UINT32_MAX - 1) {
			rv = fail(reason, "too many blocks");
			break;
		}
		if (seps != NULL) {
			start[n] = h.offset;
			sep_start[n] = (uint32_t)bytes;
			memcpy(seps + bytes, it.key, it.key_len);
		}
		expect += h.len;
		bytes += it.key_len;
		n++;
	}
	if (rv == RKV_ECORRUPT && it.reason != NULL)
		rv = fail(reason, it.reason);
	sstable_block_iter_destroy(&it);
	if (rv != 0)
		return rv;
	if (expect != f->index_offset)
		return fail(reason, "index blocks do not tile the data region");
	if (n != f->block_count)
		return fail(reason, "index block count differs from the footer");
	if (seps != NULL) {
		start[n] = expect;
		sep_start[n] = (uint32_t)bytes;
	}
	*nblocks = n;
	*sep_bytes = bytes;
	return 0;
}

static const uint8_t *sep_of(const struct sstable_meta *m, uint32_t i, size_t *len)
{
	*len = m->sep_start[i + 1] - m->sep_start[i];
	return m->seps + m->sep_start[i];
}

int sstable_meta_load(struct sstable_meta *m, const struct sstable_footer *f,
		      const uint8_t *meta, size_t meta_len, const char **reason)
{
	size_t keys_len = (size_t)f->smallest_len + f->largest_len;
	const uint8_t *bloom, *keys;
	struct sstable_block blk;
	uint32_t nblocks;
	uint64_t sep_bytes, total;
	uint8_t *p;
	int rv;

	assert(m != NULL && f != NULL && (meta != NULL || meta_len == 0));
	memset(m, 0, sizeof(*m));
	if (meta_len != f->meta_len)
		return fail(reason, "metadata length differs from the footer");
	bloom = meta + f->index_len;
	keys = bloom + f->bloom_len;
	rv = sstable_block_open(&blk, meta, f->index_len, true, reason);
	if (rv != 0)
		return rv;
	if (sstable_get_u32(bloom + f->bloom_len - 4) != crc32c(0, bloom, f->bloom_len - 4))
		return fail(reason, "bloom block crc mismatch");
	if (sstable_get_u32(keys + keys_len) != crc32c(0, keys, keys_len))
		return fail(reason, "keys block crc mismatch");
	rv = walk_index(m, &blk, f, &nblocks, &sep_bytes, reason);
	if (rv != 0)
		return rv;
	if (sep_bytes > UINT32_MAX)
		return fail(reason, "index separators too large");

	total = 8 * ((uint64_t)nblocks + 1) + 4 * ((uint64_t)nblocks + 1) + sep_bytes +
		(f->bloom_len - 4) + keys_len;
	m->mem = malloc(total != 0 ? total : 1);
	if (m->mem == NULL)
		return -ENOMEM;
	p = m->mem;
	m->block_start = (const uint64_t *)p;
	p += 8 * ((size_t)nblocks + 1);
	m->sep_start = (const uint32_t *)p;
	p += 4 * ((size_t)nblocks + 1);
	m->seps = p;
	rv = walk_index(m, &blk, f, &nblocks, &sep_bytes, reason);
	assert(rv == 0); /* same bytes as the first pass */
	p += sep_bytes;
	memcpy(p, bloom, f->bloom_len - 4);
	rv = bloom_view_init(&m->bloom, p, f->bloom_len - 4, reason);
	if (rv != 0)
		goto err;
	p += f->bloom_len - 4;
	if (keys_len != 0)
		memcpy(p, keys, keys_len);
	m->smallest = p;
	m->smallest_len = f->smallest_len;
	m->largest = p + f->smallest_len;
	m->largest_len = f->largest_len;
	m->nblocks = nblocks;
	m->entry_count = f->entry_count;
	m->tombstone_count = f->tombstone_count;

	for (uint32_t i = 1; i < nblocks; i++) {
		size_t a_len, b_len;
		const uint8_t *a = sep_of(m, i - 1, &a_len), *b = sep_of(m, i, &b_len);

		if (key_order_cmp(a, a_len, b, b_len) >= 0) {
			rv = fail(reason, "index separators not increasing");
			goto err;
		}
	}
	if (nblocks != 0) {
		size_t last_len;
		const uint8_t *last = sep_of(m, nblocks - 1, &last_len);
		size_t first_len;
		const uint8_t *first = sep_of(m, 0, &first_len);

		if (key_order_cmp(last, last_len, m->largest, m->largest_len) != 0) {
			rv = fail(reason, "largest key differs from the last separator");
			goto err;
		}
		if (key_order_cmp(m->smallest, m->smallest_len, first, first_len) > 0) {
			rv = fail(reason, "smallest key above the first separator");
			goto err;
		}
	} else if (keys_len != 0) {
		rv = fail(reason, "empty table with a key range");
		goto err;
	}
	return 0;
err:
	sstable_meta_free(m);
	return rv;
}

void sstable_meta_free(struct sstable_meta *m)
{
	assert(m != NULL);
	free(m->mem);
	memset(m, 0, sizeof(*m));
}

/* Index of the first block whose separator is >= key; nblocks if none. */
static uint32_t find_index(const struct sstable_meta *m, const void *key, size_t key_len)
{
	uint32_t lo = 0, hi = m->nblocks;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		size_t sep_len;
		const uint8_t *sep = sep_of(m, mid, &sep_len);

		if (key_order_cmp(sep, sep_len, key, key_len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct sstable_handle sstable_meta_block(const struct sstable_meta *m, uint32_t i)
{
	struct sstable_handle h;

	assert(m != NULL && i < m->nblocks);
	h.offset = m->block_start[i];
	h.len = (uint32_t)(m->block_start[i + 1] - m->block_start[i]);
	return h;
}

bool sstable_meta_find_block(const struct sstable_meta *m, const void *key, size_t key_len,
			     struct sstable_handle *h, uint32_t *block_index)
{
	uint32_t i;

	assert(m != NULL && h != NULL);
	if (m->nblocks == 0 ||
	    key_order_cmp(key, key_len, m->smallest, m->smallest_len) < 0)
		return false;
	i = find_index(m, key, key_len);
	if (i == m->nblocks)
		return false;
	*h = sstable_meta_block(m, i);
	if (block_index != NULL)
		*block_index = i;
	return true;
}

int sstable_block_get(struct sstable_block_iter *scratch, const uint8_t *block, size_t len,
		      bool verify_crc, const void *key, size_t key_len, const void **value,
		      size_t *value_len, enum sstable_kind *kind, const char **reason)
{
	struct sstable_block blk;
	int rv;

	assert(scratch != NULL && value != NULL && value_len != NULL);
	rv = sstable_block_open(&blk, block, len, verify_crc, reason);
	if (rv != 0)
		return rv;
	rv = sstable_block_iter_seek(scratch, &blk, key, key_len);
	if (rv == RKV_ECORRUPT && reason != NULL)
		*reason = scratch->reason;
	if (rv != 0)
		return rv;
	if (!scratch->valid || key_order_cmp(scratch->key, scratch->key_len, key, key_len) != 0)
		return RKV_ENOTFOUND;
	if (scratch->kind == SSTABLE_TOMBSTONE)
		return RKV_EDELETED;
	*value = scratch->value;
	*value_len = scratch->value_len;
	if (kind != NULL)
		*kind = scratch->kind;
	return 0;
}

void sstable_iter_init(struct sstable_iter *it, const struct sstable_meta *m)
{
	assert(it != NULL && m != NULL);
	memset(it, 0, sizeof(*it));
	it->meta = m;
	it->state = SSTABLE_ITER_END;
	sstable_block_iter_init(&it->block);
}

void sstable_iter_destroy(struct sstable_iter *it)
{
	assert(it != NULL);
	sstable_block_iter_destroy(&it->block);
	sstable_buf_free(&it->target);
}

static enum sstable_iter_state want_block(struct sstable_iter *it, uint32_t i, bool seeking)
{
	it->block.valid = false;
	if (i >= it->meta->nblocks)
		return it->state = SSTABLE_ITER_END;
	it->block_index = i;
	it->need = sstable_meta_block(it->meta, i);
	it->seeking = seeking;
	return it->state = SSTABLE_ITER_NEED_BLOCK;
}

static enum sstable_iter_state iter_error(struct sstable_iter *it, int error, const char *why)
{
	it->error = error;
	it->reason = why;
	it->block.valid = false;
	return it->state = SSTABLE_ITER_ERROR;
}

enum sstable_iter_state sstable_iter_first(struct sstable_iter *it)
{
	assert(it != NULL);
	it->error = 0;
	it->reason = NULL;
	return want_block(it, 0, false);
}

enum sstable_iter_state sstable_iter_seek(struct sstable_iter *it, const void *key,
					  size_t key_len)
{
	assert(it != NULL && (key != NULL || key_len == 0));
	it->error = 0;
	it->reason = NULL;
	it->target.len = 0;
	if (sstable_buf_append(&it->target, key, key_len) != 0)
		return iter_error(it, -ENOMEM, "out of memory");
	return want_block(it, find_index(it->meta, key, key_len), true);
}

/* After a step inside the block: an entry, or on to the next block. */
static enum sstable_iter_state settle(struct sstable_iter *it, int rv)
{
	if (rv != 0)
		return iter_error(it, rv, rv == RKV_ECORRUPT ? it->block.reason : "out of memory");
	if (it->block.valid)
		return it->state = SSTABLE_ITER_ENTRY;
	return want_block(it, it->block_index + 1, false);
}

enum sstable_iter_state sstable_iter_feed(struct sstable_iter *it, const uint8_t *block,
					  size_t len, bool verify_crc)
{
	struct sstable_block blk;
	const char *why = NULL;
	int rv;

	assert(it != NULL && it->state == SSTABLE_ITER_NEED_BLOCK);
	if (len != it->need.len)
		return iter_error(it, RKV_ECORRUPT, "block length differs from the index");
	rv = sstable_block_open(&blk, block, len, verify_crc, &why);
	if (rv != 0)
		return iter_error(it, rv, why);
	if (blk.nrestarts == 0)
		return iter_error(it, RKV_ECORRUPT, "empty data block");
	if (it->seeking)
		rv = sstable_block_iter_seek(&it->block, &blk, it->target.data, it->target.len);
	else
		rv = sstable_block_iter_first(&it->block, &blk);
	return settle(it, rv);
}

enum sstable_iter_state sstable_iter_next(struct sstable_iter *it)
{
	assert(it != NULL && it->state == SSTABLE_ITER_ENTRY);
	return settle(it, sstable_block_iter_next(&it->block));
}
