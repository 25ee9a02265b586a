/* The shard-move request and answer: see proto/frame_move.h. */
#include "proto/frame_move.h"

#include <assert.h>
#include <string.h>

#include <pb_decode.h>

#include "core/errors.h"
#include "ringkv.pb.h"

void frame_move_req_from_msg(struct frame_move_req *out, const ringkv_ShardMoveRequest *msg)
{
	out->shard = msg->shard;
	out->from_node = msg->from_node;
	out->to_node = msg->to_node;
	out->to_core = msg->to_core;
	out->status_only = msg->status_only;
	out->cancel = msg->cancel;
	out->rate = msg->rate;
	out->transfer_leader = msg->transfer_leader;
}

void frame_move_req_to_msg(ringkv_ShardMoveRequest *msg, const struct frame_move_req *r)
{
	msg->shard = r->shard;
	msg->from_node = r->from_node;
	msg->to_node = r->to_node;
	msg->to_core = r->to_core;
	msg->status_only = r->status_only;
	msg->cancel = r->cancel;
	msg->rate = r->rate;
	msg->transfer_leader = r->transfer_leader;
}

size_t frame_move_max_size(void)
{
	/* The submessage's tag and length, then twelve numbers of one-byte
	 * tag and at most ten bytes each. */
	return 1 + 5 + 12 * (1 + 10);
}

void frame_move_set_encoder(ringkv_Response *msg, const struct frame_move *m)
{
	memset(&msg->shard_move, 0, sizeof msg->shard_move);
	msg->has_shard_move = m != NULL;
	if (!m)
		return;
	msg->shard_move.shard = m->shard;
	msg->shard_move.phase = m->phase;
	msg->shard_move.from_node = m->from_node;
	msg->shard_move.to_node = m->to_node;
	msg->shard_move.to_core = m->to_core;
	msg->shard_move.snapshot_bytes = m->snapshot_bytes;
	msg->shard_move.log_lag = m->log_lag;
	msg->shard_move.elapsed_ms = m->elapsed_ms;
	msg->shard_move.next_leader = m->next_leader;
	msg->shard_move.snapshot_total = m->snapshot_total;
	msg->shard_move.rate = m->rate;
	msg->shard_move.cancelled_in = m->cancelled_in;
}

struct slice_ctx {
	const uint8_t *base, *end;
	struct frame_slice *out;
};

/* A bytes field as a slice of the payload (zero-copy). */
static bool decode_slice(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
	struct slice_ctx *ctx = *arg;
	const uint8_t *p = stream->state;

	(void)field;
	if (p < ctx->base || p + stream->bytes_left > ctx->end)
		return false;
	ctx->out->data = p;
	ctx->out->len = (uint32_t)stream->bytes_left;
	return pb_read(stream, NULL, stream->bytes_left);
}

int frame_decode_move_answer(const uint8_t *payload, size_t len, uint64_t *id, int *status,
			     struct frame_slice *error, struct frame_move *out, bool *has_move)
{
	ringkv_Response msg;
	struct slice_ctx err_ctx;
	pb_istream_t stream;

	assert(id && status && error && out && has_move);
	if (payload == NULL)
		payload = (const uint8_t *)"";
	memset(out, 0, sizeof *out);
	memset(error, 0, sizeof *error);
	*id = 0;
	*status = 0;
	*has_move = false;
	memset(&msg, 0, sizeof msg); /* value, pairs, other parts: skipped */
	err_ctx = (struct slice_ctx){ payload, payload + len, error };
	msg.error.funcs.decode = decode_slice;
	msg.error.arg = &err_ctx;
	stream = pb_istream_from_buffer(payload, len);
	if (!pb_decode_ex(&stream, ringkv_Response_fields, &msg, PB_DECODE_NOINIT) ||
	    stream.bytes_left != 0 || (int)msg.status < 0)
		return RKV_EPROTO;
	*id = msg.id;
	*status = (int)msg.status;
	*has_move = msg.has_shard_move;
	if (error->data == NULL)
		error->data = payload;
	out->shard = msg.shard_move.shard;
	out->phase = msg.shard_move.phase;
	out->from_node = msg.shard_move.from_node;
	out->to_node = msg.shard_move.to_node;
	out->to_core = msg.shard_move.to_core;
	out->snapshot_bytes = msg.shard_move.snapshot_bytes;
	out->log_lag = msg.shard_move.log_lag;
	out->elapsed_ms = msg.shard_move.elapsed_ms;
	out->next_leader = msg.shard_move.next_leader;
	out->snapshot_total = msg.shard_move.snapshot_total;
	out->rate = msg.shard_move.rate;
	out->cancelled_in = msg.shard_move.cancelled_in;
	return 0;
}
