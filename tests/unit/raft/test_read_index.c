/*
 * ReadIndex (§6.4): the leader records its commit index, confirms it is
 * still leader with a heartbeat round acknowledged by a majority, and the
 * read is served once that index is applied. Reads queued while a round is
 * out share the next round. A leader that cannot confirm never serves.
 */
#include "tests/unit/raft/fixture.h"

#include <string.h>

static void test_read_waits_for_heartbeat_quorum(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 10);
	uint64_t value, id;
	assert_int_equal(sim_propose(s, 1, 0, &value), 0);
	sim_run_until(s, 15); /* acknowledged at 13 */
	assert_int_equal(sim_read(s, 1, 0, &id), 0);
	/* heartbeat out at 15, answered at 16, back at 17 */
	sim_run_until(s, 16);
	assert_int_equal(s->reads[id - 1].done_at, 0);
	sim_run_until(s, 17);
	assert_int_equal(s->reads[id - 1].done_at, 17);
	assert_int_equal(s->reads[id - 1].value, value);
	assert_int_equal(s->reads[id - 1].index, 2);
	assert_int_equal(sim_read(s, 2, 0, NULL), RAFT_ENOTLEADER);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_reads_are_batched(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 15);
	uint64_t before = s->sent[1][RAFT_MSG_HEARTBEAT];
	for (int i = 0; i < 10; i++)
		assert_int_equal(sim_read(s, 1, (uint32_t)i % SIM_KEYS, NULL), 0);
	sim_run_until(s, 19);
	/* the first read's round, then one round for the nine behind it */
	assert_int_equal(s->sent[1][RAFT_MSG_HEARTBEAT] - before, 4);
	assert_int_equal(s->reads_ok, 10);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

/* Node 1 is cut off; nodes 2 and 3 elect node 2 and acknowledge a write. */
static void deposed(struct sim *s, uint64_t *read_id)
{
	elect(s, 1, 10);
	sim_isolate(s, 1, true);
	elect(s, 2, 15);
	ASSERT_LEADER(s, 2);
	uint64_t value;
	assert_int_equal(sim_propose(s, 2, 0, &value), 0);
	sim_run_until(s, 20);
	assert_true(sim_write_get(s, value)->ack <= 20);
	assert_int_equal(raft_role(sim_raft(s, 1)), RAFT_LEADER);
	assert_int_equal(sim_read(s, 1, 0, read_id), 0);
}

static void test_deposed_leader_never_serves(void **state)
{
	(void)state;
	struct sim *s = cluster_with(3, false, false);
	uint64_t id;
	deposed(s, &id);
	sim_run_until(s, 300);
	assert_int_equal(s->reads[id - 1].done_at, 0);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

/*
 * §6.4 step 2: a read is confirmed only by a heartbeat round sent after it
 * arrived. Node 1 sends round 1 for a first read at 15; the followers'
 * acknowledgements are held in the network. Node 1 is cut off, node 2
 * wins term 2 and acknowledges a write. A second read reaches node 1 (it
 * still believes it leads) at 30, and only then does round 1's old
 * acknowledgement land: it confirms the first read, which began before
 * the write, but the second read must wait for a round of its own.
 */
static void test_late_ack_confirms_only_reads_before_its_round(void **state)
{
	(void)state;
	struct sim *s = cluster_with(3, false, false);
	elect(s, 1, 10);
	uint64_t before, after, first, second;
	assert_int_equal(sim_propose(s, 1, 0, &before), 0);
	sim_run_until(s, 15);
	sim_cut(s, 2, 1, true); /* acknowledgements held, see below */
	sim_cut(s, 3, 1, true);
	assert_int_equal(sim_read(s, 1, 0, &first), 0); /* round 1 */
	sim_run_until(s, 16); /* round 1 reached nodes 2 and 3 */
	sim_isolate(s, 1, true);
	elect(s, 2, 20);
	ASSERT_LEADER(s, 2);
	assert_int_equal(sim_propose(s, 2, 0, &after), 0);
	sim_run_until(s, 30);
	assert_true(sim_write_get(s, after)->ack <= 30);
	assert_int_equal(raft_role(sim_raft(s, 1)), RAFT_LEADER);
	assert_int_equal(sim_read(s, 1, 0, &second), 0);
	/* node 2's acknowledgement of round 1, sent at 16, arrives now */
	struct raft_msg late = {.type = RAFT_MSG_HEARTBEAT_RESP, .from = 2,
				.to = 1, .term = 1, .context = 1};
	struct raft_event ev = {.type = RAFT_EV_RECEIVE, .msg = &late};
	sim_event(s, 1, &ev, NULL);
	ASSERT_SAFE(s);
	assert_int_equal(s->reads[first - 1].done_at, 30);
	assert_int_equal(s->reads[first - 1].value, before);
	assert_int_equal(s->reads[second - 1].done_at, 0);
	sim_run_until(s, 300);
	assert_int_equal(s->reads[second - 1].done_at, 0);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_waits_for_heartbeat_quorum),
		cmocka_unit_test(test_reads_are_batched),
		cmocka_unit_test(test_deposed_leader_never_serves),
		cmocka_unit_test(test_late_ack_confirms_only_reads_before_its_round),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
