/*
 * The cluster map: who is in the cluster (node ids and peer addresses), how
 * many shards it has and how many replicas each, its id, and where every
 * replica lives. A plain struct without pointers: each core keeps its own
 * copy (memcpy is a valid copy), and the placement is computed on demand
 * from the struct, never stored, so lookups allocate nothing.
 *
 * The placement rule (docs/cluster/placement.md has the proofs). Nodes are
 * sorted by id and numbered 0..N-1 ("index"); S shards, R replicas. Shards
 * are dealt in rounds of N: shard s is in round q = s / N at position
 * j = s % N. A full round (q < S / N) gives position j to node j; the last,
 * partial round of r = S % N shards spreads its positions over the nodes,
 * j -> floor(j * N / r). That node is the shard's first replica and its
 * preferred first leader; replica k is node (first + k) mod N. On a node
 * with C cores the shard lives on core (q + first) mod C.
 *
 * What follows, for every N, S, R <= N, C:
 *  - a shard's R replicas are on R distinct nodes;
 *  - each node holds floor or ceil of S*R/N replicas and leads floor or
 *    ceil of S/N shards;
 *  - each node's leaders are spread over its cores within 1;
 *  - with equal core counts a shard's replicas sit on the same core index
 *    on every node, so its Raft traffic never crosses cores;
 *  - with one node it is today's rule: shard s on core s mod C.
 * The map is a pure function of (sorted nodes, S, R, token): every node
 * started with the same flags computes the same map without talking.
 */
#ifndef RINGKV_CLUSTER_MAP_H
#define RINGKV_CLUSTER_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

#define CLUSTER_MAP_MAX_NODES CONFIG_MAX_NODES
#define CLUSTER_MAP_MAX_SHARDS 16384u   /* as --shards */

struct cluster_map_node {
	uint64_t id;                    /* >= 1 */
	char host[CONFIG_ADDR_MAX];     /* peer address; "" = none (one-node cluster) */
	uint16_t port;
};

struct cluster_map {
	uint64_t cluster_id;            /* cluster_map_id() of the founding flags */
	uint64_t version;               /* 1 at creation; bumped by membership changes */
	uint32_t shards;                /* S */
	uint32_t replicas;              /* R, 1..node_count */
	uint32_t node_count;            /* N */
	struct cluster_map_node nodes[CLUSTER_MAP_MAX_NODES]; /* sorted by id */
};

/*
 * Builds the map of a new cluster (version 1) from its founding nodes (any
 * order; copied and sorted), S, R and the cluster token ("" = none).
 * Returns 0, or -EINVAL with the reason in `err`: no node, too many, id 0,
 * a duplicate id, S out of 1..CLUSTER_MAP_MAX_SHARDS, R out of 1..N.
 */
int cluster_map_init(struct cluster_map *m, const struct cluster_map_node *nodes,
		     unsigned count, uint32_t shards, uint32_t replicas, const char *token,
		     char *err, size_t errlen);

/*
 * The cluster id: XXH3-64 of a canonical text of the nodes sorted by id
 * (id and peer address), S, R and the token. `nodes` must be sorted by id.
 * Never 0.
 */
uint64_t cluster_map_id(const struct cluster_map_node *nodes, unsigned count,
			uint32_t shards, uint32_t replicas, const char *token);

/* Index of node `id` in m->nodes, or -1 if it is not a member. */
int cluster_map_index(const struct cluster_map *m, uint64_t id);

/*
 * Lookups. Precondition for all: shard < m->shards, node < m->node_count
 * (asserted: a shard id from the network is checked before it gets here).
 */

/* Index of shard `shard`'s first replica: its preferred first leader. */
unsigned cluster_map_first(const struct cluster_map *m, uint32_t shard);

/* Index of shard `shard`'s replica `k` (0 = the first), k < R. */
unsigned cluster_map_replica(const struct cluster_map *m, uint32_t shard, unsigned k);

/*
 * Fills ids[0..R) with the node ids of shard `shard`'s replicas, the
 * preferred leader first; returns R. `ids` holds CLUSTER_MAP_MAX_NODES.
 */
unsigned cluster_map_replica_ids(const struct cluster_map *m, uint32_t shard, uint64_t *ids);

/* Which replica of `shard` node index `node` holds (0 = first), or -1. */
int cluster_map_rank(const struct cluster_map *m, uint32_t shard, unsigned node);

/*
 * The core that owns shard `shard`'s replica on a node with `cores` cores
 * (>= 1): (round + first) mod cores. The same on every node with the same
 * core count.
 */
unsigned cluster_map_core(const struct cluster_map *m, uint32_t shard, unsigned cores);

/*
 * The shards node index `node` holds a replica of, in increasing order:
 * writes up to `max` into `shards` and returns how many there are (which
 * may exceed `max`).
 */
unsigned cluster_map_node_shards(const struct cluster_map *m, unsigned node, uint32_t *shards,
				 unsigned max);

/*
 * XXH3-64 of the placement as a node with `cores` cores sees it: for every
 * shard its replica ids in order and its core. Recorded in the data dir so
 * that a build placing shards differently is noticed, not obeyed.
 */
uint64_t cluster_map_placement_hash(const struct cluster_map *m, unsigned cores);

#endif
