/*
 * `ringkv rebalance [--dry-run | --apply] [--wait] [--rate BYTES/s]`:
 * evens out replicas and leaders over the nodes and their cores, driven by
 * this CLI over the native requests (there is no controller group yet to
 * keep the rebalance's intent: a killed CLI stops between two moves, and
 * running it again plans from where the cluster stands, so it goes on).
 *
 * 1. The view: the map of the node asked (its nodes and their addresses),
 *    then every node's own status (which replicas it holds, on which core,
 *    which it leads). Every node must answer: a node's replicas are known
 *    only to itself (the map lists founding members of groups the asked
 *    node does not hold). R is the replica count most shards have; a shard
 *    with another count (a move under way or stopped half-way) refuses the
 *    rebalance.
 * 2. The plan: cluster/planner.c, with the rule of `shard move` today that
 *    a node may not host a shard again whose founding replica it held
 *    (computed from the map's nodes, S and R as cluster/map.c places them),
 *    and without moves between two cores of one node (a move's source and
 *    target are two nodes). Printed as a table (replicas and leaders per
 *    node before and after, per core after) and the list, or with --json as
 *    one object. Without --apply nothing changes.
 * 3. --apply: the moves one at a time, each to its end as `ringkv shard
 *    move --wait` does it (tools/shard_move.c), printing "move n of m" (and
 *    with --wait each move's phases); a failed move stops the rebalance.
 *    Then the view is taken again and the leadership transfers planned from
 *    it (a move of a leading replica hands its leadership on to whichever
 *    voter is most caught up, so the leaders after the moves are known only
 *    then), each asked of the shard's leader (ShardMoveRequest
 *    .transfer_leader with the target) and watched until the target leads.
 *
 * Invariant: without --apply no request that changes anything is sent.
 */
#include "tools/rebalance.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/map.h"
#include "cluster/planner.h"
#include "tools/cli.h"
#include "tools/cli_json.h"
#include "tools/cluster_views.h"
#include "tools/libringkv.h"
#include "tools/shard_move.h"

#define TRANSFER_LIMIT_MS 30000
#define TRANSFER_RETRY_MS 2000
#define POLL_MS 200

struct view {
	struct rkv_cluster_map *map;
	struct rkv_cluster_status *st[PLANNER_MAX_NODES];
	struct planner_node nodes[PLANNER_MAX_NODES];
	unsigned node_count;
	struct planner_shard *shards;
	uint32_t shard_count;
	unsigned replicas;            /* R */
	struct cluster_map founding;  /* where the founding replicas were */
	bool have_founding;
};

/* The reason on stderr, and with --json as {"done": false, "error": ...}. */
#define complain(a, ...) shard_move_complain("rebalance", (a)->json, NULL, 0, __VA_ARGS__)

static void view_free(struct view *v)
{
	for (unsigned i = 0; i < v->node_count; i++)
		rkv_cluster_status_free(v->st[i]);
	free(v->shards);
	rkv_cluster_map_free(v->map);
	memset(v, 0, sizeof *v);
}

/* A node that held a founding replica of a shard may not host it again
 * (HOST refuses it: docs/cluster/membership.md); any other may. */
static bool may_host(void *data, uint32_t shard, uint64_t node)
{
	const struct view *v = data;
	int idx;

	if (!v->have_founding)
		return true;
	idx = cluster_map_index(&v->founding, node);
	return idx < 0 || cluster_map_rank(&v->founding, shard, (unsigned)idx) < 0;
}

/* R: the replica count most shards have (the smaller on a tie). */
static unsigned usual_count(const struct view *v)
{
	unsigned seen[PLANNER_MAX_REPLICAS + 1] = { 0 }, best = 1;

	for (uint32_t s = 0; s < v->shard_count; s++)
		seen[v->shards[s].replica_count]++;
	for (unsigned r = 1; r <= PLANNER_MAX_REPLICAS; r++)
		if (seen[r] > seen[best])
			best = r;
	return best;
}

static void founding_map(struct view *v)
{
	struct cluster_map_node nodes[CLUSTER_MAP_MAX_NODES];
	char err[128];

	memset(nodes, 0, sizeof nodes);
	for (unsigned i = 0; i < v->node_count && i < CLUSTER_MAP_MAX_NODES; i++) {
		nodes[i].id = v->nodes[i].id;
		snprintf(nodes[i].host, sizeof nodes[i].host, "node-%u", i);
		nodes[i].port = 1;
	}
	/* The placement depends on the sorted ids, S and R only (not on the
	 * addresses or the token). */
	v->have_founding = v->node_count <= CLUSTER_MAP_MAX_NODES &&
			   cluster_map_init(&v->founding, nodes, v->node_count, v->shard_count,
					    v->replicas, "", err, sizeof err) == 0;
}

/* Step 1: the map of the node asked, then every node's own view. 0; or an
 * exit status with the reason printed. */
static int view_take(const struct rebalance_args *a, struct view *v)
{
	struct rkv_client *c;
	uint64_t *term;
	char err[600];
	int rc;

	if (rkv_connect_timeout(a->address, a->timeout_ms, &c, err, sizeof err) != 0) {
		complain(a, "%s", err);
		return REBALANCE_EXIT_USAGE;
	}
	rkv_set_timeout(c, a->timeout_ms);
	rc = rkv_cluster_map(c, &v->map);
	if (rc != 0) {
		complain(a, "%s", rkv_last_error(c));
		rkv_close(c);
		return rc < 0 ? REBALANCE_EXIT_USAGE : REBALANCE_EXIT_REFUSED;
	}
	rkv_close(c);
	if (v->map->node_count > PLANNER_MAX_NODES || v->map->shard_count > UINT32_MAX) {
		complain(a, "the map has %zu nodes: at most %d planned", v->map->node_count,
			 PLANNER_MAX_NODES);
		return REBALANCE_EXIT_REFUSED;
	}
	v->shard_count = (uint32_t)v->map->shard_count;
	v->shards = calloc(v->shard_count ? v->shard_count : 1, sizeof *v->shards);
	term = calloc(v->shard_count ? v->shard_count : 1, sizeof *term);
	if (!v->shards || !term) {
		free(term);
		complain(a, "out of memory");
		return REBALANCE_EXIT_REFUSED;
	}
	for (uint32_t s = 0; s < v->shard_count; s++)
		v->shards[s].id = s;
	for (size_t i = 0; i < v->map->node_count; i++) {
		struct rkv_cluster_status *st;
		uint64_t id = v->map->nodes[i].id;

		st = cluster_views_status(v->map, id, a->timeout_ms, err, sizeof err);
		if (!st) {
			complain(a, "node %" PRIu64 " does not answer (%s): a rebalance needs "
				 "every node's own view of its replicas", id, err);
			free(term);
			return REBALANCE_EXIT_REFUSED;
		}
		v->st[v->node_count] = st;
		v->nodes[v->node_count++] = (struct planner_node){
			.id = id, .state = PLANNER_NODE_UP,
			.cores = st->cores == 0 ? 1
				 : st->cores > PLANNER_MAX_CORES ? PLANNER_MAX_CORES : st->cores,
		};
		for (size_t r = 0; r < st->replica_count; r++) {
			const struct rkv_replica_status *rs = &st->replicas[r];
			struct planner_shard *sh;

			if (rs->shard >= v->shard_count)
				continue;
			sh = &v->shards[rs->shard];
			if (sh->replica_count < PLANNER_MAX_REPLICAS)
				sh->replicas[sh->replica_count++] =
					(struct planner_replica){ id, rs->core };
			if (strcmp(rs->role, "leader") == 0 && rs->term >= term[rs->shard]) {
				term[rs->shard] = rs->term;
				sh->leader = id;
			}
		}
	}
	free(term);
	v->replicas = usual_count(v);
	founding_map(v);
	return 0;
}

/* Step 2. 0; or an exit status with the reason printed. */
static int view_plan(const struct rebalance_args *a, struct view *v, struct planner_plan *p)
{
	struct planner_input in = {
		.nodes = v->nodes, .node_count = v->node_count, .shards = v->shards,
		.shard_count = v->shard_count, .replicas = v->replicas, .core_moves = false,
		.may_host = may_host, .data = v,
	};
	char err[300];

	if (planner_plan(&in, p, err, sizeof err) != 0) {
		complain(a, "refused: %s", err);
		return REBALANCE_EXIT_REFUSED;
	}
	return 0;
}

struct counts {
	unsigned replicas[PLANNER_MAX_NODES], leaders[PLANNER_MAX_NODES];
};

static void count(const struct view *v, const struct planner_shard *shards, struct counts *c)
{
	memset(c, 0, sizeof *c);
	for (uint32_t s = 0; s < v->shard_count; s++)
		for (unsigned k = 0; k < shards[s].replica_count; k++)
			for (unsigned i = 0; i < v->node_count; i++)
				if (v->nodes[i].id == shards[s].replicas[k].node) {
					c->replicas[i]++;
					c->leaders[i] += shards[s].leader == v->nodes[i].id;
				}
}

static const char *yes(bool b)
{
	return b ? "yes" : "no";
}

static void print_plan(const struct rebalance_args *a, const struct view *v,
		       const struct planner_plan *p)
{
	struct planner_shard *after = malloc((v->shard_count ? v->shard_count : 1) * sizeof *after);
	struct counts before, then;

	if (!after)
		return;
	memcpy(after, v->shards, v->shard_count * sizeof *after);
	planner_apply(after, v->shard_count, p);
	count(v, v->shards, &before);
	count(v, after, &then);
	if (a->json) {
		printf("{\"cluster_id\":\"%016" PRIx64 "\",\"asked\":%" PRIu64 ",\"shards\":%u,"
		       "\"replicas\":%u,\"apply\":%s,\"nodes\":[", v->map->cluster_id,
		       v->map->node_id, v->shard_count, v->replicas, a->apply ? "true" : "false");
		for (unsigned i = 0; i < v->node_count; i++)
			printf("%s{\"id\":%" PRIu64 ",\"replicas\":%u,\"replicas_after\":%u,"
			       "\"leaders\":%u,\"leaders_after\":%u}", i ? "," : "",
			       v->nodes[i].id, before.replicas[i], then.replicas[i],
			       before.leaders[i], then.leaders[i]);
		printf("],\"moves\":[");
		for (size_t i = 0; i < p->move_count; i++) {
			const struct planner_move *m = &p->moves[i];

			printf("%s{\"shard\":%u,\"from\":%" PRIu64 ",\"from_core\":%u,\"to\":%" PRIu64
			       ",\"to_core\":%u,\"leader\":%s}", i ? "," : "", m->shard, m->from,
			       m->from_core, m->to, m->to_core, m->leader ? "true" : "false");
		}
		printf("],\"transfers\":[");
		for (size_t i = 0; i < p->transfer_count; i++) {
			const struct planner_transfer *t = &p->transfers[i];

			printf("%s{\"shard\":%u,\"from\":%" PRIu64 ",\"to\":%" PRIu64
			       ",\"to_core\":%u}", i ? "," : "", t->shard, t->from, t->to,
			       t->to_core);
		}
		printf("],\"balanced\":{\"replicas\":%s,\"cores\":%s,\"leaders\":%s,"
		       "\"leader_cores\":%s},\"note\":", p->replicas_balanced ? "true" : "false",
		       p->cores_balanced ? "true" : "false", p->leaders_balanced ? "true" : "false",
		       p->leader_cores_balanced ? "true" : "false");
		cli_json_string(stdout, p->note);
		printf("%s\n", a->apply ? "," : "}");
		free(after);
		fflush(stdout);
		return;
	}
	printf("cluster %016" PRIx64 " (asked node %" PRIu64 "): %u nodes, %u shards, R = %u\n\n",
	       v->map->cluster_id, v->map->node_id, v->node_count, v->shard_count, v->replicas);
	printf("NODE  REPLICAS    LEADERS     PER CORE AFTER (core: replicas/leaders)\n");
	for (unsigned i = 0; i < v->node_count; i++) {
		char rep[24], led[24];

		snprintf(rep, sizeof rep, "%u -> %u", before.replicas[i], then.replicas[i]);
		snprintf(led, sizeof led, "%u -> %u", before.leaders[i], then.leaders[i]);
		printf("%-5" PRIu64 " %-11s %-11s", v->nodes[i].id, rep, led);
		for (uint32_t c = 0; c < v->nodes[i].cores; c++) {
			unsigned r = 0, l = 0;

			for (uint32_t s = 0; s < v->shard_count; s++)
				for (unsigned k = 0; k < after[s].replica_count; k++)
					if (after[s].replicas[k].node == v->nodes[i].id &&
					    after[s].replicas[k].core == c) {
						r++;
						l += after[s].leader == v->nodes[i].id;
					}
			printf("%s%u: %u/%u", c ? ", " : " ", c, r, l);
		}
		printf("\n");
	}
	printf("\nplan: %zu move%s, %zu leadership transfer%s\n", p->move_count,
	       p->move_count == 1 ? "" : "s", p->transfer_count,
	       p->transfer_count == 1 ? "" : "s");
	for (size_t i = 0; i < p->move_count; i++) {
		const struct planner_move *m = &p->moves[i];

		printf("  move %zu of %zu: shard %u from node %" PRIu64 " core %u to node %" PRIu64
		       " core %u%s\n", i + 1, p->move_count, m->shard, m->from, m->from_core,
		       m->to, m->to_core, m->leader ? " (led there: handed on first)" : "");
	}
	for (size_t i = 0; i < p->transfer_count; i++) {
		const struct planner_transfer *t = &p->transfers[i];

		printf("  transfer %zu of %zu: shard %u from node %" PRIu64 " to node %" PRIu64
		       " (core %u)\n", i + 1, p->transfer_count, t->shard, t->from, t->to,
		       t->to_core);
	}
	if (p->move_count && p->transfer_count)
		printf("  (the transfers are planned again once the moves are done: a moved "
		       "leader hands its leadership to the most caught-up voter)\n");
	printf("after it: replicas even over nodes %s, over each node's cores %s; leaders even "
	       "over nodes %s, over each node's cores %s\n", yes(p->replicas_balanced),
	       yes(p->cores_balanced), yes(p->leaders_balanced), yes(p->leader_cores_balanced));
	if (p->note[0])
		printf("note: %s\n", p->note);
	free(after);
	fflush(stdout);
}

/* Does node `id` lead shard `shard`, by its own status? -1: no answer. */
static int leads(const struct view *v, uint64_t id, uint32_t shard, int timeout_ms)
{
	char err[256];
	struct rkv_cluster_status *st = cluster_views_status(v->map, id, timeout_ms, err,
							     sizeof err);
	int yes = 0;

	if (!st)
		return -1;
	for (size_t i = 0; i < st->replica_count; i++)
		yes |= st->replicas[i].shard == shard && strcmp(st->replicas[i].role, "leader") == 0;
	rkv_cluster_status_free(st);
	return yes;
}

/* Asks node `ask` to hand shard t->shard's leadership to t->to; follows
 * one NOT_LEADER hint. 0 asked; else the reason in why. */
static int transfer_ask(const struct rebalance_args *a, const struct view *v,
			const struct planner_transfer *t, uint64_t ask, char *why, size_t whylen)
{
	struct rkv_move_request q = { .shard = t->shard, .to_node = t->to, .transfer_leader = 1 };

	for (int hop = 0; hop < 2; hop++) {
		const char *addr = cluster_views_client(v->map, ask);
		uint64_t hint = 0;
		struct rkv_client *c;
		struct rkv_move mv;
		int rc;

		if (!addr || rkv_connect_timeout(addr, a->timeout_ms, &c, why, whylen) != 0)
			return -1;
		rkv_set_timeout(c, a->timeout_ms);
		rc = rkv_shard_move_ask(c, &q, &mv, &hint);
		if (rc != 0)
			snprintf(why, whylen, "%s", rkv_last_error(c));
		rkv_close(c);
		if (rc == 0)
			return 0;
		if (rc != RKV_STATUS_NOT_LEADER || !hint || hint == ask)
			return -1;
		ask = hint;
	}
	return -1;
}

/* One transfer, watched until t->to leads (bounded). 0, or 1 with why. */
static int transfer_run(const struct rebalance_args *a, const struct view *v,
			const struct planner_transfer *t, char *why, size_t whylen)
{
	int64_t start = shard_move_now_ms(), asked = 0;
	char reason[300] = "";

	while (shard_move_now_ms() - start < TRANSFER_LIMIT_MS) {
		int led = leads(v, t->to, t->shard, a->timeout_ms);

		if (led == 1)
			return 0;
		if (!asked || shard_move_now_ms() - asked >= TRANSFER_RETRY_MS) {
			asked = shard_move_now_ms();
			if (transfer_ask(a, v, t, t->from, reason, sizeof reason) != 0 && !a->json)
				printf("  shard %u: %s (asking again)\n", t->shard, reason);
		}
		shard_move_sleep_ms(POLL_MS);
	}
	snprintf(why, whylen, "node %" PRIu64 " does not lead shard %u after %d s%s%s", t->to,
		 t->shard, TRANSFER_LIMIT_MS / 1000, reason[0] ? ": " : "", reason);
	return 1;
}

/* Step 3. 0 done, or 1 with why and *moved, *transferred so far. */
static int apply(const struct rebalance_args *a, struct view *v, struct planner_plan *p,
		 size_t *moved, size_t *transferred, char *why, size_t whylen)
{
	int rc;

	for (; *moved < p->move_count; (*moved)++) {
		const struct planner_move *mv = &p->moves[*moved];
		struct shard_move_args m = {
			.address = a->address, .timeout_ms = a->timeout_ms, .wait = true,
			.quiet = a->json || !a->wait, .shard = mv->shard, .from = mv->from,
			.to = mv->to, .to_core = mv->to_core, .rate = a->rate,
		};

		if (!a->json) {
			printf("move %zu of %zu: shard %u from node %" PRIu64 " to node %" PRIu64
			       " core %u\n", *moved + 1, p->move_count, mv->shard, mv->from, mv->to,
			       mv->to_core);
			fflush(stdout);
		}
		rc = shard_move_run(&m);
		if (rc == SHARD_MOVE_EXIT_REFUSED) {
			/* This very move under way (a rebalance whose CLI died
			 * started it, still in HOST so the view did not show
			 * it): follow it to its end. Anything else fails. */
			if (!a->json)
				printf("move %zu of %zu: following the move of shard %u under way, "
				       "if it is this one\n", *moved + 1, p->move_count, mv->shard);
			m.follow = true;
			rc = shard_move_run(&m);
		}
		if (rc != SHARD_MOVE_EXIT_OK) {
			snprintf(why, whylen, "move %zu of %zu (shard %u from node %" PRIu64
				 " to node %" PRIu64 ") failed: see above; the moves before it "
				 "are done, run the rebalance again to go on", *moved + 1,
				 p->move_count, mv->shard, mv->from, mv->to);
			return 1;
		}
	}
	if (p->move_count) {
		/* The leaders as the moves left them: plan the transfers again
		 * (a reason goes to stderr only: the JSON object is open). */
		struct rebalance_args plain = *a;

		plain.json = false;
		planner_plan_free(p);
		view_free(v);
		if ((rc = view_take(&plain, v)) != 0 || (rc = view_plan(&plain, v, p)) != 0) {
			snprintf(why, whylen, "the view after the moves could not be planned");
			return 1;
		}
		if (p->move_count) {
			snprintf(why, whylen, "the cluster changed while the moves ran: %zu more "
				 "planned; run the rebalance again", p->move_count);
			return 1;
		}
	}
	for (; *transferred < p->transfer_count; (*transferred)++) {
		const struct planner_transfer *t = &p->transfers[*transferred];

		if (!a->json) {
			printf("transfer %zu of %zu: shard %u leadership from node %" PRIu64
			       " to node %" PRIu64 "\n", *transferred + 1, p->transfer_count,
			       t->shard, t->from, t->to);
			fflush(stdout);
		}
		if (transfer_run(a, v, t, why, whylen) != 0)
			return 1;
	}
	return 0;
}

int rebalance_run(const struct rebalance_args *a)
{
	struct view v = { 0 };
	struct planner_plan p = { 0 };
	char why[600] = "";
	size_t moved = 0, transferred = 0;
	int rc;

	rc = view_take(a, &v);
	if (rc == 0)
		rc = view_plan(a, &v, &p);
	if (rc != 0)
		goto out;
	print_plan(a, &v, &p);
	if (!a->apply)
		goto out;
	rc = apply(a, &v, &p, &moved, &transferred, why, sizeof why);
	if (rc != 0) {
		rc = REBALANCE_EXIT_REFUSED;
		fprintf(stderr, "ringkv: rebalance: %s\n", why);
		if (a->json) {
			printf("\"done\":false,\"moved\":%zu,\"transferred\":%zu,\"error\":", moved,
			       transferred);
			cli_json_string(stdout, why);
			printf("}\n");
		}
		goto out;
	}
	if (a->json)
		printf("\"done\":true,\"moved\":%zu,\"transferred\":%zu}\n", moved, transferred);
	else
		printf("rebalanced: %zu move%s, %zu leadership transfer%s\n", moved,
		       moved == 1 ? "" : "s", transferred, transferred == 1 ? "" : "s");
out:
	fflush(stdout);
	planner_plan_free(&p);
	view_free(&v);
	return rc;
}

/* ---- the command line: ringkv rebalance --------------------------------- */

/* rebalance's options. */
static struct {
	bool apply;           /* --apply */
	bool dry_run;         /* --dry-run (the default) */
	bool wait;            /* --wait */
	const char *rate;     /* --rate BYTES/s */
} rebalance_opts;

static int rebalance_option(int argc, char **argv, int *i)
{
	int taken;

	if ((taken = cli_flag(argv, *i, "apply", &rebalance_opts.apply)) != 0 ||
	    (taken = cli_flag(argv, *i, "dry-run", &rebalance_opts.dry_run)) != 0 ||
	    (taken = cli_flag(argv, *i, "wait", &rebalance_opts.wait)) != 0)
		return taken;
	return cli_value(argc, argv, i, "rate", &rebalance_opts.rate);
}

static int check_rebalance(const struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	(void)argv;
	if (rebalance_opts.apply && rebalance_opts.dry_run)
		return cli_usage_error("rebalance takes --dry-run or --apply, not both");
	if ((rebalance_opts.wait || rebalance_opts.rate) && !rebalance_opts.apply)
		return cli_usage_error("--wait and --rate are rebalance --apply's");
	return shard_move_check_rate(rebalance_opts.rate);
}

static int cmd_rebalance(struct cli *cli, int argc, char **argv)
{
	struct rebalance_args a = {
		.address = cli->address, .timeout_ms = cli->timeout_ms,
		.json = cli->format == CLI_JSON, .apply = rebalance_opts.apply,
		.wait = rebalance_opts.wait,
	};

	(void)argc;
	(void)argv;
	if (rebalance_opts.rate)
		shard_move_parse_rate(rebalance_opts.rate, &a.rate);
	return rebalance_run(&a);
}

const struct cli_command cli_command_rebalance = {
	"rebalance", "[--apply]",
	"plan the moves and leadership transfers that\n"
	"even out replicas (per node and per core) and\n"
	"leaders, from every node's own view, and print\n"
	"them (--dry-run, the default: nothing changes);\n"
	"--apply: the moves one at a time (move n of m;\n"
	"--wait: each move's phases; --rate BYTES/s caps\n"
	"each), then the transfers; a stopped rebalance\n"
	"goes on when run again; exit 1 refused or a move\n"
	"failed, 2 usage or no node reachable",
	0, 0, .offline = cli_offline, .option = rebalance_option,
	.check = check_rebalance, .run = cmd_rebalance,
};
