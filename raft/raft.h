/*
 * raft/: the Raft consensus algorithm as a pure, deterministic state machine.
 *
 * One `struct raft` is one member of one Raft group. It does no I/O, reads no
 * clock and calls no rand(): everything arrives as an event (a message, a
 * tick, a proposal, "persisted up to", a snapshot taken, ...) given to
 * raft_step(), and everything the caller must do leaves in one
 * `struct raft_update`: hard state and entries to persist, messages to send,
 * committed entries to apply, ReadIndex results, a snapshot to install.
 *
 * The caller's contract for each update, in this order:
 *   1. if `hard_state_changed`, make term and vote durable;
 *      if `snapshot` is set, make it durable, reset the state machine to it
 *      and drop every stored log entry (the log restarts after it);
 *      both must be durable before any message of this update is sent.
 *   2. start writing `persist` (truncate the stored log after persist_first-1,
 *      then append); when durable, give back RAFT_EV_PERSISTED with the index
 *      and term of the last entry written and the update's `persist_mark`.
 *      Writes must complete in order. One report may cover several writes
 *      (a group commit): it names the last entry and mark of the last one.
 *      The mark is what makes a report trustworthy: a write issued before a
 *      later truncation may name an (index, term) that the log holds again
 *      after a rewrite, while the disk is about to be cut back below it by
 *      the queued truncating write; the library ignores every report whose
 *      mark is older than the last truncation (or snapshot install), and
 *      waits for the report of the write that carried it.
 *   3. send `msgs` (they may go before step 2 completes: the leader writes its
 *      own log in parallel with replication, and followers only acknowledge
 *      what RAFT_EV_PERSISTED reported).
 *   4. apply `apply` to the state machine, in order; serve `reads` once the
 *      state machine has applied up to each read's index.
 * Every pointer in an update stays valid until the next raft_step() or
 * raft_destroy() on the same group; the caller copies what it keeps.
 *
 * Log storage: the library keeps the entries since its last compaction in
 * memory (it needs their terms to check consistency and their bytes to
 * replicate); the caller's WAL is the durable copy, fed back through
 * raft_restore() after a restart. Compaction (RAFT_EV_SNAPSHOT_TAKEN) bounds
 * that memory.
 */
#ifndef RINGKV_RAFT_RAFT_H
#define RINGKV_RAFT_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/errors.h"

#define RAFT_MAX_SERVERS 9  /* members (voters + learners) of one group */
#define RAFT_MAX_INFLIGHT 16 /* hard cap on in-flight APPENDs per follower */
#define RAFT_NONE 0         /* node id 0 means "nobody" */

/* Error codes: RAFT_E* in core/errors.h's table (rkv_strerror names them). */

/*
 * The caller-owned random generator (xorshift64*, seeded by splitmix64).
 * Each group draws its randomized election timeouts from the generator its
 * config points at, so one seed fixes a whole simulated cluster's run.
 */
struct raft_rng {
	uint64_t state;
};

void raft_rng_seed(struct raft_rng *rng, uint64_t seed);
uint64_t raft_rng_next(struct raft_rng *rng);
/* A value in [0, n); n > 0. */
uint64_t raft_rng_below(struct raft_rng *rng, uint64_t n);

enum raft_role {
	RAFT_FOLLOWER,
	RAFT_PRECANDIDATE, /* probing with pre-votes, term not yet raised */
	RAFT_CANDIDATE,
	RAFT_LEADER,
};

const char *raft_role_name(int role);

enum raft_entry_type {
	RAFT_ENTRY_NORMAL = 1, /* client command: apply it */
	RAFT_ENTRY_NOOP = 2,   /* a new leader's first entry: apply does nothing */
	RAFT_ENTRY_CONF = 3,   /* membership: data is raft_conf_encode() output */
};

struct raft_entry {
	uint64_t term;  /* term of the leader that created it */
	uint32_t type;  /* enum raft_entry_type */
	uint32_t len;   /* bytes at data */
	void *data;     /* owned by whoever holds this entry */
};

enum raft_server_role {
	RAFT_VOTER = 1,
	RAFT_LEARNER = 2, /* receives the log, never votes nor counts */
};

struct raft_server {
	uint64_t id;
	uint32_t role; /* enum raft_server_role */
};

/* A group's membership. It changes one server at a time (§4.1 of Ongaro's
 * dissertation), so any two successive configurations share a quorum. */
struct raft_conf {
	uint32_t n;
	struct raft_server servers[RAFT_MAX_SERVERS];
};

#define RAFT_CONF_ENCODED_MAX (4 + RAFT_MAX_SERVERS * 12)

/* Serialize into buf (at least RAFT_CONF_ENCODED_MAX bytes); returns bytes. */
size_t raft_conf_encode(const struct raft_conf *conf, uint8_t *buf);
/* Parse untrusted bytes; 0 or RKV_ECORRUPT. */
int raft_conf_decode(const void *buf, size_t len, struct raft_conf *conf);
/* The role of id in conf, or 0 when it is not a member. */
uint32_t raft_conf_role(const struct raft_conf *conf, uint64_t id);

struct raft_snapshot_meta {
	uint64_t index;        /* last entry the snapshot covers */
	uint64_t term;         /* its term */
	struct raft_conf conf; /* membership as of index */
};

struct raft_hard_state {
	uint64_t term; /* currentTerm */
	uint64_t vote; /* votedFor in term, or RAFT_NONE */
};

enum raft_msg_type {
	RAFT_MSG_PREVOTE = 1,
	RAFT_MSG_PREVOTE_RESP,
	RAFT_MSG_VOTE,
	RAFT_MSG_VOTE_RESP,
	RAFT_MSG_APPEND,
	RAFT_MSG_APPEND_RESP,
	RAFT_MSG_HEARTBEAT,
	RAFT_MSG_HEARTBEAT_RESP,
	RAFT_MSG_SNAPSHOT,
	RAFT_MSG_SNAPSHOT_RESP,
	RAFT_MSG_TIMEOUT_NOW,
};

const char *raft_msg_name(int type);

/* VOTE context: the campaign was ordered by a leadership transfer, so the
 * voter must not ignore it because it still hears from a leader. */
#define RAFT_CONTEXT_TRANSFER 1

/*
 * One peer message. Fields by type:
 *   PREVOTE/VOTE:      index/log_term = candidate's last log entry; context
 *   *_RESP of votes:   reject
 *   APPEND:            index/log_term = previous entry; entries follow it;
 *                      commit = leader's commit index
 *   APPEND_RESP:       reject=0: index = highest index matching the leader;
 *                      reject=1: index = rejected prev index, hint/log_term =
 *                      follower's guess of the last matching entry
 *   HEARTBEAT:         commit; context = ReadIndex round; done = "sleep"
 *                      (raft/quiesce.c)
 *   HEARTBEAT_RESP:    context echoed; done = "asleep" (obeyed a sleep);
 *                      reject = told to sleep, could not
 *   SNAPSHOT:          index/log_term = snapshot; conf; offset/data/len one
 *                      chunk; done on the last one
 *   SNAPSHOT_RESP:     index = snapshot, offset = bytes the follower holds
 */
struct raft_msg {
	uint32_t type;       /* enum raft_msg_type */
	bool reject;
	bool done;
	uint64_t from;
	uint64_t to;
	uint64_t term;
	uint64_t index;
	uint64_t log_term;
	uint64_t commit;
	uint64_t hint;
	uint64_t context;
	uint64_t offset;
	const struct raft_entry *entries;
	uint32_t n_entries;
	uint32_t len;
	const void *data;
	const struct raft_conf *conf;
};

struct raft_read_state {
	uint64_t id;    /* the caller's read id from RAFT_EV_READ_INDEX */
	uint64_t index; /* serve once applied >= index; 0: failed, leader lost */
};

enum raft_conf_op {
	RAFT_CONF_ADD_LEARNER = 1,
	RAFT_CONF_PROMOTE = 2, /* learner to voter, once caught up */
	RAFT_CONF_REMOVE = 3,  /* any member, the leader included */
};

enum raft_event_type {
	RAFT_EV_TICK = 1,
	RAFT_EV_RECEIVE,
	RAFT_EV_PROPOSE,
	RAFT_EV_PERSISTED,
	RAFT_EV_SNAPSHOT_TAKEN,
	RAFT_EV_READ_INDEX,
	RAFT_EV_TRANSFER,
	RAFT_EV_CONF_CHANGE,
	RAFT_EV_CAMPAIGN, /* start an election now (tests, operators) */
	RAFT_EV_SLEEP,    /* leader: put the idle group to sleep, or
			     RAFT_EBUSY (raft/quiesce.c) */
	RAFT_EV_WAKE,     /* end a sleep; wake.suspect: the leader's node is
			     thought gone, campaign soon */
	RAFT_EV_SKIP_TERM, /* move to term skip.term as a follower with no
			      vote, if it is above the current term (what a
			      message of that term would do): a replica that
			      may not vote in a term at or below it (a wiped
			      node's probe, docs/cluster/wiped-rule-proposal.md) */
};

struct raft_event {
	uint32_t type; /* enum raft_event_type */
	union {
		const struct raft_msg *msg; /* RECEIVE; caller keeps ownership */
		struct {
			const void *data;
			uint32_t len;
		} propose;
		struct {
			uint64_t index; /* last entry now durable */
			uint64_t term;  /* its term */
			uint64_t mark;  /* persist_mark of the last write it
					   covers, to drop stale reports */
		} persisted;
		struct {
			/* <= the last index handed out in apply and <=
			 * raft_persisted_index(): the WAL holds the current
			 * log up to it, so dropping it loses nothing */
			uint64_t index;
			const void *data;
			size_t len;
		} snapshot;
		struct {
			uint64_t id;
		} read;
		struct {
			uint64_t target;
		} transfer;
		struct {
			uint32_t op; /* enum raft_conf_op */
			uint64_t id;
		} conf_change;
		struct {
			bool suspect;
		} wake;
		struct {
			uint64_t term;
		} skip;
	};
};

/* What one raft_step() asks the caller to do; see the contract above. */
struct raft_update {
	bool hard_state_changed;
	struct raft_hard_state hard_state;
	const struct raft_snapshot_meta *snapshot; /* install, or NULL */
	const void *snapshot_data;
	size_t snapshot_len;
	uint64_t persist_first; /* index of persist[0] */
	const struct raft_entry *persist;
	size_t n_persist;
	uint64_t persist_mark;  /* n_persist > 0: this write's number (1, 2,
				   ...), echoed in RAFT_EV_PERSISTED */
	const struct raft_msg *msgs;
	size_t n_msgs;
	uint64_t apply_first; /* index of apply[0] */
	const struct raft_entry *apply;
	size_t n_apply;
	const struct raft_read_state *reads;
	size_t n_reads;
	uint64_t proposed_index; /* PROPOSE/CONF_CHANGE: where the entry went */
	uint64_t proposed_term;
};

struct raft_config {
	uint64_t id;                 /* this member's node id, not RAFT_NONE */
	uint32_t election_ticks;     /* timeouts are random in [e, 2e) */
	uint32_t heartbeat_ticks;    /* < election_ticks */
	bool pre_vote;               /* §9.6: probe before raising the term */
	bool check_quorum;           /* §6.2: leaders step down without a quorum;
	                                followers ignore votes while in lease */
	uint32_t max_inflight_msgs;  /* APPENDs in flight per follower, <= 16 */
	uint64_t max_inflight_bytes; /* entry bytes in flight per follower */
	uint64_t max_msg_bytes;      /* entry bytes per APPEND (>= 1 entry) */
	uint32_t snapshot_chunk;     /* bytes per SNAPSHOT message */
	uint32_t compact_keep;       /* entries kept behind a snapshot */
	struct raft_rng *rng;        /* caller-owned; outlives the group */
};
/* There are no deliberate-bug switches in the library: the mutation tests
 * (tests/sim/mutate.py) break a rule in a copy of the source instead. */

struct raft;

/* Fill cfg with defaults (election 10, heartbeat 1, pre-vote and
 * check-quorum on); the caller still sets id and rng. */
void raft_config_default(struct raft_config *cfg);

/* Allocate a group. *out is owned by the caller (raft_destroy). Returns 0,
 * -EINVAL for a bad config or -ENOMEM. The group is a follower with an
 * empty log until raft_restore(). */
int raft_create(struct raft **out, const struct raft_config *cfg);
void raft_destroy(struct raft *r);

/*
 * Load durable state, once, before the first raft_step(): hard state, the
 * last snapshot (index 0 and a bootstrap configuration for a new group;
 * an empty configuration for a server that will be added later) with its
 * data, and the stored entries that follow it. Everything given counts as
 * persisted. Data is copied. Returns 0, -EINVAL or -ENOMEM.
 */
int raft_restore(struct raft *r, const struct raft_hard_state *hs,
		 const struct raft_snapshot_meta *snap, const void *snap_data,
		 size_t snap_len, const struct raft_entry *entries, size_t n);

/*
 * Feed one event; fills *up (cleared first). Returns 0, or for caller
 * requests (PROPOSE, READ_INDEX, TRANSFER, CONF_CHANGE) RAFT_ENOTLEADER,
 * RAFT_EBUSY, RAFT_EBADCONF, RAFT_ENOTREADY, -EINVAL; or -ENOMEM, after which
 * the group must be destroyed. Messages with a bad shape are dropped.
 */
int raft_step(struct raft *r, const struct raft_event *ev,
	      struct raft_update *up);

/* Read-only views, for callers, tests and the simulator's checkers. */
int raft_role(const struct raft *r);
uint64_t raft_id(const struct raft *r);
uint64_t raft_term(const struct raft *r);
/* The highest term this node granted a pre-vote for since it was created
 * (0: none). Not durable: a pre-vote changes no state. */
uint64_t raft_prevote_max(const struct raft *r);
uint64_t raft_vote(const struct raft *r);
uint64_t raft_leader(const struct raft *r);
uint64_t raft_commit_index(const struct raft *r);
uint64_t raft_persisted_index(const struct raft *r);
uint64_t raft_last_index(const struct raft *r);
/* Lowest index whose entry raft_entry_at() can return. */
uint64_t raft_first_index(const struct raft *r);
/* Term at index if known (in the log or the snapshot's last entry). */
bool raft_term_at(const struct raft *r, uint64_t index, uint64_t *term);
const struct raft_entry *raft_entry_at(const struct raft *r, uint64_t index);
const struct raft_conf *raft_conf(const struct raft *r);
const struct raft_snapshot_meta *raft_snapshot(const struct raft *r);
/* Asleep (raft/quiesce.c): ticks do nothing until an event wakes it; the
 * caller need not tick it at all. */
bool raft_asleep(const struct raft *r);
/* Bytes of heap and struct this group holds now. */
size_t raft_footprint(const struct raft *r);
/* Leader only: the highest index known replicated on member `id` (its
 * matchIndex). False when not leader or `id` is not a member. */
bool raft_follower_match(const struct raft *r, uint64_t id, uint64_t *match);

#endif
