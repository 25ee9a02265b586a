/*
 * The group's life cycle and the step function: creation, restore, the
 * dispatch of every event, the term rules common to all messages (§5.1:
 * "if RPC request or response contains term T > currentTerm: set
 * currentTerm = T, convert to follower"), the role transitions (asserted in
 * role_set, the one place that knows which are legal), and the assembly of
 * the update handed back to the caller.
 */
#include "core/errors.h"
#include "raft/internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void raft_config_default(struct raft_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->election_ticks = 10;
	cfg->heartbeat_ticks = 1;
	cfg->pre_vote = true;
	cfg->check_quorum = true;
	cfg->max_inflight_msgs = 8;
	cfg->max_inflight_bytes = 1 << 20;
	cfg->max_msg_bytes = 64 << 10;
	cfg->snapshot_chunk = 64 << 10;
	cfg->compact_keep = 0;
}

int raft_create(struct raft **out, const struct raft_config *cfg)
{
	if (cfg->id == RAFT_NONE || !cfg->rng || cfg->election_ticks < 2 ||
	    cfg->heartbeat_ticks == 0 ||
	    cfg->heartbeat_ticks >= cfg->election_ticks ||
	    cfg->max_inflight_msgs == 0 ||
	    cfg->max_inflight_msgs > RAFT_MAX_INFLIGHT ||
	    cfg->snapshot_chunk == 0)
		return -EINVAL;
	struct raft *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->cfg = *cfg;
	r->role = RAFT_FOLLOWER;
	raft_log_init(&r->log);
	r->unstable_from = 1;
	raft_reset_timeout(r);
	*out = r;
	return 0;
}

void raft_destroy(struct raft *r)
{
	if (!r)
		return;
	raft_log_free(&r->log);
	raft_progress_free(r);
	if (r->recv)
		free(r->recv->data);
	free(r->recv);
	free(r->snap_data);
	free(r->reads);
	free(r->out);
	free(r->ready);
	free(r);
}

int raft_restore(struct raft *r, const struct raft_hard_state *hs,
		 const struct raft_snapshot_meta *snap, const void *snap_data,
		 size_t snap_len, const struct raft_entry *entries, size_t n)
{
	if (snap->conf.n > RAFT_MAX_SERVERS || hs->term < snap->term)
		return -EINVAL;
	r->term = hs->term;
	r->vote = hs->vote;
	r->snap = *snap;
	if (snap_len) {
		r->snap_data = malloc(snap_len);
		if (!r->snap_data)
			return -ENOMEM;
		memcpy(r->snap_data, snap_data, snap_len);
		r->snap_len = snap_len;
	}
	raft_log_reset(&r->log, snap->index, snap->term);
	r->conf = snap->conf;
	r->conf_index = snap->index;
	for (size_t i = 0; i < n; i++) {
		const struct raft_entry *e = &entries[i];
		if (e->term < raft_log_last_term(&r->log) || e->term > hs->term)
			return -EINVAL;
		int rv = raft_log_append(&r->log, e->term, e->type, e->data,
					 e->len);
		if (rv != 0)
			return rv;
	}
	raft_conf_reload(r);
	r->commit = r->applied = snap->index;
	r->persisted = raft_log_last_index(&r->log);
	r->unstable_from = r->persisted + 1;
	return 0;
}

bool raft_is_voter(const struct raft *r)
{
	return raft_conf_role(&r->conf, r->cfg.id) == RAFT_VOTER;
}

void raft_reset_timeout(struct raft *r)
{
	r->election_elapsed = 0;
	r->timeout = r->cfg.election_ticks +
		     (uint32_t)raft_rng_below(r->cfg.rng, r->cfg.election_ticks);
}

/*
 * Legal role changes. A leader only ever steps down; nobody becomes leader
 * without first being a candidate of the same term.
 */
static void role_set(struct raft *r, uint8_t to)
{
	static const bool legal[4][4] = {
		/* to:   FOLLOWER PRECAND CAND  LEADER */
		[RAFT_FOLLOWER] = {true, true, true, false},
		[RAFT_PRECANDIDATE] = {true, true, true, false},
		[RAFT_CANDIDATE] = {true, true, true, true},
		[RAFT_LEADER] = {true, false, false, false},
	};
	assert(legal[r->role][to]);
	(void)legal; /* only the assert reads it: unused under NDEBUG */
	if (r->role == RAFT_LEADER) {
		raft_reads_fail(r);
		raft_progress_free(r);
		r->transferee = RAFT_NONE;
	}
	r->role = to;
}

void raft_become_follower(struct raft *r, uint64_t term, uint64_t leader)
{
	assert(term >= r->term);
	/* what matches the leader's log is known per leader AND term: the
	 * same node leading a later term may have lost entries it sent in
	 * the earlier one (they were not durable on it yet) */
	if (leader != r->leader || term != r->term)
		r->leader_match = 0;
	if (term > r->term) {
		r->term = term;
		r->vote = RAFT_NONE;
		r->hs_dirty = true;
	}
	role_set(r, RAFT_FOLLOWER);
	r->leader = leader;
	raft_reset_timeout(r);
}

void raft_become_precandidate(struct raft *r)
{
	role_set(r, RAFT_PRECANDIDATE);
	r->leader = RAFT_NONE;
	r->leader_match = 0;
	r->votes_granted = r->votes_rejected = 0;
	raft_reset_timeout(r);
}

void raft_become_candidate(struct raft *r)
{
	role_set(r, RAFT_CANDIDATE);
	r->term++;
	r->vote = r->cfg.id;
	r->hs_dirty = true;
	r->leader = RAFT_NONE;
	r->leader_match = 0;
	r->votes_granted = r->votes_rejected = 0;
	raft_reset_timeout(r);
}

void raft_become_leader(struct raft *r)
{
	assert(r->role == RAFT_CANDIDATE && r->vote == r->cfg.id);
	role_set(r, RAFT_LEADER);
	r->leader = r->cfg.id;
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	r->transferee = RAFT_NONE;
	r->read_next_round = 1;
	r->read_sent_round = r->read_done_round = 0;
	if (raft_progress_reset(r) != 0)
		return;
	/* §8: a new leader commits a blank entry of its term, which also
	 * commits every earlier entry (§5.4.2) and opens ReadIndex. */
	if (raft_append_local(r, RAFT_ENTRY_NOOP, NULL, 0) != 0)
		return;
	r->term_start = raft_log_last_index(&r->log);
	raft_maybe_commit(r);
	for (uint32_t i = 0; i < r->n_progress; i++)
		if (r->progress[i].id != r->cfg.id)
			raft_send_append(r, &r->progress[i], true);
}

int raft_append_local(struct raft *r, uint32_t type, const void *data,
		      uint32_t len)
{
	assert(r->role == RAFT_LEADER);
	int rv = raft_log_append(&r->log, r->term, type, data, len);
	if (rv != 0) {
		r->err = rv;
		return rv;
	}
	uint64_t index = raft_log_last_index(&r->log);
	if (index < r->unstable_from)
		r->unstable_from = index;
	if (type == RAFT_ENTRY_CONF) {
		struct raft_conf conf;
		if (raft_conf_decode(data, len, &conf) == 0) {
			r->conf = conf;
			r->conf_index = index;
		}
	}
	return 0;
}

struct raft_msg *raft_msg_new(struct raft *r, uint32_t type, uint64_t to)
{
	assert(to != r->cfg.id);
	if (r->n_out == r->cap_out) {
		uint32_t cap = r->cap_out ? r->cap_out * 2 : 2;
		struct raft_msg *grown = realloc(r->out, cap * sizeof(*grown));
		if (!grown) {
			r->err = -ENOMEM;
			return NULL;
		}
		r->out = grown;
		r->cap_out = cap;
	}
	struct raft_msg *m = &r->out[r->n_out++];
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->from = r->cfg.id;
	m->to = to;
	m->term = r->term;
	return m;
}

void raft_ready_push(struct raft *r, uint64_t id, uint64_t index)
{
	if (r->n_ready == r->cap_ready) {
		uint32_t cap = r->cap_ready ? r->cap_ready * 2 : 4;
		struct raft_read_state *grown =
			realloc(r->ready, cap * sizeof(*grown));
		if (!grown) {
			r->err = -ENOMEM;
			return;
		}
		r->ready = grown;
		r->cap_ready = cap;
	}
	r->ready[r->n_ready].id = id;
	r->ready[r->n_ready].index = index;
	r->n_ready++;
}

static bool is_leader_msg(uint32_t type)
{
	return type == RAFT_MSG_APPEND || type == RAFT_MSG_HEARTBEAT ||
	       type == RAFT_MSG_SNAPSHOT || type == RAFT_MSG_TIMEOUT_NOW;
}

/* Answer a message from an older term so its sender learns ours (a stale
 * leader steps down; a pre-candidate learns it cannot win). */
static void reply_stale(struct raft *r, const struct raft_msg *m)
{
	if (m->type == RAFT_MSG_PREVOTE) {
		struct raft_msg *resp =
			raft_msg_new(r, RAFT_MSG_PREVOTE_RESP, m->from);
		if (resp)
			resp->reject = true;
	} else if (is_leader_msg(m->type) &&
		   (r->cfg.check_quorum || r->cfg.pre_vote)) {
		raft_msg_new(r, RAFT_MSG_APPEND_RESP, m->from);
	}
}

/* Asleep: `id` was told to sleep (it had answered since the last quorum
 * check when the group fell asleep; recent_active stays as it was). */
static bool told_to_sleep(struct raft *r, uint64_t id)
{
	const struct raft_progress *pr = raft_progress_get(r, id);

	return pr && pr->recent_active;
}

static void receive(struct raft *r, const struct raft_msg *m)
{
	if (m->to != r->cfg.id || m->from == RAFT_NONE || m->from == r->cfg.id)
		return;
	if (m->type == RAFT_MSG_SNAPSHOT && (!m->conf || (m->len && !m->data)))
		return;
	if (m->type == RAFT_MSG_APPEND && m->n_entries && !m->entries)
		return;
	/* any message wakes a sleeping group but "sleep" itself and the
	 * answers to heartbeats of our term from members told to sleep
	 * (raft/quiesce.c): one not told (it had not answered, its answer
	 * held behind a slow fsync) may lag, and its late answer must wake
	 * us to catch it up */
	if (r->asleep && !(m->type == RAFT_MSG_HEARTBEAT && m->done) &&
	    !(m->type == RAFT_MSG_HEARTBEAT_RESP && m->term == r->term && !m->reject &&
	      told_to_sleep(r, m->from))) {
		/* woken by its leader, a follower pings it (raft_wake) unless
		 * that proves the leader awake: a plain heartbeat may be one
		 * sent before "sleep" and overtaken by it */
		if (r->role != RAFT_LEADER && m->from == r->leader &&
		    m->type != RAFT_MSG_HEARTBEAT)
			r->asleep = false;
		else
			raft_wake(r, false);
	}
	if (m->term > r->term) {
		bool vote_req = m->type == RAFT_MSG_PREVOTE ||
				m->type == RAFT_MSG_VOTE;
		/* §4.2.3: while a leader is heard from, higher-term votes
		 * are ignored so removed servers cannot disrupt. */
		if (vote_req && m->context != RAFT_CONTEXT_TRANSFER &&
		    raft_in_lease(r))
			return;
		if (m->type == RAFT_MSG_PREVOTE ||
		    (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)) {
			/* a pre-vote never changes anyone's term */
		} else {
			raft_become_follower(r, m->term,
					     is_leader_msg(m->type) ? m->from
								    : RAFT_NONE);
		}
	} else if (m->term < r->term) {
		reply_stale(r, m);
		return;
	}
	if (is_leader_msg(m->type) && m->term == r->term) {
		if (r->role == RAFT_LEADER)
			return; /* two leaders in one term: impossible input */
		if (r->role != RAFT_FOLLOWER || r->leader != m->from)
			raft_become_follower(r, m->term, m->from);
	}
	switch (m->type) {
	case RAFT_MSG_PREVOTE:
	case RAFT_MSG_VOTE:
		raft_handle_vote(r, m);
		break;
	case RAFT_MSG_PREVOTE_RESP:
	case RAFT_MSG_VOTE_RESP:
		raft_handle_vote_resp(r, m);
		break;
	case RAFT_MSG_APPEND:
		raft_handle_append(r, m);
		break;
	case RAFT_MSG_APPEND_RESP:
		raft_handle_append_resp(r, m);
		break;
	case RAFT_MSG_HEARTBEAT:
		raft_handle_heartbeat(r, m);
		break;
	case RAFT_MSG_HEARTBEAT_RESP:
		raft_handle_heartbeat_resp(r, m);
		break;
	case RAFT_MSG_SNAPSHOT:
		raft_handle_snapshot(r, m);
		break;
	case RAFT_MSG_SNAPSHOT_RESP:
		raft_handle_snapshot_resp(r, m);
		break;
	case RAFT_MSG_TIMEOUT_NOW:
		raft_handle_timeout_now(r, m);
		break;
	default:
		break;
	}
}

static int propose(struct raft *r, const struct raft_event *ev,
		   struct raft_update *up)
{
	if (r->role != RAFT_LEADER)
		return RAFT_ENOTLEADER;
	if (r->transferee != RAFT_NONE)
		return RAFT_EBUSY;
	if (ev->propose.len && !ev->propose.data)
		return -EINVAL;
	int rv = raft_append_local(r, RAFT_ENTRY_NORMAL, ev->propose.data,
				   ev->propose.len);
	if (rv != 0)
		return rv;
	up->proposed_index = raft_log_last_index(&r->log);
	up->proposed_term = r->term;
	raft_bcast_append(r);
	return 0;
}

/* Hand the caller everything this step produced; see raft.h's contract. */
static void finish(struct raft *r, struct raft_update *up)
{
	uint64_t last = raft_log_last_index(&r->log);
	for (uint32_t i = 0; i < r->n_out; i++) {
		struct raft_msg *m = &r->out[i];
		if (m->type == RAFT_MSG_APPEND && m->n_entries)
			m->entries = raft_log_get(&r->log, m->index + 1);
	}
	up->msgs = r->out;
	up->n_msgs = r->n_out;
	if (r->hs_dirty) {
		up->hard_state_changed = true;
		up->hard_state.term = r->term;
		up->hard_state.vote = r->vote;
		r->hs_dirty = false;
	}
	if (r->snap_installed) {
		up->snapshot = &r->snap;
		up->snapshot_data = r->snap_data;
		up->snapshot_len = r->snap_len;
		r->snap_installed = false;
	}
	if (r->unstable_from <= last) {
		assert(r->unstable_from > r->log.offset);
		up->persist_first = r->unstable_from;
		up->persist = raft_log_get(&r->log, r->unstable_from);
		up->n_persist = last - r->unstable_from + 1;
		up->persist_mark = ++r->write_mark;
	}
	r->unstable_from = last + 1;
	uint64_t apply_to = r->commit < last ? r->commit : last;
	if (apply_to > r->applied) {
		up->apply_first = r->applied + 1;
		up->apply = raft_log_get(&r->log, r->applied + 1);
		up->n_apply = apply_to - r->applied;
		r->applied = apply_to;
	}
	up->reads = r->ready;
	up->n_reads = r->n_ready;
}

int raft_step(struct raft *r, const struct raft_event *ev,
	      struct raft_update *up)
{
	memset(up, 0, sizeof(*up));
	r->n_out = 0;
	r->n_ready = 0;
	if (r->err)
		return r->err;
	int rv = 0;
	switch (ev->type) {
	case RAFT_EV_TICK:
		raft_tick(r);
		break;
	case RAFT_EV_RECEIVE:
		receive(r, ev->msg);
		break;
	case RAFT_EV_PROPOSE:
		if (r->role == RAFT_LEADER)
			raft_wake(r, false);
		rv = propose(r, ev, up);
		break;
	case RAFT_EV_PERSISTED:
		raft_handle_persisted(r, ev->persisted.index,
				      ev->persisted.term, ev->persisted.mark);
		break;
	case RAFT_EV_SNAPSHOT_TAKEN:
		rv = raft_snapshot_taken(r, ev->snapshot.index,
					 ev->snapshot.data, ev->snapshot.len);
		break;
	case RAFT_EV_READ_INDEX:
		if (r->role == RAFT_LEADER)
			raft_wake(r, false);
		rv = raft_read_index(r, ev->read.id);
		break;
	case RAFT_EV_TRANSFER:
		if (r->role == RAFT_LEADER)
			raft_wake(r, false);
		rv = raft_transfer(r, ev->transfer.target);
		break;
	case RAFT_EV_CONF_CHANGE:
		if (r->role == RAFT_LEADER)
			raft_wake(r, false);
		rv = raft_conf_change(r, ev->conf_change.op, ev->conf_change.id);
		if (rv == 0) {
			up->proposed_index = r->conf_index;
			up->proposed_term = r->term;
		}
		break;
	case RAFT_EV_CAMPAIGN:
		raft_wake(r, false);
		if (r->role != RAFT_LEADER)
			raft_campaign(r, r->cfg.pre_vote, false);
		break;
	case RAFT_EV_SLEEP:
		rv = raft_sleep(r);
		break;
	case RAFT_EV_WAKE:
		raft_wake(r, ev->wake.suspect);
		break;
	case RAFT_EV_SKIP_TERM:
		if (ev->skip.term > r->term)
			raft_become_follower(r, ev->skip.term, RAFT_NONE);
		break;
	default:
		rv = -EINVAL;
		break;
	}
	finish(r, up);
	if (r->err)
		return r->err;
	return rv;
}

int raft_role(const struct raft *r)
{
	return r->role;
}

uint64_t raft_id(const struct raft *r)
{
	return r->cfg.id;
}

uint64_t raft_term(const struct raft *r)
{
	return r->term;
}

uint64_t raft_prevote_max(const struct raft *r)
{
	return r->prevote_max;
}

uint64_t raft_vote(const struct raft *r)
{
	return r->vote;
}

uint64_t raft_leader(const struct raft *r)
{
	return r->leader;
}

uint64_t raft_commit_index(const struct raft *r)
{
	return r->commit;
}

uint64_t raft_persisted_index(const struct raft *r)
{
	return r->persisted;
}

uint64_t raft_last_index(const struct raft *r)
{
	return raft_log_last_index(&r->log);
}

uint64_t raft_first_index(const struct raft *r)
{
	return r->log.offset + 1;
}

bool raft_term_at(const struct raft *r, uint64_t index, uint64_t *term)
{
	return raft_log_term(&r->log, index, term);
}

const struct raft_entry *raft_entry_at(const struct raft *r, uint64_t index)
{
	return raft_log_get(&r->log, index);
}

const struct raft_conf *raft_conf(const struct raft *r)
{
	return &r->conf;
}

const struct raft_snapshot_meta *raft_snapshot(const struct raft *r)
{
	return &r->snap;
}

size_t raft_footprint(const struct raft *r)
{
	size_t bytes = sizeof(*r) + raft_log_footprint(&r->log) + r->snap_len;
	bytes += r->n_progress * sizeof(*r->progress);
	bytes += r->cap_reads * sizeof(*r->reads);
	bytes += r->cap_out * sizeof(*r->out);
	bytes += r->cap_ready * sizeof(*r->ready);
	if (r->recv)
		bytes += sizeof(*r->recv) + r->recv->cap;
	return bytes;
}

bool raft_follower_match(const struct raft *r, uint64_t id, uint64_t *match)
{
	if (r->role != RAFT_LEADER)
		return false;
	for (uint32_t i = 0; i < r->n_progress; i++) {
		if (r->progress[i].id == id) {
			*match = r->progress[i].match;
			return true;
		}
	}
	return false;
}
