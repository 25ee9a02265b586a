/*
 * Peer transport on the core's ring. See cluster/peer.h for the connection
 * model, the hello, the classes and their bounds.
 *
 * Outbound life of a peer (one per other node, per core):
 *
 *   BACKOFF --timer--> CONNECTING --connected--> UP --error/EOF--> CLOSING
 *      ^                   |  (timeout: cancel)                       |
 *      +-------------------+--------- every op completed: close ------+
 *
 * With TLS, CONNECTING --connected--> HANDSHAKE --verified--> UP; the
 * HANDSHAKE state fails like CONNECTING. Its receive (probe_op) takes the
 * server's handshake flights, later anything it sends (alerts, key
 * updates; application data is a protocol error, as without TLS).
 *
 * In CLOSING the socket is shut down so every operation in flight completes;
 * only when none is left is the descriptor closed and the unsent part of the
 * batch put back at the front of its queues. While stopping, CLOSING leads
 * to STOPPED instead of BACKOFF.
 *
 * Inbound connections read the hello with exact-size reads (MSG_WAITALL),
 * so a connection handed to another core carries no bytes of the stream
 * with it; afterwards one recv at a time fills a buffer grown to the largest
 * announced frame. With TLS the ring receives ciphertext into the TLS
 * state's room and OpenSSL decrypts into that buffer, possibly past the
 * hello: a handed-off connection then carries its TLS state and the
 * plaintext after the hello.
 *
 * This file holds the outbound side, the queues, set-up and shutdown; the
 * inbound side is cluster/peer_in.c, the TLS driving of both sides
 * cluster/peer_tls_io.c, and the structures they share
 * cluster/peer_internal.h.
 */
#include "cluster/peer.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cluster/peer_internal.h"
#include "cluster/peer_tls.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/timer.h"
#include "io/tls.h"

uint64_t peer_rng(struct peer_core *pc)
{
	uint64_t x = pc->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	pc->rng = x;
	return x;
}

void peer_addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
		port = ntohs(in->sin_port);
		snprintf(buf, len, "%s:%u", ip, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
		port = ntohs(in6->sin6_port);
		snprintf(buf, len, "[%s]:%u", ip, port);
	} else {
		snprintf(buf, len, "(family %d)", sa->sa_family);
	}
}

/*
 * One line about an inbound connection that failed to become a peer's: the
 * first at warn, then at most one warning per PEER_REFUSAL_LOG_US per core
 * (a misconfigured node redials every second from every core), counting
 * the quiet ones. `verb` follows the address: " refused" or "".
 */
static void log_inbound_failure(struct peer_core *pc, const char *from, const char *verb,
				const char *why)
{
	if (pc->r->now_us < pc->refusal_log_at_us) {
		pc->refusals_quiet++;
		log_debug("peer connection from %s%s: %s", from, verb, why);
		return;
	}
	if (pc->refusals_quiet)
		log_warn("peer connection from %s%s: %s (%" PRIu64 " more refused in the "
			 "last %u s)", from, verb, why, pc->refusals_quiet,
			 PEER_REFUSAL_LOG_US / 1000000u);
	else
		log_warn("peer connection from %s%s: %s", from, verb, why);
	pc->refusals_quiet = 0;
	pc->refusal_log_at_us = pc->r->now_us + PEER_REFUSAL_LOG_US;
}

/* An inbound connection this node refused. */
void peer_log_refusal(struct peer_core *pc, const char *from, const char *why)
{
	pc->refused++;
	log_inbound_failure(pc, from, " refused", why);
}

/* An inbound connection whose dialler refused this node (its TLS alert). */
void peer_log_refused_by(struct peer_core *pc, const char *from, const char *why)
{
	log_inbound_failure(pc, from, "", why);
}

/* The peer whose address has the IP of `from` (any port: a node dials from
 * its own peer address's IP), when exactly one has it; else 0. */
uint64_t peer_node_at(const struct peer_core *pc, const struct sockaddr_storage *from)
{
	uint64_t found = 0;

	for (unsigned i = 0; i < pc->npeers; i++) {
		const struct sockaddr_storage *a = &pc->peers[i].node->addr;
		bool same;

		if (a->ss_family != from->ss_family)
			continue;
		if (a->ss_family == AF_INET)
			same = ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
			       ((const struct sockaddr_in *)from)->sin_addr.s_addr;
		else
			same = memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
				      &((const struct sockaddr_in6 *)from)->sin6_addr,
				      sizeof(struct in6_addr)) == 0;
		if (!same)
			continue;
		if (found)
			return 0;
		found = pc->peers[i].node->id;
	}
	return found;
}

/* -- frames and queues -- */

static struct peer_frame *frame_alloc(struct peer_core *pc, size_t payload)
{
	struct peer_frame *f;

	f = pool_alloc_large(core_pool(pc), sizeof *f + 4 + payload);
	if (!f)
		return NULL;
	f->next = NULL;
	f->wire_len = (uint32_t)(4 + payload);
	put_le32(f->wire, (uint32_t)payload);
	return f;
}

static void queue_push_back(struct frame_queue *q, struct peer_frame *f)
{
	f->next = NULL;
	if (q->tail)
		q->tail->next = f;
	else
		q->head = f;
	q->tail = f;
	q->bytes += f->wire_len;
	q->frames++;
}

static void queue_push_front(struct frame_queue *q, struct peer_frame *f)
{
	f->next = q->head;
	q->head = f;
	if (!q->tail)
		q->tail = f;
	q->bytes += f->wire_len;
	q->frames++;
}

struct peer_frame *peer_queue_pop(struct frame_queue *q)
{
	struct peer_frame *f = q->head;

	if (!f)
		return NULL;
	q->head = f->next;
	if (!q->head)
		q->tail = NULL;
	q->bytes -= f->wire_len;
	q->frames--;
	f->next = NULL;
	return f;
}

static void queue_free(struct peer_core *pc, struct frame_queue *q)
{
	struct peer_frame *f;

	while ((f = peer_queue_pop(q)))
		pool_free(core_pool(pc), f);
}

/* Drops the oldest bulk frames until `incoming` more bytes fit the bound. */
static void bulk_make_room(struct peer *p, size_t incoming)
{
	struct peer_core *pc = p->pc;

	while (p->bulk.head && p->bulk.bytes + incoming > pc->net->cfg.bulk_limit) {
		struct peer_frame *f = peer_queue_pop(&p->bulk);

		p->stats.dropped_frames++;
		p->stats.dropped_bytes += f->wire_len;
		pool_free(core_pool(pc), f);
	}
}

struct peer *peer_find(struct peer_core *pc, uint64_t node)
{
	unsigned i;

	for (i = 0; i < pc->npeers; i++)
		if (pc->peers[i].node->id == node)
			return &pc->peers[i];
	return NULL;
}

static struct peer_frame *frame_of(void *payload)
{
	return (struct peer_frame *)((uint8_t *)payload - 4 - offsetof(struct peer_frame, wire));
}

void *peer_frame_reserve(struct peer_core *pc, size_t len)
{
	struct peer_frame *f;

	if (len > pc->net->cfg.max_frame)
		return NULL;
	f = frame_alloc(pc, len);
	return f ? f->wire + 4 : NULL;
}

void peer_frame_release(struct peer_core *pc, void *payload)
{
	if (payload)
		pool_free(core_pool(pc), frame_of(payload));
}

int peer_send_reserved(struct peer_core *pc, uint64_t to, enum peer_class cls,
		       void *payload, size_t len)
{
	const struct peer_config *cfg = &pc->net->cfg;
	struct peer_frame *f = frame_of(payload);
	size_t wire = 4 + len;
	struct peer *p;
	int rv;

	assert(cls == PEER_CONTROL || cls == PEER_BULK);
	assert(wire <= f->wire_len); /* within what was reserved */
	if (pc->stopping) {
		rv = -ESHUTDOWN;
		goto err;
	}
	p = peer_find(pc, to);
	if (!p) {
		rv = -ENOENT;
		goto err;
	}
	if (cls == PEER_BULK && wire > cfg->bulk_limit) {
		rv = -EMSGSIZE;
		goto err;
	}
	if (cls == PEER_CONTROL && p->control.bytes + wire > cfg->control_limit) {
		p->stats.refused_frames++;
		rv = -ENOBUFS;
		goto err;
	}
	f->cls = (uint8_t)cls;
	f->wire_len = (uint32_t)wire;
	put_le32(f->wire, (uint32_t)len);
	if (cls == PEER_BULK) {
		bulk_make_room(p, wire);
		queue_push_back(&p->bulk, f);
	} else {
		queue_push_back(&p->control, f);
	}
	/* Queued by a hook that runs after ours: do not sleep on it. */
	if (p->state == OUT_UP && !p->sending)
		reactor_poll_again(pc->r);
	return 0;

err:
	pool_free(core_pool(pc), f);
	return rv;
}

int peer_send(struct peer_core *pc, uint64_t to, enum peer_class cls,
	      const void *data, size_t len)
{
	void *payload;

	if (len > pc->net->cfg.max_frame)
		return -EMSGSIZE;
	/* Cheap refusals first, before copying. */
	if (pc->stopping)
		return -ESHUTDOWN;
	if (!peer_find(pc, to))
		return -ENOENT;
	payload = peer_frame_reserve(pc, len);
	if (!payload)
		return -ENOMEM;
	if (len)
		memcpy(payload, data, len);
	return peer_send_reserved(pc, to, cls, payload, len);
}

/* -- outbound -- */

void peer_submit_op(struct peer *p, struct io_uring_sqe *sqe, struct io_op *op)
{
	io_op_attach(sqe, op);
	p->ops++;
	p->pc->ops++;
}

static void op_done(struct peer *p)
{
	p->ops--;
	p->pc->ops--;
}

static void backoff_fired(struct timer *t, void *arg)
{
	struct peer *p = arg;

	if (p->state == OUT_BACKOFF && !p->pc->stopping)
		peer_connect_start(p);
}

static void schedule_reconnect(struct peer *p)
{
	struct peer_core *pc = p->pc;
	const struct peer_config *cfg = &pc->net->cfg;
	uint64_t delay = p->backoff_us;
	uint64_t jittered;

	/* "Equal jitter": half fixed, half random, so cores and nodes that
	 * lost a peer together do not all dial it again in the same instant. */
	jittered = delay / 2 + peer_rng(pc) % (delay / 2 + 1);
	p->backoff_us = delay * 2 > cfg->backoff_max_us ? cfg->backoff_max_us : delay * 2;
	p->state = OUT_BACKOFF;
	reactor_timer_arm(pc->r, &p->timer, jittered, backoff_fired, p);
}

/* CLOSING with nothing in flight: close, give the unsent back to the queues. */
void peer_out_maybe_closed(struct peer *p)
{
	struct peer_core *pc = p->pc;
	unsigned i;

	if (p->state != OUT_CLOSING || p->ops)
		return;
	p->flushing = false;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	/* Put back what did not go out completely, in order, ahead of what
	 * was queued since: the receiver dropped any partial frame. */
	for (i = p->nbatch; i-- > p->batch_done;) {
		struct peer_frame *f = p->batch[i];

		if (f->cls == FRAME_HELLO)
			pool_free(core_pool(pc), f);
		else
			queue_push_front(f->cls == PEER_BULK ? &p->bulk : &p->control, f);
	}
	p->nbatch = p->batch_done = 0;
	p->batch_off = 0;
	/* TLS: a frame OpenSSL took part of goes again whole. */
	if (p->tx) {
		if (p->tx->cls == FRAME_HELLO)
			pool_free(core_pool(pc), p->tx);
		else
			queue_push_front(p->tx->cls == PEER_BULK ? &p->bulk : &p->control, p->tx);
		p->tx = NULL;
	}
	tls_conn_free(p->tls);
	p->tls = NULL;
	bulk_make_room(p, 0);
	if (p->hello) {
		pool_free(core_pool(pc), p->hello);
		p->hello = NULL;
	}
	p->stats.connected = false;
	p->stats.connected_since_us = 0;
	if (pc->stopping) {
		p->state = OUT_STOPPED;
		return;
	}
	p->stats.reconnects++;
	schedule_reconnect(p);
}

/* FNV-1a of a reason's text: a new reason is logged, a repeated one not. */
static uint64_t text_hash(const char *text)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *text; text++)
		h = (h ^ (uint8_t)*text) * 0x100000001b3ull;
	return h;
}

/* TLS: the flush of a closing connection is over (sent, failed or timed
 * out): the shutdown wakes the probe, and a send still in flight. */
static void flush_end(struct peer *p)
{
	p->flushing = false;
	reactor_timer_cancel(p->pc->r, &p->timer);
	if (p->fd >= 0)
		shutdown(p->fd, SHUT_RDWR);
}

static void flush_timeout_fired(struct timer *t, void *arg)
{
	struct peer *p = arg;

	if (p->flushing)
		flush_end(p);
	peer_out_maybe_closed(p);
}

/*
 * TLS, closing at peer_out_refuse's request: what OpenSSL queued for the
 * other side (a refusal's alert, a close_notify) goes out through the ring
 * before the shutdown, within PEER_REFUSE_FLUSH_US; the probe stays as it
 * is (nothing is read meanwhile but what it takes). False when there is
 * nothing to send: close at once.
 */
static bool flush_start(struct peer *p)
{
	struct peer_core *pc = p->pc;

	if (!p->close_flush || !p->tls || p->fd < 0 || pc->stopping)
		return false;
	if (!p->sending && !peer_out_send_tls(p))
		return false;
	p->flushing = true;
	reactor_timer_arm(pc->r, &p->timer, PEER_REFUSE_FLUSH_US, flush_timeout_fired, p);
	return true;
}

/* The connection failed or broke: stop everything on it. */
void peer_out_lost(struct peer *p, int err)
{
	struct peer_core *pc = p->pc;
	const struct peer_config *cfg = &pc->net->cfg;

	const char *why;

	if (p->state != OUT_UP && p->state != OUT_CONNECTING && p->state != OUT_HANDSHAKE)
		return;
	if (err)
		p->stats.last_error = err;
	why = p->why[0] ? p->why : err ? strerror(-err) : "closed by the peer";
	if (p->state == OUT_UP) {
		bool young = pc->r->now_us - p->up_since_us < cfg->backoff_max_us;

		/* A connection that lived a while earns a fresh backoff; one
		 * closed at once (a refused hello) keeps growing it, and after
		 * the first such loss only debug lines are logged. */
		if (!young)
			p->backoff_us = cfg->backoff_min_us;
		if (pc->stopping || (young && p->flapping))
			log_debug("peer %s: connection lost: %s", p->name, why);
		else
			log_warn("peer %s: connection lost: %s", p->name, why);
		p->flapping = young;
	} else if ((!p->failing || err != p->failing_err || text_hash(why) != p->failing_why) &&
		   !pc->stopping) {
		/* Once per kind of failure: a node that was down and is now
		 * refused for its certificate says so. */
		log_warn("peer %s: cannot connect: %s (retrying with backoff)", p->name, why);
		p->failing = true;
		p->failing_err = err;
		p->failing_why = text_hash(why);
	} else {
		log_debug("peer %s: connect failed again: %s", p->name, why);
	}
	p->why[0] = '\0';
	p->state = OUT_CLOSING;
	reactor_timer_cancel(pc->r, &p->timer);
	if (p->connecting) {
		struct io_uring_sqe *sqe = io_ring_get_sqe(&pc->r->io);

		io_uring_prep_cancel(sqe, &p->connect_op, 0);
		io_uring_sqe_set_data(sqe, NULL);
	}
	if (flush_start(p))
		return;
	if (p->fd >= 0)
		shutdown(p->fd, SHUT_RDWR); /* wakes the send and the probe */
	peer_out_maybe_closed(p);
}

/* As peer_out_lost, but with TLS what OpenSSL queued for the other side
 * (the alert of a refused handshake, a close_notify) is sent first. */
void peer_out_refuse(struct peer *p, int err)
{
	p->close_flush = true;
	peer_out_lost(p, err);
	p->close_flush = false;
}

static void connect_timeout_fired(struct timer *t, void *arg)
{
	struct peer *p = arg;

	if (p->state == OUT_HANDSHAKE)
		snprintf(p->why, sizeof p->why, "TLS handshake not done within %u ms",
			 p->pc->net->cfg.hello_timeout_us / 1000);
	if (p->state == OUT_CONNECTING || p->state == OUT_HANDSHAKE)
		peer_out_lost(p, -ETIMEDOUT);
}

static void probe_done(struct io_op *op, int res, unsigned flags)
{
	struct peer *p = op->data;

	p->probing = false;
	op_done(p);
	if (p->tls) {
		peer_out_tls_received(p, res);
		return;
	}
	/* EOF, an error, or bytes where none may come: the connection is over. */
	peer_out_lost(p, res < 0 ? res : res == 0 ? 0 : -EPROTO);
	peer_out_maybe_closed(p);
}

void peer_arm_probe(struct peer *p)
{
	struct io_uring_sqe *sqe;
	uint8_t *room = &p->probe_byte;
	size_t len = 1;

	if (p->probing)
		return;
	/* TLS: into the state's room; none while fed ciphertext waits (the
	 * next step makes room, and arms it). */
	if (p->tls && (len = tls_conn_recv_room(p->tls, &room)) == 0)
		return;
	sqe = io_ring_get_sqe(&p->pc->r->io);
	io_uring_prep_recv(sqe, p->fd, room, len, 0);
	peer_submit_op(p, sqe, &p->probe_op);
	p->probing = true;
}

/* Connected (and with TLS, the server verified as the node dialled): the
 * hello goes first, then the queues. */
void peer_out_up(struct peer *p)
{
	struct peer_core *pc = p->pc;
	struct peer_frame *hello;
	int n;

	hello = frame_alloc(pc, PEER_HELLO_MAX);
	n = hello ? pc->net->cfg.cb.hello_make(pc->arg, p->node->id, hello->wire + 4,
						PEER_HELLO_MAX) : -ENOMEM;
	if (n < 0 || n > PEER_HELLO_MAX) {
		pool_free(core_pool(pc), hello);
		p->state = OUT_UP; /* so that peer_out_lost closes it */
		p->up_since_us = pc->r->now_us;
		peer_out_lost(p, n < 0 ? n : -EMSGSIZE);
		return;
	}
	hello->cls = FRAME_HELLO;
	hello->wire_len = 4 + (uint32_t)n;
	put_le32(hello->wire, (uint32_t)n);
	p->hello = hello;
	p->state = OUT_UP;
	p->up_since_us = pc->r->now_us;
	p->stats.connected = true;
	p->stats.connected_since_us = pc->r->now_us;
	p->stats.connects++;
	if (p->failing)
		log_info("peer %s: connected", p->name);
	else
		log_debug("peer %s: connected", p->name);
	p->failing = false;
	peer_arm_probe(p);
	peer_start_batch(p);
}

static void connect_done(struct io_op *op, int res, unsigned flags)
{
	struct peer *p = op->data;
	struct peer_core *pc = p->pc;
	const struct peer_config *cfg = &pc->net->cfg;

	p->connecting = false;
	op_done(p);
	reactor_timer_cancel(pc->r, &p->timer);
	if (p->state != OUT_CONNECTING) {
		peer_out_maybe_closed(p);
		return;
	}
	if (res < 0) {
		peer_out_lost(p, res == -ECANCELED ? -ETIMEDOUT : res);
		return;
	}
	if (!cfg->tls) {
		peer_out_up(p);
		return;
	}
	/* Connection set-up, not the frame path: the TLS state is malloc'd. */
	p->tls = tls_conn_dial(cfg->tls);
	if (!p->tls) {
		peer_out_lost(p, -ENOMEM);
		return;
	}
	tls_conn_set_check(p->tls, peer_out_cert_check, p);
	p->state = OUT_HANDSHAKE;
	reactor_timer_arm(pc->r, &p->timer, cfg->hello_timeout_us, connect_timeout_fired, p);
	peer_out_tls_step(p);
}

void peer_connect_start(struct peer *p)
{
	struct peer_core *pc = p->pc;
	const struct peer_config *cfg = &pc->net->cfg;
	struct sockaddr_storage local = cfg->self_addr;
	struct io_uring_sqe *sqe;
	int one = 1, rv;
	unsigned user_timeout = cfg->user_timeout_ms;

	/* Our own address, any source port: the kernel picks the port. */
	if (local.ss_family == AF_INET)
		((struct sockaddr_in *)&local)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&local)->sin6_port = 0;
	p->fd = socket(p->node->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->fd < 0)
		goto fail;
	if (setsockopt(p->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
	    setsockopt(p->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout,
		       sizeof user_timeout) != 0 ||
	    bind(p->fd, (struct sockaddr *)&local, cfg->self_addrlen) != 0)
		goto fail;
	sqe = io_ring_get_sqe(&pc->r->io);
	io_uring_prep_connect(sqe, p->fd, (const struct sockaddr *)&p->node->addr,
			      p->node->addrlen);
	peer_submit_op(p, sqe, &p->connect_op);
	p->connecting = true;
	p->state = OUT_CONNECTING;
	reactor_timer_arm(pc->r, &p->timer, cfg->connect_timeout_us,
			  connect_timeout_fired, p);
	return;

fail:
	rv = -errno;
	p->state = OUT_CONNECTING; /* so that peer_out_lost logs and backs off */
	peer_out_lost(p, rv);
}

/* Sends the hello (first on a new connection), then control frames ahead
 * of bulk ones, up to PEER_BATCH_MAX frames in one SENDMSG. */
void peer_start_batch(struct peer *p)
{
	struct io_uring_sqe *sqe;
	unsigned n = 0;

	if (p->state != OUT_UP || p->sending)
		return;
	if (p->tls) {
		peer_start_batch_tls(p);
		return;
	}
	if (p->hello) {
		p->batch[n++] = p->hello;
		p->hello = NULL;
	}
	while (n < PEER_BATCH_MAX && p->control.head)
		p->batch[n++] = peer_queue_pop(&p->control);
	while (n < PEER_BATCH_MAX && p->bulk.head)
		p->batch[n++] = peer_queue_pop(&p->bulk);
	if (n == 0)
		return;
	for (unsigned i = 0; i < n; i++) {
		p->iov[i].iov_base = p->batch[i]->wire;
		p->iov[i].iov_len = p->batch[i]->wire_len;
	}
	p->nbatch = n;
	p->batch_done = 0;
	p->batch_off = 0;
	memset(&p->msg, 0, sizeof p->msg);
	p->msg.msg_iov = p->iov;
	p->msg.msg_iovlen = n;
	sqe = io_ring_get_sqe(&p->pc->r->io);
	io_uring_prep_sendmsg(sqe, p->fd, &p->msg, MSG_NOSIGNAL);
	peer_submit_op(p, sqe, &p->send_op);
	p->sending = true;
}

static void send_done(struct io_op *op, int res, unsigned flags)
{
	struct peer *p = op->data;
	struct peer_core *pc = p->pc;
	size_t left;

	p->sending = false;
	op_done(p);
	if (p->flushing) {
		if (res > 0) {
			tls_conn_sent(p->tls, (size_t)res);
			if (peer_out_send_tls(p))
				return; /* the rest of the alert or close_notify */
		}
		flush_end(p);
		peer_out_maybe_closed(p);
		return;
	}
	if (res <= 0) {
		peer_out_lost(p, res < 0 ? res : -EPIPE);
		peer_out_maybe_closed(p);
		return;
	}
	if (p->tls) {
		tls_conn_sent(p->tls, (size_t)res);
		if (p->state != OUT_UP && p->state != OUT_HANDSHAKE)
			peer_out_maybe_closed(p);
		else
			peer_out_tls_step(p); /* the rest, and what waited for room */
		return;
	}
	left = (size_t)res;
	while (left && p->batch_done < p->nbatch) {
		struct peer_frame *f = p->batch[p->batch_done];
		size_t rest = f->wire_len - p->batch_off;

		if (left < rest) {
			p->batch_off += left;
			break;
		}
		left -= rest;
		p->stats.frames_sent++;
		p->stats.bytes_sent += f->wire_len;
		pool_free(core_pool(pc), f);
		p->batch_done++;
		p->batch_off = 0;
	}
	if (p->state != OUT_UP) {
		peer_out_maybe_closed(p); /* requeues what is left of the batch */
		return;
	}
	if (p->batch_done < p->nbatch) {
		/* A partial send: the rest goes before anything else. */
		struct io_uring_sqe *sqe;

		p->iov[p->batch_done].iov_base = p->batch[p->batch_done]->wire + p->batch_off;
		p->iov[p->batch_done].iov_len = p->batch[p->batch_done]->wire_len - p->batch_off;
		p->msg.msg_iov = &p->iov[p->batch_done];
		p->msg.msg_iovlen = p->nbatch - p->batch_done;
		sqe = io_ring_get_sqe(&pc->r->io);
		io_uring_prep_sendmsg(sqe, p->fd, &p->msg, MSG_NOSIGNAL);
		peer_submit_op(p, sqe, &p->send_op);
		p->sending = true;
		return;
	}
	p->nbatch = p->batch_done = 0;
	/* What was queued meanwhile goes with the next pass's hook, batched
	 * with whatever that pass adds. */
}

/* Per-iteration hook: one SENDMSG per connected peer with something queued. */
static void flush_hook(struct reactor *r, void *arg)
{
	struct peer_core *pc = arg;
	unsigned i;

	/* A SIGHUP reloaded the peers' TLS context: check the connections. */
	if (pc->net->cfg.tls && tls_server_generation(pc->net->cfg.tls) != pc->tls_generation)
		peer_tls_reloaded(pc);
	for (i = 0; i < pc->npeers; i++) {
		struct peer *p = &pc->peers[i];

		if (p->state == OUT_UP && !p->sending &&
		    (p->control.head || p->bulk.head || p->tx))
			peer_start_batch(p);
	}
}

/* -- set-up and shutdown -- */

int peer_listen(const struct sockaddr *addr, socklen_t addrlen, unsigned count,
		int *fds, uint16_t *port, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	char text[64];
	unsigned i;
	int one = 1, rv;

	memset(&ss, 0, sizeof ss);
	memcpy(&ss, addr, addrlen);
	peer_addr_text(addr, text, sizeof text);
	for (i = 0; i < count; i++) {
		int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			goto fail;
		fds[i] = fd;
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
		    bind(fd, (struct sockaddr *)&ss, addrlen) != 0)
			goto fail_after_socket;
		if (i == 0) {
			/* Port 0 chose a port: the other cores' listeners share it. */
			sslen = sizeof ss;
			if (getsockname(fd, (struct sockaddr *)&ss, &sslen) != 0)
				goto fail_after_socket;
		}
	}
	*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					       : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;

fail_after_socket:
	i++;
fail:
	rv = -errno;
	snprintf(err, errlen, "cannot listen for peers on %s: %s", text, strerror(errno));
	while (i--)
		close(fds[i]);
	return rv;
}

int peer_net_create(struct peer_net **out, const struct peer_config *cfg,
		    unsigned cores, char *err, size_t errlen)
{
	struct peer_net *n;
	unsigned i;

	if (!cfg->listen_fds) {
		snprintf(err, errlen, "peer transport: no listeners");
		return -EINVAL;
	}
	n = calloc(1, sizeof *n);
	if (!n)
		goto err_nomem;
	n->cfg = *cfg;
	n->cores = cores;
	n->listen_fds = calloc(cores, sizeof *n->listen_fds);
	n->per_core = calloc(cores, sizeof *n->per_core);
	if (!n->listen_fds || !n->per_core)
		goto err_nomem;
	for (i = 0; i < cores; i++)
		n->listen_fds[i] = cfg->listen_fds[i];
	n->cfg.listen_fds = NULL;
#define DEFAULT(field, value) \
	if (!n->cfg.field) \
		n->cfg.field = (value)
	DEFAULT(max_frame, PEER_DEFAULT_MAX_FRAME);
	DEFAULT(bulk_limit, PEER_DEFAULT_BULK_LIMIT);
	DEFAULT(control_limit, PEER_DEFAULT_CONTROL_LIMIT);
	DEFAULT(backoff_min_us, PEER_DEFAULT_BACKOFF_MIN_US);
	DEFAULT(backoff_max_us, PEER_DEFAULT_BACKOFF_MAX_US);
	DEFAULT(connect_timeout_us, PEER_DEFAULT_CONNECT_TIMEOUT_US);
	DEFAULT(hello_timeout_us, PEER_DEFAULT_HELLO_TIMEOUT_US);
	DEFAULT(user_timeout_ms, PEER_DEFAULT_USER_TIMEOUT_MS);
#undef DEFAULT
	if (cfg->npeers > PEER_MAX_PEERS || !cfg->cb.hello_make || !cfg->cb.hello_check ||
	    !cfg->cb.on_frame || n->cfg.max_frame > UINT32_MAX - 4 ||
	    (cfg->self_addr.ss_family != AF_INET && cfg->self_addr.ss_family != AF_INET6) ||
	    n->cfg.backoff_min_us > n->cfg.backoff_max_us) {
		snprintf(err, errlen, "invalid peer transport configuration");
		peer_net_destroy(n);
		return -EINVAL;
	}
	for (i = 0; i < cfg->npeers; i++) {
		if (cfg->peers[i].id == cfg->self_id || cfg->peers[i].id == 0 ||
		    cfg->peers[i].addr.ss_family != cfg->self_addr.ss_family) {
			snprintf(err, errlen, "peer %u (node %" PRIu64 "): invalid id or address family",
				 i, cfg->peers[i].id);
			peer_net_destroy(n);
			return -EINVAL;
		}
	}
	*out = n;
	return 0;

err_nomem:
	if (n) {
		if (n->listen_fds)
			for (i = 0; i < cores; i++)
				n->listen_fds[i] = cfg->listen_fds[i];
		else
			for (i = 0; i < cores; i++)
				close(cfg->listen_fds[i]);
		peer_net_destroy(n);
	} else {
		for (i = 0; i < cores; i++)
			close(cfg->listen_fds[i]);
	}
	snprintf(err, errlen, "out of memory setting up the peer transport");
	return -ENOMEM;
}

void peer_net_destroy(struct peer_net *n)
{
	unsigned i;

	if (!n)
		return;
	if (n->listen_fds)
		for (i = 0; i < n->cores; i++)
			if (n->listen_fds[i] >= 0)
				close(n->listen_fds[i]);
	free(n->listen_fds);
	free(n->per_core);
	free(n);
}

static void accept_msg_arrived(struct reactor *r, struct reactor_msg *m)
{
	struct peer_core *pc = (struct peer_core *)((char *)m - offsetof(struct peer_core,
									   accept_msg));

	(void)r;
	if (!pc->stopping && !pc->accept_armed && !timer_armed(&pc->accept_pause))
		peer_arm_accept(pc);
}

/*
 * Every core has started (its replicas open): the listeners listen, and
 * each core starts accepting. Not before: a node opening 10,000 replicas
 * takes seconds, and the kernel would complete the peers' connects into
 * the backlog meanwhile; they would send their queues into sockets nobody
 * reads until TCP_USER_TIMEOUT ended them, then dial again, each new
 * connection a hello that wakes every group with a member here. Refused
 * instead, they back off (at most backoff_max) and meet a node that reads.
 */
static int listen_all(struct peer_net *n, struct reactor *r, char *err, size_t errlen)
{
	for (unsigned i = 0; i < n->cores; i++) {
		if (listen(n->listen_fds[i], 1024) != 0) {
			int rv = -errno;

			snprintf(err, errlen, "cannot listen for peers: %s", strerror(errno));
			return rv;
		}
	}
	for (unsigned i = 0; i < n->cores; i++) {
		struct peer_core *pc = n->per_core[i];

		if (i == r->id)
			accept_msg_arrived(r, &pc->accept_msg);
		else
			reactor_send(r, i, &pc->accept_msg);
	}
	return 0;
}

int peer_core_start(struct peer_net *n, struct reactor *r, void *arg,
		    struct peer_core **out, char *err, size_t errlen)
{
	struct peer_core *pc;
	unsigned i;
	int rv;

	pc = calloc(1, sizeof *pc);
	if (!pc)
		goto err_nomem;
	pc->net = n;
	pc->r = r;
	pc->arg = arg;
	pc->npeers = n->cfg.npeers;
	pc->listen_fd = n->listen_fds[r->id];
	if (n->cfg.tls)
		pc->tls_generation = tls_server_generation(n->cfg.tls);
	pc->rng = (n->cfg.self_id * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)r->id << 32) ^
		  r->now_us ^ 0x2545f4914f6cdd1dull;
	if (!pc->rng)
		pc->rng = 1;
	pc->peers = calloc(pc->npeers ? pc->npeers : 1, sizeof *pc->peers);
	if (!pc->peers)
		goto err_nomem;
	rv = reactor_add_hook(r, flush_hook, pc);
	if (rv) {
		snprintf(err, errlen, "core %u: no room for the peer send hook", r->id);
		free(pc->peers);
		free(pc);
		return rv;
	}
	pc->accept_op.done = peer_accept_done;
	pc->accept_op.data = pc;
	pc->accept_msg.handle = accept_msg_arrived;
	n->per_core[r->id] = pc;
	*out = pc;
	for (i = 0; i < pc->npeers; i++) {
		struct peer *p = &pc->peers[i];
		char text[64];

		p->pc = pc;
		p->index = i;
		p->node = &n->cfg.peers[i];
		p->fd = -1;
		p->stats.node_id = p->node->id;
		p->backoff_us = n->cfg.backoff_min_us;
		p->connect_op.done = connect_done;
		p->connect_op.data = p;
		p->send_op.done = send_done;
		p->send_op.data = p;
		p->probe_op.done = probe_done;
		p->probe_op.data = p;
		peer_addr_text((const struct sockaddr *)&p->node->addr, text, sizeof text);
		snprintf(p->name, sizeof p->name, "node %" PRIu64 " (%s)", p->node->id, text);
		/* Dialled on the first pass of the loop, not from here: a start
		 * callback may have blocked for seconds (opening thousands of
		 * replicas) since the loop last read its clock, and a connect
		 * timeout armed from that stale clock fires at once. */
		p->state = OUT_BACKOFF;
		reactor_timer_arm(r, &p->timer, 0, backoff_fired, p);
	}
	peer_expiry_start(pc);
	/* The last core to start opens the door for all of them. */
	if (atomic_fetch_add(&n->started, 1) + 1 == n->cores) {
		rv = listen_all(n, r, err, errlen);
		if (rv)
			return rv; /* the node does not start */
	}
	return 0;

err_nomem:
	if (pc)
		free(pc->peers);
	free(pc);
	snprintf(err, errlen, "core %u: out of memory for the peer transport", r->id);
	return -ENOMEM;
}

void peer_core_stop(struct peer_core *pc)
{
	struct peer_in *in, *next;
	unsigned i;

	pc->stopping = true;
	pc->stop_deadline_us = pc->r->now_us + pc->net->cfg.backoff_max_us;
	reactor_timer_cancel(pc->r, &pc->accept_pause);
	reactor_timer_cancel(pc->r, &pc->expiry_timer);
	if (pc->accept_armed) {
		struct io_uring_sqe *sqe = io_ring_get_sqe(&pc->r->io);

		io_uring_prep_cancel(sqe, &pc->accept_op, 0);
		io_uring_sqe_set_data(sqe, NULL);
	}
	for (in = pc->inbound; in; in = next) {
		next = in->next;
		peer_in_close(in);
	}
	for (i = 0; i < pc->npeers; i++) {
		struct peer *p = &pc->peers[i];

		if (p->state == OUT_BACKOFF) {
			reactor_timer_cancel(pc->r, &p->timer);
			p->state = OUT_STOPPED;
		} else if (p->state == OUT_CONNECTING || p->state == OUT_HANDSHAKE) {
			peer_out_lost(p, -ESHUTDOWN);
		}
		/* UP: keeps sending what is queued; see peer_core_quiescent. */
	}
}

bool peer_core_quiescent(struct peer_core *pc)
{
	bool late = pc->r->now_us >= pc->stop_deadline_us;
	unsigned i;

	for (i = 0; i < pc->npeers; i++) {
		struct peer *p = &pc->peers[i];

		if (p->state == OUT_UP &&
		    (late || (!p->sending && !p->hello && !p->tx && !p->control.head &&
			      !p->bulk.head)))
			peer_out_lost(p, 0);
	}
	return pc->ops == 0;
}

void peer_core_finish(struct peer_core *pc)
{
	unsigned i;

	if (!pc)
		return;
	reactor_timer_cancel(pc->r, &pc->accept_pause);
	reactor_timer_cancel(pc->r, &pc->expiry_timer);
	while (pc->inbound) {
		struct peer_in *in = pc->inbound;

		if (in->fd >= 0)
			close(in->fd);
		in->fd = -1;
		peer_in_free(in);
	}
	for (i = 0; i < pc->npeers; i++) {
		struct peer *p = &pc->peers[i];
		unsigned k;

		reactor_timer_cancel(pc->r, &p->timer);
		if (p->fd >= 0)
			close(p->fd);
		for (k = p->batch_done; k < p->nbatch; k++)
			pool_free(core_pool(pc), p->batch[k]);
		pool_free(core_pool(pc), p->hello);
		pool_free(core_pool(pc), p->tx);
		tls_conn_free(p->tls);
		queue_free(pc, &p->control);
		queue_free(pc, &p->bulk);
	}
	pc->net->per_core[pc->r->id] = NULL;
	free(pc->peers);
	free(pc);
}

unsigned peer_core_count(const struct peer_core *pc)
{
	return pc->npeers;
}

bool peer_core_connected(const struct peer_core *pc, uint64_t node)
{
	for (unsigned i = 0; i < pc->npeers; i++)
		if (pc->peers[i].node->id == node)
			return pc->peers[i].stats.connected;
	return false;
}

void peer_core_stats(const struct peer_core *pc, unsigned index, struct peer_stats *out)
{
	const struct peer *p = &pc->peers[index];

	*out = p->stats;
	out->queued_bytes = p->control.bytes + p->bulk.bytes;
	out->queued_frames = p->control.frames + p->bulk.frames;
}

void peer_core_counters(const struct peer_core *pc, struct peer_core_counters *out)
{
	out->accepted = pc->accepted;
	out->handed_off = pc->handed_off;
	out->adopted = pc->adopted;
	out->refused = pc->refused;
	out->inbound = pc->ninbound;
}
