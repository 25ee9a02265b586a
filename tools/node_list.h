/*
 * `ringkv node list`: see tools/node_list.c.
 */
#ifndef RINGKV_TOOLS_NODE_LIST_H
#define RINGKV_TOOLS_NODE_LIST_H

#include <stdbool.h>

enum node_list_exit {
	NODE_LIST_EXIT_OK = 0,        /* listed (unreachable nodes included) */
	NODE_LIST_EXIT_REFUSED = 1,   /* the node asked answered an error */
	NODE_LIST_EXIT_UNREACHABLE = 2, /* the node asked does not answer */
};

struct node_list_args {
	const char *address;          /* any node of the cluster */
	int timeout_ms;               /* connect and each request */
	bool json;                    /* one object on stdout */
};

/*
 * Lists every node of the cluster as the `address` node's map names them,
 * with what each says of itself (its ClusterStatus): addresses, state (up:
 * it answered; unreachable: it did not, then its counts are the map's),
 * and its replicas and leaderships in all and per core. Exit status: enum
 * node_list_exit.
 */
int node_list_run(const struct node_list_args *a);

#endif
