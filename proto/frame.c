/*
 * Frame codec of the client protocol: u32 little-endian length prefix, then
 * one nanopb-encoded Request or Response (proto/ringkv.proto).
 *
 * Invariant: decoding never copies or allocates. Every bytes/string field is
 * a nanopb callback (see proto/ringkv.options) that records a pointer into
 * the caller's payload and the field's length, after checking that the bytes
 * really lie inside that payload and that the length is within its limit.
 * An oversized key or value is skipped, not stored, and decoding goes on so
 * the request id can still be read and echoed in the TOO_LARGE answer.
 *
 * Encoding mirrors it: encode callbacks write the caller's slices straight
 * into the output buffer, so the only copy is the one into the wire buffer.
 */
#include "proto/frame.h"

#include <assert.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "core/errors.h"
#include "proto/frame_backup.h"
#include "proto/frame_move.h"
#include "ringkv.pb.h"

#define FRAME_DEFAULT_MAX_FRAME (4u << 20)
#define FRAME_DEFAULT_MAX_KEY (4u << 10)
#define FRAME_DEFAULT_MAX_VALUE (1u << 20)

/* Worst-case sizes of protobuf pieces, used by the *_max_size bounds. */
#define PB_TAG_MAX 1u         /* our field numbers are all < 16 */
#define PB_VARINT64_MAX 10u   /* any 64-bit varint (negative enums too) */
#define PB_LEN32_MAX 5u       /* a length prefix of at most 2^32 - 1 */

void frame_limits_default(struct frame_limits *l)
{
	assert(l != NULL);
	l->max_frame = FRAME_DEFAULT_MAX_FRAME;
	l->max_key = FRAME_DEFAULT_MAX_KEY;
	l->max_value = FRAME_DEFAULT_MAX_VALUE;
}

static uint32_t load_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void store_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

int frame_peek(const uint8_t *buf, size_t len, const struct frame_limits *l,
	       uint32_t *payload_len)
{
	uint32_t n;

	assert(l != NULL && payload_len != NULL);
	assert(buf != NULL || len == 0);
	if (len < FRAME_HEADER_SIZE)
		return RKV_EAGAIN;
	n = load_le32(buf);
	*payload_len = n; /* also when too large: the error names the size */
	if (n > l->max_frame)
		return RKV_ETOOLARGE;
	if (len - FRAME_HEADER_SIZE < n)
		return RKV_EAGAIN;
	return 0;
}

/* ---- decoding ---------------------------------------------------------- */

/* Where one bytes field may come from, and where its slice goes. */
struct field_sink {
	const uint8_t *base;   /* the whole payload being decoded */
	const uint8_t *end;
	uint32_t limit;        /* largest accepted length */
	bool too_large;        /* a value longer than limit was skipped */
	uint32_t seen_len;     /* its length, for the error message */
	struct frame_slice *slice;
};

/*
 * Records the field's bytes as a slice of the payload. nanopb hands a bytes
 * field over as a substream of the payload buffer, except when the sender
 * used another wire type: then it is a copy on nanopb's stack. The bounds
 * check turns that case into a decode error instead of a dangling pointer.
 */
static bool decode_slice(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
	struct field_sink *sink = *arg;
	const uint8_t *p = stream->state;
	uintptr_t at = (uintptr_t)p;
	size_t n = stream->bytes_left;

	(void)field;
	if (at < (uintptr_t)sink->base || at > (uintptr_t)sink->end ||
	    n > (uintptr_t)sink->end - at)
		PB_RETURN_ERROR(stream, "wrong wire type for bytes field");
	if (n > sink->limit) {
		sink->too_large = true;
		sink->seen_len = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
		sink->slice->data = NULL;
		sink->slice->len = 0;
	} else {
		sink->slice->data = p;
		sink->slice->len = (uint32_t)n;
	}
	return pb_read(stream, NULL, n);
}

struct request_ctx {
	struct field_sink key;   /* SCAN: its start key */
	struct field_sink value;
	struct field_sink end;   /* SCAN only */
	pb_size_t op_tag; /* oneof member whose fields the sinks hold */
};

/*
 * Runs before each oneof submessage is decoded (nanopb's submsg_callback).
 * nanopb zeroed the union if the member changed, so install the callbacks
 * of the member now in use. A repeated member merges (protobuf rules); a new
 * member replaces what the old one left in the sinks.
 */
static bool decode_op(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
	struct request_ctx *ctx = *arg;
	pb_callback_t *key_cb, *value_cb = NULL, *end_cb = NULL;

	(void)stream;
	switch (field->tag) {
	case ringkv_Request_get_tag:
		key_cb = &((ringkv_GetRequest *)field->pData)->key;
		break;
	case ringkv_Request_put_tag:
		key_cb = &((ringkv_PutRequest *)field->pData)->key;
		value_cb = &((ringkv_PutRequest *)field->pData)->value;
		break;
	case ringkv_Request_delete_tag:
		key_cb = &((ringkv_DeleteRequest *)field->pData)->key;
		break;
	case ringkv_Request_scan_tag:
		key_cb = &((ringkv_ScanRequest *)field->pData)->start;
		end_cb = &((ringkv_ScanRequest *)field->pData)->end;
		break;
	case ringkv_Request_auth_tag:
		key_cb = &((ringkv_AuthRequest *)field->pData)->user;
		value_cb = &((ringkv_AuthRequest *)field->pData)->password;
		break;
	default:
		return true;
	}
	if (field->tag != ctx->op_tag) {
		ctx->op_tag = field->tag;
		memset(ctx->key.slice, 0, sizeof(*ctx->key.slice));
		memset(ctx->value.slice, 0, sizeof(*ctx->value.slice));
		memset(ctx->end.slice, 0, sizeof(*ctx->end.slice));
		ctx->key.too_large = false;
		ctx->value.too_large = false;
		ctx->end.too_large = false;
	}
	key_cb->funcs.decode = decode_slice;
	key_cb->arg = &ctx->key;
	if (value_cb) {
		value_cb->funcs.decode = decode_slice;
		value_cb->arg = &ctx->value;
	}
	if (end_cb) {
		end_cb->funcs.decode = decode_slice;
		end_cb->arg = &ctx->end;
	}
	return true;
}

static enum frame_op op_from_tag(pb_size_t tag)
{
	switch (tag) {
	case ringkv_Request_get_tag:
		return FRAME_OP_GET;
	case ringkv_Request_put_tag:
		return FRAME_OP_PUT;
	case ringkv_Request_delete_tag:
		return FRAME_OP_DELETE;
	case ringkv_Request_scan_tag:
		return FRAME_OP_SCAN;
	case ringkv_Request_cluster_map_tag:
		return FRAME_OP_CLUSTER_MAP;
	case ringkv_Request_cluster_status_tag:
		return FRAME_OP_CLUSTER_STATUS;
	case ringkv_Request_backup_tag:
		return FRAME_OP_BACKUP;
	case ringkv_Request_shard_move_tag:
		return FRAME_OP_SHARD_MOVE;
	case ringkv_Request_auth_tag:
		return FRAME_OP_AUTH;
	default:
		return FRAME_OP_NONE;
	}
}

/* Formats only on error paths; the hot path never touches `err`. */
__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int frame_decode_request(const uint8_t *payload, size_t len,
			 const struct frame_limits *l, struct frame_request *out,
			 char *err, size_t errlen)
{
	ringkv_Request msg;
	struct request_ctx ctx;
	pb_istream_t stream;

	assert(l != NULL && out != NULL);
	assert(payload != NULL || len == 0);
	memset(out, 0, sizeof(*out));
	if (payload == NULL)
		payload = (const uint8_t *)"";

	ctx.key = (struct field_sink){ .base = payload, .end = payload + len,
				       .limit = l->max_key, .slice = &out->key };
	ctx.value = (struct field_sink){ .base = payload, .end = payload + len,
					 .limit = l->max_value, .slice = &out->value };
	ctx.end = (struct field_sink){ .base = payload, .end = payload + len,
				       .limit = l->max_key, .slice = &out->end };
	ctx.op_tag = 0;

	/* PB_DECODE_NOINIT: we set every static field here, which spares
	 * nanopb a pass over the descriptor to write defaults. */
	msg.id = 0;
	msg.which_op = 0;
	msg.no_forward = false;
	msg.cb_op.funcs.decode = decode_op;
	msg.cb_op.arg = &ctx;

	stream = pb_istream_from_buffer(payload, len);
	if (!pb_decode_ex(&stream, ringkv_Request_fields, &msg, PB_DECODE_NOINIT)) {
		out->id = msg.id;
		set_err(err, errlen, "malformed request: %s", PB_GET_ERROR(&stream));
		return RKV_EPROTO;
	}
	/* nanopb stops at a 0x00 tag byte (its zero-terminated message
	 * feature); field number 0 is invalid protobuf, so refuse the rest. */
	if (stream.bytes_left != 0) {
		out->id = msg.id;
		set_err(err, errlen, "malformed request: zero tag");
		return RKV_EPROTO;
	}
	out->id = msg.id;
	out->op = op_from_tag(msg.which_op);
	out->no_forward = msg.no_forward;
	if (out->op == FRAME_OP_GET)
		out->stale = msg.op.get.stale;
	else if (out->op == FRAME_OP_SCAN)
		out->stale = msg.op.scan.stale;
	else if (out->op == FRAME_OP_BACKUP)
		frame_backup_req_from_msg(&out->backup, &msg.op.backup);
	else if (out->op == FRAME_OP_SHARD_MOVE)
		frame_move_req_from_msg(&out->move, &msg.op.shard_move);
	/* Empty fields point at the payload too, so that callers may memcpy
	 * any slice (memcpy from NULL is undefined even for 0 bytes). */
	if (out->key.data == NULL)
		out->key.data = payload;
	if (out->value.data == NULL)
		out->value.data = payload;
	if (out->end.data == NULL)
		out->end.data = payload;
	if (ctx.key.too_large) {
		set_err(err, errlen, "key of %u bytes exceeds the limit of %u",
			(unsigned)ctx.key.seen_len, (unsigned)l->max_key);
		return RKV_ETOOLARGE;
	}
	if (ctx.value.too_large) {
		set_err(err, errlen, "value of %u bytes exceeds the limit of %u",
			(unsigned)ctx.value.seen_len, (unsigned)l->max_value);
		return RKV_ETOOLARGE;
	}
	if (ctx.end.too_large) {
		set_err(err, errlen, "end key of %u bytes exceeds the limit of %u",
			(unsigned)ctx.end.seen_len, (unsigned)l->max_key);
		return RKV_ETOOLARGE;
	}
	if (out->op == FRAME_OP_NONE) {
		set_err(err, errlen, "request has no operation");
		return RKV_EINVAL;
	}
	if (out->op == FRAME_OP_SCAN) {
		/* An empty start key is the beginning of the key space. */
		out->limit = msg.op.scan.limit;
		if (out->limit == 0)
			out->limit = FRAME_SCAN_DEFAULT_LIMIT;
		if (out->limit > FRAME_SCAN_MAX_LIMIT)
			out->limit = FRAME_SCAN_MAX_LIMIT;
		return 0;
	}
	/* The empty key is a key, as over RESP (and in Redis). */
	return 0;
}

/* Where the pairs of a Response go while it is decoded. */
struct pairs_ctx {
	const uint8_t *base; /* the whole payload */
	const uint8_t *end;
	frame_pair_fn *on_pair;
	void *arg;
	int stopped;         /* on_pair's non-zero answer, or 0 */
};

/* Decodes one KeyValue (a substream of the payload) and hands it over. */
static bool decode_pair(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
	struct pairs_ctx *ctx = *arg;
	struct frame_kv pair = { { NULL, 0 }, { NULL, 0 } };
	struct field_sink key_sink = { .base = ctx->base, .end = ctx->end,
				       .limit = UINT32_MAX, .slice = &pair.key };
	struct field_sink value_sink = { .base = ctx->base, .end = ctx->end,
					 .limit = UINT32_MAX, .slice = &pair.value };
	ringkv_KeyValue kv;

	(void)field;
	kv.key.funcs.decode = decode_slice;
	kv.key.arg = &key_sink;
	kv.value.funcs.decode = decode_slice;
	kv.value.arg = &value_sink;
	if (!pb_decode_ex(stream, ringkv_KeyValue_fields, &kv, PB_DECODE_NOINIT))
		return false;
	if (stream->bytes_left != 0) /* stopped at a zero tag */
		PB_RETURN_ERROR(stream, "zero tag in a pair");
	/* Never NULL, as in frame_decode_request. */
	if (pair.key.data == NULL)
		pair.key.data = ctx->base;
	if (pair.value.data == NULL)
		pair.value.data = ctx->base;
	if (ctx->on_pair == NULL)
		return true;
	ctx->stopped = ctx->on_pair(ctx->arg, &pair);
	if (ctx->stopped != 0)
		PB_RETURN_ERROR(stream, "stopped by the caller");
	return true;
}

int frame_decode_response(const uint8_t *payload, size_t len, uint64_t *id,
			  int *status, struct frame_slice *value,
			  struct frame_slice *error)
{
	return frame_decode_response_pairs(payload, len, id, status, value, error,
					   NULL, NULL);
}

int frame_decode_response_pairs(const uint8_t *payload, size_t len, uint64_t *id,
				int *status, struct frame_slice *value,
				struct frame_slice *error, frame_pair_fn *on_pair,
				void *arg)
{
	ringkv_Response msg;
	struct field_sink value_sink, error_sink;
	struct pairs_ctx pairs;
	pb_istream_t stream;

	assert(id != NULL && status != NULL && value != NULL && error != NULL);
	assert(payload != NULL || len == 0);
	if (payload == NULL)
		payload = (const uint8_t *)"";
	*id = 0;
	*status = 0;
	memset(value, 0, sizeof(*value));
	memset(error, 0, sizeof(*error));

	/* No limits here: the frame size already bounds every field. */
	value_sink = (struct field_sink){ .base = payload, .end = payload + len,
					  .limit = UINT32_MAX, .slice = value };
	error_sink = (struct field_sink){ .base = payload, .end = payload + len,
					  .limit = UINT32_MAX, .slice = error };
	msg.id = 0;
	msg.status = ringkv_Status_OK;
	/* The cluster parts are skipped here (NULL callbacks): see
	 * frame_decode_cluster_answer. */
	msg.leader_hint = 0;
	msg.map_epoch = 0;
	memset(&msg.cluster_map, 0, sizeof msg.cluster_map);
	memset(&msg.cluster_status, 0, sizeof msg.cluster_status);
	memset(&msg.backup, 0, sizeof msg.backup); /* frame_decode_backup_answer */
	memset(&msg.shard_move, 0, sizeof msg.shard_move); /* frame_decode_move_answer */
	msg.has_cluster_map = msg.has_cluster_status = msg.has_backup = false;
	msg.has_shard_move = false;
	msg.value.funcs.decode = decode_slice;
	msg.value.arg = &value_sink;
	msg.error.funcs.decode = decode_slice;
	msg.error.arg = &error_sink;
	pairs = (struct pairs_ctx){ .base = payload, .end = payload + len,
				    .on_pair = on_pair, .arg = arg };
	/* Pairs are always decoded (to check them), handed over only if asked. */
	msg.pairs.funcs.decode = decode_pair;
	msg.pairs.arg = &pairs;

	stream = pb_istream_from_buffer(payload, len);
	if (!pb_decode_ex(&stream, ringkv_Response_fields, &msg, PB_DECODE_NOINIT) ||
	    stream.bytes_left != 0) { /* stopped at a zero tag, as above */
		if (pairs.stopped != 0) {
			*id = msg.id;
			memset(value, 0, sizeof(*value));
			memset(error, 0, sizeof(*error));
			return pairs.stopped;
		}
		goto err;
	}
	/* Unknown positive statuses pass through (enums grow additively);
	 * negative ones would read as local error codes. */
	if ((int)msg.status < 0)
		goto err;
	*id = msg.id;
	*status = (int)msg.status;
	return 0;

err:
	*id = msg.id;
	memset(value, 0, sizeof(*value));
	memset(error, 0, sizeof(*error));
	return RKV_EPROTO;
}

int frame_decode_response_hint(const uint8_t *payload, size_t len, uint64_t *leader_hint)
{
	ringkv_Response msg;
	pb_istream_t stream;

	assert(leader_hint != NULL);
	assert(payload != NULL || len == 0);
	*leader_hint = 0;
	/* Zeroed callbacks: nanopb skips bytes and pairs. */
	memset(&msg, 0, sizeof(msg));
	stream = pb_istream_from_buffer(payload ? payload : (const uint8_t *)"", len);
	if (!pb_decode_ex(&stream, ringkv_Response_fields, &msg, PB_DECODE_NOINIT) ||
	    stream.bytes_left != 0)
		return RKV_EPROTO;
	*leader_hint = msg.leader_hint;
	return 0;
}

/* ---- encoding ---------------------------------------------------------- */

/* Writes one bytes/string field from a slice; proto3 leaves empty ones out. */
static bool encode_slice(pb_ostream_t *stream, const pb_field_t *field,
			 void *const *arg)
{
	const struct frame_slice *s = *arg;

	if (s->len == 0)
		return true;
	return pb_encode_tag_for_field(stream, field) &&
	       pb_encode_string(stream, s->data, s->len);
}

static void set_encoder(pb_callback_t *cb, const struct frame_slice *s)
{
	cb->funcs.encode = encode_slice;
	cb->arg = (void *)s;
}

/* Writes the repeated KeyValue field: one submessage per pair. */
static bool encode_pairs(pb_ostream_t *stream, const pb_field_t *field,
			 void *const *arg)
{
	const struct frame_response *r = *arg;

	for (size_t i = 0; i < r->pair_count; i++) {
		ringkv_KeyValue kv;

		set_encoder(&kv.key, &r->pairs[i].key);
		set_encoder(&kv.value, &r->pairs[i].value);
		if (!pb_encode_tag_for_field(stream, field) ||
		    !pb_encode_submessage(stream, ringkv_KeyValue_fields, &kv))
			return false;
	}
	return true;
}

/*
 * Encodes `msg` after a 4-byte gap in `out` and fills the gap with the
 * payload length. The result must fit an int, hence the clamp on cap.
 */
static int encode_framed(const pb_msgdesc_t *fields, const void *msg,
			 uint8_t *out, size_t cap)
{
	pb_ostream_t stream;
	size_t room;

	assert(out != NULL || cap == 0);
	if (cap < FRAME_HEADER_SIZE)
		return RKV_ETOOLARGE;
	room = cap - FRAME_HEADER_SIZE;
	if (room > (size_t)INT_MAX - FRAME_HEADER_SIZE)
		room = (size_t)INT_MAX - FRAME_HEADER_SIZE;
	stream = pb_ostream_from_buffer(out + FRAME_HEADER_SIZE, room);
	if (!pb_encode(&stream, fields, msg))
		return RKV_ETOOLARGE;
	store_le32(out, (uint32_t)stream.bytes_written);
	return (int)(FRAME_HEADER_SIZE + stream.bytes_written);
}

size_t frame_response_max_size(const struct frame_response *r)
{
	size_t n = FRAME_HEADER_SIZE;

	assert(r != NULL);
	n += PB_TAG_MAX + PB_VARINT64_MAX;            /* id */
	n += PB_TAG_MAX + PB_VARINT64_MAX;            /* status */
	n += PB_TAG_MAX + PB_LEN32_MAX + r->value.len; /* value */
	if (r->error)                                 /* error: any length */
		n += PB_TAG_MAX + PB_VARINT64_MAX + strlen(r->error);
	for (size_t i = 0; i < r->pair_count; i++)
		n += frame_pair_max_size(r->pairs[i].key.len, r->pairs[i].value.len);
	if (r->map)
		n += frame_map_max_size(r->map);
	if (r->cluster_status)
		n += frame_status_max_size(r->cluster_status);
	if (r->backup)
		n += frame_backup_max_size(r->backup);
	if (r->move)
		n += frame_move_max_size();
	if (r->leader_hint)
		n += PB_TAG_MAX + PB_VARINT64_MAX;
	if (r->map_epoch)
		n += PB_TAG_MAX + PB_VARINT64_MAX;
	return n;
}

size_t frame_pair_max_size(size_t key_len, size_t value_len)
{
	/* Tag and length of the KeyValue, then its two bytes fields. */
	return PB_TAG_MAX + PB_LEN32_MAX + PB_TAG_MAX + PB_LEN32_MAX + key_len +
	       PB_TAG_MAX + PB_LEN32_MAX + value_len;
}

static void set_cluster_encoders(ringkv_Response *msg, const struct frame_response *r);

int frame_encode_response(const struct frame_response *r, uint8_t *out, size_t cap)
{
	ringkv_Response msg;
	struct frame_slice error = { NULL, 0 };

	assert(r != NULL);
	assert(r->value.data != NULL || r->value.len == 0);
	assert(r->pairs != NULL || r->pair_count == 0);
	if (r->error) {
		size_t n = strlen(r->error);

		if (n > UINT32_MAX)
			return RKV_ETOOLARGE;
		error.data = (const uint8_t *)r->error;
		error.len = (uint32_t)n;
	}
	msg.id = r->id;
	msg.status = (ringkv_Status)r->status;
	msg.leader_hint = r->leader_hint;
	msg.map_epoch = r->map_epoch;
	set_encoder(&msg.value, &r->value);
	set_encoder(&msg.error, &error);
	msg.pairs.funcs.encode = encode_pairs;
	msg.pairs.arg = (void *)r;
	set_cluster_encoders(&msg, r);
	frame_backup_set_encoders(&msg, r->backup);
	frame_move_set_encoder(&msg, r->move);
	return encode_framed(ringkv_Response_fields, &msg, out, cap);
}

size_t frame_request_max_size(const struct frame_request *r)
{
	size_t n = FRAME_HEADER_SIZE;

	assert(r != NULL);
	n += PB_TAG_MAX + PB_VARINT64_MAX;             /* id */
	n += PB_TAG_MAX + PB_VARINT64_MAX;             /* op submessage header */
	n += PB_TAG_MAX + PB_LEN32_MAX + r->key.len;   /* key */
	n += PB_TAG_MAX + PB_LEN32_MAX + r->value.len; /* value (PUT) */
	n += PB_TAG_MAX + PB_LEN32_MAX + r->end.len;   /* end (SCAN) */
	n += PB_TAG_MAX + PB_VARINT64_MAX;             /* limit (SCAN) */
	n += 2 * (PB_TAG_MAX + 1);                     /* no_forward, stale */
	n += 6 * (PB_TAG_MAX + PB_VARINT64_MAX);       /* BackupRequest's numbers */
	n += 5 * (PB_TAG_MAX + PB_VARINT64_MAX);       /* ShardMoveRequest's */
	return n;
}

int frame_encode_request(const struct frame_request *r, uint8_t *out, size_t cap)
{
	ringkv_Request msg;

	assert(r != NULL);
	assert(r->key.data != NULL || r->key.len == 0);
	assert(r->value.data != NULL || r->value.len == 0);
	assert(r->end.data != NULL || r->end.len == 0);
	memset(&msg, 0, sizeof(msg));
	msg.id = r->id;
	msg.no_forward = r->no_forward;
	switch (r->op) {
	case FRAME_OP_GET:
		msg.which_op = ringkv_Request_get_tag;
		set_encoder(&msg.op.get.key, &r->key);
		msg.op.get.stale = r->stale;
		break;
	case FRAME_OP_PUT:
		msg.which_op = ringkv_Request_put_tag;
		set_encoder(&msg.op.put.key, &r->key);
		set_encoder(&msg.op.put.value, &r->value);
		break;
	case FRAME_OP_DELETE:
		msg.which_op = ringkv_Request_delete_tag;
		set_encoder(&msg.op.delete.key, &r->key);
		break;
	case FRAME_OP_SCAN:
		msg.which_op = ringkv_Request_scan_tag;
		set_encoder(&msg.op.scan.start, &r->key);
		set_encoder(&msg.op.scan.end, &r->end);
		msg.op.scan.limit = r->limit;
		msg.op.scan.stale = r->stale;
		break;
	case FRAME_OP_CLUSTER_MAP:
		msg.which_op = ringkv_Request_cluster_map_tag;
		break;
	case FRAME_OP_CLUSTER_STATUS:
		msg.which_op = ringkv_Request_cluster_status_tag;
		break;
	case FRAME_OP_BACKUP:
		msg.which_op = ringkv_Request_backup_tag;
		frame_backup_req_to_msg(&msg.op.backup, &r->backup);
		break;
	case FRAME_OP_SHARD_MOVE:
		msg.which_op = ringkv_Request_shard_move_tag;
		frame_move_req_to_msg(&msg.op.shard_move, &r->move);
		break;
	case FRAME_OP_AUTH:
		msg.which_op = ringkv_Request_auth_tag;
		set_encoder(&msg.op.auth.user, &r->key);
		set_encoder(&msg.op.auth.password, &r->value);
		break;
	case FRAME_OP_NONE:
	default:
		/* No op: an id-only Request (the server answers INVALID_ARGUMENT). */
		break;
	}
	return encode_framed(ringkv_Request_fields, &msg, out, cap);
}

/* ---- cluster map and status (Response fields 8 and 9) ------------------ */

#define PB_SUB_MAX (PB_TAG_MAX + PB_LEN32_MAX) /* a submessage's tag and length */
#define PB_NUM_MAX (PB_TAG_MAX + PB_VARINT64_MAX) /* one number field */

size_t frame_map_max_size(const struct frame_map *m)
{
	size_t n = PB_SUB_MAX + 5 * PB_NUM_MAX;

	assert(m != NULL);
	for (size_t i = 0; i < m->node_count; i++)
		n += PB_SUB_MAX + PB_NUM_MAX + 3 * PB_SUB_MAX + m->nodes[i].peer.len +
		     m->nodes[i].client.len + m->nodes[i].resp.len;
	for (size_t i = 0; i < m->shard_count; i++)
		n += PB_SUB_MAX + 5 * PB_NUM_MAX +
		     m->shards[i].replica_count * (PB_SUB_MAX + 2 * PB_NUM_MAX);
	return n;
}

size_t frame_status_max_size(const struct frame_status *st)
{
	size_t n = PB_SUB_MAX + 3 * PB_NUM_MAX;

	assert(st != NULL);
	for (size_t i = 0; i < st->replica_count; i++)
		n += PB_SUB_MAX + 13 * PB_NUM_MAX + PB_SUB_MAX + st->replicas[i].role.len +
		     PB_SUB_MAX + st->replicas[i].snapshot.len +
		     st->replicas[i].follower_count * (PB_SUB_MAX + 3 * PB_NUM_MAX);
	n += st->peer_count * (PB_SUB_MAX + 10 * PB_NUM_MAX);
	return n;
}

static bool encode_shard_replicas(pb_ostream_t *stream, const pb_field_t *field,
				  void *const *arg)
{
	const struct frame_map_shard *sh = *arg;

	for (uint32_t i = 0; i < sh->replica_count; i++) {
		ringkv_ShardReplica r = { .node = sh->replicas[i].node,
					  .core = sh->replicas[i].core };

		if (!pb_encode_tag_for_field(stream, field) ||
		    !pb_encode_submessage(stream, ringkv_ShardReplica_fields, &r))
			return false;
	}
	return true;
}

static bool encode_map_nodes(pb_ostream_t *stream, const pb_field_t *field,
			     void *const *arg)
{
	const struct frame_map *m = *arg;

	for (size_t i = 0; i < m->node_count; i++) {
		ringkv_ClusterNode n;

		memset(&n, 0, sizeof n);
		n.id = m->nodes[i].id;
		set_encoder(&n.peer, &m->nodes[i].peer);
		set_encoder(&n.client, &m->nodes[i].client);
		set_encoder(&n.resp, &m->nodes[i].resp);
		if (!pb_encode_tag_for_field(stream, field) ||
		    !pb_encode_submessage(stream, ringkv_ClusterNode_fields, &n))
			return false;
	}
	return true;
}

static bool encode_map_shards(pb_ostream_t *stream, const pb_field_t *field,
			      void *const *arg)
{
	const struct frame_map *m = *arg;

	for (size_t i = 0; i < m->shard_count; i++) {
		const struct frame_map_shard *sh = &m->shards[i];
		ringkv_ClusterShard s;

		memset(&s, 0, sizeof s);
		s.id = sh->id;
		s.slot_start = sh->slot_start;
		s.slot_end = sh->slot_end;
		s.leader = sh->leader;
		s.term = sh->term;
		s.replicas.funcs.encode = encode_shard_replicas;
		s.replicas.arg = (void *)sh;
		if (!pb_encode_tag_for_field(stream, field) ||
		    !pb_encode_submessage(stream, ringkv_ClusterShard_fields, &s))
			return false;
	}
	return true;
}

static bool encode_followers(pb_ostream_t *stream, const pb_field_t *field,
			     void *const *arg)
{
	const struct frame_replica_status *rs = *arg;

	for (uint32_t i = 0; i < rs->follower_count; i++) {
		ringkv_FollowerStatus f = { .node = rs->followers[i].node,
					    .match = rs->followers[i].match,
					    .lag = rs->followers[i].lag };

		if (!pb_encode_tag_for_field(stream, field) ||
		    !pb_encode_submessage(stream, ringkv_FollowerStatus_fields, &f))
			return false;
	}
	return true;
}

static bool encode_replica_statuses(pb_ostream_t *stream, const pb_field_t *field,
				    void *const *arg)
{
	const struct frame_status *st = *arg;

	for (size_t i = 0; i < st->replica_count; i++) {
		const struct frame_replica_status *x = &st->replicas[i];
		ringkv_ReplicaStatus rs;

		memset(&rs, 0, sizeof rs);
		rs.shard = x->shard;
		rs.core = x->core;
		set_encoder(&rs.role, &x->role);
		rs.term = x->term;
		rs.leader = x->leader;
		rs.commit = x->commit;
		rs.applied = x->applied;
		rs.last_index = x->last_index;
		rs.persisted = x->persisted;
		rs.snapshot_index = x->snapshot_index;
		rs.followers.funcs.encode = encode_followers;
		rs.followers.arg = (void *)x;
		rs.proposals = x->proposals;
		rs.reads = x->reads;
		rs.apply_stopped = x->apply_stopped;
		rs.sleeping = x->sleeping;
		set_encoder(&rs.snapshot, &x->snapshot);
		if (!pb_encode_tag_for_field(stream, field) ||
		    !pb_encode_submessage(stream, ringkv_ReplicaStatus_fields, &rs))
			return false;
	}
	return true;
}

static bool encode_peer_statuses(pb_ostream_t *stream, const pb_field_t *field,
				 void *const *arg)
{
	const struct frame_status *st = *arg;

	for (size_t i = 0; i < st->peer_count; i++) {
		const struct frame_peer_status *x = &st->peers[i];
		ringkv_PeerStatus p = {
			.node = x->node, .reachable = x->reachable,
			.connected_cores = x->connected_cores, .cores = x->cores,
			.bytes_sent = x->bytes_sent, .bytes_received = x->bytes_received,
			.queued_bytes = x->queued_bytes, .dropped_frames = x->dropped_frames,
			.reconnects = x->reconnects, .last_error = x->last_error,
		};

		if (!pb_encode_tag_for_field(stream, field) ||
		    !pb_encode_submessage(stream, ringkv_PeerStatus_fields, &p))
			return false;
	}
	return true;
}

static void set_cluster_encoders(ringkv_Response *msg, const struct frame_response *r)
{
	memset(&msg->cluster_map, 0, sizeof msg->cluster_map);
	memset(&msg->cluster_status, 0, sizeof msg->cluster_status);
	msg->has_cluster_map = r->map != NULL;
	if (r->map) {
		ringkv_ClusterMap *m = &msg->cluster_map;

		m->version = r->map->version;
		m->cluster_id = r->map->cluster_id;
		m->epoch = r->map->epoch;
		m->node_id = r->map->node_id;
		m->slots = r->map->slots;
		m->nodes.funcs.encode = encode_map_nodes;
		m->nodes.arg = (void *)r->map;
		m->shards.funcs.encode = encode_map_shards;
		m->shards.arg = (void *)r->map;
	}
	msg->has_cluster_status = r->cluster_status != NULL;
	if (r->cluster_status) {
		ringkv_ClusterStatus *st = &msg->cluster_status;

		st->node_id = r->cluster_status->node_id;
		st->cluster_id = r->cluster_status->cluster_id;
		st->cores = r->cluster_status->cores;
		st->replicas.funcs.encode = encode_replica_statuses;
		st->replicas.arg = (void *)r->cluster_status;
		st->peers.funcs.encode = encode_peer_statuses;
		st->peers.arg = (void *)r->cluster_status;
	}
}

/* Decoding: where the items go, and why decoding stopped. */
struct cluster_ctx {
	const uint8_t *base;      /* the whole payload */
	const uint8_t *end;
	const struct frame_cluster_handlers *h;
	int stopped;              /* a handler's non-zero code */
	bool too_large;           /* a FRAME_*_MAX limit was passed */
};

static struct field_sink text_sink(const struct cluster_ctx *ctx, struct frame_slice *slice)
{
	return (struct field_sink){ .base = ctx->base, .end = ctx->end,
				    .limit = FRAME_ADDRESS_MAX, .slice = slice };
}

/* After one item's submessage: limits, then hand it over. */
static bool item_done(struct cluster_ctx *ctx, pb_istream_t *stream, bool too_large,
		      int (*fn)(void *, const void *), const void *item)
{
	if (stream->bytes_left != 0) /* stopped at a zero tag */
		PB_RETURN_ERROR(stream, "zero tag in a cluster item");
	if (too_large) {
		ctx->too_large = true;
		PB_RETURN_ERROR(stream, "cluster item over a limit");
	}
	if (fn == NULL)
		return true;
	ctx->stopped = fn(ctx->h->arg, item);
	if (ctx->stopped != 0)
		PB_RETURN_ERROR(stream, "stopped by the caller");
	return true;
}

/* Slices of absent fields point at the payload, as elsewhere. */
static void fill_empty(const struct cluster_ctx *ctx, struct frame_slice *s)
{
	if (s->data == NULL)
		s->data = ctx->base;
}

static bool decode_map_node(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
	struct cluster_ctx *ctx = *arg;
	struct frame_map_node node;
	struct field_sink peer, client, resp;
	ringkv_ClusterNode msg;

	(void)field;
	memset(&node, 0, sizeof node);
	memset(&msg, 0, sizeof msg);
	peer = text_sink(ctx, &node.peer);
	client = text_sink(ctx, &node.client);
	resp = text_sink(ctx, &node.resp);
	msg.peer.funcs.decode = decode_slice;
	msg.peer.arg = &peer;
	msg.client.funcs.decode = decode_slice;
	msg.client.arg = &client;
	msg.resp.funcs.decode = decode_slice;
	msg.resp.arg = &resp;
	if (!pb_decode_ex(stream, ringkv_ClusterNode_fields, &msg, PB_DECODE_NOINIT))
		return false;
	node.id = msg.id;
	fill_empty(ctx, &node.peer);
	fill_empty(ctx, &node.client);
	fill_empty(ctx, &node.resp);
	return item_done(ctx, stream, peer.too_large || client.too_large || resp.too_large,
			 (int (*)(void *, const void *))ctx->h->on_node, &node);
}

/* One shard's replicas go into its struct, up to the limit. */
struct shard_sink {
	struct cluster_ctx *ctx;
	struct frame_map_shard *shard;
};

static bool decode_shard_replica(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
	struct shard_sink *sink = *arg;
	ringkv_ShardReplica r;

	(void)field;
	memset(&r, 0, sizeof r);
	if (!pb_decode_ex(stream, ringkv_ShardReplica_fields, &r, PB_DECODE_NOINIT))
		return false;
	if (stream->bytes_left != 0)
		PB_RETURN_ERROR(stream, "zero tag in a replica");
	if (sink->shard->replica_count >= FRAME_MAP_MAX_REPLICAS) {
		sink->ctx->too_large = true;
		PB_RETURN_ERROR(stream, "too many replicas");
	}
	sink->shard->replicas[sink->shard->replica_count].node = r.node;
	sink->shard->replicas[sink->shard->replica_count].core = r.core;
	sink->shard->replica_count++;
	return true;
}

static bool decode_map_shard(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
	struct cluster_ctx *ctx = *arg;
	struct frame_map_shard shard;
	struct shard_sink sink = { ctx, &shard };
	ringkv_ClusterShard msg;

	(void)field;
	memset(&shard, 0, sizeof shard);
	memset(&msg, 0, sizeof msg);
	msg.replicas.funcs.decode = decode_shard_replica;
	msg.replicas.arg = &sink;
	if (!pb_decode_ex(stream, ringkv_ClusterShard_fields, &msg, PB_DECODE_NOINIT))
		return false;
	shard.id = msg.id;
	shard.slot_start = msg.slot_start;
	shard.slot_end = msg.slot_end;
	shard.leader = msg.leader;
	shard.term = msg.term;
	return item_done(ctx, stream, false,
			 (int (*)(void *, const void *))ctx->h->on_shard, &shard);
}

struct status_sink {
	struct cluster_ctx *ctx;
	struct frame_replica_status *rs;
};

static bool decode_follower(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
	struct status_sink *sink = *arg;
	ringkv_FollowerStatus f;

	(void)field;
	memset(&f, 0, sizeof f);
	if (!pb_decode_ex(stream, ringkv_FollowerStatus_fields, &f, PB_DECODE_NOINIT))
		return false;
	if (stream->bytes_left != 0)
		PB_RETURN_ERROR(stream, "zero tag in a follower");
	if (sink->rs->follower_count >= FRAME_STATUS_MAX_FOLLOWERS) {
		sink->ctx->too_large = true;
		PB_RETURN_ERROR(stream, "too many followers");
	}
	sink->rs->followers[sink->rs->follower_count++] =
		(struct frame_follower){ .node = f.node, .match = f.match, .lag = f.lag };
	return true;
}

static bool decode_replica_status(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
	struct cluster_ctx *ctx = *arg;
	struct frame_replica_status rs;
	struct status_sink sink = { ctx, &rs };
	struct field_sink role, snapshot;
	ringkv_ReplicaStatus msg;

	(void)field;
	memset(&rs, 0, sizeof rs);
	memset(&msg, 0, sizeof msg);
	role = text_sink(ctx, &rs.role);
	msg.role.funcs.decode = decode_slice;
	msg.role.arg = &role;
	snapshot = text_sink(ctx, &rs.snapshot);
	msg.snapshot.funcs.decode = decode_slice;
	msg.snapshot.arg = &snapshot;
	msg.followers.funcs.decode = decode_follower;
	msg.followers.arg = &sink;
	if (!pb_decode_ex(stream, ringkv_ReplicaStatus_fields, &msg, PB_DECODE_NOINIT))
		return false;
	rs.shard = msg.shard;
	rs.core = msg.core;
	rs.term = msg.term;
	rs.leader = msg.leader;
	rs.commit = msg.commit;
	rs.applied = msg.applied;
	rs.last_index = msg.last_index;
	rs.persisted = msg.persisted;
	rs.snapshot_index = msg.snapshot_index;
	rs.proposals = msg.proposals;
	rs.reads = msg.reads;
	rs.apply_stopped = msg.apply_stopped;
	rs.sleeping = msg.sleeping;
	fill_empty(ctx, &rs.role);
	fill_empty(ctx, &rs.snapshot);
	return item_done(ctx, stream, role.too_large || snapshot.too_large,
			 (int (*)(void *, const void *))ctx->h->on_replica, &rs);
}

static bool decode_peer_status(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
	struct cluster_ctx *ctx = *arg;
	ringkv_PeerStatus msg;
	struct frame_peer_status p;

	(void)field;
	memset(&msg, 0, sizeof msg);
	if (!pb_decode_ex(stream, ringkv_PeerStatus_fields, &msg, PB_DECODE_NOINIT))
		return false;
	p = (struct frame_peer_status){
		.node = msg.node, .reachable = msg.reachable,
		.connected_cores = msg.connected_cores, .cores = msg.cores,
		.bytes_sent = msg.bytes_sent, .bytes_received = msg.bytes_received,
		.queued_bytes = msg.queued_bytes, .dropped_frames = msg.dropped_frames,
		.reconnects = msg.reconnects, .last_error = msg.last_error,
	};
	return item_done(ctx, stream, false,
			 (int (*)(void *, const void *))ctx->h->on_peer, &p);
}

int frame_decode_cluster_answer(const uint8_t *payload, size_t len,
				struct frame_cluster_answer *out,
				const struct frame_cluster_handlers *h)
{
	static const struct frame_cluster_handlers none;
	ringkv_Response msg;
	struct field_sink error_sink;
	struct cluster_ctx ctx;
	pb_istream_t stream;

	assert(out != NULL);
	assert(payload != NULL || len == 0);
	if (payload == NULL)
		payload = (const uint8_t *)"";
	memset(out, 0, sizeof *out);
	memset(&msg, 0, sizeof msg);
	ctx = (struct cluster_ctx){ .base = payload, .end = payload + len,
				    .h = h ? h : &none };
	error_sink = (struct field_sink){ .base = payload, .end = payload + len,
					  .limit = UINT32_MAX, .slice = &out->error };
	/* value and pairs: NULL callbacks, skipped. */
	msg.error.funcs.decode = decode_slice;
	msg.error.arg = &error_sink;
	msg.cluster_map.nodes.funcs.decode = decode_map_node;
	msg.cluster_map.nodes.arg = &ctx;
	msg.cluster_map.shards.funcs.decode = decode_map_shard;
	msg.cluster_map.shards.arg = &ctx;
	msg.cluster_status.replicas.funcs.decode = decode_replica_status;
	msg.cluster_status.replicas.arg = &ctx;
	msg.cluster_status.peers.funcs.decode = decode_peer_status;
	msg.cluster_status.peers.arg = &ctx;

	stream = pb_istream_from_buffer(payload, len);
	if (!pb_decode_ex(&stream, ringkv_Response_fields, &msg, PB_DECODE_NOINIT) ||
	    stream.bytes_left != 0 || (int)msg.status < 0) {
		int rv = ctx.stopped ? ctx.stopped : ctx.too_large ? RKV_ETOOLARGE : RKV_EPROTO;

		memset(out, 0, sizeof *out);
		out->id = msg.id;
		return rv;
	}
	out->id = msg.id;
	out->status = (int)msg.status;
	if (out->error.data == NULL)
		out->error.data = payload;
	out->leader_hint = msg.leader_hint;
	out->map_epoch = msg.map_epoch;
	out->has_map = msg.has_cluster_map;
	out->map.version = msg.cluster_map.version;
	out->map.cluster_id = msg.cluster_map.cluster_id;
	out->map.epoch = msg.cluster_map.epoch;
	out->map.node_id = msg.cluster_map.node_id;
	out->map.slots = msg.cluster_map.slots;
	out->has_status = msg.has_cluster_status;
	out->cluster_status.node_id = msg.cluster_status.node_id;
	out->cluster_status.cluster_id = msg.cluster_status.cluster_id;
	out->cluster_status.cores = msg.cluster_status.cores;
	return 0;
}
