/*
 * shard/shard.c on a real io_uring ring: group commit, visibility only after
 * durability, recovery on reopen, the memtable-full answer, and the batching
 * itself (many writes queued in one iteration share one write + fdatasync).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/errors.h"
#include "io/ring.h"
#include "shard/shard.h"

struct waiter {
	struct shard_waiter w;
	int rv;
	int done;
};

static void on_done(struct shard_waiter *w, int rv)
{
	struct waiter *x = (struct waiter *)w;

	x->rv = rv;
	x->done++;
}

struct fixture {
	char dir[64];
	struct io_ring io;
	struct shard *s;
};

static void open_shard(struct fixture *f, uint64_t memtable)
{
	struct shard_config cfg = { .id = 7, .dir = f->dir, .memtable_size = memtable };
	char err[512];
	int rv = shard_open(&f->s, &cfg, &f->io, err, sizeof err);

	if (rv)
		fail_msg("shard_open: %s", err);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[256];

	strcpy(f->dir, "/tmp/ringkv-shard-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(io_ring_init(&f->io, 256, err, sizeof err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	shard_close(f->s);
	io_ring_exit(&f->io);
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Runs the ring until the shard has nothing in flight. */
static void settle(struct fixture *f)
{
	for (int i = 0; i < 10000 && !shard_idle(f->s); i++) {
		shard_flush(f->s);
		assert_int_equal(io_ring_submit_wait(&f->io, 100000), 0);
		io_ring_dispatch(&f->io);
	}
	assert_true(shard_idle(f->s));
}

static struct command put_cmd(const char *k, const char *v)
{
	return (struct command){ .op = COMMAND_PUT, .key = (const uint8_t *)k,
				 .key_len = (uint32_t)strlen(k), .value = (const uint8_t *)v,
				 .value_len = (uint32_t)strlen(v) };
}

static void check_value(struct shard *s, const char *k, const char *v)
{
	const void *got;
	size_t len;

	assert_int_equal(shard_get(s, k, strlen(k), &got, &len), 0);
	assert_int_equal(len, strlen(v));
	assert_memory_equal(got, v, len);
}

static void test_write_visible_only_when_durable(void **state)
{
	struct fixture *f = *state;
	struct waiter w = { .w.done = on_done };
	struct command c = put_cmd("alpha", "one");
	const void *got;
	size_t len;

	open_shard(f, 1 << 20);
	assert_int_equal(shard_write(f->s, &c, &w.w), 0);
	/* Queued, not durable: neither visible nor answered. */
	assert_int_equal(shard_get(f->s, "alpha", 5, &got, &len), RKV_ENOTFOUND);
	assert_int_equal(w.done, 0);
	settle(f);
	assert_int_equal(w.done, 1);
	assert_int_equal(w.rv, 0);
	check_value(f->s, "alpha", "one");
}

static void test_group_commit_batches_one_iteration(void **state)
{
	struct fixture *f = *state;
	struct waiter w[100];
	struct shard_stats st;
	char key[16];

	open_shard(f, 1 << 20);
	for (int i = 0; i < 100; i++) {
		struct command c;

		snprintf(key, sizeof key, "k%03d", i);
		c = put_cmd(key, "v");
		w[i] = (struct waiter){ .w.done = on_done };
		assert_int_equal(shard_write(f->s, &c, &w[i].w), 0);
	}
	settle(f);
	shard_get_stats(f->s, &st);
	assert_int_equal(st.writes, 100);
	assert_int_equal(st.batches, 1); /* one write + one fdatasync for all */
	for (int i = 0; i < 100; i++)
		assert_int_equal(w[i].done, 1);
}

static void test_recovery_after_reopen(void **state)
{
	struct fixture *f = *state;
	struct waiter w[3] = { { .w.done = on_done }, { .w.done = on_done },
			       { .w.done = on_done } };
	struct command c1 = put_cmd("a", "1"), c2 = put_cmd("b", "2");
	struct command del = { .op = COMMAND_DELETE, .key = (const uint8_t *)"a", .key_len = 1 };
	struct shard_stats st;
	const void *got;
	size_t len;

	open_shard(f, 1 << 20);
	assert_int_equal(shard_write(f->s, &c1, &w[0].w), 0);
	assert_int_equal(shard_write(f->s, &c2, &w[1].w), 0);
	settle(f);
	assert_int_equal(shard_write(f->s, &del, &w[2].w), 0);
	settle(f);
	shard_close(f->s);
	f->s = NULL;

	open_shard(f, 1 << 20);
	shard_get_stats(f->s, &st);
	assert_int_equal(st.replayed, 3);
	assert_int_equal(shard_get(f->s, "a", 1, &got, &len), RKV_ENOTFOUND);
	check_value(f->s, "b", "2");
	/* New writes continue the index sequence after the replayed ones. */
	w[0].done = 0;
	assert_int_equal(shard_write(f->s, &c1, &w[0].w), 0);
	settle(f);
	assert_int_equal(w[0].rv, 0);
	shard_close(f->s);
	f->s = NULL;
	open_shard(f, 1 << 20);
	check_value(f->s, "a", "1");
}

static void test_memtable_full_refuses_without_queueing(void **state)
{
	struct fixture *f = *state;
	static struct waiter w[4096];
	static char value[1000];
	unsigned accepted = 0;
	int rv = 0;

	memset(value, 'x', sizeof value - 1);
	open_shard(f, 64 << 10);
	for (unsigned i = 0; i < 4096; i++) {
		char key[16];
		struct command c;

		snprintf(key, sizeof key, "f%u", i);
		c = put_cmd(key, value);
		w[i] = (struct waiter){ .w.done = on_done };
		rv = shard_write(f->s, &c, &w[i].w);
		if (rv)
			break;
		accepted++;
	}
	assert_int_equal(rv, RKV_EFULL);
	assert_true(accepted > 10);
	/* Every accepted write still lands: the reservation was exact enough. */
	settle(f);
	for (unsigned i = 0; i < accepted; i++) {
		assert_int_equal(w[i].done, 1);
		assert_int_equal(w[i].rv, 0);
	}
	assert_int_equal(w[accepted].done, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_visible_only_when_durable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit_batches_one_iteration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovery_after_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memtable_full_refuses_without_queueing, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
