/*
 * One timer wheel per core: millisecond resolution, hierarchical, intrusive.
 *
 * A `struct timer` lives inside its owner (a peer, a replica, a listener):
 * arming, re-arming and cancelling are O(1) list operations and never
 * allocate or make a system call. The reactor runs expired timers once per
 * loop iteration and sleeps no longer than the next deadline, so ten thousand
 * Raft groups ticking on one core cost no more kernel work than one.
 *
 * Layout: TIMER_LEVELS levels of 64 slots. A timer with deadline `e` sits at
 * the level of the highest 6-bit digit in which `e` differs from the wheel's
 * position `now`, in the slot named by `e`'s digit there. Moving `now`
 * forward visits, per level, only the slots whose digit was passed; their
 * timers either fire (deadline reached) or drop to a lower level. A slot at
 * level L is therefore first visited exactly when `now` reaches the start of
 * `e`'s level-L unit, which is never after `e`. Six levels span 2^36 ms
 * (about two years); a later deadline waits in the top level and is placed
 * again when visited.
 *
 * Invariants:
 *   - a timer fires at the first run whose clock is >= its deadline rounded
 *     up to the millisecond: never early, and timers fire in deadline order
 *     (ties in no particular order);
 *   - callbacks run only from timer_wheel_run(), never from arm or cancel;
 *     a callback may arm, re-arm or cancel any timer, itself included;
 *   - a timer armed for a deadline already passed fires at the next run,
 *     not the current one, so a callback re-arming with delay 0 cannot spin;
 *   - a clock jump (a paused VM, a debugger) costs at most 64 slot visits per
 *     level plus one visit per timer, not one step per elapsed millisecond.
 *
 * Owned by one core; not thread-safe.
 */
#ifndef RINGKV_CORE_TIMER_H
#define RINGKV_CORE_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#define TIMER_LEVEL_BITS 6
#define TIMER_SLOTS (1u << TIMER_LEVEL_BITS)  /* slots per level */
#define TIMER_LEVELS 6                         /* 2^36 ms before clamping */
#define TIMER_NEVER UINT64_MAX                 /* no deadline */

struct timer;

/* Runs from timer_wheel_run(); the timer is no longer armed when it runs. */
typedef void timer_fn(struct timer *t, void *arg);

/* Embed in the owner and zero it (or timer_init) before first use. */
struct timer {
	struct timer *next;       /* slot list */
	struct timer **pprev;     /* the pointer that points at us; NULL = not armed */
	uint64_t deadline_ms;     /* absolute, on the wheel's millisecond clock */
	uint16_t slot;            /* level * TIMER_SLOTS + slot, or the due list */
	timer_fn *fn;
	void *arg;
};

struct timer_wheel {
	uint64_t now_ms;          /* every slot up to here has been visited */
	struct timer *slots[TIMER_LEVELS * TIMER_SLOTS];
	uint64_t occupied[TIMER_LEVELS]; /* bit s set: slot s of the level is non-empty */
	struct timer *due;        /* armed for a passed deadline: fire next run */
	struct timer **due_tail;
	unsigned armed;           /* timers armed */
	uint64_t fired;           /* callbacks run, for metrics */
};

/* Starts the wheel at `now_us` (microseconds on the owner's monotonic clock). */
void timer_wheel_init(struct timer_wheel *w, uint64_t now_us);

/* Sets the callback of a timer that is not armed. */
void timer_init(struct timer *t, timer_fn *fn, void *arg);

static inline bool timer_armed(const struct timer *t)
{
	return t->pprev != 0;
}

/*
 * Arms `t` to fire once the clock passes `deadline_us` (absolute, same clock
 * as timer_wheel_run). An armed timer is moved: re-arming is cancel + arm.
 * The callback set by timer_init (or the last arm) is kept.
 */
void timer_arm_at(struct timer_wheel *w, struct timer *t, uint64_t deadline_us);

/* Disarms `t`; harmless when it is not armed. */
void timer_cancel(struct timer_wheel *w, struct timer *t);

/*
 * Advances the wheel to `now_us` and runs every timer whose deadline is
 * reached, in deadline order. A clock that went backwards is treated as not
 * having moved. Returns the number of callbacks run.
 */
unsigned timer_wheel_run(struct timer_wheel *w, uint64_t now_us);

/*
 * The earliest time (microseconds) at which timer_wheel_run() has work: a
 * deadline, or a slot whose timers move down a level (at most one early
 * wake-up per level per turn). 0 when something is due now, TIMER_NEVER
 * when nothing is armed.
 */
uint64_t timer_wheel_next_us(const struct timer_wheel *w);

#endif
