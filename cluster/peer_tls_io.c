/*
 * TLS on the peer transport's connections, both sides (cluster/peer_internal.h):
 * the outbound handshake, frames into OpenSSL and its ciphertext out by the
 * ring, the inbound handshake and decryption, the refusal of a peer with
 * the alert that says why (either side), and the check of open connections
 * after a reload of the context and when a certificate they showed expires.
 * The checks of a certificate's node id run inside the handshake
 * (tls_conn_set_check); cluster/peer_tls.c says what a certificate must
 * name.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/peer_internal.h"
#include "cluster/peer_tls.h"
#include "core/log.h"
#include "io/tls.h"

static void in_tls_flush(struct peer_in *in);

/* TLS: what the server sent on our connection (see peer_out_tls_step). */
void peer_out_tls_received(struct peer *p, int res)
{
	uint8_t scratch[64];
	ssize_t n;

	if (p->state != OUT_HANDSHAKE && p->state != OUT_UP) {
		peer_out_maybe_closed(p);
		return;
	}
	if (res <= 0) {
		peer_out_lost(p, res < 0 ? res : 0);
		peer_out_maybe_closed(p);
		return;
	}
	tls_conn_received(p->tls, (size_t)res);
	if (p->state == OUT_UP) {
		n = tls_conn_read(p->tls, scratch, sizeof scratch);
		if (n != TLS_WANT) {
			if (n == TLS_FAILED)
				snprintf(p->why, sizeof p->why, "TLS: %s",
					 tls_conn_error(p->tls));
			peer_out_lost(p, n == TLS_CLOSED ? 0 : -EPROTO);
			peer_out_maybe_closed(p);
			return;
		}
	}
	peer_out_tls_step(p);
}

/* TLS: one SEND of what OpenSSL holds for the server; false when it holds
 * nothing. No send may be in flight. */
bool peer_out_send_tls(struct peer *p)
{
	struct io_uring_sqe *sqe;
	const uint8_t *data;
	size_t len = tls_conn_send_data(p->tls, &data);

	if (len == 0)
		return false;
	sqe = io_ring_get_sqe(&p->pc->r->io);
	io_uring_prep_send(sqe, p->fd, data, len, MSG_NOSIGNAL);
	peer_submit_op(p, sqe, &p->send_op);
	p->sending = true;
	return true;
}

/*
 * TLS: the server's certificate verified again, against the current
 * context at the current time; `occasion` says why, for the loss's line
 * ("after the TLS reload"). False when it fails: closed (close_notify
 * first), the reason in the loss's line.
 */
static bool out_verify(struct peer *p, const char *occasion)
{
	char err[320];

	if (tls_conn_recheck(p->tls, p->pc->net->cfg.tls, err, sizeof err) == 0)
		return true;
	snprintf(p->why, sizeof p->why, "closed %s: its certificate no longer verifies: %s",
		 occasion, err);
	tls_conn_shutdown(p->tls);
	peer_out_refuse(p, -EKEYREJECTED);
	return false;
}

/* TLS: out_verify, when the server's certificate was verified against a
 * context a reload has replaced since. */
static bool out_recheck(struct peer *p)
{
	return !tls_conn_stale(p->tls, p->pc->net->cfg.tls) ||
	       out_verify(p, "after the TLS reload");
}

/*
 * TLS: drives the handshake, sends what OpenSSL has for the server, keeps
 * a receive armed. On UP, peer_start_batch does the sending.
 */
void peer_out_tls_step(struct peer *p)
{
	struct peer_core *pc = p->pc;
	int rv;

	if (p->state == OUT_HANDSHAKE) {
		char err[160];

		rv = tls_conn_handshake(p->tls);
		if (rv == TLS_FAILED) {
			const char *alert = tls_conn_alert_sent(p->tls);

			/* A refusal of ours: the alert OpenSSL queued says why
			 * to the server's log (peer_out_refuse sends it). */
			snprintf(p->why, sizeof p->why, "TLS handshake: %s%s%s",
				 tls_conn_error(p->tls), alert ? "; alert sent: " : "",
				 alert ? alert : "");
			peer_out_refuse(p, -EPROTO);
			return;
		}
		if (rv == 1) {
			/* The chain was verified; is it the node we dialled?
			 * (peer_out_cert_check said so inside the handshake.) */
			if (peer_tls_check(p->tls, p->node->id, err, sizeof err) != 0) {
				snprintf(p->why, sizeof p->why, "refused: %s", err);
				tls_conn_shutdown(p->tls);
				peer_out_refuse(p, -EPERM);
				return;
			}
			/* Verified against the context of before a reload. */
			if (!out_recheck(p))
				return;
			reactor_timer_cancel(pc->r, &p->timer);
			peer_out_up(p);
			return;
		}
		if (!p->sending)
			peer_out_send_tls(p);
		peer_arm_probe(p);
		return;
	}
	if (p->state == OUT_UP) {
		peer_start_batch(p);
		peer_arm_probe(p);
	}
}

/* TLS, inside the handshake: the server must be the node dialled (a
 * refusal is the reason in our log line, and a bad_certificate alert that
 * peer_out_refuse sends before closing, for the server's). */
int peer_out_cert_check(void *arg, X509 *cert, char *why, size_t len)
{
	struct peer *p = arg;

	return peer_tls_cert_is(cert, p->node->id, why, len);
}

/*
 * TLS: OpenSSL takes frames (the hello first, control ahead of bulk) until
 * its outgoing buffer is full, one record each; one SEND carries out what
 * it holds. A frame is freed once OpenSSL took all of it.
 */
void peer_start_batch_tls(struct peer *p)
{
	struct peer_core *pc = p->pc;

	for (;;) {
		ssize_t n;

		if (!p->tx) {
			if (p->hello) {
				p->tx = p->hello;
				p->hello = NULL;
			} else if (!(p->tx = peer_queue_pop(&p->control)) &&
				   !(p->tx = peer_queue_pop(&p->bulk))) {
				break;
			}
			p->tx_off = 0;
		}
		n = tls_conn_write(p->tls, p->tx->wire + p->tx_off, p->tx->wire_len - p->tx_off);
		if (n == TLS_WANT)
			break;
		if (n < 0) {
			snprintf(p->why, sizeof p->why, "TLS: %s", tls_conn_error(p->tls));
			peer_out_lost(p, -EPROTO);
			return;
		}
		p->tx_off += (size_t)n;
		if (p->tx_off == p->tx->wire_len) {
			p->stats.frames_sent++;
			p->stats.bytes_sent += p->tx->wire_len;
			pool_free(core_pool(pc), p->tx);
			p->tx = NULL;
		}
	}
	peer_out_send_tls(p);
}

static void refuse_timeout_fired(struct timer *t, void *arg)
{
	peer_in_close(arg);
}

/*
 * Closes a refused connection. With TLS, what OpenSSL queued for the
 * dialler goes out through the ring first: the alert of a failed handshake
 * (its reason: unknown CA, certificate expired, bad certificate), or the
 * close_notify the caller queued; at most PEER_REFUSE_FLUSH_US is spent on
 * it, and nothing the dialler sends meanwhile is read.
 */
void peer_in_refuse(struct peer_in *in)
{
	const uint8_t *data;

	if (!in->tls || in->closing || in->refusing ||
	    (!in->sending && tls_conn_send_data(in->tls, &data) == 0)) {
		peer_in_close(in);
		return;
	}
	in->refusing = true;
	in_tls_flush(in);
	reactor_timer_cancel(in->pc->r, &in->hello_timer);
	reactor_timer_arm(in->pc->r, &in->hello_timer, PEER_REFUSE_FLUSH_US,
			  refuse_timeout_fired, in);
}

/* TLS: sends what OpenSSL has for the dialler (handshake flights, alerts). */
static void in_tls_flush(struct peer_in *in)
{
	struct io_uring_sqe *sqe;
	const uint8_t *data;
	size_t len;

	if (in->sending || in->closing || !(len = tls_conn_send_data(in->tls, &data)))
		return;
	sqe = io_ring_get_sqe(&in->pc->r->io);
	io_uring_prep_send(sqe, in->fd, data, len, MSG_NOSIGNAL);
	io_op_attach(sqe, &in->send_op);
	in->sending = true;
	in->pc->ops++;
}

void peer_in_send_done(struct io_op *op, int res, unsigned flags)
{
	struct peer_in *in = op->data;

	in->sending = false;
	in->pc->ops--;
	if (in->closing || in->pc->stopping || res <= 0) {
		peer_in_close(in);
		return;
	}
	tls_conn_sent(in->tls, (size_t)res);
	if (in->refusing) {
		in_tls_flush(in);
		if (!in->sending)
			peer_in_close(in);
		return;
	}
	if (!in->handoff_wait)
		peer_in_tls_progress(in);
	else if (!in->recv_armed)
		peer_in_handoff(in, in->handoff_core);
}

/* TLS: the dialler refused the certificate we showed; its alert says why
 * (logged, naming the node whose address dialled). No peer_in_refuse: a
 * fatal alert received leaves nothing to send. */
static void in_refused_by_dialler(struct peer_in *in)
{
	uint64_t node = peer_node_at(in->pc, &in->from);
	char from[112], why[448];

	if (node)
		snprintf(from, sizeof from, "%s (node %" PRIu64 "'s address)", in->from_text,
			 node);
	else
		snprintf(from, sizeof from, "%s", in->from_text);
	snprintf(why, sizeof why, "TLS handshake: %s", tls_conn_error(in->tls));
	peer_log_refused_by(in->pc, from, why);
	peer_in_close(in);
}

/*
 * TLS: drives the handshake (its certificate's node noted once verified),
 * then decrypts into buf and acts on it as peer_in_consume does, until OpenSSL
 * needs more ciphertext; sends what it has to send; receives again.
 */
void peer_in_tls_progress(struct peer_in *in)
{
	struct peer_core *pc = in->pc;
	char why[448];

	if (in->stage == IN_HANDSHAKE) {
		int rv = tls_conn_handshake(in->tls);
		X509 *cert;

		if (rv == TLS_FAILED) {
			const char *alert = tls_conn_alert_sent(in->tls);

			if (tls_conn_alert_received(in->tls)) {
				in_refused_by_dialler(in);
				return;
			}
			snprintf(why, sizeof why, "TLS handshake: %s%s%s", tls_conn_error(in->tls),
				 alert ? "; alert sent: " : "", alert ? alert : "");
			peer_log_refusal(pc, in->from_text, why);
			peer_in_refuse(in);
			return;
		}
		if (rv == 1) {
			char err[160] = "it showed no certificate";

			/* peer_in_cert_check saw it in the handshake; checked again. */
			cert = tls_conn_peer_cert(in->tls);
			if (!cert || peer_tls_cert_node(cert, &in->cert_node, err, sizeof err) != 0) {
				snprintf(why, sizeof why, "TLS: %s", err);
				peer_log_refusal(pc, in->from_text, why);
				tls_conn_shutdown(in->tls);
				peer_in_refuse(in);
				return;
			}
			in->stage = IN_HELLO_LEN;
		}
	}
	while (in->stage != IN_HANDSHAKE) {
		ssize_t n;

		if (!peer_in_make_room(in))
			return;
		n = tls_conn_read(in->tls, in->buf + in->len, in->cap - in->len);
		if (n == TLS_WANT)
			break;
		if (n < 0) {
			if (n == TLS_FAILED)
				log_warn("peer connection from %s (node %" PRIu64 "): TLS: %s; closing",
					 in->from_text, in->from_node, tls_conn_error(in->tls));
			peer_in_close(in);
			return;
		}
		in->len += (size_t)n;
		if (!peer_in_consume(in))
			return;
	}
	in_tls_flush(in);
	peer_in_arm_recv(in);
}

/* TLS, inside the handshake: the dialler's certificate must name one node,
 * a peer of this one (a refusal is a bad_certificate alert to it). */
int peer_in_cert_check(void *arg, X509 *cert, char *why, size_t len)
{
	struct peer_in *in = arg;

	if (peer_tls_cert_node(cert, &in->cert_node, why, len) != 0)
		return -1;
	if (!peer_find(in->pc, in->cert_node)) {
		snprintf(why, len, "its certificate is for node %" PRIu64 ", not a peer of this "
			 "node", in->cert_node);
		return -1;
	}
	return 0;
}

/* -- after a reload of the peers' TLS context (SIGHUP) -- */

/*
 * The rule: a connection whose other side's certificate no longer
 * verifies against the reloaded CA file (a CA removed, a certificate
 * expired) is closed, with close_notify; one that still verifies lives on,
 * whatever certificate this node now shows (a renewal costs no
 * reconnection; the other side's own reload judges ours). Established
 * connections are checked at random moments within PEER_RELOAD_SPREAD_US,
 * so that their closures and reconnections are spread; one still in its
 * handshake is checked once it is done (outbound) or at its hello
 * (inbound).
 */

static void out_recheck_fired(struct timer *t, void *arg)
{
	struct peer *p = arg;

	if (p->state == OUT_UP && p->tls && !p->pc->stopping)
		out_recheck(p);
}

static void in_recheck_fired(struct timer *t, void *arg)
{
	struct peer_in *in = arg;

	if (!in->closing && !in->refusing && !in->pc->stopping)
		peer_in_recheck(in);
}

static uint64_t spread(struct peer_core *pc)
{
	return peer_rng(pc) % PEER_RELOAD_SPREAD_US;
}

/* An established inbound connection verified before a reload: checked at
 * a random moment within the spread (its hello timer is free by then). */
void peer_in_recheck_later(struct peer_in *in)
{
	struct peer_core *pc = in->pc;

	if (in->tls && in->stage == IN_FRAMES && !in->closing && !in->refusing &&
	    tls_conn_stale(in->tls, pc->net->cfg.tls))
		reactor_timer_arm(pc->r, &in->hello_timer, spread(pc), in_recheck_fired, in);
}

/*
 * The dialler's certificate verified again, against the current context at
 * the current time; `occasion` says why ("after the TLS reload"). False
 * when it fails: logged (at warn once per node per reload on this core, and
 * once per certificate for an expiry) and closed after a close_notify.
 */
static bool in_verify(struct peer_in *in, const char *occasion)
{
	struct peer_core *pc = in->pc;
	struct peer *p = peer_find(pc, in->cert_node);
	bool loud = false;
	char err[320];

	if (tls_conn_recheck(in->tls, pc->net->cfg.tls, err, sizeof err) == 0)
		return true;
	if (p && tls_conn_not_after(in->tls) <= (int64_t)time(NULL)) {
		loud = p->expiry_logged != tls_conn_not_after(in->tls);
		p->expiry_logged = tls_conn_not_after(in->tls);
	} else if (p) {
		unsigned generation = tls_server_generation(pc->net->cfg.tls);

		loud = p->cut_logged != generation;
		p->cut_logged = generation;
	}
	log_write(loud ? LOG_WARN : LOG_DEBUG, "peer connection from %s (node %" PRIu64 "): "
		  "closed %s: its certificate no longer verifies: %s", in->from_text,
		  in->cert_node, occasion, err);
	tls_conn_shutdown(in->tls);
	peer_in_refuse(in);
	return false;
}

bool peer_in_recheck(struct peer_in *in)
{
	return !in->tls || !tls_conn_stale(in->tls, in->pc->net->cfg.tls) ||
	       in_verify(in, "after the TLS reload");
}

/* From the send hook, once per reload: schedules the checks. */
void peer_tls_reloaded(struct peer_core *pc)
{
	struct peer_in *in;

	pc->tls_generation = tls_server_generation(pc->net->cfg.tls);
	if (pc->stopping)
		return;
	for (unsigned i = 0; i < pc->npeers; i++) {
		struct peer *p = &pc->peers[i];

		/* The timer of an UP connection is free (connect timeouts and
		 * backoffs are over). */
		if (p->state == OUT_UP && p->tls && tls_conn_stale(p->tls, pc->net->cfg.tls))
			reactor_timer_arm(pc->r, &p->timer, spread(pc), out_recheck_fired, p);
	}
	for (in = pc->inbound; in; in = in->next)
		peer_in_recheck_later(in);
}

/* -- certificates that expire while connected -- */

/*
 * TLS 1.3 has no renegotiation: a connection shows the certificate of its
 * handshake until it closes. Each core looks at its connections every
 * PEER_EXPIRY_SWEEP_US: one whose other side's chain has passed its
 * earliest notAfter (tls_conn_not_after, a field) is verified again and,
 * failing, closed like one cut by a reload ("closed at its certificate's
 * expiry: ... certificate has expired"). Its node redials and is let in
 * only with a certificate that verifies (renewed, and taken by its own
 * SIGHUP). A pass costs a comparison per connection; the verification
 * runs only for the expired ones, once (they close).
 */
static void expiry_sweep(struct timer *t, void *arg)
{
	struct peer_core *pc = arg;
	int64_t now = (int64_t)time(NULL);
	struct peer_in *in, *next;

	if (pc->stopping)
		return;
	for (unsigned i = 0; i < pc->npeers; i++) {
		struct peer *p = &pc->peers[i];

		if (p->state == OUT_UP && p->tls && tls_conn_not_after(p->tls) <= now)
			out_verify(p, "at its certificate's expiry");
	}
	for (in = pc->inbound; in; in = next) {
		next = in->next;
		/* One in its handshake is judged by it; one on its way to
		 * another core, by that core's sweep. */
		if (in->tls && in->stage != IN_HANDSHAKE && !in->closing && !in->refusing &&
		    !in->handoff_wait && tls_conn_not_after(in->tls) <= now)
			in_verify(in, "at its certificate's expiry");
	}
	reactor_timer_arm(pc->r, t, PEER_EXPIRY_SWEEP_US, expiry_sweep, pc);
}

void peer_expiry_start(struct peer_core *pc)
{
	if (pc->net->cfg.tls)
		reactor_timer_arm(pc->r, &pc->expiry_timer, PEER_EXPIRY_SWEEP_US, expiry_sweep,
				  pc);
}
