/*
 * The peer transport's inbound side (cluster/peer_internal.h): a core
 * accepts, reads the hello with exact-size reads (plaintext) or through its
 * TLS state, judges it, hands the connection to the core the hello names,
 * and delivers the frames that follow to on_frame. Bounds before the hello:
 * the hello timer, PEER_MAX_INBOUND and, with TLS, PEER_MAX_HANDSHAKING.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/peer_internal.h"
#include "cluster/peer_tls.h"
#include "core/buf.h"
#include "core/log.h"
#include "io/tls.h"

static void in_recv_done(struct io_op *op, int res, unsigned flags);

void peer_in_free(struct peer_in *in)
{
	struct peer_core *pc = in->pc;

	reactor_timer_cancel(pc->r, &in->hello_timer);
	if (in->prev)
		in->prev->next = in->next;
	else
		pc->inbound = in->next;
	if (in->next)
		in->next->prev = in->prev;
	pc->ninbound--;
	if (in->unproven)
		pc->nhandshaking--;
	tls_conn_free(in->tls);
	pool_free(core_pool(pc), in->buf);
	pool_free(core_pool(pc), in);
}

/* Closes once no recv uses the socket (a pending one is woken first). */
void peer_in_close(struct peer_in *in)
{
	in->closing = true;
	reactor_timer_cancel(in->pc->r, &in->hello_timer);
	if (in->recv_armed || in->sending) {
		shutdown(in->fd, SHUT_RDWR);
		return;
	}
	if (in->fd >= 0)
		close(in->fd);
	in->fd = -1;
	peer_in_free(in);
}

static void hello_timeout_fired(struct timer *t, void *arg)
{
	struct peer_in *in = arg;

	log_warn("peer connection from %s: no %s within %u ms; closing", in->from_text,
		 in->stage == IN_HANDSHAKE ? "TLS handshake" : "hello",
		 in->pc->net->cfg.hello_timeout_us / 1000);
	peer_in_close(in);
}

static struct peer_in *in_create(struct peer_core *pc, int fd, enum in_stage stage,
				 const struct sockaddr_storage *from, const char *from_text)
{
	struct peer_in *in = pool_alloc(core_pool(pc), sizeof *in);

	if (!in)
		return NULL;
	memset(in, 0, sizeof *in);
	in->buf = pool_alloc(core_pool(pc), PEER_RBUF_INITIAL);
	if (!in->buf) {
		pool_free(core_pool(pc), in);
		return NULL;
	}
	in->cap = pool_block_size(in->buf);
	in->pc = pc;
	in->fd = fd;
	in->stage = stage;
	in->peer_index = -1;
	in->from = *from;
	snprintf(in->from_text, sizeof in->from_text, "%s", from_text);
	in->recv_op.done = in_recv_done;
	in->recv_op.data = in;
	in->send_op.done = peer_in_send_done;
	in->send_op.data = in;
	in->next = pc->inbound;
	if (in->next)
		in->next->prev = in;
	pc->inbound = in;
	pc->ninbound++;
	return in;
}

static void in_set_node(struct peer_in *in, uint64_t node)
{
	struct peer *p = peer_find(in->pc, node);

	in->from_node = node;
	in->peer_index = p ? (int)p->index : -1;
	/* It dialled us, so it listens: our own connection to it, waiting out
	 * a backoff (it was down, or still opening its replicas), dials now
	 * rather than up to backoff_max later; what we have for it waits. */
	if (p && p->state == OUT_BACKOFF && !p->pc->stopping) {
		reactor_timer_cancel(p->pc->r, &p->timer);
		p->backoff_us = p->pc->net->cfg.backoff_min_us;
		peer_connect_start(p);
	}
}

static void handoff_arrived(struct reactor *r, struct reactor_msg *m);

/* Passes the connection to core `target`, with its TLS state and the
 * plaintext after the hello. */
void peer_in_handoff(struct peer_in *in, unsigned target)
{
	struct peer_core *pc = in->pc;
	size_t rest = in->len - in->off;
	struct handoff *h = malloc(sizeof *h + rest);

	if (!h) {
		log_warn("peer connection from %s: out of memory handing it over", in->from_text);
		peer_in_close(in);
		return;
	}
	/* Connection set-up, not the frame path: malloc is fine here, and
	 * the receiving core may free it. */
	h->msg.handle = handoff_arrived;
	h->net = pc->net;
	h->fd = in->fd;
	h->from_node = in->from_node;
	h->from = in->from;
	snprintf(h->from_text, sizeof h->from_text, "%s", in->from_text);
	h->tls = in->tls;
	if (h->tls)
		tls_conn_set_check(h->tls, NULL, NULL); /* `in` goes */
	h->rest_len = rest;
	if (rest)
		memcpy(h->rest, in->buf + in->off, rest);
	in->tls = NULL;
	in->fd = -1;
	pc->handed_off++;
	peer_in_free(in);
	reactor_send(pc->r, target, &h->msg);
}

/* The hello is complete in buf[0, want): judge it and find its core. True
 * when the connection stays here, reading frames from buf[off, len). */
static bool hello_received(struct peer_in *in)
{
	struct peer_core *pc = in->pc;
	const struct peer_config *cfg = &pc->net->cfg;
	uint64_t from_node = 0;
	unsigned target = 0;
	char err[160] = "";
	int rv;

	rv = cfg->cb.hello_check(pc->arg, in->buf + 4, in->len - 4,
				 (const struct sockaddr *)&in->from, &from_node, &target,
				 err, sizeof err);
	if (rv == 0 && target >= pc->net->cores) {
		snprintf(err, sizeof err, "hello names core %u of %u", target, pc->net->cores);
		rv = -EINVAL;
	}
	/* Its certificate must be the node it says it is. */
	if (rv == 0 && in->tls && from_node != in->cert_node) {
		snprintf(err, sizeof err, "its hello claims node %" PRIu64
			 " but its certificate is for node %" PRIu64, from_node, in->cert_node);
		rv = -EPERM;
	}
	if (rv != 0) {
		peer_log_refusal(pc, in->from_text, err[0] ? err : "bad hello");
		/* After the handshake OpenSSL has no alert to send: a
		 * close_notify ends the connection cleanly. */
		if (in->tls)
			tls_conn_shutdown(in->tls);
		peer_in_refuse(in);
		return false;
	}
	/* Its handshake ran against a context a reload has replaced since. */
	if (!peer_in_recheck(in))
		return false;
	reactor_timer_cancel(pc->r, &in->hello_timer);
	if (in->unproven) {
		in->unproven = false;
		pc->nhandshaking--;
	}
	in->from_node = from_node;
	in->off = in->want;
	in->want = 0;
	if (target != pc->r->id) {
		/* TLS: the state goes once no operation of ours uses it (a send
		 * of OpenSSL's, a receive into its room: cancelled). */
		if (in->sending || in->recv_armed) {
			in->handoff_wait = true;
			in->handoff_core = target;
			if (in->recv_armed) {
				struct io_uring_sqe *sqe = io_ring_get_sqe(&pc->r->io);

				io_uring_prep_cancel(sqe, &in->recv_op, 0);
				io_uring_sqe_set_data(sqe, NULL);
			}
		} else {
			peer_in_handoff(in, target);
		}
		return false;
	}
	in_set_node(in, from_node);
	in->stage = IN_FRAMES;
	log_debug("peer connection from %s: node %" PRIu64 " on core %u", in->from_text,
		  from_node, pc->r->id);
	return true;
}

/* Hands every complete frame in the buffer to on_frame. False: closed. */
static bool in_deliver(struct peer_in *in)
{
	struct peer_core *pc = in->pc;
	const struct peer_config *cfg = &pc->net->cfg;
	struct peer *p = in->peer_index >= 0 ? &pc->peers[in->peer_index] : NULL;

	in->want = 0;
	while (in->len - in->off >= 4) {
		uint32_t plen = get_le32(in->buf + in->off);

		if (plen > cfg->max_frame) {
			log_warn("peer connection from %s (node %" PRIu64 "): frame of %" PRIu32
				 " bytes exceeds the %" PRIu32 "-byte limit; closing",
				 in->from_text, in->from_node, plen, cfg->max_frame);
			peer_in_close(in);
			return false;
		}
		if (in->len - in->off < 4 + (size_t)plen) {
			in->want = 4 + (size_t)plen;
			break;
		}
		cfg->cb.on_frame(pc->arg, in->from_node, in->buf + in->off + 4, plen);
		in->off += 4 + (size_t)plen;
		if (p) {
			p->stats.frames_received++;
			p->stats.bytes_received += 4 + (uint64_t)plen;
		}
	}
	return true;
}

static void in_recv_done(struct io_op *op, int res, unsigned flags)
{
	struct peer_in *in = op->data;
	struct peer_core *pc = in->pc;

	in->recv_armed = false;
	in->sock_nonempty = (flags & IORING_CQE_F_SOCK_NONEMPTY) != 0;
	pc->ops--;
	if (in->closing || pc->stopping || (in->refusing && !in->sending)) {
		peer_in_close(in);
		return;
	}
	if (in->refusing)
		return; /* its alert is still being sent: peer_in_send_done closes */
	if (in->handoff_wait) {
		/* Received before the cancel: it goes with the TLS state. */
		if (res > 0)
			tls_conn_received(in->tls, (size_t)res);
		if (!in->sending)
			peer_in_handoff(in, in->handoff_core);
		return;
	}
	if (res <= 0) {
		if (res < 0 && res != -ECONNRESET && res != -EPIPE)
			log_debug("peer connection from %s: recv: %s", in->from_text,
				  strerror(-res));
		peer_in_close(in);
		return;
	}
	if (in->tls) {
		tls_conn_received(in->tls, (size_t)res);
		peer_in_tls_progress(in);
		return;
	}
	in->len += (size_t)res;
	if (peer_in_consume(in))
		peer_in_arm_recv(in);
}

/* Moves buf's unread bytes to its start and grows it to the next frame's
 * size. No receive may be into buf. False: no memory, closed. */
bool peer_in_make_room(struct peer_in *in)
{
	if (in->off) {
		memmove(in->buf, in->buf + in->off, in->len - in->off);
		in->len -= in->off;
		in->off = 0;
	}
	if (in->want > in->cap &&
	    buf_grow(core_pool(in->pc), &in->buf, &in->cap, in->len, in->want) != 0) {
		log_warn("peer connection from %s: no memory for a %zu-byte frame; closing",
			 in->from_text, in->want);
		peer_in_close(in);
		return false;
	}
	return true;
}

/* Acts on what buf holds: false when the connection left (closed, or
 * handed to another core). */
bool peer_in_consume(struct peer_in *in)
{
	struct peer_core *pc = in->pc;

	switch (in->stage) {
	case IN_HANDSHAKE:
		return true;
	case IN_HELLO_LEN:
		if (in->len < 4)
			return true;
		{
			uint32_t hl = get_le32(in->buf);

			if (hl > PEER_HELLO_MAX) {
				char why[64];

				snprintf(why, sizeof why, "a %" PRIu32 "-byte hello (limit %u)",
					 hl, PEER_HELLO_MAX);
				peer_log_refusal(pc, in->from_text, why);
				if (in->tls)
					tls_conn_shutdown(in->tls);
				peer_in_refuse(in);
				return false;
			}
			in->stage = IN_HELLO;
			in->want = 4 + (size_t)hl;
		}
		/* fall through */
	case IN_HELLO:
		if (in->len < in->want)
			return true;
		if (!hello_received(in))
			return false;
		/* With TLS, frames may follow the hello in buf. */
		/* fall through */
	case IN_FRAMES:
		return in_deliver(in);
	}
	return true;
}

void peer_in_arm_recv(struct peer_in *in)
{
	struct peer_core *pc = in->pc;
	struct io_uring_sqe *sqe;
	uint8_t *at;
	size_t room;
	int flags = 0;

	if (in->recv_armed || in->closing)
		return;
	if (in->tls) {
		/* Into the TLS state's room; none while fed ciphertext waits
		 * (peer_in_tls_progress makes room, and comes back here). */
		room = tls_conn_recv_room(in->tls, &at);
		if (room == 0)
			return;
	} else if (in->stage == IN_FRAMES) {
		/* The only place the buffer moves or grows: no recv is in it. */
		if (!peer_in_make_room(in))
			return;
		at = in->buf + in->len;
		room = in->cap - in->len;
	} else {
		/* Exactly the hello: the stream after it belongs to its core. */
		at = in->buf + in->len;
		room = (in->stage == IN_HELLO_LEN ? 4 : in->want) - in->len;
		flags = MSG_WAITALL;
	}
	sqe = io_ring_get_sqe(&pc->r->io);
	io_uring_prep_recv(sqe, in->fd, at, room, flags);
	/* Drained by the last receive: wait for data before trying. */
	if (!in->sock_nonempty)
		sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
	io_op_attach(sqe, &in->recv_op);
	in->recv_armed = true;
	pc->ops++;
}

static void handoff_arrived(struct reactor *r, struct reactor_msg *m)
{
	struct handoff *h = (struct handoff *)m;
	struct peer_core *pc = h->net->per_core[r->id];
	struct peer_in *in;

	if (!pc || pc->stopping || pc->ninbound >= PEER_MAX_INBOUND) {
		tls_conn_free(h->tls);
		close(h->fd);
		free(h);
		return;
	}
	in = in_create(pc, h->fd, IN_FRAMES, &h->from, h->from_text);
	if (!in || buf_grow(core_pool(pc), &in->buf, &in->cap, 0, h->rest_len) != 0) {
		log_warn("peer connection from %s: out of memory; closing", h->from_text);
		if (in) {
			in->fd = -1;
			peer_in_free(in);
		}
		tls_conn_free(h->tls);
		close(h->fd);
		free(h);
		return;
	}
	in->tls = h->tls;
	in->cert_node = h->from_node;
	memcpy(in->buf, h->rest, h->rest_len);
	in->len = h->rest_len;
	in_set_node(in, h->from_node);
	pc->adopted++;
	free(h);
	if (!in->tls) {
		peer_in_arm_recv(in);
		return;
	}
	/* A reload this core has acted on already, while it travelled. */
	peer_in_recheck_later(in);
	/* Frames decrypted with the hello, then what OpenSSL still holds. */
	if (in_deliver(in))
		peer_in_tls_progress(in);
}

static void keepalive(int fd)
{
	int one = 1, idle = 10, intvl = 2, cnt = 3;

	/* The sender never reads from us, so only keepalives notice a sender
	 * that vanished (power loss, partition) and free the connection. */
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

static void in_accepted(struct peer_core *pc, int fd)
{
	struct sockaddr_storage from;
	socklen_t fromlen = sizeof from;
	char text[64];
	struct peer_in *in;

	memset(&from, 0, sizeof from);
	if (getpeername(fd, (struct sockaddr *)&from, &fromlen) != 0) {
		close(fd); /* already gone */
		return;
	}
	peer_addr_text((struct sockaddr *)&from, text, sizeof text);
	if (pc->ninbound >= PEER_MAX_INBOUND) {
		log_warn("peer connection from %s refused: %u inbound connections on core %u",
			 text, pc->ninbound, pc->r->id);
		close(fd);
		return;
	}
	/* TLS state is ~20 KiB a connection while it handshakes, ~130 KiB once
	 * its certificate verified (io/tls.h): strangers get few of them. */
	if (pc->net->cfg.tls && pc->nhandshaking >= PEER_MAX_HANDSHAKING) {
		peer_log_refusal(pc, text, "too many connections handshaking");
		close(fd);
		return;
	}
	keepalive(fd);
	in = in_create(pc, fd, pc->net->cfg.tls ? IN_HANDSHAKE : IN_HELLO_LEN, &from, text);
	if (in && pc->net->cfg.tls && !(in->tls = tls_conn_new(pc->net->cfg.tls))) {
		peer_in_free(in);
		in = NULL;
	}
	if (in && in->tls)
		tls_conn_set_check(in->tls, peer_in_cert_check, in);
	if (!in) {
		close(fd);
		return;
	}
	if (in->tls) {
		in->unproven = true;
		pc->nhandshaking++;
	}
	pc->accepted++;
	reactor_timer_arm(pc->r, &in->hello_timer, pc->net->cfg.hello_timeout_us,
			  hello_timeout_fired, in);
	peer_in_arm_recv(in);
}

static void accept_pause_over(struct timer *t, void *arg)
{
	struct peer_core *pc = arg;

	if (!pc->stopping && !pc->accept_armed)
		peer_arm_accept(pc);
}

void peer_accept_done(struct io_op *op, int res, unsigned flags)
{
	struct peer_core *pc = op->data;

	if (!(flags & IORING_CQE_F_MORE)) {
		pc->accept_armed = false;
		pc->ops--;
	}
	if (res >= 0) {
		if (pc->stopping)
			close(res);
		else
			in_accepted(pc, res);
	} else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
		if (!timer_armed(&pc->accept_pause)) {
			log_warn("peer accept: %s; pausing accepts for %u ms", strerror(-res),
				 PEER_ACCEPT_PAUSE_US / 1000);
			reactor_timer_arm(pc->r, &pc->accept_pause, PEER_ACCEPT_PAUSE_US,
					  accept_pause_over, pc);
		}
		return;
	} else if (res != -ECANCELED && res != -EINVAL && res != -EBADF) {
		log_warn("peer accept: %s", strerror(-res));
	}
	if (!pc->stopping && !pc->accept_armed && !timer_armed(&pc->accept_pause))
		peer_arm_accept(pc);
}

void peer_arm_accept(struct peer_core *pc)
{
	struct io_uring_sqe *sqe = io_ring_get_sqe(&pc->r->io);

	if (pc->r->io.has_multishot_accept)
		io_uring_prep_multishot_accept(sqe, pc->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	else
		io_uring_prep_accept(sqe, pc->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	io_op_attach(sqe, &pc->accept_op);
	pc->accept_armed = true;
	pc->ops++;
}
