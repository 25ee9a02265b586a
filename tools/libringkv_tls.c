/*
 * libringkv's TLS: one process-wide client context (the CA that server
 * certificates must chain to), set by rkv_tls_set_ca() or, when that was
 * never called, from RINGKV_TLS_CA at the first connect. Every connection
 * made while it is set speaks TLS 1.3 and checks the server's certificate
 * and that it names the host (or IP address) connected to.
 *
 * Blocking OpenSSL over the connection's socket (a client is not a
 * reactor); libringkv.c does the waiting, with its deadlines.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/errors.h"
#include "io/tls_reason.h"
#include "tools/libringkv_private.h"

static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *tls_ctx;   /* NULL: plaintext */
static bool tls_decided;   /* rkv_tls_set_ca ran, or RINGKV_TLS_CA was read */

static int make_ctx(const char *ca_file, SSL_CTX **out, char *err, size_t errlen)
{
	char reason[160];
	SSL_CTX *ctx;
	int fd = open(ca_file, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		int rv = -errno;

		if (err)
			snprintf(err, errlen, "TLS CA %s: %s", ca_file, strerror(errno));
		return rv;
	}
	close(fd);
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		tls_reason(reason, sizeof reason);
		if (err)
			snprintf(err, errlen, "TLS CA %s: not a PEM certificate file (%s)",
				 ca_file, reason);
		SSL_CTX_free(ctx);
		return RKV_EINVAL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	*out = ctx;
	return 0;
}

int rkv_tls_set_ca(const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx = NULL;
	int rv = 0;

	if (ca_file && *ca_file) {
		rv = make_ctx(ca_file, &ctx, err, errlen);
		if (rv)
			return rv;
	}
	pthread_mutex_lock(&tls_lock);
	/* Connections made with the old one keep their reference. */
	SSL_CTX_free(tls_ctx);
	tls_ctx = ctx;
	tls_decided = true;
	pthread_mutex_unlock(&tls_lock);
	return 0;
}

int libringkv_tls_new(int fd, const char *host, SSL **out, char *err, size_t errlen)
{
	unsigned char ip[16];
	SSL *ssl = NULL;
	int rv = 0;

	*out = NULL;
	pthread_mutex_lock(&tls_lock);
	if (!tls_decided) {
		const char *env = getenv("RINGKV_TLS_CA");

		if (env && *env)
			rv = make_ctx(env, &tls_ctx, err, errlen);
		tls_decided = rv == 0;
	}
	if (rv == 0 && tls_ctx) {
		ssl = SSL_new(tls_ctx);
		if (!ssl)
			rv = -ENOMEM;
	}
	pthread_mutex_unlock(&tls_lock);
	if (rv || !ssl) {
		if (rv == -ENOMEM && err)
			snprintf(err, errlen, "out of memory");
		return rv;
	}
	/* The certificate must name what we connected to: an IP address in
	 * its IP SANs, or a host name (also sent as SNI). */
	if (inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1)
			goto err_setup;
	} else if (SSL_set1_host(ssl, host) != 1 || SSL_set_tlsext_host_name(ssl, host) != 1) {
		goto err_setup;
	}
	if (SSL_set_fd(ssl, fd) != 1)
		goto err_setup;
	SSL_set_connect_state(ssl);
	*out = ssl;
	return 0;

err_setup:
	if (err)
		snprintf(err, errlen, "cannot set up TLS for '%s'", host);
	ERR_clear_error();
	SSL_free(ssl);
	return RKV_EINVAL;
}

int libringkv_tls_wants(SSL *ssl, int rv, char *err, size_t errlen)
{
	char reason[160];
	long verify;

	switch (SSL_get_error(ssl, rv)) {
	case SSL_ERROR_WANT_READ:
		return LIBRINGKV_TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return LIBRINGKV_TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		return RKV_ECLOSED;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			/* The peer went away without a close_notify. */
			int e = errno;

			if (err)
				snprintf(err, errlen, "connection closed by the server");
			return e == ECONNRESET || e == EPIPE || e == 0 ? RKV_ECLOSED : -e;
		}
		break;
	default:
		break;
	}
	verify = SSL_get_verify_result(ssl);
	if (verify != X509_V_OK) {
		if (err)
			snprintf(err, errlen, "TLS: the server's certificate is refused: %s",
				 X509_verify_cert_error_string(verify));
		ERR_clear_error();
		return RKV_EPROTO;
	}
	tls_reason(reason, sizeof reason);
	if (err)
		snprintf(err, errlen, "TLS: %s", reason);
	return RKV_EPROTO;
}
