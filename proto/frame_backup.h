/*
 * Request.backup / Response.backup (BackupRequest, BackupResponse in
 * proto/ringkv.proto): the online backup's messages. Server side: the
 * answer as a struct frame_backup in frame_response.backup. Client side:
 * frame_decode_backup_answer. Like the rest of the codec, decoding is
 * zero-copy and checks every length against the payload before use.
 */
#ifndef RINGKV_PROTO_FRAME_BACKUP_H
#define RINGKV_PROTO_FRAME_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"

/* Most bytes one READ returns; a larger length is refused. */
#define FRAME_BACKUP_MAX_READ (1u << 20)
/* A file name in a backup answer (decoders refuse longer ones). */
#define FRAME_BACKUP_NAME_MAX 64

struct frame_backup_file {
	struct frame_slice name;
	uint64_t size;
};

struct frame_backup {
	uint64_t backup_id;
	uint32_t shard;
	uint64_t index;                       /* BEGIN */
	uint64_t term;                        /* BEGIN */
	const struct frame_backup_file *files;/* BEGIN, encoding only */
	size_t file_count;
	struct frame_slice data;              /* READ */
	uint32_t crc32c;                      /* READ: of data */
};

/* Bytes the backup part adds to an encoded Response, at most. */
size_t frame_backup_max_size(const struct frame_backup *b);

/* Called once per BackupFile while a Response is decoded, in wire order;
 * the name points into the payload. 0 goes on; anything else stops the
 * decoding with that code. */
typedef int frame_backup_file_fn(void *arg, const struct frame_backup_file *f);

/*
 * Client side: decodes a whole Response with its backup part (`out->files`
 * stays NULL: the files go to on_file, which may be NULL). Returns 0 with
 * id, status, error (a slice, not NUL-terminated) and `out` set; RKV_EPROTO
 * (bad bytes) or on_file's code. `has_backup` says whether the part was
 * there.
 */
int frame_decode_backup_answer(const uint8_t *payload, size_t len, uint64_t *id, int *status,
			       struct frame_slice *error, struct frame_backup *out,
			       int *has_backup, frame_backup_file_fn *on_file, void *arg);

/* For proto/frame.c (the generated types stay out of this header). */
struct _ringkv_BackupRequest;
struct _ringkv_Response;
void frame_backup_req_from_msg(struct frame_backup_req *out,
			       const struct _ringkv_BackupRequest *msg);
void frame_backup_req_to_msg(struct _ringkv_BackupRequest *msg,
			     const struct frame_backup_req *r);
void frame_backup_set_encoders(struct _ringkv_Response *msg, const struct frame_backup *b);

#endif
