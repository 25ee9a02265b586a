/*
 * An amnesiac replica with real processes (issue 14, a damaged NEWEST core
 * log segment; docs/DAMAGED-DATADIR.md, "Amnesiac replicas"): three
 * ringkvd on 127.0.15.21-23 (peer port in 35000-35999), one core, one shard
 * of three replicas (R = node count: no spare node to move it to).
 *   1. keys of 600 bytes are written and acknowledged;
 *   2. a follower of the shard is killed (-9), the first record header of
 *      its newest core log segment is flipped, and it is restarted: it
 *      starts (it used to be refused), its log names the file and the
 *      offset, and it rejoins its group as a new incarnation of its
 *      replica while the cluster keeps acknowledging writes (each within
 *      10 s, through every node in turn); once rejoined its replica holds
 *      every acknowledged key (stale reads from its own state);
 *   3. the same damage again, but with the other follower stopped: no
 *      leader can exist, so it stays amnesiac (`ringkv cluster status`
 *      shows it) for 3 s, answers no stale read, and its vote does not
 *      elect the remaining node (its old identity takes no part, its new
 *      one is no member); the other follower back, it rejoins again
 *      (incarnation 2);
 *   4. every acknowledged key reads back linearizably through every node
 *      and from the victim's own replica; restarted, it is no longer
 *      amnesiac.
 * Every wait has a deadline; every process is stopped (harness_cleanup).
 *
 * usage: test_amnesia RINGKVD
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster_keys.h"
#include "harness.h"
#include "tools/libringkv.h"

#define NODES 3
#define MAX_KEYS 4000
#define READ_LIMIT_MS 10000
#define REJOIN_LIMIT_MS 30000
#define VALUE_MAX 700

static struct cluster cluster;
static bool acked[MAX_KEYS];
static unsigned next_key;
static char value_pad[601];

static size_t key_of(char *buf, size_t len, unsigned k)
{
	return (size_t)snprintf(buf, len, "amnesia:%05u", k);
}

static size_t value_of(char *buf, size_t len, unsigned k)
{
	return (size_t)snprintf(buf, len, "%u-%s", k, value_pad);
}

/* `count` new keys through every node in turn; each must be acknowledged
 * within 10 s (the cluster keeps serving). */
static void write_keys(unsigned count, const char *when)
{
	for (unsigned n = 0; n < count; n++) {
		unsigned k = next_key++;
		char key[32], value[700];
		size_t kl = key_of(key, sizeof key, k), vl = value_of(value, sizeof value, k);
		int rv;

		CHECK(k < MAX_KEYS, "past %u keys", MAX_KEYS);
		rv = cluster_keys_put(&cluster, key, kl, value, vl, k % NODES, 10000);
		acked[k] = rv == 1;
		CHECK(rv != -1, "%s: key %u not acknowledged within 10 s", when, k);
	}
}

/* A new key written through node i alone: acknowledged within 5 s (an
 * amnesiac node forwards the shard's writes to the leader it heard of). */
static void write_through(unsigned i)
{
	unsigned k = next_key++;
	char key[32], value[700];
	size_t kl = key_of(key, sizeof key, k), vl = value_of(value, sizeof value, k);
	long deadline = harness_now_ms() + 5000;
	int rv = -1;

	CHECK(k < MAX_KEYS, "past %u keys", MAX_KEYS);
	while (harness_now_ms() < deadline) {
		struct rkv_client *c = cluster_client(&cluster, i);

		rv = c ? rkv_put(c, key, kl, value, vl) : -1;
		if (rv == RKV_STATUS_OK)
			break;
		if (rv != RKV_STATUS_NOT_LEADER && rv != RKV_STATUS_UNAVAILABLE)
			cluster_drop_client(&cluster, i);
		harness_sleep_ms(50);
	}
	acked[k] = rv == RKV_STATUS_OK;
	CHECK(rv == RKV_STATUS_OK, "node %u: a write through it answers %d", i + 1, rv);
}

/* Node i's role for shard 0 in its own cluster status, "" when it holds
 * no replica. */
static void role_of(unsigned i, char *role, size_t len)
{
	char roles[1][16];

	cluster_node_replicas(&cluster, i, 1, roles, NULL);
	snprintf(role, len, "%s", roles[0]);
}

/* Flips 16 bytes of the first record of node i's newest core log segment
 * that has one (a segment just begun may have none yet: then the damage is
 * in the one before it, and no segment with records follows it). */
static void damage_newest_segment(unsigned i)
{
	char dir[600], names[2][64] = { "", "" }, path[800];
	struct dirent *e;
	unsigned char b[16], zero[16] = { 0 };
	DIR *d;
	int fd = -1;

	snprintf(dir, sizeof dir, "%s/core-0", cluster.nodes[i].dir);
	d = opendir(dir);
	CHECK(d != NULL, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "log-", 4) || strlen(e->d_name) >= sizeof names[0])
			continue;
		if (strcmp(e->d_name, names[0]) > 0) {
			strcpy(names[1], names[0]);
			strcpy(names[0], e->d_name);
		} else if (strcmp(e->d_name, names[1]) > 0) {
			strcpy(names[1], e->d_name);
		}
	}
	closedir(d);
	for (unsigned k = 0; k < 2 && names[k][0]; k++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[k]);
		fd = open(path, O_RDWR);
		CHECK(fd >= 0, "%s: %s", path, strerror(errno));
		CHECK(pread(fd, b, sizeof b, 4096) == (ssize_t)sizeof b, "%s: short", path);
		if (memcmp(b, zero, sizeof b))
			break;
		close(fd);
		fd = -1;
	}
	CHECK(fd >= 0, "no segment with records in %s", dir);
	for (size_t k = 0; k < sizeof b; k++)
		b[k] ^= 0xff;
	CHECK(pwrite(fd, b, sizeof b, 4096) == (ssize_t)sizeof b, "%s: write", path);
	close(fd);
	printf("node %u: %s damaged at offset 4096\n", i + 1, path);
}

static bool file_has(const char *path, const char *what)
{
	char line[4096];
	bool found = false;
	FILE *f = fopen(path, "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof line, f))
		found = strstr(line, what) != NULL;
	fclose(f);
	return found;
}

static bool exists(const char *dir, const char *name)
{
	char path[700];
	struct stat sb;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return stat(path, &sb) == 0;
}

/* Node i answers no stale read of an acknowledged key from its replica. */
static void no_stale_read(unsigned i)
{
	struct rkv_client *c = cluster_client(&cluster, i);
	char key[32], value[700];
	void *got = NULL;
	size_t got_len = 0;
	unsigned k = 0;
	int rv;

	while (!acked[k])
		k++;
	key_of(key, sizeof key, k);
	value_of(value, sizeof value, k);
	CHECK(c != NULL, "node %u does not answer", i + 1);
	rv = rkv_get_stale(c, key, strlen(key), &got, &got_len);
	CHECK(rv != RKV_STATUS_OK, "node %u served a stale read from its amnesiac replica", i + 1);
	free(got);
	printf("node %u: stale read refused (status %d)\n", i + 1, rv);
}

/* Every acknowledged key reads back from node i's own replica (stale
 * reads), each within READ_LIMIT_MS. */
static void own_replica_has_all(unsigned i)
{
	cluster_keys_check_acked_own(&cluster, i, acked, next_key, key_of, value_of,
				     READ_LIMIT_MS);
}

/* Writes go on until node i's replica is no longer amnesiac. */
static void await_rejoin(unsigned i, const char *when)
{
	long deadline = harness_now_ms() + REJOIN_LIMIT_MS;
	char role[16];

	for (;;) {
		role_of(i, role, sizeof role);
		if (role[0] && strcmp(role, "amnesiac"))
			break;
		CHECK(harness_now_ms() < deadline, "%s: node %u still '%s' after %d ms", when, i + 1,
		      role, REJOIN_LIMIT_MS);
		write_keys(5, when);
		harness_sleep_ms(100);
	}
	printf("%s: node %u rejoined (%s)\n", when, i + 1, role);
}

int main(int argc, char **argv)
{
	struct rkv_cluster_map *map;
	char role[16];
	unsigned victim = NODES, other = NODES, leader = NODES;

	if (argc != 2) {
		fprintf(stderr, "usage: %s RINGKVD\n", argv[0]);
		return 2;
	}
	memset(value_pad, 'a', 600);
	setvbuf(stdout, NULL, _IOLBF, 0);
	cluster_init(&cluster, argv[1], NODES, "127.0.15.2", 35000 + (unsigned)getpid() % 900);
	cluster_keep_logs(&cluster, getenv("AMNESIA_LOGS"));
	cluster.args = (const char *const[]){ "--cores", "1", "--shards", "1", "--replicas", "3",
					      "--election-timeout", "300ms",
					      "--log-segment-size", "64KiB", "--log-level", "info",
					      NULL };
	cluster_start_all(&cluster);
	map = cluster_wait_leaders(&cluster, 0, 20000);
	CHECK(map != NULL, "no leader within 20 s");
	leader = (unsigned)map->shards[0].leader - 1;
	for (unsigned i = 0; i < NODES; i++)
		if (i != leader)
			*(victim == NODES ? &victim : &other) = i;
	rkv_cluster_map_free(map);
	printf("victim: node %u\n", victim + 1);

	/* 1. Acknowledged data, several segments. */
	write_keys(300, "before");
	/* 2. kill -9, damage, restart: it rejoins under writes. */
	cluster_kill(&cluster, victim);
	damage_newest_segment(victim);
	cluster_start(&cluster, victim);
	write_through(victim);
	await_rejoin(victim, "first damage");
	CHECK(file_has(cluster.nodes[victim].log, "amnesiac") &&
	      file_has(cluster.nodes[victim].log, "offset 4096"),
	      "the log does not name the damage (%s)", cluster.nodes[victim].log);
	CHECK(!exists(cluster.nodes[victim].dir, "shard-0.amnesiac"), "the marker stayed");
	write_keys(50, "rejoined");
	own_replica_has_all(victim);
	printf("node %u: every acknowledged key in its own replica\n", victim + 1);

	/* 3. Again, with no majority without it: it stays amnesiac. */
	cluster_kill(&cluster, victim);
	damage_newest_segment(victim);
	cluster_stop(&cluster, other, 10000);
	cluster_start(&cluster, victim);
	for (long until = harness_now_ms() + 3000; harness_now_ms() < until;) {
		role_of(victim, role, sizeof role);
		CHECK(!strcmp(role, "amnesiac"), "node %u shows '%s'", victim + 1, role);
		harness_sleep_ms(200);
	}
	role_of(leader, role, sizeof role);
	CHECK(strcmp(role, "leader"), "node %u leads with only an amnesiac peer", leader + 1);
	CHECK(exists(cluster.nodes[victim].dir, "shard-0.amnesiac"), "no marker");
	no_stale_read(victim);
	cluster_start(&cluster, other);
	await_rejoin(victim, "second damage");
	write_keys(50, "rejoined again");

	/* 4. Every acknowledged key, everywhere. */
	cluster_keys_check_acked(&cluster, acked, next_key, key_of, value_of, READ_LIMIT_MS);
	own_replica_has_all(victim);
	cluster_stop(&cluster, victim, 10000);
	cluster_start(&cluster, victim);
	role_of(victim, role, sizeof role);
	CHECK(role[0] && strcmp(role, "amnesiac"), "restarted, node %u shows '%s'", victim + 1,
	      role);
	write_keys(20, "restarted");
	printf("%u keys written, every acknowledged one read back (every node, and node %u's "
	       "own replica)\n", next_key, victim + 1);
	cluster_stop_all(&cluster, 10000);
	harness_cleanup();
	printf("PASS\n");
	return 0;
}
