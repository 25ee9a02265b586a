/* io_uring set-up with feature probing and batched completion dispatch. */
#include "io/ring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "core/log.h"

#ifndef IORING_OP_FTRUNCATE
#define IORING_OP_FTRUNCATE 55
#endif

static int try_init(struct io_ring *r, unsigned entries, unsigned flags)
{
	struct io_uring_params p;

	memset(&p, 0, sizeof p);
	p.flags = flags;
	/* The CQ is sized generously: multishot ops post many CQEs per SQE. */
	p.flags |= IORING_SETUP_CQSIZE;
	p.cq_entries = entries * 4;
	return io_uring_queue_init_params(entries, &r->ring, &p);
}

int io_ring_init(struct io_ring *r, unsigned entries, char *err, size_t errlen)
{
	static const unsigned attempts[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	struct io_uring_probe *probe;
	int rv = -ENOSYS;
	size_t i;

	memset(r, 0, sizeof *r);
	for (i = 0; i < sizeof attempts / sizeof attempts[0]; i++) {
		rv = try_init(r, entries, attempts[i]);
		if (rv == 0) {
			r->setup_flags = attempts[i];
			break;
		}
	}
	if (rv != 0) {
		snprintf(err, errlen, "io_uring_queue_init: %s", strerror(-rv));
		return rv;
	}
	/* io_uring_enter then names the ring by its index in this thread's
	 * registered rings, sparing the kernel a file lookup per call (the
	 * ring is used only by this thread: SINGLE_ISSUER). */
	r->ring_fd_registered = io_uring_register_ring_fd(&r->ring) == 1;
	probe = io_uring_get_probe_ring(&r->ring);
	if (probe) {
		r->has_msg_ring = io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
		r->has_ftruncate = io_uring_opcode_supported(probe, IORING_OP_FTRUNCATE);
		/* Multishot accept came with 5.19 (IORING_OP_SOCKET, the
		 * closest probe-able marker), multishot recv with 6.0
		 * (IORING_OP_SEND_ZC, same release): on 5.19 a multishot recv
		 * fails with EINVAL, which would drop every connection. */
		r->has_multishot_accept = io_uring_opcode_supported(probe, IORING_OP_SOCKET);
		r->has_recv_multishot = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
		io_uring_free_probe(probe);
	}
	return 0;
}

int io_ring_bufs_init(struct io_ring *r, unsigned count, unsigned size)
{
	struct io_uring_buf_reg reg;
	size_t ring_len = (size_t)count * sizeof(struct io_uring_buf);
	size_t len;
	void *map;
	unsigned i;
	int rv;

	if (r->buf_count)
		return 0;
	if (count == 0 || count > 32768 || (count & (count - 1)) || size == 0)
		return -EINVAL;
	/* The ring first (page-aligned, as the kernel wants), then the
	 * buffers; pages are touched only when the kernel fills them. */
	ring_len = (ring_len + 4095) & ~(size_t)4095;
	len = ring_len + (size_t)count * size;
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return -errno;
	r->buf_ring = map;
	r->buf_base = (uint8_t *)map + ring_len;
	r->buf_size = size;
	r->buf_count = count;
	io_uring_buf_ring_init(r->buf_ring);
	memset(&reg, 0, sizeof reg);
	reg.ring_addr = (uint64_t)(uintptr_t)map;
	reg.ring_entries = count;
	reg.bgid = IO_RING_BGID;
	rv = io_uring_register_buf_ring(&r->ring, &reg, 0);
	if (rv != 0) {
		munmap(map, len);
		r->buf_ring = NULL;
		r->buf_base = NULL;
		r->buf_count = r->buf_size = 0;
		return rv;
	}
	r->buf_map_len = len;
	for (i = 0; i < count; i++)
		io_uring_buf_ring_add(r->buf_ring, r->buf_base + (size_t)i * size, size,
				      (unsigned short)i, (int)(count - 1), (int)i);
	io_uring_buf_ring_advance(r->buf_ring, (int)count);
	return 0;
}

void io_ring_exit(struct io_ring *r)
{
	if (r->buf_count) {
		io_uring_unregister_buf_ring(&r->ring, IO_RING_BGID);
		munmap(r->buf_ring, r->buf_map_len);
		r->buf_ring = NULL;
		r->buf_base = NULL;
		r->buf_count = 0;
	}
	io_uring_queue_exit(&r->ring);
	free(r->deferred);
	r->deferred = NULL;
	r->ndeferred = r->deferred_cap = 0;
}

void io_ring_describe(const struct io_ring *r, char *buf, size_t len)
{
	const char *mode = "plain";

	if (r->setup_flags & IORING_SETUP_DEFER_TASKRUN)
		mode = "single-issuer+defer-taskrun";
	else if (r->setup_flags & IORING_SETUP_COOP_TASKRUN)
		mode = "coop-taskrun";
	snprintf(buf, len, "io_uring %s, msg_ring %s, multishot accept %s, ftruncate %s, "
		 "registered ring fd %s", mode, r->has_msg_ring ? "yes" : "no",
		 r->has_multishot_accept ? "yes" : "no",
		 r->has_ftruncate ? "yes" : "no", r->ring_fd_registered ? "yes" : "no");
}

/* Moves every ready CQE into the deferred queue (handlers run later, from
 * io_ring_dispatch). Returns how many were moved. */
static unsigned defer_ready(struct io_ring *r)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_for_each_cqe(&r->ring, head, cqe) {
		if (r->ndeferred == r->deferred_cap) {
			size_t cap = r->deferred_cap ? r->deferred_cap * 2 : 256;
			struct io_deferred *d = realloc(r->deferred, cap * sizeof *d);

			if (!d)
				panic("io_uring: out of memory deferring completions");
			r->deferred = d;
			r->deferred_cap = cap;
		}
		r->deferred[r->ndeferred].op = io_uring_cqe_get_data(cqe);
		r->deferred[r->ndeferred].res = cqe->res;
		r->deferred[r->ndeferred].flags = cqe->flags;
		r->ndeferred++;
		n++;
	}
	io_uring_cq_advance(&r->ring, n);
	return n;
}

/* Submits queued SQEs until the SQ has `n` free entries. Never runs a
 * completion handler: if the kernel refuses more SQEs because the CQ is full
 * (-EBUSY), ready CQEs are moved to the deferred queue to make room. */
static void make_room(struct io_ring *r, unsigned n)
{
	int tries;

	for (tries = 0; io_uring_sq_space_left(&r->ring) < n; tries++) {
		int rv = io_uring_submit(&r->ring);

		if (rv > 0) {
			r->submitted += (unsigned)rv;
			continue;
		}
		if (rv < 0 && rv != -EAGAIN && rv != -EBUSY && rv != -EINTR)
			panic("io_uring_submit: %s", strerror(-rv));
		if (tries == 1000)
			panic("io_uring: no room in the submission queue after 1000 tries");
		io_uring_get_events(&r->ring);
		defer_ready(r);
	}
}

void io_ring_reserve(struct io_ring *r, unsigned n)
{
	make_room(r, n);
}

struct io_uring_sqe *io_ring_get_sqe(struct io_ring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);

	if (!sqe) {
		make_room(r, 1);
		sqe = io_uring_get_sqe(&r->ring);
		if (!sqe)
			panic("io_uring: no submission queue entry");
	}
	/* Every SQE ends in exactly one final CQE (no CQE_SKIP is used). */
	r->pending++;
	io_uring_sqe_set_data(sqe, NULL);
	return sqe;
}

int io_ring_submit_wait(struct io_ring *r, uint64_t timeout_us)
{
	struct __kernel_timespec ts;
	struct io_uring_cqe *cqe;
	int rv;

	if (r->ndeferred)
		timeout_us = 0;
	if (timeout_us == 0) {
		/* With DEFER_TASKRUN a plain submit never runs the deferred
		 * task work that posts completions: ask for events too. */
		rv = io_uring_submit_and_get_events(&r->ring);
		if (rv > 0)
			r->submitted += (unsigned)rv;
		return rv < 0 && rv != -EINTR && rv != -EBUSY && rv != -EAGAIN ? rv : 0;
	}
	ts.tv_sec = (long long)(timeout_us / 1000000);
	ts.tv_nsec = (long long)(timeout_us % 1000000) * 1000;
	r->waits++;
	rv = io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts, NULL);
	if (rv < 0 && rv != -ETIME && rv != -EINTR && rv != -EBUSY && rv != -EAGAIN)
		return rv;
	return 0;
}

static void handle(struct io_ring *r, struct io_op *op, int res, unsigned flags)
{
	if (!(flags & IORING_CQE_F_MORE) && !(op && op->foreign))
		r->pending--;
	if (op && op->done)
		op->done(op, res, flags);
}

unsigned io_ring_dispatch(struct io_ring *r)
{
	unsigned total = 0;
	unsigned n, i;

	/* Completions deferred while making room come first, in order. */
	while (r->ndeferred) {
		size_t count = r->ndeferred;
		struct io_deferred batch[64];

		n = count < 64 ? (unsigned)count : 64;
		memcpy(batch, r->deferred, n * sizeof batch[0]);
		memmove(r->deferred, r->deferred + n, (count - n) * sizeof batch[0]);
		r->ndeferred -= n;
		for (i = 0; i < n; i++)
			handle(r, batch[i].op, batch[i].res, batch[i].flags);
		total += n;
	}
	do {
		struct io_uring_cqe *cqes[64];
		struct io_deferred batch[64];

		/* Copy the batch out and advance the CQ before any handler runs:
		 * a handler may submit, and must never see these CQEs again. */
		n = io_uring_peek_batch_cqe(&r->ring, cqes, 64);
		for (i = 0; i < n; i++) {
			batch[i].op = io_uring_cqe_get_data(cqes[i]);
			batch[i].res = cqes[i]->res;
			batch[i].flags = cqes[i]->flags;
		}
		io_uring_cq_advance(&r->ring, n);
		for (i = 0; i < n; i++)
			handle(r, batch[i].op, batch[i].res, batch[i].flags);
		total += n;
	} while (n == 64);
	r->completions += total;
	return total;
}

int64_t io_ring_cancel_all(struct io_ring *r, unsigned timeout_ms)
{
	struct timespec start, now;
	long elapsed_ms, next_cancel_ms = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		elapsed_ms = (now.tv_sec - start.tv_sec) * 1000 +
			     (now.tv_nsec - start.tv_nsec) / 1000000;
		if (elapsed_ms > (long)timeout_ms)
			return r->pending;
		/* Cancel again every 50 ms: an operation submitted together
		 * with the first cancel may have been armed only after it. */
		if (elapsed_ms >= next_cancel_ms) {
			struct io_uring_sqe *sqe = io_ring_get_sqe(r);

			io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
			next_cancel_ms = elapsed_ms + 50;
		}
		io_ring_submit_wait(r, 10000);
		io_ring_dispatch(r);
		if (r->pending <= 0)
			return 0;
	}
}
