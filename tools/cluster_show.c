/*
 * `ringkv cluster status|map`: the cluster map as the node asked knows it
 * (nodes, addresses, shards, leaders) and, for status, what every node says
 * of itself (leaders, terms, indexes, lag, reachability), as tables or one
 * JSON object.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/cli_json.h"

static int check_cluster(const struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	if (strcmp(argv[0], "status") != 0 && strcmp(argv[0], "map") != 0)
		return cli_usage_error("cluster takes status or map, not '%s'", argv[0]);
	return CLI_EXIT_OK;
}

/* What one node said of itself, or why it did not. */
struct node_view {
	struct rkv_cluster_status *status; /* NULL: not reached */
	char error[300];
};

/* A JSON string of printable text (addresses, roles, errors). */
static void print_json_text(const char *s)
{
	cli_json_string(stdout, s);
}

static const struct rkv_replica_status *find_replica(const struct node_view *v, uint32_t shard)
{
	if (!v->status)
		return NULL;
	for (size_t i = 0; i < v->status->replica_count; i++)
		if (v->status->replicas[i].shard == shard)
			return &v->status->replicas[i];
	return NULL;
}

static int node_pos(const struct rkv_cluster_map *m, uint64_t id)
{
	for (size_t i = 0; i < m->node_count; i++)
		if (m->nodes[i].id == id)
			return (int)i;
	return -1;
}

/* Whether node index i is reachable from the node asked (itself: yes). */
static bool reachable_from_asked(const struct rkv_cluster_map *m, const struct node_view *views,
				 size_t i)
{
	int asked = node_pos(m, m->node_id);
	const struct rkv_cluster_status *st = asked >= 0 ? views[asked].status : NULL;

	if (m->nodes[i].id == m->node_id)
		return true;
	if (!st)
		return false;
	for (size_t k = 0; k < st->peer_count; k++)
		if (st->peers[k].node == m->nodes[i].id)
			return st->peers[k].reachable != 0;
	return false;
}

/* The shard's leader and term as the answering replicas see them: the
 * leader claimed in the highest term, else the map's. */
static void shard_leader(const struct rkv_cluster_map *m, const struct node_view *views,
			 const struct rkv_shard *sh, uint64_t *leader, uint64_t *term)
{
	*leader = sh->leader;
	*term = sh->term;
	for (unsigned k = 0; k < sh->replica_count; k++) {
		int pos = node_pos(m, sh->replicas[k].node);
		const struct rkv_replica_status *rs = pos >= 0 ? find_replica(&views[pos], sh->id)
							       : NULL;

		if (!rs || rs->term < *term)
			continue;
		if (rs->term > *term || strcmp(rs->role, "leader") == 0) {
			*term = rs->term;
			*leader = strcmp(rs->role, "leader") == 0 ? sh->replicas[k].node : rs->leader;
		}
	}
}

/* The leader and term to show for a shard (with statuses: as the replicas
 * say; else the map's), and the leader's own status, or NULL. */
static const struct rkv_replica_status *shown_leader(const struct rkv_cluster_map *m,
						      const struct node_view *views,
						      const struct rkv_shard *sh, bool status,
						      uint64_t *leader, uint64_t *term)
{
	*leader = sh->leader;
	*term = sh->term;
	if (status)
		shard_leader(m, views, sh, leader, term);
	if (*leader && node_pos(m, *leader) >= 0)
		return find_replica(&views[node_pos(m, *leader)], sh->id);
	return NULL;
}

static void print_cluster_json(const struct rkv_cluster_map *m, const struct node_view *views,
			       bool status)
{
	printf("{\"cluster_id\":\"%016llx\",\"map_version\":%llu,\"asked\":%llu,\"nodes\":[",
	       (unsigned long long)m->cluster_id, (unsigned long long)m->version,
	       (unsigned long long)m->node_id);
	for (size_t i = 0; i < m->node_count; i++) {
		const struct rkv_node *n = &m->nodes[i];

		printf("%s{\"id\":%llu,\"peer\":", i ? "," : "", (unsigned long long)n->id);
		print_json_text(n->peer);
		fputs(",\"client\":", stdout);
		print_json_text(n->client);
		fputs(",\"resp\":", stdout);
		print_json_text(n->resp);
		if (status) {
			printf(",\"reachable\":%s,\"answered\":%s",
			       reachable_from_asked(m, views, i) ? "true" : "false",
			       views[i].status ? "true" : "false");
			if (!views[i].status) {
				fputs(",\"error\":", stdout);
				print_json_text(views[i].error);
			}
		}
		putchar('}');
	}
	fputs("],\"shards\":[", stdout);
	for (size_t s = 0; s < m->shard_count; s++) {
		const struct rkv_shard *sh = &m->shards[s];
		uint64_t leader, term;
		const struct rkv_replica_status *leader_rs =
			shown_leader(m, views, sh, status, &leader, &term);

		printf("%s{\"id\":%u,\"slots\":[%u,%u],\"leader\":", s ? "," : "", sh->id,
		       sh->slot_start, sh->slot_end);
		if (leader)
			printf("%llu", (unsigned long long)leader);
		else
			fputs("null", stdout);
		printf(",\"term\":%llu,\"replicas\":[", (unsigned long long)term);
		for (unsigned k = 0; k < sh->replica_count; k++) {
			int pos = node_pos(m, sh->replicas[k].node);
			const struct rkv_replica_status *rs =
				status && pos >= 0 ? find_replica(&views[pos], sh->id) : NULL;

			printf("%s{\"node\":%llu,\"core\":", k ? "," : "",
			       (unsigned long long)sh->replicas[k].node);
			if (sh->replicas[k].core == UINT32_MAX)
				fputs("null", stdout);
			else
				printf("%u", sh->replicas[k].core);
			if (status && rs) {
				printf(",\"role\":\"%s\",\"term\":%llu,\"commit\":%llu,"
				       "\"applied\":%llu,\"last_index\":%llu",
				       rs->role, (unsigned long long)rs->term,
				       (unsigned long long)rs->commit,
				       (unsigned long long)rs->applied,
				       (unsigned long long)rs->last_index);
				printf(",\"sleeping\":%s", rs->sleeping ? "true" : "false");
				fputs(",\"snapshot\":", stdout);
				if (rs->snapshot[0])
					print_json_text(rs->snapshot);
				else
					fputs("null", stdout);
				for (unsigned f = 0; leader_rs && f < leader_rs->follower_count; f++)
					if (leader_rs->followers[f].node == sh->replicas[k].node)
						printf(",\"match\":%llu,\"lag\":%llu",
						       (unsigned long long)leader_rs->followers[f].match,
						       (unsigned long long)leader_rs->followers[f].lag);
			} else if (status) {
				fputs(",\"role\":\"unreachable\",\"commit\":null,\"applied\":null",
				      stdout);
			}
			putchar('}');
		}
		fputs("]}", stdout);
	}
	puts("]}");
}

static void print_cluster_table(const struct rkv_cluster_map *m, const struct node_view *views,
				bool status)
{
	printf("cluster %016llx, map version %llu (asked node %llu)\n\n",
	       (unsigned long long)m->cluster_id, (unsigned long long)m->version,
	       (unsigned long long)m->node_id);
	printf("+------+------------------------+------------------------+-----------+\n"
	       "| NODE | PEER                   | CLIENT                 | REACHABLE |\n"
	       "+------+------------------------+------------------------+-----------+\n");
	for (size_t i = 0; i < m->node_count; i++)
		printf("| %4llu | %-22s | %-22s | %-9s |\n", (unsigned long long)m->nodes[i].id,
		       m->nodes[i].peer, m->nodes[i].client[0] ? m->nodes[i].client : "?",
		       !status ? "-" : reachable_from_asked(m, views, i) ? "yes" : "NO");
	printf("+------+------------------------+------------------------+-----------+\n\n");
	/* The replicas column is as wide as it needs: no right border. */
	printf("+-------+--------+------+----------------------------------------------\n"
	       "| SHARD | LEADER | TERM | REPLICAS (node/core role commit/applied lag)\n"
	       "+-------+--------+------+----------------------------------------------\n");
	for (size_t s = 0; s < m->shard_count; s++) {
		const struct rkv_shard *sh = &m->shards[s];
		uint64_t leader, term;
		const struct rkv_replica_status *leader_rs =
			shown_leader(m, views, sh, status, &leader, &term);
		char line[1024] = "", leader_text[24];
		size_t used = 0;

		for (unsigned k = 0; k < sh->replica_count && used < sizeof line - 80; k++) {
			int pos = node_pos(m, sh->replicas[k].node);
			const struct rkv_replica_status *rs =
				status && pos >= 0 ? find_replica(&views[pos], sh->id) : NULL;
			long long lag = -1;

			for (unsigned f = 0; leader_rs && f < leader_rs->follower_count; f++)
				if (leader_rs->followers[f].node == sh->replicas[k].node)
					lag = (long long)leader_rs->followers[f].lag;
			used += (size_t)snprintf(line + used, sizeof line - used, "%s%llu/%d",
						 k ? ", " : "",
						 (unsigned long long)sh->replicas[k].node,
						 sh->replicas[k].core == UINT32_MAX ? -1
						 : (int)sh->replicas[k].core);
			if (rs)
				used += (size_t)snprintf(line + used, sizeof line - used,
							 " %s %llu/%llu%s%s%s", rs->role,
							 (unsigned long long)rs->commit,
							 (unsigned long long)rs->applied,
							 rs->sleeping ? " asleep" : "",
							 rs->snapshot[0] ? " snapshot " : "",
							 rs->snapshot);
			else if (status)
				used += (size_t)snprintf(line + used, sizeof line - used,
							 " unreachable");
			if (lag >= 0)
				used += (size_t)snprintf(line + used, sizeof line - used,
							 " lag %lld", lag);
		}
		if (leader)
			snprintf(leader_text, sizeof leader_text, "%llu", (unsigned long long)leader);
		else
			snprintf(leader_text, sizeof leader_text, "-");
		printf("| %5u | %6s | %4llu | %s\n", sh->id, leader_text,
		       (unsigned long long)term, line);
	}
	printf("+-------+--------+------+----------------------------------------------\n");
}

/* Asks node index i of the map for its status (the node asked: on the
 * connection already open). */
static void ask_status(struct cli *cli, const struct rkv_cluster_map *m, size_t i,
		       struct node_view *v)
{
	const char *addr = m->nodes[i].client;
	struct rkv_client *c = NULL;
	int rc;

	if (m->nodes[i].id == m->node_id) {
		c = cli->client;
	} else if (!addr[0]) {
		snprintf(v->error, sizeof v->error, "no client address known");
		return;
	} else if (rkv_connect_timeout(addr, cli->timeout_ms ? cli->timeout_ms : 2000, &c,
				       v->error, sizeof v->error) != 0) {
		return;
	}
	rkv_set_timeout(c, cli->timeout_ms);
	rc = rkv_cluster_status(c, &v->status);
	if (rc != 0)
		snprintf(v->error, sizeof v->error, "%s", rkv_last_error(c));
	if (c != cli->client)
		rkv_close(c);
}

static int cmd_cluster(struct cli *cli, int argc, char **argv)
{
	bool status = strcmp(argv[0], "status") == 0;
	struct rkv_cluster_map *m = NULL;
	struct node_view *views;
	int rc = rkv_cluster_map(cli->client, &m);

	(void)argc;
	if (rc != 0)
		return cli_report(cli, rc, "cluster");
	views = calloc(m->node_count, sizeof *views);
	if (!views) {
		rkv_cluster_map_free(m);
		fprintf(stderr, "ringkv: cluster: out of memory\n");
		return CLI_EXIT_ERROR;
	}
	for (size_t i = 0; status && i < m->node_count; i++)
		ask_status(cli, m, i, &views[i]);
	if (cli->format == CLI_JSON)
		print_cluster_json(m, views, status);
	else
		print_cluster_table(m, views, status);
	for (size_t i = 0; i < m->node_count; i++)
		rkv_cluster_status_free(views[i].status);
	free(views);
	rkv_cluster_map_free(m);
	return cli_finish_stdout("cluster");
}

/* ---- node health ---------------------------------------------------------- */

const struct cli_command cli_command_cluster = {
	"cluster", "status|map", "status: every node and shard of the cluster\n"
				 "(leaders, terms, indexes, lag, reachability);\n"
				 "map: the nodes, their addresses, shards and leaders",
	1, 1, .check = check_cluster, .run = cmd_cluster,
};
