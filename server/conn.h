/*
 * A client connection of the native protocol, owned by the core that
 * accepted it. One receive is armed at a time. On a plaintext port it is
 * a multishot receive into the core's provided buffers (io/ring.h): it
 * stays armed across requests, each completion's bytes are copied to the
 * end of the connection's receive buffer and the provided buffer goes
 * back to the kernel at once, so no connection holds one and a partial
 * frame simply waits in the receive buffer for the rest. When the kernel
 * runs out of provided buffers the receive ends with ENOBUFS and is armed
 * again; when the connection pauses (below) it is cancelled, and what
 * arrives before the cancel takes effect (a completion or two) is kept.
 * Without provided buffers (an old kernel, RINGKV_RECV_BUFFERS=0), on TLS
 * connections and before authentication (its small receive buffer) one
 * plain recv is in flight at a time, straight into the receive buffer. Complete frames are decoded in place. Answers
 * are encoded into an output buffer and sent once per loop iteration (one
 * send for every answer produced in that iteration).
 *
 * Back-pressure: the connection stops reading while it has max_inflight
 * requests unanswered or more than CONN_OUTPUT_HIGH bytes of answers held
 * (unsent output plus large values fetched for it), and resumes when both
 * drop.
 *
 * Memory bound: a value larger than a request's first answer room is
 * fetched again with room for it (kv.h); that room is charged to the
 * connection, and a fetch that would take the connection's held answers
 * past CONN_REPLY_MAX is answered RESOURCE_EXHAUSTED instead. So a client
 * that pipelines large GETs (or one huge MGET) and never reads holds at
 * most about CONN_REPLY_MAX + CONN_OUTPUT_HIGH + max_inflight small
 * answers, however much it asks for. A frame whose length prefix exceeds the limit cannot be
 * skipped safely, so it is answered TOO_LARGE and the connection closes; every
 * other bad frame is answered and the stream goes on.
 *
 * Lifetime: closing stops I/O at once, but the struct lives until its last
 * forwarded request has come back.
 *
 * TLS (--tls-cert, io/tls.h): the ring receives ciphertext into the
 * connection's TLS state instead of rbuf, and sends ciphertext out of it
 * instead of sbuf; OpenSSL sits between, decrypting into rbuf (so the
 * parsers see plaintext exactly as on a plaintext port) and encrypting sbuf.
 * sbuf's [ssent, slen) is then plaintext not yet encrypted. The handshake
 * runs on the same path; a client that has not finished it within
 * --tls-handshake-timeout is closed. Over --max-connections, a TLS client is
 * closed without a reason (there is no channel to give it one yet).
 *
 * Authentication (--users, server/auth.h): a connection starts
 * unauthenticated, with a receive buffer of a few KiB that may not grow past
 * AUTH_PREAUTH_FRAME (a larger frame or command closes it), a handful of
 * requests and --auth-timeout to authenticate. While a password is being
 * verified, decoding holds (the next request waits for the outcome).
 */
#ifndef RINGKV_SERVER_CONN_H
#define RINGKV_SERVER_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/timer.h"
#include "io/ring.h"
#include "server/auth.h"

#define CONN_OUTPUT_HIGH (4u << 20)
#define CONN_REPLY_MAX (64u << 20)
/* Connections past --max-connections that are being told so before they
 * close; further ones are closed at once. Per core. */
#define CONN_REFUSING_MAX 64u

struct node_core;
struct tls_conn;

struct conn {
	struct node_core *core;
	int fd;
	uint64_t serial;            /* accept order on this core, for logs */

	uint8_t *rbuf;              /* received bytes; [roff, rlen) not yet decoded */
	size_t roff;
	size_t rlen;
	size_t rcap;
	size_t rwant;               /* bytes from roff the next frame needs, 0 = unknown */
	uint8_t *obuf;              /* answers gathering */
	size_t olen;
	size_t ocap;
	uint8_t *sbuf;              /* answers being sent */
	size_t slen;
	size_t scap;
	size_t ssent;

	struct io_op recv_op;
	struct io_op send_op;
	struct io_op close_op;
	bool recv_armed;
	bool recv_multi;            /* the armed receive is multishot */
	bool recv_cancel;           /* ... and its cancel is on the way */
	bool sock_nonempty;     /* the last receive left data in the socket */
	bool send_armed;
	bool closing;               /* no more reads; close once output is sent */
	bool dead;                  /* peer gone or broken: drop output, close now */
	bool draining;              /* after the last answer: shut our side, read
				     * and discard until the peer closes, so the
				     * answer is not lost to a reset */
	bool shut_wr;
	bool refused;               /* over the connection limit: told so, closing */
	bool eof;                   /* the peer shut its write side: decode what
				     * it sent, answer it all, then close */
	bool held;                  /* decoding stopped with a whole request
				     * still in the buffer (it waits for this
				     * connection's writes, or back-pressure) */
	bool in_process;            /* decoding: completions must not re-enter */
	bool resp;                  /* speaks RESP2 instead of the native protocol */
	struct redis_conn *redis;   /* RESP state */
	struct tls_conn *tls;       /* TLS state, NULL on a plaintext port */
	struct timer tls_timer;     /* closes a client still handshaking */
	bool tls_busy;              /* in TLS input: nothing may free the conn */
	bool fd_closed;
	bool in_dirty;
	uint64_t answer_bytes;      /* rooms of large values fetched for this
				     * connection and not yet freed */
	uint32_t inflight;          /* requests not yet answered */
	uint32_t writes_inflight;   /* of which writes: a later read of this
				     * connection waits for them, so a client
				     * reads its own pipelined writes */
	uint32_t reads_inflight;    /* of which reads: a later write waits for
				     * them, so a pipelined read never sees a
				     * write sent after it (a forwarded read
				     * may wait for its read index while the
				     * write commits) */

	struct conn_auth auth;      /* who it is (--users, server/auth.h) */

	struct conn *prev, *next;   /* core's connection list */
	struct conn *next_dirty;
};

/* Takes over accepted socket `fd` (RESP2 when `resp`) and starts reading. */
void conn_accept(struct node_core *c, int fd, bool resp);

/*
 * Room for `need` more bytes of output: a pointer to write them at, or NULL
 * (out of memory: the connection is then closed). Follow with
 * conn_out_commit() of what was written.
 */
uint8_t *conn_out_reserve(struct conn *conn, size_t need);
void conn_out_commit(struct conn *conn, size_t written);

/*
 * Whether a value of `need` bytes may be fetched for `conn` now: its held
 * answers (large values in flight or waiting for their turn, plus unsent
 * output) stay within CONN_REPLY_MAX. False means the request gets
 * RESOURCE_EXHAUSTED (the client asks for more than it reads).
 */
bool conn_answer_room(const struct conn *conn, size_t need);

/* Closes at once, dropping unsent output (a client past its auth timeout).
 * The connection may be gone when this returns. */
void conn_drop(struct conn *conn);

/* Stop reading; close once everything queued is sent (QUIT, protocol error). */
void conn_close_after_reply(struct conn *conn);

/* Too much in flight or unsent to take more requests now. */
bool conn_is_paused(const struct conn *conn);

/*
 * Queues an answer on the connection (dropped if it is closing because the
 * peer went away). `error` may be NULL.
 */
void conn_reply(struct conn *conn, uint64_t id, int status,
		const void *value, size_t value_len, const char *error);
/* The same with Response.leader_hint (NOT_LEADER answers; 0: none). */
void conn_reply_hint(struct conn *conn, uint64_t id, int status, const void *value,
		     size_t value_len, const char *error, uint64_t leader_hint);

/* Queues an encoded `resp` (any Response: cluster or backup answers). */
struct frame_response;
void conn_reply_response(struct conn *conn, const struct frame_response *resp);

/* A request counted in conn->inflight got its answer (queued or dropped). */
void conn_request_done(struct conn *conn);

/*
 * After answers were queued outside the decoding loop: resumes decoding if
 * the connection had paused, and closes/frees it if it is finished. The
 * connection may be gone when this returns.
 */
void conn_poke(struct conn *conn);

/* Per-iteration hook: sends what dirty connections gathered. */
void conn_flush_all(struct node_core *c);

/* Stops reading from every connection (shutdown). */
void conn_stop_reading_all(struct node_core *c);

/* True when no connection has unsent output. */
bool conn_all_flushed(const struct node_core *c);

/* Closes every connection and frees those with nothing in flight. */
void conn_close_all(struct node_core *c);

#endif
