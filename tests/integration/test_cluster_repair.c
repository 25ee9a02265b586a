/*
 * Repair of a damaged replica from its peers (issue 14), with three real
 * ringkvd processes on 127.0.17.11-13 (peer port in 37000-37999), one core,
 * one shard (one Raft group of three), 64 KiB memtables so the keys land in
 * several SSTables:
 *   1. 400 keys are written and acknowledged;
 *   2. node 2 stops cleanly; 16 bytes are flipped in the first data block of
 *      its oldest table (as tests/integration/corrupt_table.py does); it
 *      restarts (a damaged block is not found at start-up);
 *   3. node 2 is made the leader, without reading anything: the leader is
 *      stopped with SIGTERM (it hands leadership to its most caught-up
 *      follower) and restarted, at most 6 times, until node 2 leads;
 *   4. every key is read through node 2 (linearizable reads: its own
 *      shard): a read of the damaged block answers DATA_LOSS and marks the
 *      table. From there no operator acts: node 2 must hand leadership on,
 *      ask the new leader for a snapshot, install it, and log the repair's
 *      start and end;
 *   5. writes go on (a new leader, not node 2, takes them); every
 *      acknowledged key reads back with its value from every node's own
 *      replica (stale reads), node 2's included, none answers DATA_LOSS
 *      through the leader, node 2's apply is not stopped, and it repaired
 *      exactly once;
 *   6. a follower (node 3, or node 1 if node 3 leads) gets the same damage
 *      while down; once it caught up and its group went to sleep (idle: no
 *      ticks, so nothing of Raft's would find the damage), stale reads of
 *      its own replica meet the damaged block, and it must wake and repair
 *      itself the same way (without leading first); writes and every copy
 *      are checked again;
 *   7. requests nobody should act on, sent by the test itself over the peer
 *      protocol as node `as` (from its address): to a follower (ignored:
 *      "does not lead") and for a group outside the map (refused); both
 *      logged, and the cluster still takes writes;
 *   8. a damaged follower still votes and drops a stream from a leader that
 *      died: every node restarts with --snapshot-rate 64KiB (a stream of a
 *      few tables takes seconds), node B's table is damaged while it is
 *      down; once B found it and receives a snapshot, the leader is killed
 *      (-9). The third node must be elected (it needs B's vote: B heard
 *      from the dead leader, so a B whose election clock stood still would
 *      refuse it for ever), B must drop the dead leader's stream, ask the
 *      new leader and repair from it; then every copy is checked again.
 * Bounded: every wait has a deadline, the whole test well under 60 s on an
 * idle machine; every process is stopped (harness_cleanup on failure).
 *
 * usage: test_cluster_repair RINGKVD
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster/peer_msg.h"
#include "shard/route.h"
#include "harness.h"
#include "tools/libringkv.h"

#define NODES 3
#define KEYS 400
#define MORE 100
#define VICTIM 1 /* node 2 */
#define WAIT_MS 20000

static const char *binary;
static const char *base_dir;
static char peers[256];
static struct server nodes[NODES];
static bool running[NODES];
static struct rkv_client *conn[NODES];
static char logs[NODES][512];
static bool passed;
static const char *snapshot_rate = "64MiB"; /* the default */

static long ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void node_dir(unsigned i, char *buf, size_t len)
{
	snprintf(buf, len, "%s/node%u", base_dir, i + 1);
}

static void node_up(unsigned i)
{
	char dir[512], id[8];
	const char *args[] = {
		"--node-id", id, "--initial-cluster", peers, "--cores", "1", "--shards", "1",
		"--data-dir", dir, "--election-timeout", "300ms", "--memtable-size", "64KiB",
		"--snapshot-rate", snapshot_rate, "--log-level", "info", NULL,
	};

	node_dir(i, dir, sizeof dir);
	snprintf(id, sizeof id, "%u", i + 1);
	nodes[i].stderr_path = logs[i];
	CHECK(server_start(&nodes[i], binary, args) == 0, "node %u did not start", i + 1);
	running[i] = true;
}

static void disconnect(unsigned i)
{
	if (conn[i])
		rkv_close(conn[i]);
	conn[i] = NULL;
}

static void node_kill(unsigned i)
{
	disconnect(i);
	CHECK(server_stop(&nodes[i], SIGKILL, 10000) != -1, "kill node %u", i + 1);
	running[i] = false;
}

static void node_down(unsigned i)
{
	int status;

	disconnect(i);
	status = server_stop(&nodes[i], SIGTERM, 15000);
	CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "node %u should stop cleanly on SIGTERM (status %d)", i + 1, status);
	running[i] = false;
}

static struct rkv_client *client(unsigned i)
{
	char err[256];

	if (!running[i])
		return NULL;
	if (!conn[i]) {
		if (rkv_connect_timeout(nodes[i].addr, 2000, &conn[i], err, sizeof err) != 0) {
			conn[i] = NULL;
			return NULL;
		}
		rkv_set_timeout(conn[i], 3000);
	}
	return conn[i];
}

/* Key k and its value: 600 bytes that say which key they belong to. */
struct pair {
	char key[32];
	char value[600];
	size_t kl, vl;
};

static struct pair pair_of(unsigned k)
{
	struct pair p;
	int n;

	p.kl = (size_t)snprintf(p.key, sizeof p.key, "rk:%05u", k);
	n = snprintf(p.value, 32, "v%u:", k);
	for (size_t i = (size_t)n; i < sizeof p.value; i++)
		p.value[i] = (char)('A' + (k * 7 + i) % 26);
	p.vl = sizeof p.value;
	return p;
}

/* Writes keys first..first+count-1 through any node; every one must be
 * acknowledged within WAIT_MS. */
static void write_range(unsigned first, unsigned count)
{
	for (unsigned k = first; k < first + count; k++) {
		struct pair p = pair_of(k);
		long deadline = ms_now() + WAIT_MS;
		int rv = -1;

		while (rv != RKV_STATUS_OK) {
			CHECK(ms_now() < deadline, "key %u not acknowledged (last %s)", k,
			      rkv_status_name(rv));
			for (unsigned i = 0; i < NODES && rv != RKV_STATUS_OK; i++) {
				struct rkv_client *c = client(i);

				if (!c)
					continue;
				rv = rkv_put(c, p.key, p.kl, p.value, p.vl);
				if (rv < 0)
					disconnect(i);
			}
			if (rv != RKV_STATUS_OK)
				usleep(20000);
		}
	}
}

/* The node node i believes leads shard 0 (0: none), from its own map. */
static uint64_t leader_seen_by(unsigned i)
{
	struct rkv_client *c = client(i);
	struct rkv_cluster_map *m = NULL;
	uint64_t leader = 0;

	if (!c)
		return 0;
	if (rkv_cluster_map(c, &m) != RKV_STATUS_OK) {
		disconnect(i);
		return 0;
	}
	if (m->shard_count > 0)
		leader = m->shards[0].leader;
	rkv_cluster_map_free(m);
	return leader;
}

/* Node i's own replica: is it the leader, did its apply stop, does its
 * group sleep (`asleep` may be NULL)? */
static bool replica_state(unsigned i, bool *leads, bool *stopped, bool *asleep)
{
	struct rkv_client *c = client(i);
	struct rkv_cluster_status *st = NULL;
	bool ok = false;

	if (!c || rkv_cluster_status(c, &st) != RKV_STATUS_OK) {
		disconnect(i);
		return false;
	}
	if (st->replica_count > 0) {
		*leads = strcmp(st->replicas[0].role, "leader") == 0;
		*stopped = st->replicas[0].apply_stopped != 0;
		if (asleep)
			*asleep = st->replicas[0].sleeping != 0;
		ok = true;
	}
	rkv_cluster_status_free(st);
	return ok;
}

static bool replica_of(unsigned i, bool *leads, bool *stopped)
{
	return replica_state(i, leads, stopped, NULL);
}

/* Waits until node i's own replica reports its group asleep. */
static void await_sleep(unsigned i)
{
	long deadline = ms_now() + WAIT_MS;
	bool leads = false, stopped = false, asleep = false;

	while (!replica_state(i, &leads, &stopped, &asleep) || !asleep) {
		CHECK(ms_now() < deadline, "node %u's group did not go to sleep", i + 1);
		usleep(50000);
	}
}

/* Waits until the three nodes agree on one leader; returns its index. */
static unsigned agreed_leader(void)
{
	long deadline = ms_now() + WAIT_MS;

	for (;;) {
		uint64_t l = leader_seen_by(0);

		if (l != 0 && l == leader_seen_by(1) && l == leader_seen_by(2)) {
			bool leads = false, stopped = false;

			if (replica_of((unsigned)l - 1, &leads, &stopped) && leads)
				return (unsigned)l - 1;
		}
		CHECK(ms_now() < deadline, "no agreed leader within %d ms", WAIT_MS);
		usleep(50000);
	}
}

/* Flips 16 bytes at offset 100 of node i's lowest-numbered table. */
static void damage_oldest_table(unsigned i)
{
	char dir[512], path[800], oldest[64] = "";
	uint8_t bytes[16];
	struct dirent *e;
	DIR *d;
	int fd;

	node_dir(i, dir, sizeof dir);
	strcat(dir, "/shard-0");
	d = opendir(dir);
	CHECK(d != NULL, "no %s", dir);
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);

		if (n > 4 && n < sizeof oldest && strcmp(e->d_name + n - 4, ".sst") == 0 &&
		    (oldest[0] == '\0' || strcmp(e->d_name, oldest) < 0))
			strcpy(oldest, e->d_name);
	}
	closedir(d);
	CHECK(oldest[0] != '\0', "node %u holds no table", i + 1);
	snprintf(path, sizeof path, "%s/%s", dir, oldest);
	fd = open(path, O_RDWR);
	CHECK(fd >= 0 && pread(fd, bytes, sizeof bytes, 100) == (ssize_t)sizeof bytes,
	      "read %s", path);
	for (size_t k = 0; k < sizeof bytes; k++)
		bytes[k] ^= 0x5A;
	CHECK(pwrite(fd, bytes, sizeof bytes, 100) == (ssize_t)sizeof bytes, "write %s", path);
	CHECK(fsync(fd) == 0 && close(fd) == 0, "sync %s", path);
	printf("flipped 16 bytes at offset 100 of node %u's shard-0/%s\n", i + 1, oldest);
}

static unsigned lines_with(unsigned i, const char *what)
{
	return harness_lines_with(logs[i], what);
}

static void await_lines(unsigned i, const char *what, unsigned count)
{
	long deadline = ms_now() + WAIT_MS;

	while (lines_with(i, what) < count) {
		CHECK(ms_now() < deadline, "node %u never logged \"%s\"", i + 1, what);
		usleep(50000);
	}
}

/* Reads keys 0..count-1 through node i, linearizably (node i leads), or
 * stale (node i's own replica): returns how many answered DATA_LOSS. A
 * wrong value or a lost key fails the test; other answers (a damaged
 * leader steps down meanwhile) are let pass. */
static unsigned read_through(unsigned i, unsigned count, bool stale)
{
	unsigned data_loss = 0;

	for (unsigned k = 0; k < count; k++) {
		struct pair p = pair_of(k);
		struct rkv_client *c = client(i);
		void *got = NULL;
		size_t gl = 0;
		int rv;

		if (!c)
			break;
		rv = stale ? rkv_get_stale(c, p.key, p.kl, &got, &gl)
			   : rkv_get(c, p.key, p.kl, &got, &gl);
		if (rv == RKV_STATUS_OK)
			CHECK(gl == p.vl && memcmp(got, p.value, p.vl) == 0,
			      "key %u reads a wrong value through node %u", k, i + 1);
		else if (rv == RKV_STATUS_DATA_LOSS)
			data_loss++;
		else
			CHECK(rv != RKV_STATUS_NOT_FOUND, "key %u lost (node %u)", k, i + 1);
		free(got);
	}
	return data_loss;
}

/* Node i's own replica holds key k with its value (stale read), in time. */
static void own_copy(unsigned i, unsigned k)
{
	struct pair p = pair_of(k);
	long deadline = ms_now() + WAIT_MS;
	int rv = -1;

	for (;;) {
		struct rkv_client *c = client(i);
		void *got = NULL;
		size_t gl = 0;

		if (c) {
			rv = rkv_get_stale(c, p.key, p.kl, &got, &gl);
			if (rv == RKV_STATUS_OK && gl == p.vl && memcmp(got, p.value, p.vl) == 0) {
				free(got);
				return;
			}
			free(got);
			if (rv < 0)
				disconnect(i);
		}
		CHECK(ms_now() < deadline, "node %u's own copy of key %u is not right "
		      "(last answer %s)", i + 1, k, rkv_status_name(rv));
		usleep(20000);
	}
}

/* Speaks the peer protocol to node `to` as node `as` (bound to its peer
 * address): a hello, then SnapshotRequests for `groups`. */
static void request_as(unsigned as, unsigned to, unsigned port, const uint64_t *groups,
		       size_t n)
{
	struct rkv_cluster_map *m = NULL;
	struct sockaddr_in src = { .sin_family = AF_INET }, dst = { .sin_family = AF_INET };
	struct peer_msg_buf out;
	struct peer_msg_hello h = {
		.node_id = as + 1, .version = PEER_MSG_VERSION, .to_node_id = to + 1,
		/* the nodes' data dirs are new: they place keys by hash tags */
		.slot_function = ROUTE_SLOT_FN_DEFAULT,
	};
	char ip[32];
	int fd;

	CHECK(client(to) && rkv_cluster_map(client(to), &m) == RKV_STATUS_OK, "map");
	h.cluster_id = m->cluster_id;
	rkv_cluster_map_free(m);
	peer_msg_buf_init(&out);
	CHECK(peer_msg_encode_hello(&out, &h) == 0, "hello");
	for (size_t i = 0; i < n; i++) {
		struct peer_msg_snapshot_request q = { .group = groups[i], .applied = 1 };

		CHECK(peer_msg_encode_snapshot_request(&out, &q) == 0, "request");
	}
	snprintf(ip, sizeof ip, "127.0.17.1%u", as + 1);
	inet_pton(AF_INET, ip, &src.sin_addr);
	snprintf(ip, sizeof ip, "127.0.17.1%u", to + 1);
	inet_pton(AF_INET, ip, &dst.sin_addr);
	dst.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&src, sizeof src) == 0 &&
	      connect(fd, (struct sockaddr *)&dst, sizeof dst) == 0, "connect to node %u",
	      to + 1);
	CHECK(write(fd, out.data, out.len) == (ssize_t)out.len, "send");
	usleep(300 * 1000); /* read before the close */
	close(fd);
	peer_msg_buf_free(&out);
}

/* A failed run (or REPAIR_TEST_LOGS=1) shows what the nodes said. */
/* Every node's own replica holds keys 0..count-1, none reads DATA_LOSS
 * through the leader, and `repaired` no longer has its apply stopped. */
static void check_every_copy(unsigned count, unsigned repaired)
{
	unsigned leader = agreed_leader();
	bool leads = false, stopped = true;

	for (unsigned i = 0; i < NODES; i++)
		for (unsigned k = 0; k < count; k++)
			own_copy(i, k);
	printf("every node's own replica holds all %u keys; node %u leads\n", count,
	       leader + 1);
	CHECK(read_through(leader, count, false) == 0, "DATA_LOSS after the repair");
	CHECK(replica_of(repaired, &leads, &stopped) && !stopped,
	      "node %u's apply is stopped after the repair", repaired + 1);
}

static void keep_logs(void)
{
	char cmd[1200];

	if (passed && !getenv("REPAIR_TEST_LOGS"))
		return;
	snprintf(cmd, sizeof cmd, "for f in '%s'/node*.log; do echo \"== $f\"; "
		 "grep -E 'repair|damag|snapshot|leader' \"$f\" | tail -n 25; done >&2",
		 base_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "(no logs)\n");
}

int main(int argc, char **argv)
{
	unsigned port = 37000 + (unsigned)getpid() % 1000, leader, tries = 0, rounds = 0, lost,
		 follower, done;
	long t0 = ms_now();

	CHECK(argc == 2, "usage: %s RINGKVD", argv[0]);
	binary = argv[1];
	base_dir = harness_tmpdir();
	CHECK(base_dir, "mkdtemp");
	harness_at_cleanup(keep_logs);
	for (unsigned i = 0; i < NODES; i++)
		snprintf(logs[i], sizeof logs[i], "%s/node%u.log", base_dir, i + 1);
	snprintf(peers, sizeof peers, "1=127.0.17.11:%u,2=127.0.17.12:%u,3=127.0.17.13:%u",
		 port, port, port);
	for (unsigned i = 0; i < NODES; i++)
		node_up(i);

	/* 1. */
	write_range(0, KEYS);
	printf("%u keys acknowledged\n", KEYS);

	/* 2. (a leader hands on as it stops: a clean stop in any role) */
	(void)agreed_leader();
	node_down(VICTIM);
	damage_oldest_table(VICTIM);
	node_up(VICTIM);

	/* 3. and 4.: reads forwarded elsewhere meet no damage, so should node
	 * 2 lose its leadership before them (a slow machine), it is made the
	 * leader again. */
	do {
		CHECK(++rounds <= 3, "no read through node 2 met the damaged block");
		while ((leader = agreed_leader()) != VICTIM) {
			CHECK(++tries <= 6, "node 2 never became the leader");
			node_down(leader);
			node_up(leader);
		}
		printf("node 2 leads with a damaged table (after %u hand-offs)\n", tries);
		CHECK(lines_with(VICTIM, "repair from a peer started") == 0,
		      "node 2 found the damage before anything read it");
		lost = read_through(VICTIM, KEYS, false);
		printf("reads through node 2: %u answered DATA_LOSS\n", lost);
	} while (lost == 0);
	await_lines(VICTIM, "repair from a peer started", 1);
	await_lines(VICTIM, "handing leadership to node", 1);
	await_lines(VICTIM, "asked node", 1);
	await_lines(VICTIM, "repair from a peer done", 1);
	CHECK(lines_with(0, "(it asked: repair)") + lines_with(2, "(it asked: repair)") >= 1,
	      "no leader streamed a snapshot for the request");

	/* 5. */
	write_range(KEYS, MORE);
	printf("%u more keys acknowledged\n", MORE);
	check_every_copy(KEYS + MORE, VICTIM);
	CHECK(lines_with(VICTIM, "repair from a peer done") == 1,
	      "node 2 should have repaired exactly once");
	/* The damaged replica it replaced is kept, whole, in quarantine. */
	CHECK(lines_with(VICTIM, "the replaced replica was damaged: its files are kept in") == 1,
	      "node 2 did not report its damaged replica kept in quarantine");
	{
		char qdir[512], manifest[1024];
		struct dirent *e;
		unsigned found = 0;
		DIR *d;

		node_dir(VICTIM, qdir, sizeof qdir);
		strcat(qdir, "/quarantine");
		d = opendir(qdir);
		CHECK(d != NULL, "no %s after the repair", qdir);
		while ((e = readdir(d)) != NULL) {
			if (strncmp(e->d_name, "shard-0-", 8) != 0)
				continue;
			snprintf(manifest, sizeof manifest, "%s/%s/MANIFEST", qdir, e->d_name);
			CHECK(access(manifest, F_OK) == 0, "no MANIFEST in %s/%s", qdir,
			      e->d_name);
			printf("quarantined: %s\n", e->d_name);
			found++;
		}
		closedir(d);
		CHECK(found == 1, "%u quarantined shard-0 replicas on node 2, not 1", found);
	}

	/* 6. A damaged follower, found by a stale read of its own replica. */
	leader = agreed_leader();
	follower = leader == 2 ? 0 : 2;
	done = lines_with(follower, "repair from a peer done");
	node_down(follower);
	damage_oldest_table(follower);
	node_up(follower);
	own_copy(follower, KEYS + MORE - 1); /* caught up: a stale read may lag */
	await_sleep(follower);
	/* A replica leaves its core's tick list at the first tick after its
	 * group fell asleep (heartbeat interval, 50 ms): give it a few, so
	 * that no tick of its own finds the damage. */
	usleep(300 * 1000);
	printf("node %u's group sleeps\n", follower + 1);
	lost = read_through(follower, KEYS + MORE, true);
	printf("stale reads on node %u: %u answered DATA_LOSS\n", follower + 1, lost);
	CHECK(lost > 0, "no stale read met the damaged block");
	await_lines(follower, "repair from a peer done", done + 1);
	CHECK(lines_with(follower, "repair from a peer started") == done + 1,
	      "node %u should have started one repair", follower + 1);
	write_range(KEYS + MORE, MORE);
	check_every_copy(KEYS + 2 * MORE, follower);

	/* 7. */
	{
		const uint64_t groups[] = { 0, 7 };

		leader = agreed_leader();
		follower = (leader + 1) % NODES;
		request_as(leader, follower, port, groups, 2);
		await_lines(follower, "ignored: this replica does not lead", 1);
		await_lines(follower, "refused: not a member of it here", 1);
		CHECK(lines_with(follower, "receiving a snapshot") ==
		      lines_with(follower, "snapshot installed"), "a stream started");
		write_range(KEYS + 2 * MORE, 1);
		printf("requests to a follower ignored, for a group outside the map refused\n");
	}

	/* 8. */
	{
		unsigned damaged, healthy, streaming = 0;
		long deadline;

		for (unsigned i = 0; i < NODES; i++)
			node_down(i);
		snapshot_rate = "64KiB";
		damaged = 0;
		done = lines_with(damaged, "repair from a peer done");
		streaming = lines_with(damaged, "receiving a snapshot");
		damage_oldest_table(damaged);
		for (unsigned i = 0; i < NODES; i++)
			node_up(i);
		leader = agreed_leader();
		own_copy(damaged, KEYS + 2 * MORE);
		CHECK(read_through(damaged, KEYS + 2 * MORE, true) > 0,
		      "no stale read met the damage");
		await_lines(damaged, "repair from a peer started", done + 1);
		deadline = ms_now() + WAIT_MS;
		while ((leader = agreed_leader()) == damaged) {
			CHECK(ms_now() < deadline, "the damaged node keeps leading");
			usleep(50000);
		}
		healthy = 3 - leader - damaged;
		/* B receives from the leader: kill the leader mid-stream. */
		deadline = ms_now() + WAIT_MS;
		while (lines_with(damaged, "receiving a snapshot") <= streaming) {
			CHECK(ms_now() < deadline, "node %u never received a stream", damaged + 1);
			usleep(20000);
		}
		CHECK(lines_with(damaged, "repair from a peer done") == done,
		      "the repair finished before the leader could be killed");
		node_kill(leader);
		printf("node %u (leader) killed while streaming to damaged node %u\n",
		       leader + 1, damaged + 1);
		deadline = ms_now() + WAIT_MS;
		for (;;) {
			bool leads = false, stopped = false;

			if (replica_of(healthy, &leads, &stopped) && leads)
				break;
			CHECK(ms_now() < deadline, "node %u was not elected: the damaged node "
			      "withholds its vote", healthy + 1);
			usleep(50000);
		}
		printf("node %u elected with the damaged node's vote\n", healthy + 1);
		await_lines(damaged, "repair from a peer done", done + 1);
		node_up(leader);
		write_range(KEYS + 2 * MORE + 1, MORE);
		check_every_copy(KEYS + 3 * MORE + 1, damaged);
	}

	for (unsigned i = 0; i < NODES; i++)
		node_down(i);
	passed = true;
	harness_cleanup();
	printf("whole test: %ld ms; 1 passed, 0 failed\n", ms_now() - t0);
	return 0;
}
