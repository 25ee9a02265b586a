/*
 * Tests for shard/sstable.c: a table built in slices and read back through
 * the footer, the metadata, point gets and the caller-driven iterator, for
 * several block sizes; the empty table; separators; and damage anywhere in
 * the footer or metadata refused with RKV_ECORRUPT.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/errors.h"
#include "shard/crc32c.h"
#include "shard/sstable.h"

/* Key i: "k" + 2*i zero-padded, so odd numbers fall between keys. */
static size_t key_of(char *buf, unsigned i)
{
	return (size_t)snprintf(buf, 32, "k%07u", 2 * i);
}

static size_t value_of(char *buf, unsigned i)
{
	return (size_t)snprintf(buf, 128, "v%u-%.*s", i, (int)(i % 61),
				"0123456789012345678901234567890123456789012345678901234567890");
}

static bool is_tomb(unsigned i)
{
	return i % 11 == 5;
}

struct table {
	struct sstable_buf file; /* the whole file image */
	struct sstable_footer footer;
	struct sstable_meta meta;
};

/* Builds n entries, taking the ready bytes every `take_every` adds. */
static void build(struct table *t, unsigned n, size_t block_size, unsigned take_every)
{
	struct sstable_options opt;
	struct sstable_builder b;
	struct sstable_buf slice = { 0 };
	char k[32], v[128];

	sstable_options_default(&opt);
	opt.block_size = block_size;
	memset(t, 0, sizeof(*t));
	sstable_builder_init(&b, &opt);
	for (unsigned i = 0; i < n; i++) {
		size_t kl = key_of(k, i), vl = value_of(v, i);

		if (is_tomb(i))
			assert_int_equal(sstable_builder_add(&b, k, kl, NULL, 0, SSTABLE_TOMBSTONE), 0);
		else
			assert_int_equal(sstable_builder_add(&b, k, kl, v, vl, SSTABLE_VALUE), 0);
		if (take_every != 0 && i % take_every == 0) {
			sstable_builder_take(&b, &slice);
			assert_int_equal(sstable_builder_taken(&b), t->file.len + slice.len);
			assert_int_equal(sstable_buf_append(&t->file, slice.data, slice.len), 0);
		}
	}
	assert_int_equal(sstable_builder_finish(&b), 0);
	sstable_builder_take(&b, &slice);
	assert_int_equal(sstable_buf_append(&t->file, slice.data, slice.len), 0);
	assert_int_equal(sstable_builder_file_size(&b), t->file.len);
	sstable_buf_free(&slice);
	sstable_builder_destroy(&b);
}

static void open_table(struct table *t)
{
	const char *reason = NULL;
	const uint8_t *tail = t->file.data + t->file.len - SSTABLE_FOOTER_SIZE;

	assert_int_equal(sstable_footer_decode(&t->footer, tail, SSTABLE_FOOTER_SIZE, t->file.len,
					       &reason), 0);
	assert_int_equal(t->footer.meta_offset + t->footer.meta_len + SSTABLE_FOOTER_SIZE,
			 t->file.len);
	assert_int_equal(sstable_meta_load(&t->meta, &t->footer,
					   t->file.data + t->footer.meta_offset,
					   t->footer.meta_len, &reason), 0);
}

static void close_table(struct table *t)
{
	sstable_meta_free(&t->meta);
	sstable_buf_free(&t->file);
}

/* A get as the shard will do it: bloom, index, block. */
static int get(const struct table *t, struct sstable_block_iter *scratch, const char *key,
	       size_t key_len, const void **value, size_t *value_len)
{
	struct sstable_handle h;

	if (!sstable_meta_may_contain(&t->meta, bloom_hash(key, key_len)))
		return RKV_ENOTFOUND;
	if (!sstable_meta_find_block(&t->meta, key, key_len, &h, NULL))
		return RKV_ENOTFOUND;
	assert_true(h.offset + h.len <= t->footer.index_offset);
	return sstable_block_get(scratch, t->file.data + h.offset, h.len, true, key, key_len,
				 value, value_len, NULL, NULL);
}

static void check_entry(const struct sstable_iter *it, unsigned i)
{
	char k[32], v[128];
	size_t kl = key_of(k, i), vl = value_of(v, i);

	assert_int_equal(it->state, SSTABLE_ITER_ENTRY);
	assert_int_equal(it->block.key_len, kl);
	assert_memory_equal(it->block.key, k, kl);
	if (is_tomb(i)) {
		assert_int_equal(it->block.kind, SSTABLE_TOMBSTONE);
	} else {
		assert_int_equal(it->block.kind, SSTABLE_VALUE);
		assert_int_equal(it->block.value_len, vl);
		assert_memory_equal(it->block.value, v, vl);
	}
}

/* Feeds blocks until the iterator has an entry or ends. */
static enum sstable_iter_state drive(const struct table *t, struct sstable_iter *it,
				     enum sstable_iter_state st, unsigned *reads)
{
	while (st == SSTABLE_ITER_NEED_BLOCK) {
		(*reads)++;
		st = sstable_iter_feed(it, t->file.data + it->need.offset, it->need.len, true);
	}
	return st;
}

static void check_table(unsigned n, size_t block_size, unsigned take_every)
{
	struct table t;
	struct sstable_block_iter scratch;
	struct sstable_iter it;
	enum sstable_iter_state st;
	unsigned reads = 0, fp = 0;
	char k[32], v[128];
	const void *value;
	size_t value_len;

	build(&t, n, block_size, take_every);
	open_table(&t);
	assert_int_equal(t.meta.entry_count, n);
	assert_true(t.meta.nblocks >= (n != 0) && t.meta.nblocks <= n);
	sstable_block_iter_init(&scratch);
	for (unsigned i = 0; i < n; i++) {
		size_t kl = key_of(k, i), vl = value_of(v, i);
		int rv = get(&t, &scratch, k, kl, &value, &value_len);

		if (is_tomb(i)) {
			assert_int_equal(rv, RKV_EDELETED);
		} else {
			assert_int_equal(rv, 0);
			assert_int_equal(value_len, vl);
			assert_memory_equal(value, v, vl);
		}
		k[kl - 1]++; /* absent: between i and i + 1 */
		fp += sstable_meta_may_contain(&t.meta, bloom_hash(k, kl));
		assert_int_equal(get(&t, &scratch, k, kl, &value, &value_len), RKV_ENOTFOUND);
	}
	assert_true(fp <= n / 20 + 2);
	assert_int_equal(get(&t, &scratch, "a", 1, &value, &value_len), RKV_ENOTFOUND);
	assert_int_equal(get(&t, &scratch, "z", 1, &value, &value_len), RKV_ENOTFOUND);
	sstable_block_iter_destroy(&scratch);

	/* Full scan: one read per block. */
	sstable_iter_init(&it, &t.meta);
	st = drive(&t, &it, sstable_iter_first(&it), &reads);
	for (unsigned i = 0; i < n; i++) {
		check_entry(&it, i);
		st = drive(&t, &it, sstable_iter_next(&it), &reads);
	}
	assert_int_equal(st, SSTABLE_ITER_END);
	assert_int_equal(reads, t.meta.nblocks);
	/* Seeks: to each key, to each gap, before everything, past everything. */
	for (unsigned i = 0; i < n; i += 1 + n / 300) {
		size_t kl = key_of(k, i);

		st = drive(&t, &it, sstable_iter_seek(&it, k, kl), &reads);
		check_entry(&it, i);
		k[kl - 1]--;
		st = drive(&t, &it, sstable_iter_seek(&it, k, kl), &reads);
		check_entry(&it, i);
		k[kl - 1] += 2;
		st = drive(&t, &it, sstable_iter_seek(&it, k, kl), &reads);
		if (i + 1 < n)
			check_entry(&it, i + 1);
		else
			assert_int_equal(st, SSTABLE_ITER_END);
	}
	st = drive(&t, &it, sstable_iter_seek(&it, "", 0), &reads);
	if (n != 0)
		check_entry(&it, 0);
	st = drive(&t, &it, sstable_iter_seek(&it, "z", 1), &reads);
	assert_int_equal(st, SSTABLE_ITER_END);
	sstable_iter_destroy(&it);
	close_table(&t);
}

static void test_round_trip(void **state)
{
	(void)state;
	check_table(1, 4096, 0);
	check_table(2000, 4096, 7);
	check_table(2000, 256, 1);
	check_table(500, 1, 3); /* a block per entry */
	check_table(20000, 4096, 100);
}

static void test_empty_table(void **state)
{
	struct table t;
	struct sstable_iter it;
	struct sstable_handle h;
	unsigned reads = 0;

	(void)state;
	build(&t, 0, 4096, 0);
	open_table(&t);
	assert_int_equal(t.meta.nblocks, 0);
	assert_false(sstable_meta_may_contain(&t.meta, bloom_hash("a", 1)));
	assert_false(sstable_meta_find_block(&t.meta, "a", 1, &h, NULL));
	sstable_iter_init(&it, &t.meta);
	assert_int_equal(drive(&t, &it, sstable_iter_first(&it), &reads), SSTABLE_ITER_END);
	assert_int_equal(drive(&t, &it, sstable_iter_seek(&it, "a", 1), &reads), SSTABLE_ITER_END);
	sstable_iter_destroy(&it);
	close_table(&t);
}

static void test_separators(void **state)
{
	struct sstable_options opt;
	struct sstable_builder b;
	struct sstable_buf file = { 0 };
	struct table t;
	static const char *keys[] = { "apple", "apricot", "banana", "bandana", "c", "cc" };

	(void)state;
	sstable_options_default(&opt);
	opt.block_size = 1; /* one entry per block */
	sstable_builder_init(&b, &opt);
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(sstable_builder_add(&b, keys[i], strlen(keys[i]), "v", 1,
						     SSTABLE_VALUE), 0);
	assert_int_equal(sstable_builder_finish(&b), 0);
	sstable_builder_take(&b, &file);
	sstable_builder_destroy(&b);
	memset(&t, 0, sizeof(t));
	t.file = file;
	open_table(&t);
	assert_int_equal(t.meta.nblocks, 6);
	/* "apple" | "apricot": "apq"; "apricot" | "banana": "aq"; "banana" |
	 * "bandana": "banb"; "bandana" | "c": "bb"; "c" | "cc": "c" itself (a
	 * prefix of the next key); the last block: "cc" exactly. */
	static const char *want[] = { "apq", "aq", "banb", "bb", "c", "cc" };
	for (uint32_t i = 0; i < 6; i++) {
		size_t len = t.meta.sep_start[i + 1] - t.meta.sep_start[i];

		assert_int_equal(len, strlen(want[i]));
		assert_memory_equal(t.meta.seps + t.meta.sep_start[i], want[i], len);
	}
	assert_int_equal(t.meta.smallest_len, 5);
	assert_memory_equal(t.meta.smallest, "apple", 5);
	assert_memory_equal(t.meta.largest, "cc", 2);
	close_table(&t);
}

static void test_damage(void **state)
{
	struct table t;
	struct sstable_footer f;
	struct sstable_meta m;
	uint8_t *copy;
	size_t len;

	(void)state;
	build(&t, 300, 512, 0);
	open_table(&t);
	len = t.file.len;
	copy = malloc(len);
	assert_non_null(copy);
	/* Any flipped byte in the footer or metadata is caught. */
	for (size_t i = t.footer.meta_offset; i < len; i++) {
		const char *reason = NULL;
		int rv;

		memcpy(copy, t.file.data, len);
		copy[i] ^= 0x10;
		rv = sstable_footer_decode(&f, copy + len - SSTABLE_FOOTER_SIZE,
					   SSTABLE_FOOTER_SIZE, len, &reason);
		if (rv == 0)
			rv = sstable_meta_load(&m, &f, copy + f.meta_offset, f.meta_len, &reason);
		assert_int_equal(rv, RKV_ECORRUPT);
		assert_non_null(reason);
	}
	/* Short tails and wrong file sizes. */
	for (size_t l = 0; l < SSTABLE_FOOTER_SIZE; l++)
		assert_int_equal(sstable_footer_decode(&f, t.file.data + len - l, l, len, NULL),
				 RKV_ECORRUPT);
	assert_int_equal(sstable_footer_decode(&f, t.file.data + len - 64, 64, len + 1, NULL),
			 RKV_ECORRUPT);
	assert_int_equal(sstable_footer_decode(&f, t.file.data + len - 64, 64, 10, NULL),
			 RKV_ECORRUPT);
	/* Metadata of the wrong length. */
	assert_int_equal(sstable_meta_load(&m, &t.footer, t.file.data + t.footer.meta_offset,
					   t.footer.meta_len - 1, NULL), RKV_ECORRUPT);
	free(copy);
	close_table(&t);
}

static void test_iter_damaged_block(void **state)
{
	struct table t;
	struct sstable_iter it;
	enum sstable_iter_state st;

	(void)state;
	build(&t, 300, 512, 0);
	open_table(&t);
	t.file.data[10] ^= 1; /* inside data block 0 */
	sstable_iter_init(&it, &t.meta);
	st = sstable_iter_first(&it);
	assert_int_equal(st, SSTABLE_ITER_NEED_BLOCK);
	st = sstable_iter_feed(&it, t.file.data + it.need.offset, it.need.len, true);
	assert_int_equal(st, SSTABLE_ITER_ERROR);
	assert_int_equal(it.error, RKV_ECORRUPT);
	assert_non_null(it.reason);
	st = sstable_iter_first(&it);
	st = sstable_iter_feed(&it, t.file.data + it.need.offset, it.need.len - 1, true);
	assert_int_equal(st, SSTABLE_ITER_ERROR);
	sstable_iter_destroy(&it);
	close_table(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_empty_table),
		cmocka_unit_test(test_separators),
		cmocka_unit_test(test_damage),
		cmocka_unit_test(test_iter_damaged_block),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
