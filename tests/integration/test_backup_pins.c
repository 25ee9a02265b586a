/*
 * The server side of online backups against a real ringkvd (one core, two
 * shards): pins are bounded per core (the ninth BEGIN is refused until one
 * ends), reads are checked (unknown backup, no such file, an offset past
 * the end), every file reads back whole with its size, END is final, and
 * a node stopped with pins outstanding lets them go and exits cleanly
 * (shard_close must never meet a pinned version).
 * usage: test_backup_pins RINGKVD
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "tools/libringkv.h"

#define PINS_PER_CORE 8

int main(int argc, char **argv)
{
	struct server s = { 0 };
	struct rkv_client *c;
	struct rkv_backup *b[PINS_PER_CORE + 1] = { 0 }, *extra = NULL;
	uint8_t *buf = malloc(RKV_BACKUP_READ_MAX);
	char dir[512], log[512], err[256], key[32], value[600], line[512];
	FILE *logf;
	int released = 0;
	uint32_t got;
	int rc, status;

	CHECK(argc == 2 && buf, "usage: test_backup_pins RINGKVD");
	snprintf(dir, sizeof dir, "%s/data", harness_tmpdir());
	snprintf(log, sizeof log, "%s/ringkvd.log", harness_tmpdir());
	s.stderr_path = log;
	const char *args[] = { "--data-dir", dir, "--cores", "1", "--shards", "2",
			       "--memtable-size", "64KiB", NULL };
	CHECK(server_start(&s, argv[1], args) == 0, "ringkvd did not start");
	CHECK(rkv_connect(s.addr, &c, err, sizeof err) == 0, "connect: %s", err);
	memset(value, 'v', sizeof value - 1);
	value[sizeof value - 1] = '\0';
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof key, "key-%d", i);
		CHECK(rkv_put(c, key, strlen(key), value, strlen(value)) == 0, "put %s", key);
	}

	for (int i = 0; i < PINS_PER_CORE; i++) {
		rc = rkv_backup_begin(c, (uint32_t)(i % 2), &b[i], NULL);
		CHECK(rc == 0, "begin %d: %d %s", i, rc, rkv_last_error(c));
		CHECK(b[i]->file_count >= 2, "shard %d: %zu files (tables flushed, then MANIFEST)",
		      i % 2, b[i]->file_count);
		CHECK(strcmp(b[i]->files[b[i]->file_count - 1].name, "MANIFEST") == 0,
		      "the last file is %s", b[i]->files[b[i]->file_count - 1].name);
		for (int k = 0; k < i; k++)
			CHECK(b[k]->id != b[i]->id, "two pins share id %" PRIx64, b[i]->id);
	}
	/* Both shards live on the one core: the ninth pin is refused. */
	rc = rkv_backup_begin(c, 1, &extra, NULL);
	CHECK(rc == RKV_STATUS_RESOURCE_EXHAUSTED, "ninth pin: %d", rc);
	CHECK(rkv_backup_end(c, b[0]->id) == 0, "end");
	CHECK(rkv_backup_end(c, b[0]->id) == RKV_STATUS_NOT_FOUND, "end twice");
	rc = rkv_backup_read(c, b[0]->id, 0, 0, buf, 100, &got);
	CHECK(rc == RKV_STATUS_NOT_FOUND, "read after end: %d", rc);
	rc = rkv_backup_begin(c, 1, &extra, NULL);
	CHECK(rc == 0, "a pin after one ended: %d", rc);
	/* The next begin writes its own answer (or NULL) into `extra`. */
	rkv_backup_free(extra);
	extra = NULL;

	/* Reads that make no sense. */
	rc = rkv_backup_read(c, b[1]->id ^ 0xffff, 0, 0, buf, 100, &got);
	CHECK(rc == RKV_STATUS_NOT_FOUND, "unknown backup id: %d", rc);
	rc = rkv_backup_read(c, b[1]->id, (uint32_t)b[1]->file_count, 0, buf, 100, &got);
	CHECK(rc == RKV_STATUS_INVALID_ARGUMENT, "no such file: %d", rc);
	rc = rkv_backup_read(c, b[1]->id, 0, b[1]->files[0].size + 1, buf, 100, &got);
	CHECK(rc == RKV_STATUS_INVALID_ARGUMENT, "offset past the end: %d", rc);
	rc = rkv_backup_begin(c, 2, &extra, NULL);
	CHECK(rc == RKV_STATUS_INVALID_ARGUMENT, "no such shard: %d", rc);

	/* Every file reads back whole, in chunks, each with its CRC. */
	for (size_t f = 0; f < b[1]->file_count; f++) {
		uint64_t off = 0;

		while (off < b[1]->files[f].size) {
			rc = rkv_backup_read(c, b[1]->id, (uint32_t)f, off, buf, 4096, &got);
			CHECK(rc == 0 && got > 0, "read %s at %" PRIu64 ": %d %s",
			      b[1]->files[f].name, off, rc, rkv_last_error(c));
			off += got;
		}
		CHECK(off == b[1]->files[f].size, "%s: %" PRIu64 " bytes of %" PRIu64,
		      b[1]->files[f].name, off, b[1]->files[f].size);
		rc = rkv_backup_read(c, b[1]->id, (uint32_t)f, off, buf, 4096, &got);
		CHECK(rc == 0 && got == 0, "read at the end: %d, %u bytes", rc, got);
	}

	/* Stop with seven pins held: they are let go, the node exits 0. */
	rkv_close(c);
	status = server_stop(&s, SIGTERM, 20000);
	CHECK(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "ringkvd stopped with pins held: status %d", status);
	logf = fopen(log, "r");
	CHECK(logf != NULL, "%s: %s", log, strerror(errno));
	while (fgets(line, sizeof line, logf))
		released += strstr(line, "unpinned: the replica lets its shard go") != NULL;
	fclose(logf);
	CHECK(released == PINS_PER_CORE, "%d pins released at stop, %d held", released,
	      PINS_PER_CORE);
	for (int i = 0; i <= PINS_PER_CORE; i++)
		rkv_backup_free(b[i]);
	rkv_backup_free(extra);
	free(buf);
	harness_cleanup();
	printf("backup pins: bounded, checked, released at stop\n");
	return 0;
}
