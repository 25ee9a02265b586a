/*
 * Private to raft/: the group's state and the functions the per-concern files
 * share. Nothing outside raft/ includes this; callers see only raft.h.
 *
 * Main invariants (asserted where they can break):
 *   snapshot index <= commit <= last log index (after restore)
 *   applied (handed out) <= commit; compaction never passes applied
 *   a leader's progress array mirrors conf; other roles have none
 */
#ifndef RINGKV_RAFT_INTERNAL_H
#define RINGKV_RAFT_INTERNAL_H

#include "raft/log.h"
#include "raft/raft.h"

enum progress_state {
	PROGRESS_PROBE,     /* one APPEND at a time until the match is found */
	PROGRESS_REPLICATE, /* pipelined, bounded by the in-flight window */
	PROGRESS_SNAPSHOT,  /* sending a snapshot in chunks, one at a time */
};

struct raft_inflight {
	uint64_t last;  /* last index the APPEND carried */
	uint64_t bytes; /* entry bytes it carried */
};

/* What a leader knows of one member (§5.3 nextIndex[], matchIndex[]). */
struct raft_progress {
	uint64_t id;
	uint64_t match;          /* highest index known replicated (persisted) */
	uint64_t next;           /* next index to send */
	uint64_t read_ack;       /* highest ReadIndex round it acknowledged */
	uint64_t snap_index;     /* SNAPSHOT: snapshot being sent */
	uint64_t snap_offset;    /* SNAPSHOT: bytes the follower holds */
	uint64_t inflight_bytes; /* entry bytes in unacknowledged APPENDs */
	uint8_t state;           /* enum progress_state */
	bool probe_sent;         /* PROBE: an APPEND is out, wait */
	bool recent_active;      /* heard from since the last quorum check */
	bool voter;
	uint32_t stall;          /* heartbeats answered without progress */
	uint8_t inflight_head;
	uint8_t inflight_count;
	struct raft_inflight inflight[RAFT_MAX_INFLIGHT];
};

/* One pending ReadIndex request on a leader. */
struct raft_read {
	uint64_t id;
	uint64_t index; /* commit point it must see */
	uint64_t round; /* heartbeat round that confirms it */
};

/* A snapshot being received in chunks. */
struct raft_snap_recv {
	struct raft_snapshot_meta meta;
	uint8_t *data;
	uint64_t len; /* bytes received, contiguous from 0 */
	uint64_t cap;
};

struct raft {
	struct raft_config cfg;
	uint8_t role;             /* enum raft_role */
	bool hs_dirty;            /* term or vote changed in this step */
	bool snap_installed;      /* this step installed a received snapshot */
	uint64_t term;            /* currentTerm */
	uint64_t vote;            /* votedFor */
	uint64_t prevote_max;     /* highest term it granted a pre-vote for, in
				   * this process (volatile, like pre-votes) */
	uint64_t leader;          /* known leader of term, or RAFT_NONE */
	struct raft_log log;
	uint64_t commit;          /* highest index known committed */
	uint64_t applied;         /* highest index handed out for apply */
	uint64_t persisted;       /* highest index known durable locally */
	uint64_t leader_match;    /* follower: last index known to match leader */
	uint64_t unstable_from;   /* lowest index changed since the last update */
	uint64_t write_mark;      /* persist_mark of the last write handed out */
	uint64_t stale_below;     /* reports of writes older than this mark
				     predate a truncation: ignored */
	struct raft_conf conf;    /* latest configuration in the log */
	uint64_t conf_index;      /* index of its entry (snapshot index if none) */
	struct raft_snapshot_meta snap; /* last snapshot taken or installed */
	void *snap_data;
	size_t snap_len;
	struct raft_snap_recv *recv;
	uint32_t election_elapsed;  /* ticks since leader contact / campaign */
	uint32_t heartbeat_elapsed; /* leader: ticks since last heartbeat */
	uint32_t timeout;           /* randomized election timeout */
	uint32_t votes_granted;     /* bit i: conf.servers[i] granted */
	uint32_t votes_rejected;
	struct raft_progress *progress; /* leader only, mirrors conf */
	uint32_t n_progress;
	uint64_t term_start;      /* leader: index of its term's NOOP */
	uint64_t transferee;      /* leader: transfer target or RAFT_NONE */
	uint32_t transfer_elapsed;
	struct raft_read *reads;  /* leader: pending ReadIndex requests */
	uint32_t n_reads;
	uint32_t cap_reads;
	uint64_t read_next_round; /* round new reads join (not sent yet) */
	uint64_t read_sent_round; /* last round broadcast */
	uint64_t read_done_round; /* last round a quorum acknowledged */
	struct raft_msg *out;     /* messages of the update being built */
	uint32_t n_out;
	uint32_t cap_out;
	struct raft_read_state *ready;
	uint32_t n_ready;
	uint32_t cap_ready;
	int err;                  /* sticky -ENOMEM inside a step */
	bool asleep;              /* timers stopped (quiesce.c) */
};

/* raft.c: role changes (the one place legal transitions are asserted).
 * become_follower adopts term (>= current; a higher one clears the vote);
 * become_candidate raises the term and votes for itself; become_leader
 * (from candidate only) appends the term's NOOP and probes every peer. */
void raft_become_follower(struct raft *r, uint64_t term, uint64_t leader);
void raft_become_precandidate(struct raft *r);
void raft_become_candidate(struct raft *r);
void raft_become_leader(struct raft *r);
/* A zeroed message of this step's update from us at our term; NULL (and
 * r->err = -ENOMEM) when the buffer cannot grow. */
struct raft_msg *raft_msg_new(struct raft *r, uint32_t type, uint64_t to);
/* Report a ReadIndex result (index 0: failed) in this step's update. */
void raft_ready_push(struct raft *r, uint64_t id, uint64_t index);
bool raft_is_voter(const struct raft *r);
/* Leader only: append an entry of the current term to the local log and
 * mark it for persisting; a CONF entry takes effect at once. */
int raft_append_local(struct raft *r, uint32_t type, const void *data,
		      uint32_t len);
/* Restart the election timer with a fresh random timeout. */
void raft_reset_timeout(struct raft *r);

/* election.c: raft_campaign starts a pre-vote or (pre_vote false) an
 * election; transfer marks the votes as ordered by the leader.
 * raft_in_lease: check-quorum on and a leader heard within the timeout. */
void raft_tick(struct raft *r);
void raft_campaign(struct raft *r, bool pre_vote, bool transfer);
void raft_handle_vote(struct raft *r, const struct raft_msg *m);
void raft_handle_vote_resp(struct raft *r, const struct raft_msg *m);
bool raft_in_lease(const struct raft *r);

/* replication.c: send_append sends what pr's flow control allows (a
 * snapshot when the needed entries were compacted; an empty probe only if
 * empty_ok); maybe_commit applies §5.4.2 and reports whether commit moved;
 * follower_commit raises commit, never past the last index. */
void raft_send_append(struct raft *r, struct raft_progress *pr, bool empty_ok);
void raft_bcast_append(struct raft *r);
void raft_bcast_heartbeat(struct raft *r);
void raft_handle_append(struct raft *r, const struct raft_msg *m);
void raft_handle_append_resp(struct raft *r, const struct raft_msg *m);
void raft_handle_heartbeat(struct raft *r, const struct raft_msg *m);
void raft_handle_heartbeat_resp(struct raft *r, const struct raft_msg *m);
void raft_handle_persisted(struct raft *r, uint64_t index, uint64_t term,
			   uint64_t mark);
/* The stored log is cut (a conflict or a snapshot install): reports of the
 * writes handed out so far no longer say what the disk will hold. */
void raft_persist_cut(struct raft *r);
bool raft_maybe_commit(struct raft *r);
void raft_follower_commit(struct raft *r, uint64_t commit);

/* progress.c: reset rebuilds the array from conf, keeping known members;
 * paused says whether flow control forbids another APPEND; sent records
 * one; update records an acknowledgement (true if match grew); decr
 * handles a rejection (true if next moved back); become changes state. */
int raft_progress_reset(struct raft *r);
void raft_progress_free(struct raft *r);
struct raft_progress *raft_progress_get(struct raft *r, uint64_t id);
bool raft_progress_paused(const struct raft *r, const struct raft_progress *pr);
void raft_progress_sent(struct raft *r, struct raft_progress *pr,
			uint64_t last, uint64_t bytes);
bool raft_progress_update(struct raft_progress *pr, uint64_t match);
bool raft_progress_decr(struct raft_progress *pr, uint64_t rejected,
			uint64_t match_hint);
void raft_progress_become(struct raft_progress *pr, uint8_t state);
/* Largest value v such that a quorum of voters has key >= v; the leader
 * contributes self_value when it is a voter. */
uint64_t raft_quorum_value(const struct raft *r, uint64_t self_value,
			   bool read_ack);
int raft_quorum_size(const struct raft_conf *conf);

/* read_index.c: read_index queues (or answers) a request; read_ack
 * releases the reads a quorum confirmed; reads_fail fails them all. */
int raft_read_index(struct raft *r, uint64_t id);
void raft_read_ack(struct raft *r);
void raft_reads_fail(struct raft *r);

/* transfer.c: transfer starts one; transfer_check sends TIMEOUT_NOW once
 * the target's match reaches the last index. */
int raft_transfer(struct raft *r, uint64_t target);
void raft_transfer_check(struct raft *r, struct raft_progress *pr);
void raft_handle_timeout_now(struct raft *r, const struct raft_msg *m);

/* quiesce.c: sleep puts an idle leader's group to sleep (RAFT_EBUSY when
 * something is pending); wake ends it (suspect: the leader's node is
 * thought gone); follower_may_sleep says whether a "sleep" heartbeat
 * (done set) may be obeyed. */
int raft_sleep(struct raft *r);
void raft_wake(struct raft *r, bool suspect);
bool raft_follower_may_sleep(const struct raft *r, const struct raft_msg *m);
/* A learner's election timeout ran out (it never campaigns). */
void raft_learner_timeout(struct raft *r);

/* snapshot.c: snapshot_taken records and compacts; send_snapshot sends
 * pr the chunk at its offset (restarting for a newer snapshot). */
int raft_snapshot_taken(struct raft *r, uint64_t index, const void *data,
			size_t len);
void raft_send_snapshot(struct raft *r, struct raft_progress *pr);
void raft_handle_snapshot(struct raft *r, const struct raft_msg *m);
void raft_handle_snapshot_resp(struct raft *r, const struct raft_msg *m);

/* membership.c: conf_change appends a one-server change; conf_reload
 * recomputes the latest configuration after a truncation; conf_committed
 * makes a leader that is no longer a voter step down. */
int raft_conf_change(struct raft *r, uint32_t op, uint64_t id);
void raft_conf_reload(struct raft *r);
void raft_conf_committed(struct raft *r);
int raft_conf_index_of(const struct raft_conf *conf, uint64_t id);

#endif
