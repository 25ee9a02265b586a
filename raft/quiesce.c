/*
 * Sleeping groups (quiescence): an idle group stops its timers.
 *
 * A multi-Raft node carries thousands of groups, most of them idle; ticking
 * each and heartbeating each costs CPU in proportion to the groups, not to
 * the work. A leader whose group is idle may put it to sleep:
 *
 *   RAFT_EV_SLEEP (leader): accepted only when everything is settled: the
 *   leader's log is durable and committed to its end, a quorum of voters
 *   answered since the last check-quorum round (recent_active), every
 *   member that answered has a match at that end and is in REPLICATE, no
 *   read, transfer or configuration change is pending. A member that did
 *   not answer (its node down or cut off) may lag: a restarted node is
 *   awake and its pre-vote wakes the group, a cut off one is woken by its
 *   node liveness, and the group's next write catches it up. The leader then sends every member a
 *   HEARTBEAT with `done` set ("sleep") and falls asleep itself.
 *
 *   A follower that receives "sleep" from its leader of the current term
 *   falls asleep only if it is caught up too (its log ends at the leader's
 *   commit index, all durable); it answers HEARTBEAT_RESP with `done` set
 *   ("asleep"). Otherwise it answers with `reject` set, which wakes the
 *   leader: the group goes on as before. An asleep leader ignores plain
 *   answers of its term: they answer heartbeats sent before it slept.
 *
 *   Asleep, a group's ticks do nothing: no election timer runs, no
 *   heartbeat leaves, check-quorum does not count. The caller may stop
 *   ticking it at all. It wakes on any other event that can change the
 *   group: a message (except "sleep" itself and plain heartbeat answers of
 *   its term), a proposal, read, transfer or membership change to a leader,
 *   a campaign, or RAFT_EV_WAKE. A woken leader heartbeats at once, which
 *   wakes its followers; a follower woken by anything but its leader sends
 *   the leader a HEARTBEAT_RESP with `reject` set, which wakes it (else the
 *   follower's election timer would run out under a sleeping leader).
 *   Proposals and reads given to a follower are refused as ever and wake
 *   nothing.
 *
 *   RAFT_EV_WAKE with `suspect` set: the caller suspects a member's node is
 *   gone (node liveness, outside Raft). A leader is woken (any wake makes
 *   it count its quorum afresh, over an election timeout). A follower (it
 *   suspects its leader's node) counts its
 *   election timeout as elapsed up to the minimum, so that it campaigns
 *   within one more random [0, election_ticks) and grants pre-votes at once
 *   (it no longer claims to hear from a leader).
 *
 * Safety: sleeping only stops timers, and timers only ever decide *when*
 * to start an election or to step down, never what is committed or who may
 * win: every rule of §5 is checked on messages, which always wake. So a
 * sleeping group keeps every invariant (raft-sim runs with sleeping groups
 * and liveness-driven wakes under its faults). What it changes is liveness,
 * which the caller restores: a follower whose leader died sleeps until the
 * caller wakes it (a client request to it, or node liveness); a sleeping
 * leader that lost its quorum keeps believing it leads until woken, and a
 * woken leader then needs a quorum for anything (a proposal commits only on
 * a quorum's acknowledgement, a ReadIndex read on a quorum's heartbeat
 * answers), so it serves nothing stale.
 */
#include "raft/internal.h"

bool raft_asleep(const struct raft *r)
{
	return r->asleep;
}

int raft_sleep(struct raft *r)
{
	if (r->asleep)
		return 0;
	uint64_t last = raft_log_last_index(&r->log);
	if (r->role != RAFT_LEADER || r->transferee != RAFT_NONE || r->n_reads ||
	    r->commit != last ||
	    r->persisted != last || r->conf_index > r->commit || r->recv)
		return RAFT_EBUSY;
	int active = raft_is_voter(r) ? 1 : 0;
	for (uint32_t i = 0; i < r->n_progress; i++) {
		const struct raft_progress *pr = &r->progress[i];
		if (pr->id == r->cfg.id)
			continue;
		/* a member not heard from since the last quorum check (its
		 * node down, cut off) may lag: it is awake when it returns
		 * (a restart) or woken by its node liveness, and its pre-vote
		 * or our next write brings it up to date */
		if (!pr->recent_active)
			continue;
		if (pr->match != last || pr->state != PROGRESS_REPLICATE ||
		    pr->inflight_count)
			return RAFT_EBUSY;
		active += pr->voter;
	}
	/* a quorum heard from lately: a leader cut off (or just woken, its
	 * answers not yet in) does not sleep */
	if (active < raft_quorum_size(&r->conf))
		return RAFT_EBUSY;
	for (uint32_t i = 0; i < r->n_progress; i++) {
		const struct raft_progress *pr = &r->progress[i];
		/* one that did not answer is not told: alive, it stays awake,
		 * its election timer runs out and its pre-vote wakes us to
		 * catch it up (told, it would sleep behind) */
		if (pr->id == r->cfg.id || !pr->recent_active)
			continue;
		struct raft_msg *m = raft_msg_new(r, RAFT_MSG_HEARTBEAT, pr->id);
		if (!m)
			return r->err;
		/* as any heartbeat: never past what it is known to hold. Only
		 * members at the end are told, so this is the commit index;
		 * kept as a guard: when lagging members were told too,
		 * raft-sim found state machine safety broken without it */
		m->commit = pr->match < r->commit ? pr->match : r->commit;
		m->context = r->read_sent_round;
		m->done = true;
	}
	r->asleep = true;
	return 0;
}

void raft_wake(struct raft *r, bool suspect)
{
	if (r->asleep) {
		r->asleep = false;
		if (r->role == RAFT_LEADER) {
			/* its followers sleep too: wake them, and count the
			 * quorum afresh, over a whole election timeout (answers
			 * from before the sleep say nothing about now; a
			 * shorter round could depose a healthy leader whose
			 * answers are slow) */
			r->election_elapsed = 0;
			r->heartbeat_elapsed = 0;
			for (uint32_t i = 0; i < r->n_progress; i++)
				r->progress[i].recent_active = false;
			raft_bcast_heartbeat(r);
		} else if (!suspect && r->leader != RAFT_NONE) {
			/* woken alone (a stray message, the caller): wake the
			 * leader too, or this follower's election timer would
			 * run out while the leader sleeps and it would campaign
			 * against a healthy leader */
			struct raft_msg *m =
				raft_msg_new(r, RAFT_MSG_HEARTBEAT_RESP, r->leader);
			if (m)
				m->reject = true;
		}
	}
	if (suspect && r->role != RAFT_LEADER &&
	    r->election_elapsed < r->cfg.election_ticks)
		r->election_elapsed = r->cfg.election_ticks;
}

bool raft_follower_may_sleep(const struct raft *r, const struct raft_msg *m)
{
	uint64_t last = raft_log_last_index(&r->log);
	return m->done && r->role == RAFT_FOLLOWER && r->leader == m->from &&
	       r->commit == m->commit && last == r->commit && r->persisted == last &&
	       !r->recv;
}

void raft_learner_timeout(struct raft *r)
{
	raft_reset_timeout(r);
	/* A learner never campaigns, so nothing else would tell a sleeping
	 * leader that it lags (it was not told to sleep: it had not answered
	 * lately): an election timeout without a word from the leader, it
	 * pings it as a woken follower does. An awake leader takes it as a
	 * heartbeat answer. */
	if (r->leader != RAFT_NONE && r->leader != r->cfg.id) {
		struct raft_msg *m = raft_msg_new(r, RAFT_MSG_HEARTBEAT_RESP, r->leader);
		if (m)
			m->reject = true;
	}
}
