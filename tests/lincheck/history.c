/*
 * Histories for the linearizability checker: interning of key and value
 * strings, appending operations, and the line-oriented text form the
 * recorder writes and the lincheck CLI reads. Input is untrusted: every
 * field is checked and a bad line is an error with its number, never an
 * assert.
 */
#include "history.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static void strtab_free(struct lc_strtab *t)
{
	for (uint32_t i = 0; i < t->count; i++)
		free(t->names[i]);
	free(t->names);
	free(t->slots);
	memset(t, 0, sizeof *t);
}

static int strtab_rehash(struct lc_strtab *t, uint32_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof *slots);

	if (!slots)
		return -ENOMEM;
	for (uint32_t id = 0; id < t->count; id++) {
		uint32_t s = (uint32_t)str_hash(t->names[id]) & (nslots - 1);

		while (slots[s])
			s = (s + 1) & (nslots - 1);
		slots[s] = id + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->nslots = nslots;
	return 0;
}

/* The id of `name`, added when new. 0..count-1, or -ENOMEM. */
static int64_t strtab_intern(struct lc_strtab *t, const char *name)
{
	uint32_t s;
	char *copy;

	if (t->nslots == 0 || (t->count + 1) * 2 > t->nslots) {
		int rv = strtab_rehash(t, t->nslots ? t->nslots * 2 : 64);

		if (rv)
			return rv;
	}
	s = (uint32_t)str_hash(name) & (t->nslots - 1);
	while (t->slots[s]) {
		uint32_t id = t->slots[s] - 1;

		if (strcmp(t->names[id], name) == 0)
			return id;
		s = (s + 1) & (t->nslots - 1);
	}
	if (t->count == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 64;
		char **names = realloc(t->names, cap * sizeof *names);

		if (!names)
			return -ENOMEM;
		t->names = names;
		t->cap = cap;
	}
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	t->names[t->count] = copy;
	t->slots[s] = t->count + 1;
	return t->count++;
}

void lc_history_init(struct lc_history *h)
{
	memset(h, 0, sizeof *h);
}

void lc_history_free(struct lc_history *h)
{
	free(h->ops);
	strtab_free(&h->keys);
	strtab_free(&h->values);
	memset(h, 0, sizeof *h);
}

const char *lc_key_name(const struct lc_history *h, uint32_t key)
{
	return key < h->keys.count ? h->keys.names[key] : "?";
}

const char *lc_value_name(const struct lc_history *h, uint32_t value)
{
	if (value == LC_NIL)
		return "nil";
	return value < h->values.count ? h->values.names[value] : "?";
}

static bool token_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= LC_TOKEN_MAX)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ')
			return false;
	return true;
}

int lc_history_add(struct lc_history *h, uint32_t client, enum lc_kind kind,
		   const char *key, const char *value, uint64_t invoke,
		   uint64_t ret, enum lc_outcome outcome)
{
	struct lc_op op = {
		.client = client, .kind = kind, .outcome = outcome,
		.invoke = invoke, .ret = ret, .value = LC_NIL,
	};
	int64_t id;

	if (kind > LC_DEL || outcome > LC_UNKNOWN || !key || !token_ok(key))
		return -EINVAL;
	if (outcome == LC_UNKNOWN)
		op.ret = LC_NEVER;
	else if (ret == LC_NEVER || ret < invoke)
		return -EINVAL;
	if (kind == LC_PUT && !value)
		return -EINVAL;
	if (value && (kind == LC_PUT || (kind == LC_GET && outcome == LC_OK))) {
		if (!token_ok(value) || strcmp(value, "nil") == 0 ||
		    strcmp(value, "-") == 0)
			return -EINVAL;
		if (h->values.count == 0 && strtab_intern(&h->values, "nil") != 0)
			return -ENOMEM;
		id = strtab_intern(&h->values, value);
		if (id < 0)
			return (int)id;
		op.value = (uint32_t)id;
	}
	id = strtab_intern(&h->keys, key);
	if (id < 0)
		return (int)id;
	op.key = (uint32_t)id;
	if (h->count == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 256;
		struct lc_op *ops = realloc(h->ops, cap * sizeof *ops);

		if (!ops)
			return -ENOMEM;
		h->ops = ops;
		h->cap = cap;
	}
	h->ops[h->count++] = op;
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno || *end || *out == LC_NEVER)
		return -EINVAL;
	return 0;
}

int lc_history_parse_line(struct lc_history *h, const char *line, char *err,
			  size_t errlen)
{
	char copy[8 * (LC_TOKEN_MAX + 24)];
	const char *f[7];
	enum lc_outcome outcome;
	enum lc_kind kind;
	uint64_t client, invoke, ret = 0;
	const char *value = NULL;
	char *save = NULL, *tok;
	int n = 0, rv;

	if (strlen(line) >= sizeof copy) {
		snprintf(err, errlen, "line too long");
		return -EINVAL;
	}
	strcpy(copy, line);
	for (tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (n == 7) {
			n++;
			break;
		}
		f[n++] = tok;
	}
	if (n != 7) {
		snprintf(err, errlen, "want 7 fields (client op key value invoke return outcome), got %s%d",
			 n > 7 ? "more than " : "", n > 7 ? 7 : n);
		return -EINVAL;
	}
	if (parse_u64(f[0], &client) || client > UINT32_MAX) {
		snprintf(err, errlen, "bad client id '%s'", f[0]);
		return -EINVAL;
	}
	if (strcmp(f[1], "put") == 0)
		kind = LC_PUT;
	else if (strcmp(f[1], "get") == 0)
		kind = LC_GET;
	else if (strcmp(f[1], "del") == 0)
		kind = LC_DEL;
	else {
		snprintf(err, errlen, "unknown operation '%s' (put, get, del)", f[1]);
		return -EINVAL;
	}
	if (strcmp(f[6], "ok") == 0)
		outcome = LC_OK;
	else if (strcmp(f[6], "fail") == 0)
		outcome = LC_FAIL;
	else if (strcmp(f[6], "unknown") == 0)
		outcome = LC_UNKNOWN;
	else {
		snprintf(err, errlen, "unknown outcome '%s' (ok, fail, unknown)", f[6]);
		return -EINVAL;
	}
	if (parse_u64(f[4], &invoke)) {
		snprintf(err, errlen, "bad invoke time '%s'", f[4]);
		return -EINVAL;
	}
	if (outcome == LC_UNKNOWN) {
		ret = LC_NEVER;
	} else if (strcmp(f[5], "-") == 0 && outcome == LC_FAIL) {
		ret = invoke;
	} else if (parse_u64(f[5], &ret) || ret < invoke) {
		snprintf(err, errlen, "bad return time '%s' (a number >= invoke, or - when unknown)",
			 f[5]);
		return -EINVAL;
	}
	if (kind == LC_PUT) {
		if (strcmp(f[3], "-") == 0 || strcmp(f[3], "nil") == 0) {
			snprintf(err, errlen, "a put needs a value");
			return -EINVAL;
		}
		value = f[3];
	} else if (kind == LC_GET && outcome == LC_OK) {
		if (strcmp(f[3], "-") == 0) {
			snprintf(err, errlen, "an ok get needs a value or nil");
			return -EINVAL;
		}
		if (strcmp(f[3], "nil") != 0)
			value = f[3];
	}
	rv = lc_history_add(h, (uint32_t)client, kind, f[2], value, invoke, ret,
			    outcome);
	if (rv == -EINVAL)
		snprintf(err, errlen, "bad key or value");
	else if (rv)
		snprintf(err, errlen, "out of memory");
	return rv;
}

int lc_history_read(FILE *in, struct lc_history *h, char *err, size_t errlen)
{
	char *line = NULL;
	size_t cap = 0;
	unsigned long lineno = 0;
	ssize_t len;
	int rv = 0;

	while ((len = getline(&line, &cap, in)) >= 0) {
		char reason[200];
		const char *p = line;

		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		rv = lc_history_parse_line(h, p, reason, sizeof reason);
		if (rv) {
			snprintf(err, errlen, "line %lu: %s", lineno, reason);
			break;
		}
	}
	if (rv == 0 && ferror(in)) {
		snprintf(err, errlen, "read error: %s", strerror(errno));
		rv = -EIO;
	}
	free(line);
	return rv;
}

static const char *const kind_names[] = { "put", "get", "del" };
static const char *const outcome_names[] = { "ok", "fail", "unknown" };

void lc_op_write(FILE *out, const struct lc_history *h, const struct lc_op *op)
{
	const char *value = "-";

	if (op->kind == LC_PUT || (op->kind == LC_GET && op->outcome == LC_OK))
		value = lc_value_name(h, op->value);
	fprintf(out, "%" PRIu32 " %s %s %s %" PRIu64 " ", op->client,
		kind_names[op->kind], lc_key_name(h, op->key), value, op->invoke);
	if (op->ret == LC_NEVER)
		fputc('-', out);
	else
		fprintf(out, "%" PRIu64, op->ret);
	fprintf(out, " %s", outcome_names[op->outcome]);
}

int lc_history_write(FILE *out, const struct lc_history *h)
{
	fprintf(out, "# ringkv lincheck history v1\n"
		     "# client op key value invoke_ns return_ns outcome\n");
	for (size_t i = 0; i < h->count; i++) {
		lc_op_write(out, h, &h->ops[i]);
		fputc('\n', out);
	}
	return ferror(out) ? -EIO : 0;
}
