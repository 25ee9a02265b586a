/*
 * Tests of the ringkv CLI (tools/ringkv.c): runs the built executable, whose
 * path is the first argument, against the in-test server and checks exit
 * statuses and output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_server.h"

static const char *cli_path;
static struct fake_server server;

struct run_result {
	int status;     /* exit status */
	char out[4096]; /* stdout */
	char err[4096]; /* stderr */
};

static void read_all(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;

	while (len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
}

/* Runs the CLI with argv (NULL-terminated, without the program name). */
static void run_cli(struct run_result *r, const char *const *args)
{
	const char *argv[16] = { cli_path };
	int out[2], err[2], wstatus;
	pid_t pid;
	size_t n = 1;

	for (; args[n - 1]; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	assert_int_equal(pipe(out), 0);
	assert_int_equal(pipe(err), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(out[1], 1);
		dup2(err[1], 2);
		close(out[0]);
		close(err[0]);
		execv(cli_path, (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	/* Outputs are small: reading one pipe after the other cannot block. */
	read_all(out[0], r->out, sizeof(r->out));
	read_all(err[0], r->err, sizeof(r->err));
	close(out[0]);
	close(err[0]);
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_true(WIFEXITED(wstatus));
	r->status = WEXITSTATUS(wstatus);
}

static void test_data_commands(void **state)
{
	struct run_result r;
	const char *addr = server.address;

	(void)state;
	run_cli(&r, (const char *[]){ "-a", addr, "put", "greeting", "hello world", NULL });
	assert_int_equal(r.status, 0);
	run_cli(&r, (const char *[]){ "-a", addr, "get", "greeting", NULL });
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "hello world\n");
	run_cli(&r, (const char *[]){ "--address", addr, "get", "nope", NULL });
	assert_int_equal(r.status, 1);
	assert_string_equal(r.out, "");
	assert_non_null(strstr(r.err, "not found"));
	run_cli(&r, (const char *[]){ "-a", addr, "del", "greeting", NULL });
	assert_int_equal(r.status, 0);
	run_cli(&r, (const char *[]){ "-a", addr, "get", "greeting", NULL });
	assert_int_equal(r.status, 1);
	/* A value starting with '-' is a value, not an option. */
	run_cli(&r, (const char *[]){ "-a", addr, "put", "k", "-v", NULL });
	assert_int_equal(r.status, 0);
	run_cli(&r, (const char *[]){ "-a", addr, "get", "k", NULL });
	assert_string_equal(r.out, "-v\n");
	/* The server refuses an empty key: another error, exit 2. */
	run_cli(&r, (const char *[]){ "-a", addr, "put", "", "v", NULL });
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "INVALID_ARGUMENT"));
}

static void test_scan(void **state)
{
	struct run_result r;
	const char *addr = server.address;
	static const char *const keys[] = { "s/4", "s/1", "s/3", "s/2", "s/5", "t/1" };

	(void)state;
	for (size_t i = 0; i < 6; i++) {
		run_cli(&r, (const char *[]){ "-a", addr, "put", keys[i], keys[i] + 2, NULL });
		assert_int_equal(r.status, 0);
	}
	/* Bytes that would break a line are escaped. */
	run_cli(&r, (const char *[]){ "-a", addr, "put", "s/9\ttab", "a\\b\nc\x01", NULL });
	assert_int_equal(r.status, 0);

	/* Five pairs of s/: the fake answers three at a time, so this pages. */
	run_cli(&r, (const char *[]){ "-a", addr, "scan", "s/", "s/~", NULL });
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "s/1\t1\ns/2\t2\ns/3\t3\ns/4\t4\ns/5\t5\n"
				   "s/9\\x09tab\ta\\x5cb\\x0ac\\x01\n");
	run_cli(&r, (const char *[]){ "-a", addr, "scan", "s/2", "s/5", NULL });
	assert_string_equal(r.out, "s/2\t2\ns/3\t3\ns/4\t4\n");
	/* --limit anywhere after the command, both spellings. */
	run_cli(&r, (const char *[]){ "-a", addr, "scan", "--limit", "4", "s/", "", NULL });
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "s/1\t1\ns/2\t2\ns/3\t3\ns/4\t4\n");
	run_cli(&r, (const char *[]){ "-a", addr, "scan", "s/5", "", "--limit=2", NULL });
	assert_string_equal(r.out, "s/5\t5\ns/9\\x09tab\ta\\x5cb\\x0ac\\x01\n");
	/* Empty END: to the end of the key space. */
	run_cli(&r, (const char *[]){ "-a", addr, "scan", "t", "", NULL });
	assert_string_equal(r.out, "t/1\t1\n");
	run_cli(&r, (const char *[]){ "-a", addr, "scan", "u", "", NULL });
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "");
	/* Usage errors. */
	run_cli(&r, (const char *[]){ "-a", addr, "scan", "s/", NULL });
	assert_int_equal(r.status, 2);
	run_cli(&r, (const char *[]){ "-a", addr, "scan", "s/", "", "--limit", "x", NULL });
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "--limit"));
	run_cli(&r, (const char *[]){ "-a", addr, "scan", "s/", "", "--limit", NULL });
	assert_int_equal(r.status, 2);
	for (size_t i = 0; i < 6; i++)
		run_cli(&r, (const char *[]){ "-a", addr, "del", keys[i], NULL });
	run_cli(&r, (const char *[]){ "-a", addr, "del", "s/9\ttab", NULL });
}

static void test_usage(void **state)
{
	struct run_result r;

	(void)state;
	run_cli(&r, (const char *[]){ "--help", NULL });
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "usage:"));
	run_cli(&r, (const char *[]){ NULL });
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "usage:"));
	run_cli(&r, (const char *[]){ "frob", NULL });
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "unknown command"));
	run_cli(&r, (const char *[]){ "get", NULL });
	assert_int_equal(r.status, 2);
	run_cli(&r, (const char *[]){ "put", "k", NULL });
	assert_int_equal(r.status, 2);
	run_cli(&r, (const char *[]){ "-x", "get", "k", NULL });
	assert_int_equal(r.status, 2);
	run_cli(&r, (const char *[]){ "-a", "no-port", "get", "k", NULL });
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "HOST:PORT"));
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
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_commands),
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_usage),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH-TO-ringkv\n", argv[0]);
		return 2;
	}
	cli_path = argv[1];
	return cmocka_run_group_tests(tests, setup, teardown);
}
