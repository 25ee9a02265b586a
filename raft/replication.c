/*
 * Log replication (§5.3) and the commit rule (§5.4.2).
 *
 * The commit rule, the one place where a bug loses acknowledged writes:
 * a leader marks index N committed when a majority of voters hold it durably
 * ("matchIndex[i] >= N") AND log[N].term == currentTerm. Entries of earlier
 * terms are never committed by counting their replicas: Figure 8 of the
 * paper shows such an entry can be on a majority and still be overwritten
 * by a later leader. They become committed indirectly, when an entry of the
 * current term after them is (Log Matching makes the prefix identical).
 *
 * The leader's own replica counts only once it is durable: its match is the
 * "persisted up to" index the caller reports (it writes its log in parallel
 * with sending it). A follower acknowledges only entries that are both
 * durable locally and known to match the leader's log (leader_match).
 *
 * AppendEntries receiver (Figure 2):
 *   1. Reply false if term < currentTerm (done in raft.c).
 *   2. Reply false if log doesn't contain an entry at prevLogIndex whose
 *      term matches prevLogTerm.
 *   3. If an existing entry conflicts with a new one (same index but
 *      different terms), delete the existing entry and all that follow it.
 *   4. Append any new entries not already in the log.
 *   5. If leaderCommit > commitIndex, set commitIndex = min(leaderCommit,
 *      index of last new entry).
 * A rejection carries a hint (the last index whose term is <= prevLogTerm)
 * so the leader skips a whole conflicting term per round trip.
 */
#include "raft/internal.h"

#include <assert.h>
#include <errno.h>

void raft_send_append(struct raft *r, struct raft_progress *pr, bool empty_ok)
{
	if (raft_progress_paused(r, pr))
		return;
	uint64_t prev = pr->next - 1;
	uint64_t prev_term;
	if (!raft_log_term(&r->log, prev, &prev_term)) {
		raft_send_snapshot(r, pr);
		return;
	}
	uint64_t last = raft_log_last_index(&r->log);
	uint64_t n = 0, bytes = 0;
	while (prev + n < last) {
		const struct raft_entry *e = raft_log_get(&r->log, prev + n + 1);
		if (n > 0 && (bytes >= r->cfg.max_msg_bytes ||
			      bytes + e->len > r->cfg.max_msg_bytes))
			break;
		bytes += e->len;
		n++;
	}
	if (n == 0 && !empty_ok)
		return;
	struct raft_msg *m = raft_msg_new(r, RAFT_MSG_APPEND, pr->id);
	if (!m)
		return;
	m->index = prev;
	m->log_term = prev_term;
	m->commit = r->commit;
	m->n_entries = (uint32_t)n; /* resolved to pointers in finish() */
	raft_progress_sent(r, pr, prev + n, bytes);
}

void raft_bcast_append(struct raft *r)
{
	for (uint32_t i = 0; i < r->n_progress; i++)
		if (r->progress[i].id != r->cfg.id)
			raft_send_append(r, &r->progress[i], false);
}

void raft_bcast_heartbeat(struct raft *r)
{
	for (uint32_t i = 0; i < r->n_progress; i++) {
		struct raft_progress *pr = &r->progress[i];
		if (pr->id == r->cfg.id)
			continue;
		if (pr->state == PROGRESS_SNAPSHOT)
			raft_send_snapshot(r, pr); /* resend the current chunk */
		struct raft_msg *m = raft_msg_new(r, RAFT_MSG_HEARTBEAT, pr->id);
		if (!m)
			return;
		/* never let a follower commit past what it is known to hold */
		m->commit = pr->match < r->commit ? pr->match : r->commit;
		m->context = r->read_sent_round;
	}
}

void raft_follower_commit(struct raft *r, uint64_t commit)
{
	uint64_t last = raft_log_last_index(&r->log);
	if (commit > last)
		commit = last;
	if (commit > r->commit)
		r->commit = commit;
}

static void send_ack(struct raft *r, uint64_t to)
{
	uint64_t ack = r->persisted < r->leader_match ? r->persisted
						       : r->leader_match;
	struct raft_msg *m = raft_msg_new(r, RAFT_MSG_APPEND_RESP, to);
	if (m)
		m->index = ack;
}

/* Drop entries from index on (rule 3); what was durable there is gone. */
static void truncate_from(struct raft *r, uint64_t index)
{
	raft_log_truncate(&r->log, index);
	raft_persist_cut(r);
	if (r->persisted >= index)
		r->persisted = index - 1;
	if (r->conf_index >= index)
		raft_conf_reload(r);
}

static void reject(struct raft *r, const struct raft_msg *m)
{
	uint64_t last = raft_log_last_index(&r->log);
	uint64_t hint = m->index < last ? m->index : last;
	uint64_t term = 0;
	while (raft_log_term(&r->log, hint, &term) && term > m->log_term &&
	       hint > r->log.offset)
		hint--;
	raft_log_term(&r->log, hint, &term);
	struct raft_msg *resp = raft_msg_new(r, RAFT_MSG_APPEND_RESP, m->from);
	if (!resp)
		return;
	resp->reject = true;
	resp->index = m->index;
	resp->hint = hint;
	resp->log_term = term;
}

void raft_handle_append(struct raft *r, const struct raft_msg *m)
{
	assert(r->role == RAFT_FOLLOWER && r->leader == m->from);
	r->election_elapsed = 0;
	if (m->index < r->commit) {
		/* the prefix up to commit already matches any leader's log */
		if (r->commit > r->leader_match)
			r->leader_match = r->commit;
		send_ack(r, m->from);
		return;
	}
	uint64_t term;
	if (!raft_log_term(&r->log, m->index, &term) || term != m->log_term) {
		reject(r, m);
		return;
	}
	for (uint32_t i = 0; i < m->n_entries; i++) {
		const struct raft_entry *e = &m->entries[i];
		uint64_t index = m->index + 1 + i;
		if (raft_log_term(&r->log, index, &term)) {
			if (term == e->term)
				continue;
			truncate_from(r, index);
		}
		if (e->term < raft_log_last_term(&r->log) || e->term > r->term)
			return; /* malformed: terms must not decrease */
		if (raft_log_append(&r->log, e->term, e->type, e->data, e->len)) {
			r->err = -ENOMEM;
			return;
		}
		if (index < r->unstable_from)
			r->unstable_from = index;
		if (e->type == RAFT_ENTRY_CONF) {
			struct raft_conf conf;
			if (raft_conf_decode(e->data, e->len, &conf) == 0) {
				r->conf = conf;
				r->conf_index = index;
			}
		}
	}
	uint64_t last_new = m->index + m->n_entries;
	if (last_new > r->leader_match)
		r->leader_match = last_new;
	raft_follower_commit(r, m->commit < last_new ? m->commit : last_new);
	send_ack(r, m->from);
}

void raft_handle_append_resp(struct raft *r, const struct raft_msg *m)
{
	if (r->role != RAFT_LEADER)
		return;
	struct raft_progress *pr = raft_progress_get(r, m->from);
	if (!pr)
		return;
	pr->recent_active = true;
	if (m->index > raft_log_last_index(&r->log))
		return; /* acknowledges what we never sent: bad input */
	if (m->reject) {
		/* find the leader's last index whose term <= the hint's term */
		uint64_t last = raft_log_last_index(&r->log);
		uint64_t idx = m->hint < last ? m->hint : last;
		uint64_t term;
		while (idx > r->log.offset && raft_log_term(&r->log, idx, &term) &&
		       term > m->log_term)
			idx--;
		if (m->hint < pr->match) {
			/* The follower holds less than it acknowledged: its log
			 * was lost and it is being rebuilt (a damaged log,
			 * cluster/core_log_repair.c). A whole follower never
			 * answers below its match (what it acknowledged matches
			 * this leader's log, which never cuts it), so this is no
			 * stale answer. Its match goes back to 0 (conservative:
			 * what is committed stays committed) and it is probed
			 * from the hint. */
			pr->match = 0;
			raft_progress_become(pr, PROGRESS_PROBE);
			pr->next = idx + 1;
			raft_send_append(r, pr, true);
			return;
		}
		if (raft_progress_decr(pr, m->index, idx))
			raft_send_append(r, pr, true);
		return;
	}
	if (!raft_progress_update(pr, m->index))
		return;
	bool after_snapshot = pr->state == PROGRESS_SNAPSHOT;
	if (pr->state == PROGRESS_PROBE ||
	    (pr->state == PROGRESS_SNAPSHOT && pr->match >= pr->snap_index))
		raft_progress_become(pr, PROGRESS_REPLICATE);
	if (raft_maybe_commit(r) && r->role != RAFT_LEADER)
		return;
	raft_transfer_check(r, pr);
	uint32_t before, first = r->n_out;
	do {
		before = r->n_out;
		raft_send_append(r, pr, false);
	} while (r->n_out != before && pr->state == PROGRESS_REPLICATE);
	/* A follower that just installed a snapshot hears the leader's commit
	 * index at once, even with no entry to send (heartbeats carry at most
	 * its match): a replica rejoining empty waits for it. */
	if (after_snapshot && r->n_out == first && pr->state == PROGRESS_REPLICATE)
		raft_send_append(r, pr, true);
}

void raft_handle_heartbeat(struct raft *r, const struct raft_msg *m)
{
	r->election_elapsed = 0;
	raft_follower_commit(r, m->commit);
	struct raft_msg *resp =
		raft_msg_new(r, RAFT_MSG_HEARTBEAT_RESP, m->from);
	if (resp)
		resp->context = m->context;
	if (resp && raft_follower_may_sleep(r, m)) {
		r->asleep = true;
		resp->done = true;
	} else if (resp && m->done) {
		resp->reject = true; /* told to sleep, cannot: wake the leader */
		r->asleep = false;
	}
}

void raft_handle_heartbeat_resp(struct raft *r, const struct raft_msg *m)
{
	if (r->role != RAFT_LEADER)
		return;
	/* asleep, every answer of our term but a refusal to sleep (which woke
	 * us in receive) answers a heartbeat sent before the sleep, or obeys
	 * it: nothing to do (raft/quiesce.c) */
	if (r->asleep)
		return;
	struct raft_progress *pr = raft_progress_get(r, m->from);
	if (!pr)
		return;
	pr->recent_active = true;
	if (m->context > pr->read_ack)
		pr->read_ack = m->context;
	pr->probe_sent = false;
	uint64_t last = raft_log_last_index(&r->log);
	/* APPENDs lost in REPLICATE are never answered: after an election
	 * timeout of heartbeats without progress, probe from the last known
	 * match. (Sooner would resend everything on every slow round trip.) */
	uint32_t patience = r->cfg.election_ticks / r->cfg.heartbeat_ticks;
	if (pr->state == PROGRESS_REPLICATE && pr->match < last &&
	    ++pr->stall >= patience)
		raft_progress_become(pr, PROGRESS_PROBE);
	if (pr->match < last)
		raft_send_append(r, pr, true);
	raft_read_ack(r);
}

bool raft_maybe_commit(struct raft *r)
{
	assert(r->role == RAFT_LEADER);
	uint64_t index = raft_quorum_value(r, r->persisted, false);
	if (index <= r->commit)
		return false;
	uint64_t term = 0;
	bool known = raft_log_term(&r->log, index, &term);
	assert(known); /* a quorum holds it, so the leader does too */
	(void)known;
	if (term != r->term)
		return false; /* §5.4.2 */
	r->commit = index;
	raft_conf_committed(r);
	return true;
}

void raft_persist_cut(struct raft *r)
{
	/* the write that carries the cut to the disk is the next one */
	r->stale_below = r->write_mark + 1;
}

/*
 * A report is taken only for a write handed out after the last cut of the
 * log: an earlier write's (index, term) can match the log again after a
 * rewrite, yet the disk is still to be cut back by the queued truncating
 * write (raft-sim seed 1,032,489). Its own report, in order, follows.
 */
void raft_handle_persisted(struct raft *r, uint64_t index, uint64_t term,
			   uint64_t mark)
{
	uint64_t have;
	if (mark < r->stale_below || mark == 0 || mark > r->write_mark)
		return; /* issued before a truncation, or never issued */
	if (index <= r->persisted || !raft_log_term(&r->log, index, &have) ||
	    have != term)
		return; /* not (or no longer) what the log holds */
	r->persisted = index;
	if (r->role == RAFT_LEADER)
		raft_maybe_commit(r);
	else if (r->role == RAFT_FOLLOWER && r->leader != RAFT_NONE)
		send_ack(r, r->leader);
}
