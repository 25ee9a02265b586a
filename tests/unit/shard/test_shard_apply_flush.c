/*
 * FLUSH entries of the replicated shard (shard/shard_drop.c), on the
 * fixture of apply_fixture.h: FLUSHes in the mix drop every key on every
 * replica at their place in the log, whatever flush or compaction runs,
 * survive a reopen, and a snapshot taken after one carries the empty state.
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
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/errors.h"
#include "shard/deadline_index.h"
#include "apply_fixture.h"

/* ---- FLUSH (shard/shard_drop.c) ---- */

/* .sst files in the shard directory `name`. */
static unsigned sst_files(struct fixture *f, const char *name)
{
	char dir[128];
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	snprintf(dir, sizeof dir, "%s/%s", f->dir, name);
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += strstr(de->d_name, ".sst") != NULL;
	closedir(d);
	return n;
}

/*
 * A FLUSH every 1333rd entry, fed to a leader (a client on every entry, the
 * ring turning) and to a follower (as fast as it takes them, so FLUSHes
 * land while memtable flushes and compactions run): both end as the model,
 * which holds only what was written after the last FLUSH; every FLUSH was
 * applied once on each and answered; a reopen replays the log above the
 * flushed index to the same state.
 */
static void test_flush_entries_same_state(void **state)
{
	struct fixture *f = *state;
	struct shard_stats st;

	flush_every = 1333;
	feed_two_paces(f, 0xf1a5f1a5ull);
	for (int i = 0; i < 2; i++) {
		shard_get_stats(f->s[i], &st);
		assert_int_equal(st.drops, NENTRIES / 1333);
		assert_int_equal(st.apply_errors, 0);
		assert_int_equal(shard_applied_index(f->s[i]), NENTRIES);
		assert_true(shard_flushed_index(f->s[i]) >= NENTRIES / 1333 * 1333);
		check_model(f, f->s[i]);
	}
	reopen_replay(f, 1, "b");
}

/*
 * One FLUSH after tables exist and while background work is pending: once
 * applied, no key is left (gets, a scan, the live-key count), no table is
 * in the version nor on disk, the flushed index is the FLUSH's and the hook
 * was told. A key written after it lives and survives a reopen, which
 * brings back none of the old keys. A crash image taken before the FLUSH's
 * edit was durable comes back with the old keys, and the FLUSH handed in
 * again from the log drops them. A snapshot taken after the FLUSH installs
 * an empty replica that catches up from the log.
 */
static void test_flush_drops_tables(void **state)
{
	struct fixture *f = *state;
	const uint64_t F = NENTRIES / 2 + 1;
	struct waiter fl = { .w.done = on_done };
	struct command flush = { .op = COMMAND_FLUSH };
	char cmd[512], ddir[128], err[512];
	struct shard_snapshot snap;
	static struct get_result before[NKEYS];
	struct shard_stats st;
	unsigned old_keys = 0;
	uint64_t index = 0;

	make_entries(0xd20bd20bull);
	open_rep(f, 0, "d", 0);
	apply_range(f, f->s[0], 1, F - 1, 0);
	/* Until a flush has made a table (bounded: a few turns suffice). */
	shard_get_stats(f->s[0], &st);
	for (int i = 0; i < 2000 && st.table_files == 0; i++) {
		turn(f);
		shard_get_stats(f->s[0], &st);
	}
	assert_true(st.table_files > 0);
	assert_true(shard_live_keys(f->s[0]) > 0);

	assert_int_equal(apply_cmd(f->s[0], F, flush, &fl.w), 0);
	for (int i = 0; i < 100000 && !fl.done; i++)
		turn(f);
	assert_int_equal(fl.done, 1);
	assert_int_equal(fl.rv, 0);
	assert_int_equal(shard_applied_index(f->s[0]), F);
	assert_int_equal(shard_flushed_index(f->s[0]), F);
	assert_int_equal(f->hooks[0].flushed[f->hooks[0].nflushed - 1], F);
	shard_get_stats(f->s[0], &st);
	assert_int_equal(st.drops, 1);
	assert_int_equal(st.table_files, 0);
	assert_int_equal(shard_live_keys(f->s[0]), 0);
	memset(model, 0, sizeof model);
	check_model(f, f->s[0]);
	for (int i = 0; i < 1000 && sst_files(f, "d") > 0; i++)
		turn(f);
	assert_int_equal(sst_files(f, "d"), 0);

	/* Written after it: lives, here and after a reopen (from the log). */
	assert_int_equal(apply_cmd(f->s[0], F + 1, put_cmd("key0001", "after"), NULL), 0);
	settle(f);
	model[1].present = true;
	memcpy(model[1].value, "after", 5);
	model[1].len = 5;
	check_model(f, f->s[0]);
	shard_close(f->s[0]);
	f->s[0] = NULL;
	open_rep(f, 0, "d", 0);
	assert_int_equal(shard_applied_index(f->s[0]), F);
	assert_int_equal(apply_cmd(f->s[0], F + 1, put_cmd("key0001", "after"), NULL), 0);
	settle(f);
	check_model(f, f->s[0]);

	/* A snapshot after the FLUSH: no table, the FLUSH's index. */
	assert_int_equal(shard_snapshot_begin(f->s[0], &snap), 0);
	assert_int_equal(snap.index, F);
	assert_int_equal(snap.nfiles, 0);
	snprintf(ddir, sizeof ddir, "%s/ds", f->dir);
	ship(f, &snap, ddir);
	assert_int_equal(shard_snapshot_install(ddir, snap.manifest, snap.manifest_len, &index,
						err, sizeof err), 0);
	shard_snapshot_end(&snap);
	assert_int_equal(index, F);
	open_rep(f, 1, "ds", 0);
	assert_int_equal(shard_applied_index(f->s[1]), F);
	assert_int_equal(apply_cmd(f->s[1], F + 1, put_cmd("key0001", "after"), NULL), 0);
	settle(f);
	check_model(f, f->s[1]);
	shard_close(f->s[1]);
	f->s[1] = NULL;

	/* The crash image before the FLUSH's edit is durable: "e" at F - 1
	 * settled, the FLUSH handed in (its edit queued, not submitted), the
	 * directory copied as a crash would leave it. */
	open_rep(f, 1, "e", 0);
	apply_range(f, f->s[1], 1, F - 1, 0);
	settle(f);
	for (unsigned k = 0; k < NKEYS; k++) {
		char name[16];

		key_name(name, k);
		before[k].rv = shard_test_get(f->s[1], &f->io, name, &before[k]);
	}
	memset(&fl, 0, sizeof fl);
	fl.w.done = on_done;
	assert_int_equal(apply_cmd(f->s[1], F, flush, &fl.w), 0);
	assert_int_equal(fl.done, 0);
	snprintf(cmd, sizeof cmd, "cp -a %s/e %s/e2", f->dir, f->dir);
	assert_int_equal(system(cmd), 0);
	shard_close(f->s[1]);
	f->s[1] = NULL;
	open_rep(f, 1, "e2", 0);
	assert_true(shard_applied_index(f->s[1]) < F);
	apply_range(f, f->s[1], shard_applied_index(f->s[1]) + 1, F - 1, 0);
	settle(f);
	for (unsigned k = 0; k < NKEYS; k++) {
		struct get_result g;
		char name[16];

		key_name(name, k);
		assert_int_equal(shard_test_get(f->s[1], &f->io, name, &g), before[k].rv);
		old_keys += g.rv == 0;
		if (g.rv == 0) {
			assert_int_equal(g.len, before[k].len);
			assert_memory_equal(g.value, before[k].value,
					    g.len < sizeof g.value ? g.len : sizeof g.value);
		}
	}
	assert_true(old_keys > 0);
	assert_int_equal(apply_cmd(f->s[1], F, flush, NULL), 0);
	settle(f);
	assert_int_equal(shard_applied_index(f->s[1]), F);
	memset(model, 0, sizeof model);
	check_model(f, f->s[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_flush_entries_same_state, apply_fixture_setup,
						apply_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_flush_drops_tables, apply_fixture_setup,
						apply_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
