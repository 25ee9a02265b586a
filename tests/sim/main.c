/*
 * raft-sim: runs seeded whole-cluster simulations of raft/ under faults.
 *
 *   raft-sim --seeds N [--first S] [--nodes K] [--verbose] [--trace]
 *            [--twice] [--stop]
 *
 * Each seed fixes everything: network and disk timings, loss and
 * duplication rates, pre-vote and check-quorum, the schedule of crashes,
 * partitions (symmetric, one-way, leader isolation), leadership transfers,
 * membership changes, snapshots, and the client's writes and reads. A run
 * has a fault phase; then every fault is healed and the liveness check
 * requires a leader, fresh writes acknowledged, and every member caught up
 * within a bounded simulated time. Safety is checked after every step by
 * check.c. --stop ends the run at the first failing seed and prints how
 * many seeds it took (the mutation tests, tests/sim/mutate.py, use it).
 * --twice runs every seed twice and fails it if the trace hashes differ.
 */
#include "tests/sim/scenario.h"
#include "tests/sim/sim.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef RINGKV_PROJECT_VERSION
#include "tools/version.h"
#else
/* Built outside meson (tests/sim/mutate.py compiles this file by itself):
 * there is no generated tools/version.h to print from. */
static void version_print(FILE *out, const char *program)
{
	fprintf(out, "%s (built outside meson: no version)\n", program);
}
#endif

#define FAULT_PHASE 3000 /* time units (10 per tick) */
#define LIVENESS_BOUND 3000
#define FRESH_WRITES 3

struct undo {
	uint64_t time;
	int kind; /* 0 restart node, 1 heal network, 2 crash node,
		     3 isolate node (and heal later), 4 cut node off from
		     all but id2, then crash it (and heal later) */
	uint64_t id;
	uint64_t id2;
};

struct run {
	struct sim *s;
	struct raft_rng rng;
	int nodes;
	uint64_t snap_every;
	struct undo undo[32];
	int n_undo;
	uint64_t fresh[FRESH_WRITES];
};

static uint64_t below(struct run *run, uint64_t n)
{
	return raft_rng_below(&run->rng, n);
}

/* A node a client would talk to: usually the leader, sometimes a deposed
 * leader that does not know it yet, sometimes anyone. */
static uint64_t pick_node(struct run *run)
{
	struct sim *s = run->s;
	uint64_t leader = sim_leader(s);
	if (below(run, 100) < 25) {
		uint64_t stale[SIM_MAX_NODES];
		int n = 0;
		for (int i = 1; i <= s->n_nodes; i++)
			if (s->nodes[i].up && (uint64_t)i != leader &&
			    raft_role(s->nodes[i].raft) == RAFT_LEADER)
				stale[n++] = (uint64_t)i;
		if (n)
			return stale[below(run, (uint64_t)n)];
	}
	if (leader && below(run, 100) < 85)
		return leader;
	uint64_t id = 1 + below(run, (uint64_t)s->n_nodes);
	return s->nodes[id].up ? id : RAFT_NONE;
}

static struct undo *add_undo(struct run *run, uint64_t delay, int kind,
			     uint64_t id);
static void transfer(struct run *run, uint64_t leader);

static void client_op(struct run *run)
{
	struct sim *s = run->s;
	uint64_t id = pick_node(run);
	if (!id)
		return;
	uint32_t key = (uint32_t)below(run, SIM_KEYS);
	if (below(run, 100) < 65) {
		sim_propose(s, id, key, NULL);
	} else if (sim_read(s, id, key, NULL) == 0 && below(run, 100) < 20) {
		/* leadership moves while the read's round is out: a
		 * transfer now, or the node cut off once some of the
		 * round's acknowledgements are on their way (a slow one
		 * may reach it after a new leader took writes) */
		if (below(run, 2))
			transfer(run, id);
		else
			add_undo(run, below(run, 2ULL * s->opts.delay_max), 3,
				 id);
	}
	for (int i = 1; i <= s->n_nodes && !s->failed; i++) {
		struct sim_node *n = &s->nodes[i];
		if (n->up && n->applied >= raft_snapshot(n->raft)->index +
						   run->snap_every)
			sim_snapshot(s, n->id);
	}
}

static int count_role(const struct raft_conf *conf, uint32_t role)
{
	int k = 0;
	for (uint32_t i = 0; i < conf->n; i++)
		k += conf->servers[i].role == role;
	return k;
}

/* A random member of conf with the given role, or RAFT_NONE. */
static uint64_t pick_member(struct run *run, const struct raft_conf *conf,
			    uint32_t role)
{
	int k = count_role(conf, role);
	if (k == 0)
		return RAFT_NONE;
	uint64_t nth = below(run, (uint64_t)k);
	for (uint32_t i = 0; i < conf->n; i++)
		if (conf->servers[i].role == role && nth-- == 0)
			return conf->servers[i].id;
	return RAFT_NONE;
}

/*
 * One membership change, chosen at random among those that keep between
 * nodes - 1 and nodes + 1 voters and at most two learners (so even voter
 * counts and learner-heavy groups occur: a learner counted as a voter
 * there breaks the majority). Sometimes a second change follows at once,
 * before the first can commit; the leader must refuse it.
 */
static void membership_step(struct run *run, uint64_t leader)
{
	struct sim *s = run->s;
	for (int round = 0; round < 2; round++) {
		if (!s->nodes[leader].up ||
		    raft_role(s->nodes[leader].raft) != RAFT_LEADER)
			return;
		const struct raft_conf *conf = raft_conf(s->nodes[leader].raft);
		int voters = count_role(conf, RAFT_VOTER);
		int learners = count_role(conf, RAFT_LEARNER);
		switch (below(run, 4)) {
		case 0:
			if (learners < 2 && s->n_nodes < SIM_MAX_NODES) {
				sim_conf_change(s, leader, RAFT_CONF_ADD_LEARNER,
						(uint64_t)s->n_nodes + 1);
				break;
			}
			/* fall through */
		case 1:
			if (learners && voters <= run->nodes) {
				sim_conf_change(s, leader, RAFT_CONF_PROMOTE,
						pick_member(run, conf,
							    RAFT_LEARNER));
				break;
			}
			/* fall through */
		case 2:
			if (voters >= run->nodes) {
				sim_conf_change(s, leader, RAFT_CONF_REMOVE,
						pick_member(run, conf,
							    RAFT_VOTER));
				break;
			}
			/* fall through */
		default:
			if (learners)
				sim_conf_change(s, leader, RAFT_CONF_REMOVE,
						pick_member(run, conf,
							    RAFT_LEARNER));
			break;
		}
		if (below(run, 4) != 0)
			return;
	}
}

/* Ask the leader to hand over to a random member; while the transfer is
 * pending it must refuse proposals (§3.10). */
static void transfer(struct run *run, uint64_t leader)
{
	struct sim *s = run->s;
	uint64_t target = 1 + below(run, (uint64_t)s->n_nodes);
	if (sim_transfer(s, leader, target) != 0 || target == leader ||
	    !s->nodes[leader].up ||
	    raft_role(s->nodes[leader].raft) != RAFT_LEADER)
		return;
	int rv = sim_propose(s, leader, 0, NULL);
	if (rv != RAFT_EBUSY)
		sim_fail(s, "availability: leader %llu took a proposal during "
			 "a transfer to %llu (%s)",
			 (unsigned long long)leader, (unsigned long long)target,
			 rkv_strerror(rv));
}

static struct undo *add_undo(struct run *run, uint64_t delay, int kind,
			     uint64_t id)
{
	if (run->n_undo == 32)
		return NULL;
	struct undo *u = &run->undo[run->n_undo++];
	*u = (struct undo){.time = run->s->now + delay, .kind = kind, .id = id};
	return u;
}

static void fault(struct run *run)
{
	struct sim *s = run->s;
	uint64_t leader = sim_leader(s);
	uint64_t any = 1 + below(run, (uint64_t)s->n_nodes);
	switch (below(run, 10)) {
	case 9: /* a follower's disk stalls (an fsync that hangs), and the
		 * leader fails while the follower holds entries it has not
		 * made durable: once a new leader overwrites part of them, a
		 * crash may bring the follower back with a stale tail */
		if (leader && any != leader && s->nodes[any].up) {
			sim_disk_freeze(s, any, s->now + 200 + below(run, 500));
			s->nodes[any].crash_at_overwrite = below(run, 2);
			struct undo *u = add_undo(run, below(run, 100), 4,
						  leader);
			if (u)
				u->id2 = any;
		}
		break;
	case 8: /* the leader crashes */
		any = leader ? leader : any;
		/* fall through */
	case 0:
	case 1:
		if (s->nodes[any].up) {
			sim_crash(s, any);
			add_undo(run, 20 + below(run, 400), 0, any);
		}
		break;
	case 2:
		if (leader) {
			sim_isolate(s, leader, true);
			add_undo(run, 50 + below(run, 600), 1, 0);
		}
		break;
	case 3:
		for (int a = 1; a <= s->n_nodes; a++)
			if (below(run, 2))
				for (int b = 1; b <= s->n_nodes; b++)
					if (below(run, 2)) {
						sim_cut(s, (uint64_t)a,
							(uint64_t)b, true);
						sim_cut(s, (uint64_t)b,
							(uint64_t)a, true);
					}
		add_undo(run, 50 + below(run, 600), 1, 0);
		break;
	case 4: /* one-way: any can no longer send to the others */
		for (int b = 1; b <= s->n_nodes; b++)
			if (below(run, 3))
				sim_cut(s, any, (uint64_t)b, true);
		add_undo(run, 50 + below(run, 600), 1, 0);
		break;
	case 5:
		if (leader)
			transfer(run, leader);
		break;
	case 6:
		if (leader)
			membership_step(run, leader);
		break;
	default: {
		static const uint32_t loss[] = {0, 1, 5, 10, 30};
		static const uint32_t dup[] = {0, 0, 2, 10};
		s->opts.loss_pct = loss[below(run, 5)];
		s->opts.dup_pct = dup[below(run, 4)];
		break;
	}
	}
}

static void run_undo(struct run *run)
{
	for (int i = 0; i < run->n_undo;) {
		struct undo *u = &run->undo[i];
		if (u->time > run->s->now) {
			i++;
			continue;
		}
		if (u->kind == 0) {
			sim_restart(run->s, u->id);
		} else if (u->kind == 2) {
			if (run->s->nodes[u->id].up) {
				sim_crash(run->s, u->id);
				add_undo(run, 20 + below(run, 300), 0, u->id);
			}
		} else if (u->kind == 4) {
			/* the leader's last entries reach id2 only, so the
			 * next leader lacks them; then it fails */
			for (int b = 1; b <= run->s->n_nodes; b++)
				if ((uint64_t)b != u->id2)
					sim_cut(run->s, u->id, (uint64_t)b, true);
			add_undo(run, 20 + below(run, 100), 2, u->id);
			add_undo(run, 200 + below(run, 400), 1, 0);
		} else if (u->kind == 3) {
			sim_isolate(run->s, u->id, true);
			/* what was on its way to it sits in a queue: the
			 * acknowledgements of its last ReadIndex round land
			 * after a new leader may have taken writes */
			if (below(run, 2))
				sim_hold_to(run->s, u->id, 100, 600);
			add_undo(run, 100 + below(run, 500), 1, 0);
		} else {
			sim_heal(run->s);
		}
		*u = run->undo[--run->n_undo];
	}
}

/* Liveness: a leader with a committed entry of its term, fresh writes
 * acknowledged, and every member holding and applying the whole log. */
static bool live(struct sim *s, void *arg)
{
	struct run *run = arg;
	uint64_t leader = sim_leader(s);
	if (!leader)
		return false;
	struct raft *r = s->nodes[leader].raft;
	uint64_t last = raft_last_index(r), term;
	raft_term_at(r, last, &term);
	for (int i = 0; i < FRESH_WRITES; i++) {
		const struct sim_write *w = sim_write_get(s, run->fresh[i]);
		/* a client gives up on a write whose leader is gone (its
		 * outcome stays unknown) and writes again */
		if (!w || w->failed ||
		    (w->ack == SIM_NEVER &&
		     (w->node != leader || w->term != raft_term(r))))
			sim_propose(s, leader, (uint32_t)i, &run->fresh[i]);
		w = sim_write_get(s, run->fresh[i]);
		if (!w || w->ack == SIM_NEVER)
			return false;
	}
	if (term != raft_term(r) || raft_commit_index(r) != last)
		return false;
	const struct raft_conf *conf = raft_conf(r);
	for (uint32_t i = 0; i < conf->n; i++) {
		const struct sim_node *n = &s->nodes[conf->servers[i].id];
		if (!n->up || raft_commit_index(n->raft) != last ||
		    n->applied != last)
			return false;
	}
	return true;
}

/* Lose every message in flight, as a network flush would. */
static void drop_in_flight(struct sim *s)
{
	for (int i = 1; i <= s->n_nodes; i++)
		sim_drop_to(s, (uint64_t)i);
}

/*
 * Availability, on the converged cluster (no safety property breaks when
 * these fail, so only a direct check catches them):
 *   - a follower cut off for several election timeouts, with pre-vote on,
 *     rejoins without raising anyone's term or deposing the leader (§9.6);
 *   - with check-quorum on, an isolated leader steps down within two
 *     election timeouts (§6.2).
 * (A leader refusing proposals during a transfer is checked in transfer().)
 */
static void availability(struct run *run, const struct sim_opts *o)
{
	struct sim *s = run->s;
	const uint64_t timeout = 10 * o->tick_interval; /* election_ticks */
	uint64_t leader = sim_leader(s);
	if (!leader)
		return;
	struct raft *r = s->nodes[leader].raft;
	const struct raft_conf *conf = raft_conf(r);
	uint64_t term = raft_term(r);
	int voters = count_role(conf, RAFT_VOTER);
	if (o->pre_vote && voters >= 3) {
		uint64_t f;
		do
			f = pick_member(run, conf, RAFT_VOTER);
		while (f == leader);
		drop_in_flight(s);
		sim_isolate(s, f, true);
		sim_run_until(s, s->now + 6 * timeout);
		sim_isolate(s, f, false);
		sim_run_until(s, s->now + 3 * timeout);
		if (s->failed)
			return;
		if (sim_leader(s) != leader || raft_term(r) != term ||
		    raft_term(s->nodes[f].raft) != term) {
			sim_fail(s, "availability: node %llu rejoined with "
				 "pre-vote and the term moved from %llu to %llu "
				 "(leader %llu, was %llu)",
				 (unsigned long long)f, (unsigned long long)term,
				 (unsigned long long)raft_term(s->nodes[f].raft),
				 (unsigned long long)sim_leader(s),
				 (unsigned long long)leader);
			return;
		}
	}
	if (o->check_quorum && voters >= 2 &&
	    raft_conf_role(conf, leader) == RAFT_VOTER) {
		/* A sleeping leader's quorum check is frozen: it learns it is
		 * cut off from node liveness (the oracle: a few ticks here, an
		 * election timeout in ringkvd), then checks over a whole
		 * timeout; it may even fall asleep just after the cut, on
		 * answers from before it. So with sleeping groups: three. */
		uint64_t bound = o->sleep_pct ? 3 : 2;
		drop_in_flight(s);
		sim_isolate(s, leader, true);
		sim_run_until(s, s->now + bound * timeout + 2 * o->tick_interval);
		if (!s->failed && raft_role(r) == RAFT_LEADER)
			sim_fail(s, "availability: leader %llu, cut off, still "
				 "leads %llu election timeouts later",
				 (unsigned long long)leader, (unsigned long long)bound);
		sim_heal(s);
	}
}

/* Liveness: converged (live()) within LIVENESS_BOUND from now. */
static void converge(struct run *run, const char *when)
{
	struct sim *s = run->s;
	if (s->failed ||
	    sim_run_while_not(s, s->now + LIVENESS_BOUND, live, run) ||
	    s->failed)
		return;
	uint64_t leader = sim_leader(s), term = 0, commit = 0, last = 0;
	if (leader) {
		struct raft *r = s->nodes[leader].raft;
		term = raft_term(r);
		commit = raft_commit_index(r);
		last = raft_last_index(r);
	}
	sim_fail(s, "liveness: not converged %d time units %s (leader %llu, "
		 "term %llu, commit %llu, last %llu)",
		 LIVENESS_BOUND, when, (unsigned long long)leader,
		 (unsigned long long)term, (unsigned long long)commit,
		 (unsigned long long)last);
}

/* After a directed schedule: heal the network, restart every member,
 * converge (liveness). */
static void settle(struct run *run, const char *when)
{
	sim_heal(run->s);
	for (int i = 1; i <= run->s->n_nodes; i++)
		sim_restart(run->s, (uint64_t)i);
	converge(run, when);
}

struct totals {
	uint64_t failures, elections, commits, checks, trace;
	uint64_t reads, installs, crashes, torn, conf_changes, transfers;
	uint64_t crashes_at, slowed, stale_tails, forged, directed;
	uint64_t rewritten_reports;
	uint64_t sleeps, wakes;
};

static bool trace_events;

static uint64_t run_seed(uint64_t seed, int nodes, bool verbose,
			 struct totals *t)
{
	struct run run;
	memset(&run, 0, sizeof(run));
	raft_rng_seed(&run.rng, seed ^ 0x5eed5eed5eedULL);
	run.nodes = nodes;
	struct sim_opts o;
	sim_opts_default(&o, nodes, seed);
	o.delay_min = 1 + (uint32_t)below(&run, 5);
	o.delay_max = o.delay_min + (uint32_t)below(&run, 30);
	o.disk_max = 1 + (uint32_t)below(&run, 20);
	o.pre_vote = below(&run, 4) != 0;
	o.check_quorum = below(&run, 4) != 0;
	o.compact_keep = below(&run, 2) ? 0 : (uint32_t)below(&run, 10);
	o.snapshot_chunk = 16 + (uint32_t)below(&run, 64);
	/* one client entry per APPEND in half the seeds: a probe then
	 * carries less than the follower holds, leaving stale tails */
	static const uint32_t msg_bytes[] = {12, 12, 64, 1024};
	o.max_msg_bytes = msg_bytes[below(&run, 4)];
	o.max_inflight = 8;
	o.slow_pct = below(&run, 3) ? (uint32_t)below(&run, 9) : 0;
	o.disk_slow_pct = below(&run, 2) ? (uint32_t)below(&run, 10) : 0;
	o.forge_pct = below(&run, 2) ? 1 + (uint32_t)below(&run, 3) : 0;
	o.crash_vote_pct = below(&run, 2) ? 5 + (uint32_t)below(&run, 20) : 0;
	o.crash_truncate_pct = below(&run, 2) ? 5 + (uint32_t)below(&run, 30) : 0;
	o.crash_conf_pct = below(&run, 2) ? 10 + (uint32_t)below(&run, 40) : 0;
	o.crash_commit_pct = below(&run, 3) ? 0 : 2 + (uint32_t)below(&run, 10);
	o.crash_down_min = 10;
	o.crash_down_max = 10 + (uint32_t)below(&run, 400);
	o.trace = trace_events;
	/* sleeping groups in half the seeds, from a generator of their own
	 * so that the other half runs exactly as before they existed */
	struct raft_rng q;
	raft_rng_seed(&q, seed ^ 0x51eeb51eebULL);
	if (raft_rng_below(&q, 2)) {
		o.sleep_pct = 5 + (uint32_t)raft_rng_below(&q, 60);
		o.wake_pct = 50 + (uint32_t)raft_rng_below(&q, 51);
		o.spurious_wake_pct = raft_rng_below(&q, 2) ? 0 : 1 + (uint32_t)raft_rng_below(&q, 20);
	}
	run.snap_every = 10 + below(&run, 60);
	run.s = sim_create(&o);
	struct sim *s = run.s;

	uint64_t next_client = 0, next_fault = 100 + below(&run, 300);
	uint64_t elections = 0;
	while (!s->failed && s->now < FAULT_PHASE) {
		if (s->elections != elections) {
			/* new leaders are fragile: some crash soon after
			 * winning, with old-term entries half replicated
			 * (Figure 8 of the paper) */
			elections = s->elections;
			uint64_t leader = sim_leader(s);
			if (leader && below(&run, 3) == 0)
				add_undo(&run, below(&run, 60), 2, leader);
			/* and some change membership before their term's
			 * first entry commits (the leader must refuse) */
			if (leader && below(&run, 4) == 0)
				membership_step(&run, leader);
		}
		uint64_t next = next_client < next_fault ? next_client : next_fault;
		for (int i = 0; i < run.n_undo; i++)
			if (run.undo[i].time < next)
				next = run.undo[i].time;
		sim_run_until(s, next);
		if (s->failed)
			break;
		run_undo(&run);
		if (s->now >= next_client) {
			client_op(&run);
			next_client = s->now + 2 + below(&run, 15);
		}
		if (s->now >= next_fault && !s->failed) {
			fault(&run);
			next_fault = s->now + 50 + below(&run, 300);
		}
	}
	/* faults stop: heal the network, restart every member */
	sim_heal(s);
	s->opts.loss_pct = s->opts.dup_pct = s->opts.slow_pct = 0;
	s->opts.forge_pct = 0;
	s->opts.spurious_wake_pct = 0; /* a false suspicion is a fault too */
	s->opts.disk_slow_pct = 0;
	s->opts.crash_vote_pct = s->opts.crash_truncate_pct = 0;
	s->opts.crash_conf_pct = s->opts.crash_commit_pct = 0;
	for (int i = 1; i <= s->n_nodes; i++)
		sim_restart(s, (uint64_t)i);
	uint64_t healed = s->now;
	converge(&run, "after faults stopped");
	if (!s->failed) {
		/* a transfer the fault phase started may still fire (its
		 * TIMEOUT_NOW goes out once the target caught up, or arrives
		 * late: slowed 10-20x, held) and move the term: lose what is
		 * in flight, let leaders abort transfers (they do after an
		 * election timeout; wait three) and converge again */
		drop_in_flight(s);
		sim_run_until(s, s->now + 30ULL * o.tick_interval);
		converge(&run, "after pending transfers");
		availability(&run, &o);
	}
	/* directed schedules (scenario.c), then converge again */
	if (!s->failed) {
		converge(&run, "after the availability checks");
		scenario_stale_tail(s, &run.rng, o.delay_max);
		settle(&run, "after the stale tail schedule");
		scenario_lost_tail(s, &run.rng, o.tick_interval);
		settle(&run, "after the lost tail schedule");
		scenario_deposed_read(s, &run.rng, o.delay_max);
		settle(&run, "after the deposed read schedule");
		scenario_rewritten_tail(s, &run.rng, o.delay_max);
		settle(&run, "after the directed schedules");
	}
	if (verbose && s->failed) {
		for (int i = 1; i <= s->n_nodes; i++) {
			const struct sim_node *n = &s->nodes[i];
			printf("  node %d: %s%s", i, n->up ? "up" : "down",
			       n->removed ? " removed" : "");
			if (n->up)
				printf(" %s term %llu commit %llu last %llu "
				       "persisted %llu (disk %llu) applied "
				       "%llu leader %llu",
				       raft_role_name(raft_role(n->raft)),
				       (unsigned long long)raft_term(n->raft),
				       (unsigned long long)raft_commit_index(n->raft),
				       (unsigned long long)raft_last_index(n->raft),
				       (unsigned long long)raft_persisted_index(n->raft),
				       (unsigned long long)(n->disk.snap.index + n->disk.n),
				       (unsigned long long)n->applied,
				       (unsigned long long)raft_leader(n->raft));
			printf("\n");
		}
		for (int i = 0; i < FRESH_WRITES; i++) {
			const struct sim_write *w = sim_write_get(s, run.fresh[i]);
			if (w)
				printf("  fresh write %llu: node %llu index %llu "
				       "acked %d failed %d\n",
				       (unsigned long long)w->value,
				       (unsigned long long)w->node,
				       (unsigned long long)w->index,
				       w->ack != SIM_NEVER, w->failed);
		}
	}
	t->elections += s->elections;
	t->commits += s->max_commit;
	t->checks += s->checks;
	t->reads += s->reads_ok;
	t->installs += s->installs;
	t->crashes += s->crashes;
	t->torn += s->torn;
	t->conf_changes += s->conf_changes;
	t->transfers += s->transfers;
	t->crashes_at += s->crashes_at;
	t->slowed += s->slowed;
	t->forged += s->forged;
	t->directed += s->directed;
	t->stale_tails += s->stale_tails;
	t->rewritten_reports += s->rewritten_reports;
	t->sleeps += s->sleeps;
	t->wakes += s->wakes;
	t->trace = (t->trace ^ s->trace_hash) * 0x100000001b3ULL;
	if (verbose)
		printf("seed %llu: %llu elections, %llu commits, %llu reads, "
		       "%llu checks, converged at %llu\n",
		       (unsigned long long)seed, (unsigned long long)s->elections,
		       (unsigned long long)s->max_commit,
		       (unsigned long long)s->reads_ok,
		       (unsigned long long)s->checks,
		       (unsigned long long)(s->now - healed));
	if (s->failed) {
		t->failures++;
		printf("FAIL seed %llu at time %llu: %s\n"
		       "  reproduce: raft-sim --seeds 1 --first %llu --nodes %d "
		       "--verbose\n",
		       (unsigned long long)seed, (unsigned long long)s->now,
		       s->failure, (unsigned long long)seed, nodes);
	}
	uint64_t hash = s->trace_hash;
	sim_destroy(s);
	return hash;
}

/* The seed being run, for a failed assertion in raft/ (a mutant, or a
 * real bug) to name. */
static uint64_t current_seed, seeds_run;

static void on_abort(int sig)
{
	char buf[96];
	int n = snprintf(buf, sizeof(buf),
			 "raft-sim: aborted in seed %llu after %llu seeds\n",
			 (unsigned long long)current_seed,
			 (unsigned long long)seeds_run);
	if (n > 0 && write(STDERR_FILENO, buf, (size_t)n) < 0)
		_exit(3);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: raft-sim --seeds N [--first S] [--nodes K] "
		     "[--verbose] [--trace] [--twice] [--stop]\n"
		     "Seeded whole-cluster simulations of raft/ under faults.\n\n"
		     "  --seeds N      seeds to run (required)\n"
		     "  --first S      first seed (default 1)\n"
		     "  --nodes K      nodes, 1 to 7 (default: 3 and 5 alternately)\n"
		     "  --verbose      per-seed lines and the coverage totals\n"
		     "  --trace        every event (implies --verbose)\n"
		     "  --twice        run each seed twice; the traces must match\n"
		     "  --stop         stop at the first failing seed\n"
		     "  -h, --help     this text\n"
		     "  -V, --version  the version\n");
}

/* One line naming the bad argument, a hint, exit 2. */
static void usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "raft-sim: %s '%s' (see raft-sim --help)\n", what, arg);
	exit(2);
}

/* A number for `flag` in [min, max], or a usage error. */
static uint64_t parse_number(const char *flag, const char *text, uint64_t min, uint64_t max)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || errno || *end || v < min || v > max)
		usage_error(flag, text);
	return v;
}

int main(int argc, char **argv)
{
	uint64_t seeds = 0, first = 1;
	int nodes = 0;
	bool verbose = false, stop = false, twice = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool takes_value = !strcmp(a, "--seeds") || !strcmp(a, "--first") ||
				   !strcmp(a, "--nodes");

		if (takes_value && i + 1 == argc)
			usage_error("missing value after", a);
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			version_print(stdout, "raft-sim");
			return 0;
		} else if (!strcmp(a, "--seeds"))
			seeds = parse_number("--seeds takes a count, not", argv[++i], 1,
					     UINT64_MAX / 2);
		else if (!strcmp(a, "--first"))
			first = parse_number("--first takes a seed, not", argv[++i], 0,
					     UINT64_MAX / 2);
		else if (!strcmp(a, "--nodes"))
			nodes = (int)parse_number("--nodes takes 1 to 7, not", argv[++i], 1, 7);
		else if (!strcmp(a, "--verbose"))
			verbose = true;
		else if (!strcmp(a, "--twice"))
			twice = true;
		else if (!strcmp(a, "--stop"))
			stop = true;
		else if (!strcmp(a, "--trace"))
			trace_events = verbose = true;
		else
			usage_error("unknown argument", a);
	}
	if (seeds == 0) {
		fprintf(stderr, "raft-sim: --seeds N is required (see raft-sim --help)\n");
		return 2;
	}
	struct totals t = {.trace = 0xcbf29ce484222325ULL};
	uint64_t ran = 0;
	signal(SIGABRT, on_abort);
	for (uint64_t seed = first; seed < first + seeds; seed++) {
		seeds_run = ++ran;
		current_seed = seed;
		/* without --nodes, alternate 3- and 5-node clusters */
		int k = nodes ? nodes : (seed % 2 ? 3 : 5);
		uint64_t hash = run_seed(seed, k, verbose, &t);
		if (twice) {
			struct totals again = t;
			if (run_seed(seed, k, false, &again) !=
			    hash) {
				t.failures++;
				printf("FAIL seed %llu: two runs differ\n"
				       "  reproduce: raft-sim --seeds 1 --first "
				       "%llu --nodes %d --twice\n",
				       (unsigned long long)seed,
				       (unsigned long long)seed, k);
			}
		}
		if (stop && t.failures) {
			printf("raft-sim: first failure after %llu seeds\n",
			       (unsigned long long)ran);
			break;
		}
	}
	if (verbose)
		printf("covered: %llu reads, %llu crashes (%llu torn writes, "
		       "%llu at a vote, truncation, conf entry or commit), "
		       "%llu snapshot installs, %llu membership changes, %llu "
		       "transfers, %llu slowed messages, %llu APPENDs "
		       "accepted over a stale tail, %llu persisted reports of "
		       "rewritten entries, %llu forged messages, %llu "
		       "directed schedules played out, %llu groups put to "
		       "sleep, %llu sleepers woken by liveness\n",
		       (unsigned long long)t.reads, (unsigned long long)t.crashes,
		       (unsigned long long)t.torn,
		       (unsigned long long)t.crashes_at,
		       (unsigned long long)t.installs,
		       (unsigned long long)t.conf_changes,
		       (unsigned long long)t.transfers,
		       (unsigned long long)t.slowed,
		       (unsigned long long)t.stale_tails,
		       (unsigned long long)t.rewritten_reports,
		       (unsigned long long)t.forged,
		       (unsigned long long)t.directed,
		       (unsigned long long)t.sleeps, (unsigned long long)t.wakes);
	printf("raft-sim: %llu seeds, %llu failures, %llu elections, %llu "
	       "commits, %llu invariant checks\n",
	       (unsigned long long)ran, (unsigned long long)t.failures,
	       (unsigned long long)t.elections, (unsigned long long)t.commits,
	       (unsigned long long)t.checks);
	if (verbose)
		printf("trace hash: %016llx\n", (unsigned long long)t.trace);
	return t.failures ? 1 : 0;
}
