/* The in-test server of fake_server.h. Blocking I/O, one client at a time. */
#include "fake_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/errors.h"
#include "proto/frame.h"

/* One encoded answer waiting to be written. */
struct answer {
	uint8_t *bytes;
	size_t len;
};

static struct fake_entry *lookup(struct fake_server *s, struct frame_slice key,
				 bool create)
{
	struct fake_entry *free_slot = NULL;

	for (int i = 0; i < FAKE_SLOTS; i++) {
		struct fake_entry *e = &s->table[i];

		if (e->key == NULL) {
			if (free_slot == NULL)
				free_slot = e;
			continue;
		}
		if (e->key_len == key.len && memcmp(e->key, key.data, key.len) == 0)
			return e;
	}
	if (!create || free_slot == NULL)
		return NULL;
	free_slot->key = malloc(key.len);
	memcpy(free_slot->key, key.data, key.len);
	free_slot->key_len = key.len;
	return free_slot;
}

static void entry_clear(struct fake_entry *e)
{
	free(e->key);
	free(e->value);
	memset(e, 0, sizeof(*e));
}

static int slice_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = alen && blen ? memcmp(a, b, alen < blen ? alen : blen) : 0;

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct fake_entry *x = *(const struct fake_entry *const *)a;
	const struct fake_entry *y = *(const struct fake_entry *const *)b;

	return slice_cmp(x->key, x->key_len, y->key, y->key_len);
}

/* The pairs of [start, end) in key order, at most limit and FAKE_SCAN_PAGE. */
static size_t scan_table(struct fake_server *s, const struct frame_request *req,
			 struct frame_kv *out)
{
	const struct fake_entry *sorted[FAKE_SLOTS];
	size_t n = 0, count = 0;

	for (int i = 0; i < FAKE_SLOTS; i++)
		if (s->table[i].key)
			sorted[n++] = &s->table[i];
	qsort(sorted, n, sizeof(sorted[0]), entry_cmp);
	for (size_t i = 0; i < n && count < req->limit && count < FAKE_SCAN_PAGE; i++) {
		const struct fake_entry *e = sorted[i];

		if (slice_cmp(e->key, e->key_len, req->key.data, req->key.len) < 0)
			continue;
		if (req->end.len &&
		    slice_cmp(e->key, e->key_len, req->end.data, req->end.len) >= 0)
			break;
		out[count++] = (struct frame_kv){ { e->key, (uint32_t)e->key_len },
						  { e->value, (uint32_t)e->value_len } };
	}
	return count;
}

/* Executes one request and encodes its answer. */
static struct answer answer_request(struct fake_server *s, const struct frame_request *req,
				    int decode_rc)
{
	struct frame_response resp = { .id = req->id, .status = 0 };
	struct frame_kv pairs[FAKE_SCAN_PAGE];
	struct fake_entry *e;
	struct answer a;

	if (decode_rc == RKV_ETOOLARGE)
		resp.status = 3;
	else if (decode_rc != 0)
		resp.status = 2;
	else if (req->op == FRAME_OP_CLUSTER_MAP || req->op == FRAME_OP_CLUSTER_STATUS)
		resp.status = 2; /* as a server without the cluster requests */
	else if (s->mode == FAKE_ERROR) {
		resp.status = 8;
		resp.error = FAKE_ERROR_TEXT;
	} else if (s->mode == FAKE_ECHO) {
		resp.value = req->value;
	} else if (req->op == FRAME_OP_SCAN) {
		resp.pairs = pairs;
		resp.pair_count = scan_table(s, req, pairs);
	} else if (req->op == FRAME_OP_PUT) {
		e = lookup(s, req->key, true);
		if (e == NULL) {
			resp.status = 4;
		} else {
			free(e->value);
			e->value = malloc(req->value.len ? req->value.len : 1);
			if (req->value.len)
				memcpy(e->value, req->value.data, req->value.len);
			e->value_len = req->value.len;
		}
	} else {
		e = lookup(s, req->key, false);
		if (e == NULL && req->op == FRAME_OP_DELETE)
			resp.status = 0; /* as ringkvd: a delete is idempotent */
		else if (e == NULL)
			resp.status = 1;
		else if (req->op == FRAME_OP_GET)
			resp.value = (struct frame_slice){ e->value, (uint32_t)e->value_len };
		else
			entry_clear(e);
	}
	a.bytes = malloc(frame_response_max_size(&resp));
	a.len = (size_t)frame_encode_response(&resp, a.bytes, frame_response_max_size(&resp));
	return a;
}

static bool write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* Writes the pending answers (in reverse for FAKE_REVERSE) and frees them. */
static bool send_answers(struct fake_server *s, int fd, struct answer *pending, int *count)
{
	bool ok = true;

	for (int i = 0; i < *count; i++) {
		int at = s->mode == FAKE_REVERSE ? *count - 1 - i : i;

		ok = ok && write_all(fd, pending[at].bytes, pending[at].len);
		free(pending[at].bytes);
	}
	*count = 0;
	return ok;
}

static void serve_connection(struct fake_server *s, int fd)
{
	struct frame_limits limits;
	size_t cap = 1 << 16, start = 0, end = 0;
	uint8_t *buf = malloc(cap);
	struct answer pending[64];
	int count = 0, handled = 0;
	int batch = s->mode == FAKE_REVERSE ? s->batch : 1;

	frame_limits_default(&limits);
	for (;;) {
		uint32_t plen = 0;
		int rc = frame_peek(buf + start, end - start, &limits, &plen);

		if (rc == 0) {
			struct frame_request req;
			int drc = frame_decode_request(buf + start + FRAME_HEADER_SIZE, plen,
						       &limits, &req, NULL, 0);

			if (s->seen < FAKE_MAX_SEEN)
				s->seen_ids[s->seen++] = req.id;
			start += FRAME_HEADER_SIZE + plen;
			if (s->mode == FAKE_GARBAGE) {
				static const uint8_t junk[] = { 3, 0, 0, 0, 0xff, 0xff, 0xff };

				write_all(fd, junk, sizeof(junk));
				break;
			}
			if (s->mode == FAKE_RESP) {
				static const char err[] = "-ERR unknown command\r\n";

				write_all(fd, (const uint8_t *)err, sizeof(err) - 1);
				break;
			}
			if (s->mode == FAKE_SILENT)
				continue;
			pending[count++] = answer_request(s, &req, drc);
			if (count == batch && !send_answers(s, fd, pending, &count))
				break;
			if (s->close_after > 0 && ++handled == s->close_after)
				break;
			continue;
		}
		if (rc != RKV_EAGAIN)
			break;
		if (start > 0) {
			memmove(buf, buf + start, end - start);
			end -= start;
			start = 0;
		}
		if (plen + FRAME_HEADER_SIZE > cap) {
			cap = plen + FRAME_HEADER_SIZE;
			buf = realloc(buf, cap);
		}
		{
			ssize_t n = recv(fd, buf + end, cap - end, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			end += (size_t)n;
		}
	}
	for (int i = 0; i < count; i++)
		free(pending[i].bytes);
	free(buf);
	close(fd);
}

static void *serve(void *arg)
{
	struct fake_server *s = arg;

	for (;;) {
		int fd = accept(s->listen_fd, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break; /* shut down by fake_server_stop */
		}
		serve_connection(s, fd);
	}
	return NULL;
}

int fake_server_start(struct fake_server *s, enum fake_mode mode)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t len = sizeof(addr);
	int rc;

	s->mode = mode;
	if (s->batch <= 0 || s->batch > 64)
		s->batch = 8;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0)
		return -errno;
	if (bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(s->listen_fd, 8) < 0 ||
	    getsockname(s->listen_fd, (struct sockaddr *)&addr, &len) < 0) {
		rc = -errno;
		close(s->listen_fd);
		return rc;
	}
	s->port = ntohs(addr.sin_port);
	snprintf(s->address, sizeof(s->address), "127.0.0.1:%u", (unsigned)s->port);
	rc = pthread_create(&s->thread, NULL, serve, s);
	if (rc != 0) {
		close(s->listen_fd);
		return -rc;
	}
	return 0;
}

void fake_server_stop(struct fake_server *s)
{
	shutdown(s->listen_fd, SHUT_RDWR);
	pthread_join(s->thread, NULL);
	close(s->listen_fd);
	for (int i = 0; i < FAKE_SLOTS; i++)
		entry_clear(&s->table[i]);
}
