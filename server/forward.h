/*
 * Forwarding: a request for a shard whose leader is on another node goes
 * there over the peer transport and its answer comes back to the client
 * transparently (docs/cluster/forwarding.md has the whole path).
 *
 * Per core, a bounded table of forwards in flight (FORWARD_MAX_INFLIGHT
 * slots allocated at start-up: nothing is allocated per request), each with
 * a timer. A forward's id names the core and the slot (and a generation, so
 * a late answer for a reused slot is dropped): an answer that arrives on
 * another core of this node crosses to the slot's core over the SPSC rings.
 * Requests forwarded in from other nodes are executed as if a client of
 * the receiving core had sent them (kv_dispatch) and answered from there.
 *
 * Statuses this adds (see docs/cluster/forwarding.md for retry safety):
 *   UNKNOWN            a forwarded write whose answer did not come back in
 *                      time (it may have been applied);
 *   UNAVAILABLE        a forwarded read without an answer in time; no
 *                      leader known; hop limit reached; the peer's send
 *                      queue full; the node stopping (not applied);
 *   RESOURCE_EXHAUSTED too many forwards in flight on this core (not
 *                      applied);
 *   NOT_LEADER         KV_NO_FORWARD requests, with req->leader_hint.
 */
#ifndef RINGKV_SERVER_FORWARD_H
#define RINGKV_SERVER_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

struct node_core;
struct kv_req;
struct replica;

/* Node-to-node forwards one request may take: client node -> a replica
 * holder -> its leader -> a leader elected meanwhile. */
#define FORWARD_MAX_HOPS 3
/* Forwards in flight from one core; past it RESOURCE_EXHAUSTED. */
#define FORWARD_MAX_INFLIGHT 4096u
/* Requests forwarded in, executing on one core; past it RESOURCE_EXHAUSTED. */
#define FORWARD_MAX_INBOUND 16384u

struct forward_stats {
	uint64_t sent;            /* forwards sent */
	uint64_t answered;        /* their answers received */
	uint64_t timeouts;        /* answered UNKNOWN/UNAVAILABLE at the timeout */
	uint64_t lost;            /* answered so at once: the destination's
				   * connection went down first */
	uint64_t refused;         /* not sent: bound, queue full, hops, no leader */
	uint64_t held;            /* waits for a route (no leader known yet, the
				   * leader's node not connected yet) */
	uint64_t inbound;         /* forwarded in and executed here */
	uint64_t inbound_refused; /* forwarded in, refused (bound, bad bytes) */
	uint64_t late;            /* answers for a forward already answered */
	uint64_t reply_errors;    /* answers that could not be sent back */
};

/*
 * From the core's start callback, after cluster_core_start: allocates the
 * core's forwarding table and registers the frame handler. `timeout_ms` is
 * how long a first-hop forward waits for its answer (later hops wait less,
 * so the inner timeout answers first). 0 or -ENOMEM.
 */
int forward_core_start(struct node_core *c, uint32_t timeout_ms);

/* From the stop callback: new forwards are refused (UNAVAILABLE); the ones
 * in flight wait at most one more second for their answers. */
void forward_core_stop(struct node_core *c);

/* From the finish callback: frees the table (the loop has ended). */
void forward_core_finish(struct node_core *c);

/*
 * A request this core cannot execute itself: `rep` is the shard's replica
 * here, which does not lead (or could not serve: its leadership was lost
 * before the request was answered), or NULL when this node holds no replica
 * of req->shard. Depending on req->flags and what is known, the request is
 * answered NOT_LEADER with a hint (KV_NO_FORWARD), UNAVAILABLE or
 * RESOURCE_EXHAUSTED, or forwarded to the leader's node (or, with no
 * replica here, to a node that holds one). Either way it ends in
 * kv_answer_home, once.
 */
void forward_route(struct node_core *c, struct kv_req *req, struct replica *rep);

/* The core's counters. */
void forward_core_stats(const struct node_core *c, struct forward_stats *out);

#endif
