/*
 * `ringkv shard move SHARD --from NODE[:CORE] --to NODE[:CORE] [--wait]`:
 * asks the shard's leader to move one replica (docs/cluster/membership.md),
 * following NOT_LEADER hints, and with --wait follows the move to its end,
 * printing each phase (and the snapshot bytes and log lag while the target
 * catches up). The move is the leader's to drive: this command only asks
 * and watches, so a killed CLI stops nothing.
 *
 * With --cancel it asks the leader to roll the move back (before its
 * REMOVE only) and, with --wait, follows the rollback to its end. --rate
 * caps the move's snapshot stream; --wait shows the bytes streamed of the
 * total, the rate measured between two polls and an ETA.
 *
 * Exit status: 0 done (or, without --wait, started); 1 refused or failed,
 * with the reason; 2 usage, or no node reachable.
 */
#include "tools/shard_move.h"

#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "tools/cli.h"
#include "tools/cli_json.h"
#include "tools/libringkv.h"

#define POLL_MS 500
#define HINT_TRIES 40
#define NO_MOVE_GRACE_MS 10000  /* a new leader that has not heard of it yet */
#define WAIT_BOUND_MS (30 * 60 * 1000)

int64_t shard_move_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void shard_move_sleep_ms(int ms)
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

/* The snapshot's rate: its bytes over the time since the catch-up was
 * first seen (a stream goes in 256 KiB chunks, so the rate between two
 * polls jumps; the average does not), and an ETA from it. */
struct rate_meter {
	uint64_t bytes0;              /* snapshot_bytes when first seen */
	uint64_t at0_ms;              /* the leader's elapsed_ms then; 0: not yet */
	double rate;                  /* bytes/s; 0: not measured yet */
};

static void rate_update(struct rate_meter *r, const struct rkv_move *mv)
{
	if (mv->phase != RKV_MOVE_CATCHUP && mv->phase != RKV_MOVE_LEARNER)
		return;
	if (!r->at0_ms || mv->snapshot_bytes < r->bytes0) {
		r->bytes0 = mv->snapshot_bytes;
		r->at0_ms = mv->elapsed_ms ? mv->elapsed_ms : 1;
		return;
	}
	if (mv->elapsed_ms > r->at0_ms && mv->snapshot_bytes > r->bytes0)
		r->rate = (double)(mv->snapshot_bytes - r->bytes0) * 1000.0 /
			  (double)(mv->elapsed_ms - r->at0_ms);
}

/* Seconds left of the snapshot stream; -1: unknown. */
static double rate_eta(const struct rate_meter *r, const struct rkv_move *mv)
{
	if (!mv->snapshot_total || r->rate <= 0 || mv->snapshot_total < mv->snapshot_bytes)
		return -1;
	return (double)(mv->snapshot_total - mv->snapshot_bytes) / r->rate;
}

static void print_json(const struct rkv_move *mv, const struct rate_meter *r, uint32_t shard,
		       bool done)
{
	printf("{\"shard\":%u,\"phase\":\"%s\",\"from\":%" PRIu64 ",\"to\":%" PRIu64
	       ",\"to_core\":%u,\"snapshot_bytes\":%" PRIu64 ",\"snapshot_total\":%" PRIu64
	       ",\"rate_bytes_per_s\":%.0f,\"eta_s\":%.1f,\"rate_limit\":%" PRIu64
	       ",\"log_lag\":%" PRIu64 ",\"elapsed_ms\":%" PRIu64,
	       shard, rkv_move_phase_name(mv->phase), mv->from_node, mv->to_node, mv->to_core,
	       mv->snapshot_bytes, mv->snapshot_total, r ? r->rate : 0.0,
	       r ? rate_eta(r, mv) : -1.0, mv->rate, mv->log_lag, mv->elapsed_ms);
	if (mv->phase == RKV_MOVE_CANCELLING || mv->phase == RKV_MOVE_CANCELLED)
		printf(",\"cancelled_in\":\"%s\"", rkv_move_phase_name(mv->cancelled_in));
	printf(",\"done\":%s,\"reason\":", done ? "true" : "false");
	cli_json_string(stdout, mv->reason);
	printf("}\n");
}

/* "1.5 MiB" */
static void human_bytes(char *buf, size_t len, double v)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

static void print_progress(const struct rkv_move *mv, const struct rate_meter *r,
			   uint32_t shard)
{
	printf("shard %u: %s", shard, rkv_move_phase_name(mv->phase));
	if (mv->phase == RKV_MOVE_CATCHUP || mv->phase == RKV_MOVE_LEARNER) {
		char done[32], total[32], rate[32];
		double eta = rate_eta(r, mv);

		human_bytes(done, sizeof done, (double)mv->snapshot_bytes);
		printf(" (snapshot %s", done);
		if (mv->snapshot_total) {
			human_bytes(total, sizeof total, (double)mv->snapshot_total);
			printf(" of %s", total);
		}
		if (r->rate > 0) {
			human_bytes(rate, sizeof rate, r->rate);
			printf(", %s/s", rate);
		}
		if (eta >= 0)
			printf(", ETA %.0f s", eta);
		printf(", log lag %" PRIu64 ")", mv->log_lag);
	}
	if (mv->phase == RKV_MOVE_HANDED_ON)
		printf(" (node %" PRIu64 " carries it on)", mv->next_leader);
	if (mv->phase == RKV_MOVE_CANCELLING || mv->phase == RKV_MOVE_CANCELLED)
		printf(" (from phase %s)", rkv_move_phase_name(mv->cancelled_in));
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
			shard_move_sleep_ms(POLL_MS);
			continue;
		}
		struct rkv_move_request q = {
			.shard = s->a->shard, .from_node = s->a->from, .to_node = s->a->to,
			.to_core = s->a->to_core, .status_only = status_only,
			.cancel = !status_only && s->a->cancel,
			.rate = status_only ? 0 : s->a->rate,
		};

		rc = rkv_shard_move_ask(s->c, &q, mv, &hint);
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
		if (status_only && (mv->phase == RKV_MOVE_DONE ||
				    mv->phase == RKV_MOVE_CANCELLED))
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
				shard_move_sleep_ms(POLL_MS);
		}
		*leader = hint;
	}
	snprintf(why, whylen, "no leader of shard %u found", s->a->shard);
	return RKV_STATUS_UNAVAILABLE;
}

void shard_move_complain(const char *command, bool json, const char *key, uint64_t id,
			 const char *fmt, ...)
{
	char text[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	fprintf(stderr, "ringkv: %s: %s\n", command, text);
	if (json) {
		if (key)
			printf("{\"%s\":%" PRIu64 ",", key, id);
		else
			printf("{");
		printf("\"done\":false,\"error\":");
		cli_json_string(stdout, text);
		printf("}\n");
	}
}

/* The reason on stderr, and with --json also as an object on stdout. */
#define complain(a, ...)                                                              \
	shard_move_complain((a)->cancel ? "shard move --cancel" : "shard move",       \
			    (a)->json && !(a)->quiet, "shard", (a)->shard, __VA_ARGS__)

int shard_move_run(const struct shard_move_args *a)
{
	struct conn_state s = { .a = a };
	struct rkv_move mv;
	char err[512] = "";
	uint64_t leader;
	int64_t start = shard_move_now_ms(), none_since = 0;
	uint32_t last_phase = UINT32_MAX, goal = a->cancel ? RKV_MOVE_CANCELLED : RKV_MOVE_DONE;
	struct rate_meter meter = { 0 };
	int64_t printed = 0;
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
	if ((!a->cancel && !known_node(s.map, a->from)) || (a->to && !known_node(s.map, a->to))) {
		complain(a, "node %" PRIu64 " is not in the cluster",
			 known_node(s.map, a->from) ? a->to : a->from);
		goto out;
	}
	leader = s.map->shards[a->shard].leader;
	rc = ask(&s, a->follow, &leader, &mv, err, sizeof err);
	if (rc == 0 && a->follow && (mv.from_node != a->from || mv.to_node != a->to)) {
		complain(a, "the move of shard %u under way is another (node %" PRIu64 " to node %"
			 PRIu64 ", phase %s)", a->shard, mv.from_node, mv.to_node,
			 rkv_move_phase_name(mv.phase));
		goto out;
	}
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
		if (a->quiet)
			;
		else if (a->json)
			print_json(&mv, NULL, a->shard, false);
		else if (a->cancel)
			printf("shard %u: cancelling the move to node %" PRIu64 " (from phase %s; "
			       "ringkv shard move %u --cancel --wait follows it)\n", a->shard,
			       mv.to_node, rkv_move_phase_name(mv.cancelled_in), a->shard);
		else
			printf("shard %u: moving the replica of node %" PRIu64 " to node %" PRIu64
			       " core %u (ringkv shard move %u --from %" PRIu64 " --to %" PRIu64
			       ":%u --wait follows it)\n", a->shard, mv.from_node, mv.to_node,
			       mv.to_core, a->shard, a->from, a->to, a->to_core);
		exit_code = SHARD_MOVE_EXIT_OK;
		goto out;
	}
	for (;;) {
		rate_update(&meter, &mv);
		if (!a->json && !a->quiet && (mv.phase != last_phase ||
				 ((mv.phase == RKV_MOVE_CATCHUP || mv.phase == RKV_MOVE_LEARNER) &&
				  shard_move_now_ms() - printed >= 2000))) {
			print_progress(&mv, &meter, a->shard);
			last_phase = mv.phase;
			printed = shard_move_now_ms();
		}
		if (mv.phase == RKV_MOVE_DONE || mv.phase == RKV_MOVE_FAILED ||
		    mv.phase == RKV_MOVE_CANCELLED)
			break;
		if (mv.phase == RKV_MOVE_NONE) {
			if (!none_since)
				none_since = shard_move_now_ms();
			if (shard_move_now_ms() - none_since > NO_MOVE_GRACE_MS) {
				snprintf(mv.reason, sizeof mv.reason, "the shard's leader (node %"
					 PRIu64 ") drives no move: leadership changed before the "
					 "promotion; run the move again", s.node);
				mv.phase = RKV_MOVE_FAILED;
				break;
			}
		} else {
			none_since = 0;
		}
		if (shard_move_now_ms() - start > WAIT_BOUND_MS) {
			snprintf(mv.reason, sizeof mv.reason, "still moving after %d minutes "
				 "(it goes on: ask again with --wait)", WAIT_BOUND_MS / 60000);
			mv.phase = RKV_MOVE_FAILED;
			break;
		}
		shard_move_sleep_ms(POLL_MS);
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
	if (a->quiet)
		;
	else if (a->json)
		print_json(&mv, &meter, a->shard, mv.phase == goal);
	else if (mv.phase == goal && mv.reason[0])
		printf("shard %u: %s, but: %s\n", a->shard, rkv_move_phase_name(goal), mv.reason);
	if (mv.phase == goal) {
		exit_code = SHARD_MOVE_EXIT_OK;
	} else if (mv.phase == RKV_MOVE_CANCELLED) {
		fprintf(stderr, "ringkv: shard move: cancelled (in phase %s)%s%s\n",
			rkv_move_phase_name(mv.cancelled_in), mv.reason[0] ? ": " : "", mv.reason);
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

int shard_move_parse_rate(const char *text, uint64_t *rate)
{
	char buf[64];
	size_t len = strlen(text);

	if (len >= 2 && strcmp(text + len - 2, "/s") == 0)
		len -= 2;
	if (len == 0 || len >= sizeof buf)
		return -1;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (config_parse_size(buf, rate) != 0 || *rate == 0)
		return -1;
	return 0;
}

/* "7" or "7:1": node and optional core. 0 or -1. */
int shard_move_parse_target(const char *text, uint64_t *node, uint32_t *core, bool *has_core)
{
	const char *end;
	uint64_t v;

	*has_core = false;
	*core = 0;
	if (cli_parse_leading_count(text, &v, &end) != 0 || v == 0)
		return -1;
	*node = v;
	if (*end == '\0')
		return 0;
	if (*end != ':' || cli_parse_count(end + 1, &v) != 0 || v > UINT32_MAX)
		return -1;
	*core = (uint32_t)v;
	*has_core = true;
	return 0;
}

/* ---- the command line: ringkv shard move ------------------------------- */

/* shard move's options. */
static struct {
	const char *from;     /* --from NODE[:CORE] */
	const char *to;       /* --to NODE[:CORE] */
	bool wait;            /* --wait */
	bool cancel;          /* --cancel */
	const char *rate;     /* --rate BYTES/s */
} move_opts;

int shard_move_check_rate(const char *text)
{
	uint64_t rate;

	if (text && shard_move_parse_rate(text, &rate) != 0)
		return cli_usage_error("--rate takes bytes per second (e.g. 512k, 64M/s), not '%s'",
				       text);
	return CLI_EXIT_OK;
}

static int shard_option(int argc, char **argv, int *i)
{
	int taken;

	if ((taken = cli_flag(argv, *i, "wait", &move_opts.wait)) != 0 ||
	    (taken = cli_flag(argv, *i, "cancel", &move_opts.cancel)) != 0 ||
	    (taken = cli_value(argc, argv, i, "rate", &move_opts.rate)) != 0 ||
	    (taken = cli_value(argc, argv, i, "from", &move_opts.from)) != 0)
		return taken;
	return cli_value(argc, argv, i, "to", &move_opts.to);
}

static int check_shard(const struct cli *cli, int argc, char **argv)
{
	uint64_t node, shard;
	uint32_t core;
	bool has_core;

	(void)cli;
	if (strcmp(argv[0], "move") != 0)
		return cli_usage_error("shard takes move, not '%s'", argv[0]);
	if (argc != 2 || cli_parse_count(argv[1], &shard) != 0 || shard > UINT32_MAX)
		return cli_usage_error("shard move takes SHARD (a shard id) --from NODE[:CORE] "
				       "--to NODE[:CORE]");
	if (shard_move_check_rate(move_opts.rate) != CLI_EXIT_OK)
		return CLI_EXIT_USAGE;
	if (move_opts.cancel) {
		if (move_opts.from || move_opts.rate)
			return cli_usage_error("shard move --cancel takes SHARD [--to NODE] only");
		if (move_opts.to &&
		    (shard_move_parse_target(move_opts.to, &node, &core, &has_core) != 0 ||
		     has_core))
			return cli_usage_error("--cancel --to takes NODE (the move's target), not "
					       "'%s'", move_opts.to);
		return CLI_EXIT_OK;
	}
	if (!move_opts.from || !move_opts.to)
		return cli_usage_error("shard move needs --from NODE[:CORE] and --to NODE[:CORE]");
	if (shard_move_parse_target(move_opts.from, &node, &core, &has_core) != 0)
		return cli_usage_error("--from takes NODE or NODE:CORE, not '%s'", move_opts.from);
	if (shard_move_parse_target(move_opts.to, &node, &core, &has_core) != 0)
		return cli_usage_error("--to takes NODE or NODE:CORE, not '%s'", move_opts.to);
	return CLI_EXIT_OK;
}

static int cmd_shard(struct cli *cli, int argc, char **argv)
{
	struct shard_move_args a = {
		.address = cli->address, .timeout_ms = cli->timeout_ms,
		.json = cli->format == CLI_JSON, .wait = move_opts.wait,
		.cancel = move_opts.cancel,
	};
	uint64_t shard = 0;
	uint32_t core;
	bool has_core;

	(void)argc;
	cli_parse_count(argv[1], &shard);
	a.shard = (uint32_t)shard;
	/* The source's core is not needed (a node holds at most one replica
	 * of a shard); the target's defaults to core 0. */
	if (move_opts.from)
		shard_move_parse_target(move_opts.from, &a.from, &core, &has_core);
	if (move_opts.to)
		shard_move_parse_target(move_opts.to, &a.to, &a.to_core, &has_core);
	if (move_opts.rate)
		shard_move_parse_rate(move_opts.rate, &a.rate);
	return shard_move_run(&a);
}

const struct cli_command cli_command_shard = {
	"shard", "move SHARD", "move SHARD --from NODE[:CORE] --to NODE[:CORE]:\n"
			       "move one replica online (the shard's leader\n"
			       "adds it as a learner, catches it up, promotes\n"
			       "it, removes the old one); --wait shows the\n"
			       "phases (snapshot bytes of total, rate, ETA)\n"
			       "until done; --rate BYTES/s (k/M/G) caps this\n"
			       "move's snapshot stream;\n"
			       "move SHARD --cancel [--to NODE] [--wait]: roll\n"
			       "the move back (before the old replica's\n"
			       "removal): the new replica leaves, its files go;\n"
			       "exit 1 refused or failed, 2 usage or no node\n"
			       "reachable",
	2, 2, .offline = cli_offline, .option = shard_option, .check = check_shard,
	.run = cmd_shard,
};
