/*
 * Snapshots and log compaction (§7): a snapshot replaces the log up to its
 * index; a follower behind the leader's log start receives the snapshot in
 * chunks and installs it (InstallSnapshot, Figure 13); a restart begins
 * from the snapshot plus the entries after it.
 */
#include "tests/unit/raft/fixture.h"

#include <errno.h>
#include <string.h>

static void write_n(struct sim *s, uint64_t leader, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(sim_propose(s, leader, (uint32_t)i % SIM_KEYS,
					     NULL),
				 0);
}

static void test_snapshot_compacts_the_log(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 10);
	write_n(s, 1, 10);
	sim_run_until(s, 40);
	ASSERT_APPLIED(s, 1, 11);
	sim_snapshot(s, 1);
	const struct raft_snapshot_meta *snap = raft_snapshot(sim_raft(s, 1));
	assert_int_equal(snap->index, 11);
	assert_int_equal(snap->term, 1);
	assert_int_equal(snap->conf.n, 3);
	assert_int_equal(raft_first_index(sim_raft(s, 1)), 12);
	assert_null(raft_entry_at(sim_raft(s, 1), 11));
	ASSERT_SAFE(s);
	sim_destroy(s);
}

/* Node 3 isolated while node 1 commits 20 entries and snapshots at 21:
 * node 3 needs entries from 2, which only the snapshot holds. Node 3 is
 * still isolated on return. */
static struct sim *node3_behind_snapshot(void)
{
	struct sim *s = cluster(3);
	elect(s, 1, 10);
	sim_isolate(s, 3, true);
	write_n(s, 1, 20);
	sim_run_until(s, 60);
	ASSERT_APPLIED(s, 1, 21);
	sim_snapshot(s, 1);
	return s;
}

static void test_lagging_follower_installs_snapshot_in_chunks(void **state)
{
	(void)state;
	struct sim *s = node3_behind_snapshot();
	sim_isolate(s, 3, false);
	sim_run_until(s, 200);
	/* 72 bytes of state machine in 64-byte chunks: two messages */
	assert_true(s->sent[1][RAFT_MSG_SNAPSHOT] >= 2);
	assert_int_equal(raft_snapshot(sim_raft(s, 3))->index, 21);
	ASSERT_APPLIED(s, 3, 21);
	assert_memory_equal(s->nodes[3].kv, s->nodes[1].kv,
			    sizeof(s->nodes[1].kv));
	/* and replication continues after the snapshot */
	write_n(s, 1, 2);
	sim_run_until(s, 240);
	ASSERT_APPLIED(s, 3, 23);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

/* After a snapshot, the leader tells the follower its commit index in an
 * APPEND (empty when nothing follows the snapshot), not only in
 * heartbeats, which never carry more than the follower's match. */
static void test_append_after_snapshot_without_entries(void **state)
{
	(void)state;
	struct sim *s = node3_behind_snapshot();
	uint64_t appends = s->sent[1][RAFT_MSG_APPEND];
	sim_isolate(s, 3, false);
	sim_run_until(s, 200);
	assert_int_equal(raft_snapshot(sim_raft(s, 3))->index, 21);
	/* node 2 was caught up: every APPEND since went to node 3 */
	assert_true(s->sent[1][RAFT_MSG_APPEND] > appends);
	assert_int_equal(commit_of(s, 3), 21);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_restart_from_snapshot(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 10);
	write_n(s, 1, 8);
	sim_run_until(s, 40);
	sim_snapshot(s, 2);
	uint64_t snap = raft_snapshot(sim_raft(s, 2))->index;
	assert_int_equal(snap, 9);
	write_n(s, 1, 2);
	sim_run_until(s, 60);
	sim_crash(s, 2);
	sim_restart(s, 2);
	struct raft *r = sim_raft(s, 2);
	assert_int_equal(raft_first_index(r), snap + 1);
	assert_int_equal(raft_last_index(r), 11);
	assert_int_equal(raft_commit_index(r), snap); /* commit is volatile */
	assert_int_equal(s->nodes[2].applied, snap);
	sim_run_until(s, 100);
	ASSERT_APPLIED(s, 2, 11);
	assert_memory_equal(s->nodes[2].kv, s->nodes[1].kv,
			    sizeof(s->nodes[1].kv));
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_snapshot_ahead_of_persisted_is_refused(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 10);
	struct raft_event ev = {.type = RAFT_EV_SNAPSHOT_TAKEN,
				.snapshot = {.index = 50, .data = "x", .len = 1}};
	struct raft_update up;
	assert_int_equal(raft_step(sim_raft(s, 1), &ev, &up), -EINVAL);
	sim_destroy(s);
}

/* Node 1 snapshots at `index` (applied, durable); returns the members its
 * snapshot records. */
static uint32_t members_at(struct sim *s, uint64_t index)
{
	struct raft_event ev = {.type = RAFT_EV_SNAPSHOT_TAKEN,
				.snapshot = {.index = index, .data = "x", .len = 1}};
	struct raft_update up;
	assert_int_equal(raft_step(sim_raft(s, 1), &ev, &up), 0);
	assert_int_equal(raft_snapshot(sim_raft(s, 1))->index, index);
	return raft_snapshot(sim_raft(s, 1))->conf.n;
}

/* A snapshot records the membership as of its own index: the one before
 * a later CONF entry, the new one from that entry on. */
static void test_snapshot_records_membership_at_its_index(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 10);
	write_n(s, 1, 3); /* entries 2-4 */
	assert_int_equal(sim_conf_change(s, 1, RAFT_CONF_ADD_LEARNER, 4), 0);
	write_n(s, 1, 2); /* the change at 5, entries 6-7 */
	sim_run_until(s, 60);
	ASSERT_APPLIED(s, 1, 7);
	assert_int_equal(members_at(s, 3), 3);
	assert_int_equal(members_at(s, 4), 3);
	assert_int_equal(members_at(s, 5), 4);
	assert_int_equal(members_at(s, 7), 4);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_compacts_the_log),
		cmocka_unit_test(test_lagging_follower_installs_snapshot_in_chunks),
		cmocka_unit_test(test_append_after_snapshot_without_entries),
		cmocka_unit_test(test_restart_from_snapshot),
		cmocka_unit_test(test_snapshot_ahead_of_persisted_is_refused),
		cmocka_unit_test(test_snapshot_records_membership_at_its_index),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
