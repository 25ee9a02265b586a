/*
 * TLS on the peer transport's connections, both sides (cluster/peer_internal.h):
 * the outbound handshake, frames into OpenSSL and its ciphertext out by the
 * ring, the inbound handshake and decryption, and the refusal of a peer
 * with the alert that says why. The checks of a certificate's node id run
 * inside the handshake (tls_conn_set_check); cluster/peer_tls.c says what a
 * certificate must name.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/*
 * TLS: drives the handshake, sends what OpenSSL has for the server, keeps
 * a receive armed. On UP, peer_start_batch does the sending.
 */
void peer_out_tls_step(struct peer *p)
{
	struct peer_core *pc = p->pc;
	const uint8_t *data;
	size_t len;
	int rv;

	if (p->state == OUT_HANDSHAKE) {
		char err[160];

		rv = tls_conn_handshake(p->tls);
		if (rv == TLS_FAILED) {
			snprintf(p->why, sizeof p->why, "TLS handshake: %s", tls_conn_error(p->tls));
			peer_out_lost(p, -EPROTO);
			return;
		}
		if (rv == 1) {
			/* The chain was verified; is it the node we dialled? */
			if (peer_tls_check(p->tls, p->node->id, err, sizeof err) != 0) {
				snprintf(p->why, sizeof p->why, "refused: %s", err);
				peer_out_lost(p, -EPERM);
				return;
			}
			reactor_timer_cancel(pc->r, &p->timer);
			peer_out_up(p);
			return;
		}
		if (!p->sending && (len = tls_conn_send_data(p->tls, &data)) > 0) {
			struct io_uring_sqe *sqe = io_ring_get_sqe(&pc->r->io);

			io_uring_prep_send(sqe, p->fd, data, len, MSG_NOSIGNAL);
			peer_submit_op(p, sqe, &p->send_op);
			p->sending = true;
		}
		peer_arm_probe(p);
		return;
	}
	if (p->state == OUT_UP) {
		peer_start_batch(p);
		peer_arm_probe(p);
	}
}

/* TLS, inside the handshake: the server must be the node dialled (a
 * refusal is the reason in our log line; the alert OpenSSL makes for it is
 * not sent: peer_out_lost closes at once, so the server sees the
 * connection end -- not done yet, unlike the inbound side's in_refuse). */
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
	struct io_uring_sqe *sqe;
	const uint8_t *data;
	size_t len;

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
	len = tls_conn_send_data(p->tls, &data);
	if (len == 0)
		return;
	sqe = io_ring_get_sqe(&pc->r->io);
	io_uring_prep_send(sqe, p->fd, data, len, MSG_NOSIGNAL);
	peer_submit_op(p, sqe, &p->send_op);
	p->sending = true;
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
