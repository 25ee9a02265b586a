/*
 * Repair of a replica from its peers (issue 14; docs/DAMAGED-DATADIR.md).
 *
 * A replica needs repair when its state machine is damaged: its shard knows
 * a damaged table (a block failed its checksum: shard_damaged_tables), or
 * apply stopped because an entry needed a damaged block (shard_apply_error
 * RKV_ECORRUPT). Its Raft log is whole (the core log checks its own
 * records), so it keeps voting and acknowledging appends; what it must not
 * do is lead, nor serve as the base of anyone's state. So, in a group of
 * more than one voter:
 *   1. a damaged leader hands leadership to its most caught-up follower
 *      (RAFT_EV_TRANSFER, as a SIGTERM does), again every election timeout
 *      while it still leads (the next-best follower when the last target
 *      did not take it), and a damaged replica does not campaign: its own
 *      PREVOTE and VOTE requests are dropped before they leave, and
 *      TIMEOUT_NOW is dropped when it arrives. Its ticks go on: Raft's
 *      election clock must run, or a follower that heard from a leader
 *      before that leader died would count itself in the leader's lease
 *      for ever and refuse every other candidate's vote (pre-vote and
 *      §4.2.3), and the survivors could not elect anyone without it. With
 *      pre-vote on (cluster_core.c always sets it), a pre-candidate that
 *      sends nothing never raises its term, so dropping its requests
 *      disturbs nobody;
 *   2. a damaged follower sends the leader a SnapshotRequest every
 *      REQUEST_EVERY election timeouts while no stream is being received
 *      from that leader (a stream from a former leader is dropped first,
 *      and so is one that stalled: stall_ticks);
 *      the leader starts a stream to it as if Raft had asked for one
 *      (snapshot_send_force: at most one stream per follower);
 *   3. the follower takes that stream even at or below its applied index
 *      (replica_repair_stream_ok), as long as the entries after it are still
 *      in its Raft log, so apply can restart right after it;
 *   4. after the install the replica applies again from the snapshot's
 *      index, is whole again, and may campaign again.
 * A group of one has nobody to repair from: nothing here applies to it (its
 * way out is `ringkvd repair`, docs/DAMAGED-DATADIR.md).
 *
 * Invariant: rep->repair.active is true exactly from the tick that first
 * sees the damage until an install replaced the shard (or the damage went
 * away by itself, e.g. a restart on a repaired dir); one log line marks
 * each start and each end.
 */
#include "cluster/replica_internal.h"

#include <errno.h>
#include <inttypes.h>

#include "core/log.h"

#define REQUEST_EVERY 3 /* election timeouts between two requests */

static bool group_of_many(const struct replica *rep)
{
	const struct raft_conf *conf = raft_conf(rep->raft);
	unsigned voters = 0;

	for (uint32_t i = 0; i < conf->n; i++)
		voters += conf->servers[i].role == RAFT_VOTER;
	return voters > 1;
}

bool replica_repair_needed(const struct replica *rep)
{
	if (rep->installing || !group_of_many(rep))
		return false;
	return shard_damaged_tables(rep->shard) > 0 ||
	       shard_apply_error(rep->shard) == RKV_ECORRUPT;
}

uint64_t replica_best_follower(const struct replica *rep, uint64_t avoid)
{
	const struct raft_conf *conf = raft_conf(rep->raft);
	uint64_t best = RAFT_NONE, best_match = 0, other = RAFT_NONE;

	for (uint32_t k = 0; k < conf->n; k++) {
		uint64_t id = conf->servers[k].id, match;

		if (id == raft_id(rep->raft) || conf->servers[k].role != RAFT_VOTER ||
		    !raft_follower_match(rep->raft, id, &match))
			continue;
		if (id == avoid) {
			other = id;
			continue;
		}
		if (best == RAFT_NONE || match > best_match) {
			best = id;
			best_match = match;
		}
	}
	return best != RAFT_NONE ? best : other;
}

static void describe(const struct replica *rep, char *buf, size_t len)
{
	size_t n = shard_damaged_tables(rep->shard);

	if (n > 0)
		snprintf(buf, len, "%zu damaged table(s), the first %06" PRIu64 ".sst", n,
			 shard_damaged_table(rep->shard, 0));
	else
		snprintf(buf, len, "apply stopped on a damaged block at index %" PRIu64,
			 shard_applied_index(rep->shard) + 1);
}

static void repair_begin(struct replica *rep)
{
	char what[128];

	describe(rep, what, sizeof what);
	rep->repair.active = true;
	rep->repair.ticks = 0;
	rep->repair.transfer_due = 0;
	rep->repair.ask_due = 0;
	rep->repair.recv_seen = rep->snap_recv_bytes;
	rep->repair.recv_since = 0;
	rep->repair.target = RAFT_NONE;
	rep->repair.since_us = rep->core->r->now_us;
	rep->repair.index = 0;
	log_warn("replica %u: repair from a peer started (%s): it neither leads nor "
		 "campaigns until a snapshot from the leader replaced its shard",
		 rep->id, what);
}

/* Leader: hand leadership on, once per election timeout while we lead. */
static void step_down(struct replica *rep)
{
	uint64_t to;

	if (rep->repair.ticks < rep->repair.transfer_due)
		return;
	rep->repair.transfer_due = rep->repair.ticks + rep->core->election_ticks;
	to = replica_best_follower(rep, rep->repair.target);
	if (to == RAFT_NONE)
		return;
	rep->repair.target = to;
	rep->repair.transfers++;
	log_info("replica %u: damaged, handing leadership to node %" PRIu64, rep->id, to);
	replica_step(rep, &(struct raft_event){ .type = RAFT_EV_TRANSFER,
						 .transfer = { .target = to } });
}

/* Ticks without a chunk after which a stream from the leader counts as
 * stalled: a few election timeouts, and twice the pause --snapshot-rate
 * puts between two chunks (the leader's rate: assumed to be ours). */
static uint64_t stall_ticks(const struct replica *rep)
{
	uint64_t tick_us = (uint64_t)rep->core->node->cfg.heartbeat_ms * 1000u;
	uint64_t gap = 2 * snapshot_send_chunk_gap_us(rep->core) / (tick_us ? tick_us : 1) + 1;
	uint64_t floor = REQUEST_EVERY * (uint64_t)rep->core->election_ticks;

	return gap > floor ? gap : floor;
}

/* Follower: ask the leader for a snapshot while none is coming. */
static void ask(struct replica *rep)
{
	struct peer_msg_snapshot_request q = {
		.group = rep->id, .applied = shard_applied_index(rep->shard),
	};
	uint64_t leader = raft_leader(rep->raft);
	struct peer_msg_buf *b = &rep->repair.frame;
	int rv;

	if (leader == RAFT_NONE || leader == raft_id(rep->raft) ||
	    rep->recv.state == SNAP_RECV_INSTALLING)
		return;
	if (rep->recv.state == SNAP_RECV_RECEIVING) {
		/* A stream from a leader that is gone, or one that stalled
		 * (chunks lost: the leader only starts over when asked), is
		 * dropped so the current leader can send one. */
		if (rep->snap_recv_bytes != rep->repair.recv_seen) {
			rep->repair.recv_seen = rep->snap_recv_bytes;
			rep->repair.recv_since = rep->repair.ticks;
		}
		if (rep->recv.from == replica_ident_node(leader) &&
		    rep->repair.ticks - rep->repair.recv_since < stall_ticks(rep))
			return;
		log_info("replica %u: dropping the snapshot stream from node %" PRIu64 " (%s)",
			 rep->id, rep->recv.from, rep->recv.from == replica_ident_node(leader) ?
			 "no chunk for too long" : "no longer the leader");
		snapshot_recv_stop(rep);
		rep->repair.ask_due = 0;
	}
	if (rep->repair.ticks < rep->repair.ask_due)
		return;
	rep->repair.ask_due = rep->repair.ticks + REQUEST_EVERY * rep->core->election_ticks;
	b->len = 0;
	rv = peer_msg_encode_snapshot_request(b, &q);
	if (rv == 0)
		rv = cluster_core_send_control(rep->core, replica_ident_node(leader),
					       b->data + PEER_MSG_HEADER_SIZE,
					       b->len - PEER_MSG_HEADER_SIZE);
	if (rv != 0) {
		log_every(LOG_WARN, 10000, "replica %u: snapshot request to node %" PRIu64
			  " not sent: %s", rep->id, leader, rkv_strerror(rv));
		return;
	}
	rep->repair.requests++;
	log_every(LOG_INFO, 5000, "replica %u: asked node %" PRIu64 " for a snapshot to "
		  "repair from (applied %" PRIu64 ")", rep->id, leader, q.applied);
}

/*
 * Damage can be found while a group sleeps: a stale read of a follower's
 * own replica, or a flush or compaction of the core's background sweep,
 * meets a bad block. Nothing ticks a sleeping replica, and its repair runs
 * on ticks (replica_repair_tick), so it would wait for the group's next
 * write. The core's sweep calls this for every replica, a sleeping one
 * about once a second: a damaged one is woken (a follower's wake pings its
 * leader, which wakes the group), and stays awake while its repair is
 * active (quiet() in replica.c).
 */
void replica_repair_wake(struct replica *rep)
{
	if (rep->awake || rep->retired || rep->repair.active || !rep->raft ||
	    !replica_repair_needed(rep))
		return;
	log_info("replica %u: damage found while its group slept: waking it for repair",
		 rep->id);
	if (raft_asleep(rep->raft))
		replica_step(rep, &(struct raft_event){ .type = RAFT_EV_WAKE });
	replica_awake(rep);
}

void replica_repair_tick(struct replica *rep)
{
	if (!rep->repair.active) {
		if (!replica_repair_needed(rep))
			return;
		repair_begin(rep);
	} else if (!rep->installing && !replica_repair_needed(rep)) {
		/* The damage went without a snapshot (a FLUSH dropped every
		 * table, say): nothing to repair any more. */
		rep->repair.active = false;
		log_warn("replica %u: no damage any more; repair ended without a snapshot",
			 rep->id);
		return;
	}
	rep->repair.ticks++;
	if (raft_role(rep->raft) == RAFT_LEADER)
		step_down(rep);
	else
		ask(rep);
}

bool replica_repair_send_ok(const struct replica *rep, const struct raft_msg *m)
{
	if (m->type != RAFT_MSG_PREVOTE && m->type != RAFT_MSG_VOTE)
		return true;
	return !replica_repair_needed(rep);
}

bool replica_repair_accept(struct replica *rep, const struct raft_msg *m)
{
	if (m->type != RAFT_MSG_TIMEOUT_NOW || !replica_repair_needed(rep))
		return true;
	log_every(LOG_INFO, 10000, "replica %u: damaged: leadership offered by node %" PRIu64
		  " declined", rep->id, m->from);
	return false;
}

void replica_repair_request(struct replica *rep, uint64_t from,
			    const struct peer_msg_snapshot_request *q)
{
	uint64_t member;

	if (raft_role(rep->raft) != RAFT_LEADER) {
		log_every(LOG_INFO, 10000, "replica %u: snapshot request from node %" PRIu64
			  " ignored: this replica does not lead", rep->id, from);
		return;
	}
	/* `from` is a node; the member is its replica's identity. */
	member = replica_ident_member(raft_conf(rep->raft), from, RAFT_NONE);
	if (member == RAFT_NONE || member == raft_id(rep->raft)) {
		log_every(LOG_WARN, 10000, "replica %u: snapshot request from node %" PRIu64
			  " refused: not a member of the group", rep->id, from);
		return;
	}
	snapshot_send_force(rep, member, q->applied);
}

bool replica_repair_stream_ok(const struct replica *rep, uint64_t index)
{
	if (index > shard_applied_index(rep->shard))
		return true;
	if (!rep->repair.active)
		return false;
	/* At or below what we applied: apply restarts at index + 1, which
	 * must still be in the Raft log, and a restart must find the log
	 * holding the shard's new flushed index (core_log_check_holds). */
	if (index < raft_snapshot(rep->raft)->index || index > raft_persisted_index(rep->raft)) {
		log_every(LOG_WARN, 10000, "replica %u: repair snapshot at %" PRIu64 " refused: "
			  "the log holds %" PRIu64 "..%" PRIu64 " (it asks again later)",
			  rep->id, index, raft_snapshot(rep->raft)->index,
			  raft_persisted_index(rep->raft));
		return false;
	}
	return true;
}

void replica_repair_installed(struct replica *rep, uint64_t index)
{
	if (!rep->repair.active)
		return;
	/* The shard is at `index` now: entries after it apply again, from
	 * the Raft log (replica_repair_stream_ok kept them there). */
	if (rep->apply_next > index + 1)
		rep->apply_next = index + 1;
	rep->repair.active = false;
	rep->repair.done++;
	rep->repair.index = index;
	log_warn("replica %u: repair from a peer done: snapshot at %" PRIu64 " installed "
		 "after %" PRIu64 " ms; it applies from %" PRIu64 " and campaigns again",
		 rep->id, index, (rep->core->r->now_us - rep->repair.since_us) / 1000,
		 rep->apply_next);
}

void replica_repair_status(const struct replica *rep, struct replica_status *out)
{
	out->repairing = rep->repair.active || rep->log_repairing;
	out->repairs_done = rep->repair.done;
	out->repair_requests = rep->repair.requests;
	out->repair_transfers = rep->repair.transfers;
}

void replica_repair_free(struct replica *rep)
{
	peer_msg_buf_free(&rep->repair.frame);
}
