/*
 * "Was I a member?": the asks, the answers and the decision of a replica
 * that started empty (see cluster/wiped_probe.h for the rule and why it is
 * safe). Every input comes from the network: nothing here asserts on it.
 */
#include "cluster/wiped_probe.h"

#include <assert.h>
#include <string.h>

#include "cluster/replica_ident.h"

void wiped_probe_init(struct wiped_probe *p, uint64_t self_node, uint64_t dir_id,
		      const struct raft_conf *conf)
{
	assert(dir_id != 0 && conf->n <= RAFT_MAX_SERVERS);
	memset(p, 0, sizeof *p);
	p->self_node = self_node;
	p->dir_id = dir_id;
	for (uint32_t i = 0; i < conf->n; i++) {
		uint64_t node = replica_ident_node(conf->servers[i].id);
		bool seen = node == self_node;

		for (uint32_t k = 0; k < p->nothers && !seen; k++)
			seen = p->others[k] == node;
		if (!seen)
			p->others[p->nothers++] = node;
	}
}

bool wiped_probe_is_ask(const struct raft_msg *m)
{
	return m->type == RAFT_MSG_HEARTBEAT_RESP && m->term == 0 && m->hint == WIPED_PROBE_ASK &&
	       replica_ident_inc(m->from) == 0 && m->context != 0;
}

bool wiped_probe_is_answer(const struct raft_msg *m)
{
	return m->type == RAFT_MSG_HEARTBEAT && m->term == 0 && m->hint == WIPED_PROBE_ANSWER;
}

void wiped_probe_ask(const struct wiped_probe *p, uint64_t from, uint32_t i,
		     struct raft_msg *out)
{
	assert(i < p->nothers);
	memset(out, 0, sizeof *out);
	out->type = RAFT_MSG_HEARTBEAT_RESP;
	out->from = from;
	out->to = replica_ident(p->others[i], 0); /* routed by its node part */
	out->hint = WIPED_PROBE_ASK;
	out->context = p->dir_id;
}

void wiped_probe_answer(const struct raft_msg *ask, uint64_t self, const struct raft_conf *conf,
			uint64_t h, uint64_t last, unsigned flags, uint64_t own_dir,
			struct raft_msg *out)
{
	uint64_t node = replica_ident_node(ask->from), member = RAFT_NONE;

	/* The newest identity of the asker's node in our configuration
	 * (during a rejoin both the old and the new one are members). */
	for (uint32_t i = 0; i < conf->n; i++)
		if (replica_ident_node(conf->servers[i].id) == node &&
		    (member == RAFT_NONE ||
		     replica_ident_inc(conf->servers[i].id) > replica_ident_inc(member)))
			member = conf->servers[i].id;
	memset(out, 0, sizeof *out);
	out->type = RAFT_MSG_HEARTBEAT;
	out->from = self;
	out->to = member != RAFT_NONE ? member : replica_ident(node, 0);
	out->hint = WIPED_PROBE_ANSWER;
	out->context = ask->context;
	out->log_term = h;
	out->index = last;
	out->commit = own_dir; /* the answerer's data dir id */
	out->offset = (flags & WIPED_ANSWER_FLAGS & ~WIPED_ANSWER_MEMBER) | (member != RAFT_NONE ? WIPED_ANSWER_MEMBER : 0);
}

static int other_index(const struct wiped_probe *p, uint64_t node)
{
	for (uint32_t i = 0; i < p->nothers; i++)
		if (p->others[i] == node)
			return (int)i;
	return -1;
}

static void note_member(struct wiped_probe *p, uint64_t to)
{
	if (replica_ident_node(to) == p->self_node && replica_ident_inc(to) > p->max_inc)
		p->max_inc = replica_ident_inc(to);
}

enum wiped_outcome wiped_probe_take(struct wiped_probe *p, const struct raft_msg *m)
{
	int i = other_index(p, replica_ident_node(m->from));

	if (i < 0 || replica_ident_node(m->to) != p->self_node)
		return wiped_probe_decide(p);
	if (wiped_probe_is_answer(m)) {
		unsigned flags = (unsigned)(m->offset & WIPED_ANSWER_FLAGS);

		if (m->context != p->dir_id)
			return wiped_probe_decide(p); /* asked by an earlier data dir */
		/* The answerer's HISTORY flag says it (a term above the one it
		 * skipped to, a vote, a log, a flushed shard, amnesia; an older
		 * build's covers any term): its h > 0 alone is none, a log is. */
		if (flags & WIPED_ANSWER_VOUCH) {
			flags &= ~WIPED_ANSWER_HISTORY;
		} else {
			if (m->index > 0 || m->log_term > WIPED_TERM_MAX)
				flags |= WIPED_ANSWER_HISTORY;
			if (m->log_term > p->max_h && m->log_term <= WIPED_TERM_MAX)
				p->max_h = m->log_term;
		}
		/* The latest answer replaces the earlier one: a member that
		 * was asking may have settled since (fresh, or with a
		 * history). What an answer showed of the group stays: a
		 * history seen (p->history), the newest incarnation named
		 * (p->max_inc), the dir that said it was asking (the vouch). */
		p->heard[i] = true;
		p->flags[i] = (uint8_t)flags;
		if (flags & WIPED_ANSWER_ASKING)
			p->asking_dir[i] = m->commit;
		p->ids[i] = m->from;
		if (flags & WIPED_ANSWER_HISTORY)
			p->history = true;
		if (flags & WIPED_ANSWER_MEMBER)
			note_member(p, m->to);
	}
	/* A leader's APPEND or HEARTBEAT is no answer: the group has a
	 * history, but this replica may be one its members vouch for (a new
	 * cluster's member a little later than the others to decide), which
	 * only their answers say. The leader answers the asks too. */
	return wiped_probe_decide(p);
}

enum wiped_outcome wiped_probe_decide(const struct wiped_probe *p)
{
	uint32_t heard = 0, settled = 0, majority = p->nothers / 2 + 1;

	if (p->nothers == 0)
		return WIPED_FRESH; /* nobody else: nothing to have promised */
	for (uint32_t i = 0; i < p->nothers; i++) {
		if (!p->heard[i])
			continue;
		heard++;
		if (!(p->flags[i] & WIPED_ANSWER_ASKING) &&
		    (p->flags[i] & (WIPED_ANSWER_HCOMPLETE | WIPED_ANSWER_VOUCH)))
			settled++;
	}
	if (heard >= majority) {
		if (p->history)
			return WIPED_AMNESIAC;
		if (settled >= majority || heard == p->nothers)
			return WIPED_FRESH;
	}
	/* The operator's statement (self_new): this node never took part,
	 * so nothing it promised can be lost; it waits only until it and
	 * the members that answered, none with a history, are a majority
	 * of the group (fewer could elect nothing anyway). */
	if (p->self_new && !p->history && 1 + heard >= (p->nothers + 1) / 2 + 1)
		return WIPED_FRESH;
	return WIPED_WAIT;
}

uint64_t wiped_probe_skip_term(const struct wiped_probe *p)
{
	return p->max_h > 0 ? p->max_h + 1 : 0;
}

bool wiped_probe_unsettled(const struct wiped_probe *p, uint32_t i)
{
	assert(i < p->nothers);
	return !p->heard[i] || (p->flags[i] & WIPED_ANSWER_ASKING);
}

uint32_t wiped_probe_incarnation(const struct wiped_probe *p)
{
	return p->max_inc + 1;
}

uint64_t wiped_probe_member(const struct wiped_probe *p, uint32_t i)
{
	assert(i < p->nothers);
	return p->heard[i] && p->ids[i] != RAFT_NONE ? p->ids[i] : replica_ident(p->others[i], 0);
}
