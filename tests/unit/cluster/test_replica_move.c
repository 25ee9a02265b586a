/*
 * Moving a replica (cluster/replica_move.c, docs/cluster/membership.md) on
 * four nodes of replica_fixture.h: the leader-driven move under writes
 * (learner, snapshot, promotion, transfer, removal), refusals, the records
 * a restart finds, a move whose leader died after the promotion:
 * resumed or cancelled, and the writes a dropped replica still held.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/hosting.h"
#include "cluster/replica_internal.h" /* replica_conf_load */
#include "replica_fixture.h"

static int job_conf_op;
static uint64_t job_conf_id;

/*
 * Writes [first, +count) of `shard` while leadership may move (a move's
 * transfer): a write refused at once (not the leader, a transfer under
 * way) or answered "overwritten" was not applied and goes again to the
 * leader of the moment; one answered "unknown" goes again too (a PUT of the
 * same value: idempotent). Fails unless all are acknowledged in time.
 */
static void write_through_changes(uint32_t shard, unsigned first, unsigned count)
{
	uint64_t t0 = mono_us();
	bool done[MAX_OPS] = { false };
	unsigned left = count;

	while (left > 0) {
		uint64_t leader = wait_leader(MAX_NODES, shard, 5000);
		struct tnode *n;

		assert_true(mono_us() - t0 < 20000000);
		if (!leader)
			continue;
		n = &nodes[leader];
		for (unsigned i = first; i < first + count; i++) {
			if (done[i])
				continue;
			n->job_shard = shard;
			n->job_first = i;
			n->job_count = 1;
			n->job_rv[i] = 1;
			run_job(n, job_propose);
			if (n->job_rv[i] != 0)
				break; /* refused: not applied; the next leader */
			assert_true(wait_writes(i, 1, 5000));
			if (writes[i].rv == 0) {
				done[i] = true;
				left--;
				continue;
			}
			assert_true(writes[i].rv == RAFT_ENOTLEADER || writes[i].rv == RKV_EUNKNOWN);
			break;
		}
	}
}

/* Four nodes of two cores, 4 shards, R = 3: shard s on nodes s+1, s+2,
 * s+3 (mod 4), so each node lacks one shard (node 4 lacks shard 0). */
static void start_four_nodes(void)
{
	for (unsigned id = 1; id <= 4; id++)
		node_addr(id);
	make_map(4, 4, 3);
	for (unsigned id = 1; id <= 4; id++)
		node_start(id, 4);
}

static int job_move_rv;
static char job_move_why[200];
static struct replica_move_status job_move_st;
static bool job_move_start_it;
static bool job_move_cancel_it;

/* Starts the move (job_move_start_it) or reads its status, on the core
 * holding job_shard. */
static bool job_move(struct tcore *c)
{
	struct tnode *n = c->node;
	struct replica *rep = cluster_core_replica(c->cc, n->job_shard);

	if (!rep)
		return true;
	if (job_move_cancel_it)
		job_move_rv = replica_move_cancel(rep, job_conf_id, job_move_why,
						  sizeof job_move_why);
	else if (job_move_start_it)
		job_move_rv = replica_move_start(rep, job_conf_id, (uint64_t)job_conf_op,
						 n->job_first, job_move_why, sizeof job_move_why);
	else
		replica_move_status(rep, &job_move_st);
	return true;
}

static int move_start(unsigned node, uint32_t shard, uint64_t from, uint64_t to, unsigned core)
{
	nodes[node].job_shard = shard;
	nodes[node].job_first = core;
	job_conf_id = from;
	job_conf_op = (int)to;
	job_move_start_it = true;
	job_move_rv = 1;
	job_move_why[0] = '\0';
	run_job(&nodes[node], job_move);
	return job_move_rv;
}

/* replica_move_cancel(to) on node `node`'s replica of `shard`. */
static int move_cancel(unsigned node, uint32_t shard, uint64_t to)
{
	nodes[node].job_shard = shard;
	job_conf_id = to;
	job_move_cancel_it = true;
	job_move_rv = 1;
	job_move_why[0] = '\0';
	run_job(&nodes[node], job_move);
	job_move_cancel_it = false;
	return job_move_rv;
}

static void move_status(unsigned node, uint32_t shard)
{
	nodes[node].job_shard = shard;
	job_move_start_it = false;
	memset(&job_move_st, 0, sizeof job_move_st);
	run_job(&nodes[node], job_move);
}

/* Polls node `node`'s move of `shard` every 20 ms until it reaches phase
 * `end` or fails (at most 10 s); job_move_st holds the last status. */
static void wait_move(unsigned node, uint32_t shard, int end)
{
	uint64_t t0 = mono_us();

	do {
		sleep_ms(20);
		move_status(node, shard);
		assert_true(mono_us() - t0 < 10000000);
	} while (job_move_st.phase != end && job_move_st.phase != REPLICA_MOVE_FAILED);
}

/* A group of three voters after a move: node `gone` out of it, the other
 * three of nodes 1-4 voters. */
static void assert_voters_without(const struct raft_conf *conf, unsigned gone)
{
	assert_int_equal(conf->n, 3);
	for (unsigned id = 1; id <= 4; id++)
		assert_int_equal(raft_conf_role(conf, id), id == gone ? 0 : RAFT_VOTER);
}

/* Stops the four nodes and removes their directories. */
static void stop_four_nodes(void)
{
	excluded = 0;
	for (unsigned id = 1; id <= 4; id++) {
		node_stop(id);
		rm_rf(nodes[id].dir);
	}
}

/*
 * Shard 0 of a 4-node cluster (R = 3) lives on nodes 1, 2, 3 (core 0). Its
 * replica moves from its leader, node 1, to node 4's core 1 while writes go
 * on, driven by the leader (replica_move_start): node 4 hosts it on request,
 * it is added as a learner and catches up by snapshot (the leader's log is
 * compacted past its start) and log, it is promoted, leadership leaves
 * node 1 and the new leader carries the move on: node 1 is removed and
 * drops its replica. Then every write is on the new members, node 4's
 * records (hosting, configuration) name the new group, node 4 restarted
 * keeps its replica and its vote, node 1 restarted deletes its files.
 */
static void test_move_replica(void **state)
{
	const uint32_t s = 0;
	char path[512], err[256];
	struct raft_conf conf;
	uint64_t leader, conf_index, t0;
	unsigned next = 0, carrier = 1;

	(void)state;
	memtable_size = 64u << 10;
	segment_size = 64u << 10;
	value_pad = 300;
	key_space = 300;
	start_four_nodes();
	assert_true(cluster_map_rank(&map, s, 3) < 0); /* node 4 lacks it */
	leader = wait_leader(4, s, 5000);
	assert_int_equal(leader, 1);
	for (unsigned round = 0; round < 6; round++) {
		write_ok(leader, s, next, 64);
		next += 64;
	}

	/* Refusals change nothing. */
	assert_int_equal(move_start(1, s, 1, 2, 0), RKV_EINVAL); /* 2 holds one */
	assert_non_null(strstr(job_move_why, "already holds"));
	assert_int_equal(move_start(1, s, 4, 2, 0), RKV_EINVAL); /* 4 holds none */
	assert_non_null(strstr(job_move_why, "holds no replica"));
	assert_int_equal(move_start(1, s, 1, 9, 0), RKV_EINVAL);
	assert_non_null(strstr(job_move_why, "not in the cluster"));
	/* Node 4 has 2 cores: refused by the leader if it knows that from
	 * node 4's hello, else by node 4 when asked to host (the move fails
	 * there, nothing changed). */
	if (move_start(1, s, 1, 4, 7) == 0) {
		wait_move(1, s, REPLICA_MOVE_FAILED);
		assert_non_null(strstr(job_move_st.reason, "no such core"));
	} else {
		assert_int_equal(job_move_rv, RKV_EINVAL);
		assert_non_null(strstr(job_move_why, "no core 7"));
	}
	assert_int_equal(move_start(2, s, 1, 4, 1), RAFT_ENOTLEADER);

	excluded = 1u << 4; /* holds nothing of shard 0 yet */
	assert_int_equal(move_start(1, s, 1, 4, 1), 0);
	assert_int_equal(move_start(1, s, 1, 4, 1), RAFT_EBUSY);
	assert_non_null(strstr(job_move_why, "in progress"));
	/* Writes go on while it moves; the move ends handed on (node 1 led). */
	t0 = mono_us();
	for (;;) {
		leader = wait_leader(4, s, 5000);
		if (leader && leader != 1 && excluded == (1u << 4))
			excluded = 0; /* promoted and led by another: node 4 knows */
		if (leader) {
			write_through_changes(s, next, 16);
			next += 16;
		}
		move_status(carrier, s);
		if (job_move_st.phase == REPLICA_MOVE_HANDED_ON) {
			carrier = (unsigned)job_move_st.leader;
			continue;
		}
		if (job_move_st.phase == REPLICA_MOVE_DONE ||
		    job_move_st.phase == REPLICA_MOVE_FAILED)
			break;
		assert_true(mono_us() - t0 < 30000000);
		sleep_ms(20);
	}
	fprintf(stderr, "move: %s on node %u after %llu ms (%s); snapshot bytes at node 1: see "
		"the log\n", replica_move_phase_name(job_move_st.phase), carrier,
		(unsigned long long)(mono_us() - t0) / 1000, job_move_st.reason);
	assert_int_equal(job_move_st.phase, REPLICA_MOVE_DONE);
	assert_string_equal(job_move_st.reason, "");
	assert_true(carrier != 1);
	excluded = 1u << 1;
	leader = wait_leader(4, s, 5000);
	assert_true(leader == 2 || leader == 3 || leader == 4);
	write_ok(leader, s, next, 32);
	next += 32;
	for (unsigned i = 0; i < next; i++)
		assert_int_equal(writes[i].rv, 0);
	assert_true(converged(4, s, 5000));
	refresh(&nodes[4]);
	assert_true(nodes[4].status[s].here);
	assert_int_equal(nodes[4].status[s].core->r->id, 1);
	assert_true(nodes[4].status[s].st.snap_installed >= 1);
	assert_voters_without(&nodes[4].status[s].st.conf, 1);
	refresh(&nodes[1]);
	assert_true(nodes[1].status[s].here && nodes[1].status[s].st.retired);
	read_ok(leader, s, next - 32, 32);
	/* Asked again: node 4 holds it now. */
	assert_int_equal(move_start((unsigned)leader, s, 2, 4, 0), RKV_EINVAL);

	/* Node 4's records name the new group; restarted, it keeps its
	 * replica and is a voter. */
	node_stop(4);
	assert_true(path_exists(nodes[4].dir, "hosting-1"));
	snprintf(path, sizeof path, "%s/shard-%u.conf", nodes[4].dir, s);
	assert_int_equal(replica_conf_load(path, &conf_index, &conf, err, sizeof err), 0);
	assert_voters_without(&conf, 1);
	write_ok(leader == 4 ? wait_leader(4, s, 5000) : leader, s, next, 32);
	next += 32;
	node_start(4, 4);
	refresh(&nodes[4]);
	assert_true(nodes[4].status[s].here);
	assert_int_equal(nodes[4].status[s].core->r->id, 1);
	assert_int_equal(raft_conf_role(&nodes[4].status[s].st.conf, 4), RAFT_VOTER);
	leader = wait_leader(4, s, 5000);
	assert_true(leader != 0);
	write_ok(leader, s, next, 32);
	next += 32;
	assert_true(converged(4, s, 5000));

	/* Node 1 dropped it: its files go at its restart, and it holds no
	 * replica of shard 0 any more. */
	assert_true(path_exists(nodes[1].dir, "shard-0"));
	node_stop(1);
	node_start(1, 4);
	refresh(&nodes[1]);
	assert_false(nodes[1].status[s].here);
	assert_false(path_exists(nodes[1].dir, "shard-0"));
	assert_false(path_exists(nodes[1].dir, "shard-0.conf"));
	excluded = 0;

	/* With node 3 down the group is {2, 4} of three voters: writes commit
	 * only if node 4 really votes and acknowledges. */
	node_stop(3);
	leader = wait_leader(4, s, 5000);
	assert_true(leader == 2 || leader == 4);
	write_ok(leader, s, next, 32);
	next += 32;
	assert_true(converged(4, s, 5000));

	stop_four_nodes();
	memtable_size = 1u << 20;
	segment_size = 0;
	value_pad = 0;
}

static uint64_t job_conf_index;

/* One membership change on the core holding job_shard (its leader). */
static bool job_conf_change(struct tcore *c)
{
	struct tnode *n = c->node;
	struct replica *rep = cluster_core_replica(c->cc, n->job_shard);

	if (rep)
		n->job_rv[0] = replica_conf_change(rep, job_conf_op, job_conf_id, &job_conf_index);
	return true;
}

/* Has node `leader` take the change, retrying while Raft says "not now",
 * then waits for its commit there. */
static void conf_change_ok(unsigned leader, uint32_t shard, int op, uint64_t id)
{
	uint64_t t0 = mono_us();

	for (;;) {
		nodes[leader].job_shard = shard;
		nodes[leader].job_rv[0] = 1;
		job_conf_op = op;
		job_conf_id = id;
		run_job(&nodes[leader], job_conf_change);
		if (nodes[leader].job_rv[0] == 0)
			break;
		assert_true(nodes[leader].job_rv[0] == RAFT_EBUSY ||
			    nodes[leader].job_rv[0] == RAFT_ENOTREADY);
		assert_true(mono_us() - t0 < 10000000);
		sleep_ms(20);
	}
	while (refresh(&nodes[leader]), nodes[leader].status[shard].st.commit < job_conf_index) {
		assert_true(mono_us() - t0 < 10000000);
		sleep_ms(10);
	}
}

/* Node `id` (stopped) gets an `add SHARD CORE` hosting record by hand, as
 * a HOST request would have written it; then it starts. */
static void host_by_hand(unsigned id, uint32_t shard, int32_t core)
{
	struct cluster_hosting host = { 0 };
	char text[256], path[512];
	FILE *f;
	size_t len;

	node_stop(id);
	assert_int_equal(cluster_hosting_set(&host, shard, core), 0);
	len = cluster_hosting_encode(&host, text, sizeof text);
	snprintf(path, sizeof path, "%s/hosting-%d", nodes[id].dir, (int)core);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
	node_start(id, 4);
}

/* Shard `s` (1: on nodes 2, 3, 4, node 2 leads) with 50 writes, then
 * node 1 hosting it (by hand), added and promoted: four voters, as a move
 * whose leader died after the promotion leaves it. Before the extra
 * voter, a cancel finds nothing to cancel. The next write's number. */
static unsigned four_voters(uint32_t s)
{
	key_space = 50;
	start_four_nodes();
	assert_true(cluster_map_rank(&map, s, 0) < 0); /* node 1 lacks it */
	assert_int_equal(wait_leader(4, s, 5000), 2);
	write_ok(2, s, 0, 50);
	assert_int_equal(move_cancel(2, s, 0), RKV_EINVAL);
	assert_non_null(strstr(job_move_why, "no move of shard 1"));
	host_by_hand(1, s, 1);
	excluded = 1u << 1;
	conf_change_ok(2, s, RAFT_CONF_ADD_LEARNER, 1);
	excluded = 0;
	conf_change_ok(2, s, RAFT_CONF_PROMOTE, 1);
	refresh(&nodes[2]);
	assert_int_equal(nodes[2].status[s].st.conf.n, 4);
	return 50;
}

/*
 * A move whose leader died after the promotion leaves the group one voter
 * above its size; running the move again goes on with the removal. Shard 1
 * lives on nodes 2, 3, 4 (node 2 leads); node 1 hosts an empty replica of
 * it (its hosting record, as a HOST request would have written it) and is
 * added and promoted by hand: four voters. Then `move 1 --from 3 --to 1`
 * is taken (not refused as "already holds"), removes node 3, drops its
 * replica, and the group is {1, 2, 4} with every write.
 */
static void test_move_resumes_after_promotion(void **state)
{
	const uint32_t s = 1;
	unsigned next = 0;

	(void)state;
	next = four_voters(s);

	assert_int_equal(move_start(2, s, 3, 1, 1), 0);
	wait_move(2, s, REPLICA_MOVE_DONE);
	assert_int_equal(job_move_st.phase, REPLICA_MOVE_DONE);
	excluded = 1u << 3;
	write_ok(wait_leader(4, s, 5000), s, next, 20);
	next += 20;
	assert_true(converged(4, s, 5000));
	refresh(&nodes[1]);
	assert_voters_without(&nodes[1].status[s].st.conf, 3);
	refresh(&nodes[3]);
	assert_true(nodes[3].status[s].st.retired);
	/* Three voters again: node 1 holds one, a move to it is refused. */
	assert_int_equal(move_start((unsigned)wait_leader(4, s, 5000), s, 2, 1, 1), RKV_EINVAL);
	assert_non_null(strstr(job_move_why, "already holds"));

	stop_four_nodes();
}

/*
 * Cancelling after the promotion: a move whose leader died once the target
 * was promoted leaves shard 1 with four voters {1, 2, 3, 4} (made by hand
 * as in test_move_resumes_after_promotion: node 1 is the extra one). The
 * cancel names node 1: it is removed again (R+1 voters back to R, every
 * other replica kept), told to drop its replica, and the group is
 * {2, 3, 4} with every write. Refused: a cancel naming a regular replica,
 * and one with no move and no learner.
 */
static void test_move_cancel_after_promotion(void **state)
{
	const uint32_t s = 1;
	unsigned next = 0;

	(void)state;
	next = four_voters(s);
	write_ok(2, s, next, 20);
	next += 20;

	/* Node 3 is one of the three: not an extra one to take out. */
	assert_int_equal(move_cancel(2, s, 9), RKV_EINVAL);
	assert_non_null(strstr(job_move_why, "no member"));
	assert_int_equal(move_cancel(3, s, 1), RAFT_ENOTLEADER);
	assert_int_equal(move_cancel(2, s, 1), 0);
	assert_int_equal(move_cancel(2, s, 1), 0); /* asked again */
	wait_move(2, s, REPLICA_MOVE_CANCELLED);
	assert_int_equal(job_move_st.phase, REPLICA_MOVE_CANCELLED);
	assert_int_equal(job_move_st.cancelled_in, REPLICA_MOVE_PROMOTE);
	assert_string_equal(job_move_st.reason, "");
	excluded = 1u << 1;
	write_ok(wait_leader(4, s, 5000), s, next, 20);
	next += 20;
	assert_true(converged(4, s, 5000));
	refresh(&nodes[2]);
	assert_voters_without(&nodes[2].status[s].st.conf, 1);
	refresh(&nodes[1]);
	assert_true(nodes[1].status[s].st.retired);
	/* Nothing left to cancel; node 3 is a regular replica. */
	assert_int_equal(move_cancel(2, s, 0), RKV_EINVAL);
	assert_int_equal(move_cancel(2, s, 3), RKV_EINVAL);
	assert_non_null(strstr(job_move_why, "not an extra one"));
	/* Node 1's files go at its restart. */
	node_stop(1);
	node_start(1, 4);
	refresh(&nodes[1]);
	assert_false(nodes[1].status[s].here);
	assert_false(path_exists(nodes[1].dir, "shard-1"));

	stop_four_nodes();
}

/* Node 2 hears no Raft message from its peers (its own go out). */
static bool deaf_node_2(uint64_t from, uint64_t to, uint64_t group, struct raft_msg *m)
{
	(void)from;
	(void)group;
	(void)m;
	return to != 2;
}

/*
 * A replica dropped by a move while it still holds a write it proposed as
 * leader: the write's entry may be committed by the group without it (it
 * is here), so its client learns "outcome unknown" (RKV_EUNKNOWN), never
 * "not applied" (RAFT_ENOTLEADER), which server/kv.c's write_done sends on
 * to the new leader: applied twice. Shard 1 with four voters, node 2
 * leading, stops hearing its peers; the write it proposes reaches them,
 * and once node 2 steps down (no quorum heard) a new leader commits it.
 * Node 2 still holds it (the proposal timeout is 60 s) when the new
 * leader resumes `move 1 --from 2 --to 1`, removes node 2 and has it drop
 * its replica: the drop answers the write.
 */
static void test_move_drop_fails_proposals_unknown(void **state)
{
	const uint32_t s = 1;
	uint64_t leader;
	unsigned next, held;

	(void)state;
	proposal_timeout_ms = 60000;
	next = four_voters(s);
	assert_int_equal(wait_leader(4, s, 5000), 2);
	atomic_store(&deliver_filter, deaf_node_2);
	held = next++;
	write_async(2, s, held, 1);
	excluded = 1u << 2;
	leader = wait_leader(4, s, 5000);
	assert_true(leader == 1 || leader == 3 || leader == 4);
	/* Committed by the others, its outcome not known at node 2. */
	read_ok(leader, s, held, 1);
	assert_false(atomic_load(&writes[held].done));

	assert_int_equal(move_start((unsigned)leader, s, 2, 1, 1), 0);
	wait_move((unsigned)leader, s, REPLICA_MOVE_DONE);
	assert_int_equal(job_move_st.phase, REPLICA_MOVE_DONE);
	refresh(&nodes[2]);
	assert_true(nodes[2].status[s].st.retired);
	assert_true(wait_writes(held, 1, 5000));
	assert_int_equal(writes[held].rv, RKV_EUNKNOWN);
	atomic_store(&deliver_filter, NULL);
	write_ok(wait_leader(4, s, 5000), s, next, 20);
	assert_true(converged(4, s, 5000));

	stop_four_nodes();
	proposal_timeout_ms = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_move_replica),
		cmocka_unit_test(test_move_resumes_after_promotion),
		cmocka_unit_test(test_move_cancel_after_promotion),
		cmocka_unit_test(test_move_drop_fails_proposals_unknown),
	};

	return replica_fixture_run(tests, sizeof tests / sizeof tests[0]);
}
