/*
 * Membership changes, one server at a time (Ongaro's dissertation, §4.1):
 * add a learner, promote a caught-up learner to voter, remove any member.
 * Adding or removing one voter means any majority of the old configuration
 * and any majority of the new one intersect, so no two leaders can be
 * elected for one term across the change.
 *
 * Rules:
 *   - A server uses the latest configuration in its log, committed or not;
 *     truncating that entry away rolls the configuration back.
 *   - A leader appends a change only when the previous one is committed
 *     and it has committed an entry of its own term (the fix for the
 *     single-server bug of one-at-a-time changes, §4.1 errata).
 *   - A learner is promoted only once it holds every committed entry
 *     (catch-up), so the new voter does not stall commits.
 *   - A leader removed from the configuration keeps leading, without
 *     counting itself, until the change commits, then steps down (§4.2.2).
 */
#include "raft/internal.h"

#include <string.h>

void raft_conf_reload(struct raft *r)
{
	for (uint64_t i = raft_log_last_index(&r->log); i > r->log.offset; i--) {
		const struct raft_entry *e = raft_log_get(&r->log, i);
		struct raft_conf conf;
		if (e->type == RAFT_ENTRY_CONF &&
		    raft_conf_decode(e->data, e->len, &conf) == 0) {
			r->conf = conf;
			r->conf_index = i;
			return;
		}
	}
	r->conf = r->snap.conf;
	r->conf_index = r->snap.index;
}

static int voters(const struct raft_conf *conf)
{
	int n = 0;
	for (uint32_t i = 0; i < conf->n; i++)
		n += conf->servers[i].role == RAFT_VOTER;
	return n;
}

int raft_conf_change(struct raft *r, uint32_t op, uint64_t id)
{
	if (r->role != RAFT_LEADER)
		return RAFT_ENOTLEADER;
	if (r->transferee != RAFT_NONE || r->conf_index > r->commit ||
	    r->commit < r->term_start)
		return RAFT_EBUSY;
	struct raft_conf conf = r->conf;
	int pos = raft_conf_index_of(&conf, id);
	switch (op) {
	case RAFT_CONF_ADD_LEARNER:
		if (id == RAFT_NONE || pos >= 0 || conf.n == RAFT_MAX_SERVERS)
			return RAFT_EBADCONF;
		conf.servers[conf.n].id = id;
		conf.servers[conf.n].role = RAFT_LEARNER;
		conf.n++;
		break;
	case RAFT_CONF_PROMOTE: {
		if (pos < 0 || conf.servers[pos].role != RAFT_LEARNER)
			return RAFT_EBADCONF;
		const struct raft_progress *pr = raft_progress_get(r, id);
		if (!pr || pr->match < r->commit)
			return RAFT_ENOTREADY;
		conf.servers[pos].role = RAFT_VOTER;
		break;
	}
	case RAFT_CONF_REMOVE:
		if (pos < 0 || (conf.servers[pos].role == RAFT_VOTER &&
				voters(&conf) == 1))
			return RAFT_EBADCONF;
		memmove(&conf.servers[pos], &conf.servers[pos + 1],
			(conf.n - (uint32_t)pos - 1) * sizeof(conf.servers[0]));
		conf.n--;
		memset(&conf.servers[conf.n], 0, sizeof(conf.servers[0]));
		break;
	default:
		return RAFT_EBADCONF;
	}
	uint8_t buf[RAFT_CONF_ENCODED_MAX];
	size_t len = raft_conf_encode(&conf, buf);
	int rv = raft_append_local(r, RAFT_ENTRY_CONF, buf, (uint32_t)len);
	if (rv != 0)
		return rv;
	rv = raft_progress_reset(r);
	if (rv != 0)
		return rv;
	raft_maybe_commit(r);
	if (r->role == RAFT_LEADER)
		raft_bcast_append(r);
	return 0;
}

void raft_conf_committed(struct raft *r)
{
	if (r->commit >= r->conf_index && !raft_is_voter(r))
		raft_become_follower(r, r->term, RAFT_NONE);
}
