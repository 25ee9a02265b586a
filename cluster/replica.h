/*
 * The replication engine: every shard replica a node holds is one member of
 * a Raft group (group id = shard id), driven by the core that owns it.
 *
 * Per node, one `struct cluster_node` (shared, read-only after start-up
 * except for the per-core pointers it publishes); per core, one
 * `struct cluster_core`: the core's Raft log (shard/core_log.h, one
 * fdatasync per loop pass for all its groups), its shard replicas opened in
 * replicated mode, one timer that ticks every group, the core's peer
 * transport, and per destination node one outgoing Raft batch per loop pass.
 *
 * Ordering per raft_update (raft/raft.h's contract):
 *   1. hard state -> core_log_set_hard_state; entries -> core_log_append;
 *   2. messages: while a hard state of the group is staged and not yet
 *      reported durable, EVERY message of the group is held (copied,
 *      encoded) and released in order from the persisted callback; otherwise
 *      it joins this pass's batch for its destination (votes, heartbeats,
 *      TIMEOUT_NOW: CONTROL; appends and snapshots: BULK);
 *   3. committed entries -> shard_apply, in order, the proposer's waiter
 *      attached on the leader; RKV_EAGAIN stops the hand-in until the
 *      shard's on_apply_ready;
 *   4. ReadIndex results wait until the shard's applied index reaches them.
 * The loop-pass hook (registered before the transport's send hook) sends the
 * batches and calls core_log_flush.
 *
 * Threading: a cluster_core and its replicas belong to one core; every call
 * is made there. Raft messages for a group of another core cross over the
 * reactor's SPSC rings as their encoded bytes.
 */
#ifndef RINGKV_CLUSTER_REPLICA_H
#define RINGKV_CLUSTER_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/map.h"
#include "cluster/peer.h"
#include "raft/raft.h"
#include "shard/shard.h"

struct cluster_node;
struct cluster_core;
struct replica;

struct cluster_node_config {
	const struct cluster_map *map; /* copied */
	uint64_t self_id;              /* this node, a member of map */
	unsigned cores;                /* this node's core count */
	const char *data_dir;          /* DIR: DIR/core-<i>/ logs, DIR/shard-<id>/ */
	struct shard_config shard;     /* template: id, dir, replicated and the
					* hooks are set per shard; cache per core */
	size_t cache_bytes;            /* block cache of each core; 0: 8 MiB */
	uint64_t memtable_budget;      /* memtables of each core's shards
					* together (shard_mem_budget); 0: none */
	uint32_t election_timeout_ms;  /* 0: 300 */
	uint32_t heartbeat_ms;         /* tick; 0: 50 */
	uint64_t core_log_segment_size; /* 0: default (tests use small ones) */
	bool core_log_buffered;        /* core_log_config.buffered */
	uint64_t follower_compact_margin; /* entries a follower keeps behind its
					   * flushed index; 0: 8192 */
	uint64_t snapshot_rate;        /* bytes/s a snapshot streams at; 0: unlimited */
	uint64_t snapshot_lag;         /* a leader compacts past a follower that lags
					* more entries than this behind its flushed
					* index (it gets a snapshot); 0: 65536 */
	bool join_existing;            /* --initial-cluster-state existing: a replica
					* that starts empty never votes before it
					* caught up from a leader */
	bool bootstrap;                /* --initial-cluster-state bootstrap: this
					* node never took part in its cluster before
					* a new data dir (replica_wiped.c) */
	uint32_t proposal_timeout_ms;  /* after losing leadership, a proposal not
					* resolved by then is answered
					* RKV_EUNKNOWN; 0: 2 x election timeout */
	uint32_t stop_grace_ms;        /* how long a stop waits for handoffs and
					* proposals; 0: election timeout */
	uint64_t seed;                 /* election randomness; 0: from the clock */
	bool auto_repair;              /* a core log found damaged at start-up is
					* repaired from the peers where it can be
					* (cluster/core_log_repair.c); false: refused */
	shard_install_hook_fn *install_step_hook; /* tests only: the step hook of
					* every snapshot install (its arg is the
					* replica); NULL in ringkvd */
	bool (*snapshot_chunk_hook)(uint64_t to, uint64_t seq, bool last); /* tests
					* only: false loses that chunk of a stream
					* to replica `to` (never sent); NULL in ringkvd */
	bool amnesia_no_rejoin;        /* tests only: an amnesiac replica does not
					* ask to rejoin (it stays out of its group) */
	unsigned slot_function;        /* shard/route.h's enum route_slot_fn of the
					* data dir; 0 = 1. Peers must agree: a
					* hello naming another is refused */
};

/*
 * Copies cfg. Blocking-free. 0, -EINVAL (self not in the map, no cores) or
 * -ENOMEM. Destroy after the reactors were joined.
 */
int cluster_node_create(struct cluster_node **out, const struct cluster_node_config *cfg,
			char *err, size_t errlen);
void cluster_node_destroy(struct cluster_node *n);

/*
 * The peer transport's callbacks (hello_make, hello_check, on_frame) to put
 * into peer_config.cb before peer_net_create. The hello carries the cluster
 * id, this node id, the sending core and the node it means to reach; a hello
 * of another cluster, for another node, or from a node id outside the map
 * (or this node's own) is refused with the reason. The callback `arg` is the
 * cluster_core (cluster_core_start passes it to peer_core_start).
 */
void cluster_peer_callbacks(struct peer_callbacks *cb);

/*
 * From the core's reactor start callback (blocking I/O allowed there):
 * opens DIR/core-<i>/ (the core log, recovery included), every shard this
 * node holds whose replica belongs to this core (cluster_map_core), restores
 * each Raft group (bootstrap or restart, see docs/cluster/replica.md),
 * registers the loop-pass hook, starts the peer core on `net` (may be NULL
 * for a one-node cluster) and the tick timer; the preferred first leader of
 * a fresh group campaigns at once. 0 or an error with the reason in err
 * (everything opened is closed again).
 */
int cluster_core_start(struct cluster_node *n, struct reactor *r, struct peer_net *net,
		       struct cluster_core **out, char *err, size_t errlen);

/*
 * From the reactor stop callback: refuses new proposals and reads
 * (RKV_ESHUTDOWN), hands leadership of every group this core leads to its
 * most caught-up follower (RAFT_EV_TRANSFER), and keeps replicating for up to
 * stop_grace_ms; then answers what is still pending (proposals RKV_EUNKNOWN,
 * reads RKV_ESHUTDOWN) and stops the transport.
 */
void cluster_core_stop(struct cluster_core *c);

/* From the quiescent callback: true once the grace ended, no log batch is in
 * flight, every shard is idle and the transport is quiescent. */
bool cluster_core_quiescent(struct cluster_core *c);

/* From the finish callback: closes shards, log, transport; frees the core. */
void cluster_core_finish(struct cluster_core *c);

/*
 * A snapshot install closes a replica's shard and opens it again: a new
 * `struct shard *`. `fn` is called on the core, right after, with the new
 * one (the old pointer is freed): whoever keeps shard pointers updates
 * them there. No I/O of the old shard was in flight.
 */
typedef void cluster_shard_swap_fn(void *arg, uint32_t shard, struct shard *fresh);
void cluster_core_on_shard_swap(struct cluster_core *c, cluster_shard_swap_fn *fn, void *arg);

/* The replica of `shard` on this core, or NULL (not held here). */
struct replica *cluster_core_replica(struct cluster_core *c, uint32_t shard);

struct cluster_core_stats {
	uint64_t replicas;        /* groups on this core */
	uint64_t ticks;           /* tick timer firings */
	uint64_t msgs_sent;       /* Raft messages put into batches */
	uint64_t frames_sent;     /* batch frames given to the transport */
	uint64_t send_errors;     /* frames the transport refused (Raft resends) */
	uint64_t msgs_held;       /* messages held behind an undurable hard state */
	uint64_t msgs_received;   /* Raft messages stepped */
	uint64_t msgs_forwarded;  /* handed to the owning core */
	uint64_t dropped_bad;     /* frames/messages refused: undecodable, a group
				   * not ours, from/to not matching the link */
	uint64_t dropped_other;   /* frames of kinds this step does not handle
				   * (snapshot chunks, forwards) */
	uint64_t log_full;        /* persisted callbacks with RKV_EFULL */
};
void cluster_core_stats(const struct cluster_core *c, struct cluster_core_stats *out);

/* The core's memtable budget (read on the core, for metrics). */
const struct shard_mem_budget *cluster_core_mem_budget(const struct cluster_core *c);
/*
 * Past the budget, seals the largest active memtable of the core that can
 * be sealed, so its flush gives the memory back (cluster/core_budget.c);
 * one a call: the loop's every-shard sweep makes it. Returns the replica
 * sealed (its flush is to start), or NULL.
 */
struct replica *cluster_core_budget_check(struct cluster_core *c);

/*
 * Frames the engine does not handle itself (Forward, ForwardReply: the front
 * door's request forwarding) go to fn(arg, from_node, frame) on the core
 * whose inbound connection received them; `frame` and the bytes it points
 * into are valid during the call only. Set from the core's start callback,
 * after cluster_core_start (no frame is handled before the loop runs);
 * without a handler such frames are counted in dropped_other.
 */
struct peer_msg_frame;
typedef void cluster_frame_fn(void *arg, uint64_t from_node, const struct peer_msg_frame *frame);
void cluster_core_set_frame_handler(struct cluster_core *c, cluster_frame_fn *fn, void *arg);

/*
 * Queues one control-class frame payload (an Envelope, without the length
 * prefix) for node `to` on this core's transport (copied). 0, or peer_send's
 * errors: -ENOBUFS (the control bound is reached: nothing queued),
 * -ESHUTDOWN, -EMSGSIZE; -ENOENT for a node without peers or an unknown node.
 */
int cluster_core_send_control(struct cluster_core *c, uint64_t to, const void *payload,
			      size_t len);

/* Whether this core's outbound connection to node `to` is up (what it sends
 * now goes out without waiting for a reconnect). False without peers. */
bool cluster_core_peer_connected(const struct cluster_core *c, uint64_t to);

/* The cluster map and this node's id (read-only). */
const struct cluster_map *cluster_core_map(const struct cluster_core *c);
uint64_t cluster_core_self(const struct cluster_core *c);

/* The core's log (tests, metrics: core_log_stats). */
struct core_log *cluster_core_log(struct cluster_core *c);

/* The block cache shared by the core's shards (metrics). */
struct block_cache *cluster_core_cache(struct cluster_core *c);

/* The core's peer transport (metrics, status); NULL in a one-node cluster. */
const struct peer_core *cluster_core_peers(const struct cluster_core *c);

/* ---- one replica: the API of the front doors ----------------------------- */

/*
 * Proposes `cmd` (its key and value are copied before the call returns).
 * Returns 0: w->done(w, rv, res) runs exactly once, later (never from
 * inside this call), with
 *   0               committed by a majority and applied here; `res` says
 *                   what the command did (shard_result);
 *   RAFT_ENOTLEADER the entry was overwritten by another leader's entry at
 *                   its index: it was NOT applied and never will be (safe to
 *                   retry, at replica_leader());
 *   RKV_EUNKNOWN    the outcome is unknown: leadership was lost and no entry
 *                   at its index was seen committed within the proposal
 *                   timeout (proposal_timeout_ms), or the node is stopping;
 *                   it may or may not be applied (retry only if idempotent);
 *   other           shard_apply's errors for its entry (apply stopped on
 *                   this replica: RKV_ECORRUPT, -EIO, ...; committed
 *                   elsewhere).
 * Or, synchronously and w not called: RAFT_ENOTLEADER (not the leader: see
 * replica_leader() for a hint), RAFT_EBUSY (a leadership transfer is under
 * way: retry shortly), RKV_ESHUTDOWN (stopping), RKV_ETOOLARGE (the encoded
 * command exceeds the entry limit), -ENOMEM. Only w->done and
 * w->want_prior are used; the rest of w is the shard's.
 */
int replica_propose(struct replica *rep, const struct command *cmd, struct shard_waiter *w);

struct replica_read;
/*
 * status 0: the shard has applied everything committed when the read was
 * asked and leadership was confirmed by a majority after it: read the shard
 * now (linearizable). RAFT_ENOTLEADER: leadership was lost before it was
 * confirmed (nothing was read; safe to retry at the leader). RKV_ESHUTDOWN:
 * the node is stopping.
 */
typedef void replica_read_fn(struct replica_read *rd, int status);

struct replica_read {
	replica_read_fn *done;
	void *arg;                 /* the caller's */
	/* private to the replica */
	uint64_t id;
	uint64_t index;            /* read index, once known */
	struct replica_read *next;
};

/*
 * Asks for a linearizable read point (ReadIndex, batched: the reads of one
 * loop pass go to Raft as one request when the pass's hook services the
 * replica, before the pass's messages are sent, and one heartbeat round
 * serves every read queued behind it). 0: rd->done runs once, later (never
 * from inside this call), with 0 or the error that stopped it
 * (RAFT_ENOTLEADER, RKV_ESHUTDOWN, -ENOMEM). Or synchronously:
 * RAFT_ENOTLEADER, RKV_ESHUTDOWN.
 */
int replica_read(struct replica *rep, struct replica_read *rd);

/*
 * True when the shard may be read linearizably right now without a round:
 * a group of one voter, leader, that has committed an entry of its term and
 * applied everything committed.
 */
bool replica_read_local_ok(const struct replica *rep);
/* Whether a stale read may be served from this replica's applied state:
 * false while a repair's snapshot, installed below the index the replica
 * had applied, is being brought back up to it from the local log (the
 * replica's answers never go back in time). */
bool replica_stale_ok(const struct replica *rep);

/*
 * Leader only: proposes one membership change of the group (raft.h,
 * RAFT_CONF_ADD_LEARNER / PROMOTE / REMOVE of node `id`), the step a replica
 * move is made of (docs/cluster/membership.md). 0: the entry is in the log
 * at *index (the change takes effect on every member as it appends it;
 * wait for commit_index >= *index before the next). Or RAFT_ENOTLEADER,
 * RAFT_EBUSY (the previous change is not committed yet, the leader has not
 * committed an entry of its term, or a leadership transfer is under way:
 * retry), RAFT_EBADCONF (adding a member, promoting a non-learner, removing
 * a non-member or the last voter), RAFT_ENOTREADY (promoting a learner
 * that does not hold every committed entry yet), RKV_ESHUTDOWN.
 * The node `id` must host the replica already (a learner nobody hosts
 * only costs the leader retries).
 */
int replica_conf_change(struct replica *rep, int op, uint64_t id, uint64_t *index);

/* Leader only: hands leadership to voter `to` (RAFT_EV_TRANSFER). 0 or
 * raft_step's refusals (RAFT_ENOTLEADER, RAFT_EBADCONF, RAFT_EBUSY). */
int replica_transfer(struct replica *rep, uint64_t to);

/* The group's configuration as this replica sees it (the latest in its
 * log, committed or not). Valid until the next step of the group. */
const struct raft_conf *replica_members(const struct replica *rep);

/* The core that holds this node's replica of `shard` (the map's placement
 * and the hosting record), or -1 when it holds none. Read-only after
 * cluster_node_create. */
int cluster_node_shard_core(const struct cluster_node *n, uint32_t shard);

/* The election timeout the node's groups run with, in ms: the configured
 * one, or the default when it was left 0. */
uint32_t cluster_node_election_timeout_ms(const struct cluster_node *n);

/*
 * Moving one replica of the shard (docs/cluster/membership.md), driven by
 * the shard's leader: HOST (the target records and creates an empty
 * replica) -> LEARNER -> CATCHUP (snapshot, log) -> PROMOTE -> TRANSFER
 * (when the leaving replica leads: the next leader carries the move on) ->
 * REMOVE -> DROP (the source records the drop; its files go at its next
 * start) -> DONE. The shard serves throughout.
 */
enum replica_move_phase {
	REPLICA_MOVE_NONE = 0,
	REPLICA_MOVE_HOST,
	REPLICA_MOVE_LEARNER,
	REPLICA_MOVE_CATCHUP,
	REPLICA_MOVE_PROMOTE,
	REPLICA_MOVE_TRANSFER,
	REPLICA_MOVE_REMOVE,
	REPLICA_MOVE_DROP,
	REPLICA_MOVE_DONE,
	REPLICA_MOVE_FAILED,
	REPLICA_MOVE_HANDED_ON,   /* leadership moved: the new leader goes on */
	REPLICA_MOVE_CANCELLING,  /* rolling back: the target leaves the group,
				   * then drops its replica */
	REPLICA_MOVE_CANCELLED,   /* rolled back: the group as before the move */
};

const char *replica_move_phase_name(int phase);

/*
 * Leader only: starts moving the replica of node `from` to node `to`, core
 * `to_core`. 0: started (see replica_move_status). Or, nothing changed:
 * RAFT_ENOTLEADER; RAFT_EBUSY (a move of the shard is under way, or a
 * membership change is not committed yet); RKV_EINVAL with the reason in
 * `why`: unknown node or core, `to` already holds a replica, `from` holds
 * none, from == to; RKV_ESHUTDOWN. A move stopped by the loss of its leader
 * goes on from the group's configuration: `to` a learner (catch-up), or
 * `to` a voter in a group one voter above its size (the removal).
 */
int replica_move_start(struct replica *rep, uint64_t from, uint64_t to, uint32_t to_core,
		       char *why, size_t whylen);

/*
 * Leader only: caps the snapshot stream of the move this replica drives
 * (to its target) at `rate` bytes/s, below the node's --snapshot-rate;
 * 0: the node's rate. Ends with the move.
 */
void replica_move_set_rate(struct replica *rep, uint64_t rate);

/*
 * Leader only: rolls back the move of this shard while it is before its
 * REMOVE (the source's removal not proposed yet): the target leaves the
 * group (a learner, or a promoted voter: R+1 voters back to R, the source
 * kept), then the target is told to drop its replica (DROP, as a moved
 * source is); the driver stops. `to` names the target when this leader
 * drives no move (one stopped by a lost leader: a learner, or a voter of a
 * group one above its size); 0: the move this leader drives, else the
 * group's only learner. 0: cancelling (see replica_move_status: CANCELLING,
 * then CANCELLED). Or, nothing changed: RAFT_ENOTLEADER; RKV_EINVAL with
 * the reason in `why` (no move to cancel; the source is already removed or
 * its removal is under way).
 */
int replica_move_cancel(struct replica *rep, uint64_t to, char *why, size_t whylen);

/*
 * Leader only: hands the shard's leadership to voter `to` (RAFT_NONE: the
 * most caught-up voter other than this node). 0: the transfer is under
 * way (the CLI watches the leader change). Or RAFT_ENOTLEADER; RAFT_EBUSY
 * (a move of the shard is under way, or another transfer); RKV_EINVAL
 * with the reason (`to` is no voter, or there is no other voter).
 */
int replica_move_transfer_leader(struct replica *rep, uint64_t to, char *why, size_t whylen);

struct replica_move_status {
	int phase;                /* enum replica_move_phase */
	int cancelled_in;         /* CANCELLING/CANCELLED: the phase it left */
	uint64_t snap_total;      /* snap_bytes once the stream under way is
				   * sent; 0: none under way */
	uint64_t rate;            /* the move's own cap, bytes/s; 0: node's */
	uint64_t from, to;
	uint32_t to_core;
	uint64_t elapsed_us;      /* since the move started (here) */
	uint64_t snap_bytes;      /* snapshot bytes streamed by this leader */
	uint64_t match;           /* the target's match index (leader) */
	uint64_t lag;             /* last index - match */
	uint64_t leader;          /* HANDED_ON: the node carrying it on */
	char reason[160];         /* FAILED: why; DONE: a note, or "" */
};
/* The last move this replica drove or is driving (phase NONE: none). */
void replica_move_status(const struct replica *rep, struct replica_move_status *out);

/* The leader this replica knows of (node id), or RAFT_NONE. */
uint64_t replica_leader(const struct replica *rep);
bool replica_is_leader(const struct replica *rep);
/* Removed from its group by a move and dropped here: it neither votes nor
 * serves, and knows no leader any more. */
bool replica_retired(const struct replica *rep);
struct shard *replica_shard(struct replica *rep);
uint32_t replica_id(const struct replica *rep);

struct replica_follower {
	uint64_t node;
	uint64_t match;   /* highest index known replicated there */
	uint64_t lag;     /* last index - match */
};

struct replica_status {
	uint32_t shard;
	int role;                 /* enum raft_role */
	uint64_t term;
	uint64_t leader;          /* node id or RAFT_NONE */
	uint64_t commit;
	uint64_t applied;         /* shard_applied_index */
	uint64_t last_index;
	uint64_t persisted;
	uint64_t snapshot_index;  /* Raft log compacted up to here */
	unsigned n_followers;     /* leader only */
	struct replica_follower followers[RAFT_MAX_SERVERS];
	uint64_t proposals;       /* waiting for their outcome */
	uint64_t reads;           /* waiting */
	uint64_t read_batches;    /* ReadIndex requests made: one per loop pass
				   * with reads, for all of them */
	bool apply_stopped;       /* the shard refused to apply on */
	uint64_t proposed;        /* counters since start */
	uint64_t overwritten;
	uint64_t unknown;
	uint64_t snapshots_refused; /* snapshots received and not installable */
	uint64_t leader_changes;    /* times a different leader became known */
	uint64_t pre_votes;         /* pre-vote rounds started */
	uint64_t elections;         /* became a candidate, each new term */
	uint64_t quorum_losses;     /* stopped leading within its term (check-quorum) */
	uint64_t snap_sent;         /* streams completed (leader) */
	uint64_t snap_send_bytes;
	uint64_t snap_installed;    /* snapshots installed here */
	uint64_t snap_recv_bytes;
	uint64_t snap_rejected;     /* chunks refused (checks, order) */
	uint64_t snap_restarted;    /* streams started over at a follower's word */
	uint64_t snap_restart_stale; /* restart requests ignored as sent before
				      * the stream under way (snapshot_send.c) */
	uint64_t snap_nacked;       /* broken streams we asked to start over */
	uint64_t votes_withheld;    /* vote requests dropped while joining */
	bool joining;               /* started empty, not caught up yet */
	bool amnesiac;              /* its core log lost what may hold a vote or
				     * acks: takes no part in its group until
				     * replaced (replica_amnesia.c) */
	uint64_t amnesia_dropped;   /* Raft messages dropped while amnesiac */
	char amnesia_why[256];      /* amnesiac: the damage (file, offset) */
	bool undecided;             /* started empty: new group or wiped node, not told yet */
	bool probing;               /* started empty: asking whether its node was a
				     * member; takes no part (replica_wiped.c) */
	bool snapshot_sending;      /* a stream to a follower is under way */
	bool snapshot_receiving;    /* a stream from the leader, or its install */
	bool sleeping;              /* its group sleeps: no tick, no heartbeat
				     * (raft/quiesce.c) */
	bool repairing;             /* damaged: waiting for a snapshot from the
				     * leader (cluster/replica_repair.c) */
	uint64_t repairs_done;      /* repairs from a peer completed */
	uint64_t repair_requests;   /* snapshot requests sent */
	uint64_t repair_transfers;  /* leadership handed on because damaged */
	struct raft_conf conf;      /* the group's members as seen here */
	bool retired;               /* removed from the group and dropped here */
	uint64_t conf_recorded;     /* index of the configuration on disk */
	uint64_t conf_changes;      /* configurations recorded since start */
};
void replica_status(const struct replica *rep, struct replica_status *out);

#endif
