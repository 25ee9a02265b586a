/*
 * The cluster map and cluster status requests of the native protocol
 * (Request.cluster_map / cluster_status, proto/ringkv.proto), served by the
 * core that received them.
 *
 * What the answer needs lives on every core: each core's replicas know
 * their term and leader, each core's table of client addresses holds what
 * the hellos it accepted said (cluster/client_addrs.h), and each core has
 * its own peer connections. So the receiving core sends one message to
 * every core (itself included, through the same path); each fills its own
 * part of one gather block owned by the origin, and sends the message back.
 * Once every part is in, the origin builds and encodes the answer and frees
 * the block. Nothing is shared while cores write: each writes only its part.
 */
#ifndef RINGKV_SERVER_CLUSTER_INFO_H
#define RINGKV_SERVER_CLUSTER_INFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct node_core;
struct conn;
struct frame_request;

/*
 * From the core's start callback, after the replication engine started:
 * sets the client addresses this node advertises in its hellos
 * (cluster_info_advertised).
 */
void cluster_info_core_start(struct node_core *c);

/*
 * The address clients should dial for a listener on host:port: host itself,
 * unless it is a wildcard (0.0.0.0, ::, "") that tells a client nothing;
 * then this node's peer host (the address the other nodes reach it at) with
 * the same port, or "" when the node has no peer address either (a one-node
 * cluster: the client keeps the address it used). Written as "HOST:PORT"
 * ("[V6]:PORT") into buf.
 */
void cluster_info_advertised(const char *host, uint16_t port, const char *peer_host,
			     char *buf, size_t len);

/*
 * Native protocol: answers FRAME_OP_CLUSTER_MAP and FRAME_OP_CLUSTER_STATUS
 * (true: handled, the answer follows later on `conn`); false for every other
 * op.
 */
bool cluster_info_submit(struct node_core *c, struct conn *conn, const struct frame_request *fr);

/* The map's epoch as core c knows it (cluster/leaders.h): what its map
 * answers say, and what NOT_LEADER answers carry (Response.map_epoch). */
uint64_t cluster_info_epoch(const struct node_core *c);

#endif
