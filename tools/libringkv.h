/*
 * libringkv: the C client of ringkv's native protocol.
 *
 * One struct rkv_client is one TCP connection, used by one thread. The simple
 * calls (rkv_get, rkv_put, rkv_del, rkv_scan) send one request and wait for
 * its answer.
 * For pipelining, queue requests with rkv_send_*, push them out with
 * rkv_flush, and collect answers with rkv_recv in whatever order the server
 * sends them (each carries its request id).
 *
 * Return values: 0 (RKV_STATUS_OK), a positive server status (NOT_FOUND = 1 ...
 * DATA_LOSS = 9, as in proto/ringkv.proto), or a negative errno / RKV_E* code for
 * a local or transport failure (the connection is then unusable).
 *
 * Timeouts: rkv_connect gives up after RKV_DEFAULT_CONNECT_TIMEOUT_MS
 * (rkv_connect_timeout takes another); a request waits for its answer as
 * long as rkv_set_timeout allows (by default forever). Either returns
 * -ETIMEDOUT, and a timed-out connection is unusable like any other
 * transport failure: close it and connect again.
 */
#ifndef RINGKV_LIBRINGKV_H
#define RINGKV_LIBRINGKV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum rkv_status {
	RKV_STATUS_OK = 0,
	RKV_STATUS_NOT_FOUND = 1,
	RKV_STATUS_INVALID_ARGUMENT = 2,
	RKV_STATUS_TOO_LARGE = 3,
	RKV_STATUS_RESOURCE_EXHAUSTED = 4,
	RKV_STATUS_UNAVAILABLE = 5,
	RKV_STATUS_NOT_LEADER = 6,
	RKV_STATUS_TIMEOUT = 7,
	RKV_STATUS_INTERNAL = 8,
	RKV_STATUS_DATA_LOSS = 9,   /* stored data failed its checksum */
	RKV_STATUS_UNKNOWN = 10,    /* a write's outcome is unknown (leadership lost
				     * before it was seen committed): it may or may
				     * not have been applied */
	RKV_STATUS_UNAUTHENTICATED = 11, /* no (or a failed) authentication: rkv_auth_set */
	RKV_STATUS_PERMISSION_DENIED = 12, /* the user's role or key prefix forbids it */
};

struct rkv_client;

/* One key and its value (a SCAN answer). */
struct rkv_kv {
	const void *key;
	size_t key_len;
	const void *value;
	size_t value_len;
};

/*
 * A server answer. value/error/pairs stay valid until the next call on the
 * client.
 */
struct rkv_result {
	uint64_t id;
	int status;          /* enum rkv_status */
	const void *value;
	size_t value_len;
	const char *error;   /* NUL-terminated, "" when none */
	const struct rkv_kv *pairs; /* SCAN: pair_count pairs in key order */
	size_t pair_count;
};

/* Name of a status ("OK", "NOT_FOUND", ...) or of a negative error code. */
const char *rkv_status_name(int status);

/*
 * Connects to "HOST:PORT" (IPv4, IPv6 in brackets, or a host name). 0 or a
 * negative errno; `err` (may be NULL) gets a readable reason.
 */
int rkv_connect(const char *address, struct rkv_client **out, char *err, size_t errlen);
void rkv_close(struct rkv_client *c);

/*
 * TLS: from now on every connection of the process (rkv_connect*, the
 * cluster client's) speaks TLS 1.3 and accepts only a server whose
 * certificate chains to the PEM CA certificates in `ca_file` and names the
 * host or IP address connected to. NULL or "" turns TLS off. Without a
 * call, the first connect reads the file named by RINGKV_TLS_CA (TLS off
 * when unset). Connections already open keep what they had. 0, or a
 * negative code with the reason in `err` (missing or not PEM).
 */
int rkv_tls_set_ca(const char *ca_file, char *err, size_t errlen);

/*
 * Credentials (ringkvd --users): from now on every connection of the
 * process authenticates as `user` right after connecting; a refused
 * password fails the connect with -EACCES. NULL or "" turns it off.
 * Without a call, the first connect reads the file named by
 * RINGKV_AUTH_FILE (see rkv_auth_set_file), else RINGKV_USER and
 * RINGKV_PASSWORD. 0, or -EINVAL (too long) with the reason in `err`.
 */
int rkv_auth_set(const char *user, const char *password, char *err, size_t errlen);
/* The same from a file of two lines: the user, then the password. 0 or a
 * negative code with the reason in `err` (missing, not two lines). */
int rkv_auth_set_file(const char *path, char *err, size_t errlen);

/* What rkv_connect waits for the TCP handshake, in milliseconds. */
#define RKV_DEFAULT_CONNECT_TIMEOUT_MS 10000

/*
 * rkv_connect with a bound on the whole connect (every address the name
 * resolves to, in turn), in milliseconds; 0 or less waits as long as the
 * kernel does (minutes). -ETIMEDOUT when it passes. Name resolution itself
 * is not bounded (getaddrinfo cannot be).
 */
int rkv_connect_timeout(const char *address, int timeout_ms, struct rkv_client **out,
			char *err, size_t errlen);

/*
 * Bounds every later call on `c` (rkv_get ... rkv_scan, rkv_ping, rkv_flush,
 * rkv_recv): the whole call, sending and waiting, takes at most timeout_ms
 * milliseconds, or returns -ETIMEDOUT and the connection is unusable.
 * 0 or less: no bound (the default).
 */
void rkv_set_timeout(struct rkv_client *c, int timeout_ms);
int rkv_get_timeout(const struct rkv_client *c);

/*
 * One round trip that touches no data: 0 when the server answered in the
 * native protocol, or a negative transport error (-ETIMEDOUT, RKV_ECLOSED,
 * or RKV_EPROTO when the port speaks another protocol, e.g. the RESP port).
 */
int rkv_ping(struct rkv_client *c);

/* Blocking calls. rkv_get copies the value into a malloc'd buffer the caller frees. */
int rkv_get(struct rkv_client *c, const void *key, size_t key_len,
	    void **value, size_t *value_len);

/*
 * A stale read (GetRequest.stale): the node answers from its own replica's
 * applied state without a ReadIndex round (forwarded to a replica holder
 * when it has none). The value was committed, but may be older than the
 * last acknowledged write. Same results as rkv_get.
 */
int rkv_get_stale(struct rkv_client *c, const void *key, size_t key_len, void **value,
		  size_t *value_len);
int rkv_put(struct rkv_client *c, const void *key, size_t key_len,
	    const void *value, size_t value_len);
int rkv_del(struct rkv_client *c, const void *key, size_t key_len);

/*
 * Range scan: up to `limit` keys in [start, end), in key order across the
 * whole server, with their values. An empty end (end_len 0) means no upper
 * bound, an empty start the first key; limit 0 asks for the server's default
 * (1,000); the server caps it (10,000) and may answer fewer pairs than
 * asked, to keep the answer within its frame limit or its rounds bound.
 * To page, ask again from the last key returned plus one zero byte; an
 * answer with no pairs means the range is exhausted.
 *
 * On OK, *pairs is one malloc'd block holding the pairs and their bytes
 * (NULL when *count is 0); free it with rkv_scan_free. A scan is not a
 * snapshot: see docs/ARCHITECTURE.md, "Range scans".
 */
int rkv_scan(struct rkv_client *c, const void *start, size_t start_len,
	     const void *end, size_t end_len, uint32_t limit,
	     struct rkv_kv **pairs, size_t *count);
void rkv_scan_free(struct rkv_kv *pairs);

/* Pipelining: queue (copied into the send buffer), returns the id in *id. */
int rkv_send_get(struct rkv_client *c, const void *key, size_t key_len, uint64_t *id);
int rkv_send_put(struct rkv_client *c, const void *key, size_t key_len,
		 const void *value, size_t value_len, uint64_t *id);
int rkv_send_del(struct rkv_client *c, const void *key, size_t key_len, uint64_t *id);
/* Its answer's pairs arrive in rkv_result.pairs. */
int rkv_send_scan(struct rkv_client *c, const void *start, size_t start_len,
		  const void *end, size_t end_len, uint32_t limit, uint64_t *id);
/* Writes every queued request to the socket. */
int rkv_flush(struct rkv_client *c);
/* Waits for the next response (flushing first). 0 with *res filled, or < 0. */
int rkv_recv(struct rkv_client *c, struct rkv_result *res);

/* The text of the last server error or transport failure on this client. */
const char *rkv_last_error(const struct rkv_client *c);

/* ---- the cluster: its map, its status, and routing ----------------------- */

#define RKV_ADDRESS_MAX 520     /* bytes of an address, NUL included */
#define RKV_MAX_REPLICAS 16     /* replicas of one shard */

struct rkv_node {
	uint64_t id;
	char peer[RKV_ADDRESS_MAX];   /* "HOST:PORT" of its peer transport, "" = none */
	char client[RKV_ADDRESS_MAX]; /* native client address, "" = not known */
	char resp[RKV_ADDRESS_MAX];   /* RESP address, "" = off or not known */
};

struct rkv_replica {
	uint64_t node;
	uint32_t core;                /* UINT32_MAX: not known to the node asked */
};

struct rkv_shard {
	uint32_t id;
	uint32_t slot_start;          /* its slots: [slot_start, slot_end) */
	uint32_t slot_end;
	uint64_t leader;              /* node id, 0 = not known */
	uint64_t term;                /* term the leader is known for */
	unsigned replica_count;
	struct rkv_replica replicas[RKV_MAX_REPLICAS]; /* preferred leader first */
};

/*
 * The cluster map one node answered (proto/ringkv.proto, ClusterMap): the
 * larger version is the newer view of one cluster; shard by shard, the
 * larger term.
 */
struct rkv_cluster_map {
	uint64_t version;
	uint64_t cluster_id;
	uint64_t epoch;
	uint64_t node_id;             /* the node that answered */
	uint32_t slots;               /* slot = XXH3_64(key) % slots */
	size_t node_count;
	struct rkv_node *nodes;
	size_t shard_count;
	struct rkv_shard *shards;     /* by id: shards[i].id == i */
};

/* Asks c's node for the map: 0 with *out (free with rkv_cluster_map_free),
 * a server status, or a negative error. */
int rkv_cluster_map(struct rkv_client *c, struct rkv_cluster_map **out);
void rkv_cluster_map_free(struct rkv_cluster_map *m);

/* The shard of a key in map m. */
const struct rkv_shard *rkv_cluster_map_shard(const struct rkv_cluster_map *m,
					      const void *key, size_t key_len);

struct rkv_follower {
	uint64_t node;
	uint64_t match;
	uint64_t lag;
};

struct rkv_replica_status {
	uint32_t shard;
	uint32_t core;
	char role[16];                /* "leader", "follower", "candidate", ... */
	uint64_t term, leader, commit, applied, last_index, persisted, snapshot_index;
	uint64_t proposals, reads;
	int apply_stopped;
	int sleeping;                 /* its group sleeps (idle: no ticks, no heartbeats) */
	char snapshot[16];            /* in progress: "sending", "receiving"; "" = none */
	unsigned follower_count;
	struct rkv_follower followers[16];
};

struct rkv_peer_status {
	uint64_t node;
	int reachable;                /* at least one core's connection is up */
	uint32_t connected_cores, cores;
	uint64_t bytes_sent, bytes_received, queued_bytes, dropped_frames, reconnects;
	int32_t last_error;
};

/* One node's own view (proto/ringkv.proto, ClusterStatus). */
struct rkv_cluster_status {
	uint64_t node_id;
	uint64_t cluster_id;
	uint32_t cores;
	size_t replica_count;
	struct rkv_replica_status *replicas;
	size_t peer_count;
	struct rkv_peer_status *peers;
};

int rkv_cluster_status(struct rkv_client *c, struct rkv_cluster_status **out);
void rkv_cluster_status_free(struct rkv_cluster_status *st);

/*
 * Routing. A struct rkv_router fetches the cluster map from the first of
 * `seeds` (comma-separated addresses) that answers, caches it, and sends
 * each GET/PUT/DELETE straight to the node that leads the key's shard, over
 * one connection per node opened when first needed (with the connect
 * timeout; requests bounded by rkv_router_set_timeout). Requests are marked
 * no_forward: a node that does not lead the shard answers NOT_LEADER
 * (with a leader hint when it knows one) instead of forwarding. On
 * NOT_LEADER or UNAVAILABLE the router follows the hint, refreshes the map
 * and retries, at most RKV_ROUTER_ATTEMPTS times with a short backoff; a
 * node that cannot be reached is skipped over to the shard's other
 * replicas. The result codes are those of rkv_get/rkv_put/rkv_del.
 * One thread per router.
 */
#define RKV_ROUTER_ATTEMPTS 10

struct rkv_router;

int rkv_router_open(const char *seeds, int connect_timeout_ms, struct rkv_router **out,
		    char *err, size_t errlen);
void rkv_router_close(struct rkv_router *r);
void rkv_router_set_timeout(struct rkv_router *r, int timeout_ms);
int rkv_router_get(struct rkv_router *r, const void *key, size_t key_len, void **value,
		   size_t *value_len);
int rkv_router_put(struct rkv_router *r, const void *key, size_t key_len, const void *value,
		   size_t value_len);
int rkv_router_del(struct rkv_router *r, const void *key, size_t key_len);
/* Fetches the map again (from any node that answers). */
int rkv_router_refresh(struct rkv_router *r);
/* The cached map (valid until the next call on r). */
const struct rkv_cluster_map *rkv_router_map(const struct rkv_router *r);
const char *rkv_router_last_error(const struct rkv_router *r);

struct rkv_router_stats {
	uint64_t requests;            /* routed calls */
	uint64_t retries;             /* attempts after the first */
	uint64_t not_leader;          /* NOT_LEADER answers seen */
	uint64_t refreshes;           /* map fetches */
	uint64_t unreachable;         /* connections that failed */
};
void rkv_router_stats(const struct rkv_router *r, struct rkv_router_stats *out);

/* ---- online backups (Request.backup; docs/OPERATIONS.md) --------------- */

#define RKV_BACKUP_READ_MAX (1u << 20) /* bytes of one rkv_backup_read */

struct rkv_backup_file {
	char name[32];               /* "000012.sst" or "MANIFEST" (checked: a
				      * plain name, never a path) */
	uint64_t size;
};

struct rkv_backup {
	uint64_t id;                 /* the server's pin */
	uint32_t shard;
	uint64_t index;              /* the pinned version's flushed index */
	uint64_t term;               /* the Raft term of that index */
	struct rkv_backup_file *files; /* the tables, then MANIFEST */
	size_t file_count;
};

/*
 * Pins shard `shard` on the node `c` talks to, which must lead it
 * (NOT_LEADER otherwise, *leader_hint set when the node knows the leader):
 * the pinned version holds every write acknowledged before this call.
 * 0 with *out (free with rkv_backup_free), a status > 0 (rkv_last_error
 * says why) or a negative transport error.
 */
int rkv_backup_begin(struct rkv_client *c, uint32_t shard, struct rkv_backup **out,
		     uint64_t *leader_hint);
void rkv_backup_free(struct rkv_backup *b);
/*
 * Reads up to `len` (<= RKV_BACKUP_READ_MAX) bytes of file `file` of backup
 * `id` at `offset` into buf; *got = bytes read (0 at the end). The bytes'
 * CRC32C is checked: RKV_ECORRUPT when it does not match.
 */
int rkv_backup_read(struct rkv_client *c, uint64_t id, uint32_t file, uint64_t offset,
		    void *buf, uint32_t len, uint32_t *got);
/* Unpins backup `id` (the server drops it anyway after 60 s unused). */
int rkv_backup_end(struct rkv_client *c, uint64_t id);

#ifdef __cplusplus
}
#endif

/* ---- moving a shard replica (docs/cluster/membership.md) ------------------ */

/* Where a move stands, as the asked leader knows it. */
struct rkv_move {
	uint32_t shard;
	uint32_t phase;               /* RKV_MOVE_* */
	uint64_t from_node, to_node;
	uint32_t to_core;
	uint64_t snapshot_bytes;      /* streamed to the target by that leader */
	uint64_t log_lag;             /* the target's lag behind the leader's log */
	uint64_t elapsed_ms;
	uint64_t next_leader;         /* RKV_MOVE_HANDED_ON: who carries it on */
	char reason[256];             /* RKV_MOVE_FAILED: why; else a note or "" */
	uint64_t snapshot_total;      /* snapshot_bytes once the stream under way
				       * is sent; 0: none under way */
	uint64_t rate;                /* the move's own cap, bytes/s; 0: the node's */
	uint32_t cancelled_in;        /* CANCELLING/CANCELLED: the phase it left */
};

enum rkv_move_phase {
	RKV_MOVE_NONE = 0, RKV_MOVE_HOST, RKV_MOVE_LEARNER, RKV_MOVE_CATCHUP,
	RKV_MOVE_PROMOTE, RKV_MOVE_TRANSFER, RKV_MOVE_REMOVE, RKV_MOVE_DROP,
	RKV_MOVE_DONE, RKV_MOVE_FAILED, RKV_MOVE_HANDED_ON, RKV_MOVE_CANCELLING,
	RKV_MOVE_CANCELLED,
};

/* "host", "learner", ... ("?" for an unknown value). */
const char *rkv_move_phase_name(uint32_t phase);

/*
 * Starts moving shard `shard`'s replica from node from_node to node
 * to_node's core to_core; with status_only, only asks where the last move
 * of the shard stands. `c` must talk to the shard's leader: NOT_LEADER
 * otherwise, with *leader_hint set when the node knows the leader (and *out
 * filled when the node led the move before). 0 with *out; a status > 0 with
 * the reason in rkv_last_error (INVALID_ARGUMENT: refused, nothing changed;
 * UNAVAILABLE: a move of the shard is in progress); or a negative transport
 * error.
 */
int rkv_shard_move(struct rkv_client *c, uint32_t shard, uint64_t from_node, uint64_t to_node,
		   uint32_t to_core, int status_only, struct rkv_move *out,
		   uint64_t *leader_hint);

/* What rkv_shard_move_ask asks: rkv_shard_move's arguments, and more. */
struct rkv_move_request {
	uint32_t shard;
	uint64_t from_node, to_node;
	uint32_t to_core;
	int status_only;
	int cancel;                   /* roll the move back (before its REMOVE):
				       * to_node names the target when the
				       * leader drives no move, else 0 */
	uint64_t rate;                /* start: the move's snapshot cap, bytes/s;
				       * 0: the node's --snapshot-rate */
	int transfer_leader;          /* instead: hand the shard's leadership to
				       * voter to_node (0: the most caught-up
				       * other voter); OK once under way */
};

/* As rkv_shard_move, with every option of the request. */
int rkv_shard_move_ask(struct rkv_client *c, const struct rkv_move_request *q,
		       struct rkv_move *out, uint64_t *leader_hint);

#endif
