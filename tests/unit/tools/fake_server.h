/*
 * A tiny in-test ringkv server: one thread, 127.0.0.1, an ephemeral port,
 * one connection at a time. It decodes requests with proto/frame.c and
 * answers from a small in-memory table (SCAN included), in one of a few scripted manners
 * (reversed batches, closing early, garbage) that exercise the client.
 */
#ifndef RINGKV_TESTS_FAKE_SERVER_H
#define RINGKV_TESTS_FAKE_SERVER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

enum fake_mode {
	FAKE_STORE,   /* put/get/del on the table, answered at once */
	FAKE_REVERSE, /* like STORE, answers held and sent in reversed batches */
	FAKE_ECHO,    /* every answer carries the request's value back */
	FAKE_ERROR,   /* every answer is INTERNAL with error text FAKE_ERROR_TEXT */
	FAKE_GARBAGE, /* answers the first request with an undecodable frame */
	FAKE_SILENT,  /* reads every request, never answers (timeouts) */
	FAKE_RESP,    /* answers the first request as a Redis server would */
};

#define FAKE_ERROR_TEXT "disk on fire"
#define FAKE_SLOTS 64
/* A SCAN answers at most this many pairs, whatever its limit (a real server
 * may answer fewer than asked too), so that clients must page. */
#define FAKE_SCAN_PAGE 3
#define FAKE_MAX_SEEN 4096

struct fake_entry {
	uint8_t *key;
	size_t key_len;
	uint8_t *value;
	size_t value_len;
};

struct fake_server {
	int listen_fd;
	uint16_t port;
	char address[32];   /* "127.0.0.1:PORT" */
	pthread_t thread;
	enum fake_mode mode;
	int batch;          /* FAKE_REVERSE: answers per batch */
	int close_after;    /* > 0: close a connection after reading this many */
	struct fake_entry table[FAKE_SLOTS];
	uint64_t seen_ids[FAKE_MAX_SEEN]; /* request ids in arrival order */
	int seen;
};

/* Starts the server thread; 0 or a negative errno. */
int fake_server_start(struct fake_server *s, enum fake_mode mode);
/* Stops accepting, joins the thread (clients must have closed), frees. */
void fake_server_stop(struct fake_server *s);

#endif
