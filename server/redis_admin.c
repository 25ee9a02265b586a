/* Server commands of the RESP front door: INFO, DBSIZE, HELLO, COMMAND,
 * CONFIG, CLIENT. */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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
		sum->count_scans += st.count_scans;
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

/* Whether INFO's argument `section` asks for section `name`. As Redis,
 * commandstats is left out of the default set and of no argument. */
static bool section_wanted(const char *section, const char *name)
{
	if (!strcasecmp(section, "all") || !strcasecmp(section, "everything"))
		return true;
	if (!strcmp(name, "commandstats"))
		return !strcasecmp(section, name);
	return !section[0] || !strcasecmp(section, name) || !strcasecmp(section, "default");
}

/* INFO's stats and commandstats figures kept on each core, summed over
 * every core's metrics row by a scrape (core/metrics.h). */
enum info_sum {
	INFO_CONNECTIONS = NODE_METRICS_RESP_OPS, /* after the calls per command id */
	INFO_REFUSED,
	INFO_ERRORS,
	INFO_BYTES_IN,
	INFO_BYTES_OUT,
	INFO_SUMS,
};

struct info_scrape {
	struct metrics_scrape scrape;
	struct redis_slot *slot;
};

static void info_scrape_done(struct metrics_scrape *s, void *arg)
{
	struct info_scrape *is = arg;
	struct redis_slot *slot = is->slot;
	struct conn *conn = slot->conn;
	const struct node_metric_ids *ids = conn->core->node->metric_ids;
	uint64_t *sums = pool_alloc(redis_pool(conn), INFO_SUMS * sizeof *sums);

	/* slot->keys: enum info_sum's figures (freed with the slot). */
	if (sums) {
		for (unsigned i = 0; i < NODE_METRICS_RESP_OPS; i++)
			sums[i] = metrics_row_sum(s->m, s->rows, ids->requests_resp[i]);
		sums[INFO_CONNECTIONS] = metrics_row_sum(s->m, s->rows, ids->connections_accepted);
		sums[INFO_REFUSED] = metrics_row_sum(s->m, s->rows, ids->connections_refused);
		sums[INFO_ERRORS] = metrics_row_sum(s->m, s->rows, ids->resp_errors);
		sums[INFO_BYTES_IN] = metrics_row_sum(s->m, s->rows, ids->received_bytes);
		sums[INFO_BYTES_OUT] = metrics_row_sum(s->m, s->rows, ids->sent_bytes);
		slot->keys = (uint8_t *)sums;
		slot->keys_len = INFO_SUMS * sizeof *sums;
	}
	metrics_scrape_destroy(s);
	free(is);
	if (--slot->pending == 0)
		redis_drain(conn);
}

/* Starts INFO commandstats' scrape; the slot waits for it as for a part. */
static void info_scrape_start(struct redis_slot *slot)
{
	struct node_core *c = slot->conn->core;
	struct info_scrape *is;

	if (!c->node->metrics || !c->node->metric_ids)
		return; /* (a node without its registry: the figures are left out) */
	is = calloc(1, sizeof *is);
	if (!is)
		return; /* the section then says nothing */
	if (metrics_scrape_init(&is->scrape, c->node->metrics, c->reactor->id) != 0) {
		free(is);
		return;
	}
	is->slot = slot;
	slot->pending++;
	metrics_scrape_start(c->reactor, &is->scrape, info_scrape_done, is);
}

static void info_commandstats(const struct redis_slot *slot, char *text, size_t cap,
			      size_t *len)
{
	const uint64_t *calls = (const uint64_t *)slot->keys;

	*len += (size_t)snprintf(text + *len, cap - *len, "# Commandstats\r\n");
	for (unsigned i = 0; calls && i < RESP_CMD_TOP_COUNT && *len < cap; i++) {
		const struct resp_command_info *ci = resp_command_by_id((enum resp_cmd_id)i);

		if (ci && calls[i])
			*len += (size_t)snprintf(text + *len, cap - *len,
						 "cmdstat_%s:calls=%" PRIu64 "\r\n", ci->name,
						 calls[i]);
	}
	if (*len < cap)
		*len += (size_t)snprintf(text + *len, cap - *len, "\r\n");
}

static double timeval_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* The process's resident set, from /proc/self/statm (0 when unreadable). */
static uint64_t rss_bytes(void)
{
	unsigned long long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &pages, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
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
	char text[8192];
	const char *section = (const char *)slot->pattern;
	size_t len = 0;
	long uptime = (long)(time(NULL) - conn->core->redis->started);

	redis_format_stats(conn, slot, &st);
	if (!section)
		section = "";
	if (section_wanted(section, "server"))
		len += (size_t)snprintf(text + len, sizeof text - len,
			"# Server\r\nredis_version:7.0.0\r\nringkv_version:%s\r\n"
			"redis_mode:standalone\r\nos:Linux\r\narch_bits:64\r\n"
			"multiplexing_api:io_uring\r\nprocess_id:%ld\r\ntcp_port:%u\r\n"
			"uptime_in_seconds:%ld\r\nuptime_in_days:%ld\r\n"
			"cores:%u\r\nshards:%u\r\n\r\n",
			RINGKV_VERSION, (long)getpid(), n->resp_port, uptime, uptime / 86400, n->cores,
			n->shards);
	if (section_wanted(section, "clients"))
		len += (size_t)snprintf(text + len, sizeof text - len,
			"# Clients\r\nconnected_clients:%" PRIu64 "\r\nmaxclients:%" PRIu64
			"\r\nblocked_clients:0\r\ntracking_clients:0\r\n\r\n", st.connections,
			conn->core->redis->settings.maxclients);
	if (section_wanted(section, "memory")) {
		uint64_t rss = rss_bytes();

		len += (size_t)snprintf(text + len, sizeof text - len,
			"# Memory\r\nused_memory:%" PRIu64 "\r\nused_memory_rss:%" PRIu64
			"\r\nmaxmemory:%" PRIu64 "\r\nmaxmemory_policy:noeviction\r\n"
			"memtable_capacity:%" PRIu64 "\r\n\r\n",
			st.memtable_used, rss, n->cfg.memtable_size * n->shards, st.memtable_capacity);
	}
	if (section_wanted(section, "persistence"))
		len += (size_t)snprintf(text + len, sizeof text - len,
			"# Persistence\r\nloading:0\r\naof_enabled:1\r\n"
			"rdb_bgsave_in_progress:0\r\naof_rewrite_in_progress:0\r\n"
			"ringkv_fsync:always\r\nringkv_damaged_tables:%" PRIu64 "\r\n"
			"ringkv_shards_refusing_writes:%" PRIu64 "\r\n\r\n",
			st.damaged_tables, st.writes_refused);
	if (section_wanted(section, "stats")) {
		const uint64_t *sums = (const uint64_t *)slot->keys;

		len += (size_t)snprintf(text + len, sizeof text - len, "# Stats\r\n");
		if (sums)
			len += (size_t)snprintf(text + len, sizeof text - len,
				"total_connections_received:%" PRIu64 "\r\n"
				"rejected_connections:%" PRIu64 "\r\n"
				"total_net_input_bytes:%" PRIu64 "\r\n"
				"total_net_output_bytes:%" PRIu64 "\r\n"
				"total_error_replies:%" PRIu64 "\r\n",
				sums[INFO_CONNECTIONS], sums[INFO_REFUSED], sums[INFO_BYTES_IN],
				sums[INFO_BYTES_OUT], sums[INFO_ERRORS]);
		len += (size_t)snprintf(text + len, sizeof text - len,
			"total_commands_processed:%" PRIu64 "\r\n"
			"expired_keys:%" PRIu64 "\r\nevicted_keys:0\r\n"
			"ringkv_requests_forwarded:%" PRIu64 "\r\n"
			"ringkv_writes_durable:%" PRIu64 "\r\nringkv_wal_batches:%" PRIu64 "\r\n"
			"ringkv_wal_bytes:%" PRIu64 "\r\nringkv_log_fsyncs:%" PRIu64 "\r\n"
			"ringkv_dbsize_scans:%" PRIu64 "\r\n\r\n",
			st.requests, redis_expired_keys(), st.forwarded, st.writes, st.batches,
			st.wal_bytes, st.fsyncs, st.count_scans);
	}
	if (section_wanted(section, "replication"))
		/* Every node takes writes (a follower forwards them to the
		 * shard's leader) and replication is per shard, by Raft: no
		 * Redis replica ever connects. */
		len += (size_t)snprintf(text + len, sizeof text - len,
			"# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"
			"master_failover_state:no-failover\r\n\r\n");
	if (section_wanted(section, "cpu")) {
		struct rusage self, children;

		memset(&self, 0, sizeof self);
		memset(&children, 0, sizeof children);
		getrusage(RUSAGE_SELF, &self);
		getrusage(RUSAGE_CHILDREN, &children);
		len += (size_t)snprintf(text + len, sizeof text - len,
			"# CPU\r\nused_cpu_sys:%.6f\r\nused_cpu_user:%.6f\r\n"
			"used_cpu_sys_children:%.6f\r\nused_cpu_user_children:%.6f\r\n\r\n",
			timeval_s(self.ru_stime), timeval_s(self.ru_utime),
			timeval_s(children.ru_stime), timeval_s(children.ru_utime));
	}
	if (section_wanted(section, "commandstats") && len < sizeof text)
		info_commandstats(slot, text, sizeof text, &len);
	if (section_wanted(section, "keyspace") && redis_auth_sees_keyspace(conn) &&
	    len < sizeof text)
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
	if (id == RESP_CMD_INFO &&
	    (section_wanted(slot->pattern ? (const char *)slot->pattern : "", "commandstats") ||
	     section_wanted(slot->pattern ? (const char *)slot->pattern : "", "stats")))
		info_scrape_start(slot);
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

void redis_cmd_client(struct conn *conn, const struct resp_command *cmd,
		       const struct resp_command_info *sub)
{
	struct redis_conn *rc = conn->redis;
	struct reply *r = &rc->scratch;
	char line[512];
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
	case RESP_CMD_CLIENT_LIST:
	case RESP_CMD_CLIENT_KILL:
		/* server/redis_client.c */
		redis_client_gather(conn, cmd, sub->id == RESP_CMD_CLIENT_KILL);
		return;
	default: { /* INFO: this connection */
		size_t n = redis_client_line(conn, line, sizeof line);

		reply_verbatim(conn, r, line, n);
		break;
	}
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
