/*
 * Snapshots and log compaction (§7).
 *
 * Taking: the caller snapshots its state machine at an applied index and
 * reports it; the group records (index, term, configuration at index),
 * keeps a copy of the bytes to send, and drops log entries up to
 * index - compact_keep.
 *
 * Sending: a follower whose next entry was compacted away gets the snapshot
 * in chunks of snapshot_chunk bytes, one outstanding at a time; the
 * follower answers each with the number of contiguous bytes it holds, and
 * heartbeats resend the current chunk, so loss, duplication and reordering
 * only cost time.
 *
 * Installing (InstallSnapshot receiver, Figure 13): "If existing log entry
 * has same index and term as snapshot's last included entry, retain log
 * entries following it"; otherwise discard the entire log and reset the
 * state machine to the snapshot. A snapshot at or below the commit index
 * carries nothing new and is only acknowledged.
 */
#include "raft/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Membership as of index: the last CONF entry at or below it. The log
 * holds none after conf_index, so when that is at or below index it is
 * r->conf: no walk back over every entry since the last compaction (a
 * memtable's worth, cold: perf put the walk at 5% of a follower's CPU). */
static void conf_at(const struct raft *r, uint64_t index, struct raft_conf *out)
{
	if (r->conf_index <= index) {
		*out = r->conf;
		return;
	}
	for (uint64_t i = index; i > r->log.offset; i--) {
		const struct raft_entry *e = raft_log_get(&r->log, i);
		if (e->type == RAFT_ENTRY_CONF &&
		    raft_conf_decode(e->data, e->len, out) == 0)
			return;
	}
	*out = r->snap.conf;
}

int raft_snapshot_taken(struct raft *r, uint64_t index, const void *data,
			size_t len)
{
	if (index <= r->snap.index)
		return 0;
	if (index > r->applied || index > r->persisted || (len && !data))
		return -EINVAL;
	void *copy = NULL;
	if (len) {
		copy = malloc(len);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, data, len);
	}
	struct raft_snapshot_meta meta;
	raft_log_term(&r->log, index, &meta.term);
	meta.index = index;
	conf_at(r, index, &meta.conf);
	r->snap = meta;
	free(r->snap_data);
	r->snap_data = copy;
	r->snap_len = len;
	if (r->persisted < index)
		r->persisted = index;
	uint64_t keep = r->cfg.compact_keep;
	if (index > r->log.offset + keep)
		raft_log_compact(&r->log, index - keep);
	return 0;
}

void raft_send_snapshot(struct raft *r, struct raft_progress *pr)
{
	if (pr->state != PROGRESS_SNAPSHOT || pr->snap_index != r->snap.index) {
		raft_progress_become(pr, PROGRESS_SNAPSHOT);
		pr->snap_index = r->snap.index;
		pr->snap_offset = 0;
	}
	uint64_t offset = pr->snap_offset;
	if (offset > r->snap_len)
		offset = 0;
	uint64_t n = r->snap_len - offset;
	if (n > r->cfg.snapshot_chunk)
		n = r->cfg.snapshot_chunk;
	struct raft_msg *m = raft_msg_new(r, RAFT_MSG_SNAPSHOT, pr->id);
	if (!m)
		return;
	m->index = r->snap.index;
	m->log_term = r->snap.term;
	m->conf = &r->snap.conf;
	m->offset = offset;
	/* A snapshot restored without data (snap_len 0) has no buffer. */
	m->data = r->snap_data ? (const uint8_t *)r->snap_data + offset : NULL;
	m->len = (uint32_t)n;
	m->done = offset + n == r->snap_len;
}

static void reply(struct raft *r, uint64_t to, uint64_t index, uint64_t held)
{
	struct raft_msg *m = raft_msg_new(r, RAFT_MSG_SNAPSHOT_RESP, to);
	if (!m)
		return;
	m->index = index;
	m->offset = held;
}

static void ack(struct raft *r, uint64_t to)
{
	struct raft_msg *m = raft_msg_new(r, RAFT_MSG_APPEND_RESP, to);
	if (m)
		m->index = r->persisted < r->leader_match ? r->persisted
							  : r->leader_match;
}

static void recv_free(struct raft *r)
{
	if (r->recv)
		free(r->recv->data);
	free(r->recv);
	r->recv = NULL;
}

static void install(struct raft *r, uint64_t from)
{
	struct raft_snap_recv *recv = r->recv;
	uint64_t term;
	if (raft_log_term(&r->log, recv->meta.index, &term) &&
	    term == recv->meta.term) {
		/* Figure 13 rule 6: our log already holds it; keep the tail */
		if (recv->meta.index > r->leader_match)
			r->leader_match = recv->meta.index;
		raft_follower_commit(r, recv->meta.index);
		recv_free(r);
		ack(r, from);
		return;
	}
	raft_log_reset(&r->log, recv->meta.index, recv->meta.term);
	raft_persist_cut(r);
	r->snap = recv->meta;
	free(r->snap_data);
	r->snap_data = recv->data;
	r->snap_len = recv->len;
	recv->data = NULL;
	recv_free(r);
	r->commit = r->applied = r->persisted = r->snap.index;
	r->leader_match = r->snap.index;
	r->unstable_from = r->snap.index + 1;
	r->conf = r->snap.conf;
	r->conf_index = r->snap.index;
	r->snap_installed = true;
	ack(r, from);
}

void raft_handle_snapshot(struct raft *r, const struct raft_msg *m)
{
	r->election_elapsed = 0;
	if (m->index <= r->commit) {
		if (r->commit > r->leader_match)
			r->leader_match = r->commit;
		ack(r, m->from);
		return;
	}
	if (!r->recv) {
		r->recv = calloc(1, sizeof(*r->recv));
		if (!r->recv) {
			r->err = -ENOMEM;
			return;
		}
	}
	struct raft_snap_recv *recv = r->recv;
	if (recv->meta.index != m->index || recv->meta.term != m->log_term) {
		if (m->offset != 0) {
			reply(r, m->from, m->index, 0);
			return;
		}
		recv->meta.index = m->index;
		recv->meta.term = m->log_term;
		recv->meta.conf = *m->conf;
		recv->len = 0;
	}
	if (m->offset > recv->len) {
		reply(r, m->from, m->index, recv->len);
		return;
	}
	uint64_t end = m->offset + m->len;
	if (end > recv->len) {
		if (end > recv->cap) {
			uint64_t cap = recv->cap ? recv->cap : 256;
			while (cap < end)
				cap *= 2;
			uint8_t *grown = realloc(recv->data, cap);
			if (!grown) {
				r->err = -ENOMEM;
				return;
			}
			recv->data = grown;
			recv->cap = cap;
		}
		memcpy(recv->data + recv->len,
		       (const uint8_t *)m->data + (recv->len - m->offset),
		       end - recv->len);
		recv->len = end;
	}
	if (m->done && end == recv->len)
		install(r, m->from);
	else
		reply(r, m->from, m->index, recv->len);
}

void raft_handle_snapshot_resp(struct raft *r, const struct raft_msg *m)
{
	if (r->role != RAFT_LEADER)
		return;
	struct raft_progress *pr = raft_progress_get(r, m->from);
	if (!pr)
		return;
	pr->recent_active = true;
	if (pr->state != PROGRESS_SNAPSHOT || m->index != pr->snap_index)
		return;
	if (m->offset <= pr->snap_offset) {
		/* a duplicate, or the follower lost bytes (restart): rewind
		 * and let the next heartbeat resend, so duplicates cannot
		 * multiply chunks */
		pr->snap_offset = m->offset;
		return;
	}
	pr->snap_offset = m->offset;
	raft_send_snapshot(r, pr);
}
