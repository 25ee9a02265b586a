/*
 * A damaged shard directory (docs/DAMAGED-DATADIR.md), on a real shard and
 * ring: a missing MANIFEST beside tables is refused with the file named and
 * nothing deleted or created, in both of the shard's modes; a table the
 * manifest does not name is deleted only when its number proves it was an
 * unfinished job's and the manifest was read whole, else reported and kept.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/errors.h"
#include "io/ring.h"
#include "shard/block_cache.h"
#include "shard/shard.h"
#include "shard_test.h"

struct fixture {
	char dir[64];
	struct io_ring io;
	struct block_cache *cache;
	struct shard *s;
	bool replicated;
};

static int open_err(struct fixture *f, char *err, size_t errlen)
{
	struct shard_config cfg = {
		.id = 5, .dir = f->dir, .memtable_size = 64 << 10, .cache = f->cache,
		.table_size = 32 << 10, .level_base = 16 << 10, .block_size = 1024,
		.stall_limit = 16 << 10, .replicated = f->replicated,
	};

	return shard_open(&f->s, &cfg, &f->io, err, errlen);
}

static void open_shard(struct fixture *f)
{
	char err[1024];

	if (open_err(f, err, sizeof err))
		fail_msg("shard_open: %s", err);
}

static void close_shard(struct fixture *f)
{
	shard_close(f->s);
	f->s = NULL;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct block_cache_options copt = { .capacity = 256 << 10 };
	char err[256];

	strcpy(f->dir, "/tmp/ringkv-damaged-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(io_ring_init(&f->io, 256, err, sizeof err), 0);
	assert_int_equal(block_cache_create(&f->cache, &copt), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	shard_close(f->s);
	block_cache_destroy(f->cache);
	io_ring_exit(&f->io);
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void turn(struct fixture *f)
{
	shard_flush(f->s);
	assert_int_equal(io_ring_submit_wait(&f->io, 1000), 0);
	io_ring_dispatch(&f->io);
}

static void settle(struct fixture *f)
{
	for (int i = 0; i < 200000; i++) {
		if (shard_idle(f->s) && shard_background_idle(f->s))
			return;
		turn(f);
	}
	fail_msg("the shard did not settle");
}

/* One write, answered within a bound of loop turns: its answer, or 1 when
 * it is still waiting (a stalled write). */
static int write_bounded(struct fixture *f, const char *key, const char *value,
			 struct waiter *w, int turns)
{
	int rv;

	*w = (struct waiter){ .w.done = on_done };
	rv = shard_write(f->s, &(struct command){ .op = COMMAND_PUT,
			 .key = (const uint8_t *)key, .key_len = (uint32_t)strlen(key),
			 .value = (const uint8_t *)value,
			 .value_len = (uint32_t)strlen(value) }, &w->w);
	if (rv)
		return rv;
	for (int i = 0; i < turns && !w->done; i++)
		turn(f);
	return w->done ? w->rv : 1;
}

static void write_ok(struct fixture *f, const char *key, const char *value)
{
	struct waiter w;

	assert_int_equal(write_bounded(f, key, value, &w, 100000), 0);
}

static void fill_until_flushes(struct fixture *f, const char *prefix, uint64_t flushes)
{
	static char value[200];
	struct shard_stats st;
	char key[32];

	memset(value, 'v', sizeof value - 1);
	for (unsigned i = 0; i < 100000; i++) {
		shard_get_stats(f->s, &st);
		if (st.flushes >= flushes)
			break;
		snprintf(key, sizeof key, "%s%05u", prefix, i);
		write_ok(f, key, value);
	}
	settle(f);
	shard_get_stats(f->s, &st);
	assert_true(st.flushes >= flushes);
}

static unsigned count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name), sl = strlen(suffix);

		if (l >= sl && strcmp(de->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* The path of the first file of `dir` ending in `suffix`. */
static void first_file(const char *dir, const char *suffix, char *path, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char best[256] = "";

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name), sl = strlen(suffix);

		if (l > sl && strcmp(de->d_name + l - sl, suffix) == 0 &&
		    (!best[0] || strcmp(de->d_name, best) < 0))
			snprintf(best, sizeof best, "%s", de->d_name);
	}
	closedir(d);
	assert_true(best[0] != '\0');
	snprintf(path, len, "%s/%s", dir, best);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void copy_file(const char *from, const char *to)
{
	static char buf[1 << 20];
	int fd = open(from, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof buf);
	assert_true(n > 0);
	close(fd);
	write_file(to, buf, (size_t)n);
}

static void test_manifest_missing_refused_tables_kept(void **state)
{
	struct fixture *f = *state;
	char path[128], err[1024];
	unsigned tables;

	open_shard(f);
	fill_until_flushes(f, "k", 2);
	close_shard(f);
	tables = count_files(f->dir, ".sst");
	assert_true(tables > 0);
	snprintf(path, sizeof path, "%s/MANIFEST", f->dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(open_err(f, err, sizeof err), RKV_ECORRUPT);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "is missing"));
	assert_int_equal(count_files(f->dir, ".sst"), tables);
	assert_int_equal(access(path, F_OK), -1);   /* not re-created either */
}

/* The rule holds in replicated mode, which has no WAL. */
static void test_manifest_missing_refused_replicated(void **state)
{
	struct fixture *f = *state;
	char path[128], table[128], err[1024];

	f->replicated = true;
	open_shard(f);
	close_shard(f);
	snprintf(path, sizeof path, "%s/MANIFEST", f->dir);
	snprintf(table, sizeof table, "%s/000003.sst", f->dir);
	write_file(table, "not empty", 9);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(open_err(f, err, sizeof err), RKV_ECORRUPT);
	assert_non_null(strstr(err, path));
	assert_int_equal(access(table, F_OK), 0);
}

static void test_stray_tables_deleted_only_when_proven(void **state)
{
	struct fixture *f = *state;
	char table[128], low[128], high[128], notes[128];

	open_shard(f);
	fill_until_flushes(f, "k", 1);
	close_shard(f);
	first_file(f->dir, ".sst", table, sizeof table);
	/* 0 is below every next file number: never a job's. 900000 is above
	 * this shard's: allocated to a job the manifest never saw finish. */
	snprintf(low, sizeof low, "%s/000000.sst", f->dir);
	snprintf(high, sizeof high, "%s/900000.sst", f->dir);
	snprintf(notes, sizeof notes, "%s/notes.txt", f->dir);
	copy_file(table, low);
	copy_file(table, high);
	write_file(notes, "mine", 4);
	open_shard(f);
	assert_int_equal(access(low, F_OK), 0);
	assert_int_equal(access(notes, F_OK), 0);
	assert_int_equal(access(high, F_OK), -1);
	write_ok(f, "after", "strays");
}

/* The manifest's torn tail was cut at this start: the cut may have taken
 * the edit naming a table numbered above the next file number, so it is
 * kept, and new tables are numbered above it. */
static void test_unnamed_table_kept_after_manifest_cut(void **state)
{
	struct fixture *f = *state;
	char table[128], high[128], path[128];
	static const uint8_t torn[5] = { 0x41, 0x42, 0x43, 0x44, 0x45 };
	int fd;

	open_shard(f);
	fill_until_flushes(f, "k", 1);
	close_shard(f);
	first_file(f->dir, ".sst", table, sizeof table);
	snprintf(high, sizeof high, "%s/900000.sst", f->dir);
	copy_file(table, high);
	snprintf(path, sizeof path, "%s/MANIFEST", f->dir);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, torn, sizeof torn), (ssize_t)sizeof torn);
	close(fd);
	open_shard(f);
	assert_int_equal(access(high, F_OK), 0);
	fill_until_flushes(f, "m", 2);
	close_shard(f);
	assert_int_equal(access(high, F_OK), 0);
	/* Read whole now, and numbered below the next file number: kept. */
	open_shard(f);
	assert_int_equal(access(high, F_OK), 0);
}

/* Replicated mode: an unfinished job's table is deleted only once the
 * caller checked the manifest against the log (shard_drop_unfinished). */
static void test_unfinished_table_dropped_after_log_check(void **state)
{
	struct fixture *f = *state;
	char table[128], high[128], path[400];
	DIR *d;
	struct dirent *de;

	open_shard(f);
	fill_until_flushes(f, "k", 1);
	close_shard(f);
	/* The tables and manifest as a replicated shard has them. */
	d = opendir(f->dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "wal-", 4) != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", f->dir, de->d_name);
		assert_int_equal(unlink(path), 0);
	}
	closedir(d);
	first_file(f->dir, ".sst", table, sizeof table);
	snprintf(high, sizeof high, "%s/900000.sst", f->dir);
	copy_file(table, high);
	f->replicated = true;
	open_shard(f);
	assert_int_equal(access(high, F_OK), 0);
	shard_drop_unfinished(f->s);
	assert_int_equal(access(high, F_OK), -1);
	assert_int_equal(access(table, F_OK), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_manifest_missing_refused_tables_kept, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_manifest_missing_refused_replicated, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_stray_tables_deleted_only_when_proven, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unnamed_table_kept_after_manifest_cut, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unfinished_table_dropped_after_log_check,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
