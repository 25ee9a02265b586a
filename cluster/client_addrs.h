/*
 * The client addresses of the cluster's nodes, as each core knows them.
 *
 * Nodes are founded knowing each other's peer addresses only
 * (--initial-cluster). Each node puts its own native and RESP client
 * addresses into the hello of every peer connection it opens
 * (proto/peer.proto, Hello.client_address / resp_address), and the core that
 * judges an inbound hello records what it says. So every core keeps its own
 * table, written and read by that core alone: no state is shared, nothing
 * is locked. A core that never accepted a hello from node X knows nothing of
 * it; a reader that wants the node's view asks every core (server/
 * cluster_info.c does) and keeps, per node, the entry learnt last.
 *
 * A wildcard listen address (0.0.0.0, ::) tells a client nothing, so the
 * address a node advertises is chosen by cluster_info_advertised() in
 * server/cluster_info.c (the node's peer host with the client port).
 */
#ifndef RINGKV_CLUSTER_CLIENT_ADDRS_H
#define RINGKV_CLUSTER_CLIENT_ADDRS_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/map.h"
#include "cluster/peer_msg.h"

#define CLIENT_ADDRS_MAX (PEER_MSG_MAX_ADDRESS + 1) /* with the NUL */

struct client_addrs_entry {
	char client[CLIENT_ADDRS_MAX]; /* "HOST:PORT", "" = unknown */
	char resp[CLIENT_ADDRS_MAX];   /* "" = off or unknown */
	uint32_t cores;                /* the node's core count; 0 = unknown */
	uint64_t learnt_us;            /* reactor clock when learnt; 0 = never */
};

/* One core's table. */
struct client_addrs {
	struct client_addrs_entry self;                        /* this node's */
	struct client_addrs_entry nodes[CLUSTER_MAP_MAX_NODES]; /* by map index */
};

/*
 * Records what a hello said. Slices come from a decoded frame (at most
 * PEER_MSG_MAX_ADDRESS bytes each, checked by the decoder); bytes that are
 * not printable ASCII are replaced by '?', so the table holds text.
 */
void client_addrs_learn(struct client_addrs_entry *e, struct peer_msg_slice client,
			struct peer_msg_slice resp, uint32_t cores, uint64_t now_us);

struct cluster_core;
struct cluster_node;
struct peer_core;

/* The node's cluster map (shared, read-only after start-up). */
const struct cluster_map *cluster_node_map(const struct cluster_node *n);
/* This node's id. */
uint64_t cluster_node_self_id(const struct cluster_node *n);

/* The core's peer transport, or NULL (a one-node cluster). */
struct peer_core *cluster_core_peer_core(struct cluster_core *c);

/* This core's table (read it on this core only). */
const struct client_addrs *cluster_core_client_addrs(const struct cluster_core *c);

/*
 * Sets the addresses this node advertises in the hellos of this core's
 * connections. Call from the core's start callback, after
 * cluster_core_start and before the loop runs (hellos are made on connect).
 * NULL or "" = unknown / off.
 */
void cluster_core_set_client_addrs(struct cluster_core *c, const char *client,
				   const char *resp);

#endif
