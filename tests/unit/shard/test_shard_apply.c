/*
 * The shard in replicated mode (shard/shard_apply.c), on a real io_uring
 * ring with 64 KiB memtables, so entries land in SSTables quickly:
 * committed entries applied in order agree with a model of the state
 * machine and between shards driven at different paces (read-modify-write
 * commands whose current value lives only in tables included); a restart
 * starts at the flushed index and replaying the log above it gives the
 * same contents; entries at or below the applied index are skipped; an
 * entry that waits for a block read holds back the entries after it; the
 * queue refuses entries while flushes lag and says when to resume;
 * undecodable payloads and NOOPs advance the applied index alike on every
 * shard; a snapshot shipped in chunks and installed gives a replica that,
 * with the log after the snapshot's index, holds the same contents.
 * FLUSH entries (shard/shard_drop.c) in the mix drop every key on every
 * replica at their place in the log, whatever flush or compaction runs,
 * survive a reopen, and a snapshot taken after one carries the empty state.
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
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/errors.h"
#include "io/ring.h"
#include "shard/block_cache.h"
#include "shard/command.h"
#include "shard/deadline_index.h"
#include "shard/shard.h"
#include "shard_test.h"

#define NKEYS 160
#define NENTRIES 4000
#define APPEND_LIMIT 700
#define MEMTABLE (64u << 10)

struct hooks {
	uint64_t flushed[256];  /* flushed indexes reported, in order */
	unsigned nflushed;
	unsigned ready;         /* on_apply_ready calls */
};

struct fixture {
	char dir[64];
	struct io_ring io;
	struct block_cache *cache;
	struct shard *s[2];
	struct hooks hooks[2];
};

/* ---- the entries and a model of their effect ---- */

struct entry {
	uint8_t bytes[400];
	size_t len;
	bool noop;
};

static struct entry entries[NENTRIES + 1]; /* 1-based, like log indexes */

struct model_key {
	bool present;             /* stored, expired or not */
	char value[APPEND_LIMIT + 1];
	size_t len;
	uint64_t deadline;        /* 0: none */
};

static struct model_key model[NKEYS];

/*
 * Expiry in the model (shard/command.h): entry i carries now = MODEL_T0 + i
 * (most of them; model_now 0 for the others), so the apply step sees keys
 * expire as the log goes on. Deadlines are either near that time (years
 * before this machine's clock: every read sees them expired) or
 * MODEL_FAR_FUTURE + x (after it: reads see the value).
 */
#define MODEL_T0 1000000000000ull          /* 2001 */
#define MODEL_FAR_FUTURE 4000000000000ull  /* 2096 */
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
static bool model_visible(unsigned k)
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
static unsigned flush_every;

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

static void key_name(char *out, unsigned k)
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
static void make_entries(uint64_t seed)
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

/* A client's waiter that keeps its whole answer. */
struct client {
	struct shard_waiter w;
	int done;
	int rv;
	struct shard_result res;
	size_t old_len;
	char old[APPEND_LIMIT + 1];
};

static struct client clients[NENTRIES + 1];

static void client_done(struct shard_waiter *w, int rv, const struct shard_result *res)
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
static void check_answers(void)
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

/* ---- driving shards ---- */

static void on_flushed(void *arg, struct shard *s, uint64_t flushed_index)
{
	struct hooks *h = arg;

	assert_int_equal(flushed_index, shard_flushed_index(s));
	if (h->nflushed < sizeof h->flushed / sizeof h->flushed[0])
		h->flushed[h->nflushed++] = flushed_index;
}

static void on_ready(void *arg, struct shard *s)
{
	struct hooks *h = arg;

	(void)s;
	h->ready++;
}

static struct shard *open_rep(struct fixture *f, int slot, const char *name,
			      uint64_t apply_limit)
{
	char dir[128], err[512];
	struct shard_config cfg = {
		.id = (uint32_t)slot, .dir = dir, .memtable_size = MEMTABLE, .cache = f->cache,
		.table_size = 32 << 10, .level_base = 16 << 10, .block_size = 1024,
		.replicated = true, .apply_limit = apply_limit, .on_flushed = on_flushed,
		.on_apply_ready = on_ready, .hook_arg = &f->hooks[slot],
	};

	snprintf(dir, sizeof dir, "%s/%s", f->dir, name);
	if (shard_open(&f->s[slot], &cfg, &f->io, err, sizeof err))
		fail_msg("shard_open: %s", err);
	return f->s[slot];
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	/* Small: table blocks fall out, so current values must be read. */
	struct block_cache_options copt = { .capacity = 64 << 10 };
	char err[256];

	flush_every = 0;
	strcpy(f->dir, "/tmp/ringkv-apply-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(io_ring_init(&f->io, 256, err, sizeof err), 0);
	assert_int_equal(block_cache_create(&f->cache, &copt), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	shard_close(f->s[0]);
	shard_close(f->s[1]);
	block_cache_destroy(f->cache);
	io_ring_exit(&f->io);
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void turn(struct fixture *f)
{
	for (int i = 0; i < 2; i++)
		if (f->s[i])
			shard_flush(f->s[i]);
	assert_int_equal(io_ring_submit_wait(&f->io, 1000), 0);
	io_ring_dispatch(&f->io);
}

static bool settled(struct shard *s)
{
	return !s || (shard_idle(s) && shard_background_idle(s));
}

static void settle(struct fixture *f)
{
	for (int i = 0; i < 200000 && !(settled(f->s[0]) && settled(f->s[1])); i++)
		turn(f);
	assert_true(settled(f->s[0]));
	assert_true(settled(f->s[1]));
}

static int apply_entry(struct shard *s, uint64_t index, struct shard_waiter *w)
{
	const struct entry *e = &entries[index];

	if (e->noop)
		return shard_apply(s, index, SHARD_ENTRY_NOOP, NULL, 0, w);
	return shard_apply(s, index, SHARD_ENTRY_COMMAND, e->bytes, e->len, w);
}

/* Hands in entries [from, to], turning the ring while the shard refuses;
 * `with_clients`: each with its client's waiter, asking for the prior value. */
static void apply_range_as(struct fixture *f, struct shard *s, uint64_t from, uint64_t to,
			   unsigned turn_every, bool with_clients)
{
	for (uint64_t i = from; i <= to; i++) {
		struct shard_waiter *w = NULL;
		int rv;

		if (with_clients) {
			memset(&clients[i], 0, sizeof clients[i]);
			clients[i].w.done = client_done;
			clients[i].w.want_prior = true;
			w = &clients[i].w;
		}
		for (int tries = 0; (rv = apply_entry(s, i, w)) == RKV_EAGAIN; tries++) {
			assert_true(tries < 100000);
			turn(f);
		}
		assert_int_equal(rv, 0);
		if (turn_every && i % turn_every == 0)
			turn(f);
	}
}

static void apply_range(struct fixture *f, struct shard *s, uint64_t from, uint64_t to,
			unsigned turn_every)
{
	apply_range_as(f, s, from, to, turn_every, false);
}

struct scan_state {
	unsigned keys;
	bool bad;
	int done;
	int rv;
};

static bool scan_visit(void *arg, const void *key, size_t key_len, const void *value,
		       size_t value_len)
{
	struct scan_state *st = arg;
	char name[16], text[8];
	unsigned k;

	if (key_len == 7)
		memcpy(text, key, 7);
	text[7] = '\0';
	if (key_len != 7 || sscanf(text + 3, "%4u", &k) != 1 || k >= NKEYS) {
		st->bad = true;
		return true;
	}
	key_name(name, k);
	if (memcmp(name, key, 7) != 0 || !model_visible(k) || model[k].len != value_len ||
	    memcmp(model[k].value, value, value_len) != 0) {
		print_error("key %.*s differs from the model\n", (int)key_len, (const char *)key);
		st->bad = true;
	}
	st->keys++;
	return true;
}

static void scan_end(void *arg, int rv, bool exhausted, const void *last, size_t last_len)
{
	struct scan_state *st = arg;

	(void)exhausted;
	(void)last;
	(void)last_len;
	st->done++;
	st->rv = rv;
}

/* Every key of the model, read back by get and (`scan`) by one scan, and
 * nothing else. */
static void check_model_keys(struct fixture *f, struct shard *s, bool scan)
{
	struct scan_state st = { 0 };
	unsigned present = 0;

	for (unsigned k = 0; k < NKEYS; k++) {
		struct get_result g;
		char name[16];
		int rv;

		key_name(name, k);
		rv = shard_test_get(s, &f->io, name, &g);
		if (!model_visible(k)) {
			if (rv != RKV_ENOTFOUND)
				fail_msg("%s: expected absent, got %d", name, rv);
			continue;
		}
		present++;
		if (rv != 0)
			fail_msg("%s: expected a value, got %d", name, rv);
		assert_int_equal(g.len, model[k].len);
		assert_memory_equal(g.value, model[k].value,
				    g.len < sizeof g.value ? g.len : sizeof g.value);
	}
	if (!scan)
		return;
	assert_int_equal(shard_scan(s, "", 0, false, 100000, scan_visit, scan_end, &st), 0);
	for (int i = 0; i < 100000 && !st.done; i++) {
		assert_int_equal(io_ring_submit_wait(&f->io, 1000), 0);
		io_ring_dispatch(&f->io);
	}
	assert_int_equal(st.done, 1);
	assert_int_equal(st.rv, 0);
	assert_false(st.bad);
	assert_int_equal(st.keys, present);
}

/*
 * The deadline index (shard/deadline_index.h) against the model: every key
 * it holds is stored with that deadline (so while it is incomplete it is
 * never wrong); `whole`: it holds every stored key with a deadline.
 */
static void check_index_entries(struct shard *s, bool whole)
{
	const struct deadline_index *x = shard_deadline_index(s);
	size_t with = 0, held = 0;

	for (unsigned k = 0; k < NKEYS; k++) {
		char name[16];
		uint64_t d;

		key_name(name, k);
		d = deadline_index_get(x, name, 7);
		if (model[k].present && model[k].deadline)
			with++;
		if (!d)
			continue;
		held++;
		if (!model[k].present || model[k].deadline != d)
			fail_msg("%s: index has deadline %" PRIu64 ", model %s %" PRIu64, name, d,
				 model[k].present ? "present with" : "absent", model[k].deadline);
	}
	assert_int_equal(deadline_index_count(x), held);
	if (whole)
		assert_int_equal(held, with);
}

static void rebuild_step_done(void *arg)
{
	(*(int *)arg)++;
}

/* Runs rebuild steps of a few keys each until the index is complete;
 * `model`: checked against the model at each step and at the end. */
static void rebuild_index(struct fixture *f, struct shard *s, bool with_model)
{
	for (int i = 0; i < 100000 && !shard_deadlines_complete(s); i++) {
		int done = 0, rv = shard_deadlines_rebuild_step(s, 1 + i % 13, rebuild_step_done,
								&done);

		assert_true(rv == 0 || rv == 1);
		for (int j = 0; rv == 0 && j < 100000 && !done; j++)
			turn(f);
		if (with_model)
			check_index_entries(s, false);
	}
	assert_true(shard_deadlines_complete(s));
	if (with_model)
		check_index_entries(s, true);
}

static void check_model(struct fixture *f, struct shard *s)
{
	check_model_keys(f, s, true);
	check_index_entries(s, shard_deadlines_complete(s));
	rebuild_index(f, s, true);
}

/* A restart of the shard in `slot`: reopened at its flushed index, the log
 * above it handed in again, it holds the model. */
static void reopen_replay(struct fixture *f, int slot, const char *name)
{
	shard_close(f->s[slot]);
	f->s[slot] = NULL;
	open_rep(f, slot, name, 0);
	/* The deadline index is rebuilt by small steps while the log is
	 * applied: steps that meet a write must not record older values. */
	for (uint64_t i = shard_flushed_index(f->s[slot]) + 1; i <= NENTRIES; i++) {
		int done = 0;

		apply_range(f, f->s[slot], i, i, 0);
		if (i % 3 == 0) {
			(void)shard_deadlines_rebuild_step(f->s[slot], 2 + i % 5, NULL, &done);
			turn(f);
		}
	}
	settle(f);
	check_model(f, f->s[slot]);
}

/* ---- tests ---- */

/* The entries of `seed` into shard "a", one at a time with the ring turning
 * often and a client waiting on every entry, asking for the prior value (a
 * leader), and into "b" as fast as it takes them with no waiters (a
 * follower); settled, and every client told what the model says. */
static void feed_two_paces(struct fixture *f, uint64_t seed)
{
	make_entries(seed);
	open_rep(f, 0, "a", 0);
	open_rep(f, 1, "b", 0);
	apply_range_as(f, f->s[0], 1, NENTRIES, 1, true);
	apply_range(f, f->s[1], 1, NENTRIES, 0);
	settle(f);
	check_answers();
}

/*
 * Two shards, one fed an entry at a time with the ring turning often and a
 * client waiting on every entry (a leader), the other fed as fast as it
 * takes them with no waiters (a follower): both end equal to the model,
 * with flushes and compactions behind them and current values read from
 * tables, and every client is told what the model says its command did.
 */
static void test_two_paces_same_state(void **state)
{
	struct fixture *f = *state;
	struct shard_stats st[2];

	feed_two_paces(f, 0x9e3779b97f4a7c15ull);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(shard_applied_index(f->s[i]), NENTRIES);
		shard_get_stats(f->s[i], &st[i]);
		assert_true(st[i].flushes >= 4);
		assert_true(st[i].compactions >= 1);
		assert_int_equal(st[i].applied, NENTRIES);
		assert_int_equal(st[i].apply_errors, 0);
		check_model(f, f->s[i]);
	}
	/* Some current values came from blocks that had to be read. */
	assert_true(st[0].block_reads > 0 || st[1].block_reads > 0);
	/* The hook saw every flush, in order, ending at the flushed index. */
	for (int i = 0; i < 2; i++) {
		const struct hooks *h = &f->hooks[i];

		assert_true(h->nflushed >= 4);
		for (unsigned j = 1; j < h->nflushed; j++)
			assert_true(h->flushed[j] >= h->flushed[j - 1]);
		assert_int_equal(h->flushed[h->nflushed - 1], shard_flushed_index(f->s[i]));
	}
}

/*
 * A restart keeps only what reached SSTables: the shard reopens at its
 * flushed index, skips the log's entries up to it and applies the rest,
 * ending where a shard that never restarted ends.
 */
static void test_restart_replays_above_flushed_index(void **state)
{
	struct fixture *f = *state;
	struct waiter old = { .w.done = on_done };
	struct shard_stats st;
	uint64_t flushed;

	make_entries(0x1234567ull);
	open_rep(f, 0, "r", 0);
	apply_range(f, f->s[0], 1, NENTRIES / 2, 3);
	settle(f);
	flushed = shard_flushed_index(f->s[0]);
	assert_true(flushed > 0 && flushed < NENTRIES / 2);
	assert_int_equal(shard_applied_index(f->s[0]), NENTRIES / 2);

	shard_close(f->s[0]);
	f->s[0] = NULL;
	open_rep(f, 0, "r", 0);
	assert_int_equal(shard_applied_index(f->s[0]), flushed);
	assert_int_equal(shard_flushed_index(f->s[0]), flushed);
	assert_int_equal(shard_apply_last(f->s[0]), flushed);

	/* An entry the tables already hold: answered, nothing done. */
	assert_int_equal(apply_entry(f->s[0], flushed, &old.w), 0);
	assert_int_equal(old.done, 1);
	assert_int_equal(old.rv, -EALREADY);
	/* The log from its start again: up to `flushed` skipped. */
	apply_range(f, f->s[0], 1, NENTRIES, 2);
	settle(f);
	shard_get_stats(f->s[0], &st);
	assert_int_equal(st.apply_skipped, flushed + 1);
	assert_int_equal(st.applied, NENTRIES - flushed);
	assert_int_equal(shard_applied_index(f->s[0]), NENTRIES);
	check_model(f, f->s[0]);

	/* And once more after a restart with everything applied. */
	reopen_replay(f, 0, "r");
}

static unsigned answer_seq;

struct ordered {
	struct waiter x;
	unsigned seq;
};

static void on_done_ordered(struct shard_waiter *w, int rv, const struct shard_result *res)
{
	struct ordered *o = (struct ordered *)w;

	on_done(w, rv, res);
	o->seq = ++answer_seq;
}

static struct command incrby_cmd(const char *k, int64_t delta)
{
	return (struct command){ .op = COMMAND_INCRBY, .key = (const uint8_t *)k,
				 .key_len = (uint32_t)strlen(k), .delta = delta };
}

static int apply_cmd(struct shard *s, uint64_t index, struct command c,
		     struct shard_waiter *w)
{
	uint8_t buf[512];
	size_t len = command_encode(&c, buf);

	return shard_apply(s, index, SHARD_ENTRY_COMMAND, buf, len, w);
}

/*
 * The deadline index's rebuild meets writes: keys with deadlines in tables
 * only, a rebuild step that waits for a block, and meanwhile every one of
 * those keys written again without a deadline (and a few with another).
 * Once rebuilt, the index holds exactly the new deadlines: nothing the
 * step read before the writes landed.
 */
/*
 * A rebuild step waiting for a block while every key is written again:
 * with `some_deadlines`, one key in 100 gets a new deadline (the index
 * exists again by then); without, none does, so the writes land while the
 * shard has no index at all, and must still stop the step.
 */
static void rebuild_meets_writes(struct fixture *f, bool some_deadlines)
{
	char key[32], value[128];
	uint64_t i = 1;
	const unsigned n = 1500;
	int done = 0;

	open_rep(f, 0, "ix", 0);
	assert_true(shard_deadlines_complete(f->s[0]));
	memset(value, 'v', 100);
	value[100] = '\0';
	for (unsigned k = 0; k < n; k++, i++) {
		struct command c;

		snprintf(key, sizeof key, "dk%05u", k);
		c = put_cmd(key, value);
		c.op = COMMAND_PUT_AT;
		c.deadline = MODEL_FAR_FUTURE + k;
		assert_int_equal(apply_cmd(f->s[0], i, c, NULL), 0);
		if (k % 16 == 0)
			turn(f);
	}
	settle(f);
	assert_int_equal(deadline_index_count(shard_deadline_index(f->s[0])), n);
	/* Everything in tables: the memtable is flushed by a restart. */
	shard_close(f->s[0]);
	f->s[0] = NULL;
	open_rep(f, 0, "ix", 0);
	assert_false(shard_deadlines_complete(f->s[0]));
	/* Whatever is left of it in the small cache goes: closed first, the
	 * shard's tables take their blocks out of the cache it was given. */
	shard_close(f->s[0]);
	f->s[0] = NULL;
	block_cache_destroy(f->cache);
	assert_int_equal(block_cache_create(&f->cache, &(struct block_cache_options){
		.capacity = 64 << 10 }), 0);
	open_rep(f, 0, "ix", 0);
	i = shard_applied_index(f->s[0]) + 1;
	assert_int_equal(shard_deadlines_rebuild_step(f->s[0], 100000, rebuild_step_done, &done),
			 0);
	assert_int_equal(done, 0); /* it waits for a block */
	for (unsigned k = 0; k < n; k++, i++) {
		struct command c;

		snprintf(key, sizeof key, "dk%05u", k);
		c = put_cmd(key, "plain");
		if (some_deadlines && k % 100 == 7) {
			c.op = COMMAND_PUT_AT;
			c.deadline = MODEL_FAR_FUTURE + 5000 + k;
		}
		assert_int_equal(apply_cmd(f->s[0], i, c, NULL), 0);
	}
	for (int j = 0; j < 100000 && !done; j++)
		turn(f);
	assert_int_equal(done, 1);
	rebuild_index(f, f->s[0], false);
	assert_int_equal(deadline_index_count(shard_deadline_index(f->s[0])),
			 some_deadlines ? n / 100 : 0);
	for (unsigned k = 7; some_deadlines && k < n; k += 100) {
		snprintf(key, sizeof key, "dk%05u", k);
		assert_int_equal(deadline_index_get(shard_deadline_index(f->s[0]), key, 7),
				 MODEL_FAR_FUTURE + 5000 + k);
	}
	/* A FLUSH empties it, complete. */
	assert_int_equal(apply_cmd(f->s[0], i, (struct command){ .op = COMMAND_FLUSH }, NULL),
			 0);
	settle(f);
	assert_true(shard_deadlines_complete(f->s[0]));
	assert_int_equal(deadline_index_count(shard_deadline_index(f->s[0])), 0);
}

static void test_index_rebuild_meets_writes(void **state)
{
	rebuild_meets_writes(*state, true);
}

static void test_index_rebuild_meets_plain_writes(void **state)
{
	rebuild_meets_writes(*state, false);
}

/*
 * INCRBY of a key held only by an SSTable whose block is not cached waits
 * for the block; the PUT of the same key right behind it waits too and
 * lands after it; reads meanwhile see the applied state.
 */
static void test_order_across_block_read(void **state)
{
	struct fixture *f = *state;
	struct ordered incr = { .x.w.done = on_done_ordered };
	struct ordered put = { .x.w.done = on_done_ordered };
	struct ordered del = { .x.w.done = on_done_ordered, .x.w.want_prior = true };
	struct block_cache_options copt = { .capacity = 64 << 10 };
	struct get_result g;
	uint64_t i = 1;
	char filler[16], value[200];

	open_rep(f, 0, "o", 0);
	assert_int_equal(apply_cmd(f->s[0], i++, put_cmd("counter", "5"), NULL), 0);
	memset(value, 'f', sizeof value - 1);
	value[sizeof value - 1] = '\0';
	while (shard_flushed_index(f->s[0]) < 1) {
		snprintf(filler, sizeof filler, "f%05u", (unsigned)i);
		assert_int_equal(apply_cmd(f->s[0], i++, put_cmd(filler, value), NULL), 0);
		turn(f);
	}
	settle(f);
	/* A cold cache: the counter's block must come from disk. */
	shard_close(f->s[0]);
	f->s[0] = NULL;
	block_cache_destroy(f->cache);
	assert_int_equal(block_cache_create(&f->cache, &copt), 0);
	open_rep(f, 0, "o", 0);
	i = shard_applied_index(f->s[0]) + 1;

	assert_int_equal(apply_cmd(f->s[0], i, incrby_cmd("counter", 1), &incr.x.w), 0);
	assert_int_equal(apply_cmd(f->s[0], i + 1, put_cmd("counter", "100"), &put.x.w), 0);
	assert_int_equal(apply_cmd(f->s[0], i + 2, put_cmd("other", "x"), NULL), 0);
	assert_int_equal(incr.x.done, 0);
	assert_int_equal(put.x.done, 0);
	assert_int_equal(shard_applied_index(f->s[0]), i - 1);
	assert_int_equal(shard_apply_pending(f->s[0], NULL), 3);
	assert_int_equal(shard_apply_last(f->s[0]), i + 2);
	assert_false(shard_idle(f->s[0]));
	/* Not applied yet: the PUT behind the read is invisible. */
	assert_int_equal(shard_test_get(f->s[0], &f->io, "other", &g), RKV_ENOTFOUND);

	settle(f);
	assert_int_equal(incr.x.done, 1);
	assert_int_equal(incr.x.rv, 0);
	assert_int_equal(incr.x.res.integer, 6);
	assert_true(incr.x.res.existed);
	assert_int_equal(put.x.done, 1);
	assert_int_equal(put.x.rv, 0);
	assert_true(incr.seq < put.seq);
	assert_int_equal(shard_applied_index(f->s[0]), i + 2);
	assert_int_equal(shard_test_get(f->s[0], &f->io, "counter", &g), 0);
	assert_int_equal(g.len, 3);
	assert_memory_equal(g.value, "100", 3);

	/* A client DELETE asks whether the key existed, and for its value. */
	assert_int_equal(apply_cmd(f->s[0], i + 3,
				   (struct command){ .op = COMMAND_DELETE,
						     .key = (const uint8_t *)"counter",
						     .key_len = 7 }, &del.x.w), 0);
	settle(f);
	assert_int_equal(del.x.done, 1);
	assert_true(del.x.res.existed);
	assert_true(del.x.res.applied);
	assert_string_equal(del.x.old, "100");
}

/*
 * Commands on cold keys queued behind one that waits for its block have
 * their blocks read meanwhile (into the cache only), yet are applied in
 * order with the values the model gives.
 */
static void test_prefetch_keeps_order(void **state)
{
	struct fixture *f = *state;
	struct ordered w[4];
	struct block_cache_options copt = { .capacity = 256 << 10 };
	struct shard_stats st;
	char key[16], value[300];
	uint64_t i = 1;

	open_rep(f, 0, "p", 0);
	memset(value, 'p', sizeof value - 1);
	value[sizeof value - 1] = '\0';
	/* Counters k000, k050, k100, k150, each in a block of its own. */
	for (unsigned j = 0; j < 200; j++) {
		snprintf(key, sizeof key, "k%03u", j);
		assert_int_equal(apply_cmd(f->s[0], i++, put_cmd(key, j % 50 ? value : "5"), NULL),
				 0);
	}
	while (shard_flushed_index(f->s[0]) < 200) {
		snprintf(key, sizeof key, "z%05u", (unsigned)i);
		assert_int_equal(apply_cmd(f->s[0], i++, put_cmd(key, value), NULL), 0);
		turn(f);
	}
	settle(f);
	shard_close(f->s[0]);
	f->s[0] = NULL;
	block_cache_destroy(f->cache);
	assert_int_equal(block_cache_create(&f->cache, &copt), 0);
	open_rep(f, 0, "p", 0);
	i = shard_applied_index(f->s[0]) + 1;
	answer_seq = 0;
	for (unsigned j = 0; j < 4; j++) {
		w[j] = (struct ordered){ .x.w.done = on_done_ordered };
		snprintf(key, sizeof key, "k%03u", j * 50);
		assert_int_equal(apply_cmd(f->s[0], i + j, incrby_cmd(key, (int64_t)j + 1), &w[j].x.w),
				 0);
	}
	/* The head's read and the three behind it are all in flight. */
	shard_get_stats(f->s[0], &st);
	assert_true(st.block_reads >= 4);
	assert_int_equal(shard_applied_index(f->s[0]), i - 1);
	settle(f);
	for (unsigned j = 0; j < 4; j++) {
		assert_int_equal(w[j].x.done, 1);
		assert_int_equal(w[j].x.rv, 0);
		assert_int_equal(w[j].x.res.integer, 5 + (int64_t)j + 1);
		assert_int_equal(w[j].seq, j + 1);
	}
}

/*
 * Flushes that lag: with the ring not turning, the first full memtable is
 * sealed, the second fills, entries queue up to the limit and shard_apply
 * refuses; once the flush is done the queue drains, on_apply_ready says
 * so, and the rest goes in.
 */
static void test_backpressure_while_flush_lags(void **state)
{
	struct fixture *f = *state;
	struct shard_stats st;
	uint64_t i;
	size_t bytes;
	int rv = 0;

	make_entries(0xabcdefull);
	open_rep(f, 0, "bp", 4096);
	for (i = 1; i <= NENTRIES; i++) {
		rv = apply_entry(f->s[0], i, NULL);
		if (rv == RKV_EAGAIN)
			break;
		assert_int_equal(rv, 0);
	}
	assert_int_equal(rv, RKV_EAGAIN);
	assert_true(i > 300); /* a whole memtable went in first */
	assert_true(shard_apply_pending(f->s[0], &bytes) > 0);
	assert_true(bytes > 4096 / 2 && bytes <= 4096);
	assert_int_equal(shard_apply_last(f->s[0]), i - 1);
	assert_true(shard_applied_index(f->s[0]) < i - 1);
	assert_int_equal(f->hooks[0].ready, 0);
	assert_int_equal(f->hooks[0].nflushed, 0);
	/* Refused again: nothing taken. */
	assert_int_equal(apply_entry(f->s[0], i, NULL), RKV_EAGAIN);
	shard_get_stats(f->s[0], &st);
	assert_true(st.stalls >= 1);

	for (int n = 0; n < 100000 && f->hooks[0].ready == 0; n++)
		turn(f);
	assert_int_equal(f->hooks[0].ready, 1);
	assert_true(f->hooks[0].nflushed >= 1);
	apply_range(f, f->s[0], i, NENTRIES, 0);
	settle(f);
	assert_int_equal(shard_applied_index(f->s[0]), NENTRIES);
	check_model(f, f->s[0]);
}

/*
 * Bytes that do not decode are skipped by every shard alike, advancing the
 * applied index like a NOOP; an entry larger than a memtable still
 * applies; indexes must follow on; shard_write is refused.
 */
static void test_corrupt_noop_and_large_entries(void **state)
{
	struct fixture *f = *state;
	static const uint8_t garbage[] = { 0x7f, 1, 2, 3, 4, 5 };
	static uint8_t big[100 << 10];
	struct waiter wg = { .w.done = on_done }, wt = { .w.done = on_done };
	struct waiter wn = { .w.done = on_done }, wb = { .w.done = on_done };
	struct waiter ww = { .w.done = on_done };
	struct command c = put_cmd("t", "truncated");
	uint8_t trunc[64];
	size_t tlen = command_encode(&c, trunc) - 2;

	memset(big, 'b', sizeof big);
	for (int k = 0; k < 2; k++) {
		struct shard *s = open_rep(f, k, k ? "c1" : "c0", 0);
		struct command bc = { .op = COMMAND_PUT, .key = (const uint8_t *)"big",
				      .key_len = 3, .value = big, .value_len = sizeof big };
		uint8_t *enc = malloc(command_encoded_size(&bc));
		struct shard_stats st;
		struct get_result g;

		assert_non_null(enc);
		assert_int_equal(apply_cmd(s, 1, put_cmd("a", "1"), NULL), 0);
		wg.done = wt.done = wn.done = wb.done = ww.done = 0;
		assert_int_equal(shard_apply(s, 2, SHARD_ENTRY_COMMAND, garbage, sizeof garbage,
					     &wg.w), 0);
		assert_int_equal(shard_apply(s, 3, SHARD_ENTRY_COMMAND, trunc, tlen, &wt.w), 0);
		assert_int_equal(shard_apply(s, 4, SHARD_ENTRY_COMMAND, NULL, 0, NULL), 0);
		assert_int_equal(shard_apply(s, 5, SHARD_ENTRY_NOOP, NULL, 0, &wn.w), 0);
		assert_int_equal(shard_apply_skip(s, 6), 0);
		assert_int_equal(wg.done, 1);
		assert_int_equal(wg.rv, RKV_ECORRUPT);
		assert_int_equal(wt.rv, RKV_ECORRUPT);
		assert_int_equal(wn.done, 1);
		assert_int_equal(wn.rv, 0);
		assert_int_equal(shard_applied_index(s), 6);
		shard_get_stats(s, &st);
		assert_int_equal(st.apply_errors, 3);
		/* Gaps and other types are the caller's bug: nothing taken. */
		assert_int_equal(shard_apply_skip(s, 8), RKV_EINVAL);
		assert_int_equal(shard_apply(s, 7, (enum shard_entry_type)9, NULL, 0, NULL),
				 RKV_EINVAL);
		assert_int_equal(shard_write(s, &c, &ww.w), RKV_EINVAL);
		assert_int_equal(ww.done, 0);
		/* Larger than a whole memtable: applied all the same. */
		assert_int_equal(shard_apply(s, 7, SHARD_ENTRY_COMMAND, enc,
					     command_encode(&bc, enc), &wb.w), 0);
		free(enc);
		assert_int_equal(apply_cmd(s, 8, put_cmd("z", "26"), NULL), 0);
		settle(f);
		assert_int_equal(wb.done, 1);
		assert_int_equal(wb.rv, 0);
		assert_int_equal(shard_applied_index(s), 8);
		assert_int_equal(shard_test_get(s, &f->io, "a", &g), 0);
		assert_int_equal(shard_test_get(s, &f->io, "z", &g), 0);
		assert_int_equal(shard_test_get(s, &f->io, "t", &g), RKV_ENOTFOUND);
		assert_int_equal(shard_test_get(s, &f->io, "big", &g), 0);
		assert_int_equal(g.len, sizeof big);
	}
}

/*
 * A current value that cannot be read (a damaged block) stops apply for
 * good: the entry and those behind it are answered with the error, later
 * entries are refused, the applied index stays before it.
 */
static void test_damaged_block_stops_apply(void **state)
{
	struct fixture *f = *state;
	struct waiter wi = { .w.done = on_done }, wp = { .w.done = on_done };
	struct block_cache_options copt = { .capacity = 64 << 10 };
	char dir[128], fill[16], value[200];
	struct get_result g;
	struct dirent *de;
	uint64_t i = 1;
	DIR *d;

	open_rep(f, 0, "d", 0);
	assert_int_equal(apply_cmd(f->s[0], i++, put_cmd("a0", "7"), NULL), 0);
	memset(value, 'f', sizeof value - 1);
	value[sizeof value - 1] = '\0';
	while (shard_flushed_index(f->s[0]) < 1) {
		snprintf(fill, sizeof fill, "f%05u", (unsigned)i);
		assert_int_equal(apply_cmd(f->s[0], i++, put_cmd(fill, value), NULL), 0);
		turn(f);
	}
	settle(f);
	shard_close(f->s[0]);
	f->s[0] = NULL;
	block_cache_destroy(f->cache);
	assert_int_equal(block_cache_create(&f->cache, &copt), 0);
	/* The first data block of every table: where "a0" lives. */
	snprintf(dir, sizeof dir, "%s/d", f->dir);
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char path[512];
		uint8_t b;
		int fd;

		if (!strstr(de->d_name, ".sst"))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		fd = open(path, O_RDWR);
		assert_true(fd >= 0);
		assert_int_equal(pread(fd, &b, 1, 10), 1);
		b ^= 0x40;
		assert_int_equal(pwrite(fd, &b, 1, 10), 1);
		close(fd);
	}
	closedir(d);
	open_rep(f, 0, "d", 0);
	i = shard_applied_index(f->s[0]) + 1;
	assert_int_equal(apply_cmd(f->s[0], i, incrby_cmd("a0", 1), &wi.w), 0);
	assert_int_equal(apply_cmd(f->s[0], i + 1, put_cmd("b", "x"), &wp.w), 0);
	for (int n = 0; n < 10000 && !(wi.done && wp.done); n++)
		turn(f);
	assert_int_equal(wi.done, 1);
	assert_int_equal(wi.rv, RKV_ECORRUPT);
	assert_int_equal(wp.done, 1);
	assert_int_equal(wp.rv, RKV_ECORRUPT);
	assert_int_equal(shard_apply_error(f->s[0]), RKV_ECORRUPT);
	assert_int_equal(shard_applied_index(f->s[0]), i - 1);
	assert_int_equal(apply_cmd(f->s[0], i + 2, put_cmd("c", "y"), NULL), RKV_ECORRUPT);
	assert_int_equal(shard_apply_pending(f->s[0], NULL), 0);
	assert_true(shard_idle(f->s[0]));
	assert_int_equal(shard_test_get(f->s[0], &f->io, "b", &g), RKV_ENOTFOUND);
}

struct chunk_io {
	struct shard_snapshot_chunk c;
	int done;
	int rv;
};

static void chunk_cb(struct shard_snapshot_chunk *c, int rv)
{
	struct chunk_io *x = (struct chunk_io *)c;

	x->done++;
	x->rv = rv;
}

/* The receiver's side, blocking: every file of `snap`, read in chunks
 * through the sender's ring, staged for the shard at `dir`. */
static void ship(struct fixture *f, struct shard_snapshot *snap, const char *dir)
{
	static uint8_t buf[7000];
	char staging[256], path[512], err[512];

	if (shard_snapshot_stage(dir, staging, sizeof staging, err, sizeof err))
		fail_msg("stage: %s", err);
	for (size_t i = 0; i < snap->nfiles; i++) {
		int fd;

		snprintf(path, sizeof path, "%s/%s", staging, snap->files[i].name);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		assert_true(fd >= 0);
		for (uint64_t off = 0; off < snap->files[i].size;) {
			struct chunk_io x = { .c.done = chunk_cb };

			assert_int_equal(shard_snapshot_read(snap, i, off, buf, sizeof buf, &x.c), 0);
			for (int n = 0; n < 10000 && !x.done; n++) {
				assert_int_equal(io_ring_submit_wait(&f->io, 1000), 0);
				io_ring_dispatch(&f->io);
			}
			assert_int_equal(x.done, 1);
			assert_true(x.rv > 0);
			assert_int_equal(pwrite(fd, buf, (size_t)x.rv, (off_t)off), x.rv);
			off += (uint64_t)x.rv;
		}
		assert_int_equal(shard_snapshot_read(snap, i, snap->files[i].size, buf, 1,
						     &(struct chunk_io){ 0 }.c), RKV_EINVAL);
		close(fd);
	}
}

static bool file_exists(const char *dir, const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return stat(path, &st) == 0;
}

/*
 * A snapshot of a shard with data, shipped in chunks while the sender goes
 * on (its compactions drop the snapshot's tables, which stay readable while
 * pinned), installed where no replica was: the new replica starts at the
 * snapshot's index and, with the log after it, holds every key the model
 * holds. Installed again over an existing replica (the exchange), and a
 * failed install leaves the old replica whole.
 */
static void test_snapshot_install(void **state)
{
	struct fixture *f = *state;
	struct shard_snapshot snap, again;
	char adir[128], bdir[128], err[512], fill[32], value[200];
	uint64_t index = 0, i, before;
	struct shard_stats st;
	bool dropped = false;
	char names[64][32];
	size_t nnames;

	make_entries(0x5eed5eedull);
	snprintf(adir, sizeof adir, "%s/sa", f->dir);
	snprintf(bdir, sizeof bdir, "%s/sb", f->dir);
	open_rep(f, 0, "sa", 0);
	apply_range(f, f->s[0], 1, NENTRIES, 4);
	settle(f);
	assert_int_equal(shard_snapshot_begin(f->s[0], &snap), 0);
	assert_int_equal(snap.index, shard_flushed_index(f->s[0]));
	assert_true(snap.index > 0 && snap.nfiles > 0);

	/* The sender goes on: new keys, flushes, compactions. */
	shard_get_stats(f->s[0], &st);
	before = st.compactions;
	memset(value, 'w', sizeof value - 1);
	value[sizeof value - 1] = '\0';
	for (i = NENTRIES + 1; i <= NENTRIES + 1500; i++) {
		/* Between the model's keys: compactions take in every range. */
		snprintf(fill, sizeof fill, "key%04ux%05u", (unsigned)(i % NKEYS), (unsigned)i);
		assert_int_equal(apply_cmd(f->s[0], i, put_cmd(fill, value), NULL), 0);
		if (i % 8 == 0)
			turn(f);
	}
	settle(f);
	shard_get_stats(f->s[0], &st);
	assert_true(st.compactions > before);
	for (size_t k = 0; k < snap.nfiles; k++) {
		/* pinned: still there, though maybe no longer in the version */
		assert_true(file_exists(adir, snap.files[k].name));
	}
	ship(f, &snap, bdir);
	assert_int_equal(shard_snapshot_install(bdir, snap.manifest, snap.manifest_len, &index,
						err, sizeof err), 0);
	assert_int_equal(index, snap.index);
	assert_false(file_exists(f->dir, "sb.incoming"));
	for (size_t k = 0; k < snap.nfiles; k++)
		assert_true(file_exists(bdir, snap.files[k].name));
	nnames = snap.nfiles < 64 ? snap.nfiles : 64;
	for (size_t k = 0; k < nnames; k++)
		memcpy(names[k], snap.files[k].name, sizeof names[k]);
	shard_snapshot_end(&snap);
	assert_int_equal(snap.nfiles, 0);
	turn(f);
	turn(f);
	/* Unpinned: the tables the compactions dropped are gone now. */
	for (size_t k = 0; k < nnames; k++)
		dropped |= !file_exists(adir, names[k]);
	assert_true(dropped);

	open_rep(f, 1, "sb", 0);
	assert_int_equal(shard_applied_index(f->s[1]), index);
	apply_range(f, f->s[1], index + 1, NENTRIES, 3);
	settle(f);
	check_model(f, f->s[1]);

	/* Over an existing replica: swapped whole. */
	shard_close(f->s[1]);
	f->s[1] = NULL;
	assert_int_equal(shard_snapshot_begin(f->s[0], &again), 0);
	assert_true(again.index > NENTRIES);
	ship(f, &again, bdir);
	assert_int_equal(shard_snapshot_install(bdir, again.manifest, again.manifest_len,
						&index, err, sizeof err), 0);
	assert_int_equal(index, again.index);
	open_rep(f, 1, "sb", 0);
	assert_int_equal(shard_applied_index(f->s[1]), again.index);
	check_model_keys(f, f->s[1], false);

	/* A staged snapshot missing its files, or a damaged image: refused,
	 * the replica unchanged. */
	shard_close(f->s[1]);
	f->s[1] = NULL;
	ship(f, &(struct shard_snapshot){ 0 }, bdir);
	assert_int_equal(shard_snapshot_install(bdir, again.manifest, again.manifest_len,
						&index, err, sizeof err), RKV_ECORRUPT);
	assert_non_null(strstr(err, ".sst"));
	/* A table cut short in transfer (its size right, its tail zeros). */
	ship(f, &again, bdir);
	{
		char path[512];
		uint8_t zeros[64] = { 0 };
		int fd;

		snprintf(path, sizeof path, "%s.incoming/%s", bdir, again.files[0].name);
		fd = open(path, O_WRONLY);
		assert_true(fd >= 0);
		assert_int_equal(pwrite(fd, zeros, sizeof zeros,
					(off_t)(again.files[0].size - sizeof zeros)),
				 (ssize_t)sizeof zeros);
		close(fd);
	}
	assert_int_equal(shard_snapshot_install(bdir, again.manifest, again.manifest_len,
						&index, err, sizeof err), RKV_ECORRUPT);
	assert_non_null(strstr(err, "footer"));
	again.manifest[again.manifest_len / 2] ^= 0x40;
	assert_int_equal(shard_snapshot_install(bdir, again.manifest, again.manifest_len,
						&index, err, sizeof err), RKV_ECORRUPT);
	shard_snapshot_end(&again);
	open_rep(f, 1, "sb", 0);
	assert_int_equal(shard_applied_index(f->s[1]), index);
	check_model_keys(f, f->s[1], false);

	/* Only replicated shards take snapshots. */
	assert_int_equal(shard_snapshot_read(&snap, 0, 0, value, 1, &(struct chunk_io){ 0 }.c),
			 RKV_EINVAL);
}

/* The staged MANIFEST, as shard_snapshot_install writes it. */
static void stage_manifest(const char *dir, const struct shard_snapshot *snap)
{
	char path[512];
	int fd;

	snprintf(path, sizeof path, "%s.incoming/MANIFEST", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, snap->manifest, snap->manifest_len), (ssize_t)snap->manifest_len);
	assert_int_equal(fsync(fd), 0);
	close(fd);
}

/* Recovery at start-up, then the replica must be whole at `index`; the
 * new one (`whole`) then holds the model once the rest of the log is in. */
static void recover_expect(struct fixture *f, const char *dir, uint64_t index, bool whole)
{
	char err[512], staging[256];
	struct stat st;

	assert_int_equal(shard_snapshot_recover(dir, err, sizeof err), 0);
	snprintf(staging, sizeof staging, "%s.incoming", dir);
	assert_int_not_equal(stat(staging, &st), 0);
	open_rep(f, 1, "sb", 0);
	assert_int_equal(shard_applied_index(f->s[1]), index);
	if (whole) {
		apply_range(f, f->s[1], index + 1, NENTRIES, 3);
		settle(f);
		check_model_keys(f, f->s[1], false);
	}
	shard_close(f->s[1]);
	f->s[1] = NULL;
}

/*
 * The crash points of an install (docs/cluster/snapshots.md), each left on
 * disk as a crash would leave it, then recovered as at start-up: before
 * the exchange the old replica comes back, after it the new one, never a
 * mix, and the staging directory is gone either way.
 */
static void test_snapshot_crash_points(void **state)
{
	struct fixture *f = *state;
	struct shard_snapshot snap;
	char bdir[128], err[512];
	uint64_t old_index, index = 0;

	make_entries(0xc0ffee11ull);
	snprintf(bdir, sizeof bdir, "%s/sb", f->dir);
	/* The old replica: the first quarter of the log. */
	open_rep(f, 1, "sb", 0);
	apply_range(f, f->s[1], 1, NENTRIES / 4, 4);
	settle(f);
	old_index = shard_flushed_index(f->s[1]);
	shard_close(f->s[1]);
	f->s[1] = NULL;
	/* The snapshot: all of it, from another replica. */
	open_rep(f, 0, "sa", 0);
	apply_range(f, f->s[0], 1, NENTRIES, 4);
	settle(f);
	assert_int_equal(shard_snapshot_begin(f->s[0], &snap), 0);
	assert_true(snap.index > old_index && old_index > 0);

	/* 1. while the tables stream in: half a table staged */
	ship(f, &snap, bdir);
	{
		char path[512];

		snprintf(path, sizeof path, "%s.incoming/%s", bdir, snap.files[0].name);
		assert_int_equal(truncate(path, (off_t)(snap.files[0].size / 2)), 0);
	}
	recover_expect(f, bdir, old_index, false);
	/* 2. every table and the MANIFEST staged and synced, no exchange */
	ship(f, &snap, bdir);
	stage_manifest(bdir, &snap);
	recover_expect(f, bdir, old_index, false);
	/* 3. right after the exchange: the old replica sits in the staging
	 * directory, not removed yet */
	ship(f, &snap, bdir);
	stage_manifest(bdir, &snap);
	{
		char staging[256];

		snprintf(staging, sizeof staging, "%s.incoming", bdir);
		assert_int_equal(renameat2(AT_FDCWD, staging, AT_FDCWD, bdir, RENAME_EXCHANGE), 0);
	}
	recover_expect(f, bdir, snap.index, true);
	/* 4. a whole install, then a crash before anything else: no staging
	 * directory, the new replica */
	ship(f, &snap, bdir);
	assert_int_equal(shard_snapshot_install(bdir, snap.manifest, snap.manifest_len, &index,
						err, sizeof err), 0);
	recover_expect(f, bdir, snap.index, true);
	shard_snapshot_end(&snap);
}

/* A directory of the single-node mode (WAL segments) is not opened as a
 * replicated shard, and a replicated directory stays one. */
static void test_wal_directory_refused(void **state)
{
	struct fixture *f = *state;
	char dir[128], err[512];
	struct shard_config cfg = {
		.id = 1, .dir = dir, .memtable_size = MEMTABLE, .cache = f->cache,
	};

	snprintf(dir, sizeof dir, "%s/single", f->dir);
	assert_int_equal(shard_open(&f->s[0], &cfg, &f->io, err, sizeof err), 0);
	shard_close(f->s[0]);
	f->s[0] = NULL;
	cfg.replicated = true;
	assert_int_equal(shard_open(&f->s[0], &cfg, &f->io, err, sizeof err), RKV_EINVAL);
	assert_non_null(strstr(err, "WAL"));
	f->s[0] = NULL;
}

/* ---- FLUSH (shard/shard_drop.c) ---- */

/* .sst files in the shard directory `name`. */
static unsigned sst_files(struct fixture *f, const char *name)
{
	char dir[128];
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	snprintf(dir, sizeof dir, "%s/%s", f->dir, name);
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += strstr(de->d_name, ".sst") != NULL;
	closedir(d);
	return n;
}

/*
 * A FLUSH every 1333rd entry, fed to a leader (a client on every entry, the
 * ring turning) and to a follower (as fast as it takes them, so FLUSHes
 * land while memtable flushes and compactions run): both end as the model,
 * which holds only what was written after the last FLUSH; every FLUSH was
 * applied once on each and answered; a reopen replays the log above the
 * flushed index to the same state.
 */
static void test_flush_entries_same_state(void **state)
{
	struct fixture *f = *state;
	struct shard_stats st;

	flush_every = 1333;
	feed_two_paces(f, 0xf1a5f1a5ull);
	for (int i = 0; i < 2; i++) {
		shard_get_stats(f->s[i], &st);
		assert_int_equal(st.drops, NENTRIES / 1333);
		assert_int_equal(st.apply_errors, 0);
		assert_int_equal(shard_applied_index(f->s[i]), NENTRIES);
		assert_true(shard_flushed_index(f->s[i]) >= NENTRIES / 1333 * 1333);
		check_model(f, f->s[i]);
	}
	reopen_replay(f, 1, "b");
}

/*
 * One FLUSH after tables exist and while background work is pending: once
 * applied, no key is left (gets, a scan, the live-key count), no table is
 * in the version nor on disk, the flushed index is the FLUSH's and the hook
 * was told. A key written after it lives and survives a reopen, which
 * brings back none of the old keys. A crash image taken before the FLUSH's
 * edit was durable comes back with the old keys, and the FLUSH handed in
 * again from the log drops them. A snapshot taken after the FLUSH installs
 * an empty replica that catches up from the log.
 */
static void test_flush_drops_tables(void **state)
{
	struct fixture *f = *state;
	const uint64_t F = NENTRIES / 2 + 1;
	struct waiter fl = { .w.done = on_done };
	struct command flush = { .op = COMMAND_FLUSH };
	char cmd[512], ddir[128], err[512];
	struct shard_snapshot snap;
	static struct get_result before[NKEYS];
	struct shard_stats st;
	unsigned old_keys = 0;
	uint64_t index = 0;

	make_entries(0xd20bd20bull);
	open_rep(f, 0, "d", 0);
	apply_range(f, f->s[0], 1, F - 1, 0);
	/* Until a flush has made a table (bounded: a few turns suffice). */
	shard_get_stats(f->s[0], &st);
	for (int i = 0; i < 2000 && st.table_files == 0; i++) {
		turn(f);
		shard_get_stats(f->s[0], &st);
	}
	assert_true(st.table_files > 0);
	assert_true(shard_live_keys(f->s[0]) > 0);

	assert_int_equal(apply_cmd(f->s[0], F, flush, &fl.w), 0);
	for (int i = 0; i < 100000 && !fl.done; i++)
		turn(f);
	assert_int_equal(fl.done, 1);
	assert_int_equal(fl.rv, 0);
	assert_int_equal(shard_applied_index(f->s[0]), F);
	assert_int_equal(shard_flushed_index(f->s[0]), F);
	assert_int_equal(f->hooks[0].flushed[f->hooks[0].nflushed - 1], F);
	shard_get_stats(f->s[0], &st);
	assert_int_equal(st.drops, 1);
	assert_int_equal(st.table_files, 0);
	assert_int_equal(shard_live_keys(f->s[0]), 0);
	memset(model, 0, sizeof model);
	check_model(f, f->s[0]);
	for (int i = 0; i < 1000 && sst_files(f, "d") > 0; i++)
		turn(f);
	assert_int_equal(sst_files(f, "d"), 0);

	/* Written after it: lives, here and after a reopen (from the log). */
	assert_int_equal(apply_cmd(f->s[0], F + 1, put_cmd("key0001", "after"), NULL), 0);
	settle(f);
	model[1].present = true;
	memcpy(model[1].value, "after", 5);
	model[1].len = 5;
	check_model(f, f->s[0]);
	shard_close(f->s[0]);
	f->s[0] = NULL;
	open_rep(f, 0, "d", 0);
	assert_int_equal(shard_applied_index(f->s[0]), F);
	assert_int_equal(apply_cmd(f->s[0], F + 1, put_cmd("key0001", "after"), NULL), 0);
	settle(f);
	check_model(f, f->s[0]);

	/* A snapshot after the FLUSH: no table, the FLUSH's index. */
	assert_int_equal(shard_snapshot_begin(f->s[0], &snap), 0);
	assert_int_equal(snap.index, F);
	assert_int_equal(snap.nfiles, 0);
	snprintf(ddir, sizeof ddir, "%s/ds", f->dir);
	ship(f, &snap, ddir);
	assert_int_equal(shard_snapshot_install(ddir, snap.manifest, snap.manifest_len, &index,
						err, sizeof err), 0);
	shard_snapshot_end(&snap);
	assert_int_equal(index, F);
	open_rep(f, 1, "ds", 0);
	assert_int_equal(shard_applied_index(f->s[1]), F);
	assert_int_equal(apply_cmd(f->s[1], F + 1, put_cmd("key0001", "after"), NULL), 0);
	settle(f);
	check_model(f, f->s[1]);
	shard_close(f->s[1]);
	f->s[1] = NULL;

	/* The crash image before the FLUSH's edit is durable: "e" at F - 1
	 * settled, the FLUSH handed in (its edit queued, not submitted), the
	 * directory copied as a crash would leave it. */
	open_rep(f, 1, "e", 0);
	apply_range(f, f->s[1], 1, F - 1, 0);
	settle(f);
	for (unsigned k = 0; k < NKEYS; k++) {
		char name[16];

		key_name(name, k);
		before[k].rv = shard_test_get(f->s[1], &f->io, name, &before[k]);
	}
	memset(&fl, 0, sizeof fl);
	fl.w.done = on_done;
	assert_int_equal(apply_cmd(f->s[1], F, flush, &fl.w), 0);
	assert_int_equal(fl.done, 0);
	snprintf(cmd, sizeof cmd, "cp -a %s/e %s/e2", f->dir, f->dir);
	assert_int_equal(system(cmd), 0);
	shard_close(f->s[1]);
	f->s[1] = NULL;
	open_rep(f, 1, "e2", 0);
	assert_true(shard_applied_index(f->s[1]) < F);
	apply_range(f, f->s[1], shard_applied_index(f->s[1]) + 1, F - 1, 0);
	settle(f);
	for (unsigned k = 0; k < NKEYS; k++) {
		struct get_result g;
		char name[16];

		key_name(name, k);
		assert_int_equal(shard_test_get(f->s[1], &f->io, name, &g), before[k].rv);
		old_keys += g.rv == 0;
		if (g.rv == 0) {
			assert_int_equal(g.len, before[k].len);
			assert_memory_equal(g.value, before[k].value,
					    g.len < sizeof g.value ? g.len : sizeof g.value);
		}
	}
	assert_true(old_keys > 0);
	assert_int_equal(apply_cmd(f->s[1], F, flush, NULL), 0);
	settle(f);
	assert_int_equal(shard_applied_index(f->s[1]), F);
	memset(model, 0, sizeof model);
	check_model(f, f->s[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_two_paces_same_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_replays_above_flushed_index, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_order_across_block_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefetch_keeps_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backpressure_while_flush_lags, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_noop_and_large_entries, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_damaged_block_stops_apply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_install, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_crash_points, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_directory_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_entries_same_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_drops_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_rebuild_meets_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_rebuild_meets_plain_writes, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
