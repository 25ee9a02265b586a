/*
 * Tests for cluster/map.c: the placement's promises checked over every
 * small cluster shape (N nodes, S shards, R replicas, C cores) and a few
 * large ones, the cluster id's determinism, and the refusals of
 * cluster_map_init.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/map.h"

typedef unsigned core_rule_fn(const struct cluster_map *m, uint32_t shard, unsigned cores);

static void make_nodes(struct cluster_map_node *nodes, unsigned n, uint64_t first_id,
		       uint64_t stride)
{
	memset(nodes, 0, n * sizeof *nodes);
	for (unsigned i = 0; i < n; i++) {
		nodes[i].id = first_id + i * stride;
		snprintf(nodes[i].host, sizeof nodes[i].host, "127.0.0.%u", 11 + i);
		nodes[i].port = 7100;
	}
}

static void build(struct cluster_map *m, unsigned n, uint32_t s, uint32_t r)
{
	struct cluster_map_node nodes[CLUSTER_MAP_MAX_NODES];
	char err[128];

	make_nodes(nodes, n, 1, 1);
	assert_int_equal(cluster_map_init(m, nodes, n, s, r, "", err, sizeof err), 0);
}

static unsigned spread(const unsigned *counts, unsigned n)
{
	unsigned lo = counts[0], hi = counts[0];

	for (unsigned i = 1; i < n; i++) {
		lo = counts[i] < lo ? counts[i] : lo;
		hi = counts[i] > hi ? counts[i] : hi;
	}
	return hi - lo;
}

/*
 * The largest spread of leaders over one node's cores, over all nodes,
 * when shard s lives on core rule(m, s, cores).
 */
static unsigned leader_core_spread(const struct cluster_map *m, unsigned cores,
				   core_rule_fn *rule)
{
	unsigned worst = 0;

	for (unsigned node = 0; node < m->node_count; node++) {
		unsigned per_core[256] = { 0 };
		unsigned d;

		for (uint32_t s = 0; s < m->shards; s++)
			if (cluster_map_first(m, s) == node)
				per_core[rule(m, s, cores)]++;
		d = spread(per_core, cores);
		worst = d > worst ? d : worst;
	}
	return worst;
}

/* Checks every promise of map.h for one shape; returns the spread of
 * replicas over one node's cores (documented, not promised within 1). */
static unsigned check_shape(unsigned n, uint32_t shards, uint32_t r, unsigned cores)
{
	struct cluster_map m;
	unsigned replicas[CLUSTER_MAP_MAX_NODES] = { 0 };
	unsigned leaders[CLUSTER_MAP_MAX_NODES] = { 0 };
	static uint32_t held[CLUSTER_MAP_MAX_SHARDS];
	unsigned worst_core_spread = 0;

	build(&m, n, shards, r);
	for (uint32_t s = 0; s < shards; s++) {
		uint64_t ids[CLUSTER_MAP_MAX_NODES];
		unsigned first = cluster_map_first(&m, s);

		assert_int_equal(cluster_map_replica_ids(&m, s, ids), r);
		assert_true(first < n);
		assert_int_equal(ids[0], m.nodes[first].id);
		leaders[first]++;
		for (unsigned k = 0; k < r; k++) {
			unsigned node = cluster_map_replica(&m, s, k);

			assert_int_equal(ids[k], m.nodes[node].id);
			assert_int_equal(cluster_map_rank(&m, s, node), (int)k);
			for (unsigned k2 = 0; k2 < k; k2++)
				assert_true(ids[k2] != ids[k]); /* distinct nodes */
			replicas[node]++;
		}
		assert_true(cluster_map_core(&m, s, cores) < cores);
	}
	/* Replicas and leaders per node: floor or ceil of the mean. */
	assert_true(spread(replicas, n) <= 1);
	assert_true(spread(leaders, n) <= 1);
	/* Each node's leaders over its cores, within 1. */
	assert_true(leader_core_spread(&m, cores, cluster_map_core) <= 1);

	for (unsigned node = 0; node < n; node++) {
		unsigned per_core[256] = { 0 };
		unsigned count = cluster_map_node_shards(&m, node, held, CLUSTER_MAP_MAX_SHARDS);
		unsigned d;

		assert_int_equal(count, replicas[node]);
		for (unsigned i = 0; i < count; i++) {
			assert_true(cluster_map_rank(&m, held[i], node) >= 0);
			assert_true(i == 0 || held[i] > held[i - 1]);
			per_core[cluster_map_core(&m, held[i], cores)]++;
		}
		d = spread(per_core, cores);
		worst_core_spread = d > worst_core_spread ? d : worst_core_spread;
	}
	return worst_core_spread;
}

static void test_every_small_shape(void **state)
{
	unsigned shapes = 0, worst = 0;

	(void)state;
	for (unsigned n = 1; n <= 9; n++)
		for (uint32_t s = 1; s <= 64; s++)
			for (uint32_t r = 1; r <= n; r++)
				for (unsigned c = 1; c <= 8; c++) {
					unsigned d = check_shape(n, s, r, c);

					/* Replicas over one node's cores: at most R apart
					 * (each of the R ranks is dealt round-robin). */
					assert_true(d <= r);
					worst = d > worst ? d : worst;
					shapes++;
				}
	printf("%u shapes; replicas over one node's cores spread by at most %u\n",
	       shapes, worst);
}

static void test_large_shapes(void **state)
{
	static const unsigned shapes[][4] = {
		/* N, S, R, C */
		{ 3, 16384, 3, 64 }, { 5, 16384, 3, 48 }, { 64, 16384, 3, 32 },
		{ 64, 16384, 7, 7 }, { 64, 63, 64, 5 }, { 7, 10000, 5, 24 },
		{ 12, 1000, 2, 10 }, { 31, 4096, 31, 16 }, { 2, 16383, 2, 128 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
		assert_true(check_shape(shapes[i][0], shapes[i][1], shapes[i][2],
					shapes[i][3]) <= shapes[i][2]);
}

/* S a multiple of N * C (the default --shards is cores * nodes): every
 * node holds exactly S*R/(N*C) replicas on each core and leads S/(N*C). */
static void test_default_shape_is_exact(void **state)
{
	(void)state;
	for (unsigned n = 1; n <= 7; n++)
		for (unsigned c = 1; c <= 8; c++)
			for (uint32_t r = 1; r <= n; r++)
				for (unsigned mult = 1; mult <= 3; mult++) {
					struct cluster_map m;

					build(&m, n, n * c * mult, r);
					assert_int_equal(check_shape(n, n * c * mult, r, c), 0);
					assert_int_equal(leader_core_spread(&m, c, cluster_map_core), 0);
				}
}

/* The rule the brief warns about: leader s mod N and core s mod C puts all
 * of a node's leaders on one core when N and C share a factor. The checker
 * above must see that (so it can fail). */
static unsigned naive_core(const struct cluster_map *m, uint32_t shard, unsigned cores)
{
	(void)m;
	return shard % cores;
}

static void test_checker_catches_naive_core_rule(void **state)
{
	struct cluster_map m;

	(void)state;
	build(&m, 2, 16, 2);
	assert_int_equal(leader_core_spread(&m, 2, naive_core), 8);
	assert_int_equal(leader_core_spread(&m, 2, cluster_map_core), 0);
	build(&m, 4, 64, 3);
	assert_true(leader_core_spread(&m, 8, naive_core) > 1);
	assert_true(leader_core_spread(&m, 8, cluster_map_core) <= 1);
}

/* One node: every shard on that node, core s mod C (today's rule). */
static void test_one_node_is_todays_rule(void **state)
{
	struct cluster_map m;

	(void)state;
	build(&m, 1, 100, 1);
	for (uint32_t s = 0; s < 100; s++) {
		assert_int_equal(cluster_map_first(&m, s), 0);
		for (unsigned c = 1; c <= 9; c++)
			assert_int_equal(cluster_map_core(&m, s, c), s % c);
	}
}

/* R = 1: each shard on one node, leaders = holders. */
static void test_single_replica(void **state)
{
	struct cluster_map m;

	(void)state;
	build(&m, 4, 10, 1);
	for (uint32_t s = 0; s < 10; s++)
		for (unsigned node = 0; node < 4; node++)
			assert_int_equal(cluster_map_rank(&m, s, node) == 0,
					 node == cluster_map_first(&m, s));
}

/* The rule pinned on one example, so an accidental change shows: 3 nodes,
 * 8 shards, R=2, 2 cores. Rounds 0 and 1 are full; the partial round
 * (shards 6, 7) spreads its leaders to nodes 0 and 1 (floor(j*3/2)). */
static void test_pinned_example(void **state)
{
	static const unsigned first[8] = { 0, 1, 2, 0, 1, 2, 0, 1 };
	static const unsigned core[8] = { 0, 1, 0, 1, 0, 1, 0, 1 };
	struct cluster_map m;

	(void)state;
	build(&m, 3, 8, 2);
	for (uint32_t s = 0; s < 8; s++) {
		assert_int_equal(cluster_map_first(&m, s), first[s]);
		assert_int_equal(cluster_map_replica(&m, s, 1), (first[s] + 1) % 3);
		assert_int_equal(cluster_map_core(&m, s, 2), core[s]);
	}
	/* 5 nodes, 3 shards: the lone round's leaders at 0, 1, 3. */
	build(&m, 5, 3, 3);
	assert_int_equal(cluster_map_first(&m, 0), 0);
	assert_int_equal(cluster_map_first(&m, 1), 1);
	assert_int_equal(cluster_map_first(&m, 2), 3);
}

/* The same founding nodes in any order (and any id values) give the same
 * map; the id changes with every input and only with them. */
static void test_deterministic_and_order_free(void **state)
{
	struct cluster_map_node nodes[5], shuffled[5];
	struct cluster_map a, b;
	char err[128];
	static const unsigned order[5] = { 3, 0, 4, 2, 1 };

	(void)state;
	make_nodes(nodes, 5, 10, 7);
	for (unsigned i = 0; i < 5; i++)
		shuffled[i] = nodes[order[i]];
	assert_int_equal(cluster_map_init(&a, nodes, 5, 40, 3, "t", err, sizeof err), 0);
	assert_int_equal(cluster_map_init(&b, shuffled, 5, 40, 3, "t", err, sizeof err), 0);
	assert_true(a.cluster_id == b.cluster_id);
	assert_int_equal(a.version, 1);
	assert_memory_equal(&a, &b, sizeof a);
	assert_true(cluster_map_placement_hash(&a, 4) == cluster_map_placement_hash(&b, 4));
	assert_true(cluster_map_placement_hash(&a, 4) != cluster_map_placement_hash(&a, 3));
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(cluster_map_index(&a, 10 + 7 * i), (int)i);
	assert_int_equal(cluster_map_index(&a, 11), -1);

	assert_int_equal(cluster_map_init(&b, nodes, 5, 40, 3, "u", err, sizeof err), 0);
	assert_true(a.cluster_id != b.cluster_id);
	assert_int_equal(cluster_map_init(&b, nodes, 5, 41, 3, "t", err, sizeof err), 0);
	assert_true(a.cluster_id != b.cluster_id);
	assert_int_equal(cluster_map_init(&b, nodes, 5, 40, 2, "t", err, sizeof err), 0);
	assert_true(a.cluster_id != b.cluster_id);
	shuffled[0] = nodes[0];
	shuffled[0].port = 7101;
	memcpy(shuffled + 1, nodes + 1, 4 * sizeof nodes[0]);
	assert_int_equal(cluster_map_init(&b, shuffled, 5, 40, 3, "t", err, sizeof err), 0);
	assert_true(a.cluster_id != b.cluster_id);
	/* Recorded on disk: the id of a fixed input never changes across
	 * builds (this value is the first build's). */
	build(&a, 3, 16, 3);
	assert_true(a.cluster_id == cluster_map_id(a.nodes, 3, 16, 3, ""));
	assert_true(a.cluster_id == 0x2b0bbc7039ccba27ull);
}

static void test_init_refuses(void **state)
{
	struct cluster_map_node nodes[3];
	struct cluster_map m;
	char err[128];

	(void)state;
	make_nodes(nodes, 3, 1, 1);
	assert_int_equal(cluster_map_init(&m, nodes, 3, 8, 4, "", err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "4 replicas"));
	assert_int_equal(cluster_map_init(&m, nodes, 3, 8, 0, "", err, sizeof err), -EINVAL);
	assert_int_equal(cluster_map_init(&m, nodes, 3, 0, 1, "", err, sizeof err), -EINVAL);
	assert_int_equal(cluster_map_init(&m, nodes, 0, 8, 1, "", err, sizeof err), -EINVAL);
	assert_int_equal(cluster_map_init(&m, nodes, 3, CLUSTER_MAP_MAX_SHARDS + 1, 1, "",
					  err, sizeof err), -EINVAL);
	nodes[2].id = 1;
	assert_int_equal(cluster_map_init(&m, nodes, 3, 8, 1, "", err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "twice"));
	nodes[2].id = 0;
	assert_int_equal(cluster_map_init(&m, nodes, 3, 8, 1, "", err, sizeof err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_small_shape),
		cmocka_unit_test(test_large_shapes),
		cmocka_unit_test(test_default_shape_is_exact),
		cmocka_unit_test(test_checker_catches_naive_core_rule),
		cmocka_unit_test(test_one_node_is_todays_rule),
		cmocka_unit_test(test_single_replica),
		cmocka_unit_test(test_pinned_example),
		cmocka_unit_test(test_deterministic_and_order_free),
		cmocka_unit_test(test_init_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
