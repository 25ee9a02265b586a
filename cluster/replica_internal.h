/*
 * Private to cluster/replica.c and cluster/cluster_core.c: the structures of
 * a core's replication engine (see cluster/replica.h for what it does).
 */
#ifndef RINGKV_CLUSTER_REPLICA_INTERNAL_H
#define RINGKV_CLUSTER_REPLICA_INTERNAL_H

#include <limits.h>
#include <stdatomic.h>
#include <string.h>

#include "cluster/client_addrs.h"
#include "cluster/hosting.h"
#include "cluster/ring_file.h"
#include "cluster/peer_msg.h"
#include "cluster/replica.h"
#include "cluster/replica_ident.h"
#include "shard/install_origin.h"
#include "core/timer.h"
#include "shard/core_log.h"

/* A message held until its group's hard state is durable: an encoded
 * one-message batch frame in the replica's `held` buffer. */
struct held_msg {
	uint64_t to;      /* node */
	uint8_t cls;      /* enum peer_class */
	size_t off;       /* payload (after the length prefix) in held.data */
	size_t len;
};

/* Leader side: one snapshot stream to one follower (cluster/snapshot_send.c). */
enum snap_send_state {
	SNAP_SEND_IDLE,      /* nothing pinned */
	SNAP_SEND_STREAMING, /* version pinned, chunks going out */
	SNAP_SEND_SENT,      /* every chunk handed to the transport; Raft's
			      * SNAPSHOT message now passes, until the follower
			      * matches or the stream times out */
};

struct snap_send {
	struct replica *rep;
	enum snap_send_state state;
	uint64_t to;                  /* follower node id */
	uint64_t raft_index;          /* Raft snapshot it was started for */
	bool forced;                  /* started for a SnapshotRequest (a damaged
				       * follower), not for Raft: no SNAPSHOT
				       * message follows it */
	uint64_t index, term;         /* the pinned version: flushed index, its term */
	struct shard_snapshot snap;   /* pinned while STREAMING */
	size_t file;                  /* snap.files index; nfiles = the manifest */
	uint64_t offset;              /* next byte of that file */
	uint8_t *buf;                 /* one chunk, allocated once per slot */
	struct peer_msg_buf frame;    /* encoded chunk, reused */
	bool reading;                 /* a chunk read is in flight */
	bool abandon;                 /* stop once the read completes */
	struct shard_snapshot_chunk rd;
	struct timer timer;           /* rate limit: the next chunk's time */
	bool timer_armed;
	uint64_t next_us;             /* not before this */
	uint64_t sent_at_us;          /* when SENT began */
	uint64_t bytes;               /* this stream */
	uint64_t total;               /* this stream's size: tables + manifest */
	uint64_t stream;              /* this stream's id (chunks carry it) */
	uint64_t seq;                 /* the next chunk's number in it */
	bool restart_due;             /* the follower asked for a start over */
	uint64_t due_boot, due_seen;  /* that request's generation: the asking
				       * process (boot id) and the stream it
				       * named or last saw */
	uint64_t asked_boot, asked_seen; /* the same of the request this stream
				       * started over for (0: it was not) */
	uint64_t restarted_us;        /* the last one (0: none yet) */
	unsigned restarts_in_row;     /* since the follower last took one */
};

/* Follower side: the stream being received (cluster/snapshot_recv.c). */
enum snap_recv_state {
	SNAP_RECV_IDLE,
	SNAP_RECV_RECEIVING,  /* chunks are written into the staging directory */
	SNAP_RECV_INSTALLING, /* every file durable: waiting for the shard to be
			       * quiet, then the install runs on the ring */
};

struct snap_recv_op;

struct snap_recv {
	enum snap_recv_state state;
	uint64_t from, index, term;   /* stream identity */
	uint64_t stream;              /* the sender's id of it; 0: an old sender */
	uint64_t next_seq;            /* the chunk number expected next */
	uint64_t nacked;              /* the last stream id we asked to restart,
				       * or dropped for a reason of our own */
	uint64_t seen_from, seen;     /* the latest stream id any chunk from
				       * that node carried, taken or not (a
				       * restart request's generation) */
	bool complete;                /* its last chunk is taken (the install
				       * waits for the disk) */
	char *staging;                /* made at the first stream, exact size,
				       * one allocation with: */
	char *path;                   /* of the op in flight (staging/file) */
	size_t path_cap;
	char file[PEER_MSG_MAX_FILE_NAME + 1]; /* file being received */
	uint64_t offset;              /* next expected byte of it */
	uint32_t nfiles;
	int fd;                       /* of `file`, -1 when none */
	uint8_t *manifest;            /* the MANIFEST image, kept in memory */
	size_t manifest_len, manifest_cap;
	struct snap_recv_op *head, *tail; /* ring ops, one in flight at a time */
	struct snap_recv_op *spare;   /* done ones, reused until the stream ends */
	size_t queued_bytes;
	bool op_inflight;
	bool failed;                  /* a write failed: drop until a new stream */
	struct io_op op;
	/* Tables created in the staging directory and not installed: the
	 * next stage unlinks them (no directory listing on the ring). */
	char (*names)[SHARD_FILE_NAME_MAX];
	size_t nnames, names_cap;
	bool stage_fallback;          /* the blocking stage made the directory */
	struct shard_install *install; /* on the ring (shard/shard_install.c) */
	struct shard *retired;        /* the replaced shard: closed once quiet */
	struct io_op retire_op;       /* its files' closes on the ring */
	unsigned retire_closes;       /* of them, in flight */
};

/* Repair from a peer (cluster/replica_repair.c). */
struct replica_repair {
	bool active;                  /* the state machine is damaged: not
				       * leading, not campaigning, asking the
				       * leader for a snapshot */
	uint64_t ticks;               /* ticks since the repair began */
	uint64_t transfer_due;        /* tick of the next leadership transfer */
	uint64_t ask_due;             /* tick of the next snapshot request */
	uint64_t recv_seen;           /* snap_recv_bytes when last looked at */
	uint64_t recv_since;          /* tick it last changed */
	uint64_t target;              /* node of the last leadership transfer */
	uint64_t since_us;            /* when this repair began */
	uint64_t index;               /* snapshot index of the last repair */
	uint64_t transfers, requests, done;
	struct peer_msg_buf frame;    /* the request, encoded (reused) */
};

/* A snapshot install's INSTALLED record (shard/install_origin.h), until
 * the core log's LOG_RESET that follows it is durable (replica_origin.c). */
struct replica_origin {
	uint64_t index;               /* the record's index; 0: none to remove */
	uint64_t reset_batch;         /* the batch holding a LOG_RESET at or past
				       * it; 0: none staged yet */
	struct io_op op;              /* its unlink */
	bool unlinking;
	char name[40];                /* shard-N/INSTALLED, in the data dir */
};

/* The configuration record being written (cluster/replica_conf.c). */
#define REPLICA_CONF_FILE_MAX (20 + RAFT_CONF_ENCODED_MAX + 4)
struct replica_conf_rec {
	struct ring_file file;        /* DATA/shard-N.conf */
	uint64_t want_index;          /* newest configuration to record, its index */
	struct raft_conf want;
	uint64_t writing_index;       /* of the write in flight */
	uint64_t durable_index;       /* the record on disk holds this one */
	uint8_t buf[REPLICA_CONF_FILE_MAX];
	size_t len;
};

/* Leader side of a replica move (cluster/replica_move.c). */
struct replica_move {
	int phase;                    /* enum replica_move_phase */
	uint64_t from, to;
	uint32_t to_core;
	uint64_t conf_index;          /* the change waiting for its commit; 0: none */
	uint64_t started_us, phase_us, sent_us;
	uint64_t snap_base;           /* snap_send_bytes when it started */
	uint64_t leader;              /* HANDED_ON: to whom */
	uint64_t rate;                /* the move's snapshot cap, bytes/s; 0: none */
	int cancelled_in;             /* CANCELLING: the phase it left */
	bool cancel_dropping;         /* CANCELLING: the target is out: DROP it */
	char reason[160];
};

/* A placement request of a peer waiting for this core's hosting record to
 * be durable (cluster/replica_move.c). */
struct placement_wait {
	uint32_t group;
	uint64_t from;                /* the asking leader's node */
	uint64_t op;                  /* PEER_PLACEMENT_HOST or _DROP */
	uint64_t gen;                 /* record generation that carries it */
};
#define PLACEMENT_WAITS 16

/* An amnesiac replica's reason, as its marker holds it (bytes). */
#define AMNESIA_WHY_MAX 256

/* A move's new replica being made on this core, through the ring
 * (cluster/replica_move.c): the staging directory, an empty shard installed
 * there as a snapshot would be, the joining marker; published only then. */
struct replica_create {
	bool active;                  /* a creation is under way */
	uint32_t group;
	uint64_t from;                /* the leader to answer */
	int step;
	struct io_op op;              /* the staging directory's mkdir */
	char staging[PATH_MAX + 16];
	struct shard_config cfg;      /* outlives the installer */
	char dir[PATH_MAX];
	uint8_t *image;               /* an empty shard's MANIFEST */
	size_t image_len;
	struct shard_install *install;
	struct replica *rep;          /* built, not yet published */
	struct ring_file marker;
};

/* A client proposal waiting for its entry's fate. */
struct proposal {
	uint64_t index;
	uint64_t term;
	struct shard_waiter *w;
};

/* What the core log reported for a group at open, copied for raft_restore. */
struct restore_state {
	bool found;
	struct raft_hard_state hs;
	uint64_t start_index, start_term;
	uint64_t first_index;
	struct raft_entry *entries; /* data copied into one block, `blob` */
	size_t n;
	uint8_t *blob;
};

#define FIRST_ELECTION_HOLD 4 /* x election timeout: see replica.tick_hold */

struct wiped_vouch;

struct replica {
	struct cluster_core *core;
	uint32_t id;
	struct shard *shard;
	struct raft *raft;
	char *dir;                    /* DATA/shard-N; one allocation with: */
	char *join_marker;            /* DATA/shard-N.joining: durable while
				       * joining, so a restart before the
				       * catch-up still withholds votes */

	/* Hard state staged and not yet reported durable: every message of
	 * the group waits in `held` until it is. */
	bool hs_staged;
	uint64_t hs_batch;            /* core log batch number that carries it */
	/* Raft's persist_mark of the last write staged into each core log
	 * batch alive (in flight, gathering), at [batch & 1]: the mark its
	 * RAFT_EV_PERSISTED must carry (raft.h) */
	/* the mark of each core log batch not yet durable (numbers in a
	 * window of CORE_LOG_MAX_SYNCS + 1: the stored ones and the pending) */
	struct { uint64_t batch, mark; } persist_marks[CORE_LOG_MAX_SYNCS + 1];
	uint64_t persist_mark_last;   /* of the last write Raft handed out */
	struct peer_msg_buf held;
	struct held_msg *held_v;
	size_t n_held, cap_held;

	/* Apply: entries apply_next..apply_to are committed, not handed in. */
	uint64_t apply_next;
	uint64_t apply_to;
	bool apply_blocked;           /* RKV_EAGAIN: wait for on_apply_ready */
	bool apply_stopped;           /* for good (shard error, snapshot) */

	/* Proposals sorted by (index, term), from head. */
	struct proposal *props;
	size_t props_head, props_tail, props_cap;
	uint64_t applied_term;        /* term of the last entry handed to apply */
	uint64_t lost_at_us;          /* when leadership was last lost */

	/* Reads: asked (waiting for Raft), then ready (index known, waiting
	 * for apply, or failed with index 0). FIFO lists, ids increasing.
	 * The reads of one loop pass are handed to Raft together, as one
	 * read of the last one's id, when the pass's hook services the
	 * replica: the asked reads above read_handed are not in Raft yet. */
	struct replica_read *asked, *asked_tail;
	struct replica_read *ready, *ready_tail;
	uint64_t read_seq;
	uint64_t read_handed;         /* highest read id handed to Raft */
	uint64_t read_batches;        /* times reads were handed to Raft */
	uint64_t n_asked, n_ready;

	bool dirty;                   /* in the core's dirty list */
	bool bg_busy;                 /* in the core's list of shards with
				       * background work under way */
	uint32_t tick_hold;           /* ticks still withheld: a fresh group's
				       * other replicas give its preferred
				       * leader time to start and campaign */
	uint64_t compacted;           /* last RAFT_EV_SNAPSHOT_TAKEN index */
	uint64_t flushed;             /* last flushed index reported by the shard */
	struct restore_state restore;

	uint64_t proposed, overwritten, unknown, snapshots_refused;
	uint64_t leader_seen;         /* last leader known, for leader_changes */
	uint64_t leader_changes;      /* times a different leader became known */
	uint8_t last_role;            /* enum raft_role at the last update (was
				       * it leading: lost_at_us, the metrics) */
	uint32_t pre_votes;           /* pre-vote rounds started */
	uint32_t elections;           /* became a candidate (a new term) */
	uint32_t quorum_losses;       /* stopped leading within its term: it heard
				       * from no majority (check-quorum) */

	/* Snapshots (docs/cluster/snapshots.md). */
	struct shard_config shard_cfg;   /* to reopen the shard after an install */
	struct snap_send *sends[RAFT_MAX_SERVERS]; /* leader: streams, made on use */
	struct snap_recv recv;           /* follower */
	bool installing;                 /* apply and background slices stopped */
	bool joining;                    /* came up empty: votes withheld until
					  * caught up from a leader */
	bool undecided;                  /* came up empty without --initial-cluster-
					  * state existing: a new group or a wiped
					  * node's, told apart by what peers send
					  * (replica.c, undecided_filter) */
	uint64_t join_target;            /* leader commit seen first; caught up
					  * once applied reaches it */
	struct io_op join_op;            /* its unlink */
	struct io_op join_sync_op;       /* then the data dir's fsync */
	int join_res;                    /* the first error of the two */
	unsigned join_unlinking;         /* of the two, not yet completed */
	struct ring_file join_file;      /* the marker rewritten "joining" when an
					  * undecided replica learns the group
					  * has a history */
	bool join_file_ready;            /* join_file initialised */
	uint64_t stale_floor;            /* stale reads wait until applied is back
					  * here: the applied index before a
					  * snapshot install (snapshot_recv.c) */
	uint64_t snap_sent, snap_send_bytes, snap_installed, snap_recv_bytes,
		 snap_rejected, snap_msgs_waiting, votes_withheld, snap_restarted,
		 snap_nacked, snap_restart_stale;
	struct replica_repair repair;
	struct replica_origin origin;    /* replica_origin.c */
	bool log_repairing;              /* rebuilt after its core log was damaged
					  * (core_log_repair.c): until it caught up */
	uint64_t nudged_term;            /* term it last told the leader it lost
					  * its log (replica.c, repair_nudge) */
	struct replica_conf_rec conf_rec; /* DATA/shard-N.conf */
	uint64_t conf_changes;        /* configurations recorded since start */
	bool hosted_added;            /* placed here by the hosting record, not
				       * by the map: no founding configuration */
	bool retired;                 /* removed from its group and dropped here:
				       * steps nothing, serves nothing; its files
				       * go at the next start */
	struct replica_move move;     /* leader: the move it drives */
	bool amnesiac;                /* its core's newest log segment was
				       * damaged: takes no part in its group
				       * (replica_amnesia.c) */
	char *amnesia_why;            /* the damage, from the marker (amnesiac
				       * replicas only) */
	uint64_t amnesia_dropped;     /* Raft messages dropped because of it */
	uint64_t amnesia_leader;      /* the sender of the last APPEND or
				       * HEARTBEAT dropped: a routing hint only */
	uint64_t amnesia_leader_term; /* its term */
	struct replica_wiped *wiped;  /* started empty: asking its group
				       * whether this node was a member
				       * (replica_wiped.c); NULL otherwise */
	uint32_t incarnation;         /* of this node's replica: its Raft id is
				       * replica_ident(node, incarnation) */
	uint64_t amnesia_asked_us;    /* when it last asked the leader to rejoin */
	char amnesia_marker[32];      /* its name in the data dir, while its
				       * unlink runs */
	struct io_op amnesia_op;      /* the marker's unlink */
	struct io_op amnesia_sync_op; /* then the data dir's fsync */
	unsigned amnesia_unlinking;   /* of the two, not yet completed */
	int amnesia_res;              /* the first error of the two */
	uint64_t rejoin_id;           /* leader: a member asking to rejoin as
				       * this new identity; RAFT_NONE: none */
	uint64_t rejoins_done;        /* leader: rejoins driven to the end */
	/* Sleeping (raft/quiesce.c, docs/cluster/replica.md "Sleeping
	 * groups"): in the core's tick list (c->awake) or not. */
	/* Settled fresh after asking (replica_wiped.c fresh()): the members
	 * whose answers said they were asking too, with the data dir each
	 * answered from; NULL otherwise. Such a dir never took part while it
	 * still asks: we vouch for it (answer()). */
	struct wiped_vouch *vouch;
	bool asked_fresh;            /* undecided, but it asked its group and
				      * found it new: Raft's vote rules */
	bool settle_unlink_pending;  /* settled by its first leader after it
				      * asked: the marker goes once a hard
				      * state or entries of it are durable */
	bool settled_here;           /* it started empty and settled fresh in
				      * this process: its pre-vote mark
				      * covers its whole life on this data
				      * dir (answers carry HCOMPLETE) */
	uint64_t term_floor;         /* the term it skipped to when it settled
				      * (its marker's "term" line), 0: none. A
				      * term above it is a history; at it,
				      * with no vote, none (replica_wiped.c) */
	bool awake;
	uint32_t idle_ticks;          /* leader: ticks without a new entry */
	uint64_t idle_last;           /* leader: last index when last looked */
};

struct out_batch {
	struct peer_msg_buf buf;
	struct peer_msg_batch batch;
	bool open;
};

struct cluster_node {
	struct cluster_node_config cfg;
	struct cluster_map map;
	unsigned self_index;
	char data_dir[PATH_MAX - 64];
	int data_dir_fd;                 /* O_DIRECTORY, for fsyncs of it */
	struct cluster_hosting *hosting; /* DATA/hosting as loaded at start-up */
	_Atomic(int16_t) *core_of;       /* [map.shards]: the core holding this
					  * node's replica, -1 = none here (the
					  * map's placement and the record), -2 =
					  * dropped, its files go at the next start.
					  * Written only by the core that
					  * hosts or drops the replica, read by
					  * every core routing a message */
	_Atomic(struct cluster_core *) *cores; /* [cfg.cores], set by each start */
	/* Node liveness: reactor time any core last received a frame from
	 * each node (by map index), written by the receiving core, read by
	 * every core's tick (cluster_core.c, liveness_check). */
	_Atomic(uint64_t) heard_us[CLUSTER_MAP_MAX_NODES];
	/* A Heartbeats frame came from the node: it understands them, so its
	 * heartbeats go coalesced (before that, as RaftMessages: a node of an
	 * older build drops the frame). */
	_Atomic(bool) beats_ok[CLUSTER_MAP_MAX_NODES];
	/* Connections accepted from each node (hello_check): a change wakes
	 * the sleeping groups with a member there (liveness_check). */
	_Atomic(uint64_t) hellos[CLUSTER_MAP_MAX_NODES];
	/* The data dir id each node's latest hello carried (0: none yet);
	 * an empty replica's ask must carry it (replica_wiped.c). */
	_Atomic(uint64_t) peer_dir_id[CLUSTER_MAP_MAX_NODES];
	/* The boot id each node's latest hello carried (0: none yet, or an
	 * older build): a snapshot restart request with another is from an
	 * earlier process of that node (snapshot_send.c). */
	_Atomic(uint64_t) peer_boot_id[CLUSTER_MAP_MAX_NODES];
	uint64_t boot_id;       /* ours: drawn at random for this process,
				 * sent in hellos and snapshot requests */
	uint64_t data_dir_id;   /* ours (DATA/DATADIR-ID), sent in hellos */
	bool data_dir_new;      /* no OPENED at this start: never ran on it */
	bool data_dir_bootstrap; /* made for a new cluster's first start
				  * (--initial-cluster-state bootstrap, kept in
				  * DATADIR-ID): replica_wiped.c */
};

/* One core's coalesced heartbeats for one node, gathered in a pass. */
struct beat_out {
	struct peer_msg_beat *v;
	uint32_t n, cap;
};

struct cluster_core {
	struct cluster_node *node;
	struct reactor *r;
	unsigned index;
	struct core_log *log;
	bool log_repaired;              /* opened by a salvage: every replica of
					 * the core is rebuilt (core_log_repair.c) */
	char log_dir[PATH_MAX];
	struct block_cache *cache;
	struct shard_mem_budget mem_budget; /* the memtables of its shards */
	struct peer_net *net;
	struct peer_core *pc;
	struct replica **by_shard;      /* [map.shards]: NULL when not here */
	struct replica **reps;
	size_t nreps;
	struct replica **dirty, **dirty_next;
	size_t ndirty;
	struct out_batch out[CLUSTER_MAP_MAX_NODES][2]; /* [node index][class] */
	bool out_pending;
	bool in_hook;
	uint64_t bg_sweep_at;           /* reactor time of the next every-shard pass */
	struct replica **bg;            /* replicas whose shard has background */
	size_t nbg;                     /* work under way (shard_background_busy) */
	struct timer tick;
	struct raft_rng rng;
	struct peer_msg_limits limits;
	uint8_t *scratch;               /* proposals are encoded here */
	size_t scratch_cap;
	struct raft_entry *dec;         /* entries of one decoded message */
	uint32_t dec_cap;
	uint32_t election_ticks;
	bool log_failed;
	bool log_full;            /* the last batch failed for lack of disk: new
				   * proposals are refused (RKV_EFULL) until a
				   * batch is durable again */
	uint64_t log_full_since_us;
	bool hooked;                    /* our hook is registered */
	bool dead;                      /* start failed after that: hook is a no-op */
	bool stopping;
	bool grace_over;
	uint64_t stop_deadline_us;
	struct cluster_core_stats stats;
	cluster_frame_fn *frame_fn;     /* Forward frames: the front door's */
	void *frame_arg;
	cluster_shard_swap_fn *swap_fn;  /* a shard was reopened (snapshot) */
	void *swap_arg;
	struct client_addrs client_addrs; /* ours, and what peers' hellos said */
	/* This core's hosting record, DATA/hosting-<i> (replica_move.c). */
	struct cluster_hosting *hosting;
	struct ring_file hosting_file;
	char *hosting_text;             /* CLUSTER_HOSTING_TEXT_MAX, the write's */
	uint64_t hosting_gen;           /* changes made to `hosting` */
	uint64_t hosting_writing;       /* generation being written */
	struct placement_wait waits[PLACEMENT_WAITS];
	unsigned nwaits;
	struct peer_msg_buf placement_buf; /* encoded requests and answers */
	struct replica_create create;   /* one new replica at a time */
	struct cluster_leaders *leaders; /* every shard's leader (leaders.c) */
	/* Sleeping groups: the replicas the tick visits ([map.shards]); the
	 * others sleep (docs/cluster/replica.md, "Sleeping groups"). */
	struct replica **awake;
	size_t nawake;
	size_t sweep_next;              /* sleeping shards' background: the
					 * next of c->reps to look at */
	struct beat_out beats[CLUSTER_MAP_MAX_NODES]; /* [node index] */
	struct peer_msg_buf beat_buf;   /* the Heartbeats frame being sent */
	bool beacon_due;                /* a tick passed: one to every node */
	bool suspected[CLUSTER_MAP_MAX_NODES]; /* node silent for an election
					 * timeout (by map index) */
	uint64_t hellos_seen[CLUSTER_MAP_MAX_NODES]; /* node->hellos at the last tick */
	uint64_t heard_stored[CLUSTER_MAP_MAX_NODES]; /* last this core wrote to
						       * node->heard_us */
	uint64_t beats_sent, beacons_sent, wakes_suspect;
};

/* replica.c, used by cluster_core.c */
void replica_handle_update(struct replica *rep, const struct raft_update *up);
void replica_step(struct replica *rep, const struct raft_event *ev);
void replica_mark_dirty(struct replica *rep);
void replica_service(struct replica *rep);   /* from the hook: apply, reads */
void replica_tick(struct replica *rep);
void replica_persisted(struct replica *rep, const struct core_log_persisted *p);
void replica_flushed(void *arg, struct shard *s, uint64_t flushed_index);
void replica_apply_ready(void *arg, struct shard *s);
void replica_fail_all(struct replica *rep, int prop_status, int read_status);
bool replica_idle(const struct replica *rep);
/* Into the core's tick list (a step woke its Raft, a new replica, work of
 * the replica's own that ticks drive). */
void replica_awake(struct replica *rep);
/* Asleep in Raft and nothing of the replica's own waits for a tick: it may
 * leave the tick list. */
bool replica_may_rest(const struct replica *rep);
void replica_free(struct replica *rep);

/* snapshot_send.c / snapshot_recv.c, used by replica.c and cluster_core.c */
/* Leader: Raft wants to send its SNAPSHOT message m; true when the stream
 * takes it (not to be sent now), false to send it. */
bool snapshot_send_intercept(struct replica *rep, const struct raft_msg *m);
/* Checks every stream (tick): finished, timed out, leadership lost. */
void snapshot_send_tick(struct replica *rep);
/* Leader: the Raft snapshot index of a stream of Raft's to follower `to`
 * under way or sent and not yet taken, or 0. The log after it must stay
 * until the follower takes the stream (replica_flushed keeps it). */
uint64_t snapshot_send_keep(const struct replica *rep, uint64_t to);
/* Stops every stream of rep; true once no read of it is in flight. */
bool snapshot_send_stop(struct replica *rep);
void snapshot_send_free(struct replica *rep);
/* Follower: one decoded chunk from node `from` for this replica. */
void snapshot_recv_chunk(struct replica *rep, uint64_t from, const struct peer_msg_chunk *ch);
/* Follower: a chunk of stream `stream` from the leader `to` went missing;
 * asks it to start over (once per stream: each start over has a new id).
 * SNAPSHOT_STREAM_ANY: whichever stream it finished sending us. */
void snapshot_recv_nack(struct replica *rep, uint64_t to, uint64_t stream);
#define SNAPSHOT_STREAM_ANY UINT64_MAX
/* Follower: Raft's SNAPSHOT message from `from` waits for the streamed
 * state (replica_accept). It travels behind the stream's chunks on the
 * same bulk queue: a stream from `from` not complete by now lost its end. */
void snapshot_recv_waiting(struct replica *rep, uint64_t from);
/* From the hook: an install waiting for the shard to be quiet. */
void snapshot_recv_service(struct replica *rep);
/* Stops receiving; true once no ring op of it is in flight. */
bool snapshot_recv_stop(struct replica *rep);
void snapshot_recv_free(struct replica *rep);
/* The chunk checks (unit-tested): 0, or RKV_EINVAL / RKV_ETOOLARGE with a
 * reason. `expected` is the offset the stream is at for `file`. */
int snapshot_chunk_check(const struct peer_msg_chunk *ch, bool same_file, uint64_t expected,
			 const char **why);

/* Leader: a damaged follower `to` asked for a snapshot (applied: what it
 * says it applied, for the log). Starts a stream as if Raft had asked,
 * unless one to it is under way. */
void snapshot_send_force(struct replica *rep, uint64_t to, uint64_t applied);
/* Leader: follower `to` reports (q->restart_stream) that our stream to it
 * lost a chunk. Starts that stream over now (not after SEND_TIMEOUT). A
 * stale report is ignored: one naming another stream than the current one,
 * one from another process of `to` than its latest hello's (q->boot_id),
 * and a SNAPSHOT_STREAM_ANY report sent before `to` could have seen the
 * current stream (it started over for a request of that process, which
 * had seen no newer stream than q->stream_seen). */
void snapshot_send_restart(struct replica *rep, uint64_t to,
			   const struct peer_msg_snapshot_request *q);
/* The longest wait between two chunks of a stream at this node's
 * --snapshot-rate (0: unlimited). */
uint64_t snapshot_send_chunk_gap_us(const struct cluster_core *c);
/* The stream to `to` under way: its bytes sent and its size. false: none. */
bool snapshot_send_progress(const struct replica *rep, uint64_t to, uint64_t *sent,
			    uint64_t *total);

/* replica_repair.c: repair of a damaged replica from its peers. */
/* Damaged (a table, or apply stopped on one) in a group of several voters. */
bool replica_repair_needed(const struct replica *rep);
/* From replica_tick, after Raft's tick: starts and drives a repair. */
void replica_repair_tick(struct replica *rep);
void replica_wiped_free_vouch(struct replica *rep);
/* Wakes a sleeping replica whose shard is damaged (its repair runs on ticks). */
void replica_repair_wake(struct replica *rep);
/* From replica_accept: false drops the message (TIMEOUT_NOW while damaged). */
bool replica_repair_accept(struct replica *rep, const struct raft_msg *m);
/* Before a message of Raft's leaves: false drops it (a damaged replica's
 * own vote requests: it never campaigns). */
bool replica_repair_send_ok(const struct replica *rep, const struct raft_msg *m);
/* A SnapshotRequest from node `from` (a member of the group per the map). */
void replica_repair_request(struct replica *rep, uint64_t from,
			    const struct peer_msg_snapshot_request *q);
/* May a new stream at `index` start? Above the applied index always; at or
 * below it only while repairing and while the log holds what follows. */
bool replica_repair_stream_ok(const struct replica *rep, uint64_t index);
/* A snapshot at `index` was installed: apply resumes after it. */
void replica_repair_installed(struct replica *rep, uint64_t index);

/* ---- a damaged core log repaired from the peers (core_log_repair.c) ---- */

/*
 * Start-up (blocking), after the core's log refused to open with
 * RKV_ECORRUPT: whether it can be repaired from the peers, and from which
 * segment on it is then read (*salvage_from). 0 with the damage described
 * in `why`; RKV_ECORRUPT with why it cannot (automatic repair off, no peer,
 * the newest segment damaged, ...), nothing changed.
 */
int core_log_repair_plan(struct cluster_core *c, uint64_t *salvage_from, char *why,
			 size_t whylen);
/* core_log_repair_plan's answer when the damage may have taken a hard
 * state (the newest segment, or no whole segment with records after it):
 * every segment goes (*salvage_from is above the newest) and every replica
 * of the core becomes amnesiac (replica_amnesia.c); `why` names the file
 * and the offset. */
#define CORE_LOG_REPAIR_AMNESIA 1
/*
 * Moves what the plan found into DATA/quarantine: every shard dir of the
 * core (a fresh empty one in its place, its joining marker written first)
 * and the segments below salvage_from. With `amnesia`, every replica's
 * amnesiac marker is written first. Nothing deleted; logged. 0 or an
 * error in err. The replicas must be closed.
 */
int core_log_repair_execute(struct cluster_core *c, uint64_t salvage_from, bool amnesia,
			    const char *why, char *err, size_t errlen);

/* ---- an amnesiac replica (cluster/replica_amnesia.c) ---- */

/* Unlinks the marker file `name` in the data dir (it must stay valid until
 * both complete), then fsyncs the data dir, linked: `done` is called for each
 * of the two ops (data = rep). */
void replica_marker_unlink(struct replica *rep, const char *name, struct io_op *unlink_op,
			   struct io_op *sync_op, io_done_fn *done);

/* "shard-N.amnesiac", the marker's name in the data dir. */
void replica_amnesia_marker_name(char *buf, size_t len, uint32_t shard);
/* Start-up (blocking): writes the marker of `shard` durably, its text
 * `why` (what was damaged: file and offset). 0 or a negative errno. */
int replica_amnesia_mark(const char *data_dir, uint32_t shard, const char *why,
			 uint32_t incarnation);
/* Start-up (blocking), before the replica's Raft is made: its
 * incarnation, from its marker (then it is amnesiac, logged with its
 * reason) or from its recorded configuration (0 without one); a marker
 * whose incarnation the record already names a voter is removed. 0, or a
 * negative errno with the file in err. */
int replica_amnesia_load(struct replica *rep, char *err, size_t errlen);
/* The incarnation node `node`'s replica of the group has in the record
 * `conf_path` (DATA/shard-N.conf) into *inc, 0 without a record. A record
 * that cannot be read is an error (err names it), never a guess. Blocking. */
int replica_amnesia_recorded_incarnation(const char *conf_path, uint64_t node, uint32_t *inc,
					 char *err, size_t errlen);
/* The incarnation DATA/shard-N.amnesiac names into *inc, 0 without a
 * marker; a marker without a valid one is an error. Blocking. */
int replica_amnesia_marked_incarnation(const char *data_dir, uint32_t shard, uint32_t *inc,
				       char *err, size_t errlen);
/* Every inbound Raft message for the replica passes here first (on its
 * core): false (dropped, counted) when it is addressed to another identity
 * than the replica's, e.g. an amnesiac replica's old one. */
bool replica_amnesia_accept(struct replica *rep, const struct raft_msg *m);
/* Leader: true when `m` is a replica's request to rejoin the group as a
 * new incarnation (taken, not for Raft). */
bool replica_rejoin_note(struct replica *rep, const struct raft_msg *m);
/* Every tick: an amnesiac replica asks to rejoin and, once a voter of
 * its group as recorded on disk, removes its marker; a leader drives a
 * rejoin it was asked for (remove the old identity, add the new one as a
 * learner, promote it once caught up). */
void replica_amnesia_tick(struct replica *rep);

/* ---- an empty replica asks whether its node was a member (replica_wiped.c) ---- */

/* Start-up (blocking): the data dir's id (DATA/DATADIR-ID, made when
 * missing) and whether the node ever ran on it. 0 or a negative errno. */
int replica_wiped_node_init(struct cluster_node *n, char *err, size_t errlen);
/* A hello from `node` (any core): the data dir id it carried. */
void replica_wiped_hello(struct cluster_node *n, uint64_t node, uint64_t dir_id, bool dir_new);
/* Start-up: the replica started empty in a group of members `conf`: it
 * asks them before it takes part. 0 or -ENOMEM. */
int replica_wiped_begin(struct replica *rep, const struct raft_conf *conf, char *err,
			size_t errlen);
/* Every inbound Raft message passes here first: true when taken (an ask
 * answered, an answer, or anything while the replica asks: dropped). */
bool replica_wiped_filter(struct replica *rep, const struct raft_msg *m);
/* Every tick, first: true while the replica asks (nothing else of its
 * tick runs: no Raft tick, no campaign). */
bool replica_wiped_tick(struct replica *rep);
bool replica_wiped_probing(const struct replica *rep);
/* The joining marker's text once the replica settled after asking
 * ("undecided settled" or "settled", then "term N" when it skipped to N;
 * core_open.c marker_says reads it); its length. */
int replica_settle_marker(char *buf, size_t cap, bool undecided, uint64_t term);
/* No ring op of the probe in flight (the amnesia marker's write, the
 * joining marker's removal): the core may stop. */
bool replica_wiped_idle(const struct replica *rep);
void replica_wiped_free(struct replica *rep);

/* ---- the install origin record (cluster/replica_origin.c) ---- */

/*
 * Start-up, from restore_group, before any check of the log against the
 * shard: reads the shard's INSTALLED record. Returns true when it proves
 * that the shard's flushed index `flushed` came from a snapshot (index,
 * term in *o) the core log never recorded a LOG_RESET for (a kill between
 * the install's exchange and that LOG_RESET): the group's log entries are
 * then to be dropped, Raft restored at the snapshot, and the LOG_RESET
 * completed (replica_origin_complete). False otherwise; a record that
 * proves nothing more (the log holds the snapshot's entry, or the shard
 * flushed past it) is removed here (blocking: start-up).
 */
bool replica_origin_restore_point(struct replica *rep, uint64_t flushed,
				  struct install_origin *o);
/* After raft_restore at *o: stages the LOG_RESET the crash kept from
 * being durable; messages are held until it is (as after a snapshot). */
int replica_origin_complete(struct replica *rep, const struct install_origin *o);
/* The install swapped a snapshot at `index` in (its record is there). */
void replica_origin_installed(struct replica *rep, uint64_t index);
/* A LOG_RESET at `index` was staged for the group. */
void replica_origin_reset_staged(struct replica *rep, uint64_t index);
/* A batch with the group's records is durable. */
void replica_origin_persisted(struct replica *rep, const struct core_log_persisted *p);
/* No unlink of the record in flight. */
bool replica_origin_idle(const struct replica *rep);
void replica_repair_status(const struct replica *rep, struct replica_status *out);
void replica_repair_free(struct replica *rep);
/* The voter with the highest match (leader only), other than `avoid`
 * unless it is the only one; RAFT_NONE when there is none. */
uint64_t replica_best_follower(const struct replica *rep, uint64_t avoid);

/* replica_conf.c: the group's last applied configuration, on disk. */
size_t replica_conf_encode(uint64_t index, const struct raft_conf *conf, uint8_t *buf);
/* Untrusted bytes: 0 or RKV_ECORRUPT. */
int replica_conf_decode(const uint8_t *buf, size_t len, uint64_t *index, struct raft_conf *conf);
/* Start-up (blocking): 0 and the record, 1 when there is none, or an error
 * with the reason in err. */
int replica_conf_load(const char *path, uint64_t *index, struct raft_conf *conf, char *err,
		      size_t errlen);
/* The last component of a path of ours (it has a '/'): a name in its
 * directory, for the ring's *at() calls. */
static inline const char *replica_file_name(const char *path)
{
	return strrchr(path, '/') + 1;
}

/* cluster/core_open.c: the core's replicas at start-up (blocking). The
 * core log's callbacks; every replica of the core opened; one group
 * restored from what the log reported; the log repaired and the replicas
 * opened again after a damaged core log. 0, or an error with err set. */
struct core_log_persisted;
struct core_log_group_state;
struct core_log_config;
void cluster_core_log_persisted(void *arg, const struct core_log_persisted *p);
int cluster_core_log_restore(void *arg, const struct core_log_group_state *st);
int cluster_core_open_replicas(struct cluster_core *c, char *err, size_t errlen);
int cluster_core_restore_group(struct cluster_core *c, struct replica *rep, char *err,
			       size_t errlen);
int cluster_core_log_repair(struct cluster_core *c, struct core_log_config *lc, char *err,
			    size_t errlen);

/* Sets the record's file, DATA/shard-N.conf. */
void replica_conf_init(struct replica *rep);
/* Its path (for start-up's blocking reads). */
void replica_conf_path(const struct replica *rep, char *buf, size_t len);
/* A committed configuration at `index` was applied (or installed with a
 * snapshot): write it through the ring unless a newer one is recorded. */
void replica_conf_record(struct replica *rep, uint64_t index, const struct raft_conf *conf);
/* No write of the record in flight. */
bool replica_conf_idle(const struct replica *rep);

/* replica_move.c */
/* From replica_tick: drives the move this replica leads. */
void replica_move_tick(struct replica *rep);
/* snapshot_send.c: the rate (bytes/s, 0: unlimited) of a snapshot stream
 * to `to`: the node's, or the cap of the move whose target `to` is. */
uint64_t replica_move_send_rate(const struct replica *rep, uint64_t to, uint64_t node_rate);
/* A Placement frame from node `from`, on the core it concerns. */
void replica_move_placement(struct cluster_core *c, uint64_t from,
			    const struct peer_msg_placement *q);
/* The core a Placement frame concerns (its group's, or HOST's core), or -1
 * to answer it right here. */
int replica_move_placement_core(const struct cluster_core *c, const struct peer_msg_placement *q);
/* Core start-up (blocking allowed): loads the core's hosting record, deletes
 * the files of replicas it dropped. 0 or an error with the reason. */
int replica_move_core_start(struct cluster_core *c, char *err, size_t errlen);
/* After the core log is open: releases dropped groups' entries. */
void replica_move_core_log_open(struct cluster_core *c);
bool replica_move_idle(const struct cluster_core *c);
void replica_move_core_free(struct cluster_core *c);

/* cluster_core.c, used by replica_move.c: a replica of `shard` on this
 * core, allocated with its paths and shard config, not opened nor
 * published (NULL: no memory). */
struct replica *cluster_core_replica_alloc(struct cluster_core *c, uint32_t shard);
/* Gives rep its Raft group (raft_create). 0 or an error with the reason. */
int cluster_core_replica_raft(struct cluster_core *c, struct replica *rep, char *err,
			      size_t errlen);

/* replica.c: gate for inbound Raft messages (wiped-node rule, snapshots).
 * False: drop it. */
bool replica_accept(struct replica *rep, const struct raft_msg *m);

/* cluster_core.c, used by replica.c */
void cluster_core_queue_msg(struct cluster_core *c, uint32_t group, const struct raft_msg *m);
void cluster_core_send_now(struct cluster_core *c, uint64_t to, int cls, const void *data,
			   size_t len);
void cluster_core_wake(struct cluster_core *c);
uint64_t cluster_core_batches(struct cluster_core *c);

int cluster_msg_class(const struct raft_msg *m);

#endif
