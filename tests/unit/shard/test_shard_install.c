/*
 * The snapshot install on the ring (shard/shard_install.c).
 *
 * A replica "dst" holding an old state (keys k00000.. = "old...") takes a
 * snapshot of "src" (more keys, values "new..."), staged as the receiver
 * stages it, plus a stray file the image does not name. The install is
 * stopped before each of its steps in turn (the test hook: as a crash
 * there), then recovered as at start-up: before the exchange completes the
 * old replica comes back, after it the new one, whole (every key of one
 * state, none of the other), and the staging directory is gone. The
 * order of the steps is checked against the rules that make that true
 * on power loss too (every file and directory entry the exchange brings
 * in is fsync'ed before it; the parent is fsync'ed after it and before
 * the shard is reported installed; the old replica is removed last).
 *
 * The ring is not blocked: every file-system step is one ring operation
 * (counted), each loop pass runs at most one of them, a timer on the same
 * ring fires while they are in flight, and the code run from the
 * install's completions makes no blocking file-system call (counted by
 * wrapping those calls at link time, fs_watch.h).
 * The test prints how long a turn held the loop at most, against the
 * blocking install + shard_open it replaces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/errors.h"
#include "io/ring.h"
#include "shard/block_cache.h"
#include "shard/command.h"
#include "shard/install_origin.h"
#include "shard/shard.h"
#include "shard/shard_backup.h"
#include "fs_watch.h"
#include "shard_test.h"

#define MAX_TRACE 4096

struct fixture {
	char dir[64];
	struct io_ring io;
	struct block_cache *cache;
	struct shard *src, *dst;
	struct shard_snapshot snap;
	uint64_t old_index;
	unsigned old_keys, new_keys;
	/* one install run */
	struct shard_install *in;
	int stop_at;                   /* hook call that stops it; -1: none */
	const char *quarantine;        /* the install's quarantine reason */
	int calls;
	enum shard_install_step trace[MAX_TRACE];
	size_t ntrace;
	bool installed, finished;
	double started_ms, installed_ms;  /* wall clock of the last run */
	struct shard_install_result res;
	char err[1024];
};

static void cfg_of(struct fixture *f, struct shard_config *cfg, char *dir, size_t len,
		   const char *name)
{
	snprintf(dir, len, "%s/%s", f->dir, name);
	*cfg = (struct shard_config){
		.id = 1, .dir = dir, .memtable_size = 64 << 10, .cache = f->cache,
		.table_size = 16 << 10, .level_base = 256 << 10, .block_size = 1024,
		.replicated = true,
	};
}

static struct shard *open_shard(struct fixture *f, const char *name)
{
	static char dir[256];
	struct shard_config cfg;
	struct shard *s = NULL;
	char err[512];

	cfg_of(f, &cfg, dir, sizeof dir, name);
	if (shard_open(&s, &cfg, &f->io, err, sizeof err))
		fail_msg("shard_open: %s", err);
	return s;
}

/* Keys `prefix`00000.. (`n` of them) with values tagged `tag`, applied
 * from index `first`, then flushed (a manifest edit). */
static void fill_at(struct fixture *f, struct shard *s, uint64_t first, const char *prefix,
		    unsigned n, const char *tag)
{
	char key[32], value[300];
	uint8_t buf[512];

	for (unsigned i = 0; i < n; i++) {
		struct command c;
		size_t len;
		int rv;

		snprintf(key, sizeof key, "%s%05u", prefix, i);
		snprintf(value, sizeof value, "%s%05u-%0250u", tag, i, i);
		c = put_cmd(key, value);
		len = command_encode(&c, buf);
		while ((rv = shard_apply(s, first + i, SHARD_ENTRY_COMMAND, buf, len, NULL)) ==
		       RKV_EAGAIN)
			shard_test_turn(s, &f->io);
		assert_int_equal(rv, 0);
		if (i % 16 == 0)
			shard_test_turn(s, &f->io);
	}
	shard_test_settle(s, &f->io);
	for (int i = 0; i < 100000; i++) {
		int rv = shard_backup_flush(s, first + n - 1);

		assert_true(rv == 0 || rv == 1);
		if (rv == 0)
			break;
		shard_test_turn(s, &f->io);
	}
	shard_test_settle(s, &f->io);
	assert_int_equal(shard_flushed_index(s), first + n - 1);
}

static void fill(struct fixture *f, struct shard *s, unsigned n, const char *tag)
{
	fill_at(f, s, 1, "k", n, tag);
}

/* Every key of the replica at `s` holds `tag`'s value; `n` keys exactly. */
static void check_state(struct fixture *f, struct shard *s, unsigned n, const char *tag)
{
	char key[32], want[300];
	struct get_result g;

	for (unsigned i = 0; i < f->new_keys + 1; i += i < 8 ? 1 : 37) {
		snprintf(key, sizeof key, "k%05u", i);
		if (i >= n) {
			assert_int_equal(shard_test_get(s, &f->io, key, &g), RKV_ENOTFOUND);
			continue;
		}
		snprintf(want, sizeof want, "%s%05u-%0250u", tag, i, i);
		assert_int_equal(shard_test_get(s, &f->io, key, &g), 0);
		assert_int_equal(g.len, strlen(want));
		assert_memory_equal(g.value, want, sizeof g.value < g.len ? sizeof g.value : g.len);
	}
}

/* dst as the old replica again (kept whole in dst-old). */
static void restore_old(struct fixture *f, bool save)
{
	char cmd[512];

	if (save)
		snprintf(cmd, sizeof cmd, "cp -a %s/dst %s/dst-old", f->dir, f->dir);
	else
		snprintf(cmd, sizeof cmd, "rm -rf %s/dst %s/dst.incoming && cp -a %s/dst-old %s/dst",
			 f->dir, f->dir, f->dir, f->dir);
	assert_int_equal(system(cmd), 0);
}

static int setup_with(void **state, unsigned old_keys, unsigned new_keys)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct block_cache_options copt = { .capacity = 1 << 20 };
	char err[256];

	strcpy(f->dir, "/tmp/ringkv-install-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(io_ring_init(&f->io, 256, err, sizeof err), 0);
	assert_int_equal(block_cache_create(&f->cache, &copt), 0);
	f->old_keys = old_keys;
	f->new_keys = new_keys;
	f->src = open_shard(f, "src");
	fill(f, f->src, new_keys, "new");
	assert_int_equal(shard_snapshot_begin(f->src, &f->snap), 0);
	f->dst = open_shard(f, "dst");
	fill(f, f->dst, old_keys, "old");
	f->old_index = shard_flushed_index(f->dst);
	shard_close(f->dst);
	f->dst = NULL;
	restore_old(f, true);
	*state = f;
	return 0;
}

static int setup_small(void **state)
{
	return setup_with(state, 300, 700);
}

static int setup_twenty(void **state)
{
	return setup_with(state, 700, 1450);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	shard_snapshot_end(&f->snap);
	shard_close(f->src);
	shard_close(f->dst);
	block_cache_destroy(f->cache);
	io_ring_exit(&f->io);
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* The snapshot's files copied into dst.incoming (blocking: the test is the
 * receiver), plus a stray table; the names written go into `names`. */
static size_t stage(struct fixture *f, char (*names)[SHARD_FILE_NAME_MAX])
{
	char dst[128], staging[256], from[512], to[512], err[512];
	static uint8_t buf[1 << 16];
	size_t n = 0;

	snprintf(dst, sizeof dst, "%s/dst", f->dir);
	if (shard_snapshot_stage(dst, staging, sizeof staging, err, sizeof err))
		fail_msg("stage: %s", err);
	for (size_t i = 0; i <= f->snap.nfiles; i++) {
		const char *name = i < f->snap.nfiles ? f->snap.files[i].name : "999999.sst";
		int in, out;
		ssize_t got;

		snprintf(from, sizeof from, "%s/src/%s", f->dir,
			 i < f->snap.nfiles ? name : f->snap.files[0].name);
		snprintf(to, sizeof to, "%s/%s", staging, name);
		in = open(from, O_RDONLY);
		out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0644);
		assert_true(in >= 0 && out >= 0);
		while ((got = read(in, buf, sizeof buf)) > 0)
			assert_int_equal(write(out, buf, (size_t)got), got);
		assert_int_equal(got, 0);
		close(in);
		close(out);
		snprintf(names[n++], SHARD_FILE_NAME_MAX, "%s", name);
	}
	return n;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static bool hook(void *arg, enum shard_install_step step)
{
	struct fixture *f = arg;

	if (f->calls++ == f->stop_at)
		return false;
	assert_true(f->ntrace < MAX_TRACE);
	f->trace[f->ntrace++] = step;
	return true;
}

static void on_installed(void *arg, const struct shard_install_result *res)
{
	struct fixture *f = arg;

	assert_false(f->installed);
	f->installed = true;
	f->installed_ms = now_ms();
	f->res = *res;
	snprintf(f->err, sizeof f->err, "%s", res->err ? res->err : "");
}

static void on_finished(void *arg)
{
	struct fixture *f = arg;

	assert_false(f->finished);
	f->finished = true;
}

struct timer_op {
	struct io_op op;
	int done;
};

static void tick_done(struct io_op *op, int res, unsigned flags)
{
	(void)flags;
	assert_int_equal(res, -ETIME);
	((struct timer_op *)op->data)->done++;
}


struct run_stats {
	unsigned turns;                /* loop passes (wait + dispatch) */
	unsigned timer_turns;          /* a timer fired, the install under way */
	double max_turn_ms;            /* the longest one dispatch took */
};

/* Opens dst (the old shard, serving), stages the snapshot and starts the
 * install, stopped by the hook at call `stop_at` (-1: never). */
static void start(struct fixture *f, int stop_at)
{
	static char names[64][SHARD_FILE_NAME_MAX];
	static char dir[128];
	static struct shard_config cfg;
	struct shard_install_args a;
	size_t nnames;
	char err[512];

	restore_old(f, false);
	f->dst = open_shard(f, "dst");
	nnames = stage(f, names);
	cfg_of(f, &cfg, dir, sizeof dir, "dst");
	f->stop_at = stop_at;
	f->calls = 0;
	f->ntrace = 0;
	f->installed = f->finished = false;
	memset(&f->res, 0, sizeof f->res);
	a = (struct shard_install_args){
		.cfg = &cfg, .io = &f->io, .manifest = f->snap.manifest,
		.manifest_len = f->snap.manifest_len,
		.staged = (const char (*)[SHARD_FILE_NAME_MAX])names, .nstaged = nnames,
		.old = f->dst, .installed = on_installed, .finished = on_finished, .arg = f,
		.step_hook = hook, .quarantine = f->quarantine,
		.origin_index = f->snap.index, .origin_term = 3,
	};
	f->started_ms = now_ms();
	assert_int_equal(shard_install_start(&f->in, &a, err, sizeof err), 0);
}

/*
 * start(), then runs the install until it finishes or the hook stops it.
 * Each loop turn waits for a short timer on the same ring: it fires while
 * the install's steps are in flight, and a loop pass runs at most one of
 * them.
 */
static void run(struct fixture *f, int stop_at, struct run_stats *rs)
{
	double t_end;

	memset(rs, 0, sizeof *rs);
	start(f, stop_at);
	fs_watch_calls = 0;
	t_end = now_ms() + 120000;
	for (int i = 0; i < 1000000 && shard_install_busy(f->in) && now_ms() < t_end; i++) {
		struct timer_op tick = { .op = { .done = tick_done, .data = &tick } };
		struct __kernel_timespec ts = { .tv_nsec = 200000 };
		struct io_uring_sqe *sqe = io_ring_get_sqe(&f->io);
		double t0;

		/* Another user of the ring: a 0.2 ms timer, each turn. */
		io_uring_prep_timeout(sqe, &ts, 0, 0);
		io_op_attach(sqe, &tick.op);
		while (!tick.done) {
			uint64_t before = shard_install_stats(f->in)->ops;

			assert_int_equal(io_ring_submit_wait(&f->io, 1000000), 0);
			t0 = now_ms();
			fs_watch_on = true;
			io_ring_dispatch(&f->io);
			fs_watch_on = false;
			if (now_ms() - t0 > rs->max_turn_ms)
				rs->max_turn_ms = now_ms() - t0;
			/* One pass of the loop, at most one of the install's
			 * operations completed: it gives the loop back. */
			assert_true(shard_install_stats(f->in)->ops - before <= 1);
			rs->turns++;
		}
		if (shard_install_busy(f->in))
			rs->timer_turns++; /* fired while the install was under way */
	}
	assert_false(shard_install_busy(f->in));
	/* Everything the install did from its completions (the steps, the
	 * new shard's build) made no blocking file-system call. */
	if (fs_watch_calls)
		fail_msg("%u blocking calls during the install, the last %s", fs_watch_calls,
			 fs_watch_last);
}

/* Ends a run as a crash would (the install stopped, nothing closed
 * gracefully matters on disk), recovers as at start-up, and checks that
 * dst is whole: old before the exchange, new after. */
static void crash_and_check(struct fixture *f, bool expect_new)
{
	char dst[128], err[512], staging[256];
	struct stat st;

	shard_install_free(f->in);
	f->in = NULL;
	if (f->res.fresh)
		shard_close(f->res.fresh);
	shard_close(f->dst);
	f->dst = NULL;
	snprintf(dst, sizeof dst, "%s/dst", f->dir);
	assert_int_equal(shard_snapshot_recover(dst, err, sizeof err), 0);
	snprintf(staging, sizeof staging, "%s.incoming", dst);
	assert_int_not_equal(stat(staging, &st), 0);
	f->dst = open_shard(f, "dst");
	if (expect_new) {
		assert_int_equal(shard_applied_index(f->dst), f->snap.index);
		check_state(f, f->dst, f->new_keys, "new");
	} else {
		assert_int_equal(shard_applied_index(f->dst), f->old_index);
		check_state(f, f->dst, f->old_keys, "old");
	}
	shard_close(f->dst);
	f->dst = NULL;
}

static size_t first(const struct fixture *f, enum shard_install_step s)
{
	for (size_t i = 0; i < f->ntrace; i++)
		if (f->trace[i] == s)
			return i;
	fail_msg("step %s not taken", shard_install_step_name(s));
	return 0;
}

static size_t last(const struct fixture *f, enum shard_install_step s)
{
	for (size_t i = f->ntrace; i-- > 0;)
		if (f->trace[i] == s)
			return i;
	fail_msg("step %s not taken", shard_install_step_name(s));
	return 0;
}

static size_t first_of(const enum shard_install_step *trace, size_t n,
		       enum shard_install_step s)
{
	for (size_t i = 0; i < n; i++)
		if (trace[i] == s)
			return i;
	fail_msg("step %s not taken", shard_install_step_name(s));
	return 0;
}

static unsigned table_files(struct shard *s)
{
	struct shard_stats st;

	shard_get_stats(s, &st);
	return (unsigned)st.table_files;
}

static size_t count(const struct fixture *f, enum shard_install_step s)
{
	size_t n = 0;

	for (size_t i = 0; i < f->ntrace; i++)
		n += f->trace[i] == s;
	return n;
}

/*
 * A whole install: the order its steps took is one that a power loss at
 * any point leaves whole, each step one ring operation; then a crash
 * before every one of its steps in turn.
 */
static void test_install_crash_before_each_step(void **state)
{
	struct fixture *f = *state;
	struct run_stats rs;
	enum shard_install_step full[MAX_TRACE];
	size_t nfull, tables = f->snap.nfiles, exchange;
	unsigned ops;

	assert_true(tables >= 2);
	run(f, -1, &rs);
	assert_true(f->installed && f->finished);
	assert_int_equal(f->res.rv, 0);
	assert_true(f->res.swapped);
	assert_non_null(f->res.fresh);
	assert_int_equal(f->res.index, f->snap.index);
	assert_int_equal(shard_applied_index(f->res.fresh), f->snap.index);
	check_state(f, f->res.fresh, f->new_keys, "new");
	/* Served meanwhile by the old shard, still open and whole. */
	check_state(f, f->dst, f->old_keys, "old");

	/* Every table opened, checked and fsync'ed before the MANIFEST... */
	assert_int_equal(count(f, INSTALL_STRAY_UNLINK), 1);
	assert_int_equal(count(f, INSTALL_TABLE_OPEN), tables);
	assert_int_equal(count(f, INSTALL_TABLE_META), tables);
	assert_int_equal(count(f, INSTALL_TABLE_FSYNC), tables);
	assert_true(last(f, INSTALL_TABLE_FSYNC) < first(f, INSTALL_MANIFEST_OPEN));
	/* ...whose data is durable before its name... */
	assert_true(first(f, INSTALL_MANIFEST_WRITE) < first(f, INSTALL_MANIFEST_SYNC));
	assert_true(first(f, INSTALL_MANIFEST_SYNC) < first(f, INSTALL_MANIFEST_RENAME));
	/* ...and every name in the staging directory before the exchange... */
	assert_true(first(f, INSTALL_MANIFEST_RENAME) < first(f, INSTALL_STAGING_SYNC));
	/* ...the origin record's too (install_origin.h), written whole and
	 * fdatasync'ed inside the staging directory, so the exchange brings
	 * it in with the tables... */
	assert_true(first(f, INSTALL_ORIGIN_WRITE) < first(f, INSTALL_ORIGIN_SYNC));
	assert_true(first(f, INSTALL_ORIGIN_SYNC) < first(f, INSTALL_STAGING_SYNC));
	{
		struct install_origin o;
		char dst[PATH_MAX];

		snprintf(dst, sizeof dst, "%s/dst", f->dir);
		assert_int_equal(install_origin_read(dst, &o), 0);
		assert_int_equal(o.index, f->snap.index);
		assert_int_equal(o.term, 3);
	}
	exchange = first(f, INSTALL_EXCHANGE);
	assert_int_equal(count(f, INSTALL_EXCHANGE), 1);
	assert_true(first(f, INSTALL_STAGING_SYNC) < exchange);
	assert_true(last(f, INSTALL_STRAY_UNLINK) < exchange);
	/* ...which is durable before the shard is reported installed... */
	assert_true(exchange < first(f, INSTALL_PARENT_SYNC));
	assert_true(first(f, INSTALL_PARENT_SYNC) < first(f, INSTALL_BUILD));
	/* ...and the old replica goes only after that. */
	assert_true(first(f, INSTALL_BUILD) < first(f, INSTALL_OLD_UNLINK));
	assert_true(last(f, INSTALL_OLD_UNLINK) < first(f, INSTALL_OLD_RMDIR));
	assert_int_equal(count(f, INSTALL_CLOSE), 0);
	/* Each step but BUILD was one ring operation: the stray, 5 per table,
	 * 4 for the MANIFEST, 4 for INSTALLED, 2 for the staging directory,
	 * the parent's open, the exchange, its fsync and close, the old
	 * replica's files (its tables, MANIFEST, MANIFEST.tmp, INSTALLED) and
	 * directory. */
	ops = (unsigned)shard_install_stats(f->in)->ops;
	assert_int_equal(ops, f->ntrace - 1);
	assert_int_equal(count(f, INSTALL_OLD_UNLINK), table_files(f->dst) + 3);
	assert_int_equal(ops, 1 + 5 * tables + 4 + 4 + 2 + 1 + 1 + 2 +
			      table_files(f->dst) + 3 + 1);
	assert_true(rs.turns >= ops);
	assert_true(rs.timer_turns > 0);
	nfull = f->ntrace;
	memcpy(full, f->trace, nfull * sizeof full[0]);
	/* The shard built from the install goes on: entries after the
	 * snapshot, flushed (a table, and an edit appended to the installed
	 * MANIFEST), are there after a reopen. */
	fill_at(f, f->res.fresh, f->snap.index + 1, "z", 200, "after");
	shard_close(f->res.fresh);
	f->res.fresh = NULL;
	shard_close(f->dst);
	f->dst = open_shard(f, "dst");
	assert_int_equal(shard_applied_index(f->dst), f->snap.index + 200);
	check_state(f, f->dst, f->new_keys, "new");
	{
		char key[32], want[300];
		struct get_result g;

		for (unsigned i = 0; i < 200; i += 13) {
			snprintf(key, sizeof key, "z%05u", i);
			snprintf(want, sizeof want, "after%05u-%0250u", i, i);
			assert_int_equal(shard_test_get(f->dst, &f->io, key, &g), 0);
			assert_memory_equal(g.value, want, sizeof g.value);
		}
	}
	shard_close(f->dst);
	f->dst = NULL;
	shard_install_free(f->in);
	f->in = NULL;

	/* A crash before each step (the hook stops the install there). */
	for (size_t k = 0; k < nfull; k++) {
		print_message("crash before step %zu (%s)\n", k, shard_install_step_name(full[k]));
		run(f, (int)k, &rs);
		assert_int_equal(f->ntrace, k);
		/* Stopped before step k: the exchange happened iff it came
		 * earlier. No callback ran before BUILD. */
		assert_int_equal(f->installed, k > first_of(full, nfull, INSTALL_BUILD));
		crash_and_check(f, k > first_of(full, nfull, INSTALL_EXCHANGE));
	}
}

/* Entries of DIR/quarantine; the name of the last one read into `name`. */
static unsigned quarantined(struct fixture *f, char *name, size_t len)
{
	char path[128];
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	snprintf(path, sizeof path, "%s/quarantine", f->dir);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(name, len, "%s", de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

/* The replica in DIR/quarantine/<name> holds the old state, whole. */
static void check_quarantined_old(struct fixture *f, const char *name)
{
	char rel[128];
	struct shard *s;

	snprintf(rel, sizeof rel, "quarantine/%.100s", name);
	s = open_shard(f, rel);
	assert_int_equal(shard_applied_index(s), f->old_index);
	check_state(f, s, f->old_keys, "old");
	shard_close(s);
}

/*
 * Issue 14: a damaged replica replaced by a snapshot is moved into
 * DIR/quarantine/<dir>-<time>-<reason>-at-<index>, whole, in the same
 * exchange that installs the new one: nothing of it is unlinked. A crash
 * before any step leaves dst whole (old before the exchange, new after);
 * after the exchange the old replica is in quarantine, before it never
 * (at most the staged snapshot, once moved there).
 */
static void test_install_quarantines_a_damaged_replica(void **state)
{
	struct fixture *f = *state;
	enum shard_install_step full[MAX_TRACE];
	char name[256], want[64], cmd[160];
	struct run_stats rs;
	size_t nfull, exchange, move;

	f->quarantine = "test-damage";
	run(f, -1, &rs);
	assert_true(f->installed && f->finished);
	assert_int_equal(f->res.rv, 0);
	assert_true(f->res.swapped);
	assert_true(shard_install_stats(f->in)->quarantined);
	check_state(f, f->res.fresh, f->new_keys, "new");
	assert_int_equal(count(f, INSTALL_OLD_UNLINK), 0);
	assert_int_equal(count(f, INSTALL_OLD_RMDIR), 0);
	assert_int_equal(count(f, INSTALL_QUARANTINE_MOVE), 1);
	move = first(f, INSTALL_QUARANTINE_MOVE);
	exchange = first(f, INSTALL_EXCHANGE);
	assert_true(first(f, INSTALL_STAGING_SYNC) < first(f, INSTALL_QUARANTINE_MKDIR));
	assert_true(first(f, INSTALL_QUARANTINE_MKDIR) < move && move < exchange);
	assert_true(exchange < first(f, INSTALL_QUARANTINE_SYNC));
	assert_true(first(f, INSTALL_QUARANTINE_SYNC) < first(f, INSTALL_BUILD));
	/* Named dst-<time>-<reason>-at-<index>, holding the old replica. */
	assert_int_equal(quarantined(f, name, sizeof name), 1);
	snprintf(want, sizeof want, "-test-damage-at-%" PRIu64, f->snap.index);
	assert_memory_equal(name, "dst-", 4);
	assert_string_equal(name + strlen(name) - strlen(want), want);
	shard_close(f->res.fresh);
	f->res.fresh = NULL;
	shard_close(f->dst);
	f->dst = NULL;
	check_quarantined_old(f, name);
	nfull = f->ntrace;
	memcpy(full, f->trace, nfull * sizeof full[0]);
	shard_install_free(f->in);
	f->in = NULL;

	for (size_t k = 0; k < nfull; k++) {
		snprintf(cmd, sizeof cmd, "rm -rf %s/quarantine", f->dir);
		assert_int_equal(system(cmd), 0);
		print_message("crash before step %zu (%s)\n", k, shard_install_step_name(full[k]));
		run(f, (int)k, &rs);
		crash_and_check(f, k > exchange);
		if (k > exchange) {
			assert_int_equal(quarantined(f, name, sizeof name), 1);
			check_quarantined_old(f, name);
		} else {
			/* never the old replica; the staged snapshot once moved */
			assert_int_equal(quarantined(f, name, sizeof name), k > move ? 1 : 0);
		}
	}
}

static unsigned open_fds(void)
{
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* A failed install left the old replica serving, and no descriptor behind. */
static void old_replica_kept(struct fixture *f, unsigned fds)
{
	check_state(f, f->dst, f->old_keys, "old");
	shard_close(f->dst);
	f->dst = NULL;
	assert_int_equal(open_fds(), fds);
}

/* Loop turns until the install finished, at most `turns`. */
static void drive(struct fixture *f, int turns)
{
	for (int i = 0; i < turns && !f->finished; i++) {
		assert_int_equal(io_ring_submit_wait(&f->io, 100000), 0);
		io_ring_dispatch(&f->io);
	}
}

/*
 * A staged table damaged in transfer (its footer), then a stop asked
 * before the exchange: both fail with `dir` unchanged, the old shard goes
 * on, and every file the install opened is closed through the ring.
 */
static void test_install_failures_keep_the_old_replica(void **state)
{
	struct fixture *f = *state;
	char path[512];
	uint8_t zeros[64] = { 0 };
	struct run_stats rs;
	unsigned fds = open_fds();
	int fd;

	/* Staged (a run stopped after its first step), the last table's
	 * footer then zeroed, installed again without building a shard. */
	run(f, 1, &rs);
	shard_install_free(f->in);
	f->in = NULL;
	snprintf(path, sizeof path, "%s/dst.incoming/%s", f->dir,
		 f->snap.files[f->snap.nfiles - 1].name);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, zeros, sizeof zeros,
				(off_t)(f->snap.files[f->snap.nfiles - 1].size - sizeof zeros)),
			 (ssize_t)sizeof zeros);
	close(fd);
	{
		struct shard_install_args a = {
			.cfg = NULL, .dir = NULL, .io = &f->io, .manifest = f->snap.manifest,
			.manifest_len = f->snap.manifest_len, .old = f->dst,
			.installed = on_installed, .finished = on_finished, .arg = f,
		};
		char dir[128], err[512];

		snprintf(dir, sizeof dir, "%s/dst", f->dir);
		a.dir = dir;
		f->installed = f->finished = false;
		assert_int_equal(shard_install_start(&f->in, &a, err, sizeof err), 0);
		drive(f, 10000);
		assert_true(f->installed && f->finished);
		assert_int_equal(f->res.rv, RKV_ECORRUPT);
		assert_false(f->res.swapped);
		assert_null(f->res.fresh);
		assert_non_null(strstr(f->err, "footer"));
		shard_install_free(f->in);
		f->in = NULL;
	}
	old_replica_kept(f, fds);

	/* A stop before the exchange: the install ends at its next step. */
	{
		start(f, -1);
		drive(f, 3);
		shard_install_stop(f->in);
		drive(f, 10000);
		assert_true(f->installed && f->finished);
		assert_int_equal(f->res.rv, RKV_ESHUTDOWN);
		assert_false(f->res.swapped);
		shard_install_free(f->in);
		f->in = NULL;
	}
	old_replica_kept(f, fds);
	crash_and_check(f, false);
}

struct closer {
	struct io_op op;
	unsigned done;
};

static void closer_done(struct io_op *op, int res, unsigned flags)
{
	(void)flags;
	assert_int_equal(res, 0);
	((struct closer *)op->data)->done++;
}

/*
 * About twenty tables: how long one loop turn was held at most during the
 * install (its steps are ring operations; the longest turn is the one that
 * builds the new shard), what closing the old shard costs (still blocking,
 * in the receiver, once it is quiet), against the blocking install and
 * shard_open this replaces. Figures printed, not asserted.
 */
static void test_install_twenty_tables_figures(void **state)
{
	struct fixture *f = *state;
	static char names[64][SHARD_FILE_NAME_MAX];
	struct run_stats rs;
	char dir[128], err[512];
	uint64_t index = 0;
	double t0, close_ms, blocking_ms;

	unsigned old_tables, ops, close_calls, closes;
	struct closer closer = { .op = { .done = closer_done, .data = &closer } };

	assert_true(f->snap.nfiles >= 15);
	run(f, -1, &rs);
	old_tables = table_files(f->dst);
	ops = (unsigned)shard_install_stats(f->in)->ops;
	assert_int_equal(f->res.rv, 0);
	assert_non_null(f->res.fresh);
	check_state(f, f->res.fresh, f->new_keys, "new");
	/* As the receiver retires it: its files closed by the ring. */
	fs_watch_calls = 0;
	fs_watch_on = true;
	t0 = now_ms();
	closes = shard_close_files_async(f->dst, &closer.op);
	shard_close(f->dst);
	close_ms = now_ms() - t0;
	fs_watch_on = false;
	close_calls = fs_watch_calls;
	/* Its tables and its directory: a replica opened at start-up holds
	 * no manifest descriptor until its first edit, and this one made
	 * none since it was opened. */
	assert_int_equal(closes, old_tables + 1);
	assert_int_equal(close_calls, 0);
	for (int i = 0; i < 1000 && closer.done < closes; i++) {
		assert_int_equal(io_ring_submit_wait(&f->io, 100000), 0);
		io_ring_dispatch(&f->io);
	}
	assert_int_equal(closer.done, closes);
	f->dst = f->res.fresh;
	shard_install_free(f->in);
	f->in = NULL;
	printf("# install of %zu tables over a replica of %u: %.3f ms until installed, %u ring "
	       "ops over %u loop passes (a 0.2 ms timer fired %u times meanwhile), longest pass "
	       "%.3f ms; closing the old shard %.3f ms (%u blocking calls)\n", f->snap.nfiles,
	       old_tables, f->installed_ms - f->started_ms, ops, rs.turns, rs.timer_turns,
	       rs.max_turn_ms, close_ms, close_calls);

	/* The same work done blocking, as before: close, install, open. */
	(void)stage(f, names);
	snprintf(dir, sizeof dir, "%s/dst", f->dir);
	t0 = now_ms();
	shard_close(f->dst);
	f->dst = NULL;
	assert_int_equal(shard_snapshot_install(dir, f->snap.manifest, f->snap.manifest_len,
						&index, err, sizeof err), 0);
	fs_watch_calls = 0;
	fs_watch_on = true;
	f->dst = open_shard(f, "dst");
	fs_watch_on = false;
	blocking_ms = now_ms() - t0;
	/* The watch sees blocking calls where there are some. */
	assert_true(fs_watch_calls > f->snap.nfiles);
	printf("# blocking close + install + shard_open of the same: %.3f ms (shard_open "
	       "alone: %u blocking file-system calls)\n", blocking_ms, fs_watch_calls);
	check_state(f, f->dst, f->new_keys, "new");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_install_crash_before_each_step,
						setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_install_failures_keep_the_old_replica,
						setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_install_quarantines_a_damaged_replica,
						setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_install_twenty_tables_figures,
						setup_twenty, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
