/*
 * ringkvd's configuration: embedded defaults, overridden by a config file
 * (--config FILE: INI lines "key = value", keys named like the flags without
 * their dashes, [sections] allowed for grouping and ignored), overridden by
 * command-line flags. Parsed once in main() before any reactor starts, then
 * read-only.
 */
#ifndef RINGKV_CORE_CONFIG_H
#define RINGKV_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_ADDR_MAX 256
#define CONFIG_MAX_NODES 64        /* founding nodes in --initial-cluster */
#define CONFIG_TOKEN_MAX 65        /* --cluster-token, with its NUL */
#define CONFIG_PATH_MAX 1024       /* --tls-* file names, with their NUL */

/* One entry of --initial-cluster: a founding node and its peer address. */
struct config_node {
	uint64_t id;                       /* >= 1 */
	char host[CONFIG_ADDR_MAX];        /* "" = none (a one-node cluster without --peer-listen) */
	uint16_t port;
};

/* --metrics-per-replica: whether /metrics carries one series per replica. */
enum config_per_replica {
	CONFIG_PER_REPLICA_AUTO,           /* on while the node holds at most
					    * metrics_per_replica_max replicas */
	CONFIG_PER_REPLICA_ON,
	CONFIG_PER_REPLICA_OFF,
};

struct config {
	char listen_host[CONFIG_ADDR_MAX]; /* native protocol address, "127.0.0.1" */
	uint16_t listen_port;              /* 7070; 0 = any free port */
	char resp_host[CONFIG_ADDR_MAX];   /* RESP2 address; "" = off */
	uint16_t resp_port;
	char data_dir[4096];               /* "./data" */
	unsigned cores;                    /* 0 = every CPU of the process cpuset */
	unsigned shards;                   /* 0 = one per core, on first start only */
	uint64_t memtable_size;            /* per shard, bytes (64 MiB) */
	uint64_t memtable_budget;          /* per core, all its shards' (512 MiB) */
	uint64_t manifest_rewrite_min;     /* rewrite a manifest past this (1 MiB) */
	uint64_t block_cache_size;         /* SSTable block cache per core, bytes (256 MiB) */
	uint32_t max_frame;                /* client frame payload limit (4 MiB) */
	uint32_t max_key;                  /* 4 KiB */
	uint32_t max_value;                /* 1 MiB */
	uint32_t max_inflight;             /* requests in flight per connection (1024) */
	uint32_t max_connections;          /* per core (4096) */
	int log_level;                     /* enum log_level */
	int log_format;                    /* enum log_format (text) */
	char admin_host[CONFIG_ADDR_MAX];  /* admin HTTP port; "" = off (the default) */
	uint16_t admin_port;
	bool enable_flush;                 /* --enable-flush: FLUSHDB/FLUSHALL allowed */
	int metrics_per_replica;           /* enum config_per_replica (auto) */
	uint32_t metrics_per_replica_max;  /* auto: per-replica series up to this
					    * many replicas on the node (1024) */
	bool log_buffered;                 /* --log-io buffered: the Raft log through
					    * the page cache + fdatasync (direct) */

	/* The cluster (see docs/cluster/placement.md). After config_parse,
	 * `initial` always lists the founding nodes, sorted by id: without
	 * --initial-cluster it holds this node alone (a one-node cluster). */
	uint64_t node_id;                  /* --node-id (1) */
	char peer_host[CONFIG_ADDR_MAX];   /* --peer-listen; defaults to this node's entry */
	uint16_t peer_port;
	bool initial_given;                /* --initial-cluster was on the command line */
	unsigned initial_count;            /* entries of `initial`, >= 1 */
	struct config_node initial[CONFIG_MAX_NODES];
	unsigned replicas;                 /* R; 0 = not given (recorded, or min(3, nodes)) */
	uint32_t election_timeout_ms;      /* timeouts are random in [e, 2e) (300) */
	uint32_t heartbeat_ms;             /* < election timeout (50) */
	uint64_t snapshot_rate;            /* bytes/s a snapshot is streamed at; 0 = unlimited */
	uint64_t snapshot_lag;             /* entries a leader keeps for a lagging
					    * follower before it needs a snapshot (65536) */
	bool join_existing;                /* --initial-cluster-state existing */
	bool bootstrap;                    /* --initial-cluster-state bootstrap: this
					    * node never ran in its cluster before
					    * (taken on a new data dir only) */
	bool auto_repair;                  /* --auto-repair on|off (on): a damaged
					    * core log is repaired from the peers */
	uint64_t log_segment_size;         /* --log-segment-size: core log segments
					    * (0: the log's default, 64 MiB) */
	char cluster_token[CONFIG_TOKEN_MAX]; /* "" = not given */

	/* TLS 1.3 on the client ports (native and RESP); "" = plaintext.
	 * --tls-cert and --tls-key come together. */
	char tls_cert[CONFIG_PATH_MAX];    /* PEM certificate chain */
	char tls_key[CONFIG_PATH_MAX];     /* PEM private key */
	char tls_ca[CONFIG_PATH_MAX];      /* PEM CA certificates; "" = none */
	uint32_t tls_handshake_timeout_ms; /* a client still handshaking after
					    * this is closed (10 s) */
	/* Mutual TLS on the peer port: on when a CA is given (--peer-tls-ca,
	 * else --tls-ca); each file defaults to its --tls-* one. */
	char peer_tls_cert[CONFIG_PATH_MAX];
	char peer_tls_key[CONFIG_PATH_MAX];
	char peer_tls_ca[CONFIG_PATH_MAX];

	/* Client authentication (server/users.h, server/auth.h). */
	char users_file[CONFIG_PATH_MAX];  /* --users: "" = no authentication */
	char audit_log[CONFIG_PATH_MAX];   /* --audit-log: "" = audit lines to the log */
	uint32_t auth_timeout_ms;          /* a client not authenticated after this
					    * is closed (5 s) */
	bool unauthenticated_peers;        /* --unauthenticated-peers allow: a cluster
					    * node with --users may run without peer
					    * mutual TLS (refused by default) */
};

void config_defaults(struct config *c);

/*
 * Parses argv into `c` (which holds defaults), reading the --config file
 * first wherever the flag stands. Returns 0; 1 when -h/--help or
 * --print-config was asked (the text already printed to stdout);
 * CONFIG_PARSE_VERSION for --version (nothing printed: the program prints
 * its own version); a negative errno on a bad flag, value or file, with the
 * reason in `err`, one line naming the bad argument ("FILE:LINE: reason" for
 * the file; the caller prints it with a hint to --help, then exits 2).
 */
#define CONFIG_PARSE_VERSION 2
int config_parse(struct config *c, int argc, char **argv, char *err, size_t errlen);

/*
 * Applies the settings of config file `path` to `c` (config_parse does this
 * for --config). Every key must name a flag; `*peer_given` is set when the
 * file holds peer-listen. 0; -EINVAL with "PATH:LINE: reason" in `err` for
 * an unknown key, a bad value or a malformed line (the first one); a
 * negative errno when the file cannot be opened.
 */
int config_load_file(struct config *c, const char *path, bool *peer_given, char *err,
		     size_t errlen);

/* Writes the settings of `c` as a config file config_load_file accepts. */
void config_print(FILE *out, const struct config *c);

void config_usage(FILE *out, const char *prog);

/*
 * Parses "HOST:PORT" or "[V6]:PORT". 0 or -EINVAL. Exposed for the tools.
 */
int config_parse_address(const char *text, char *host, size_t hostlen, uint16_t *port);

/* Parses "123", "64K", "64MiB", "1G"... into bytes. 0 or -EINVAL. */
int config_parse_size(const char *text, uint64_t *out);

/* Parses a duration "500ms", "2s" or "300" (milliseconds) into
 * milliseconds. 0 or -EINVAL (also when it does not fit 32 bits). */
int config_parse_duration(const char *text, uint32_t *ms);

/*
 * Parses --initial-cluster "1=HOST:PORT,2=HOST:PORT,..." into `nodes`
 * (at most `max`), sorted by id. Refuses an empty list, a malformed entry,
 * id 0, port 0, a duplicate id or a duplicate address. Returns the count or
 * -EINVAL with the reason in `err`.
 */
int config_parse_initial_cluster(const char *text, struct config_node *nodes, unsigned max,
				 char *err, size_t errlen);

/* Writes "HOST:PORT" ("[V6]:PORT" when HOST holds a ':'), or "-" for a node
 * without an address, into buf (NUL-terminated, truncated to len). */
void config_format_address(const char *host, uint16_t port, char *buf, size_t len);

#endif
