/*
 * Rewriting the manifest while the shard runs. The manifest is an
 * append-only log of edits (~100 bytes per flush or compaction), so it only
 * grows; once it is several times the size of the version it adds up to, the
 * version is written whole into MANIFEST.tmp and renamed over MANIFEST, all
 * through the ring:
 *
 *   OPENAT MANIFEST.tmp (O_TRUNC)
 *   WRITE snapshot -> FSYNC(datasync) -> RENAMEAT tmp -> MANIFEST -> FSYNC(dir)
 *
 * (the four linked). manifest_busy is held from the OPENAT to the end, so no
 * edit is appended meanwhile and the snapshot is the version the old file
 * holds; a crash at any point leaves either the old file or the new one
 * under the name MANIFEST, and both replay to the same version.
 *
 * Failure before the rename: the temp file is closed and unlinked, the old
 * manifest stays, and the next attempt waits until the manifest has grown by
 * another rewrite_min. After the rename the new file is the manifest; if the
 * directory fsync then fails, the rename may not survive a power loss, so no
 * edit may be appended to the new file (a flush or compaction installed
 * there would be lost with the rename, with its WAL segments or input tables
 * already deleted): the manifest stays busy and the directory fsync is
 * retried at every loop step until it succeeds, and the shard stops taking
 * writes (as for a failed WAL fdatasync) until a restart.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "io/ring.h"
#include "shard/shard_internal.h"

static const char tmp_name[] = "MANIFEST.tmp";
static const char name[] = "MANIFEST";

void shard_manifest_rewrite_schedule(struct shard *s, uint64_t written)
{
	uint64_t at = 4 * written;

	s->manifest_rewrite_at = at > s->manifest_rewrite_min ? at : s->manifest_rewrite_min;
}

static void rewrite_end(struct shard *s)
{
	sstable_buf_free(&s->mrw_buf);
	s->mrw_stage = 0;
	s->manifest_busy = false;
}

/* Before the rename: drop the temp file, keep the old manifest. */
static void rewrite_abandon(struct shard *s, int err)
{
	struct io_uring_sqe *sqe;

	log_warn("shard %u: rewriting the manifest failed: %s; kept the old one", s->id,
		 strerror(-err));
	if (s->mrw_fd >= 0) {
		/* We created the temp file: close and remove it. */
		sqe = shard_sqe(s, &s->misc_op);
		io_uring_prep_close(sqe, s->mrw_fd);
		s->mrw_fd = -1;
		sqe = shard_sqe(s, &s->misc_op);
		io_uring_prep_unlinkat(sqe, s->dir_fd, tmp_name, 0);
	}
	s->manifest_rewrite_at = s->manifest_len + s->manifest_rewrite_min;
	s->stats.bg_errors++;
	rewrite_end(s);
}

static void rewrite_finish(struct shard *s)
{
	struct io_uring_sqe *sqe;
	uint64_t old_len = s->manifest_len;

	if (s->manifest_fd >= 0) {
		sqe = shard_sqe(s, &s->misc_op);
		io_uring_prep_close(sqe, s->manifest_fd);
	}
	s->manifest_fd = s->mrw_fd;
	s->mrw_fd = -1;
	s->manifest_len = s->mrw_buf.len;
	shard_manifest_rewrite_schedule(s, s->mrw_buf.len);
	if (s->mrw_res[3] < 0) {
		s->failed = -s->mrw_res[3];
		log_error("shard %u: fsync of %s after the manifest rewrite failed: %s; "
			  "shard read-only until restart, retrying the fsync", s->id, s->dir,
			  strerror(-s->mrw_res[3]));
		s->mrw_stage = 3; /* manifest stays busy until the fsync succeeds */
		return;
	}
	s->stats.manifest_rewrites++;
	log_info("shard %u: rewrote the manifest: %" PRIu64 " bytes of edits -> %zu",
		 s->id, old_len, s->mrw_buf.len);
	rewrite_end(s);
}

static void rewrite_done(struct io_op *op, int res, unsigned flags)
{
	struct shard *s = op->data;
	struct io_uring_sqe *sqe;

	shard_op_put(s);
	s->mrw_res[op - s->mrw_op] = res;
	if (--s->mrw_cqes > 0)
		return;
	if (s->mrw_stage == 1) {
		if (res < 0) {
			rewrite_abandon(s, res);
			return;
		}
		s->mrw_fd = res;
		if (s->closing) {
			rewrite_abandon(s, -ESHUTDOWN);
			return;
		}
		s->mrw_stage = 2;
		s->mrw_cqes = 4;
		sqe = shard_write_chain(s, &s->mrw_op[0], &s->mrw_op[1], s->mrw_fd,
					s->mrw_buf.data, s->mrw_buf.len, 0, 2);
		sqe->flags |= IOSQE_IO_LINK;
		sqe = shard_sqe(s, &s->mrw_op[2]);
		io_uring_prep_renameat(sqe, s->dir_fd, tmp_name, s->dir_fd, name, 0);
		sqe->flags |= IOSQE_IO_LINK;
		sqe = shard_sqe(s, &s->mrw_op[3]);
		io_uring_prep_fsync(sqe, s->dir_fd, 0);
		return;
	}
	if (s->mrw_stage == 4) {
		/* A retried directory fsync after a rename. */
		if (res < 0) {
			s->mrw_stage = 3;
			return;
		}
		log_info("shard %u: %s synced after the manifest rewrite", s->id, s->dir);
		s->stats.manifest_rewrites++;
		rewrite_end(s);
		return;
	}
	if (s->mrw_res[2] >= 0) {
		/* A short write or a failed fsync cancels the rest of the chain. */
		if (s->mrw_res[0] != (int)s->mrw_buf.len || s->mrw_res[1] < 0)
			panic("shard %u: manifest renamed after a failed write (%d) or "
			      "fsync (%d)", s->id, s->mrw_res[0], s->mrw_res[1]);
		rewrite_finish(s); /* renamed: the new file is the manifest now */
		return;
	}
	rewrite_abandon(s, s->mrw_res[0] < 0 ? s->mrw_res[0] :
			   s->mrw_res[0] != (int)s->mrw_buf.len ? -ENOSPC :
			   s->mrw_res[1] < 0 ? s->mrw_res[1] : s->mrw_res[2]);
}

void shard_manifest_init(struct shard *s)
{
	for (int i = 0; i < 4; i++) {
		s->mrw_op[i].done = rewrite_done;
		s->mrw_op[i].data = s;
	}
	s->mrw_fd = -1;
}

void shard_manifest_maybe_rewrite(struct shard *s)
{
	struct io_uring_sqe *sqe;

	if (s->closing)
		return;
	if (s->mrw_stage == 3) {
		s->mrw_stage = 4;
		s->mrw_cqes = 1;
		sqe = shard_sqe(s, &s->mrw_op[3]);
		io_uring_prep_fsync(sqe, s->dir_fd, 0);
		return;
	}
	if (s->mrw_stage != 0 || s->manifest_busy || s->failed ||
	    s->manifest_len < s->manifest_rewrite_at)
		return;
	if (manifest_version_snapshot(&s->manifest, &s->mrw_buf) != 0) {
		s->manifest_rewrite_at = s->manifest_len + s->manifest_rewrite_min;
		return;
	}
	s->manifest_busy = true;
	s->mrw_stage = 1;
	s->mrw_cqes = 1;
	sqe = shard_sqe(s, &s->mrw_op[0]);
	io_uring_prep_openat(sqe, s->dir_fd, tmp_name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
			     0644);
}

int shard_manifest_fd(struct shard *s)
{
	struct stat st;
	int fd;

	if (s->manifest_fd >= 0)
		return 0;
	/* Blocking, but once in a shard's life at most: at its first flush,
	 * compaction or FLUSH (an idle replica holds no descriptor for it). */
	fd = openat(s->dir_fd, name, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		log_error("shard %u: %s/%s: %s", s->id, s->dir, name, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != s->manifest_len) {
		/* Not retried: a flush would rewrite its table for ever. The
		 * shard stops taking writes, as for a failed fsync. */
		log_error("shard %u: %s/%s is %lld bytes, not the %" PRIu64 " read at start-up: "
			  "changed by another hand? no edit appended; the shard takes no "
			  "more writes until a restart", s->id, s->dir, name,
			  (long long)st.st_size, s->manifest_len);
		close(fd);
		s->failed = EIO;
		return -EIO;
	}
	s->manifest_fd = fd;
	return 0;
}

void shard_manifest_fd_release(struct shard *s)
{
	if (s->manifest_fd < 0 || s->manifest_busy || s->mrw_stage != 0)
		return;
	close(s->manifest_fd);
	s->manifest_fd = -1;
}

void shard_manifest_destroy(struct shard *s)
{
	if (s->mrw_fd >= 0)
		close(s->mrw_fd);
	s->mrw_fd = -1;
	sstable_buf_free(&s->mrw_buf);
}
