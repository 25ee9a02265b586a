/*
 * Snapshots between replicas (cluster/snapshot_*.c, shard/shard_install.c)
 * on the nodes of replica_fixture.h: a node killed or stopped between a
 * snapshot install's steps restarts and catches up (the install's
 * INSTALLED record completes the log reset); a lost snapshot chunk makes
 * the follower ask the leader to start over at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster/replica_internal.h"
#include "replica_fixture.h"

extern char **environ;

/*
 * A wiped node killed after a snapshot install and before its LOG_RESET was
 * durable holds tables at the leader's flushed index F while its core log
 * still has the group at index 0 (and its joining marker). That is a state
 * a crash makes, not damage: it restarts joining and catches up (it used
 * to be refused as a log cut below F). Made on disk here: node 3 wiped and
 * started alone (marker, empty group), then node 1's shard copied in.
 */
static void test_restart_between_install_and_log_reset(void **state)
{
	char cmd[1200];
	uint64_t leader, digest;
	unsigned next = 0;

	(void)state;
	leader = three_nodes_written(8, &next);
	refresh(&nodes[1]);
	digest = nodes[1].status[0].digest;
	for (unsigned id = 1; id <= 3; id++)
		node_stop(id);
	rm_rf(nodes[3].dir);
	node_start(3, 3); /* alone: the marker and an empty group, no leader */
	sleep_ms(100);
	node_stop(3);
	snprintf(cmd, sizeof cmd, "rm -rf '%s/shard-0' && cp -a '%s/shard-0' '%s/shard-0' && "
		 "test -e '%s/shard-0.joining'", nodes[3].dir, nodes[1].dir, nodes[3].dir,
		 nodes[3].dir);
	assert_int_equal(system(cmd), 0);
	for (unsigned id = 1; id <= 3; id++)
		node_start(id, 3); /* node 3 used to be refused here */
	leader = wait_leader(3, 0, 8000);
	assert_true(leader != 0);
	assert_true(converged(3, 0, 8000));
	refresh(&nodes[3]);
	assert_int_equal(nodes[3].status[0].digest, digest);
	write_ok(leader, 0, next, 64);
	assert_true(converged(3, 0, 8000));
	three_nodes_done();
}

/* The child's install hook: a kill -9 once the exchange is durable and
 * before the shard is reported installed (so before Raft's LOG_RESET). */
static bool kill_after_exchange(void *arg, enum shard_install_step step)
{
	(void)arg;
	if (step == INSTALL_BUILD)
		kill(getpid(), SIGKILL);
	return true;
}

/*
 * Node 3 stopped, then `rounds` x 64 writes through the other two: far past
 * node 3 (and snapshot_lag), so the leader compacts past it and node 3
 * needs a snapshot when it comes back. Returns the leader.
 */
static uint64_t write_past_node3(unsigned rounds, unsigned *next)
{
	uint64_t leader;

	node_stop(3);
	leader = wait_leader(2, 0, 5000);
	assert_true(leader == 1 || leader == 2);
	for (unsigned round = 0; round < rounds; round++) {
		write_ok(leader, 0, *next, 64);
		*next += 64;
	}
	refresh(&nodes[leader]);
	assert_true(nodes[leader].status[0].st.snapshot_index > 0);
	return leader;
}

/*
 * Node 3 of the cluster three_nodes_written made, in a process of its own
 * whose install hook kills it right after a snapshot's exchange: this very
 * executable again, with "--node3" (node3_child). posix_spawn execs it at
 * once, so the child runs none of this multithreaded process's code after
 * the fork (a forked copy could hang on a lock another thread held at the
 * fork), and with none of its descriptors but 0-2 (rings, sockets). It
 * gets what it needs to join the others: this process's pid (their
 * addresses and data dirs), the three peer ports and the settings
 * node_start reads that the test changed.
 */
static pid_t node3_spawn(void)
{
	char self[512], parent[16], ports[3][8], memtable[24], lag[24];
	char *argv[] = { self, "--node3", parent, ports[0], ports[1], ports[2], memtable, lag,
			 NULL };
	ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
	posix_spawn_file_actions_t only_stdio;
	pid_t pid;
	int rv;

	assert_true(len > 0 && (size_t)len < sizeof self - 1);
	self[len] = '\0';
	snprintf(parent, sizeof parent, "%d", (int)getpid());
	for (unsigned id = 1; id <= 3; id++)
		snprintf(ports[id - 1], sizeof ports[0], "%u", nodes[id].port);
	snprintf(memtable, sizeof memtable, "%llu", (unsigned long long)memtable_size);
	snprintf(lag, sizeof lag, "%llu", (unsigned long long)snapshot_lag);
	assert_int_equal(posix_spawn_file_actions_init(&only_stdio), 0);
	assert_int_equal(posix_spawn_file_actions_addclosefrom_np(&only_stdio, 3), 0);
	rv = posix_spawn(&pid, self, &only_stdio, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&only_stdio);
	assert_int_equal(rv, 0);
	return pid;
}

/* The child of node3_spawn (args: parent pid, the ports of nodes 1-3, the
 * memtable size, the snapshot lag): node 3 alone in this process until its
 * install hook kills it. Exits 2 if never installed within 20 s (and
 * SIGALRM ends it at 30 s whatever happens), 3 if it could not start. */
static int node3_child(char **args)
{
	int parent = atoi(args[0]);

	alarm(30);
	if (replica_fixture_setup_as((unsigned)parent, parent) != 0)
		return 3;
	for (unsigned id = 1; id <= 3; id++)
		node_addr_known(id, CORES, (uint16_t)atoi(args[id]));
	make_map(3, 1, 3);
	memtable_size = strtoull(args[4], NULL, 10);
	snapshot_lag = strtoull(args[5], NULL, 10);
	install_hook = kill_after_exchange;
	node_start(3, 3);
	sleep_ms(20000);
	return 2; /* never installed */
}

/*
 * A LAGGING replica with a log (no joining marker) killed -9 between a
 * snapshot install's exchange and its core log's LOG_RESET: its shard's
 * flushed index F is the snapshot's, above every entry its log holds for
 * the group. It used to be refused at restart as a log cut below F; the
 * install's INSTALLED record (in the exchanged dir) now lets the restart
 * complete the reset. Node 3 runs in a process of its own (node3_spawn)
 * whose install hook kills it right after the exchange was made durable.
 */
static void test_kill_between_exchange_and_log_reset(void **state)
{
	char shard_dir[400];
	uint64_t leader, digest;
	unsigned next = 0;
	int status = 0;
	pid_t pid, done = 0;

	(void)state;
	snapshot_lag = 32;
	three_nodes_written(2, &next);
	leader = write_past_node3(10, &next);
	snprintf(shard_dir, sizeof shard_dir, "%s/shard-0", nodes[3].dir);
	assert_false(path_exists(nodes[3].dir, "shard-0.joining"));
	pid = node3_spawn();
	for (unsigned t = 0; t < 3000 && (done = waitpid(pid, &status, WNOHANG)) == 0; t++)
		sleep_ms(10);
	if (done != pid) { /* still running after 30 s: stopped, and the test fails */
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	assert_int_equal(done, pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	/* Killed with the new tables and their record in place. */
	assert_true(path_exists(shard_dir, "INSTALLED"));
	assert_false(path_exists(nodes[3].dir, "shard-0.joining"));
	refresh(&nodes[leader]);
	digest = nodes[leader].status[0].digest;
	node_start(3, 3); /* refused before the INSTALLED record */
	assert_true(converged(3, 0, 8000));
	refresh(&nodes[3]);
	assert_int_equal(nodes[3].status[0].digest, digest);
	write_ok(wait_leader(3, 0, 5000), 0, next, 64);
	assert_true(converged(3, 0, 8000));
	/* The reset is durable: the record went. */
	for (unsigned t = 0; t < 300 && path_exists(shard_dir, "INSTALLED"); t++)
		sleep_ms(10);
	assert_false(path_exists(shard_dir, "INSTALLED"));
	/* And a clean restart finds everything again. */
	node_stop(3);
	node_start(3, 3);
	assert_true(converged(3, 0, 8000));
	three_nodes_done();
	snapshot_lag = 0;
}

/*
 * A snapshot chunk lost on the way (the transport drops the oldest bulk
 * frames past its bound; a connection breaks) used to cost the stream the
 * leader's 5 s timeout before it started over. The follower now sees the
 * gap by the chunks' numbers (a whole small table's chunk lost leaves the
 * offsets contiguous) and asks the leader to start over at once.
 */
static void test_lost_snapshot_chunk(void **state)
{
	/* The first chunk (what follows is a tail with no stream), the last
	 * (nothing follows: Raft's SNAPSHOT message, behind it on the same
	 * queue, tells), and none: a whole stream is left alone. */
	static const enum lose lose[] = { LOSE_FIRST, LOSE_LAST, LOSE_NONE };
	uint64_t leader, t0, ms, restarted;
	unsigned next = 0;

	(void)state;
	snapshot_lag = 32;
	three_nodes_written(2, &next);
	for (unsigned k = 0; k < sizeof lose / sizeof lose[0]; k++) {
		leader = write_past_node3(4, &next); /* three times within writes[] */
		restarted = nodes[leader].status[0].st.snap_restarted;
		atomic_store(&lose_chunk, lose[k]);
		t0 = mono_us();
		node_start(3, 3);
		assert_true(converged(3, 0, 8000));
		ms = (mono_us() - t0) / 1000;
		refresh(&nodes[leader]);
		refresh(&nodes[3]);
		restarted = nodes[leader].status[0].st.snap_restarted - restarted;
		fprintf(stderr, "chunk lost: %s; node 3 caught up after %llu ms (the leader "
			"restarted %llu streams, node 3 asked %llu times)\n",
			lose[k] == LOSE_FIRST ? "the first" : lose[k] == LOSE_LAST ? "the last" :
			"none", (unsigned long long)ms, (unsigned long long)restarted,
			(unsigned long long)nodes[3].status[0].st.snap_nacked);
		assert_int_equal(atomic_load(&lose_chunk), LOSE_NONE); /* it was lost */
		assert_true(nodes[3].status[0].st.snap_installed >= 1);
		assert_int_equal(nodes[3].status[0].digest, nodes[leader].status[0].digest);
		if (lose[k] == LOSE_NONE) {
			/* A stream that lost nothing is neither asked for nor
			 * sent again (the disk may still be behind it when
			 * Raft's message arrives). */
			assert_int_equal(nodes[3].status[0].st.snap_nacked, 0);
			assert_int_equal(restarted, 0);
			continue;
		}
		assert_true(nodes[3].status[0].st.snap_nacked >= 1);
		assert_true(restarted >= 1);
		/* Well inside the 5 s the leader's timeout took. */
		assert_true(ms < 4500);
	}
	three_nodes_done();
	snapshot_lag = 0;
}

/* What job_restart_requests found and did on the leader's core of shard 0. */
static struct {
	uint64_t boot;          /* node 3's boot id, as the leader's hello table has it */
	int state;              /* the stream to node 3: enum snap_send_state, -1 none */
	bool forced;            /* it was started by the job (none was under way) */
	bool stale_ignored;     /* the request of another process left it alone */
	bool current_served;    /* the request of node 3's latest process started it over */
	uint64_t stale_count;   /* the replica's snap_restart_stale after both */
} restart_seen;

static struct snap_send *send_to(struct replica *rep, uint64_t node)
{
	for (unsigned i = 0; i < RAFT_MAX_SERVERS; i++)
		if (rep->sends[i] && replica_ident_node(rep->sends[i]->to) == node)
			return rep->sends[i];
	return NULL;
}

/* On the leader of shard 0: two restart requests for its stream to node 3
 * (started here if none is under way), naming that stream, one from an
 * earlier process of node 3 (another boot id), one from its latest. */
static bool job_restart_requests(struct tcore *c)
{
	struct replica *rep = cluster_core_replica(c->cc, 0);
	struct cluster_node *n;
	struct snap_send *s;
	struct peer_msg_snapshot_request q = { .group = 0 };
	uint64_t restarted;

	if (!rep || raft_role(rep->raft) != RAFT_LEADER)
		return true;
	n = rep->core->node;
	restart_seen.boot = atomic_load(&n->peer_boot_id[cluster_map_index(&n->map, 3)]);
	s = send_to(rep, 3);
	if (s && s->restart_due && c->job_calls < 2000)
		return false; /* a start over waiting out its gap goes first */
	restart_seen.forced = !s || s->state == SNAP_SEND_IDLE;
	if (restart_seen.forced)
		snapshot_send_force(rep, replica_ident(3, 0), 0);
	s = send_to(rep, 3);
	restart_seen.state = s ? (int)s->state : -1;
	if (!s || s->state == SNAP_SEND_IDLE)
		return true;
	q.restart_stream = s->stream;
	q.boot_id = restart_seen.boot ^ 0x5a5a5a5a5a5a5a5aull; /* an earlier process */
	restarted = rep->snap_restarted;
	snapshot_send_restart(rep, 3, &q);
	restart_seen.stale_ignored = !s->restart_due && rep->snap_restarted == restarted;
	q.boot_id = restart_seen.boot;
	snapshot_send_restart(rep, 3, &q);
	restart_seen.current_served = s->restart_due || rep->snap_restarted == restarted + 1;
	restart_seen.stale_count = rep->snap_restart_stale;
	return true;
}

/* What job_any_requests saw: the outcome of each of its requests naming no
 * stream ("whichever you finished"), in order. */
static struct {
	unsigned step;          /* the last step reached */
	bool served[4];         /* each request started the stream over */
	uint64_t streams[3];    /* the stream ids the steps saw */
} any_seen;

/* The leader's stream to node 3, SENT: started by Raft's SNAPSHOT message
 * (as replica_handle_update hands it), all its chunks queued for node 3. */
static bool job_any_requests(struct tcore *c)
{
	struct replica *rep = cluster_core_replica(c->cc, 0);
	struct snap_send *s;
	struct peer_msg_snapshot_request q = { .group = 0, .restart_stream = SNAPSHOT_STREAM_ANY };
	uint64_t restarted;

	if (!rep || raft_role(rep->raft) != RAFT_LEADER)
		return true;
	if (c->job_calls == 0) {
		struct raft_msg m = {
			.type = RAFT_MSG_SNAPSHOT, .from = raft_id(rep->raft),
			.to = replica_ident(3, 0), .term = raft_term(rep->raft),
			.index = raft_snapshot(rep->raft)->index,
		};

		(void)snapshot_send_intercept(rep, &m);
	}
	s = send_to(rep, 3);
	if (c->job_calls > 2000 || !s || s->state == SNAP_SEND_IDLE)
		return true; /* the test fails on the steps not reached */
	if (s->state != SNAP_SEND_SENT || s->restart_due)
		return false;
	q.boot_id = restart_seen.boot;
	restarted = rep->snap_restarted;
	switch (any_seen.step) {
	case 0:
		/* Node 3 saw this stream, holds none of it: served. */
		any_seen.streams[0] = s->stream;
		q.stream_seen = s->stream;
		snapshot_send_restart(rep, 3, &q);
		any_seen.served[0] = rep->snap_restarted == restarted + 1;
		break;
	case 1:
		/* Started over for node 3's request, which had seen stream 0:
		 * another request that saw no newer one was sent before it
		 * could see this one (Raft's message behind the old stream). */
		any_seen.streams[1] = s->stream;
		q.stream_seen = any_seen.streams[0];
		snapshot_send_restart(rep, 3, &q);
		any_seen.served[1] = s->restart_due || rep->snap_restarted != restarted;
		/* Another process of node 3, whatever it saw: stale too. */
		q.boot_id ^= 0x5a5a5a5a5a5a5a5aull;
		q.stream_seen = s->stream;
		snapshot_send_restart(rep, 3, &q);
		any_seen.served[2] = s->restart_due || rep->snap_restarted != restarted;
		/* Node 3 saw this stream (its chunks), holds none: served. */
		q.boot_id = restart_seen.boot;
		snapshot_send_restart(rep, 3, &q);
		any_seen.served[3] = s->restart_due || rep->snap_restarted == restarted + 1;
		any_seen.streams[2] = s->stream;
		break;
	default:
		return true;
	}
	any_seen.step++;
	return any_seen.step == 2;
}

/*
 * A restart request from an earlier process of the follower (it reached
 * the leader late, or waited there for its gap) is stale: that process's
 * stream went with it, and starting over again wastes a stream beside the
 * new process's own catch-up. The leader tells it by the boot id the
 * request carries against the one of the follower's latest hello; one
 * from the latest process is served.
 */
static void test_stale_restart_request(void **state)
{
	uint64_t boot3, leader;
	unsigned next = 0;

	(void)state;
	snapshot_lag = 32;
	three_nodes_written(2, &next);
	boot3 = nodes[3].cn->boot_id;
	assert_true(boot3 != 0);
	leader = write_past_node3(4, &next); /* node 3 down: its hello stays the latest */
	memset(&restart_seen, 0, sizeof restart_seen);
	memset(&any_seen, 0, sizeof any_seen);
	restart_seen.boot = boot3;
	run_job(&nodes[leader], job_any_requests);
	assert_int_equal(any_seen.step, 2);
	assert_true(any_seen.served[0]);
	assert_true(any_seen.streams[1] != any_seen.streams[0]);
	assert_false(any_seen.served[1]);
	assert_false(any_seen.served[2]);
	assert_true(any_seen.served[3]);
	run_job(&nodes[leader], job_restart_requests);
	fprintf(stderr, "stream to node 3: state %d%s\n", restart_seen.state,
		restart_seen.forced ? " (started by the test)" : "");
	assert_true(restart_seen.boot == boot3);
	assert_true(restart_seen.state > 0);
	assert_true(restart_seen.stale_ignored);
	assert_true(restart_seen.current_served);
	assert_int_equal(restart_seen.stale_count, 3);
	node_start(3, 3);
	assert_true(converged(3, 0, 8000));
	three_nodes_done();
	snapshot_lag = 0;
}

/*
 * The last chunk of a stream lost (Raft's SNAPSHOT message tells: node 3
 * asks for "whichever you finished"), then every chunk of the stream
 * started over for it: node 3 asks the same again, having seen no newer
 * stream, which the leader takes for a request sent before the new stream
 * could reach it (restart_stale). Past RESTART_STALE_US after the stream
 * was all handed over, such a request means the whole stream was lost and
 * starts a third; before, only SEND_TIMEOUT (5 s) did (5,057 ms here).
 */
static void test_lost_restarted_stream(void **state)
{
	uint64_t leader, t0, ms, restarted, stale;
	unsigned next = 0;

	(void)state;
	snapshot_lag = 32;
	three_nodes_written(2, &next);
	leader = write_past_node3(4, &next);
	restarted = nodes[leader].status[0].st.snap_restarted;
	stale = nodes[leader].status[0].st.snap_restart_stale;
	atomic_store(&lose_chunk, LOSE_LAST_THEN_ALL);
	t0 = mono_us();
	node_start(3, 3);
	assert_true(converged(3, 0, 12000));
	ms = (mono_us() - t0) / 1000;
	refresh(&nodes[leader]);
	refresh(&nodes[3]);
	fprintf(stderr, "last chunk, then a whole stream lost: node 3 caught up after %llu ms "
		"(the leader restarted %llu streams, ignored %llu requests as stale)\n",
		(unsigned long long)ms,
		(unsigned long long)(nodes[leader].status[0].st.snap_restarted - restarted),
		(unsigned long long)(nodes[leader].status[0].st.snap_restart_stale - stale));
	assert_int_equal(atomic_load(&lose_chunk), LOSE_NONE); /* both were lost */
	assert_int_equal(nodes[3].status[0].digest, nodes[leader].status[0].digest);
	assert_true(ms < 4500);
	three_nodes_done();
	snapshot_lag = 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_restart_between_install_and_log_reset),
		cmocka_unit_test(test_kill_between_exchange_and_log_reset),
		cmocka_unit_test(test_lost_snapshot_chunk),
		cmocka_unit_test(test_stale_restart_request),
		cmocka_unit_test(test_lost_restarted_stream),
	};

	if (argc == 8 && strcmp(argv[1], "--node3") == 0)
		return node3_child(argv + 2);
	return replica_fixture_run(tests, sizeof tests / sizeof tests[0]);
}
