/*
 * The per-core reactor: one thread pinned to one CPU, owning one io_uring ring,
 * one memory pool and whatever state its users hang off it. Cores share
 * nothing mutable; they exchange messages over one SPSC ring per ordered pair
 * of cores.
 *
 * One iteration of the loop:
 *   1. drain every inbound ring and run each message's handler;
 *   2. run the timers whose deadline passed (core/timer.h), in deadline order;
 *   3. run the hooks (group commit, send flushing: work batched per iteration,
 *      after the timers so what a Raft tick produced goes out in this pass);
 *   4. publish what this core staged for others, ringing a doorbell only for a
 *      consumer that said it is going to sleep;
 *   5. submit queued SQEs and wait for a completion, a doorbell or the next
 *      timer deadline, at most REACTOR_IDLE_WAIT_US (100 ms: it bounds how
 *      late a core notices reactor_group_stop(), which rings no doorbell);
 *      not at all when a hook's work was queued after it ran
 *      (reactor_poll_again);
 *   6. read the clock into r->now_us (once per iteration, after the wait, so
 *      completions and the next pass see the time they run at, not the time
 *      before a sleep) and dispatch completions.
 *
 * Sleeping without losing a wake-up: before waiting, a consumer stores
 * sleeping = 1, issues a full fence and re-checks its inbound rings; a producer
 * publishes, issues a full fence and reads `sleeping`. One of the two always
 * sees the other (Dekker), so either the consumer finds the message or the
 * producer rings (IORING_OP_MSG_RING into the consumer's ring, or an eventfd
 * the consumer's ring is reading when MSG_RING is missing).
 *
 * Shutdown: reactor_group_stop() sets a flag; each core calls its `stop`
 * callback once (stop accepting, stop reading), keeps looping until its
 * `quiescent` callback says everything it started has finished, and the group
 * exits together once every core is quiescent, because a quiescent core may
 * still be serving requests forwarded by a busy one.
 */
#ifndef RINGKV_CORE_REACTOR_H
#define RINGKV_CORE_REACTOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/pool.h"
#include "core/spsc.h"
#include "core/timer.h"
#include "io/ring.h"

struct reactor;
struct reactor_group;
struct topology;

struct reactor_msg;
/* Runs on the receiving core; from then on the receiver owns the message. */
typedef void reactor_msg_fn(struct reactor *r, struct reactor_msg *m);

/* Embed as the first member of every cross-core message. */
struct reactor_msg {
	reactor_msg_fn *handle;
	struct reactor_msg *next; /* overflow queue link, sender side only */
};

typedef void reactor_hook_fn(struct reactor *r, void *arg);

struct reactor_callbacks {
	/* In the new thread, after the ring exists, before any message flows. */
	int (*start)(struct reactor *r, void *arg, char *err, size_t errlen);
	/* Once, when the group begins to stop. */
	void (*stop)(struct reactor *r, void *arg);
	/* After stop: true once nothing this core started is still running. */
	bool (*quiescent)(struct reactor *r, void *arg);
	/* After the loop ended on every core, in the core's thread. */
	void (*finish)(struct reactor *r, void *arg);
	void *arg;
};

#define REACTOR_MAX_HOOKS 16

struct reactor_peer {
	struct spsc_ring *out;          /* this core -> peer */
	struct io_op ring_op;           /* completion of our MSG_RING to the peer */
	bool rering;                    /* that MSG_RING failed: ring again */
	struct reactor_msg *overflow;   /* FIFO of messages that did not fit */
	struct reactor_msg *overflow_tail;
	bool staged;                    /* pushed since the last publish */
};

struct reactor {
	unsigned id;                  /* 0 .. count-1 */
	unsigned cpu;                 /* OS cpu it is pinned to */
	struct reactor_group *group;
	struct io_ring io;
	struct pool pool;
	void *user;                   /* the server's per-core state */
	uint64_t now_us;              /* monotonic clock, read once per iteration */
	struct timer_wheel timers;    /* this core's timers, run by the loop */
	bool poll_again;              /* work queued after the hooks began:
				       * the next pass runs without sleeping */

	_Atomic int sleeping;         /* 1 while waiting in the kernel */
	int eventfd;                  /* doorbell when MSG_RING is missing, else -1 */
	uint64_t eventfd_value;
	struct io_op doorbell_op;     /* completion of a doorbell (either kind) */

	struct reactor_peer *peers;   /* [count] */
	struct reactor_hook {
		reactor_hook_fn *fn;
		void *arg;
	} hooks[REACTOR_MAX_HOOKS];
	unsigned nhooks;

	uint64_t msgs_in;             /* messages handled */
	uint64_t msgs_out;            /* messages sent */
	uint64_t doorbells;           /* doorbells rung */
	uint64_t iterations;
};

/*
 * Starts `count` reactors pinned to cpus[i] (count <= 1024) and returns once
 * each has run its start callback. 0, or the first failure with its reason in
 * `err` (every started thread is stopped again).
 */
int reactor_group_start(struct reactor_group **out, unsigned count,
			const unsigned *cpus, struct topology *topo,
			const struct reactor_callbacks *cb, char *err, size_t errlen);

/* Asks every reactor to stop. Callable from any thread. */
void reactor_group_stop(struct reactor_group *g);

/* Waits for every reactor thread and frees the group. */
void reactor_group_join(struct reactor_group *g);

/* The group is stopping (callable from its reactors). */
bool reactor_stopping(const struct reactor *r);

unsigned reactor_count(const struct reactor *r);

/*
 * Sends `m` to core `to` (which may be this core: then it is queued like any
 * other). Never fails and never blocks: a full ring spills into an ordered
 * overflow queue retried every iteration.
 */
void reactor_send(struct reactor *r, unsigned to, struct reactor_msg *m);

/* Registers a function run once per loop iteration. 0 or -ENOSPC. */
int reactor_add_hook(struct reactor *r, reactor_hook_fn *fn, void *arg);

/*
 * Says that work for a hook was queued and the hook may already have run in
 * this pass (a later hook queued it): the next pass then starts without
 * sleeping. Cheap; calling it from anywhere on the core is harmless.
 */
static inline void reactor_poll_again(struct reactor *r)
{
	r->poll_again = true;
}

/*
 * Arms (or re-arms) `t`, embedded in its owner, to run fn(t, arg) from this
 * core's loop once `delay_us` has passed since r->now_us (millisecond
 * resolution, never early). O(1), no allocation, no system call; the callback
 * never runs from inside this call. The owner cancels it before freeing it.
 */
void reactor_timer_arm(struct reactor *r, struct timer *t, uint64_t delay_us,
		       timer_fn *fn, void *arg);

/* Disarms `t`; harmless when it is not armed. */
void reactor_timer_cancel(struct reactor *r, struct timer *t);

#endif
