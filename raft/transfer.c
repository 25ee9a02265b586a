/*
 * Leadership transfer (§3.10). The leader stops accepting proposals, brings
 * the target's log up to date, then sends TIMEOUT_NOW; the target campaigns
 * at once, skipping pre-vote, and its votes carry a flag so that voters who
 * still hear from the old leader do not ignore them. Without a result
 * within an election timeout the leader aborts the transfer and serves
 * proposals again. Safety does not depend on any of this: the target still
 * needs an up-to-date log and a majority of votes.
 */
#include "raft/internal.h"

int raft_transfer(struct raft *r, uint64_t target)
{
	if (r->role != RAFT_LEADER)
		return RAFT_ENOTLEADER;
	if (target == r->cfg.id)
		return 0;
	struct raft_progress *pr = raft_progress_get(r, target);
	if (!pr || !pr->voter)
		return RAFT_EBADCONF;
	if (r->transferee == target)
		return 0;
	r->transferee = target;
	r->transfer_elapsed = 0;
	if (pr->match == raft_log_last_index(&r->log))
		raft_transfer_check(r, pr);
	else
		raft_send_append(r, pr, false);
	return 0;
}

void raft_transfer_check(struct raft *r, struct raft_progress *pr)
{
	if (r->role != RAFT_LEADER || r->transferee != pr->id ||
	    pr->match != raft_log_last_index(&r->log))
		return;
	raft_msg_new(r, RAFT_MSG_TIMEOUT_NOW, pr->id);
}

void raft_handle_timeout_now(struct raft *r, const struct raft_msg *m)
{
	(void)m;
	if (r->role == RAFT_LEADER)
		return;
	raft_campaign(r, false, true);
}
