/*
 * The fixture for raft/ unit tests: a cluster of the simulated world with
 * faults off, a fixed one-unit network delay, one-unit disk writes, and
 * ticks every 10 units at the same instants on every node (election
 * timeouts are 10..19 ticks, so nothing happens on its own for 100 units).
 * Tests place events at exact simulated times and assert in the paper's
 * words. The simulator's safety checker runs after every step; every test
 * ends with ASSERT_SAFE.
 */
#ifndef RINGKV_TESTS_UNIT_RAFT_FIXTURE_H
#define RINGKV_TESTS_UNIT_RAFT_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "raft/raft.h"
#include "tests/sim/sim.h"

static inline struct sim *cluster_with(int nodes, bool pre_vote,
				       bool check_quorum)
{
	struct sim_opts o;
	sim_opts_default(&o, nodes, 42);
	o.fixed_ticks = true;
	o.pre_vote = pre_vote;
	o.check_quorum = check_quorum;
	return sim_create(&o);
}

static inline struct sim *cluster(int nodes)
{
	return cluster_with(nodes, true, true);
}

/* Node id campaigns at the current time and the cluster runs until t. */
static inline void elect(struct sim *s, uint64_t id, uint64_t t)
{
	sim_campaign(s, id);
	sim_run_until(s, t);
}

static inline uint64_t commit_of(struct sim *s, uint64_t id)
{
	return raft_commit_index(sim_raft(s, id));
}

#define ASSERT_SAFE(s)                                                  \
	do {                                                            \
		if ((s)->failed)                                        \
			fail_msg("checker: %s", (s)->failure);          \
	} while (0)
#define ASSERT_LEADER(s, id)                                            \
	do {                                                            \
		assert_int_equal(sim_leader(s), (id));                  \
		assert_int_equal(raft_role(sim_raft((s), (id))),        \
				 RAFT_LEADER);                          \
	} while (0)
#define ASSERT_ROLE(s, id, role) \
	assert_int_equal(raft_role(sim_raft((s), (id))), (role))
#define ASSERT_TERM(s, id, term) \
	assert_int_equal(raft_term(sim_raft((s), (id))), (term))
#define ASSERT_COMMITTED(s, id, index) \
	assert_true(commit_of((s), (id)) >= (index))
#define ASSERT_NOT_COMMITTED(s, id, index) \
	assert_true(commit_of((s), (id)) < (index))
#define ASSERT_APPLIED(s, id, index) \
	assert_true((s)->nodes[(id)].applied >= (index))

#endif
