/*
 * Crash safety of the storage engine under flushes and compactions: a
 * 2-core ringkvd with a 1 MiB memtable per shard (so that, with the LSM,
 * memtables flush to SSTables and compact all the time) takes a seeded
 * random workload of puts, overwrites and deletes over several pipelined
 * connections, and is killed with SIGKILL at a random moment of each round
 * while writes are in flight. After every restart each key reads back as
 * its model says (a write whose answer never came may have happened or
 * not, nothing else), and a full paged scan matches the model exactly.
 *
 * Until the memtable flushes, a full memtable refuses writes with
 * RESOURCE_EXHAUSTED; a refused write leaves the model unchanged, so the
 * test holds before and after the LSM.
 *
 * usage: test_lsm_crash RINGKVD [SEED]
 */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "harness.h"
#include "tools/libringkv.h"

#define KEYS 4000
#define CONNS 4
#define DEPTH 32
#define ROUNDS 5
#define MAX_LOAD_MS 2500

enum key_state { K_ABSENT, K_VALUE, K_UNKNOWN };

struct key_model {
	enum key_state state; /* acknowledged state (K_UNKNOWN: write unanswered) */
	uint32_t version;     /* acknowledged value generation, 0 = absent */
	uint32_t pending;     /* generation in flight (0 = delete) while K_UNKNOWN */
	bool busy;            /* a write of it is in flight */
};

static struct key_model model[KEYS];
static uint32_t next_version[KEYS];

struct stats {
	unsigned acked, refused, unknown;
};

static uint64_t rng_state;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static size_t make_key(char *buf, unsigned i)
{
	return (size_t)sprintf(buf, "crash/%05u", i);
}

/* Value of key i at generation v: 20..600 bytes, distinct per generation. */
static size_t make_value(char *buf, unsigned i, uint32_t v)
{
	size_t len = 20 + (i * 7919u + v * 104729u) % 580;
	int head = sprintf(buf, "%u:%u:", i, v);

	for (size_t k = (size_t)head; k < len; k++)
		buf[k] = (char)('a' + (i + v + k) % 26);
	return len;
}

struct op {
	unsigned key;
	uint32_t version; /* 0 = delete */
	uint64_t id;
};

/* A key with no write in flight, at random. */
static unsigned pick_key(void)
{
	unsigned k = (unsigned)(rng() % KEYS);

	while (model[k].busy)
		k = (k + 1) % KEYS;
	return k;
}

/*
 * Pipelined random writes over the connections until `load_ms` passes,
 * then SIGKILL with the last batch in flight (sent, answers unread).
 */
static void load_and_kill(struct rkv_client **c, struct server *srv, long load_ms,
			  struct stats *st)
{
	static struct op batch[CONNS][DEPTH];
	long deadline = now_ms() + load_ms;
	char key[32], value[640];

	for (;;) {
		for (unsigned k = 0; k < CONNS; k++) {
			for (unsigned d = 0; d < DEPTH; d++) {
				struct op *o = &batch[k][d];
				unsigned r = (unsigned)(rng() % 100);
				size_t kl;
				int rv;

				o->key = pick_key();
				/* 15% deletes; the rest new generations (puts of
				 * absent keys and overwrites). */
				o->version = r < 15 ? 0 : ++next_version[o->key];
				kl = make_key(key, o->key);
				if (o->version) {
					size_t vl = make_value(value, o->key, o->version);
					rv = rkv_send_put(c[k], key, kl, value, vl, &o->id);
				} else {
					rv = rkv_send_del(c[k], key, kl, &o->id);
				}
				CHECK(rv == 0, "send: %s", rkv_status_name(rv));
				model[o->key].busy = true;
				model[o->key].pending = o->version;
			}
			CHECK(rkv_flush(c[k]) == 0, "flush: %s", rkv_last_error(c[k]));
		}
		if (now_ms() >= deadline) {
			/* Every connection has a batch in flight right now. */
			CHECK(server_stop(srv, SIGKILL, 5000) != -1, "kill -9");
			for (unsigned k = 0; k < CONNS; k++)
				for (unsigned d = 0; d < DEPTH; d++) {
					struct key_model *m = &model[batch[k][d].key];

					m->busy = false;
					m->state = K_UNKNOWN;
					st->unknown++;
				}
			return;
		}
		for (unsigned k = 0; k < CONNS; k++) {
			for (unsigned d = 0; d < DEPTH; d++) {
				struct rkv_result res;
				struct op *o = NULL;
				struct key_model *m;
				int rv = rkv_recv(c[k], &res);

				CHECK(rv == 0, "recv: %s", rkv_status_name(rv));
				for (unsigned j = 0; j < DEPTH && !o; j++)
					if (batch[k][j].id == res.id)
						o = &batch[k][j];
				CHECK(o, "answer with unknown id %llu", (unsigned long long)res.id);
				m = &model[o->key];
				m->busy = false;
				if (res.status == RKV_STATUS_RESOURCE_EXHAUSTED) {
					st->refused++; /* not stored: the model stays */
					continue;
				}
				CHECK(res.status == RKV_STATUS_OK, "write of key %u: %s %s", o->key,
				      rkv_status_name(res.status), res.error);
				m->state = o->version ? K_VALUE : K_ABSENT;
				m->version = o->version;
				st->acked++;
			}
		}
	}
}

static bool is_value(const struct rkv_result *res, unsigned key, uint32_t version)
{
	char value[640];
	size_t vl;

	if (version == 0)
		return res->status == RKV_STATUS_NOT_FOUND;
	vl = make_value(value, key, version);
	return res->status == RKV_STATUS_OK && res->value_len == vl &&
	       memcmp(res->value, value, vl) == 0;
}

/*
 * GETs every key (pipelined) and checks it against the model; a write whose
 * answer never came must have happened entirely or not at all, and the
 * model then takes what survived.
 */
static void verify_gets(struct rkv_client *c, unsigned *survived)
{
	char key[32];

	for (unsigned base = 0; base < KEYS; base += 256) {
		unsigned end = base + 256 < KEYS ? base + 256 : KEYS;
		uint64_t first_id = 0;

		for (unsigned i = base; i < end; i++) {
			uint64_t id;

			CHECK(rkv_send_get(c, key, make_key(key, i), &id) == 0, "send get");
			if (i == base)
				first_id = id;
		}
		for (unsigned n = base; n < end; n++) {
			struct rkv_result res;
			struct key_model *m;
			unsigned i;

			CHECK(rkv_recv(c, &res) == 0, "recv get: %s", rkv_last_error(c));
			i = base + (unsigned)(res.id - first_id);
			CHECK(i < end, "answer with unknown id");
			m = &model[i];
			CHECK(res.status == RKV_STATUS_OK || res.status == RKV_STATUS_NOT_FOUND,
			      "GET key %u: %s %s", i, rkv_status_name(res.status), res.error);
			if (m->state != K_UNKNOWN) {
				CHECK(is_value(&res, i, m->version),
				      "key %u: want %s generation %u, got %s (%zu bytes)", i,
				      m->version ? "value" : "absent", m->version,
				      rkv_status_name(res.status), res.value_len);
				continue;
			}
			/* (A delete of an absent key matches both ways.) */
			if (m->pending != m->version && is_value(&res, i, m->pending)) {
				m->version = m->pending;
				*survived += 1;
			} else {
				CHECK(is_value(&res, i, m->version),
				      "unacknowledged write of key %u is torn: %s (%zu bytes)", i,
				      rkv_status_name(res.status), res.value_len);
			}
			m->state = m->version ? K_VALUE : K_ABSENT;
		}
	}
}

/* Pages through every key and compares with the (now exact) model. */
static void verify_scan(struct rkv_client *c)
{
	uint8_t cursor[64];
	size_t cursor_len = 0;
	unsigned next = 0, seen = 0;

	for (;;) {
		struct rkv_kv *pairs;
		size_t count;
		int rv = rkv_scan(c, cursor, cursor_len, NULL, 0, 700, &pairs, &count);

		CHECK(rv == RKV_STATUS_OK, "scan: %s", rkv_status_name(rv));
		if (count == 0)
			break;
		for (size_t p = 0; p < count; p++) {
			char key[32], value[640];
			size_t kl, vl;

			while (next < KEYS && model[next].version == 0)
				next++;
			CHECK(next < KEYS, "scan returned more keys than the model has");
			kl = make_key(key, next);
			vl = make_value(value, next, model[next].version);
			CHECK(pairs[p].key_len == kl && !memcmp(pairs[p].key, key, kl),
			      "scan: got key %.*s, want %s", (int)pairs[p].key_len,
			      (const char *)pairs[p].key, key);
			CHECK(pairs[p].value_len == vl && !memcmp(pairs[p].value, value, vl),
			      "scan: key %s has the wrong value", key);
			next++;
			seen++;
		}
		memcpy(cursor, pairs[count - 1].key, pairs[count - 1].key_len);
		cursor_len = pairs[count - 1].key_len;
		cursor[cursor_len++] = 0;
		rkv_scan_free(pairs);
	}
	while (next < KEYS && model[next].version == 0)
		next++;
	CHECK(next == KEYS, "scan missed key %u", next);
	printf("  scan: %u live keys match\n", seen);
}

int main(int argc, char **argv)
{
	struct rkv_client *c[CONNS];
	struct server srv = { 0 };
	struct stats total = { 0 };
	const char *dir;
	uint64_t seed;
	int status;

	CHECK(argc == 2 || argc == 3, "usage: %s RINGKVD [SEED]", argv[0]);
	seed = argc == 3 ? strtoull(argv[2], NULL, 0) : 0x5eed1234abcdull;
	rng_state = seed ? seed : 1;
	printf("seed %llu\n", (unsigned long long)seed);
	dir = harness_tmpdir();
	CHECK(dir, "mkdtemp");
	/* A tiny --manifest-rewrite-min: manifest rewrites run all along, so
	 * kills land in them too. */
	const char *args[] = { "--data-dir", dir, "--cores", "2", "--memtable-size", "1MiB",
			       "--manifest-rewrite-min", "1KiB", NULL };

	for (unsigned round = 0; round < ROUNDS; round++) {
		struct stats st = { 0 };
		unsigned survived = 0;
		long load_ms = 200 + (long)(rng() % (MAX_LOAD_MS - 200));

		CHECK(server_start(&srv, argv[1], args) == 0, "ringkvd did not (re)start");
		harness_connect_all(c, CONNS, srv.addr);
		verify_gets(c[0], &survived);
		verify_scan(c[1]);
		printf("round %u: after restart all keys match (%u unacknowledged writes "
		       "survived); loading for %ld ms\n", round, survived, load_ms);
		load_and_kill(c, &srv, load_ms, &st);
		harness_close_all(c, CONNS);
		printf("  killed: %u acknowledged, %u refused (RESOURCE_EXHAUSTED), "
		       "%u in flight\n", st.acked, st.refused, st.unknown);
		total.acked += st.acked;
		total.refused += st.refused;
		total.unknown += st.unknown;
	}
	{
		unsigned survived = 0;

		CHECK(server_start(&srv, argv[1], args) == 0, "ringkvd did not restart");
		harness_connect_all(c, CONNS, srv.addr);
		verify_gets(c[0], &survived);
		verify_scan(c[1]);
		harness_close_all(c, CONNS);
		printf("final restart: all keys match (%u unacknowledged writes survived)\n",
		       survived);
	}
	status = server_stop(&srv, SIGTERM, 10000);
	CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "SIGTERM should exit 0 (status %d)", status);
	printf("total: %u acknowledged, %u refused, %u in flight at kills\n", total.acked,
	       total.refused, total.unknown);
	harness_cleanup();
	printf("1 passed, 0 failed\n");
	return 0;
}
