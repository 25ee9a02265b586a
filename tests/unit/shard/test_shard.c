/*
 * shard/shard.c on a real io_uring ring: group commit, visibility only after
 * durability, recovery on reopen, the memtable-full answer, and the batching
 * itself (many writes queued in one iteration share one fdatasync), and the
 * WAL segment's preallocation and mapping limit, and the manifest rewrite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/errors.h"
#include "io/ring.h"
#include "shard/manifest.h"
#include "shard/shard.h"
#include "shard_test.h"

struct fixture {
	char dir[64];
	struct io_ring io;
	struct shard *s;
};

static void open_shard(struct fixture *f, uint64_t memtable)
{
	struct shard_config cfg = { .id = 7, .dir = f->dir, .memtable_size = memtable };
	char err[512];
	int rv = shard_open(&f->s, &cfg, &f->io, err, sizeof err);

	if (rv)
		fail_msg("shard_open: %s", err);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[256];

	strcpy(f->dir, "/tmp/ringkv-shard-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(io_ring_init(&f->io, 256, err, sizeof err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct rlimit lim;
	char cmd[128];

	/* Undo test_wal_preallocation_failure's limit, even if it failed. */
	signal(SIGXFSZ, SIG_DFL);
	if (getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur != lim.rlim_max) {
		lim.rlim_cur = lim.rlim_max;
		setrlimit(RLIMIT_FSIZE, &lim);
	}

	shard_close(f->s);
	io_ring_exit(&f->io);
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Runs the ring until the shard has nothing in flight. */
static void settle(struct fixture *f)
{
	for (int i = 0; i < 10000 && !shard_idle(f->s); i++) {
		shard_flush(f->s);
		assert_int_equal(io_ring_submit_wait(&f->io, 100000), 0);
		io_ring_dispatch(&f->io);
	}
	assert_true(shard_idle(f->s));
}

static void check_value(struct shard *s, const char *k, const char *v)
{
	const void *got;
	size_t len;

	assert_int_equal(shard_get(s, k, strlen(k), &got, &len), 0);
	assert_int_equal(len, strlen(v));
	assert_memory_equal(got, v, len);
}

/* Reads `key` through the asynchronous path (memtables, then tables). */
static void check_table_value(struct fixture *f, const char *key, const char *want)
{
	struct get_result g;

	assert_int_equal(shard_test_get(f->s, &f->io, key, &g), 0);
	assert_int_equal(g.len, strlen(want));
	assert_memory_equal(g.value, want, g.len < sizeof g.value ? g.len : sizeof g.value);
}

static void test_write_visible_only_when_durable(void **state)
{
	struct fixture *f = *state;
	struct waiter w = { .w.done = on_done };
	struct command c = put_cmd("alpha", "one");
	const void *got;
	size_t len;

	open_shard(f, 1 << 20);
	assert_int_equal(shard_write(f->s, &c, &w.w), 0);
	/* Queued, not durable: neither visible nor answered. */
	assert_int_equal(shard_get(f->s, "alpha", 5, &got, &len), RKV_ENOTFOUND);
	assert_int_equal(w.done, 0);
	settle(f);
	assert_int_equal(w.done, 1);
	assert_int_equal(w.rv, 0);
	check_value(f->s, "alpha", "one");
}

static void test_group_commit_batches_one_iteration(void **state)
{
	struct fixture *f = *state;
	struct waiter w[100];
	struct shard_stats st;
	char key[16];

	open_shard(f, 1 << 20);
	for (int i = 0; i < 100; i++) {
		struct command c;

		snprintf(key, sizeof key, "k%03d", i);
		c = put_cmd(key, "v");
		w[i] = (struct waiter){ .w.done = on_done };
		assert_int_equal(shard_write(f->s, &c, &w[i].w), 0);
	}
	settle(f);
	shard_get_stats(f->s, &st);
	assert_int_equal(st.writes, 100);
	assert_int_equal(st.batches, 1); /* one fdatasync for all */
	for (int i = 0; i < 100; i++)
		assert_int_equal(w[i].done, 1);
}

static void test_recovery_after_reopen(void **state)
{
	struct fixture *f = *state;
	struct waiter w[3] = { { .w.done = on_done }, { .w.done = on_done },
			       { .w.done = on_done } };
	struct command c1 = put_cmd("a", "1"), c2 = put_cmd("b", "2");
	struct command del = { .op = COMMAND_DELETE, .key = (const uint8_t *)"a", .key_len = 1 };
	struct shard_stats st;
	const void *got;
	size_t len;

	open_shard(f, 1 << 20);
	assert_int_equal(shard_write(f->s, &c1, &w[0].w), 0);
	assert_int_equal(shard_write(f->s, &c2, &w[1].w), 0);
	settle(f);
	assert_int_equal(shard_write(f->s, &del, &w[2].w), 0);
	settle(f);
	shard_close(f->s);
	f->s = NULL;

	open_shard(f, 1 << 20);
	shard_get_stats(f->s, &st);
	assert_int_equal(st.replayed, 3);
	assert_int_equal(shard_get(f->s, "a", 1, &got, &len), RKV_ENOTFOUND);
	check_value(f->s, "b", "2");
	/* New writes continue the index sequence after the replayed ones. */
	w[0].done = 0;
	assert_int_equal(shard_write(f->s, &c1, &w[0].w), 0);
	settle(f);
	assert_int_equal(w[0].rv, 0);
	shard_close(f->s);
	f->s = NULL;
	open_shard(f, 1 << 20);
	check_value(f->s, "a", "1");
}

/* A full memtable is switched for a fresh one (the old one is flushed);
 * writes wait meanwhile, up to the stall limit, beyond which they are
 * refused at once. Every accepted write lands. */
static void test_memtable_full_stalls_then_refuses(void **state)
{
	struct fixture *f = *state;
	static struct waiter w[4096];
	static char value[1000];
	struct shard_config cfg = { .id = 7, .dir = f->dir, .memtable_size = 64 << 10,
				    .stall_limit = 32 << 10 };
	unsigned accepted = 0;
	char err[512];
	int rv = 0;

	memset(value, 'x', sizeof value - 1);
	if (shard_open(&f->s, &cfg, &f->io, err, sizeof err))
		fail_msg("shard_open: %s", err);
	static char keys[4096][16]; /* a stalled write's key stays valid until done */

	for (unsigned i = 0; i < 4096; i++) {
		char *key = keys[i];
		struct command c;

		snprintf(key, sizeof keys[i], "f%u", i);
		c = put_cmd(key, value);
		w[i] = (struct waiter){ .w.done = on_done };
		rv = shard_write(f->s, &c, &w[i].w);
		if (rv)
			break;
		accepted++;
	}
	assert_int_equal(rv, RKV_EFULL);
	assert_true(accepted > 10);
	settle(f);
	for (unsigned i = 0; i < accepted; i++) {
		assert_int_equal(w[i].done, 1);
		assert_int_equal(w[i].rv, 0);
	}
	assert_int_equal(w[accepted].done, 0);
	/* In a memtable or, once flushed, in a table. */
	check_table_value(f, "f0", value);
}

/* A waiter whose callback queues one more write, as a connection does when
 * an answer lets its next request in. */
struct chain_waiter {
	struct waiter x;
	struct shard *s;
	struct command next_cmd;
	struct waiter *next;
	int next_rv;
};

static void on_done_chain(struct shard_waiter *w, int rv, const struct shard_result *res)
{
	struct chain_waiter *c = (struct chain_waiter *)w;

	on_done(w, rv, res);
	*c->next = (struct waiter){ .w.done = on_done };
	c->next_rv = shard_write(c->s, &c->next_cmd, &c->next->w);
}

/* A write queued from the callback of a durable batch is measured against
 * the memtable's true room: the records already applied no longer count as
 * set aside, so it neither waits nor forces an early memtable switch. */
static void test_callback_write_sees_true_room(void **state)
{
	struct fixture *f = *state;
	static char value[16 << 10];
	static struct waiter plain[3], next;
	static struct chain_waiter last;
	struct shard_stats st;
	char keys[3][8];

	memset(value, 'v', sizeof value - 1);
	open_shard(f, 64 << 10);
	/* One batch of three 16 KiB values: 3/4 of the memtable set aside. */
	for (int i = 0; i < 3; i++) {
		struct command c;

		snprintf(keys[i], sizeof keys[i], "k%d", i);
		c = put_cmd(keys[i], value);
		if (i < 2) {
			plain[i] = (struct waiter){ .w.done = on_done };
			assert_int_equal(shard_write(f->s, &c, &plain[i].w), 0);
			continue;
		}
		last = (struct chain_waiter){ .x.w.done = on_done_chain, .s = f->s,
					      .next_cmd = put_cmd("small", "1"), .next = &next };
		assert_int_equal(shard_write(f->s, &c, &last.x.w), 0);
	}
	settle(f);
	assert_int_equal(last.x.done, 1);
	assert_int_equal(last.next_rv, 0);
	assert_int_equal(next.done, 1);
	assert_int_equal(next.rv, 0);
	shard_get_stats(f->s, &st);
	assert_int_equal(st.stalls, 0);
	assert_int_equal(st.flushes, 0);
	check_value(f->s, "small", "1");
}

static int write_one(struct fixture *f, struct command c, struct waiter *w)
{
	*w = (struct waiter){ .w.done = on_done };
	assert_int_equal(shard_write(f->s, &c, &w->w), 0);
	settle(f);
	assert_int_equal(w->done, 1);
	return w->rv;
}

static off_t manifest_size(const struct fixture *f)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof path, "%s/MANIFEST", f->dir);
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* While running, a manifest grown to 4x its version (and past
 * manifest_rewrite_min) is rewritten whole through the ring; what it
 * describes survives a reopen. */
static void test_manifest_rewritten_while_running(void **state)
{
	struct fixture *f = *state;
	static char value[1000];
	struct shard_config cfg = { .id = 7, .dir = f->dir, .memtable_size = 64 << 10,
				    .manifest_rewrite_min = 2048 };
	struct shard_stats st;
	struct waiter w;
	char key[16], err[512];

	memset(value, 'm', sizeof value - 1);
	if (shard_open(&f->s, &cfg, &f->io, err, sizeof err))
		fail_msg("shard_open: %s", err);
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof key, "m%05d", i % 1500);
		assert_int_equal(write_one(f, put_cmd(key, value), &w), 0);
	}
	shard_get_stats(f->s, &st);
	assert_true(st.flushes >= 20);
	assert_true(st.manifest_rewrites >= 1);
	assert_true(manifest_size(f) < 16384);
	shard_close(f->s);
	f->s = NULL;
	if (shard_open(&f->s, &cfg, &f->io, err, sizeof err))
		fail_msg("shard_open: %s", err);
	for (int i = 0; i < 1500; i += 7) {
		snprintf(key, sizeof key, "m%05d", i);
		check_table_value(f, key, value);
	}
}

/* Preallocation fails (a file size limit stands in for a full disk: the
 * FALLOCATE fails, for the step ahead and for the exact retry): the batch's
 * writes fail with nothing stored, the shard keeps serving, and writes
 * succeed again once there is room. What was acknowledged replays. */
static void test_wal_preallocation_failure(void **state)
{
	struct fixture *f = *state;
	static char value[64 << 10];
	struct rlimit old, lim;
	struct waiter w;
	char key[16];
	int ok = 0, failed = 0;

	memset(value, 'p', sizeof value - 1);
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	open_shard(f, 4 << 20);
	/* Start-up preallocated 2 MiB (the header plus wal_step = 1 MiB, rounded
	 * up to a chunk); below that limit every later FALLOCATE fails. */
	lim = old;
	lim.rlim_cur = (3 << 20) / 2;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	for (int i = 0; i < 40; i++) {
		struct command c;

		snprintf(key, sizeof key, "p%02d", i);
		c = put_cmd(key, value);
		w = (struct waiter){ .w.done = on_done };
		assert_int_equal(shard_write(f->s, &c, &w.w), 0);
		settle(f);
		assert_int_equal(w.done, 1);
		if (w.rv == 0) {
			ok++;
			check_value(f->s, key, value);
		} else {
			failed++;
			assert_true(w.rv == -EIO || w.rv == RKV_EFULL);
		}
	}
	assert_true(ok >= 15 && ok < 40);
	assert_true(failed > 0);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(write_one(f, put_cmd("after", "room"), &w), 0);
	shard_close(f->s);
	f->s = NULL;
	open_shard(f, 4 << 20);
	check_table_value(f, "after", "room");
	check_table_value(f, "p00", value);
	signal(SIGXFSZ, SIG_DFL);
}

/* A manifest that is mostly history (here 80,000 edits that each moved the
 * flushed index) is rewritten at start-up as the version it adds up to; the
 * version survives (the WAL continues after the flushed index). */
static void test_long_manifest_rewritten(void **state)
{
	struct fixture *f = *state;
	static uint8_t rec[64];
	char path[128];
	struct waiter w;
	FILE *fp;

	snprintf(path, sizeof path, "%s/MANIFEST", f->dir);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	manifest_header_encode(rec);
	assert_int_equal(fwrite(rec, 1, MANIFEST_HEADER_SIZE, fp), MANIFEST_HEADER_SIZE);
	for (uint64_t i = 1; i <= 80000; i++) {
		struct manifest_edit e = { .has_flushed_index = true, .flushed_index = i };
		size_t n = manifest_edit_encode(&e, rec);

		assert_int_equal(fwrite(rec, 1, n, fp), n);
	}
	assert_int_equal(fclose(fp), 0);
	assert_true(manifest_size(f) > (1 << 20));

	open_shard(f, 1 << 20);
	assert_true(manifest_size(f) < 1024);
	snprintf(path, sizeof path, "%s/wal-%020d.log", f->dir, 80001);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(write_one(f, put_cmd("after", "rewrite"), &w), 0);
	shard_close(f->s);
	f->s = NULL;
	open_shard(f, 1 << 20);
	check_value(f->s, "after", "rewrite");
	assert_true(manifest_size(f) < 1024);
}

static unsigned count_segments(const char *dir, off_t *largest)
{
	char cmd[256];
	unsigned n = 0;
	FILE *p;

	*largest = 0;
	snprintf(cmd, sizeof cmd, "stat -c %%s %s/wal-*.log", dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	for (long long size; fscanf(p, "%lld", &size) == 1; n++)
		if (size > *largest)
			*largest = (off_t)size;
	pclose(p);
	return n;
}

/* The WAL segment is preallocated ahead of the writer (its file is larger
 * than its records), and a segment that would outgrow its mapping without
 * filling the memtable (refused PUT_NX of 1 MiB values add WAL bytes, no
 * memtable bytes) continues in a new segment. Everything replays. */
static void test_wal_preallocated_and_outgrown(void **state)
{
	struct fixture *f = *state;
	static char big[1 << 20];
	struct command nx = { .op = COMMAND_PUT_NX, .key = (const uint8_t *)"nx", .key_len = 2,
			      .value = (const uint8_t *)big, .value_len = sizeof big - 1 };
	struct waiter w;
	struct shard_stats st;
	off_t largest;

	memset(big, 'b', sizeof big - 1);
	open_shard(f, 2 << 20);
	assert_int_equal(write_one(f, put_cmd("nx", "kept"), &w), 0);
	assert_int_equal(count_segments(f->dir, &largest), 1);
	assert_true(largest >= (1 << 20)); /* preallocated: one record is < 100 bytes */
	/* 4 memtables + 2 maximal records of address space: 40 MiB here. */
	for (int i = 0; i < 60; i++) {
		assert_int_equal(write_one(f, nx, &w), 0);
		assert_false(w.res.applied);
	}
	/* The switch flushed the memtable and deleted the outgrown segment. */
	shard_get_stats(f->s, &st);
	assert_true(st.flushes >= 1);
	assert_true(st.wal_deleted >= 1);
	assert_int_equal(count_segments(f->dir, &largest), 1);
	assert_true(largest <= (41 << 20));
	check_value(f->s, "nx", "kept");
	shard_close(f->s);
	f->s = NULL;
	open_shard(f, 2 << 20);
	check_table_value(f, "nx", "kept");
	assert_int_equal(write_one(f, put_cmd("after", "reopen"), &w), 0);
	check_value(f->s, "after", "reopen");
}

static void test_read_modify_write_commands(void **state)
{
	struct fixture *f = *state;
	struct waiter w;
	struct command incr = { .op = COMMAND_INCRBY, .key = (const uint8_t *)"n",
				.key_len = 1, .delta = 5 };
	struct command app = { .op = COMMAND_APPEND, .key = (const uint8_t *)"s",
			       .key_len = 1, .value = (const uint8_t *)"ab", .value_len = 2,
			       .limit = 5 };
	struct command nx = put_cmd("k", "first"), xx = put_cmd("k", "second");

	open_shard(f, 1 << 20);
	/* INCRBY on an absent key starts from 0; then adds. */
	assert_int_equal(write_one(f, incr, &w), 0);
	assert_true(w.res.integer == 5);
	incr.delta = -7;
	assert_int_equal(write_one(f, incr, &w), 0);
	assert_true(w.res.integer == -2);
	check_value(f->s, "n", "-2");
	/* Overflow and non-integers change nothing. */
	incr.delta = INT64_MIN;
	assert_int_equal(write_one(f, incr, &w), 0);
	assert_int_equal(w.res.error, -ERANGE);
	check_value(f->s, "n", "-2");
	assert_int_equal(write_one(f, put_cmd("t", "12a"), &w), 0);
	incr.key = (const uint8_t *)"t";
	incr.delta = 1;
	assert_int_equal(write_one(f, incr, &w), 0);
	assert_int_equal(w.res.error, RKV_EINVAL);
	check_value(f->s, "t", "12a");
	/* APPEND grows up to its limit, and no further. */
	assert_int_equal(write_one(f, app, &w), 0);
	assert_true(w.res.integer == 2);
	assert_int_equal(write_one(f, app, &w), 0);
	assert_true(w.res.integer == 4);
	assert_int_equal(write_one(f, app, &w), 0);
	assert_int_equal(w.res.error, RKV_ETOOLARGE);
	check_value(f->s, "s", "abab");
	/* NX only when absent, XX only when present; DELETE says if it existed. */
	nx.op = COMMAND_PUT_NX;
	assert_int_equal(write_one(f, nx, &w), 0);
	assert_true(w.res.applied && !w.res.existed);
	assert_int_equal(write_one(f, nx, &w), 0);
	assert_false(w.res.applied);
	xx.op = COMMAND_PUT_XX;
	w = (struct waiter){ .w.done = on_done, .w.want_prior = true };
	assert_int_equal(shard_write(f->s, &xx, &w.w), 0);
	settle(f);
	assert_true(w.res.applied && w.res.existed);
	assert_string_equal(w.old, "first");
	check_value(f->s, "k", "second");
	assert_int_equal(shard_live_keys(f->s), 4); /* n, t, s, k */
	assert_int_equal(write_one(f, (struct command){ .op = COMMAND_DELETE,
			 .key = (const uint8_t *)"k", .key_len = 1 }, &w), 0);
	assert_true(w.res.existed);
	assert_int_equal(shard_live_keys(f->s), 3);

	/* Replay reaches the same state, refusals included. */
	shard_close(f->s);
	f->s = NULL;
	open_shard(f, 1 << 20);
	check_value(f->s, "n", "-2");
	check_value(f->s, "t", "12a");
	check_value(f->s, "s", "abab");
	assert_int_equal(shard_live_keys(f->s), 3);
}

static bool collect(void *arg, const void *key, size_t key_len, const void *value,
		    size_t value_len)
{
	char *out = arg;

	strncat(out, key, key_len);
	strcat(out, ",");
	return true;
}

struct scan_result {
	int done;
	int rv;
	bool exhausted;
	char last[64];
};

static void scan_finished(void *arg, int rv, bool exhausted, const void *last, size_t last_len)
{
	struct scan_result *r = (struct scan_result *)((char *)arg + 256);

	r->done++;
	r->rv = rv;
	r->exhausted = exhausted;
	r->last[0] = '\0';
	if (last)
		snprintf(r->last, sizeof r->last, "%.*s", (int)last_len, (const char *)last);
}

/* Runs one scan step to its end; `buf` = 256 bytes of visited keys + result. */
static struct scan_result *scan_step(struct fixture *f, char *buf, const char *start,
				     bool after, size_t examine)
{
	struct scan_result *r = (struct scan_result *)(buf + 256);

	memset(buf, 0, 256 + sizeof *r);
	assert_int_equal(shard_scan(f->s, start, strlen(start), after, examine, collect,
				    scan_finished, buf), 0);
	for (int i = 0; i < 1000 && !r->done; i++) {
		assert_int_equal(io_ring_submit_wait(&f->io, 100000), 0);
		io_ring_dispatch(&f->io);
	}
	assert_int_equal(r->done, 1);
	return r;
}

static void test_scan_in_key_order(void **state)
{
	struct fixture *f = *state;
	struct waiter w;
	char buf[256 + sizeof(struct scan_result)];
	struct scan_result *r;

	open_shard(f, 1 << 20);
	write_one(f, put_cmd("b", "1"), &w);
	write_one(f, put_cmd("a", "1"), &w);
	write_one(f, put_cmd("d", "1"), &w);
	write_one(f, put_cmd("c", "1"), &w);
	write_one(f, (struct command){ .op = COMMAND_DELETE, .key = (const uint8_t *)"c",
				       .key_len = 1 }, &w);
	r = scan_step(f, buf, "", false, 2);
	assert_false(r->exhausted);
	assert_string_equal(buf, "a,b,");
	assert_string_equal(r->last, "b");
	/* The deleted key counts as examined but is not visited. */
	r = scan_step(f, buf, "b", true, 10);
	assert_true(r->exhausted);
	assert_string_equal(buf, "d,");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_visible_only_when_durable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit_batches_one_iteration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovery_after_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memtable_full_stalls_then_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_preallocated_and_outgrown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_callback_write_sees_true_room, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_manifest_rewritten, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_preallocation_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_rewritten_while_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_modify_write_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_in_key_order, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
