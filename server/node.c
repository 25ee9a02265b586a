/*
 * A core's share of the node: its shards, its listener and its connections,
 * wired to the reactor's callbacks and per-iteration hooks.
 */
#include "server/node.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "server/conn.h"
#include "server/redis.h"
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

static void flush_hook(struct reactor *r, void *arg)
{
	struct node_core *c = arg;
	unsigned i;

	/* WAL batches first, so their writes are queued before the sends of
	 * answers that do not depend on them. */
	for (i = 0; i < c->owned_count; i++)
		shard_flush(c->owned[i]);
	conn_flush_all(c);
}

int node_core_start(struct reactor *r, void *arg, char *err, size_t errlen)
{
	struct node *n = arg;
	struct node_core *c;
	unsigned i;
	int rv;

	c = calloc(1, sizeof *c);
	if (!c)
		goto err_nomem;
	c->node = n;
	c->reactor = r;
	r->user = c;
	c->shards = calloc(n->shards, sizeof *c->shards);
	c->owned = calloc(n->shards, sizeof *c->owned);
	if (!c->shards || !c->owned)
		goto err_nomem;
	{
		struct block_cache_options copt = { .capacity = n->cfg.block_cache_size };

		if (block_cache_create(&c->cache, &copt) != 0)
			goto err_nomem;
	}
	for (i = 0; i < n->shards; i++) {
		struct shard_config sc;
		char dir[sizeof n->cfg.data_dir + 32];

		if (node_shard_core(n, i) != r->id)
			continue;
		snprintf(dir, sizeof dir, "%s/shard-%u", n->cfg.data_dir, i);
		memset(&sc, 0, sizeof sc);
		sc.id = i;
		sc.dir = dir;
		sc.memtable_size = n->cfg.memtable_size;
		sc.manifest_rewrite_min = n->cfg.manifest_rewrite_min;
		sc.cache = c->cache;
		rv = shard_open(&c->shards[i], &sc, &r->io, err, errlen);
		if (rv)
			return rv;
		c->owned[c->owned_count++] = c->shards[i];
	}
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
	for (i = 0; i < c->listener_count; i++) {
		if (!c->listeners[i].armed)
			continue;
		sqe = io_ring_get_sqe(&r->io);
		io_uring_prep_cancel(sqe, &c->listeners[i].op, 0);
		io_uring_sqe_set_data(sqe, NULL);
	}
	conn_stop_reading_all(c);
}

bool node_core_quiescent(struct reactor *r, void *arg)
{
	struct node_core *c = r->user;
	unsigned i;

	if (r->now_us >= c->stop_deadline_us) {
		log_warn("shutdown grace period over: %" PRIu64 " requests unanswered",
			 c->outstanding);
		return true;
	}
	if (c->outstanding)
		return false;
	for (i = 0; i < c->owned_count; i++)
		if (!shard_idle(c->owned[i]))
			return false;
	return conn_all_flushed(c);
}

void node_core_finish(struct reactor *r, void *arg)
{
	struct node_core *c = r->user;
	unsigned i;

	if (!c)
		return;
	conn_close_all(c);
	redis_core_destroy(c);
	for (i = 0; i < c->owned_count; i++)
		shard_close(c->owned[i]);
	if (c->cache)
		block_cache_destroy(c->cache);
	log_info("core %u: %" PRIu64 " requests, %" PRIu64 " forwarded, %" PRIu64
		 " served for other cores, %" PRIu64 " connections",
		 r->id, c->stats.requests, c->stats.forwarded,
		 c->stats.served_for_peers, c->stats.connections);
	free(c->shards);
	free(c->owned);
	free(c);
	r->user = NULL;
}
