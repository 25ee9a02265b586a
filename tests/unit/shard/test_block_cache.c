/*
 * Tests for shard/block_cache.c: the byte bound, LRU order, pinning (a pinned
 * block is never freed, its bytes still count), duplicate inserts, erasing a
 * file, stats, and a random workload checked against the invariants.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shard/block_cache.h"

#define BLOCK 1000

static size_t freed_count;

static void count_free(void *ctx, void *data, size_t len)
{
	(void)ctx;
	(void)len;
	freed_count++;
	free(data);
}

static struct block_cache *make(size_t blocks)
{
	struct block_cache_options opt = {
		.capacity = blocks * block_cache_charge(BLOCK),
		.free_fn = count_free,
	};
	struct block_cache *c;

	freed_count = 0;
	assert_int_equal(block_cache_create(&c, &opt), 0);
	return c;
}

/* A block whose bytes say which (file, offset) it is. */
static void *block(uint64_t file, uint64_t offset)
{
	uint8_t *p = malloc(BLOCK);

	assert_non_null(p);
	memset(p, (int)(file * 31 + offset), BLOCK);
	return p;
}

static void put(struct block_cache *c, uint64_t file, uint64_t offset)
{
	struct block_cache_handle *h;

	assert_int_equal(block_cache_insert(c, file, offset, block(file, offset), BLOCK, &h), 0);
	block_cache_release(c, h);
}

static bool cached(struct block_cache *c, uint64_t file, uint64_t offset)
{
	struct block_cache_handle *h = block_cache_lookup(c, file, offset);
	const uint8_t *data;
	size_t len;

	if (h == NULL)
		return false;
	data = block_cache_data(h, &len);
	assert_int_equal(len, BLOCK);
	assert_int_equal(data[0], (uint8_t)(file * 31 + offset));
	block_cache_release(c, h);
	return true;
}

static void test_capacity_and_lru(void **state)
{
	struct block_cache *c = make(3);
	struct block_cache_stats s;

	(void)state;
	put(c, 1, 0);
	put(c, 1, 4096);
	put(c, 2, 0);
	assert_true(cached(c, 1, 0)); /* now most recent: (1,4096) is oldest */
	put(c, 3, 0);
	assert_false(cached(c, 1, 4096));
	assert_true(cached(c, 1, 0));
	assert_true(cached(c, 2, 0));
	assert_true(cached(c, 3, 0));
	block_cache_get_stats(c, &s);
	assert_int_equal(s.entries, 3);
	assert_int_equal(s.usage, 3 * block_cache_charge(BLOCK));
	assert_int_equal(s.evictions, 1);
	assert_int_equal(s.inserts, 4);
	assert_int_equal(s.hits, 4);
	assert_int_equal(s.misses, 1);
	assert_int_equal(s.pinned, 0);
	assert_int_equal(freed_count, 1);
	for (uint64_t i = 0; i < 100; i++) {
		put(c, 9, i);
		block_cache_get_stats(c, &s);
		assert_true(s.usage <= 3 * block_cache_charge(BLOCK));
	}
	assert_true(cached(c, 9, 99));
	assert_false(cached(c, 9, 96));
	block_cache_destroy(c);
	assert_int_equal(freed_count, 104);
}

static void test_pinning(void **state)
{
	struct block_cache *c = make(2);
	struct block_cache_handle *a, *a2;
	struct block_cache_stats s;
	const uint8_t *data;
	size_t len;

	(void)state;
	assert_int_equal(block_cache_insert(c, 1, 0, block(1, 0), BLOCK, &a), 0);
	a2 = block_cache_lookup(c, 1, 0);
	assert_ptr_equal(a, a2);
	for (uint64_t i = 0; i < 10; i++)
		put(c, 2, i);
	/* Still there and intact although it is the least recently used. */
	data = block_cache_data(a, &len);
	assert_int_equal(data[BLOCK - 1], 31);
	block_cache_get_stats(c, &s);
	assert_int_equal(s.pinned, block_cache_charge(BLOCK));
	assert_int_equal(s.usage, 2 * block_cache_charge(BLOCK));
	block_cache_release(c, a2);
	assert_true(cached(c, 1, 0));
	/* Pin more than the capacity: usage exceeds it while pinned. */
	struct block_cache_handle *h[4];
	for (uint64_t i = 0; i < 4; i++)
		assert_int_equal(block_cache_insert(c, 3, i, block(3, i), BLOCK, &h[i]), 0);
	block_cache_get_stats(c, &s);
	assert_int_equal(s.usage, 5 * block_cache_charge(BLOCK));
	assert_int_equal(s.entries, 5);
	for (int i = 0; i < 4; i++)
		block_cache_release(c, h[i]);
	block_cache_release(c, a);
	block_cache_get_stats(c, &s);
	assert_int_equal(s.usage, 2 * block_cache_charge(BLOCK));
	assert_int_equal(s.pinned, 0);
	/* The last two released are the most recent. */
	assert_true(cached(c, 1, 0));
	assert_true(cached(c, 3, 3));
	block_cache_destroy(c);
}

static void test_duplicate_insert(void **state)
{
	struct block_cache *c = make(4);
	struct block_cache_handle *a, *b;
	struct block_cache_stats s;

	(void)state;
	assert_int_equal(block_cache_insert(c, 5, 0, block(5, 0), BLOCK, &a), 0);
	assert_int_equal(block_cache_insert(c, 5, 0, block(5, 0), BLOCK, &b), 0);
	assert_ptr_equal(a, b);
	assert_int_equal(freed_count, 1); /* the second copy */
	block_cache_get_stats(c, &s);
	assert_int_equal(s.entries, 1);
	block_cache_release(c, a);
	block_cache_release(c, b);
	block_cache_destroy(c);
	assert_int_equal(freed_count, 2);
}

static void test_erase_file(void **state)
{
	struct block_cache *c = make(100);
	struct block_cache_handle *pinned;
	struct block_cache_stats s;
	const uint8_t *data;
	size_t len;

	(void)state;
	for (uint64_t i = 0; i < 10; i++) {
		put(c, 7, i);
		put(c, 8, i);
	}
	pinned = block_cache_lookup(c, 7, 3);
	assert_non_null(pinned);
	block_cache_erase_file(c, 7);
	assert_int_equal(freed_count, 9);
	for (uint64_t i = 0; i < 10; i++) {
		assert_false(cached(c, 7, i));
		assert_true(cached(c, 8, i));
	}
	data = block_cache_data(pinned, &len);
	assert_int_equal(data[0], (uint8_t)(7 * 31 + 3));
	block_cache_get_stats(c, &s);
	assert_int_equal(s.entries, 10);
	assert_int_equal(s.usage, 11 * block_cache_charge(BLOCK));
	block_cache_release(c, pinned);
	assert_int_equal(freed_count, 10);
	block_cache_get_stats(c, &s);
	assert_int_equal(s.usage, 10 * block_cache_charge(BLOCK));
	block_cache_destroy(c);
}

/* Random inserts, lookups, pins and releases; the bound and pins hold. */
static void test_random(void **state)
{
	enum { CAP = 50, KEYS = 400, PINS = 20 };
	struct block_cache *c = make(CAP);
	struct block_cache_handle *pins[PINS] = { 0 };
	uint64_t pin_key[PINS];
	struct block_cache_stats s;

	(void)state;
	srand(3);
	for (int step = 0; step < 100000; step++) {
		uint64_t key = (uint64_t)rand() % KEYS;
		int slot = rand() % PINS;
		struct block_cache_handle *h = block_cache_lookup(c, key / 8, key % 8);
		size_t npinned = 0;

		if (h == NULL)
			assert_int_equal(block_cache_insert(c, key / 8, key % 8,
							    block(key / 8, key % 8), BLOCK, &h), 0);
		if (pins[slot] != NULL)
			block_cache_release(c, pins[slot]);
		pins[slot] = h;
		pin_key[slot] = key;
		for (int i = 0; i < PINS; i++) {
			if (pins[i] != NULL) {
				size_t len;
				const uint8_t *d = block_cache_data(pins[i], &len);

				assert_int_equal(d[7], (uint8_t)((pin_key[i] / 8) * 31 + pin_key[i] % 8));
				npinned++;
			}
		}
		block_cache_get_stats(c, &s);
		/* Over capacity only when nothing unpinned is left to evict. */
		assert_true(s.usage <= CAP * block_cache_charge(BLOCK) || s.usage == s.pinned);
		assert_true(s.pinned <= npinned * block_cache_charge(BLOCK));
		assert_true(s.pinned <= s.usage);
	}
	for (int i = 0; i < PINS; i++)
		if (pins[i] != NULL)
			block_cache_release(c, pins[i]);
	block_cache_get_stats(c, &s);
	assert_true(s.usage <= CAP * block_cache_charge(BLOCK));
	assert_int_equal(s.hits + s.misses, 100000);
	assert_int_equal(s.inserts, s.misses);
	block_cache_destroy(c);
	assert_int_equal(freed_count, s.inserts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capacity_and_lru),
		cmocka_unit_test(test_pinning),
		cmocka_unit_test(test_duplicate_insert),
		cmocka_unit_test(test_erase_file),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
