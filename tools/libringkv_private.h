/*
 * What libringkv's files share and users never see (not exported: the
 * version script exports rkv_* only).
 */
#ifndef RINGKV_LIBRINGKV_PRIVATE_H
#define RINGKV_LIBRINGKV_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/libringkv.h"

/*
 * One blocking round trip of op (enum frame_op) on c, marked no_forward if
 * asked. Returns as call() does (a status >= 0, or a negative transport
 * error); on a status, *payload and *payload_len give the answer's whole
 * payload (valid until the next call on c) for the cluster decoders.
 */
int libringkv_call_raw(struct rkv_client *c, int op, bool no_forward, const void *key,
		       size_t key_len, const void *value, size_t value_len,
		       struct rkv_result *res, const uint8_t **payload, size_t *payload_len);

/* libringkv_call_raw of a BACKUP request with q's fields (no_forward). */
struct frame_backup_req;
int libringkv_call_backup(struct rkv_client *c, const struct frame_backup_req *q,
			  struct rkv_result *res, const uint8_t **payload, size_t *payload_len);

/* libringkv_call_raw of a SHARD_MOVE request with q's fields (no_forward). */
struct frame_move_req;
int libringkv_call_move(struct rkv_client *c, const struct frame_move_req *q,
			struct rkv_result *res, const uint8_t **payload, size_t *payload_len);

/* A malloc'd copy of res's value; 0 or -ENOMEM. */
int libringkv_copy_value(struct rkv_client *c, const struct rkv_result *res, void **value,
			 size_t *value_len);

/* Sets the text rkv_last_error(c) returns. */
void libringkv_set_error(struct rkv_client *c, const char *text);

/* ---- credentials (tools/libringkv_auth.c) ---- */

/*
 * Authenticates a new connection when credentials are set (rkv_auth_set*,
 * RINGKV_AUTH_FILE, RINGKV_USER/RINGKV_PASSWORD), within timeout_ms. 0
 * (done, or no credentials), -EACCES (refused) or a transport error, with
 * the reason in `err`.
 */
int libringkv_auth(struct rkv_client *c, const char *address, int timeout_ms, char *err,
		   size_t errlen);

/*
 * The credentials libringkv_auth would use, copied into user and password
 * (len bytes each): 1, 0 when none are set, or a negative code with the
 * reason in `err`. For clients that speak the protocol themselves
 * (ringkv-bench).
 */
int libringkv_auth_credentials(char *user, char *password, size_t len, char *err,
				size_t errlen);

/* ---- TLS (tools/libringkv_tls.c) ---- */

typedef struct ssl_st SSL;

/*
 * The TLS state of a new connection on `fd` to `host`, or *out = NULL when
 * TLS is off (no rkv_tls_set_ca, no RINGKV_TLS_CA). The server's
 * certificate will be checked against the CA and `host`. 0, or a negative
 * code with the reason in `err` (a bad RINGKV_TLS_CA file).
 */
int libringkv_tls_new(int fd, const char *host, SSL **out, char *err, size_t errlen);

#define LIBRINGKV_TLS_WANT_READ 1
#define LIBRINGKV_TLS_WANT_WRITE 2
/*
 * After an SSL call returned `rv` <= 0: LIBRINGKV_TLS_WANT_READ or _WRITE
 * (wait for the socket, call again), or a negative code with the reason
 * in `err`: RKV_ECLOSED (the server closed), RKV_EPROTO (a TLS failure, a
 * refused certificate), -errno.
 */
int libringkv_tls_wants(SSL *ssl, int rv, char *err, size_t errlen);

#endif
