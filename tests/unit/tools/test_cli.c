/*
 * Tests of the ringkv CLI (tools/ringkv.c): runs the built executable, whose
 * path is the first argument, against the in-test server and checks exit
 * statuses and output: the data commands, usage errors (one line, exit 2),
 * options after the command, RINGKV_ADDR, values from stdin, JSON output,
 * scan --prefix, ping, and the timeout exit status (4).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_server.h"

static const char *cli_path;
static struct fake_server server;

struct run_result {
	int status;     /* exit status */
	char *out;      /* stdout, NUL-terminated (malloc'd, kept between runs) */
	size_t out_len;
	char err[4096]; /* stderr */
};

static struct run_result run_buf;

static void read_all(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;

	while (len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
}

/* Reads fd to its end into r->out, growing it. */
static void read_out(int fd, struct run_result *r)
{
	static size_t cap;
	ssize_t n;

	r->out_len = 0;
	for (;;) {
		if (r->out_len + 1 >= cap) {
			cap = cap ? cap * 2 : 1 << 16;
			r->out = realloc(r->out, cap);
			assert_non_null(r->out);
		}
		n = read(fd, r->out + r->out_len, cap - 1 - r->out_len);
		if (n <= 0)
			break;
		r->out_len += (size_t)n;
	}
	r->out[r->out_len] = '\0';
}

/*
 * Runs the CLI with argv (NULL-terminated, without the program name), its
 * standard input `in_len` bytes of `in` (through a file: no pipe to fill).
 */
static void run_cli_input(struct run_result *r, const char *const *args, const void *in,
			  size_t in_len)
{
	const char *argv[24] = { cli_path };
	char in_path[] = "/tmp/ringkv-cli-stdin-XXXXXX";
	int out[2], err[2], wstatus, in_fd;
	pid_t pid;
	size_t n = 1;

	for (; args[n - 1]; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	in_fd = mkstemp(in_path);
	assert_true(in_fd >= 0);
	unlink(in_path);
	if (in_len)
		assert_int_equal(write(in_fd, in, in_len), (ssize_t)in_len);
	assert_int_equal(lseek(in_fd, 0, SEEK_SET), 0);
	assert_int_equal(pipe(out), 0);
	assert_int_equal(pipe(err), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(in_fd, 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		close(out[0]);
		close(err[0]);
		execv(cli_path, (char *const *)argv);
		_exit(127);
	}
	close(in_fd);
	close(out[1]);
	close(err[1]);
	/* stderr is small: reading stdout to its end first cannot block. */
	read_out(out[0], r);
	read_all(err[0], r->err, sizeof(r->err));
	close(out[0]);
	close(err[0]);
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_true(WIFEXITED(wstatus));
	r->status = WEXITSTATUS(wstatus);
}

static void run_cli(struct run_result *r, const char *const *args)
{
	run_cli_input(r, args, NULL, 0);
}

static void test_data_commands(void **state)
{
	struct run_result *r = &run_buf;
	const char *addr = server.address;

	(void)state;
	run_cli(r, (const char *[]){ "-a", addr, "put", "greeting", "hello world", NULL });
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out, "OK\n");
	run_cli(r, (const char *[]){ "-a", addr, "get", "greeting", NULL });
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out, "hello world\n");
	run_cli(r, (const char *[]){ "--address", addr, "get", "nope", NULL });
	assert_int_equal(r->status, 1);
	assert_string_equal(r->out, "");
	assert_non_null(strstr(r->err, "not found"));
	run_cli(r, (const char *[]){ "-a", addr, "del", "greeting", NULL });
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out, "1\n");
	run_cli(r, (const char *[]){ "-a", addr, "get", "greeting", NULL });
	assert_int_equal(r->status, 1);
	/* Deleting a missing key deletes 0 keys: printed, and exit 1. */
	run_cli(r, (const char *[]){ "-a", addr, "del", "greeting", NULL });
	assert_int_equal(r->status, 1);
	assert_string_equal(r->out, "0\n");
	/* A value starting with '-' is a value, not an option. */
	run_cli(r, (const char *[]){ "-a", addr, "put", "k", "-v", NULL });
	assert_int_equal(r->status, 0);
	run_cli(r, (const char *[]){ "-a", addr, "get", "k", NULL });
	assert_string_equal(r->out, "-v\n");
	/* The empty key is a key. */
	run_cli(r, (const char *[]){ "-a", addr, "put", "", "v", NULL });
	assert_int_equal(r->status, 0);
	run_cli(r, (const char *[]){ "-a", addr, "get", "", NULL });
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out, "v\n");
}

/* cluster takes status or map; a server without the cluster requests
 * (the fake one) is an error, and get/put/del then keep the plain path. */
static void test_cluster_command(void **state)
{
	struct run_result *r = &run_buf;
	const char *addr = server.address;

	(void)state;
	run_cli(r, (const char *[]){ "-a", addr, "cluster", "nodes", NULL });
	assert_int_equal(r->status, 2);
	assert_non_null(strstr(r->err, "status or map"));
	run_cli(r, (const char *[]){ "-a", addr, "cluster", NULL });
	assert_int_equal(r->status, 2);
	run_cli(r, (const char *[]){ "-a", addr, "cluster", "map", NULL });
	assert_int_equal(r->status, 3);
	assert_non_null(strstr(r->err, "INVALID_ARGUMENT"));
	run_cli(r, (const char *[]){ "-a", addr, "--json", "cluster", "status", NULL });
	assert_int_equal(r->status, 3);
	run_cli(r, (const char *[]){ "-a", addr, "--no-route", "put", "rk", "rv", NULL });
	assert_int_equal(r->status, 0);
	run_cli(r, (const char *[]){ "-a", addr, "get", "rk", NULL });
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out, "rv\n");
}

static void test_scan(void **state)
{
	struct run_result *r = &run_buf;
	const char *addr = server.address;
	static const char *const keys[] = { "s/4", "s/1", "s/3", "s/2", "s/5", "t/1" };

	(void)state;
	for (size_t i = 0; i < 6; i++) {
		run_cli(r, (const char *[]){ "-a", addr, "put", keys[i], keys[i] + 2, NULL });
		assert_int_equal(r->status, 0);
	}
	/* Bytes that would break a line are escaped. */
	run_cli(r, (const char *[]){ "-a", addr, "put", "s/9\ttab", "a\\b\nc\x01", NULL });
	assert_int_equal(r->status, 0);

	/* Five pairs of s/: the fake answers three at a time, so this pages. */
	run_cli(r, (const char *[]){ "-a", addr, "scan", "s/", "s/~", NULL });
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out, "s/1\t1\ns/2\t2\ns/3\t3\ns/4\t4\ns/5\t5\n"
				   "s/9\\x09tab\ta\\x5cb\\x0ac\\x01\n");
	run_cli(r, (const char *[]){ "-a", addr, "scan", "s/2", "s/5", NULL });
	assert_string_equal(r->out, "s/2\t2\ns/3\t3\ns/4\t4\n");
	/* --limit anywhere after the command, both spellings. */
	run_cli(r, (const char *[]){ "-a", addr, "scan", "--limit", "4", "s/", "", NULL });
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out, "s/1\t1\ns/2\t2\ns/3\t3\ns/4\t4\n");
	run_cli(r, (const char *[]){ "-a", addr, "scan", "s/5", "", "--limit=2", NULL });
	assert_string_equal(r->out, "s/5\t5\ns/9\\x09tab\ta\\x5cb\\x0ac\\x01\n");
	/* Empty END: to the end of the key space. */
	run_cli(r, (const char *[]){ "-a", addr, "scan", "t", "", NULL });
	assert_string_equal(r->out, "t/1\t1\n");
	run_cli(r, (const char *[]){ "-a", addr, "scan", "u", "", NULL });
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out, "");
	/* Usage errors. */
	run_cli(r, (const char *[]){ "-a", addr, "scan", "s/", NULL });
	assert_int_equal(r->status, 2);
	run_cli(r, (const char *[]){ "-a", addr, "scan", "s/", "", "--limit", "x", NULL });
	assert_int_equal(r->status, 2);
	assert_non_null(strstr(r->err, "--limit"));
	run_cli(r, (const char *[]){ "-a", addr, "scan", "s/", "", "--limit", NULL });
	assert_int_equal(r->status, 2);
	for (size_t i = 0; i < 6; i++)
		run_cli(r, (const char *[]){ "-a", addr, "del", keys[i], NULL });
	run_cli(r, (const char *[]){ "-a", addr, "del", "s/9\ttab", NULL });
}

static void test_usage(void **state)
{
	struct run_result *r = &run_buf;

	(void)state;
	run_cli(r, (const char *[]){ "--help", NULL });
	assert_int_equal(r->status, 0);
	assert_non_null(strstr(r->out, "usage:"));
	assert_string_equal(r->err, "");
	/* Help wins wherever it is, and names every command. */
	run_cli(r, (const char *[]){ "get", "k", "-h", NULL });
	assert_int_equal(r->status, 0);
	for (const char *const *c = (const char *const[]){ "get KEY", "put KEY VALUE",
							   "del KEY", "scan START END",
							   "--prefix", "ping", "--timeout",
							   "--json", "RINGKV_ADDR",
							   "rebalance [--apply]", NULL };
	     *c; c++)
		assert_non_null(strstr(r->out, *c));
	run_cli(r, (const char *[]){ "--version", NULL });
	assert_int_equal(r->status, 0);
	assert_true(strncmp(r->out, "ringkv 0.", 9) == 0);
	run_cli(r, (const char *[]){ "-V", NULL });
	assert_int_equal(r->status, 0);

	/* A usage error is one line naming the bad word, and a hint: exit 2. */
	static const struct {
		const char *args[8];
		const char *says;
	} bad[] = {
		{ { NULL }, "no command given" },
		{ { "frob", NULL }, "unknown command 'frob'" },
		{ { "get", NULL }, "get takes KEY" },
		{ { "put", "k", NULL }, "put takes KEY VALUE" },
		{ { "get", "k", "extra", NULL }, "unexpected 'extra'" },
		{ { "ping", "x", NULL }, "unexpected 'x'" },
		{ { "-x", "get", "k", NULL }, "unknown option '-x'" },
		{ { "get", "k", "-a", NULL }, "-a needs a value" },
		{ { "-t", "soon", "get", "k", NULL }, "'soon'" },
		{ { "-t", "-1", "get", "k", NULL }, "'-1'" },
		{ { "-w", "yaml", "get", "k", NULL }, "'yaml'" },
		{ { "scan", NULL }, "scan takes START END, or --prefix P" },
		{ { "scan", "a", "b", "--prefix", "p", NULL }, "--prefix takes the place" },
		{ { "-a", "no-port", "get", "k", NULL }, "HOST:PORT" },
		{ { "-a", "127.0.0.1:70000", "get", "k", NULL }, "1 to 65535" },
		{ { "-a", "127.0.0.1:0", "ping", NULL }, "1 to 65535" },
		{ { "rebalance", "--apply", "--dry-run", NULL }, "--dry-run or --apply, not both" },
		{ { "rebalance", "--wait", NULL }, "rebalance --apply's" },
		{ { "rebalance", "--apply", "--rate", "fast", NULL }, "--rate takes bytes" },
		{ { "rebalance", "now", NULL }, "unexpected 'now'" },
		/* Counts: digits only, within their range. */
		{ { "shard", "move", "x", "--from", "1", "--to", "2", NULL }, "takes SHARD" },
		{ { "shard", "move", "4294967296", "--from", "1", "--to", "2", NULL }, "takes SHARD" },
		{ { "shard", "move", "0", "--from", "0", "--to", "2", NULL }, "--from takes NODE" },
		{ { "shard", "move", "0", "--from", "+1", "--to", "2", NULL }, "not '+1'" },
		{ { "shard", "move", "0", "--from", "1:", "--to", "2", NULL }, "not '1:'" },
		{ { "shard", "move", "0", "--from", "1:2x", "--to", "2", NULL }, "not '1:2x'" },
		{ { "shard", "move", "0", "--from", "1", "--to", "2:4294967296", NULL },
		  "--to takes NODE or NODE:CORE, not '2:4294967296'" },
		{ { "shard", "move", "0", "--from", "18446744073709551616", "--to", "2", NULL },
		  "not '18446744073709551616'" },
		{ { "shard", "move", "0", "--cancel", "--to", "2:1", NULL }, "--cancel --to takes NODE" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *nl;

		run_cli(r, bad[i].args);
		assert_int_equal(r->status, 2);
		assert_non_null(strstr(r->err, bad[i].says));
		assert_null(strstr(r->err, "usage:"));
		nl = strchr(r->err, '\n');
		assert_non_null(nl);
		assert_string_equal(nl, "\n"); /* one line */
		assert_string_equal(r->out, "");
	}
}

/* Global options after the command, the address from RINGKV_ADDR, `--`. */
static void test_option_placement(void **state)
{
	struct run_result *r = &run_buf;
	const char *addr = server.address;
	char eq[64];

	(void)state;
	run_cli(r, (const char *[]){ "put", "place", "v1", "-a", addr, NULL });
	assert_int_equal(r->status, 0);
	snprintf(eq, sizeof(eq), "--address=%s", addr);
	run_cli(r, (const char *[]){ "get", eq, "place", "--timeout", "2", NULL });
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out, "v1\n");
	/* "-" and words like "-v" after the command are arguments. */
	run_cli(r, (const char *[]){ "-a", addr, "put", "-v", "-5", NULL });
	assert_int_equal(r->status, 0);
	run_cli(r, (const char *[]){ "-a", addr, "get", "-v", NULL });
	assert_string_equal(r->out, "-5\n");
	/* After --, even option names are arguments. */
	run_cli(r, (const char *[]){ "-a", addr, "put", "--", "--json", "-a", NULL });
	assert_int_equal(r->status, 0);
	run_cli(r, (const char *[]){ "get", "-a", addr, "--", "--json", NULL });
	assert_string_equal(r->out, "-a\n");

	assert_int_equal(setenv("RINGKV_ADDR", addr, 1), 0);
	run_cli(r, (const char *[]){ "get", "place", NULL });
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out, "v1\n");
	/* -a wins over the environment. */
	assert_int_equal(setenv("RINGKV_ADDR", "127.0.0.1:1", 1), 0);
	run_cli(r, (const char *[]){ "get", "place", "-a", addr, NULL });
	assert_int_equal(r->status, 0);
	run_cli(r, (const char *[]){ "get", "place", NULL });
	assert_int_equal(r->status, 3);
	assert_non_null(strstr(r->err, "127.0.0.1:1"));
	unsetenv("RINGKV_ADDR");
	run_cli(r, (const char *[]){ "-a", addr, "del", "place", NULL });
	run_cli(r, (const char *[]){ "-a", addr, "del", "-v", NULL });
	run_cli(r, (const char *[]){ "-a", addr, "del", "--", "--json", NULL });
}

/* `put KEY -`: a value larger than an argument may be, from stdin. */
static void test_put_stdin(void **state)
{
	struct run_result *r = &run_buf;
	const char *addr = server.address;
	enum { SIZE = 300 << 10 };
	uint8_t *value = malloc(SIZE);

	(void)state;
	assert_non_null(value);
	for (size_t i = 0; i < SIZE; i++)
		value[i] = (uint8_t)(i * 131 + (i >> 9));
	value[0] = 0; /* binary, NUL included */
	run_cli_input(r, (const char *[]){ "-a", addr, "put", "big", "-", NULL }, value, SIZE);
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out, "OK\n");
	run_cli(r, (const char *[]){ "-a", addr, "get", "big", NULL });
	assert_int_equal(r->status, 0);
	assert_int_equal(r->out_len, SIZE + 1);
	assert_memory_equal(r->out, value, SIZE);
	assert_int_equal(r->out[SIZE], '\n');
	/* Empty stdin: an empty value. */
	run_cli_input(r, (const char *[]){ "-a", addr, "put", "big", "-", NULL }, "", 0);
	assert_int_equal(r->status, 0);
	run_cli(r, (const char *[]){ "-a", addr, "get", "big", NULL });
	assert_string_equal(r->out, "\n");
	run_cli(r, (const char *[]){ "-a", addr, "del", "big", NULL });
	free(value);
}

static void test_json(void **state)
{
	struct run_result *r = &run_buf;
	const char *addr = server.address;

	(void)state;
	run_cli(r, (const char *[]){ "-a", addr, "--json", "put", "j/1", "say \"hi\"\n", NULL });
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out, "{\"ok\":true}\n");
	run_cli(r, (const char *[]){ "-a", addr, "-w", "json", "get", "j/1", NULL });
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out, "{\"key\":\"j/1\",\"found\":true,"
				    "\"value\":\"say \\\"hi\\\"\\n\"}\n");
	/* UTF-8 passes as is; other bytes are base64 under another name. */
	run_cli(r, (const char *[]){ "-a", addr, "put", "j/2", "caf\xc3\xa9", NULL });
	run_cli(r, (const char *[]){ "-a", addr, "put", "j/3", "\xff\x01", NULL });
	run_cli(r, (const char *[]){ "-a", addr, "get", "j/3", "--format=json", NULL });
	assert_string_equal(r->out, "{\"key\":\"j/3\",\"found\":true,\"value_base64\":\"/wE=\"}\n");
	run_cli(r, (const char *[]){ "-a", addr, "get", "j/none", "--json", NULL });
	assert_int_equal(r->status, 1);
	assert_string_equal(r->out, "{\"key\":\"j/none\",\"found\":false}\n");
	run_cli(r, (const char *[]){ "-a", addr, "scan", "--prefix", "j/", "--json", NULL });
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out, "[{\"key\":\"j/1\",\"value\":\"say \\\"hi\\\"\\n\"},\n"
				    "{\"key\":\"j/2\",\"value\":\"caf\xc3\xa9\"},\n"
				    "{\"key\":\"j/3\",\"value_base64\":\"/wE=\"}]\n");
	run_cli(r, (const char *[]){ "-a", addr, "scan", "--prefix", "none/", "--json", NULL });
	assert_string_equal(r->out, "[]\n");
	run_cli(r, (const char *[]){ "-a", addr, "--json", "ping", NULL });
	assert_string_equal(r->out, "{\"pong\":true}\n");
	for (int i = 1; i <= 3; i++) {
		char key[8];

		snprintf(key, sizeof(key), "j/%d", i);
		run_cli(r, (const char *[]){ "-a", addr, "--json", "del", key, NULL });
		assert_int_equal(r->status, 0);
		assert_string_equal(r->out, "{\"deleted\":1}\n");
	}
	run_cli(r, (const char *[]){ "-a", addr, "--json", "del", "j/1", NULL });
	assert_int_equal(r->status, 1);
	assert_string_equal(r->out, "{\"deleted\":0}\n");
}

static void test_scan_prefix(void **state)
{
	struct run_result *r = &run_buf;
	const char *addr = server.address;
	static const char *const keys[] = { "p", "p/a", "p/b", "p/c", "p0", "q/\xff",
					    "q/\xff\xff", "q0", "o" };

	(void)state;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		run_cli(r, (const char *[]){ "-a", addr, "put", keys[i], "v", NULL });
	/* Pages of three (the fake's) make this page too. */
	run_cli(r, (const char *[]){ "-a", addr, "scan", "--prefix", "p/", NULL });
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out, "p/a\tv\np/b\tv\np/c\tv\n");
	run_cli(r, (const char *[]){ "-a", addr, "scan", "--prefix=p", "--limit", "2", NULL });
	assert_string_equal(r->out, "p\tv\np/a\tv\n");
	/* A prefix ending in 0xff bytes ends at the next byte up. */
	run_cli(r, (const char *[]){ "-a", addr, "scan", "--prefix", "q/\xff", NULL });
	assert_string_equal(r->out, "q/\\xff\tv\nq/\\xff\\xff\tv\n");
	run_cli(r, (const char *[]){ "-a", addr, "scan", "--prefix", "", NULL });
	assert_int_equal(r->status, 0);
	assert_non_null(strstr(r->out, "o\tv\n"));
	assert_non_null(strstr(r->out, "q0\tv\n"));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		run_cli(r, (const char *[]){ "-a", addr, "del", keys[i], NULL });
}

static void test_ping(void **state)
{
	struct run_result *r = &run_buf;

	(void)state;
	run_cli(r, (const char *[]){ "-a", server.address, "ping", NULL });
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out, "PONG\n");
	/* Nobody listens on port 1: cannot connect is exit 3. */
	run_cli(r, (const char *[]){ "-a", "127.0.0.1:1", "ping", NULL });
	assert_int_equal(r->status, 3);
	assert_non_null(strstr(r->err, "cannot connect"));
}

/* A server that accepts and never answers: exit 4 near the timeout. */
static void test_timeout(void **state)
{
	struct run_result *r = &run_buf;
	struct fake_server silent = { 0 };
	struct timespec t0, t1;
	long ms;

	(void)state;
	assert_int_equal(fake_server_start(&silent, FAKE_SILENT), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	run_cli(r, (const char *[]){ "-a", silent.address, "get", "k", "-t", "0.3", NULL });
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_int_equal(r->status, 4);
	assert_true(ms >= 290 && ms < 5000);
	assert_non_null(strstr(r->err, "timed out"));
	assert_non_null(strstr(r->err, "300 ms"));
	run_cli(r, (const char *[]){ "-a", silent.address, "--timeout=0.2", "ping", NULL });
	assert_int_equal(r->status, 4);
	run_cli(r, (const char *[]){ "-a", silent.address, "-t", "0.2", "scan", "a", "", NULL });
	assert_int_equal(r->status, 4);
	run_cli_input(r, (const char *[]){ "-a", silent.address, "-t", "0.2", "put", "k", "-",
					   NULL }, "v", 1);
	assert_int_equal(r->status, 4);
	fake_server_stop(&silent);
}

static int setup(void **state)
{
	(void)state;
	return fake_server_start(&server, FAKE_STORE) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	fake_server_stop(&server);
	return 0;
}

int main(int argc, char **argv)
{
	int rc;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_commands),
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_cluster_command),
		cmocka_unit_test(test_usage),
		cmocka_unit_test(test_option_placement),
		cmocka_unit_test(test_put_stdin),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_scan_prefix),
		cmocka_unit_test(test_ping),
		cmocka_unit_test(test_timeout),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH-TO-ringkv\n", argv[0]);
		return 2;
	}
	cli_path = argv[1];
	unsetenv("RINGKV_ADDR"); /* the tests set it where they mean to */
	rc = cmocka_run_group_tests(tests, setup, teardown);
	free(run_buf.out);
	return rc;
}
