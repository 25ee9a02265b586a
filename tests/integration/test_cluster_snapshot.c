/*
 * Snapshot catch-up with three real ringkvd processes on 127.0.3.11-13
 * (ports 23000-23999), small memtables and --snapshot-lag 64 so that the
 * leaders compact their logs past a node that is down:
 *   A. node 3 is killed, keys are written until the leaders compacted past
 *      it, it restarts and must install a snapshot (its log says so);
 *   B. node 3 is killed, its data dir wiped, it restarts with the same
 *      flags plus --initial-cluster-state existing (it forgot its votes:
 *      it must not vote before it caught up) and must rejoin by snapshot
 *      (since session 10 as a new incarnation of each replica: its groups
 *      tell it that it was a member, cluster/replica_wiped.c);
 *   C. node 3 is killed with -9 while receiving a snapshot and must restart
 *      cleanly and install one.
 * After A and B every acknowledged key is read back with node 3 holding the
 * only up-to-date log of the survivors: node 1 is killed, fresh keys are
 * written (to nodes 2 and 3), node 2 is killed and node 1 restarted, so
 * every shard with a fresh key is led by node 3, and every key of the test
 * must read back its acknowledged value.
 *
 * usage: test_cluster_snapshot RINGKVD
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "tools/libringkv.h"

#define NODES 3
#define MAX_KEYS 4000
#define LIMIT_MS 15000

static const char *binary;
static const char *base_dir;
static char initial[256];
static struct server nodes[NODES];
static bool up[NODES];
static struct rkv_client *clients[NODES];
static bool acked[MAX_KEYS];
static char logs[NODES][512];
static unsigned answered_by[NODES];

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Node 3 after its data dir was wiped: it joins a running cluster. */
static bool joining[NODES];

static void start_node(unsigned i)
{
	char dir[512], id[8], peer[64];
	const char *args[32];
	unsigned n = 0;

	snprintf(dir, sizeof dir, "%s/node%u", base_dir, i + 1);
	snprintf(id, sizeof id, "%u", i + 1);
	snprintf(peer, sizeof peer, "127.0.3.1%u", i + 1);
	args[n++] = "--node-id";
	args[n++] = id;
	args[n++] = "--initial-cluster";
	args[n++] = initial;
	args[n++] = "--cores";
	args[n++] = "2";
	args[n++] = "--shards";
	args[n++] = "4";
	args[n++] = "--data-dir";
	args[n++] = dir;
	args[n++] = "--election-timeout";
	args[n++] = "300ms";
	args[n++] = "--memtable-size";
	args[n++] = "64KiB";
	args[n++] = "--snapshot-lag";
	args[n++] = "64";
	args[n++] = "--snapshot-rate";
	args[n++] = "4MiB";
	args[n++] = "--log-level";
	args[n++] = "info";
	if (joining[i]) {
		args[n++] = "--initial-cluster-state";
		args[n++] = "existing";
	}
	args[n] = NULL;
	nodes[i].stderr_path = logs[i];
	CHECK(server_start(&nodes[i], binary, args) == 0, "node %u did not start", i + 1);
	up[i] = true;
}

static void drop_client(unsigned i)
{
	if (clients[i]) {
		rkv_close(clients[i]);
		clients[i] = NULL;
	}
}

static void kill_node(unsigned i)
{
	drop_client(i);
	CHECK(server_stop(&nodes[i], SIGKILL, 10000) != -1, "kill node %u", i + 1);
	up[i] = false;
}

static struct rkv_client *client_of(unsigned i)
{
	char err[256];

	if (!up[i])
		return NULL;
	if (!clients[i]) {
		if (rkv_connect_timeout(nodes[i].addr, 2000, &clients[i], err, sizeof err) != 0) {
			clients[i] = NULL;
			return NULL;
		}
		rkv_set_timeout(clients[i], 3000);
	}
	return clients[i];
}

static size_t key_of(char *buf, size_t len, unsigned k)
{
	return (size_t)snprintf(buf, len, "key:%05u", k);
}

/* ~600 bytes, so a few hundred keys fill several 64 KiB memtables. */
static size_t value_of(char *buf, size_t len, unsigned k)
{
	size_t n = (size_t)snprintf(buf, len, "value-%u-", k);

	while (n < 600 && n + 1 < len) {
		buf[n] = (char)('a' + (k + n) % 26);
		n++;
	}
	return n;
}

/* 1 acknowledged, 0 unknown, -1 no leader this time. */
static int put_once(unsigned k)
{
	char key[32], value[700];
	size_t kl = key_of(key, sizeof key, k), vl = value_of(value, sizeof value, k);

	for (unsigned i = 0; i < NODES; i++) {
		struct rkv_client *c = client_of(i);
		int rv;

		if (!c)
			continue;
		rv = rkv_put(c, key, kl, value, vl);
		if (rv == RKV_STATUS_OK)
			return 1;
		if (rv == RKV_STATUS_NOT_LEADER || rv == RKV_STATUS_UNAVAILABLE)
			continue;
		if (rv < 0)
			drop_client(i);
		return 0;
	}
	return -1;
}

static void write_keys(unsigned first, unsigned count)
{
	unsigned ok = 0;

	for (unsigned k = first; k < first + count; k++) {
		long deadline = now_ms() + LIMIT_MS;

		while (now_ms() < deadline) {
			int rv = put_once(k);

			if (rv == 1) {
				acked[k] = true;
				ok++;
				break;
			}
			if (rv == 0)
				break;
			usleep(10000);
		}
	}
	printf("keys %u..%u: %u acknowledged\n", first, first + count - 1, ok);
	CHECK(ok + 5 >= count, "writes were not acknowledged");
}

static void check_key(unsigned k)
{
	char key[32], value[700];
	size_t kl = key_of(key, sizeof key, k), vl = value_of(value, sizeof value, k);
	long deadline = now_ms() + LIMIT_MS;

	while (now_ms() < deadline) {
		for (unsigned i = 0; i < NODES; i++) {
			struct rkv_client *c = client_of(i);
			void *got;
			size_t gl;
			int rv;

			if (!c)
				continue;
			rv = rkv_get(c, key, kl, &got, &gl);
			if (rv == RKV_STATUS_OK) {
				CHECK(gl == vl && memcmp(got, value, vl) == 0,
				      "key %u reads a wrong value through node %u", k, i + 1);
				free(got);
				answered_by[i]++;
				return;
			}
			CHECK(rv != RKV_STATUS_NOT_FOUND,
			      "acknowledged key %u is lost (read through node %u)", k, i + 1);
			if (rv < 0)
				drop_client(i);
		}
		usleep(10000);
	}
	CHECK(false, "acknowledged key %u: no node served it within %d ms", k, LIMIT_MS);
}

/* Node 3's own copy of key k (a stale read: its replica's applied state,
 * never a forward to a leader), given time to catch up. */
static unsigned node3_copy; /* keys node 3's own copy holds, this check */

static void check_node3_copy(unsigned k)
{
	char key[32], value[700];
	size_t kl = key_of(key, sizeof key, k), vl = value_of(value, sizeof value, k);
	long deadline = now_ms() + LIMIT_MS;
	int rv = -1;

	while (now_ms() < deadline) {
		struct rkv_client *c = client_of(2);
		void *got = NULL;
		size_t gl = 0;

		if (c) {
			rv = rkv_get_stale(c, key, kl, &got, &gl);
			if (rv == RKV_STATUS_OK && gl == vl && memcmp(got, value, vl) == 0) {
				free(got);
				node3_copy++;
				return;
			}
			free(got);
			if (rv < 0)
				drop_client(2);
		}
		usleep(10000);
	}
	CHECK(false, "node 3's own copy of acknowledged key %u is not right within %d ms "
	      "(last answer %d)", k, LIMIT_MS, rv);
}

static void check_all(const char *what)
{
	unsigned n = 0;

	memset(answered_by, 0, sizeof answered_by);
	node3_copy = 0;
	for (unsigned k = 0; k < MAX_KEYS; k++)
		if (acked[k]) {
			check_key(k);
			check_node3_copy(k);
			n++;
		}
	printf("%s: %u acknowledged keys read back (node 1 answered %u); node 3's own "
	       "copy holds %u of them\n", what, n, answered_by[0], node3_copy);
	CHECK(node3_copy == n, "node 3's copy misses keys");
}

/* Lines of node i's log containing `what`. */
static unsigned log_count(unsigned i, const char *what)
{
	FILE *f = fopen(logs[i], "r");
	char line[1024];
	unsigned n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (strstr(line, what))
			n++;
	fclose(f);
	return n;
}

static void wait_log(unsigned i, const char *what, unsigned at_least)
{
	long deadline = now_ms() + 60000;

	while (log_count(i, what) < at_least) {
		CHECK(now_ms() < deadline, "node %u never logged \"%s\" (%u times)", i + 1, what,
		      at_least);
		usleep(50000);
	}
}

/* Every replica of node i that logged "joining" since its last start has
 * logged "caught up" after it (as a joining replica, or as an amnesiac one
 * that rejoined as a new incarnation). */
static bool all_joined(unsigned i)
{
	FILE *f = fopen(logs[i], "r");
	long line_no = 0, start = 0, join_at[8] = { 0 }, caught[8] = { 0 };
	char line[1024];
	bool ok = true;

	if (!f)
		return false;
	while (fgets(line, sizeof line, f)) {
		const char *p = strstr(line, "replica ");
		unsigned r;

		line_no++;
		if (strstr(line, " of cluster "))
			start = line_no;
		if (!p || sscanf(p, "replica %u:", &r) != 1 || r >= 8)
			continue;
		if (strstr(p, ": joining"))
			join_at[r] = line_no;
		if (strstr(p, ": caught up") || strstr(p, " and caught up"))
			caught[r] = line_no;
	}
	fclose(f);
	for (unsigned r = 0; r < 8; r++)
		if (join_at[r] > start && caught[r] < join_at[r])
			ok = false;
	return ok;
}

static void wait_joined(unsigned i)
{
	long deadline = now_ms() + 60000;

	while (!all_joined(i)) {
		CHECK(now_ms() < deadline, "node %u: a replica never caught up after joining", i + 1);
		usleep(50000);
	}
}

/* Node 3 must hold every key: see the file comment. */
static void verify_node3(unsigned fresh)
{
	usleep(2000 * 1000); /* node 3 catches up by log after its install */
	kill_node(0);
	write_keys(fresh, 100);
	kill_node(1);
	start_node(0);
	check_all("node 3 and node 1");
	start_node(1);
	usleep(2000 * 1000);
}

static unsigned dir_entries(const char *path)
{
	char cmd[700], out[64];
	FILE *p;
	unsigned n = 0;

	snprintf(cmd, sizeof cmd, "ls -A '%s' 2>/dev/null | wc -l", path);
	p = popen(cmd, "r");
	if (p && fgets(out, sizeof out, p))
		n = (unsigned)atoi(out);
	if (p)
		pclose(p);
	return n;
}

static bool passed; /* set just before the clean end */

/* SNAPSHOT_TEST_LOGS=DIR keeps the nodes' logs there. A failed run keeps
 * them anyway (in TMPDIR) and shows the end of node 3's log, so a failure
 * in CI can be read afterwards. */
static void keep_logs(void)
{
	const char *to = getenv("SNAPSHOT_TEST_LOGS");
	char fallback[256], cmd[1200];

	if (!to && passed)
		return;
	if (!to) {
		snprintf(fallback, sizeof fallback, "%s/ringkv-snapshot-failed-%d",
			 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
		to = fallback;
	}
	snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s'/node*.log '%s'/", to, base_dir, to);
	if (system(cmd) != 0) {
		fprintf(stderr, "could not keep the logs in %s\n", to);
		return;
	}
	fprintf(stderr, "node logs kept in %s\n", to);
	if (!passed) {
		snprintf(cmd, sizeof cmd, "tail -n 60 '%s/node3.log' >&2", to);
		if (system(cmd) != 0)
			fprintf(stderr, "(no node 3 log)\n");
	}
}

int main(int argc, char **argv)
{
	unsigned port = 23000 + (unsigned)getpid() % 1000;
	const char *installed = "snapshot installed";
	char cmd[600];

	CHECK(argc == 2, "usage: %s RINGKVD", argv[0]);
	binary = argv[1];
	base_dir = harness_tmpdir();
	CHECK(base_dir, "mkdtemp");
	harness_at_cleanup(keep_logs);
	for (unsigned i = 0; i < NODES; i++)
		snprintf(logs[i], sizeof logs[i], "%s/node%u.log", base_dir, i + 1);
	snprintf(initial, sizeof initial,
		 "1=127.0.3.11:%u,2=127.0.3.12:%u,3=127.0.3.13:%u", port, port, port);
	for (unsigned i = 0; i < NODES; i++)
		start_node(i);
	write_keys(0, 200);

	/* A: node 3 down while the leaders flush and compact past it. */
	kill_node(2);
	write_keys(200, 1200);
	start_node(2);
	wait_log(2, installed, 1);
	printf("A: node 3 installed %u snapshot(s) after a restart\n", log_count(2, installed));
	verify_node3(1400);

	/* B: node 3's data dir wiped; same flags. */
	kill_node(2);
	snprintf(cmd, sizeof cmd, "rm -rf '%s/node3'", base_dir);
	CHECK(system(cmd) == 0, "wipe node 3");
	write_keys(1500, 200);
	joining[2] = true;
	{
		unsigned before = log_count(2, installed);

		start_node(2);
		wait_log(2, installed, before + 1);
		CHECK(log_count(2, ": joining") >= 4, "node 3's replicas should be joining");
		/* keys for every shard: a joining replica needs an APPEND */
		write_keys(1700, 40);
		wait_joined(2);
	}
	printf("B: wiped node 3 rejoined by snapshot\n");
	verify_node3(1740);

	/* C: kill -9 while a snapshot is being received; a clean restart. */
	kill_node(2);
	snprintf(cmd, sizeof cmd, "rm -rf '%s/node3'", base_dir);
	CHECK(system(cmd) == 0, "wipe node 3");
	{
		unsigned receiving = log_count(2, "receiving a snapshot");
		unsigned before = log_count(2, installed);
		char dir[600];

		start_node(2);
		wait_log(2, "receiving a snapshot", receiving + 1);
		kill_node(2);
		snprintf(dir, sizeof dir, "%s/node3", base_dir);
		printf("C: node 3 killed while receiving (%u entries in its data dir)\n",
		       dir_entries(dir));
		start_node(2);
		wait_log(2, installed, before + 1);
		write_keys(1840, 40);
		wait_joined(2);
		printf("C: node 3 restarted and installed a snapshot\n");
	}
	verify_node3(1880);

	for (unsigned i = 0; i < NODES; i++) {
		drop_client(i);
		if (up[i]) {
			int status = server_stop(&nodes[i], SIGTERM, 15000);

			CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "node %u should stop cleanly on SIGTERM (status %d)", i + 1, status);
		}
	}
	passed = true;
	harness_cleanup();
	printf("1 passed, 0 failed\n");
	return 0;
}
