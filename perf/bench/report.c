/*
 * Reports of ringkv-bench (see report.h). The JSON shape is the contract
 * perf/compare.sh reads: ops_per_sec, latency_us {p50 p90 p99 p999 max mean},
 * errors, errors_by_status, and the same per operation under ops.get/ops.put.
 */
#include "perf/bench/report.h"

#include <stdlib.h>
#include <string.h>

#define NS_PER_US 1000.0

static const double report_pcts[] = { 50, 90, 99, 99.9 };
static const char *const report_pct_keys[] = { "p50", "p90", "p99", "p999" };
#define REPORT_PCT_COUNT (sizeof(report_pcts) / sizeof(report_pcts[0]))

unsigned long long report_errors(const struct bench_stats *stats)
{
	unsigned long long n = 0;
	unsigned op, status;

	for (op = 0; op < BENCH_OP_COUNT; op++)
		for (status = 0; status < BENCH_STATUS_COUNT; status++)
			n += stats->errors[op][status];
	return n;
}

static unsigned long long op_errors(const struct bench_stats *stats, unsigned op)
{
	unsigned long long n = 0;
	unsigned status;

	for (status = 0; status < BENCH_STATUS_COUNT; status++)
		n += stats->errors[op][status];
	return n;
}

static double per_sec(unsigned long long n, double window_s)
{
	return window_s > 0 ? (double)n / window_s : 0;
}

/* Histogram of every operation together; caller frees. */
static struct histogram *all_ops(const struct bench_stats *stats)
{
	struct histogram *all = malloc(sizeof(*all));
	unsigned op;

	if (all == NULL)
		return NULL;
	histogram_reset(all);
	for (op = 0; op < BENCH_OP_COUNT; op++)
		histogram_merge(all, &stats->latency[op]);
	return all;
}

static void text_row(FILE *out, const char *name, const struct histogram *h,
		     unsigned long long not_found, unsigned long long errors, double window_s)
{
	unsigned i;

	fprintf(out, "%-5s %12.0f %11llu", name, per_sec(h->total, window_s),
		(unsigned long long)h->total);
	for (i = 0; i < REPORT_PCT_COUNT; i++)
		fprintf(out, " %9.1f", (double)histogram_percentile(h, report_pcts[i]) / NS_PER_US);
	fprintf(out, " %9.1f %10llu %8llu\n", (double)h->max / NS_PER_US, not_found, errors);
}

void report_text(FILE *out, const struct bench_options *opts, const struct bench_stats *stats,
		 double window_s)
{
	struct histogram *all = all_ops(stats);
	unsigned long long not_found = 0;
	unsigned op, status;
	int any = 0;

	if (all == NULL)
		return;
	fprintf(out, "%s %s:%s, %u connections, %u threads, pipeline %u, ratio %s, %llu keys, %s, ",
		opts->protocol == BENCH_PROTOCOL_NATIVE ? "native" : "resp", opts->host, opts->port,
		opts->connections, opts->threads, opts->pipeline, opts->ratio_text,
		(unsigned long long)opts->keys, opts->distribution_text);
	if (opts->rate > 0)
		fprintf(out, "open loop at %.0f req/s\n", opts->rate);
	else
		fprintf(out, "closed loop\n");
	fprintf(out, "measured %.2f s (after %.2f s warm-up); latency in microseconds\n\n", window_s,
		opts->warmup_s);
	fprintf(out, "%-5s %12s %11s %9s %9s %9s %9s %9s %10s %8s\n", "op", "ops/s", "count", "p50",
		"p90", "p99", "p99.9", "max", "not-found", "errors");
	for (op = 0; op < BENCH_OP_COUNT; op++) {
		if (stats->latency[op].total == 0 && op_errors(stats, op) == 0)
			continue;
		text_row(out, codec_op_name(op), &stats->latency[op], stats->not_found[op],
			 op_errors(stats, op), window_s);
		not_found += stats->not_found[op];
	}
	text_row(out, "all", all, not_found, report_errors(stats), window_s);
	fprintf(out, "errors by status:");
	for (status = 0; status < BENCH_STATUS_COUNT; status++) {
		unsigned long long n = 0;

		for (op = 0; op < BENCH_OP_COUNT; op++)
			n += stats->errors[op][status];
		if (n == 0)
			continue;
		fprintf(out, " %s=%llu", codec_status_name(status), n);
		any = 1;
	}
	fprintf(out, "%s\n", any ? "" : " none");
	if (opts->rate > 0 && stats->unfinished > 0)
		fprintf(out, "unfinished at the end (in flight or due but unsent): %llu\n",
			(unsigned long long)stats->unfinished);
	free(all);
}

/* Write s as a JSON string (only our own short ASCII strings get here). */
static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out);
		if ((unsigned char)*s < 0x20)
			fprintf(out, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, out);
	}
	fputc('"', out);
}

static void json_latency(FILE *out, const struct histogram *h)
{
	unsigned i;

	fprintf(out, "\"latency_us\":{");
	for (i = 0; i < REPORT_PCT_COUNT; i++)
		fprintf(out, "\"%s\":%.3f,", report_pct_keys[i],
			(double)histogram_percentile(h, report_pcts[i]) / NS_PER_US);
	fprintf(out, "\"max\":%.3f,\"mean\":%.3f}", (double)h->max / NS_PER_US,
		histogram_mean(h) / NS_PER_US);
}

static void json_errors_by_status(FILE *out, const struct bench_stats *stats, int only_op)
{
	unsigned op, status;
	int first = 1;

	fprintf(out, "\"errors_by_status\":{");
	for (status = 0; status < BENCH_STATUS_COUNT; status++) {
		unsigned long long n = 0;

		for (op = 0; op < BENCH_OP_COUNT; op++)
			if (only_op < 0 || (unsigned)only_op == op)
				n += stats->errors[op][status];
		if (n == 0)
			continue;
		fprintf(out, "%s\"%s\":%llu", first ? "" : ",", codec_status_name(status), n);
		first = 0;
	}
	fputc('}', out);
}

void report_json(FILE *out, const struct bench_options *opts, const struct bench_stats *stats,
		 double window_s)
{
	char addr[sizeof(opts->host) + sizeof(opts->port) + 1];
	struct histogram *all = all_ops(stats);
	unsigned long long not_found = 0;
	unsigned op;

	if (all == NULL)
		return;
	for (op = 0; op < BENCH_OP_COUNT; op++)
		not_found += stats->not_found[op];
	snprintf(addr, sizeof(addr), "%s:%s", opts->host, opts->port);
	fprintf(out, "{\"protocol\":\"%s\",\"addr\":",
		opts->protocol == BENCH_PROTOCOL_NATIVE ? "native" : "resp");
	json_string(out, addr);
	fprintf(out, ",\"connections\":%u,\"threads\":%u,\"pipeline\":%u,\"ratio\":",
		opts->connections, opts->threads, opts->pipeline);
	json_string(out, opts->ratio_text);
	fprintf(out, ",\"keys\":%llu,\"key_size\":%u,\"value_size\":%u,\"distribution\":",
		(unsigned long long)opts->keys, opts->key_size, opts->value_size);
	json_string(out, opts->distribution_text);
	fprintf(out, ",\"mode\":\"%s\",\"rate\":%.3f,\"seed\":%llu,\"warmup_s\":%.3f",
		opts->rate > 0 ? "open" : "closed", opts->rate, (unsigned long long)opts->seed,
		opts->warmup_s);
	fprintf(out, ",\"duration_s\":%.6f,\"requests\":%llu,\"ops_per_sec\":%.3f,", window_s,
		(unsigned long long)all->total, per_sec(all->total, window_s));
	json_latency(out, all);
	fprintf(out, ",\"not_found\":%llu,\"errors\":%llu,", not_found, report_errors(stats));
	json_errors_by_status(out, stats, -1);
	fprintf(out, ",\"unfinished\":%llu,\"ops\":{", (unsigned long long)stats->unfinished);
	for (op = 0; op < BENCH_OP_COUNT; op++) {
		const struct histogram *h = &stats->latency[op];

		fprintf(out, "%s\"%s\":{\"requests\":%llu,\"ops_per_sec\":%.3f,", op ? "," : "",
			codec_op_name(op), (unsigned long long)h->total, per_sec(h->total, window_s));
		json_latency(out, h);
		fprintf(out, ",\"not_found\":%llu,\"errors\":%llu,",
			(unsigned long long)stats->not_found[op], op_errors(stats, op));
		json_errors_by_status(out, stats, (int)op);
		fputc('}', out);
	}
	fprintf(out, "}}\n");
	free(all);
}
