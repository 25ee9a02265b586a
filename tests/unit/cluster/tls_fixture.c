/* Certificates for the peer TLS tests: see tls_fixture.h. */
#include "tls_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "io/tls.h"

static char dir[] = "/tmp/ringkv_tls_fixture.XXXXXX";

int tls_fixture_init(void)
{
	return mkdtemp(dir) ? 0 : -1;
}

void tls_fixture_cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

const char *tls_fixture_dir(void)
{
	return dir;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(cert, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A certificate for `cn` valid from `from_s` to `to_s` seconds from now,
 * signed by `ca` (NULL: self-signed CA). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const struct tls_fixture_ca *ca,
		       const char *san, long from_s, long to_s)
{
	X509 *cert = X509_new();
	X509_NAME *name = X509_NAME_new();
	static long serial = 1;

	assert_non_null(cert);
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
	X509_gmtime_adj(X509_getm_notBefore(cert), from_s);
	X509_gmtime_adj(X509_getm_notAfter(cert), to_s);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(cert, name);
	X509_set_issuer_name(cert, ca ? X509_get_subject_name(ca->cert) : name);
	X509_set_pubkey(cert, key);
	if (!ca) {
		add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(cert, ca->cert, NID_basic_constraints, "CA:FALSE");
		add_ext(cert, ca->cert, NID_ext_key_usage, "serverAuth,clientAuth");
		if (san)
			add_ext(cert, ca->cert, NID_subject_alt_name, san);
	}
	assert_true(X509_sign(cert, ca ? ca->key : key, EVP_sha256()) > 0);
	X509_NAME_free(name);
	return cert;
}

static void write_pem(const char *file, X509 *cert, EVP_PKEY *key)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, file);
	f = fopen(path, "w");
	assert_non_null(f);
	if (cert)
		assert_int_equal(PEM_write_X509(f, cert), 1);
	if (key)
		assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
}

void tls_fixture_ca(struct tls_fixture_ca *ca, const char *name)
{
	char file[64];

	ca->key = EVP_EC_gen("P-256");
	assert_non_null(ca->key);
	ca->cert = make_cert(ca->key, name, NULL, NULL, -60, 86400);
	snprintf(file, sizeof file, "%s.pem", name);
	write_pem(file, ca->cert, NULL);
}

/* NAME.pem and NAME.key: a node certificate signed by `ca`. */
void tls_fixture_node(const char *name, const struct tls_fixture_ca *ca, const char *san,
		      long from_s, long to_s)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert;
	char file[64];

	assert_non_null(key);
	cert = make_cert(key, name, ca, san, from_s, to_s);
	snprintf(file, sizeof file, "%s.pem", name);
	write_pem(file, cert, NULL);
	snprintf(file, sizeof file, "%s.key", name);
	write_pem(file, NULL, key);
	X509_free(cert);
	EVP_PKEY_free(key);
}

void tls_fixture_ca_free(struct tls_fixture_ca *ca)
{
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	ca->cert = NULL;
	ca->key = NULL;
}

struct tls_server *tls_fixture_peer_ctx(const char *name, const char *ca)
{
	char cert[256], key[256], cafile[256], err[256] = "";
	struct tls_server *s = NULL;

	snprintf(cert, sizeof cert, "%s/%s.pem", dir, name);
	snprintf(key, sizeof key, "%s/%s.key", dir, name);
	snprintf(cafile, sizeof cafile, "%s/%s.pem", dir, ca);
	if (tls_peer_create("--peer-tls", cert, key, cafile, &s, err, sizeof err) != 0)
		fail_msg("%s: %s", name, err);
	return s;
}
