/*
 * Multi-key writes of the RESP door: MSETNX, RENAME, RENAMENX, COPY.
 *
 * Each must be atomic, so each is one state-machine command on one shard
 * (shard/command.h ops 11-15, applied by shard/shard_multi.c on every
 * replica alike). Keys on different shards cannot be, and are refused as
 * Redis Cluster refuses keys in different slots:
 * "CROSSSLOT Keys in request don't hash to the same slot". A hash tag
 * ({user1}.a, {user1}.b) puts keys on one shard (shard/route.h). The test
 * is "same shard", slightly looser than Redis's "same slot": keys of two
 * slots of one shard are accepted.
 */
#include <string.h>
#include <strings.h>

#include "core/errors.h"
#include "proto/resp.h"
#include "ringkv.pb.h"
#include "server/conn.h"
#include "server/node.h"
#include "server/redis_impl.h"
#include "shard/command.h"

#define ERR_CROSSSLOT "CROSSSLOT Keys in request don't hash to the same slot"

static void answer(struct conn *conn, const char *text)
{
	struct reply *r = &conn->redis->scratch;

	reply_reset(r);
	reply_error(conn, r, text);
	redis_reply_now(conn);
}

/* Every key within --max-key; else the error is answered. */
static bool keys_ok(struct conn *conn, const struct resp_command *cmd, size_t first, size_t step)
{
	uint32_t max = conn->core->node->cfg.max_key;

	for (size_t i = first; i < cmd->argc; i += step) {
		if (cmd->argv[i].len > max) {
			struct reply *r = &conn->redis->scratch;

			reply_reset(r);
			reply_errorf(conn, r, "ERR key too long (%u bytes, the limit is %u)",
				     cmd->argv[i].len, max);
			redis_reply_now(conn);
			return false;
		}
	}
	return true;
}

/* The one shard of argv[first], argv[first + step], ...; false (CROSSSLOT
 * answered) when they are not all on one. */
static bool one_shard(struct conn *conn, const struct resp_command *cmd, size_t first, size_t step,
		      size_t last, uint32_t *shard)
{
	*shard = kv_shard_of(conn->core, cmd->argv[first].data, cmd->argv[first].len);
	for (size_t i = first + step; i <= last; i += step) {
		if (kv_shard_of(conn->core, cmd->argv[i].data, cmd->argv[i].len) != *shard) {
			answer(conn, ERR_CROSSSLOT);
			return false;
		}
	}
	return true;
}

/* Sends one request of `op` to `shard`: the key (none for MSETNX), then
 * the value, or, given `pairs` (MSETNX's argv), the pairs packed. */
static void send_one(struct conn *conn, enum resp_cmd_id id, enum kv_op op, uint32_t shard,
		     const struct resp_arg *key, const struct resp_arg *value,
		     const struct resp_command *pairs)
{
	struct redis_slot *slot = redis_slot_new(conn, id, 1);
	uint32_t key_len = key ? key->len : 0, value_len = 0;
	struct kv_req *req;

	if (!slot) {
		redis_out_of_memory(conn);
		return;
	}
	if (pairs) {
		for (size_t i = 1; i + 1 < pairs->argc; i += 2)
			value_len += (uint32_t)command_pair_size(pairs->argv[i].len,
								 pairs->argv[i + 1].len);
	} else {
		value_len = value->len;
	}
	slot->pending = 1;
	req = redis_part_new(slot, 0, key_len + value_len);
	if (!req)
		return;
	req->owner = conn;
	req->op = (uint8_t)op;
	req->shard = shard;
	req->key_len = key_len;
	if (key_len)
		memcpy(req->data, key->data, key_len);
	if (pairs) {
		uint8_t *p = req->data + key_len;

		for (size_t i = 1; i + 1 < pairs->argc; i += 2)
			p = command_pair_put(p, pairs->argv[i].data, pairs->argv[i].len,
					     pairs->argv[i + 1].data, pairs->argv[i + 1].len);
	} else if (value_len) {
		memcpy(req->data + key_len, value->data, value_len);
	}
	req->value_len = value_len;
	redis_send_part(slot, req);
	slot->pending--;
	redis_drain(conn);
}

static void cmd_msetnx(struct conn *conn, const struct resp_command *cmd)
{
	uint64_t bytes = 0;
	uint32_t shard;

	if (!keys_ok(conn, cmd, 1, 2) || !one_shard(conn, cmd, 1, 2, cmd->argc - 2, &shard))
		return;
	for (size_t i = 1; i + 1 < cmd->argc; i += 2)
		bytes += command_pair_size(cmd->argv[i].len, cmd->argv[i + 1].len);
	/* One log entry holds them all: bounded like one value. */
	if (bytes > redis_max_value(conn->core)) {
		struct reply *r = &conn->redis->scratch;

		reply_reset(r);
		reply_errorf(conn, r, "ERR MSETNX keys and values exceed the maximum allowed size "
			     "(%u bytes)", redis_max_value(conn->core));
		redis_reply_now(conn);
		return;
	}
	send_one(conn, RESP_CMD_MSETNX, KV_MSETNX, shard, NULL, NULL, cmd);
}

static void cmd_rename(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id)
{
	uint32_t shard;

	if (!keys_ok(conn, cmd, 1, 1) || !one_shard(conn, cmd, 1, 1, 2, &shard))
		return;
	send_one(conn, id, id == RESP_CMD_RENAME ? KV_RENAME : KV_RENAMENX, shard, &cmd->argv[1],
		 &cmd->argv[2], NULL);
}

/* COPY source destination [DB destination-db] [REPLACE], as Redis 7.0
 * checks it; ringkv has database 0 only. */
static void cmd_copy(struct conn *conn, const struct resp_command *cmd)
{
	bool replace = false;
	uint32_t shard;

	for (size_t i = 3; i < cmd->argc; i++) {
		int64_t db;

		if (redis_arg_is(&cmd->argv[i], "REPLACE")) {
			replace = true;
		} else if (redis_arg_is(&cmd->argv[i], "DB") && i + 1 < cmd->argc) {
			if (resp_parse_int64(cmd->argv[i + 1].data, cmd->argv[i + 1].len, &db) != 0) {
				answer(conn, RESP_ERR_NOT_INTEGER);
				return;
			}
			if (db != 0) { /* as SELECT: ringkv has database 0 only */
				answer(conn, RESP_ERR_DB_INDEX);
				return;
			}
			i++;
		} else {
			answer(conn, RESP_ERR_SYNTAX);
			return;
		}
	}
	if (cmd->argv[1].len == cmd->argv[2].len &&
	    !memcmp(cmd->argv[1].data, cmd->argv[2].data, cmd->argv[1].len)) {
		answer(conn, "ERR source and destination objects are the same");
		return;
	}
	if (!keys_ok(conn, cmd, 1, 1) || !one_shard(conn, cmd, 1, 1, 2, &shard))
		return;
	send_one(conn, RESP_CMD_COPY, replace ? KV_COPY_REPLACE : KV_COPY, shard, &cmd->argv[1],
		 &cmd->argv[2], NULL);
}

bool redis_cmd_multi(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id)
{
	switch (id) {
	case RESP_CMD_MSETNX:
		cmd_msetnx(conn, cmd);
		return true;
	case RESP_CMD_RENAME:
	case RESP_CMD_RENAMENX:
		cmd_rename(conn, cmd, id);
		return true;
	case RESP_CMD_COPY:
		cmd_copy(conn, cmd);
		return true;
	default:
		return false;
	}
}

void redis_format_multi(struct conn *conn, struct reply *r, enum resp_cmd_id id,
		       const struct kv_req *req)
{
	if (req->result == RKV_ENOTFOUND)
		reply_error(conn, r, "ERR no such key");
	else if (req->result)
		reply_error(conn, r, "ERR internal error: the command was refused");
	else if (id == RESP_CMD_RENAME)
		reply_simple(conn, r, "OK");
	else
		reply_int(conn, r, req->applied);
}
