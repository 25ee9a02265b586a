/*
 * `ringkv shard move SHARD --from NODE[:CORE] --to NODE[:CORE] [--wait]`:
 * asks the shard's leader to move one replica (docs/cluster/membership.md),
 * following NOT_LEADER hints, and with --wait follows the move to its end,
 * printing each phase (and the snapshot bytes and log lag while the target
 * catches up). The move is the leader's to drive: this command only asks
 * and watches, so a killed CLI stops nothing.
 *
 * Exit status: 0 done (or, without --wait, started); 1 refused or failed,
 * with the reason; 2 usage, or no node reachable.
 */
#include "tools/shard_move.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/cli_json.h"
#include "tools/libringkv.h"

#define POLL_MS 500
#define HINT_TRIES 40
#define NO_MOVE_GRACE_MS 10000  /* a new leader that has not heard of it yet */
#define WAIT_BOUND_MS (30 * 60 * 1000)

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* The connection to node `id` (its client address in the map), reusing
 * *cur when it talks to that node already. */
struct conn_state {
	const struct shard_move_args *a;
	struct rkv_cluster_map *map;
	struct rkv_client *c;
	uint64_t node;                /* the node c talks to; 0 = the seed */
};

static int connect_node(struct conn_state *s, uint64_t id)
{
	char err[256];

	if (s->c && s->node == id)
		return 0;
	for (size_t i = 0; i < s->map->node_count; i++) {
		struct rkv_client *c;

		if (s->map->nodes[i].id != id || !s->map->nodes[i].client[0])
			continue;
		if (rkv_connect_timeout(s->map->nodes[i].client, s->a->timeout_ms, &c, err,
					sizeof err) != 0)
			return -1;
		rkv_set_timeout(c, s->a->timeout_ms);
		rkv_close(s->c);
		s->c = c;
		s->node = id;
		return 0;
	}
	return -1;
}

static bool known_node(const struct rkv_cluster_map *m, uint64_t id)
{
	for (size_t i = 0; i < m->node_count; i++)
		if (m->nodes[i].id == id)
			return true;
	return false;
}

static void print_json(const struct rkv_move *mv, uint32_t shard, bool done)
{
	printf("{\"shard\":%u,\"phase\":\"%s\",\"from\":%" PRIu64 ",\"to\":%" PRIu64
	       ",\"to_core\":%u,\"snapshot_bytes\":%" PRIu64 ",\"log_lag\":%" PRIu64
	       ",\"elapsed_ms\":%" PRIu64 ",\"done\":%s,\"reason\":",
	       shard, rkv_move_phase_name(mv->phase), mv->from_node, mv->to_node, mv->to_core,
	       mv->snapshot_bytes, mv->log_lag, mv->elapsed_ms, done ? "true" : "false");
	cli_json_string(stdout, mv->reason);
	printf("}\n");
}

static void print_progress(const struct rkv_move *mv, uint32_t shard)
{
	printf("shard %u: %s", shard, rkv_move_phase_name(mv->phase));
	if (mv->phase == RKV_MOVE_CATCHUP || mv->phase == RKV_MOVE_LEARNER)
		printf(" (snapshot %" PRIu64 " bytes streamed, log lag %" PRIu64 ")",
		       mv->snapshot_bytes, mv->log_lag);
	if (mv->phase == RKV_MOVE_HANDED_ON)
		printf(" (node %" PRIu64 " carries it on)", mv->next_leader);
	printf(" after %.1f s\n", (double)mv->elapsed_ms / 1000.0);
	fflush(stdout);
}

/* The node after `id` in the map's order (wrapping). */
static uint64_t next_node(const struct rkv_cluster_map *m, uint64_t id)
{
	for (size_t i = 0; i < m->node_count; i++)
		if (m->nodes[i].id == id)
			return m->nodes[(i + 1) % m->node_count].id;
	return m->nodes[0].id;
}

/* One request to the shard's leader, following hints. 0 with *mv; a
 * status > 0 (reason in *why); -1: no node reachable. */
static int ask(struct conn_state *s, bool status_only, uint64_t *leader, struct rkv_move *mv,
	       char *why, size_t whylen)
{
	for (int attempt = 0; attempt < HINT_TRIES; attempt++) {
		uint64_t hint = 0;
		int rc;

		if (*leader && connect_node(s, *leader) != 0) {
			snprintf(why, whylen, "node %" PRIu64 " (the shard's leader) is unreachable",
				 *leader);
			*leader = 0;
			sleep_ms(POLL_MS);
			continue;
		}
		rc = rkv_shard_move(s->c, s->a->shard, s->a->from, s->a->to, s->a->to_core,
				    status_only, mv, &hint);
		if (rc < 0) {
			snprintf(why, whylen, "%s", rkv_last_error(s->c));
			rkv_close(s->c);
			s->c = NULL;
			*leader = 0;
			if (connect_node(s, s->map->node_id) != 0)
				return -1;
			continue;
		}
		if (rc != RKV_STATUS_NOT_LEADER) {
			if (rc != 0)
				snprintf(why, whylen, "%s", rkv_last_error(s->c));
			return rc;
		}
		/* A former leader still tells where its move went. */
		if (status_only && mv->phase == RKV_MOVE_HANDED_ON && mv->next_leader)
			hint = mv->next_leader;
		if (status_only && mv->phase == RKV_MOVE_DONE)
			return 0;
		if (status_only && mv->phase == RKV_MOVE_FAILED) {
			snprintf(why, whylen, "%s", mv->reason);
			return 0;
		}
		if (!hint) {
			/* The node knows no leader (an election, or it holds no
			 * replica any more: the move's source): ask the next
			 * node; every member knows its leader. */
			hint = next_node(s->map, s->node);
			if (attempt % (int)s->map->node_count == (int)s->map->node_count - 1)
				sleep_ms(POLL_MS);
		}
		*leader = hint;
	}
	snprintf(why, whylen, "no leader of shard %u found", s->a->shard);
	return RKV_STATUS_UNAVAILABLE;
}

/* The reason on stderr, and with --json also as an object on stdout. */
__attribute__((format(printf, 2, 3))) static void complain(const struct shard_move_args *a,
							   const char *fmt, ...)
{
	char text[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	fprintf(stderr, "ringkv: shard move: %s\n", text);
	if (a->json) {
		printf("{\"shard\":%u,\"done\":false,\"error\":", a->shard);
		cli_json_string(stdout, text);
		printf("}\n");
	}
}

int shard_move_run(const struct shard_move_args *a)
{
	struct conn_state s = { .a = a };
	struct rkv_move mv;
	char err[512] = "";
	uint64_t leader;
	int64_t start = now_ms(), none_since = 0;
	uint32_t last_phase = UINT32_MAX;
	int rc, exit_code = SHARD_MOVE_EXIT_REFUSED;

	if (rkv_connect_timeout(a->address, a->timeout_ms, &s.c, err, sizeof err) != 0) {
		complain(a, "%s", err);
		return SHARD_MOVE_EXIT_USAGE;
	}
	rkv_set_timeout(s.c, a->timeout_ms);
	rc = rkv_cluster_map(s.c, &s.map);
	if (rc != 0) {
		complain(a, "%s", rkv_last_error(s.c));
		rkv_close(s.c);
		return rc < 0 ? SHARD_MOVE_EXIT_USAGE : SHARD_MOVE_EXIT_REFUSED;
	}
	s.node = s.map->node_id;
	if (a->shard >= s.map->shard_count) {
		complain(a, "no shard %u (the cluster has %zu)", a->shard, s.map->shard_count);
		goto out;
	}
	if (!known_node(s.map, a->from) || !known_node(s.map, a->to)) {
		complain(a, "node %" PRIu64 " is not in the cluster",
			 known_node(s.map, a->from) ? a->to : a->from);
		goto out;
	}
	leader = s.map->shards[a->shard].leader;
	rc = ask(&s, false, &leader, &mv, err, sizeof err);
	if (rc < 0) {
		complain(a, "%s", err);
		exit_code = SHARD_MOVE_EXIT_USAGE;
		goto out;
	}
	if (rc != 0) {
		complain(a, "refused: %s", err);
		goto out;
	}
	if (!a->wait) {
		if (a->json)
			print_json(&mv, a->shard, false);
		else
			printf("shard %u: moving the replica of node %" PRIu64 " to node %" PRIu64
			       " core %u (ringkv shard move %u --from %" PRIu64 " --to %" PRIu64
			       ":%u --wait follows it)\n", a->shard, mv.from_node, mv.to_node,
			       mv.to_core, a->shard, a->from, a->to, a->to_core);
		exit_code = SHARD_MOVE_EXIT_OK;
		goto out;
	}
	for (;;) {
		if (!a->json && mv.phase != last_phase) {
			print_progress(&mv, a->shard);
			last_phase = mv.phase;
		}
		if (mv.phase == RKV_MOVE_DONE || mv.phase == RKV_MOVE_FAILED)
			break;
		if (mv.phase == RKV_MOVE_NONE) {
			if (!none_since)
				none_since = now_ms();
			if (now_ms() - none_since > NO_MOVE_GRACE_MS) {
				snprintf(mv.reason, sizeof mv.reason, "the shard's leader (node %"
					 PRIu64 ") drives no move: leadership changed before the "
					 "promotion; run the move again", s.node);
				mv.phase = RKV_MOVE_FAILED;
				break;
			}
		} else {
			none_since = 0;
		}
		if (now_ms() - start > WAIT_BOUND_MS) {
			snprintf(mv.reason, sizeof mv.reason, "still moving after %d minutes "
				 "(it goes on: ask again with --wait)", WAIT_BOUND_MS / 60000);
			mv.phase = RKV_MOVE_FAILED;
			break;
		}
		sleep_ms(POLL_MS);
		if (mv.phase == RKV_MOVE_HANDED_ON)
			leader = mv.next_leader;
		else
			leader = s.node;
		rc = ask(&s, true, &leader, &mv, err, sizeof err);
		if (rc < 0) {
			complain(a, "%s", err);
			exit_code = SHARD_MOVE_EXIT_USAGE;
			goto out;
		}
		if (rc != 0) {
			complain(a, "%s", err);
			goto out;
		}
	}
	if (a->json)
		print_json(&mv, a->shard, mv.phase == RKV_MOVE_DONE);
	else if (mv.phase == RKV_MOVE_DONE && mv.reason[0])
		printf("shard %u: done, but: %s\n", a->shard, mv.reason);
	if (mv.phase == RKV_MOVE_DONE) {
		exit_code = SHARD_MOVE_EXIT_OK;
	} else {
		fprintf(stderr, "ringkv: shard move: failed in phase %s: %s\n",
			rkv_move_phase_name(last_phase == UINT32_MAX ? mv.phase : last_phase),
			mv.reason);
	}
out:
	fflush(stdout);
	rkv_cluster_map_free(s.map);
	rkv_close(s.c);
	return exit_code;
}

/* "7" or "7:1": node and optional core. 0 or -1. */
int shard_move_parse_target(const char *text, uint64_t *node, uint32_t *core, bool *has_core)
{
	char *end;
	unsigned long long v;

	*has_core = false;
	*core = 0;
	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || v == 0)
		return -1;
	*node = v;
	if (*end == '\0')
		return 0;
	if (*end != ':' || end[1] < '0' || end[1] > '9')
		return -1;
	v = strtoull(end + 1, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return -1;
	*core = (uint32_t)v;
	*has_core = true;
	return 0;
}
