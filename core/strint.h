/*
 * Strict decimal integers, the way Redis' string2ll reads them: an optional
 * '-' (signed only) then digits, no leading zeros (except "0" itself), no '+',
 * no spaces, no "-0", nothing empty, nothing out of range. One implementation
 * for protocol arguments (proto/resp.c) and for stored values that INCRBY
 * reads (shard/shard.c), so both agree on what an integer is.
 */
#ifndef RINGKV_CORE_STRINT_H
#define RINGKV_CORE_STRINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 0 with *value set, or RKV_EINVAL. */
int strint_parse_i64(const void *text, size_t len, int64_t *value);
int strint_parse_u64(const void *text, size_t len, uint64_t *value);

/*
 * The common case of a length line ("3\r\n", "100\r\n": RESP's "*N" and
 * "$N" after their type byte), inline for the request parser: 1 to 4 digits,
 * no leading zero ("0" alone allowed), then CR LF, all within
 * text[0, avail). True with *value and *line_len (the digits and the CR LF);
 * false for anything else (a sign, a fifth digit, a bad or missing CR LF, a
 * line not all there yet), which the caller hands to its general path
 * (strint_parse_i64): what this accepts, that accepts with the same value.
 */
static inline bool strint_parse_short_line(const uint8_t *text, size_t avail,
					   uint32_t *value, size_t *line_len)
{
	uint32_t number;
	size_t digits = 1;

	if (avail < 3 || (unsigned)(text[0] - '0') > 9)
		return false;
	number = (uint32_t)(text[0] - '0');
	while (digits < avail && digits < 5 && (unsigned)(text[digits] - '0') <= 9)
		number = number * 10 + (uint32_t)(text[digits++] - '0');
	if (digits > 4 || digits + 2 > avail || text[digits] != '\r' ||
	    text[digits + 1] != '\n' || (text[0] == '0' && digits > 1))
		return false;
	*value = number;
	*line_len = digits + 2;
	return true;
}

/* The value of a hexadecimal digit (either case), or -1. */
static inline int strint_hex_digit(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif
