/*
 * The replicated state machine of the simulated nodes (SIM_KEYS registers
 * holding unique write values, snapshotted as a fixed 72-byte image) and
 * the client-side operations: proposals, ReadIndex reads, transfers,
 * membership changes and snapshots, with the bookkeeping the checker needs
 * (which writes were acknowledged, which reads returned what, when).
 */
#include "tests/sim/sim.h"
#include "tests/sim/world_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- state machine: SIM_KEYS registers of unique write values ---- */

#define SM_SNAP_LEN (8 + SIM_KEYS * 16)

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

void sm_restore(struct sim *s, struct sim_node *n, uint64_t index,
		       const uint8_t *data, size_t len)
{
	memset(n->kv, 0, sizeof(n->kv));
	memset(n->kv_index, 0, sizeof(n->kv_index));
	n->applied = index;
	if (len == 0 && index == 0)
		return;
	if (len != SM_SNAP_LEN || get64(data) != index) {
		sim_fail(s, "node %llu: bad snapshot at %llu",
			 (unsigned long long)n->id, (unsigned long long)index);
		return;
	}
	for (int k = 0; k < SIM_KEYS; k++) {
		n->kv[k] = get64(data + 8 + 16 * k);
		n->kv_index[k] = get64(data + 16 + 16 * k);
	}
}

static void read_complete(struct sim *s, struct sim_node *n,
			  struct sim_read *rd)
{
	rd->live = false;
	rd->value = n->kv[rd->key];
	rd->done_at = s->now;
	s->reads_ok++;
	check_read(s, rd, n->kv[rd->key], n->kv_index[rd->key]);
}

void reads_poll(struct sim *s, struct sim_node *n)
{
	for (size_t i = 0; i < s->n_reads; i++) {
		struct sim_read *rd = &s->reads[i];
		if (rd->live && rd->node == n->id && rd->index &&
		    rd->incarnation == n->incarnation && rd->index <= n->applied)
			read_complete(s, n, rd);
	}
}

void sm_apply(struct sim *s, struct sim_node *n, uint64_t index,
		     const struct raft_entry *e)
{
	if (index != n->applied + 1) {
		sim_fail(s, "node %llu applied %llu after %llu",
			 (unsigned long long)n->id, (unsigned long long)index,
			 (unsigned long long)n->applied);
		return;
	}
	check_apply(s, n, index, e);
	n->applied = index;
	if (e->type != RAFT_ENTRY_NORMAL)
		return;
	if (e->len != 12) {
		sim_fail(s, "bad entry at %llu", (unsigned long long)index);
		return;
	}
	uint32_t key;
	uint64_t value;
	memcpy(&key, e->data, 4);
	memcpy(&value, (const uint8_t *)e->data + 4, 8);
	if (key >= SIM_KEYS || value == 0 || value > s->n_writes) {
		sim_fail(s, "unknown write at %llu", (unsigned long long)index);
		return;
	}
	n->kv[key] = value;
	n->kv_index[key] = index;
	struct sim_write *w = &s->writes[value - 1];
	if (w->applied_at && w->applied_at != index)
		sim_fail(s, "write %llu applied at %llu and %llu",
			 (unsigned long long)value,
			 (unsigned long long)w->applied_at,
			 (unsigned long long)index);
	w->applied_at = index;
}

/* Acknowledge or fail client writes proposed to n at applied indexes. */
void writes_settle(struct sim *s, struct sim_node *n, uint64_t from,
			  uint64_t to)
{
	for (size_t i = s->n_writes; i-- > 0;) {
		struct sim_write *w = &s->writes[i];
		if (w->node != n->id || w->ack != SIM_NEVER || w->failed)
			continue;
		if (w->index < from || w->index > to)
			continue;
		if (w->applied_at == w->index) {
			w->ack = s->now;
			check_ack(s, w);
		} else {
			w->failed = true;
		}
	}
}

/* ---- nodes ---- */


int sim_propose(struct sim *s, uint64_t id, uint32_t key, uint64_t *value)
{
	struct sim_node *n = &s->nodes[id];
	if (!n->up)
		return RAFT_ENOTLEADER;
	uint64_t v = s->n_writes + 1;
	uint8_t data[12];
	memcpy(data, &key, 4);
	memcpy(data + 4, &v, 8);
	struct raft_event ev = {.type = RAFT_EV_PROPOSE,
				.propose = {.data = data, .len = 12}};
	struct raft_update up;
	int rv = world_step_node(s, n, &ev, &up);
	if (rv == 0) {
		if (s->n_writes == s->cap_writes) {
			s->cap_writes = s->cap_writes ? s->cap_writes * 2 : 64;
			s->writes = world_xrealloc(s->writes,
					     s->cap_writes * sizeof(*s->writes));
		}
		struct sim_write *w = &s->writes[s->n_writes++];
		memset(w, 0, sizeof(*w));
		w->value = v;
		w->key = key;
		w->node = id;
		w->index = up.proposed_index;
		w->term = up.proposed_term;
		w->invoke = s->now;
		w->ack = SIM_NEVER;
		if (value)
			*value = v;
	}
	world_handle_update(s, n, &up);
	return rv;
}

int sim_read(struct sim *s, uint64_t id, uint32_t key, uint64_t *read_id)
{
	struct sim_node *n = &s->nodes[id];
	if (!n->up)
		return RAFT_ENOTLEADER;
	if (s->n_reads == s->cap_reads) {
		s->cap_reads = s->cap_reads ? s->cap_reads * 2 : 64;
		s->reads = world_xrealloc(s->reads, s->cap_reads * sizeof(*s->reads));
	}
	struct sim_read *rd = &s->reads[s->n_reads];
	memset(rd, 0, sizeof(*rd));
	rd->id = s->n_reads + 1;
	rd->key = key;
	rd->node = id;
	rd->incarnation = n->incarnation;
	rd->invoke = s->now;
	rd->live = true;
	s->n_reads++;
	struct raft_event ev = {.type = RAFT_EV_READ_INDEX,
				.read = {.id = rd->id}};
	struct raft_update up;
	int rv = world_step_node(s, n, &ev, &up);
	if (rv != 0)
		s->reads[--s->n_reads].live = false;
	else if (read_id)
		*read_id = rd->id;
	world_handle_update(s, n, &up);
	return rv;
}

int sim_transfer(struct sim *s, uint64_t id, uint64_t target)
{
	struct raft_event ev = {.type = RAFT_EV_TRANSFER,
				.transfer = {.target = target}};
	int rv = sim_event(s, id, &ev, NULL);
	s->transfers += rv == 0 && target != id;
	return rv;
}

/*
 * §4.1 and its errata, as a leader must apply them when it accepts a change
 * (a violation needs a rare interleaving to break safety, so the rule is
 * checked where it is decided): no other configuration entry is
 * uncommitted, and the leader has committed an entry of its own term.
 */
static void check_conf_accepted(struct sim *s, uint64_t leader)
{
	struct raft *r = sim_raft(s, leader);
	uint64_t commit = raft_commit_index(r), last = raft_last_index(r);
	uint64_t term = 0;
	s->checks++;
	for (uint64_t i = commit + 1; i < last; i++) {
		const struct raft_entry *e = raft_entry_at(r, i);
		if (e && e->type == RAFT_ENTRY_CONF) {
			sim_fail(s, "membership: leader %llu accepted a change "
				 "with the change at %llu uncommitted",
				 (unsigned long long)leader,
				 (unsigned long long)i);
			return;
		}
	}
	if (!raft_term_at(r, commit, &term) || term != raft_term(r))
		sim_fail(s, "membership: leader %llu accepted a change before "
			 "committing an entry of its term %llu",
			 (unsigned long long)leader,
			 (unsigned long long)raft_term(r));
}

int sim_conf_change(struct sim *s, uint64_t leader, uint32_t op, uint64_t id)
{
	if (id == 0 || id > SIM_MAX_NODES)
		return RAFT_EBADCONF;
	struct raft_event ev = {.type = RAFT_EV_CONF_CHANGE,
				.conf_change = {.op = op, .id = id}};
	int rv = sim_event(s, leader, &ev, NULL);
	if (rv == 0 && sim_raft(s, leader) &&
	    raft_role(sim_raft(s, leader)) == RAFT_LEADER)
		check_conf_accepted(s, leader);
	if (s->opts.trace)
		fprintf(stderr, "%llu: leader %llu conf op %u id %llu: %d\n",
			(unsigned long long)s->now, (unsigned long long)leader,
			op, (unsigned long long)id, rv);
	s->conf_changes += rv == 0;
	if (rv == 0 && op == RAFT_CONF_ADD_LEARNER && !s->nodes[id].exists) {
		struct raft_conf empty;
		memset(&empty, 0, sizeof(empty));
		world_node_new(s, id, &empty);
	}
	return rv;
}

void sim_snapshot(struct sim *s, uint64_t id)
{
	struct sim_node *n = &s->nodes[id];
	if (!n->up || n->applied > raft_persisted_index(n->raft) ||
	    n->applied <= raft_snapshot(n->raft)->index)
		return;
	uint8_t data[SM_SNAP_LEN];
	put64(data, n->applied);
	for (int k = 0; k < SIM_KEYS; k++) {
		put64(data + 8 + 16 * k, n->kv[k]);
		put64(data + 16 + 16 * k, n->kv_index[k]);
	}
	struct raft_event ev = {.type = RAFT_EV_SNAPSHOT_TAKEN,
				.snapshot = {.index = n->applied,
					     .data = data,
					     .len = sizeof(data)}};
	struct raft_update up;
	int rv = world_step_node(s, n, &ev, &up);
	if (rv != 0) {
		sim_fail(s, "snapshot refused: %s", rkv_strerror(rv));
		return;
	}
	/* the snapshot is durable before the event, and the WAL shrinks */
	struct sim_disk *d = &n->disk;
	const struct raft_snapshot_meta *meta = raft_snapshot(n->raft);
	uint64_t drop = meta->index - d->snap.index;
	world_entries_free(d->entries, drop);
	memmove(d->entries, d->entries + drop,
		(d->n - drop) * sizeof(*d->entries));
	d->n -= drop;
	d->snap = *meta;
	free(d->snap_data);
	d->snap_data = world_xmemdup(data, sizeof(data));
	d->snap_len = sizeof(data);
	world_handle_update(s, n, &up);
}
