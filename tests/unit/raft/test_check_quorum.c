/*
 * Check-quorum (§6.2): a leader that has not heard from a majority within
 * an election timeout steps down, so a partitioned leader stops acting as
 * one; while followers hear from their leader (the lease), they ignore vote
 * requests of higher terms, so a removed or partitioned server cannot
 * disrupt them (§4.2.3).
 */
#include "tests/unit/raft/fixture.h"

static void test_isolated_leader_steps_down(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 10); /* leader from time 4 */
	sim_isolate(s, 1, true);
	/* checks at ticks 10 and 20 of its leadership: times 100 and 200 */
	sim_run_until(s, 199);
	ASSERT_ROLE(s, 1, RAFT_LEADER);
	sim_run_until(s, 200);
	ASSERT_ROLE(s, 1, RAFT_FOLLOWER);
	ASSERT_TERM(s, 1, 1);
	sim_run_until(s, 400);
	uint64_t leader = sim_leader(s);
	assert_true(leader == 2 || leader == 3);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_without_check_quorum_isolated_leader_stays(void **state)
{
	(void)state;
	struct sim *s = cluster_with(3, true, false);
	elect(s, 1, 10);
	sim_isolate(s, 1, true);
	sim_run_until(s, 1000);
	ASSERT_ROLE(s, 1, RAFT_LEADER);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_lease_ignores_higher_term_votes(void **state)
{
	(void)state;
	struct sim *s = cluster_with(3, false, true);
	elect(s, 1, 15);
	struct raft_msg vote = {.type = RAFT_MSG_VOTE, .from = 3, .to = 2,
				.term = 9, .index = 100, .log_term = 9};
	struct raft_event ev = {.type = RAFT_EV_RECEIVE, .msg = &vote};
	sim_event(s, 2, &ev, NULL);
	ASSERT_TERM(s, 2, 1);
	assert_int_equal(raft_leader(sim_raft(s, 2)), 1);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_isolated_leader_steps_down),
		cmocka_unit_test(test_without_check_quorum_isolated_leader_stays),
		cmocka_unit_test(test_lease_ignores_higher_term_votes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
