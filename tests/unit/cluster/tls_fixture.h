/*
 * Certificates for the peer TLS tests, made in-process with OpenSSL (no
 * openssl CLI needed): a CA, node certificates signed by it with a chosen
 * subjectAltName and validity, written as PEM files NAME.pem and NAME.key
 * into the fixture's directory; and the peers' context of a node.
 * cmocka asserts on any failure.
 */
#ifndef RINGKV_TESTS_TLS_FIXTURE_H
#define RINGKV_TESTS_TLS_FIXTURE_H

#include <openssl/evp.h>
#include <openssl/x509.h>

struct tls_server;

struct tls_fixture_ca {
	EVP_PKEY *key;
	X509 *cert;
};

/* Makes the directory (removed by tls_fixture_cleanup): 0 or -1. */
int tls_fixture_init(void);
void tls_fixture_cleanup(void);
const char *tls_fixture_dir(void);

/* A self-signed CA, written as NAME.pem. */
void tls_fixture_ca(struct tls_fixture_ca *ca, const char *name);
void tls_fixture_ca_free(struct tls_fixture_ca *ca);

/* NAME.pem and NAME.key: signed by `ca`, `san` as subjectAltName ("URI:...,
 * DNS:..."), valid from `from_s` to `to_s` seconds from now. */
void tls_fixture_node(const char *name, const struct tls_fixture_ca *ca, const char *san,
		      long from_s, long to_s);

/* The peers' context of certificate NAME verifying against CA file CA. */
struct tls_server *tls_fixture_peer_ctx(const char *name, const char *ca);

#endif
