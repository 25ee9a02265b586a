/*
 * The simulated world for raft/: whole clusters in one process on simulated
 * time, with a simulated network (loss, delay with a heavy tail, reordering,
 * duplication, partitions including one-way cuts) and simulated disks
 * (ordered writes that complete later and sometimes stall, crashes that
 * lose unfinished writes, torn tails), crashes placed right where a node
 * has decided something its disk has not recorded yet, all driven by one
 * seeded generator. The unit tests use it as their
 * fixture with faults off; raft-sim adds random faults and a workload.
 *
 * Every raft_step() is followed by the safety checks of check.c; the first
 * violation is kept in sim->failure and the run stops.
 */
#ifndef RINGKV_TESTS_SIM_SIM_H
#define RINGKV_TESTS_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

#define SIM_MAX_NODES 16 /* node ids 1..16; a removed id never returns */
#define SIM_KEYS 4
#define SIM_NEVER UINT64_MAX

struct sim_opts {
	int nodes;              /* initial voters, ids 1..nodes */
	uint64_t seed;
	uint32_t tick_interval; /* time units per tick */
	uint32_t delay_min;     /* network delay range, time units */
	uint32_t delay_max;
	uint32_t disk_min;      /* write latency range */
	uint32_t disk_max;
	uint32_t disk_slow_pct; /* writes that stall 10-20x, percent */
	uint32_t loss_pct;      /* messages dropped, percent */
	uint32_t dup_pct;       /* messages delivered twice, percent */
	uint32_t slow_pct;      /* heavy tail: messages delayed 10-20x, percent */
	/* untrusted input: messages delivered alongside a forged copy that
	 * no correct peer sends but the library must survive (percent): an
	 * acknowledgement past the receiver's log, a heartbeat whose commit
	 * index passes the receiver's log (only to a receiver whose whole
	 * log is committed, so the clamped commit stays safe); and, as from
	 * a caller in error, a "persisted" report whose term the entry it
	 * names does not have (before an APPEND, if a write is queued) */
	uint32_t forge_pct;
	/* crash a node right after it acts on a decision its disk has not
	 * caught up with (percent of such moments): a vote granted, a log
	 * write that overwrites durable entries, a configuration entry
	 * appended; it restarts crash_down_min..max units later */
	uint32_t crash_vote_pct;
	uint32_t crash_truncate_pct;
	uint32_t crash_conf_pct;
	uint32_t crash_commit_pct; /* a leader whose commit index moved, its
				      messages still unsent lost with it */
	uint32_t crash_down_min;
	uint32_t crash_down_max;
	bool pre_vote;
	bool check_quorum;
	bool auto_tick;         /* nodes tick by themselves */
	uint32_t compact_keep;
	uint32_t snapshot_chunk;
	uint32_t max_msg_bytes; /* entry bytes per APPEND */
	uint32_t max_inflight;  /* APPENDs in flight per follower */
	/* sleeping groups (raft/quiesce.c): at each of its ticks a leader is
	 * told RAFT_EV_SLEEP with this chance (percent; it refuses unless
	 * idle); an asleep follower whose leader is down or cut off from it
	 * is woken with `suspect` (node liveness) with wake_pct chance per
	 * tick, and any asleep node is woken for no reason (a false
	 * suspicion) with spurious_wake_pct */
	uint32_t sleep_pct;
	uint32_t wake_pct;
	uint32_t spurious_wake_pct;
	bool trace;             /* print every event */
	bool fixed_ticks;       /* every node ticks at multiples of interval */
};

void sim_opts_default(struct sim_opts *o, int nodes, uint64_t seed);

struct sim_msg;
struct sim_task;

struct sim_disk {
	struct raft_hard_state hs;
	struct raft_snapshot_meta snap;
	uint8_t *snap_data;
	size_t snap_len;
	struct raft_entry *entries; /* snap.index + 1 .. */
	uint64_t n;
	uint64_t cap;
	struct sim_task *pending;   /* FIFO of writes not yet durable */
	struct sim_task *pending_tail;
	uint64_t last_done;         /* completion time of the last write */
	uint64_t frozen_until;      /* a stall: no write completes before */
};

struct sim_node {
	uint64_t id;
	bool exists;     /* created (initial member or added later) */
	bool up;
	bool removed;    /* its removal committed: shut down for good */
	bool member;     /* seen in a committed configuration */
	uint32_t incarnation;
	bool crash_at_overwrite; /* crash at its next write over queued or
				    durable entries (a fault schedule) */
	uint64_t paused_until;   /* a paused process: none of its events
				    (ticks, messages, disk) runs before */
	struct raft *raft;
	struct raft_rng rng;
	struct sim_disk disk;
	/* state machine */
	uint64_t applied;
	uint64_t kv[SIM_KEYS];
	uint64_t kv_index[SIM_KEYS];
	/* checker's view */
	uint64_t seen_commit;   /* commit index after the previous step */
	int seen_role;
	struct sim_hash *mirror; /* (term, chain hash) per index */
	uint64_t mirror_lo;      /* lowest index held in mirror */
	uint64_t mirror_hi;
	uint64_t mirror_cap;
};

struct sim_hash {
	uint64_t term;
	uint64_t hash; /* hash of the whole log prefix up to this index */
};

struct sim_write {
	uint64_t value;  /* unique, 1-based */
	uint32_t key;
	uint64_t node;   /* node it was proposed to */
	uint64_t index;  /* index and term the leader gave it */
	uint64_t term;
	uint64_t invoke;
	uint64_t ack;    /* SIM_NEVER until acknowledged */
	uint64_t applied_at; /* log index where it was applied, 0 unknown */
	bool failed;     /* its slot was taken by another entry */
};

struct sim_read {
	uint64_t id;
	uint32_t key;
	uint64_t node;
	uint32_t incarnation;
	uint64_t invoke;
	uint64_t index;  /* 0 until the leader confirmed */
	uint64_t value;  /* result, once done */
	uint64_t done_at; /* completion time, 0 until done */
	bool live;
};

struct sim_point {
	uint64_t time;
	uint64_t pos; /* prefix maximum of log positions */
};

struct sim_points {
	struct sim_point *v;
	size_t n, cap;
};

struct sim {
	struct sim_opts opts;
	struct raft_rng rng;
	uint64_t now;
	uint64_t seq;
	struct sim_node nodes[SIM_MAX_NODES + 1]; /* by id */
	int n_nodes;     /* highest id created */
	bool cut[SIM_MAX_NODES + 1][SIM_MAX_NODES + 1]; /* a -> b dropped */
	struct sim_event *heap;
	size_t heap_n, heap_cap;
	/* workload */
	struct sim_write *writes;
	size_t n_writes, cap_writes;
	struct sim_read *reads;
	size_t n_reads, cap_reads;
	struct sim_points acks[SIM_KEYS];      /* acknowledged writes by time */
	struct sim_points read_done[SIM_KEYS]; /* completed reads by time */
	/* checker state */
	uint64_t *leader_of_term;
	size_t cap_terms;
	uint64_t cap_terms_used; /* 1 + highest term with a leader */
	struct sim_hash *committed; /* by index: term, prefix hash */
	uint64_t *applied_hash;     /* by index: entry hash */
	size_t cap_index;
	uint64_t max_commit;
	uint64_t max_acked;         /* highest index acknowledged to a client */
	struct sim_gtable *table;   /* (index, term) -> prefix hash */
	/* results */
	bool failed;
	char failure[256];
	uint64_t elections;
	uint64_t checks;
	uint64_t reads_ok;
	uint64_t installs;  /* snapshots installed from a leader */
	uint64_t crashes;
	uint64_t torn;      /* crashes that kept part of the write in progress */
	uint64_t crashes_at; /* crashes scheduled at a vote, truncation, conf */
	uint64_t slowed;     /* messages given a heavy-tailed delay */
	uint64_t forged;     /* forged copies delivered (untrusted input) */
	uint64_t directed;   /* directed schedules played to the end */
	uint64_t stale_tails; /* APPENDs accepted by a follower whose log goes
				 on past them with entries the leader lacks */
	uint64_t rewritten_reports; /* "persisted" reports of a write whose
				       (index, term) the log holds again
				       while a queued write cuts below it */
	uint64_t conf_changes;
	uint64_t transfers;
	uint64_t sleeps;     /* groups put to sleep by their leader */
	uint64_t wakes;      /* asleep nodes woken by liveness (or falsely) */
	uint64_t trace_hash;
	uint64_t sent[SIM_MAX_NODES + 1][RAFT_MSG_TIMEOUT_NOW + 1]; /* by type */
};

struct sim *sim_create(const struct sim_opts *opts);
void sim_destroy(struct sim *s);

/* Time of the next queued event, SIM_NEVER if none. */
uint64_t sim_next_time(const struct sim *s);
/* Process the next event; false when there is none or the run failed. */
bool sim_step(struct sim *s);
/* Process events up to and including time t, then set now = t. */
void sim_run_until(struct sim *s, uint64_t t);
/* Run until pred(s, arg) holds or time t passes; true if it held. */
bool sim_run_while_not(struct sim *s, uint64_t t,
		       bool (*pred)(struct sim *s, void *arg), void *arg);

/* Feed one event to node id now and process its update. */
int sim_event(struct sim *s, uint64_t id, const struct raft_event *ev,
	      struct raft_update *copy_out);
int sim_tick(struct sim *s, uint64_t id);
int sim_campaign(struct sim *s, uint64_t id);
/* Propose "key = new unique value"; returns raft_step's code. */
int sim_propose(struct sim *s, uint64_t id, uint32_t key, uint64_t *value);
/* ReadIndex read of key at id; *read_id (if given) names it in
 * s->reads[read_id - 1]. */
int sim_read(struct sim *s, uint64_t id, uint32_t key, uint64_t *read_id);
int sim_transfer(struct sim *s, uint64_t id, uint64_t target);
/* Leader id: adds id as learner / promotes / removes it. ADD creates the
 * node (empty) if it does not exist. */
int sim_conf_change(struct sim *s, uint64_t leader, uint32_t op,
		    uint64_t id);
void sim_snapshot(struct sim *s, uint64_t id);
void sim_crash(struct sim *s, uint64_t id);
/* Crash id with exactly its first `whole` queued writes reaching the disk
 * (the rest lost, none torn); sim_queued_writes counts them. */
void sim_crash_cut(struct sim *s, uint64_t id, uint64_t whole);
uint64_t sim_queued_writes(const struct sim *s, uint64_t id);
void sim_restart(struct sim *s, uint64_t id);
void sim_cut(struct sim *s, uint64_t from, uint64_t to, bool cut);
void sim_isolate(struct sim *s, uint64_t id, bool cut);
void sim_heal(struct sim *s);
/* Stall id's disk: no write completes (writes queue up) until `until`. A
 * crash ends the stall. */
void sim_disk_freeze(struct sim *s, uint64_t id, uint64_t until);
/* End a stall now: the writes it held complete at once, in order. */
void sim_disk_thaw(struct sim *s, uint64_t id);
/* Pause id's process (SIGSTOP): its ticks, messages and disk completions
 * wait until `until`, or until sim_resume(), then run in order. */
void sim_pause(struct sim *s, uint64_t id, uint64_t until);
void sim_resume(struct sim *s, uint64_t id);
/* Lose every message from (to) id still in flight. */
void sim_drop_from(struct sim *s, uint64_t id);
void sim_drop_to(struct sim *s, uint64_t id);
/* Hold back every message in flight to id by lo..hi more time units each
 * (stuck in a queue while id is cut off: acknowledgements sent before a
 * partition land after it, when a new leader may have taken over). */
void sim_hold_to(struct sim *s, uint64_t id, uint32_t lo, uint32_t hi);

/* The live leader with the highest term, or RAFT_NONE. */
uint64_t sim_leader(const struct sim *s);
struct raft *sim_raft(struct sim *s, uint64_t id);
const struct sim_write *sim_write_get(const struct sim *s, uint64_t value);
/* Record a failure (printf-style); the first one wins. */
void sim_fail(struct sim *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* check.c: the safety checker, called by world.c. */
void check_update(struct sim *s, struct sim_node *n,
		  const struct raft_update *up);
void check_after_step(struct sim *s, struct sim_node *n);
void check_mirror_restore(struct sim *s, struct sim_node *n);
void check_apply(struct sim *s, struct sim_node *n, uint64_t index,
		 const struct raft_entry *e);
void check_read(struct sim *s, const struct sim_read *rd, uint64_t value,
		uint64_t pos);
void check_ack(struct sim *s, struct sim_write *w);
/* After n carried out update up: its disk backs what it acts on and what it
 * acknowledged; after a leader's commit index moved: the commit rule. */
void check_durable(struct sim *s, struct sim_node *n,
		   const struct raft_update *up);
void check_commit_durable(struct sim *s, struct sim_node *n);
void check_reset(struct sim *s);
void check_free(struct sim *s);
uint64_t check_entry_hash(const struct raft_entry *e);

#endif
