/*
 * Tests for the core log's recovery (shard/core_log_open.c) on a real
 * io_uring ring: a torn tail cut, corruption and missing segments refused
 * with file and offset, a process killed in the middle of a store, every
 * cut of the last segment, salvage_from, and old format versions refused.
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
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/errors.h"
#include "core/log.h"
#include "shard/core_log.h"
#include "shard/core_log_format.h"
#include "shard/crc32c.h"
#include "core_log_fixture.h"

/* ---- tests ----------------------------------------------------------- */

/*
 * Sets both durable-end marks of segment `seq` to `end`: the state a crash
 * leaves when the batch from `end` on was still in flight (its fdatasync
 * not done, so no mark could name it yet). A test that tears records by
 * hand tears only such a batch; tearing marked records is data loss.
 */
static void unmark(struct fx *f, uint64_t seq, long end)
{
	uint8_t slot[CORE_LOG_MARK_SIZE];
	char path[256];
	int fd;

	path_of(f, seq, path, sizeof path);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	for (uint64_t count = 2; count < 4; count++) {
		core_log_mark_encode(slot, &(struct core_log_mark){ .seq = seq, .count = count,
								    .end = (uint64_t)end });
		assert_int_equal(pwrite(fd, slot, sizeof slot, (off_t)core_log_mark_offset(count)),
				 (ssize_t)sizeof slot);
	}
	close(fd);
}

/* A torn last record (written by hand): cut at open, appends go on. */
static void test_torn_tail_truncated(void **state)
{
	struct fx *f = *state;
	struct core_log_stats st;
	char path[256];
	long at;
	int fd;
	uint8_t zeros[600] = { 0 };

	must_open(f);
	assert_int_equal(append(f, 1, 1, 5, 1, 1000), 0);
	settle(f);
	assert_int_equal(append(f, 1, 6, 1, 1, 1000), 0);
	settle(f);
	close_log(f);
	at = find_entry(f, 1, 1, 6);
	assert_true(at > 0);
	/* The end of record 6 never reached the disk. */
	unmark(f, 1, at);
	path_of(f, 1, path, sizeof path);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, zeros, sizeof zeros,
				at + CORE_LOG_RECORD_HEADER_SIZE + 400), (ssize_t)sizeof zeros);
	close(fd);
	must_open(f);
	check_group(f, 1, 1, 5, 1);
	core_log_stats(f->log, &st);
	assert_true(st.torn_bytes > 0);
	assert_int_equal(append(f, 1, 6, 2, 2, 1000), 0);
	reopen(f);
	check_group(f, 1, 1, 7, 0);
	assert_int_equal(f->rg[1].terms[6], 2);
}

/* Zeros the second half of ENTRY(g, index)'s payload in segment `seq`. */
static void tear(struct fx *f, uint64_t seq, uint64_t g, uint64_t index, size_t payload)
{
	static uint8_t zeros[64 * KIB];
	char path[256];
	long at = find_entry(f, seq, g, index);
	int fd;

	assert_true(at > 0);
	path_of(f, seq, path, sizeof path);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, zeros, payload / 2,
				at + CORE_LOG_RECORD_HEADER_SIZE + (long)(payload - payload / 2)),
			 (ssize_t)(payload / 2));
	close(fd);
}

/* Fills segments until the next one has been prepared ahead (and is empty);
 * returns the active segment's seq and the last index of group 1. */
static uint64_t fill_until_prepared(struct fx *f, uint64_t *last)
{
	uint64_t lo, hi, i = 1;
	struct core_log_stats st;

	for (;;) {
		assert_int_equal(append(f, 1, i, 1, 1, 4 * KIB), 0);
		settle(f);
		seg_range(f, &lo, &hi);
		core_log_stats(f->log, &st);
		if (st.segments >= 2 && hi == lo + st.segments)
			break;
		i++;
	}
	*last = i;
	return hi - 1;
}

/* The writer prepares the next segment ahead: a torn tail in the active
 * one, followed only by that empty file, is still the end of the log. */
static void test_torn_tail_before_prepared_segment(void **state)
{
	struct fx *f = *state;
	uint64_t last, active;

	must_open(f);
	active = fill_until_prepared(f, &last);
	close_log(f);
	assert_true(find_entry(f, active, 1, last) > 0);
	assert_true(seg_exists(f, active + 1));
	unmark(f, active, find_entry(f, active, 1, last));
	tear(f, active, 1, last, 4 * KIB);
	must_open(f);
	check_group(f, 1, 1, (size_t)last - 1, 1);
	/* Appends go on (into the prepared file), and all of it reopens. */
	assert_int_equal(append(f, 1, last, 2, 2, 4 * KIB), 0);
	reopen(f);
	check_group(f, 1, 1, (size_t)last + 1, 0);
	assert_int_equal(f->rg[1].terms[last - 1], 2);
}

/* A torn-looking record in a segment that valid records follow (in a
 * later segment) is not a torn tail: refused, naming where. */
static void test_torn_record_followed_by_segment_refused(void **state)
{
	struct fx *f = *state;
	char want[400], path[256];
	uint64_t last, active;
	long at;

	must_open(f);
	active = fill_until_prepared(f, &last);
	/* Force a record into the prepared segment, then tear the last
	 * record of the one before. */
	for (uint64_t i = last + 1;; i++) {
		assert_int_equal(append(f, 1, i, 1, 1, 4 * KIB), 0);
		settle(f);
		if (find_entry(f, active + 1, 1, i) > 0)
			break;
	}
	close_log(f);
	while (find_entry(f, active, 1, last + 1) > 0)
		last++; /* the last record of that segment */
	at = find_entry(f, active, 1, last);
	unmark(f, active, at);
	tear(f, active, 1, last, 4 * KIB);
	assert_int_equal(open_log(f), RKV_ECORRUPT);
	path_of(f, active, path, sizeof path);
	snprintf(want, sizeof want, "%s: offset %ld: bad record followed by valid data in ",
		 path, at);
	assert_memory_equal(f->err, want, strlen(want));
}

static void test_corruption_refused(void **state)
{
	struct fx *f = *state;
	char path[256], want[300];
	long at;
	int fd;
	uint8_t byte;

	must_open(f);
	assert_int_equal(append(f, 1, 1, 5, 1, 100), 0);
	assert_int_equal(append(f, 2, 1, 5, 1, 100), 0);
	settle(f);
	close_log(f);
	at = find_entry(f, 1, 1, 3);
	assert_true(at > 0);
	path_of(f, 1, path, sizeof path);
	fd = open(path, O_RDWR);
	assert_int_equal(pread(fd, &byte, 1, at + CORE_LOG_RECORD_HEADER_SIZE + 10), 1);
	byte ^= 0x20;
	assert_int_equal(pwrite(fd, &byte, 1, at + CORE_LOG_RECORD_HEADER_SIZE + 10), 1);
	close(fd);
	assert_int_equal(open_log(f), RKV_ECORRUPT);
	snprintf(want, sizeof want, "%s: offset %ld: bad payload crc", path, at);
	assert_string_equal(f->err, want);
}

static void make_segments(struct fx *f, uint64_t n)
{
	uint64_t lo, hi, i = 1;

	must_open(f);
	do {
		assert_int_equal(append(f, 1, i, 4, 1, 4 * KIB), 0);
		i += 4;
		settle(f);
		seg_range(f, &lo, &hi);
	} while (hi < n + 1);
	close_log(f);
}

/* Of three segments, `seq` is deleted: the open is refused naming it. */
static void missing_segment_refused(struct fx *f, uint64_t seq)
{
	char path[256], want[64];

	make_segments(f, 3);
	path_of(f, seq, path, sizeof path);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(open_log(f), RKV_ECORRUPT);
	snprintf(want, sizeof want, "log-%020" PRIu64 ".log: offset 0: segment missing", seq);
	assert_non_null(strstr(f->err, want));
}

static void test_missing_middle_segment_refused(void **state)
{
	missing_segment_refused(*state, 2);
}

/* Offset of the last record of `kind` in segment `seq` (-1: none), and
 * the number of such records. */
static long last_of_kind(struct fx *f, uint64_t seq, uint8_t kind, unsigned *count,
			 struct core_log_record *out)
{
	struct core_log_scanner s;
	struct core_log_record r;
	long at = -1;

	*count = 0;
	assert_true(scan_segment(f, seq, &s));
	while (core_log_scan_next(&s, &r) == CORE_LOG_SCAN_RECORD)
		if (r.kind == kind) {
			at = (long)(s.offset - core_log_record_size(r.payload_len));
			(*count)++;
			if (out)
				*out = r;
		}
	return at;
}

/* Replaces everything from offset `at` of segment `seq` with zeros. */
static void zero_from(struct fx *f, uint64_t seq, long at)
{
	static uint8_t zeros[64 * KIB];
	char path[256];
	struct stat st;
	int fd;

	path_of(f, seq, path, sizeof path);
	assert_int_equal(stat(path, &st), 0);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	for (off_t o = at; o < st.st_size; o += (off_t)sizeof zeros) {
		size_t len = (size_t)(st.st_size - o) < sizeof zeros ? (size_t)(st.st_size - o)
								   : sizeof zeros;

		assert_int_equal(pwrite(fd, zeros, len, o), (ssize_t)len);
	}
	close(fd);
}

/*
 * The records at the end of a segment that is not the last replaced by
 * zeros (or the file cut at a record boundary that is also a page
 * boundary): the segment parses as a whole one that just ends there. The
 * next segment's checkpoint says where its records really end (a SEAL
 * record, written once they were all durable), so it is refused.
 */
static void test_zeroed_end_of_older_segment_refused(void **state)
{
	struct fx *f = *state;
	struct core_log_record seal;
	unsigned n;
	long at;

	make_segments(f, 3);
	/* Every segment after the first names the end of the one before. */
	assert_true(last_of_kind(f, 2, CORE_LOG_SEAL, &n, &seal) > 0);
	assert_int_equal(n, 1);
	assert_int_equal(seal.a, 1);
	assert_true(last_of_kind(f, 1, CORE_LOG_SEAL, &n, NULL) < 0);
	must_open(f); /* untouched: opens */
	close_log(f);
	at = last_of_kind(f, 2, CORE_LOG_ENTRY, &n, NULL);
	assert_true(at > 0 && n > 1);
	zero_from(f, 2, at);
	assert_int_equal(open_log(f), RKV_ECORRUPT);
	assert_non_null(strstr(f->err, "log-00000000000000000002.log"));
	assert_non_null(strstr(f->err, "cut or zeroed"));
}

/*
 * A segment whose first store (checkpoint and batch) reached the disk only
 * up to its RETAIN (and SEAL) record: its checkpoint is written again, so
 * retention deleting the older segments keeps a hard state written once,
 * long ago (group 3's). Found by review: the segment used to count as
 * checkpointed once its RETAIN parsed.
 */
static void test_torn_checkpoint_written_again(void **state)
{
	struct fx *f = *state;
	struct raft_hard_state hs = { .term = 7, .vote = 3 };
	uint64_t lo, hi, last = 0, i = 1;
	struct core_log_stats st;
	char path[256];
	unsigned n;
	long at;

	must_open(f);
	assert_int_equal(core_log_set_hard_state(f->log, 3, &hs), 0);
	do {
		assert_int_equal(append(f, 1, i, 4, 1, 4 * KIB), 0);
		i += 4;
		settle(f);
		seg_range(f, &lo, &hi);
	} while (hi < 4);
	close_log(f);
	seg_range(f, &lo, &hi);
	/* The last segment holding records. */
	for (last = hi; last >= lo; last--) {
		at = last_of_kind(f, last, CORE_LOG_RETAIN, &n, NULL);
		if (at > 0)
			break;
	}
	assert_true(last >= 2);
	/* A crash during the first store into `last`: no segment prepared
	 * after it yet (preparing starts once it is half full). */
	for (uint64_t q = last + 1; q <= hi; q++) {
		path_of(f, q, path, sizeof path);
		assert_int_equal(unlink(path), 0);
	}
	/* Its first CHECKPOINT record and all after it: zeros (the store
	 * reached the disk only up to its RETAIN and SEAL). */
	{
		struct core_log_scanner sc;
		struct core_log_record r;

		assert_true(scan_segment(f, last, &sc));
		at = -1;
		while (core_log_scan_next(&sc, &r) == CORE_LOG_SCAN_RECORD)
			if (r.kind == CORE_LOG_CHECKPOINT) {
				at = (long)(sc.offset - core_log_record_size(r.payload_len));
				break;
			}
	}
	assert_true(at > 0);
	unmark(f, last, at);
	zero_from(f, last, at);
	must_open(f);
	/* Group 1 lets go of everything; writes go on, retention runs. */
	core_log_release(f->log, 1, f->rg[1].first + f->rg[1].n - 1);
	assert_int_equal(append(f, 1, f->rg[1].first + f->rg[1].n, 1, 1, 100), 0);
	settle_long(f);
	assert_int_equal(append(f, 1, f->rg[1].first + f->rg[1].n + 1, 1, 1, 100), 0);
	settle_long(f);
	core_log_stats(f->log, &st);
	reopen(f);
	seg_range(f, &lo, &hi);
	assert_int_equal(f->rg[3].hs.term, 7);
}

static void test_missing_first_segment_refused(void **state)
{
	missing_segment_refused(*state, 1);
}

/*
 * Salvage (a repair from the peers, cluster/core_log_repair.c): the first
 * segment damaged and set aside, the log reads from the second on with its
 * hard states (written into the first segment only, and carried by every
 * later checkpoint); its first flush records the new oldest segment, so a
 * plain open accepts the log again.
 */
static void test_salvage_from(void **state)
{
	struct fx *f = *state;
	struct raft_hard_state hs = { .term = 9, .vote = 2 };
	char path[256];

	must_open(f);
	assert_int_equal(core_log_set_hard_state(f->log, 5, &hs), 0);
	settle(f);
	close_log(f);
	make_segments(f, 3);
	path_of(f, 1, path, sizeof path);
	zero_from(f, 1, 0);
	assert_int_equal(open_log(f), RKV_ECORRUPT);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(open_log(f), RKV_ECORRUPT); /* the RETAIN rule */
	clear_restored(f);
	f->salvage_from = 2;
	must_open(f);
	f->salvage_from = 0;
	assert_true(f->rg[5].present);
	assert_int_equal(f->rg[5].hs.term, 9);
	assert_int_equal(f->rg[5].hs.vote, 2);
	assert_int_equal(core_log_reset(f->log, 1, 0, 0), 0);
	clear_restored(f);
	reopen(f); /* plain: the flush recorded the oldest segment kept */
	assert_int_equal(f->rg[5].hs.term, 9);
	/* Nothing to read from: refused. */
	close_log(f);
	f->salvage_from = 1000;
	assert_int_equal(open_log(f), RKV_ECORRUPT);
	f->salvage_from = 0;
	must_open(f);
}

/* Killed in the middle of a store: reopens with a prefix of the batch. */
static void test_killed_mid_store(void **state)
{
	struct fx *f = *state;
	const int trials = 6;
	unsigned seed = (unsigned)time(NULL);

	f->segment_size = 256u << 20;
	f->prealloc = 32u << 20;
	for (int t = 0; t < trials; t++) {
		int ready[2];
		pid_t pid;
		char c;
		int status;

		snprintf(f->dir, sizeof f->dir, "%s/kill-%d", f->base, t);
		must_open(f);
		assert_int_equal(append(f, 1, 1, 1, 1, 100), 0);
		settle(f); /* the file is preallocated and the first entry durable */
		assert_int_equal(pipe(ready), 0);
		/* The parent's log is idle from here; the child opens the
		 * directory again on a ring of its own, stages 24 MiB in one
		 * batch and writes it, and is killed at a random moment:
		 * before, during or after the WRITE and its fdatasync. */
		core_log_close(f->log);
		f->log = NULL;
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			char err[256];

			close(ready[0]);
			if (io_ring_init(&f->io, 256, err, sizeof err) != 0 || open_log(f) != 0)
				_exit(1);
			for (uint64_t i = 2; i < 2 + 384; i += 64)
				if (append(f, 1, i, 64, 1, 1 * KIB) != 0)
					_exit(1);
			for (uint64_t i = 386; i < 386 + 360; i += 1)
				if (append(f, 2, i - 385, 1, 1, 64 * KIB) != 0)
					_exit(1);
			if (write(ready[1], "r", 1) != 1)
				_exit(1);
			for (;;) {
				core_log_flush(f->log);
				if (io_ring_submit_wait(&f->io, 100000) != 0)
					_exit(1);
				io_ring_dispatch(&f->io);
			}
		}
		close(ready[1]);
		assert_int_equal(read(ready[0], &c, 1), 1);
		close(ready[0]);
		usleep((useconds_t)(rand_r(&seed) % 12000));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		must_open(f);
		{
			struct core_log_stats st;

			core_log_stats(f->log, &st);
			printf("  trial %d: group 1 has %zu entries, group 2 %zu, %" PRIu64
			       " torn bytes cut\n", t, f->rg[1].n, f->rg[2].n, st.torn_bytes);
		}
		assert_int_equal(f->bad_payloads, 0);
		assert_true(f->rg[1].present);
		assert_int_equal(f->rg[1].first, 1);
		assert_true(f->rg[1].n >= 1);
		if (f->rg[2].present && f->rg[2].n)
			assert_int_equal(f->rg[2].first, 1);
		close_log(f);
	}
}

/* A closed log of group 1's entries 1..8 (1000 bytes each), in segment 1
 * at `path`. */
static void eight_entries(struct fx *f, char *path, size_t len)
{
	must_open(f);
	assert_int_equal(append(f, 1, 1, 8, 1, 1000), 0);
	settle(f);
	close_log(f);
	path_of(f, 1, path, len);
}

/* Issue 14: a segment cut inside a record is not a torn write (records go
 * only into space made durable first, so a crash leaves zeros after them):
 * refused, naming the file, and the file left as it was. */
static void test_cut_mid_record_refused(void **state)
{
	struct fx *f = *state;
	char path[256];
	struct stat st;
	long at;

	eight_entries(f, path, sizeof path);
	at = find_entry(f, 1, 1, 5);
	assert_true(at > 0);
	assert_int_equal(truncate(path, at + CORE_LOG_RECORD_HEADER_SIZE + 100), 0);
	assert_int_equal(open_log(f), RKV_ECORRUPT);
	assert_non_null(strstr(f->err, "log-00000000000000000001.log"));
	assert_non_null(strstr(f->err, "inside a record"));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, at + CORE_LOG_RECORD_HEADER_SIZE + 100);
	/* Cut inside a record header too. */
	assert_int_equal(truncate(path, at + 20), 0);
	assert_int_equal(open_log(f), RKV_ECORRUPT);
	assert_non_null(strstr(f->err, "inside a record"));
}

/* A segment without a whole header is one being created only if it is the
 * first ever or another precedes it: alone with seq > 1 it was cut. */
static void test_lone_headerless_segment_refused(void **state)
{
	struct fx *f = *state;
	char path[256];
	int fd;

	assert_int_equal(mkdir(f->dir, 0755), 0);
	path_of(f, 7, path, sizeof path);
	fd = open(path, O_RDWR | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(open_log(f), RKV_ECORRUPT);
	assert_non_null(strstr(f->err, "log-00000000000000000007.log"));
	assert_non_null(strstr(f->err, "only segment"));
	/* The first segment ever, cut short while being created: rewritten. */
	assert_int_equal(unlink(path), 0);
	path_of(f, 1, path, sizeof path);
	fd = open(path, O_RDWR | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	must_open(f);
	close_log(f);
}

/* core_log_check_holds: the log must still hold the entry at a state
 * machine's flushed index (or start after it). */
static void test_check_holds(void **state)
{
	struct fx *f = *state;

	must_open(f);
	assert_int_equal(append(f, 1, 1, 5, 1, 100), 0);
	assert_int_equal(core_log_reset(f->log, 2, 40, 3), 0);
	settle(f);
	reopen(f);
	assert_int_equal(core_log_check_holds(f->log, 1, 0, "m", f->err, sizeof f->err), 0);
	assert_int_equal(core_log_check_holds(f->log, 1, 5, "m", f->err, sizeof f->err), 0);
	assert_int_equal(core_log_check_holds(f->log, 2, 40, "m", f->err, sizeof f->err), 0);
	assert_int_equal(core_log_check_holds(f->log, 9, 0, "m", f->err, sizeof f->err), 0);
	assert_int_equal(core_log_check_holds(f->log, 1, 8, "shard-1/MANIFEST", f->err,
					      sizeof f->err), RKV_ECORRUPT);
	assert_non_null(strstr(f->err, "entries 6..8"));
	assert_non_null(strstr(f->err, "shard-1/MANIFEST"));
	assert_int_equal(core_log_check_holds(f->log, 2, 41, "m", f->err, sizeof f->err),
			 RKV_ECORRUPT);
	assert_int_equal(core_log_check_holds(f->log, 9, 3, "m", f->err, sizeof f->err),
			 RKV_ECORRUPT);
	assert_non_null(strstr(f->err, "no record of group 9"));
	close_log(f);
}

/* Cut exactly at a record boundary: the records parse, but segments are
 * sized in whole pages with zeros after the records, so a file ending
 * right after a record at another size was cut. A torn tail is cut to the
 * next page, so a crash right after that recovery is not mistaken for it. */
static void test_cut_at_record_boundary_refused(void **state)
{
	struct fx *f = *state;
	char path[256], want[64];
	struct stat st;
	uint8_t junk[30];
	long at;
	int fd;

	eight_entries(f, path, sizeof path);
	/* A torn tail: recovery cuts it, the file keeps a whole-page size. */
	at = find_entry(f, 1, 1, 8);
	assert_true(at > 0);
	memset(junk, 0x5a, sizeof junk);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, junk, sizeof junk, at + CORE_LOG_RECORD_HEADER_SIZE + 1000),
			 (ssize_t)sizeof junk);
	close(fd);
	must_open(f);
	close_log(f);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size % 4096, 0);
	must_open(f);
	check_group(f, 1, 1, 8, 1);
	close_log(f);
	/* Now cut right before entry 5. */
	at = find_entry(f, 1, 1, 5);
	assert_true(at > 0 && at % 4096 != 0);
	assert_int_equal(truncate(path, at), 0);
	assert_int_equal(open_log(f), RKV_ECORRUPT);
	assert_non_null(strstr(f->err, "log-00000000000000000001.log"));
	/* The durable-end mark (or, without it, the size) tells the cut. */
	snprintf(want, sizeof want, "synced after offset %ld are lost", at);
	assert_non_null(strstr(f->err, want));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, at);
}

/* The whole file `path`, in a malloc'd buffer. */
static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

/* Writes `buf` as the whole of `path` (truncated to `len`). */
static void spit(const char *path, const uint8_t *buf, size_t len)
{
	int fd = open(path, O_RDWR | O_TRUNC);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, 0), (ssize_t)len);
	close(fd);
}

/*
 * Issue 14: the last segment's records cut or zeroed at a record boundary
 * (and a page boundary: zeros to a whole page follow, as after a crash).
 * Every batch here was synced and the log went quiet after each, so each
 * batch's end was marked: every such cut of the final log loses synced
 * entries and is refused, naming the file and the offset. With page 0 as
 * it was while the last batch was in flight (its fdatasync not done, so no
 * mark could name it), a cut inside that batch is a torn tail: it opens
 * with the entries before the cut; a cut before it is still refused.
 */
static void test_every_cut_of_last_segment(void **state)
{
	struct fx *f = *state;
	const int batches = 6;
	uint64_t offs[64], index_after[64]; /* record boundaries, entries below */
	uint8_t *final, page0_before[CORE_LOG_RECORDS_START];
	size_t len, nb = 0, accepted = 0, refused = 0;
	uint64_t last_start = 0, index = 1;
	struct core_log_stats st;
	struct core_log_scanner sc;
	struct core_log_record r;
	struct raft_hard_state hs = { 1, 2 };
	char path[256], want[300];
	int fd;

	f->segment_size = 1024 * KIB;
	f->prealloc = 256 * KIB;
	must_open(f);
	path_of(f, 1, path, sizeof path);
	for (int b = 0; b < batches; b++) {
		if (b == batches - 1) {
			/* page 0 as the last batch's chain leaves it */
			fd = open(path, O_RDONLY);
			assert_int_equal(pread(fd, page0_before, sizeof page0_before, 0),
					 (ssize_t)sizeof page0_before);
			close(fd);
		}
		assert_int_equal(append(f, 1, index, 3, 1, 300 + 100 * (size_t)b), 0);
		index += 3;
		hs.term++;
		assert_int_equal(core_log_set_hard_state(f->log, 2, &hs), 0);
		settle(f);
	}
	core_log_stats(f->log, &st);
	/* Each quiet period wrote one mark alone; batches wrote none (the
	 * one before them was already marked). */
	assert_int_equal(st.idle_marks, (uint64_t)batches);
	assert_int_equal(st.fsyncs, (uint64_t)batches);
	close_log(f);
	final = slurp(path, &len);
	/* The boundaries, with the entries of group 1 wholly below each. */
	assert_true(scan_segment(f, 1, &sc));
	offs[nb] = sc.offset;
	index_after[nb++] = 0;
	while (core_log_scan_next(&sc, &r) == CORE_LOG_SCAN_RECORD) {
		assert_true(nb < 64);
		offs[nb] = sc.offset;
		index_after[nb] = index_after[nb - 1];
		if (r.kind == CORE_LOG_ENTRY && r.group == 1) {
			index_after[nb] = r.a;
			if (r.a == index - 3 && last_start == 0)
				last_start = offs[nb - 1];
		}
		nb++;
	}
	assert_true(last_start > 0);
	for (size_t k = 0; k < nb; k++) {
		uint64_t at = offs[k];
		bool end = k == nb - 1;

		for (int variant = 0; variant < 4; variant++) {
			bool before_mark = variant >= 2; /* page 0 of the in-flight batch */
			bool opens = end || (before_mark && at >= last_start);

			spit(path, final, len);
			if (before_mark) {
				fd = open(path, O_RDWR);
				assert_int_equal(pwrite(fd, page0_before, sizeof page0_before, 0),
						 (ssize_t)sizeof page0_before);
				close(fd);
			}
			if (variant % 2 == 0) {
				zero_from(f, 1, (long)at);
			} else { /* cut, then zeros up to a whole page */
				assert_int_equal(truncate(path, (off_t)at), 0);
				assert_int_equal(truncate(path, (off_t)((at + 4095) / 4096 * 4096)), 0);
			}
			if (!opens) {
				assert_int_equal(open_log(f), RKV_ECORRUPT);
				snprintf(want, sizeof want, "%s: offset %" PRIu64 ": ", path, at);
				assert_memory_equal(f->err, want, strlen(want));
				assert_non_null(strstr(f->err, "synced after offset"));
				refused++;
				continue;
			}
			must_open(f);
			if (index_after[k] > 0)
				check_group(f, 1, 1, (size_t)index_after[k], 1);
			close_log(f);
			accepted++;
		}
	}
	/* The last batch's 4 records: its 5 boundaries (its end included)
	 * open with the in-flight page 0, zeroed and cut; the end opens with
	 * the final page 0 too. Every other cut is refused. */
	assert_int_equal(accepted, 2 * 5 + 2);
	assert_int_equal(refused, 4 * (nb - 5) + 2 * 4);
	free(final);
}

/*
 * A segment of format version 1 (records from offset 32, no durable-end
 * marks; development builds only) is refused by name, and left as it was.
 */
static void test_version_1_refused(void **state)
{
	struct fx *f = *state;
	uint8_t seg[2 * 4096] = { 0 };
	struct stat st;
	char path[256];
	uint32_t crc;
	size_t len;
	int fd;

	must_open(f);
	close_log(f);
	path_of(f, 1, path, sizeof path);
	/* A version 1 header, then its RETAIN record at 32. */
	core_log_segment_header_encode(seg, 1);
	seg[8] = 1;
	crc = crc32c(0, seg, 28);
	for (int i = 0; i < 4; i++)
		seg[28 + i] = (uint8_t)(crc >> (8 * i));
	len = 32 + core_log_record_finish(seg + 32, &(struct core_log_record){
		.kind = CORE_LOG_RETAIN, .a = 1 });
	assert_true(len < sizeof seg);
	fd = open(path, O_RDWR | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, seg, sizeof seg, 0), (ssize_t)sizeof seg);
	close(fd);
	assert_int_equal(open_log(f), RKV_ECORRUPT);
	assert_non_null(strstr(f->err, "log-00000000000000000001.log: offset 8: core log "
				       "format version 1, but this ringkvd reads version 2 only"));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, sizeof seg);
}
int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_torn_tail_truncated, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_before_prepared_segment, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_torn_record_followed_by_segment_refused, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_corruption_refused, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_missing_middle_segment_refused, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_zeroed_end_of_older_segment_refused, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_torn_checkpoint_written_again, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_missing_first_segment_refused, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_salvage_from, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_killed_mid_store, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_cut_mid_record_refused, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_lone_headerless_segment_refused, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_check_holds, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_every_cut_of_last_segment, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_version_1_refused, core_log_fixture_setup,
						core_log_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_cut_at_record_boundary_refused, core_log_fixture_setup,
						core_log_fixture_teardown),
	};

	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
