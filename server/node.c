/*
 * A core's share of the node: its shards, its listener and its connections,
 * wired to the reactor's callbacks and per-iteration hooks.
 *
 * Every core listens on the node's port with SO_REUSEPORT, and Linux lets any
 * socket of the same user join such a port: a second ringkvd given the same
 * --listen would bind beside the first, and the kernel would spread clients
 * over two unrelated stores. So core 0 checks, before it accepts anything,
 * that every listening socket on its addresses is one of the node's own
 * (node_listeners_check); the node refuses to start otherwise.
 */
#include "server/node.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "server/admin.h"
#include "server/cluster_info.h"
#include "server/audit.h"
#include "server/auth.h"
#include "server/conn.h"
#include "server/redis.h"
#include "cluster/replica.h"
#include "server/forward.h"
#include "shard/block_cache.h"
#include "shard/shard.h"

#define NODE_STOP_GRACE_US (5u * 1000000u)

static void arm_accept(struct node_listener *l);

static void accept_done(struct io_op *op, int res, unsigned flags)
{
	struct node_listener *l = op->data;
	struct node_core *c = l->core;

	if (!(flags & IORING_CQE_F_MORE))
		l->armed = false;
	if (res >= 0) {
		if (c->accepting)
			conn_accept(c, res, l->resp);
		else
			close(res);
	} else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
		/* Out of descriptors or memory: retrying at once would spin.
		 * Wait a little; connections closing meanwhile free some. */
		if (!l->backing_off) {
			struct io_uring_sqe *sqe = io_ring_get_sqe(&c->reactor->io);

			log_warn("accept: %s; pausing accepts for 100 ms", strerror(-res));
			l->backoff.tv_sec = 0;
			l->backoff.tv_nsec = 100 * 1000 * 1000;
			io_uring_prep_timeout(sqe, &l->backoff, 0, 0);
			io_op_attach(sqe, &l->timer_op);
			l->backing_off = true;
		}
		return;
	} else if (res != -ECANCELED && res != -EINVAL && res != -EBADF) {
		log_warn("accept: %s", strerror(-res));
	}
	if (c->accepting && !l->armed && !l->backing_off)
		arm_accept(l);
}

static void backoff_done(struct io_op *op, int res, unsigned flags)
{
	struct node_listener *l = op->data;

	l->backing_off = false;
	if (l->core->accepting && !l->armed)
		arm_accept(l);
}

static void arm_accept(struct node_listener *l)
{
	struct io_uring_sqe *sqe = io_ring_get_sqe(&l->core->reactor->io);

	if (l->core->reactor->io.has_multishot_accept)
		io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
	else
		io_uring_prep_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
	io_op_attach(sqe, &l->op);
	l->armed = true;
}

static void add_listener(struct node_core *c, int fd, bool resp)
{
	struct node_listener *l = &c->listeners[c->listener_count++];

	l->core = c;
	l->fd = fd;
	l->resp = resp;
	l->op.done = accept_done;
	l->op.data = l;
	l->timer_op.done = backoff_done;
	l->timer_op.data = l;
	arm_accept(l);
}

/* ---- one node per address -------------------------------------------- */

#define PROC_TCP_LISTEN 0x0A /* the st column of /proc/net/tcp for LISTEN */

/* A TCP address as /proc/net/tcp{,6} and getsockname give it. */
struct listen_addr {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t addr[16];  /* network order; 4 bytes for AF_INET */
	uint16_t port;
};

static bool addr_is_any(const struct listen_addr *a)
{
	static const uint8_t zero[16];

	return memcmp(a->addr, zero, a->family == AF_INET ? 4 : 16) == 0;
}

static bool addr_is_v4_mapped(const struct listen_addr *a)
{
	static const uint8_t prefix[12] = { [10] = 0xff, [11] = 0xff };

	return a->family == AF_INET6 && memcmp(a->addr, prefix, 12) == 0;
}

/* True when a connection to one address could reach a listener on the
 * other: same port, and the same address or a wildcard on either side. A
 * "::" listener takes IPv4 too unless it is v6-only, which /proc does not
 * say; counting it as overlapping errs on the side of refusing. */
static bool addrs_overlap(const struct listen_addr *a, const struct listen_addr *b)
{
	const struct listen_addr *v4, *v6;

	if (a->port != b->port)
		return false;
	if (a->family == b->family)
		return addr_is_any(a) || addr_is_any(b) ||
		       memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0;
	v4 = a->family == AF_INET ? a : b;
	v6 = a->family == AF_INET ? b : a;
	if (addr_is_any(v6))
		return true;
	return addr_is_v4_mapped(v6) &&
	       (addr_is_any(v4) || memcmp(v6->addr + 12, v4->addr, 4) == 0);
}

static int addr_from_sockaddr(struct listen_addr *a, const struct sockaddr *sa)
{
	memset(a, 0, sizeof *a);
	a->family = sa->sa_family;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		memcpy(a->addr, &in->sin_addr, 4);
		a->port = ntohs(in->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		memcpy(a->addr, &in6->sin6_addr, 16);
		a->port = ntohs(in6->sin6_port);
		return 0;
	}
	return -EAFNOSUPPORT;
}

/* "127.0.0.1:7070" or "[::1]:7070". */
static void addr_format(const struct listen_addr *a, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	inet_ntop(a->family, a->addr, host, sizeof host);
	snprintf(buf, len, a->family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, a->port);
}

/*
 * Parses the local address of a /proc/net/tcp{,6} line: hex digits of the
 * address as the kernel's 32-bit words printed in host order, a colon, the
 * port. 0, or -EINVAL for a line of another shape.
 */
static int addr_from_proc(struct listen_addr *a, int family, const char *hex,
			  unsigned port)
{
	size_t words = family == AF_INET ? 1 : 4;

	if (strlen(hex) != words * 8 || port > UINT16_MAX)
		return -EINVAL;
	memset(a, 0, sizeof *a);
	a->family = family;
	a->port = (uint16_t)port;
	for (size_t i = 0; i < words; i++) {
		char word[9];
		uint32_t v;

		memcpy(word, hex + 8 * i, 8);
		word[8] = '\0';
		v = (uint32_t)strtoul(word, NULL, 16);
		memcpy(a->addr + 4 * i, &v, 4);
	}
	return 0;
}

static bool inode_is_own(unsigned long inode, const unsigned long *own, size_t own_count)
{
	for (size_t i = 0; i < own_count; i++)
		if (own[i] == inode)
			return true;
	return false;
}

/*
 * Looks through one of /proc/net/tcp{,6} for a listening socket that
 * overlaps `a` and is not in `own`. 1 with its inode in *found and its
 * address in *found_addr, 0 when
 * there is none, or a negative errno when the file cannot be read.
 * Only LISTEN rows count: TIME_WAIT and other connection states of the
 * port never take new connections.
 */
static int find_foreign_listener_in(const char *path, int family,
				    const struct listen_addr *a,
				    const unsigned long *own, size_t own_count,
				    unsigned long *found, struct listen_addr *found_addr)
{
	char line[512];
	FILE *f = fopen(path, "re");
	int rv = 0;

	if (!f)
		return -errno;
	while (fgets(line, sizeof line, f)) {
		char hex[33];
		unsigned port, state;
		unsigned long inode;
		struct listen_addr other;

		if (sscanf(line, " %*u: %32[0-9A-Fa-f]:%x %*s %x %*s %*s %*s %*u %*d %lu",
			   hex, &port, &state, &inode) != 4)
			continue; /* the header line */
		if (state != PROC_TCP_LISTEN || addr_from_proc(&other, family, hex, port))
			continue;
		if (addrs_overlap(a, &other) && !inode_is_own(inode, own, own_count)) {
			*found = inode;
			*found_addr = other;
			rv = 1;
			break;
		}
	}
	fclose(f);
	return rv;
}

static int find_foreign_listener(const struct listen_addr *a, const unsigned long *own,
				 size_t own_count, unsigned long *found,
				 struct listen_addr *found_addr)
{
	int v4 = find_foreign_listener_in("/proc/net/tcp", AF_INET, a, own, own_count,
					  found, found_addr);
	int v6;

	if (v4 == 1)
		return 1;
	v6 = find_foreign_listener_in("/proc/net/tcp6", AF_INET6, a, own, own_count,
				      found, found_addr);
	if (v6 == 1)
		return 1;
	/* A kernel without IPv6 has no tcp6: one readable table is enough. */
	return v4 < 0 && v6 < 0 ? v4 : 0;
}

/* The process holding socket `inode` open, or 0 when none we may see. */
static pid_t socket_owner(unsigned long inode)
{
	char want[64];
	DIR *proc = opendir("/proc");
	struct dirent *de;
	pid_t owner = 0;

	if (!proc)
		return 0;
	snprintf(want, sizeof want, "socket:[%lu]", inode);
	while (!owner && (de = readdir(proc))) {
		char path[600], link[64];
		struct dirent *fe;
		DIR *fds;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%s/fd", de->d_name);
		fds = opendir(path);
		if (!fds)
			continue; /* another user's process, or gone */
		while (!owner && (fe = readdir(fds))) {
			ssize_t n;

			snprintf(path, sizeof path, "/proc/%s/fd/%s", de->d_name, fe->d_name);
			n = readlink(path, link, sizeof link - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (strcmp(link, want) == 0)
				owner = (pid_t)atoi(de->d_name);
		}
		closedir(fds);
	}
	closedir(proc);
	return owner;
}

/* Fills `err` for the foreign listener `other` (socket `inode`) that
 * overlaps `a`; returns -EADDRINUSE. */
static int refuse_address(const struct listen_addr *a, const struct listen_addr *other,
			  unsigned long inode, const char *flag, char *err, size_t errlen)
{
	char where[INET6_ADDRSTRLEN + 16], theirs[INET6_ADDRSTRLEN + 16];
	char also[INET6_ADDRSTRLEN + 48] = "", who[48] = "";
	pid_t owner = socket_owner(inode);

	addr_format(a, where, sizeof where);
	addr_format(other, theirs, sizeof theirs);
	if (strcmp(where, theirs) != 0)
		snprintf(also, sizeof also, " (it listens on %s)", theirs);
	if (owner > 0)
		snprintf(who, sizeof who, " (pid %d)", (int)owner);
	snprintf(err, errlen,
		 "%s is already in use by another process%s%s; is another ringkvd "
		 "running there? Stop it or give this node another %s",
		 where, who, also, flag);
	return -EADDRINUSE;
}

/* Checks the address listener `fd` is bound to against every `own` socket. */
static int check_listener(int fd, const unsigned long *own, size_t own_count,
			  const char *flag, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	struct listen_addr a, other;
	unsigned long found = 0;
	int rv;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
	    addr_from_sockaddr(&a, (struct sockaddr *)&ss) != 0)
		return 0; /* not an inet socket: nothing to share */
	rv = find_foreign_listener(&a, own, own_count, &found, &other);
	if (rv < 0) {
		log_warn("cannot read /proc/net/tcp (%s): not checking that %s is "
			 "this node's alone", strerror(-rv), flag);
		return 0;
	}
	return rv ? refuse_address(&a, &other, found, flag, err, errlen) : 0;
}

int node_listeners_check(const struct node *n, char *err, size_t errlen)
{
	size_t fds = n->resp_fds ? 2u * n->cores : n->cores, own_count = 0;
	unsigned long *own = calloc(fds, sizeof *own);
	int rv = 0;

	if (!own) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n->cores; i++) {
		struct stat st;

		if (fstat(n->listen_fds[i], &st) == 0)
			own[own_count++] = (unsigned long)st.st_ino;
		if (n->resp_fds && fstat(n->resp_fds[i], &st) == 0)
			own[own_count++] = (unsigned long)st.st_ino;
	}
	rv = check_listener(n->listen_fds[0], own, own_count, "--listen", err, errlen);
	if (rv == 0 && n->resp_fds)
		rv = check_listener(n->resp_fds[0], own, own_count, "--resp-listen",
				    err, errlen);
	free(own);
	return rv;
}

int node_address_check(const char *host, uint16_t port, const char *flag, char *err,
		       size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai;
	struct listen_addr a, other;
	unsigned long found = 0;
	char portstr[8];
	int rv;

	if (port == 0)
		return 0; /* the kernel picks a free port */
	snprintf(portstr, sizeof portstr, "%u", port);
	if (getaddrinfo(host, portstr, &hints, &ai) != 0)
		return 0; /* binding will report it */
	rv = addr_from_sockaddr(&a, ai->ai_addr);
	freeaddrinfo(ai);
	if (rv != 0)
		return 0;
	rv = find_foreign_listener(&a, NULL, 0, &found, &other);
	return rv == 1 ? refuse_address(&a, &other, found, flag, err, errlen) : 0;
}

/*
 * How long a forward waits for the leader's node: longer than a leader
 * takes to answer a proposal it cannot commit (UNKNOWN after two election
 * timeouts once its leadership is lost) plus an election, so that the
 * node that knows answers first.
 */
static uint32_t node_forward_timeout_ms(const struct node *n)
{
	return 3000 + 4 * cluster_node_election_timeout_ms(n->cluster);
}

static void flush_hook(struct reactor *r, void *arg)
{
	struct node_core *c = arg;

	/* The replication engine's hook runs first (registered before this
	 * one): Raft batches and the core log's writes are queued before the
	 * sends of answers that do not depend on them. */
	conn_flush_all(c);
}

/* A snapshot install reopened a shard (cluster_core_on_shard_swap). */
static void shard_swapped(void *arg, uint32_t shard, struct shard *fresh)
{
	struct node_core *c = arg;

	for (unsigned i = 0; i < c->owned_count; i++)
		if (c->owned[i] == c->shards[shard])
			c->owned[i] = fresh;
	c->shards[shard] = fresh;
}

int node_core_start(struct reactor *r, void *arg, char *err, size_t errlen)
{
	struct node *n = arg;
	struct node_core *c;
	unsigned i;
	int rv;

	/* Before any shard opens: another node on our port is a setup error. */
	if (r->id == 0) {
		rv = node_listeners_check(n, err, errlen);
		if (rv)
			return rv;
	}
	c = calloc(1, sizeof *c);
	if (!c)
		goto err_nomem;
	c->node = n;
	c->reactor = r;
	r->user = c;
	c->shards = calloc(n->shards, sizeof *c->shards);
	c->replicas = calloc(n->shards, sizeof *c->replicas);
	c->owned = calloc(n->shards, sizeof *c->owned);
	if (!c->shards || !c->replicas || !c->owned)
		goto err_nomem;
	/* Every shard replica of this core, its Raft group, the core's log and
	 * its peer connections: the replication engine opens them all (a
	 * one-node cluster too: a group of one per shard). */
	rv = cluster_core_start(n->cluster, r, n->net, &c->cluster, err, errlen);
	if (rv)
		return rv;
	c->cache = cluster_core_cache(c->cluster); /* the engine's, for metrics */
	cluster_info_core_start(c); /* the client addresses our hellos carry */
	rv = forward_core_start(c, node_forward_timeout_ms(n));
	if (rv)
		goto err_nomem;
	for (i = 0; i < n->shards; i++) {
		struct replica *rep;

		if (node_shard_core(n, i) != r->id)
			continue;
		rep = cluster_core_replica(c->cluster, i);
		if (!rep) {
			snprintf(err, errlen, "core %u: shard %u placed here has no replica", r->id, i);
			return -EINVAL;
		}
		c->replicas[i] = rep;
		c->shards[i] = replica_shard(rep);
		c->owned[c->owned_count++] = c->shards[i];
	}
	cluster_core_on_shard_swap(c->cluster, shard_swapped, c);
	rv = reactor_add_hook(r, flush_hook, c);
	if (rv) {
		snprintf(err, errlen, "core %u: no room for a hook", r->id);
		return rv;
	}
	rv = redis_core_init(c);
	if (rv) {
		snprintf(err, errlen, "core %u: out of memory", r->id);
		return rv;
	}
	rv = auth_core_init(c); /* --users, --audit-log (server/auth.h) */
	if (rv) {
		snprintf(err, errlen, "core %u: cannot set up authentication", r->id);
		return rv;
	}
	/* Metrics and the admin port (server/node_metrics.h, server/admin.h). */
	c->metrics = metrics_core_of(n->metrics, r->id);
	rv = node_metrics_core_start(c);
	if (rv) {
		snprintf(err, errlen, "core %u: no room for a metrics collector", r->id);
		return rv;
	}
	if (r->id == 0 && n->admin)
		admin_start(n->admin, r);
	c->accepting = true;
	add_listener(c, n->listen_fds[r->id], false);
	if (n->resp_fds)
		add_listener(c, n->resp_fds[r->id], true);
	return 0;

err_nomem:
	snprintf(err, errlen, "core %u: out of memory", r->id);
	return -ENOMEM;
}

void node_core_stop(struct reactor *r, void *arg)
{
	struct node_core *c = r->user;
	struct io_uring_sqe *sqe;

	unsigned i;

	c->accepting = false;
	c->stop_deadline_us = r->now_us + NODE_STOP_GRACE_US;
	if (r->id == 0 && c->node->admin)
		admin_stop(c->node->admin);
	for (i = 0; i < c->listener_count; i++) {
		if (!c->listeners[i].armed)
			continue;
		sqe = io_ring_get_sqe(&r->io);
		io_uring_prep_cancel(sqe, &c->listeners[i].op, 0);
		io_uring_sqe_set_data(sqe, NULL);
	}
	conn_stop_reading_all(c);
	forward_core_stop(c);
	/* Hands leadership off, then answers what is left. */
	if (c->cluster)
		cluster_core_stop(c->cluster);
}

bool node_core_quiescent(struct reactor *r, void *arg)
{
	struct node_core *c = r->user;

	if (r->now_us >= c->stop_deadline_us) {
		log_warn("shutdown grace period over: %" PRIu64 " requests unanswered",
			 c->outstanding);
		return true;
	}
	if (c->outstanding)
		return false;
	if (c->cluster && !cluster_core_quiescent(c->cluster))
		return false;
	if (!audit_core_idle(c))
		return false;
	return conn_all_flushed(c);
}

void node_core_finish(struct reactor *r, void *arg)
{
	struct node_core *c = r->user;

	if (!c)
		return;
	conn_close_all(c);
	auth_core_destroy(c);
	redis_core_destroy(c);
	if (c->forward) {
		struct forward_stats fs;

		forward_core_stats(c, &fs);
		log_info("core %u: %" PRIu64 " requests forwarded to other nodes (%" PRIu64
			 " answered, %" PRIu64 " timed out, %" PRIu64 " refused), %" PRIu64
			 " forwarded in (%" PRIu64 " refused)",
			 r->id, fs.sent, fs.answered, fs.timeouts, fs.refused, fs.inbound,
			 fs.inbound_refused);
	}
	forward_core_finish(c);
	if (c->cluster)
		cluster_core_finish(c->cluster);
	log_info("core %u: %" PRIu64 " requests, %" PRIu64 " forwarded, %" PRIu64
		 " served for other cores, %" PRIu64 " connections",
		 r->id, c->stats.requests, c->stats.forwarded,
		 c->stats.served_for_peers, c->stats.connections);
	free(c->shards);
	free(c->replicas);
	free(c->owned);
	free(c);
	r->user = NULL;
}
