/*
 * WAL record and segment codec, and the scanner that tells a torn tail from
 * corruption. Every byte it reads came from disk, so nothing here asserts on
 * content: each check returns a verdict with the offset of the bad record.
 *
 * The scanner decides in this order, at the offset of the next record:
 *   1. no bytes left                               -> END
 *   2. fewer than a record header left             -> TORN
 *   3. header CRC or reserved word wrong:
 *        every byte to the end is zero             -> TORN
 *        otherwise                                 -> CORRUPT
 *   4. payload_len above WAL_MAX_PAYLOAD           -> CORRUPT
 *   5. index 0 or UINT64_MAX, or not the expected one -> CORRUPT
 *   6. payload runs past the end of the buffer     -> TORN
 *   7. payload CRC wrong:
 *        record ends exactly at the buffer's end   -> TORN
 *        otherwise                                 -> CORRUPT
 * Index 0 is not a Raft log position, and after UINT64_MAX the next expected
 * index would wrap to 0, which means "any": both are refused.
 * Rule 5 before 6: a header whose CRC is good was written whole, so a wrong
 * index there is not an interrupted append but a log that does not fit
 * together, and recovery must stop rather than truncate it away.
 */
#include "shard/wal_format.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

#include "core/errors.h"
#include "core/le.h"
#include "shard/crc32c.h"

static const uint8_t segment_magic[8] = { 'R', 'K', 'V', 'W', 'A', 'L', 0, 1 };

/* Field offsets in the 32-byte record header. */
#define REC_PAYLOAD_LEN 0
#define REC_PAYLOAD_CRC 4
#define REC_INDEX 8
#define REC_TERM 16
#define REC_HEADER_CRC 24
#define REC_RESERVED 28

size_t wal_record_size(uint32_t payload_len)
{
	return WAL_RECORD_HEADER_SIZE + (size_t)payload_len;
}

size_t wal_record_encode(const struct wal_record *r, uint8_t *out)
{
	assert(r != NULL && out != NULL);
	assert(r->payload != NULL || r->payload_len == 0);
	if (r->payload_len != 0)
		memcpy(out + WAL_RECORD_HEADER_SIZE, r->payload, r->payload_len);
	return wal_record_finish(out, r->index, r->term, r->payload_len);
}

size_t wal_record_finish(uint8_t *out, uint64_t index, uint64_t term, uint32_t payload_len)
{
	uint32_t crc;

	assert(out != NULL);
	assert(payload_len <= WAL_MAX_PAYLOAD);
	assert(index != 0 && index != UINT64_MAX);
	put_le32(out + REC_PAYLOAD_LEN, payload_len);
	put_le64(out + REC_INDEX, index);
	put_le64(out + REC_TERM, term);
	crc = crc32c(0, out + REC_INDEX, 16);
	crc = crc32c(crc, out + WAL_RECORD_HEADER_SIZE, payload_len);
	put_le32(out + REC_PAYLOAD_CRC, crc);
	put_le32(out + REC_HEADER_CRC, crc32c(0, out, REC_HEADER_CRC));
	put_le32(out + REC_RESERVED, 0);
	return wal_record_size(payload_len);
}

void wal_segment_header_encode(uint8_t out[WAL_SEGMENT_HEADER_SIZE])
{
	assert(out != NULL);
	memcpy(out, segment_magic, sizeof(segment_magic));
	put_le32(out + 8, WAL_FORMAT_VERSION);
	put_le32(out + 12, crc32c(0, out, 12));
}

int wal_segment_header_check(const uint8_t *buf, size_t len)
{
	assert(buf != NULL || len == 0);
	if (len < WAL_SEGMENT_HEADER_SIZE)
		return RKV_ETORN;
	if (memcmp(buf, segment_magic, sizeof(segment_magic)) != 0)
		return RKV_ECORRUPT;
	if (get_le32(buf + 12) != crc32c(0, buf, 12))
		return RKV_ECORRUPT;
	if (get_le32(buf + 8) != WAL_FORMAT_VERSION)
		return RKV_ECORRUPT;
	return 0;
}

void wal_scanner_init(struct wal_scanner *s, const uint8_t *buf, size_t len,
		      uint64_t expect_index)
{
	assert(s != NULL);
	assert(buf != NULL || len == 0);
	s->buf = buf;
	s->len = len;
	/* A buffer shorter than the header (the caller should have refused it)
	 * scans as empty rather than reading outside it. */
	s->offset = len < WAL_SEGMENT_HEADER_SIZE ? len : WAL_SEGMENT_HEADER_SIZE;
	s->next_index = expect_index;
	s->reason = NULL;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static enum wal_scan_result corrupt(struct wal_scanner *s, const char *reason)
{
	s->reason = reason;
	return WAL_SCAN_CORRUPT;
}

enum wal_scan_result wal_scanner_next(struct wal_scanner *s, struct wal_record *out)
{
	const uint8_t *h;
	size_t left;
	uint32_t payload_len;
	uint64_t index;
	uint32_t crc;

	assert(s != NULL && out != NULL);
	assert(s->offset <= s->len);
	left = s->len - s->offset;
	if (left == 0)
		return WAL_SCAN_END;
	h = s->buf + s->offset;
	if (all_zero(h, left))
		return WAL_SCAN_END; /* the preallocated, never written rest */
	if (left < WAL_RECORD_HEADER_SIZE)
		return WAL_SCAN_TORN;
	if (get_le32(h + REC_HEADER_CRC) != crc32c(0, h, REC_HEADER_CRC) ||
	    get_le32(h + REC_RESERVED) != 0) {
		if (all_zero(h + WAL_RECORD_HEADER_SIZE, left - WAL_RECORD_HEADER_SIZE))
			return WAL_SCAN_TORN;
		return corrupt(s, "bad record header");
	}
	payload_len = get_le32(h + REC_PAYLOAD_LEN);
	if (payload_len > WAL_MAX_PAYLOAD)
		return corrupt(s, "payload length above WAL_MAX_PAYLOAD");
	index = get_le64(h + REC_INDEX);
	if (index == 0 || index == UINT64_MAX)
		return corrupt(s, "record index out of range");
	if (s->next_index != 0 && index != s->next_index)
		return corrupt(s, "record index does not follow the previous one");
	if (payload_len > left - WAL_RECORD_HEADER_SIZE)
		return WAL_SCAN_TORN;
	crc = crc32c(0, h + REC_INDEX, 16);
	crc = crc32c(crc, h + WAL_RECORD_HEADER_SIZE, payload_len);
	if (crc != get_le32(h + REC_PAYLOAD_CRC)) {
		size_t size = wal_record_size(payload_len);

		if (all_zero(h + size, left - size))
			return WAL_SCAN_TORN;
		return corrupt(s, "bad payload crc");
	}
	out->index = index;
	out->term = get_le64(h + REC_TERM);
	out->payload = h + WAL_RECORD_HEADER_SIZE;
	out->payload_len = payload_len;
	s->offset += wal_record_size(payload_len);
	s->next_index = index + 1;
	s->reason = NULL;
	return WAL_SCAN_RECORD;
}
