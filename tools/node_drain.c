/*
 * `ringkv node drain ID [--wait] [--dry-run]`: empties one node of its
 * replicas, driven by this CLI over the native requests (there is no
 * controller group yet to keep the drain's intent: a killed CLI stops the
 * drain between two moves, and running it again plans from where the
 * cluster stands).
 *
 * 1. Every node's own view (ClusterStatus): which replicas it holds, on
 *    which core, and which it leads. The drained node must answer.
 * 2. The plan, made whole before anything changes: for each replica of the
 *    node (by shard id), a target that does not hold the shard and answers,
 *    the one with the fewest replicas (the plan's earlier moves counted),
 *    then the lowest id; on it, the core with the fewest replicas, then
 *    the lowest. A replica no node can take refuses the whole drain.
 * 3. Leadership first: every shard the node leads is handed to another
 *    voter (ShardMoveRequest.transfer_leader) and watched until another
 *    node leads it; then the moves, one at a time, each to its end
 *    (tools/shard_move.c), with "move n of m" and, with --wait, its phases.
 *
 * Invariant: --dry-run sends no request that changes anything.
 */
#include "tools/node_drain.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli_json.h"
#include "tools/cluster_views.h"
#include "tools/libringkv.h"
#include "tools/shard_move.h"

#define DRAIN_MAX_NODES 64
#define DRAIN_MAX_CORES 256
#define TRANSFER_LIMIT_MS 30000
#define TRANSFER_RETRY_MS 2000

struct drain_node {
	uint64_t id;
	bool answers;
	uint32_t cores;
	unsigned replicas;
	unsigned per_core[DRAIN_MAX_CORES];
	struct rkv_cluster_status *st;
};

struct drain_move {
	uint32_t shard;
	uint64_t to;
	uint32_t core;
	bool led;                     /* the drained node leads the shard */
};

struct drain {
	const struct node_drain_args *a;
	struct rkv_cluster_map *map;
	struct drain_node nodes[DRAIN_MAX_NODES];
	size_t nnodes;
	struct drain_node *self;      /* the drained node */
	struct drain_move *moves;
	size_t nmoves;
};

#define complain(a, ...) shard_move_complain("node drain", (a)->json, "node", (a)->node, __VA_ARGS__)

static bool holds(const struct drain_node *n, uint32_t shard, const char **role)
{
	for (size_t i = 0; n->st && i < n->st->replica_count; i++)
		if (n->st->replicas[i].shard == shard) {
			if (role)
				*role = n->st->replicas[i].role;
			return true;
		}
	return false;
}

static void gather(struct drain *d)
{
	char err[256];

	for (size_t i = 0; i < d->map->node_count && d->nnodes < DRAIN_MAX_NODES; i++) {
		struct drain_node *n = &d->nodes[d->nnodes++];

		n->id = d->map->nodes[i].id;
		n->st = cluster_views_status(d->map, n->id, d->a->timeout_ms, err, sizeof err);
		n->answers = n->st != NULL;
		if (!n->st)
			continue;
		n->cores = n->st->cores < DRAIN_MAX_CORES ? n->st->cores : DRAIN_MAX_CORES;
		n->replicas = (unsigned)n->st->replica_count;
		for (size_t r = 0; r < n->st->replica_count; r++)
			if (n->st->replicas[r].core < n->cores)
				n->per_core[n->st->replicas[r].core]++;
		if (n->id == d->a->node)
			d->self = n;
	}
}

/* The plan; 0, or 1 with the reason (a replica no node can take). */
static int plan(struct drain *d, char *why, size_t whylen)
{
	const struct rkv_cluster_status *st = d->self->st;

	d->moves = calloc(st->replica_count ? st->replica_count : 1, sizeof *d->moves);
	if (!d->moves) {
		snprintf(why, whylen, "out of memory");
		return 1;
	}
	for (uint32_t shard = 0; shard < d->map->shard_count; shard++) {
		struct drain_node *best = NULL;
		struct drain_move *mv;
		const char *role = "";

		if (!holds(d->self, shard, &role))
			continue;
		for (size_t i = 0; i < d->nnodes; i++) {
			struct drain_node *n = &d->nodes[i];

			if (n == d->self || !n->answers || !n->cores || holds(n, shard, NULL))
				continue;
			if (!best || n->replicas < best->replicas)
				best = n;
		}
		if (!best) {
			snprintf(why, whylen, "no node can take shard %u's replica: every other "
				 "node holds the shard or does not answer", shard);
			return 1;
		}
		mv = &d->moves[d->nmoves++];
		mv->shard = shard;
		mv->to = best->id;
		mv->led = strcmp(role, "leader") == 0;
		mv->core = 0;
		for (uint32_t c = 1; c < best->cores; c++)
			if (best->per_core[c] < best->per_core[mv->core])
				mv->core = c;
		best->replicas++;
		best->per_core[mv->core]++;
		d->self->replicas--;
	}
	return 0;
}

static void print_plan(const struct drain *d)
{
	unsigned leads = 0;

	for (size_t i = 0; i < d->nmoves; i++)
		leads += d->moves[i].led;
	if (d->a->json) {
		printf("{\"node\":%" PRIu64 ",\"dry_run\":%s,\"leaderships\":%u,\"moves\":[",
		       d->a->node, d->a->dry_run ? "true" : "false", leads);
		for (size_t i = 0; i < d->nmoves; i++)
			printf("%s{\"shard\":%u,\"from\":%" PRIu64 ",\"to\":%" PRIu64
			       ",\"to_core\":%u,\"leader\":%s}", i ? "," : "", d->moves[i].shard,
			       d->a->node, d->moves[i].to, d->moves[i].core,
			       d->moves[i].led ? "true" : "false");
		printf("]%s\n", d->a->dry_run ? "}" : ",");
		return;
	}
	printf("node %" PRIu64 ": %zu replica%s to move, %u leadership%s to hand on first\n",
	       d->a->node, d->nmoves, d->nmoves == 1 ? "" : "s", leads, leads == 1 ? "" : "s");
	for (size_t i = 0; i < d->nmoves; i++)
		printf("  move %zu of %zu: shard %u from node %" PRIu64 " to node %" PRIu64
		       " core %u%s\n", i + 1, d->nmoves, d->moves[i].shard, d->a->node,
		       d->moves[i].to, d->moves[i].core, d->moves[i].led ? " (led here)" : "");
	fflush(stdout);
}

/* Asks the drained node to hand shard `shard`'s leadership on. 0, or a
 * status > 0 with the reason, or -1 (it does not answer). */
static int transfer_ask(const struct drain *d, uint32_t shard, char *why, size_t whylen)
{
	const char *addr = cluster_views_client(d->map, d->a->node);
	struct rkv_move_request q = { .shard = shard, .transfer_leader = 1 };
	struct rkv_client *c;
	struct rkv_move mv;
	int rc;

	if (!addr || rkv_connect_timeout(addr, d->a->timeout_ms, &c, why, whylen) != 0)
		return -1;
	rkv_set_timeout(c, d->a->timeout_ms);
	rc = rkv_shard_move_ask(c, &q, &mv, NULL);
	if (rc != 0)
		snprintf(why, whylen, "%s", rkv_last_error(c));
	rkv_close(c);
	return rc;
}

/* Node `id` still leads some shard: how many (-1: it does not answer). */
static int leads(const struct drain *d)
{
	char err[256];
	struct rkv_cluster_status *st = cluster_views_status(d->map, d->a->node,
							     d->a->timeout_ms, err, sizeof err);
	int n = 0;

	if (!st)
		return -1;
	for (size_t i = 0; i < st->replica_count; i++)
		n += strcmp(st->replicas[i].role, "leader") == 0;
	rkv_cluster_status_free(st);
	return n;
}

/* Step 3a: every leadership away. 0, or 1 with the reason. */
static int hand_on_leaders(const struct drain *d, char *why, size_t whylen)
{
	int64_t start = shard_move_now_ms(), asked = 0;
	int n;

	while ((n = leads(d)) != 0) {
		if (n < 0) {
			snprintf(why, whylen, "node %" PRIu64 " does not answer", d->a->node);
			return 1;
		}
		if (shard_move_now_ms() - start > TRANSFER_LIMIT_MS) {
			snprintf(why, whylen, "node %" PRIu64 " still leads %d shard%s after %d s",
				 d->a->node, n, n == 1 ? "" : "s", TRANSFER_LIMIT_MS / 1000);
			return 1;
		}
		if (!asked || shard_move_now_ms() - asked >= TRANSFER_RETRY_MS) {
			char err[256];
			struct rkv_cluster_status *st = cluster_views_status(
				d->map, d->a->node, d->a->timeout_ms, err, sizeof err);

			asked = shard_move_now_ms();
			for (size_t i = 0; st && i < st->replica_count; i++) {
				char reason[300];
				int rc;

				if (strcmp(st->replicas[i].role, "leader") != 0)
					continue;
				rc = transfer_ask(d, st->replicas[i].shard, reason, sizeof reason);
				if (!d->a->json)
					printf("shard %u: leadership away from node %" PRIu64 "%s%s\n",
					       st->replicas[i].shard, d->a->node,
					       rc ? ": " : "", rc ? reason : "");
			}
			rkv_cluster_status_free(st);
			fflush(stdout);
		}
		shard_move_sleep_ms(200);
	}
	return 0;
}

int node_drain_run(const struct node_drain_args *a)
{
	struct drain d = { .a = a };
	struct rkv_client *c;
	char err[600] = "";
	int rc, exit_code = NODE_DRAIN_EXIT_REFUSED;
	size_t done = 0;

	if (rkv_connect_timeout(a->address, a->timeout_ms, &c, err, sizeof err) != 0) {
		complain(a, "%s", err);
		return NODE_DRAIN_EXIT_USAGE;
	}
	rkv_set_timeout(c, a->timeout_ms);
	rc = rkv_cluster_map(c, &d.map);
	if (rc != 0) {
		complain(a, "%s", rkv_last_error(c));
		rkv_close(c);
		return rc < 0 ? NODE_DRAIN_EXIT_USAGE : NODE_DRAIN_EXIT_REFUSED;
	}
	rkv_close(c);
	if (!cluster_views_client(d.map, a->node)) {
		complain(a, "node %" PRIu64 " is not in the cluster (or its address is not known)",
			 a->node);
		goto out;
	}
	gather(&d);
	if (!d.self) {
		complain(a, "node %" PRIu64 " does not answer: a drain moves a live node's "
			 "replicas", a->node);
		goto out;
	}
	if (plan(&d, err, sizeof err) != 0) {
		complain(a, "refused: %s", err);
		goto out;
	}
	print_plan(&d);
	if (a->dry_run) {
		exit_code = NODE_DRAIN_EXIT_OK;
		goto out;
	}
	if (hand_on_leaders(&d, err, sizeof err) != 0)
		goto failed;
	for (; done < d.nmoves; done++) {
		const struct drain_move *mv = &d.moves[done];
		struct shard_move_args m = {
			.address = a->address, .timeout_ms = a->timeout_ms, .wait = true,
			.quiet = a->json || !a->wait, .shard = mv->shard, .from = a->node,
			.to = mv->to, .to_core = mv->core, .rate = a->rate,
		};

		if (!a->json) {
			printf("move %zu of %zu: shard %u from node %" PRIu64 " to node %" PRIu64
			       " core %u\n", done + 1, d.nmoves, mv->shard, a->node, mv->to,
			       mv->core);
			fflush(stdout);
		}
		rc = shard_move_run(&m);
		if (rc != SHARD_MOVE_EXIT_OK) {
			snprintf(err, sizeof err, "move %zu of %zu (shard %u to node %" PRIu64
				 ") failed: see above; the moves before it are done, run the drain "
				 "again to go on", done + 1, d.nmoves, mv->shard, mv->to);
			goto failed;
		}
	}
	if (a->json)
		printf("\"done\":true}\n");
	else
		printf("node %" PRIu64 ": drained (%zu replica%s moved)\n", a->node, d.nmoves,
		       d.nmoves == 1 ? "" : "s");
	exit_code = NODE_DRAIN_EXIT_OK;
	goto out;
failed:
	fprintf(stderr, "ringkv: node drain: %s\n", err);
	if (a->json) {
		printf("\"done\":false,\"moved\":%zu,\"error\":", done);
		cli_json_string(stdout, err);
		printf("}\n");
	}
out:
	fflush(stdout);
	for (size_t i = 0; i < d.nnodes; i++)
		rkv_cluster_status_free(d.nodes[i].st);
	free(d.moves);
	rkv_cluster_map_free(d.map);
	return exit_code;
}
