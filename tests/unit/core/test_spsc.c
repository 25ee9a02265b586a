/*
 * Tests for core/spsc.c: single-thread semantics of staging, publishing,
 * full and empty rings and index wraparound, then a two-thread stress run
 * that checks every message arrives exactly once and in order.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/spsc.h"

#define MSG(n) ((void *)(uintptr_t)(n))
#define NUM(p) ((uintptr_t)(p))

static void test_init_rejects_bad_capacity(void **state)
{
	struct spsc_ring r;

	assert_int_equal(spsc_init(&r, 0), -EINVAL);
	assert_int_equal(spsc_init(&r, 1), -EINVAL);
	assert_int_equal(spsc_init(&r, 3), -EINVAL);
	assert_int_equal(spsc_init(&r, 6), -EINVAL);
	assert_int_equal(spsc_init(&r, 0xffffffffu), -EINVAL);
	assert_int_equal(spsc_init(&r, 2), 0);
	spsc_destroy(&r);
}

static void test_layout_separates_sides(void **state)
{
	/* head, tail and each side's private state on lines of their own. */
	assert_int_equal(offsetof(struct spsc_ring, head) / SPSC_CACHE_LINE, 0);
	assert_int_equal(offsetof(struct spsc_ring, tail) / SPSC_CACHE_LINE, 1);
	assert_int_equal(offsetof(struct spsc_ring, tail_cache) / SPSC_CACHE_LINE, 2);
	assert_int_equal(offsetof(struct spsc_ring, consumer_slots) / SPSC_CACHE_LINE, 2);
	assert_int_equal(offsetof(struct spsc_ring, staged) / SPSC_CACHE_LINE, 3);
	assert_int_equal(offsetof(struct spsc_ring, slots) / SPSC_CACHE_LINE, 3);
}

static void test_empty(void **state)
{
	struct spsc_ring r;
	void *out[4];

	assert_int_equal(spsc_init(&r, 8), 0);
	assert_true(spsc_empty(&r));
	assert_int_equal(spsc_free(&r), 8);
	assert_int_equal(spsc_pop_batch(&r, out, 4), 0);
	spsc_publish(&r); /* publishing nothing is harmless */
	assert_true(spsc_empty(&r));
	assert_int_equal(spsc_pop_batch(&r, out, 4), 0);
	spsc_destroy(&r);
}

static void test_full_rejects_push(void **state)
{
	struct spsc_ring r;
	void *out[8];

	assert_int_equal(spsc_init(&r, 8), 0);
	for (uintptr_t i = 0; i < 8; i++) {
		assert_int_equal(spsc_free(&r), 8 - i);
		assert_true(spsc_push(&r, MSG(i)));
	}
	/* Staged messages count as used even before publish. */
	assert_int_equal(spsc_free(&r), 0);
	assert_false(spsc_push(&r, MSG(99)));
	spsc_publish(&r);
	assert_false(spsc_push(&r, MSG(99)));

	assert_int_equal(spsc_pop_batch(&r, out, 1), 1);
	assert_int_equal(NUM(out[0]), 0);
	assert_int_equal(spsc_free(&r), 1);
	assert_true(spsc_push(&r, MSG(8)));
	assert_false(spsc_push(&r, MSG(99)));
	spsc_publish(&r);

	assert_int_equal(spsc_pop_batch(&r, out, 8), 8);
	for (uintptr_t i = 0; i < 8; i++)
		assert_int_equal(NUM(out[i]), i + 1);
	assert_true(spsc_empty(&r));
	spsc_destroy(&r);
}

static void test_staged_invisible_until_publish(void **state)
{
	struct spsc_ring r;
	void *out[8];

	assert_int_equal(spsc_init(&r, 8), 0);
	assert_true(spsc_push(&r, MSG(1)));
	assert_true(spsc_push(&r, MSG(2)));
	assert_true(spsc_empty(&r));
	assert_int_equal(spsc_pop_batch(&r, out, 8), 0);

	spsc_publish(&r);
	assert_true(spsc_push(&r, MSG(3))); /* staged after the publish */
	assert_false(spsc_empty(&r));
	assert_int_equal(spsc_pop_batch(&r, out, 8), 2);
	assert_int_equal(NUM(out[0]), 1);
	assert_int_equal(NUM(out[1]), 2);
	assert_true(spsc_empty(&r));
	assert_int_equal(spsc_pop_batch(&r, out, 8), 0);

	spsc_publish(&r);
	assert_int_equal(spsc_pop_batch(&r, out, 8), 1);
	assert_int_equal(NUM(out[0]), 3);
	spsc_destroy(&r);
}

static void test_null_message(void **state)
{
	struct spsc_ring r;
	void *out[2] = {MSG(1), MSG(1)};

	assert_int_equal(spsc_init(&r, 2), 0);
	assert_true(spsc_push(&r, NULL));
	spsc_publish(&r);
	assert_int_equal(spsc_pop_batch(&r, out, 2), 1);
	assert_null(out[0]);
	spsc_destroy(&r);
}

static void test_pop_batch_max(void **state)
{
	struct spsc_ring r;
	void *out[16];

	assert_int_equal(spsc_init(&r, 16), 0);
	for (uintptr_t i = 0; i < 10; i++)
		assert_true(spsc_push(&r, MSG(i)));
	spsc_publish(&r);

	assert_int_equal(spsc_pop_batch(&r, out, 0), 0);
	out[4] = MSG(777);
	assert_int_equal(spsc_pop_batch(&r, out, 4), 4);
	for (uintptr_t i = 0; i < 4; i++)
		assert_int_equal(NUM(out[i]), i);
	assert_int_equal(NUM(out[4]), 777); /* nothing written past max */

	/* Messages published after the consumer cached the tail are still seen. */
	for (uintptr_t i = 10; i < 13; i++)
		assert_true(spsc_push(&r, MSG(i)));
	spsc_publish(&r);
	assert_int_equal(spsc_pop_batch(&r, out, 16), 9);
	for (uintptr_t i = 0; i < 9; i++)
		assert_int_equal(NUM(out[i]), i + 4);
	assert_int_equal(spsc_pop_batch(&r, out, 16), 0);
	spsc_destroy(&r);
}

/* Pushes and pops in batches of every size, so the slot index wraps often. */
static void test_slot_wraparound(void **state)
{
	struct spsc_ring r;
	void *out[4];
	uintptr_t next_in = 0, next_out = 0;

	assert_int_equal(spsc_init(&r, 4), 0);
	for (int round = 0; round < 1000; round++) {
		uint32_t k = (uint32_t)(round % 4) + 1;

		for (uint32_t i = 0; i < k; i++)
			assert_true(spsc_push(&r, MSG(next_in++)));
		spsc_publish(&r);
		while (next_out < next_in) {
			uint32_t n = spsc_pop_batch(&r, out, (uint32_t)(round % 3) + 1);

			assert_true(n > 0);
			for (uint32_t i = 0; i < n; i++)
				assert_int_equal(NUM(out[i]), next_out++);
		}
	}
	assert_true(spsc_empty(&r));
	spsc_destroy(&r);
}

/* The free-running uint32_t indexes overflow; full and empty stay right. */
static void test_index_wraparound(void **state)
{
	struct spsc_ring r;
	const uint32_t start = UINT32_MAX - 5;
	void *out[8];

	assert_int_equal(spsc_init(&r, 8), 0);
	atomic_store(&r.head, start);
	atomic_store(&r.tail, start);
	r.staged = r.head_cache = r.tail_cache = start;

	for (uintptr_t i = 0; i < 8; i++)
		assert_true(spsc_push(&r, MSG(i)));
	assert_false(spsc_push(&r, MSG(99)));
	spsc_publish(&r);
	assert_int_equal(spsc_free(&r), 0);
	assert_int_equal(spsc_pop_batch(&r, out, 8), 8);
	for (uintptr_t i = 0; i < 8; i++)
		assert_int_equal(NUM(out[i]), i);
	assert_true(spsc_empty(&r));
	assert_int_equal(spsc_free(&r), 8);
	assert_int_equal(atomic_load(&r.head), (uint32_t)(start + 8));
	spsc_destroy(&r);
}

/* --- two-thread stress --- */

#define STRESS_MESSAGES 5000000u
#define STRESS_CAPACITY 1024u
#define STRESS_MAX_PUSH 64u
#define STRESS_MAX_POP 128u

struct stress {
	struct spsc_ring ring;
	atomic_bool stop;        /* consumer found an error; producer gives up */
	uint64_t consumer_error; /* 0, or 1 + the position of the first bad message */
	uintptr_t bad_value;     /* what arrived there */
	uint64_t received;
	uint64_t full_waits;
	uint64_t empty_waits;
};

static uint32_t xorshift(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

static void *stress_producer(void *arg)
{
	struct stress *st = arg;
	uint32_t rng = 0x9e3779b9u;
	uintptr_t next = 1; /* 0 would read as "nothing written" */

	while (next <= STRESS_MESSAGES) {
		uint32_t batch = xorshift(&rng) % STRESS_MAX_PUSH + 1;

		for (uint32_t i = 0; i < batch && next <= STRESS_MESSAGES; i++) {
			while (!spsc_push(&st->ring, MSG(next))) {
				spsc_publish(&st->ring);
				if (atomic_load_explicit(&st->stop, memory_order_relaxed))
					return NULL;
				st->full_waits++;
				sched_yield();
			}
			next++;
		}
		spsc_publish(&st->ring);
	}
	return NULL;
}

static void *stress_consumer(void *arg)
{
	struct stress *st = arg;
	uint32_t rng = 0x85ebca6bu;
	uintptr_t expect = 1;
	void *out[STRESS_MAX_POP];

	while (expect <= STRESS_MESSAGES) {
		uint32_t max = xorshift(&rng) % STRESS_MAX_POP + 1;
		uint32_t n = spsc_pop_batch(&st->ring, out, max);

		if (n > max) {
			st->consumer_error = expect;
			st->bad_value = n;
			break;
		}
		if (n == 0) {
			st->empty_waits++;
			sched_yield();
			continue;
		}
		for (uint32_t i = 0; i < n; i++, expect++) {
			if (NUM(out[i]) != expect) {
				st->consumer_error = expect;
				st->bad_value = NUM(out[i]);
				goto out;
			}
		}
	}
out:
	st->received = expect - 1;
	if (st->consumer_error != 0)
		atomic_store(&st->stop, true);
	return NULL;
}

static void test_two_thread_stress(void **state)
{
	struct stress *st = calloc(1, sizeof(*st));
	pthread_t producer, consumer;

	assert_non_null(st);
	assert_int_equal(spsc_init(&st->ring, STRESS_CAPACITY), 0);
	atomic_init(&st->stop, false);
	assert_int_equal(pthread_create(&consumer, NULL, stress_consumer, st), 0);
	assert_int_equal(pthread_create(&producer, NULL, stress_producer, st), 0);
	assert_int_equal(pthread_join(producer, NULL), 0);
	assert_int_equal(pthread_join(consumer, NULL), 0);

	if (st->consumer_error != 0)
		fail_msg("message %llu arrived as %llu",
			 (unsigned long long)st->consumer_error,
			 (unsigned long long)st->bad_value);
	assert_int_equal(st->received, STRESS_MESSAGES);
	assert_true(spsc_empty(&st->ring));
	printf("# stress: %u messages, %llu full waits, %llu empty waits\n",
	       STRESS_MESSAGES, (unsigned long long)st->full_waits,
	       (unsigned long long)st->empty_waits);
	spsc_destroy(&st->ring);
	free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_rejects_bad_capacity),
		cmocka_unit_test(test_layout_separates_sides),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_full_rejects_push),
		cmocka_unit_test(test_staged_invisible_until_publish),
		cmocka_unit_test(test_null_message),
		cmocka_unit_test(test_pop_batch_max),
		cmocka_unit_test(test_slot_wraparound),
		cmocka_unit_test(test_index_wraparound),
		cmocka_unit_test(test_two_thread_stress),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
