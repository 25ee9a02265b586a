/*
 * libringkv's online backup calls (see tools/libringkv.h): one blocking
 * round trip each over the client's connection. Every name and length in
 * an answer is checked before use (an answer is untrusted bytes), and the
 * data of each READ against the CRC32C the server sent with it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "proto/frame.h"
#include "proto/frame_backup.h"
#include "ringkv.pb.h"
#include "shard/crc32c.h"
#include "tools/libringkv.h"
#include "tools/libringkv_private.h"

#define MAX_FILES 1000000u

struct files_build {
	struct rkv_backup *b;
	size_t cap;
	int bad;                      /* a name that is not a backup file's */
};

/* "MANIFEST" or digits + ".sst": never a path. */
static bool name_ok(const uint8_t *p, size_t len)
{
	size_t digits = 0;

	if (len == 8 && memcmp(p, "MANIFEST", 8) == 0)
		return true;
	while (digits < len && p[digits] >= '0' && p[digits] <= '9')
		digits++;
	return digits > 0 && len == digits + 4 && len < sizeof(((struct rkv_backup_file *)0)->name) &&
	       memcmp(p + digits, ".sst", 4) == 0;
}

static int on_file(void *arg, const struct frame_backup_file *f)
{
	struct files_build *fb = arg;
	struct rkv_backup *b = fb->b;

	if (!name_ok(f->name.data, f->name.len) || b->file_count >= MAX_FILES)
		return fb->bad = RKV_EPROTO;
	if (b->file_count == fb->cap) {
		size_t cap = fb->cap ? fb->cap * 2 : 16;
		struct rkv_backup_file *files = realloc(b->files, cap * sizeof *files);

		if (!files)
			return -ENOMEM;
		b->files = files;
		fb->cap = cap;
	}
	memcpy(b->files[b->file_count].name, f->name.data, f->name.len);
	b->files[b->file_count].name[f->name.len] = '\0';
	b->files[b->file_count].size = f->size;
	b->file_count++;
	return 0;
}

static int call(struct rkv_client *c, const struct frame_backup_req *q,
		const uint8_t **payload, size_t *len)
{
	struct rkv_result res;

	return libringkv_call_backup(c, q, &res, payload, len);
}

int rkv_backup_begin(struct rkv_client *c, uint32_t shard, struct rkv_backup **out,
		     uint64_t *leader_hint)
{
	struct frame_backup_req q = { .op = ringkv_BackupOp_BACKUP_BEGIN, .shard = shard };
	struct files_build fb = { 0 };
	struct frame_backup a;
	struct frame_slice error;
	const uint8_t *payload;
	size_t len;
	uint64_t id;
	int status, has, rc;

	*out = NULL;
	if (leader_hint)
		*leader_hint = 0;
	rc = call(c, &q, &payload, &len);
	if (rc == RKV_STATUS_NOT_LEADER && leader_hint && payload)
		frame_decode_response_hint(payload, len, leader_hint);
	if (rc != 0)
		return rc;
	fb.b = calloc(1, sizeof *fb.b);
	if (!fb.b)
		return -ENOMEM;
	rc = frame_decode_backup_answer(payload, len, &id, &status, &error, &a, &has, on_file, &fb);
	if (rc == 0 && (!has || a.shard != shard || a.backup_id == 0 || fb.b->file_count == 0 ||
			strcmp(fb.b->files[fb.b->file_count - 1].name, "MANIFEST") != 0))
		rc = RKV_EPROTO;
	if (rc != 0) {
		rkv_backup_free(fb.b);
		libringkv_set_error(c, rc == -ENOMEM ? "out of memory"
					: "the server's answer holds no valid backup (an older "
					  "server?)");
		return rc == -ENOMEM ? rc : RKV_EPROTO;
	}
	fb.b->id = a.backup_id;
	fb.b->shard = a.shard;
	fb.b->index = a.index;
	fb.b->term = a.term;
	*out = fb.b;
	return 0;
}

void rkv_backup_free(struct rkv_backup *b)
{
	if (!b)
		return;
	free(b->files);
	free(b);
}

int rkv_backup_read(struct rkv_client *c, uint64_t id, uint32_t file, uint64_t offset,
		    void *buf, uint32_t len, uint32_t *got)
{
	struct frame_backup_req q = { .op = ringkv_BackupOp_BACKUP_READ, .backup_id = id,
				      .file = file, .offset = offset, .length = len };
	struct frame_backup a;
	struct frame_slice error;
	const uint8_t *payload;
	size_t plen;
	uint64_t rid;
	int status, has, rc;

	*got = 0;
	if (len == 0 || len > RKV_BACKUP_READ_MAX) {
		libringkv_set_error(c, "a backup read takes 1 byte to 1 MiB");
		return RKV_EINVAL;
	}
	rc = call(c, &q, &payload, &plen);
	if (rc != 0)
		return rc;
	rc = frame_decode_backup_answer(payload, plen, &rid, &status, &error, &a, &has, NULL, NULL);
	if (rc == 0 && (!has || a.data.len > len))
		rc = RKV_EPROTO;
	if (rc != 0) {
		libringkv_set_error(c, "the server's answer holds no valid backup data");
		return RKV_EPROTO;
	}
	if (crc32c(0, a.data.data, a.data.len) != a.crc32c) {
		char text[128];

		snprintf(text, sizeof text, "backup data of file %u at offset %llu failed its "
			 "CRC32C", file, (unsigned long long)offset);
		libringkv_set_error(c, text);
		return RKV_ECORRUPT;
	}
	memcpy(buf, a.data.data, a.data.len);
	*got = a.data.len;
	return 0;
}

int rkv_backup_end(struct rkv_client *c, uint64_t id)
{
	struct frame_backup_req q = { .op = ringkv_BackupOp_BACKUP_END, .backup_id = id };
	const uint8_t *payload;
	size_t len;

	return call(c, &q, &payload, &len);
}
