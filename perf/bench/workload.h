/*
 * What a bench thread sends: a per-thread random stream (xoshiro256**), key
 * choice (uniform or Zipf over the keyspace), the GET/PUT mix, fixed-width
 * zero-padded keys and a value pool. Everything here is deterministic given
 * the seed, so two runs with the same --seed issue the same operations.
 */
#ifndef RINGKV_PERF_BENCH_WORKLOAD_H
#define RINGKV_PERF_BENCH_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "perf/bench/codec.h"

#define WORKLOAD_KEY_PREFIX "key:"
#define WORKLOAD_KEY_PREFIX_LEN 4

struct workload_rng {
	uint64_t s[4]; /* xoshiro256** state; never all zero */
};

/* Rejection-inversion Zipf sampler (Hörmann & Derflinger 1996), O(1) per
 * sample and no table, valid for any exponent > 0 including 1. */
struct workload_zipf {
	uint64_t n;               /* number of ranks, 1..n */
	double s;                 /* exponent */
	double h_integral_x1;     /* H(1.5) - 1 */
	double h_integral_n;      /* H(n + 0.5) */
	double squeeze;           /* acceptance shortcut threshold */
};

struct workload {
	struct workload_rng rng;
	uint64_t keys;            /* keyspace size */
	unsigned key_size;        /* bytes per key, prefix included */
	unsigned value_size;      /* bytes per PUT value */
	unsigned get_weight;      /* GET share of the mix */
	unsigned put_weight;      /* PUT share of the mix */
	int zipf;                 /* nonzero: key ranks follow zipf below */
	struct workload_zipf zipf_dist;
	char *value_pool;         /* value_size + WORKLOAD_POOL_SLACK random printable bytes */
};

/* Seed a generator; distinct streams come from distinct seeds. */
void workload_rng_seed(struct workload_rng *rng, uint64_t seed);
uint64_t workload_rng_next(struct workload_rng *rng);
/* Uniform double in [0, 1). */
double workload_rng_double(struct workload_rng *rng);

/* Prepare a Zipf distribution over ranks 1..n with exponent s > 0. */
void workload_zipf_init(struct workload_zipf *z, uint64_t n, double s);
/* One rank in 1..n; rank 1 is the most frequent. */
uint64_t workload_zipf_sample(const struct workload_zipf *z, struct workload_rng *rng);

/*
 * Set up a thread's workload. zipf_s <= 0 selects the uniform distribution.
 * Returns 0, -EINVAL when key_size cannot hold WORKLOAD_KEY_PREFIX plus the
 * digits of keys - 1, or -ENOMEM. Free with workload_destroy().
 */
int workload_init(struct workload *w, uint64_t seed, uint64_t keys, unsigned key_size,
		  unsigned value_size, unsigned get_weight, unsigned put_weight, double zipf_s);
void workload_destroy(struct workload *w);

/* The smallest --key-size that can hold keys distinct keys. */
unsigned workload_key_size_min(uint64_t keys);

/* Next operation according to the GET:PUT weights. */
enum bench_op workload_next_op(struct workload *w);
/* Next key index in 0..keys-1. */
uint64_t workload_next_key(struct workload *w);
/* Write key index as exactly key_size bytes ("key:000…0123") into out. */
void workload_format_key(const struct workload *w, uint64_t index, char *out);
/* A value_size-byte value; points into the pool, valid until destroy. */
const char *workload_next_value(struct workload *w);

#endif
