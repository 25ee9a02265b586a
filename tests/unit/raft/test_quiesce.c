/*
 * Sleeping groups (raft/quiesce.c): an idle leader puts its group to sleep;
 * asleep, ticks do nothing (no heartbeat, no election timer, no quorum
 * check); any message, proposal or read wakes it; a follower woken with
 * `suspect` campaigns within one more election timeout. The simulator's
 * safety checker runs after every step.
 */
#include "tests/unit/raft/fixture.h"

static int sleep_now(struct sim *s, uint64_t id)
{
	struct raft_event ev = {.type = RAFT_EV_SLEEP};
	return sim_event(s, id, &ev, NULL);
}

static void wake(struct sim *s, uint64_t id, bool suspect)
{
	struct raft_event ev = {.type = RAFT_EV_WAKE, .wake.suspect = suspect};
	sim_event(s, id, &ev, NULL);
}

static uint64_t heartbeats_sent(struct sim *s, uint64_t id)
{
	return s->sent[id][RAFT_MSG_HEARTBEAT];
}

/* Elected, one write committed everywhere, heartbeats answered. */
static struct sim *idle_cluster(void)
{
	struct sim *s = cluster(3);
	uint64_t v;
	elect(s, 1, 10);
	assert_int_equal(sim_propose(s, 1, 0, &v), 0);
	sim_run_until(s, 60);
	ASSERT_COMMITTED(s, 3, 2);
	return s;
}

static void test_idle_group_sleeps_and_stays_quiet(void **state)
{
	(void)state;
	struct sim *s = idle_cluster();
	assert_int_equal(sleep_now(s, 1), 0);
	assert_true(raft_asleep(sim_raft(s, 1)));
	sim_run_until(s, 65);
	assert_true(raft_asleep(sim_raft(s, 2)));
	assert_true(raft_asleep(sim_raft(s, 3)));
	/* the followers' "asleep" answers did not wake the leader */
	assert_true(raft_asleep(sim_raft(s, 1)));
	/* ten election timeouts: no heartbeat, no election, same leader */
	uint64_t hb = heartbeats_sent(s, 1), elections = s->elections;
	sim_run_until(s, 2000);
	assert_int_equal(heartbeats_sent(s, 1), hb);
	assert_int_equal(s->elections, elections);
	ASSERT_LEADER(s, 1);
	ASSERT_TERM(s, 2, 1);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_busy_leader_refuses_to_sleep(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	uint64_t v;
	elect(s, 1, 10);
	sim_run_until(s, 60);
	/* an entry not yet acknowledged by the followers */
	sim_isolate(s, 3, true);
	sim_isolate(s, 2, true);
	assert_int_equal(sim_propose(s, 1, 0, &v), 0);
	assert_int_equal(sleep_now(s, 1), RAFT_EBUSY);
	assert_false(raft_asleep(sim_raft(s, 1)));
	/* a follower is never told to sleep */
	assert_int_equal(sleep_now(s, 2), RAFT_EBUSY);
	sim_heal(s);
	sim_run_until(s, 120);
	ASSERT_COMMITTED(s, 1, 2);
	assert_int_equal(sleep_now(s, 1), 0);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_proposal_wakes_the_group(void **state)
{
	(void)state;
	struct sim *s = idle_cluster();
	uint64_t v;
	assert_int_equal(sleep_now(s, 1), 0);
	sim_run_until(s, 500);
	assert_true(raft_asleep(sim_raft(s, 2)));
	assert_int_equal(sim_propose(s, 1, 1, &v), 0);
	assert_false(raft_asleep(sim_raft(s, 1)));
	sim_run_until(s, 505);
	assert_false(raft_asleep(sim_raft(s, 2)));
	assert_false(raft_asleep(sim_raft(s, 3)));
	ASSERT_COMMITTED(s, 1, 3);
	sim_run_until(s, 520);
	ASSERT_COMMITTED(s, 2, 3);
	/* awake again: heartbeats flow */
	uint64_t hb = heartbeats_sent(s, 1);
	sim_run_until(s, 560);
	assert_true(heartbeats_sent(s, 1) > hb);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_read_wakes_and_is_confirmed(void **state)
{
	(void)state;
	struct sim *s = idle_cluster();
	uint64_t id;
	assert_int_equal(sleep_now(s, 1), 0);
	sim_run_until(s, 500);
	assert_int_equal(sim_read(s, 1, 0, &id), 0);
	sim_run_until(s, 520);
	assert_true(s->reads[id - 1].done_at != 0);
	assert_true(s->reads[id - 1].index >= 2);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

/* The leader's node dies while its group sleeps: nothing happens until the
 * followers are woken with `suspect` (node liveness); then one of them is
 * elected within two election timeouts. */
static void test_dead_leader_found_by_liveness(void **state)
{
	(void)state;
	struct sim *s = idle_cluster();
	assert_int_equal(sleep_now(s, 1), 0);
	sim_run_until(s, 100);
	sim_crash(s, 1);
	sim_run_until(s, 1000);
	assert_int_equal(sim_leader(s), RAFT_NONE); /* asleep: nobody noticed */
	wake(s, 2, true);
	wake(s, 3, true);
	sim_run_until(s, 1000 + 2 * 100);
	uint64_t leader = sim_leader(s);
	assert_true(leader == 2 || leader == 3);
	ASSERT_TERM(s, leader, 2);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

/* Woken without suspicion (a stray message), a follower still honours its
 * leader's lease: a pre-vote from the other follower is refused, and the
 * woken leader's heartbeat puts everyone back in line, term unchanged. */
static void test_plain_wake_keeps_the_lease(void **state)
{
	(void)state;
	struct sim *s = idle_cluster();
	assert_int_equal(sleep_now(s, 1), 0);
	sim_run_until(s, 100);
	wake(s, 3, false);
	sim_run_until(s, 1000);
	ASSERT_LEADER(s, 1);
	ASSERT_TERM(s, 2, 1);
	ASSERT_TERM(s, 3, 1);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

/* A sleeping leader cut off from its followers learns it only when woken
 * (node liveness again); then check-quorum deposes it within an election
 * timeout. */
static void test_sleeping_leader_cut_off_steps_down_once_woken(void **state)
{
	(void)state;
	struct sim *s = idle_cluster();
	assert_int_equal(sleep_now(s, 1), 0);
	sim_run_until(s, 100);
	sim_isolate(s, 1, true);
	sim_run_until(s, 1000);
	ASSERT_ROLE(s, 1, RAFT_LEADER);
	wake(s, 1, true);
	assert_false(raft_asleep(sim_raft(s, 1)));
	sim_run_until(s, 1000 + 100);
	ASSERT_ROLE(s, 1, RAFT_FOLLOWER);
	/* and a leader cut off does not go back to sleep */
	assert_int_equal(sleep_now(s, 1), RAFT_EBUSY);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

/* A follower that lacks what the leader committed does not obey "sleep":
 * it answers as to a heartbeat, which wakes the leader. */
static void test_follower_behind_stays_awake(void **state)
{
	(void)state;
	struct sim *s = idle_cluster();
	struct raft_msg hb = {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2,
			      .term = 1, .commit = 5, .done = true};
	struct raft_event ev = {.type = RAFT_EV_RECEIVE, .msg = &hb};
	sim_event(s, 2, &ev, NULL);
	assert_false(raft_asleep(sim_raft(s, 2)));
	ASSERT_SAFE(s);
	sim_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle_group_sleeps_and_stays_quiet),
		cmocka_unit_test(test_busy_leader_refuses_to_sleep),
		cmocka_unit_test(test_proposal_wakes_the_group),
		cmocka_unit_test(test_read_wakes_and_is_confirmed),
		cmocka_unit_test(test_dead_leader_found_by_liveness),
		cmocka_unit_test(test_plain_wake_keeps_the_lease),
		cmocka_unit_test(test_sleeping_leader_cut_off_steps_down_once_woken),
		cmocka_unit_test(test_follower_behind_stays_awake),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
