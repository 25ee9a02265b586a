/*
 * Native shard-move requests: see server/move.h.
 *
 * Invariant: the request block belongs to the origin core; while it is on
 * the owning core only that core touches it (the SPSC ring orders the
 * hand-overs), and only the origin frees it.
 */
#include "server/move.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/replica.h"
#include "core/errors.h"
#include "proto/frame.h"
#include "proto/frame_move.h"
#include "ringkv.pb.h"
#include "server/conn.h"
#include "server/node.h"

struct move_req {
	struct reactor_msg msg;       /* first: the cross-core envelope */
	struct node_core *origin;
	struct conn *conn;
	uint64_t id;
	struct frame_move_req q;
	/* the answer, filled on the owning core */
	int status;                   /* ringkv_Status */
	uint64_t leader_hint;
	struct frame_move move;
	bool has_move;
	char error[200];
};

/* Origin core: encode the answer and let the block go. */
static void on_back(struct reactor *r, struct reactor_msg *m)
{
	struct move_req *mr = (struct move_req *)m;
	struct frame_response resp = {
		.id = mr->id, .status = mr->status, .leader_hint = mr->leader_hint,
		.error = mr->error[0] ? mr->error : NULL, .move = mr->has_move ? &mr->move : NULL,
	};

	(void)r;
	conn_reply_response(mr->conn, &resp);
	mr->origin->outstanding--;
	conn_request_done(mr->conn);
	free(mr);
}

static void fill(struct move_req *mr, struct replica *rep)
{
	struct replica_move_status st;

	replica_move_status(rep, &st);
	mr->has_move = true;
	mr->move = (struct frame_move){
		.shard = mr->q.shard, .phase = (uint32_t)st.phase, .from_node = st.from,
		.to_node = st.to, .to_core = st.to_core, .snapshot_bytes = st.snap_bytes,
		.log_lag = st.lag, .elapsed_ms = st.elapsed_us / 1000, .next_leader = st.leader,
		.snapshot_total = st.snap_total, .rate = st.rate,
		.cancelled_in = (uint32_t)st.cancelled_in,
	};
	if (st.phase == REPLICA_MOVE_FAILED || st.reason[0])
		snprintf(mr->error, sizeof mr->error, "%s", st.reason);
}

/* Owning core: start the move or read its status, then send the answer
 * back. */
static void on_request(struct reactor *r, struct reactor_msg *m)
{
	struct move_req *mr = (struct move_req *)m;
	struct node_core *c = r->user;
	struct replica *rep = cluster_core_replica(c->cluster, mr->q.shard);
	int rv;

	if (!rep) {
		mr->status = ringkv_Status_NOT_LEADER;
		snprintf(mr->error, sizeof mr->error, "this node holds no replica of shard %u",
			 mr->q.shard);
	} else if (!replica_is_leader(rep)) {
		mr->status = ringkv_Status_NOT_LEADER;
		mr->leader_hint = replica_leader(rep);
		snprintf(mr->error, sizeof mr->error, "this node does not lead shard %u",
			 mr->q.shard);
		/* A former leader still reports the move it handed on. */
		if (mr->q.status_only)
			fill(mr, rep);
	} else if (mr->q.status_only) {
		fill(mr, rep);
		mr->status = ringkv_Status_OK;
	} else {
		if (mr->q.transfer_leader) {
			rv = replica_move_transfer_leader(rep, mr->q.to_node, mr->error,
							  sizeof mr->error);
		} else if (mr->q.cancel) {
			rv = replica_move_cancel(rep, mr->q.to_node, mr->error, sizeof mr->error);
		} else {
			rv = replica_move_start(rep, mr->q.from_node, mr->q.to_node,
						mr->q.to_core, mr->error, sizeof mr->error);
			if (rv == 0)
				replica_move_set_rate(rep, mr->q.rate);
		}
		switch (rv) {
		case 0:
			mr->status = ringkv_Status_OK;
			mr->error[0] = '\0';
			fill(mr, rep);
			break;
		case RAFT_ENOTLEADER:
			mr->status = ringkv_Status_NOT_LEADER;
			mr->leader_hint = replica_leader(rep);
			break;
		case RAFT_EBUSY:
			mr->status = ringkv_Status_UNAVAILABLE;
			break;
		case RKV_ESHUTDOWN:
			mr->status = ringkv_Status_UNAVAILABLE;
			snprintf(mr->error, sizeof mr->error, "the node is stopping");
			break;
		default:
			mr->status = ringkv_Status_INVALID_ARGUMENT;
			break;
		}
	}
	mr->msg.handle = on_back;
	if (mr->origin->reactor == r)
		on_back(r, &mr->msg);
	else
		reactor_send(r, mr->origin->reactor->id, &mr->msg);
}

bool move_submit(struct node_core *c, struct conn *conn, const struct frame_request *fr)
{
	struct move_req *mr;
	int core;

	if (fr->op != FRAME_OP_SHARD_MOVE)
		return false;
	if (fr->move.shard >= c->node->shards) {
		conn_reply(conn, fr->id, ringkv_Status_INVALID_ARGUMENT, NULL, 0,
			   "no such shard");
		return true;
	}
	core = cluster_node_shard_core(c->node->cluster, fr->move.shard);
	if (core < 0) {
		conn_reply(conn, fr->id, ringkv_Status_NOT_LEADER, NULL, 0,
			   "this node holds no replica of the shard: ask its leader");
		return true;
	}
	mr = calloc(1, sizeof *mr);
	if (!mr) {
		conn_reply(conn, fr->id, ringkv_Status_RESOURCE_EXHAUSTED, NULL, 0,
			   "out of memory for the move request");
		return true;
	}
	mr->origin = c;
	mr->conn = conn;
	mr->id = fr->id;
	mr->q = fr->move;
	conn->inflight++;
	c->outstanding++;
	mr->msg.handle = on_request;
	if ((unsigned)core == c->reactor->id)
		on_request(c->reactor, &mr->msg);
	else
		reactor_send(c->reactor, (unsigned)core, &mr->msg);
	return true;
}
