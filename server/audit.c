/*
 * The audit log through the core's ring; see server/audit.h. Two buffers a
 * core: one gathers lines while the other is being written, so a line is
 * never copied twice and the write in flight never sees its bytes move.
 */
#include "server/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "server/auth.h"
#include "server/conn.h"
#include "server/node.h"

struct audit_core {
	char *gather;            /* lines being gathered */
	size_t gather_len;
	char *writing;           /* lines being written */
	size_t writing_len;
	size_t written;          /* of those, written so far */
	bool in_flight;
	uint64_t dropped;        /* lines lost to a full buffer since the last note */
	struct io_op op;
	struct node_core *core;
};

static void start_write(struct audit_core *a);

static void write_done(struct io_op *op, int res, unsigned flags)
{
	struct audit_core *a = op->data;

	(void)flags;
	a->in_flight = false;
	if (res < 0) {
		log_every(LOG_ERROR, 10000, "audit log: write failed: %s; %zu bytes lost",
			  strerror(-res), a->writing_len - a->written);
		a->writing_len = a->written = 0;
		return;
	}
	a->written += (size_t)res;
	if (a->written >= a->writing_len)
		a->writing_len = a->written = 0;
	else
		start_write(a);
}

static void start_write(struct audit_core *a)
{
	struct io_uring_sqe *sqe = io_ring_get_sqe(&a->core->reactor->io);

	/* O_APPEND: every write lands at the end, whatever the offset says. */
	io_uring_prep_write(sqe, a->core->node->audit_fd, a->writing + a->written,
			    (unsigned)(a->writing_len - a->written), (uint64_t)-1);
	io_op_attach(sqe, &a->op);
	a->in_flight = true;
}

int audit_reopen(struct node *n, char *err, size_t errlen)
{
	int fd, rv = 0;

	if (n->audit_fd < 0)
		return 0;
	fd = open(n->cfg.audit_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		rv = -errno;
		snprintf(err, errlen, "--audit-log %s: %s", n->cfg.audit_log, strerror(errno));
		return rv;
	}
	if (dup3(fd, n->audit_fd, O_CLOEXEC) < 0) {
		rv = -errno;
		snprintf(err, errlen, "--audit-log %s: dup3: %s", n->cfg.audit_log,
			 strerror(errno));
	}
	close(fd);
	return rv;
}

int audit_core_init(struct node_core *c)
{
	struct audit_core *a;

	if (c->node->audit_fd < 0)
		return 0;
	a = calloc(1, sizeof *a);
	if (!a)
		return -ENOMEM;
	a->gather = malloc(AUDIT_BUFFER);
	a->writing = malloc(AUDIT_BUFFER);
	if (!a->gather || !a->writing) {
		free(a->gather);
		free(a->writing);
		free(a);
		return -ENOMEM;
	}
	a->op.done = write_done;
	a->op.data = a;
	a->core = c;
	c->audit = a;
	return 0;
}

void audit_core_flush(struct node_core *c)
{
	struct audit_core *a = c->audit;
	char *tmp;

	if (!a || a->in_flight || a->gather_len == 0)
		return;
	tmp = a->writing;
	a->writing = a->gather;
	a->writing_len = a->gather_len;
	a->written = 0;
	a->gather = tmp;
	a->gather_len = 0;
	start_write(a);
}

bool audit_core_idle(const struct node_core *c)
{
	return !c->audit || (!c->audit->in_flight && c->audit->gather_len == 0);
}

void audit_core_destroy(struct node_core *c)
{
	struct audit_core *a = c->audit;

	if (!a)
		return;
	if (a->in_flight)
		return; /* the ring may still write from it: left to the exit */
	free(a->gather);
	free(a->writing);
	free(a);
	c->audit = NULL;
}

/* Appends `text` quoted, with '"', '\\' and control bytes escaped. */
static size_t quoted(char *out, size_t cap, const char *text)
{
	size_t n = 0;

	if (cap < 3)
		return 0;
	out[n++] = '"';
	for (const unsigned char *p = (const unsigned char *)text; *p && n + 6 < cap; p++) {
		if (*p == '"' || *p == '\\') {
			out[n++] = '\\';
			out[n++] = (char)*p;
		} else if (*p < 0x20 || *p == 0x7f) {
			n += (size_t)snprintf(out + n, cap - n, "\\x%02x", *p);
		} else {
			out[n++] = (char)*p;
		}
	}
	out[n++] = '"';
	out[n] = '\0';
	return n;
}

void audit_line(struct conn *conn, const char *proto, const char *user, const char *what,
		const char *outcome)
{
	audit_line_from(conn->core, &conn->auth.peer, proto, user, what, outcome);
}

void audit_line_from(struct node_core *c, const struct auth_addr *peer, const char *proto,
		     const char *user, const char *what, const char *outcome)
{
	struct audit_core *a = c->audit;
	char line[768], from[64], q_user[160], q_what[256], q_outcome[160], ts[32];
	struct timespec now;
	struct tm tm;
	int n;

	auth_from(peer, from, sizeof from);
	quoted(q_user, sizeof q_user, user ? user : "-");
	quoted(q_what, sizeof q_what, what);
	quoted(q_outcome, sizeof q_outcome, outcome);
	if (!a) {
		log_info("audit: core=%u user=%s from=%s proto=%s what=%s outcome=%s",
			 c->reactor->id, q_user, from, proto, q_what, q_outcome);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof line,
		     "%s.%03ldZ core=%u user=%s from=%s proto=%s what=%s outcome=%s\n", ts,
		     now.tv_nsec / 1000000, c->reactor->id, q_user, from, proto, q_what,
		     q_outcome);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line) {
		n = sizeof line - 1;
		line[n - 1] = '\n';
	}
	if (a->dropped) {
		char note[96];
		int m = snprintf(note, sizeof note, "%s.%03ldZ core=%u lost=%llu\n", ts,
				 now.tv_nsec / 1000000, c->reactor->id,
				 (unsigned long long)a->dropped);

		if (m > 0 && a->gather_len + (size_t)m + (size_t)n <= AUDIT_BUFFER) {
			memcpy(a->gather + a->gather_len, note, (size_t)m);
			a->gather_len += (size_t)m;
			a->dropped = 0;
		}
	}
	if (a->gather_len + (size_t)n > AUDIT_BUFFER) {
		if (a->dropped++ == 0)
			log_every(LOG_WARN, 10000, "audit log: buffer full, lines dropped "
				  "(the file takes them slower than they come)");
		return;
	}
	memcpy(a->gather + a->gather_len, line, (size_t)n);
	a->gather_len += (size_t)n;
	reactor_poll_again(c->reactor);
}
