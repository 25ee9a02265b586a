/*
 * Latency histogram with bounded relative error, in the manner of
 * HdrHistogram: values below 2^HISTOGRAM_SUB_BITS get one bucket each; above
 * that, every power-of-two range [2^m, 2^(m+1)) is split into
 * 2^HISTOGRAM_SUB_BITS equal buckets. A bucket's width is therefore at most
 * 2^-HISTOGRAM_SUB_BITS of the values it holds, so any percentile read back
 * is within 1/128 (0.78%) of a value that was recorded.
 *
 * Concurrency: a histogram has one writer, its owning thread. The writer
 * updates counters with relaxed atomic stores (plain stores on x86, no lock
 * prefix) so another thread may merge a live histogram into its own copy at
 * any time with histogram_merge(): the copy is then a slightly stale but
 * never torn view. Merging after pthread_join() gives the exact result.
 */
#ifndef RINGKV_PERF_BENCH_HISTOGRAM_H
#define RINGKV_PERF_BENCH_HISTOGRAM_H

#include <stdint.h>

#define HISTOGRAM_SUB_BITS 7
#define HISTOGRAM_SUB_COUNT (1u << HISTOGRAM_SUB_BITS)
/* Values are clamped to below 2^HISTOGRAM_MAX_BITS (about 73 minutes in ns). */
#define HISTOGRAM_MAX_BITS 42
#define HISTOGRAM_BUCKETS ((HISTOGRAM_MAX_BITS - HISTOGRAM_SUB_BITS + 1) * HISTOGRAM_SUB_COUNT)
#define HISTOGRAM_MAX_VALUE ((UINT64_C(1) << HISTOGRAM_MAX_BITS) - 1)

struct histogram {
	uint64_t counts[HISTOGRAM_BUCKETS]; /* recorded values per bucket */
	uint64_t total;                     /* number of recorded values */
	uint64_t sum;                       /* sum of recorded values (clamped) */
	uint64_t min;                       /* smallest recorded value; UINT64_MAX when empty */
	uint64_t max;                       /* largest recorded value; 0 when empty */
};

/* Empty a histogram. Not safe while another thread merges it. */
void histogram_reset(struct histogram *h);

/* Record one value. Only the owning thread may call this. Values above
 * HISTOGRAM_MAX_VALUE are recorded as HISTOGRAM_MAX_VALUE. */
void histogram_record(struct histogram *h, uint64_t value);

/* Add every count of src to dst. src may be live (owned by another thread,
 * being recorded into); dst must be private to the caller. */
void histogram_merge(struct histogram *dst, const struct histogram *src);

/* The value at percentile (0..100) of the recorded values: the highest value
 * equivalent to the bucket holding that rank, capped at the recorded max.
 * Returns 0 for an empty histogram. */
uint64_t histogram_percentile(const struct histogram *h, double percentile);

/* Arithmetic mean of the recorded values; 0 when empty. */
double histogram_mean(const struct histogram *h);

/* The bucket index holding value (clamped to HISTOGRAM_MAX_VALUE). */
unsigned histogram_bucket_index(uint64_t value);

/* The smallest and largest value that land in bucket index. */
uint64_t histogram_bucket_lowest(unsigned index);
uint64_t histogram_bucket_highest(unsigned index);

#endif
