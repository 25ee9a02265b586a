/*
 * Forwarding to the leader's node (issue #12, "Clients"): three real
 * ringkvd processes on 127.0.1.11-13 with 6 shards of 2 replicas each, so
 * every node leads some shards, follows some and holds no replica of the
 * rest (node 3 runs one core, the others two, so answers also cross cores).
 *
 * Checked:
 *  - a write through any node is read through every node, natively (PUT,
 *    GET, DELETE, SCAN) and over RESP (SET [NX|XX|GET], GET, DEL, EXISTS,
 *    INCR/INCRBY/DECR, APPEND, STRLEN, MSET, MGET, SCAN);
 *  - Request.no_forward: exactly one node (the leader) answers OK; every
 *    other answers NOT_LEADER, and each non-zero leader_hint names the
 *    leader (a follower always knows it); of no_forward PUTs through every
 *    node only the leader's is applied;
 *  - stale reads (GetRequest.stale, ScanRequest.stale) through every node
 *    return the applied value, and never a value that was not written;
 *  - kill -9 of node 1 with pipelined writes in flight through nodes 2
 *    and 3: every request is answered within a bound (never a hang), and
 *    after node 1 is back every write answered OK reads back, every write
 *    answered "not applied" (UNAVAILABLE, NOT_LEADER, RESOURCE_EXHAUSTED)
 *    is absent; UNKNOWN may go either way.
 *
 * usage: test_cluster_forward RINGKVD
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "proto/frame.h"
#include "ringkv.pb.h"
#include "tools/libringkv.h"

#define NODES 3
#define KEYS 60
#define KILL_KEYS 240
#define READY_MS 30000
#define ANSWER_MS 30000 /* a forwarded request is answered within this */

static struct cluster cluster;
static unsigned base_port;
static char resp[NODES][64]; /* each node's --resp-listen */

/* ---- a raw native client: the fields libringkv does not send ------------- */

static int dial(const char *host, unsigned port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;

	CHECK(fd >= 0, "socket: %s", strerror(errno));
	inet_pton(AF_INET, host, &sa.sin_addr);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect %s:%u: %s", host,
	      port, strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

static void send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);

		CHECK(w > 0, "write: %s", strerror(errno));
		p += w;
		len -= (size_t)w;
	}
}

/* Reads exactly len bytes within the deadline; false on EOF or timeout. */
static bool recv_all(int fd, void *buf, size_t len, long deadline)
{
	uint8_t *p = buf;

	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long left = deadline - harness_now_ms();
		ssize_t r;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return false;
		r = read(fd, p, len);
		if (r <= 0)
			return false;
		p += r;
		len -= (size_t)r;
	}
	return true;
}

struct answer {
	int status;
	uint64_t hint;
	char value[256];
	size_t value_len;
	size_t pairs;
};

static int count_pair(void *arg, const struct frame_kv *pair)
{
	(void)pair;
	(*(size_t *)arg)++;
	return 0;
}

static void raw_call(int fd, const struct frame_request *rq, struct answer *a)
{
	uint8_t out[4096], head[4];
	static uint8_t in[1 << 20];
	struct frame_slice value, error;
	uint32_t len;
	uint64_t id;
	int n = frame_encode_request(rq, out, sizeof out);

	CHECK(n > 0, "encode");
	send_all(fd, out, (size_t)n);
	CHECK(recv_all(fd, head, 4, harness_now_ms() + ANSWER_MS), "no answer in %d ms", ANSWER_MS);
	len = (uint32_t)head[0] | (uint32_t)head[1] << 8 | (uint32_t)head[2] << 16 |
	      (uint32_t)head[3] << 24;
	CHECK(len <= sizeof in, "answer of %u bytes", len);
	CHECK(recv_all(fd, in, len, harness_now_ms() + ANSWER_MS), "short answer");
	memset(a, 0, sizeof *a);
	CHECK(frame_decode_response_pairs(in, len, &id, &a->status, &value, &error, count_pair,
					  &a->pairs) == 0,
	      "undecodable answer");
	CHECK(id == rq->id, "answer id %llu for %llu", (unsigned long long)id,
	      (unsigned long long)rq->id);
	CHECK(frame_decode_response_hint(in, len, &a->hint) == 0, "undecodable hint");
	CHECK(value.len < sizeof a->value, "value too long");
	if (value.len)
		memcpy(a->value, value.data, value.len);
	a->value[value.len] = '\0';
	a->value_len = value.len;
}

static void raw_get(int fd, const char *key, bool no_forward, bool stale, struct answer *a)
{
	static uint64_t next_id = 1;
	struct frame_request rq = {
		.id = next_id++,
		.op = FRAME_OP_GET,
		.key = { (const uint8_t *)key, (uint32_t)strlen(key) },
		.value = { (const uint8_t *)"", 0 },
		.end = { (const uint8_t *)"", 0 },
		.no_forward = no_forward,
		.stale = stale,
	};

	raw_call(fd, &rq, a);
}

static void raw_put(int fd, const char *key, const char *value, bool no_forward,
		    struct answer *a)
{
	static uint64_t next_id = 1u << 20;
	struct frame_request rq = {
		.id = next_id++,
		.op = FRAME_OP_PUT,
		.key = { (const uint8_t *)key, (uint32_t)strlen(key) },
		.value = { (const uint8_t *)value, (uint32_t)strlen(value) },
		.end = { (const uint8_t *)"", 0 },
		.no_forward = no_forward,
	};

	raw_call(fd, &rq, a);
}

static void raw_scan(int fd, bool stale, struct answer *a)
{
	struct frame_request rq = {
		.id = 7,
		.op = FRAME_OP_SCAN,
		.key = { (const uint8_t *)"key:", 4 },
		.value = { (const uint8_t *)"", 0 },
		.end = { (const uint8_t *)"key;", 4 },
		.limit = 1000,
		.stale = stale,
	};

	raw_call(fd, &rq, a);
}

/* ---- a raw RESP client ---------------------------------------------------- */

static int resp_fd[NODES];

static void resp_send(int fd, unsigned argc, const char *const *argv)
{
	char buf[2048];
	size_t n = (size_t)snprintf(buf, sizeof buf, "*%u\r\n", argc);

	for (unsigned i = 0; i < argc; i++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "$%zu\r\n%s\r\n", strlen(argv[i]),
				      argv[i]);
	CHECK(n < sizeof buf, "command too long");
	send_all(fd, buf, n);
}

static void resp_line(int fd, char *line, size_t cap)
{
	size_t n = 0;
	long deadline = harness_now_ms() + ANSWER_MS;

	for (;;) {
		CHECK(n + 1 < cap, "RESP line too long");
		CHECK(recv_all(fd, line + n, 1, deadline), "RESP: no answer in %d ms", ANSWER_MS);
		if (n > 0 && line[n - 1] == '\r' && line[n] == '\n') {
			line[n - 1] = '\0';
			return;
		}
		n++;
	}
}

/* One reply as text: "+OK", "-ERR ...", ":5", "$value", "$nil", or an
 * array's elements joined by ',' after '*'. */
static void resp_reply(int fd, char *out, size_t cap)
{
	char line[1024];

	resp_line(fd, line, sizeof line);
	if (line[0] == '$') {
		long len = atol(line + 1);

		if (len < 0) {
			snprintf(out, cap, "$nil");
			return;
		}
		CHECK((size_t)len + 2 < cap, "bulk too long");
		out[0] = '$';
		CHECK(recv_all(fd, out + 1, (size_t)len + 2, harness_now_ms() + ANSWER_MS), "short bulk");
		out[1 + len] = '\0';
		return;
	}
	if (line[0] == '*') {
		long count = atol(line + 1);
		size_t n = 1;

		out[0] = '*';
		out[1] = '\0';
		for (long i = 0; i < count; i++) {
			char item[512];

			resp_reply(fd, item, sizeof item);
			n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? "," : "", item);
			CHECK(n < cap, "array too long");
		}
		return;
	}
	snprintf(out, cap, "%s", line);
}

static void resp_expect(unsigned node, const char *want, unsigned argc, ...)
{
	const char *argv[16];
	char got[2048];
	va_list ap;

	va_start(ap, argc);
	for (unsigned i = 0; i < argc; i++)
		argv[i] = va_arg(ap, const char *);
	va_end(ap);
	resp_send(resp_fd[node], argc, argv);
	resp_reply(resp_fd[node], got, sizeof got);
	CHECK(strcmp(got, want) == 0, "RESP %s through node %u: got '%s', want '%s'", argv[0],
	      node + 1, got, want);
}

/* ---- helpers on libringkv ---------------------------------------------------- */

static struct rkv_client *connect_node(unsigned i)
{
	struct rkv_client *c;
	char err[256];

	CHECK(rkv_connect_timeout(cluster.nodes[i].srv.addr, 5000, &c, err, sizeof err) == 0,
	      "connect node %u: %s", i + 1, err);
	rkv_set_timeout(c, ANSWER_MS);
	return c;
}

/* Writes until OK (a fresh cluster elects its leaders): true when acked. */
static void put_until_ok(struct rkv_client *c, const char *key, const char *value)
{
	long deadline = harness_now_ms() + READY_MS;
	int rv = -1;

	while (harness_now_ms() < deadline) {
		rv = rkv_put(c, key, strlen(key), value, strlen(value));
		if (rv == RKV_STATUS_OK)
			return;
		CHECK(rv == RKV_STATUS_UNAVAILABLE, "put %s: %s (%s)", key, rkv_status_name(rv),
		      rkv_last_error(c));
		usleep(50000);
	}
	CHECK(false, "put %s never succeeded: %s", key, rkv_status_name(rv));
}

static void expect_get(struct rkv_client *c, unsigned node, const char *key, const char *want)
{
	void *got = NULL;
	size_t len = 0;
	int rv = rkv_get(c, key, strlen(key), &got, &len);

	if (!want) {
		CHECK(rv == RKV_STATUS_NOT_FOUND, "get %s through node %u: %s (%s), want NOT_FOUND",
		      key, node + 1, rkv_status_name(rv), rkv_last_error(c));
		return;
	}
	CHECK(rv == RKV_STATUS_OK, "get %s through node %u: %s (%s)", key, node + 1,
	      rkv_status_name(rv), rkv_last_error(c));
	CHECK(len == strlen(want) && memcmp(got, want, len) == 0,
	      "get %s through node %u: wrong value '%.*s'", key, node + 1, (int)len,
	      (const char *)got);
	free(got);
}

static void key_of(char *buf, size_t cap, const char *prefix, unsigned k)
{
	snprintf(buf, cap, "%s:%05u", prefix, k);
}

/* ---- the checks ----------------------------------------------------------------- */

/* What key k holds after check_native. */
static void final_value(char *buf, size_t cap, unsigned k)
{
	if (k % 5 == 0)
		snprintf(buf, cap, "v%u-again", k);
	else
		snprintf(buf, cap, "v%u-through-%u", k, k % NODES + 1);
}

static int dial_native(unsigned i)
{
	const char *addr = cluster.nodes[i].srv.addr, *colon = strrchr(addr, ':');
	char host[32];

	snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
	return dial(host, (unsigned)atoi(colon + 1));
}

static void check_native(struct rkv_client **c)
{
	char key[32], value[64];

	for (unsigned k = 0; k < KEYS; k++) {
		key_of(key, sizeof key, "key", k);
		snprintf(value, sizeof value, "v%u-through-%u", k, k % NODES + 1);
		put_until_ok(c[k % NODES], key, value);
		for (unsigned i = 0; i < NODES; i++)
			expect_get(c[i], i, key, value);
	}
	/* Deletes through another node than the write. */
	for (unsigned k = 0; k < KEYS; k += 5) {
		key_of(key, sizeof key, "key", k);
		CHECK(rkv_del(c[(k + 1) % NODES], key, strlen(key)) == RKV_STATUS_OK, "del %s", key);
		for (unsigned i = 0; i < NODES; i++)
			expect_get(c[i], i, key, NULL);
		snprintf(value, sizeof value, "v%u-again", k);
		put_until_ok(c[(k + 2) % NODES], key, value);
	}
	/* A scan through every node sees every key (forwarded steps). */
	for (unsigned i = 0; i < NODES; i++) {
		struct rkv_kv *pairs;
		size_t count;
		int rv = rkv_scan(c[i], "key:", 4, "key;", 4, 1000, &pairs, &count);

		CHECK(rv == RKV_STATUS_OK, "scan through node %u: %s (%s)", i + 1,
		      rkv_status_name(rv), rkv_last_error(c[i]));
		CHECK(count == KEYS, "scan through node %u: %zu keys, want %u", i + 1, count, KEYS);
		rkv_scan_free(pairs);
	}
	printf("native: %u keys written through every node, read, deleted and scanned through "
	       "every node\n", KEYS);
}

static void check_resp(void)
{
	char host[32];

	for (unsigned i = 0; i < NODES; i++) {
		snprintf(host, sizeof host, "127.0.1.1%u", i + 1);
		resp_fd[i] = dial(host, base_port + 1);
	}
	for (unsigned k = 0; k < 12; k++) {
		char key[32], value[32], want[40], len[16];
		unsigned w = k % NODES;

		key_of(key, sizeof key, "resp", k);
		snprintf(value, sizeof value, "r%u", k);
		snprintf(want, sizeof want, "$%s", value);
		snprintf(len, sizeof len, ":%zu", strlen(value));
		resp_expect(w, "+OK", 3, "SET", key, value);
		for (unsigned i = 0; i < NODES; i++) {
			resp_expect(i, want, 2, "GET", key);
			resp_expect(i, ":1", 2, "EXISTS", key);
			resp_expect(i, len, 2, "STRLEN", key);
		}
		resp_expect((w + 1) % NODES, "$nil", 4, "SET", key, "x", "NX");
		resp_expect((w + 2) % NODES, want, 5, "SET", key, "xx", "XX", "GET");
		resp_expect(w, ":4", 3, "APPEND", key, "yy");
		resp_expect((w + 1) % NODES, "$xxyy", 2, "GET", key);
		resp_expect((w + 1) % NODES, ":1", 2, "DEL", key);
		resp_expect((w + 2) % NODES, ":0", 2, "EXISTS", key);
		resp_expect(w, "$nil", 2, "GET", key);
	}
	/* A counter bumped through every node. */
	resp_expect(0, ":1", 2, "INCR", "resp:counter");
	resp_expect(1, ":11", 3, "INCRBY", "resp:counter", "10");
	resp_expect(2, ":10", 2, "DECR", "resp:counter");
	for (unsigned i = 0; i < NODES; i++)
		resp_expect(i, "$10", 2, "GET", "resp:counter");
	/* Multi-key commands span shards led by different nodes. */
	resp_expect(1, "+OK", 9, "MSET", "m:a", "1", "m:b", "2", "m:c", "3", "m:d", "4");
	for (unsigned i = 0; i < NODES; i++)
		resp_expect(i, "*$1,$2,$3,$4,$nil", 6, "MGET", "m:a", "m:b", "m:c", "m:d", "m:e");
	for (unsigned i = 0; i < NODES; i++) {
		/* SCAN with COUNT 1000 over the whole (small) key space: the
		 * cursor comes back 0 and every m:* key is listed. */
		char got[4096];
		const char *argv[] = { "SCAN", "0", "MATCH", "m:*", "COUNT", "1000" };
		unsigned found = 0;

		resp_send(resp_fd[i], 6, argv);
		resp_reply(resp_fd[i], got, sizeof got);
		for (const char *p = got; (p = strstr(p, "$m:")) != NULL; p++)
			found++;
		CHECK(strncmp(got, "*$0,", 4) == 0 && found == 4,
		      "SCAN through node %u: '%s'", i + 1, got);
	}
	for (unsigned i = 0; i < NODES; i++)
		close(resp_fd[i]);
	printf("resp: SET/GET/EXISTS/STRLEN/SET NX|XX GET/APPEND/DEL/INCR*/MSET/MGET/SCAN "
	       "through every node\n");
}

static void check_no_forward(void)
{
	int fd[NODES];
	unsigned hinted = 0;

	for (unsigned i = 0; i < NODES; i++)
		fd[i] = dial_native(i);
	for (unsigned k = 1; k < KEYS; k += 3) {
		char key[32];
		struct answer a[NODES];
		int leader = -1;

		key_of(key, sizeof key, "key", k);
		for (unsigned i = 0; i < NODES; i++) {
			raw_get(fd[i], key, true, false, &a[i]);
			if (a[i].status == ringkv_Status_OK) {
				CHECK(leader < 0, "%s: nodes %d and %u both answer a no_forward GET",
				      key, leader + 1, i + 1);
				leader = (int)i;
			} else {
				CHECK(a[i].status == ringkv_Status_NOT_LEADER,
				      "%s: no_forward GET through node %u: status %d", key, i + 1,
				      a[i].status);
			}
		}
		CHECK(leader >= 0, "%s: no node answers a no_forward GET", key);
		for (unsigned i = 0; i < NODES; i++) {
			if (a[i].status != ringkv_Status_NOT_LEADER || a[i].hint == 0)
				continue;
			CHECK(a[i].hint == (uint64_t)leader + 1,
			      "%s: node %u hints node %llu, the leader is node %d", key, i + 1,
			      (unsigned long long)a[i].hint, leader + 1);
			hinted++;
		}
	}
	/* Every key has a follower (R = 2), and a follower knows its leader. */
	CHECK(hinted >= (KEYS + 2) / 3, "only %u NOT_LEADER answers carried a hint", hinted);

	/* no_forward writes: only the leader's is applied; NOT_LEADER means
	 * not applied, so the key ends with the leader's value. */
	for (unsigned k = 0; k < 12; k++) {
		char key[32], value[NODES][32], want[40];
		struct answer a;
		int leader = -1;

		key_of(key, sizeof key, "nofwd", k);
		for (unsigned i = 0; i < NODES; i++) {
			snprintf(value[i], sizeof value[i], "nf%u-from-%u", k, i + 1);
			raw_put(fd[i], key, value[i], true, &a);
			if (a.status == ringkv_Status_OK) {
				CHECK(leader < 0, "%s: two nodes accept a no_forward PUT", key);
				leader = (int)i;
			} else {
				CHECK(a.status == ringkv_Status_NOT_LEADER,
				      "%s: no_forward PUT through node %u: status %d", key, i + 1,
				      a.status);
			}
		}
		CHECK(leader >= 0, "%s: no node accepts a no_forward PUT", key);
		snprintf(want, sizeof want, "%s", value[leader]);
		for (unsigned i = 0; i < NODES; i++) {
			raw_get(fd[i], key, false, false, &a);
			CHECK(a.status == ringkv_Status_OK && strcmp(a.value, want) == 0,
			      "%s through node %u: '%s', want the leader's '%s'", key, i + 1,
			      a.value, want);
		}
	}

	/* Stale reads: through every node, the applied value (followers apply
	 * within moments); never anything that was not written. */
	for (unsigned k = 1; k < KEYS; k += 3) {
		char key[32], want[64];

		key_of(key, sizeof key, "key", k);
		final_value(want, sizeof want, k);
		for (unsigned i = 0; i < NODES; i++) {
			long deadline = harness_now_ms() + 5000;
			struct answer a;

			for (;;) {
				raw_get(fd[i], key, false, true, &a);
				CHECK(a.status == ringkv_Status_OK ||
				      a.status == ringkv_Status_NOT_FOUND,
				      "stale GET %s through node %u: status %d", key, i + 1, a.status);
				if (a.status == ringkv_Status_OK && strcmp(a.value, want) == 0)
					break;
				CHECK(harness_now_ms() < deadline, "stale GET %s through node %u: '%s'", key,
				      i + 1, a.value);
				usleep(20000);
			}
		}
	}
	for (unsigned i = 0; i < NODES; i++) {
		struct answer a;

		raw_scan(fd[i], true, &a);
		CHECK(a.status == ringkv_Status_OK && a.pairs == KEYS,
		      "stale SCAN through node %u: status %d, %zu pairs", i + 1, a.status, a.pairs);
	}
	for (unsigned i = 0; i < NODES; i++)
		close(fd[i]);
	printf("no_forward: one OK per key, %u hints all naming the leader; only the leader's "
	       "no_forward PUT applied; stale GET and SCAN through every node\n", hinted);
}

/* Pipelined writes through nodes 2 and 3 while node 1 is killed. */
static void check_kill(void)
{
	struct rkv_client *c[2];
	int status[KILL_KEYS];
	uint64_t ids[KILL_KEYS];
	unsigned counts[16] = { 0 };
	long t0;

	for (unsigned j = 0; j < 2; j++)
		c[j] = connect_node(j + 1);
	for (unsigned k = 0; k < KILL_KEYS; k++) {
		char key[32], value[32];

		key_of(key, sizeof key, "kill", k);
		snprintf(value, sizeof value, "k%u", k);
		CHECK(rkv_send_put(c[k % 2], key, strlen(key), value, strlen(value), &ids[k]) == 0,
		      "send");
		status[k] = -1;
		if (k == KILL_KEYS / 2) {
			CHECK(rkv_flush(c[0]) == 0 && rkv_flush(c[1]) == 0, "flush");
			cluster_kill(&cluster, 0);
		}
	}
	CHECK(rkv_flush(c[0]) == 0 && rkv_flush(c[1]) == 0, "flush");
	t0 = harness_now_ms();
	for (unsigned j = 0; j < 2; j++) {
		for (unsigned n = 0; n < (KILL_KEYS + 1 - j) / 2; n++) {
			struct rkv_result res;
			int rv = rkv_recv(c[j], &res);

			CHECK(rv == 0, "node %u left a forwarded write unanswered: %d", j + 2, rv);
			for (unsigned k = j; k < KILL_KEYS; k += 2) {
				if (ids[k] == res.id) {
					status[k] = res.status;
					break;
				}
			}
		}
	}
	for (unsigned k = 0; k < KILL_KEYS; k++) {
		CHECK(status[k] >= 0, "write %u not answered", k);
		CHECK(status[k] == ringkv_Status_OK || status[k] == ringkv_Status_UNKNOWN ||
		      status[k] == ringkv_Status_UNAVAILABLE ||
		      status[k] == ringkv_Status_NOT_LEADER ||
		      status[k] == ringkv_Status_RESOURCE_EXHAUSTED,
		      "write %u: status %d", k, status[k]);
		counts[status[k] < 16 ? status[k] : 15]++;
	}
	printf("kill -9 of node 1 under forwarded writes: all %u answered within %ld ms: %u OK, "
	       "%u UNKNOWN, %u UNAVAILABLE, %u NOT_LEADER\n", KILL_KEYS, harness_now_ms() - t0,
	       counts[ringkv_Status_OK], counts[ringkv_Status_UNKNOWN],
	       counts[ringkv_Status_UNAVAILABLE], counts[ringkv_Status_NOT_LEADER]);
	CHECK(counts[ringkv_Status_OK] > 0, "no write succeeded");
	harness_close_all(c, 2);

	/* Node 1 down: the shards it shared with another node have no
	 * majority, yet every key is readable stale through nodes 2 and 3,
	 * from whichever replica is left. */
	for (unsigned i = 1; i < NODES; i++) {
		int fd = dial_native(i);

		for (unsigned k = 0; k < KEYS; k++) {
			char key[32], want[64];
			struct answer a;

			key_of(key, sizeof key, "key", k);
			final_value(want, sizeof want, k);
			raw_get(fd, key, false, true, &a);
			CHECK(a.status == ringkv_Status_OK && strcmp(a.value, want) == 0,
			      "stale GET %s through node %u with node 1 down: status %d '%s'", key,
			      i + 1, a.status, a.value);
		}
		close(fd);
	}
	printf("node 1 down: every key read stale through nodes 2 and 3\n");

	/* Node 1 back: every shard has a majority again. */
	cluster_start(&cluster, 0);
	c[0] = connect_node(1);
	put_until_ok(c[0], "after:kill", "1");
	for (unsigned k = 0; k < KILL_KEYS; k++) {
		char key[32], value[32];
		void *got = NULL;
		size_t len = 0;
		long deadline = harness_now_ms() + READY_MS;
		int rv;

		key_of(key, sizeof key, "kill", k);
		snprintf(value, sizeof value, "k%u", k);
		while ((rv = rkv_get(c[0], key, strlen(key), &got, &len)) ==
			       RKV_STATUS_UNAVAILABLE &&
		       harness_now_ms() < deadline)
			usleep(50000);
		if (status[k] == ringkv_Status_OK) {
			CHECK(rv == RKV_STATUS_OK && len == strlen(value) &&
			      memcmp(got, value, len) == 0,
			      "write %u acknowledged OK but reads %s", k, rkv_status_name(rv));
		} else if (status[k] != ringkv_Status_UNKNOWN) {
			CHECK(rv == RKV_STATUS_NOT_FOUND,
			      "write %u answered %d (not applied) but reads %s", k, status[k],
			      rkv_status_name(rv));
		} else {
			CHECK(rv == RKV_STATUS_OK || rv == RKV_STATUS_NOT_FOUND,
			      "write %u (unknown) reads %s", k, rkv_status_name(rv));
		}
		free(got);
	}
	rkv_close(c[0]);
	printf("after restart: every OK write reads back, every not-applied write is absent\n");
}

int main(int argc, char **argv)
{
	struct rkv_client *c[NODES];

	if (argc < 2) {
		fprintf(stderr, "usage: %s RINGKVD\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	base_port = 21000 + (unsigned)getpid() % 400 * 2;
	cluster_init(&cluster, argv[1], NODES, "127.0.1.1", base_port);
	cluster.args = (const char *const[]){ "--shards", "6", "--replicas", "2",
					      "--election-timeout", "300ms", NULL };
	/* $FORWARD_LOG_DIR keeps the logs after the run (e.g. under ASan). */
	cluster_keep_logs(&cluster, getenv("FORWARD_LOG_DIR"));
	for (unsigned i = 0; i < NODES; i++) {
		struct cluster_node *n = &cluster.nodes[i];

		snprintf(resp[i], sizeof resp[i], "127.0.1.1%u:%u", i + 1, base_port + 1);
		n->args[0] = "--cores";
		n->args[1] = i == 2 ? "1" : "2";
		n->args[2] = "--resp-listen";
		n->args[3] = resp[i];
	}
	cluster_start_all(&cluster);
	for (unsigned i = 0; i < NODES; i++)
		c[i] = connect_node(i);
	check_native(c);
	check_resp();
	check_no_forward();
	harness_close_all(c, NODES);
	check_kill();
	/* A clean exit: a sanitizer report or a leak would make it non-zero. */
	cluster_stop_all(&cluster, 20000);
	harness_cleanup();
	printf("cluster-forward: all checks passed\n");
	return 0;
}
