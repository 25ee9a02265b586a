/*
 * Moving one shard replica online (docs/cluster/membership.md): the leader's
 * driver of the phases, and a node's side of being asked to host or drop a
 * replica.
 *
 * The shard's own Raft configuration is the authority on its members; the
 * move only issues one membership change at a time and waits for each to
 * commit. What a node hosts is its hosting record (one file per core,
 * cluster/hosting.h), written through the core's ring; a HOST or DROP is
 * answered only once the record saying so is durable, so a node never acts
 * on a placement it would forget in a crash.
 *
 * Invariants:
 *   - a replica is dropped (its record says so, it stops) only on the word
 *     of a leader of a term at least the replica's own, after that leader
 *     committed the configuration without it;
 *   - the files of a dropped replica are deleted at the next start-up, never
 *     while the running server may still hold pointers to its shard.
 */
#include "cluster/replica_internal.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "shard/manifest.h"
#include "shard/sstable_block.h"

#define HOST_RESEND_US 500000u      /* a HOST or DROP not answered: again */
#define HOST_TIMEOUT_US 30000000u   /* the target never answers: give up */
#define DROP_TIMEOUT_US 30000000u
#define TRANSFER_RETRY_US 1000000u

const char *replica_move_phase_name(int phase)
{
	static const char *const names[] = {
		[REPLICA_MOVE_NONE] = "none",       [REPLICA_MOVE_HOST] = "host",
		[REPLICA_MOVE_LEARNER] = "learner", [REPLICA_MOVE_CATCHUP] = "catchup",
		[REPLICA_MOVE_PROMOTE] = "promote", [REPLICA_MOVE_TRANSFER] = "transfer",
		[REPLICA_MOVE_REMOVE] = "remove",   [REPLICA_MOVE_DROP] = "drop",
		[REPLICA_MOVE_DONE] = "done",       [REPLICA_MOVE_FAILED] = "failed",
		[REPLICA_MOVE_HANDED_ON] = "handed-on",
		[REPLICA_MOVE_CANCELLING] = "cancelling",
		[REPLICA_MOVE_CANCELLED] = "cancelled",
	};

	return phase >= 0 && phase <= REPLICA_MOVE_CANCELLED ? names[phase] : "?";
}

static bool move_active(const struct replica_move *m)
{
	return (m->phase >= REPLICA_MOVE_HOST && m->phase <= REPLICA_MOVE_DROP) ||
	       m->phase == REPLICA_MOVE_CANCELLING;
}

static struct cluster_node *node_of(const struct replica *rep)
{
	return rep->core->node;
}

/* ---- sending a Placement frame ----------------------------------------------- */

static void placement_send(struct cluster_core *c, uint64_t to, const struct peer_msg_placement *q)
{
	struct peer_msg_buf *b = &c->placement_buf;
	int rv;

	b->len = 0;
	rv = peer_msg_encode_placement(b, q);
	if (rv == 0)
		rv = cluster_core_send_control(c, to, b->data + PEER_MSG_HEADER_SIZE,
					       b->len - PEER_MSG_HEADER_SIZE);
	if (rv != 0)
		log_every(LOG_WARN, 5000, "placement op %" PRIu64 " for group %" PRIu64
			  " to node %" PRIu64 " not sent: %s (retried)", q->op, q->group, to,
			  rkv_strerror(rv));
}

static void answer(struct cluster_core *c, uint64_t to, uint64_t op, uint32_t group, int status)
{
	struct peer_msg_placement a = {
		.op = op == PEER_PLACEMENT_HOST ? PEER_PLACEMENT_HOSTED : PEER_PLACEMENT_DROPPED,
		.group = group, .status = (uint64_t)(int64_t)-status,
	};

	placement_send(c, to, &a);
}

/* ---- the leader's driver -------------------------------------------------------- */

static void phase_set(struct replica *rep, int phase)
{
	struct replica_move *m = &rep->move;

	/* The move is driven from ticks: a sleeping group's replica is
	 * ticked again (a move started on an idle group stalled, found by
	 * the session 9 review). */
	replica_awake(rep);
	m->phase = phase;
	m->phase_us = rep->core->r->now_us;
	m->sent_us = 0;
	m->conf_index = 0;
	log_info("replica %u: move of node %" PRIu64 " to node %" PRIu64 ":%u: %s", rep->id,
		 m->from, m->to, m->to_core, replica_move_phase_name(phase));
}

/* The reason is `what` followed by `detail`. */
static void move_fail(struct replica *rep, const char *what, const char *detail)
{
	struct replica_move *m = &rep->move;

	snprintf(m->reason, sizeof m->reason, "%s%s", what, detail);
	log_warn("replica %u: move of node %" PRIu64 " to node %" PRIu64 " failed in phase %s: %s",
		 rep->id, m->from, m->to, replica_move_phase_name(m->phase), m->reason);
	m->phase = REPLICA_MOVE_FAILED;
}

static uint32_t voters(const struct raft_conf *conf)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < conf->n; i++)
		n += conf->servers[i].role == RAFT_VOTER;
	return n;
}

int replica_move_start(struct replica *rep, uint64_t from, uint64_t to, uint32_t to_core,
		       char *why, size_t whylen)
{
	const struct cluster_map *map = &node_of(rep)->map;
	const struct raft_conf *conf = raft_conf(rep->raft);
	const struct client_addrs_entry *peer;
	int idx;

	if (rep->core->stopping)
		return RKV_ESHUTDOWN;
	if (raft_role(rep->raft) != RAFT_LEADER || rep->retired)
		return RAFT_ENOTLEADER;
	if (move_active(&rep->move)) {
		snprintf(why, whylen, "a move of shard %u is in progress (node %" PRIu64
			 " to node %" PRIu64 ", phase %s)", rep->id, rep->move.from,
			 rep->move.to, replica_move_phase_name(rep->move.phase));
		return RAFT_EBUSY;
	}
	if (cluster_map_index(map, from) < 0 || (idx = cluster_map_index(map, to)) < 0) {
		snprintf(why, whylen, "node %" PRIu64 " is not in the cluster",
			 cluster_map_index(map, from) < 0 ? from : to);
		return RKV_EINVAL;
	}
	if (from == to) {
		snprintf(why, whylen, "the source and the target are the same node");
		return RKV_EINVAL;
	}
	if (raft_conf_role(conf, from) != RAFT_VOTER) {
		snprintf(why, whylen, "node %" PRIu64 " holds no replica of shard %u", from,
			 rep->id);
		return RKV_EINVAL;
	}
	if (raft_conf_role(conf, to) == RAFT_VOTER && voters(conf) <= map->replicas) {
		snprintf(why, whylen, "node %" PRIu64 " already holds a replica of shard %u", to,
			 rep->id);
		return RKV_EINVAL;
	}
	peer = to == node_of(rep)->cfg.self_id ? &rep->core->client_addrs.self
					       : &rep->core->client_addrs.nodes[idx];
	if (to == node_of(rep)->cfg.self_id && to_core >= node_of(rep)->cfg.cores) {
		snprintf(why, whylen, "node %" PRIu64 " has %u cores: no core %u", to,
			 node_of(rep)->cfg.cores, to_core);
		return RKV_EINVAL;
	}
	if (peer->cores && to_core >= peer->cores) {
		snprintf(why, whylen, "node %" PRIu64 " has %u cores: no core %u", to, peer->cores,
			 to_core);
		return RKV_EINVAL;
	}
	memset(&rep->move, 0, sizeof rep->move);
	rep->move.from = from;
	rep->move.to = to;
	rep->move.to_core = to_core;
	rep->move.started_us = rep->core->r->now_us;
	rep->move.snap_base = rep->snap_send_bytes;
	/* A move stopped by the loss of its leader goes on from where the
	 * group's configuration stands: a learner is hosted already (catch it
	 * up); a target voting in a group one voter above its size was
	 * promoted (remove the source). */
	if (raft_conf_role(conf, to) == RAFT_VOTER)
		phase_set(rep, from == node_of(rep)->cfg.self_id ? REPLICA_MOVE_TRANSFER
								 : REPLICA_MOVE_REMOVE);
	else
		phase_set(rep, raft_conf_role(conf, to) == RAFT_LEARNER ? REPLICA_MOVE_CATCHUP
									: REPLICA_MOVE_HOST);
	return 0;
}

void replica_move_set_rate(struct replica *rep, uint64_t rate)
{
	rep->move.rate = rate;
}

uint64_t replica_move_send_rate(const struct replica *rep, uint64_t to, uint64_t node_rate)
{
	const struct replica_move *m = &rep->move;

	if (!m->rate || m->to != to || !move_active(m))
		return node_rate;
	return node_rate && node_rate < m->rate ? node_rate : m->rate;
}

static bool change_committed(struct replica *rep, int op, uint64_t id);

/* The group's only learner, or RAFT_NONE (none, or several). */
static uint64_t only_learner(const struct raft_conf *conf)
{
	uint64_t found = RAFT_NONE;

	for (uint32_t i = 0; i < conf->n; i++) {
		if (conf->servers[i].role != RAFT_LEARNER)
			continue;
		if (found != RAFT_NONE)
			return RAFT_NONE;
		found = conf->servers[i].id;
	}
	return found;
}

int replica_move_cancel(struct replica *rep, uint64_t to, char *why, size_t whylen)
{
	struct replica_move *m = &rep->move;
	const struct raft_conf *conf = raft_conf(rep->raft);
	const struct cluster_map *map = &node_of(rep)->map;
	int role;

	if (rep->core->stopping)
		return RKV_ESHUTDOWN;
	if (raft_role(rep->raft) != RAFT_LEADER || rep->retired)
		return RAFT_ENOTLEADER;
	if (m->phase == REPLICA_MOVE_CANCELLING && (to == 0 || to == m->to))
		return 0; /* asked again */
	if (move_active(m) && to != 0 && to != m->to) {
		snprintf(why, whylen, "the move of shard %u goes to node %" PRIu64 ", not %" PRIu64,
			 rep->id, m->to, to);
		return RKV_EINVAL;
	}
	if (m->phase == REPLICA_MOVE_DROP ||
	    (m->phase == REPLICA_MOVE_REMOVE && m->conf_index != 0)) {
		snprintf(why, whylen, "the source is already removed (node %" PRIu64 "'s removal "
			 "from shard %u is %s): the move can only finish", m->from, rep->id,
			 m->phase == REPLICA_MOVE_DROP ? "committed" : "proposed");
		return RKV_EINVAL;
	}
	if (!move_active(m)) {
		/* No move driven here: one stopped by a lost leader may have
		 * left a learner, or a promoted target (R+1 voters). */
		if (to == 0)
			to = only_learner(conf);
		role = to == RAFT_NONE ? 0 : raft_conf_role(conf, to);
		if (role == 0 || (role == RAFT_VOTER && voters(conf) <= map->replicas)) {
			if (m->phase == REPLICA_MOVE_DONE && (to == 0 || to == m->to))
				snprintf(why, whylen, "the source is already removed: the move of "
					 "shard %u to node %" PRIu64 " is done", rep->id, m->to);
			else if (to == RAFT_NONE)
				snprintf(why, whylen, "no move of shard %u to cancel", rep->id);
			else
				snprintf(why, whylen, "no move of shard %u to cancel: node %" PRIu64
					 " is %s", rep->id, to, role ? "one of its replicas, "
					 "not an extra one" : "no member of its group");
			return RKV_EINVAL;
		}
		memset(m, 0, sizeof *m);
		m->to = to;
		m->started_us = rep->core->r->now_us;
		m->snap_base = rep->snap_send_bytes;
		m->phase = role == RAFT_LEARNER ? REPLICA_MOVE_CATCHUP : REPLICA_MOVE_PROMOTE;
	}
	m->cancelled_in = m->phase;
	m->cancel_dropping = false;
	phase_set(rep, REPLICA_MOVE_CANCELLING);
	return 0;
}

/* Tells `node` (out of the group) to drop its replica, every
 * HOST_RESEND_US until answered (replica_move_placement); after
 * DROP_TIMEOUT_US the move ends in `last` with a note. */
static void drop_tell(struct replica *rep, uint64_t node, int last)
{
	struct replica_move *m = &rep->move;
	uint64_t now = rep->core->r->now_us;

	if (now - m->phase_us > DROP_TIMEOUT_US) {
		snprintf(m->reason, sizeof m->reason, "node %" PRIu64 " did not confirm the drop "
			 "(down?): it is no member any more; its files stay until it is told "
			 "again", node);
		m->phase = last;
		return;
	}
	if (m->sent_us == 0 || now - m->sent_us >= HOST_RESEND_US) {
		struct peer_msg_placement q = {
			.op = PEER_PLACEMENT_DROP, .group = rep->id,
			.term = raft_term(rep->raft), .index = m->conf_index,
		};

		m->sent_us = now;
		placement_send(rep->core, node, &q);
	}
}

int replica_move_transfer_leader(struct replica *rep, uint64_t to, char *why, size_t whylen)
{
	uint64_t self = node_of(rep)->cfg.self_id;
	int rv;

	if (rep->core->stopping)
		return RKV_ESHUTDOWN;
	if (raft_role(rep->raft) != RAFT_LEADER || rep->retired)
		return RAFT_ENOTLEADER;
	if (move_active(&rep->move)) {
		snprintf(why, whylen, "a move of shard %u is in progress (phase %s)", rep->id,
			 replica_move_phase_name(rep->move.phase));
		return RAFT_EBUSY;
	}
	if (to == RAFT_NONE || to == 0)
		to = replica_best_follower(rep, self);
	if (to == RAFT_NONE || to == self ||
	    raft_conf_role(raft_conf(rep->raft), to) != RAFT_VOTER) {
		snprintf(why, whylen, "shard %u has no other voter to lead it%s", rep->id,
			 to == RAFT_NONE || to == self ? "" : " (the node named is none)");
		return RKV_EINVAL;
	}
	rv = replica_transfer(rep, to);
	if (rv == RAFT_EBUSY)
		snprintf(why, whylen, "a leadership transfer of shard %u is under way", rep->id);
	else if (rv != 0 && rv != RAFT_ENOTLEADER)
		snprintf(why, whylen, "Raft refused the transfer: %s", rkv_strerror(rv));
	if (rv == 0)
		log_info("replica %u: leadership to node %" PRIu64 " (asked)", rep->id, to);
	return rv;
}

/* CANCELLING: take the target out of the group (if it is in it), then have
 * it drop its replica. */
static void cancel_tick(struct replica *rep)
{
	struct replica_move *m = &rep->move;
	uint64_t now = rep->core->r->now_us;

	if (!m->cancel_dropping) {
		/* In the configuration (learner, or voter; the latest one, even
		 * uncommitted): remove it, once the pending change commits. */
		if (m->conf_index == 0 && raft_conf_role(raft_conf(rep->raft), m->to) == 0) {
			m->cancel_dropping = true;
		} else if (change_committed(rep, RAFT_CONF_REMOVE, m->to)) {
			m->cancel_dropping = true;
		}
		if (!m->cancel_dropping)
			return;
		log_info("replica %u: cancelled move: node %" PRIu64 " is out of the group; "
			 "telling it to drop its replica", rep->id, m->to);
		m->phase_us = now;
		m->sent_us = 0;
	}
	drop_tell(rep, m->to, REPLICA_MOVE_CANCELLED);
}

/* Proposes one membership change once (retried while Raft says "not now":
 * the previous change or the term's first entry uncommitted, the learner
 * behind); then true once it is committed. */
static bool change_committed(struct replica *rep, int op, uint64_t id)
{
	struct replica_move *m = &rep->move;
	uint64_t index;
	int rv;

	if (m->conf_index == 0) {
		rv = replica_conf_change(rep, op, id, &index);
		if (rv == RAFT_EBUSY || rv == RAFT_ENOTREADY)
			return false;
		if (rv != 0) {
			move_fail(rep, "Raft refused the change: ", rkv_strerror(rv));
			return false;
		}
		m->conf_index = index;
	}
	return raft_commit_index(rep->raft) >= m->conf_index;
}

void replica_move_tick(struct replica *rep)
{
	struct replica_move *m = &rep->move;
	struct cluster_core *c = rep->core;
	uint64_t now = c->r->now_us, self = node_of(rep)->cfg.self_id;

	if (!move_active(m))
		return;
	if (raft_role(rep->raft) != RAFT_LEADER) {
		uint64_t leader = raft_leader(rep->raft);

		if (m->phase >= REPLICA_MOVE_TRANSFER && m->phase <= REPLICA_MOVE_DROP &&
		    leader != RAFT_NONE && leader != self) {
			/* The new leader carries the rest on (REMOVE, DROP): it
			 * holds every committed change, so it sees the target
			 * voting and the source still a member. */
			struct peer_msg_placement q = {
				.op = PEER_PLACEMENT_CONTINUE, .group = rep->id,
				.core = m->to_core, .term = raft_term(rep->raft),
				.from = m->from, .to = m->to,
			};

			placement_send(c, leader, &q);
			m->leader = leader;
			m->phase = REPLICA_MOVE_HANDED_ON;
			log_info("replica %u: move handed on to the new leader, node %" PRIu64,
				 rep->id, leader);
		} else if (m->phase == REPLICA_MOVE_CANCELLING) {
			move_fail(rep, "leadership was lost during the cancel: run the cancel "
				  "again (--cancel --to the target, on the new leader)", "");
		} else if (m->phase < REPLICA_MOVE_TRANSFER) {
			move_fail(rep, "leadership was lost before the promotion: run the move "
				  "again (it goes on from the learner already added)", "");
		}
		return;
	}
	switch (m->phase) {
	case REPLICA_MOVE_CANCELLING:
		cancel_tick(rep);
		return;
	case REPLICA_MOVE_HOST:
		if (now - m->phase_us > HOST_TIMEOUT_US) {
			move_fail(rep, "the target did not answer the host request (down?)", "");
			return;
		}
		if (m->sent_us == 0 || now - m->sent_us >= HOST_RESEND_US) {
			struct peer_msg_placement q = {
				.op = PEER_PLACEMENT_HOST, .group = rep->id, .core = m->to_core,
				.term = raft_term(rep->raft),
			};

			m->sent_us = now;
			placement_send(c, m->to, &q);
		}
		return;
	case REPLICA_MOVE_LEARNER:
		if (change_committed(rep, RAFT_CONF_ADD_LEARNER, m->to))
			phase_set(rep, REPLICA_MOVE_CATCHUP);
		return;
	case REPLICA_MOVE_CATCHUP:
		/* PROMOTE is refused (RAFT_ENOTREADY) until the learner holds
		 * every committed entry: its acceptance ends the catch-up. */
		if (change_committed(rep, RAFT_CONF_PROMOTE, m->to) || m->conf_index) {
			uint64_t index = m->conf_index;

			if (m->phase != REPLICA_MOVE_CATCHUP)
				return;
			phase_set(rep, REPLICA_MOVE_PROMOTE);
			m->conf_index = index;
		}
		return;
	case REPLICA_MOVE_PROMOTE:
		if (raft_commit_index(rep->raft) < m->conf_index)
			return;
		phase_set(rep, m->from == self ? REPLICA_MOVE_TRANSFER : REPLICA_MOVE_REMOVE);
		return;
	case REPLICA_MOVE_TRANSFER:
		if (m->sent_us == 0 || now - m->sent_us >= TRANSFER_RETRY_US) {
			uint64_t to = replica_best_follower(rep, m->to);

			m->sent_us = now;
			if (to != RAFT_NONE)
				replica_transfer(rep, to);
		}
		return;
	case REPLICA_MOVE_REMOVE:
		if (change_committed(rep, RAFT_CONF_REMOVE, m->from)) {
			uint64_t index = m->conf_index;

			phase_set(rep, REPLICA_MOVE_DROP);
			m->conf_index = index;
		}
		return;
	case REPLICA_MOVE_DROP:
		drop_tell(rep, m->from, REPLICA_MOVE_DONE);
		return;
	default:
		return;
	}
}

void replica_move_status(const struct replica *rep, struct replica_move_status *out)
{
	const struct replica_move *m = &rep->move;
	uint64_t match;

	memset(out, 0, sizeof *out);
	out->phase = m->phase;
	out->from = m->from;
	out->to = m->to;
	out->to_core = m->to_core;
	out->leader = m->leader;
	if (m->phase != REPLICA_MOVE_NONE)
		out->elapsed_us = rep->core->r->now_us - m->started_us;
	out->snap_bytes = rep->snap_send_bytes - m->snap_base;
	out->cancelled_in = m->cancelled_in;
	out->rate = m->rate;
	if (m->phase == REPLICA_MOVE_CATCHUP || m->phase == REPLICA_MOVE_LEARNER) {
		uint64_t sent;

		/* In the move's terms: what it streamed before this stream,
		 * plus this stream's size. */
		if (snapshot_send_progress(rep, m->to, &sent, &out->snap_total))
			out->snap_total += out->snap_bytes - sent;
	}
	if (raft_follower_match(rep->raft, m->to, &match)) {
		out->match = match;
		out->lag = raft_last_index(rep->raft) > match ? raft_last_index(rep->raft) - match : 0;
	}
	snprintf(out->reason, sizeof out->reason, "%s", m->reason);
}

/* ---- a node asked to host or drop: the hosting record ---------------------------- */

static void hosting_kick(struct cluster_core *c);
static int create_start(struct cluster_core *c, uint32_t group, uint64_t from);

static void waits_done(struct cluster_core *c, uint64_t gen, int res)
{
	unsigned kept = 0;

	for (unsigned i = 0; i < c->nwaits; i++) {
		struct placement_wait w = c->waits[i];
		int status = res;

		if (w.gen > gen) {
			c->waits[kept++] = w;
			continue;
		}
		if (status == 0 && w.op == PEER_PLACEMENT_HOST) {
			/* Recorded: make it (answered when published). */
			status = create_start(c, w.group, w.from);
			if (status == 0)
				continue;
		}
		if (status != 0 && w.op == PEER_PLACEMENT_HOST) {
			/* Not hosted after all: the record must not bring an
			 * empty replica back at the next start. */
			cluster_hosting_clear(c->hosting, w.group);
			c->hosting_gen++;
		}
		if (status == 0 && w.op == PEER_PLACEMENT_DROP) {
			/* -2: not hosted, files waiting for the next start */
			atomic_store(&c->node->core_of[w.group], (int16_t)-2);
			core_log_remove_group(c->log, w.group);
			log_info("core %u: replica %u dropped (its files go at the next start)",
				 c->index, w.group);
		}
		answer(c, w.from, w.op, w.group, status);
	}
	c->nwaits = kept;
}

static void hosting_written(struct ring_file *f, int res)
{
	struct cluster_core *c = f->arg;

	if (res < 0)
		log_error("core %u: writing %s/%s failed: %s", c->index, c->node->data_dir, f->name,
			  strerror(-res));
	waits_done(c, c->hosting_writing, res);
	hosting_kick(c);
}

static void hosting_kick(struct cluster_core *c)
{
	size_t len;

	if (!ring_file_idle(&c->hosting_file) || c->hosting_writing == c->hosting_gen)
		return;
	len = cluster_hosting_encode(c->hosting, c->hosting_text, CLUSTER_HOSTING_TEXT_MAX);
	c->hosting_writing = c->hosting_gen;
	ring_file_write(&c->hosting_file, c->hosting_text, len);
}

/* Queues an answer for after the record is durable. */
static bool wait_add(struct cluster_core *c, uint64_t from, uint64_t op, uint32_t group)
{
	if (c->nwaits == PLACEMENT_WAITS)
		return false;
	c->waits[c->nwaits++] = (struct placement_wait){ .group = group, .from = from, .op = op,
							 .gen = c->hosting_gen };
	return true;
}

static bool waiting(const struct cluster_core *c, uint32_t group)
{
	for (unsigned i = 0; i < c->nwaits; i++)
		if (c->waits[i].group == group)
			return true;
	return false;
}

static void host(struct cluster_core *c, uint64_t from, const struct peer_msg_placement *q)
{
	struct cluster_node *n = c->node;
	uint32_t g = (uint32_t)q->group;
	int core = atomic_load(&n->core_of[g]);

	if (core == (int)c->index && c->by_shard[g] && !c->by_shard[g]->retired) {
		answer(c, from, q->op, g, 0); /* asked again: done already */
		return;
	}
	if (c->stopping) {
		answer(c, from, q->op, g, RKV_ESHUTDOWN);
		return;
	}
	/* Held (on another core); or a replica of it was dropped here and its
	 * files wait for the next start to go (core -2: re-hosting would
	 * reopen them), or it is the founding placement's: refused. */
	if (core >= 0 || core == -2 || cluster_map_rank(&n->map, g, n->self_index) >= 0) {
		answer(c, from, q->op, g, -EEXIST);
		return;
	}
	if (waiting(c, g))
		return; /* answered once the record is durable */
	if (cluster_hosting_set(c->hosting, g, (int32_t)c->index) != 0) {
		answer(c, from, q->op, g, -ENOSPC);
		return;
	}
	c->hosting_gen++;
	if (!wait_add(c, from, q->op, g)) {
		answer(c, from, q->op, g, RKV_EAGAIN); /* asked again soon */
		return;
	}
	log_info("core %u: hosting a new replica of shard %u for node %" PRIu64 "'s move",
		 c->index, g, from);
	hosting_kick(c);
}

static void drop(struct cluster_core *c, uint64_t from, const struct peer_msg_placement *q)
{
	uint32_t g = (uint32_t)q->group;
	struct replica *rep = c->by_shard[g];
	int rv;

	if (!rep || rep->retired) {
		/* Being made for a move (a cancelled one): answered once it
		 * exists, when it can be dropped. */
		if (c->create.active && c->create.group == g)
			answer(c, from, q->op, g, RKV_EAGAIN);
		else if (!waiting(c, g))
			answer(c, from, q->op, g, 0);
		return;
	}
	/* A replica made for a move that knows no configuration yet (the
	 * learner's addition never reached it) holds nothing anyone relies
	 * on: the leader of any current term may have it dropped. */
	if (q->term < raft_term(rep->raft) ||
	    (raft_conf_role(raft_conf(rep->raft), from) == 0 &&
	     !(rep->hosted_added && raft_conf(rep->raft)->n == 0))) {
		/* A leader we know to be stale, or a node that is no member of
		 * the group as we know it: not a word to delete data on. */
		answer(c, from, q->op, g, RAFT_ENOTLEADER);
		return;
	}
	if (c->nwaits == PLACEMENT_WAITS) {
		answer(c, from, q->op, g, RKV_EAGAIN);
		return;
	}
	/* Founding or added: `drop` either way, so the next start deletes
	 * its files (for an added one it also means "not hosted"). */
	if ((rv = cluster_hosting_set(c->hosting, g, CLUSTER_HOSTING_DROP)) != 0) {
		answer(c, from, q->op, g, rv);
		return;
	}
	c->hosting_gen++;
	wait_add(c, from, q->op, g);
	/* From now on it neither votes, nor campaigns, nor serves. Its
	 * proposals' entries may be committed by the group all the same (it
	 * led until a moment ago): outcome unknown, never "not applied",
	 * which would send them to the new leader to be applied twice.
	 * Reads read nothing: they go to the leader. */
	rep->retired = true;
	replica_fail_all(rep, RKV_EUNKNOWN, RAFT_ENOTLEADER);
	log_info("core %u: replica %u removed from its group (index %" PRIu64 ", node %" PRIu64
		 "'s term %" PRIu64 "): dropping it", c->index, g, q->index, from, q->term);
	hosting_kick(c);
}

/* CONTINUE: a former leader hands its move on to us. */
static void carry_on(struct cluster_core *c, uint64_t from, const struct peer_msg_placement *q)
{
	struct replica *rep = c->by_shard[q->group];
	const struct raft_conf *conf;

	if (!rep || rep->retired || raft_role(rep->raft) != RAFT_LEADER || move_active(&rep->move))
		return;
	conf = raft_conf(rep->raft);
	if (raft_conf_role(conf, q->to) != RAFT_VOTER || raft_conf_role(conf, q->from) == 0)
		return;
	memset(&rep->move, 0, sizeof rep->move);
	rep->move.from = q->from;
	rep->move.to = q->to;
	rep->move.to_core = (uint32_t)q->core;
	rep->move.started_us = c->r->now_us;
	rep->move.snap_base = rep->snap_send_bytes;
	log_info("replica %u: node %" PRIu64 " hands its move on to us", rep->id, from);
	phase_set(rep, REPLICA_MOVE_REMOVE);
}

int replica_move_placement_core(const struct cluster_core *c, const struct peer_msg_placement *q)
{
	const struct cluster_node *n = c->node;

	if (q->group >= n->map.shards)
		return -1;
	if (q->op == PEER_PLACEMENT_HOST)
		return q->core < n->cfg.cores ? (int)q->core : -1;
	return atomic_load(&n->core_of[q->group]);
}

void replica_move_placement(struct cluster_core *c, uint64_t from,
			    const struct peer_msg_placement *q)
{
	struct replica *rep;

	if (q->group >= c->node->map.shards) {
		if (q->op == PEER_PLACEMENT_HOST || q->op == PEER_PLACEMENT_DROP)
			answer(c, from, q->op, 0, RKV_EINVAL);
		return;
	}
	switch (q->op) {
	case PEER_PLACEMENT_HOST:
		if (q->core >= c->node->cfg.cores) {
			answer(c, from, q->op, (uint32_t)q->group, -ERANGE);
			return;
		}
		host(c, from, q);
		return;
	case PEER_PLACEMENT_DROP:
		drop(c, from, q);
		return;
	case PEER_PLACEMENT_CONTINUE:
		carry_on(c, from, q);
		return;
	case PEER_PLACEMENT_HOSTED:
	case PEER_PLACEMENT_DROPPED:
		break;
	default:
		return;
	}
	rep = c->by_shard[q->group];
	if (!rep)
		return;
	if (q->op == PEER_PLACEMENT_HOSTED && rep->move.phase == REPLICA_MOVE_HOST &&
	    from == rep->move.to) {
		int status = (int)-(int64_t)q->status;

		if (status == 0)
			phase_set(rep, REPLICA_MOVE_LEARNER);
		else if (status == RKV_EAGAIN)
			rep->move.sent_us = 0;
		else if (status == -EEXIST)
			move_fail(rep, "the target already holds a replica of the shard "
				  "(or held it before: re-hosting a dropped founding replica is "
				  "not supported yet)", "");
		else if (status == -ERANGE)
			move_fail(rep, "the target has no such core", "");
		else
			move_fail(rep, "the target could not host the replica: ",
				  rkv_strerror(status));
	} else if (q->op == PEER_PLACEMENT_DROPPED && rep->move.phase == REPLICA_MOVE_CANCELLING &&
		   rep->move.cancel_dropping && from == rep->move.to) {
		int status = (int)-(int64_t)q->status;

		if (status == RKV_EAGAIN)
			return;
		if (status != 0)
			snprintf(rep->move.reason, sizeof rep->move.reason, "node %" PRIu64
				 " refused to drop the replica: %s", rep->move.to,
				 rkv_strerror(status));
		rep->move.phase = REPLICA_MOVE_CANCELLED;
		log_info("replica %u: move to node %" PRIu64 " cancelled (it was in phase %s)",
			 rep->id, rep->move.to, replica_move_phase_name(rep->move.cancelled_in));
	} else if (q->op == PEER_PLACEMENT_DROPPED && rep->move.phase == REPLICA_MOVE_DROP &&
		   from == rep->move.from) {
		int status = (int)-(int64_t)q->status;

		if (status == 0) {
			rep->move.phase = REPLICA_MOVE_DONE;
			log_info("replica %u: move of node %" PRIu64 " to node %" PRIu64 " done in "
				 "%" PRIu64 " ms", rep->id, rep->move.from, rep->move.to,
				 (c->r->now_us - rep->move.started_us) / 1000);
		} else if (status != RKV_EAGAIN) {
			snprintf(rep->move.reason, sizeof rep->move.reason, "node %" PRIu64
				 " refused the drop: %s", rep->move.from, rkv_strerror(status));
			rep->move.phase = REPLICA_MOVE_DONE;
		}
	}
}

/* ---- making the new replica, through the ring ------------------------------------ */

/*
 * The move's new replica is built without blocking the core: the staging
 * directory (mkdirat), an empty shard installed there as a snapshot would be
 * (shard_install: its MANIFEST written, synced, the directory renamed into
 * place, the shard built from it), then the joining marker (ring_file); only
 * then is it published (by_shard, the core's list, core_of) and the leader
 * told. One at a time per core: a second request is answered "again"
 * (RKV_EAGAIN) and the leader asks again.
 */
enum create_step { CREATE_MKDIR = 1, CREATE_INSTALL, CREATE_MARKER };

static void create_end(struct cluster_core *c, int status)
{
	struct replica_create *cr = &c->create;

	if (status != 0) {
		log_error("core %u: making the replica of shard %u failed: %s", c->index,
			  cr->group, rkv_strerror(status));
		if (cr->rep) {
			if (cr->rep->shard)
				shard_close(cr->rep->shard);
			replica_free(cr->rep);
		}
		cluster_hosting_clear(c->hosting, cr->group);
		c->hosting_gen++;
		hosting_kick(c);
	}
	cr->rep = NULL;
	free(cr->image);
	cr->image = NULL;
	cr->active = false;
	answer(c, cr->from, PEER_PLACEMENT_HOST, cr->group, status);
}

static void marker_written(struct ring_file *f, int res)
{
	struct cluster_core *c = f->arg;
	struct replica_create *cr = &c->create;
	struct replica *rep = cr->rep;

	if (res < 0) {
		create_end(c, res);
		return;
	}
	c->by_shard[cr->group] = rep;
	c->reps[c->nreps++] = rep;
	replica_awake(rep);
	c->stats.replicas = c->nreps;
	atomic_store(&c->node->core_of[cr->group], (int16_t)c->index);
	log_info("core %u: replica %u made empty for a move: joining until caught up", c->index,
		 cr->group);
	cr->rep = NULL;
	create_end(c, 0);
}

static void install_finished(void *arg)
{
	struct cluster_core *c = arg;

	shard_install_free(c->create.install);
	c->create.install = NULL;
}

static void installed(void *arg, const struct shard_install_result *res)
{
	struct cluster_core *c = arg;
	struct replica_create *cr = &c->create;
	struct replica *rep = cr->rep;
	struct raft_snapshot_meta snap = { 0 };
	struct raft_hard_state hs = { 0, RAFT_NONE };
	char err[256];
	int rv;

	if (res->rv != 0 || !res->fresh) {
		log_error("core %u: shard %u: %s", c->index, cr->group,
			  res->err ? res->err : "no shard built");
		create_end(c, res->rv ? res->rv : -EIO);
		return;
	}
	rep->shard = res->fresh;
	rv = cluster_core_replica_raft(c, rep, err, sizeof err);
	/* No members, no log: it learns its group from the leader (a
	 * snapshot), and never votes before it caught up (joining). */
	if (rv == 0)
		rv = raft_restore(rep->raft, &hs, &snap, NULL, 0, NULL, 0);
	if (rv != 0) {
		create_end(c, rv);
		return;
	}
	rep->hosted_added = true;
	rep->joining = true;
	rep->apply_next = 1;
	cr->step = CREATE_MARKER;
	ring_file_init(&cr->marker, &c->r->io, c->node->data_dir_fd,
		       replica_file_name(rep->join_marker), marker_written, c);
	ring_file_write(&cr->marker, "", 0);
}

static void staging_made(struct io_op *op, int res, unsigned flags)
{
	struct cluster_core *c = op->data;
	struct replica_create *cr = &c->create;
	struct shard_install_args a = {
		.cfg = &cr->cfg, .io = &c->r->io, .manifest = cr->image,
		.manifest_len = cr->image_len, .installed = installed,
		.finished = install_finished, .arg = c,
	};
	char err[256];
	int rv;

	(void)flags;
	if (res < 0) {
		/* -EEXIST: a staging directory left by a crash; the next start
		 * clears it (shard_snapshot_recover). */
		create_end(c, res);
		return;
	}
	cr->step = CREATE_INSTALL;
	rv = shard_install_start(&cr->install, &a, err, sizeof err);
	if (rv != 0) {
		log_error("core %u: shard %u: %s", c->index, cr->group, err);
		create_end(c, rv);
	}
}

static int create_start(struct cluster_core *c, uint32_t group, uint64_t from)
{
	struct replica_create *cr = &c->create;
	struct manifest_version v;
	struct sstable_buf image = { 0 };
	struct io_uring_sqe *sqe;
	int rv;

	if (cr->active || cr->install)
		return RKV_EAGAIN;
	memset(cr, 0, sizeof *cr);
	cr->rep = cluster_core_replica_alloc(c, group);
	if (!cr->rep)
		return -ENOMEM;
	manifest_version_init(&v);
	rv = manifest_version_snapshot(&v, &image);
	manifest_version_destroy(&v);
	if (rv == 0)
		rv = shard_snapshot_staging_path(cr->staging, sizeof cr->staging, cr->rep->dir);
	if (rv != 0) {
		sstable_buf_free(&image);
		replica_free(cr->rep);
		cr->rep = NULL;
		return rv;
	}
	cr->image = image.data;
	cr->image_len = image.len;
	snprintf(cr->dir, sizeof cr->dir, "%s", cr->rep->dir);
	cr->cfg = cr->rep->shard_cfg;
	cr->cfg.dir = cr->dir;
	cr->active = true;
	cr->group = group;
	cr->from = from;
	cr->step = CREATE_MKDIR;
	cr->op.done = staging_made;
	cr->op.data = c;
	sqe = io_ring_get_sqe(&c->r->io);
	io_op_attach(sqe, &cr->op);
	io_uring_prep_mkdirat(sqe, AT_FDCWD, cr->staging, 0755);
	return 0;
}

/* ---- start-up ---------------------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int replica_move_core_start(struct cluster_core *c, char *err, size_t errlen)
{
	struct cluster_node *n = c->node;
	char path[PATH_MAX], name[32];
	int rv;

	c->hosting = malloc(sizeof *c->hosting);
	c->hosting_text = malloc(CLUSTER_HOSTING_TEXT_MAX);
	if (!c->hosting || !c->hosting_text)
		return -ENOMEM;
	peer_msg_buf_init(&c->placement_buf);
	rv = cluster_hosting_load_core(n->data_dir, c->index, c->hosting, n->map.shards,
				       n->cfg.cores, err, errlen);
	if (rv)
		return rv;
	snprintf(name, sizeof name, CLUSTER_HOSTING_FILE, c->index);
	ring_file_init(&c->hosting_file, &c->r->io, n->data_dir_fd, name, hosting_written, c);
	/* The files of replicas dropped here (their drop is durable, so
	 * their group committed a configuration without this node, or the
	 * move that made it was cancelled). */
	for (uint32_t i = 0; i < c->hosting->n; i++) {
		uint32_t g = c->hosting->e[i].shard;

		if (c->hosting->e[i].core != CLUSTER_HOSTING_DROP)
			continue;
		/* The replica, and a snapshot it was receiving when dropped. */
		for (unsigned k = 0; k < 2; k++) {
			snprintf(path, sizeof path, "%s/shard-%u%s", n->data_dir, g,
				 k ? ".incoming" : "");
			if (access(path, F_OK) != 0)
				continue;
			log_info("core %u: deleting %s: the replica was moved away", c->index, path);
			if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0) {
				rv = -errno;
				snprintf(err, errlen, "%s: %s", path, strerror(errno));
				return rv;
			}
		}
		snprintf(path, sizeof path, "%s/shard-%u.conf", n->data_dir, g);
		unlink(path);
		snprintf(path, sizeof path, "%s/shard-%u.joining", n->data_dir, g);
		unlink(path);
		snprintf(path, sizeof path, "%s/shard-%u.amnesiac", n->data_dir, g);
		unlink(path);
	}
	return 0;
}

void replica_move_core_log_open(struct cluster_core *c)
{
	for (uint32_t i = 0; i < c->hosting->n; i++)
		if (c->hosting->e[i].core == CLUSTER_HOSTING_DROP)
			core_log_remove_group(c->log, c->hosting->e[i].shard);
}

bool replica_move_idle(const struct cluster_core *c)
{
	return !c->hosting || (ring_file_idle(&c->hosting_file) && !c->create.active &&
			       !c->create.install);
}

void replica_move_core_free(struct cluster_core *c)
{
	if (c->create.rep) {
		if (c->create.rep->shard)
			shard_close(c->create.rep->shard);
		replica_free(c->create.rep);
		c->create.rep = NULL;
	}
	free(c->create.image);
	c->create.image = NULL;
	free(c->hosting);
	free(c->hosting_text);
	peer_msg_buf_free(&c->placement_buf);
	c->hosting = NULL;
	c->hosting_text = NULL;
}
