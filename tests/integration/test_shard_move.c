/*
 * Moving one shard replica online with `ringkv shard move` (issue #17's first
 * step, docs/cluster/membership.md), on four real ringkvd processes (peers
 * 127.0.16.11-14, R = 3, 4 shards, 2 cores each): shard 0 lives on nodes
 * 1, 2, 3 and node 1 leads it; its replica moves from node 1 to node 4's
 * core 1 while a writer keeps writing keys of every shard through every
 * node. Then:
 *   - the CLI exits 0 (and refuses bad moves with exit 1 and a reason);
 *   - every acknowledged write reads back, through any node;
 *   - node 4 holds shard 0 on core 1 (cluster status) and the map lists
 *     {2, 3, 4}; node 4 serves stale reads of shard 0 from its own replica;
 *   - node 1 restarted has deleted its shard-0 files and holds no replica;
 *   - node 4 restarted keeps the replica (hosting record) and still votes:
 *     with node 3 down, shard 0 commits on {2, 4} alone.
 * A write answered UNKNOWN or cut off counts as neither acknowledged nor
 * refused. Every process is stopped; every wait is bounded.
 *
 * Before that move, one throttled to 64 KiB/s is cancelled in its
 * catch-up (`--cancel`); the move itself is throttled (`--rate 256k`) and
 * takes at least its snapshot's size over the rate. After it, `ringkv node
 * drain 1` under writes: node 1 hands its leadership on, its replicas go
 * to the nodes without them, it ends with none, every write reads back; a
 * drain with no room (node 1 down) is refused.
 *
 * usage: test_shard_move RINGKVD RINGKV
 */
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
#define SHARDS 4
#define MAX_KEYS 20000           /* where the timed write loops stop */
#define KEY_SLOTS (MAX_KEYS + 1000) /* room for the fixed batches after them */
#define MOVE_LIMIT_MS 60000
#define READ_LIMIT_MS 10000

static struct cluster cluster;
static bool acked[KEY_SLOTS];
static struct rkv_cluster_map *map; /* for the keys' shards */
static char value_pad[1100];
static uint64_t snapshot_seen; /* largest snapshot_total the leader reported */

static size_t key_of(char *buf, size_t len, unsigned k)
{
	return (size_t)snprintf(buf, len, "key:%05u", k);
}

static size_t value_of(char *buf, size_t len, unsigned k)
{
	return (size_t)snprintf(buf, len, "value-%u-%s", k, value_pad);
}

static uint32_t shard_of(unsigned k)
{
	char key[32];
	size_t kl = key_of(key, sizeof key, k);

	return rkv_cluster_map_shard(map, key, kl)->id;
}

/* Key k written through node `first`, then the others, retried within
 * limit_ms (cluster_keys.h): whether it was acknowledged (then acked[k]). */
static bool put_retry(unsigned k, unsigned first, long limit_ms)
{
	char key[32], value[1200];
	size_t kl = key_of(key, sizeof key, k), vl = value_of(value, sizeof value, k);

	CHECK(k < KEY_SLOTS, "key %u: past the test's %u key slots", k, KEY_SLOTS);
	if (cluster_keys_put(&cluster, key, kl, value, vl, first, limit_ms) != 1)
		return false;
	acked[k] = true;
	return true;
}

static void check_key(unsigned k)
{
	char key[32], value[1200];
	size_t kl = key_of(key, sizeof key, k), vl = value_of(value, sizeof value, k);

	cluster_keys_check(&cluster, key, kl, value, vl, k, READ_LIMIT_MS);
}

/* Runs `ringkv ARGS` to completion (bounded), output into out; exit code. */
static int run_cli(const char *ringkv, const char *const *args, char *out, size_t len)
{
	return run_capture_echo(ringkv, args, out, len);
}

/* Node i's own view of shard s: its replica's core, or -1 if it holds none
 * (then role is ""). */
static int held_core(unsigned i, uint32_t s, char *role, size_t rlen)
{
	char roles[SHARDS][16];
	int cores[SHARDS];

	CHECK(s < SHARDS, "shard %u of %u", s, SHARDS);
	cluster_node_replicas(&cluster, i, SHARDS, roles, cores);
	snprintf(role, rlen, "%s", roles[s]);
	return cores[s];
}

static bool path_exists(const char *dir, const char *name)
{
	char path[700];
	struct stat sb;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return stat(path, &sb) == 0;
}

/* `ringkv ARGS` in a child, its output into DIR/NAME.out. */
static pid_t cli_spawn(const char *ringkv, const char *name, const char *const *args,
		       char *out_path, size_t out_len)
{
	const char *argv[24] = { ringkv };
	unsigned n = 1;
	int fd;
	pid_t pid;

	for (unsigned i = 0; args[i] && n < 23; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	snprintf(out_path, out_len, "%s/%s.out", cluster.base_dir, name);
	printf("$ ringkv");
	for (unsigned i = 1; i < n; i++)
		printf(" %s", argv[i]);
	printf(" &\n");
	pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		execv(ringkv, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* The CLI's move (`ringkv -a NODE2 shard move 0 --from 1 --to 4:1 --wait
 * EXTRA...`) in a child, its output into DIR/NAME.out. */
static pid_t move_spawn(const char *ringkv, const char *name, const char *const *extra,
			char *out_path, size_t out_len)
{
	const char *args[20] = { "-a", cluster.nodes[1].srv.addr, "shard", "move", "0",
				 "--from", "1", "--to", "4:1", "--wait" };
	unsigned n = 10;

	for (unsigned i = 0; extra && extra[i] && n < 19; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	return cli_spawn(ringkv, name, args, out_path, out_len);
}

/* Waits for the child unless `reaped` (bounded: then killed), copies its
 * output into out and prints it; its exit status. */
static int move_reap(pid_t pid, int status, bool reaped, const char *out_path, char *out,
		     size_t len)
{
	long end = harness_now_ms() + 10000;
	FILE *f;
	size_t n = 0;

	while (!reaped && harness_now_ms() < end) {
		reaped = waitpid(pid, &status, WNOHANG) == pid;
		if (!reaped)
			usleep(50000);
	}
	if (!reaped) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	f = fopen(out_path, "r");
	if (f) {
		n = fread(out, 1, len - 1, f);
		fclose(f);
	}
	out[n] = '\0';
	printf("%s", out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static bool leader_move_status(struct rkv_move *mv);

/* Writes keys of every shard (half of them of shard 0) through rotating
 * nodes while the CLI's move runs in a child, noting the size of the
 * snapshot the leader streams; returns its exit status. */
static int move_under_writes(const char *ringkv, const char *const *extra, unsigned *next,
			     unsigned *ok, char *out, size_t len)
{
	char out_path[700];
	long deadline = harness_now_ms() + MOVE_LIMIT_MS;
	int status = -1;
	bool reaped = false;
	pid_t pid = move_spawn(ringkv, "move", extra, out_path, sizeof out_path);
	long polled = 0;

	snapshot_seen = 0;
	while (harness_now_ms() < deadline && *next < MAX_KEYS) {
		struct rkv_move mv;

		if ((reaped = waitpid(pid, &status, WNOHANG) == pid))
			break;
		if (harness_now_ms() - polled >= 200) {
			polled = harness_now_ms();
			if (leader_move_status(&mv) && mv.snapshot_total > snapshot_seen)
				snapshot_seen = mv.snapshot_total;
		}
		if (put_retry(*next, *next % NODES, 5000))
			(*ok)++;
		(*next)++;
	}
	return move_reap(pid, status, reaped, out_path, out, len);
}

/* Shard 0's move as its leader reports it (asking every node): true with
 * *mv from the node that answers OK. */
static bool leader_move_status(struct rkv_move *mv)
{
	struct rkv_move_request q = { .shard = 0, .status_only = 1 };

	for (unsigned i = 0; i < NODES; i++) {
		struct rkv_client *c = cluster_client(&cluster, i);
		int rv;

		if (!c)
			continue;
		rv = rkv_shard_move_ask(c, &q, mv, NULL);
		if (rv == 0)
			return true;
		if (rv < 0)
			cluster_drop_client(&cluster, i);
	}
	return false;
}

/* Node i's map lists shard 0 on exactly these three nodes. */
static bool shard0_on(unsigned i, uint64_t a, uint64_t b, uint64_t c)
{
	struct rkv_cluster_map *m;
	bool ok;

	CHECK(cluster_client(&cluster, i) && rkv_cluster_map(cluster_client(&cluster, i), &m) == 0,
	      "map of node %u", i + 1);
	ok = m->shards[0].replica_count == 3 && m->shards[0].replicas[0].node == a &&
	     m->shards[0].replicas[1].node == b && m->shards[0].replicas[2].node == c;
	if (!ok)
		printf("node %u's map of shard 0: %u replicas, %llu %llu %llu\n", i + 1,
		       m->shards[0].replica_count, (unsigned long long)m->shards[0].replicas[0].node,
		       (unsigned long long)(m->shards[0].replica_count > 1 ?
					    m->shards[0].replicas[1].node : 0),
		       (unsigned long long)(m->shards[0].replica_count > 2 ?
					    m->shards[0].replicas[2].node : 0));
	rkv_cluster_map_free(m);
	return ok;
}

/*
 * A move throttled to 64 KiB/s, cancelled while its snapshot streams (phase
 * catchup), under writes: the move's own --wait shows the bytes, the rate
 * and an ETA, then ends "cancelled" (exit 1); `--cancel --wait` exits 0;
 * the group is {1, 2, 3} again, node 4 holds nothing of shard 0 and its
 * files are gone after its next start. A second cancel is refused.
 */
static void cancel_at_catchup(const char *ringkv, unsigned *next, unsigned *ok)
{
	char out_path[700], out[8192];
	const char *const extra[] = { "--rate", "64k", NULL };
	long deadline = harness_now_ms() + 30000;
	struct rkv_move mv = { 0 };
	bool caught = false;
	char role[16];
	int rc;
	pid_t pid = move_spawn(ringkv, "cancelled", extra, out_path, sizeof out_path);

	while (!caught && harness_now_ms() < deadline && *next < MAX_KEYS) {
		if (put_retry(*next, *next % NODES, 5000))
			(*ok)++;
		(*next)++;
		caught = leader_move_status(&mv) && mv.phase == RKV_MOVE_CATCHUP &&
			 mv.snapshot_bytes > 0 && mv.snapshot_total > mv.snapshot_bytes;
	}
	CHECK(caught, "the throttled move was never seen streaming its snapshot (phase %s)",
	      rkv_move_phase_name(mv.phase));
	printf("catchup: %llu of %llu snapshot bytes streamed, cap %llu bytes/s\n",
	       (unsigned long long)mv.snapshot_bytes, (unsigned long long)mv.snapshot_total,
	       (unsigned long long)mv.rate);
	CHECK(mv.rate == 64 << 10, "the move's cap is %llu", (unsigned long long)mv.rate);
	/* Let the watcher print a progress line with its rate and ETA. */
	for (long end = harness_now_ms() + 5000; harness_now_ms() < end && *next < MAX_KEYS;
	     (*next)++)
		if (put_retry(*next, *next % NODES, 5000))
			(*ok)++;
	rc = run_cli(ringkv, (const char *const[]){ "-a", cluster.nodes[2].srv.addr, "shard",
						    "move", "0", "--cancel", "--wait", NULL },
		     out, sizeof out);
	CHECK(rc == 0 && strstr(out, "cancelled"), "the cancel: exit %d", rc);
	rc = move_reap(pid, 0, false, out_path, out, sizeof out);
	CHECK(rc == 1 && strstr(out, "cancelled (in phase catchup)"),
	      "the cancelled move's watcher: exit %d", rc);
	CHECK(strstr(out, "/s, ETA ") != NULL, "no rate and ETA in the move's progress");
	for (unsigned end = *next + 50; *next < end; (*next)++)
		if (put_retry(*next, *next % NODES, 10000))
			(*ok)++;
	CHECK(shard0_on(1, 1, 2, 3), "shard 0 is not back on nodes 1, 2, 3");
	CHECK(held_core(3, 0, role, sizeof role) == -1, "node 4 still holds shard 0 (%s)", role);
	rc = run_cli(ringkv, (const char *const[]){ "-a", cluster.nodes[0].srv.addr, "shard",
						    "move", "0", "--cancel", NULL }, out, sizeof out);
	CHECK(rc == 1 && strstr(out, "no move of shard 0"), "a second cancel: exit %d", rc);
	/* Node 4's files of the cancelled replica go at its next start. */
	CHECK(path_exists(cluster.nodes[3].dir, "shard-0"), "node 4 never made shard 0");
	cluster_stop(&cluster, 3, 15000);
	cluster_start(&cluster, 3);
	CHECK(!path_exists(cluster.nodes[3].dir, "shard-0") &&
	      !path_exists(cluster.nodes[3].dir, "shard-0.joining") &&
	      !path_exists(cluster.nodes[3].dir, "shard-0.incoming"),
	      "node 4 kept the files of the cancelled replica");
	CHECK(held_core(3, 0, role, sizeof role) == -1, "node 4 restarted holds shard 0");
}

/* Makes node `id` lead shard `shard` (a member of it): the leader is asked
 * to hand its leadership on (ShardMoveRequest.transfer_leader), again
 * every second, until node id's own status says it leads (bounded). */
static void lead_shard_on(uint32_t shard, uint64_t id)
{
	long deadline = harness_now_ms() + 20000, asked = 0;

	while (harness_now_ms() < deadline) {
		char role[16] = "";

		if (held_core((unsigned)id - 1, shard, role, sizeof role) >= 0 &&
		    strcmp(role, "leader") == 0)
			return;
		if (harness_now_ms() - asked >= 1000) {
			struct rkv_move_request q = { .shard = shard, .to_node = id,
						      .transfer_leader = 1 };
			struct rkv_move mv;

			asked = harness_now_ms();
			for (unsigned i = 0; i < NODES; i++)
				if (cluster_client(&cluster, i) &&
				    rkv_shard_move_ask(cluster_client(&cluster, i), &q, &mv, NULL) == 0)
					printf("node %u hands shard %u's leadership to node %llu\n",
					       i + 1, shard, (unsigned long long)id);
		}
		harness_sleep_ms(100);
	}
	CHECK(false, "node %llu does not lead shard %u after 20 s", (unsigned long long)id, shard);
}

/* With more nodes than replicas a node's map names the leaders of the
 * shards it holds only: waits until, between them, the nodes name a leader
 * for every shard and each knows every node's client address. Returns node
 * 1's map, or NULL when the time ran out. */
static struct rkv_cluster_map *wait_leaders(long within_ms)
{
	long deadline = harness_now_ms() + within_ms;

	while (harness_now_ms() < deadline) {
		struct rkv_cluster_map *maps[NODES] = { NULL };
		bool led[8] = { false }, ready = true;

		for (unsigned i = 0; i < NODES; i++) {
			struct rkv_client *c = cluster_client(&cluster, i);

			if (!c || rkv_cluster_map(c, &maps[i]) != 0) {
				cluster_drop_client(&cluster, i);
				maps[i] = NULL;
				ready = false;
				continue;
			}
			for (size_t s = 0; s < maps[i]->shard_count && s < 8; s++)
				led[s] |= maps[i]->shards[s].leader != 0;
			for (size_t n = 0; n < maps[i]->node_count; n++)
				ready &= maps[i]->nodes[n].client[0] != '\0';
		}
		for (size_t s = 0; ready && maps[0] && s < maps[0]->shard_count; s++)
			ready &= s < 8 && led[s];
		for (unsigned i = 1; i < NODES; i++)
			rkv_cluster_map_free(maps[i]);
		if (ready && maps[0])
			return maps[0];
		rkv_cluster_map_free(maps[0]);
		harness_sleep_ms(100);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned next = 0, ok = 0, checked = 0, shard0_keys = 0;
	char out[4096], role[16];
	struct rkv_cluster_map *m;
	int rc, core;
	long t0, elapsed;
	int status = 0;
	bool reaped = false;
	pid_t pid;
	char out_path[700];
	struct rkv_router *router;
	uint64_t epoch0;

	if (argc != 3) {
		fprintf(stderr, "usage: %s RINGKVD RINGKV\n", argv[0]);
		return 2;
	}
	memset(value_pad, 'x', 1000);
	setvbuf(stdout, NULL, _IOLBF, 0);
	cluster_init(&cluster, argv[1], NODES, "127.0.16.1", 36100 + (unsigned)getpid() % 800);
	cluster_keep_logs(&cluster, getenv("SHARD_MOVE_LOGS"));
	cluster.args = (const char *const[]){ "--cores", "2", "--shards", "4", "--replicas", "3",
					      "--election-timeout", "300ms",
					      "--memtable-size", "256KiB", NULL };
	cluster_start_all(&cluster);
	map = wait_leaders(20000);
	CHECK(map != NULL, "no leader for every shard within 20 s");
	CHECK(map->shard_count == 4 && map->shards[0].replica_count == 3,
	      "unexpected map: %zu shards", map->shard_count);
	CHECK(map->shards[0].replicas[0].node == 1 && map->shards[0].replicas[1].node == 2 &&
	      map->shards[0].replicas[2].node == 3, "shard 0 is not on nodes 1, 2, 3");

	/* Data before the move: enough that shard 0 flushes tables and its
	 * leader's log no longer starts at 1 (the learner needs a snapshot). */
	for (; next < 3000; next++)
		if (put_retry(next, next % NODES, 10000))
			ok++;
	printf("before the move: %u of %u writes acknowledged\n", ok, next);

	/* Refusals: nothing changes, exit 1 with the reason. */
	rc = run_cli(argv[2], (const char *const[]){ "-a", cluster.nodes[0].srv.addr, "shard",
						     "move", "0", "--from", "1", "--to", "2",
						     NULL }, out, sizeof out);
	CHECK(rc == 1 && strstr(out, "already holds"), "a move to a holder: exit %d", rc);
	rc = run_cli(argv[2], (const char *const[]){ "-a", cluster.nodes[0].srv.addr, "shard",
						     "move", "0", "--from", "4", "--to", "2",
						     NULL }, out, sizeof out);
	CHECK(rc == 1 && strstr(out, "holds no replica"), "a move from a non-holder: exit %d",
	      rc);
	rc = run_cli(argv[2], (const char *const[]){ "-a", cluster.nodes[0].srv.addr, "shard",
						     "move", "0", "--from", "1", "--to", "9",
						     NULL }, out, sizeof out);
	CHECK(rc == 1 && strstr(out, "not in the cluster"), "a move to node 9: exit %d", rc);
	rc = run_cli(argv[2], (const char *const[]){ "-a", cluster.nodes[0].srv.addr, "shard",
						     "move", "0", "--from", "1", "--to", "4:5",
						     "--wait", NULL }, out, sizeof out);
	/* Refused by the leader when it knows node 4's core count (from its
	 * hello), else by node 4 when asked to host: the move fails there. */
	CHECK(rc == 1 && (strstr(out, "no core 5") || strstr(out, "no such core")),
	      "a move to core 5: exit %d", rc);
	rc = run_cli(argv[2], (const char *const[]){ "-a", cluster.nodes[0].srv.addr, "shard",
						     "move", "0", "--from", "1", NULL },
		     out, sizeof out);
	CHECK(rc == 2, "a move without --to: exit %d", rc);

	cancel_at_catchup(argv[2], &next, &ok);

	/* A router that caches the map from before the move, node 1 leading
	 * shard 0: after the move node 1 answers NOT_LEADER with a larger
	 * map epoch, and the router refetches the map. */
	lead_shard_on(0, 1);
	CHECK(rkv_router_open(cluster.nodes[0].srv.addr, 2000, &router, out, sizeof out) == 0,
	      "router: %s", out);
	epoch0 = rkv_router_map(router)->epoch;
	CHECK(rkv_router_map(router)->shards[0].leader == 1, "the router's map: shard 0 led by %llu",
	      (unsigned long long)rkv_router_map(router)->shards[0].leader);

	/* The move, under writes, throttled: its snapshot takes at least
	 * (bytes - one 256 KiB chunk, which goes at once) / rate. */
	t0 = harness_now_ms();
	rc = move_under_writes(argv[2], (const char *const[]){ "--rate", "256k", NULL }, &next,
			       &ok, out, sizeof out);
	elapsed = harness_now_ms() - t0;
	printf("move: exit %d after %ld ms; %u of %u writes acknowledged so far\n", rc,
	       elapsed, ok, next);
	CHECK(rc == 0, "the move did not finish (exit %d)", rc);
	{
		uint64_t streamed = snapshot_seen, floor_ms;

		floor_ms = streamed > (256u << 10) ? (streamed - (256u << 10)) * 1000 / (256u << 10)
						   : 0;
		printf("throttled move: %llu snapshot bytes at 256 KiB/s in %ld ms (at least "
		       "%llu ms)\n", (unsigned long long)streamed, elapsed,
		       (unsigned long long)floor_ms);
		CHECK(streamed >= (512u << 10), "only %llu snapshot bytes: too few to time",
		      (unsigned long long)streamed);
		CHECK((uint64_t)elapsed >= floor_ms, "the throttled move took %ld ms", elapsed);
	}
	/* A few more writes after it, then every acknowledged one reads. */
	for (unsigned end = next + 200; next < end; next++)
		if (put_retry(next, next % NODES, 10000))
			ok++;
	for (unsigned k = 0; k < next; k++)
		if (acked[k]) {
			check_key(k);
			checked++;
			shard0_keys += shard_of(k) == 0;
		}
	printf("%u acknowledged writes read back (%u of shard 0)\n", checked, shard0_keys);
	CHECK(checked == ok && shard0_keys > 0, "acknowledged %u, checked %u", ok, checked);

	/* Node 4 holds shard 0 on core 1; the map says {2, 3, 4}. */
	core = held_core(3, 0, role, sizeof role);
	printf("node 4: shard 0 on core %d (%s)\n", core, role);
	CHECK(core == 1, "node 4 holds shard 0 on core %d", core);
	CHECK(rkv_cluster_map(cluster_client(&cluster, 1), &m) == 0, "map of node 2");
	CHECK(m->shards[0].replica_count == 3 && m->shards[0].replicas[0].node == 2 &&
	      m->shards[0].replicas[1].node == 3 && m->shards[0].replicas[2].node == 4,
	      "node 2's map of shard 0: %u replicas, first %llu", m->shards[0].replica_count,
	      (unsigned long long)m->shards[0].replicas[0].node);
	/* Three configuration changes (learner, promotion, removal): a
	 * larger epoch, which the router learns from a NOT_LEADER. */
	printf("map epoch %llu before the move, %llu after\n", (unsigned long long)epoch0,
	       (unsigned long long)m->epoch);
	CHECK(m->epoch > epoch0, "the move left the map's epoch at %llu",
	      (unsigned long long)m->epoch);
	{
		struct rkv_router_stats before, after;
		char key[32];

		for (unsigned k = 0;; k++) {
			snprintf(key, sizeof key, "epoch:%u", k);
			if (rkv_cluster_map_shard(rkv_router_map(router), key, strlen(key))->id == 0)
				break;
		}
		rkv_router_stats(router, &before);
		CHECK(rkv_router_put(router, key, strlen(key), "after", 5) == RKV_STATUS_OK,
		      "a routed put after the move");
		rkv_router_stats(router, &after);
		printf("router after the move: %llu NOT_LEADER, %llu map fetches, epoch %llu\n",
		       (unsigned long long)(after.not_leader - before.not_leader),
		       (unsigned long long)(after.refreshes - before.refreshes),
		       (unsigned long long)rkv_router_map(router)->epoch);
		CHECK(after.not_leader > before.not_leader && after.refreshes > before.refreshes &&
		      rkv_router_map(router)->epoch >= m->epoch,
		      "the router did not refetch the map of the new epoch");
	}
	rkv_router_close(router);
	rkv_cluster_map_free(m);

	/* Node 1 restarted: its shard-0 files are gone, it holds no replica. */
	CHECK(path_exists(cluster.nodes[0].dir, "shard-0"), "node 1 deleted its files early");
	cluster_stop(&cluster, 0, 15000);
	cluster_start(&cluster, 0);
	CHECK(!path_exists(cluster.nodes[0].dir, "shard-0") &&
	      !path_exists(cluster.nodes[0].dir, "shard-0.conf"),
	      "node 1 kept the files of its moved replica");
	CHECK(held_core(0, 0, role, sizeof role) == -1, "node 1 still holds shard 0");

	/* Node 4 restarted: it keeps the replica and serves it. */
	cluster_stop(&cluster, 3, 15000);
	for (unsigned end = next + 50; next < end; next++)
		if (put_retry(next, next % NODES, 10000))
			ok++;
	cluster_start(&cluster, 3);
	core = held_core(3, 0, role, sizeof role);
	CHECK(core == 1, "node 4 restarted holds shard 0 on core %d", core);
	/* Stale reads on node 4: its own replica's state (it catches up). */
	{
		long deadline = harness_now_ms() + READ_LIMIT_MS;
		unsigned last = 0, served = 0;

		for (unsigned k = 0; k < next; k++)
			if (acked[k] && shard_of(k) == 0)
				last = k;
		while (harness_now_ms() < deadline) {
			char key[32], value[1200];
			size_t kl = key_of(key, sizeof key, last);
			size_t vl = value_of(value, sizeof value, last);
			void *got;
			size_t gl;
			struct rkv_client *c = cluster_client(&cluster, 3);

			if (c && rkv_get_stale(c, key, kl, &got, &gl) == RKV_STATUS_OK) {
				CHECK(gl == vl && memcmp(got, value, vl) == 0, "stale read wrong");
				free(got);
				served = 1;
				break;
			}
			usleep(50000);
		}
		CHECK(served, "node 4 did not serve key %u of shard 0", last);
	}

	/* Node 3 down: shard 0's voters {2, 4} commit only if node 4 votes. */
	cluster_stop(&cluster, 2, 15000);
	{
		unsigned k = next, done = 0;
		long deadline = harness_now_ms() + 20000;

		while (done < 20 && harness_now_ms() < deadline) {
			if (shard_of(k) == 0 && put_retry(k, 1, 10000)) {
				ok++;
				done++;
			}
			k++;
		}
		next = k;
		CHECK(done == 20, "shard 0 took %u writes with node 3 down", done);
	}
	cluster_keys_check_acked(&cluster, acked, next, key_of, value_of, READ_LIMIT_MS);
	printf("after the restarts: %u writes acknowledged, every one reads back\n", ok);

	/* node drain: node 3 back; node 1 (shards 2 and 3, founding) is
	 * drained under writes: its leaderships first, then its replicas. */
	cluster_start(&cluster, 2);
	rkv_cluster_map_free(wait_leaders(20000));
	rc = run_cli(argv[2], (const char *const[]){ "-a", cluster.nodes[1].srv.addr, "node",
						     "drain", "1", "--dry-run", NULL },
		     out, sizeof out);
	CHECK(rc == 0 && strstr(out, "move 1 of 2: shard 2 from node 1") &&
	      strstr(out, "move 2 of 2: shard 3 from node 1"), "the drain's plan: exit %d", rc);
	CHECK(held_core(0, 2, role, sizeof role) >= 0, "a dry run moved shard 2");
	lead_shard_on(3, 1);
	pid = cli_spawn(argv[2], "drain", (const char *const[]){ "-a", cluster.nodes[1].srv.addr,
								 "node", "drain", "1", "--wait",
								 NULL }, out_path, sizeof out_path);
	for (long end = harness_now_ms() + MOVE_LIMIT_MS; harness_now_ms() < end && next < MAX_KEYS;
	     next++) {
		if ((reaped = waitpid(pid, &status, WNOHANG) == pid))
			break;
		if (put_retry(next, next % NODES, 5000))
			ok++;
	}
	rc = move_reap(pid, status, reaped, out_path, out, sizeof out);
	CHECK(rc == 0 && strstr(out, "drained (2 replicas moved)"), "the drain: exit %d", rc);
	CHECK(strstr(out, "leadership away from node 1") &&
	      strstr(out, "leadership away from node 1") < strstr(out, "\nmove 1 of 2: shard"),
	      "the drain did not hand node 1's leadership on before its moves");
	{
		struct rkv_cluster_status *st;

		CHECK(rkv_cluster_status(cluster_client(&cluster, 0), &st) == 0, "node 1 status");
		printf("node 1 after the drain: %zu replicas\n", st->replica_count);
		CHECK(st->replica_count == 0, "node 1 still holds %zu replicas", st->replica_count);
		rkv_cluster_status_free(st);
		m = wait_leaders(20000);
		CHECK(m != NULL, "no leader for every shard after the drain");
		rkv_cluster_map_free(m);
		for (unsigned i = 1; i < NODES; i++) {
			CHECK(rkv_cluster_map(cluster_client(&cluster, i), &m) == 0, "map");
			for (size_t s = 0; s < m->shard_count; s++)
				CHECK(m->shards[s].leader != 1, "node %u: node 1 leads shard %zu",
				      i + 1, s);
			rkv_cluster_map_free(m);
		}
	}
	cluster_keys_check_acked(&cluster, acked, next, key_of, value_of, READ_LIMIT_MS);
	printf("after the drain: %u writes acknowledged, every one reads back\n", ok);
	/* Node 1 down: nodes 3 and 4 hold every shard of node 2: refused. */
	cluster_stop(&cluster, 0, 15000);
	rc = run_cli(argv[2], (const char *const[]){ "-a", cluster.nodes[1].srv.addr, "node",
						     "drain", "2", NULL }, out, sizeof out);
	CHECK(rc == 1 && strstr(out, "no node can take"), "a drain with no room: exit %d", rc);
	CHECK(held_core(1, 0, role, sizeof role) >= 0, "a refused drain moved shard 0");

	rkv_cluster_map_free(map);
	cluster_stop_all(&cluster, 15000);
	harness_cleanup();
	printf("ok\n");
	return 0;
}
