/*
 * Bad input against a real ringkvd: a garbage frame (answered, stream goes
 * on), an oversized length prefix (answered TOO_LARGE, connection closed),
 * oversized keys and values, the empty key, a full memtable, bad flags; after
 * each, other connections keep being served.
 *
 * usage: test_bad_input RINGKVD
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "proto/frame.h"
#include "tools/libringkv.h"

static int raw_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = 10 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect");
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

static void send_all(int fd, const void *buf, size_t len)
{
	CHECK(send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len, "send");
}

/* Reads one response frame; returns its status, or -1 on EOF. */
static int read_response(int fd, uint64_t *id)
{
	static uint8_t buf[1 << 16];
	size_t have = 0, need = 4;
	struct frame_slice value, error;
	int status;

	while (have < need) {
		ssize_t r = recv(fd, buf + have, need - have, 0);
		if (r <= 0)
			return -1;
		have += (size_t)r;
		if (have == 4 && need == 4) {
			uint32_t len = buf[0] | buf[1] << 8 | buf[2] << 16 | (uint32_t)buf[3] << 24;
			CHECK(len < sizeof buf - 4, "response too long");
			need = 4 + len;
		}
	}
	CHECK(frame_decode_response(buf + 4, need - 4, id, &status, &value, &error) == 0,
	      "undecodable response");
	return status;
}

static void check_client_works(const char *addr)
{
	struct rkv_client *c;
	char err[256];
	void *v;
	size_t vl;

	CHECK(rkv_connect(addr, &c, err, sizeof err) == 0, "connect: %s", err);
	CHECK(rkv_put(c, "alive", 5, "yes", 3) == 0, "put on a fresh connection");
	CHECK(rkv_get(c, "alive", 5, &v, &vl) == 0 && vl == 3 && !memcmp(v, "yes", 3),
	      "get on a fresh connection");
	free(v);
	rkv_close(c);
}

int main(int argc, char **argv)
{
	struct server srv = { 0 };
	struct rkv_client *c;
	char err[256], out[4096];
	const char *dir;
	uint64_t id;
	int fd, fd2, status, rc;

	CHECK(argc == 2, "usage: %s RINGKVD", argv[0]);

	/* Bad flags: one line naming the flag and pointing to --help, exit 2. */
	{
		const char *bad[] = { "--no-such-flag", NULL };
		const char *bad2[] = { "--cores", "zero", NULL };
		rc = run_capture(argv[1], bad, out, sizeof out);
		CHECK(rc == 2 && strstr(out, "'--no-such-flag'") && strstr(out, "--help") &&
		      !strstr(out, "usage") && strchr(out, '\n') == out + strlen(out) - 1,
		      "bad flag: exit %d: %s", rc, out);
		rc = run_capture(argv[1], bad2, out, sizeof out);
		CHECK(rc == 2 && strstr(out, "--cores"), "bad value: exit %d: %s", rc, out);
	}

	dir = harness_tmpdir();
	CHECK(dir, "mkdtemp");
	const char *args[] = { "--data-dir", dir, "--cores", "2",
			       "--memtable-size", "1MiB", NULL };
	CHECK(server_start(&srv, argv[1], args) == 0, "ringkvd did not start");

	/* A frame of garbage: answered INVALID_ARGUMENT, the stream goes on. */
	fd = raw_connect(srv.port);
	send_all(fd, "\x05\x00\x00\x00\xff\xff\xff\xff\xff", 9);
	status = read_response(fd, &id);
	CHECK(status == RKV_STATUS_INVALID_ARGUMENT, "garbage frame answered %d", status);

	/* An oversized length prefix: TOO_LARGE, then the server closes. */
	fd2 = raw_connect(srv.port);
	send_all(fd2, "\xf0\xff\xff\xff", 4);
	status = read_response(fd2, &id);
	CHECK(status == RKV_STATUS_TOO_LARGE, "oversized prefix answered %d", status);
	CHECK(read_response(fd2, &id) == -1, "connection should be closed");
	close(fd2);

	/* The first connection still works after its garbage frame. */
	{
		struct frame_request req = { .id = 77, .op = FRAME_OP_GET,
					     .key = { (const uint8_t *)"nope", 4 } };
		uint8_t buf[256];
		int n = frame_encode_request(&req, buf, sizeof buf);
		CHECK(n > 0, "encode");
		send_all(fd, buf, (size_t)n);
		status = read_response(fd, &id);
		CHECK(status == RKV_STATUS_NOT_FOUND && id == 77,
		      "GET after garbage: status %d id %llu", status, (unsigned long long)id);
	}
	close(fd);

	/* Half-close: PUT then GET of the same key, then shutdown(SHUT_WR).
	 * The GET waits for the PUT; both are answered before the close. */
	for (int attempt = 0; attempt < 5; attempt++) {
		struct frame_request put = { .id = 1, .op = FRAME_OP_PUT,
					     .key = { (const uint8_t *)"hk", 2 },
					     .value = { (const uint8_t *)"1", 1 } };
		struct frame_request get = { .id = 2, .op = FRAME_OP_GET,
					     .key = { (const uint8_t *)"hk", 2 } };
		uint8_t buf[256];
		int n = frame_encode_request(&put, buf, sizeof buf), m;

		CHECK(n > 0, "encode");
		m = frame_encode_request(&get, buf + n, sizeof buf - (size_t)n);
		CHECK(m > 0, "encode");
		fd2 = raw_connect(srv.port);
		send_all(fd2, buf, (size_t)(n + m));
		CHECK(shutdown(fd2, SHUT_WR) == 0, "shutdown");
		status = read_response(fd2, &id);
		CHECK(status == RKV_STATUS_OK && id == 1, "half-close: PUT answered %d", status);
		status = read_response(fd2, &id);
		CHECK(status == RKV_STATUS_OK && id == 2,
		      "half-close try %d: GET answered %d (-1: closed unanswered)", attempt, status);
		CHECK(read_response(fd2, &id) == -1, "half-close: closed after the answers");
		close(fd2);
	}

	/* A third connection works. */
	check_client_works(srv.addr);

	/* Limits and semantics through the client library. */
	CHECK(rkv_connect(srv.addr, &c, err, sizeof err) == 0, "connect: %s", err);
	{
		size_t big = (4u << 20) - (8u << 10) + 1; /* the default --max-value + 1 */
		char *v = calloc(1, big);
		char key[5000];
		void *got;
		size_t gl;

		memset(key, 'k', sizeof key);
		CHECK(rkv_put(c, "big", 3, v, big) == RKV_STATUS_TOO_LARGE, "--max-value + 1 value");
		CHECK(rkv_put(c, key, sizeof key, "v", 1) == RKV_STATUS_TOO_LARGE, "5000-byte key");
		/* The empty key is a key, on both protocols (as in Redis). */
		CHECK(rkv_put(c, "", 0, "ev", 2) == 0, "PUT of the empty key");
		CHECK(rkv_get(c, "", 0, &got, &gl) == 0 && gl == 2 && !memcmp(got, "ev", 2),
		      "GET of the empty key");
		free(got);
		CHECK(rkv_del(c, "", 0) == 0, "DELETE of the empty key");
		CHECK(rkv_get(c, "missing", 7, &got, &gl) == RKV_STATUS_NOT_FOUND, "missing key");
		CHECK(rkv_del(c, "missing", 7) == 0, "DELETE of a missing key is OK");
		free(v);
	}

	/* 5 MB through 1 MiB memtables: full memtables are flushed to
	 * SSTables instead of refusing writes, and everything reads back.
	 * (Refusal when the disk is full is tests/integration/test_disk_full.c.) */
	{
		char key[32], value[1000];
		unsigned stored = 0;

		memset(value, 'x', sizeof value);
		for (unsigned i = 0; i < 5000; i++) {
			int n = snprintf(key, sizeof key, "fill-%u", i);
			int rv = rkv_put(c, key, (size_t)n, value, sizeof value);

			CHECK(rv == 0, "fill %u: %s", i, rkv_status_name(rv));
			stored++;
		}
		for (unsigned i = 0; i < 5000; i += 97) {
			int n = snprintf(key, sizeof key, "fill-%u", i);
			void *got;
			size_t gl;

			CHECK(rkv_get(c, key, (size_t)n, &got, &gl) == 0 && gl == sizeof value,
			      "fill-%u not readable after flushes", i);
			free(got);
		}
		printf("%u writes of 1000 bytes through 1 MiB memtables\n", stored);
		/* A few more, so the newest WAL segments hold several records. */
		for (unsigned i = 0; i < 50; i++) {
			int n = snprintf(key, sizeof key, "tail-%u", i);
			CHECK(rkv_put(c, key, (size_t)n, "t", 1) == 0, "tail write");
		}
	}
	rkv_close(c);

	status = server_stop(&srv, SIGTERM, 10000);
	CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "SIGTERM should exit 0");

	/* A flipped byte in the middle of a WAL: start-up refuses and names the
	 * file and offset, instead of dropping what follows. */
	{
		char wal[512], listen[] = "127.0.0.1:0";
		const char *args3[] = { "--listen", listen, "--data-dir", dir, "--cores", "2",
					"--memtable-size", "1MiB", NULL };
		FILE *f;
		int byte;

		char shard_dir[400], newest[64] = "";
		struct dirent *e;
		DIR *d;

		/* The newest segment of core 0's Raft log (shard/core_log): older
		 * ones are deleted once every group released them. */
		snprintf(shard_dir, sizeof shard_dir, "%s/core-0", dir);
		d = opendir(shard_dir);
		CHECK(d, "opendir %s", shard_dir);
		while ((e = readdir(d)))
			if (!strncmp(e->d_name, "log-", 4) && strcmp(e->d_name, newest) > 0 &&
			    strlen(e->d_name) < sizeof newest)
				strcpy(newest, e->d_name);
		closedir(d);
		CHECK(newest[0], "no log segment in %s", shard_dir);
		snprintf(wal, sizeof wal, "%s/%s", shard_dir, newest);
		f = fopen(wal, "r+b");
		CHECK(f, "open %s", wal);
		/* Inside the first record (page 0 is 4096 bytes, record header
		 * 48): valid records follow it, so this is corruption, not a tear. */
		CHECK(fseek(f, 4096 + 48 + 2, SEEK_SET) == 0, "seek");
		byte = fgetc(f);
		CHECK(byte != EOF, "log too short");
		CHECK(fseek(f, 4096 + 48 + 2, SEEK_SET) == 0, "seek");
		fputc(byte ^ 0x40, f);
		fclose(f);
		rc = run_capture(argv[1], args3, out, sizeof out);
		CHECK(rc == 1 && strstr(out, newest) && strstr(out, "offset "),
		      "corrupt log: exit %d, output: %s", rc, out);
	}
	harness_cleanup();
	printf("1 passed, 0 failed\n");
	return 0;
}
