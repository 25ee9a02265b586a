/*
 * libFuzzer harness for the decoders of WAL bytes: the segment header check,
 * the record scanner and the command decoder. The input is used twice:
 * as-is (checksums almost never match, so this exercises the torn/corrupt
 * verdicts on garbage), and "sealed" -- every record header and payload CRC
 * rewritten to be valid -- so the fuzzer reaches the index, length and
 * torn-tail rules and feeds real payloads to command_decode().
 *
 * Any return is fine; what must never happen is a crash, a sanitizer report,
 * or a verdict that contradicts the buffer (checked with check(), which aborts).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "shard/command.h"
#include "shard/crc32c.h"
#include "shard/wal_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "fuzz_wal.c:%d: check failed: %s\n", \
				__LINE__, #cond);                            \
			abort();                                             \
		}                                                            \
	} while (0)

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Makes every record CRC that fits in the buffer valid; returns the count. */
static void seal(uint8_t *buf, size_t len)
{
	size_t off = WAL_SEGMENT_HEADER_SIZE;

	while (len >= off && len - off >= WAL_RECORD_HEADER_SIZE) {
		uint8_t *h = buf + off;
		uint32_t payload_len = get_le32(h);
		uint32_t crc;

		put_le32(h + 28, 0);
		if (payload_len <= len - off - WAL_RECORD_HEADER_SIZE) {
			crc = crc32c(0, h + 8, 16);
			crc = crc32c(crc, h + WAL_RECORD_HEADER_SIZE, payload_len);
			put_le32(h + 4, crc);
		}
		put_le32(h + 24, crc32c(0, h, 24));
		if (payload_len > len - off - WAL_RECORD_HEADER_SIZE)
			break;
		off += WAL_RECORD_HEADER_SIZE + (size_t)payload_len;
	}
}

static void scan(const uint8_t *buf, size_t len, uint64_t expect)
{
	struct wal_scanner s;
	struct wal_record r;
	enum wal_scan_result res;
	uint64_t prev = 0;
	int n = 0;

	wal_scanner_init(&s, buf, len, expect);
	while ((res = wal_scanner_next(&s, &r)) == WAL_SCAN_RECORD) {
		struct command c;

		check(s.offset <= len);
		check(r.payload >= buf && r.payload + r.payload_len == buf + s.offset);
		check(r.payload_len <= WAL_MAX_PAYLOAD);
		check(n == 0 ? (expect == 0 || r.index == expect) : r.index == prev + 1);
		prev = r.index;
		n++;
		if (command_decode(r.payload, r.payload_len, &c) == 0) {
			check(c.key >= r.payload && c.key + c.key_len <= r.payload + r.payload_len);
			check(c.op >= COMMAND_PUT && c.op <= COMMAND_OP_MAX && c.op != COMMAND_AT_TIME);
		}
	}
	check(s.offset <= len);
	/* The end: every byte consumed, or only zeros (preallocated) left. */
	if (res == WAL_SCAN_END && len >= WAL_SEGMENT_HEADER_SIZE)
		for (size_t i = s.offset; i < len; i++)
			check(buf[i] == 0);
	if (res == WAL_SCAN_CORRUPT)
		check(s.reason != NULL);
	/* Verdicts are sticky. */
	check(wal_scanner_next(&s, &r) == res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct command c;
	uint8_t *copy;
	uint64_t expect = 0;

	(void)wal_segment_header_check(data, size);
	if (command_decode(data, size, &c) == 0) {
		uint8_t *again = malloc(command_encoded_size(&c) + 1);

		/* A command that decodes re-encodes to the same bytes. */
		check(again != NULL);
		check(command_encode(&c, again) == size);
		check(memcmp(again, data, size) == 0);
		free(again);
	}
	if (size >= 8)
		memcpy(&expect, data, 1); /* small expected index, or 0 = any */
	scan(data, size, expect);

	copy = malloc(size + 1);
	check(copy != NULL);
	if (size != 0)
		memcpy(copy, data, size);
	seal(copy, size);
	scan(copy, size, expect);
	free(copy);
	return 0;
}
