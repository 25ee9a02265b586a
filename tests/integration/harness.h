/*
 * Helpers for integration tests that run real ringkvd processes on
 * 127.0.0.1: start one on an ephemeral port, stop it (signal + wait with a
 * deadline), temporary data directories. Every process a test starts, the
 * harness stops, also when a check fails (CHECK exits through the cleanup).
 */
#ifndef RINGKV_TESTS_HARNESS_H
#define RINGKV_TESTS_HARNESS_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

struct server {
	pid_t pid;
	int port;
	char addr[64];   /* "127.0.0.1:PORT" */
	const char *stderr_path; /* set before server_start: its stderr goes
				  * to this file (appended) instead of ours */
};

struct rkv_client;

/* Opens `n` client connections to `addr`; any failure fails the test. */
void harness_connect_all(struct rkv_client **c, unsigned n, const char *addr);
void harness_close_all(struct rkv_client **c, unsigned n);

/* Kills every server still running, runs the hook of harness_at_cleanup
 * (if any), and removes registered directories. */
void harness_cleanup(void);

/* A function harness_cleanup runs once servers are dead and before it
 * removes directories (e.g. to unmount a file system inside one). */
void harness_at_cleanup(void (*fn)(void));

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                          \
			fprintf(stderr, "\n");                                 \
			harness_cleanup();                                     \
			exit(1);                                               \
		}                                                              \
	} while (0)

/* mkdtemp under $TMPDIR or /tmp, removed by harness_cleanup. */
const char *harness_tmpdir(void);

/*
 * Starts `binary` with `args` (NULL-terminated, after argv[0]) plus
 * --listen 127.0.0.1:0, waits up to 15 s for its "listening on" line.
 * Returns 0, or -1 when it exited or never said it listens (its output
 * goes to stderr as usual).
 */
int server_start(struct server *s, const char *binary, const char *const *args);

/* Sends `sig`, waits up to `timeout_ms`; returns the exit status as
 * waitpid reports it, or -1 on timeout (then it is SIGKILLed). */
int server_stop(struct server *s, int sig, int timeout_ms);

/* Runs `binary` with args to completion (timeout 15 s), returns its exit
 * code (or 128+signal), capturing stderr into buf. */
int run_capture(const char *binary, const char *const *args, char *buf, size_t len);

#endif
