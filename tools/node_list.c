/*
 * `ringkv node list [--json]`: every node of the cluster, its addresses,
 * whether it answers, and how many replicas and leaderships it holds, in
 * all and on each core.
 *
 * The node asked gives the map (members, addresses, shards); then every
 * node is asked for its own status, whose replicas (shard, core, role) are
 * the truth for that node. A node that does not answer is "unreachable",
 * and its counts come from the map instead (the replicas the map places on
 * it, the shards the map names it leader of; cores where the map knows
 * them): marked `"counted_from":"map"`, since that view may be stale.
 * No state "draining" yet: a drain is driven by its CLI (tools/node_drain.c)
 * and no node records it.
 */
#include "tools/node_list.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli_json.h"
#include "tools/cluster_views.h"
#include "tools/libringkv.h"
#include "tools/shard_move.h"

#define LIST_MAX_CORES 256

struct core_count {
	unsigned replicas;
	unsigned leaders;
};

struct listed_node {
	const struct rkv_node *node;
	struct rkv_cluster_status *st;  /* NULL: it did not answer */
	char error[256];
	unsigned replicas;
	unsigned leaders;
	uint32_t cores;                 /* per_core entries in use */
	struct core_count per_core[LIST_MAX_CORES];
};

static void count_core(struct listed_node *n, uint32_t core, bool leads)
{
	if (core >= LIST_MAX_CORES)
		return;
	if (core + 1 > n->cores)
		n->cores = core + 1;
	n->per_core[core].replicas++;
	n->per_core[core].leaders += leads;
}

/* From the node's own status. */
static void count_status(struct listed_node *n)
{
	n->cores = n->st->cores < LIST_MAX_CORES ? n->st->cores : LIST_MAX_CORES;
	for (size_t r = 0; r < n->st->replica_count; r++) {
		bool leads = strcmp(n->st->replicas[r].role, "leader") == 0;

		n->replicas++;
		n->leaders += leads;
		count_core(n, n->st->replicas[r].core, leads);
	}
}

/* From the map, for a node that did not answer. */
static void count_map(struct listed_node *n, const struct rkv_cluster_map *m)
{
	for (size_t s = 0; s < m->shard_count; s++) {
		const struct rkv_shard *sh = &m->shards[s];
		bool leads = sh->leader == n->node->id;

		for (unsigned k = 0; k < sh->replica_count; k++) {
			if (sh->replicas[k].node != n->node->id)
				continue;
			n->replicas++;
			n->leaders += leads;
			if (sh->replicas[k].core != UINT32_MAX)
				count_core(n, sh->replicas[k].core, leads);
		}
	}
}

static void print_json(const struct rkv_cluster_map *m, const struct listed_node *nodes)
{
	printf("{\"cluster_id\":\"%016" PRIx64 "\",\"asked\":%" PRIu64 ",\"map_version\":%" PRIu64
	       ",\"epoch\":%" PRIu64 ",\"nodes\":[", m->cluster_id, m->node_id, m->version,
	       m->epoch);
	for (size_t i = 0; i < m->node_count; i++) {
		const struct listed_node *n = &nodes[i];

		printf("%s{\"id\":%" PRIu64 ",\"peer\":", i ? "," : "", n->node->id);
		cli_json_string(stdout, n->node->peer);
		printf(",\"client\":");
		cli_json_string(stdout, n->node->client);
		printf(",\"resp\":");
		cli_json_string(stdout, n->node->resp);
		printf(",\"state\":\"%s\",\"counted_from\":\"%s\"", n->st ? "up" : "unreachable",
		       n->st ? "status" : "map");
		if (!n->st) {
			printf(",\"error\":");
			cli_json_string(stdout, n->error);
		}
		printf(",\"replicas\":%u,\"leaders\":%u,\"cores\":[", n->replicas, n->leaders);
		for (uint32_t k = 0; k < n->cores; k++)
			printf("%s{\"core\":%u,\"replicas\":%u,\"leaders\":%u}", k ? "," : "", k,
			       n->per_core[k].replicas, n->per_core[k].leaders);
		printf("]}");
	}
	printf("]}\n");
}

static void print_table(const struct rkv_cluster_map *m, const struct listed_node *nodes)
{
	printf("cluster %016" PRIx64 ", map version %" PRIu64 ", epoch %" PRIu64
	       " (asked node %" PRIu64 ")\n\n", m->cluster_id, m->version, m->epoch, m->node_id);
	printf("%-5s %-12s %-24s %-24s %8s %7s  %s\n", "NODE", "STATE", "PEER", "CLIENT",
	       "REPLICAS", "LEADERS", "PER CORE (core: replicas/leaders)");
	for (size_t i = 0; i < m->node_count; i++) {
		const struct listed_node *n = &nodes[i];

		printf("%-5" PRIu64 " %-12s %-24s %-24s %8u %7u  ", n->node->id,
		       n->st ? "up" : "unreachable", n->node->peer[0] ? n->node->peer : "-",
		       n->node->client[0] ? n->node->client : "-", n->replicas, n->leaders);
		for (uint32_t k = 0; k < n->cores; k++)
			printf("%s%u: %u/%u", k ? ", " : "", k, n->per_core[k].replicas,
			       n->per_core[k].leaders);
		if (!n->st)
			printf("%s(from the map: %s)", n->cores ? " " : "", n->error);
		printf("\n");
	}
}

int node_list_run(const struct node_list_args *a)
{
	struct rkv_cluster_map *m = NULL;
	struct listed_node *nodes;
	struct rkv_client *c;
	char err[300];
	int rc;

	if (rkv_connect_timeout(a->address, a->timeout_ms, &c, err, sizeof err) != 0) {
		shard_move_complain("node list", a->json, "asked", 0, "%s", err);
		return NODE_LIST_EXIT_UNREACHABLE;
	}
	rkv_set_timeout(c, a->timeout_ms);
	rc = rkv_cluster_map(c, &m);
	if (rc != 0) {
		shard_move_complain("node list", a->json, "asked", 0, "%s", rkv_last_error(c));
		rkv_close(c);
		return rc < 0 ? NODE_LIST_EXIT_UNREACHABLE : NODE_LIST_EXIT_REFUSED;
	}
	rkv_close(c);
	nodes = calloc(m->node_count ? m->node_count : 1, sizeof *nodes);
	if (!nodes) {
		rkv_cluster_map_free(m);
		shard_move_complain("node list", a->json, "asked", 0, "out of memory");
		return NODE_LIST_EXIT_REFUSED;
	}
	for (size_t i = 0; i < m->node_count; i++) {
		struct listed_node *n = &nodes[i];

		n->node = &m->nodes[i];
		n->st = cluster_views_status(m, n->node->id, a->timeout_ms, n->error,
					     sizeof n->error);
		if (n->st)
			count_status(n);
		else
			count_map(n, m);
	}
	if (a->json)
		print_json(m, nodes);
	else
		print_table(m, nodes);
	fflush(stdout);
	for (size_t i = 0; i < m->node_count; i++)
		rkv_cluster_status_free(nodes[i].st);
	free(nodes);
	rkv_cluster_map_free(m);
	return NODE_LIST_EXIT_OK;
}
