/*
 * The bytes of a forwarded request and of its answer: what travels inside
 * the peer protocol's Forward.request and ForwardReply.response
 * (proto/peer.proto). The encoding is internal to ringkvd (every node of a
 * cluster runs the same build): a version byte, a fixed little-endian head,
 * then the variable parts. It carries a struct kv_req's fields rather than
 * an encoded ringkv.Request because the RESP door's operations (SET NX/XX,
 * INCRBY, APPEND, EXISTS, STRLEN, previous values, SCAN steps) have no
 * native form.
 *
 * Decoding never copies: slices point into the caller's bytes. The bytes
 * come from the network: every length is checked against the buffer, and
 * the caller checks the values against its own limits (server/forward.c).
 */
#ifndef RINGKV_SERVER_FORWARD_WIRE_H
#define RINGKV_SERVER_FORWARD_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/peer_msg.h"

#define FWD_WIRE_VERSION 1
#define FWD_REQUEST_HEAD 36u   /* bytes before the key */
#define FWD_REPLY_HEAD 40u     /* bytes before the resume key */

struct fwd_request {
	uint8_t op;            /* enum kv_op */
	uint8_t flags;         /* KV_* flags */
	uint8_t hops;          /* forwards taken, this one included */
	uint32_t shard;
	int64_t integer;
	uint32_t limit;
	uint32_t room;         /* answer room the origin holds */
	uint32_t key_len;
	uint32_t arg_len;
	uint32_t value_len;
	const uint8_t *data;   /* key, argument, value: back to back */
};

struct fwd_reply {
	int32_t status;        /* ringkv_Status (>= 0) */
	int32_t result;        /* shard_result.error of RMW commands */
	bool existed, applied, done;
	int64_t integer;
	uint64_t leader_hint;  /* 0: unknown */
	struct peer_msg_slice resume; /* SCAN: the resume key */
	struct peer_msg_slice value;  /* GET value, previous value, SCAN keys */
	struct peer_msg_slice error;  /* error text (not NUL-terminated) */
};

/* Append the encoding at out->len. 0 or -ENOMEM. */
int fwd_request_encode(struct peer_msg_buf *out, const struct fwd_request *r);
int fwd_reply_encode(struct peer_msg_buf *out, const struct fwd_reply *r);

/*
 * Decode untrusted bytes. 0, or RKV_EPROTO when the version is not ours,
 * the lengths do not add up to exactly `len`, a bool is not 0/1 or a
 * status is negative. Slices point into `p` (never NULL).
 */
int fwd_request_decode(const uint8_t *p, size_t len, struct fwd_request *r);
int fwd_reply_decode(const uint8_t *p, size_t len, struct fwd_reply *r);

#endif
