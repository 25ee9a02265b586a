/*
 * CRC32C (Castagnoli), the checksum of WAL records and SSTable blocks. Uses
 * the SSE4.2 crc32 instruction when the CPU has it, a table otherwise; both
 * give the same result.
 */
#ifndef RINGKV_SHARD_CRC32C_H
#define RINGKV_SHARD_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Extends `crc` (0 to start) over `len` bytes. crc32c(0, "123456789", 9) is
 * 0xE3069283.
 */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

/*
 * The two implementations behind crc32c(), exposed so tests can check that
 * they agree. crc32c_hw() may only be called when crc32c_hw_available().
 */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len);
uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len);
bool crc32c_hw_available(void);

#endif
