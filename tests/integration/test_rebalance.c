/*
 * `ringkv rebalance` on four real ringkvd processes (issue #17; peers
 * 127.0.46.11-14, R = 3, 8 shards, 2 cores each). The founding placement
 * is even: every node holds 6 replicas, 3 per core. The cluster has no
 * --join yet, so the imbalance is made with `shard move`: shards 1 and 5
 * go from node 4 to node 1 (one per core), leaving node 1 with 8 and node
 * 4 with 4. Then:
 *   - `rebalance` (and --dry-run, --json) prints a plan of exactly two
 *     moves, from node 1 to node 4, and changes nothing;
 *   - `rebalance --apply --wait` under continuous writes through every
 *     node, its CLI killed (-9) once its first move is under way, then run
 *     again until it exits 0 (refused with the reason while that move is
 *     under way); every acknowledged write reads back; every shard has
 *     3 replicas on 3 distinct nodes; each node holds 6 (3 per core); the
 *     leaders are within one per node (after one more run of the command
 *     if an election moved a leader since: it is made to be run again);
 *   - planned again, the cluster needs no move (convergence);
 *   - with a node down the rebalance is refused (exit 1, nothing changed);
 *     with the node asked down, exit 2.
 * A write answered UNKNOWN or cut off counts as neither acknowledged nor
 * refused. Every process is stopped; every wait is bounded.
 *
 * usage: test_rebalance RINGKVD RINGKV
 */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster_keys.h"
#include "harness.h"
#include "tools/libringkv.h"

extern char **environ;

#define NODES 4
#define SHARDS 8
#define MAX_KEYS 30000
#define APPLY_LIMIT_MS 120000
#define READ_LIMIT_MS 10000

static struct cluster cluster;
static bool acked[MAX_KEYS];
static unsigned next_key, acked_count;

static size_t key_of(char *buf, size_t len, unsigned k)
{
	return (size_t)snprintf(buf, len, "rebalance:%05u", k);
}

static size_t value_of(char *buf, size_t len, unsigned k)
{
	return (size_t)snprintf(buf, len, "value-%u-%0200u", k, k);
}

/* One more key through node next % NODES (then the others); retried while
 * no node takes it (not applied), for at most limit_ms. */
static void write_next(long limit_ms)
{
	char key[32], value[256];
	unsigned k = next_key++;
	size_t kl = key_of(key, sizeof key, k), vl = value_of(value, sizeof value, k);
	long deadline = harness_now_ms() + limit_ms;

	CHECK(k < MAX_KEYS, "past the test's %u keys", MAX_KEYS);
	while (harness_now_ms() < deadline) {
		int rv = cluster_keys_put_once(&cluster, key, kl, value, vl, k % NODES);

		if (rv == 1) {
			acked[k] = true;
			acked_count++;
		}
		if (rv >= 0)
			return;
		usleep(20000);
	}
}

/* Key k through each node once: what each answers, when one does not
 * serve it (for the log). True when every node served it. */
static bool read_everywhere(unsigned k, const char *key, size_t kl)
{
	bool all = true;

	for (unsigned i = 0; i < NODES; i++) {
		struct rkv_client *c = cluster_client(&cluster, i);
		void *got = NULL;
		size_t gl;
		long t0 = harness_now_ms();
		int rv = c ? rkv_get(c, key, kl, &got, &gl) : -1;

		free(got);
		if (rv != RKV_STATUS_OK) {
			printf("key %u through node %u: %d (%s) after %ld ms\n", k, i + 1, rv,
			       c ? rkv_last_error(c) : "no connection", harness_now_ms() - t0);
			if (rv < 0)
				cluster_drop_client(&cluster, i);
			all = false;
		}
	}
	for (unsigned i = 0; !all && i < NODES; i++) {
		struct rkv_client *c = cluster_client(&cluster, i);
		struct rkv_cluster_map *m;

		if (c && rkv_cluster_map(c, &m) == 0) {
			const struct rkv_shard *sh = rkv_cluster_map_shard(m, key, kl);

			printf("node %u's map: shard %u led by node %llu (term %llu), replicas",
			       i + 1, sh->id, (unsigned long long)sh->leader,
			       (unsigned long long)sh->term);
			for (unsigned r = 0; r < sh->replica_count; r++)
				printf(" %llu", (unsigned long long)sh->replicas[r].node);
			printf("\n");
			rkv_cluster_map_free(m);
		}
	}
	return all;
}

static void check_acked(void)
{
	unsigned checked = 0, reported = 0;

	for (unsigned k = 0; k < next_key; k++) {
		char key[32], value[256];
		size_t kl = key_of(key, sizeof key, k), vl = value_of(value, sizeof value, k);

		if (!acked[k])
			continue;
		if (reported < 5 && !read_everywhere(k, key, kl))
			reported++;
		cluster_keys_check(&cluster, key, kl, value, vl, k, READ_LIMIT_MS);
		checked++;
	}
	printf("%u acknowledged writes (of %u) read back\n", checked, next_key);
	CHECK(checked == acked_count && checked > 0, "checked %u of %u", checked, acked_count);
}

/* `ringkv ARGS` to completion (bounded), output into out; its exit code. */
static int cli(const char *ringkv, const char *const *args, char *out, size_t len)
{
	return run_capture_echo(ringkv, args, out, len);
}

struct placement {
	int core[NODES][SHARDS];      /* -1: not held */
	bool leads[NODES][SHARDS];
	unsigned replicas[NODES], per_core[NODES][2], leaders[NODES];
};

/* Every node's own view (each must answer). */
static void placement_get(struct placement *p)
{
	memset(p, 0, sizeof *p);
	for (unsigned i = 0; i < NODES; i++) {
		struct rkv_client *c = cluster_client(&cluster, i);
		struct rkv_cluster_status *st;

		for (unsigned s = 0; s < SHARDS; s++)
			p->core[i][s] = -1;
		CHECK(c && rkv_cluster_status(c, &st) == 0, "node %u: no status", i + 1);
		for (size_t r = 0; r < st->replica_count; r++) {
			uint32_t s = st->replicas[r].shard, core = st->replicas[r].core;

			CHECK(s < SHARDS && core < 2, "node %u: shard %u on core %u", i + 1, s, core);
			p->core[i][s] = (int)core;
			p->replicas[i]++;
			p->per_core[i][core]++;
			if (strcmp(st->replicas[r].role, "leader") == 0) {
				p->leads[i][s] = true;
				p->leaders[i]++;
			}
		}
		rkv_cluster_status_free(st);
	}
	for (unsigned i = 0; i < NODES; i++)
		printf("node %u: %u replicas (core 0: %u, core 1: %u), %u leaders\n", i + 1,
		       p->replicas[i], p->per_core[i][0], p->per_core[i][1], p->leaders[i]);
}

/* Leaders per node within one. */
static bool leaders_even(const struct placement *p)
{
	unsigned lo = SHARDS, hi = 0;

	for (unsigned i = 0; i < NODES; i++) {
		lo = p->leaders[i] < lo ? p->leaders[i] : lo;
		hi = p->leaders[i] > hi ? p->leaders[i] : hi;
	}
	return hi <= lo + 1;
}

/* `shard move SHARD --from 4 --to 1:CORE --wait`. */
static void move_to_node1(const char *ringkv, const char *shard, const char *to)
{
	char out[8192];
	int rc = cli(ringkv, (const char *const[]){ "-a", cluster.nodes[0].srv.addr, "shard",
						    "move", shard, "--from", "4", "--to", to,
						    "--wait", NULL }, out, sizeof out);

	CHECK(rc == 0, "shard move %s to %s: exit %d", shard, to, rc);
}

/* The file at path (at most len - 1 bytes) into out, and on stdout. */
static void slurp(const char *path, char *out, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t got = fd >= 0 ? read(fd, out, len - 1) : 0;

	if (fd >= 0)
		close(fd);
	out[got > 0 ? got : 0] = '\0';
	printf("%s", out);
}

/* Does the file at path say `text` yet? */
static bool file_has(const char *path, const char *text)
{
	static char buf[65536];
	int fd = open(path, O_RDONLY);
	ssize_t got = fd >= 0 ? read(fd, buf, sizeof buf - 1) : 0;

	if (fd >= 0)
		close(fd);
	buf[got > 0 ? got : 0] = '\0';
	return strstr(buf, text) != NULL;
}

/* `ringkv rebalance --apply --wait` in a child (posix_spawn, its output to
 * DIR/apply.out) while this process writes; with kill_at, kill -9 of the
 * child once its output says that. Its output into out; its exit status
 * (128 + 9 when killed). */
static int apply_under_writes(const char *ringkv, const char *kill_at, char *out, size_t len)
{
	char path[700];
	const char *argv[] = { ringkv, "-a", cluster.nodes[1].srv.addr, "rebalance", "--apply",
			       "--wait", NULL };
	long deadline = harness_now_ms() + APPLY_LIMIT_MS;
	posix_spawn_file_actions_t files;
	int status = 0, rc;
	pid_t pid = 0, done = 0;

	snprintf(path, sizeof path, "%s/apply.out", cluster.base_dir);
	printf("$ ringkv -a %s rebalance --apply --wait &\n", cluster.nodes[1].srv.addr);
	posix_spawn_file_actions_init(&files);
	posix_spawn_file_actions_addopen(&files, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&files, 1, 2);
	rc = posix_spawn(&pid, ringkv, &files, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&files);
	CHECK(rc == 0, "posix_spawn %s: %s", ringkv, strerror(rc));
	while (done != pid && harness_now_ms() < deadline) {
		done = waitpid(pid, &status, WNOHANG);
		if (done == pid)
			break;
		if (kill_at && file_has(path, kill_at)) {
			kill(pid, SIGKILL);
			done = waitpid(pid, &status, 0);
			break;
		}
		write_next(5000);
	}
	if (done != pid) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	slurp(path, out, len);
	CHECK(done == pid, "the rebalance did not end within %d s", APPLY_LIMIT_MS / 1000);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv)
{
	static char out[65536];
	struct placement before, after;
	struct rkv_cluster_map *m;
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: %s RINGKVD RINGKV\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	cluster_init(&cluster, argv[1], NODES, "127.0.46.1", 46000 + (unsigned)getpid() % 900);
	cluster_keep_logs(&cluster, getenv("REBALANCE_LOGS"));
	cluster.args = (const char *const[]){ "--cores", "2", "--shards", "8", "--replicas", "3",
					      "--election-timeout", "300ms",
					      "--memtable-size", "256KiB", NULL };
	cluster_start_all(&cluster);
	m = cluster_wait_leaders(&cluster, 0, 20000);
	CHECK(m != NULL, "no leader for every shard within 20 s");
	rkv_cluster_map_free(m);
	for (unsigned k = 0; k < 1500; k++)
		write_next(10000);
	printf("before: %u of %u writes acknowledged\n", acked_count, next_key);

	/* Balanced as founded: nothing to do. */
	rc = cli(argv[2], (const char *const[]){ "-a", cluster.nodes[0].srv.addr, "rebalance",
						 NULL }, out, sizeof out);
	CHECK(rc == 0 && strstr(out, "plan: 0 moves"), "the founding placement: exit %d", rc);

	/* The imbalance: node 1 takes shards 1 and 5 from node 4. */
	move_to_node1(argv[2], "1", "1:1");
	move_to_node1(argv[2], "5", "1:0");
	placement_get(&before);
	CHECK(before.replicas[0] == 8 && before.replicas[3] == 4, "node 1 holds %u, node 4 %u",
	      before.replicas[0], before.replicas[3]);

	/* The plan: two moves from node 1 to node 4 (the only shards node 4
	 * may take are those it never held: 0 and 4); nothing changes. */
	rc = cli(argv[2], (const char *const[]){ "-a", cluster.nodes[2].srv.addr, "rebalance",
						 "--dry-run", NULL }, out, sizeof out);
	CHECK(rc == 0 && strstr(out, "plan: 2 moves") &&
	      strstr(out, "move 1 of 2: shard 0 from node 1 core 0 to node 4") &&
	      strstr(out, "move 2 of 2: shard 4 from node 1 core 1 to node 4"),
	      "the plan: exit %d", rc);
	CHECK(strstr(out, "replicas even over nodes yes, over each node's cores yes"),
	      "the plan does not even the replicas out");
	rc = cli(argv[2], (const char *const[]){ "-a", cluster.nodes[2].srv.addr, "--json",
						 "rebalance", NULL }, out, sizeof out);
	CHECK(rc == 0 && strstr(out, "\"moves\":[{\"shard\":0,\"from\":1,\"from_core\":0,"
					 "\"to\":4,") &&
	      strstr(out, "\"balanced\":{\"replicas\":true") && !strstr(out, "\"done\""),
	      "the JSON plan: exit %d", rc);
	placement_get(&after);
	CHECK(memcmp(before.core, after.core, sizeof before.core) == 0, "a dry run moved");

	/* Carried out under writes, its CLI killed (-9) once its first move
	 * shows a phase (under way): the move goes on (the shard's leader
	 * drives it), and running the command again goes on from where the
	 * cluster stands: it follows the move if it is still in HOST (the
	 * view shows R replicas), or is refused while the target is in the
	 * group (R + 1) and is asked again. */
	rc = apply_under_writes(argv[2], "shard 0: ", out, sizeof out);
	printf("rebalance --apply: exit %d (killed: %d)\n", rc, 128 + SIGKILL);
	CHECK(rc == 128 + SIGKILL || (rc == 0 && strstr(out, "rebalanced: 2 moves")),
	      "the first rebalance: exit %d", rc);
	for (unsigned runs = 0; rc != 0; runs++) {
		CHECK(runs < 20, "the rebalance run again did not finish");
		rc = apply_under_writes(argv[2], NULL, out, sizeof out);
		CHECK(rc == 0 || (rc == 1 && strstr(out, "a move under way")),
		      "the rebalance run again: exit %d", rc);
		for (long end = harness_now_ms() + (rc ? 500 : 0); harness_now_ms() < end;)
			write_next(5000);
	}
	printf("rebalance --apply: done; %u of %u writes acknowledged\n", acked_count, next_key);
	CHECK(strstr(out, "rebalanced: "), "the last run did not say it rebalanced");
	for (unsigned end = next_key + 100; next_key < end;)
		write_next(10000);
	check_acked();
	placement_get(&after);
	for (unsigned s = 0; s < SHARDS; s++) {
		unsigned holders = 0;

		for (unsigned i = 0; i < NODES; i++)
			holders += after.core[i][s] >= 0;
		CHECK(holders == 3, "shard %u has %u replicas", s, holders);
	}
	for (unsigned i = 0; i < NODES; i++) {
		CHECK(after.replicas[i] == 6, "node %u holds %u replicas", i + 1, after.replicas[i]);
		CHECK(after.per_core[i][0] == 3 && after.per_core[i][1] == 3,
		      "node %u: %u and %u replicas on its cores", i + 1, after.per_core[i][0],
		      after.per_core[i][1]);
	}
	CHECK(after.core[3][0] >= 0 && after.core[3][4] >= 0, "node 4 did not get shards 0, 4");
	if (!leaders_even(&after)) {
		/* An election since the transfers (a loaded machine): the
		 * command is made to be run again, and evens them out. */
		rc = cli(argv[2], (const char *const[]){ "-a", cluster.nodes[0].srv.addr,
							 "rebalance", "--apply", NULL },
			 out, sizeof out);
		CHECK(rc == 0 && strstr(out, "plan: 0 moves"), "run again: exit %d", rc);
		placement_get(&after);
	}
	CHECK(leaders_even(&after), "the leaders per node are not within one");

	/* Converged: nothing more to move. */
	rc = cli(argv[2], (const char *const[]){ "-a", cluster.nodes[3].srv.addr, "rebalance",
						 NULL }, out, sizeof out);
	CHECK(rc == 0 && strstr(out, "plan: 0 moves"), "planned again: exit %d", rc);

	/* Refusals: a node down (exit 1); the node asked down (exit 2). */
	cluster_stop(&cluster, 2, 15000);
	rc = cli(argv[2], (const char *const[]){ "-a", cluster.nodes[0].srv.addr, "rebalance",
						 "--apply", NULL }, out, sizeof out);
	CHECK(rc == 1 && strstr(out, "node 3 does not answer"), "a node down: exit %d", rc);
	rc = cli(argv[2], (const char *const[]){ "-a", "127.0.0.1:1", "rebalance", NULL }, out,
		 sizeof out);
	CHECK(rc == 2, "nobody to ask: exit %d", rc);
	for (unsigned i = 0; i < NODES; i++)
		if (i != 2) {
			struct rkv_cluster_status *st;

			CHECK(rkv_cluster_status(cluster_client(&cluster, i), &st) == 0, "status");
			CHECK(st->replica_count == 6, "node %u holds %zu after a refusal", i + 1,
			      st->replica_count);
			rkv_cluster_status_free(st);
		}

	cluster_stop_all(&cluster, 15000);
	harness_cleanup();
	printf("ok\n");
	return 0;
}
