/*
 * Every shard's leader and the map's epoch, as one core knows them; see
 * cluster/leaders.h for the protocol and its invariants.
 *
 * Cost: a core announces only what changed at each tick (after an election
 * or a configuration change: a few entries), and its whole table every
 * LEADERS_FULL_US: at 10,000 shards over 3 nodes about 3,300 entries of
 * 5-8 bytes each, some 25 KiB every 2 s per peer node, split over the
 * cores that lead them. A receiving core copies each frame once to every
 * other core of its node (a malloc'd reactor message, as other cross-core
 * frames are): rare, bounded by the frames the peers send.
 */
#include "cluster/leaders.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/replica_internal.h"

struct leader_entry {
	uint64_t leader;     /* node id; 0: none heard */
	uint64_t term;       /* of that claim; never goes down */
	uint64_t heard_us;   /* when it was last heard */
	uint64_t conf_index; /* highest heard; never goes down */
};

/* What this core announced last for a group its replica leads. */
struct announced {
	uint64_t term;       /* 0: not announced as leader (or no longer) */
	uint64_t conf_index;
};

struct cluster_leaders {
	uint32_t shards;
	uint64_t epoch;                /* 1 + sum of entries[].conf_index */
	struct leader_entry *entries;  /* [shards] */
	struct announced *announced;   /* [shards] */
	struct peer_msg_leader *out;   /* [shards]: one frame's entries */
	struct peer_msg_buf buf;       /* the encoded frame */
	uint64_t full_at_us;           /* next whole-table announcement */
};

int cluster_leaders_create(struct cluster_leaders **out, uint32_t shards)
{
	struct cluster_leaders *t = calloc(1, sizeof *t);

	if (!t)
		return -ENOMEM;
	t->shards = shards;
	t->epoch = 1;
	t->entries = calloc(shards, sizeof *t->entries);
	t->announced = calloc(shards, sizeof *t->announced);
	t->out = calloc(shards, sizeof *t->out);
	peer_msg_buf_init(&t->buf);
	if (!t->entries || !t->announced || !t->out) {
		cluster_leaders_destroy(t);
		return -ENOMEM;
	}
	*out = t;
	return 0;
}

void cluster_leaders_destroy(struct cluster_leaders *t)
{
	if (!t)
		return;
	free(t->entries);
	free(t->announced);
	free(t->out);
	peer_msg_buf_free(&t->buf);
	free(t);
}

uint32_t cluster_leaders_learn(struct cluster_leaders *t, uint64_t from,
			       const struct peer_msg_leaders *l, uint64_t now_us)
{
	struct peer_msg_leaders_iter it;
	struct peer_msg_leader e;
	uint32_t refused = 0;

	peer_msg_leaders_begin(&it, l);
	while (peer_msg_leaders_next(&it, &e) == 1) {
		struct leader_entry *x;

		if (e.shard >= t->shards || e.term == 0) {
			refused++;
			continue;
		}
		x = &t->entries[e.shard];
		if (e.conf_index > x->conf_index) {
			t->epoch += e.conf_index - x->conf_index;
			x->conf_index = e.conf_index;
		}
		/* §5.2: at most one leader per term; an older term's claim is
		 * from a leader deposed since. */
		if (e.term < x->term)
			continue;
		x->leader = from;
		x->term = e.term;
		x->heard_us = now_us;
	}
	return refused;
}

bool cluster_leaders_get(const struct cluster_leaders *t, uint32_t shard, uint64_t now_us,
			 uint64_t *leader, uint64_t *term)
{
	const struct leader_entry *x = shard < t->shards ? &t->entries[shard] : NULL;

	*leader = 0;
	*term = x ? x->term : 0;
	if (!x || !x->leader || now_us > x->heard_us + LEADERS_STALE_US)
		return false;
	*leader = x->leader;
	return true;
}

uint64_t cluster_leaders_epoch(const struct cluster_leaders *t)
{
	return t->epoch;
}

uint64_t cluster_leaders_conf_index(const struct cluster_leaders *t, uint32_t shard)
{
	return shard < t->shards ? t->entries[shard].conf_index : 0;
}

/* ---- the core's side ------------------------------------------------------ */

/* A Leaders frame passed to another core of this node, as its bytes. */
struct xleaders {
	struct reactor_msg base;
	struct cluster_core *to;
	uint64_t from;
	uint32_t len;
	uint8_t bytes[];
};

static void learn_bytes(struct cluster_core *c, uint64_t from, const uint8_t *data, size_t len)
{
	struct peer_msg_frame f;

	if (!c->leaders)
		return;
	if (peer_msg_decode(&f, data, len, &c->limits, NULL, 0) != 0 ||
	    f.kind != PEER_MSG_LEADERS) {
		c->stats.dropped_bad++;
		return;
	}
	c->stats.dropped_bad += cluster_leaders_learn(c->leaders, from, &f.leaders, c->r->now_us);
}

static void xleaders_handle(struct reactor *r, struct reactor_msg *base)
{
	struct xleaders *x = (struct xleaders *)base;

	(void)r;
	learn_bytes(x->to, x->from, x->bytes, x->len);
	free(x);
}

/* A copy of the frame to every other core of this node. */
static void to_other_cores(struct cluster_core *c, uint64_t from, const uint8_t *data, size_t len)
{
	for (unsigned k = 0; k < c->node->cfg.cores; k++) {
		struct cluster_core *to = atomic_load(&c->node->cores[k]);
		struct xleaders *x;

		if (k == c->index || !to)
			continue;
		x = malloc(sizeof *x + len);
		if (!x) {
			c->stats.dropped_bad++;
			continue;
		}
		x->base.handle = xleaders_handle;
		x->to = to;
		x->from = from;
		x->len = (uint32_t)len;
		memcpy(x->bytes, data, len);
		reactor_send(c->r, k, &x->base);
		c->stats.msgs_forwarded++;
	}
}

void cluster_leaders_frame(struct cluster_core *c, uint64_t from, const struct peer_msg_frame *f,
			   const uint8_t *data, size_t len, bool from_peer)
{
	c->stats.dropped_bad += cluster_leaders_learn(c->leaders, from, &f->leaders, c->r->now_us);
	if (from_peer)
		to_other_cores(c, from, data, len);
}

void cluster_leaders_tick(struct cluster_core *c)
{
	struct cluster_leaders *t = c->leaders;
	uint64_t self = c->node->cfg.self_id, now = c->r->now_us;
	bool full = now >= t->full_at_us;
	const uint8_t *payload;
	struct peer_msg_frame f;
	size_t len;
	uint32_t n = 0;

	if (full)
		t->full_at_us = now + LEADERS_FULL_US;
	/* Between whole-table announcements only awake replicas can have
	 * changed: a sleeping one keeps its role and term (raft/quiesce.c). */
	struct replica **reps = full ? c->reps : c->awake;
	size_t nreps = full ? c->nreps : c->nawake;

	for (size_t i = 0; i < nreps; i++) {
		struct replica *rep = reps[i];
		struct announced *a = &t->announced[rep->id];
		uint64_t term, conf_index;

		if (rep->retired || !rep->raft || raft_role(rep->raft) != RAFT_LEADER) {
			a->term = 0;
			continue;
		}
		term = raft_term(rep->raft);
		conf_index = rep->conf_rec.want_index;
		if (!full && a->term == term && a->conf_index == conf_index)
			continue;
		a->term = term;
		a->conf_index = conf_index;
		t->out[n++] = (struct peer_msg_leader){ rep->id, term, conf_index };
	}
	/* n <= shards <= PEER_MSG_MAX_LEADERS: one frame always holds them. */
	t->buf.len = 0;
	if (n == 0 || peer_msg_encode_leaders(&t->buf, t->out, n) != 0)
		return;
	payload = t->buf.data + PEER_MSG_HEADER_SIZE;
	len = t->buf.len - PEER_MSG_HEADER_SIZE;
	/* A peer not connected misses the changes until the next whole
	 * table: its send fails here and nothing waits for it. */
	for (unsigned i = 0; i < c->node->map.node_count; i++)
		if (c->node->map.nodes[i].id != self &&
		    cluster_core_send_control(c, c->node->map.nodes[i].id, payload, len) == 0)
			c->stats.frames_sent++;
	if (peer_msg_decode(&f, payload, len, &c->limits, NULL, 0) == 0)
		cluster_leaders_learn(t, self, &f.leaders, now);
	to_other_cores(c, self, payload, len);
}

const struct cluster_leaders *cluster_core_leaders(const struct cluster_core *c)
{
	return c->leaders;
}
