/*
 * The rebalance planner (issue #17): a pure function from a view of the
 * cluster (nodes with their state and core count, shards with their
 * replicas' (node, core) and their leader, R) to a plan: replica moves
 * (shard, from node:core, to node:core) and leadership transfers. No I/O,
 * no clock, no randomness: the same view gives the same plan, so a
 * rebalance interrupted half-way and planned again from where the cluster
 * stands goes on where it stopped.
 *
 * What a plan, applied, gives (when the view allows it; the plan says
 * which it reached):
 *  - every shard's R replicas on R distinct nodes that are up; a draining
 *    or removed node gets nothing and is emptied;
 *  - replica counts per up node within one of each other;
 *  - replica counts per core of each node within one (between two cores of
 *    one node only with `core_moves`: the move a cluster runs today cannot
 *    do that, see docs/cluster/membership.md);
 *  - leaders per up node within one, then spread over each node's cores;
 *  - minimal: a replica moves only to empty a node that is not up, or from
 *    a node above its share to one below it (each such move closes one unit
 *    of the gap; none is undone later); leaders change only when that
 *    brings them closer to even.
 * Applying a plan and planning again gives no moves (convergence).
 */
#ifndef RINGKV_CLUSTER_PLANNER_H
#define RINGKV_CLUSTER_PLANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PLANNER_MAX_NODES 64
#define PLANNER_MAX_REPLICAS 16      /* of one shard */
#define PLANNER_MAX_CORES 1024       /* of one node, as --cores */

enum planner_node_state {
	PLANNER_NODE_UP = 0,         /* takes replicas and leaderships */
	PLANNER_NODE_DRAINING,       /* emptied; takes nothing */
	PLANNER_NODE_REMOVED,        /* as draining */
};

struct planner_node {
	uint64_t id;                 /* >= 1, unique */
	uint32_t cores;              /* 1..PLANNER_MAX_CORES */
	enum planner_node_state state;
};

struct planner_replica {
	uint64_t node;               /* a node id of the view */
	uint32_t core;               /* < that node's cores */
};

struct planner_shard {
	uint32_t id;
	unsigned replica_count;      /* must be the view's R */
	struct planner_replica replicas[PLANNER_MAX_REPLICAS];
	uint64_t leader;             /* the node leading it; 0 = not known */
};

/* May node `node` take a new replica of shard `shard` (it does not hold
 * one)? E.g. a node that held a founding replica of it cannot yet. */
typedef bool planner_may_host_fn(void *data, uint32_t shard, uint64_t node);

struct planner_input {
	const struct planner_node *nodes;
	unsigned node_count;         /* 1..PLANNER_MAX_NODES */
	const struct planner_shard *shards;
	uint32_t shard_count;
	unsigned replicas;           /* R */
	bool core_moves;             /* may move a replica between two cores of
				      * one node (from == to) */
	planner_may_host_fn *may_host; /* NULL: every node not holding it */
	void *data;                  /* for may_host */
};

struct planner_move {
	uint32_t shard;
	uint64_t from;
	uint32_t from_core;
	uint64_t to;
	uint32_t to_core;
	bool leader;                 /* the moved replica leads the shard (the
				      * move hands the leadership on first) */
	uint64_t next_leader;        /* then: who the plan assumes leads next */
};

struct planner_transfer {
	uint32_t shard;
	uint64_t from, to;           /* leader now (after the moves), and next */
	uint32_t to_core;            /* the core of `to`'s replica */
};

struct planner_plan {
	struct planner_move *moves;  /* in the order to run them */
	size_t move_count;
	struct planner_transfer *transfers; /* after the moves; one per shard */
	size_t transfer_count;
	/* What the view looks like with the plan applied: */
	bool replicas_balanced;      /* per up node within one, none elsewhere */
	bool cores_balanced;         /* per core of every up node within one */
	bool leaders_balanced;       /* per up node within one (known leaders) */
	bool leader_cores_balanced;  /* per core of every up node within one */
	char note[256];              /* why a balance is not reached, or "" */
};

/*
 * Plans. 0 with *out (free with planner_plan_free), or -EINVAL with the
 * reason in err: no node, too many, a duplicate or zero id, a core count
 * out of range, R of 0 or more than the up nodes, a shard with other than
 * R replicas (a move under way), a replica on an unknown node or core, two
 * replicas of a shard on one node, a leader that holds no replica. -ENOMEM.
 * A balance the view does not allow (may_host) is no error: the plan does
 * what it can and says what it leaves in `note` and the flags.
 */
int planner_plan(const struct planner_input *in, struct planner_plan *out, char *err,
		 size_t errlen);
void planner_plan_free(struct planner_plan *p);

/*
 * Applies plan p to shards (the view it was made from, or a copy): each
 * move replaces the replica, each transfer sets the leader; a moved leader
 * replica's shard gets the move's next_leader. For tests and the CLI's preview.
 */
void planner_apply(struct planner_shard *shards, uint32_t shard_count,
		   const struct planner_plan *p);

#endif
