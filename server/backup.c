/*
 * Native backup requests: see server/backup.h.
 *
 * Invariant: the request block belongs to the origin core; while it is on
 * the owning core only that core touches it (the SPSC ring's release and
 * acquire order the hand-overs), and only the origin frees it.
 */
#include "server/backup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/replica_backup.h"
#include "core/errors.h"
#include "core/log.h"
#include "proto/frame.h"
#include "proto/frame_backup.h"
#include "ringkv.pb.h"
#include "server/conn.h"
#include "server/node.h"
#include "shard/crc32c.h"

struct backup_req {
	struct reactor_msg msg;       /* first: the cross-core envelope */
	struct node_core *origin;
	struct conn *conn;
	uint64_t id;
	uint32_t shard;
	unsigned target;
	struct reactor *exec;         /* the owning core's, while it runs there */
	struct replica_backup_call call;
};

static void status_of(int rv, int *status, const char **error)
{
	switch (rv) {
	case 0:
		*status = ringkv_Status_OK;
		*error = NULL;
		return;
	case RAFT_ENOTLEADER:
		*status = ringkv_Status_NOT_LEADER;
		*error = "this node does not lead the shard";
		return;
	case RKV_ENOTFOUND:
		*status = ringkv_Status_NOT_FOUND;
		*error = "no such backup here (ended, unused for 60 s, or the replica let "
			 "its shard go): begin again";
		return;
	case RKV_EFULL:
		*status = ringkv_Status_RESOURCE_EXHAUSTED;
		*error = "too many backups pinned on this core, or a read of this backup "
			 "is already in flight";
		return;
	case RKV_EINVAL:
		*status = ringkv_Status_INVALID_ARGUMENT;
		*error = "no such file in the backup, or an offset past its end";
		return;
	case -ETIMEDOUT:
		*status = ringkv_Status_TIMEOUT;
		*error = "the shard did not flush to the backup point in time";
		return;
	case RKV_ESHUTDOWN:
	case RKV_EAGAIN:
		*status = ringkv_Status_UNAVAILABLE;
		*error = "the replica is busy (stopping, installing a snapshot or electing): "
			 "retry";
		return;
	default:
		*status = ringkv_Status_INTERNAL;
		*error = "reading the backup failed (see the node's log)";
		return;
	}
}

/* Origin core: encode the answer and let the block go. */
static void on_back(struct reactor *r, struct reactor_msg *m)
{
	struct backup_req *b = (struct backup_req *)m;
	struct node_core *c = b->origin;
	struct replica_backup_call *call = &b->call;
	struct frame_backup_file *files = NULL;
	struct frame_backup fb = { .backup_id = call->backup_id, .shard = b->shard };
	struct frame_response resp = { .id = b->id };

	(void)r;
	status_of(call->status, &resp.status, &resp.error);
	if (call->status == RAFT_ENOTLEADER)
		resp.leader_hint = call->leader_hint;
	if (call->status == 0) {
		if (call->op == REPLICA_BACKUP_BEGIN) {
			files = calloc(call->nfiles ? call->nfiles : 1, sizeof *files);
			if (!files) {
				resp.status = ringkv_Status_RESOURCE_EXHAUSTED;
				resp.error = "out of memory for the backup's file list";
			} else {
				for (size_t i = 0; i < call->nfiles; i++)
					files[i] = (struct frame_backup_file){
						.name = { (const uint8_t *)call->files[i].name,
							  (uint32_t)strlen(call->files[i].name) },
						.size = call->files[i].size };
				fb.index = call->index;
				fb.term = call->term;
				fb.files = files;
				fb.file_count = call->nfiles;
				resp.backup = &fb;
			}
		} else {
			fb.data = (struct frame_slice){ call->buf, call->nread };
			fb.crc32c = crc32c(0, call->buf, call->nread);
			resp.backup = &fb;
		}
	}
	conn_reply_response(b->conn, &resp);
	free(files);
	free(call->files);
	free(call->buf);
	c->outstanding--;
	conn_request_done(b->conn);
	free(b);
}

static void call_done(struct replica_backup_call *call)
{
	struct backup_req *b = call->arg;
	struct reactor *r = b->exec;

	b->msg.handle = on_back;
	if (b->target == b->origin->reactor->id)
		on_back(r, &b->msg);
	else
		reactor_send(r, b->origin->reactor->id, &b->msg);
}

/* Owning core: run the call against its replica. */
static void on_request(struct reactor *r, struct reactor_msg *m)
{
	struct backup_req *b = (struct backup_req *)m;
	struct node_core *c = r->user;
	struct replica *rep = c->replicas[b->shard];

	b->exec = r;
	if (!rep) {
		b->call.status = RKV_ENOTFOUND;
		call_done(&b->call);
		return;
	}
	replica_backup_run(rep, &b->call);
}

static void refuse(struct conn *conn, uint64_t id, int status, const char *why)
{
	conn_reply(conn, id, status, NULL, 0, why);
}

bool backup_submit(struct node_core *c, struct conn *conn, const struct frame_request *fr)
{
	const struct frame_backup_req *q = &fr->backup;
	const struct node *n = c->node;
	struct backup_req *b;
	uint32_t shard;
	unsigned target;

	if (fr->op != FRAME_OP_BACKUP)
		return false;
	switch (q->op) {
	case ringkv_BackupOp_BACKUP_BEGIN:
		shard = q->shard;
		break;
	case ringkv_BackupOp_BACKUP_READ:
		if (q->length == 0 || q->length > FRAME_BACKUP_MAX_READ) {
			refuse(conn, fr->id, ringkv_Status_INVALID_ARGUMENT,
			       "backup read length must be 1 byte to 1 MiB");
			return true;
		}
		/* fallthrough */
	case ringkv_BackupOp_BACKUP_END:
		shard = replica_backup_id_shard(q->backup_id);
		break;
	default:
		refuse(conn, fr->id, ringkv_Status_INVALID_ARGUMENT, "unknown backup op");
		return true;
	}
	if (shard >= n->shards) {
		refuse(conn, fr->id, ringkv_Status_INVALID_ARGUMENT,
		       q->op == ringkv_BackupOp_BACKUP_BEGIN ? "no such shard" : "no such backup");
		return true;
	}
	target = node_shard_core(n, shard);
	if (target == NODE_NO_CORE) {
		refuse(conn, fr->id, ringkv_Status_NOT_LEADER,
		       "this node holds no replica of the shard: ask its leader");
		return true;
	}
	b = calloc(1, sizeof *b);
	if (b && q->op == ringkv_BackupOp_BACKUP_READ)
		b->call.buf = malloc(q->length);
	if (!b || (q->op == ringkv_BackupOp_BACKUP_READ && !b->call.buf)) {
		free(b);
		refuse(conn, fr->id, ringkv_Status_RESOURCE_EXHAUSTED,
		       "out of memory for the backup request");
		return true;
	}
	b->origin = c;
	b->conn = conn;
	b->id = fr->id;
	b->shard = shard;
	b->target = target;
	b->call.done = call_done;
	b->call.arg = b;
	b->call.op = q->op;
	b->call.backup_id = q->backup_id;
	b->call.file = q->file;
	b->call.offset = q->offset;
	b->call.length = q->length;
	conn->inflight++;
	c->outstanding++;
	b->msg.handle = on_request;
	if (target == c->reactor->id)
		on_request(c->reactor, &b->msg);
	else
		reactor_send(c->reactor, target, &b->msg);
	return true;
}
