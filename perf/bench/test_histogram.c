/*
 * Unit tests for histogram.c: bucket boundaries are contiguous, percentiles
 * stay within the promised relative error, and merging equals recording
 * everything into one histogram.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "perf/bench/histogram.h"

static struct histogram *histogram_new(void)
{
	struct histogram *h = malloc(sizeof(*h));

	assert_non_null(h);
	histogram_reset(h);
	return h;
}

static void test_buckets_are_contiguous(void **state)
{
	unsigned i;

	assert_int_equal(histogram_bucket_lowest(0), 0);
	for (i = 1; i < HISTOGRAM_BUCKETS; i++) {
		assert_true(histogram_bucket_lowest(i) == histogram_bucket_highest(i - 1) + 1);
		assert_int_equal(histogram_bucket_index(histogram_bucket_lowest(i)), i);
		assert_int_equal(histogram_bucket_index(histogram_bucket_highest(i)), i);
	}
	assert_true(histogram_bucket_highest(HISTOGRAM_BUCKETS - 1) == HISTOGRAM_MAX_VALUE);
	assert_int_equal(histogram_bucket_index(UINT64_MAX), HISTOGRAM_BUCKETS - 1);
}

static void test_bucket_width_bounds_relative_error(void **state)
{
	unsigned i;

	for (i = HISTOGRAM_SUB_COUNT; i < HISTOGRAM_BUCKETS; i++) {
		uint64_t lo = histogram_bucket_lowest(i);
		uint64_t width = histogram_bucket_highest(i) - lo + 1;

		assert_true(width * HISTOGRAM_SUB_COUNT <= lo);
	}
}

static void test_empty(void **state)
{
	struct histogram *h = histogram_new();

	assert_true(histogram_percentile(h, 99) == 0);
	assert_true(histogram_mean(h) == 0);
	free(h);
}

static void test_exact_small_values(void **state)
{
	struct histogram *h = histogram_new();
	uint64_t v;

	for (v = 1; v <= 100; v++)
		histogram_record(h, v);
	assert_true(h->total == 100);
	assert_true(histogram_percentile(h, 50) == 50);
	assert_true(histogram_percentile(h, 99) == 99);
	assert_true(histogram_percentile(h, 100) == 100);
	assert_true(histogram_percentile(h, 0) == 1);
	assert_true(histogram_mean(h) == 50.5);
	free(h);
}

static void test_percentiles_within_error(void **state)
{
	struct histogram *h = histogram_new();
	static const double pcts[] = { 10, 50, 90, 99, 99.9 };
	uint64_t v;
	unsigned i;

	/* 1..1e6 microseconds-in-ns, a wide range across many magnitudes. */
	for (v = 1; v <= 1000000; v++)
		histogram_record(h, v * 1000);
	for (i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
		double exact = pcts[i] / 100.0 * 1e6 * 1000;
		double got = (double)histogram_percentile(h, pcts[i]);

		assert_true(got >= exact * (1 - 1.0 / HISTOGRAM_SUB_COUNT));
		assert_true(got <= exact * (1 + 1.0 / HISTOGRAM_SUB_COUNT));
	}
	assert_true(histogram_percentile(h, 100) == 1000000000);
	assert_true(h->min == 1000);
	free(h);
}

static void test_merge_equals_single(void **state)
{
	struct histogram *a = histogram_new(), *b = histogram_new();
	struct histogram *all = histogram_new(), *merged = histogram_new();
	uint64_t v, seed = 42;
	unsigned i;

	for (i = 0; i < 100000; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		v = (seed >> 33) % 50000000;
		histogram_record(i % 3 ? a : b, v);
		histogram_record(all, v);
	}
	histogram_merge(merged, a);
	histogram_merge(merged, b);
	assert_true(merged->total == all->total);
	assert_true(merged->sum == all->sum);
	assert_true(merged->min == all->min);
	assert_true(merged->max == all->max);
	assert_memory_equal(merged->counts, all->counts, sizeof(all->counts));
	assert_true(histogram_percentile(merged, 99.9) == histogram_percentile(all, 99.9));
	free(a);
	free(b);
	free(all);
	free(merged);
}

static void test_clamps_huge_values(void **state)
{
	struct histogram *h = histogram_new();

	histogram_record(h, UINT64_MAX);
	assert_true(h->max == HISTOGRAM_MAX_VALUE);
	assert_true(histogram_percentile(h, 50) == HISTOGRAM_MAX_VALUE);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets_are_contiguous),
		cmocka_unit_test(test_bucket_width_bounds_relative_error),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_exact_small_values),
		cmocka_unit_test(test_percentiles_within_error),
		cmocka_unit_test(test_merge_equals_single),
		cmocka_unit_test(test_clamps_huge_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
