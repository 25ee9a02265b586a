/*
 * Every node names every shard's leader (docs/cluster/routing.md, "Leaders
 * of every shard"), on four real ringkvd processes (peers 127.0.16.21-24,
 * R = 3, 4 shards, 2 cores each): every node lacks the replica of some
 * shard, and before cluster/leaders.c its map said leader 0 for it.
 *   - each node's map names a leader for every shard within 20 s, and the
 *     four maps agree on every shard's leader and term, which is a replica
 *     of the shard and says so in its own status;
 *   - kill -9 of the leader of a shard that node X does not hold: within
 *     15 s X's map names the group's new leader (a live replica, a later
 *     term, the one the new leader's own status shows), and a leader for
 *     every shard;
 *   - the map's epoch stays 1 (no membership change) and its version is
 *     the epoch plus the sum of the terms;
 *   - a leadership transfer changes no epoch: a router whose cached map
 *     names the old leader gets NOT_LEADER carrying the same epoch
 *     (Response.map_epoch) and follows the hint without refetching the
 *     map (an answer without the epoch would make it refetch);
 *   - `ringkv node list --json` lists the four nodes up with 3 replicas
 *     each, over both cores, and the 4 leaderships between them; after the
 *     kill, the killed node unreachable (counted from the map) and the 4
 *     leaderships on the live ones; the table form says the same.
 * Every process is stopped; every wait is bounded.
 *
 * usage: test_cluster_leaders RINGKVD RINGKV
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "tools/libringkv.h"

#define NODES 4
#define SHARDS 4
#define FIRST_WITHIN_MS 20000
#define AFTER_KILL_WITHIN_MS 15000

static struct cluster cluster;

static bool holds(const struct rkv_shard *sh, uint64_t node)
{
	for (unsigned k = 0; k < sh->replica_count; k++)
		if (sh->replicas[k].node == node)
			return true;
	return false;
}

/* Node i's own status says it leads `shard` in `term`. */
static bool says_it_leads(unsigned i, uint32_t shard, uint64_t term)
{
	struct rkv_cluster_status *st = NULL;
	bool yes = false;

	if (!cluster_client(&cluster, i) ||
	    rkv_cluster_status(cluster_client(&cluster, i), &st) != 0) {
		cluster_drop_client(&cluster, i);
		return false;
	}
	for (size_t r = 0; r < st->replica_count; r++)
		if (st->replicas[r].shard == shard)
			yes = strcmp(st->replicas[r].role, "leader") == 0 &&
			      st->replicas[r].term == term;
	rkv_cluster_status_free(st);
	return yes;
}

static void check_version(const struct rkv_cluster_map *m)
{
	uint64_t terms = 0;

	for (size_t s = 0; s < m->shard_count; s++)
		terms += m->shards[s].term;
	CHECK(m->epoch == 1, "epoch %llu without a membership change",
	      (unsigned long long)m->epoch);
	CHECK(m->version == m->epoch + terms, "version %llu, epoch %llu, terms %llu",
	      (unsigned long long)m->version, (unsigned long long)m->epoch,
	      (unsigned long long)terms);
}

/*
 * Waits until every live node's map names, for every shard, the same
 * leader and term, a live replica of the shard that says it leads in that
 * term. Returns true then, false when within_ms ran out.
 */
static bool maps_agree(const bool *live, long within_ms, uint64_t *leader_of, uint64_t *term_of)
{
	long deadline = harness_now_ms() + within_ms;

	while (harness_now_ms() < deadline) {
		bool ok = true;

		for (unsigned s = 0; s < SHARDS; s++)
			leader_of[s] = term_of[s] = 0;
		for (unsigned i = 0; i < NODES && ok; i++) {
			struct rkv_cluster_map *m = NULL;

			if (!live[i])
				continue;
			if (!cluster_client(&cluster, i) ||
			    rkv_cluster_map(cluster_client(&cluster, i), &m) != 0) {
				cluster_drop_client(&cluster, i);
				ok = false;
				break;
			}
			CHECK(m->shard_count == SHARDS, "%zu shards", m->shard_count);
			for (unsigned s = 0; s < SHARDS && ok; s++) {
				const struct rkv_shard *sh = &m->shards[s];

				if (sh->leader == 0 || !live[sh->leader - 1] ||
				    !holds(sh, sh->leader)) {
					ok = false;
				} else if (leader_of[s] == 0) {
					leader_of[s] = sh->leader;
					term_of[s] = sh->term;
				} else {
					ok = leader_of[s] == sh->leader && term_of[s] == sh->term;
				}
			}
			if (ok)
				check_version(m);
			rkv_cluster_map_free(m);
		}
		for (unsigned s = 0; s < SHARDS && ok; s++)
			ok = says_it_leads((unsigned)leader_of[s] - 1, s, term_of[s]);
		if (ok)
			return true;
		harness_sleep_ms(100);
	}
	return false;
}

/* A key of `shard` in map m (the router's slot function). */
static void key_of_shard(const struct rkv_cluster_map *m, uint32_t shard, char *key, size_t len)
{
	for (unsigned k = 0; k < 100000; k++) {
		snprintf(key, len, "key:%u", k);
		if (rkv_cluster_map_shard(m, key, strlen(key))->id == shard)
			return;
	}
	CHECK(false, "no key of shard %u", shard);
}

/*
 * Hands `shard`'s leadership from its leader to another voter and checks
 * that a router that cached the old leader follows the hint of the
 * NOT_LEADER answer without a new map. On a loaded machine an election may
 * move the leadership at any time (300 ms election timeout): the old leader
 * is the one the maps agree on when the router has its map, and the
 * transfer is asked of whichever node the maps last named. Every ask,
 * whatever its answer, is followed by a look at the maps: once the transfer
 * took effect the old leader answers NOT_LEADER, and only the maps tell.
 */
static void transfer_keeps_epoch(uint32_t shard, const bool *live, uint64_t *leader_of,
				 uint64_t *term_of)
{
	struct rkv_move_request q = { .shard = shard, .transfer_leader = 1 };
	struct rkv_router_stats before, after;
	struct rkv_router *r = NULL;
	const struct rkv_shard *sh;
	struct rkv_move mv;
	uint64_t from = 0, asked;
	char key[32], err[256];
	bool moved = false;
	long deadline;
	int rc;

	for (unsigned tries = 0; tries < 5 && !r; tries++) {
		CHECK(maps_agree(live, FIRST_WITHIN_MS, leader_of, term_of),
		      "the maps did not agree on the leaders before the transfer");
		from = leader_of[shard];
		CHECK(rkv_router_open(cluster.nodes[0].srv.addr, 2000, &r, err, sizeof err) == 0,
		      "router: %s", err);
		if (rkv_router_map(r)->shards[shard].leader != from) {
			printf("the router's map names node %llu for shard %u, the maps node %llu: "
			       "an election in between; again\n",
			       (unsigned long long)rkv_router_map(r)->shards[shard].leader, shard,
			       (unsigned long long)from);
			rkv_router_close(r);
			r = NULL;
		}
	}
	CHECK(r != NULL, "the leader of shard %u kept changing", shard);
	sh = &rkv_router_map(r)->shards[shard];
	for (unsigned k = 0; k < sh->replica_count && !q.to_node; k++)
		if (sh->replicas[k].node != from)
			q.to_node = sh->replicas[k].node;
	CHECK(q.to_node != 0, "shard %u has no replica but its leader", shard);
	key_of_shard(rkv_router_map(r), shard, key, sizeof key);
	CHECK(rkv_router_put(r, key, strlen(key), "v1", 2) == RKV_STATUS_OK, "put before");
	asked = from;
	deadline = harness_now_ms() + 20000;
	do {
		rc = rkv_shard_move_ask(cluster_client(&cluster, (unsigned)asked - 1), &q, &mv, NULL);
		if (rc < 0)	/* a transport failure: the connection is unusable */
			cluster_drop_client(&cluster, (unsigned)asked - 1);
		if (maps_agree(live, 2000, leader_of, term_of)) {
			moved = leader_of[shard] == q.to_node;
			printf("asked node %llu to hand shard %u to node %llu: answer %d; the maps "
			       "name node %llu (term %llu)\n", (unsigned long long)asked, shard,
			       (unsigned long long)q.to_node, rc,
			       (unsigned long long)leader_of[shard],
			       (unsigned long long)term_of[shard]);
			asked = leader_of[shard];
		} else {
			printf("asked node %llu to hand shard %u to node %llu: answer %d; the maps "
			       "do not agree yet\n", (unsigned long long)asked, shard,
			       (unsigned long long)q.to_node, rc);
		}
		if (!moved)
			harness_sleep_ms(200);
	} while (!moved && harness_now_ms() < deadline);
	CHECK(moved, "shard %u: the maps never agreed on node %llu as its leader within 20 s",
	      shard, (unsigned long long)q.to_node);
	rkv_router_stats(r, &before);
	CHECK(rkv_router_put(r, key, strlen(key), "v2", 2) == RKV_STATUS_OK, "put after");
	rkv_router_stats(r, &after);
	printf("shard %u moved from node %llu to %llu: the router saw %llu NOT_LEADER, "
	       "fetched the map %llu times\n", shard, (unsigned long long)from,
	       (unsigned long long)q.to_node,
	       (unsigned long long)(after.not_leader - before.not_leader),
	       (unsigned long long)(after.refreshes - before.refreshes));
	CHECK(after.not_leader - before.not_leader == 1,
	      "%llu NOT_LEADER answers", (unsigned long long)(after.not_leader - before.not_leader));
	CHECK(after.refreshes == before.refreshes,
	      "the router refetched the map within one epoch");
	CHECK(rkv_router_map(r)->epoch == 1, "epoch %llu", (unsigned long long)rkv_router_map(r)->epoch);
	rkv_router_close(r);
}

/* The value of "name": in the JSON object text [obj, end), or -1. */
static long json_number(const char *obj, const char *end, const char *name)
{
	char pat[40];
	const char *p;

	snprintf(pat, sizeof pat, "\"%s\":", name);
	p = strstr(obj, pat);
	return p && p < end ? strtol(p + strlen(pat), NULL, 10) : -1;
}

/*
 * `ringkv node list --json` from node `asked`: every node listed, the one
 * `down` (or none: NODES) unreachable and counted from the map, the others
 * up with 3 replicas on cores 0 and 1; the live nodes lead all 4 shards.
 */
static void check_node_list(const char *ringkv, unsigned asked, unsigned down)
{
	static char out[16384];
	long leaders = 0;
	int rc = run_capture(ringkv, (const char *const[]){ "-a",
		cluster.nodes[asked].srv.addr, "node", "list", "--json", NULL }, out, sizeof out);

	printf("$ ringkv node list --json -> %d\n%s", rc, out);
	CHECK(rc == 0 && out[0] == '{', "node list: exit %d", rc);
	for (unsigned i = 0; i < NODES; i++) {
		char pat[32];
		const char *obj, *end;

		snprintf(pat, sizeof pat, "{\"id\":%u,", i + 1);
		obj = strstr(out, pat);
		CHECK(obj != NULL, "node %u not listed", i + 1);
		end = strstr(obj + 1, "{\"id\":");
		if (!end)
			end = obj + strlen(obj);
		if (i == down) {
			CHECK(strstr(obj, "\"state\":\"unreachable\",\"counted_from\":\"map\"") &&
			      strstr(obj, "\"state\"") < end, "node %u not unreachable", i + 1);
			continue;
		}
		CHECK(strstr(obj, "\"state\":\"up\",\"counted_from\":\"status\"") &&
		      strstr(obj, "\"state\"") < end, "node %u not up", i + 1);
		CHECK(json_number(obj, end, "replicas") == 3, "node %u: %ld replicas", i + 1,
		      json_number(obj, end, "replicas"));
		CHECK(strstr(obj, "{\"core\":1,") && strstr(obj, "{\"core\":1,") < end,
		      "node %u: no core 1", i + 1);
		leaders += json_number(obj, end, "leaders");
	}
	CHECK(leaders == SHARDS, "the live nodes lead %ld shards", leaders);
	rc = run_capture(ringkv, (const char *const[]){ "-a", cluster.nodes[asked].srv.addr,
		"node", "list", NULL }, out, sizeof out);
	printf("$ ringkv node list -> %d\n%s", rc, out);
	CHECK(rc == 0 && strstr(out, "NODE") && (down == NODES) == !strstr(out, "unreachable"),
	      "node list (table): exit %d", rc);
}

int main(int argc, char **argv)
{
	bool live[NODES] = { true, true, true, true };
	uint64_t leader_of[SHARDS], term_of[SHARDS], old_term;
	struct rkv_cluster_map *m;
	unsigned lacking = NODES, victim, shard = SHARDS;
	long t0;

	if (argc != 3) {
		fprintf(stderr, "usage: %s RINGKVD RINGKV\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	cluster_init(&cluster, argv[1], NODES, "127.0.16.2", 36000 + (unsigned)getpid() % 900);
	cluster_keep_logs(&cluster, getenv("CLUSTER_LEADERS_LOGS"));
	cluster.args = (const char *const[]){ "--cores", "2", "--shards", "4", "--replicas", "3",
					      "--election-timeout", "300ms", NULL };
	cluster_start_all(&cluster);

	t0 = harness_now_ms();
	CHECK(maps_agree(live, FIRST_WITHIN_MS, leader_of, term_of),
	      "the nodes' maps did not name one leader for every shard within %d ms",
	      FIRST_WITHIN_MS);
	printf("every node names every shard's leader after %ld ms:", harness_now_ms() - t0);
	for (unsigned s = 0; s < SHARDS; s++)
		printf(" %u:%llu(t%llu)", s, (unsigned long long)leader_of[s],
		       (unsigned long long)term_of[s]);
	printf("\n");
	check_node_list(argv[2], 0, NODES);

	/* A shard that some node lacks, led by another node. */
	CHECK(rkv_cluster_map(cluster_client(&cluster, 0), &m) == 0, "node 1's map");
	for (unsigned s = 0; s < SHARDS && shard == SHARDS; s++)
		for (unsigned i = 0; i < NODES; i++)
			if (!holds(&m->shards[s], i + 1) && leader_of[s] != i + 1) {
				shard = s;
				lacking = i;
				break;
			}
	CHECK(shard < SHARDS, "no shard lacking on some node (R = 3 of 4 nodes)");
	/* Its leadership to another voter first (not the lacking node). */
	transfer_keeps_epoch(shard, live, leader_of, term_of);
	rkv_cluster_map_free(m);
	victim = (unsigned)leader_of[shard] - 1;
	old_term = term_of[shard];
	printf("node %u holds no replica of shard %u; killing its leader, node %u (term %llu)\n",
	       lacking + 1, shard, victim + 1, (unsigned long long)old_term);

	cluster_kill(&cluster, victim);
	live[victim] = false;
	t0 = harness_now_ms();
	CHECK(maps_agree(live, AFTER_KILL_WITHIN_MS, leader_of, term_of),
	      "after the kill, the live nodes' maps did not agree on live leaders within %d ms",
	      AFTER_KILL_WITHIN_MS);
	CHECK(leader_of[shard] != victim + 1 && term_of[shard] > old_term,
	      "shard %u: leader %llu term %llu after the kill", shard,
	      (unsigned long long)leader_of[shard], (unsigned long long)term_of[shard]);
	printf("after %ld ms node %u names node %llu (term %llu) for shard %u\n",
	       harness_now_ms() - t0, lacking + 1, (unsigned long long)leader_of[shard],
	       (unsigned long long)term_of[shard], shard);

	check_node_list(argv[2], lacking, victim);
	cluster_stop_all(&cluster, 15000);
	harness_cleanup();
	printf("ok\n");
	return 0;
}
