/*
 * The space ahead of the core log's records (shard/core_log_direct.c,
 * "Zero-filled space"): in direct mode it is written with zeros, not
 * FALLOCATEd, so a batch's O_DIRECT write lands on written blocks (an
 * overwrite io_uring issues inline) and never on unwritten extents. Checked
 * with FIEMAP on the active segment and on the next one prepared ahead,
 * across grows and segment switches, and the records read back after a
 * reopen. On a file system without direct I/O the log takes the buffered
 * path (FALLOCATE, by design) and the test says it skips.
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
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/errors.h"
#include "shard/core_log.h"
#include "shard/core_log_format.h"
#include "shard/core_log_internal.h" /* direct, fd, offset, prep state */
#include "core_log_fixture.h"

#define GROUP 7
#define ENTRY_LEN 1000u
#define PER_BATCH 16u

/* The fixture with this test's segments: 256 KiB, 96 KiB ahead. */
static int setup(void **state)
{
	struct fx *f;

	core_log_fixture_setup(state);
	f = *state;
	f->segment_size = 256u << 10;
	f->prealloc = 96u << 10;
	return 0;
}

/*
 * Bytes of [from, size of fd) that FIEMAP reports as unwritten extents or
 * holes; -1 if the file system has no FIEMAP.
 */
static int64_t unwritten_bytes(int fd, uint64_t from)
{
	enum { MAXEXT = 64 };
	union {
		struct fiemap fm;
		uint8_t raw[sizeof(struct fiemap) + MAXEXT * sizeof(struct fiemap_extent)];
	} u;
	struct stat st;
	uint64_t covered = from, bad = 0;

	assert_int_equal(fstat(fd, &st), 0);
	if ((uint64_t)st.st_size <= from)
		return 0;
	memset(&u, 0, sizeof u);
	u.fm.fm_start = from;
	u.fm.fm_length = (uint64_t)st.st_size - from;
	u.fm.fm_flags = FIEMAP_FLAG_SYNC;
	u.fm.fm_extent_count = MAXEXT;
	if (ioctl(fd, FS_IOC_FIEMAP, &u.fm) != 0)
		return -1;
	assert_true(u.fm.fm_mapped_extents < MAXEXT);
	for (unsigned i = 0; i < u.fm.fm_mapped_extents; i++) {
		const struct fiemap_extent *e = &u.fm.fm_extents[i];
		uint64_t lo = e->fe_logical < from ? from : e->fe_logical;
		uint64_t hi = e->fe_logical + e->fe_length;

		if (hi > (uint64_t)st.st_size)
			hi = (uint64_t)st.st_size;
		if (lo > covered)
			bad += lo - covered; /* a hole */
		if (e->fe_flags & FIEMAP_EXTENT_UNWRITTEN && hi > lo)
			bad += hi - lo;
		if (hi > covered)
			covered = hi;
	}
	if ((uint64_t)st.st_size > covered)
		bad += (uint64_t)st.st_size - covered;
	return (int64_t)bad;
}

/* Whether every byte of [from, size of the log's `log_fd`) reads as zero
 * (through a descriptor of its own: the log's takes O_DIRECT). */
static bool zeros_after(int log_fd, uint64_t from)
{
	static uint8_t buf[64u << 10];
	char path[64];
	struct stat st;
	bool zero = true;
	int fd;

	snprintf(path, sizeof path, "/proc/self/fd/%d", log_fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	for (uint64_t off = from; off < (uint64_t)st.st_size;) {
		ssize_t n = pread(fd, buf, sizeof buf, (off_t)off);

		assert_true(n > 0);
		for (ssize_t i = 0; i < n && zero; i++)
			zero = buf[i] == 0;
		off += (uint64_t)n;
	}
	close(fd);
	return zero;
}

/* Stages entries [next, next + PER_BATCH) of GROUP; the next index. */
static uint64_t stage(struct fx *f, uint64_t next)
{
	assert_int_equal(append(f, GROUP, next, PER_BATCH, 1, ENTRY_LEN), 0);
	return next + PER_BATCH;
}

static uint64_t file_size(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return (uint64_t)st.st_size;
}

/* Closes and reopens the log: every entry below `next` comes back. */
static void reopen_check(struct fx *f, uint64_t next)
{
	reopen(f);
	assert_int_equal(f->bad_payloads, 0);
	assert_true(f->rg[GROUP].n > 0);
	assert_int_equal(f->rg[GROUP].first + f->rg[GROUP].n, next);
}

/*
 * The verdict on a preallocation from its completions. A review found the
 * zeros' cancelled WRITEVs (io_ring_cancel_all, as a reactor does at exit)
 * taken for a short write, hence a full disk (RKV_EFULL to the batch), and
 * a cancelled FALLOCATE taken for a success, after which batches went past
 * the file's end and the next open refused the log.
 */
static void test_grow_verdict(void **state)
{
	struct core_log_grow_tally t;

	(void)state;
	/* FALLOCATE then fdatasync, both 0. */
	t = (struct core_log_grow_tally){ 0 };
	assert_int_equal(core_log_grow_verdict(&t), 0);
	/* Both cancelled. */
	t = (struct core_log_grow_tally){ .cancelled = true, .sync_res = -ECANCELED };
	assert_int_equal(core_log_grow_verdict(&t), -ECANCELED);
	/* FALLOCATE done, its fdatasync cancelled: the size is not durable. */
	t = (struct core_log_grow_tally){ .sync_res = -ECANCELED };
	assert_int_equal(core_log_grow_verdict(&t), -ECANCELED);
	/* FALLOCATE failed for a full disk; the fdatasync it cancelled. */
	t = (struct core_log_grow_tally){ .first_err = -ENOSPC, .cancelled = false,
					  .sync_res = -ECANCELED };
	assert_int_equal(core_log_grow_verdict(&t), -ENOSPC);
	/* Zeros: all written, synced. */
	t = (struct core_log_grow_tally){ .zero = 1u << 20, .zeroed = 1u << 20 };
	assert_int_equal(core_log_grow_verdict(&t), 0);
	/* Zeros: the first WRITEV short (the disk full), the rest cancelled. */
	t = (struct core_log_grow_tally){ .zero = 8u << 20, .zeroed = 65536, .cancelled = true,
					  .sync_res = -ECANCELED };
	assert_int_equal(core_log_grow_verdict(&t), -ENOSPC);
	/* Zeros: every SQE cancelled before it ran. */
	t = (struct core_log_grow_tally){ .zero = 8u << 20, .cancelled = true,
					  .sync_res = -ECANCELED };
	assert_int_equal(core_log_grow_verdict(&t), -ECANCELED);
	/* Zeros written, the fdatasync failed. */
	t = (struct core_log_grow_tally){ .zero = 4096, .zeroed = 4096, .sync_res = -EIO };
	assert_int_equal(core_log_grow_verdict(&t), -EIO);
	/* A WRITEV's own error wins. */
	t = (struct core_log_grow_tally){ .zero = 8192, .zeroed = 4096, .first_err = -EDQUOT };
	assert_int_equal(core_log_grow_verdict(&t), -EDQUOT);
}

/*
 * With small segments the zeros stay small: a segment gets at most about
 * one segment_size of zeros ahead, not `prealloc` (4 MiB by default) per
 * file, which multiplied the bytes written 25 times at 64 KiB segments.
 */
static void test_small_segments_write_few_zeros(void **state)
{
	struct fx *f = *state;
	struct core_log_stats stats;
	uint64_t next = 1, seg = 64u << 10, largest = 0;

	f->segment_size = seg;
	f->prealloc = 4u << 20;
	must_open(f);
	if (!f->log->direct) {
		skip();
		return;
	}
	for (int batch = 0; batch < 400; batch++) {
		next = stage(f, next);
		settle(f);
		if (file_size(f->log->fd) > largest)
			largest = file_size(f->log->fd);
		if (f->log->prep == PREP_READY && file_size(f->log->prep_fd) > largest)
			largest = file_size(f->log->prep_fd);
		core_log_stats(f->log, &stats);
		if (stats.created >= 6)
			break;
	}
	core_log_stats(f->log, &stats);
	assert_true(stats.created >= 6);
	/* A segment holds up to one batch past its bound, plus an ahead of
	 * one segment, plus page rounding. */
	assert_true(largest <= 2 * seg + PER_BATCH * 2 * ENTRY_LEN + 2 * CORE_LOG_RECORDS_START);
	reopen_check(f, next);
}

static void test_space_ahead_is_written(void **state)
{
	struct fx *f = *state;
	struct core_log_stats stats;
	uint64_t next = 1;
	unsigned checked_prep = 0, checked_active = 0;

	must_open(f);
	if (!f->log->direct) {
		skip(); /* the buffered path FALLOCATEs by design */
		return;
	}
	for (int batch = 0; batch < 2000; batch++) {
		next = stage(f, next);
		settle(f);
		assert_int_equal(f->durable_index[GROUP], next - 1);
		/* The active segment: written blocks from the append offset to
		 * its end (the grows), and only zeros there. */
		{
			int64_t bad = unwritten_bytes(f->log->fd, f->log->offset);

			if (bad < 0) {
				skip(); /* no FIEMAP on this file system */
				return;
			}
			assert_int_equal(bad, 0);
			assert_true(zeros_after(f->log->fd, f->log->offset));
			checked_active++;
		}
		if (f->log->prep == PREP_READY) {
			assert_int_equal(unwritten_bytes(f->log->prep_fd, 0), 0);
			assert_true(zeros_after(f->log->prep_fd, CORE_LOG_RECORDS_START));
			checked_prep++;
		}
		core_log_stats(f->log, &stats);
		if (stats.created >= 3 && checked_prep > 0)
			break;
	}
	core_log_stats(f->log, &stats);
	assert_true(stats.created >= 3);
	assert_true(checked_prep > 0 && checked_active > 0);
	/* Recovery reads the records back and takes the zeros as the end. */
	reopen_check(f, next);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_space_ahead_is_written, setup,
						core_log_fixture_teardown),
		cmocka_unit_test(test_grow_verdict),
		cmocka_unit_test_setup_teardown(test_small_segments_write_few_zeros, setup,
						core_log_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
