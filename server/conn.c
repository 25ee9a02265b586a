/*
 * Native-protocol connections: receive, decode, answer, send. See
 * server/conn.h for buffering, back-pressure and lifetime rules.
 */
#include "server/conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/pool.h"
#include "proto/frame.h"
#include "ringkv.pb.h"
#include "server/audit.h"
#include "server/cluster_info.h"
#include "server/kv.h"
#include "server/node.h"
#include "server/redis.h"
#include "server/scan.h"
#include "io/tls.h"

#define CONN_RBUF_INITIAL (64u << 10)
#define CONN_OBUF_INITIAL (64u << 10)
/* Before authentication: room for one AUTH_PREAUTH_FRAME frame. */
#define CONN_RBUF_PREAUTH (AUTH_PREAUTH_FRAME + 64u)
/* Provided buffers of a core's multishot receives (conn.h): every
 * connection of the core shares them, each only until its completion is
 * copied out. RINGKV_RECV_BUFFERS=COUNT[:SIZE] overrides (0: plain
 * receives), for tests and measurements. */
#define CONN_RECV_BUFFERS 256u
#define CONN_RECV_BUFFER_SIZE (16u << 10)

static struct pool *core_pool(struct node_core *c)
{
	return &c->reactor->pool;
}

/* Connections of this core being told "max number of clients reached". */
static _Thread_local unsigned refusing;

static void arm_recv(struct conn *conn);
static bool paused(const struct conn *conn);
static void start_send(struct conn *conn);
static void try_release(struct conn *conn);
static void tls_input(struct conn *conn);
static void tls_send_more(struct conn *conn, bool encrypt);

bool conn_is_paused(const struct conn *conn)
{
	return paused(conn);
}

static size_t held_bytes(const struct conn *conn)
{
	return conn->answer_bytes + conn->olen + (conn->slen - conn->ssent);
}

static bool paused(const struct conn *conn)
{
	/* While a password is verified nothing more is read either: what
	 * the client sends meanwhile waits in the socket, not in rbuf. So
	 * it does while decoding is held behind earlier requests (the
	 * ordering rule) and more than CONN_OUTPUT_HIGH bytes wait undecoded:
	 * a client streaming requests without reading, behind a write that
	 * waits seconds for a leader, would grow rbuf at line rate. */
	return conn->inflight >= conn->core->node->cfg.max_inflight ||
	       held_bytes(conn) > CONN_OUTPUT_HIGH || conn->auth.job ||
	       (conn->held && conn->rlen - conn->roff > CONN_OUTPUT_HIGH);
}

bool conn_answer_room(const struct conn *conn, size_t need)
{
	return held_bytes(conn) + need <= CONN_REPLY_MAX;
}

static void mark_dirty(struct conn *conn)
{
	if (conn->in_dirty)
		return;
	conn->in_dirty = true;
	conn->next_dirty = conn->core->dirty;
	conn->core->dirty = conn;
}

/* Replaces *buf with a pool block of at least `need` bytes, keeping `keep`. */
/* Marks the connection dropped; the caller releases it (try_release). */
static void conn_fail(struct conn *conn)
{
	conn->closing = true;
	conn->dead = true;
	conn->olen = 0;
	if (!conn->fd_closed)
		shutdown(conn->fd, SHUT_RDWR);
}

/* Drops the connection at once: the peer is gone or misbehaved beyond repair. */
static void conn_kill(struct conn *conn)
{
	conn_fail(conn);
	try_release(conn);
}

void conn_drop(struct conn *conn)
{
	conn_kill(conn);
}

void conn_reply(struct conn *conn, uint64_t id, int status,
		const void *value, size_t value_len, const char *error)
{
	conn_reply_hint(conn, id, status, value, value_len, error, 0);
}

void conn_reply_hint(struct conn *conn, uint64_t id, int status, const void *value,
		     size_t value_len, const char *error, uint64_t leader_hint)
{
	struct frame_response resp = {
		.id = id,
		.status = status,
		.value = { .data = value, .len = (uint32_t)value_len },
		.error = error,
		.leader_hint = leader_hint,
		/* A client with an older map refetches it (membership changed). */
		.map_epoch = status == ringkv_Status_NOT_LEADER ? cluster_info_epoch(conn->core) : 0,
	};

	conn_reply_response(conn, &resp);
}

void conn_reply_response(struct conn *conn, const struct frame_response *resp)
{
	size_t need;
	uint8_t *out;
	int n;

	if (conn->dead || conn->fd_closed)
		return;
	if ((unsigned)resp->status < NODE_METRICS_STATUSES)
		conn->core->stats.replies[resp->status]++;
	need = frame_response_max_size(resp);
	out = conn_out_reserve(conn, need);
	if (!out)
		return;
	n = frame_encode_response(resp, out, need);
	if (n < 0)
		panic("frame_encode_response overflowed its own bound");
	conn_out_commit(conn, (size_t)n);
}

uint8_t *conn_out_reserve(struct conn *conn, size_t need)
{
	if (conn->dead || conn->fd_closed)
		return NULL;
	if (buf_grow(core_pool(conn->core), &conn->obuf, &conn->ocap, conn->olen,
		 conn->olen + need) != 0) {
		log_warn("connection %llu: no memory for a %zu-byte answer; closing",
			 (unsigned long long)conn->serial, need);
		conn_kill(conn);
		return NULL;
	}
	return conn->obuf + conn->olen;
}

void conn_out_commit(struct conn *conn, size_t written)
{
	conn->olen += written;
	mark_dirty(conn);
}

void conn_close_after_reply(struct conn *conn)
{
	conn->closing = true;
	conn->draining = true;
	mark_dirty(conn);
}

static void reply_error(struct conn *conn, uint64_t id, int status, const char *text)
{
	conn->core->stats.bad_frames++;
	conn_reply(conn, id, status, NULL, 0, text);
}

/* A native Auth was decided (server/auth.h). */
static void native_auth_done(void *owner, void *arg, bool ok)
{
	struct conn *conn = owner;
	uint64_t id = (uint64_t)(uintptr_t)arg;

	if (ok)
		conn_reply(conn, id, ringkv_Status_OK, NULL, 0, NULL);
	else
		conn_reply(conn, id, ringkv_Status_UNAUTHENTICATED, NULL, 0,
			   "invalid username-password pair");
	conn_request_done(conn);
}

/* Whether an op needs the admin role (the audit log records each). */
static bool native_admin_op(enum frame_op op)
{
	return op == FRAME_OP_BACKUP || op == FRAME_OP_SHARD_MOVE;
}

/*
 * Whether an admin request is audited: a move, a leadership transfer or a
 * backup's start, not the status polls and file reads that follow them (a
 * backup reads its files a MiB a request).
 */
static bool native_audited(const struct frame_request *req)
{
	return (req->op == FRAME_OP_SHARD_MOVE && !req->move.status_only) ||
	       (req->op == FRAME_OP_BACKUP && req->backup.op == ringkv_BackupOp_BACKUP_BEGIN);
}

static const char *const native_op_names[] = {
	[FRAME_OP_GET] = "get", [FRAME_OP_PUT] = "put", [FRAME_OP_DELETE] = "delete",
	[FRAME_OP_SCAN] = "scan", [FRAME_OP_CLUSTER_MAP] = "cluster_map",
	[FRAME_OP_CLUSTER_STATUS] = "cluster_status", [FRAME_OP_BACKUP] = "backup",
	[FRAME_OP_SHARD_MOVE] = "shard_move", [FRAME_OP_AUTH] = "auth",
};

/* Byte strings in key order: <0, 0, >0. */
static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c ? c : (alen > blen) - (alen < blen);
}

/*
 * What `user` may not do of `req`: NULL when allowed (a SCAN is cut to the
 * user's prefix), else the reason for PERMISSION_DENIED.
 */
static const char *native_denied(const struct users_entry *user, struct frame_request *req)
{
	enum users_role need = native_admin_op(req->op) ? USERS_ROLE_ADMIN :
			       req->op == FRAME_OP_PUT || req->op == FRAME_OP_DELETE ? USERS_ROLE_WRITE :
			       USERS_ROLE_READ;

	if (user->role < need)
		return need == USERS_ROLE_ADMIN ? "this user's role is not admin"
						: "this user's role is read: no writes";
	if (!user->has_prefix)
		return NULL;
	switch (req->op) {
	case FRAME_OP_GET:
	case FRAME_OP_PUT:
	case FRAME_OP_DELETE:
		if (!auth_key_ok(user, req->key.data, req->key.len))
			return "this user has no permissions to access the key";
		return NULL;
	case FRAME_OP_SCAN:
		/* The range is cut to [prefix, the prefix's end): the users
		 * file's load refuses a prefix longer than --max-key, and
		 * scan_submit answers an error for a bound it cannot take. */
		if (key_cmp(req->key.data, req->key.len, user->prefix, user->prefix_len) < 0) {
			req->key.data = user->prefix;
			req->key.len = user->prefix_len;
		}
		if (user->prefix_end_len &&
		    (req->end.len == 0 || key_cmp(req->end.data, req->end.len, user->prefix_end,
						  user->prefix_end_len) > 0)) {
			req->end.data = user->prefix_end;
			req->end.len = user->prefix_end_len;
		}
		return NULL;
	default:
		return NULL;
	}
}

/*
 * Authentication's part of a decoded request (--users): starts an Auth,
 * refuses what the connection's user may not do, audits admin requests.
 * True when the request was dealt with here (answered or started).
 */
static bool native_auth_filter(struct conn *conn, struct frame_request *req)
{
	struct node_core *c = conn->core;
	const struct users_entry *user;
	const char *why;
	char what[128];

	if (!c->node->users) {
		if (req->op == FRAME_OP_AUTH) {
			reply_error(conn, req->id, ringkv_Status_INVALID_ARGUMENT,
				    "authentication is not enabled on this node (ringkvd has no --users)");
			return true;
		}
		if (native_audited(req) && c->node->audit_fd >= 0)
			audit_line(conn, "native", NULL, native_op_names[req->op], "allowed");
		return false;
	}
	user = auth_user(conn);
	if (!user && !auth_preauth_request(conn)) {
		reply_error(conn, req->id, ringkv_Status_UNAUTHENTICATED,
			    "too many requests before authentication; closing");
		conn_close_after_reply(conn);
		return true;
	}
	if (req->op == FRAME_OP_AUTH) {
		conn->inflight++;
		if (!auth_start(conn, req->key.data, req->key.len, req->value.data, req->value.len,
				"native", native_auth_done, (void *)(uintptr_t)req->id)) {
			conn->inflight--;
			reply_error(conn, req->id, ringkv_Status_INTERNAL, "out of memory");
		}
		return true;
	}
	if (req->op == FRAME_OP_SHARD_MOVE)
		snprintf(what, sizeof what, "shard_move shard=%u from=%llu to=%llu%s%s",
			 req->move.shard, (unsigned long long)req->move.from_node,
			 (unsigned long long)req->move.to_node,
			 req->move.transfer_leader ? " transfer_leader" : "",
			 req->move.cancel ? " cancel" : "");
	else if (req->op == FRAME_OP_BACKUP)
		snprintf(what, sizeof what, "backup op=%d shard=%u", req->backup.op,
			 req->backup.shard);
	else
		snprintf(what, sizeof what, "%s", native_op_names[req->op] ? native_op_names[req->op]
									: "?");
	if (!user) {
		/* An admin request before authentication is audited too: who
		 * probes for them is worth knowing. */
		if (native_admin_op(req->op))
			audit_line(conn, "native", NULL, what, "denied: not authenticated");
		reply_error(conn, req->id, ringkv_Status_UNAUTHENTICATED,
			    "authentication required: send an Auth request first");
		return true;
	}
	why = native_denied(user, req);
	if (native_audited(req) || (why && native_admin_op(req->op)))
		audit_line(conn, "native", user->name, what, why ? "denied" : "allowed");
	if (why) {
		reply_error(conn, req->id, ringkv_Status_PERMISSION_DENIED, why);
		return true;
	}
	return false;
}

/* Decodes and handles every complete frame in the receive buffer. */
static void native_process(struct conn *conn)
{
	struct node_core *c = conn->core;
	const struct frame_limits *limits = &c->node->limits;
	struct frame_limits preauth;
	size_t off = conn->roff;

	while (!conn->closing) {
		struct frame_request req;
		uint32_t payload_len = 0;
		char err[128];
		int rv;

		if (paused(conn)) {
			conn->held = true;
			break;
		}
		limits = &c->node->limits;
		if (c->node->users && auth_needed(conn)) {
			/* Before authentication: a few KiB a frame. */
			preauth = *limits;
			preauth.max_frame = AUTH_PREAUTH_FRAME;
			limits = &preauth;
		}
		rv = frame_peek(conn->rbuf + off, conn->rlen - off, limits, &payload_len);
		if (rv == RKV_EAGAIN) {
			/* A whole frame must fit the buffer: arm_recv grows it to
			 * the announced size (checked against max_frame). */
			if (payload_len)
				conn->rwant = FRAME_HEADER_SIZE + (size_t)payload_len;
			break;
		}
		if (rv == RKV_ETOOLARGE) {
			snprintf(err, sizeof err, "frame of %u bytes exceeds the %u-byte limit",
				 payload_len, limits->max_frame);
			reply_error(conn, 0, ringkv_Status_TOO_LARGE, err);
			/* The stream cannot be resynchronised: answer, then close. */
			conn_close_after_reply(conn);
			break;
		}
		rv = frame_decode_request(conn->rbuf + off + FRAME_HEADER_SIZE, payload_len,
					  limits, &req, err, sizeof err);
		/* Requests of a connection take effect in order: a read waits
		 * for the connection's earlier writes, a write for its earlier
		 * reads (a read forwarded to a leader may wait for its read
		 * index while a later write of the pipeline commits). */
		if (rv == 0 && (((req.op == FRAME_OP_GET || req.op == FRAME_OP_SCAN) &&
				 conn->writes_inflight) ||
				((req.op == FRAME_OP_PUT || req.op == FRAME_OP_DELETE) &&
				 conn->reads_inflight))) {
			conn->held = true;
			break;
		}
		c->stats.requests++;
		c->stats.native_ops[rv == 0 && req.op < NODE_METRICS_OPS ? req.op : 0]++;
		off += FRAME_HEADER_SIZE + payload_len;
		switch (rv) {
		case 0:
			if (native_auth_filter(conn, &req))
				break;
			if (req.op == FRAME_OP_SCAN)
				scan_submit(c, conn, &req);
			else
				kv_submit_native(c, conn, &req);
			break;
		case RKV_ETOOLARGE:
			reply_error(conn, req.id, ringkv_Status_TOO_LARGE, err);
			break;
		default:
			reply_error(conn, req.id, ringkv_Status_INVALID_ARGUMENT, err);
			break;
		}
	}
	conn->roff = off;
	if (conn->closing)
		mark_dirty(conn);
}

/* Completions that run while a buffer is being decoded (a request executed
 * in place) may unpause the connection; the decoding loop then simply goes
 * on, so decoding is never re-entered. */
static void process(struct conn *conn)
{
	if (conn->in_process)
		return;
	conn->in_process = true;
	conn->rwant = 0;
	conn->held = false;
	if (conn->resp)
		redis_process(conn);
	else
		native_process(conn);
	conn->in_process = false;
	if (conn->eof && !conn->held && !conn->closing) {
		/* Every request the peer sent before its FIN is decoded (a
		 * partial one at the end can never complete): close once
		 * they are answered. */
		conn->closing = true;
		mark_dirty(conn);
	}
}

/*
 * Appends `n` received bytes to the receive buffer, compacting and growing
 * it as needed (no receive is ever in flight into it while multishot
 * receives are used, and decoding is not running: completions are never
 * dispatched from inside it). 0 or -ENOMEM.
 */
static int rbuf_append(struct conn *conn, const uint8_t *data, size_t n)
{
	if (conn->roff == conn->rlen) {
		conn->roff = conn->rlen = 0;
	} else if (conn->rcap - conn->rlen < n && conn->roff) {
		memmove(conn->rbuf, conn->rbuf + conn->roff, conn->rlen - conn->roff);
		conn->rlen -= conn->roff;
		conn->roff = 0;
	}
	if (conn->rcap - conn->rlen < n &&
	    buf_grow(core_pool(conn->core), &conn->rbuf, &conn->rcap, conn->rlen, conn->rlen + n) != 0)
		return -ENOMEM;
	memcpy(conn->rbuf + conn->rlen, data, n);
	conn->rlen += n;
	return 0;
}

/* Stops a paused connection's multishot receive: what the client sends
 * meanwhile waits in the socket. Its completion (-ECANCELED, or whatever
 * ended it first) clears recv_armed. */
static void cancel_multishot(struct conn *conn)
{
	struct io_uring_sqe *sqe;

	if (!conn->recv_armed || !conn->recv_multi || conn->recv_cancel)
		return;
	sqe = io_ring_get_sqe(&conn->core->reactor->io);
	io_uring_prep_cancel(sqe, &conn->recv_op, 0);
	conn->recv_cancel = true;
}

static void recv_done(struct io_op *op, int res, unsigned flags)
{
	struct conn *conn = op->data;
	struct io_ring *io = &conn->core->reactor->io;
	const uint8_t *pbuf = NULL;

	if (flags & IORING_CQE_F_BUFFER)
		pbuf = io_ring_buf(io, flags);
	if (!(flags & IORING_CQE_F_MORE)) {
		conn->recv_armed = false;
		conn->recv_multi = false;
		conn->recv_cancel = false;
	}
	if (!pbuf)
		conn->sock_nonempty = (flags & IORING_CQE_F_SOCK_NONEMPTY) != 0;
	if (res > 0 && pbuf && !conn->closing) {
		/* Copied out, the provided buffer goes straight back. */
		int rv = rbuf_append(conn, pbuf, (size_t)res);

		io_ring_buf_recycle(io, flags);
		if (rv != 0) {
			conn_kill(conn);
			return;
		}
		pbuf = NULL;
	} else if (pbuf) {
		io_ring_buf_recycle(io, flags);
		pbuf = NULL;
	}
	if (res == -ENOBUFS || (res == -ECANCELED && !reactor_stopping(conn->core->reactor))) {
		/* Out of provided buffers (they come back as this pass's
		 * completions are handled), or cancelled because paused:
		 * nothing was lost, the data waits in the socket. */
		if (res == -ENOBUFS)
			io->buf_enobufs++;
		if (conn->draining && conn->shut_wr) {
			try_release(conn); /* discards with a plain recv */
			return;
		}
		arm_recv(conn);
		try_release(conn);
		return;
	}
	if (conn->draining && conn->shut_wr) {
		/* Discarding what the peer still sends until it closes. */
		if (res <= 0) {
			conn_kill(conn);
			return;
		}
		try_release(conn);
		return;
	}
	if (conn->closing) {
		try_release(conn);
		return;
	}
	if (res == 0) {
		/* The peer shut its write side: answer every request it sent,
		 * including those still held behind its writes, then close. */
		conn->eof = true;
		if (conn->tls)
			tls_input(conn); /* what OpenSSL still holds */
		process(conn);
		try_release(conn);
		return;
	}
	if (res < 0) {
		if (res != -ECONNRESET && res != -EPIPE)
			log_debug("connection %llu: recv: %s",
				  (unsigned long long)conn->serial, strerror(-res));
		conn_kill(conn);
		return;
	}
	conn->core->stats.bytes_in += (size_t)res;
	if (conn->tls) {
		tls_conn_received(conn->tls, (size_t)res);
		tls_input(conn);
		try_release(conn);
		return;
	}
	if (!(flags & IORING_CQE_F_BUFFER))
		conn->rlen += (size_t)res;
	process(conn);
	if (conn->recv_multi && paused(conn))
		cancel_multishot(conn);
	arm_recv(conn);
	/* Decoding may have closed it (protocol error, out of memory). */
	try_release(conn);
}

/*
 * Compacts the receive buffer and grows it for the next frame. Only while no
 * recv is in flight into it and nothing is being decoded (decoding only
 * advances roff). 0 or -ENOMEM.
 */
static int rbuf_room(struct conn *conn)
{
	if (conn->roff) {
		memmove(conn->rbuf, conn->rbuf + conn->roff, conn->rlen - conn->roff);
		conn->rlen -= conn->roff;
		conn->roff = 0;
	}
	if (conn->rwant > conn->rcap || conn->rlen == conn->rcap) {
		size_t need = conn->rwant > conn->rcap ? conn->rwant : conn->rcap * 2;

		return buf_grow(core_pool(conn->core), &conn->rbuf, &conn->rcap, conn->rlen, need);
	}
	return 0;
}

/* Whether this core's plaintext connections receive with multishot
 * receives into provided buffers; sets the buffers up on first use. */
static bool multishot_ready(struct node_core *c)
{
	struct io_ring *io = &c->reactor->io;
	unsigned long count = CONN_RECV_BUFFERS, size = CONN_RECV_BUFFER_SIZE;
	const char *env;
	int rv;

	if (io->buf_count)
		return true;
	if (io->buf_tried)
		return false;
	io->buf_tried = true;
	env = getenv("RINGKV_RECV_BUFFERS");
	if (env && *env) {
		char *end;

		count = strtoul(env, &end, 10);
		if (*end == ':')
			size = strtoul(end + 1, &end, 10);
		if (*end || count > 32768 || (count & (count - 1)) || size < 64 || size > (1u << 20)) {
			log_warn("RINGKV_RECV_BUFFERS=%s is not COUNT[:SIZE] (a power of two up "
				 "to 32768, 64 B to 1 MiB); using %u:%u", env, CONN_RECV_BUFFERS,
				 CONN_RECV_BUFFER_SIZE);
			count = CONN_RECV_BUFFERS;
			size = CONN_RECV_BUFFER_SIZE;
		}
	}
	if (count == 0 || !io->has_recv_multishot)
		return false;
	rv = io_ring_bufs_init(io, (unsigned)count, (unsigned)size);
	if (rv != 0) {
		log_warn("provided buffers unavailable (%s): plain receives", strerror(-rv));
		return false;
	}
	log_info("client connections: multishot receives, %lu provided buffers of %lu bytes",
		 count, size);
	return true;
}

static void arm_recv(struct conn *conn)
{
	struct io_uring_sqe *sqe;

	if (conn->tls) {
		/* Decrypts what OpenSSL holds, then receives more. */
		tls_input(conn);
		return;
	}
	if (conn->recv_armed || conn->closing || conn->eof || conn->fd_closed || paused(conn))
		return;
	/* Before authentication the receive buffer stays small (conn.h):
	 * plain receives, which never fill it past its size. */
	if (multishot_ready(conn->core) && !(conn->core->node->users && auth_needed(conn))) {
		/* Stays armed across requests; completions carry provided
		 * buffers, copied to rbuf by recv_done. */
		sqe = io_ring_get_sqe(&conn->core->reactor->io);
		io_uring_prep_recv_multishot(sqe, conn->fd, NULL, 0, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = IO_RING_BGID;
		io_op_attach(sqe, &conn->recv_op);
		conn->recv_armed = true;
		conn->recv_multi = true;
		return;
	}
	/* The only place a plaintext receive buffer moves or grows with
	 * plain receives: no recv is in flight into it now. */
	if (rbuf_room(conn) != 0) {
		conn_kill(conn);
		return;
	}
	sqe = io_ring_get_sqe(&conn->core->reactor->io);
	io_uring_prep_recv(sqe, conn->fd, conn->rbuf + conn->rlen,
			   conn->rcap - conn->rlen, 0);
	/* The socket was drained (a client that waits for its answer before
	 * sending more): wait for data first instead of a receive that is
	 * bound to find none and then waits anyway. */
	if (!conn->sock_nonempty)
		sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
	io_op_attach(sqe, &conn->recv_op);
	conn->recv_armed = true;
}

static void send_done(struct io_op *op, int res, unsigned flags)
{
	struct conn *conn = op->data;

	conn->send_armed = false;
	if (res < 0) {
		conn_kill(conn);
		return;
	}
	conn->core->stats.bytes_out += (size_t)res;
	if (conn->tls) {
		tls_conn_sent(conn->tls, (size_t)res);
		tls_send_more(conn, true);
		if (!paused(conn) && !conn->closing) {
			process(conn);
			arm_recv(conn);
		}
		try_release(conn);
		return;
	}
	conn->ssent += (size_t)res;
	if (conn->ssent < conn->slen) {
		struct io_uring_sqe *sqe = io_ring_get_sqe(&conn->core->reactor->io);

		io_uring_prep_send(sqe, conn->fd, conn->sbuf + conn->ssent,
				   conn->slen - conn->ssent, MSG_NOSIGNAL);
		io_op_attach(sqe, &conn->send_op);
		conn->send_armed = true;
		return;
	}
	conn->slen = conn->ssent = 0;
	if (conn->olen)
		mark_dirty(conn);
	/* Whether the connection was paused is not known here (a partial
	 * send took the early return above): decode whatever waits and read
	 * again whenever it is not paused now. Both are no-ops otherwise. */
	if (!paused(conn) && !conn->closing) {
		process(conn);
		arm_recv(conn);
	}
	try_release(conn);
}

static void start_send(struct conn *conn)
{
	struct io_uring_sqe *sqe;
	uint8_t *tmp;
	size_t tcap;

	if (conn->tls) {
		tls_send_more(conn, true);
		return;
	}
	if (conn->send_armed || conn->fd_closed || conn->olen == 0)
		return;
	tmp = conn->sbuf;
	tcap = conn->scap;
	conn->sbuf = conn->obuf;
	conn->scap = conn->ocap;
	conn->slen = conn->olen;
	conn->ssent = 0;
	conn->obuf = tmp;
	conn->ocap = tcap;
	conn->olen = 0;
	sqe = io_ring_get_sqe(&conn->core->reactor->io);
	io_uring_prep_send(sqe, conn->fd, conn->sbuf, conn->slen, MSG_NOSIGNAL);
	io_op_attach(sqe, &conn->send_op);
	conn->send_armed = true;
}

/* ---- TLS: OpenSSL between the ring and the buffers (io/tls.h) ---- */

/*
 * With `encrypt`, encrypts the answers gathered (sbuf, then obuf swapped
 * in) as far as the pair takes them; then sends the ciphertext the pair
 * holds (one send at a time). With `encrypt`, afterwards either a send is
 * armed or everything is encrypted and sent. Answers are encrypted only
 * from the per-iteration flush (and the sends it starts), so that all the
 * answers an iteration produced for a connection make one record, not one
 * each. A failure only marks the connection: the caller releases it.
 */
static void tls_send_more(struct conn *conn, bool encrypt)
{
	const uint8_t *data;
	size_t len;

	if (conn->send_armed || conn->fd_closed || conn->dead)
		return;
	while (encrypt && tls_conn_established(conn->tls)) {
		ssize_t n;

		if (conn->ssent == conn->slen) {
			uint8_t *tmp = conn->sbuf;
			size_t tcap = conn->scap;

			conn->slen = conn->ssent = 0;
			if (conn->olen == 0)
				break;
			conn->sbuf = conn->obuf;
			conn->scap = conn->ocap;
			conn->slen = conn->olen;
			conn->obuf = tmp;
			conn->ocap = tcap;
			conn->olen = 0;
		}
		n = tls_conn_write(conn->tls, conn->sbuf + conn->ssent, conn->slen - conn->ssent);
		if (n == TLS_WANT)
			break; /* the pair is full: send first */
		if (n < 0) {
			log_debug("connection %llu: TLS write: %s",
				  (unsigned long long)conn->serial, tls_conn_error(conn->tls));
			conn_fail(conn);
			return;
		}
		conn->ssent += (size_t)n;
	}
	len = tls_conn_send_data(conn->tls, &data);
	if (len) {
		struct io_uring_sqe *sqe = io_ring_get_sqe(&conn->core->reactor->io);

		io_uring_prep_send(sqe, conn->fd, data, len, MSG_NOSIGNAL);
		io_op_attach(sqe, &conn->send_op);
		conn->send_armed = true;
	}
}

/* A client still handshaking when --tls-handshake-timeout runs out. */
static void tls_timeout(struct timer *t, void *arg)
{
	struct conn *conn = arg;

	(void)t;
	log_every(LOG_INFO, 10000, "connection %llu: no TLS handshake within %u ms; closing",
		  (unsigned long long)conn->serial, conn->core->node->cfg.tls_handshake_timeout_ms);
	conn->core->stats.bad_frames++;
	conn_kill(conn);
}

/*
 * Runs the handshake, then decrypts into rbuf and decodes until OpenSSL
 * needs more ciphertext (or the connection pauses), sends what OpenSSL
 * wrote (handshake messages, alerts), and receives more. Never frees the
 * connection: callers release it (try_release).
 */
static void tls_input(struct conn *conn)
{
	struct io_uring_sqe *sqe;
	uint8_t *room;
	size_t len;

	if (conn->tls_busy || conn->fd_closed || conn->dead)
		return;
	conn->tls_busy = true;
	if (!tls_conn_established(conn->tls) && !conn->closing) {
		int rv = tls_conn_handshake(conn->tls);

		if (rv == 1) {
			reactor_timer_cancel(conn->core->reactor, &conn->tls_timer);
		} else if (rv == TLS_FAILED) {
			/* Plaintext, garbage or a bad hello: the alert OpenSSL
			 * wrote goes out, then the connection closes. */
			log_every(LOG_INFO, 10000, "connection %llu: TLS handshake refused: %s",
				  (unsigned long long)conn->serial, tls_conn_error(conn->tls));
			conn->core->stats.bad_frames++;
			conn_close_after_reply(conn);
		}
	}
	while (tls_conn_established(conn->tls) && !conn->closing && !paused(conn) &&
	       !conn->in_process) {
		ssize_t n;

		if (rbuf_room(conn) != 0) {
			conn_fail(conn);
			break;
		}
		n = tls_conn_read(conn->tls, conn->rbuf + conn->rlen, conn->rcap - conn->rlen);
		if (n > 0) {
			conn->rlen += (size_t)n;
			/* Without --users, a request is what earns full-size
			 * TLS buffers: an idle or handshaking client keeps the
			 * small ones (io/tls.h). */
			if (!conn->core->node->users)
				tls_conn_grow(conn->tls);
			process(conn);
			continue;
		}
		if (n == TLS_CLOSED) {
			/* close_notify: as a FIN, answer what was sent, then close. */
			conn->eof = true;
			process(conn);
		} else if (n == TLS_FAILED) {
			log_every(LOG_INFO, 10000, "connection %llu: TLS: %s; closing",
				  (unsigned long long)conn->serial, tls_conn_error(conn->tls));
			conn->core->stats.bad_frames++;
			conn_fail(conn);
		}
		break;
	}
	/* With --users, authenticating earns them (AUTH may have completed
	 * above, or while its password was verified). */
	if (conn->core->node->users && tls_conn_established(conn->tls) && !auth_needed(conn))
		tls_conn_grow(conn->tls);
	/* Handshake messages and alerts; answers wait for the flush. */
	tls_send_more(conn, false);
	if (!conn->recv_armed && !conn->closing && !conn->eof && !conn->fd_closed &&
	    !paused(conn) && (len = tls_conn_recv_room(conn->tls, &room)) > 0) {
		sqe = io_ring_get_sqe(&conn->core->reactor->io);
		io_uring_prep_recv(sqe, conn->fd, room, len, 0);
		if (!conn->sock_nonempty)
			sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
		io_op_attach(sqe, &conn->recv_op);
		conn->recv_armed = true;
	}
	conn->tls_busy = false;
}

static void conn_free(struct conn *conn)
{
	struct node_core *c = conn->core;
	struct pool *p = core_pool(c);

	if (conn->refused)
		refusing--;
	if (conn->prev)
		conn->prev->next = conn->next;
	else
		c->conns = conn->next;
	if (conn->next)
		conn->next->prev = conn->prev;
	c->conn_count--;
	if (conn->redis)
		redis_conn_free(conn);
	reactor_timer_cancel(c->reactor, &conn->tls_timer);
	reactor_timer_cancel(c->reactor, &conn->auth.timer);
	auth_conn_close(conn);
	tls_conn_free(conn->tls);
	pool_free(p, conn->rbuf);
	pool_free(p, conn->obuf);
	pool_free(p, conn->sbuf);
	pool_free(p, conn);
}

/*
 * Closes the socket once no operation uses it and nothing is left to send,
 * and frees the connection once no request of it is in flight.
 */
static void try_release(struct conn *conn)
{
	if (!conn->closing || conn->in_dirty || conn->in_process || conn->tls_busy)
		return;
	if (!conn->fd_closed) {
		if (conn->olen && !conn->send_armed) {
			mark_dirty(conn);
			return;
		}
		/* Draining waits for the peer to close; not during shutdown. */
		if (conn->draining && !conn->dead && !reactor_stopping(conn->core->reactor)) {
			if (conn->send_armed || conn->olen || conn->inflight)
				return;
			if (conn->tls && !conn->shut_wr) {
				/* close_notify first: the peer then knows the
				 * answers it got are all there is. */
				tls_conn_shutdown(conn->tls);
				tls_send_more(conn, true);
				if (conn->dead) {
					try_release(conn);
					return;
				}
				if (conn->send_armed)
					return;
			}
			if (!conn->shut_wr) {
				shutdown(conn->fd, SHUT_WR);
				conn->shut_wr = true;
			}
			if (!conn->recv_armed) {
				struct io_uring_sqe *sqe =
					io_ring_get_sqe(&conn->core->reactor->io);

				conn->rlen = conn->roff = 0;
				io_uring_prep_recv(sqe, conn->fd, conn->rbuf, conn->rcap, 0);
				io_op_attach(sqe, &conn->recv_op);
				conn->recv_armed = true;
			}
			return;
		}
		if (conn->recv_armed) {
			/* Wake the pending recv; its completion comes back here.
			 * A multishot one is cancelled too: after SHUT_RD alone a
			 * client that keeps sending keeps it completing. */
			shutdown(conn->fd, SHUT_RD);
			cancel_multishot(conn);
			return;
		}
		if (conn->send_armed || conn->olen || (conn->inflight && !conn->dead))
			return;
		close(conn->fd);
		conn->fd_closed = true;
	}
	if (conn->inflight == 0 && !conn->recv_armed && !conn->send_armed)
		conn_free(conn);
}

void conn_poke(struct conn *conn)
{
	if (conn->in_process)
		return;
	if (!paused(conn) && !conn->closing) {
		process(conn);
		arm_recv(conn);
	}
	try_release(conn);
}

void conn_request_done(struct conn *conn)
{
	conn->inflight--;
	conn_poke(conn);
}

void conn_flush_all(struct node_core *c)
{
	while (c->dirty) {
		struct conn *conn = c->dirty;

		c->dirty = conn->next_dirty;
		conn->in_dirty = false;
		start_send(conn);
		try_release(conn);
	}
}

void conn_accept(struct node_core *c, int fd, bool resp)
{
	struct pool *p = core_pool(c);
	struct conn *conn;
	int one = 1;

	uint32_t limit = redis_conn_limit(c); /* --max-connections, CONFIG SET maxclients */
	bool refuse = c->conn_count >= limit;

	if (refuse) {
		log_every(LOG_WARN, 10000, "connection limit (%u per core) reached; refusing clients",
			  limit);
		if (refusing >= CONN_REFUSING_MAX) {
			/* A flood: no room even to say why. */
			c->stats.refused++;
			close(fd);
			return;
		}
	}
	conn = pool_alloc(p, sizeof *conn);
	if (!conn) {
		close(fd);
		return;
	}
	memset(conn, 0, sizeof *conn);
	conn->core = c;
	conn->fd = fd;
	if (c->node->users && !refuse && !auth_conn_open(conn)) {
		/* A source with too many unauthenticated connections here. */
		char from[64];

		auth_conn_from(conn, from, sizeof from);
		log_every(LOG_WARN, 10000, "%s has %u unauthenticated connections on this core; "
			  "closing new ones", from, AUTH_PREAUTH_PER_SOURCE);
		c->stats.refused++;
		pool_free(p, conn);
		close(fd);
		return;
	}
	conn->rbuf = c->node->users ? pool_alloc_large(p, CONN_RBUF_PREAUTH)
				    : pool_alloc(p, CONN_RBUF_INITIAL);
	if (!conn->rbuf) {
		auth_conn_close(conn);
		pool_free(p, conn);
		close(fd);
		return;
	}
	conn->rcap = pool_block_size(conn->rbuf);
	if (c->node->tls) {
		/* No way to tell a TLS client why it is refused before its
		 * handshake: over the limit, it is closed at once. */
		conn->tls = refuse ? NULL : tls_conn_new(c->node->tls);
		if (!conn->tls) {
			if (refuse)
				c->stats.refused++;
			auth_conn_close(conn);
			pool_free(p, conn->rbuf);
			pool_free(p, conn);
			close(fd);
			return;
		}
	}
	conn->serial = ++c->stats.connections;
	conn->resp = resp;
	if (resp && redis_conn_init(conn) != 0) {
		auth_conn_close(conn);
		tls_conn_free(conn->tls);
		pool_free(p, conn->rbuf);
		pool_free(p, conn);
		close(fd);
		return;
	}
	conn->recv_op.done = recv_done;
	conn->recv_op.data = conn;
	conn->send_op.done = send_done;
	conn->send_op.data = conn;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	conn->next = c->conns;
	if (c->conns)
		c->conns->prev = conn;
	c->conns = conn;
	c->conn_count++;
	if (refuse) {
		/* Say why before closing, through the usual answer-then-drain
		 * path, so the reason is not lost to a reset. */
		static const char resp_err[] = "-ERR max number of clients reached\r\n";

		conn->refused = true;
		refusing++;
		c->stats.refused++;
		if (resp) {
			uint8_t *out = conn_out_reserve(conn, sizeof resp_err - 1);

			if (out) {
				memcpy(out, resp_err, sizeof resp_err - 1);
				conn_out_commit(conn, sizeof resp_err - 1);
			}
		} else {
			conn_reply(conn, 0, ringkv_Status_RESOURCE_EXHAUSTED, NULL, 0,
				   "max number of clients reached");
		}
		conn_close_after_reply(conn);
		return;
	}
	if (conn->tls)
		reactor_timer_arm(c->reactor, &conn->tls_timer,
				  (uint64_t)c->node->cfg.tls_handshake_timeout_ms * 1000, tls_timeout,
				  conn);
	if (c->node->users)
		auth_conn_arm_timeout(conn);
	arm_recv(conn);
	try_release(conn);
}

void conn_stop_reading_all(struct node_core *c)
{
	struct conn *conn, *next;

	for (conn = c->conns; conn; conn = next) {
		next = conn->next;
		if (conn->draining && conn->shut_wr) {
			conn_kill(conn);
			continue;
		}
		conn->closing = true;
		try_release(conn);
	}
}

bool conn_all_flushed(const struct node_core *c)
{
	const struct conn *conn;

	if (c->dirty)
		return false;
	for (conn = c->conns; conn; conn = conn->next)
		if (conn->send_armed || conn->olen || conn->recv_armed)
			return false;
	return true;
}

void conn_close_all(struct node_core *c)
{
	struct pool *p = core_pool(c);

	while (c->conns) {
		struct conn *conn = c->conns;

		c->conns = conn->next;
		if (!conn->fd_closed)
			close(conn->fd);
		if (conn->redis)
			redis_conn_free(conn);
		reactor_timer_cancel(c->reactor, &conn->tls_timer);
		reactor_timer_cancel(c->reactor, &conn->auth.timer);
		auth_conn_close(conn);
		tls_conn_free(conn->tls);
		pool_free(p, conn->rbuf);
		pool_free(p, conn->obuf);
		pool_free(p, conn->sbuf);
		pool_free(p, conn);
	}
	c->conn_count = 0;
	c->dirty = NULL;
}
