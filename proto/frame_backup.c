/*
 * The backup messages of the client protocol (see proto/frame_backup.h).
 * Encoding writes the repeated BackupFile and the data bytes through
 * nanopb callbacks straight from the caller's memory; decoding points
 * names and data into the payload after checking they lie inside it.
 */
#include "proto/frame_backup.h"

#include <assert.h>
#include <string.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "core/errors.h"
#include "ringkv.pb.h"

/* As in frame.c: field numbers < 16, 64-bit varints, 32-bit lengths. */
#define PB_TAG_MAX 1u
#define PB_VARINT64_MAX 10u
#define PB_LEN32_MAX 5u

void frame_backup_req_from_msg(struct frame_backup_req *out, const ringkv_BackupRequest *msg)
{
	out->op = (int)msg->op;
	out->shard = msg->shard;
	out->backup_id = msg->backup_id;
	out->file = msg->file;
	out->offset = msg->offset;
	out->length = msg->length;
}

void frame_backup_req_to_msg(ringkv_BackupRequest *msg, const struct frame_backup_req *r)
{
	msg->op = (ringkv_BackupOp)r->op;
	msg->shard = r->shard;
	msg->backup_id = r->backup_id;
	msg->file = r->file;
	msg->offset = r->offset;
	msg->length = r->length;
}

size_t frame_backup_max_size(const struct frame_backup *b)
{
	size_t n = PB_TAG_MAX + PB_LEN32_MAX;         /* the submessage */

	n += 5 * (PB_TAG_MAX + PB_VARINT64_MAX);      /* its numbers */
	n += PB_TAG_MAX + PB_LEN32_MAX + b->data.len;
	for (size_t i = 0; i < b->file_count; i++)
		n += 2 * (PB_TAG_MAX + PB_LEN32_MAX) + b->files[i].name.len + PB_TAG_MAX +
		     PB_VARINT64_MAX;
	return n;
}

static bool encode_bytes(pb_ostream_t *stream, const pb_field_t *field, void *const *arg)
{
	const struct frame_slice *s = *arg;

	if (s->len == 0)
		return true;
	return pb_encode_tag_for_field(stream, field) &&
	       pb_encode_string(stream, s->data, s->len);
}

static bool encode_files(pb_ostream_t *stream, const pb_field_t *field, void *const *arg)
{
	const struct frame_backup *b = *arg;

	for (size_t i = 0; i < b->file_count; i++) {
		ringkv_BackupFile f;

		f.name.funcs.encode = encode_bytes;
		f.name.arg = (void *)&b->files[i].name;
		f.size = b->files[i].size;
		if (!pb_encode_tag_for_field(stream, field) ||
		    !pb_encode_submessage(stream, ringkv_BackupFile_fields, &f))
			return false;
	}
	return true;
}

void frame_backup_set_encoders(ringkv_Response *msg, const struct frame_backup *b)
{
	memset(&msg->backup, 0, sizeof msg->backup);
	msg->has_backup = b != NULL;
	if (!b)
		return;
	msg->backup.backup_id = b->backup_id;
	msg->backup.shard = b->shard;
	msg->backup.index = b->index;
	msg->backup.term = b->term;
	msg->backup.crc32c = b->crc32c;
	msg->backup.files.funcs.encode = encode_files;
	msg->backup.files.arg = (void *)b;
	msg->backup.data.funcs.encode = encode_bytes;
	msg->backup.data.arg = (void *)&b->data;
}

/* ---- client side ---- */

struct backup_ctx {
	const uint8_t *base;   /* the whole payload */
	const uint8_t *end;
	frame_backup_file_fn *on_file;
	void *arg;
	int stopped;           /* on_file's code */
	struct frame_slice *slice; /* where decode_slice puts the next bytes */
};

/* A bytes field inside the payload (a substream of it): point at it. */
static bool decode_slice(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
	struct backup_ctx *ctx = *arg;
	const uint8_t *p = stream->state;
	size_t n = stream->bytes_left;

	(void)field;
	if ((uintptr_t)p < (uintptr_t)ctx->base || (uintptr_t)p > (uintptr_t)ctx->end ||
	    n > (uintptr_t)ctx->end - (uintptr_t)p || n > UINT32_MAX)
		PB_RETURN_ERROR(stream, "bytes field outside the payload");
	ctx->slice->data = p;
	ctx->slice->len = (uint32_t)n;
	return pb_read(stream, NULL, n);
}

struct slice_target {
	struct backup_ctx *ctx;
	struct frame_slice *slice;
};

static bool decode_into(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
	struct slice_target *t = *arg;
	void *ctx = t->ctx;

	t->ctx->slice = t->slice;
	return decode_slice(stream, field, &ctx);
}

static bool decode_file(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
	struct backup_ctx *ctx = *arg;
	struct frame_backup_file f = { { NULL, 0 }, 0 };
	struct slice_target name = { ctx, &f.name };
	ringkv_BackupFile msg;

	(void)field;
	memset(&msg, 0, sizeof msg);
	msg.name.funcs.decode = decode_into;
	msg.name.arg = &name;
	if (!pb_decode(stream, ringkv_BackupFile_fields, &msg))
		return false;
	f.size = msg.size;
	if (f.name.len == 0 || f.name.len > FRAME_BACKUP_NAME_MAX)
		PB_RETURN_ERROR(stream, "backup file name empty or too long");
	if (ctx->on_file) {
		int rv = ctx->on_file(ctx->arg, &f);

		if (rv) {
			ctx->stopped = rv;
			PB_RETURN_ERROR(stream, "stopped");
		}
	}
	return true;
}

int frame_decode_backup_answer(const uint8_t *payload, size_t len, uint64_t *id, int *status,
			       struct frame_slice *error, struct frame_backup *out,
			       int *has_backup, frame_backup_file_fn *on_file, void *arg)
{
	ringkv_Response msg;
	struct backup_ctx ctx;
	struct slice_target err_target, data_target;
	pb_istream_t stream;

	assert(id && status && error && out && has_backup);
	if (payload == NULL)
		payload = (const uint8_t *)"";
	memset(out, 0, sizeof *out);
	memset(error, 0, sizeof *error);
	*id = 0;
	*status = 0;
	*has_backup = 0;
	memset(&msg, 0, sizeof msg); /* value, pairs, cluster parts: skipped */
	ctx = (struct backup_ctx){ .base = payload, .end = payload + len, .on_file = on_file,
				   .arg = arg };
	err_target = (struct slice_target){ &ctx, error };
	data_target = (struct slice_target){ &ctx, &out->data };
	msg.error.funcs.decode = decode_into;
	msg.error.arg = &err_target;
	msg.backup.files.funcs.decode = decode_file;
	msg.backup.files.arg = &ctx;
	msg.backup.data.funcs.decode = decode_into;
	msg.backup.data.arg = &data_target;
	stream = pb_istream_from_buffer(payload, len);
	if (!pb_decode_ex(&stream, ringkv_Response_fields, &msg, PB_DECODE_NOINIT) ||
	    stream.bytes_left != 0 || (int)msg.status < 0) {
		int rv = ctx.stopped ? ctx.stopped : RKV_EPROTO;

		memset(out, 0, sizeof *out);
		return rv;
	}
	*id = msg.id;
	*status = (int)msg.status;
	*has_backup = msg.has_backup;
	if (error->data == NULL)
		error->data = payload;
	if (out->data.data == NULL)
		out->data.data = payload;
	out->backup_id = msg.backup.backup_id;
	out->shard = msg.backup.shard;
	out->index = msg.backup.index;
	out->term = msg.backup.term;
	out->crc32c = msg.backup.crc32c;
	return 0;
}
