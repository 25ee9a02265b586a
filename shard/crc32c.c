/*
 * CRC32C in two implementations with one result: the SSE4.2 crc32 instruction
 * (8 bytes per step) and a slicing-by-8 table walk for CPUs without it. The
 * choice is made once, by a constructor that also fills the tables, so the
 * hot path is one indirect call with no lazy-initialisation race between
 * cores. Both work on the reflected polynomial 0x82F63B78 with the usual
 * pre- and post-inversion, so calls chain: crc32c(crc32c(0, a), b) is the CRC
 * of a followed by b.
 */
#include "shard/crc32c.h"

#include <assert.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define CRC32C_HAVE_X86 1
#else
#define CRC32C_HAVE_X86 0
#endif

#define CRC32C_POLY 0x82F63B78u

typedef uint32_t crc32c_fn(uint32_t crc, const void *data, size_t len);

static uint32_t table[8][256]; /* table[k][b]: b followed by k zero bytes */
static crc32c_fn *impl;

static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;

	assert(data != NULL || len == 0);
	assert(table[0][1] != 0); /* the constructor has run */
	crc = ~crc;
	while (len >= 8) {
		uint64_t v = load_le64(p) ^ crc;

		crc = table[7][v & 0xff] ^ table[6][(v >> 8) & 0xff] ^
		      table[5][(v >> 16) & 0xff] ^ table[4][(v >> 24) & 0xff] ^
		      table[3][(v >> 32) & 0xff] ^ table[2][(v >> 40) & 0xff] ^
		      table[1][(v >> 48) & 0xff] ^ table[0][v >> 56];
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if CRC32C_HAVE_X86
__attribute__((target("sse4.2")))
uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t c = ~crc;

	assert(data != NULL || len == 0);
	/* Unaligned 8-byte loads cost x86 nothing worth a byte-at-a-time
	 * prologue: most of what we check is short (a log record's 40-byte
	 * header, a 100-byte value) and starts anywhere, and the prologue and
	 * a byte-wise tail were most of such a call's instructions. */
	while (len >= 8) {
		c = _mm_crc32_u64(c, load_le64(p));
		p += 8;
		len -= 8;
	}
	if (len >= 4) {
		uint32_t v;

		memcpy(&v, p, sizeof v);
		c = _mm_crc32_u32((uint32_t)c, v);
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t v;

		memcpy(&v, p, sizeof v);
		c = _mm_crc32_u16((uint32_t)c, v);
		p += 2;
		len -= 2;
	}
	if (len > 0)
		c = _mm_crc32_u8((uint32_t)c, *p);
	return ~(uint32_t)c;
}

bool crc32c_hw_available(void)
{
	return __builtin_cpu_supports("sse4.2");
}
#else
uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len)
{
	return crc32c_sw(crc, data, len);
}

bool crc32c_hw_available(void)
{
	return false;
}
#endif

__attribute__((constructor)) static void crc32c_init(void)
{
	for (unsigned b = 0; b < 256; b++) {
		uint32_t c = b;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
		table[0][b] = c;
	}
	for (unsigned b = 0; b < 256; b++)
		for (int k = 1; k < 8; k++)
			table[k][b] = (table[k - 1][b] >> 8) ^
				      table[0][table[k - 1][b] & 0xff];
#if CRC32C_HAVE_X86
	__builtin_cpu_init();
#endif
	impl = crc32c_hw_available() ? crc32c_hw : crc32c_sw;
}

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
	/* Another constructor may run before ours; init is idempotent there. */
	if (__builtin_expect(impl == NULL, 0))
		crc32c_init();
	return impl(crc, data, len);
}
