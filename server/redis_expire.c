/*
 * The RESP door's expiry commands (issue #21): SET's EX/PX/EXAT/PXAT/
 * KEEPTTL (with NX/XX/GET), SETEX, PSETEX, GETEX, EXPIRE, PEXPIRE,
 * EXPIREAT, PEXPIREAT, PERSIST, TTL, PTTL, EXPIRETIME, PEXPIRETIME, with
 * Redis 7.0's argument order, replies and error texts.
 *
 * Deadlines are absolute: a relative time (EX, PX, EXPIRE ...) is turned
 * into Unix milliseconds here, on the node that receives the command, by
 * its clock, before anything is proposed; so every replica applies the
 * same deadline (shard/command.h, PUT_AT and EXPIRE_AT). TTL and friends
 * read the key's deadline with an ordinary linearizable GET (the request's
 * integer carries it back) and compute what is left by this node's clock
 * when the reply is formatted.
 */
#include <stdio.h>
#include <string.h>

#include "proto/resp.h"
#include "proto/resp_commands.h"
#include "ringkv.pb.h"
#include "server/conn.h"
#include "server/node.h"
#include "server/redis_impl.h"
#include "shard/command.h"
#include "shard/value_deadline.h"

/* How a time argument counts. */
enum time_kind { TIME_NONE, TIME_EX, TIME_PX, TIME_EXAT, TIME_PXAT };

static void answer_error(struct conn *conn, const char *text)
{
	struct reply *r = &conn->redis->scratch;

	reply_reset(r);
	reply_error(conn, r, text);
	redis_reply_now(conn);
}

static void answer_expire_time(struct conn *conn, const struct resp_command *cmd)
{
	const struct resp_command_info *ci =
		resp_command_lookup(cmd->argv[0].data, cmd->argv[0].len);
	char text[96];

	/* Redis names the command as its table does: in lower case */
	snprintf(text, sizeof text, "ERR invalid expire time in '%s' command",
		 ci ? ci->name : "set");
	answer_error(conn, text);
}

/*
 * SET's, SETEX's and GETEX's time (Redis's getExpireMillisecondsOrReply):
 * true with *deadline (Unix ms, > 0), or false with the error answered.
 */
static bool deadline_of(struct conn *conn, const struct resp_command *cmd,
			const struct resp_arg *arg, enum time_kind kind, uint64_t *deadline)
{
	int64_t v;

	if (resp_parse_int64(arg->data, arg->len, &v) != 0) {
		answer_error(conn, RESP_ERR_NOT_INTEGER);
		return false;
	}
	if (v <= 0 || ((kind == TIME_EX || kind == TIME_EXAT) && v > INT64_MAX / 1000)) {
		answer_expire_time(conn, cmd);
		return false;
	}
	if (kind == TIME_EX || kind == TIME_EXAT)
		v *= 1000;
	if (kind == TIME_EX || kind == TIME_PX) {
		int64_t now = (int64_t)value_deadline_now();

		if (v > INT64_MAX - now) {
			answer_expire_time(conn, cmd);
			return false;
		}
		v += now;
	}
	*deadline = (uint64_t)v;
	return true;
}

/* One of EX/PX/EXAT/PXAT, or TIME_NONE. */
static enum time_kind time_word(const struct resp_arg *a)
{
	if (redis_arg_is(a, "EX"))
		return TIME_EX;
	if (redis_arg_is(a, "PX"))
		return TIME_PX;
	if (redis_arg_is(a, "EXAT"))
		return TIME_EXAT;
	if (redis_arg_is(a, "PXAT"))
		return TIME_PXAT;
	return TIME_NONE;
}

#define OPT_KEEPTTL 0x100
#define OPT_PERSIST 0x200

/*
 * SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL] and GETEX
 * key [EX ..|PX ..|EXAT ..|PXAT ..|PERSIST] (Redis 7.0's
 * parseExtendedStringArgumentsOrReply): options from argv[first]; *opts
 * gets SET_NX/XX/GET, OPT_KEEPTTL, OPT_PERSIST, and *kind / *time the time
 * option. An option Redis refuses in that place: "ERR syntax error".
 */
static bool parse_options(struct conn *conn, const struct resp_command *cmd, size_t first,
			  bool set, unsigned *opts, enum time_kind *kind,
			  const struct resp_arg **time)
{
	*opts = 0;
	*kind = TIME_NONE;
	*time = NULL;
	for (size_t i = first; i < cmd->argc; i++) {
		const struct resp_arg *a = &cmd->argv[i];
		enum time_kind k = time_word(a);

		if (set && redis_arg_is(a, "NX") && !(*opts & SET_XX)) {
			*opts |= SET_NX;
		} else if (set && redis_arg_is(a, "XX") && !(*opts & SET_NX)) {
			*opts |= SET_XX;
		} else if (set && redis_arg_is(a, "GET")) {
			*opts |= SET_GET;
		} else if (set && redis_arg_is(a, "KEEPTTL") && *kind == TIME_NONE) {
			*opts |= OPT_KEEPTTL;
		} else if (!set && redis_arg_is(a, "PERSIST") && *kind == TIME_NONE) {
			*opts |= OPT_PERSIST;
		} else if (k != TIME_NONE && !(*opts & (OPT_KEEPTTL | OPT_PERSIST)) &&
			   (*kind == TIME_NONE || *kind == k) && i + 1 < cmd->argc) {
			*kind = k;
			*time = &cmd->argv[++i];
		} else {
			answer_error(conn, RESP_ERR_SYNTAX);
			return false;
		}
	}
	return true;
}

void redis_cmd_set(struct conn *conn, const struct resp_command *cmd)
{
	const struct resp_arg *time;
	enum time_kind kind;
	uint64_t deadline = 0;
	unsigned opts, flags = 0;
	enum kv_op op = KV_PUT;

	if (!parse_options(conn, cmd, 3, true, &opts, &kind, &time))
		return;
	if (time && !deadline_of(conn, cmd, time, kind, &deadline))
		return;
	if (opts & SET_NX)
		flags |= COMMAND_SET_NX;
	if (opts & SET_XX)
		flags |= COMMAND_SET_XX;
	if (opts & OPT_KEEPTTL)
		flags |= COMMAND_SET_KEEPTTL;
	if (deadline || (opts & OPT_KEEPTTL))
		op = KV_PUT_AT;
	else if (opts & SET_NX)
		op = KV_PUT_NX;
	else if (opts & SET_XX)
		op = KV_PUT_XX;
	redis_single_key(conn, cmd, RESP_CMD_SET, op, &cmd->argv[2],
			 (opts & SET_GET) | flags << REDIS_OPTS_FLAGS_SHIFT, (int64_t)deadline, NULL);
}

/* SETEX key seconds value, PSETEX key milliseconds value. */
static void cmd_setex(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id)
{
	uint64_t deadline;

	if (!deadline_of(conn, cmd, &cmd->argv[2], id == RESP_CMD_SETEX ? TIME_EX : TIME_PX,
			 &deadline))
		return;
	redis_single_key(conn, cmd, id, KV_PUT_AT, &cmd->argv[3], 0, (int64_t)deadline, NULL);
}

static void cmd_getex(struct conn *conn, const struct resp_command *cmd)
{
	const struct resp_arg *time;
	enum time_kind kind;
	uint64_t deadline = 0;
	unsigned opts;

	if (!parse_options(conn, cmd, 2, false, &opts, &kind, &time))
		return;
	if (time && !deadline_of(conn, cmd, time, kind, &deadline))
		return;
	if (opts & OPT_PERSIST)
		redis_single_key(conn, cmd, RESP_CMD_GETEX, KV_PERSIST, NULL, SET_GET, 0, NULL);
	else if (deadline)
		/* A deadline already past deletes the key and answers its value,
		 * as Redis does. */
		redis_single_key(conn, cmd, RESP_CMD_GETEX, KV_EXPIRE_AT, NULL, SET_GET,
				 (int64_t)deadline, NULL);
	else
		redis_single_key(conn, cmd, RESP_CMD_GETEX, KV_GET, NULL, 0, 0, NULL);
}

/* EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT key time [NX|XX|GT|LT] (Redis 7.0's
 * expireGenericCommand: options, then the number, then the key). */
static void cmd_expire(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id)
{
	bool seconds = id == RESP_CMD_EXPIRE || id == RESP_CMD_EXPIREAT;
	int64_t base = id == RESP_CMD_EXPIRE || id == RESP_CMD_PEXPIRE ?
			       (int64_t)value_deadline_now() : 0;
	unsigned flags = 0;
	int64_t when;

	for (size_t i = 3; i < cmd->argc; i++) {
		const struct resp_arg *a = &cmd->argv[i];
		char text[96];

		if (redis_arg_is(a, "NX")) {
			flags |= COMMAND_EXPIRE_NX;
		} else if (redis_arg_is(a, "XX")) {
			flags |= COMMAND_EXPIRE_XX;
		} else if (redis_arg_is(a, "GT")) {
			flags |= COMMAND_EXPIRE_GT;
		} else if (redis_arg_is(a, "LT")) {
			flags |= COMMAND_EXPIRE_LT;
		} else {
			snprintf(text, sizeof text, "ERR Unsupported option %.*s",
				 (int)(a->len < 64 ? a->len : 64), (const char *)a->data);
			answer_error(conn, text);
			return;
		}
	}
	if ((flags & COMMAND_EXPIRE_NX) && (flags & ~COMMAND_EXPIRE_NX)) {
		answer_error(conn,
			     "ERR NX and XX, GT or LT options at the same time are not compatible");
		return;
	}
	if ((flags & COMMAND_EXPIRE_GT) && (flags & COMMAND_EXPIRE_LT)) {
		answer_error(conn, "ERR GT and LT options at the same time are not compatible");
		return;
	}
	if (resp_parse_int64(cmd->argv[2].data, cmd->argv[2].len, &when) != 0) {
		answer_error(conn, RESP_ERR_NOT_INTEGER);
		return;
	}
	if (seconds) {
		if (when > INT64_MAX / 1000 || when < INT64_MIN / 1000) {
			answer_expire_time(conn, cmd);
			return;
		}
		when *= 1000;
	}
	if (when > INT64_MAX - base) {
		answer_expire_time(conn, cmd);
		return;
	}
	when += base;
	/* A time at or before now deletes the key (at apply, by the entry's
	 * time); a log deadline is never 0, and 1 is as past as any. */
	if (when < 1)
		when = 1;
	redis_single_key(conn, cmd, id, KV_EXPIRE_AT, NULL, flags << REDIS_OPTS_FLAGS_SHIFT,
			 when, NULL);
}

bool redis_cmd_expire(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id)
{
	switch (id) {
	case RESP_CMD_SETEX:
	case RESP_CMD_PSETEX:
		cmd_setex(conn, cmd, id);
		return true;
	case RESP_CMD_GETEX:
		cmd_getex(conn, cmd);
		return true;
	case RESP_CMD_EXPIRE:
	case RESP_CMD_PEXPIRE:
	case RESP_CMD_EXPIREAT:
	case RESP_CMD_PEXPIREAT:
		cmd_expire(conn, cmd, id);
		return true;
	case RESP_CMD_PERSIST:
		redis_single_key(conn, cmd, id, KV_PERSIST, NULL, 0, 0, NULL);
		return true;
	case RESP_CMD_TTL:
	case RESP_CMD_PTTL:
	case RESP_CMD_EXPIRETIME:
	case RESP_CMD_PEXPIRETIME:
		redis_single_key(conn, cmd, id, KV_GET, NULL, 0, 0, NULL);
		return true;
	default:
		return false;
	}
}

bool redis_is_ttl_read(enum resp_cmd_id id)
{
	return id == RESP_CMD_TTL || id == RESP_CMD_PTTL || id == RESP_CMD_EXPIRETIME ||
	       id == RESP_CMD_PEXPIRETIME || id == RESP_CMD_GETEX;
}

bool redis_format_expire(struct conn *conn, struct reply *r, enum resp_cmd_id id,
			 const struct kv_req *req)
{
	bool found = req->status == ringkv_Status_OK;
	uint64_t deadline = found ? (uint64_t)req->integer : 0;
	int64_t left;
	size_t len;

	switch (id) {
	case RESP_CMD_SETEX:
	case RESP_CMD_PSETEX:
		reply_simple(conn, r, "OK");
		return true;
	case RESP_CMD_GETEX:
		if (req->op == KV_GET ? found : req->existed) {
			const uint8_t *v = kv_answer(req, &len);
			reply_bulk(conn, r, v, len);
		} else {
			reply_null(conn, r);
		}
		return true;
	case RESP_CMD_EXPIRE:
	case RESP_CMD_PEXPIRE:
	case RESP_CMD_EXPIREAT:
	case RESP_CMD_PEXPIREAT:
	case RESP_CMD_PERSIST:
		reply_int(conn, r, req->applied);
		return true;
	case RESP_CMD_TTL:
	case RESP_CMD_PTTL:
		if (!found || !deadline) {
			reply_int(conn, r, found ? -1 : -2);
			return true;
		}
		left = (int64_t)(deadline - value_deadline_now());
		if (left < 0 || deadline < value_deadline_now())
			left = 0;
		reply_int(conn, r, id == RESP_CMD_PTTL ? left : (left + 500) / 1000);
		return true;
	case RESP_CMD_EXPIRETIME:
	case RESP_CMD_PEXPIRETIME:
		if (!found || !deadline)
			reply_int(conn, r, found ? -1 : -2);
		else
			reply_int(conn, r, (int64_t)(id == RESP_CMD_PEXPIRETIME ? deadline
										: deadline / 1000));
		return true;
	default:
		return false;
	}
}
