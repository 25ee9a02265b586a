/*
 * DIR/BACKUP: what `ringkv backup create` wrote and `restore` checks
 * (docs/OPERATIONS.md). Text, one record per line, the last line a
 * CRC32C of every byte before it:
 *
 *   ringkv-backup 1
 *   cluster-id 2b0bbc7039ccba27
 *   shards 8
 *   created 1765000000
 *   shard 0 index 1234 term 3 files 3
 *   file 000012.sst 65536 crc32c 1a2b3c4d
 *   file 000013.sst 4096 crc32c 99887766
 *   file MANIFEST 310 crc32c 01020304
 *   shard 1 ...
 *   checksum 5e6f7a8b
 *
 * Every shard 0..shards-1 appears once, in order, each followed by its
 * `files` file lines (its tables, then MANIFEST); the files live in
 * DIR/shard-<id>/. Parsing is strict: the text is untrusted.
 */
#ifndef RINGKV_TOOLS_BACKUP_MANIFEST_H
#define RINGKV_TOOLS_BACKUP_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#define BACKUP_FORMAT_VERSION 1
#define BACKUP_MANIFEST_MAX (64u << 20)
#define BACKUP_NAME_MAX 32
#define BACKUP_MAX_SHARDS 65536u

struct backup_file {
	char name[BACKUP_NAME_MAX];
	uint64_t size;
	uint32_t crc32c;
};

struct backup_shard {
	uint64_t index;               /* flushed index of the copy */
	uint64_t term;
	struct backup_file *files;
	size_t file_count;
};

struct backup_manifest {
	uint64_t cluster_id;
	uint32_t shard_count;
	uint64_t created;             /* unix seconds */
	struct backup_shard *shards;  /* [shard_count] */
};

/* The text of `m` in a malloc'd buffer (*out, *len). 0 or -ENOMEM. */
int backup_manifest_format(const struct backup_manifest *m, char **out, size_t *len);

/* Parses `text`: 0 with `m` filled (free with backup_manifest_free), or
 * -EINVAL with the line and reason in `err`. */
int backup_manifest_parse(const char *text, size_t len, struct backup_manifest *m, char *err,
			  size_t errlen);

void backup_manifest_free(struct backup_manifest *m);

/* A name a backup file may have: digits + ".sst", or "MANIFEST". */
int backup_name_ok(const char *name);

#endif
