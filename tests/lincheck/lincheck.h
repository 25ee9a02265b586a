/*
 * lincheck: is a history of put/get/del on a few registers linearizable?
 *
 * Each key is checked on its own (linearizability is compositional, so a
 * history is linearizable iff every key's sub-history is). Per key, the
 * search is Wing & Gong's with Lowe's just-in-time linearization and
 * memoisation of (set of linearized operations, register value) pairs, as
 * in Knossos and Porcupine: walk the operations in time order, try to
 * linearize a pending call now, and backtrack when a return comes before
 * its call could be placed. The search is exponential in the number of
 * operations open at once on one key, so it is bounded by a budget of
 * states and of seconds; a key that runs out of budget is "undecided",
 * never silently passed. docs/LINCHECK.md has the details and the
 * limits measured.
 *
 * Unknown outcomes (history.h): an unknown write's return is +infinity; an
 * unknown read, and every failed operation, constrain nothing and are
 * dropped; an unknown write whose value no ok read returned is dropped as
 * well (it can always be placed after everything else).
 */
#ifndef RINGKV_TESTS_LINCHECK_LINCHECK_H
#define RINGKV_TESTS_LINCHECK_LINCHECK_H

#include "history.h"

#include <stdbool.h>

enum lc_verdict {
	LC_LINEARIZABLE = 0,
	LC_NOT_LINEARIZABLE = 1,
	LC_UNDECIDED = 2,
};

struct lc_budget {
	uint64_t max_states;   /* search steps per key; 0 = no limit */
	double max_seconds;    /* wall time for the whole check; 0 = no limit */
	bool explain;          /* shrink a failing key to a minimal window */
};

/* Defaults: 10 million states a key, 60 s, explain on. */
void lc_budget_default(struct lc_budget *b);

struct lc_result {
	enum lc_verdict verdict;
	size_t keys;            /* keys in the history */
	size_t keys_bad;        /* keys found not linearizable */
	size_t keys_undecided;  /* keys whose search ran out of budget */
	uint32_t bad_key;       /* the first key not linearizable (or undecided) */
	uint64_t states;        /* search steps over every key */
	size_t max_open;        /* most operations open at once on one key */

	/* When verdict is LC_NOT_LINEARIZABLE and explain was asked: a small
	 * set of bad_key's operations that cannot be ordered by themselves
	 * (indexes into history.ops, in invoke order; malloc'd). */
	size_t *window;
	size_t window_len;
	bool window_minimal;    /* false when shrinking ran out of budget */
	/* Where the search over the window got stuck: after `stuck_depth`
	 * operations linearized, op `stuck_op` (index into history.ops) could
	 * not take effect before its return; the register then held
	 * `stuck_value`. Only when stuck_known (the window's own search can
	 * run out of budget when it is not minimal). */
	bool stuck_known;
	size_t stuck_op;
	size_t stuck_depth;
	uint32_t stuck_value;
};

/*
 * Checks `h`. Fills `r` (free it with lc_result_free) and returns its
 * verdict, or -ENOMEM (then r holds nothing to free).
 */
int lc_check(const struct lc_history *h, const struct lc_budget *b,
	     struct lc_result *r);

void lc_result_free(struct lc_result *r);

/* A human report: the verdict, and for a violation the window and where
 * the search got stuck, times in ms from the window's first invocation. */
void lc_result_print(FILE *out, const struct lc_history *h,
		     const struct lc_result *r);

#endif
