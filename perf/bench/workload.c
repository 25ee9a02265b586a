/*
 * Workload generation for ringkv-bench (see workload.h). The Zipf sampler is
 * the rejection-inversion method of Hörmann and Derflinger, as used by Apache
 * Commons RNG: it needs neither the O(n) zeta sum that the YCSB generator
 * precomputes nor special casing of the exponent 1.
 */
#include "perf/bench/workload.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WORKLOAD_POOL_SLACK 4096

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void workload_rng_seed(struct workload_rng *rng, uint64_t seed)
{
	int i;

	for (i = 0; i < 4; i++)
		rng->s[i] = splitmix64(&seed);
}

uint64_t workload_rng_next(struct workload_rng *rng)
{
	uint64_t *s = rng->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double workload_rng_double(struct workload_rng *rng)
{
	return (double)(workload_rng_next(rng) >> 11) * 0x1.0p-53;
}

/* log1p(x)/x, accurate near 0. */
static double helper1(double x)
{
	if (fabs(x) > 1e-8)
		return log1p(x) / x;
	return 1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x));
}

/* expm1(x)/x, accurate near 0. */
static double helper2(double x)
{
	if (fabs(x) > 1e-8)
		return expm1(x) / x;
	return 1 + x * 0.5 * (1 + x / 3 * (1 + 0.25 * x));
}

/* h(x) = x^-s, the unnormalised density. */
static double zipf_h(double s, double x)
{
	return exp(-s * log(x));
}

/* H(x), an integral of h. */
static double zipf_h_integral(double s, double x)
{
	double log_x = log(x);

	return helper2((1 - s) * log_x) * log_x;
}

static double zipf_h_integral_inverse(double s, double x)
{
	double t = x * (1 - s);

	if (t < -1)
		t = -1; /* guard against rounding just below the domain */
	return exp(helper1(t) * x);
}

void workload_zipf_init(struct workload_zipf *z, uint64_t n, double s)
{
	z->n = n;
	z->s = s;
	z->h_integral_x1 = zipf_h_integral(s, 1.5) - 1;
	z->h_integral_n = zipf_h_integral(s, (double)n + 0.5);
	z->squeeze = 2 - zipf_h_integral_inverse(s, zipf_h_integral(s, 2.5) - zipf_h(s, 2));
}

uint64_t workload_zipf_sample(const struct workload_zipf *z, struct workload_rng *rng)
{
	for (;;) {
		double u = z->h_integral_n +
			   workload_rng_double(rng) * (z->h_integral_x1 - z->h_integral_n);
		double x = zipf_h_integral_inverse(z->s, u);
		double k = floor(x + 0.5);

		if (k < 1)
			k = 1;
		else if (k > (double)z->n)
			k = (double)z->n;
		if (k - x <= z->squeeze ||
		    u >= zipf_h_integral(z->s, k + 0.5) - zipf_h(z->s, k))
			return (uint64_t)k;
	}
}

unsigned workload_key_size_min(uint64_t keys)
{
	unsigned digits = 1;
	uint64_t largest = keys > 0 ? keys - 1 : 0;

	while (largest >= 10) {
		largest /= 10;
		digits++;
	}
	return WORKLOAD_KEY_PREFIX_LEN + digits;
}

int workload_init(struct workload *w, uint64_t seed, uint64_t keys, unsigned key_size,
		  unsigned value_size, unsigned get_weight, unsigned put_weight, double zipf_s)
{
	static const char alphabet[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	size_t i, pool = (size_t)value_size + WORKLOAD_POOL_SLACK;

	memset(w, 0, sizeof(*w));
	if (keys == 0 || key_size < workload_key_size_min(keys) || get_weight + put_weight == 0)
		return -EINVAL;
	workload_rng_seed(&w->rng, seed);
	w->keys = keys;
	w->key_size = key_size;
	w->value_size = value_size;
	w->get_weight = get_weight;
	w->put_weight = put_weight;
	if (zipf_s > 0) {
		w->zipf = 1;
		workload_zipf_init(&w->zipf_dist, keys, zipf_s);
	}
	w->value_pool = malloc(pool);
	if (w->value_pool == NULL)
		return -ENOMEM;
	for (i = 0; i < pool; i++)
		w->value_pool[i] = alphabet[workload_rng_next(&w->rng) % (sizeof(alphabet) - 1)];
	return 0;
}

void workload_destroy(struct workload *w)
{
	free(w->value_pool);
	w->value_pool = NULL;
}

enum bench_op workload_next_op(struct workload *w)
{
	uint64_t r = workload_rng_next(&w->rng) % (w->get_weight + w->put_weight);

	return r < w->get_weight ? BENCH_OP_GET : BENCH_OP_PUT;
}

uint64_t workload_next_key(struct workload *w)
{
	if (w->zipf)
		return workload_zipf_sample(&w->zipf_dist, &w->rng) - 1;
	return workload_rng_next(&w->rng) % w->keys;
}

void workload_format_key(const struct workload *w, uint64_t index, char *out)
{
	unsigned i = w->key_size;

	while (i > WORKLOAD_KEY_PREFIX_LEN) {
		out[--i] = (char)('0' + index % 10);
		index /= 10;
	}
	memcpy(out, WORKLOAD_KEY_PREFIX, WORKLOAD_KEY_PREFIX_LEN);
}

const char *workload_next_value(struct workload *w)
{
	return w->value_pool + workload_rng_next(&w->rng) % WORKLOAD_POOL_SLACK;
}
