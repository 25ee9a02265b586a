/*
 * The safety checker, run after every raft_step() of every node:
 *
 *   Election Safety     at most one leader per term.
 *   Log Matching        two logs holding an entry with the same index and
 *                       term are identical up to it. Each node's log is
 *                       mirrored as a chain of prefix hashes; a global
 *                       table maps (index, term) to the prefix hash, so a
 *                       mismatch anywhere in any log is caught the moment
 *                       the entry is written.
 *   Leader Completeness a node elected leader of term t holds every entry
 *                       committed in a term before t (prefix hash at the
 *                       highest such index).
 *   State Machine Safety no two nodes apply different entries at one index;
 *                       no two nodes consider different entries committed
 *                       at one index.
 *   Commit monotonic    a node's commit index never decreases (within one
 *                       incarnation: commit is volatile) and never passes
 *                       its last log index.
 *   Acknowledged writes every acknowledged write is committed at the index
 *                       and term it was given (and hence, by Leader
 *                       Completeness, in every later leader's log).
 *   Linearizable reads  a read returns a value whose write is at or after
 *                       every write acknowledged before the read began, and
 *                       at or after the value of every read that completed
 *                       before it began (positions are log indexes, the
 *                       total order State Machine Safety establishes).
 *   Durability          the disk holds the term and vote a node acts
 *                       under; an acknowledgement of index i is backed by
 *                       the WAL and matches the leader's log up to i,
 *                       never past its end (check_durable).
 *   Commit rule         when a leader's commit index moves to c, a
 *                       majority of its configuration's voters hold entry c
 *                       on disk (check_commit_durable).
 * Also: the update contract (persist lists every log change, so the mirror
 * always ends at the library's last index).
 */
#include "tests/sim/sim.h"
#include "tests/sim/world_private.h"

#include <stdlib.h>
#include <string.h>

struct gslot {
	uint64_t index;
	uint64_t term;
	uint64_t hash;
	bool used;
};

struct sim_gtable {
	struct gslot *slots;
	size_t cap;
	size_t n;
};

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		abort();
	return p;
}

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t check_entry_hash(const struct raft_entry *e)
{
	uint64_t h = mix(e->term * 31 + e->type) ^ mix(e->len + 7);
	const uint8_t *p = e->data;
	for (uint32_t i = 0; i < e->len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return mix(h) | 1; /* never 0: 0 means unknown */
}

static uint64_t chain(uint64_t prev, const struct raft_entry *e)
{
	return mix(prev * 0x9e3779b97f4a7c15ULL ^ check_entry_hash(e)) | 1;
}

static struct gslot *gfind(struct sim_gtable *t, uint64_t index,
			   uint64_t term)
{
	size_t mask = t->cap - 1;
	size_t i = mix(index * 1000003ULL ^ term) & mask;
	while (t->slots[i].used &&
	       (t->slots[i].index != index || t->slots[i].term != term))
		i = (i + 1) & mask;
	return &t->slots[i];
}

static void gput(struct sim_gtable *t, uint64_t index, uint64_t term,
		 uint64_t hash)
{
	if (2 * (t->n + 1) > t->cap) {
		struct sim_gtable bigger = {
			.slots = xcalloc(t->cap * 2, sizeof(struct gslot)),
			.cap = t->cap * 2};
		for (size_t i = 0; i < t->cap; i++)
			if (t->slots[i].used)
				*gfind(&bigger, t->slots[i].index,
				       t->slots[i].term) = t->slots[i];
		free(t->slots);
		t->slots = bigger.slots;
		t->cap = bigger.cap;
	}
	struct gslot *g = gfind(t, index, term);
	g->used = true;
	g->index = index;
	g->term = term;
	g->hash = hash;
	t->n++;
}

void check_reset(struct sim *s)
{
	s->table = xcalloc(1, sizeof(*s->table));
	s->table->cap = 1024;
	s->table->slots = xcalloc(s->table->cap, sizeof(struct gslot));
}

void check_free(struct sim *s)
{
	if (s->table)
		free(s->table->slots);
	free(s->table);
	free(s->leader_of_term);
	free(s->committed);
	free(s->applied_hash);
}

static void grow_index(struct sim *s, uint64_t index)
{
	if (index < s->cap_index)
		return;
	size_t cap = s->cap_index ? s->cap_index : 256;
	while (cap <= index)
		cap *= 2;
	s->committed = realloc(s->committed, cap * sizeof(*s->committed));
	s->applied_hash = realloc(s->applied_hash,
				  cap * sizeof(*s->applied_hash));
	if (!s->committed || !s->applied_hash)
		abort();
	memset(s->committed + s->cap_index, 0,
	       (cap - s->cap_index) * sizeof(*s->committed));
	memset(s->applied_hash + s->cap_index, 0,
	       (cap - s->cap_index) * sizeof(*s->applied_hash));
	s->cap_index = cap;
}

static void mirror_grow(struct sim_node *n, uint64_t index)
{
	if (index < n->mirror_cap)
		return;
	uint64_t cap = n->mirror_cap ? n->mirror_cap : 256;
	while (cap <= index)
		cap *= 2;
	n->mirror = realloc(n->mirror, cap * sizeof(*n->mirror));
	if (!n->mirror)
		abort();
	memset(n->mirror + n->mirror_cap, 0,
	       (cap - n->mirror_cap) * sizeof(*n->mirror));
	n->mirror_cap = cap;
}

/* Start n's mirror at a snapshot (index, term) whose prefix must be known. */
static bool mirror_reset(struct sim *s, struct sim_node *n, uint64_t index,
			 uint64_t term)
{
	uint64_t hash = 0;
	if (index > 0) {
		struct gslot *g = gfind(s->table, index, term);
		if (!g->used) {
			sim_fail(s, "node %llu: snapshot at %llu term %llu of "
				 "an entry nobody wrote",
				 (unsigned long long)n->id,
				 (unsigned long long)index,
				 (unsigned long long)term);
			return false;
		}
		hash = g->hash;
	}
	mirror_grow(n, index);
	n->mirror_lo = n->mirror_hi = index;
	n->mirror[index].term = term;
	n->mirror[index].hash = hash;
	return true;
}

/* Log Matching, entry by entry, as entries are written. */
static void mirror_write(struct sim *s, struct sim_node *n, uint64_t from,
			 const struct raft_entry *e, uint64_t count)
{
	if (from <= n->mirror_lo || from > n->mirror_hi + 1) {
		sim_fail(s, "node %llu: write at %llu outside log %llu..%llu",
			 (unsigned long long)n->id, (unsigned long long)from,
			 (unsigned long long)n->mirror_lo,
			 (unsigned long long)n->mirror_hi);
		return;
	}
	mirror_grow(n, from + count);
	uint64_t prev = n->mirror[from - 1].hash;
	for (uint64_t i = 0; i < count; i++) {
		uint64_t index = from + i;
		uint64_t h = chain(prev, &e[i]);
		struct gslot *g = gfind(s->table, index, e[i].term);
		s->checks++;
		if (g->used && g->hash != h) {
			sim_fail(s, "log matching: node %llu holds a different "
				 "log up to index %llu term %llu",
				 (unsigned long long)n->id,
				 (unsigned long long)index,
				 (unsigned long long)e[i].term);
			return;
		}
		if (!g->used)
			gput(s->table, index, e[i].term, h);
		n->mirror[index].term = e[i].term;
		n->mirror[index].hash = h;
		prev = h;
	}
	n->mirror_hi = from + count - 1;
}

void check_mirror_restore(struct sim *s, struct sim_node *n)
{
	const struct sim_disk *d = &n->disk;
	if (mirror_reset(s, n, d->snap.index, d->snap.term) && d->n)
		mirror_write(s, n, d->snap.index + 1, d->entries, d->n);
}

void check_update(struct sim *s, struct sim_node *n,
		  const struct raft_update *up)
{
	if (up->snapshot &&
	    !mirror_reset(s, n, up->snapshot->index, up->snapshot->term))
		return;
	if (up->n_persist)
		mirror_write(s, n, up->persist_first, up->persist,
			     up->n_persist);
}

/* Leader Completeness for a node that just became leader of term t. */
static void check_new_leader(struct sim *s, struct sim_node *n, uint64_t t)
{
	uint64_t j = s->max_commit;
	while (j > 0 && s->committed[j].term >= t)
		j--; /* committed[].term holds the term it was committed in */
	if (j == 0 || j < n->mirror_lo)
		return;
	s->checks++;
	if (j > n->mirror_hi || n->mirror[j].hash != s->committed[j].hash)
		sim_fail(s, "leader completeness: node %llu leads term %llu "
			 "without entry %llu committed earlier",
			 (unsigned long long)n->id, (unsigned long long)t,
			 (unsigned long long)j);
}

void check_after_step(struct sim *s, struct sim_node *n)
{
	if (!n->up || s->failed)
		return;
	struct raft *r = n->raft;
	uint64_t last = raft_last_index(r);
	uint64_t commit = raft_commit_index(r);
	uint64_t term = raft_term(r);
	s->checks += 3;
	if (last != n->mirror_hi) {
		sim_fail(s, "node %llu: log ends at %llu but updates said %llu",
			 (unsigned long long)n->id, (unsigned long long)last,
			 (unsigned long long)n->mirror_hi);
		return;
	}
	if (commit < n->seen_commit || commit > last) {
		sim_fail(s, "node %llu: commit index %llu after %llu (last %llu)",
			 (unsigned long long)n->id, (unsigned long long)commit,
			 (unsigned long long)n->seen_commit,
			 (unsigned long long)last);
		return;
	}
	grow_index(s, commit);
	uint64_t from = n->seen_commit > n->mirror_lo ? n->seen_commit
						      : n->mirror_lo;
	for (uint64_t i = from + 1; i <= commit; i++) {
		struct sim_hash *c = &s->committed[i];
		s->checks++;
		if (c->hash == 0) {
			c->hash = n->mirror[i].hash;
			c->term = term; /* the term it was committed in */
		} else if (c->hash != n->mirror[i].hash) {
			sim_fail(s, "state machine safety: node %llu committed "
				 "a different entry at index %llu",
				 (unsigned long long)n->id,
				 (unsigned long long)i);
			return;
		}
	}
	n->seen_commit = commit;
	if (commit > s->max_commit)
		s->max_commit = commit;
	int role = raft_role(r);
	if (role == RAFT_LEADER) {
		if (term >= s->cap_terms) {
			size_t cap = s->cap_terms ? s->cap_terms : 64;
			while (cap <= term)
				cap *= 2;
			s->leader_of_term = realloc(s->leader_of_term,
						    cap * sizeof(uint64_t));
			if (!s->leader_of_term)
				abort();
			memset(s->leader_of_term + s->cap_terms, 0,
			       (cap - s->cap_terms) * sizeof(uint64_t));
			s->cap_terms = cap;
		}
		s->checks++;
		if (s->leader_of_term[term] == 0) {
			s->leader_of_term[term] = n->id;
			s->elections++;
			if (term + 1 > s->cap_terms_used)
				s->cap_terms_used = term + 1;
		} else if (s->leader_of_term[term] != n->id) {
			sim_fail(s, "election safety: nodes %llu and %llu both "
				 "lead term %llu",
				 (unsigned long long)s->leader_of_term[term],
				 (unsigned long long)n->id,
				 (unsigned long long)term);
			return;
		}
		if (n->seen_role != RAFT_LEADER)
			check_new_leader(s, n, term);
	}
	n->seen_role = role;
}

void check_apply(struct sim *s, struct sim_node *n, uint64_t index,
		 const struct raft_entry *e)
{
	grow_index(s, index);
	uint64_t h = check_entry_hash(e);
	s->checks++;
	if (s->applied_hash[index] == 0)
		s->applied_hash[index] = h;
	else if (s->applied_hash[index] != h)
		sim_fail(s, "state machine safety: node %llu applied a "
			 "different entry at index %llu",
			 (unsigned long long)n->id, (unsigned long long)index);
}

static void points_add(struct sim_points *p, uint64_t time, uint64_t pos)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->v = realloc(p->v, p->cap * sizeof(*p->v));
		if (!p->v)
			abort();
	}
	if (p->n && p->v[p->n - 1].pos > pos)
		pos = p->v[p->n - 1].pos; /* keep the prefix maximum */
	p->v[p->n].time = time;
	p->v[p->n].pos = pos;
	p->n++;
}

/* Highest position among points strictly before time t. */
static uint64_t points_before(const struct sim_points *p, uint64_t t)
{
	size_t lo = 0, hi = p->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (p->v[mid].time < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? p->v[lo - 1].pos : 0;
}

void check_ack(struct sim *s, struct sim_write *w)
{
	s->checks++;
	grow_index(s, w->index);
	const struct sim_hash *c = &s->committed[w->index];
	if (c->hash == 0 || s->nodes[w->node].mirror[w->index].term != w->term) {
		sim_fail(s, "write %llu acknowledged at %llu but not committed",
			 (unsigned long long)w->value,
			 (unsigned long long)w->index);
		return;
	}
	if (w->index > s->max_acked)
		s->max_acked = w->index;
	points_add(&s->acks[w->key], s->now, w->applied_at);
}

void check_read(struct sim *s, const struct sim_read *rd, uint64_t value,
		uint64_t pos)
{
	(void)value;
	s->checks += 2;
	uint64_t acked = points_before(&s->acks[rd->key], rd->invoke);
	if (pos < acked) {
		sim_fail(s, "linearizability: read %llu of key %u (node %llu, "
			 "index %llu) saw position %llu, but a write at %llu "
			 "was acknowledged before it began",
			 (unsigned long long)rd->id, rd->key,
			 (unsigned long long)rd->node,
			 (unsigned long long)rd->index, (unsigned long long)pos,
			 (unsigned long long)acked);
		return;
	}
	uint64_t seen = points_before(&s->read_done[rd->key], rd->invoke);
	if (pos < seen) {
		sim_fail(s, "linearizability: read %llu of key %u saw position "
			 "%llu, older than %llu seen by a read that finished "
			 "before it began",
			 (unsigned long long)rd->id, rd->key,
			 (unsigned long long)pos, (unsigned long long)seen);
		return;
	}
	points_add(&s->read_done[rd->key], s->now, pos);
}

static bool disk_term_at(const struct sim_disk *d, uint64_t index,
			 uint64_t *term)
{
	if (index == d->snap.index) {
		*term = d->snap.term;
		return true;
	}
	if (index < d->snap.index || index > world_disk_last(d))
		return false;
	*term = d->entries[index - d->snap.index - 1].term;
	return true;
}

/*
 * What a node tells others must be backed by its disk (raft.h's contract):
 * the term and vote it acts under are the durable ones, and an
 * acknowledgement of index i means the WAL holds the log up to i. An
 * acknowledgement also claims that the log up to i matches the leader's
 * (§5.3), checked against the leader's own log while it still leads.
 */
void check_durable(struct sim *s, struct sim_node *n,
			  const struct raft_update *up)
{
	const struct sim_disk *d = &n->disk;
	struct raft *r = n->raft;
	s->checks++;
	if (d->hs.term != raft_term(r) || d->hs.vote != raft_vote(r)) {
		sim_fail(s, "node %llu: hard state term %llu vote %llu acted "
			 "on, but the disk holds term %llu vote %llu",
			 (unsigned long long)n->id,
			 (unsigned long long)raft_term(r),
			 (unsigned long long)raft_vote(r),
			 (unsigned long long)d->hs.term,
			 (unsigned long long)d->hs.vote);
		return;
	}
	for (size_t i = 0; i < up->n_msgs; i++) {
		const struct raft_msg *m = &up->msgs[i];
		if (m->type != RAFT_MSG_APPEND_RESP || m->reject || m->index == 0)
			continue;
		uint64_t on_disk = 0, in_log = 0;
		s->checks++;
		if (m->index < d->snap.index)
			continue; /* inside the durable snapshot */
		if (!disk_term_at(d, m->index, &on_disk) ||
		    !raft_term_at(r, m->index, &in_log) || on_disk != in_log) {
			sim_fail(s, "node %llu: acknowledged index %llu that "
				 "its disk does not hold",
				 (unsigned long long)n->id,
				 (unsigned long long)m->index);
			return;
		}
		const struct sim_node *l = m->to <= SIM_MAX_NODES
						   ? &s->nodes[m->to]
						   : NULL;
		if (!l || !l->up || raft_role(l->raft) != RAFT_LEADER ||
		    raft_term(l->raft) != m->term)
			continue;
		if (m->index > l->mirror_hi) {
			sim_fail(s, "node %llu: acknowledged index %llu to "
				 "leader %llu, whose log ends at %llu",
				 (unsigned long long)n->id,
				 (unsigned long long)m->index,
				 (unsigned long long)l->id,
				 (unsigned long long)l->mirror_hi);
			return;
		}
		if (m->index < l->mirror_lo || m->index < n->mirror_lo ||
		    m->index > n->mirror_hi)
			continue;
		if (n->mirror[m->index].hash != l->mirror[m->index].hash) {
			sim_fail(s, "node %llu: acknowledged index %llu to "
				 "leader %llu, but its log differs there",
				 (unsigned long long)n->id,
				 (unsigned long long)m->index,
				 (unsigned long long)l->id);
			return;
		}
	}
}

/*
 * The commit rule, checked where the leader applies it (§5.3, §5.4.2): when
 * a leader's commit index moves to c, a majority of the voters of its
 * configuration hold entry c durably (on disk, with the leader's term for
 * it, or inside their snapshot). Learners never count.
 */
void check_commit_durable(struct sim *s, struct sim_node *n)
{
	struct raft *r = n->raft;
	uint64_t c = raft_commit_index(r), term;
	if (c == 0 || !raft_term_at(r, c, &term))
		return;
	const struct raft_conf *conf = raft_conf(r);
	int voters = 0, holding = 0;
	for (uint32_t i = 0; i < conf->n; i++) {
		if (conf->servers[i].role != RAFT_VOTER)
			continue;
		voters++;
		uint64_t id = conf->servers[i].id, on_disk;
		if (id > SIM_MAX_NODES || !s->nodes[id].exists)
			continue;
		const struct sim_disk *d = &s->nodes[id].disk;
		if (c < d->snap.index ||
		    (disk_term_at(d, c, &on_disk) && on_disk == term))
			holding++;
	}
	s->checks++;
	if (holding < voters / 2 + 1)
		sim_fail(s, "commit rule: leader %llu committed index %llu, "
			 "held durably by %d of %d voters",
			 (unsigned long long)n->id, (unsigned long long)c,
			 holding, voters);
}
