/*
 * Request.shard_move / Response.shard_move (ShardMoveRequest,
 * ShardMoveResponse in proto/ringkv.proto): moving one shard replica. Only
 * numbers: the failure's reason travels in Response.error.
 */
#ifndef RINGKV_PROTO_FRAME_MOVE_H
#define RINGKV_PROTO_FRAME_MOVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"

struct frame_move {
	uint32_t shard;
	uint32_t phase;           /* enum replica_move_phase's values */
	uint64_t from_node, to_node;
	uint32_t to_core;
	uint64_t snapshot_bytes;
	uint64_t log_lag;
	uint64_t elapsed_ms;
	uint64_t next_leader;
	uint64_t snapshot_total;  /* the stream under way's size; 0: none */
	uint64_t rate;            /* the move's cap, bytes/s; 0: the node's */
	uint32_t cancelled_in;    /* cancelling/cancelled: the phase it left */
};

/* Bytes the move part adds to an encoded Response, at most. */
size_t frame_move_max_size(void);

/*
 * Client side: decodes a whole Response with its move part. 0 with id,
 * status, error (a slice into payload, not NUL-terminated), *out and
 * *has_move; or RKV_EPROTO.
 */
int frame_decode_move_answer(const uint8_t *payload, size_t len, uint64_t *id, int *status,
			     struct frame_slice *error, struct frame_move *out, bool *has_move);

/* For proto/frame.c (the generated types stay out of this header). */
struct _ringkv_ShardMoveRequest;
struct _ringkv_Response;
void frame_move_req_from_msg(struct frame_move_req *out,
			     const struct _ringkv_ShardMoveRequest *msg);
void frame_move_req_to_msg(struct _ringkv_ShardMoveRequest *msg, const struct frame_move_req *r);
void frame_move_set_encoder(struct _ringkv_Response *msg, const struct frame_move *m);

#endif
