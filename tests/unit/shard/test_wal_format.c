/*
 * Tests for shard/wal_format.c: segment header and record round trips, and
 * every torn-versus-corrupt rule of the header comment in wal_format.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/errors.h"
#include "shard/crc32c.h"
#include "shard/wal_format.h"

#define NREC 5

/* A segment image: header + NREC records with indexes 10..14. */
struct image {
	uint8_t buf[4096];
	size_t len;
	size_t offset[NREC + 1]; /* offset[i]: start of record i; [NREC]: end */
};

static void build(struct image *im)
{
	char payload[64];

	wal_segment_header_encode(im->buf);
	im->len = WAL_SEGMENT_HEADER_SIZE;
	for (int i = 0; i < NREC; i++) {
		struct wal_record r = { .index = 10 + (uint64_t)i, .term = 3 };
		int n = snprintf(payload, sizeof(payload), "payload number %d%.*s", i,
				 i * 7, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");

		r.payload = (const uint8_t *)payload;
		r.payload_len = (uint32_t)n;
		im->offset[i] = im->len;
		assert_int_equal(wal_record_encode(&r, im->buf + im->len),
				 wal_record_size(r.payload_len));
		im->len += wal_record_size(r.payload_len);
	}
	im->offset[NREC] = im->len;
}

/* Scans `len` bytes of `buf`; returns the final verdict and the count read. */
static enum wal_scan_result scan(const uint8_t *buf, size_t len, uint64_t expect,
				 struct wal_scanner *s, int *records)
{
	struct wal_record r;
	enum wal_scan_result res;

	*records = 0;
	wal_scanner_init(s, buf, len, expect);
	while ((res = wal_scanner_next(s, &r)) == WAL_SCAN_RECORD)
		(*records)++;
	return res;
}

/* Rewrites a record's header CRC after a field was changed on purpose. */
static void reseal_header(uint8_t *rec)
{
	uint32_t crc = crc32c(0, rec, 24);

	for (int i = 0; i < 4; i++)
		rec[24 + i] = (uint8_t)(crc >> (8 * i));
}

/* Rewrites both CRCs of a record after its index was changed on purpose. */
static void reseal_record(uint8_t *rec, uint32_t payload_len)
{
	uint32_t crc = crc32c(0, rec + 8, 16);

	crc = crc32c(crc, rec + WAL_RECORD_HEADER_SIZE, payload_len);
	for (int i = 0; i < 4; i++)
		rec[4 + i] = (uint8_t)(crc >> (8 * i));
	reseal_header(rec);
}

static void test_segment_header(void **state)
{
	uint8_t h[WAL_SEGMENT_HEADER_SIZE];

	(void)state;
	wal_segment_header_encode(h);
	assert_memory_equal(h, "RKVWAL\0\1\1\0\0\0", 12);
	assert_int_equal(wal_segment_header_check(h, sizeof(h)), 0);
	for (size_t len = 0; len < sizeof(h); len++)
		assert_int_equal(wal_segment_header_check(h, len), RKV_ETORN);
	for (size_t i = 0; i < sizeof(h); i++) {
		h[i] ^= 0x10;
		assert_int_equal(wal_segment_header_check(h, sizeof(h)), RKV_ECORRUPT);
		h[i] ^= 0x10;
	}
	/* A future version with a correct CRC is refused too. */
	h[8] = 2;
	{
		uint32_t crc = crc32c(0, h, 12);

		for (int i = 0; i < 4; i++)
			h[12 + i] = (uint8_t)(crc >> (8 * i));
	}
	assert_int_equal(wal_segment_header_check(h, sizeof(h)), RKV_ECORRUPT);
}

static void test_round_trip(void **state)
{
	struct image im;
	struct wal_scanner s;
	struct wal_record r;

	(void)state;
	build(&im);
	wal_scanner_init(&s, im.buf, im.len, 10);
	for (int i = 0; i < NREC; i++) {
		assert_int_equal(s.offset, im.offset[i]);
		assert_int_equal(wal_scanner_next(&s, &r), WAL_SCAN_RECORD);
		assert_int_equal(r.index, 10 + (uint64_t)i);
		assert_int_equal(r.term, 3);
		assert_ptr_equal(r.payload, im.buf + im.offset[i] + WAL_RECORD_HEADER_SIZE);
		assert_int_equal(wal_record_size(r.payload_len),
				 im.offset[i + 1] - im.offset[i]);
		assert_memory_equal(r.payload, "payload number", 14);
	}
	assert_int_equal(wal_scanner_next(&s, &r), WAL_SCAN_END);
	assert_int_equal(s.offset, im.len);
	/* 0 accepts any first index; a header-only segment is a clean end. */
	wal_scanner_init(&s, im.buf, im.len, 0);
	assert_int_equal(wal_scanner_next(&s, &r), WAL_SCAN_RECORD);
	assert_int_equal(r.index, 10);
	wal_scanner_init(&s, im.buf, WAL_SEGMENT_HEADER_SIZE, 10);
	assert_int_equal(wal_scanner_next(&s, &r), WAL_SCAN_END);
}

static void test_empty_payload(void **state)
{
	uint8_t buf[WAL_SEGMENT_HEADER_SIZE + WAL_RECORD_HEADER_SIZE];
	struct wal_record r = { .index = 1, .term = 0 };
	struct wal_scanner s;

	(void)state;
	wal_segment_header_encode(buf);
	assert_int_equal(wal_record_encode(&r, buf + WAL_SEGMENT_HEADER_SIZE), 32);
	wal_scanner_init(&s, buf, sizeof(buf), 1);
	assert_int_equal(wal_scanner_next(&s, &r), WAL_SCAN_RECORD);
	assert_int_equal(r.payload_len, 0);
	assert_int_equal(wal_scanner_next(&s, &r), WAL_SCAN_END);
}

/* Torn: fewer than 32 bytes left, or a valid header whose payload runs past
 * the end. Every cut inside the last record is torn at its start. */
static void test_torn_every_cut_of_last_record(void **state)
{
	struct image im;
	struct wal_scanner s;
	int n;

	(void)state;
	build(&im);
	for (size_t cut = im.offset[NREC - 1] + 1; cut < im.len; cut++) {
		assert_int_equal(scan(im.buf, cut, 10, &s, &n), WAL_SCAN_TORN);
		assert_int_equal(n, NREC - 1);
		assert_int_equal(s.offset, im.offset[NREC - 1]);
	}
	/* Cuts on record boundaries are clean ends. */
	for (int i = 0; i <= NREC; i++) {
		assert_int_equal(scan(im.buf, im.offset[i], 10, &s, &n), WAL_SCAN_END);
		assert_int_equal(n, i);
	}
}

/* The same cuts inside preallocated space: the part of the last record that
 * never arrived reads as zeros, up to the end of the file. */
static void test_torn_every_cut_zero_filled(void **state)
{
	struct image im, cut_im;
	struct wal_scanner s;
	int n;

	(void)state;
	build(&im);
	for (size_t cut = im.offset[NREC - 1] + 1; cut < im.len; cut++) {
		cut_im = im;
		memset(cut_im.buf + cut, 0, sizeof(cut_im.buf) - cut);
		assert_int_equal(scan(cut_im.buf, im.len + 256, 10, &s, &n), WAL_SCAN_TORN);
		assert_int_equal(n, NREC - 1);
		assert_int_equal(s.offset, im.offset[NREC - 1]);
	}
}

/* End: only zeros after the last record (preallocated, never written). */
static void test_end_zero_tail(void **state)
{
	struct image im;
	struct wal_scanner s;
	int n;

	(void)state;
	build(&im);
	memset(im.buf + im.len, 0, 200);
	assert_int_equal(scan(im.buf, im.len + 200, 10, &s, &n), WAL_SCAN_END);
	assert_int_equal(n, NREC);
	assert_int_equal(s.offset, im.len);
	/* Fewer zero bytes than a record header: still the end. */
	assert_int_equal(scan(im.buf, im.len + 5, 10, &s, &n), WAL_SCAN_END);
	assert_int_equal(s.offset, im.len);
	/* A last record none of whose bytes arrived: nothing of it to keep. */
	memset(im.buf + im.offset[NREC - 1], 0, im.len - im.offset[NREC - 1]);
	assert_int_equal(scan(im.buf, im.len, 10, &s, &n), WAL_SCAN_END);
	assert_int_equal(n, NREC - 1);
	assert_int_equal(s.offset, im.offset[NREC - 1]);
}

/* Torn: a valid header with a bad payload CRC, ending exactly at the end. */
static void test_torn_bad_crc_last_record(void **state)
{
	struct image im;
	struct wal_scanner s;
	int n;

	(void)state;
	build(&im);
	im.buf[im.len - 1] ^= 0x01;
	assert_int_equal(scan(im.buf, im.len, 10, &s, &n), WAL_SCAN_TORN);
	assert_int_equal(n, NREC - 1);
	assert_int_equal(s.offset, im.offset[NREC - 1]);
}

/* Corrupt: a flipped byte in a middle record, header or payload. */
static void test_corrupt_middle_record(void **state)
{
	struct image im;
	struct wal_scanner s;
	int n;

	(void)state;
	build(&im);
	for (size_t at = im.offset[2]; at < im.offset[3]; at++) {
		im.buf[at] ^= 0x40;
		assert_int_equal(scan(im.buf, im.len, 10, &s, &n), WAL_SCAN_CORRUPT);
		assert_int_equal(n, 2);
		assert_int_equal(s.offset, im.offset[2]);
		assert_non_null(s.reason);
		im.buf[at] ^= 0x40;
	}
	/* The verdict is sticky: the scanner does not skip past it. */
	im.buf[im.offset[2] + WAL_RECORD_HEADER_SIZE] ^= 1;
	assert_int_equal(scan(im.buf, im.len, 10, &s, &n), WAL_SCAN_CORRUPT);
	assert_string_equal(s.reason, "bad payload crc");
	{
		struct wal_record r;

		assert_int_equal(wal_scanner_next(&s, &r), WAL_SCAN_CORRUPT);
		assert_int_equal(s.offset, im.offset[2]);
	}
}

/* Torn: a bad payload CRC followed only by zeros (preallocated space);
 * corrupt once any non-zero byte follows. */
static void test_bad_crc_then_zeros(void **state)
{
	struct image im;
	struct wal_scanner s;
	int n;

	(void)state;
	build(&im);
	im.buf[im.len - 1] ^= 0x01;
	memset(im.buf + im.len, 0, 64);
	assert_int_equal(scan(im.buf, im.len + 64, 10, &s, &n), WAL_SCAN_TORN);
	assert_int_equal(s.offset, im.offset[NREC - 1]);
	im.buf[im.len + 40] = 1;
	assert_int_equal(scan(im.buf, im.len + 64, 10, &s, &n), WAL_SCAN_CORRUPT);
	assert_int_equal(s.offset, im.offset[NREC - 1]);
}

/* Corrupt: an invalid header followed by non-zero bytes, even at the tail. */
static void test_corrupt_garbage_header(void **state)
{
	struct image im;
	struct wal_scanner s;
	int n;

	(void)state;
	build(&im);
	memset(im.buf + im.len, 0, 64);
	im.buf[im.len + 50] = 7;
	assert_int_equal(scan(im.buf, im.len + 64, 10, &s, &n), WAL_SCAN_CORRUPT);
	assert_int_equal(n, NREC);
	assert_int_equal(s.offset, im.len);
	assert_string_equal(s.reason, "bad record header");
	/* A non-zero reserved word makes the header invalid. */
	build(&im);
	im.buf[im.offset[1] + 28] = 1;
	assert_int_equal(scan(im.buf, im.len, 10, &s, &n), WAL_SCAN_CORRUPT);
	assert_int_equal(s.offset, im.offset[1]);
}

/* Corrupt: an index that does not follow the previous one. */
static void test_corrupt_index_gap(void **state)
{
	struct image im;
	struct wal_scanner s;
	int n;

	(void)state;
	build(&im);
	assert_int_equal(scan(im.buf, im.len, 9, &s, &n), WAL_SCAN_CORRUPT);
	assert_int_equal(n, 0);
	assert_int_equal(s.offset, WAL_SEGMENT_HEADER_SIZE);
	/* Record 3 claims index 99, with a consistent header CRC. */
	im.buf[im.offset[3] + 8] = 99;
	reseal_header(im.buf + im.offset[3]);
	assert_int_equal(scan(im.buf, im.len, 10, &s, &n), WAL_SCAN_CORRUPT);
	assert_int_equal(n, 3);
	assert_int_equal(s.offset, im.offset[3]);
	/* Even at the tail and cut short: a whole header with a wrong index is
	 * not an interrupted append. */
	assert_int_equal(scan(im.buf, im.offset[4] - 1, 10, &s, &n), WAL_SCAN_CORRUPT);
	assert_int_equal(s.offset, im.offset[3]);
}

/* Corrupt: index 0 is no log position; after UINT64_MAX the chain check
 * would wrap to "any index". */
static void test_corrupt_index_out_of_range(void **state)
{
	struct image im;
	struct wal_scanner s;
	uint32_t payload_len;
	int n;

	(void)state;
	build(&im);
	payload_len = (uint32_t)(im.offset[1] - im.offset[0] - WAL_RECORD_HEADER_SIZE);
	memset(im.buf + im.offset[0] + 8, 0, 8);
	reseal_record(im.buf + im.offset[0], payload_len);
	assert_int_equal(scan(im.buf, im.len, 0, &s, &n), WAL_SCAN_CORRUPT);
	assert_int_equal(n, 0);
	assert_string_equal(s.reason, "record index out of range");
	memset(im.buf + im.offset[0] + 8, 0xff, 8);
	reseal_record(im.buf + im.offset[0], payload_len);
	assert_int_equal(scan(im.buf, im.len, 0, &s, &n), WAL_SCAN_CORRUPT);
	assert_int_equal(s.offset, im.offset[0]);
	assert_string_equal(s.reason, "record index out of range");
}

/* Corrupt: payload_len above WAL_MAX_PAYLOAD, even with a good header CRC. */
static void test_corrupt_oversized_payload(void **state)
{
	struct image im;
	struct wal_scanner s;
	uint32_t len = WAL_MAX_PAYLOAD + 1;
	int n;

	(void)state;
	build(&im);
	for (int i = 0; i < 4; i++)
		im.buf[im.offset[NREC - 1] + i] = (uint8_t)(len >> (8 * i));
	reseal_header(im.buf + im.offset[NREC - 1]);
	assert_int_equal(scan(im.buf, im.len, 10, &s, &n), WAL_SCAN_CORRUPT);
	assert_int_equal(s.offset, im.offset[NREC - 1]);
}

static void test_short_buffer_is_empty(void **state)
{
	struct wal_scanner s;
	struct wal_record r;
	uint8_t buf[8] = { 0 };

	(void)state;
	wal_scanner_init(&s, buf, sizeof(buf), 0);
	assert_int_equal(wal_scanner_next(&s, &r), WAL_SCAN_END);
	wal_scanner_init(&s, NULL, 0, 0);
	assert_int_equal(wal_scanner_next(&s, &r), WAL_SCAN_END);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_segment_header),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_empty_payload),
		cmocka_unit_test(test_torn_every_cut_of_last_record),
		cmocka_unit_test(test_end_zero_tail),
		cmocka_unit_test(test_torn_every_cut_zero_filled),
		cmocka_unit_test(test_torn_bad_crc_last_record),
		cmocka_unit_test(test_corrupt_middle_record),
		cmocka_unit_test(test_bad_crc_then_zeros),
		cmocka_unit_test(test_corrupt_garbage_header),
		cmocka_unit_test(test_corrupt_index_gap),
		cmocka_unit_test(test_corrupt_index_out_of_range),
		cmocka_unit_test(test_corrupt_oversized_payload),
		cmocka_unit_test(test_short_buffer_is_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
