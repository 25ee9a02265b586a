/*
 * Routing of ringkv-bench in a cluster: the map is fetched once at start
 * (libringkv's rkv_cluster_map from --addr), every connection is bound to
 * one node (connection i to the leader of shard i mod S, so connections
 * spread over the nodes as the leaders do), and a connection is only given
 * keys whose shard that node leads: the workload's next key is drawn again
 * (up to BENCH_ROUTE_DRAWS times) until it belongs there, which keeps keys
 * uniform (or Zipf) within each node's share. Requests are marked
 * no_forward, so a leader change during the run shows as NOT_LEADER errors
 * in the report instead of hidden forwarding.
 *
 * With --shard-spread N, N shards are chosen round-robin over the leaders'
 * (node, core) pairs, and the workload's key index i names the i-th key
 * number whose key falls in one of them (key_number), so every key sent is
 * in a chosen shard and connection i goes to the leader of chosen shard
 * i mod N.
 */
#ifndef RINGKV_PERF_BENCH_ROUTE_H
#define RINGKV_PERF_BENCH_ROUTE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "perf/bench/options.h"

#define BENCH_ROUTE_MAX_NODES 64
#define BENCH_ROUTE_DRAWS 64
#define BENCH_ROUTE_NO_LEADER 0xff        /* leader[] of a shard without one (spread only) */

struct bench_route {
	unsigned nodes;                   /* 0: not routing (one node, --no-route, RESP) */
	uint64_t node_id[BENCH_ROUTE_MAX_NODES];
	struct sockaddr_storage addr[BENCH_ROUTE_MAX_NODES];
	socklen_t addr_len[BENCH_ROUTE_MAX_NODES];
	uint32_t shards;
	uint8_t *leader;                  /* [shards]: node index of the leader, or
					   * BENCH_ROUTE_NO_LEADER */
	uint32_t *leader_core;            /* [shards]: its core (UINT32_MAX: unknown); with spread */
	uint32_t spread_count;            /* --shard-spread: shards chosen; 0 = all */
	uint32_t *spread;                 /* [spread_count]: the chosen shards, round-robin order */
	uint64_t *key_number;             /* [keys]: number in the key of index i; with spread */
};

/*
 * Fills r from the cluster map of opts' server. 0 with r->nodes = 0 when
 * there is nothing to route (a one-node cluster, a server without the map
 * request, --no-route, RESP); 0 with r->nodes >= 2 when routing; -1 when
 * the map is unusable (a shard without a leader, a node without a client
 * address), with a message on stderr. With opts->shard_spread, a one-node
 * cluster is routed too (r->nodes = 1), and -1 also when the spread cannot
 * be made (more shards asked than have a leader, keys too short); shards
 * without a leader are then left out of the spread instead.
 */
int bench_route_init(struct bench_route *r, const struct bench_options *opts);
void bench_route_free(struct bench_route *r);

/* The node index connection number `connection` talks to. */
unsigned bench_route_conn_node(const struct bench_route *r, unsigned connection);

/* The node index that leads `key`'s shard. */
unsigned bench_route_node_of(const struct bench_route *r, const char *key, size_t len);

/* The number to put in the key of workload index `index` (itself when not
 * spreading). */
static inline uint64_t bench_route_key_number(const struct bench_route *r, uint64_t index)
{
	return r->key_number ? r->key_number[index] : index;
}

/* --print-keys: every key of the spread, with its shard, leader node id and
 * core, one a line on out. */
void bench_route_print_keys(const struct bench_route *r, const struct bench_options *opts,
			    void *out);

#endif
