/*
 * "Was I a member?": what a replica that starts empty asks its group's other
 * members before it takes part in anything, and how it decides from their
 * answers (docs/cluster/repair-design.md, "Step 3: a wiped node"). Pure:
 * no I/O, no clock; cluster/replica_wiped.c drives it on the replica's core.
 *
 * A replica that starts empty cannot tell from inside whether its group is
 * new (a new cluster's first start) or whether it lost what it promised (a
 * wiped data dir: votes cast, entries acknowledged). The fact lives on the
 * peers. While it asks, the replica drops every Raft message (no vote, no
 * acknowledgement, no campaign) and decides:
 *
 *   - AMNESIAC, once a majority of the other members answered and any
 *     answer shows a history: a vote, a term above the one the answerer
 *     skipped to when it settled (0 if none), a log or a snapshot. It
 *     rejoins as the next incarnation, K = 1 + the highest incarnation of
 *     this node any answer names (cluster/replica_amnesia.c). A majority, not the first answer:
 *     the conf change that added the newest incarnation was committed on a
 *     majority of the members other than the dead old identity, so it
 *     reaches a majority of the others, which meets every majority of them.
 *   - FRESH (start as any member of a new group), once a majority of the
 *     other members answered with no history while not asking themselves,
 *     each either with HCOMPLETE (its h covers its whole life on its data
 *     dir) or vouching: any election ever won had a majority of voters,
 *     which meets that majority, and each of them would show a history. Or
 *     once every other member answered with no history, some of them
 *     asking too: all the replicas of the group started empty (a new
 *     cluster's first start, or every copy lost: nothing left to protect).
 *   - The skip, with FRESH: "no history" is a snapshot, not a promise. The
 *     wiped node's old data dir may have voted in term t for a candidate
 *     whose election is not over (its pre-vote majority P formed before the
 *     wipe; a vote request to a member may still be in flight). Every
 *     answer carries h = the highest of the answerer's term and the highest
 *     term it granted a pre-vote for; the counted majority meets P minus
 *     the wiped node in a member that granted t's pre-vote (an asker or a
 *     voucher took no part before the asker's dir existed, so that member
 *     is a settled HCOMPLETE one): t <= H, the largest h taken. A replica
 *     that settles fresh with H > 0 moves to term H + 1 with no vote before
 *     it takes part, durably (its marker's "term" line), so it never votes
 *     in a term a forgotten vote of its node may have been cast in.
 *     A vouch's h is not taken: the voucher settled after the asker's dir
 *     was made, so it granted no pre-vote of the old dir's time (and its
 *     term, a leader's often, would only make the new member disrupt it).
 *     The fault model is one wiped member per group at a time: two wipes
 *     inside one pre-vote round defeat it (docs/cluster/wiped-rule-
 *     proposal.md, schedule 4, and what would close it).
 *   - FRESH also when the operator stated that this node's data dir was
 *     made for a new cluster's first start (`self_new`, from
 *     --initial-cluster-state bootstrap: this node never took part in the
 *     group before), no answer shows a history, and the answers with this
 *     replica make a majority of the group: enough for a new cluster to
 *     elect with a minority of its founding nodes down. Its own statement
 *     is the proof (nothing on the peers can tell a wiped node from a new
 *     one whose peers holding the history are down); the answers are only
 *     a net for a wrong statement (a history answered first makes it wait).
 *   - WAIT otherwise (too few answers; a member that is asking itself
 *     counts only when all answered): the replica keeps asking and takes no
 *     part. Only the founding members of a group are asked: a wiped node
 *     knows no more of its groups. A member whose latest answer was ASKING
 *     may settle later: it is asked again (wiped_probe_unsettled), and its
 *     latest answer replaces the earlier one.
 *
 * Wire form (no new frame kind, routed to the owning core like any Raft
 * message): the ask is a HEARTBEAT_RESP of term 0 from incarnation 0 with
 * hint = WIPED_PROBE_ASK and context = the asker's data dir id; the answer a
 * HEARTBEAT of term 0 with hint = WIPED_PROBE_ANSWER, the same context,
 * `to` = the asker's member id in the answerer's configuration, log_term =
 * h (above), index = its last log index and offset = WIPED_* flags. An
 * older build sent its term as log_term and set HISTORY for any term or
 * log itself; its answers never carry HCOMPLETE. Raft never sends a message of term 0, so neither is Raft's.
 */
#ifndef RINGKV_CLUSTER_WIPED_PROBE_H
#define RINGKV_CLUSTER_WIPED_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include "raft/raft.h"

#define WIPED_PROBE_ASK 0x5749504541534bull    /* "WIPEASK" */
#define WIPED_PROBE_ANSWER 0x57495045414e53ull /* "WIPEANS" */

/* An answer's flags (its `offset`). */
#define WIPED_ANSWER_ASKING 1u  /* the answerer's replica is asking too */
#define WIPED_ANSWER_HISTORY 2u /* a vote, a term above its floor, a log, a
				 * snapshot, or amnesiac */
#define WIPED_ANSWER_MEMBER 4u  /* its configuration names the asker's node */
#define WIPED_ANSWER_VOUCH 8u   /* the asker's data dir once answered the answerer
				 * that it was asking too: it never took part, no
				 * history for it whatever the answerer's term and
				 * log (replica_wiped.c answer()) */
#define WIPED_ANSWER_HCOMPLETE 16u /* the answerer's h covers its whole life on
				    * its data dir: it started empty and settled
				    * in this process (pre-vote grants are kept in
				    * memory only) */
#define WIPED_ANSWER_FLAGS 31u

/* Above any term a group reaches (a billion elections a second would take
 * a century): an answer's h or a marker's term beyond it is garbage, taken
 * as a history (the answer) or as no settling (the marker). */
#define WIPED_TERM_MAX (1ull << 62)

enum wiped_outcome {
	WIPED_WAIT = 0,
	WIPED_FRESH,    /* no history: a new group's member */
	WIPED_AMNESIAC, /* a history: rejoin as wiped_probe_incarnation() */
};

struct wiped_probe {
	uint64_t self_node;                   /* the asking node */
	uint64_t dir_id;                      /* its data dir's creation id */
	uint32_t nothers;                     /* other founding members */
	uint64_t others[RAFT_MAX_SERVERS];    /* their node ids */
	uint64_t ids[RAFT_MAX_SERVERS];       /* their member ids, as answered
					       * (RAFT_NONE: not heard) */
	uint8_t flags[RAFT_MAX_SERVERS];      /* WIPED_ANSWER_* of the latest
					       * answer (it replaces earlier ones) */
	uint64_t asking_dir[RAFT_MAX_SERVERS];/* the data dir an ASKING answer
					       * came from (its `commit`), 0: none;
					       * kept when a later answer settles */
	bool heard[RAFT_MAX_SERVERS];
	bool history;                         /* some answer showed one (kept:
					       * the group had a history) */
	uint64_t max_h;                       /* H: the largest h of the answers
					       * taken, vouches' aside */
	bool self_new;                        /* set by the caller: the operator
					       * stated this node's data dir was made
					       * for a new cluster's first start */
	uint32_t max_inc;                     /* highest incarnation of self_node
					       * named in any answer */
};

/* The probe of node self_node (data dir id dir_id, never 0) in a group
 * whose members conf names (its founding placement). */
void wiped_probe_init(struct wiped_probe *p, uint64_t self_node, uint64_t dir_id,
		      const struct raft_conf *conf);
/* Is m an ask / an answer (by form only)? */
bool wiped_probe_is_ask(const struct raft_msg *m);
bool wiped_probe_is_answer(const struct raft_msg *m);
/* The ask from member id `from` to node others[i]. */
void wiped_probe_ask(const struct wiped_probe *p, uint64_t from, uint32_t i,
		     struct raft_msg *out);
/* The answer to `ask` by member `self` whose configuration is conf, h
 * max(term, highest pre-vote granted), last log index `last`, `flags` of
 * WIPED_ANSWER_* (MEMBER is worked out here). */
void wiped_probe_answer(const struct raft_msg *ask, uint64_t self, const struct raft_conf *conf,
			uint64_t h, uint64_t last, unsigned flags, uint64_t own_dir,
			struct raft_msg *out);
/* Takes a message that reached the probing replica: an answer to its ask,
 * or a leader's APPEND, HEARTBEAT or SNAPSHOT (a history, naming the
 * asker's member id in m->to). Anything else, and anything from a node that
 * is not another founding member, is ignored. Returns the outcome now. */
enum wiped_outcome wiped_probe_take(struct wiped_probe *p, const struct raft_msg *m);
enum wiped_outcome wiped_probe_decide(const struct wiped_probe *p);
/* The term a replica that settles FRESH moves to before it takes part:
 * H + 1, or 0 (no skip) when every h taken was 0. */
uint64_t wiped_probe_skip_term(const struct wiped_probe *p);
/* Is others[i] still worth asking: not heard yet, or its latest answer
 * said it was asking too (it may settle, or get a history, later)? */
bool wiped_probe_unsettled(const struct wiped_probe *p, uint32_t i);
/* The incarnation to rejoin as: 1 + the highest one any answer named. */
uint32_t wiped_probe_incarnation(const struct wiped_probe *p);
/* The member id others[i] answered from, or replica_ident(others[i], 0). */
uint64_t wiped_probe_member(const struct wiped_probe *p, uint32_t i);

#endif
