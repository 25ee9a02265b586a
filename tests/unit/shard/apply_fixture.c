/*
 * Driving replicated shards on a real ring for the shard_apply tests
 * (test_shard_apply*.c; see apply_fixture.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <stdbool.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/errors.h"
#include "shard/block_cache.h"
#include "shard/command.h"
#include "shard/deadline_index.h"
#include "apply_fixture.h"

/* ---- driving shards ---- */

static void on_flushed(void *arg, struct shard *s, uint64_t flushed_index)
{
	struct hooks *h = arg;

	assert_int_equal(flushed_index, shard_flushed_index(s));
	if (h->nflushed < sizeof h->flushed / sizeof h->flushed[0])
		h->flushed[h->nflushed++] = flushed_index;
}

static void on_ready(void *arg, struct shard *s)
{
	struct hooks *h = arg;

	(void)s;
	h->ready++;
}

struct shard *open_rep(struct fixture *f, int slot, const char *name,
			      uint64_t apply_limit)
{
	char dir[128], err[512];
	struct shard_config cfg = {
		.id = (uint32_t)slot, .dir = dir, .memtable_size = MEMTABLE, .cache = f->cache,
		.table_size = 32 << 10, .level_base = 16 << 10, .block_size = 1024,
		.replicated = true, .apply_limit = apply_limit, .on_flushed = on_flushed,
		.on_apply_ready = on_ready, .hook_arg = &f->hooks[slot],
	};

	snprintf(dir, sizeof dir, "%s/%s", f->dir, name);
	if (shard_open(&f->s[slot], &cfg, &f->io, err, sizeof err))
		fail_msg("shard_open: %s", err);
	return f->s[slot];
}

int apply_fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	/* Small: table blocks fall out, so current values must be read. */
	struct block_cache_options copt = { .capacity = 64 << 10 };
	char err[256];

	flush_every = 0;
	strcpy(f->dir, "/tmp/ringkv-apply-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(io_ring_init(&f->io, 256, err, sizeof err), 0);
	assert_int_equal(block_cache_create(&f->cache, &copt), 0);
	*state = f;
	return 0;
}

int apply_fixture_teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	shard_close(f->s[0]);
	shard_close(f->s[1]);
	block_cache_destroy(f->cache);
	io_ring_exit(&f->io);
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

void turn(struct fixture *f)
{
	for (int i = 0; i < 2; i++)
		if (f->s[i])
			shard_flush(f->s[i]);
	assert_int_equal(io_ring_submit_wait(&f->io, 1000), 0);
	io_ring_dispatch(&f->io);
}

static bool settled(struct shard *s)
{
	return !s || (shard_idle(s) && shard_background_idle(s));
}

void settle(struct fixture *f)
{
	for (int i = 0; i < 200000 && !(settled(f->s[0]) && settled(f->s[1])); i++)
		turn(f);
	assert_true(settled(f->s[0]));
	assert_true(settled(f->s[1]));
}

int apply_entry(struct shard *s, uint64_t index, struct shard_waiter *w)
{
	const struct entry *e = &entries[index];

	if (e->noop)
		return shard_apply(s, index, SHARD_ENTRY_NOOP, NULL, 0, w);
	return shard_apply(s, index, SHARD_ENTRY_COMMAND, e->bytes, e->len, w);
}

/* Hands in entries [from, to], turning the ring while the shard refuses;
 * `with_clients`: each with its client's waiter, asking for the prior value. */
void apply_range_as(struct fixture *f, struct shard *s, uint64_t from, uint64_t to,
			   unsigned turn_every, bool with_clients)
{
	for (uint64_t i = from; i <= to; i++) {
		struct shard_waiter *w = NULL;
		int rv;

		if (with_clients) {
			memset(&clients[i], 0, sizeof clients[i]);
			clients[i].w.done = client_done;
			clients[i].w.want_prior = true;
			w = &clients[i].w;
		}
		for (int tries = 0; (rv = apply_entry(s, i, w)) == RKV_EAGAIN; tries++) {
			assert_true(tries < 100000);
			turn(f);
		}
		assert_int_equal(rv, 0);
		if (turn_every && i % turn_every == 0)
			turn(f);
	}
}

void apply_range(struct fixture *f, struct shard *s, uint64_t from, uint64_t to,
			unsigned turn_every)
{
	apply_range_as(f, s, from, to, turn_every, false);
}

struct scan_state {
	unsigned keys;
	bool bad;
	int done;
	int rv;
};

static bool scan_visit(void *arg, const void *key, size_t key_len, const void *value,
		       size_t value_len)
{
	struct scan_state *st = arg;
	char name[16], text[8];
	unsigned k;

	if (key_len == 7)
		memcpy(text, key, 7);
	text[7] = '\0';
	if (key_len != 7 || sscanf(text + 3, "%4u", &k) != 1 || k >= NKEYS) {
		st->bad = true;
		return true;
	}
	key_name(name, k);
	if (memcmp(name, key, 7) != 0 || !model_visible(k) || model[k].len != value_len ||
	    memcmp(model[k].value, value, value_len) != 0) {
		print_error("key %.*s differs from the model\n", (int)key_len, (const char *)key);
		st->bad = true;
	}
	st->keys++;
	return true;
}

static void scan_end(void *arg, int rv, bool exhausted, const void *last, size_t last_len)
{
	struct scan_state *st = arg;

	(void)exhausted;
	(void)last;
	(void)last_len;
	st->done++;
	st->rv = rv;
}

/* Every key of the model, read back by get and (`scan`) by one scan, and
 * nothing else. */
void check_model_keys(struct fixture *f, struct shard *s, bool scan)
{
	struct scan_state st = { 0 };
	unsigned present = 0;

	for (unsigned k = 0; k < NKEYS; k++) {
		struct get_result g;
		char name[16];
		int rv;

		key_name(name, k);
		rv = shard_test_get(s, &f->io, name, &g);
		if (!model_visible(k)) {
			if (rv != RKV_ENOTFOUND)
				fail_msg("%s: expected absent, got %d", name, rv);
			continue;
		}
		present++;
		if (rv != 0)
			fail_msg("%s: expected a value, got %d", name, rv);
		assert_int_equal(g.len, model[k].len);
		assert_memory_equal(g.value, model[k].value,
				    g.len < sizeof g.value ? g.len : sizeof g.value);
	}
	if (!scan)
		return;
	assert_int_equal(shard_scan(s, "", 0, false, 100000, scan_visit, scan_end, &st), 0);
	for (int i = 0; i < 100000 && !st.done; i++) {
		assert_int_equal(io_ring_submit_wait(&f->io, 1000), 0);
		io_ring_dispatch(&f->io);
	}
	assert_int_equal(st.done, 1);
	assert_int_equal(st.rv, 0);
	assert_false(st.bad);
	assert_int_equal(st.keys, present);
}

/*
 * The deadline index (shard/deadline_index.h) against the model: every key
 * it holds is stored with that deadline (so while it is incomplete it is
 * never wrong); `whole`: it holds every stored key with a deadline.
 */
void check_index_entries(struct shard *s, bool whole)
{
	const struct deadline_index *x = shard_deadline_index(s);
	size_t with = 0, held = 0;

	for (unsigned k = 0; k < NKEYS; k++) {
		char name[16];
		uint64_t d;

		key_name(name, k);
		d = deadline_index_get(x, name, 7);
		if (model[k].present && model[k].deadline)
			with++;
		if (!d)
			continue;
		held++;
		if (!model[k].present || model[k].deadline != d)
			fail_msg("%s: index has deadline %" PRIu64 ", model %s %" PRIu64, name, d,
				 model[k].present ? "present with" : "absent", model[k].deadline);
	}
	assert_int_equal(deadline_index_count(x), held);
	if (whole)
		assert_int_equal(held, with);
}

void rebuild_step_done(void *arg)
{
	(*(int *)arg)++;
}

/* Runs rebuild steps of a few keys each until the index is complete;
 * `model`: checked against the model at each step and at the end. */
void rebuild_index(struct fixture *f, struct shard *s, bool with_model)
{
	for (int i = 0; i < 100000 && !shard_deadlines_complete(s); i++) {
		int done = 0, rv = shard_deadlines_rebuild_step(s, 1 + i % 13, rebuild_step_done,
								&done);

		assert_true(rv == 0 || rv == 1);
		for (int j = 0; rv == 0 && j < 100000 && !done; j++)
			turn(f);
		if (with_model)
			check_index_entries(s, false);
	}
	assert_true(shard_deadlines_complete(s));
	if (with_model)
		check_index_entries(s, true);
}

void check_model(struct fixture *f, struct shard *s)
{
	check_model_keys(f, s, true);
	check_index_entries(s, shard_deadlines_complete(s));
	rebuild_index(f, s, true);
}

/* A restart of the shard in `slot`: reopened at its flushed index, the log
 * above it handed in again, it holds the model. */
void reopen_replay(struct fixture *f, int slot, const char *name)
{
	shard_close(f->s[slot]);
	f->s[slot] = NULL;
	open_rep(f, slot, name, 0);
	/* The deadline index is rebuilt by small steps while the log is
	 * applied: steps that meet a write must not record older values. */
	for (uint64_t i = shard_flushed_index(f->s[slot]) + 1; i <= NENTRIES; i++) {
		int done = 0;

		apply_range(f, f->s[slot], i, i, 0);
		if (i % 3 == 0) {
			(void)shard_deadlines_rebuild_step(f->s[slot], 2 + i % 5, NULL, &done);
			turn(f);
		}
	}
	settle(f);
	check_model(f, f->s[slot]);
}

/* The entries of `seed` into shard "a", one at a time with the ring turning
 * often and a client waiting on every entry, asking for the prior value (a
 * leader), and into "b" as fast as it takes them with no waiters (a
 * follower); settled, and every client told what the model says. */
void feed_two_paces(struct fixture *f, uint64_t seed)
{
	make_entries(seed);
	open_rep(f, 0, "a", 0);
	open_rep(f, 1, "b", 0);
	apply_range_as(f, f->s[0], 1, NENTRIES, 1, true);
	apply_range(f, f->s[1], 1, NENTRIES, 0);
	settle(f);
	check_answers();
}

int apply_cmd(struct shard *s, uint64_t index, struct command c,
		     struct shard_waiter *w)
{
	uint8_t buf[512];
	size_t len = command_encode(&c, buf);

	return shard_apply(s, index, SHARD_ENTRY_COMMAND, buf, len, w);
}

static void chunk_cb(struct shard_snapshot_chunk *c, int rv)
{
	struct chunk_io *x = (struct chunk_io *)c;

	x->done++;
	x->rv = rv;
}

/* The receiver's side, blocking: every file of `snap`, read in chunks
 * through the sender's ring, staged for the shard at `dir`. */
void ship(struct fixture *f, struct shard_snapshot *snap, const char *dir)
{
	static uint8_t buf[7000];
	char staging[256], path[512], err[512];

	if (shard_snapshot_stage(dir, staging, sizeof staging, err, sizeof err))
		fail_msg("stage: %s", err);
	for (size_t i = 0; i < snap->nfiles; i++) {
		int fd;

		snprintf(path, sizeof path, "%s/%s", staging, snap->files[i].name);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		assert_true(fd >= 0);
		for (uint64_t off = 0; off < snap->files[i].size;) {
			struct chunk_io x = { .c.done = chunk_cb };

			assert_int_equal(shard_snapshot_read(snap, i, off, buf, sizeof buf, &x.c), 0);
			for (int n = 0; n < 10000 && !x.done; n++) {
				assert_int_equal(io_ring_submit_wait(&f->io, 1000), 0);
				io_ring_dispatch(&f->io);
			}
			assert_int_equal(x.done, 1);
			assert_true(x.rv > 0);
			assert_int_equal(pwrite(fd, buf, (size_t)x.rv, (off_t)off), x.rv);
			off += (uint64_t)x.rv;
		}
		assert_int_equal(shard_snapshot_read(snap, i, snap->files[i].size, buf, 1,
						     &(struct chunk_io){ 0 }.c), RKV_EINVAL);
		close(fd);
	}
}
