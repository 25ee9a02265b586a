/*
 * Tests for cluster/hosting.c: the hosting record's round trip, its
 * refusals of damaged or inconsistent files (untrusted disk bytes), and how
 * it overrides the map's founding placement.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster/hosting.h"
#include "core/errors.h"
#include "shard/crc32c.h"

static struct cluster_hosting h, back;
static char text[CLUSTER_HOSTING_TEXT_MAX];

static void build_map(struct cluster_map *m, unsigned n, uint32_t s, uint32_t r)
{
	struct cluster_map_node nodes[CLUSTER_MAP_MAX_NODES];
	char err[128];

	memset(nodes, 0, sizeof nodes);
	for (unsigned i = 0; i < n; i++) {
		nodes[i].id = i + 1;
		snprintf(nodes[i].host, sizeof nodes[i].host, "127.0.16.%u", 11 + i);
		nodes[i].port = 36100;
	}
	assert_int_equal(cluster_map_init(m, nodes, n, s, r, "", err, sizeof err), 0);
}

/* Appends the checksum line a writer would add. */
static size_t sealed(char *buf, size_t cap, const char *body)
{
	size_t len = strlen(body);

	snprintf(buf, cap, "%scrc %08x\n", body, crc32c(0, body, len));
	return strlen(buf);
}

static void test_round_trip(void **state)
{
	char err[256];
	size_t len;

	(void)state;
	memset(&h, 0, sizeof h);
	assert_int_equal(cluster_hosting_set(&h, 7, 1), 0);
	assert_int_equal(cluster_hosting_set(&h, 2, CLUSTER_HOSTING_DROP), 0);
	assert_int_equal(cluster_hosting_set(&h, 5, 0), 0);
	assert_int_equal(cluster_hosting_set(&h, 7, 3), 0); /* replaces */
	assert_int_equal(h.n, 3);
	len = cluster_hosting_encode(&h, text, sizeof text);
	assert_true(len > 0);
	assert_memory_equal(text + len - 29, "add 5 0\nadd 7 3\ncrc ", 20);
	assert_int_equal(cluster_hosting_decode(&back, text, len, 8, 4, err, sizeof err), 0);
	assert_int_equal(back.n, 3);
	assert_memory_equal(back.e, h.e, 3 * sizeof h.e[0]);
	cluster_hosting_clear(&back, 5);
	assert_null(cluster_hosting_find(&back, 5));
	assert_int_equal(cluster_hosting_find(&back, 7)->core, 3);
	assert_int_equal(cluster_hosting_find(&back, 2)->core, CLUSTER_HOSTING_DROP);
	/* An empty record is valid too. */
	memset(&h, 0, sizeof h);
	len = cluster_hosting_encode(&h, text, sizeof text);
	assert_int_equal(cluster_hosting_decode(&back, text, len, 8, 4, err, sizeof err), 0);
	assert_int_equal(back.n, 0);
	/* Too small a buffer: 0, never a cut record. */
	assert_int_equal(cluster_hosting_encode(&h, text, 10), 0);
}

static void refused(const char *body, bool seal, uint32_t shards, unsigned cores,
		    const char *why)
{
	char buf[512], err[256];
	size_t len;

	if (seal) {
		len = sealed(buf, sizeof buf, body);
	} else {
		snprintf(buf, sizeof buf, "%s", body);
		len = strlen(buf);
	}
	assert_int_equal(cluster_hosting_decode(&back, buf, len, shards, cores, err, sizeof err),
			 RKV_ECORRUPT);
	if (!strstr(err, why))
		fail_msg("'%s' refused with '%s', expected '%s'", body, err, why);
}

static void test_refusals(void **state)
{
	char buf[512], err[256];
	size_t len;

	(void)state;
	refused("", false, 8, 4, "not a hosting record");
	refused("ringkv-hosting 2\n", true, 8, 4, "not a hosting record");
	refused("ringkv-hosting 1\nadd 1 0\n", false, 8, 4, "no checksum");
	refused("ringkv-hosting 1\nmove 1 0\n", true, 8, 4, "expected add, drop or crc");
	refused("ringkv-hosting 1\nadd 1\n", true, 8, 4, "malformed");
	refused("ringkv-hosting 1\nadd 1 0 \n", true, 8, 4, "malformed");
	refused("ringkv-hosting 1\nadd -1 0\n", true, 8, 4, "malformed");
	refused("ringkv-hosting 1\nadd 1234567890 0\n", true, 8, 4, "malformed");
	refused("ringkv-hosting 1\nadd 8 0\n", true, 8, 4, "shard 8, the cluster has 8");
	refused("ringkv-hosting 1\nadd 1 4\n", true, 8, 4, "this node has 4 cores");
	refused("ringkv-hosting 1\nadd 1 0\ndrop 1\n", true, 8, 4, "shard 1 twice");
	refused("ringkv-hosting 1\ncrc 0000000g\n", false, 8, 4, "bad checksum line");
	/* One flipped byte: the checksum says so. */
	len = sealed(buf, sizeof buf, "ringkv-hosting 1\nadd 3 1\n");
	buf[len - 15] = '2'; /* add 3 1 -> add 3 2 */
	assert_int_equal(cluster_hosting_decode(&back, buf, len, 8, 4, err, sizeof err),
			 RKV_ECORRUPT);
	assert_non_null(strstr(err, "checksum mismatch"));
	/* Bytes after the checksum line (a torn rewrite appended to). */
	len = sealed(buf, sizeof buf, "ringkv-hosting 1\n");
	memcpy(buf + len, "add 1 0\n", 9);
	assert_int_equal(cluster_hosting_decode(&back, buf, len + 8, 8, 4, err, sizeof err),
			 RKV_ECORRUPT);
	/* Every prefix of a valid record is refused (a torn write), never
	 * read as a shorter valid one. */
	len = sealed(buf, sizeof buf, "ringkv-hosting 1\nadd 3 1\ndrop 5\n");
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(cluster_hosting_decode(&back, buf, cut, 8, 4, err, sizeof err),
				 RKV_ECORRUPT);
	assert_int_equal(cluster_hosting_decode(&back, buf, len, 8, 4, err, sizeof err), 0);
}

static void test_overrides_map(void **state)
{
	struct cluster_map m;
	unsigned holding[4] = { 0 };

	(void)state;
	build_map(&m, 4, 8, 3);
	memset(&h, 0, sizeof h);
	/* Without entries: the founding placement exactly. */
	for (uint32_t s = 0; s < 8; s++)
		for (unsigned i = 0; i < 4; i++) {
			int core = cluster_hosting_core(&m, &h, i, s, 2);

			if (cluster_map_rank(&m, s, i) < 0)
				assert_int_equal(core, -1);
			else
				assert_int_equal(core, (int)cluster_map_core(&m, s, 2));
			holding[i] += core >= 0;
		}
	assert_int_equal(holding[0] + holding[1] + holding[2] + holding[3], 8 * 3);
	/* Find a shard node index 3 does not hold: add it on core 1; drop one
	 * it holds. */
	uint32_t absent = 0, present = 0;

	while (cluster_map_rank(&m, absent, 3) >= 0)
		absent++;
	while (cluster_map_rank(&m, present, 3) < 0)
		present++;
	assert_int_equal(cluster_hosting_set(&h, absent, 1), 0);
	assert_int_equal(cluster_hosting_set(&h, present, CLUSTER_HOSTING_DROP), 0);
	assert_int_equal(cluster_hosting_core(&m, &h, 3, absent, 2), 1);
	assert_int_equal(cluster_hosting_core(&m, &h, 3, present, 2), -1);
	/* NULL record: the map. */
	assert_int_equal(cluster_hosting_core(&m, NULL, 3, absent, 2), -1);
}

static void write_file(const char *dir, unsigned core, const struct cluster_hosting *rec)
{
	char path[160];
	size_t len = cluster_hosting_encode(rec, text, sizeof text);
	FILE *f;

	snprintf(path, sizeof path, "%s/hosting-%u", dir, core);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
}

static void test_load(void **state)
{
	char dir[] = "/tmp/test_hosting.XXXXXX", path[160], err[512];

	(void)state;
	assert_non_null(mkdtemp(dir));
	/* No file: empty, fine. */
	h.n = 99;
	assert_int_equal(cluster_hosting_load(dir, &h, 8, 2, err, sizeof err), 0);
	assert_int_equal(h.n, 0);
	/* Core 1 added shard 4, core 0 dropped shard 2: merged. */
	memset(&h, 0, sizeof h);
	assert_int_equal(cluster_hosting_set(&h, 4, 1), 0);
	write_file(dir, 1, &h);
	memset(&h, 0, sizeof h);
	assert_int_equal(cluster_hosting_set(&h, 2, CLUSTER_HOSTING_DROP), 0);
	write_file(dir, 0, &h);
	assert_int_equal(cluster_hosting_load(dir, &back, 8, 2, err, sizeof err), 0);
	assert_int_equal(back.n, 2);
	assert_int_equal(cluster_hosting_find(&back, 4)->core, 1);
	assert_int_equal(cluster_hosting_find(&back, 2)->core, CLUSTER_HOSTING_DROP);
	assert_int_equal(cluster_hosting_load_core(dir, 1, &back, 8, 2, err, sizeof err), 0);
	assert_int_equal(back.n, 1);
	/* The same files on a node restarted with one core: refused, named. */
	assert_int_equal(cluster_hosting_load(dir, &back, 8, 1, err, sizeof err), RKV_ECORRUPT);
	assert_non_null(strstr(err, "hosting-1"));
	assert_non_null(strstr(err, "with 1 cores"));
	/* An add in another core's file, a shard in two files: refused. */
	memset(&h, 0, sizeof h);
	assert_int_equal(cluster_hosting_set(&h, 4, 1), 0);
	write_file(dir, 0, &h);
	assert_int_equal(cluster_hosting_load(dir, &back, 8, 2, err, sizeof err), RKV_ECORRUPT);
	assert_non_null(strstr(err, "in the file of core 0"));
	memset(&h, 0, sizeof h);
	assert_int_equal(cluster_hosting_set(&h, 4, CLUSTER_HOSTING_DROP), 0);
	write_file(dir, 0, &h);
	assert_int_equal(cluster_hosting_load(dir, &back, 8, 2, err, sizeof err), RKV_ECORRUPT);
	assert_non_null(strstr(err, "also in another core's"));
	for (unsigned core = 0; core < 2; core++) {
		snprintf(path, sizeof path, "%s/hosting-%u", dir, core);
		unlink(path);
	}
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_overrides_map),
		cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
