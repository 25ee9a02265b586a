/*
 * Tests for shard/bloom.c: no false negatives, the false positive rate at 10
 * bits per key, header validation of untrusted filters.
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
#include "shard/bloom.h"

#define NKEYS 100000

static size_t make_key(char *buf, size_t i, const char *prefix)
{
	return (size_t)snprintf(buf, 64, "%s%08zu", prefix, i);
}

static void test_probes(void **state)
{
	(void)state;
	assert_int_equal(bloom_probes(10), 7);
	assert_int_equal(bloom_probes(1), 1);
	assert_int_equal(bloom_probes(0), 1);
	assert_int_equal(bloom_probes(100), BLOOM_MAX_PROBES);
}

static void test_fp_rate(void **state)
{
	uint64_t *hashes = malloc(NKEYS * sizeof(*hashes));
	size_t size = bloom_encoded_size(NKEYS, 10);
	uint8_t *filter = malloc(size);
	struct bloom_view v;
	char key[64];
	size_t fp = 0;

	(void)state;
	assert_non_null(hashes);
	assert_non_null(filter);
	for (size_t i = 0; i < NKEYS; i++)
		hashes[i] = bloom_hash(key, make_key(key, i, "user"));
	assert_int_equal(bloom_build(hashes, NKEYS, 10, filter), size);
	assert_int_equal(size, BLOOM_HEADER_SIZE + NKEYS * 10 / 8);
	assert_int_equal(bloom_view_init(&v, filter, size, NULL), 0);
	for (size_t i = 0; i < NKEYS; i++)
		assert_true(bloom_view_may_contain(&v, bloom_hash(key, make_key(key, i, "user"))));
	for (size_t i = 0; i < NKEYS; i++)
		fp += bloom_view_may_contain(&v, bloom_hash(key, make_key(key, i, "absent")));
	print_message("false positives: %zu of %d (%.3f%%)\n", fp, NKEYS, 100.0 * (double)fp / NKEYS);
	assert_true(fp < NKEYS / 50);
	free(filter);
	free(hashes);
}

static void test_small_and_empty(void **state)
{
	uint8_t filter[64];
	uint64_t h = bloom_hash("a", 1);
	struct bloom_view v;

	(void)state;
	assert_true(bloom_encoded_size(0, 10) <= sizeof(filter));
	bloom_build(NULL, 0, 10, filter);
	assert_int_equal(bloom_view_init(&v, filter, bloom_encoded_size(0, 10), NULL), 0);
	assert_false(bloom_view_may_contain(&v, h));
	bloom_build(&h, 1, 10, filter);
	assert_int_equal(bloom_view_init(&v, filter, bloom_encoded_size(1, 10), NULL), 0);
	assert_true(bloom_view_may_contain(&v, h));
}

static void test_corrupt_header(void **state)
{
	uint64_t h = bloom_hash("k", 1);
	size_t size = bloom_encoded_size(1, 10);
	uint8_t good[64], bad[64];
	struct bloom_view v;
	const char *reason = NULL;

	(void)state;
	bloom_build(&h, 1, 10, good);
	for (size_t len = 0; len < size; len++)
		assert_int_equal(bloom_view_init(&v, good, len, &reason), RKV_ECORRUPT);
	memcpy(bad, good, size);
	bad[0] = 2;
	assert_int_equal(bloom_view_init(&v, bad, size, &reason), RKV_ECORRUPT);
	assert_non_null(reason);
	memcpy(bad, good, size);
	bad[1] = 0;
	assert_int_equal(bloom_view_init(&v, bad, size, NULL), RKV_ECORRUPT);
	bad[1] = BLOOM_MAX_PROBES + 1;
	assert_int_equal(bloom_view_init(&v, bad, size, NULL), RKV_ECORRUPT);
	memcpy(bad, good, size);
	bad[2] = 1;
	assert_int_equal(bloom_view_init(&v, bad, size, NULL), RKV_ECORRUPT);
	memcpy(bad, good, size);
	bad[4] = (uint8_t)(bad[4] + 8); /* nbits larger than the bytes present */
	assert_int_equal(bloom_view_init(&v, bad, size, NULL), RKV_ECORRUPT);
	memcpy(bad, good, size);
	bad[4] = (uint8_t)(bad[4] + 1); /* not a multiple of 8 */
	assert_int_equal(bloom_view_init(&v, bad, size, NULL), RKV_ECORRUPT);
	memcpy(bad, good, size);
	bad[7] = 0x80; /* huge */
	assert_int_equal(bloom_view_init(&v, bad, size, NULL), RKV_ECORRUPT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probes),
		cmocka_unit_test(test_fp_rate),
		cmocka_unit_test(test_small_and_empty),
		cmocka_unit_test(test_corrupt_header),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
