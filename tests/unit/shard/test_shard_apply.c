/*
 * The shard in replicated mode (shard/shard_apply.c), on the fixture of
 * apply_fixture.h: committed entries applied in order agree with a model of
 * the state machine and between shards driven at different paces
 * (read-modify-write commands whose current value lives only in tables
 * included); a restart starts at the flushed index and replaying the log
 * above it gives the same contents; entries at or below the applied index
 * are skipped; an entry that waits for a block read holds back the entries
 * after it; the queue refuses entries while flushes lag and says when to
 * resume; undecodable payloads and NOOPs advance the applied index alike on
 * every shard; a damaged block stops apply; the deadline index's rebuild
 * meets writes. Snapshots: test_shard_apply_snapshot.c; FLUSH entries:
 * test_shard_apply_flush.c.
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

/* ---- tests ---- */

/*
 * Two shards, one fed an entry at a time with the ring turning often and a
 * client waiting on every entry (a leader), the other fed as fast as it
 * takes them with no waiters (a follower): both end equal to the model,
 * with flushes and compactions behind them and current values read from
 * tables, and every client is told what the model says its command did.
 */
static void test_two_paces_same_state(void **state)
{
	struct fixture *f = *state;
	struct shard_stats st[2];

	feed_two_paces(f, 0x9e3779b97f4a7c15ull);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(shard_applied_index(f->s[i]), NENTRIES);
		shard_get_stats(f->s[i], &st[i]);
		assert_true(st[i].flushes >= 4);
		assert_true(st[i].compactions >= 1);
		assert_int_equal(st[i].applied, NENTRIES);
		assert_int_equal(st[i].apply_errors, 0);
		check_model(f, f->s[i]);
	}
	/* Some current values came from blocks that had to be read. */
	assert_true(st[0].block_reads > 0 || st[1].block_reads > 0);
	/* The hook saw every flush, in order, ending at the flushed index. */
	for (int i = 0; i < 2; i++) {
		const struct hooks *h = &f->hooks[i];

		assert_true(h->nflushed >= 4);
		for (unsigned j = 1; j < h->nflushed; j++)
			assert_true(h->flushed[j] >= h->flushed[j - 1]);
		assert_int_equal(h->flushed[h->nflushed - 1], shard_flushed_index(f->s[i]));
	}
}

/*
 * A restart keeps only what reached SSTables: the shard reopens at its
 * flushed index, skips the log's entries up to it and applies the rest,
 * ending where a shard that never restarted ends.
 */
static void test_restart_replays_above_flushed_index(void **state)
{
	struct fixture *f = *state;
	struct waiter old = { .w.done = on_done };
	struct shard_stats st;
	uint64_t flushed;

	make_entries(0x1234567ull);
	open_rep(f, 0, "r", 0);
	apply_range(f, f->s[0], 1, NENTRIES / 2, 3);
	settle(f);
	flushed = shard_flushed_index(f->s[0]);
	assert_true(flushed > 0 && flushed < NENTRIES / 2);
	assert_int_equal(shard_applied_index(f->s[0]), NENTRIES / 2);

	shard_close(f->s[0]);
	f->s[0] = NULL;
	open_rep(f, 0, "r", 0);
	assert_int_equal(shard_applied_index(f->s[0]), flushed);
	assert_int_equal(shard_flushed_index(f->s[0]), flushed);
	assert_int_equal(shard_apply_last(f->s[0]), flushed);

	/* An entry the tables already hold: answered, nothing done. */
	assert_int_equal(apply_entry(f->s[0], flushed, &old.w), 0);
	assert_int_equal(old.done, 1);
	assert_int_equal(old.rv, -EALREADY);
	/* The log from its start again: up to `flushed` skipped. */
	apply_range(f, f->s[0], 1, NENTRIES, 2);
	settle(f);
	shard_get_stats(f->s[0], &st);
	assert_int_equal(st.apply_skipped, flushed + 1);
	assert_int_equal(st.applied, NENTRIES - flushed);
	assert_int_equal(shard_applied_index(f->s[0]), NENTRIES);
	check_model(f, f->s[0]);

	/* And once more after a restart with everything applied. */
	reopen_replay(f, 0, "r");
}

static unsigned answer_seq;

struct ordered {
	struct waiter x;
	unsigned seq;
};

static void on_done_ordered(struct shard_waiter *w, int rv, const struct shard_result *res)
{
	struct ordered *o = (struct ordered *)w;

	on_done(w, rv, res);
	o->seq = ++answer_seq;
}

static struct command incrby_cmd(const char *k, int64_t delta)
{
	return (struct command){ .op = COMMAND_INCRBY, .key = (const uint8_t *)k,
				 .key_len = (uint32_t)strlen(k), .delta = delta };
}

/*
 * The deadline index's rebuild meets writes: keys with deadlines in tables
 * only, a rebuild step that waits for a block, and meanwhile every one of
 * those keys written again without a deadline (and a few with another).
 * Once rebuilt, the index holds exactly the new deadlines: nothing the
 * step read before the writes landed.
 */
/*
 * A rebuild step waiting for a block while every key is written again:
 * with `some_deadlines`, one key in 100 gets a new deadline (the index
 * exists again by then); without, none does, so the writes land while the
 * shard has no index at all, and must still stop the step.
 */
static void rebuild_meets_writes(struct fixture *f, bool some_deadlines)
{
	char key[32], value[128];
	uint64_t i = 1;
	const unsigned n = 1500;
	int done = 0;

	open_rep(f, 0, "ix", 0);
	assert_true(shard_deadlines_complete(f->s[0]));
	memset(value, 'v', 100);
	value[100] = '\0';
	for (unsigned k = 0; k < n; k++, i++) {
		struct command c;

		snprintf(key, sizeof key, "dk%05u", k);
		c = put_cmd(key, value);
		c.op = COMMAND_PUT_AT;
		c.deadline = MODEL_FAR_FUTURE + k;
		assert_int_equal(apply_cmd(f->s[0], i, c, NULL), 0);
		if (k % 16 == 0)
			turn(f);
	}
	settle(f);
	assert_int_equal(deadline_index_count(shard_deadline_index(f->s[0])), n);
	/* Everything in tables: the memtable is flushed by a restart. */
	shard_close(f->s[0]);
	f->s[0] = NULL;
	open_rep(f, 0, "ix", 0);
	assert_false(shard_deadlines_complete(f->s[0]));
	/* Whatever is left of it in the small cache goes: closed first, the
	 * shard's tables take their blocks out of the cache it was given. */
	shard_close(f->s[0]);
	f->s[0] = NULL;
	block_cache_destroy(f->cache);
	assert_int_equal(block_cache_create(&f->cache, &(struct block_cache_options){
		.capacity = 64 << 10 }), 0);
	open_rep(f, 0, "ix", 0);
	i = shard_applied_index(f->s[0]) + 1;
	assert_int_equal(shard_deadlines_rebuild_step(f->s[0], 100000, rebuild_step_done, &done),
			 0);
	assert_int_equal(done, 0); /* it waits for a block */
	for (unsigned k = 0; k < n; k++, i++) {
		struct command c;

		snprintf(key, sizeof key, "dk%05u", k);
		c = put_cmd(key, "plain");
		if (some_deadlines && k % 100 == 7) {
			c.op = COMMAND_PUT_AT;
			c.deadline = MODEL_FAR_FUTURE + 5000 + k;
		}
		assert_int_equal(apply_cmd(f->s[0], i, c, NULL), 0);
	}
	for (int j = 0; j < 100000 && !done; j++)
		turn(f);
	assert_int_equal(done, 1);
	rebuild_index(f, f->s[0], false);
	assert_int_equal(deadline_index_count(shard_deadline_index(f->s[0])),
			 some_deadlines ? n / 100 : 0);
	for (unsigned k = 7; some_deadlines && k < n; k += 100) {
		snprintf(key, sizeof key, "dk%05u", k);
		assert_int_equal(deadline_index_get(shard_deadline_index(f->s[0]), key, 7),
				 MODEL_FAR_FUTURE + 5000 + k);
	}
	/* A FLUSH empties it, complete. */
	assert_int_equal(apply_cmd(f->s[0], i, (struct command){ .op = COMMAND_FLUSH }, NULL),
			 0);
	settle(f);
	assert_true(shard_deadlines_complete(f->s[0]));
	assert_int_equal(deadline_index_count(shard_deadline_index(f->s[0])), 0);
}

static void test_index_rebuild_meets_writes(void **state)
{
	rebuild_meets_writes(*state, true);
}

static void test_index_rebuild_meets_plain_writes(void **state)
{
	rebuild_meets_writes(*state, false);
}

/*
 * INCRBY of a key held only by an SSTable whose block is not cached waits
 * for the block; the PUT of the same key right behind it waits too and
 * lands after it; reads meanwhile see the applied state.
 */
static void test_order_across_block_read(void **state)
{
	struct fixture *f = *state;
	struct ordered incr = { .x.w.done = on_done_ordered };
	struct ordered put = { .x.w.done = on_done_ordered };
	struct ordered del = { .x.w.done = on_done_ordered, .x.w.want_prior = true };
	struct block_cache_options copt = { .capacity = 64 << 10 };
	struct get_result g;
	uint64_t i = 1;
	char filler[16], value[200];

	open_rep(f, 0, "o", 0);
	assert_int_equal(apply_cmd(f->s[0], i++, put_cmd("counter", "5"), NULL), 0);
	memset(value, 'f', sizeof value - 1);
	value[sizeof value - 1] = '\0';
	while (shard_flushed_index(f->s[0]) < 1) {
		snprintf(filler, sizeof filler, "f%05u", (unsigned)i);
		assert_int_equal(apply_cmd(f->s[0], i++, put_cmd(filler, value), NULL), 0);
		turn(f);
	}
	settle(f);
	/* A cold cache: the counter's block must come from disk. */
	shard_close(f->s[0]);
	f->s[0] = NULL;
	block_cache_destroy(f->cache);
	assert_int_equal(block_cache_create(&f->cache, &copt), 0);
	open_rep(f, 0, "o", 0);
	i = shard_applied_index(f->s[0]) + 1;

	assert_int_equal(apply_cmd(f->s[0], i, incrby_cmd("counter", 1), &incr.x.w), 0);
	assert_int_equal(apply_cmd(f->s[0], i + 1, put_cmd("counter", "100"), &put.x.w), 0);
	assert_int_equal(apply_cmd(f->s[0], i + 2, put_cmd("other", "x"), NULL), 0);
	assert_int_equal(incr.x.done, 0);
	assert_int_equal(put.x.done, 0);
	assert_int_equal(shard_applied_index(f->s[0]), i - 1);
	assert_int_equal(shard_apply_pending(f->s[0], NULL), 3);
	assert_int_equal(shard_apply_last(f->s[0]), i + 2);
	assert_false(shard_idle(f->s[0]));
	/* Not applied yet: the PUT behind the read is invisible. */
	assert_int_equal(shard_test_get(f->s[0], &f->io, "other", &g), RKV_ENOTFOUND);

	settle(f);
	assert_int_equal(incr.x.done, 1);
	assert_int_equal(incr.x.rv, 0);
	assert_int_equal(incr.x.res.integer, 6);
	assert_true(incr.x.res.existed);
	assert_int_equal(put.x.done, 1);
	assert_int_equal(put.x.rv, 0);
	assert_true(incr.seq < put.seq);
	assert_int_equal(shard_applied_index(f->s[0]), i + 2);
	assert_int_equal(shard_test_get(f->s[0], &f->io, "counter", &g), 0);
	assert_int_equal(g.len, 3);
	assert_memory_equal(g.value, "100", 3);

	/* A client DELETE asks whether the key existed, and for its value. */
	assert_int_equal(apply_cmd(f->s[0], i + 3,
				   (struct command){ .op = COMMAND_DELETE,
						     .key = (const uint8_t *)"counter",
						     .key_len = 7 }, &del.x.w), 0);
	settle(f);
	assert_int_equal(del.x.done, 1);
	assert_true(del.x.res.existed);
	assert_true(del.x.res.applied);
	assert_string_equal(del.x.old, "100");
}

/*
 * Commands on cold keys queued behind one that waits for its block have
 * their blocks read meanwhile (into the cache only), yet are applied in
 * order with the values the model gives.
 */
static void test_prefetch_keeps_order(void **state)
{
	struct fixture *f = *state;
	struct ordered w[4];
	struct block_cache_options copt = { .capacity = 256 << 10 };
	struct shard_stats st;
	char key[16], value[300];
	uint64_t i = 1;

	open_rep(f, 0, "p", 0);
	memset(value, 'p', sizeof value - 1);
	value[sizeof value - 1] = '\0';
	/* Counters k000, k050, k100, k150, each in a block of its own. */
	for (unsigned j = 0; j < 200; j++) {
		snprintf(key, sizeof key, "k%03u", j);
		assert_int_equal(apply_cmd(f->s[0], i++, put_cmd(key, j % 50 ? value : "5"), NULL),
				 0);
	}
	while (shard_flushed_index(f->s[0]) < 200) {
		snprintf(key, sizeof key, "z%05u", (unsigned)i);
		assert_int_equal(apply_cmd(f->s[0], i++, put_cmd(key, value), NULL), 0);
		turn(f);
	}
	settle(f);
	shard_close(f->s[0]);
	f->s[0] = NULL;
	block_cache_destroy(f->cache);
	assert_int_equal(block_cache_create(&f->cache, &copt), 0);
	open_rep(f, 0, "p", 0);
	i = shard_applied_index(f->s[0]) + 1;
	answer_seq = 0;
	for (unsigned j = 0; j < 4; j++) {
		w[j] = (struct ordered){ .x.w.done = on_done_ordered };
		snprintf(key, sizeof key, "k%03u", j * 50);
		assert_int_equal(apply_cmd(f->s[0], i + j, incrby_cmd(key, (int64_t)j + 1), &w[j].x.w),
				 0);
	}
	/* The head's read and the three behind it are all in flight. */
	shard_get_stats(f->s[0], &st);
	assert_true(st.block_reads >= 4);
	assert_int_equal(shard_applied_index(f->s[0]), i - 1);
	settle(f);
	for (unsigned j = 0; j < 4; j++) {
		assert_int_equal(w[j].x.done, 1);
		assert_int_equal(w[j].x.rv, 0);
		assert_int_equal(w[j].x.res.integer, 5 + (int64_t)j + 1);
		assert_int_equal(w[j].seq, j + 1);
	}
}

/*
 * Flushes that lag: with the ring not turning, the first full memtable is
 * sealed, the second fills, entries queue up to the limit and shard_apply
 * refuses; once the flush is done the queue drains, on_apply_ready says
 * so, and the rest goes in.
 */
static void test_backpressure_while_flush_lags(void **state)
{
	struct fixture *f = *state;
	struct shard_stats st;
	uint64_t i;
	size_t bytes;
	int rv = 0;

	make_entries(0xabcdefull);
	open_rep(f, 0, "bp", 4096);
	for (i = 1; i <= NENTRIES; i++) {
		rv = apply_entry(f->s[0], i, NULL);
		if (rv == RKV_EAGAIN)
			break;
		assert_int_equal(rv, 0);
	}
	assert_int_equal(rv, RKV_EAGAIN);
	assert_true(i > 300); /* a whole memtable went in first */
	assert_true(shard_apply_pending(f->s[0], &bytes) > 0);
	assert_true(bytes > 4096 / 2 && bytes <= 4096);
	assert_int_equal(shard_apply_last(f->s[0]), i - 1);
	assert_true(shard_applied_index(f->s[0]) < i - 1);
	assert_int_equal(f->hooks[0].ready, 0);
	assert_int_equal(f->hooks[0].nflushed, 0);
	/* Refused again: nothing taken. */
	assert_int_equal(apply_entry(f->s[0], i, NULL), RKV_EAGAIN);
	shard_get_stats(f->s[0], &st);
	assert_true(st.stalls >= 1);

	for (int n = 0; n < 100000 && f->hooks[0].ready == 0; n++)
		turn(f);
	assert_int_equal(f->hooks[0].ready, 1);
	assert_true(f->hooks[0].nflushed >= 1);
	apply_range(f, f->s[0], i, NENTRIES, 0);
	settle(f);
	assert_int_equal(shard_applied_index(f->s[0]), NENTRIES);
	check_model(f, f->s[0]);
}

/*
 * Bytes that do not decode are skipped by every shard alike, advancing the
 * applied index like a NOOP; an entry larger than a memtable still
 * applies; indexes must follow on; shard_write is refused.
 */
static void test_corrupt_noop_and_large_entries(void **state)
{
	struct fixture *f = *state;
	static const uint8_t garbage[] = { 0x7f, 1, 2, 3, 4, 5 };
	static uint8_t big[100 << 10];
	struct waiter wg = { .w.done = on_done }, wt = { .w.done = on_done };
	struct waiter wn = { .w.done = on_done }, wb = { .w.done = on_done };
	struct waiter ww = { .w.done = on_done };
	struct command c = put_cmd("t", "truncated");
	uint8_t trunc[64];
	size_t tlen = command_encode(&c, trunc) - 2;

	memset(big, 'b', sizeof big);
	for (int k = 0; k < 2; k++) {
		struct shard *s = open_rep(f, k, k ? "c1" : "c0", 0);
		struct command bc = { .op = COMMAND_PUT, .key = (const uint8_t *)"big",
				      .key_len = 3, .value = big, .value_len = sizeof big };
		uint8_t *enc = malloc(command_encoded_size(&bc));
		struct shard_stats st;
		struct get_result g;

		assert_non_null(enc);
		assert_int_equal(apply_cmd(s, 1, put_cmd("a", "1"), NULL), 0);
		wg.done = wt.done = wn.done = wb.done = ww.done = 0;
		assert_int_equal(shard_apply(s, 2, SHARD_ENTRY_COMMAND, garbage, sizeof garbage,
					     &wg.w), 0);
		assert_int_equal(shard_apply(s, 3, SHARD_ENTRY_COMMAND, trunc, tlen, &wt.w), 0);
		assert_int_equal(shard_apply(s, 4, SHARD_ENTRY_COMMAND, NULL, 0, NULL), 0);
		assert_int_equal(shard_apply(s, 5, SHARD_ENTRY_NOOP, NULL, 0, &wn.w), 0);
		assert_int_equal(shard_apply_skip(s, 6), 0);
		assert_int_equal(wg.done, 1);
		assert_int_equal(wg.rv, RKV_ECORRUPT);
		assert_int_equal(wt.rv, RKV_ECORRUPT);
		assert_int_equal(wn.done, 1);
		assert_int_equal(wn.rv, 0);
		assert_int_equal(shard_applied_index(s), 6);
		shard_get_stats(s, &st);
		assert_int_equal(st.apply_errors, 3);
		/* Gaps and other types are the caller's bug: nothing taken. */
		assert_int_equal(shard_apply_skip(s, 8), RKV_EINVAL);
		assert_int_equal(shard_apply(s, 7, (enum shard_entry_type)9, NULL, 0, NULL),
				 RKV_EINVAL);
		assert_int_equal(shard_write(s, &c, &ww.w), RKV_EINVAL);
		assert_int_equal(ww.done, 0);
		/* Larger than a whole memtable: applied all the same. */
		assert_int_equal(shard_apply(s, 7, SHARD_ENTRY_COMMAND, enc,
					     command_encode(&bc, enc), &wb.w), 0);
		free(enc);
		assert_int_equal(apply_cmd(s, 8, put_cmd("z", "26"), NULL), 0);
		settle(f);
		assert_int_equal(wb.done, 1);
		assert_int_equal(wb.rv, 0);
		assert_int_equal(shard_applied_index(s), 8);
		assert_int_equal(shard_test_get(s, &f->io, "a", &g), 0);
		assert_int_equal(shard_test_get(s, &f->io, "z", &g), 0);
		assert_int_equal(shard_test_get(s, &f->io, "t", &g), RKV_ENOTFOUND);
		assert_int_equal(shard_test_get(s, &f->io, "big", &g), 0);
		assert_int_equal(g.len, sizeof big);
	}
}

/*
 * A current value that cannot be read (a damaged block) stops apply for
 * good: the entry and those behind it are answered with the error, later
 * entries are refused, the applied index stays before it.
 */
static void test_damaged_block_stops_apply(void **state)
{
	struct fixture *f = *state;
	struct waiter wi = { .w.done = on_done }, wp = { .w.done = on_done };
	struct block_cache_options copt = { .capacity = 64 << 10 };
	char dir[128], fill[16], value[200];
	struct get_result g;
	struct dirent *de;
	uint64_t i = 1;
	DIR *d;

	open_rep(f, 0, "d", 0);
	assert_int_equal(apply_cmd(f->s[0], i++, put_cmd("a0", "7"), NULL), 0);
	memset(value, 'f', sizeof value - 1);
	value[sizeof value - 1] = '\0';
	while (shard_flushed_index(f->s[0]) < 1) {
		snprintf(fill, sizeof fill, "f%05u", (unsigned)i);
		assert_int_equal(apply_cmd(f->s[0], i++, put_cmd(fill, value), NULL), 0);
		turn(f);
	}
	settle(f);
	shard_close(f->s[0]);
	f->s[0] = NULL;
	block_cache_destroy(f->cache);
	assert_int_equal(block_cache_create(&f->cache, &copt), 0);
	/* The first data block of every table: where "a0" lives. */
	snprintf(dir, sizeof dir, "%s/d", f->dir);
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char path[512];
		uint8_t b;
		int fd;

		if (!strstr(de->d_name, ".sst"))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		fd = open(path, O_RDWR);
		assert_true(fd >= 0);
		assert_int_equal(pread(fd, &b, 1, 10), 1);
		b ^= 0x40;
		assert_int_equal(pwrite(fd, &b, 1, 10), 1);
		close(fd);
	}
	closedir(d);
	open_rep(f, 0, "d", 0);
	i = shard_applied_index(f->s[0]) + 1;
	assert_int_equal(apply_cmd(f->s[0], i, incrby_cmd("a0", 1), &wi.w), 0);
	assert_int_equal(apply_cmd(f->s[0], i + 1, put_cmd("b", "x"), &wp.w), 0);
	for (int n = 0; n < 10000 && !(wi.done && wp.done); n++)
		turn(f);
	assert_int_equal(wi.done, 1);
	assert_int_equal(wi.rv, RKV_ECORRUPT);
	assert_int_equal(wp.done, 1);
	assert_int_equal(wp.rv, RKV_ECORRUPT);
	assert_int_equal(shard_apply_error(f->s[0]), RKV_ECORRUPT);
	assert_int_equal(shard_applied_index(f->s[0]), i - 1);
	assert_int_equal(apply_cmd(f->s[0], i + 2, put_cmd("c", "y"), NULL), RKV_ECORRUPT);
	assert_int_equal(shard_apply_pending(f->s[0], NULL), 0);
	assert_true(shard_idle(f->s[0]));
	assert_int_equal(shard_test_get(f->s[0], &f->io, "b", &g), RKV_ENOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_two_paces_same_state, apply_fixture_setup,
						apply_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_restart_replays_above_flushed_index, apply_fixture_setup,
						apply_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_order_across_block_read, apply_fixture_setup,
						apply_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_prefetch_keeps_order, apply_fixture_setup,
						apply_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_backpressure_while_flush_lags, apply_fixture_setup,
						apply_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_noop_and_large_entries, apply_fixture_setup,
						apply_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_damaged_block_stops_apply, apply_fixture_setup,
						apply_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_index_rebuild_meets_writes, apply_fixture_setup,
						apply_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_index_rebuild_meets_plain_writes, apply_fixture_setup,
						apply_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
