/*
 * TLS 1.3 on the client ports and between peers, driven through memory: the ring receives
 * ciphertext into the connection's receive room, which is fed to OpenSSL
 * through a BIO pair; OpenSSL turns it into plaintext for the protocol
 * parsers, and the answers' ciphertext is sent by the ring straight out of
 * the pair's outgoing buffer. OpenSSL never touches the socket, so neither
 * the handshake nor a record ever blocks a reactor.
 *
 * The ring does not receive into the pair itself: the pair rewinds its
 * buffer whenever OpenSSL empties it, which would move the room under a
 * receive in flight. Sending from the pair is safe: its outgoing bytes stay
 * where they are until tls_conn_sent() consumes them.
 *
 * Kernel TLS (kTLS) would let the ring send and receive plaintext after the
 * handshake; it needs the kernel's "tls" ULP, which tls_kernel_has_ulp()
 * looks for. It is not implemented: the start-up log says which path runs.
 *
 * Memory, in two steps. An accepted connection starts small: a receive
 * room of TLS_SMALL_ROOM bytes, a BIO pair of TLS_SMALL_PAIR bytes each way,
 * and SSL_MODE_RELEASE_BUFFERS, so OpenSSL frees its record buffers
 * whenever it holds no partial record. The handshake and the first requests
 * flow through them, a few KiB at a time. Once the handshake is done,
 * nothing the other side sends can make it hold more than that, OpenSSL's
 * state (about 15 KiB) and one partial record in OpenSSL's read buffer (a
 * record is up to 16 KiB and is decrypted only whole: no TLS
 * implementation can hold less); during the handshake, OpenSSL also
 * gathers each handshake message whole (it takes a ClientHello of up to
 * 128 KiB), for --tls-handshake-timeout at most. OpenSSL 3.0 gives no
 * smaller read buffer: SSL_CTX_set_default_read_buffer_len only enlarges
 * it, for read-ahead.
 * Once the caller says the other side has earned it (tls_conn_grow: the
 * client authenticated; a peer's certificate verified at the handshake),
 * the room becomes TLS_RECV_ROOM bytes, the pair TLS_PAIR_SIZE bytes each
 * way (a new pair, swapped in at the first moment both directions of the
 * old one are empty) and OpenSSL keeps its record buffers for the
 * connection's life: from then on the data path allocates nothing. A
 * dialled connection (the peers') starts grown. The pair bounds what a
 * connection holds in ciphertext: the ring receives only into free room of
 * the pair and OpenSSL writes only as much as fits.
 *
 * A `struct tls_server` (the SSL_CTX) is made once at start-up and shared
 * read-only by every core; a `struct tls_conn` belongs to one connection and
 * its core (it may be handed to another core with the connection, as the
 * peer transport does: one core at a time uses it).
 *
 * Two kinds of context: the client ports' (tls_server_create: the node is
 * the TLS server, clients show no certificate) and the peers'
 * (tls_peer_create: mutual TLS, each side shows its certificate and
 * verifies the other's against the cluster's CA; a node both accepts and
 * dials with it). What a verified certificate must name is the caller's
 * business (cluster/peer_tls.h).
 */
#ifndef RINGKV_IO_TLS_H
#define RINGKV_IO_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/x509.h>

#define TLS_PAIR_SIZE (40u << 10) /* ciphertext each way: two full records */
#define TLS_RECV_ROOM (32u << 10) /* ciphertext received, not yet fed to the pair */
/* Before tls_conn_grow: enough for a handshake flight or a request a few
 * sends at a time (a larger one waits for the pair to drain). */
#define TLS_SMALL_PAIR (1u << 10)
#define TLS_SMALL_ROOM (1u << 10)

struct tls_server;
struct tls_conn;

/*
 * Loads certificate chain `cert_file` and private key `key_file` (PEM),
 * checks they match, and, when `ca_file` is not NULL, that it holds
 * certificates. 0, or a negative errno with one line in `err` naming the
 * file and the reason (missing, unreadable, not PEM, key not matching).
 * Blocking: start-up only.
 */
int tls_server_create(const char *cert_file, const char *key_file, const char *ca_file,
		      struct tls_server **out, char *err, size_t errlen);
void tls_server_destroy(struct tls_server *s);

/*
 * The peers' context: the same checks of the files as tls_server_create,
 * `ca_file` required; both roles (accept and dial) require the other side's
 * certificate and verify its chain against `ca_file` (expired, foreign CA
 * or no certificate: the handshake fails, and tls_conn_error() says why).
 * `flag` prefixes the error messages ("--peer-tls"). tls_server_reload and
 * tls_server_destroy apply to it as to the client ports' one.
 */
int tls_peer_create(const char *flag, const char *cert_file, const char *key_file,
		    const char *ca_file, struct tls_server **out, char *err, size_t errlen);

/*
 * Builds a fresh context from the files (the same checks as start-up) and
 * makes new connections take it; connections already open keep theirs.
 * On failure nothing changes: the old certificate is served on. Blocking
 * (reads files): the main thread's SIGHUP only, never a reactor.
 */
int tls_server_reload(struct tls_server *s, const char *cert_file, const char *key_file,
		      const char *ca_file, char *err, size_t errlen);

/*
 * How many reloads `s` has taken (0 at creation). Cheap (one atomic load):
 * a core compares it with the last value it acted on to learn of a reload.
 */
unsigned tls_server_generation(const struct tls_server *s);

/* True when the kernel offers the "tls" ULP (kTLS could be used). */
bool tls_kernel_has_ulp(void);

/* A connection's TLS state (SSL object and BIO pair): NULL when out of memory.
 * tls_conn_new accepts (the TLS server's side), tls_conn_dial connects. */
struct tls_conn *tls_conn_new(struct tls_server *s);
struct tls_conn *tls_conn_dial(struct tls_server *s);
void tls_conn_free(struct tls_conn *t);

/*
 * The other side has earned full-size buffers (see "Memory" above): the
 * room grows at the next tls_conn_recv_room, the pair at the first call
 * below that finds both its directions empty (ciphertext the ring is
 * sending stays where it is until then), and OpenSSL keeps its record
 * buffers. Idempotent and cheap (a flag) once called; nothing else
 * changes: a failed allocation leaves the small buffers working and is
 * retried. The peers' context calls it itself once the handshake is done.
 */
void tls_conn_grow(struct tls_conn *t);

/*
 * Room for received ciphertext: a pointer and its length (0 while earlier
 * ciphertext still waits for room in the pair: decrypt first). The ring
 * receives into it; tls_conn_received() commits what arrived. The room stays
 * valid until then, whatever else is called.
 */
size_t tls_conn_recv_room(struct tls_conn *t, uint8_t **room);
void tls_conn_received(struct tls_conn *t, size_t n);

/* Result of the calls below other than a byte count. */
enum {
	TLS_WANT = 0,        /* nothing more now: more ciphertext needed, or
			      * (writes) the pair is full until sent */
	TLS_CLOSED = -1,     /* the peer sent close_notify */
	TLS_FAILED = -2,     /* a protocol error: the reason is in tls_conn_error() */
};

/* Drives the handshake: 1 once done, TLS_WANT, or TLS_FAILED. */
int tls_conn_handshake(struct tls_conn *t);
bool tls_conn_established(const struct tls_conn *t);

/* Decrypts into buf[0, cap): the bytes (> 0), TLS_WANT, TLS_CLOSED or TLS_FAILED. */
ssize_t tls_conn_read(struct tls_conn *t, uint8_t *buf, size_t cap);

/*
 * Encrypts from p[0, len): the bytes taken (> 0), TLS_WANT (the pair is
 * full: send first) or TLS_FAILED. After TLS_WANT, the next call must pass
 * the same untaken bytes again (OpenSSL holds a record of them).
 */
ssize_t tls_conn_write(struct tls_conn *t, const uint8_t *p, size_t len);

/* Queues close_notify (once). */
void tls_conn_shutdown(struct tls_conn *t);

/*
 * Ciphertext waiting to be sent: a pointer and its length (0: none). Stays
 * valid, with its bytes, until tls_conn_sent() consumes them.
 */
size_t tls_conn_send_data(struct tls_conn *t, const uint8_t **data);
void tls_conn_sent(struct tls_conn *t, size_t n);

/* The reason of the last TLS_FAILED, for logs ("wrong version number"...;
 * a certificate refused by this side: "certificate verify failed: certificate
 * has expired"; refused by the other side's alert: "refused by the other
 * side: TLS alert unknown CA (it does not trust the CA of our certificate)"). */
const char *tls_conn_error(const struct tls_conn *t);

/* The other side's certificate, verified (peers' context) once the
 * handshake is done; NULL if it showed none. Owned by `t`. */
X509 *tls_conn_peer_cert(const struct tls_conn *t);

/*
 * A check of the other side's certificate made inside the handshake (peers'
 * context), once OpenSSL verified its chain: 0 accepts it; anything else
 * refuses it with the reason in `why`, and the handshake fails with a
 * bad_certificate alert to the other side (queued in the pair like any
 * handshake flight: send it before closing). Set before the handshake runs.
 */
typedef int tls_cert_check_fn(void *arg, X509 *cert, char *why, size_t len);
void tls_conn_set_check(struct tls_conn *t, tls_cert_check_fn *fn, void *arg);

/*
 * After a reload of `s`, the connections made before it were verified
 * against the old context. tls_conn_stale: `t` was made from (or last
 * rechecked against) a context older than the current one of `s`.
 * tls_conn_recheck: verifies again the certificate chain the other side
 * showed in its handshake against the current context's CA, at the current
 * time (an expired certificate fails too), and marks `t` as checked against
 * it. 0 when it still verifies; -EPERM with the reason in `why` ("unable to
 * get local issuer certificate (certificate /CN=n2 issued by /CN=old CA)");
 * -ENOMEM. The node id the certificate names is not checked again: the
 * certificate is the one checked at the handshake. Peers' context, after
 * the handshake. Costs one chain verification (a signature check or two,
 * tens of microseconds): callers spread many of them over time.
 */
bool tls_conn_stale(const struct tls_conn *t, const struct tls_server *s);
int tls_conn_recheck(struct tls_conn *t, struct tls_server *s, char *why, size_t len);

/*
 * When the other side's certificate stops verifying by the clock: the
 * earliest notAfter (seconds since the epoch, the wall clock OpenSSL
 * checks against) of the chain verified at the handshake, or at the last
 * tls_conn_recheck that passed (its chain may end at another CA). INT64_MAX
 * when no chain was verified (the client ports' context: clients show no
 * certificate). TLS 1.3 has no renegotiation: past it, the connection's
 * identity has expired, and tls_conn_recheck fails with "certificate has
 * expired". Cheap (a field).
 */
int64_t tls_conn_not_after(const struct tls_conn *t);

/*
 * The fatal alert the other side sent (its refusal) or this side sent, as
 * "bad certificate", or NULL when none. tls_conn_error() already says it;
 * these are for callers that log their own line.
 */
const char *tls_conn_alert_received(const struct tls_conn *t);
const char *tls_conn_alert_sent(const struct tls_conn *t);

#endif
