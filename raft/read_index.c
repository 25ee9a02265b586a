/*
 * ReadIndex (§6.4): linearizable reads without writing to the log.
 *
 *   1. The read's index is the leader's commit index, raised to the index
 *      of the leader's own NOOP if that is not committed yet (every entry
 *      committed before this term lies below it, by Leader Completeness).
 *   2. The leader confirms it is still the leader by a heartbeat round
 *      acknowledged by a majority, sent after the read arrived.
 *   3. The caller serves the read once its state machine has applied up to
 *      the index.
 * Batching: reads arriving while a round is out join the next round, and
 * one round confirms every read queued behind it. A leader that steps down
 * fails its pending reads (index 0) so callers retry elsewhere.
 */
#include "raft/internal.h"

#include <errno.h>
#include <stdlib.h>

static void send_round(struct raft *r)
{
	r->read_sent_round = r->read_next_round++;
	r->heartbeat_elapsed = 0;
	raft_bcast_heartbeat(r);
}

static bool alone(const struct raft *r)
{
	return raft_is_voter(r) && raft_quorum_size(&r->conf) == 1;
}

int raft_read_index(struct raft *r, uint64_t id)
{
	if (r->role != RAFT_LEADER)
		return RAFT_ENOTLEADER;
	uint64_t index = r->commit > r->term_start ? r->commit : r->term_start;
	if (alone(r)) {
		raft_ready_push(r, id, index);
		return 0;
	}
	if (r->n_reads == r->cap_reads) {
		uint32_t cap = r->cap_reads ? r->cap_reads * 2 : 4;
		struct raft_read *grown = realloc(r->reads, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		r->reads = grown;
		r->cap_reads = cap;
	}
	struct raft_read *read = &r->reads[r->n_reads++];
	read->id = id;
	read->index = index;
	read->round = r->read_next_round;
	if (r->read_sent_round == r->read_done_round)
		send_round(r);
	return 0;
}

void raft_read_ack(struct raft *r)
{
	if (r->n_reads == 0)
		return;
	uint64_t done = raft_quorum_value(r, r->read_sent_round, true);
	if (done <= r->read_done_round)
		return;
	r->read_done_round = done;
	uint32_t kept = 0;
	bool waiting = false;
	for (uint32_t i = 0; i < r->n_reads; i++) {
		struct raft_read *read = &r->reads[i];
		if (read->round <= done) {
			raft_ready_push(r, read->id, read->index);
		} else {
			waiting |= read->round > r->read_sent_round;
			r->reads[kept++] = *read;
		}
	}
	r->n_reads = kept;
	if (waiting && r->read_sent_round == r->read_done_round)
		send_round(r);
}

void raft_reads_fail(struct raft *r)
{
	for (uint32_t i = 0; i < r->n_reads; i++)
		raft_ready_push(r, r->reads[i].id, 0);
	r->n_reads = 0;
	free(r->reads);
	r->reads = NULL;
	r->cap_reads = 0;
}
