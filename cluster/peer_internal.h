/*
 * The peer transport's insides, shared by its three files: cluster/peer.c
 * (outbound connections, the queues, set-up and shutdown), cluster/peer_in.c
 * (inbound connections: accept, hello, hand-off to their core, frames) and
 * cluster/peer_tls_io.c (TLS driven on both sides through io/tls.h). Not
 * for other modules: cluster/peer.h is the transport's interface. Every
 * structure here belongs to one core (struct peer_core) and is touched by
 * that core's thread only; a connection changes core only inside a handoff
 * message.
 */
#ifndef RINGKV_CLUSTER_PEER_INTERNAL_H
#define RINGKV_CLUSTER_PEER_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <openssl/x509.h>

#include "cluster/peer.h"
#include "core/pool.h"
#include "core/timer.h"

struct tls_conn;

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
	char why[448];            /* TLS reason of the loss, for peer_out_lost's line */
	bool close_flush;         /* TLS: peer_out_lost sends what OpenSSL queued first */
	bool flushing;            /* TLS: closing, the alert or close_notify going out */
	unsigned cut_logged;      /* TLS: the reload whose cut of this node was logged */
	int64_t expiry_logged;    /* TLS: the notAfter whose expiry cut was logged */
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
	unsigned tls_generation;     /* the TLS reload (tls_server_generation) acted on */
	struct timer expiry_timer;   /* TLS: the sweep for expired certificates */
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
#define PEER_REFUSE_FLUSH_US (1000u * 1000u) /* a refusal's alert going out: bound */
/* After a TLS reload, each established connection is checked again at a
 * random moment within this: closures (and their reconnections) are spread
 * over it rather than all at once, and none outlives it. */
#define PEER_RELOAD_SPREAD_US (2000u * 1000u)
/* How often each core looks for connections whose other side's certificate
 * has expired since their handshake (peer_tls_io.c): the bound on how long
 * one outlives it. */
#define PEER_EXPIRY_SWEEP_US (1000u * 1000u)

static inline struct pool *core_pool(struct peer_core *pc)
{
	return &pc->r->pool;
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* peer.c: the outbound side, queues, helpers shared with the others */
void peer_addr_text(const struct sockaddr *sa, char *buf, size_t len);
void peer_log_refusal(struct peer_core *pc, const char *from, const char *why);
void peer_log_refused_by(struct peer_core *pc, const char *from, const char *why);
uint64_t peer_node_at(const struct peer_core *pc, const struct sockaddr_storage *from);
uint64_t peer_rng(struct peer_core *pc);
struct peer *peer_find(struct peer_core *pc, uint64_t node);
void peer_connect_start(struct peer *p);
void peer_submit_op(struct peer *p, struct io_uring_sqe *sqe, struct io_op *op);
void peer_out_lost(struct peer *p, int err);
void peer_out_refuse(struct peer *p, int err);
void peer_out_maybe_closed(struct peer *p);
void peer_out_up(struct peer *p);
void peer_arm_probe(struct peer *p);
void peer_start_batch(struct peer *p);
struct peer_frame *peer_queue_pop(struct frame_queue *q);
/* peer_in.c: the inbound side, accept to hello to frames */
void peer_in_close(struct peer_in *in);
void peer_in_free(struct peer_in *in);
bool peer_in_make_room(struct peer_in *in);
bool peer_in_consume(struct peer_in *in);
void peer_in_arm_recv(struct peer_in *in);
void peer_in_handoff(struct peer_in *in, unsigned target);
void peer_arm_accept(struct peer_core *pc);
void peer_accept_done(struct io_op *op, int res, unsigned flags);
/* peer_tls_io.c: TLS driven on both sides */
void peer_out_tls_received(struct peer *p, int res);
void peer_out_tls_step(struct peer *p);
bool peer_out_send_tls(struct peer *p);
int peer_out_cert_check(void *arg, X509 *cert, char *why, size_t len);
void peer_start_batch_tls(struct peer *p);
void peer_in_refuse(struct peer_in *in);
void peer_in_send_done(struct io_op *op, int res, unsigned flags);
void peer_in_tls_progress(struct peer_in *in);
int peer_in_cert_check(void *arg, X509 *cert, char *why, size_t len);
void peer_tls_reloaded(struct peer_core *pc);
void peer_in_recheck_later(struct peer_in *in);
bool peer_in_recheck(struct peer_in *in);
void peer_expiry_start(struct peer_core *pc);

#endif
