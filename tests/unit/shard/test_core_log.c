/*
 * Tests for shard/core_log.c and core_log_open.c on a real io_uring ring:
 * group commit across groups, truncation and reset semantics across
 * reopen and across segments, the checkpoint that keeps hard states alive
 * when old segments go, retention, and every recovery rule (torn tail cut,
 * corruption and missing segments refused with file and offset, a process
 * killed in the middle of a store).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/errors.h"
#include "core/log.h"
#include "shard/core_log.h"
#include "shard/core_log_format.h"
#include "shard/core_log_internal.h" /* the fdatasync failure test swaps the fd */
#include "shard/crc32c.h"

#define MAXG 1024
#define KIB 1024u

struct rgroup {
	bool present;
	struct raft_hard_state hs;
	uint64_t start_index, start_term;
	uint64_t first;
	size_t n;
	uint64_t *terms;
};

struct fx {
	char base[96];
	char dir[192];
	struct io_ring io;
	struct core_log *log;
	uint64_t segment_size;
	uint64_t prealloc;
	unsigned max_syncs;
	bool buffered;     /* core_log_config.buffered */
	unsigned mark_delay_ms;
	char err[512];
	/* persisted callbacks */
	uint64_t calls;
	uint64_t calls_failed;
	uint64_t last_batch;  /* of the last successful callback */
	uint64_t batch_order; /* callbacks whose batch number went backwards */
	int last_status[MAXG];
	uint64_t durable_index[MAXG];
	uint64_t durable_term[MAXG];
	unsigned hs_durable[MAXG];
	/* restore callbacks */
	struct rgroup rg[MAXG];
	size_t restored;
	int bad_payloads;
};

static void fill(uint8_t *p, size_t len, uint64_t g, uint64_t i, uint64_t t)
{
	for (size_t k = 0; k < len; k++)
		p[k] = (uint8_t)(g * 31 + i * 7 + t * 13 + k);
}

static int on_restore(void *arg, const struct core_log_group_state *st)
{
	struct fx *f = arg;
	struct rgroup *r;
	uint8_t want[64 * KIB];

	if (st->group >= MAXG)
		return RKV_EINVAL;
	r = &f->rg[st->group];
	r->present = true;
	r->hs = st->hard_state;
	r->start_index = st->start_index;
	r->start_term = st->start_term;
	r->first = st->first_index;
	r->n = st->n_entries;
	r->terms = realloc(r->terms, (st->n_entries + 1) * sizeof *r->terms);
	for (size_t i = 0; i < st->n_entries; i++) {
		const struct raft_entry *e = &st->entries[i];

		r->terms[i] = e->term;
		if (e->len > sizeof want) {
			f->bad_payloads++;
			continue;
		}
		fill(want, e->len, st->group, st->first_index + i, e->term);
		if (e->type != 1 || memcmp(want, e->data, e->len) != 0)
			f->bad_payloads++;
	}
	f->restored++;
	return 0;
}

static void on_persisted(void *arg, const struct core_log_persisted *p)
{
	struct fx *f = arg;

	assert_true(p->group < MAXG);
	f->calls++;
	f->last_status[p->group] = p->status;
	if (p->status != 0) {
		f->calls_failed++;
		return;
	}
	/* Durable in the order stored, each with its number. */
	if (p->batch == 0 || p->batch < f->last_batch)
		f->batch_order++;
	f->last_batch = p->batch;
	if (p->entries) {
		f->durable_index[p->group] = p->last_index;
		f->durable_term[p->group] = p->last_term;
	}
	if (p->hard_state)
		f->hs_durable[p->group]++;
}

static void clear_restored(struct fx *f)
{
	for (int g = 0; g < MAXG; g++) {
		free(f->rg[g].terms);
		memset(&f->rg[g], 0, sizeof f->rg[g]);
	}
	f->restored = 0;
	f->bad_payloads = 0;
}

static uint64_t salvage_from; /* open_log's core_log_config.salvage_from */

static int open_log(struct fx *f)
{
	struct core_log_config cfg = {
		.salvage_from = salvage_from,
		.dir = f->dir,
		.segment_size = f->segment_size,
		.prealloc = f->prealloc,
		.max_syncs = f->max_syncs,
		.buffered = f->buffered,
		.mark_delay_ms = f->mark_delay_ms,
		.restore = on_restore,
		.restore_arg = f,
		.persisted = on_persisted,
		.persisted_arg = f,
	};

	clear_restored(f);
	f->err[0] = '\0';
	f->last_batch = 0;
	return core_log_open(&f->log, &cfg, &f->io, f->err, sizeof f->err);
}

static void must_open(struct fx *f)
{
	int rv = open_log(f);

	if (rv)
		fail_msg("core_log_open: %s (%s)", f->err, rkv_strerror(rv));
}

/* Runs the ring until the log has nothing pending or in flight. */
static void settle(struct fx *f)
{
	for (int i = 0; i < 10000 && !core_log_idle(f->log); i++) {
		core_log_flush(f->log);
		assert_int_equal(io_ring_submit_wait(&f->io, 100000), 0);
		io_ring_dispatch(&f->io);
	}
	assert_true(core_log_idle(f->log));
	assert_int_equal(f->batch_order, 0);
}

/* A few more passes: retention needs a RETAIN to be durable, then unlinks
 * one segment per pass. */
static void settle_long(struct fx *f)
{
	for (int i = 0; i < 64; i++) {
		core_log_flush(f->log);
		settle(f);
	}
}

static void close_log(struct fx *f)
{
	settle(f);
	core_log_close(f->log);
	f->log = NULL;
}

static void reopen(struct fx *f)
{
	close_log(f);
	must_open(f);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	char err[256];

	/* RINGKV_CORE_LOG_TEST_DIR: another file system (meson runs this
	 * file once on /dev/shm, where the log takes the buffered path). */
	snprintf(f->base, sizeof f->base, "%s/ringkv-corelog-XXXXXX",
		 getenv("RINGKV_CORE_LOG_TEST_DIR") ? getenv("RINGKV_CORE_LOG_TEST_DIR") : "/tmp");
	assert_non_null(mkdtemp(f->base));
	snprintf(f->dir, sizeof f->dir, "%s/core-0", f->base);
	f->segment_size = 64 * KIB;
	f->prealloc = 64 * KIB;
	/* meson runs this file twice: direct writes (the default), and with
	 * RINGKV_CORE_LOG_BUFFERED=1 the page-cache path. */
	f->buffered = getenv("RINGKV_CORE_LOG_BUFFERED") != NULL;
	assert_int_equal(io_ring_init(&f->io, 256, err, sizeof err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];

	if (f->log)
		close_log(f);
	io_ring_exit(&f->io);
	clear_restored(f);
	umount2(f->dir, MNT_DETACH); /* the disk-full test's tmpfs, if any */
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->base);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Stages entries [first, first + n) of `g` in `term`, `len` bytes each. */
static int append(struct fx *f, uint64_t g, uint64_t first, size_t n, uint64_t term, size_t len)
{
	static uint8_t data[64][64 * KIB];
	struct raft_entry e[64];

	assert_true(n <= 64 && len <= sizeof data[0]);
	for (size_t i = 0; i < n; i++) {
		fill(data[i], len, g, first + i, term);
		e[i] = (struct raft_entry){ .term = term, .type = 1, .len = (uint32_t)len,
					    .data = data[i] };
	}
	return core_log_append(f->log, g, first, e, n);
}

static void path_of(struct fx *f, uint64_t seq, char *buf, size_t len)
{
	snprintf(buf, len, "%s/log-%020" PRIu64 ".log", f->dir, seq);
}

static bool seg_exists(struct fx *f, uint64_t seq)
{
	char path[256];

	path_of(f, seq, path, sizeof path);
	return access(path, F_OK) == 0;
}

/* Lowest and highest segment seq present in the directory. */
static void seg_range(struct fx *f, uint64_t *lo, uint64_t *hi)
{
	DIR *d = opendir(f->dir);
	struct dirent *de;

	*lo = UINT64_MAX;
	*hi = 0;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		uint64_t seq;

		if (sscanf(de->d_name, "log-%" SCNu64 ".log", &seq) != 1)
			continue;
		if (seq < *lo)
			*lo = seq;
		if (seq > *hi)
			*hi = seq;
	}
	closedir(d);
}

/* Starts a scan of segment `seq` (its first 4 MiB); false if it is missing. */
static bool scan_segment(struct fx *f, uint64_t seq, struct core_log_scanner *s)
{
	char path[256];
	static uint8_t buf[4u << 20];
	ssize_t len;
	int fd;

	path_of(f, seq, path, sizeof path);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	len = pread(fd, buf, sizeof buf, 0);
	close(fd);
	assert_true(len >= 0);
	core_log_scan_init(s, buf, (size_t)len);
	return true;
}

/* Offset of the record holding ENTRY(g, index) in segment `seq`, or -1. */
static long find_entry(struct fx *f, uint64_t seq, uint64_t g, uint64_t index)
{
	struct core_log_scanner s;
	struct core_log_record r;
	long at = -1;

	if (!scan_segment(f, seq, &s))
		return -1;
	while (core_log_scan_next(&s, &r) == CORE_LOG_SCAN_RECORD)
		if (r.kind == CORE_LOG_ENTRY && r.group == g && r.a == index)
			at = (long)(s.offset - core_log_record_size(r.payload_len));
	return at;
}

static void check_group(struct fx *f, uint64_t g, uint64_t first, size_t n, uint64_t term_of_all)
{
	struct rgroup *r = &f->rg[g];

	assert_true(r->present);
	assert_int_equal(r->n, n);
	if (n) {
		assert_int_equal(r->first, first);
		if (term_of_all)
			for (size_t i = 0; i < n; i++)
				assert_int_equal(r->terms[i], term_of_all);
	}
	assert_int_equal(f->bad_payloads, 0);
}

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

static void test_missing_middle_segment_refused(void **state)
{
	struct fx *f = *state;
	char path[256];

	make_segments(f, 3);
	path_of(f, 2, path, sizeof path);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(open_log(f), RKV_ECORRUPT);
	assert_non_null(strstr(f->err, "log-00000000000000000002.log: offset 0: segment missing"));
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
	struct fx *f = *state;
	char path[256];

	make_segments(f, 3);
	path_of(f, 1, path, sizeof path);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(open_log(f), RKV_ECORRUPT);
	assert_non_null(strstr(f->err, "log-00000000000000000001.log: offset 0: segment missing"));
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
	salvage_from = 2;
	must_open(f);
	salvage_from = 0;
	assert_true(f->rg[5].present);
	assert_int_equal(f->rg[5].hs.term, 9);
	assert_int_equal(f->rg[5].hs.vote, 2);
	assert_int_equal(core_log_reset(f->log, 1, 0, 0), 0);
	clear_restored(f);
	reopen(f); /* plain: the flush recorded the oldest segment kept */
	assert_int_equal(f->rg[5].hs.term, 9);
	/* Nothing to read from: refused. */
	close_log(f);
	salvage_from = 1000;
	assert_int_equal(open_log(f), RKV_ECORRUPT);
	salvage_from = 0;
	must_open(f);
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
		cmocka_unit_test_setup_teardown(test_round_trip_many_groups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncate_semantics, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncate_across_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_fsync_per_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_direct_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overlapping_fsyncs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_before_prepared_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_record_followed_by_segment_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_failed_fsync_fails_the_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corruption_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_middle_segment_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zeroed_end_of_older_segment_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_torn_checkpoint_written_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_first_segment_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_salvage_from, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_after_reset_and_remove, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full_small_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_mid_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cut_mid_record_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lone_headerless_segment_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_check_holds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_cut_of_last_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_version_1_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_marks_ride_with_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cut_at_record_boundary_refused, setup,
						teardown),
	};

	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
