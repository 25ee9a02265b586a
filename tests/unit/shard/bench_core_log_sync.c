/*
 * core-log-sync-bench: the cost of one batch of the per-core log
 * (shard/core_log.h) when each batch waits for the one before to be
 * durable, as an unpipelined client sees it: stage E entries of one group,
 * flush, run the ring until the batch is reported durable, repeat. Prints
 * batches/s and the latency of a batch (flush to durable callback):
 * mean, p50, p99. With durable-end marks (format 2), each batch's chain
 * also carries the mark of the batch before (one more page written back
 * per fdatasync): this is what the figure shows. Builds against a tree
 * without marks too (the mark counters are then not printed), so the two
 * can be compared on the same disk.
 *
 *   core-log-sync-bench [--batches 2000] [--entries 16] [--payload 100]
 *                       [--dir DIR]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/errors.h"
#include "core/log.h"
#include "io/ring.h"
#include "shard/core_log.h"

struct sync_bench {
	uint64_t durable_batch; /* number of the last batch reported durable */
	int failed;
};

static void on_persisted(void *arg, const struct core_log_persisted *p)
{
	struct sync_bench *b = arg;

	if (p->status != 0)
		b->failed = p->status;
	else if (p->batch > b->durable_batch)
		b->durable_batch = p->batch;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	const char *dir = "/tmp/ringkv-core-log-sync-bench";
	unsigned batches = 2000, per_batch = 16, payload = 100;
	struct core_log_config cfg = { 0 };
	struct sync_bench b = { 0 };
	struct core_log_stats st;
	struct raft_entry *e;
	struct core_log *log;
	struct io_ring io;
	uint64_t *lat, next = 1, sum = 0, start;
	uint8_t *data;
	char err[512], cmd[1200];

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--batches"))
			batches = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--entries"))
			per_batch = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--payload"))
			payload = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--dir"))
			dir = argv[i + 1];
		else {
			fprintf(stderr, "usage: %s [--batches N] [--entries E] [--payload B] "
				"[--dir DIR]\n", argv[0]);
			return 2;
		}
	}
	if (batches == 0 || per_batch == 0 || per_batch > 4096 || payload > (1u << 20)) {
		fprintf(stderr, "bad --batches, --entries or --payload\n");
		return 2;
	}
	e = calloc(per_batch, sizeof *e);
	lat = calloc(batches, sizeof *lat);
	data = malloc(payload ? payload : 1);
	if (!e || !lat || !data)
		return 1;
	memset(data, 'v', payload);
	log_set_level(LOG_WARN);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	if (io_ring_init(&io, 256, err, sizeof err) != 0) {
		fprintf(stderr, "ring: %s\n", err);
		return 1;
	}
	cfg.dir = dir;
	cfg.persisted = on_persisted;
	cfg.persisted_arg = &b;
	if (core_log_open(&log, &cfg, &io, err, sizeof err) != 0) {
		fprintf(stderr, "core_log_open: %s\n", err);
		return 1;
	}
	start = now_us();
	for (unsigned k = 0; k < batches && !b.failed; k++) {
		uint64_t t0, want;

		for (unsigned i = 0; i < per_batch; i++)
			e[i] = (struct raft_entry){ .term = 1, .type = 1, .len = payload,
						    .data = data };
		if (core_log_append(log, 1, next, e, per_batch) != 0)
			return 1;
		next += per_batch;
		t0 = now_us();
		core_log_stats(log, &st);
		want = st.batches + 1;
		while (b.durable_batch < want && !b.failed) {
			core_log_flush(log);
			if (io_ring_submit_wait(&io, 1000000) != 0)
				return 1;
			io_ring_dispatch(&io);
		}
		lat[k] = now_us() - t0;
		sum += lat[k];
	}
	start = now_us() - start;
	while (!core_log_idle(log)) {
		core_log_flush(log);
		io_ring_submit_wait(&io, 100000);
		io_ring_dispatch(&io);
	}
	core_log_stats(log, &st);
	qsort(lat, batches, sizeof *lat, cmp_u64);
	printf("entries/batch %u payload %u B: %.0f batches/s, latency mean %.0f us, p50 %" PRIu64
	       " us, p99 %" PRIu64 " us, fsyncs %" PRIu64,
	       per_batch, payload, (double)batches * 1e6 / (double)start,
	       (double)sum / batches, lat[batches / 2], lat[batches * 99 / 100], st.fsyncs);
#ifdef CORE_LOG_DEFAULT_MARK_DELAY_MS
	printf(", marks %" PRIu64 " with batches, %" PRIu64 " alone", st.marks, st.idle_marks);
#endif
	printf("\n");
	core_log_close(log);
	io_ring_exit(&io);
	free(e);
	free(lat);
	free(data);
	return b.failed ? 1 : 0;
}
