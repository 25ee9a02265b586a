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
};

/* One key and its value, both slices of someone else's memory. */
struct frame_kv {
	struct frame_slice key;
	struct frame_slice value;
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

#endif
