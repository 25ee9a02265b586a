/*
 * Multi-key commands at the head of the apply queue: MSETNX, RENAME,
 * RENAMENX, COPY, COPY_REPLACE (shard/command.h says what each does).
 *
 * Each is one log entry, so every replica and every replay applies it at
 * the same point of the same history: atomic and deterministic. Its keys
 * are settled one at a time with the queue's carrier waiter, exactly as a
 * single-key command settles its one key (memtables first, then the
 * tables, a block not in cache read first and the step run again when it
 * lands). What each key held is kept in q->multi across such waits: no
 * other entry applies while the head waits, so it stays true. Only then
 * are the writes made, one memtable entry each, after checking that the
 * active memtable holds them all (else the head waits for a flush, still
 * before writing anything: a command is never half applied).
 *
 * The writes go through shard_exec with the carrier telling it whether a
 * key it overwrites or deletes was in a table, so the live-key counts move
 * as they do for PUT and DELETE.
 *
 * Expiry: a key whose deadline is before the entry's `now` holds nothing
 * (shard_exec.c's rule); RENAME and COPY write the source's deadline with
 * its value, MSETNX writes values without one.
 */
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "shard/shard_internal.h"
#include "shard/value_deadline.h"

void shard_multi_release(struct shard *s)
{
	struct apply_multi *m = &s->apply.multi;

	free(m->value);
	memset(m, 0, sizeof *m);
}

/* Copies `key` where a block read in flight can still find it (q->key). */
static int stable_key(struct apply_queue *q, const uint8_t *key, uint32_t key_len)
{
	if (q->key_cap < key_len || !q->key) {
		size_t cap = q->key_cap ? q->key_cap : 64;
		uint8_t *k;

		while (cap < key_len)
			cap *= 2;
		k = realloc(q->key, cap);
		if (!k)
			return -ENOMEM;
		q->key = k;
		q->key_cap = cap;
	}
	if (key_len)
		memcpy(q->key, key, key_len);
	return 0;
}

/*
 * Settles one key at time `now` (the entry's): 0 with *held (the key holds
 * a live value) and *in_table (found in a table, live or not), and, when
 * `copy`, the value copied into m->value and its deadline in m->deadline;
 * or SHARD_PRIOR_WAIT / an error as shard_prior_resolve.
 */
static int settle(struct shard *s, const uint8_t *key, uint32_t key_len, uint64_t now,
		  bool copy, bool *held, bool *in_table)
{
	struct apply_queue *q = &s->apply;
	struct shard_waiter *c = &q->carrier;
	struct apply_multi *m = &q->multi;
	const void *value = NULL;
	size_t len = 0;
	unsigned flags = 0;
	uint64_t deadline;
	int rv;

	if (!c->warming) {
		rv = stable_key(q, key, key_len);
		if (rv)
			return rv;
	}
	memset(&c->cmd, 0, sizeof c->cmd);
	c->cmd.op = COMMAND_PUT_NX;
	c->cmd.key = q->key;
	c->cmd.key_len = key_len;
	rv = shard_prior_resolve(s, c);
	if (rv)
		return rv;
	*in_table = c->prior_state == SHARD_PRIOR_TABLE;
	if (*in_table) {
		value = c->prior;
		len = c->prior_len;
		flags = c->prior_flags;
		rv = 0;
	} else {
		rv = memtable_get_flags(s->mem->mt, key, key_len, &value, &len, &flags);
		if (rv == RKV_ENOTFOUND && s->imm)
			rv = memtable_get_flags(s->imm->mt, key, key_len, &value, &len, &flags);
	}
	*held = rv == 0 && value_deadline_strip(&value, &len, flags & MEMTABLE_DEADLINE, now,
						&deadline);
	if (copy)
		m->deadline = *held ? deadline : 0;
	if (*held && copy) {
		if (m->value_cap < len || !m->value) {
			size_t cap = m->value_cap ? m->value_cap : 64;
			uint8_t *v;

			while (cap < len)
				cap *= 2;
			v = realloc(m->value, cap);
			if (!v) {
				shard_prior_release(s, c);
				return -ENOMEM;
			}
			m->value = v;
			m->value_cap = cap;
		}
		if (len)
			memcpy(m->value, value, len);
		m->value_len = len;
	}
	shard_prior_release(s, c);
	return 0;
}

/* One write of the command: `op` (PUT or DELETE) of key [= value], told
 * whether the key was found in a table. */
static int write_one(struct shard *s, enum command_op op, const uint8_t *key,
		     uint32_t key_len, const uint8_t *value, uint32_t value_len,
		     uint64_t deadline, bool in_table)
{
	struct shard_waiter *c = &s->apply.carrier;
	struct command w = { .op = deadline ? COMMAND_PUT_AT : op, .key = key,
			     .key_len = key_len, .value = value, .value_len = value_len,
			     .deadline = deadline };
	struct shard_result ignored;
	int rv;

	shard_prior_release(s, c);
	if (in_table)
		c->prior_state = SHARD_PRIOR_TABLE; /* held; no value needed to overwrite it */
	rv = shard_exec(s, &w, c, &ignored);
	shard_prior_release(s, c);
	return rv;
}

static int msetnx(struct shard *s, const struct command *c, struct shard_result *res)
{
	struct apply_multi *m = &s->apply.multi;
	struct command_pair p;
	size_t pos = 0, cost = 0;
	uint32_t i = 0;
	int rv;

	while (command_pair_next(c, &pos, &p)) {
		bool held, in_table;

		cost += memtable_entry_cost(p.key_len, p.value_len);
		if (i++ < m->next)
			continue;
		rv = settle(s, p.key, p.key_len, c->now, false, &held, &in_table);
		if (rv)
			return rv;
		m->any |= held;
		m->next = i;
	}
	if (m->any)
		return 0; /* res->applied false: 0 to the client, nothing written */
	if (!shard_apply_room(s, cost))
		return SHARD_PRIOR_WAIT;
	pos = 0;
	while (command_pair_next(c, &pos, &p)) {
		/* Every key was absent; a key named twice is in the memtable
		 * the second time, so it is counted once. */
		rv = write_one(s, COMMAND_PUT, p.key, p.key_len, p.value, p.value_len, 0, false);
		if (rv)
			return rv;
	}
	res->applied = true;
	return 0;
}

static int move_or_copy(struct shard *s, const struct command *c, struct shard_result *res)
{
	struct apply_multi *m = &s->apply.multi;
	bool same = c->key_len == c->value_len && !memcmp(c->key, c->value, c->key_len);
	bool rename = c->op == COMMAND_RENAME || c->op == COMMAND_RENAMENX;
	size_t cost;
	int rv;

	if (m->next == 0) {
		rv = settle(s, c->key, c->key_len, c->now, true, &m->source,
			    &m->source_in_table);
		if (rv)
			return rv;
		m->next = 1;
	}
	res->existed = m->source;
	if (!m->source) {
		if (rename)
			res->error = RKV_ENOTFOUND;
		return 0;
	}
	if (same) {
		/* RENAME k k answers OK, RENAMENX k k 0: nothing changes. */
		res->applied = c->op == COMMAND_RENAME;
		return 0;
	}
	if (m->next == 1) {
		rv = settle(s, c->value, c->value_len, c->now, false, &m->dest,
			    &m->dest_in_table);
		if (rv)
			return rv;
		m->next = 2;
	}
	if (m->dest && (c->op == COMMAND_RENAMENX || c->op == COMMAND_COPY))
		return 0;
	cost = memtable_entry_cost(c->value_len, m->value_len + VALUE_DEADLINE_SIZE) +
	       (rename ? memtable_entry_cost(c->key_len, 0) : 0);
	if (!shard_apply_room(s, cost))
		return SHARD_PRIOR_WAIT;
	rv = write_one(s, COMMAND_PUT, c->value, c->value_len, m->value, (uint32_t)m->value_len,
		       m->deadline, m->dest_in_table);
	if (rv == 0 && rename)
		rv = write_one(s, COMMAND_DELETE, c->key, c->key_len, NULL, 0, 0,
			       m->source_in_table);
	if (rv)
		return rv;
	res->applied = true;
	return 0;
}

int shard_multi_step(struct shard *s, uint64_t index, const struct command *c,
		     struct shard_result *res)
{
	struct apply_multi *m = &s->apply.multi;
	int rv;

	if (m->index != index) {
		/* A new head: nothing settled yet (the buffer is kept). */
		m->index = index;
		m->next = 0;
		m->any = m->source = m->source_in_table = m->dest = m->dest_in_table = false;
		m->value_len = 0;
		m->deadline = 0;
	}
	memset(res, 0, sizeof *res);
	rv = c->op == COMMAND_MSETNX ? msetnx(s, c, res) : move_or_copy(s, c, res);
	if (rv == 0)
		m->index = 0; /* done: a later entry with this index (after a
			       * snapshot install, say) starts afresh */
	return rv;
}
