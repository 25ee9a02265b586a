/*
 * Starting a cluster node (issue 12, "Starting a cluster"): real ringkvd
 * processes on loopback. A node started with a cluster config records its
 * identity in the data dir; a restart that differs in node id, initial
 * cluster, shards, replicas, cores or token exits 1 naming each difference
 * (recorded and given); the same flags start again; a version 1 data dir
 * (single-node ringkvd) is upgraded, its data intact; shard-* directories
 * without CLUSTER, and a damaged CLUSTER, are refused and left alone; bad
 * cluster flags exit 2. Every process is bounded (harness: 15 s each).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "tools/libringkv.h"

static char out[16384];

static void read_file(const char *dir, const char *name, char *buf, size_t len)
{
	char path[512];
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "rb");
	CHECK(f, "cannot open %s", path);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "wb");
	CHECK(f, "cannot create %s", path);
	fputs(text, f);
	fclose(f);
}

static bool exists(const char *dir, const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return stat(path, &st) == 0;
}

static void start_stop(const char *binary, const char *const *args, const char *what)
{
	struct server srv = { 0 };

	CHECK(server_start(&srv, binary, args) == 0, "%s: ringkvd did not start", what);
	server_stop_clean(&srv, 10000, what);
}

/* Runs ringkvd to completion; it must exit `code` and print every string
 * of `needles` (NULL-terminated). */
static void expect_exit(const char *binary, const char *const *args, int code,
			const char *const *needles, const char *what)
{
	int rc = run_capture(binary, args, out, sizeof out);

	CHECK(rc == code, "%s: exit %d, expected %d; output:\n%s", what, rc, code, out);
	for (unsigned i = 0; needles[i]; i++)
		CHECK(strstr(out, needles[i]), "%s: output lacks \"%s\":\n%s", what, needles[i],
		      out);
	printf("%s: exit %d as expected\n", what, code);
}

int main(int argc, char **argv)
{
	char ic[256], ic_moved[256], ic_two[256], text[4096], belongs[128];
	char p1[32], p2[32], p3[32];
	const char *bin, *dir, *old;
	unsigned base;
	char *id;

	CHECK(argc == 2, "usage: %s RINGKVD", argv[0]);
	bin = argv[1];
	/* Nothing listens on peer addresses yet; spread the ports anyway so that
	 * parallel runs do not collide once something does. */
	base = 20000 + (unsigned)getpid() % 20000;
	snprintf(p1, sizeof p1, "127.0.0.11:%u", base);
	snprintf(p2, sizeof p2, "127.0.0.12:%u", base);
	snprintf(p3, sizeof p3, "127.0.0.13:%u", base);
	snprintf(ic, sizeof ic, "3=%s,1=%s,2=%s", p3, p1, p2);
	snprintf(ic_moved, sizeof ic_moved, "1=%s,2=%s,3=127.0.0.14:%u", p1, p2, base);
	snprintf(ic_two, sizeof ic_two, "1=%s,2=%s", p1, p2);

	/* Bad cluster flags: exit 2 with the reason. */
	{
		const char *dup[] = { "--initial-cluster", "1=127.0.0.11:1,1=127.0.0.12:1", NULL };
		const char *me[] = { "--node-id", "4", "--initial-cluster", ic, NULL };
		const char *many[] = { "--initial-cluster", ic_two, "--replicas", "3", NULL };
		const char *peer[] = { "--node-id", "2", "--initial-cluster", ic,
				       "--peer-listen", "127.0.0.12:1", NULL };

		expect_exit(bin, dup, 2, (const char *[]){ "appears twice", NULL },
			    "duplicate node id");
		expect_exit(bin, me, 2, (const char *[]){ "does not list this node", NULL },
			    "node missing from --initial-cluster");
		expect_exit(bin, many, 2, (const char *[]){ "--replicas 3", NULL },
			    "R above the node count");
		expect_exit(bin, peer, 2, (const char *[]){ "--peer-listen", p2, NULL },
			    "--peer-listen unlike this node's entry");
	}

	/* Node 2 of 3 starts and records its identity. */
	dir = harness_tmpdir();
	CHECK(dir, "mkdtemp");
	{
		const char *args[] = { "--data-dir", dir, "--cores", "2", "--node-id", "2",
				       "--initial-cluster", ic, "--shards", "6", NULL };

		start_stop(bin, args, "node 2 of 3, first start");
	}
	read_file(dir, "CLUSTER", text, sizeof text);
	CHECK(strstr(text, "ringkv-cluster 2\n") && strstr(text, "\nnode-id 2\n") &&
	      strstr(text, "\nnodes 3\n") && strstr(text, "\nshards 6\n") &&
	      strstr(text, "\nreplicas 3\n") && strstr(text, "\ncores 2\n"),
	      "CLUSTER lacks the identity:\n%s", text);
	id = strstr(text, "cluster-id ");
	CHECK(id, "no cluster id in CLUSTER");
	snprintf(belongs, sizeof belongs, "belongs to node 2 of cluster %.16s", id + 11);
	read_file(dir, "PLACEMENT", out, sizeof out);
	CHECK(strstr(out, "shard 0: 1 2 3; core 0\n") && strstr(out, "shard 5: 3 1 2; core 1\n"),
	      "PLACEMENT:\n%s", out);

	/* Every difference refused, exit 1, named with recorded and given values. */
	{
		const char *node3[] = { "--listen", "127.0.0.1:0", "--data-dir", dir, "--cores",
					"2", "--node-id", "3", "--initial-cluster", ic, NULL };
		const char *moved[] = { "--listen", "127.0.0.1:0", "--data-dir", dir, "--cores",
					"2", "--node-id", "2", "--initial-cluster", ic_moved, NULL };
		const char *shards[] = { "--listen", "127.0.0.1:0", "--data-dir", dir,
					 "--node-id", "2", "--initial-cluster", ic, "--shards",
					 "8", NULL };
		const char *replicas[] = { "--listen", "127.0.0.1:0", "--data-dir", dir,
					   "--node-id", "2", "--initial-cluster", ic,
					   "--replicas", "1", NULL };
		const char *cores[] = { "--listen", "127.0.0.1:0", "--data-dir", dir, "--cores",
					"1", "--node-id", "2", "--initial-cluster", ic, NULL };
		const char *token[] = { "--listen", "127.0.0.1:0", "--data-dir", dir,
					"--node-id", "2", "--initial-cluster", ic,
					"--cluster-token", "other", NULL };
		const char *single[] = { "--listen", "127.0.0.1:0", "--data-dir", dir, NULL };
		const char *several[] = { "--listen", "127.0.0.1:0", "--data-dir", dir,
					  "--cores", "3", "--node-id", "1", "--initial-cluster",
					  ic, "--shards", "7", NULL };

		expect_exit(bin, node3, 1, (const char *[]){ belongs,
			    "started as node 3 (--node-id); recorded node 2", NULL },
			    "restart as another node");
		expect_exit(bin, moved, 1, (const char *[]){ belongs, "--initial-cluster: recorded",
			    "127.0.0.14", NULL }, "restart with another initial cluster");
		expect_exit(bin, shards, 1, (const char *[]){ belongs,
			    "--shards: recorded 6, given 8", NULL }, "restart with other shards");
		expect_exit(bin, replicas, 1, (const char *[]){ belongs,
			    "--replicas: recorded 3, given 1", NULL },
			    "restart with other replicas");
		expect_exit(bin, cores, 1, (const char *[]){ belongs,
			    "--cores: recorded 2, given 1", "not supported yet", NULL },
			    "restart with other cores");
		expect_exit(bin, token, 1, (const char *[]){ belongs,
			    "--cluster-token: recorded none, given 'other'", NULL },
			    "restart with another token");
		expect_exit(bin, single, 1, (const char *[]){ belongs,
			    "started as node 1 (--node-id); recorded node 2",
			    "(none given: a one-node cluster", NULL },
			    "restart as a one-node cluster");
		expect_exit(bin, several, 1, (const char *[]){ belongs, "started as node 1",
			    "--shards: recorded 6, given 7", "--cores: recorded 2, given 3",
			    NULL }, "restart with three differences");
	}
	/* None of that touched the record. */
	read_file(dir, "CLUSTER", out, sizeof out);
	CHECK(!strcmp(out, text), "CLUSTER changed by a refused start:\n%s", out);

	/* The same flags start again; so do fewer (recorded values fill in). */
	{
		const char *same[] = { "--data-dir", dir, "--cores", "2", "--node-id", "2",
				       "--initial-cluster", ic, "--shards", "6", "--replicas",
				       "3", "--peer-listen", p2, NULL };
		const char *fewer[] = { "--data-dir", dir, "--node-id", "2",
					"--initial-cluster", ic, NULL };

		start_stop(bin, same, "restart with the same flags");
		start_stop(bin, fewer, "restart without --shards/--cores/--replicas");
		read_file(dir, "CLUSTER", out, sizeof out);
		CHECK(!strcmp(out, text), "CLUSTER changed by a restart:\n%s", out);
		printf("restarts with the same identity: ok\n");
	}

	/* A data dir of a single-node ringkvd (CLUSTER version 1) with data. */
	old = harness_tmpdir();
	CHECK(old, "mkdtemp");
	{
		const char *args[] = { "--data-dir", old, "--cores", "2", "--shards", "3", NULL };
		const char *as2[] = { "--listen", "127.0.0.1:0", "--data-dir", old, "--cores",
				      "2", "--node-id", "2", NULL };
		const char *three[] = { "--listen", "127.0.0.1:0", "--data-dir", old, "--cores",
					"2", "--initial-cluster", ic, NULL };
		struct server srv = { 0 };
		struct rkv_client *c;
		char err[256];
		void *value;
		size_t len;

		CHECK(server_start(&srv, bin, args) == 0, "single node did not start");
		CHECK(rkv_connect(srv.addr, &c, err, sizeof err) == 0, "connect: %s", err);
		for (unsigned i = 0; i < 30; i++) {
			char key[16];

			snprintf(key, sizeof key, "key-%u", i);
			CHECK(rkv_put(c, key, strlen(key), "v", 1) == 0, "put %s", key);
		}
		rkv_close(c);
		server_stop_clean(&srv, 10000, "the single node");
		/* What the previous build wrote. */
		write_file(old, "CLUSTER", "ringkv-cluster 1\nshards 3\n");
		snprintf(err, sizeof err, "%s/PLACEMENT", old);
		CHECK(unlink(err) == 0, "unlink %s", err);

		expect_exit(bin, as2, 1, (const char *[]){ "single-node ringkvd",
			    "CLUSTER version 1: node 1, 3 shards",
			    "started as node 2 (--node-id); recorded node 1", NULL },
			    "version 1 dir started as node 2");
		expect_exit(bin, three, 1, (const char *[]){ "--initial-cluster: recorded none",
			    NULL }, "version 1 dir started in a 3-node cluster");
		read_file(old, "CLUSTER", out, sizeof out);
		CHECK(!strcmp(out, "ringkv-cluster 1\nshards 3\n"), "refusal rewrote CLUSTER");

		CHECK(server_start(&srv, bin, args) == 0, "version 1 dir did not start");
		CHECK(rkv_connect(srv.addr, &c, err, sizeof err) == 0, "connect: %s", err);
		for (unsigned i = 0; i < 30; i++) {
			char key[16];

			snprintf(key, sizeof key, "key-%u", i);
			CHECK(rkv_get(c, key, strlen(key), &value, &len) == 0 && len == 1,
			      "%s lost in the upgrade", key);
			free(value);
		}
		rkv_close(c);
		server_stop_clean(&srv, 10000, "the upgraded node");
		read_file(old, "CLUSTER", out, sizeof out);
		CHECK(strstr(out, "ringkv-cluster 2\n") && strstr(out, "\nnode-id 1\n") &&
		      strstr(out, "\nnodes 1\nnode 1 -\n") && strstr(out, "\nshards 3\n") &&
		      strstr(out, "\nreplicas 1\n") && strstr(out, "\ncores 2\n"),
		      "version 1 not upgraded:\n%s", out);
		CHECK(exists(old, "PLACEMENT"), "no PLACEMENT after the upgrade");
		printf("version 1 data dir upgraded to version 2, 30 keys intact\n");
	}

	/* shard-* directories but no CLUSTER: refused, nothing created. */
	{
		const char *args[] = { "--listen", "127.0.0.1:0", "--data-dir", old, "--cores",
				       "2", NULL };
		char path[512];

		snprintf(path, sizeof path, "%s/CLUSTER", old);
		CHECK(unlink(path) == 0, "unlink CLUSTER");
		expect_exit(bin, args, 1, (const char *[]){ "no CLUSTER file", "shard-0",
			    "3 shard directories", NULL }, "shard dirs without CLUSTER");
		CHECK(!exists(old, "CLUSTER"), "a refused start created CLUSTER");
	}

	/* A damaged CLUSTER (a digit changed): refused, not obeyed. */
	{
		const char *args[] = { "--listen", "127.0.0.1:0", "--data-dir", dir, "--cores",
				       "2", "--node-id", "2", "--initial-cluster", ic, NULL };
		char *shards = strstr(text, "\nshards 6\n");

		CHECK(shards, "no shards line");
		shards[8] = '7';
		write_file(dir, "CLUSTER", text);
		expect_exit(bin, args, 1, (const char *[]){ "CLUSTER is damaged", NULL },
			    "damaged CLUSTER");
	}

	harness_cleanup();
	printf("1 passed, 0 failed\n");
	return 0;
}
