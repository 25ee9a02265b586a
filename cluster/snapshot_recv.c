/*
 * Follower side of snapshot streaming (docs/cluster/snapshots.md).
 *
 * Chunks come in order on one connection (the BULK class of the leader's
 * link). Each is checked (the transport already checked its CRC32C and
 * that the name is a plain one): the name must be a table ("<digits>.sst")
 * or "MANIFEST", offsets contiguous from 0 within a file, a file at most
 * SNAP_MAX_FILE bytes, the manifest at most SNAP_MAX_MANIFEST, a stream at
 * most SNAP_MAX_FILES files. Anything else drops the stream; the leader
 * starts over after its timeout.
 *
 * The staging directory `shard-N.incoming` is made through the core's
 * ring at the start of a stream (unlinkat of the files a dropped stream
 * left, rmdir, mkdirat), and tables go into it the same way, one
 * operation in flight at a time, in order: open (create), writes, fsync,
 * close, next file. The manifest image stays in memory. At the last
 * chunk, once every table is durable, the replica stops applying and
 * driving background slices, waits for the shard to have nothing in
 * flight, then installs on the ring (shard/shard_install.c: checks, the
 * staged MANIFEST, one RENAME_EXCHANGE with the shard directory, the
 * parent fsync'ed, the new shard built from the files it opened) while
 * the old shard goes on serving reads; the new shard replaces it from the
 * install's completion, and the old one is closed once nothing of it is
 * in flight. Raft learns of it when the leader's SNAPSHOT message arrives
 * next (replica_accept lets it through once the shard has the state).
 */
#include "cluster/replica_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "shard/install_origin.h"

#define SNAP_MAX_FILE (16ull << 30)
#define SNAP_MAX_MANIFEST (64u << 20)
#define SNAP_MAX_FILES 100000u
#define SNAP_MAX_QUEUED (64u << 20) /* chunk bytes waiting for the disk */

enum op_kind { OP_UNLINK, OP_RMDIR, OP_MKDIR, OP_OPEN, OP_WRITE, OP_SYNC, OP_CLOSE, OP_INSTALL };

/* A queued operation, its chunk's bytes after it. Done ones are kept on
 * a spare list and reused for the next (a stream allocates its peak
 * queue, not one per chunk); the spares go when the stream ends. */
struct snap_recv_op {
	struct snap_recv_op *next;
	enum op_kind kind;
	uint64_t offset;
	uint32_t len, done;
	uint32_t cap;                 /* room for data */
	char name[PEER_MSG_MAX_FILE_NAME + 1];
	uint8_t data[];
};

static bool is_table_name(const uint8_t *p, uint32_t len)
{
	if (len < 5 || len > 24 || memcmp(p + len - 4, ".sst", 4) != 0)
		return false;
	for (uint32_t i = 0; i < len - 4; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

static bool is_manifest(const struct peer_msg_chunk *ch)
{
	return ch->file.len == 8 && memcmp(ch->file.data, "MANIFEST", 8) == 0;
}

int snapshot_chunk_check(const struct peer_msg_chunk *ch, bool same_file, uint64_t expected,
			 const char **why)
{
	bool manifest = is_manifest(ch);

	if (!manifest && !is_table_name(ch->file.data, ch->file.len)) {
		*why = "not a table or manifest name";
		return RKV_EINVAL;
	}
	if (ch->last && !manifest) {
		*why = "the last chunk is not the manifest's";
		return RKV_EINVAL;
	}
	if (ch->index == 0 || ch->term == 0) {
		*why = "no index or term";
		return RKV_EINVAL;
	}
	if ((same_file ? expected : 0) != ch->offset) {
		*why = "offset not contiguous";
		return RKV_EINVAL;
	}
	if (ch->data.len > (manifest ? SNAP_MAX_MANIFEST : SNAP_MAX_FILE) ||
	    ch->offset > (manifest ? SNAP_MAX_MANIFEST : SNAP_MAX_FILE) - ch->data.len) {
		*why = "file too large";
		return RKV_ETOOLARGE;
	}
	return 0;
}

static void op_put(struct snap_recv *rc, struct snap_recv_op *op)
{
	op->next = rc->spare;
	rc->spare = op;
}

/* The stream is over: its spare operations go. */
static void spare_drop(struct snap_recv *rc)
{
	while (rc->spare) {
		struct snap_recv_op *op = rc->spare;

		rc->spare = op->next;
		free(op);
	}
}

static void op_free_all(struct snap_recv *rc)
{
	while (rc->head) {
		struct snap_recv_op *op = rc->head;

		rc->head = op->next;
		op_put(rc, op);
	}
	rc->tail = NULL;
	rc->queued_bytes = 0;
}

/* A spare with room for `len` bytes, or a new one. */
static struct snap_recv_op *op_get(struct snap_recv *rc, uint32_t len)
{
	struct snap_recv_op **p, *op;

	for (p = &rc->spare; *p; p = &(*p)->next) {
		if ((*p)->cap >= len) {
			op = *p;
			*p = op->next;
			return op;
		}
	}
	op = malloc(sizeof *op + len);
	if (op)
		op->cap = len;
	return op;
}

/* Drops the stream (the leader starts over). Ring ops in flight finish
 * on their own; the staged files are removed by the next stage. */
static void recv_reset(struct replica *rep, const char *why)
{
	struct snap_recv *rc = &rep->recv;

	if (rc->state != SNAP_RECV_IDLE && why)
		log_warn("replica %u: snapshot at %" PRIu64 " from node %" PRIu64 " dropped: %s",
			 rep->id, rc->index, rc->from, why);
	if (rc->op_inflight) {
		/* Keep the queue's head (in flight); drop the rest. */
		struct snap_recv_op *keep = rc->head;

		rc->head = keep->next;
		op_free_all(rc);
		keep->next = NULL;
		rc->head = rc->tail = keep;
		rc->failed = true;
	} else {
		op_free_all(rc);
		spare_drop(rc);
		if (rc->fd >= 0) {
			close(rc->fd); /* blocking but cheap: an aborted stream */
			rc->fd = -1;
		}
	}
	/* A stream dropped for a reason of ours (a check, the disk) is not
	 * asked for again by its tail: the leader's timeout, or Raft's next
	 * message, paces that. A gap asked before calling here. */
	if (rc->state == SNAP_RECV_RECEIVING)
		rc->nacked = rc->stream;
	rc->complete = false;
	rc->state = SNAP_RECV_IDLE;
	rc->manifest_len = 0;
	rc->file[0] = '\0';
	rc->offset = 0;
	rc->nfiles = 0;
}

static void op_submit(struct replica *rep);

/*
 * The stage's results that are not errors: a leftover file or directory
 * already gone; a leftover directory holding files no stream of ours
 * wrote (a crash's, an operator's): the blocking stage empties it then
 * (rare, logged), and the mkdir that follows finds it made.
 */
static void stage_result(struct replica *rep, const struct snap_recv_op *op, int *res)
{
	struct snap_recv *rc = &rep->recv;
	char err[256], staging[PATH_MAX];

	if ((op->kind == OP_UNLINK || op->kind == OP_RMDIR) && *res == -ENOENT)
		*res = 0;
	if (op->kind == OP_RMDIR && *res == -ENOTEMPTY) {
		log_warn("replica %u: %s holds files no snapshot stream of this process "
			 "wrote: removing them, blocking", rep->id, rc->staging);
		*res = shard_snapshot_stage(rep->dir, staging, sizeof staging, err, sizeof err);
		if (*res)
			log_warn("replica %u: snapshot staging: %s", rep->id, err);
		rc->stage_fallback = *res == 0;
	}
	if (op->kind == OP_MKDIR && *res == -EEXIST && rc->stage_fallback)
		*res = 0;
	if (op->kind == OP_MKDIR)
		rc->stage_fallback = false;
}

static void op_done(struct io_op *iop, int res, unsigned flags)
{
	struct replica *rep = iop->data;
	struct snap_recv *rc = &rep->recv;
	struct snap_recv_op *op = rc->head;

	(void)flags;
	rc->op_inflight = false;
	if (rc->failed) {
		/* The stream was dropped while this was in flight. */
		if (op->kind == OP_OPEN && res >= 0)
			close(res);
		else if (op->kind != OP_CLOSE && rc->fd >= 0)
			close(rc->fd);
		rc->fd = -1;
		rc->failed = false;
		op_free_all(rc);
		spare_drop(rc);
		return;
	}
	stage_result(rep, op, &res);
	if (res < 0 || (op->kind == OP_WRITE && res == 0)) {
		static const char *const what[] = {
			[OP_UNLINK] = "unlink", [OP_RMDIR] = "rmdir", [OP_MKDIR] = "mkdir",
			[OP_OPEN] = "create", [OP_WRITE] = "write", [OP_SYNC] = "fsync",
			[OP_CLOSE] = "close", [OP_INSTALL] = "install",
		};
		char why[PEER_MSG_MAX_FILE_NAME + 128];

		snprintf(why, sizeof why, "%s of %s: %s", what[op->kind],
			 op->name[0] ? op->name : "the staging directory",
			 strerror(res < 0 ? -res : EIO));
		if (op->kind == OP_CLOSE)
			rc->fd = -1;
		recv_reset(rep, why);
		return;
	}
	switch (op->kind) {
	case OP_OPEN:
		rc->fd = res;
		break;
	case OP_WRITE:
		op->done += (uint32_t)res;
		if (op->done < op->len) {
			op_submit(rep); /* short write: the rest */
			return;
		}
		rc->queued_bytes -= op->len;
		break;
	case OP_CLOSE:
		rc->fd = -1;
		break;
	default:
		break;
	}
	rc->head = op->next;
	if (!rc->head)
		rc->tail = NULL;
	op_put(rc, op);
	op_submit(rep);
}

static void op_submit(struct replica *rep)
{
	struct snap_recv *rc = &rep->recv;
	struct snap_recv_op *op = rc->head;
	struct io_ring *io = &rep->core->r->io;
	struct io_uring_sqe *sqe;

	if (!op || rc->op_inflight)
		return;
	if (op->kind == OP_INSTALL) {
		rc->head = rc->tail = NULL;
		free(op);
		spare_drop(rc);
		rc->state = SNAP_RECV_INSTALLING;
		rep->installing = true;
		replica_mark_dirty(rep);
		return;
	}
	rc->op.done = op_done;
	rc->op.data = rep;
	sqe = io_ring_get_sqe(io);
	io_op_attach(sqe, &rc->op);
	switch (op->kind) {
	case OP_UNLINK:
		snprintf(rc->path, rc->path_cap, "%s/%s", rc->staging, op->name);
		io_uring_prep_unlinkat(sqe, AT_FDCWD, rc->path, 0);
		break;
	case OP_RMDIR:
		io_uring_prep_unlinkat(sqe, AT_FDCWD, rc->staging, AT_REMOVEDIR);
		break;
	case OP_MKDIR:
		io_uring_prep_mkdirat(sqe, AT_FDCWD, rc->staging, 0755);
		break;
	case OP_OPEN:
		/* rc->path lives until the completion: one op in flight. */
		snprintf(rc->path, rc->path_cap, "%s/%s", rc->staging, op->name);
		io_uring_prep_openat(sqe, AT_FDCWD, rc->path,
				     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		break;
	case OP_WRITE:
		io_uring_prep_write(sqe, rc->fd, op->data + op->done, op->len - op->done,
				    op->offset + op->done);
		break;
	case OP_SYNC:
		io_uring_prep_fsync(sqe, rc->fd, 0);
		break;
	case OP_CLOSE:
		io_uring_prep_close(sqe, rc->fd);
		break;
	default:
		break;
	}
	rc->op_inflight = true;
}

static int op_queue(struct replica *rep, enum op_kind kind, const char *name, uint64_t offset,
		    const void *data, uint32_t len)
{
	struct snap_recv *rc = &rep->recv;
	struct snap_recv_op *op = op_get(rc, len);

	if (!op)
		return -ENOMEM;
	op->next = NULL;
	op->kind = kind;
	op->offset = offset;
	op->len = len;
	op->done = 0;
	snprintf(op->name, sizeof op->name, "%s", name ? name : "");
	if (len)
		memcpy(op->data, data, len);
	rc->queued_bytes += kind == OP_WRITE ? len : 0;
	if (rc->tail)
		rc->tail->next = op;
	else
		rc->head = op;
	rc->tail = op;
	op_submit(rep);
	return 0;
}

/* Closes the table being received: fsync, then close. */
static int file_end(struct replica *rep)
{
	struct snap_recv *rc = &rep->recv;
	int rv = 0;

	if (rc->file[0] && strcmp(rc->file, "MANIFEST") != 0) {
		rv = op_queue(rep, OP_SYNC, rc->file, 0, NULL, 0);
		if (rv == 0)
			rv = op_queue(rep, OP_CLOSE, rc->file, 0, NULL, 0);
	}
	return rv;
}

/* Remembers a table created in the staging directory. */
static int name_add(struct snap_recv *rc, const char *name)
{
	if (rc->nnames == rc->names_cap) {
		size_t cap = rc->names_cap ? rc->names_cap * 2 : 64;
		char (*grown)[SHARD_FILE_NAME_MAX] = realloc(rc->names, cap * sizeof *grown);

		if (!grown)
			return -ENOMEM;
		rc->names = grown;
		rc->names_cap = cap;
	}
	/* A table name, checked: at most 24 bytes. */
	if (strlen(name) >= SHARD_FILE_NAME_MAX)
		return RKV_EINVAL;
	memcpy(rc->names[rc->nnames++], name, strlen(name) + 1);
	return 0;
}

/* The staging directory's path and room for one of its files' (a replica
 * that never receives a snapshot holds neither). */
static int staging_paths(struct replica *rep)
{
	struct snap_recv *rc = &rep->recv;
	size_t len = strlen(rep->dir) + sizeof ".incoming";

	if (rc->staging)
		return 0;
	rc->path_cap = len + 1 + PEER_MSG_MAX_FILE_NAME + 1;
	rc->staging = malloc(len + rc->path_cap);
	if (!rc->staging)
		return -ENOMEM;
	rc->path = rc->staging + len;
	return shard_snapshot_staging_path(rc->staging, len, rep->dir);
}

/*
 * The staging directory, empty, through the ring: the files a dropped
 * stream or a failed install left (the tables we created, the MANIFEST
 * an install wrote), the directory, then a new one. Chunks' ops queue
 * behind.
 */
static int stage(struct replica *rep)
{
	struct snap_recv *rc = &rep->recv;
	int rv = staging_paths(rep);

	for (size_t i = 0; rv == 0 && i < rc->nnames; i++)
		rv = op_queue(rep, OP_UNLINK, rc->names[i], 0, NULL, 0);
	if (rv == 0)
		rv = op_queue(rep, OP_UNLINK, "MANIFEST", 0, NULL, 0);
	if (rv == 0)
		rv = op_queue(rep, OP_UNLINK, "MANIFEST.tmp", 0, NULL, 0);
	if (rv == 0)
		rv = op_queue(rep, OP_UNLINK, INSTALL_ORIGIN_NAME, 0, NULL, 0);
	if (rv == 0)
		rv = op_queue(rep, OP_RMDIR, "", 0, NULL, 0);
	if (rv == 0)
		rv = op_queue(rep, OP_MKDIR, "", 0, NULL, 0);
	if (rv == 0)
		rc->nnames = 0;
	return rv;
}

static int stream_begin(struct replica *rep, uint64_t from, const struct peer_msg_chunk *ch)
{
	struct snap_recv *rc = &rep->recv;
	int rv;

	if (rc->op_inflight || rc->head || rc->install)
		return RKV_EAGAIN; /* the last stream's ops or install still drain */
	rv = stage(rep);
	if (rv) {
		log_warn("replica %u: snapshot staging: %s", rep->id, rkv_strerror(rv));
		recv_reset(rep, NULL); /* keeps an unlink in flight until it completes */
		return rv;
	}
	rc->state = SNAP_RECV_RECEIVING;
	rc->from = from;
	rc->index = ch->index;
	rc->term = ch->term;
	rc->stream = ch->stream;
	rc->next_seq = 0;
	rc->complete = false;
	rc->file[0] = '\0';
	rc->offset = 0;
	rc->nfiles = 0;
	rc->manifest_len = 0;
	log_info("replica %u: receiving a snapshot at %" PRIu64 " from node %" PRIu64, rep->id,
		 ch->index, from);
	return 0;
}

void snapshot_recv_nack(struct replica *rep, uint64_t to, uint64_t stream)
{
	struct snap_recv *rc = &rep->recv;
	/* The request's generation: this process, and the latest stream
	 * of this leader it saw (the leader tells a request sent before we
	 * could see its stream under way from one about that stream). */
	struct peer_msg_snapshot_request q = {
		.group = rep->id, .applied = shard_applied_index(rep->shard),
		.restart_stream = stream, .boot_id = rep->core->node->boot_id,
		.stream_seen = rc->seen_from == to ? rc->seen : 0,
	};
	struct peer_msg_buf b;
	int rv;

	if (stream == 0 || stream == rc->nacked)
		return; /* an old leader's stream, or asked already */
	if (replica_ident_node(raft_leader(rep->raft)) != to)
		return; /* only the leader we follow streams to us */
	peer_msg_buf_init(&b);
	rv = peer_msg_encode_snapshot_request(&b, &q);
	if (rv == 0)
		rv = cluster_core_send_control(rep->core, to, b.data + PEER_MSG_HEADER_SIZE,
					       b.len - PEER_MSG_HEADER_SIZE);
	peer_msg_buf_free(&b);
	if (rv != 0) {
		/* Not remembered: the next chunk of the broken stream asks
		 * again, and the leader's timeout remains the backstop. */
		log_every(LOG_WARN, 10000, "replica %u: cannot ask node %" PRIu64 " to restart "
			  "its snapshot stream: %s", rep->id, to, rkv_strerror(rv));
		return;
	}
	if (stream != SNAPSHOT_STREAM_ANY)
		rc->nacked = stream; /* ANY: at most once per Raft message */
	rep->snap_nacked++;
	log_info("replica %u: a chunk of the snapshot stream from node %" PRIu64 " is missing: "
		 "asked it to start over", rep->id, to);
}

void snapshot_recv_waiting(struct replica *rep, uint64_t from)
{
	struct snap_recv *rc = &rep->recv;
	uint64_t stream = rc->stream;

	if (rc->state == SNAP_RECV_RECEIVING && rc->from == from) {
		if (rc->complete)
			return; /* every chunk is here; the disk is behind */
		snapshot_recv_nack(rep, from, stream);
		recv_reset(rep, "its last chunks are missing");
	} else if (rc->state == SNAP_RECV_IDLE) {
		snapshot_recv_nack(rep, from, SNAPSHOT_STREAM_ANY);
	}
}

void snapshot_recv_chunk(struct replica *rep, uint64_t from, const struct peer_msg_chunk *ch)
{
	struct snap_recv *rc = &rep->recv;
	bool same_stream, same_file;
	const char *why = NULL;
	int rv;

	if (rc->seen_from != from || ch->stream > rc->seen) {
		rc->seen_from = from;
		rc->seen = ch->stream;
	}
	if (rep->core->stopping || rc->state == SNAP_RECV_INSTALLING) {
		rep->snap_rejected++;
		return;
	}
	same_stream = rc->state == SNAP_RECV_RECEIVING && rc->from == from &&
		      rc->index == ch->index && rc->term == ch->term && rc->stream == ch->stream;
	if (!same_stream) {
		/* A new stream starts at offset 0 of its first file; anything
		 * else is the tail of one we dropped. Only from the leader this
		 * replica follows (never while it leads: its proposals wait on
		 * the shard's answers), and only ahead of what it applied
		 * (or at or below it while repairing: replica_repair.c). */
		if (raft_role(rep->raft) == RAFT_LEADER ||
		    from != replica_ident_node(raft_leader(rep->raft)) ||
		    !replica_repair_stream_ok(rep, ch->index)) {
			rep->snap_rejected++;
			return;
		}
		if (ch->offset != 0 || ch->seq != 0) {
			/* The rest of a stream we dropped, or one whose first
			 * chunk went missing: the leader starts over if it is
			 * still sending that one -- once we could take it (a
			 * last stream's ring ops drain first). */
			rep->snap_rejected++;
			if (!rc->op_inflight && !rc->head && !rc->install)
				snapshot_recv_nack(rep, from, ch->stream);
			return;
		}
		if (rc->state != SNAP_RECV_IDLE)
			recv_reset(rep, "a new stream started");
		if (stream_begin(rep, from, ch) != 0) {
			rep->snap_rejected++;
			return;
		}
	}
	same_file = rc->file[0] && ch->file.len == strlen(rc->file) &&
		    memcmp(ch->file.data, rc->file, ch->file.len) == 0;
	if (rc->stream != 0 && ch->seq != rc->next_seq) {
		/* Lost on the way (the transport drops the oldest bulk frames
		 * past its bound, or a connection broke): a gap the offsets
		 * cannot show when a file's last chunk went missing. */
		rep->snap_rejected++;
		snapshot_recv_nack(rep, from, ch->stream);
		recv_reset(rep, "a chunk is missing");
		return;
	}
	rv = snapshot_chunk_check(ch, same_file, rc->offset, &why);
	if (rv == 0 && !same_file && ++rc->nfiles > SNAP_MAX_FILES) {
		why = "too many files";
		rv = RKV_ETOOLARGE;
	}
	if (rv == 0 && rc->queued_bytes + ch->data.len > SNAP_MAX_QUEUED) {
		why = "the disk is behind the stream";
		rv = RKV_EAGAIN;
	}
	if (rv != 0) {
		rep->snap_rejected++;
		recv_reset(rep, why);
		return;
	}
	rep->snap_recv_bytes += ch->data.len;
	rc->next_seq++;
	if (!same_file) {
		rv = file_end(rep);
		memcpy(rc->file, ch->file.data, ch->file.len);
		rc->file[ch->file.len] = '\0';
		rc->offset = 0;
		if (rv == 0 && !is_manifest(ch))
			rv = name_add(rc, rc->file);
		if (rv == 0 && !is_manifest(ch))
			rv = op_queue(rep, OP_OPEN, rc->file, 0, NULL, 0);
	}
	if (rv == 0 && is_manifest(ch)) {
		size_t need = rc->manifest_len + ch->data.len;

		if (need > rc->manifest_cap) {
			size_t cap = rc->manifest_cap ? rc->manifest_cap : 4096;
			uint8_t *p;

			while (cap < need)
				cap *= 2;
			p = realloc(rc->manifest, cap);
			if (!p) {
				rv = -ENOMEM;
			} else {
				rc->manifest = p;
				rc->manifest_cap = cap;
			}
		}
		if (rv == 0 && ch->data.len) {
			memcpy(rc->manifest + rc->manifest_len, ch->data.data, ch->data.len);
			rc->manifest_len = need;
		}
	} else if (rv == 0 && ch->data.len) {
		rv = op_queue(rep, OP_WRITE, rc->file, ch->offset, ch->data.data, ch->data.len);
	}
	if (rv == 0)
		rc->offset += ch->data.len;
	if (rv == 0 && ch->last) {
		rv = op_queue(rep, OP_INSTALL, NULL, 0, NULL, 0);
		rc->complete = rv == 0;
	}
	if (rv != 0)
		recv_reset(rep, rkv_strerror(rv));
}

static void retire_closed(struct io_op *op, int res, unsigned flags)
{
	struct replica *rep = op->data;

	(void)res;
	(void)flags;
	rep->recv.retire_closes--;
}

/* Closes the replaced shard once nothing of it is in flight (a read the
 * server started before the swap): its files through the ring, then its
 * memory. */
static void retire(struct replica *rep)
{
	struct snap_recv *rc = &rep->recv;

	if (rc->retired && shard_snapshot_quiet(rc->retired)) {
		rc->retire_op.done = retire_closed;
		rc->retire_op.data = rep;
		rc->retire_closes += shard_close_files_async(rc->retired, &rc->retire_op);
		shard_close(rc->retired);
		rc->retired = NULL;
	}
}

/* The install's outcome, from a ring completion. */
static void installed(void *arg, const struct shard_install_result *res)
{
	struct replica *rep = arg;
	struct snap_recv *rc = &rep->recv;
	struct cluster_core *c = rep->core;
	struct shard *fresh = res->fresh;
	char err[512];

	if (res->rv != 0)
		log_warn("replica %u: snapshot at %" PRIu64 " %s: %s", rep->id, rc->index,
			 res->swapped ? "swapped in, with an error" : "not installed",
			 res->err ? res->err : "");
	if (res->swapped && !fresh) {
		/* `dir` is the new replica but the shard could not be built
		 * from what the install opened: open it the blocking way. */
		if (shard_open(&fresh, &rep->shard_cfg, &c->r->io, err, sizeof err) != 0) {
			log_error("replica %u: reopening the shard after a snapshot failed: %s; "
				  "restart the node", rep->id, err);
			panic("replica %u: no shard after a snapshot install", rep->id);
		}
	}
	if (fresh) {
		/* The old shard may still have reads in flight: it is closed
		 * once quiet; the server serves from the new one from now. */
		rc->retired = rep->shard;
		rep->shard = fresh;
		if (c->swap_fn)
			c->swap_fn(c->swap_arg, rep->id, fresh);
		retire(rep);
		/* Its tables are the shard's now, not leftovers to remove. */
		rc->nnames = 0;
	}
	if (res->swapped && res->rv == 0) {
		rep->snap_installed++;
		log_info("replica %u: snapshot installed, the shard is at index %" PRIu64,
			 rep->id, shard_applied_index(fresh));
		replica_repair_installed(rep, shard_applied_index(fresh));
		/* Its INSTALLED record goes once Raft's LOG_RESET is durable. */
		replica_origin_installed(rep, rc->index);
	}
	rc->state = SNAP_RECV_IDLE;
	rc->manifest_len = 0;
	rep->installing = false;
	/* Apply resumes from the shard's state (new, or the old one after a
	 * failure): Raft's entries at or below it are skipped by the shard. */
	rep->apply_blocked = false;
	rep->apply_stopped = false;
	replica_mark_dirty(rep);
}

/* The install ended (the old replica removed): nothing of it in flight. */
static void install_finished(void *arg)
{
	struct replica *rep = arg;

	shard_install_free(rep->recv.install);
	rep->recv.install = NULL;
	replica_mark_dirty(rep);
}

void snapshot_recv_service(struct replica *rep)
{
	struct snap_recv *rc = &rep->recv;
	struct shard_install_args a = {
		.cfg = &rep->shard_cfg, .io = &rep->core->r->io,
		.manifest = rc->manifest, .manifest_len = rc->manifest_len,
		.staged = (const char (*)[SHARD_FILE_NAME_MAX])rc->names, .nstaged = rc->nnames,
		.old = rep->shard, .installed = installed, .finished = install_finished,
		.arg = rep, .origin_index = rc->index, .origin_term = rc->term,
		.step_hook = rep->core->node->cfg.install_step_hook,
	};
	char err[512];
	int rv;

	if (rc->retired) {
		retire(rep);
		if (rc->retired)
			replica_mark_dirty(rep); /* look again next pass */
	}
	if (rc->state != SNAP_RECV_INSTALLING || rc->install)
		return;
	/* No pin of the old shard may survive it (a stream this replica sent
	 * while it led), nothing of it in flight, nothing waiting to apply. */
	if (!snapshot_send_stop(rep) || !shard_snapshot_quiet(rep->shard) || rc->retired) {
		replica_mark_dirty(rep); /* look again next pass */
		return;
	}
	/* A repair may install below what this replica applied: its stale
	 * reads wait until it applied that far again (replica_stale_ok). */
	if (shard_applied_index(rep->shard) > rep->stale_floor)
		rep->stale_floor = shard_applied_index(rep->shard);
	rv = shard_install_start(&rc->install, &a, err, sizeof err);
	if (rv != 0) {
		/* Nothing done: the old shard goes on. */
		struct shard_install_result res = { .rv = rv, .err = err };

		installed(rep, &res);
	}
}

bool snapshot_recv_stop(struct replica *rep)
{
	struct snap_recv *rc = &rep->recv;

	if (rc->state == SNAP_RECV_RECEIVING)
		recv_reset(rep, "stopping");
	if (rc->install) {
		/* Fails at its next step unless past the exchange. */
		shard_install_stop(rc->install);
	} else if (rc->state == SNAP_RECV_INSTALLING) {
		/* Not started: the staged files are garbage. */
		rc->state = SNAP_RECV_IDLE;
		rep->installing = false;
	}
	retire(rep);
	return !rc->op_inflight && !rc->install && !rc->retired && rc->retire_closes == 0;
}

void snapshot_recv_free(struct replica *rep)
{
	struct snap_recv *rc = &rep->recv;

	op_free_all(rc);
	spare_drop(rc);
	if (rc->fd >= 0)
		close(rc->fd);
	rc->fd = -1;
	free(rc->manifest);
	rc->manifest = NULL;
	free(rc->names);
	rc->names = NULL;
	rc->nnames = rc->names_cap = 0;
	free(rc->staging);
	rc->staging = rc->path = NULL;
	/* After the ring's operations were cancelled and reaped; one still
	 * in flight (a stop that timed out) is left to the process exit
	 * rather than freed under the kernel. */
	if (rc->install && !shard_install_busy(rc->install))
		shard_install_free(rc->install);
	rc->install = NULL;
	shard_close(rc->retired);
	rc->retired = NULL;
}
