/*
 * core-log-bench: the per-core Raft log (shard/core_log.h) under appends
 * from G groups through one core's ring, the way a reactor drives it: each
 * loop pass stages E entries (spread round-robin over the groups, each
 * group continuing its own index), calls core_log_flush() once, then waits
 * for a completion. Prints durable records/s and fdatasyncs/s per group
 * count, to show that the fsync rate does not grow with the groups.
 *
 *   core-log-bench [--groups 1,64,1024] [--seconds 3] [--entries 64]
 *                  [--payload 100] [--dir DIR]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/log.h"
#include "io/ring.h"
#include "shard/core_log.h"

struct bench {
	uint64_t durable;   /* entries reported durable */
	uint64_t callbacks;
	int failed;
};

static void on_persisted(void *arg, const struct core_log_persisted *p)
{
	struct bench *b = arg;

	b->callbacks++;
	if (p->status != 0)
		b->failed = p->status;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(const char *dir, unsigned groups, double seconds, unsigned per_pass,
	       unsigned payload)
{
	struct core_log_config cfg = { .dir = dir };
	struct raft_entry *e = calloc(per_pass, sizeof *e);
	uint64_t *next = calloc(groups, sizeof *next);
	uint8_t *data = malloc(payload ? payload : 1);
	struct core_log_stats st;
	struct core_log *log;
	struct io_ring io;
	struct bench b = { 0 };
	char err[512], cmd[1200];
	double start, elapsed;
	uint64_t passes = 0, staged = 0;
	unsigned g = 0;

	if (!e || !next || !data)
		return -ENOMEM;
	memset(data, 'v', payload);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return -EIO;
	if (io_ring_init(&io, 256, err, sizeof err) != 0) {
		fprintf(stderr, "ring: %s\n", err);
		return -EIO;
	}
	cfg.persisted = on_persisted;
	cfg.persisted_arg = &b;
	if (core_log_open(&log, &cfg, &io, err, sizeof err) != 0) {
		fprintf(stderr, "core_log_open: %s\n", err);
		return -EIO;
	}
	for (unsigned i = 0; i < groups; i++)
		next[i] = 1;
	start = now_s();
	do {
		/* One pass: E entries over the groups, each group's in one call. */
		for (unsigned left = per_pass; left > 0;) {
			unsigned n = groups >= per_pass ? 1 : per_pass / groups;

			if (n > left)
				n = left;
			for (unsigned i = 0; i < n; i++)
				e[i] = (struct raft_entry){ .term = 1, .type = 1, .len = payload,
							    .data = data };
			if (core_log_append(log, g, next[g], e, n) != 0)
				return -EIO;
			next[g] += n;
			staged += n;
			left -= n;
			g = (g + 1) % groups;
		}
		core_log_flush(log);
		if (io_ring_submit_wait(&io, 1000000) != 0)
			return -EIO;
		io_ring_dispatch(&io);
		passes++;
		elapsed = now_s() - start;
	} while (elapsed < seconds && !b.failed);
	while (!core_log_idle(log)) {
		core_log_flush(log);
		io_ring_submit_wait(&io, 100000);
		io_ring_dispatch(&io);
	}
	elapsed = now_s() - start;
	core_log_stats(log, &st);
	printf("groups %5u  entries/pass %4u  payload %4u B: %9.0f records/s  %7.0f fsyncs/s"
	       "  %6.1f records/fsync  %5.1f MB/s  (%" PRIu64 " passes, %" PRIu64
	       " batches, %" PRIu64 " segments made)\n",
	       groups, per_pass, payload, (double)staged / elapsed, (double)st.fsyncs / elapsed,
	       st.fsyncs ? (double)staged / (double)st.fsyncs : 0.0,
	       (double)st.bytes / elapsed / 1e6, passes, st.batches, st.created);
	core_log_close(log);
	io_ring_exit(&io);
	free(e);
	free(next);
	free(data);
	return b.failed;
}

int main(int argc, char **argv)
{
	char groups_list[256] = "1,64";
	const char *dir = "/tmp/ringkv-core-log-bench";
	double seconds = 3;
	unsigned per_pass = 64, payload = 100;
	char *save = NULL;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--groups"))
			snprintf(groups_list, sizeof groups_list, "%s", argv[i + 1]);
		else if (!strcmp(argv[i], "--seconds"))
			seconds = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--entries"))
			per_pass = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--payload"))
			payload = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--dir"))
			dir = argv[i + 1];
		else {
			fprintf(stderr, "usage: %s [--groups 1,64] [--seconds S] [--entries E]"
				" [--payload B] [--dir DIR]\n", argv[0]);
			return 2;
		}
	}
	if (per_pass == 0 || per_pass > 65536 || seconds <= 0) {
		fprintf(stderr, "bad --entries or --seconds\n");
		return 2;
	}
	log_set_level(LOG_WARN);
	for (char *tok = strtok_r(groups_list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		int groups = atoi(tok);
		int rv;

		if (groups <= 0) {
			fprintf(stderr, "bad group count %s\n", tok);
			return 2;
		}
		rv = run(dir, (unsigned)groups, seconds, per_pass, payload);
		if (rv != 0) {
			fprintf(stderr, "run failed: %s\n", rkv_strerror(rv));
			return 1;
		}
	}
	return 0;
}
