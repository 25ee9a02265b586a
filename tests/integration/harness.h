/*
 * Helpers for integration tests that run real ringkvd processes on
 * 127.0.0.1: start one on an ephemeral port, stop it (signal + wait with a
 * deadline), temporary data directories, and a cluster of N nodes (struct
 * cluster, below). Every process a test starts, the harness stops, also
 * when a check fails (CHECK exits through the cleanup).
 */
#ifndef RINGKV_TESTS_HARNESS_H
#define RINGKV_TESTS_HARNESS_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

struct server {
	pid_t pid;
	int port;
	char addr[64];   /* "127.0.0.1:PORT" */
	const char *stderr_path; /* set before server_start: its stderr goes
				  * to this file (appended) instead of ours */
};

struct rkv_client;
struct rkv_cluster_map;

/* Opens `n` client connections to `addr`; any failure fails the test. */
void harness_connect_all(struct rkv_client **c, unsigned n, const char *addr);
void harness_close_all(struct rkv_client **c, unsigned n);

/* Kills every server still running, runs the hook of harness_at_cleanup
 * (if any), and removes registered directories. */
void harness_cleanup(void);

/* A function harness_cleanup runs once servers are dead and before it
 * removes directories (e.g. to unmount a file system inside one). */
void harness_at_cleanup(void (*fn)(void));

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                          \
			fprintf(stderr, "\n");                                 \
			harness_cleanup();                                     \
			exit(1);                                               \
		}                                                              \
	} while (0)

/* mkdtemp under $TMPDIR or /tmp, removed by harness_cleanup. */
const char *harness_tmpdir(void);

/* Lines of the file at `path` holding `what` (0 when it cannot be read):
 * how the tests count a server's log lines. */
unsigned harness_lines_with(const char *path, const char *what);

/*
 * Starts `binary` with `args` (NULL-terminated, after argv[0]) plus
 * --listen 127.0.0.1:0, waits up to 15 s for its "listening on" line.
 * Returns 0, or -1 when it exited or never said it listens (its output
 * goes to stderr as usual).
 */
int server_start(struct server *s, const char *binary, const char *const *args);

/* Sends `sig`, waits up to `timeout_ms`; returns the exit status as
 * waitpid reports it, or -1 on timeout (then it is SIGKILLed). */
int server_stop(struct server *s, int sig, int timeout_ms);

/* SIGTERM, then fails the test (naming `what`) unless it exits 0 within
 * timeout_ms. */
void server_stop_clean(struct server *s, int timeout_ms, const char *what);

/* Runs `binary` with args to completion (timeout 15 s), returns its exit
 * code (or 128+signal), capturing stderr into buf. */
int run_capture(const char *binary, const char *const *args, char *buf, size_t len);

/* run_capture, then prints "$ NAME ARGS -> EXIT" and the output (for the
 * test's log of CLI commands). */
int run_capture_echo(const char *binary, const char *const *args, char *buf, size_t len);

/* CLOCK_MONOTONIC in milliseconds, and a sleep of `ms` milliseconds. */
long harness_now_ms(void);
void harness_sleep_ms(long ms);

/* ---- a cluster of ringkvd nodes ----------------------------------------------
 *
 * Node i (0-based) has node id i+1, the peer address
 * <host_prefix><i+1>:<port> and the data dir <base_dir>/node<i+1>, which
 * survives a stop, so that cluster_start after cluster_kill or cluster_stop
 * restarts the node on its own data. Every node is started with --node-id,
 * --initial-cluster (all nodes), --data-dir, then the cluster's args, then
 * its own. Every node a test leaves running, and every node still up when
 * a CHECK fails, is SIGKILLed by harness_cleanup.
 */
#define CLUSTER_MAX_NODES 5

struct cluster_node {
	struct server srv;          /* pid and client address while up */
	struct rkv_client *client;  /* cluster_client's connection, or NULL */
	const char *args[8];        /* this node's own flags, NULL-terminated */
	char id[8];                 /* its node id as text */
	char peer[64];              /* its peer address, "HOST:PORT" */
	char dir[512];              /* its data dir */
	char log[600];              /* where its stderr goes ("": inherited) */
	bool up;                    /* started and not stopped since */
};

struct cluster {
	const char *binary;
	const char *base_dir;       /* temporary, removed by harness_cleanup */
	unsigned count;             /* nodes */
	char initial[256];          /* --initial-cluster */
	const char *const *args;    /* flags of every node, NULL-terminated */
	int connect_timeout_ms;     /* cluster_client's connect bound (2000) */
	int request_timeout_ms;     /* cluster_client's request bound (3000) */
	struct cluster_node nodes[CLUSTER_MAX_NODES];
};

/* Fills c for `count` nodes (nothing started) and makes its base dir;
 * the test then sets c->args and nodes[i].args. A failure fails the test. */
void cluster_init(struct cluster *c, const char *binary, unsigned count,
		  const char *host_prefix, unsigned port);

/* Sends each node's stderr to <dir>/node<id>.log (dir NULL: the base dir). */
void cluster_keep_logs(struct cluster *c, const char *dir);

/* Starts node i (again, on its data dir, after a stop); fails the test
 * when it does not start. */
void cluster_start(struct cluster *c, unsigned i);
void cluster_start_all(struct cluster *c);

/* kill -9 of node i (its client closed); fails the test when it does not
 * die within 10 s. */
void cluster_kill(struct cluster *c, unsigned i);

/* SIGTERM to node i (its client closed); fails the test unless it exits 0
 * within timeout_ms. cluster_stop_all does so for every node still up. */
void cluster_stop(struct cluster *c, unsigned i, int timeout_ms);
void cluster_stop_all(struct cluster *c, int timeout_ms);

/* A connection to node i, made on first use with the cluster's bounds and
 * kept; NULL while the node is down or does not accept one. */
struct rkv_client *cluster_client(struct cluster *c, unsigned i);

/* Closes node i's connection (after a transport error: the next
 * cluster_client connects again). */
void cluster_drop_client(struct cluster *c, unsigned i);

/*
 * Waits up to within_ms until node i's cluster map names a leader for
 * every shard and the client address of every node (a node learns a
 * peer's from its hello); returns that map (rkv_cluster_map_free it), or
 * NULL when the time ran out.
 */
struct rkv_cluster_map *cluster_wait_leaders(struct cluster *c, unsigned i, long within_ms);

#endif
