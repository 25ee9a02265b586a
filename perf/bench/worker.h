/*
 * One ringkv-bench thread: its own io_uring ring, its own connections, its
 * own workload stream and its own statistics. Threads share only the
 * read-only struct bench_run and its stop flag.
 *
 * Statistics have a single writer, the worker. It updates them with relaxed
 * atomic stores so that the main thread can read a live, slightly stale copy
 * for the progress line (worker_stats_merge) without any lock on the hot
 * path; after worker_join() the copy is exact.
 */
#ifndef RINGKV_PERF_BENCH_WORKER_H
#define RINGKV_PERF_BENCH_WORKER_H

#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

#include "perf/bench/codec.h"
#include "perf/bench/histogram.h"
#include "perf/bench/options.h"
#include "perf/bench/route.h"

struct ssl_st;

/* The run as every worker sees it; read-only once workers start, but stop. */
struct bench_run {
	const struct bench_options *opts;
	struct sockaddr_storage addr; /* server address */
	socklen_t addr_len;
	uint64_t start_ns;            /* CLOCK_MONOTONIC start of warm-up */
	uint64_t measure_ns;          /* requests started at or after this are measured */
	uint64_t end_ns;              /* --duration: end of measurement; 0 with --requests */
	int stop;                     /* set (atomically) to end the run early */
	struct bench_route route;     /* cluster: the leaders' nodes (nodes 0: off) */
};

struct bench_stats {
	struct histogram latency[BENCH_OP_COUNT];          /* ns, successful ops only */
	uint64_t completed[BENCH_OP_COUNT];                /* successful: OK or NOT_FOUND */
	uint64_t not_found[BENCH_OP_COUNT];                /* of which NOT_FOUND */
	uint64_t errors[BENCH_OP_COUNT][BENCH_STATUS_COUNT]; /* failed, by status */
	uint64_t unfinished;   /* measured requests due or in flight when the run ended */
	uint64_t finish_ns;    /* time of the last measured completion */
};

struct worker {
	pthread_t thread;
	const struct bench_run *run;
	unsigned index;            /* 0..threads-1 */
	unsigned first_connection; /* global index of this worker's first connection */
	unsigned connections;      /* connections owned by this worker */
	uint64_t quota;            /* --requests: measured requests to issue (unused by time) */
	struct bench_stats stats;  /* written by the worker only */
	int *fds;                  /* connected sockets, connections of them; the worker closes them */
	struct ssl_st **ssls;      /* --tls-ca: their TLS state once handshaken
				    * (worker_tls_handshake), or NULL; the
				    * worker frees them */
	int error;                 /* 0, or the negative errno that stopped the worker */
	char error_text[256];      /* detail for error */
	int done;                  /* set (release) when the thread is about to exit */
};

/* Open one blocking TCP connection with TCP_NODELAY set for connection
 * number `connection`: to run->addr, or when routing to its node
 * (bench_route_conn_node). Returns the socket or a negative errno. */
int worker_connect(const struct bench_run *run, unsigned connection);

/* --tls-ca: the TLS handshake on connected socket `fd` (blocking, before
 * the run; rkv_tls_set_ca was called). 0 with *ssl set, or a negative code
 * with the reason in err. */
int worker_tls_handshake(int fd, struct ssl_st **ssl, char *err, size_t err_len);

/* Start w's thread. The caller fills run, index, first_connection,
 * connections and quota first. Returns 0 or a negative errno. */
int worker_start(struct worker *w);

/* Wait for w's thread to end; its stats are then final. */
void worker_join(struct worker *w);

/* Add the current values of src (possibly live) into dst (caller-owned,
 * zeroed with worker_stats_reset first). */
void worker_stats_reset(struct bench_stats *stats);
void worker_stats_merge(struct bench_stats *dst, const struct bench_stats *src);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t worker_now_ns(void);

#endif
