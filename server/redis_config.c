/*
 * CONFIG GET / SET / RESETSTAT (issue #21): the settings Redis clients read,
 * and those of them ringkv changes at run time.
 *
 * Changed at run time (each core keeps its own copy, in its redis_core):
 * - maxclients: connections (both client ports) a node takes, shared out
 *   as ceil(N / cores) per core; the --max-connections flag is per core, so
 *   at start this is --max-connections x cores. Connections already open
 *   stay (as in Redis).
 * - proto-max-bulk-len: the largest bulk string a RESP request may carry,
 *   and so the largest value a RESP write makes; between 1 MiB (Redis's
 *   least) and --max-value (the peer transport and the log are sized for
 *   that at start; docs/REDIS-PARITY.md, "The 8 MiB value default"). Open
 *   connections take it for their next request, as in Redis.
 * - loglevel: debug, verbose, notice, warning (verbose and notice are
 *   ringkv's info level). The level itself is the process's (core/log.c).
 * - timeout: a RESP connection that sent nothing for that many seconds and
 *   waits for no reply is closed, by a sweep of each core's connections
 *   once a second while it is not 0 (the native port's are left alone).
 *
 * CONFIG SET checks every pair first (Redis's texts), then sends the new
 * values to every core by message (reactor_send, as CLIENT LIST does); the
 * reply +OK leaves once every core took them, so a command sent after it,
 * on any connection of the node, sees them. Two CONFIG SETs racing from
 * different cores reach the cores in different orders: each setting carries
 * a stamp (the monotonic clock, then the asking core) and a core keeps the
 * newest, so every core ends with the same value. The settings are the
 * node's: CONFIG SET through one node does not change the others (as each
 * Redis server has its own), and a restart goes back to the flags.
 *
 * The other parameters CONFIG GET answers (save, appendonly, appendfsync,
 * maxmemory, port) do not change at run time: set to the value
 * they have, they are accepted; to another, refused with Redis's text for
 * an immutable parameter. databases is refused whatever the value, as
 * Redis does (immutable there too).
 */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/reactor.h"
#include "proto/resp.h"
#include "server/auth.h"
#include "server/conn.h"
#include "server/node.h"
#include "server/redis.h"
#include "server/redis_impl.h"

#define MIN_BULK (1u << 20) /* Redis's least proto-max-bulk-len */
#define PARAMS 10           /* parameters CONFIG GET knows */
#define SWEEP_US 1000000    /* idle clients looked for every second */

enum live { LIVE_MAXCLIENTS, LIVE_BULK, LIVE_LOGLEVEL, LIVE_TIMEOUT, LIVE_COUNT };

static const char *const live_names[LIVE_COUNT] = { "maxclients", "proto-max-bulk-len",
						    "loglevel", "timeout" };
static const char *const level_names[] = { "debug", "verbose", "notice", "warning" };
static const enum log_level level_values[] = { LOG_DEBUG, LOG_INFO, LOG_INFO, LOG_WARN };
#define LEVELS (sizeof level_names / sizeof level_names[0])

struct config_gather;

struct config_part {
	struct reactor_msg msg; /* first */
	struct config_gather *g;
};

struct config_gather {
	struct redis_slot *slot;
	unsigned origin;
	unsigned pending;
	bool set[LIVE_COUNT];
	struct redis_settings want; /* the values of set[] */
	uint64_t stamp;
	struct config_part parts[];
};

/* A node-wide count: every core orders two CONFIG SETs the same way, and it
 * never wraps (a clock's nanoseconds shifted to make room would, after 52
 * days of uptime, and every later SET would be dropped after its +OK). */
static uint64_t stamp_next(struct node *n)
{
	return atomic_fetch_add_explicit(&n->config_stamp, 1, memory_order_relaxed) + 1;
}

void redis_settings_init(struct node_core *c)
{
	const struct config *cfg = &c->node->cfg;
	struct redis_settings *s = &c->redis->settings;

	memset(s, 0, sizeof *s);
	s->conn_limit = cfg->max_connections;
	s->maxclients = (uint64_t)cfg->max_connections * c->node->cores;
	s->max_bulk = cfg->max_value;
	s->loglevel = cfg->log_level == LOG_DEBUG ? 0 : cfg->log_level == LOG_INFO ? 2 : 3;
}

/* Every second while `timeout` is set: closes this core's RESP connections
 * that sent nothing for that long and wait for no reply (Redis's clientsCron
 * does the same for its clients). O(connections of the core). */
static void idle_sweep(struct timer *t, void *arg)
{
	struct node_core *c = arg;
	uint64_t limit = (uint64_t)c->redis->settings.timeout_s * 1000000u;
	uint64_t now = c->reactor->now_us;
	struct conn *conn, *next;

	(void)t;
	if (!limit)
		return;
	for (conn = c->conns; conn; conn = next) {
		next = conn->next;
		if (!conn->resp || !conn->redis || conn->closing || conn->redis->head)
			continue;
		if (now - conn->redis->last_us > limit)
			conn_drop(conn);
	}
	reactor_timer_arm(c->reactor, &c->redis->idle_sweep, SWEEP_US, idle_sweep, c);
}

void redis_settings_stop(struct node_core *c)
{
	reactor_timer_cancel(c->reactor, &c->redis->idle_sweep);
}

uint32_t redis_max_value(const struct node_core *c)
{
	return c->redis ? c->redis->settings.max_bulk : c->node->cfg.max_value;
}

uint32_t redis_conn_limit(const struct node_core *c)
{
	return c->redis ? c->redis->settings.conn_limit : c->node->cfg.max_connections;
}

/* Redis's memory values: digits, then b, k, kb, m, mb, g or gb. */
static bool parse_memory(const struct resp_arg *a, uint64_t *out)
{
	static const struct { const char *unit; uint64_t mul; } units[] = {
		{ "", 1 }, { "b", 1 }, { "k", 1000 }, { "kb", 1024 }, { "m", 1000000 },
		{ "mb", 1u << 20 }, { "g", 1000000000 }, { "gb", 1u << 30 },
	};
	size_t digits = 0;
	uint64_t v = 0;

	while (digits < a->len && a->data[digits] >= '0' && a->data[digits] <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(a->data[digits] - '0');
		digits++;
	}
	if (digits == 0)
		return false;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (a->len - digits == strlen(units[i].unit) &&
		    strncasecmp((const char *)a->data + digits, units[i].unit, a->len - digits) == 0) {
			if (v > UINT64_MAX / units[i].mul)
				return false;
			*out = v * units[i].mul;
			return true;
		}
	return false;
}

/* Checks one live parameter's value into `want`; false with the error
 * replied. */
static bool check_live(struct conn *conn, struct reply *r, enum live which,
		       const struct resp_arg *value, struct redis_settings *want)
{
	const struct node *n = conn->core->node;
	const char *name = live_names[which];
	int64_t v;
	uint64_t m;

	switch (which) {
	case LIVE_MAXCLIENTS: {
		uint64_t most = (uint64_t)n->cores << 20; /* --max-connections' bound */

		if (resp_parse_int64(value->data, value->len, &v) != 0) {
			reply_errorf(conn, r, "ERR CONFIG SET failed (possibly related to argument "
				     "'%s') - argument couldn't be parsed into an integer", name);
			return false;
		}
		if (v < 1 || (uint64_t)v > most) {
			reply_errorf(conn, r, "ERR CONFIG SET failed (possibly related to argument "
				     "'%s') - argument must be between 1 and %" PRIu64 " inclusive",
				     name, most);
			return false;
		}
		want->maxclients = (uint64_t)v;
		want->conn_limit = (uint32_t)(((uint64_t)v + n->cores - 1) / n->cores);
		return true;
	}
	case LIVE_BULK: {
		uint32_t most = n->cfg.max_value;
		uint32_t least = most < MIN_BULK ? most : MIN_BULK;

		if (!parse_memory(value, &m)) {
			reply_errorf(conn, r, "ERR CONFIG SET failed (possibly related to argument "
				     "'%s') - argument must be a memory value", name);
			return false;
		}
		if (m < least || m > most) {
			reply_errorf(conn, r, "ERR CONFIG SET failed (possibly related to argument "
				     "'%s') - argument must be between %u and %u inclusive "
				     "(at most ringkvd's --max-value)", name, least, most);
			return false;
		}
		want->max_bulk = (uint32_t)m;
		return true;
	}
	case LIVE_TIMEOUT:
		if (resp_parse_int64(value->data, value->len, &v) != 0) {
			reply_errorf(conn, r, "ERR CONFIG SET failed (possibly related to argument "
				     "'%s') - argument couldn't be parsed into an integer", name);
			return false;
		}
		if (v < 0 || v > INT32_MAX) {
			reply_errorf(conn, r, "ERR CONFIG SET failed (possibly related to argument "
				     "'%s') - argument must be between 0 and 2147483647 inclusive",
				     name);
			return false;
		}
		want->timeout_s = (uint32_t)v;
		return true;
	default:
		for (unsigned i = 0; i < LEVELS; i++)
			if (redis_arg_is(value, level_names[i])) {
				want->loglevel = i;
				return true;
			}
		reply_errorf(conn, r, "ERR CONFIG SET failed (possibly related to argument '%s') "
			     "- argument(s) must be one of the following: debug, verbose, notice, "
			     "warning", name);
		return false;
	}
}

/* On each core: take the values newer than this core's. */
static void on_set(struct reactor *r, struct reactor_msg *m);

static void on_set_back(struct reactor *r, struct reactor_msg *m)
{
	struct config_part *part = (struct config_part *)m;
	struct config_gather *g = part->g;
	struct redis_slot *slot = g->slot;
	struct conn *conn = slot->conn;
	struct reply *rep = &conn->redis->scratch;

	(void)r;
	if (--g->pending)
		return;
	free(g);
	reply_reset(rep);
	reply_simple(conn, rep, "OK");
	redis_slot_answer(conn, slot);
}

static void on_set(struct reactor *r, struct reactor_msg *m)
{
	struct config_part *part = (struct config_part *)m;
	struct config_gather *g = part->g;
	struct node_core *c = r->user;
	struct redis_settings *s = &c->redis->settings;
	bool bulk = false;

	if (g->set[LIVE_MAXCLIENTS] && g->stamp > s->stamps[LIVE_MAXCLIENTS]) {
		s->maxclients = g->want.maxclients;
		s->conn_limit = g->want.conn_limit;
		s->stamps[LIVE_MAXCLIENTS] = g->stamp;
	}
	if (g->set[LIVE_BULK] && g->stamp > s->stamps[LIVE_BULK]) {
		bulk = s->max_bulk != g->want.max_bulk;
		s->max_bulk = g->want.max_bulk;
		s->stamps[LIVE_BULK] = g->stamp;
	}
	if (g->set[LIVE_LOGLEVEL] && g->stamp > s->stamps[LIVE_LOGLEVEL]) {
		s->loglevel = g->want.loglevel;
		s->stamps[LIVE_LOGLEVEL] = g->stamp;
		if (r->id == 0) /* one process-wide level: set once */
			log_set_level(level_values[s->loglevel]);
	}
	if (g->set[LIVE_TIMEOUT] && g->stamp > s->stamps[LIVE_TIMEOUT]) {
		s->timeout_s = g->want.timeout_s;
		s->stamps[LIVE_TIMEOUT] = g->stamp;
		if (s->timeout_s)
			reactor_timer_arm(r, &c->redis->idle_sweep, SWEEP_US, idle_sweep, c);
		else
			reactor_timer_cancel(r, &c->redis->idle_sweep);
	}
	if (bulk) {
		/* This core's authenticated RESP connections check their next
		 * bulk header against the new limit, a command part-way
		 * received included (the others keep the limits before
		 * authentication until they authenticate). */
		for (struct conn *conn = c->conns; conn; conn = conn->next) {
			struct resp_limits limits;

			if (!conn->resp || !conn->redis || conn->closing || auth_needed(conn))
				continue;
			redis_parser_limits(conn, &limits);
			resp_parser_set_max_bulk(&conn->redis->parser, limits.max_bulk);
		}
	}
	part->msg.handle = on_set_back;
	reactor_send(r, g->origin, &part->msg);
}

static void config_set(struct conn *conn, const struct resp_command *cmd,
		       const char *params[PARAMS][2])
{
	struct reply *r = &conn->redis->scratch;
	unsigned cores = conn->core->node->cores;
	bool hit[PARAMS] = { false }, set[LIVE_COUNT] = { false };
	struct redis_settings want = conn->core->redis->settings;
	struct config_gather *g;
	struct redis_slot *slot;
	size_t i, k;
	bool any = false;

	if (cmd->argc % 2 != 0) {
		reply_error(conn, r, RESP_ERR_SYNTAX);
		redis_reply_now(conn);
		return;
	}
	/* Redis 7.0's checks and texts, all pairs before any is taken. */
	for (k = 2; k < cmd->argc; k += 2) {
		const struct resp_arg *name = &cmd->argv[k], *value = &cmd->argv[k + 1];
		int nl = (int)(name->len > 64 ? 64 : name->len);

		for (i = 0; i < PARAMS && !redis_arg_is(name, params[i][0]); i++)
			;
		if (i == PARAMS) {
			reply_errorf(conn, r, "ERR Unknown option or number of arguments for "
				     "CONFIG SET - '%.*s'", nl, (const char *)name->data);
			break;
		}
		if (hit[i]) {
			reply_errorf(conn, r, "ERR CONFIG SET failed (possibly related to "
				     "argument '%s') - duplicate parameter", params[i][0]);
			break;
		}
		hit[i] = true;
		if (i < LIVE_COUNT) {
			if (!check_live(conn, r, (enum live)i, value, &want))
				break;
			set[i] = any = true;
		} else if (!redis_arg_is(value, params[i][1]) ||
			   !strcmp(params[i][0], "databases")) {
			/* databases: immutable in Redis too, refused whatever the
			 * value; the others accept the value they have. */
			reply_errorf(conn, r, "ERR CONFIG SET failed (possibly related to "
				     "argument '%s') - can't set immutable config", params[i][0]);
			break;
		}
	}
	if (k < cmd->argc || !any) {
		if (k >= cmd->argc)
			reply_simple(conn, r, "OK");
		redis_reply_now(conn);
		return;
	}
	g = calloc(1, sizeof *g + cores * sizeof g->parts[0]);
	slot = g ? redis_slot_new(conn, RESP_CMD_CONFIG, 0) : NULL;
	if (!slot) {
		free(g);
		redis_out_of_memory(conn);
		return;
	}
	g->slot = slot;
	g->origin = conn->core->reactor->id;
	g->pending = cores;
	g->want = want;
	g->stamp = stamp_next(conn->core->node);
	memcpy(g->set, set, sizeof set);
	slot->pending = 1;
	for (unsigned c = 0; c < cores; c++) {
		g->parts[c].g = g;
		g->parts[c].msg.handle = on_set;
		reactor_send(conn->core->reactor, c, &g->parts[c].msg);
	}
}

void redis_cmd_config(struct conn *conn, const struct resp_command *cmd,
		       const struct resp_command_info *sub)
{
	struct node *n = conn->core->node;
	const struct redis_settings *s = &conn->core->redis->settings;
	struct reply *r = &conn->redis->scratch;
	char maxmem[32], port[16], maxval[32], maxclients[32], timeout[16];
	/* The live ones first, in enum live's order. */
	const char *params[PARAMS][2] = {
		{ "maxclients", maxclients },
		{ "proto-max-bulk-len", maxval },
		{ "loglevel", level_names[s->loglevel < LEVELS ? s->loglevel : 2] },
		{ "timeout", timeout },
		{ "save", "" },
		{ "appendonly", "yes" },
		{ "appendfsync", "always" },
		{ "databases", "1" },
		{ "maxmemory", maxmem },
		{ "port", port },
	};
	size_t i, k, matched = 0;
	bool hit[PARAMS] = { false };

	snprintf(maxmem, sizeof maxmem, "%" PRIu64, n->cfg.memtable_size * n->shards);
	snprintf(port, sizeof port, "%u", n->resp_port);
	snprintf(maxval, sizeof maxval, "%u", s->max_bulk);
	snprintf(maxclients, sizeof maxclients, "%" PRIu64, s->maxclients);
	snprintf(timeout, sizeof timeout, "%u", s->timeout_s);
	reply_reset(r);
	if (sub->id == RESP_CMD_CONFIG_RESETSTAT) {
		reply_simple(conn, r, "OK");
		redis_reply_now(conn);
		return;
	}
	if (sub->id == RESP_CMD_CONFIG_SET) {
		config_set(conn, cmd, params);
		return;
	}
	for (k = 2; k < cmd->argc; k++) {
		char pat[128];

		if (cmd->argv[k].len >= sizeof pat)
			continue;
		memcpy(pat, cmd->argv[k].data, cmd->argv[k].len);
		pat[cmd->argv[k].len] = '\0';
		for (i = 0; i < PARAMS; i++)
			if (!hit[i] && fnmatch(pat, params[i][0], FNM_CASEFOLD) == 0) {
				hit[i] = true;
				matched++;
			}
	}
	reply_map(conn, r, matched);
	for (i = 0; i < PARAMS; i++)
		if (hit[i]) {
			reply_str(conn, r, params[i][0]);
			reply_str(conn, r, params[i][1]);
		}
	redis_reply_now(conn);
}
