/* Server commands of the RESP front door: INFO, DBSIZE, HELLO, COMMAND,
 * CONFIG, CLIENT. */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/le.h"
#include "core/log.h"
#include "ringkv.pb.h"
#include "server/conn.h"
#include "server/node.h"
#include "server/redis.h"
#include "server/redis_impl.h"

void redis_format_stats(struct conn *conn, struct redis_slot *slot, struct kv_core_stats *sum)
{
	uint64_t counted = 0;
	bool counts = false, count_failed = false;
	uint32_t i;

	memset(sum, 0, sizeof *sum);
	for (i = 0; i < slot->parts; i++) {
		struct kv_core_stats st;
		size_t len;
		const uint8_t *p;

		if (!slot->reqs[i])
			continue;
		if (slot->reqs[i]->op == KV_COUNT) {
			/* A shard's keys as its leader has them (see
			 * redis_all_cores). */
			counts = true;
			if (slot->reqs[i]->status == ringkv_Status_OK)
				counted += (uint64_t)slot->reqs[i]->integer;
			else
				count_failed = true;
			continue;
		}
		p = kv_answer(slot->reqs[i], &len);
		if (len != sizeof st)
			continue;
		memcpy(&st, p, sizeof st);
		sum->live_keys += st.live_keys;
		sum->shards += st.shards;
		sum->connections += st.connections;
		sum->requests += st.requests;
		sum->forwarded += st.forwarded;
		sum->writes += st.writes;
		sum->wal_bytes += st.wal_bytes;
		sum->batches += st.batches;
		sum->fsyncs += st.fsyncs;
		sum->memtable_used += st.memtable_used;
		sum->memtable_capacity += st.memtable_capacity;
		sum->damaged_tables += st.damaged_tables;
		sum->writes_refused += st.writes_refused;
	}
	/* The cluster's keys when every shard answered; else this node's
	 * replicas' (a follower's may lag, a node holds only its shards). */
	if (counts && !count_failed)
		sum->live_keys = counted;
}

static bool section_wanted(const char *section, const char *name)
{
	return !section[0] || !strcasecmp(section, name) || !strcasecmp(section, "all") ||
	       !strcasecmp(section, "everything") || !strcasecmp(section, "default");
}

/* The keys with a deadline (not past) of every shard, as its leader
 * counted them with DBSIZE's figure; 0 when a shard did not answer. */
static uint64_t count_expires(const struct redis_slot *slot)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < slot->parts; i++) {
		const struct kv_req *req = slot->reqs[i];
		const uint8_t *p;
		size_t len;

		if (!req || req->op != KV_COUNT)
			continue;
		p = kv_answer(req, &len);
		if (req->status != ringkv_Status_OK || len != 8)
			return 0;
		sum += get_le64(p);
	}
	return sum;
}

void redis_format_info(struct conn *conn, struct redis_slot *slot, struct reply *r)
{
	struct node *n = conn->core->node;
	struct kv_core_stats st;
	char text[2048];
	const char *section = (const char *)slot->pattern;
	size_t len = 0;

	redis_format_stats(conn, slot, &st);
	if (!section)
		section = "";
	if (section_wanted(section, "server"))
		len += (size_t)snprintf(text + len, sizeof text - len,
			"# Server\r\nredis_version:7.0.0\r\nringkv_version:%s\r\n"
			"redis_mode:standalone\r\nos:Linux\r\narch_bits:64\r\n"
			"process_id:%ld\r\ntcp_port:%u\r\nuptime_in_seconds:%ld\r\n"
			"cores:%u\r\nshards:%u\r\n\r\n",
			"0.1.0", (long)getpid(), n->resp_port,
			(long)(time(NULL) - conn->core->redis->started), n->cores, n->shards);
	if (section_wanted(section, "clients"))
		len += (size_t)snprintf(text + len, sizeof text - len,
			"# Clients\r\nconnected_clients:%" PRIu64 "\r\n\r\n", st.connections);
	if (section_wanted(section, "memory"))
		len += (size_t)snprintf(text + len, sizeof text - len,
			"# Memory\r\nused_memory:%" PRIu64 "\r\nmemtable_capacity:%" PRIu64
			"\r\n\r\n", st.memtable_used, st.memtable_capacity);
	if (section_wanted(section, "persistence"))
		len += (size_t)snprintf(text + len, sizeof text - len,
			"# Persistence\r\nloading:0\r\naof_enabled:1\r\n"
			"ringkv_fsync:always\r\nringkv_damaged_tables:%" PRIu64 "\r\n"
			"ringkv_shards_refusing_writes:%" PRIu64 "\r\n\r\n",
			st.damaged_tables, st.writes_refused);
	if (section_wanted(section, "stats"))
		len += (size_t)snprintf(text + len, sizeof text - len,
			"# Stats\r\ntotal_commands_processed:%" PRIu64 "\r\n"
			"ringkv_requests_forwarded:%" PRIu64 "\r\n"
			"ringkv_writes_durable:%" PRIu64 "\r\nringkv_wal_batches:%" PRIu64 "\r\n"
			"ringkv_wal_bytes:%" PRIu64 "\r\nringkv_log_fsyncs:%" PRIu64 "\r\n"
			"expired_keys:%" PRIu64 "\r\n\r\n",
			st.requests, st.forwarded, st.writes, st.batches, st.wal_bytes, st.fsyncs,
			redis_expired_keys());
	if (section_wanted(section, "keyspace") && redis_auth_sees_keyspace(conn))
		len += (size_t)snprintf(text + len, sizeof text - len,
			"# Keyspace\r\ndb0:keys=%" PRIu64 ",expires=%" PRIu64 ",avg_ttl=0\r\n",
			st.live_keys, count_expires(slot));
	if (len >= sizeof text)
		len = sizeof text - 1;
	reply_verbatim(conn, r, text, len);
}

void redis_all_cores(struct conn *conn, enum resp_cmd_id id, const struct resp_arg *section)
{
	struct node_core *c = conn->core;
	unsigned cores = c->node->cores;
	/* DBSIZE and INFO's keyspace count each shard at its leader
	 * (KV_COUNT, forwarded where needed), so every node gives the
	 * cluster's figure; redis_format_stats falls back to this node's
	 * replicas when a shard does not answer. */
	unsigned shards = c->node->shards;
	struct redis_slot *slot;

	/* INFO of sections without the keyspace counts no keys (a count
	 * walks each shard's keys past their deadline). */
	if (section && section->len > 0 && section->len < 64) {
		char name[64];

		memcpy(name, section->data, section->len);
		name[section->len] = '\0';
		if (!section_wanted(name, "keyspace"))
			shards = 0;
	}
	if (id == RESP_CMD_INFO && !redis_auth_sees_keyspace(conn))
		shards = 0; /* not shown to a prefixed user (server/redis_auth.c) */
	slot = redis_slot_new(conn, id, cores + shards);
	unsigned i;

	if (!slot) {
		redis_out_of_memory(conn);
		return;
	}
	if (section && section->len < 64) {
		slot->pattern = pool_alloc(redis_pool(conn), section->len + 1);
		if (slot->pattern) {
			memcpy(slot->pattern, section->data, section->len);
			slot->pattern[section->len] = '\0';
		}
	}
	slot->pending = 1;
	for (i = 0; i < cores + shards; i++) {
		struct kv_req *req = redis_part_new(slot, i,
						    i < cores ? sizeof(struct kv_core_stats) : 8);

		if (!req)
			return;
		if (i < cores) {
			req->op = KV_CORE_STATS;
			req->target = (uint16_t)i;
		} else {
			req->op = KV_COUNT;
			req->shard = i - cores;
		}
		redis_send_part(slot, req);
	}
	slot->pending--;
	redis_drain(conn);
}

static void command_info(struct conn *conn, struct reply *r, const struct resp_command_info *ci)
{
	uint32_t f;

	/* Redis 7's ten fields; ACL categories, tips, key specs and subcommand
	 * details are left empty. */
	reply_array(conn, r, 10);
	reply_str(conn, r, ci->name);
	reply_int(conn, r, ci->arity);
	reply_set(conn, r, resp_command_flag_count(ci->flags));
	for (f = 1; f && f <= ci->flags; f <<= 1)
		if (ci->flags & f)
			REPLY_WRITE(conn, r, resp_size_simple(strlen(resp_command_flag_name(f))),
				    resp_write_simple_str(&o, resp_command_flag_name(f)));
	reply_int(conn, r, ci->first_key);
	reply_int(conn, r, ci->last_key);
	reply_int(conn, r, ci->key_step);
	reply_set(conn, r, 0);     /* ACL categories */
	reply_set(conn, r, 0);     /* tips */
	reply_set(conn, r, 0);     /* key specs */
	if (ci->subcommands)
		reply_array(conn, r, 0); /* subcommands: not listed */
	else
		reply_set(conn, r, 0);
}

static void command_docs(struct conn *conn, struct reply *r, const struct resp_command_info *ci)
{
	reply_str(conn, r, ci->name);
	reply_map(conn, r, 4);
	reply_str(conn, r, "summary");
	reply_str(conn, r, ci->summary ? ci->summary : "");
	reply_str(conn, r, "since");
	reply_str(conn, r, ci->since ? ci->since : "");
	reply_str(conn, r, "group");
	reply_str(conn, r, ci->group ? ci->group : "");
	reply_str(conn, r, "complexity");
	reply_str(conn, r, ci->complexity ? ci->complexity : "");
}

void redis_cmd_command(struct conn *conn, const struct resp_command *cmd,
			const struct resp_command_info *parent)
{
	struct reply *r = &conn->redis->scratch;
	const struct resp_command_info *table, *sub;
	size_t n, i;

	reply_reset(r);
	table = resp_command_table(&n);
	if (cmd->argc == 1) {
		reply_array(conn, r, n);
		for (i = 0; i < n; i++)
			command_info(conn, r, &table[i]);
		redis_reply_now(conn);
		return;
	}
	sub = redis_subcommand(conn, cmd, parent);
	if (!sub)
		return;
	switch (sub->id) {
	case RESP_CMD_COMMAND_COUNT:
		reply_int(conn, r, (int64_t)n);
		break;
	case RESP_CMD_COMMAND_LIST:
		reply_array(conn, r, n);
		for (i = 0; i < n; i++)
			reply_str(conn, r, table[i].name);
		break;
	case RESP_CMD_COMMAND_INFO:
		reply_array(conn, r, cmd->argc - 2);
		for (i = 2; i < cmd->argc; i++) {
			const struct resp_command_info *ci =
				resp_command_lookup(cmd->argv[i].data, cmd->argv[i].len);
			if (ci)
				command_info(conn, r, ci);
			else
				reply_null(conn, r); /* Redis 7.0: $-1, RESP3 _ */
		}
		break;
	default: { /* COMMAND DOCS [name ...] */
		size_t found = 0;

		if (cmd->argc == 2) {
			reply_map(conn, r, n);
			for (i = 0; i < n; i++)
				command_docs(conn, r, &table[i]);
			break;
		}
		for (i = 2; i < cmd->argc; i++)
			found += resp_command_lookup(cmd->argv[i].data, cmd->argv[i].len) != NULL;
		reply_map(conn, r, found);
		for (i = 2; i < cmd->argc; i++) {
			const struct resp_command_info *ci =
				resp_command_lookup(cmd->argv[i].data, cmd->argv[i].len);
			if (ci)
				command_docs(conn, r, ci);
		}
		break;
	}
	}
	redis_reply_now(conn);
}

void redis_cmd_config(struct conn *conn, const struct resp_command *cmd,
		       const struct resp_command_info *sub)
{
	struct node *n = conn->core->node;
	struct reply *r = &conn->redis->scratch;
	char maxmem[32], port[16], maxval[32];
	const char *params[][2] = {
		{ "save", "" },
		{ "appendonly", "yes" },
		{ "appendfsync", "always" },
		{ "databases", "1" },
		{ "maxmemory", maxmem },
		{ "port", port },
		{ "proto-max-bulk-len", maxval },
		{ "timeout", "0" },
	};
	const size_t nparams = sizeof params / sizeof params[0];
	size_t i, k, matched = 0;
	bool hit[sizeof params / sizeof params[0]] = { false };

	snprintf(maxmem, sizeof maxmem, "%" PRIu64, n->cfg.memtable_size * n->shards);
	snprintf(port, sizeof port, "%u", n->resp_port);
	snprintf(maxval, sizeof maxval, "%u", n->cfg.max_value);
	reply_reset(r);
	if (sub->id == RESP_CMD_CONFIG_RESETSTAT) {
		reply_simple(conn, r, "OK");
		redis_reply_now(conn);
		return;
	}
	if (sub->id == RESP_CMD_CONFIG_SET) {
		reply_error(conn, r, "ERR CONFIG SET is not supported: ringkvd takes its "
			"configuration from flags");
		redis_reply_now(conn);
		return;
	}
	for (k = 2; k < cmd->argc; k++) {
		char pat[128];

		if (cmd->argv[k].len >= sizeof pat)
			continue;
		memcpy(pat, cmd->argv[k].data, cmd->argv[k].len);
		pat[cmd->argv[k].len] = '\0';
		for (i = 0; i < nparams; i++)
			if (!hit[i] && fnmatch(pat, params[i][0], FNM_CASEFOLD) == 0) {
				hit[i] = true;
				matched++;
			}
	}
	reply_map(conn, r, matched);
	for (i = 0; i < nparams; i++)
		if (hit[i]) {
			reply_str(conn, r, params[i][0]);
			reply_str(conn, r, params[i][1]);
		}
	redis_reply_now(conn);
}

static void client_line(struct conn *conn, char *buf, size_t len)
{
	struct redis_conn *rc = conn->redis;

	snprintf(buf, len, "id=%" PRIu64 " fd=%d name=%s db=0 cmd=client\n", rc->id,
		 conn->fd, rc->has_name ? rc->name : "");
}

void redis_cmd_client(struct conn *conn, const struct resp_command *cmd,
		       const struct resp_command_info *sub)
{
	struct redis_conn *rc = conn->redis;
	struct reply *r = &rc->scratch;
	char line[256];
	uint32_t i;

	reply_reset(r);
	switch (sub->id) {
	case RESP_CMD_CLIENT_ID:
		reply_int(conn, r, (int64_t)rc->id);
		break;
	case RESP_CMD_CLIENT_GETNAME:
		if (rc->has_name)
			reply_str(conn, r, rc->name);
		else
			reply_null(conn, r);
		break;
	case RESP_CMD_CLIENT_SETNAME: {
		const struct resp_arg *name = &cmd->argv[2];

		for (i = 0; i < name->len; i++)
			if (name->data[i] < '!' || name->data[i] > '~')
				break;
		if (i < name->len) {
			reply_error(conn, r, RESP_ERR_CLIENT_NAME);
			break;
		}
		if (name->len >= sizeof rc->name) {
			reply_error(conn, r, "ERR client name too long");
			break;
		}
		memcpy(rc->name, name->data, name->len);
		rc->name[name->len] = '\0';
		rc->has_name = name->len > 0;
		reply_simple(conn, r, "OK");
		break;
	}
	default: /* INFO, LIST: this connection only */
		client_line(conn, line, sizeof line);
		reply_verbatim(conn, r, line, strlen(line));
		break;
	}
	redis_reply_now(conn);
}

const struct resp_command_info *redis_subcommand(struct conn *conn,
						 const struct resp_command *cmd,
						 const struct resp_command_info *parent)
{
	struct reply *r = &conn->redis->scratch;
	const struct resp_command_info *sub =
		resp_subcommand_lookup(parent, cmd->argv[1].data, cmd->argv[1].len);
	char err[256];

	reply_reset(r);
	if (!sub) {
		resp_format_unknown_subcommand(err, sizeof err, parent, cmd->argv[1].data,
					       cmd->argv[1].len);
		reply_error(conn, r, err);
		redis_reply_now(conn);
		return NULL;
	}
	if (!resp_command_arity_ok(sub, cmd->argc)) {
		resp_format_wrong_arity(err, sizeof err, sub);
		reply_error(conn, r, err);
		redis_reply_now(conn);
		return NULL;
	}
	return sub;
}
