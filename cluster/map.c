/* The cluster map and its placement rule; see cluster/map.h. */
#include "cluster/map.h"
#include "cluster/replica_ident.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

static int compare_ids(const void *a, const void *b)
{
	const struct cluster_map_node *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

uint64_t cluster_map_id(const struct cluster_map_node *nodes, unsigned count,
			uint32_t shards, uint32_t replicas, const char *token)
{
	XXH3_state_t state;
	char line[CONFIG_ADDR_MAX + 64], addr[CONFIG_ADDR_MAX + 8];
	uint64_t id;
	unsigned i;
	int len;

	/* A text, not the struct's bytes: padding and field sizes stay out of
	 * an id that is recorded on disk and compared across builds. */
	XXH3_64bits_reset(&state);
	len = snprintf(line, sizeof line, "ringkv-cluster-id 1\n");
	XXH3_64bits_update(&state, line, (size_t)len);
	for (i = 0; i < count; i++) {
		config_format_address(nodes[i].host, nodes[i].port, addr, sizeof addr);
		len = snprintf(line, sizeof line, "node %llu %s\n",
			       (unsigned long long)nodes[i].id, addr);
		XXH3_64bits_update(&state, line, (size_t)len);
	}
	len = snprintf(line, sizeof line, "shards %u\nreplicas %u\ntoken %s\n", shards,
		       replicas, token);
	XXH3_64bits_update(&state, line, (size_t)len);
	id = XXH3_64bits_digest(&state);
	return id ? id : 1;
}

int cluster_map_init(struct cluster_map *m, const struct cluster_map_node *nodes,
		     unsigned count, uint32_t shards, uint32_t replicas, const char *token,
		     char *err, size_t errlen)
{
	unsigned i;

	if (count == 0 || count > CLUSTER_MAP_MAX_NODES) {
		snprintf(err, errlen, "a cluster has 1 to %u nodes, not %u",
			 CLUSTER_MAP_MAX_NODES, count);
		return -EINVAL;
	}
	if (shards == 0 || shards > CLUSTER_MAP_MAX_SHARDS) {
		snprintf(err, errlen, "a cluster has 1 to %u shards, not %u",
			 CLUSTER_MAP_MAX_SHARDS, shards);
		return -EINVAL;
	}
	if (replicas == 0 || replicas > count) {
		snprintf(err, errlen, "%u replicas: must be between 1 and the %u node%s",
			 replicas, count, count == 1 ? "" : "s");
		return -EINVAL;
	}
	memset(m, 0, sizeof *m);
	memcpy(m->nodes, nodes, count * sizeof *nodes);
	qsort(m->nodes, count, sizeof *nodes, compare_ids);
	for (i = 0; i < count; i++) {
		if (m->nodes[i].id == 0) {
			snprintf(err, errlen, "node ids start at 1");
			return -EINVAL;
		}
		if (m->nodes[i].id > REPLICA_IDENT_NODE_MAX) { /* the rest: incarnations */
			snprintf(err, errlen, "node id %llu: above the largest, %llu",
				 (unsigned long long)m->nodes[i].id,
				 (unsigned long long)REPLICA_IDENT_NODE_MAX);
			return -EINVAL;
		}
		if (i > 0 && m->nodes[i].id == m->nodes[i - 1].id) {
			snprintf(err, errlen, "node id %llu appears twice",
				 (unsigned long long)m->nodes[i].id);
			return -EINVAL;
		}
	}
	m->node_count = count;
	m->shards = shards;
	m->replicas = replicas;
	m->version = 1;
	m->cluster_id = cluster_map_id(m->nodes, count, shards, replicas, token);
	return 0;
}

int cluster_map_index(const struct cluster_map *m, uint64_t id)
{
	unsigned lo = 0, hi = m->node_count;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (m->nodes[mid].id == id)
			return (int)mid;
		if (m->nodes[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

unsigned cluster_map_first(const struct cluster_map *m, uint32_t shard)
{
	uint32_t n = m->node_count;
	uint32_t full_rounds = m->shards / n;
	uint32_t partial = m->shards % n;    /* shards in the last round */
	uint32_t position = shard % n;

	assert(shard < m->shards);
	if (shard / n < full_rounds)
		return position;
	/* Spread the r positions of the last round over the N nodes:
	 * floor(j N / r) is strictly increasing in j because N > r. */
	return (unsigned)((uint64_t)position * n / partial);
}

unsigned cluster_map_replica(const struct cluster_map *m, uint32_t shard, unsigned k)
{
	assert(k < m->replicas);
	return (cluster_map_first(m, shard) + k) % m->node_count;
}

unsigned cluster_map_replica_ids(const struct cluster_map *m, uint32_t shard, uint64_t *ids)
{
	unsigned first = cluster_map_first(m, shard), k;

	for (k = 0; k < m->replicas; k++)
		ids[k] = m->nodes[(first + k) % m->node_count].id;
	return m->replicas;
}

int cluster_map_rank(const struct cluster_map *m, uint32_t shard, unsigned node)
{
	unsigned first = cluster_map_first(m, shard);
	unsigned k = (node + m->node_count - first) % m->node_count;

	assert(node < m->node_count);
	return k < m->replicas ? (int)k : -1;
}

unsigned cluster_map_core(const struct cluster_map *m, uint32_t shard, unsigned cores)
{
	assert(cores >= 1);
	/* The round number walks a node's leaders over its cores one by one;
	 * adding the first replica's index staggers nodes so that the shards
	 * one node holds in a round are not all on one core. */
	return (shard / m->node_count + cluster_map_first(m, shard)) % cores;
}

unsigned cluster_map_node_shards(const struct cluster_map *m, unsigned node, uint32_t *shards,
				 unsigned max)
{
	unsigned count = 0;
	uint32_t s;

	for (s = 0; s < m->shards; s++) {
		if (cluster_map_rank(m, s, node) < 0)
			continue;
		if (count < max)
			shards[count] = s;
		count++;
	}
	return count;
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

uint64_t cluster_map_placement_hash(const struct cluster_map *m, unsigned cores)
{
	XXH3_state_t state;
	unsigned char bytes[8];
	uint64_t ids[CLUSTER_MAP_MAX_NODES];
	uint32_t s;
	unsigned k, n;

	XXH3_64bits_reset(&state);
	for (s = 0; s < m->shards; s++) {
		n = cluster_map_replica_ids(m, s, ids);
		put_le64(bytes, s);
		XXH3_64bits_update(&state, bytes, sizeof bytes);
		for (k = 0; k < n; k++) {
			put_le64(bytes, ids[k]);
			XXH3_64bits_update(&state, bytes, sizeof bytes);
		}
		put_le64(bytes, cluster_map_core(m, s, cores));
		XXH3_64bits_update(&state, bytes, sizeof bytes);
	}
	return XXH3_64bits_digest(&state);
}
