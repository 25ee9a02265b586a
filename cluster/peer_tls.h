/*
 * Who a peer's certificate says it is. With peer TLS (--tls-ca or
 * --peer-tls-ca), every peer connection is mutual TLS 1.3 whose chains
 * OpenSSL verifies against the cluster's CA (io/tls.h); this file adds the
 * ringkv part: the certificate must name the node the connection is for.
 *
 * Identity convention: a node's certificate carries one subjectAltName URI
 * `ringkv://node/<id>` (decimal, no sign, no leading zero), e.g.
 * `URI:ringkv://node/2`. The CN is not read (it is free for a host name);
 * other SAN entries (DNS, IP for the client ports) are allowed beside it.
 * The cluster is the CA: one CA signs the nodes of one cluster only.
 */
#ifndef RINGKV_CLUSTER_PEER_TLS_H
#define RINGKV_CLUSTER_PEER_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#define PEER_TLS_URI_PREFIX "ringkv://node/"

struct tls_conn;

/*
 * The node id `cert` names in its SAN URI into *node. 0; -ENOENT when it
 * names none; -EINVAL when a ringkv URI is malformed, or there are two (a
 * certificate names exactly one node). The reason in err (for a log line).
 */
int peer_tls_cert_node(X509 *cert, uint64_t *node, char *err, size_t errlen);

/*
 * A node's own peer certificate, checked at start-up and before a SIGHUP
 * reload takes it: the first certificate of `cert_file` must name `node`
 * in exactly one SAN URI, be valid now, and chain (through the file's other
 * certificates) to `ca_file`. 0; else -EINVAL with one line in err saying
 * what is wrong, `flag` ("--peer-tls") naming the option. Blocking (reads
 * the files): the main thread only.
 */
int peer_tls_own_check(const char *flag, const char *cert_file, const char *ca_file,
		       uint64_t node, char *err, size_t errlen);

/*
 * 0 when `cert` names node `node` (and no other); else -EPERM with the
 * reason in err ("its certificate is for node 4, not node 2", ...).
 */
int peer_tls_cert_is(X509 *cert, uint64_t node, char *err, size_t errlen);

/*
 * After the handshake of `t` (chain already verified): 0 when the other
 * side's certificate names node `node`; else -EPERM with the reason in err
 * ("its certificate is for node 4", "it showed no certificate", ...).
 */
int peer_tls_check(const struct tls_conn *t, uint64_t node, char *err, size_t errlen);

#endif
