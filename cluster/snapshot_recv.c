/*
 * Follower side of snapshot streaming (docs/notes/snapshot.md).
 *
 * Chunks come in order on one connection (the BULK class of the leader's
 * link). Each is checked (the transport already checked its CRC32C and
 * that the name is a plain one): the name must be a table ("<digits>.sst")
 * or "MANIFEST", offsets contiguous from 0 within a file, a file at most
 * SNAP_MAX_FILE bytes, the manifest at most SNAP_MAX_MANIFEST, a stream at
 * most SNAP_MAX_FILES files. Anything else drops the stream; the leader
 * starts over after its timeout.
 *
 * Tables go into the staging directory `shard-N.incoming` through the
 * core's ring, one operation in flight at a time, in order: open (create),
 * writes, fsync, close, next file. The manifest image stays in memory. At
 * the last chunk, once every table is durable, the replica stops applying
 * and driving background slices, waits for the shard to have nothing in
 * flight, then installs (shard_snapshot_install: the staged MANIFEST, one
 * RENAME_EXCHANGE with the shard directory, the parent fsync'ed) and opens
 * the shard again. Those last steps (swap, reopen: a few fsyncs and the
 * reads of the tables' footers) block the core; see "Not done" in the notes.
 * Raft learns of it when the leader's SNAPSHOT message arrives next
 * (replica_accept lets it through once the shard has the state).
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

#define SNAP_MAX_FILE (16ull << 30)
#define SNAP_MAX_MANIFEST (64u << 20)
#define SNAP_MAX_FILES 100000u
#define SNAP_MAX_QUEUED (64u << 20) /* chunk bytes waiting for the disk */

enum op_kind { OP_OPEN, OP_WRITE, OP_SYNC, OP_CLOSE, OP_INSTALL };

struct snap_recv_op {
	struct snap_recv_op *next;
	enum op_kind kind;
	uint64_t offset;
	uint32_t len, done;
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

static void op_free_all(struct snap_recv *rc)
{
	while (rc->head) {
		struct snap_recv_op *op = rc->head;

		rc->head = op->next;
		free(op);
	}
	rc->tail = NULL;
	rc->queued_bytes = 0;
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
		if (rc->fd >= 0) {
			close(rc->fd); /* blocking but cheap: an aborted stream */
			rc->fd = -1;
		}
	}
	rc->state = SNAP_RECV_IDLE;
	rc->manifest_len = 0;
	rc->file[0] = '\0';
	rc->offset = 0;
	rc->nfiles = 0;
}

static void op_submit(struct replica *rep);

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
		return;
	}
	if (res < 0 || (op->kind == OP_WRITE && res == 0)) {
		char why[PEER_MSG_MAX_FILE_NAME + 128];

		snprintf(why, sizeof why, "%s of %s: %s",
			 op->kind == OP_OPEN ? "create" : op->kind == OP_WRITE ? "write" :
			 op->kind == OP_SYNC ? "fsync" : "close", op->name,
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
	free(op);
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
	case OP_OPEN:
		/* rc->path lives until the completion: one op in flight. */
		snprintf(rc->path, sizeof rc->path, "%s/%s", rc->staging, op->name);
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
	struct snap_recv_op *op = malloc(sizeof *op + len);

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

static int stream_begin(struct replica *rep, uint64_t from, const struct peer_msg_chunk *ch)
{
	struct snap_recv *rc = &rep->recv;
	char err[256];
	int rv;

	if (rc->op_inflight || rc->head)
		return RKV_EAGAIN; /* the last stream's ops still drain */
	/* Blocking (a mkdir, and unlinks of a dropped stream's files): see
	 * "Not done" in docs/notes/snapshot.md. */
	rv = shard_snapshot_stage(rep->dir, rc->staging, sizeof rc->staging, err, sizeof err);
	if (rv) {
		log_warn("replica %u: snapshot staging: %s", rep->id, err);
		return rv;
	}
	rc->state = SNAP_RECV_RECEIVING;
	rc->from = from;
	rc->index = ch->index;
	rc->term = ch->term;
	rc->file[0] = '\0';
	rc->offset = 0;
	rc->nfiles = 0;
	rc->manifest_len = 0;
	log_info("replica %u: receiving a snapshot at %" PRIu64 " from node %" PRIu64, rep->id,
		 ch->index, from);
	return 0;
}

void snapshot_recv_chunk(struct replica *rep, uint64_t from, const struct peer_msg_chunk *ch)
{
	struct snap_recv *rc = &rep->recv;
	bool same_stream, same_file;
	const char *why = NULL;
	int rv;

	if (rep->core->stopping || rc->state == SNAP_RECV_INSTALLING) {
		rep->snap_rejected++;
		return;
	}
	same_stream = rc->state == SNAP_RECV_RECEIVING && rc->from == from &&
		      rc->index == ch->index && rc->term == ch->term;
	if (!same_stream) {
		/* A new stream starts at offset 0 of its first file; anything
		 * else is the tail of one we dropped. Only from the leader this
		 * replica follows (never while it leads: its proposals wait on
		 * the shard's answers), and only ahead of what it applied
		 * (or at or below it while repairing: replica_repair.c). */
		if (ch->offset != 0 || !replica_repair_stream_ok(rep, ch->index) ||
		    raft_role(rep->raft) == RAFT_LEADER || from != raft_leader(rep->raft)) {
			rep->snap_rejected++;
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
	if (!same_file) {
		rv = file_end(rep);
		memcpy(rc->file, ch->file.data, ch->file.len);
		rc->file[ch->file.len] = '\0';
		rc->offset = 0;
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
	if (rv == 0 && ch->last)
		rv = op_queue(rep, OP_INSTALL, NULL, 0, NULL, 0);
	if (rv != 0)
		recv_reset(rep, rkv_strerror(rv));
}

/* The blocking part: swap the staged replica in and open it. */
static void install(struct replica *rep)
{
	struct snap_recv *rc = &rep->recv;
	struct cluster_core *c = rep->core;
	struct shard *fresh = NULL;
	uint64_t index = 0;
	char err[512];
	int rv;

	shard_close(rep->shard);
	rep->shard = NULL;
	rv = shard_snapshot_install(rep->dir, rc->manifest, rc->manifest_len, &index, err,
				    sizeof err);
	if (rv != 0)
		log_warn("replica %u: snapshot at %" PRIu64 " not installed: %s", rep->id,
			 rc->index, err);
	/* Installed or not, `dir` is a whole replica: open it. */
	rv = shard_open(&fresh, &rep->shard_cfg, &c->r->io, err, sizeof err);
	if (rv != 0) {
		/* Nothing to serve from: this replica is out until restart. */
		log_error("replica %u: reopening the shard after a snapshot failed: %s; "
			  "restart the node", rep->id, err);
		panic("replica %u: no shard after a snapshot install", rep->id);
	}
	rep->shard = fresh;
	if (c->swap_fn)
		c->swap_fn(c->swap_arg, rep->id, fresh);
	if (index) {
		rep->snap_installed++;
		log_info("replica %u: snapshot installed, the shard is at index %" PRIu64,
			 rep->id, shard_applied_index(fresh));
		replica_repair_installed(rep, index);
	}
}

void snapshot_recv_service(struct replica *rep)
{
	struct snap_recv *rc = &rep->recv;

	if (rc->state != SNAP_RECV_INSTALLING)
		return;
	/* No pin of the old shard may survive it (a stream this replica sent
	 * while it led), and nothing of it in flight. */
	if (!snapshot_send_stop(rep) || !shard_snapshot_quiet(rep->shard)) {
		replica_mark_dirty(rep); /* look again next pass */
		return;
	}
	install(rep);
	rc->state = SNAP_RECV_IDLE;
	rc->manifest_len = 0;
	rep->installing = false;
	/* Apply resumes from the shard's new state: Raft's entries at or below
	 * it are skipped by the shard. */
	rep->apply_blocked = false;
	rep->apply_stopped = false;
	replica_mark_dirty(rep);
}

bool snapshot_recv_stop(struct replica *rep)
{
	struct snap_recv *rc = &rep->recv;

	if (rc->state == SNAP_RECV_RECEIVING)
		recv_reset(rep, "stopping");
	if (rc->state == SNAP_RECV_INSTALLING) {
		/* Not swapped yet: the staged files are garbage. */
		rc->state = SNAP_RECV_IDLE;
		rep->installing = false;
	}
	return !rc->op_inflight;
}

void snapshot_recv_free(struct replica *rep)
{
	struct snap_recv *rc = &rep->recv;

	op_free_all(rc);
	if (rc->fd >= 0)
		close(rc->fd);
	rc->fd = -1;
	free(rc->manifest);
	rc->manifest = NULL;
}
