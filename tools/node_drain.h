/*
 * `ringkv node drain`: see tools/node_drain.c.
 */
#ifndef RINGKV_TOOLS_NODE_DRAIN_H
#define RINGKV_TOOLS_NODE_DRAIN_H

#include <stdbool.h>
#include <stdint.h>

enum node_drain_exit {
	NODE_DRAIN_EXIT_OK = 0,       /* drained; --dry-run: a plan printed */
	NODE_DRAIN_EXIT_REFUSED = 1,  /* refused or a move failed, with the reason */
	NODE_DRAIN_EXIT_USAGE = 2,    /* no node reachable */
};

struct node_drain_args {
	const char *address;          /* any node of the cluster */
	int timeout_ms;               /* connect and each request */
	bool json;                    /* one object on stdout */
	bool wait;                    /* each move's phases */
	bool dry_run;                 /* the plan only: nothing changes */
	uint64_t node;
	uint64_t rate;                /* each move's snapshot cap; 0: the node's */
};

/*
 * Hands every leadership of node `node` to another voter, then moves each
 * of its replicas to a node that does not hold the shard (fewest replicas,
 * then its core with the fewest), one move at a time. The whole plan is
 * made first: a replica no node can take refuses the drain, nothing
 * changed. Exit status: enum node_drain_exit.
 */
int node_drain_run(const struct node_drain_args *a);

#endif
