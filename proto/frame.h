/*
 * Frame codec of the client protocol: a u32 little-endian length, then one
 * protobuf message (proto/ringkv.proto). Decoding is zero-copy: keys and
 * values point into the caller's buffer, and every length is checked against
 * the limits before anything is used, so bad input costs no allocation.
 */
#ifndef RINGKV_PROTO_FRAME_H
#define RINGKV_PROTO_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER_SIZE 4

struct frame_limits {
	uint32_t max_frame; /* payload bytes after the length prefix (4 MiB) */
	uint32_t max_key;   /* 4 KiB */
	uint32_t max_value; /* 1 MiB */
};

void frame_limits_default(struct frame_limits *l);

struct frame_slice {
	const uint8_t *data;
	uint32_t len;
};

/* Mirrors the oneof in Request; numbering is ours, not the wire's. */
enum frame_op {
	FRAME_OP_NONE = 0,
	FRAME_OP_GET,
	FRAME_OP_PUT,
	FRAME_OP_DELETE,
	FRAME_OP_SCAN,
	FRAME_OP_CLUSTER_MAP,    /* no key: answered with a struct frame_map */
	FRAME_OP_CLUSTER_STATUS, /* no key: answered with a struct frame_status */
	FRAME_OP_BACKUP,         /* no key: frame_request.backup, answered with a
				  * struct frame_backup (proto/frame_backup.h) */
	FRAME_OP_SHARD_MOVE,     /* no key: frame_request.move, answered with a
				  * struct frame_move (proto/frame_move.h) */
	FRAME_OP_AUTH,           /* AuthRequest: key = the user name, value =
				  * the password (limits max_key, max_value) */
};

/* Request.shard_move (ShardMoveRequest): values as on the wire, unchecked. */
struct frame_move_req {
	uint32_t shard;
	uint64_t from_node;
	uint64_t to_node;
	uint32_t to_core;
	bool status_only;
	bool cancel;              /* roll the move back */
	uint64_t rate;            /* the move's snapshot cap, bytes/s; 0: none */
	bool transfer_leader;     /* hand leadership to to_node instead */
};

/* Request.backup (BackupRequest): values as on the wire, unchecked. */
struct frame_backup_req {
	int op;                   /* ringkv_BackupOp */
	uint32_t shard;
	uint64_t backup_id;
	uint32_t file;
	uint64_t offset;
	uint32_t length;
};

/* SCAN limits: a request's limit of 0 asks for the default; a larger one
 * than the maximum is cut to it. */
#define FRAME_SCAN_DEFAULT_LIMIT 1000u
#define FRAME_SCAN_MAX_LIMIT 10000u

struct frame_request {
	uint64_t id;
	enum frame_op op;
	struct frame_slice key;   /* SCAN: the start key (inclusive, may be empty) */
	struct frame_slice value; /* PUT only */
	struct frame_slice end;   /* SCAN: end key (exclusive); empty = unbounded */
	uint32_t limit;           /* SCAN: pairs wanted; decoding turns 0 into the
				   * default and caps it at FRAME_SCAN_MAX_LIMIT */
	bool no_forward;          /* Request.no_forward */
	bool stale;               /* GET, SCAN: a stale read (GetRequest.stale) */
	struct frame_backup_req backup; /* BACKUP only */
	struct frame_move_req move;     /* SHARD_MOVE only */
};

/* One key and its value, both slices of someone else's memory. */
struct frame_kv {
	struct frame_slice key;
	struct frame_slice value;
};

/* ---- cluster map and status (Response fields 8 and 9) ----------------- */

/* Limits a decoder enforces (an encoder never exceeds them for real data). */
#define FRAME_MAP_MAX_REPLICAS 16     /* replicas of one shard (>= RAFT_MAX_SERVERS) */
#define FRAME_STATUS_MAX_FOLLOWERS 16 /* followers of one leader (>= RAFT_MAX_SERVERS) */
#define FRAME_ADDRESS_MAX 512         /* bytes of one address or role name */

struct frame_map_node {
	uint64_t id;
	struct frame_slice peer;   /* "HOST:PORT", may be empty */
	struct frame_slice client; /* native client address; empty = unknown */
	struct frame_slice resp;   /* RESP address; empty = off or unknown */
};

struct frame_map_replica {
	uint64_t node;
	uint32_t core;
};

struct frame_map_shard {
	uint32_t id;
	uint32_t slot_start;       /* first slot */
	uint32_t slot_end;         /* one past the last */
	uint64_t leader;           /* node id, 0 = unknown */
	uint64_t term;             /* term the leader is known for, 0 = none */
	uint32_t replica_count;
	struct frame_map_replica replicas[FRAME_MAP_MAX_REPLICAS];
};

/* The map: see ClusterMap in proto/ringkv.proto (version rule there). */
struct frame_map {
	uint64_t version;
	uint64_t cluster_id;
	uint64_t epoch;
	uint64_t node_id;          /* the node that answered */
	uint32_t slots;
	const struct frame_map_node *nodes;   /* encoding only */
	size_t node_count;
	const struct frame_map_shard *shards; /* encoding only */
	size_t shard_count;
};

struct frame_follower {
	uint64_t node;
	uint64_t match;
	uint64_t lag;
};

struct frame_replica_status {
	uint32_t shard;
	uint32_t core;
	struct frame_slice role;   /* "leader", "follower", ... */
	uint64_t term, leader, commit, applied, last_index, persisted, snapshot_index;
	uint64_t proposals, reads;
	bool apply_stopped;
	bool sleeping;             /* its group sleeps */
	struct frame_slice snapshot; /* "sending", "receiving", or empty */
	uint32_t follower_count;
	struct frame_follower followers[FRAME_STATUS_MAX_FOLLOWERS];
};

struct frame_peer_status {
	uint64_t node;
	bool reachable;
	uint32_t connected_cores, cores;
	uint64_t bytes_sent, bytes_received, queued_bytes, dropped_frames, reconnects;
	int32_t last_error;
};

struct frame_status {
	uint64_t node_id;
	uint64_t cluster_id;
	uint32_t cores;
	const struct frame_replica_status *replicas; /* encoding only */
	size_t replica_count;
	const struct frame_peer_status *peers;       /* encoding only */
	size_t peer_count;
};

/* Values are ringkv_Status from the generated header (0 = OK ... 9 = DATA_LOSS). */
struct frame_response {
	uint64_t id;
	int status;
	struct frame_slice value;    /* may be empty */
	const char *error;           /* NUL-terminated, may be NULL */
	const struct frame_kv *pairs;/* SCAN: pair_count pairs, in key order */
	size_t pair_count;
	uint64_t leader_hint;        /* NOT_LEADER: the believed leader, 0 none */
	uint64_t map_epoch;          /* NOT_LEADER: the node's map epoch, 0 none */
	const struct frame_map *map;       /* CLUSTER_MAP answer, or NULL */
	const struct frame_status *cluster_status; /* CLUSTER_STATUS answer, or NULL */
	const struct frame_backup *backup; /* BACKUP answer, or NULL */
	const struct frame_move *move;     /* SHARD_MOVE answer, or NULL */
};

/*
 * Looks at the start of a byte stream. Returns 0 with *payload_len set when a
 * whole frame (FRAME_HEADER_SIZE + *payload_len bytes) is in `buf`;
 * RKV_EAGAIN when more bytes are needed (*payload_len set if the prefix is
 * complete); RKV_ETOOLARGE when the prefix announces more than max_frame
 * (*payload_len = the announced size; the stream cannot be parsed further).
 */
int frame_peek(const uint8_t *buf, size_t len, const struct frame_limits *l,
	       uint32_t *payload_len);

/*
 * Decodes one Request payload (without its length prefix). Returns 0;
 * RKV_EPROTO when the bytes are not a valid Request; RKV_EINVAL when no op is
 * set or the key is empty (a SCAN's start key may be empty); RKV_ETOOLARGE
 * when key or value pass their limit (a SCAN's start and end: max_key).
 * After a return of 0, key, value and end are never NULL, even when empty.
 * On every return out->id holds the id if it could be read (else 0), and `err`
 * (errlen bytes, may be NULL) a one-line reason for non-zero returns.
 */
int frame_decode_request(const uint8_t *payload, size_t len,
			 const struct frame_limits *l, struct frame_request *out,
			 char *err, size_t errlen);

/* Upper bound of the bytes frame_encode_response() writes, prefix included
 * (pairs counted with frame_pair_max_size each). */
size_t frame_response_max_size(const struct frame_response *r);

/*
 * Upper bound of the bytes one SCAN pair adds to an encoded Response. A
 * server filling an answer up to a frame limit adds pairs while
 * frame_response_max_size() of the rest plus these stays within it.
 */
size_t frame_pair_max_size(size_t key_len, size_t value_len);

/*
 * Writes the length prefix and the encoded Response into `out` (cap bytes).
 * Returns the bytes written, or RKV_ETOOLARGE if cap is too small.
 */
int frame_encode_response(const struct frame_response *r, uint8_t *out, size_t cap);

/* Client side: the same pair for requests and responses. */
size_t frame_request_max_size(const struct frame_request *r);
int frame_encode_request(const struct frame_request *r, uint8_t *out, size_t cap);
/* Returns 0 or RKV_EPROTO; value/error point into `payload` (error is NOT
 * NUL-terminated there, so it is returned as a slice). SCAN pairs are
 * skipped; see frame_decode_response_pairs. */
int frame_decode_response(const uint8_t *payload, size_t len, uint64_t *id,
			  int *status, struct frame_slice *value,
			  struct frame_slice *error);

/*
 * Reads Response.leader_hint from an encoded Response (0 when absent).
 * Returns 0 or RKV_EPROTO. A second pass over the payload, meant for the
 * rare NOT_LEADER answer.
 */
int frame_decode_response_hint(const uint8_t *payload, size_t len, uint64_t *leader_hint);

/* Called once per SCAN pair, in wire order; slices point into the payload
 * (never NULL, even when empty).
 * Returns 0 to go on, anything else to stop decoding with that code. */
typedef int frame_pair_fn(void *arg, const struct frame_kv *pair);

/*
 * frame_decode_response that also hands every pair to `on_pair` (may be
 * NULL: pairs skipped). Returns 0, RKV_EPROTO, or the non-zero code that
 * on_pair stopped with (pairs already handed over stay handed over).
 */
int frame_decode_response_pairs(const uint8_t *payload, size_t len, uint64_t *id,
				int *status, struct frame_slice *value,
				struct frame_slice *error, frame_pair_fn *on_pair,
				void *arg);

/*
 * Client side: a whole Response with the cluster parts. Each handler (any
 * may be NULL: those parts are checked and skipped) gets one item at a time,
 * in wire order; slices point into the payload. A handler returns 0 to go
 * on, anything else to stop decoding with that code.
 */
struct frame_cluster_handlers {
	int (*on_node)(void *arg, const struct frame_map_node *node);
	int (*on_shard)(void *arg, const struct frame_map_shard *shard);
	int (*on_replica)(void *arg, const struct frame_replica_status *replica);
	int (*on_peer)(void *arg, const struct frame_peer_status *peer);
	void *arg;
};

struct frame_cluster_answer {
	uint64_t id;
	int status;
	struct frame_slice error;
	uint64_t leader_hint;       /* NOT_LEADER: the leader's node id, 0 = unknown */
	uint64_t map_epoch;         /* NOT_LEADER: the node's map epoch, 0 = not sent */
	bool has_map;
	struct frame_map map;       /* scalars only (nodes, shards: NULL, 0) */
	bool has_status;
	struct frame_status cluster_status; /* scalars only */
};

/*
 * Decodes a Response payload (untrusted). Returns 0; RKV_EPROTO when it is
 * not a valid Response; RKV_ETOOLARGE when a shard has more than
 * FRAME_MAP_MAX_REPLICAS replicas, a replica more than
 * FRAME_STATUS_MAX_FOLLOWERS followers, or an address or role more than
 * FRAME_ADDRESS_MAX bytes; or the non-zero code a handler stopped with.
 */
int frame_decode_cluster_answer(const uint8_t *payload, size_t len,
				struct frame_cluster_answer *out,
				const struct frame_cluster_handlers *h);

/* Upper bounds of what a map or status adds to an encoded Response. */
size_t frame_map_max_size(const struct frame_map *m);
size_t frame_status_max_size(const struct frame_status *st);

#endif
