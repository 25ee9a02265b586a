/*
 * The peer wire form of Raft messages and the other node-to-node frames
 * (proto/peer.proto): a u32 little-endian length, then one Envelope.
 *
 * Encoding appends whole frames to a caller-owned buffer that grows
 * geometrically to its peak, so a steady sender never allocates. A Raft
 * batch is appended message by message as Raft produces them (begin, add,
 * end); each message's size is computed first and the bytes written in
 * place, so the output is exact and the only copy of entry data is the one
 * into the wire buffer.
 *
 * Decoding never copies and never allocates: every byte slice handed out
 * (entry data, snapshot chunks, reasons, forwarded requests) points into
 * the frame's payload, which must outlive its use. Frames are untrusted:
 * every length and value is checked against struct peer_msg_limits and the
 * schema before it is used, and a bad frame is an error code, never an
 * assert. After any error the rest of the stream cannot be trusted: close
 * the connection.
 */
#ifndef RINGKV_CLUSTER_PEER_MSG_H
#define RINGKV_CLUSTER_PEER_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

#define PEER_MSG_HEADER_SIZE 4    /* the u32 little-endian length prefix */
#define PEER_MSG_VERSION 1        /* Hello.version this code speaks */
#define PEER_MSG_MAX_FILE_NAME 255 /* SnapshotChunk.file, bytes */
#define PEER_MSG_MAX_REASON 1024  /* HelloReply.reason, bytes */
#define PEER_MSG_MAX_ADDRESS 300  /* Hello{,Reply}.client_address and
                                   * resp_address, bytes ("HOST:PORT") */
#define PEER_MSG_MAX_LEADERS 16384 /* Leaders entries per frame */
#define PEER_MSG_MAX_BEATS 32768  /* Heartbeats entries per frame: a
				   * heartbeat and an answer per shard */

/*
 * What a receiver accepts; a sender checks the same limits (with the same
 * values on every node) so that it never writes what its peer refuses.
 */
struct peer_msg_limits {
	uint32_t max_frame;       /* payload bytes after the prefix (16 MiB) */
	uint32_t max_msgs;        /* Raft messages per batch frame (65536) */
	uint32_t max_entries;     /* entries per Raft message (16384) */
	uint32_t max_entry_bytes; /* data bytes of one entry (4 MiB) */
	uint32_t max_data_bytes;  /* RaftMessage.data, SnapshotChunk.data,
	                           * Forward.request, ForwardReply.response (4 MiB) */
};

void peer_msg_limits_default(struct peer_msg_limits *l);

/* Bytes that are someone else's: the caller's when encoding, the frame's
 * when decoding (never NULL after a successful decode, even when empty). */
struct peer_msg_slice {
	const uint8_t *data;
	uint32_t len;
};

/* The Envelope's kinds; values are ours, not field numbers. */
enum peer_msg_kind {
	PEER_MSG_NONE = 0,
	PEER_MSG_HELLO,
	PEER_MSG_HELLO_REPLY,
	PEER_MSG_RAFT,          /* a batch of (group, struct raft_msg) */
	PEER_MSG_SNAPSHOT_CHUNK,
	PEER_MSG_FORWARD,
	PEER_MSG_FORWARD_REPLY,
	PEER_MSG_SNAPSHOT_REQUEST,
	PEER_MSG_PLACEMENT,
	PEER_MSG_LEADERS,
	PEER_MSG_HEARTBEATS,
};

struct peer_msg_hello {
	uint64_t cluster_id;
	uint64_t node_id;   /* the dialing node, >= 1 */
	uint32_t from_core; /* its sending core */
	uint32_t to_core;   /* the receiving core asked for */
	uint32_t version;   /* PEER_MSG_VERSION */
	uint64_t to_node_id; /* the node the dialer means to reach; 0: unknown */
	struct peer_msg_slice client_address; /* its native client "HOST:PORT",
	                                       * empty = unknown; at most
	                                       * PEER_MSG_MAX_ADDRESS bytes */
	struct peer_msg_slice resp_address;   /* its RESP address, empty = off */
	uint32_t cores;                       /* its core count, 0 = unknown */
	uint32_t slot_function;               /* its data dir's (shard/route.h);
	                                       * 0 = not sent (an older build: 1) */
	uint64_t data_dir_id;                 /* its data dir's creation id;
	                                       * 0 = not sent (an older build) */
	bool data_dir_new;                    /* first start on that data dir */
	uint64_t boot_id;                     /* its process's random id;
	                                       * 0 = not sent (an older build) */
};

struct peer_msg_hello_reply {
	bool ok;
	struct peer_msg_slice reason; /* refusal reason, not NUL-terminated;
	                               * at most PEER_MSG_MAX_REASON bytes */
	uint64_t cluster_id;          /* the acceptor's */
	uint64_t node_id;             /* the acceptor's */
	uint32_t version;
	struct peer_msg_slice client_address; /* as in the hello */
	struct peer_msg_slice resp_address;
};

/* One piece of one snapshot file (see SnapshotChunk in proto/peer.proto). */
struct peer_msg_chunk {
	uint64_t group;
	uint64_t index;               /* the snapshot's last index */
	uint64_t term;
	struct peer_msg_slice file;   /* plain file name, 1..255 bytes */
	uint64_t offset;              /* of data in the file */
	struct peer_msg_slice data;
	uint32_t crc32c;              /* decode: crc32c(data), already checked;
	                               * encode: ignored (computed from data) */
	bool last;                    /* last chunk of the last file */
	uint64_t stream;              /* the sender's stream id; 0: none */
	uint64_t seq;                 /* chunk number in the stream, from 0 */
};

struct peer_msg_forward {
	uint64_t forward_id;
	uint64_t group;
	struct peer_msg_slice request; /* server/forward_wire.c's bytes */
};

struct peer_msg_forward_reply {
	uint64_t forward_id;
	struct peer_msg_slice response; /* server/forward_wire.c's bytes */
};

/* A damaged replica asks its group's leader for a snapshot (see
 * SnapshotRequest in proto/peer.proto). Any values decode: the receiver
 * checks the group against its map and the sender against the group. */
struct peer_msg_snapshot_request {
	uint64_t group;
	uint64_t applied; /* the sender's applied index */
	uint64_t restart_stream; /* non-zero: "that stream of yours broke" */
	uint64_t boot_id;        /* the sender's process (Hello.boot_id); 0: an
				  * older build */
	uint64_t stream_seen;    /* the sender's latest stream from this leader
				  * in that process; 0: none */
};

/* Host or drop a replica (Placement in proto/peer.proto). Any values
 * decode: the receiver checks them. */
enum peer_placement_op {
	PEER_PLACEMENT_HOST = 1,
	PEER_PLACEMENT_DROP = 2,
	PEER_PLACEMENT_HOSTED = 3,
	PEER_PLACEMENT_DROPPED = 4,
	PEER_PLACEMENT_CONTINUE = 5,
};

struct peer_msg_placement {
	uint64_t op;      /* enum peer_placement_op */
	uint64_t group;
	uint64_t core;
	uint64_t term;
	uint64_t status;  /* answers: 0, or -(RKV_* code) */
	uint64_t index;
	uint64_t from;    /* CONTINUE */
	uint64_t to;      /* CONTINUE */
};

/* One entry of a Leaders frame: the sender leads `shard` in `term`; its
 * last applied configuration has index `conf_index`. */
struct peer_msg_leader {
	uint64_t shard;
	uint64_t term;
	uint64_t conf_index;
};

/* A decoded Leaders frame (proto/peer.proto). The three lists are still in
 * their packed wire form, each checked (well-formed varints, `count` of
 * each, count <= PEER_MSG_MAX_LEADERS); read them with
 * peer_msg_leaders_next(). Any values decode: the receiver checks shards
 * against its map. */
struct peer_msg_leaders {
	uint32_t count;
	struct peer_msg_slice shard, term, conf_index; /* packed varints */
};

/* Reads entries of a decoded Leaders frame in order. */
struct peer_msg_leaders_iter {
	const uint8_t *p[3], *end[3];
	uint32_t left;
};

/* One entry of a Heartbeats frame: a HEARTBEAT (or, with PEER_BEAT_RESP,
 * a HEARTBEAT_RESP) of `group` between the two nodes' incarnation-0
 * replicas (proto/peer.proto). */
#define PEER_BEAT_RESP 1u   /* HEARTBEAT_RESP */
#define PEER_BEAT_DONE 2u   /* raft_msg.done */
#define PEER_BEAT_REJECT 4u /* raft_msg.reject */
struct peer_msg_beat {
	uint64_t group;
	uint64_t term;
	uint64_t commit;
	uint64_t context;
	uint64_t flags;    /* PEER_BEAT_*; unknown bits are ignored */
};

/* A decoded Heartbeats frame: five packed lists, checked as Leaders'
 * (count <= PEER_MSG_MAX_BEATS); read with peer_msg_heartbeats_next().
 * count 0 is a liveness beacon. */
struct peer_msg_heartbeats {
	uint32_t count;
	struct peer_msg_slice list[5]; /* group, term, commit, context, flags */
};

struct peer_msg_heartbeats_iter {
	const uint8_t *p[5], *end[5];
	uint32_t left;
};

/* ---- output buffer ------------------------------------------------------ */

/*
 * A growable byte buffer owned by the caller. Frames are appended at `len`;
 * the caller consumes them from `data` (e.g. sends and then resets len).
 * Capacity doubles when it must grow and never shrinks until freed.
 */
struct peer_msg_buf {
	uint8_t *data;
	size_t len; /* bytes written */
	size_t cap; /* bytes allocated */
};

void peer_msg_buf_init(struct peer_msg_buf *b);
void peer_msg_buf_free(struct peer_msg_buf *b);
/* Makes room for `extra` more bytes past len. Returns 0 or -ENOMEM. */
int peer_msg_buf_reserve(struct peer_msg_buf *b, size_t extra);

/* ---- encoding ----------------------------------------------------------- */

/*
 * A Raft batch frame being written at the end of a buffer. Between begin and
 * end, the buffer holds the frame's prefix (not yet filled) and the messages
 * added so far; append nothing else to the buffer meanwhile.
 */
struct peer_msg_batch {
	size_t start;     /* offset of the frame's length prefix in the buffer */
	uint32_t n_msgs;  /* messages added */
	bool open;
};

/* Starts a batch frame at out->len. Returns 0 or -ENOMEM. */
int peer_msg_batch_begin(struct peer_msg_buf *out, struct peer_msg_batch *batch);

/*
 * Appends one message of `group` to the open batch. `msg` must be a message
 * Raft produced (a known type, from and to set, entries of known types;
 * asserted). Returns 0; RKV_ETOOLARGE, with the buffer unchanged, when the
 * message breaks one of `l`'s limits by itself (entry count or size, data
 * size; it can never be sent) or would take the frame past l->max_frame or
 * l->max_msgs (end this batch and add it to a new one; a message that is
 * refused by an empty batch can never be sent); -ENOMEM.
 */
int peer_msg_batch_add(struct peer_msg_buf *out, struct peer_msg_batch *batch,
		       const struct peer_msg_limits *l, uint64_t group,
		       const struct raft_msg *msg);

/* Payload bytes the open batch holds so far (for cutting frames early). */
size_t peer_msg_batch_bytes(const struct peer_msg_buf *out,
			    const struct peer_msg_batch *batch);

/*
 * Closes the batch: fills the length prefix. An empty batch leaves no frame
 * (out->len goes back to where begin found it). Returns the frame's bytes,
 * prefix included (0 for an empty batch). Never fails.
 */
size_t peer_msg_batch_end(struct peer_msg_buf *out, struct peer_msg_batch *batch);

/* One (group, message) pair for peer_msg_encode_batch. */
struct peer_msg_item {
	uint64_t group;
	const struct raft_msg *msg;
};

/*
 * Appends one frame holding all n messages (n >= 1), or nothing on error.
 * Returns 0, RKV_ETOOLARGE (they do not fit one frame within `l`) or
 * -ENOMEM.
 */
int peer_msg_encode_batch(struct peer_msg_buf *out, const struct peer_msg_limits *l,
			  const struct peer_msg_item *items, size_t n);

/*
 * Append one frame of the other kinds. Each returns 0; RKV_ETOOLARGE (with
 * the buffer unchanged) when a field passes its limit in `l` or the
 * PEER_MSG_MAX_* constants; RKV_EINVAL for a chunk's file name that a
 * receiver would refuse; -ENOMEM.
 */
/* h->node_id and h->version are not 0 (asserted). */
int peer_msg_encode_hello(struct peer_msg_buf *out, const struct peer_msg_hello *h);
int peer_msg_encode_hello_reply(struct peer_msg_buf *out,
				const struct peer_msg_hello_reply *r);
/* chunk->crc32c is ignored: the frame carries crc32c(chunk->data). */
int peer_msg_encode_chunk(struct peer_msg_buf *out, const struct peer_msg_limits *l,
			  const struct peer_msg_chunk *chunk);
int peer_msg_encode_forward(struct peer_msg_buf *out, const struct peer_msg_limits *l,
			    const struct peer_msg_forward *f);
int peer_msg_encode_forward_reply(struct peer_msg_buf *out,
				  const struct peer_msg_limits *l,
				  const struct peer_msg_forward_reply *r);
/* Never RKV_ETOOLARGE nor RKV_EINVAL: at most 39 bytes with
 * the length prefix, any values. */
int peer_msg_encode_snapshot_request(struct peer_msg_buf *out,
				     const struct peer_msg_snapshot_request *q);
/* Never RKV_ETOOLARGE nor RKV_EINVAL: at most 90 bytes, any values. */
int peer_msg_encode_placement(struct peer_msg_buf *out, const struct peer_msg_placement *q);

/* n entries (n <= PEER_MSG_MAX_LEADERS, else RKV_ETOOLARGE; 0 writes an
 * empty frame). At most 20 + 30 * n bytes. */
int peer_msg_encode_leaders(struct peer_msg_buf *out, const struct peer_msg_leader *entries,
			    uint32_t n);

/* n entries (n <= PEER_MSG_MAX_BEATS, else RKV_ETOOLARGE; 0 writes an
 * empty frame, the liveness beacon). At most 20 + 50 * n bytes. */
int peer_msg_encode_heartbeats(struct peer_msg_buf *out, const struct peer_msg_beat *beats,
			       uint32_t n);

/* ---- decoding ----------------------------------------------------------- */

/*
 * Splits a receive stream. Returns 0 when buf holds the whole next frame,
 * with *frame_len its bytes (prefix included; the payload starts
 * PEER_MSG_HEADER_SIZE bytes in); RKV_EAGAIN when more bytes are needed,
 * with *frame_len the bytes the frame needs in all (PEER_MSG_HEADER_SIZE
 * while the prefix itself is incomplete), so a receive buffer can grow to it
 * before reading on; RKV_ETOOLARGE when the prefix announces more than
 * l->max_frame (checked before anything is allocated; close the stream).
 */
int peer_msg_peek(const uint8_t *buf, size_t len, const struct peer_msg_limits *l,
		  size_t *frame_len);

/*
 * One decoded frame. After peer_msg_decode(), `kind` says which member of
 * the union is valid; for PEER_MSG_RAFT, `n_msgs` messages are read with
 * peer_msg_next(). The remaining fields are the iterator's own.
 */
struct peer_msg_frame {
	enum peer_msg_kind kind;
	union {
		struct peer_msg_hello hello;
		struct peer_msg_hello_reply hello_reply;
		struct peer_msg_chunk chunk;
		struct peer_msg_forward forward;
		struct peer_msg_forward_reply forward_reply;
		struct peer_msg_snapshot_request snapshot_request;
		struct peer_msg_placement placement;
		struct peer_msg_leaders leaders;
		struct peer_msg_heartbeats heartbeats;
		uint32_t n_msgs; /* PEER_MSG_RAFT: messages in the batch, >= 1 */
	};
	/* After peer_msg_next() returned 1: the encoded RaftMessage it came
	 * from, inside the payload. A message for a group of another core can
	 * cross over as these bytes and be decoded there (peer_msg_decode_one). */
	struct peer_msg_slice msg_bytes;
	/* Iterator state (private). */
	const uint8_t *payload;
	const uint8_t *end;
	const uint8_t *next;            /* next top-level field to look at */
	const struct peer_msg_limits *limits;
	struct raft_entry *scratch;     /* caller's entry array */
	uint32_t scratch_cap;
	uint32_t seen;                  /* messages returned so far */
	int error;                      /* sticky: what peer_msg_next failed with */
	struct raft_conf conf;          /* the last message's conf */
	char err[128];                  /* why the last call failed */
};

/*
 * Decodes one frame payload (the bytes after the prefix; untrusted). For a
 * Raft batch this checks the frame's shape and the message count; each
 * message is decoded and checked by peer_msg_next(). `scratch` (scratch_cap
 * entries; may be NULL when 0) receives the entries of one message at a
 * time: a message with more than min(scratch_cap, l->max_entries) entries
 * is refused. `payload`, `l` and `scratch` must outlive the frame's use.
 *
 * Returns 0; RKV_EPROTO when the bytes are not a valid Envelope (truncated,
 * wrong wire types, a varint that overflows its field, trailing garbage, no
 * kind, kinds mixed or repeated); RKV_EINVAL when a value is out of range
 * (node id 0, a file name with '/', a bool that is not 0 or 1 ...);
 * RKV_ETOOLARGE when a limit is passed; RKV_ECORRUPT when a snapshot
 * chunk's crc32c does not match its data. f->err says why (also for the
 * codes of peer_msg_next).
 */
int peer_msg_decode(struct peer_msg_frame *f, const uint8_t *payload, size_t len,
		    const struct peer_msg_limits *l, struct raft_entry *scratch,
		    uint32_t scratch_cap);

/*
 * The next message of a PEER_MSG_RAFT frame. Returns 1 with *group and *msg
 * filled: msg->entries points into `scratch`, every entry's data and
 * msg->data into the payload (never NULL; do not write through them; valid
 * as long as the payload), msg->conf at f->conf or NULL; all valid until
 * the next call. Returns 0 after the last message. Errors as in
 * peer_msg_decode: RKV_EPROTO, RKV_EINVAL (unknown message or entry type,
 * from or to 0, a conf that raft_conf_decode refuses), RKV_ETOOLARGE (too
 * many entries, an entry or data too large). Messages returned before an
 * error were valid; the ones after it are lost with the connection, and
 * later calls return the same error.
 */
int peer_msg_next(struct peer_msg_frame *f, uint64_t *group, struct raft_msg *msg);

/*
 * Decodes one encoded RaftMessage on its own (f->msg_bytes of a frame,
 * copied elsewhere; untrusted), with the same checks and results as
 * peer_msg_next: returns 0 with *group and *msg filled (pointers into
 * `bytes`, `scratch` and f->conf), or an error code with f->err set. f is
 * initialized as a PEER_MSG_RAFT frame whose messages were all read.
 */
int peer_msg_decode_one(struct peer_msg_frame *f, const uint8_t *bytes, size_t len,
			const struct peer_msg_limits *l, struct raft_entry *scratch,
			uint32_t scratch_cap, uint64_t *group, struct raft_msg *msg);

/* Starts reading the entries of a decoded Leaders frame (`l` and its
 * payload must outlive the iterator). */
void peer_msg_leaders_begin(struct peer_msg_leaders_iter *it, const struct peer_msg_leaders *l);
/* 1 with *e filled, 0 after the last entry (the decoder checked them all). */
int peer_msg_leaders_next(struct peer_msg_leaders_iter *it, struct peer_msg_leader *e);

/* Starts reading a decoded Heartbeats frame (same lifetime rules). */
void peer_msg_heartbeats_begin(struct peer_msg_heartbeats_iter *it,
			       const struct peer_msg_heartbeats *h);
/* 1 with *b filled, 0 after the last entry. */
int peer_msg_heartbeats_next(struct peer_msg_heartbeats_iter *it, struct peer_msg_beat *b);
/* The Raft message entry b stands for, from node `from_node` to node
 * `to_node` (their incarnation-0 replicas). */
void peer_msg_beat_to_raft(const struct peer_msg_beat *b, uint64_t from_node, uint64_t to_node,
			   struct raft_msg *m);
/* Whether m (of any group) can travel as a Heartbeats entry: a HEARTBEAT or
 * HEARTBEAT_RESP between incarnation-0 replicas that carries nothing the
 * entry cannot; then *b is filled. */
bool peer_msg_beat_from_raft(const struct raft_msg *m, uint64_t group, struct peer_msg_beat *b);

#endif
