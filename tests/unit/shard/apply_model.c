/*
 * The model of the replicated shard's state machine that the shard_apply
 * tests check against (test_shard_apply*.c; see apply_fixture.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <inttypes.h>
#include <ctype.h>
#include <math.h>
#include <stdbool.h>

#include <cmocka.h>

#include "core/errors.h"
#include "shard/command.h"
#include "apply_fixture.h"

struct entry entries[NENTRIES + 1];
struct model_key model[NKEYS];

/* The `now` of the entry being made (0 for some: no expiry seen). */
static uint64_t model_now;

/* What the apply step of an entry with model_now sees of key k. */
static bool model_expired(const struct model_key *m)
{
	return m->present && m->deadline && model_now && model_now > m->deadline;
}

static bool model_live(unsigned k)
{
	return model[k].present && !model_expired(&model[k]);
}

/* What a read sees of key k, by this machine's clock. */
bool model_visible(unsigned k)
{
	return model[k].present &&
	       (model[k].deadline == 0 || model[k].deadline > MODEL_FAR_FUTURE / 2);
}


/* What each entry's waiter should be told (a client asking for the prior
 * value), computed by the model at the entry's place in the log. */
struct expect {
	bool existed;
	bool applied;
	int error;
	int64_t integer;
	size_t old_len;           /* with existed: the previous value */
	char old[APPEND_LIMIT + 1];
};

static struct expect expects[NENTRIES + 1];

static uint64_t rng_state;
/* make_entries: every flush_every-th entry is a FLUSH (0: none). */
unsigned flush_every;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* A deadline for entry i: near its time (expired for reads), or far. */
static uint64_t model_deadline(unsigned i)
{
	if (rnd() % 3 == 0)
		return MODEL_FAR_FUTURE + rnd() % 1000;
	return MODEL_T0 + i + rnd() % 200;
}

void key_name(char *out, unsigned k)
{
	snprintf(out, 16, "key%04u", k);
}

/* Strictly a decimal int64 as INCRBY writes it: '-' or a digit first, no
 * leading zero, the whole text (SETRANGE and SETBIT make values that hold
 * NUL bytes, spaces and digits in any order). */
static bool model_int(const struct model_key *m, long long *out)
{
	char buf[32], *end;
	size_t digits;

	if (m->len == 0 || m->len >= sizeof buf)
		return false;
	memcpy(buf, m->value, m->len);
	buf[m->len] = '\0';
	digits = buf[0] == '-' ? 1 : 0;
	if (!isdigit((unsigned char)buf[digits]) ||
	    (buf[digits] == '0' && (m->len > digits + 1 || digits)))
		return false;
	errno = 0;
	*out = strtoll(buf, &end, 10);
	return errno == 0 && end == buf + m->len;
}

/*
 * INCRBYFLOAT's reading of a value, written here from Redis's documented
 * rules (all of the text is a finite float, no leading space) rather than
 * shared with shard/shard_strings.c, so the two check each other.
 */
static bool model_float(const char *text, size_t len, long double *out)
{
	char buf[64], *end;

	if (len == 0 || len >= sizeof buf || isspace((unsigned char)text[0]))
		return false;
	memcpy(buf, text, len);
	buf[len] = '\0';
	errno = 0;
	*out = strtold(buf, &end);
	return end == buf + len && errno == 0 && isfinite(*out);
}

/* 17 decimals, then no trailing zeros nor point: "10.5", "3", "0". */
static size_t model_float_text(long double v, char *out, size_t cap)
{
	size_t n = (size_t)snprintf(out, cap, "%.17Lf", v);

	while (n > 0 && out[n - 1] == '0')
		n--;
	if (n > 0 && out[n - 1] == '.')
		n--;
	if (n == 2 && memcmp(out, "-0", 2) == 0) {
		out[0] = '0';
		n = 1;
	}
	return n;
}

/* The expected answer of `c` on key k, before model_apply changes it. */
static void model_expect(const struct command *c, unsigned k, struct expect *e)
{
	struct model_key view = model[k];
	const struct model_key *m = &view;
	long long cur = 0;

	if (model_expired(&view)) {
		view.present = false;
		view.deadline = 0;
	}
	memset(e, 0, sizeof *e);
	e->existed = m->present;
	if (m->present) {
		memcpy(e->old, m->value, m->len);
		e->old_len = m->len;
	}
	switch (c->op) {
	case COMMAND_PUT:
		e->applied = true;
		break;
	case COMMAND_PUT_NX:
		e->applied = !m->present;
		break;
	case COMMAND_PUT_XX:
	case COMMAND_DELETE:
		e->applied = m->present;
		break;
	case COMMAND_PUT_AT:
		e->applied = !((c->flags & COMMAND_SET_NX) && m->present) &&
			     !((c->flags & COMMAND_SET_XX) && !m->present);
		break;
	case COMMAND_EXPIRE_AT:
		e->applied = m->present && !((c->flags & COMMAND_EXPIRE_NX) && m->deadline) &&
			     !((c->flags & COMMAND_EXPIRE_XX) && !m->deadline) &&
			     !((c->flags & COMMAND_EXPIRE_GT) &&
			       (!m->deadline || c->deadline <= m->deadline)) &&
			     !((c->flags & COMMAND_EXPIRE_LT) && m->deadline &&
			       c->deadline >= m->deadline);
		break;
	case COMMAND_PERSIST:
		e->applied = m->present && m->deadline;
		break;
	case COMMAND_EXPIRE_DELETE:
		/* by what is stored, expired or not */
		e->applied = model[k].present && model[k].deadline == c->deadline;
		break;
	case COMMAND_AT_TIME:
		fail_msg("AT_TIME is never a decoded op");
		break;
	case COMMAND_INCRBY:
		if (m->present && !model_int(m, &cur)) {
			e->error = RKV_EINVAL;
			break;
		}
		e->applied = true;
		e->integer = cur + c->delta;
		break;
	case COMMAND_FLUSH:
	case COMMAND_MSETNX:
	case COMMAND_RENAME:
	case COMMAND_RENAMENX:
	case COMMAND_COPY:
	case COMMAND_COPY_REPLACE:
		break; /* make_entries: no one key (model_multi) */
	case COMMAND_APPEND:
		if ((m->present ? m->len : 0) + c->value_len > c->limit) {
			e->error = RKV_ETOOLARGE;
			break;
		}
		e->applied = true;
		e->integer = (int64_t)((m->present ? m->len : 0) + c->value_len);
		break;
	case COMMAND_SETRANGE: {
		size_t len = m->present ? m->len : 0;

		if (c->value_len == 0) {
			e->integer = (int64_t)len;
			break;
		}
		if (c->offset + c->value_len > c->limit) {
			e->error = RKV_ETOOLARGE;
			break;
		}
		e->applied = true;
		e->integer = (int64_t)(c->offset + c->value_len > len ? c->offset + c->value_len
								       : len);
		break;
	}
	case COMMAND_SETBIT: {
		size_t byte = (size_t)(c->offset / 8);

		if (byte >= c->limit) {
			e->error = RKV_ETOOLARGE;
			break;
		}
		e->applied = true;
		if (m->present && byte < m->len)
			e->integer = ((uint8_t)m->value[byte] >> (7 - c->offset % 8)) & 1;
		break;
	}
	case COMMAND_INCRBYFLOAT: {
		long double val = 0, incr;

		if ((m->present && !model_float(m->value, m->len, &val)) ||
		    !model_float((const char *)c->value, c->value_len, &incr)) {
			e->error = RKV_EINVAL;
			break;
		}
		/* The answer is the new value, where the old one would be. */
		e->applied = true;
		e->old_len = model_float_text(val + incr, e->old, sizeof e->old);
		break;
	}
	}
}

static void model_apply(const struct command *c, unsigned k)
{
	struct model_key *m = &model[k];
	struct model_key stored;
	bool expired = model_expired(m);
	struct expect e;
	long long cur = 0;

	if (!m->present)
		m->deadline = 0; /* a deleted key's deadline went with it */
	stored = *m;

	/* The command sees an expired key as absent; if it writes nothing,
	 * what is stored stays (an EXPIRE_DELETE may still find it). */
	if (expired && c->op != COMMAND_EXPIRE_DELETE) {
		m->present = false;
		m->deadline = 0;
	}
	switch (c->op) {
	case COMMAND_PUT:
		m->present = true;
		memcpy(m->value, c->value, c->value_len);
		m->len = c->value_len;
		m->deadline = 0;
		break;
	case COMMAND_PUT_AT:
		model_now = 0; /* the view is already taken */
		model_expect(c, k, &e);
		if (e.applied) {
			uint64_t keep = m->deadline;

			model_apply(&(struct command){ .op = COMMAND_PUT, .value = c->value,
						       .value_len = c->value_len }, k);
			m->deadline = (c->flags & COMMAND_SET_KEEPTTL) ? keep : c->deadline;
		}
		break;
	case COMMAND_EXPIRE_AT: {
		uint64_t now = model_now;

		model_now = 0;
		model_expect(c, k, &e);
		if (e.applied) {
			if (now && c->deadline <= now)
				m->present = false;
			else
				m->deadline = c->deadline;
		}
		break;
	}
	case COMMAND_PERSIST:
		if (m->present)
			m->deadline = 0;
		break;
	case COMMAND_EXPIRE_DELETE:
		if (m->present && m->deadline == c->deadline)
			m->present = false;
		break;
	case COMMAND_AT_TIME:
		break;
	case COMMAND_PUT_NX:
		if (!m->present) {
			model_now = 0;
			model_apply(&(struct command){ .op = COMMAND_PUT, .value = c->value,
						       .value_len = c->value_len }, k);
		}
		break;
	case COMMAND_PUT_XX:
		if (m->present) {
			model_now = 0;
			model_apply(&(struct command){ .op = COMMAND_PUT, .value = c->value,
						       .value_len = c->value_len }, k);
		}
		break;
	case COMMAND_DELETE:
		m->present = false;
		break;
	case COMMAND_FLUSH:
		memset(model, 0, sizeof model);
		break;
	case COMMAND_MSETNX:
	case COMMAND_RENAME:
	case COMMAND_RENAMENX:
	case COMMAND_COPY:
	case COMMAND_COPY_REPLACE:
		break; /* model_multi */
	case COMMAND_INCRBY:
		if (m->present && !model_int(m, &cur))
			break;
		m->present = true;
		m->len = (size_t)snprintf(m->value, sizeof m->value, "%lld", cur + c->delta);
		break;
	case COMMAND_APPEND:
		if (!m->present)
			m->len = 0;
		if (m->len + c->value_len > c->limit)
			break;
		memcpy(m->value + m->len, c->value, c->value_len);
		m->len += c->value_len;
		m->present = true;
		break;
	case COMMAND_SETRANGE:
		if (!m->present)
			m->len = 0;
		if (c->value_len == 0 || c->offset + c->value_len > c->limit)
			break;
		while (m->len < c->offset + c->value_len)
			m->value[m->len++] = '\0';
		memcpy(m->value + c->offset, c->value, c->value_len);
		m->present = true;
		break;
	case COMMAND_SETBIT:
		if (!m->present)
			m->len = 0;
		if (c->offset / 8 >= c->limit)
			break;
		while (m->len <= c->offset / 8)
			m->value[m->len++] = '\0';
		if (c->value[0])
			m->value[c->offset / 8] |= (char)(0x80 >> (c->offset % 8));
		else
			m->value[c->offset / 8] &= (char)~(0x80 >> (c->offset % 8));
		m->present = true;
		break;
	case COMMAND_INCRBYFLOAT:
		model_now = 0;
		model_expect(c, k, &e);
		if (e.error)
			break;
		memcpy(m->value, e.old, e.old_len);
		m->len = e.old_len;
		m->present = true;
		break;
	}
	if (expired && !m->present && c->op != COMMAND_DELETE && c->op != COMMAND_EXPIRE_DELETE)
		*m = stored; /* nothing written */
}

/* The key index of a key name made by key_name. */
static unsigned key_index(const uint8_t *key, uint32_t len)
{
	char buf[16];

	assert_true(len > 3 && len < sizeof buf);
	memcpy(buf, key, len);
	buf[len] = '\0';
	return (unsigned)atoi(buf + 3);
}

/*
 * The multi-key commands, written from their description in
 * shard/command.h: the expected answer in *e, then their effect on the
 * model.
 */
static void model_multi(const struct command *c, struct expect *e)
{
	memset(e, 0, sizeof *e);
	if (c->op == COMMAND_MSETNX) {
		struct command_pair p;
		size_t pos = 0;
		bool any = false;

		while (command_pair_next(c, &pos, &p))
			any |= model_live(key_index(p.key, p.key_len));
		if (any)
			return;
		pos = 0;
		while (command_pair_next(c, &pos, &p)) {
			struct model_key *m = &model[key_index(p.key, p.key_len)];

			m->present = true;
			memcpy(m->value, p.value, p.value_len);
			m->len = p.value_len;
			m->deadline = 0;
		}
		e->applied = true;
		return;
	}
	unsigned from = key_index(c->key, c->key_len), to = key_index(c->value, c->value_len);
	bool rename = c->op == COMMAND_RENAME || c->op == COMMAND_RENAMENX;

	e->existed = model_live(from);
	if (!e->existed) {
		e->error = rename ? RKV_ENOTFOUND : 0;
		return;
	}
	if (from == to) {
		e->applied = c->op == COMMAND_RENAME;
		return;
	}
	if (model_live(to) && (c->op == COMMAND_RENAMENX || c->op == COMMAND_COPY))
		return;
	model[to] = model[from]; /* the deadline with it */
	if (rename)
		model[from].present = false;
	e->applied = true;
}

/*
 * Entries 1..NENTRIES: a mix of every command over NKEYS keys (every
 * twentieth a NOOP), applied to the model as they are made, so
 * model[] is the state after all of them. Values of 60-250 bytes fill a
 * 64 KiB memtable every ~300 entries.
 */
void make_entries(uint64_t seed)
{
	static char value[300];
	static char key[16];

	rng_state = seed;
	memset(model, 0, sizeof model);
	for (unsigned i = 1; i <= NENTRIES; i++) {
		struct entry *e = &entries[i];
		unsigned k = (unsigned)(rnd() % NKEYS);
		unsigned r = (unsigned)(rnd() % 100);
		size_t vlen = 60 + rnd() % 190;
		struct command c = { 0 };

		e->noop = i % 20 == 0;
		memset(&expects[i], 0, sizeof expects[i]);
		/* Most entries carry their proposer's time; some none. */
		model_now = rnd() % 10 ? MODEL_T0 + i : 0;
		c.now = model_now;
		if (e->noop) {
			e->len = 0;
			continue;
		}
		if (flush_every && i % flush_every == 0) {
			c.op = COMMAND_FLUSH;
			e->len = command_encode(&c, e->bytes);
			model_apply(&c, k);
			continue;
		}
		key_name(key, k);
		memset(value, 'v', vlen);
		snprintf(value + 1, 12, "%06u", i);
		value[7] = '.';
		c.key = (const uint8_t *)key;
		c.key_len = (uint32_t)strlen(key);
		c.value = (const uint8_t *)value;
		c.value_len = (uint32_t)vlen;
		if (r < 35 && rnd() % 3 == 0) {
			/* SET with EX/PX/KEEPTTL and NX/XX */
			static const uint8_t flags[] = {
				0, 0, COMMAND_SET_NX, COMMAND_SET_XX, COMMAND_SET_KEEPTTL,
				COMMAND_SET_XX | COMMAND_SET_KEEPTTL,
			};

			c.op = COMMAND_PUT_AT;
			c.flags = flags[rnd() % 6];
			c.deadline = (c.flags & COMMAND_SET_KEEPTTL) || rnd() % 5 == 0 ?
					     0 : model_deadline(i);
			/* Often a number: INCRBY must keep the deadline. */
			if (rnd() % 2)
				c.value_len = (uint32_t)snprintf(value, sizeof value, "%u",
								 (unsigned)(rnd() % 1000));
		} else if (r >= 35 && r < 45 && rnd() % 2 == 0) {
			/* Half the deletes' share: EXPIRE*, PERSIST and the
			 * leader's EXPIRE_DELETE (so the bytes written, and the
			 * flushes they cause, stay as they were). */
			static const uint8_t flags[] = {
				0, 0, COMMAND_EXPIRE_NX, COMMAND_EXPIRE_XX, COMMAND_EXPIRE_GT,
				COMMAND_EXPIRE_LT, COMMAND_EXPIRE_XX | COMMAND_EXPIRE_GT,
				COMMAND_EXPIRE_XX | COMMAND_EXPIRE_LT,
			};

			c.op = COMMAND_EXPIRE_AT;
			c.flags = flags[rnd() % 8];
			/* now and then already past: the key goes at once */
			c.deadline = rnd() % 8 == 0 ? MODEL_T0 + i - rnd() % 5 : model_deadline(i);
			c.value = NULL;
			c.value_len = 0;
		} else if (r >= 35 && r < 45 && rnd() % 2 == 0) {
			c.op = rnd() % 2 ? COMMAND_PERSIST : COMMAND_EXPIRE_DELETE;
			/* mostly the deadline the key holds (what the leader saw) */
			c.deadline = model[k].present && model[k].deadline && rnd() % 4 ?
					     model[k].deadline : model_deadline(i);
			if (c.op == COMMAND_PERSIST)
				c.deadline = 0;
			c.value = NULL;
			c.value_len = 0;
		} else if (r < 35) {
			c.op = COMMAND_PUT;
		} else if (r < 45) {
			c.op = COMMAND_DELETE;
			c.value = NULL;
			c.value_len = 0;
		} else if (r < 65) {
			c.op = COMMAND_INCRBY;
			c.value = NULL;
			c.value_len = 0;
			c.delta = (int64_t)(rnd() % 2001) - 1000;
		} else if (r < 80) {
			c.op = COMMAND_APPEND;
			value[0] = 'a';
			c.value_len = (uint32_t)(5 + rnd() % 60);
			c.limit = APPEND_LIMIT;
		} else if (r < 83) {
			/* Offsets past the limit now and then: refused. */
			c.op = COMMAND_SETRANGE;
			memset(value, 's', 20);
			c.value_len = (uint32_t)(rnd() % 21);
			c.offset = rnd() % 100 < 5 ? APPEND_LIMIT - 10 + rnd() % 20 : rnd() % 120;
			c.limit = APPEND_LIMIT;
		} else if (r < 86) {
			c.op = COMMAND_SETBIT;
			value[0] = (char)(rnd() % 2);
			c.value_len = 1;
			c.offset = rnd() % 100 < 5 ? 8 * APPEND_LIMIT - 10 + rnd() % 20
						    : rnd() % 800;
			c.limit = APPEND_LIMIT;
		} else if (r < 90) {
			/* Halves and tenths: "10.5", "0.1" + "0.2" = "0.3". */
			c.op = COMMAND_INCRBYFLOAT;
			c.value_len = (uint32_t)snprintf(value, sizeof value, "%s%u.%u",
							 rnd() % 3 ? "" : "-",
							 (unsigned)(rnd() % 50),
							 (unsigned)(rnd() % 10));
		} else if (r < 92) {
			c.op = COMMAND_PUT_NX;
		} else if (r < 97) {
			/* Multi-key: MSETNX of 1-3 keys (now and then a key
			 * twice), RENAME*, COPY* between keys, sometimes one
			 * key onto itself. */
			static uint8_t pairs[300];
			static char other[16];
			uint8_t *p = pairs;

			if (r < 94) {
				unsigned n = 1 + (unsigned)(rnd() % 3);

				for (unsigned j = 0; j < n; j++) {
					char pk[16];
					unsigned kk = j == 0 ? k : (unsigned)(rnd() % NKEYS);
					uint32_t vl = (uint32_t)(10 + rnd() % 50);

					key_name(pk, kk);
					snprintf(value, 12, "m%06u.%u", i, j);
					p = command_pair_put(p, pk, (uint32_t)strlen(pk), value, vl);
				}
				c.op = COMMAND_MSETNX;
				c.key = NULL;
				c.key_len = 0;
				c.value = pairs;
				c.value_len = (uint32_t)(p - pairs);
			} else {
				static const enum command_op ops[] = {
					COMMAND_RENAME, COMMAND_RENAMENX, COMMAND_COPY,
					COMMAND_COPY_REPLACE,
				};

				c.op = ops[rnd() % 4];
				key_name(other, rnd() % 10 == 0 ? k : (unsigned)(rnd() % NKEYS));
				c.value = (const uint8_t *)other;
				c.value_len = (uint32_t)strlen(other);
			}
			assert_true(command_encoded_size(&c) <= sizeof e->bytes);
			e->len = command_encode(&c, e->bytes);
			model_multi(&c, &expects[i]);
			continue;
		} else {
			c.op = COMMAND_PUT_XX;
		}
		assert_true(command_encoded_size(&c) <= sizeof e->bytes);
		e->len = command_encode(&c, e->bytes);
		model_expect(&c, k, &expects[i]);
		model_apply(&c, k);
	}
}

struct client clients[NENTRIES + 1];

void client_done(struct shard_waiter *w, int rv, const struct shard_result *res)
{
	struct client *c = (struct client *)w;

	c->done++;
	c->rv = rv;
	if (!res)
		return;
	c->res = *res;
	c->old_len = res->old_value ? res->old_len : 0;
	if (res->old_value && res->old_len <= APPEND_LIMIT)
		memcpy(c->old, res->old_value, res->old_len);
	c->res.old_value = NULL;
}

/* Every entry answered once, as the model says. */
void check_answers(void)
{
	for (unsigned i = 1; i <= NENTRIES; i++) {
		const struct client *c = &clients[i];
		const struct expect *e = &expects[i];

		if (c->done != 1 || c->rv != 0)
			fail_msg("entry %u: answered %d times, rv %d", i, c->done, c->rv);
		if (c->res.existed != e->existed || c->res.applied != e->applied ||
		    c->res.error != e->error || c->res.integer != e->integer) {
			struct command cmd = { 0 };

			(void)command_decode(entries[i].bytes, entries[i].len, &cmd);
			if (getenv("DEBUG_HISTORY"))
				for (unsigned j = 1; j < i; j++) {
					struct command o = { 0 };

					if (entries[j].noop || command_decode(entries[j].bytes, entries[j].len, &o) ||
					    !((o.key_len == cmd.key_len && !memcmp(o.key, cmd.key, o.key_len)) ||
					      command_is_multi(o.op) || o.op == COMMAND_FLUSH))
						continue;
					print_error("  %u: op %d key %.*s val %.*s flags %u now %" PRIu64 " dl %" PRIu64 " -> ex %d ap %d\n", j, o.op, (int)o.key_len, (const char *)o.key, (int)(o.value_len > 20 ? 20 : o.value_len), o.value ? (const char *)o.value : "", o.flags, o.now, o.deadline, clients[j].res.existed, clients[j].res.applied);
				}
			fail_msg("entry %u (op %d flags %u now %" PRIu64 " deadline %" PRIu64
				 "): existed %d applied %d error %d integer %" PRId64
				 ", the model says %d %d %d %" PRId64, i, cmd.op, cmd.flags, cmd.now,
				 cmd.deadline, c->res.existed, c->res.applied, c->res.error,
				 c->res.integer, e->existed, e->applied, e->error, e->integer);
		}
		if (e->existed && !entries[i].noop) {
			assert_int_equal(c->old_len, e->old_len);
			assert_memory_equal(c->old, e->old, e->old_len);
		}
	}
}
