/*
 * Peer transport: node-to-node TCP on each core's io_uring ring.
 *
 * Connection model. Every core keeps ONE outbound connection to every other
 * node of the cluster and only ever sends on it; the reverse direction is the
 * other node's own outbound connection. So each direction of each core pair
 * has exactly one writer and one socket, there is no "who connects to whom"
 * race to settle when both sides dial at once, and a reader never has to
 * multiplex answers with requests. Outbound sockets are bound to this node's
 * own peer address (source port chosen by the kernel) before connecting, so
 * firewall rules and partition tests see the node's address.
 *
 * Inbound: one SO_REUSEPORT listener per core on the peer address, multishot
 * accept. The first frame of a connection is the hello, built by the owner's
 * hello_make() on the sending side and judged by hello_check() on the
 * receiving side (cluster id, node ids: the transport treats it as opaque
 * bytes). A refused hello is logged and the connection closed. The hello
 * names the target core; the accepting core (chosen by the kernel's
 * REUSEPORT hash) hands the socket to that core over the SPSC mailbox, having
 * read exactly the hello and nothing more. From then on each complete frame
 * is handed to on_frame() in place, zero copy.
 *
 * Frames: u32 little-endian payload length, then the payload (opaque here;
 * cluster/peer_msg.c gives it meaning). A length above max_frame cannot be
 * skipped safely: the connection is closed with a log line.
 *
 * Bounded memory. Frames wait in per-peer queues, one per class. PEER_BULK
 * (Raft appends, snapshot chunks) is bounded by bulk_limit bytes: queuing past
 * it drops the OLDEST bulk frames first and counts them, since Raft resends
 * what a follower missed. PEER_CONTROL (votes, heartbeats, client forwards
 * and answers) is never dropped: past control_limit peer_send() fails and the
 * caller answers its client UNAVAILABLE. Control frames overtake queued bulk
 * frames; order is kept within a class only. Frames queued while a peer is
 * down stay queued (within the bounds) and go out once it is back. Each frame
 * is one block of the core's pool: no malloc per frame in the steady state.
 *
 * Sending: everything queued for a peer during a loop pass leaves in one
 * SENDMSG per peer per pass (a reactor hook), up to PEER_BATCH_MAX frames;
 * a partial send is resumed before anything else goes.
 *
 * Mutual TLS (cfg.tls set, io/tls.h): every connection, outbound and
 * inbound, is TLS 1.3 with a certificate required and verified both ways
 * against the cluster's CA, and the certificate must name the node the
 * connection is for (cluster/peer_tls.h): an outbound one the node dialled,
 * an inbound one the node its hello claims; anything else is refused and
 * logged. OpenSSL runs on memory buffers fed by the ring, so the handshake
 * never blocks the core; hello_timeout_us bounds an inbound handshake plus
 * hello, and connect_timeout_us + hello_timeout_us an outbound one. At most
 * PEER_MAX_HANDSHAKING inbound connections per core are handshaking or
 * waiting for their hello at once (each holds ~20 KiB of TLS state while it
 * handshakes, ~130 KiB of buffers once its certificate is verified), so
 * what strangers can make a node hold is bounded. Frames are encrypted one
 * SSL_write each, straight from the queues; a frame counts as sent once
 * OpenSSL took it (as bytes in the kernel's send buffer do without TLS).
 * An inbound connection whose hello names another core goes there with its
 * TLS state and any plaintext decrypted after the hello. Refusals, by
 * either side, send the TLS alert that says why before the close. After a
 * reload of cfg.tls (tls_server_reload, SIGHUP) each core checks the
 * certificate of every established connection again against the new
 * context, at random moments within 2 s, and closes (close_notify first)
 * those that no longer verify; the others stay (cluster/peer_tls_io.c).
 *
 * Dead or slow peers never block the core: every operation is asynchronous,
 * connects time out, TCP_USER_TIMEOUT ends a connection whose data goes
 * unacknowledged, and a failed or broken connection is retried after an
 * exponential backoff with jitter (backoff_min_us doubling to backoff_max_us).
 *
 * Threading: a peer_net is shared read-only by a node's cores after start-up;
 * a peer_core belongs to one core and every call on it is made from there.
 */
#ifndef RINGKV_CLUSTER_PEER_H
#define RINGKV_CLUSTER_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/reactor.h"

struct tls_server;

#define PEER_MAX_PEERS 64                  /* other nodes a node talks to */
#define PEER_BATCH_MAX 256                 /* frames per SENDMSG */
#define PEER_HELLO_MAX 4096                /* largest hello accepted */
#define PEER_DEFAULT_MAX_FRAME (8u << 20)
#define PEER_DEFAULT_BULK_LIMIT (16u << 20)
#define PEER_DEFAULT_CONTROL_LIMIT (64u << 20)
#define PEER_DEFAULT_BACKOFF_MIN_US 20000u     /* 20 ms */
#define PEER_DEFAULT_BACKOFF_MAX_US 1000000u   /* 1 s */
#define PEER_DEFAULT_CONNECT_TIMEOUT_US 1000000u
#define PEER_DEFAULT_HELLO_TIMEOUT_US 5000000u
#define PEER_DEFAULT_USER_TIMEOUT_MS 5000u
#define PEER_MAX_INBOUND 1024              /* inbound connections per core */
#define PEER_MAX_HANDSHAKING 64            /* TLS inbound ones before their hello */

enum peer_class {
	PEER_CONTROL, /* votes, heartbeats, client forwards and answers: never dropped */
	PEER_BULK,    /* Raft appends, snapshot chunks: oldest dropped when over the bound */
};

/*
 * The owner's side of the handshake, called on the core concerned with the
 * `arg` given to peer_core_start().
 *
 * hello_make: writes the hello for a new connection to node `to_node` into
 * buf[0, cap) and returns its length, or a negative value to postpone the
 * connection (retried after the backoff). It chooses the target core.
 *
 * hello_check: judges the first frame of an inbound connection from address
 * `from`. 0 and *from_node, *target_core (< this node's core count) to
 * accept; anything else refuses, with the reason in err[0, errlen).
 *
 * on_frame: one complete frame from `from_node`; `data` is valid only during
 * the call. It may queue frames with peer_send().
 */
struct peer_callbacks {
	int (*hello_make)(void *arg, uint64_t to_node, uint8_t *buf, size_t cap);
	int (*hello_check)(void *arg, const uint8_t *hello, size_t len,
			   const struct sockaddr *from, uint64_t *from_node,
			   unsigned *target_core, char *err, size_t errlen);
	void (*on_frame)(void *arg, uint64_t from_node, const uint8_t *data, size_t len);
};

struct peer_node {
	uint64_t id;                        /* node id, >= 1 */
	struct sockaddr_storage addr;       /* its peer address (port included) */
	socklen_t addrlen;
};

struct peer_config {
	uint64_t self_id;                   /* this node */
	struct sockaddr_storage self_addr;  /* our peer address; outbound binds its IP */
	socklen_t self_addrlen;
	struct peer_node peers[PEER_MAX_PEERS]; /* every OTHER node */
	unsigned npeers;
	const int *listen_fds;              /* [cores] from peer_listen(); taken over */
	struct tls_server *tls;             /* peers' mutual TLS context, or NULL:
					     * plaintext; not owned */
	struct peer_callbacks cb;
	/* 0 picks the PEER_DEFAULT_* value. */
	uint32_t max_frame;                 /* largest payload sent or received */
	size_t bulk_limit;                  /* queued bulk bytes per peer per core */
	size_t control_limit;               /* queued control bytes per peer per core */
	uint32_t backoff_min_us;
	uint32_t backoff_max_us;
	uint32_t connect_timeout_us;
	uint32_t hello_timeout_us;          /* inbound: first frame must arrive by then */
	uint32_t user_timeout_ms;           /* TCP_USER_TIMEOUT of outbound sockets */
};

struct peer_stats {
	uint64_t node_id;
	bool connected;                     /* our outbound connection is up */
	uint64_t connected_since_us;        /* reactor clock when it came up, else 0 */
	uint64_t bytes_sent, frames_sent;   /* on our outbound connections (hello included) */
	uint64_t bytes_received, frames_received; /* on inbound connections from it */
	uint64_t queued_bytes, queued_frames;     /* waiting, both classes */
	uint64_t dropped_frames, dropped_bytes;   /* bulk frames dropped by the bound */
	uint64_t refused_frames;            /* control frames refused by the bound */
	uint64_t connects;                  /* connections established */
	uint64_t reconnects;                /* attempts after a failure or a loss */
	int last_error;                     /* negative errno of the last failure, 0 */
};

struct peer_net;
struct peer_core;

/*
 * Binds `count` listeners on `addr` with SO_REUSEPORT (port 0: a free port,
 * the same one for all). Fills fds[0, count) and *port. 0 or a negative errno
 * with the reason in err. Blocking: call before the reactors start. They
 * listen only once every core of the node has passed peer_core_start (its
 * replicas open): until then a peer's connect is refused, and it backs off.
 */
int peer_listen(const struct sockaddr *addr, socklen_t addrlen, unsigned count,
		int *fds, uint16_t *port, char *err, size_t errlen);

/*
 * The node-wide part, shared by `cores` cores: copies `cfg` (and takes over
 * its listeners, closed by peer_net_destroy even on failure). Call before the
 * reactors start. 0 or a negative errno with the reason in err.
 */
int peer_net_create(struct peer_net **out, const struct peer_config *cfg,
		    unsigned cores, char *err, size_t errlen);

/* After the reactors have been joined. */
void peer_net_destroy(struct peer_net *n);

/*
 * From a core's start callback: sets up this core's transport, registers its
 * send hook; it connects to its peers on the first pass of its loop. The
 * last core of the node to call it makes the listeners listen and every
 * core accept. `arg` is passed to the callbacks. 0 or a negative errno with
 * the reason in err.
 */
int peer_core_start(struct peer_net *n, struct reactor *r, void *arg,
		    struct peer_core **out, char *err, size_t errlen);

/*
 * From the core's stop callback: stops accepting, connecting and reading;
 * what is queued is still sent to connected peers until peer_core_quiescent
 * says done (everything sent, or a grace of one backoff_max).
 */
void peer_core_stop(struct peer_core *pc);

/* From the quiescent callback: true once no operation of this core's
 * transport is in flight. */
bool peer_core_quiescent(struct peer_core *pc);

/* From the finish callback: closes every socket and frees everything. */
void peer_core_finish(struct peer_core *pc);

/*
 * Queues one frame (the payload; the transport adds the length) for node
 * `to`. Copies `data`. Returns 0, or:
 *   -ENOENT   `to` is not a peer;
 *   -EMSGSIZE len exceeds max_frame, or a bulk frame exceeds bulk_limit;
 *   -ENOBUFS  a control frame would pass control_limit (nothing queued);
 *   -ENOMEM   the pool is out of memory;
 *   -ESHUTDOWN the core is stopping.
 * A bulk frame may evict older bulk frames to fit (counted as dropped).
 */
int peer_send(struct peer_core *pc, uint64_t to, enum peer_class cls,
	      const void *data, size_t len);

/*
 * Encoding in place, without peer_send's copy: a payload buffer of `len`
 * bytes (the most the frame will need), or NULL when len exceeds max_frame
 * or the pool is out of memory. Fill it, then either send it with
 * peer_send_reserved() — which takes the buffer back whatever it returns, with
 * peer_send's return codes; `len` there is the final size, at most the
 * reserved one — or give it back with peer_frame_release().
 */
void *peer_frame_reserve(struct peer_core *pc, size_t len);
int peer_send_reserved(struct peer_core *pc, uint64_t to, enum peer_class cls,
		       void *payload, size_t len);
void peer_frame_release(struct peer_core *pc, void *payload);

/* Number of peers (index order = cfg.peers order). */
unsigned peer_core_count(const struct peer_core *pc);

/* Whether this core's outbound connection to `node` is up (no copy of the
 * counters: asked per forwarded request and per wiped-node ask). */
bool peer_core_connected(const struct peer_core *pc, uint64_t node);

/* Copies peer `index`'s counters (this core's share) into *out. */
void peer_core_stats(const struct peer_core *pc, unsigned index, struct peer_stats *out);

/* This core's inbound side. */
struct peer_core_counters {
	uint64_t accepted;        /* connections accepted by this core's listener */
	uint64_t handed_off;      /* of which passed to the core their hello named */
	uint64_t adopted;         /* taken over from other cores */
	uint64_t refused;         /* bad or foreign hellos */
	uint64_t inbound;         /* inbound connections open now */
};
void peer_core_counters(const struct peer_core *pc, struct peer_core_counters *out);

#endif
