/*
 * Membership changes one server at a time (§4.1 of Ongaro's
 * dissertation), with learners: a new server joins as a learner (it gets
 * the log, never votes), is promoted once caught up, and any member, the
 * leader included, can be removed. One change is in flight at a time, and
 * only after the leader committed an entry of its own term.
 */
#include "tests/unit/raft/fixture.h"

static void test_learner_joins_then_is_promoted(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 10);
	sim_propose(s, 1, 0, NULL);
	assert_int_equal(sim_conf_change(s, 1, RAFT_CONF_ADD_LEARNER, 4), 0);
	assert_int_equal(raft_conf_role(raft_conf(sim_raft(s, 1)), 4),
			 RAFT_LEARNER);
	/* one change at a time: the promotion waits for the add to commit */
	assert_int_equal(sim_conf_change(s, 1, RAFT_CONF_PROMOTE, 4),
			 RAFT_EBUSY);
	sim_run_until(s, 40);
	ASSERT_APPLIED(s, 4, 3); /* the learner holds the log */
	ASSERT_ROLE(s, 4, RAFT_FOLLOWER);
	assert_int_equal(sim_conf_change(s, 1, RAFT_CONF_PROMOTE, 4), 0);
	sim_run_until(s, 60);
	const struct raft_conf *conf = raft_conf(sim_raft(s, 4));
	assert_int_equal(raft_conf_role(conf, 4), RAFT_VOTER);
	/* four voters: a write needs three of them */
	sim_isolate(s, 2, true);
	sim_isolate(s, 3, true);
	uint64_t value;
	sim_propose(s, 1, 1, &value);
	sim_run_until(s, 80);
	assert_int_equal(sim_write_get(s, value)->ack, SIM_NEVER);
	sim_isolate(s, 3, false);
	sim_run_until(s, 120);
	assert_true(sim_write_get(s, value)->ack != SIM_NEVER);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

/* The errata of §4.1: a new leader changes membership only once it has
 * committed an entry of its own term (its NOOP). */
static void test_change_waits_for_commit_in_own_term(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	sim_campaign(s, 1);
	sim_run_until(s, 4); /* leader from 4, its NOOP commits at 7 */
	ASSERT_LEADER(s, 1);
	ASSERT_NOT_COMMITTED(s, 1, 1);
	assert_int_equal(sim_conf_change(s, 1, RAFT_CONF_ADD_LEARNER, 4),
			 RAFT_EBUSY);
	sim_run_until(s, 7);
	ASSERT_COMMITTED(s, 1, 1);
	assert_int_equal(sim_conf_change(s, 1, RAFT_CONF_REMOVE, 3), 0);
	/* and one at a time: the removal is not committed yet */
	assert_int_equal(sim_conf_change(s, 1, RAFT_CONF_REMOVE, 2),
			 RAFT_EBUSY);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_promotion_requires_catch_up(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 10);
	assert_int_equal(sim_conf_change(s, 1, RAFT_CONF_ADD_LEARNER, 4), 0);
	sim_isolate(s, 4, true);
	sim_run_until(s, 40);
	assert_int_equal(sim_conf_change(s, 1, RAFT_CONF_PROMOTE, 4),
			 RAFT_ENOTREADY);
	sim_isolate(s, 4, false);
	sim_run_until(s, 100);
	assert_int_equal(sim_conf_change(s, 1, RAFT_CONF_PROMOTE, 4), 0);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_learner_never_campaigns(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 10);
	assert_int_equal(sim_conf_change(s, 1, RAFT_CONF_ADD_LEARNER, 4), 0);
	sim_run_until(s, 40);
	sim_isolate(s, 4, true);
	sim_run_until(s, 1000);
	ASSERT_ROLE(s, 4, RAFT_FOLLOWER);
	assert_int_equal(s->sent[4][RAFT_MSG_PREVOTE], 0);
	assert_int_equal(s->sent[4][RAFT_MSG_VOTE], 0);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_removed_leader_steps_down(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 10);
	uint64_t index;
	assert_int_equal(sim_conf_change(s, 1, RAFT_CONF_REMOVE, 1), 0);
	index = raft_last_index(sim_raft(s, 1));
	/* it leads, without counting itself, until the change commits */
	ASSERT_LEADER(s, 1);
	sim_run_until(s, 13);
	ASSERT_COMMITTED(s, 1, index);
	ASSERT_ROLE(s, 1, RAFT_FOLLOWER);
	sim_run_until(s, 400);
	uint64_t leader = sim_leader(s);
	assert_true(leader == 2 || leader == 3);
	assert_int_equal(raft_conf(sim_raft(s, leader))->n, 2);
	assert_true(s->nodes[1].removed);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_invalid_changes_are_refused(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 10);
	assert_int_equal(sim_conf_change(s, 2, RAFT_CONF_ADD_LEARNER, 4),
			 RAFT_ENOTLEADER);
	assert_int_equal(sim_conf_change(s, 1, RAFT_CONF_ADD_LEARNER, 2),
			 RAFT_EBADCONF);
	assert_int_equal(sim_conf_change(s, 1, RAFT_CONF_PROMOTE, 2),
			 RAFT_EBADCONF);
	assert_int_equal(sim_conf_change(s, 1, RAFT_CONF_REMOVE, 9),
			 RAFT_EBADCONF);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_learner_joins_then_is_promoted),
		cmocka_unit_test(test_change_waits_for_commit_in_own_term),
		cmocka_unit_test(test_promotion_requires_catch_up),
		cmocka_unit_test(test_learner_never_campaigns),
		cmocka_unit_test(test_removed_leader_steps_down),
		cmocka_unit_test(test_invalid_changes_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
