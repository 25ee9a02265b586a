/*
 * Tests for shard/core_log_format.c: segment header and record round trips,
 * and the torn-versus-corrupt rules of the scanner (core_log_format.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/errors.h"
#include "shard/core_log_format.h"
#include "shard/crc32c.h"

#define NREC 6

struct image {
	uint8_t buf[8192];
	size_t len;
	size_t offset[NREC + 1]; /* start of record i; [NREC]: end */
};

static void put(struct image *im, int i, const struct core_log_record *r, const void *payload)
{
	im->offset[i] = im->len;
	if (payload != NULL)
		memcpy(im->buf + im->len + CORE_LOG_RECORD_HEADER_SIZE, payload, r->payload_len);
	im->len += core_log_record_finish(im->buf + im->len, r);
}

/* Header, RETAIN, a checkpoint of two groups, entries, hard state, reset. */
static void build(struct image *im)
{
	struct core_log_checkpoint_item items[2] = {
		{ .group = 7, .term = 3, .vote = 2, .start_index = 10, .start_term = 2 },
		{ .group = 9, .term = 1, .vote = 0, .start_index = 0, .start_term = 0 },
	};
	uint8_t ck[2 * CORE_LOG_CHECKPOINT_ITEM];
	struct core_log_record r;

	memset(im, 0, sizeof *im);
	core_log_segment_page0_encode(im->buf, 5);
	im->len = CORE_LOG_RECORDS_START;
	put(im, 0, &(struct core_log_record){ .kind = CORE_LOG_RETAIN, .a = 3 }, NULL);
	for (int i = 0; i < 2; i++)
		core_log_checkpoint_item_encode(ck + i * CORE_LOG_CHECKPOINT_ITEM, &items[i]);
	put(im, 1, &(struct core_log_record){ .kind = CORE_LOG_CHECKPOINT, .a = 5, .b = 2,
					      .payload_len = sizeof ck }, ck);
	r = (struct core_log_record){ .kind = CORE_LOG_ENTRY, .type = 1, .group = 7, .a = 11,
				      .b = 3, .payload_len = 5 };
	put(im, 2, &r, "hello");
	r.a = 12;
	r.payload_len = 0;
	put(im, 3, &r, NULL);
	put(im, 4, &(struct core_log_record){ .kind = CORE_LOG_HARD_STATE, .group = 9, .a = 4,
					      .b = 1 }, NULL);
	put(im, 5, &(struct core_log_record){ .kind = CORE_LOG_RESET, .group = 9, .a = 100,
					      .b = 4 }, NULL);
	im->offset[NREC] = im->len;
}

static enum core_log_scan_result scan(const uint8_t *buf, size_t len,
				      struct core_log_scanner *s, int *records)
{
	struct core_log_record r;
	enum core_log_scan_result res;

	*records = 0;
	core_log_scan_init(s, buf, len);
	while ((res = core_log_scan_next(s, &r)) == CORE_LOG_SCAN_RECORD)
		(*records)++;
	return res;
}

static void test_header(void **state)
{
	static uint8_t h[CORE_LOG_RECORDS_START];
	uint64_t seq = 0;

	(void)state;
	core_log_segment_page0_encode(h, 42);
	assert_int_equal(core_log_segment_header_check(h, sizeof h, &seq), 0);
	assert_int_equal(seq, 42);
	assert_int_equal(core_log_segment_header_version(h, sizeof h), CORE_LOG_FORMAT_VERSION);
	/* Page 0 is written whole: shorter is a segment being created. */
	assert_int_equal(core_log_segment_header_check(h, 31, &seq), RKV_ETORN);
	assert_int_equal(core_log_segment_header_check(h, sizeof h - 1, &seq), RKV_ETORN);
	h[16] ^= 1;
	assert_int_equal(core_log_segment_header_check(h, sizeof h, &seq), RKV_ECORRUPT);
	assert_int_equal(core_log_segment_header_version(h, sizeof h), 0);
}

/* Format version 1 (records at 32, no marks) is refused and named. */
static void test_version_1_named(void **state)
{
	static uint8_t h[CORE_LOG_RECORDS_START];
	uint64_t seq = 0;
	uint32_t crc;

	(void)state;
	core_log_segment_page0_encode(h, 3);
	h[8] = 1; /* version 1, CRC made good again */
	crc = crc32c(0, h, 28);
	for (int i = 0; i < 4; i++)
		h[28 + i] = (uint8_t)(crc >> (8 * i));
	assert_int_equal(core_log_segment_header_check(h, sizeof h, &seq), RKV_ECORRUPT);
	assert_int_equal(core_log_segment_header_version(h, sizeof h), 1);
}

/* The newest valid mark wins; a spoiled or foreign slot is skipped. */
static void test_marks(void **state)
{
	static uint8_t p[CORE_LOG_RECORDS_START];
	struct core_log_mark m;

	(void)state;
	core_log_segment_page0_encode(p, 9);
	assert_int_equal(core_log_mark_read(p, sizeof p, 9, &m), 0);
	assert_int_equal(m.count, 1);
	assert_int_equal(m.end, CORE_LOG_RECORDS_START);
	assert_int_equal(core_log_mark_read(p, sizeof p, 8, &m), RKV_ENOTFOUND);
	core_log_mark_encode(p + core_log_mark_offset(2),
			     &(struct core_log_mark){ .seq = 9, .count = 2, .end = 9000 });
	assert_int_equal(core_log_mark_read(p, sizeof p, 9, &m), 0);
	assert_int_equal(m.count, 2);
	assert_int_equal(m.end, 9000);
	core_log_mark_encode(p + core_log_mark_offset(3),
			     &(struct core_log_mark){ .seq = 9, .count = 3, .end = 12000 });
	assert_int_equal(core_log_mark_read(p, sizeof p, 9, &m), 0);
	assert_int_equal(m.end, 12000);
	/* A torn write of slot 1 leaves slot 0's older mark. */
	p[core_log_mark_offset(3) + 30] ^= 1;
	assert_int_equal(core_log_mark_read(p, sizeof p, 9, &m), 0);
	assert_int_equal(m.end, 9000);
	/* A mark in the wrong slot for its number is not valid. */
	core_log_mark_encode(p + core_log_mark_offset(3),
			     &(struct core_log_mark){ .seq = 9, .count = 4, .end = 15000 });
	assert_int_equal(core_log_mark_read(p, sizeof p, 9, &m), 0);
	assert_int_equal(m.end, 9000);
	/* Page 0 cut before the slots: none. */
	assert_int_equal(core_log_mark_read(p, CORE_LOG_MARK_SLOT0 + 10, 9, &m), RKV_ENOTFOUND);
}

static void test_round_trip(void **state)
{
	struct image im;
	struct core_log_scanner s;
	struct core_log_record r;
	struct core_log_checkpoint_item it;

	(void)state;
	build(&im);
	core_log_scan_init(&s, im.buf, sizeof im.buf); /* zeros after: the end */
	assert_int_equal(core_log_scan_next(&s, &r), CORE_LOG_SCAN_RECORD);
	assert_int_equal(r.kind, CORE_LOG_RETAIN);
	assert_int_equal(r.a, 3);
	assert_int_equal(core_log_scan_next(&s, &r), CORE_LOG_SCAN_RECORD);
	assert_int_equal(r.kind, CORE_LOG_CHECKPOINT);
	core_log_checkpoint_item_decode(&r, 0, &it);
	assert_int_equal(it.group, 7);
	assert_int_equal(it.vote, 2);
	assert_int_equal(it.start_index, 10);
	core_log_checkpoint_item_decode(&r, 1, &it);
	assert_int_equal(it.group, 9);
	assert_int_equal(core_log_scan_next(&s, &r), CORE_LOG_SCAN_RECORD);
	assert_int_equal(r.kind, CORE_LOG_ENTRY);
	assert_int_equal(r.group, 7);
	assert_int_equal(r.a, 11);
	assert_int_equal(r.b, 3);
	assert_int_equal(r.type, 1);
	assert_int_equal(r.payload_len, 5);
	assert_memory_equal(r.payload, "hello", 5);
	for (int i = 3; i < NREC; i++)
		assert_int_equal(core_log_scan_next(&s, &r), CORE_LOG_SCAN_RECORD);
	assert_int_equal(r.kind, CORE_LOG_RESET);
	assert_int_equal(r.a, 100);
	assert_int_equal(core_log_scan_next(&s, &r), CORE_LOG_SCAN_END);
	assert_int_equal(s.offset, im.offset[NREC]);
}

/* Every cut inside the last record is torn, never corrupt. */
static void test_every_cut_of_last_record_is_torn(void **state)
{
	struct image im;
	struct core_log_scanner s;
	int n;

	(void)state;
	build(&im);
	for (size_t cut = im.offset[2] + 1; cut < im.offset[3]; cut++) {
		struct image torn = im;

		memset(torn.buf + cut, 0, sizeof torn.buf - cut);
		assert_int_equal(scan(torn.buf, im.offset[3] + 64, &s, &n), CORE_LOG_SCAN_TORN);
		assert_int_equal(n, 2);
		assert_int_equal(s.offset, im.offset[2]);
	}
	/* ... and a file that ends inside it, too. */
	for (size_t cut = im.offset[2] + 1; cut < im.offset[3]; cut++) {
		assert_int_equal(scan(im.buf, cut, &s, &n), CORE_LOG_SCAN_TORN);
		assert_int_equal(s.offset, im.offset[2]);
	}
}

static void test_corruption_followed_by_data(void **state)
{
	struct image im;
	struct core_log_scanner s;
	int n;

	(void)state;
	build(&im);
	/* A payload byte: bad payload crc, records after it. */
	im.buf[im.offset[2] + CORE_LOG_RECORD_HEADER_SIZE + 1] ^= 0x40;
	assert_int_equal(scan(im.buf, im.len, &s, &n), CORE_LOG_SCAN_CORRUPT);
	assert_int_equal(n, 2);
	assert_int_equal(s.offset, im.offset[2]);
	assert_string_equal(s.reason, "bad payload crc");
	/* A header byte. */
	build(&im);
	im.buf[im.offset[3] + 20] ^= 1;
	assert_int_equal(scan(im.buf, im.len, &s, &n), CORE_LOG_SCAN_CORRUPT);
	assert_int_equal(s.offset, im.offset[3]);
	assert_string_equal(s.reason, "bad record header");
}

static void test_shape_checks(void **state)
{
	struct image im;
	struct core_log_scanner s;
	int n;
	uint8_t rec[CORE_LOG_RECORD_HEADER_SIZE + 16];

	(void)state;
	/* An unknown kind whose CRCs hold, at the end of the file: corrupt,
	 * not torn (it was written whole). */
	build(&im);
	memset(rec, 0, sizeof rec);
	core_log_record_finish(rec, &(struct core_log_record){ .kind = CORE_LOG_HARD_STATE,
								.group = 1, .a = 1 });
	rec[8] = 77;
	/* fix the header crc so only the shape is wrong */
	{
		uint8_t tmp[CORE_LOG_RECORD_HEADER_SIZE];
		uint32_t c;

		memcpy(tmp, rec, sizeof tmp);
		c = crc32c(0, tmp, 40);
		for (int i = 0; i < 4; i++)
			rec[40 + i] = (uint8_t)(c >> (8 * i));
	}
	memcpy(im.buf + im.len, rec, CORE_LOG_RECORD_HEADER_SIZE);
	assert_int_equal(scan(im.buf, im.len + CORE_LOG_RECORD_HEADER_SIZE, &s, &n),
			 CORE_LOG_SCAN_CORRUPT);
	assert_int_equal(n, NREC);
	assert_string_equal(s.reason, "unknown record kind");
}

static void test_zeros_are_the_end(void **state)
{
	static uint8_t buf[2 * CORE_LOG_RECORDS_START];
	struct core_log_scanner s;
	int n;

	(void)state;
	core_log_segment_page0_encode(buf, 1);
	assert_int_equal(scan(buf, sizeof buf, &s, &n), CORE_LOG_SCAN_END);
	assert_int_equal(n, 0);
	assert_int_equal(s.offset, CORE_LOG_RECORDS_START);
	/* Fewer bytes than a record header, not all zero: torn. */
	buf[CORE_LOG_RECORDS_START + 20] = 1;
	assert_int_equal(scan(buf, CORE_LOG_RECORDS_START + 30, &s, &n), CORE_LOG_SCAN_TORN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_version_1_named),
		cmocka_unit_test(test_marks),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_every_cut_of_last_record_is_torn),
		cmocka_unit_test(test_corruption_followed_by_data),
		cmocka_unit_test(test_shape_checks),
		cmocka_unit_test(test_zeros_are_the_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
