/*
 * ringkv-bench's routing table; see perf/bench/route.h.
 */
#include "perf/bench/route.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf/bench/workload.h"
#include "shard/route.h"
#include "tools/libringkv.h"

/* A shard of the spread: its leader's (node, core) pair, and its rank
 * among the shards of that pair (0 for the lowest id). */
struct spread_entry {
	uint64_t pair;                    /* node index << 32 | core */
	uint32_t rank;
	uint32_t shard;
};

static int by_pair(const void *a, const void *b)
{
	const struct spread_entry *x = a, *y = b;

	if (x->pair != y->pair)
		return x->pair < y->pair ? -1 : 1;
	return x->shard < y->shard ? -1 : x->shard > y->shard;
}

static int by_rank(const void *a, const void *b)
{
	const struct spread_entry *x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return by_pair(a, b);
}

/* Chooses opts->shard_spread shards, round-robin over the leaders' (node,
 * core) pairs: every pair's lowest shard first, then every pair's second,
 * and so on. 0 or -1 (message on stderr). */
static int spread_choose(struct bench_route *r, uint32_t count)
{
	struct spread_entry *e;
	uint32_t led = 0;

	e = calloc(r->shards, sizeof *e);
	r->spread = calloc(count, sizeof *r->spread);
	if (!e || !r->spread) {
		free(e);
		return -1;
	}
	for (uint32_t s = 0; s < r->shards; s++) {
		if (r->leader[s] == BENCH_ROUTE_NO_LEADER)
			continue;
		e[led].pair = (uint64_t)r->leader[s] << 32 | r->leader_core[s];
		e[led++].shard = s;
	}
	if (count > led) {
		fprintf(stderr, "ringkv-bench: --shard-spread %u: %u of the cluster's %u shards "
			"have a leader\n", count, led, r->shards);
		free(e);
		return -1;
	}
	if (led < r->shards)
		fprintf(stderr, "ringkv-bench: %u shards without a leader are left out\n",
			r->shards - led);
	qsort(e, led, sizeof *e, by_pair);
	for (uint32_t s = 1; s < led; s++)
		e[s].rank = e[s].pair == e[s - 1].pair ? e[s - 1].rank + 1 : 0;
	qsort(e, led, sizeof *e, by_rank);
	for (uint32_t i = 0; i < count; i++)
		r->spread[i] = e[i].shard;
	r->spread_count = count;
	free(e);
	return 0;
}

/* Fills r->key_number with the first opts->keys numbers whose keys fall in
 * a chosen shard. 0 or -1 (message on stderr). */
static int spread_keys(struct bench_route *r, const struct bench_options *opts)
{
	struct workload format = { .key_size = opts->key_size };
	uint64_t number = 0, limit = 1, found = 0, tries;
	uint8_t *chosen = calloc(r->shards, 1);
	char *key = malloc(opts->key_size);

	r->key_number = calloc(opts->keys, sizeof *r->key_number);
	if (!chosen || !key || !r->key_number) {
		free(chosen);
		free(key);
		return -1;
	}
	for (uint32_t i = 0; i < r->spread_count; i++)
		chosen[r->spread[i]] = 1;
	/* The digits after the prefix bound the numbers; the expected count
	 * of numbers to look at, with room, bounds the time. */
	for (unsigned d = WORKLOAD_KEY_PREFIX_LEN; d < opts->key_size && limit < UINT64_MAX / 10; d++)
		limit *= 10;
	tries = opts->keys * (r->shards / r->spread_count + 1) * 16 + 1000000;
	for (; found < opts->keys && number < limit && number < tries; number++) {
		workload_format_key(&format, number, key);
		if (chosen[route_shard(route_slot(key, opts->key_size), r->shards)])
			r->key_number[found++] = number;
	}
	free(chosen);
	free(key);
	if (found < opts->keys) {
		fprintf(stderr, "ringkv-bench: only %llu keys of %u bytes fall in the %u shards of "
			"--shard-spread; a larger --key-size or fewer --keys\n",
			(unsigned long long)found, opts->key_size, r->spread_count);
		return -1;
	}
	return 0;
}

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
	/* Routing pays off from two nodes; a spread needs the map even of one. */
	if (rkv_cluster_map(c, &m) != 0 || m->node_count < (opts->shard_spread ? 1u : 2u) ||
	    m->node_count > BENCH_ROUTE_MAX_NODES) {
		rkv_close(c);
		rkv_cluster_map_free(m);
		return 0;
	}
	rkv_close(c);
	r->shards = (uint32_t)m->shard_count;
	r->leader = calloc(m->shard_count, 1);
	r->leader_core = calloc(m->shard_count, sizeof *r->leader_core);
	if (!r->leader || !r->leader_core)
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
		if (k == m->node_count && opts->shard_spread) {
			r->leader[s] = BENCH_ROUTE_NO_LEADER; /* left out of the spread */
			r->leader_core[s] = UINT32_MAX;
			continue;
		}
		if (k == m->node_count) {
			fprintf(stderr, "ringkv-bench: shard %zu has no leader yet; try again, or "
				"use --no-route\n", s);
			goto out;
		}
		r->leader[s] = (uint8_t)k;
		r->leader_core[s] = UINT32_MAX;
		for (unsigned i = 0; i < m->shards[s].replica_count; i++)
			if (m->shards[s].replicas[i].node == m->shards[s].leader)
				r->leader_core[s] = m->shards[s].replicas[i].core;
	}
	if (opts->shard_spread &&
	    (spread_choose(r, opts->shard_spread) != 0 || spread_keys(r, opts) != 0))
		goto out;
	r->nodes = (unsigned)m->node_count;
	fprintf(stderr, "ringkv-bench: routing to the leaders of %u shards on %u nodes\n",
		r->spread_count ? r->spread_count : r->shards, r->nodes);
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
	free(r->leader_core);
	free(r->spread);
	free(r->key_number);
	memset(r, 0, sizeof *r);
}

unsigned bench_route_conn_node(const struct bench_route *r, unsigned connection)
{
	if (r->spread_count)
		return r->leader[r->spread[connection % r->spread_count]];
	return r->leader[connection % r->shards];
}

unsigned bench_route_node_of(const struct bench_route *r, const char *key, size_t len)
{
	return r->leader[route_shard(route_slot(key, len), r->shards)];
}

void bench_route_print_keys(const struct bench_route *r, const struct bench_options *opts,
			    void *out)
{
	struct workload format = { .key_size = opts->key_size };
	char *key = malloc(opts->key_size);

	if (!key)
		return;
	for (uint64_t i = 0; i < opts->keys; i++) {
		uint32_t shard;

		workload_format_key(&format, bench_route_key_number(r, i), key);
		shard = route_shard(route_slot(key, opts->key_size), r->shards);
		fprintf(out, "%.*s\t%u\t%llu\t%d\n", (int)opts->key_size, key, shard,
			(unsigned long long)r->node_id[r->leader[shard]], /* always led */
			r->leader_core[shard] == UINT32_MAX ? -1 : (int)r->leader_core[shard]);
	}
	free(key);
}
