/*
 * A replica's identity in its Raft group: the node that holds it and the
 * incarnation of that node's replica (docs/cluster/repair-design.md,
 * "Amnesiac replicas"). A replica that may have forgotten a vote or
 * acknowledged entries (an amnesiac one) rejoins its group as a NEW member,
 * the next incarnation, so that nothing its old identity promised can be
 * counted again.
 *
 * Encoding: raft id = node | incarnation << 48. Incarnation 0 is the node id
 * itself, so every configuration written before incarnations existed
 * (shard-N.conf, conf entries, snapshots, the founding placement) reads as
 * incarnation 0, and raft/ sees opaque ids. Node ids are below 2^48
 * (cluster/map.c refuses larger ones). Messages are routed by the node
 * part; the full id is checked on the core that holds the replica.
 */
#ifndef RINGKV_CLUSTER_REPLICA_IDENT_H
#define RINGKV_CLUSTER_REPLICA_IDENT_H

#include <stdint.h>

#include "raft/raft.h"

#define REPLICA_IDENT_SHIFT 48
#define REPLICA_IDENT_NODE_MAX ((UINT64_C(1) << REPLICA_IDENT_SHIFT) - 1)
#define REPLICA_IDENT_INC_MAX 0xffffu /* incarnations: the 16 bits above */

/* node <= REPLICA_IDENT_NODE_MAX, incarnation <= REPLICA_IDENT_INC_MAX. */
static inline uint64_t replica_ident(uint64_t node, uint32_t incarnation)
{
	return node | (uint64_t)incarnation << REPLICA_IDENT_SHIFT;
}

static inline uint64_t replica_ident_node(uint64_t id)
{
	return id & REPLICA_IDENT_NODE_MAX;
}

static inline uint32_t replica_ident_inc(uint64_t id)
{
	return (uint32_t)(id >> REPLICA_IDENT_SHIFT);
}

/* The member of `conf` held by `node` other than `except` (any incarnation),
 * or RAFT_NONE. */
static inline uint64_t replica_ident_member(const struct raft_conf *conf, uint64_t node,
					    uint64_t except)
{
	for (uint32_t i = 0; i < conf->n; i++)
		if (replica_ident_node(conf->servers[i].id) == node &&
		    conf->servers[i].id != except)
			return conf->servers[i].id;
	return RAFT_NONE;
}

#endif
