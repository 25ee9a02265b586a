/*
 * Bloom filter build and query; the format is in bloom.h. The invariant the
 * query relies on: bloom_view_init() accepted the header, so nbits matches the
 * bytes present and every probe position (< nbits) is inside the array.
 */
#include "shard/bloom.h"

#include <assert.h>
#include <string.h>
#include <xxhash.h>

#include "core/errors.h"

#define BLOOM_VERSION 1
#define BLOOM_MIN_BITS 64

uint64_t bloom_hash(const void *key, size_t key_len)
{
	assert(key != NULL || key_len == 0);
	return XXH3_64bits_withSeed(key, key_len, BLOOM_HASH_SEED);
}

unsigned bloom_probes(unsigned bits_per_key)
{
	/* bits_per_key * ln 2, rounded: 0.69 * 10 = 6.9 -> 7. */
	unsigned k = (bits_per_key * 69u + 50u) / 100u;

	if (k < 1)
		k = 1;
	if (k > BLOOM_MAX_PROBES)
		k = BLOOM_MAX_PROBES;
	return k;
}

static uint32_t filter_bits(size_t nkeys, unsigned bits_per_key)
{
	uint64_t bits;

	if (nkeys > BLOOM_MAX_BITS / bits_per_key)
		bits = BLOOM_MAX_BITS;
	else
		bits = (uint64_t)nkeys * bits_per_key;
	if (bits < BLOOM_MIN_BITS)
		bits = BLOOM_MIN_BITS;
	return (uint32_t)((bits + 7) & ~(uint64_t)7);
}

size_t bloom_encoded_size(size_t nkeys, unsigned bits_per_key)
{
	assert(bits_per_key >= 1);
	return BLOOM_HEADER_SIZE + filter_bits(nkeys, bits_per_key) / 8;
}

/* Position of probe i: multiply-shift maps the 32-bit hash onto [0, nbits). */
static inline uint32_t probe_pos(uint32_t h, uint32_t nbits)
{
	return (uint32_t)(((uint64_t)h * nbits) >> 32);
}

size_t bloom_build(const uint64_t *hashes, size_t n, unsigned bits_per_key, uint8_t *out)
{
	uint32_t nbits = filter_bits(n, bits_per_key);
	unsigned k = bloom_probes(bits_per_key);
	uint8_t *bits = out + BLOOM_HEADER_SIZE;

	assert(out != NULL && (hashes != NULL || n == 0));
	out[0] = BLOOM_VERSION;
	out[1] = (uint8_t)k;
	out[2] = 0;
	out[3] = 0;
	for (int i = 0; i < 4; i++)
		out[4 + i] = (uint8_t)(nbits >> (8 * i));
	memset(bits, 0, nbits / 8);
	for (size_t i = 0; i < n; i++) {
		uint32_t h = (uint32_t)hashes[i];
		uint32_t delta = (uint32_t)(hashes[i] >> 32) | 1u;

		for (unsigned j = 0; j < k; j++) {
			uint32_t pos = probe_pos(h, nbits);

			bits[pos >> 3] |= (uint8_t)(1u << (pos & 7));
			h += delta;
		}
	}
	return BLOOM_HEADER_SIZE + nbits / 8;
}

static int corrupt(const char **reason, const char *why)
{
	if (reason != NULL)
		*reason = why;
	return RKV_ECORRUPT;
}

int bloom_view_init(struct bloom_view *v, const uint8_t *buf, size_t len, const char **reason)
{
	uint32_t nbits;

	assert(v != NULL && (buf != NULL || len == 0));
	if (len < BLOOM_HEADER_SIZE + BLOOM_MIN_BITS / 8)
		return corrupt(reason, "bloom filter too short");
	if (buf[0] != BLOOM_VERSION)
		return corrupt(reason, "bloom filter version unknown");
	if (buf[1] < 1 || buf[1] > BLOOM_MAX_PROBES)
		return corrupt(reason, "bloom filter probe count out of range");
	if (buf[2] != 0 || buf[3] != 0)
		return corrupt(reason, "bloom filter reserved bytes not zero");
	nbits = (uint32_t)buf[4] | (uint32_t)buf[5] << 8 | (uint32_t)buf[6] << 16 |
		(uint32_t)buf[7] << 24;
	if (nbits % 8 != 0 || nbits < BLOOM_MIN_BITS || nbits / 8 != len - BLOOM_HEADER_SIZE)
		return corrupt(reason, "bloom filter size does not match its header");
	v->bits = buf + BLOOM_HEADER_SIZE;
	v->nbits = nbits;
	v->probes = buf[1];
	return 0;
}

bool bloom_view_may_contain(const struct bloom_view *v, uint64_t hash)
{
	uint32_t h = (uint32_t)hash;
	uint32_t delta = (uint32_t)(hash >> 32) | 1u;

	assert(v != NULL && v->bits != NULL);
	for (unsigned j = 0; j < v->probes; j++) {
		uint32_t pos = probe_pos(h, v->nbits);

		if ((v->bits[pos >> 3] & (1u << (pos & 7))) == 0)
			return false;
		h += delta;
	}
	return true;
}
