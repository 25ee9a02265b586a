/*
 * Micro-benchmark of what counting costs a native write: the one
 * metrics_observe of ringkv_write_duration_seconds (the node's own series
 * and buckets, registered by node_metrics_register) plus one metrics_inc,
 * over latencies spread across the buckets. This is the part of the metrics
 * that --admin-listen none does not switch off; perf/metrics-cost.sh
 * measures the scrapes. Prints nanoseconds per write and, for a given SET
 * rate of one core, the share of its time that is.
 *
 * The row is summed and checked at the end, so the compiler cannot drop
 * the work and a broken histogram cannot report a number.
 *
 * usage: bench_metrics [writes, default 50000000] [SETs/s of one core, default 60000]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/metrics.h"
#include "server/node_metrics.h"

#define LATENCIES 4096u  /* a power of two: the index is masked */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	uint64_t writes = argc > 1 ? strtoull(argv[1], NULL, 10) : 50000000u;
	double rate = argc > 2 ? strtod(argv[2], NULL) : 60000.0;
	static struct node_metric_ids ids;
	static uint64_t latency_us[LATENCIES];
	struct metrics m;
	struct metrics_core *mc;
	uint64_t seed = 88172645463325252u, observed = 0;
	double start, ns;

	if (writes == 0 || !(rate > 0)) {
		fprintf(stderr, "usage: bench_metrics [writes] [SETs/s of one core]\n");
		return 2;
	}
	if (metrics_init(&m, 1) != 0 || node_metrics_register(&m, &ids) != 0 ||
	    metrics_freeze(&m) != 0) {
		fprintf(stderr, "bench_metrics: cannot register the node's series\n");
		return 1;
	}
	mc = metrics_core_of(&m, 0);
	/* Log-uniform from 64 us to about 16 ms: most buckets get hits. */
	for (unsigned i = 0; i < LATENCIES; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		latency_us[i] = 64u << (seed % 9) | (seed >> 32) % 64;
	}
	start = now_s();
	for (uint64_t i = 0; i < writes; i++) {
		metrics_observe(mc, ids.write_latency, latency_us[i & (LATENCIES - 1)]);
		metrics_inc(mc, ids.admin_requests);
	}
	ns = (now_s() - start) * 1e9 / (double)writes;
	/* The histogram's count is its last slot: every observation landed. */
	observed = mc->values[m.series[ids.write_latency].slot +
			      metrics_histogram_slots(m.series[ids.write_latency].nbounds) - 1];
	if (observed != writes) {
		fprintf(stderr, "bench_metrics: %" PRIu64 " observations counted of %" PRIu64 "\n",
			observed, writes);
		return 1;
	}
	printf("%" PRIu64 " writes: %.1f ns of counting per write; at %.0f SETs/s on one "
	       "core (%.1f us each) that is %.3f%% of the core\n", writes, ns, rate,
	       1e6 / rate, ns * rate * 1e-9 * 100);
	metrics_destroy(&m);
	return 0;
}
