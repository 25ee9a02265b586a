/*
 * storage-bench: one shard's storage engine (WAL group commit, memtables,
 * SSTables, compaction, block cache) driven in-process on one io_uring ring,
 * with RocksDB db_bench's flags and output lines, so the two can be run side
 * by side on the same machine:
 *
 *   storage-bench --benchmarks=fillrandom,readrandom --num=1000000 \
 *       --key_size=16 --value_size=100 --db=DIR
 *
 * Like db_bench by default, the fill writes the WAL without an fdatasync per
 * write (--sync=0: the shard's benchmark-only wal_sync_off mode; --sync=1
 * syncs every group). Keys are db_bench's: the 8-byte big-endian random
 * integer in [0, num), zero padded to key_size. One engine serves many
 * requests at once, so operations are pipelined --inflight deep (default 1:
 * one at a time, like db_bench's single thread).
 *
 * Benchmarks: fillrandom, fillseq, readrandom, readwhilewriting (reads one
 * at a time while writes keep flushes and compactions busy: the read
 * latency percentiles show what background slices cost a request), and
 * stats. Prints RSS and the engine's memory budgets at the end.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/errors.h"
#include "core/log.h"
#include "io/ring.h"
#include "shard/block_cache.h"
#include "shard/shard.h"
#include "tools/version.h"

struct options {
	char benchmarks[512];
	uint64_t num;
	uint64_t reads;            /* 0 = num */
	uint32_t key_size;
	uint32_t value_size;
	char db[1024];
	uint64_t cache_size;       /* --cache_size: block cache bytes */
	uint64_t write_buffer_size;/* --write_buffer_size: memtable bytes */
	bool sync;
	bool use_existing_db;
	unsigned inflight;
	uint64_t seed;
	uint64_t duration_ops;     /* readwhilewriting reads */
};

struct bench {
	struct options opt;
	struct io_ring io;
	struct block_cache *cache;
	struct shard *s;
	uint64_t rng;
	unsigned inflight;
	uint64_t done;
	uint64_t found;
	uint64_t errors;
	uint64_t *lat;             /* read latencies (ns) */
	uint64_t nlat;
};

struct op {
	struct shard_waiter w;     /* first: the write's waiter */
	struct shard_read rd;
	struct bench *b;
	uint64_t start_ns;
	bool busy;
	bool is_read;
	uint8_t key[256];
	uint8_t value[];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *x)
{
	/* splitmix64 */
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* db_bench's key: the integer big-endian in the first 8 bytes, zero padded. */
static void make_key(uint8_t *key, uint32_t key_size, uint64_t k)
{
	memset(key, 0, key_size);
	for (int i = 0; i < 8 && i < (int)key_size; i++)
		key[i] = (uint8_t)(k >> (56 - 8 * i));
}

static bool parse_flag(const char *arg, const char *name, const char **val)
{
	size_t n = strlen(name);

	if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, n) != 0 || arg[2 + n] != '=')
		return false;
	*val = arg + 3 + n;
	return true;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: ringkv-storage-bench [--FLAG=VALUE ...]\n"
		"One shard's storage engine in-process, with RocksDB db_bench's flags and\n"
		"output lines, to run beside db_bench (perf/storage/vs-db_bench.sh).\n\n"
		"  --benchmarks=LIST        fillrandom,fillseq,readrandom,readwhilewriting,stats\n"
		"                           (default fillrandom,readrandom)\n"
		"  --num=N                  keys (default 1000000)\n"
		"  --reads=N                reads (default: --num)\n"
		"  --key_size=B             8..255 (default 16)\n"
		"  --value_size=B           (default 100)\n"
		"  --db=DIR                 removed first unless --use_existing_db=1\n"
		"                           (default /tmp/storage-bench)\n"
		"  --use_existing_db=0|1    keep DIR's data\n"
		"  --sync=0|1               fdatasync every write group (default 0)\n"
		"  --cache_size=BYTES       block cache (default 8MiB)\n"
		"  --write_buffer_size=BYTES memtable (default 64MiB)\n"
		"  --inflight=N             operations in flight (default 1)\n"
		"  --seed=N                 (default 1)\n"
		"  --duration_reads=N       readwhilewriting: reads to time\n"
		"  --threads=1, --compression_type=none  accepted for db_bench's sake\n"
		"  -h, --help               this text\n"
		"  -V, --version            the version\n");
}

static int parse_args(struct options *o, int argc, char **argv)
{
	memset(o, 0, sizeof *o);
	strcpy(o->benchmarks, "fillrandom,readrandom");
	o->num = 1000000;
	o->key_size = 16;
	o->value_size = 100;
	strcpy(o->db, "/tmp/storage-bench");
	o->cache_size = 8u << 20;          /* db_bench's default block cache */
	o->write_buffer_size = 64u << 20;  /* db_bench's default memtable */
	o->inflight = 1;
	o->seed = 1;
	for (int i = 1; i < argc; i++) {
		const char *v;
		uint64_t n;

		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 1;
		}
		if (!strcmp(argv[i], "-V") || !strcmp(argv[i], "--version")) {
			version_print(stdout, "ringkv-storage-bench");
			return 1;
		}
		if (parse_flag(argv[i], "benchmarks", &v)) {
			snprintf(o->benchmarks, sizeof o->benchmarks, "%s", v);
		} else if (parse_flag(argv[i], "db", &v)) {
			snprintf(o->db, sizeof o->db, "%s", v);
		} else if (parse_flag(argv[i], "compression_type", &v)) {
			if (strcmp(v, "none") != 0)
				fprintf(stderr, "note: no compression in ringkv; --compression_type=%s ignored\n", v);
		} else if (parse_flag(argv[i], "use_existing_db", &v)) {
			o->use_existing_db = atoi(v) != 0;
		} else if (parse_flag(argv[i], "sync", &v)) {
			o->sync = atoi(v) != 0;
		} else {
			const char *names[] = { "num", "reads", "key_size", "value_size",
						"cache_size", "write_buffer_size", "inflight",
						"seed", "threads", "duration_reads" };
			size_t k;

			for (k = 0; k < sizeof names / sizeof names[0]; k++)
				if (parse_flag(argv[i], names[k], &v))
					break;
			if (k == sizeof names / sizeof names[0] || config_parse_size(v, &n) != 0) {
				fprintf(stderr, "ringkv-storage-bench: unknown or bad flag '%s' "
						"(see --help)\n", argv[i]);
				return -1;
			}
			switch (k) {
			case 0: o->num = n; break;
			case 1: o->reads = n; break;
			case 2: o->key_size = (uint32_t)n; break;
			case 3: o->value_size = (uint32_t)n; break;
			case 4: o->cache_size = n; break;
			case 5: o->write_buffer_size = n; break;
			case 6: o->inflight = n ? (unsigned)n : 1; break;
			case 7: o->seed = n; break;
			case 8: if (n != 1) fprintf(stderr, "note: one thread (one core) only\n"); break;
			case 9: o->duration_ops = n; break;
			}
		}
	}
	if (o->key_size < 8 || o->key_size > 255) {
		fprintf(stderr, "storage-bench: --key_size must be 8..255\n");
		return -1;
	}
	if (!o->reads)
		o->reads = o->num;
	return 0;
}

static void write_done(struct shard_waiter *w, int rv, const struct shard_result *res)
{
	struct op *op = (struct op *)w;
	struct bench *b = op->b;

	if (rv)
		b->errors++;
	op->busy = false;
	b->inflight--;
	b->done++;
}

static void record_read(struct bench *b, struct op *op, int rv)
{
	if (rv == 0)
		b->found++;
	else if (rv != RKV_ENOTFOUND)
		b->errors++;
	if (b->lat)
		b->lat[b->nlat++] = now_ns() - op->start_ns;
	b->done++;
}

static void read_done(struct shard_read *rd, int rv, const void *value, size_t len)
{
	struct op *op = rd->arg;
	struct bench *b = op->b;

	record_read(b, op, rv);
	op->busy = false;
	b->inflight--;
}

static void loop_once(struct bench *b)
{
	shard_flush(b->s);
	io_ring_submit_wait(&b->io, b->inflight ? 1000 : 0);
	io_ring_dispatch(&b->io);
}

static struct op **ops_new(struct bench *b, unsigned n)
{
	struct op **ops = calloc(n, sizeof *ops);

	for (unsigned i = 0; i < n; i++) {
		ops[i] = calloc(1, sizeof **ops + b->opt.value_size);
		ops[i]->b = b;
		ops[i]->w.done = write_done;
		ops[i]->rd.done = read_done;
		ops[i]->rd.arg = ops[i];
		for (uint32_t j = 0; j < b->opt.value_size; j++)
			ops[i]->value[j] = (uint8_t)('a' + (rng_next(&b->rng) % 26));
	}
	return ops;
}

static void ops_free(struct op **ops, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(ops[i]);
	free(ops);
}

/* Starts a write on a free op; false if the shard refused it for now. */
static bool issue_write(struct bench *b, struct op *op, uint64_t k)
{
	struct command c = { .op = COMMAND_PUT, .key = op->key, .key_len = b->opt.key_size,
			     .value = op->value, .value_len = b->opt.value_size };
	int rv;

	make_key(op->key, b->opt.key_size, k);
	op->value[0] = (uint8_t)('a' + (k % 26)); /* values differ a little */
	op->busy = true;
	b->inflight++;
	rv = shard_write(b->s, &c, &op->w);
	if (rv == 0)
		return true;
	op->busy = false;
	b->inflight--;
	if (rv != RKV_EFULL) {
		fprintf(stderr, "write failed: %s\n", rkv_strerror(rv));
		exit(1);
	}
	return false;
}

static void issue_read(struct bench *b, struct op *op, uint64_t k)
{
	const void *value;
	size_t len;
	int rv;

	make_key(op->key, b->opt.key_size, k);
	op->start_ns = now_ns();
	rv = shard_read(b->s, op->key, b->opt.key_size, &op->rd, &value, &len);
	if (rv == SHARD_READ_PENDING) {
		op->busy = true;
		b->inflight++;
		return;
	}
	record_read(b, op, rv);
}

static void report(const char *name, uint64_t ops, uint64_t ns, uint64_t bytes_per_op,
		   const char *extra)
{
	double secs = (double)ns / 1e9;
	double micros = (double)ns / 1e3 / (double)(ops ? ops : 1);

	printf("%-12s : %11.3f micros/op %.0f ops/sec %.3f seconds %" PRIu64
	       " operations; %6.1f MB/s%s\n", name, micros, (double)ops / secs, secs, ops,
	       (double)(ops * bytes_per_op) / 1048576.0 / secs, extra);
	fflush(stdout);
}

static void fill(struct bench *b, bool random)
{
	unsigned depth = b->opt.inflight;
	struct op **ops = ops_new(b, depth);
	uint64_t issued = 0, t0 = now_ns();
	uint64_t *perm = NULL;

	b->done = 0;
	b->errors = 0;
	while (b->done < b->opt.num) {
		for (unsigned i = 0; i < depth && issued < b->opt.num; i++) {
			uint64_t k;

			if (ops[i]->busy)
				continue;
			k = random ? rng_next(&b->rng) % b->opt.num : issued;
			if (!issue_write(b, ops[i], k))
				break;
			issued++;
		}
		loop_once(b);
	}
	report(random ? "fillrandom" : "fillseq", b->opt.num, now_ns() - t0,
	       b->opt.key_size + b->opt.value_size, "");
	if (b->errors)
		printf("  %" PRIu64 " writes failed\n", b->errors);
	free(perm);
	ops_free(ops, depth);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void print_latency(struct bench *b, const char *what)
{
	if (!b->nlat)
		return;
	qsort(b->lat, b->nlat, sizeof *b->lat, cmp_u64);
	printf("  %s latency us: p50 %.1f p99 %.1f p99.9 %.1f max %.1f\n", what,
	       (double)b->lat[b->nlat / 2] / 1e3, (double)b->lat[b->nlat * 99 / 100] / 1e3,
	       (double)b->lat[b->nlat * 999 / 1000] / 1e3, (double)b->lat[b->nlat - 1] / 1e3);
}

static void readrandom(struct bench *b)
{
	unsigned depth = b->opt.inflight;
	struct op **ops = ops_new(b, depth);
	uint64_t issued = 0, t0 = now_ns();
	char extra[96];

	b->done = b->found = b->errors = 0;
	b->nlat = 0;
	b->lat = malloc(b->opt.reads * sizeof *b->lat);
	while (b->done < b->opt.reads) {
		for (unsigned i = 0; i < depth && issued < b->opt.reads; i++) {
			if (ops[i]->busy)
				continue;
			issue_read(b, ops[i], rng_next(&b->rng) % b->opt.num);
			issued++;
		}
		if (b->inflight)
			loop_once(b);
	}
	snprintf(extra, sizeof extra, " (%" PRIu64 " of %" PRIu64 " found)", b->found,
		 b->opt.reads);
	report("readrandom", b->opt.reads, now_ns() - t0, b->opt.key_size + b->opt.value_size,
	       extra);
	print_latency(b, "read");
	if (b->errors)
		printf("  %" PRIu64 " reads failed\n", b->errors);
	free(b->lat);
	b->lat = NULL;
	ops_free(ops, depth);
}

/*
 * Reads one at a time while a pipeline of writes keeps the memtables
 * flushing and compactions running; read latency shows the cost of the
 * background slices to a request.
 */
static void readwhilewriting(struct bench *b)
{
	unsigned wdepth = 16;
	struct op **w = ops_new(b, wdepth);
	struct op **r = ops_new(b, 1);
	uint64_t reads = b->opt.duration_ops ? b->opt.duration_ops : b->opt.reads;
	uint64_t t0 = now_ns(), writes = 0;
	struct shard_stats before, after;
	char extra[160];

	shard_get_stats(b->s, &before);
	b->found = b->errors = 0;
	b->nlat = 0;
	b->lat = malloc(reads * sizeof *b->lat);
	while (b->nlat < reads) {
		for (unsigned i = 0; i < wdepth; i++) {
			if (w[i]->busy)
				continue;
			if (!issue_write(b, w[i], rng_next(&b->rng) % b->opt.num))
				break;
			writes++;
		}
		if (!r[0]->busy)
			issue_read(b, r[0], rng_next(&b->rng) % b->opt.num);
		loop_once(b);
	}
	while (b->inflight)
		loop_once(b);
	shard_get_stats(b->s, &after);
	snprintf(extra, sizeof extra, " (%" PRIu64 " of %" PRIu64 " found; %" PRIu64
		 " writes, %" PRIu64 " flushes, %" PRIu64 " compactions meanwhile)", b->found,
		 reads, writes, after.flushes - before.flushes,
		 after.compactions - before.compactions);
	report("readwhilewriting", reads, now_ns() - t0, b->opt.key_size + b->opt.value_size,
	       extra);
	print_latency(b, "read");
	free(b->lat);
	b->lat = NULL;
	ops_free(w, wdepth);
	ops_free(r, 1);
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void print_stats(struct bench *b)
{
	struct shard_stats st;
	struct block_cache_stats cs;
	unsigned levels[7];
	size_t used, cap;

	shard_get_stats(b->s, &st);
	block_cache_get_stats(b->cache, &cs);
	shard_level_files(b->s, levels, 7);
	shard_memory(b->s, &used, &cap);
	printf("stats        : files per level %u/%u/%u/%u/%u/%u/%u, %" PRIu64 " table bytes, "
	       "%" PRIu64 " flushes, %" PRIu64 " compactions (%.1f MiB read, %.1f MiB "
	       "written), %" PRIu64 " block reads\n",
	       levels[0], levels[1], levels[2], levels[3], levels[4], levels[5], levels[6],
	       st.table_bytes, st.flushes, st.compactions,
	       (double)st.compact_read / 1048576.0, (double)st.compact_written / 1048576.0,
	       st.block_reads);
	printf("memory       : RSS %.1f MiB; memtables %.1f MiB in use (budget 2 x %.1f "
	       "MiB); block cache %.1f MiB (budget %.1f MiB), hits %" PRIu64 " misses %"
	       PRIu64 "\n", (double)rss_kib() / 1024.0, (double)used / 1048576.0,
	       (double)cap / 1048576.0, (double)cs.usage / 1048576.0,
	       (double)b->opt.cache_size / 1048576.0, cs.hits, cs.misses);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct bench b;
	struct block_cache_options copt = { 0 };
	struct shard_config cfg = { 0 };
	char err[512], *saveptr = NULL, *name;
	int rv;

	memset(&b, 0, sizeof b);
	rv = parse_args(&b.opt, argc, argv);
	if (rv != 0)
		return rv > 0 ? 0 : 2;
	log_set_level(LOG_WARN);
	b.rng = b.opt.seed * 0x2545F4914F6CDD1Dull;
	if (!b.opt.use_existing_db) {
		char cmd[1200];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", b.opt.db);
		if (system(cmd) != 0)
			return 1;
	}
	mkdir(b.opt.db, 0755);
	rv = io_ring_init(&b.io, 1024, err, sizeof err);
	if (rv) {
		fprintf(stderr, "storage-bench: %s\n", err);
		return 1;
	}
	copt.capacity = b.opt.cache_size;
	if (block_cache_create(&b.cache, &copt))
		return 1;
	cfg.id = 0;
	cfg.dir = b.opt.db;
	cfg.memtable_size = b.opt.write_buffer_size;
	cfg.cache = b.cache;
	cfg.wal_sync_off = !b.opt.sync;
	rv = shard_open(&b.s, &cfg, &b.io, err, sizeof err);
	if (rv) {
		fprintf(stderr, "storage-bench: %s\n", err);
		return 1;
	}
	printf("ringkv storage-bench: one shard, keys %u bytes, values %u bytes, %" PRIu64
	       " entries, memtable %.1f MiB, block cache %.1f MiB, WAL %s, %u in flight\n",
	       b.opt.key_size, b.opt.value_size, b.opt.num,
	       (double)b.opt.write_buffer_size / 1048576.0, (double)b.opt.cache_size / 1048576.0,
	       b.opt.sync ? "fdatasync per group" : "no fdatasync (benchmark-only mode)",
	       b.opt.inflight);
	for (name = strtok_r(b.opt.benchmarks, ",", &saveptr); name;
	     name = strtok_r(NULL, ",", &saveptr)) {
		if (strcmp(name, "fillrandom") == 0)
			fill(&b, true);
		else if (strcmp(name, "fillseq") == 0)
			fill(&b, false);
		else if (strcmp(name, "readrandom") == 0)
			readrandom(&b);
		else if (strcmp(name, "readwhilewriting") == 0)
			readwhilewriting(&b);
		else if (strcmp(name, "stats") == 0)
			print_stats(&b);
		else if (strcmp(name, "waitforcompaction") == 0) {
			while (!shard_background_idle(b.s) || !shard_idle(b.s))
				loop_once(&b);
		} else
			fprintf(stderr, "unknown benchmark %s\n", name);
	}
	print_stats(&b);
	shard_close(b.s);
	block_cache_destroy(b.cache);
	io_ring_exit(&b.io);
	return 0;
}
