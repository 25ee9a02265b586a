/*
 * The search of lincheck.h, one key at a time.
 *
 * The key's operations become 2n entries, a call and a return each, sorted
 * by time (a call before a return at the same nanosecond: operations that
 * touch are taken as concurrent, which can only hide a violation, never
 * invent one) and threaded on a doubly linked list. The walk: at a call,
 * try to linearize that operation now (the register model accepts it and
 * the resulting (linearized set, value) pair was never seen); on success
 * lift the call and its return out of the list, push, and restart from the
 * front. At a return, the operation it ends was not linearized before it
 * returned: undo the last choice (pop, unlift) and try the next call. The
 * history is linearizable when the list empties, and not when a return is
 * met with nothing to undo. The memo (a Zobrist hash of the set plus the
 * value to find an entry; the linearized prefix and the few words of the
 * set above it to compare, struct lin_set) makes each (set, value) pair
 * explored once, which is what keeps histories with little concurrency
 * linear in practice.
 *
 * Three prunings on top, each keeping every order that could work (a
 * valid order without the pruned choice always has a twin with it):
 *   - a read that sees the current value is linearized first, with no
 *     alternative tried: it changes nothing, and every open operation
 *     returns after its invocation;
 *   - with a write, every open put whose value no read returns is taken
 *     too, just before it: nothing can observe it in between;
 *   - when values are unique among the key's puts, no write is taken while
 *     a read of the current value is still to come (that value would be
 *     gone for good).
 * Without them a group commit's batch of overlapping writes costs
 * 2^batch states before each read; with them a recorded history of 84,000
 * operations checks in 0.4 s.
 *
 * Invariant of the list: every call still in it precedes its own return,
 * so a walk from the front meets a return before it runs off the end.
 */
#include "lincheck.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SHRINK_SECONDS 5.0          /* wall time shrinking a window may take */
#define MEMO_MAX_ENTRIES (4u << 20) /* then the memo starts over */

struct entry {
	uint64_t time;
	uint32_t local;      /* index into the searched op list */
	uint32_t is_return;
	uint32_t match;      /* a call: its return's entry */
	uint32_t prev;
	uint32_t next;       /* 0 = end of list (entry 0 is the head) */
};

struct frame {
	uint32_t entry;      /* the call linearized */
	uint32_t value;      /* register value before it */
	uint32_t prefix;     /* the linearized prefix before it */
	int64_t highest;     /* the highest linearized op before it, -1 = none */
	bool forced;         /* a read taken greedily: no alternative to try */
	bool glued;          /* an unread put taken with the write above it */
};

struct memo {
	uint64_t *arena;     /* entries: hash, value | prefix << 32, word count, words */
	size_t used;         /* words of arena in use */
	size_t cap;
	size_t count;
	size_t *slots;       /* arena offset + 1, 0 = empty */
	size_t nslots;       /* power of two, at most half full */
};

struct stuck {
	bool found;
	size_t depth;
	size_t local;
	uint32_t value;
};

struct ctx {
	const struct lc_history *h;
	struct timespec deadline;
	bool has_deadline;
	uint64_t steps;       /* over every search */
	bool out_of_time;
	bool *read;           /* scratch, one flag per value id, all false */
	uint32_t *readers;    /* scratch, one count per value id, all 0 */
};

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static bool past(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec ||
	       (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

static void deadline_in(struct timespec *t, double seconds)
{
	clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_sec += (time_t)seconds;
	t->tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

static void memo_free(struct memo *m)
{
	free(m->arena);
	free(m->slots);
}

static uint64_t memo_slot_hash(const uint64_t *e)
{
	return e[0] ^ mix64(e[1]);
}

static int memo_grow(struct memo *m)
{
	size_t nslots = m->nslots ? m->nslots * 2 : 1024;
	size_t *slots = calloc(nslots, sizeof *slots);

	if (!slots)
		return -ENOMEM;
	for (size_t off = 0; off < m->used; off += 3 + m->arena[off + 2]) {
		size_t s = (size_t)memo_slot_hash(m->arena + off) & (nslots - 1);

		while (slots[s])
			s = (s + 1) & (nslots - 1);
		slots[s] = off + 1;
	}
	free(m->slots);
	m->slots = slots;
	m->nslots = nslots;
	return 0;
}

/* Forgets everything: sound (the memo only saves work), bounds memory. */
static void memo_clear(struct memo *m)
{
	m->used = 0;
	m->count = 0;
	if (m->slots)
		memset(m->slots, 0, m->nslots * sizeof *m->slots);
}

/*
 * 1 when the set (all ops below `prefix`, plus the ones in `words`) with
 * register `value` is new (and now remembered), 0 when seen, -ENOMEM.
 */
static int memo_insert(struct memo *m, uint64_t hash, uint32_t value,
		       uint32_t prefix, const uint64_t *words, size_t nwords)
{
	uint64_t key[3] = { hash, value | (uint64_t)prefix << 32, nwords };
	uint64_t *e;
	size_t s;

	if (m->count >= MEMO_MAX_ENTRIES)
		memo_clear(m);
	if ((m->count + 1) * 2 > m->nslots && memo_grow(m))
		return -ENOMEM;
	s = (size_t)memo_slot_hash(key) & (m->nslots - 1);
	while (m->slots[s]) {
		e = m->arena + m->slots[s] - 1;
		if (e[0] == key[0] && e[1] == key[1] && e[2] == key[2] &&
		    memcmp(e + 3, words, nwords * sizeof *words) == 0)
			return 0;
		s = (s + 1) & (m->nslots - 1);
	}
	if (m->used + 3 + nwords > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 4096;
		uint64_t *arena;

		while (cap < m->used + 3 + nwords)
			cap *= 2;
		arena = realloc(m->arena, cap * sizeof *arena);
		if (!arena)
			return -ENOMEM;
		m->arena = arena;
		m->cap = cap;
	}
	e = m->arena + m->used;
	memcpy(e, key, sizeof key);
	memcpy(e + 3, words, nwords * sizeof *words);
	m->slots[s] = m->used + 1;
	m->used += 3 + nwords;
	m->count++;
	return 1;
}

/* The register: put sets it, del clears it, get must see it. */
static bool model_step(uint32_t value, const struct lc_op *op, uint32_t *next)
{
	switch (op->kind) {
	case LC_PUT:
		*next = op->value;
		return true;
	case LC_DEL:
		*next = LC_NIL;
		return true;
	case LC_GET:
		*next = value;
		return value == op->value;
	}
	return false;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	if (x->is_return != y->is_return)
		return x->is_return ? 1 : -1;
	return x->local < y->local ? -1 : x->local > y->local;
}

static void lift(struct entry *ent, uint32_t e)
{
	uint32_t m = ent[e].match;

	ent[ent[e].prev].next = ent[e].next;
	ent[ent[e].next].prev = ent[e].prev;
	ent[ent[m].prev].next = ent[m].next;
	if (ent[m].next)
		ent[ent[m].next].prev = ent[m].prev;
}

static void unlift(struct entry *ent, uint32_t e)
{
	uint32_t m = ent[e].match;

	ent[ent[m].prev].next = m;
	if (ent[m].next)
		ent[ent[m].next].prev = m;
	ent[ent[e].prev].next = e;
	ent[ent[e].next].prev = e;
}

static int invoke_order(const void *a, const void *b, void *arg)
{
	const struct lc_history *h = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	if (h->ops[x].invoke != h->ops[y].invoke)
		return h->ops[x].invoke < h->ops[y].invoke ? -1 : 1;
	return x < y ? -1 : x > y;
}

/*
 * The linearized set, kept so that a memo entry is small: operations are
 * numbered in invoke order, and the search linearizes them roughly in that
 * order, so the set is "every operation below `prefix`" plus a few bits
 * from there up to `highest`. Only those few words are remembered.
 */
struct lin_set {
	uint64_t *bits;      /* the whole set */
	uint32_t prefix;     /* lowest operation not linearized */
	int64_t highest;     /* highest linearized, -1 = none */
};

static void set_add(struct lin_set *l, uint32_t i)
{
	l->bits[i / 64] |= 1ull << (i % 64);
	if ((int64_t)i > l->highest)
		l->highest = i;
	if (i == l->prefix) {
		uint32_t w = i / 64;
		uint64_t ones = ~l->bits[w] & (~0ull << (i % 64));

		while (!ones)
			ones = ~l->bits[++w]; /* a spare zero word ends the set */
		l->prefix = w * 64 + (uint32_t)__builtin_ctzll(ones);
	}
}

/* The words from the prefix's word to the highest's, for the memo. */
static size_t set_words(const struct lin_set *l, const uint64_t **words)
{
	size_t from = l->prefix / 64;

	*words = l->bits + from;
	if (l->highest < (int64_t)l->prefix)
		return 0;
	return (size_t)l->highest / 64 + 1 - from;
}

/*
 * Searches the operations ops[0..n) (indexes into c->h->ops, all of one
 * key, already filtered). Returns a verdict or -ENOMEM; fills `stuck` on
 * LC_NOT_LINEARIZABLE and raises *max_open.
 */
static int search(struct ctx *c, const size_t *unsorted, size_t n,
		  uint64_t max_steps, struct stuck *stuck, size_t *max_open)
{
	size_t *ops = malloc((n + 1) * sizeof *ops);
	struct entry *ent = calloc(2 * n + 1, sizeof *ent);
	struct frame *stack = calloc(n + 1, sizeof *stack);
	struct lin_set set = { .bits = calloc(n / 64 + 2, sizeof(uint64_t)),
			       .highest = -1 };
	uint64_t *zob = calloc(n + 1, sizeof *zob);
	uint32_t *where = calloc(n + 1, sizeof *where);
	uint32_t *glue = calloc(n + 1, sizeof *glue);
	bool *unread = calloc(n + 1, sizeof *unread);
	struct memo memo = { 0 };
	uint64_t steps = 0, hash = 0;
	uint32_t value = LC_NIL, e;
	size_t depth = 0, open = 0;
	bool unique = true;
	int rv = -ENOMEM;

	memset(stuck, 0, sizeof *stuck);
	if (!ops || !ent || !stack || !set.bits || !zob || !where || !glue || !unread)
		goto out;
	memcpy(ops, unsorted, n * sizeof *ops);
	qsort_r(ops, n, sizeof *ops, invoke_order, (void *)c->h);
	/* Values unique among the puts? Then a value, once overwritten, is
	 * gone for good, and the rule on writes below holds. */
	for (size_t i = 0; i < n; i++) {
		const struct lc_op *op = &c->h->ops[ops[i]];

		if (op->kind == LC_PUT) {
			unique &= !c->read[op->value];
			c->read[op->value] = true;
		}
	}
	for (size_t i = 0; i < n; i++)
		c->read[c->h->ops[ops[i]].value] = false;
	for (size_t i = 0; i < n; i++) {
		const struct lc_op *op = &c->h->ops[ops[i]];

		if (op->kind == LC_GET) {
			c->read[op->value] = true;
			c->readers[op->value] += unique && op->value != LC_NIL;
		}
	}
	for (size_t i = 0; i < n; i++)
		unread[i] = c->h->ops[ops[i]].kind == LC_PUT &&
			    !c->read[c->h->ops[ops[i]].value];
	for (size_t i = 0; i < n; i++)
		c->read[c->h->ops[ops[i]].value] = false;
	for (size_t i = 0; i < n; i++) {
		const struct lc_op *op = &c->h->ops[ops[i]];

		ent[1 + 2 * i] = (struct entry){ .time = op->invoke, .local = (uint32_t)i };
		ent[2 + 2 * i] = (struct entry){ .time = op->ret, .local = (uint32_t)i,
						 .is_return = 1 };
		zob[i] = mix64(i * 0x632be59bd9b4e019ull + 1);
	}
	qsort(ent + 1, 2 * n, sizeof *ent, entry_cmp);
	for (uint32_t i = 1; i <= 2 * n; i++) {
		ent[i].prev = i - 1;
		ent[i].next = i < 2 * n ? i + 1 : 0;
		if (ent[i].is_return) {
			ent[where[ent[i].local]].match = i;
			open--;
		} else {
			where[ent[i].local] = i;
			if (++open > *max_open)
				*max_open = open;
		}
	}
	ent[0].next = n ? 1 : 0;

	e = ent[0].next;
	while (ent[0].next) {
		struct entry *x;
		uint32_t take = 0, next = 0;
		bool forced = false;

		steps++;
		if (max_steps && steps > max_steps) {
			rv = LC_UNDECIDED;
			goto out;
		}
		if ((steps & 0xfff) == 0 && c->has_deadline && past(&c->deadline)) {
			c->out_of_time = true;
			rv = LC_UNDECIDED;
			goto out;
		}
		if (e == ent[0].next) {
			/* A read that sees the current value may be linearized
			 * first without loss: it changes nothing, and every op
			 * still open returns after its invocation. */
			for (uint32_t f = e; f && !ent[f].is_return; f = ent[f].next) {
				const struct lc_op *op = &c->h->ops[ops[ent[f].local]];

				if (op->kind == LC_GET && op->value == value) {
					take = f;
					next = value;
					forced = true;
					break;
				}
			}
		}
		x = &ent[e];
		/* A write now would bury the current value for good while a
		 * read of it is still to come (values are unique): not now. */
		if (!take && !x->is_return &&
		    model_step(value, &c->h->ops[ops[x->local]], &next) &&
		    (c->h->ops[ops[x->local]].kind == LC_GET || value == LC_NIL ||
		     c->readers[value] == 0))
			take = e;
		if (take) {
			uint32_t local = ent[take].local;
			struct frame saved = { take, value, set.prefix, set.highest, forced, false };
			const uint64_t *words;
			uint64_t hash_after = hash ^ zob[local];
			size_t nwords, glued = 0;
			int fresh;

			/* With a write, take every open put that no read sees:
			 * it can sit just before this write in any order that
			 * works (nothing can observe it between), so placing
			 * it here loses nothing and spares trying its subsets. */
			if (c->h->ops[ops[local]].kind != LC_GET) {
				for (uint32_t f = ent[0].next; f && !ent[f].is_return;
				     f = ent[f].next)
					if (f != take && unread[ent[f].local]) {
						glue[glued++] = f;
						set_add(&set, ent[f].local);
						hash_after ^= zob[ent[f].local];
					}
			}
			set_add(&set, local);
			nwords = set_words(&set, &words);
			fresh = memo_insert(&memo, hash_after, next, set.prefix,
					    words, nwords);
			if (fresh < 0)
				goto out;
			if (fresh) {
				/* Frames of the glued puts first, each restoring the
				 * state before all of them. */
				for (size_t g = 0; g < glued; g++) {
					stack[depth++] = (struct frame){ glue[g], value,
						saved.prefix, saved.highest, false, true };
					lift(ent, glue[g]);
				}
				hash = hash_after;
				if (c->h->ops[ops[local]].kind == LC_GET && unique &&
				    next != LC_NIL)
					c->readers[next]--;
				stack[depth++] = saved;
				value = next;
				lift(ent, take);
				e = ent[0].next;
				continue;
			}
			for (size_t g = 0; g < glued; g++) {
				uint32_t gl = ent[glue[g]].local;

				set.bits[gl / 64] &= ~(1ull << (gl % 64));
			}
			set.bits[local / 64] &= ~(1ull << (local % 64));
			set.prefix = saved.prefix;
			set.highest = saved.highest;
			if (!forced) {
				e = x->next;
				continue;
			}
			/* The forced read leads to a state already explored:
			 * this one fails as well. */
		} else if (!x->is_return) {
			e = x->next;
			continue;
		} else if (!stuck->found || depth > stuck->depth) {
			stuck->found = true;
			stuck->depth = depth;
			stuck->local = ops[x->local];
			stuck->value = value;
		}
		/* Backtrack past every forced read to the last real choice,
		 * taking the puts glued under a choice with it. */
		for (;;) {
			struct frame top;

			if (depth == 0) {
				rv = LC_NOT_LINEARIZABLE;
				goto out;
			}
			top = stack[--depth];
			for (;;) {
				uint32_t l = ent[stack[depth].entry].local;

				value = stack[depth].value;
				set.bits[l / 64] &= ~(1ull << (l % 64));
				set.prefix = stack[depth].prefix;
				set.highest = stack[depth].highest;
				hash ^= zob[l];
				if (c->h->ops[ops[l]].kind == LC_GET && unique &&
				    value != LC_NIL)
					c->readers[value]++;
				unlift(ent, stack[depth].entry);
				if (depth == 0 || !stack[depth - 1].glued)
					break;
				depth--;
			}
			if (!top.forced) {
				e = ent[top.entry].next;
				break;
			}
		}
	}
	rv = LC_LINEARIZABLE;
out:
	for (size_t i = 0; ops && i < n; i++)
		c->readers[c->h->ops[ops[i]].value] = 0;
	c->steps += steps;
	memo_free(&memo);
	free(unread);
	free(glue);
	free(where);
	free(zob);
	free(set.bits);
	free(stack);
	free(ent);
	free(ops);
	return rv;
}

/*
 * Keeps of ops[0..n) (one key) what constrains the search: ok operations,
 * and unknown writes whose effect some ok get observed. `read` (one flag
 * per value id, all false on entry and on return) is scratch. Returns the
 * count kept, compacted to the front of `ops`.
 */
static size_t filter(const struct lc_history *h, size_t *ops, size_t n,
		     bool *read)
{
	bool nil_read = false;
	size_t kept = 0;

	for (size_t i = 0; i < n; i++) {
		const struct lc_op *op = &h->ops[ops[i]];

		if (op->kind == LC_GET && op->outcome == LC_OK) {
			read[op->value] = true;
			nil_read |= op->value == LC_NIL;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct lc_op *op = &h->ops[ops[i]];
		bool keep = op->outcome == LC_OK;

		if (op->outcome == LC_UNKNOWN && op->kind == LC_PUT)
			keep = read[op->value];
		else if (op->outcome == LC_UNKNOWN && op->kind == LC_DEL)
			keep = nil_read;
		if (keep)
			ops[kept++] = ops[i];
	}
	for (size_t i = 0; i < n; i++)
		read[h->ops[ops[i]].value] = false;
	read[LC_NIL] = false;
	return kept;
}

/*
 * cand = list minus list[from, to), with the writes a remaining get needs
 * put back: a put whose value is read, a del when nil is read. Every
 * removal left is sound (a linearizable history stays linearizable without
 * it), so a candidate that still fails is a true witness. Returns the
 * candidate's length.
 */
static size_t candidate(const struct lc_history *h, const size_t *list, size_t m,
			size_t from, size_t to, size_t *cand, bool *read)
{
	bool nil_read = false;
	size_t len = 0;

	for (size_t i = 0; i < m; i++) {
		const struct lc_op *op = &h->ops[list[i]];

		if ((i < from || i >= to) && op->kind == LC_GET) {
			read[op->value] = true;
			nil_read |= op->value == LC_NIL;
		}
	}
	for (size_t i = 0; i < m; i++) {
		const struct lc_op *op = &h->ops[list[i]];

		if (i < from || i >= to || (op->kind == LC_PUT && read[op->value]) ||
		    (op->kind == LC_DEL && nil_read))
			cand[len++] = list[i];
	}
	for (size_t i = 0; i < m; i++)
		read[h->ops[list[i]].value] = false;
	return len;
}

/*
 * Shrinks a failing key's ops[0..n) to a 1-minimal failing subset (ddmin:
 * drop chunks of halving size while the rest still fails, the list
 * compacted after each success so later tries cost what is left).
 */
static int shrink(struct ctx *c, const size_t *ops, size_t n, uint64_t max_steps,
		  bool *read, struct lc_result *r)
{
	size_t *list = malloc((n + 1) * sizeof *list);
	size_t *cand = malloc((n + 1) * sizeof *cand);
	size_t m = n, chunk, dummy = 0;
	struct timespec until;
	struct stuck stuck;
	bool minimal = true;
	int rv = -ENOMEM;

	if (!list || !cand)
		goto out;
	memcpy(list, ops, n * sizeof *list);
	deadline_in(&until, SHRINK_SECONDS);
	chunk = m / 2 ? m / 2 : 1;
	for (;;) {
		bool changed = false;

		for (size_t from = 0; from < m;) {
			size_t len = candidate(c->h, list, m, from, from + chunk, cand, read);
			int v;

			if (len == m) {
				from += chunk;
				continue;
			}
			if (past(&until)) {
				minimal = false;
				break;
			}
			v = search(c, cand, len, max_steps, &stuck, &dummy);
			if (v < 0)
				goto out;
			if (v == LC_NOT_LINEARIZABLE) {
				size_t *swap = list;

				list = cand;
				cand = swap;
				m = len;
				changed = true;
			} else {
				from += chunk;
			}
		}
		if (!minimal || (chunk == 1 && !changed))
			break;
		chunk = chunk > 1 ? chunk / 2 : 1;
		if (chunk > m / 2)
			chunk = m / 2 ? m / 2 : 1;
	}
	r->window = malloc((m + 1) * sizeof *r->window);
	if (!r->window)
		goto out;
	memcpy(r->window, list, m * sizeof *list);
	r->window_len = m;
	r->window_minimal = minimal;
	/* The window failed its last search, or is the whole key (which failed). */
	rv = search(c, r->window, r->window_len, max_steps, &stuck, &dummy);
	if (rv == LC_NOT_LINEARIZABLE && stuck.found) {
		r->stuck_known = true;
		r->stuck_op = stuck.local;
		r->stuck_depth = stuck.depth;
		r->stuck_value = stuck.value;
	}
	rv = rv < 0 ? rv : 0;
out:
	free(cand);
	free(list);
	return rv;
}

void lc_budget_default(struct lc_budget *b)
{
	b->max_states = 10 * 1000 * 1000;
	b->max_seconds = 60;
	b->explain = true;
}

static int invoke_cmp(const void *a, const void *b, void *arg)
{
	const struct lc_history *h = arg;
	const struct lc_op *x = &h->ops[*(const size_t *)a];
	const struct lc_op *y = &h->ops[*(const size_t *)b];

	if (x->invoke != y->invoke)
		return x->invoke < y->invoke ? -1 : 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

int lc_check(const struct lc_history *h, const struct lc_budget *b,
	     struct lc_result *r)
{
	size_t nkeys = h->keys.count;
	size_t *start = calloc(nkeys + 1, sizeof *start);
	size_t *byKey = malloc((h->count + 1) * sizeof *byKey);
	bool *read = calloc(h->values.count + 1, sizeof *read);
	uint32_t *readers = calloc(h->values.count + 1, sizeof *readers);
	struct ctx c = { .h = h, .read = read, .readers = readers };
	bool found_bad = false;
	int rv = -ENOMEM;

	memset(r, 0, sizeof *r);
	r->keys = nkeys;
	if (!start || !byKey || !read || !readers)
		goto out;
	if (b->max_seconds > 0) {
		deadline_in(&c.deadline, b->max_seconds);
		c.has_deadline = true;
	}
	/* Counting sort by key, keeping history order within a key. */
	for (size_t i = 0; i < h->count; i++)
		start[h->ops[i].key + 1]++;
	for (size_t k = 0; k < nkeys; k++)
		start[k + 1] += start[k];
	{
		size_t *fill = calloc(nkeys + 1, sizeof *fill);

		if (!fill)
			goto out;
		memcpy(fill, start, (nkeys + 1) * sizeof *fill);
		for (size_t i = 0; i < h->count; i++)
			byKey[fill[h->ops[i].key]++] = i;
		free(fill);
	}
	for (size_t k = 0; k < nkeys; k++) {
		size_t *ops = byKey + start[k];
		size_t n = filter(h, ops, start[k + 1] - start[k], read);
		struct stuck stuck;
		int v;

		v = search(&c, ops, n, b->max_states, &stuck, &r->max_open);
		if (v < 0)
			goto out;
		if (v == LC_UNDECIDED) {
			if (r->keys_undecided++ == 0 && !found_bad)
				r->bad_key = (uint32_t)k;
		} else if (v == LC_NOT_LINEARIZABLE) {
			r->keys_bad++;
			if (!found_bad) {
				found_bad = true;
				r->bad_key = (uint32_t)k;
				if (b->explain) {
					v = shrink(&c, ops, n, b->max_states, read, r);
					if (v < 0)
						goto out;
				}
			}
		}
		if (c.out_of_time) {
			r->keys_undecided += nkeys - k - 1;
			break;
		}
	}
	if (r->window)
		qsort_r(r->window, r->window_len, sizeof *r->window, invoke_cmp,
			(void *)h);
	r->states = c.steps;
	r->verdict = r->keys_bad ? LC_NOT_LINEARIZABLE :
		     r->keys_undecided ? LC_UNDECIDED : LC_LINEARIZABLE;
	rv = (int)r->verdict;
out:
	if (rv < 0)
		lc_result_free(r);
	free(readers);
	free(read);
	free(byKey);
	free(start);
	return rv;
}

void lc_result_free(struct lc_result *r)
{
	free(r->window);
	r->window = NULL;
	r->window_len = 0;
}
