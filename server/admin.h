/*
 * The admin HTTP/1.1 port (--admin-listen): GET /metrics (Prometheus text
 * exposition), GET /health (liveness) and GET /ready (readiness), served on
 * core 0's io_uring ring like the client listeners, never blocking it.
 *
 * Bounds, so that no client can hold anything up: at most ADMIN_CONNS_MAX
 * connections (more are closed at once), a request head of at most
 * ADMIN_REQUEST_MAX bytes (431 beyond), and ADMIN_TIMEOUT_MS for a whole
 * exchange (a slow or silent client is cut off). Every connection answers
 * one request and closes (Connection: close).
 *
 * Memory: struct admin, its connections and the scrape rows are allocated
 * at start-up and freed by admin_destroy after the reactors joined, so a
 * completion reaped while the ring shuts down never finds freed memory.
 */
#ifndef RINGKV_SERVER_ADMIN_H
#define RINGKV_SERVER_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct admin;
struct metrics;
struct node;
struct reactor;

#define ADMIN_CONNS_MAX 16
#define ADMIN_REQUEST_MAX 4096
#define ADMIN_TIMEOUT_MS 5000

/*
 * Binds host:port (blocking: call before the reactors start) and prepares
 * the server for core 0. 0, or a negative errno with the reason in `err`.
 * The bound port (host:0 picks one) is in *bound.
 */
int admin_create(struct admin **out, struct node *n, struct metrics *m, const char *host,
		 uint16_t port, uint16_t *bound, char *err, size_t errlen);

/* On core 0, from its start callback: starts accepting. */
void admin_start(struct admin *a, struct reactor *r);

/* On core 0, when the node stops: stops accepting; open exchanges are cut. */
void admin_stop(struct admin *a);

/* After the reactors joined. */
void admin_destroy(struct admin *a);

#endif
