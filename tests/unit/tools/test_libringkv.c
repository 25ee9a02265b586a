/*
 * Tests of tools/libringkv.c against the in-test server of fake_server.c:
 * blocking calls and status mapping, pipelining, answers out of order,
 * server error texts, a server that closes or sends garbage, and a pipeline
 * big enough to fill both socket directions at once; connect and request
 * timeouts against a server that never answers, bad ports, a RESP port.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <stdio.h>
#include <time.h>

#include <cmocka.h>

#include "core/errors.h"
#include "fake_server.h"
#include "tools/libringkv.h"

struct fixture {
	struct fake_server server;
	struct rkv_client *client;
};

static struct fixture *start(void **state, enum fake_mode mode, int batch,
			     int close_after)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[128];

	assert_non_null(f);
	f->server.batch = batch;
	f->server.close_after = close_after;
	assert_int_equal(fake_server_start(&f->server, mode), 0);
	assert_int_equal(rkv_connect(f->server.address, &f->client, err, sizeof(err)), 0);
	*state = f;
	return f;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f) {
		rkv_close(f->client);
		fake_server_stop(&f->server);
		free(f);
	}
	return 0;
}

static void test_put_get_del(void **state)
{
	struct fixture *f = start(state, FAKE_STORE, 0, 0);
	struct rkv_client *c = f->client;
	void *value = (void *)1;
	size_t len = 99;

	assert_int_equal(rkv_put(c, "k", 1, "hello", 5), RKV_STATUS_OK);
	assert_int_equal(rkv_get(c, "k", 1, &value, &len), RKV_STATUS_OK);
	assert_int_equal(len, 5);
	assert_memory_equal(value, "hello", 5);
	free(value);

	/* An empty value is a value, not a missing key. */
	assert_int_equal(rkv_put(c, "e", 1, NULL, 0), RKV_STATUS_OK);
	assert_int_equal(rkv_get(c, "e", 1, &value, &len), RKV_STATUS_OK);
	assert_non_null(value);
	assert_int_equal(len, 0);
	free(value);

	assert_int_equal(rkv_get(c, "missing", 7, &value, &len), RKV_STATUS_NOT_FOUND);
	assert_null(value);
	assert_int_equal(len, 0);
	assert_string_equal(rkv_last_error(c), "NOT_FOUND");

	assert_int_equal(rkv_del(c, "k", 1), RKV_STATUS_OK);
	assert_int_equal(rkv_get(c, "k", 1, &value, &len), RKV_STATUS_NOT_FOUND);
	/* As ringkvd answers: deleting a missing key is OK. */
	assert_int_equal(rkv_del(c, "k", 1), RKV_STATUS_OK);

	/* The empty key is a key. */
	assert_int_equal(rkv_put(c, "", 0, "v", 1), RKV_STATUS_OK);
	assert_int_equal(rkv_put(c, "k", 1, "v", 1), RKV_STATUS_OK);
}

static void test_pipelining(void **state)
{
	struct fixture *f = start(state, FAKE_STORE, 0, 0);
	struct rkv_client *c = f->client;
	enum { N = 1000 };
	uint64_t ids[N];
	char key[32], val[32];
	struct rkv_result res;

	for (int i = 0; i < N; i++) {
		int kl = snprintf(key, sizeof(key), "key-%d", i % 50);
		int vl = snprintf(val, sizeof(val), "value-%d", i);

		assert_int_equal(rkv_send_put(c, key, (size_t)kl, val, (size_t)vl, &ids[i]), 0);
		if (i > 0)
			assert_true(ids[i] == ids[i - 1] + 1);
	}
	assert_int_equal(rkv_flush(c), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(rkv_recv(c, &res), 0);
		assert_true(res.id == ids[i]);
		assert_int_equal(res.status, RKV_STATUS_OK);
		assert_string_equal(res.error, "");
	}
	/* The server got them in order, in one connection. */
	assert_int_equal(f->server.seen, N);
	for (int i = 0; i < N; i++)
		assert_true(f->server.seen_ids[i] == ids[i]);

	/* Gets, collected without an explicit flush (rkv_recv flushes). */
	for (int i = 0; i < 50; i++) {
		int kl = snprintf(key, sizeof(key), "key-%d", i);

		assert_int_equal(rkv_send_get(c, key, (size_t)kl, &ids[i]), 0);
	}
	for (int i = 0; i < 50; i++) {
		int vl = snprintf(val, sizeof(val), "value-%d", N - 50 + i);

		assert_int_equal(rkv_recv(c, &res), 0);
		assert_true(res.id == ids[i]);
		assert_int_equal(res.status, RKV_STATUS_OK);
		assert_int_equal(res.value_len, (size_t)vl);
		assert_memory_equal(res.value, val, (size_t)vl);
	}
}

static void test_out_of_order(void **state)
{
	struct fixture *f = start(state, FAKE_REVERSE, 8, 0);
	struct rkv_client *c = f->client;
	uint64_t ids[8];
	struct rkv_result res;
	char key[8];
	int got[8] = { 0 };

	for (int i = 0; i < 8; i++) {
		key[0] = (char)('a' + i);
		if (i % 2)
			assert_int_equal(rkv_send_put(c, key, 1, key, 1, &ids[i]), 0);
		else
			assert_int_equal(rkv_send_get(c, key, 1, &ids[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		int which = -1;

		assert_int_equal(rkv_recv(c, &res), 0);
		for (int j = 0; j < 8; j++)
			if (ids[j] == res.id)
				which = j;
		assert_true(which >= 0);
		/* The server answers each batch last request first. */
		assert_int_equal(which, 7 - i);
		got[which]++;
		assert_int_equal(res.status, which % 2 ? RKV_STATUS_OK : RKV_STATUS_NOT_FOUND);
	}
	for (int i = 0; i < 8; i++)
		assert_int_equal(got[i], 1);
	assert_int_equal(rkv_recv(c, &res), RKV_EINVAL); /* nothing in flight */
}

/* A blocking call skips answers to pipelined requests nobody collected. */
static void test_blocking_after_pipeline(void **state)
{
	struct fixture *f = start(state, FAKE_STORE, 0, 0);
	struct rkv_client *c = f->client;
	void *value;
	size_t len;

	assert_int_equal(rkv_send_put(c, "a", 1, "1", 1, NULL), 0);
	assert_int_equal(rkv_send_put(c, "b", 1, "2", 1, NULL), 0);
	assert_int_equal(rkv_get(c, "b", 1, &value, &len), RKV_STATUS_OK);
	assert_int_equal(len, 1);
	assert_memory_equal(value, "2", 1);
	free(value);
	{
		struct rkv_result res;

		assert_int_equal(rkv_recv(c, &res), RKV_EINVAL);
	}
}

static void test_server_error_text(void **state)
{
	struct fixture *f = start(state, FAKE_ERROR, 0, 0);
	struct rkv_client *c = f->client;
	struct rkv_result res;
	uint64_t id;

	assert_int_equal(rkv_put(c, "k", 1, "v", 1), RKV_STATUS_INTERNAL);
	assert_string_equal(rkv_last_error(c), FAKE_ERROR_TEXT);
	assert_int_equal(rkv_send_del(c, "k", 1, &id), 0);
	assert_int_equal(rkv_recv(c, &res), 0);
	assert_true(res.id == id);
	assert_int_equal(res.status, RKV_STATUS_INTERNAL);
	assert_string_equal(res.error, FAKE_ERROR_TEXT);
}

static void test_server_closed(void **state)
{
	struct fixture *f = start(state, FAKE_STORE, 0, 1);
	struct rkv_client *c = f->client;
	void *value;
	size_t len;

	assert_int_equal(rkv_put(c, "k", 1, "v", 1), RKV_STATUS_OK);
	/* The server read the first request and hung up. */
	assert_int_equal(rkv_get(c, "k", 1, &value, &len), RKV_ECLOSED);
	assert_non_null(strstr(rkv_last_error(c), "closed"));
	/* Sticky: the connection stays failed. */
	assert_int_equal(rkv_put(c, "k", 1, "v", 1), RKV_ECLOSED);
	assert_int_equal(rkv_flush(c), RKV_ECLOSED);
}

static void test_server_garbage(void **state)
{
	struct fixture *f = start(state, FAKE_GARBAGE, 0, 0);
	struct rkv_client *c = f->client;

	assert_int_equal(rkv_del(c, "k", 1), RKV_EPROTO);
	assert_non_null(strstr(rkv_last_error(c), "response"));
}

/*
 * 24 MiB each way without reading in between: a client that only wrote
 * would block with the server blocked on its own answers.
 */
static void test_big_pipeline_no_deadlock(void **state)
{
	struct fixture *f = start(state, FAKE_ECHO, 0, 0);
	struct rkv_client *c = f->client;
	enum { N = 384, SIZE = 64 << 10 };
	uint8_t *value = malloc(SIZE);
	struct rkv_result res;

	assert_non_null(value);
	for (int i = 0; i < SIZE; i++)
		value[i] = (uint8_t)(i * 7);
	for (int i = 0; i < N; i++) {
		value[0] = (uint8_t)i;
		assert_int_equal(rkv_send_put(c, "k", 1, value, SIZE, NULL), 0);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(rkv_recv(c, &res), 0);
		assert_true(res.id == (uint64_t)i + 1);
		assert_int_equal(res.value_len, SIZE);
		value[0] = (uint8_t)i;
		assert_memory_equal(res.value, value, SIZE);
	}
	free(value);
}

static void test_request_too_large_locally(void **state)
{
	struct fixture *f = start(state, FAKE_STORE, 0, 0);
	struct rkv_client *c = f->client;
	size_t big = (4u << 20) + 1;
	uint8_t *value = calloc(1, big);

	assert_non_null(value);
	assert_int_equal(rkv_put(c, "k", 1, value, big), RKV_ETOOLARGE);
	/* Fits the limit by itself, not with the framing around it. */
	assert_int_equal(rkv_put(c, "k", 1, value, big - 1), RKV_ETOOLARGE);
	/* Nothing was queued; the connection still works. */
	assert_int_equal(rkv_put(c, "k", 1, "v", 1), RKV_STATUS_OK);
	free(value);
}

static void test_connect_errors(void **state)
{
	struct rkv_client *c = (struct rkv_client *)1;
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t len = sizeof(addr);
	char err[128], address[64];
	int fd;

	(void)state;
	assert_int_equal(rkv_connect("nohostport", &c, err, sizeof(err)), -EINVAL);
	assert_null(c);
	assert_non_null(strstr(err, "HOST:PORT"));
	assert_int_equal(rkv_connect("[::1", &c, NULL, 0), -EINVAL);
	assert_int_equal(rkv_connect("::1:80", &c, NULL, 0), -EINVAL);
	assert_int_equal(rkv_connect("host:", &c, NULL, 0), -EINVAL);

	/* A port nobody listens on: bind one, then release it. */
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
	close(fd);
	snprintf(address, sizeof(address), "127.0.0.1:%u", (unsigned)ntohs(addr.sin_port));
	assert_int_equal(rkv_connect(address, &c, err, sizeof(err)), -ECONNREFUSED);
	assert_null(c);
	assert_non_null(strstr(err, "refused"));
}

static long elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* A server that accepts and never answers costs each call its timeout. */
static void test_request_timeout(void **state)
{
	struct fixture *f = start(state, FAKE_SILENT, 0, 0);
	struct rkv_client *c = f->client;
	struct timespec t0;
	void *value = (void *)1;
	size_t len;
	long ms;

	assert_int_equal(rkv_get_timeout(c), 0);
	rkv_set_timeout(c, 200);
	assert_int_equal(rkv_get_timeout(c), 200);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(rkv_get(c, "k", 1, &value, &len), -ETIMEDOUT);
	ms = elapsed_ms(&t0);
	assert_true(ms >= 190 && ms < 3000);
	assert_null(value);
	assert_non_null(strstr(rkv_last_error(c), "within 200 ms"));
	assert_string_equal(rkv_status_name(-ETIMEDOUT), strerror(ETIMEDOUT));
	/* Sticky: a late answer would be taken for the next call's. */
	assert_int_equal(rkv_put(c, "k", 1, "v", 1), -ETIMEDOUT);
	assert_int_equal(rkv_ping(c), -ETIMEDOUT);
}

static void test_timeout_each_call(void **state)
{
	struct fixture *f = start(state, FAKE_SILENT, 0, 0);
	struct rkv_client *c = f->client;
	struct rkv_kv *pairs = (struct rkv_kv *)1;
	struct rkv_result res;
	struct rkv_client *d;
	struct timespec t0;
	size_t count = 1;
	char err[128];

	rkv_set_timeout(c, 100);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(rkv_scan(c, "a", 1, "", 0, 10, &pairs, &count), -ETIMEDOUT);
	assert_true(elapsed_ms(&t0) >= 90);
	assert_null(pairs);
	assert_int_equal(count, 0);
	rkv_close(c);

	/* Pipelined: rkv_recv waits at most the timeout for an answer. */
	assert_int_equal(rkv_connect(f->server.address, &d, err, sizeof(err)), 0);
	f->client = d;
	rkv_set_timeout(d, 100);
	assert_int_equal(rkv_send_get(d, "a", 1, NULL), 0);
	assert_int_equal(rkv_send_get(d, "b", 1, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(rkv_recv(d, &res), -ETIMEDOUT);
	assert_true(elapsed_ms(&t0) >= 90);
}

/* A timeout on a server that answers changes nothing. */
static void test_timeout_answered(void **state)
{
	struct fixture *f = start(state, FAKE_STORE, 0, 0);
	struct rkv_client *c = f->client;
	void *value;
	size_t len;

	rkv_set_timeout(c, 2000);
	assert_int_equal(rkv_ping(c), 0);
	assert_int_equal(rkv_put(c, "k", 1, "v", 1), RKV_STATUS_OK);
	assert_int_equal(rkv_get(c, "k", 1, &value, &len), RKV_STATUS_OK);
	assert_memory_equal(value, "v", 1);
	free(value);
	rkv_set_timeout(c, -5);
	assert_int_equal(rkv_get_timeout(c), 0);
	assert_int_equal(rkv_del(c, "k", 1), RKV_STATUS_OK);
}

/*
 * A listener whose accept queue is full drops new handshakes, as a
 * black-holed address would: the connect must give up at its timeout.
 */
static void test_connect_timeout(void **state)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t len = sizeof(addr);
	struct rkv_client *c = (struct rkv_client *)1;
	int lfd, filled = 0, rc = 0;
	char address[64], err[128];
	struct timespec t0;

	(void)state;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(lfd, 0), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&addr, &len), 0);
	snprintf(address, sizeof(address), "127.0.0.1:%u", (unsigned)ntohs(addr.sin_port));
	/* Fill the queue: connects that complete until one does not. */
	for (; filled < 8; filled++) {
		rc = rkv_connect_timeout(address, 100, &c, NULL, 0);
		if (rc != 0)
			break;
		rkv_close(c); /* stays queued on the listener: nobody accepts */
	}
	if (filled == 8) {
		close(lfd);
		skip(); /* this kernel never drops a handshake */
	}
	assert_int_equal(rc, -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(rkv_connect_timeout(address, 300, &c, err, sizeof(err)), -ETIMEDOUT);
	assert_true(elapsed_ms(&t0) >= 290 && elapsed_ms(&t0) < 5000);
	assert_null(c);
	assert_non_null(strstr(err, "no answer within 300 ms"));
	close(lfd);
}

static void test_bad_ports(void **state)
{
	static const char *const bad[] = { "127.0.0.1:0", "127.0.0.1:65536",
					   "127.0.0.1:99999999999", "127.0.0.1:-1",
					   "127.0.0.1:http", "127.0.0.1:7070x",
					   "[::1]:70000" };
	struct rkv_client *c;
	char err[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(rkv_connect(bad[i], &c, err, sizeof(err)), -EINVAL);
		assert_null(c);
		assert_non_null(strstr(err, "1 to 65535"));
	}
}

/* The native client aimed at the Redis-protocol port says so. */
static void test_resp_port(void **state)
{
	struct fixture *f = start(state, FAKE_RESP, 0, 0);
	void *value;
	size_t len;

	assert_int_equal(rkv_get(f->client, "k", 1, &value, &len), RKV_EPROTO);
	assert_non_null(strstr(rkv_last_error(f->client), "Redis protocol"));
}

static void test_connect_by_name(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char address[64];

	assert_non_null(f);
	*state = f;
	assert_int_equal(fake_server_start(&f->server, FAKE_STORE), 0);
	/* "localhost" may resolve to ::1 first; the client tries each address. */
	snprintf(address, sizeof(address), "localhost:%u", (unsigned)f->server.port);
	assert_int_equal(rkv_connect(address, &f->client, NULL, 0), 0);
	assert_int_equal(rkv_put(f->client, "k", 1, "v", 1), RKV_STATUS_OK);
}

static void assert_pair(const struct rkv_kv *p, const char *key, const char *value)
{
	assert_int_equal(p->key_len, strlen(key));
	assert_memory_equal(p->key, key, p->key_len);
	assert_int_equal(p->value_len, strlen(value));
	if (p->value_len)
		assert_memory_equal(p->value, value, p->value_len);
}

static void test_scan(void **state)
{
	struct fixture *f = start(state, FAKE_STORE, 0, 0);
	struct rkv_client *c = f->client;
	static const char *const keys[] = { "b", "a", "d", "c", "e" };
	struct rkv_kv *pairs = (struct rkv_kv *)1;
	size_t count = 99;
	char big[8192];

	for (size_t i = 0; i < 5; i++)
		assert_int_equal(rkv_put(c, keys[i], 1, keys[i], 1), RKV_STATUS_OK);
	assert_int_equal(rkv_put(c, "a\0z", 3, "", 0), RKV_STATUS_OK);

	/* Unbounded: the fake answers at most FAKE_SCAN_PAGE pairs. */
	assert_int_equal(rkv_scan(c, NULL, 0, NULL, 0, 0, &pairs, &count), RKV_STATUS_OK);
	assert_int_equal(count, 3);
	assert_pair(&pairs[0], "a", "a");
	assert_int_equal(pairs[1].key_len, 3);
	assert_memory_equal(pairs[1].key, "a\0z", 3);
	assert_int_equal(pairs[1].value_len, 0);
	assert_pair(&pairs[2], "b", "b");
	rkv_scan_free(pairs);

	/* Paging from the last key plus a zero byte, up to an end. */
	assert_int_equal(rkv_scan(c, "b\0", 2, "e", 1, 10, &pairs, &count), RKV_STATUS_OK);
	assert_int_equal(count, 2);
	assert_pair(&pairs[0], "c", "c");
	assert_pair(&pairs[1], "d", "d");
	rkv_scan_free(pairs);

	/* The limit is sent; an empty range answers no pairs and NULL. */
	assert_int_equal(rkv_scan(c, "c", 1, NULL, 0, 1, &pairs, &count), RKV_STATUS_OK);
	assert_int_equal(count, 1);
	assert_pair(&pairs[0], "c", "c");
	rkv_scan_free(pairs);
	assert_int_equal(rkv_scan(c, "f", 1, NULL, 0, 0, &pairs, &count), RKV_STATUS_OK);
	assert_int_equal(count, 0);
	assert_null(pairs);
	rkv_scan_free(NULL);

	/* Pipelined: pairs come in the result, valid until the next call. */
	{
		uint64_t put_id, scan_id;
		struct rkv_result res;

		assert_int_equal(rkv_send_put(c, "bb", 2, "x", 1, &put_id), 0);
		assert_int_equal(rkv_send_scan(c, "b", 1, "c", 1, 5, &scan_id), 0);
		assert_int_equal(rkv_recv(c, &res), 0);
		assert_true(res.id == put_id);
		assert_int_equal(res.pair_count, 0);
		assert_null(res.pairs);
		assert_int_equal(rkv_recv(c, &res), 0);
		assert_true(res.id == scan_id);
		assert_int_equal(res.status, RKV_STATUS_OK);
		assert_int_equal(res.pair_count, 2);
		assert_pair(&res.pairs[0], "b", "b");
		assert_pair(&res.pairs[1], "bb", "x");
	}

	/* Bounds over the key limit are refused locally; the client stays usable. */
	memset(big, 'k', sizeof(big));
	assert_int_equal(rkv_scan(c, big, sizeof(big), NULL, 0, 0, &pairs, &count),
			 RKV_ETOOLARGE);
	assert_int_equal(rkv_scan(c, NULL, 0, big, sizeof(big), 0, &pairs, &count),
			 RKV_ETOOLARGE);
	assert_null(pairs);
	assert_int_equal(rkv_scan(c, "e", 1, NULL, 0, 0, &pairs, &count), RKV_STATUS_OK);
	assert_int_equal(count, 1);
	rkv_scan_free(pairs);
}

static void test_scan_server_error(void **state)
{
	struct fixture *f = start(state, FAKE_ERROR, 0, 0);
	struct rkv_kv *pairs = (struct rkv_kv *)1;
	size_t count = 7;

	assert_int_equal(rkv_scan(f->client, "a", 1, "z", 1, 0, &pairs, &count),
			 RKV_STATUS_INTERNAL);
	assert_null(pairs);
	assert_int_equal(count, 0);
	assert_string_equal(rkv_last_error(f->client), FAKE_ERROR_TEXT);
}

static void test_status_names(void **state)
{
	(void)state;
	assert_string_equal(rkv_status_name(RKV_STATUS_OK), "OK");
	assert_string_equal(rkv_status_name(RKV_STATUS_NOT_FOUND), "NOT_FOUND");
	assert_string_equal(rkv_status_name(RKV_STATUS_INTERNAL), "INTERNAL");
	assert_string_equal(rkv_status_name(RKV_STATUS_DATA_LOSS), "DATA_LOSS");
	assert_string_equal(rkv_status_name(42), "UNKNOWN_STATUS");
	assert_string_equal(rkv_status_name(RKV_ECLOSED), "connection closed");
	assert_non_null(strstr(rkv_status_name(-ECONNREFUSED), "refused"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_put_get_del, teardown),
		cmocka_unit_test_teardown(test_pipelining, teardown),
		cmocka_unit_test_teardown(test_out_of_order, teardown),
		cmocka_unit_test_teardown(test_blocking_after_pipeline, teardown),
		cmocka_unit_test_teardown(test_server_error_text, teardown),
		cmocka_unit_test_teardown(test_server_closed, teardown),
		cmocka_unit_test_teardown(test_server_garbage, teardown),
		cmocka_unit_test_teardown(test_big_pipeline_no_deadlock, teardown),
		cmocka_unit_test_teardown(test_request_too_large_locally, teardown),
		cmocka_unit_test_teardown(test_scan, teardown),
		cmocka_unit_test_teardown(test_scan_server_error, teardown),
		cmocka_unit_test(test_connect_errors),
		cmocka_unit_test_teardown(test_connect_by_name, teardown),
		cmocka_unit_test(test_status_names),
		cmocka_unit_test_teardown(test_request_timeout, teardown),
		cmocka_unit_test_teardown(test_timeout_each_call, teardown),
		cmocka_unit_test_teardown(test_timeout_answered, teardown),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_bad_ports),
		cmocka_unit_test_teardown(test_resp_port, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
