/*
 * Snapshots of the replicated shard (shard/shard_snapshot.c), on the
 * fixture of apply_fixture.h: a snapshot shipped in chunks while the sender
 * goes on and installed gives a replica that, with the log after the
 * snapshot's index, holds the same contents; every crash point of an
 * install recovers to the old replica or the new one, never a mix; a
 * single-node (WAL) directory is not opened as a replicated shard.
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

static bool file_exists(const char *dir, const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return stat(path, &st) == 0;
}

/*
 * A snapshot of a shard with data, shipped in chunks while the sender goes
 * on (its compactions drop the snapshot's tables, which stay readable while
 * pinned), installed where no replica was: the new replica starts at the
 * snapshot's index and, with the log after it, holds every key the model
 * holds. Installed again over an existing replica (the exchange), and a
 * failed install leaves the old replica whole.
 */
static void test_snapshot_install(void **state)
{
	struct fixture *f = *state;
	struct shard_snapshot snap, again;
	char adir[128], bdir[128], err[512], fill[32], value[200];
	uint64_t index = 0, i, before;
	struct shard_stats st;
	bool dropped = false;
	char names[64][32];
	size_t nnames;

	make_entries(0x5eed5eedull);
	snprintf(adir, sizeof adir, "%s/sa", f->dir);
	snprintf(bdir, sizeof bdir, "%s/sb", f->dir);
	open_rep(f, 0, "sa", 0);
	apply_range(f, f->s[0], 1, NENTRIES, 4);
	settle(f);
	assert_int_equal(shard_snapshot_begin(f->s[0], &snap), 0);
	assert_int_equal(snap.index, shard_flushed_index(f->s[0]));
	assert_true(snap.index > 0 && snap.nfiles > 0);

	/* The sender goes on: new keys, flushes, compactions. */
	shard_get_stats(f->s[0], &st);
	before = st.compactions;
	memset(value, 'w', sizeof value - 1);
	value[sizeof value - 1] = '\0';
	for (i = NENTRIES + 1; i <= NENTRIES + 1500; i++) {
		/* Between the model's keys: compactions take in every range. */
		snprintf(fill, sizeof fill, "key%04ux%05u", (unsigned)(i % NKEYS), (unsigned)i);
		assert_int_equal(apply_cmd(f->s[0], i, put_cmd(fill, value), NULL), 0);
		if (i % 8 == 0)
			turn(f);
	}
	settle(f);
	shard_get_stats(f->s[0], &st);
	assert_true(st.compactions > before);
	for (size_t k = 0; k < snap.nfiles; k++) {
		/* pinned: still there, though maybe no longer in the version */
		assert_true(file_exists(adir, snap.files[k].name));
	}
	ship(f, &snap, bdir);
	assert_int_equal(shard_snapshot_install(bdir, snap.manifest, snap.manifest_len, &index,
						err, sizeof err), 0);
	assert_int_equal(index, snap.index);
	assert_false(file_exists(f->dir, "sb.incoming"));
	for (size_t k = 0; k < snap.nfiles; k++)
		assert_true(file_exists(bdir, snap.files[k].name));
	nnames = snap.nfiles < 64 ? snap.nfiles : 64;
	for (size_t k = 0; k < nnames; k++)
		memcpy(names[k], snap.files[k].name, sizeof names[k]);
	shard_snapshot_end(&snap);
	assert_int_equal(snap.nfiles, 0);
	turn(f);
	turn(f);
	/* Unpinned: the tables the compactions dropped are gone now. */
	for (size_t k = 0; k < nnames; k++)
		dropped |= !file_exists(adir, names[k]);
	assert_true(dropped);

	open_rep(f, 1, "sb", 0);
	assert_int_equal(shard_applied_index(f->s[1]), index);
	apply_range(f, f->s[1], index + 1, NENTRIES, 3);
	settle(f);
	check_model(f, f->s[1]);

	/* Over an existing replica: swapped whole. */
	shard_close(f->s[1]);
	f->s[1] = NULL;
	assert_int_equal(shard_snapshot_begin(f->s[0], &again), 0);
	assert_true(again.index > NENTRIES);
	ship(f, &again, bdir);
	assert_int_equal(shard_snapshot_install(bdir, again.manifest, again.manifest_len,
						&index, err, sizeof err), 0);
	assert_int_equal(index, again.index);
	open_rep(f, 1, "sb", 0);
	assert_int_equal(shard_applied_index(f->s[1]), again.index);
	check_model_keys(f, f->s[1], false);

	/* A staged snapshot missing its files, or a damaged image: refused,
	 * the replica unchanged. */
	shard_close(f->s[1]);
	f->s[1] = NULL;
	ship(f, &(struct shard_snapshot){ 0 }, bdir);
	assert_int_equal(shard_snapshot_install(bdir, again.manifest, again.manifest_len,
						&index, err, sizeof err), RKV_ECORRUPT);
	assert_non_null(strstr(err, ".sst"));
	/* A table cut short in transfer (its size right, its tail zeros). */
	ship(f, &again, bdir);
	{
		char path[512];
		uint8_t zeros[64] = { 0 };
		int fd;

		snprintf(path, sizeof path, "%s.incoming/%s", bdir, again.files[0].name);
		fd = open(path, O_WRONLY);
		assert_true(fd >= 0);
		assert_int_equal(pwrite(fd, zeros, sizeof zeros,
					(off_t)(again.files[0].size - sizeof zeros)),
				 (ssize_t)sizeof zeros);
		close(fd);
	}
	assert_int_equal(shard_snapshot_install(bdir, again.manifest, again.manifest_len,
						&index, err, sizeof err), RKV_ECORRUPT);
	assert_non_null(strstr(err, "footer"));
	again.manifest[again.manifest_len / 2] ^= 0x40;
	assert_int_equal(shard_snapshot_install(bdir, again.manifest, again.manifest_len,
						&index, err, sizeof err), RKV_ECORRUPT);
	shard_snapshot_end(&again);
	open_rep(f, 1, "sb", 0);
	assert_int_equal(shard_applied_index(f->s[1]), index);
	check_model_keys(f, f->s[1], false);

	/* Only replicated shards take snapshots. */
	assert_int_equal(shard_snapshot_read(&snap, 0, 0, value, 1, &(struct chunk_io){ 0 }.c),
			 RKV_EINVAL);
}

/* The staged MANIFEST, as shard_snapshot_install writes it. */
static void stage_manifest(const char *dir, const struct shard_snapshot *snap)
{
	char path[512];
	int fd;

	snprintf(path, sizeof path, "%s.incoming/MANIFEST", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, snap->manifest, snap->manifest_len), (ssize_t)snap->manifest_len);
	assert_int_equal(fsync(fd), 0);
	close(fd);
}

/* Recovery at start-up, then the replica must be whole at `index`; the
 * new one (`whole`) then holds the model once the rest of the log is in. */
static void recover_expect(struct fixture *f, const char *dir, uint64_t index, bool whole)
{
	char err[512], staging[256];
	struct stat st;

	assert_int_equal(shard_snapshot_recover(dir, err, sizeof err), 0);
	snprintf(staging, sizeof staging, "%s.incoming", dir);
	assert_int_not_equal(stat(staging, &st), 0);
	open_rep(f, 1, "sb", 0);
	assert_int_equal(shard_applied_index(f->s[1]), index);
	if (whole) {
		apply_range(f, f->s[1], index + 1, NENTRIES, 3);
		settle(f);
		check_model_keys(f, f->s[1], false);
	}
	shard_close(f->s[1]);
	f->s[1] = NULL;
}

/*
 * The crash points of an install (docs/cluster/snapshots.md), each left on
 * disk as a crash would leave it, then recovered as at start-up: before
 * the exchange the old replica comes back, after it the new one, never a
 * mix, and the staging directory is gone either way.
 */
static void test_snapshot_crash_points(void **state)
{
	struct fixture *f = *state;
	struct shard_snapshot snap;
	char bdir[128], err[512];
	uint64_t old_index, index = 0;

	make_entries(0xc0ffee11ull);
	snprintf(bdir, sizeof bdir, "%s/sb", f->dir);
	/* The old replica: the first quarter of the log. */
	open_rep(f, 1, "sb", 0);
	apply_range(f, f->s[1], 1, NENTRIES / 4, 4);
	settle(f);
	old_index = shard_flushed_index(f->s[1]);
	shard_close(f->s[1]);
	f->s[1] = NULL;
	/* The snapshot: all of it, from another replica. */
	open_rep(f, 0, "sa", 0);
	apply_range(f, f->s[0], 1, NENTRIES, 4);
	settle(f);
	assert_int_equal(shard_snapshot_begin(f->s[0], &snap), 0);
	assert_true(snap.index > old_index && old_index > 0);

	/* 1. while the tables stream in: half a table staged */
	ship(f, &snap, bdir);
	{
		char path[512];

		snprintf(path, sizeof path, "%s.incoming/%s", bdir, snap.files[0].name);
		assert_int_equal(truncate(path, (off_t)(snap.files[0].size / 2)), 0);
	}
	recover_expect(f, bdir, old_index, false);
	/* 2. every table and the MANIFEST staged and synced, no exchange */
	ship(f, &snap, bdir);
	stage_manifest(bdir, &snap);
	recover_expect(f, bdir, old_index, false);
	/* 3. right after the exchange: the old replica sits in the staging
	 * directory, not removed yet */
	ship(f, &snap, bdir);
	stage_manifest(bdir, &snap);
	{
		char staging[256];

		snprintf(staging, sizeof staging, "%s.incoming", bdir);
		assert_int_equal(renameat2(AT_FDCWD, staging, AT_FDCWD, bdir, RENAME_EXCHANGE), 0);
	}
	recover_expect(f, bdir, snap.index, true);
	/* 4. a whole install, then a crash before anything else: no staging
	 * directory, the new replica */
	ship(f, &snap, bdir);
	assert_int_equal(shard_snapshot_install(bdir, snap.manifest, snap.manifest_len, &index,
						err, sizeof err), 0);
	recover_expect(f, bdir, snap.index, true);
	shard_snapshot_end(&snap);
}

/* A directory of the single-node mode (WAL segments) is not opened as a
 * replicated shard, and a replicated directory stays one. */
static void test_wal_directory_refused(void **state)
{
	struct fixture *f = *state;
	char dir[128], err[512];
	struct shard_config cfg = {
		.id = 1, .dir = dir, .memtable_size = MEMTABLE, .cache = f->cache,
	};

	snprintf(dir, sizeof dir, "%s/single", f->dir);
	assert_int_equal(shard_open(&f->s[0], &cfg, &f->io, err, sizeof err), 0);
	shard_close(f->s[0]);
	f->s[0] = NULL;
	cfg.replicated = true;
	assert_int_equal(shard_open(&f->s[0], &cfg, &f->io, err, sizeof err), RKV_EINVAL);
	assert_non_null(strstr(err, "WAL"));
	f->s[0] = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_snapshot_install, apply_fixture_setup,
						apply_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_crash_points, apply_fixture_setup,
						apply_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_wal_directory_refused, apply_fixture_setup,
						apply_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
