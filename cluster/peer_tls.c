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

#include <openssl/x509v3.h>

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
		} else if (found && found != id) {
			snprintf(err, errlen, "its certificate names two nodes (%" PRIu64 " and %"
				 PRIu64 ")", found, id);
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
	uint64_t named;

	if (!cert) {
		snprintf(err, errlen, "it showed no certificate");
		return -EPERM;
	}
	if (peer_tls_cert_node(cert, &named, err, errlen) != 0)
		return -EPERM;
	if (named != node) {
		snprintf(err, errlen, "its certificate is for node %" PRIu64 ", not node %" PRIu64,
			 named, node);
		return -EPERM;
	}
	return 0;
}
