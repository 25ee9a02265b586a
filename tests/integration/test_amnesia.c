/*
 * An amnesiac replica with real processes (issue 14, a damaged NEWEST core
 * log segment; docs/DAMAGED-DATADIR.md, "Amnesiac replicas"): four ringkvd
 * on 127.0.15.21-24 (peer port in 35000-35999), one core, one shard of
 * three replicas, node 4 spare.
 *   1. keys of 600 bytes are written and acknowledged;
 *   2. a follower of the shard is killed (-9), the first record header of
 *      its newest core log segment is flipped, and it is restarted: it
 *      starts (it used to be refused), `ringkv cluster status` shows its
 *      replica "amnesiac", it answers no stale read from it, its log names
 *      the file and the offset, its front door forwards a write to the
 *      leader, and the cluster keeps acknowledging writes;
 *   3. restarted again, it is still amnesiac (the marker is durable);
 *   4. the group replaces it: `ringkv shard move 0 --from VICTIM --to 4`,
 *      with writes going on meanwhile; the spare catches up by snapshot;
 *      the victim is told to drop its replica, and at its next start its
 *      shard files and its marker are gone;
 *   5. every acknowledged key reads back linearizably through every node
 *      and from the new replica's own state (stale reads on node 4).
 * Every wait has a deadline; every process is stopped (harness_cleanup).
 *
 * usage: test_amnesia RINGKVD RINGKV
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

#define NODES 4
#define SPARE 3                 /* node 4 holds no replica of shard 0 */
#define MAX_KEYS 4000
#define READ_LIMIT_MS 10000
#define MOVE_LIMIT_MS 60000

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
		long deadline = harness_now_ms() + 10000;
		int rv = -1;

		CHECK(k < MAX_KEYS, "past %u keys", MAX_KEYS);
		while (rv != 1 && harness_now_ms() < deadline) {
			rv = cluster_keys_put_once(&cluster, key, kl, value, vl, k % NODES);
			if (rv == 0) /* unknown: neither acknowledged nor refused */
				break;
			if (rv != 1)
				harness_sleep_ms(20);
		}
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
	struct rkv_client *c = cluster_client(&cluster, i);
	struct rkv_cluster_status *st;

	role[0] = '\0';
	CHECK(c != NULL, "node %u does not answer", i + 1);
	CHECK(rkv_cluster_status(c, &st) == 0, "node %u: cluster status: %s", i + 1,
	      rkv_last_error(c));
	for (size_t r = 0; r < st->replica_count; r++)
		if (st->replicas[r].shard == 0)
			snprintf(role, len, "%s", st->replicas[r].role);
	rkv_cluster_status_free(st);
}

/* Flips 16 bytes of the first record of node i's newest core log segment. */
static void damage_newest_segment(unsigned i)
{
	char dir[600], newest[64] = "", path[700];
	struct dirent *e;
	unsigned char b[16];
	DIR *d;
	int fd;

	snprintf(dir, sizeof dir, "%s/core-0", cluster.nodes[i].dir);
	d = opendir(dir);
	CHECK(d != NULL, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL)
		if (!strncmp(e->d_name, "log-", 4) && strlen(e->d_name) < sizeof newest &&
		    strcmp(e->d_name, newest) > 0)
			strcpy(newest, e->d_name);
	closedir(d);
	CHECK(newest[0], "no segment in %s", dir);
	snprintf(path, sizeof path, "%s/%s", dir, newest);
	fd = open(path, O_RDWR);
	CHECK(fd >= 0, "%s: %s", path, strerror(errno));
	CHECK(pread(fd, b, sizeof b, 4096) == (ssize_t)sizeof b, "%s: short", path);
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

/* Runs `ringkv ARGS` in a child, its output into BASE/move.out; its pid. */
static pid_t move_spawn(const char *ringkv, unsigned from, char *out, size_t len)
{
	char from_id[8];
	pid_t pid;
	int fd;

	snprintf(from_id, sizeof from_id, "%u", from + 1);
	snprintf(out, len, "%s/move.out", cluster.base_dir);
	printf("$ ringkv shard move 0 --from %s --to 4 --wait\n", from_id);
	pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		execl(ringkv, ringkv, "-a", cluster.nodes[SPARE].srv.addr, "shard", "move", "0",
		      "--from", from_id, "--to", "4", "--wait", (char *)NULL);
		_exit(127);
	}
	return pid;
}

int main(int argc, char **argv)
{
	struct rkv_cluster_map *map;
	char role[16], out[700], cmd[900];
	unsigned victim = NODES;
	long deadline;
	pid_t pid;
	int status = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: %s RINGKVD RINGKV\n", argv[0]);
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
	CHECK(map->shards[0].replica_count == 3, "shard 0 has %u replicas",
	      map->shards[0].replica_count);
	for (unsigned r = 0; r < 3; r++)
		CHECK(map->shards[0].replicas[r].node != SPARE + 1, "node 4 holds shard 0");
	/* A follower of the shard. */
	for (unsigned r = 0; r < 3 && victim == NODES; r++)
		if (map->shards[0].replicas[r].node != map->shards[0].leader)
			victim = (unsigned)map->shards[0].replicas[r].node - 1;
	rkv_cluster_map_free(map);
	printf("victim: node %u\n", victim + 1);

	/* 1. Acknowledged data, several segments. */
	write_keys(300, "before");
	/* 2. kill -9, damage, restart: amnesiac, the others serve. */
	cluster_kill(&cluster, victim);
	damage_newest_segment(victim);
	cluster_start(&cluster, victim);
	role_of(victim, role, sizeof role);
	CHECK(!strcmp(role, "amnesiac"), "node %u shows its replica as '%s'", victim + 1, role);
	CHECK(exists(cluster.nodes[victim].dir, "shard-0.amnesiac"), "no marker");
	if (cluster.nodes[victim].log[0])
		CHECK(file_has(cluster.nodes[victim].log, "amnesiac") &&
		      file_has(cluster.nodes[victim].log, "offset 4096"),
		      "the log does not name the damage (%s)", cluster.nodes[victim].log);
	no_stale_read(victim);
	write_through(victim);
	write_keys(100, "amnesiac");
	/* 3. Durable. */
	cluster_stop(&cluster, victim, 10000);
	cluster_start(&cluster, victim);
	role_of(victim, role, sizeof role);
	CHECK(!strcmp(role, "amnesiac"), "after a restart, node %u shows '%s'", victim + 1, role);
	write_keys(100, "amnesiac, restarted");
	/* 4. The group replaces it, under writes. */
	pid = move_spawn(argv[2], victim, out, sizeof out);
	deadline = harness_now_ms() + MOVE_LIMIT_MS;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (harness_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			CHECK(false, "the move did not end within %d ms", MOVE_LIMIT_MS);
		}
		write_keys(5, "during the move");
	}
	snprintf(cmd, sizeof cmd, "cat '%s'", out);
	CHECK(system(cmd) == 0, "%s", out);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the move failed (%s)", out);
	role_of(SPARE, role, sizeof role);
	CHECK(role[0] && strcmp(role, "amnesiac"), "node 4 shows '%s' for shard 0", role);
	write_keys(100, "after the move");
	/* The victim recorded the drop; its files go at its next start. */
	deadline = harness_now_ms() + 10000;
	do {
		role_of(victim, role, sizeof role);
		if (role[0])
			harness_sleep_ms(100);
	} while (role[0] && harness_now_ms() < deadline);
	cluster_stop(&cluster, victim, 10000);
	cluster_start(&cluster, victim);
	CHECK(!exists(cluster.nodes[victim].dir, "shard-0.amnesiac") &&
	      !exists(cluster.nodes[victim].dir, "shard-0"),
	      "node %u kept its dropped replica's files", victim + 1);
	role_of(victim, role, sizeof role);
	CHECK(!role[0], "node %u still holds shard 0 ('%s')", victim + 1, role);
	/* 5. Every acknowledged key, through every node and from node 4's
	 * own replica. */
	for (unsigned k = 0; k < next_key; k++) {
		char key[32], value[700];
		size_t kl = key_of(key, sizeof key, k), vl = value_of(value, sizeof value, k);
		void *got = NULL;
		size_t got_len = 0;
		long until = harness_now_ms() + READ_LIMIT_MS;
		int rv;

		if (!acked[k])
			continue;
		cluster_keys_check(&cluster, key, kl, value, vl, k, READ_LIMIT_MS);
		do {
			free(got);
			got = NULL;
			rv = rkv_get_stale(cluster_client(&cluster, SPARE), key, kl, &got, &got_len);
			if (rv != RKV_STATUS_OK)
				harness_sleep_ms(50);
		} while (rv != RKV_STATUS_OK && harness_now_ms() < until);
		CHECK(rv == RKV_STATUS_OK && got_len == vl && !memcmp(got, value, vl),
		      "key %u: node 4's own replica answers %d", k, rv);
		free(got);
	}
	printf("%u keys written, every acknowledged one read back (every node, and node 4's "
	       "own replica)\n", next_key);
	cluster_stop_all(&cluster, 10000);
	harness_cleanup();
	printf("PASS\n");
	return 0;
}
