/*
 * The admin HTTP port on core 0's ring; see server/admin.h for its bounds.
 *
 * A connection goes READ (request head into a fixed buffer) -> answer now
 * (/health, errors) or WAIT for a scrape (/metrics, /ready) -> SEND -> close.
 * A deadline timer runs from accept; when it fires, or the peer misbehaves,
 * the socket is shut down so whatever operation is in flight completes, and
 * the slot is released once none is. One scrape runs at a time: a request
 * arriving while one is in flight is answered from that scrape. A scrape is
 * the registry's rows (core/metrics.h), then, when a /metrics request waits
 * and --metrics-per-replica allows, the replicas' rows
 * (server/replica_metrics.h); /ready is answered after the first part.
 *
 * With --users, /metrics needs HTTP Basic credentials of a user, verified
 * by the core's authentication jobs (server/auth.h); the slot is kept while
 * a job points at its conn_auth, never past the exchange's deadline (the
 * job is cancelled) nor through a failure delay of its address (429 at
 * once). /health and /ready stay open.
 *
 * With TLS on (--tls-cert), the port speaks HTTPS only, through the same
 * memory-BIO layer as the client ports (io/tls.h): the ring receives
 * ciphertext into the connection's TLS room, the request head is decrypted
 * into `req`, and the answer is encrypted piecewise into the pair and sent
 * from there (tls_pump), then close_notify. The deadline timer bounds the
 * handshake too.
 */
#include "server/admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/reactor.h"
#include "server/audit.h"
#include "server/auth.h"
#include "server/node.h"
#include "server/node_metrics.h"
#include "server/replica_metrics.h"
#include "io/tls.h"

enum admin_want {
	ADMIN_WANT_NOTHING,
	ADMIN_WANT_METRICS,
	ADMIN_WANT_READY,
};

struct admin_conn {
	struct admin *admin;
	int fd;
	bool in_use;
	bool recv_armed;
	bool send_armed;
	bool dead;                   /* shut down: release once nothing is in flight */
	bool head_only;              /* HEAD: no body */
	bool answering;              /* TLS: `out` holds the answer, encrypted up to `sent` */
	bool tls_closing;            /* TLS: close_notify queued after the answer */
	struct tls_conn *tls;        /* with --tls-cert, else NULL */
	enum admin_want want;        /* waiting for the scrape */
	char req[ADMIN_REQUEST_MAX]; /* the request head */
	size_t rlen;
	struct metrics_buf out;      /* the answer: head and body (kept at its peak) */
	size_t sent;
	struct io_op recv_op;
	struct io_op send_op;
	struct timer deadline;
	struct conn_auth auth;       /* --users: /metrics needs a user (Basic) */
};

struct admin {
	struct node *node;
	struct metrics *m;
	struct reactor *r;           /* core 0, once started */
	int fd;
	bool accepting;
	bool armed;
	struct io_op accept_op;
	struct metrics_scrape scrape;
	struct replica_metrics replicas; /* the second part of a scrape */
	bool per_replica;            /* this scrape's /metrics carries replicas' series */
	struct metrics_buf body;     /* scratch for one answer's body */
	struct admin_conn conns[ADMIN_CONNS_MAX];
};

static void arm_accept(struct admin *a);
static void arm_recv(struct admin_conn *conn);
static void start_send(struct admin_conn *conn);
static void tls_pump(struct admin_conn *conn);

static void release(struct admin_conn *conn)
{
	/* A password being verified points at conn->auth: wait for it (a
	 * killed exchange cancels it first, conn_kill). */
	if (conn->recv_armed || conn->send_armed || conn->auth.job)
		return;
	reactor_timer_cancel(conn->admin->r, &conn->deadline);
	close(conn->fd);
	tls_conn_free(conn->tls);
	conn->tls = NULL;
	conn->in_use = false;
	conn->want = ADMIN_WANT_NOTHING;
}

/* Cuts the exchange: in-flight operations complete, then the slot frees. */
static void conn_kill(struct admin_conn *conn)
{
	if (!conn->dead) {
		conn->dead = true;
		conn->want = ADMIN_WANT_NOTHING;
		shutdown(conn->fd, SHUT_RDWR);
	}
	/* No answer is wanted: the slot is not held for its verification. */
	if (conn->admin->node->users)
		auth_cancel(conn->admin->r->user, &conn->auth);
	release(conn);
}

static void deadline_passed(struct timer *t, void *arg)
{
	struct admin_conn *conn = arg;

	(void)t;
	log_debug("admin: a client took over %u ms; closing it", ADMIN_TIMEOUT_MS);
	conn_kill(conn);
}

static const char *reason_of(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

/* Queues the whole answer and sends it; the connection closes after. */
static void respond(struct admin_conn *conn, int status, const char *type, const char *body,
		    size_t len)
{
	struct metrics_buf *out = &conn->out;

	out->len = 0;
	out->failed = false;
	metrics_buf_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
			   "Content-Length: %zu\r\nConnection: close\r\n%s"
			   "Cache-Control: no-store\r\n\r\n", status, reason_of(status), type, len,
			   status == 401 ? "WWW-Authenticate: Basic realm=\"ringkv\"\r\n" : "");
	if (!conn->head_only && len)
		metrics_buf_printf(out, "%.*s", (int)len, body);
	if (out->failed) {
		log_warn("admin: no memory for a %zu-byte answer", len);
		conn_kill(conn);
		return;
	}
	conn->sent = 0;
	if (conn->tls) {
		conn->answering = true;
		tls_pump(conn);
		return;
	}
	start_send(conn);
}

static void respond_text(struct admin_conn *conn, int status, const char *text)
{
	respond(conn, status, "text/plain; charset=utf-8", text, strlen(text));
}

static void start_send(struct admin_conn *conn)
{
	struct io_uring_sqe *sqe = io_ring_get_sqe(&conn->admin->r->io);

	io_uring_prep_send(sqe, conn->fd, conn->out.data + conn->sent,
			   conn->out.len - conn->sent, MSG_NOSIGNAL);
	io_op_attach(sqe, &conn->send_op);
	conn->send_armed = true;
}

/*
 * TLS: encrypts what is left of the answer into the pair, as far as it
 * fits, then close_notify after its last byte; sends the pair's ciphertext
 * (handshake records too), one send at a time; closes once all is out.
 */
static void tls_pump(struct admin_conn *conn)
{
	const uint8_t *data;
	size_t len;

	if (conn->dead)
		return;
	while (conn->answering && conn->sent < conn->out.len) {
		ssize_t n = tls_conn_write(conn->tls, (const uint8_t *)conn->out.data + conn->sent,
					   conn->out.len - conn->sent);

		if (n == TLS_WANT)
			break;
		if (n < 0) {
			log_debug("admin: tls: %s", tls_conn_error(conn->tls));
			conn_kill(conn);
			return;
		}
		conn->sent += (size_t)n;
	}
	if (conn->answering && conn->sent == conn->out.len && !conn->tls_closing) {
		tls_conn_shutdown(conn->tls);
		conn->tls_closing = true;
	}
	if (conn->send_armed)
		return;
	len = tls_conn_send_data(conn->tls, &data);
	if (len) {
		struct io_uring_sqe *sqe = io_ring_get_sqe(&conn->admin->r->io);

		io_uring_prep_send(sqe, conn->fd, data, len, MSG_NOSIGNAL);
		io_op_attach(sqe, &conn->send_op);
		conn->send_armed = true;
	} else if (conn->tls_closing) {
		conn_kill(conn); /* all sent: the client sees the end */
	}
}

static void send_done(struct io_op *op, int res, unsigned flags)
{
	struct admin_conn *conn = op->data;

	(void)flags;
	conn->send_armed = false;
	if (conn->dead || res <= 0) {
		conn_kill(conn);
		return;
	}
	if (conn->tls) {
		tls_conn_sent(conn->tls, (size_t)res);
		/* A handshake flight larger than the pair (a connection's is
		 * small, io/tls.h) goes on now there is room for it. */
		if (!tls_conn_established(conn->tls) &&
		    tls_conn_handshake(conn->tls) == TLS_FAILED) {
			log_debug("admin: tls handshake: %s", tls_conn_error(conn->tls));
			conn_kill(conn);
			return;
		}
		tls_pump(conn);
		return;
	}
	conn->sent += (size_t)res;
	if (conn->sent < conn->out.len) {
		start_send(conn);
		return;
	}
	/* All sent: shut our side so the client sees the end, then close. */
	conn_kill(conn);
}

/* What /ready reports: the conditions, from the scrape's rows. */
struct readiness {
	bool stopping;
	uint64_t disk_full;       /* shards that cannot flush or compact */
	uint64_t apply_stopped;   /* replicas whose shard refused to apply */
	uint64_t leaderless;      /* replicas that know no leader */
	uint64_t peer_links;      /* outbound peer connections, summed over cores */
	uint64_t peer_links_up;
};

static void reason_add(struct metrics_buf *b, unsigned *n, const char *text)
{
	metrics_buf_printf(b, "%s\"%s\"", (*n)++ ? "," : "", text);
}

/*
 * The /ready body: {"ready":..., "reason": the first failing condition (kept
 * for readers of the first version), "reasons": every one, then the counts
 * behind them}. Peer connections down are no reason of their own (a node
 * whose replicas all know their leader serves with a peer gone), but they
 * explain leaderless replicas, so they are listed when the node is not
 * ready. Returns whether the node is ready.
 */
static bool ready_body(struct admin *a, const struct readiness *st, struct metrics_buf *b)
{
	char text[4][128];
	unsigned n_text = 0, n = 0;
	uint64_t down = st->peer_links - st->peer_links_up;
	bool ready;

	if (st->stopping)
		snprintf(text[n_text++], sizeof text[0], "stopping");
	if (st->disk_full)
		snprintf(text[n_text++], sizeof text[0], "disk full: %" PRIu64
			 " shard%s cannot flush or compact", st->disk_full,
			 st->disk_full == 1 ? "" : "s");
	if (st->apply_stopped)
		snprintf(text[n_text++], sizeof text[0], "%" PRIu64
			 " shard replica%s stopped applying (see the log)", st->apply_stopped,
			 st->apply_stopped == 1 ? "" : "s");
	if (st->leaderless)
		snprintf(text[n_text++], sizeof text[0], "%" PRIu64
			 " shard replica%s know%s no leader", st->leaderless,
			 st->leaderless == 1 ? "" : "s", st->leaderless == 1 ? "s" : "");
	ready = n_text == 0;
	if (!ready && down)
		snprintf(text[n_text++], sizeof text[0], "%" PRIu64 " of %" PRIu64
			 " peer connection%s down", down, st->peer_links,
			 st->peer_links == 1 ? "" : "s");
	metrics_buf_printf(b, "{\"ready\":%s,", ready ? "true" : "false");
	if (!ready) {
		metrics_buf_printf(b, "\"reason\":\"%s\",\"reasons\":[", text[0]);
		for (unsigned i = 0; i < n_text; i++)
			reason_add(b, &n, text[i]);
		metrics_buf_printf(b, "],");
	}
	metrics_buf_printf(b, "\"node_id\":%" PRIu64 ",\"shards\":%u,\"cores\":%u,"
			   "\"stopping\":%s,\"disk_full_shards\":%" PRIu64 ","
			   "\"apply_stopped_replicas\":%" PRIu64 ",\"leaderless_replicas\":%"
			   PRIu64 ",\"peer_connections\":%" PRIu64 ",\"peer_connections_up\":%"
			   PRIu64 "}\n", a->node->cfg.node_id, a->node->shards, a->node->cores,
			   st->stopping ? "true" : "false", st->disk_full, st->apply_stopped,
			   st->leaderless, st->peer_links, st->peer_links_up);
	return ready;
}

/*
 * Answers the connections waiting for the scrape: those that asked for
 * /ready only, or every one once the scrape is whole.
 */
static void answer_waiting(struct admin *a, bool ready_only)
{
	const uint64_t *rows = a->scrape.rows;
	const struct node_metric_ids *ids = a->node->metric_ids;
	const struct readiness st = {
		.stopping = reactor_stopping(a->r),
		.disk_full = metrics_row_sum(a->m, rows, ids->disk_full),
		.apply_stopped = metrics_row_sum(a->m, rows, ids->raft_apply_stopped),
		.leaderless = metrics_row_sum(a->m, rows, ids->raft_leaderless),
		.peer_links = metrics_row_sum(a->m, rows, ids->peer_nodes),
		.peer_links_up = metrics_row_sum(a->m, rows, ids->peer_connected),
	};
	bool ready;

	for (unsigned i = 0; i < ADMIN_CONNS_MAX; i++) {
		struct admin_conn *conn = &a->conns[i];

		if (!conn->in_use || conn->dead || conn->want == ADMIN_WANT_NOTHING ||
		    (ready_only && conn->want != ADMIN_WANT_READY))
			continue;
		a->body.len = 0;
		a->body.failed = false;
		if (conn->want == ADMIN_WANT_METRICS) {
			conn->want = ADMIN_WANT_NOTHING;
			if (metrics_format(a->m, rows, &a->body) != 0 ||
			    replica_metrics_format(&a->replicas, a->per_replica, &a->body) != 0) {
				respond_text(conn, 500, "out of memory\n");
				continue;
			}
			respond(conn, 200, "text/plain; version=0.0.4; charset=utf-8",
				a->body.data, a->body.len);
			continue;
		}
		conn->want = ADMIN_WANT_NOTHING;
		ready = ready_body(a, &st, &a->body);
		if (a->body.failed) {
			respond_text(conn, 500, "out of memory\n");
			continue;
		}
		respond(conn, ready ? 200 : 503, "application/json", a->body.data, a->body.len);
	}
}

/* The replicas' rows are home: the scrape is whole. */
static void replicas_done(struct replica_metrics *rm, void *arg)
{
	(void)rm;
	answer_waiting(arg, false);
}

/*
 * Whether /metrics carries the per-replica series: --metrics-per-replica
 * on, or auto while the node holds at most --metrics-per-replica-max
 * replicas (counted in the registry's rows just gathered, so a node over
 * the limit does not gather replicas' rows at all).
 */
static bool per_replica_wanted(const struct admin *a)
{
	const struct node_metric_ids *ids = a->node->metric_ids;
	uint64_t replicas = 0;

	switch (a->node->cfg.metrics_per_replica) {
	case CONFIG_PER_REPLICA_ON:
		return true;
	case CONFIG_PER_REPLICA_OFF:
		return false;
	default:
		for (unsigned i = 0; i < NODE_METRICS_ROLES; i++)
			replicas += metrics_row_sum(a->m, a->scrape.rows, ids->raft_replicas[i]);
		return replicas <= a->node->cfg.metrics_per_replica_max;
	}
}

/* The registry's rows are home: answer, or gather the replicas' first. */
static void scrape_done(struct metrics_scrape *s, void *arg)
{
	struct admin *a = arg;
	bool metrics_wanted = false;

	(void)s;
	for (unsigned i = 0; i < ADMIN_CONNS_MAX; i++)
		metrics_wanted |= a->conns[i].in_use && !a->conns[i].dead &&
				  a->conns[i].want == ADMIN_WANT_METRICS;
	a->per_replica = per_replica_wanted(a);
	if (metrics_wanted && a->per_replica) {
		answer_waiting(a, true);
		replica_metrics_start(a->r, &a->replicas, replicas_done, a);
		return;
	}
	answer_waiting(a, false);
}

static void want_scrape(struct admin_conn *conn, enum admin_want want)
{
	struct admin *a = conn->admin;

	conn->want = want;
	if (!metrics_scrape_busy(&a->scrape) && !replica_metrics_busy(&a->replicas))
		metrics_scrape_start(a->r, &a->scrape, scrape_done, a);
}

/*
 * The user and password of the head's "Authorization: Basic ..." line,
 * NUL-terminated into user (ucap bytes) and pass (pcap bytes): true, or
 * false when there is none, it is malformed or too long.
 */
static bool basic_credentials(const char *head, char *user, size_t ucap, char *pass, size_t pcap)
{
	char decoded[3 * ((USERS_NAME_MAX + USERS_PASSWORD_MAX + 4) / 3 + 2)];
	const char *line, *token, *colon;
	size_t tlen;
	int n;

	for (line = strchr(head, '\n'); line; line = strchr(line, '\n')) {
		line++;
		if (strncasecmp(line, "Authorization:", 14) == 0)
			break;
	}
	if (!line)
		return false;
	token = line + 14;
	token += strspn(token, " \t");
	if (strncasecmp(token, "Basic ", 6) != 0)
		return false;
	token += 6;
	token += strspn(token, " \t");
	tlen = strcspn(token, " \t\r\n");
	if (tlen == 0 || tlen % 4 || tlen / 4 * 3 >= sizeof decoded)
		return false;
	n = EVP_DecodeBlock((unsigned char *)decoded, (const unsigned char *)token, (int)tlen);
	if (n < 0)
		return false;
	n -= (token[tlen - 1] == '=') + (token[tlen - 2] == '=');
	decoded[n] = '\0';
	colon = memchr(decoded, ':', (size_t)n);
	if (!colon || (size_t)(colon - decoded) >= ucap ||
	    (size_t)(decoded + n - colon - 1) >= pcap) {
		OPENSSL_cleanse(decoded, sizeof decoded);
		return false;
	}
	memcpy(user, decoded, (size_t)(colon - decoded));
	user[colon - decoded] = '\0';
	memcpy(pass, colon + 1, (size_t)(decoded + n - colon - 1));
	pass[decoded + n - colon - 1] = '\0';
	OPENSSL_cleanse(decoded, sizeof decoded);
	return true;
}

/* The /metrics credentials were verified (server/auth.h). */
static void metrics_auth_done(void *owner, void *arg, bool ok)
{
	struct admin_conn *conn = owner;

	(void)arg;
	if (conn->dead) {
		release(conn);
		return;
	}
	if (ok)
		want_scrape(conn, ADMIN_WANT_METRICS);
	else
		respond_text(conn, 401, "invalid username-password pair\n");
}

/* --users: /metrics needs a user of the users file (any role), by HTTP
 * Basic authentication; /health and /ready stay open for load balancers. */
static void metrics_auth(struct admin_conn *conn)
{
	struct admin *a = conn->admin;
	char user[USERS_NAME_MAX + 2], pass[USERS_PASSWORD_MAX + 2];
	int rv;

	if (!basic_credentials(conn->req, user, sizeof user, pass, sizeof pass)) {
		respond_text(conn, 401, "/metrics needs a user (HTTP Basic authentication)\n");
		return;
	}
	rv = auth_verify(a->r->user, &conn->auth, (const uint8_t *)user, strlen(user),
			 (const uint8_t *)pass, strlen(pass), "admin", metrics_auth_done, conn, NULL);
	if (rv == -EAGAIN)
		/* Its address is in a failure delay: the slot is not held
		 * through it (server/auth.h, "Deadlines"). */
		respond_text(conn, 429, "too many failed authentications from this address; "
					"retry later\n");
	else if (rv)
		respond_text(conn, 500, "out of memory\n");
	OPENSSL_cleanse(pass, sizeof pass);
}

/* A whole request head is in conn->req. */
static void handle_request(struct admin_conn *conn)
{
	struct admin *a = conn->admin;
	char method[8], target[512], version[16], text[256];
	size_t path_len;

	metrics_inc(metrics_core_of(a->m, 0), a->node->metric_ids->admin_requests);
	conn->req[conn->rlen < sizeof conn->req ? conn->rlen : sizeof conn->req - 1] = '\0';
	if (sscanf(conn->req, "%7s %511s %15s", method, target, version) != 3 ||
	    strncmp(version, "HTTP/1.", 7) != 0) {
		respond_text(conn, 400, "expected 'GET /path HTTP/1.1'\n");
		return;
	}
	conn->head_only = !strcmp(method, "HEAD");
	if (strcmp(method, "GET") != 0 && !conn->head_only) {
		respond_text(conn, 405, "only GET and HEAD\n");
		return;
	}
	path_len = strcspn(target, "?");
	target[path_len] = '\0';
	if (!strcmp(target, "/metrics")) {
		if (a->node->users)
			metrics_auth(conn);
		else
			want_scrape(conn, ADMIN_WANT_METRICS);
	} else if (!strcmp(target, "/ready")) {
		want_scrape(conn, ADMIN_WANT_READY);
	} else if (!strcmp(target, "/health")) {
		snprintf(text, sizeof text, "{\"status\":\"ok\",\"node_id\":%" PRIu64 "}\n",
			 a->node->cfg.node_id);
		respond(conn, 200, "application/json", text, strlen(text));
	} else {
		respond_text(conn, 404, "try /metrics, /health or /ready\n");
	}
}

/* The head is whole (answered, or waiting for a scrape), or too long (431):
 * true when no more of the request is wanted. */
static bool head_in(struct admin_conn *conn)
{
	if (memmem(conn->req, conn->rlen, "\r\n\r\n", 4) || memmem(conn->req, conn->rlen,
								    "\n\n", 2)) {
		handle_request(conn);
		return true;
	}
	if (conn->rlen == sizeof conn->req) {
		respond_text(conn, 431, "request head over 4096 bytes\n");
		return true;
	}
	return false;
}

/* TLS: ciphertext arrived; handshake, then decrypt the head into `req`. */
static void tls_input(struct admin_conn *conn)
{
	bool done = false;

	if (!tls_conn_established(conn->tls) &&
	    tls_conn_handshake(conn->tls) == TLS_FAILED) {
		log_debug("admin: tls handshake: %s", tls_conn_error(conn->tls));
		conn_kill(conn);
		return;
	}
	while (!done && tls_conn_established(conn->tls) && conn->rlen < sizeof conn->req) {
		ssize_t n = tls_conn_read(conn->tls, (uint8_t *)conn->req + conn->rlen,
					  sizeof conn->req - conn->rlen);

		if (n == TLS_WANT)
			break;
		if (n < 0) {
			conn_kill(conn);
			return;
		}
		conn->rlen += (size_t)n;
		done = head_in(conn);
	}
	if (!done && conn->rlen == sizeof conn->req)
		done = head_in(conn);
	if (conn->dead)
		return;
	tls_pump(conn); /* handshake records, or the answer */
	if (!done && !conn->dead)
		arm_recv(conn);
}

static void recv_done(struct io_op *op, int res, unsigned flags)
{
	struct admin_conn *conn = op->data;

	(void)flags;
	conn->recv_armed = false;
	if (conn->dead || res <= 0) {
		conn_kill(conn);
		return;
	}
	if (conn->tls) {
		tls_conn_received(conn->tls, (size_t)res);
		tls_input(conn);
		return;
	}
	conn->rlen += (size_t)res;
	if (!head_in(conn))
		arm_recv(conn);
}

static void arm_recv(struct admin_conn *conn)
{
	struct io_uring_sqe *sqe;
	uint8_t *room = NULL;
	size_t len = 0;

	if (conn->tls) {
		len = tls_conn_recv_room(conn->tls, &room);
		if (!len) {
			/* Ciphertext still waits for the pair: nothing was read
			 * from it, which only a peer flooding records causes. */
			conn_kill(conn);
			return;
		}
	}
	sqe = io_ring_get_sqe(&conn->admin->r->io);
	if (conn->tls)
		io_uring_prep_recv(sqe, conn->fd, room, len, 0);
	else
		io_uring_prep_recv(sqe, conn->fd, conn->req + conn->rlen,
				   sizeof conn->req - conn->rlen, 0);
	io_op_attach(sqe, &conn->recv_op);
	conn->recv_armed = true;
}

static void take(struct admin *a, int fd)
{
	struct admin_conn *conn = NULL;

	for (unsigned i = 0; i < ADMIN_CONNS_MAX && !conn; i++)
		if (!a->conns[i].in_use)
			conn = &a->conns[i];
	if (!conn) {
		log_every(LOG_WARN, 10000, "admin: %u connections open; closing new ones",
			  ADMIN_CONNS_MAX);
		close(fd);
		return;
	}
	conn->tls = NULL;
	if (a->node->tls && !(conn->tls = tls_conn_new(a->node->tls))) {
		log_every(LOG_WARN, 10000, "admin: no memory for a TLS connection; closing it");
		close(fd);
		return;
	}
	conn->in_use = true;
	conn->dead = false;
	conn->answering = false;
	conn->tls_closing = false;
	conn->fd = fd;
	conn->rlen = 0;
	conn->want = ADMIN_WANT_NOTHING;
	conn->head_only = false;
	memset(&conn->auth, 0, sizeof conn->auth);
	if (a->node->users) {
		auth_peer(&conn->auth, fd);
		conn->auth.scarce = true;
		conn->auth.deadline_us = a->r->now_us + (uint64_t)ADMIN_TIMEOUT_MS * 1000;
	}
	reactor_timer_arm(a->r, &conn->deadline, (uint64_t)ADMIN_TIMEOUT_MS * 1000,
			  deadline_passed, conn);
	arm_recv(conn);
}

static void accept_done(struct io_op *op, int res, unsigned flags)
{
	struct admin *a = op->data;

	if (!(flags & IORING_CQE_F_MORE))
		a->armed = false;
	if (res >= 0) {
		if (a->accepting)
			take(a, res);
		else
			close(res);
	} else if (res != -ECANCELED && res != -EINVAL && res != -EBADF) {
		log_every(LOG_WARN, 10000, "admin: accept: %s", strerror(-res));
		/* Out of descriptors: the next connection closing frees one;
		 * re-arming only once this op is done keeps it from spinning. */
		if (res == -EMFILE || res == -ENFILE)
			return;
	}
	if (a->accepting && !a->armed)
		arm_accept(a);
}

static void arm_accept(struct admin *a)
{
	struct io_uring_sqe *sqe = io_ring_get_sqe(&a->r->io);

	if (a->r->io.has_multishot_accept)
		io_uring_prep_multishot_accept(sqe, a->fd, NULL, NULL, SOCK_CLOEXEC);
	else
		io_uring_prep_accept(sqe, a->fd, NULL, NULL, SOCK_CLOEXEC);
	io_op_attach(sqe, &a->accept_op);
	a->armed = true;
}

int admin_create(struct admin **out, struct node *n, struct metrics *m, const char *host,
		 uint16_t port, uint16_t *bound, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof ss;
	struct admin *a;
	char portstr[8];
	int one = 1, rv;

	a = calloc(1, sizeof *a);
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	a->node = n;
	a->m = m;
	a->fd = -1;
	a->accept_op.done = accept_done;
	a->accept_op.data = a;
	for (unsigned i = 0; i < ADMIN_CONNS_MAX; i++) {
		a->conns[i].admin = a;
		a->conns[i].recv_op.done = recv_done;
		a->conns[i].recv_op.data = &a->conns[i];
		a->conns[i].send_op.done = send_done;
		a->conns[i].send_op.data = &a->conns[i];
	}
	rv = metrics_scrape_init(&a->scrape, m, 0);
	if (rv) {
		snprintf(err, errlen, "out of memory");
		goto err_after_alloc;
	}
	rv = replica_metrics_init(&a->replicas, n->cores, 0);
	if (rv) {
		snprintf(err, errlen, "out of memory");
		goto err_after_scrape;
	}
	snprintf(portstr, sizeof portstr, "%u", port);
	rv = getaddrinfo(host, portstr, &hints, &ai);
	if (rv) {
		snprintf(err, errlen, "--admin-listen: cannot resolve %s: %s", host,
			 gai_strerror(rv));
		rv = -EINVAL;
		goto err_after_scrape;
	}
	/* No SO_REUSEPORT: one listener, and a second node on the port must
	 * fail here rather than share it. */
	a->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (a->fd < 0 || setsockopt(a->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(a->fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(a->fd, 128) != 0 ||
	    getsockname(a->fd, (struct sockaddr *)&ss, &sslen) != 0) {
		rv = -errno;
		snprintf(err, errlen, "--admin-listen: cannot listen on %s:%u: %s", host, port,
			 strerror(errno));
		goto err_after_addr;
	}
	freeaddrinfo(ai);
	*bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
		       ((struct sockaddr_in *)&ss)->sin_port);
	*out = a;
	return 0;

err_after_addr:
	if (a->fd >= 0)
		close(a->fd);
	freeaddrinfo(ai);
err_after_scrape:
	replica_metrics_destroy(&a->replicas);
	metrics_scrape_destroy(&a->scrape);
err_after_alloc:
	free(a);
	return rv;
}

void admin_start(struct admin *a, struct reactor *r)
{
	a->r = r;
	a->accepting = true;
	arm_accept(a);
}

void admin_stop(struct admin *a)
{
	struct io_uring_sqe *sqe;

	if (!a->r)
		return;
	a->accepting = false;
	if (a->armed) {
		sqe = io_ring_get_sqe(&a->r->io);
		io_uring_prep_cancel(sqe, &a->accept_op, 0);
		io_uring_sqe_set_data(sqe, NULL);
	}
	for (unsigned i = 0; i < ADMIN_CONNS_MAX; i++)
		if (a->conns[i].in_use && a->conns[i].want == ADMIN_WANT_NOTHING &&
		    !a->conns[i].send_armed)
			conn_kill(&a->conns[i]);
}

void admin_destroy(struct admin *a)
{
	if (!a)
		return;
	for (unsigned i = 0; i < ADMIN_CONNS_MAX; i++) {
		if (a->conns[i].in_use)
			close(a->conns[i].fd);
		metrics_buf_free(&a->conns[i].out);
	}
	metrics_buf_free(&a->body);
	replica_metrics_destroy(&a->replicas);
	metrics_scrape_destroy(&a->scrape);
	if (a->fd >= 0)
		close(a->fd);
	free(a);
}
