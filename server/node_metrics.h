/*
 * ringkvd's metrics: the series the node registers (one call each, see
 * core/metrics.h) and the per-core collector that copies the counters the
 * node already keeps (node_stats, shard_get_stats, the block cache, the
 * reactor and its ring) into the core's row when a scrape asks.
 *
 * To add a metric: a field in struct node_metric_ids, one registration call
 * in node_metrics_register, and either a plain metrics_inc/observe where it
 * happens or a metrics_set in the collector. Replication metrics here are
 * per core sums over its replicas (role counts, proposal outcomes, lags):
 * the registry is fixed at start-up, and a node holds thousands of
 * replicas. The series per replica (role, term, indexes, each follower's
 * lag...) are gathered apart, when --metrics-per-replica allows: see
 * server/replica_metrics.h.
 */
#ifndef RINGKV_SERVER_NODE_METRICS_H
#define RINGKV_SERVER_NODE_METRICS_H

#include "proto/resp_commands.h"
#include <stdint.h>

#include "core/metrics.h"

struct node;
struct node_core;

#define NODE_METRICS_OPS 8       /* invalid, get, put, delete, scan, cluster_map,
				  * cluster_status, backup (FRAME_OP_*) */
/* RESP requests by command (resp_cmd_id), the last for unknown commands. */
#define NODE_METRICS_RESP_OPS (RESP_CMD_TOP_COUNT + 1)
#define NODE_METRICS_STATUSES 13 /* ringkv_Status OK .. PERMISSION_DENIED */
#define NODE_METRICS_ROLES 4     /* enum raft_role */
#define NODE_METRICS_LEVELS 7    /* MANIFEST_LEVELS */

/* Series ids, fixed at start-up. */
struct node_metric_ids {
	int requests_native[NODE_METRICS_OPS];
	int requests_resp[NODE_METRICS_RESP_OPS];
	int resp_errors;
	int replies[NODE_METRICS_STATUSES];
	int forwarded;
	int served_for_peers;
	int bad_frames;
	int connections;
	int connections_accepted;
	int connections_refused;
	int received_bytes;
	int sent_bytes;
	int write_latency;       /* histogram, microseconds */
	int read_latency;        /* histogram, microseconds */
	int write_latency_resp;  /* the same for RESP commands flagged write */
	int read_latency_resp;   /* and readonly */
	int wal_sync_latency;    /* histogram, microseconds (the core log's) */
	int wal_batch_records;   /* histogram, records per durable batch */
	int compaction_time;     /* counter, microseconds, shown in seconds */
	int wal_bytes;
	int wal_syncs;
	int wal_records;
	int shards;
	int memtable_bytes;
	int memtable_capacity;
	int memtable_budget;
	int memtable_budget_used;
	int memtable_budget_seals;
	int sstables[NODE_METRICS_LEVELS];
	int sstable_bytes;
	int flushes;
	int compactions;
	int compaction_read;
	int compaction_written;
	int write_stalls;
	int background_errors;
	int block_reads;
	int cache_hits;
	int cache_misses;
	int cache_bytes;
	int disk_full;           /* shards of the core retrying for lack of space */
	int damaged_tables;      /* tables with a damaged block (issue 14) */
	int writes_refused;      /* shards refusing writes for a damaged table */
	int loop_iterations;
	int messages_in;
	int messages_out;
	int doorbells;
	int io_submitted;
	int recv_enobufs;        /* multishot receives ended by ENOBUFS */
	int outbox_messages;     /* sent to other cores, not yet taken by them */
	int outbox_overflowing;  /* peers whose mailbox is full (overflow queue in use) */
	int build_info;
	int admin_requests;
	/* Replication: the core's Raft groups and its peer connections. */
	int raft_replicas[NODE_METRICS_ROLES]; /* by role */
	int raft_leaderless;     /* replicas that know no leader */
	int raft_apply_stopped;  /* replicas whose shard refused to apply on */
	int raft_repairing;      /* damaged, waiting for a snapshot from the leader */
	int raft_repairs;        /* repaired from a peer, counter */
	int raft_undecided;      /* started empty: new group or wiped node, not told */
	int raft_joining;        /* started empty in a group with a history */
	int raft_amnesiac;       /* newest core log segment damaged: no part */
	int raft_asking;         /* started empty, asking its group (replica_wiped.c) */
	int raft_sleeping;       /* groups asleep (raft/quiesce.c) */
	int raft_proposed;
	int raft_overwritten;
	int raft_unknown;
	int raft_proposals_pending;
	int raft_reads_pending;
	int raft_apply_lag;      /* sum over replicas of commit - applied */
	int raft_follower_lag;   /* largest lag of a follower of a group led here */
	int raft_snapshots_refused;
	int raft_leader_changes; /* sum over replicas of leaders newly known */
	int raft_pre_votes;
	int raft_elections;
	int raft_quorum_losses;
	int snapshots_sent;      /* streams completed to followers */
	int snapshots_sent_bytes;
	int snapshots_received;  /* installed here */
	int snapshots_received_bytes;
	int snapshots_restarted; /* started over at the follower's word */
	int node_forwards_sent;  /* requests forwarded to another node */
	int node_forwards_answered;
	int node_forward_timeouts;
	int node_forwards_lost;
	int node_forwards_refused;
	int node_forwards_held;
	int node_forwards_received;
	int node_forwards_received_refused;
	int peer_nodes;          /* peer nodes this core talks to */
	int peer_connected;      /* of which its outbound connection is up */
	int peer_sent_bytes;
	int peer_received_bytes;
	int peer_queued_bytes;
	int peer_dropped_frames;
	int peer_refused_frames;
	int peer_reconnects;
	int peer_inbound;
	int peer_hellos_refused;
};

/* Registers every series of the node. 0 or a negative errno. */
int node_metrics_register(struct metrics *m, struct node_metric_ids *ids);

/* On core c, at start: adds its collector. 0 or -ENOSPC. */
int node_metrics_core_start(struct node_core *c);

#endif
