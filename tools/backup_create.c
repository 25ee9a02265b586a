/*
 * `ringkv backup create DIR`: see tools/backup.h and docs/OPERATIONS.md.
 *
 * One shard at a time: BEGIN on its leader (found in the cluster map,
 * following NOT_LEADER hints), every file read in 1 MiB chunks (each
 * checked against its CRC32C) into DIR.tmp/shard-<id>/ and fsynced, END.
 * Then DIR.tmp/BACKUP (every file's size and CRC32C, itself checksummed) is
 * written and fsynced, and DIR.tmp renamed to DIR: a backup that stopped
 * part way is never at DIR.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/durable_file.h"
#include "shard/crc32c.h"
#include "tools/backup.h"
#include "tools/backup_manifest.h"

#define EXIT_OK 0
#define EXIT_ERROR 3
#define EXIT_TIMEOUT 4
#define BEGIN_ATTEMPTS 20
#define SHARD_ATTEMPTS 3 /* a copy the server stopped serving starts over */
/* BEGIN waits for a memtable flush; the server gives up after 30 s. */
#define BEGIN_TIMEOUT_MS 35000
#define PROGRESS_STEP (64ull << 20)

struct create {
	struct rkv_client *seed;      /* the connection of -a */
	const char *address;
	int timeout_ms;
	struct rkv_cluster_map *map;
	struct rkv_client **conns;    /* [map->node_count], opened when first used */
	uint8_t *buf;
	uint64_t bytes_done;          /* of the whole backup */
	uint64_t shard_done, shard_total; /* of the shard being copied */
	uint64_t next_progress;
	char tmp[PATH_MAX];
};

static int exit_of(int rc)
{
	return rc == -ETIMEDOUT ? EXIT_TIMEOUT : EXIT_ERROR;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* The connection to node `id` (the seed's when the map has no address). */
static struct rkv_client *conn_to(struct create *cr, uint64_t id)
{
	char err[256];

	for (size_t i = 0; i < cr->map->node_count; i++) {
		const struct rkv_node *n = &cr->map->nodes[i];

		if (n->id != id)
			continue;
		if (n->id == cr->map->node_id || !n->client[0])
			return cr->seed;
		if (!cr->conns[i]) {
			if (rkv_connect_timeout(n->client, cr->timeout_ms, &cr->conns[i], err,
						sizeof err) != 0) {
				fprintf(stderr, "ringkv: backup: node %" PRIu64 " (%s): %s\n", id,
					n->client, err);
				cr->conns[i] = NULL;
				return NULL;
			}
			rkv_set_timeout(cr->conns[i], cr->timeout_ms);
		}
		return cr->conns[i];
	}
	return NULL;
}

/* A connection that failed is closed, so the next use connects again. */
static void drop_conn(struct create *cr, struct rkv_client *c)
{
	for (size_t i = 0; i < cr->map->node_count; i++) {
		if (cr->conns[i] == c) {
			rkv_close(c);
			cr->conns[i] = NULL;
		}
	}
}

/* BEGIN with room for the flush it waits for. */
static int begin_once(struct rkv_client *c, uint32_t shard, struct rkv_backup **out,
		      uint64_t *hint)
{
	int timeout = rkv_get_timeout(c), rc;

	if (timeout && timeout < BEGIN_TIMEOUT_MS)
		rkv_set_timeout(c, BEGIN_TIMEOUT_MS);
	rc = rkv_backup_begin(c, shard, out, hint);
	rkv_set_timeout(c, timeout);
	return rc;
}

/* BEGIN on the shard's leader: follows hints, refreshes the map. */
static int begin(struct create *cr, uint32_t shard, struct rkv_client **on,
		 struct rkv_backup **out)
{
	uint64_t leader = cr->map->shards[shard].leader;
	int rc = RKV_STATUS_UNAVAILABLE;

	for (int attempt = 0; attempt < BEGIN_ATTEMPTS; attempt++) {
		struct rkv_client *c = leader ? conn_to(cr, leader) : cr->seed;
		uint64_t hint = 0;

		if (c) {
			rc = begin_once(c, shard, out, &hint);
			if (rc == 0) {
				*on = c;
				return 0;
			}
			if (rc < 0 && c == cr->seed)
				break; /* the seed itself is gone */
			if (rc < 0)
				drop_conn(cr, c);
			if (rc != RKV_STATUS_NOT_LEADER && rc != RKV_STATUS_UNAVAILABLE && rc > 0)
				break;
			if (rc == RKV_STATUS_NOT_LEADER && hint && hint != leader) {
				leader = hint;
				continue;
			}
		}
		sleep_ms(200);
		{
			struct rkv_cluster_map *fresh = NULL;

			if (rkv_cluster_map(cr->seed, &fresh) == 0) {
				if (fresh->node_count == cr->map->node_count &&
				    fresh->shard_count == cr->map->shard_count) {
					rkv_cluster_map_free(cr->map);
					cr->map = fresh;
				} else {
					rkv_cluster_map_free(fresh);
				}
			}
		}
		leader = cr->map->shards[shard].leader;
	}
	fprintf(stderr, "ringkv: backup: shard %" PRIu32 ": no leader would pin it: %s\n", shard,
		rc < 0 ? strerror(-rc) : rkv_status_name(rc));
	return rc ? rc : RKV_STATUS_UNAVAILABLE;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void progress(struct create *cr, uint32_t shard, uint32_t shards, bool force)
{
	if (!force && cr->bytes_done < cr->next_progress)
		return;
	fprintf(stderr, "ringkv: backup: shard %" PRIu32 "/%" PRIu32 ": %.1f of %.1f MiB; "
		"%.1f MiB in all\n", shard + 1, shards, (double)cr->shard_done / (1 << 20),
		(double)cr->shard_total / (1 << 20), (double)cr->bytes_done / (1 << 20));
	while (cr->next_progress <= cr->bytes_done)
		cr->next_progress += PROGRESS_STEP;
}

/* Copies file `i` of backup `b` into `dir`; sets its CRC32C. *remote: the
 * failure came from the server or the connection (worth a fresh pin), not
 * from this machine's disk. */
static int copy_file(struct create *cr, struct rkv_client *c, const struct rkv_backup *b,
		     uint32_t i, const char *dir, struct backup_file *out, bool *remote)
{
	const struct rkv_backup_file *f = &b->files[i];
	char path[PATH_MAX + 64];
	uint64_t offset = 0;
	uint32_t crc = 0;
	int fd, rc = 0;

	snprintf(path, sizeof path, "%s/%s", dir, f->name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "ringkv: backup: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	while (offset < f->size) {
		uint64_t left = f->size - offset;
		uint32_t want = left < RKV_BACKUP_READ_MAX ? (uint32_t)left : RKV_BACKUP_READ_MAX;
		uint32_t got = 0;

		rc = rkv_backup_read(c, b->id, i, offset, cr->buf, want, &got);
		*remote = rc != 0 || got == 0;
		if (rc != 0) {
			fprintf(stderr, "ringkv: backup: shard %" PRIu32 " %s at %" PRIu64 ": %s\n",
				b->shard, f->name, offset, rkv_last_error(c));
			break;
		}
		if (got == 0) {
			fprintf(stderr, "ringkv: backup: shard %" PRIu32 " %s: ends at %" PRIu64
				" of %" PRIu64 " bytes\n", b->shard, f->name, offset, f->size);
			rc = -EIO;
			break;
		}
		rc = write_all(fd, cr->buf, got);
		if (rc) {
			fprintf(stderr, "ringkv: backup: %s: %s\n", path, strerror(-rc));
			break;
		}
		crc = crc32c(crc, cr->buf, got);
		offset += got;
		cr->bytes_done += got;
		cr->shard_done += got;
		progress(cr, b->shard, (uint32_t)cr->map->shard_count, false);
	}
	if (rc == 0 && fsync(fd) != 0) {
		rc = -errno;
		fprintf(stderr, "ringkv: backup: %s: fsync: %s\n", path, strerror(errno));
	}
	close(fd);
	if (rc == 0) {
		snprintf(out->name, sizeof out->name, "%s", f->name);
		out->size = f->size;
		out->crc32c = crc;
	}
	return rc;
}

/* One attempt at a shard: pin, copy every file, unpin. */
static int copy_pinned(struct create *cr, uint32_t shard, const char *dir,
		       struct backup_shard *out, bool *remote)
{
	struct rkv_client *c = NULL;
	struct rkv_backup *b = NULL;
	int rc;

	*remote = false; /* begin() retried already */
	rc = begin(cr, shard, &c, &b);
	if (rc)
		return rc;
	out->index = b->index;
	out->term = b->term;
	cr->shard_done = 0;
	cr->shard_total = 0;
	for (size_t i = 0; i < b->file_count; i++)
		cr->shard_total += b->files[i].size;
	out->files = calloc(b->file_count, sizeof *out->files);
	rc = out->files ? 0 : -ENOMEM;
	for (uint32_t i = 0; rc == 0 && i < b->file_count; i++) {
		if (!backup_name_ok(b->files[i].name)) {
			rc = -EPROTO;
			break;
		}
		*remote = false;
		rc = copy_file(cr, c, b, i, dir, &out->files[i], remote);
		if (rc == 0)
			out->file_count++;
	}
	/* Unpin either way (the server would after 60 s unused). */
	rkv_backup_end(c, b->id);
	rkv_backup_free(b);
	if (rc == 0) {
		*remote = false;
		rc = durable_dir_sync(dir);
	} else if (*remote && c != cr->seed) {
		drop_conn(cr, c);
	}
	return rc;
}

/* Forgets a failed attempt: its files, and its bytes in the progress. */
static void forget_attempt(struct create *cr, const char *dir, struct backup_shard *out)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d)) != NULL)
		if (backup_name_ok(de->d_name))
			unlinkat(dirfd(d), de->d_name, 0);
	if (d)
		closedir(d);
	free(out->files);
	memset(out, 0, sizeof *out);
	cr->bytes_done -= cr->shard_done;
	cr->shard_done = 0;
}

static int copy_shard(struct create *cr, uint32_t shard, struct backup_shard *out)
{
	char dir[PATH_MAX + 32];
	bool remote = false;
	int rc = 0;

	snprintf(dir, sizeof dir, "%s/shard-%" PRIu32, cr->tmp, shard);
	if (mkdir(dir, 0755) != 0) {
		fprintf(stderr, "ringkv: backup: %s: %s\n", dir, strerror(errno));
		return -errno;
	}
	for (int attempt = 1; attempt <= SHARD_ATTEMPTS; attempt++) {
		rc = copy_pinned(cr, shard, dir, out, &remote);
		if (rc == 0 || !remote || attempt == SHARD_ATTEMPTS)
			break;
		forget_attempt(cr, dir, out);
		fprintf(stderr, "ringkv: backup: shard %" PRIu32 ": starting over on a fresh pin "
			"(attempt %d of %d)\n", shard, attempt + 1, SHARD_ATTEMPTS);
		sleep_ms(500);
	}
	return rc;
}

int backup_create(struct rkv_client *client, const char *address, int timeout_ms,
		  const char *dir)
{
	struct create cr = { .seed = client, .address = address, .timeout_ms = timeout_ms,
			     .next_progress = PROGRESS_STEP };
	struct backup_manifest m = { 0 };
	char *text = NULL;
	size_t text_len = 0;
	struct stat st;
	int rc, exit_status = EXIT_ERROR;

	if (snprintf(cr.tmp, sizeof cr.tmp, "%s.tmp", dir) >= (int)sizeof cr.tmp) {
		fprintf(stderr, "ringkv: backup: %s: path too long\n", dir);
		return EXIT_ERROR;
	}
	if (stat(dir, &st) == 0) {
		fprintf(stderr, "ringkv: backup: %s exists: a backup goes into a new directory\n",
			dir);
		return EXIT_ERROR;
	}
	if (stat(cr.tmp, &st) == 0) {
		fprintf(stderr, "ringkv: backup: %s exists (left by a backup that stopped part "
			"way?): remove it first\n", cr.tmp);
		return EXIT_ERROR;
	}
	rc = rkv_cluster_map(client, &cr.map);
	if (rc != 0) {
		fprintf(stderr, "ringkv: backup: the cluster map: %s\n", rkv_last_error(client));
		return exit_of(rc);
	}
	cr.conns = calloc(cr.map->node_count, sizeof *cr.conns);
	cr.buf = malloc(RKV_BACKUP_READ_MAX);
	m.shard_count = (uint32_t)cr.map->shard_count;
	m.cluster_id = cr.map->cluster_id;
	m.created = (uint64_t)time(NULL);
	m.shards = calloc(m.shard_count ? m.shard_count : 1, sizeof *m.shards);
	if (!cr.conns || !cr.buf || !m.shards) {
		fprintf(stderr, "ringkv: backup: out of memory\n");
		goto out;
	}
	if (mkdir(cr.tmp, 0755) != 0) {
		fprintf(stderr, "ringkv: backup: %s: %s\n", cr.tmp, strerror(errno));
		goto out;
	}
	for (uint32_t s = 0; s < m.shard_count; s++) {
		rc = copy_shard(&cr, s, &m.shards[s]);
		if (rc) {
			fprintf(stderr, "ringkv: backup: shard %" PRIu32 " failed; %s is incomplete "
				"(remove it)\n", s, cr.tmp);
			exit_status = exit_of(rc);
			goto out;
		}
		progress(&cr, s, m.shard_count, true);
	}
	rc = backup_manifest_format(&m, &text, &text_len);
	if (rc == 0)
		rc = durable_file_replace(cr.tmp, "BACKUP", text, text_len);
	if (rc == 0 && rename(cr.tmp, dir) != 0)
		rc = -errno;
	if (rc == 0)
		rc = durable_parent_sync(dir);
	if (rc) {
		fprintf(stderr, "ringkv: backup: finishing %s: %s\n", dir, strerror(-rc));
		goto out;
	}
	fprintf(stderr, "ringkv: backup: %s: %" PRIu32 " shards, %.1f MiB\n", dir, m.shard_count,
		(double)cr.bytes_done / (1 << 20));
	exit_status = EXIT_OK;
out:
	free(text);
	backup_manifest_free(&m);
	if (cr.conns)
		for (size_t i = 0; i < cr.map->node_count; i++)
			rkv_close(cr.conns[i]);
	free(cr.conns);
	free(cr.buf);
	rkv_cluster_map_free(cr.map);
	return exit_status;
}
