/*
 * The rebalance planner: see cluster/planner.h for what a plan gives. It
 * works on a copy of the view (nodes by index, each shard's replicas as
 * node indexes), changes the copy move by move, and records each change.
 *
 * 1. Shares. T replicas over U up nodes: each gets floor(T/U), and the
 *    T mod U nodes holding most today (then the lowest ids) one more, so
 *    that a node already at the larger share keeps it: a node is "above"
 *    (must give), "below" (must take) or at its share.
 * 2. Evacuation: every replica on a node that is not up goes to an up node
 *    that may host it, the one furthest below its share (then fewest
 *    replicas, then lowest id), on its core with the fewest replicas.
 * 3. Balance: while a node is above its share, one of its replicas goes to
 *    a node below its share that may host it: a replica an earlier move
 *    brought first (that move changes target: no second move), then the
 *    replica on its fullest core, a follower before the leader, the lowest
 *    shard id; the node furthest below. Each move closes the gap by one on
 *    both sides and is never undone, so the count of moves is the sum of
 *    the gaps (minimal) whenever the view allows it. With every node
 *    allowed, a direct move always exists: a node above holds more shards
 *    than a node below, so one of its shards is not on that node.
 * 4. Cores (only with core_moves): within one node, a replica from its
 *    fullest core to its emptiest until they are within one.
 * 5. Leaders: a leader on a node that is not up goes to its up holder with
 *    the fewest leaders; then, while the up nodes' leader counts differ by
 *    two or more, an augmenting path (breadth first, from a node with the
 *    most leaders, along "leads a shard the next node holds") to a node
 *    with two fewer moves one leadership along each edge; then local
 *    search over single transfers and swaps (two shards trading leaders
 *    between two nodes) that lower PHI = W * sum(leaders per node ^ 2) +
 *    sum(leaders per core ^ 2), W larger than any change of the second
 *    sum: the node balance is never traded for the core balance.
 * Every choice breaks ties by the lowest shard id, then node id: the plan
 * is a function of the view.
 */
#include "cluster/planner.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHI_NODE_WEIGHT (1ll << 32)

struct wshard {
	unsigned count;
	unsigned node[PLANNER_MAX_REPLICAS]; /* node indexes */
	uint32_t core[PLANNER_MAX_REPLICAS];
	int leader;                   /* index into node[], -1: not known */
};

struct work {
	const struct planner_input *in;
	unsigned n;                   /* nodes */
	bool up[PLANNER_MAX_NODES];
	unsigned count[PLANNER_MAX_NODES];  /* replicas */
	unsigned quota[PLANNER_MAX_NODES];  /* share of replicas */
	unsigned leads[PLANNER_MAX_NODES];
	size_t core_base[PLANNER_MAX_NODES]; /* into core_count, core_leads */
	unsigned *core_count;
	unsigned *core_leads;
	struct wshard *sh;            /* [shard_count] */
	int *transfer_of;             /* [shard_count]: index in transfers, or -1 */
	int *arrival;                 /* [shard_count * PLANNER_MAX_REPLICAS]: the
				       * move that brought replica k, or -1 */
	uint64_t *first_leader;       /* [shard_count]: leader after the moves */
	struct planner_plan *out;
	size_t move_cap, transfer_cap;
};

static uint64_t node_id(const struct work *w, unsigned i)
{
	return w->in->nodes[i].id;
}

static int index_of(const struct work *w, uint64_t id)
{
	for (unsigned i = 0; i < w->n; i++)
		if (w->in->nodes[i].id == id)
			return (int)i;
	return -1;
}

static int holder(const struct wshard *s, unsigned node)
{
	for (unsigned k = 0; k < s->count; k++)
		if (s->node[k] == node)
			return (int)k;
	return -1;
}

static unsigned *core_count(struct work *w, unsigned node, uint32_t core)
{
	return &w->core_count[w->core_base[node] + core];
}

static unsigned *core_leads(struct work *w, unsigned node, uint32_t core)
{
	return &w->core_leads[w->core_base[node] + core];
}

static bool may_host(const struct work *w, uint32_t s, unsigned node)
{
	if (!w->up[node] || holder(&w->sh[s], node) >= 0)
		return false;
	return !w->in->may_host || w->in->may_host(w->in->data, w->in->shards[s].id,
						    node_id(w, node));
}

/* The core of node i with the fewest replicas (fewest: true) or the most,
 * lowest index first. */
static uint32_t pick_core(struct work *w, unsigned i, bool fewest)
{
	uint32_t best = 0;

	for (uint32_t c = 1; c < w->in->nodes[i].cores; c++) {
		unsigned v = *core_count(w, i, c), b = *core_count(w, i, best);

		if (fewest ? v < b : v > b)
			best = c;
	}
	return best;
}

/* The first reason a balance is not reached is the plan's note. */
__attribute__((format(printf, 2, 3))) static void note(struct work *w, const char *fmt, ...)
{
	va_list ap;

	if (w->out->note[0])
		return;
	va_start(ap, fmt);
	vsnprintf(w->out->note, sizeof w->out->note, fmt, ap);
	va_end(ap);
}

/* ---- validating the view ---------------------------------------------------- */

static int load(struct work *w, char *err, size_t errlen)
{
	const struct planner_input *in = w->in;
	size_t cores = 0;
	unsigned ups = 0;

	if (in->node_count == 0 || in->node_count > PLANNER_MAX_NODES) {
		snprintf(err, errlen, "%u nodes: 1 to %d expected", in->node_count,
			 PLANNER_MAX_NODES);
		return -EINVAL;
	}
	w->n = in->node_count;
	for (unsigned i = 0; i < w->n; i++) {
		const struct planner_node *nd = &in->nodes[i];

		if (nd->id == 0 || index_of(w, nd->id) != (int)i) {
			snprintf(err, errlen, "node id %llu is zero or given twice",
				 (unsigned long long)nd->id);
			return -EINVAL;
		}
		if (nd->cores == 0 || nd->cores > PLANNER_MAX_CORES) {
			snprintf(err, errlen, "node %llu has %u cores", (unsigned long long)nd->id,
				 nd->cores);
			return -EINVAL;
		}
		w->up[i] = nd->state == PLANNER_NODE_UP;
		ups += w->up[i];
		w->core_base[i] = cores;
		cores += nd->cores;
	}
	if (in->replicas == 0 || in->replicas > PLANNER_MAX_REPLICAS || in->replicas > ups) {
		snprintf(err, errlen, "R = %u replicas need R nodes up; %u are", in->replicas, ups);
		return -EINVAL;
	}
	w->core_count = calloc(cores, sizeof *w->core_count);
	w->core_leads = calloc(cores, sizeof *w->core_leads);
	w->sh = calloc(in->shard_count ? in->shard_count : 1, sizeof *w->sh);
	w->transfer_of = calloc(in->shard_count ? in->shard_count : 1, sizeof *w->transfer_of);
	w->first_leader = calloc(in->shard_count ? in->shard_count : 1, sizeof *w->first_leader);
	w->arrival = malloc((in->shard_count ? in->shard_count : 1) * PLANNER_MAX_REPLICAS *
			    sizeof *w->arrival);
	if (!w->core_count || !w->core_leads || !w->sh || !w->transfer_of || !w->first_leader ||
	    !w->arrival) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t s = 0; s < in->shard_count; s++) {
		const struct planner_shard *ps = &in->shards[s];
		struct wshard *ws = &w->sh[s];

		w->transfer_of[s] = -1;
		for (unsigned k = 0; k < PLANNER_MAX_REPLICAS; k++)
			w->arrival[s * PLANNER_MAX_REPLICAS + k] = -1;
		if (ps->replica_count != in->replicas) {
			snprintf(err, errlen, "shard %u has %u replicas, not R = %u (a move under "
				 "way or stopped half-way: finish or cancel it first)", ps->id,
				 ps->replica_count, in->replicas);
			return -EINVAL;
		}
		ws->leader = -1;
		for (unsigned k = 0; k < ps->replica_count; k++) {
			int i = index_of(w, ps->replicas[k].node);

			if (i < 0 || ps->replicas[k].core >= in->nodes[i].cores) {
				snprintf(err, errlen, "shard %u: a replica on node %llu core %u, "
					 "which the view does not have", ps->id,
					 (unsigned long long)ps->replicas[k].node,
					 ps->replicas[k].core);
				return -EINVAL;
			}
			if (holder(ws, (unsigned)i) >= 0) {
				snprintf(err, errlen, "shard %u: two replicas on node %llu", ps->id,
					 (unsigned long long)ps->replicas[k].node);
				return -EINVAL;
			}
			ws->node[ws->count] = (unsigned)i;
			ws->core[ws->count++] = ps->replicas[k].core;
			w->count[i]++;
			(*core_count(w, (unsigned)i, ps->replicas[k].core))++;
			if (ps->leader == ps->replicas[k].node) {
				ws->leader = (int)k;
				w->leads[i]++;
				(*core_leads(w, (unsigned)i, ps->replicas[k].core))++;
			}
		}
		if (ps->leader && ws->leader < 0) {
			snprintf(err, errlen, "shard %u: its leader, node %llu, holds no replica",
				 ps->id, (unsigned long long)ps->leader);
			return -EINVAL;
		}
	}
	return 0;
}

/* Step 1: the share of every up node, from the counts before any move. */
static void shares(struct work *w)
{
	unsigned order[PLANNER_MAX_NODES], ups = 0, total = 0;

	for (unsigned i = 0; i < w->n; i++) {
		total += w->count[i];
		if (w->up[i])
			order[ups++] = i;
	}
	/* Most replicas first, then the lowest id (insertion sort: n <= 64). */
	for (unsigned a = 1; a < ups; a++)
		for (unsigned b = a; b > 0; b--) {
			unsigned x = order[b - 1], y = order[b];

			if (w->count[y] > w->count[x] ||
			    (w->count[y] == w->count[x] && node_id(w, y) < node_id(w, x))) {
				order[b - 1] = y;
				order[b] = x;
			}
		}
	for (unsigned i = 0; i < w->n; i++)
		w->quota[i] = 0;
	for (unsigned r = 0; r < ups; r++)
		w->quota[order[r]] = total / ups + (r < total % ups);
}

/* ---- recording -------------------------------------------------------------- */

static int grow(void **arr, size_t *cap, size_t count, size_t size)
{
	void *p;

	if (count < *cap)
		return 0;
	p = realloc(*arr, (*cap ? *cap * 2 : 16) * size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = *cap ? *cap * 2 : 16;
	return 0;
}

static void lead_set(struct work *w, uint32_t s, int k, int delta)
{
	struct wshard *ws = &w->sh[s];

	w->leads[ws->node[k]] += (unsigned)delta;
	*core_leads(w, ws->node[k], ws->core[k]) += (unsigned)delta;
}

/* Replica k of shard s goes to node `to` (not holding it), core `core`.
 * A replica an earlier move brought is not moved on: that move's target
 * changes instead (safe: the new target never held the shard since, as a
 * node only gives while above its share and takes while below it). */
static int relocate(struct work *w, uint32_t s, unsigned k, unsigned to, uint32_t core)
{
	struct wshard *ws = &w->sh[s];
	int m = w->arrival[s * PLANNER_MAX_REPLICAS + k];
	struct planner_move *mv = &w->out->moves[m];
	unsigned from = ws->node[k];

	w->count[from]--;
	(*core_count(w, from, ws->core[k]))--;
	if (ws->leader == (int)k)
		lead_set(w, s, (int)k, -1);
	ws->node[k] = to;
	ws->core[k] = core;
	w->count[to]++;
	(*core_count(w, to, core))++;
	if (ws->leader == (int)k)
		lead_set(w, s, (int)k, +1);
	/* A move of this shard's leader after move m named this replica,
	 * where m put it, as the next leader: it is now where it goes. */
	for (size_t i = (size_t)m; i < w->out->move_count; i++)
		if (w->out->moves[i].shard == mv->shard && w->out->moves[i].leader &&
		    w->out->moves[i].next_leader == mv->to)
			w->out->moves[i].next_leader = node_id(w, to);
	mv->to = node_id(w, to);
	mv->to_core = core;
	return 0;
}

/* Moves replica k of shard s to node `to`, core `core`. */
static int move(struct work *w, uint32_t s, unsigned k, unsigned to, uint32_t core)
{
	struct wshard *ws = &w->sh[s];
	unsigned from = ws->node[k];
	struct planner_move *mv;

	if (w->arrival[s * PLANNER_MAX_REPLICAS + k] >= 0)
		return relocate(w, s, k, to, core);
	if (grow((void **)&w->out->moves, &w->move_cap, w->out->move_count, sizeof *mv) != 0)
		return -ENOMEM;
	w->arrival[s * PLANNER_MAX_REPLICAS + k] = (int)w->out->move_count;
	mv = &w->out->moves[w->out->move_count++];
	memset(mv, 0, sizeof *mv); /* padding too: plans compare as bytes */
	mv->shard = w->in->shards[s].id;
	mv->from = node_id(w, from);
	mv->from_core = ws->core[k];
	mv->to = node_id(w, to);
	mv->to_core = core;
	mv->leader = ws->leader == (int)k;
	w->count[from]--;
	(*core_count(w, from, ws->core[k]))--;
	if (mv->leader)
		lead_set(w, s, (int)k, -1);
	ws->node[k] = to;
	ws->core[k] = core;
	w->count[to]++;
	(*core_count(w, to, core))++;
	if (mv->leader && from != to) {
		/* The shard's leader hands its leadership to another voter
		 * before it goes: assume the up one leading fewest (the target
		 * only when there is no other). */
		int next = (int)k;

		for (unsigned j = 0; j < ws->count; j++) {
			if (j == k || !w->up[ws->node[j]])
				continue;
			if (next == (int)k || w->leads[ws->node[j]] < w->leads[ws->node[next]] ||
			    (w->leads[ws->node[j]] == w->leads[ws->node[next]] &&
			     node_id(w, ws->node[j]) < node_id(w, ws->node[next])))
				next = (int)j;
		}
		ws->leader = next;
	}
	if (mv->leader) {
		lead_set(w, s, ws->leader, +1);
		mv->next_leader = node_id(w, ws->node[ws->leader]);
	}
	return 0;
}

/* Shard s's leadership to its replica k, in the counts only. */
static void lead_move(struct work *w, uint32_t s, int k)
{
	lead_set(w, s, w->sh[s].leader, -1);
	w->sh[s].leader = k;
	lead_set(w, s, k, +1);
}

/* Hands shard s's leadership to its replica k, and records it: one
 * transfer per shard, from its leader after the moves to the last holder
 * chosen (dropped at the end when that is where it started). */
static int transfer(struct work *w, uint32_t s, int k)
{
	struct planner_plan *p = w->out;
	int t = w->transfer_of[s];

	lead_move(w, s, k);
	if (t < 0) {
		if (grow((void **)&p->transfers, &w->transfer_cap, p->transfer_count,
			 sizeof *p->transfers) != 0)
			return -ENOMEM;
		t = (int)p->transfer_count++;
		memset(&p->transfers[t], 0, sizeof p->transfers[t]);
		w->transfer_of[s] = t;
		p->transfers[t].shard = w->in->shards[s].id;
		p->transfers[t].from = w->first_leader[s];
	}
	p->transfers[t].to = node_id(w, w->sh[s].node[k]);
	p->transfers[t].to_core = w->sh[s].core[k];
	return 0;
}

/* ---- replicas ------------------------------------------------------------- */

/* Step 2: every replica off the nodes that are not up. */
static int evacuate(struct work *w)
{
	for (uint32_t s = 0; s < w->in->shard_count; s++) {
		struct wshard *ws = &w->sh[s];

		for (unsigned k = 0; k < ws->count; k++) {
			int best = -1;

			if (w->up[ws->node[k]])
				continue;
			for (unsigned i = 0; i < w->n; i++) {
				long gap, best_gap;

				if (!may_host(w, s, i))
					continue;
				gap = (long)w->count[i] - (long)w->quota[i];
				best_gap = best < 0 ? 0 : (long)w->count[best] - (long)w->quota[best];
				if (best < 0 || gap < best_gap ||
				    (gap == best_gap && w->count[i] < w->count[best]))
					best = (int)i;
			}
			if (best < 0) {
				note(w, "shard %u: no up node may take its replica on node %llu",
				     w->in->shards[s].id,
				     (unsigned long long)node_id(w, ws->node[k]));
				continue;
			}
			if (move(w, s, k, (unsigned)best, pick_core(w, (unsigned)best, true)) != 0)
				return -ENOMEM;
		}
	}
	return 0;
}

/* Step 3's choice of a replica k of shard s on node a to give to node b:
 * does it beat the best so far? A replica an earlier move brought (that
 * move only changes target: no move more), then the node furthest below
 * its share, then the replica on a's fullest core, then a follower; else
 * the earlier. */
static bool better(struct work *w, unsigned a, uint32_t s, unsigned k, unsigned b,
		   uint32_t best_s, unsigned best_k, unsigned best_b)
{
	unsigned gap = w->quota[b] - w->count[b], best_gap = w->quota[best_b] - w->count[best_b];
	unsigned cc = *core_count(w, a, w->sh[s].core[k]);
	unsigned best_cc = *core_count(w, a, w->sh[best_s].core[best_k]);
	bool lead = w->sh[s].leader == (int)k, best_lead = w->sh[best_s].leader == (int)best_k;
	bool came = w->arrival[s * PLANNER_MAX_REPLICAS + k] >= 0;
	bool best_came = w->arrival[best_s * PLANNER_MAX_REPLICAS + best_k] >= 0;

	if (came != best_came)
		return came;
	if (gap != best_gap)
		return gap > best_gap;
	if (cc != best_cc)
		return cc > best_cc;
	return !lead && best_lead;
}

/* Step 3: from the nodes above their share to those below. */
static int balance(struct work *w)
{
	bool stuck[PLANNER_MAX_NODES] = { false };

	for (;;) {
		int a = -1, best_b = -1;
		uint32_t best_s = 0;
		unsigned best_k = 0;

		for (unsigned i = 0; i < w->n; i++)
			if (w->up[i] && !stuck[i] && w->count[i] > w->quota[i] &&
			    (a < 0 || w->count[i] - w->quota[i] >
					      w->count[a] - w->quota[(unsigned)a]))
				a = (int)i;
		if (a < 0)
			return 0;
		for (uint32_t s = 0; s < w->in->shard_count; s++) {
			const struct wshard *ws = &w->sh[s];
			int k = holder(ws, (unsigned)a), b = -1;

			if (k < 0)
				continue;
			for (unsigned i = 0; i < w->n; i++)
				if (w->count[i] < w->quota[i] && may_host(w, s, i) &&
				    (b < 0 || w->quota[i] - w->count[i] >
						      w->quota[b] - w->count[b]))
					b = (int)i;
			if (b < 0)
				continue;
			if (best_b >= 0 && !better(w, (unsigned)a, s, (unsigned)k, (unsigned)b,
						   best_s, best_k, (unsigned)best_b))
				continue;
			best_b = b;
			best_s = s;
			best_k = (unsigned)k;
		}
		if (best_b < 0) {
			stuck[a] = true;
			note(w, "node %llu stays above its share of %u replicas: no node below "
			     "its share may take one of them",
			     (unsigned long long)node_id(w, (unsigned)a), w->quota[a]);
			continue;
		}
		if (move(w, best_s, best_k, (unsigned)best_b,
			 pick_core(w, (unsigned)best_b, true)) != 0)
			return -ENOMEM;
	}
}

/* Step 4: within each node, from its fullest core to its emptiest. */
static int even_cores(struct work *w)
{
	for (unsigned i = 0; i < w->n; i++) {
		while (w->up[i]) {
			uint32_t hi = pick_core(w, i, false), lo = pick_core(w, i, true);
			int best = -1;
			unsigned best_k = 0;

			if (*core_count(w, i, hi) <= *core_count(w, i, lo) + 1)
				break;
			for (uint32_t s = 0; s < w->in->shard_count; s++) {
				int k = holder(&w->sh[s], i);

				if (k < 0 || w->sh[s].core[k] != hi)
					continue;
				if (best < 0 || (w->sh[best].leader == (int)best_k &&
						 w->sh[s].leader != k)) {
					best = (int)s;
					best_k = (unsigned)k;
				}
			}
			if (move(w, (uint32_t)best, best_k, i, lo) != 0)
				return -ENOMEM;
		}
	}
	return 0;
}

/* ---- leaders -------------------------------------------------------------- */

/* PHI's change when node i's core c gains (+1) or loses (-1) a leader. */
static int64_t lead_phi(struct work *w, unsigned i, uint32_t c, int d)
{
	int64_t n = w->leads[i], k = *core_leads(w, i, c);

	return d > 0 ? PHI_NODE_WEIGHT * (2 * n + 1) + (2 * k + 1)
		     : PHI_NODE_WEIGHT * (1 - 2 * n) + (1 - 2 * k);
}

/* PHI's change if shard s's leadership went to its replica k. */
static int64_t transfer_phi(struct work *w, uint32_t s, int k)
{
	struct wshard *ws = &w->sh[s];
	int64_t d = lead_phi(w, ws->node[ws->leader], ws->core[ws->leader], -1);

	lead_set(w, s, ws->leader, -1);
	d += lead_phi(w, ws->node[k], ws->core[k], +1);
	lead_set(w, s, ws->leader, +1);
	return d;
}

/* Step 5a: leaders off the nodes that are not up. */
static int leaders_off(struct work *w)
{
	for (uint32_t s = 0; s < w->in->shard_count; s++) {
		struct wshard *ws = &w->sh[s];
		int best = -1;

		if (ws->leader < 0 || w->up[ws->node[ws->leader]])
			continue;
		for (unsigned k = 0; k < ws->count; k++)
			if (w->up[ws->node[k]] &&
			    (best < 0 || w->leads[ws->node[k]] < w->leads[ws->node[best]]))
				best = (int)k;
		if (best >= 0 && transfer(w, s, best) != 0)
			return -ENOMEM;
	}
	return 0;
}

/* Step 5b: augmenting paths until the up nodes' leader counts are within
 * one (or no path is left). */
static int leaders_even(struct work *w)
{
	uint32_t S = w->in->shard_count;
	int *next = malloc((S ? S : 1) * sizeof *next);
	int rv = 0;

	if (!next)
		return -ENOMEM;
	for (uint32_t round = 0; round <= S; round++) {
		int head[PLANNER_MAX_NODES], from_node[PLANNER_MAX_NODES];
		uint32_t via[PLANNER_MAX_NODES];
		unsigned queue[PLANNER_MAX_NODES], most = 0, least = ~0u;
		int target = -1;
		unsigned start;

		for (unsigned i = 0; i < w->n; i++) {
			head[i] = -1;
			if (w->up[i]) {
				most = w->leads[i] > most ? w->leads[i] : most;
				least = w->leads[i] < least ? w->leads[i] : least;
			}
		}
		if (most <= least + 1)
			break;
		/* Shards by leader, in increasing id order. */
		for (uint32_t s = S; s-- > 0;)
			if (w->sh[s].leader >= 0) {
				unsigned l = w->sh[s].node[w->sh[s].leader];

				next[s] = head[l];
				head[l] = (int)s;
			}
		for (start = 0; start < w->n && target < 0; start++) {
			unsigned qh = 0, qt = 0;
			bool seen[PLANNER_MAX_NODES] = { false };

			if (!w->up[start] || w->leads[start] != most)
				continue;
			seen[start] = true;
			queue[qt++] = start;
			while (qh < qt && target < 0) {
				unsigned u = queue[qh++];

				for (int s = head[u]; s >= 0 && target < 0; s = next[s]) {
					const struct wshard *ws = &w->sh[s];

					for (unsigned k = 0; k < ws->count && target < 0; k++) {
						unsigned v = ws->node[k];

						if (!w->up[v] || seen[v])
							continue;
						seen[v] = true;
						from_node[v] = (int)u;
						via[v] = (uint32_t)s;
						if (w->leads[v] + 2 <= most)
							target = (int)v;
						else
							queue[qt++] = v;
					}
				}
			}
		}
		if (target < 0)
			break;
		/* start + 1 after the loop: walk back from the target to it,
		 * each edge's shard to the edge's head. */
		start--;
		for (unsigned v = (unsigned)target; rv == 0 && v != start;
		     v = (unsigned)from_node[v])
			rv = transfer(w, via[v], holder(&w->sh[via[v]], v));
		if (rv != 0)
			break;
	}
	free(next);
	return rv;
}

/* Step 5c: single transfers, then swaps, while PHI goes down. */
static int leaders_spread(struct work *w)
{
	uint32_t S = w->in->shard_count;

	for (uint32_t round = 0; round < 4 * S + 16; round++) {
		int64_t best = 0;
		uint32_t bs = 0, bs2 = 0;
		int bk = -1, bk2 = -1;

		for (uint32_t s = 0; s < S; s++) {
			const struct wshard *ws = &w->sh[s];

			for (unsigned k = 0; ws->leader >= 0 && k < ws->count; k++) {
				int64_t d;

				if ((int)k == ws->leader || !w->up[ws->node[k]])
					continue;
				d = transfer_phi(w, s, (int)k);
				if (d < best) {
					best = d;
					bs = s;
					bk = (int)k;
				}
			}
		}
		if (bk >= 0) {
			if (transfer(w, bs, bk) != 0)
				return -ENOMEM;
			continue;
		}
		/* Swaps: x led by node n goes to node m, y led by m to n. Only
		 * an x whose core on n leads two more than n's emptiest core:
		 * else n's part of the change is not negative, and a swap
		 * whose gain is m's is found with the roles turned. */
		for (uint32_t x = 0; x < S; x++) {
			const struct wshard *xs = &w->sh[x];
			unsigned n, fewest = ~0u;

			if (xs->leader < 0 || !w->up[n = xs->node[xs->leader]])
				continue;
			for (uint32_t c = 0; c < w->in->nodes[n].cores; c++)
				if (*core_leads(w, n, c) < fewest)
					fewest = *core_leads(w, n, c);
			if (*core_leads(w, n, xs->core[xs->leader]) < fewest + 2)
				continue;
			for (uint32_t y = 0; y < S; y++) {
				const struct wshard *ys = &w->sh[y];
				int kn, km;
				unsigned m;
				int64_t d;

				if (y == x || ys->leader < 0 || (m = ys->node[ys->leader]) == n ||
				    !w->up[m] || (kn = holder(ys, n)) < 0 ||
				    ys->core[kn] == xs->core[xs->leader] ||
				    (km = holder(xs, m)) < 0)
					continue;
				d = transfer_phi(w, x, km);
				lead_move(w, x, km);
				d += transfer_phi(w, y, kn);
				lead_move(w, x, holder(xs, n));
				if (d < best) {
					best = d;
					bs = x;
					bk = km;
					bs2 = y;
					bk2 = kn;
				}
			}
		}
		if (bk < 0)
			break;
		if (transfer(w, bs, bk) != 0 || transfer(w, bs2, bk2) != 0)
			return -ENOMEM;
	}
	return 0;
}

/* ---- the result --------------------------------------------------------------- */

static bool within_one(const unsigned *v, size_t n, const bool *use)
{
	unsigned lo = ~0u, hi = 0;

	for (size_t i = 0; i < n; i++)
		if (!use || use[i]) {
			lo = v[i] < lo ? v[i] : lo;
			hi = v[i] > hi ? v[i] : hi;
		}
	return hi <= lo + 1 || lo == ~0u;
}

static void verdict(struct work *w)
{
	struct planner_plan *p = w->out;
	size_t kept = 0;

	for (size_t t = 0; t < p->transfer_count; t++)
		if (p->transfers[t].to != p->transfers[t].from)
			p->transfers[kept++] = p->transfers[t];
	p->transfer_count = kept;

	p->replicas_balanced = within_one(w->count, w->n, w->up);
	p->leaders_balanced = within_one(w->leads, w->n, w->up);
	p->cores_balanced = p->leader_cores_balanced = true;
	for (unsigned i = 0; i < w->n; i++) {
		if (!w->up[i]) {
			p->replicas_balanced &= w->count[i] == 0;
			p->leaders_balanced &= w->leads[i] == 0;
			continue;
		}
		p->cores_balanced &= within_one(w->core_count + w->core_base[i],
						w->in->nodes[i].cores, NULL);
		p->leader_cores_balanced &= within_one(w->core_leads + w->core_base[i],
						       w->in->nodes[i].cores, NULL);
	}
	if (!p->cores_balanced && !w->in->core_moves)
		note(w, "the cores of a node stay uneven: evening them needs moves between two "
		     "cores of one node");
	if (!p->leaders_balanced)
		note(w, "leaders stay uneven: no transfer path between the nodes with most and "
		     "fewest");
}

int planner_plan(const struct planner_input *in, struct planner_plan *out, char *err,
		 size_t errlen)
{
	struct work w = { .in = in, .out = out };
	int rv;

	memset(out, 0, sizeof *out);
	rv = load(&w, err, errlen);
	if (rv != 0)
		goto done;
	shares(&w);
	rv = evacuate(&w);
	if (rv == 0)
		rv = balance(&w);
	if (rv == 0 && in->core_moves)
		rv = even_cores(&w);
	for (uint32_t s = 0; s < in->shard_count; s++)
		w.first_leader[s] = w.sh[s].leader >= 0 ? node_id(&w, w.sh[s].node[w.sh[s].leader])
							: 0;
	if (rv == 0)
		rv = leaders_off(&w);
	if (rv == 0)
		rv = leaders_even(&w);
	if (rv == 0)
		rv = leaders_spread(&w);
	if (rv == 0)
		verdict(&w);
	else if (rv == -ENOMEM)
		snprintf(err, errlen, "out of memory");
done:
	if (rv != 0)
		planner_plan_free(out);
	free(w.core_count);
	free(w.core_leads);
	free(w.sh);
	free(w.transfer_of);
	free(w.first_leader);
	free(w.arrival);
	return rv;
}

void planner_plan_free(struct planner_plan *p)
{
	free(p->moves);
	free(p->transfers);
	p->moves = NULL;
	p->transfers = NULL;
	p->move_count = p->transfer_count = 0;
}

static struct planner_shard *shard_by_id(struct planner_shard *shards, uint32_t count,
					 uint32_t id)
{
	if (id < count && shards[id].id == id)
		return &shards[id];
	for (uint32_t s = 0; s < count; s++)
		if (shards[s].id == id)
			return &shards[s];
	return NULL;
}

void planner_apply(struct planner_shard *shards, uint32_t shard_count,
		   const struct planner_plan *p)
{
	for (size_t i = 0; i < p->move_count; i++) {
		const struct planner_move *mv = &p->moves[i];
		struct planner_shard *s = shard_by_id(shards, shard_count, mv->shard);

		for (unsigned k = 0; s && k < s->replica_count; k++)
			if (s->replicas[k].node == mv->from) {
				s->replicas[k] = (struct planner_replica){ mv->to, mv->to_core };
				break;
			}
		if (s && mv->leader)
			s->leader = mv->next_leader;
	}
	for (size_t i = 0; i < p->transfer_count; i++) {
		struct planner_shard *s = shard_by_id(shards, shard_count, p->transfers[i].shard);

		if (s)
			s->leader = p->transfers[i].to;
	}
}
