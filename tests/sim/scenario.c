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
	bool learner_first; /* F: a learner when the group has one */
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

/* A running member other than `not`, of the given role (0: any). */
static uint64_t pick(const struct raft_conf *conf, uint64_t not,
		     uint32_t role, struct raft_rng *rng, struct sim *s)
{
	uint64_t ids[RAFT_MAX_SERVERS];
	int n = 0;
	for (uint32_t i = 0; i < conf->n; i++)
		if (conf->servers[i].id != not &&
		    (!role || conf->servers[i].role == role) &&
		    sim_raft(s, conf->servers[i].id))
			ids[n++] = conf->servers[i].id;
	return n ? ids[raft_rng_below(rng, (uint64_t)n)] : RAFT_NONE;
}

/* Pick the leader O and a follower F (voter or learner; a learner if
 * st->learner_first and the group has one) of a group of at least 3 voters, and have F acknowledge one fresh entry: O then
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
	if (st->learner_first)
		st->follower = pick(conf, st->old_leader, RAFT_LEARNER, rng, s);
	if (!st->follower)
		st->follower = pick(conf, st->old_leader, 0, rng, s);
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

/* The cast of the rewritten tail: the scene (O, F, O's term), the leader
 * L of the term in between, and the entries from..last O sent F alone. */
struct rewrite {
	struct scene *st;
	uint64_t between; /* L, once it campaigns */
	uint64_t from, last;
};

/* A voter other than O and F asks for votes in a term after O's. */
static bool someone_campaigns(struct sim *s, void *arg)
{
	struct rewrite *rw = arg;
	const struct scene *st = rw->st;
	for (uint64_t id = 1; id <= SIM_MAX_NODES; id++) {
		struct raft *r = sim_raft(s, id);
		if (id != st->old_leader && id != st->follower && r &&
		    raft_role(r) == RAFT_CANDIDATE && raft_term(r) > st->term) {
			rw->between = id;
			return true;
		}
	}
	return false;
}

static bool between_leads(struct sim *s, void *arg)
{
	const struct rewrite *rw = arg;
	struct raft *l = sim_raft(s, rw->between);
	return !l || raft_role(l) == RAFT_LEADER;
}

/* F holds L's entry at from: the tail O sent it is cut in memory. */
static bool follower_took_between(struct sim *s, void *arg)
{
	const struct rewrite *rw = arg;
	struct raft *f = sim_raft(s, rw->st->follower);
	struct raft *l = sim_raft(s, rw->between);
	uint64_t term;
	return !f || !l ||
	       (raft_term_at(f, rw->from, &term) && term == raft_term(l));
}

static bool old_leader_steps_down(struct sim *s, void *arg)
{
	const struct rewrite *rw = arg;
	struct raft *o = sim_raft(s, rw->st->old_leader);
	return !o || raft_role(o) != RAFT_LEADER;
}

static bool old_leader_leads_after_between(struct sim *s, void *arg)
{
	const struct rewrite *rw = arg;
	struct raft *o = sim_raft(s, rw->st->old_leader);
	struct raft *l = sim_raft(s, rw->between);
	return !o || !l ||
	       (raft_role(o) == RAFT_LEADER && raft_term(o) > raft_term(l));
}

/* F's log holds O's tail from..last (of O's first term) again, taken
 * from O in its new term. */
static bool follower_restored(struct sim *s, void *arg)
{
	const struct rewrite *rw = arg;
	const struct scene *st = rw->st;
	struct raft *f = sim_raft(s, st->follower);
	uint64_t first, last;
	return !f ||
	       (raft_leader(f) == st->old_leader &&
		raft_term_at(f, rw->from, &first) && first == st->term &&
		raft_term_at(f, rw->last, &last) && last == st->term);
}

/* Whether a leader of a term between O's two can be elected without O and
 * F, and O again without that leader and F: the voters other than O, F
 * and one more must reach a quorum with either leader. */
static bool rewrite_possible(struct sim *s, const struct scene *st)
{
	const struct raft_conf *conf = raft_conf(sim_raft(s, st->old_leader));
	uint32_t voters = 0, rest = 0;
	for (uint32_t i = 0; i < conf->n; i++) {
		if (conf->servers[i].role != RAFT_VOTER)
			continue;
		voters++;
		rest += conf->servers[i].id != st->old_leader &&
			conf->servers[i].id != st->follower;
	}
	return rest >= 1 && rest >= voters / 2 + 1;
}

/*
 * F's log is rewritten to what it held before, while its disk still has
 * the writes of both versions queued (raft-sim seed 1,032,489, which
 * found the library's bug 3): F's disk stalls; O's entries from..last
 * reach F alone; O is paused; another voter L (lacking them) wins the
 * next term, and its first APPEND reaches F only, which cuts from..last
 * and takes L's entry at `from`; L is cut off, O resumes and wins a later
 * term (a quorum lacks L's entry), and its APPENDs give F from..last of
 * O's first term back. F's disk then lands its writes in order: O's first
 * ones, whose reports name (index, term) pairs F's log holds again, then
 * L's, which cuts the disk back to `from`, then O's again. A library that
 * took the first reports as fresh would count entries its disk is about
 * to lose (the write marks of raft.h keep it from doing so).
 */
static void rewritten_tail(struct sim *s, struct raft_rng *rng,
			   uint32_t delay_max, struct scene *st)
{
	uint64_t f = st->follower, o = st->old_leader;
	struct rewrite rw = {.st = st};
	if (!rewrite_possible(s, st))
		return;
	/* everyone holds O's log: L's first entry will go right after it */
	st->upto = raft_last_index(sim_raft(s, o));
	if (!sim_run_while_not(s, s->now + 2000, others_hold, st))
		return;
	rw.from = st->upto + 1;
	sim_disk_freeze(s, f, s->now + 20000);
	for (uint64_t b = 1; b <= SIM_MAX_NODES; b++)
		if (b != f)
			sim_cut(s, o, b, true);
	for (uint64_t i = 1 + raft_rng_below(rng, 3); i > 0; i--)
		sim_propose(s, o, (uint32_t)(i % SIM_KEYS), NULL);
	st->upto = rw.last = raft_last_index(sim_raft(s, o));
	if (!sim_run_while_not(s, s->now + 500, follower_has, st))
		return;
	/* O and F stop (F may not campaign with the longest log); the
	 * others elect L once they stop hearing from O. L's vote requests
	 * reach everyone, its APPENDs only F (paused: they wait for it) */
	sim_pause(s, o, s->now + 20000);
	sim_pause(s, f, s->now + 20000);
	if (!sim_run_while_not(s, s->now + 3000, someone_campaigns, &rw))
		return;
	for (uint64_t b = 1; b <= SIM_MAX_NODES; b++)
		if (b != f)
			sim_cut(s, rw.between, b, true);
	if (!sim_run_while_not(s, s->now + 1000, between_leads, &rw) ||
	    !sim_raft(s, rw.between))
		return;
	sim_isolate(s, rw.between, true);
	sim_resume(s, f);
	if (!sim_run_while_not(s, s->now + 1000, follower_took_between, &rw))
		return;
	/* O resumes, hears of L's term and wins the next one; F may only
	 * answer O (its log, ending in L's entry, would win a vote) */
	sim_heal(s);
	sim_isolate(s, rw.between, true);
	for (uint64_t b = 1; b <= SIM_MAX_NODES; b++)
		if (b != o)
			sim_cut(s, f, b, true);
	sim_resume(s, o);
	if (!sim_run_while_not(s, s->now + 2ULL * delay_max + 20,
			       old_leader_steps_down, &rw))
		return;
	sim_campaign(s, o);
	if (!sim_run_while_not(s, s->now + 3000,
			       old_leader_leads_after_between, &rw) ||
	    !sim_run_while_not(s, s->now + 1000, follower_restored, &rw))
		return;
	/* the stalled writes land in order: O's, L's, O's again */
	sim_disk_thaw(s, f);
	sim_run_until(s, s->now + 3ULL * delay_max + 20);
	s->directed++;
}

typedef void scenario_fn(struct sim *s, struct raft_rng *rng, uint32_t param,
			 struct scene *st);

/* Set up and play one scenario on a steady network (every message takes
 * the longest delay, so none overtakes another: the follower takes the
 * leader's entries in order while its acknowledgements stay stuck), then
 * undo what it left: no disk stays stalled, no process paused. */
static void play(struct sim *s, struct raft_rng *rng, uint32_t param,
		 scenario_fn *fn, bool learner_first)
{
	struct scene st = {.old_leader = sim_leader(s),
			   .learner_first = learner_first};
	uint32_t delay_min = s->opts.delay_min;
	s->opts.delay_min = s->opts.delay_max;
	if (setup(s, rng, &st))
		fn(s, rng, param, &st);
	s->opts.delay_min = delay_min;
	if (st.follower) {
		sim_resume(s, st.follower);
		sim_disk_thaw(s, st.follower);
	}
	if (st.old_leader) {
		sim_resume(s, st.old_leader);
		sim_disk_thaw(s, st.old_leader);
	}
}

void scenario_stale_tail(struct sim *s, struct raft_rng *rng,
			 uint32_t delay_max)
{
	play(s, rng, delay_max, stale_tail, false);
}

void scenario_lost_tail(struct sim *s, struct raft_rng *rng,
			uint32_t tick_interval)
{
	play(s, rng, tick_interval, lost_tail, false);
}

void scenario_deposed_read(struct sim *s, struct raft_rng *rng,
			   uint32_t delay_max)
{
	play(s, rng, delay_max, deposed_read, false);
}

void scenario_rewritten_tail(struct sim *s, struct raft_rng *rng,
			     uint32_t delay_max)
{
	play(s, rng, delay_max, rewritten_tail, true);
}
