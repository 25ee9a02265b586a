/*
 * CLIENT LIST and CLIENT KILL over every core's connections.
 *
 * A node's RESP connections live on its cores, each in its own core's list,
 * touched only by that core. So the command asks every core by message
 * (reactor_send, as core/metrics.c's scrape does): each core formats the
 * lines of its own connections (LIST) or drops those the filters match
 * (KILL), on its own thread, and sends its part back; the asking
 * connection's slot waits for all of them like a request of several parts,
 * so its reply keeps its place among the connection's pipelined replies.
 *
 * The connection that asks is never dropped by its own KILL (its core only
 * marks it): it gets its answer, then closes, as Redis closes a client that
 * killed itself after replying.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/reactor.h"
#include "proto/resp.h"
#include "server/auth.h"
#include "server/conn.h"
#include "server/node.h"
#include "server/redis_impl.h"
#include "server/users.h"

#define ADDR_TEXT 64 /* "[ipv6]:port" and NUL */

struct client_gather;

struct client_part {
	struct reactor_msg msg;       /* first */
	struct client_gather *g;
	char *text;                   /* LIST: this core's lines (malloc), or NULL */
	size_t len;
	uint64_t killed;              /* KILL: connections this core dropped */
	bool failed;                  /* out of memory formatting the lines */
};

struct client_gather {
	struct redis_slot *slot;      /* the asking connection's */
	unsigned origin;
	unsigned pending;
	bool kill;
	/* LIST ID ... / KILL's filters (zero: not given) */
	uint64_t *ids;
	size_t n_ids;
	char addr[ADDR_TEXT];
	char laddr[ADDR_TEXT];
	char user[USERS_NAME_MAX + 1];
	bool by_user;
	bool skipme;                  /* KILL: leave the asking connection alone */
	bool old_form;                /* CLIENT KILL addr:port: +OK or an error */
	uint64_t self;                /* the asking connection's id */
	bool kill_self;               /* its own KILL matched it */
	struct client_part parts[];
};

static void format_addr(const struct sockaddr_storage *ss, char *out)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
		snprintf(out, ADDR_TEXT, "%s:%u", ip, ntohs(a->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
		snprintf(out, ADDR_TEXT, "%s:%u", ip, ntohs(a->sin6_port));
	} else {
		snprintf(out, ADDR_TEXT, "?:0");
	}
}

/* The peer's and the local address of a connection's socket, as Redis
 * writes them ("127.0.0.1:50188"). */
static void conn_addrs(const struct conn *conn, char *addr, char *laddr)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	memset(&ss, 0, sizeof ss);
	if (getpeername(conn->fd, (struct sockaddr *)&ss, &len) != 0)
		ss.ss_family = AF_UNSPEC;
	format_addr(&ss, addr);
	len = sizeof ss;
	memset(&ss, 0, sizeof ss);
	if (getsockname(conn->fd, (struct sockaddr *)&ss, &len) != 0)
		ss.ss_family = AF_UNSPEC;
	format_addr(&ss, laddr);
}

static const char *conn_user(struct conn *conn)
{
	const struct users_entry *u = conn->core->node->users ? auth_user(conn) : NULL;

	return u ? u->name : "default";
}

/* One line of CLIENT LIST / CLIENT INFO: Redis's fields that ringkv knows,
 * in Redis's order, NUL-terminated. Returns its length. */
size_t redis_client_line(struct conn *conn, char *buf, size_t cap)
{
	struct redis_conn *rc = conn->redis;
	char addr[ADDR_TEXT], laddr[ADDR_TEXT];
	int n;

	conn_addrs(conn, addr, laddr);
	n = snprintf(buf, cap, "id=%" PRIu64 " addr=%s laddr=%s fd=%d name=%s age=%lld "
		     "idle=%llu flags=N db=0 user=%s resp=%d\n",
		     rc->id, addr, laddr, conn->fd, rc->has_name ? rc->name : "",
		     (long long)(time(NULL) - rc->created),
		     (unsigned long long)((conn->core->reactor->now_us - rc->last_us) / 1000000u),
		     conn_user(conn), rc->resp3 ? 3 : 2);
	return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

static bool matches(const struct client_gather *g, struct conn *conn)
{
	char addr[ADDR_TEXT], laddr[ADDR_TEXT];
	bool id_ok = g->n_ids == 0;

	for (size_t i = 0; i < g->n_ids && !id_ok; i++)
		id_ok = g->ids[i] == conn->redis->id;
	if (!id_ok || (g->kill && g->skipme && conn->redis->id == g->self))
		return false;
	if (g->by_user && strcmp(g->user, conn_user(conn)) != 0)
		return false;
	if (g->addr[0] || g->laddr[0]) {
		conn_addrs(conn, addr, laddr);
		if ((g->addr[0] && strcmp(g->addr, addr) != 0) ||
		    (g->laddr[0] && strcmp(g->laddr, laddr) != 0))
			return false;
	}
	return true;
}

static void on_part_back(struct reactor *r, struct reactor_msg *m);

/* On each core: its part of the answer. */
static void on_part(struct reactor *r, struct reactor_msg *m)
{
	struct client_part *part = (struct client_part *)m;
	struct client_gather *g = part->g;
	struct node_core *c = r->user;
	struct conn *conn, *next;
	size_t cap = 0;

	for (conn = c->conns; conn; conn = next) {
		char line[512];
		size_t n;

		next = conn->next;
		if (!conn->resp || !conn->redis || conn->closing || !matches(g, conn))
			continue;
		if (g->kill) {
			if (conn->redis->id == g->self)
				g->kill_self = true; /* its own core answers, then closes it */
			else
				conn_drop(conn);
			part->killed++;
			continue;
		}
		n = redis_client_line(conn, line, sizeof line);
		if (part->len + n > cap) {
			char *more;

			cap = cap ? 2 * cap : 4096;
			while (cap < part->len + n)
				cap *= 2;
			more = realloc(part->text, cap);
			if (!more) {
				part->failed = true;
				break;
			}
			part->text = more;
		}
		memcpy(part->text + part->len, line, n);
		part->len += n;
	}
	part->msg.handle = on_part_back;
	reactor_send(r, g->origin, &part->msg);
}

static void gather_free(struct client_gather *g, unsigned cores)
{
	for (unsigned k = 0; k < cores; k++)
		free(g->parts[k].text);
	free(g->ids);
	free(g);
}

/* On the asking core: a part is home; the last one makes the reply. */
static void on_part_back(struct reactor *r, struct reactor_msg *m)
{
	struct client_part *part = (struct client_part *)m;
	struct client_gather *g = part->g;
	struct redis_slot *slot = g->slot;
	struct conn *conn = slot->conn;
	struct reply *rep = &conn->redis->scratch;
	unsigned cores = conn->core->node->cores;
	uint64_t killed = 0;
	size_t total = 0;
	bool failed = false;

	(void)r;
	if (--g->pending)
		return;
	reply_reset(rep);
	for (unsigned k = 0; k < cores; k++) {
		killed += g->parts[k].killed;
		total += g->parts[k].len;
		failed |= g->parts[k].failed;
	}
	if (failed) {
		reply_error(conn, rep, "ERR out of memory");
	} else if (g->kill && g->old_form) {
		if (killed)
			reply_simple(conn, rep, "OK");
		else
			reply_error(conn, rep, "ERR No such client");
	} else if (g->kill) {
		reply_int(conn, rep, (int64_t)killed);
	} else {
		/* The cores' lines, in core order, as one string. */
		char *all = malloc(total ? total : 1);
		size_t at = 0;

		if (all) {
			for (unsigned k = 0; k < cores; k++) {
				if (g->parts[k].len)
					memcpy(all + at, g->parts[k].text, g->parts[k].len);
				at += g->parts[k].len;
			}
			reply_verbatim(conn, rep, all, total);
			free(all);
		} else {
			reply_error(conn, rep, "ERR out of memory");
		}
	}
	if (g->kill_self)
		conn_close_after_reply(conn);
	gather_free(g, cores);
	redis_slot_answer(conn, slot);
}

void redis_slot_answer(struct conn *conn, struct redis_slot *slot)
{
	struct reply *rep = &conn->redis->scratch;

	slot->bytes = rep->failed ? NULL : pool_alloc_large(redis_pool(conn), rep->len);
	if (slot->bytes) {
		memcpy(slot->bytes, rep->data, rep->len);
		slot->len = rep->len;
	} else {
		slot->oom = true;
	}
	slot->pending = 0;
	redis_drain(conn);
}

static struct client_gather *gather_new(struct conn *conn)
{
	unsigned cores = conn->core->node->cores;
	struct client_gather *g = calloc(1, sizeof *g + cores * sizeof g->parts[0]);

	if (!g)
		return NULL;
	g->origin = conn->core->reactor->id;
	g->self = conn->redis->id;
	return g;
}

/* Sends the gather to every core; its slot waits. */
static void gather_start(struct conn *conn, struct client_gather *g)
{
	unsigned cores = conn->core->node->cores;
	struct redis_slot *slot = redis_slot_new(conn, RESP_CMD_CLIENT, 0);

	if (!slot) {
		gather_free(g, cores);
		redis_out_of_memory(conn);
		return;
	}
	g->slot = slot;
	g->pending = cores;
	slot->pending = 1;
	for (unsigned k = 0; k < cores; k++) {
		g->parts[k].g = g;
		g->parts[k].msg.handle = on_part;
		reactor_send(conn->core->reactor, k, &g->parts[k].msg);
	}
}

/* An id argument of LIST ID / KILL ID: Redis's checks. */
static bool parse_id(const struct resp_arg *a, uint64_t *id)
{
	int64_t v;

	if (resp_parse_int64(a->data, a->len, &v) != 0 || v <= 0)
		return false;
	*id = (uint64_t)v;
	return true;
}

static bool copy_text(const struct resp_arg *a, char *out, size_t cap)
{
	if (a->len >= cap)
		return false;
	memcpy(out, a->data, a->len);
	out[a->len] = '\0';
	return true;
}

/* TYPE's argument: whether ringkv can have such clients (only normal
 * ones); false with an error answered for an unknown type. */
static bool client_type(struct conn *conn, const struct resp_arg *t, bool *none)
{
	if (redis_arg_is(t, "master") || redis_arg_is(t, "replica") ||
	    redis_arg_is(t, "slave") || redis_arg_is(t, "pubsub")) {
		*none = true;
		return true;
	}
	if (redis_arg_is(t, "normal"))
		return true;
	reply_errorf(conn, &conn->redis->scratch, "ERR Unknown client type '%.*s'",
		     (int)(t->len > 64 ? 64 : t->len), (const char *)t->data);
	return false;
}

/*
 * CLIENT LIST [TYPE normal|master|replica|pubsub] | [ID id [id ...]] into
 * `g`: true to gather, false when answered already (an error, or nothing
 * can match).
 */
static bool parse_list(struct conn *conn, const struct resp_command *cmd,
		       struct client_gather *g)
{
	struct reply *r = &conn->redis->scratch;
	bool none = false;

	if (cmd->argc == 4 && redis_arg_is(&cmd->argv[2], "TYPE")) {
		if (!client_type(conn, &cmd->argv[3], &none))
			return false;
	} else if (cmd->argc > 3 && redis_arg_is(&cmd->argv[2], "ID")) {
		g->ids = calloc(cmd->argc - 3, sizeof *g->ids);
		if (!g->ids) {
			reply_error(conn, r, "ERR out of memory");
			return false;
		}
		for (size_t i = 3; i < cmd->argc; i++) {
			int64_t v;

			if (resp_parse_int64(cmd->argv[i].data, cmd->argv[i].len, &v) != 0) {
				reply_error(conn, r, "ERR Invalid client ID");
				return false;
			}
			g->ids[g->n_ids++] = v > 0 ? (uint64_t)v : UINT64_MAX; /* none has it */
		}
	} else if (cmd->argc != 2) {
		reply_error(conn, r, RESP_ERR_SYNTAX);
		return false;
	}
	if (none)
		reply_verbatim(conn, r, "", 0);
	return !none;
}

/*
 * CLIENT KILL addr:port, or CLIENT KILL with filters ID, TYPE, USER, ADDR,
 * LADDR, SKIPME (Redis 7.0's; every filter given must match).
 */
static bool parse_kill(struct conn *conn, const struct resp_command *cmd,
		       struct client_gather *g)
{
	struct reply *r = &conn->redis->scratch;
	bool none = false;

	g->skipme = true;
	if (cmd->argc == 3) {
		g->old_form = true;
		g->skipme = false;
		if (!copy_text(&cmd->argv[2], g->addr, sizeof g->addr)) {
			reply_error(conn, r, "ERR No such client");
			return false;
		}
		return true;
	}
	/* Options in order, the first bad one answered, as Redis 7.0. */
	for (size_t i = 2; i < cmd->argc; i += 2) {
		const struct resp_arg *k = &cmd->argv[i], *v = &cmd->argv[i + 1];

		if (i + 1 >= cmd->argc) {
			reply_error(conn, r, RESP_ERR_SYNTAX);
			return false;
		}
		if (redis_arg_is(k, "ID")) {
			uint64_t id;

			if (!parse_id(v, &id)) {
				reply_error(conn, r, "ERR client-id should be greater than 0");
				return false;
			}
			free(g->ids);
			g->ids = malloc(sizeof *g->ids);
			if (!g->ids) {
				reply_error(conn, r, "ERR out of memory");
				return false;
			}
			g->ids[0] = id;
			g->n_ids = 1;
		} else if (redis_arg_is(k, "TYPE")) {
			if (!client_type(conn, v, &none))
				return false;
		} else if (redis_arg_is(k, "USER")) {
			/* With --users a name no user has matches nothing; without,
			 * every connection is "default" and another name is refused. */
			if (!copy_text(v, g->user, sizeof g->user) ||
			    (!conn->core->node->users && strcmp(g->user, "default") != 0)) {
				reply_errorf(conn, r, "ERR No such user '%.*s'",
					     (int)(v->len > 64 ? 64 : v->len), (const char *)v->data);
				return false;
			}
			g->by_user = true;
		} else if (redis_arg_is(k, "ADDR") || redis_arg_is(k, "LADDR")) {
			char *out = redis_arg_is(k, "ADDR") ? g->addr : g->laddr;

			if (!copy_text(v, out, ADDR_TEXT))
				none = true; /* longer than any address */
		} else if (redis_arg_is(k, "SKIPME")) {
			if (redis_arg_is(v, "yes")) {
				g->skipme = true;
			} else if (redis_arg_is(v, "no")) {
				g->skipme = false;
			} else {
				reply_error(conn, r, RESP_ERR_SYNTAX);
				return false;
			}
		} else {
			reply_error(conn, r, RESP_ERR_SYNTAX);
			return false;
		}
	}
	if (none)
		reply_int(conn, r, 0);
	return !none;
}

void redis_client_gather(struct conn *conn, const struct resp_command *cmd, bool kill)
{
	struct client_gather *g = gather_new(conn);

	reply_reset(&conn->redis->scratch);
	if (!g) {
		redis_out_of_memory(conn);
		return;
	}
	g->kill = kill;
	if (kill ? parse_kill(conn, cmd, g) : parse_list(conn, cmd, g)) {
		gather_start(conn, g);
		return;
	}
	gather_free(g, conn->core->node->cores);
	redis_reply_now(conn);
}
