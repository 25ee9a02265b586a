/*
 * One replica: a Raft group's member driven by its core (cluster/replica.h).
 *
 * Invariant: every message a raft_update produces after a hard-state change
 * waits in `held` until the core log reports that hard state durable, so no
 * vote, no acknowledgement and no message of a new term leaves before the
 * term and vote are on disk; messages of the group stay in order because
 * nothing of the group is sent while anything is held. Committed entries go
 * to the shard strictly in index order, from Raft's in-memory log (it keeps
 * every entry above its last compaction, and we compact only up to what the
 * shard flushed, which is below what it applied), so a hand-in refused with
 * RKV_EAGAIN resumes where it stopped.
 */
#include "cluster/replica_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/reactor.h"

static void join_check(struct replica *rep);
static void undecided_settled(struct replica *rep);
static void marker_unlink(struct replica *rep);

static struct cluster_node *node_of(const struct replica *rep)
{
	return rep->core->node;
}

void replica_mark_dirty(struct replica *rep)
{
	struct cluster_core *c = rep->core;

	if (rep->dirty)
		return;
	/* Both lists hold every replica of the core at most once (the flag):
	 * sized for all of them at start, never grown. */
	c->dirty[c->ndirty++] = rep;
	rep->dirty = true;
	cluster_core_wake(c);
}

/* ---- proposals ---------------------------------------------------------- */

static size_t props_count(const struct replica *rep)
{
	return rep->props_tail - rep->props_head;
}

static int props_insert(struct replica *rep, uint64_t index, uint64_t term,
			struct shard_waiter *w)
{
	size_t i;

	if (rep->props_tail == rep->props_cap) {
		size_t n = props_count(rep);

		if (rep->props_head > 0 && n < rep->props_cap / 2) {
			memmove(rep->props, rep->props + rep->props_head, n * sizeof *rep->props);
		} else {
			size_t cap = rep->props_cap ? rep->props_cap * 2 : 16;
			struct proposal *p = malloc(cap * sizeof *p);

			if (!p)
				return -ENOMEM;
			if (n)
				memcpy(p, rep->props + rep->props_head, n * sizeof *p);
			free(rep->props);
			rep->props = p;
			rep->props_cap = cap;
		}
		rep->props_head = 0;
		rep->props_tail = n;
	}
	/* Sorted by (index, term): almost always appended at the tail. */
	i = rep->props_tail;
	while (i > rep->props_head &&
	       (rep->props[i - 1].index > index ||
		(rep->props[i - 1].index == index && rep->props[i - 1].term > term))) {
		rep->props[i] = rep->props[i - 1];
		i--;
	}
	rep->props[i] = (struct proposal){ .index = index, .term = term, .w = w };
	rep->props_tail++;
	return 0;
}

static struct shard_waiter *props_pop(struct replica *rep)
{
	struct shard_waiter *w = rep->props[rep->props_head].w;

	rep->props_head++;
	if (rep->props_head == rep->props_tail)
		rep->props_head = rep->props_tail = 0;
	return w;
}

static void props_fail_all(struct replica *rep, int status)
{
	while (props_count(rep) > 0) {
		struct shard_waiter *w = props_pop(rep);

		if (status == RKV_EUNKNOWN)
			rep->unknown++;
		w->done(w, status, NULL);
	}
}

/*
 * Entry (index, term) is committed: every proposal of an older term is dead
 * whatever its index. A log holding (j, t') with j > index and t' < term
 * would hold at `index` an entry of a term <= t', not this one, and every
 * future leader's log holds this one (Leader Completeness, §5.4). Runs once
 * per new term seen in the applied entries, so O(proposals) per term change.
 */
static void props_fail_older(struct replica *rep, uint64_t term)
{
	struct shard_waiter *dead = NULL, **tail = &dead;
	size_t kept = rep->props_head;

	for (size_t i = rep->props_head; i < rep->props_tail; i++) {
		struct proposal *p = &rep->props[i];

		if (p->term < term) {
			p->w->next = NULL;
			*tail = p->w;
			tail = &p->w->next;
		} else {
			rep->props[kept++] = *p;
		}
	}
	rep->props_tail = kept;
	if (rep->props_head == rep->props_tail)
		rep->props_head = rep->props_tail = 0;
	/* Answered after the queue is consistent: a callback may propose. */
	while (dead) {
		struct shard_waiter *w = dead;

		dead = w->next;
		w->next = NULL;
		rep->overwritten++;
		w->done(w, RAFT_ENOTLEADER, NULL);
	}
}

/* The waiter of the proposal that became entry (index, term), after
 * answering the proposals that entry proves overwritten. */
static struct shard_waiter *props_match(struct replica *rep, uint64_t index, uint64_t term)
{
	if (term > rep->applied_term) {
		rep->applied_term = term;
		props_fail_older(rep, term);
	}
	while (props_count(rep) > 0) {
		struct proposal *p = &rep->props[rep->props_head];

		if (p->index > index)
			return NULL;
		if (p->index == index && p->term == term)
			return p->w;
		/* Another entry is committed at (or before it, below) its
		 * index: the proposal's entry is gone for good. */
		rep->overwritten++;
		struct shard_waiter *w = props_pop(rep);
		w->done(w, RAFT_ENOTLEADER, NULL);
	}
	return NULL;
}

/* ---- reads -------------------------------------------------------------- */

static void read_push(struct replica_read **head, struct replica_read **tail,
		      struct replica_read *rd)
{
	rd->next = NULL;
	if (*tail)
		(*tail)->next = rd;
	else
		*head = rd;
	*tail = rd;
}

/*
 * Raft's answer for read id X covers every asked read up to X: they were
 * handed to it together (reads_hand), the last one's id standing for all.
 * Raft answers its reads in the order it was given them, so the asked list
 * (ids increasing) is taken from its head.
 */
static void reads_take_states(struct replica *rep, const struct raft_read_state *st, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		while (rep->asked && rep->asked->id <= st[i].id) {
			struct replica_read *rd = rep->asked;

			rep->asked = rd->next;
			if (!rep->asked)
				rep->asked_tail = NULL;
			rep->n_asked--;
			rd->index = st[i].index;
			read_push(&rep->ready, &rep->ready_tail, rd);
			rep->n_ready++;
		}
	}
	if (n)
		replica_mark_dirty(rep);
}

/* Fails the asked reads Raft was not given (ids above read_handed, the
 * list's tail) with `status`. */
static void reads_fail_unhanded(struct replica *rep, int status)
{
	struct replica_read *prev = NULL, *rd = rep->asked, *next;

	while (rd && rd->id <= rep->read_handed) {
		prev = rd;
		rd = rd->next;
	}
	if (prev)
		prev->next = NULL;
	else
		rep->asked = NULL;
	rep->asked_tail = prev;
	for (; rd; rd = next) {
		next = rd->next;
		rep->n_asked--;
		rd->done(rd, status);
	}
}

/*
 * Hands this pass's reads to Raft as one read of the last one's id: one
 * raft_step and one place in a ReadIndex round for all of them. Called by
 * the pass's hook before it sends the pass's messages, so the round that
 * confirms them (sent now, or the next one if a round is out) leaves after
 * every one of them arrived, as §6.4 requires; their read index, the
 * commit index now, is at least what it was when each arrived.
 */
static void reads_hand(struct replica *rep)
{
	struct raft_update up;
	uint64_t last;
	int rv;

	if (!rep->asked_tail || rep->asked_tail->id <= rep->read_handed)
		return;
	last = rep->asked_tail->id;
	if (rep->core->stopping) {
		reads_fail_unhanded(rep, RKV_ESHUTDOWN);
		return;
	}
	if (raft_role(rep->raft) != RAFT_LEADER || rep->retired) {
		reads_fail_unhanded(rep, RAFT_ENOTLEADER);
		return;
	}
	rv = raft_step(rep->raft, &(struct raft_event){ .type = RAFT_EV_READ_INDEX,
							 .read = { .id = last } }, &up);
	if (rv != 0) {
		reads_fail_unhanded(rep, rv);
	} else {
		rep->read_handed = last;
		rep->read_batches++;
	}
	replica_handle_update(rep, &up);
}

static void reads_serve(struct replica *rep)
{
	uint64_t applied = shard_applied_index(rep->shard);
	struct replica_read *rd = rep->ready, *prev = NULL, *next;

	while (rd) {
		next = rd->next;
		if (rd->index == 0 || rd->index <= applied) {
			if (prev)
				prev->next = next;
			else
				rep->ready = next;
			if (rep->ready_tail == rd)
				rep->ready_tail = prev;
			rep->n_ready--;
			rd->done(rd, rd->index == 0 ? RAFT_ENOTLEADER : 0);
		} else {
			prev = rd;
		}
		rd = next;
	}
}

static void reads_fail_list(struct replica_read **head, struct replica_read **tail,
			    uint64_t *count, int status)
{
	while (*head) {
		struct replica_read *rd = *head;

		*head = rd->next;
		if (!*head)
			*tail = NULL;
		(*count)--;
		rd->done(rd, status);
	}
}

void replica_fail_all(struct replica *rep, int prop_status, int read_status)
{
	props_fail_all(rep, prop_status);
	reads_fail_list(&rep->asked, &rep->asked_tail, &rep->n_asked, read_status);
	reads_fail_list(&rep->ready, &rep->ready_tail, &rep->n_ready, read_status);
}

/* ---- apply -------------------------------------------------------------- */

/* How far ahead of the entry being applied the first half of a write's
 * cache misses is started; the second half at half the distance. */
#define APPLY_AHEAD 16

static void prefetch_entry(struct replica *rep, uint64_t index, bool node)
{
	const struct raft_entry *e = raft_entry_at(rep->raft, index);

	if (e && e->type == RAFT_ENTRY_NORMAL)
		shard_prefetch(rep->shard, e->data, e->len, node);
}

static void apply_drain(struct replica *rep)
{
	while (!rep->apply_stopped && !rep->apply_blocked && !rep->installing &&
	       rep->apply_next <= rep->apply_to) {
		uint64_t i = rep->apply_next;
		const struct raft_entry *e = raft_entry_at(rep->raft, i);
		struct raft_conf conf;
		struct shard_waiter *w;
		int rv;

		if (!e) {
			log_error("replica %u: committed entry %llu is not in the Raft log; "
				  "apply stopped", rep->id, (unsigned long long)i);
			rep->apply_stopped = true;
			break;
		}
		/* The cache misses of writes a few entries ahead start now,
		 * while this one applies (shard_prefetch). */
		if (i + APPLY_AHEAD <= rep->apply_to)
			prefetch_entry(rep, i + APPLY_AHEAD, false);
		if (i + APPLY_AHEAD / 2 <= rep->apply_to)
			prefetch_entry(rep, i + APPLY_AHEAD / 2, true);
		w = props_match(rep, i, e->term);
		/* Decoded before the hand-in: a waiter's callback may step
		 * Raft, whose log then no longer holds `e` where it was. */
		bool is_conf = e->type == RAFT_ENTRY_CONF &&
			       raft_conf_decode(e->data, e->len, &conf) == 0;
		rv = shard_apply(rep->shard, i,
				 e->type == RAFT_ENTRY_NORMAL ? SHARD_ENTRY_COMMAND : SHARD_ENTRY_NOOP,
				 e->data, e->len, w);
		if (rv == RKV_EAGAIN) {
			rep->apply_blocked = true;
			break;
		}
		if (w)
			props_pop(rep);
		if (rv != 0) {
			log_error("replica %u: apply of entry %llu refused: %s; apply stopped",
				  rep->id, (unsigned long long)i, rkv_strerror(rv));
			rep->apply_stopped = true;
			if (w)
				w->done(w, rv, NULL);
			break;
		}
		rep->apply_next++;
		if (is_conf)
			replica_conf_record(rep, i, &conf);
	}
}

/* ---- updates ------------------------------------------------------------ */

static void hold(struct replica *rep, const struct raft_msg *m)
{
	struct cluster_core *c = rep->core;
	struct peer_msg_item item = { .group = rep->id, .msg = m };
	size_t start = rep->held.len;
	int rv;

	if (rep->n_held == rep->cap_held) {
		size_t cap = rep->cap_held ? rep->cap_held * 2 : 8;
		struct held_msg *v = realloc(rep->held_v, cap * sizeof *v);

		if (!v)
			goto drop;
		rep->held_v = v;
		rep->cap_held = cap;
	}
	rv = peer_msg_encode_batch(&rep->held, &c->limits, &item, 1);
	if (rv != 0)
		goto drop;
	rep->held_v[rep->n_held++] = (struct held_msg){
		.to = replica_ident_node(m->to), .cls = (uint8_t)cluster_msg_class(m),
		.off = start + PEER_MSG_HEADER_SIZE,
		.len = rep->held.len - start - PEER_MSG_HEADER_SIZE,
	};
	c->stats.msgs_held++;
	return;
drop:
	/* Raft resends what is lost (timeouts, heartbeats, probes). */
	c->stats.send_errors++;
}

static void release_held(struct replica *rep)
{
	for (size_t i = 0; i < rep->n_held; i++) {
		const struct held_msg *h = &rep->held_v[i];

		cluster_core_send_now(rep->core, h->to, h->cls, rep->held.data + h->off, h->len);
	}
	rep->n_held = 0;
	rep->held.len = 0;
}

/*
 * Raft's write `mark` went into the gathering core log batch. A batch's
 * report names the last write staged into it: an older write's (index,
 * term) may have been overwritten and written back since (raft.h). Two
 * slots suffice: batch b is staged only once b - 2 has been called back.
 */
static void mark_staged(struct replica *rep, uint64_t mark)
{
	uint64_t batch = cluster_core_batches(rep->core) + 1;
	size_t slot = batch % (CORE_LOG_MAX_SYNCS + 1);

	rep->persist_marks[slot].batch = batch;
	rep->persist_marks[slot].mark = mark;
}

/* The mark of batch `batch`, being called back (0, which Raft ignores, if
 * the group staged no write into it). */
static uint64_t mark_completed(const struct replica *rep, uint64_t batch)
{
	size_t slot = batch % (CORE_LOG_MAX_SYNCS + 1);

	return rep->persist_marks[slot].batch == batch ? rep->persist_marks[slot].mark : 0;
}

/* For the metrics: how elections start and leaders stop (an election
 * storm shows in these before it shows as leader changes). A candidate's
 * every new term raises its hard state; a leader deposed by a higher term
 * does too, while check-quorum steps it down within its term. */
static void count_role_change(struct replica *rep, const struct raft_update *up)
{
	int role = raft_role(rep->raft);
	bool round = rep->last_role != RAFT_PRECANDIDATE;

	if (role == RAFT_CANDIDATE && up->hard_state_changed)
		rep->elections++;
	/* A precandidate whose round got no answer (its peers down or cut
	 * off) starts the next one as a precandidate still: its PREVOTE
	 * messages tell the round. */
	for (size_t i = 0; role == RAFT_PRECANDIDATE && !round && i < up->n_msgs; i++)
		round = up->msgs[i].type == RAFT_MSG_PREVOTE;
	if (role == RAFT_PRECANDIDATE && round)
		rep->pre_votes++;
	if (role == rep->last_role)
		return;
	/* Within its term: check-quorum, or a committed configuration that
	 * left it out (a removal proposed by an earlier leader, committed
	 * by this one), which is no lost quorum. */
	if (rep->last_role == RAFT_LEADER && !up->hard_state_changed &&
	    raft_conf_role(raft_conf(rep->raft), raft_id(rep->raft)) == RAFT_VOTER)
		rep->quorum_losses++;
	rep->last_role = (uint8_t)role;
}

void replica_handle_update(struct replica *rep, const struct raft_update *up)
{
	struct cluster_core *c = rep->core;
	int rv;

	if (up->snapshot) {
		/* Raft installed a received snapshot: replica_accept let its
		 * message in only once the shard holds that state (streamed and
		 * installed before, cluster/snapshot_recv.c), so only the log
		 * must follow: it restarts after the snapshot, durably before
		 * the acknowledgement leaves (held like a hard state). */
		uint64_t index = up->snapshot->index;

		rv = core_log_reset(c->log, rep->id, index, up->snapshot->term);
		if (rv != 0)
			log_error("replica %u: log reset not staged: %s", rep->id, rkv_strerror(rv));
		else
			replica_origin_reset_staged(rep, index);
		rep->hs_staged = true;
		rep->hs_batch = cluster_core_batches(c) + 1;
		if (rep->apply_next <= index)
			rep->apply_next = index + 1;
		if (rep->apply_to < index)
			rep->apply_to = index;
		rep->compacted = index;
		/* The snapshot's members are the group's as of its index. */
		replica_conf_record(rep, index, &up->snapshot->conf);
		props_fail_all(rep, RKV_EUNKNOWN);
		log_info("replica %u: Raft took the snapshot at %llu (shard at %llu)", rep->id,
			 (unsigned long long)index,
			 (unsigned long long)shard_applied_index(rep->shard));
		cluster_core_wake(c);
	}
	if (up->hard_state_changed) {
		rv = core_log_set_hard_state(c->log, rep->id, &up->hard_state);
		if (rv != 0)
			log_error("replica %u: hard state not staged: %s", rep->id, rkv_strerror(rv));
		rep->hs_staged = true;
		rep->hs_batch = cluster_core_batches(c) + 1;
		cluster_core_wake(c);
	}
	if (up->n_persist > 0) {
		rep->persist_mark_last = up->persist_mark;
		rv = core_log_append(c->log, rep->id, up->persist_first, up->persist, up->n_persist);
		if (rv != 0)
			log_error("replica %u: entries %llu.. not staged: %s", rep->id,
				  (unsigned long long)up->persist_first, rkv_strerror(rv));
		else
			mark_staged(rep, up->persist_mark);
		cluster_core_wake(c);
	}
	for (size_t i = 0; i < up->n_msgs; i++) {
		if (up->msgs[i].type == RAFT_MSG_SNAPSHOT &&
		    snapshot_send_intercept(rep, &up->msgs[i]))
			continue;
		if (!replica_repair_send_ok(rep, &up->msgs[i]))
			continue;
		if (rep->hs_staged)
			hold(rep, &up->msgs[i]);
		else
			cluster_core_queue_msg(c, rep->id, &up->msgs[i]);
	}
	if (up->n_apply > 0) {
		uint64_t last = up->apply_first + up->n_apply - 1;

		if (last > rep->apply_to)
			rep->apply_to = last;
		replica_mark_dirty(rep);
	}
	if (up->n_reads > 0)
		reads_take_states(rep, up->reads, up->n_reads);

	bool leader = raft_role(rep->raft) == RAFT_LEADER;
	/* Elected with an empty log by a majority that granted it: settled
	 * as soon as it is elected (the marker's removal is on its way to
	 * disk while the term's first APPEND leaves). */
	if (leader && rep->undecided)
		undecided_settled(rep);
	if (rep->last_role == RAFT_LEADER && !leader)
		rep->lost_at_us = c->r->now_us;
	count_role_change(rep, up); /* last_role becomes the role now */
	/* For the metrics: a leader other than the last one known. */
	uint64_t known = raft_leader(rep->raft);
	if (known != RAFT_NONE && known != rep->leader_seen) {
		rep->leader_seen = known;
		rep->leader_changes++;
	}
	if (!raft_asleep(rep->raft))
		replica_awake(rep);
}

void replica_step(struct replica *rep, const struct raft_event *ev)
{
	struct raft_update up;
	int rv = raft_step(rep->raft, ev, &up);

	if (rv == -ENOMEM)
		log_error("replica %u: out of memory in raft_step", rep->id);
	replica_handle_update(rep, &up);
}

void replica_service(struct replica *rep)
{
	snapshot_recv_service(rep);
	apply_drain(rep);
	reads_hand(rep);
	if (rep->ready)
		reads_serve(rep);
}

bool replica_idle(const struct replica *rep)
{
	return props_count(rep) == 0 && rep->n_asked == 0 && rep->n_ready == 0 &&
	       shard_idle(rep->shard);
}

void replica_awake(struct replica *rep)
{
	struct cluster_core *c = rep->core;

	if (rep->awake || !c->awake)
		return;
	rep->awake = true;
	rep->idle_ticks = 0; /* a woken leader stays up as a new one would */
	c->awake[c->nawake++] = rep;
}

/* Nothing of the replica's own (not Raft's) waits for a tick. */
static bool quiet(const struct replica *rep)
{
	const struct cluster_core *c = rep->core;

	if (c->stopping || rep->amnesiac ||
	    rep->joining || rep->undecided || (rep->tick_hold && raft_term(rep->raft) == 0) ||
	    rep->repair.active ||
	    rep->recv.state != SNAP_RECV_IDLE || rep->installing || rep->log_repairing ||
	    rep->move.phase != REPLICA_MOVE_NONE || rep->rejoin_id != RAFT_NONE ||
	    props_count(rep) || rep->n_asked || rep->n_ready || rep->n_held || rep->hs_staged)
		return false;
	for (unsigned i = 0; i < RAFT_MAX_SERVERS; i++)
		if (rep->sends[i] && rep->sends[i]->state != SNAP_SEND_IDLE)
			return false;
	return true;
}

bool replica_may_rest(const struct replica *rep)
{
	if (rep->retired)
		return true; /* its tick does nothing */
	return rep->raft && raft_asleep(rep->raft) && quiet(rep);
}

/* Election timeouts without a new entry before a leader asks to sleep.
 * One was too few: writes spread over 1,000 shards (a few a second each)
 * put half the groups to sleep between two writes, and the sleep and wake
 * exchanges cost 4x the CPU per write (docs/PERFORMANCE.md, "Session 10:
 * many groups"). */
#define REPLICA_SLEEP_AFTER_TIMEOUTS 10u

/* Leader: a group with no new entry for REPLICA_SLEEP_AFTER_TIMEOUTS
 * election timeouts, and nothing of ours under way, is put to sleep (Raft
 * refuses while a follower lags or anything is pending, raft/quiesce.c). */
static void maybe_sleep(struct replica *rep)
{
	uint64_t last = raft_last_index(rep->raft);

	if (raft_role(rep->raft) != RAFT_LEADER || raft_asleep(rep->raft))
		return;
	if (last != rep->idle_last || props_count(rep) || rep->n_asked || rep->n_ready) {
		rep->idle_last = last;
		rep->idle_ticks = 0;
		return;
	}
	if (rep->idle_ticks < REPLICA_SLEEP_AFTER_TIMEOUTS * rep->core->election_ticks) {
		rep->idle_ticks++;
		return;
	}
	/* Then at every tick until Raft agrees (it refuses right after a
	 * quorum check, until the followers answered again). What of ours
	 * waits for ticks must be done first, or the group would sleep
	 * with it pending. */
	if (quiet(rep))
		replica_step(rep, &(struct raft_event){ .type = RAFT_EV_SLEEP });
}

void replica_tick(struct replica *rep)
{
	struct cluster_node *n = node_of(rep);
	uint64_t timeout_us = (uint64_t)n->cfg.proposal_timeout_ms * 1000u;

	if (rep->retired || replica_wiped_tick(rep))
		return;
	replica_amnesia_tick(rep);
	if (rep->joining)
		join_check(rep);
	if (rep->tick_hold > 0 && raft_term(rep->raft) == 0)
		rep->tick_hold--;
	else if (!rep->joining)
		replica_step(rep, &(struct raft_event){ .type = RAFT_EV_TICK });
	replica_repair_tick(rep);
	snapshot_send_tick(rep);
	replica_move_tick(rep);
	maybe_sleep(rep);
	if (rep->last_role != RAFT_LEADER && props_count(rep) > 0 &&
	    rep->core->r->now_us - rep->lost_at_us >= timeout_us)
		props_fail_all(rep, RKV_EUNKNOWN);
	/* Proposals whose entries cannot be made durable (full disk) are
	 * retried with every batch; if they are still waiting after the
	 * timeout their clients learn that the outcome is unknown (they may
	 * still commit once space frees). */
	if (rep->core->log_full && props_count(rep) > 0 &&
	    rep->core->r->now_us - rep->core->log_full_since_us >= timeout_us)
		props_fail_all(rep, RKV_EUNKNOWN);
}

void replica_persisted(struct replica *rep, const struct core_log_persisted *p)
{
	struct cluster_core *c = rep->core;

	if (p->status == 0) {
		c->log_full = false;
		replica_origin_persisted(rep, p);
		if ((p->hard_state || p->reset) && rep->hs_staged &&
		    p->batch >= rep->hs_batch) {
			rep->hs_staged = false;
			release_held(rep);
		}
		if (rep->settle_unlink_pending && (p->hard_state || p->entries) &&
		    !rep->hs_staged && !rep->join_unlinking &&
		    (!rep->join_file_ready || ring_file_idle(&rep->join_file))) {
			rep->settle_unlink_pending = false;
			marker_unlink(rep);
		}
		if (p->entries)
			replica_step(rep, &(struct raft_event){
				.type = RAFT_EV_PERSISTED,
				.persisted = { .index = p->last_index,
					       .term = p->last_term,
					       .mark = mark_completed(rep, p->batch) } });
		return;
	}
	if (p->status == RKV_EFULL) {
		/* Nothing of the group's part of the batch was written: stage
		 * the current hard state and the unpersisted entries again. */
		uint64_t first = raft_persisted_index(rep->raft) + 1;
		uint64_t last = raft_last_index(rep->raft);
		struct raft_hard_state hs = { raft_term(rep->raft), raft_vote(rep->raft) };

		c->stats.log_full++;
		if (!c->log_full) {
			c->log_full = true;
			c->log_full_since_us = c->r->now_us;
		}
		if (p->hard_state || rep->hs_staged) {
			core_log_set_hard_state(c->log, rep->id, &hs);
			rep->hs_staged = true;
			rep->hs_batch = cluster_core_batches(c) + 1;
		}
		for (uint64_t i = first; i <= last; i++) {
			const struct raft_entry *e = raft_entry_at(rep->raft, i);

			if (!e || core_log_append(c->log, rep->id, i, e, 1) != 0)
				break;
			/* the log as of Raft's last write, copied from it */
			mark_staged(rep, rep->persist_mark_last);
		}
		/* No wake-up: the retry goes with the next pass (the tick timer
		 * makes one every heartbeat), not in a tight loop on a full disk. */
		return;
	}
	if (!c->log_failed)
		log_error("core %u: the Raft log failed (%s): no write is served any more",
			  c->index, rkv_strerror(p->status));
	c->log_failed = true;
}

/* ---- a replica that started empty ----------------------------------------- */

/*
 * A replica that starts with no log and no tables may be a wiped node that
 * voted (and acknowledged entries) before: it forgot both. Until it holds
 * everything that may have been committed with its help, it must not help
 * elect anyone, or an entry stored on it and one other node could be lost
 * (docs/cluster/snapshots.md, "Wiped node"). With --initial-cluster-state
 * existing, such a replica is `joining` (and a marker file keeps it so
 * across restarts until it caught up); while joining:
 *   - vote requests (and TIMEOUT_NOW) are dropped, and it does not tick,
 *     so it never campaigns;
 *   - join_target is the commit index of the first APPEND from a leader
 *     (its whole commit index; heartbeats carry at most our match, and
 *     the leader sends an APPEND right after a snapshot). Joining ends once
 *     the shard applied up to it AND an entry of the current term is
 *     committed and applied here. Any entry this node acknowledged before
 *     it was wiped was committed before the wipe, so either before the
 *     current term began (then it precedes that term's first entry, which
 *     is applied here) or in this term, with this leader, whose commit
 *     index then already covered it when it sent join_target.
 */
/* The marker's unlink, then (linked) the data dir's fsync: both come back. */
static void join_unlinked(struct io_op *op, int res, unsigned flags)
{
	struct replica *rep = op->data;

	(void)flags;
	if (--rep->join_unlinking == 0 && rep->join_res < 0 && rep->join_res != -ENOENT)
		log_warn("replica %u: %s: %s", rep->id, rep->join_marker, strerror(-rep->join_res));
	if (res < 0 && res != -ECANCELED && rep->join_res == 0)
		rep->join_res = res;
}

/*
 * Removes the marker durably (unlinkat, then the data dir's fsync, linked):
 * a restart must not find it once the replica acts as a settled member,
 * or it would come back undecided with a log and could wait for ever.
 */
void replica_marker_unlink(struct replica *rep, const char *name, struct io_op *unlink_op,
			   struct io_op *sync_op, io_done_fn *done)
{
	struct io_ring *io = &rep->core->r->io;
	struct io_uring_sqe *sqe;

	io_ring_reserve(io, 2);
	unlink_op->done = done;
	unlink_op->data = rep;
	sync_op->done = done;
	sync_op->data = rep;
	sqe = io_ring_get_sqe(io);
	io_op_attach(sqe, unlink_op);
	io_uring_prep_unlinkat(sqe, node_of(rep)->data_dir_fd, name, 0);
	sqe->flags |= IOSQE_IO_LINK;
	sqe = io_ring_get_sqe(io);
	io_op_attach(sqe, sync_op);
	io_uring_prep_fsync(sqe, node_of(rep)->data_dir_fd, 0);
}

static void marker_unlink(struct replica *rep)
{
	rep->join_res = 0;
	replica_marker_unlink(rep, replica_file_name(rep->join_marker), &rep->join_op,
			      &rep->join_sync_op,
			      join_unlinked);
	rep->join_unlinking = 2;
}

static void join_check(struct replica *rep)
{
	uint64_t applied = shard_applied_index(rep->shard);
	uint64_t commit = raft_commit_index(rep->raft);
	uint64_t point = applied < commit ? applied : commit, term;

	if (rep->join_target == 0 || applied < rep->join_target ||
	    raft_leader(rep->raft) == RAFT_NONE)
		return;
	/* An entry of the current term, committed, is applied here: so is
	 * everything committed before this term began (§5.4.2). */
	if (!raft_term_at(rep->raft, point, &term) || term != raft_term(rep->raft))
		return;
	/* The marker's rewrite first, or its rename could bring it back after
	 * the unlink below (next pass). */
	if (rep->join_file_ready && !ring_file_idle(&rep->join_file))
		return;
	rep->joining = false;
	if (rep->log_repairing) { /* rebuilt after its core log was damaged */
		rep->log_repairing = false;
		rep->repair.done++;
	}
	/* The marker goes (a crash before this is durable only means the
	 * node waits to catch up once more after a restart). */
	marker_unlink(rep);
	log_info("replica %u: caught up from the leader at index %llu; it votes again", rep->id,
		 (unsigned long long)rep->join_target);
}

/*
 * A replica that started empty without --initial-cluster-state existing is
 * `undecided`: the first replica of a new group, or a wiped node's, which
 * must not help elect a leader that lacks what it acknowledged before (an
 * entry committed on {old leader, this node} would be lost if the third
 * node, lacking it, won with this node's vote). Peers' messages tell:
 *   - a vote request from a candidate with an empty log is granted as Raft
 *     would (all replicas of a new group start empty). In a group with a
 *     history such a candidate holds nothing: it can only win with this
 *     node's vote if the nodes holding the history are down, and then
 *     committed entries are lost (a known limit: docs/cluster/snapshots.md,
 *     "Wiped node"; --initial-cluster-state existing avoids it);
 *   - a vote request from a candidate with a log, a snapshot, or an APPEND
 *     that is not a new group's first (it has a commit index, starts
 *     after index 0, or carries entries of an earlier term) says the group
 *     has a history: the replica becomes `joining` (no vote until it caught
 *     up from a leader, as with `existing`);
 *   - an APPEND of a new group's first leader (after index 0, commit 0,
 *     every entry of the leader's term: nothing was committed before this
 *     term, so nothing can have been lost) settles it as a new member.
 * It ticks and may campaign meanwhile: its vote requests carry an empty
 * log, so members with a history refuse them. The marker file (content
 * "undecided") keeps the state across restarts until settled.
 * Returns 1 to accept the message, -1 to drop it, 0 for the joining rules.
 */
static void join_file_written(struct ring_file *f, int res)
{
	struct replica *rep = f->arg;

	if (res < 0)
		log_warn("replica %u: %s: %s (after a restart it is undecided again)", rep->id,
			 rep->join_marker, strerror(-res));
}

static void undecided_joins(struct replica *rep, const char *why)
{
	rep->undecided = false;
	rep->joining = true;
	log_warn("replica %u: started empty in a group with a history (%s): a wiped node? "
		 "no vote until caught up from a leader", rep->id, why);
	/* The marker says "undecided": make it say joining (empty), so a
	 * restart before the catch-up does not come back undecided, granting
	 * votes to empty candidates again. */
	if (!rep->join_file_ready) {
		ring_file_init(&rep->join_file, &rep->core->r->io, node_of(rep)->data_dir_fd,
			       replica_file_name(rep->join_marker), join_file_written, rep);
		rep->join_file_ready = true;
	}
	if (ring_file_idle(&rep->join_file))
		ring_file_write(&rep->join_file, "", 0);
}

static int undecided_filter(struct replica *rep, const struct raft_msg *m)
{
	/* It asked its group (replica_wiped.c) and found it new: it never
	 * took part, so Raft's own rules are safe; the first leader's
	 * message settles it (its marker goes). */
	if (rep->asked_fresh) {
		if ((m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_SNAPSHOT ||
		     m->type == RAFT_MSG_HEARTBEAT) && m->term >= raft_term(rep->raft))
			undecided_settled(rep);
		return 1;
	}
	switch (m->type) {
	case RAFT_MSG_PREVOTE:
	case RAFT_MSG_VOTE:
		if (m->index == 0)
			return 1;
		undecided_joins(rep, "a candidate with a log");
		return 0;
	case RAFT_MSG_APPEND:
		if (m->term < raft_term(rep->raft))
			return 1; /* Raft refuses a stale leader by itself */
		if (m->index == 0 && m->commit == 0) {
			uint32_t i = 0;

			while (i < m->n_entries && m->entries[i].term == m->term)
				i++;
			if (i == m->n_entries) {
				undecided_settled(rep);
				return 1;
			}
		}
		undecided_joins(rep, "a leader with a history");
		return 0;
	case RAFT_MSG_SNAPSHOT:
		undecided_joins(rep, "a leader sends a snapshot");
		return 0;
	case RAFT_MSG_TIMEOUT_NOW:
		rep->votes_withheld++;
		return -1;
	default:
		return 1;
	}
}

static void undecided_settled(struct replica *rep)
{
	rep->undecided = false;
	/* One that asked keeps its marker until something of the group is
	 * durable in its log (replica_persisted): removed before, a crash
	 * would bring it back empty with no marker, asking again as if it
	 * had never taken part, its pre-vote grants forgotten (its answers
	 * would claim HCOMPLETE: replica_wiped.c). */
	if (rep->asked_fresh)
		rep->settle_unlink_pending = true;
	else
		marker_unlink(rep);
	log_info("replica %u: a new group (its first leader's first entries): it votes as any "
		 "member", rep->id);
}

/*
 * A replica rebuilt after its core log was damaged (core_log_repair.c)
 * holds less than it acknowledged, and the leader, which counts it at its
 * old match, sends it nothing until its next write. At the first heartbeat
 * of a term showing a commit index above its log, it answers what an
 * APPEND would have got: a rejection with its last index as the hint,
 * below its match, which makes the leader set the match back and probe it
 * (raft/replication.c). The leader ignores it as stale otherwise.
 */
static void repair_nudge(struct replica *rep, const struct raft_msg *m)
{
	uint64_t last = raft_last_index(rep->raft), term = 0;
	struct raft_msg r = { .type = RAFT_MSG_APPEND_RESP, .reject = true };

	if (m->term < raft_term(rep->raft) || m->term == rep->nudged_term || m->commit <= last)
		return;
	rep->nudged_term = m->term;
	(void)raft_term_at(rep->raft, last, &term);
	r.from = raft_id(rep->raft);
	r.to = m->from;
	r.term = m->term;
	r.index = last;
	r.hint = last;
	r.log_term = term;
	if (rep->hs_staged)
		hold(rep, &r);
	else
		cluster_core_queue_msg(rep->core, rep->id, &r);
}

bool replica_accept(struct replica *rep, const struct raft_msg *m)
{
	if (rep->undecided) {
		int v = undecided_filter(rep, m);

		if (v != 0)
			return v > 0;
	}

	if (m->type == RAFT_MSG_SNAPSHOT && m->term >= raft_term(rep->raft) &&
	    m->index > raft_commit_index(rep->raft) &&
	    m->index > shard_applied_index(rep->shard)) {
		/* Raft would reset the state machine to it: only once the
		 * shard has the streamed state (the leader sends the message
		 * again with every heartbeat). */
		rep->snap_msgs_waiting++;
		snapshot_recv_waiting(rep, replica_ident_node(m->from));
		return false;
	}
	if (!replica_repair_accept(rep, m))
		return false;
	if (!rep->joining)
		return true;
	switch (m->type) {
	case RAFT_MSG_PREVOTE:
	case RAFT_MSG_VOTE:
	case RAFT_MSG_TIMEOUT_NOW:
		rep->votes_withheld++;
		return false;
	case RAFT_MSG_APPEND:
		if (m->term >= raft_term(rep->raft) && rep->join_target == 0 && m->commit > 0)
			rep->join_target = m->commit;
		return true;
	case RAFT_MSG_HEARTBEAT:
		if (rep->log_repairing)
			repair_nudge(rep, m);
		return true;
	default:
		return true;
	}
}

/* ---- shard hooks ---------------------------------------------------------- */

void replica_flushed(void *arg, struct shard *s, uint64_t flushed_index)
{
	struct replica *rep = arg;
	struct cluster_node *n = node_of(rep);
	uint64_t to = flushed_index;
	struct raft_update up;
	uint64_t desc[1];
	int rv;

	(void)s;
	rep->flushed = flushed_index;
	if (raft_role(rep->raft) == RAFT_LEADER) {
		/* Keep what any follower still lacks, within a bound: a
		 * follower more than snapshot_lag entries behind gets a
		 * snapshot instead, so one that stays down does not pin the
		 * log (and the disk) for ever. */
		const struct raft_conf *conf = raft_conf(rep->raft);
		uint64_t floor = flushed_index > n->cfg.snapshot_lag ?
				 flushed_index - n->cfg.snapshot_lag : 0;

		for (uint32_t i = 0; i < conf->n; i++) {
			uint64_t match, keep;

			if (conf->servers[i].id == raft_id(rep->raft))
				continue;
			if (!raft_follower_match(rep->raft, conf->servers[i].id, &match))
				match = 0;
			/* A follower taking a snapshot needs the log from the
			 * stream's index on, however long the stream lasts:
			 * compacting past it (the floor) would make Raft's
			 * snapshot index move, the sent stream start over,
			 * and a big shard under writes never arrive. */
			keep = snapshot_send_keep(rep, conf->servers[i].id);
			if (keep > match) {
				if (keep < to)
					to = keep;
				continue;
			}
			if (match < to)
				to = match > floor ? match : floor;
		}
	} else {
		uint64_t margin = n->cfg.follower_compact_margin;

		to = to > margin ? to - margin : 0;
	}
	if (to > raft_persisted_index(rep->raft))
		to = raft_persisted_index(rep->raft);
	if (to <= rep->compacted || to <= raft_snapshot(rep->raft)->index)
		return;
	/* The snapshot's data: a descriptor (the shard's flushed index); the
	 * files themselves are streamed out of band (snapshot_send.c). */
	desc[0] = flushed_index;
	rv = raft_step(rep->raft, &(struct raft_event){
		.type = RAFT_EV_SNAPSHOT_TAKEN,
		.snapshot = { .index = to, .data = desc, .len = sizeof desc } }, &up);
	replica_handle_update(rep, &up);
	if (rv != 0) {
		log_warn("replica %u: compaction to %llu refused: %s", rep->id,
			 (unsigned long long)to, rkv_strerror(rv));
		return;
	}
	rep->compacted = to;
	/* One short: a restart must find the entry at its snapshot point. */
	core_log_release(rep->core->log, rep->id, to - 1);
}

void replica_apply_ready(void *arg, struct shard *s)
{
	struct replica *rep = arg;

	(void)s;
	rep->apply_blocked = false;
	replica_mark_dirty(rep);
}

/* ---- the API -------------------------------------------------------------- */

int replica_propose(struct replica *rep, const struct command *cmd, struct shard_waiter *w)
{
	struct cluster_core *c = rep->core;
	struct raft_update up;
	size_t need = command_encoded_size(cmd);
	int rv;

	if (c->stopping)
		return RKV_ESHUTDOWN;
	if (c->log_failed)
		return -EIO;
	if (c->log_full) {
		/* Nothing entered the log: safe to retry. The waiting batch is
		 * tried again on the next pass, so space freed since is seen. */
		cluster_core_wake(c);
		return RKV_EFULL;
	}
	if (raft_role(rep->raft) != RAFT_LEADER || rep->retired)
		return RAFT_ENOTLEADER;
	if (need > c->limits.max_entry_bytes)
		return RKV_ETOOLARGE;
	if (need > c->scratch_cap) {
		size_t cap = c->scratch_cap ? c->scratch_cap : 256;
		uint8_t *b;

		while (cap < need)
			cap *= 2;
		b = realloc(c->scratch, cap);
		if (!b)
			return -ENOMEM;
		c->scratch = b;
		c->scratch_cap = cap;
	}
	command_encode(cmd, c->scratch);
	rv = raft_step(rep->raft, &(struct raft_event){
		.type = RAFT_EV_PROPOSE, .propose = { .data = c->scratch, .len = (uint32_t)need } },
		&up);
	if (rv == 0 && props_insert(rep, up.proposed_index, up.proposed_term, w) != 0) {
		/* The entry is in the log; without a record of it the caller can
		 * only be told the outcome is unknown. */
		log_error("replica %u: out of memory tracking a proposal", rep->id);
		rv = RKV_EUNKNOWN;
	}
	if (rv == 0)
		rep->proposed++;
	replica_handle_update(rep, &up);
	return rv;
}

int replica_read(struct replica *rep, struct replica_read *rd)
{
	if (rep->core->stopping)
		return RKV_ESHUTDOWN;
	if (raft_role(rep->raft) != RAFT_LEADER || rep->retired)
		return RAFT_ENOTLEADER;
	rd->id = ++rep->read_seq;
	rd->index = 0;
	read_push(&rep->asked, &rep->asked_tail, rd);
	rep->n_asked++;
	/* Handed to Raft by this pass's hook (reads_hand); asked from a hook,
	 * by the next pass's, which must then not wait for a completion. */
	replica_mark_dirty(rep);
	if (rep->core->in_hook)
		reactor_poll_again(rep->core->r);
	return 0;
}

bool replica_stale_ok(const struct replica *rep)
{
	/* A replica rebuilt after its core log was damaged holds less than it
	 * acknowledged until it caught up (core_log_repair.c). */
	return shard_applied_index(rep->shard) >= rep->stale_floor && !rep->log_repairing &&
	       !rep->amnesiac;
}

bool replica_read_local_ok(const struct replica *rep)
{
	const struct raft *r = rep->raft;
	const struct raft_conf *conf = raft_conf(r);
	uint64_t commit = raft_commit_index(r), term;
	unsigned voters = 0;

	if (raft_role(r) != RAFT_LEADER)
		return false;
	for (uint32_t i = 0; i < conf->n; i++)
		voters += conf->servers[i].role == RAFT_VOTER;
	if (voters != 1)
		return false;
	if (!raft_term_at(r, commit, &term) || term != raft_term(r))
		return false;
	return shard_applied_index(rep->shard) >= commit;
}

int replica_conf_change(struct replica *rep, int op, uint64_t id, uint64_t *index)
{
	struct raft_update up;
	int rv;

	if (rep->core->stopping)
		return RKV_ESHUTDOWN;
	if (raft_role(rep->raft) != RAFT_LEADER)
		return RAFT_ENOTLEADER;
	rv = raft_step(rep->raft, &(struct raft_event){
		.type = RAFT_EV_CONF_CHANGE, .conf_change = { .op = (uint32_t)op, .id = id } },
		&up);
	if (rv == 0) {
		*index = up.proposed_index;
		log_info("replica %u: membership change %s of node %llu proposed at index %llu",
			 rep->id, op == RAFT_CONF_ADD_LEARNER ? "add-learner" :
				  op == RAFT_CONF_PROMOTE ? "promote" : "remove",
			 (unsigned long long)id, (unsigned long long)up.proposed_index);
	}
	replica_handle_update(rep, &up);
	return rv;
}

int replica_transfer(struct replica *rep, uint64_t to)
{
	struct raft_update up;
	int rv;

	if (raft_role(rep->raft) != RAFT_LEADER)
		return RAFT_ENOTLEADER;
	rv = raft_step(rep->raft, &(struct raft_event){ .type = RAFT_EV_TRANSFER,
							 .transfer = { .target = to } }, &up);
	replica_handle_update(rep, &up);
	return rv;
}

const struct raft_conf *replica_members(const struct replica *rep)
{
	return raft_conf(rep->raft);
}

uint64_t replica_leader(const struct replica *rep)
{
	uint64_t leader = raft_leader(rep->raft);

	/* Amnesiac and no member yet: Raft knows no leader; the hint lets
	 * the front door forward the shard's requests. A node id. */
	if (leader == RAFT_NONE && rep->amnesiac)
		leader = rep->amnesia_leader;
	return replica_ident_node(leader);
}

bool replica_is_leader(const struct replica *rep)
{
	return raft_role(rep->raft) == RAFT_LEADER;
}

bool replica_retired(const struct replica *rep)
{
	return rep->retired;
}

struct shard *replica_shard(struct replica *rep)
{
	return rep->shard;
}

uint32_t replica_id(const struct replica *rep)
{
	return rep->id;
}

void replica_status(const struct replica *rep, struct replica_status *out)
{
	const struct raft *r = rep->raft;

	memset(out, 0, sizeof *out);
	out->shard = rep->id;
	out->role = raft_role(r);
	out->term = raft_term(r);
	out->leader = replica_ident_node(raft_leader(r));
	out->commit = raft_commit_index(r);
	out->applied = shard_applied_index(rep->shard);
	out->last_index = raft_last_index(r);
	out->persisted = raft_persisted_index(r);
	out->snapshot_index = raft_snapshot(r)->index;
	if (out->role == RAFT_LEADER) {
		const struct raft_conf *conf = raft_conf(r);

		for (uint32_t i = 0; i < conf->n; i++) {
			uint64_t match;

			if (conf->servers[i].id == raft_id(r) ||
			    !raft_follower_match(r, conf->servers[i].id, &match))
				continue;
			out->followers[out->n_followers++] = (struct replica_follower){
				.node = replica_ident_node(conf->servers[i].id), .match = match,
				.lag = out->last_index > match ? out->last_index - match : 0,
			};
		}
	}
	out->proposals = props_count(rep);
	out->reads = rep->n_asked + rep->n_ready;
	out->read_batches = rep->read_batches;
	out->apply_stopped = rep->apply_stopped;
	out->proposed = rep->proposed;
	out->overwritten = rep->overwritten;
	out->unknown = rep->unknown;
	out->snapshots_refused = rep->snapshots_refused;
	out->leader_changes = rep->leader_changes;
	out->pre_votes = rep->pre_votes;
	out->elections = rep->elections;
	out->quorum_losses = rep->quorum_losses;
	out->snap_sent = rep->snap_sent;
	out->snap_send_bytes = rep->snap_send_bytes;
	out->snap_installed = rep->snap_installed;
	out->snap_recv_bytes = rep->snap_recv_bytes;
	out->snap_rejected = rep->snap_rejected;
	out->snap_restarted = rep->snap_restarted;
	out->snap_restart_stale = rep->snap_restart_stale;
	out->snap_nacked = rep->snap_nacked;
	out->votes_withheld = rep->votes_withheld;
	out->joining = rep->joining;
	out->amnesiac = rep->amnesiac;
	out->amnesia_dropped = rep->amnesia_dropped;
	snprintf(out->amnesia_why, sizeof out->amnesia_why, "%s",
		 rep->amnesia_why ? rep->amnesia_why : "");
	out->undecided = rep->undecided;
	out->probing = replica_wiped_probing(rep);
	out->snapshot_receiving = rep->recv.state != SNAP_RECV_IDLE;
	out->sleeping = raft_asleep(r);
	replica_repair_status(rep, out);
	out->conf = *raft_conf(r);
	out->retired = rep->retired;
	out->conf_recorded = rep->conf_rec.durable_index;
	out->conf_changes = rep->conf_changes;
	for (unsigned i = 0; i < RAFT_MAX_SERVERS; i++)
		if (rep->sends[i] && rep->sends[i]->state == SNAP_SEND_STREAMING)
			out->snapshot_sending = true;
}

void replica_free(struct replica *rep)
{
	if (!rep)
		return;
	if (rep->raft)
		raft_destroy(rep->raft);
	snapshot_send_free(rep);
	snapshot_recv_free(rep);
	replica_repair_free(rep);
	peer_msg_buf_free(&rep->held);
	free(rep->held_v);
	free(rep->props);
	free(rep->restore.entries);
	free(rep->restore.blob);
	free(rep->dir);
	free(rep->amnesia_why);
	replica_wiped_free(rep);
	replica_wiped_free_vouch(rep);
	free(rep);
}
