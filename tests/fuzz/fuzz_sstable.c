/*
 * libFuzzer harness for the SSTable and manifest decoders, the readers of
 * bytes that come from disk. The first input byte picks a target; the "fixed"
 * variants recompute the CRCs the input claims to have, so the fuzzer gets
 * past them and into the structure checks:
 *   0, 1  data block: open, iterate, seek, get (raw / CRC fixed)
 *   2, 3  whole table file: footer, metadata, gets, a full iterator scan
 *         (raw / footer, index, bloom and keys CRCs fixed)
 *   4, 5  manifest replay (raw / record CRCs fixed)
 * Invariants: only documented return codes, every returned slice lies
 * inside the input, every handle inside the file.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "shard/crc32c.h"
#include "shard/manifest.h"
#include "shard/sstable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

static bool inside(const void *p, size_t n, const uint8_t *buf, size_t len)
{
	const uint8_t *q = p;

	return n == 0 || (q >= buf && n <= len && q <= buf + len - n);
}

static void fuzz_block(uint8_t *buf, size_t len, bool fix)
{
	struct sstable_block blk;
	struct sstable_block_iter it;
	const void *value;
	size_t value_len;
	int rv, steps = 0;

	if (fix && len >= 4)
		sstable_put_u32(buf + len - 4, crc32c(0, buf, len - 4));
	rv = sstable_block_open(&blk, buf, len, true, NULL);
	CHECK(rv == 0 || rv == RKV_ECORRUPT);
	if (rv != 0)
		return;
	sstable_block_iter_init(&it);
	for (rv = sstable_block_iter_first(&it, &blk); rv == 0 && it.valid;
	     rv = sstable_block_iter_next(&it)) {
		CHECK(inside(it.value, it.value_len, buf, len));
		CHECK(steps++ < (int)len);
	}
	CHECK(rv == 0 || rv == RKV_ECORRUPT);
	rv = sstable_block_iter_seek(&it, &blk, buf, len < 8 ? len : 8);
	CHECK(rv == 0 || rv == RKV_ECORRUPT);
	rv = sstable_block_get(&it, buf, len, false, "key", 3, &value, &value_len, NULL, NULL);
	CHECK(rv == 0 || rv == RKV_ENOTFOUND || rv == RKV_EDELETED || rv == RKV_ECORRUPT);
	if (rv == 0)
		CHECK(inside(value, value_len, buf, len));
	sstable_block_iter_destroy(&it);
}

static void fix_table(uint8_t *buf, size_t len)
{
	uint8_t *ft = buf + len - SSTABLE_FOOTER_SIZE;
	uint64_t index_offset = sstable_get_u64(ft);
	uint64_t index_len = sstable_get_u32(ft + 8), bloom_len = sstable_get_u32(ft + 12);
	uint64_t keys_len = (uint64_t)sstable_get_u32(ft + 16) + sstable_get_u32(ft + 20);
	uint64_t meta_end = len - SSTABLE_FOOTER_SIZE;

	sstable_put_u32(ft + 60, crc32c(0, ft, 60));
	if (index_offset > meta_end || index_len > meta_end - index_offset || index_len < 4)
		return;
	sstable_put_u32(buf + index_offset + index_len - 4,
			crc32c(0, buf + index_offset, index_len - 4));
	index_offset += index_len;
	if (bloom_len > meta_end - index_offset || bloom_len < 4)
		return;
	sstable_put_u32(buf + index_offset + bloom_len - 4,
			crc32c(0, buf + index_offset, bloom_len - 4));
	index_offset += bloom_len;
	if (keys_len + 4 > meta_end - index_offset)
		return;
	sstable_put_u32(buf + index_offset + keys_len, crc32c(0, buf + index_offset, keys_len));
}

static void fuzz_table(uint8_t *buf, size_t len, bool fix)
{
	struct sstable_footer f;
	struct sstable_meta m;
	struct sstable_iter it;
	struct sstable_block_iter scratch;
	struct sstable_handle h;
	enum sstable_iter_state st;
	int rv, steps = 0;

	if (fix && len >= SSTABLE_FOOTER_SIZE)
		fix_table(buf, len);
	rv = sstable_footer_decode(&f, buf, len, len, NULL);
	CHECK(rv == 0 || rv == RKV_ECORRUPT);
	if (rv != 0)
		return;
	CHECK(f.meta_offset + f.meta_len + SSTABLE_FOOTER_SIZE == len);
	rv = sstable_meta_load(&m, &f, buf + f.meta_offset, f.meta_len, NULL);
	CHECK(rv == 0 || rv == RKV_ECORRUPT);
	if (rv != 0)
		return;
	(void)sstable_meta_may_contain(&m, bloom_hash("key", 3));
	sstable_block_iter_init(&scratch);
	if (sstable_meta_find_block(&m, "key", 3, &h, NULL)) {
		const void *value;
		size_t value_len;

		CHECK(h.offset + h.len <= f.index_offset);
		rv = sstable_block_get(&scratch, buf + h.offset, h.len, !fix, "key", 3, &value,
				       &value_len, NULL, NULL);
		CHECK(rv == 0 || rv == RKV_ENOTFOUND || rv == RKV_EDELETED || rv == RKV_ECORRUPT);
	}
	sstable_block_iter_destroy(&scratch);
	sstable_iter_init(&it, &m);
	for (st = sstable_iter_first(&it); steps++ < 100000;) {
		if (st == SSTABLE_ITER_NEED_BLOCK) {
			CHECK(it.need.offset + it.need.len <= f.index_offset);
			st = sstable_iter_feed(&it, buf + it.need.offset, it.need.len, !fix);
		} else if (st == SSTABLE_ITER_ENTRY) {
			CHECK(inside(it.block.value, it.block.value_len, buf, len));
			st = sstable_iter_next(&it);
		} else {
			CHECK(st == SSTABLE_ITER_END ||
			      (st == SSTABLE_ITER_ERROR && it.error == RKV_ECORRUPT));
			break;
		}
	}
	sstable_iter_destroy(&it);
	sstable_meta_free(&m);
}

static void fix_manifest(uint8_t *buf, size_t len)
{
	size_t off = MANIFEST_HEADER_SIZE;

	if (len < MANIFEST_HEADER_SIZE)
		return;
	sstable_put_u32(buf + 12, crc32c(0, buf, 12));
	while (len - off >= MANIFEST_RECORD_HEADER_SIZE) {
		uint8_t *h = buf + off;
		uint32_t n = sstable_get_u32(h);

		if (n > len - off - MANIFEST_RECORD_HEADER_SIZE)
			n = (uint32_t)(len - off - MANIFEST_RECORD_HEADER_SIZE);
		sstable_put_u32(h, n);
		sstable_put_u32(h + 4, crc32c(0, h + MANIFEST_RECORD_HEADER_SIZE, n));
		sstable_put_u32(h + 8, crc32c(0, h, 8));
		sstable_put_u32(h + 12, 0);
		off += MANIFEST_RECORD_HEADER_SIZE + n;
	}
}

static void fuzz_manifest(uint8_t *buf, size_t len, bool fix)
{
	struct manifest_version v;
	struct manifest_replay r;
	int rv;

	if (fix)
		fix_manifest(buf, len);
	manifest_version_init(&v);
	rv = manifest_replay(&v, buf, len, &r);
	CHECK(rv == 0 || rv == RKV_ECORRUPT);
	if (rv == 0) {
		CHECK(r.valid_len <= len);
		/* A replayed version satisfies the invariants: its snapshot replays. */
		struct sstable_buf snap = { 0 };
		struct manifest_version again;
		struct manifest_replay r2;

		CHECK(manifest_version_snapshot(&v, &snap) == 0);
		manifest_version_init(&again);
		CHECK(manifest_replay(&again, snap.data, snap.len, &r2) == 0 && !r2.torn);
		manifest_version_destroy(&again);
		sstable_buf_free(&snap);
	} else {
		CHECK(r.offset <= len && r.reason != NULL);
	}
	manifest_version_destroy(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf;
	size_t len;

	if (size < 1)
		return 0;
	len = size - 1;
	buf = malloc(len != 0 ? len : 1); /* exact size, so ASan sees overreads */
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 1, len);
	switch (data[0] % 6) {
	case 0:
	case 1:
		fuzz_block(buf, len, data[0] % 6 == 1);
		break;
	case 2:
	case 3:
		fuzz_table(buf, len, data[0] % 6 == 3);
		break;
	default:
		fuzz_manifest(buf, len, data[0] % 6 == 5);
		break;
	}
	free(buf);
	return 0;
}
