/*
 * Tests for shard/core_log.c on a real io_uring ring: group commit across
 * groups, truncation and reset semantics across reopen and across segments,
 * direct writes and overlapping fdatasyncs, a failed fdatasync, the
 * checkpoint that keeps hard states alive when old segments go, retention,
 * a full disk, and the durable-end marks. Recovery's rules are in
 * test_core_log_recovery.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/errors.h"
#include "core/log.h"
#include "shard/core_log.h"
#include "shard/core_log_format.h"
#include "shard/core_log_internal.h" /* the fdatasync failure test swaps the fd */
#include "core_log_fixture.h"

/* ---- tests ----------------------------------------------------------- */

static void test_round_trip_many_groups(void **state)
{
	struct fx *f = *state;
	const int groups = 100, rounds = 12;

	must_open(f);
	assert_int_equal(f->restored, 0);
	for (int r = 0; r < rounds; r++) {
		for (int g = 0; g < groups; g++) {
			assert_int_equal(append(f, (uint64_t)g, (uint64_t)r + 1, 1, 1, 10 + (size_t)g), 0);
			if (r == 3 && g % 3 == 0) {
				struct raft_hard_state hs = { .term = 2 + (uint64_t)g, .vote = 7 };

				assert_int_equal(core_log_set_hard_state(f->log, (uint64_t)g, &hs), 0);
			}
		}
		settle(f);
		for (int g = 0; g < groups; g++) {
			assert_int_equal(f->durable_index[g], (uint64_t)r + 1);
			assert_int_equal(f->durable_term[g], 1);
		}
	}
	assert_int_equal(f->calls, (uint64_t)groups * rounds);
	for (int g = 0; g < groups; g++)
		assert_int_equal(f->hs_durable[g], g % 3 == 0 ? 1 : 0);
	reopen(f);
	assert_int_equal(f->restored, (size_t)groups);
	for (int g = 0; g < groups; g++) {
		check_group(f, (uint64_t)g, 1, (size_t)rounds, 1);
		assert_int_equal(f->rg[g].hs.term, g % 3 == 0 ? 2 + (uint64_t)g : 0);
		assert_int_equal(f->rg[g].hs.vote, g % 3 == 0 ? 7 : 0);
	}
	/* And appending goes on where it stopped, across one more reopen. */
	assert_int_equal(append(f, 5, (uint64_t)rounds + 1, 2, 2, 3), 0);
	reopen(f);
	assert_int_equal(f->rg[5].n, (size_t)rounds + 2);
	assert_int_equal(f->rg[5].terms[rounds + 1], 2);
	assert_int_equal(f->bad_payloads, 0);
}

static void test_truncate_semantics(void **state)
{
	struct fx *f = *state;

	must_open(f);
	assert_int_equal(append(f, 1, 1, 10, 1, 20), 0);
	assert_int_equal(append(f, 2, 1, 3, 1, 20), 0);
	settle(f);
	/* Same batch: append then overwrite part of it. */
	assert_int_equal(append(f, 1, 6, 3, 2, 20), 0);  /* 6..8 in term 2 */
	assert_int_equal(append(f, 1, 8, 1, 3, 20), 0);  /* 8 in term 3 */
	settle(f);
	assert_int_equal(f->durable_index[1], 8);
	assert_int_equal(f->durable_term[1], 3);
	/* A gap, or an index 0, is refused and changes nothing. */
	assert_int_equal(append(f, 1, 10, 1, 3, 20), RKV_EINVAL);
	assert_int_equal(append(f, 1, 0, 1, 3, 20), RKV_EINVAL);
	reopen(f);
	check_group(f, 1, 1, 8, 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(f->rg[1].terms[i], 1);
	assert_int_equal(f->rg[1].terms[5], 2);
	assert_int_equal(f->rg[1].terms[6], 2);
	assert_int_equal(f->rg[1].terms[7], 3);
	check_group(f, 2, 1, 3, 1);
}

/* The overwritten entries live in an older segment than the overwrite. */
static void test_truncate_across_segments(void **state)
{
	struct fx *f = *state;
	struct core_log_stats st;

	must_open(f);
	for (uint64_t i = 1; i <= 40; i += 4) {
		assert_int_equal(append(f, 3, i, 4, 1, 4 * KIB), 0);
		settle(f);
	}
	core_log_stats(f->log, &st);
	assert_true(st.segments >= 3);
	assert_true(find_entry(f, 1, 3, 5) >= 0);
	/* Back to index 5 (in the first segment) from the last one. */
	assert_int_equal(append(f, 3, 5, 2, 2, 4 * KIB), 0);
	settle(f);
	reopen(f);
	check_group(f, 3, 1, 6, 0);
	assert_int_equal(f->rg[3].terms[3], 1);
	assert_int_equal(f->rg[3].terms[4], 2);
	assert_int_equal(f->rg[3].terms[5], 2);
	/* It continues from 7 after the reopen. */
	assert_int_equal(append(f, 3, 8, 1, 2, 10), RKV_EINVAL);
	assert_int_equal(append(f, 3, 7, 1, 2, 10), 0);
	reopen(f);
	check_group(f, 3, 1, 7, 0);
}

static void test_log_reset(void **state)
{
	struct fx *f = *state;

	must_open(f);
	assert_int_equal(append(f, 4, 1, 10, 1, 100), 0);
	assert_int_equal(append(f, 9, 1, 2, 1, 100), 0);
	settle(f);
	assert_int_equal(core_log_reset(f->log, 4, 50, 3), 0);
	/* At or below the new start: refused. */
	assert_int_equal(append(f, 4, 50, 1, 3, 100), RKV_EINVAL);
	assert_int_equal(append(f, 4, 51, 2, 4, 100), 0);
	settle(f);
	assert_int_equal(f->durable_index[4], 52);
	reopen(f);
	assert_int_equal(f->rg[4].start_index, 50);
	assert_int_equal(f->rg[4].start_term, 3);
	check_group(f, 4, 51, 2, 4);
	check_group(f, 9, 1, 2, 1);
	/* A reset with nothing after it. */
	assert_int_equal(core_log_reset(f->log, 9, 7, 2), 0);
	reopen(f);
	assert_int_equal(f->rg[9].start_index, 7);
	assert_int_equal(f->rg[9].n, 0);
}

static void test_remove_group(void **state)
{
	struct fx *f = *state;
	struct core_log_stats st;
	struct raft_hard_state hs = { 3, 1 };

	must_open(f);
	assert_int_equal(append(f, 1, 1, 3, 1, 10), 0);
	assert_int_equal(append(f, 2, 1, 3, 1, 10), 0);
	assert_int_equal(core_log_set_hard_state(f->log, 2, &hs), 0);
	settle(f);
	assert_int_equal(core_log_remove_group(f->log, 2), 0);
	assert_int_equal(core_log_remove_group(f->log, 77), 0); /* unknown: nothing */
	settle(f);
	core_log_stats(f->log, &st);
	assert_int_equal(st.groups, 1);
	reopen(f);
	assert_true(f->rg[1].present);
	assert_false(f->rg[2].present);
	/* The id can come back, starting afresh. */
	assert_int_equal(append(f, 2, 40, 1, 5, 10), 0);
	reopen(f);
	check_group(f, 2, 40, 1, 5);
	assert_int_equal(f->rg[2].hs.term, 0);
}

/*
 * By default a batch is one O_DIRECT write with RWF_DSYNC, whenever the
 * file system takes O_DIRECT: no fdatasync, no io-wq thread. The blocks
 * holding earlier records are written again with the same bytes, so many
 * small batches in one block read back whole.
 */
static void test_direct_writes(void **state)
{
	struct fx *f = *state;
	char probe[PATH_MAX];
	int fd;

	if (f->buffered)
		skip();
	struct statx st;
	bool direct_io;

	snprintf(probe, sizeof probe, "%s/probe", f->base);
	fd = open(probe, O_RDWR | O_CREAT | O_DIRECT, 0644);
	direct_io = fd >= 0 && statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &st) == 0 &&
		    (st.stx_mask & STATX_DIOALIGN) && st.stx_dio_offset_align != 0 &&
		    st.stx_dio_offset_align <= 4096 && st.stx_dio_mem_align <= 4096;
	if (fd >= 0)
		close(fd);
	unlink(probe);
	uint64_t next[4] = { 0, 1, 1, 1 };

	must_open(f);
	/* Direct exactly where the file system offers it (tmpfs does not
	 * report an alignment: the buffered path, and the same records). */
	assert_int_equal(f->log->direct, direct_io);
	for (uint64_t i = 1; i <= 200; i++) {
		uint64_t g = 1 + i % 3;

		assert_int_equal(append(f, g, next[g]++, 1, 1, 7 + i % 50), 0);
		core_log_flush(f->log);
		settle(f);
	}
	core_log_close(f->log);
	f->log = NULL;
	must_open(f);
	check_group(f, 1, 1, 66, 1);
	check_group(f, 2, 1, 67, 1);
	check_group(f, 3, 1, 67, 1);
}

/*
 * With max_syncs N, a flush stores the pending batch (once the last
 * batch's WRITE is done) while up to N - 1 earlier ones still wait for
 * their fdatasyncs (each gets its own), and no more. Every batch is called back once, in the
 * order stored, with its number, whichever fdatasync finishes first.
 */
static void test_overlapping_fsyncs(void **state)
{
	struct fx *f = *state;

	for (unsigned n = 1; n <= CORE_LOG_MAX_SYNCS; n++) {
		struct core_log_stats st;
		uint64_t next = 1;

		snprintf(f->dir, sizeof f->dir, "%s/core-%u", f->base, n);
		memset(f->durable_index, 0, sizeof f->durable_index);
		f->max_syncs = n;
		f->buffered = true; /* a direct WRITE is its own sync: one at a time */
		must_open(f);
		/* The segment's first space is allocated by then. */
		assert_int_equal(append(f, 1, next++, 1, 1, 100), 0);
		settle(f);
		f->calls = 0;
		/* Each flush stores a batch once the last one's WRITE is back
		 * (microseconds; an fdatasync takes far longer), so fdatasyncs
		 * overlap: never more than n, and (n >= 2) at least two at
		 * some point. */
		unsigned most = 0;

		for (unsigned k = 0; k < 300; k++) {
			assert_int_equal(append(f, 1, next++, 1, 1, 100), 0);
			core_log_flush(f->log);
			for (int i = 0; i < 1000 && f->log->write_inflight; i++) {
				assert_int_equal(io_ring_submit_wait(&f->io, 100000), 0);
				io_ring_dispatch(&f->io);
			}
			assert_true(f->log->nstored <= n && f->log->syncs_busy <= n);
			if (f->log->nstored > most)
				most = f->log->nstored;
		}
		if (most < (n < 2 ? n : 2))
			fail_msg("max_syncs %u: at most %u fdatasyncs were in flight at once", n,
				 most);
		settle(f);
		core_log_stats(f->log, &st);
		/* Appends that waited share a batch: one callback per batch,
		 * the last one numbered as the batches stored. */
		assert_int_equal(f->calls, st.batches - 1);
		assert_int_equal(f->last_batch, st.batches);
		assert_int_equal(f->durable_index[1], 1 + 300);
		/* Many rounds of overlapping batches, then everything is back. */
		uint64_t gnext[4] = { 0, next, 1, 1 };

		for (int r = 0; r < 200; r++) {
			uint64_t g = 1 + (uint64_t)r % 3;

			assert_int_equal(append(f, g, gnext[g]++, 1, 1, 500), 0);
			core_log_flush(f->log);
			if (r % 7 == 6)
				settle(f);
		}
		settle(f);
		for (uint64_t g = 1; g <= 3; g++)
			assert_int_equal(f->durable_index[g], gnext[g] - 1);
		reopen(f);
		for (uint64_t g = 1; g <= 3; g++)
			check_group(f, g, 1, gnext[g] - 1, 1);
		close_log(f);
	}
	f->max_syncs = 0;
}

/* Same appends, 1 group or 64: one fdatasync per flush either way. */
static void test_one_fsync_per_flush(void **state)
{
	struct fx *f = *state;
	const int rounds = 50;
	uint64_t fsyncs[2];

	f->segment_size = 64u << 20;
	for (int pass = 0; pass < 2; pass++) {
		int groups = pass == 0 ? 1 : 64;
		uint64_t next[64];
		struct core_log_stats st;

		snprintf(f->dir, sizeof f->dir, "%s/core-%d", f->base, pass);
		must_open(f);
		for (int g = 0; g < 64; g++)
			next[g] = 1;
		f->calls = 0;
		for (int r = 0; r < rounds; r++) {
			for (int k = 0; k < 64; k++) {
				int g = k % groups;

				assert_int_equal(append(f, (uint64_t)g, next[g]++, 1, 1, 100), 0);
			}
			settle(f);
		}
		core_log_stats(f->log, &st);
		fsyncs[pass] = st.fsyncs;
		assert_int_equal(st.batches, rounds);
		/* + the segment's RETAIN (no group has a hard state to keep) */
		assert_int_equal(st.records, (uint64_t)rounds * 64 + 1);
		assert_int_equal(f->calls, (uint64_t)rounds * groups);
		/* The histograms for metrics: every durable batch counted
		 * once, all 64 records in the 33-64 bucket. */
		{
			uint64_t n = 0;

			for (int b = 0; b <= CORE_LOG_SYNC_BUCKETS; b++)
				n += st.sync_us[b];
			assert_int_equal(n, rounds);
			assert_int_equal(st.batch_records[6], rounds);
			assert_int_equal(st.batch_records_sum, (uint64_t)rounds * 64);
			assert_true(st.sync_us_sum > 0);
		}
		close_log(f);
	}
	assert_int_equal(fsyncs[0], rounds);
	assert_int_equal(fsyncs[1], rounds);
}

/*
 * A failed fdatasync fails the log for good. Simulated by putting a pipe
 * under the active segment's descriptor (the mapping stays valid; FSYNC on
 * a pipe fails with EINVAL): both batches are answered with the error and
 * every later call is refused.
 */
static void test_failed_fsync_fails_the_log(void **state)
{
	struct fx *f = *state;
	struct raft_hard_state hs = { 2, 1 };
	int p[2];

	must_open(f);
	assert_int_equal(append(f, 1, 1, 2, 1, 10), 0);
	settle(f);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(dup2(p[0], f->log->fd), f->log->fd);
	close(p[0]);
	close(p[1]);
	assert_int_equal(append(f, 1, 3, 1, 1, 10), 0);
	core_log_flush(f->log);   /* batch 1 in flight */
	assert_int_equal(append(f, 2, 1, 1, 1, 10), 0); /* batch 2 pending */
	settle(f);
	assert_true(core_log_error(f->log) < 0);
	assert_int_equal(f->last_status[1], core_log_error(f->log));
	assert_int_equal(f->last_status[2], core_log_error(f->log));
	assert_int_equal(f->durable_index[1], 2);
	assert_int_equal(append(f, 1, 4, 1, 1, 10), core_log_error(f->log));
	assert_int_equal(core_log_set_hard_state(f->log, 1, &hs), core_log_error(f->log));
	assert_int_equal(core_log_reset(f->log, 1, 9, 1), core_log_error(f->log));
	close_log(f);
}

/*
 * Retention: a segment goes only when no group needs an entry in it; a
 * hard state written once, long ago, survives its segment's deletion.
 */
static void test_retention(void **state)
{
	struct fx *f = *state;
	struct raft_hard_state hs = { .term = 7, .vote = 3 };
	struct core_log_stats st;
	uint64_t lo, hi, segs, bytes, g;

	must_open(f);
	assert_int_equal(core_log_set_hard_state(f->log, 3, &hs), 0);
	assert_int_equal(append(f, 2, 1, 1, 1, 10), 0);  /* B: one entry in log-1 */
	settle(f);
	for (uint64_t i = 1; i <= 100; i += 2) {          /* A: many segments */
		assert_int_equal(append(f, 1, i, 2, 1, 4 * KIB), 0);
		settle(f);
	}
	seg_range(f, &lo, &hi);
	assert_true(hi >= 5);
	/* A releases all; B still pins log-1: nothing goes. */
	core_log_release(f->log, 1, 100);
	settle_long(f);
	core_log_stats(f->log, &st);
	assert_int_equal(st.deleted, 0);
	assert_true(seg_exists(f, 1));
	assert_true(core_log_oldest_pinner(f->log, &g, &bytes));
	assert_int_equal(g, 2);
	core_log_group_pinned(f->log, 2, &segs, &bytes);
	assert_int_equal(segs, st.segments);
	core_log_group_pinned(f->log, 1, &segs, &bytes);
	assert_int_equal(segs, 0);
	/* B releases: every segment but the active one goes (hi may be the
	 * next one, prepared ahead). */
	core_log_release(f->log, 2, 1);
	settle_long(f);
	assert_false(core_log_oldest_pinner(f->log, &g, &bytes));
	seg_range(f, &lo, &hi);
	assert_true(lo + 1 >= hi);
	core_log_stats(f->log, &st);
	assert_int_equal(st.segments, 1);
	assert_int_equal(st.deleted, lo - 1);
	/* A goes on; after a partial release exactly the segments before the
	 * one holding its first needed entry go. */
	for (uint64_t i = 101; i <= 160; i += 2) {
		assert_int_equal(append(f, 1, i, 2, 1, 4 * KIB), 0);
		settle(f);
	}
	core_log_release(f->log, 1, 120);
	settle_long(f);
	seg_range(f, &lo, &hi);
	assert_true(lo < hi);
	assert_true(find_entry(f, lo, 1, 121) >= 0);
	core_log_stats(f->log, &st);
	core_log_group_pinned(f->log, 1, &segs, &bytes);
	assert_int_equal(segs, st.segments);
	assert_true(st.segments >= 2);
	/* Reopen: the hard state written in the long gone log-1 is there
	 * (checkpoints), and A's entries from the kept segments on. */
	reopen(f);
	assert_false(seg_exists(f, 1));
	assert_true(f->rg[3].present);
	assert_int_equal(f->rg[3].hs.term, 7);
	assert_int_equal(f->rg[3].hs.vote, 3);
	assert_int_equal(f->rg[2].n, 0); /* B kept nothing: maybe not even known */
	assert_true(f->rg[1].first <= 121);
	assert_int_equal(f->rg[1].first + f->rg[1].n - 1, 160);
	assert_int_equal(f->bad_payloads, 0);
	/* B, all of whose entries are gone, appends after them. */
	assert_int_equal(append(f, 2, 2, 1, 1, 10), 0);
	reopen(f);
	check_group(f, 2, 2, 1, 1);
}

/* A LOG_RESET or a removal lets go of what the group pinned. */
static void test_retention_after_reset_and_remove(void **state)
{
	struct fx *f = *state;
	struct core_log_stats st;
	uint64_t i = 1;

	must_open(f);
	assert_int_equal(append(f, 7, 1, 3, 1, 10), 0);  /* X pins log-1 */
	settle(f);
	for (; i <= 60; i += 2) {                         /* Y fills segments */
		assert_int_equal(append(f, 1, i, 2, 1, 4 * KIB), 0);
		settle(f);
	}
	core_log_release(f->log, 1, i - 1);
	settle_long(f);
	core_log_stats(f->log, &st);
	assert_int_equal(st.deleted, 0);
	/* X installs a snapshot: its entries are gone, log-1 may go. */
	assert_int_equal(core_log_reset(f->log, 7, 1000, 5), 0);
	assert_int_equal(append(f, 8, 1, 1, 1, 10), 0); /* Z pins the active one */
	settle_long(f);
	core_log_stats(f->log, &st);
	assert_int_equal(st.segments, 1);
	assert_true(st.deleted > 0);
	/* Z pins the active segment; more segments come; Z is removed. */
	for (; i <= 120; i += 2) {
		assert_int_equal(append(f, 1, i, 2, 1, 4 * KIB), 0);
		settle(f);
		core_log_release(f->log, 1, i + 1);
	}
	settle_long(f);
	core_log_stats(f->log, &st);
	assert_true(st.segments > 1);
	assert_int_equal(core_log_remove_group(f->log, 8), 0);
	settle_long(f);
	core_log_stats(f->log, &st);
	assert_int_equal(st.segments, 1);
	reopen(f);
	assert_int_equal(f->rg[7].start_index, 1000);
	assert_int_equal(f->rg[7].start_term, 5);
	assert_int_equal(f->rg[7].n, 0);
	assert_false(f->rg[8].present);
}

/* Disk full: a 512 KiB tmpfs (root only). The failed batch is untouched,
 * the log keeps working once there is room again. */
static void disk_full(struct fx *f, uint64_t segment_size)
{
	char filler[256];
	uint64_t i = 1;
	int fd, rv = 0;
	static uint8_t junk[64 * KIB];

	if (mkdir(f->dir, 0700) != 0 ||
	    mount("tmpfs", f->dir, "tmpfs", 0, "size=512k") != 0) {
		printf("cannot mount a tmpfs (%s): skipped\n", strerror(errno));
		skip();
	}
	snprintf(filler, sizeof filler, "%s/filler", f->dir);
	fd = open(filler, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	for (int k = 0; k < 5; k++)
		assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
	close(fd);
	f->segment_size = segment_size;
	f->prealloc = 64 * KIB;
	must_open(f);
	for (int round = 0; round < 200 && f->calls_failed == 0; round++) {
		rv = append(f, 1, i, 4, 1, 4 * KIB);
		assert_int_equal(rv, 0);
		settle(f);
		if (f->last_status[1] == 0)
			i += 4;
	}
	assert_true(f->calls_failed > 0);
	assert_int_equal(f->last_status[1], RKV_EFULL);
	assert_int_equal(core_log_error(f->log), 0);
	assert_int_equal(f->durable_index[1], i - 1);
	/* Rolled back: the next append must start at i again. */
	assert_int_equal(append(f, 1, i + 4, 1, 1, 10), RKV_EINVAL);
	assert_int_equal(unlink(filler), 0);
	assert_int_equal(append(f, 1, i, 4, 2, 4 * KIB), 0);
	settle(f);
	assert_int_equal(f->last_status[1], 0);
	assert_int_equal(f->durable_index[1], i + 3);
	reopen(f);
	check_group(f, 1, 1, (size_t)i + 3, 0);
	assert_int_equal(f->rg[1].terms[i - 1], 2);
	close_log(f);
}

/* Full while growing the active segment (one segment is never exceeded). */
static void test_disk_full(void **state)
{
	disk_full(*state, 1u << 20);
}

/* Full while preparing the next segment too (64 KiB segments). */
static void test_disk_full_small_segments(void **state)
{
	disk_full(*state, 64 * KIB);
}

/* The newest durable-end mark of segment `seq` (read through the page
 * cache: the log may be open). */
static struct core_log_mark read_mark(struct fx *f, uint64_t seq)
{
	uint8_t page0[CORE_LOG_RECORDS_START];
	struct core_log_mark m;
	char path[256];
	int fd;

	path_of(f, seq, path, sizeof path);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, page0, sizeof page0, 0), (ssize_t)sizeof page0);
	close(fd);
	assert_int_equal(core_log_mark_read(page0, sizeof page0, seq, &m), 0);
	return m;
}

/*
 * While batches keep coming, each one's chain marks the end of the one
 * before (no fdatasync of its own); once the log is quiet for
 * mark_delay_ms, one mark alone (one fdatasync) names the last.
 */
static void test_marks_ride_with_batches(void **state)
{
	struct fx *f = *state;
	const int rounds = 30;
	struct core_log_stats st;
	struct core_log_mark m;
	uint64_t end_before_last = 0;
	long at;

	f->mark_delay_ms = 2000;
	must_open(f);
	for (int i = 1; i <= rounds; i++) {
		assert_int_equal(append(f, 1, (uint64_t)i, 1, 1, 200), 0);
		for (int k = 0; k < 1000 && f->durable_index[1] != (uint64_t)i; k++) {
			core_log_flush(f->log);
			assert_int_equal(io_ring_submit_wait(&f->io, 100000), 0);
			io_ring_dispatch(&f->io);
		}
		assert_int_equal(f->durable_index[1], i);
	}
	core_log_stats(f->log, &st);
	assert_int_equal(st.fsyncs, rounds);
	assert_int_equal(st.idle_marks, 0);
	assert_int_equal(st.marks, rounds - 1);
	/* The last batch is not marked yet: the mark names the one before. */
	at = find_entry(f, 1, 1, rounds);
	assert_true(at > 0);
	end_before_last = (uint64_t)at;
	m = read_mark(f, 1);
	assert_int_equal(m.end, end_before_last);
	assert_int_equal(m.count, 1 + (uint64_t)rounds - 1);
	settle(f); /* waits for the quiet-period mark */
	core_log_stats(f->log, &st);
	assert_int_equal(st.idle_marks, 1);
	assert_int_equal(st.fsyncs, rounds);
	m = read_mark(f, 1);
	assert_int_equal(m.end, end_before_last + core_log_record_size(200));
	/* A reopen continues the numbers. */
	reopen(f);
	assert_int_equal(append(f, 1, rounds + 1, 1, 1, 200), 0);
	assert_int_equal(append(f, 1, rounds + 2, 1, 1, 200), 0);
	settle(f);
	m = read_mark(f, 1);
	assert_int_equal(m.count, 1 + (uint64_t)rounds + 1);
	assert_int_equal(m.end, end_before_last + 3 * core_log_record_size(200));
}
int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip_many_groups, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_truncate_semantics, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_truncate_across_segments, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_log_reset, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_remove_group, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_one_fsync_per_flush, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_direct_writes, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_overlapping_fsyncs, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_failed_fsync_fails_the_log, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_retention, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_retention_after_reset_and_remove, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_disk_full, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_disk_full_small_segments, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_marks_ride_with_batches, core_log_fixture_setup,
						core_log_fixture_teardown),
	};

	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
