/*
 * Tests for cluster/wiped_probe.c: what a replica that started empty (a
 * wiped data dir, or a new cluster's first start) decides from its group's
 * answers, and the wire form of the ask and the answer. The rule is in
 * cluster/wiped_probe.h; these tests read it case by case: a wiped node
 * takes no part (no vote request is ever stepped: the probe only records)
 * until a majority of the other members answered, and comes back as the
 * incarnation after the newest one any answer names.
 *
 * The last tests run the rule through the real code (replica_wiped.c,
 * answer() and settle()) on nodes of replica_fixture.h, with the messages
 * each node receives chosen by the test (deliver_filter): the unsafe
 * schedule at R = 5, a settle or amnesia marker whose write fails, and a
 * settle marker kept until the group's state is durable.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/peer_msg.h"
#include "cluster/replica_ident.h"
#include "cluster/replica_internal.h"
#include "cluster/wiped_probe.h"
#include "replica_fixture.h"

#define SELF 3
#define DIR_ID 0x1234abcdull

static struct raft_conf conf_of(unsigned n)
{
	struct raft_conf c = { .n = n };

	for (unsigned i = 0; i < n; i++)
		c.servers[i] = (struct raft_server){ .id = i + 1, .role = RAFT_VOTER };
	return c;
}

/* Node `node`'s answer to the probe's ask, as its replica would make it:
 * its configuration names our node as `member` (RAFT_NONE: not at all). */
/* The data dir id each answerer answers from (the answer's `commit`). */
#define ANSWERER_DIR(node) (0xd1000ull + (node))

static struct raft_msg answer_from(const struct wiped_probe *p, uint64_t node, uint64_t term,
				   uint64_t last, unsigned flags, uint64_t member)
{
	struct raft_conf theirs = conf_of(0);
	struct raft_msg ask, out;
	uint32_t i = 0;

	while (p->others[i] != node)
		i++;
	wiped_probe_ask(p, replica_ident(SELF, 0), i, &ask);
	assert_true(wiped_probe_is_ask(&ask));
	theirs.servers[theirs.n++] = (struct raft_server){ node, RAFT_VOTER };
	if (member != RAFT_NONE)
		theirs.servers[theirs.n++] = (struct raft_server){ member, RAFT_VOTER };
	wiped_probe_answer(&ask, replica_ident(node, 0), &theirs, term, last, flags,
			   ANSWERER_DIR(node), &out);
	assert_true(wiped_probe_is_answer(&out));
	return out;
}

/* Node 3 wiped in a group of 3 whose members 1 and 2 hold a history
 * (term 4, 90 entries). It takes no part until both answered: a vote
 * request of the term it may have voted in before is recorded and
 * nothing else; the first answer alone decides nothing (the other may
 * name a newer incarnation); then it is amnesiac, incarnation 1. */
static void test_wiped_node_waits_then_rejoins(void **state)
{
	struct raft_conf conf = conf_of(3);
	struct wiped_probe p;
	struct raft_msg vote = { .type = RAFT_MSG_VOTE, .from = 2, .to = SELF, .term = 4,
				 .index = 90, .log_term = 4 };
	struct raft_msg a;

	(void)state;
	wiped_probe_init(&p, SELF, DIR_ID, &conf);
	assert_int_equal(p.nothers, 2);
	assert_int_equal(wiped_probe_decide(&p), WIPED_WAIT);
	assert_int_equal(wiped_probe_take(&p, &vote), WIPED_WAIT); /* not an answer */
	a = answer_from(&p, 1, 4, 90, 0, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_WAIT);
	a = answer_from(&p, 2, 4, 90, 0, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_AMNESIAC);
	assert_int_equal(wiped_probe_incarnation(&p), 1);
	assert_true(wiped_probe_member(&p, 0) == replica_ident(1, 0));
}

/* The newest identity any answer names decides: node 3 rejoined twice
 * before (incarnation 2), one answer lags (names incarnation 1). */
static void test_incarnation_after_the_newest_named(void **state)
{
	struct raft_conf conf = conf_of(3);
	struct wiped_probe p;
	struct raft_msg a;

	(void)state;
	wiped_probe_init(&p, SELF, DIR_ID, &conf);
	a = answer_from(&p, 1, 7, 10, 0, replica_ident(SELF, 1));
	wiped_probe_take(&p, &a);
	a = answer_from(&p, 2, 7, 10, 0, replica_ident(SELF, 2));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_AMNESIAC);
	assert_int_equal(wiped_probe_incarnation(&p), 3);
	assert_true(wiped_probe_member(&p, 1) == replica_ident(2, 0));
}

/* A new cluster's first start: every replica asks. Nothing is decided
 * until every other member answered (an asking member knows nothing);
 * then all started empty: a new group. */
static void test_first_start_all_asking(void **state)
{
	struct raft_conf conf = conf_of(3);
	struct wiped_probe p;
	struct raft_msg a;

	(void)state;
	wiped_probe_init(&p, SELF, DIR_ID, &conf);
	a = answer_from(&p, 1, 0, 0, WIPED_ANSWER_ASKING, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_WAIT);
	a = answer_from(&p, 2, 0, 0, WIPED_ANSWER_ASKING, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_FRESH);
}

/*
 * Five members. A majority of the others (3 of 4) settled and empty, each
 * complete (HCOMPLETE): no election was ever won (its voters would show a
 * history). Two settled and
 * one asking is not enough: {1, 2, 3} may have elected 1, and 2 be wiped
 * too (asking), while 4 and 5 were down -- 1, holding the history, has
 * not answered. With all four answered and none with a history, every
 * copy started empty: a new group.
 */
static void test_five_members(void **state)
{
	struct raft_conf conf = conf_of(5);
	struct wiped_probe p, q;
	struct raft_msg a;

	(void)state;
	wiped_probe_init(&p, SELF, DIR_ID, &conf);
	assert_int_equal(p.nothers, 4);
	a = answer_from(&p, 2, 0, 0, WIPED_ANSWER_ASKING, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_WAIT);
	a = answer_from(&p, 4, 0, 0, 0, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_WAIT);
	a = answer_from(&p, 5, 0, 0, 0, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_WAIT); /* 3 heard, 2 settled */
	q = p;
	a = answer_from(&p, 1, 0, 0, 0, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_FRESH);
	/* Or 1 answers with the history: amnesiac. */
	a = answer_from(&q, 1, 2, 5, 0, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&q, &a), WIPED_AMNESIAC);
	/* Three settled complete ones suffice without the fourth. */
	wiped_probe_init(&p, SELF, DIR_ID, &conf);
	for (uint64_t node = 1; node <= 4; node++) {
		if (node == SELF)
			continue;
		a = answer_from(&p, node, 0, 0, WIPED_ANSWER_HCOMPLETE, replica_ident(SELF, 0));
		assert_int_equal(wiped_probe_take(&p, &a), node < 4 ? WIPED_WAIT : WIPED_FRESH);
	}
	assert_int_equal(wiped_probe_skip_term(&p), 0);
}

/*
 * A settled answer without HCOMPLETE (a replica restarted since it
 * settled, or an older build's) may have forgotten a pre-vote it granted:
 * it does not count toward the majority, only toward "every member
 * answered". A vouch counts.
 */
static void test_settled_needs_hcomplete(void **state)
{
	struct raft_conf conf = conf_of(5);
	struct wiped_probe p, q;
	struct raft_msg a;

	(void)state;
	wiped_probe_init(&p, SELF, DIR_ID, &conf);
	a = answer_from(&p, 1, 0, 0, 0, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_WAIT);
	a = answer_from(&p, 2, 0, 0, WIPED_ANSWER_HCOMPLETE, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_WAIT);
	a = answer_from(&p, 4, 0, 0, WIPED_ANSWER_HCOMPLETE, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_WAIT); /* 2 counted of 3 heard */
	q = p;
	a = answer_from(&p, 5, 0, 0, 0, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_FRESH); /* every member answered */
	/* A member that vouches for us counts, its term and log aside. */
	a = answer_from(&q, 5, 8, 0, WIPED_ANSWER_VOUCH, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&q, &a), WIPED_FRESH);
	/* An asking answer with HCOMPLETE set is still an asker's. */
	wiped_probe_init(&p, SELF, DIR_ID, &conf);
	for (uint64_t node = 1; node <= 4; node++) {
		if (node == SELF)
			continue;
		a = answer_from(&p, node, 0, 0,
				WIPED_ANSWER_HCOMPLETE | (node == 1 ? WIPED_ANSWER_ASKING : 0),
				replica_ident(SELF, 0));
		assert_int_equal(wiped_probe_take(&p, &a), WIPED_WAIT);
	}
}

/*
 * "Settled, no history" is a snapshot, not a promise (docs/cluster/
 * wiped-rule-proposal.md, schedule 3): node 3's old data dir voted in
 * term 1 for node 1, whose vote request to node 2 is still in flight;
 * node 2 granted node 1's pre-vote for term 1 (h = 1). Node 3's new dir
 * hears 2, 4 and 5 settled with no history: a new group's member, but at
 * term 2 with no vote, never in term 1. h is the answerer's pre-vote
 * mark or its term; a term without the HISTORY flag (one it skipped to)
 * is none; a vouch's h is not taken.
 */
static void test_skip_past_granted_prevotes(void **state)
{
	struct raft_conf conf = conf_of(5);
	struct wiped_probe p;
	struct raft_msg a;

	(void)state;
	wiped_probe_init(&p, SELF, DIR_ID, &conf);
	a = answer_from(&p, 2, 1, 0, WIPED_ANSWER_HCOMPLETE, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_WAIT);
	assert_false(p.history);
	a = answer_from(&p, 4, 0, 0, WIPED_ANSWER_HCOMPLETE, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_WAIT);
	a = answer_from(&p, 5, 0, 0, WIPED_ANSWER_HCOMPLETE, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_FRESH);
	assert_int_equal(wiped_probe_skip_term(&p), 2);
	/* A vouch's h (a leader's term, often) is not taken. */
	a = answer_from(&p, 1, 7, 0, WIPED_ANSWER_VOUCH, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_FRESH);
	assert_int_equal(wiped_probe_skip_term(&p), 2);
	/* The skipped-to term of a member that settled so itself (term 6, no
	 * vote, no log) shows no history; a log does, flag or not. */
	wiped_probe_init(&p, SELF, DIR_ID, &conf);
	for (uint64_t node = 1; node <= 4; node++) {
		if (node == SELF)
			continue;
		a = answer_from(&p, node, node == 4 ? 6 : 0, 0, WIPED_ANSWER_HCOMPLETE,
				replica_ident(SELF, 0));
		wiped_probe_take(&p, &a);
	}
	assert_int_equal(wiped_probe_decide(&p), WIPED_FRESH);
	assert_int_equal(wiped_probe_skip_term(&p), 7);
	a = answer_from(&p, 5, 0, 3, WIPED_ANSWER_HCOMPLETE, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_AMNESIAC);
}

/*
 * Five members, the earlier answer ASKING, a later one settled (a review
 * found the asker stayed undecided for ever: the ASKING flag counted for
 * good and the member was never asked again). Node 1 answers first that
 * it asks too; 4 and 5 answer settled and empty; 2 is down. Three heard,
 * two settled: wait, and 1 is still worth asking. 1 settles (fresh) and
 * answers again: its latest answer replaces the first, three settled of
 * four: fresh. Then the other way: 1 settles with a history (it came back
 * amnesiac, or got a leader): amnesiac. What an answer showed of the group
 * stays: a history answered once is not undone by a later ASKING answer
 * (that member wiped since), and the vouch's record of the dir that said
 * it was asking is kept.
 */
static void test_asking_answer_replaced_by_a_settled_one(void **state)
{
	struct raft_conf conf = conf_of(5);
	struct wiped_probe p, q;
	struct raft_msg a;

	(void)state;
	wiped_probe_init(&p, SELF, DIR_ID, &conf);
	a = answer_from(&p, 1, 0, 0, WIPED_ANSWER_ASKING, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_WAIT);
	assert_true(wiped_probe_unsettled(&p, 0));
	a = answer_from(&p, 4, 0, 0, WIPED_ANSWER_HCOMPLETE, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_WAIT);
	a = answer_from(&p, 5, 0, 0, WIPED_ANSWER_HCOMPLETE, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_WAIT); /* 3 heard, 2 settled */
	assert_true(wiped_probe_unsettled(&p, 0));  /* asking: asked again */
	assert_true(wiped_probe_unsettled(&p, 1));  /* node 2: not heard */
	assert_false(wiped_probe_unsettled(&p, 2)); /* node 4: settled, final */
	q = p;
	a = answer_from(&p, 1, 0, 0, WIPED_ANSWER_HCOMPLETE, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_FRESH);
	assert_false(wiped_probe_unsettled(&p, 0));
	assert_int_equal(p.asking_dir[0], ANSWERER_DIR(1)); /* the vouch's record */
	a = answer_from(&q, 1, 3, 12, WIPED_ANSWER_HISTORY, replica_ident(SELF, 1));
	assert_int_equal(wiped_probe_take(&q, &a), WIPED_AMNESIAC);
	assert_int_equal(wiped_probe_incarnation(&q), 2);
	/* A history stays: node 1 answered one, then (wiped since) asking. */
	wiped_probe_init(&p, SELF, DIR_ID, &conf);
	a = answer_from(&p, 1, 3, 12, 0, replica_ident(SELF, 0));
	wiped_probe_take(&p, &a);
	a = answer_from(&p, 1, 0, 0, WIPED_ANSWER_ASKING, replica_ident(SELF, 0));
	wiped_probe_take(&p, &a);
	a = answer_from(&p, 2, 0, 0, WIPED_ANSWER_ASKING, replica_ident(SELF, 0));
	wiped_probe_take(&p, &a);
	a = answer_from(&p, 4, 0, 0, WIPED_ANSWER_ASKING, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_AMNESIAC);
}

/*
 * --initial-cluster-state bootstrap (self_new): the operator states this
 * node's data dir was made for a new cluster's first start. Three members,
 * node 2 never started: without the statement, 1's answer (asking) is not
 * enough and nothing is ever elected; with it, this replica and 1 are a
 * majority of the group and no history was shown: fresh. A history
 * answered first makes it wait all the same (the statement was wrong: a
 * wiped node given the flag), and with a majority heard it is amnesiac.
 * Five members: it and two answers (three of five), not one.
 */
static void test_bootstrap_minority_down(void **state)
{
	struct raft_conf conf = conf_of(3);
	struct wiped_probe p;
	struct raft_msg a;

	(void)state;
	wiped_probe_init(&p, SELF, DIR_ID, &conf);
	assert_int_equal(wiped_probe_decide(&p), WIPED_WAIT);
	a = answer_from(&p, 1, 0, 0, WIPED_ANSWER_ASKING, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_WAIT);
	p.self_new = true;
	assert_int_equal(wiped_probe_decide(&p), WIPED_FRESH);
	/* No answer yet: it waits (alone it could elect nothing). */
	wiped_probe_init(&p, SELF, DIR_ID, &conf);
	p.self_new = true;
	assert_int_equal(wiped_probe_decide(&p), WIPED_WAIT);
	/* The statement contradicted by a history. */
	a = answer_from(&p, 1, 4, 30, 0, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_WAIT);
	a = answer_from(&p, 2, 4, 30, 0, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_AMNESIAC);
	/* Five members: two answers needed. */
	conf = conf_of(5);
	wiped_probe_init(&p, SELF, DIR_ID, &conf);
	p.self_new = true;
	a = answer_from(&p, 1, 0, 0, WIPED_ANSWER_ASKING, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_WAIT);
	a = answer_from(&p, 2, 0, 0, WIPED_ANSWER_ASKING, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_FRESH);
}

/* A leader's HEARTBEAT is no answer (its members may vouch for us), nor
 * is a candidate's PREVOTE. An amnesiac answerer (term 0, no log) says so
 * by its flag; a member whose group no longer has our node answers
 * without MEMBER; a member that vouches for us (VOUCH) shows no history
 * whatever its term and log. */
static void test_evidence_and_flags(void **state)
{
	struct raft_conf conf = conf_of(3);
	struct wiped_probe p;
	struct raft_msg prevote = { .type = RAFT_MSG_PREVOTE, .from = 1, .to = SELF, .term = 1 };
	struct raft_msg hb = { .type = RAFT_MSG_HEARTBEAT, .from = 1,
			       .to = replica_ident(SELF, 4), .term = 9 };
	struct raft_msg a;

	(void)state;
	wiped_probe_init(&p, SELF, DIR_ID, &conf);
	wiped_probe_take(&p, &prevote);
	assert_false(p.heard[0]);
	assert_int_equal(wiped_probe_take(&p, &hb), WIPED_WAIT);
	assert_false(p.heard[0] || p.history);
	a = answer_from(&p, 2, 0, 0, WIPED_ANSWER_ASKING, RAFT_NONE);
	wiped_probe_take(&p, &a);
	/* The vouch's record: which dir said it was asking (replica_wiped.c). */
	assert_int_equal(p.asking_dir[1], ANSWERER_DIR(2));
	wiped_probe_init(&p, SELF, DIR_ID, &conf);
	a = answer_from(&p, 1, 9, 7, WIPED_ANSWER_VOUCH, replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_WAIT);
	assert_true(p.heard[0] && !p.history);
	a = answer_from(&p, 2, 0, 0, WIPED_ANSWER_HISTORY, replica_ident(SELF, 4));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_AMNESIAC);
	assert_int_equal(wiped_probe_incarnation(&p), 5);
	wiped_probe_init(&p, SELF, DIR_ID, &conf);
	a = answer_from(&p, 2, 0, 0, WIPED_ANSWER_HISTORY, RAFT_NONE);
	assert_int_equal(a.offset & WIPED_ANSWER_MEMBER, 0);
	assert_true(a.to == replica_ident(SELF, 0));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_WAIT); /* one of two */
	assert_int_equal(p.asking_dir[1], 0); /* not asking: nothing to vouch for */
	a = answer_from(&p, 1, 3, 2, 0, replica_ident(SELF, 4));
	assert_int_equal(wiped_probe_take(&p, &a), WIPED_AMNESIAC);
	assert_int_equal(wiped_probe_incarnation(&p), 5);
}

/* What is ignored: an answer to another data dir's ask (an earlier life
 * of this node's dir), from a node that is no other member, for another
 * node, and the asker's own node. */
static void test_ignored(void **state)
{
	struct raft_conf conf = conf_of(3);
	struct wiped_probe p;
	struct raft_msg a;

	(void)state;
	wiped_probe_init(&p, SELF, DIR_ID, &conf);
	a = answer_from(&p, 1, 5, 5, 0, replica_ident(SELF, 0));
	a.context = DIR_ID + 1;
	wiped_probe_take(&p, &a);
	a = answer_from(&p, 1, 5, 5, 0, replica_ident(SELF, 0));
	a.from = 7;
	wiped_probe_take(&p, &a);
	a = answer_from(&p, 1, 5, 5, 0, replica_ident(SELF, 0));
	a.to = 2;
	wiped_probe_take(&p, &a);
	a = answer_from(&p, 1, 5, 5, 0, replica_ident(SELF, 0));
	a.from = SELF;
	wiped_probe_take(&p, &a);
	assert_false(p.heard[0] || p.heard[1] || p.history);
	/* A group of one has nobody to ask. */
	conf = conf_of(0);
	conf.servers[conf.n++] = (struct raft_server){ SELF, RAFT_VOTER };
	wiped_probe_init(&p, SELF, DIR_ID, &conf);
	assert_int_equal(wiped_probe_decide(&p), WIPED_FRESH);
}

/* On the wire: neither the ask nor the answer is coalesced into a
 * Heartbeats frame (they carry fields a beat has not), and both come back
 * field for field from a Raft batch; the ask is not a rejoin request
 * (incarnation 0) and the answer is no Raft heartbeat (term 0). */
static void test_wire(void **state)
{
	struct raft_conf conf = conf_of(3);
	struct peer_msg_limits limits;
	struct wiped_probe p;
	struct raft_msg ask, ans, got;
	struct peer_msg_item items[2] = { { 5, &ask }, { 5, &ans } };
	struct peer_msg_beat b;
	struct peer_msg_buf out;
	struct peer_msg_frame f;
	struct raft_entry dec[4];
	uint64_t group;

	(void)state;
	peer_msg_limits_default(&limits);
	wiped_probe_init(&p, SELF, DIR_ID, &conf);
	wiped_probe_ask(&p, replica_ident(SELF, 0), 0, &ask);
	ans = answer_from(&p, 1, 6, 77, WIPED_ANSWER_HISTORY, replica_ident(SELF, 2));
	assert_false(peer_msg_beat_from_raft(&ask, 5, &b));
	assert_false(peer_msg_beat_from_raft(&ans, 5, &b));
	peer_msg_buf_init(&out);
	assert_int_equal(peer_msg_encode_batch(&out, &limits, items, 2), 0);
	assert_int_equal(peer_msg_decode(&f, out.data + PEER_MSG_HEADER_SIZE,
					 out.len - PEER_MSG_HEADER_SIZE, &limits, dec, 4), 0);
	assert_int_equal(peer_msg_next(&f, &group, &got), 1);
	assert_true(wiped_probe_is_ask(&got) && got.context == DIR_ID && got.to == 1);
	assert_int_equal(peer_msg_next(&f, &group, &got), 1);
	assert_true(wiped_probe_is_answer(&got));
	assert_true(got.log_term == 6 && got.index == 77 && got.context == DIR_ID);
	assert_true(got.to == replica_ident(SELF, 2));
	assert_int_equal(got.offset, WIPED_ANSWER_HISTORY | WIPED_ANSWER_MEMBER);
	/* HCOMPLETE travels; MEMBER is the answerer's to work out, not the
	 * caller's to claim. */
	ans = answer_from(&p, 1, 0, 0, WIPED_ANSWER_HCOMPLETE | WIPED_ANSWER_MEMBER, RAFT_NONE);
	assert_int_equal(ans.offset, WIPED_ANSWER_HCOMPLETE);
	peer_msg_buf_free(&out);
	ask.from = replica_ident(SELF, 1);
	assert_false(wiped_probe_is_ask(&ask));
	ans.term = 1;
	assert_false(wiped_probe_is_answer(&ans));
}

/* ---- through the real code, on nodes of replica_fixture.h ---------------- */

/* What the test lets through (deliver_filter below), set by the test
 * thread, read on the nodes' reactor threads. */
enum phase {
	ONLY_PROBES,  /* asks and answers only: the replicas settle, nobody
		       * campaigns with effect */
	PREVOTE_ONLY, /* and node 1's pre-vote for term 1 to node 2, its
		       * grant not back (test_marker_write_fails) */
	VOTE,         /* schedule 3's vote: node 1's pre-vote for term 1 to 2
		       * and 3, their grants back, its vote request to 2 (and
		       * 2's grant back); the one to 3 held */
	SPLIT,        /* {1, 3} and the others apart, anything inside a side */
	NOT_3,        /* anything, but Raft's messages to and from node 3 */
	ONLY_1_LEADS, /* anything, but no vote requests from 2 or 3, and to 3
		       * only 1's vote requests, and its beats once beats_to_3 */
};
static atomic_int phase;
static _Atomic unsigned answers_blocked; /* bit per node: answers to it dropped */
static atomic_uint no_answer_from;       /* node whose answers are dropped, or 0 */
static atomic_bool strip_hcomplete;      /* answers lose HCOMPLETE (a restarted
					  * or older answerer's) */
static atomic_uint probed;               /* the node whose answers are recorded */
static _Atomic uint64_t seen_h;          /* the largest h of those answers */
static atomic_uint seen_from;            /* bit per answering node */
static atomic_uint seen_hcomplete;       /* bit per node that answered HCOMPLETE */
static atomic_uint seen_history;         /* bit per node that answered HISTORY */
static struct raft_msg held;             /* node 1's vote request to node 3 */
static atomic_bool held_set;
static atomic_bool vote_counted;         /* node 2's grant delivered to node 1 */
static atomic_bool beats_to_3;           /* ONLY_1_LEADS: the leader's beats reach 3 */

static bool side(uint64_t node)
{
	return node == 1 || node == 3;
}

static bool only_1_leads(uint64_t from, uint64_t to, const struct raft_msg *m)
{
	bool vote = m && (m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE);

	if (vote && from != 1)
		return false;
	if (to != 3 || vote || (m && wiped_probe_is_answer(m)))
		return true;
	return atomic_load(&beats_to_3) && (!m || m->type == RAFT_MSG_HEARTBEAT);
}

static bool schedule(uint64_t from, uint64_t to, uint64_t group, struct raft_msg *m)
{
	enum phase ph = (enum phase)atomic_load(&phase);
	uint64_t h;

	(void)group;
	if (ph == SPLIT)
		return side(from) == side(to);
	if (ph == NOT_3 && from != 3 && to != 3)
		return true;
	if (ph == ONLY_1_LEADS)
		return only_1_leads(from, to, m);
	if (!m)
		return false; /* a leader's beats: there is none before SPLIT */
	if (wiped_probe_is_answer(m)) {
		if ((atomic_load(&answers_blocked) & (1u << to)) ||
		    from == atomic_load(&no_answer_from))
			return false;
		if (atomic_load(&strip_hcomplete))
			m->offset &= ~(uint64_t)WIPED_ANSWER_HCOMPLETE;
		if (to == atomic_load(&probed)) {
			h = atomic_load(&seen_h);
			while (m->log_term > h && !atomic_compare_exchange_weak(&seen_h, &h, m->log_term))
				;
			atomic_fetch_or(&seen_from, 1u << from);
			if (m->offset & WIPED_ANSWER_HCOMPLETE)
				atomic_fetch_or(&seen_hcomplete, 1u << from);
			if (m->offset & WIPED_ANSWER_HISTORY)
				atomic_fetch_or(&seen_history, 1u << from);
		}
		return true;
	}
	if (wiped_probe_is_ask(m))
		return true;
	if (ph == PREVOTE_ONLY)
		return m->type == RAFT_MSG_PREVOTE && m->term == 1 && from == 1 && to == 2;
	if (ph != VOTE)
		return false;
	if (m->type == RAFT_MSG_PREVOTE && m->term == 1 && from == 1)
		return to == 2 || to == 3;
	if (m->type == RAFT_MSG_PREVOTE_RESP && to == 1)
		return from == 2 || from == 3;
	if (m->type == RAFT_MSG_VOTE && m->term == 1 && from == 1 && to == 3 &&
	    !atomic_load(&held_set)) {
		held = *m;
		atomic_store(&held_set, true);
		return false;
	}
	if (m->type == RAFT_MSG_VOTE && m->term == 1 && from == 1)
		return to == 2;
	if (m->type == RAFT_MSG_VOTE_RESP && from == 2 && to == 1 && !m->reject) {
		atomic_store(&vote_counted, true);
		return true;
	}
	return false;
}

/* Raft's state of shard 0's replica on a node, read on its core. */
struct rstate {
	bool here, probing, undecided;
	int role;
	uint64_t term, vote, prevote_max;
};
static struct rstate rstates[MAX_NODES + 1];

static bool job_rstate(struct tcore *c)
{
	struct replica *rep = cluster_core_replica(c->cc, 0);
	struct rstate *s = &rstates[c->node->id];

	if (!rep || !rep->raft)
		return true;
	s->here = true;
	s->probing = replica_wiped_probing(rep);
	s->undecided = rep->undecided;
	s->role = raft_role(rep->raft);
	s->term = raft_term(rep->raft);
	s->vote = raft_vote(rep->raft);
	s->prevote_max = raft_prevote_max(rep->raft);
	return true;
}

static struct rstate rstate(unsigned id)
{
	memset(&rstates[id], 0, sizeof rstates[id]);
	run_job(&nodes[id], job_rstate);
	assert_true(rstates[id].here);
	return rstates[id];
}

/* Waits (timeout_ms at most) for node id's replica to be probing or not. */
static bool wait_probing(unsigned id, bool probing, unsigned timeout_ms)
{
	for (unsigned t = 0; t < timeout_ms / 10; t++) {
		if (rstate(id).probing == probing)
			return true;
		sleep_ms(10);
	}
	return rstate(id).probing == probing;
}

static bool job_campaign(struct tcore *c)
{
	struct replica *rep = cluster_core_replica(c->cc, 0);

	if (rep)
		replica_step(rep, &(struct raft_event){ .type = RAFT_EV_CAMPAIGN });
	return true;
}

static bool job_deliver_held(struct tcore *c)
{
	struct replica *rep = cluster_core_replica(c->cc, 0);

	if (rep)
		replica_step(rep, &(struct raft_event){ .type = RAFT_EV_RECEIVE, .msg = &held });
	return true;
}

static void stop_all(unsigned count);

/* Nodes 1..count, one core each, one group of `count` replicas, every
 * message but the probe's dropped: each replica settles fresh (term 0, no
 * vote, HCOMPLETE in its answers). */
static void start_settled(unsigned count, uint32_t node1_election_ms)
{
	stop_all(MAX_NODES); /* what a failed test before left */
	election_ms[1] = node1_election_ms;
	for (unsigned id = 1; id <= count; id++)
		node_addr_cores(id, 1);
	make_map(count, 1, count);
	key_space = 10;
	atomic_store(&phase, ONLY_PROBES);
	atomic_store(&deliver_filter, schedule);
	for (unsigned id = 1; id <= count; id++)
		node_start(id, count);
	for (unsigned id = 1; id <= count; id++) {
		assert_true(wait_probing(id, false, 8000));
		assert_int_equal(rstate(id).term, 0);
	}
}

static void stop_all(unsigned count)
{
	atomic_store(&deliver_filter, NULL);
	for (unsigned id = 1; id <= count; id++)
		node_stop(id);
	for (unsigned id = 1; id <= count; id++)
		if (nodes[id].dir[0])
			rm_rf(nodes[id].dir);
	for (unsigned id = 1; id <= count; id++)
		election_ms[id] = 0;
	atomic_store(&answers_blocked, 0);
	atomic_store(&no_answer_from, 0);
	atomic_store(&strip_hcomplete, false);
	atomic_store(&probed, 0);
	atomic_store(&held_set, false);
	atomic_store(&vote_counted, false);
	atomic_store(&beats_to_3, false);
	no_rejoin = false;
	atomic_store(&seen_h, 0);
	atomic_store(&seen_from, 0);
	atomic_store(&seen_hcomplete, 0);
	atomic_store(&seen_history, 0);
}

/* Starts node id again on a new, empty data dir (the same node id). */
static void wipe(unsigned id, unsigned count)
{
	node_stop(id);
	rm_rf(nodes[id].dir);
	node_start(id, count);
}

/* The marker DATA/shard-0.joining of node id, or "" if none. */
static void marker_text(unsigned id, char *buf, size_t cap)
{
	char path[400];
	size_t k = 0;
	FILE *f;

	snprintf(path, sizeof path, "%s/shard-0.joining", nodes[id].dir);
	f = fopen(path, "r");
	if (f) {
		k = fread(buf, 1, cap - 1, f);
		fclose(f);
	}
	buf[k] = '\0';
}

/*
 * docs/cluster/wiped-rule-proposal.md, schedule 3, at R = 5 on the real
 * code (A..E = nodes 1..5; node 2 is the wiped one). A settled new group;
 * 1 campaigns for term 1, 2 and 3 grant its pre-vote, 2 votes for it; 1's
 * vote request to 3 is held, the ones to 4 and 5 lost. Node 2 is wiped;
 * its new data dir asks and hears 3, 4 and 5 "settled, no history" (1's
 * answers are lost), 3's with h = 1 (the pre-vote it granted).
 *  - First the answers lack HCOMPLETE (answerers restarted since they
 *    settled, or of an older build): it must not settle (only 3 answered
 *    of 4, and none counts).
 *  - Restarted (still empty: it asks again), with the answers whole: it
 *    settles, at a term above every h an answer carried (h + 1 = 2), with
 *    no vote: so it can never vote in term 1 again.
 *  - Then 3 gets 1's held request (1 leads term 1 with its old dir's vote)
 *    and {2, 4, 5} elect apart from {1, 3}: never two leaders of one term.
 *    Without the skip node 2 grants a term-1 election on its side: two
 *    leaders in term 1, the bug the skip closed (seen: "nodes 1 and 5
 *    both lead term 1" with wiped_probe_skip_term returning 0).
 */
static void test_five_wiped_schedule3(void **state)
{
	uint64_t leader_of[64] = { 0 };
	struct rstate s;
	char text[64];
	bool other_side = false;

	(void)state;
	/* Node 1 stays a candidate of term 1 (8 to 16 s) until 3's vote. */
	start_settled(5, 8000);
	atomic_store(&phase, VOTE);
	run_job(&nodes[1], job_campaign);
	for (unsigned t = 0; t < 500; t++) {
		s = rstate(2);
		if (s.term == 1 && s.vote == replica_ident(1, 0) && atomic_load(&held_set) &&
		    atomic_load(&vote_counted))
			break;
		sleep_ms(10);
	}
	assert_int_equal(s.term, 1);
	assert_true(s.vote == replica_ident(1, 0));
	assert_true(atomic_load(&held_set) && atomic_load(&vote_counted));
	s = rstate(3);
	assert_int_equal(s.term, 0);
	assert_int_equal(s.prevote_max, 1);
	s = rstate(1);
	assert_int_equal(s.role, RAFT_CANDIDATE);
	assert_int_equal(s.term, 1);

	/* Node 2 wiped; the answers it gets lack HCOMPLETE: it waits. */
	atomic_store(&phase, ONLY_PROBES);
	atomic_store(&no_answer_from, 1);
	atomic_store(&strip_hcomplete, true);
	atomic_store(&probed, 2);
	wipe(2, 5);
	for (unsigned t = 0; t < 100; t++) {
		s = rstate(2);
		assert_true(s.probing);
		assert_int_equal(s.term, 0);
		assert_true(s.vote == RAFT_NONE);
		sleep_ms(10);
	}
	assert_int_equal(atomic_load(&seen_from), (1u << 3) | (1u << 4) | (1u << 5));
	assert_int_equal(atomic_load(&seen_hcomplete), 0);
	marker_text(2, text, sizeof text);
	assert_string_equal(text, "undecided");

	/* Restarted on the same (empty) dir, the answers whole: it settles
	 * above every h it was told. */
	node_stop(2);
	atomic_store(&strip_hcomplete, false);
	atomic_store(&seen_h, 0);
	atomic_store(&seen_from, 0);
	node_start(2, 5);
	assert_true(wait_probing(2, false, 5000));
	assert_int_equal(atomic_load(&seen_hcomplete), (1u << 3) | (1u << 4) | (1u << 5));
	assert_int_equal(atomic_load(&seen_h), 1); /* node 3's pre-vote */
	s = rstate(2);
	assert_true(s.term > atomic_load(&seen_h));
	assert_int_equal(s.term, 2);
	assert_true(s.vote == RAFT_NONE);
	marker_text(2, text, sizeof text);
	assert_string_equal(text, "undecided settled\nterm 2\n");

	/* 1 wins term 1 with 3's late vote; the others elect on their side. */
	atomic_store(&phase, SPLIT);
	run_job(&nodes[3], job_deliver_held);
	for (unsigned t = 0; t < 400 || (!other_side && t < 1000); t++) {
		for (unsigned id = 1; id <= 5; id++) {
			s = rstate(id);
			if (s.role != RAFT_LEADER || s.term >= 64)
				continue;
			if (leader_of[s.term] && leader_of[s.term] != id)
				fail_msg("nodes %" PRIu64 " and %u both lead term %" PRIu64,
					 leader_of[s.term], id, s.term);
			leader_of[s.term] = id;
			other_side |= !side(id);
		}
		sleep_ms(5);
	}
	assert_int_equal(leader_of[1], 1);
	assert_true(other_side);
	assert_true(rstate(2).term >= 2);
	/* Together again, node 1 learns the newer term and steps down, so
	 * its stop does not wait for a handoff (its grace: 8 s). */
	atomic_store(&deliver_filter, NULL);
	for (unsigned t = 0; t < 300 && rstate(1).role == RAFT_LEADER; t++)
		sleep_ms(10);
	stop_all(5);
}

/* Makes the name DATA/<name>.tmp of node id a directory (with a file in
 * it): the ring's write of <name> fails at its openat (EISDIR), as it
 * would with ENOSPC or EIO; clear_tmp_block takes it away. */
static void block_tmp(unsigned id, const char *name)
{
	char path[400];
	int fd;

	snprintf(path, sizeof path, "%s/%s.tmp", nodes[id].dir, name);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/%s.tmp/x", nodes[id].dir, name);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
}

static void clear_tmp_block(unsigned id, const char *name)
{
	char path[400];

	snprintf(path, sizeof path, "%s/%s.tmp/x", nodes[id].dir, name);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof path, "%s/%s.tmp", nodes[id].dir, name);
	assert_int_equal(rmdir(path), 0);
}

/* Three nodes settled (start_settled); node 1 campaigned for term 1 and
 * only node 2 got its pre-vote (granted: h = 1), the grant not back. */
static void three_settled_prevote(void)
{
	start_settled(3, 0);
	atomic_store(&phase, PREVOTE_ONLY);
	run_job(&nodes[1], job_campaign);
	for (unsigned t = 0; t < 500 && rstate(2).prevote_max != 1; t++)
		sleep_ms(10);
	assert_int_equal(rstate(2).prevote_max, 1);
}

/* Node 3 wiped, its marker `name` set to fail before any answer reaches
 * it; returns once nodes 1 and 2 both answered it. */
static void wipe_3_failing(const char *name)
{
	atomic_store(&answers_blocked, 1u << 3);
	atomic_store(&probed, 3);
	wipe(3, 3);
	assert_true(rstate(3).probing);
	block_tmp(3, name);
	atomic_store(&answers_blocked, 0);
	for (unsigned t = 0; t < 500 && atomic_load(&seen_from) != ((1u << 1) | (1u << 2)); t++)
		sleep_ms(10);
	assert_int_equal(atomic_load(&seen_from), (1u << 1) | (1u << 2));
}

/* Node 3 still asks and took no part, for 60 looks 10 ms apart. */
static void still_asking_3(void)
{
	for (unsigned t = 0; t < 60; t++) {
		struct rstate s = rstate(3);

		assert_true(s.probing);
		assert_int_equal(s.term, 0);
		assert_true(s.vote == RAFT_NONE);
		assert_int_equal(s.prevote_max, 0);
		sleep_ms(10);
	}
}

/*
 * The settle marker's write fails (its temporary file's name taken by a
 * directory: the openat of the ring's write fails with EISDIR, as ENOSPC
 * or EIO would): the replica decided to settle, but keeps asking -- no
 * vote, no term skipped -- and writes again each tick; once a write goes
 * through it settles, at the skip's term. Three nodes: node 2 granted 1's
 * pre-vote for term 1 (h = 1); node 3 is wiped.
 */
static void test_marker_write_fails(void **state)
{
	char text[64];
	struct rstate s;

	(void)state;
	three_settled_prevote();
	/* Node 1's pre-votes still reach 2 only (3 would drop them anyway). */
	wipe_3_failing("shard-0.joining");
	/* Both answered, settled and complete: FRESH is decided (the pure
	 * tests above), the write fails, again and again. */
	assert_int_equal(atomic_load(&seen_hcomplete), (1u << 1) | (1u << 2));
	assert_int_equal(atomic_load(&seen_h), 1);
	still_asking_3();
	marker_text(3, text, sizeof text);
	assert_string_equal(text, "undecided");
	/* The way cleared: the next tick's write goes through. */
	clear_tmp_block(3, "shard-0.joining");
	assert_true(wait_probing(3, false, 3000));
	s = rstate(3);
	assert_int_equal(s.term, 2);
	assert_true(s.vote == RAFT_NONE);
	marker_text(3, text, sizeof text);
	assert_string_equal(text, "undecided settled\nterm 2\n");
	stop_all(3);
}

/*
 * The same for the amnesia marker (mark_amnesiac): nodes 1 and 2 elected
 * a leader (a history), node 3 is wiped. While DATA/shard-0.amnesiac
 * cannot be written the replica keeps asking, takes no part and is not
 * remade as incarnation 1; once it can, it is.
 */
static void test_amnesia_marker_write_fails(void **state)
{
	(void)state;
	no_rejoin = true;
	start_settled(3, 0);
	atomic_store(&phase, NOT_3);
	assert_true(wait_leader(2, 0, 5000) != 0);
	wipe_3_failing("shard-0.amnesiac");
	still_asking_3();
	refresh(&nodes[3]);
	assert_false(nodes[3].status[0].st.amnesiac);
	assert_false(path_exists(nodes[3].dir, "shard-0.amnesiac"));
	clear_tmp_block(3, "shard-0.amnesiac");
	assert_true(wait_probing(3, false, 3000));
	refresh(&nodes[3]);
	assert_true(nodes[3].status[0].st.amnesiac);
	assert_true(path_exists(nodes[3].dir, "shard-0.amnesiac"));
	no_rejoin = false;
	stop_all(3);
}

/*
 * A stop after the replica settled (its marker and the skip's hard state
 * durable) and before the marker goes (it stays until the first leader's
 * entries or hard state are: replica.c settle_unlink_pending), as a crash
 * in that window would leave it (a crash before the hard state is the
 * marker alone: test_replica_amnesia.c
 * test_settled_fresh_skips_past_answers): restarted, the
 * replica does not ask again, keeps its term (2, skipped to), and answers
 * a later asker with h = 2, no history (a skipped-to term with no vote)
 * and without HCOMPLETE (its pre-vote grants of the earlier process are
 * forgotten): that asker does not count it toward a majority of settled
 * members; it settles only on every member answering, above h = 2.
 * Three nodes: node 2 granted node 1's pre-vote for term 1; node 3 wiped
 * settles at term 2 and restarts; then node 1 is wiped.
 */
static void test_restarted_settled_answers(void **state)
{
	char text[64];
	struct rstate s;

	(void)state;
	three_settled_prevote();
	atomic_store(&phase, ONLY_PROBES);
	wipe(3, 3);
	assert_true(wait_probing(3, false, 5000));
	assert_int_equal(rstate(3).term, 2);
	node_stop(3);
	node_start(3, 3);
	s = rstate(3);
	assert_false(s.probing);
	assert_int_equal(s.term, 2);
	assert_true(s.vote == RAFT_NONE);
	marker_text(3, text, sizeof text);
	assert_string_equal(text, "undecided settled\nterm 2\n");
	/* Node 1 wiped: 2 answers complete with h = 1, 3 with h = 2, not
	 * complete; neither with a history. */
	atomic_store(&probed, 1);
	wipe(1, 3);
	assert_true(wait_probing(1, false, 5000));
	assert_int_equal(atomic_load(&seen_from), (1u << 2) | (1u << 3));
	assert_int_equal(atomic_load(&seen_hcomplete), 1u << 2);
	assert_int_equal(atomic_load(&seen_history), 0);
	assert_int_equal(atomic_load(&seen_h), 2);
	s = rstate(1);
	assert_int_equal(s.term, 3);
	assert_true(s.vote == RAFT_NONE);
	stop_all(3);
}

/*
 * A replica that settled by asking keeps its marker after its first
 * leader's message until a hard state or entries of the group are durable
 * in its log (replica.c settle_unlink_pending): removed before, a crash
 * would bring it back empty with no marker, asking again, its pre-vote
 * grants forgotten. Three nodes settled (start_settled); node 1 alone may
 * campaign, node 3 grants its vote for term 1 (durable before the beats
 * come: 200 ms), then hears node 1's beats of that term and no APPEND:
 * settled (no longer undecided), nothing new to make durable, so the
 * marker stays. Once the APPENDs pass, the entries are durable and it goes.
 * Fails with the marker removed at the first leader's message. (Here its
 * vote was durable already; the window that matters, a first message
 * raising the term from 0, lasts one fsync: no test holds it open.)
 */
static void test_settle_marker_waits_for_durable_state(void **state)
{
	char text[64];
	struct rstate s;

	(void)state;
	start_settled(3, 0);
	marker_text(3, text, sizeof text);
	assert_string_equal(text, "undecided settled");
	atomic_store(&phase, ONLY_1_LEADS);
	for (unsigned t = 0; t < 500; t++) {
		s = rstate(3);
		if (rstate(1).role == RAFT_LEADER && s.term == 1 && s.vote == replica_ident(1, 0))
			break;
		sleep_ms(10);
	}
	assert_int_equal(rstate(1).role, RAFT_LEADER);
	assert_int_equal(s.term, 1);
	assert_true(s.vote == replica_ident(1, 0));
	assert_true(rstate(3).undecided);
	sleep_ms(200);
	atomic_store(&beats_to_3, true);
	for (unsigned t = 0; t < 300 && rstate(3).undecided; t++)
		sleep_ms(10);
	assert_false(rstate(3).undecided);
	for (unsigned t = 0; t < 60; t++) {
		marker_text(3, text, sizeof text);
		assert_string_equal(text, "undecided settled");
		sleep_ms(10);
	}
	atomic_store(&deliver_filter, NULL);
	for (unsigned t = 0; t < 300 && path_exists(nodes[3].dir, "shard-0.joining"); t++)
		sleep_ms(10);
	assert_false(path_exists(nodes[3].dir, "shard-0.joining"));
	stop_all(3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wiped_node_waits_then_rejoins),
		cmocka_unit_test(test_incarnation_after_the_newest_named),
		cmocka_unit_test(test_first_start_all_asking),
		cmocka_unit_test(test_five_members),
		cmocka_unit_test(test_settled_needs_hcomplete),
		cmocka_unit_test(test_skip_past_granted_prevotes),
		cmocka_unit_test(test_asking_answer_replaced_by_a_settled_one),
		cmocka_unit_test(test_bootstrap_minority_down),
		cmocka_unit_test(test_evidence_and_flags),
		cmocka_unit_test(test_ignored),
		cmocka_unit_test(test_wire),
		cmocka_unit_test(test_five_wiped_schedule3),
		cmocka_unit_test(test_marker_write_fails),
		cmocka_unit_test(test_amnesia_marker_write_fails),
		cmocka_unit_test(test_restarted_settled_answers),
		cmocka_unit_test(test_settle_marker_waits_for_durable_state),
	};

	return replica_fixture_run(tests, sizeof tests / sizeof tests[0]);
}
