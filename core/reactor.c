/*
 * The per-core event loop. See core/reactor.h for the iteration, the sleep
 * protocol and the shutdown sequence; this file is their only implementation.
 */
#include "core/reactor.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/topology.h"

#define REACTOR_RING_ENTRIES 4096
#define REACTOR_MAILBOX_SLOTS 16384
#define REACTOR_DRAIN_BATCH 256
#define REACTOR_IDLE_WAIT_US 100000  /* wake at least every 100 ms: see reactor.h */
#define REACTOR_STOP_WAIT_US 5000    /* while stopping, poll every 5 ms */

struct reactor_group {
	unsigned count;
	struct reactor *reactors;     /* [count] */
	struct spsc_ring *rings;      /* [count * count], from * count + to */
	pthread_t *threads;
	struct topology *topo;
	struct reactor_callbacks cb;
	_Atomic unsigned ready;       /* threads past their start callback */
	_Atomic int go;               /* 0 wait, 1 run, 2 abort */
	_Atomic int start_failed;
	char start_err[256];
	_Atomic int stopping;
	_Atomic unsigned quiescent;   /* cores whose own work is finished */
};

static uint64_t monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct spsc_ring *ring_between(struct reactor_group *g, unsigned from, unsigned to)
{
	return &g->rings[(size_t)from * g->count + to];
}

bool reactor_stopping(const struct reactor *r)
{
	return atomic_load_explicit(&r->group->stopping, memory_order_relaxed) != 0;
}

unsigned reactor_count(const struct reactor *r)
{
	return r->group->count;
}

void reactor_timer_arm(struct reactor *r, struct timer *t, uint64_t delay_us,
		       timer_fn *fn, void *arg)
{
	t->fn = fn;
	t->arg = arg;
	timer_arm_at(&r->timers, t, r->now_us + delay_us);
}

void reactor_timer_cancel(struct reactor *r, struct timer *t)
{
	timer_cancel(&r->timers, t);
}

int reactor_add_hook(struct reactor *r, reactor_hook_fn *fn, void *arg)
{
	if (r->nhooks == REACTOR_MAX_HOOKS)
		return -ENOSPC;
	r->hooks[r->nhooks].fn = fn;
	r->hooks[r->nhooks].arg = arg;
	r->nhooks++;
	return 0;
}

void reactor_send(struct reactor *r, unsigned to, struct reactor_msg *m)
{
	struct reactor_peer *p = &r->peers[to];

	r->msgs_out++;
	m->next = NULL;
	/* Keep FIFO order: once something waits in overflow, queue behind it. */
	if (!p->overflow && spsc_push(p->out, m)) {
		p->staged = true;
		return;
	}
	if (p->overflow_tail)
		p->overflow_tail->next = m;
	else
		p->overflow = m;
	p->overflow_tail = m;
}

static void ring_doorbell(struct reactor *r, struct reactor *dest)
{
	r->doorbells++;
	if (dest->eventfd < 0) {
		struct io_uring_sqe *sqe = io_ring_get_sqe(&r->io);

		io_uring_prep_msg_ring(sqe, dest->io.ring.ring_fd, 0,
				       (uint64_t)(uintptr_t)&dest->doorbell_op, 0);
		io_op_attach(sqe, &r->peers[dest->id].ring_op);
		return;
	}
	/* eventfd writes never block (the counter cannot overflow here). */
	if (eventfd_write(dest->eventfd, 1) != 0)
		log_warn("doorbell eventfd write failed: %s", strerror(errno));
}

static void publish(struct reactor *r)
{
	struct reactor_group *g = r->group;
	unsigned i;

	for (i = 0; i < g->count; i++) {
		struct reactor_peer *p = &r->peers[i];

		while (p->overflow && spsc_push(p->out, p->overflow)) {
			p->overflow = p->overflow->next;
			p->staged = true;
		}
		if (!p->overflow)
			p->overflow_tail = NULL;
		if (!p->staged && !p->rering)
			continue;
		p->staged = false;
		spsc_publish(p->out);
		if (i == r->id)
			continue;
		atomic_thread_fence(memory_order_seq_cst);
		if (p->rering ||
		    (atomic_load_explicit(&g->reactors[i].sleeping, memory_order_relaxed) &&
		     atomic_exchange(&g->reactors[i].sleeping, 0))) {
			p->rering = false;
			ring_doorbell(r, &g->reactors[i]);
		}
	}
}

static unsigned drain(struct reactor *r)
{
	struct reactor_group *g = r->group;
	void *batch[REACTOR_DRAIN_BATCH];
	unsigned total = 0;
	unsigned i, n, k;

	for (i = 0; i < g->count; i++) {
		struct spsc_ring *in = ring_between(g, i, r->id);

		/* Bounded per source per iteration, so one busy peer cannot
		 * starve this core's own I/O. */
		n = spsc_pop_batch(in, batch, REACTOR_DRAIN_BATCH);
		for (k = 0; k < n; k++) {
			struct reactor_msg *m = batch[k];
			m->handle(r, m);
		}
		total += n;
	}
	r->msgs_in += total;
	return total;
}

static bool inbound_empty(struct reactor *r)
{
	struct reactor_group *g = r->group;
	unsigned i;

	for (i = 0; i < g->count; i++)
		if (!spsc_empty(ring_between(g, i, r->id)))
			return false;
	return true;
}

static bool overflow_pending(struct reactor *r)
{
	unsigned i;

	for (i = 0; i < r->group->count; i++)
		if (r->peers[i].overflow)
			return true;
	return false;
}

static void doorbell_done(struct io_op *op, int res, unsigned flags)
{
	struct reactor *r = op->data;

	if (r->eventfd < 0 || res == -ECANCELED)
		return;
	/* Re-arm the eventfd read: the next doorbell must wake us too. */
	{
		struct io_uring_sqe *sqe = io_ring_get_sqe(&r->io);
		io_uring_prep_read(sqe, r->eventfd, &r->eventfd_value,
				   sizeof r->eventfd_value, 0);
		io_op_attach(sqe, &r->doorbell_op);
	}
}

static void msg_sent_done(struct io_op *op, int res, unsigned flags)
{
	struct reactor_peer *p = op->data;

	/* The peer may be asleep waiting for this doorbell: ring again at the
	 * next publish. */
	if (res < 0) {
		log_warn("doorbell MSG_RING failed: %s", strerror(-res));
		p->rering = true;
	}
}

static void run_loop(struct reactor *r)
{
	struct reactor_group *g = r->group;
	bool stop_called = false;
	bool reported = false;
	unsigned i;

	r->now_us = monotonic_us();
	for (;;) {
		uint64_t wait_us, next_us;
		int rv;

		r->iterations++;
		drain(r);
		timer_wheel_run(&r->timers, r->now_us);
		r->poll_again = false;
		for (i = 0; i < r->nhooks; i++)
			r->hooks[i].fn(r, r->hooks[i].arg);
		publish(r);

		if (!stop_called && atomic_load(&g->stopping)) {
			stop_called = true;
			if (g->cb.stop)
				g->cb.stop(r, g->cb.arg);
		}
		if (stop_called && !reported &&
		    (!g->cb.quiescent || g->cb.quiescent(r, g->cb.arg))) {
			reported = true;
			atomic_fetch_add(&g->quiescent, 1);
		}
		if (reported && atomic_load(&g->quiescent) == g->count &&
		    inbound_empty(r) && !overflow_pending(r))
			break;

		wait_us = stop_called ? REACTOR_STOP_WAIT_US : REACTOR_IDLE_WAIT_US;
		next_us = timer_wheel_next_us(&r->timers);
		if (next_us != TIMER_NEVER)
			wait_us = next_us <= r->now_us ? 0 :
				  next_us - r->now_us < wait_us ? next_us - r->now_us : wait_us;
		if (overflow_pending(r) || r->poll_again)
			wait_us = 0;
		if (wait_us) {
			atomic_store(&r->sleeping, 1);
			atomic_thread_fence(memory_order_seq_cst);
			if (!inbound_empty(r))
				wait_us = 0;
		}
		rv = io_ring_submit_wait(&r->io, wait_us);
		atomic_store(&r->sleeping, 0);
		if (rv < 0)
			panic("io_uring wait failed: %s", strerror(-rv));
		r->now_us = monotonic_us();
		io_ring_dispatch(&r->io);
	}
}

struct thread_arg {
	struct reactor_group *group;
	unsigned id;
};

static int reactor_init(struct reactor *r, char *err, size_t errlen)
{
	struct reactor_group *g = r->group;
	char desc[160];
	int rv;
	unsigned i;

	rv = topology_pin_thread(g->topo, r->cpu);
	if (rv)
		log_warn("could not pin core %u to cpu %u: %s", r->id, r->cpu, strerror(-rv));
	rv = pool_init(&r->pool, 0);
	if (rv) {
		snprintf(err, errlen, "core %u: pool_init: %s", r->id, strerror(-rv));
		return rv;
	}
	rv = io_ring_init(&r->io, REACTOR_RING_ENTRIES, err, errlen);
	if (rv)
		return rv;
	r->peers = calloc(g->count, sizeof *r->peers);
	if (!r->peers) {
		snprintf(err, errlen, "core %u: out of memory", r->id);
		return -ENOMEM;
	}
	for (i = 0; i < g->count; i++) {
		r->peers[i].out = ring_between(g, r->id, i);
		r->peers[i].ring_op.done = msg_sent_done;
		r->peers[i].ring_op.data = &r->peers[i];
	}
	r->doorbell_op.done = doorbell_done;
	r->doorbell_op.data = r;
	/* MSG_RING doorbells are posted by the peers' rings, not ours. */
	r->doorbell_op.foreign = r->io.has_msg_ring;
	r->eventfd = -1;
	if (!r->io.has_msg_ring) {
		struct io_uring_sqe *sqe;

		/* Blocking: some kernels complete a ring read of a non-blocking
		 * eventfd at once with -EAGAIN, which would spin the loop. */
		r->eventfd = eventfd(0, EFD_CLOEXEC);
		if (r->eventfd < 0) {
			rv = -errno;
			snprintf(err, errlen, "core %u: eventfd: %s", r->id, strerror(errno));
			return rv;
		}
		sqe = io_ring_get_sqe(&r->io);
		io_uring_prep_read(sqe, r->eventfd, &r->eventfd_value,
				   sizeof r->eventfd_value, 0);
		io_op_attach(sqe, &r->doorbell_op);
	}
	io_ring_describe(&r->io, desc, sizeof desc);
	log_info("core %u on cpu %u: %s, doorbell %s", r->id, r->cpu, desc,
		 r->eventfd < 0 ? "msg_ring" : "eventfd");
	r->now_us = monotonic_us();
	timer_wheel_init(&r->timers, r->now_us);
	return 0;
}

static void *reactor_thread(void *argp)
{
	struct thread_arg *arg = argp;
	struct reactor_group *g = arg->group;
	struct reactor *r = &g->reactors[arg->id];
	static char names[1024][16];
	char err[256] = "";
	int rv;

	free(arg);
	snprintf(names[r->id], sizeof names[r->id], "core %u", r->id);
	log_set_thread_name(names[r->id]);
	{
		char tname[16];
		snprintf(tname, sizeof tname, "ringkv-c%u", r->id);
		pthread_setname_np(pthread_self(), tname);
	}
	rv = reactor_init(r, err, sizeof err);
	if (rv == 0 && g->cb.start)
		rv = g->cb.start(r, g->cb.arg, err, sizeof err);
	if (rv != 0 && atomic_exchange(&g->start_failed, 1) == 0)
		snprintf(g->start_err, sizeof g->start_err, "%s", err);
	/* Start-up handshake without locks: report, then wait for the verdict. */
	atomic_fetch_add(&g->ready, 1);
	while (atomic_load(&g->go) == 0)
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	if (atomic_load(&g->go) == 1)
		run_loop(r);
	else if (rv == 0 && g->cb.stop)
		g->cb.stop(r, g->cb.arg); /* another core failed to start */
	/* Nothing the kernel still works on may be freed by `finish`. */
	if (r->io.ring.ring_fd > 0) {
		int64_t left = io_ring_cancel_all(&r->io, 2000);

		if (left > 0)
			log_warn("core %u: %lld I/O operations still pending at exit",
				 r->id, (long long)left);
	}
	if (g->cb.finish)
		g->cb.finish(r, g->cb.arg);
	if (r->eventfd >= 0)
		close(r->eventfd);
	if (r->io.ring.ring_fd > 0)
		io_ring_exit(&r->io);
	pool_destroy(&r->pool);
	return NULL;
}

static void group_free(struct reactor_group *g)
{
	unsigned i;

	if (g->rings)
		for (i = 0; i < g->count * g->count; i++)
			spsc_destroy(&g->rings[i]);
	if (g->reactors)
		for (i = 0; i < g->count; i++)
			free(g->reactors[i].peers);
	free(g->rings);
	free(g->reactors);
	free(g->threads);
	free(g);
}

int reactor_group_start(struct reactor_group **out, unsigned count,
			const unsigned *cpus, struct topology *topo,
			const struct reactor_callbacks *cb, char *err, size_t errlen)
{
	struct reactor_group *g;
	unsigned i, started = 0;
	int rv = -ENOMEM;

	if (count == 0 || count > 1024) {
		snprintf(err, errlen, "core count %u out of range", count);
		return -EINVAL;
	}
	g = calloc(1, sizeof *g);
	if (!g)
		goto err;
	g->count = count;
	g->topo = topo;
	g->cb = *cb;
	g->reactors = calloc(count, sizeof *g->reactors);
	g->rings = calloc((size_t)count * count, sizeof *g->rings);
	g->threads = calloc(count, sizeof *g->threads);
	if (!g->reactors || !g->rings || !g->threads)
		goto err_after_alloc;
	for (i = 0; i < count * count; i++) {
		rv = spsc_init(&g->rings[i], REACTOR_MAILBOX_SLOTS);
		if (rv)
			goto err_after_alloc;
	}
	for (i = 0; i < count; i++) {
		g->reactors[i].id = i;
		g->reactors[i].cpu = cpus[i];
		g->reactors[i].group = g;
		g->reactors[i].eventfd = -1;
	}
	for (i = 0; i < count; i++) {
		struct thread_arg *arg = malloc(sizeof *arg);

		if (!arg)
			break;
		arg->group = g;
		arg->id = i;
		if (pthread_create(&g->threads[i], NULL, reactor_thread, arg) != 0) {
			free(arg);
			break;
		}
		started++;
	}
	if (started < count && atomic_exchange(&g->start_failed, 1) == 0)
		snprintf(g->start_err, sizeof g->start_err, "pthread_create failed");
	while (atomic_load(&g->ready) < started)
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	if (atomic_load(&g->start_failed)) {
		atomic_store(&g->go, 2);
		snprintf(err, errlen, "%s", g->start_err);
		for (i = 0; i < started; i++)
			pthread_join(g->threads[i], NULL);
		rv = -EIO;
		goto err_after_alloc;
	}
	atomic_store(&g->go, 1);
	*out = g;
	return 0;

err_after_alloc:
	group_free(g);
err:
	if (rv == -ENOMEM)
		snprintf(err, errlen, "out of memory starting reactors");
	return rv;
}

void reactor_group_stop(struct reactor_group *g)
{
	atomic_store(&g->stopping, 1);
}

void reactor_group_join(struct reactor_group *g)
{
	unsigned i;

	for (i = 0; i < g->count; i++)
		pthread_join(g->threads[i], NULL);
	group_free(g);
}
