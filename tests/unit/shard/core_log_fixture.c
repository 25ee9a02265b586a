/*
 * The core log tests' fixture (core_log_fixture.h): the recording
 * callbacks, open/settle/close on a real ring, and segment readers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/errors.h"
#include "core_log_fixture.h"

void fill(uint8_t *p, size_t len, uint64_t g, uint64_t i, uint64_t t)
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

void clear_restored(struct fx *f)
{
	for (int g = 0; g < MAXG; g++) {
		free(f->rg[g].terms);
		memset(&f->rg[g], 0, sizeof f->rg[g]);
	}
	f->restored = 0;
	f->bad_payloads = 0;
}

int open_log(struct fx *f)
{
	struct core_log_config cfg = {
		.salvage_from = f->salvage_from,
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

void must_open(struct fx *f)
{
	int rv = open_log(f);

	if (rv)
		fail_msg("core_log_open: %s (%s)", f->err, rkv_strerror(rv));
}

void settle(struct fx *f)
{
	for (int i = 0; i < 10000 && !core_log_idle(f->log); i++) {
		core_log_flush(f->log);
		assert_int_equal(io_ring_submit_wait(&f->io, 100000), 0);
		io_ring_dispatch(&f->io);
	}
	assert_true(core_log_idle(f->log));
	assert_int_equal(f->batch_order, 0);
}

void settle_long(struct fx *f)
{
	for (int i = 0; i < 64; i++) {
		core_log_flush(f->log);
		settle(f);
	}
}

void close_log(struct fx *f)
{
	settle(f);
	core_log_close(f->log);
	f->log = NULL;
}

void reopen(struct fx *f)
{
	close_log(f);
	must_open(f);
}

int core_log_fixture_setup(void **state)
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

int core_log_fixture_teardown(void **state)
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

int append(struct fx *f, uint64_t g, uint64_t first, size_t n, uint64_t term, size_t len)
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

void path_of(struct fx *f, uint64_t seq, char *buf, size_t len)
{
	snprintf(buf, len, "%s/log-%020" PRIu64 ".log", f->dir, seq);
}

bool seg_exists(struct fx *f, uint64_t seq)
{
	char path[256];

	path_of(f, seq, path, sizeof path);
	return access(path, F_OK) == 0;
}

void seg_range(struct fx *f, uint64_t *lo, uint64_t *hi)
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

bool scan_segment(struct fx *f, uint64_t seq, struct core_log_scanner *s)
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

long find_entry(struct fx *f, uint64_t seq, uint64_t g, uint64_t index)
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

void check_group(struct fx *f, uint64_t g, uint64_t first, size_t n, uint64_t term_of_all)
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
