/*
 * Pre-vote (§9.6 of Ongaro's dissertation): a server whose election timer
 * fires first asks, at term + 1 but without adopting it, whether a majority
 * would vote for it; servers that heard from a leader within the election
 * timeout say no. A server cut off from the cluster therefore cannot raise
 * its term and depose a healthy leader when it returns.
 */
#include "tests/unit/raft/fixture.h"
#include "tests/unit/raft/raw.h"

static void test_rejoining_node_does_not_disrupt(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 10);
	sim_isolate(s, 3, true);
	sim_run_until(s, 1010);
	ASSERT_TERM(s, 3, 1); /* many timeouts, no term raised */
	assert_int_not_equal(raft_role(sim_raft(s, 3)), RAFT_LEADER);
	sim_isolate(s, 3, false);
	sim_run_until(s, 1100);
	ASSERT_LEADER(s, 1);
	ASSERT_TERM(s, 1, 1);
	assert_int_equal(raft_leader(sim_raft(s, 3)), 1);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_without_prevote_rejoining_node_deposes_leader(void **state)
{
	(void)state;
	struct sim *s = cluster_with(3, false, false);
	elect(s, 1, 10);
	sim_isolate(s, 3, true);
	sim_run_until(s, 1010);
	assert_true(raft_term(sim_raft(s, 3)) > 5);
	sim_isolate(s, 3, false);
	sim_run_until(s, 1500);
	assert_true(raft_term(sim_raft(s, sim_leader(s))) > 5);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_prevote_changes_no_state(void **state)
{
	(void)state;
	struct raw w;
	raw_init(&w, 1, 1, NULL, 0);
	struct raft_msg pre = {.type = RAFT_MSG_PREVOTE, .from = 2, .to = 1,
			       .term = 2};
	raw_recv(&w, &pre);
	const struct raft_msg *resp = raw_reply(&w, RAFT_MSG_PREVOTE_RESP);
	assert_false(resp->reject);
	assert_int_equal(resp->term, 2);
	assert_int_equal(raft_term(w.r), 1);
	assert_int_equal(raft_vote(w.r), RAFT_NONE);
	assert_false(w.up.hard_state_changed);
	/* a pre-vote for the current term cannot win anything */
	pre.term = 1;
	raw_recv(&w, &pre);
	assert_true(raw_reply(&w, RAFT_MSG_PREVOTE_RESP)->reject);
	raft_destroy(w.r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rejoining_node_does_not_disrupt),
		cmocka_unit_test(test_without_prevote_rejoining_node_deposes_leader),
		cmocka_unit_test(test_prevote_changes_no_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
