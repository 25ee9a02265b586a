/*
 * Client routing against three real ringkvd processes (R = 3, peers on
 * 127.0.2.11-13, ports from the routing range 22000-22999):
 *  - the cluster map: every shard gets a leader after the first elections,
 *    its replicas are on distinct nodes, every node's peer, client and RESP
 *    addresses are the ones it was started with, the slots are covered;
 *  - libringkv's router sends writes and reads straight to the leaders: no
 *    request is answered NOT_LEADER (requests are marked no_forward, so a
 *    request that reached a non-leader would be), none retried;
 *  - after kill -9 of the node leading shard 0 the router follows the new
 *    leaders (every write and read succeeds within a bound, and the router
 *    counted the dead node or a NOT_LEADER on the way), and the live nodes'
 *    map names another leader for shard 0;
 *  - ringkv-bench routes too: every request it sends (marked no_forward)
 *    is answered without error;
 *  - `ringkv cluster status --json` (checked by check_cluster_status.py)
 *    shows the killed node unreachable and every shard led by a live node;
 *  - the two nodes that stop cleanly log that they forwarded no request to
 *    another node (forward.c's per-core count, logged at exit): everything
 *    went straight to its leader.
 *
 * usage: test_cluster_routing RINGKVD RINGKV CHECKER.py RINGKV-BENCH
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "tools/libringkv.h"

#define NODES 3
#define KEYS 200
#define LEADERS_WITHIN_MS 20000  /* first elections, on a loaded machine */
#define RESUME_WITHIN_MS 20000   /* writes and reads after the kill */

static struct cluster cluster;
static char resp[NODES][64];

static void check_map(const struct rkv_cluster_map *m)
{
	CHECK(m->node_count == NODES, "%zu nodes", m->node_count);
	CHECK(m->slots == 16384, "slots %u", m->slots);
	CHECK(m->epoch == 1 && m->version > m->epoch, "epoch %llu version %llu",
	      (unsigned long long)m->epoch, (unsigned long long)m->version);
	CHECK(m->shard_count >= NODES, "%zu shards", m->shard_count);
	for (unsigned i = 0; i < NODES; i++) {
		const struct rkv_node *n = &m->nodes[i];
		const struct cluster_node *want = &cluster.nodes[i];

		CHECK(n->id == i + 1, "node %u has id %llu", i, (unsigned long long)n->id);
		CHECK(strcmp(n->peer, want->peer) == 0, "node %u peer '%s', want '%s'", i + 1,
		      n->peer, want->peer);
		CHECK(strcmp(n->client, want->srv.addr) == 0, "node %u client '%s', want '%s'",
		      i + 1, n->client, want->srv.addr);
		CHECK(strcmp(n->resp, resp[i]) == 0, "node %u resp '%s', want '%s'", i + 1,
		      n->resp, resp[i]);
	}
	for (size_t s = 0; s < m->shard_count; s++) {
		const struct rkv_shard *sh = &m->shards[s];
		bool leader_is_replica = false;

		CHECK(sh->replica_count == NODES, "shard %zu: %u replicas", s, sh->replica_count);
		for (unsigned a = 0; a < sh->replica_count; a++) {
			CHECK(sh->replicas[a].core < 2, "shard %zu: replica on core %u", s,
			      sh->replicas[a].core);
			leader_is_replica |= sh->replicas[a].node == sh->leader;
			for (unsigned b = a + 1; b < sh->replica_count; b++)
				CHECK(sh->replicas[a].node != sh->replicas[b].node,
				      "shard %zu: two replicas on node %llu", s,
				      (unsigned long long)sh->replicas[a].node);
		}
		CHECK(leader_is_replica, "shard %zu: leader %llu is not a replica", s,
		      (unsigned long long)sh->leader);
		CHECK(sh->term >= 1, "shard %zu: term 0 with a leader", s);
	}
}

static void key_of(char *buf, size_t len, unsigned k)
{
	snprintf(buf, len, "route:%05u", k);
}

static void value_of(char *buf, size_t len, unsigned k, unsigned round)
{
	snprintf(buf, len, "v%u-%u", k, round);
}

/* Writes then reads every key through the router; each call may be retried
 * by the test until `deadline` (0: no retry allowed). */
static void write_read_all(struct rkv_router *r, unsigned round, long deadline)
{
	for (unsigned k = 0; k < KEYS; k++) {
		char key[32], value[32];
		int rc;

		key_of(key, sizeof key, k);
		value_of(value, sizeof value, k, round);
		while ((rc = rkv_router_put(r, key, strlen(key), value, strlen(value))) != 0 &&
		       deadline && harness_now_ms() < deadline)
			harness_sleep_ms(50);
		CHECK(rc == 0, "put %s (round %u): %s: %s", key, round, rkv_status_name(rc),
		      rkv_router_last_error(r));
	}
	for (unsigned k = 0; k < KEYS; k++) {
		char key[32], value[32];
		void *got = NULL;
		size_t len = 0;
		int rc;

		key_of(key, sizeof key, k);
		value_of(value, sizeof value, k, round);
		while ((rc = rkv_router_get(r, key, strlen(key), &got, &len)) != 0 && deadline &&
		       harness_now_ms() < deadline)
			harness_sleep_ms(50);
		CHECK(rc == 0, "get %s (round %u): %s: %s", key, round, rkv_status_name(rc),
		      rkv_router_last_error(r));
		CHECK(len == strlen(value) && memcmp(got, value, len) == 0,
		      "get %s: '%.*s', want '%s'", key, (int)len, (char *)got, value);
		free(got);
	}
}

int main(int argc, char **argv)
{
	const char *cli, *checker, *bench;
	struct rkv_cluster_map *m;
	struct rkv_router *r;
	struct rkv_router_stats st;
	char err[512], seeds[256], out_path[600], cmd[2048];
	unsigned base, killed, live;
	uint64_t old_leader;
	int rc;

	if (argc < 5) {
		fprintf(stderr, "usage: %s RINGKVD RINGKV CHECKER.py RINGKV-BENCH\n", argv[0]);
		return 2;
	}
	cli = argv[2];
	checker = argv[3];
	bench = argv[4];
	if (system("command -v python3 >/dev/null 2>&1") != 0) {
		fprintf(stderr, "SKIP: python3 is not installed (scripts/deps.sh)\n");
		return 77;
	}
	/* Ports of the routing range: peers even, RESP odd, by pid. */
	base = 22000 + ((unsigned)getpid() % 490) * 2;
	cluster_init(&cluster, argv[1], NODES, "127.0.2.1", base);
	cluster.args = (const char *const[]){ "--cores", "2", "--election-timeout", "300ms", NULL };
	cluster_keep_logs(&cluster, NULL);
	for (unsigned i = 0; i < NODES; i++) {
		snprintf(resp[i], sizeof resp[i], "127.0.2.1%u:%u", i + 1, base + 1);
		cluster.nodes[i].args[0] = "--resp-listen";
		cluster.nodes[i].args[1] = resp[i];
	}
	cluster_start_all(&cluster);

	/* The map: leaders everywhere, placement and addresses right. */
	m = cluster_wait_leaders(&cluster, 1, LEADERS_WITHIN_MS);
	CHECK(m != NULL, "node 2's map still has shards without a leader after %d ms",
	      LEADERS_WITHIN_MS);
	CHECK(m->node_id == 2, "answered by node %llu", (unsigned long long)m->node_id);
	check_map(m);
	printf("map: %zu shards, version %llx, leaders:", m->shard_count,
	       (unsigned long long)m->version);
	for (size_t s = 0; s < m->shard_count; s++)
		printf(" %llu", (unsigned long long)m->shards[s].leader);
	printf("\n");
	old_leader = m->shards[0].leader;
	rkv_cluster_map_free(m);

	/* Routed writes and reads go straight to the leaders. Seeds: node 3
	 * (any node will do), then node 1. */
	snprintf(seeds, sizeof seeds, "%s,%s", cluster.nodes[2].srv.addr,
		 cluster.nodes[0].srv.addr);
	CHECK(rkv_router_open(seeds, 2000, &r, err, sizeof err) == 0, "router: %s", err);
	rkv_router_set_timeout(r, 3000);
	write_read_all(r, 1, 0);
	rkv_router_stats(r, &st);
	printf("steady: %llu requests, %llu NOT_LEADER, %llu retries, %llu refreshes\n",
	       (unsigned long long)st.requests, (unsigned long long)st.not_leader,
	       (unsigned long long)st.retries, (unsigned long long)st.refreshes);
	CHECK(st.requests == 2 * KEYS, "%llu requests", (unsigned long long)st.requests);
	CHECK(st.not_leader == 0 && st.retries == 0 && st.unreachable == 0,
	      "routed requests missed their leader: %llu NOT_LEADER, %llu retries, "
	      "%llu unreachable", (unsigned long long)st.not_leader,
	      (unsigned long long)st.retries, (unsigned long long)st.unreachable);

	/* ringkv-bench: each connection to one node, only keys that node leads,
	 * marked no_forward: a request that missed its leader is an error. */
	snprintf(out_path, sizeof out_path, "%s/bench.txt", cluster.base_dir);
	snprintf(cmd, sizeof cmd, "'%s' --addr %s --connections 6 --requests 600 --warmup 0 "
		 "--ratio 1:1 --keys 1000 > '%s' 2>&1", bench, cluster.nodes[0].srv.addr,
		 out_path);
	rc = system(cmd);
	snprintf(cmd, sizeof cmd, "cat '%s'; grep -q 'routing to the leaders of' '%s' && "
		 "grep -q 'errors by status: none' '%s'", out_path, out_path, out_path);
	CHECK(rc == 0 && system(cmd) == 0, "ringkv-bench did not route cleanly (exit %d)", rc);

	/* kill -9 the leader of shard 0: the router follows the new leaders. */
	killed = (unsigned)old_leader - 1;
	live = (killed + 1) % NODES;
	cluster_kill(&cluster, killed);
	write_read_all(r, 2, harness_now_ms() + RESUME_WITHIN_MS);
	rkv_router_stats(r, &st);
	printf("after kill -9 of node %u: %llu requests, %llu NOT_LEADER, %llu retries, "
	       "%llu refreshes, %llu unreachable\n", killed + 1,
	       (unsigned long long)st.requests, (unsigned long long)st.not_leader,
	       (unsigned long long)st.retries, (unsigned long long)st.refreshes,
	       (unsigned long long)st.unreachable);
	CHECK(st.unreachable + st.not_leader > 0,
	      "the router never noticed that node %u died", killed + 1);
	m = cluster_wait_leaders(&cluster, live, RESUME_WITHIN_MS);
	CHECK(m != NULL, "node %u's map lacks leaders after the kill", live + 1);
	CHECK(m->shards[0].leader != old_leader, "shard 0 still led by the killed node");
	for (size_t s = 0; s < m->shard_count; s++)
		CHECK(m->shards[s].leader != old_leader, "shard %zu led by the killed node", s);
	CHECK(m->version > m->epoch + m->shard_count,
	      "the version did not grow with the new terms: %llu",
	      (unsigned long long)m->version);
	rkv_cluster_map_free(m);
	rkv_router_close(r);

	/* ringkv cluster status --json, asked of a live node. */
	snprintf(out_path, sizeof out_path, "%s/status.json", cluster.base_dir);
	snprintf(cmd, sizeof cmd, "'%s' -a %s -t 5 cluster status --json > '%s'", cli,
		 cluster.nodes[live].srv.addr, out_path);
	rc = system(cmd);
	CHECK(rc == 0, "ringkv cluster status --json exited %d", rc);
	snprintf(cmd, sizeof cmd, "python3 '%s' '%s' %u", checker, out_path, killed + 1);
	rc = system(cmd);
	CHECK(rc == 0, "check_cluster_status.py failed (%d)", rc);
	/* And the table prints. */
	snprintf(cmd, sizeof cmd, "'%s' -a %s -t 5 cluster status", cli,
		 cluster.nodes[live].srv.addr);
	CHECK(system(cmd) == 0, "ringkv cluster status failed");

	/* No request needed forwarding: the live nodes' own count, at exit. */
	for (unsigned i = 0; i < NODES; i++) {
		char line[512];
		unsigned long long total = 0, n;
		unsigned lines = 0;
		FILE *f;

		if (i == killed)
			continue;
		cluster_stop(&cluster, i, 20000);
		f = fopen(cluster.nodes[i].log, "r");
		CHECK(f != NULL, "no log of node %u", i + 1);
		while (fgets(line, sizeof line, f)) {
			const char *p = strstr(line, "] core ");

			if (!p || !strstr(p, "requests forwarded to other nodes"))
				continue;
			p = strchr(p + 7, ':');
			CHECK(p && sscanf(p + 1, " %llu", &n) == 1, "log line: %s", line);
			total += n;
			lines++;
		}
		fclose(f);
		printf("node %u: %llu requests forwarded to other nodes (%u cores)\n", i + 1,
		       total, lines);
		CHECK(lines == 2, "node %u logged %u forward counts, want one per core", i + 1,
		      lines);
		CHECK(total == 0, "node %u forwarded %llu requests", i + 1, total);
	}

	harness_cleanup();
	printf("ok\n");
	return 0;
}
