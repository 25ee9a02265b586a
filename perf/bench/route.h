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
 */
#ifndef RINGKV_PERF_BENCH_ROUTE_H
#define RINGKV_PERF_BENCH_ROUTE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "perf/bench/options.h"

#define BENCH_ROUTE_MAX_NODES 64
#define BENCH_ROUTE_DRAWS 64

struct bench_route {
	unsigned nodes;                   /* 0: not routing (one node, --no-route, RESP) */
	uint64_t node_id[BENCH_ROUTE_MAX_NODES];
	struct sockaddr_storage addr[BENCH_ROUTE_MAX_NODES];
	socklen_t addr_len[BENCH_ROUTE_MAX_NODES];
	uint32_t shards;
	uint8_t *leader;                  /* [shards]: node index of the leader */
};

/*
 * Fills r from the cluster map of opts' server. 0 with r->nodes = 0 when
 * there is nothing to route (a one-node cluster, a server without the map
 * request, --no-route, RESP); 0 with r->nodes >= 2 when routing; -1 when
 * the map is unusable (a shard without a leader, a node without a client
 * address), with a message on stderr.
 */
int bench_route_init(struct bench_route *r, const struct bench_options *opts);
void bench_route_free(struct bench_route *r);

/* The node index connection number `connection` talks to. */
unsigned bench_route_conn_node(const struct bench_route *r, unsigned connection);

/* The node index that leads `key`'s shard. */
unsigned bench_route_node_of(const struct bench_route *r, const char *key, size_t len);

#endif
