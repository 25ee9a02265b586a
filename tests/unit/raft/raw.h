/*
 * Helpers for tests that drive one struct raft by hand (no simulator):
 * build a member of a 3-voter group, feed it messages, read its update.
 */
#ifndef RINGKV_TESTS_UNIT_RAFT_RAW_H
#define RINGKV_TESTS_UNIT_RAFT_RAW_H

#include <string.h>

#include "raft/raft.h"

struct raw {
	struct raft *r;
	struct raft_rng rng;
	struct raft_update up;
};

/* Member id of voters 1..3, at term with the given log terms. */
static inline void raw_init(struct raw *w, uint64_t id, uint64_t term,
			    const uint64_t *log_terms, size_t n)
{
	struct raft_config cfg;
	raft_config_default(&cfg);
	cfg.id = id;
	raft_rng_seed(&w->rng, id);
	cfg.rng = &w->rng;
	assert_int_equal(raft_create(&w->r, &cfg), 0);
	struct raft_hard_state hs = {.term = term, .vote = RAFT_NONE};
	struct raft_snapshot_meta snap;
	memset(&snap, 0, sizeof(snap));
	snap.conf.n = 3;
	for (uint32_t i = 0; i < 3; i++) {
		snap.conf.servers[i].id = i + 1;
		snap.conf.servers[i].role = RAFT_VOTER;
	}
	struct raft_entry entries[16];
	assert_true(n <= 16);
	for (size_t i = 0; i < n; i++)
		entries[i] = (struct raft_entry){.term = log_terms[i],
						 .type = RAFT_ENTRY_NORMAL};
	assert_int_equal(raft_restore(w->r, &hs, &snap, NULL, 0, entries, n),
			 0);
}

static inline int raw_recv(struct raw *w, const struct raft_msg *m)
{
	struct raft_event ev = {.type = RAFT_EV_RECEIVE, .msg = m};
	return raft_step(w->r, &ev, &w->up);
}

static inline const struct raft_msg *raw_reply(const struct raw *w,
					       uint32_t type)
{
	for (size_t i = 0; i < w->up.n_msgs; i++)
		if (w->up.msgs[i].type == type)
			return &w->up.msgs[i];
	return NULL;
}

#endif
