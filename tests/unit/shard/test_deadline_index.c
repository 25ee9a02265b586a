/*
 * The deadline index (shard/deadline_index.c) against a plain array
 * model: random sets, changes and removals of many keys (lengths up to
 * past the pooled sizes, empty key included), the deadline of every key,
 * the count, which keys are due at several times and how many, a bounded
 * visit, the earliest deadline, clear and reuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shard/deadline_index.h"
#include "shard/route.h"

#define NK 3000

static uint64_t model[NK];
static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Key k: a length that depends on k (0 for k 0, some past 512 bytes). */
static size_t key_of(unsigned k, uint8_t *out)
{
	size_t len = k == 0 ? 0 : (k % 97 == 0 ? 600 + k % 50 : 2 + k % 40);

	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(k * 31 + i * 7 + (i ? 0 : k >> 8));
	if (len >= 2) {
		out[0] = (uint8_t)k;
		out[1] = (uint8_t)(k >> 8);
	}
	return len;
}

struct visit {
	unsigned seen;
	bool bad;
	uint64_t now;
	unsigned char hit[NK];
};

static void visit_fn(void *arg, const void *key, size_t len, uint64_t deadline)
{
	struct visit *v = arg;
	uint8_t buf[700];
	unsigned k;

	v->seen++;
	if (!(v->now > deadline))
		v->bad = true;
	for (k = 0; k < NK; k++)
		if (key_of(k, buf) == len && !memcmp(buf, key, len))
			break;
	if (k == NK || model[k] != deadline || v->hit[k]++)
		v->bad = true;
}

static void check(struct deadline_index *x)
{
	uint8_t buf[700];
	size_t count = 0;
	uint64_t first = 0;

	for (unsigned k = 0; k < NK; k++) {
		size_t len = key_of(k, buf);

		assert_int_equal(deadline_index_get(x, buf, len), model[k]);
		if (model[k]) {
			count++;
			if (!first || model[k] < first)
				first = model[k];
		}
	}
	assert_int_equal(deadline_index_count(x), count);
	assert_int_equal(deadline_index_first(x), first);
	for (int t = 0; t < 4; t++) {
		uint64_t now = t == 0 ? 0 : (t == 3 ? UINT64_MAX : 1 + rnd() % 2000);
		size_t due = 0;
		struct visit v = { .now = now };

		for (unsigned k = 0; k < NK; k++)
			due += model[k] && now > model[k];
		assert_int_equal(deadline_index_due_count(x, now), due);
		assert_int_equal(deadline_index_due(x, now, SIZE_MAX, visit_fn, &v), due);
		assert_false(v.bad);
		assert_int_equal(v.seen, due);
		memset(&v, 0, sizeof v);
		v.now = now;
		assert_int_equal(deadline_index_due(x, now, 5, visit_fn, &v), due < 5 ? due : 5);
		assert_false(v.bad);
	}
}

static void test_model(void **state)
{
	struct deadline_index x = { 0 };
	uint8_t buf[700];

	(void)state;
	check(&x);
	for (int round = 0; round < 40; round++) {
		for (int i = 0; i < 2000; i++) {
			unsigned k = (unsigned)(rnd() % NK);
			size_t len = key_of(k, buf);
			/* 0 a third of the time: removal (or nothing). Many equal
			 * deadlines, so ties are exercised. */
			uint64_t d = rnd() % 3 == 0 ? 0 : 1 + rnd() % 2000;

			assert_int_equal(deadline_index_set(&x, buf, len, d), 0);
			model[k] = d;
		}
		check(&x);
		if (round == 20) {
			deadline_index_clear(&x);
			memset(model, 0, sizeof model);
			check(&x);
		}
	}
	assert_true(deadline_index_memory(&x) > 0);
	assert_false(x.failed);
	deadline_index_destroy(&x);
	memset(model, 0, sizeof model);
	check(&x);
	deadline_index_destroy(&x);
}

/* A write with no deadline to an empty index hashes nothing and adds
 * nothing, but still counts as a change (a rebuild step relies on it). */
static void test_plain_writes(void **state)
{
	struct deadline_index x = { 0 };
	uint64_t seq = x.seq;

	(void)state;
	assert_int_equal(deadline_index_set(&x, "k", 1, 0), 0);
	assert_int_equal(deadline_index_count(&x), 0);
	assert_true(x.seq > seq);
	assert_null(x.table);
	assert_int_equal(deadline_index_set(&x, "k", 1, 7), 0);
	assert_int_equal(deadline_index_get(&x, "k", 1), 7);
	assert_int_equal(deadline_index_set(&x, "k", 1, 0), 0);
	assert_int_equal(deadline_index_get(&x, "k", 1), 0);
	assert_int_equal(deadline_index_count(&x), 0);
	deadline_index_destroy(&x);
}

/*
 * The keys of one shard share their slot's range, that is the range of
 * XXH3_64bits(key) % 16384 (shard/route.c): the table's homes must not
 * come from those bits. 20,000 keys of shard 0 of 16 (slots 0-1023),
 * inserted, then half removed: the longest run of the table (what the
 * longest probe walks) stays short. Homes from the slot's hash bits put
 * them in a sixteenth of the table, in runs of thousands.
 */
static void test_one_shard_keys(void **state)
{
	struct deadline_index x = { 0 };
	char key[32];
	unsigned have = 0;

	(void)state;
	for (unsigned i = 0; have < 20000; i++) {
		int len = snprintf(key, sizeof key, "exp:%u", i);

		if (route_shard(route_slot(key, (size_t)len), 16) != 0)
			continue;
		assert_int_equal(deadline_index_set(&x, key, (size_t)len, 1000 + i % 13), 0);
		have++;
	}
	assert_int_equal(deadline_index_count(&x), 20000);
	assert_true(deadline_index_longest_run(&x) < 300);
	have = 0;
	for (unsigned i = 0; have < 10000; i++) {
		int len = snprintf(key, sizeof key, "exp:%u", i);

		if (route_shard(route_slot(key, (size_t)len), 16) != 0)
			continue;
		assert_int_equal(deadline_index_set(&x, key, (size_t)len, 0), 0);
		have++;
	}
	assert_int_equal(deadline_index_count(&x), 10000);
	assert_true(deadline_index_longest_run(&x) < 300);
	deadline_index_destroy(&x);
}

/* The longest run counts a run that wraps from the table's end to its
 * start as one. */
static void test_longest_run_wraps(void **state)
{
	struct deadline_index x = { 0 };

	(void)state;
	assert_int_equal(deadline_index_longest_run(&x), 0);
	assert_int_equal(deadline_index_set(&x, "a", 1, 5), 0);
	assert_true(x.table_cap >= 4);
	assert_int_equal(deadline_index_longest_run(&x), 1);
	/* Move the one entry to the last slot, and make it look like the
	 * first two slots continue its run. */
	for (size_t i = 0; i < x.table_cap; i++) {
		if (x.table[i] && i != x.table_cap - 1) {
			x.table[x.table_cap - 1] = x.table[i];
			x.table[i] = NULL;
		}
	}
	x.table[0] = x.table[1] = x.table[x.table_cap - 1];
	assert_int_equal(deadline_index_longest_run(&x), 3);
	x.table[0] = x.table[1] = NULL;
	deadline_index_destroy(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model),
		cmocka_unit_test(test_plain_writes),
		cmocka_unit_test(test_one_shard_keys),
		cmocka_unit_test(test_longest_run_wraps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
