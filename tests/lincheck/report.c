/*
 * The human form of a lincheck result: one line for a pass, and for a
 * violation the window of operations that cannot be ordered, with times in
 * milliseconds from the window's first invocation, and where the search
 * got stuck.
 */
#include "lincheck.h"

#include <inttypes.h>

#define REPORT_MAX_OPS 40   /* a window not shrunk to minimal can be long */

static void print_op(FILE *out, const struct lc_history *h, const struct lc_op *op,
		     uint64_t origin)
{
	static const char *const outcome[] = { "ok", "fail", "unknown" };

	fprintf(out, "client %-4" PRIu32 " ", op->client);
	switch (op->kind) {
	case LC_PUT:
		fprintf(out, "put %s %s", lc_key_name(h, op->key),
			lc_value_name(h, op->value));
		break;
	case LC_GET:
		fprintf(out, "get %s -> %s", lc_key_name(h, op->key),
			op->outcome == LC_OK ? lc_value_name(h, op->value) : "?");
		break;
	case LC_DEL:
		fprintf(out, "del %s", lc_key_name(h, op->key));
		break;
	}
	fprintf(out, "  [%.3f, ", (double)(op->invoke - origin) / 1e6);
	if (op->ret == LC_NEVER)
		fprintf(out, "never]");
	else
		fprintf(out, "%.3f]", (double)(op->ret - origin) / 1e6);
	fprintf(out, " %s", outcome[op->outcome]);
}

/* A read still to come of the value a stuck write would bury? */
static bool read_later(const struct lc_history *h, const struct lc_result *r)
{
	const struct lc_op *w = &h->ops[r->stuck_op];

	for (size_t i = 0; i < r->window_len; i++) {
		const struct lc_op *op = &h->ops[r->window[i]];

		if (op->kind == LC_GET && op->value == r->stuck_value &&
		    op->value != LC_NIL && op->invoke > w->ret)
			return true;
	}
	return false;
}

static void print_stuck(FILE *out, const struct lc_history *h,
			const struct lc_result *r, uint64_t origin)
{
	const struct lc_op *op = &h->ops[r->stuck_op];
	const char *value = lc_value_name(h, r->stuck_value);

	fprintf(out, "  stuck after %zu of them linearized: ", r->stuck_depth);
	print_op(out, h, op, origin);
	if (op->kind == LC_GET)
		fprintf(out, "\n    cannot take effect before it returns: the register then holds %s\n",
			value);
	else if (read_later(h, r))
		fprintf(out, "\n    must take effect before it returns, but the register holds %s"
			" and a read of %s comes after that return\n", value, value);
	else
		fprintf(out, "\n    must take effect before it returns, but no order of what"
			" comes before it allows that (the register holds %s)\n", value);
}

void lc_result_print(FILE *out, const struct lc_history *h,
		     const struct lc_result *r)
{
	switch (r->verdict) {
	case LC_LINEARIZABLE:
		fprintf(out, "linearizable: %zu operations on %zu keys, %" PRIu64
			" states searched, at most %zu open at once on a key\n",
			h->count, r->keys, r->states, r->max_open);
		return;
	case LC_UNDECIDED:
		fprintf(out, "undecided: %zu of %zu keys ran out of budget (first: %s), %"
			PRIu64 " states searched, at most %zu open at once on a key;"
			" no violation found in the others\n",
			r->keys_undecided, r->keys, lc_key_name(h, r->bad_key),
			r->states, r->max_open);
		return;
	case LC_NOT_LINEARIZABLE:
		break;
	}
	fprintf(out, "NOT linearizable: key %s (%zu of %zu keys not linearizable",
		lc_key_name(h, r->bad_key), r->keys_bad, r->keys);
	if (r->keys_undecided)
		fprintf(out, ", %zu undecided", r->keys_undecided);
	fprintf(out, ")\n");
	if (!r->window_len)
		return;
	{
		uint64_t origin = h->ops[r->window[0]].invoke;

		fprintf(out, "  %zu operation%s that cannot be ordered%s (ms from the first invocation):\n",
			r->window_len, r->window_len == 1 ? "" : "s", r->window_minimal ? "" :
			" (shrinking ran out of time: not minimal)");
		for (size_t i = 0; i < r->window_len && i < REPORT_MAX_OPS; i++) {
			fprintf(out, "    ");
			print_op(out, h, &h->ops[r->window[i]], origin);
			fprintf(out, "\n");
		}
		if (r->window_len > REPORT_MAX_OPS)
			fprintf(out, "    ... and %zu more\n", r->window_len - REPORT_MAX_OPS);
		if (r->stuck_known)
			print_stuck(out, h, r, origin);
	}
}
