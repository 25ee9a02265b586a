/*
 * One io_uring ring per core, and the one place its completions are
 * dispatched.
 *
 * Every submitted operation carries a struct io_op as its user_data: the
 * completion handler and its owner. io_ring_dispatch() reaps completions in a
 * batch, calls each op's handler with the result, and advances the completion
 * queue once. An op must stay alive until its last completion (for multishot
 * operations, the one without IORING_CQE_F_MORE).
 *
 * Set-up probes what the kernel offers and falls back step by step:
 * SINGLE_ISSUER|DEFER_TASKRUN, then COOP_TASKRUN, then no flags. It also
 * records whether MSG_RING (the cross-core doorbell), multishot accept and
 * multishot recv are available.
 */
#ifndef RINGKV_IO_RING_H
#define RINGKV_IO_RING_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

struct io_op;

/* Completion handler: `res` is the CQE result, `flags` its CQE flags. */
typedef void io_done_fn(struct io_op *op, int res, unsigned flags);

struct io_op {
	io_done_fn *done; /* called once per completion */
	void *data;       /* the owner */
	bool foreign;     /* its completions are posted by another ring
			   * (MSG_RING doorbells): not counted as pending */
};

struct io_ring {
	struct io_uring ring;
	unsigned setup_flags;   /* IORING_SETUP_* in effect */
	bool has_msg_ring;      /* IORING_OP_MSG_RING */
	bool has_multishot_accept;
	bool has_recv_multishot;
	bool has_ftruncate;     /* IORING_OP_FTRUNCATE (kernel 6.9) */
	bool ring_fd_registered; /* io_uring_register_ring_fd took */
	uint64_t submitted;     /* SQEs handed to the kernel, for metrics */
	uint64_t completions;   /* CQEs dispatched */
	uint64_t waits;         /* io_uring_enter calls that waited */
	int64_t pending;        /* operations whose last completion is not in */

	/* Provided buffers (io_ring_bufs_init): one ring of `buf_count`
	 * buffers of `buf_size` bytes in group IO_RING_BGID, for multishot
	 * receives. The kernel takes a buffer per completion; its user gives
	 * it back with io_ring_buf_recycle() as soon as it copied it out. */
	struct io_uring_buf_ring *buf_ring;
	uint8_t *buf_base;
	size_t buf_map_len;
	unsigned buf_count;     /* a power of two; 0: none */
	unsigned buf_size;
	bool buf_tried;         /* its user tried to set it up (once) */
	uint64_t buf_enobufs;   /* multishot receives ended for want of a buffer */

	/* Completions reaped while making room for SQEs: handed to their
	 * handlers by the next io_ring_dispatch, never from inside
	 * io_ring_get_sqe (a handler must not run under its caller). */
	struct io_deferred {
		struct io_op *op;
		int res;
		unsigned flags;
	} *deferred;
	size_t ndeferred;
	size_t deferred_cap;
};

/*
 * Creates the ring in the calling thread (SINGLE_ISSUER binds it to that
 * thread). 0 or a negative errno; `err` says which step failed.
 */
int io_ring_init(struct io_ring *r, unsigned entries, char *err, size_t errlen);
void io_ring_exit(struct io_ring *r);

/* A line describing the chosen set-up, for the start-up log. */
void io_ring_describe(const struct io_ring *r, char *buf, size_t len);

/*
 * Returns a free SQE, submitting queued ones first when the submission queue
 * is full, so an operation is never dropped. Panics only if the kernel refuses
 * to take SQEs at all.
 */
struct io_uring_sqe *io_ring_get_sqe(struct io_ring *r);

/*
 * Makes sure the next `n` io_ring_get_sqe() calls need no submission in
 * between, so SQEs linked with IOSQE_IO_LINK reach the kernel in one chain.
 */
void io_ring_reserve(struct io_ring *r, unsigned n);

/* Attaches `op` as the SQE's user_data and counts it pending until its last
 * completion (the one without IORING_CQE_F_MORE). */
static inline void io_op_attach(struct io_uring_sqe *sqe, struct io_op *op)
{
	io_uring_sqe_set_data(sqe, op);
}


/*
 * Submits queued SQEs and waits until at least one completion is ready or
 * `timeout_us` passes (0 = do not wait). Returns 0 or a negative errno other
 * than the expected ETIME/EINTR.
 */
int io_ring_submit_wait(struct io_ring *r, uint64_t timeout_us);

/* Dispatches every ready completion. Returns how many. */
unsigned io_ring_dispatch(struct io_ring *r);

/* The buffer group of io_ring_bufs_init's ring. */
#define IO_RING_BGID 0

/*
 * Sets up and registers the provided-buffer ring: `count` (a power of two,
 * at most 32768) buffers of `size` bytes. 0 or a negative errno (the kernel
 * lacks it, or no memory); nothing is left behind on failure.
 */
int io_ring_bufs_init(struct io_ring *r, unsigned count, unsigned size);

/* The data of the provided buffer a completion with IORING_CQE_F_BUFFER
 * in `flags` used. */
static inline const uint8_t *io_ring_buf(const struct io_ring *r, unsigned flags)
{
	return r->buf_base + (size_t)(flags >> IORING_CQE_BUFFER_SHIFT) * r->buf_size;
}

/* Gives that buffer back to the kernel. */
static inline void io_ring_buf_recycle(struct io_ring *r, unsigned flags)
{
	unsigned short bid = (unsigned short)(flags >> IORING_CQE_BUFFER_SHIFT);

	io_uring_buf_ring_add(r->buf_ring, r->buf_base + (size_t)bid * r->buf_size,
			      r->buf_size, bid, (int)(r->buf_count - 1), 0);
	io_uring_buf_ring_advance(r->buf_ring, 1);
}

/*
 * At exit: cancels every pending operation and dispatches completions until
 * none is pending or `timeout_ms` passed, so no buffer is freed while the
 * kernel may still use it. Returns the operations still pending.
 */
int64_t io_ring_cancel_all(struct io_ring *r, unsigned timeout_ms);

#endif
