/*
 * Final output of ringkv-bench: a human-readable table and, with --json, one
 * JSON object on a single line. Latencies are reported in microseconds;
 * ops_per_sec counts successful operations (OK or NOT_FOUND) per second of
 * the measurement window; errors are failed replies and requests lost with a
 * connection.
 */
#ifndef RINGKV_PERF_BENCH_REPORT_H
#define RINGKV_PERF_BENCH_REPORT_H

#include <stdio.h>

#include "perf/bench/options.h"
#include "perf/bench/worker.h"

/* Sum of failed requests in stats, over all ops and statuses. */
unsigned long long report_errors(const struct bench_stats *stats);

/* Print the summary table for a run whose measurement lasted window_s. */
void report_text(FILE *out, const struct bench_options *opts, const struct bench_stats *stats,
		 double window_s);

/* Print the run as one JSON object followed by a newline. */
void report_json(FILE *out, const struct bench_options *opts, const struct bench_stats *stats,
		 double window_s);

#endif
