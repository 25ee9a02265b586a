/*
 * recorder: runs N concurrent clients of random get/put/del over a few keys
 * against ringkvd nodes for a bounded time and count, and writes the
 * history lincheck reads (history.h).
 *
 * Each client is a thread with its own connection, one request in flight
 * at a time, and its own blocking-with-deadline I/O (poll), so it does not
 * depend on libringkv's timeouts. The outcome rule, from the client's view:
 *   - no connection (refused, or connect timed out): the request was never
 *     sent, so the operation failed;
 *   - an answer: OK (a get: the value; NOT_FOUND: nil) is ok; a status that
 *     promises nothing happened (INVALID_ARGUMENT, TOO_LARGE, NOT_LEADER) is
 *     fail; any other status is unknown;
 *   - anything else once a byte of the request may have left (timeout, reset,
 *     end of stream, a garbled answer): unknown. The connection is then
 *     dropped and the next operation connects to the next node (so it is
 *     after NOT_LEADER and UNAVAILABLE answers).
 * Every write carries a value unique in the run ("c<client>.<seq>"), and the
 * keys carry a per-run prefix, so every key starts absent (nil).
 *
 * Threads share nothing but the read-only options: each appends to its own
 * log, merged when all have joined.
 */
#include "history.h"
#include "core/errors.h"
#include "proto/frame.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_NODES 16
#define VALUE_MAX 64
#define STATUS_OK 0
#define STATUS_NOT_FOUND 1
#define STATUS_INVALID_ARGUMENT 2
#define STATUS_TOO_LARGE 3
#define STATUS_UNAVAILABLE 5
#define STATUS_NOT_LEADER 6

struct options {
	char nodes[MAX_NODES][128];
	unsigned node_count;
	unsigned clients;
	unsigned keys;
	double seconds;
	uint64_t max_ops;          /* over all clients */
	unsigned timeout_ms;       /* per request, and per connect */
	unsigned read_percent;
	unsigned del_percent;
	uint64_t seed;
	char prefix[64];
	const char *out;
};

struct record {
	enum lc_kind kind;
	enum lc_outcome outcome;
	uint32_t key;
	uint64_t seq;              /* put: the value's sequence number */
	char value[VALUE_MAX];     /* ok get: the value read ("" = nil) */
	uint64_t invoke;
	uint64_t ret;
};

struct client {
	const struct options *opt;
	unsigned id;
	pthread_t thread;
	int fd;
	unsigned node;
	uint64_t rng;
	uint64_t next_request;
	uint64_t deadline_ns;
	uint64_t max_ops;
	struct record *log;
	size_t count;
	size_t cap;
	uint8_t buf[4096];         /* one answer: our values and keys are small */
	int error;                 /* first local failure (ENOMEM), else 0 */
};

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = (*s += 0x9e3779b97f4a7c15ull);

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static int poll_ms_until(uint64_t until)
{
	uint64_t now = now_ns();

	if (now >= until)
		return 0;
	return (int)((until - now + 999999) / 1000000);
}

/* Connects to `address` within the deadline. 0 or -errno. */
static int connect_to(const char *address, uint64_t until, int *out)
{
	char host[128], port[16];
	const char *colon = strrchr(address, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int fd = -1, rv, one = 1;
	size_t hostlen;

	if (!colon || colon == address || strlen(colon + 1) >= sizeof port)
		return -EINVAL;
	hostlen = (size_t)(colon - address);
	if (address[0] == '[' && hostlen >= 2 && address[hostlen - 1] == ']') {
		address++;
		hostlen -= 2;
	}
	if (hostlen >= sizeof host)
		return -EINVAL;
	memcpy(host, address, hostlen);
	host[hostlen] = '\0';
	strcpy(port, colon + 1);
	if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
		return -EHOSTUNREACH;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rv = -errno;
		goto out;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		socklen_t len = sizeof rv;

		if (errno != EINPROGRESS) {
			rv = -errno;
			goto out;
		}
		if (poll(&p, 1, poll_ms_until(until)) <= 0) {
			rv = -ETIMEDOUT;
			goto out;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &rv, &len) != 0 || rv) {
			rv = rv ? -rv : -errno;
			goto out;
		}
	}
	*out = fd;
	fd = -1;
	rv = 0;
out:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return rv;
}

/* Sends all of buf before `until`. 0, or -errno with *sent bytes gone. */
static int send_all(int fd, const uint8_t *buf, size_t len, uint64_t until,
		    size_t *sent)
{
	*sent = 0;
	while (*sent < len) {
		ssize_t n = send(fd, buf + *sent, len - *sent, MSG_NOSIGNAL);

		if (n > 0) {
			*sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		{
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			if (poll(&p, 1, poll_ms_until(until)) <= 0)
				return -ETIMEDOUT;
		}
	}
	return 0;
}

/*
 * Reads one answer to request `id` before `until`. 0 with status and
 * value (pointing into c->buf), or -errno / -EPROTO.
 */
static int recv_answer(struct client *c, uint64_t id, uint64_t until,
		       int *status, struct frame_slice *value)
{
	struct frame_limits limits;
	size_t used = 0;

	frame_limits_default(&limits);
	limits.max_frame = sizeof c->buf - FRAME_HEADER_SIZE;
	for (;;) {
		uint32_t payload;
		int rv = frame_peek(c->buf, used, &limits, &payload);

		if (rv == 0) {
			struct frame_slice error;
			uint64_t got;

			if (frame_decode_response(c->buf + FRAME_HEADER_SIZE, payload,
						  &got, status, value, &error) != 0 ||
			    got != id)
				return -EPROTO;
			return 0;
		}
		if (rv != RKV_EAGAIN)
			return -EPROTO;
		{
			struct pollfd p = { .fd = c->fd, .events = POLLIN };
			ssize_t n;

			if (poll(&p, 1, poll_ms_until(until)) <= 0)
				return -ETIMEDOUT;
			n = recv(c->fd, c->buf + used, sizeof c->buf - used, 0);
			if (n == 0)
				return -ECONNRESET;
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				return -errno;
			if (n > 0)
				used += (size_t)n;
		}
	}
}

static void drop_connection(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->node = (c->node + 1) % c->opt->node_count;
}

static struct record *new_record(struct client *c)
{
	if (c->count == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 1024;
		struct record *log = realloc(c->log, cap * sizeof *log);

		if (!log) {
			c->error = ENOMEM;
			return NULL;
		}
		c->log = log;
		c->cap = cap;
	}
	return memset(&c->log[c->count++], 0, sizeof *c->log);
}

/* A value read back, kept as a token: anything we could not have written
 * (too long, bytes outside printable ASCII) becomes a marker no put has. */
static void keep_value(char *out, struct frame_slice v)
{
	bool printable = v.len > 0 && v.len < VALUE_MAX;

	for (uint32_t i = 0; printable && i < v.len; i++)
		printable = v.data[i] > ' ' && v.data[i] < 0x7f;
	if (printable) {
		memcpy(out, v.data, v.len);
		out[v.len] = '\0';
	} else {
		snprintf(out, VALUE_MAX, "?unexpected-%ubytes", v.len);
	}
}

/* Runs one operation and records it. */
static void run_op(struct client *c)
{
	const struct options *o = c->opt;
	uint64_t r = rng_next(&c->rng) % 100;
	struct record *rec = new_record(c);
	struct frame_request req = { 0 };
	char key[128], value[VALUE_MAX];
	uint8_t frame[512];
	struct frame_slice got;
	size_t sent;
	int len, rv, status;
	uint64_t until;

	if (!rec)
		return;
	rec->key = (uint32_t)(rng_next(&c->rng) % o->keys);
	snprintf(key, sizeof key, "%sk%u", o->prefix, rec->key);
	rec->kind = r < o->read_percent ? LC_GET :
		    r < o->read_percent + o->del_percent ? LC_DEL : LC_PUT;
	req.id = ++c->next_request;
	req.key = (struct frame_slice){ (const uint8_t *)key, (uint32_t)strlen(key) };
	req.value = (struct frame_slice){ (const uint8_t *)"", 0 };
	req.end = req.value;
	switch (rec->kind) {
	case LC_GET:
		req.op = FRAME_OP_GET;
		break;
	case LC_DEL:
		req.op = FRAME_OP_DELETE;
		break;
	case LC_PUT:
		req.op = FRAME_OP_PUT;
		rec->seq = c->next_request;
		snprintf(value, sizeof value, "c%u.%llu", c->id,
			 (unsigned long long)rec->seq);
		req.value = (struct frame_slice){ (const uint8_t *)value,
						  (uint32_t)strlen(value) };
		break;
	}
	len = frame_encode_request(&req, frame, sizeof frame);

	rec->invoke = now_ns();
	until = rec->invoke + (uint64_t)o->timeout_ms * 1000000ull;
	if (len < 0) {
		rec->outcome = LC_FAIL;
		goto done;
	}
	if (c->fd < 0) {
		rv = connect_to(o->nodes[c->node], until, &c->fd);
		if (rv) {
			/* Never sent. Back off a little so a dead node is not
			 * hammered and the log stays small. */
			rec->outcome = LC_FAIL;
			rec->ret = now_ns();
			drop_connection(c);
			usleep(20000);
			return;
		}
		/* The request gets its own full timeout once connected. */
		until = now_ns() + (uint64_t)o->timeout_ms * 1000000ull;
	}
	rv = send_all(c->fd, frame, (size_t)len, until, &sent);
	if (rv) {
		rec->outcome = sent == 0 && rv != -ETIMEDOUT ? LC_FAIL : LC_UNKNOWN;
		drop_connection(c);
		goto done;
	}
	rv = recv_answer(c, req.id, until, &status, &got);
	if (rv) {
		rec->outcome = LC_UNKNOWN;
		drop_connection(c);
		goto done;
	}
	if (status == STATUS_OK) {
		rec->outcome = LC_OK;
		if (rec->kind == LC_GET)
			keep_value(rec->value, got);
	} else if (status == STATUS_NOT_FOUND && rec->kind != LC_PUT) {
		rec->outcome = LC_OK; /* get: nil; del of an absent key */
	} else if (status == STATUS_INVALID_ARGUMENT || status == STATUS_TOO_LARGE ||
		   status == STATUS_NOT_LEADER) {
		rec->outcome = LC_FAIL;
	} else {
		rec->outcome = LC_UNKNOWN;
	}
	/* A node that does not lead, or cannot serve: try the next one. */
	if (status == STATUS_NOT_LEADER || status == STATUS_UNAVAILABLE)
		drop_connection(c);
done:
	rec->ret = now_ns();
}

static void *client_main(void *arg)
{
	struct client *c = arg;

	while (c->count < c->max_ops && now_ns() < c->deadline_ns && !c->error)
		run_op(c);
	if (c->fd >= 0)
		close(c->fd);
	return NULL;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: recorder --nodes HOST:PORT[,HOST:PORT...] --out FILE [options]\n"
		"  --clients N       concurrent clients, one connection each (default 10)\n"
		"  --keys N          registers (default 3)\n"
		"  --seconds S       run time (default 10)\n"
		"  --max-ops N       operations over all clients (default 200000)\n"
		"  --timeout-ms N    connect and per-request timeout (default 500)\n"
		"  --read-percent N  gets (default 50); --del-percent N dels (default 5)\n"
		"  --seed N          random seed (default: time)\n"
		"  --prefix P        key prefix (default: unique per run)\n"
		"  Writes the history (lincheck's text form) to FILE, a summary to stderr.\n"
		"  exit: 0 written, 1 error, 2 usage\n");
}

static int parse_nodes(struct options *o, const char *list)
{
	char copy[MAX_NODES * 128];
	char *save = NULL;

	if (strlen(list) >= sizeof copy)
		return -1;
	strcpy(copy, list);
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (o->node_count == MAX_NODES || strlen(t) >= sizeof o->nodes[0])
			return -1;
		strcpy(o->nodes[o->node_count++], t);
	}
	return o->node_count ? 0 : -1;
}

static int parse_options(struct options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "nodes", required_argument, NULL, 'n' },
		{ "out", required_argument, NULL, 'o' },
		{ "clients", required_argument, NULL, 'c' },
		{ "keys", required_argument, NULL, 'k' },
		{ "seconds", required_argument, NULL, 's' },
		{ "max-ops", required_argument, NULL, 'm' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "read-percent", required_argument, NULL, 'r' },
		{ "del-percent", required_argument, NULL, 'd' },
		{ "seed", required_argument, NULL, 'S' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	*o = (struct options){ .clients = 10, .keys = 3, .seconds = 10,
			       .max_ops = 200000, .timeout_ms = 500,
			       .read_percent = 50, .del_percent = 5,
			       .seed = now_ns() ^ (uint64_t)getpid() << 32 };
	snprintf(o->prefix, sizeof o->prefix, "lc%d.%llu-", (int)getpid(),
		 (unsigned long long)(now_ns() / 1000) % 1000000000ull);
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		char *end = NULL;
		unsigned long long v = 0;

		if (opt != 'n' && opt != 'o' && opt != 'p' && opt != 's' && opt != 'h' &&
		    optarg) {
			v = strtoull(optarg, &end, 10);
			if (*end || !*optarg)
				return -1;
		}
		switch (opt) {
		case 'n':
			if (parse_nodes(o, optarg))
				return -1;
			break;
		case 'o': o->out = optarg; break;
		case 'c': o->clients = (unsigned)v; break;
		case 'k': o->keys = (unsigned)v; break;
		case 'm': o->max_ops = v; break;
		case 't': o->timeout_ms = (unsigned)v; break;
		case 'r': o->read_percent = (unsigned)v; break;
		case 'd': o->del_percent = (unsigned)v; break;
		case 'S': o->seed = v; break;
		case 's':
			o->seconds = strtod(optarg, &end);
			if (*end || !*optarg || o->seconds <= 0)
				return -1;
			break;
		case 'p':
			if (strlen(optarg) >= sizeof o->prefix || strpbrk(optarg, " \t\n"))
				return -1;
			strcpy(o->prefix, optarg);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (optind != argc || !o->node_count || !o->out || !o->clients ||
	    o->clients > 1000 || !o->keys || o->keys > 1000 || !o->timeout_ms ||
	    o->read_percent + o->del_percent > 100)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	static const char *const outcome_names[] = { "ok", "fail", "unknown" };
	static const char *const kind_names[] = { "put", "get", "del" };
	struct options o;
	struct client *clients;
	struct lc_history h;
	size_t counts[3][3] = { { 0 } };
	uint64_t start, deadline;
	char key[128], value[VALUE_MAX];
	FILE *out;
	int rv = 1;

	if (parse_options(&o, argc, argv)) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	clients = calloc(o.clients, sizeof *clients);
	if (!clients)
		return 1;
	start = now_ns();
	deadline = start + (uint64_t)(o.seconds * 1e9);
	for (unsigned i = 0; i < o.clients; i++) {
		struct client *c = &clients[i];

		*c = (struct client){ .opt = &o, .id = i, .fd = -1,
				      .node = i % o.node_count,
				      .rng = o.seed * 1000003u + i,
				      .deadline_ns = deadline,
				      .max_ops = o.max_ops / o.clients +
						 (i < o.max_ops % o.clients) };
		if (pthread_create(&c->thread, NULL, client_main, c) != 0) {
			fprintf(stderr, "recorder: cannot start client %u\n", i);
			o.clients = i;
			break;
		}
	}
	lc_history_init(&h);
	for (unsigned i = 0; i < o.clients; i++)
		pthread_join(clients[i].thread, NULL);
	for (unsigned i = 0; i < o.clients; i++) {
		struct client *c = &clients[i];

		if (c->error) {
			fprintf(stderr, "recorder: client %u: %s\n", i, strerror(c->error));
			goto out;
		}
		for (size_t j = 0; j < c->count; j++) {
			const struct record *r = &c->log[j];
			const char *v = NULL;

			snprintf(key, sizeof key, "%sk%u", o.prefix, r->key);
			if (r->kind == LC_PUT) {
				snprintf(value, sizeof value, "c%u.%llu", i,
					 (unsigned long long)r->seq);
				v = value;
			} else if (r->kind == LC_GET && r->outcome == LC_OK && r->value[0]) {
				v = r->value;
			}
			if (lc_history_add(&h, i, r->kind, key, v, r->invoke - start,
					   r->outcome == LC_UNKNOWN ? LC_NEVER :
					   r->ret - start, r->outcome)) {
				fprintf(stderr, "recorder: cannot record an operation\n");
				goto out;
			}
			counts[r->kind][r->outcome]++;
		}
	}
	out = fopen(o.out, "w");
	if (!out) {
		fprintf(stderr, "recorder: %s: %s\n", o.out, strerror(errno));
		goto out;
	}
	fprintf(out, "# recorder: %u clients, %u keys, %.1f s, timeout %u ms, seed %llu, nodes",
		o.clients, o.keys, o.seconds, o.timeout_ms, (unsigned long long)o.seed);
	for (unsigned i = 0; i < o.node_count; i++)
		fprintf(out, " %s", o.nodes[i]);
	fprintf(out, "\n");
	if (lc_history_write(out, &h) != 0 || fclose(out) != 0) {
		fprintf(stderr, "recorder: %s: write failed\n", o.out);
		goto out;
	}
	fprintf(stderr, "recorder: %zu operations in %.1f s:", h.count,
		(double)(now_ns() - start) / 1e9);
	for (int k = 0; k < 3; k++)
		for (int s = 0; s < 3; s++)
			fprintf(stderr, " %s %s %zu%s", kind_names[k], outcome_names[s],
				counts[k][s], k == 2 && s == 2 ? "\n" : ",");
	rv = 0;
out:
	for (unsigned i = 0; i < o.clients; i++)
		free(clients[i].log);
	free(clients);
	lc_history_free(&h);
	return rv;
}
