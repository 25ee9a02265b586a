/*
 * `ringkv rebalance`: see tools/rebalance.c.
 */
#ifndef RINGKV_TOOLS_REBALANCE_H
#define RINGKV_TOOLS_REBALANCE_H

#include <stdbool.h>
#include <stdint.h>

enum rebalance_exit {
	REBALANCE_EXIT_OK = 0,        /* planned (--dry-run), or carried out */
	REBALANCE_EXIT_REFUSED = 1,   /* refused, or a move or transfer failed */
	REBALANCE_EXIT_USAGE = 2,     /* the node asked does not answer */
};

struct rebalance_args {
	const char *address;          /* any node of the cluster */
	int timeout_ms;               /* connect and each request */
	bool json;                    /* one object on stdout */
	bool apply;                   /* carry the plan out (else: print it) */
	bool wait;                    /* each move's phases */
	uint64_t rate;                /* each move's snapshot cap; 0: the node's */
};

/*
 * Plans the moves and leadership transfers that even out the cluster
 * (cluster/planner.h) from every node's own view, prints the plan, and
 * with `apply` runs the moves one at a time, then the transfers. Exit
 * status: enum rebalance_exit.
 */
int rebalance_run(const struct rebalance_args *a);

#endif
