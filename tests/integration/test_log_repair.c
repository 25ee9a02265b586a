/*
 * A damaged core log repaired from the peers at start-up (issue 14), with
 * three real ringkvd processes on 127.0.15.11-13 (peer port in 35000-35999),
 * one core, one shard (a Raft group of three), 64 KiB core log segments:
 *   1. 600 keys of 600 bytes are written and acknowledged (several
 *      segments on every node);
 *   2. node 3 is killed (-9); in its core log the oldest segment is cut at
 *      a record boundary that is made a page boundary (the rest of the page
 *      zeroed, the file truncated there: what a clean end looks like, found
 *      only by the next segment's SEAL) and the next segment is zeroed
 *      whole;
 *   3. restarted with --auto-repair off, node 3 is refused (exit 1) and its
 *      segments are all still there;
 *   4. restarted with the default (on), it moves the two damaged segments
 *      and its shard dir into DATA/quarantine/ and rejoins; with no write
 *      meanwhile it logs that it caught up from a leader (it told the leader
 *      at its first heartbeat that it lost its log), and every acknowledged
 *      key reads back from its own replica (stale reads) and through every
 *      node; writes go on;
 *   5. a one-node cluster (R = 1) with the same damage stays refused, even
 *      with automatic repair on.
 * Every wait has a deadline; every process is stopped (harness_cleanup).
 *
 * usage: test_log_repair RINGKVD
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "tools/libringkv.h"

#define NODES 3
#define KEYS 600
#define MORE 50
#define VICTIM 2 /* node 3 */
#define WAIT_MS 30000

static const char *binary;
static const char *base_dir;
static char peers[256];
static struct server nodes[NODES];
static bool running[NODES];
static struct rkv_client *conn[NODES];
static char logs[NODES][512];

static void node_dir(unsigned i, char *buf, size_t len)
{
	snprintf(buf, len, "%s/node%u", base_dir, i + 1);
}

/* The node's flags (NULL-terminated); `extra` (or NULL) goes last. */
static void node_args(unsigned i, char *dir, size_t dlen, char *id, const char *extra,
		      const char **args)
{
	unsigned k = 0;

	node_dir(i, dir, dlen);
	snprintf(id, 8, "%u", i + 1);
	args[k++] = "--node-id";
	args[k++] = id;
	if (peers[0]) {
		args[k++] = "--initial-cluster";
		args[k++] = peers;
	}
	args[k++] = "--cores";
	args[k++] = "1";
	args[k++] = "--shards";
	args[k++] = "1";
	args[k++] = "--data-dir";
	args[k++] = dir;
	args[k++] = "--election-timeout";
	args[k++] = "300ms";
	args[k++] = "--log-segment-size";
	args[k++] = "64KiB";
	args[k++] = "--log-level";
	args[k++] = "info";
	if (extra) {
		args[k++] = "--auto-repair";
		args[k++] = extra;
	}
	args[k] = NULL;
}

static void node_up(unsigned i)
{
	char dir[512], id[8];
	const char *args[32];

	node_args(i, dir, sizeof dir, id, NULL, args);
	nodes[i].stderr_path = logs[i];
	CHECK(server_start(&nodes[i], binary, args) == 0, "node %u did not start", i + 1);
	running[i] = true;
}

static void disconnect(unsigned i)
{
	if (conn[i])
		rkv_close(conn[i]);
	conn[i] = NULL;
}

static void node_kill(unsigned i)
{
	disconnect(i);
	CHECK(server_stop(&nodes[i], SIGKILL, 10000) != -1, "kill node %u", i + 1);
	running[i] = false;
}

static struct rkv_client *client(unsigned i)
{
	char err[256];

	if (!running[i])
		return NULL;
	if (!conn[i]) {
		if (rkv_connect_timeout(nodes[i].addr, 2000, &conn[i], err, sizeof err) != 0) {
			conn[i] = NULL;
			return NULL;
		}
		rkv_set_timeout(conn[i], 3000);
	}
	return conn[i];
}

static void pair_of(unsigned k, char *key, size_t *kl, char *value, size_t vl)
{
	int n;

	*kl = (size_t)snprintf(key, 32, "lr:%05u", k);
	n = snprintf(value, 32, "v%u:", k);
	for (size_t i = (size_t)n; i < vl; i++)
		value[i] = (char)('a' + (k * 11 + i) % 26);
}

/* Keys first..first+count-1 through any running node, each acknowledged. */
static void write_range(unsigned first, unsigned count)
{
	for (unsigned k = first; k < first + count; k++) {
		char key[32], value[600];
		size_t kl;
		long deadline = harness_now_ms() + WAIT_MS;
		int rv = -1;

		pair_of(k, key, &kl, value, sizeof value);
		while (rv != RKV_STATUS_OK) {
			CHECK(harness_now_ms() < deadline, "key %u not acknowledged (last %s)", k,
			      rkv_status_name(rv));
			for (unsigned i = 0; i < NODES && rv != RKV_STATUS_OK; i++) {
				struct rkv_client *c = client(i);

				if (!c)
					continue;
				rv = rkv_put(c, key, kl, value, sizeof value);
				if (rv < 0)
					disconnect(i);
			}
			if (rv != RKV_STATUS_OK)
				harness_sleep_ms(20);
		}
	}
}

/* Key k through node i: its own replica (stale) or linearizable; true
 * when it answered the value written. */
static bool read_ok(unsigned i, unsigned k, bool stale)
{
	char key[32], value[600];
	struct rkv_client *c = client(i);
	void *got = NULL;
	size_t kl, gl = 0;
	bool ok;
	int rv;

	if (!c)
		return false;
	pair_of(k, key, &kl, value, sizeof value);
	rv = stale ? rkv_get_stale(c, key, kl, &got, &gl) : rkv_get(c, key, kl, &got, &gl);
	if (rv < 0)
		disconnect(i);
	ok = rv == RKV_STATUS_OK && gl == sizeof value && memcmp(got, value, gl) == 0;
	free(got);
	return ok;
}

/* Every key in [0, count) answers its value through node i within the wait
 * (a repairing replica answers UNAVAILABLE until it caught up). */
static void all_readable(unsigned i, unsigned count, bool stale)
{
	long deadline = harness_now_ms() + WAIT_MS;

	for (unsigned k = 0; k < count; k++) {
		while (!read_ok(i, k, stale)) {
			CHECK(harness_now_ms() < deadline, "node %u: key %u not read back (%s)", i + 1,
			      k, stale ? "its own replica" : "linearizable");
			harness_sleep_ms(50);
		}
	}
	printf("node %u: all %u keys read back (%s)\n", i + 1, count,
	       stale ? "its own replica" : "linearizable");
}


static void print_status(unsigned i)
{
	struct rkv_client *c = client(i);
	struct rkv_cluster_status *st = NULL;

	if (!c || rkv_cluster_status(c, &st) != RKV_STATUS_OK) {
		disconnect(i);
		printf("node %u: no status\n", i + 1);
		return;
	}
	for (size_t r = 0; r < st->replica_count; r++) {
		const struct rkv_replica_status *x = &st->replicas[r];

		printf("node %u: %s term %llu leader %llu commit %llu applied %llu last %llu "
		       "persisted %llu snap %llu\n", i + 1, x->role, (unsigned long long)x->term,
		       (unsigned long long)x->leader, (unsigned long long)x->commit,
		       (unsigned long long)x->applied, (unsigned long long)x->last_index,
		       (unsigned long long)x->persisted, (unsigned long long)x->snapshot_index);
	}
	rkv_cluster_status_free(st);
}

static void await_line(unsigned i, const char *what)
{
	long deadline = harness_now_ms() + WAIT_MS;

	while (harness_lines_with(logs[i], what) == 0) {
		if (getenv("LOG_REPAIR_DEBUG") && harness_now_ms() % 3000 < 60)
			for (unsigned k = 0; k < NODES; k++)
				print_status(k);
		CHECK(harness_now_ms() < deadline, "node %u never logged \"%s\"", i + 1, what);
		harness_sleep_ms(50);
	}
}

static unsigned segments(const char *core_dir, uint64_t *seqs, unsigned cap)
{
	DIR *d = opendir(core_dir);
	struct dirent *e;
	unsigned n = 0;

	CHECK(d != NULL, "no %s", core_dir);
	while ((e = readdir(d)) != NULL) {
		unsigned long long s;

		if (sscanf(e->d_name, "log-%20llu.log", &s) == 1 && n < cap)
			seqs[n++] = s;
	}
	closedir(d);
	for (unsigned a = 0; a < n; a++)
		for (unsigned b = a + 1; b < n; b++)
			if (seqs[b] < seqs[a]) {
				uint64_t t = seqs[a];

				seqs[a] = seqs[b];
				seqs[b] = t;
			}
	return n;
}

static void seg_path(char *buf, size_t len, const char *core_dir, uint64_t seq)
{
	snprintf(buf, len, "%s/log-%020llu.log", core_dir, (unsigned long long)seq);
}

/*
 * Cuts segment `seq` at a record boundary in its middle, made a page
 * boundary: the records' headers (48 bytes, payload length first) are
 * walked from offset 4096; the cut goes at the first boundary past half of
 * the records, the rest of its page is zeroed and the file truncated at the
 * page's end. Returns the cut.
 */
static long cut_segment(const char *core_dir, uint64_t seq)
{
	char path[700];
	uint8_t *buf;
	struct stat st;
	long end = 4096, cut = 0, page;
	int fd;

	seg_path(path, sizeof path, core_dir, seq);
	fd = open(path, O_RDWR);
	CHECK(fd >= 0 && fstat(fd, &st) == 0, "open %s", path);
	buf = calloc(1, (size_t)st.st_size);
	CHECK(buf && pread(fd, buf, (size_t)st.st_size, 0) == st.st_size, "read %s", path);
	while (end + 48 <= st.st_size) {
		uint32_t len = (uint32_t)buf[end] | (uint32_t)buf[end + 1] << 8 |
			       (uint32_t)buf[end + 2] << 16 | (uint32_t)buf[end + 3] << 24;

		if (len == 0 && buf[end + 4] == 0)
			break; /* zeros: the end */
		end += 48 + len;
	}
	for (long off = 4096; off < end;) {
		uint32_t len = (uint32_t)buf[off] | (uint32_t)buf[off + 1] << 8 |
			       (uint32_t)buf[off + 2] << 16 | (uint32_t)buf[off + 3] << 24;

		off += 48 + len;
		if (off > 4096 + (end - 4096) / 2) {
			cut = off;
			break;
		}
	}
	CHECK(cut > 4096 && cut < end, "no record boundary to cut %s at", path);
	page = (cut + 4095) / 4096 * 4096;
	memset(buf + cut, 0, (size_t)(page - cut));
	CHECK(pwrite(fd, buf + cut, (size_t)(page - cut), cut) == page - cut &&
	      ftruncate(fd, page) == 0 && fsync(fd) == 0 && close(fd) == 0, "cut %s", path);
	free(buf);
	printf("cut %s at record boundary %ld (records end at %ld), zeroed to and truncated "
	       "at %ld\n", path, cut, end, page);
	return cut;
}

static void zero_segment(const char *core_dir, uint64_t seq)
{
	char path[700], zeros[4096] = { 0 };
	struct stat st;
	int fd;

	seg_path(path, sizeof path, core_dir, seq);
	fd = open(path, O_RDWR);
	CHECK(fd >= 0 && fstat(fd, &st) == 0, "open %s", path);
	for (off_t off = 0; off < st.st_size; off += (off_t)sizeof zeros)
		CHECK(pwrite(fd, zeros, sizeof zeros, off) == (ssize_t)sizeof zeros, "zero %s", path);
	CHECK(fsync(fd) == 0 && close(fd) == 0, "sync %s", path);
	printf("zeroed %s whole (%lld bytes)\n", path, (long long)st.st_size);
}

/* The damage of step 2 on node i's core-0 (needs 4 segments or more). */
static void damage_log(unsigned i, uint64_t *first_damaged)
{
	char dir[512], core_dir[600];
	uint64_t seqs[64];
	unsigned n;

	node_dir(i, dir, sizeof dir);
	snprintf(core_dir, sizeof core_dir, "%s/core-0", dir);
	n = segments(core_dir, seqs, 64);
	CHECK(n >= 4, "node %u's core log has %u segments, 4 needed", i + 1, n);
	cut_segment(core_dir, seqs[0]);
	zero_segment(core_dir, seqs[1]);
	*first_damaged = seqs[0];
}

/* Runs node i to completion with --auto-repair `mode`; its exit code. */
static int run_refused(unsigned i, const char *mode, char *out, size_t outlen)
{
	char dir[512], id[8];
	const char *args[32];

	unsigned k = 0;

	node_args(i, dir, sizeof dir, id, mode, args);
	while (args[k])
		k++;
	args[k++] = "--listen"; /* in this test's range, should it start */
	args[k++] = "127.0.15.20:0";
	args[k] = NULL;
	return run_capture(binary, args, out, outlen);
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Quarantine of node i: an entry whose name starts with `prefix`; its
 * path into buf. */
static bool quarantined(unsigned i, const char *prefix, char *buf, size_t len)
{
	char dir[512], q[600];
	struct dirent *e;
	DIR *d;
	bool found = false;

	node_dir(i, dir, sizeof dir);
	snprintf(q, sizeof q, "%s/quarantine", dir);
	d = opendir(q);
	if (!d)
		return false;
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 &&
		    strstr(e->d_name, "damaged-log")) {
			snprintf(buf, len, "%s/%s", q, e->d_name);
			found = true;
		}
	closedir(d);
	return found;
}

static void one_node_refused(void)
{
	char out[8192], dir[512], core_dir[600], id[8];
	const char *args[32];
	uint64_t first;
	int code;

	peers[0] = '\0';
	base_dir = harness_tmpdir();
	CHECK(base_dir, "mkdtemp");
	snprintf(logs[0], sizeof logs[0], "%s/single.log", base_dir);
	node_up(0);
	write_range(0, KEYS);
	node_kill(0);
	damage_log(0, &first);
	code = run_refused(0, NULL, out, sizeof out);
	CHECK(code == 1, "a one-node cluster with a damaged log started (exit %d)", code);
	CHECK(strstr(out, "not repaired automatically") && strstr(out, "one-node"),
	      "the refusal does not say why it is not repaired: %s", out);
	node_args(0, dir, sizeof dir, id, NULL, args);
	snprintf(core_dir, sizeof core_dir, "%s/core-0", dir);
	CHECK(!quarantined(0, "core-0", out, sizeof out), "a one-node cluster moved its log");
	printf("one-node cluster: refused, nothing moved\n");
}

static bool passed;

/* On a failure: what the nodes logged of the repair. */
static void show_logs(void)
{
	char cmd[2400];

	if (passed)
		return;
	snprintf(cmd, sizeof cmd, "for f in '%s'/node*.log; do echo \"== $f\"; "
		 "grep -E 'repair|damag|snapshot|joining|caught|refus|error' \"$f\" | "
		 "tail -n 30; done >&2; grep -v connect '%s'/node3.log | tail -n 40 >&2",
		 base_dir, base_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "(no logs)\n");
}

int main(int argc, char **argv)
{
	unsigned port = 35000 + (unsigned)getpid() % 1000;
	char out[16384], dir[512], q[700], path[900];
	uint64_t first;
	int code;

	CHECK(argc == 2, "usage: %s RINGKVD", argv[0]);
	binary = argv[1];
	base_dir = harness_tmpdir();
	CHECK(base_dir, "mkdtemp");
	harness_at_cleanup(show_logs);
	for (unsigned i = 0; i < NODES; i++)
		snprintf(logs[i], sizeof logs[i], "%s/node%u.log", base_dir, i + 1);
	snprintf(peers, sizeof peers, "1=127.0.15.11:%u,2=127.0.15.12:%u,3=127.0.15.13:%u",
		 port, port, port);
	for (unsigned i = 0; i < NODES; i++)
		node_up(i);

	/* 1. */
	write_range(0, KEYS);
	printf("%u keys acknowledged\n", KEYS);

	/* 2. */
	node_kill(VICTIM);
	damage_log(VICTIM, &first);

	/* 3. */
	code = run_refused(VICTIM, "off", out, sizeof out);
	CHECK(code == 1, "node 3 started on a damaged log with --auto-repair off (exit %d): %s", code, out);
	CHECK(strstr(out, "automatic repair is off"), "the refusal does not say why: %s", out);
	node_dir(VICTIM, dir, sizeof dir);
	snprintf(path, sizeof path, "%s/core-0/log-%020llu.log", dir, (unsigned long long)first);
	CHECK(exists(path), "a refused start moved %s", path);
	printf("--auto-repair off: refused, nothing moved\n");

	/* 4. */
	node_up(VICTIM);
	await_line(VICTIM, "repaired from the peers");
	/* No write meanwhile: the rebuilt replica tells the leader at its
	 * first heartbeat that it lost its log (replica.c, repair_nudge). */
	await_line(VICTIM, "caught up from the leader");
	write_range(KEYS, MORE);
	CHECK(quarantined(VICTIM, "core-0", q, sizeof q), "no core log in node 3's quarantine");
	for (uint64_t s = first; s < first + 2; s++) {
		snprintf(path, sizeof path, "%s/log-%020llu.log", q, (unsigned long long)s);
		CHECK(exists(path), "%s is not in quarantine", path);
	}
	CHECK(quarantined(VICTIM, "shard-0", q, sizeof q), "no shard dir in node 3's quarantine");
	snprintf(path, sizeof path, "%s/MANIFEST", q);
	CHECK(exists(path), "the quarantined shard dir has no MANIFEST: %s", path);
	printf("node 3: repaired; its damaged segments and shard dir are in quarantine\n");
	all_readable(VICTIM, KEYS + MORE, true);
	for (unsigned i = 0; i < NODES; i++)
		all_readable(i, KEYS + MORE, false);
	write_range(KEYS + MORE, MORE);
	all_readable(VICTIM, KEYS + 2 * MORE, true);
	for (unsigned i = 0; i < NODES; i++)
		if (running[i]) {
			disconnect(i);
			server_stop_clean(&nodes[i], 15000, "a node after the repair");
			running[i] = false;
		}

	/* 5. */
	passed = true; /* the cluster's logs are not shown past here */
	one_node_refused();
	printf("PASS\n");
	harness_cleanup();
	return 0;
}
