/*
 * Tests of proto/frame_backup.c: the backup request and answer survive a
 * round trip through the real codec, and an answer's untrusted parts (file
 * names, data) are refused or bounded, never read past the payload.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/errors.h"
#include "proto/frame.h"
#include "proto/frame_backup.h"
#include "ringkv.pb.h"

struct seen {
	char names[8][FRAME_BACKUP_NAME_MAX + 1];
	uint64_t sizes[8];
	int n;
	int stop_at;                  /* return non-zero at this file (-1: never) */
};

static int on_file(void *arg, const struct frame_backup_file *f)
{
	struct seen *s = arg;

	if (s->n == s->stop_at)
		return 77;
	memcpy(s->names[s->n], f->name.data, f->name.len);
	s->names[s->n][f->name.len] = '\0';
	s->sizes[s->n++] = f->size;
	return 0;
}

static void test_request_round_trip(void **state)
{
	struct frame_request in = { .id = 42, .op = FRAME_OP_BACKUP, .no_forward = true,
				    .backup = { .op = ringkv_BackupOp_BACKUP_READ,
						.backup_id = 0x0000000300000009ull, .file = 2,
						.offset = 1ull << 33, .length = 1u << 20 } };
	struct frame_request out;
	struct frame_limits l;
	uint8_t buf[256];
	int n;

	(void)state;
	frame_limits_default(&l);
	n = frame_encode_request(&in, buf, sizeof buf);
	assert_true(n > FRAME_HEADER_SIZE);
	assert_int_equal(frame_decode_request(buf + FRAME_HEADER_SIZE, (size_t)n - FRAME_HEADER_SIZE,
					      &l, &out, NULL, 0), 0);
	assert_int_equal(out.op, FRAME_OP_BACKUP);
	assert_int_equal(out.id, 42);
	assert_true(out.no_forward);
	assert_int_equal(out.backup.op, ringkv_BackupOp_BACKUP_READ);
	assert_int_equal(out.backup.backup_id, in.backup.backup_id);
	assert_int_equal(out.backup.file, 2);
	assert_int_equal(out.backup.offset, in.backup.offset);
	assert_int_equal(out.backup.length, 1u << 20);
}

/* What frame_decode_backup_answer gives back. */
struct decoded {
	struct frame_backup got;
	struct frame_slice error;
	uint64_t id;
	int status, has;
};

static int decode(const uint8_t *p, size_t len, struct decoded *d, struct seen *seen)
{
	return frame_decode_backup_answer(p, len, &d->id, &d->status, &d->error, &d->got, &d->has,
					  seen ? on_file : NULL, seen);
}

static int encode(const struct frame_response *r, uint8_t **out)
{
	size_t cap = frame_response_max_size(r);
	int n;

	*out = malloc(cap);
	assert_non_null(*out);
	n = frame_encode_response(r, *out, cap);
	assert_true(n > FRAME_HEADER_SIZE);
	return n;
}

static void test_begin_answer_round_trip(void **state)
{
	const struct frame_backup_file files[] = {
		{ { (const uint8_t *)"000007.sst", 10 }, 123456 },
		{ { (const uint8_t *)"MANIFEST", 8 }, 321 },
	};
	struct frame_backup b = { .backup_id = 77, .shard = 3, .index = 900, .term = 4,
				  .files = files, .file_count = 2 };
	struct frame_response r = { .id = 11, .status = ringkv_Status_OK, .backup = &b };
	struct seen seen = { .stop_at = -1 };
	struct decoded d;
	uint8_t *buf;
	int n;

	(void)state;
	n = encode(&r, &buf);
	/* Exact-size copy: a read past the end is caught by ASan. */
	uint8_t *exact = malloc((size_t)n - FRAME_HEADER_SIZE);

	memcpy(exact, buf + FRAME_HEADER_SIZE, (size_t)n - FRAME_HEADER_SIZE);
	assert_int_equal(decode(exact, (size_t)n - FRAME_HEADER_SIZE, &d, &seen), 0);
	assert_int_equal(d.id, 11);
	assert_int_equal(d.status, ringkv_Status_OK);
	assert_true(d.has);
	assert_int_equal(d.got.backup_id, 77);
	assert_int_equal(d.got.shard, 3);
	assert_int_equal(d.got.index, 900);
	assert_int_equal(d.got.term, 4);
	assert_int_equal(seen.n, 2);
	assert_string_equal(seen.names[0], "000007.sst");
	assert_int_equal(seen.sizes[0], 123456);
	assert_string_equal(seen.names[1], "MANIFEST");
	/* A handler's stop code comes back as the result. */
	seen = (struct seen){ .stop_at = 1 };
	assert_int_equal(decode(exact, (size_t)n - FRAME_HEADER_SIZE, &d, &seen), 77);
	free(exact);
	free(buf);
}

static void test_read_answer_and_others(void **state)
{
	static const uint8_t data[] = "table bytes";
	struct frame_backup b = { .backup_id = 5, .shard = 1,
				  .data = { data, sizeof data }, .crc32c = 0xdeadbeef };
	struct frame_response r = { .id = 12, .status = ringkv_Status_OK, .backup = &b };
	struct frame_response plain = { .id = 13, .status = ringkv_Status_NOT_FOUND,
					.error = "no such backup" };
	struct frame_slice value;
	struct decoded d;
	uint8_t *buf;
	int n;

	(void)state;
	n = encode(&r, &buf);
	assert_int_equal(decode(buf + FRAME_HEADER_SIZE, (size_t)n - FRAME_HEADER_SIZE, &d, NULL), 0);
	assert_true(d.has);
	assert_int_equal(d.got.data.len, sizeof data);
	assert_memory_equal(d.got.data.data, data, sizeof data);
	assert_int_equal(d.got.crc32c, 0xdeadbeef);
	/* The older decoders skip the backup part. */
	assert_int_equal(frame_decode_response(buf + FRAME_HEADER_SIZE,
					       (size_t)n - FRAME_HEADER_SIZE, &d.id, &d.status,
					       &value, &d.error), 0);
	assert_int_equal(d.id, 12);
	free(buf);
	/* An answer without a backup part says so. */
	n = encode(&plain, &buf);
	assert_int_equal(decode(buf + FRAME_HEADER_SIZE, (size_t)n - FRAME_HEADER_SIZE, &d, NULL), 0);
	assert_false(d.has);
	assert_int_equal(d.status, ringkv_Status_NOT_FOUND);
	assert_int_equal(d.error.len, strlen("no such backup"));
	free(buf);
}

static void test_bad_names_refused(void **state)
{
	char longname[FRAME_BACKUP_NAME_MAX + 2];
	struct frame_backup_file files[1];
	struct frame_backup b = { .backup_id = 1, .files = files, .file_count = 1 };
	struct frame_response r = { .id = 1, .backup = &b };
	struct seen seen = { .stop_at = -1 };
	struct decoded d;
	uint8_t *buf;
	int n;

	(void)state;
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	files[0] = (struct frame_backup_file){ { (const uint8_t *)longname,
						 (uint32_t)strlen(longname) }, 1 };
	n = encode(&r, &buf);
	assert_int_equal(decode(buf + FRAME_HEADER_SIZE, (size_t)n - FRAME_HEADER_SIZE, &d, &seen),
			 RKV_EPROTO);
	assert_int_equal(seen.n, 0);
	/* Cut anywhere: refused or decoded, never read past the end. */
	for (int cut = 1; cut < n - FRAME_HEADER_SIZE; cut++) {
		uint8_t *part = malloc((size_t)cut);

		memcpy(part, buf + FRAME_HEADER_SIZE, (size_t)cut);
		seen = (struct seen){ .stop_at = -1 };
		(void)decode(part, (size_t)cut, &d, &seen);
		free(part);
	}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_round_trip),
		cmocka_unit_test(test_begin_answer_round_trip),
		cmocka_unit_test(test_read_answer_and_others),
		cmocka_unit_test(test_bad_names_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
