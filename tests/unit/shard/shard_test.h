/*
 * Helpers shared by the shard tests that drive a real shard on a real ring
 * (test_shard.c, test_lsm.c): a waiter that records its answer, and a PUT
 * command from C strings. Include after <cmocka.h>.
 */
#ifndef RINGKV_TESTS_SHARD_TEST_H
#define RINGKV_TESTS_SHARD_TEST_H

#include <string.h>

#include "io/ring.h"
#include "shard/shard.h"

struct waiter {
	struct shard_waiter w;
	int rv;
	int done;
	struct shard_result res;
	char old[64];     /* the previous value, when asked for and short */
};

static inline void on_done(struct shard_waiter *w, int rv, const struct shard_result *res)
{
	struct waiter *x = (struct waiter *)w;

	x->rv = rv;
	x->done++;
	if (res) {
		x->res = *res;
		x->old[0] = '\0';
		if (res->old_value && res->old_len < sizeof x->old) {
			memcpy(x->old, res->old_value, res->old_len);
			x->old[res->old_len] = '\0';
		}
	}
}

static inline struct command put_cmd(const char *k, const char *v)
{
	return (struct command){ .op = COMMAND_PUT, .key = (const uint8_t *)k,
				 .key_len = (uint32_t)strlen(k), .value = (const uint8_t *)v,
				 .value_len = (uint32_t)strlen(v) };
}

/* The answer of a read; the value's first bytes in `value`. */
struct get_result {
	struct shard_read rd;
	int done;
	int rv;
	char value[256];
	size_t len;
};

static inline void get_done(struct shard_read *rd, int rv, const void *value, size_t len)
{
	struct get_result *g = rd->arg;

	g->done++;
	g->rv = rv;
	g->len = len;
	if (rv == 0)
		memcpy(g->value, value, len < sizeof g->value ? len : sizeof g->value);
}

/* A get through the asynchronous path (memtables, then tables), driving
 * `io` until it is answered. */
static inline int shard_test_get(struct shard *s, struct io_ring *io, const char *key,
				 struct get_result *g)
{
	const void *value;
	size_t len;
	int rv;

	memset(g, 0, sizeof *g);
	g->rd.done = get_done;
	g->rd.arg = g;
	rv = shard_read(s, key, strlen(key), &g->rd, &value, &len);
	if (rv != SHARD_READ_PENDING) {
		if (rv == 0)
			get_done(&g->rd, 0, value, len);
		g->done = 0;
		g->rv = rv;
		return rv;
	}
	for (int i = 0; i < 10000 && !g->done; i++) {
		assert_int_equal(io_ring_submit_wait(io, 100000), 0);
		io_ring_dispatch(io);
	}
	assert_int_equal(g->done, 1);
	return g->rv;
}

/* One loop pass of a shard on its ring. */
static inline void shard_test_turn(struct shard *s, struct io_ring *io)
{
	shard_flush(s);
	assert_int_equal(io_ring_submit_wait(io, 1000), 0);
	io_ring_dispatch(io);
}

/* Loop passes until the shard has nothing in flight, nor background work. */
static inline void shard_test_settle(struct shard *s, struct io_ring *io)
{
	for (int i = 0; i < 200000; i++) {
		if (shard_idle(s) && shard_background_idle(s))
			return;
		shard_test_turn(s, io);
	}
	fail_msg("the shard did not settle");
}

#endif
