/*
 * The shard as an LSM tree, on a real io_uring ring: memtable flush to L0
 * SSTables, reads that hit them, WAL segment deletion, L0 -> L1 compaction
 * checked against a model, restart after flush and compaction, a flipped
 * byte in a data block (RKV_ECORRUPT, never wrong data), scans over
 * memtables and tables with tombstones hidden, and read-modify-write
 * commands on keys that live only in SSTables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
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
};

static void open_shard(struct fixture *f)
{
	struct shard_config cfg = {
		.id = 3, .dir = f->dir, .memtable_size = 64 << 10, .cache = f->cache,
		.table_size = 32 << 10, .level_base = 16 << 10, .block_size = 1024,
	};
	char err[512];

	if (shard_open(&f->s, &cfg, &f->io, err, sizeof err))
		fail_msg("shard_open: %s", err);
}

static int open_shard_err(struct fixture *f, char *err, size_t errlen)
{
	struct shard_config cfg = {
		.id = 3, .dir = f->dir, .memtable_size = 64 << 10, .cache = f->cache,
		.table_size = 32 << 10, .level_base = 16 << 10, .block_size = 1024,
	};

	return shard_open(&f->s, &cfg, &f->io, err, errlen);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct block_cache_options copt = { .capacity = 256 << 10 };
	char err[256];

	strcpy(f->dir, "/tmp/ringkv-lsm-XXXXXX");
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

static void reopen(struct fixture *f)
{
	shard_close(f->s);
	f->s = NULL;
	open_shard(f);
}

static void turn(struct fixture *f)
{
	shard_flush(f->s);
	assert_int_equal(io_ring_submit_wait(&f->io, 1000), 0);
	io_ring_dispatch(&f->io);
}

/* Runs the ring until writes and background work are done. */
static void settle(struct fixture *f)
{
	int i;

	for (i = 0; i < 200000; i++) {
		if (shard_idle(f->s) && shard_background_idle(f->s))
			break;
		turn(f);
	}
	assert_true(shard_idle(f->s));
	assert_true(shard_background_idle(f->s));
}

static int write_one(struct fixture *f, struct command c, struct waiter *w)
{
	bool want = w->w.want_prior;

	*w = (struct waiter){ .w.done = on_done, .w.want_prior = want };
	assert_int_equal(shard_write(f->s, &c, &w->w), 0);
	for (int i = 0; i < 100000 && !w->done; i++)
		turn(f);
	assert_int_equal(w->done, 1);
	return w->rv;
}

/* A get through the asynchronous path; the value in g->value. */
static int get(struct fixture *f, const char *key, struct get_result *g)
{
	return shard_test_get(f->s, &f->io, key, g);
}

static void check_value(struct fixture *f, const char *key, const char *want)
{
	struct get_result g;
	int rv = get(f, key, &g);

	if (!want) {
		if (rv != RKV_ENOTFOUND)
			fail_msg("%s: expected absent, got rv %d", key, rv);
		return;
	}
	if (rv != 0)
		fail_msg("%s: expected '%s', got rv %d", key, want, rv);
	g.value[g.len] = '\0';
	assert_string_equal(g.value, want);
}

static unsigned count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name), sl = strlen(suffix);

		if (l > sl && strcmp(de->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* Writes filler keys "<prefix>NNNN" until `flushes` flushes happened. */
static void fill_until_flushes(struct fixture *f, const char *prefix, uint64_t flushes)
{
	static char value[200];
	struct shard_stats st;
	struct waiter w = { 0 };
	char key[32];

	memset(value, 'v', sizeof value - 1);
	for (unsigned i = 0; i < 100000; i++) {
		shard_get_stats(f->s, &st);
		if (st.flushes >= flushes)
			break;
		snprintf(key, sizeof key, "%s%05u", prefix, i);
		assert_int_equal(write_one(f, put_cmd(key, value), &w), 0);
	}
	settle(f);
	shard_get_stats(f->s, &st);
	assert_true(st.flushes >= flushes);
}

static void test_flush_writes_table_and_reads_hit_it(void **state)
{
	struct fixture *f = *state;
	struct shard_stats st;
	struct waiter w = { 0 };

	open_shard(f);
	assert_int_equal(write_one(f, put_cmd("apple", "red"), &w), 0);
	assert_int_equal(write_one(f, put_cmd("pear", "green"), &w), 0);
	assert_int_equal(write_one(f, (struct command){ .op = COMMAND_DELETE,
			 .key = (const uint8_t *)"pear", .key_len = 4 }, &w), 0);
	fill_until_flushes(f, "fill", 2);
	shard_get_stats(f->s, &st);
	assert_true(count_files(f->dir, ".sst") >= 1);
	/* Segments whose records are all in tables are gone. */
	assert_true(st.wal_deleted >= 1);
	assert_true(count_files(f->dir, ".log") <= 2);
	/* Served from the table: the memtables no longer hold them. */
	check_value(f, "apple", "red");
	check_value(f, "pear", NULL);
	check_value(f, "nothing", NULL);
	shard_get_stats(f->s, &st);
	assert_true(st.block_reads >= 1 || st.table_files >= 1);
	/* And after a restart (manifest + tables + the WAL tail). */
	reopen(f);
	check_value(f, "apple", "red");
	check_value(f, "pear", NULL);
}

#define MODEL_KEYS 400

struct model {
	char value[MODEL_KEYS][40];
	bool present[MODEL_KEYS];
};

static uint64_t rng_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void check_model(struct fixture *f, const struct model *m)
{
	char key[32];

	for (unsigned k = 0; k < MODEL_KEYS; k++) {
		snprintf(key, sizeof key, "key%04u", k);
		check_value(f, key, m->present[k] ? m->value[k] : NULL);
	}
}

static void random_ops(struct fixture *f, struct model *m, unsigned n, uint64_t *seed)
{
	static char big[600];
	struct waiter w = { 0 };
	char key[32];

	memset(big, 'p', sizeof big - 1);
	for (unsigned i = 0; i < n; i++) {
		unsigned k = (unsigned)(rng_next(seed) % MODEL_KEYS);
		unsigned op = (unsigned)(rng_next(seed) % 10);

		snprintf(key, sizeof key, "key%04u", k);
		if (op < 2) {
			assert_int_equal(write_one(f, (struct command){ .op = COMMAND_DELETE,
					 .key = (const uint8_t *)key,
					 .key_len = (uint32_t)strlen(key) }, &w), 0);
			m->present[k] = false;
		} else {
			snprintf(m->value[k], sizeof m->value[k], "v%u-%u", i, k);
			assert_int_equal(write_one(f, put_cmd(key, m->value[k]), &w), 0);
			m->present[k] = true;
		}
		/* Padding keys make the memtables fill and flush often. */
		if (i % 3 == 0) {
			snprintf(key, sizeof key, "pad%06u", i);
			assert_int_equal(write_one(f, put_cmd(key, big), &w), 0);
		}
	}
}

static void test_compaction_keeps_reads_right(void **state)
{
	struct fixture *f = *state;
	static struct model m;
	struct shard_stats st;
	uint64_t seed = 0x1234567;
	unsigned levels[7];

	memset(&m, 0, sizeof m);
	open_shard(f);
	random_ops(f, &m, 3000, &seed);
	settle(f);
	shard_get_stats(f->s, &st);
	shard_level_files(f->s, levels, 7);
	assert_true(st.flushes >= 8);
	assert_true(st.compactions >= 1);
	assert_true(levels[0] < 4);
	assert_true(levels[1] + levels[2] + levels[3] >= 1);
	check_model(f, &m);
	/* Restart after flushes and compactions: manifest + tables + WAL. */
	reopen(f);
	check_model(f, &m);
	random_ops(f, &m, 1000, &seed);
	check_model(f, &m); /* before the background work settles, too */
	reopen(f);
	check_model(f, &m);
	settle(f);
	check_model(f, &m);
}

struct scan_out {
	char keys[8192];
	int done;
	int rv;
	bool exhausted;
	char last[64];
};

static bool collect(void *arg, const void *key, size_t key_len, const void *value,
		    size_t value_len)
{
	struct scan_out *o = arg;

	strncat(o->keys, key, key_len);
	strcat(o->keys, ",");
	return true;
}

static void scan_finished(void *arg, int rv, bool exhausted, const void *last, size_t last_len)
{
	struct scan_out *o = arg;

	o->done++;
	o->rv = rv;
	o->exhausted = exhausted;
	snprintf(o->last, sizeof o->last, "%.*s", (int)last_len, last ? (const char *)last : "");
}

static void scan(struct fixture *f, struct scan_out *o, const char *start, bool after,
		 size_t examine)
{
	memset(o, 0, sizeof *o);
	assert_int_equal(shard_scan(f->s, start, strlen(start), after, examine, collect,
				    scan_finished, o), 0);
	for (int i = 0; i < 10000 && !o->done; i++) {
		assert_int_equal(io_ring_submit_wait(&f->io, 100000), 0);
		io_ring_dispatch(&f->io);
	}
	assert_int_equal(o->done, 1);
	assert_int_equal(o->rv, 0);
}

static void test_scan_merges_memtables_and_tables(void **state)
{
	struct fixture *f = *state;
	static struct scan_out o;
	struct waiter w = { 0 };

	open_shard(f);
	assert_int_equal(write_one(f, put_cmd("a1", "x"), &w), 0);
	assert_int_equal(write_one(f, put_cmd("a3", "x"), &w), 0);
	assert_int_equal(write_one(f, put_cmd("a5", "x"), &w), 0);
	fill_until_flushes(f, "z", 1);
	/* Newer data over the table: an overwrite, a delete, new keys. */
	assert_int_equal(write_one(f, put_cmd("a2", "y"), &w), 0);
	assert_int_equal(write_one(f, (struct command){ .op = COMMAND_DELETE,
			 .key = (const uint8_t *)"a3", .key_len = 2 }, &w), 0);
	assert_int_equal(write_one(f, put_cmd("a5", "y"), &w), 0);
	assert_int_equal(write_one(f, put_cmd("a4", "y"), &w), 0);
	scan(f, &o, "a", false, 5);
	/* a1 a2 a3(deleted, examined) a4 a5 */
	assert_string_equal(o.keys, "a1,a2,a4,a5,");
	assert_string_equal(o.last, "a5");
	assert_false(o.exhausted);
	scan(f, &o, "a2", true, 2);
	assert_string_equal(o.keys, "a4,");
	assert_string_equal(o.last, "a4");
	check_value(f, "a5", "y");
	/* The whole key space in order, exhausted at the end. */
	scan(f, &o, "", false, 1000000);
	assert_true(o.exhausted);
	assert_memory_equal(o.keys, "a1,a2,a4,a5,z00000,", 19);
}

static void test_read_modify_write_on_table_keys(void **state)
{
	struct fixture *f = *state;
	struct waiter w = { 0 };
	struct command incr = { .op = COMMAND_INCRBY, .key = (const uint8_t *)"n",
				.key_len = 1, .delta = 5 };
	struct command app = { .op = COMMAND_APPEND, .key = (const uint8_t *)"s",
			       .key_len = 1, .value = (const uint8_t *)"cd", .value_len = 2,
			       .limit = 100 };
	struct command nx = put_cmd("k", "new"), xx = put_cmd("k", "newer");

	open_shard(f);
	assert_int_equal(write_one(f, put_cmd("n", "10"), &w), 0);
	assert_int_equal(write_one(f, put_cmd("s", "ab"), &w), 0);
	assert_int_equal(write_one(f, put_cmd("k", "old"), &w), 0);
	assert_int_equal(write_one(f, put_cmd("gone", "x"), &w), 0);
	fill_until_flushes(f, "f", 2);
	/* Fresh cache: the values must be read from the table files. */
	reopen(f);
	fill_until_flushes(f, "g", 1);

	assert_int_equal(write_one(f, incr, &w), 0);
	assert_int_equal(w.res.error, 0);
	assert_true(w.res.integer == 15);
	assert_int_equal(write_one(f, app, &w), 0);
	assert_true(w.res.integer == 4);
	nx.op = COMMAND_PUT_NX;
	assert_int_equal(write_one(f, nx, &w), 0);
	assert_false(w.res.applied);
	assert_true(w.res.existed);
	xx.op = COMMAND_PUT_XX;
	w.w.want_prior = true;
	assert_int_equal(write_one(f, xx, &w), 0);
	assert_true(w.res.applied);
	assert_string_equal(w.old, "old");
	w.w.want_prior = false;
	assert_int_equal(write_one(f, (struct command){ .op = COMMAND_DELETE,
			 .key = (const uint8_t *)"gone", .key_len = 4 }, &w), 0);
	assert_true(w.res.existed);
	assert_int_equal(write_one(f, (struct command){ .op = COMMAND_DELETE,
			 .key = (const uint8_t *)"never", .key_len = 5 }, &w), 0);
	assert_false(w.res.existed);
	check_value(f, "n", "15");
	check_value(f, "s", "abcd");
	check_value(f, "k", "newer");
	check_value(f, "gone", NULL);
	/* Replay computes the same results from the same log. */
	reopen(f);
	check_value(f, "n", "15");
	check_value(f, "s", "abcd");
	check_value(f, "k", "newer");
	check_value(f, "gone", NULL);
	/* And once flushed too. */
	fill_until_flushes(f, "h", 1);
	check_value(f, "n", "15");
	check_value(f, "s", "abcd");
}

/* Flips one byte of the first data block of every table. */
static void flip_data_bytes(struct fixture *f)
{
	DIR *d = opendir(f->dir);
	struct dirent *de;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char path[512];
		uint8_t b;
		int fd;

		if (!strstr(de->d_name, ".sst"))
			continue;
		snprintf(path, sizeof path, "%s/%s", f->dir, de->d_name);
		fd = open(path, O_RDWR);
		assert_true(fd >= 0);
		assert_int_equal(pread(fd, &b, 1, 10), 1);
		b ^= 0x40;
		assert_int_equal(pwrite(fd, &b, 1, 10), 1);
		close(fd);
	}
	closedir(d);
}

static void test_flipped_byte_is_data_loss(void **state)
{
	struct fixture *f = *state;
	static struct scan_out o;
	struct get_result g;
	struct waiter w = { 0 };

	open_shard(f);
	assert_int_equal(write_one(f, put_cmd("a0", "first"), &w), 0);
	fill_until_flushes(f, "b", 1);
	shard_close(f->s);
	f->s = NULL;
	flip_data_bytes(f);
	open_shard(f); /* footers and metadata are intact: it starts */
	assert_int_equal(get(f, "a0", &g), RKV_ECORRUPT);
	/* Again: a damaged block never enters the cache. */
	assert_int_equal(get(f, "a0", &g), RKV_ECORRUPT);
	memset(&o, 0, sizeof o);
	assert_int_equal(shard_scan(f->s, "", 0, false, 100, collect, scan_finished, &o), 0);
	for (int i = 0; i < 10000 && !o.done; i++) {
		assert_int_equal(io_ring_submit_wait(&f->io, 100000), 0);
		io_ring_dispatch(&f->io);
	}
	assert_int_equal(o.rv, RKV_ECORRUPT);
	/* A RMW on a key of that block fails instead of guessing. */
	w = (struct waiter){ .w.done = on_done };
	{
		struct command incr = { .op = COMMAND_INCRBY, .key = (const uint8_t *)"a0",
					.key_len = 2, .delta = 1 };
		int rv = shard_write(f->s, &incr, &w.w);

		if (rv == 0) {
			for (int i = 0; i < 10000 && !w.done; i++)
				turn(f);
			rv = w.rv;
		}
		assert_int_equal(rv, RKV_ECORRUPT);
	}
}

static void test_corrupt_manifest_or_footer_refuses_start(void **state)
{
	struct fixture *f = *state;
	char path[512], err[512];
	struct waiter w = { 0 };
	uint8_t b;
	int fd;

	open_shard(f);
	assert_int_equal(write_one(f, put_cmd("a0", "first"), &w), 0);
	fill_until_flushes(f, "b", 1);
	shard_close(f->s);
	f->s = NULL;
	/* A table shorter than the manifest says. */
	{
		DIR *d = opendir(f->dir);
		struct dirent *de;

		while ((de = readdir(d)) != NULL)
			if (strstr(de->d_name, ".sst"))
				break;
		assert_non_null(de);
		snprintf(path, sizeof path, "%s/%s", f->dir, de->d_name);
		closedir(d);
	}
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	{
		off_t size = lseek(fd, 0, SEEK_END);

		assert_int_equal(pread(fd, &b, 1, size - 20), 1);
		b ^= 1;
		assert_int_equal(pwrite(fd, &b, 1, size - 20), 1); /* in the footer */
	}
	close(fd);
	assert_int_equal(open_shard_err(f, err, sizeof err), RKV_ECORRUPT);
	assert_non_null(strstr(err, "footer"));
	assert_non_null(strstr(err, "offset"));
	f->s = NULL;
	fd = open(path, O_RDWR);
	{
		off_t size = lseek(fd, 0, SEEK_END);

		b ^= 1;
		assert_int_equal(pwrite(fd, &b, 1, size - 20), 1);
	}
	close(fd);
	/* A flipped byte inside the manifest's first record. */
	snprintf(path, sizeof path, "%s/MANIFEST", f->dir);
	fd = open(path, O_RDWR);
	assert_int_equal(pread(fd, &b, 1, 40), 1);
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, 40), 1);
	close(fd);
	assert_int_not_equal(open_shard_err(f, err, sizeof err), 0);
	assert_non_null(strstr(err, "MANIFEST"));
	f->s = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_flush_writes_table_and_reads_hit_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compaction_keeps_reads_right, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_merges_memtables_and_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_modify_write_on_table_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_byte_is_data_loss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_manifest_or_footer_refuses_start, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
