/* Process and directory helpers for integration tests; see harness.h. */
#include "harness.h"

#include "tools/libringkv.h"

#include <assert.h>
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

		if (getenv("RINGKV_TEST_KEEP")) {
			/* Debugging a failure: the nodes' logs and data stay. */
			fprintf(stderr, "kept %s (RINGKV_TEST_KEEP)\n", dirs[i]);
			continue;
		}
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

long harness_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

void harness_sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * Forks and runs `binary` with the words of `pre` (NULL-terminated, may be
 * NULL) and then those of `args` (likewise; 31 words in all at most). Its
 * stdout goes to a pipe whose read end is returned in *fd; so does its
 * stderr when capture_stderr, else it goes to stderr_path (appended) when
 * that is not NULL, or stays ours. The child is tracked (harness_cleanup
 * kills it). Returns its pid, or -1.
 */
static pid_t spawn(const char *binary, const char *const *pre, const char *const *args,
		   bool capture_stderr, const char *stderr_path, int *fd)
{
	const char *argv[32];
	int pipefd[2];
	unsigned n = 0;
	pid_t pid;

	argv[n++] = binary;
	for (unsigned i = 0; pre && pre[i] && n < 31; i++)
		argv[n++] = pre[i];
	for (unsigned i = 0; args && args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (pipe(pipefd) != 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return -1;
	}
	if (pid == 0) {
		if (capture_stderr) {
			dup2(pipefd[1], STDERR_FILENO);
		} else if (stderr_path) {
			int efd = open(stderr_path, O_WRONLY | O_CREAT | O_APPEND, 0600);

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
	*fd = pipefd[0];
	return pid;
}

int server_start(struct server *s, const char *binary, const char *const *args)
{
	static const char *const listen_any[] = { "--listen", "127.0.0.1:0", NULL };
	char line[512];
	size_t used = 0;
	int out_fd;
	long deadline;
	pid_t pid;

	pid = spawn(binary, listen_any, args, false, s->stderr_path, &out_fd);
	if (pid < 0)
		return -1;
	s->pid = pid;
	deadline = harness_now_ms() + 15000;
	while (harness_now_ms() < deadline) {
		struct pollfd pfd = { .fd = out_fd, .events = POLLIN };
		char *p;
		ssize_t r;

		if (poll(&pfd, 1, 200) <= 0)
			continue;
		r = read(out_fd, line + used, sizeof line - 1 - used);
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
			close(out_fd);
			return 0;
		}
		/* Whole lines before it (start-up reports) are dropped, so any
		 * number of them fit; a line longer than the buffer does not. */
		p = strrchr(line, '\n');
		if (p) {
			used = strlen(p + 1);
			memmove(line, p + 1, used + 1);
		}
		if (used >= sizeof line - 1)
			break;
	}
	close(out_fd);
	server_stop(s, SIGKILL, 5000);
	return -1;
}

int server_stop(struct server *s, int sig, int timeout_ms)
{
	long deadline = harness_now_ms() + timeout_ms;
	int status;

	if (s->pid <= 0)
		return -1;
	kill(s->pid, sig);
	while (harness_now_ms() < deadline) {
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

void server_stop_clean(struct server *s, int timeout_ms, const char *what)
{
	int status = server_stop(s, SIGTERM, timeout_ms);

	CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "%s should stop cleanly on SIGTERM (status %d)", what, status);
}

int run_capture(const char *binary, const char *const *args, char *buf, size_t len)
{
	int out_fd, status;
	size_t used = 0;
	long deadline;
	pid_t pid;

	pid = spawn(binary, NULL, args, true, NULL, &out_fd);
	if (pid < 0)
		return -1;
	deadline = harness_now_ms() + 15000;
	for (;;) {
		struct pollfd pfd = { .fd = out_fd, .events = POLLIN };
		ssize_t r;

		if (harness_now_ms() > deadline) {
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		r = read(out_fd, buf + used, len - 1 - used);
		if (r <= 0)
			break;
		used += (size_t)r;
		if (used >= len - 1)
			break;
	}
	buf[used] = '\0';
	close(out_fd);
	waitpid(pid, &status, 0);
	untrack(pid);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

int run_capture_echo(const char *binary, const char *const *args, char *buf, size_t len)
{
	const char *name = strrchr(binary, '/');
	int rc = run_capture(binary, args, buf, len);

	printf("$ %s", name ? name + 1 : binary);
	for (unsigned i = 0; args[i]; i++)
		printf(" %s", args[i]);
	printf(" -> %d\n%s", rc, buf);
	return rc;
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

/* ---- a cluster of ringkvd nodes ---------------------------------------------- */

void cluster_init(struct cluster *c, const char *binary, unsigned count,
		  const char *host_prefix, unsigned port)
{
	size_t used = 0;

	CHECK(count >= 1 && count <= CLUSTER_MAX_NODES, "%u nodes", count);
	memset(c, 0, sizeof *c);
	c->binary = binary;
	c->count = count;
	c->connect_timeout_ms = 2000;
	c->request_timeout_ms = 3000;
	c->base_dir = harness_tmpdir();
	CHECK(c->base_dir, "mkdtemp");
	for (unsigned i = 0; i < count; i++) {
		struct cluster_node *n = &c->nodes[i];

		snprintf(n->id, sizeof n->id, "%u", i + 1);
		snprintf(n->peer, sizeof n->peer, "%s%u:%u", host_prefix, i + 1, port);
		snprintf(n->dir, sizeof n->dir, "%s/node%u", c->base_dir, i + 1);
		used += (size_t)snprintf(c->initial + used, sizeof c->initial - used, "%s%u=%s",
					 i ? "," : "", i + 1, n->peer);
		CHECK(used < sizeof c->initial, "--initial-cluster too long");
	}
}

void cluster_keep_logs(struct cluster *c, const char *dir)
{
	for (unsigned i = 0; i < c->count; i++) {
		struct cluster_node *n = &c->nodes[i];

		snprintf(n->log, sizeof n->log, "%s/node%u.log", dir ? dir : c->base_dir, i + 1);
		n->srv.stderr_path = n->log;
	}
}

void cluster_start(struct cluster *c, unsigned i)
{
	struct cluster_node *n = &c->nodes[i];
	const char *args[40];
	unsigned k = 0;

	assert(i < c->count && !n->up);
	args[k++] = "--node-id";
	args[k++] = n->id;
	args[k++] = "--initial-cluster";
	args[k++] = c->initial;
	args[k++] = "--data-dir";
	args[k++] = n->dir;
	for (unsigned j = 0; c->args && c->args[j]; j++, k++) {
		CHECK(k < 28, "node %u: too many flags for server_start", i + 1);
		args[k] = c->args[j];
	}
	for (unsigned j = 0; n->args[j]; j++, k++) {
		CHECK(k < 28, "node %u: too many flags for server_start", i + 1);
		args[k] = n->args[j];
	}
	args[k] = NULL;
	CHECK(server_start(&n->srv, c->binary, args) == 0, "node %u did not start%s%s", i + 1,
	      n->log[0] ? " (see " : "", n->log[0] ? n->log : "");
	n->up = true;
}

void cluster_start_all(struct cluster *c)
{
	for (unsigned i = 0; i < c->count; i++)
		cluster_start(c, i);
}

void cluster_kill(struct cluster *c, unsigned i)
{
	cluster_drop_client(c, i);
	CHECK(server_stop(&c->nodes[i].srv, SIGKILL, 10000) != -1, "kill -9 node %u", i + 1);
	c->nodes[i].up = false;
}

void cluster_stop(struct cluster *c, unsigned i, int timeout_ms)
{
	struct cluster_node *n = &c->nodes[i];
	char what[700];

	cluster_drop_client(c, i);
	snprintf(what, sizeof what, "node %u%s%s%s", i + 1, n->log[0] ? " (see " : "", n->log,
		 n->log[0] ? ")" : "");
	n->up = false;
	server_stop_clean(&n->srv, timeout_ms, what);
}

void cluster_stop_all(struct cluster *c, int timeout_ms)
{
	for (unsigned i = 0; i < c->count; i++)
		if (c->nodes[i].up)
			cluster_stop(c, i, timeout_ms);
}

struct rkv_client *cluster_client(struct cluster *c, unsigned i)
{
	struct cluster_node *n = &c->nodes[i];
	char err[256];

	if (!n->up)
		return NULL;
	if (!n->client) {
		if (rkv_connect_timeout(n->srv.addr, c->connect_timeout_ms, &n->client, err,
					sizeof err) != 0) {
			n->client = NULL;
			return NULL;
		}
		rkv_set_timeout(n->client, c->request_timeout_ms);
	}
	return n->client;
}

void cluster_drop_client(struct cluster *c, unsigned i)
{
	if (c->nodes[i].client) {
		rkv_close(c->nodes[i].client);
		c->nodes[i].client = NULL;
	}
}

/* Every shard has a leader and every node's client address is known. */
static bool all_led(const struct rkv_cluster_map *m)
{
	for (size_t s = 0; s < m->shard_count; s++)
		if (m->shards[s].leader == 0)
			return false;
	for (size_t i = 0; i < m->node_count; i++)
		if (!m->nodes[i].client[0])
			return false;
	return true;
}

struct rkv_cluster_map *cluster_wait_leaders(struct cluster *c, unsigned i, long within_ms)
{
	long deadline = harness_now_ms() + within_ms;

	while (harness_now_ms() < deadline) {
		struct rkv_cluster_map *m = NULL;
		struct rkv_client *client;
		char err[256];

		/* A fresh connection each time: the node may just have started. */
		if (rkv_connect_timeout(c->nodes[i].srv.addr, 2000, &client, err, sizeof err) == 0) {
			rkv_set_timeout(client, 3000);
			if (rkv_cluster_map(client, &m) != 0)
				m = NULL;
			rkv_close(client);
		}
		if (m && all_led(m))
			return m;
		rkv_cluster_map_free(m);
		harness_sleep_ms(100);
	}
	return NULL;
}

unsigned harness_lines_with(const char *path, const char *what)
{
	char line[4096];
	unsigned n = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		n += strstr(line, what) != NULL;
	fclose(f);
	return n;
}
