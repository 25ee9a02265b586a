/*
 * A snapshot install on the core's ring: a small state machine whose every
 * file-system step is one io_uring operation, continued from its
 * completion, so the reactor goes on serving the core's other groups (and
 * this replica's old shard) while the install runs.
 *
 * The steps, in order (enum shard_install_step):
 *
 *   staged files the manifest image does not name: unlinkat each
 *   per table the image names: openat, statx, read footer, read metadata
 *     (checked as shard_open checks them), fsync; the fd stays open
 *   MANIFEST.tmp: openat, write, fdatasync; renameat to MANIFEST (its fd
 *     stays open: the new shard appends through it)
 *   with an origin (a replica's snapshot): INSTALLED (install_origin.h):
 *     openat, write, fdatasync, close -- inside the staging directory, so
 *     the exchange brings it in with the tables, atomically
 *   the staging directory: openat (stays open: the new shard's dir_fd), fsync
 *   a damaged old replica only (quarantine): mkdirat <parent>/quarantine,
 *     renameat(staging, quarantine/<name>), openat quarantine
 *   the parent directory: openat
 *   --- the commit point: renameat(staging or quarantine/<name>, dir,
 *       RENAME_EXCHANGE) ---
 *   the parent: fsync (and the quarantine directory's), close
 *   the new shard is built from what is open and checked (no I/O)
 *   the old replica, now at the staging path: unlinkat each of its files,
 *     then the directory; a damaged one is at quarantine/<name> already:
 *     nothing of it is deleted
 *
 * Crash safety is the blocking version's: until the exchange `dir` is
 * untouched and the staging directory garbage (start-up recovery and the
 * next stage remove it); everything the exchange brings in (tables, the
 * MANIFEST, the staging directory's entries) is fsync'ed before it; the
 * exchange is one rename, made durable by the parent's fsync before the
 * shard is reported installed. So `dir` is always a whole replica, old or
 * new. tests/unit/shard/test_shard_install.c stops the machine before
 * each step and checks what a crash there leaves.
 *
 * Quarantine. The files of a damaged replica are evidence (what broke, and
 * what an operator may still salvage), so they are never deleted
 * automatically: the staged snapshot is moved to its quarantine name
 * first and the exchange swaps it with `dir` across the two directories,
 * so the old replica lands at its quarantine name in the same atomic
 * rename that installs the new one. A crash before the exchange leaves
 * `dir` untouched and the staged snapshot (not the old replica) in
 * quarantine, logged, for the operator to remove; never the other way
 * round. Quarantine is never emptied by ringkv (docs/cluster/repair-design.md
 * says how an operator removes it; start-up reports what it holds).
 *
 * One operation is in flight at a time; memory is allocated once per
 * install (the table list, a metadata buffer grown to the largest table's).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/durable_file.h"
#include "core/errors.h"
#include "core/log.h"
#include "shard/install_origin.h"
#include "shard/shard_internal.h"

static const char *const step_names[] = {
	[INSTALL_STRAY_UNLINK] = "unlink a stray staged file",
	[INSTALL_TABLE_OPEN] = "open a table",
	[INSTALL_TABLE_STATX] = "stat a table",
	[INSTALL_TABLE_FOOTER] = "read a table's footer",
	[INSTALL_TABLE_META] = "read a table's metadata",
	[INSTALL_TABLE_FSYNC] = "fsync a table",
	[INSTALL_MANIFEST_OPEN] = "create MANIFEST.tmp",
	[INSTALL_MANIFEST_WRITE] = "write MANIFEST.tmp",
	[INSTALL_MANIFEST_SYNC] = "fdatasync MANIFEST.tmp",
	[INSTALL_MANIFEST_RENAME] = "rename MANIFEST.tmp",
	[INSTALL_ORIGIN_OPEN] = "create INSTALLED",
	[INSTALL_ORIGIN_WRITE] = "write INSTALLED",
	[INSTALL_ORIGIN_SYNC] = "fdatasync INSTALLED",
	[INSTALL_ORIGIN_CLOSE] = "close INSTALLED",
	[INSTALL_STAGING_OPEN] = "open the staging directory",
	[INSTALL_STAGING_SYNC] = "fsync the staging directory",
	[INSTALL_QUARANTINE_MKDIR] = "make the quarantine directory",
	[INSTALL_QUARANTINE_MOVE] = "move the staging directory into quarantine",
	[INSTALL_QUARANTINE_OPEN] = "open the quarantine directory",
	[INSTALL_PARENT_OPEN] = "open the parent directory",
	[INSTALL_EXCHANGE] = "exchange",
	[INSTALL_PARENT_SYNC] = "fsync the parent directory",
	[INSTALL_QUARANTINE_SYNC] = "fsync the quarantine directory",
	[INSTALL_PARENT_CLOSE] = "close the parent directory",
	[INSTALL_BUILD] = "build the shard",
	[INSTALL_OLD_UNLINK] = "unlink a file of the old replica",
	[INSTALL_OLD_RMDIR] = "remove the old replica's directory",
	[INSTALL_CLOSE] = "close",
	[INSTALL_DONE] = "done",
};

struct shard_install {
	struct shard_install_args a;
	struct shard_config cfg;        /* a copy; cfg.dir points at `dir` */
	bool build;                     /* a.cfg given: make the new shard */
	char dir[PATH_MAX];
	char staging[PATH_MAX];
	char parent[PATH_MAX];
	char path[PATH_MAX + 64];       /* of the op in flight (and a second) */
	char path2[PATH_MAX + 64];
	char qroot[PATH_MAX];           /* <parent>/quarantine */
	char qpath[PATH_MAX + 128];     /* the old replica's quarantine name */
	const char *swap_from;          /* the exchange's source: staging or qpath */
	bool quarantine;                /* the old replica is damaged: keep it */
	bool moved;                     /* the staging directory is at qpath */
	int qroot_fd;
	int origin_fd;                  /* INSTALLED, while it is written */
	uint8_t origin[INSTALL_ORIGIN_SIZE];
	enum shard_install_step step;
	struct io_op op;
	bool inflight;
	bool frozen;                    /* the test hook stopped it (a crash) */
	bool stop;                      /* shard_install_stop: fail before the exchange */
	bool reported;                  /* `installed` ran */
	bool swapped;
	int parent_fd;
	struct shard_open_parts parts;  /* what the new shard takes */
	const struct manifest_file **mfs; /* parallel to parts.tables */
	uint64_t *named;                /* the image's table numbers, sorted */
	size_t cur;                     /* table, stray or old file at hand */
	struct statx stx;
	uint8_t tail[SSTABLE_FOOTER_SIZE];
	struct sstable_footer footer;
	uint8_t *meta_buf;
	size_t meta_cap;
	/* a read or write resumed after a short count */
	int rw_fd;
	uint8_t *rw_buf;
	size_t rw_len, rw_done;
	uint64_t rw_off;
	uint64_t *old_numbers;          /* the old replica's tables */
	size_t nold;
	struct shard_install_result res;
	char err[2 * PATH_MAX + 512];
	struct shard_install_stats stats;
};

static void submit(struct shard_install *in);

const char *shard_install_step_name(enum shard_install_step step)
{
	return step <= INSTALL_DONE && step_names[step] ? step_names[step] : "?";
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* True when `name` is the name of a table the image names. */
static bool named_by_image(const struct shard_install *in, const char *name)
{
	char again[SHARD_FILE_NAME_MAX];
	unsigned long long n;
	char *end;

	if (name[0] < '0' || name[0] > '9')
		return false;
	errno = 0;
	n = strtoull(name, &end, 10);
	if (errno || strcmp(end, ".sst") != 0)
		return false;
	snprintf(again, sizeof again, "%06llu.sst", n);
	if (strcmp(again, name) != 0)
		return false;
	return bsearch(&(uint64_t){ n }, in->named, in->parts.ntables, sizeof *in->named,
		       cmp_u64) != NULL;
}

/* The installer's outcome, once. */
static void report(struct shard_install *in)
{
	if (in->reported)
		return;
	in->reported = true;
	in->res.swapped = in->swapped;
	in->res.err = in->err;
	if (in->a.installed)
		in->a.installed(in->a.arg, &in->res);
}

/* First fd still ours, or -1; closed by INSTALL_CLOSE one at a time. */
static int *next_open_fd(struct shard_install *in)
{
	for (size_t i = 0; i < in->parts.ntables; i++)
		if (in->parts.tables[i].fd >= 0)
			return &in->parts.tables[i].fd;
	if (in->parts.manifest_fd >= 0)
		return &in->parts.manifest_fd;
	if (in->parts.dir_fd >= 0)
		return &in->parts.dir_fd;
	if (in->parent_fd >= 0)
		return &in->parent_fd;
	if (in->qroot_fd >= 0)
		return &in->qroot_fd;
	if (in->origin_fd >= 0)
		return &in->origin_fd;
	return NULL;
}

/* Ends with `rv`: reports it, then closes what is still open. */
static void fail(struct shard_install *in, int rv)
{
	if (in->moved && !in->swapped)
		log_warn("%s: holds the staged snapshot of an install that failed (not the "
			 "replica it was to replace, which stays at %s): remove it", in->qpath,
			 in->dir);
	in->res.rv = rv;
	if (!in->err[0])
		snprintf(in->err, sizeof in->err, "%s: %s", shard_install_step_name(in->step),
			 rkv_strerror(rv));
	in->step = INSTALL_CLOSE;
	report(in);
}

static void fail_errno(struct shard_install *in, int res, const char *what)
{
	snprintf(in->err, sizeof in->err, "%s: %s: %s", what, shard_install_step_name(in->step),
		 strerror(-res));
	fail(in, res);
}

static void table_path(struct shard_install *in, size_t k)
{
	snprintf(in->path, sizeof in->path, "%s/%06" PRIu64 ".sst", in->staging,
		 in->parts.tables[k].number);
}

/* The step after the checks of table `cur`: the next table, or the MANIFEST. */
static void next_table(struct shard_install *in)
{
	in->cur++;
	in->step = in->cur < in->parts.ntables ? INSTALL_TABLE_OPEN : INSTALL_MANIFEST_OPEN;
}

/* Builds the new shard from the parts (no I/O) and reports it. */
static void build(struct shard_install *in)
{
	struct shard *fresh = NULL;
	int rv;

	in->res.index = in->parts.manifest.flushed_index;
	if (in->build) {
		rv = shard_open_installed(&fresh, &in->cfg, in->a.io, &in->parts, in->err,
					  sizeof in->err);
		if (rv) {
			/* `dir` is the new replica, whole: the caller reopens it. */
			in->res.rv = rv;
			in->step = INSTALL_CLOSE;
			report(in);
			return;
		}
		in->res.fresh = fresh;
	}
	log_info("%s: installed a snapshot at index %" PRIu64 " (%zu tables)", in->dir,
		 in->res.index, in->parts.ntables);
	/* A failed parent fsync leaves the old replica where the staging
	 * directory was: the next stage or start-up removes it. */
	in->cur = 0;
	if (in->res.rv != 0 || in->stats.plain_rename || !in->a.old || in->moved)
		in->step = INSTALL_CLOSE; /* (without cfg: the files still open) */
	else
		in->step = INSTALL_OLD_UNLINK;
	if (in->moved && in->swapped && !in->stats.plain_rename) {
		in->stats.quarantined = true;
		log_warn("%s: the replaced replica was damaged: its files are kept in %s, never "
			 "deleted by ringkv; inspect them, then remove that directory (rm -rf) "
			 "when done (docs/cluster/repair-design.md, quarantine)", in->dir, in->qpath);
	}
	report(in);
}

static void done(struct io_op *op, int res, unsigned flags)
{
	struct shard_install *in = op->data;
	char why[64];

	(void)flags;
	in->inflight = false;
	in->stats.ops++;
	switch (in->step) {
	case INSTALL_STRAY_UNLINK:
		if (res < 0 && res != -ENOENT) {
			fail_errno(in, res, in->path);
			break;
		}
		in->cur++;
		break;
	case INSTALL_TABLE_OPEN:
		if (res < 0) {
			snprintf(in->err, sizeof in->err, "%s: named by the snapshot's manifest: %s",
				 in->path, strerror(-res));
			fail(in, RKV_ECORRUPT);
			break;
		}
		in->parts.tables[in->cur].fd = res;
		in->step = INSTALL_TABLE_STATX;
		break;
	case INSTALL_TABLE_STATX:
		if (res < 0) {
			fail_errno(in, res, in->path);
			break;
		}
		if (lsm_table_check_size(in->path, in->mfs[in->cur], in->stx.stx_size, in->err,
					 sizeof in->err) != 0) {
			fail(in, RKV_ECORRUPT);
			break;
		}
		in->step = INSTALL_TABLE_FOOTER;
		in->rw_fd = in->parts.tables[in->cur].fd;
		in->rw_buf = in->tail;
		in->rw_len = SSTABLE_FOOTER_SIZE;
		in->rw_off = in->mfs[in->cur]->size - SSTABLE_FOOTER_SIZE;
		in->rw_done = 0;
		break;
	case INSTALL_TABLE_FOOTER:
	case INSTALL_TABLE_META:
	case INSTALL_MANIFEST_WRITE:
		if (res <= 0) {
			snprintf(why, sizeof why, "%s", res == 0 ? "short" : strerror(-res));
			snprintf(in->err, sizeof in->err, "%s: %s: %s", in->path,
				 shard_install_step_name(in->step), why);
			fail(in, res < 0 ? res : -EIO);
			break;
		}
		in->rw_done += (size_t)res;
		if (in->rw_done < in->rw_len)
			break; /* the rest */
		if (in->step == INSTALL_MANIFEST_WRITE) {
			/* The new shard appends its edits after the image. */
			in->parts.manifest_len = in->rw_len;
			in->step = INSTALL_MANIFEST_SYNC;
		} else if (in->step == INSTALL_TABLE_FOOTER) {
			const struct manifest_file *mf = in->mfs[in->cur];

			if (lsm_table_check_footer(in->path, mf, in->tail, &in->footer, in->err,
						   sizeof in->err) != 0) {
				fail(in, RKV_ECORRUPT);
				break;
			}
			if (in->footer.meta_len > in->meta_cap) {
				size_t cap = in->meta_cap ? in->meta_cap : 4096;
				uint8_t *p;

				while (cap < in->footer.meta_len)
					cap *= 2;
				p = realloc(in->meta_buf, cap);
				if (!p) {
					fail(in, -ENOMEM);
					break;
				}
				in->meta_buf = p;
				in->meta_cap = cap;
			}
			in->step = INSTALL_TABLE_META;
			in->rw_buf = in->meta_buf;
			in->rw_len = in->footer.meta_len;
			in->rw_off = in->footer.meta_offset;
			in->rw_done = 0;
		} else {
			struct shard_open_table *t = &in->parts.tables[in->cur];
			int rv = lsm_table_check_meta(in->path, in->mfs[in->cur], &in->footer,
						      in->meta_buf, &t->meta, in->err,
						      sizeof in->err);

			if (rv) {
				fail(in, rv == -ENOMEM ? rv : RKV_ECORRUPT);
				break;
			}
			t->loaded = true;
			in->step = INSTALL_TABLE_FSYNC;
		}
		break;
	case INSTALL_TABLE_FSYNC:
		if (res < 0) {
			fail_errno(in, res, in->path);
			break;
		}
		next_table(in);
		break;
	case INSTALL_MANIFEST_OPEN:
		if (res < 0) {
			fail_errno(in, res, in->path);
			break;
		}
		in->parts.manifest_fd = res;
		in->step = INSTALL_MANIFEST_WRITE;
		in->rw_fd = res;
		in->rw_buf = (uint8_t *)in->a.manifest;
		in->rw_len = in->a.manifest_len;
		in->rw_off = 0;
		in->rw_done = 0;
		break;
	case INSTALL_MANIFEST_SYNC:
	case INSTALL_MANIFEST_RENAME:
	case INSTALL_STAGING_SYNC:
		if (res < 0) {
			fail_errno(in, res, in->path);
			break;
		}
		in->step++;
		if (in->step == INSTALL_ORIGIN_OPEN && !in->a.origin_term)
			in->step = INSTALL_STAGING_OPEN;
		if (in->step == INSTALL_QUARANTINE_MKDIR && !in->quarantine)
			in->step = INSTALL_PARENT_OPEN;
		break;
	case INSTALL_ORIGIN_OPEN:
		if (res < 0) {
			fail_errno(in, res, in->path);
			break;
		}
		in->origin_fd = res;
		in->step = INSTALL_ORIGIN_WRITE;
		break;
	case INSTALL_ORIGIN_WRITE:
		if (res != (int)INSTALL_ORIGIN_SIZE) {
			snprintf(in->err, sizeof in->err, "%s: write: %s", in->path,
				 res < 0 ? strerror(-res) : "short");
			fail(in, res < 0 ? res : -EIO);
			break;
		}
		in->step = INSTALL_ORIGIN_SYNC;
		break;
	case INSTALL_ORIGIN_SYNC:
		if (res < 0) {
			fail_errno(in, res, in->path);
			break;
		}
		in->step = INSTALL_ORIGIN_CLOSE;
		break;
	case INSTALL_ORIGIN_CLOSE:
		/* The fd was let go at submission. */
		in->step = INSTALL_STAGING_OPEN;
		break;
	case INSTALL_STAGING_OPEN:
		if (res < 0) {
			fail_errno(in, res, in->staging);
			break;
		}
		in->parts.dir_fd = res;
		in->step = INSTALL_STAGING_SYNC;
		break;
	case INSTALL_QUARANTINE_MKDIR:
		if (res < 0 && res != -EEXIST) {
			fail_errno(in, res, in->qroot);
			break;
		}
		in->step = INSTALL_QUARANTINE_MOVE;
		break;
	case INSTALL_QUARANTINE_MOVE:
		if (res < 0) {
			snprintf(in->err, sizeof in->err, "%s -> %s: %s", in->staging, in->qpath,
				 strerror(-res));
			fail(in, res);
			break;
		}
		in->moved = true;
		in->swap_from = in->qpath;
		in->step = INSTALL_QUARANTINE_OPEN;
		break;
	case INSTALL_QUARANTINE_OPEN:
		if (res < 0) {
			fail_errno(in, res, in->qroot);
			break;
		}
		in->qroot_fd = res;
		in->step = INSTALL_PARENT_OPEN;
		break;
	case INSTALL_PARENT_OPEN:
		if (res < 0) {
			fail_errno(in, res, in->parent);
			break;
		}
		in->parent_fd = res;
		in->step = INSTALL_EXCHANGE;
		break;
	case INSTALL_EXCHANGE:
		if (res == -ENOENT && !in->stats.plain_rename) {
			/* No replica at `dir` (a first install): a plain rename. */
			in->stats.plain_rename = true;
			break;
		}
		if (res < 0) {
			snprintf(in->err, sizeof in->err, "%s -> %s: %s", in->swap_from, in->dir,
				 strerror(-res));
			fail(in, res);
			break;
		}
		in->swapped = true;
		in->step = INSTALL_PARENT_SYNC;
		break;
	case INSTALL_PARENT_SYNC:
		if (res < 0) {
			/* The swap happened; whether it lasts a power loss is
			 * unknown. `dir` is the new replica: it is opened. */
			snprintf(in->err, sizeof in->err, "%s: fsync: %s", in->parent,
				 strerror(-res));
			in->res.rv = res;
		}
		in->step = in->moved ? INSTALL_QUARANTINE_SYNC : INSTALL_PARENT_CLOSE;
		break;
	case INSTALL_QUARANTINE_SYNC:
		if (res < 0 && in->res.rv == 0) {
			/* As a failed parent fsync: the swap happened, whether
			 * it lasts a power loss is unknown. */
			snprintf(in->err, sizeof in->err, "%s: fsync: %s", in->qroot,
				 strerror(-res));
			in->res.rv = res;
		}
		in->step = INSTALL_PARENT_CLOSE;
		break;
	case INSTALL_PARENT_CLOSE:
		in->parent_fd = -1;
		in->step = INSTALL_BUILD;
		break;
	case INSTALL_OLD_UNLINK:
		if (res < 0 && res != -ENOENT)
			log_warn("%s: %s", in->path, strerror(-res));
		if (++in->cur >= in->nold + 3)
			in->step = INSTALL_OLD_RMDIR;
		break;
	case INSTALL_OLD_RMDIR:
		if (res == -ENOTEMPTY)
			log_warn("%s: the replaced replica holds files ringkv did not write; "
				 "the next snapshot stage (or a restart) removes them", in->staging);
		else if (res < 0 && res != -ENOENT)
			log_warn("%s: could not remove the replaced replica: %s; the next "
				 "snapshot stage removes it", in->staging, strerror(-res));
		in->step = INSTALL_CLOSE;
		break;
	case INSTALL_CLOSE:
		/* The fd was let go at submission. */
		break;
	default:
		break;
	}
	submit(in);
}

/*
 * Takes the step at hand: the steps that need no operation (skipping
 * named staged files, BUILD, the end, a stop) run here; the others get
 * their SQE, and done() continues from the completion.
 */
static void submit(struct shard_install *in)
{
	struct io_uring_sqe *sqe;
	int *fdp;

	for (;;) {
		if (in->step == INSTALL_STRAY_UNLINK) {
			while (in->cur < in->a.nstaged && named_by_image(in, in->a.staged[in->cur]))
				in->cur++;
			if (in->cur >= in->a.nstaged) {
				in->cur = 0;
				in->step = in->parts.ntables ? INSTALL_TABLE_OPEN :
							       INSTALL_MANIFEST_OPEN;
				continue;
			}
		}
		if (in->step == INSTALL_CLOSE && !next_open_fd(in))
			in->step = INSTALL_DONE;
		if (in->step == INSTALL_DONE) {
			in->stats.steps++;
			if (in->a.finished)
				in->a.finished(in->a.arg); /* may free `in`: last */
			return;
		}
		/* Once the staged snapshot is at its quarantine name, the
		 * exchange follows (a stop would leave it there for nothing). */
		if (in->stop && in->step < INSTALL_EXCHANGE && !in->moved && !in->reported) {
			snprintf(in->err, sizeof in->err, "stopping");
			fail(in, RKV_ESHUTDOWN);
			continue;
		}
		if (in->a.step_hook && !in->a.step_hook(in->a.arg, in->step)) {
			in->frozen = true; /* a crash here, for a test */
			return;
		}
		in->stats.steps++;
		if (in->step == INSTALL_BUILD) {
			build(in);
			continue;
		}
		break;
	}
	in->op.done = done;
	in->op.data = in;
	sqe = io_ring_get_sqe(in->a.io);
	io_op_attach(sqe, &in->op);
	in->inflight = true;
	switch (in->step) {
	case INSTALL_STRAY_UNLINK:
		snprintf(in->path, sizeof in->path, "%s/%s", in->staging, in->a.staged[in->cur]);
		io_uring_prep_unlinkat(sqe, AT_FDCWD, in->path, 0);
		break;
	case INSTALL_TABLE_OPEN:
		table_path(in, in->cur);
		io_uring_prep_openat(sqe, AT_FDCWD, in->path, O_RDONLY | O_CLOEXEC, 0);
		break;
	case INSTALL_TABLE_STATX:
		io_uring_prep_statx(sqe, in->parts.tables[in->cur].fd, "", AT_EMPTY_PATH,
				    STATX_SIZE, &in->stx);
		break;
	case INSTALL_TABLE_FOOTER:
	case INSTALL_TABLE_META:
		io_uring_prep_read(sqe, in->rw_fd, in->rw_buf + in->rw_done,
				   (unsigned)(in->rw_len - in->rw_done), in->rw_off + in->rw_done);
		break;
	case INSTALL_MANIFEST_WRITE: {
		size_t left = in->rw_len - in->rw_done;

		io_uring_prep_write(sqe, in->rw_fd, in->rw_buf + in->rw_done,
				    left > (1u << 30) ? 1u << 30 : (unsigned)left,
				    in->rw_off + in->rw_done);
		break;
	}
	case INSTALL_TABLE_FSYNC:
		io_uring_prep_fsync(sqe, in->parts.tables[in->cur].fd, 0);
		break;
	case INSTALL_MANIFEST_OPEN:
		snprintf(in->path, sizeof in->path, "%s/MANIFEST.tmp", in->staging);
		io_uring_prep_openat(sqe, AT_FDCWD, in->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
				     0644);
		break;
	case INSTALL_MANIFEST_SYNC:
		io_uring_prep_fsync(sqe, in->parts.manifest_fd, IORING_FSYNC_DATASYNC);
		break;
	case INSTALL_MANIFEST_RENAME:
		snprintf(in->path, sizeof in->path, "%s/MANIFEST.tmp", in->staging);
		snprintf(in->path2, sizeof in->path2, "%s/MANIFEST", in->staging);
		io_uring_prep_renameat(sqe, AT_FDCWD, in->path, AT_FDCWD, in->path2, 0);
		break;
	case INSTALL_ORIGIN_OPEN:
		snprintf(in->path, sizeof in->path, "%s/%s", in->staging, INSTALL_ORIGIN_NAME);
		io_uring_prep_openat(sqe, AT_FDCWD, in->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
				     0644);
		break;
	case INSTALL_ORIGIN_WRITE:
		install_origin_encode(in->origin, &(struct install_origin){
			.index = in->a.origin_index, .term = in->a.origin_term });
		io_uring_prep_write(sqe, in->origin_fd, in->origin, INSTALL_ORIGIN_SIZE, 0);
		break;
	case INSTALL_ORIGIN_SYNC:
		io_uring_prep_fsync(sqe, in->origin_fd, IORING_FSYNC_DATASYNC);
		break;
	case INSTALL_ORIGIN_CLOSE:
		io_uring_prep_close(sqe, in->origin_fd);
		in->origin_fd = -1;
		break;
	case INSTALL_STAGING_OPEN:
		io_uring_prep_openat(sqe, AT_FDCWD, in->staging,
				     O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
		break;
	case INSTALL_STAGING_SYNC:
		io_uring_prep_fsync(sqe, in->parts.dir_fd, 0);
		break;
	case INSTALL_QUARANTINE_MKDIR:
		io_uring_prep_mkdirat(sqe, AT_FDCWD, in->qroot, 0755);
		break;
	case INSTALL_QUARANTINE_MOVE:
		io_uring_prep_renameat(sqe, AT_FDCWD, in->staging, AT_FDCWD, in->qpath,
				       RENAME_NOREPLACE);
		break;
	case INSTALL_QUARANTINE_OPEN:
		io_uring_prep_openat(sqe, AT_FDCWD, in->qroot, O_RDONLY | O_DIRECTORY | O_CLOEXEC,
				     0);
		break;
	case INSTALL_QUARANTINE_SYNC:
		io_uring_prep_fsync(sqe, in->qroot_fd, 0);
		break;
	case INSTALL_PARENT_OPEN:
		io_uring_prep_openat(sqe, AT_FDCWD, in->parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC,
				     0);
		break;
	case INSTALL_EXCHANGE:
		io_uring_prep_renameat(sqe, AT_FDCWD, in->swap_from, AT_FDCWD, in->dir,
				       in->stats.plain_rename ? 0 : RENAME_EXCHANGE);
		break;
	case INSTALL_PARENT_SYNC:
		io_uring_prep_fsync(sqe, in->parent_fd, 0);
		break;
	case INSTALL_PARENT_CLOSE:
		io_uring_prep_close(sqe, in->parent_fd);
		break;
	case INSTALL_OLD_UNLINK:
		if (in->cur < in->nold)
			snprintf(in->path, sizeof in->path, "%s/%06" PRIu64 ".sst", in->staging,
				 in->old_numbers[in->cur]);
		else
			snprintf(in->path, sizeof in->path, "%s/%s", in->staging,
				 in->cur == in->nold ? "MANIFEST" :
				 in->cur == in->nold + 1 ? "MANIFEST.tmp" : INSTALL_ORIGIN_NAME);
		io_uring_prep_unlinkat(sqe, AT_FDCWD, in->path, 0);
		break;
	case INSTALL_OLD_RMDIR:
		io_uring_prep_unlinkat(sqe, AT_FDCWD, in->staging, AT_REMOVEDIR);
		break;
	case INSTALL_CLOSE:
		fdp = next_open_fd(in);
		io_uring_prep_close(sqe, *fdp);
		*fdp = -1;
		break;
	default:
		break;
	}
}

int shard_snapshot_staging_path(char *out, size_t len, const char *dir)
{
	int n = snprintf(out, len, "%s.incoming", dir);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The image, checked and flattened into the table list. */
static int load_image(struct shard_install *in)
{
	struct manifest_replay r = { 0 };
	struct manifest_version *v = &in->parts.manifest;
	size_t n = 0, k = 0;
	int rv;

	rv = manifest_replay(v, in->a.manifest, in->a.manifest_len, &r);
	if (rv == 0 && (r.torn || r.valid_len != in->a.manifest_len || r.records == 0)) {
		rv = RKV_ECORRUPT;
		r.reason = r.records == 0 ? "no record" : r.reason;
	}
	if (rv) {
		snprintf(in->err, sizeof in->err, "snapshot manifest: %s at offset %zu",
			 r.reason ? r.reason : rkv_strerror(rv), r.torn ? r.valid_len : r.offset);
		return rv;
	}
	for (unsigned l = 0; l < MANIFEST_LEVELS; l++)
		n += v->levels[l].count;
	in->parts.tables = calloc(n ? n : 1, sizeof *in->parts.tables);
	in->mfs = calloc(n ? n : 1, sizeof *in->mfs);
	in->named = calloc(n ? n : 1, sizeof *in->named);
	if (!in->parts.tables || !in->mfs || !in->named) {
		snprintf(in->err, sizeof in->err, "snapshot manifest: out of memory");
		return -ENOMEM;
	}
	for (unsigned l = 0; l < MANIFEST_LEVELS; l++) {
		for (size_t i = 0; i < v->levels[l].count; i++, k++) {
			const struct manifest_file *mf = &v->levels[l].files[i];

			in->parts.tables[k].number = mf->number;
			in->parts.tables[k].size = mf->size;
			in->parts.tables[k].fd = -1;
			in->mfs[k] = mf;
			in->named[k] = mf->number;
		}
	}
	in->parts.ntables = n;
	qsort(in->named, n, sizeof *in->named, cmp_u64);
	return 0;
}

/*
 * Whether the replica being replaced is damaged, and its quarantine name:
 * <parent>/quarantine/<name of dir>-<UTC time>-<reason>-at-<snapshot index>.
 * 0, or -ENAMETOOLONG / RKV_EINVAL (a reason with other characters).
 */
static int quarantine_name(struct shard_install *in)
{
	const char *reason = in->a.quarantine, *base = strrchr(in->dir, '/');
	time_t now = time(NULL);
	struct tm tm;
	int n;

	if (!reason && in->a.old && shard_damaged_tables(in->a.old) > 0)
		reason = "damaged-tables";
	else if (!reason && in->a.old && shard_apply_error(in->a.old) == RKV_ECORRUPT)
		reason = "apply-stopped";
	if (!reason)
		return 0;
	for (const char *c = reason; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '-'))
			return RKV_EINVAL;
	base = base ? base + 1 : in->dir;
	gmtime_r(&now, &tm);
	n = snprintf(in->qroot, sizeof in->qroot, "%s/quarantine", in->parent);
	if (n < 0 || (size_t)n >= sizeof in->qroot)
		return -ENAMETOOLONG;
	n = snprintf(in->qpath, sizeof in->qpath,
		     "%s/%s-%04d%02d%02dT%02d%02d%02dZ-%s-at-%" PRIu64, in->qroot, base,
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     reason, in->parts.manifest.flushed_index);
	if (n < 0 || (size_t)n >= sizeof in->qpath)
		return -ENAMETOOLONG;
	in->quarantine = true;
	return 0;
}

/* The names of the old replica's files: its tables (with those a
 * compaction dropped and a reader still holds), unfinished ones. */
static int old_names(struct shard_install *in, const struct shard *old)
{
	size_t n = old->ntables + old->n_unfinished;

	in->old_numbers = calloc(n ? n : 1, sizeof *in->old_numbers);
	if (!in->old_numbers)
		return -ENOMEM;
	for (size_t i = 0; i < old->ntables; i++)
		in->old_numbers[in->nold++] = old->tables[i]->number;
	for (size_t i = 0; i < old->n_unfinished; i++)
		in->old_numbers[in->nold++] = old->unfinished[i];
	return 0;
}

int shard_install_start(struct shard_install **out, const struct shard_install_args *a,
			char *err, size_t errlen)
{
	struct shard_install *in = calloc(1, sizeof *in);
	const char *dir = a->cfg ? a->cfg->dir : a->dir;
	int rv;

	*out = NULL;
	if (!in) {
		snprintf(err, errlen, "snapshot install: out of memory");
		return -ENOMEM;
	}
	in->a = *a;
	in->parent_fd = -1;
	in->qroot_fd = -1;
	in->origin_fd = -1;
	in->parts.dir_fd = -1;
	in->parts.manifest_fd = -1;
	manifest_version_init(&in->parts.manifest);
	if (snprintf(in->dir, sizeof in->dir, "%s", dir) >= (int)sizeof in->dir ||
	    shard_snapshot_staging_path(in->staging, sizeof in->staging, dir) != 0) {
		snprintf(err, errlen, "%s: path too long", dir);
		shard_install_free(in);
		return -ENAMETOOLONG;
	}
	durable_parent_dir(in->dir, in->parent, sizeof in->parent);
	if (a->cfg) {
		in->build = true;
		in->cfg = *a->cfg;
		in->cfg.dir = in->dir;
	}
	in->swap_from = in->staging;
	rv = load_image(in);
	if (rv == 0 && a->old)
		rv = old_names(in, a->old);
	if (rv == 0 && (rv = quarantine_name(in)) != 0)
		snprintf(in->err, sizeof in->err, "%s: quarantine name: %s", dir,
			 rv == RKV_EINVAL ? "a reason with other characters than letters, "
					    "digits and '-'" : strerror(-rv));
	if (rv) {
		snprintf(err, errlen, "%s", in->err[0] ? in->err : "out of memory");
		shard_install_free(in);
		return rv;
	}
	in->step = INSTALL_STRAY_UNLINK;
	*out = in;
	submit(in);
	return 0;
}

bool shard_install_busy(const struct shard_install *in)
{
	return in->inflight || (!in->frozen && in->step != INSTALL_DONE);
}

void shard_install_stop(struct shard_install *in)
{
	in->stop = true;
}

const struct shard_install_stats *shard_install_stats(const struct shard_install *in)
{
	return &in->stats;
}

void shard_install_free(struct shard_install *in)
{
	int *fdp;

	if (!in)
		return;
	/* Only a frozen (test) or failed-at-start install holds fds here. */
	while ((fdp = next_open_fd(in)) != NULL) {
		close(*fdp);
		*fdp = -1;
	}
	for (size_t i = 0; i < in->parts.ntables; i++)
		if (in->parts.tables[i].loaded)
			sstable_meta_free(&in->parts.tables[i].meta);
	manifest_version_destroy(&in->parts.manifest);
	free(in->parts.tables);
	free(in->mfs);
	free(in->named);
	free(in->meta_buf);
	free(in->old_numbers);
	free(in);
}
