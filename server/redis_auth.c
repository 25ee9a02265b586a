/*
 * RESP authentication (ringkvd --users, server/auth.h): AUTH, HELLO with
 * its AUTH option, and the check every other command passes first, with
 * Redis 7.0's replies and error texts.
 *
 * Roles: read runs the commands Redis flags readonly, write those flagged
 * write too, admin everything; commands Redis flags admin (CONFIG, CLIENT
 * LIST, DEBUG) and FLUSHDB/FLUSHALL need admin, and are audited. A user
 * with a key prefix may name only keys starting with it (every key
 * argument, by the command's key positions), and may not run the commands
 * that read or write the keyspace without naming keys (SCAN, KEYS,
 * RANDOMKEY, DBSIZE): their answers would reach past the prefix. For the
 * same reason such a user's INFO leaves out the keyspace section (the
 * node's key count), and INFO keyspace asked by name is refused NOPERM:
 * counting only the prefix's keys would walk them all.
 */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "proto/resp.h"
#include "proto/resp_commands.h"
#include "server/audit.h"
#include "server/auth.h"
#include "server/conn.h"
#include "server/node.h"
#include "server/redis.h"
#include "server/redis_impl.h"

/* HELLO's answer: a map (an array of pairs in RESP2), in the protocol the
 * connection speaks from now on. */
static void hello_reply(struct conn *conn, struct reply *r)
{
	reply_map(conn, r, 7);
	reply_str(conn, r, "server");
	reply_str(conn, r, "ringkv");
	reply_str(conn, r, "version");
	reply_str(conn, r, RINGKV_VERSION);
	reply_str(conn, r, "proto");
	reply_int(conn, r, conn->redis->resp3 ? 3 : 2);
	reply_str(conn, r, "id");
	reply_int(conn, r, (int64_t)conn->redis->id);
	reply_str(conn, r, "mode");
	reply_str(conn, r, "standalone");
	reply_str(conn, r, "role");
	reply_str(conn, r, "master");
	reply_str(conn, r, "modules");
	reply_array(conn, r, 0);
}

/* What a HELLO that succeeds changes, as Redis 7.0 does once the client is
 * authenticated: the name (`name` NULL: kept), then the protocol (0: kept). */
static void hello_apply(struct conn *conn, const uint8_t *name, size_t name_len, unsigned proto)
{
	struct redis_conn *rc = conn->redis;

	if (name) {
		memcpy(rc->name, name, name_len);
		rc->name[name_len] = '\0';
		rc->has_name = name_len > 0;
	}
	if (proto)
		rc->resp3 = proto == 3;
}

/* An AUTH (or HELLO ... AUTH) was decided: its answer takes its slot. */
static void auth_done(void *owner, void *arg, bool ok)
{
	struct conn *conn = owner;
	struct redis_slot *slot = arg;
	struct reply *r = &conn->redis->scratch;

	reply_reset(r);
	if (!ok) {
		reply_error(conn, r, RESP_ERR_WRONGPASS);
	} else {
		struct resp_limits limits;

		/* Authenticated: the full limits from now on. */
		redis_parser_limits(conn, &limits);
		resp_parser_set_limits(&conn->redis->parser, &limits);
		if (slot->cmd == RESP_CMD_HELLO) {
			/* opts: the protocol asked, 0x100 when a name was given
			 * (slot->pattern, its length in slot->pattern_len). */
			hello_apply(conn, (slot->opts & 0x100) ? slot->pattern : NULL,
				    slot->pattern_len, slot->opts & 0xff);
			hello_reply(conn, r);
		}
		else
			reply_simple(conn, r, "OK");
	}
	slot->bytes = r->failed ? NULL : pool_alloc_large(redis_pool(conn), r->len ? r->len : 1);
	if (slot->bytes) {
		memcpy(slot->bytes, r->data, r->len);
		slot->len = r->len;
	} else {
		slot->oom = true; /* "ERR out of memory" in its place */
	}
	slot->pending = 0;
	redis_drain(conn);
}

/* Starts verifying user/pass for AUTH or HELLO (`id`); the answer comes later. */
static void start(struct conn *conn, enum resp_cmd_id id, const struct resp_arg *user,
		  const struct resp_arg *pass, const struct resp_arg *name, unsigned proto)
{
	static const struct resp_arg default_user = { .data = (const uint8_t *)"default", .len = 7 };
	struct redis_slot *slot = redis_slot_new(conn, id, 0);

	if (!slot) {
		redis_out_of_memory(conn);
		return;
	}
	slot->opts = proto;
	if (name) {
		slot->pattern = pool_alloc(redis_pool(conn), name->len ? name->len : 1);
		if (!slot->pattern) {
			slot->oom = true;
			redis_drain(conn);
			return;
		}
		memcpy(slot->pattern, name->data, name->len);
		slot->pattern_len = name->len;
		slot->opts |= 0x100;
	}
	slot->pending = 1;
	if (!user)
		user = &default_user;
	if (!auth_start(conn, user->data, user->len, pass->data, pass->len, "resp", auth_done,
			slot)) {
		slot->pending = 0;
		slot->oom = true;
		redis_drain(conn);
	}
}

/* Without --users, the one user (Redis's "default", with no password). */
static bool is_default_user(const struct resp_arg *user)
{
	return user->len == 7 && memcmp(user->data, "default", 7) == 0;
}

void redis_cmd_auth(struct conn *conn, const struct resp_command *cmd)
{
	struct reply *r = &conn->redis->scratch;

	reply_reset(r);
	if (cmd->argc > 3) {
		reply_error(conn, r, RESP_ERR_SYNTAX);
		redis_reply_now(conn);
		return;
	}
	if (!conn->core->node->users) {
		/* As Redis without a password or users set up: its one user,
		 * "default", takes any password. */
		if (cmd->argc == 2)
			reply_error(conn, r, RESP_ERR_AUTH_NO_PASSWORD);
		else if (is_default_user(&cmd->argv[1]))
			reply_simple(conn, r, "OK");
		else
			reply_error(conn, r, RESP_ERR_WRONGPASS);
		redis_reply_now(conn);
		return;
	}
	start(conn, RESP_CMD_AUTH, cmd->argc == 3 ? &cmd->argv[1] : NULL,
	      &cmd->argv[cmd->argc - 1], NULL, 0);
}

void redis_cmd_hello(struct conn *conn, const struct resp_command *cmd)
{
	struct redis_conn *rc = conn->redis;
	struct reply *r = &rc->scratch;
	const struct resp_arg *user = NULL, *pass = NULL, *name = NULL;
	int64_t proto = 0;

	reply_reset(r);
	if (cmd->argc >= 2) {
		if (resp_parse_int64(cmd->argv[1].data, cmd->argv[1].len, &proto) != 0) {
			reply_error(conn, r, "ERR Protocol version is not an integer or out of range");
			redis_reply_now(conn);
			return;
		}
		if (proto < 2 || proto > 3) {
			reply_error(conn, r, RESP_ERR_NOPROTO);
			redis_reply_now(conn);
			return;
		}
	}
	for (size_t i = 2; i < cmd->argc; i++) {
		size_t more = cmd->argc - i - 1;

		if (redis_arg_is(&cmd->argv[i], "AUTH") && more >= 2) {
			user = &cmd->argv[i + 1];
			pass = &cmd->argv[i + 2];
			i += 2;
		} else if (redis_arg_is(&cmd->argv[i], "SETNAME") && more >= 1) {
			bool ok;

			name = &cmd->argv[++i];
			ok = name->len < sizeof rc->name;
			for (uint32_t k = 0; ok && k < name->len; k++)
				ok = name->data[k] > ' ' && name->data[k] < 0x7f;
			if (!ok) {
				reply_error(conn, r, RESP_ERR_CLIENT_NAME);
				redis_reply_now(conn);
				return;
			}
		} else {
			reply_errorf(conn, r, "ERR Syntax error in HELLO option '%.*s'",
				     (int)(cmd->argv[i].len > 64 ? 64 : cmd->argv[i].len),
				     (const char *)cmd->argv[i].data);
			redis_reply_now(conn);
			return;
		}
	}
	if (pass && conn->core->node->users) {
		start(conn, RESP_CMD_HELLO, user, pass, name, (unsigned)proto);
		return;
	}
	if (pass && !is_default_user(user)) {
		reply_error(conn, r, RESP_ERR_WRONGPASS);
	} else if (conn->core->node->users && !auth_user(conn)) {
		reply_error(conn, r, RESP_ERR_HELLO_NOAUTH);
	} else {
		hello_apply(conn, name ? name->data : NULL, name ? name->len : 0, (unsigned)proto);
		hello_reply(conn, r);
	}
	redis_reply_now(conn);
}

/* The role a command needs. */
static enum users_role needed_role(const struct resp_command_info *ci)
{
	if ((ci->flags & RESP_CMDF_ADMIN) || ci->id == RESP_CMD_FLUSHDB ||
	    ci->id == RESP_CMD_FLUSHALL)
		return USERS_ROLE_ADMIN;
	if (ci->flags & RESP_CMDF_WRITE)
		return USERS_ROLE_WRITE;
	return USERS_ROLE_READ;
}

/* Whether every key argument of the command starts with the user's prefix. */
static bool keys_ok(const struct users_entry *user, const struct resp_command *cmd,
		    const struct resp_command_info *ci)
{
	long first = ci->first_key, last = ci->last_key, step = ci->key_step;

	if (ci->id == RESP_CMD_OBJECT)
		/* OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key: Redis's table
		 * gives the container no key position. */
		return cmd->argc < 3 || auth_key_ok(user, cmd->argv[2].data, cmd->argv[2].len);
	if (first <= 0)
		return true; /* no key (keyspace commands are refused before) */
	if (last < 0)
		last += (long)cmd->argc;
	if (step <= 0)
		step = 1;
	for (long i = first; i <= last && i < (long)cmd->argc; i += step)
		if (!auth_key_ok(user, cmd->argv[i].data, cmd->argv[i].len))
			return false;
	return true;
}

bool redis_auth_sees_keyspace(struct conn *conn)
{
	const struct users_entry *user;

	if (!conn->core->node->users)
		return true;
	user = auth_user(conn);
	return user && !user->has_prefix;
}

bool redis_auth_allows(struct conn *conn, const struct resp_command *cmd,
		       const struct resp_command_info *ci)
{
	struct node *n = conn->core->node;
	struct reply *r = &conn->redis->scratch;
	const struct resp_command_info *eff = ci;
	const struct users_entry *user;
	enum users_role need;
	char err[160];

	if (ci->subcommands && cmd->argc >= 2) {
		const struct resp_command_info *sub =
			resp_subcommand_lookup(ci, cmd->argv[1].data, cmd->argv[1].len);

		if (sub)
			eff = sub;
	}
	need = needed_role(eff);
	if (!n->users) {
		if (need == USERS_ROLE_ADMIN && n->audit_fd >= 0)
			audit_line(conn, "resp", NULL, eff->name, "allowed");
		return true;
	}
	if (ci->flags & RESP_CMDF_NO_AUTH)
		return true; /* AUTH, HELLO, QUIT */
	user = auth_user(conn);
	reply_reset(r);
	if (!user) {
		/* An admin command before authentication is audited too. */
		if (need == USERS_ROLE_ADMIN)
			audit_line(conn, "resp", NULL, eff->name, "denied: not authenticated");
		reply_error(conn, r, RESP_ERR_NOAUTH);
		redis_reply_now(conn);
		return false;
	}
	if (user->role < need || (user->has_prefix && eff->first_key <= 0 &&
				  (eff->flags & (RESP_CMDF_READONLY | RESP_CMDF_WRITE)))) {
		/* A keyspace command naming no key reaches past any prefix. */
		snprintf(err, sizeof err, "NOPERM this user has no permissions to run the '%s' command",
			 eff->name);
		reply_error(conn, r, err);
	} else if (user->has_prefix && eff->id == RESP_CMD_INFO && cmd->argc >= 2 &&
		   redis_arg_is(&cmd->argv[1], "keyspace")) {
		reply_error(conn, r, "NOPERM this user has no permissions to see the keyspace's "
			    "counts (its keys have a prefix)");
	} else if (user->has_prefix && !keys_ok(user, cmd, eff)) {
		reply_error(conn, r, RESP_ERR_NOPERM_KEY);
	} else {
		if (need == USERS_ROLE_ADMIN)
			audit_line(conn, "resp", user->name, eff->name, "allowed");
		return true;
	}
	if (need == USERS_ROLE_ADMIN)
		audit_line(conn, "resp", user->name, eff->name, "denied");
	redis_reply_now(conn);
	return false;
}
