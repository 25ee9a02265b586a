/*
 * `ringkv backup restore DIR --data-dir NEWDIR`: see tools/backup.h and
 * docs/OPERATIONS.md.
 *
 * Check first, write after: BACKUP's checksum, every file's size and
 * CRC32C, and every shard's MANIFEST and tables as shard_open would check
 * them (shard_backup_check_dir), the MANIFEST's flushed index equal to the
 * index BACKUP records. Only then is NEWDIR.restoring built: CLUSTER (a
 * one-node cluster with the backup's shard count, made by the code ringkvd
 * runs at start-up, so ringkvd accepts it as its own), each shard's files
 * in the shard-<id> its core owns, and per core a first log segment whose
 * checkpoint starts each group's Raft log after (index, term) of its copy:
 * the state a replica has after installing a snapshot there. Every file
 * and directory is fsynced, then NEWDIR.restoring is renamed to NEWDIR.
 * No OPENED file: ringkvd writes it after its first start.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/map.h"
#include "core/config.h"
#include "core/durable_file.h"
#include "core/errors.h"
#include "server/datadir.h"
#include "shard/core_log_format.h"
#include "shard/crc32c.h"
#include "shard/shard_backup.h"
#include "tools/backup.h"
#include "tools/backup_manifest.h"

#define EXIT_OK 0
#define EXIT_ERROR 3
#define CHUNK (1u << 20)
#define LOG_PAGE 4096u

/* Size and CRC32C of one backup file against BACKUP's line. */
static int check_file(const char *path, const struct backup_file *f, uint8_t *buf)
{
	uint64_t size = 0;
	uint32_t crc = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "ringkv: restore: %s: %s (named by BACKUP)\n", path,
			strerror(errno));
		return -1;
	}
	for (;;) {
		ssize_t n = read(fd, buf, CHUNK);

		if (n < 0) {
			fprintf(stderr, "ringkv: restore: %s: %s\n", path, strerror(errno));
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		crc = crc32c(crc, buf, (size_t)n);
		size += (uint64_t)n;
	}
	close(fd);
	if (size != f->size) {
		fprintf(stderr, "ringkv: restore: %s: %" PRIu64 " bytes, BACKUP says %" PRIu64
			": the backup is damaged; nothing was restored\n", path, size, f->size);
		return -1;
	}
	if (crc != f->crc32c) {
		fprintf(stderr, "ringkv: restore: %s: CRC32C %08" PRIx32 ", BACKUP says %08" PRIx32
			": the backup is damaged; nothing was restored\n", path, crc, f->crc32c);
		return -1;
	}
	return 0;
}

/* Every check, before anything is written. */
static int check_backup(const char *dir, struct backup_manifest *m)
{
	char path[PATH_MAX + 64], err[1024];
	uint8_t *text = NULL;
	uint8_t *buf = malloc(CHUNK);
	size_t len = 0;
	int rv;

	if (!buf)
		return -1;
	snprintf(path, sizeof path, "%s/BACKUP", dir);
	rv = shard_backup_read_file(path, BACKUP_MANIFEST_MAX, &text, &len);
	if (rv) {
		fprintf(stderr, "ringkv: restore: %s: %s%s\n", path, rkv_strerror(rv),
			rv == -ENOENT ? " (not a finished backup: `backup create` writes it "
					"last)" : "");
		goto fail;
	}
	rv = backup_manifest_parse((const char *)text, len, m, err, sizeof err);
	if (rv) {
		fprintf(stderr, "ringkv: restore: %s: %s\n", path, err);
		goto fail;
	}
	for (uint32_t s = 0; s < m->shard_count; s++) {
		const struct backup_shard *sh = &m->shards[s];
		uint64_t flushed = 0;

		for (size_t i = 0; i < sh->file_count; i++) {
			snprintf(path, sizeof path, "%s/shard-%" PRIu32 "/%s", dir, s,
				 sh->files[i].name);
			if (check_file(path, &sh->files[i], buf) != 0)
				goto fail;
		}
		snprintf(path, sizeof path, "%s/shard-%" PRIu32, dir, s);
		rv = shard_backup_check_dir(path, &flushed, err, sizeof err);
		if (rv) {
			fprintf(stderr, "ringkv: restore: %s\n", err);
			goto fail;
		}
		if (flushed != sh->index) {
			fprintf(stderr, "ringkv: restore: %s/MANIFEST: flushed index %" PRIu64
				", BACKUP says %" PRIu64 "\n", path, flushed, sh->index);
			goto fail;
		}
	}
	free(text);
	free(buf);
	return 0;
fail:
	free(text);
	free(buf);
	return -1;
}

static int copy_file(const char *from, const char *to, uint8_t *buf)
{
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rv = 0;

	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0) {
		rv = -errno;
		close(in);
		return rv;
	}
	for (;;) {
		ssize_t n = read(in, buf, CHUNK), w = 0;

		if (n < 0) {
			rv = -errno;
			break;
		}
		if (n == 0)
			break;
		while (w < n) {
			ssize_t k = write(out, buf + w, (size_t)(n - w));

			if (k < 0) {
				rv = -errno;
				break;
			}
			w += k;
		}
		if (rv)
			break;
	}
	if (rv == 0 && fsync(out) != 0)
		rv = -errno;
	close(in);
	close(out);
	return rv;
}

/* One record of the first segment, at `at` of buf. */
static size_t put_record(uint8_t *at, const struct core_log_record *r)
{
	return core_log_record_finish(at, r);
}

/*
 * DIR/core-<core>/log-00000000000000000001.log: page 0 (header and marks), the
 * RETAIN record a segment begins with, a checkpoint of every group, then a
 * hard state and a LOG_RESET per group (what a snapshot install writes);
 * zeros to a whole page, as the log sizes its segments.
 */
static int write_core_log(const char *data_dir, unsigned core, const uint32_t *shards,
			  unsigned n, const struct backup_manifest *m)
{
	char dir[PATH_MAX + 32];
	size_t cap = CORE_LOG_RECORDS_START + 2 * CORE_LOG_RECORD_HEADER_SIZE +
		     (size_t)n * (CORE_LOG_CHECKPOINT_ITEM + 2 * CORE_LOG_RECORD_HEADER_SIZE);
	size_t len = 0;
	uint8_t *buf;
	int rv;

	if (n > CORE_LOG_CHECKPOINT_MAX_ITEMS)
		return -E2BIG;
	cap = (cap + LOG_PAGE - 1) / LOG_PAGE * LOG_PAGE;
	buf = calloc(1, cap);
	if (!buf)
		return -ENOMEM;
	core_log_segment_page0_encode(buf, 1);
	len = CORE_LOG_RECORDS_START;
	len += put_record(buf + len, &(struct core_log_record){ .kind = CORE_LOG_RETAIN, .a = 1 });
	for (unsigned i = 0; i < n; i++) {
		const struct backup_shard *sh = &m->shards[shards[i]];

		core_log_checkpoint_item_encode(
			buf + len + CORE_LOG_RECORD_HEADER_SIZE + (size_t)i * CORE_LOG_CHECKPOINT_ITEM,
			&(struct core_log_checkpoint_item){ .group = shards[i], .term = sh->term,
							    .start_index = sh->index,
							    .start_term = sh->term });
	}
	len += put_record(buf + len, &(struct core_log_record){
		.kind = CORE_LOG_CHECKPOINT, .a = 1, .b = n,
		.payload_len = n * CORE_LOG_CHECKPOINT_ITEM });
	for (unsigned i = 0; i < n; i++) {
		const struct backup_shard *sh = &m->shards[shards[i]];

		len += put_record(buf + len, &(struct core_log_record){
			.kind = CORE_LOG_HARD_STATE, .group = shards[i], .a = sh->term });
		len += put_record(buf + len, &(struct core_log_record){
			.kind = CORE_LOG_RESET, .group = shards[i], .a = sh->index, .b = sh->term });
	}
	snprintf(dir, sizeof dir, "%s/core-%u", data_dir, core);
	if (mkdir(dir, 0755) != 0) {
		free(buf);
		return -errno;
	}
	rv = durable_file_replace(dir, "log-00000000000000000001.log", buf, cap);
	free(buf);
	return rv;
}

static unsigned usable_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	return 1;
}

/* Absent, or an empty directory: 0 (with *exists); else -1 after saying why. */
static int target_ok(const char *data_dir, int *exists)
{
	DIR *d = opendir(data_dir);
	struct dirent *de;

	*exists = 0;
	if (!d) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "ringkv: restore: %s: %s\n", data_dir, strerror(errno));
		return -1;
	}
	*exists = 1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			closedir(d);
			fprintf(stderr, "ringkv: restore: %s is not empty: a restore builds a new "
				"data dir\n", data_dir);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

static int build(const char *dir, const char *tmp, const struct backup_manifest *m,
		 const struct backup_restore_opts *o, struct datadir_cluster *id)
{
	struct config cfg;
	char err[2048], from[PATH_MAX + 64], to[PATH_MAX + 64];
	uint32_t *on_core = calloc(m->shard_count, sizeof *on_core);
	uint32_t *held = calloc(m->shard_count, sizeof *held);
	bool *mine = calloc(m->shard_count, sizeof *mine);
	uint8_t *buf = malloc(CHUNK);
	char shards_arg[16], cores_arg[16];
	char *argv[16] = { "ringkv", "--data-dir", (char *)tmp, "--shards", shards_arg,
			   "--cores", cores_arg };
	int argc = 7, self, rv = -ENOMEM;
	unsigned nheld;

	if (!on_core || !held || !mine || !buf)
		goto out;
	/* The flags ringkvd would get, through its own parser: the identity is
	 * then the one ringkvd computes for itself from the same flags. */
	snprintf(shards_arg, sizeof shards_arg, "%" PRIu32, m->shard_count);
	snprintf(cores_arg, sizeof cores_arg, "%s", o->cores ? o->cores : "");
	if (!o->cores)
		snprintf(cores_arg, sizeof cores_arg, "%u", usable_cpus());
	if (o->node_id) {
		argv[argc++] = "--node-id";
		argv[argc++] = (char *)o->node_id;
	}
	if (o->initial_cluster) {
		argv[argc++] = "--initial-cluster";
		argv[argc++] = (char *)o->initial_cluster;
	}
	if (o->replicas) {
		argv[argc++] = "--replicas";
		argv[argc++] = (char *)o->replicas;
	}
	if (o->cluster_token) {
		argv[argc++] = "--cluster-token";
		argv[argc++] = (char *)o->cluster_token;
	}
	config_defaults(&cfg);
	rv = config_parse(&cfg, argc, argv, err, sizeof err);
	if (rv) {
		fprintf(stderr, "ringkv: restore: %s\n", err);
		rv = -EINVAL;
		goto out;
	}
	if (mkdir(tmp, 0755) != 0) {
		rv = -errno;
		fprintf(stderr, "ringkv: restore: %s: %s\n", tmp, strerror(errno));
		goto out;
	}
	rv = datadir_cluster_open(tmp, &cfg, cfg.cores, id, err, sizeof err);
	if (rv) {
		fprintf(stderr, "ringkv: restore: %s\n", err);
		goto out;
	}
	self = cluster_map_index(&id->map, id->node_id);
	nheld = self < 0 ? 0 : cluster_map_node_shards(&id->map, (unsigned)self, held,
						       m->shard_count);
	for (unsigned i = 0; i < nheld && i < m->shard_count; i++)
		mine[held[i]] = true;
	for (uint32_t s = 0; s < m->shard_count; s++) {
		const struct backup_shard *sh = &m->shards[s];

		if (!mine[s])
			continue; /* another node of the new cluster holds it */

		snprintf(to, sizeof to, "%s/shard-%" PRIu32, tmp, s);
		if (mkdir(to, 0755) != 0) {
			rv = -errno;
			fprintf(stderr, "ringkv: restore: %s: %s\n", to, strerror(errno));
			goto out;
		}
		for (size_t i = 0; i < sh->file_count; i++) {
			snprintf(from, sizeof from, "%s/shard-%" PRIu32 "/%s", dir, s,
				 sh->files[i].name);
			snprintf(to, sizeof to, "%s/shard-%" PRIu32 "/%s", tmp, s, sh->files[i].name);
			rv = copy_file(from, to, buf);
			if (rv) {
				fprintf(stderr, "ringkv: restore: %s -> %s: %s\n", from, to,
					strerror(-rv));
				goto out;
			}
		}
		snprintf(to, sizeof to, "%s/shard-%" PRIu32, tmp, s);
		rv = durable_dir_sync(to);
		if (rv)
			goto out;
	}
	for (unsigned core = 0; core < id->cores; core++) {
		unsigned n = 0;

		for (uint32_t s = 0; s < m->shard_count; s++)
			if (mine[s] && cluster_map_core(&id->map, s, id->cores) == core &&
			    m->shards[s].index)
				on_core[n++] = s;
		if (n == 0)
			continue; /* ringkvd creates an empty log */
		rv = write_core_log(tmp, core, on_core, n, m);
		if (rv) {
			fprintf(stderr, "ringkv: restore: %s/core-%u: %s\n", tmp, core,
				strerror(-rv));
			goto out;
		}
	}
	rv = durable_dir_sync(tmp);
out:
	free(on_core);
	free(held);
	free(mine);
	free(buf);
	return rv;
}

int backup_restore(const char *dir, const struct backup_restore_opts *o)
{
	const char *data_dir = o->data_dir;
	struct backup_manifest m;
	struct datadir_cluster id;
	char tmp[PATH_MAX];
	struct stat st;
	int exists, rv;

	if (snprintf(tmp, sizeof tmp, "%s.restoring", data_dir) >= (int)sizeof tmp) {
		fprintf(stderr, "ringkv: restore: %s: path too long\n", data_dir);
		return EXIT_ERROR;
	}
	if (target_ok(data_dir, &exists) != 0)
		return EXIT_ERROR;
	if (stat(tmp, &st) == 0) {
		fprintf(stderr, "ringkv: restore: %s exists (left by a restore that stopped part "
			"way?): remove it first\n", tmp);
		return EXIT_ERROR;
	}
	if (check_backup(dir, &m) != 0)
		return EXIT_ERROR;
	rv = build(dir, tmp, &m, o, &id);
	if (rv == 0 && exists && rmdir(data_dir) != 0)
		rv = -errno;
	if (rv == 0 && rename(tmp, data_dir) != 0)
		rv = -errno;
	if (rv == 0)
		rv = durable_parent_sync(data_dir);
	if (rv) {
		fprintf(stderr, "ringkv: restore: building %s failed (%s); %s is left for "
			"inspection, remove it\n", data_dir, strerror(-rv < 0 ? EIO : -rv), tmp);
		backup_manifest_free(&m);
		return EXIT_ERROR;
	}
	fprintf(stderr, "ringkv: restore: %s: node %" PRIu64 " of cluster %016" PRIx64
		" (%u node%s, %" PRIu32 " shards, R=%u, %u cores); start it with ringkvd "
		"--data-dir %s and the same cluster flags\n", data_dir, id.node_id,
		id.map.cluster_id, id.map.node_count, id.map.node_count == 1 ? "" : "s",
		m.shard_count, id.map.replicas, id.cores, data_dir);
	backup_manifest_free(&m);
	return EXIT_OK;
}
