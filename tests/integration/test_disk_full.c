/*
 * Disk full, end to end: ringkvd's data directory on an 8 MiB tmpfs that a
 * filler file already half fills. Writes go on until they are refused with
 * RESOURCE_EXHAUSTED; every acknowledged key still reads back; once the
 * filler is deleted writes succeed again; and after a restart (WAL recovery
 * over the cut tails) everything acknowledged is still there.
 *
 * Mounting needs root: exit 77 (skipped) where the mount fails.
 *
 * usage: test_disk_full RINGKVD
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tools/libringkv.h"

#define FS_SIZE "8m"
#define FILLER_BYTES (3u << 20)
#define VALUE_LEN 4096
#define MAX_KEYS 5000 /* 20 MB: more than the file system holds */
#define AGAIN_KEYS 100
#define DEPTH 16

static char mnt[512];
static bool mounted;
static bool acked[MAX_KEYS];
static bool said_disk_full; /* a refusal named the full disk */
static unsigned unknown;     /* writes whose outcome the node could not tell */

static void unmount(void)
{
	if (mounted && umount2(mnt, MNT_DETACH) != 0)
		fprintf(stderr, "umount %s: %s\n", mnt, strerror(errno));
	mounted = false;
}

static size_t make_key(char *buf, const char *prefix, unsigned i)
{
	return (size_t)sprintf(buf, "%s/%06u", prefix, i);
}

static void make_value(char *buf, unsigned i)
{
	int head = sprintf(buf, "%u:", i);

	for (size_t k = (size_t)head; k < VALUE_LEN; k++)
		buf[k] = (char)('a' + (i * 7 + k) % 26);
}

/* Pipelined puts until the first refusal (then one more batch); returns
 * the count refused. */
static unsigned fill(struct rkv_client *c, unsigned *ok)
{
	static char value[VALUE_LEN];
	unsigned refused = 0, extra_batches = 0;
	char key[32];

	for (unsigned base = 0; base < MAX_KEYS && extra_batches < 2; base += DEPTH) {
		uint64_t first = 0;

		for (unsigned i = base; i < base + DEPTH; i++) {
			uint64_t id;

			make_value(value, i);
			CHECK(rkv_send_put(c, key, make_key(key, "full", i), value, VALUE_LEN,
					   &id) == 0, "send put");
			if (i == base)
				first = id;
		}
		for (unsigned n = 0; n < DEPTH; n++) {
			struct rkv_result res;

			CHECK(rkv_recv(c, &res) == 0, "recv: %s", rkv_last_error(c));
			if (res.status == RKV_STATUS_UNKNOWN) {
				/* In flight when the disk filled: it may or may
				 * not be stored; never counted as acknowledged. */
				unknown++;
				continue;
			}
			if (res.status == RKV_STATUS_RESOURCE_EXHAUSTED) {
				if (res.error && strstr(res.error, "disk full"))
					said_disk_full = true;
				refused++;
				continue;
			}
			CHECK(res.status == RKV_STATUS_OK, "put: %s %s",
			      rkv_status_name(res.status), res.error);
			acked[base + (unsigned)(res.id - first)] = true;
			(*ok)++;
		}
		if (refused)
			extra_batches++;
	}
	return refused;
}

/* Lines of `path` containing `what`. */
static unsigned count_lines(const char *path, const char *what)
{
	char line[2048];
	unsigned n = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof line, f)) {
		if (strstr(line, what)) {
			printf("  log: %s", line);
			n++;
		}
	}
	fclose(f);
	return n;
}

static void verify(struct rkv_client *c, unsigned again)
{
	static char value[VALUE_LEN];
	unsigned checked = 0;
	char key[32];

	for (unsigned i = 0; i < MAX_KEYS; i++) {
		void *got;
		size_t len;
		int rv;

		if (!acked[i])
			continue;
		rv = rkv_get(c, key, make_key(key, "full", i), &got, &len);
		make_value(value, i);
		CHECK(rv == RKV_STATUS_OK, "acknowledged key %u: %s", i, rkv_status_name(rv));
		CHECK(len == VALUE_LEN && !memcmp(got, value, VALUE_LEN), "key %u: wrong value", i);
		free(got);
		checked++;
	}
	for (unsigned i = 0; i < again; i++) {
		void *got;
		size_t len;
		int rv = rkv_get(c, key, make_key(key, "again", i), &got, &len);

		make_value(value, i);
		CHECK(rv == RKV_STATUS_OK, "key again/%u: %s", i, rkv_status_name(rv));
		CHECK(len == VALUE_LEN && !memcmp(got, value, VALUE_LEN), "again/%u: wrong", i);
		free(got);
		checked++;
	}
	printf("  %u acknowledged keys read back\n", checked);
}

int main(int argc, char **argv)
{
	static char value[VALUE_LEN];
	char filler[600], data[600], err[256], key[32], log_path[600];
	struct server srv = { 0 };
	struct rkv_client *c;
	unsigned ok = 0, refused;
	const char *dir;
	int fd, status;

	CHECK(argc == 2, "usage: %s RINGKVD", argv[0]);
	dir = harness_tmpdir();
	CHECK(dir, "mkdtemp");
	snprintf(mnt, sizeof mnt, "%s/mnt", dir);
	CHECK(mkdir(mnt, 0700) == 0, "mkdir %s", mnt);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=" FS_SIZE) != 0) {
		printf("cannot mount a tmpfs (%s), skipping\n", strerror(errno));
		harness_cleanup();
		return 77;
	}
	mounted = true;
	harness_at_cleanup(unmount);

	snprintf(filler, sizeof filler, "%s/filler", mnt);
	fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0, "create %s", filler);
	memset(value, 'f', sizeof value);
	for (unsigned n = 0; n < FILLER_BYTES; n += VALUE_LEN)
		CHECK(write(fd, value, VALUE_LEN) == VALUE_LEN, "write filler");
	close(fd);
	snprintf(data, sizeof data, "%s/data", mnt);
	CHECK(mkdir(data, 0700) == 0, "mkdir %s", data);

	const char *args[] = { "--data-dir", data, "--cores", "2", NULL };
	/* The node's log goes beside the full file system, not into it. */
	snprintf(log_path, sizeof log_path, "%s/stderr", dir);
	srv.stderr_path = log_path;
	CHECK(server_start(&srv, argv[1], args) == 0, "ringkvd did not start");
	CHECK(rkv_connect(srv.addr, &c, err, sizeof err) == 0, "connect: %s", err);

	refused = fill(c, &ok);
	printf("%s tmpfs full: %u puts acknowledged, %u refused, %u unknown\n", FS_SIZE, ok,
	       refused, unknown);
	CHECK(refused > 0, "no write was refused on a full file system");
	CHECK(said_disk_full, "a refusal on a full disk should say 'disk full'");
	/* Keep writing into the full disk: every batch fails the same way,
	 * and the log must say so once per interval, not once per batch. */
	for (unsigned round = 0; round < 20; round++) {
		uint64_t id;
		struct rkv_result res;

		for (unsigned i = 0; i < DEPTH; i++)
			CHECK(rkv_send_put(c, key, make_key(key, "more", i), value, VALUE_LEN,
					   &id) == 0, "send put");
		for (unsigned i = 0; i < DEPTH; i++)
			CHECK(rkv_recv(c, &res) == 0, "recv: %s", rkv_last_error(c));
	}
	{
		unsigned lines = count_lines(log_path, "failed: No space") +
				 count_lines(log_path, "failed: disk full");

		/* One line per core per 10 s; the test takes a few seconds. */
		printf("full disk: %u log line(s) about it\n", lines);
		CHECK(lines >= 1 && lines <= 8,
		      "%u log lines for a full disk (one per kind per core per 10 s expected)", lines);
	}
	CHECK(ok > 0, "no write was accepted");
	verify(c, 0);

	CHECK(unlink(filler) == 0, "unlink filler");
	for (unsigned i = 0; i < AGAIN_KEYS; i++) {
		int rv;

		make_value(value, i);
		/* The node notices the freed space with its next attempt to
		 * store the log: a refusal until then is "retry later". */
		for (unsigned tries = 0; tries < 100; tries++) {
			rv = rkv_put(c, key, make_key(key, "again", i), value, VALUE_LEN);
			if (rv != RKV_STATUS_RESOURCE_EXHAUSTED)
				break;
			usleep(20000);
		}
		CHECK(rv == RKV_STATUS_OK, "put again/%u after freeing space: %s (%s)", i,
		      rkv_status_name(rv), rkv_last_error(c));
	}
	printf("space freed: %u more puts acknowledged\n", AGAIN_KEYS);
	verify(c, AGAIN_KEYS);
	rkv_close(c);

	status = server_stop(&srv, SIGTERM, 10000);
	CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "SIGTERM should exit 0 (status %d)", status);
	CHECK(server_start(&srv, argv[1], args) == 0, "ringkvd did not restart");
	CHECK(rkv_connect(srv.addr, &c, err, sizeof err) == 0, "connect: %s", err);
	printf("after a restart:\n");
	verify(c, AGAIN_KEYS);
	rkv_close(c);
	status = server_stop(&srv, SIGTERM, 10000);
	CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "SIGTERM should exit 0 (status %d)", status);

	harness_cleanup();
	printf("1 passed, 0 failed\n");
	return 0;
}
