/*
 * Codec and scanner of the per-core Raft log (format in core_log_format.h).
 * Every byte the scanner reads came from disk: nothing here asserts on
 * content; each check returns a verdict with the offset of the bad record.
 *
 * The scanner decides in this order, at the offset of the next record:
 *   1. no bytes left, or only zeros left             -> END
 *   2. fewer than a record header left               -> TORN
 *   3. header CRC or a reserved field wrong:
 *        every byte after the header is zero         -> TORN
 *        otherwise                                   -> CORRUPT
 *   4. a shape check of the kind fails (unknown kind, payload_len too large
 *      or wrong for the kind, index 0, ...)          -> CORRUPT
 *   5. payload runs past the end of the buffer       -> TORN
 *   6. payload CRC wrong:
 *        every byte after the record is zero         -> TORN
 *        otherwise                                   -> CORRUPT
 * Rule 4 before 5: a header whose CRC holds was written whole, so nonsense
 * in it is not an interrupted append.
 */
#include "shard/core_log_format.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

#include "core/errors.h"
#include "core/le.h"
#include "shard/crc32c.h"

static const uint8_t segment_magic[8] = { 'R', 'K', 'V', 'C', 'L', 'O', 'G', 1 };

#define REC_PAYLOAD_LEN 0
#define REC_PAYLOAD_CRC 4
#define REC_KIND 8
#define REC_PAD8 9
#define REC_PAD16 10
#define REC_TYPE 12
#define REC_GROUP 16
#define REC_A 24
#define REC_B 32
#define REC_HEADER_CRC 40
#define REC_RESERVED 44

/*
 * NULL when the fields of a record whose CRCs are not yet checked fit its
 * kind, else why not. Shared by the writer's asserts and the scanner.
 */
static const char *shape_error(uint8_t kind, uint32_t type, uint64_t group, uint64_t a,
			       uint64_t b, uint32_t payload_len)
{
	if (payload_len > CORE_LOG_MAX_PAYLOAD)
		return "payload length above CORE_LOG_MAX_PAYLOAD";
	switch (kind) {
	case CORE_LOG_ENTRY:
		if (a == 0 || a == UINT64_MAX)
			return "entry index out of range";
		return NULL;
	case CORE_LOG_HARD_STATE:
	case CORE_LOG_RESET:
	case CORE_LOG_REMOVE:
		if (payload_len != 0 || type != 0)
			return "payload or type on a record that has none";
		if (kind == CORE_LOG_REMOVE && (a != 0 || b != 0))
			return "remove record with fields set";
		return NULL;
	case CORE_LOG_RETAIN:
		if (payload_len != 0 || type != 0 || group != 0 || a == 0 || b != 0)
			return "malformed retain record";
		return NULL;
	case CORE_LOG_SEAL:
		if (payload_len != 0 || type != 0 || group != 0 || a == 0 ||
		    b < CORE_LOG_RECORDS_START)
			return "malformed seal record";
		return NULL;
	case CORE_LOG_CHECKPOINT:
		if (type != 0 || group != 0 || a == 0 || b == 0 ||
		    b > CORE_LOG_CHECKPOINT_MAX_ITEMS ||
		    payload_len != b * CORE_LOG_CHECKPOINT_ITEM)
			return "malformed checkpoint record";
		return NULL;
	default:
		return "unknown record kind";
	}
}

size_t core_log_record_finish(uint8_t *out, const struct core_log_record *r)
{
	uint32_t crc;

	assert(out != NULL && r != NULL);
	assert(shape_error(r->kind, r->type, r->group, r->a, r->b, r->payload_len) == NULL);
	put_le32(out + REC_PAYLOAD_LEN, r->payload_len);
	out[REC_KIND] = r->kind;
	out[REC_PAD8] = 0;
	out[REC_PAD16] = 0;
	out[REC_PAD16 + 1] = 0;
	put_le32(out + REC_TYPE, r->type);
	put_le64(out + REC_GROUP, r->group);
	put_le64(out + REC_A, r->a);
	put_le64(out + REC_B, r->b);
	crc = crc32c(0, out + REC_KIND, REC_HEADER_CRC - REC_KIND);
	crc = crc32c(crc, out + CORE_LOG_RECORD_HEADER_SIZE, r->payload_len);
	put_le32(out + REC_PAYLOAD_CRC, crc);
	put_le32(out + REC_HEADER_CRC, crc32c(0, out, REC_HEADER_CRC));
	put_le32(out + REC_RESERVED, 0);
	return core_log_record_size(r->payload_len);
}

void core_log_checkpoint_item_encode(uint8_t *out, const struct core_log_checkpoint_item *it)
{
	put_le64(out, it->group);
	put_le64(out + 8, it->term);
	put_le64(out + 16, it->vote);
	put_le64(out + 24, it->start_index);
	put_le64(out + 32, it->start_term);
}

void core_log_checkpoint_item_decode(const struct core_log_record *r, uint32_t i,
				     struct core_log_checkpoint_item *it)
{
	const uint8_t *p;

	assert(r->kind == CORE_LOG_CHECKPOINT && i < r->b);
	p = r->payload + (size_t)i * CORE_LOG_CHECKPOINT_ITEM;
	it->group = get_le64(p);
	it->term = get_le64(p + 8);
	it->vote = get_le64(p + 16);
	it->start_index = get_le64(p + 24);
	it->start_term = get_le64(p + 32);
}

void core_log_segment_header_encode(uint8_t out[CORE_LOG_SEGMENT_HEADER_SIZE], uint64_t seq)
{
	memset(out, 0, CORE_LOG_SEGMENT_HEADER_SIZE);
	memcpy(out, segment_magic, sizeof segment_magic);
	put_le32(out + 8, CORE_LOG_FORMAT_VERSION);
	put_le64(out + 16, seq);
	put_le32(out + 28, crc32c(0, out, 28));
}

int core_log_segment_header_check(const uint8_t *buf, size_t len, uint64_t *seq)
{
	assert(buf != NULL || len == 0);
	if (len < CORE_LOG_RECORDS_START)
		return RKV_ETORN;
	if (memcmp(buf, segment_magic, sizeof segment_magic) != 0 ||
	    get_le32(buf + 28) != crc32c(0, buf, 28) ||
	    get_le32(buf + 8) != CORE_LOG_FORMAT_VERSION ||
	    get_le32(buf + 12) != 0 || get_le32(buf + 24) != 0)
		return RKV_ECORRUPT;
	*seq = get_le64(buf + 16);
	return 0;
}

uint32_t core_log_segment_header_version(const uint8_t *buf, size_t len)
{
	if (len < CORE_LOG_SEGMENT_HEADER_SIZE || memcmp(buf, segment_magic, sizeof segment_magic) ||
	    get_le32(buf + 28) != crc32c(0, buf, 28))
		return 0;
	return get_le32(buf + 8);
}

#define MARK_MAGIC 0x4B4D4C43u /* "CLMK" */

void core_log_mark_encode(uint8_t out[CORE_LOG_MARK_SIZE], const struct core_log_mark *m)
{
	assert(m->end >= CORE_LOG_RECORDS_START);
	put_le32(out, MARK_MAGIC);
	put_le64(out + 8, m->seq);
	put_le64(out + 16, m->count);
	put_le64(out + 24, m->end);
	put_le32(out + 4, crc32c(0, out + 8, CORE_LOG_MARK_SIZE - 8));
}

void core_log_segment_page0_encode(uint8_t out[CORE_LOG_RECORDS_START], uint64_t seq)
{
	memset(out, 0, CORE_LOG_RECORDS_START);
	core_log_segment_header_encode(out, seq);
	for (uint64_t count = 0; count < 2; count++)
		core_log_mark_encode(out + core_log_mark_offset(count),
				     &(struct core_log_mark){ .seq = seq, .count = count,
							      .end = CORE_LOG_RECORDS_START });
}

int core_log_mark_read(const uint8_t *buf, size_t len, uint64_t seq, struct core_log_mark *m)
{
	bool found = false;

	for (uint64_t slot = 0; slot < 2; slot++) {
		const uint8_t *p = buf + core_log_mark_offset(slot);
		struct core_log_mark v;

		if (len < core_log_mark_offset(slot) + CORE_LOG_MARK_SIZE ||
		    get_le32(p) != MARK_MAGIC ||
		    get_le32(p + 4) != crc32c(0, p + 8, CORE_LOG_MARK_SIZE - 8))
			continue;
		v.seq = get_le64(p + 8);
		v.count = get_le64(p + 16);
		v.end = get_le64(p + 24);
		if (v.seq != seq || v.count % 2 != slot || v.end < CORE_LOG_RECORDS_START)
			continue;
		if (!found || v.count > m->count)
			*m = v;
		found = true;
	}
	return found ? 0 : RKV_ENOTFOUND;
}

void core_log_scan_init(struct core_log_scanner *s, const uint8_t *buf, size_t len)
{
	assert(s != NULL);
	assert(buf != NULL || len == 0);
	s->buf = buf;
	s->len = len;
	s->offset = len < CORE_LOG_RECORDS_START ? len : CORE_LOG_RECORDS_START;
	s->reason = NULL;
	s->cut = false;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	/* Word at a time: a 64 MiB preallocated tail is checked once per open. */
	while (n > 0 && ((uintptr_t)p & 7) != 0) {
		if (*p++ != 0)
			return false;
		n--;
	}
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		if (w != 0)
			return false;
	}
	while (n-- > 0)
		if (*p++ != 0)
			return false;
	return true;
}

static enum core_log_scan_result corrupt(struct core_log_scanner *s, const char *reason)
{
	s->reason = reason;
	return CORE_LOG_SCAN_CORRUPT;
}

enum core_log_scan_result core_log_scan_next(struct core_log_scanner *s,
					     struct core_log_record *out)
{
	const uint8_t *h;
	const char *why;
	size_t left, size;
	uint32_t payload_len, crc;

	assert(s != NULL && out != NULL);
	assert(s->offset <= s->len);
	left = s->len - s->offset;
	h = s->buf + s->offset;
	if (left == 0 || all_zero(h, left))
		return CORE_LOG_SCAN_END;
	s->cut = false;
	if (left < CORE_LOG_RECORD_HEADER_SIZE) {
		s->cut = true;
		return CORE_LOG_SCAN_TORN;
	}
	if (get_le32(h + REC_HEADER_CRC) != crc32c(0, h, REC_HEADER_CRC) ||
	    get_le32(h + REC_RESERVED) != 0 || h[REC_PAD8] != 0 || h[REC_PAD16] != 0 ||
	    h[REC_PAD16 + 1] != 0) {
		if (all_zero(h + CORE_LOG_RECORD_HEADER_SIZE, left - CORE_LOG_RECORD_HEADER_SIZE))
			return CORE_LOG_SCAN_TORN;
		return corrupt(s, "bad record header");
	}
	payload_len = get_le32(h + REC_PAYLOAD_LEN);
	out->kind = h[REC_KIND];
	out->type = get_le32(h + REC_TYPE);
	out->group = get_le64(h + REC_GROUP);
	out->a = get_le64(h + REC_A);
	out->b = get_le64(h + REC_B);
	why = shape_error(out->kind, out->type, out->group, out->a, out->b, payload_len);
	if (why)
		return corrupt(s, why);
	if (payload_len > left - CORE_LOG_RECORD_HEADER_SIZE) {
		s->cut = true;
		return CORE_LOG_SCAN_TORN;
	}
	size = core_log_record_size(payload_len);
	crc = crc32c(0, h + REC_KIND, REC_HEADER_CRC - REC_KIND);
	crc = crc32c(crc, h + CORE_LOG_RECORD_HEADER_SIZE, payload_len);
	if (crc != get_le32(h + REC_PAYLOAD_CRC)) {
		if (all_zero(h + size, left - size))
			return CORE_LOG_SCAN_TORN;
		return corrupt(s, "bad payload crc");
	}
	out->payload = h + CORE_LOG_RECORD_HEADER_SIZE;
	out->payload_len = payload_len;
	s->offset += size;
	s->reason = NULL;
	return CORE_LOG_SCAN_RECORD;
}

void core_log_segment_examine(const uint8_t *buf, size_t len, uint64_t seq,
			      struct core_log_segment_facts *out)
{
	struct core_log_scanner sc;
	struct core_log_record r;
	uint64_t header_seq = 0;

	memset(out, 0, sizeof *out);
	out->version = core_log_segment_header_version(buf, len);
	out->header = core_log_segment_header_check(buf, len, &header_seq);
	if (out->header == 0 && header_seq != seq)
		out->header = RKV_ECORRUPT;
	if (out->header != 0)
		return;
	out->marked = core_log_mark_read(buf, len, seq, &out->mark) == 0;
	core_log_scan_init(&sc, buf, len);
	while ((out->res = core_log_scan_next(&sc, &r)) == CORE_LOG_SCAN_RECORD) {
		if (r.kind == CORE_LOG_SEAL && !out->sealed) {
			out->sealed = true;
			out->seal_seq = r.a;
			out->seal_end = r.b;
			out->seal_at = sc.offset - core_log_record_size(r.payload_len);
		}
		out->records++;
	}
	out->cut = sc.cut;
	out->reason = sc.reason;
	out->end = sc.offset;
}
