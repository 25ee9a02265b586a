/*
 * Leader election (§5.2) and the voting rules of Figure 2's RequestVote:
 *   - reply false if term < currentTerm;
 *   - grant if votedFor is null or candidateId, and the candidate's log is
 *     at least as up-to-date as the receiver's (§5.4.1);
 *   - all servers: a message with term T > currentTerm makes the receiver
 *     set currentTerm = T and convert to follower (§5.1).
 */
#include "tests/unit/raft/fixture.h"
#include "tests/unit/raft/raw.h"

#include <string.h>

static void test_campaign_wins_after_prevote_and_vote(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	sim_campaign(s, 2); /* time 0: pre-votes out */
	sim_run_until(s, 3); /* pre-votes granted at 2, votes arrive at 3 */
	ASSERT_ROLE(s, 2, RAFT_CANDIDATE);
	ASSERT_TERM(s, 2, 1);
	sim_run_until(s, 4);
	ASSERT_LEADER(s, 2);
	ASSERT_TERM(s, 2, 1);
	/* the leader's NOOP (index 1) commits once a majority holds it
	 * durably: sent at 4, written at 5, acknowledged at 7 */
	sim_run_until(s, 6);
	ASSERT_NOT_COMMITTED(s, 2, 1);
	sim_run_until(s, 7);
	ASSERT_COMMITTED(s, 2, 1);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_random_timeouts_elect_one_leader(void **state)
{
	(void)state;
	struct sim *s = cluster(5);
	sim_run_until(s, 400);
	uint64_t leader = sim_leader(s);
	assert_true(leader != RAFT_NONE);
	int leaders = 0;
	for (uint64_t id = 1; id <= 5; id++) {
		leaders += raft_role(sim_raft(s, id)) == RAFT_LEADER;
		assert_int_equal(raft_leader(sim_raft(s, id)), leader);
	}
	assert_int_equal(leaders, 1);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_vote_at_most_once_per_term(void **state)
{
	(void)state;
	struct raw w;
	raw_init(&w, 1, 0, NULL, 0);
	struct raft_msg vote = {.type = RAFT_MSG_VOTE, .from = 2, .to = 1,
				.term = 1};
	raw_recv(&w, &vote);
	assert_false(raw_reply(&w, RAFT_MSG_VOTE_RESP)->reject);
	assert_int_equal(raft_vote(w.r), 2);
	assert_true(w.up.hard_state_changed);
	vote.from = 3;
	raw_recv(&w, &vote);
	assert_true(raw_reply(&w, RAFT_MSG_VOTE_RESP)->reject);
	vote.from = 2; /* the same candidate asking again is granted again */
	raw_recv(&w, &vote);
	assert_false(raw_reply(&w, RAFT_MSG_VOTE_RESP)->reject);
	raft_destroy(w.r);
}

static void test_vote_requires_up_to_date_log(void **state)
{
	(void)state;
	struct raw w;
	const uint64_t terms[] = {1, 1};
	raw_init(&w, 1, 1, terms, 2);
	/* same last term, shorter log: refused */
	struct raft_msg vote = {.type = RAFT_MSG_VOTE, .from = 2, .to = 1,
				.term = 2, .index = 1, .log_term = 1};
	raw_recv(&w, &vote);
	assert_true(raw_reply(&w, RAFT_MSG_VOTE_RESP)->reject);
	assert_int_equal(raft_term(w.r), 2);
	/* same last term, as long: granted */
	vote.from = 3;
	vote.index = 2;
	raw_recv(&w, &vote);
	assert_false(raw_reply(&w, RAFT_MSG_VOTE_RESP)->reject);
	raft_destroy(w.r);
	/* a later last term wins even with a shorter log */
	raw_init(&w, 1, 1, terms, 2);
	vote = (struct raft_msg){.type = RAFT_MSG_VOTE, .from = 2, .to = 1,
				 .term = 3, .index = 1, .log_term = 2};
	raw_recv(&w, &vote);
	assert_false(raw_reply(&w, RAFT_MSG_VOTE_RESP)->reject);
	raft_destroy(w.r);
}

static void test_higher_term_turns_leader_into_follower(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 10);
	ASSERT_LEADER(s, 1);
	struct raft_msg m = {.type = RAFT_MSG_HEARTBEAT_RESP, .from = 2,
			     .to = 1, .term = 5};
	struct raft_event ev = {.type = RAFT_EV_RECEIVE, .msg = &m};
	sim_event(s, 1, &ev, NULL);
	ASSERT_ROLE(s, 1, RAFT_FOLLOWER);
	ASSERT_TERM(s, 1, 5);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_stale_term_is_refused(void **state)
{
	(void)state;
	struct raw w;
	raw_init(&w, 1, 3, NULL, 0);
	struct raft_msg append = {.type = RAFT_MSG_APPEND, .from = 2, .to = 1,
				  .term = 2};
	raw_recv(&w, &append);
	const struct raft_msg *resp = raw_reply(&w, RAFT_MSG_APPEND_RESP);
	assert_non_null(resp);
	assert_int_equal(resp->term, 3); /* the stale leader learns term 3 */
	assert_int_equal(raft_leader(w.r), RAFT_NONE);
	assert_int_equal(raft_last_index(w.r), 0);
	raft_destroy(w.r);
}

/* §5.4.1: node 3 missed three committed entries; node 2 holds them and
 * refuses its vote, so node 3 cannot lead (a voter that ignored the rule
 * would elect it, and the checker would see Leader Completeness break). */
static void test_stale_log_cannot_win(void **state)
{
	(void)state;
	struct sim *s = cluster_with(3, false, false);
	elect(s, 1, 10);
	sim_isolate(s, 3, true);
	for (uint32_t k = 0; k < 3; k++)
		assert_int_equal(sim_propose(s, 1, k, NULL), 0);
	sim_run_until(s, 20);
	ASSERT_COMMITTED(s, 1, 4);
	sim_isolate(s, 1, true);
	sim_isolate(s, 3, false);
	elect(s, 3, 30);
	assert_int_not_equal(raft_role(sim_raft(s, 3)), RAFT_LEADER);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_campaign_wins_after_prevote_and_vote),
		cmocka_unit_test(test_random_timeouts_elect_one_leader),
		cmocka_unit_test(test_vote_at_most_once_per_term),
		cmocka_unit_test(test_vote_requires_up_to_date_log),
		cmocka_unit_test(test_higher_term_turns_leader_into_follower),
		cmocka_unit_test(test_stale_term_is_refused),
		cmocka_unit_test(test_stale_log_cannot_win),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
