/*
 * The cluster map and cluster status requests; see server/cluster_info.h.
 *
 * Invariant: while a gather is out, core k writes only parts[k] and the
 * entries of `rs` for the shards it owns; the origin reads them only after
 * every part has come back over the SPSC rings (whose release/acquire
 * order makes the writes visible), and is the only core that frees.
 * These are rare administrative requests: the gather block is malloc'd.
 */
#include "server/cluster_info.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/replica_ident.h"
#include "cluster/client_addrs.h"
#include "cluster/leaders.h"
#include "cluster/peer.h"
#include "cluster/replica.h"
#include "core/log.h"
#include "proto/frame.h"
#include "ringkv.pb.h"
#include "server/conn.h"
#include "server/node.h"
#include "shard/route.h"

/* One core's contribution. */
struct gather_part {
	struct reactor_msg msg;          /* first: the cross-core envelope */
	struct gather *g;
	unsigned core;
	struct client_addrs addrs;       /* a copy of the core's table */
	struct peer_stats peers[PEER_MAX_PEERS];
	unsigned npeers;
};

struct gather {
	struct node_core *origin;
	struct conn *conn;
	uint64_t id;
	bool want_status;                /* cluster_status, else cluster_map */
	unsigned pending;                /* parts not yet back */
	uint32_t *held;                  /* [n_held] shards this node holds */
	uint32_t n_held;
	struct replica_status *rs;       /* [n_held], filled by their cores */
	struct gather_part **parts;      /* [cores] */
};

void cluster_info_advertised(const char *host, uint16_t port, const char *peer_host,
			     char *buf, size_t len)
{
	bool wildcard = !host[0] || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 ||
			strcmp(host, "*") == 0;

	if (wildcard) {
		if (!peer_host || !peer_host[0] || strcmp(peer_host, "0.0.0.0") == 0 ||
		    strcmp(peer_host, "::") == 0) {
			buf[0] = '\0';
			return;
		}
		host = peer_host;
	}
	config_format_address(host, port, buf, len);
}

void cluster_info_core_start(struct node_core *c)
{
	const struct node *n = c->node;
	char client[CLIENT_ADDRS_MAX], resp[CLIENT_ADDRS_MAX] = "";

	cluster_info_advertised(n->cfg.listen_host, n->port, n->cfg.peer_host, client,
				sizeof client);
	if (n->resp_fds)
		cluster_info_advertised(n->cfg.resp_host, n->resp_port, n->cfg.peer_host, resp,
					sizeof resp);
	cluster_core_set_client_addrs(c->cluster, client, resp);
}

static void gather_free(struct gather *g)
{
	if (g->parts)
		for (unsigned i = 0; i < g->origin->node->cores; i++)
			free(g->parts[i]);
	free(g->parts);
	free(g->rs);
	free(g->held);
	free(g);
}

static void on_part_back(struct reactor *r, struct reactor_msg *m);

/* Executing core: fill this core's part, send it home. */
static void on_part(struct reactor *r, struct reactor_msg *m)
{
	struct gather_part *part = (struct gather_part *)m;
	struct gather *g = part->g;
	struct node_core *c = r->user;
	struct peer_core *pc;

	/* The engine's placement, not the server's start-up copy: replicas
	 * move in and out (docs/cluster/membership.md). */
	for (uint32_t i = 0; i < g->n_held; i++) {
		struct replica *rep = cluster_core_replica(c->cluster, g->held[i]);

		if (cluster_node_shard_core(c->node->cluster, g->held[i]) == (int)r->id && rep)
			replica_status(rep, &g->rs[i]);
	}
	memcpy(&part->addrs, cluster_core_client_addrs(c->cluster), sizeof part->addrs);
	pc = cluster_core_peer_core(c->cluster);
	part->npeers = pc ? peer_core_count(pc) : 0;
	if (part->npeers > PEER_MAX_PEERS)
		part->npeers = PEER_MAX_PEERS;
	for (unsigned i = 0; i < part->npeers; i++)
		peer_core_stats(pc, i, &part->peers[i]);
	part->msg.handle = on_part_back;
	if (r->id == g->origin->reactor->id)
		on_part_back(r, m);
	else
		reactor_send(r, g->origin->reactor->id, &part->msg);
}

/* The freshest entry any core learnt about node index `i`. */
static const struct client_addrs_entry *freshest(const struct gather *g, unsigned i)
{
	const struct client_addrs_entry *best = NULL;

	for (unsigned k = 0; k < g->origin->node->cores; k++) {
		const struct client_addrs_entry *e = &g->parts[k]->addrs.nodes[i];

		if (e->learnt_us && (!best || e->learnt_us > best->learnt_us))
			best = e;
	}
	return best;
}

static struct frame_slice text(const char *s)
{
	return (struct frame_slice){ (const uint8_t *)s, (uint32_t)strlen(s) };
}

/* The status of shard `s` as gathered, or NULL when this node holds none. */
static const struct replica_status *held_status(const struct gather *g, uint32_t s)
{
	uint32_t lo = 0, hi = g->n_held;

	while (lo < hi) { /* held[] is in increasing order */
		uint32_t mid = lo + (hi - lo) / 2;

		if (g->held[mid] == s)
			return &g->rs[mid];
		if (g->held[mid] < s)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void send_answer(struct gather *g, const struct frame_response *resp)
{
	size_t need = frame_response_max_size(resp);
	uint8_t *out = conn_out_reserve(g->conn, need);
	int n;

	if (!out)
		return;
	n = frame_encode_response(resp, out, need);
	if (n < 0)
		panic("frame_encode_response overflowed its own bound");
	conn_out_commit(g->conn, (size_t)n);
}

static void answer_error(struct gather *g, const char *why)
{
	struct frame_response resp = { .id = g->id, .status = ringkv_Status_RESOURCE_EXHAUSTED,
				       .error = why };

	send_answer(g, &resp);
}

/*
 * The map. epoch = 1 + the sum over shards of the index of the last
 * configuration their leaders applied (cluster/leaders.h); version = epoch
 * + the sum of the shards' terms. Neither a term (durable) nor a
 * configuration's index ever goes down, so neither does the version of one
 * node's answers while it runs; a membership change raises the epoch.
 */
/* The voters of `conf`: those of the founding list ids[0..r) first, in
 * its order, then the others; rewrites ids, returns their count. */
static unsigned group_voters(const struct raft_conf *conf, uint64_t *ids, unsigned r)
{
	uint64_t out[CLUSTER_MAP_MAX_NODES];
	unsigned n = 0;

	for (unsigned k = 0; k < r; k++)
		if (raft_conf_role(conf, ids[k]) == RAFT_VOTER)
			out[n++] = ids[k];
	for (uint32_t i = 0; i < conf->n && n < CLUSTER_MAP_MAX_NODES; i++) {
		bool founding = false;

		for (unsigned k = 0; k < r; k++)
			founding |= ids[k] == conf->servers[i].id;
		/* A node id (a rejoined replica's identity has an incarnation). */
		if (!founding && conf->servers[i].role == RAFT_VOTER)
			out[n++] = replica_ident_node(conf->servers[i].id);
	}
	memcpy(ids, out, n * sizeof *ids);
	return n;
}

/*
 * The leader of shard s and its term: this node's replica's view (st, NULL
 * when it holds none) or what the leaders announced (cluster/leaders.h),
 * whichever is of the later term; at an equal term a named leader wins
 * over none (a follower that has not heard from its leader yet).
 */
static void shard_leader(const struct gather *g, const struct replica_status *st, uint32_t s,
			 uint64_t *leader, uint64_t *term)
{
	const struct cluster_leaders *t = cluster_core_leaders(g->origin->cluster);
	uint64_t heard_leader, heard_term;
	bool heard = cluster_leaders_get(t, s, g->origin->reactor->now_us, &heard_leader,
					 &heard_term);

	*leader = st ? st->leader : 0;
	*term = st ? st->term : 0;
	if (heard && (heard_term > *term || (heard_term == *term && !*leader)))
		*leader = heard_leader;
	if (heard_term > *term)
		*term = heard_term;
}

static void answer_map(struct gather *g)
{
	const struct node *n = g->origin->node;
	const struct cluster_map *map = cluster_node_map(n->cluster);
	const struct client_addrs *own = cluster_core_client_addrs(g->origin->cluster);
	uint64_t self = cluster_node_self_id(n->cluster);
	struct frame_map_node *nodes = calloc(map->node_count, sizeof *nodes);
	char (*peer)[CLIENT_ADDRS_MAX] = calloc(map->node_count, sizeof *peer);
	struct frame_map_shard *shards = malloc((size_t)map->shards * sizeof *shards);
	uint32_t *cores = calloc(map->node_count, sizeof *cores);
	uint64_t term_sum = 0;
	uint64_t epoch = cluster_leaders_epoch(cluster_core_leaders(g->origin->cluster));
	struct frame_map fm;
	struct frame_response resp;

	if (!nodes || !peer || !shards || !cores) {
		answer_error(g, "out of memory for the cluster map");
		goto out;
	}
	for (unsigned i = 0; i < map->node_count; i++) {
		const struct client_addrs_entry *e = map->nodes[i].id == self ? &own->self :
						     freshest(g, i);

		nodes[i].id = map->nodes[i].id;
		if (map->nodes[i].host[0])
			config_format_address(map->nodes[i].host, map->nodes[i].port, peer[i],
					      sizeof peer[i]);
		nodes[i].peer = text(peer[i]);
		nodes[i].client = text(e ? e->client : "");
		nodes[i].resp = text(e ? e->resp : "");
		cores[i] = e ? e->cores : 0;
	}
	for (uint32_t s = 0; s < map->shards; s++) {
		struct frame_map_shard *sh = &shards[s];
		const struct replica_status *st = held_status(g, s);
		uint64_t ids[CLUSTER_MAP_MAX_NODES];
		unsigned r = cluster_map_replica_ids(map, s, ids);

		memset(sh, 0, sizeof *sh);
		sh->id = s;
		sh->slot_start = (uint32_t)(((uint64_t)s * ROUTE_SLOTS + map->shards - 1) / map->shards);
		sh->slot_end = (uint32_t)(((uint64_t)(s + 1) * ROUTE_SLOTS + map->shards - 1) /
					  map->shards);
		/* A group this node holds: its voters as its Raft configuration
		 * says (moves change them), founding members first in the
		 * placement's order; else the founding placement. */
		if (st && st->conf.n > 0)
			r = group_voters(&st->conf, ids, r);
		for (unsigned k = 0; k < r && k < FRAME_MAP_MAX_REPLICAS; k++) {
			int idx = cluster_map_index(map, ids[k]);

			sh->replicas[k].node = ids[k];
			/* A node's core count is learnt from its hello; until
			 * then its replica's core is not known: UINT32_MAX. So
			 * is the core of a replica placed by a move elsewhere. */
			sh->replicas[k].core = UINT32_MAX;
			if (ids[k] == self)
				sh->replicas[k].core =
					(uint32_t)cluster_node_shard_core(n->cluster, s);
			else if (idx >= 0 && cores[idx] &&
				 cluster_map_rank(map, s, (unsigned)idx) >= 0)
				sh->replicas[k].core = cluster_map_core(map, s, cores[idx]);
		}
		sh->replica_count = r < FRAME_MAP_MAX_REPLICAS ? r : FRAME_MAP_MAX_REPLICAS;
		shard_leader(g, st, s, &sh->leader, &sh->term);
		term_sum += sh->term;
	}
	fm = (struct frame_map){
		.version = epoch + term_sum,
		.cluster_id = map->cluster_id, .epoch = epoch,
		.node_id = cluster_node_self_id(n->cluster), .slots = ROUTE_SLOTS,
		.nodes = nodes, .node_count = map->node_count,
		.shards = shards, .shard_count = map->shards,
	};
	resp = (struct frame_response){ .id = g->id, .status = ringkv_Status_OK, .map = &fm };
	send_answer(g, &resp);
out:
	free(nodes);
	free(peer);
	free(shards);
	free(cores);
}

static void answer_status(struct gather *g)
{
	const struct node *n = g->origin->node;
	const struct cluster_map *map = cluster_node_map(n->cluster);
	struct frame_replica_status *reps = calloc(g->n_held ? g->n_held : 1, sizeof *reps);
	struct frame_peer_status peers[PEER_MAX_PEERS];
	unsigned npeers = 0;
	struct frame_status fs;
	struct frame_response resp;

	if (!reps) {
		answer_error(g, "out of memory for the cluster status");
		return;
	}
	for (uint32_t i = 0; i < g->n_held; i++) {
		const struct replica_status *st = &g->rs[i];
		struct frame_replica_status *x = &reps[i];

		x->shard = g->held[i];
		x->core = (uint32_t)cluster_node_shard_core(n->cluster, g->held[i]);
		/* An amnesiac replica takes no part in its group whatever its
		 * Raft role says (cluster/replica_amnesia.c), nor does one
		 * that asks whether its node was a member. */
		x->role = text(st->amnesiac ? "amnesiac"
			       : st->probing ? "asking" /* cluster/replica_wiped.c */
					     : raft_role_name(st->role));
		x->term = st->term;
		x->leader = st->leader;
		x->commit = st->commit;
		x->applied = st->applied;
		x->last_index = st->last_index;
		x->persisted = st->persisted;
		x->snapshot_index = st->snapshot_index;
		x->proposals = st->proposals;
		x->reads = st->reads;
		x->apply_stopped = st->apply_stopped;
		x->sleeping = st->sleeping;
		x->snapshot = text(st->snapshot_sending     ? "sending"
				   : st->snapshot_receiving ? "receiving"
							    : "");
		for (unsigned k = 0; k < st->n_followers && k < FRAME_STATUS_MAX_FOLLOWERS; k++)
			x->followers[x->follower_count++] = (struct frame_follower){
				.node = st->followers[k].node, .match = st->followers[k].match,
				.lag = st->followers[k].lag };
	}
	/* Peers: every core has its own connection to each; sum them up. */
	for (unsigned i = 0; i < map->node_count && npeers < PEER_MAX_PEERS; i++) {
		struct frame_peer_status *p = &peers[npeers];

		if (map->nodes[i].id == cluster_node_self_id(n->cluster))
			continue;
		memset(p, 0, sizeof *p);
		p->node = map->nodes[i].id;
		for (unsigned k = 0; k < n->cores; k++) {
			const struct gather_part *part = g->parts[k];

			for (unsigned j = 0; j < part->npeers; j++) {
				const struct peer_stats *ps = &part->peers[j];

				if (ps->node_id != p->node)
					continue;
				p->cores++;
				p->connected_cores += ps->connected;
				p->bytes_sent += ps->bytes_sent;
				p->bytes_received += ps->bytes_received;
				p->queued_bytes += ps->queued_bytes;
				p->dropped_frames += ps->dropped_frames;
				p->reconnects += ps->reconnects;
				if (ps->last_error && !p->last_error)
					p->last_error = ps->last_error;
			}
		}
		p->reachable = p->connected_cores > 0;
		npeers++;
	}
	fs = (struct frame_status){ .node_id = cluster_node_self_id(n->cluster), .cluster_id = map->cluster_id,
				    .cores = n->cores, .replicas = reps,
				    .replica_count = g->n_held, .peers = peers,
				    .peer_count = npeers };
	resp = (struct frame_response){ .id = g->id, .status = ringkv_Status_OK,
					.cluster_status = &fs };
	send_answer(g, &resp);
	free(reps);
}

/* Origin core: one part is back; the last one builds the answer. */
static void on_part_back(struct reactor *r, struct reactor_msg *m)
{
	struct gather *g = ((struct gather_part *)m)->g;
	struct node_core *c = g->origin;

	(void)r;
	if (--g->pending > 0)
		return;
	if (g->want_status)
		answer_status(g);
	else
		answer_map(g);
	c->outstanding--;
	conn_request_done(g->conn);
	gather_free(g);
}

uint64_t cluster_info_epoch(const struct node_core *c)
{
	return c->cluster ? cluster_leaders_epoch(cluster_core_leaders(c->cluster)) : 1;
}

bool cluster_info_submit(struct node_core *c, struct conn *conn, const struct frame_request *fr)
{
	const struct node *n = c->node;
	struct gather *g;

	if (fr->op != FRAME_OP_CLUSTER_MAP && fr->op != FRAME_OP_CLUSTER_STATUS)
		return false;
	g = calloc(1, sizeof *g);
	if (!g)
		goto err_nomem;
	g->origin = c;
	g->conn = conn;
	g->id = fr->id;
	g->want_status = fr->op == FRAME_OP_CLUSTER_STATUS;
	g->held = calloc(n->shards, sizeof *g->held);
	g->parts = calloc(n->cores, sizeof *g->parts);
	if (!g->held || !g->parts)
		goto err_after_alloc;
	for (uint32_t s = 0; s < n->shards; s++)
		if (cluster_node_shard_core(n->cluster, s) >= 0)
			g->held[g->n_held++] = s;
	g->rs = calloc(g->n_held ? g->n_held : 1, sizeof *g->rs);
	if (!g->rs)
		goto err_after_alloc;
	for (unsigned k = 0; k < n->cores; k++) {
		g->parts[k] = calloc(1, sizeof *g->parts[k]);
		if (!g->parts[k])
			goto err_after_alloc;
		g->parts[k]->g = g;
		g->parts[k]->core = k;
		g->parts[k]->msg.handle = on_part;
	}
	g->pending = n->cores;
	conn->inflight++;
	c->outstanding++;
	for (unsigned k = 0; k < n->cores; k++) {
		if (k == c->reactor->id)
			continue;
		reactor_send(c->reactor, k, &g->parts[k]->msg);
	}
	/* Our own part last: the others are on their way meanwhile. */
	on_part(c->reactor, &g->parts[c->reactor->id]->msg);
	return true;

err_after_alloc:
	gather_free(g);
err_nomem:
	conn_reply(conn, fr->id, ringkv_Status_RESOURCE_EXHAUSTED, NULL, 0,
		   "out of memory for the cluster request");
	return true;
}
