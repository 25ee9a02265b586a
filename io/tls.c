/*
 * TLS on the client ports and between peers through OpenSSL's BIO pair;
 * see io/tls.h for how the ring feeds it and what it may allocate.
 */
#include "io/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "io/tls_reason.h"

struct tls_server {
	/* The context new connections take; SIGHUP swaps in a fresh one
	 * (tls_server_reload). A connection's SSL holds its own reference. */
	_Atomic(SSL_CTX *) ctx;
	_Atomic unsigned generation; /* reloads taken; bumped after ctx is swapped */
	/* Contexts swapped out: a core may have loaded the pointer just before
	 * a swap, so they are freed only at tls_server_destroy (a reload is an
	 * operator's act: a handful per process life). */
	SSL_CTX **retired;
	size_t nretired;
	const char *flag;     /* "--tls" or the peers' prefix, for messages */
	bool mutual;          /* the peers' context (tls_peer_create) */
};

struct tls_conn {
	SSL *ssl;
	BIO *outer;           /* our end of the pair; OpenSSL has the other */
	uint8_t *recv;        /* [recv_cap] ciphertext from the ring */
	size_t recv_cap;      /* TLS_SMALL_ROOM, then TLS_RECV_ROOM once grown */
	size_t recv_len;      /* bytes received into it */
	size_t recv_fed;      /* of those, bytes already written into the pair */
	bool established;
	bool grow_wanted;     /* tls_conn_grow called (or due at the handshake) */
	bool grow_at_handshake; /* the peers' context: the handshake authenticates */
	bool pair_grown;      /* the pair is TLS_PAIR_SIZE each way */
	bool shutdown_sent;
	uint16_t alert_in;    /* the fatal alert received (level << 8 | code), 0: none */
	uint16_t alert_out;   /* the fatal alert sent, 0: none */
	tls_cert_check_fn *check; /* the caller's check of the other side's certificate */
	void *check_arg;
	char who[224];        /* a refused certificate's subject and issuer, or
			       * the check's reason */
	unsigned generation;  /* of the context it was verified against */
	int64_t not_after;    /* earliest notAfter of the chain verified, seconds
			       * since the epoch; INT64_MAX: none verified */
};

/* The reason of the last failure on this core (tls_conn_error). */
static _Thread_local char last_error[400];

/*
 * Verification of the other side's certificate (peers' context): notes
 * whose certificate was refused, for tls_conn_error's line, and runs the
 * caller's check on the leaf (depth 0, the last one verified) once its chain
 * holds. A check's refusal is X509_V_ERR_CERT_REJECTED: OpenSSL then fails
 * the handshake with a bad_certificate alert.
 */
static int verify_note(int ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_conn *t = ssl ? SSL_get_app_data(ssl) : NULL;
	X509 *cert = X509_STORE_CTX_get0_cert(store);
	char subject[96], issuer[96];

	if (!t || !cert)
		return ok;
	if (ok && t->check && X509_STORE_CTX_get_error_depth(store) == 0) {
		if (t->check(t->check_arg, cert, t->who, sizeof t->who) == 0)
			return ok;
		X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
		return 0;
	}
	if (ok || t->who[0])
		return ok;
	X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
	X509_NAME_oneline(X509_get_issuer_name(cert), issuer, sizeof issuer);
	snprintf(t->who, sizeof t->who, "certificate %s issued by %s", subject, issuer);
	return ok;
}

/* A file OpenSSL is about to read: a clear errno message beats its own. */
static int check_readable(const char *flag, const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		int rv = -errno;

		snprintf(err, errlen, "%s %s: %s", flag, path, strerror(errno));
		return rv;
	}
	close(fd);
	return 0;
}

static int refuse(const char *flag, const char *path, const char *what, char *err,
		  size_t errlen)
{
	char reason[160];

	tls_reason(reason, sizeof reason);
	snprintf(err, errlen, "%s %s: %s (%s)", flag, path, what, reason);
	return -EINVAL;
}

/*
 * A context from the three files, every check of start-up made: the client
 * ports' (a TLS server), or with `mutual` the peers' (both roles, the other
 * side's certificate required and verified against `ca_file`). `flag`
 * ("--tls", "--peer-tls") names the files in messages.
 */
static int make_ctx(const char *flag, bool mutual, const char *cert_file,
		    const char *key_file, const char *ca_file, SSL_CTX **out, char *err,
		    size_t errlen)
{
	char cert_flag[32], key_flag[32], ca_flag[32], mismatch_text[80];
	SSL_CTX *ctx;
	X509 *cert;
	int rv;

	*out = NULL;
	snprintf(cert_flag, sizeof cert_flag, "%s-cert", flag);
	snprintf(key_flag, sizeof key_flag, "%s-key", flag);
	snprintf(ca_flag, sizeof ca_flag, "%s-ca", flag);
	snprintf(mismatch_text, sizeof mismatch_text, "does not match the certificate of %s",
		 cert_flag);
	rv = check_readable(cert_flag, cert_file, err, errlen);
	if (rv == 0)
		rv = check_readable(key_flag, key_file, err, errlen);
	if (rv == 0 && ca_file)
		rv = check_readable(ca_flag, ca_file, err, errlen);
	if (rv)
		return rv;
	ERR_clear_error();
	ctx = SSL_CTX_new(mutual ? TLS_method() : TLS_server_method());
	if (!ctx)
		return refuse(cert_flag, cert_file, "cannot set up TLS", err, errlen);
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION)) {
		rv = refuse(cert_flag, cert_file, "TLS 1.3 unavailable", err, errlen);
		goto err;
	}
	/* Partial writes: a full pair takes what fits, the rest waits for the
	 * ring's send. No session tickets: clients do not resume. Record
	 * buffers are kept; an accepted connection releases them until it is
	 * grown (conn_new, tls_conn_grow). */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_clear_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		rv = refuse(cert_flag, cert_file, "not a PEM certificate chain", err, errlen);
		goto err;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		/* OpenSSL checks the pair as it loads the key. */
		bool mismatch = ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH;

		rv = refuse(key_flag, key_file,
			    mismatch ? mismatch_text
				     : "not a PEM private key", err, errlen);
		goto err;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		rv = refuse(key_flag, key_file, mismatch_text,
			    err, errlen);
		goto err;
	}
	cert = SSL_CTX_get0_certificate(ctx);
	if (cert && X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
		snprintf(err, errlen, "%s %s: the certificate has expired; %s would refuse it",
			 cert_flag, cert_file, mutual ? "its peers" : "clients");
		rv = -EINVAL;
		goto err;
	}
	/* Client ports do not ask clients for certificates: their --tls-ca
	 * is only checked, so a bad file is found at start-up. Peers verify
	 * each other against it, both ways. */
	if (ca_file && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		rv = refuse(ca_flag, ca_file, "not a PEM certificate file", err, errlen);
		goto err;
	}
	if (mutual)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
				   verify_note);
	*out = ctx;
	return 0;

err:
	SSL_CTX_free(ctx);
	return rv;
}

static int create(const char *flag, bool mutual, const char *cert_file,
		  const char *key_file, const char *ca_file, struct tls_server **out,
		  char *err, size_t errlen)
{
	struct tls_server *s;
	SSL_CTX *ctx;
	int rv;

	*out = NULL;
	rv = make_ctx(flag, mutual, cert_file, key_file, ca_file, &ctx, err, errlen);
	if (rv)
		return rv;
	s = calloc(1, sizeof *s);
	if (!s) {
		SSL_CTX_free(ctx);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	atomic_init(&s->ctx, ctx);
	s->flag = flag;
	s->mutual = mutual;
	*out = s;
	return 0;
}

int tls_server_create(const char *cert_file, const char *key_file, const char *ca_file,
		      struct tls_server **out, char *err, size_t errlen)
{
	return create("--tls", false, cert_file, key_file, ca_file, out, err, errlen);
}

int tls_peer_create(const char *flag, const char *cert_file, const char *key_file,
		    const char *ca_file, struct tls_server **out, char *err, size_t errlen)
{
	if (!ca_file) {
		snprintf(err, errlen, "%s-ca: needed to verify the peers", flag);
		return -EINVAL;
	}
	return create(flag, true, cert_file, key_file, ca_file, out, err, errlen);
}

int tls_server_reload(struct tls_server *s, const char *cert_file, const char *key_file,
		      const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx, *old, **grown;
	int rv;

	grown = realloc(s->retired, (s->nretired + 1) * sizeof *s->retired);
	if (!grown) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->retired = grown;
	rv = make_ctx(s->flag, s->mutual, cert_file, key_file, ca_file, &ctx, err, errlen);
	if (rv)
		return rv;
	old = atomic_exchange_explicit(&s->ctx, ctx, memory_order_acq_rel);
	s->retired[s->nretired++] = old;
	/* After the swap: a core that sees the new generation loads a context
	 * at least as new as the one that bumped it. */
	atomic_fetch_add_explicit(&s->generation, 1, memory_order_release);
	return 0;
}

unsigned tls_server_generation(const struct tls_server *s)
{
	return atomic_load_explicit(&s->generation, memory_order_acquire);
}

void tls_server_destroy(struct tls_server *s)
{
	if (!s)
		return;
	SSL_CTX_free(atomic_load(&s->ctx));
	for (size_t i = 0; i < s->nretired; i++)
		SSL_CTX_free(s->retired[i]);
	free(s->retired);
	free(s);
}

bool tls_kernel_has_ulp(void)
{
	char buf[256];
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "re");
	bool found = false;

	if (!f)
		return false;
	if (fgets(buf, sizeof buf, f)) {
		for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n"))
			if (strcmp(tok, "tls") == 0)
				found = true;
	}
	fclose(f);
	return found;
}

/* Notes the fatal alerts either side sends (SSL_CB_ALERT; close_notify is
 * a warning, not noted). */
static void info_note(const SSL *ssl, int where, int ret)
{
	struct tls_conn *t = SSL_get_app_data(ssl);

	if (!t || !(where & SSL_CB_ALERT) || (ret >> 8) != SSL3_AL_FATAL)
		return;
	if (where & SSL_CB_READ) {
		if (!t->alert_in)
			t->alert_in = (uint16_t)ret;
	} else if (!t->alert_out) {
		t->alert_out = (uint16_t)ret;
	}
}

static struct tls_conn *conn_new(struct tls_server *s, bool dial)
{
	struct tls_conn *t = calloc(1, sizeof *t);
	BIO *inner = NULL;
	size_t pair;

	if (!t)
		return NULL;
	t->generation = tls_server_generation(s); /* before the context: see reload */
	t->not_after = INT64_MAX;
	/* What we dial is a peer we chose: full size at once. What we accept
	 * starts small until it has authenticated (tls_conn_grow). */
	t->grow_wanted = t->pair_grown = dial;
	t->grow_at_handshake = s->mutual;
	t->recv_cap = dial ? TLS_RECV_ROOM : TLS_SMALL_ROOM;
	pair = dial ? TLS_PAIR_SIZE : TLS_SMALL_PAIR;
	t->recv = malloc(t->recv_cap);
	t->ssl = SSL_new(atomic_load_explicit(&s->ctx, memory_order_acquire));
	if (!t->recv || !t->ssl || BIO_new_bio_pair(&inner, pair, &t->outer, pair) != 1) {
		ERR_clear_error();
		tls_conn_free(t);
		return NULL;
	}
	if (!dial)
		SSL_set_mode(t->ssl, SSL_MODE_RELEASE_BUFFERS);
	SSL_set_bio(t->ssl, inner, inner); /* the SSL owns `inner` now */
	SSL_set_app_data(t->ssl, t);
	SSL_set_info_callback(t->ssl, info_note);
	if (dial)
		SSL_set_connect_state(t->ssl);
	else
		SSL_set_accept_state(t->ssl);
	return t;
}

struct tls_conn *tls_conn_new(struct tls_server *s)
{
	return conn_new(s, false);
}

struct tls_conn *tls_conn_dial(struct tls_server *s)
{
	return conn_new(s, true);
}

void tls_conn_free(struct tls_conn *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	BIO_free(t->outer);
	free(t->recv);
	free(t);
}

/*
 * Swaps in a full-size pair once tls_conn_grow asked for it and the small
 * one is empty both ways: no ciphertext OpenSSL wrote waits to be sent (so
 * no send is in flight from it: its bytes stay pending until
 * tls_conn_sent) and OpenSSL has read all that was fed to it (a partial
 * record it read is in its own buffer, which stays). Else, and before a
 * grow was asked, nothing: every path that touches the pair calls it.
 */
static void grow_pair(struct tls_conn *t)
{
	BIO *inner, *outer;

	if (!t->grow_wanted || t->pair_grown ||
	    BIO_ctrl_pending(t->outer) || BIO_ctrl_wpending(t->outer))
		return;
	if (BIO_new_bio_pair(&inner, TLS_PAIR_SIZE, &outer, TLS_PAIR_SIZE) != 1) {
		ERR_clear_error();
		return;
	}
	SSL_set_bio(t->ssl, inner, inner); /* frees the old inner end */
	BIO_free(t->outer);
	t->outer = outer;
	SSL_clear_mode(t->ssl, SSL_MODE_RELEASE_BUFFERS);
	t->pair_grown = true;
}

void tls_conn_grow(struct tls_conn *t)
{
	if (t->grow_wanted)
		return;
	t->grow_wanted = true;
	grow_pair(t);
}

size_t tls_conn_recv_room(struct tls_conn *t, uint8_t **room)
{
	if (t->recv_fed < t->recv_len)
		return 0;
	grow_pair(t);
	if (t->grow_wanted && t->recv_cap < TLS_RECV_ROOM) {
		/* Empty, and no receive is in it (the caller is about to arm one). */
		uint8_t *big = malloc(TLS_RECV_ROOM);

		if (big) {
			free(t->recv);
			t->recv = big;
			t->recv_cap = TLS_RECV_ROOM;
		}
	}
	*room = t->recv;
	return t->recv_cap;
}

/* Moves received ciphertext into the pair, as much as fits: whether any moved. */
static bool feed(struct tls_conn *t)
{
	int n;

	if (t->recv_fed == t->recv_len)
		return false;
	n = BIO_write(t->outer, t->recv + t->recv_fed, (int)(t->recv_len - t->recv_fed));
	if (n <= 0)
		return false;
	t->recv_fed += (size_t)n;
	if (t->recv_fed == t->recv_len)
		t->recv_fed = t->recv_len = 0;
	return true;
}

void tls_conn_received(struct tls_conn *t, size_t n)
{
	t->recv_len = n;
	t->recv_fed = 0;
	feed(t);
}

/* An alert's name ("unknown CA"); OpenSSL 3.0 does not name TLS 1.3's. */
static const char *alert_name(unsigned alert)
{
	if ((alert & 0xff) == TLS13_AD_CERTIFICATE_REQUIRED)
		return "certificate required";
	return SSL_alert_desc_string_long((int)alert);
}

/* What a fatal alert received says about our side, for the log line. */
static const char *alert_meaning(unsigned code)
{
	switch (code) {
	case SSL3_AD_HANDSHAKE_FAILURE:
		return "no parameters in common";
	case SSL3_AD_BAD_CERTIFICATE:
		return "it refused our certificate: not a node it accepts from here, or "
		       "not valid yet; its log says which";
	case SSL3_AD_UNSUPPORTED_CERTIFICATE:
		return "our certificate is not for this use";
	case SSL3_AD_CERTIFICATE_REVOKED:
		return "our certificate was revoked";
	case SSL3_AD_CERTIFICATE_EXPIRED:
		return "our certificate has expired by its clock";
	case SSL3_AD_CERTIFICATE_UNKNOWN:
		return "it refused our certificate";
	case TLS1_AD_UNKNOWN_CA:
		return "it does not trust the CA that signed our certificate";
	case TLS1_AD_DECRYPT_ERROR:
		return "a signature did not verify";
	case TLS1_AD_PROTOCOL_VERSION:
		return "no TLS version in common: ringkv needs TLS 1.3";
	case TLS13_AD_CERTIFICATE_REQUIRED:
		return "we showed no certificate";
	default:
		return "see its log";
	}
}

/* What an SSL call's failure means here; records the reason of a failure. */
static int failure(struct tls_conn *t, int rv)
{
	switch (SSL_get_error(t->ssl, rv)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return TLS_WANT;
	case SSL_ERROR_ZERO_RETURN:
		return TLS_CLOSED;
	default: {
		long verify = SSL_get_verify_result(t->ssl);

		if (t->alert_in) {
			/* The other side refused us: its alert is the reason. */
			ERR_clear_error();
			snprintf(last_error, sizeof last_error,
				 "refused by the other side: TLS alert %s (%s)",
				 alert_name(t->alert_in),
				 alert_meaning(t->alert_in & 0xff));
			return TLS_FAILED;
		}
		tls_reason(last_error, sizeof last_error);
		/* "certificate verify failed" alone does not say what to fix. */
		if (verify != X509_V_OK) {
			size_t used = strlen(last_error);

			snprintf(last_error + used, sizeof last_error - used, ": %s%s%s%s",
				 X509_verify_cert_error_string(verify), t->who[0] ? " (" : "",
				 t->who, t->who[0] ? ")" : "");
		}
		return TLS_FAILED;
	}
	}
}

/* The earliest notAfter of `chain` (seconds since the epoch), INT64_MAX
 * for none. A date OpenSSL cannot read counts as already passed: the
 * connection is checked again at once (the check says what is wrong). */
static int64_t chain_not_after(STACK_OF(X509) *chain)
{
	int64_t earliest = INT64_MAX;
	int n = chain ? sk_X509_num(chain) : 0;

	for (int i = 0; i < n; i++) {
		struct tm tm;
		int64_t when = 0;

		if (ASN1_TIME_to_tm(X509_get0_notAfter(sk_X509_value(chain, i)), &tm) == 1)
			when = (int64_t)timegm(&tm);
		if (when < earliest)
			earliest = when;
	}
	ERR_clear_error();
	return earliest;
}

int tls_conn_handshake(struct tls_conn *t)
{
	int rv;

	if (t->established)
		return 1;
	for (;;) {
		ERR_clear_error();
		rv = SSL_do_handshake(t->ssl);
		if (rv == 1) {
			t->established = true;
			t->not_after = chain_not_after(SSL_get0_verified_chain(t->ssl));
			/* Mutual TLS: the other side's certificate is verified. */
			if (t->grow_at_handshake)
				tls_conn_grow(t);
			return 1;
		}
		rv = failure(t, rv);
		/* Ciphertext that did not fit the pair earlier may fit now. */
		if (rv != TLS_WANT || !feed(t))
			return rv == TLS_CLOSED ? TLS_FAILED : rv;
	}
}

bool tls_conn_established(const struct tls_conn *t)
{
	return t->established;
}

ssize_t tls_conn_read(struct tls_conn *t, uint8_t *buf, size_t cap)
{
	int n;

	if (cap > INT_MAX)
		cap = INT_MAX;
	for (;;) {
		ERR_clear_error();
		n = SSL_read(t->ssl, buf, (int)cap);
		if (n > 0)
			return n;
		n = failure(t, n);
		if (n != TLS_WANT || !feed(t))
			return n;
	}
}

ssize_t tls_conn_write(struct tls_conn *t, const uint8_t *p, size_t len)
{
	int n;

	if (len > INT_MAX)
		len = INT_MAX;
	grow_pair(t);
	ERR_clear_error();
	n = SSL_write(t->ssl, p, (int)len);
	if (n > 0)
		return n;
	n = failure(t, n);
	return n == TLS_CLOSED ? TLS_FAILED : n;
}

void tls_conn_shutdown(struct tls_conn *t)
{
	if (t->shutdown_sent || !t->established)
		return;
	t->shutdown_sent = true;
	ERR_clear_error();
	SSL_shutdown(t->ssl); /* queues close_notify; the answer is not awaited */
	ERR_clear_error();
}

size_t tls_conn_send_data(struct tls_conn *t, const uint8_t **data)
{
	char *p = NULL;
	int n;

	grow_pair(t);
	n = BIO_nread0(t->outer, &p);

	if (n <= 0) {
		ERR_clear_error();
		return 0;
	}
	*data = (const uint8_t *)p;
	return (size_t)n;
}

void tls_conn_sent(struct tls_conn *t, size_t n)
{
	char *p;

	BIO_nread(t->outer, &p, (int)n);
}

const char *tls_conn_error(const struct tls_conn *t)
{
	(void)t;
	return last_error;
}

X509 *tls_conn_peer_cert(const struct tls_conn *t)
{
	return SSL_get0_peer_certificate(t->ssl);
}

void tls_conn_set_check(struct tls_conn *t, tls_cert_check_fn *fn, void *arg)
{
	t->check = fn;
	t->check_arg = arg;
}

bool tls_conn_stale(const struct tls_conn *t, const struct tls_server *s)
{
	return t->generation != tls_server_generation(s);
}

int tls_conn_recheck(struct tls_conn *t, struct tls_server *s, char *why, size_t len)
{
	unsigned generation = tls_server_generation(s);
	SSL_CTX *ctx = atomic_load_explicit(&s->ctx, memory_order_acquire);
	X509 *leaf = SSL_get0_peer_certificate(t->ssl);
	X509_STORE_CTX *verify;
	char subject[96], issuer[96];
	int ok, err;

	if (!leaf) {
		snprintf(why, len, "it showed no certificate");
		return -EPERM;
	}
	verify = X509_STORE_CTX_new();
	/* The chain as the handshake received it (without the leaf on the
	 * server's side), untrusted; the CA comes from the new context. */
	if (!verify || X509_STORE_CTX_init(verify, SSL_CTX_get_cert_store(ctx), leaf,
					   SSL_get_peer_cert_chain(t->ssl)) != 1) {
		X509_STORE_CTX_free(verify);
		ERR_clear_error();
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	/* The purpose OpenSSL checks in the handshake: a dialler's certificate
	 * is a client's, an accepting side's a server's. */
	X509_STORE_CTX_set_default(verify, SSL_is_server(t->ssl) ? "ssl_client" : "ssl_server");
	X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(verify), SSL_CTX_get0_param(ctx));
	ok = X509_verify_cert(verify);
	err = X509_STORE_CTX_get_error(verify);
	if (ok == 1)
		t->not_after = chain_not_after(X509_STORE_CTX_get0_chain(verify));
	X509_STORE_CTX_free(verify);
	ERR_clear_error();
	t->generation = generation;
	if (ok == 1)
		return 0;
	X509_NAME_oneline(X509_get_subject_name(leaf), subject, sizeof subject);
	X509_NAME_oneline(X509_get_issuer_name(leaf), issuer, sizeof issuer);
	snprintf(why, len, "%s (certificate %s issued by %s)", X509_verify_cert_error_string(err),
		 subject, issuer);
	return -EPERM;
}

int64_t tls_conn_not_after(const struct tls_conn *t)
{
	return t->not_after;
}

const char *tls_conn_alert_received(const struct tls_conn *t)
{
	return t->alert_in ? alert_name(t->alert_in) : NULL;
}

const char *tls_conn_alert_sent(const struct tls_conn *t)
{
	return t->alert_out ? alert_name(t->alert_out) : NULL;
}
