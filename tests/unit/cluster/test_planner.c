/*
 * Tests for cluster/planner.c, the rebalance planner: fixed cases (a
 * balanced map needs nothing, a fourth empty node gets its share, a drain
 * empties a node, what may not host is never a target, the refusals) and
 * generated views (seeded, bounded): each plan is replayed move by move on
 * its view, checking every promise of cluster/planner.h, then planned again
 * (no moves: convergence) and planned twice (the same plan: determinism).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/planner.h"
#include "raft/raft.h"

#define GEN_VIEWS 400          /* generated views */
#define GEN_MAX_NODES 8
#define GEN_MAX_SHARDS 48

struct view {
	struct planner_node nodes[PLANNER_MAX_NODES];
	unsigned node_count;
	struct planner_shard shards[GEN_MAX_SHARDS * 4];
	uint32_t shard_count;
	unsigned replicas;
};

/* raft/'s seeded generator, one seed per view. */
static unsigned below(struct raft_rng *rng, unsigned n)
{
	return (unsigned)raft_rng_below(rng, n);
}

static int node_index(const struct view *v, uint64_t id)
{
	for (unsigned i = 0; i < v->node_count; i++)
		if (v->nodes[i].id == id)
			return (int)i;
	return -1;
}

static int holds(const struct planner_shard *s, uint64_t node)
{
	for (unsigned k = 0; k < s->replica_count; k++)
		if (s->replicas[k].node == node)
			return (int)k;
	return -1;
}

/* The founding-like view: N nodes of C cores, S shards, R replicas on R
 * consecutive nodes, leader the first, the core rotating. */
static void dealt(struct view *v, unsigned n, unsigned cores, uint32_t shards, unsigned r)
{
	memset(v, 0, sizeof *v);
	v->node_count = n;
	v->shard_count = shards;
	v->replicas = r;
	for (unsigned i = 0; i < n; i++)
		v->nodes[i] = (struct planner_node){ .id = i + 1, .cores = cores };
	for (uint32_t s = 0; s < shards; s++) {
		struct planner_shard *sh = &v->shards[s];

		sh->id = s;
		sh->replica_count = r;
		for (unsigned k = 0; k < r; k++)
			sh->replicas[k] = (struct planner_replica){ (s + k) % n + 1,
								    (s / n + k) % cores };
		sh->leader = sh->replicas[0].node;
	}
}

static int plan(const struct view *v, bool core_moves, planner_may_host_fn *may, void *data,
		struct planner_plan *p)
{
	struct planner_input in = {
		.nodes = v->nodes, .node_count = v->node_count, .shards = v->shards,
		.shard_count = v->shard_count, .replicas = v->replicas, .core_moves = core_moves,
		.may_host = may, .data = data,
	};
	char err[256];
	int rv = planner_plan(&in, p, err, sizeof err);

	if (rv != 0)
		print_message("planner: %s\n", err);
	return rv;
}

/* Replays p on v move by move: a move leaves a replica the shard has, to a
 * node that holds none (or another core of the same node) and may host it;
 * a transfer goes from the leader to a holder. Counts moves per node. */
static void replay(struct view *v, const struct planner_plan *p, planner_may_host_fn *may,
		   void *data, unsigned *sent, unsigned *got)
{
	/* (shard, node) pairs a move brought a replica to: never moved on. */
	static bool arrived[GEN_MAX_SHARDS * 4][PLANNER_MAX_NODES];

	memset(arrived, 0, sizeof arrived);

	for (size_t i = 0; i < p->move_count; i++) {
		const struct planner_move *mv = &p->moves[i];
		struct planner_shard *s = &v->shards[mv->shard];

		if (getenv("PLANNER_DEBUG"))
			print_message("  move %u %llu:%u -> %llu:%u\n", mv->shard,
				      (unsigned long long)mv->from, mv->from_core,
				      (unsigned long long)mv->to, mv->to_core);
		int k = holds(s, mv->from), to = node_index(v, mv->to);

		assert_true(mv->shard < v->shard_count);
		assert_true(k >= 0);
		assert_int_equal(s->replicas[k].core, mv->from_core);
		assert_true(to >= 0);
		assert_true(mv->to_core < v->nodes[to].cores);
		assert_int_equal(v->nodes[to].state, PLANNER_NODE_UP);
		if (mv->from == mv->to) {
			assert_int_not_equal(mv->from_core, mv->to_core);
		} else {
			assert_true(holds(s, mv->to) < 0); /* never to a holder */
			assert_false(arrived[mv->shard][node_index(v, mv->from)]);
			arrived[mv->shard][to] = true;
			assert_true(!may || may(data, mv->shard, mv->to));
			sent[node_index(v, mv->from)]++;
			got[to]++;
		}
		assert_int_equal(mv->leader, s->leader == mv->from);
		s->replicas[k] = (struct planner_replica){ mv->to, mv->to_core };
		if (mv->leader) {
			assert_true(holds(s, mv->next_leader) >= 0);
			s->leader = mv->next_leader;
		}
	}
	for (size_t i = 0; i < p->transfer_count; i++) {
		const struct planner_transfer *t = &p->transfers[i];
		struct planner_shard *s = &v->shards[t->shard];
		int k = holds(s, t->to);

		assert_int_equal(s->leader, t->from);
		assert_int_not_equal(t->from, t->to);
		assert_true(k >= 0);
		assert_int_equal(s->replicas[k].core, t->to_core);
		assert_int_equal(v->nodes[node_index(v, t->to)].state, PLANNER_NODE_UP);
		s->leader = t->to;
	}
}

struct balance {
	bool replicas, cores, leaders, leader_cores;
};

/* The promises, counted on the view itself. */
static struct balance measure(const struct view *v)
{
	unsigned count[PLANNER_MAX_NODES] = { 0 }, leads[PLANNER_MAX_NODES] = { 0 };
	unsigned per_core[PLANNER_MAX_NODES][8] = { { 0 } }, lead_core[PLANNER_MAX_NODES][8] = { { 0 } };
	unsigned lo = ~0u, hi = 0, llo = ~0u, lhi = 0;
	struct balance b = { true, true, true, true };

	for (uint32_t s = 0; s < v->shard_count; s++) {
		const struct planner_shard *sh = &v->shards[s];

		assert_int_equal(sh->replica_count, v->replicas);
		for (unsigned k = 0; k < sh->replica_count; k++) {
			int i = node_index(v, sh->replicas[k].node);

			assert_true(i >= 0);
			for (unsigned j = 0; j < k; j++) /* distinct nodes */
				assert_int_not_equal(sh->replicas[j].node, sh->replicas[k].node);
			count[i]++;
			per_core[i][sh->replicas[k].core]++;
			if (sh->leader == sh->replicas[k].node) {
				leads[i]++;
				lead_core[i][sh->replicas[k].core]++;
			}
		}
	}
	for (unsigned i = 0; i < v->node_count; i++) {
		unsigned clo = ~0u, chi = 0, dlo = ~0u, dhi = 0;

		if (v->nodes[i].state != PLANNER_NODE_UP) {
			b.replicas &= count[i] == 0;
			b.leaders &= leads[i] == 0;
			continue;
		}
		lo = count[i] < lo ? count[i] : lo;
		hi = count[i] > hi ? count[i] : hi;
		llo = leads[i] < llo ? leads[i] : llo;
		lhi = leads[i] > lhi ? leads[i] : lhi;
		for (unsigned c = 0; c < v->nodes[i].cores; c++) {
			clo = per_core[i][c] < clo ? per_core[i][c] : clo;
			chi = per_core[i][c] > chi ? per_core[i][c] : chi;
			dlo = lead_core[i][c] < dlo ? lead_core[i][c] : dlo;
			dhi = lead_core[i][c] > dhi ? lead_core[i][c] : dhi;
		}
		b.cores &= chi <= clo + 1;
		b.leader_cores &= dhi <= dlo + 1;
	}
	b.replicas &= hi <= lo + 1;
	b.leaders &= lhi <= llo + 1;
	return b;
}

static void test_balanced_needs_nothing(void **state)
{
	struct view v;
	struct planner_plan p;

	(void)state;
	dealt(&v, 3, 2, 6, 3);
	assert_int_equal(plan(&v, true, NULL, NULL, &p), 0);
	assert_int_equal(p.move_count, 0);
	assert_int_equal(p.transfer_count, 0);
	assert_true(p.replicas_balanced && p.cores_balanced && p.leaders_balanced &&
		    p.leader_cores_balanced);
	assert_string_equal(p.note, "");
	planner_plan_free(&p);
}

/* Three nodes holding every replica of 12 shards (R = 3) and a fourth,
 * empty: it gets exactly its share (9 of 36) and nothing else moves;
 * leaders end 3 per node. */
static void test_fourth_node_gets_its_share(void **state)
{
	struct view v;
	struct planner_plan p;
	unsigned sent[PLANNER_MAX_NODES] = { 0 }, got[PLANNER_MAX_NODES] = { 0 };
	struct balance b;

	(void)state;
	dealt(&v, 3, 2, 12, 3);
	v.nodes[3] = (struct planner_node){ .id = 4, .cores = 2 };
	v.node_count = 4;
	assert_int_equal(plan(&v, false, NULL, NULL, &p), 0);
	assert_int_equal(p.move_count, 9);
	replay(&v, &p, NULL, NULL, sent, got);
	assert_int_equal(got[3], 9);
	assert_int_equal(sent[0] + sent[1] + sent[2], 9);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(sent[i], 3);
	b = measure(&v);
	assert_true(b.replicas && b.cores && b.leaders && b.leader_cores);
	assert_true(p.replicas_balanced && p.cores_balanced && p.leaders_balanced);
	planner_plan_free(&p);
	/* Converged. */
	assert_int_equal(plan(&v, false, NULL, NULL, &p), 0);
	assert_int_equal(p.move_count, 0);
	assert_int_equal(p.transfer_count, 0);
	planner_plan_free(&p);
}

/* Node 2 of 4 draining: it ends with nothing, and only its replicas move. */
static void test_drain_empties_the_node(void **state)
{
	struct view v;
	struct planner_plan p;
	unsigned sent[PLANNER_MAX_NODES] = { 0 }, got[PLANNER_MAX_NODES] = { 0 };
	struct balance b;

	(void)state;
	dealt(&v, 4, 2, 8, 3);
	v.nodes[1].state = PLANNER_NODE_DRAINING;
	assert_int_equal(plan(&v, false, NULL, NULL, &p), 0);
	assert_int_equal(p.move_count, 6); /* node 2's 6 replicas, no more */
	replay(&v, &p, NULL, NULL, sent, got);
	assert_int_equal(sent[1], 6);
	assert_int_equal(got[1], 0);
	b = measure(&v);
	assert_true(b.replicas && b.leaders);
	planner_plan_free(&p);
	assert_int_equal(plan(&v, false, NULL, NULL, &p), 0);
	assert_int_equal(p.move_count + p.transfer_count, 0);
	planner_plan_free(&p);
	/* Removed: the same. Too few up nodes for R: refused. */
	v.nodes[1].state = PLANNER_NODE_REMOVED;
	v.nodes[2].state = PLANNER_NODE_DRAINING;
	assert_int_equal(plan(&v, false, NULL, NULL, &p), -EINVAL);
}

/* A node that may not take shards it held once (the founding placement's
 * rule in ringkv today): never a target for them; the rest still moves. */
static bool not_even_shards_on_4(void *data, uint32_t shard, uint64_t node)
{
	(void)data;
	return !(node == 4 && shard % 2 == 0);
}

static void test_may_host_is_respected(void **state)
{
	struct view v;
	struct planner_plan p;
	unsigned sent[PLANNER_MAX_NODES] = { 0 }, got[PLANNER_MAX_NODES] = { 0 };

	(void)state;
	dealt(&v, 3, 2, 12, 3);
	v.nodes[3] = (struct planner_node){ .id = 4, .cores = 2 };
	v.node_count = 4;
	assert_int_equal(plan(&v, false, not_even_shards_on_4, NULL, &p), 0);
	replay(&v, &p, not_even_shards_on_4, NULL, sent, got);
	/* Six odd shards can go to node 4, and all do: below its share of 9. */
	assert_int_equal(got[3], 6);
	assert_false(p.replicas_balanced);
	assert_true(strstr(p.note, "above its share") != NULL);
	planner_plan_free(&p);
}

/* The largest cluster: 63 nodes of 16 cores holding 16384 shards (R = 3)
 * and a 64th, empty: it gets exactly its share, 768 replicas, in one
 * move each, and everything ends even (the suite's timeout bounds it). */
static void test_largest_cluster(void **state)
{
	struct planner_node nodes[64];
	struct planner_shard *shards = calloc(16384, sizeof *shards);
	struct planner_input in = { .nodes = nodes, .node_count = 64, .shards = shards,
				    .shard_count = 16384, .replicas = 3 };
	struct planner_plan p;
	char err[256];

	(void)state;
	assert_non_null(shards);
	for (unsigned i = 0; i < 64; i++)
		nodes[i] = (struct planner_node){ .id = i + 1, .cores = 16 };
	for (uint32_t s = 0; s < 16384; s++) {
		shards[s].id = s;
		shards[s].replica_count = 3;
		for (unsigned k = 0; k < 3; k++)
			shards[s].replicas[k] = (struct planner_replica){ (s + k) % 63 + 1,
									  (s / 63 + k) % 16 };
		shards[s].leader = shards[s].replicas[s % 3].node;
	}
	assert_int_equal(planner_plan(&in, &p, err, sizeof err), 0);
	assert_int_equal(p.move_count, 768);
	for (size_t i = 0; i < p.move_count; i++)
		assert_int_equal(p.moves[i].to, 64);
	assert_true(p.replicas_balanced && p.cores_balanced && p.leaders_balanced);
	planner_plan_free(&p);
	free(shards);
}

static void test_refusals(void **state)
{
	struct view v;
	struct planner_plan p;

	(void)state;
	dealt(&v, 4, 2, 4, 3);
	v.shards[2].replica_count = 4; /* a move under way: {3, 4, 1} + 2 */
	v.shards[2].replicas[3] = (struct planner_replica){ 2, 0 };
	assert_int_equal(plan(&v, false, NULL, NULL, &p), -EINVAL);
	dealt(&v, 4, 2, 4, 3);
	v.shards[1].replicas[1].node = v.shards[1].replicas[0].node; /* twice on a node */
	assert_int_equal(plan(&v, false, NULL, NULL, &p), -EINVAL);
	dealt(&v, 4, 2, 4, 3);
	v.shards[1].replicas[1].node = 9; /* unknown node */
	assert_int_equal(plan(&v, false, NULL, NULL, &p), -EINVAL);
	dealt(&v, 4, 2, 4, 3);
	v.shards[1].replicas[1].core = 2; /* no such core */
	assert_int_equal(plan(&v, false, NULL, NULL, &p), -EINVAL);
	dealt(&v, 4, 2, 4, 3);
	v.shards[0].leader = 4; /* leads without a replica */
	assert_int_equal(plan(&v, false, NULL, NULL, &p), -EINVAL);
	dealt(&v, 4, 2, 4, 3);
	v.nodes[2].id = 1; /* a duplicate id */
	assert_int_equal(plan(&v, false, NULL, NULL, &p), -EINVAL);
	dealt(&v, 4, 2, 4, 3);
	v.nodes[2].cores = 0;
	assert_int_equal(plan(&v, false, NULL, NULL, &p), -EINVAL);
}

/* A view at random: 1..8 nodes of 1..4 cores, some draining (never so many
 * that fewer than R stay up), R replicas on distinct nodes anywhere (up or
 * not), every leader known, or in half the views about one in five not. */
static void generate(struct view *v, uint64_t seed)
{
	struct raft_rng st;
	unsigned ups;
	bool some_unknown;

	raft_rng_seed(&st, seed);
	memset(v, 0, sizeof *v);
	some_unknown = below(&st, 2);
	v->node_count = 1 + below(&st, GEN_MAX_NODES);
	for (unsigned i = 0; i < v->node_count; i++) /* increasing ids with gaps */
		v->nodes[i] = (struct planner_node){
			.id = (i ? v->nodes[i - 1].id : 0) + 1 + below(&st, 3),
			.cores = 1 + below(&st, 4) };
	ups = v->node_count;
	for (unsigned i = 0; i < v->node_count && ups > 1; i++)
		if (below(&st, 6) == 0) {
			v->nodes[i].state = below(&st, 2) ? PLANNER_NODE_DRAINING
							  : PLANNER_NODE_REMOVED;
			ups--;
		}
	v->replicas = 1 + below(&st, ups < 3 ? ups : 3);
	v->shard_count = 1 + below(&st, GEN_MAX_SHARDS);
	for (uint32_t s = 0; s < v->shard_count; s++) {
		struct planner_shard *sh = &v->shards[s];
		/* Skewed: node choices crowd on the low indexes. */
		unsigned skew = 1 + below(&st, v->node_count);

		sh->id = s;
		while (sh->replica_count < v->replicas) {
			unsigned i = below(&st, 3) ? below(&st, skew) : below(&st, v->node_count);

			if (holds(sh, v->nodes[i].id) >= 0)
				continue;
			sh->replicas[sh->replica_count++] = (struct planner_replica){
				v->nodes[i].id, below(&st, v->nodes[i].cores) };
		}
		sh->leader = !some_unknown || below(&st, 5) ?
				     sh->replicas[below(&st, v->replicas)].node : 0;
	}
}

static void dump(const struct view *v, uint64_t seed)
{
	print_message("seed %llu: R %u\n", (unsigned long long)seed, v->replicas);
	for (unsigned i = 0; i < v->node_count; i++)
		print_message("  node %llu cores %u state %d\n", (unsigned long long)v->nodes[i].id,
			      v->nodes[i].cores, v->nodes[i].state);
	for (uint32_t s = 0; s < v->shard_count; s++) {
		print_message("  shard %u leader %llu:", s, (unsigned long long)v->shards[s].leader);
		for (unsigned k = 0; k < v->shards[s].replica_count; k++)
			print_message(" %llu:%u", (unsigned long long)v->shards[s].replicas[k].node,
				      v->shards[s].replicas[k].core);
		print_message("\n");
	}
}

static void check_generated(bool core_moves)
{
	unsigned leaders_even = 0, leader_cores_even = 0, all_known = 0;

	for (uint64_t seed = 1; seed <= GEN_VIEWS; seed++) {
		struct view v, again;
		struct planner_plan p, q;
		unsigned sent[PLANNER_MAX_NODES] = { 0 }, got[PLANNER_MAX_NODES] = { 0 };
		unsigned off = 0, total = 0, ups = 0, need_lo = 0, need_hi = 0;
		struct balance b;

		generate(&v, seed);
		if (getenv("PLANNER_DEBUG"))
			dump(&v, seed);
		for (uint32_t s = 0; s < v.shard_count; s++)
			for (unsigned k = 0; k < v.replicas; k++)
				off += v.nodes[node_index(&v, v.shards[s].replicas[k].node)].state !=
				       PLANNER_NODE_UP;
		total = v.shard_count * v.replicas;
		for (unsigned i = 0; i < v.node_count; i++)
			ups += v.nodes[i].state == PLANNER_NODE_UP;
		assert_int_equal(plan(&v, core_moves, NULL, NULL, &p), 0);
		/* Deterministic: the same plan again. */
		assert_int_equal(plan(&v, core_moves, NULL, NULL, &q), 0);
		assert_int_equal(p.move_count, q.move_count);
		assert_int_equal(p.transfer_count, q.transfer_count);
		assert_memory_equal(p.moves, q.moves, p.move_count * sizeof *p.moves);
		assert_memory_equal(p.transfers, q.transfers,
				    p.transfer_count * sizeof *p.transfers);
		planner_plan_free(&q);
		/* Minimal: every replica off the nodes going away, plus the
		 * excess of the nodes above the ceiling of the share (at least)
		 * or above its floor (at most), plus one for each replica a
		 * node at its share took from a node going away (when only it
		 * could) and so gave another on. */
		for (unsigned i = 0; i < v.node_count; i++) {
			unsigned c = 0;

			if (v.nodes[i].state != PLANNER_NODE_UP)
				continue;
			for (uint32_t s = 0; s < v.shard_count; s++)
				c += holds(&v.shards[s], v.nodes[i].id) >= 0;
			need_lo += c > (total + ups - 1) / ups ? c - (total + ups - 1) / ups : 0;
			need_hi += c > total / ups ? c - total / ups : 0;
		}
		again = v;
		replay(&again, &p, NULL, NULL, sent, got);
		{
			unsigned between = 0, chained = 0;

			for (size_t i = 0; i < p.move_count; i++)
				between += p.moves[i].from != p.moves[i].to;
			for (unsigned i = 0; i < v.node_count; i++)
				chained += sent[i] < got[i] ? sent[i] : got[i];
			assert_in_range(between, off + need_lo, off + need_hi + chained);
			assert_true(chained <= off);
		}
		b = measure(&again);
		assert_true(b.replicas);
		assert_true(p.replicas_balanced);
		assert_int_equal(b.cores, p.cores_balanced);
		if (core_moves)
			assert_true(b.cores);
		assert_int_equal(b.leaders, p.leaders_balanced);
		assert_int_equal(b.leader_cores, p.leader_cores_balanced);
		leaders_even += b.leaders;
		leader_cores_even += b.leader_cores;
		/* With every leader known, leaders are always even over nodes. */
		{
			bool known = true;

			for (uint32_t s = 0; s < v.shard_count; s++)
				known &= v.shards[s].leader != 0;
			all_known += known;
			if (known && !b.leaders)
				print_message("seed %llu: leaders uneven\n", (unsigned long long)seed);
			assert_true(!known || b.leaders);
		}
		planner_plan_free(&p);
		/* Converged: planning the result again changes nothing. */
		assert_int_equal(plan(&again, core_moves, NULL, NULL, &q), 0);
		if (q.move_count + q.transfer_count)
			print_message("seed %llu: %zu moves, %zu transfers after the plan\n",
				      (unsigned long long)seed, q.move_count, q.transfer_count);
		assert_int_equal(q.move_count, 0);
		assert_int_equal(q.transfer_count, 0);
		planner_plan_free(&q);
	}
	print_message("%u views (%u with every leader known): leaders even over nodes in %u, "
		      "over each node's cores in %u\n", GEN_VIEWS, all_known, leaders_even,
		      leader_cores_even);
	assert_true(all_known >= GEN_VIEWS / 10);
}

static void test_generated_with_core_moves(void **state)
{
	(void)state;
	check_generated(true);
}

static void test_generated_without_core_moves(void **state)
{
	(void)state;
	check_generated(false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_balanced_needs_nothing),
		cmocka_unit_test(test_fourth_node_gets_its_share),
		cmocka_unit_test(test_drain_empties_the_node),
		cmocka_unit_test(test_may_host_is_respected),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_largest_cluster),
		cmocka_unit_test(test_generated_with_core_moves),
		cmocka_unit_test(test_generated_without_core_moves),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
