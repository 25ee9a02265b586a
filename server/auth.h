/*
 * Client authentication on a core (ringkvd --users): who a connection is,
 * the verification of passwords, the limits an unauthenticated connection
 * lives under, and what a user may do.
 *
 * Connection states. With --users, a connection opens UNAUTHENTICATED:
 * it may send only AUTH (RESP AUTH or HELLO ... AUTH, native Auth) and QUIT,
 * every other request is answered NOAUTH / UNAUTHENTICATED. While an AUTH is
 * VERIFYING, the connection decodes nothing more (a pipelined command after
 * AUTH runs as the user AUTH made it, or is refused). A verified password
 * makes it AUTHENTICATED as that user; a failed one leaves it as it was
 * (unauthenticated, or still the user it had). Limits while unauthenticated:
 * frames of at most AUTH_PREAUTH_FRAME bytes (a larger one closes the
 * connection: a few KiB of receive buffer is all it ever gets), at most
 * AUTH_PREAUTH_REQUESTS requests, --auth-timeout to succeed, and at most
 * AUTH_PREAUTH_PER_SOURCE such connections per source address on a core
 * (further ones are closed at accept).
 *
 * Passwords are verified without stalling the core: the PBKDF2 chain runs
 * from a per-iteration hook, AUTH_SLICE_ITERATIONS iterations a loop pass
 * across all verifications of the core (server/users.h). A password that
 * verified on this core is remembered (AUTH_CACHE entries, as SHA-256 of the
 * stored hash and the password), so a pool of connections opening with the
 * same password pays the KDF once per core; a wrong password always pays it.
 *
 * A wrong password costs time, per source: an IPv4 address, or an IPv6
 * /64 (one host usually holds a whole /64). Each core keeps a fixed table
 * of AUTH_SOURCES sources, found by a hash keyed with a random secret of
 * the core (so no one can choose addresses that collide with a victim's;
 * server/auth_source.h).
 * A source's failed AUTHs are serialized: one of its AUTHs is verified at a
 * time, and after a failure the next is verified only when the failure's
 * delay is over (250 ms, doubled per further failure up to 8 s), however
 * many connections it spreads them over. The failure's answer is held
 * until then too, timed from the start of its hash, so that how long a
 * hash took (an unknown name is hashed with the default parameters, a
 * user with its own) does not show as long as it takes less than the
 * delay. A success resets the count only when the failures were all
 * against the user that succeeded (a valid account must not wipe the
 * failures of guesses at another); the count is forgotten a minute after
 * the last failure. A source entry is reused only when it holds no
 * connection, no AUTH and no recent failure (the stalest first), so many
 * addresses cannot push a failing one out; a source that finds no entry
 * shares the core's overflow entry, whose failures delay every source in
 * it. Failures are logged and audited (server/audit.h) with the user
 * name and address, never the password. The limits are per core: the
 * kernel spreads one source's connections over the cores.
 *
 * Deadlines: a queued AUTH carries its connection's deadline (its
 * --auth-timeout from accept, or the admin port's exchange timeout). When
 * the deadline passes before its hash started, the AUTH is answered as
 * failed without hashing (it was no guess, so it is not counted) and the
 * client connection closes as one past its --auth-timeout; a failure whose
 * delay would end past the deadline is answered at the deadline, and its
 * connection closes. The admin port (few slots) takes no AUTH of a source
 * that is busy or in a failure delay: it is answered at once (429), and a
 * failure of its own is answered after the first delay (250 ms) only.
 *
 * Users file reloads (SIGHUP): a connection keeps the user's name; at its
 * next request under a new table its user is looked up again, so a changed
 * role or prefix applies at once. A connection whose user is gone (or whose
 * password changed) is back to unauthenticated under the limits before
 * authentication: small frames, AUTH_PREAUTH_REQUESTS requests, and a
 * fresh --auth-timeout to authenticate again.
 */
#ifndef RINGKV_SERVER_AUTH_H
#define RINGKV_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/timer.h"
#include "server/auth_source.h"
#include "server/users.h"

#define AUTH_PREAUTH_FRAME 4096u       /* bytes of a frame or command before AUTH */
#define AUTH_PREAUTH_REQUESTS 10u      /* requests before AUTH succeeds */
#define AUTH_PREAUTH_PER_SOURCE 32u    /* unauthenticated connections per source, per core */
#define AUTH_SLICE_ITERATIONS 2048u    /* PBKDF2 iterations per loop pass and core */
#define AUTH_CACHE 64u                 /* verified passwords remembered per core */
#define AUTH_FAIL_DELAY_US 250000u     /* the first failure's delay; doubles */
#define AUTH_FAIL_DELAY_MAX_US 8000000u

struct conn;
struct node_core;
struct auth_job;


/* Per connection, inside struct conn (and the admin port's). */
struct conn_auth {
	const struct users_table *table; /* the table `user` was found in (a
					  * reference: users_table_ref) */
	const struct users_entry *user;  /* NULL: not authenticated */
	struct auth_job *job;            /* a verification under way, or NULL */
	struct auth_source *source;      /* counted in its unauthenticated ones */
	uint32_t requests;               /* requests before authentication */
	bool scarce;                     /* the admin port's: see "Deadlines" */
	bool timed_out;                  /* its deadline passed while a job ran */
	uint64_t deadline_us;            /* to authenticate by (0: none) */
	struct auth_addr peer;
	struct timer timer;              /* closes it while unauthenticated */
};

/* Called with the outcome of auth_start / auth_verify: the owner (the
 * connection), the caller's `arg`, and `ok`. Its conn_auth is
 * authenticated already when ok. */
typedef void auth_done_fn(void *owner, void *arg, bool ok);

/* This core's state (hook, jobs, sources, cache). 0 or -ENOMEM. Only with --users. */
int auth_core_init(struct node_core *c);
void auth_core_destroy(struct node_core *c);

/*
 * A connection was accepted (--users on): records its address and counts it
 * unauthenticated. False when its source has AUTH_PREAUTH_PER_SOURCE such
 * connections on this core already (the caller closes it).
 */
bool auth_conn_open(struct conn *conn);
/* The connection is being freed. */
void auth_conn_close(struct conn *conn);
/* Starts its --auth-timeout (at accept). */
void auth_conn_arm_timeout(struct conn *conn);

/* Whether requests of `conn` need authentication first (--users on, none yet). */
bool auth_needed(struct conn *conn);

/*
 * The connection's user under the current users table (looked up again
 * after a reload), or NULL when not authenticated (or its user is gone).
 */
const struct users_entry *auth_user(struct conn *conn);

/*
 * Counts a request made before authentication: false once past
 * AUTH_PREAUTH_REQUESTS (the caller answers and closes).
 */
bool auth_preauth_request(struct conn *conn);

/*
 * Verifies user[0, ulen) and password pw[0, plen) (both copied), and calls
 * done(conn, arg, ok) from a later loop pass, never from inside. The caller
 * counts the request in flight and decodes nothing more of the connection
 * until then (conn->auth.job is set meanwhile). `proto` names the protocol
 * for the logs ("resp", "native"). False when out of memory (done is never
 * called: the caller answers an error itself).
 */
bool auth_start(struct conn *conn, const uint8_t *user, size_t ulen, const uint8_t *pw,
		size_t plen, const char *proto, auth_done_fn *done, void *arg);

/*
 * auth_start for another kind of connection (the admin port, ca->scarce):
 * `ca` stays in place until done(owner, arg, ok) has run or auth_cancel.
 * 0 (done is called later), -ENOMEM, or -EAGAIN: ca is scarce and its
 * source is busy or in a failure delay (done is never called).
 */
int auth_verify(struct node_core *c, struct conn_auth *ca, const uint8_t *user, size_t ulen,
		const uint8_t *pw, size_t plen, const char *proto, auth_done_fn *done,
		void *owner, void *arg);
/*
 * The owner of `ca` goes away: its verification (if any) never calls done.
 * A hash under way still ends and a failure still counts for its source;
 * a queued one is dropped.
 */
void auth_cancel(struct node_core *c, struct conn_auth *ca);

/* The peer's address of socket `fd` into ca (getpeername: never blocks). */
void auth_peer(struct conn_auth *ca, int fd);
/* "127.0.0.1:5000", "[::1]:5000" or "-" of an address, into buf. */
void auth_from(const struct auth_addr *peer, char *buf, size_t len);

/* Whether `user` may touch key[0, len) (its prefix). */
bool auth_key_ok(const struct users_entry *user, const uint8_t *key, size_t len);

/* "127.0.0.1:5000" or "[::1]:5000" of the connection, into buf. */
void auth_conn_from(const struct conn *conn, char *buf, size_t len);

#endif
