/*
 * The simulated world: an event queue on simulated time, the network, the
 * disks and the life cycle of every node, and the glue that feeds each
 * raft_update back into them exactly as raft.h's contract says (hard state
 * and snapshots durable before messages leave, entries written in order and
 * reported with RAFT_EV_PERSISTED when durable), then has check.c verify
 * that the disk backs what the node acts on.
 *
 * Determinism: the only randomness is s->rng (and each node's generator
 * seeded from it); the queue orders events by (time, sequence number).
 */
#include "tests/sim/sim.h"
#include "tests/sim/world_private.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum sim_event_kind {
	EV_TICK = 1,
	EV_DELIVER,
	EV_DISK,
	EV_CRASH,        /* crash, restart later */
	EV_CRASH_SILENT, /* the same, losing the messages it sent last */
	EV_RESTART,
};

struct sim_msg {
	struct raft_msg m;
	struct raft_entry *entries;
	uint8_t *data;
	struct raft_conf conf;
};

struct sim_task {
	uint64_t from;
	struct raft_entry *entries;
	uint64_t n;
	uint64_t mark;   /* the update's persist_mark, echoed when durable */
	bool done_early; /* forced to disk before a snapshot install */
	struct sim_task *next;
};

struct sim_event {
	uint64_t time;
	uint64_t seq;
	uint32_t kind;
	uint32_t node;
	uint32_t incarnation;
	struct sim_msg *msg;
};

void *world_xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);
	if (!q) {
		fprintf(stderr, "raft-sim: out of memory\n");
		abort();
	}
	return q;
}

void *world_xmemdup(const void *p, size_t len)
{
	if (!len)
		return NULL;
	void *q = world_xrealloc(NULL, len);
	memcpy(q, p, len);
	return q;
}

void sim_fail(struct sim *s, const char *fmt, ...)
{
	if (s->failed)
		return;
	s->failed = true;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->failure, sizeof(s->failure), fmt, ap);
	va_end(ap);
}

void sim_opts_default(struct sim_opts *o, int nodes, uint64_t seed)
{
	memset(o, 0, sizeof(*o));
	o->nodes = nodes;
	o->seed = seed;
	o->tick_interval = 10;
	o->delay_min = 1;
	o->delay_max = 1;
	o->disk_min = 1;
	o->disk_max = 1;
	o->pre_vote = true;
	o->check_quorum = true;
	o->auto_tick = true;
	o->snapshot_chunk = 64;
	o->max_msg_bytes = 64;
	o->max_inflight = 4;
}

/* ---- event queue: binary heap on (time, seq) ---- */

static bool ev_before(const struct sim_event *a, const struct sim_event *b)
{
	return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

/* Insert ev, keeping its sequence number. */
static void heap_insert(struct sim *s, struct sim_event ev)
{
	if (s->heap_n == s->heap_cap) {
		s->heap_cap = s->heap_cap ? s->heap_cap * 2 : 256;
		s->heap = world_xrealloc(s->heap, s->heap_cap * sizeof(*s->heap));
	}
	size_t i = s->heap_n++;
	while (i > 0 && ev_before(&ev, &s->heap[(i - 1) / 2])) {
		s->heap[i] = s->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	s->heap[i] = ev;
}

static void heap_push(struct sim *s, struct sim_event ev)
{
	ev.seq = s->seq++;
	if (ev.node && s->nodes[ev.node].paused_until > ev.time)
		ev.time = s->nodes[ev.node].paused_until;
	heap_insert(s, ev);
}

static struct sim_event heap_pop(struct sim *s)
{
	struct sim_event top = s->heap[0];
	struct sim_event last = s->heap[--s->heap_n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->heap_n)
			break;
		if (c + 1 < s->heap_n && ev_before(&s->heap[c + 1], &s->heap[c]))
			c++;
		if (!ev_before(&s->heap[c], &last))
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (s->heap_n)
		s->heap[i] = last;
	return top;
}

static void trace(struct sim *s, uint64_t a, uint64_t b, uint64_t c,
		  uint64_t d)
{
	uint64_t v[5] = {s->now, a, b, c, d};
	for (int i = 0; i < 5; i++) {
		s->trace_hash ^= v[i];
		s->trace_hash *= 0x100000001b3ULL;
		s->trace_hash ^= s->trace_hash >> 29;
	}
}

/* ---- entries, messages ---- */

static void entries_copy(struct raft_entry *dst, const struct raft_entry *src,
			 uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		dst[i] = src[i];
		dst[i].data = world_xmemdup(src[i].data, src[i].len);
	}
}

void world_entries_free(struct raft_entry *e, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		free(e[i].data);
}

static struct sim_msg *msg_copy(const struct raft_msg *m)
{
	struct sim_msg *c = world_xrealloc(NULL, sizeof(*c));
	memset(c, 0, sizeof(*c));
	c->m = *m;
	if (m->n_entries) {
		c->entries = world_xrealloc(NULL, m->n_entries * sizeof(*c->entries));
		entries_copy(c->entries, m->entries, m->n_entries);
	}
	c->data = world_xmemdup(m->data, m->len);
	if (m->conf)
		c->conf = *m->conf;
	c->m.entries = c->entries;
	c->m.data = c->data;
	c->m.conf = m->conf ? &c->conf : NULL;
	return c;
}

static void msg_free(struct sim_msg *c)
{
	if (!c)
		return;
	world_entries_free(c->entries, c->m.n_entries);
	free(c->entries);
	free(c->data);
	free(c);
}

static uint64_t between(struct sim *s, uint32_t lo, uint32_t hi)
{
	return lo + raft_rng_below(&s->rng, (uint64_t)hi - lo + 1);
}

static void net_send(struct sim *s, const struct raft_msg *m)
{
	if (m->to == 0 || m->to > SIM_MAX_NODES)
		return;
	if (s->cut[m->from][m->to] ||
	    raft_rng_below(&s->rng, 100) < s->opts.loss_pct)
		return;
	int copies = raft_rng_below(&s->rng, 100) < s->opts.dup_pct ? 2 : 1;
	for (int i = 0; i < copies; i++) {
		uint64_t delay = between(s, s->opts.delay_min, s->opts.delay_max);
		/* a heavy tail: a few messages take 10-20 times the usual
		 * delay, so acknowledgements of a deposed leader's rounds and
		 * votes of past terms land late */
		if (s->opts.slow_pct &&
		    raft_rng_below(&s->rng, 100) < s->opts.slow_pct) {
			delay = (delay + s->opts.delay_max) * between(s, 10, 20);
			s->slowed++;
		}
		struct sim_event ev = {
			.time = s->now + delay,
			.kind = EV_DELIVER,
			.node = (uint32_t)m->to,
			.msg = msg_copy(m),
		};
		heap_push(s, ev);
	}
}

/* ---- disk ---- */

uint64_t world_disk_last(const struct sim_disk *d)
{
	return d->snap.index + d->n;
}

static void disk_append(struct sim *s, struct sim_disk *d, uint64_t from,
			const struct raft_entry *e, uint64_t n)
{
	/* a write at from replaces everything from there on */
	uint64_t cut = from > d->snap.index ? from : d->snap.index + 1;
	while (world_disk_last(d) >= cut) {
		d->n--;
		free(d->entries[d->n].data);
	}
	for (uint64_t i = 0; i < n; i++) {
		uint64_t index = from + i;
		if (index <= d->snap.index)
			continue; /* already inside the snapshot */
		if (index > world_disk_last(d) + 1) {
			sim_fail(s, "WAL gap: write at %llu after %llu",
				 (unsigned long long)index,
				 (unsigned long long)world_disk_last(d));
			return;
		}
		while (world_disk_last(d) >= index) {
			d->n--;
			free(d->entries[d->n].data);
		}
		if (d->n == d->cap) {
			d->cap = d->cap ? d->cap * 2 : 16;
			d->entries = world_xrealloc(d->entries,
					      d->cap * sizeof(*d->entries));
		}
		entries_copy(&d->entries[d->n++], &e[i], 1);
	}
}

static void task_free(struct sim_task *t)
{
	world_entries_free(t->entries, t->n);
	free(t->entries);
	free(t);
}

static void disk_queue(struct sim *s, struct sim_node *n,
		       const struct raft_update *up)
{
	struct sim_disk *d = &n->disk;
	struct sim_task *t = world_xrealloc(NULL, sizeof(*t));
	memset(t, 0, sizeof(*t));
	t->from = up->persist_first;
	t->n = up->n_persist;
	t->mark = up->persist_mark;
	t->entries = world_xrealloc(NULL, t->n * sizeof(*t->entries));
	entries_copy(t->entries, up->persist, t->n);
	if (d->pending_tail)
		d->pending_tail->next = t;
	else
		d->pending = t;
	d->pending_tail = t;
	uint64_t done = between(s, s->opts.disk_min, s->opts.disk_max);
	/* a disk stall: the write (and every one queued behind it) takes
	 * 10-20 times longer, so the node acknowledges far less than it
	 * holds and its leader's view of it lags */
	if (s->opts.disk_slow_pct &&
	    raft_rng_below(&s->rng, 100) < s->opts.disk_slow_pct)
		done = (done + s->opts.disk_max) * between(s, 10, 20);
	done += s->now;
	if (done < d->frozen_until)
		done = d->frozen_until;
	if (done < d->last_done)
		done = d->last_done; /* writes complete in order */
	d->last_done = done;
	struct sim_event ev = {.time = done,
			       .kind = EV_DISK,
			       .node = (uint32_t)n->id,
			       .incarnation = n->incarnation};
	heap_push(s, ev);
}

static void disk_drop_pending(struct sim_disk *d)
{
	while (d->pending) {
		struct sim_task *t = d->pending;
		d->pending = t->next;
		task_free(t);
	}
	d->pending_tail = NULL;
}

static void disk_free(struct sim_disk *d)
{
	disk_drop_pending(d);
	world_entries_free(d->entries, d->n);
	free(d->entries);
	free(d->snap_data);
	memset(d, 0, sizeof(*d));
}

static void schedule_tick(struct sim *s, struct sim_node *n, uint64_t delay)
{
	if (!s->opts.auto_tick)
		return;
	struct sim_event ev = {.time = s->now + delay,
			       .kind = EV_TICK,
			       .node = (uint32_t)n->id,
			       .incarnation = n->incarnation};
	heap_push(s, ev);
}

static void node_start(struct sim *s, struct sim_node *n)
{
	struct raft_config cfg;
	raft_config_default(&cfg);
	cfg.id = n->id;
	raft_rng_seed(&n->rng, s->opts.seed * 1000003ULL + n->id * 7919ULL +
				       n->incarnation);
	cfg.rng = &n->rng;
	cfg.pre_vote = s->opts.pre_vote;
	cfg.check_quorum = s->opts.check_quorum;
	cfg.max_inflight_msgs = s->opts.max_inflight;
	cfg.max_inflight_bytes = 512;
	cfg.max_msg_bytes = s->opts.max_msg_bytes;
	cfg.snapshot_chunk = s->opts.snapshot_chunk;
	cfg.compact_keep = s->opts.compact_keep;
	int rv = raft_create(&n->raft, &cfg);
	assert(rv == 0);
	struct sim_disk *d = &n->disk;
	rv = raft_restore(n->raft, &d->hs, &d->snap, d->snap_data, d->snap_len,
			  d->entries, d->n);
	if (rv != 0) {
		sim_fail(s, "node %llu: restore failed: %s (term %llu, "
			 "snapshot %llu/%llu, entries %llu, last term %llu)",
			 (unsigned long long)n->id, rkv_strerror(rv),
			 (unsigned long long)d->hs.term,
			 (unsigned long long)d->snap.index,
			 (unsigned long long)d->snap.term,
			 (unsigned long long)d->n,
			 (unsigned long long)(d->n ? d->entries[d->n - 1].term
						   : 0));
		return;
	}
	n->up = true;
	sm_restore(s, n, d->snap.index, d->snap_data, d->snap_len);
	n->seen_commit = raft_commit_index(n->raft);
	n->seen_role = RAFT_FOLLOWER;
	check_mirror_restore(s, n);
	schedule_tick(s, n,
		      s->opts.fixed_ticks
			      ? s->opts.tick_interval - s->now % s->opts.tick_interval
			      : 1 + raft_rng_below(&s->rng, s->opts.tick_interval));
}

struct sim_node *world_node_new(struct sim *s, uint64_t id,
				 const struct raft_conf *conf)
{
	assert(id >= 1 && id <= SIM_MAX_NODES);
	struct sim_node *n = &s->nodes[id];
	memset(n, 0, sizeof(*n));
	n->id = id;
	n->exists = true;
	n->disk.snap.conf = *conf;
	if ((int)id > s->n_nodes)
		s->n_nodes = (int)id;
	node_start(s, n);
	return n;
}

struct sim *sim_create(const struct sim_opts *opts)
{
	struct sim *s = world_xrealloc(NULL, sizeof(*s));
	memset(s, 0, sizeof(*s));
	s->opts = *opts;
	raft_rng_seed(&s->rng, opts->seed);
	s->trace_hash = 0xcbf29ce484222325ULL;
	check_reset(s);
	struct raft_conf conf;
	memset(&conf, 0, sizeof(conf));
	for (int i = 1; i <= opts->nodes; i++) {
		conf.servers[conf.n].id = (uint64_t)i;
		conf.servers[conf.n].role = RAFT_VOTER;
		conf.n++;
	}
	for (int i = 1; i <= opts->nodes; i++)
		world_node_new(s, (uint64_t)i, &conf);
	return s;
}

void sim_destroy(struct sim *s)
{
	for (int i = 1; i <= s->n_nodes; i++) {
		raft_destroy(s->nodes[i].raft);
		disk_free(&s->nodes[i].disk);
		free(s->nodes[i].mirror);
	}
	for (size_t i = 0; i < s->heap_n; i++)
		msg_free(s->heap[i].msg);
	free(s->heap);
	free(s->writes);
	free(s->reads);
	for (int k = 0; k < SIM_KEYS; k++) {
		free(s->acks[k].v);
		free(s->read_done[k].v);
	}
	check_free(s);
	free(s);
}

struct raft *sim_raft(struct sim *s, uint64_t id)
{
	if (id == 0 || id > SIM_MAX_NODES || !s->nodes[id].up)
		return NULL;
	return s->nodes[id].raft;
}

uint64_t sim_leader(const struct sim *s)
{
	uint64_t best = RAFT_NONE, term = 0;
	for (int i = 1; i <= s->n_nodes; i++) {
		const struct sim_node *n = &s->nodes[i];
		if (n->up && raft_role(n->raft) == RAFT_LEADER &&
		    raft_term(n->raft) >= term) {
			best = n->id;
			term = raft_term(n->raft);
		}
	}
	return best;
}

const struct sim_write *sim_write_get(const struct sim *s, uint64_t value)
{
	return value && value <= s->n_writes ? &s->writes[value - 1] : NULL;
}

/* Shut down members whose removal the current leader has committed. */
static void retire_removed(struct sim *s, struct sim_node *leader)
{
	struct raft *r = leader->raft;
	for (uint64_t i = raft_commit_index(r) + 1; i <= raft_last_index(r); i++)
		if (raft_entry_at(r, i)->type == RAFT_ENTRY_CONF)
			return; /* latest configuration not committed yet */
	for (int i = 1; i <= s->n_nodes; i++) {
		struct sim_node *n = &s->nodes[i];
		if (!n->exists || n->removed)
			continue;
		if (raft_conf_role(raft_conf(r), n->id)) {
			n->member = true;
			continue;
		}
		/* a server only ever added by an entry that was then lost
		 * may still be added by a later leader: keep it running */
		if (!n->member)
			continue;
		if (s->opts.trace)
			fprintf(stderr, "%llu: leader %llu retires %llu\n",
				(unsigned long long)s->now,
				(unsigned long long)leader->id,
				(unsigned long long)n->id);
		if (n->up)
			sim_crash(s, n->id);
		n->removed = true;
	}
}

/* Crash n (and restart it later) at a moment chosen by the schedule: the
 * crash lands between the decision and the disk write that records it. */
static void crash_soon(struct sim *s, struct sim_node *n, uint32_t pct,
		       uint32_t within, bool silent)
{
	if (!pct || raft_rng_below(&s->rng, 100) >= pct)
		return;
	s->crashes_at++;
	struct sim_event ev = {.time = s->now + between(s, 0, within),
			       .kind = silent ? EV_CRASH_SILENT : EV_CRASH,
			       .node = (uint32_t)n->id,
			       .incarnation = n->incarnation};
	heap_push(s, ev);
}

/* The last index the disk will hold once the queued writes land. */
static uint64_t disk_last_queued(const struct sim_disk *d)
{
	uint64_t last = world_disk_last(d);
	for (const struct sim_task *t = d->pending; t; t = t->next)
		if (!t->done_early)
			last = t->from + t->n - 1;
	return last;
}

static bool has_conf_entry(const struct raft_update *up)
{
	for (size_t i = 0; i < up->n_persist; i++)
		if (up->persist[i].type == RAFT_ENTRY_CONF)
			return true;
	return false;
}

static bool grants_vote(const struct raft_update *up)
{
	for (size_t i = 0; i < up->n_msgs; i++)
		if (up->msgs[i].type == RAFT_MSG_VOTE_RESP && !up->msgs[i].reject)
			return true;
	return false;
}

void world_handle_update(struct sim *s, struct sim_node *n,
			  const struct raft_update *up)
{
	check_update(s, n, up);
	struct sim_disk *d = &n->disk;
	uint64_t commit_before = n->seen_commit;
	/* a write that overwrites entries durable or still queued: crash
	 * before it lands, and the node may restart with the old ones */
	if (n->up && up->n_persist && up->persist_first <= disk_last_queued(d)) {
		crash_soon(s, n, n->crash_at_overwrite ? 100
						       : s->opts.crash_truncate_pct,
			   0, false);
		n->crash_at_overwrite = false;
	}
	if (n->up && has_conf_entry(up)) {
		bool silent = raft_rng_below(&s->rng, 2);
		crash_soon(s, n, s->opts.crash_conf_pct,
			   silent ? 0 : s->opts.disk_max, silent);
	}
	if (n->up && grants_vote(up))
		crash_soon(s, n, s->opts.crash_vote_pct, s->opts.disk_max,
			   false);
	if (up->hard_state_changed)
		d->hs = up->hard_state;
	if (up->snapshot) {
		s->installs++;
		/* writes queued before the install land first, in order */
		for (struct sim_task *t = d->pending; t; t = t->next) {
			if (!t->done_early)
				disk_append(s, d, t->from, t->entries, t->n);
			t->done_early = true;
		}
		world_entries_free(d->entries, d->n);
		d->n = 0;
		d->snap = *up->snapshot;
		free(d->snap_data);
		d->snap_data = world_xmemdup(up->snapshot_data, up->snapshot_len);
		d->snap_len = up->snapshot_len;
		sm_restore(s, n, up->snapshot->index, up->snapshot_data,
			   up->snapshot_len);
	}
	if (up->n_persist)
		disk_queue(s, n, up);
	if (n->up && !s->failed)
		check_durable(s, n, up);
	for (size_t i = 0; i < up->n_msgs; i++) {
		if (up->msgs[i].type <= RAFT_MSG_TIMEOUT_NOW)
			s->sent[n->id][up->msgs[i].type]++;
		net_send(s, &up->msgs[i]);
	}
	for (size_t i = 0; i < up->n_apply; i++)
		sm_apply(s, n, up->apply_first + i, &up->apply[i]);
	check_after_step(s, n);
	if (up->n_apply)
		writes_settle(s, n, up->apply_first,
			      up->apply_first + up->n_apply - 1);
	for (size_t i = 0; i < up->n_reads; i++) {
		const struct raft_read_state *rs = &up->reads[i];
		if (rs->id == 0 || rs->id > s->n_reads)
			continue;
		struct sim_read *rd = &s->reads[rs->id - 1];
		if (!rd->live)
			continue;
		if (rs->index == 0)
			rd->live = false;
		else
			rd->index = rs->index;
	}
	if (up->n_apply || up->n_reads || up->snapshot)
		reads_poll(s, n);
	/* durability: everything reported persisted is in the WAL */
	if (n->up && !s->failed) {
		uint64_t p = raft_persisted_index(n->raft), term = 0;
		s->checks++;
		if (p > d->snap.index &&
		    (p > world_disk_last(d) || !raft_term_at(n->raft, p, &term) ||
		     d->entries[p - d->snap.index - 1].term != term))
			sim_fail(s, "node %llu: index %llu reported persisted "
				 "but not in the WAL",
				 (unsigned long long)n->id,
				 (unsigned long long)p);
	}
	if (n->up && !s->failed && raft_role(n->raft) == RAFT_LEADER &&
	    raft_commit_index(n->raft) > commit_before) {
		check_commit_durable(s, n);
		crash_soon(s, n, s->opts.crash_commit_pct, 0, true);
	}
	/* only a leader of the highest term so far knows the latest
	 * committed configuration (a stale leader may survive its successor) */
	if (n->up && raft_role(n->raft) == RAFT_LEADER &&
	    raft_term(n->raft) + 1 >= s->cap_terms_used)
		retire_removed(s, n);
}

int world_step_node(struct sim *s, struct sim_node *n,
		     const struct raft_event *ev, struct raft_update *up)
{
	int rv = raft_step(n->raft, ev, up);
	if (rv == -ENOMEM) {
		fprintf(stderr, "raft-sim: out of memory in raft_step\n");
		abort();
	}
	return rv;
}

int sim_event(struct sim *s, uint64_t id, const struct raft_event *ev,
	      struct raft_update *copy_out)
{
	struct sim_node *n = &s->nodes[id];
	if (!n->up)
		return RAFT_ENOTLEADER;
	struct raft_update up;
	int rv = world_step_node(s, n, ev, &up);
	world_handle_update(s, n, &up);
	if (copy_out)
		*copy_out = up;
	return rv;
}

/* Sleeping groups: after a tick, a leader may be told to sleep; an asleep
 * follower is woken by a liveness oracle that sees what the node's peers
 * would (its leader down, or cut off from it), late and sometimes wrong. */
static void quiesce_tick(struct sim *s, struct sim_node *n)
{
	if (!n->up || s->failed)
		return;
	struct raft *r = n->raft;
	if (s->opts.sleep_pct && raft_role(r) == RAFT_LEADER && !raft_asleep(r) &&
	    raft_rng_below(&s->rng, 100) < s->opts.sleep_pct) {
		struct raft_event ev = {.type = RAFT_EV_SLEEP};
		if (sim_event(s, n->id, &ev, NULL) == 0)
			s->sleeps++;
		return;
	}
	if (!raft_asleep(r))
		return;
	/* a follower suspects its leader's node; a leader, any other
	 * member's (then it wakes and counts its quorum again) */
	uint64_t leader = raft_leader(r);
	bool gone = false;
	if (leader != n->id) {
		gone = leader != RAFT_NONE &&
		       (!s->nodes[leader].up || s->cut[leader][n->id]);
	} else {
		const struct raft_conf *conf = raft_conf(r);
		for (uint32_t i = 0; i < conf->n; i++) {
			uint64_t m = conf->servers[i].id;
			if (m != n->id && (!s->nodes[m].up || s->cut[m][n->id]))
				gone = true;
		}
	}
	if ((gone && raft_rng_below(&s->rng, 100) < s->opts.wake_pct) ||
	    (s->opts.spurious_wake_pct &&
	     raft_rng_below(&s->rng, 1000) < s->opts.spurious_wake_pct)) {
		struct raft_event ev = {.type = RAFT_EV_WAKE,
					.wake.suspect = true};
		s->wakes++;
		sim_event(s, n->id, &ev, NULL);
	}
}

int sim_tick(struct sim *s, uint64_t id)
{
	struct raft_event ev = {.type = RAFT_EV_TICK};
	return sim_event(s, id, &ev, NULL);
}

int sim_campaign(struct sim *s, uint64_t id)
{
	struct raft_event ev = {.type = RAFT_EV_CAMPAIGN};
	return sim_event(s, id, &ev, NULL);
}


/* Land the first `whole` queued writes of d, then `keep` records of the
 * next one (a torn write that left no record changed nothing). */
static void disk_cut(struct sim *s, struct sim_disk *d, uint64_t whole,
		     uint64_t keep)
{
	struct sim_task *t = d->pending;
	for (; t && whole > 0; whole--, t = t->next)
		if (!t->done_early)
			disk_append(s, d, t->from, t->entries, t->n);
	if (t && !t->done_early && keep)
		disk_append(s, d, t->from, t->entries, keep < t->n ? keep : t->n);
}

uint64_t sim_queued_writes(const struct sim *s, uint64_t id)
{
	uint64_t queued = 0;
	for (const struct sim_task *t = s->nodes[id].disk.pending; t; t = t->next)
		queued++;
	return queued;
}

void sim_crash(struct sim *s, uint64_t id)
{
	struct sim_node *n = &s->nodes[id];
	if (!n->up)
		return;
	/* The crash cuts the stream of queued writes somewhere: the writes
	 * before the cut reached the platter whole (writes complete in
	 * order), the one it lands in may leave a prefix of its records
	 * (recovery cuts the torn last one off), the rest are lost. None of
	 * them was reported persisted, so a node can come back holding
	 * entries its in-memory log had already truncated away. */
	if (n->disk.pending && raft_rng_below(&s->rng, 2) == 0) {
		uint64_t queued = sim_queued_writes(s, id);
		uint64_t whole = queued > 1 ? raft_rng_below(&s->rng, queued)
					    : 0;
		struct sim_task *t = n->disk.pending;
		for (uint64_t i = 0; i < whole; i++)
			t = t->next;
		disk_cut(s, &n->disk, whole,
			 raft_rng_below(&s->rng, t->n + 1));
		s->torn++;
	}
	sim_crash_cut(s, id, 0);
}

void sim_crash_cut(struct sim *s, uint64_t id, uint64_t whole)
{
	struct sim_node *n = &s->nodes[id];
	if (!n->up)
		return;
	struct sim_disk *d = &n->disk;
	disk_cut(s, d, whole, 0);
	disk_drop_pending(d);
	d->last_done = 0;
	d->frozen_until = 0;
	n->crash_at_overwrite = false;
	n->paused_until = 0;
	s->crashes++;
	raft_destroy(n->raft);
	n->raft = NULL;
	n->up = false;
	n->incarnation++;
	for (size_t i = 0; i < s->n_reads; i++)
		if (s->reads[i].node == id)
			s->reads[i].live = false;
	trace(s, 0xc4a5, id, 0, 0);
}

void sim_restart(struct sim *s, uint64_t id)
{
	struct sim_node *n = &s->nodes[id];
	if (n->up || !n->exists || n->removed)
		return;
	trace(s, 0x5e57, id, 0, 0);
	node_start(s, n);
}

void sim_cut(struct sim *s, uint64_t from, uint64_t to, bool cut)
{
	s->cut[from][to] = cut;
}

void sim_isolate(struct sim *s, uint64_t id, bool cut)
{
	for (int i = 1; i <= SIM_MAX_NODES; i++) {
		s->cut[id][i] = cut;
		s->cut[i][id] = cut;
	}
}

void sim_drop_from(struct sim *s, uint64_t id)
{
	for (size_t i = 0; i < s->heap_n; i++)
		if (s->heap[i].kind == EV_DELIVER && s->heap[i].msg->m.from == id)
			s->heap[i].node = 0; /* node 0 is never up: dropped */
}

void sim_drop_to(struct sim *s, uint64_t id)
{
	for (size_t i = 0; i < s->heap_n; i++)
		if (s->heap[i].kind == EV_DELIVER && s->heap[i].node == id)
			s->heap[i].node = 0;
}

void sim_disk_freeze(struct sim *s, uint64_t id, uint64_t until)
{
	struct sim_node *n = &s->nodes[id];
	if (n->up && until > n->disk.frozen_until)
		n->disk.frozen_until = until;
}

/* Restore the heap order after event times were changed in place. */
static void heap_rebuild(struct sim *s)
{
	size_t n = s->heap_n;
	struct sim_event *all = world_xrealloc(NULL, n * sizeof(*all));
	memcpy(all, s->heap, n * sizeof(*all));
	s->heap_n = 0;
	for (size_t i = 0; i < n; i++)
		heap_insert(s, all[i]);
	free(all);
}

void sim_hold_to(struct sim *s, uint64_t id, uint32_t lo, uint32_t hi)
{
	bool moved = false;
	for (size_t i = 0; i < s->heap_n; i++) {
		if (s->heap[i].kind == EV_DELIVER && s->heap[i].node == id) {
			s->heap[i].time += between(s, lo, hi);
			moved = true;
		}
	}
	if (moved)
		heap_rebuild(s);
}

void sim_disk_thaw(struct sim *s, uint64_t id)
{
	struct sim_disk *d = &s->nodes[id].disk;
	if (d->frozen_until <= s->now)
		return;
	/* the stalled writes complete now, still in order */
	for (size_t i = 0; i < s->heap_n; i++)
		if (s->heap[i].kind == EV_DISK && s->heap[i].node == id &&
		    s->heap[i].time >= d->frozen_until)
			s->heap[i].time = s->now;
	d->frozen_until = 0;
	d->last_done = s->now;
	heap_rebuild(s);
}

void sim_pause(struct sim *s, uint64_t id, uint64_t until)
{
	struct sim_node *n = &s->nodes[id];
	n->paused_until = until;
	for (size_t i = 0; i < s->heap_n; i++)
		if (s->heap[i].node == id && s->heap[i].time < until)
			s->heap[i].time = until;
	heap_rebuild(s);
}

void sim_resume(struct sim *s, uint64_t id)
{
	struct sim_node *n = &s->nodes[id];
	if (n->paused_until <= s->now) {
		n->paused_until = 0;
		return;
	}
	for (size_t i = 0; i < s->heap_n; i++)
		if (s->heap[i].node == id && s->heap[i].time == n->paused_until)
			s->heap[i].time = s->now;
	n->paused_until = 0;
	heap_rebuild(s);
}

void sim_heal(struct sim *s)
{
	memset(s->cut, 0, sizeof(s->cut));
}

uint64_t sim_next_time(const struct sim *s)
{
	return s->heap_n ? s->heap[0].time : SIM_NEVER;
}

/* Coverage of the follower commit rule: did n accept m while holding,
 * right after m's entries and at or below m's commit index, an entry the
 * leader's log does not have? (Only then does Figure 2 rule 5 matter.) */
static void count_stale_tail(struct sim *s, struct sim_node *n,
			     const struct raft_msg *m)
{
	const struct sim_node *l = &s->nodes[m->from];
	uint64_t next = m->index + m->n_entries + 1, mine, theirs, prev;
	if (!n->up || !l->up || raft_term(n->raft) != m->term ||
	    raft_leader(n->raft) != m->from || m->commit < next ||
	    !raft_term_at(n->raft, m->index, &prev) || prev != m->log_term ||
	    !raft_term_at(n->raft, next, &mine))
		return;
	if (raft_term_at(l->raft, next, &theirs) && mine != theirs)
		s->stale_tails++;
}

/* A caller's wrong report, before an APPEND reaches n: "persisted" with
 * the mark and last index of n's last queued write but a term that entry
 * does not have. raft.h: a report naming an entry the log does not hold
 * counts for nothing; a library that took it would count an entry its
 * disk has not got yet (the WAL check then fails). With the mark of the
 * last write handed out, (index, term) is the only thing that tells it
 * wrong: a correct caller never sends one, so only such input reaches
 * the term check (docs: persisted-ignores-term). */
static void forge_report(struct sim *s, struct sim_node *n)
{
	const struct sim_task *t = n->disk.pending_tail;
	if (!t || t->done_early || t->n == 0)
		return;
	s->forged++;
	struct raft_event ev = {
		.type = RAFT_EV_PERSISTED,
		.persisted = {.index = t->from + t->n - 1,
			      .term = t->entries[t->n - 1].term + 1,
			      .mark = t->mark}};
	sim_event(s, n->id, &ev, NULL);
}

/* Untrusted input: before m, hand n a forged copy of it that no correct
 * peer would send. The library must drop or clamp it (raft.h: messages
 * with a bad shape are dropped), and the checkers judge what it does. Only
 * forgeries a correct library survives with safety intact are made. */
static void forge(struct sim *s, struct sim_node *n, const struct raft_msg *m)
{
	if (!s->opts.forge_pct || raft_rng_below(&s->rng, 100) >= s->opts.forge_pct)
		return;
	struct raft_msg f = *m;
	uint64_t last = raft_last_index(n->raft);
	if (m->type == RAFT_MSG_APPEND_RESP && !m->reject) {
		/* acknowledges what the receiver never had */
		f.index = last + 1 + raft_rng_below(&s->rng, 4);
	} else if (m->type == RAFT_MSG_HEARTBEAT) {
		/* a commit index past the receiver's log: clamped to its
		 * last index, which must then be committed already */
		if (last == 0 || last > s->max_commit ||
		    last < n->mirror_lo || last > n->mirror_hi ||
		    s->committed[last].hash != n->mirror[last].hash)
			return;
		f.commit = last + 1 + raft_rng_below(&s->rng, 4);
	} else if (m->type == RAFT_MSG_APPEND) {
		forge_report(s, n); /* no draw: the random stream is kept */
		return;
	} else {
		return;
	}
	s->forged++;
	struct raft_event ev = {.type = RAFT_EV_RECEIVE, .msg = &f};
	sim_event(s, n->id, &ev, NULL);
}

/* Coverage of the write marks: is t's report about to name an (index,
 * term) n's log holds again, while a write queued behind t will cut the
 * disk back below it? (Only then does the mark tell a stale report.) */
static void count_rewritten_report(struct sim *s, struct sim_node *n,
				   const struct sim_task *t)
{
	uint64_t index = t->from + t->n - 1, term;
	for (const struct sim_task *q = n->disk.pending; q; q = q->next) {
		if (q->done_early || q->from > index)
			continue;
		if (raft_term_at(n->raft, index, &term) &&
		    term == t->entries[t->n - 1].term)
			s->rewritten_reports++;
		return;
	}
}

static void disk_done(struct sim *s, struct sim_node *n)
{
	struct sim_disk *d = &n->disk;
	struct sim_task *t = d->pending;
	assert(t);
	d->pending = t->next;
	if (!d->pending)
		d->pending_tail = NULL;
	if (!t->done_early)
		disk_append(s, d, t->from, t->entries, t->n);
	count_rewritten_report(s, n, t);
	struct raft_event ev = {
		.type = RAFT_EV_PERSISTED,
		.persisted = {.index = t->from + t->n - 1,
			      .term = t->entries[t->n - 1].term,
			      .mark = t->mark}};
	task_free(t);
	sim_event(s, n->id, &ev, NULL);
}

bool sim_step(struct sim *s)
{
	if (s->failed || s->heap_n == 0)
		return false;
	struct sim_event ev = heap_pop(s);
	assert(ev.time >= s->now);
	s->now = ev.time;
	struct sim_node *n = &s->nodes[ev.node];
	switch (ev.kind) {
	case EV_TICK:
		if (n->up && n->incarnation == ev.incarnation) {
			trace(s, EV_TICK, n->id, 0, 0);
			sim_tick(s, n->id);
			quiesce_tick(s, n);
			schedule_tick(s, n, s->opts.tick_interval);
		}
		break;
	case EV_DISK:
		if (n->up && n->incarnation == ev.incarnation &&
		    s->now < n->disk.frozen_until) {
			/* stalled: complete later, still in order */
			ev.time = n->disk.frozen_until;
			heap_push(s, ev);
		} else if (n->up && n->incarnation == ev.incarnation) {
			trace(s, EV_DISK, n->id, 0, 0);
			disk_done(s, n);
		}
		break;
	case EV_CRASH:
	case EV_CRASH_SILENT:
		if (n->up && n->incarnation == ev.incarnation) {
			sim_crash(s, n->id);
			if (ev.kind == EV_CRASH_SILENT)
				sim_drop_from(s, n->id);
			struct sim_event up = {
				.time = s->now + between(s, s->opts.crash_down_min,
							 s->opts.crash_down_max),
				.kind = EV_RESTART,
				.node = (uint32_t)n->id,
				.incarnation = n->incarnation};
			heap_push(s, up);
		}
		break;
	case EV_RESTART:
		if (!n->up && n->incarnation == ev.incarnation)
			sim_restart(s, n->id);
		break;
	case EV_DELIVER:
		if (n->up) {
			const struct raft_msg *m = &ev.msg->m;
			trace(s, EV_DELIVER, m->from * 64 + m->to,
			      m->type * 1000003ULL + m->term, m->index);
			if (s->opts.trace)
				printf("%llu: %llu->%llu %s t%llu i%llu c%llu n%u%s%s\n",
				       (unsigned long long)s->now,
				       (unsigned long long)m->from,
				       (unsigned long long)m->to,
				       raft_msg_name((int)m->type),
				       (unsigned long long)m->term,
				       (unsigned long long)m->index,
				       (unsigned long long)m->commit,
				       m->n_entries, m->reject ? " reject" : "", m->done ? " done" : "");
			forge(s, n, m);
			struct raft_event rev = {.type = RAFT_EV_RECEIVE,
						 .msg = m};
			if (n->up && !s->failed)
				sim_event(s, n->id, &rev, NULL);
			if (m->type == RAFT_MSG_APPEND)
				count_stale_tail(s, n, m);
		}
		msg_free(ev.msg);
		break;
	default:
		abort();
	}
	return !s->failed;
}

void sim_run_until(struct sim *s, uint64_t t)
{
	while (!s->failed && sim_next_time(s) <= t)
		sim_step(s);
	if (s->now < t)
		s->now = t;
}

bool sim_run_while_not(struct sim *s, uint64_t t,
		       bool (*pred)(struct sim *s, void *arg), void *arg)
{
	while (!s->failed) {
		if (pred(s, arg))
			return true;
		if (sim_next_time(s) > t)
			break;
		sim_step(s);
	}
	if (s->now < t && !s->failed)
		s->now = t;
	return !s->failed && pred(s, arg);
}
