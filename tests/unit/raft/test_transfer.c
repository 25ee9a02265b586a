/*
 * Leadership transfer (§3.10): the leader brings the target up to date,
 * sends TIMEOUT_NOW, and the target wins an election at once; proposals
 * are refused meanwhile; a transfer that does not finish within an
 * election timeout is abandoned.
 */
#include "tests/unit/raft/fixture.h"

static void test_transfer_to_up_to_date_follower(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 10);
	assert_int_equal(sim_transfer(s, 1, 3), 0);
	assert_int_equal(sim_propose(s, 1, 0, NULL), RAFT_EBUSY);
	/* TIMEOUT_NOW at 11, votes granted despite the lease at 12 */
	sim_run_until(s, 13);
	ASSERT_LEADER(s, 3);
	ASSERT_TERM(s, 3, 2);
	ASSERT_ROLE(s, 1, RAFT_FOLLOWER);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_transfer_waits_for_catch_up(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 10);
	sim_cut(s, 1, 3, true);
	for (uint32_t k = 0; k < 3; k++)
		sim_propose(s, 1, k, NULL);
	sim_run_until(s, 12);
	assert_int_equal(sim_transfer(s, 1, 3), 0);
	sim_run_until(s, 20);
	ASSERT_LEADER(s, 1); /* 3 lags: no TIMEOUT_NOW yet */
	sim_cut(s, 1, 3, false);
	sim_run_until(s, 100);
	ASSERT_LEADER(s, 3);
	ASSERT_COMMITTED(s, 3, 4);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_transfer_to_dead_target_is_abandoned(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 10);
	sim_crash(s, 3);
	assert_int_equal(sim_transfer(s, 1, 3), 0);
	sim_run_until(s, 100);
	assert_int_equal(sim_propose(s, 1, 0, NULL), RAFT_EBUSY);
	sim_run_until(s, 110); /* ten ticks after the request */
	assert_int_equal(sim_propose(s, 1, 0, NULL), 0);
	ASSERT_LEADER(s, 1);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transfer_to_up_to_date_follower),
		cmocka_unit_test(test_transfer_waits_for_catch_up),
		cmocka_unit_test(test_transfer_to_dead_target_is_abandoned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
