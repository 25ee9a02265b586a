/*
 * libringkv: one blocking TCP connection speaking the frame protocol of
 * proto/frame.h.
 *
 * Requests are encoded straight into a send buffer and leave it on
 * rkv_flush (or when it grows past SEND_AUTOFLUSH). Responses are read into
 * a receive buffer and handed out as slices of it; the frame a result points
 * into is released at the start of the next call, which is why results stay
 * valid exactly until then.
 *
 * Pipelining over one blocking socket can deadlock: the client blocks
 * writing requests while the server blocks writing answers nobody reads. So
 * rkv_flush writes with MSG_DONTWAIT and, when the socket is full, polls for
 * both directions and drains incoming answers into the receive buffer.
 *
 * A transport failure is sticky: it is stored in `failed` and every later
 * call returns it. Caller mistakes (a request too large to frame, rkv_recv
 * with nothing in flight) return an error but leave the connection usable.
 *
 * Timeouts: every wait (connect, a full socket, an answer) is a poll() with
 * what is left of a deadline set when the public call began, so a server
 * that accepts and never answers costs a caller at most its timeout. A
 * timed-out request is a transport failure like any other: its answer may
 * still come, and the connection can no longer pair answers with calls.
 *
 * TLS (rkv_tls_set_ca, RINGKV_TLS_CA; tools/libringkv_tls.c): the socket is
 * non-blocking and every read and write goes through OpenSSL; a wait for
 * the socket is the same poll() with the same deadline, for whichever
 * direction OpenSSL asks.
 */
#include "tools/libringkv.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/errors.h"
#include "proto/frame.h"
#include "tools/libringkv_private.h"

#define RECV_INITIAL (64u << 10)
#define SEND_INITIAL (64u << 10)
#define SEND_AUTOFLUSH (1u << 20) /* queued bytes that trigger a flush */
#define ADDRESS_MAX 512
#define NO_DEADLINE INT64_MAX

struct rkv_client {
	int fd;
	SSL *ssl;                   /* TLS state, or NULL for plaintext */
	uint64_t next_id;           /* ids start at 1; 0 means "unreadable" */
	uint64_t in_flight;         /* requests queued or sent, not yet answered */
	struct frame_limits limits; /* protocol defaults, applied to both ways */
	int failed;                 /* sticky transport error, or 0 */
	int timeout_ms;             /* per public call; 0 = wait forever */
	int64_t deadline_ms;        /* of the call in progress, or NO_DEADLINE */
	bool no_forward;            /* mark requests queued now no_forward */
	bool stale;                 /* mark GETs queued now stale */
	const struct frame_backup_req *backup; /* the BACKUP request being queued */
	const struct frame_move_req *move;     /* the SHARD_MOVE request being queued */

	uint8_t *send_buf;
	size_t send_len;  /* bytes queued */
	size_t send_done; /* of those, bytes already written */
	size_t send_cap;

	uint8_t *recv_buf;
	size_t recv_start; /* first unconsumed byte */
	size_t recv_end;   /* end of received bytes */
	size_t recv_cap;
	size_t recv_held;  /* bytes of the frame the last result points into */

	struct rkv_kv *pairs; /* the last result's SCAN pairs (into recv_buf) */
	size_t pair_count;
	size_t pair_cap;

	char error[512]; /* last server error text or failure; see rkv_last_error */
};

static const char *const status_names[] = {
	[RKV_STATUS_OK] = "OK",
	[RKV_STATUS_NOT_FOUND] = "NOT_FOUND",
	[RKV_STATUS_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
	[RKV_STATUS_TOO_LARGE] = "TOO_LARGE",
	[RKV_STATUS_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
	[RKV_STATUS_UNAVAILABLE] = "UNAVAILABLE",
	[RKV_STATUS_NOT_LEADER] = "NOT_LEADER",
	[RKV_STATUS_TIMEOUT] = "TIMEOUT",
	[RKV_STATUS_INTERNAL] = "INTERNAL",
	[RKV_STATUS_DATA_LOSS] = "DATA_LOSS",
	[RKV_STATUS_UNKNOWN] = "UNKNOWN",
	[RKV_STATUS_UNAUTHENTICATED] = "UNAUTHENTICATED",
	[RKV_STATUS_PERMISSION_DENIED] = "PERMISSION_DENIED",
};

const char *rkv_status_name(int status)
{
	if (status < 0)
		return rkv_strerror(status);
	if ((size_t)status < sizeof(status_names) / sizeof(status_names[0]))
		return status_names[status];
	return "UNKNOWN_STATUS";
}

__attribute__((format(printf, 3, 4))) static void format_into(char *buf, size_t len,
							      const char *fmt, ...)
{
	va_list ap;

	if (buf == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/*
 * Records a transport failure; the connection is unusable from now on. A
 * reset or broken pipe is the server going away just as a clean close is,
 * so all three report RKV_ECLOSED: callers need one code to reconnect on.
 */
static int fail(struct rkv_client *c, int rc, const char *what)
{
	assert(rc < 0);
	if (rc == -ECONNRESET || rc == -EPIPE)
		rc = RKV_ECLOSED;
	c->failed = rc;
	if (rc == RKV_ECLOSED)
		format_into(c->error, sizeof(c->error), "%s: connection closed by the server",
			    what);
	else
		format_into(c->error, sizeof(c->error), "%s: %s", what, rkv_strerror(rc));
	return rc;
}

/* ---- deadlines ---------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t deadline_after(int timeout_ms)
{
	return timeout_ms > 0 ? now_ms() + timeout_ms : NO_DEADLINE;
}

/*
 * Waits for `events` on fd until `deadline`: poll()'s revents, or 0 when
 * the deadline passed, or -errno.
 */
static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	for (;;) {
		int wait_ms = -1, n;

		if (deadline != NO_DEADLINE) {
			int64_t left = deadline - now_ms();

			if (left <= 0)
				return 0;
			wait_ms = left > INT_MAX ? INT_MAX : (int)left;
		}
		n = poll(&pfd, 1, wait_ms);
		if (n > 0)
			return pfd.revents;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

/* A timeout is sticky too: the late answer would be taken for the next one. */
static int fail_timeout(struct rkv_client *c, const char *what)
{
	c->failed = -ETIMEDOUT;
	format_into(c->error, sizeof(c->error),
		    "%s: no answer from the server within %d ms", what, c->timeout_ms);
	return -ETIMEDOUT;
}

/* ---- connecting -------------------------------------------------------- */

/* Splits "HOST:PORT" or "[V6]:PORT" in place. */
static int split_address(char *addr, char **host, char **port)
{
	char *colon;

	if (addr[0] == '[') {
		char *close = strchr(addr, ']');

		if (close == NULL || close[1] != ':')
			return RKV_EINVAL;
		*close = '\0';
		*host = addr + 1;
		*port = close + 2;
	} else {
		colon = strrchr(addr, ':');
		if (colon == NULL)
			return RKV_EINVAL;
		*colon = '\0';
		*host = addr;
		*port = colon + 1;
		/* An unbracketed IPv6 address is ambiguous. */
		if (strchr(addr, ':'))
			return RKV_EINVAL;
	}
	if (**host == '\0' || **port == '\0')
		return RKV_EINVAL;
	return 0;
}

/* A port is 1 to 65535, in decimal. */
static bool port_valid(const char *port)
{
	unsigned long v;
	char *end;

	if (port[0] < '0' || port[0] > '9')
		return false;
	errno = 0;
	v = strtoul(port, &end, 10);
	return errno == 0 && *end == '\0' && v >= 1 && v <= 65535;
}

static int resolve_error(int gai)
{
	switch (gai) {
	case EAI_SYSTEM:
		return errno ? -errno : -EIO;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_AGAIN:
		return -EAGAIN;
	default:
		return -ENXIO;
	}
}

/*
 * Connects without blocking past `deadline`: a non-blocking connect, a wait
 * for writability, then the outcome from SO_ERROR. The socket is blocking
 * again on success. 0, -ETIMEDOUT or -errno.
 */
static int connect_by(int fd, const struct addrinfo *ai, int64_t deadline)
{
	int flags = fcntl(fd, F_GETFL), soerr = 0, rc;
	socklen_t len = sizeof(soerr);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS)
			return -errno;
		rc = wait_fd(fd, POLLOUT, deadline);
		if (rc == 0)
			return -ETIMEDOUT;
		if (rc < 0)
			return rc;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			return -errno;
		if (soerr != 0)
			return -soerr;
	}
	if (fcntl(fd, F_SETFL, flags) < 0)
		return -errno;
	return 0;
}

/* Connects to the first address that answers; returns the fd or -errno. */
static int connect_any(const struct addrinfo *list, int64_t deadline)
{
	int rc = -ENXIO;

	for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
		int one = 1;
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
				ai->ai_protocol);

		if (fd < 0) {
			rc = -errno;
			continue;
		}
		rc = connect_by(fd, ai, deadline);
		if (rc < 0) {
			close(fd);
			if (rc == -ETIMEDOUT)
				return rc; /* no time left for the other addresses */
			continue;
		}
		/* Requests are small and latency-bound; batching is ours. */
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
			rc = -errno;
			close(fd);
			continue;
		}
		return fd;
	}
	return rc;
}

/*
 * Starts TLS on a connected c->fd when it is on (libringkv_tls.c): the
 * socket becomes non-blocking and the handshake must end by `deadline`.
 * 0, or a negative code with the reason in `err`.
 */
static int tls_start(struct rkv_client *c, const char *host, int64_t deadline,
		     const char *address, int timeout_ms, char *err, size_t errlen)
{
	char why[400] = "";
	int flags, rc;

	rc = libringkv_tls_new(c->fd, host, &c->ssl, err, errlen);
	if (rc < 0 || c->ssl == NULL)
		return rc;
	flags = fcntl(c->fd, F_GETFL);
	if (flags < 0 || fcntl(c->fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		rc = -errno;
		goto err;
	}
	for (;;) {
		int want;

		ERR_clear_error();
		rc = SSL_connect(c->ssl);
		if (rc == 1)
			return 0;
		want = libringkv_tls_wants(c->ssl, rc, why, sizeof(why));
		if (want < 0) {
			rc = want;
			format_into(err, errlen, "cannot connect to %s: %s", address,
				    why[0] ? why : rkv_strerror(rc));
			goto err_reported;
		}
		rc = wait_fd(c->fd, want == LIBRINGKV_TLS_WANT_READ ? POLLIN : POLLOUT, deadline);
		if (rc == 0) {
			format_into(err, errlen, "cannot connect to %s: no TLS handshake within "
				    "%d ms", address, timeout_ms);
			rc = -ETIMEDOUT;
			goto err_reported;
		}
		if (rc < 0)
			goto err;
	}

err:
	format_into(err, errlen, "cannot connect to %s: %s", address, rkv_strerror(rc));
err_reported:
	SSL_free(c->ssl);
	c->ssl = NULL;
	return rc;
}

int rkv_connect(const char *address, struct rkv_client **out, char *err, size_t errlen)
{
	return rkv_connect_timeout(address, RKV_DEFAULT_CONNECT_TIMEOUT_MS, out, err, errlen);
}

int rkv_connect_timeout(const char *address, int timeout_ms, struct rkv_client **out,
			char *err, size_t errlen)
{
	char copy[ADDRESS_MAX], *host, *port;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *list = NULL;
	struct rkv_client *c;
	int64_t deadline;
	int rc, gai;

	assert(out != NULL);
	*out = NULL;
	if (address == NULL || strlen(address) >= sizeof(copy)) {
		format_into(err, errlen, "invalid address");
		return -EINVAL;
	}
	strcpy(copy, address);
	if (split_address(copy, &host, &port) != 0) {
		format_into(err, errlen, "invalid address '%s': expected HOST:PORT",
			    address);
		return -EINVAL;
	}
	if (!port_valid(port)) {
		format_into(err, errlen, "invalid port '%s' in '%s': a port is 1 to 65535",
			    port, address);
		return -EINVAL;
	}
	gai = getaddrinfo(host, port, &hints, &list);
	if (gai != 0) {
		rc = resolve_error(gai);
		format_into(err, errlen, "cannot resolve '%s': %s", address,
			    gai_strerror(gai));
		goto err;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		rc = -ENOMEM;
		format_into(err, errlen, "out of memory");
		goto err_after_resolve;
	}
	deadline = deadline_after(timeout_ms);
	rc = connect_any(list, deadline);
	if (rc == -ETIMEDOUT) {
		format_into(err, errlen, "cannot connect to %s: no answer within %d ms",
			    address, timeout_ms);
		goto err_after_alloc;
	}
	if (rc < 0) {
		format_into(err, errlen, "cannot connect to %s: %s", address,
			    rkv_strerror(rc));
		goto err_after_alloc;
	}
	c->fd = rc;
	rc = tls_start(c, host, deadline, address, timeout_ms, err, errlen);
	if (rc < 0) {
		close(c->fd);
		goto err_after_alloc;
	}
	c->next_id = 1;
	c->deadline_ms = NO_DEADLINE;
	frame_limits_default(&c->limits);
	rc = libringkv_auth(c, address, timeout_ms, err, errlen);
	if (rc < 0) {
		rkv_close(c);
		freeaddrinfo(list);
		return rc;
	}
	freeaddrinfo(list);
	*out = c;
	return 0;

err_after_alloc:
	free(c);
err_after_resolve:
	freeaddrinfo(list);
err:
	assert(rc < 0);
	return rc;
}

void rkv_close(struct rkv_client *c)
{
	if (c == NULL)
		return;
	if (c->ssl) {
		SSL_shutdown(c->ssl); /* close_notify if it fits; no wait */
		SSL_free(c->ssl);
		ERR_clear_error();
	}
	close(c->fd);
	free(c->send_buf);
	free(c->recv_buf);
	free(c->pairs);
	free(c);
}

void rkv_set_timeout(struct rkv_client *c, int timeout_ms)
{
	assert(c != NULL);
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
}

int rkv_get_timeout(const struct rkv_client *c)
{
	assert(c != NULL);
	return c->timeout_ms;
}

const char *rkv_last_error(const struct rkv_client *c)
{
	assert(c != NULL);
	return c->error;
}

/* ---- buffers ----------------------------------------------------------- */

/* Grows *buf to hold at least `need` bytes (doubling); 0 or -ENOMEM. */
static int reserve(uint8_t **buf, size_t *cap, size_t need, size_t initial)
{
	size_t n = *cap ? *cap : initial;
	uint8_t *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n = n > SIZE_MAX / 2 ? need : n * 2;
	p = realloc(*buf, n);
	if (p == NULL)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

/* Drops the frame the previous result pointed into. */
static void release_result(struct rkv_client *c)
{
	c->recv_start += c->recv_held;
	c->recv_held = 0;
	if (c->recv_start == c->recv_end)
		c->recv_start = c->recv_end = 0;
}

/* Makes room for `want` more bytes after recv_end, compacting first. */
static int recv_reserve(struct rkv_client *c, size_t want)
{
	if (c->recv_cap - c->recv_end >= want)
		return 0;
	if (c->recv_start > 0) {
		memmove(c->recv_buf, c->recv_buf + c->recv_start,
			c->recv_end - c->recv_start);
		c->recv_end -= c->recv_start;
		c->recv_start = 0;
		if (c->recv_cap - c->recv_end >= want)
			return 0;
	}
	return reserve(&c->recv_buf, &c->recv_cap, c->recv_end + want, RECV_INITIAL);
}

/*
 * Records a TLS failure `rc` from libringkv_tls_wants (RKV_ECLOSED,
 * RKV_EPROTO with its reason `why`, or -errno) and returns it.
 */
static int tls_fail(struct rkv_client *c, int rc, const char *why, const char *what)
{
	if (rc == RKV_EPROTO) {
		c->failed = rc;
		format_into(c->error, sizeof(c->error), "%s: %s", what, why);
		return rc;
	}
	return fail(c, rc, what);
}

/*
 * recv_some over TLS: decrypts what OpenSSL has, waiting for the socket in
 * whichever direction it asks (a key update may need a write).
 */
static ssize_t tls_recv_some(struct rkv_client *c, int flags)
{
	size_t room = c->recv_cap - c->recv_end;

	for (;;) {
		char why[300] = "";
		int n, want, ready;

		ERR_clear_error();
		n = SSL_read(c->ssl, c->recv_buf + c->recv_end, room > INT_MAX ? INT_MAX : (int)room);
		if (n > 0) {
			c->recv_end += (size_t)n;
			return n;
		}
		want = libringkv_tls_wants(c->ssl, n, why, sizeof(why));
		if (want < 0)
			return tls_fail(c, want, why, "receive");
		if (flags & MSG_DONTWAIT)
			return 0;
		ready = wait_fd(c->fd, want == LIBRINGKV_TLS_WANT_READ ? POLLIN : POLLOUT,
				c->deadline_ms);
		if (ready == 0)
			return fail_timeout(c, "receive");
		if (ready < 0)
			return fail(c, ready, "poll");
	}
}

/*
 * Reads what the socket has (at least `want` bytes of room). Returns the
 * bytes read (> 0), or a failure; `flags` may hold MSG_DONTWAIT, in which
 * case -EAGAIN is not a failure and is returned as 0.
 */
static ssize_t recv_some(struct rkv_client *c, size_t want, int flags)
{
	ssize_t n;
	int rc = recv_reserve(c, want);

	if (rc < 0)
		return fail(c, rc, "receive buffer");
	if (c->ssl)
		return tls_recv_some(c, flags);
	for (;;) {
		if (!(flags & MSG_DONTWAIT) && c->deadline_ms != NO_DEADLINE) {
			int ready = wait_fd(c->fd, POLLIN, c->deadline_ms);

			if (ready == 0)
				return fail_timeout(c, "receive");
			if (ready < 0)
				return fail(c, ready, "poll");
		}
		n = recv(c->fd, c->recv_buf + c->recv_end, c->recv_cap - c->recv_end, flags);
		if (n > 0) {
			c->recv_end += (size_t)n;
			return n;
		}
		if (n == 0)
			return fail(c, RKV_ECLOSED, "receive");
		if (errno == EINTR)
			continue;
		if ((flags & MSG_DONTWAIT) && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return fail(c, -errno, "receive");
	}
}

/* ---- sending ----------------------------------------------------------- */

/* Starts the deadline of a public call, unless one is running already. */
static bool call_begin(struct rkv_client *c)
{
	if (c->deadline_ms != NO_DEADLINE)
		return false;
	c->deadline_ms = deadline_after(c->timeout_ms);
	return true;
}

static void call_end(struct rkv_client *c, bool began)
{
	if (began)
		c->deadline_ms = NO_DEADLINE;
}

/*
 * Writes what it can without waiting: the bytes (>= 0), -EAGAIN when the
 * socket (or OpenSSL) is full, another failure (recorded).
 */
static ssize_t send_some(struct rkv_client *c)
{
	size_t len = c->send_len - c->send_done;
	ssize_t n;

	if (c->ssl) {
		char why[300] = "";
		int w;

		ERR_clear_error();
		w = SSL_write(c->ssl, c->send_buf + c->send_done, len > INT_MAX ? INT_MAX : (int)len);
		if (w > 0)
			return w;
		w = libringkv_tls_wants(c->ssl, w, why, sizeof(why));
		if (w > 0)
			return -EAGAIN;
		return tls_fail(c, w, why, "send");
	}
	n = send(c->fd, c->send_buf + c->send_done, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n >= 0)
		return n;
	if (errno == EINTR)
		return 0;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return -EAGAIN;
	return fail(c, -errno, "send");
}

static int flush_queued(struct rkv_client *c)
{
	while (c->send_done < c->send_len) {
		ssize_t n = send_some(c);
		int revents;

		if (n >= 0) {
			c->send_done += (size_t)n;
			continue;
		}
		if (n != -EAGAIN)
			return (int)n;
		/* Socket full: wait, and read answers meanwhile (see top). */
		revents = wait_fd(c->fd, POLLIN | POLLOUT, c->deadline_ms);
		if (revents == 0)
			return fail_timeout(c, "send");
		if (revents < 0)
			return fail(c, revents, "poll");
		if (revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = recv_some(c, 16u << 10, MSG_DONTWAIT);

			if (r < 0)
				return (int)r;
		}
	}
	c->send_len = c->send_done = 0;
	return 0;
}

int rkv_flush(struct rkv_client *c)
{
	bool began;
	int rc;

	assert(c != NULL);
	if (c->failed)
		return c->failed;
	release_result(c);
	began = call_begin(c);
	rc = flush_queued(c);
	call_end(c, began);
	return rc;
}

/* Encodes `req` (id set here) at the end of the send buffer. */
static int queue_frame(struct rkv_client *c, struct frame_request *req, uint64_t *id)
{
	size_t max;
	int n, rc;

	if (c->send_len >= SEND_AUTOFLUSH) {
		rc = rkv_flush(c);
		if (rc < 0)
			return rc;
	}
	req->id = c->next_id;
	req->no_forward = c->no_forward;
	req->stale = c->stale && req->op == FRAME_OP_GET;
	max = frame_request_max_size(req);
	rc = reserve(&c->send_buf, &c->send_cap, c->send_len + max, SEND_INITIAL);
	if (rc < 0)
		return fail(c, rc, "send buffer");
	n = frame_encode_request(req, c->send_buf + c->send_len, max);
	if (n < 0)
		return fail(c, n, "encode request"); /* max is a true bound */
	if ((size_t)n - FRAME_HEADER_SIZE > c->limits.max_frame) {
		format_into(c->error, sizeof(c->error),
			    "request of %d bytes exceeds the frame limit of %u", n,
			    (unsigned)c->limits.max_frame);
		return RKV_ETOOLARGE;
	}
	c->send_len += (size_t)n;
	c->in_flight++;
	if (id)
		*id = c->next_id;
	c->next_id++;
	return 0;
}

static int queue_request(struct rkv_client *c, enum frame_op op, const void *key,
			 size_t key_len, const void *value, size_t value_len,
			 uint64_t *id)
{
	struct frame_request req;

	assert(c != NULL);
	assert(key != NULL || key_len == 0);
	assert(value != NULL || value_len == 0);
	if (c->failed)
		return c->failed;
	release_result(c);
	if (key_len > c->limits.max_frame || value_len > c->limits.max_frame) {
		format_into(c->error, sizeof(c->error),
			    "request of %zu bytes does not fit a frame",
			    key_len + value_len);
		return RKV_ETOOLARGE;
	}
	req = (struct frame_request){
		.op = op,
		.key = { key, (uint32_t)key_len },
		.value = { value, (uint32_t)value_len },
	};
	if (op == FRAME_OP_BACKUP && c->backup)
		req.backup = *c->backup;
	if (op == FRAME_OP_SHARD_MOVE && c->move)
		req.move = *c->move;
	return queue_frame(c, &req, id);
}

int rkv_send_get(struct rkv_client *c, const void *key, size_t key_len, uint64_t *id)
{
	return queue_request(c, FRAME_OP_GET, key, key_len, NULL, 0, id);
}

int rkv_send_put(struct rkv_client *c, const void *key, size_t key_len,
		 const void *value, size_t value_len, uint64_t *id)
{
	return queue_request(c, FRAME_OP_PUT, key, key_len, value, value_len, id);
}

int rkv_send_del(struct rkv_client *c, const void *key, size_t key_len, uint64_t *id)
{
	return queue_request(c, FRAME_OP_DELETE, key, key_len, NULL, 0, id);
}

int rkv_send_scan(struct rkv_client *c, const void *start, size_t start_len,
		  const void *end, size_t end_len, uint32_t limit, uint64_t *id)
{
	struct frame_request req;

	assert(c != NULL);
	assert(start != NULL || start_len == 0);
	assert(end != NULL || end_len == 0);
	if (c->failed)
		return c->failed;
	release_result(c);
	if (start_len > c->limits.max_key || end_len > c->limits.max_key) {
		format_into(c->error, sizeof(c->error),
			    "scan bound of %zu bytes exceeds the key limit of %u",
			    start_len > end_len ? start_len : end_len,
			    (unsigned)c->limits.max_key);
		return RKV_ETOOLARGE;
	}
	req = (struct frame_request){
		.op = FRAME_OP_SCAN,
		.key = { start, (uint32_t)start_len },
		.end = { end, (uint32_t)end_len },
		.limit = limit,
	};
	return queue_frame(c, &req, id);
}

/* ---- receiving --------------------------------------------------------- */

/* Collects one SCAN pair of the frame being taken. */
static int add_pair(void *arg, const struct frame_kv *pair)
{
	struct rkv_client *c = arg;

	if (c->pair_count == c->pair_cap) {
		size_t cap = c->pair_cap ? 2 * c->pair_cap : 64;
		struct rkv_kv *p = realloc(c->pairs, cap * sizeof(*p));

		if (p == NULL)
			return -ENOMEM;
		c->pairs = p;
		c->pair_cap = cap;
	}
	c->pairs[c->pair_count++] = (struct rkv_kv){
		.key = pair->key.data, .key_len = pair->key.len,
		.value = pair->value.data, .value_len = pair->value.len,
	};
	return 0;
}

/* Fills *res from the complete frame at recv_start (payload_len bytes). */
static int take_frame(struct rkv_client *c, uint32_t payload_len, struct rkv_result *res)
{
	const uint8_t *payload = c->recv_buf + c->recv_start + FRAME_HEADER_SIZE;
	struct frame_slice value, error;
	int rc;

	c->pair_count = 0;
	rc = frame_decode_response_pairs(payload, payload_len, &res->id, &res->status,
					 &value, &error, add_pair, c);
	if (rc == -ENOMEM)
		return fail(c, rc, "scan answer");
	if (rc < 0)
		return fail(c, rc, "undecodable response from the server");
	res->pairs = c->pair_count ? c->pairs : NULL;
	res->pair_count = c->pair_count;
	c->recv_held = FRAME_HEADER_SIZE + (size_t)payload_len;
	c->in_flight--;
	res->value = value.data;
	res->value_len = value.len;
	res->error = "";
	if (error.len > 0) {
		size_t n = error.len < sizeof(c->error) ? error.len : sizeof(c->error) - 1;

		memcpy(c->error, error.data, n);
		c->error[n] = '\0';
		res->error = c->error;
	} else if (res->status != RKV_STATUS_OK) {
		format_into(c->error, sizeof(c->error), "%s", rkv_status_name(res->status));
	}
	return 0;
}

/* The start of an answer in the Redis protocol: +OK, -ERR, :1, $5, *2. */
static bool looks_like_resp(const uint8_t *p, size_t len)
{
	return len > 0 && (p[0] == '+' || p[0] == '-' || p[0] == ':' || p[0] == '$' ||
			   p[0] == '*');
}

static int recv_answer(struct rkv_client *c, struct rkv_result *res)
{
	for (;;) {
		uint32_t payload_len = 0;
		ssize_t n;
		int rc;

		/* recv_buf is NULL until the first read; NULL + 0 is UB. */
		const uint8_t *start = c->recv_buf ? c->recv_buf + c->recv_start : NULL;

		rc = frame_peek(start, c->recv_end - c->recv_start, &c->limits,
				&payload_len);
		if (rc == 0)
			return take_frame(c, payload_len, res);
		if (rc != RKV_EAGAIN && looks_like_resp(start, c->recv_end - c->recv_start)) {
			fail(c, RKV_EPROTO, "receive");
			format_into(c->error, sizeof(c->error),
				    "the server answered in the Redis protocol (RESP): this "
				    "is a --resp-listen port; ringkv speaks the native "
				    "protocol (use redis-cli here, or the --listen port)");
			return RKV_EPROTO;
		}
		if (rc != RKV_EAGAIN)
			return fail(c, RKV_EPROTO, "response frame over the size limit");
		/* Room for the whole frame when its size is known. */
		n = recv_some(c, FRAME_HEADER_SIZE + (size_t)payload_len -
					 (c->recv_end - c->recv_start),
			      0);
		if (n < 0)
			return (int)n;
	}
}

int rkv_recv(struct rkv_client *c, struct rkv_result *res)
{
	bool began;
	int rc;

	assert(c != NULL && res != NULL);
	memset(res, 0, sizeof(*res));
	res->error = "";
	if (c->failed)
		return c->failed;
	release_result(c);
	if (c->in_flight == 0) {
		format_into(c->error, sizeof(c->error), "no request in flight");
		return RKV_EINVAL;
	}
	began = call_begin(c);
	rc = flush_queued(c);
	if (rc == 0)
		rc = recv_answer(c, res);
	call_end(c, began);
	return rc;
}

/* ---- blocking calls ---------------------------------------------------- */

/*
 * Sends one request and waits for its answer. Answers to earlier pipelined
 * requests the caller never collected are skipped: a blocking call is one
 * round trip, and those ids are of no use to it.
 */
static int call(struct rkv_client *c, enum frame_op op, const void *key,
		size_t key_len, const void *value, size_t value_len,
		struct rkv_result *res)
{
	uint64_t id;
	bool began = call_begin(c);
	int rc = queue_request(c, op, key, key_len, value, value_len, &id);

	while (rc == 0) {
		rc = rkv_recv(c, res);
		if (rc == 0 && res->id == id) {
			rc = res->status;
			break;
		}
	}
	call_end(c, began);
	return rc;
}

static int get(struct rkv_client *c, const void *key, size_t key_len, void **value,
	       size_t *value_len)
{
	struct rkv_result res;
	int rc = call(c, FRAME_OP_GET, key, key_len, NULL, 0, &res);

	if (value)
		*value = NULL;
	if (value_len)
		*value_len = 0;
	if (rc != RKV_STATUS_OK)
		return rc;
	if (value) {
		void *copy = malloc(res.value_len ? res.value_len : 1);

		if (copy == NULL) {
			format_into(c->error, sizeof(c->error), "out of memory");
			return -ENOMEM;
		}
		if (res.value_len)
			memcpy(copy, res.value, res.value_len);
		*value = copy;
	}
	if (value_len)
		*value_len = res.value_len;
	return 0;
}

int rkv_get(struct rkv_client *c, const void *key, size_t key_len,
	    void **value, size_t *value_len)
{
	return get(c, key, key_len, value, value_len);
}

int rkv_get_stale(struct rkv_client *c, const void *key, size_t key_len, void **value,
		  size_t *value_len)
{
	int rc;

	c->stale = true;
	rc = get(c, key, key_len, value, value_len);
	c->stale = false;
	return rc;
}

int libringkv_call_raw(struct rkv_client *c, int op, bool no_forward, const void *key,
		       size_t key_len, const void *value, size_t value_len,
		       struct rkv_result *res, const uint8_t **payload, size_t *payload_len)
{
	int rc;

	/* A cluster request's frame has no key, so no byte of it may end a
	 * line: sent to a Redis-protocol port by mistake, it would wait for
	 * the rest of a line for the whole timeout. An id of 10 ('\n') makes
	 * such a port answer at once (and rkv_recv says which port it is).
	 * Ids are the client's to choose; later ones go on from there. */
	if ((op == FRAME_OP_CLUSTER_MAP || op == FRAME_OP_CLUSTER_STATUS || op == FRAME_OP_BACKUP ||
	     op == FRAME_OP_SHARD_MOVE) && c->next_id < 10)
		c->next_id = 10;
	c->no_forward = no_forward;
	rc = call(c, (enum frame_op)op, key, key_len, value, value_len, res);
	c->no_forward = false;
	*payload = NULL;
	*payload_len = 0;
	if (rc >= 0 && c->recv_held >= FRAME_HEADER_SIZE) {
		*payload = c->recv_buf + c->recv_start + FRAME_HEADER_SIZE;
		*payload_len = c->recv_held - FRAME_HEADER_SIZE;
	}
	return rc;
}

int libringkv_call_backup(struct rkv_client *c, const struct frame_backup_req *q,
			  struct rkv_result *res, const uint8_t **payload, size_t *payload_len)
{
	int rc;

	c->backup = q;
	rc = libringkv_call_raw(c, FRAME_OP_BACKUP, true, NULL, 0, NULL, 0, res, payload,
				payload_len);
	c->backup = NULL;
	return rc;
}

int libringkv_call_move(struct rkv_client *c, const struct frame_move_req *q,
			struct rkv_result *res, const uint8_t **payload, size_t *payload_len)
{
	int rc;

	c->move = q;
	rc = libringkv_call_raw(c, FRAME_OP_SHARD_MOVE, true, NULL, 0, NULL, 0, res, payload,
				payload_len);
	c->move = NULL;
	return rc;
}

int libringkv_copy_value(struct rkv_client *c, const struct rkv_result *res, void **value,
			 size_t *value_len)
{
	void *copy = malloc(res->value_len ? res->value_len : 1);

	if (copy == NULL) {
		format_into(c->error, sizeof(c->error), "out of memory");
		return -ENOMEM;
	}
	if (res->value_len)
		memcpy(copy, res->value, res->value_len);
	*value = copy;
	*value_len = res->value_len;
	return 0;
}

void libringkv_set_error(struct rkv_client *c, const char *text)
{
	format_into(c->error, sizeof(c->error), "%s", text);
}

int rkv_put(struct rkv_client *c, const void *key, size_t key_len,
	    const void *value, size_t value_len)
{
	struct rkv_result res;

	return call(c, FRAME_OP_PUT, key, key_len, value, value_len, &res);
}

int rkv_del(struct rkv_client *c, const void *key, size_t key_len)
{
	struct rkv_result res;

	return call(c, FRAME_OP_DELETE, key, key_len, NULL, 0, &res);
}

/* Copies a result's pairs into one malloc'd block: the array, then bytes. */
static int copy_pairs(const struct rkv_result *res, struct rkv_kv **out)
{
	size_t bytes = res->pair_count * sizeof(struct rkv_kv);
	struct rkv_kv *copy;
	uint8_t *p;

	for (size_t i = 0; i < res->pair_count; i++)
		bytes += res->pairs[i].key_len + res->pairs[i].value_len;
	copy = malloc(bytes);
	if (copy == NULL)
		return -ENOMEM;
	p = (uint8_t *)(copy + res->pair_count);
	for (size_t i = 0; i < res->pair_count; i++) {
		const struct rkv_kv *in = &res->pairs[i];

		copy[i] = (struct rkv_kv){ p, in->key_len, p + in->key_len, in->value_len };
		if (in->key_len)
			memcpy(p, in->key, in->key_len);
		p += in->key_len;
		if (in->value_len)
			memcpy(p, in->value, in->value_len);
		p += in->value_len;
	}
	*out = copy;
	return 0;
}

int rkv_scan(struct rkv_client *c, const void *start, size_t start_len,
	     const void *end, size_t end_len, uint32_t limit,
	     struct rkv_kv **pairs, size_t *count)
{
	struct rkv_result res;
	uint64_t id;
	int rc;

	bool began;

	assert(pairs != NULL && count != NULL);
	*pairs = NULL;
	*count = 0;
	began = call_begin(c);
	rc = rkv_send_scan(c, start, start_len, end, end_len, limit, &id);
	while (rc == 0) {
		rc = rkv_recv(c, &res);
		if (rc == 0 && res.id == id)
			break;
	}
	call_end(c, began);
	if (rc < 0)
		return rc;
	if (res.status != RKV_STATUS_OK || res.pair_count == 0)
		return res.status;
	if (copy_pairs(&res, pairs) != 0) {
		format_into(c->error, sizeof(c->error), "out of memory");
		return -ENOMEM;
	}
	*count = res.pair_count;
	return 0;
}

void rkv_scan_free(struct rkv_kv *pairs)
{
	free(pairs);
}

int rkv_ping(struct rkv_client *c)
{
	struct rkv_result res;
	int rc = call(c, FRAME_OP_GET, NULL, 0, NULL, 0, &res);

	/* A GET of the empty key: any answer in the native protocol (found or
	 * not) is a live server. */
	return rc < 0 ? rc : 0;
}
