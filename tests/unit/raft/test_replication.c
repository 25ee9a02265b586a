/*
 * Log replication (§5.3) and the commit rule (§5.4.2), after Figure 2's
 * AppendEntries rules and Figure 8's counter-example:
 *   - an entry is committed once the leader has stored it on a majority,
 *     the leader's own copy counting only once it is durable;
 *   - a follower whose log conflicts drops the conflicting suffix and
 *     takes the leader's entries; the leader skips a term per round trip;
 *   - entries of an earlier term are never committed by counting replicas;
 *   - replication to a follower is pipelined but bounded.
 */
#include "tests/unit/raft/fixture.h"
#include "tests/unit/raft/raw.h"

#include <string.h>

static void test_entry_committed_then_applied_everywhere(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 10);
	uint64_t value;
	assert_int_equal(sim_propose(s, 1, 0, &value), 0);
	assert_int_equal(sim_write_get(s, value)->index, 2);
	/* sent at 10, written by followers at 12, acknowledged at 13 */
	sim_run_until(s, 12);
	ASSERT_NOT_COMMITTED(s, 1, 2);
	sim_run_until(s, 13);
	ASSERT_COMMITTED(s, 1, 2);
	assert_int_equal(sim_write_get(s, value)->ack, 13);
	/* followers learn the commit index from the heartbeat at 20 */
	sim_run_until(s, 20);
	ASSERT_NOT_COMMITTED(s, 2, 2);
	sim_run_until(s, 21);
	for (uint64_t id = 1; id <= 3; id++)
		ASSERT_APPLIED(s, id, 2);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

/* A one-voter group: the leader's own durable copy is the majority. */
static void test_leader_counts_itself_once_persisted(void **state)
{
	(void)state;
	struct raft_rng rng;
	raft_rng_seed(&rng, 1);
	struct raft_config cfg;
	raft_config_default(&cfg);
	cfg.id = 1;
	cfg.rng = &rng;
	struct raft *r;
	assert_int_equal(raft_create(&r, &cfg), 0);
	struct raft_hard_state hs = {0, 0};
	struct raft_snapshot_meta snap;
	memset(&snap, 0, sizeof(snap));
	snap.conf.n = 1;
	snap.conf.servers[0].id = 1;
	snap.conf.servers[0].role = RAFT_VOTER;
	assert_int_equal(raft_restore(r, &hs, &snap, NULL, 0, NULL, 0), 0);
	struct raft_update up;
	struct raft_event ev = {.type = RAFT_EV_CAMPAIGN};
	assert_int_equal(raft_step(r, &ev, &up), 0);
	assert_int_equal(raft_role(r), RAFT_LEADER);
	assert_int_equal(up.n_persist, 1); /* the NOOP */
	ev = (struct raft_event){.type = RAFT_EV_PROPOSE,
				 .propose = {.data = "x", .len = 1}};
	assert_int_equal(raft_step(r, &ev, &up), 0);
	assert_int_equal(up.proposed_index, 2);
	assert_int_equal(up.persist_first, 2);
	assert_int_equal(up.persist_mark, 2);
	assert_int_equal(raft_commit_index(r), 0);
	/* a report naming an entry the log does not hold (a wrong term)
	 * counts for nothing, even with the write's own mark */
	ev = (struct raft_event){.type = RAFT_EV_PERSISTED,
				 .persisted = {.index = 2, .term = 7, .mark = 2}};
	assert_int_equal(raft_step(r, &ev, &up), 0);
	assert_int_equal(raft_commit_index(r), 0);
	ev.persisted.term = 1;
	assert_int_equal(raft_step(r, &ev, &up), 0);
	assert_int_equal(raft_commit_index(r), 2);
	assert_int_equal(up.apply_first, 1);
	assert_int_equal(up.n_apply, 2);
	assert_int_equal(up.apply[1].len, 1);
	/* a repeated report changes nothing */
	assert_int_equal(raft_step(r, &ev, &up), 0);
	assert_int_equal(up.n_apply, 0);
	raft_destroy(r);
}

static void test_conflicting_suffix_is_replaced(void **state)
{
	(void)state;
	/* no pre-vote or leases: node 2 may depose node 1 at once */
	struct sim *s = cluster_with(3, false, false);
	elect(s, 1, 10);
	sim_isolate(s, 1, true);
	for (uint32_t k = 0; k < 6; k++) /* indexes 2..7, never committed */
		assert_int_equal(sim_propose(s, 1, k % SIM_KEYS, NULL), 0);
	elect(s, 2, 20); /* 2 and 3 hold only index 1; 2 wins term 2 */
	ASSERT_LEADER(s, 2);
	for (uint32_t k = 0; k < 3; k++)
		assert_int_equal(sim_propose(s, 2, k, NULL), 0);
	sim_run_until(s, 30);
	ASSERT_COMMITTED(s, 2, 5);
	uint64_t rejects = s->sent[1][RAFT_MSG_APPEND_RESP];
	sim_isolate(s, 1, false);
	sim_run_until(s, 60);
	/* node 1 dropped its term-1 suffix and holds the leader's log */
	struct raft *old = sim_raft(s, 1), *leader = sim_raft(s, 2);
	assert_int_equal(raft_last_index(old), raft_last_index(leader));
	for (uint64_t i = 1; i <= raft_last_index(leader); i++) {
		uint64_t a, b;
		assert_true(raft_term_at(old, i, &a));
		assert_true(raft_term_at(leader, i, &b));
		assert_int_equal(a, b);
	}
	ASSERT_COMMITTED(s, 1, 5);
	/* the hint skipped the whole term-1 suffix in one round trip:
	 * one rejection, then acknowledgements */
	assert_true(s->sent[1][RAFT_MSG_APPEND_RESP] - rejects <= 4);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

/*
 * Figure 8 of the paper, with five servers and one entry per APPEND:
 * S1 (term 1) stores indexes 2-3 on S2 only; S5 wins term 2 and writes its
 * NOOP at index 2 alone; S1 wins term 3 and brings index 2 to S3. Index 2
 * is now on a majority (S1, S2, S3) but is from term 1: committing it by
 * counting would be unsafe, because S5 can still win term 4 and overwrite
 * it. Returns the commit index S1 reached when the majority first held
 * index 2, after S1 crashed with its messages lost.
 */
static uint64_t figure8(struct sim *s)
{
	elect(s, 1, 15);
	for (uint64_t peer = 3; peer <= 5; peer++) {
		sim_cut(s, 1, peer, true);
		sim_cut(s, peer, 1, true);
	}
	sim_propose(s, 1, 0, NULL);
	sim_propose(s, 1, 1, NULL);
	sim_run_until(s, 25); /* S2 holds 1..3 */
	sim_crash(s, 1);
	sim_cut(s, 5, 2, true);
	sim_cut(s, 2, 5, true);
	sim_campaign(s, 5);
	sim_run_until(s, 26);
	sim_cut(s, 5, 3, true); /* S5's APPENDs go nowhere */
	sim_cut(s, 5, 4, true);
	sim_run_until(s, 30);
	ASSERT_LEADER(s, 5);
	ASSERT_TERM(s, 5, 2);
	sim_crash(s, 5);
	sim_heal(s);
	sim_restart(s, 1);
	elect(s, 1, 33); /* term 2: S3, S4 already voted for S5 */
	elect(s, 1, 36); /* term 3: S2, S3, S4 grant */
	ASSERT_LEADER(s, 1);
	ASSERT_TERM(s, 1, 3);
	while (!s->failed && commit_of(s, 1) < 2 && s->now < 100)
		sim_step(s);
	uint64_t commit = commit_of(s, 1);
	sim_crash(s, 1);
	sim_drop_from(s, 1);
	sim_restart(s, 5);
	uint64_t t = s->now;
	elect(s, 5, t + 5);  /* term 3: everyone voted for S1 */
	elect(s, 5, t + 10); /* term 4 */
	return commit;
}

static struct sim *figure8_cluster(void)
{
	struct sim_opts o;
	sim_opts_default(&o, 5, 8);
	o.fixed_ticks = true;
	o.pre_vote = false;
	o.check_quorum = false;
	o.max_msg_bytes = 12; /* one client entry per APPEND */
	return sim_create(&o);
}

static void test_figure8_old_term_entry_not_committed_by_counting(void **state)
{
	(void)state;
	struct sim *s = figure8_cluster();
	/* S1 commits only once its term-3 NOOP (index 4) is on a majority */
	assert_int_equal(figure8(s), 4);
	assert_int_not_equal(sim_leader(s), 5);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_in_flight_appends_are_bounded(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 20); /* both followers in REPLICATE */
	uint64_t before = s->sent[1][RAFT_MSG_APPEND];
	for (uint32_t k = 0; k < 40; k++)
		assert_int_equal(sim_propose(s, 1, k % SIM_KEYS, NULL), 0);
	/* 40 proposals at one instant: 4 APPENDs in flight per follower */
	assert_int_equal(s->sent[1][RAFT_MSG_APPEND] - before, 8);
	sim_run_until(s, 60);
	ASSERT_COMMITTED(s, 1, 41);
	ASSERT_COMMITTED(s, 3, 41);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

static void test_crash_loses_only_unpersisted_entries(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 10);
	sim_propose(s, 1, 0, NULL);
	sim_run_until(s, 11); /* followers hold index 2, not yet durable */
	sim_crash(s, 3);
	sim_restart(s, 3);
	assert_int_equal(raft_last_index(sim_raft(s, 3)), 1);
	sim_run_until(s, 40);
	ASSERT_COMMITTED(s, 3, 2);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

/*
 * Figure 2, AppendEntries rule 5 with a stale tail: "if leaderCommit >
 * commitIndex, set commitIndex = min(leaderCommit, index of last new
 * entry)". Follower 2 holds 1 1 2 2; the leader of term 3 holds 1 1 2 3
 * and has committed all four. Its APPEND carries only index 3, which
 * matches: index 4 (term 2) stays, stale, until a later APPEND overwrites
 * it. The follower may commit, and acknowledge, only up to 3.
 */
static void test_follower_commits_only_what_the_append_matched(void **state)
{
	(void)state;
	struct raw w;
	const uint64_t log[] = {1, 1, 2, 2};
	raw_init(&w, 2, 3, log, 4);
	const struct raft_entry entry = {.term = 2, .type = RAFT_ENTRY_NORMAL};
	struct raft_msg append = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2,
				  .term = 3, .index = 2, .log_term = 1,
				  .commit = 4, .entries = &entry,
				  .n_entries = 1};
	assert_int_equal(raw_recv(&w, &append), 0);
	assert_int_equal(raft_commit_index(w.r), 3);
	assert_int_equal(raft_last_index(w.r), 4); /* the stale tail */
	const struct raft_msg *ack = raw_reply(&w, RAFT_MSG_APPEND_RESP);
	assert_non_null(ack);
	assert_false(ack->reject);
	assert_int_equal(ack->index, 3); /* not 4: it is not the leader's */
	assert_int_equal(w.up.n_apply, 3);
	raft_destroy(w.r);
}

/* A follower never commits past the end of its own log, whatever commit
 * index a heartbeat carries. */
static void test_heartbeat_commit_stops_at_last_index(void **state)
{
	(void)state;
	struct raw w;
	const uint64_t log[] = {1, 1};
	raw_init(&w, 2, 1, log, 2);
	struct raft_msg heartbeat = {.type = RAFT_MSG_HEARTBEAT, .from = 1,
				     .to = 2, .term = 1, .commit = 10};
	assert_int_equal(raw_recv(&w, &heartbeat), 0);
	assert_int_equal(raft_commit_index(w.r), 2);
	assert_int_equal(w.up.n_apply, 2);
	raft_destroy(w.r);
}

/*
 * A follower acknowledges only what it knows matches the leader of the
 * current term. Node 2 matched leader 1 up to index 5 in term 9; node 1
 * then leads term 10 having lost index 3-5 (they were not durable on it).
 * Its first APPEND of term 10 matches only index 1: the acknowledgement
 * says 1, not the 5 of the earlier term.
 */
static void test_match_of_an_earlier_term_is_not_acknowledged(void **state)
{
	(void)state;
	struct raw w;
	const uint64_t log[] = {1, 9, 9, 9, 9};
	raw_init(&w, 2, 9, log, 5);
	struct raft_msg append = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2,
				  .term = 9, .index = 5, .log_term = 9};
	assert_int_equal(raw_recv(&w, &append), 0);
	assert_int_equal(raw_reply(&w, RAFT_MSG_APPEND_RESP)->index, 5);
	append = (struct raft_msg){.type = RAFT_MSG_APPEND, .from = 1, .to = 2,
				   .term = 10, .index = 1, .log_term = 1};
	assert_int_equal(raw_recv(&w, &append), 0);
	const struct raft_msg *ack = raw_reply(&w, RAFT_MSG_APPEND_RESP);
	assert_non_null(ack);
	assert_false(ack->reject);
	assert_int_equal(ack->index, 1);
	raft_destroy(w.r);
}

/* Acknowledgements arrive from the network: one for an index the leader
 * never had is dropped, never counted toward a commit. */
static void test_leader_drops_ack_beyond_its_log(void **state)
{
	(void)state;
	struct sim *s = cluster(3);
	elect(s, 1, 10);
	uint64_t last = raft_last_index(sim_raft(s, 1));
	for (uint64_t from = 2; from <= 3; from++) {
		struct raft_msg ack = {.type = RAFT_MSG_APPEND_RESP,
				       .from = from, .to = 1, .term = 1,
				       .index = last + 100};
		struct raft_event ev = {.type = RAFT_EV_RECEIVE, .msg = &ack};
		sim_event(s, 1, &ev, NULL);
	}
	ASSERT_LEADER(s, 1);
	assert_int_equal(commit_of(s, 1), last);
	ASSERT_SAFE(s);
	sim_destroy(s);
}

/* Leader `from` at `term` sends follower 2 entries 2.. after (1, term 1). */
static uint64_t append_to(struct raw *w, uint64_t from, uint64_t term,
			  const uint64_t *terms, uint32_t n)
{
	struct raft_entry e[4];
	assert_true(n <= 4);
	for (uint32_t i = 0; i < n; i++)
		e[i] = (struct raft_entry){.term = terms[i],
					   .type = RAFT_ENTRY_NORMAL};
	struct raft_msg m = {.type = RAFT_MSG_APPEND, .from = from, .to = 2,
			     .term = term, .index = 1, .log_term = 1,
			     .entries = e, .n_entries = n};
	assert_int_equal(raw_recv(w, &m), 0);
	assert_int_equal(w->up.persist_first, 2);
	assert_int_equal(w->up.n_persist, n);
	return w->up.persist_mark;
}

/* The disk reports a write durable; returns the index acknowledged. */
static uint64_t persisted_report(struct raw *w, uint64_t index, uint64_t term,
				 uint64_t mark)
{
	struct raft_event ev = {.type = RAFT_EV_PERSISTED,
				.persisted = {.index = index, .term = term,
					      .mark = mark}};
	assert_int_equal(raft_step(w->r, &ev, &w->up), 0);
	const struct raft_msg *ack = raw_reply(w, RAFT_MSG_APPEND_RESP);
	return ack ? ack->index : 0;
}

/*
 * A write issued before a truncation reports late (raft-sim seed
 * 1,032,489). Follower 2's disk is slow: it queues entries 2..4 of term 3,
 * then leader 3 (term 5) overwrites index 2, then leader 1 (term 6) writes
 * its term-3 entries 2..4 back. The first write's report (4, term 3) names
 * entries the log holds again, but the queued term-5 write behind it cuts
 * the disk back to index 2: were the report taken, the follower would
 * acknowledge 3..4 as durable while a crash could lose them.
 */
static void test_report_of_an_overwritten_write_is_stale(void **state)
{
	(void)state;
	static const uint64_t one[1] = {1}, term3[3] = {3, 3, 3},
			      term5[1] = {5};
	struct raw w;
	raw_init(&w, 2, 3, one, 1);
	uint64_t first = append_to(&w, 1, 3, term3, 3);
	uint64_t overwrite = append_to(&w, 3, 5, term5, 1);
	uint64_t rewrite = append_to(&w, 1, 6, term3, 3);
	assert_true(first < overwrite && overwrite < rewrite);
	/* the disk completes the writes in order */
	assert_int_equal(persisted_report(&w, 4, 3, first), 0);
	assert_int_equal(raft_persisted_index(w.r), 1);
	assert_int_equal(persisted_report(&w, 2, 5, overwrite), 0);
	assert_int_equal(raft_persisted_index(w.r), 1);
	assert_int_equal(persisted_report(&w, 4, 3, rewrite), 4);
	assert_int_equal(raft_persisted_index(w.r), 4);
	/* a mark never handed out is not believed either */
	assert_int_equal(persisted_report(&w, 4, 3, rewrite + 1), 0);
	raft_destroy(w.r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entry_committed_then_applied_everywhere),
		cmocka_unit_test(test_leader_counts_itself_once_persisted),
		cmocka_unit_test(test_conflicting_suffix_is_replaced),
		cmocka_unit_test(test_figure8_old_term_entry_not_committed_by_counting),
		cmocka_unit_test(test_in_flight_appends_are_bounded),
		cmocka_unit_test(test_crash_loses_only_unpersisted_entries),
		cmocka_unit_test(test_follower_commits_only_what_the_append_matched),
		cmocka_unit_test(test_heartbeat_commit_stops_at_last_index),
		cmocka_unit_test(test_match_of_an_earlier_term_is_not_acknowledged),
		cmocka_unit_test(test_leader_drops_ack_beyond_its_log),
		cmocka_unit_test(test_report_of_an_overwritten_write_is_stale),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
