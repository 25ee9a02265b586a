/*
 * The ringkv-bench worker loop. Each worker owns one io_uring ring and a set
 * of connections; per connection it keeps exactly one recv in flight and at
 * most one send, whose buffer collects every request queued since the last
 * send (batched sends). Requests are tracked in per-connection slots, at most
 * --pipeline of them:
 *
 *   - native: responses may come back in any order, so a request's id
 *     carries its slot (id = seq << 16 | slot) and a free-slot stack hands
 *     out slots;
 *   - RESP: replies come back in order, so slots form a ring and the oldest
 *     one is completed next.
 *
 * Closed loop (no --rate): a completed request is replaced at once, so every
 * connection keeps --pipeline requests in flight and latency runs from the
 * moment a request was queued. Open loop (--rate R): every connection sends
 * on its own fixed schedule (R / connections per second, staggered), and a
 * request's latency runs from its intended send time, so time spent waiting
 * for a free slot behind a stalled server is counted, not omitted.
 *
 * Invariant: the send buffer holds only bytes of requests that own a slot,
 * so it never exceeds pipeline * codec_request_size_max() and is never
 * reallocated (a send may be reading it). The receive buffer grows only while
 * no recv is in flight.
 *
 * TLS (--tls-ca): the handshake is done before the run, blocking, on the
 * socket; the connection's OpenSSL object then gets a BIO pair instead, as
 * ringkvd does (io/tls.h): the ring receives ciphertext into `cipher`,
 * which is fed to the pair and decrypted into `in`; requests are encrypted
 * out of `out` into the pair and the ring sends the pair's ciphertext.
 */
#include "perf/bench/worker.h"

#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/errors.h"
#include "tools/libringkv_private.h"
#include "perf/bench/workload.h"

#define WORKER_RECV_MIN (64u << 10)
#define WORKER_MAX_WAIT_NS (100u * 1000 * 1000) /* recheck stop at least this often */
#define WORKER_SLOT_BITS 16
#define WORKER_SLOT_MASK ((UINT64_C(1) << WORKER_SLOT_BITS) - 1)
#define WORKER_TLS_PAIR (40u << 10)   /* ciphertext each way in the BIO pair */
#define WORKER_TLS_CIPHER (32u << 10) /* ciphertext received per recv */

/* Single-writer counter update that a concurrent reader may load. */
#define OWNER_ADD(field, delta)                                                        \
	__atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (delta), \
			 __ATOMIC_RELAXED)
#define LOAD(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

enum io_kind {
	IO_RECV,
	IO_SEND,
};

struct conn;

/* Context of one submitted operation; user_data points at it. */
struct io_op {
	enum io_kind kind;
	struct conn *conn;
};

struct slot {
	uint64_t id;       /* native request id; 0 when free */
	uint64_t start_ns; /* queued (closed loop) or intended (open loop) send time */
	uint8_t op;        /* enum bench_op */
	uint8_t measured;  /* started inside the measurement window */
};

struct conn {
	struct loop *loop;
	int fd;
	int dead;                 /* failed; its in-flight requests were counted */
	struct io_op recv_op;
	struct io_op send_op;
	int recv_pending;
	int send_pending;
	char *out;                /* queued request bytes; prefix [0, out_len) */
	size_t out_len;
	size_t out_cap;
	char *in;                 /* received, unparsed bytes [0, in_len) */
	size_t in_len;
	size_t in_cap;
	struct slot *slots;       /* pipeline of them */
	unsigned *free_slots;     /* native: stack of free slot indices */
	unsigned free_count;
	unsigned head;            /* RESP: oldest in-flight slot */
	unsigned in_flight;
	uint64_t seq;             /* native: request counter, for ids */
	SSL *ssl;                 /* --tls-ca: OpenSSL, on the BIO pair; or NULL */
	BIO *outer;               /* our end of the pair */
	uint8_t *cipher;          /* [WORKER_TLS_CIPHER] ciphertext received */
	uint64_t next_due_ns;     /* open loop: intended time of the next request */
	uint64_t interval_ns;     /* open loop: time between two requests */
	unsigned node;            /* routing: the node index it talks to */
};

struct loop {
	struct worker *worker;
	const struct bench_run *run;
	const struct bench_options *opts;
	struct io_uring ring;
	struct workload workload;
	struct conn *conns;
	unsigned live;            /* connections not dead */
	unsigned pipeline;
	uint64_t in_flight;       /* over all connections */
	uint64_t issued_measured; /* measured requests issued so far */
	char *key;                /* key_size scratch bytes */
	int open_loop;
};

uint64_t worker_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void worker_stats_reset(struct bench_stats *stats)
{
	unsigned op;

	memset(stats, 0, sizeof(*stats));
	for (op = 0; op < BENCH_OP_COUNT; op++)
		histogram_reset(&stats->latency[op]);
}

void worker_stats_merge(struct bench_stats *dst, const struct bench_stats *src)
{
	unsigned op, status;
	uint64_t finish;

	for (op = 0; op < BENCH_OP_COUNT; op++) {
		histogram_merge(&dst->latency[op], &src->latency[op]);
		dst->completed[op] += LOAD(src->completed[op]);
		dst->not_found[op] += LOAD(src->not_found[op]);
		for (status = 0; status < BENCH_STATUS_COUNT; status++)
			dst->errors[op][status] += LOAD(src->errors[op][status]);
	}
	dst->unfinished += LOAD(src->unfinished);
	finish = LOAD(src->finish_ns);
	if (finish > dst->finish_ns)
		dst->finish_ns = finish;
}

int worker_connect(const struct bench_run *run, unsigned connection)
{
	const struct sockaddr_storage *addr = &run->addr;
	socklen_t addr_len = run->addr_len;
	int fd, one = 1;

	if (run->route.nodes) {
		unsigned node = bench_route_conn_node(&run->route, connection);

		addr = &run->route.addr[node];
		addr_len = run->route.addr_len[node];
	}
	fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)addr, addr_len) != 0) {
		int rv = -errno;

		close(fd);
		return rv;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int worker_tls_handshake(int fd, SSL **out, char *err, size_t err_len)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	char host[INET6_ADDRSTRLEN];
	int rv;

	*out = NULL;
	if (getpeername(fd, (struct sockaddr *)&peer, &len) != 0 ||
	    getnameinfo((struct sockaddr *)&peer, len, host, sizeof(host), NULL, 0,
			NI_NUMERICHOST) != 0) {
		snprintf(err, err_len, "cannot name the server's address");
		return -EINVAL;
	}
	rv = libringkv_tls_new(fd, host, out, err, err_len);
	if (rv == 0 && *out == NULL) {
		snprintf(err, err_len, "TLS is off");
		rv = -EINVAL;
	}
	if (rv)
		return rv;
	ERR_clear_error();
	rv = SSL_connect(*out); /* the socket blocks */
	if (rv == 1)
		return 0;
	rv = libringkv_tls_wants(*out, rv, err, err_len);
	SSL_free(*out);
	*out = NULL;
	return rv < 0 ? rv : -EIO;
}

/* Moves the connection's OpenSSL object from its socket to a BIO pair. */
static int tls_attach(struct conn *c, SSL *ssl)
{
	BIO *inner;

	c->ssl = ssl;
	c->cipher = malloc(WORKER_TLS_CIPHER);
	if (c->cipher == NULL ||
	    BIO_new_bio_pair(&inner, WORKER_TLS_PAIR, &c->outer, WORKER_TLS_PAIR) != 1)
		return -ENOMEM;
	/* Nothing of the socket is buffered in OpenSSL (no read-ahead): what
	 * the server sends next arrives through the ring. */
	SSL_set_bio(ssl, inner, inner);
	return 0;
}

/* Decrypts `n` received bytes of ciphertext into c->in. 0 or -EPROTO. */
static int tls_absorb(struct conn *c, size_t n)
{
	size_t fed = 0;

	for (;;) {
		int w = 0, r;

		if (fed < n) {
			w = BIO_write(c->outer, c->cipher + fed, (int)(n - fed));
			if (w > 0)
				fed += (size_t)w;
		}
		if (c->in_len == c->in_cap) {
			char *in = realloc(c->in, c->in_cap * 2);

			if (in == NULL)
				return -ENOMEM;
			c->in = in;
			c->in_cap *= 2;
		}
		ERR_clear_error();
		r = SSL_read(c->ssl, c->in + c->in_len, (int)(c->in_cap - c->in_len));
		if (r > 0) {
			c->in_len += (size_t)r;
			continue;
		}
		if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ)
			return -EPROTO;
		if (fed == n)
			return 0;
		if (w <= 0)
			return -EPROTO; /* neither side moved */
	}
}

static struct io_uring_sqe *get_sqe(struct loop *loop)
{
	struct io_uring_sqe *sqe;

	/* When the SQ is full, submit and retry; never drop an operation. */
	while ((sqe = io_uring_get_sqe(&loop->ring)) == NULL)
		io_uring_submit(&loop->ring);
	return sqe;
}

static void post_recv(struct conn *c)
{
	struct io_uring_sqe *sqe = get_sqe(c->loop);

	if (c->ssl)
		io_uring_prep_recv(sqe, c->fd, c->cipher, WORKER_TLS_CIPHER, 0);
	else
		io_uring_prep_recv(sqe, c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
	io_uring_sqe_set_data(sqe, &c->recv_op);
	c->recv_pending = 1;
}

static void flush_send(struct conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->ssl && !c->dead && !c->send_pending) {
		char *data;
		int n;

		/* Encrypt what the pair takes; the rest waits for the next flush. */
		while (c->out_len) {
			ERR_clear_error();
			n = SSL_write(c->ssl, c->out, (int)c->out_len);
			if (n <= 0)
				break;
			memmove(c->out, c->out + n, c->out_len - (size_t)n);
			c->out_len -= (size_t)n;
		}
		n = BIO_nread0(c->outer, &data);
		if (n <= 0)
			return;
		sqe = get_sqe(c->loop);
		io_uring_prep_send(sqe, c->fd, data, (size_t)n, MSG_NOSIGNAL);
		io_uring_sqe_set_data(sqe, &c->send_op);
		c->send_pending = 1;
		return;
	}
	if (c->dead || c->send_pending || c->out_len == 0)
		return;
	sqe = get_sqe(c->loop);
	io_uring_prep_send(sqe, c->fd, c->out, c->out_len, MSG_NOSIGNAL);
	io_uring_sqe_set_data(sqe, &c->send_op);
	c->send_pending = 1;
}

/* May a request intended for start_ns be issued now? */
static int may_issue(const struct loop *loop, uint64_t start_ns)
{
	const struct worker *w = loop->worker;

	if (__atomic_load_n(&loop->run->stop, __ATOMIC_RELAXED))
		return 0;
	if (loop->run->end_ns != 0)
		return start_ns < loop->run->end_ns;
	return start_ns < loop->run->measure_ns || loop->issued_measured < w->quota;
}

/* Appends Request.no_forward = true (field 8, varint: 0x40 0x01) to the
 * native frame at `frame` (n bytes, length prefix included) and fixes its
 * length prefix: protobuf fields may come in any order. Returns the new
 * size (n + ROUTE_NO_FORWARD_BYTES). */
#define ROUTE_NO_FORWARD_BYTES 2
static size_t mark_no_forward(char *frame, size_t n)
{
	uint8_t *p = (uint8_t *)frame;
	uint32_t len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		       (uint32_t)p[3] << 24;

	len += ROUTE_NO_FORWARD_BYTES;
	p[0] = (uint8_t)len;
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)(len >> 16);
	p[3] = (uint8_t)(len >> 24);
	p[n] = 0x40;
	p[n + 1] = 0x01;
	return n + ROUTE_NO_FORWARD_BYTES;
}

/* Queue one request on c, to be sent at the next flush. c has a free slot. */
static void issue(struct conn *c, uint64_t start_ns)
{
	struct loop *loop = c->loop;
	struct workload *wl = &loop->workload;
	const struct bench_route *route = &loop->run->route;
	enum bench_op op = workload_next_op(wl);
	const char *value = NULL;
	unsigned index;
	struct slot *s;
	uint64_t id = 0;
	size_t n;

	if (loop->opts->protocol == BENCH_PROTOCOL_NATIVE) {
		index = c->free_slots[--c->free_count];
		id = (++c->seq << WORKER_SLOT_BITS) | index;
	} else {
		index = (c->head + c->in_flight) % loop->pipeline;
	}
	s = &c->slots[index];
	s->id = id;
	s->start_ns = start_ns;
	s->op = (uint8_t)op;
	s->measured = start_ns >= loop->run->measure_ns;
	if (s->measured)
		loop->issued_measured++;
	workload_format_key(wl, bench_route_key_number(route, workload_next_key(wl)), loop->key);
	/* Routing: a key this connection's node leads (see route.h). */
	for (unsigned draw = 1; route->nodes && draw < BENCH_ROUTE_DRAWS &&
	     bench_route_node_of(route, loop->key, wl->key_size) != c->node; draw++)
		workload_format_key(wl, bench_route_key_number(route, workload_next_key(wl)), loop->key);
	if (op == BENCH_OP_PUT)
		value = workload_next_value(wl);
	n = codec_encode(loop->opts->protocol, c->out + c->out_len, id, op, loop->key,
			 wl->key_size, value, wl->value_size);
	if (loop->run->route.nodes)
		n = mark_no_forward(c->out + c->out_len, n);
	c->out_len += n;
	c->in_flight++;
	loop->in_flight++;
}

static int slot_busy(const struct conn *c, unsigned index);

static void count_error(struct loop *loop, const struct slot *s, enum bench_status status)
{
	if (s->measured)
		OWNER_ADD(loop->worker->stats.errors[s->op][status], 1);
}

/* Drop a connection: count what it had in flight and stop using it. */
static void conn_fail(struct conn *c)
{
	struct loop *loop = c->loop;
	unsigned i;

	if (c->dead)
		return;
	c->dead = 1;
	loop->live--;
	for (i = 0; i < loop->pipeline; i++)
		if (slot_busy(c, i))
			count_error(loop, &c->slots[i], BENCH_STATUS_CONNECTION);
	loop->in_flight -= c->in_flight;
	c->in_flight = 0;
	/* Pending operations complete with an error; the fd is closed at exit. */
	shutdown(c->fd, SHUT_RDWR);
}

static void complete(struct conn *c, const struct bench_reply *reply, uint64_t now)
{
	struct loop *loop = c->loop;
	struct bench_stats *stats = &loop->worker->stats;
	struct slot *s;
	unsigned index;

	if (loop->opts->protocol == BENCH_PROTOCOL_NATIVE) {
		index = (unsigned)(reply->id & WORKER_SLOT_MASK);
		if (index >= loop->pipeline || c->slots[index].id != reply->id || reply->id == 0) {
			/* A response to nothing we sent: the stream is not ours to trust. */
			conn_fail(c);
			return;
		}
		s = &c->slots[index];
		s->id = 0;
		c->free_slots[c->free_count++] = index;
	} else {
		if (c->in_flight == 0) {
			conn_fail(c);
			return;
		}
		s = &c->slots[c->head];
		c->head = (c->head + 1) % loop->pipeline;
	}
	c->in_flight--;
	loop->in_flight--;
	if (s->measured && (loop->run->end_ns == 0 || now <= loop->run->end_ns)) {
		if (reply->status == BENCH_STATUS_OK || reply->status == BENCH_STATUS_NOT_FOUND) {
			histogram_record(&stats->latency[s->op], now - s->start_ns);
			OWNER_ADD(stats->completed[s->op], 1);
			if (reply->status == BENCH_STATUS_NOT_FOUND)
				OWNER_ADD(stats->not_found[s->op], 1);
		} else {
			count_error(loop, s, reply->status);
		}
		__atomic_store_n(&stats->finish_ns, now, __ATOMIC_RELAXED);
	}
	if (!loop->open_loop && may_issue(loop, now))
		issue(c, now);
}

static void on_recv(struct conn *c, int res)
{
	struct loop *loop = c->loop;
	struct bench_reply reply;
	size_t pos = 0, consumed;
	uint64_t now;
	int rv;

	c->recv_pending = 0;
	if (c->dead)
		return;
	if (res == -EINTR || res == -EAGAIN || res == -ENOBUFS) {
		post_recv(c);
		return;
	}
	if (res <= 0) {
		conn_fail(c);
		return;
	}
	now = worker_now_ns();
	if (c->ssl) {
		if (tls_absorb(c, (size_t)res) != 0) {
			conn_fail(c);
			return;
		}
	} else {
		c->in_len += (size_t)res;
	}
	for (;;) {
		rv = codec_parse(loop->opts->protocol, c->in + pos, c->in_len - pos, &reply,
				 &consumed);
		if (rv != 0)
			break;
		pos += consumed;
		complete(c, &reply, now);
		if (c->dead)
			return;
	}
	if (rv == RKV_EPROTO) {
		conn_fail(c);
		return;
	}
	memmove(c->in, c->in + pos, c->in_len - pos);
	c->in_len -= pos;
	if (consumed > c->in_cap || c->in_len == c->in_cap) {
		size_t cap = c->in_cap * 2;
		char *in;

		while (cap < consumed)
			cap *= 2;
		in = realloc(c->in, cap);
		if (in == NULL) {
			conn_fail(c);
			return;
		}
		c->in = in;
		c->in_cap = cap;
	}
	post_recv(c);
}

static void on_send(struct conn *c, int res)
{
	c->send_pending = 0;
	if (c->dead)
		return;
	if (res == -EINTR || res == -EAGAIN)
		return; /* resent by the next flush */
	if (res <= 0) {
		conn_fail(c);
		return;
	}
	if (c->ssl) {
		char *sent;

		BIO_nread(c->outer, &sent, res); /* the ciphertext left the pair */
		return;
	}
	memmove(c->out, c->out + res, c->out_len - (size_t)res);
	c->out_len -= (size_t)res;
}

static int ring_init(struct loop *loop, unsigned entries)
{
	struct io_uring_params params;
	static const unsigned flag_sets[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	unsigned i;
	int rv = -EINVAL;

	for (i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		memset(&params, 0, sizeof(params));
		params.flags = flag_sets[i];
		rv = io_uring_queue_init_params(entries, &loop->ring, &params);
		if (rv == 0)
			return 0;
	}
	return rv;
}

static int loop_init(struct loop *loop, struct worker *w)
{
	const struct bench_options *opts = w->run->opts;
	size_t request_max = codec_request_size_max(opts->protocol, opts->key_size,
						   opts->value_size) + ROUTE_NO_FORWARD_BYTES;
	unsigned i, j, entries = 64;
	int rv;

	memset(loop, 0, sizeof(*loop));
	loop->worker = w;
	loop->run = w->run;
	loop->opts = opts;
	loop->pipeline = opts->pipeline;
	loop->open_loop = opts->rate > 0;
	rv = workload_init(&loop->workload, opts->seed * 1000003u + w->index, opts->keys,
			   opts->key_size, opts->value_size, opts->get_weight, opts->put_weight,
			   opts->zipf_s);
	if (rv != 0)
		return rv;
	loop->key = malloc(opts->key_size);
	loop->conns = calloc(w->connections, sizeof(*loop->conns));
	if (loop->key == NULL || loop->conns == NULL)
		return -ENOMEM;
	for (i = 0; i < w->connections; i++) {
		struct conn *c = &loop->conns[i];
		unsigned global = w->first_connection + i;

		c->loop = loop;
		c->fd = w->fds[i];
		c->node = w->run->route.nodes ? bench_route_conn_node(&w->run->route, global) : 0;
		c->recv_op = (struct io_op){ IO_RECV, c };
		c->send_op = (struct io_op){ IO_SEND, c };
		c->out_cap = loop->pipeline * request_max;
		c->out = malloc(c->out_cap);
		c->in_cap = WORKER_RECV_MIN;
		c->in = malloc(c->in_cap);
		c->slots = calloc(loop->pipeline, sizeof(*c->slots));
		c->free_slots = calloc(loop->pipeline, sizeof(*c->free_slots));
		if (c->out == NULL || c->in == NULL || c->slots == NULL || c->free_slots == NULL)
			return -ENOMEM;
		for (j = 0; j < loop->pipeline; j++)
			c->free_slots[j] = loop->pipeline - 1 - j;
		c->free_count = loop->pipeline;
		if (w->ssls && w->ssls[i]) {
			SSL *ssl = w->ssls[i];

			w->ssls[i] = NULL; /* the connection frees it now */
			if (tls_attach(c, ssl) != 0)
				return -ENOMEM;
		}
		if (loop->open_loop) {
			double interval = 1e9 * opts->connections / opts->rate;

			c->interval_ns = interval < 1 ? 1 : (uint64_t)interval;
			c->next_due_ns = w->run->start_ns +
					 (uint64_t)(interval * global / opts->connections);
		}
	}
	loop->live = w->connections;
	while (entries < 2 * w->connections + 16)
		entries *= 2;
	if (entries > 32768)
		entries = 32768;
	return ring_init(loop, entries);
}

static void loop_destroy(struct loop *loop, int ring_up)
{
	unsigned i;

	if (ring_up)
		io_uring_queue_exit(&loop->ring);
	for (i = 0; loop->conns != NULL && i < loop->worker->connections; i++) {
		struct conn *c = &loop->conns[i];

		SSL_free(c->ssl);
		BIO_free(c->outer);
		free(c->cipher);
		free(c->out);
		free(c->in);
		free(c->slots);
		free(c->free_slots);
	}
	for (i = 0; i < loop->worker->connections; i++) {
		if (loop->worker->ssls)
			SSL_free(loop->worker->ssls[i]); /* not attached (setup failed) */
		close(loop->worker->fds[i]);
	}
	free(loop->conns);
	free(loop->key);
	workload_destroy(&loop->workload);
}

/* The open-loop schedule: issue every request that is due and has a slot. */
static void issue_due(struct loop *loop, uint64_t now)
{
	unsigned i;

	for (i = 0; i < loop->worker->connections; i++) {
		struct conn *c = &loop->conns[i];

		while (!c->dead && c->in_flight < loop->pipeline && c->next_due_ns <= now &&
		       may_issue(loop, c->next_due_ns)) {
			issue(c, c->next_due_ns);
			c->next_due_ns += c->interval_ns;
		}
	}
}

/* How long to sleep in the kernel: until the next open-loop request is due
 * on a connection with a free slot, the end of the run, or the stop check. */
static uint64_t wait_ns(const struct loop *loop, uint64_t now)
{
	uint64_t until = now + WORKER_MAX_WAIT_NS;
	unsigned i;

	if (loop->run->end_ns != 0 && loop->run->end_ns < until)
		until = loop->run->end_ns;
	if (loop->open_loop) {
		for (i = 0; i < loop->worker->connections; i++) {
			const struct conn *c = &loop->conns[i];

			if (!c->dead && c->in_flight < loop->pipeline && c->next_due_ns < until &&
			    may_issue(loop, c->next_due_ns))
				until = c->next_due_ns;
		}
	}
	return until > now ? until - now : 0;
}

static int finished(const struct loop *loop, uint64_t now)
{
	const struct worker *w = loop->worker;

	if (__atomic_load_n(&loop->run->stop, __ATOMIC_RELAXED) || loop->live == 0)
		return 1;
	if (loop->run->end_ns != 0)
		return now >= loop->run->end_ns;
	return loop->issued_measured >= w->quota && loop->in_flight == 0;
}

/* Is slot index of c holding a request in flight? */
static int slot_busy(const struct conn *c, unsigned index)
{
	const struct loop *loop = c->loop;

	if (loop->opts->protocol == BENCH_PROTOCOL_NATIVE)
		return c->slots[index].id != 0;
	return (index + loop->pipeline - c->head) % loop->pipeline < c->in_flight;
}

/* Measured requests left behind at the end: in flight, or (open loop) due
 * by the end of the run but never sent. */
static uint64_t count_unfinished(const struct loop *loop)
{
	uint64_t left = 0, end = loop->run->end_ns;
	unsigned i, j;

	for (i = 0; i < loop->worker->connections; i++) {
		const struct conn *c = &loop->conns[i];

		if (c->dead)
			continue;
		for (j = 0; j < loop->pipeline; j++)
			left += slot_busy(c, j) && c->slots[j].measured;
		if (loop->open_loop && end != 0 && c->next_due_ns < end &&
		    c->next_due_ns >= loop->run->measure_ns)
			left += (end - c->next_due_ns - 1) / c->interval_ns + 1;
	}
	return left;
}

static void run_loop(struct loop *loop)
{
	unsigned i, j;
	uint64_t now = worker_now_ns();

	for (i = 0; i < loop->worker->connections; i++) {
		struct conn *c = &loop->conns[i];

		post_recv(c);
		if (!loop->open_loop)
			for (j = 0; j < loop->pipeline && may_issue(loop, now); j++)
				issue(c, now);
	}
	for (;;) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts;
		unsigned head, seen = 0;
		uint64_t wait;
		int rv;

		now = worker_now_ns();
		if (finished(loop, now))
			break;
		if (loop->open_loop)
			issue_due(loop, now);
		for (i = 0; i < loop->worker->connections; i++)
			flush_send(&loop->conns[i]);
		wait = wait_ns(loop, now);
		ts.tv_sec = (long long)(wait / 1000000000u);
		ts.tv_nsec = (long long)(wait % 1000000000u);
		rv = io_uring_submit_and_wait_timeout(&loop->ring, &cqe, 1, &ts, NULL);
		if (rv < 0 && rv != -ETIME && rv != -EINTR && rv != -EBUSY && rv != -EAGAIN) {
			loop->worker->error = rv;
			snprintf(loop->worker->error_text, sizeof(loop->worker->error_text),
				 "io_uring_submit_and_wait_timeout: %s", strerror(-rv));
			break;
		}
		io_uring_for_each_cqe(&loop->ring, head, cqe) {
			struct io_op *op = io_uring_cqe_get_data(cqe);

			seen++;
			if (op == NULL)
				continue;
			if (op->kind == IO_RECV)
				on_recv(op->conn, cqe->res);
			else
				on_send(op->conn, cqe->res);
		}
		io_uring_cq_advance(&loop->ring, seen);
	}
	__atomic_store_n(&loop->worker->stats.unfinished, count_unfinished(loop),
			 __ATOMIC_RELAXED);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct loop loop;
	int rv;

	rv = loop_init(&loop, w);
	if (rv != 0) {
		w->error = rv;
		snprintf(w->error_text, sizeof(w->error_text), "worker %u setup: %s", w->index,
			 strerror(-rv));
		loop_destroy(&loop, 0);
		__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
		return NULL;
	}
	run_loop(&loop);
	if (loop.live == 0 && w->error == 0) {
		w->error = -ECONNRESET;
		snprintf(w->error_text, sizeof(w->error_text),
			 "worker %u: every connection failed", w->index);
	}
	loop_destroy(&loop, 1);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

int worker_start(struct worker *w)
{
	worker_stats_reset(&w->stats);
	w->error = 0;
	w->error_text[0] = '\0';
	return -pthread_create(&w->thread, NULL, worker_main, w);
}

void worker_join(struct worker *w)
{
	pthread_join(w->thread, NULL);
}
