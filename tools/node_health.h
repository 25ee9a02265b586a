/*
 * `ringkv node health`: asks a node's admin port (ringkvd --admin-listen)
 * for GET /health and GET /ready and prints what they say, as text or as
 * one JSON object. Plain blocking sockets, bounded by the CLI's timeout:
 * this is a command-line tool, not a reactor.
 */
#ifndef RINGKV_TOOLS_NODE_HEALTH_H
#define RINGKV_TOOLS_NODE_HEALTH_H

#include <stdbool.h>

#define NODE_HEALTH_DEFAULT_ADMIN "127.0.0.1:7071"

enum node_health_result {
	NODE_HEALTH_READY,       /* alive and ready */
	NODE_HEALTH_NOT_READY,   /* alive, /ready said 503: the reasons printed */
	NODE_HEALTH_BAD_ADDRESS, /* the address is not HOST:PORT */
	NODE_HEALTH_UNREACHABLE, /* cannot connect, or no HTTP answer we understand */
	NODE_HEALTH_TIMEOUT,     /* the node did not answer within timeout_ms */
};

/*
 * Asks the admin port at `address` (HOST:PORT, [V6]:PORT) and prints the
 * answer on stdout (`json`: one object, also when the node cannot be
 * reached), errors on stderr. `timeout_ms` bounds the whole exchange
 * (0 = no bound).
 */
enum node_health_result node_health_run(const char *address, int timeout_ms, bool json);

#endif
