/*
 * Snapshots of a replicated shard: its state at the flushed index is the
 * SSTables of the current version, named by the manifest. The sender pins
 * that version (lsm_version.c's reference counts keep its tables open and
 * on disk while a compaction drops them) and reads the files in chunks on
 * the ring; the receiver stages the files beside the shard directory and
 * swaps the staged directory in with one rename.
 *
 * Crash safety of an install: until the exchange, `dir` is untouched and
 * the staging directory is garbage (removed by the next stage); the
 * exchange is one rename, atomic on the file system, made durable by the
 * parent directory's fsync; everything it brings in (tables, MANIFEST, the
 * staging directory's entries) was fsync'ed before. So `dir` is always a
 * whole replica, old or new.
 *
 * The receiver's install runs on the core's ring (shard_install.c);
 * what is here of it blocks and serves start-up, tests and rare fallbacks.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/durable_file.h"
#include "core/errors.h"
#include "core/log.h"
#include "shard/shard_internal.h"

int shard_snapshot_begin(struct shard *s, struct shard_snapshot *snap)
{
	struct lsm_version *v = s->version;
	struct sstable_buf image = { 0 };
	size_t n = 0;

	memset(snap, 0, sizeof *snap);
	if (!s->replicated)
		return RKV_EINVAL;
	if (shard_damaged_tables(s) > 0)
		return RKV_ECORRUPT; /* never ship a damaged table (shard_damage.c) */
	for (unsigned l = 0; l < MANIFEST_LEVELS; l++)
		n += v->count[l];
	if (manifest_version_snapshot(&s->manifest, &image) != 0)
		return -ENOMEM;
	snap->files = calloc(n ? n : 1, sizeof *snap->files);
	snap->tables = calloc(n ? n : 1, sizeof *snap->tables);
	if (!snap->files || !snap->tables) {
		free(snap->files);
		free(snap->tables);
		sstable_buf_free(&image);
		memset(snap, 0, sizeof *snap);
		return -ENOMEM;
	}
	/* The version is the manifest's, installed together (job_install):
	 * the image and the files describe the same state. */
	for (unsigned l = 0; l < MANIFEST_LEVELS; l++) {
		for (size_t i = 0; i < v->count[l]; i++) {
			struct lsm_table *t = v->files[l][i];
			struct shard_snapshot_file *f = &snap->files[snap->nfiles];

			snprintf(f->name, sizeof f->name, "%06" PRIu64 ".sst", t->number);
			f->size = t->size;
			snap->tables[snap->nfiles++] = t;
		}
	}
	snap->index = s->manifest.flushed_index;
	snap->manifest = image.data;
	snap->manifest_len = image.len;
	snap->s = s;
	snap->version = lsm_version_ref(v);
	return 0;
}

void shard_snapshot_end(struct shard_snapshot *snap)
{
	if (snap->version)
		lsm_version_unref(snap->s, snap->version);
	free(snap->manifest);
	free(snap->files);
	free(snap->tables);
	memset(snap, 0, sizeof *snap);
}

static void chunk_done(struct io_op *op, int res, unsigned flags)
{
	struct shard_snapshot_chunk *c = op->data;

	(void)flags;
	shard_op_put(c->s);
	c->done(c, res);
}

int shard_snapshot_read(struct shard_snapshot *snap, size_t file, uint64_t offset,
			void *buf, uint32_t len, struct shard_snapshot_chunk *c)
{
	struct io_uring_sqe *sqe;
	struct lsm_table *t;

	if (!snap->version || file >= snap->nfiles || offset >= snap->files[file].size)
		return RKV_EINVAL;
	t = snap->tables[file];
	if (len > t->size - offset)
		len = (uint32_t)(t->size - offset);
	c->s = snap->s;
	c->op.done = chunk_done;
	c->op.data = c;
	sqe = shard_sqe(snap->s, &c->op);
	io_uring_prep_read(sqe, t->fd, buf, len, offset);
	return 0;
}

/* ---- receiver (blocking: start-up, tests, fallbacks) ---- */

/* Removes directory `path` and the files in it (a shard directory holds
 * no subdirectories). 0 or a negative errno; ENOENT is 0. */
static int remove_dir(const char *path)
{
	struct dirent *de;
	DIR *d = opendir(path);
	int rv = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) != 0 && rv == 0)
			rv = -errno;
	}
	closedir(d);
	if (rmdir(path) != 0 && rv == 0)
		rv = -errno;
	return rv;
}

int shard_snapshot_stage(const char *dir, char *staging, size_t staging_len, char *err,
			 size_t errlen)
{
	int rv = shard_snapshot_staging_path(staging, staging_len, dir);

	if (rv) {
		snprintf(err, errlen, "%s: path too long", dir);
		return rv;
	}
	rv = remove_dir(staging);
	if (rv) {
		snprintf(err, errlen, "%s: removing a leftover: %s", staging, strerror(-rv));
		return rv;
	}
	if (mkdir(staging, 0755) != 0) {
		rv = -errno;
		snprintf(err, errlen, "%s: mkdir: %s", staging, strerror(errno));
		return rv;
	}
	return 0;
}

struct install_wait {
	bool done;
	struct shard_install_result res;
	char err[512];
};

static void wait_installed(void *arg, const struct shard_install_result *res)
{
	struct install_wait *w = arg;

	w->res = *res;
	snprintf(w->err, sizeof w->err, "%s", res->err ? res->err : "");
}

static void wait_finished(void *arg)
{
	((struct install_wait *)arg)->done = true;
}

int shard_snapshot_install(const char *dir, const uint8_t *manifest, size_t manifest_len,
			   uint64_t *index, char *err, size_t errlen)
{
	struct install_wait w = { 0 };
	struct shard_install_args a = {
		.dir = dir, .manifest = manifest, .manifest_len = manifest_len,
		.installed = wait_installed, .finished = wait_finished, .arg = &w,
	};
	struct shard_install *in = NULL;
	char staging[PATH_MAX];
	struct io_ring io;
	int rv;

	rv = io_ring_init(&io, 16, err, errlen);
	if (rv)
		return rv;
	a.io = &io;
	rv = shard_install_start(&in, &a, err, errlen);
	while (rv == 0 && !w.done) {
		rv = io_ring_submit_wait(&io, 100000);
		io_ring_dispatch(&io);
	}
	shard_install_free(in);
	io_ring_exit(&io);
	if (rv)
		return rv;
	if (w.res.rv) {
		snprintf(err, errlen, "%s", w.err);
		return w.res.rv;
	}
	/* Without an open shard the installer knew no names of the old
	 * replica's files: remove what it left of it here. */
	if (!w.res.swapped || shard_snapshot_staging_path(staging, sizeof staging, dir) != 0 ||
	    remove_dir(staging) != 0)
		log_warn("%s: could not remove the replaced replica", dir);
	*index = w.res.index;
	return 0;
}

/* ---- install on a running core ---- */

bool shard_snapshot_quiet(const struct shard *s)
{
	return s->io_inflight == 0 && s->apply.count == 0;
}

int shard_snapshot_recover(const char *dir, char *err, size_t errlen)
{
	char staging[PATH_MAX];
	struct stat st;
	int rv = shard_snapshot_staging_path(staging, sizeof staging, dir);

	if (rv) {
		snprintf(err, errlen, "%s: path too long", dir);
		return rv;
	}
	if (stat(staging, &st) != 0)
		return 0;
	/* Either an unfinished stage (the exchange never happened: `dir` is
	 * the old replica) or the replaced replica after an exchange (`dir`
	 * is the new one): in both cases `dir` is whole and this is garbage. */
	log_info("%s: removing a leftover snapshot staging directory", staging);
	rv = remove_dir(staging);
	if (rv)
		snprintf(err, errlen, "%s: %s", staging, strerror(-rv));
	return rv;
}
