/*
 * `ringkv node health`; see tools/node_health.h.
 *
 * The answers are the node's bytes off the network: they are only ever
 * read within the buffer that holds them (NUL-terminated), a field that is
 * missing or malformed is left out, and every string printed again is
 * escaped. Nothing here trusts the body to be valid JSON.
 */
#include "tools/node_health.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "core/errors.h"
#include "tools/cli_json.h"
#include "tools/libringkv_private.h"

#define ANSWER_MAX 8192        /* /health and /ready bodies are far smaller */
#define REASONS_MAX 8
#define REASON_LEN 160

/* One HTTP exchange's outcome. */
struct http_answer {
	int status;                /* HTTP status, 0 before one was read */
	const char *body;          /* into buf, NUL-terminated */
	char buf[ANSWER_MAX + 1];
};

/* What /ready said, picked out of its body. */
struct readiness {
	int status;                /* 200 or 503 */
	unsigned n_reasons;
	char reasons[REASONS_MAX][REASON_LEN];
};

/* The numbers /ready and /health may carry, printed again when present. */
static const char *const number_fields[] = {
	"node_id", "shards", "cores", "leaderless_replicas", "apply_stopped_replicas",
	"disk_full_shards", "peer_connections", "peer_connections_up",
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left before `deadline` for poll(): -1 without a deadline. */
static int left_ms(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - now_ms();
	return left > 0 ? (int)left : 0;
}

/* HOST:PORT or [V6]:PORT into host and port. 0 or -EINVAL. */
static int split_address(const char *address, char *host, size_t hostlen, char *port,
			 size_t portlen)
{
	const char *colon = strrchr(address, ':');
	const char *start = address, *end = colon;

	if (!colon || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
	    strlen(colon + 1) >= portlen)
		return -EINVAL;
	if (address[0] == '[') {
		if (colon == address || colon[-1] != ']')
			return -EINVAL;
		start = address + 1;
		end = colon - 1;
	}
	if (end <= start || (size_t)(end - start) >= hostlen)
		return -EINVAL;
	memcpy(host, start, (size_t)(end - start));
	host[end - start] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

/* Waits until fd is ready for `events`; 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int rv;

	do
		rv = poll(&p, 1, left_ms(deadline));
	while (rv < 0 && errno == EINTR);
	if (rv < 0)
		return -errno;
	return rv == 0 ? -ETIMEDOUT : 0;
}

static int connect_to(const char *host, const char *port, int64_t deadline, char *err,
		      size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	socklen_t len = sizeof(int);
	int fd, rv, soerr = 0;

	rv = getaddrinfo(host, port, &hints, &ai);
	if (rv) {
		snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rv));
		return -EHOSTUNREACH;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rv = -errno;
		goto err;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		if (errno != EINPROGRESS) {
			rv = -errno;
			goto err_after_socket;
		}
		rv = wait_fd(fd, POLLOUT, deadline);
		if (rv)
			goto err_after_socket;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr) {
			rv = soerr ? -soerr : -errno;
			goto err_after_socket;
		}
	}
	freeaddrinfo(ai);
	return fd;

err_after_socket:
	close(fd);
err:
	freeaddrinfo(ai);
	snprintf(err, errlen, "cannot connect to %s:%s: %s", host, port,
		 rv == -ETIMEDOUT ? "timed out" : strerror(-rv));
	return rv;
}

/*
 * One send or receive on the connection, through TLS when `ssl` is set
 * (--tls-ca or RINGKV_TLS_CA: a node with --tls-cert serves its admin port
 * over TLS only). Bytes moved (> 0), 0 at the end of the answer (receive),
 * or a negative code with the reason in err; waits for the socket until
 * `deadline`.
 */
static ssize_t exchange(int fd, SSL *ssl, bool out, void *buf, size_t len, int64_t deadline,
			char *err, size_t errlen)
{
	for (;;) {
		ssize_t n;
		int rv, ev;

		if (ssl) {
			int r = out ? SSL_write(ssl, buf, (int)len) : SSL_read(ssl, buf, (int)len);

			if (r > 0)
				return r;
			rv = libringkv_tls_wants(ssl, r, err, errlen);
			if (rv == RKV_ECLOSED && !out)
				return 0;
			if (rv < 0)
				return rv;
			ev = rv == LIBRINGKV_TLS_WANT_READ ? POLLIN : POLLOUT;
		} else {
			n = out ? send(fd, buf, len, MSG_NOSIGNAL) : recv(fd, buf, len, 0);
			if (n >= 0)
				return n;
			if (errno != EAGAIN && errno != EINTR)
				return -errno;
			ev = out ? POLLOUT : POLLIN;
		}
		rv = wait_fd(fd, (short)ev, deadline);
		if (rv)
			return rv;
	}
}

/* GET path; the whole answer (up to ANSWER_MAX bytes) into *a. 0,
 * -ETIMEDOUT, or another negative errno with the reason in err. */
static int http_get(const char *host, const char *port, const char *path, int64_t deadline,
		    struct http_answer *a, char *err, size_t errlen)
{
	char request[512];
	size_t len = 0, sent = 0;
	int fd, rv = 0, n;
	char *head_end;
	SSL *ssl = NULL;
	ssize_t r;

	a->status = 0;
	a->body = "";
	err[0] = '\0';
	fd = connect_to(host, port, deadline, err, errlen);
	if (fd < 0)
		return fd;
	rv = libringkv_tls_new(fd, host, &ssl, err, errlen);
	if (rv)
		goto err;
	n = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s\r\n"
		     "Connection: close\r\n\r\n", path, host);
	while (sent < (size_t)n) {
		r = exchange(fd, ssl, true, request + sent, (size_t)n - sent, deadline, err,
			     errlen);
		if (r < 0) {
			rv = (int)r;
			goto err;
		}
		sent += (size_t)r;
	}
	while (len < ANSWER_MAX) {
		r = exchange(fd, ssl, false, a->buf + len, ANSWER_MAX - len, deadline, err, errlen);
		if (r < 0) {
			rv = (int)r;
			goto err;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	SSL_free(ssl);
	close(fd);
	a->buf[len] = '\0';
	head_end = strstr(a->buf, "\r\n\r\n");
	if (sscanf(a->buf, "HTTP/1.%*[01] %3d", &a->status) != 1 || !head_end) {
		snprintf(err, errlen, "%s:%s%s: not an HTTP answer (is it the admin port?)", host,
			 port, path);
		a->status = 0;
		return -EPROTO;
	}
	a->body = head_end + 4;
	return 0;

err:
	SSL_free(ssl);
	close(fd);
	if (err[0] && rv != -ETIMEDOUT) { /* TLS said why (a refused certificate...) */
		char why[256];

		snprintf(why, sizeof why, "%s", err);
		snprintf(err, errlen, "%s:%s%s: %s", host, port, path, why);
	} else {
		snprintf(err, errlen, "%s:%s%s: %s", host, port, path,
			 rv == -ETIMEDOUT ? "timed out" : strerror(-rv));
	}
	return rv;
}

/* The unsigned number after "key": in body, or -1. */
static long long number_field(const char *body, const char *key)
{
	char pattern[48];
	const char *p;
	char *end;
	unsigned long long v;

	snprintf(pattern, sizeof pattern, "\"%s\":", key);
	p = strstr(body, pattern);
	if (!p)
		return -1;
	p += strlen(pattern);
	if (*p < '0' || *p > '9')
		return -1;
	errno = 0;
	v = strtoull(p, &end, 10);
	return errno || v > INT64_MAX ? -1 : (long long)v;
}

/* Copies the JSON string starting at p (after its opening quote) into out,
 * escapes dropped; returns the byte after its closing quote, or NULL. */
static const char *take_string(const char *p, char *out, size_t outlen)
{
	size_t n = 0;

	for (; *p && *p != '"'; p++) {
		if (*p == '\\' && p[1])
			p++;
		if (n + 1 < outlen)
			out[n++] = *p;
	}
	out[n] = '\0';
	return *p == '"' ? p + 1 : NULL;
}

/* The reasons of a 503 body: the "reasons" array, else the one "reason"
 * (the first version of /ready had only that). */
static void take_reasons(const char *body, struct readiness *rd)
{
	const char *p = strstr(body, "\"reasons\":[");

	rd->n_reasons = 0;
	if (p) {
		p += strlen("\"reasons\":[");
		while (p && *p == '"' && rd->n_reasons < REASONS_MAX) {
			p = take_string(p + 1, rd->reasons[rd->n_reasons], REASON_LEN);
			if (p)
				rd->n_reasons++;
			if (p && *p == ',')
				p++;
		}
	}
	if (rd->n_reasons == 0 && (p = strstr(body, "\"reason\":\"")) != NULL &&
	    take_string(p + strlen("\"reason\":\""), rd->reasons[0], REASON_LEN))
		rd->n_reasons = 1;
	if (rd->n_reasons == 0) {
		snprintf(rd->reasons[0], REASON_LEN, "the node gave no reason");
		rd->n_reasons = 1;
	}
}

static void print_json(const char *address, bool alive, const struct readiness *rd,
		       const char *health_body, const char *ready_body, const char *error)
{
	fputs("{\"address\":", stdout);
	cli_json_string(stdout, address);
	printf(",\"alive\":%s,\"ready\":%s", alive ? "true" : "false",
	       rd && rd->status == 200 ? "true" : "false");
	if (rd && rd->status != 200) {
		fputs(",\"reasons\":[", stdout);
		for (unsigned i = 0; i < rd->n_reasons; i++) {
			if (i)
				putchar(',');
			cli_json_string(stdout, rd->reasons[i]);
		}
		putchar(']');
	}
	for (size_t i = 0; i < sizeof number_fields / sizeof number_fields[0]; i++) {
		long long v = ready_body ? number_field(ready_body, number_fields[i]) : -1;

		if (v < 0 && health_body)
			v = number_field(health_body, number_fields[i]);
		if (v >= 0)
			printf(",\"%s\":%lld", number_fields[i], v);
	}
	if (error) {
		fputs(",\"error\":", stdout);
		cli_json_string(stdout, error);
	}
	puts("}");
}

static void print_text(const char *address, const struct readiness *rd, const char *ready_body,
		       const char *health_body)
{
	long long node = number_field(health_body, "node_id");
	long long shards = number_field(ready_body, "shards");
	long long cores = number_field(ready_body, "cores");

	if (node >= 0)
		printf("node %lld at %s: alive, ", node, address);
	else
		printf("node at %s: alive, ", address);
	if (rd->status == 200) {
		printf("ready");
		if (shards >= 0 && cores >= 0)
			printf(" (%lld shard%s on %lld core%s)", shards, shards == 1 ? "" : "s",
			       cores, cores == 1 ? "" : "s");
		putchar('\n');
		return;
	}
	printf("NOT ready:\n");
	for (unsigned i = 0; i < rd->n_reasons; i++)
		printf("  - %s\n", rd->reasons[i]);
	if (number_field(ready_body, "leaderless_replicas") > 0)
		printf("  (which shards: ringkv cluster status)\n");
}

enum node_health_result node_health_run(const char *address, int timeout_ms, bool json)
{
	static struct http_answer health, ready;
	int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : -1;
	struct readiness rd = { 0 };
	char host[256], port[8], err[512];
	int rv;

	if (split_address(address, host, sizeof host, port, sizeof port) != 0) {
		fprintf(stderr, "ringkv: node health: --admin takes HOST:PORT, not '%s' "
			"(see ringkv --help)\n", address);
		return NODE_HEALTH_BAD_ADDRESS;
	}
	rv = http_get(host, port, "/health", deadline, &health, err, sizeof err);
	if (rv == 0 && health.status != 200) {
		snprintf(err, sizeof err, "%s/health answered HTTP %d", address, health.status);
		rv = -EPROTO;
	}
	if (rv == 0)
		rv = http_get(host, port, "/ready", deadline, &ready, err, sizeof err);
	if (rv == 0 && ready.status != 200 && ready.status != 503) {
		snprintf(err, sizeof err, "%s/ready answered HTTP %d", address, ready.status);
		rv = -EPROTO;
	}
	if (rv != 0) {
		fprintf(stderr, "ringkv: node health: %s\n", err);
		if (json)
			print_json(address, health.status == 200, NULL, NULL, NULL, err);
		return rv == -ETIMEDOUT ? NODE_HEALTH_TIMEOUT : NODE_HEALTH_UNREACHABLE;
	}
	rd.status = ready.status;
	if (rd.status != 200)
		take_reasons(ready.body, &rd);
	if (json)
		print_json(address, true, &rd, health.body, ready.body, NULL);
	else
		print_text(address, &rd, ready.body, health.body);
	return rd.status == 200 ? NODE_HEALTH_READY : NODE_HEALTH_NOT_READY;
}
