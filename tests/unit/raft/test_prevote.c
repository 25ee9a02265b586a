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

/* raft_prevote_max: the highest term a pre-vote was granted for, not one
 * refused; it changes no durable state (the wiped-node probe reads it). */
static void test_prevote_max_records_grants_only(void **state)
{
	(void)state;
	struct raw w;
	raw_init(&w, 1, 1, NULL, 0);
	assert_int_equal(raft_prevote_max(w.r), 0);
	struct raft_msg pre = {.type = RAFT_MSG_PREVOTE, .from = 2, .to = 1,
			       .term = 4};
	raw_recv(&w, &pre);
	assert_false(raw_reply(&w, RAFT_MSG_PREVOTE_RESP)->reject);
	assert_int_equal(raft_prevote_max(w.r), 4);
	/* a lower grant does not lower it */
	pre.term = 3;
	raw_recv(&w, &pre);
	assert_false(raw_reply(&w, RAFT_MSG_PREVOTE_RESP)->reject);
	assert_int_equal(raft_prevote_max(w.r), 4);
	/* a refused one (its log is behind ours) does not count */
	const uint64_t terms[] = {1, 1};
	struct raw v;
	raw_init(&v, 1, 1, terms, 2);
	pre = (struct raft_msg){.type = RAFT_MSG_PREVOTE, .from = 2, .to = 1,
				.term = 9, .index = 0, .log_term = 0};
	raw_recv(&v, &pre);
	assert_true(raw_reply(&v, RAFT_MSG_PREVOTE_RESP)->reject);
	assert_int_equal(raft_prevote_max(v.r), 0);
	assert_int_equal(raft_term(w.r), 1);
	raft_destroy(v.r);
	raft_destroy(w.r);
}

/* RAFT_EV_SKIP_TERM: to a higher term as a follower with no vote, the hard
 * state reported for the caller to make durable; a term not above the
 * current one changes nothing. */
static void test_skip_term(void **state)
{
	(void)state;
	struct raw w;
	raw_init(&w, 1, 2, NULL, 0);
	struct raft_event ev = {.type = RAFT_EV_SKIP_TERM, .skip = {.term = 5}};
	assert_int_equal(raft_step(w.r, &ev, &w.up), 0);
	assert_true(w.up.hard_state_changed);
	assert_int_equal(w.up.hard_state.term, 5);
	assert_int_equal(w.up.hard_state.vote, RAFT_NONE);
	assert_int_equal(raft_term(w.r), 5);
	assert_int_equal(raft_role(w.r), RAFT_FOLLOWER);
	ev.skip.term = 5;
	assert_int_equal(raft_step(w.r, &ev, &w.up), 0);
	assert_false(w.up.hard_state_changed);
	ev.skip.term = 3;
	assert_int_equal(raft_step(w.r, &ev, &w.up), 0);
	assert_false(w.up.hard_state_changed);
	assert_int_equal(raft_term(w.r), 5);
	/* a vote request of the skipped-over term is refused */
	struct raft_msg vote = {.type = RAFT_MSG_VOTE, .from = 2, .to = 1, .term = 4};
	raw_recv(&w, &vote);
	const struct raft_msg *resp = raw_reply(&w, RAFT_MSG_VOTE_RESP);
	assert_true(resp == NULL || resp->reject);
	assert_int_equal(raft_vote(w.r), RAFT_NONE);
	assert_int_equal(raft_term(w.r), 5);
	raft_destroy(w.r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rejoining_node_does_not_disrupt),
		cmocka_unit_test(test_without_prevote_rejoining_node_deposes_leader),
		cmocka_unit_test(test_prevote_changes_no_state),
		cmocka_unit_test(test_prevote_max_records_grants_only),
		cmocka_unit_test(test_skip_term),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
