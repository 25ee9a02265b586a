/*
 * Tests for shard/sstable_block.c: build/iterate/seek round trips over several
 * restart intervals, tombstones, empty keys and values, varint coding, and
 * that damaged or random bytes are refused or decoded without reading outside
 * the block (run it under ASan).
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
#include "shard/sstable_block.h"

#define N 500

/* Key i: "key" + zero-padded 2*i (odd numbers fall between keys). */
static size_t key_of(char *buf, unsigned i)
{
	return (size_t)snprintf(buf, 32, "key%06u", 2 * i);
}

static size_t value_of(char *buf, unsigned i)
{
	return (size_t)snprintf(buf, 64, "value-%u-%.*s", i, (int)(i % 23), "abcdefghijklmnopqrstuvwxyz");
}

static bool is_tomb(unsigned i)
{
	return i % 7 == 3;
}

/* Entries whose value starts with an expiry deadline (values are >= 8 bytes). */
static bool has_deadline(unsigned i)
{
	return !is_tomb(i) && i % 5 == 1;
}

static void build(struct sstable_buf *out, unsigned n, unsigned restart_interval, size_t *len)
{
	struct sstable_block_builder b;
	char k[32], v[64];

	sstable_block_builder_init(&b, restart_interval);
	for (unsigned i = 0; i < n; i++) {
		size_t kl = key_of(k, i), vl = value_of(v, i);

		if (is_tomb(i))
			assert_int_equal(sstable_block_builder_add(&b, k, kl, NULL, 0, SSTABLE_TOMBSTONE), 0);
		else
			assert_int_equal(sstable_block_builder_add(&b, k, kl, v, vl,
								   has_deadline(i) ?
									   SSTABLE_VALUE_DEADLINE :
									   SSTABLE_VALUE),
					 0);
	}
	size_t est = sstable_block_builder_size(&b);
	assert_int_equal(sstable_block_builder_finish(&b, out, len), 0);
	assert_int_equal(*len, est);
	assert_true(sstable_block_builder_empty(&b));
	sstable_block_builder_destroy(&b);
}

static void check_entry(const struct sstable_block_iter *it, unsigned i)
{
	char k[32], v[64];
	size_t kl = key_of(k, i), vl = value_of(v, i);

	assert_true(it->valid);
	assert_int_equal(it->key_len, kl);
	assert_memory_equal(it->key, k, kl);
	if (is_tomb(i)) {
		assert_int_equal(it->kind, SSTABLE_TOMBSTONE);
		assert_null(it->value);
		assert_int_equal(it->value_len, 0);
	} else {
		assert_int_equal(it->kind, has_deadline(i) ? SSTABLE_VALUE_DEADLINE : SSTABLE_VALUE);
		assert_int_equal(it->value_len, vl);
		assert_memory_equal(it->value, v, vl);
	}
}

static void test_round_trip(void **state)
{
	static const unsigned intervals[] = { 1, 2, 16, 1000 };

	(void)state;
	for (size_t t = 0; t < sizeof(intervals) / sizeof(intervals[0]); t++) {
		for (unsigned n = 0; n <= N; n += (n < 40 ? 1 : 97)) {
			struct sstable_buf out = { 0 };
			struct sstable_block blk;
			struct sstable_block_iter it;
			size_t len;
			char k[32];

			build(&out, n, intervals[t], &len);
			assert_int_equal(out.len, len);
			assert_int_equal(sstable_block_open(&blk, out.data, len, true, NULL), 0);
			sstable_block_iter_init(&it);
			assert_int_equal(sstable_block_iter_first(&it, &blk), 0);
			for (unsigned i = 0; i < n; i++) {
				check_entry(&it, i);
				assert_int_equal(sstable_block_iter_next(&it), 0);
			}
			assert_false(it.valid);
			/* Seek every key, every gap before a key, and past the end. */
			for (unsigned i = 0; i < n; i++) {
				size_t kl = key_of(k, i);

				assert_int_equal(sstable_block_iter_seek(&it, &blk, k, kl), 0);
				check_entry(&it, i);
				k[kl - 1]--; /* odd number: between i - 1 and i */
				assert_int_equal(sstable_block_iter_seek(&it, &blk, k, kl), 0);
				check_entry(&it, i);
				assert_int_equal(sstable_block_iter_seek(&it, &blk, "key", 3), 0);
				check_entry(&it, 0);
			}
			assert_int_equal(sstable_block_iter_seek(&it, &blk, "kez", 3), 0);
			assert_false(it.valid);
			assert_int_equal(sstable_block_iter_seek(&it, &blk, "", 0), 0);
			assert_true(it.valid == (n > 0));
			sstable_block_iter_destroy(&it);
			sstable_buf_free(&out);
		}
	}
}

static void test_prefix_keys(void **state)
{
	/* Keys that are prefixes of each other: shorter first, empty key first. */
	static const char *keys[] = { "", "a", "aa", "aaa", "aab", "ab", "b", "ba" };
	struct sstable_block_builder b;
	struct sstable_buf out = { 0 };
	struct sstable_block blk;
	struct sstable_block_iter it;
	size_t len;

	(void)state;
	sstable_block_builder_init(&b, 3);
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(sstable_block_builder_add(&b, keys[i], strlen(keys[i]), keys[i],
							   strlen(keys[i]), SSTABLE_VALUE), 0);
	assert_int_equal(sstable_block_builder_finish(&b, &out, &len), 0);
	assert_int_equal(sstable_block_open(&blk, out.data, len, true, NULL), 0);
	sstable_block_iter_init(&it);
	for (size_t i = 0; i < 8; i++) {
		assert_int_equal(sstable_block_iter_seek(&it, &blk, keys[i], strlen(keys[i])), 0);
		assert_true(it.valid);
		assert_int_equal(it.key_len, strlen(keys[i]));
		assert_memory_equal(it.key, keys[i], it.key_len);
		assert_int_equal(it.value_len, strlen(keys[i]));
	}
	assert_int_equal(sstable_block_iter_seek(&it, &blk, "aaaa", 4), 0);
	assert_memory_equal(it.key, "aab", 3);
	sstable_block_iter_destroy(&it);
	sstable_block_builder_destroy(&b);
	sstable_buf_free(&out);
}

/*
 * A value with a deadline is "value_len * 2 + 1" with value_len >= 8: the
 * encoding a tombstone with a value would have, which every earlier build
 * refuses. Its 1..7-byte form is refused as corrupt.
 */
static void test_deadline_kind(void **state)
{
	struct sstable_block_builder b;
	struct sstable_buf out = { 0 };
	struct sstable_block blk;
	struct sstable_block_iter it;
	size_t len;
	const uint8_t v[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 'x' };

	(void)state;
	sstable_block_builder_init(&b, 16);
	assert_int_equal(sstable_block_builder_add(&b, "k", 1, v, 9, SSTABLE_VALUE_DEADLINE), 0);
	assert_int_equal(sstable_block_builder_finish(&b, &out, &len), 0);
	sstable_block_builder_destroy(&b);
	/* shared 0, unshared 1, 9 * 2 + 1 = 19, 'k', the value */
	assert_int_equal(out.data[0], 0);
	assert_int_equal(out.data[1], 1);
	assert_int_equal(out.data[2], 19);
	assert_int_equal(out.data[3], 'k');
	assert_memory_equal(out.data + 4, v, 9);
	assert_int_equal(sstable_block_open(&blk, out.data, len, true, NULL), 0);
	sstable_block_iter_init(&it);
	assert_int_equal(sstable_block_iter_first(&it, &blk), 0);
	assert_true(it.valid);
	assert_int_equal(it.kind, SSTABLE_VALUE_DEADLINE);
	assert_int_equal(it.value_len, 9);
	/* 7 bytes, kind bit set: neither a tombstone nor a deadline (the CRC
	 * is not checked here, the entry is). */
	out.data[2] = 7 * 2 + 1;
	assert_int_equal(sstable_block_open(&blk, out.data, len, false, NULL), 0);
	assert_int_equal(sstable_block_iter_first(&it, &blk), RKV_ECORRUPT);
	sstable_block_iter_destroy(&it);
	sstable_buf_free(&out);
}

static void test_varint(void **state)
{
	static const uint64_t values[] = { 0, 1, 127, 128, 300, 16383, 16384, UINT32_MAX,
					   (uint64_t)1 << 63, UINT64_MAX };
	uint8_t buf[16];
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		size_t n = sstable_put_varint(buf, values[i]);

		assert_ptr_equal(sstable_get_varint(buf, buf + n, &v), buf + n);
		assert_true(v == values[i]);
		assert_null(sstable_get_varint(buf, buf + n - 1, &v));
	}
	memset(buf, 0xff, sizeof(buf));
	assert_null(sstable_get_varint(buf, buf + sizeof(buf), &v));
	memset(buf, 0x80, 9);
	buf[9] = 2; /* 64-bit overflow */
	assert_null(sstable_get_varint(buf, buf + 10, &v));
}

/* Iterates and seeks whatever the bytes hold; must only fail cleanly. */
static void exercise(const uint8_t *buf, size_t len, bool verify)
{
	struct sstable_block blk;
	struct sstable_block_iter it;
	int rv, steps = 0;

	if (sstable_block_open(&blk, buf, len, verify, NULL) != 0)
		return;
	sstable_block_iter_init(&it);
	rv = sstable_block_iter_first(&it, &blk);
	while (rv == 0 && it.valid && steps++ < 10000) {
		assert_true(it.value_len <= len);
		rv = sstable_block_iter_next(&it);
	}
	assert_true(rv == 0 || rv == RKV_ECORRUPT);
	rv = sstable_block_iter_seek(&it, &blk, "key000100", 9);
	assert_true(rv == 0 || rv == RKV_ECORRUPT);
	sstable_block_iter_destroy(&it);
}

static void test_damage(void **state)
{
	struct sstable_buf out = { 0 };
	struct sstable_block blk;
	const char *reason;
	size_t len;
	uint8_t *copy;

	(void)state;
	build(&out, 100, 16, &len);
	copy = malloc(len);
	assert_non_null(copy);
	for (size_t i = 0; i < len; i++) {
		memcpy(copy, out.data, len);
		copy[i] ^= 0x41;
		reason = NULL;
		assert_int_equal(sstable_block_open(&blk, copy, len, true, &reason), RKV_ECORRUPT);
		assert_non_null(reason);
		/* Without the CRC, structure checks still keep reads inside. */
		exercise(copy, len, false);
		/* And with a CRC made to match the damage. */
		sstable_put_u32(copy + len - 4, crc32c(0, copy, len - 4));
		exercise(copy, len, true);
	}
	for (size_t l = 0; l < len; l++)
		exercise(out.data, l, false);
	for (size_t l = 0; l < SSTABLE_BLOCK_TRAILER_SIZE; l++)
		assert_int_equal(sstable_block_open(&blk, out.data, l, false, NULL), RKV_ECORRUPT);
	free(copy);
	sstable_buf_free(&out);
}

static void test_random_bytes(void **state)
{
	uint8_t buf[256];

	(void)state;
	srand(7);
	for (int round = 0; round < 20000; round++) {
		size_t len = (size_t)rand() % sizeof(buf);
		unsigned nr = (unsigned)rand() % 4;

		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)(rand() % 3 == 0 ? rand() : rand() % 8);
		if (len >= 8 + 4 * nr) { /* plausible restart array */
			for (unsigned r = 0; r < nr; r++)
				sstable_put_u32(buf + len - 8 - 4 * (nr - r), r * 5);
			sstable_put_u32(buf + len - 8, nr);
		}
		exercise(buf, len, false);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_prefix_keys),
		cmocka_unit_test(test_varint),
		cmocka_unit_test(test_deadline_kind),
		cmocka_unit_test(test_damage),
		cmocka_unit_test(test_random_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
