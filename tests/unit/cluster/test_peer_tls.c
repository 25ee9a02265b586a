/*
 * Peer mutual TLS (cluster/peer_tls.c over io/tls.c): two connections of
 * the peers' context handshake through memory, one dialling and one
 * accepting, with certificates this test makes itself (a cluster CA, a
 * foreign CA; nodes 2 and 4; an expired one). Checks what a node accepts,
 * the reason it gives when it refuses and the alert the refused side reads,
 * and the check of a node's own certificate at start-up.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cluster/peer_tls.h"
#include "io/tls.h"
#include "tls_fixture.h"

static struct tls_fixture_ca cluster_ca, other_ca;

static int setup(void **state)
{
	(void)state;
	if (tls_fixture_init() != 0)
		return -1;
	tls_fixture_ca(&cluster_ca, "ca");
	tls_fixture_ca(&other_ca, "otherca");
	tls_fixture_node("node2", &cluster_ca, "URI:ringkv://node/2,DNS:localhost", -60, 86400);
	tls_fixture_node("node4", &cluster_ca, "URI:ringkv://node/4", -60, 86400);
	tls_fixture_node("foreign2", &other_ca, "URI:ringkv://node/2", -60, 86400);
	tls_fixture_node("nameless", &cluster_ca, "DNS:node2.example", -60, 86400);
	tls_fixture_node("bad_uri", &cluster_ca, "URI:ringkv://node/02", -60, 86400);
	tls_fixture_node("two_ids", &cluster_ca, "URI:ringkv://node/2,URI:ringkv://node/3", -60, 86400);
	tls_fixture_node("twice2", &cluster_ca, "URI:ringkv://node/2,URI:ringkv://node/2", -60, 86400);
	/* Expired an hour ago: a node refuses to start with it, so the test
	 * dials with a context made before the expiry check (raw OpenSSL). */
	tls_fixture_node("expired2", &cluster_ca, "URI:ringkv://node/2", -86400, -3600);
	tls_fixture_node("node1", &cluster_ca, "URI:ringkv://node/1", -60, 86400);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tls_fixture_ca_free(&cluster_ca);
	tls_fixture_ca_free(&other_ca);
	tls_fixture_cleanup();
	return 0;
}

/* Moves the ciphertext `from` has to send into `to`: whether any moved. */
static bool pump(struct tls_conn *from, struct tls_conn *to)
{
	const uint8_t *data;
	uint8_t *room;
	size_t n = tls_conn_send_data(from, &data), cap;

	if (n == 0)
		return false;
	cap = tls_conn_recv_room(to, &room);
	if (cap == 0)
		return false;
	if (n > cap)
		n = cap;
	memcpy(room, data, n);
	tls_conn_received(to, n);
	tls_conn_sent(from, n);
	return true;
}

struct result {
	int dialer, acceptor;             /* last tls_conn_handshake results */
	char dialer_err[200], acceptor_err[200];
};

/* The acceptor's and the dialler's checks inside the handshake
 * (tls_conn_set_check), or NULL. */
static tls_cert_check_fn *acceptor_check, *dialer_check;

/* Handshakes a dialler of `dial_ctx` with an acceptor of `accept_ctx`. */
static struct result handshake(struct tls_server *dial_ctx, struct tls_server *accept_ctx,
			       struct tls_conn **dialer_out, struct tls_conn **acceptor_out)
{
	struct tls_conn *d = tls_conn_dial(dial_ctx), *a = tls_conn_new(accept_ctx);
	struct result r = { 0, 0, "", "" };

	assert_non_null(d);
	assert_non_null(a);
	if (acceptor_check)
		tls_conn_set_check(a, acceptor_check, NULL);
	if (dialer_check)
		tls_conn_set_check(d, dialer_check, NULL);
	for (int round = 0; round < 20; round++) {
		if (r.dialer == 0) {
			r.dialer = tls_conn_handshake(d);
			if (r.dialer == TLS_FAILED)
				snprintf(r.dialer_err, sizeof r.dialer_err, "%s", tls_conn_error(d));
		}
		if (r.acceptor == 0) {
			r.acceptor = tls_conn_handshake(a);
			if (r.acceptor == TLS_FAILED)
				snprintf(r.acceptor_err, sizeof r.acceptor_err, "%s",
					 tls_conn_error(a));
		}
		bool moved = pump(d, a);

		moved |= pump(a, d);
		if (!moved && r.dialer != 0 && r.acceptor != 0)
			break;
	}
	*dialer_out = d;
	*acceptor_out = a;
	return r;
}

/* Node 2 dials node 1: both verify, each certificate names its node. */
static void test_good_certificates(void **state)
{
	struct tls_server *n2 = tls_fixture_peer_ctx("node2", "ca"), *n1 = tls_fixture_peer_ctx("node1", "ca");
	struct tls_conn *d, *a;
	struct result r = handshake(n2, n1, &d, &a);
	char err[200] = "";

	(void)state;
	assert_int_equal(r.dialer, 1);
	assert_int_equal(r.acceptor, 1);
	assert_int_equal(peer_tls_check(a, 2, err, sizeof err), 0);
	assert_int_equal(peer_tls_check(d, 1, err, sizeof err), 0);
	/* The same connections do not pass for other nodes. */
	assert_int_equal(peer_tls_check(a, 3, err, sizeof err), -EPERM);
	assert_string_equal(err, "its certificate is for node 2, not node 3");
	tls_conn_free(d);
	tls_conn_free(a);
	tls_server_destroy(n2);
	tls_server_destroy(n1);
}

/* A certificate of another CA (another cluster) fails the handshake on the
 * side that verifies it, and that side says why. */
static void test_wrong_ca_refused(void **state)
{
	struct tls_server *foreign = tls_fixture_peer_ctx("foreign2", "ca"), *n1 = tls_fixture_peer_ctx("node1", "ca");
	struct tls_conn *d, *a;
	struct result r = handshake(foreign, n1, &d, &a);

	(void)state;
	assert_int_equal(r.acceptor, TLS_FAILED);
	assert_non_null(strstr(r.acceptor_err, "certificate verify failed"));
	assert_non_null(strstr(r.acceptor_err, "unable to get local issuer certificate"));
	/* Whose certificate it was: one line says who and why. */
	assert_non_null(strstr(r.acceptor_err, "(certificate /CN=foreign2 issued by /CN=otherca)"));
	/* The dialler may have finished its side first (TLS 1.3 client
	 * certificates are checked after it sent Finished): it reads the
	 * alert with its first record, never a frame. */
	tls_conn_free(d);
	tls_conn_free(a);
	/* And the other way: node 1 dialling a node of another cluster refuses
	 * it, with the alert that tells the refused side why. */
	r = handshake(n1, foreign, &d, &a);
	assert_int_equal(r.dialer, TLS_FAILED);
	assert_non_null(strstr(r.dialer_err, "unable to get local issuer certificate"));
	assert_string_equal(tls_conn_alert_sent(d), "unknown CA");
	assert_int_equal(r.acceptor, TLS_FAILED);
	assert_string_equal(tls_conn_alert_received(a), "unknown CA");
	assert_string_equal(r.acceptor_err, "refused by the other side: TLS alert unknown CA "
			    "(it does not trust the CA that signed our certificate)");
	tls_conn_free(d);
	tls_conn_free(a);
	tls_server_destroy(foreign);
	tls_server_destroy(n1);
}

/* Node 4's valid certificate does not make it node 2. */
static void test_wrong_node_id_refused(void **state)
{
	struct tls_server *n4 = tls_fixture_peer_ctx("node4", "ca"), *n1 = tls_fixture_peer_ctx("node1", "ca");
	struct tls_conn *d, *a;
	struct result r = handshake(n4, n1, &d, &a);
	char err[200] = "";

	(void)state;
	assert_int_equal(r.acceptor, 1); /* the chain is good */
	assert_int_equal(peer_tls_check(a, 2, err, sizeof err), -EPERM);
	assert_string_equal(err, "its certificate is for node 4, not node 2");
	assert_int_equal(peer_tls_check(a, 4, err, sizeof err), 0);
	tls_conn_free(d);
	tls_conn_free(a);
	tls_server_destroy(n4);
	tls_server_destroy(n1);
}

/* An expired certificate: node 1 refuses the handshake, naming the expiry.
 * The dialler is raw OpenSSL, since tls_peer_create refuses expired files. */
static void test_expired_refused(void **state)
{
	struct tls_server *n1 = tls_fixture_peer_ctx("node1", "ca");
	struct tls_conn *a = tls_conn_new(n1);
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	char cert[256], key[256];
	BIO *inner, *outer;
	SSL *ssl;
	int acceptor = 0;

	(void)state;
	snprintf(cert, sizeof cert, "%s/expired2.pem", tls_fixture_dir());
	snprintf(key, sizeof key, "%s/expired2.key", tls_fixture_dir());
	assert_int_equal(SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
	ssl = SSL_new(ctx);
	assert_int_equal(BIO_new_bio_pair(&inner, 0, &outer, 0), 1);
	SSL_set_bio(ssl, inner, inner);
	SSL_set_connect_state(ssl);
	for (int round = 0; round < 20 && acceptor == 0; round++) {
		uint8_t buf[8192], *room;
		int n;

		SSL_do_handshake(ssl);
		while ((n = BIO_read(outer, buf, sizeof buf)) > 0) {
			assert_true(tls_conn_recv_room(a, &room) >= (size_t)n);
			memcpy(room, buf, (size_t)n);
			tls_conn_received(a, (size_t)n);
		}
		acceptor = tls_conn_handshake(a);
		for (const uint8_t *data; (n = (int)tls_conn_send_data(a, &data)) > 0;) {
			assert_int_equal(BIO_write(outer, data, n), n);
			tls_conn_sent(a, (size_t)n);
		}
	}
	assert_int_equal(acceptor, TLS_FAILED);
	assert_non_null(strstr(tls_conn_error(a), "certificate has expired"));
	SSL_free(ssl);
	BIO_free(outer);
	SSL_CTX_free(ctx);
	tls_conn_free(a);
	tls_server_destroy(n1);
}

/* The identity convention itself, on certificates without a handshake. */
static void test_certificate_names(void **state)
{
	static const struct {
		const char *file;
		int rv;
		uint64_t node;
		const char *err;
	} cases[] = {
		{ "node2", 0, 2, "" },
		{ "node4", 0, 4, "" },
		{ "nameless", -ENOENT, 0, "its certificate names no node (no SAN URI ringkv://node/<id>)" },
		{ "bad_uri", -EINVAL, 0, "its certificate's URI ringkv://node/02 is not ringkv://node/<node id>" },
		{ "two_ids", -EINVAL, 0, "its certificate names two nodes (2 and 3); it must name exactly one" },
		{ "twice2", -EINVAL, 0, "its certificate names two nodes (2 and 2); it must name exactly one" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char path[256], err[200] = "";
		uint64_t node = 99;
		X509 *cert;
		FILE *f;

		snprintf(path, sizeof path, "%s/%s.pem", tls_fixture_dir(), cases[i].file);
		f = fopen(path, "r");
		assert_non_null(f);
		cert = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
		assert_non_null(cert);
		assert_int_equal(peer_tls_cert_node(cert, &node, err, sizeof err), cases[i].rv);
		assert_int_equal(node, cases[i].node);
		assert_string_equal(err, cases[i].err);
		X509_free(cert);
	}
}

/* What the dialler reads after the acceptor refused it (TLS 1.3: the
 * dialler's handshake was over first): TLS_FAILED, the alert's reason. */
static const char *dialler_refusal(struct tls_conn *d)
{
	uint8_t buf[64];

	assert_int_equal(tls_conn_read(d, buf, sizeof buf), TLS_FAILED);
	return tls_conn_error(d);
}

/* The node 1 of cluster/peer_tls_io.c's peer_in_cert_check: only node 2 is its peer. */
static int only_node2(void *arg, X509 *cert, char *why, size_t len)
{
	(void)arg;
	return peer_tls_cert_is(cert, 2, why, len);
}

/* A check inside the handshake refuses with a bad_certificate alert, which
 * the dialler reads as the reason; a CA refusal is an unknown_ca alert. */
static void test_refusals_send_alerts(void **state)
{
	struct tls_server *n4 = tls_fixture_peer_ctx("node4", "ca"), *n1 = tls_fixture_peer_ctx("node1", "ca");
	struct tls_server *foreign = tls_fixture_peer_ctx("foreign2", "ca");
	struct tls_conn *d, *a;
	struct result r;

	(void)state;
	acceptor_check = only_node2;
	r = handshake(n4, n1, &d, &a);
	assert_int_equal(r.acceptor, TLS_FAILED);
	assert_string_equal(r.acceptor_err, "certificate verify failed: certificate rejected "
			    "(its certificate is for node 4, not node 2)");
	assert_string_equal(tls_conn_alert_sent(a), "bad certificate");
	assert_int_equal(r.dialer, 1);
	assert_non_null(strstr(dialler_refusal(d), "refused by the other side: TLS alert bad "
				"certificate (it refused our certificate"));
	assert_string_equal(tls_conn_alert_received(d), "bad certificate");
	tls_conn_free(d);
	tls_conn_free(a);
	/* Node 2 passes the same check. */
	tls_server_destroy(n4);
	n4 = tls_fixture_peer_ctx("node2", "ca");
	r = handshake(n4, n1, &d, &a);
	assert_int_equal(r.acceptor, 1);
	assert_null(tls_conn_alert_sent(a));
	tls_conn_free(d);
	tls_conn_free(a);
	acceptor_check = NULL;
	r = handshake(foreign, n1, &d, &a);
	assert_int_equal(r.acceptor, TLS_FAILED);
	assert_string_equal(tls_conn_alert_sent(a), "unknown CA");
	assert_string_equal(dialler_refusal(d), "refused by the other side: TLS alert unknown "
			    "CA (it does not trust the CA that signed our certificate)");
	tls_conn_free(d);
	tls_conn_free(a);
	/* The dialler's check refuses the node it reached (node 4 where it
	 * dialled node 2): its alert reaches the refused side, which says why. */
	dialer_check = only_node2;
	tls_server_destroy(n4);
	n4 = tls_fixture_peer_ctx("node4", "ca");
	r = handshake(n1, n4, &d, &a);
	dialer_check = NULL;
	assert_int_equal(r.dialer, TLS_FAILED);
	assert_string_equal(tls_conn_alert_sent(d), "bad certificate");
	assert_int_equal(r.acceptor, TLS_FAILED);
	assert_string_equal(tls_conn_alert_received(a), "bad certificate");
	assert_non_null(strstr(r.acceptor_err, "refused by the other side: TLS alert bad "
			       "certificate (it refused our certificate"));
	tls_conn_free(d);
	tls_conn_free(a);
	tls_server_destroy(foreign);
	tls_server_destroy(n4);
	tls_server_destroy(n1);
}

/* Writes the concatenation of the fixture's PEM files a and b as `name`. */
static void ca_file(const char *name, const char *a, const char *b)
{
	char path[256], in[256], buf[4096];
	FILE *out, *f;
	size_t n;

	snprintf(path, sizeof path, "%s/%s.pem", tls_fixture_dir(), name);
	out = fopen(path, "w");
	assert_non_null(out);
	for (const char *src = a; src; src = src == a ? b : NULL) {
		snprintf(in, sizeof in, "%s/%s.pem", tls_fixture_dir(), src);
		f = fopen(in, "r");
		assert_non_null(f);
		while ((n = fread(buf, 1, sizeof buf, f)) > 0)
			assert_int_equal(fwrite(buf, 1, n, out), n);
		fclose(f);
	}
	assert_int_equal(fclose(out), 0);
}

static void reload(struct tls_server *s, const char *name, const char *ca)
{
	char cert[256], key[256], cafile[256], err[200] = "";

	snprintf(cert, sizeof cert, "%s/%s.pem", tls_fixture_dir(), name);
	snprintf(key, sizeof key, "%s/%s.key", tls_fixture_dir(), name);
	snprintf(cafile, sizeof cafile, "%s/%s.pem", tls_fixture_dir(), ca);
	assert_int_equal(tls_server_reload(s, cert, key, cafile, err, sizeof err), 0);
}

/* After a reload, a connection verified against the old context is stale,
 * and its other side's certificate is verified again against the new CA
 * file: dropping the CA that signed it fails it, naming whose it is;
 * keeping it (beside another) passes; either way it is no longer stale. */
static void test_recheck_after_reload(void **state)
{
	struct tls_server *n2 = tls_fixture_peer_ctx("node2", "ca"), *n1 = tls_fixture_peer_ctx("node1", "ca");
	struct tls_conn *d, *a;
	struct result r = handshake(n2, n1, &d, &a);
	char why[320] = "";
	unsigned before = tls_server_generation(n1);

	(void)state;
	assert_int_equal(r.dialer, 1);
	assert_int_equal(r.acceptor, 1);
	assert_false(tls_conn_stale(a, n1));
	assert_false(tls_conn_stale(d, n2));
	ca_file("both", "ca", "otherca");
	/* The accepting side now trusts the other CA only. */
	reload(n1, "node1", "otherca");
	assert_int_equal(tls_server_generation(n1), before + 1);
	assert_true(tls_conn_stale(a, n1));
	assert_int_equal(tls_conn_recheck(a, n1, why, sizeof why), -EPERM);
	/* (The fixture's chain files carry the CA: OpenSSL then names it.) */
	assert_true(strcmp(why, "unable to get local issuer certificate (certificate /CN=node2 "
			   "issued by /CN=ca)") == 0 ||
		    strcmp(why, "self-signed certificate in certificate chain (certificate "
			   "/CN=node2 issued by /CN=ca)") == 0);
	assert_false(tls_conn_stale(a, n1));
	/* The dialling side trusts both: node 1's certificate still verifies. */
	reload(n2, "node2", "both");
	assert_true(tls_conn_stale(d, n2));
	assert_int_equal(tls_conn_recheck(d, n2, why, sizeof why), 0);
	assert_false(tls_conn_stale(d, n2));
	tls_conn_free(d);
	tls_conn_free(a);
	tls_server_destroy(n2);
	tls_server_destroy(n1);
}

/* A certificate that expired since its handshake fails the recheck. */
static void test_recheck_expired(void **state)
{
	struct tls_server *n2, *n1 = tls_fixture_peer_ctx("node1", "ca");
	struct tls_conn *d, *a;
	struct result r;
	char why[320] = "";

	(void)state;
	tls_fixture_node("brief2", &cluster_ca, "URI:ringkv://node/2", -60, 2);
	n2 = tls_fixture_peer_ctx("brief2", "ca");
	r = handshake(n2, n1, &d, &a);
	assert_int_equal(r.acceptor, 1);
	sleep(3);
	reload(n1, "node1", "ca");
	assert_int_equal(tls_conn_recheck(a, n1, why, sizeof why), -EPERM);
	assert_string_equal(why, "certificate has expired (certificate /CN=brief2 issued by "
			    "/CN=ca)");
	tls_conn_free(d);
	tls_conn_free(a);
	tls_server_destroy(n2);
	tls_server_destroy(n1);
}

/* When a connection's identity expires: the earliest notAfter of the chain
 * verified at the handshake, the node's or its CA's, whichever is first. */
static void test_not_after(void **state)
{
	struct tls_server *soon, *late, *n1 = tls_fixture_peer_ctx("node1", "ca");
	struct tls_conn *d, *a;
	int64_t now = (int64_t)time(NULL);
	struct result r;

	(void)state;
	tls_fixture_node("soon2", &cluster_ca, "URI:ringkv://node/2", -60, 100);
	tls_fixture_node("late2", &cluster_ca, "URI:ringkv://node/2", -60, 3 * 86400);
	soon = tls_fixture_peer_ctx("soon2", "ca");
	late = tls_fixture_peer_ctx("late2", "ca");
	a = tls_conn_new(n1);
	assert_true(tls_conn_not_after(a) == INT64_MAX); /* nothing verified yet */
	tls_conn_free(a);
	r = handshake(soon, n1, &d, &a);
	assert_int_equal(r.dialer, 1);
	assert_int_equal(r.acceptor, 1);
	assert_in_range(tls_conn_not_after(a), now + 99, now + 102); /* node 2's */
	/* node 1's and the CA's: a day from the fixture's set-up */
	assert_in_range(tls_conn_not_after(d), now + 86400 - 30, now + 86402);
	tls_conn_free(d);
	tls_conn_free(a);
	r = handshake(late, n1, &d, &a);
	assert_int_equal(r.acceptor, 1);
	/* Node 2's certificate outlives its CA: the CA's date. */
	assert_in_range(tls_conn_not_after(a), now + 86400 - 30, now + 86402);
	tls_conn_free(d);
	tls_conn_free(a);
	tls_server_destroy(late);
	tls_server_destroy(soon);
	tls_server_destroy(n1);
}

/* Sends `len` bytes of a pattern from `from` to `to` and reads them back
 * whole: the connections carry data after whatever buffers they hold. */
static void carry(struct tls_conn *from, struct tls_conn *to, size_t len)
{
	static uint8_t out[100000], in[100000];
	size_t written = 0, got = 0;

	assert_true(len <= sizeof out);
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(i * 7);
	for (int round = 0; round < 10000 && got < len; round++) {
		ssize_t n;

		if (written < len) {
			n = tls_conn_write(from, out + written, len - written);
			assert_true(n > 0 || n == TLS_WANT);
			if (n > 0)
				written += (size_t)n;
		}
		while (pump(from, to))
			;
		while (got < len && (n = tls_conn_read(to, in + got, len - got)) > 0)
			got += (size_t)n;
		if (got < len && n != TLS_WANT)
			fail_msg("round %d: read %zd after %zu of %zu bytes: %s", round, n, got, len,
				 tls_conn_error(to));
	}
	assert_int_equal(got, len);
	assert_memory_equal(in, out, len);
}

static size_t room_of(struct tls_conn *t)
{
	uint8_t *room;

	return tls_conn_recv_room(t, &room);
}

/* An accepted connection holds small buffers until it has earned full-size
 * ones (io/tls.h): on the client ports, until tls_conn_grow (the client
 * authenticated); on the peer port, until the handshake verified the other
 * side's certificate. A dialled one is full size at once. Data flows the
 * same before and after the grow. */
static void test_buffers_grow_once_authenticated(void **state)
{
	struct tls_server *n2 = tls_fixture_peer_ctx("node2", "ca"), *n1 = tls_fixture_peer_ctx("node1", "ca");
	struct tls_server *client_port;
	struct tls_conn *d, *a;
	char cert[256], key[256], err[200] = "";
	static uint8_t big[20000], got[20000];
	struct result r;
	ssize_t n;

	(void)state;
	a = tls_conn_new(n1);
	assert_int_equal(room_of(a), TLS_SMALL_ROOM);
	tls_conn_free(a);
	r = handshake(n2, n1, &d, &a);
	assert_int_equal(r.acceptor, 1);
	assert_int_equal(room_of(d), TLS_RECV_ROOM);
	assert_int_equal(room_of(a), TLS_RECV_ROOM);
	carry(d, a, 100000);
	carry(a, d, 100000);
	tls_conn_free(d);
	tls_conn_free(a);

	snprintf(cert, sizeof cert, "%s/node2.pem", tls_fixture_dir());
	snprintf(key, sizeof key, "%s/node2.key", tls_fixture_dir());
	assert_int_equal(tls_server_create(cert, key, NULL, &client_port, err, sizeof err), 0);
	r = handshake(n1, client_port, &d, &a);
	assert_int_equal(r.dialer, 1);
	assert_int_equal(r.acceptor, 1);
	assert_int_equal(room_of(a), TLS_SMALL_ROOM); /* not authenticated yet */
	carry(d, a, 5000); /* an AUTH and more, through the small pair */
	carry(a, d, 5000);
	/* A full record does not fit the small pair at once: it goes out
	 * a pair at a time. */
	n = tls_conn_write(a, big, sizeof big);
	assert_int_equal(n, TLS_WANT);
	for (int round = 0; round < 100 && n == TLS_WANT; round++) {
		while (pump(a, d))
			;
		n = tls_conn_write(a, big, sizeof big);
	}
	assert_true(n > 0);
	while (pump(a, d))
		;
	for (ssize_t total = 0, k; total < n; total += k)
		assert_true((k = tls_conn_read(d, got, sizeof got)) > 0);
	/* Grown while an answer waits to be sent: the pair is swapped only
	 * once that is out, and nothing is lost. */
	assert_int_equal(tls_conn_write(a, (const uint8_t *)"+OK", 3), 3);
	tls_conn_grow(a);
	assert_int_equal(room_of(a), TLS_RECV_ROOM);
	while (pump(a, d))
		;
	assert_int_equal(tls_conn_read(d, got, sizeof got), 3);
	assert_memory_equal(got, "+OK", 3);
	carry(d, a, 100000);
	carry(a, d, 100000);
	assert_int_equal(tls_conn_read(d, got, sizeof got), TLS_WANT);
	/* Now a whole record fits the pair at once. */
	assert_true(tls_conn_write(a, big, sizeof big) >= 16384);
	tls_conn_free(d);
	tls_conn_free(a);
	tls_server_destroy(client_port);
	tls_server_destroy(n2);
	tls_server_destroy(n1);
}

/* A node's own certificate at start-up: it names the node, once, is valid
 * now and signed by the CA given; else one line says what is wrong. */
static void test_own_certificate_checked(void **state)
{
	static const struct {
		const char *cert, *ca;
		uint64_t node;
		const char *err;   /* a part of the message; NULL: accepted */
	} cases[] = {
		{ "node2", "ca", 2, NULL },
		{ "node2", "ca", 3, "the certificate is for node 2 (SAN URI ringkv://node/2), but "
				    "this is node 3; its peers would refuse it" },
		{ "foreign2", "ca", 2, "not signed by --peer-tls-ca" },
		{ "node2", "otherca", 2, "not signed by --peer-tls-ca" },
		{ "expired2", "ca", 2, "the certificate has expired" },
		{ "nameless", "ca", 2, "certificate names no node (no SAN URI ringkv://node/<id>); "
				       "this is node 2" },
		{ "twice2", "ca", 2, "certificate names two nodes (2 and 2); it must name exactly one" },
		{ "missing", "ca", 2, "no PEM certificate in it" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char cert[256], ca[256], err[400] = "";
		int rv;

		snprintf(cert, sizeof cert, "%s/%s.pem", tls_fixture_dir(), cases[i].cert);
		snprintf(ca, sizeof ca, "%s/%s.pem", tls_fixture_dir(), cases[i].ca);
		rv = peer_tls_own_check("--peer-tls", cert, ca, cases[i].node, err, sizeof err);
		if (!cases[i].err) {
			assert_int_equal(rv, 0);
			continue;
		}
		assert_int_equal(rv, -EINVAL);
		if (!strstr(err, cases[i].err))
			fail_msg("case %zu: %s", i, err);
		assert_non_null(strstr(err, "--peer-tls-"));
	}
}

/* The peers' context needs a CA: without one nobody could be verified. */
static void test_peer_context_needs_ca(void **state)
{
	char cert[256], key[256], err[200] = "";
	struct tls_server *s = NULL;

	(void)state;
	snprintf(cert, sizeof cert, "%s/node2.pem", tls_fixture_dir());
	snprintf(key, sizeof key, "%s/node2.key", tls_fixture_dir());
	assert_int_equal(tls_peer_create("--peer-tls", cert, key, NULL, &s, err, sizeof err),
			 -EINVAL);
	assert_null(s);
	assert_string_equal(err, "--peer-tls-ca: needed to verify the peers");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_certificates),
		cmocka_unit_test(test_wrong_ca_refused),
		cmocka_unit_test(test_wrong_node_id_refused),
		cmocka_unit_test(test_expired_refused),
		cmocka_unit_test(test_certificate_names),
		cmocka_unit_test(test_refusals_send_alerts),
		cmocka_unit_test(test_recheck_after_reload),
		cmocka_unit_test(test_recheck_expired),
		cmocka_unit_test(test_not_after),
		cmocka_unit_test(test_buffers_grow_once_authenticated),
		cmocka_unit_test(test_own_certificate_checked),
		cmocka_unit_test(test_peer_context_needs_ca),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
