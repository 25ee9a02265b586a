/*
 * Tests for io/ring.c's provided-buffer ring, on a socketpair: a multishot
 * receive spreads what it receives over buffers of the ring in order, a
 * buffer given back is used again, a ring left empty ends the receive
 * with ENOBUFS (nothing lost: the bytes stay in the socket and a new
 * receive gets them), and invalid sizes are refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/ring.h"

struct got {
	uint8_t data[4096];
	size_t len;
	unsigned cqes;
	int last_res;
	bool ended;        /* a CQE without IORING_CQE_F_MORE came */
	bool recycle;      /* give each buffer back at once */
	unsigned held[64]; /* flags of buffers not given back */
	unsigned nheld;
};

/* The receive's op, with the ring its handler gives buffers back to. */
struct op_with_ring {
	struct io_op op; /* first: the handler gets a pointer to it */
	struct io_ring *r;
};

static void recv_done(struct io_op *op, int res, unsigned flags)
{
	struct got *g = op->data;
	struct io_ring *r = ((struct op_with_ring *)op)->r;

	g->cqes++;
	g->last_res = res;
	if (!(flags & IORING_CQE_F_MORE))
		g->ended = true;
	if (res > 0) {
		assert_true(flags & IORING_CQE_F_BUFFER);
		assert_true(g->len + (size_t)res <= sizeof g->data);
		memcpy(g->data + g->len, io_ring_buf(r, flags), (size_t)res);
		g->len += (size_t)res;
		if (g->recycle)
			io_ring_buf_recycle(r, flags);
		else
			g->held[g->nheld++] = flags;
	}
}

static void arm(struct io_ring *r, int fd, struct op_with_ring *o)
{
	struct io_uring_sqe *sqe = io_ring_get_sqe(r);

	io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = IO_RING_BGID;
	io_op_attach(sqe, &o->op);
}

/* Runs the ring until `g` has `len` bytes or its receive ended. */
static void pump(struct io_ring *r, struct got *g, size_t len)
{
	int i;

	for (i = 0; i < 200 && g->len < len && !g->ended; i++) {
		assert_int_equal(io_ring_submit_wait(r, 10000), 0);
		io_ring_dispatch(r);
	}
}

/* A ring with `count` provided buffers of `size` bytes, a socketpair, and
 * the op of receives on sv[1] into `g`. */
static void setup_pair(struct io_ring *r, int sv[2], unsigned count, unsigned size,
		       struct op_with_ring *o, struct got *g)
{
	char err[128];

	assert_int_equal(io_ring_init(r, 64, err, sizeof err), 0);
	if (!r->has_recv_multishot)
		skip();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(io_ring_bufs_init(r, count, size), 0);
	assert_int_equal(r->buf_count, count);
	o->op = (struct io_op){ .done = recv_done, .data = g };
	o->r = r;
}

/* Receives until `g` has `len` bytes, arming again each time the ring ran
 * out (ENOBUFS: the bytes wait in the socket). */
static void receive_all(struct io_ring *r, int fd, struct op_with_ring *o, struct got *g,
			size_t len)
{
	while (g->len < len) {
		pump(r, g, len);
		if (g->ended) {
			assert_int_equal(g->last_res, -ENOBUFS);
			g->ended = false;
			arm(r, fd, o);
		}
	}
}

static void test_spread_and_recycle(void **state)
{
	struct io_ring r;
	int sv[2];
	struct got g = { .recycle = true };
	struct op_with_ring o;
	uint8_t msg[1000];
	size_t i;

	(void)state;
	setup_pair(&r, sv, 4, 64, &o, &g);
	for (i = 0; i < sizeof msg; i++)
		msg[i] = (uint8_t)(i * 13 + 1);
	arm(&r, sv[1], &o);
	/* 1,000 bytes through four 64-byte buffers: each used several times,
	 * or the receive ran out and is re-armed (the bytes wait). */
	assert_int_equal(write(sv[0], msg, sizeof msg), (ssize_t)sizeof msg);
	receive_all(&r, sv[1], &o, &g, sizeof msg);
	assert_int_equal(g.len, sizeof msg);
	assert_memory_equal(g.data, msg, sizeof msg);
	assert_true(g.cqes >= sizeof msg / 64);
	close(sv[0]);
	pump(&r, &g, sizeof msg + 1);
	assert_true(g.ended);
	assert_int_equal(g.last_res, 0);
	close(sv[1]);
	io_ring_exit(&r);
}

static void test_enobufs_loses_nothing(void **state)
{
	struct io_ring r;
	int sv[2];
	struct got g = { .recycle = false };
	struct op_with_ring o;
	uint8_t msg[300];
	unsigned i;

	(void)state;
	setup_pair(&r, sv, 2, 64, &o, &g);
	memset(msg, 'x', sizeof msg);
	msg[sizeof msg - 1] = 'y';
	arm(&r, sv[1], &o);
	assert_int_equal(write(sv[0], msg, sizeof msg), (ssize_t)sizeof msg);
	/* Two buffers, never given back: 128 bytes, then ENOBUFS. */
	pump(&r, &g, sizeof msg);
	assert_true(g.ended);
	assert_int_equal(g.last_res, -ENOBUFS);
	assert_int_equal(g.len, 128);
	/* Given back, a new receive takes the rest from the socket. */
	for (i = 0; i < g.nheld; i++)
		io_ring_buf_recycle(&r, g.held[i]);
	g.nheld = 0;
	g.recycle = true;
	g.ended = false;
	arm(&r, sv[1], &o);
	receive_all(&r, sv[1], &o, &g, sizeof msg);
	assert_memory_equal(g.data, msg, sizeof msg);
	shutdown(sv[1], SHUT_RD);
	pump(&r, &g, sizeof msg + 1);
	assert_true(io_ring_cancel_all(&r, 1000) == 0);
	close(sv[0]);
	close(sv[1]);
	io_ring_exit(&r);
}

static void test_bad_sizes(void **state)
{
	struct io_ring r;
	char err[128];

	(void)state;
	assert_int_equal(io_ring_init(&r, 16, err, sizeof err), 0);
	assert_int_equal(io_ring_bufs_init(&r, 3, 64), -EINVAL);
	assert_int_equal(io_ring_bufs_init(&r, 0, 64), -EINVAL);
	assert_int_equal(io_ring_bufs_init(&r, 65536, 64), -EINVAL);
	assert_int_equal(io_ring_bufs_init(&r, 4, 0), -EINVAL);
	assert_int_equal(r.buf_count, 0);
	io_ring_exit(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spread_and_recycle),
		cmocka_unit_test(test_enobufs_loses_nothing),
		cmocka_unit_test(test_bad_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
