/* Process and directory helpers for integration tests; see harness.h. */
#include "harness.h"

#include "tools/libringkv.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRACKED 16

static pid_t tracked[MAX_TRACKED];
static void (*cleanup_hook)(void);
static char dirs[4][256];
static unsigned ndirs;

static void track(pid_t pid)
{
	for (unsigned i = 0; i < MAX_TRACKED; i++)
		if (tracked[i] == 0) {
			tracked[i] = pid;
			return;
		}
}

static void untrack(pid_t pid)
{
	for (unsigned i = 0; i < MAX_TRACKED; i++)
		if (tracked[i] == pid)
			tracked[i] = 0;
}

void harness_cleanup(void)
{
	for (unsigned i = 0; i < MAX_TRACKED; i++)
		if (tracked[i] > 0) {
			kill(tracked[i], SIGKILL);
			waitpid(tracked[i], NULL, 0);
			tracked[i] = 0;
		}
	if (cleanup_hook) {
		void (*fn)(void) = cleanup_hook;

		cleanup_hook = NULL;
		fn();
	}
	for (unsigned i = 0; i < ndirs; i++) {
		char cmd[300];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dirs[i]);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dirs[i]);
	}
	ndirs = 0;
}

void harness_at_cleanup(void (*fn)(void))
{
	cleanup_hook = fn;
}

const char *harness_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *d;

	if (ndirs == 4)
		return NULL;
	snprintf(dirs[ndirs], sizeof dirs[ndirs], "%s/ringkv-test-XXXXXX",
		 base && *base ? base : "/tmp");
	d = mkdtemp(dirs[ndirs]);
	if (!d)
		return NULL;
	return dirs[ndirs++];
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int server_start(struct server *s, const char *binary, const char *const *args)
{
	const char *argv[32];
	char line[512];
	size_t used = 0;
	int pipefd[2];
	unsigned n = 0;
	long deadline;
	pid_t pid;

	argv[n++] = binary;
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	for (unsigned i = 0; args && args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (pipe(pipefd) != 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (s->stderr_path) {
			int efd = open(s->stderr_path, O_WRONLY | O_CREAT | O_APPEND, 0600);

			if (efd >= 0) {
				dup2(efd, STDERR_FILENO);
				close(efd);
			}
		}
		dup2(pipefd[1], STDOUT_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		execv(binary, (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	track(pid);
	s->pid = pid;
	deadline = now_ms() + 15000;
	while (now_ms() < deadline) {
		struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
		char *p;
		ssize_t r;

		if (poll(&pfd, 1, 200) <= 0)
			continue;
		r = read(pipefd[0], line + used, sizeof line - 1 - used);
		if (r <= 0)
			break;
		used += (size_t)r;
		line[used] = '\0';
		p = strstr(line, "listening on 127.0.0.1:");
		if (p && strchr(p, '\n')) {
			s->port = atoi(p + strlen("listening on 127.0.0.1:"));
			snprintf(s->addr, sizeof s->addr, "127.0.0.1:%d", s->port);
			/* Keep the pipe open in a detached reader? The server
			 * writes only at start-up, so closing is safe. */
			close(pipefd[0]);
			return 0;
		}
		if (used >= sizeof line - 1)
			break;
	}
	close(pipefd[0]);
	server_stop(s, SIGKILL, 5000);
	return -1;
}

int server_stop(struct server *s, int sig, int timeout_ms)
{
	long deadline = now_ms() + timeout_ms;
	int status;

	if (s->pid <= 0)
		return -1;
	kill(s->pid, sig);
	while (now_ms() < deadline) {
		pid_t r = waitpid(s->pid, &status, WNOHANG);
		if (r == s->pid) {
			untrack(s->pid);
			s->pid = 0;
			return status;
		}
		usleep(10000);
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	untrack(s->pid);
	s->pid = 0;
	return -1;
}

int run_capture(const char *binary, const char *const *args, char *buf, size_t len)
{
	const char *argv[32];
	int pipefd[2], status;
	unsigned n = 0;
	size_t used = 0;
	long deadline;
	pid_t pid;

	argv[n++] = binary;
	for (unsigned i = 0; args && args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (pipe(pipefd) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(pipefd[1], STDERR_FILENO);
		dup2(pipefd[1], STDOUT_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		execv(binary, (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	track(pid);
	deadline = now_ms() + 15000;
	for (;;) {
		struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
		ssize_t r;

		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		r = read(pipefd[0], buf + used, len - 1 - used);
		if (r <= 0)
			break;
		used += (size_t)r;
		if (used >= len - 1)
			break;
	}
	buf[used] = '\0';
	close(pipefd[0]);
	waitpid(pid, &status, 0);
	untrack(pid);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

void harness_connect_all(struct rkv_client **c, unsigned n, const char *addr)
{
	char err[256];

	for (unsigned k = 0; k < n; k++)
		CHECK(rkv_connect(addr, &c[k], err, sizeof err) == 0, "connect %s: %s", addr, err);
}

void harness_close_all(struct rkv_client **c, unsigned n)
{
	for (unsigned k = 0; k < n; k++)
		rkv_close(c[k]);
}
