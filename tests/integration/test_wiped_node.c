/*
 * A wiped node with real processes (issue 12; docs/cluster/repair-design.md,
 * "Step 3: a wiped node"): three ringkvd on 127.0.44.21-23 (peer port in
 * 44000-44899), two cores, four shards of three replicas, the default
 * --initial-cluster-state (new).
 *   A. keys are written and acknowledged; node 3 is killed (-9) between
 *      writes, its data dir removed whole, and it is started again with the
 *      same flags while writes go on (each acknowledged within 10 s through
 *      every node in turn): each of its four replicas asks its group, finds
 *      a history and comes back as incarnation 1 (its log says so for every
 *      shard), caught up; the peers log that node 3 runs on another data
 *      dir; no amnesia marker is left;
 *   B. wiped again, but with node 2 down when it starts: with one of its
 *      two peers silent it cannot know enough, so it takes no part
 *      (`cluster status` shows its replicas "asking" for 5 s) and node 1
 *      leads nothing alone after its quorum check; node 2 back, every replica rejoins as
 *      incarnation 2;
 *   C. every acknowledged key reads back linearizably through every node,
 *      and from node 3's own replicas (stale reads); restarted, node 3's
 *      replicas are members as they are (no asking, no amnesia).
 * Writes are interleaved with each step (one thread: the harness's clients
 * are not shared). Every wait has a deadline; every process is stopped.
 *
 * usage: test_wiped_node RINGKVD
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster_keys.h"
#include "harness.h"
#include "tools/libringkv.h"

#define NODES 3
#define SHARDS 4
#define VICTIM 2 /* node 3 */
#define OTHER 1  /* node 2 */
#define MAX_KEYS 6000
#define READ_LIMIT_MS 10000
#define REJOIN_LIMIT_MS 40000
#define VALUE_MAX 300

static struct cluster cluster;
static bool acked[MAX_KEYS];
static unsigned next_key;
static char value_pad[201];

static size_t key_of(char *buf, size_t len, unsigned k)
{
	return (size_t)snprintf(buf, len, "wiped:%05u", k);
}

static size_t value_of(char *buf, size_t len, unsigned k)
{
	return (size_t)snprintf(buf, len, "%u-%s", k, value_pad);
}

/* `count` new keys through the nodes in `mask` in turn; each must be
 * acknowledged within 10 s. */
static void write_keys(unsigned count, unsigned mask, const char *when)
{
	unsigned via = 0;

	for (unsigned n = 0; n < count; n++) {
		unsigned k = next_key++;
		char key[32], value[300];
		size_t kl = key_of(key, sizeof key, k), vl = value_of(value, sizeof value, k);
		int rv;

		CHECK(k < MAX_KEYS, "past %u keys", MAX_KEYS);
		while (!(mask & 1u << via))
			via = (via + 1) % NODES;
		rv = cluster_keys_put(&cluster, key, kl, value, vl, via, 10000);
		acked[k] = rv == 1;
		CHECK(rv != -1, "%s: key %u not acknowledged within 10 s", when, k);
		via = (via + 1) % NODES;
	}
}

/* Node i's role for each shard in its own cluster status ("" when it
 * holds no replica of it). */
static void roles_of(unsigned i, char role[SHARDS][16])
{
	cluster_node_replicas(&cluster, i, SHARDS, role, NULL);
}

static unsigned log_count(unsigned i, const char *what)
{
	return cluster_log_count(&cluster, i, what);
}

static bool exists(const char *dir, const char *name)
{
	char path[700];
	struct stat sb;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return stat(path, &sb) == 0;
}

static void wipe(unsigned i)
{
	char cmd[700];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", cluster.nodes[i].dir);
	CHECK(system(cmd) == 0, "wipe node %u", i + 1);
	printf("node %u: data dir %s removed\n", i + 1, cluster.nodes[i].dir);
}

/* Writes go on until every replica of node i is a member again (neither
 * asking nor amnesiac) and its log says `rejoined` once per shard. */
static void await_rejoin(unsigned i, const char *rejoined, unsigned before, const char *when)
{
	long deadline = harness_now_ms() + REJOIN_LIMIT_MS;
	char role[SHARDS][16];

	for (;;) {
		bool members = true;

		roles_of(i, role);
		for (unsigned s = 0; s < SHARDS; s++)
			members &= role[s][0] && strcmp(role[s], "amnesiac") &&
				   strcmp(role[s], "asking");
		if (members && log_count(i, rejoined) >= before + SHARDS)
			break;
		CHECK(harness_now_ms() < deadline, "%s: node %u not back after %d ms (shard 0 "
		      "'%s', %u lines '%s')", when, i + 1, REJOIN_LIMIT_MS, role[0],
		      log_count(i, rejoined) - before, rejoined);
		write_keys(8, 7, when);
		harness_sleep_ms(100);
	}
	printf("%s: node %u's %u replicas rejoined\n", when, i + 1, SHARDS);
}

/* Every acknowledged key reads back from node i's own replicas (stale
 * reads), each within READ_LIMIT_MS. */
static void own_replicas_have_all(unsigned i)
{
	cluster_keys_check_acked_own(&cluster, i, acked, next_key, key_of, value_of,
				     READ_LIMIT_MS);
}

int main(int argc, char **argv)
{
	struct rkv_cluster_map *map;
	char role[SHARDS][16], shards[8];
	unsigned before;

	if (argc != 2) {
		fprintf(stderr, "usage: %s RINGKVD\n", argv[0]);
		return 2;
	}
	memset(value_pad, 'w', 200);
	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(shards, sizeof shards, "%u", SHARDS);
	cluster_init(&cluster, argv[1], NODES, "127.0.44.2", 44000 + (unsigned)getpid() % 900);
	cluster_keep_logs(&cluster, getenv("WIPED_LOGS"));
	cluster.args = (const char *const[]){ "--cores", "2", "--shards", shards, "--replicas",
					      "3", "--election-timeout", "300ms",
					      "--memtable-size", "64KiB", "--log-level", "info",
					      NULL };
	cluster_start_all(&cluster);
	map = cluster_wait_leaders(&cluster, 0, 20000);
	CHECK(map != NULL, "no leaders within 20 s");
	rkv_cluster_map_free(map);

	/* A. Wiped under writes, every peer up. */
	write_keys(300, 7, "before");
	cluster_kill(&cluster, VICTIM);
	write_keys(100, 3, "node 3 down");
	wipe(VICTIM);
	write_keys(100, 3, "node 3 wiped");
	cluster_start(&cluster, VICTIM);
	await_rejoin(VICTIM, "rejoined its group as incarnation 1 ", 0, "A");
	CHECK(log_count(VICTIM, "rejoins as incarnation 1 ") >= SHARDS,
	      "node 3 should log that each replica rejoins as incarnation 1");
	CHECK(log_count(0, "node 3 runs on another data dir") >= 1,
	      "node 1 should log node 3's new data dir");
	for (unsigned s = 0; s < SHARDS; s++) {
		char name[32];

		snprintf(name, sizeof name, "shard-%u.amnesiac", s);
		CHECK(!exists(cluster.nodes[VICTIM].dir, name), "%s stayed", name);
	}
	write_keys(100, 7, "rejoined");
	own_replicas_have_all(VICTIM);
	printf("A: node 3 holds every acknowledged key in its own replicas\n");

	/* B. Wiped again; node 2 down when it starts: it asks, it waits. */
	cluster_kill(&cluster, VICTIM);
	write_keys(50, 3, "node 3 down again");
	wipe(VICTIM);
	cluster_stop(&cluster, OTHER, 10000);
	cluster_start(&cluster, VICTIM);
	/* 5 s; node 1 may lead for a while after node 2 left (until its
	 * quorum check: node 2 silent, node 3 answers nothing), then never
	 * again: it is elected by no one. */
	for (long start = harness_now_ms(), now = start; now < start + 5000;
	     now = harness_now_ms()) {
		roles_of(VICTIM, role);
		for (unsigned s = 0; s < SHARDS; s++)
			CHECK(!strcmp(role[s], "asking"), "node 3 shard %u shows '%s' with node 2 "
			      "down", s, role[s]);
		roles_of(0, role);
		for (unsigned s = 0; s < SHARDS && now > start + 2000; s++)
			CHECK(strcmp(role[s], "leader"), "node 1 leads shard %u alone", s);
		harness_sleep_ms(200);
	}
	printf("B: with node 2 down, node 3's replicas ask and take no part\n");
	before = log_count(VICTIM, "rejoined its group as incarnation 2 ");
	cluster_start(&cluster, OTHER);
	await_rejoin(VICTIM, "rejoined its group as incarnation 2 ", before, "B");

	/* C. Every acknowledged key, everywhere; a plain restart. */
	write_keys(50, 7, "rejoined again");
	cluster_keys_check_acked(&cluster, acked, next_key, key_of, value_of, READ_LIMIT_MS);
	own_replicas_have_all(VICTIM);
	cluster_stop(&cluster, VICTIM, 10000);
	before = log_count(VICTIM, "asks 2 other members");
	cluster_start(&cluster, VICTIM);
	roles_of(VICTIM, role);
	for (unsigned s = 0; s < SHARDS; s++)
		CHECK(role[s][0] && strcmp(role[s], "amnesiac") && strcmp(role[s], "asking"),
		      "restarted, node 3 shard %u shows '%s'", s, role[s]);
	CHECK(log_count(VICTIM, "asks 2 other members") == before,
	      "restarted with its data, node 3 should not ask");
	write_keys(20, 7, "restarted");
	printf("%u keys written, every acknowledged one read back (every node, and node 3's "
	       "own replicas)\n", next_key);
	cluster_stop_all(&cluster, 10000);
	harness_cleanup();
	printf("PASS\n");
	return 0;
}
