/*
 * The node's metric series and its per-core collector; see
 * server/node_metrics.h. The collector runs on its own core when a scrape
 * reaches it, so it reads that core's plain fields without races.
 */
#include "server/node_metrics.h"

#include <stdio.h>
#include <string.h>

#include "cluster/peer.h"
#include "cluster/replica.h"
#include "server/forward.h"
#include "server/node.h"
#include "shard/block_cache.h"
#include "shard/core_log.h"
#include "shard/shard.h"

static const char *const op_names[NODE_METRICS_OPS] = {
	"invalid", "get", "put", "delete", "scan", "cluster_map", "cluster_status", "backup",
};
_Static_assert(FRAME_OP_BACKUP + 1 == NODE_METRICS_OPS, "a name for every native op");

static const char *const status_names[NODE_METRICS_STATUSES] = {
	"ok", "not_found", "invalid_argument", "too_large", "resource_exhausted",
	"unavailable", "not_leader", "timeout", "internal", "data_loss", "unknown",
	"unauthenticated", "permission_denied",
};

/* enum raft_role, in order. */
static const char *const role_names[NODE_METRICS_ROLES] = {
	"follower", "precandidate", "candidate", "leader",
};

/* Write latency buckets, microseconds: 100 us .. 10 s. */
static const uint64_t sync_bounds[] = CORE_LOG_SYNC_US_BOUNDS;
static const uint64_t record_bounds[] = CORE_LOG_BATCH_RECORD_BOUNDS;
static const uint64_t latency_bounds[] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
	500000, 1000000, 2500000, 10000000,
};

#define CHECK(id) do { if ((id) < 0) return (id); } while (0)

/* Replication series: sums over the core's replicas and peer connections. */
static int register_replication(struct metrics *m, struct node_metric_ids *ids)
{
	const struct {
		int *id;
		bool counter;
		const char *name, *help;
	} series[] = {
		{ &ids->raft_leaderless, false, "ringkv_raft_leaderless_replicas",
		  "Replicas that know no leader of their group (an election is due or "
		  "under way; writes and linearizable reads of the shard wait)." },
		{ &ids->raft_apply_stopped, false, "ringkv_raft_apply_stopped_replicas",
		  "Replicas whose shard refused to apply committed entries (see the log)." },
		{ &ids->raft_repairing, false, "ringkv_raft_repairing_replicas",
		  "Replicas with a damaged shard waiting for a snapshot from their leader "
		  "(they neither lead nor campaign meanwhile)." },
		{ &ids->raft_repairs, true, "ringkv_raft_repairs_total",
		  "Replicas repaired from a peer: a snapshot from the leader replaced a "
		  "damaged shard." },
		{ &ids->raft_undecided, false, "ringkv_raft_undecided_replicas",
		  "Replicas that started empty and have not yet learned whether their group "
		  "is new or has a history (a wiped node's wait)." },
		{ &ids->raft_asking, false, "ringkv_raft_asking_replicas",
		  "Replicas that started empty and still ask their group whether this "
		  "node was a member before (a wiped data dir, or a new cluster's first "
		  "start): no vote, no acknowledgement until enough members answer." },
		{ &ids->raft_joining, false, "ringkv_raft_joining_replicas",
		  "Replicas that started empty in a group with a history: no vote until "
		  "caught up from a leader." },
		{ &ids->raft_sleeping, false, "ringkv_raft_groups_sleeping",
		  "Replicas whose group sleeps: idle, every member caught up, no tick "
		  "and no heartbeat until a proposal, a message or a suspected node "
		  "wakes it." },
		{ &ids->raft_amnesiac, false, "ringkv_raft_amnesiac_replicas",
		  "Replicas whose core's newest log segment was damaged (a vote or "
		  "acknowledged entries may be lost): they take no part in their group "
		  "(no vote, no acknowledgement, no read) until it replaces them." },
		{ &ids->raft_proposed, true, "ringkv_raft_proposals_total",
		  "Writes proposed to a group this core leads." },
		{ &ids->raft_overwritten, true, "ringkv_raft_proposals_overwritten_total",
		  "Proposals whose entry a new leader overwrote: answered NOT_LEADER, "
		  "not applied." },
		{ &ids->raft_unknown, true, "ringkv_raft_proposals_unknown_total",
		  "Proposals answered UNKNOWN: leadership lost or the disk stayed full "
		  "before their commit was seen." },
		{ &ids->raft_proposals_pending, false, "ringkv_raft_proposals_pending",
		  "Proposals waiting for their outcome." },
		{ &ids->raft_reads_pending, false, "ringkv_raft_reads_pending",
		  "Linearizable reads waiting for their read index to be confirmed and "
		  "applied." },
		{ &ids->raft_apply_lag, false, "ringkv_raft_apply_lag_entries",
		  "Committed entries not yet applied, summed over the core's replicas." },
		{ &ids->raft_follower_lag, false, "ringkv_raft_follower_lag_entries",
		  "Largest lag (leader's last index - match index) of a follower of a "
		  "group this core leads." },
		{ &ids->raft_snapshots_refused, true, "ringkv_raft_snapshots_refused_total",
		  "Snapshots received that could not be installed." },
		{ &ids->raft_leader_changes, true, "ringkv_raft_leader_changes_total",
		  "Times a replica learned of a leader other than the last it knew "
		  "(the first leader included), summed over the core's replicas." },
		{ &ids->raft_pre_votes, true, "ringkv_raft_pre_votes_total",
		  "Pre-vote rounds started (probing before raising the term; a "
		  "precandidate left unanswered starts another), summed over the "
		  "core's replicas." },
		{ &ids->raft_elections, true, "ringkv_raft_elections_total",
		  "Elections started: times a replica became a candidate in a new "
		  "term, summed over the core's replicas." },
		{ &ids->raft_quorum_losses, true, "ringkv_raft_quorum_losses_total",
		  "Times a leader stepped down within its own term because it heard "
		  "from no majority for an election timeout (check-quorum), summed "
		  "over the core's replicas." },
		{ &ids->snapshots_sent, true, "ringkv_snapshots_sent_total",
		  "Snapshot streams a leader on this core completed to a follower." },
		{ &ids->snapshots_sent_bytes, true, "ringkv_snapshots_sent_bytes_total",
		  "Bytes of snapshot streams sent to followers." },
		{ &ids->snapshots_received, true, "ringkv_snapshots_received_total",
		  "Snapshots received from a leader and installed here." },
		{ &ids->snapshots_received_bytes, true, "ringkv_snapshots_received_bytes_total",
		  "Bytes of snapshot streams received from leaders." },
		{ &ids->snapshots_restarted, true, "ringkv_snapshots_restarted_total",
		  "Snapshot streams a leader on this core started over because the "
		  "follower reported a chunk missing." },
		{ &ids->node_forwards_sent, true, "ringkv_node_forwards_sent_total",
		  "Requests forwarded to another node (the shard's leader, or a holder)." },
		{ &ids->node_forwards_answered, true, "ringkv_node_forwards_answered_total",
		  "Forwarded requests whose answer came back from the other node." },
		{ &ids->node_forward_timeouts, true, "ringkv_node_forward_timeouts_total",
		  "Forwarded requests answered here at their timeout (outcome unknown "
		  "for writes)." },
		{ &ids->node_forwards_lost, true, "ringkv_node_forwards_lost_total",
		  "Forwarded requests answered here at once because the connection to "
		  "their destination went down first (outcome unknown for writes)." },
		{ &ids->node_forwards_refused, true, "ringkv_node_forwards_refused_total",
		  "Requests for a shard led elsewhere that were answered here instead "
		  "of forwarded: NOT_LEADER when the client asked not to be forwarded, "
		  "UNAVAILABLE or RESOURCE_EXHAUSTED when no leader is known or "
		  "reachable, a bound or the hop limit is reached, or the node stops." },
		{ &ids->node_forwards_held, true, "ringkv_node_forwards_held_total",
		  "Waits of a request for a route, each up to 10 ms and at most an "
		  "election timeout in all: no leader known yet, or the leader's node "
		  "not connected from this core yet." },
		{ &ids->node_forwards_received, true, "ringkv_node_forwards_received_total",
		  "Requests forwarded here by another node and executed." },
		{ &ids->node_forwards_received_refused, true,
		  "ringkv_node_forwards_received_refused_total",
		  "Requests forwarded here by another node and refused (bounds, bad bytes)." },
		{ &ids->peer_nodes, false, "ringkv_peer_nodes",
		  "Peer nodes the core keeps a connection to." },
		{ &ids->peer_connected, false, "ringkv_peer_connected_nodes",
		  "Peer nodes the core's outbound connection to is up." },
		{ &ids->peer_sent_bytes, true, "ringkv_peer_sent_bytes_total",
		  "Bytes sent to peer nodes (Raft, snapshots, forwarded requests)." },
		{ &ids->peer_received_bytes, true, "ringkv_peer_received_bytes_total",
		  "Bytes received from peer nodes on connections this core holds." },
		{ &ids->peer_queued_bytes, false, "ringkv_peer_queued_bytes",
		  "Bytes waiting to be sent to peer nodes." },
		{ &ids->peer_dropped_frames, true, "ringkv_peer_dropped_frames_total",
		  "Bulk frames dropped by a peer's send-queue bound (resent by Raft)." },
		{ &ids->peer_refused_frames, true, "ringkv_peer_refused_frames_total",
		  "Control frames refused by a peer's send-queue bound." },
		{ &ids->peer_reconnects, true, "ringkv_peer_reconnects_total",
		  "Connection attempts to peer nodes after a failure or a loss." },
		{ &ids->peer_inbound, false, "ringkv_peer_inbound_connections",
		  "Connections from peer nodes the core holds." },
		{ &ids->peer_hellos_refused, true, "ringkv_peer_hellos_refused_total",
		  "Peer connections refused at the handshake (another cluster or node id)." },
	};
	char labels[METRICS_LABELS_MAX];
	unsigned i;

	for (i = 0; i < NODE_METRICS_ROLES; i++) {
		snprintf(labels, sizeof labels, "role=\"%s\"", role_names[i]);
		ids->raft_replicas[i] = metrics_gauge(m, "ringkv_raft_replicas", labels,
			"Shard replicas (Raft group members) the core holds, by role.", 0);
		CHECK(ids->raft_replicas[i]);
	}
	for (i = 0; i < sizeof series / sizeof series[0]; i++) {
		*series[i].id = series[i].counter ?
			metrics_counter(m, series[i].name, NULL, series[i].help, 0) :
			metrics_gauge(m, series[i].name, NULL, series[i].help, 0);
		CHECK(*series[i].id);
	}
	return 0;
}

/* The RESP command name of `id` (resp_cmd_id), "unknown" past the table. */
static const char *resp_op_name(unsigned id)
{
	size_t n;
	const struct resp_command_info *t = resp_command_table(&n);

	for (size_t k = 0; k < n; k++)
		if ((unsigned)t[k].id == id)
			return t[k].name;
	return "unknown";
}

static const char requests_help[] =
	"Client requests decoded, by protocol and operation (RESP: by command, "
	"unknown ones as op=\"unknown\"; undecodable native frames as op=\"invalid\").";
static const char replies_help[] =
	"Answers queued to clients: native by status; RESP error replies as "
	"status=\"error\".";

static const char write_help[] =
	"Writes (native PUT and DELETE; RESP commands flagged write): from decoding the "
	"request to queueing its answer (the WAL fdatasync and Raft commit included).";
static const char read_help[] =
	"Reads (native GET; RESP commands flagged readonly): from decoding the request to "
	"queueing its answer (a linearizable read's ReadIndex round included; one answered "
	"from memory in the same loop pass counts as 0).";

static int latency_histogram(struct metrics *m, const char *name, const char *protocol,
			     const char *help)
{
	char labels[METRICS_LABELS_MAX];

	snprintf(labels, sizeof labels, "protocol=\"%s\"", protocol);
	return metrics_histogram(m, name, labels, help, 0, latency_bounds,
				 sizeof latency_bounds / sizeof latency_bounds[0], 1e-6);
}

int node_metrics_register(struct metrics *m, struct node_metric_ids *ids)
{
	char labels[METRICS_LABELS_MAX];
	unsigned i;

	for (i = 0; i < NODE_METRICS_OPS; i++) {
		snprintf(labels, sizeof labels, "protocol=\"native\",op=\"%s\"", op_names[i]);
		ids->requests_native[i] = metrics_counter(m, "ringkv_requests_total", labels,
							  requests_help, 0);
		CHECK(ids->requests_native[i]);
	}
	for (i = 0; i < NODE_METRICS_RESP_OPS; i++) {
		snprintf(labels, sizeof labels, "protocol=\"resp\",op=\"%s\"", resp_op_name(i));
		ids->requests_resp[i] = metrics_counter(m, "ringkv_requests_total", labels,
							requests_help, 0);
		CHECK(ids->requests_resp[i]);
	}
	for (i = 0; i < NODE_METRICS_STATUSES; i++) {
		snprintf(labels, sizeof labels, "protocol=\"native\",status=\"%s\"",
			 status_names[i]);
		ids->replies[i] = metrics_counter(m, "ringkv_replies_total", labels,
						  replies_help, 0);
		CHECK(ids->replies[i]);
	}
	ids->resp_errors = metrics_counter(m, "ringkv_replies_total",
					   "protocol=\"resp\",status=\"error\"", replies_help, 0);
	CHECK(ids->resp_errors);
	ids->forwarded = metrics_counter(m, "ringkv_requests_forwarded_total", NULL,
		"Requests sent to the core owning their shard.", 0);
	ids->served_for_peers = metrics_counter(m, "ringkv_requests_served_for_cores_total",
		NULL, "Requests executed here for a client of another core.", 0);
	ids->bad_frames = metrics_counter(m, "ringkv_bad_requests_total", NULL,
		"Requests refused as malformed or over a limit.", 0);
	ids->connections = metrics_gauge(m, "ringkv_connections", NULL,
		"Client connections open (refused ones still being told included).", 0);
	ids->connections_accepted = metrics_counter(m, "ringkv_connections_accepted_total",
		NULL, "Client connections accepted since start.", 0);
	ids->connections_refused = metrics_counter(m, "ringkv_connections_refused_total",
		NULL, "Client connections refused over --max-connections.", 0);
	ids->received_bytes = metrics_counter(m, "ringkv_network_received_bytes_total", NULL,
		"Bytes received from clients.", 0);
	ids->sent_bytes = metrics_counter(m, "ringkv_network_sent_bytes_total", NULL,
		"Bytes sent to clients.", 0);
	CHECK(ids->forwarded);
	CHECK(ids->served_for_peers);
	CHECK(ids->bad_frames);
	CHECK(ids->connections);
	CHECK(ids->connections_accepted);
	CHECK(ids->connections_refused);
	CHECK(ids->received_bytes);
	CHECK(ids->sent_bytes);
	ids->write_latency = latency_histogram(m, "ringkv_write_duration_seconds", "native",
					       write_help);
	ids->write_latency_resp = latency_histogram(m, "ringkv_write_duration_seconds", "resp",
						    write_help);
	ids->read_latency = latency_histogram(m, "ringkv_read_duration_seconds", "native",
					      read_help);
	ids->read_latency_resp = latency_histogram(m, "ringkv_read_duration_seconds", "resp",
						   read_help);
	CHECK(ids->write_latency);
	CHECK(ids->write_latency_resp);
	CHECK(ids->read_latency);
	CHECK(ids->read_latency_resp);
	ids->wal_sync_latency = metrics_histogram(m, "ringkv_wal_sync_duration_seconds",
		NULL, "Raft log batches: from submitting the WRITE to its fdatasync's "
		"completion.", 0, sync_bounds, CORE_LOG_SYNC_BUCKETS, 1e-6);
	CHECK(ids->wal_sync_latency);
	ids->wal_batch_records = metrics_histogram(m, "ringkv_wal_batch_records",
		NULL, "Records (writes and other Raft log records) per durable Raft log "
		"batch, one fdatasync each.", 0, record_bounds, CORE_LOG_SYNC_BUCKETS, 1);
	CHECK(ids->wal_batch_records);
	ids->compaction_time = metrics_counter_scaled(m, "ringkv_compaction_seconds_total",
		NULL, "Wall time of installed compactions, start to install (they run in "
		"slices between requests).", 0, 1e-6);
	CHECK(ids->compaction_time);

	ids->wal_bytes = metrics_counter(m, "ringkv_wal_bytes_total", NULL,
		"Bytes appended to the write-ahead logs.", 0);
	ids->wal_syncs = metrics_counter(m, "ringkv_wal_syncs_total", NULL,
		"WAL batches made durable, one fdatasync each.", 0);
	ids->wal_records = metrics_counter(m, "ringkv_wal_records_total", NULL,
		"Writes made durable in the WAL (records per sync = this / syncs).", 0);
	ids->shards = metrics_gauge(m, "ringkv_shards", NULL, "Shards owned by the core.", 0);
	ids->memtable_bytes = metrics_gauge(m, "ringkv_memtable_bytes", NULL,
		"Memtable bytes in use (active and flushing).", 0);
	ids->memtable_capacity = metrics_gauge(m, "ringkv_memtable_capacity_bytes", NULL,
		"Memtable capacity (--memtable-size per shard).", 0);
	ids->memtable_budget = metrics_gauge(m, "ringkv_memtable_budget_bytes", NULL,
		"What the memtables of the core's shards may hold together (--memtable-budget).",
		0);
	ids->memtable_budget_used = metrics_gauge(m, "ringkv_memtable_budget_used_bytes", NULL,
		"What the core's memtables hold by its budget's count (ringkv_memtable_bytes "
		"when it has not drifted).", 0);
	ids->memtable_budget_seals = metrics_counter(m, "ringkv_memtable_budget_seals_total",
		NULL, "Memtables sealed for a flush early to keep the core within its budget.", 0);
	CHECK(ids->wal_bytes);
	CHECK(ids->wal_syncs);
	CHECK(ids->wal_records);
	CHECK(ids->shards);
	CHECK(ids->memtable_bytes);
	CHECK(ids->memtable_capacity);
	CHECK(ids->memtable_budget);
	CHECK(ids->memtable_budget_seals);
	CHECK(ids->memtable_budget_used);
	for (i = 0; i < NODE_METRICS_LEVELS; i++) {
		snprintf(labels, sizeof labels, "level=\"%u\"", i);
		ids->sstables[i] = metrics_gauge(m, "ringkv_sstables", labels,
			"SSTables in the current version, by LSM level.", 0);
		CHECK(ids->sstables[i]);
	}
	ids->sstable_bytes = metrics_gauge(m, "ringkv_sstable_bytes", NULL,
		"Bytes of the SSTables in the current version.", 0);
	ids->flushes = metrics_counter(m, "ringkv_flushes_total", NULL,
		"Memtables written to level 0.", 0);
	ids->compactions = metrics_counter(m, "ringkv_compactions_total", NULL,
		"Compactions installed (trivial moves included).", 0);
	ids->compaction_read = metrics_counter(m, "ringkv_compaction_read_bytes_total", NULL,
		"Bytes read by compactions.", 0);
	ids->compaction_written = metrics_counter(m, "ringkv_compaction_written_bytes_total",
		NULL, "Bytes written by compactions.", 0);
	ids->write_stalls = metrics_counter(m, "ringkv_write_stalls_total", NULL,
		"Writes that waited for a memtable flush to make room.", 0);
	ids->background_errors = metrics_counter(m, "ringkv_background_errors_total", NULL,
		"Flush or compaction failures (retried).", 0);
	ids->block_reads = metrics_counter(m, "ringkv_block_reads_total", NULL,
		"SSTable blocks read from disk for gets and scans.", 0);
	ids->cache_hits = metrics_counter(m, "ringkv_block_cache_hits_total", NULL,
		"Block cache lookups that found the block.", 0);
	ids->cache_misses = metrics_counter(m, "ringkv_block_cache_misses_total", NULL,
		"Block cache lookups that did not.", 0);
	ids->cache_bytes = metrics_gauge(m, "ringkv_block_cache_bytes", NULL,
		"Bytes held by the block cache.", 0);
	ids->disk_full = metrics_gauge(m, "ringkv_disk_full_shards", NULL,
		"Shards whose flushes or compactions fail for lack of disk space.", 0);
	CHECK(ids->sstable_bytes);
	CHECK(ids->flushes);
	CHECK(ids->compactions);
	CHECK(ids->compaction_read);
	CHECK(ids->compaction_written);
	CHECK(ids->write_stalls);
	CHECK(ids->background_errors);
	CHECK(ids->block_reads);
	CHECK(ids->cache_hits);
	CHECK(ids->cache_misses);
	CHECK(ids->cache_bytes);
	CHECK(ids->disk_full);
	ids->damaged_tables = metrics_gauge(m, "ringkv_damaged_tables", NULL,
		"SSTables with a block that failed its checksum (compaction of the shard stopped).", 0);
	ids->writes_refused = metrics_gauge(m, "ringkv_shards_refusing_writes", NULL,
		"Shards refusing writes: level 0 full behind a damaged table.", 0);
	CHECK(ids->damaged_tables);
	CHECK(ids->writes_refused);

	ids->loop_iterations = metrics_counter(m, "ringkv_reactor_iterations_total", NULL,
		"Passes of the core's event loop.", 0);
	ids->messages_in = metrics_counter(m, "ringkv_core_messages_received_total", NULL,
		"Messages from other cores handled.", 0);
	ids->messages_out = metrics_counter(m, "ringkv_core_messages_sent_total", NULL,
		"Messages sent to other cores.", 0);
	ids->doorbells = metrics_counter(m, "ringkv_core_doorbells_total", NULL,
		"Wake-ups rung for a sleeping core.", 0);
	ids->io_submitted = metrics_counter(m, "ringkv_io_submitted_total", NULL,
		"io_uring operations submitted.", 0);
	ids->recv_enobufs = metrics_counter(m, "ringkv_io_recv_buffers_exhausted_total", NULL,
		"Multishot client receives that ended because the core's provided "
		"receive buffers were all in use (each is armed again at once).", 0);
	ids->outbox_messages = metrics_gauge(m, "ringkv_core_mailbox_depth", NULL,
		"Messages this core sent to other cores that they have not taken yet "
		"(the SPSC mailboxes' depth, summed over the peers).", 0);
	ids->outbox_overflowing = metrics_gauge(m, "ringkv_core_mailbox_overflowing", NULL,
		"Peers whose mailbox from this core is full (messages wait in an "
		"overflow queue).", 0);
	CHECK(ids->outbox_messages);
	CHECK(ids->outbox_overflowing);
	ids->build_info = metrics_gauge(m, "ringkv_build_info", "version=\"" RINGKV_VERSION "\"",
		"Always 1; the version in a label.", METRICS_SUM_CORES);
	ids->admin_requests = metrics_counter(m, "ringkv_admin_requests_total", NULL,
		"Requests served by the admin HTTP port.", METRICS_SUM_CORES);
	CHECK(ids->loop_iterations);
	CHECK(ids->messages_in);
	CHECK(ids->messages_out);
	CHECK(ids->doorbells);
	CHECK(ids->io_submitted);
	CHECK(ids->recv_enobufs);
	CHECK(ids->build_info);
	CHECK(ids->admin_requests);
	return register_replication(m, ids);
}

/* The core's replicas and peer connections into its row. */
static void collect_replication(struct metrics_core *mc, struct node_core *c)
{
	const struct node_metric_ids *ids = c->node->metric_ids;
	uint64_t roles[NODE_METRICS_ROLES] = { 0 };
	uint64_t leaderless = 0, stopped = 0, proposed = 0, overwritten = 0, unknown = 0;
	uint64_t proposals = 0, reads = 0, apply_lag = 0, follower_lag = 0, refused = 0;
	uint64_t pre_votes = 0, elections = 0, quorum_losses = 0;
	uint64_t leader_changes = 0, snap_sent = 0, snap_sent_bytes = 0, snap_received = 0;
	uint64_t snap_received_bytes = 0, snap_restarted = 0, repairing = 0, repairs = 0;
	uint64_t undecided = 0, joining = 0, amnesiac = 0, sleeping = 0, asking = 0;
	struct forward_stats fs;
	struct replica_status st;
	unsigned i, f;

	for (i = 0; i < c->node->shards; i++) {
		if (!c->replicas[i])
			continue;
		replica_status(c->replicas[i], &st);
		if ((unsigned)st.role < NODE_METRICS_ROLES)
			roles[st.role]++;
		leaderless += st.leader == RAFT_NONE;
		stopped += st.apply_stopped;
		repairing += st.repairing;
		repairs += st.repairs_done;
		undecided += st.undecided;
		asking += st.probing;
		joining += st.joining;
		amnesiac += st.amnesiac;
		sleeping += st.sleeping;
		proposed += st.proposed;
		overwritten += st.overwritten;
		unknown += st.unknown;
		proposals += st.proposals;
		reads += st.reads;
		refused += st.snapshots_refused;
		leader_changes += st.leader_changes;
		pre_votes += st.pre_votes;
		elections += st.elections;
		quorum_losses += st.quorum_losses;
		snap_sent += st.snap_sent;
		snap_sent_bytes += st.snap_send_bytes;
		snap_received += st.snap_installed;
		snap_received_bytes += st.snap_recv_bytes;
		snap_restarted += st.snap_restarted;
		if (st.commit > st.applied)
			apply_lag += st.commit - st.applied;
		for (f = 0; f < st.n_followers; f++)
			if (st.followers[f].lag > follower_lag)
				follower_lag = st.followers[f].lag;
	}
	for (i = 0; i < NODE_METRICS_ROLES; i++)
		metrics_set(mc, ids->raft_replicas[i], roles[i]);
	metrics_set(mc, ids->raft_leaderless, leaderless);
	metrics_set(mc, ids->raft_apply_stopped, stopped);
	metrics_set(mc, ids->raft_repairing, repairing);
	metrics_set(mc, ids->raft_repairs, repairs);
	metrics_set(mc, ids->raft_undecided, undecided);
	metrics_set(mc, ids->raft_asking, asking);
	metrics_set(mc, ids->raft_joining, joining);
	metrics_set(mc, ids->raft_amnesiac, amnesiac);
	metrics_set(mc, ids->raft_sleeping, sleeping);
	metrics_set(mc, ids->raft_proposed, proposed);
	metrics_set(mc, ids->raft_overwritten, overwritten);
	metrics_set(mc, ids->raft_unknown, unknown);
	metrics_set(mc, ids->raft_proposals_pending, proposals);
	metrics_set(mc, ids->raft_reads_pending, reads);
	metrics_set(mc, ids->raft_apply_lag, apply_lag);
	metrics_set(mc, ids->raft_follower_lag, follower_lag);
	metrics_set(mc, ids->raft_snapshots_refused, refused);
	metrics_set(mc, ids->raft_leader_changes, leader_changes);
	metrics_set(mc, ids->raft_pre_votes, pre_votes);
	metrics_set(mc, ids->raft_elections, elections);
	metrics_set(mc, ids->raft_quorum_losses, quorum_losses);
	metrics_set(mc, ids->snapshots_sent, snap_sent);
	metrics_set(mc, ids->snapshots_sent_bytes, snap_sent_bytes);
	metrics_set(mc, ids->snapshots_received, snap_received);
	metrics_set(mc, ids->snapshots_received_bytes, snap_received_bytes);
	metrics_set(mc, ids->snapshots_restarted, snap_restarted);

	/* Requests forwarded between nodes (server/forward.c keeps the counts). */
	forward_core_stats(c, &fs);
	metrics_set(mc, ids->node_forwards_sent, fs.sent);
	metrics_set(mc, ids->node_forwards_answered, fs.answered);
	metrics_set(mc, ids->node_forward_timeouts, fs.timeouts);
	metrics_set(mc, ids->node_forwards_lost, fs.lost);
	metrics_set(mc, ids->node_forwards_refused, fs.refused);
	metrics_set(mc, ids->node_forwards_held, fs.held);
	metrics_set(mc, ids->node_forwards_received, fs.inbound);
	metrics_set(mc, ids->node_forwards_received_refused, fs.inbound_refused);

	{
		const struct peer_core *pc = c->cluster ? cluster_core_peers(c->cluster) : NULL;
		unsigned n = pc ? peer_core_count(pc) : 0;
		uint64_t connected = 0, sent = 0, received = 0, queued = 0, dropped = 0;
		uint64_t refused_frames = 0, reconnects = 0;
		struct peer_core_counters in = { 0 };
		struct peer_stats ps;

		for (i = 0; i < n; i++) {
			peer_core_stats(pc, i, &ps);
			connected += ps.connected;
			sent += ps.bytes_sent;
			received += ps.bytes_received;
			queued += ps.queued_bytes;
			dropped += ps.dropped_frames;
			refused_frames += ps.refused_frames;
			reconnects += ps.reconnects;
		}
		if (pc)
			peer_core_counters(pc, &in);
		metrics_set(mc, ids->peer_nodes, n);
		metrics_set(mc, ids->peer_connected, connected);
		metrics_set(mc, ids->peer_sent_bytes, sent);
		metrics_set(mc, ids->peer_received_bytes, received);
		metrics_set(mc, ids->peer_queued_bytes, queued);
		metrics_set(mc, ids->peer_dropped_frames, dropped);
		metrics_set(mc, ids->peer_refused_frames, refused_frames);
		metrics_set(mc, ids->peer_reconnects, reconnects);
		metrics_set(mc, ids->peer_inbound, in.inbound);
		metrics_set(mc, ids->peer_hellos_refused, in.refused);
	}
}

static void collect(struct metrics_core *mc, void *arg)
{
	struct node_core *c = arg;
	const struct node_metric_ids *ids = c->node->metric_ids;
	const struct node_stats *st = &c->stats;
	struct block_cache_stats cs;
	uint64_t memtable_used = 0, memtable_cap = 0, disk_full = 0;
	uint64_t damaged = 0, refusing = 0;
	uint64_t levels[NODE_METRICS_LEVELS] = { 0 };
	struct shard_stats sum = { 0 };
	unsigned i, l;

	for (i = 0; i < NODE_METRICS_OPS; i++)
		metrics_set(mc, ids->requests_native[i], st->native_ops[i]);
	for (i = 0; i < NODE_METRICS_RESP_OPS; i++)
		metrics_set(mc, ids->requests_resp[i], st->resp_ops[i]);
	metrics_set(mc, ids->resp_errors, st->resp_errors);
	for (i = 0; i < NODE_METRICS_STATUSES; i++)
		metrics_set(mc, ids->replies[i], st->replies[i]);
	metrics_set(mc, ids->forwarded, st->forwarded);
	metrics_set(mc, ids->served_for_peers, st->served_for_peers);
	metrics_set(mc, ids->bad_frames, st->bad_frames);
	metrics_set(mc, ids->connections, c->conn_count);
	metrics_set(mc, ids->connections_accepted, st->connections);
	metrics_set(mc, ids->connections_refused, st->refused);
	metrics_set(mc, ids->received_bytes, st->bytes_in);
	metrics_set(mc, ids->sent_bytes, st->bytes_out);

	for (i = 0; i < c->owned_count; i++) {
		struct shard_stats ss;
		unsigned counts[NODE_METRICS_LEVELS];
		size_t used, cap;

		shard_get_stats(c->owned[i], &ss);
		sum.wal_bytes += ss.wal_bytes;
		sum.batches += ss.batches;
		sum.writes += ss.writes;
		sum.flushes += ss.flushes;
		sum.compactions += ss.compactions;
		sum.compact_read += ss.compact_read;
		sum.compact_written += ss.compact_written;
		sum.compact_us += ss.compact_us;
		sum.stalls += ss.stalls;
		sum.bg_errors += ss.bg_errors;
		sum.block_reads += ss.block_reads;
		sum.table_bytes += ss.table_bytes;
		shard_memory(c->owned[i], &used, &cap);
		memtable_used += used;
		memtable_cap += cap;
		shard_level_files(c->owned[i], counts, NODE_METRICS_LEVELS);
		for (l = 0; l < NODE_METRICS_LEVELS; l++)
			levels[l] += counts[l];
		disk_full += shard_disk_full(c->owned[i]);
		damaged += shard_damaged_tables(c->owned[i]);
		refusing += shard_writes_refused(c->owned[i]);
	}
	if (c->cluster) {
		/* The Raft log of the core: one for all its shards. */
		struct core_log_stats ls;

		core_log_stats(cluster_core_log(c->cluster), &ls);
		sum.wal_bytes += ls.bytes;
		sum.batches += ls.fsyncs;
		sum.writes += ls.records;
		metrics_set_histogram(mc, ids->wal_sync_latency, ls.sync_us, ls.sync_us_sum);
		metrics_set_histogram(mc, ids->wal_batch_records, ls.batch_records,
				      ls.batch_records_sum);
		metrics_set(mc, ids->memtable_budget,
			    cluster_core_mem_budget(c->cluster)->limit);
		metrics_set(mc, ids->memtable_budget_seals,
			    cluster_core_mem_budget(c->cluster)->seals);
		metrics_set(mc, ids->memtable_budget_used,
			    cluster_core_mem_budget(c->cluster)->used);
	}
	metrics_set(mc, ids->compaction_time, sum.compact_us);
	metrics_set(mc, ids->wal_bytes, sum.wal_bytes);
	metrics_set(mc, ids->wal_syncs, sum.batches);
	metrics_set(mc, ids->wal_records, sum.writes);
	metrics_set(mc, ids->shards, c->owned_count);
	metrics_set(mc, ids->memtable_bytes, memtable_used);
	metrics_set(mc, ids->memtable_capacity, memtable_cap);
	for (l = 0; l < NODE_METRICS_LEVELS; l++)
		metrics_set(mc, ids->sstables[l], levels[l]);
	metrics_set(mc, ids->sstable_bytes, sum.table_bytes);
	metrics_set(mc, ids->flushes, sum.flushes);
	metrics_set(mc, ids->compactions, sum.compactions);
	metrics_set(mc, ids->compaction_read, sum.compact_read);
	metrics_set(mc, ids->compaction_written, sum.compact_written);
	metrics_set(mc, ids->write_stalls, sum.stalls);
	metrics_set(mc, ids->background_errors, sum.bg_errors);
	metrics_set(mc, ids->block_reads, sum.block_reads);
	metrics_set(mc, ids->disk_full, disk_full);
	metrics_set(mc, ids->damaged_tables, damaged);
	metrics_set(mc, ids->writes_refused, refusing);
	block_cache_get_stats(c->cache, &cs);
	metrics_set(mc, ids->cache_hits, cs.hits);
	metrics_set(mc, ids->cache_misses, cs.misses);
	metrics_set(mc, ids->cache_bytes, cs.usage);

	metrics_set(mc, ids->loop_iterations, c->reactor->iterations);
	metrics_set(mc, ids->messages_in, c->reactor->msgs_in);
	metrics_set(mc, ids->messages_out, c->reactor->msgs_out);
	metrics_set(mc, ids->doorbells, c->reactor->doorbells);
	metrics_set(mc, ids->io_submitted, c->reactor->io.submitted);
	metrics_set(mc, ids->recv_enobufs, c->reactor->io.buf_enobufs);
	{
		struct reactor *r = c->reactor;
		uint64_t queued = 0, overflowing = 0;

		/* The producer's side of each mailbox: exact for what this core
		 * staged, a snapshot of what its peers have taken. */
		for (i = 0; i < c->node->cores; i++) {
			if (!r->peers[i].out)
				continue;
			queued += r->peers[i].out->mask + 1 - spsc_free(r->peers[i].out);
			overflowing += r->peers[i].overflow != NULL;
		}
		metrics_set(mc, ids->outbox_messages, queued);
		metrics_set(mc, ids->outbox_overflowing, overflowing);
	}
	metrics_set(mc, ids->build_info, c->reactor->id == 0);
	collect_replication(mc, c);
}

int node_metrics_core_start(struct node_core *c)
{
	return metrics_core_add_collector(c->metrics, collect, c);
}
