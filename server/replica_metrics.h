/*
 * /metrics series per shard replica: role, term, commit and applied index,
 * each follower's lag (on the leader), leader changes, snapshots sent and
 * received. The per-core registry (core/metrics.h) is fixed at start-up and
 * prints every series it holds, but the replicas a node holds are many
 * (thousands, later) and change with replica moves, so these rows are
 * gathered apart from it, in the same way: one message per core over the
 * reactor mailboxes.
 *
 * Who touches what: `struct replica_metrics` and every per-core buffer in it
 * belong to the origin core (core 0, the admin port's). A gather hands core
 * i's buffer to core i inside its message; core i fills it from its own
 * replicas (replica_status) and sends the message home, and from then on
 * only the origin reads it, until the next gather hands it over again. The
 * mailbox's release/acquire orders both hand-overs, so no core reads memory
 * another one is writing, and there is no lock. Buffers grow geometrically
 * to their peak on the core that fills them and are kept.
 */
#ifndef RINGKV_SERVER_REPLICA_METRICS_H
#define RINGKV_SERVER_REPLICA_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/metrics.h"
#include "core/reactor.h"

/* One replica as a gather saw it. */
struct replica_metrics_row {
	uint32_t shard;
	uint16_t core;               /* the core that owns it */
	uint8_t role;                /* enum raft_role */
	uint8_t n_followers;         /* leader: entries of the core's followers[] */
	uint32_t first_follower;     /* from here */
	uint64_t term;
	uint64_t commit;
	uint64_t applied;
	uint64_t leader_changes;     /* counters since the replica was opened */
	uint64_t snapshots_sent;
	uint64_t snapshots_sent_bytes;
	uint64_t snapshots_received;
	uint64_t snapshots_received_bytes;
};

struct replica_metrics_follower {
	uint64_t node;
	uint64_t lag;                /* leader's last index - match index */
};

struct replica_metrics;

/* What a core fills; handed to it and back inside the message. */
struct replica_metrics_msg {
	struct reactor_msg msg;      /* first */
	struct replica_metrics *owner;
	unsigned core;
	struct replica_metrics_row *rows;
	uint32_t count;
	uint32_t cap;
	struct replica_metrics_follower *followers;
	uint32_t n_followers;
	uint32_t followers_cap;
	bool failed;                 /* out of memory: rows incomplete */
};

typedef void replica_metrics_done_fn(struct replica_metrics *rm, void *arg);

struct replica_metrics {
	unsigned cores;
	unsigned origin;
	struct replica_metrics_msg *msgs;  /* [cores] */
	unsigned pending;            /* cores not yet answered; 0 = idle */
	replica_metrics_done_fn *done;
	void *arg;
	const struct replica_metrics_row **order; /* every row, by shard (format) */
	uint32_t order_cap;
};

/* 0 or -ENOMEM. `origin` is the core that will gather. */
int replica_metrics_init(struct replica_metrics *rm, unsigned cores, unsigned origin);
void replica_metrics_destroy(struct replica_metrics *rm);

static inline bool replica_metrics_busy(const struct replica_metrics *rm)
{
	return rm->pending != 0;
}

/*
 * Asks every core for the rows of the replicas it holds; done(rm, arg)
 * runs on the origin once all answered (never from inside this call). Each
 * core's reactor->user must be its struct node_core. Precondition: not
 * busy, `r` is the origin's reactor.
 */
void replica_metrics_start(struct reactor *r, struct replica_metrics *rm,
			   replica_metrics_done_fn *done, void *arg);

/* Replicas in the last gather (every core's rows). */
uint64_t replica_metrics_count(const struct replica_metrics *rm);

/*
 * Appends, after the registry's text (metrics_format), the gauge
 * ringkv_metrics_per_replica_enabled (1 when the series follow, 0 when
 * `enabled` is false: turned off, or over the auto limit) and, when
 * enabled, the families of every row of the last gather, each family's
 * series ordered by shard, labelled shard and core (and follower for the
 * lag). 0, or -ENOMEM (out of memory here or in a core's gather).
 */
int replica_metrics_format(struct replica_metrics *rm, bool enabled, struct metrics_buf *out);

#endif
