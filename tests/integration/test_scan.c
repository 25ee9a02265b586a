/*
 * Range scans end to end: a 2-core ringkvd (so every scan gathers from
 * shards of both cores) takes 5,000 keys, some binary, some overwritten,
 * some deleted; scans over seeded random ranges and limits are compared
 * with a sorted model, paging with the last key plus a zero byte returns
 * every live key exactly once for many page sizes, answers larger than the
 * frame limit are cut and paged, a scan pipelined behind writes sees them,
 * and `ringkv scan` prints the same pairs.
 *
 * usage: test_scan RINGKVD RINGKV
 */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "harness.h"
#include "tools/libringkv.h"

#define KEYS 5000
#define DEPTH 128
#define BIG_KEYS 60
#define BIG_VALUE (100u << 10)

struct entry {
	char key[16];
	size_t key_len;
	char value[6000];
	size_t value_len;
	bool live;
};

static struct entry model[KEYS];
static struct entry *sorted[KEYS]; /* model in key order */

static int bytes_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = *(const struct entry *const *)a;
	const struct entry *y = *(const struct entry *const *)b;

	return bytes_cmp(x->key, x->key_len, y->key, y->key_len);
}

/* Distinct keys in a scrambled order; every 97th ends in binary bytes. */
static void make_key(struct entry *e, unsigned i)
{
	e->key_len = (size_t)sprintf(e->key, "%c%05u", 'a' + (i * 7) % 26, (i * 7919u) % 100000);
	if (i % 97 == 0) {
		memcpy(e->key + e->key_len, "\0\xff\x01", 3);
		e->key_len += 3;
	}
}

/* Mostly short values, some past the room a GET first gets. */
static void make_value(struct entry *e, unsigned i, unsigned version)
{
	e->value_len = i % 500 == 0 ? 5000 : (i * 31u + version * 7u) % 300;
	for (size_t k = 0; k < e->value_len; k++)
		e->value[k] = (char)((i + version + k) % 251);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Pipelined puts (or deletes, value NULL) of model entries idx[0..n). */
static void write_entries(struct rkv_client *c, const unsigned *idx, unsigned n, bool del)
{
	for (unsigned base = 0; base < n; base += DEPTH) {
		unsigned end = base + DEPTH < n ? base + DEPTH : n;

		for (unsigned i = base; i < end; i++) {
			struct entry *e = &model[idx[i]];
			int rv = del ? rkv_send_del(c, e->key, e->key_len, NULL) :
				       rkv_send_put(c, e->key, e->key_len, e->value,
						    e->value_len, NULL);

			CHECK(rv == 0, "send: %s", rkv_status_name(rv));
		}
		for (unsigned i = base; i < end; i++) {
			struct rkv_result res;

			CHECK(rkv_recv(c, &res) == 0, "recv: %s", rkv_last_error(c));
			CHECK(res.status == RKV_STATUS_OK, "write: %s %s",
			      rkv_status_name(res.status), res.error);
		}
	}
	for (unsigned i = 0; i < n; i++)
		model[idx[i]].live = !del;
}

/* Index in `sorted` of the first key >= key. */
static unsigned lower_bound(const void *key, size_t len)
{
	unsigned lo = 0, hi = KEYS;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (bytes_cmp(sorted[mid]->key, sorted[mid]->key_len, key, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The live model pairs of [start, end), at most `limit`, from sorted[]. */
static unsigned expect(const void *start, size_t start_len, const void *end, size_t end_len,
		       unsigned limit, const struct entry **out)
{
	unsigned n = 0;

	for (unsigned i = lower_bound(start, start_len); i < KEYS && n < limit; i++) {
		const struct entry *e = sorted[i];

		if (end_len && bytes_cmp(e->key, e->key_len, end, end_len) >= 0)
			break;
		if (e->live)
			out[n++] = e;
	}
	return n;
}

static void check_pair(const struct rkv_kv *p, const struct entry *e, const char *what)
{
	CHECK(p->key_len == e->key_len && !memcmp(p->key, e->key, e->key_len),
	      "%s: key %.*s where %.*s was expected", what, (int)p->key_len,
	      (const char *)p->key, (int)e->key_len, e->key);
	CHECK(p->value_len == e->value_len && !memcmp(p->value, e->value, e->value_len),
	      "%s: key %.*s has the wrong value (%zu bytes, want %zu)", what,
	      (int)e->key_len, e->key, p->value_len, e->value_len);
}

/* One request per range: exactly the first min(limit, available) pairs. */
static void check_ranges(struct rkv_client *c)
{
	static const struct entry *want[KEYS];
	static const unsigned limits[] = { 1, 2, 10, 128, 500, 1000, 3000 };

	for (unsigned round = 0; round < 300; round++) {
		const struct entry *a = &model[rng() % KEYS], *b = &model[rng() % KEYS];
		unsigned limit = limits[rng() % (sizeof limits / sizeof limits[0])];
		size_t end_len = round % 5 == 0 ? 0 : b->key_len;
		size_t start_len = round % 7 == 0 ? 0 : a->key_len;
		struct rkv_kv *pairs;
		size_t count;
		unsigned n;
		int rv;

		if (end_len && start_len && bytes_cmp(a->key, a->key_len, b->key, b->key_len) > 0) {
			const struct entry *t = a;
			a = b;
			b = t;
		}
		rv = rkv_scan(c, a->key, start_len, b->key, end_len, limit, &pairs, &count);
		CHECK(rv == RKV_STATUS_OK, "scan: %s", rkv_status_name(rv));
		n = expect(a->key, start_len, b->key, end_len, limit, want);
		CHECK(count == n, "range %u (limit %u): %zu pairs, want %u", round, limit,
		      count, n);
		for (unsigned i = 0; i < n; i++)
			check_pair(&pairs[i], want[i], "range");
		rkv_scan_free(pairs);
	}
	printf("300 random ranges match the model\n");
}

/* Pages through [start, end) `page` pairs at a time; returns the pairs. */
static unsigned page_through(struct rkv_client *c, const void *start, size_t start_len,
			     const void *end, size_t end_len, uint32_t page)
{
	static const struct entry *want[KEYS];
	unsigned n = expect(start, start_len, end, end_len, KEYS, want), got = 0;
	uint8_t cursor[64];
	size_t cursor_len = start_len;
	unsigned requests = 0;

	memcpy(cursor, start, start_len);
	for (;;) {
		struct rkv_kv *pairs;
		size_t count;
		int rv = rkv_scan(c, cursor, cursor_len, end, end_len, page, &pairs, &count);

		CHECK(rv == RKV_STATUS_OK, "scan page: %s", rkv_status_name(rv));
		requests++;
		if (count == 0)
			break;
		CHECK(count <= (page ? page : 1000), "page of %zu pairs, limit %u", count, page);
		for (size_t i = 0; i < count; i++) {
			CHECK(got < n, "more pairs than the model holds (%u)", n);
			check_pair(&pairs[i], want[got++], "paging");
		}
		CHECK(pairs[count - 1].key_len < sizeof cursor, "key too long");
		memcpy(cursor, pairs[count - 1].key, pairs[count - 1].key_len);
		cursor_len = pairs[count - 1].key_len;
		cursor[cursor_len++] = 0;
		rkv_scan_free(pairs);
	}
	CHECK(got == n, "paging returned %u pairs, want %u", got, n);
	CHECK(requests == (page ? (n + page - 1) / page : (n + 999) / 1000) + 1,
	      "paging by %u took %u requests for %u pairs", page, requests, n);
	return got;
}

/* Appends the CLI's rendering of bytes: \xNN for anything unsafe. */
static size_t escape(char *out, const char *p, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			out[n++] = (char)ch;
		else
			n += (size_t)sprintf(out + n, "\\x%02x", ch);
	}
	return n;
}

static void check_cli(const char *cli, const char *addr)
{
	static char out[8u << 20], want[8u << 20];
	static const struct entry *pairs[KEYS];
	const char *args[] = { "-a", addr, "scan", "b", "m", "--limit", "1500", NULL };
	const char *all[] = { "-a", addr, "scan", "", "", NULL };
	unsigned n = expect("b", 1, "m", 1, 1500, pairs);
	size_t len = 0;
	int rc;

	for (unsigned i = 0; i < n; i++) {
		len += escape(want + len, pairs[i]->key, pairs[i]->key_len);
		want[len++] = '\t';
		len += escape(want + len, pairs[i]->value, pairs[i]->value_len);
		want[len++] = '\n';
	}
	want[len] = '\0';
	rc = run_capture(cli, args, out, sizeof out);
	CHECK(rc == 0, "ringkv scan exited %d: %.200s", rc, out);
	CHECK(n > 1000 && strcmp(out, want) == 0,
	      "ringkv scan b m --limit 1500: output differs (%zu bytes, want %zu)",
	      strlen(out), len);

	n = expect("", 0, "", 0, KEYS, pairs);
	len = 0;
	for (unsigned i = 0; i < n; i++) {
		len += escape(want + len, pairs[i]->key, pairs[i]->key_len);
		want[len++] = '\t';
		len += escape(want + len, pairs[i]->value, pairs[i]->value_len);
		want[len++] = '\n';
	}
	want[len] = '\0';
	rc = run_capture(cli, all, out, sizeof out);
	CHECK(rc == 0 && strcmp(out, want) == 0,
	      "ringkv scan '' '': exit %d, output differs (%zu bytes, want %zu)", rc,
	      strlen(out), len);
	printf("ringkv scan prints %u pairs as expected\n", n);
}

/* Values larger than one frame can hold in all: answers are cut, paged. */
static void check_big_values(struct rkv_client *c)
{
	static char value[BIG_VALUE];
	unsigned total = 0, requests = 0;
	char cursor[32] = "big/";
	size_t cursor_len = 4;

	for (unsigned i = 0; i < BIG_KEYS; i++) {
		char key[16];
		size_t kl = (size_t)sprintf(key, "big/%03u", i);

		memset(value, 'A' + i % 26, sizeof value);
		CHECK(rkv_put(c, key, kl, value, sizeof value) == 0, "put big");
	}
	for (;;) {
		struct rkv_kv *pairs;
		size_t count;
		int rv = rkv_scan(c, cursor, cursor_len, "big0", 4, BIG_KEYS, &pairs, &count);

		CHECK(rv == RKV_STATUS_OK, "scan big: %s", rkv_status_name(rv));
		requests++;
		if (count == 0)
			break;
		CHECK(count < BIG_KEYS, "a %zu-pair answer of 100 KiB values fits 4 MiB", count);
		for (size_t i = 0; i < count; i++) {
			char key[16];
			size_t kl = (size_t)sprintf(key, "big/%03u", total);
			const char *v = pairs[i].value;

			CHECK(pairs[i].key_len == kl && !memcmp(pairs[i].key, key, kl),
			      "big key %u out of order", total);
			CHECK(pairs[i].value_len == BIG_VALUE && v[0] == (char)('A' + total % 26) &&
			      v[BIG_VALUE - 1] == (char)('A' + total % 26), "big value %u", total);
			total++;
		}
		memcpy(cursor, pairs[count - 1].key, pairs[count - 1].key_len);
		cursor_len = pairs[count - 1].key_len;
		cursor[cursor_len++] = 0;
		rkv_scan_free(pairs);
	}
	CHECK(total == BIG_KEYS, "paged %u big pairs of %u", total, BIG_KEYS);
	printf("%u pairs of 100 KiB paged in %u answers\n", total, requests);
	for (unsigned i = 0; i < BIG_KEYS; i++) {
		char key[16];
		size_t kl = (size_t)sprintf(key, "big/%03u", i);

		CHECK(rkv_del(c, key, kl) == 0, "del big");
	}
}

/* A scan pipelined behind writes of the same connection sees them all. */
static void check_read_your_writes(struct rkv_client *c)
{
	uint64_t scan_id;
	struct rkv_result res;
	unsigned writes = 200;

	for (unsigned i = 0; i < writes; i++) {
		char key[16];
		size_t kl = (size_t)sprintf(key, "pipe/%04u", i);

		CHECK(rkv_send_put(c, key, kl, "v", 1, NULL) == 0, "send put");
	}
	CHECK(rkv_send_scan(c, "pipe/", 5, "pipe0", 5, 1000, &scan_id) == 0, "send scan");
	for (unsigned i = 0; i <= writes; i++) {
		CHECK(rkv_recv(c, &res) == 0, "recv");
		CHECK(res.status == RKV_STATUS_OK, "status %s", rkv_status_name(res.status));
		if (res.id == scan_id)
			CHECK(res.pair_count == writes, "scan behind %u writes saw %zu", writes,
			      res.pair_count);
	}
	for (unsigned i = 0; i < writes; i++) {
		char key[16];
		size_t kl = (size_t)sprintf(key, "pipe/%04u", i);

		CHECK(rkv_send_del(c, key, kl, NULL) == 0, "send del");
	}
	for (unsigned i = 0; i < writes; i++)
		CHECK(rkv_recv(c, &res) == 0 && res.status == RKV_STATUS_OK, "del");
	printf("a scan pipelined behind %u writes sees them\n", writes);
}

int main(int argc, char **argv)
{
	static unsigned idx[2 * KEYS];
	struct server srv = { 0 };
	struct rkv_client *c;
	struct rkv_kv *pairs;
	size_t count;
	unsigned n = 0, live = 0;
	const char *dir;
	char err[256];
	int status;

	CHECK(argc == 3, "usage: %s RINGKVD RINGKV", argv[0]);
	dir = harness_tmpdir();
	CHECK(dir, "mkdtemp");
	const char *args[] = { "--data-dir", dir, "--cores", "2", NULL };

	CHECK(server_start(&srv, argv[1], args) == 0, "ringkvd did not start");
	printf("ringkvd on %s\n", srv.addr);
	CHECK(rkv_connect(srv.addr, &c, err, sizeof err) == 0, "connect: %s", err);

	/* Empty store: every scan is empty. */
	CHECK(rkv_scan(c, NULL, 0, NULL, 0, 0, &pairs, &count) == 0 && count == 0,
	      "scan of an empty store");

	for (unsigned i = 0; i < KEYS; i++) {
		make_key(&model[i], i);
		make_value(&model[i], i, 1);
		sorted[i] = &model[i];
		idx[i] = i;
	}
	qsort(sorted, KEYS, sizeof sorted[0], entry_cmp);
	for (unsigned i = 1; i < KEYS; i++)
		CHECK(entry_cmp(&sorted[i - 1], &sorted[i]) < 0, "model keys must be distinct");
	write_entries(c, idx, KEYS, false);
	/* Overwrite every 11th key, delete every 13th. */
	for (unsigned i = 0; i < KEYS; i += 11) {
		make_value(&model[i], i, 2);
		idx[n++] = i;
	}
	write_entries(c, idx, n, false);
	n = 0;
	for (unsigned i = 3; i < KEYS; i += 13)
		idx[n++] = i;
	write_entries(c, idx, n, true);
	for (unsigned i = 0; i < KEYS; i++)
		live += model[i].live;
	printf("%u keys written, %u deleted, %u live\n", KEYS, n, live);

	check_ranges(c);
	{
		static const uint32_t pages[] = { 0, 7, 100, 999, 1000, 4999, 10000 };

		for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
			struct timespec t0, t1;

			clock_gettime(CLOCK_MONOTONIC, &t0);
			CHECK(page_through(c, "", 0, "", 0, pages[i]) == live, "paging");
			clock_gettime(CLOCK_MONOTONIC, &t1);
			printf("paged by %u in %ld ms\n", (unsigned)pages[i],
			       (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
		}
		/* One pair at a time costs a round trip per key: a range only. */
		CHECK(page_through(c, "c", 1, "e", 1, 1) > 0, "paging a range by 1");
		CHECK(page_through(c, "c", 1, "f", 1, 3) > 0, "paging a range by 3");
		printf("paging returns every live key exactly once\n");
	}
	/* Empty and inverted ranges. */
	CHECK(rkv_scan(c, "m", 1, "m", 1, 0, &pairs, &count) == 0 && count == 0, "[m, m)");
	CHECK(rkv_scan(c, "n", 1, "m", 1, 0, &pairs, &count) == 0 && count == 0, "[n, m)");
	CHECK(rkv_scan(c, "\xff", 1, NULL, 0, 0, &pairs, &count) == 0 && count == 0,
	      "past the last key");

	check_big_values(c);
	check_read_your_writes(c);
	check_cli(argv[2], srv.addr);

	/* A client that leaves with a scan in flight: the server finishes it,
	 * drops the answer and goes on serving. */
	{
		struct rkv_client *gone;

		CHECK(rkv_connect(srv.addr, &gone, err, sizeof err) == 0, "connect: %s", err);
		for (unsigned i = 0; i < 8; i++)
			CHECK(rkv_send_scan(gone, NULL, 0, NULL, 0, 10000, NULL) == 0, "send");
		CHECK(rkv_flush(gone) == 0, "flush");
		rkv_close(gone);
		CHECK(page_through(c, "", 0, "", 0, 1000) == live, "scan after a client left");
	}

	rkv_close(c);
	status = server_stop(&srv, SIGTERM, 10000);
	CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "SIGTERM should exit 0 (status %d)", status);

	/* More shards than cores: 7 shards on 2 cores, same data, same checks. */
	{
		const char *dir7 = harness_tmpdir();
		const char *args7[] = { "--data-dir", dir7, "--cores", "2", "--shards", "7",
					NULL };
		unsigned dead = 0;

		CHECK(dir7, "mkdtemp");
		CHECK(server_start(&srv, argv[1], args7) == 0, "ringkvd (7 shards) did not start");
		CHECK(rkv_connect(srv.addr, &c, err, sizeof err) == 0, "connect: %s", err);
		for (unsigned i = 0; i < KEYS; i++)
			if (!model[i].live)
				idx[dead++] = i;
		for (unsigned i = 0; i < KEYS; i++)
			idx[dead + i] = i;
		write_entries(c, idx + dead, KEYS, false);
		write_entries(c, idx, dead, true);
		check_ranges(c);
		CHECK(page_through(c, "", 0, "", 0, 7) == live, "paging over 7 shards");
		CHECK(page_through(c, "", 0, "", 0, 0) == live, "paging over 7 shards");
		printf("7 shards on 2 cores: ranges and paging match\n");
		rkv_close(c);
		status = server_stop(&srv, SIGTERM, 10000);
		CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "SIGTERM should exit 0 (status %d)", status);
	}
	harness_cleanup();
	printf("1 passed, 0 failed\n");
	return 0;
}
