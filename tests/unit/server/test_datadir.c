/*
 * Tests for server/datadir.c's CLUSTER file: the version 2 text round-trips,
 * version 1 reads as a one-node cluster, and damaged text (every prefix,
 * every flipped byte, random bytes) is refused with an error, never
 * obeyed and never a crash. Then datadir_cluster_open on a scratch
 * directory: record, reopen, refuse, upgrade.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <xxhash.h>

#include "server/datadir.h"
#include "shard/route.h"

static void three_nodes(struct datadir_cluster *c, const char *token)
{
	struct cluster_map_node nodes[3];
	char err[128];

	memset(c, 0, sizeof *c);
	memset(nodes, 0, sizeof nodes);
	for (unsigned i = 0; i < 3; i++) {
		nodes[i].id = 10 + i;
		snprintf(nodes[i].host, sizeof nodes[i].host, "127.0.0.%u", 11 + i);
		nodes[i].port = 7100;
	}
	memset(nodes[2].host, 0, sizeof nodes[2].host);
	strcpy(nodes[2].host, "::1");
	assert_int_equal(cluster_map_init(&c->map, nodes, 3, 16, 3, token, err, sizeof err), 0);
	c->node_id = 11;
	c->cores = 4;
	strcpy(c->token, token);
	c->placement = cluster_map_placement_hash(&c->map, 4);
	c->file_version = 2;
	c->slot_function = ROUTE_SLOT_FN_HASH_TAG;
}

static void test_round_trip(void **state)
{
	struct datadir_cluster a, b;
	char text[4096], err[256];
	int len;

	(void)state;
	for (int with_token = 0; with_token < 2; with_token++) {
		three_nodes(&a, with_token ? "prod-eu.1" : "");
		len = datadir_cluster_format(&a, text, sizeof text);
		assert_true(len > 0);
		assert_non_null(strstr(text, "node 12 [::1]:7100\n"));
		assert_int_equal(datadir_cluster_parse(text, (size_t)len, &b, err, sizeof err), 0);
		assert_memory_equal(&a, &b, sizeof a);
	}
	/* Too small a buffer is an error, not a truncated file. */
	assert_int_equal(datadir_cluster_format(&a, text, 40), -ENOSPC);
}

static void test_version_1(void **state)
{
	static const char v1[] = "ringkv-cluster 1\nshards 7\n";
	struct datadir_cluster c;
	char err[256];

	(void)state;
	assert_int_equal(datadir_cluster_parse(v1, strlen(v1), &c, err, sizeof err), 0);
	assert_int_equal(c.file_version, 1);
	assert_int_equal(c.node_id, 1);
	assert_int_equal(c.map.node_count, 1);
	assert_int_equal(c.map.shards, 7);
	assert_int_equal(c.map.replicas, 1);
	assert_int_equal(c.cores, 0);
	assert_int_equal(datadir_cluster_parse(v1, strlen(v1) - 1, &c, err, sizeof err),
			 -EINVAL);
	assert_int_equal(datadir_cluster_parse("ringkv-cluster 1\nshards 0\n", 26, &c, err,
					       sizeof err), -EINVAL);
	assert_int_equal(datadir_cluster_parse("ringkv-cluster 3\n", 17, &c, err, sizeof err),
			 -EINVAL);
	assert_non_null(strstr(err, "not a ringkv cluster file"));
}

/*
 * Copies text into out with `from` replaced by `to`, and the checksum line
 * recomputed so that only the edit is wrong. Returns the new length.
 */
static size_t edit(const char *text, size_t len, const char *from, const char *to, char *out)
{
	const char *at = strstr(text, from), *sum;
	size_t head, n;

	assert_non_null(at);
	head = (size_t)(at - text);
	memcpy(out, text, head);
	memcpy(out + head, to, strlen(to));
	memcpy(out + head + strlen(to), at + strlen(from), len - head - strlen(from));
	n = len - strlen(from) + strlen(to);
	out[n] = '\0';
	sum = strstr(out, "checksum ");
	assert_non_null(sum);
	snprintf((char *)sum, 27, "checksum %016llx\n",
		 (unsigned long long)XXH3_64bits(out, (size_t)(sum - out)));
	return n;
}

static void test_damage_is_refused(void **state)
{
	struct datadir_cluster a, b;
	char text[4096], bad[4096], err[256];
	int len;

	(void)state;
	three_nodes(&a, "t");
	len = datadir_cluster_format(&a, text, sizeof text);
	assert_true(len > 0);
	for (int cut = 0; cut < len; cut++)
		assert_int_equal(datadir_cluster_parse(text, (size_t)cut, &b, err, sizeof err),
				 -EINVAL);
	for (int at = 0; at < len; at++)
		for (unsigned bit = 0; bit < 8; bit++) {
			memcpy(bad, text, (size_t)len);
			bad[at] ^= (char)(1u << bit);
			assert_int_equal(datadir_cluster_parse(bad, (size_t)len, &b, err,
							       sizeof err), -EINVAL);
		}
	/* A changed value under a recomputed checksum still has to be sane. */
	{
		static const char *const edits[][2] = {
			{ "nodes 3\n", "nodes 9\n" },         /* fewer node lines */
			{ "replicas 3\n", "replicas 4\n" },   /* R > N */
			{ "node-id 11\n", "node-id 19\n" },   /* not a member */
			{ "node 12 ", "node 10 " },            /* ids not increasing */
			{ "shards 16\n", "shards 0\n" },
			{ "cores 4\n", "cores 0\n" },
			{ "token t\n", "token \n" },
			{ "7100\nnode 12", "0\nnode 12" },     /* port 0 */
		};

		for (size_t e = 0; e < sizeof edits / sizeof edits[0]; e++) {
			size_t n = edit(text, (size_t)len, edits[e][0], edits[e][1], bad);

			assert_int_equal(datadir_cluster_parse(bad, n, &b, err, sizeof err),
					 -EINVAL);
		}
		/* The same machinery with a harmless edit parses: the edits above
		 * fail for what they change, not for the resealing. */
		assert_int_equal(datadir_cluster_parse(bad, edit(text, (size_t)len, "cores 4\n",
								 "cores 5\n", bad),
						       &b, err, sizeof err), 0);
		assert_int_equal(b.cores, 5);
	}
	srand(12);
	for (unsigned round = 0; round < 2000; round++) {
		size_t n = (size_t)rand() % sizeof bad;

		for (size_t i = 0; i < n; i++)
			bad[i] = (char)rand();
		if (round % 2)
			memcpy(bad, "ringkv-cluster 2\n", n < 17 ? n : 17);
		assert_int_equal(datadir_cluster_parse(bad, n, &b, err, sizeof err), -EINVAL);
	}
}

static char scratch[256];

static void remove_scratch(void)
{
	char cmd[300];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
	assert_int_equal(system(cmd), 0);
}

static int make_config(struct config *cfg, const char *dir, const char *flags)
{
	char line[1024], err[256];
	char *argv[32];
	int argc = 0;

	config_defaults(cfg);
	snprintf(line, sizeof line, "ringkvd --data-dir %s %s", dir, flags);
	for (char *tok = strtok(line, " "); tok && argc < 31; tok = strtok(NULL, " "))
		argv[argc++] = tok;
	argv[argc] = NULL;
	return config_parse(cfg, argc, argv, err, sizeof err);
}

/* The slot-function line: written only for functions other than 1, read
 * back, absent = 1, a value outside the known functions refused. */
static void test_slot_function_line(void **state)
{
	struct datadir_cluster a, b;
	char text[4096], bad[4096], err[256];
	int len;

	(void)state;
	three_nodes(&a, "");
	len = datadir_cluster_format(&a, text, sizeof text);
	assert_true(len > 0);
	assert_non_null(strstr(text, "\nslot-function 2\nchecksum "));
	assert_int_equal(datadir_cluster_parse(text, (size_t)len, &b, err, sizeof err), 0);
	assert_int_equal(b.slot_function, ROUTE_SLOT_FN_HASH_TAG);

	/* A directory made before hash tags: no line, function 1. */
	a.slot_function = ROUTE_SLOT_FN_WHOLE_KEY;
	len = datadir_cluster_format(&a, text, sizeof text);
	assert_null(strstr(text, "slot-function"));
	assert_int_equal(datadir_cluster_parse(text, (size_t)len, &b, err, sizeof err), 0);
	assert_int_equal(b.slot_function, ROUTE_SLOT_FN_WHOLE_KEY);
	assert_memory_equal(&a, &b, sizeof a);

	/* Unknown functions are damage, not a guess. */
	three_nodes(&a, "");
	len = datadir_cluster_format(&a, text, sizeof text);
	for (int i = 0; i < 3; i++) {
		static const char *const to[] = { "slot-function 3\n", "slot-function 0\n",
						  "slot-function x\n" };
		size_t n = edit(text, (size_t)len, "slot-function 2\n", to[i], bad);

		assert_int_equal(datadir_cluster_parse(bad, n, &b, err, sizeof err), -EINVAL);
		assert_non_null(strstr(err, "slot-function"));
	}
}

/* A data directory whose CLUSTER predates hash tags keeps function 1 and its
 * file is left byte for byte as it was. */
static void test_open_keeps_old_slot_function(void **state)
{
	static struct config cfg;
	static struct datadir_cluster made, opened;
	static char err[8192], before[4096], after[4096];
	char path[300];
	size_t n1, n2;
	FILE *f;
	int len;

	(void)state;
	snprintf(scratch, sizeof scratch, "/tmp/ringkv-test-datadir-XXXXXX");
	assert_non_null(mkdtemp(scratch));
	assert_int_equal(make_config(&cfg, scratch, "--node-id 1"), 0);
	/* Made by this build, then rewritten as an older build wrote it. */
	assert_int_equal(datadir_cluster_open(scratch, &cfg, 2, &made, err, sizeof err), 0);
	assert_int_equal(made.slot_function, ROUTE_SLOT_FN_HASH_TAG);
	made.slot_function = ROUTE_SLOT_FN_WHOLE_KEY;
	len = datadir_cluster_format(&made, before, sizeof before);
	assert_true(len > 0);
	assert_null(strstr(before, "slot-function"));
	snprintf(path, sizeof path, "%s/CLUSTER", scratch);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(before, 1, (size_t)len, f), (size_t)len);
	fclose(f);

	assert_int_equal(datadir_cluster_open(scratch, &cfg, 2, &opened, err, sizeof err), 0);
	assert_int_equal(opened.slot_function, ROUTE_SLOT_FN_WHOLE_KEY);
	f = fopen(path, "r");
	assert_non_null(f);
	n2 = fread(after, 1, sizeof after, f);
	fclose(f);
	n1 = (size_t)len;
	assert_int_equal(n1, n2);
	assert_memory_equal(before, after, n1);
	remove_scratch();
}

static void test_open_records_and_refuses(void **state)
{
	static struct config cfg;
	static struct datadir_cluster first, again;
	static char err[8192];
	static const char ic[] =
		"--initial-cluster 1=127.0.0.11:7100,2=127.0.0.12:7100,3=127.0.0.13:7100";
	char flags[256], path[300];
	struct stat st;
	FILE *f;

	(void)state;
	snprintf(scratch, sizeof scratch, "/tmp/ringkv-test-datadir-XXXXXX");
	assert_non_null(mkdtemp(scratch));

	/* New: defaults shards = cores * nodes, R = min(3, nodes). */
	snprintf(flags, sizeof flags, "--node-id 3 %s", ic);
	assert_int_equal(make_config(&cfg, scratch, flags), 0);
	assert_int_equal(datadir_cluster_open(scratch, &cfg, 2, &first, err, sizeof err), 0);
	assert_int_equal(first.map.shards, 6);
	assert_int_equal(first.map.replicas, 3);
	assert_int_equal(first.slot_function, ROUTE_SLOT_FN_HASH_TAG);
	assert_int_equal(first.cores, 2);
	assert_int_equal(first.node_id, 3);
	snprintf(path, sizeof path, "%s/PLACEMENT", scratch);
	assert_int_equal(stat(path, &st), 0);

	/* Again, on a machine with 8 CPUs: the recorded 2 cores hold; a lost
	 * PLACEMENT is written again. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(datadir_cluster_open(scratch, &cfg, 8, &again, err, sizeof err), 0);
	assert_memory_equal(&first, &again, sizeof first);
	assert_int_equal(stat(path, &st), 0);

	/* Given --replicas 2 (an even R warns) and --node-id 2: two lines. */
	snprintf(flags, sizeof flags, "--node-id 2 --replicas 2 %s", ic);
	assert_int_equal(make_config(&cfg, scratch, flags), 0);
	assert_int_equal(datadir_cluster_open(scratch, &cfg, 2, &again, err, sizeof err),
			 -EINVAL);
	assert_non_null(strstr(err, "belongs to node 3 of cluster"));
	assert_non_null(strstr(err, "\n  started as node 2 (--node-id); recorded node 3"));
	assert_non_null(strstr(err, "\n  --replicas: recorded 3, given 2"));
	assert_null(strstr(err, "--shards"));

	/* A version 1 file: upgraded when the flags agree. */
	f = fopen(strcat(strcpy(path, scratch), "/CLUSTER"), "w");
	assert_non_null(f);
	fputs("ringkv-cluster 1\nshards 5\n", f);
	fclose(f);
	assert_int_equal(make_config(&cfg, scratch, "--node-id 1"), 0);
	assert_int_equal(datadir_cluster_open(scratch, &cfg, 2, &again, err, sizeof err), 0);
	assert_int_equal(again.map.shards, 5);
	assert_int_equal(datadir_cluster_read(scratch, &first, err, sizeof err), 1);
	assert_int_equal(first.file_version, 2);
	assert_int_equal(first.map.cluster_id, again.map.cluster_id);
	/* ... keeping the whole-key slot function its keys were placed by. */
	assert_int_equal(first.slot_function, ROUTE_SLOT_FN_WHOLE_KEY);
	assert_int_equal(again.slot_function, ROUTE_SLOT_FN_WHOLE_KEY);

	/* A shard directory and no CLUSTER: -ENOENT, nothing written. */
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof path, "%s/shard-4", scratch);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(datadir_cluster_open(scratch, &cfg, 2, &again, err, sizeof err),
			 -ENOENT);
	assert_non_null(strstr(err, "shard-4"));
	snprintf(path, sizeof path, "%s/CLUSTER", scratch);
	assert_int_not_equal(stat(path, &st), 0);
	remove_scratch();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_version_1),
		cmocka_unit_test(test_damage_is_refused),
		cmocka_unit_test(test_open_records_and_refuses),
		cmocka_unit_test(test_slot_function_line),
		cmocka_unit_test(test_open_keeps_old_slot_function),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
