/*
 * Directed fault schedules of raft-sim (scenario.c): each plays one
 * sequence of faults on a converged cluster, at the seed's timings, to
 * reach a state the random schedules reach too rarely; the checkers of
 * check.c judge the outcome. The caller runs the cluster to convergence
 * afterwards (liveness).
 */
#ifndef RINGKV_TESTS_SIM_SCENARIO_H
#define RINGKV_TESTS_SIM_SCENARIO_H

#include "tests/sim/sim.h"

/* A follower left holding a stale tail behind entries that match a new
 * leader, which then re-probes it below the tail (Figure 2, rule 5). */
void scenario_stale_tail(struct sim *s, struct raft_rng *rng,
			 uint32_t delay_max);

/* A leader that lost entries it had sent, elected again in a later term,
 * while a follower that took them still holds them and first hears of
 * the new term from that same leader (§5.3: what matches is known per
 * leader and term). */
void scenario_lost_tail(struct sim *s, struct raft_rng *rng,
			uint32_t tick_interval);

/* A read sent to a deposed leader (paused while cut off) just before the
 * acknowledgements of its last ReadIndex round land (§6.4). */
void scenario_deposed_read(struct sim *s, struct raft_rng *rng,
			   uint32_t delay_max);

/* A follower whose stalled disk holds queued writes of entries that its
 * log cuts and then takes back from a later leader, so the reports of the
 * first writes name (index, term) pairs the log holds again while the
 * disk is still to be cut back below them (raft.h: write marks). */
void scenario_rewritten_tail(struct sim *s, struct raft_rng *rng,
			     uint32_t delay_max);

#endif
