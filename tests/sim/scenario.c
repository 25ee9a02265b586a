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

/* The cast of a scenario: the leader O when it starts, its term, and the
 * follower F the faults centre on. */
struct scene {
	uint64_t old_leader, follower, term;
	uint64_t upto; /* the index the step being waited for is about */
};

static bool others_hold(struct sim *s, void *arg)
{
	const struct scene *st = arg;
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
	const struct scene *st = arg;
	struct raft *r = sim_raft(s, st->old_leader);
	uint64_t match = 0;
	return !r || raft_role(r) != RAFT_LEADER ||
	       (raft_follower_match(r, st->follower, &match) &&
		match >= st->upto);
}

static bool follower_has(struct sim *s, void *arg)
{
	const struct scene *st = arg;
	struct raft *r = sim_raft(s, st->follower);
	return !r || raft_last_index(r) >= st->upto;
}

static bool new_leader(struct sim *s, void *arg)
{
	const struct scene *st = arg;
	uint64_t l = sim_leader(s);
	return l && l != st->follower && raft_term(sim_raft(s, l)) > st->term;
}

/* The follower's log holds, at upto, an entry of the current leader's
 * term: it took the new leader's first APPEND. */
static bool follower_overwrote(struct sim *s, void *arg)
{
	const struct scene *st = arg;
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

/* Pick the leader O and a follower F (voter or learner) of a group of at
 * least 3 voters, and have F acknowledge one fresh entry: O then
 * replicates to it in a pipeline (a probing leader would send one APPEND
 * at a time). False when the cluster does not allow it. */
static bool setup(struct sim *s, struct raft_rng *rng, struct scene *st)
{
	if (!st->old_leader)
		return false;
	struct raft *o = sim_raft(s, st->old_leader);
	st->term = raft_term(o);
	const struct raft_conf *conf = raft_conf(o);
	int voters = 0;
	for (uint32_t i = 0; i < conf->n; i++)
		voters += conf->servers[i].role == RAFT_VOTER;
	st->follower = pick(conf, st->old_leader, rng, s);
	if (voters < 3 || !st->follower ||
	    raft_conf_role(conf, st->old_leader) != RAFT_VOTER)
		return false;
	sim_propose(s, st->old_leader, 0, NULL);
	st->upto = raft_last_index(o);
	return sim_run_while_not(s, s->now + 1000, leader_knows, st) &&
	       raft_role(o) == RAFT_LEADER;
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
		       uint32_t delay_max, struct scene *st)
{
	uint64_t f = st->follower;
	struct raft *o = sim_raft(s, st->old_leader);
	sim_disk_freeze(s, f, s->now + 20000); /* until F crashes */
	for (uint64_t i = 2 + raft_rng_below(rng, 3); i > 0; i--)
		sim_propose(s, st->old_leader, (uint32_t)(i % SIM_KEYS), NULL);
	st->upto = raft_last_index(o);
	if (!sim_run_while_not(s, s->now + 2000, others_hold, st))
		return;
	uint64_t j = st->upto;
	o = sim_raft(s, st->old_leader);
	sim_disk_freeze(s, st->old_leader, s->now + 20000);
	for (uint64_t b = 1; b <= SIM_MAX_NODES; b++)
		if (b != f)
			sim_cut(s, st->old_leader, b, true);
	for (uint64_t i = 1 + raft_rng_below(rng, 3); i > 0; i--)
		sim_propose(s, st->old_leader, (uint32_t)(i % SIM_KEYS), NULL);
	st->upto = raft_last_index(o);
	if (!sim_run_while_not(s, s->now + 500, follower_has, st))
		return;
	/* O loses j+1..k; F may not lead (its log is the longest) */
	sim_crash_cut(s, st->old_leader, 0);
	sim_heal(s);
	for (uint64_t b = 1; b <= SIM_MAX_NODES; b++)
		sim_cut(s, f, b, true);
	sim_restart(s, st->old_leader);
	if (!sim_run_while_not(s, s->now + 3000, new_leader, st))
		return;
	sim_heal(s);
	st->upto = j + 1;
	if (!sim_run_while_not(s, s->now + 1000, follower_overwrote, st) ||
	    !sim_raft(s, f))
		return;
	/* F's queued writes land, the overwrite does not */
	uint64_t queued = sim_queued_writes(s, f);
	sim_crash_cut(s, f, queued ? queued - 1 : 0);
	sim_run_until(s, s->now + 3ULL * delay_max + 20);
	sim_restart(s, f);
	s->directed++;
}

static bool follower_in_new_term(struct sim *s, void *arg)
{
	const struct scene *st = arg;
	struct raft *f = sim_raft(s, st->follower);
	return !f || raft_term(f) > st->term;
}

static bool old_leader_leads_again(struct sim *s, void *arg)
{
	const struct scene *st = arg;
	uint64_t l = sim_leader(s);
	return l && raft_term(sim_raft(s, l)) > st->term;
}

/*
 * The leader O loses entries it sent (not yet durable on it) and is
 * elected again in a later term; F, which took them, first hears of the
 * new term from O's own heartbeat, and then makes them durable. What F
 * knows matches its leader's log held for O in the old term only: F must
 * not acknowledge the lost entries to O's new term.
 */
static void lost_tail(struct sim *s, struct raft_rng *rng,
		      uint32_t tick_interval, struct scene *st)
{
	uint64_t f = st->follower;
	struct raft *o = sim_raft(s, st->old_leader);
	/* both disks stall; O's next entries reach F alone, which takes
	 * them (it now knows they match O's log) without making them
	 * durable */
	sim_disk_freeze(s, f, s->now + 20000);
	sim_disk_freeze(s, st->old_leader, s->now + 20000);
	for (uint64_t b = 1; b <= SIM_MAX_NODES; b++)
		if (b != f)
			sim_cut(s, st->old_leader, b, true);
	uint64_t cut_at = s->now;
	for (uint64_t i = 2 + raft_rng_below(rng, 3); i > 0; i--)
		sim_propose(s, st->old_leader, (uint32_t)(i % SIM_KEYS), NULL);
	st->upto = raft_last_index(o);
	if (!sim_run_while_not(s, s->now + 500, follower_has, st))
		return;
	/* F stops (SIGSTOP) before it hears of any new term; O crashes
	 * losing those entries and, restarted, campaigns as soon as the
	 * others stop hearing from a leader */
	sim_pause(s, f, s->now + 20000);
	sim_crash_cut(s, st->old_leader, 0);
	sim_heal(s);
	sim_cut(s, st->old_leader, f, true);
	sim_restart(s, st->old_leader);
	sim_run_until(s, cut_at + 10ULL * tick_interval + 1);
	sim_campaign(s, st->old_leader);
	if (!sim_run_while_not(s, s->now + 3000, old_leader_leads_again, st) ||
	    sim_leader(s) != st->old_leader)
		return;
	/* F resumes and first hears of the new term from O itself; then
	 * its stalled write of the entries O lost lands */
	sim_heal(s);
	sim_resume(s, f);
	if (!sim_run_while_not(s, s->now + 1000, follower_in_new_term, st))
		return;
	sim_disk_thaw(s, f);
	sim_run_until(s, s->now + 200);
	s->directed++;
}

static bool someone_else_leads(struct sim *s, void *arg)
{
	const struct scene *st = arg;
	uint64_t l = sim_leader(s);
	return l && l != st->old_leader;
}

static bool write_acknowledged(struct sim *s, void *arg)
{
	const struct sim_write *w = sim_write_get(s, *(const uint64_t *)arg);
	return !w || w->ack != SIM_NEVER || w->failed;
}

/*
 * A read reaches a deposed leader that does not know it yet, while the
 * acknowledgements of the heartbeat round it sent before it was cut off
 * are still on their way (§6.4). The leader O sends a ReadIndex round;
 * the followers acknowledge it; before the acknowledgements arrive O is
 * cut off and paused (SIGSTOP: it neither ticks nor receives). The others
 * elect a new leader, which acknowledges a write. O resumes, a client
 * reads the written key at O, and only then do the old acknowledgements
 * land: they confirm the round they echo, which began before the write
 * was acknowledged, not the read; O must not serve it from them.
 */
static void deposed_read(struct sim *s, struct raft_rng *rng,
			 uint32_t delay_max, struct scene *st)
{
	uint64_t o = st->old_leader;
	uint32_t key = (uint32_t)raft_rng_below(rng, SIM_KEYS);
	if (sim_read(s, o, key, NULL) != 0)
		return;
	/* the round's heartbeats arrive, the acknowledgements are sent */
	sim_run_until(s, s->now + delay_max + 1);
	sim_pause(s, o, s->now + 20000);
	sim_isolate(s, o, true);
	if (!sim_run_while_not(s, s->now + 3000, someone_else_leads, st))
		return;
	uint64_t value = 0;
	if (sim_propose(s, sim_leader(s), key, &value) != 0 ||
	    !sim_run_while_not(s, s->now + 3000, write_acknowledged, &value))
		return;
	/* the read begins strictly after the acknowledgement */
	sim_run_until(s, s->now + 1);
	sim_resume(s, o);
	if (sim_read(s, o, key, NULL) != 0)
		return;
	sim_run_until(s, s->now + 2ULL * delay_max + 20);
	sim_isolate(s, o, false);
	s->directed++;
}

typedef void scenario_fn(struct sim *s, struct raft_rng *rng, uint32_t param,
			 struct scene *st);

/* Set up and play one scenario on a steady network (every message takes
 * the longest delay, so none overtakes another: the follower takes the
 * leader's entries in order while its acknowledgements stay stuck), then
 * undo what it left: no disk stays stalled, no process paused. */
static void play(struct sim *s, struct raft_rng *rng, uint32_t param,
		 scenario_fn *fn)
{
	struct scene st = {.old_leader = sim_leader(s)};
	uint32_t delay_min = s->opts.delay_min;
	s->opts.delay_min = s->opts.delay_max;
	if (setup(s, rng, &st))
		fn(s, rng, param, &st);
	s->opts.delay_min = delay_min;
	if (st.follower) {
		sim_resume(s, st.follower);
		sim_disk_thaw(s, st.follower);
	}
	if (st.old_leader)
		sim_disk_thaw(s, st.old_leader);
}

void scenario_stale_tail(struct sim *s, struct raft_rng *rng,
			 uint32_t delay_max)
{
	play(s, rng, delay_max, stale_tail);
}

void scenario_lost_tail(struct sim *s, struct raft_rng *rng,
			uint32_t tick_interval)
{
	play(s, rng, tick_interval, lost_tail);
}

void scenario_deposed_read(struct sim *s, struct raft_rng *rng,
			   uint32_t delay_max)
{
	play(s, rng, delay_max, deposed_read);
}
