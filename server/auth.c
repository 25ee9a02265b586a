/*
 * Client authentication on a core; see server/auth.h for the connection
 * states, the limits before authentication, the failure delays and the
 * deadlines.
 *
 * Jobs: one per connection verifying a password, in a FIFO of the core.
 * The core's hook walks it each loop pass. A job waits (WAITING) until its
 * source has no other job hashing and is out of its failure delay, then
 * its KDF runs in slices (COMPUTING; one KDF at a time, so one MAC context
 * serves the core), then a failed one waits out its delay (DELAYED) before
 * its answer goes. A job whose deadline passes before its hash started is
 * answered as failed without hashing. A timer wakes the loop for the next
 * waiting job or deadline; while a KDF runs, the loop does not sleep.
 *
 * Sources: an entry is never reused while a connection is counted in it,
 * a job of it is queued or its failures are recent, so a job and a
 * connection keep a plain pointer to theirs.
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
#include <openssl/rand.h>

#include "core/log.h"
#include "core/pool.h"
#include "core/reactor.h"
#include "server/audit.h"
#include "server/conn.h"
#include "server/node.h"
#include "server/redis.h"

/* Unauthenticated connections the overflow entry counts: what the probe
 * window of sources would have held. */
#define OVERFLOW_PREAUTH (AUTH_PREAUTH_PER_SOURCE * AUTH_SOURCE_PROBE)

enum job_state {
	JOB_WAITING,    /* its source is busy or in a failure delay */
	JOB_COMPUTING,  /* its source's turn: KDF under way (one at a time) */
	JOB_DELAYED,    /* failed: the answer is held until wait_until_us */
};

struct auth_job {
	struct auth_job *next;
	struct conn_auth *ca;               /* whose password; NULL once cancelled */
	void *owner;                        /* the connection, for done */
	auth_done_fn *done;
	void *arg;
	const char *proto;
	bool client;                        /* owner is a struct conn (client ports) */
	bool scarce;                        /* ca->scarce when it started */
	struct auth_addr from;              /* ca's peer (it outlives a cancel) */
	struct auth_source *source;
	const struct users_table *table;    /* a reference */
	const struct users_entry *user;     /* NULL: no such user (a dummy is hashed) */
	char name[USERS_NAME_MAX + 1];      /* as given (cut), for the logs */
	uint64_t name_key;                  /* keyed hash of the name as given */
	uint8_t password[USERS_PASSWORD_MAX];
	uint32_t password_len;              /* cleared once the KDF is keyed */
	bool too_long;                      /* name or password out of range */
	enum job_state state;
	bool started;                       /* its hash began (then it is a guess) */
	uint64_t started_us;
	uint64_t wait_until_us;             /* DELAYED */
	uint64_t deadline_us;               /* 0: none */
	uint8_t quick[USERS_HASH_LEN];      /* the cache key (see auth.h) */
	struct users_kdf kdf;
};

struct auth_cache_entry {
	const struct users_entry *user;
	uint64_t generation;
	uint8_t quick[USERS_HASH_LEN];
};

struct auth_core {
	struct node_core *core;
	struct evp_mac_ctx_st *mac;
	const struct users_table *table;    /* this core's hold (users_advance) */
	/* The job whose KDF holds `mac` (keyed with its password), NULL when
	 * none: no other job starts until it is decided (a review found a job
	 * whose failure delay ended re-keying `mac` in the middle of another's
	 * hash, which then failed a correct password). */
	struct auth_job *running;
	struct auth_job *head, *tail;
	struct timer wake;
	struct auth_sources sources;        /* its secret keys the name hashes too */
	struct auth_cache_entry cache[AUTH_CACHE];
	unsigned cache_next;
	uint64_t failures, successes, expired;
};

/* Hashed for a user that does not exist, so that its answer takes as long. */
static const struct users_entry dummy_user = {
	.name = "", .iterations = USERS_ITER_DEFAULT, .salt_len = USERS_SALT_DEFAULT,
};

/* ---- sources (server/auth_source.h) ------------------------------------ */

static struct auth_source *source_of(struct auth_core *ac, const struct auth_addr *peer)
{
	return auth_source_of(&ac->sources, peer, ac->core->reactor->now_us);
}

static uint64_t name_key(const struct auth_core *ac, const char *name)
{
	return auth_sources_hash(&ac->sources, name, strlen(name));
}

void auth_from(const struct auth_addr *peer, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (peer->family == AF_INET6 && inet_ntop(AF_INET6, peer->addr, ip, sizeof ip))
		snprintf(buf, len, "[%s]:%u", ip, peer->port);
	else if (peer->family == AF_INET && inet_ntop(AF_INET, peer->addr, ip, sizeof ip))
		snprintf(buf, len, "%s:%u", ip, peer->port);
	else
		snprintf(buf, len, "-");
}

void auth_conn_from(const struct conn *conn, char *buf, size_t len)
{
	auth_from(&conn->auth.peer, buf, len);
}

void auth_peer(struct conn_auth *ca, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

		ca->peer.family = AF_INET;
		memcpy(ca->peer.addr, &in->sin_addr, 4);
		ca->peer.port = ntohs(in->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

		ca->peer.family = AF_INET6;
		memcpy(ca->peer.addr, &in6->sin6_addr, 16);
		ca->peer.port = ntohs(in6->sin6_port);
	}
}

/* Counts the connection among its source's unauthenticated ones: false
 * when the source has its fill. */
static bool count(struct conn *conn)
{
	struct auth_core *ac = conn->core->auth;
	struct auth_source *s = source_of(ac, &conn->auth.peer);

	if (!s)
		return true; /* no address: nothing to count it under */
	if (s->unauth >= (s == &ac->sources.overflow ? OVERFLOW_PREAUTH : AUTH_PREAUTH_PER_SOURCE))
		return false;
	s->unauth++;
	s->last_us = conn->core->reactor->now_us;
	conn->auth.source = s;
	return true;
}

bool auth_conn_open(struct conn *conn)
{
	auth_peer(&conn->auth, conn->fd);
	return count(conn);
}

static void uncount(struct conn_auth *ca)
{
	struct auth_source *s = ca->source;

	ca->source = NULL;
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
		/* The job answers (by the same deadline), then it closes. */
		conn->auth.timed_out = true;
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
	uint64_t after = (uint64_t)conn->core->node->cfg.auth_timeout_ms * 1000;

	conn->auth.deadline_us = conn->core->reactor->now_us + after;
	conn->auth.timed_out = false;
	reactor_timer_arm(conn->core->reactor, &conn->auth.timer, after, auth_timeout, conn);
}

void auth_conn_close(struct conn *conn)
{
	struct auth_core *ac = conn->core->auth;

	if (!ac)
		return;
	auth_cancel(conn->core, &conn->auth);
	uncount(&conn->auth);
	if (conn->auth.table)
		users_table_unref(conn->core->node->users, conn->auth.table);
	conn->auth.table = NULL;
	conn->auth.user = NULL;
}

bool auth_needed(struct conn *conn)
{
	return conn->core->node->users && !auth_user(conn);
}

/* This core's current table (moving its hold to the newest). */
static const struct users_table *core_table(struct auth_core *ac)
{
	ac->table = users_advance(ac->core->node->users, ac->table);
	return ac->table;
}

/*
 * The connection's user is gone (or its password changed): it is back
 * under the limits before authentication, with a fresh --auth-timeout.
 */
static void fall_back(struct conn *conn)
{
	char from[64];

	conn->auth.requests = 0;
	/* Uncounted when its source has its fill: the deadline bounds it. */
	(void)count(conn);
	auth_conn_arm_timeout(conn);
	if (conn->resp)
		redis_preauth_limits(conn);
	auth_conn_from(conn, from, sizeof from);
	log_every(LOG_INFO, 1000, "connection %llu from %s: its user is gone from the reloaded "
		  "users file, or its password changed; it must authenticate again within %u ms",
		  (unsigned long long)conn->serial, from, conn->core->node->cfg.auth_timeout_ms);
}

const struct users_entry *auth_user(struct conn *conn)
{
	struct node *n = conn->core->node;
	const struct users_table *now;
	const struct users_entry *e;

	if (!conn->auth.user)
		return NULL;
	now = core_table(conn->core->auth);
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
	users_table_unref(n->users, conn->auth.table);
	conn->auth.table = NULL;
	conn->auth.user = NULL;
	if (!e) {
		fall_back(conn);
		return NULL;
	}
	users_table_ref(now);
	conn->auth.table = now;
	conn->auth.user = e;
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

/* auth_verify; `client`: the owner is the struct conn of `ca`. */
static int verify(struct node_core *c, struct conn_auth *ca, const uint8_t *user, size_t ulen,
		  const uint8_t *pw, size_t plen, const char *proto, auth_done_fn *done,
		  void *owner, void *arg, bool client)
{
	struct auth_core *ac = c->auth;
	struct auth_source *s = source_of(ac, &ca->peer);
	struct auth_job *j;
	size_t shown = ulen < USERS_NAME_MAX ? ulen : USERS_NAME_MAX;

	if (ca->scarce && s &&
	    (s->busy || s->jobs > 0 || s->next_try_us > c->reactor->now_us))
		return -EAGAIN;
	j = pool_alloc(&c->reactor->pool, sizeof *j);
	if (!j) {
		log_warn("auth: out of memory verifying a password (%s)", proto);
		return -ENOMEM;
	}
	memset(j, 0, sizeof *j);
	j->ca = ca;
	j->owner = owner;
	j->done = done;
	j->arg = arg;
	j->proto = proto;
	j->client = client;
	j->scarce = ca->scarce;
	j->from = ca->peer;
	j->source = s;
	j->deadline_us = ca->deadline_us;
	j->table = core_table(ac);
	users_table_ref(j->table);
	/* The name as the logs show it: any byte that could forge a line is '?'. */
	for (size_t i = 0; i < shown; i++)
		j->name[i] = user[i] >= 0x20 && user[i] < 0x7f ? (char)user[i] : '?';
	j->name_key = name_key(ac, j->name);
	j->too_long = ulen > USERS_NAME_MAX || plen > USERS_PASSWORD_MAX || plen == 0;
	if (!j->too_long) {
		j->user = users_find(j->table, (const char *)user, ulen);
		memcpy(j->password, pw, plen);
		j->password_len = (uint32_t)plen;
		quick_hash(j->user ? j->user : &dummy_user, pw, plen, j->quick);
	}
	if (s) {
		s->jobs++;
		s->last_us = c->reactor->now_us;
	}
	j->state = JOB_WAITING;
	if (ac->tail)
		ac->tail->next = j;
	else
		ac->head = j;
	ac->tail = j;
	ca->job = j;
	reactor_poll_again(c->reactor);
	return 0;
}

bool auth_start(struct conn *conn, const uint8_t *user, size_t ulen, const uint8_t *pw,
		size_t plen, const char *proto, auth_done_fn *done, void *arg)
{
	return verify(conn->core, &conn->auth, user, ulen, pw, plen, proto, done, conn, arg,
		      true) == 0;
}

int auth_verify(struct node_core *c, struct conn_auth *ca, const uint8_t *user, size_t ulen,
		const uint8_t *pw, size_t plen, const char *proto, auth_done_fn *done,
		void *owner, void *arg)
{
	return verify(c, ca, user, ulen, pw, plen, proto, done, owner, arg, false);
}

void auth_cancel(struct node_core *c, struct conn_auth *ca)
{
	(void)c;
	if (!ca->job)
		return;
	ca->job->ca = NULL;
	ca->job->owner = NULL;
	ca->job->done = NULL;
	ca->job = NULL;
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
	uint64_t now = ac->core->reactor->now_us, at;
	struct auth_source *s = j->source;
	char from[64];

	if (s) {
		s->busy = false;
		s->last_us = now;
	}
	if (ok) {
		ac->successes++;
		/* Only the failures against this very name are forgiven: a
		 * valid account must not wipe the guesses at another's. */
		if (s && (s->failures == 0 || (!s->failed_mixed && s->failed_name == j->name_key))) {
			s->failures = 0;
			s->next_try_us = 0;
		}
		return;
	}
	ac->failures++;
	/* Timed from the hash's start, not from now: how long the hash took
	 * must not show in when the answer comes (server/auth.h). */
	at = j->started_us + AUTH_FAIL_DELAY_US;
	if (s) {
		if (now - s->last_failure_us > AUTH_FAIL_FORGET_US)
			s->failures = 0;
		if (s->failures == 0) {
			s->failed_name = j->name_key;
			s->failed_mixed = false;
		} else if (s->failed_name != j->name_key) {
			s->failed_mixed = true;
		}
		if (s->failures < UINT16_MAX)
			s->failures++;
		s->last_failure_us = now;
		s->next_try_us = j->started_us + fail_delay(s->failures);
		if (s->next_try_us < now)
			s->next_try_us = now;
		if (!j->scarce)
			at = s->next_try_us;
	}
	j->state = JOB_DELAYED;
	j->wait_until_us = at > now ? at : now;
	if (j->deadline_us && j->wait_until_us > j->deadline_us)
		j->wait_until_us = j->deadline_us > now ? j->deadline_us : now;
	auth_from(&j->from, from, sizeof from);
	log_every(LOG_WARN, 1000, "auth: failed for user '%s' from %s (%s; %u in a row from "
		  "there)", j->name, from, j->proto, s ? s->failures : 0);
	audit_line_from(ac->core, &j->from, j->proto, j->name, "auth",
			j->too_long ? "failed: name or password out of range"
				    : "failed: wrong user or password");
}

/*
 * Takes the job out of the FIFO and frees it, and answers its owner (if
 * still there). A client connection past its deadline closes after the
 * answer.
 */
static void finish(struct auth_core *ac, struct auth_job *j, struct auth_job *prev, bool ok)
{
	struct conn_auth *ca = j->ca;
	struct users *users = ac->core->node->users;
	void *owner = j->owner;
	auth_done_fn *done = j->done;
	void *done_arg = j->arg;
	bool client = j->client && ca;
	bool late = !ok && ((j->deadline_us && ac->core->reactor->now_us >= j->deadline_us) ||
			    (ca && ca->timed_out));

	if (ac->running == j)
		ac->running = NULL;
	if (j->state == JOB_COMPUTING && j->source)
		j->source->busy = false;
	if (j->source && j->source->jobs)
		j->source->jobs--;
	if (prev)
		prev->next = j->next;
	else
		ac->head = j->next;
	if (ac->tail == j)
		ac->tail = prev;
	if (ca) {
		ca->job = NULL;
		if (ok && j->client) {
			/* The job's reference on its table becomes the session's. */
			if (ca->table)
				users_table_unref(users, ca->table);
			ca->table = j->table;
			ca->user = j->user;
			j->table = NULL;
			uncount(ca);
			reactor_timer_cancel(ac->core->reactor, &ca->timer);
			ca->deadline_us = 0;
		}
	}
	if (j->table)
		users_table_unref(users, j->table);
	OPENSSL_cleanse(j, sizeof *j);
	pool_free(&ac->core->reactor->pool, j);
	if (!done)
		return;
	if (late && client && !ca->user)
		/* Closing first: the answer still goes, nothing after it is read. */
		conn_close_after_reply(owner);
	done(owner, done_arg, ok);
}

/* Runs the KDF of `j` for up to *budget iterations: true when decided. */
static bool compute(struct auth_core *ac, struct auth_job *j, uint32_t *budget, bool *ok)
{
	const struct users_entry *e = j->user ? j->user : &dummy_user;

	if (!j->started) {
		j->started = true;
		j->started_us = ac->core->reactor->now_us;
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

/* Whether a waiting job's source lets it start now. */
static bool source_turn(const struct auth_job *j, uint64_t now)
{
	const struct auth_source *s = j->source;

	return !s || (!s->busy && s->next_try_us <= now);
}

static void auth_hook(struct reactor *r, void *arg)
{
	struct node_core *c = arg;
	struct auth_core *ac = c->auth;
	uint32_t budget = AUTH_SLICE_ITERATIONS;
	uint64_t now = r->now_us, next_wake = UINT64_MAX;
	bool computing = false, again = false;
	struct auth_job *j, *prev = NULL, *next;

	audit_core_flush(c);
	if (!ac)
		return;
	/* Lets go of tables a reload replaced, even on a core no client uses. */
	core_table(ac);
	for (j = ac->head; j; j = next) {
		bool ok = false;

		next = j->next;
		if (!j->started && (!j->ca || (j->deadline_us && j->deadline_us <= now))) {
			/* Its owner left, or its deadline passed before its
			 * turn: no hash, no guess counted. */
			if (j->ca) {
				char from[64];

				ac->expired++;
				auth_from(&j->from, from, sizeof from);
				log_every(LOG_INFO, 10000, "auth: an AUTH from %s (%s) waited past its "
					  "connection's deadline behind its source's failure delay; "
					  "answered as failed without trying it", from, j->proto);
			}
			finish(ac, j, prev, false);
			continue;
		}
		if (j->state == JOB_WAITING && source_turn(j, now)) {
			j->state = JOB_COMPUTING;
			if (j->source)
				j->source->busy = true;
		}
		if (j->state == JOB_COMPUTING && !computing && ac->running && ac->running != j)
			again = true; /* its turn comes when the running one is decided */
		else if (j->state == JOB_COMPUTING && !computing) {
			if (budget == 0 || !compute(ac, j, &budget, &ok)) {
				computing = true; /* the next pass goes on with it */
				prev = j;
				continue;
			}
			decide(ac, j, ok);
			if (ok) {
				finish(ac, j, prev, true);
				continue;
			}
		}
		if (j->state == JOB_DELAYED && (j->wait_until_us <= now || !j->ca)) {
			finish(ac, j, prev, false);
			continue;
		}
		if (j->state == JOB_DELAYED && j->wait_until_us < next_wake)
			next_wake = j->wait_until_us;
		if (j->state == JOB_WAITING && j->source && j->source->next_try_us > now &&
		    j->source->next_try_us < next_wake)
			next_wake = j->source->next_try_us;
		if (!j->started && j->deadline_us && j->deadline_us < next_wake)
			next_wake = j->deadline_us;
		prev = j;
	}
	if (computing || again)
		reactor_poll_again(r);
	else if (next_wake != UINT64_MAX)
		reactor_timer_arm(r, &ac->wake, next_wake > now ? next_wake - now : 0, wake_timer,
				  ac);
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
		if (!ac->mac ||
		    RAND_bytes(ac->sources.secret, sizeof ac->sources.secret) != 1) {
			users_kdf_mac_free(ac->mac);
			free(ac);
			return -ENOMEM;
		}
		ac->core = c;
		auth_sources_init(&ac->sources);
		ac->table = users_reader_attach(c->node->users);
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
	log_info("core %u: %llu authentications, %llu failed, %llu past their deadline unhashed",
		 c->reactor->id, (unsigned long long)ac->successes,
		 (unsigned long long)ac->failures, (unsigned long long)ac->expired);
	/* Connections are gone (conn_close_all): jobs left are only freed. */
	while (ac->head) {
		struct auth_job *j = ac->head;

		ac->head = j->next;
		if (j->table)
			users_table_unref(c->node->users, j->table);
		OPENSSL_cleanse(j, sizeof *j);
		pool_free(&c->reactor->pool, j);
	}
	reactor_timer_cancel(c->reactor, &ac->wake);
	users_reader_detach(c->node->users, ac->table);
	users_kdf_mac_free(ac->mac);
	OPENSSL_cleanse(ac->cache, sizeof ac->cache);
	OPENSSL_cleanse(ac->sources.secret, sizeof ac->sources.secret);
	free(ac);
	c->auth = NULL;
}
