/*
 * libringkv: the C client of ringkv's native protocol.
 *
 * One struct rkv_client is one TCP connection, used by one thread. The simple
 * calls (rkv_get, rkv_put, rkv_del) send one request and wait for its answer.
 * For pipelining, queue requests with rkv_send_*, push them out with
 * rkv_flush, and collect answers with rkv_recv in whatever order the server
 * sends them (each carries its request id).
 *
 * Return values: 0 (RKV_STATUS_OK), a positive server status (NOT_FOUND = 1 ...
 * INTERNAL = 8, as in proto/ringkv.proto), or a negative errno / RKV_E* code for
 * a local or transport failure (the connection is then unusable).
 */
#ifndef RINGKV_LIBRINGKV_H
#define RINGKV_LIBRINGKV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum rkv_status {
	RKV_STATUS_OK = 0,
	RKV_STATUS_NOT_FOUND = 1,
	RKV_STATUS_INVALID_ARGUMENT = 2,
	RKV_STATUS_TOO_LARGE = 3,
	RKV_STATUS_RESOURCE_EXHAUSTED = 4,
	RKV_STATUS_UNAVAILABLE = 5,
	RKV_STATUS_NOT_LEADER = 6,
	RKV_STATUS_TIMEOUT = 7,
	RKV_STATUS_INTERNAL = 8,
};

struct rkv_client;

/* A server answer. value/error stay valid until the next call on the client. */
struct rkv_result {
	uint64_t id;
	int status;          /* enum rkv_status */
	const void *value;
	size_t value_len;
	const char *error;   /* NUL-terminated, "" when none */
};

/* Name of a status ("OK", "NOT_FOUND", ...) or of a negative error code. */
const char *rkv_status_name(int status);

/*
 * Connects to "HOST:PORT" (IPv4, IPv6 in brackets, or a host name). 0 or a
 * negative errno; `err` (may be NULL) gets a readable reason.
 */
int rkv_connect(const char *address, struct rkv_client **out, char *err, size_t errlen);
void rkv_close(struct rkv_client *c);

/* Blocking calls. rkv_get copies the value into a malloc'd buffer the caller frees. */
int rkv_get(struct rkv_client *c, const void *key, size_t key_len,
	    void **value, size_t *value_len);
int rkv_put(struct rkv_client *c, const void *key, size_t key_len,
	    const void *value, size_t value_len);
int rkv_del(struct rkv_client *c, const void *key, size_t key_len);

/* Pipelining: queue (copied into the send buffer), returns the id in *id. */
int rkv_send_get(struct rkv_client *c, const void *key, size_t key_len, uint64_t *id);
int rkv_send_put(struct rkv_client *c, const void *key, size_t key_len,
		 const void *value, size_t value_len, uint64_t *id);
int rkv_send_del(struct rkv_client *c, const void *key, size_t key_len, uint64_t *id);
/* Writes every queued request to the socket. */
int rkv_flush(struct rkv_client *c);
/* Waits for the next response (flushing first). 0 with *res filled, or < 0. */
int rkv_recv(struct rkv_client *c, struct rkv_result *res);

/* The text of the last server error or transport failure on this client. */
const char *rkv_last_error(const struct rkv_client *c);

#ifdef __cplusplus
}
#endif

#endif
