/*
 * ringkv-bench's authentication (ringkvd --users): each connection sends
 * one AUTH (RESP) or Auth request (native) right after connecting and its
 * TLS handshake, before the run, and waits for the answer, blocking. The
 * credentials are libringkv's: --auth-file, RINGKV_AUTH_FILE, or
 * RINGKV_USER and RINGKV_PASSWORD.
 */
#include "perf/bench/auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/errors.h"
#include "proto/frame.h"
#include "tools/libringkv_private.h"

#define FIELD_MAX 1024
#define ANSWER_MAX 4096

static int put_all(int fd, SSL *ssl, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = ssl ? SSL_write(ssl, p, (int)len) : write(fd, p, len);

		if (n <= 0) {
			ERR_clear_error();
			return n < 0 && !ssl ? -errno : -EIO;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static ssize_t get_some(int fd, SSL *ssl, uint8_t *p, size_t len)
{
	ssize_t n = ssl ? SSL_read(ssl, p, (int)len) : read(fd, p, len);

	if (n <= 0) {
		ERR_clear_error();
		return -EIO;
	}
	return n;
}

int bench_authenticate(int fd, struct ssl_st *ssl, enum bench_protocol protocol, char *err,
		       size_t err_len)
{
	char user[FIELD_MAX], password[FIELD_MAX];
	uint8_t out[3 * FIELD_MAX], in[ANSWER_MAX];
	size_t got = 0, n;
	int rv = libringkv_auth_credentials(user, password, sizeof user, err, err_len);

	if (rv <= 0)
		return rv;
	if (protocol == BENCH_PROTOCOL_NATIVE) {
		struct frame_request req = {
			.id = 1, .op = FRAME_OP_AUTH,
			.key = { (const uint8_t *)user, (uint32_t)strlen(user) },
			.value = { (const uint8_t *)password, (uint32_t)strlen(password) },
		};
		int m = frame_encode_request(&req, out, sizeof out);

		n = m < 0 ? 0 : (size_t)m;
	} else {
		int m = snprintf((char *)out, sizeof out, "*3\r\n$4\r\nAUTH\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n",
				 strlen(user), user, strlen(password), password);

		n = m < 0 || (size_t)m >= sizeof out ? 0 : (size_t)m;
	}
	OPENSSL_cleanse(password, sizeof password);
	if (n == 0 || (rv = put_all(fd, ssl, out, n)) != 0) {
		OPENSSL_cleanse(out, sizeof out);
		snprintf(err, err_len, "cannot send AUTH");
		return rv ? rv : -EINVAL;
	}
	OPENSSL_cleanse(out, sizeof out);
	for (;;) {
		ssize_t m = get_some(fd, ssl, in + got, sizeof in - 1 - got);

		if (m < 0) {
			snprintf(err, err_len, "the server closed the connection during AUTH");
			return (int)m;
		}
		got += (size_t)m;
		if (protocol == BENCH_PROTOCOL_NATIVE) {
			uint32_t len = 0;
			uint64_t id;
			int status;
			struct frame_slice value, error;
			struct frame_limits l;

			frame_limits_default(&l);
			rv = frame_peek(in, got, &l, &len);
			if (rv == RKV_EAGAIN && got < sizeof in - 1)
				continue;
			if (rv != 0 || frame_decode_response(in + FRAME_HEADER_SIZE, len, &id, &status,
							     &value, &error) != 0) {
				snprintf(err, err_len, "a bad answer to Auth");
				return -EPROTO;
			}
			if (status == 0)
				return 0;
			snprintf(err, err_len, "Auth refused: %.*s", (int)error.len,
				 (const char *)error.data);
			return -EACCES;
		}
		in[got] = '\0';
		if (!strstr((char *)in, "\r\n") && got < sizeof in - 1)
			continue;
		if (strncmp((char *)in, "+OK\r\n", 5) == 0)
			return 0;
		in[strcspn((char *)in, "\r\n")] = '\0';
		snprintf(err, err_len, "AUTH refused: %s", (char *)in);
		return -EACCES;
	}
}
