/*
 * The node: what ringkvd's cores share read-only after start-up (the
 * configuration and the shard -> core table) and each core's own state.
 *
 * Shards are fixed when the data directory is created (one per core by
 * default) and assigned to cores round-robin at every start, so a node
 * restarted with another --cores still finds every key's shard.
 */
#ifndef RINGKV_SERVER_NODE_H
#define RINGKV_SERVER_NODE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/reactor.h"
#include "proto/frame.h"
#include "server/node_metrics.h"

struct shard;
struct block_cache;
struct conn;
struct admin;
struct cluster_node;
struct cluster_core;
struct peer_net;
struct replica;
struct forward_core;
struct tls_server;
struct users;
struct audit;

/* node->shard_core of a shard this node holds no replica of. */
#define NODE_NO_CORE UINT16_MAX

struct node {
	struct config cfg;
	struct frame_limits limits;
	unsigned cores;
	unsigned shards;
	unsigned slot_function;   /* shard/route.h's, recorded in CLUSTER */
	uint16_t *shard_core;     /* [shards]: the core holding this node's replica
				   * of each shard, or NODE_NO_CORE */
	struct cluster_node *cluster; /* the replication engine's node */
	struct peer_net *net;     /* peer transport; NULL for a one-node cluster */
	int *listen_fds;          /* [cores]: SO_REUSEPORT listener per core */
	int *resp_fds;            /* [cores]: RESP listeners, or NULL when off */
	uint16_t port;            /* the bound client port */
	uint16_t resp_port;       /* the bound RESP port, 0 when off */
	struct metrics *metrics;  /* the registry (server/node_metrics.h) */
	const struct node_metric_ids *metric_ids;
	struct admin *admin;      /* the admin HTTP port on core 0, or NULL */
	struct tls_server *tls;   /* TLS on the client ports (io/tls.h), or NULL */
	struct tls_server *peer_tls; /* mutual TLS between peers, or NULL */
	uint64_t self_id;         /* this node's id: what its peer certificate names */
	struct users *users;      /* --users (server/users.h): clients must
				   * authenticate; NULL = no authentication */
	int audit_fd;             /* --audit-log, opened for appending; -1 = the log */
	_Atomic uint64_t config_stamp; /* CONFIG SETs taken (server/redis_config.c):
					* their order on every core */
};

struct node_stats {
	uint64_t requests;        /* client requests decoded */
	uint64_t forwarded;       /* sent to another core's shard */
	uint64_t served_for_peers;/* executed here for another core */
	uint64_t bad_frames;      /* undecodable or over a limit */
	uint64_t connections;     /* accepted since start */
	uint64_t refused;         /* of which refused over --max-connections */
	uint64_t native_ops[NODE_METRICS_OPS]; /* native requests by FRAME_OP_* (0 = invalid) */
	uint64_t replies[NODE_METRICS_STATUSES]; /* native answers by ringkv_Status */
	uint64_t resp_ops[NODE_METRICS_RESP_OPS]; /* RESP requests by command */
	uint64_t resp_errors;     /* RESP error replies */
	uint64_t bytes_in;        /* received from clients */
	uint64_t bytes_out;       /* sent to clients */
};

/* One per reactor, reachable as reactor->user. Touched only by its core. */
struct node_core {
	struct node *node;
	struct reactor *reactor;
	struct shard **shards;    /* [node->shards]; NULL where another core owns it */
	struct replica **replicas;/* [node->shards]: the Raft group of each shard above */
	struct cluster_core *cluster; /* this core's replicas, log and peers */
	struct shard **owned;     /* the non-NULL entries, packed */
	unsigned owned_count;
	struct block_cache *cache;/* SSTable blocks of this core's shards */

	struct node_listener {
		struct node_core *core;
		int fd;
		bool resp;            /* RESP2 port rather than native */
		bool armed;           /* multishot accept posted */
		bool backing_off;     /* out of descriptors: waiting before re-arming */
		struct io_op op;
		struct io_op timer_op;
		struct __kernel_timespec backoff;
	} listeners[2];
	unsigned listener_count;
	bool accepting;
	struct redis_core *redis; /* RESP per-core state (SCAN cursors) */
	struct auth_core *auth;   /* authentication (server/auth.h); NULL without --users */
	struct audit_core *audit; /* --audit-log buffers (server/audit.h), or NULL */
	struct forward_core *forward; /* requests forwarded to other nodes */

	struct conn *conns;       /* every open connection */
	unsigned conn_count;
	struct conn *dirty;       /* connections with output to send */
	uint64_t outstanding;     /* requests from this core's clients not yet answered */
	uint64_t stop_deadline_us;
	struct node_stats stats;
	struct metrics_core *metrics; /* this core's row of node->metrics */
};

/* Reactor callbacks of ringkvd's cores (server/node.c). */
int node_core_start(struct reactor *r, void *arg, char *err, size_t errlen);
void node_core_stop(struct reactor *r, void *arg);
bool node_core_quiescent(struct reactor *r, void *arg);
void node_core_finish(struct reactor *r, void *arg);

/*
 * Refuses to share the node's addresses with another process: every socket
 * listening on an address that overlaps a listener of the node (same port,
 * same address or a wildcard) must be one of n->listen_fds / n->resp_fds.
 * Sockets in TIME_WAIT or other connection states do not count. 0, or
 * -EADDRINUSE with `err` naming the address (and the other process when
 * /proc shows it). Blocking (reads /proc): call at start-up only. Core 0's
 * start callback runs it, after every listener is bound.
 */
int node_listeners_check(const struct node *n, char *err, size_t errlen);

/*
 * The same check before binding host:port (`flag` names the option in the
 * message, e.g. "--listen"): -EADDRINUSE when any process listens there
 * already. Port 0 and unresolvable hosts pass (binding reports them). It
 * keeps a second node from joining the first one's SO_REUSEPORT group even
 * for the moment before node_listeners_check refuses it.
 */
int node_address_check(const char *host, uint16_t port, const char *flag, char *err,
		       size_t errlen);

/* The core that owns `shard`. */
static inline unsigned node_shard_core(const struct node *n, uint32_t shard)
{
	return n->shard_core[shard];
}

#endif
