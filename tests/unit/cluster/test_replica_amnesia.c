/*
 * Wiped and amnesiac replicas (cluster/replica_wiped.c, replica_amnesia.c)
 * on the nodes of replica_fixture.h: a wiped node elects no stale leader
 * and rejoins once its peers answer; a replica whose newest core log
 * segment is damaged takes no part in its group (no acknowledgement, no
 * vote, no term), stays so across restarts, and rejoins as a new
 * incarnation when allowed to.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "replica_fixture.h"

/*
 * A wiped node restarted with the default flags must not hand the
 * election to a node that lacks what the wiped one acknowledged. Writes
 * commit on nodes 1 and 3 while node 2 is down; then 1 and 3 stop, 3's data
 * dir is wiped, and 2 (behind) and 3 (empty) start. If 3 granted 2's vote
 * request, 2 would lead and the writes would be gone; so for many election
 * timeouts there must be no leader, and 3 must have become "joining".
 * Once node 1 is back, it leads, 3 catches up, and every write is there.
 */
static void test_wiped_node_elects_no_stale_leader(void **state)
{
	uint64_t leader;

	(void)state;
	for (unsigned id = 1; id <= 3; id++)
		node_addr(id);
	make_map(3, 1, 3);
	key_space = 40;
	for (unsigned id = 1; id <= 3; id++)
		node_start(id, 3);
	assert_true(wait_leader(3, 0, 5000) != 0);
	/* Every replica settled as a member of a new group (a replica that
	 * restarts before it settled comes back withholding its vote too). */
	for (unsigned id = 1, t = 0; id <= 3; t++) {
		refresh(&nodes[id]);
		if (!nodes[id].status[0].st.undecided && !nodes[id].status[0].st.joining) {
			id++;
			continue;
		}
		assert_true(t < 500);
		sleep_ms(10);
	}
	node_stop(2);
	leader = wait_leader(3, 0, 5000);
	assert_true(leader == 1 || leader == 3);
	write_ok(leader, 0, 0, 40);
	assert_true(converged(3, 0, 5000));
	node_stop(1);
	node_stop(3);
	rm_rf(nodes[3].dir);
	node_start(2, 3);
	node_start(3, 3);
	/* 20 election timeouts: plenty for 2 to win if 3 voted for it. */
	for (unsigned t = 0; t < 20 * ELECTION_MS / 10; t++) {
		for (unsigned id = 2; id <= 3; id++) {
			refresh(&nodes[id]);
			assert_true(nodes[id].status[0].st.role != RAFT_LEADER);
		}
		sleep_ms(10);
	}
	/* Node 3 asks whether it was a member (replica_wiped.c): 2 answers
	 * with a history, 1 is down, so it takes no part (node 2's vote
	 * requests are dropped, not granted) and decides nothing yet. */
	refresh(&nodes[3]);
	assert_true(nodes[3].status[0].st.probing);
	assert_true(nodes[3].status[0].st.votes_withheld > 0);
	assert_int_equal(nodes[3].status[0].st.term, 0); /* no request stepped */
	assert_false(nodes[3].status[0].st.amnesiac);
	/* With 1 back: amnesiac, then a member again as incarnation 1. */
	node_start(1, 3);
	leader = wait_leader(3, 0, 8000);
	assert_int_equal(leader, 1);
	assert_true(converged(3, 0, 8000));
	read_ok(leader, 0, 0, 40);
	for (unsigned t = 0; t < 800; t++) {
		refresh(&nodes[3]);
		if (!nodes[3].status[0].st.amnesiac && nodes[3].status[0].keys == 40)
			break;
		sleep_ms(10);
	}
	assert_false(nodes[3].status[0].st.probing);
	assert_false(nodes[3].status[0].st.amnesiac);
	assert_int_equal(nodes[3].status[0].keys, 40);
	assert_false(path_exists(nodes[3].dir, "shard-0.amnesiac"));
	for (unsigned id = 1; id <= 3; id++)
		node_stop(id);
	for (unsigned id = 1; id <= 3; id++)
		rm_rf(nodes[id].dir);
}

/*
 * The skip, through the real code (replica_wiped.c, core_open.c): node 3's
 * replica settled at an earlier start, skipping to term 5 (its marker
 * says "undecided settled" and "term 5"), and holds nothing else. Nodes 1
 * and 2 start empty and ask: 3 answers with h = 5 and no history (a term
 * it skipped to, with no vote, is none), 1 and 2 hear every member with
 * no history: a new group, but each starts at term 6 with no vote. So no
 * leader of a term below 7: without the marker's floor the group elects
 * in term 1, without the skip in term 6 (node 3 campaigning from 5).
 */
static void test_settled_fresh_skips_past_answers(void **state)
{
	char path[400];
	uint64_t leader;
	FILE *f;

	(void)state;
	for (unsigned id = 1; id <= 3; id++)
		node_addr(id);
	make_map(3, 1, 3);
	key_space = 10;
	assert_int_equal(mkdir(nodes[3].dir, 0755), 0);
	snprintf(path, sizeof path, "%s/shard-0.joining", nodes[3].dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("undecided settled\nterm 5\n", f);
	assert_int_equal(fclose(f), 0);
	node_start(3, 3);
	refresh(&nodes[3]);
	assert_false(nodes[3].status[0].st.probing);
	assert_int_equal(nodes[3].status[0].st.term, 5);
	node_start(1, 3);
	node_start(2, 3);
	leader = wait_leader(3, 0, 8000);
	assert_true(leader != 0);
	refresh(&nodes[leader]);
	assert_true(nodes[leader].status[0].st.term >= 7);
	for (unsigned id = 1; id <= 3; id++) {
		refresh(&nodes[id]);
		assert_false(nodes[id].status[0].st.amnesiac);
	}
	write_ok(leader, 0, 0, 10);
	assert_true(converged(3, 0, 5000));
	for (unsigned id = 1; id <= 3; id++)
		node_stop(id);
	for (unsigned id = 1; id <= 3; id++)
		rm_rf(nodes[id].dir);
}

/* Node 3 alone (its peers not started) on a data dir holding only the
 * marker `text`, with --initial-cluster-state existing or not: its term
 * after the start (UINT64_MAX: it asks, not settled), and the marker's
 * text after it. */
static uint64_t start_on_marker(const char *text, bool existing, char *after, size_t cap)
{
	char path[400];
	uint64_t term;
	size_t k = 0;
	FILE *f;

	assert_int_equal(mkdir(nodes[3].dir, 0755), 0);
	snprintf(path, sizeof path, "%s/shard-0.joining", nodes[3].dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	node_join_existing[3] = existing;
	node_start(3, 3);
	refresh(&nodes[3]);
	term = nodes[3].status[0].st.probing ? UINT64_MAX : nodes[3].status[0].st.term;
	node_stop(3);
	node_join_existing[3] = false;
	f = fopen(path, "r");
	assert_non_null(f);
	k = fread(after, 1, cap - 1, f);
	after[k] = '\0';
	fclose(f);
	rm_rf(nodes[3].dir);
	return term;
}

/*
 * The skip's term survives whichever way the replica is restarted (the
 * review of session 13): the settle marker of a joining replica
 * ("settled", --initial-cluster-state existing) is applied as the
 * undecided one's, and an "undecided settled" marker met with `existing`
 * is rewritten for joining with its term, not emptied (the next restart
 * would have lost the floor). A marker whose term line is garbage, or a
 * term no group reaches, is no settling: the replica asks again.
 */
static void test_settled_floor_kept_when_joining(void **state)
{
	char after[64];

	(void)state;
	for (unsigned id = 1; id <= 3; id++)
		node_addr(id);
	make_map(3, 1, 3);
	assert_int_equal(start_on_marker("undecided settled\nterm 5\n", false, after,
					 sizeof after), 5);
	assert_string_equal(after, "undecided settled\nterm 5\n");
	assert_int_equal(start_on_marker("settled\nterm 5\n", true, after, sizeof after), 5);
	assert_string_equal(after, "settled\nterm 5\n");
	assert_int_equal(start_on_marker("undecided settled\nterm 5\n", true, after,
					 sizeof after), 5);
	assert_string_equal(after, "settled\nterm 5\n");
	assert_true(start_on_marker("undecided settled\nterm x5\n", false, after,
				    sizeof after) == UINT64_MAX);
	assert_true(start_on_marker("undecided settled\nterm 99999999999999999999\n", false,
				    after, sizeof after) == UINT64_MAX);
	assert_true(start_on_marker("undecided settled\nterm 5\nterm 6\n", false, after,
				    sizeof after) == UINT64_MAX);
}

/* Flips 16 bytes of the first record of the newest segment of node id's
 * core log `core`: a bad record header with data after it, in the segment
 * that may hold a vote written after its checkpoint. */
static void damage_newest_segment(unsigned id, unsigned core)
{
	char dir[400], name[64], path[480];
	uint64_t *seqs = NULL;
	size_t n = 0;
	uint8_t b[16];
	int fd;

	snprintf(dir, sizeof dir, "%s/core-%u", nodes[id].dir, core);
	assert_int_equal(core_log_segments_list(dir, &seqs, &n), 0);
	assert_true(n > 0);
	assert_int_equal(core_log_segment_name(name, sizeof name, seqs[n - 1]), 0);
	free(seqs);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	/* The first record; in a log with none yet (a core restarted
	 * amnesiac), the segment's page 0. */
	off_t at = pread(fd, b, sizeof b, 4096) == (ssize_t)sizeof b ? 4096 : 0;

	assert_int_equal(pread(fd, b, sizeof b, at), (ssize_t)sizeof b);
	for (size_t i = 0; i < sizeof b; i++)
		b[i] ^= 0xff;
	assert_int_equal(pwrite(fd, b, sizeof b, at), (ssize_t)sizeof b);
	close(fd);
}

/*
 * A replica whose core's newest log segment is damaged may have lost a
 * vote and acknowledged entries: it starts (it used to be refused) but
 * takes no part in its group (cluster/replica_amnesia.c). Node 3's newest
 * segment is damaged while it is down; restarted, its replica is amnesiac:
 *   - no acknowledgement: writes commit on 1 and 2 and the leader learns
 *     no new match from 3, whose log and shard stay empty;
 *   - no vote: with the leader stopped, the other node needs 3's vote and
 *     must not get it for 20 election timeouts (an empty replica of term
 *     0 would grant it at once);
 *   - no campaign, no term: 3 stays at term 0; it serves no proposal;
 *   - durable: restarted again, it is still amnesiac.
 * It does not ask to rejoin here (amnesia_no_rejoin): what is checked is
 * that its old identity takes no part. Without the filter
 * (replica_amnesia_accept letting messages through) the first and second
 * checks fail.
 */
/* Whether the file at `path` holds `text`. */
static bool marker_says(const char *path, const char *text)
{
	char buf[512];
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	got = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (got < 0)
		return false;
	buf[got] = '\0';
	return strstr(buf, text) != NULL;
}

static void test_amnesiac_replica_takes_no_part(void **state)
{
	uint64_t leader, other, old_last;
	unsigned core, next = 0;
	char marker[400];
	struct stat sb;

	(void)state;
	auto_repair = true;
	no_rejoin = true;
	three_nodes_written(1, &next);
	refresh(&nodes[3]);
	core = nodes[3].status[0].core->r->id;
	old_last = nodes[3].status[0].st.last_index;
	node_stop(3);
	damage_newest_segment(3, core);
	node_start(3, 3); /* refused before amnesiac replicas */
	excluded = 1u << 3;
	refresh(&nodes[3]);
	assert_true(nodes[3].status[0].st.amnesiac);
	assert_non_null(strstr(nodes[3].status[0].st.amnesia_why, "offset"));
	snprintf(marker, sizeof marker, "%s/shard-0.amnesiac", nodes[3].dir);
	assert_int_equal(stat(marker, &sb), 0);

	/* No acknowledgement. */
	leader = wait_leader(3, 0, 5000);
	assert_true(leader == 1 || leader == 2);
	write_ok(leader, 0, next, 64);
	next += 64;
	assert_true(converged(3, 0, 5000));
	sleep_ms(5 * HEARTBEAT_MS);
	/* The leader may still hold the match 3's old self acknowledged
	 * (those entries were committed before); nothing above it. */
	refresh(&nodes[leader]);
	assert_true(nodes[leader].status[0].st.n_followers == 2);
	assert_true(nodes[leader].status[0].st.commit >= old_last + 64);
	for (unsigned f = 0; f < nodes[leader].status[0].st.n_followers; f++)
		if (nodes[leader].status[0].st.followers[f].node == 3)
			assert_true(nodes[leader].status[0].st.followers[f].match <= old_last);
	refresh(&nodes[3]);
	assert_int_equal(nodes[3].status[0].keys, 0);
	assert_int_equal(nodes[3].status[0].st.last_index, 0);
	assert_true(nodes[3].status[0].st.amnesia_dropped > 0);

	/* No vote: node `other` cannot win without 3. */
	other = leader == 1 ? 2 : 1;
	node_stop(leader);
	for (unsigned t = 0; t < 20 * ELECTION_MS / 10; t++) {
		refresh(&nodes[other]);
		refresh(&nodes[3]);
		assert_true(nodes[other].status[0].st.role != RAFT_LEADER);
		assert_true(nodes[3].status[0].st.role != RAFT_LEADER);
		sleep_ms(10);
	}
	refresh(&nodes[other]);
	assert_true(nodes[other].status[0].st.term > 1); /* it did campaign */
	refresh(&nodes[3]);
	assert_int_equal(nodes[3].status[0].st.term, 0);
	nodes[3].job_shard = 0;
	nodes[3].job_first = next;
	nodes[3].job_count = 1;
	run_job(&nodes[3], job_propose);
	assert_int_equal(nodes[3].job_rv[next], RAFT_ENOTLEADER);

	/* Durable: a restart keeps it amnesiac; the others serve again. */
	node_stop(3);
	node_start(3, 3);
	node_start((unsigned)leader, 3);
	assert_true(wait_leader(3, 0, 8000) != 0);
	refresh(&nodes[3]);
	assert_true(nodes[3].status[0].st.amnesiac);
	assert_int_equal(nodes[3].status[0].st.term, 0);

	/* Damaged again before its group took it back: its record still
	 * names (3, 0), its marker (3, 1), which may have voted since. The
	 * next identity is (3, 2), never (3, 1) again. */
	node_stop(3);
	damage_newest_segment(3, core);
	node_start(3, 3);
	refresh(&nodes[3]);
	assert_true(nodes[3].status[0].st.amnesiac);
	assert_true(marker_says(marker, "incarnation 2"));
	excluded = 0;
	auto_repair = false;
	no_rejoin = false;
	three_nodes_done();
}

/* Whether `conf` has member `id` with `role` (0: not a member). */
static bool member_is(const struct raft_conf *conf, uint64_t id, int role)
{
	for (uint32_t i = 0; i < conf->n; i++)
		if (conf->servers[i].id == id)
			return (int)conf->servers[i].role == role;
	return role == 0;
}

/*
 * An amnesiac replica rejoins its group on the same node as a new
 * incarnation (cluster/replica_amnesia.c): node 3's newest segment is
 * damaged while it is down; restarted, it asks the leader, which removes
 * identity (3, 0), adds (3, 1) as a learner and promotes it once caught
 * up; its marker goes; it holds every key (contents compared), and it
 * votes again: with the leader stopped, the other two elect one and
 * commit. Restarted, it is incarnation 1 and not amnesiac.
 */
static void test_amnesiac_replica_rejoins(void **state)
{
	uint64_t leader, digest, new_id = (UINT64_C(1) << 48) | 3;
	unsigned core, next = 0, t;

	(void)state;
	auto_repair = true;
	three_nodes_written(2, &next);
	refresh(&nodes[3]);
	core = nodes[3].status[0].core->r->id;
	node_stop(3);
	damage_newest_segment(3, core);
	node_start(3, 3);
	refresh(&nodes[3]);
	assert_true(nodes[3].status[0].st.amnesiac);
	excluded = 1u << 3;
	leader = wait_leader(3, 0, 5000);
	assert_true(leader == 1 || leader == 2);
	write_ok(leader, 0, next, 64);
	next += 64;
	for (t = 0; t < 1500; t++) {
		refresh(&nodes[3]);
		if (!nodes[3].status[0].st.amnesiac)
			break;
		sleep_ms(10);
	}
	assert_true(t < 1500);
	excluded = 0;
	assert_true(converged(3, 0, 8000));
	refresh(&nodes[leader]);
	digest = nodes[leader].status[0].digest;
	assert_true(member_is(&nodes[leader].status[0].st.conf, new_id, RAFT_VOTER));
	assert_true(member_is(&nodes[leader].status[0].st.conf, 3, 0));
	refresh(&nodes[3]);
	assert_int_equal(nodes[3].status[0].digest, digest);
	assert_false(path_exists(nodes[3].dir, "shard-0.amnesiac"));
	/* A voter again: without the old leader, 3's vote makes a majority. */
	node_stop((unsigned)leader);
	leader = wait_leader(3, 0, 8000);
	assert_true(leader != 0);
	write_ok(leader, 0, next, 64);
	next += 64;
	node_stop(3);
	node_start(3, 3);
	refresh(&nodes[3]);
	assert_false(nodes[3].status[0].st.amnesiac);
	for (unsigned id = 1; id <= 3; id++)
		if (!node_up(id))
			node_start(id, 3);
	assert_true(converged(3, 0, 8000));
	auto_repair = false;
	three_nodes_done();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wiped_node_elects_no_stale_leader),
		cmocka_unit_test(test_settled_fresh_skips_past_answers),
		cmocka_unit_test(test_settled_floor_kept_when_joining),
		cmocka_unit_test(test_amnesiac_replica_takes_no_part),
		cmocka_unit_test(test_amnesiac_replica_rejoins),
	};

	return replica_fixture_run(tests, sizeof tests / sizeof tests[0]);
}
