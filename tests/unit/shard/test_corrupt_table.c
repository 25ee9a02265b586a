/*
 * A table with a damaged data block under a shard taking writes (issue 14,
 * shard/shard_damage.c), on a real shard and ring: compaction hits the
 * block, the table is marked damaged (and the mark reaches the manifest),
 * level 0 grows only to its limit and then writes are refused with
 * RKV_ECORRUPT (never left to wait or grow), reads of other keys go on and
 * a read of the damaged block answers RKV_ECORRUPT, and a restart knows the
 * damage before reading anything. Plus the manifest's item 5 round trip.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/errors.h"
#include "io/ring.h"
#include "shard/block_cache.h"
#include "shard/manifest.h"
#include "shard/sstable.h"
#include "shard/shard.h"
#include "shard_test.h"

struct fixture {
	char dir[64];
	struct io_ring io;
	struct block_cache *cache;
	struct shard *s;
};

static void open_shard(struct fixture *f)
{
	struct block_cache_options copt = { .capacity = 256 << 10 };
	struct shard_config cfg = {
		.id = 7, .dir = f->dir, .memtable_size = 32 << 10,
		.table_size = 32 << 10, .level_base = 16 << 10, .block_size = 1024,
		.stall_limit = 16 << 10,
	};
	char err[1024];

	/* A fresh cache each time: a block must come from the disk. */
	assert_int_equal(block_cache_create(&f->cache, &copt), 0);
	cfg.cache = f->cache;
	if (shard_open(&f->s, &cfg, &f->io, err, sizeof err))
		fail_msg("shard_open: %s", err);
}

static void close_shard(struct fixture *f)
{
	shard_close(f->s);
	f->s = NULL;
	block_cache_destroy(f->cache);
	f->cache = NULL;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[256];

	strcpy(f->dir, "/tmp/ringkv-corrupt-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(io_ring_init(&f->io, 256, err, sizeof err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	if (f->s)
		close_shard(f);
	io_ring_exit(&f->io);
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void turn(struct fixture *f)
{
	shard_test_turn(f->s, &f->io);
}

static void settle(struct fixture *f)
{
	shard_test_settle(f->s, &f->io);
}

/* One PUT: its answer within a bound of loop turns, or 1 when it still
 * waits then. */
static int put(struct fixture *f, const char *key, const char *value)
{
	struct waiter w = { .w.done = on_done };
	struct command c = put_cmd(key, value);
	int rv = shard_write(f->s, &c, &w.w);

	if (rv)
		return rv;
	for (int i = 0; i < 100000 && !w.done; i++)
		turn(f);
	return w.done ? w.rv : 1;
}

static const char *value200(void)
{
	static char v[200];

	memset(v, 'v', sizeof v - 1);
	return v;
}

static void fill_until_flushes(struct fixture *f, const char *prefix, uint64_t flushes)
{
	struct shard_stats st;
	char key[32];

	for (unsigned i = 0; i < 100000; i++) {
		shard_get_stats(f->s, &st);
		if (st.flushes >= flushes)
			break;
		snprintf(key, sizeof key, "%s%05u", prefix, i);
		assert_int_equal(put(f, key, value200()), 0);
	}
	settle(f);
}

static unsigned level0(struct fixture *f)
{
	unsigned counts[7];

	shard_level_files(f->s, counts, 7);
	return counts[0];
}

/* Flips bytes inside the first data block of table `number`. */
static void damage_table(struct fixture *f, uint64_t number)
{
	char path[128];
	uint8_t junk[16];
	int fd;

	snprintf(path, sizeof path, "%s/%06llu.sst", f->dir, (unsigned long long)number);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, junk, sizeof junk, 100), (ssize_t)sizeof junk);
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] ^= 0x5a;
	assert_int_equal(pwrite(fd, junk, sizeof junk, 100), (ssize_t)sizeof junk);
	close(fd);
}

static int get(struct fixture *f, const char *key)
{
	struct get_result g;

	return shard_test_get(f->s, &f->io, key, &g);
}

static void test_damaged_block_bounded_reported_remembered(void **state)
{
	struct fixture *f = *state;
	char key[32];
	int rv = 0;
	unsigned i, max_l0 = 0;

	open_shard(f);
	fill_until_flushes(f, "a", 2);   /* two L0 tables: a00000.. first */
	assert_int_equal(level0(f), 2);
	close_shard(f);
	damage_table(f, 1);              /* the oldest: a00000 is in block 0 */
	open_shard(f);
	assert_int_equal(shard_damaged_tables(f->s), 0); /* not read yet */

	/* More writes: at 4 L0 files compaction reads table 1 and stops. */
	for (i = 0; i < 20000; i++) {
		snprintf(key, sizeof key, "b%05u", i);
		rv = put(f, key, value200());
		if (level0(f) > max_l0)
			max_l0 = level0(f);
		if (rv != 0)
			break;
	}
	assert_int_equal(rv, RKV_ECORRUPT);      /* refused, named, not left waiting */
	assert_true(i > 0);
	assert_int_equal(shard_damaged_tables(f->s), 1);
	assert_int_equal(shard_damaged_table(f->s, 0), 1);
	assert_true(shard_writes_refused(f->s));
	assert_true(max_l0 <= 12);               /* 3 x the L0 trigger, not 57 */
	assert_true(level0(f) >= 4);
	settle(f);                               /* the mark reaches the manifest */
	/* Reads go on around it: a key of the damaged block is DATA_LOSS,
	 * never a wrong value or "not found"; the others are served. */
	assert_int_equal(get(f, "a00000"), RKV_ECORRUPT);
	assert_int_equal(get(f, "b00000"), 0);
	snprintf(key, sizeof key, "b%05u", i - 1);
	assert_int_equal(get(f, key), 0);
	/* Further writes: refused at once, every time. */
	assert_int_equal(put(f, "c", "1"), RKV_ECORRUPT);
	close_shard(f);

	/* A restart knows it before any read. */
	open_shard(f);
	assert_int_equal(shard_damaged_tables(f->s), 1);
	assert_int_equal(shard_damaged_table(f->s, 0), 1);
	assert_true(shard_writes_refused(f->s));
	assert_int_equal(put(f, "c", "1"), RKV_ECORRUPT);
	assert_int_equal(get(f, "b00001"), 0);
	assert_int_equal(get(f, "a00000"), RKV_ECORRUPT);
	settle(f);                               /* no compaction retried */
	assert_int_equal(shard_damaged_tables(f->s), 1);
}

/* Before level 0 is full, a damaged table stops compaction only: writes go
 * on, and the mark made by a read survives a restart. */
static void test_read_marks_writes_go_on(void **state)
{
	struct fixture *f = *state;
	struct shard_stats st;

	open_shard(f);
	fill_until_flushes(f, "a", 1);
	close_shard(f);
	damage_table(f, 1);
	open_shard(f);
	assert_int_equal(get(f, "a00000"), RKV_ECORRUPT);
	assert_int_equal(shard_damaged_tables(f->s), 1);
	assert_false(shard_writes_refused(f->s));
	assert_int_equal(put(f, "c", "1"), 0);
	settle(f);
	close_shard(f);
	open_shard(f);
	assert_int_equal(shard_damaged_tables(f->s), 1);
	shard_get_stats(f->s, &st);
	assert_int_equal(put(f, "d", "1"), 0);
	assert_int_equal(get(f, "c"), 0);
}

static void test_manifest_damaged_item(void **state)
{
	struct manifest_version v, w;
	struct manifest_file files[2] = {
		{ .level = 0, .number = 3, .size = 10, .entry_count = 1,
		  .smallest = (const uint8_t *)"a", .smallest_len = 1,
		  .largest = (const uint8_t *)"b", .largest_len = 1 },
		{ .level = 1, .number = 2, .size = 10, .entry_count = 1,
		  .smallest = (const uint8_t *)"c", .smallest_len = 1,
		  .largest = (const uint8_t *)"d", .largest_len = 1 },
	};
	struct manifest_file_id mark = { .level = 1, .number = 2 }, bad = { 0, 9 };
	struct manifest_edit add = { .has_next_file_number = true, .next_file_number = 4,
				     .added = files, .nadded = 2 };
	struct manifest_edit damage = { .damaged = &mark, .ndamaged = 1 };
	struct manifest_edit wrong = { .damaged = &bad, .ndamaged = 1 };
	struct manifest_edit del = { .deleted = &mark, .ndeleted = 1 };
	struct sstable_buf buf = { 0 };
	struct manifest_replay r;
	uint8_t rec[256];
	const char *why = NULL;

	(void)state;
	manifest_version_init(&v);
	assert_int_equal(manifest_version_apply(&v, &add, &why), 0);
	/* Encoded, replayed: the mark is back. */
	assert_true(manifest_edit_size(&damage) <= sizeof rec);
	manifest_edit_encode(&damage, rec);
	assert_int_equal(manifest_version_apply(&v, &damage, &why), 0);
	assert_int_equal(v.ndamaged, 1);
	assert_true(manifest_version_find(&v, 2)->damaged);
	assert_false(manifest_version_find(&v, 3)->damaged);
	/* A snapshot keeps it. */
	assert_int_equal(manifest_version_snapshot(&v, &buf), 0);
	manifest_version_init(&w);
	assert_int_equal(manifest_replay(&w, buf.data, buf.len, &r), 0);
	assert_int_equal(w.ndamaged, 1);
	assert_true(manifest_version_find(&w, 2)->damaged);
	manifest_version_destroy(&w);
	/* A mark on a file not in the version is corruption. */
	manifest_version_init(&w);
	assert_int_equal(manifest_version_apply(&w, &wrong, &why), RKV_ECORRUPT);
	manifest_version_destroy(&w);
	/* A delete drops the mark with the file. */
	assert_int_equal(manifest_version_apply(&v, &del, &why), 0);
	assert_int_equal(v.ndamaged, 0);
	manifest_version_destroy(&v);
	sstable_buf_free(&buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest_damaged_item),
		cmocka_unit_test_setup_teardown(test_read_marks_writes_go_on, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_block_bounded_reported_remembered,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
