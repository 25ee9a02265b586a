/*
 * Small pure helpers: the caller-owned random generator, error and name
 * strings. The generator is the only source of randomness in raft/: no
 * rand(), no global state, so one seed replays a whole run.
 */
#include "core/errors.h"
#include "raft/raft.h"

void raft_rng_seed(struct raft_rng *rng, uint64_t seed)
{
	/* splitmix64, so that nearby seeds give unrelated streams */
	uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	rng->state = z ? z : 0x2545f4914f6cdd1dULL;
}

uint64_t raft_rng_next(struct raft_rng *rng)
{
	uint64_t x = rng->state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng->state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

uint64_t raft_rng_below(struct raft_rng *rng, uint64_t n)
{
	return raft_rng_next(rng) % n;
}

const char *raft_role_name(int role)
{
	switch (role) {
	case RAFT_FOLLOWER:
		return "follower";
	case RAFT_PRECANDIDATE:
		return "precandidate";
	case RAFT_CANDIDATE:
		return "candidate";
	case RAFT_LEADER:
		return "leader";
	default:
		return "?";
	}
}

const char *raft_msg_name(int type)
{
	static const char *const names[] = {
		[RAFT_MSG_PREVOTE] = "PREVOTE",
		[RAFT_MSG_PREVOTE_RESP] = "PREVOTE_RESP",
		[RAFT_MSG_VOTE] = "VOTE",
		[RAFT_MSG_VOTE_RESP] = "VOTE_RESP",
		[RAFT_MSG_APPEND] = "APPEND",
		[RAFT_MSG_APPEND_RESP] = "APPEND_RESP",
		[RAFT_MSG_HEARTBEAT] = "HEARTBEAT",
		[RAFT_MSG_HEARTBEAT_RESP] = "HEARTBEAT_RESP",
		[RAFT_MSG_SNAPSHOT] = "SNAPSHOT",
		[RAFT_MSG_SNAPSHOT_RESP] = "SNAPSHOT_RESP",
		[RAFT_MSG_TIMEOUT_NOW] = "TIMEOUT_NOW",
	};
	if (type <= 0 || type > RAFT_MSG_TIMEOUT_NOW)
		return "?";
	return names[type];
}
