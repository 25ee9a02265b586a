/*
 * Tests of the linearizability checker: textbook histories that must pass
 * and must fail, the explanation of a failure, the text form, the budget,
 * random linearizable histories (simulated on a sequential register with
 * intervals around each linearization point) that must pass and the same
 * histories with one read made stale that must fail, and the speed on a
 * few thousand operations.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "lincheck.h"

/* Builds a history from text lines (history.h's form), NULL-terminated. */
static void build(struct lc_history *h, const char *const *lines)
{
	char err[200];

	lc_history_init(h);
	for (; *lines; lines++) {
		int rv = lc_history_parse_line(h, *lines, err, sizeof err);

		if (rv)
			fail_msg("'%s': %s", *lines, err);
	}
}

static int verdict_of(const char *const *lines)
{
	struct lc_history h;
	struct lc_budget b;
	struct lc_result r;
	int v;

	build(&h, lines);
	lc_budget_default(&b);
	v = lc_check(&h, &b, &r);
	if (v == LC_NOT_LINEARIZABLE) {
		assert_true(r.window_len > 0);
		lc_result_print(stderr, &h, &r);
	}
	lc_result_free(&r);
	lc_history_free(&h);
	return v;
}

static void test_sequential(void **state)
{
	static const char *const ok[] = {
		"1 get x nil 0 1 ok",
		"1 put x a 2 3 ok",
		"2 get x a 4 5 ok",
		"1 put x b 6 7 ok",
		"2 get x b 8 9 ok",
		"3 del x - 10 11 ok",
		"2 get x nil 12 13 ok",
		"1 put y c 14 15 ok",
		"2 get x nil 16 17 ok",
		NULL,
	};
	(void)state;
	assert_int_equal(verdict_of(ok), LC_LINEARIZABLE);
}

static void test_empty(void **state)
{
	static const char *const none[] = { NULL };
	(void)state;
	assert_int_equal(verdict_of(none), LC_LINEARIZABLE);
}

/* Two overlapping writes; a read overlapping both may see either. */
static void test_concurrent_writes_either_value(void **state)
{
	static const char *const sees_a[] = {
		"1 put x a 0 10 ok",
		"2 put x b 0 10 ok",
		"3 get x a 5 15 ok",
		NULL,
	};
	static const char *const sees_b[] = {
		"1 put x a 0 10 ok",
		"2 put x b 0 10 ok",
		"3 get x b 5 15 ok",
		NULL,
	};
	/* Both orders observed by two reads is fine while they overlap... */
	static const char *const both_overlapping[] = {
		"1 put x a 0 10 ok",
		"2 put x b 0 10 ok",
		"3 get x a 1 4 ok",
		"4 get x b 5 15 ok",
		NULL,
	};
	/* ...and a read may see the value before the write it overlaps. */
	static const char *const old_during_write[] = {
		"1 put x a 0 1 ok",
		"2 put x b 2 10 ok",
		"3 get x a 3 4 ok",
		"3 get x b 5 6 ok",
		NULL,
	};
	(void)state;
	assert_int_equal(verdict_of(sees_a), LC_LINEARIZABLE);
	assert_int_equal(verdict_of(sees_b), LC_LINEARIZABLE);
	assert_int_equal(verdict_of(both_overlapping), LC_LINEARIZABLE);
	assert_int_equal(verdict_of(old_during_write), LC_LINEARIZABLE);
}

static void test_stale_read(void **state)
{
	static const char *const stale[] = {
		"1 put x a 0 1 ok",
		"1 put x b 2 3 ok",
		"2 get x a 4 5 ok",
		NULL,
	};
	static const char *const nil_after_write[] = {
		"1 put x a 0 1 ok",
		"2 get x nil 2 3 ok",
		NULL,
	};
	static const char *const value_after_del[] = {
		"1 put x a 0 1 ok",
		"1 del x - 2 3 ok",
		"2 get x a 4 5 ok",
		NULL,
	};
	(void)state;
	assert_int_equal(verdict_of(stale), LC_NOT_LINEARIZABLE);
	assert_int_equal(verdict_of(nil_after_write), LC_NOT_LINEARIZABLE);
	assert_int_equal(verdict_of(value_after_del), LC_NOT_LINEARIZABLE);
}

static void test_never_written(void **state)
{
	static const char *const phantom[] = {
		"1 put x a 0 1 ok",
		"2 get x z 2 3 ok",
		NULL,
	};
	/* A value written to another key does not count. */
	static const char *const other_key[] = {
		"1 put y a 0 1 ok",
		"2 get x a 2 3 ok",
		NULL,
	};
	/* A read that returns before the write of its value is invoked. */
	static const char *const from_the_future[] = {
		"2 get x a 0 1 ok",
		"1 put x a 2 3 ok",
		NULL,
	};
	(void)state;
	assert_int_equal(verdict_of(phantom), LC_NOT_LINEARIZABLE);
	assert_int_equal(verdict_of(other_key), LC_NOT_LINEARIZABLE);
	assert_int_equal(verdict_of(from_the_future), LC_NOT_LINEARIZABLE);
}

/* Once a read saw the new value, a later read may not see the old one. */
static void test_reads_back_in_time(void **state)
{
	static const char *const back[] = {
		"1 put x a 0 1 ok",
		"2 put x b 2 20 ok",
		"3 get x b 3 4 ok",
		"4 get x a 5 6 ok",
		NULL,
	};
	(void)state;
	assert_int_equal(verdict_of(back), LC_NOT_LINEARIZABLE);
}

static void test_unknown_writes(void **state)
{
	/* Appears much later than its invocation. */
	static const char *const later[] = {
		"1 put x a 0 1 ok",
		"2 put x b 2 - unknown",
		"3 get x a 3 4 ok",
		"3 get x a 50 51 ok",
		"3 get x b 100 101 ok",
		"4 get x b 200 201 ok",
		NULL,
	};
	/* Never appears. */
	static const char *const never[] = {
		"1 put x a 0 1 ok",
		"2 put x b 2 - unknown",
		"2 del x - 3 - unknown",
		"3 get x a 3 4 ok",
		"3 get x a 500 501 ok",
		NULL,
	};
	/* An unknown read constrains nothing. */
	static const char *const unknown_read[] = {
		"1 put x a 0 1 ok",
		"2 get x - 2 - unknown",
		"3 get x a 3 4 ok",
		NULL,
	};
	/* But it takes effect once, after its invocation: not before... */
	static const char *const before_invoke[] = {
		"3 get x b 0 1 ok",
		"2 put x b 2 - unknown",
		NULL,
	};
	/* ...and not twice (b overwritten by c cannot come back). */
	static const char *const twice[] = {
		"2 put x b 0 - unknown",
		"3 get x b 1 2 ok",
		"1 put x c 3 4 ok",
		"3 get x b 5 6 ok",
		NULL,
	};
	(void)state;
	assert_int_equal(verdict_of(later), LC_LINEARIZABLE);
	assert_int_equal(verdict_of(never), LC_LINEARIZABLE);
	assert_int_equal(verdict_of(unknown_read), LC_LINEARIZABLE);
	assert_int_equal(verdict_of(before_invoke), LC_NOT_LINEARIZABLE);
	assert_int_equal(verdict_of(twice), LC_NOT_LINEARIZABLE);
}

static void test_failed_write(void **state)
{
	static const char *const read_failed[] = {
		"1 put x a 0 1 ok",
		"2 put x b 2 3 fail",
		"3 get x b 4 5 ok",
		NULL,
	};
	static const char *const not_read[] = {
		"1 put x a 0 1 ok",
		"2 put x b 2 - fail",
		"2 del x - 2 3 fail",
		"3 get x a 4 5 ok",
		NULL,
	};
	(void)state;
	assert_int_equal(verdict_of(read_failed), LC_NOT_LINEARIZABLE);
	assert_int_equal(verdict_of(not_read), LC_LINEARIZABLE);
}

/* The window of a stale read among noise is the read and the two writes. */
static void test_explanation_window(void **state)
{
	static const char *const lines[] = {
		"5 put y q 0 100 ok",
		"6 get y q 1 2 ok",
		"1 put x a 10 11 ok",
		"7 get x a 12 13 ok",
		"8 put x c 14 - unknown",
		"1 put x b 20 21 ok",
		"7 get x b 22 23 ok",
		"9 get x b 24 25 ok",
		"2 get x a 30 31 ok",
		"3 get x b 32 33 ok",
		NULL,
	};
	struct lc_history h;
	struct lc_budget b;
	struct lc_result r;
	const struct lc_op *stuck;

	(void)state;
	build(&h, lines);
	lc_budget_default(&b);
	assert_int_equal(lc_check(&h, &b, &r), LC_NOT_LINEARIZABLE);
	assert_string_equal(lc_key_name(&h, r.bad_key), "x");
	assert_int_equal(r.keys_bad, 1);
	assert_true(r.window_minimal);
	assert_int_equal(r.window_len, 3);
	assert_int_equal(r.window[0], 2); /* put x a */
	assert_int_equal(r.window[1], 5); /* put x b */
	assert_int_equal(r.window[2], 8); /* get x -> a */
	assert_true(r.stuck_known);
	/* Stuck either at the read (the register holds b) or at the write
	 * of b (which would bury a, still to be read). */
	stuck = &h.ops[r.stuck_op];
	if (stuck->kind == LC_GET)
		assert_string_equal(lc_value_name(&h, r.stuck_value), "b");
	else
		assert_string_equal(lc_value_name(&h, r.stuck_value), "a");
	assert_true(r.stuck_op == 5 || r.stuck_op == 8);
	lc_result_print(stdout, &h, &r);
	lc_result_free(&r);
	lc_history_free(&h);
}

static void test_text_form(void **state)
{
	static const char *const bad[] = {
		"1 put x",                       /* too few fields */
		"1 put x a 0 1 ok extra",        /* too many */
		"1 cas x a 0 1 ok",              /* unknown op */
		"1 put x a 0 1 maybe",           /* unknown outcome */
		"1 put x - 0 1 ok",              /* put without value */
		"1 put x nil 0 1 ok",
		"1 get x - 0 1 ok",              /* ok get without value */
		"1 put x a 5 4 ok",              /* returns before invoked */
		"1 put x a 0 - ok",              /* ok without return */
		"x put x a 0 1 ok",              /* client not a number */
		"1 put x a -3 1 ok",
		"1 put x a 0 18446744073709551615 ok", /* reserved for never */
		"99999999999 put x a 0 1 ok",    /* client too big */
		NULL,
	};
	const char *text = "# comment\n\n1 put x a 10 20 ok\n"
			   "2 get x nil 5 8 ok\n3 put x b 30 - unknown\n"
			   "4 del x - 40 45 fail\n";
	struct lc_history h, back;
	char err[200];
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	for (const char *const *l = bad; *l; l++) {
		lc_history_init(&h);
		if (lc_history_parse_line(&h, *l, err, sizeof err) != -EINVAL)
			fail_msg("accepted '%s'", *l);
		lc_history_free(&h);
	}
	lc_history_init(&h);
	f = fmemopen((void *)text, strlen(text), "r");
	assert_non_null(f);
	assert_int_equal(lc_history_read(f, &h, err, sizeof err), 0);
	fclose(f);
	assert_int_equal(h.count, 4);
	assert_int_equal(h.ops[2].ret, LC_NEVER);
	assert_int_equal(h.ops[1].value, LC_NIL);

	f = open_memstream(&buf, &len);
	assert_int_equal(lc_history_write(f, &h), 0);
	fclose(f);
	lc_history_init(&back);
	f = fmemopen(buf, len, "r");
	assert_int_equal(lc_history_read(f, &back, err, sizeof err), 0);
	fclose(f);
	assert_int_equal(back.count, h.count);
	for (size_t i = 0; i < h.count; i++) {
		assert_int_equal(back.ops[i].invoke, h.ops[i].invoke);
		assert_int_equal(back.ops[i].ret, h.ops[i].ret);
		assert_int_equal(back.ops[i].kind, h.ops[i].kind);
		assert_int_equal(back.ops[i].outcome, h.ops[i].outcome);
		assert_string_equal(lc_value_name(&back, back.ops[i].value),
				    lc_value_name(&h, h.ops[i].value));
	}
	free(buf);
	lc_history_free(&back);
	lc_history_free(&h);

	/* A bad line is reported with its number. */
	lc_history_init(&h);
	f = fmemopen((void *)"1 put x a 0 1 ok\n1 put x\n", 26, "r");
	assert_int_equal(lc_history_read(f, &h, err, sizeof err), -EINVAL);
	fclose(f);
	assert_non_null(strstr(err, "line 2"));
	lc_history_free(&h);
}

/* ---- random histories ---------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = (*s += 0x9e3779b97f4a7c15ull);

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return rng_next(s) % n;
}

/*
 * A linearizable history: operations take effect at increasing points on a
 * sequential register per key; each gets an interval of up to `width`
 * either side of its point. Some writes are unknown (applied or not),
 * some failed (not applied), some reads unknown.
 */
static void gen_history(struct lc_history *h, uint64_t seed, size_t nops,
			unsigned nkeys, unsigned nclients, uint64_t width)
{
	char current[16][32];
	char key[16], value[32];
	uint64_t t = 10 * width + 10;

	assert_true(nkeys <= 16);
	lc_history_init(h);
	for (unsigned k = 0; k < nkeys; k++)
		strcpy(current[k], "nil");
	for (size_t i = 0; i < nops; i++) {
		unsigned k = (unsigned)rng_below(&seed, nkeys);
		uint64_t r = rng_below(&seed, 100);
		uint64_t inv, ret;
		uint32_t client = (uint32_t)rng_below(&seed, nclients);
		int rv;

		t += 1 + rng_below(&seed, 3);
		inv = t - rng_below(&seed, width + 1);
		ret = t + rng_below(&seed, width + 1);
		snprintf(key, sizeof key, "k%u", k);
		snprintf(value, sizeof value, "v%zu", i);
		if (r < 40) {
			enum lc_outcome o = rng_below(&seed, 10) == 0 ? LC_UNKNOWN : LC_OK;

			rv = lc_history_add(h, client, LC_PUT, key, value, inv, ret, o);
			strcpy(current[k], value);
		} else if (r < 45) {
			rv = lc_history_add(h, client, LC_DEL, key, NULL, inv, ret, LC_OK);
			strcpy(current[k], "nil");
		} else if (r < 50) {
			/* Did not happen: failed, or unknown and never applied. */
			rv = lc_history_add(h, client, LC_PUT, key, value, inv, ret,
					    r < 48 ? LC_FAIL : LC_UNKNOWN);
		} else if (r < 53) {
			rv = lc_history_add(h, client, LC_GET, key, NULL, inv, ret,
					    LC_UNKNOWN);
		} else {
			rv = lc_history_add(h, client, LC_GET, key,
					    strcmp(current[k], "nil") ? current[k] : NULL,
					    inv, ret, LC_OK);
		}
		assert_int_equal(rv, 0);
	}
}

/* The index of the put of `value` (a value id), or SIZE_MAX. */
static size_t put_of(const struct lc_history *h, uint32_t value)
{
	for (size_t i = 0; i < h->count; i++)
		if (h->ops[i].kind == LC_PUT && h->ops[i].value == value)
			return i;
	return SIZE_MAX;
}

/*
 * Makes one ok get read a value it cannot: that of an ok put P followed
 * (in real time) by another ok write Q that returned before the get was
 * invoked. Returns false when the history has no such triple.
 */
static bool make_stale(struct lc_history *h, uint64_t *seed)
{
	size_t n = h->count, start = (size_t)rng_below(seed, n);

	for (size_t a = 0; a < n; a++) {
		struct lc_op *g = &h->ops[(start + a) % n];

		if (g->kind != LC_GET || g->outcome != LC_OK)
			continue;
		for (size_t q = 0; q < n; q++) {
			const struct lc_op *w = &h->ops[q];

			if (w->key != g->key || w->kind == LC_GET ||
			    w->outcome != LC_OK || w->ret >= g->invoke)
				continue;
			for (size_t p = 0; p < n; p++) {
				const struct lc_op *old = &h->ops[p];

				if (old->key != g->key || old->kind != LC_PUT ||
				    old->outcome != LC_OK || old->ret >= w->invoke ||
				    old->value == g->value)
					continue;
				assert_int_equal(put_of(h, old->value), p);
				g->value = old->value;
				return true;
			}
		}
	}
	return false;
}

static void test_random_pass_and_mutants_fail(void **state)
{
	unsigned mutated = 0;

	(void)state;
	for (uint64_t seed = 1; seed <= 300; seed++) {
		struct lc_history h;
		struct lc_budget b;
		struct lc_result r;
		uint64_t s = seed * 7919;
		int v;

		gen_history(&h, seed, 50 + seed % 250, 1 + seed % 4, 20,
			    seed % 3 == 0 ? 2 : 12);
		lc_budget_default(&b);
		v = lc_check(&h, &b, &r);
		if (v != LC_LINEARIZABLE) {
			lc_result_print(stderr, &h, &r);
			fail_msg("seed %llu: generated history judged %d",
				 (unsigned long long)seed, v);
		}
		lc_result_free(&r);
		if (make_stale(&h, &s)) {
			mutated++;
			v = lc_check(&h, &b, &r);
			if (v != LC_NOT_LINEARIZABLE)
				fail_msg("seed %llu: stale read not caught (%d)",
					 (unsigned long long)seed, v);
			assert_true(r.window_len >= 3);
			lc_result_free(&r);
		}
		lc_history_free(&h);
	}
	assert_true(mutated > 250);
}

/* A read moved to a value whose write starts after the read returned. */
static void test_random_future_read_fails(void **state)
{
	(void)state;
	for (uint64_t seed = 1000; seed < 1100; seed++) {
		struct lc_history h;
		struct lc_budget b;
		struct lc_result r;
		bool done = false;

		gen_history(&h, seed, 200, 2, 10, 8);
		lc_budget_default(&b);
		for (size_t i = 0; i < h.count && !done; i++) {
			struct lc_op *g = &h.ops[i];

			if (g->kind != LC_GET || g->outcome != LC_OK)
				continue;
			for (size_t j = i + 1; j < h.count && !done; j++) {
				const struct lc_op *p = &h.ops[j];

				if (p->kind == LC_PUT && p->key == g->key &&
				    p->outcome != LC_FAIL && p->invoke > g->ret) {
					g->value = p->value;
					done = true;
				}
			}
		}
		assert_true(done);
		assert_int_equal(lc_check(&h, &b, &r), LC_NOT_LINEARIZABLE);
		lc_result_free(&r);
		lc_history_free(&h);
	}
}

/* ---- brute force on small histories --------------------------------------- */

/* Is there an order of ops[0..n) (the ones in `use`) that respects real
 * time and the register? Tries every permutation. */
static bool brute_order(const struct lc_op *ops, size_t n, unsigned use,
			size_t *perm, size_t depth, unsigned placed, uint32_t value)
{
	if (placed == use)
		return true;
	for (size_t i = 0; i < n; i++) {
		bool ok = true;

		if (!(use >> i & 1) || (placed >> i & 1))
			continue;
		/* Everything that returned before i was invoked is placed. */
		for (size_t j = 0; j < n && ok; j++)
			if ((use >> j & 1) && !(placed >> j & 1) && j != i &&
			    ops[j].ret < ops[i].invoke)
				ok = false;
		if (!ok)
			continue;
		if (ops[i].kind == LC_GET && ops[i].value != value)
			continue;
		perm[depth] = i;
		if (brute_order(ops, n, use, perm, depth + 1, placed | 1u << i,
				ops[i].kind == LC_PUT ? ops[i].value :
				ops[i].kind == LC_DEL ? LC_NIL : value))
			return true;
	}
	return false;
}

/* Definite ops always happen; each unknown write happens or not. */
static bool brute_linearizable(const struct lc_history *h)
{
	unsigned must = 0, maybe = 0;
	size_t perm[16];

	for (size_t i = 0; i < h->count; i++) {
		const struct lc_op *op = &h->ops[i];

		if (op->outcome == LC_OK)
			must |= 1u << i;
		else if (op->outcome == LC_UNKNOWN && op->kind != LC_GET)
			maybe |= 1u << i;
	}
	for (unsigned sub = maybe;; sub = (sub - 1) & maybe) {
		if (brute_order(h->ops, h->count, must | sub, perm, 0, 0, LC_NIL))
			return true;
		if (sub == 0)
			return false;
	}
}

/* Random small histories, linearizable or not: the search agrees with
 * trying every order. */
static void test_random_small_vs_brute_force(void **state)
{
	unsigned verdicts[2] = { 0, 0 };

	(void)state;
	for (uint64_t seed = 1; seed <= 6000; seed++) {
		struct lc_history h;
		struct lc_budget b;
		struct lc_result r;
		uint64_t s = seed;
		size_t n = 3 + rng_below(&s, 6);
		/* Every other history writes values more than once, where the
		 * search may not assume an overwritten value is gone. */
		size_t distinct = seed % 2 ? n : 2;
		char value[8];
		bool expect;
		int v;

		lc_history_init(&h);
		for (size_t i = 0; i < n; i++) {
			uint64_t inv = rng_below(&s, 20), ret = inv + rng_below(&s, 8);
			uint64_t kind = rng_below(&s, 10);
			enum lc_outcome o = rng_below(&s, 8) == 0 ? LC_UNKNOWN :
					    rng_below(&s, 12) == 0 ? LC_FAIL : LC_OK;

			snprintf(value, sizeof value, "p%zu", i % distinct);
			if (kind < 4) {
				assert_int_equal(lc_history_add(&h, (uint32_t)i, LC_PUT, "x",
						 value, inv, ret, o), 0);
			} else if (kind < 5) {
				assert_int_equal(lc_history_add(&h, (uint32_t)i, LC_DEL, "x",
						 NULL, inv, ret, o), 0);
			} else {
				/* Read a value some put may write, or nil. */
				uint64_t pick = rng_below(&s, distinct + 1);
				const char *read = NULL;

				if (pick < distinct) {
					snprintf(value, sizeof value, "p%llu",
						 (unsigned long long)pick);
					read = value;
				}
				assert_int_equal(lc_history_add(&h, (uint32_t)i, LC_GET, "x",
						 read, inv, ret, o), 0);
			}
		}
		expect = brute_linearizable(&h);
		lc_budget_default(&b);
		v = lc_check(&h, &b, &r);
		if (v != (expect ? LC_LINEARIZABLE : LC_NOT_LINEARIZABLE)) {
			lc_history_write(stderr, &h);
			fail_msg("seed %llu: search says %d, brute force %s",
				 (unsigned long long)seed, v, expect ? "yes" : "no");
		}
		verdicts[expect]++;
		lc_result_free(&r);
		lc_history_free(&h);
	}
	printf("brute force: %u linearizable, %u not\n", verdicts[1], verdicts[0]);
	assert_true(verdicts[0] > 300 && verdicts[1] > 300);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Thousands of operations, 8 keys, 50 clients: well under a second. */
static void test_speed(void **state)
{
	static const struct { size_t ops; unsigned keys; uint64_t width; } runs[] = {
		{ 5000, 8, 25 },   /* ~50 open at once overall, ~6 a key */
		{ 5000, 5, 50 },   /* ~100 open overall, ~20 a key */
		{ 20000, 10, 25 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
		struct lc_history h;
		struct lc_budget b;
		struct lc_result r;
		struct timespec t0;
		double took;
		uint64_t s = 99;

		gen_history(&h, 4242 + i, runs[i].ops, runs[i].keys, 50, runs[i].width);
		lc_budget_default(&b);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_int_equal(lc_check(&h, &b, &r), LC_LINEARIZABLE);
		took = seconds_since(&t0);
		printf("speed: %zu ops, %u keys, width %llu: %.3f s, %llu states, max %zu open on a key\n",
		       runs[i].ops, runs[i].keys, (unsigned long long)runs[i].width,
		       took, (unsigned long long)r.states, r.max_open);
		lc_result_free(&r);
		if (runs[i].ops <= 5000)
			assert_true(took < 1.0);
		/* The mutant is found as fast (the shrinking costs extra). */
		assert_true(make_stale(&h, &s));
		b.explain = false;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_int_equal(lc_check(&h, &b, &r), LC_NOT_LINEARIZABLE);
		took = seconds_since(&t0);
		printf("speed: the same with a stale read: %.3f s, %llu states\n",
		       took, (unsigned long long)r.states);
		lc_result_free(&r);
		lc_history_free(&h);
	}
}

/* Many operations open at once and a tiny budget: undecided, not a pass. */
static void test_budget_undecided(void **state)
{
	struct lc_history h;
	struct lc_budget b;
	struct lc_result r;
	char value[32];

	(void)state;
	lc_history_init(&h);
	/* 24 concurrent writes and a read of each: 24! orders to try. */
	for (unsigned i = 0; i < 24; i++) {
		snprintf(value, sizeof value, "v%u", i);
		assert_int_equal(lc_history_add(&h, i, LC_PUT, "x", value, 0, 1000, LC_OK), 0);
	}
	for (unsigned i = 0; i < 24; i++) {
		snprintf(value, sizeof value, "v%u", (i * 7) % 24);
		assert_int_equal(lc_history_add(&h, 100 + i, LC_GET, "x", value, 10, 1000, LC_OK), 0);
	}
	/* A read after everything of a value that is surely overwritten. */
	assert_int_equal(lc_history_add(&h, 200, LC_GET, "x", "v3", 2000, 2001, LC_OK), 0);
	assert_int_equal(lc_history_add(&h, 200, LC_GET, "x", "v5", 2002, 2003, LC_OK), 0);
	lc_budget_default(&b);
	b.max_states = 10000;
	assert_int_equal(lc_check(&h, &b, &r), LC_UNDECIDED);
	assert_int_equal(r.keys_undecided, 1);
	lc_result_print(stdout, &h, &r);
	lc_result_free(&r);
	/* The time budget stops it too. */
	b.max_states = 0;
	b.max_seconds = 0.2;
	assert_int_equal(lc_check(&h, &b, &r), LC_UNDECIDED);
	lc_result_free(&r);
	lc_history_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_sequential),
		cmocka_unit_test(test_concurrent_writes_either_value),
		cmocka_unit_test(test_stale_read),
		cmocka_unit_test(test_never_written),
		cmocka_unit_test(test_reads_back_in_time),
		cmocka_unit_test(test_unknown_writes),
		cmocka_unit_test(test_failed_write),
		cmocka_unit_test(test_explanation_window),
		cmocka_unit_test(test_text_form),
		cmocka_unit_test(test_random_pass_and_mutants_fail),
		cmocka_unit_test(test_random_future_read_fails),
		cmocka_unit_test(test_random_small_vs_brute_force),
		cmocka_unit_test(test_speed),
		cmocka_unit_test(test_budget_undecided),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
