/*
 * Durability across kill -9, end to end: a 2-core ringkvd takes 20,000 keys
 * (plus overwrites and deletes) over several pipelined connections, so most
 * requests cross cores; more writes are in flight when the process is killed
 * with SIGKILL; after a restart every acknowledged write reads back exactly,
 * deleted keys stay deleted, and a write that was never acknowledged is either
 * absent or fully there. Also: the data directory lock, and SIGTERM exiting 0.
 *
 * usage: test_durability RINGKVD
 */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "tools/libringkv.h"

#define KEYS 20000
#define EXTRA 20000
#define CONNS 8
#define DEPTH 64

enum key_state { K_ABSENT, K_VALUE, K_DELETED, K_UNKNOWN };

struct model {
	enum key_state state;
	uint32_t version;    /* value generation acknowledged */
	uint32_t pending;    /* generation in flight when killed (K_UNKNOWN) */
};

static struct model model[KEYS + EXTRA];

static size_t make_key(char *buf, unsigned i)
{
	return (size_t)sprintf(buf, "key-%06u", i);
}

/* Deterministic value of key i at generation v: 1..400 bytes. */
static size_t make_value(char *buf, unsigned i, uint32_t v)
{
	size_t len = 1 + (i * 7919u + v * 104729u) % 400;

	for (size_t k = 0; k < len; k++)
		buf[k] = (char)('a' + (i + v + k) % 26);
	return len;
}

struct op {
	unsigned key;
	uint32_t version;    /* 0 = delete */
	uint64_t id;
};

/* Sends ops[0..n) pipelined over the clients, DEPTH at a time per client,
 * and records acknowledgements in the model. With kill_after > 0 the server
 * is SIGKILLed once that many acks came back, with requests still in flight. */
static unsigned run_ops(struct rkv_client **c, struct op *ops, unsigned n,
			struct server *srv, unsigned kill_after)
{
	unsigned next = 0, acked = 0;
	char key[32], value[512];

	while (next < n) {
		struct op *batch[CONNS][DEPTH];
		unsigned count[CONNS] = { 0 };

		for (unsigned k = 0; k < CONNS && next < n; k++) {
			for (unsigned d = 0; d < DEPTH && next < n; d++, next++) {
				struct op *o = &ops[next];
				size_t kl = make_key(key, o->key);
				int rv;

				if (o->version) {
					size_t vl = make_value(value, o->key, o->version);
					rv = rkv_send_put(c[k], key, kl, value, vl, &o->id);
				} else {
					rv = rkv_send_del(c[k], key, kl, &o->id);
				}
				CHECK(rv == 0, "send: %s", rkv_status_name(rv));
				model[o->key].state = K_UNKNOWN;
				model[o->key].pending = o->version;
				batch[k][count[k]++] = o;
			}
			CHECK(rkv_flush(c[k]) == 0, "flush");
		}
		if (kill_after && acked >= kill_after) {
			/* Requests are in flight on every connection right now. */
			CHECK(server_stop(srv, SIGKILL, 5000) != -1, "kill -9");
			return acked;
		}
		for (unsigned k = 0; k < CONNS; k++) {
			for (unsigned d = 0; d < count[k]; d++) {
				struct rkv_result res;
				struct op *o = NULL;
				int rv = rkv_recv(c[k], &res);

				CHECK(rv == 0, "recv: %s", rkv_status_name(rv));
				for (unsigned j = 0; j < count[k]; j++)
					if (batch[k][j] && batch[k][j]->id == res.id) {
						o = batch[k][j];
						batch[k][j] = NULL;
					}
				CHECK(o, "answer with unknown id %llu", (unsigned long long)res.id);
				CHECK(res.status == RKV_STATUS_OK, "write of key %u: %s %s",
				      o->key, rkv_status_name(res.status), res.error);
				model[o->key].state = o->version ? K_VALUE : K_DELETED;
				model[o->key].version = o->version;
				acked++;
			}
		}
	}
	return acked;
}

/* Reads every key back (pipelined) and compares with the model. */
static void verify(struct rkv_client **c, unsigned nkeys)
{
	char key[32], value[512];
	unsigned checked = 0, unknown_present = 0;

	for (unsigned base = 0; base < nkeys; base += CONNS * DEPTH) {
		uint64_t ids[CONNS][DEPTH];
		unsigned keys[CONNS][DEPTH], count[CONNS] = { 0 };
		unsigned i = base;

		for (unsigned k = 0; k < CONNS; k++) {
			for (unsigned d = 0; d < DEPTH && i < nkeys; d++, i++) {
				size_t kl = make_key(key, i);
				CHECK(rkv_send_get(c[k], key, kl, &ids[k][d]) == 0, "send get");
				keys[k][d] = i;
				count[k]++;
			}
			CHECK(rkv_flush(c[k]) == 0, "flush");
		}
		for (unsigned k = 0; k < CONNS; k++) {
			for (unsigned d = 0; d < count[k]; d++) {
				struct rkv_result res;
				unsigned key_i = UINT32_MAX;
				struct model *m;

				CHECK(rkv_recv(c[k], &res) == 0, "recv get");
				for (unsigned j = 0; j < count[k]; j++)
					if (ids[k][j] == res.id)
						key_i = keys[k][j];
				CHECK(key_i != UINT32_MAX, "unknown id");
				m = &model[key_i];
				switch (m->state) {
				case K_ABSENT:
				case K_DELETED:
					CHECK(res.status == RKV_STATUS_NOT_FOUND,
					      "key %u should be absent, got %s", key_i,
					      rkv_status_name(res.status));
					break;
				case K_VALUE: {
					size_t vl = make_value(value, key_i, m->version);
					CHECK(res.status == RKV_STATUS_OK,
					      "acknowledged key %u lost: %s", key_i,
					      rkv_status_name(res.status));
					CHECK(res.value_len == vl && !memcmp(res.value, value, vl),
					      "key %u has the wrong value (%zu bytes, want %zu)",
					      key_i, res.value_len, vl);
					break;
				}
				case K_UNKNOWN: {
					/* In flight at the kill: old state or new, nothing else. */
					size_t vl = m->pending ? make_value(value, key_i, m->pending) : 0;
					bool is_new = m->pending ?
						(res.status == RKV_STATUS_OK && res.value_len == vl &&
						 !memcmp(res.value, value, vl)) :
						res.status == RKV_STATUS_NOT_FOUND;
					bool is_old;
					if (m->version) {
						vl = make_value(value, key_i, m->version);
						is_old = res.status == RKV_STATUS_OK &&
							 res.value_len == vl &&
							 !memcmp(res.value, value, vl);
					} else {
						is_old = res.status == RKV_STATUS_NOT_FOUND;
					}
					CHECK(is_new || is_old, "unacknowledged key %u is torn", key_i);
					unknown_present += is_new;
					break;
				}
				}
				checked++;
			}
		}
	}
	printf("verified %u keys (%u unacknowledged writes survived)\n", checked,
	       unknown_present);
}

int main(int argc, char **argv)
{
	static struct op ops[KEYS + KEYS / 2];
	static struct op extra[EXTRA];
	struct rkv_client *c[CONNS];
	struct server srv = { 0 };
	const char *dir;
	unsigned n = 0, acked;
	char buf[2048];
	int status;

	CHECK(argc == 2, "usage: %s RINGKVD", argv[0]);
	dir = harness_tmpdir();
	CHECK(dir, "mkdtemp");
	const char *args[] = { "--data-dir", dir, "--cores", "2", NULL };

	CHECK(server_start(&srv, argv[1], args) == 0, "ringkvd did not start");
	printf("ringkvd on %s\n", srv.addr);

	/* A second process must refuse the same data directory. */
	{
		const char *args2[] = { "--listen", "127.0.0.1:0", "--data-dir", dir,
					"--cores", "1", NULL };
		int rc = run_capture(argv[1], args2, buf, sizeof buf);
		CHECK(rc == 1 && strstr(buf, "in use"), "second ringkvd on one data dir: "
		      "exit %d, output: %s", rc, buf);
	}

	/* 20,000 puts, then overwrites of every 7th key and deletes of every 10th. */
	for (unsigned i = 0; i < KEYS; i++)
		ops[n++] = (struct op){ .key = i, .version = 1 };
	for (unsigned i = 0; i < KEYS; i += 7)
		ops[n++] = (struct op){ .key = i, .version = 2 };
	for (unsigned i = 5; i < KEYS; i += 10)
		ops[n++] = (struct op){ .key = i, .version = 0 };
	harness_connect_all(c, CONNS, srv.addr);
	acked = run_ops(c, ops, n, &srv, 0);
	CHECK(acked == n, "acked %u of %u", acked, n);
	printf("%u writes acknowledged\n", acked);
	verify(c, KEYS);

	/* More writes, killed mid-flight. */
	for (unsigned i = 0; i < EXTRA; i++)
		extra[i] = (struct op){ .key = KEYS + i, .version = 1 + i % 3 };
	acked = run_ops(c, extra, EXTRA, &srv, EXTRA / 3);
	harness_close_all(c, CONNS);
	printf("killed with SIGKILL after %u more acknowledged writes\n", acked);

	CHECK(server_start(&srv, argv[1], args) == 0, "ringkvd did not restart");
	harness_connect_all(c, CONNS, srv.addr);
	verify(c, KEYS + EXTRA);
	harness_close_all(c, CONNS);

	status = server_stop(&srv, SIGTERM, 10000);
	CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "SIGTERM should exit 0 (status %d)", status);

	/* Clean stop, restart: still everything. */
	CHECK(server_start(&srv, argv[1], args) == 0, "ringkvd did not restart");
	harness_connect_all(c, CONNS, srv.addr);
	verify(c, KEYS + EXTRA);
	harness_close_all(c, CONNS);
	status = server_stop(&srv, SIGINT, 10000);
	CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "SIGINT should exit 0 (status %d)", status);

	harness_cleanup();
	printf("1 passed, 0 failed\n");
	return 0;
}
