/*
 * The hierarchical timer wheel. See core/timer.h for the layout and the
 * invariants; the one subtle rule here is that timer_wheel_run() moves the
 * wheel from event to event (the next slot visit of any level), so every
 * batch it fires holds timers of a single deadline and batches go in
 * deadline order, however far the clock jumped.
 */
#include "core/timer.h"

#include <assert.h>
#include <stddef.h>

#define SLOT_MASK ((uint64_t)TIMER_SLOTS - 1)
#define SLOT_DUE ((uint16_t)(TIMER_LEVELS * TIMER_SLOTS))   /* on w->due */
#define SLOT_BATCH ((uint16_t)(SLOT_DUE + 1))              /* being fired */

static unsigned level_shift(unsigned level)
{
	return level * TIMER_LEVEL_BITS;
}

static uint64_t rotr64(uint64_t x, unsigned n)
{
	n &= 63;
	return n ? (x >> n) | (x << (64 - n)) : x;
}

static uint64_t rotl64(uint64_t x, unsigned n)
{
	n &= 63;
	return n ? (x << n) | (x >> (64 - n)) : x;
}

static uint64_t us_to_ms_up(uint64_t us)
{
	return us / 1000 + (us % 1000 != 0);
}

void timer_wheel_init(struct timer_wheel *w, uint64_t now_us)
{
	unsigned i;

	for (i = 0; i < TIMER_LEVELS * TIMER_SLOTS; i++)
		w->slots[i] = NULL;
	for (i = 0; i < TIMER_LEVELS; i++)
		w->occupied[i] = 0;
	w->now_ms = now_us / 1000;
	w->due = NULL;
	w->due_tail = &w->due;
	w->armed = 0;
	w->fired = 0;
}

void timer_init(struct timer *t, timer_fn *fn, void *arg)
{
	assert(!timer_armed(t));
	t->next = NULL;
	t->pprev = NULL;
	t->deadline_ms = 0;
	t->slot = 0;
	t->fn = fn;
	t->arg = arg;
}

static void push_front(struct timer **head, struct timer *t)
{
	t->next = *head;
	if (t->next)
		t->next->pprev = &t->next;
	*head = t;
	t->pprev = head;
}

/* Files `t` (deadline after now) in the slot of the highest digit in which
 * its deadline differs from the wheel's position. */
static void place(struct timer_wheel *w, struct timer *t)
{
	uint64_t diff = t->deadline_ms ^ w->now_ms;
	uint64_t e_units, now_units;
	unsigned level, slot;

	assert(t->deadline_ms > w->now_ms);
	level = (unsigned)(63 - __builtin_clzll(diff)) / TIMER_LEVEL_BITS;
	if (level >= TIMER_LEVELS)
		level = TIMER_LEVELS - 1;
	e_units = t->deadline_ms >> level_shift(level);
	now_units = w->now_ms >> level_shift(level);
	/* Below the top level the XOR rule keeps the distance under one turn;
	 * at the top a farther deadline parks one turn out and is placed again
	 * when its slot is visited. */
	if (e_units - now_units < TIMER_SLOTS)
		slot = (unsigned)(e_units & SLOT_MASK);
	else
		slot = (unsigned)((now_units + TIMER_SLOTS - 1) & SLOT_MASK);
	t->slot = (uint16_t)(level * TIMER_SLOTS + slot);
	push_front(&w->slots[t->slot], t);
	w->occupied[level] |= (uint64_t)1 << slot;
}

static void append_due(struct timer_wheel *w, struct timer *t)
{
	t->next = NULL;
	t->pprev = w->due_tail;
	*w->due_tail = t;
	w->due_tail = &t->next;
	t->slot = SLOT_DUE;
}

void timer_cancel(struct timer_wheel *w, struct timer *t)
{
	if (!timer_armed(t))
		return;
	*t->pprev = t->next;
	if (t->next)
		t->next->pprev = t->pprev;
	if (t->slot == SLOT_DUE) {
		if (!t->next)
			w->due_tail = t->pprev;
	} else if (t->slot < SLOT_DUE && !w->slots[t->slot]) {
		w->occupied[t->slot / TIMER_SLOTS] &=
			~((uint64_t)1 << (t->slot % TIMER_SLOTS));
	}
	t->next = NULL;
	t->pprev = NULL;
	w->armed--;
}

void timer_arm_at(struct timer_wheel *w, struct timer *t, uint64_t deadline_us)
{
	assert(t->fn);
	timer_cancel(w, t);
	t->deadline_ms = us_to_ms_up(deadline_us);
	w->armed++;
	if (t->deadline_ms <= w->now_ms)
		append_due(w, t);
	else
		place(w, t);
}

/* The next time (ms) any level has a non-empty slot to visit. */
static uint64_t next_visit_ms(const struct timer_wheel *w)
{
	uint64_t best = TIMER_NEVER;
	unsigned level;

	for (level = 0; level < TIMER_LEVELS; level++) {
		uint64_t units = w->now_ms >> level_shift(level);
		uint64_t rot, at;
		unsigned dist;

		if (!w->occupied[level])
			continue;
		/* Distance 1..64 from the current digit to the next set bit. */
		rot = rotr64(w->occupied[level], (unsigned)((units + 1) & SLOT_MASK));
		dist = (unsigned)__builtin_ctzll(rot) + 1;
		at = (units + dist) << level_shift(level);
		if (at < best)
			best = at;
	}
	return best;
}

/* Moves the wheel to `to_ms` (no visit is due before it): timers whose
 * deadline is reached go onto *batch, the others drop to a lower level. */
static void advance(struct timer_wheel *w, uint64_t to_ms, struct timer **batch)
{
	struct timer *todo = NULL;
	unsigned level;

	for (level = 0; level < TIMER_LEVELS; level++) {
		uint64_t old_units = w->now_ms >> level_shift(level);
		uint64_t new_units = to_ms >> level_shift(level);
		uint64_t passed, visit;

		if (new_units == old_units)
			break; /* higher levels cannot have moved either */
		passed = new_units - old_units;
		if (passed >= TIMER_SLOTS)
			visit = ~(uint64_t)0;
		else
			visit = rotl64(((uint64_t)1 << passed) - 1,
				       (unsigned)((old_units + 1) & SLOT_MASK));
		visit &= w->occupied[level];
		w->occupied[level] &= ~visit;
		while (visit) {
			unsigned slot = (unsigned)__builtin_ctzll(visit);
			struct timer **head = &w->slots[level * TIMER_SLOTS + slot];

			visit &= visit - 1;
			while (*head) {
				struct timer *t = *head;

				*head = t->next;
				t->next = todo;
				todo = t;
			}
		}
	}
	w->now_ms = to_ms;
	while (todo) {
		struct timer *t = todo;

		todo = t->next;
		if (t->deadline_ms <= to_ms) {
			push_front(batch, t);
			t->slot = SLOT_BATCH;
		} else {
			place(w, t);
		}
	}
}

/* Fires every timer on *batch. A callback may cancel a timer still on it
 * (pprev keeps pointing into the batch), or arm it again. */
static unsigned fire(struct timer_wheel *w, struct timer **batch)
{
	unsigned n = 0;

	while (*batch) {
		struct timer *t = *batch;

		*batch = t->next;
		if (*batch)
			(*batch)->pprev = batch;
		t->next = NULL;
		t->pprev = NULL;
		w->armed--;
		w->fired++;
		n++;
		t->fn(t, t->arg);
	}
	return n;
}

unsigned timer_wheel_run(struct timer_wheel *w, uint64_t now_us)
{
	uint64_t now_ms = now_us / 1000;
	struct timer *batch = NULL;
	unsigned n = 0;

	if (now_ms < w->now_ms)
		now_ms = w->now_ms;
	/* Armed for a deadline already passed: their turn is this run. Taken
	 * as a whole, so those they arm in turn wait for the next run. */
	if (w->due) {
		batch = w->due;
		batch->pprev = &batch;
		for (struct timer *t = batch; t; t = t->next)
			t->slot = SLOT_BATCH;
		w->due = NULL;
		w->due_tail = &w->due;
		n += fire(w, &batch);
	}
	for (;;) {
		uint64_t at = next_visit_ms(w);

		if (at > now_ms)
			break;
		advance(w, at, &batch);
		n += fire(w, &batch);
	}
	w->now_ms = now_ms;
	return n;
}

uint64_t timer_wheel_next_us(const struct timer_wheel *w)
{
	uint64_t ms;

	if (w->due)
		return 0;
	ms = next_visit_ms(w);
	if (ms == TIMER_NEVER || ms > TIMER_NEVER / 1000)
		return TIMER_NEVER;
	return ms * 1000;
}
