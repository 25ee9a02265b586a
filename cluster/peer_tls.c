/*
 * A peer certificate's node id (the SAN URI convention of cluster/peer_tls.h).
 * Certificates reaching here were verified by OpenSSL; their contents are
 * still the other side's bytes: every field is checked, nothing asserted.
 */
#include "cluster/peer_tls.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "core/log.h"
#include "io/tls.h"

/* "<digits>" of a ringkv URI: a node id >= 1, or 0 when malformed. */
static uint64_t parse_id(const unsigned char *p, size_t len)
{
	uint64_t id = 0;

	if (len == 0 || len > 20 || p[0] == '0')
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned digit = (unsigned)p[i] - '0';

		if (digit > 9 || id > (UINT64_MAX - digit) / 10)
			return 0;
		id = id * 10 + digit;
	}
	return id;
}

int peer_tls_cert_node(X509 *cert, uint64_t *node, char *err, size_t errlen)
{
	const size_t plen = sizeof PEER_TLS_URI_PREFIX - 1;
	GENERAL_NAMES *names;
	uint64_t found = 0;
	int rv = 0, n;

	*node = 0;
	names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	n = names ? sk_GENERAL_NAME_num(names) : 0;
	for (int i = 0; i < n && rv == 0; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		const unsigned char *uri;
		uint64_t id;
		size_t len;

		if (gn->type != GEN_URI)
			continue;
		uri = ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
		len = (size_t)ASN1_STRING_length(gn->d.uniformResourceIdentifier);
		if (len < plen || memcmp(uri, PEER_TLS_URI_PREFIX, plen) != 0)
			continue; /* somebody else's URI */
		id = parse_id(uri + plen, len - plen);
		if (id == 0) {
			snprintf(err, errlen, "its certificate's URI %.*s is not %s<node id>",
				 (int)(len > 64 ? 64 : len), (const char *)uri,
				 PEER_TLS_URI_PREFIX);
			rv = -EINVAL;
		} else if (found) {
			snprintf(err, errlen, "its certificate names two nodes (%" PRIu64 " and %"
				 PRIu64 "); it must name exactly one", found, id);
			rv = -EINVAL;
		} else {
			found = id;
		}
	}
	GENERAL_NAMES_free(names);
	if (rv == 0 && found == 0) {
		snprintf(err, errlen, "its certificate names no node (no SAN URI %s<id>)",
			 PEER_TLS_URI_PREFIX);
		rv = -ENOENT;
	}
	if (rv == 0)
		*node = found;
	return rv;
}

int peer_tls_check(const struct tls_conn *t, uint64_t node, char *err, size_t errlen)
{
	X509 *cert = tls_conn_peer_cert(t);

	if (!cert) {
		snprintf(err, errlen, "it showed no certificate");
		return -EPERM;
	}
	return peer_tls_cert_is(cert, node, err, errlen);
}

int peer_tls_cert_is(X509 *cert, uint64_t node, char *err, size_t errlen)
{
	uint64_t named;

	if (peer_tls_cert_node(cert, &named, err, errlen) != 0)
		return -EPERM;
	if (named != node) {
		snprintf(err, errlen, "its certificate is for node %" PRIu64 ", not node %" PRIu64,
			 named, node);
		return -EPERM;
	}
	return 0;
}

/* The certificates of a PEM file: the first in *leaf, the others in *chain. */
static int read_chain(const char *path, X509 **leaf, STACK_OF(X509) **chain)
{
	FILE *f = fopen(path, "re");
	X509 *x;

	*leaf = NULL;
	*chain = sk_X509_new_null();
	if (!f || !*chain) {
		if (f)
			fclose(f);
		return -EINVAL;
	}
	*leaf = PEM_read_X509(f, NULL, NULL, NULL);
	while (*leaf && (x = PEM_read_X509(f, NULL, NULL, NULL)))
		if (!sk_X509_push(*chain, x))
			X509_free(x);
	fclose(f);
	ERR_clear_error(); /* the end of the file reads as an error */
	return *leaf ? 0 : -EINVAL;
}

int peer_tls_own_check(const char *flag, const char *cert_file, const char *ca_file,
		       uint64_t node, char *err, size_t errlen)
{
	STACK_OF(X509) *chain = NULL;
	X509_STORE_CTX *vctx = NULL;
	X509_STORE *store = NULL;
	X509 *leaf = NULL;
	char why[200];
	uint64_t named;
	int rv = -EINVAL;

	if (read_chain(cert_file, &leaf, &chain) != 0) {
		snprintf(err, errlen, "%s-cert %s: no PEM certificate in it", flag, cert_file);
		goto out;
	}
	if (peer_tls_cert_node(leaf, &named, why, sizeof why) != 0) {
		/* "its certificate ..." reads as "the certificate ..." here. */
		snprintf(err, errlen, "%s-cert %s: %s; this is node %" PRIu64, flag, cert_file,
			 strncmp(why, "its ", 4) == 0 ? why + 4 : why, node);
		goto out;
	}
	if (named != node) {
		snprintf(err, errlen, "%s-cert %s: the certificate is for node %" PRIu64
			 " (SAN URI %s%" PRIu64 "), but this is node %" PRIu64 "; its peers "
			 "would refuse it", flag, cert_file, named, PEER_TLS_URI_PREFIX, named, node);
		goto out;
	}
	/* Not valid yet: a machine booting before its clock is synced may
	 * see that of a good certificate; it starts, and its peers refuse it
	 * until the clock is right (their refusal says why). */
	if (X509_cmp_current_time(X509_get0_notBefore(leaf)) >= 0)
		log_warn("%s-cert %s: the certificate is not valid yet by this machine's "
			 "clock (not synced?); its peers refuse it until it is", flag, cert_file);
	if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
		snprintf(err, errlen, "%s-cert %s: the certificate has expired; its peers would "
			 "refuse it", flag, cert_file);
		goto out;
	}
	store = X509_STORE_new();
	vctx = X509_STORE_CTX_new();
	if (!store || !vctx || X509_STORE_load_file(store, ca_file) != 1 ||
	    X509_STORE_CTX_init(vctx, store, leaf, chain) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "%s-ca %s: cannot load it to check %s-cert", flag, ca_file,
			 flag);
		goto out;
	}
	/* The dates are checked above: the chain only. */
	X509_STORE_CTX_set_flags(vctx, X509_V_FLAG_NO_CHECK_TIME);
	if (X509_verify_cert(vctx) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "%s-cert %s: not signed by %s-ca %s (%s); its peers would "
			 "refuse it", flag, cert_file, flag, ca_file,
			 X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx)));
		goto out;
	}
	rv = 0;
out:
	X509_STORE_CTX_free(vctx);
	X509_STORE_free(store);
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	return rv;
}
