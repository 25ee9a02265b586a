/*
 * Directed fault schedules for raft-sim: states a rule only matters in,
 * which the random schedules of main.c reach too rarely to count on (the
 * simulator's coverage counters say how rarely), played out on a converged
 * cluster with the seed's own timings. Each is a sequence of ordinary
 * faults (disk stalls, one-way cuts, crashes that keep part of the queued
 * writes); nothing here checks anything: check.c's invariants, run after
 * every step as always, judge what the library does.
 */
#include "tests/sim/scenario.h"

#include <stdlib.h>

struct stale_tail {
	uint64_t old_leader, follower, term;
	uint64_t upto; /* run until every other member holds this durably */
};

static bool others_hold(struct sim *s, void *arg)
{
	const struct stale_tail *st = arg;
	struct raft *r = sim_raft(s, st->old_leader);
	if (!r || raft_commit_index(r) < st->upto)
		return false;
	const struct raft_conf *conf = raft_conf(r);
	for (uint32_t i = 0; i < conf->n; i++) {
		uint64_t id = conf->servers[i].id;
		struct raft *m = sim_raft(s, id);
		if (id != st->follower && m && raft_persisted_index(m) < st->upto)
			return false;
	}
	return true;
}

static bool leader_knows(struct sim *s, void *arg)
{
	const struct stale_tail *st = arg;
	struct raft *r = sim_raft(s, st->old_leader);
	uint64_t match = 0;
	return !r || raft_role(r) != RAFT_LEADER ||
	       (raft_follower_match(r, st->follower, &match) &&
		match >= st->upto);
}

static bool follower_has(struct sim *s, void *arg)
{
	const struct stale_tail *st = arg;
	struct raft *r = sim_raft(s, st->follower);
	return !r || raft_last_index(r) >= st->upto;
}

static bool new_leader(struct sim *s, void *arg)
{
	const struct stale_tail *st = arg;
	uint64_t l = sim_leader(s);
	return l && l != st->follower && raft_term(sim_raft(s, l)) > st->term;
}

/* The follower's log holds, at upto, an entry of the current leader's
 * term: it took the new leader's first APPEND. */
static bool follower_overwrote(struct sim *s, void *arg)
{
	const struct stale_tail *st = arg;
	struct raft *f = sim_raft(s, st->follower);
	uint64_t l = sim_leader(s), term;
	return !f || !l ||
	       (raft_term_at(f, st->upto, &term) &&
		term == raft_term(sim_raft(s, l)));
}

static uint64_t pick(const struct raft_conf *conf, uint64_t not,
		     struct raft_rng *rng, struct sim *s)
{
	uint64_t ids[RAFT_MAX_SERVERS];
	int n = 0;
	for (uint32_t i = 0; i < conf->n; i++)
		if (conf->servers[i].id != not && sim_raft(s, conf->servers[i].id))
			ids[n++] = conf->servers[i].id;
	return n ? ids[raft_rng_below(rng, (uint64_t)n)] : RAFT_NONE;
}

/*
 * A follower F whose disk stalls holds entries p+1..j that every other
 * member makes durable, then j+1..k that only it receives from the leader
 * O; O crashes losing j+1..k, and a new leader L (lacking them) is elected
 * while F cannot campaign. L's first APPEND matches F at j and overwrites
 * j+1; F acknowledges p (all its disk holds) and crashes before the
 * overwrite lands but after its queued writes of p+1..k do. F comes back
 * with k entries, p+1..j matching L and j+1..k a stale tail; L re-probes
 * from p+1 with entries that all match (one per APPEND in some seeds) and
 * a commit index past j: Figure 2's rule 5 is what keeps F from committing
 * (and acknowledging) its stale tail.
 */
static void stale_tail(struct sim *s, struct raft_rng *rng,
		       uint32_t delay_max, struct stale_tail *st);

void scenario_stale_tail(struct sim *s, struct raft_rng *rng,
			 uint32_t delay_max)
{
	struct stale_tail st = {.old_leader = sim_leader(s)};
	/* a steady network (every message takes the longest delay, so none
	 * overtakes another): the follower must take the entries in order
	 * while its acknowledgements stay stuck */
	uint32_t delay_min = s->opts.delay_min;
	s->opts.delay_min = s->opts.delay_max;
	stale_tail(s, rng, delay_max, &st);
	s->opts.delay_min = delay_min;
	/* whatever step it stopped at, no disk stays stalled */
	if (st.old_leader)
		sim_disk_thaw(s, st.old_leader);
	if (st.follower)
		sim_disk_thaw(s, st.follower);
}

static void stale_tail(struct sim *s, struct raft_rng *rng,
		       uint32_t delay_max, struct stale_tail *stp)
{
	struct stale_tail st = *stp;
	if (!st.old_leader)
		return;
	struct raft *o = sim_raft(s, st.old_leader);
	st.term = raft_term(o);
	const struct raft_conf *conf = raft_conf(o);
	int voters = 0;
	for (uint32_t i = 0; i < conf->n; i++)
		voters += conf->servers[i].role == RAFT_VOTER;
	st.follower = pick(conf, st.old_leader, rng, s);
	if (voters < 3 || !st.follower ||
	    raft_conf_role(conf, st.old_leader) != RAFT_VOTER)
		return;
	*stp = st;
	uint64_t f = st.follower;
	/* one entry F acknowledges first: its leader then replicates to it
	 * in a pipeline (a probing leader would send one APPEND at a time) */
	sim_propose(s, st.old_leader, 0, NULL);
	st.upto = raft_last_index(o);
	if (!sim_run_while_not(s, s->now + 1000, leader_knows, &st) ||
	    raft_role(o) != RAFT_LEADER)
		return;
	sim_disk_freeze(s, f, s->now + 20000); /* until F crashes */
	for (uint64_t i = 2 + raft_rng_below(rng, 3); i > 0; i--)
		sim_propose(s, st.old_leader, (uint32_t)(i % SIM_KEYS), NULL);
	st.upto = raft_last_index(o);
	if (!sim_run_while_not(s, s->now + 2000, others_hold, &st))
		return;
	uint64_t j = st.upto;
	o = sim_raft(s, st.old_leader);
	sim_disk_freeze(s, st.old_leader, s->now + 20000);
	for (uint64_t b = 1; b <= SIM_MAX_NODES; b++)
		if (b != f)
			sim_cut(s, st.old_leader, b, true);
	for (uint64_t i = 1 + raft_rng_below(rng, 3); i > 0; i--)
		sim_propose(s, st.old_leader, (uint32_t)(i % SIM_KEYS), NULL);
	st.upto = raft_last_index(o);
	if (!sim_run_while_not(s, s->now + 500, follower_has, &st))
		return;
	/* O loses j+1..k; F may not lead (its log is the longest) */
	sim_crash_cut(s, st.old_leader, 0);
	sim_heal(s);
	for (uint64_t b = 1; b <= SIM_MAX_NODES; b++)
		sim_cut(s, f, b, true);
	sim_restart(s, st.old_leader);
	if (!sim_run_while_not(s, s->now + 3000, new_leader, &st))
		return;
	sim_heal(s);
	st.upto = j + 1;
	if (!sim_run_while_not(s, s->now + 1000, follower_overwrote, &st) ||
	    !sim_raft(s, f))
		return;
	/* F's queued writes land, the overwrite does not */
	uint64_t queued = sim_queued_writes(s, f);
	sim_crash_cut(s, f, queued ? queued - 1 : 0);
	sim_run_until(s, s->now + 3ULL * delay_max + 20);
	sim_restart(s, f);
}
