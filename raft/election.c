/*
 * Leader election (§5.2), pre-vote (§9.6) and check-quorum (§6.2), driven by
 * ticks.
 *
 * Rules this file enforces:
 *   - "If election timeout elapses without receiving AppendEntries RPC from
 *     current leader or granting vote to candidate: convert to candidate."
 *     Timeouts are randomized in [election_ticks, 2 * election_ticks).
 *   - "Each server will vote for at most one candidate in a given term, on a
 *     first-come-first-served basis" and only if "the candidate's log is at
 *     least as up-to-date as receiver's log" (§5.4.1).
 *   - Pre-vote: a would-be candidate first asks whether it could win, without
 *     raising any term; a server grants only if it has not heard from a
 *     leader within the minimum election timeout, so a partitioned server
 *     rejoining cannot depose a working leader.
 *   - Check-quorum: a leader that has not heard from a majority within an
 *     election timeout steps down, so a partitioned leader stops serving.
 */
#include "raft/internal.h"

#include <assert.h>

bool raft_in_lease(const struct raft *r)
{
	return r->cfg.check_quorum && r->leader != RAFT_NONE &&
	       r->election_elapsed < r->cfg.election_ticks;
}

static int count_bits_voters(const struct raft *r, uint32_t mask)
{
	int n = 0;
	for (uint32_t i = 0; i < r->conf.n; i++)
		if ((mask & (1u << i)) && r->conf.servers[i].role == RAFT_VOTER)
			n++;
	return n;
}

static int voter_count(const struct raft *r)
{
	int n = 0;
	for (uint32_t i = 0; i < r->conf.n; i++)
		n += r->conf.servers[i].role == RAFT_VOTER;
	return n;
}

/* Decide a (pre-)election once a quorum granted or can no longer grant. */
static void tally(struct raft *r)
{
	int quorum = raft_quorum_size(&r->conf);
	int granted = count_bits_voters(r, r->votes_granted);
	int rejected = count_bits_voters(r, r->votes_rejected);
	if (granted >= quorum) {
		if (r->role == RAFT_PRECANDIDATE)
			raft_campaign(r, false, false);
		else
			raft_become_leader(r);
	} else if (voter_count(r) - rejected < quorum) {
		raft_become_follower(r, r->term, RAFT_NONE);
	}
}

void raft_campaign(struct raft *r, bool pre_vote, bool transfer)
{
	if (!raft_is_voter(r))
		return;
	uint32_t type;
	uint64_t term;
	if (pre_vote) {
		raft_become_precandidate(r);
		type = RAFT_MSG_PREVOTE;
		term = r->term + 1;
	} else {
		raft_become_candidate(r);
		type = RAFT_MSG_VOTE;
		term = r->term;
	}
	int self = raft_conf_index_of(&r->conf, r->cfg.id);
	assert(self >= 0);
	r->votes_granted = 1u << self;
	if (count_bits_voters(r, r->votes_granted) >=
	    raft_quorum_size(&r->conf)) {
		tally(r);
		return;
	}
	for (uint32_t i = 0; i < r->conf.n; i++) {
		const struct raft_server *s = &r->conf.servers[i];
		if (s->id == r->cfg.id || s->role != RAFT_VOTER)
			continue;
		struct raft_msg *m = raft_msg_new(r, type, s->id);
		if (!m)
			return;
		m->term = term;
		m->index = raft_log_last_index(&r->log);
		m->log_term = raft_log_last_term(&r->log);
		m->context = transfer ? RAFT_CONTEXT_TRANSFER : 0;
	}
}

/* §5.4.1: "If the logs have last entries with different terms, then the log
 * with the later term is more up-to-date. If the logs end with the same
 * term, then whichever log is longer is more up-to-date." */
static bool log_up_to_date(const struct raft *r, const struct raft_msg *m)
{
	uint64_t last_term = raft_log_last_term(&r->log);
	return m->log_term > last_term ||
	       (m->log_term == last_term &&
		m->index >= raft_log_last_index(&r->log));
}

void raft_handle_vote(struct raft *r, const struct raft_msg *m)
{
	bool pre = m->type == RAFT_MSG_PREVOTE;
	bool can_vote;
	if (pre)
		can_vote = m->term > r->term &&
			   !(r->leader != RAFT_NONE &&
			     r->election_elapsed < r->cfg.election_ticks);
	else
		can_vote = r->vote == m->from ||
			   (r->vote == RAFT_NONE && r->leader == RAFT_NONE);
	uint32_t type = pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP;
	struct raft_msg *resp = raft_msg_new(r, type, m->from);
	if (!resp)
		return;
	if (can_vote && log_up_to_date(r, m)) {
		resp->term = m->term;
		if (pre && m->term > r->prevote_max)
			r->prevote_max = m->term;
		if (!pre) {
			r->vote = m->from;
			r->hs_dirty = true;
			raft_reset_timeout(r);
		}
	} else {
		resp->reject = true;
	}
}

void raft_handle_vote_resp(struct raft *r, const struct raft_msg *m)
{
	if (m->type == RAFT_MSG_PREVOTE_RESP) {
		if (r->role != RAFT_PRECANDIDATE)
			return;
		if (!m->reject && m->term != r->term + 1)
			return;
	} else if (r->role != RAFT_CANDIDATE || m->term != r->term) {
		return;
	}
	int pos = raft_conf_index_of(&r->conf, m->from);
	if (pos < 0)
		return;
	if (m->reject)
		r->votes_rejected |= 1u << pos;
	else
		r->votes_granted |= 1u << pos;
	tally(r);
}

static void leader_tick(struct raft *r)
{
	r->heartbeat_elapsed++;
	r->election_elapsed++;
	if (r->transferee != RAFT_NONE &&
	    ++r->transfer_elapsed >= r->cfg.election_ticks)
		r->transferee = RAFT_NONE; /* §3.10: abort a slow transfer */
	if (r->election_elapsed >= r->cfg.election_ticks) {
		r->election_elapsed = 0;
		if (r->cfg.check_quorum) {
			int active = raft_is_voter(r) ? 1 : 0;
			for (uint32_t i = 0; i < r->n_progress; i++) {
				struct raft_progress *pr = &r->progress[i];
				if (pr->id == r->cfg.id)
					continue;
				active += pr->voter && pr->recent_active;
				pr->recent_active = false;
			}
			if (active < raft_quorum_size(&r->conf)) {
				raft_become_follower(r, r->term, RAFT_NONE);
				return;
			}
		}
	}
	if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
		r->heartbeat_elapsed = 0;
		raft_bcast_heartbeat(r);
	}
}

void raft_tick(struct raft *r)
{
	if (r->asleep)
		return; /* raft/quiesce.c */
	if (r->role == RAFT_LEADER) {
		leader_tick(r);
		return;
	}
	r->election_elapsed++;
	if (r->election_elapsed >= r->timeout && raft_is_voter(r))
		raft_campaign(r, r->cfg.pre_vote, false);
	else if (r->election_elapsed >= r->timeout)
		raft_learner_timeout(r);
}
