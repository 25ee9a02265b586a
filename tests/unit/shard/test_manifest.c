/*
 * Tests for shard/manifest.c: replay after each edit equals the live
 * version, torn tails at every cut, corruption in the middle with its
 * offset, the level invariants, and snapshots that replay to the same
 * version.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/errors.h"
#include "shard/crc32c.h"
#include "shard/manifest.h"

/* A file whose key range is ["a<lo>", "a<hi>"] (3-digit numbers). */
struct keyed_file {
	struct manifest_file f;
	char smallest[16];
	char largest[16];
};

static struct manifest_file *mkfile(struct keyed_file *k, uint32_t level, uint64_t number,
				    unsigned lo, unsigned hi)
{
	snprintf(k->smallest, sizeof(k->smallest), "a%03u", lo);
	snprintf(k->largest, sizeof(k->largest), "a%03u", hi);
	k->f = (struct manifest_file){
		.level = level,
		.number = number,
		.size = 1000 * number,
		.entry_count = 10 * number,
		.smallest = (const uint8_t *)k->smallest,
		.smallest_len = 4,
		.largest = (const uint8_t *)k->largest,
		.largest_len = 4,
	};
	return &k->f;
}

static void assert_versions_equal(const struct manifest_version *a,
				  const struct manifest_version *b)
{
	assert_int_equal(a->next_file_number, b->next_file_number);
	assert_int_equal(a->flushed_index, b->flushed_index);
	for (int l = 0; l < MANIFEST_LEVELS; l++) {
		const struct manifest_level *x = &a->levels[l], *y = &b->levels[l];

		assert_int_equal(x->count, y->count);
		assert_int_equal(x->bytes, y->bytes);
		for (size_t i = 0; i < x->count; i++) {
			const struct manifest_file *f = &x->files[i], *g = &y->files[i];

			assert_int_equal(f->level, g->level);
			assert_int_equal(f->number, g->number);
			assert_int_equal(f->size, g->size);
			assert_int_equal(f->entry_count, g->entry_count);
			assert_int_equal(f->smallest_len, g->smallest_len);
			assert_memory_equal(f->smallest, g->smallest, f->smallest_len);
			assert_int_equal(f->largest_len, g->largest_len);
			assert_memory_equal(f->largest, g->largest, f->largest_len);
		}
	}
}

/* A manifest image and the live version it should replay to. */
struct log {
	struct sstable_buf file;
	struct manifest_version live;
	size_t record_start[16];
	size_t nrecords;
};

static void append(struct log *lg, const struct manifest_edit *e)
{
	size_t size = manifest_edit_size(e);

	assert_int_equal(sstable_buf_reserve(&lg->file, size), 0);
	lg->record_start[lg->nrecords++] = lg->file.len;
	assert_int_equal(manifest_edit_encode(e, lg->file.data + lg->file.len), size);
	lg->file.len += size;
	assert_int_equal(manifest_version_apply(&lg->live, e, NULL), 0);
}

static void replay_ok(const uint8_t *buf, size_t len, struct manifest_version *v,
		      struct manifest_replay *r)
{
	manifest_version_init(v);
	assert_int_equal(manifest_replay(v, buf, len, r), 0);
}

/* Flush three L0 files, compact them into L1, move one to L2. */
static void history(struct log *lg, bool check_each)
{
	struct keyed_file k[4];
	struct manifest_file_id del[4];
	struct manifest_version v;
	struct manifest_replay r;

	memset(lg, 0, sizeof(*lg));
	manifest_version_init(&lg->live);
	assert_int_equal(sstable_buf_reserve(&lg->file, MANIFEST_HEADER_SIZE), 0);
	manifest_header_encode(lg->file.data);
	lg->file.len = MANIFEST_HEADER_SIZE;

	for (uint64_t n = 1; n <= 3; n++) {
		struct manifest_edit e = {
			.has_next_file_number = true, .next_file_number = n + 1,
			.has_flushed_index = true, .flushed_index = 100 * n,
			.added = mkfile(&k[0], 0, n, (unsigned)n * 10, 500 - (unsigned)n), .nadded = 1,
		};
		append(lg, &e);
		if (check_each) {
			replay_ok(lg->file.data, lg->file.len, &v, &r);
			assert_false(r.torn);
			assert_int_equal(r.records, n);
			assert_int_equal(r.valid_len, lg->file.len);
			assert_versions_equal(&v, &lg->live);
			manifest_version_destroy(&v);
		}
	}
	/* L0 newest first. */
	assert_int_equal(lg->live.levels[0].files[0].number, 3);
	assert_int_equal(lg->live.levels[0].files[2].number, 1);

	/* Compaction L0 -> L1: three inputs out, three outputs in (given out of order). */
	for (int i = 0; i < 3; i++)
		del[i] = (struct manifest_file_id){ .level = 0, .number = (uint64_t)i + 1 };
	mkfile(&k[0], 1, 6, 300, 499);
	mkfile(&k[1], 1, 4, 10, 99);
	mkfile(&k[2], 1, 5, 100, 299);
	struct manifest_file added[3] = { k[0].f, k[1].f, k[2].f };
	struct manifest_edit c = {
		.has_next_file_number = true, .next_file_number = 7,
		.deleted = del, .ndeleted = 3, .added = added, .nadded = 3,
	};
	append(lg, &c);
	assert_int_equal(lg->live.levels[0].count, 0);
	assert_int_equal(lg->live.levels[1].count, 3);
	assert_int_equal(lg->live.levels[1].files[0].number, 4); /* by smallest key */
	assert_int_equal(lg->live.levels[1].files[2].number, 6);
	assert_int_equal(lg->live.levels[1].bytes, 15000);

	/* Trivial move of file 5 to L2. */
	del[0] = (struct manifest_file_id){ .level = 1, .number = 5 };
	struct manifest_edit m = { .deleted = del, .ndeleted = 1,
				   .added = mkfile(&k[3], 2, 5, 100, 299), .nadded = 1 };
	append(lg, &m);
	if (check_each) {
		replay_ok(lg->file.data, lg->file.len, &v, &r);
		assert_versions_equal(&v, &lg->live);
		manifest_version_destroy(&v);
	}
}

static void free_log(struct log *lg)
{
	manifest_version_destroy(&lg->live);
	sstable_buf_free(&lg->file);
}

static void test_replay_each_edit(void **state)
{
	struct log lg;

	(void)state;
	history(&lg, true);
	assert_int_equal(lg.live.next_file_number, 7);
	assert_int_equal(lg.live.flushed_index, 300);
	free_log(&lg);
}

static void test_torn_tail(void **state)
{
	struct log lg;
	struct manifest_version v, prefix;
	struct manifest_replay r;
	size_t last;

	(void)state;
	history(&lg, false);
	last = lg.record_start[lg.nrecords - 1];
	/* The version of every record but the last. */
	replay_ok(lg.file.data, last, &prefix, &r);
	assert_false(r.torn);
	for (size_t cut = last + 1; cut < lg.file.len; cut++) {
		replay_ok(lg.file.data, cut, &v, &r);
		assert_true(r.torn);
		assert_int_equal(r.valid_len, last);
		assert_int_equal(r.records, lg.nrecords - 1);
		assert_versions_equal(&v, &prefix);
		manifest_version_destroy(&v);
	}
	/* A whole last record with a bad payload CRC at the very end: torn. */
	lg.file.data[lg.file.len - 1] ^= 1;
	replay_ok(lg.file.data, lg.file.len, &v, &r);
	assert_true(r.torn);
	assert_int_equal(r.valid_len, last);
	manifest_version_destroy(&v);
	lg.file.data[lg.file.len - 1] ^= 1;
	/* Zeros after the last record (preallocated space): torn, nothing lost. */
	assert_int_equal(sstable_buf_reserve(&lg.file, 100), 0);
	memset(lg.file.data + lg.file.len, 0, 100);
	replay_ok(lg.file.data, lg.file.len + 100, &v, &r);
	assert_true(r.torn);
	assert_int_equal(r.valid_len, lg.file.len);
	assert_versions_equal(&v, &lg.live);
	manifest_version_destroy(&v);
	manifest_version_destroy(&prefix);
	free_log(&lg);
}

static void test_mid_corruption(void **state)
{
	struct log lg;
	struct manifest_version v;
	struct manifest_replay r;

	(void)state;
	history(&lg, false);
	/* Every byte of every record but the last, flipped. */
	for (size_t rec = 0; rec + 1 < lg.nrecords; rec++) {
		for (size_t i = lg.record_start[rec]; i < lg.record_start[rec + 1]; i++) {
			lg.file.data[i] ^= 0x20;
			manifest_version_init(&v);
			assert_int_equal(manifest_replay(&v, lg.file.data, lg.file.len, &r),
					 RKV_ECORRUPT);
			assert_int_equal(r.offset, lg.record_start[rec]);
			assert_non_null(r.reason);
			manifest_version_destroy(&v);
			lg.file.data[i] ^= 0x20;
		}
	}
	/* Header damage, short files. */
	for (size_t i = 0; i < MANIFEST_HEADER_SIZE; i++) {
		lg.file.data[i] ^= 1;
		manifest_version_init(&v);
		assert_int_equal(manifest_replay(&v, lg.file.data, lg.file.len, &r), RKV_ECORRUPT);
		assert_int_equal(r.offset, 0);
		manifest_version_destroy(&v);
		lg.file.data[i] ^= 1;
	}
	for (size_t len = 0; len < MANIFEST_HEADER_SIZE; len++) {
		manifest_version_init(&v);
		assert_int_equal(manifest_replay(&v, lg.file.data, len, &r), RKV_ECORRUPT);
		manifest_version_destroy(&v);
	}
	free_log(&lg);
}

/* Replays header + one record holding `e`; returns the verdict. */
static int replay_one(struct manifest_version *v, const struct manifest_edit *e,
		      const char **reason)
{
	uint8_t buf[4096];
	struct manifest_replay r;
	int rv;

	manifest_header_encode(buf);
	assert_true(MANIFEST_HEADER_SIZE + manifest_edit_size(e) <= sizeof(buf));
	size_t len = MANIFEST_HEADER_SIZE + manifest_edit_encode(e, buf + MANIFEST_HEADER_SIZE);
	rv = manifest_replay(v, buf, len, &r);
	*reason = r.reason;
	return rv;
}

static void test_invariants(void **state)
{
	struct keyed_file k[3];
	struct manifest_file files[3];
	struct manifest_file_id del = { .level = 1, .number = 9 };
	struct manifest_version v;
	const char *reason;

	(void)state;
	/* Overlapping files in L1. */
	files[0] = *mkfile(&k[0], 1, 1, 10, 50);
	files[1] = *mkfile(&k[1], 1, 2, 50, 90);
	struct manifest_edit overlap = { .has_next_file_number = true, .next_file_number = 3,
					 .added = files, .nadded = 2 };
	manifest_version_init(&v);
	assert_int_equal(replay_one(&v, &overlap, &reason), RKV_ECORRUPT);
	assert_string_equal(reason, "files of a level >= 1 overlap");
	manifest_version_destroy(&v);
	/* The same in L0 is fine. */
	files[0].level = files[1].level = 0;
	manifest_version_init(&v);
	assert_int_equal(replay_one(&v, &overlap, &reason), 0);
	manifest_version_destroy(&v);
	/* Delete of an absent file. */
	struct manifest_edit d = { .deleted = &del, .ndeleted = 1 };
	manifest_version_init(&v);
	assert_int_equal(replay_one(&v, &d, &reason), RKV_ECORRUPT);
	manifest_version_destroy(&v);
	/* File number not below next file number. */
	struct manifest_edit n = { .added = mkfile(&k[2], 2, 5, 1, 2), .nadded = 1 };
	manifest_version_init(&v);
	assert_int_equal(replay_one(&v, &n, &reason), RKV_ECORRUPT);
	manifest_version_destroy(&v);
	/* Smallest above largest; level out of range; duplicate number. */
	struct manifest_edit bad = { .has_next_file_number = true, .next_file_number = 10,
				     .added = mkfile(&k[2], 2, 5, 9, 2), .nadded = 1 };
	manifest_version_init(&v);
	assert_int_equal(replay_one(&v, &bad, &reason), RKV_ECORRUPT);
	manifest_version_destroy(&v);
	mkfile(&k[2], MANIFEST_LEVELS, 5, 1, 2);
	manifest_version_init(&v);
	assert_int_equal(replay_one(&v, &bad, &reason), RKV_ECORRUPT);
	assert_string_equal(reason, "level out of range");
	manifest_version_destroy(&v);
	files[0] = *mkfile(&k[0], 3, 4, 10, 20);
	files[1] = *mkfile(&k[1], 3, 4, 30, 40);
	struct manifest_edit dup = { .has_next_file_number = true, .next_file_number = 10,
				     .added = files, .nadded = 2 };
	manifest_version_init(&v);
	assert_int_equal(replay_one(&v, &dup, &reason), RKV_ECORRUPT);
	manifest_version_destroy(&v);
	/* Live apply reports the same. */
	manifest_version_init(&v);
	assert_int_equal(manifest_version_apply(&v, &dup, &reason), RKV_ECORRUPT);
	manifest_version_destroy(&v);
}

static void test_unknown_item(void **state)
{
	uint8_t buf[64];
	uint8_t *rec = buf + MANIFEST_HEADER_SIZE;
	uint8_t *payload = rec + MANIFEST_RECORD_HEADER_SIZE;
	struct manifest_version v;
	struct manifest_replay r;

	(void)state;
	/* A well-sealed record whose payload is item 99: corrupt, not torn. */
	manifest_header_encode(buf);
	payload[0] = 99;
	payload[1] = 5;
	sstable_put_u32(rec, 2);
	sstable_put_u32(rec + 4, crc32c(0, payload, 2));
	sstable_put_u32(rec + 8, crc32c(0, rec, 8));
	sstable_put_u32(rec + 12, 0);
	manifest_version_init(&v);
	assert_int_equal(manifest_replay(&v, buf, (size_t)(payload + 2 - buf), &r), RKV_ECORRUPT);
	assert_string_equal(r.reason, "unknown manifest item");
	assert_int_equal(r.offset, MANIFEST_HEADER_SIZE);
	manifest_version_destroy(&v);
}

static void test_snapshot(void **state)
{
	struct log lg;
	struct sstable_buf snap = { 0 };
	struct manifest_version v, big;
	struct manifest_replay r;
	char key[2][128];

	(void)state;
	history(&lg, false);
	assert_int_equal(manifest_version_snapshot(&lg.live, &snap), 0);
	replay_ok(snap.data, snap.len, &v, &r);
	assert_false(r.torn);
	assert_versions_equal(&v, &lg.live);
	manifest_version_destroy(&v);
	free_log(&lg);

	/* Large enough to need several records. */
	manifest_version_init(&big);
	for (uint32_t i = 0; i < 6000; i++) {
		struct manifest_file f = { .level = 1 + i % 6, .number = i + 1, .size = i,
					   .entry_count = i };

		snprintf(key[0], sizeof(key[0]), "%08u-%0100u", i, 0);
		snprintf(key[1], sizeof(key[1]), "%08u-%0100u", i, 1);
		f.smallest = (const uint8_t *)key[0];
		f.smallest_len = (uint32_t)strlen(key[0]);
		f.largest = (const uint8_t *)key[1];
		f.largest_len = (uint32_t)strlen(key[1]);
		struct manifest_edit e = { .has_next_file_number = true,
					   .next_file_number = i + 2, .added = &f, .nadded = 1 };
		assert_int_equal(manifest_version_apply(&big, &e, NULL), 0);
	}
	snap.len = 0;
	assert_int_equal(manifest_version_snapshot(&big, &snap), 0);
	replay_ok(snap.data, snap.len, &v, &r);
	assert_true(r.records > 1);
	assert_versions_equal(&v, &big);
	manifest_version_destroy(&v);
	manifest_version_destroy(&big);
	sstable_buf_free(&snap);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay_each_edit),
		cmocka_unit_test(test_torn_tail),
		cmocka_unit_test(test_mid_corruption),
		cmocka_unit_test(test_invariants),
		cmocka_unit_test(test_unknown_item),
		cmocka_unit_test(test_snapshot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
