/*
 * Log-linear latency histogram (see histogram.h). Bucket index of a value v
 * at or above 2^SUB_BITS, with m = floor(log2 v) and shift = m - SUB_BITS:
 *     index = shift * SUB_COUNT + (v >> shift)
 * where v >> shift lies in [SUB_COUNT, 2 * SUB_COUNT). Below 2^SUB_BITS the
 * index is v itself, and the two formulas meet at v = SUB_COUNT.
 */
#include "perf/bench/histogram.h"

#include <assert.h>
#include <string.h>

/* Single-writer counter update that a concurrent reader may load. */
#define OWNER_ADD(field, delta)                                              \
	__atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (delta), \
			 __ATOMIC_RELAXED)
#define LOAD(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

void histogram_reset(struct histogram *h)
{
	memset(h->counts, 0, sizeof(h->counts));
	h->total = 0;
	h->sum = 0;
	h->min = UINT64_MAX;
	h->max = 0;
}

unsigned histogram_bucket_index(uint64_t value)
{
	unsigned magnitude, shift;

	if (value > HISTOGRAM_MAX_VALUE)
		value = HISTOGRAM_MAX_VALUE;
	if (value < HISTOGRAM_SUB_COUNT)
		return (unsigned)value;
	magnitude = 63u - (unsigned)__builtin_clzll(value);
	shift = magnitude - HISTOGRAM_SUB_BITS;
	return shift * HISTOGRAM_SUB_COUNT + (unsigned)(value >> shift);
}

uint64_t histogram_bucket_lowest(unsigned index)
{
	unsigned shift;

	assert(index < HISTOGRAM_BUCKETS);
	if (index < 2 * HISTOGRAM_SUB_COUNT)
		return index;
	shift = index / HISTOGRAM_SUB_COUNT - 1;
	return (uint64_t)(index - shift * HISTOGRAM_SUB_COUNT) << shift;
}

uint64_t histogram_bucket_highest(unsigned index)
{
	unsigned shift;

	assert(index < HISTOGRAM_BUCKETS);
	if (index < 2 * HISTOGRAM_SUB_COUNT)
		return index;
	shift = index / HISTOGRAM_SUB_COUNT - 1;
	return histogram_bucket_lowest(index) + (UINT64_C(1) << shift) - 1;
}

void histogram_record(struct histogram *h, uint64_t value)
{
	if (value > HISTOGRAM_MAX_VALUE)
		value = HISTOGRAM_MAX_VALUE;
	OWNER_ADD(h->counts[histogram_bucket_index(value)], 1);
	OWNER_ADD(h->total, 1);
	OWNER_ADD(h->sum, value);
	if (value < h->min)
		__atomic_store_n(&h->min, value, __ATOMIC_RELAXED);
	if (value > h->max)
		__atomic_store_n(&h->max, value, __ATOMIC_RELAXED);
}

void histogram_merge(struct histogram *dst, const struct histogram *src)
{
	uint64_t total = 0, min, max;
	unsigned i;

	/* The total is recounted from the buckets so that a live merge is
	 * self-consistent even if src->total ran ahead of its buckets. */
	for (i = 0; i < HISTOGRAM_BUCKETS; i++) {
		uint64_t n = LOAD(src->counts[i]);

		dst->counts[i] += n;
		total += n;
	}
	dst->total += total;
	dst->sum += LOAD(src->sum);
	min = LOAD(src->min);
	max = LOAD(src->max);
	if (total > 0 && min < dst->min)
		dst->min = min;
	if (max > dst->max)
		dst->max = max;
}

uint64_t histogram_percentile(const struct histogram *h, double percentile)
{
	uint64_t rank, seen = 0, value;
	unsigned i;

	if (h->total == 0)
		return 0;
	if (percentile < 0)
		percentile = 0;
	if (percentile > 100)
		percentile = 100;
	/* The rank of the smallest value with at least percentile% of values
	 * at or below it; rank 1 is the minimum. */
	rank = (uint64_t)(percentile / 100.0 * (double)h->total + 0.5);
	if (rank < 1)
		rank = 1;
	if (rank > h->total)
		rank = h->total;
	for (i = 0; i < HISTOGRAM_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank)
			break;
	}
	if (i == HISTOGRAM_BUCKETS)
		return h->max;
	value = histogram_bucket_highest(i);
	if (value > h->max)
		value = h->max;
	if (value < h->min)
		value = h->min;
	return value;
}

double histogram_mean(const struct histogram *h)
{
	if (h->total == 0)
		return 0;
	return (double)h->sum / (double)h->total;
}
