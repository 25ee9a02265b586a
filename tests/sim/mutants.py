"""
The mutant catalogue: single-rule mutations of raft/, one per rule of the
Raft paper (Figure 2, §5-§9 and Ongaro's dissertation) or of the library's
contract with its caller (raft.h). Each mutant replaces one exact piece of
source text with a broken version; mutate.py applies it to a copy of the
tree, rebuilds raft-sim (and the raft unit tests) and requires them to fail.

A mutant's `old` text must occur exactly once in its file, so the catalogue
breaks loudly when the code it mutates changes. Keep each mutation to the
one rule it names: a mutant that breaks two rules proves less.
"""

from collections import namedtuple

Mutant = namedtuple('Mutant', 'name rule file old new by',
                    defaults=['sim'])

# by='unit' would mark a mutant raft-sim does not kill within the seed
# budget (docs/RAFT-MUTATION.md would say why); a unit test that reads like
# the paper must kill it instead, and mutate.py requires that with --unit.
# None is so marked: raft-sim alone kills every mutant.

MUTANTS = [
    # ---- terms and roles (§5.1) ----
    Mutant('stale-term-accepted',
           '§5.1: a message from an older term is refused, never acted on',
           'raft/raft.c',
           '''	} else if (m->term < r->term) {
		reply_stale(r, m);
		return;
	}''',
           '''	} else if (m->term < r->term) {
		reply_stale(r, m);
	}'''),
    Mutant('term-raise-not-persisted',
           'raft.h contract / §5.1: currentTerm is durable before a message '
           'is sent under it (a higher term seen)',
           'raft/raft.c',
           '''		r->term = term;
		r->vote = RAFT_NONE;
		r->hs_dirty = true;''',
           '''		r->term = term;
		r->vote = RAFT_NONE;'''),
    Mutant('candidate-term-not-persisted',
           'raft.h contract / §5.2: a candidate makes its new term and '
           'self-vote durable before asking for votes',
           'raft/raft.c',
           '''	r->vote = r->cfg.id;
	r->hs_dirty = true;''',
           '''	r->vote = r->cfg.id;'''),
    Mutant('restart-forgets-vote',
           '§5.2 / Figure 2: votedFor is persistent state, restored after a '
           'crash',
           'raft/raft.c',
           '''	r->vote = hs->vote;''',
           '''	r->vote = RAFT_NONE;'''),

    # ---- elections (§5.2, §5.4.1) ----
    Mutant('vote-any-log',
           '§5.4.1: vote only for a candidate whose log is at least as '
           'up-to-date',
           'raft/election.c',
           '''	return m->log_term > last_term ||''',
           '''	return true || m->log_term > last_term ||'''),
    Mutant('vote-shorter-log',
           '§5.4.1: with equal last terms the longer log is more up-to-date',
           'raft/election.c',
           '''		m->index >= raft_log_last_index(&r->log));''',
           '''		m->index + 1 >= raft_log_last_index(&r->log));'''),
    Mutant('vote-twice',
           '§5.2: at most one vote per term, first come first served',
           'raft/election.c',
           '''			   (r->vote == RAFT_NONE && r->leader == RAFT_NONE);''',
           '''			   (r->leader == RAFT_NONE);'''),
    Mutant('vote-not-persisted',
           'raft.h contract / Figure 2: a granted vote is durable before the '
           'grant is sent',
           'raft/election.c',
           '''			r->vote = m->from;
			r->hs_dirty = true;''',
           '''			r->vote = m->from;'''),
    Mutant('leader-without-majority',
           '§5.2: a candidate wins with votes from a majority of voters',
           'raft/election.c',
           '''	if (granted >= quorum) {''',
           '''	if (granted + 1 >= quorum) {'''),
    Mutant('prevote-raises-term',
           '§9.6: a pre-vote request never changes the receiver\'s term',
           'raft/raft.c',
           '''		if (m->type == RAFT_MSG_PREVOTE ||
		    (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)) {''',
           '''		if (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject) {'''),
    Mutant('prevote-ignores-leader',
           '§9.6: a server that heard from a leader within the election '
           'timeout refuses pre-votes',
           'raft/election.c',
           '''		can_vote = m->term > r->term &&
			   !(r->leader != RAFT_NONE &&
			     r->election_elapsed < r->cfg.election_ticks);''',
           '''		can_vote = m->term > r->term;'''),
    Mutant('precandidate-raises-term',
           '§9.6: a pre-candidate does not raise its own term',
           'raft/raft.c',
           '''	role_set(r, RAFT_PRECANDIDATE);
	r->leader = RAFT_NONE;''',
           '''	role_set(r, RAFT_PRECANDIDATE);
	r->term++;
	r->vote = RAFT_NONE;
	r->hs_dirty = true;
	r->leader = RAFT_NONE;'''),
    Mutant('check-quorum-never-steps-down',
           '§6.2: a leader that has not heard from a majority within an '
           'election timeout steps down',
           'raft/election.c',
           '''			if (active < raft_quorum_size(&r->conf)) {''',
           '''			if (active < 0) {'''),

    # ---- replication (§5.3, Figure 2 AppendEntries receiver) ----
    Mutant('append-ignores-prev-term',
           'Figure 2 AppendEntries rule 2: refuse unless the log holds '
           'prevLogIndex with prevLogTerm',
           'raft/replication.c',
           '''	if (!raft_log_term(&r->log, m->index, &term) || term != m->log_term) {''',
           '''	if (!raft_log_term(&r->log, m->index, &term)) {'''),
    Mutant('append-keeps-conflict',
           'Figure 2 AppendEntries rule 3: a conflicting entry and all that '
           'follow it are deleted',
           'raft/replication.c',
           '''			if (term == e->term)
				continue;
			truncate_from(r, index);''',
           '''			continue;'''),
    Mutant('append-truncates-match',
           'Figure 2 AppendEntries rule 3-4: only a conflict truncates; '
           'entries already held are kept',
           'raft/replication.c',
           '''			if (term == e->term)
				continue;
			truncate_from(r, index);''',
           '''			truncate_from(r, index);'''),
    Mutant('follower-commit-past-new',
           'Figure 2 AppendEntries rule 5: commitIndex = min(leaderCommit, '
           'index of last new entry)',
           'raft/replication.c',
           '''	raft_follower_commit(r, m->commit < last_new ? m->commit : last_new);''',
           '''	raft_follower_commit(r, m->commit);'''),
    Mutant('follower-commit-past-last',
           'a follower never commits past the end of its log',
           'raft/replication.c',
           '''	if (commit > last)
		commit = last;
	if (commit > r->commit)''',
           '''	if (commit > r->commit)'''),
    Mutant('heartbeat-commit-unclamped',
           'a heartbeat carries min(leaderCommit, matchIndex): a follower with '
           'a stale tail must not commit it',
           'raft/replication.c',
           '''		m->commit = pr->match < r->commit ? pr->match : r->commit;''',
           '''		m->commit = r->commit;'''),
    Mutant('ack-before-durable',
           '§5.3 / raft.h contract: a follower acknowledges only entries '
           'durable on its disk',
           'raft/replication.c',
           '''	uint64_t ack = r->persisted < r->leader_match ? r->persisted
						       : r->leader_match;''',
           '''	uint64_t ack = r->leader_match;'''),
    Mutant('ack-stale-tail',
           '§5.3: a follower acknowledges only entries known to match the '
           'leader\'s log',
           'raft/replication.c',
           '''	uint64_t last_new = m->index + m->n_entries;
	if (last_new > r->leader_match)
		r->leader_match = last_new;''',
           '''	uint64_t last_new = m->index + m->n_entries;
	r->leader_match = raft_log_last_index(&r->log);'''),
    Mutant('leader-match-survives-term',
           '§5.3: a follower\'s knowledge of what matches the leader holds '
           'for one leader in one term',
           'raft/raft.c',
           '''	if (leader != r->leader || term != r->term)
		r->leader_match = 0;''',
           '''	if (leader != r->leader)
		r->leader_match = 0;'''),
    Mutant('leader-counts-ack-beyond-log',
           'untrusted input: an acknowledgement of an index the leader '
           'never had is dropped',
           'raft/replication.c',
           '''	if (m->index > raft_log_last_index(&r->log))
		return; /* acknowledges what we never sent: bad input */
''',
           ''''''),
    Mutant('persisted-ignores-term',
           'raft.h contract: a "persisted" report naming an entry the log '
           'does not hold (index, term) counts for nothing',
           'raft/replication.c',
           '''	if (index <= r->persisted || !raft_log_term(&r->log, index, &have) ||
	    have != term)''',
           '''	if (index <= r->persisted || !raft_log_term(&r->log, index, &have))'''),
    Mutant('persisted-ignores-mark',
           'raft.h contract: a "persisted" report of a write issued before a '
           'later truncation counts for nothing, even when its (index, term) '
           'is in the log again',
           'raft/replication.c',
           '''	if (mark < r->stale_below || mark == 0 || mark > r->write_mark)''',
           '''	if (mark == 0 || mark > r->write_mark)'''),
    Mutant('truncate-keeps-persisted',
           'truncating the log also forgets that the dropped entries were '
           'durable',
           'raft/replication.c',
           '''	if (r->persisted >= index)
		r->persisted = index - 1;''',
           ''''''),
    Mutant('commit-old-term',
           '§5.4.2: only entries of the leader\'s current term are committed '
           'by counting replicas (Figure 8)',
           'raft/replication.c',
           '''	if (term != r->term)
		return false; /* §5.4.2 */''',
           ''''''),
    Mutant('leader-counts-unpersisted-self',
           '§5.3 / raft.h contract: the leader\'s own copy counts only once it '
           'is durable',
           'raft/replication.c',
           '''	uint64_t index = raft_quorum_value(r, r->persisted, false);''',
           '''	uint64_t index = raft_quorum_value(r, raft_log_last_index(&r->log), false);'''),
    Mutant('commit-without-majority',
           '§5.3: an entry is committed once a majority of voters store it',
           'raft/progress.c',
           '''	int quorum = n / 2 + 1;''',
           '''	int quorum = n / 2;'''),
    Mutant('learner-counts',
           '§4.2.1 (dissertation): a learner never counts toward a majority',
           'raft/progress.c',
           '''		if (!pr->voter)
			continue;
		uint64_t v''',
           '''		uint64_t v'''),

    # ---- ReadIndex (§6.4) ----
    Mutant('read-no-quorum',
           '§6.4 step 2: a read waits for a heartbeat round acknowledged by a '
           'majority',
           'raft/read_index.c',
           '''	if (alone(r)) {''',
           '''	if (true) {'''),
    Mutant('read-joins-sent-round',
           '§6.4 step 2: the confirming round is sent after the read arrived',
           'raft/read_index.c',
           '''	read->round = r->read_next_round;''',
           '''	read->round = r->read_sent_round ? r->read_sent_round
					 : r->read_next_round;'''),
    Mutant('read-index-before-noop',
           '§6.4 step 1: a new leader\'s read index is at least its term\'s '
           'first entry',
           'raft/read_index.c',
           '''	uint64_t index = r->commit > r->term_start ? r->commit : r->term_start;''',
           '''	uint64_t index = r->commit;'''),
    Mutant('transfer-accepts-proposals',
           '§3.10: a leader transferring leadership refuses proposals',
           'raft/raft.c',
           '''	if (r->transferee != RAFT_NONE)
		return RAFT_EBUSY;
	if (ev->propose.len''',
           '''	if (ev->propose.len'''),

    # ---- membership (§4.1, errata) ----
    Mutant('conf-change-before-term-commit',
           '§4.1 errata: a leader changes membership only after committing an '
           'entry of its own term',
           'raft/membership.c',
           '''	if (r->transferee != RAFT_NONE || r->conf_index > r->commit ||
	    r->commit < r->term_start)''',
           '''	if (r->transferee != RAFT_NONE || r->conf_index > r->commit)'''),
    Mutant('conf-change-concurrent',
           '§4.1: one membership change at a time (the previous one committed)',
           'raft/membership.c',
           '''	if (r->transferee != RAFT_NONE || r->conf_index > r->commit ||
	    r->commit < r->term_start)''',
           '''	if (r->transferee != RAFT_NONE || r->commit < r->term_start)'''),
    Mutant('follower-ignores-new-conf',
           '§4.1: a server uses the latest configuration in its log, '
           'committed or not',
           'raft/replication.c',
           '''			if (raft_conf_decode(e->data, e->len, &conf) == 0) {
				r->conf = conf;
				r->conf_index = index;
			}''',
           '''			(void)conf;'''),
    Mutant('truncate-keeps-conf',
           '§4.1: truncating a configuration entry rolls the configuration '
           'back',
           'raft/replication.c',
           '''	if (r->conf_index >= index)
		raft_conf_reload(r);''',
           ''''''),

    # ---- snapshots (§7, Figure 13) ----
    Mutant('snapshot-keeps-conflicting-log',
           'Figure 13 rule 6-7: keep the log after a snapshot only if it '
           'holds the snapshot\'s last entry with its term',
           'raft/snapshot.c',
           '''	if (raft_log_term(&r->log, recv->meta.index, &term) &&
	    term == recv->meta.term) {''',
           '''	if (raft_log_term(&r->log, recv->meta.index, &term)) {'''),
    Mutant('snapshot-below-commit',
           '§7: a snapshot at or below the commit index is only acknowledged '
           '(commit never goes back)',
           'raft/snapshot.c',
           '''	if (m->index <= r->commit) {
		if (r->commit > r->leader_match)''',
           '''	if (false) {
		if (r->commit > r->leader_match)'''),
    Mutant('snapshot-drops-matching-tail',
           'Figure 13 rule 6: a log that holds the snapshot\'s last entry '
           'keeps the entries after it',
           'raft/snapshot.c',
           '''	if (raft_log_term(&r->log, recv->meta.index, &term) &&
	    term == recv->meta.term) {''',
           '''	if (false) {'''),
    Mutant('snapshot-not-reported',
           'raft.h contract: an installed snapshot is handed to the caller to '
           'persist and load',
           'raft/snapshot.c',
           '''	r->snap_installed = true;''',
           ''''''),
    # ---- added in session 3 (issue #15): more single rules ----
    Mutant('restart-trusts-commit',
           'Figure 2: commitIndex is volatile; a restarted server knows '
           'only its snapshot to be committed',
           'raft/raft.c',
           '''	r->commit = r->applied = snap->index;''',
           '''	r->commit = raft_log_last_index(&r->log);
	r->applied = snap->index;'''),
    Mutant('follower-commit-goes-back',
           'Figure 2: a follower raises commitIndex only when the leader\'s '
           'is higher; it never moves back',
           'raft/replication.c',
           '''	if (commit > r->commit)
		r->commit = commit;''',
           '''	r->commit = commit;'''),
    Mutant('apply-uncommitted',
           'Figure 2: only entries up to commitIndex are applied to the '
           'state machine',
           'raft/raft.c',
           '''	uint64_t apply_to = r->commit < last ? r->commit : last;''',
           '''	uint64_t apply_to = last;'''),
    Mutant('read-ack-any-round',
           '§6.4 step 2: a heartbeat response confirms only the ReadIndex '
           'round it echoes',
           'raft/replication.c',
           '''	if (m->context > pr->read_ack)
		pr->read_ack = m->context;''',
           '''	pr->read_ack = r->read_sent_round;'''),
    Mutant('snapshot-install-keeps-conf',
           'Figure 13 / §7: installing a snapshot replaces the configuration '
           'with the snapshot\'s',
           'raft/snapshot.c',
           '''	r->conf = r->snap.conf;''',
           ''''''),
]
