/* io_uring set-up with feature probing and batched completion dispatch. */
#include "io/ring.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

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
	probe = io_uring_get_probe_ring(&r->ring);
	if (probe) {
		r->has_msg_ring = io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
		r->has_ftruncate = io_uring_opcode_supported(probe, IORING_OP_FTRUNCATE);
		/* Multishot accept/recv came with 5.19/6.0, with IORING_OP_SOCKET
		 * (5.19) as the closest probe-able marker. */
		r->has_multishot_accept = io_uring_opcode_supported(probe, IORING_OP_SOCKET);
		r->has_recv_multishot = r->has_multishot_accept;
		io_uring_free_probe(probe);
	}
	return 0;
}

void io_ring_exit(struct io_ring *r)
{
	io_uring_queue_exit(&r->ring);
}

void io_ring_describe(const struct io_ring *r, char *buf, size_t len)
{
	const char *mode = "plain";

	if (r->setup_flags & IORING_SETUP_DEFER_TASKRUN)
		mode = "single-issuer+defer-taskrun";
	else if (r->setup_flags & IORING_SETUP_COOP_TASKRUN)
		mode = "coop-taskrun";
	snprintf(buf, len, "io_uring %s, msg_ring %s, multishot accept %s, ftruncate %s",
		 mode, r->has_msg_ring ? "yes" : "no",
		 r->has_multishot_accept ? "yes" : "no",
		 r->has_ftruncate ? "yes" : "no");
}

struct io_uring_sqe *io_ring_get_sqe(struct io_ring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
	int tries;

	for (tries = 0; !sqe && tries < 1000; tries++) {
		int rv = io_uring_submit(&r->ring);
		if (rv > 0)
			r->submitted += (unsigned)rv;
		else if (rv < 0 && rv != -EAGAIN && rv != -EBUSY && rv != -EINTR)
			panic("io_uring_submit: %s", strerror(-rv));
		if (rv <= 0) {
			/* The CQ is full: make room by handling completions. */
			io_ring_dispatch(r);
		}
		sqe = io_uring_get_sqe(&r->ring);
	}
	if (!sqe)
		panic("io_uring: no submission queue entry after 1000 tries");
	return sqe;
}

int io_ring_submit_wait(struct io_ring *r, uint64_t timeout_us)
{
	struct __kernel_timespec ts;
	struct io_uring_cqe *cqe;
	int rv;

	if (timeout_us == 0) {
		rv = io_uring_submit(&r->ring);
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

unsigned io_ring_dispatch(struct io_ring *r)
{
	struct io_uring_cqe *cqes[64];
	struct {
		struct io_op *op;
		int res;
		unsigned flags;
	} batch[64];
	unsigned total = 0;
	unsigned n, i;

	do {
		/* Copy the batch out and advance the CQ before any handler runs:
		 * a handler may submit (and so re-enter this function through
		 * io_ring_get_sqe), and must never see these CQEs again. */
		n = io_uring_peek_batch_cqe(&r->ring, cqes, 64);
		for (i = 0; i < n; i++) {
			batch[i].op = io_uring_cqe_get_data(cqes[i]);
			batch[i].res = cqes[i]->res;
			batch[i].flags = cqes[i]->flags;
		}
		io_uring_cq_advance(&r->ring, n);
		for (i = 0; i < n; i++) {
			if (batch[i].op && batch[i].op->done)
				batch[i].op->done(batch[i].op, batch[i].res, batch[i].flags);
		}
		total += n;
	} while (n == 64);
	r->completions += total;
	return total;
}
