/*
 * Client authentication on a core; see server/auth.h for the connection
 * states, the limits before authentication and the failure delays.
 *
 * Jobs: one per connection verifying a password, in a FIFO of the core.
 * The core's hook walks it each loop pass: a job waits until its source may
 * try again, then its KDF runs in slices (one job at a time, so one MAC
 * context serves the core), then a failed one waits out its delay before
 * its answer goes. A timer wakes the loop for the next waiting job; while a
 * KDF runs, the loop does not sleep.
 */
#include "server/auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/log.h"
#include "core/pool.h"
#include "core/reactor.h"
#include "server/audit.h"
#include "server/conn.h"
#include "server/node.h"

#define SOURCE_PROBE 16u /* slots a source may sit in, from its hash */

enum job_state {
	JOB_WAITING,    /* its source is in a failure delay */
	JOB_COMPUTING,  /* KDF under way (only the first such job runs) */
	JOB_DELAYED,    /* failed: the answer is held until deliver_us */
};

struct auth_job {
	struct auth_job *next;
	struct conn_auth *ca;               /* whose password (a connection's, or the admin port's) */
	void *owner;                        /* the connection, for done */
	auth_done_fn *done;
	void *arg;
	const char *proto;
	const struct users_table *table;
	const struct users_entry *user;     /* NULL: no such user (a dummy is hashed) */
	char name[USERS_NAME_MAX + 1];      /* as given (cut), for the logs */
	uint8_t password[USERS_PASSWORD_MAX];
	uint32_t password_len;              /* cleared once the KDF is keyed */
	bool too_long;                      /* name or password out of range */
	enum job_state state;
	bool started;
	uint64_t wait_until_us;             /* WAITING / DELAYED */
	uint8_t quick[USERS_HASH_LEN];      /* the cache key (see auth.h) */
	struct users_kdf kdf;
};

struct auth_source {
	uint8_t addr[16];
	uint8_t family;                     /* 0: free */
	uint16_t unauth;                    /* open unauthenticated connections */
	uint16_t failures;                  /* consecutive failed AUTHs */
	uint64_t next_try_us;               /* no verification before this */
	uint64_t last_us;                   /* last use, for reuse */
	uint64_t last_failure_us;
};

struct auth_cache_entry {
	const struct users_entry *user;
	uint64_t generation;
	uint8_t quick[USERS_HASH_LEN];
};

struct auth_core {
	struct node_core *core;
	struct evp_mac_ctx_st *mac;
	/* The job whose KDF holds `mac` (keyed with its password), NULL when
	 * none: no other job starts until it is decided (a review found a job
	 * whose failure delay ended re-keying `mac` in the middle of another's
	 * hash, which then failed a correct password). */
	struct auth_job *running;
	struct auth_job *head, *tail;
	struct timer wake;
	struct auth_source sources[AUTH_SOURCES];
	struct auth_cache_entry cache[AUTH_CACHE];
	unsigned cache_next;
	uint64_t failures, successes;
};

/* Hashed for a user that does not exist, so that its answer takes as long. */
static const struct users_entry dummy_user = {
	.name = "", .iterations = USERS_ITER_DEFAULT, .salt_len = USERS_SALT_DEFAULT,
};

/* ---- sources ------------------------------------------------------------- */

static uint32_t addr_hash(const uint8_t *addr, uint8_t family)
{
	uint32_t h = 2166136261u ^ family;

	for (unsigned i = 0; i < 16; i++)
		h = (h ^ addr[i]) * 16777619u;
	return h;
}

/*
 * The source entry of an address, made when `create` (reusing the stalest
 * probed entry that has no unauthenticated connection), or NULL: not found,
 * or (create) every probed entry holds open connections.
 */
static struct auth_source *source_of(struct auth_core *ac, const uint8_t *addr, uint8_t family,
				     bool create)
{
	uint32_t h = addr_hash(addr, family);
	struct auth_source *spare = NULL;

	if (family == 0)
		return NULL;
	for (unsigned i = 0; i < SOURCE_PROBE; i++) {
		struct auth_source *s = &ac->sources[(h + i) % AUTH_SOURCES];

		if (s->family == family && memcmp(s->addr, addr, 16) == 0)
			return s;
		if (s->family == 0) {
			if (!spare || spare->family != 0)
				spare = s;
		} else if (s->unauth == 0 && (!spare || (spare->family && s->last_us < spare->last_us))) {
			spare = s;
		}
	}
	if (!create || !spare)
		return NULL;
	memset(spare, 0, sizeof *spare);
	spare->family = family;
	memcpy(spare->addr, addr, 16);
	return spare;
}

static struct auth_source *ca_source(struct auth_core *ac, const struct conn_auth *ca,
				     bool create)
{
	return source_of(ac, ca->addr, ca->family, create);
}

static struct auth_source *conn_source(struct conn *conn, bool create)
{
	return ca_source(conn->core->auth, &conn->auth, create);
}

void auth_from(const struct conn_auth *ca, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (ca->family == AF_INET6 && inet_ntop(AF_INET6, ca->addr, ip, sizeof ip))
		snprintf(buf, len, "[%s]:%u", ip, ca->port);
	else if (ca->family == AF_INET && inet_ntop(AF_INET, ca->addr, ip, sizeof ip))
		snprintf(buf, len, "%s:%u", ip, ca->port);
	else
		snprintf(buf, len, "-");
}

void auth_conn_from(const struct conn *conn, char *buf, size_t len)
{
	auth_from(&conn->auth, buf, len);
}

void auth_peer(struct conn_auth *ca, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

		ca->family = AF_INET;
		memcpy(ca->addr, &in->sin_addr, 4);
		ca->port = ntohs(in->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

		ca->family = AF_INET6;
		memcpy(ca->addr, &in6->sin6_addr, 16);
		ca->port = ntohs(in6->sin6_port);
	}
}

bool auth_conn_open(struct conn *conn)
{
	struct auth_source *s;

	auth_peer(&conn->auth, conn->fd);
	s = conn_source(conn, true);
	if (!s) {
		/* No address, or its probe window is all open connections:
		 * the table is full of sources each holding connections. */
		if (conn->auth.family == 0)
			return true;
		return false;
	}
	if (s->unauth >= AUTH_PREAUTH_PER_SOURCE)
		return false;
	s->unauth++;
	s->last_us = conn->core->reactor->now_us;
	conn->auth.counted = true;
	return true;
}

static void uncount(struct auth_core *ac, struct conn_auth *ca)
{
	struct auth_source *s;

	if (!ca->counted)
		return;
	ca->counted = false;
	s = ca_source(ac, ca, false);
	if (s && s->unauth)
		s->unauth--;
}

/* A client that has not authenticated within --auth-timeout. */
static void auth_timeout(struct timer *t, void *arg)
{
	struct conn *conn = arg;
	char from[64];

	(void)t;
	if (conn->auth.job) {
		/* Its AUTH is being answered (a failure's delay can pass the
		 * timeout): the outcome first, then a fresh timeout. */
		conn->auth.timeout_deferred = true;
		return;
	}
	auth_conn_from(conn, from, sizeof from);
	log_every(LOG_INFO, 10000, "connection %llu from %s: not authenticated within %u ms; "
		  "closing", (unsigned long long)conn->serial, from,
		  conn->core->node->cfg.auth_timeout_ms);
	conn->core->stats.bad_frames++;
	conn_drop(conn);
}

void auth_conn_arm_timeout(struct conn *conn)
{
	reactor_timer_arm(conn->core->reactor, &conn->auth.timer,
			  (uint64_t)conn->core->node->cfg.auth_timeout_ms * 1000, auth_timeout, conn);
}

void auth_conn_close(struct conn *conn)
{
	if (conn->core->auth)
		uncount(conn->core->auth, &conn->auth);
}

bool auth_needed(struct conn *conn)
{
	return conn->core->node->users && !auth_user(conn);
}

const struct users_entry *auth_user(struct conn *conn)
{
	const struct users_table *now;
	const struct users_entry *e;

	if (!conn->auth.user)
		return NULL;
	now = users_current(conn->core->node->users);
	if (now == conn->auth.table)
		return conn->auth.user;
	/* The users file was reloaded: the same name, its new role and keys,
	 * unless its password changed (a rotated password ends the sessions
	 * of the old one, as a removal does: a review found them kept). */
	e = users_find(now, conn->auth.user->name, strlen(conn->auth.user->name));
	if (e && (e->iterations != conn->auth.user->iterations ||
		  e->salt_len != conn->auth.user->salt_len ||
		  memcmp(e->salt, conn->auth.user->salt, e->salt_len) != 0 ||
		  !users_hash_equal(e->hash, conn->auth.user->hash)))
		e = NULL;
	conn->auth.table = now;
	conn->auth.user = e;
	if (!e)
		log_info("connection %llu: its user is gone from the reloaded users file, or "
			 "its password changed; it must authenticate again",
			 (unsigned long long)conn->serial);
	return e;
}

bool auth_preauth_request(struct conn *conn)
{
	return ++conn->auth.requests <= AUTH_PREAUTH_REQUESTS;
}

bool auth_key_ok(const struct users_entry *user, const uint8_t *key, size_t len)
{
	return !user->has_prefix ||
	       (len >= user->prefix_len && memcmp(key, user->prefix, user->prefix_len) == 0);
}

/* ---- verification ------------------------------------------------------ */

/* SHA-256 of the stored hash and the password: the cache's key. */
static void quick_hash(const struct users_entry *e, const uint8_t *pw, size_t len,
		       uint8_t out[USERS_HASH_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned n = 0;

	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, e->hash, sizeof e->hash) != 1 ||
	    EVP_DigestUpdate(md, pw, len) != 1 || EVP_DigestFinal_ex(md, out, &n) != 1)
		memset(out, 0, USERS_HASH_LEN); /* matches no cached entry (user is set) */
	EVP_MD_CTX_free(md);
}

static bool cache_hit(struct auth_core *ac, const struct auth_job *j)
{
	if (!j->user)
		return false;
	for (unsigned i = 0; i < AUTH_CACHE; i++) {
		const struct auth_cache_entry *e = &ac->cache[i];

		if (e->user == j->user && e->generation == j->table->generation &&
		    users_hash_equal(e->quick, j->quick))
			return true;
	}
	return false;
}

static void cache_put(struct auth_core *ac, const struct auth_job *j)
{
	struct auth_cache_entry *e = &ac->cache[ac->cache_next++ % AUTH_CACHE];

	e->user = j->user;
	e->generation = j->table->generation;
	memcpy(e->quick, j->quick, sizeof e->quick);
}

static void wake_timer(struct timer *t, void *arg)
{
	struct auth_core *ac = arg;

	(void)t;
	reactor_poll_again(ac->core->reactor);
}

bool auth_start(struct conn *conn, const uint8_t *user, size_t ulen, const uint8_t *pw,
		size_t plen, const char *proto, auth_done_fn *done, void *arg)
{
	return auth_verify(conn->core, &conn->auth, user, ulen, pw, plen, proto, done, conn, arg);
}

bool auth_verify(struct node_core *c, struct conn_auth *ca, const uint8_t *user, size_t ulen,
		 const uint8_t *pw, size_t plen, const char *proto, auth_done_fn *done,
		 void *owner, void *arg)
{
	struct auth_core *ac = c->auth;
	struct auth_job *j = pool_alloc(&c->reactor->pool, sizeof *j);
	struct auth_source *s;
	size_t shown = ulen < USERS_NAME_MAX ? ulen : USERS_NAME_MAX;

	if (!j) {
		log_warn("auth: out of memory verifying a password (%s)", proto);
		return false;
	}
	memset(j, 0, sizeof *j);
	j->ca = ca;
	j->owner = owner;
	j->done = done;
	j->arg = arg;
	j->proto = proto;
	j->table = users_current(c->node->users);
	/* The name as the logs show it: any byte that could forge a line is '?'. */
	for (size_t i = 0; i < shown; i++)
		j->name[i] = user[i] >= 0x20 && user[i] < 0x7f ? (char)user[i] : '?';
	j->too_long = ulen > USERS_NAME_MAX || plen > USERS_PASSWORD_MAX || plen == 0;
	if (!j->too_long) {
		j->user = users_find(j->table, (const char *)user, ulen);
		memcpy(j->password, pw, plen);
		j->password_len = (uint32_t)plen;
		quick_hash(j->user ? j->user : &dummy_user, pw, plen, j->quick);
	}
	s = ca_source(ac, ca, true);
	j->state = JOB_WAITING;
	j->wait_until_us = s ? s->next_try_us : 0;
	if (ac->tail)
		ac->tail->next = j;
	else
		ac->head = j;
	ac->tail = j;
	ca->job = j;
	reactor_poll_again(c->reactor);
	return true;
}

static uint64_t fail_delay(unsigned failures)
{
	uint64_t d = AUTH_FAIL_DELAY_US;

	while (--failures && d < AUTH_FAIL_DELAY_MAX_US)
		d *= 2;
	return d < AUTH_FAIL_DELAY_MAX_US ? d : AUTH_FAIL_DELAY_MAX_US;
}

/* The KDF is done (or skipped): decide, record, and hold a failure's answer. */
static void decide(struct auth_core *ac, struct auth_job *j, bool ok)
{
	uint64_t now = ac->core->reactor->now_us;
	struct auth_source *s = ca_source(ac, j->ca, true);
	char from[64];

	if (ok) {
		ac->successes++;
		if (s) {
			s->failures = 0;
			s->next_try_us = 0;
			s->last_us = now;
		}
		return;
	}
	ac->failures++;
	if (s) {
		if (now - s->last_failure_us > AUTH_FAIL_FORGET_US)
			s->failures = 0;
		if (s->failures < UINT16_MAX)
			s->failures++;
		s->last_failure_us = s->last_us = now;
		s->next_try_us = now + fail_delay(s->failures);
	}
	j->state = JOB_DELAYED;
	j->wait_until_us = s ? s->next_try_us : now + AUTH_FAIL_DELAY_US;
	auth_from(j->ca, from, sizeof from);
	log_every(LOG_WARN, 1000, "auth: failed for user '%s' from %s (%s; %u in a row from "
		  "there)", j->name, from, j->proto, s ? s->failures : 0);
	audit_line_from(ac->core, j->ca, j->proto, j->name, "auth",
		   j->too_long ? "failed: name or password out of range"
			       : "failed: wrong user or password");
}

/* Takes the job out of the FIFO and frees it; the caller then answers. */
static void finish(struct auth_core *ac, struct auth_job *j, struct auth_job *prev, bool ok)
{
	struct conn_auth *ca = j->ca;

	if (ac->running == j)
		ac->running = NULL;
	if (prev)
		prev->next = j->next;
	else
		ac->head = j->next;
	if (ac->tail == j)
		ac->tail = prev;
	ca->job = NULL;
	if (ok) {
		ca->table = j->table;
		ca->user = j->user;
		uncount(ac, ca);
		reactor_timer_cancel(ac->core->reactor, &ca->timer);
		ca->timeout_deferred = false;
	} else if (ca->timeout_deferred && !ca->user) {
		/* Only connections of the client ports defer a timeout. */
		ca->timeout_deferred = false;
		auth_conn_arm_timeout(j->owner);
	}
	OPENSSL_cleanse(j, sizeof *j);
	pool_free(&ac->core->reactor->pool, j);
}

/* Runs the KDF of `j` for up to *budget iterations: true when decided. */
static bool compute(struct auth_core *ac, struct auth_job *j, uint32_t *budget, bool *ok)
{
	const struct users_entry *e = j->user ? j->user : &dummy_user;

	if (!j->started) {
		j->started = true;
		if (j->too_long) {
			*ok = false;
			return true;
		}
		if (cache_hit(ac, j)) {
			OPENSSL_cleanse(j->password, sizeof j->password);
			*ok = true;
			return true;
		}
		users_kdf_start(&j->kdf, ac->mac, j->password, j->password_len, e->salt,
				e->salt_len, e->iterations);
		ac->running = j;
		OPENSSL_cleanse(j->password, sizeof j->password);
		j->password_len = 0;
	}
	{
		uint32_t before = j->kdf.done;
		bool over = users_kdf_step(&j->kdf, *budget);
		uint32_t used = j->kdf.done - before;

		*budget = used >= *budget ? 0 : *budget - used;
		if (!over)
			return false;
	}
	ac->running = NULL;
	*ok = j->user && !j->kdf.failed && users_hash_equal(j->kdf.t, j->user->hash);
	if (*ok)
		cache_put(ac, j);
	return true;
}

static void auth_hook(struct reactor *r, void *arg)
{
	struct node_core *c = arg;
	struct auth_core *ac = c->auth;
	uint32_t budget = AUTH_SLICE_ITERATIONS;
	uint64_t next_wake = UINT64_MAX;
	bool computing = false, again = false;
	struct auth_job *j, *prev = NULL, *next;

	audit_core_flush(c);
	if (!ac)
		return;
	for (j = ac->head; j; j = next) {
		void *owner = j->owner;
		auth_done_fn *done = j->done;
		void *done_arg = j->arg;
		bool ok = false;

		next = j->next;
		if (j->state == JOB_WAITING && j->wait_until_us <= r->now_us)
			j->state = JOB_COMPUTING;
		if (j->state == JOB_COMPUTING && !computing && ac->running && ac->running != j)
			again = true; /* its turn comes when the running one is decided */
		else if (j->state == JOB_COMPUTING && !computing) {
			if (budget == 0 || !compute(ac, j, &budget, &ok)) {
				computing = true; /* the next pass goes on with it */
				prev = j;
				continue;
			}
			if (!ok) {
				decide(ac, j, false); /* JOB_DELAYED now */
			} else {
				decide(ac, j, true);
				finish(ac, j, prev, true);
				done(owner, done_arg, true);
				continue;
			}
		}
		if (j->state == JOB_DELAYED && j->wait_until_us <= r->now_us) {
			finish(ac, j, prev, false);
			done(owner, done_arg, false);
			continue;
		}
		if (j->state != JOB_COMPUTING && j->wait_until_us < next_wake)
			next_wake = j->wait_until_us;
		prev = j;
	}
	if (computing || again)
		reactor_poll_again(r);
	else if (next_wake != UINT64_MAX)
		reactor_timer_arm(r, &ac->wake, next_wake > r->now_us ? next_wake - r->now_us : 0,
				  wake_timer, ac);
}

int auth_core_init(struct node_core *c)
{
	struct auth_core *ac;

	if (!c->node->users && c->node->audit_fd < 0)
		return 0;
	if (c->node->users) {
		ac = calloc(1, sizeof *ac);
		if (!ac)
			return -ENOMEM;
		ac->mac = users_kdf_mac_new();
		if (!ac->mac) {
			free(ac);
			return -ENOMEM;
		}
		ac->core = c;
		c->auth = ac;
	}
	if (audit_core_init(c) != 0)
		return -ENOMEM;
	return reactor_add_hook(c->reactor, auth_hook, c);
}

void auth_core_destroy(struct node_core *c)
{
	struct auth_core *ac = c->auth;

	audit_core_destroy(c);
	if (!ac)
		return;
	log_info("core %u: %llu authentications, %llu failed", c->reactor->id,
		 (unsigned long long)ac->successes, (unsigned long long)ac->failures);
	/* Connections are gone (conn_close_all): jobs left are only freed. */
	while (ac->head) {
		struct auth_job *j = ac->head;

		ac->head = j->next;
		OPENSSL_cleanse(j, sizeof *j);
		pool_free(&c->reactor->pool, j);
	}
	reactor_timer_cancel(c->reactor, &ac->wake);
	users_kdf_mac_free(ac->mac);
	OPENSSL_cleanse(ac->cache, sizeof ac->cache);
	free(ac);
	c->auth = NULL;
}
