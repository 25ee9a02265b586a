/*
 * Executing one command against the memtables: the state machine step that
 * both modes share (shard.c's WAL group commit and replay, shard_apply.c's
 * replicated apply), and the lookup that settles a command's current value
 * before it executes.
 *
 * Determinism: the effect of a command depends only on the command and on
 * the current value of its key, taken from the active memtable, then the
 * immutable one, then the tables (read directly at replay, settled through
 * the block cache before execution otherwise). So every replica, and every
 * replay, that executes the same commands in the same order reaches the
 * same state. Live-key counting (res->existed of a blind PUT) may differ;
 * it is an estimate.
 *
 * Expiry: a value stored with a deadline (shard/value_deadline.h) counts as
 * absent for a command whose `now` (the proposer's time, from the entry) is
 * past it, and as present without one: never this node's clock. Commands
 * that rewrite a value from the old one keep its deadline.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/strint.h"
#include "shard/shard_internal.h"
#include "shard/shard_strings.h"
#include "shard/value_deadline.h"

static int grow_scratch(struct shard *s, size_t need)
{
	uint8_t *buf;

	if (need <= s->scratch_cap)
		return 0;
	buf = realloc(s->scratch, need);
	if (!buf)
		return -ENOMEM;
	s->scratch = buf;
	s->scratch_cap = need;
	return 0;
}

size_t shard_mem_room(const struct shard *s)
{
	size_t used = memtable_used(s->mem->mt);
	size_t left = memtable_remaining(s->mem->mt);
	size_t cap = used < s->memtable_size ? s->memtable_size - used : 0;

	return left < cap ? left : cap;
}

/* `stored`: the key held a value before, expired by the entry's time or
 * not (the live-key count counts stored values: DBSIZE leaves the expired
 * ones out through the deadline index). */
static int set_value(struct shard *s, const struct command *c, bool stored, const void *value,
		     size_t len, uint64_t deadline, struct shard_result *res)
{
	int rv = memtable_put_deadline(s->mem->mt, c->key, c->key_len, value, len, deadline,
				       NULL);

	if (rv == 0) {
		shard_deadlines_note(s, c->key, c->key_len, deadline);
		res->applied = true;
		s->mem->live_delta += !stored;
	}
	return rv;
}

/* Whether `c` is a PUT whose effect does not depend on the old value. */
static bool is_blind_put(const struct command *c)
{
	return c->op == COMMAND_PUT || (c->op == COMMAND_PUT_AT && c->flags == 0);
}

/*
 * PUT and DELETE, whose effect does not depend on the old value: the write's
 * own skiplist search reports what the active memtable held, so the common
 * write costs one search (shard_exec's general path costs two).
 */
static int apply_blind(struct shard *s, const struct command *c, struct shard_waiter *w,
		       struct shard_result *res)
{
	struct memtable_prior pr;
	const void *old = NULL;
	size_t old_len = 0;
	unsigned flags = 0;
	uint64_t deadline;
	int rv, before;
	bool stored;

	memset(res, 0, sizeof *res);
	if (c->op != COMMAND_DELETE) {
		uint64_t d = c->op == COMMAND_PUT_AT ? c->deadline : 0;

		rv = memtable_put_deadline(s->mem->mt, c->key, c->key_len, c->value,
					   c->value_len, d, &pr);
	} else
		rv = memtable_delete_prior(s->mem->mt, c->key, c->key_len, &pr);
	if (rv)
		return rv;
	shard_deadlines_note(s, c->key, c->key_len,
			     c->op == COMMAND_PUT_AT ? c->deadline : 0);
	before = pr.state;
	if (before == 0) {
		old = pr.value;
		old_len = pr.value_len;
		flags = pr.flags;
	} else if (before == RKV_ENOTFOUND && s->imm) {
		before = memtable_get_flags(s->imm->mt, c->key, c->key_len, &old, &old_len,
					    &flags);
	}
	if (before == RKV_ENOTFOUND && w && w->prior_state == SHARD_PRIOR_TABLE) {
		old = w->prior;
		old_len = w->prior_len;
		flags = w->prior_flags;
		before = 0;
	}
	stored = before == 0;
	/* `old` is NULL for a table value nobody asked for (write_one). */
	if (before == 0 && old &&
	    !value_deadline_strip(&old, &old_len, flags & MEMTABLE_DEADLINE, c->now, &deadline))
		before = RKV_ENOTFOUND;
	res->existed = before == 0;
	if (res->existed) {
		res->old_value = old;
		res->old_len = old_len;
	}
	/* The live-key count follows stored values, expired or not. */
	if (c->op != COMMAND_DELETE) {
		res->applied = true;
		s->mem->live_delta += !stored;
	} else {
		res->applied = res->existed;
		s->mem->live_delta -= stored;
	}
	return 0;
}

int shard_exec(struct shard *s, const struct command *c, struct shard_waiter *w,
			 struct shard_result *res)
{
	struct block_cache_handle *pin = NULL;
	const void *old = NULL;
	size_t old_len = 0;
	unsigned flags = 0;
	uint64_t stored_deadline = 0; /* the deadline stored with the old value, live or not */
	bool stored;          /* a value was stored, expired or not */
	uint64_t keep = 0;   /* the live old value's deadline: what rewrites keep */
	int rv;

	if (command_is_multi(c->op)) {
		/* Only the apply step (shard_multi.c) settles several keys; the
		 * WAL path refuses them, changing nothing. */
		memset(res, 0, sizeof *res);
		res->error = RKV_EINVAL;
		return 0;
	}
	if (is_blind_put(c) || c->op == COMMAND_DELETE)
		return apply_blind(s, c, w, res);
	memset(res, 0, sizeof *res);
	rv = memtable_get_flags(s->mem->mt, c->key, c->key_len, &old, &old_len, &flags);
	if (rv == RKV_ENOTFOUND && s->imm)
		rv = memtable_get_flags(s->imm->mt, c->key, c->key_len, &old, &old_len, &flags);
	if (rv == RKV_ENOTFOUND && s->replaying) {
		rv = lsm_get_blocking(s, c->key, c->key_len, &old, &old_len, &pin);
		if (rv != 0 && rv != RKV_ENOTFOUND)
			return rv;
		flags = rv == 0 ? lsm_found_flags(s) : 0;
	} else if (rv == RKV_ENOTFOUND && w && w->prior_state == SHARD_PRIOR_TABLE) {
		old = w->prior;
		old_len = w->prior_len;
		flags = w->prior_flags;
		rv = 0;
	}
	stored = rv == 0;
	if (rv == 0 && (flags & MEMTABLE_DEADLINE)) {
		if (value_deadline_strip(&old, &old_len, true, c->now, &stored_deadline)) {
			keep = stored_deadline;
		} else {
			rv = RKV_ENOTFOUND; /* expired by the entry's time */
			old = NULL;
			old_len = 0;
		}
	}
	res->existed = rv == 0;
	if (res->existed) {
		res->old_value = old;
		res->old_len = old_len;
	}
	switch (c->op) {
	case COMMAND_PUT_NX:
		rv = res->existed ? 0 : set_value(s, c, stored, c->value, c->value_len, 0, res);
		break;
	case COMMAND_PUT_XX:
		rv = res->existed ? set_value(s, c, stored, c->value, c->value_len, 0, res) : 0;
		break;
	case COMMAND_PUT_AT:
		rv = 0;
		if (((c->flags & COMMAND_SET_NX) && res->existed) ||
		    ((c->flags & COMMAND_SET_XX) && !res->existed))
			break;
		rv = set_value(s, c, stored, c->value, c->value_len,
			       (c->flags & COMMAND_SET_KEEPTTL) ? keep : c->deadline, res);
		break;
	case COMMAND_EXPIRE_AT:
		rv = 0;
		if (!res->existed || ((c->flags & COMMAND_EXPIRE_NX) && keep) ||
		    ((c->flags & COMMAND_EXPIRE_XX) && !keep) ||
		    /* no deadline is an infinite one (Redis) */
		    ((c->flags & COMMAND_EXPIRE_GT) && (!keep || c->deadline <= keep)) ||
		    ((c->flags & COMMAND_EXPIRE_LT) && keep && c->deadline >= keep))
			break;
		if (c->now != 0 && c->deadline <= c->now) {
			/* Already past: Redis deletes the key at once. */
			rv = memtable_delete(s->mem->mt, c->key, c->key_len);
			if (rv == 0) {
				shard_deadlines_note(s, c->key, c->key_len, 0);
				res->applied = true;
				s->mem->live_delta--;
			}
			break;
		}
		rv = set_value(s, c, stored, old, old_len, c->deadline, res);
		break;
	case COMMAND_PERSIST:
		rv = res->existed && keep ? set_value(s, c, stored, old, old_len, 0, res) : 0;
		break;
	case COMMAND_EXPIRE_DELETE:
		/* The leader saw this very deadline pass; a value written since
		 * (another deadline, or none) is kept. */
		rv = 0;
		if (stored_deadline != c->deadline)
			break;
		rv = memtable_delete(s->mem->mt, c->key, c->key_len);
		if (rv == 0) {
			shard_deadlines_note(s, c->key, c->key_len, 0);
			res->applied = true;
			s->mem->live_delta--;
		}
		break;
	case COMMAND_DELETE:
		rv = memtable_delete(s->mem->mt, c->key, c->key_len);
		if (rv == 0) {
			shard_deadlines_note(s, c->key, c->key_len, 0);
			res->applied = res->existed;
			s->mem->live_delta -= stored;
		}
		break;
	case COMMAND_INCRBY: {
		int64_t cur = 0;
		char text[24];
		int n;

		rv = 0;
		if (res->existed && strint_parse_i64(old, old_len, &cur) != 0) {
			res->error = RKV_EINVAL;
			break;
		}
		if ((c->delta > 0 && cur > INT64_MAX - c->delta) ||
		    (c->delta < 0 && cur < INT64_MIN - c->delta)) {
			res->error = -ERANGE;
			break;
		}
		res->integer = cur + c->delta;
		n = snprintf(text, sizeof text, "%" PRId64, res->integer);
		rv = set_value(s, c, stored, text, (size_t)n, keep, res);
		break;
	}
	case COMMAND_APPEND: {
		size_t len = old_len + c->value_len;

		rv = 0;
		if (len > c->limit) {
			res->error = RKV_ETOOLARGE;
			break;
		}
		rv = grow_scratch(s, len);
		if (rv)
			break;
		if (old_len)
			memcpy(s->scratch, old, old_len);
		if (c->value_len)
			memcpy(s->scratch + old_len, c->value, c->value_len);
		res->integer = (int64_t)len;
		rv = set_value(s, c, stored, s->scratch, len, keep, res);
		break;
	}
	case COMMAND_SETRANGE:
	case COMMAND_SETBIT:
	case COMMAND_INCRBYFLOAT: {
		/* shard/shard_strings.c computes the new value in scratch. */
		size_t len = 0;

		rv = grow_scratch(s, shard_string_room(c, res->existed ? old_len : 0));
		if (rv)
			break;
		if (!shard_string_exec(c, res->existed, old, old_len, s->scratch, &len, res))
			break;
		rv = set_value(s, c, stored, s->scratch, len, keep, res);
		if (rv == 0 && c->op == COMMAND_INCRBYFLOAT) {
			/* The answer is the new value: it travels where a
			 * previous value would (the sender asks for it). */
			res->old_value = s->scratch;
			res->old_len = len;
		}
		break;
	}
	default:
		rv = RKV_ECORRUPT;
		break;
	}
	/* The pin (replay only) kept old_value alive; nobody reads it after. */
	if (pin)
		block_cache_release(s->cache, pin);
	return rv;
}

/* Stored bytes of the key's current value (0 for none), as settled for `w`. */
static size_t current_len(struct shard *s, const struct shard_waiter *w)
{
	const struct command *cmd = &w->cmd;
	const void *cur;
	size_t cur_len = 0;

	if (memtable_get(s->mem->mt, cmd->key, cmd->key_len, &cur, &cur_len) != 0 &&
	    !(s->imm && memtable_get(s->imm->mt, cmd->key, cmd->key_len, &cur, &cur_len) == 0))
		cur_len = w->prior_state == SHARD_PRIOR_TABLE ? w->prior_len : 0;
	return cur_len;
}

size_t shard_exec_cost(struct shard *s, const struct shard_waiter *w)
{
	const struct command *cmd = &w->cmd;
	size_t len;

	/* Every value written may carry a deadline (kept or new): costs below
	 * count its bytes. */
	switch (cmd->op) {
	case COMMAND_DELETE:
	case COMMAND_EXPIRE_DELETE:
		return memtable_entry_cost(cmd->key_len, 0);
	case COMMAND_INCRBY:
		return memtable_entry_cost(cmd->key_len, 20 + VALUE_DEADLINE_SIZE);
	case COMMAND_INCRBYFLOAT:
		return memtable_entry_cost(cmd->key_len, SHARD_FLOAT_TEXT_MAX + VALUE_DEADLINE_SIZE);
	case COMMAND_EXPIRE_AT:
	case COMMAND_PERSIST:
		/* The value rewritten with its new deadline (its stored size
		 * already counts an old one). */
		return memtable_entry_cost(cmd->key_len, current_len(s, w) + VALUE_DEADLINE_SIZE);
	case COMMAND_APPEND:
	case COMMAND_SETRANGE:
	case COMMAND_SETBIT:
		/* Whatever other growing commands queued before it add, this
		 * key's value can grow by at most all of them. */
		len = current_len(s, w) + s->appended;
		if (cmd->op == COMMAND_APPEND)
			len += cmd->value_len;
		else if (command_growth(cmd) > len)
			len = (size_t)command_growth(cmd);
		return memtable_entry_cost(cmd->key_len, (len < cmd->limit ? len : cmd->limit) +
								 VALUE_DEADLINE_SIZE);
	default:
		return memtable_entry_cost(cmd->key_len, cmd->value_len + VALUE_DEADLINE_SIZE);
	}
}

bool shard_needs_prior(const struct shard_waiter *w)
{
	return !is_blind_put(&w->cmd) || w->want_prior;
}

void shard_prior_release(struct shard *s, struct shard_waiter *w)
{
	if (w->prior_pin)
		block_cache_release(s->cache, w->prior_pin);
	w->prior_pin = NULL;
	w->prior = NULL;
	w->prior_len = 0;
	w->prior_flags = 0;
	w->prior_state = SHARD_PRIOR_UNKNOWN;
	w->warm_done = false;
}

static void warm_done(struct shard_read *rd, int rv, const void *value, size_t len)
{
	struct shard_waiter *w = rd->arg;
	struct shard *s = rd->s;

	w->warming = false;
	w->warm_done = true;
	w->warm_rv = rv;
	w->prior = value;
	w->prior_len = (uint32_t)len;
	w->prior_flags = rd->found_flags;
	w->prior_pin = rd->pin;
	rd->pin = NULL;
	if (!s->closing)
		shard_resume(s);
}

int shard_prior_resolve(struct shard *s, struct shard_waiter *w)
{
	const struct command *c = &w->cmd;
	struct block_cache_handle *pin = NULL;
	struct sstable_handle h;
	struct lsm_table *t;
	const void *value;
	size_t len;
	unsigned level = 0;
	size_t file = 0;
	int rv;

	if (w->warming)
		return SHARD_PRIOR_WAIT;
	rv = memtable_get(s->mem->mt, c->key, c->key_len, &value, &len);
	if (rv == RKV_ENOTFOUND && s->imm)
		rv = memtable_get(s->imm->mt, c->key, c->key_len, &value, &len);
	if (rv != RKV_ENOTFOUND) {
		shard_prior_release(s, w);
		w->prior_state = SHARD_PRIOR_MEMORY;
		return 0;
	}
	if (w->warm_done && w->warm_gen == s->gen) {
		rv = w->warm_rv;
	} else {
		shard_prior_release(s, w);
		rv = lsm_lookup_cached(s, s->version, c->key, c->key_len,
				       bloom_hash(c->key, c->key_len), &level, &file, &value,
				       &len, &pin, &t, &h);
		if (rv == RKV_EAGAIN) {
			w->warming = true;
			w->warm_gen = s->gen;
			w->warm.done = warm_done;
			w->warm.arg = w;
			w->warm.warm_only = true;
			shard_read_start(s, &w->warm, c->key, c->key_len);
			return w->warming ? SHARD_PRIOR_WAIT : shard_prior_resolve(s, w);
		}
		w->prior = value;
		w->prior_len = (uint32_t)len;
		w->prior_flags = rv == 0 ? lsm_found_flags(s) : 0;
		w->prior_pin = pin;
	}
	w->warm_done = false;
	if (rv == 0) {
		w->prior_state = SHARD_PRIOR_TABLE;
		return 0;
	}
	if (w->prior_pin)
		block_cache_release(s->cache, w->prior_pin);
	w->prior_pin = NULL;
	if (rv == RKV_ENOTFOUND) {
		w->prior_state = SHARD_PRIOR_MEMORY;
		return 0;
	}
	return rv;
}

