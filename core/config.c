/* Command-line flags and the config file of ringkvd; see core/config.h. */
#include "core/config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "core/log.h"
#include "core/strint.h"

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof *c);
	strcpy(c->listen_host, "127.0.0.1");
	c->listen_port = 7070;
	strcpy(c->data_dir, "./data");
	c->auto_repair = true;
	c->memtable_size = 64ull << 20;
	c->memtable_budget = 512ull << 20;
	c->manifest_rewrite_min = 1ull << 20;
	c->block_cache_size = 256ull << 20;
	c->max_frame = 4u << 20;
	c->max_key = 4u << 10;
	/* As large as the replication path carries: a log entry (value, key
	 * and the command's header) and a forwarded request travel in peer
	 * messages of at most 4 MiB of data (cluster/peer_msg.c). Redis's
	 * suite writes 4,000,000-byte values (issue #21). Nothing is
	 * allocated for a value until one arrives. */
	c->max_value = (4u << 20) - (8u << 10);
	c->max_inflight = 1024;
	c->max_connections = 4096;
	c->log_level = LOG_INFO;
	c->node_id = 1;
	c->election_timeout_ms = 300;
	c->heartbeat_ms = 50;
	c->snapshot_rate = 64ull << 20;
	c->snapshot_lag = 65536;
	c->metrics_per_replica = CONFIG_PER_REPLICA_AUTO;
	c->metrics_per_replica_max = 1024;
	c->tls_handshake_timeout_ms = 10000;
	c->auth_timeout_ms = 5000;
}

void config_usage(FILE *out, const char *prog)
{
	fprintf(out,
		"usage: %s [options]\n"
		"       %s repair --data-dir DIR [--dry-run | --yes]\n"
		"                           offline: list what a damaged one-node data dir\n"
		"                           loses; with --yes set it aside in DIR/quarantine/\n"
		"  --listen HOST:PORT       client address (default 127.0.0.1:7070; port 0 = any)\n"
		"  --resp-listen HOST:PORT  Redis protocol (RESP2) address (default: off)\n"
		"  --data-dir DIR           data directory (default ./data)\n"
		"  --cores N                reactor threads (default: every CPU of the cpuset)\n"
		"  --shards N               shards, fixed when the data dir is created\n"
		"                           (default: one per core)\n"
		"  --memtable-size BYTES    memtable per shard (default 64MiB)\n"
		"  --memtable-budget BYTES  memtables of all a core's shards together; the\n"
		"                           largest is flushed early past it (default 512MiB)\n"
		"  --block-cache-size BYTES SSTable block cache per core (default 256MiB)\n"
		"  --manifest-rewrite-min BYTES  rewrite a shard's manifest whole once it\n"
		"                           is this long and 4x its version (default 1MiB)\n"
		"  --max-frame BYTES        largest client frame (default 4MiB)\n"
		"  --max-key BYTES          largest key (default 4KiB)\n"
		"  --max-value BYTES        largest value (default 4MiB less 8KiB)\n"
		"  --max-inflight N         requests in flight per connection (default 1024)\n"
		"  --max-connections N      connections per core (default 4096)\n"
		"  --log-level LEVEL        debug, info, warn or error (default info)\n"
		"  --log-format FORMAT      text or json (one object per line; default text)\n"
		"  --admin-listen HOST:PORT HTTP /metrics, /health, /ready (default: none = off)\n"
		"  --metrics-per-replica on|off|auto  /metrics series per shard replica\n"
		"                           (role, term, indexes, follower lag...); auto:\n"
		"                           while the node holds at most\n"
		"                           --metrics-per-replica-max replicas (default auto)\n"
		"  --metrics-per-replica-max N  auto's limit (default 1024)\n"
		"  --log-io direct|buffered  how the Raft log writes a batch: one O_DIRECT\n"
		"                           write with O_DSYNC, or a page-cache write and an\n"
		"                           fdatasync (default direct where the file system\n"
		"                           allows O_DIRECT)\n"
		"  --enable-flush           allow FLUSHDB/FLUSHALL, which drop every key of\n"
		"                           the cluster (default: refused)\n"
		"  --config FILE            settings as 'key = value' lines named like these\n"
		"                           flags (no dashes); flags given here override it\n"
		"  --print-config           print the effective settings as a config file, exit\n"
		"cluster:\n"
		"  --node-id N              this node's id, >= 1 (default 1)\n"
		"  --peer-listen HOST:PORT  this node's peer address (default: its\n"
		"                           --initial-cluster entry)\n"
		"  --initial-cluster ID=HOST:PORT,...  peer addresses of the founding\n"
		"                           nodes, the same on every node (default: a\n"
		"                           one-node cluster)\n"
		"  --replicas R             copies of each shard, 1..nodes, fixed when the\n"
		"                           data dir is created (default min(3, nodes))\n"
		"  --cluster-token STR      tells apart clusters started with the same\n"
		"                           flags (default: none)\n"
		"  --election-timeout DURATION  e.g. 300ms or 1s; timeouts are random in\n"
		"                           [e, 2e) (default 300ms)\n"
		"  --heartbeat-interval DURATION  leader heartbeats (default 50ms)\n"
		"  --snapshot-rate BYTES/s  snapshot streaming limit, 0 = none (default 64MiB)\n"
		"  --snapshot-lag ENTRIES   a leader stops keeping its log for a follower this\n"
		"                           far behind; it gets a snapshot (default 65536)\n",
		prog, prog);
	/* A second string: one literal may not pass 4095 bytes. */
	fprintf(out,
		"  --initial-cluster-state new|existing|bootstrap  existing: a replica found\n"
		"                           empty never votes before it caught up; new\n"
		"                           (default): it asks its group first, and a new\n"
		"                           group elects once all its members answered;\n"
		"                           bootstrap: as new, and this node never ran in\n"
		"                           this cluster (its first start, on a new data dir:\n"
		"                           kept there; never for a wiped node): a new group\n"
		"                           elects with a minority of its members down\n"
		"  -h, --help               this text\n"
		"  -V, --version            print the version, exit\n"
		"  --auto-repair on|off     on (default): a core log damaged at start-up is\n"
		"                           repaired from the peers when they can (its\n"
		"                           files kept in DATA/quarantine); off: refused\n"
		"  --log-segment-size SIZE  core log segment size (default 64MiB)\n"
		"tls:\n"
		"  --tls-cert FILE          PEM certificate chain: TLS 1.3 on the client\n"
		"                           ports (native, RESP, admin); needs --tls-key;\n"
		"                           SIGHUP reads the three files again\n"
		"  --tls-key FILE           PEM private key of --tls-cert\n"
		"  --tls-ca FILE            the cluster's CA (PEM): turns on mutual TLS on\n"
		"                           the peer port; each node's certificate must then\n"
		"                           name it as SAN URI ringkv://node/ID\n"
		"  --peer-tls-cert FILE, --peer-tls-key FILE, --peer-tls-ca FILE\n"
		"                           the peer port's own files (default: the --tls-*\n"
		"                           ones); SIGHUP reads them again too\n"
		"  --tls-handshake-timeout DURATION  a client still handshaking after this\n"
		"                           is closed (default 10s)\n"
		"authentication:\n"
		"  --users FILE             users, roles and password hashes (made with\n"
		"                           `ringkv user add`): every client port then needs\n"
		"                           AUTH; SIGHUP reads the file again (default: none)\n"
		"  --audit-log FILE         appends one line per failed authentication and\n"
		"                           admin command (default: the log)\n"
		"  --auth-timeout DURATION  a client not authenticated after this is closed\n"
		"                           (default 5s)\n"
		"  --unauthenticated-peers refuse|allow  refuse (default): a cluster node\n"
		"                           with --users and no peer mutual TLS (--tls-ca or\n"
		"                           --peer-tls-ca) does not start, as anyone who\n"
		"                           reaches its peer port could pose as a node;\n"
		"                           allow: it starts, with a warning\n");
}

/* A flag of two words: `no` sets false, `yes` true; -1 for anything else. */
static int parse_switch(const char *arg, const char *no, const char *yes, bool *out)
{
	if (!strcmp(arg, yes))
		*out = true;
	else if (!strcmp(arg, no))
		*out = false;
	else
		return -1;
	return 0;
}

int config_parse_size(const char *text, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mult = 1;

	if (!text || !*text || *text == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || end == text)
		return -EINVAL;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K':
		mult = 1ull << 10;
		end++;
		break;
	case 'm': case 'M':
		mult = 1ull << 20;
		end++;
		break;
	case 'g': case 'G':
		mult = 1ull << 30;
		end++;
		break;
	default:
		return -EINVAL;
	}
	if (*end == 'i')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0')
		return -EINVAL;
	if (v > UINT64_MAX / mult)
		return -EINVAL;
	*out = (uint64_t)v * mult;
	return 0;
}

int config_parse_address(const char *text, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon;
	const char *h = text;
	size_t hlen;
	char *end;
	unsigned long p;

	if (!text)
		return -EINVAL;
	if (*text == '[') {
		const char *close = strchr(text, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		h = text + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(text, ':');
		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - text);
	}
	if (hlen == 0 || hlen >= hostlen)
		return -EINVAL;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end != '\0' || p > 65535)
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (uint16_t)p;
	return 0;
}

int config_parse_duration(const char *text, uint32_t *ms)
{
	char *end;
	unsigned long long v;
	uint64_t mult = 1;

	if (!text || *text < '0' || *text > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || end == text)
		return -EINVAL;
	if (!strcmp(end, "s"))
		mult = 1000;
	else if (*end && strcmp(end, "ms"))
		return -EINVAL;
	if (v > UINT32_MAX / mult)
		return -EINVAL;
	*ms = (uint32_t)(v * mult);
	return 0;
}

void config_format_address(const char *host, uint16_t port, char *buf, size_t len)
{
	if (!host[0])
		snprintf(buf, len, "-");
	else if (strchr(host, ':'))
		snprintf(buf, len, "[%s]:%u", host, port);
	else
		snprintf(buf, len, "%s:%u", host, port);
}

static int compare_nodes(const void *a, const void *b)
{
	const struct config_node *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

int config_parse_initial_cluster(const char *text, struct config_node *nodes, unsigned max,
				 char *err, size_t errlen)
{
	char entry[CONFIG_ADDR_MAX + 32];
	const char *p = text;
	unsigned count = 0, i, j;

	if (!text || !*text) {
		snprintf(err, errlen, "--initial-cluster: empty");
		return -EINVAL;
	}
	for (;;) {
		size_t len = strcspn(p, ",");
		struct config_node *n;
		char *eq;

		if (len == 0 || len >= sizeof entry) {
			snprintf(err, errlen, "--initial-cluster: entry %u is %s; expected ID=HOST:PORT",
				 count + 1, len == 0 ? "empty" : "too long");
			return -EINVAL;
		}
		if (count == max) {
			snprintf(err, errlen, "--initial-cluster: more than %u nodes", max);
			return -EINVAL;
		}
		memcpy(entry, p, len);
		entry[len] = '\0';
		n = &nodes[count];
		eq = strchr(entry, '=');
		if (!eq || strint_parse_u64(entry, (size_t)(eq - entry), &n->id) != 0 ||
		    config_parse_address(eq + 1, n->host, sizeof n->host, &n->port) != 0) {
			snprintf(err, errlen, "--initial-cluster: malformed entry '%s'; "
				 "expected ID=HOST:PORT", entry);
			return -EINVAL;
		}
		if (n->id == 0) {
			snprintf(err, errlen, "--initial-cluster: '%s': node ids start at 1", entry);
			return -EINVAL;
		}
		if (n->port == 0) {
			snprintf(err, errlen, "--initial-cluster: '%s': port 0 cannot be dialled",
				 entry);
			return -EINVAL;
		}
		count++;
		p += len;
		if (!*p)
			break;
		p++;
	}
	for (i = 0; i < count; i++)
		for (j = i + 1; j < count; j++) {
			if (nodes[i].id == nodes[j].id) {
				snprintf(err, errlen, "--initial-cluster: node id %llu appears twice",
					 (unsigned long long)nodes[i].id);
				return -EINVAL;
			}
			if (nodes[i].port == nodes[j].port &&
			    !strcmp(nodes[i].host, nodes[j].host)) {
				config_format_address(nodes[i].host, nodes[i].port, entry,
						      sizeof entry);
				snprintf(err, errlen, "--initial-cluster: nodes %llu and %llu "
					 "have the same address %s",
					 (unsigned long long)nodes[i].id,
					 (unsigned long long)nodes[j].id, entry);
				return -EINVAL;
			}
		}
	qsort(nodes, count, sizeof *nodes, compare_nodes);
	return (int)count;
}

static bool token_valid(const char *token)
{
	size_t len = strlen(token);

	if (len == 0 || len >= CONFIG_TOKEN_MAX)
		return false;
	return strspn(token, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789._:-") == len;
}

/*
 * The cluster flags depend on each other whatever their order on the
 * command line: checked once all are read.
 */
static int check_cluster(struct config *c, bool peer_given, char *err, size_t errlen)
{
	char want[CONFIG_ADDR_MAX + 8], have[CONFIG_ADDR_MAX + 8];
	struct config_node *self = NULL;
	unsigned i;

	if (peer_given && c->peer_port == 0) {
		snprintf(err, errlen, "--peer-listen: port 0 cannot be dialled by peers");
		return -EINVAL;
	}
	if (!c->initial_given) {
		c->initial_count = 1;
		c->initial[0].id = c->node_id;
		strcpy(c->initial[0].host, c->peer_host);
		c->initial[0].port = c->peer_port;
	}
	for (i = 0; i < c->initial_count; i++)
		if (c->initial[i].id == c->node_id)
			self = &c->initial[i];
	if (!self) {
		snprintf(err, errlen, "--initial-cluster does not list this node "
			 "(--node-id %llu)", (unsigned long long)c->node_id);
		return -EINVAL;
	}
	if (peer_given && (c->peer_port != self->port || strcmp(c->peer_host, self->host))) {
		config_format_address(c->peer_host, c->peer_port, have, sizeof have);
		config_format_address(self->host, self->port, want, sizeof want);
		snprintf(err, errlen, "--peer-listen %s differs from node %llu's entry in "
			 "--initial-cluster (%s)", have, (unsigned long long)c->node_id, want);
		return -EINVAL;
	}
	strcpy(c->peer_host, self->host);
	c->peer_port = self->port;
	if (c->replicas > c->initial_count) {
		snprintf(err, errlen, "--replicas %u: more than the %u node%s of the cluster",
			 c->replicas, c->initial_count, c->initial_count == 1 ? "" : "s");
		return -EINVAL;
	}
	if (c->replicas && c->replicas % 2 == 0)
		log_warn("--replicas %u: an even count survives no more failures than "
			 "--replicas %u (a majority of %u is %u) and costs one more copy",
			 c->replicas, c->replicas - 1, c->replicas, c->replicas / 2 + 1);
	if (c->heartbeat_ms >= c->election_timeout_ms) {
		snprintf(err, errlen, "--heartbeat-interval %ums must be shorter than "
			 "--election-timeout %ums", c->heartbeat_ms, c->election_timeout_ms);
		return -EINVAL;
	}
	return 0;
}

static int parse_count(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;

	if (config_parse_size(text, &v) != 0 || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

enum {
	OPT_LISTEN = 256, OPT_RESP_LISTEN, OPT_DATA_DIR, OPT_CORES, OPT_SHARDS, OPT_MEMTABLE, OPT_MEMTABLE_BUDGET, OPT_BLOCK_CACHE, OPT_MANIFEST_REWRITE,
	OPT_MAX_FRAME, OPT_MAX_KEY, OPT_MAX_VALUE, OPT_MAX_INFLIGHT,
	OPT_MAX_CONNS, OPT_LOG_LEVEL, OPT_NODE_ID, OPT_PEER_LISTEN, OPT_INITIAL_CLUSTER,
	OPT_REPLICAS, OPT_CLUSTER_TOKEN, OPT_ELECTION_TIMEOUT, OPT_HEARTBEAT, OPT_SNAPSHOT_RATE,
	OPT_SNAPSHOT_LAG, OPT_INITIAL_STATE, OPT_AUTO_REPAIR, OPT_LOG_SEGMENT_SIZE,
	OPT_ADMIN_LISTEN, OPT_CONFIG, OPT_PRINT_CONFIG, OPT_HELP, OPT_LOG_FORMAT,
	OPT_VERSION, OPT_ENABLE_FLUSH, OPT_METRICS_PER_REPLICA, OPT_METRICS_PER_REPLICA_MAX,
	OPT_LOG_IO, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_CA, OPT_TLS_HANDSHAKE_TIMEOUT,
	OPT_PEER_TLS_CERT, OPT_PEER_TLS_KEY, OPT_PEER_TLS_CA,
	OPT_USERS, OPT_AUDIT_LOG, OPT_AUTH_TIMEOUT, OPT_UNAUTHENTICATED_PEERS,
};

static const struct option long_options[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "resp-listen", required_argument, NULL, OPT_RESP_LISTEN },
	{ "data-dir", required_argument, NULL, OPT_DATA_DIR },
	{ "cores", required_argument, NULL, OPT_CORES },
	{ "shards", required_argument, NULL, OPT_SHARDS },
	{ "memtable-size", required_argument, NULL, OPT_MEMTABLE },
	{ "memtable-budget", required_argument, NULL, OPT_MEMTABLE_BUDGET },
	{ "block-cache-size", required_argument, NULL, OPT_BLOCK_CACHE },
	{ "manifest-rewrite-min", required_argument, NULL, OPT_MANIFEST_REWRITE },
	{ "max-frame", required_argument, NULL, OPT_MAX_FRAME },
	{ "max-key", required_argument, NULL, OPT_MAX_KEY },
	{ "max-value", required_argument, NULL, OPT_MAX_VALUE },
	{ "max-inflight", required_argument, NULL, OPT_MAX_INFLIGHT },
	{ "max-connections", required_argument, NULL, OPT_MAX_CONNS },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
	{ "node-id", required_argument, NULL, OPT_NODE_ID },
	{ "peer-listen", required_argument, NULL, OPT_PEER_LISTEN },
	{ "initial-cluster", required_argument, NULL, OPT_INITIAL_CLUSTER },
	{ "replicas", required_argument, NULL, OPT_REPLICAS },
	{ "cluster-token", required_argument, NULL, OPT_CLUSTER_TOKEN },
	{ "election-timeout", required_argument, NULL, OPT_ELECTION_TIMEOUT },
	{ "heartbeat-interval", required_argument, NULL, OPT_HEARTBEAT },
	{ "snapshot-rate", required_argument, NULL, OPT_SNAPSHOT_RATE },
	{ "snapshot-lag", required_argument, NULL, OPT_SNAPSHOT_LAG },
	{ "initial-cluster-state", required_argument, NULL, OPT_INITIAL_STATE },
	{ "auto-repair", required_argument, NULL, OPT_AUTO_REPAIR },
	{ "log-segment-size", required_argument, NULL, OPT_LOG_SEGMENT_SIZE },
	{ "admin-listen", required_argument, NULL, OPT_ADMIN_LISTEN },
	{ "enable-flush", no_argument, NULL, OPT_ENABLE_FLUSH },
	{ "metrics-per-replica", required_argument, NULL, OPT_METRICS_PER_REPLICA },
	{ "metrics-per-replica-max", required_argument, NULL, OPT_METRICS_PER_REPLICA_MAX },
	{ "log-io", required_argument, NULL, OPT_LOG_IO },
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
	{ "tls-handshake-timeout", required_argument, NULL, OPT_TLS_HANDSHAKE_TIMEOUT },
	{ "peer-tls-cert", required_argument, NULL, OPT_PEER_TLS_CERT },
	{ "peer-tls-key", required_argument, NULL, OPT_PEER_TLS_KEY },
	{ "peer-tls-ca", required_argument, NULL, OPT_PEER_TLS_CA },
	{ "users", required_argument, NULL, OPT_USERS },
	{ "audit-log", required_argument, NULL, OPT_AUDIT_LOG },
	{ "auth-timeout", required_argument, NULL, OPT_AUTH_TIMEOUT },
	{ "unauthenticated-peers", required_argument, NULL, OPT_UNAUTHENTICATED_PEERS },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "print-config", no_argument, NULL, OPT_PRINT_CONFIG },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

/*
 * Fills `err` with why config_parse_address refused `arg` for `flag`: a port
 * out of range says so, so that "127.0.0.1:70000" is not taken for a
 * malformed address (nor, later, for a refused connection). Returns -EINVAL.
 */
static int address_error(const char *flag, const char *expected, const char *arg, char *err,
			 size_t errlen)
{
	const char *colon = strrchr(arg, ':');
	const char *port = colon ? colon + 1 : "";

	if (*port && strspn(port, "+-0123456789") == strlen(port))
		snprintf(err, errlen, "%s: port '%s' in '%s' is out of range: a port is 0 to "
			 "65535 (0 = any free one)", flag, port, arg);
	else
		snprintf(err, errlen, "%s: expected %s, got '%s'", flag, expected, arg);
	return -EINVAL;
}

/*
 * Applies one setting, from a flag or from the config file: `opt` is its
 * OPT_* code, `name` its flag name without dashes. 0 or -EINVAL with the
 * reason in `err`.
 */
static int apply(struct config *c, int opt, const char *name, const char *arg,
		 bool *peer_given, char *err, size_t errlen)
{
	uint32_t ms;
	uint64_t v;
	int rv;

	switch (opt) {
	case OPT_LISTEN:
		if (config_parse_address(arg, c->listen_host,
					 sizeof c->listen_host, &c->listen_port))
			return address_error("--listen", "HOST:PORT", arg, err, errlen);
		break;
	case OPT_RESP_LISTEN:
		if (config_parse_address(arg, c->resp_host,
					 sizeof c->resp_host, &c->resp_port))
			return address_error("--resp-listen", "HOST:PORT", arg, err, errlen);
		break;
	case OPT_DATA_DIR:
		if (!*arg || strlen(arg) >= sizeof c->data_dir - 64) {
			snprintf(err, errlen, "--data-dir: empty or too long");
			return -EINVAL;
		}
		strcpy(c->data_dir, arg);
		break;
	case OPT_CORES:
		if (parse_count(arg, 1, 1024, &v))
			goto bad_value;
		c->cores = (unsigned)v;
		break;
	case OPT_SHARDS:
		if (parse_count(arg, 1, 16384, &v))
			goto bad_value;
		c->shards = (unsigned)v;
		break;
	case OPT_MEMTABLE:
		if (parse_count(arg, 64 << 10, 64ull << 30, &v))
			goto bad_value;
		c->memtable_size = v;
		break;
	case OPT_MEMTABLE_BUDGET:
		if (parse_count(arg, 1 << 20, 1ull << 40, &v))
			goto bad_value;
		c->memtable_budget = v;
		break;
	case OPT_MANIFEST_REWRITE:
		if (parse_count(arg, 1024, 1ull << 40, &v))
			goto bad_value;
		c->manifest_rewrite_min = v;
		break;
	case OPT_BLOCK_CACHE:
		if (parse_count(arg, 0, 1ull << 40, &v))
			goto bad_value;
		c->block_cache_size = v;
		break;
	case OPT_MAX_FRAME:
		if (parse_count(arg, 1024, 64u << 20, &v))
			goto bad_value;
		c->max_frame = (uint32_t)v;
		break;
	case OPT_MAX_KEY:
		if (parse_count(arg, 1, 64u << 10, &v))
			goto bad_value;
		c->max_key = (uint32_t)v;
		break;
	case OPT_MAX_VALUE:
		if (parse_count(arg, 0, 32u << 20, &v))
			goto bad_value;
		c->max_value = (uint32_t)v;
		break;
	case OPT_MAX_INFLIGHT:
		if (parse_count(arg, 1, 1u << 20, &v))
			goto bad_value;
		c->max_inflight = (uint32_t)v;
		break;
	case OPT_MAX_CONNS:
		if (parse_count(arg, 1, 1u << 20, &v))
			goto bad_value;
		c->max_connections = (uint32_t)v;
		break;
	case OPT_LOG_LEVEL:
		if (!strcmp(arg, "debug"))
			c->log_level = LOG_DEBUG;
		else if (!strcmp(arg, "info"))
			c->log_level = LOG_INFO;
		else if (!strcmp(arg, "warn"))
			c->log_level = LOG_WARN;
		else if (!strcmp(arg, "error"))
			c->log_level = LOG_ERROR;
		else
			goto bad_value;
		break;
	case OPT_LOG_FORMAT:
		if (!strcmp(arg, "text"))
			c->log_format = LOG_TEXT;
		else if (!strcmp(arg, "json"))
			c->log_format = LOG_JSON;
		else
			goto bad_value;
		break;
	case OPT_NODE_ID:
		if (strint_parse_u64(arg, strlen(arg), &v) != 0 || v == 0) {
			snprintf(err, errlen, "--node-id: expected an integer >= 1, got '%s'",
				 arg);
			return -EINVAL;
		}
		c->node_id = v;
		break;
	case OPT_PEER_LISTEN:
		if (config_parse_address(arg, c->peer_host,
					 sizeof c->peer_host, &c->peer_port))
			return address_error("--peer-listen", "HOST:PORT", arg, err, errlen);
		*peer_given = true;
		break;
	case OPT_INITIAL_CLUSTER:
		rv = config_parse_initial_cluster(arg, c->initial, CONFIG_MAX_NODES,
						  err, errlen);
		if (rv < 0)
			return rv;
		c->initial_count = (unsigned)rv;
		c->initial_given = true;
		break;
	case OPT_REPLICAS:
		if (parse_count(arg, 1, CONFIG_MAX_NODES, &v))
			goto bad_value;
		c->replicas = (unsigned)v;
		break;
	case OPT_CLUSTER_TOKEN:
		if (!token_valid(arg)) {
			snprintf(err, errlen, "--cluster-token: 1 to %d characters of "
				 "[A-Za-z0-9._:-], got '%s'", CONFIG_TOKEN_MAX - 1, arg);
			return -EINVAL;
		}
		strcpy(c->cluster_token, arg);
		break;
	case OPT_ELECTION_TIMEOUT:
		if (config_parse_duration(arg, &ms) || ms < 20 || ms > 60000) {
			snprintf(err, errlen, "--election-timeout: expected 20ms to 60s, "
				 "got '%s'", arg);
			return -EINVAL;
		}
		c->election_timeout_ms = ms;
		break;
	case OPT_HEARTBEAT:
		if (config_parse_duration(arg, &ms) || ms < 5 || ms > 30000) {
			snprintf(err, errlen, "--heartbeat-interval: expected 5ms to 30s, "
				 "got '%s'", arg);
			return -EINVAL;
		}
		c->heartbeat_ms = ms;
		break;
	case OPT_SNAPSHOT_RATE: {
		char rate[64];
		size_t len = strlen(arg);

		/* "64MiB/s" or "64MiB" */
		if (len >= 2 && !strcmp(arg + len - 2, "/s"))
			len -= 2;
		if (len >= sizeof rate)
			goto bad_value;
		memcpy(rate, arg, len);
		rate[len] = '\0';
		if (config_parse_size(rate, &v))
			goto bad_value;
		c->snapshot_rate = v;
		break;
	}
	case OPT_SNAPSHOT_LAG:
		if (config_parse_size(arg, &v) || v == 0)
			goto bad_value;
		c->snapshot_lag = v;
		break;
	case OPT_INITIAL_STATE:
		if (strcmp(arg, "new") && strcmp(arg, "existing") && strcmp(arg, "bootstrap"))
			goto bad_value;
		c->join_existing = !strcmp(arg, "existing");
		c->bootstrap = !strcmp(arg, "bootstrap");
		break;
	case OPT_UNAUTHENTICATED_PEERS:
		if (parse_switch(arg, "refuse", "allow", &c->unauthenticated_peers))
			goto bad_value;
		break;
	case OPT_AUTO_REPAIR:
		if (parse_switch(arg, "off", "on", &c->auto_repair))
			goto bad_value;
		break;
	case OPT_LOG_SEGMENT_SIZE:
		if (config_parse_size(arg, &v) || v < (64u << 10))
			goto bad_value;
		c->log_segment_size = v;
		break;
	case OPT_ADMIN_LISTEN:
		if (!strcmp(arg, "none")) {
			c->admin_host[0] = '\0';
			c->admin_port = 0;
		} else if (config_parse_address(arg, c->admin_host, sizeof c->admin_host,
						&c->admin_port)) {
			return address_error("--admin-listen", "HOST:PORT or none", arg, err,
					     errlen);
		}
		break;
	case OPT_ENABLE_FLUSH:
		/* A flag on the command line (no value); "true"/"false" in the
		 * config file. */
		if (!arg || !strcmp(arg, "true") || !strcmp(arg, "yes") || !strcmp(arg, "1"))
			c->enable_flush = true;
		else if (!strcmp(arg, "false") || !strcmp(arg, "no") || !strcmp(arg, "0"))
			c->enable_flush = false;
		else
			goto bad_value;
		break;
	case OPT_METRICS_PER_REPLICA:
		if (!strcmp(arg, "auto"))
			c->metrics_per_replica = CONFIG_PER_REPLICA_AUTO;
		else if (!strcmp(arg, "on"))
			c->metrics_per_replica = CONFIG_PER_REPLICA_ON;
		else if (!strcmp(arg, "off"))
			c->metrics_per_replica = CONFIG_PER_REPLICA_OFF;
		else
			goto bad_value;
		break;
	case OPT_LOG_IO:
		if (!strcmp(arg, "direct"))
			c->log_buffered = false;
		else if (!strcmp(arg, "buffered"))
			c->log_buffered = true;
		else
			goto bad_value;
		break;
	case OPT_METRICS_PER_REPLICA_MAX:
		if (parse_count(arg, 0, UINT32_MAX, &v))
			goto bad_value;
		c->metrics_per_replica_max = (uint32_t)v;
		break;
	case OPT_TLS_CERT:
	case OPT_TLS_KEY:
	case OPT_TLS_CA:
	case OPT_PEER_TLS_CERT:
	case OPT_PEER_TLS_KEY:
	case OPT_PEER_TLS_CA:
	case OPT_USERS:
	case OPT_AUDIT_LOG: {
		char *dst = opt == OPT_TLS_CERT ? c->tls_cert :
			    opt == OPT_TLS_KEY ? c->tls_key :
			    opt == OPT_TLS_CA ? c->tls_ca :
			    opt == OPT_PEER_TLS_CERT ? c->peer_tls_cert :
			    opt == OPT_PEER_TLS_KEY ? c->peer_tls_key :
			    opt == OPT_PEER_TLS_CA ? c->peer_tls_ca :
			    opt == OPT_USERS ? c->users_file : c->audit_log;

		if (!*arg || strlen(arg) >= CONFIG_PATH_MAX) {
			snprintf(err, errlen, "--%s: empty or longer than %d bytes", name,
				 CONFIG_PATH_MAX - 1);
			return -EINVAL;
		}
		strcpy(dst, arg);
		break;
	}
	case OPT_TLS_HANDSHAKE_TIMEOUT:
		if (config_parse_duration(arg, &ms) || ms < 100 || ms > 600000) {
			snprintf(err, errlen, "--tls-handshake-timeout: expected 100ms to 600s, "
				 "got '%s'", arg);
			return -EINVAL;
		}
		c->tls_handshake_timeout_ms = ms;
		break;
	case OPT_AUTH_TIMEOUT:
		if (config_parse_duration(arg, &ms) || ms < 100 || ms > 600000) {
			snprintf(err, errlen, "--auth-timeout: expected 100ms to 600s, got '%s'",
				 arg);
			return -EINVAL;
		}
		c->auth_timeout_ms = ms;
		break;
	default:
		snprintf(err, errlen, "--%s: not a setting", name);
		return -EINVAL;
	}
	return 0;

bad_value:
	snprintf(err, errlen, "--%s: bad value '%s'", name, arg);
	return -EINVAL;
}

struct file_state {
	struct config *c;
	bool *peer_given;
	char *err;
	size_t errlen;
	bool failed;
};

/* inih's handler: one key = value. Returning 0 makes ini_parse report the
 * line; only the first failure's reason is kept. */
static int file_setting(void *user, const char *section, const char *key, const char *value)
{
	struct file_state *st = user;
	const struct option *o;

	(void)section; /* sections only group settings */
	if (st->failed)
		return 0;
	for (o = long_options; o->name; o++)
		if (!strcmp(o->name, key) && o->val != OPT_HELP && o->val != OPT_VERSION &&
		    o->val != OPT_CONFIG &&
		    o->val != OPT_PRINT_CONFIG)
			break;
	if (!o->name) {
		snprintf(st->err, st->errlen, "unknown key '%s'", key);
		st->failed = true;
		return 0;
	}
	if (apply(st->c, o->val, o->name, value, st->peer_given, st->err, st->errlen) != 0) {
		st->failed = true;
		return 0;
	}
	return 1;
}

int config_load_file(struct config *c, const char *path, bool *peer_given, char *err,
		     size_t errlen)
{
	char reason[400] = "";
	struct file_state st = { .c = c, .peer_given = peer_given, .err = reason,
				 .errlen = sizeof reason };
	FILE *f = fopen(path, "re");
	int line;

	if (!f) {
		snprintf(err, errlen, "--config %s: %s", path, strerror(errno));
		return -errno;
	}
	line = ini_parse_file(f, file_setting, &st);
	fclose(f);
	if (line == 0)
		return 0;
	if (line < 0) {
		snprintf(err, errlen, "--config %s: cannot read it", path);
		return -EIO;
	}
	snprintf(err, errlen, "%s:%d: %s", path, line,
		 st.failed ? reason : "not a 'key = value' line or a [section]");
	return -EINVAL;
}

int config_parse(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
	bool peer_given = false, print = false;
	int opt, rv;
	int idx = 0;

	/* The file first, wherever --config stands: flags override it. */
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "hV", long_options, &idx)) != -1) {
		if (opt == OPT_CONFIG) {
			rv = config_load_file(c, optarg, &peer_given, err, errlen);
			if (rv)
				return rv;
		}
	}
	optind = 1;
	while ((opt = getopt_long(argc, argv, "hV", long_options, &idx)) != -1) {
		switch (opt) {
		case OPT_CONFIG:
			break;
		case OPT_HELP:
		case 'h':
			config_usage(stdout, strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 :
					    argv[0]);
			return 1;
		case OPT_VERSION:
		case 'V':
			return CONFIG_PARSE_VERSION;
		case OPT_PRINT_CONFIG:
			print = true;
			break;
		case '?':
		case ':':
			snprintf(err, errlen, "unknown option or missing value: '%s'",
				 argv[optind - 1]);
			return -EINVAL;
		default:
			rv = apply(c, opt, long_options[idx].name, optarg, &peer_given, err, errlen);
			if (rv)
				return rv;
			break;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	if (c->max_key + c->max_value + 64 > c->max_frame) {
		snprintf(err, errlen, "--max-frame must exceed --max-key + --max-value");
		return -EINVAL;
	}
	if (!c->tls_cert[0] != !c->tls_key[0]) {
		snprintf(err, errlen, "%s needs %s too", c->tls_cert[0] ? "--tls-cert" : "--tls-key",
			 c->tls_cert[0] ? "--tls-key" : "--tls-cert");
		return -EINVAL;
	}
	if (c->tls_ca[0] && !c->tls_cert[0]) {
		snprintf(err, errlen, "--tls-ca needs --tls-cert and --tls-key");
		return -EINVAL;
	}
	if (!c->peer_tls_cert[0] != !c->peer_tls_key[0]) {
		snprintf(err, errlen, "%s needs %s too",
			 c->peer_tls_cert[0] ? "--peer-tls-cert" : "--peer-tls-key",
			 c->peer_tls_cert[0] ? "--peer-tls-key" : "--peer-tls-cert");
		return -EINVAL;
	}
	if (c->peer_tls_cert[0] && !c->peer_tls_ca[0] && !c->tls_ca[0]) {
		snprintf(err, errlen, "--peer-tls-cert needs --peer-tls-ca (or --tls-ca)");
		return -EINVAL;
	}
	if (c->peer_tls_ca[0] && !c->peer_tls_cert[0] && !c->tls_cert[0]) {
		snprintf(err, errlen, "--peer-tls-ca needs --peer-tls-cert and --peer-tls-key "
			 "(or --tls-cert and --tls-key)");
		return -EINVAL;
	}
	rv = check_cluster(c, peer_given, err, errlen);
	if (rv == 0 && print) {
		config_print(stdout, c);
		return 1;
	}
	return rv;
}

static const char *level_name(int level)
{
	switch (level) {
	case LOG_DEBUG: return "debug";
	case LOG_WARN: return "warn";
	case LOG_ERROR: return "error";
	default: return "info";
	}
}

void config_print(FILE *out, const struct config *c)
{
	char addr[CONFIG_ADDR_MAX + 8];
	unsigned i;

	fprintf(out, "# ringkvd's effective settings (--print-config)\n");
	config_format_address(c->listen_host, c->listen_port, addr, sizeof addr);
	fprintf(out, "listen = %s\n", addr);
	if (c->resp_host[0]) {
		config_format_address(c->resp_host, c->resp_port, addr, sizeof addr);
		fprintf(out, "resp-listen = %s\n", addr);
	}
	if (c->admin_host[0]) {
		config_format_address(c->admin_host, c->admin_port, addr, sizeof addr);
		fprintf(out, "admin-listen = %s\n", addr);
	} else {
		fprintf(out, "admin-listen = none\n");
	}
	fprintf(out, "data-dir = %s\n", c->data_dir);
	fprintf(out, "enable-flush = %s\n", c->enable_flush ? "true" : "false");
	fprintf(out, "metrics-per-replica = %s\n",
		c->metrics_per_replica == CONFIG_PER_REPLICA_ON ? "on" :
		c->metrics_per_replica == CONFIG_PER_REPLICA_OFF ? "off" : "auto");
	fprintf(out, "metrics-per-replica-max = %u\n", c->metrics_per_replica_max);
	fprintf(out, "log-io = %s\n", c->log_buffered ? "buffered" : "direct");
	if (c->cores)
		fprintf(out, "cores = %u\n", c->cores);
	if (c->shards)
		fprintf(out, "shards = %u\n", c->shards);
	fprintf(out, "memtable-size = %" PRIu64 "\n", c->memtable_size);
	fprintf(out, "memtable-budget = %" PRIu64 "\n", c->memtable_budget);
	fprintf(out, "block-cache-size = %" PRIu64 "\n", c->block_cache_size);
	fprintf(out, "manifest-rewrite-min = %" PRIu64 "\n", c->manifest_rewrite_min);
	fprintf(out, "max-frame = %u\nmax-key = %u\nmax-value = %u\n", c->max_frame,
		c->max_key, c->max_value);
	fprintf(out, "max-inflight = %u\nmax-connections = %u\n", c->max_inflight,
		c->max_connections);
	fprintf(out, "log-level = %s\n", level_name(c->log_level));
	fprintf(out, "log-format = %s\n", c->log_format == LOG_JSON ? "json" : "text");
	fprintf(out, "node-id = %" PRIu64 "\n", c->node_id);
	if (c->peer_host[0]) {
		config_format_address(c->peer_host, c->peer_port, addr, sizeof addr);
		fprintf(out, "peer-listen = %s\n", addr);
	}
	if (c->initial_given) {
		fprintf(out, "initial-cluster = ");
		for (i = 0; i < c->initial_count; i++) {
			config_format_address(c->initial[i].host, c->initial[i].port, addr,
					      sizeof addr);
			fprintf(out, "%s%" PRIu64 "=%s", i ? "," : "", c->initial[i].id, addr);
		}
		fprintf(out, "\n");
	}
	if (c->replicas)
		fprintf(out, "replicas = %u\n", c->replicas);
	if (c->cluster_token[0])
		fprintf(out, "cluster-token = %s\n", c->cluster_token);
	fprintf(out, "election-timeout = %ums\nheartbeat-interval = %ums\n",
		c->election_timeout_ms, c->heartbeat_ms);
	fprintf(out, "snapshot-rate = %" PRIu64 "\n", c->snapshot_rate);
	fprintf(out, "snapshot-lag = %" PRIu64 "\n", c->snapshot_lag);
	fprintf(out, "initial-cluster-state = %s\n",
		c->join_existing ? "existing" : c->bootstrap ? "bootstrap" : "new");
	fprintf(out, "auto-repair = %s\n", c->auto_repair ? "on" : "off");
	if (c->log_segment_size)
		fprintf(out, "log-segment-size = %" PRIu64 "\n", c->log_segment_size);
	if (c->tls_cert[0])
		fprintf(out, "tls-cert = %s\ntls-key = %s\n", c->tls_cert, c->tls_key);
	if (c->tls_ca[0])
		fprintf(out, "tls-ca = %s\n", c->tls_ca);
	fprintf(out, "tls-handshake-timeout = %ums\n", c->tls_handshake_timeout_ms);
	if (c->peer_tls_cert[0])
		fprintf(out, "peer-tls-cert = %s\npeer-tls-key = %s\n", c->peer_tls_cert,
			c->peer_tls_key);
	if (c->peer_tls_ca[0])
		fprintf(out, "peer-tls-ca = %s\n", c->peer_tls_ca);
	if (c->users_file[0])
		fprintf(out, "users = %s\n", c->users_file);
	if (c->audit_log[0])
		fprintf(out, "audit-log = %s\n", c->audit_log);
	fprintf(out, "auth-timeout = %ums\n", c->auth_timeout_ms);
	fprintf(out, "unauthenticated-peers = %s\n", c->unauthenticated_peers ? "allow" : "refuse");
}
