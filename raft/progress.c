/*
 * A leader's view of each member (§5.3 nextIndex[] and matchIndex[]) and the
 * flow control of replication:
 *   PROBE      one APPEND at a time until the follower's match is found;
 *   REPLICATE  APPENDs pipelined, at most max_inflight_msgs messages and
 *              max_inflight_bytes entry bytes unacknowledged per follower;
 *   SNAPSHOT   the follower is behind the log's start and gets chunks.
 * Invariant: match < next, and match only grows while a leader lasts.
 * Quorum arithmetic lives here too: everything a leader decides by majority
 * (commit, ReadIndex rounds, check-quorum) asks raft_quorum_value().
 */
#include "raft/internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int raft_progress_reset(struct raft *r)
{
	uint32_t n = r->conf.n ? r->conf.n : 1;
	struct raft_progress *fresh = calloc(n, sizeof(*fresh));
	if (!fresh) {
		r->err = -ENOMEM;
		return -ENOMEM;
	}
	uint64_t last = raft_log_last_index(&r->log);
	for (uint32_t i = 0; i < r->conf.n; i++) {
		const struct raft_server *s = &r->conf.servers[i];
		struct raft_progress *pr = &fresh[i];
		const struct raft_progress *old = raft_progress_get(r, s->id);
		if (old) {
			*pr = *old;
		} else {
			pr->id = s->id;
			pr->next = last + 1;
			pr->state = PROGRESS_PROBE;
			pr->recent_active = true;
		}
		pr->voter = s->role == RAFT_VOTER;
	}
	free(r->progress);
	r->progress = fresh;
	r->n_progress = r->conf.n;
	return 0;
}

void raft_progress_free(struct raft *r)
{
	free(r->progress);
	r->progress = NULL;
	r->n_progress = 0;
}

struct raft_progress *raft_progress_get(struct raft *r, uint64_t id)
{
	for (uint32_t i = 0; i < r->n_progress; i++)
		if (r->progress[i].id == id)
			return &r->progress[i];
	return NULL;
}

bool raft_progress_paused(const struct raft *r, const struct raft_progress *pr)
{
	switch (pr->state) {
	case PROGRESS_PROBE:
		return pr->probe_sent;
	case PROGRESS_REPLICATE:
		return pr->inflight_count >= r->cfg.max_inflight_msgs ||
		       pr->inflight_bytes >= r->cfg.max_inflight_bytes;
	default:
		return true;
	}
}

void raft_progress_sent(struct raft *r, struct raft_progress *pr,
			uint64_t last, uint64_t bytes)
{
	if (pr->state == PROGRESS_PROBE) {
		pr->probe_sent = true;
		return;
	}
	assert(pr->state == PROGRESS_REPLICATE);
	if (last < pr->next)
		return; /* empty APPEND: nothing in flight */
	assert(pr->inflight_count < r->cfg.max_inflight_msgs);
	uint32_t slot = (pr->inflight_head + pr->inflight_count) %
			RAFT_MAX_INFLIGHT;
	pr->inflight[slot].last = last;
	pr->inflight[slot].bytes = bytes;
	pr->inflight_count++;
	pr->inflight_bytes += bytes;
	pr->next = last + 1;
}

static void inflight_free_to(struct raft_progress *pr, uint64_t index)
{
	while (pr->inflight_count &&
	       pr->inflight[pr->inflight_head].last <= index) {
		pr->inflight_bytes -= pr->inflight[pr->inflight_head].bytes;
		pr->inflight_head = (pr->inflight_head + 1) % RAFT_MAX_INFLIGHT;
		pr->inflight_count--;
	}
}

bool raft_progress_update(struct raft_progress *pr, uint64_t match)
{
	if (match + 1 > pr->next)
		pr->next = match + 1;
	if (match <= pr->match)
		return false;
	pr->match = match;
	pr->stall = 0;
	pr->probe_sent = false;
	inflight_free_to(pr, match);
	return true;
}

bool raft_progress_decr(struct raft_progress *pr, uint64_t rejected,
			uint64_t match_hint)
{
	switch (pr->state) {
	case PROGRESS_REPLICATE:
		if (rejected <= pr->match)
			return false; /* stale: that index is known to match */
		raft_progress_become(pr, PROGRESS_PROBE);
		return true;
	case PROGRESS_PROBE: {
		if (pr->next - 1 != rejected)
			return false; /* answer to an older probe */
		uint64_t next = rejected < match_hint + 1 ? rejected
							  : match_hint + 1;
		if (next < pr->match + 1)
			next = pr->match + 1;
		pr->next = next;
		pr->probe_sent = false;
		return true;
	}
	default:
		return false;
	}
}

void raft_progress_become(struct raft_progress *pr, uint8_t state)
{
	pr->state = state;
	pr->probe_sent = false;
	pr->stall = 0;
	pr->inflight_head = pr->inflight_count = 0;
	pr->inflight_bytes = 0;
	if (state != PROGRESS_SNAPSHOT)
		pr->next = pr->match + 1;
}

uint64_t raft_quorum_value(const struct raft *r, uint64_t self_value,
			   bool read_ack)
{
	uint64_t values[RAFT_MAX_SERVERS];
	int n = 0;
	for (uint32_t i = 0; i < r->n_progress; i++) {
		const struct raft_progress *pr = &r->progress[i];
		if (!pr->voter)
			continue;
		uint64_t v = pr->id == r->cfg.id ? self_value
			     : read_ack          ? pr->read_ack
						 : pr->match;
		int j = n++;
		while (j > 0 && values[j - 1] < v) {
			values[j] = values[j - 1];
			j--;
		}
		values[j] = v;
	}
	int quorum = n / 2 + 1;
	return n ? values[quorum - 1] : 0;
}
