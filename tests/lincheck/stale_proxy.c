/*
 * stale_proxy: a deliberately broken front for ringkvd, to prove that the
 * recorder and lincheck catch a store that is not linearizable.
 *
 * It forwards every request to the upstream ringkvd, but answers a share
 * of GETs itself from a lagging copy: the value each key had `lag` ms ago,
 * as learned from the writes it saw acknowledged. That is what a follower
 * serving reads as if they were linearizable looks like to a client. With
 * --stale-percent 0 it is an honest proxy (the control run).
 *
 * One thread, one poll loop; each client connection gets its own upstream
 * connection. Requests and answers are framed with proto/frame.h; bytes it
 * cannot decode are forwarded untouched.
 */
#include "core/errors.h"
#include "proto/frame.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define MAX_KEYS 256
#define KEY_MAX 128
#define VALUE_MAX 64
#define HISTORY 256        /* acknowledged writes remembered per key */
#define MAX_PENDING 64     /* writes in flight per connection we follow */
#define STATUS_OK 0
#define STATUS_NOT_FOUND 1

struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

struct pending_write {
	uint64_t id;
	int key;                 /* index in keys[], -1 = not followed */
	bool del;
	char value[VALUE_MAX];
};

struct conn {
	int client;              /* -1 = slot free */
	int upstream;
	struct buf from_client, to_client, from_upstream, to_upstream;
	struct pending_write pending[MAX_PENDING];
	unsigned npending;
};

struct acked {
	uint64_t at_ns;
	bool nil;
	char value[VALUE_MAX];
};

struct key_history {
	char key[KEY_MAX];
	struct acked ring[HISTORY];
	unsigned next;           /* slot of the next write */
	unsigned count;          /* up to HISTORY */
	bool wrapped;            /* older writes were forgotten */
};

static struct conn conns[MAX_CONNS];
static struct key_history keys[MAX_KEYS];
static unsigned nkeys;
static unsigned stale_percent = 30;
static uint64_t lag_ns = 50 * 1000000ull;
static uint64_t rng = 12345;
static uint64_t served_stale, forwarded;

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint64_t rng_next(void)
{
	uint64_t x = (rng += 0x9e3779b97f4a7c15ull);

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static int buf_append(struct buf *b, const void *data, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *p;

		while (cap < b->len + len)
			cap *= 2;
		p = realloc(b->data, cap);
		if (!p)
			return -ENOMEM;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

static void buf_consume(struct buf *b, size_t n)
{
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

static int key_find(const struct frame_slice *k, bool add)
{
	for (unsigned i = 0; i < nkeys; i++)
		if (strlen(keys[i].key) == k->len && memcmp(keys[i].key, k->data, k->len) == 0)
			return (int)i;
	if (!add || nkeys == MAX_KEYS || k->len >= KEY_MAX)
		return -1;
	memcpy(keys[nkeys].key, k->data, k->len);
	keys[nkeys].key[k->len] = '\0';
	return (int)nkeys++;
}

static void key_acked(int key, bool del, const char *value)
{
	struct key_history *h = &keys[key];
	struct acked *a = &h->ring[h->next];

	a->at_ns = now_ns();
	a->nil = del;
	snprintf(a->value, sizeof a->value, "%s", value);
	h->next = (h->next + 1) % HISTORY;
	if (h->count < HISTORY)
		h->count++;
	else
		h->wrapped = true;
}

/* The lagging copy: the newest write acknowledged at least lag ago. */
static const struct acked *key_lagging(int key)
{
	struct key_history *h = &keys[key];
	uint64_t cutoff = now_ns() - lag_ns;

	for (unsigned i = 1; i <= h->count; i++) {
		const struct acked *a = &h->ring[(h->next + HISTORY - i) % HISTORY];

		if (a->at_ns <= cutoff)
			return a;
	}
	/* Older than anything remembered: nil unless writes were forgotten. */
	return h->wrapped ? &h->ring[h->next] : NULL;
}

static void conn_close(struct conn *c)
{
	if (c->client >= 0)
		close(c->client);
	if (c->upstream >= 0)
		close(c->upstream);
	free(c->from_client.data);
	free(c->to_client.data);
	free(c->from_upstream.data);
	free(c->to_upstream.data);
	memset(c, 0, sizeof *c);
	c->client = -1;
	c->upstream = -1;
}

/* Handles every whole request from the client. 0 or -1 (close). */
static int client_frames(struct conn *c)
{
	struct frame_limits limits;

	frame_limits_default(&limits);
	for (;;) {
		struct frame_request req;
		uint32_t payload;
		size_t whole;
		int rv = frame_peek(c->from_client.data, c->from_client.len, &limits, &payload);

		if (rv == RKV_EAGAIN)
			return 0;
		if (rv)
			return -1;
		whole = FRAME_HEADER_SIZE + payload;
		rv = frame_decode_request(c->from_client.data + FRAME_HEADER_SIZE, payload,
					  &limits, &req, NULL, 0);
		if (rv == 0 && req.op == FRAME_OP_GET &&
		    rng_next() % 100 < stale_percent && key_find(&req.key, false) >= 0) {
			const struct acked *a = key_lagging(key_find(&req.key, false));
			struct frame_response resp = { .id = req.id };
			uint8_t out[256];
			int len;

			resp.status = a && !a->nil ? STATUS_OK : STATUS_NOT_FOUND;
			if (resp.status == STATUS_OK)
				resp.value = (struct frame_slice){ (const uint8_t *)a->value,
								   (uint32_t)strlen(a->value) };
			len = frame_encode_response(&resp, out, sizeof out);
			if (len < 0 || buf_append(&c->to_client, out, (size_t)len))
				return -1;
			served_stale++;
		} else {
			if (rv == 0 && (req.op == FRAME_OP_PUT || req.op == FRAME_OP_DELETE) &&
			    c->npending < MAX_PENDING && req.value.len < VALUE_MAX) {
				struct pending_write *p = &c->pending[c->npending++];

				p->id = req.id;
				p->key = key_find(&req.key, true);
				p->del = req.op == FRAME_OP_DELETE;
				memcpy(p->value, req.value.data, req.value.len);
				p->value[req.value.len] = '\0';
			}
			if (buf_append(&c->to_upstream, c->from_client.data, whole))
				return -1;
			forwarded++;
		}
		buf_consume(&c->from_client, whole);
	}
}

/* Learns from every whole answer from upstream and passes it on. */
static int upstream_frames(struct conn *c)
{
	struct frame_limits limits;

	frame_limits_default(&limits);
	for (;;) {
		struct frame_slice value, error;
		uint32_t payload;
		uint64_t id;
		int status, rv = frame_peek(c->from_upstream.data, c->from_upstream.len,
					    &limits, &payload);
		size_t whole;

		if (rv == RKV_EAGAIN)
			return 0;
		if (rv)
			return -1;
		whole = FRAME_HEADER_SIZE + payload;
		if (frame_decode_response(c->from_upstream.data + FRAME_HEADER_SIZE, payload,
					  &id, &status, &value, &error) == 0) {
			for (unsigned i = 0; i < c->npending; i++) {
				struct pending_write *p = &c->pending[i];

				if (p->id != id)
					continue;
				if (p->key >= 0 && (status == STATUS_OK ||
						    (p->del && status == STATUS_NOT_FOUND)))
					key_acked(p->key, p->del, p->value);
				*p = c->pending[--c->npending];
				break;
			}
		}
		if (buf_append(&c->to_client, c->from_upstream.data, whole))
			return -1;
		buf_consume(&c->from_upstream, whole);
	}
}

static int read_into(int fd, struct buf *b)
{
	uint8_t tmp[16384];
	ssize_t n = recv(fd, tmp, sizeof tmp, 0);

	if (n == 0)
		return -1;
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	return buf_append(b, tmp, (size_t)n) ? -1 : 0;
}

static int write_from(int fd, struct buf *b)
{
	ssize_t n;

	if (!b->len)
		return 0;
	n = send(fd, b->data, b->len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	buf_consume(b, (size_t)n);
	return 0;
}

static int parse_addr(const char *text, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(text, ':');

	if (!colon || (size_t)(colon - text) >= sizeof host)
		return -1;
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = '\0';
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static void accept_one(int lfd, const struct sockaddr_in *upstream)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), up, one = 1;

	if (fd < 0)
		return;
	up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (up < 0 || connect(up, (const struct sockaddr *)upstream, sizeof *upstream) != 0) {
		/* Upstream down: the client sees the connection close. */
		if (up >= 0)
			close(up);
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	for (unsigned i = 0; i < MAX_CONNS; i++)
		if (conns[i].client < 0) {
			conns[i].client = fd;
			conns[i].upstream = up;
			return;
		}
	close(up);
	close(fd);
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "upstream", required_argument, NULL, 'u' },
		{ "stale-percent", required_argument, NULL, 'p' },
		{ "lag-ms", required_argument, NULL, 'g' },
		{ "seed", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen_at = "127.0.0.1:0", *upstream_at = NULL;
	struct sockaddr_in listen_sa, upstream_sa;
	socklen_t len = sizeof listen_sa;
	int opt, lfd, one = 1;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l': listen_at = optarg; break;
		case 'u': upstream_at = optarg; break;
		case 'p': stale_percent = (unsigned)atoi(optarg); break;
		case 'g': lag_ns = (uint64_t)atoi(optarg) * 1000000ull; break;
		case 's': rng = strtoull(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: stale_proxy --upstream HOST:PORT [--listen HOST:PORT]"
				" [--stale-percent 30] [--lag-ms 50] [--seed N]\n");
			return 2;
		}
	}
	if (!upstream_at || parse_addr(upstream_at, &upstream_sa) ||
	    parse_addr(listen_at, &listen_sa) || stale_percent > 100) {
		fprintf(stderr, "stale_proxy: want --upstream IPV4:PORT (and --listen IPV4:PORT)\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
	    bind(lfd, (struct sockaddr *)&listen_sa, sizeof listen_sa) ||
	    listen(lfd, 128) || getsockname(lfd, (struct sockaddr *)&listen_sa, &len)) {
		perror("stale_proxy: listen");
		return 1;
	}
	for (unsigned i = 0; i < MAX_CONNS; i++)
		conn_close(&conns[i]);
	printf("stale_proxy: listening on 127.0.0.1:%u (upstream %s, %u%% of gets %llu ms stale)\n",
	       ntohs(listen_sa.sin_port), upstream_at, stale_percent,
	       (unsigned long long)(lag_ns / 1000000));
	fflush(stdout);

	while (!stop) {
		struct pollfd pfd[1 + 2 * MAX_CONNS];
		unsigned n = 1;

		pfd[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (unsigned i = 0; i < MAX_CONNS; i++) {
			struct conn *c = &conns[i];

			if (c->client < 0)
				continue;
			pfd[n++] = (struct pollfd){ .fd = c->client,
				.events = (short)(POLLIN | (c->to_client.len ? POLLOUT : 0)) };
			pfd[n++] = (struct pollfd){ .fd = c->upstream,
				.events = (short)(POLLIN | (c->to_upstream.len ? POLLOUT : 0)) };
		}
		if (poll(pfd, n, 200) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents & POLLIN)
			accept_one(lfd, &upstream_sa);
		n = 1;
		for (unsigned i = 0; i < MAX_CONNS; i++) {
			struct conn *c = &conns[i];
			short cr, ur;
			bool bad = false;

			if (c->client < 0 || n >= 1 + 2 * MAX_CONNS || pfd[n].fd != c->client)
				continue;
			cr = pfd[n++].revents;
			ur = pfd[n++].revents;
			if (cr & (POLLIN | POLLHUP | POLLERR))
				bad |= read_into(c->client, &c->from_client) || client_frames(c);
			if (!bad && (ur & (POLLIN | POLLHUP | POLLERR)))
				bad |= read_into(c->upstream, &c->from_upstream) || upstream_frames(c);
			if (!bad)
				bad |= write_from(c->upstream, &c->to_upstream) ||
				       write_from(c->client, &c->to_client);
			if (bad)
				conn_close(c);
		}
	}
	for (unsigned i = 0; i < MAX_CONNS; i++)
		conn_close(&conns[i]);
	close(lfd);
	fprintf(stderr, "stale_proxy: %llu gets served stale, %llu requests forwarded\n",
		(unsigned long long)served_stale, (unsigned long long)forwarded);
	return 0;
}
