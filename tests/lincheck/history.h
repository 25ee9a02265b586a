/*
 * A history of operations on a few registers (keys), as a linearizability
 * checker sees it: who asked what, when the request left (invoke) and when
 * its answer came back (return), and what the answer was.
 *
 * Outcomes follow the "may or may not have happened" rule:
 *   ok      - the answer came; for a get, the value read (or nil);
 *   fail    - definitely did not take effect (refused before it was sent,
 *             or by a status that promises nothing was applied);
 *   unknown - sent but no definite answer (timeout, connection lost, a
 *             status saying the outcome is unknown): it may take effect at
 *             any moment after its invocation, or never. Its return time is
 *             LC_NEVER.
 *
 * Keys and values are strings without white space, interned into ids:
 * value id LC_NIL (0) is "absent" (a get that found nothing, the state a
 * del leaves, the initial state of every key). The text form is described
 * in docs/LINCHECK.md ("History format") and by lc_history_read().
 */
#ifndef RINGKV_TESTS_LINCHECK_HISTORY_H
#define RINGKV_TESTS_LINCHECK_HISTORY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LC_NIL 0u                  /* value id of "no value" */
#define LC_NEVER UINT64_MAX        /* return time of an unknown outcome */
#define LC_TOKEN_MAX 256           /* longest key or value string */

enum lc_kind {
	LC_PUT,
	LC_GET,
	LC_DEL,
};

enum lc_outcome {
	LC_OK,
	LC_FAIL,
	LC_UNKNOWN,
};

struct lc_op {
	uint32_t client;          /* who issued it (for the reader only) */
	enum lc_kind kind;
	enum lc_outcome outcome;
	uint32_t key;             /* id in history.keys */
	uint32_t value;           /* put: written; ok get: read (LC_NIL = absent) */
	uint64_t invoke;          /* ns on one monotonic clock */
	uint64_t ret;             /* ns; LC_NEVER when outcome is unknown */
};

/* Strings interned to dense ids (open addressing over a names array). */
struct lc_strtab {
	char **names;             /* names[id] */
	uint32_t count;
	uint32_t cap;
	uint32_t *slots;          /* id + 1, 0 = empty; size nslots (power of 2) */
	uint32_t nslots;
};

struct lc_history {
	struct lc_op *ops;
	size_t count;
	size_t cap;
	struct lc_strtab keys;    /* key ids from 0 */
	struct lc_strtab values;  /* id 0 is "nil" */
};

void lc_history_init(struct lc_history *h);
void lc_history_free(struct lc_history *h);

/*
 * Appends one operation. `value` is the put's value, the ok get's result
 * (NULL = nil), ignored for del and for a get that is not ok. For an
 * unknown outcome `ret` is forced to LC_NEVER. Returns 0, -EINVAL (a put
 * without a value, a value named "nil" or "-", a token too long or with
 * white space, ret < invoke on a definite outcome) or -ENOMEM.
 */
int lc_history_add(struct lc_history *h, uint32_t client, enum lc_kind kind,
		   const char *key, const char *value, uint64_t invoke,
		   uint64_t ret, enum lc_outcome outcome);

/*
 * Reads the text form: one operation a line,
 *   CLIENT OP KEY VALUE INVOKE_NS RETURN_NS OUTCOME
 * OP put|get|del, VALUE a token, "nil" (a get that found nothing) or "-"
 * (none), RETURN_NS "-" when unknown, OUTCOME ok|fail|unknown; blank lines
 * and lines starting with '#' are skipped. Returns 0, or -EINVAL with
 * "line N: reason" in `err`, or -ENOMEM.
 */
int lc_history_read(FILE *in, struct lc_history *h, char *err, size_t errlen);

/* Parses one line of the text form (without its newline) and appends it. */
int lc_history_parse_line(struct lc_history *h, const char *line, char *err,
			  size_t errlen);

/* Writes the text form, a header comment first. Returns 0 or -EIO. */
int lc_history_write(FILE *out, const struct lc_history *h);

/* Writes one operation in the text form (no newline). */
void lc_op_write(FILE *out, const struct lc_history *h, const struct lc_op *op);

const char *lc_key_name(const struct lc_history *h, uint32_t key);
const char *lc_value_name(const struct lc_history *h, uint32_t value);

#endif
