/*
 * ringkv-bench's routing table; see perf/bench/route.h.
 */
#include "perf/bench/route.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard/route.h"
#include "tools/libringkv.h"

/* "HOST:PORT" or "[V6]:PORT" into a socket address; 0 or -1. */
static int resolve_address(const char *text, struct sockaddr_storage *out, socklen_t *len)
{
	char host[RKV_ADDRESS_MAX], *port;
	struct addrinfo hints, *res;
	int rv;

	snprintf(host, sizeof host, "%s", text[0] == '[' ? text + 1 : text);
	port = strrchr(host, ':');
	if (!port)
		return -1;
	*port++ = '\0';
	if (text[0] == '[' && port - host >= 2 && port[-2] == ']')
		port[-2] = '\0';
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rv = getaddrinfo(host, port, &hints, &res);
	if (rv != 0)
		return -1;
	memcpy(out, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int bench_route_init(struct bench_route *r, const struct bench_options *opts)
{
	struct rkv_cluster_map *m = NULL;
	struct rkv_client *c;
	char addr[300], err[256];
	int rv = -1;

	memset(r, 0, sizeof *r);
	if (opts->no_route || opts->protocol != BENCH_PROTOCOL_NATIVE)
		return 0;
	snprintf(addr, sizeof addr, strchr(opts->host, ':') ? "[%s]:%s" : "%s:%s", opts->host,
		 opts->port);
	if (rkv_connect_timeout(addr, 5000, &c, err, sizeof err) != 0)
		return 0; /* the workers' own connect reports it */
	rkv_set_timeout(c, 5000);
	if (rkv_cluster_map(c, &m) != 0 || m->node_count < 2 ||
	    m->node_count > BENCH_ROUTE_MAX_NODES) {
		rkv_close(c);
		rkv_cluster_map_free(m);
		return 0;
	}
	rkv_close(c);
	r->shards = (uint32_t)m->shard_count;
	r->leader = calloc(m->shard_count, 1);
	if (!r->leader)
		goto out;
	for (size_t i = 0; i < m->node_count; i++) {
		const char *client = m->nodes[i].client[0] ? m->nodes[i].client
				     : m->nodes[i].id == m->node_id ? addr : NULL;

		r->node_id[i] = m->nodes[i].id;
		if (!client || resolve_address(client, &r->addr[i], &r->addr_len[i]) != 0) {
			fprintf(stderr, "ringkv-bench: node %llu has no usable client address "
				"('%s'); use --no-route\n", (unsigned long long)m->nodes[i].id,
				m->nodes[i].client);
			goto out;
		}
	}
	for (size_t s = 0; s < m->shard_count; s++) {
		unsigned k;

		for (k = 0; k < m->node_count && m->nodes[k].id != m->shards[s].leader; k++)
			;
		if (k == m->node_count) {
			fprintf(stderr, "ringkv-bench: shard %zu has no leader yet; try again, or "
				"use --no-route\n", s);
			goto out;
		}
		r->leader[s] = (uint8_t)k;
	}
	r->nodes = (unsigned)m->node_count;
	fprintf(stderr, "ringkv-bench: routing to the leaders of %u shards on %u nodes\n",
		r->shards, r->nodes);
	rv = 0;
out:
	rkv_cluster_map_free(m);
	if (rv != 0)
		bench_route_free(r);
	return rv;
}

void bench_route_free(struct bench_route *r)
{
	free(r->leader);
	r->leader = NULL;
	r->nodes = 0;
}

unsigned bench_route_conn_node(const struct bench_route *r, unsigned connection)
{
	return r->leader[connection % r->shards];
}

unsigned bench_route_node_of(const struct bench_route *r, const char *key, size_t len)
{
	return r->leader[route_shard(route_slot(key, len), r->shards)];
}
