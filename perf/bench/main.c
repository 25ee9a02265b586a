/*
 * ringkv-bench: entry point. Parses options, resolves the address, opens
 * every connection up front (so connection set-up is never measured), starts
 * one worker thread per --threads, prints a live progress line once a second
 * on a terminal, then merges the per-thread statistics and reports.
 *
 * The main thread never touches the hot path: it reads workers' statistics
 * through relaxed atomic loads only (see worker.h).
 */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "perf/bench/auth.h"
#include "perf/bench/options.h"
#include "perf/bench/preflight.h"
#include "perf/bench/report.h"
#include "perf/bench/worker.h"
#include "tools/libringkv.h"

#define PROGRESS_POLL_NS (50u * 1000 * 1000)
#define NS_PER_S 1e9
/* A rate over less than this is too noisy to print. */
#define PROGRESS_MIN_SPAN_NS (200u * 1000 * 1000)

static struct bench_run *signal_run;

static void on_signal(int sig)
{
	(void)sig;
	if (signal_run != NULL)
		__atomic_store_n(&signal_run->stop, 1, __ATOMIC_RELAXED);
}

static int resolve(const struct bench_options *opts, struct bench_run *run)
{
	struct addrinfo hints, *res;
	int rv;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rv = getaddrinfo(opts->host, opts->port, &hints, &res);
	if (rv != 0) {
		fprintf(stderr, "ringkv-bench: cannot resolve %s:%s: %s\n", opts->host, opts->port,
			gai_strerror(rv));
		return -EINVAL;
	}
	memcpy(&run->addr, res->ai_addr, res->ai_addrlen);
	run->addr_len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };

	nanosleep(&ts, NULL);
}

static int all_done(struct worker *workers, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (!__atomic_load_n(&workers[i].done, __ATOMIC_ACQUIRE))
			return 0;
	return 1;
}

/* Live statistics of every worker, merged into snapshot. */
static void snapshot_take(struct bench_stats *snapshot, struct worker *workers, unsigned n)
{
	unsigned i;

	worker_stats_reset(snapshot);
	for (i = 0; i < n; i++)
		worker_stats_merge(snapshot, &workers[i].stats);
}

/* One progress line: the rate since the previous line (or since the end of
 * the warm-up) and the p99 of everything measured so far. */
static void progress_print(const struct bench_run *run, struct bench_stats *snapshot,
			   uint64_t now, uint64_t *last_ops, uint64_t *last_ns)
{
	struct histogram *all = malloc(sizeof(*all));
	uint64_t ops = 0, since = *last_ns > run->measure_ns ? *last_ns : run->measure_ns;
	unsigned op;

	if (all == NULL)
		return;
	histogram_reset(all);
	for (op = 0; op < BENCH_OP_COUNT; op++) {
		histogram_merge(all, &snapshot->latency[op]);
		ops += snapshot->completed[op];
	}
	printf("\r\033[K[%5.1fs] ", (double)(now - run->start_ns) / NS_PER_S);
	if (now < run->measure_ns + PROGRESS_MIN_SPAN_NS) {
		printf("warming up");
	} else {
		printf("%10.0f ops/s  p99 %9.1f us  errors %llu",
		       (double)(ops - *last_ops) * NS_PER_S / (double)(now - since),
		       (double)histogram_percentile(all, 99) / 1000.0, report_errors(snapshot));
		*last_ops = ops;
		*last_ns = now;
	}
	fflush(stdout);
	free(all);
}

/* Wait for the workers, printing progress once a second on a terminal. */
static void watch(const struct bench_run *run, struct worker *workers, unsigned n,
		  struct bench_stats *snapshot)
{
	int tty = isatty(STDOUT_FILENO);
	uint64_t next_tick = run->start_ns + 1000000000u, last_ops = 0, last_ns = 0;

	while (!all_done(workers, n)) {
		uint64_t now = worker_now_ns();

		if (tty && now >= next_tick) {
			snapshot_take(snapshot, workers, n);
			progress_print(run, snapshot, now, &last_ops, &last_ns);
			next_tick += 1000000000u;
		}
		sleep_ns(PROGRESS_POLL_NS);
	}
	if (tty)
		printf("\r\033[K");
	fflush(stdout);
}

/* Length of the measurement window in seconds. */
static double window_seconds(const struct bench_run *run, const struct bench_stats *stats,
			     uint64_t stopped_ns)
{
	uint64_t end;

	if (run->end_ns != 0)
		end = stopped_ns < run->end_ns ? stopped_ns : run->end_ns;
	else
		end = stats->finish_ns;
	return end > run->measure_ns ? (double)(end - run->measure_ns) / NS_PER_S : 0;
}

int main(int argc, char **argv)
{
	struct bench_options opts;
	struct bench_run run;
	struct bench_stats *stats = NULL;
	struct worker *workers = NULL;
	char err[256];
	unsigned i, c, started = 0;
	uint64_t stopped_ns;
	int rv, status = 1;

	rv = options_parse(argc, argv, &opts, err, sizeof(err));
	if (rv == 1)
		return 0;
	if (rv != 0) {
		fprintf(stderr, "ringkv-bench: %s\n", err);
		return 2;
	}
	/* Before anything connects: the pre-flight look and the cluster map
	 * go through libringkv too. */
	if (opts.auth_file && rkv_auth_set_file(opts.auth_file, err, sizeof(err)) != 0) {
		fprintf(stderr, "ringkv-bench: --auth-file: %s\n", err);
		return 2;
	}
	if (opts.tls_ca && rkv_tls_set_ca(opts.tls_ca, err, sizeof(err)) != 0) {
		fprintf(stderr, "ringkv-bench: --tls-ca: %s\n", err);
		return 2;
	}
	memset(&run, 0, sizeof(run));
	run.opts = &opts;
	if (resolve(&opts, &run) != 0)
		return 1;
	if (!opts.print_keys)
		preflight_check_keys(&opts);
	if (bench_route_init(&run.route, &opts) != 0)
		return 1;
	if (opts.shard_spread && !run.route.spread_count) {
		fprintf(stderr, "ringkv-bench: --shard-spread: no cluster map from %s:%s\n",
			opts.host, opts.port);
		return 1;
	}
	if (opts.print_keys) {
		bench_route_print_keys(&run.route, &opts, stdout);
		bench_route_free(&run.route);
		return 0;
	}
	workers = calloc(opts.threads, sizeof(*workers));
	stats = malloc(sizeof(*stats));
	if (workers == NULL || stats == NULL)
		goto err_alloc;
	for (i = 0, c = 0; i < opts.threads; i++) {
		struct worker *w = &workers[i];
		unsigned j;

		w->run = &run;
		w->index = i;
		w->first_connection = c;
		w->connections = opts.connections / opts.threads + (i < opts.connections % opts.threads);
		w->quota = opts.requests / opts.threads + (i < opts.requests % opts.threads);
		w->fds = malloc(w->connections * sizeof(*w->fds));
		if (opts.tls_ca)
			w->ssls = calloc(w->connections, sizeof(*w->ssls));
		if (w->fds == NULL || (opts.tls_ca && w->ssls == NULL))
			goto err_connect;
		for (j = 0; j < w->connections; j++)
			w->fds[j] = -1;
		for (j = 0; j < w->connections; j++, c++) {
			rv = worker_connect(&run, c);
			if (rv < 0) {
				fprintf(stderr, "ringkv-bench: connect to %s:%s: %s\n", opts.host,
					opts.port, strerror(-rv));
				goto err_connect;
			}
			w->fds[j] = rv;
			if (w->ssls && worker_tls_handshake(rv, &w->ssls[j], err, sizeof(err)) != 0) {
				fprintf(stderr, "ringkv-bench: TLS to %s:%s: %s\n", opts.host,
					opts.port, err);
				goto err_connect;
			}
			if (bench_authenticate(rv, w->ssls ? w->ssls[j] : NULL, opts.protocol, err,
					       sizeof(err)) != 0) {
				fprintf(stderr, "ringkv-bench: %s:%s: %s\n", opts.host, opts.port, err);
				goto err_connect;
			}
		}
	}
	signal_run = &run;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	run.start_ns = worker_now_ns();
	run.measure_ns = run.start_ns + (uint64_t)(opts.warmup_s * NS_PER_S);
	if (opts.duration_s > 0)
		run.end_ns = run.measure_ns + (uint64_t)(opts.duration_s * NS_PER_S);
	for (i = 0; i < opts.threads; i++) {
		rv = worker_start(&workers[i]);
		if (rv != 0) {
			fprintf(stderr, "ringkv-bench: start thread: %s\n", strerror(-rv));
			__atomic_store_n(&run.stop, 1, __ATOMIC_RELAXED);
			break;
		}
		started++;
	}
	watch(&run, workers, started, stats);
	stopped_ns = worker_now_ns();
	worker_stats_reset(stats);
	status = started == opts.threads ? 0 : 1;
	for (i = 0; i < started; i++) {
		worker_join(&workers[i]);
		worker_stats_merge(stats, &workers[i].stats);
		if (workers[i].error != 0) {
			fprintf(stderr, "ringkv-bench: %s\n", workers[i].error_text);
			status = 1;
		}
	}
	report_text(opts.json ? stderr : stdout, &opts, stats, window_seconds(&run, stats, stopped_ns));
	if (opts.json)
		report_json(stdout, &opts, stats, window_seconds(&run, stats, stopped_ns));
	for (i = 0; i < opts.threads; i++) {
		free(workers[i].fds);
		free(workers[i].ssls);
	}
	free(workers);
	free(stats);
	bench_route_free(&run.route);
	return status;

err_connect:
	for (i = 0; i < opts.threads; i++) {
		unsigned j;

		for (j = 0; workers[i].fds != NULL && j < workers[i].connections; j++)
			if (workers[i].fds[j] >= 0)
				close(workers[i].fds[j]);
		for (j = 0; workers[i].ssls != NULL && j < workers[i].connections; j++)
			SSL_free(workers[i].ssls[j]);
		free(workers[i].fds);
		free(workers[i].ssls);
	}
err_alloc:
	free(workers);
	free(stats);
	bench_route_free(&run.route);
	return 1;
}
