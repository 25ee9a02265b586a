/*
 * Bloom filter over key hashes, for the SSTable's "may this table hold the
 * key?" check before any block is read. Building and querying are pure: the
 * builder writes into a caller buffer, the query reads an encoded filter the
 * caller loaded (and checked with bloom_view_init, since it came from disk).
 *
 * Hashing: one 64-bit XXH3 per key, seeded with BLOOM_HASH_SEED. The seed
 * matters: keys of one shard share the low bits of their unseeded XXH3 (the
 * slot is XXH3 mod 16384), which would crowd a filter probed with those bits.
 * The k probes come from double hashing of the two 32-bit halves (Kirsch and
 * Mitzenmacher), each reduced to a bit position by multiply-shift (no
 * division).
 *
 * Encoded filter, little-endian:
 *   u8  version (1)
 *   u8  k, probes per key, 1..BLOOM_MAX_PROBES
 *   u16 reserved, 0
 *   u32 nbits, a multiple of 8, >= 64
 *   nbits / 8 bytes of bit array (bit i is byte i / 8, mask 1 << (i % 8))
 */
#ifndef RINGKV_SHARD_BLOOM_H
#define RINGKV_SHARD_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLOOM_HEADER_SIZE 8
#define BLOOM_MAX_PROBES 30
#define BLOOM_DEFAULT_BITS_PER_KEY 10
#define BLOOM_HASH_SEED 0x5bd1e9955bd1e995ull
/* The bit array stays addressable by 32-bit probe positions. */
#define BLOOM_MAX_BITS (UINT32_MAX - 7u)

/* The hash a key is inserted and queried with. */
uint64_t bloom_hash(const void *key, size_t key_len);

/* Probes per key for `bits_per_key` (about bits_per_key * ln 2, 1..30). */
unsigned bloom_probes(unsigned bits_per_key);

/*
 * Bytes bloom_build() writes for `nkeys` keys at `bits_per_key` (>= 1). The
 * array is capped at BLOOM_MAX_BITS, which raises the false positive rate of
 * absurdly large tables rather than failing.
 */
size_t bloom_encoded_size(size_t nkeys, unsigned bits_per_key);

/*
 * Encodes a filter holding `hashes[0..n)` (bloom_hash values) into `out`,
 * which must have bloom_encoded_size(n, bits_per_key) bytes. Returns the
 * bytes written. Duplicate hashes are harmless.
 */
size_t bloom_build(const uint64_t *hashes, size_t n, unsigned bits_per_key, uint8_t *out);

/* A checked, borrowed view of an encoded filter. */
struct bloom_view {
	const uint8_t *bits; /* bit array, borrowed from the encoded filter */
	uint32_t nbits;      /* bits in the array, multiple of 8 */
	unsigned probes;     /* k */
};

/*
 * Checks the header of an encoded filter of `len` bytes (untrusted) and fills
 * `v`. 0, or RKV_ECORRUPT with *reason (static text) set when `reason` is not
 * NULL: bad version, k out of range, reserved bits set, or a size that does
 * not match `len`.
 */
int bloom_view_init(struct bloom_view *v, const uint8_t *buf, size_t len, const char **reason);

/* false: the key with this hash was certainly not inserted. */
bool bloom_view_may_contain(const struct bloom_view *v, uint64_t hash);

#endif
