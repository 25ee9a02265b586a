/*
 * Tests for shard/wal_recover.c on real files in a mkdtemp directory:
 * multi-segment replay, gap detection, torn tails truncated (and the file
 * really shortened), corruption refused with the file and offset named and
 * nothing truncated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/errors.h"
#include "shard/wal_format.h"
#include "shard/wal_recover.h"

#define MAX_REPLAY 1000

struct replayed {
	uint64_t index[MAX_REPLAY];
	size_t count;
	uint64_t fail_at; /* return RKV_EINVAL when replaying this index */
};

static int replay_cb(void *arg, const struct wal_record *r)
{
	struct replayed *rp = arg;
	char want[64];
	int n = snprintf(want, sizeof(want), "record %" PRIu64, r->index);

	if (r->index == rp->fail_at)
		return RKV_EINVAL;
	assert_int_equal(r->payload_len, (uint32_t)n);
	assert_memory_equal(r->payload, want, (size_t)n);
	assert_true(rp->count < MAX_REPLAY);
	rp->index[rp->count++] = r->index;
	return 0;
}

struct fixture {
	char dir[64];
	struct replayed replayed;
	struct wal_recovery rec;
	char err[512];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/ringkv-test-wal-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	*state = f;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void seg_path(const struct fixture *f, uint64_t first, char *path, size_t len)
{
	assert_int_equal(wal_segment_path(path, len, f->dir, first), 0);
}

/*
 * Writes a segment holding records first..first+count-1. Record offsets go
 * to offsets[] (count + 1 entries, the last one the file size) if given.
 */
static void write_segment(const struct fixture *f, uint64_t first, uint64_t count,
			  size_t *offsets)
{
	static uint8_t buf[1 << 16];
	char path[4096];
	char payload[64];
	size_t len = WAL_SEGMENT_HEADER_SIZE;
	FILE *fp;

	wal_segment_header_encode(buf);
	for (uint64_t i = 0; i < count; i++) {
		struct wal_record r = { .index = first + i, .term = 1 };
		int n = snprintf(payload, sizeof(payload), "record %" PRIu64, first + i);

		r.payload = (const uint8_t *)payload;
		r.payload_len = (uint32_t)n;
		if (offsets != NULL)
			offsets[i] = len;
		assert_true(len + wal_record_size(r.payload_len) <= sizeof(buf));
		len += wal_record_encode(&r, buf + len);
	}
	if (offsets != NULL)
		offsets[count] = len;
	seg_path(f, first, path, sizeof(path));
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(buf, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void patch_byte(const char *path, off_t at, uint8_t xor_mask)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, at), 1);
	b ^= xor_mask;
	assert_int_equal(pwrite(fd, &b, 1, at), 1);
	close(fd);
}

static void append_bytes(const char *path, const void *bytes, size_t len)
{
	FILE *fp = fopen(path, "ab");

	assert_non_null(fp);
	assert_int_equal(fwrite(bytes, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static int recover(struct fixture *f)
{
	f->replayed.count = 0;
	return wal_recover(f->dir, replay_cb, &f->replayed, &f->rec, f->err,
			   sizeof(f->err));
}

static void assert_replayed_range(const struct fixture *f, uint64_t first, uint64_t last)
{
	assert_int_equal(f->replayed.count, last - first + 1);
	for (size_t i = 0; i < f->replayed.count; i++)
		assert_int_equal(f->replayed.index[i], first + i);
}

static void test_names(void **state)
{
	char path[64];
	uint64_t index;

	(void)state;
	assert_int_equal(wal_segment_path(path, sizeof(path), "/d", 42), 0);
	assert_string_equal(path, "/d/wal-00000000000000000042.log");
	assert_int_equal(wal_segment_path(path, 10, "/d", 42), -ENAMETOOLONG);
	assert_int_equal(wal_segment_name_parse("wal-00000000000000000042.log", &index), 0);
	assert_int_equal(index, 42);
	assert_int_equal(wal_segment_name_parse("wal-18446744073709551615.log", &index), 0);
	assert_int_equal(index, UINT64_MAX);
	assert_int_equal(wal_segment_name_parse("wal-18446744073709551616.log", &index), RKV_EINVAL);
	assert_int_equal(wal_segment_name_parse("wal-42.log", &index), RKV_EINVAL);
	assert_int_equal(wal_segment_name_parse("wal-0000000000000000004x.log", &index), RKV_EINVAL);
	assert_int_equal(wal_segment_name_parse("wal-00000000000000000042.log.tmp", &index), RKV_EINVAL);
	assert_int_equal(wal_segment_name_parse("sst-00000000000000000042.log", &index), RKV_EINVAL);
}

static void test_missing_dir_is_created(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	strcat(f->dir, "/a/b");
	assert_int_equal(recover(f), 0);
	assert_int_equal(stat(f->dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(f->rec.segments, 0);
	assert_int_equal(f->rec.first_index, 0);
	assert_int_equal(f->rec.last_index, 0);
	assert_string_equal(f->rec.last_segment, "");
	assert_int_equal(f->replayed.count, 0);
	f->dir[strlen(f->dir) - 4] = '\0'; /* teardown removes from the top */
}

static void test_multiple_segments(void **state)
{
	struct fixture *f = *state;
	size_t offsets[16];
	char path[4096];

	write_segment(f, 1, 10, NULL);
	write_segment(f, 11, 15, NULL);
	write_segment(f, 26, 5, offsets);
	/* Files that are not segments are left alone. */
	snprintf(path, sizeof(path), "%s/MANIFEST", f->dir);
	append_bytes(path, "junk", 4);
	snprintf(path, sizeof(path), "%s/wal-00000000000000000099.log.tmp", f->dir);
	append_bytes(path, "junk", 4);

	assert_int_equal(recover(f), 0);
	assert_string_equal(f->err, "");
	assert_replayed_range(f, 1, 30);
	assert_int_equal(f->rec.first_index, 1);
	assert_int_equal(f->rec.last_index, 30);
	assert_int_equal(f->rec.segments, 3);
	seg_path(f, 26, path, sizeof(path));
	assert_string_equal(f->rec.last_segment, path);
	assert_int_equal(f->rec.append_offset, offsets[5]);
	assert_int_equal(f->rec.torn_bytes, 0);
}

static void test_compacted_start(void **state)
{
	struct fixture *f = *state;

	write_segment(f, 101, 3, NULL);
	assert_int_equal(recover(f), 0);
	assert_replayed_range(f, 101, 103);
	assert_int_equal(f->rec.first_index, 101);
}

static void test_gap_between_segments(void **state)
{
	struct fixture *f = *state;
	char path[4096];
	off_t size;

	write_segment(f, 1, 10, NULL);
	write_segment(f, 12, 5, NULL);
	seg_path(f, 12, path, sizeof(path));
	size = file_size(path);
	assert_int_equal(recover(f), RKV_ECORRUPT);
	assert_non_null(strstr(f->err, "wal-00000000000000000012.log"));
	assert_non_null(strstr(f->err, "gap"));
	assert_int_equal(file_size(path), size);
}

static void test_overlap_between_segments(void **state)
{
	struct fixture *f = *state;

	write_segment(f, 1, 10, NULL);
	write_segment(f, 8, 5, NULL);
	assert_int_equal(recover(f), RKV_ECORRUPT);
	assert_non_null(strstr(f->err, "wal-00000000000000000008.log"));
}

static void test_empty_middle_segment(void **state)
{
	struct fixture *f = *state;

	write_segment(f, 1, 10, NULL);
	write_segment(f, 11, 0, NULL);
	write_segment(f, 12, 3, NULL);
	assert_int_equal(recover(f), RKV_ECORRUPT);
	assert_non_null(strstr(f->err, "wal-00000000000000000012.log"));
}

static void test_empty_last_segment(void **state)
{
	struct fixture *f = *state;
	char path[4096];

	write_segment(f, 1, 10, NULL);
	write_segment(f, 11, 0, NULL);
	assert_int_equal(recover(f), 0);
	assert_replayed_range(f, 1, 10);
	seg_path(f, 11, path, sizeof(path));
	assert_string_equal(f->rec.last_segment, path);
	assert_int_equal(f->rec.append_offset, WAL_SEGMENT_HEADER_SIZE);
	assert_int_equal(f->rec.segments, 2);
}

/* Every cut inside the last record of the last segment: truncated away. */
static void test_torn_tail_truncated(void **state)
{
	struct fixture *f = *state;
	size_t offsets[8];
	char path[4096];

	write_segment(f, 1, 4, NULL);
	seg_path(f, 5, path, sizeof(path));
	for (size_t cut = 1; cut < 40; cut += 3) {
		write_segment(f, 5, 6, offsets);
		assert_int_equal(truncate(path, (off_t)(offsets[6] - cut)), 0);
		assert_int_equal(recover(f), 0);
		assert_replayed_range(f, 1, 9);
		assert_int_equal(f->rec.torn_bytes, offsets[6] - cut - offsets[5]);
		assert_int_equal(f->rec.append_offset, offsets[5]);
		assert_int_equal(file_size(path), (off_t)offsets[5]);
		/* Recovery is idempotent: nothing more to cut the second time. */
		assert_int_equal(recover(f), 0);
		assert_int_equal(f->rec.torn_bytes, 0);
		assert_replayed_range(f, 1, 9);
	}
}

/* Zeros after the last record are preallocated space: kept, not torn, in
 * the last segment and in earlier ones. */
static void test_zero_tail_kept(void **state)
{
	struct fixture *f = *state;
	static const uint8_t zeros[4096];
	size_t offsets[8];
	char path[4096];

	write_segment(f, 1, 6, offsets);
	seg_path(f, 1, path, sizeof(path));
	append_bytes(path, zeros, sizeof(zeros));
	assert_int_equal(recover(f), 0);
	assert_replayed_range(f, 1, 6);
	assert_int_equal(f->rec.torn_bytes, 0);
	assert_int_equal(f->rec.append_offset, offsets[6]);
	assert_int_equal(file_size(path), (off_t)(offsets[6] + sizeof(zeros)));
	/* Segment 1 is no longer the last one: its zeros still end it. */
	write_segment(f, 7, 3, NULL);
	assert_int_equal(recover(f), 0);
	assert_replayed_range(f, 1, 9);
	assert_int_equal(f->rec.segments, 2);
}

/* A last record cut short inside preallocated space (the rest of it, and
 * everything after, zeros): torn, truncated away. */
static void test_torn_in_zero_tail_truncated(void **state)
{
	struct fixture *f = *state;
	static const uint8_t zeros[4096];
	size_t offsets[8];
	char path[4096];

	write_segment(f, 1, 6, offsets);
	seg_path(f, 1, path, sizeof(path));
	append_bytes(path, zeros, sizeof(zeros));
	for (off_t at = (off_t)offsets[5] + 20; at < (off_t)offsets[6]; at++) {
		int fd = open(path, O_RDWR);
		uint8_t b;

		assert_true(fd >= 0);
		assert_int_equal(pread(fd, &b, 1, at), 1);
		if (b != 0)
			patch_byte(path, at, b);
		close(fd);
	}
	assert_int_equal(recover(f), 0);
	assert_replayed_range(f, 1, 5);
	assert_int_equal(f->rec.append_offset, offsets[5]);
	assert_int_equal(file_size(path), (off_t)offsets[5]);
}

static void test_torn_bad_crc_at_end_truncated(void **state)
{
	struct fixture *f = *state;
	size_t offsets[8];
	char path[4096];

	write_segment(f, 1, 6, offsets);
	seg_path(f, 1, path, sizeof(path));
	patch_byte(path, (off_t)offsets[6] - 1, 0x20);
	assert_int_equal(recover(f), 0);
	assert_replayed_range(f, 1, 5);
	assert_int_equal(file_size(path), (off_t)offsets[5]);
	assert_int_equal(f->rec.append_offset, offsets[5]);
}

static void test_torn_in_earlier_segment_refused(void **state)
{
	struct fixture *f = *state;
	size_t offsets[8];
	char path[4096];
	char want[64];

	write_segment(f, 1, 6, offsets);
	write_segment(f, 7, 3, NULL);
	seg_path(f, 1, path, sizeof(path));
	assert_int_equal(truncate(path, (off_t)offsets[6] - 5), 0);
	assert_int_equal(recover(f), RKV_ECORRUPT);
	snprintf(want, sizeof(want), "offset %zu", offsets[5]);
	assert_non_null(strstr(f->err, "wal-00000000000000000001.log"));
	assert_non_null(strstr(f->err, want));
	assert_int_equal(file_size(path), (off_t)offsets[6] - 5);
}

/* A flipped byte in a middle record: refused, named, nothing truncated. */
static void test_mid_log_corruption(void **state)
{
	struct fixture *f = *state;
	size_t offsets[12];
	char path[4096];
	char want[64];
	off_t size;

	write_segment(f, 1, 5, NULL);
	write_segment(f, 6, 10, offsets);
	seg_path(f, 6, path, sizeof(path));
	size = file_size(path);
	/* Payload byte of the 4th record (index 9). */
	patch_byte(path, (off_t)offsets[3] + WAL_RECORD_HEADER_SIZE + 2, 0x01);
	assert_int_equal(recover(f), RKV_ECORRUPT);
	snprintf(want, sizeof(want), "offset %zu", offsets[3]);
	assert_non_null(strstr(f->err, "wal-00000000000000000006.log"));
	assert_non_null(strstr(f->err, want));
	assert_int_equal(file_size(path), size);
	assert_replayed_range(f, 1, 8);
	/* A header byte, same verdict. */
	patch_byte(path, (off_t)offsets[3] + WAL_RECORD_HEADER_SIZE + 2, 0x01);
	patch_byte(path, (off_t)offsets[3] + 9, 0x80);
	assert_int_equal(recover(f), RKV_ECORRUPT);
	assert_non_null(strstr(f->err, want));
	assert_int_equal(file_size(path), size);
}

/* Garbage after the last record is not a torn tail: refused. */
static void test_garbage_tail_refused(void **state)
{
	struct fixture *f = *state;
	char path[4096];
	uint8_t junk[100];
	off_t size;

	memset(junk, 0, sizeof(junk));
	junk[70] = 1;
	write_segment(f, 1, 3, NULL);
	seg_path(f, 1, path, sizeof(path));
	append_bytes(path, junk, sizeof(junk));
	size = file_size(path);
	assert_int_equal(recover(f), RKV_ECORRUPT);
	assert_int_equal(file_size(path), size);
}

static void test_torn_segment_header_rewritten(void **state)
{
	struct fixture *f = *state;
	uint8_t header[WAL_SEGMENT_HEADER_SIZE];
	char path[4096];
	uint8_t back[WAL_SEGMENT_HEADER_SIZE + 1];
	FILE *fp;

	write_segment(f, 1, 3, NULL);
	seg_path(f, 4, path, sizeof(path));
	wal_segment_header_encode(header);
	append_bytes(path, header, 7);
	assert_int_equal(recover(f), 0);
	assert_replayed_range(f, 1, 3);
	assert_string_equal(f->rec.last_segment, path);
	assert_int_equal(f->rec.append_offset, WAL_SEGMENT_HEADER_SIZE);
	assert_int_equal(f->rec.torn_bytes, 7);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fread(back, 1, sizeof(back), fp), WAL_SEGMENT_HEADER_SIZE);
	fclose(fp);
	assert_int_equal(wal_segment_header_check(back, WAL_SEGMENT_HEADER_SIZE), 0);
}

static void test_bad_segment_header_refused(void **state)
{
	struct fixture *f = *state;
	char path[4096];

	/* Not a prefix of a header: corrupt even in the last segment. */
	seg_path(f, 1, path, sizeof(path));
	append_bytes(path, "XYZ", 3);
	assert_int_equal(recover(f), RKV_ECORRUPT);
	assert_non_null(strstr(f->err, "wal-00000000000000000001.log"));
	assert_non_null(strstr(f->err, "offset 0"));
	assert_int_equal(file_size(path), 3);
	/* A bad header in an earlier segment. */
	assert_int_equal(unlink(path), 0);
	write_segment(f, 1, 3, NULL);
	write_segment(f, 4, 3, NULL);
	patch_byte(path, 2, 0xff);
	assert_int_equal(recover(f), RKV_ECORRUPT);
	assert_non_null(strstr(f->err, "wal-00000000000000000001.log"));
}

static void test_replay_error_stops(void **state)
{
	struct fixture *f = *state;

	write_segment(f, 1, 10, NULL);
	f->replayed.fail_at = 7;
	assert_int_equal(recover(f), RKV_EINVAL);
	assert_replayed_range(f, 1, 6);
	assert_non_null(strstr(f->err, "wal-00000000000000000001.log"));
	assert_non_null(strstr(f->err, "index 7"));
}

static void test_not_a_directory(void **state)
{
	struct fixture *f = *state;
	char path[4096];

	snprintf(path, sizeof(path), "%s/file", f->dir);
	append_bytes(path, "x", 1);
	f->replayed.count = 0;
	assert_int_equal(wal_recover(path, replay_cb, &f->replayed, &f->rec, f->err,
				     sizeof(f->err)), -ENOTDIR);
	assert_non_null(strstr(f->err, path));
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		T(test_missing_dir_is_created),
		T(test_multiple_segments),
		T(test_compacted_start),
		T(test_gap_between_segments),
		T(test_overlap_between_segments),
		T(test_empty_middle_segment),
		T(test_empty_last_segment),
		T(test_torn_tail_truncated),
		T(test_zero_tail_kept),
		T(test_torn_in_zero_tail_truncated),
		T(test_torn_bad_crc_at_end_truncated),
		T(test_torn_in_earlier_segment_refused),
		T(test_mid_log_corruption),
		T(test_garbage_tail_refused),
		T(test_torn_segment_header_rewritten),
		T(test_bad_segment_header_refused),
		T(test_replay_error_stops),
		T(test_not_a_directory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
