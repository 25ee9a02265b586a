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

#include "cluster/peer_tls.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/timer.h"
#include "io/tls.h"

#define PEER_RBUF_INITIAL (16u << 10)
#define PEER_ACCEPT_PAUSE_US 100000u
#define FRAME_HELLO 0xff /* internal class of the hello frame */

struct peer_frame {
	struct peer_frame *next;
	uint32_t wire_len;        /* 4 + payload */
	uint8_t cls;              /* enum peer_class or FRAME_HELLO */
	uint8_t wire[];           /* u32 LE payload length, then the payload */
};

struct frame_queue {
	struct peer_frame *head, *tail;
	size_t bytes;             /* wire bytes queued */
	uint64_t frames;
};

enum out_state { OUT_BACKOFF, OUT_CONNECTING, OUT_HANDSHAKE, OUT_UP, OUT_CLOSING, OUT_STOPPED };

struct peer {
	struct peer_core *pc;
	unsigned index;
	const struct peer_node *node;
	char name[80];            /* "node 2 (127.0.0.12:7000)" for logs */
	enum out_state state;
	int fd;
	unsigned ops;             /* operations in flight on fd */
	bool sending, probing, connecting;
	bool failing;             /* a failure was logged; say when it connects */
	int failing_err;          /* the failure logged: another one is logged too */
	uint64_t failing_why;     /* a hash of its reason's text (TLS: one errno, many reasons) */
	bool flapping;            /* the last connection died young: log quietly */
	struct io_op connect_op, send_op, probe_op;
	struct timer timer;       /* connect timeout, or the backoff */
	uint64_t backoff_us;      /* the next backoff, before jitter */
	uint64_t up_since_us;
	struct frame_queue control, bulk;
	struct peer_frame *hello; /* built on connect, first in the next batch */

	struct peer_frame *batch[PEER_BATCH_MAX]; /* the SENDMSG in flight */
	struct iovec iov[PEER_BATCH_MAX];
	unsigned nbatch;
	unsigned batch_done;      /* frames of the batch completely sent */
	size_t batch_off;         /* bytes of batch[batch_done] sent */
	struct msghdr msg;
	uint8_t probe_byte;       /* a peer never writes on our connection */
	struct peer_stats stats;

	/* TLS (cfg.tls): from the connect until the close. */
	struct tls_conn *tls;
	struct peer_frame *tx;    /* the frame OpenSSL is taking, from a queue */
	size_t tx_off;            /* its wire bytes taken so far */
	char why[448];            /* TLS reason of the loss, for out_lost's line */
};

enum in_stage { IN_HANDSHAKE, IN_HELLO_LEN, IN_HELLO, IN_FRAMES };

struct peer_in {
	struct peer_core *pc;
	int fd;
	enum in_stage stage;
	bool recv_armed;
	bool sock_nonempty;  /* the last receive left data in the socket */
	bool closing;
	bool sending;             /* TLS: ciphertext send in flight */
	bool handoff_wait;        /* TLS: hand off once the send is done */
	bool unproven;            /* TLS: counted in pc->nhandshaking */
	bool refusing;            /* TLS: refused; closes once its alert is sent */
	struct tls_conn *tls;     /* TLS state, or NULL: plaintext */
	uint64_t cert_node;       /* TLS: the node its certificate names */
	unsigned handoff_core;    /* TLS: where handoff_wait takes it */
	struct io_op send_op;
	uint8_t *buf;             /* [off, len) received, not yet handed out */
	size_t cap, len, off;
	size_t want;              /* bytes from off the next frame needs, 0 = unknown */
	uint64_t from_node;
	int peer_index;           /* into pc->peers, -1 for an unknown node */
	char from_text[64];
	struct sockaddr_storage from;
	struct io_op recv_op;
	struct timer hello_timer;
	struct peer_in *prev, *next;
};

struct peer_net {
	struct peer_config cfg;
	unsigned cores;
	int *listen_fds;          /* [cores], bound; listening once every core started */
	struct peer_core **per_core; /* [cores], each set by its own core at start */
	_Atomic unsigned started; /* cores past peer_core_start */
};

struct peer_core {
	struct peer_net *net;
	struct reactor *r;
	void *arg;
	struct peer *peers;       /* [net->cfg.npeers] */
	unsigned npeers;
	struct peer_in *inbound;
	unsigned ninbound;
	unsigned nhandshaking;    /* TLS inbound ones before their hello */
	unsigned ops;             /* transport operations in flight on this core */
	bool stopping;
	uint64_t stop_deadline_us;
	uint64_t rng;

	int listen_fd;
	bool accept_armed;
	struct reactor_msg accept_msg; /* "every core started: accept" */
	struct io_op accept_op;
	struct timer accept_pause;

	uint64_t accepted, handed_off, adopted, refused;
	uint64_t refusal_log_at_us;  /* next refusal logged at warn from then */
	uint64_t refusals_quiet;     /* refusals logged at debug since the last warn */
};

/* A connection whose hello names another core, on its way there. */
struct handoff {
	struct reactor_msg msg;
	struct peer_net *net;
	int fd;
	uint64_t from_node;
	char from_text[64];
	struct sockaddr_storage from;
	struct tls_conn *tls;     /* with TLS: its state, now the target's */
	size_t rest_len;          /* plaintext decrypted after the hello */
	uint8_t rest[];
};

#define PEER_REFUSAL_LOG_US (10u * 1000000u)
#define PEER_REFUSE_FLUSH_US (1000u * 1000u) /* a refused dialler's alert: bound */

static void connect_start(struct peer *p);
static void start_batch(struct peer *p);
static void out_tls_step(struct peer *p);
static void out_lost(struct peer *p, int err);
static void in_arm_recv(struct peer_in *in);
static void in_recv_done(struct io_op *op, int res, unsigned flags);
static void in_send_done(struct io_op *op, int res, unsigned flags);
static void in_tls_progress(struct peer_in *in);
static bool in_consume(struct peer_in *in);
static void in_close(struct peer_in *in);
static void in_refuse(struct peer_in *in);
static void in_tls_flush(struct peer_in *in);
static void arm_accept(struct peer_core *pc);

static struct pool *core_pool(struct peer_core *pc)
{
	return &pc->r->pool;
}

static uint64_t rng_next(struct peer_core *pc)
{
	uint64_t x = pc->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	pc->rng = x;
	return x;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void addr_text(const struct sockaddr *sa, char *buf, size_t len)
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
 * Logs a refused inbound connection: the first at warn, then at most one
 * warning per PEER_REFUSAL_LOG_US per core (a misconfigured node redials
 * every second from every core), counting the quiet ones.
 */
static void log_refusal(struct peer_core *pc, const char *from, const char *why)
{
	pc->refused++;
	if (pc->r->now_us < pc->refusal_log_at_us) {
		pc->refusals_quiet++;
		log_debug("peer connection from %s refused: %s", from, why);
		return;
	}
	if (pc->refusals_quiet)
		log_warn("peer connection from %s refused: %s (%" PRIu64
			 " more refused in the last %u s)", from, why, pc->refusals_quiet,
			 PEER_REFUSAL_LOG_US / 1000000u);
	else
		log_warn("peer connection from %s refused: %s", from, why);
	pc->refusals_quiet = 0;
	pc->refusal_log_at_us = pc->r->now_us + PEER_REFUSAL_LOG_US;
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

static struct peer_frame *queue_pop(struct frame_queue *q)
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

	while ((f = queue_pop(q)))
		pool_free(core_pool(pc), f);
}

/* Drops the oldest bulk frames until `incoming` more bytes fit the bound. */
static void bulk_make_room(struct peer *p, size_t incoming)
{
	struct peer_core *pc = p->pc;

	while (p->bulk.head && p->bulk.bytes + incoming > pc->net->cfg.bulk_limit) {
		struct peer_frame *f = queue_pop(&p->bulk);

		p->stats.dropped_frames++;
		p->stats.dropped_bytes += f->wire_len;
		pool_free(core_pool(pc), f);
	}
}

static struct peer *find_peer(struct peer_core *pc, uint64_t node)
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
	p = find_peer(pc, to);
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
	if (!find_peer(pc, to))
		return -ENOENT;
	payload = peer_frame_reserve(pc, len);
	if (!payload)
		return -ENOMEM;
	if (len)
		memcpy(payload, data, len);
	return peer_send_reserved(pc, to, cls, payload, len);
}

/* -- outbound -- */

static void submit_op(struct peer *p, struct io_uring_sqe *sqe, struct io_op *op)
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
		connect_start(p);
}

static void schedule_reconnect(struct peer *p)
{
	struct peer_core *pc = p->pc;
	const struct peer_config *cfg = &pc->net->cfg;
	uint64_t delay = p->backoff_us;
	uint64_t jittered;

	/* "Equal jitter": half fixed, half random, so cores and nodes that
	 * lost a peer together do not all dial it again in the same instant. */
	jittered = delay / 2 + rng_next(pc) % (delay / 2 + 1);
	p->backoff_us = delay * 2 > cfg->backoff_max_us ? cfg->backoff_max_us : delay * 2;
	p->state = OUT_BACKOFF;
	reactor_timer_arm(pc->r, &p->timer, jittered, backoff_fired, p);
}

/* CLOSING with nothing in flight: close, give the unsent back to the queues. */
static void out_maybe_closed(struct peer *p)
{
	struct peer_core *pc = p->pc;
	unsigned i;

	if (p->state != OUT_CLOSING || p->ops)
		return;
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

/* The connection failed or broke: stop everything on it. */
static void out_lost(struct peer *p, int err)
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
	if (p->fd >= 0)
		shutdown(p->fd, SHUT_RDWR); /* wakes the send and the probe */
	out_maybe_closed(p);
}

static void connect_timeout_fired(struct timer *t, void *arg)
{
	struct peer *p = arg;

	if (p->state == OUT_HANDSHAKE)
		snprintf(p->why, sizeof p->why, "TLS handshake not done within %u ms",
			 p->pc->net->cfg.hello_timeout_us / 1000);
	if (p->state == OUT_CONNECTING || p->state == OUT_HANDSHAKE)
		out_lost(p, -ETIMEDOUT);
}

/* TLS: what the server sent on our connection (see out_tls_step). */
static void tls_received(struct peer *p, int res)
{
	uint8_t scratch[64];
	ssize_t n;

	if (p->state != OUT_HANDSHAKE && p->state != OUT_UP) {
		out_maybe_closed(p);
		return;
	}
	if (res <= 0) {
		out_lost(p, res < 0 ? res : 0);
		out_maybe_closed(p);
		return;
	}
	tls_conn_received(p->tls, (size_t)res);
	if (p->state == OUT_UP) {
		n = tls_conn_read(p->tls, scratch, sizeof scratch);
		if (n != TLS_WANT) {
			if (n == TLS_FAILED)
				snprintf(p->why, sizeof p->why, "TLS: %s",
					 tls_conn_error(p->tls));
			out_lost(p, n == TLS_CLOSED ? 0 : -EPROTO);
			out_maybe_closed(p);
			return;
		}
	}
	out_tls_step(p);
}

static void probe_done(struct io_op *op, int res, unsigned flags)
{
	struct peer *p = op->data;

	p->probing = false;
	op_done(p);
	if (p->tls) {
		tls_received(p, res);
		return;
	}
	/* EOF, an error, or bytes where none may come: the connection is over. */
	out_lost(p, res < 0 ? res : res == 0 ? 0 : -EPROTO);
	out_maybe_closed(p);
}

static void arm_probe(struct peer *p)
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
	submit_op(p, sqe, &p->probe_op);
	p->probing = true;
}

/* Connected (and with TLS, the server verified as the node dialled): the
 * hello goes first, then the queues. */
static void out_up(struct peer *p)
{
	struct peer_core *pc = p->pc;
	struct peer_frame *hello;
	int n;

	hello = frame_alloc(pc, PEER_HELLO_MAX);
	n = hello ? pc->net->cfg.cb.hello_make(pc->arg, p->node->id, hello->wire + 4,
						PEER_HELLO_MAX) : -ENOMEM;
	if (n < 0 || n > PEER_HELLO_MAX) {
		pool_free(core_pool(pc), hello);
		p->state = OUT_UP; /* so that out_lost closes it */
		p->up_since_us = pc->r->now_us;
		out_lost(p, n < 0 ? n : -EMSGSIZE);
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
	arm_probe(p);
	start_batch(p);
}

/*
 * TLS: drives the handshake, sends what OpenSSL has for the server, keeps
 * a receive armed. On UP, start_batch does the sending.
 */
static void out_tls_step(struct peer *p)
{
	struct peer_core *pc = p->pc;
	const uint8_t *data;
	size_t len;
	int rv;

	if (p->state == OUT_HANDSHAKE) {
		char err[160];

		rv = tls_conn_handshake(p->tls);
		if (rv == TLS_FAILED) {
			snprintf(p->why, sizeof p->why, "TLS handshake: %s", tls_conn_error(p->tls));
			out_lost(p, -EPROTO);
			return;
		}
		if (rv == 1) {
			/* The chain was verified; is it the node we dialled? */
			if (peer_tls_check(p->tls, p->node->id, err, sizeof err) != 0) {
				snprintf(p->why, sizeof p->why, "refused: %s", err);
				out_lost(p, -EPERM);
				return;
			}
			reactor_timer_cancel(pc->r, &p->timer);
			out_up(p);
			return;
		}
		if (!p->sending && (len = tls_conn_send_data(p->tls, &data)) > 0) {
			struct io_uring_sqe *sqe = io_ring_get_sqe(&pc->r->io);

			io_uring_prep_send(sqe, p->fd, data, len, MSG_NOSIGNAL);
			submit_op(p, sqe, &p->send_op);
			p->sending = true;
		}
		arm_probe(p);
		return;
	}
	if (p->state == OUT_UP) {
		start_batch(p);
		arm_probe(p);
	}
}

/* TLS, inside the handshake: the server must be the node dialled (a
 * refusal is an alert to it, and the reason in our log line). */
static int out_cert_check(void *arg, X509 *cert, char *why, size_t len)
{
	struct peer *p = arg;

	return peer_tls_cert_is(cert, p->node->id, why, len);
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
		out_maybe_closed(p);
		return;
	}
	if (res < 0) {
		out_lost(p, res == -ECANCELED ? -ETIMEDOUT : res);
		return;
	}
	if (!cfg->tls) {
		out_up(p);
		return;
	}
	/* Connection set-up, not the frame path: the TLS state is malloc'd. */
	p->tls = tls_conn_dial(cfg->tls);
	if (!p->tls) {
		out_lost(p, -ENOMEM);
		return;
	}
	tls_conn_set_check(p->tls, out_cert_check, p);
	p->state = OUT_HANDSHAKE;
	reactor_timer_arm(pc->r, &p->timer, cfg->hello_timeout_us, connect_timeout_fired, p);
	out_tls_step(p);
}

static void connect_start(struct peer *p)
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
	submit_op(p, sqe, &p->connect_op);
	p->connecting = true;
	p->state = OUT_CONNECTING;
	reactor_timer_arm(pc->r, &p->timer, cfg->connect_timeout_us,
			  connect_timeout_fired, p);
	return;

fail:
	rv = -errno;
	p->state = OUT_CONNECTING; /* so that out_lost logs and backs off */
	out_lost(p, rv);
}

/*
 * TLS: OpenSSL takes frames (the hello first, control ahead of bulk) until
 * its outgoing buffer is full, one record each; one SEND carries out what
 * it holds. A frame is freed once OpenSSL took all of it.
 */
static void start_batch_tls(struct peer *p)
{
	struct peer_core *pc = p->pc;
	struct io_uring_sqe *sqe;
	const uint8_t *data;
	size_t len;

	for (;;) {
		ssize_t n;

		if (!p->tx) {
			if (p->hello) {
				p->tx = p->hello;
				p->hello = NULL;
			} else if (!(p->tx = queue_pop(&p->control)) &&
				   !(p->tx = queue_pop(&p->bulk))) {
				break;
			}
			p->tx_off = 0;
		}
		n = tls_conn_write(p->tls, p->tx->wire + p->tx_off, p->tx->wire_len - p->tx_off);
		if (n == TLS_WANT)
			break;
		if (n < 0) {
			snprintf(p->why, sizeof p->why, "TLS: %s", tls_conn_error(p->tls));
			out_lost(p, -EPROTO);
			return;
		}
		p->tx_off += (size_t)n;
		if (p->tx_off == p->tx->wire_len) {
			p->stats.frames_sent++;
			p->stats.bytes_sent += p->tx->wire_len;
			pool_free(core_pool(pc), p->tx);
			p->tx = NULL;
		}
	}
	len = tls_conn_send_data(p->tls, &data);
	if (len == 0)
		return;
	sqe = io_ring_get_sqe(&pc->r->io);
	io_uring_prep_send(sqe, p->fd, data, len, MSG_NOSIGNAL);
	submit_op(p, sqe, &p->send_op);
	p->sending = true;
}

/* Sends the hello (first on a new connection), then control frames ahead
 * of bulk ones, up to PEER_BATCH_MAX frames in one SENDMSG. */
static void start_batch(struct peer *p)
{
	struct io_uring_sqe *sqe;
	unsigned n = 0;

	if (p->state != OUT_UP || p->sending)
		return;
	if (p->tls) {
		start_batch_tls(p);
		return;
	}
	if (p->hello) {
		p->batch[n++] = p->hello;
		p->hello = NULL;
	}
	while (n < PEER_BATCH_MAX && p->control.head)
		p->batch[n++] = queue_pop(&p->control);
	while (n < PEER_BATCH_MAX && p->bulk.head)
		p->batch[n++] = queue_pop(&p->bulk);
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
	submit_op(p, sqe, &p->send_op);
	p->sending = true;
}

static void send_done(struct io_op *op, int res, unsigned flags)
{
	struct peer *p = op->data;
	struct peer_core *pc = p->pc;
	size_t left;

	p->sending = false;
	op_done(p);
	if (res <= 0) {
		out_lost(p, res < 0 ? res : -EPIPE);
		out_maybe_closed(p);
		return;
	}
	if (p->tls) {
		tls_conn_sent(p->tls, (size_t)res);
		if (p->state != OUT_UP && p->state != OUT_HANDSHAKE)
			out_maybe_closed(p);
		else
			out_tls_step(p); /* the rest, and what waited for room */
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
		out_maybe_closed(p); /* requeues what is left of the batch */
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
		submit_op(p, sqe, &p->send_op);
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

	for (i = 0; i < pc->npeers; i++) {
		struct peer *p = &pc->peers[i];

		if (p->state == OUT_UP && !p->sending &&
		    (p->control.head || p->bulk.head || p->tx))
			start_batch(p);
	}
}

/* -- inbound -- */

static int grow(struct pool *pool, uint8_t **buf, size_t *cap, size_t keep, size_t need)
{
	size_t want = *cap ? *cap : 4096;
	uint8_t *nbuf;

	if (need <= *cap)
		return 0;
	while (want < need)
		want *= 2;
	nbuf = pool_alloc_large(pool, want);
	if (!nbuf)
		return -ENOMEM;
	if (keep)
		memcpy(nbuf, *buf, keep);
	pool_free(pool, *buf);
	*buf = nbuf;
	*cap = pool_block_size(nbuf);
	return 0;
}

static void in_free(struct peer_in *in)
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
static void in_close(struct peer_in *in)
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
	in_free(in);
}

static void refuse_timeout_fired(struct timer *t, void *arg)
{
	in_close(arg);
}

/*
 * Closes a refused connection. With TLS, what OpenSSL queued for the
 * dialler goes out through the ring first: the alert of a failed handshake
 * (its reason: unknown CA, certificate expired, bad certificate), or the
 * close_notify the caller queued; at most PEER_REFUSE_FLUSH_US is spent on
 * it, and nothing the dialler sends meanwhile is read.
 */
static void in_refuse(struct peer_in *in)
{
	const uint8_t *data;

	if (!in->tls || in->closing || in->refusing ||
	    (!in->sending && tls_conn_send_data(in->tls, &data) == 0)) {
		in_close(in);
		return;
	}
	in->refusing = true;
	in_tls_flush(in);
	reactor_timer_cancel(in->pc->r, &in->hello_timer);
	reactor_timer_arm(in->pc->r, &in->hello_timer, PEER_REFUSE_FLUSH_US,
			  refuse_timeout_fired, in);
}

static void hello_timeout_fired(struct timer *t, void *arg)
{
	struct peer_in *in = arg;

	log_warn("peer connection from %s: no %s within %u ms; closing", in->from_text,
		 in->stage == IN_HANDSHAKE ? "TLS handshake" : "hello",
		 in->pc->net->cfg.hello_timeout_us / 1000);
	in_close(in);
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
	in->send_op.done = in_send_done;
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
	struct peer *p = find_peer(in->pc, node);

	in->from_node = node;
	in->peer_index = p ? (int)p->index : -1;
	/* It dialled us, so it listens: our own connection to it, waiting out
	 * a backoff (it was down, or still opening its replicas), dials now
	 * rather than up to backoff_max later; what we have for it waits. */
	if (p && p->state == OUT_BACKOFF && !p->pc->stopping) {
		reactor_timer_cancel(p->pc->r, &p->timer);
		p->backoff_us = p->pc->net->cfg.backoff_min_us;
		connect_start(p);
	}
}

static void handoff_arrived(struct reactor *r, struct reactor_msg *m);

/* Passes the connection to core `target`, with its TLS state and the
 * plaintext after the hello. */
static void in_handoff(struct peer_in *in, unsigned target)
{
	struct peer_core *pc = in->pc;
	size_t rest = in->len - in->off;
	struct handoff *h = malloc(sizeof *h + rest);

	if (!h) {
		log_warn("peer connection from %s: out of memory handing it over", in->from_text);
		in_close(in);
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
	in_free(in);
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
		log_refusal(pc, in->from_text, err[0] ? err : "bad hello");
		/* After the handshake OpenSSL has no alert to send: a
		 * close_notify ends the connection cleanly. */
		if (in->tls)
			tls_conn_shutdown(in->tls);
		in_refuse(in);
		return false;
	}
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
			in_handoff(in, target);
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
			in_close(in);
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
		in_close(in);
		return;
	}
	if (in->refusing)
		return; /* its alert is still being sent: in_send_done closes */
	if (in->handoff_wait) {
		/* Received before the cancel: it goes with the TLS state. */
		if (res > 0)
			tls_conn_received(in->tls, (size_t)res);
		if (!in->sending)
			in_handoff(in, in->handoff_core);
		return;
	}
	if (res <= 0) {
		if (res < 0 && res != -ECONNRESET && res != -EPIPE)
			log_debug("peer connection from %s: recv: %s", in->from_text,
				  strerror(-res));
		in_close(in);
		return;
	}
	if (in->tls) {
		tls_conn_received(in->tls, (size_t)res);
		in_tls_progress(in);
		return;
	}
	in->len += (size_t)res;
	if (in_consume(in))
		in_arm_recv(in);
}

/* Moves buf's unread bytes to its start and grows it to the next frame's
 * size. No receive may be into buf. False: no memory, closed. */
static bool in_make_room(struct peer_in *in)
{
	if (in->off) {
		memmove(in->buf, in->buf + in->off, in->len - in->off);
		in->len -= in->off;
		in->off = 0;
	}
	if (in->want > in->cap &&
	    grow(core_pool(in->pc), &in->buf, &in->cap, in->len, in->want) != 0) {
		log_warn("peer connection from %s: no memory for a %zu-byte frame; closing",
			 in->from_text, in->want);
		in_close(in);
		return false;
	}
	return true;
}

/* TLS: sends what OpenSSL has for the dialler (handshake flights, alerts). */
static void in_tls_flush(struct peer_in *in)
{
	struct io_uring_sqe *sqe;
	const uint8_t *data;
	size_t len;

	if (in->sending || in->closing || !(len = tls_conn_send_data(in->tls, &data)))
		return;
	sqe = io_ring_get_sqe(&in->pc->r->io);
	io_uring_prep_send(sqe, in->fd, data, len, MSG_NOSIGNAL);
	io_op_attach(sqe, &in->send_op);
	in->sending = true;
	in->pc->ops++;
}

static void in_send_done(struct io_op *op, int res, unsigned flags)
{
	struct peer_in *in = op->data;

	in->sending = false;
	in->pc->ops--;
	if (in->closing || in->pc->stopping || res <= 0) {
		in_close(in);
		return;
	}
	tls_conn_sent(in->tls, (size_t)res);
	if (in->refusing) {
		in_tls_flush(in);
		if (!in->sending)
			in_close(in);
		return;
	}
	if (!in->handoff_wait)
		in_tls_progress(in);
	else if (!in->recv_armed)
		in_handoff(in, in->handoff_core);
}

/*
 * TLS: drives the handshake (its certificate's node noted once verified),
 * then decrypts into buf and acts on it as in_consume does, until OpenSSL
 * needs more ciphertext; sends what it has to send; receives again.
 */
static void in_tls_progress(struct peer_in *in)
{
	struct peer_core *pc = in->pc;
	char why[448];

	if (in->stage == IN_HANDSHAKE) {
		int rv = tls_conn_handshake(in->tls);
		X509 *cert;

		if (rv == TLS_FAILED) {
			const char *alert = tls_conn_alert_sent(in->tls);

			snprintf(why, sizeof why, "TLS handshake: %s%s%s", tls_conn_error(in->tls),
				 alert ? "; alert sent: " : "", alert ? alert : "");
			log_refusal(pc, in->from_text, why);
			in_refuse(in);
			return;
		}
		if (rv == 1) {
			char err[160] = "it showed no certificate";

			/* in_cert_check saw it in the handshake; checked again. */
			cert = tls_conn_peer_cert(in->tls);
			if (!cert || peer_tls_cert_node(cert, &in->cert_node, err, sizeof err) != 0) {
				snprintf(why, sizeof why, "TLS: %s", err);
				log_refusal(pc, in->from_text, why);
				tls_conn_shutdown(in->tls);
				in_refuse(in);
				return;
			}
			in->stage = IN_HELLO_LEN;
		}
	}
	while (in->stage != IN_HANDSHAKE) {
		ssize_t n;

		if (!in_make_room(in))
			return;
		n = tls_conn_read(in->tls, in->buf + in->len, in->cap - in->len);
		if (n == TLS_WANT)
			break;
		if (n < 0) {
			if (n == TLS_FAILED)
				log_warn("peer connection from %s (node %" PRIu64 "): TLS: %s; closing",
					 in->from_text, in->from_node, tls_conn_error(in->tls));
			in_close(in);
			return;
		}
		in->len += (size_t)n;
		if (!in_consume(in))
			return;
	}
	in_tls_flush(in);
	in_arm_recv(in);
}

/* Acts on what buf holds: false when the connection left (closed, or
 * handed to another core). */
static bool in_consume(struct peer_in *in)
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
				log_refusal(pc, in->from_text, why);
				if (in->tls)
					tls_conn_shutdown(in->tls);
				in_refuse(in);
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

static void in_arm_recv(struct peer_in *in)
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
		 * (in_tls_progress makes room, and comes back here). */
		room = tls_conn_recv_room(in->tls, &at);
		if (room == 0)
			return;
	} else if (in->stage == IN_FRAMES) {
		/* The only place the buffer moves or grows: no recv is in it. */
		if (!in_make_room(in))
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
	if (!in || grow(core_pool(pc), &in->buf, &in->cap, 0, h->rest_len) != 0) {
		log_warn("peer connection from %s: out of memory; closing", h->from_text);
		if (in) {
			in->fd = -1;
			in_free(in);
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
		in_arm_recv(in);
		return;
	}
	/* Frames decrypted with the hello, then what OpenSSL still holds. */
	if (in_deliver(in))
		in_tls_progress(in);
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

/* TLS, inside the handshake: the dialler's certificate must name one node,
 * a peer of this one (a refusal is a bad_certificate alert to it). */
static int in_cert_check(void *arg, X509 *cert, char *why, size_t len)
{
	struct peer_in *in = arg;

	if (peer_tls_cert_node(cert, &in->cert_node, why, len) != 0)
		return -1;
	if (!find_peer(in->pc, in->cert_node)) {
		snprintf(why, len, "its certificate is for node %" PRIu64 ", not a peer of this "
			 "node", in->cert_node);
		return -1;
	}
	return 0;
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
	addr_text((struct sockaddr *)&from, text, sizeof text);
	if (pc->ninbound >= PEER_MAX_INBOUND) {
		log_warn("peer connection from %s refused: %u inbound connections on core %u",
			 text, pc->ninbound, pc->r->id);
		close(fd);
		return;
	}
	/* TLS buffers are ~130 KiB a connection: strangers get few of them. */
	if (pc->net->cfg.tls && pc->nhandshaking >= PEER_MAX_HANDSHAKING) {
		log_refusal(pc, text, "too many connections handshaking");
		close(fd);
		return;
	}
	keepalive(fd);
	in = in_create(pc, fd, pc->net->cfg.tls ? IN_HANDSHAKE : IN_HELLO_LEN, &from, text);
	if (in && pc->net->cfg.tls && !(in->tls = tls_conn_new(pc->net->cfg.tls))) {
		in_free(in);
		in = NULL;
	}
	if (in && in->tls)
		tls_conn_set_check(in->tls, in_cert_check, in);
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
	in_arm_recv(in);
}

static void accept_pause_over(struct timer *t, void *arg)
{
	struct peer_core *pc = arg;

	if (!pc->stopping && !pc->accept_armed)
		arm_accept(pc);
}

static void accept_done(struct io_op *op, int res, unsigned flags)
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
		arm_accept(pc);
}

static void arm_accept(struct peer_core *pc)
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
	addr_text(addr, text, sizeof text);
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
		arm_accept(pc);
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
	pc->accept_op.done = accept_done;
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
		addr_text((const struct sockaddr *)&p->node->addr, text, sizeof text);
		snprintf(p->name, sizeof p->name, "node %" PRIu64 " (%s)", p->node->id, text);
		/* Dialled on the first pass of the loop, not from here: a start
		 * callback may have blocked for seconds (opening thousands of
		 * replicas) since the loop last read its clock, and a connect
		 * timeout armed from that stale clock fires at once. */
		p->state = OUT_BACKOFF;
		reactor_timer_arm(r, &p->timer, 0, backoff_fired, p);
	}
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
	if (pc->accept_armed) {
		struct io_uring_sqe *sqe = io_ring_get_sqe(&pc->r->io);

		io_uring_prep_cancel(sqe, &pc->accept_op, 0);
		io_uring_sqe_set_data(sqe, NULL);
	}
	for (in = pc->inbound; in; in = next) {
		next = in->next;
		in_close(in);
	}
	for (i = 0; i < pc->npeers; i++) {
		struct peer *p = &pc->peers[i];

		if (p->state == OUT_BACKOFF) {
			reactor_timer_cancel(pc->r, &p->timer);
			p->state = OUT_STOPPED;
		} else if (p->state == OUT_CONNECTING || p->state == OUT_HANDSHAKE) {
			out_lost(p, -ESHUTDOWN);
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
			out_lost(p, 0);
	}
	return pc->ops == 0;
}

void peer_core_finish(struct peer_core *pc)
{
	unsigned i;

	if (!pc)
		return;
	reactor_timer_cancel(pc->r, &pc->accept_pause);
	while (pc->inbound) {
		struct peer_in *in = pc->inbound;

		if (in->fd >= 0)
			close(in->fd);
		in->fd = -1;
		in_free(in);
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
