/*
 * An amnesiac replica (issue #14): a replica whose core's newest core log
 * segment was found damaged at start-up (cluster/core_log_repair.c), and
 * how it rejoins its group as a new incarnation.
 *
 * What it may have forgotten: the hard state (term, vote) and the entries
 * written after the segment's checkpoint, some of them acknowledged to a
 * leader. No bound on what it forgot is knowable from the node alone (a
 * vote cast for a candidate that then died is known to that candidate
 * only), and no rule of the form "vote only above the terms a majority of
 * the others report" is safe: the candidate holding the lost vote may be
 * campaigning in a term above every node asked. Nor may it acknowledge
 * entries: while its term may be below a term it voted in, a leader of an
 * older term could commit with its ack an entry the leader it elected
 * lacks.
 *
 * So, as TiKV does, the old identity takes NO part in its group ever again:
 * the replica restarts as a NEW member of the group, the next incarnation
 * of its node (cluster/replica_ident.h: Raft id = node | incarnation << 48),
 * empty, and until the group adds that identity it is no member at all:
 *   - every Raft message addressed to its old identity is dropped on
 *     arrival (votes, pre-votes, appends, heartbeats, snapshots,
 *     TIMEOUT_NOW, ReadIndex traffic): what the old identity promised is
 *     never counted again, and the new one has promised nothing;
 *   - it is no voter in the configuration it knows, so Raft never lets it
 *     campaign; it serves nothing from its state (no stale read) while the
 *     marker is there;
 *   - it asks every other member it knows of, every second, to rejoin: a
 *     HEARTBEAT_RESP from its new identity, which the leader takes as the
 *     request (replica_rejoin_note) instead of stepping it (the others
 *     drop it);
 *   - the leader adds the new identity as a learner (caught up by snapshot
 *     and log as a moved replica is), removes the old one (a conf change
 *     committed without it), and promotes the new one once caught up (Raft
 *     refuses before: RAFT_ENOTREADY). Each step after the first is
 *     derived from the group's configuration at every tick (a learner of
 *     incarnation > 0 is a rejoin under way), so a new leader carries it
 *     on;
 *   - once the configuration recorded on disk (shard-N.conf) names the new
 *     identity a voter, the marker goes (unlink, then the data dir's fsync)
 *     and from then on the record gives the incarnation.
 *
 * Durable: the marker DATA/shard-N.amnesiac (line 1: what was damaged;
 * line 2: "incarnation K") is written before anything of the core log is
 * moved, and read at every start before the replica's Raft is made.
 */
#include "cluster/replica_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/durable_file.h"
#include "core/log.h"

/* How often an amnesiac replica asks to rejoin. */
#define REJOIN_ASK_US 1000000u

void replica_amnesia_marker_name(char *buf, size_t len, uint32_t shard)
{
	snprintf(buf, len, "shard-%u.amnesiac", shard);
}

int replica_amnesia_mark(const char *data_dir, uint32_t shard, const char *why,
			 uint32_t incarnation)
{
	char name[64], text[AMNESIA_WHY_MAX + 32];
	int n;

	if (incarnation == 0 || incarnation > REPLICA_IDENT_INC_MAX)
		return -ERANGE; /* 65,535 rejoins of one replica: refused */
	replica_amnesia_marker_name(name, sizeof name, shard);
	n = snprintf(text, sizeof text, "%.*s\nincarnation %" PRIu32 "\n", AMNESIA_WHY_MAX - 1,
		     why, incarnation);
	if (n < 0 || (size_t)n >= sizeof text)
		return -EINVAL;
	return durable_file_replace(data_dir, name, text, (size_t)n);
}

static void marker_parse(char *buf, size_t len, char *why, size_t whylen, uint32_t *inc);

int replica_amnesia_recorded_incarnation(const char *conf_path, uint64_t node, uint32_t *inc,
					 char *err, size_t errlen)
{
	struct raft_conf conf;
	uint64_t index, id;
	int rv;

	*inc = 0;
	if (access(conf_path, F_OK) != 0 && errno == ENOENT)
		return 0; /* never recorded: the founding identity */
	/* Unreadable or damaged: guessing could reuse an identity that voted. */
	rv = replica_conf_load(conf_path, &index, &conf, err, errlen);
	if (rv != 0)
		return rv;
	id = replica_ident_member(&conf, node, RAFT_NONE);
	*inc = id == RAFT_NONE ? 0 : replica_ident_inc(id);
	return 0;
}

/*
 * Reads DATA/shard-N.amnesiac: its reason into why, its incarnation into
 * *inc, its path into path. 0 with *inc = 0 when there is none; a marker
 * without a valid incarnation line is refused rather than guessed (the
 * record may lag the group: "after the recorded one" could bring back an
 * identity that voted).
 */
static int marker_read(const char *data_dir, uint32_t shard, char *path, size_t pathlen,
		       char *why, size_t whylen, uint32_t *inc, char *err, size_t errlen)
{
	char name[64], buf[AMNESIA_WHY_MAX + 32];
	ssize_t got;
	int fd;

	*inc = 0;
	replica_amnesia_marker_name(name, sizeof name, shard);
	snprintf(path, pathlen, "%s/%s", data_dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	got = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (got < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -EIO;
	}
	buf[got] = '\0';
	marker_parse(buf, (size_t)got, why, whylen, inc);
	if (*inc == 0) {
		snprintf(err, errlen, "%s: no valid incarnation line; refused rather than "
			 "guessed (docs/DAMAGED-DATADIR.md, \"Amnesiac replicas\")", path);
		return -EINVAL;
	}
	return 0;
}

int replica_amnesia_marked_incarnation(const char *data_dir, uint32_t shard, uint32_t *inc,
				       char *err, size_t errlen)
{
	char path[PATH_MAX + 64], why[8];

	return marker_read(data_dir, shard, path, sizeof path, why, sizeof why, inc, err, errlen);
}

/* The marker's text: the reason (printable bytes only: it comes from disk)
 * and the incarnation (0 when the line is missing or bad). */
static void marker_parse(char *buf, size_t len, char *why, size_t whylen, uint32_t *inc)
{
	char *line2 = memchr(buf, '\n', len);
	unsigned long long k = 0;

	*inc = 0;
	if (line2) {
		*line2++ = '\0';
		if (sscanf(line2, "incarnation %llu", &k) == 1 && k > 0 &&
		    k <= REPLICA_IDENT_INC_MAX)
			*inc = (uint32_t)k;
	}
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	snprintf(why, whylen, "%.*s", (int)whylen - 1,
		 buf[0] ? buf : "(the marker names no reason)");
}

int replica_amnesia_load(struct replica *rep, char *err, size_t errlen)
{
	const struct cluster_node *n = rep->core->node;
	char path[PATH_MAX + 64], conf_path[PATH_MAX + 32], why[AMNESIA_WHY_MAX];
	uint32_t recorded;
	struct raft_conf conf;
	uint64_t index;
	uint32_t inc;
	int rv;

	replica_conf_path(rep, conf_path, sizeof conf_path);
	rv = replica_amnesia_recorded_incarnation(conf_path, n->cfg.self_id,
						  &recorded, err, errlen);
	if (rv != 0)
		return rv;
	rep->incarnation = recorded;
	rv = marker_read(n->data_dir, rep->id, path, sizeof path, why, sizeof why, &inc, err,
			 errlen);
	if (rv != 0 || inc == 0)
		return rv;
	rep->incarnation = inc;
	/* Rejoined already (killed before the marker's unlink): the record
	 * names the new identity a voter. */
	if (replica_conf_load(conf_path, &index, &conf, err, errlen) == 0 &&
	    raft_conf_role(&conf, replica_ident(n->cfg.self_id, inc)) == RAFT_VOTER) {
		if (unlink(path) != 0 || durable_dir_sync(n->data_dir) != 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return -EIO;
		}
		log_info("replica %u: rejoined its group as incarnation %" PRIu32 " before a "
			 "restart; %s removed", rep->id, inc, path);
		return 0;
	}
	rep->amnesia_why = strdup(why);
	if (!rep->amnesia_why) {
		snprintf(err, errlen, "replica %u: out of memory", rep->id);
		return -ENOMEM;
	}
	rep->amnesiac = true;
	log_error("replica %u: amnesiac: its core log was damaged where a vote or acknowledged "
		  "entries may have been lost (%s); its old identity takes no part in its group "
		  "(no vote, no acknowledgement, no campaign, no read); it asks to rejoin as "
		  "incarnation %" PRIu32 " (%s; docs/DAMAGED-DATADIR.md, \"Amnesiac replicas\")",
		  rep->id, rep->amnesia_why, inc, path);
	return 0;
}

bool replica_amnesia_accept(struct replica *rep, const struct raft_msg *m)
{
	if (m->to == raft_id(rep->raft)) {
		/* The new identity answers no vote request while its own
		 * configuration does not name it a voter: promotion comes
		 * only after it caught up, so this costs no liveness, and a
		 * candidate that counts it before then is wrong. */
		if (rep->amnesiac && (m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE) &&
		    raft_conf_role(raft_conf(rep->raft), raft_id(rep->raft)) != RAFT_VOTER) {
			rep->amnesia_dropped++;
			return false;
		}
		return true;
	}
	if (rep->amnesiac) {
		rep->amnesia_dropped++;
		/* Only a leader sends these: remembered as a routing hint and
		 * as where to ask to rejoin, never stepped. */
		if ((m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT) &&
		    m->term >= rep->amnesia_leader_term) {
			rep->amnesia_leader = m->from;
			rep->amnesia_leader_term = m->term;
		}
	}
	return false;
}

bool replica_rejoin_note(struct replica *rep, const struct raft_msg *m)
{
	const struct raft_conf *conf = raft_conf(rep->raft);

	/* The request's form: a HEARTBEAT_RESP of term 0 (Raft never sends
	 * one: its terms start at 1) from a new incarnation. */
	if (m->type != RAFT_MSG_HEARTBEAT_RESP || m->term != 0 || replica_ident_inc(m->from) == 0)
		return false;
	if (raft_role(rep->raft) == RAFT_LEADER && raft_conf_role(conf, m->from) == 0 &&
	    rep->rejoin_id != m->from) {
		rep->rejoin_id = m->from;
		log_info("replica %u: node %" PRIu64 " asks to rejoin as incarnation %" PRIu32
			 " (its log was damaged, or its data dir wiped)", rep->id, replica_ident_node(m->from),
			 replica_ident_inc(m->from));
	}
	return true;
}

/* The marker's unlink, then (linked) the data dir's fsync: both come back. */
static void marker_unlinked(struct io_op *op, int res, unsigned flags)
{
	struct replica *rep = op->data;

	(void)flags;
	if (res < 0 && res != -ECANCELED && rep->amnesia_res == 0)
		rep->amnesia_res = res;
	if (--rep->amnesia_unlinking > 0)
		return;
	if (rep->amnesia_res < 0 && rep->amnesia_res != -ENOENT) {
		/* It stays amnesiac; tried again at the next tick. */
		log_warn("replica %u: removing its amnesia marker: %s", rep->id,
			 strerror(-rep->amnesia_res));
		return;
	}
	rep->amnesiac = false;
	log_info("replica %u: rejoined its group as incarnation %" PRIu32 " and caught up; "
		 "its amnesia marker is removed", rep->id, rep->incarnation);
}

static void marker_unlink(struct replica *rep)
{
	replica_amnesia_marker_name(rep->amnesia_marker, sizeof rep->amnesia_marker, rep->id);
	rep->amnesia_res = 0;
	replica_marker_unlink(rep, rep->amnesia_marker, &rep->amnesia_op, &rep->amnesia_sync_op,
			      marker_unlinked);
	rep->amnesia_unlinking = 2;
}

/* The amnesiac replica: asks to rejoin until it is a member; once the
 * record on disk names it a voter, its marker goes. */
static void amnesiac_tick(struct replica *rep)
{
	struct cluster_core *c = rep->core;
	uint64_t self = raft_id(rep->raft);
	const struct replica_conf_rec *cr = &rep->conf_rec;
	const struct raft_conf *conf = raft_conf(rep->raft);
	struct raft_msg ask = { .type = RAFT_MSG_HEARTBEAT_RESP };

	if (rep->amnesia_unlinking)
		return;
	if (cr->durable_index > 0 && cr->durable_index == cr->want_index &&
	    raft_conf_role(&cr->want, self) == RAFT_VOTER) {
		marker_unlink(rep);
		return;
	}
	if (raft_conf_role(conf, self) != 0 || c->node->cfg.amnesia_no_rejoin ||
	    c->r->now_us - rep->amnesia_asked_us < REJOIN_ASK_US)
		return;
	/* To every other member it knows of: whichever leads takes it (the
	 * leader it heard of may have lost leadership since). */
	rep->amnesia_asked_us = c->r->now_us;
	ask.from = self;
	for (uint32_t i = 0; i < conf->n; i++) {
		if (replica_ident_node(conf->servers[i].id) == c->node->cfg.self_id)
			continue;
		ask.to = conf->servers[i].id;
		cluster_core_queue_msg(c, rep->id, &ask);
	}
}

static const char *change_name(int op)
{
	return op == RAFT_CONF_REMOVE	     ? "removing an older identity"
	       : op == RAFT_CONF_ADD_LEARNER ? "adding its new identity as a learner"
					     : "promoting its new identity";
}

/* Proposes `op` on member `id` of node `node`; refusals that pass with
 * time (the last change not committed, the learner not caught up) are
 * retried at the next tick. */
static void change(struct replica *rep, int op, uint64_t id)
{
	uint64_t index;
	int rv = replica_conf_change(rep, op, id, &index);

	if (rv == 0)
		log_info("replica %u: rejoin of node %" PRIu64 ": %s (incarnation %" PRIu32
			 ") at index %" PRIu64, rep->id, replica_ident_node(id), change_name(op),
			 replica_ident_inc(id), index);
	else if (rv != RAFT_EBUSY && rv != RAFT_ENOTREADY)
		log_every(LOG_WARN, 10000, "replica %u: rejoin of node %" PRIu64 ": %s: %s",
			  rep->id, replica_ident_node(id), change_name(op), rkv_strerror(rv));
}

/*
 * The leader: one step of the rejoins under way, derived from the group's
 * configuration alone (a new leader carries them on): a learner of
 * incarnation > 0 is a rejoining replica (a moved replica is incarnation
 * 0). An older identity of its node is removed first, then it is promoted
 * once caught up (Raft refuses before); a learner older than another
 * identity of its node is stale and removed. A request (rejoin_id) adds
 * the new identity as a learner, only while an older identity of its node
 * is a member: a node the group no longer has is not taken back.
 */
static void rejoin_drive(struct replica *rep)
{
	const struct raft_conf *conf = raft_conf(rep->raft);
	struct replica_move_status ms;

	replica_move_status(rep, &ms);
	if (ms.phase != REPLICA_MOVE_NONE && ms.phase != REPLICA_MOVE_DONE &&
	    ms.phase != REPLICA_MOVE_FAILED && ms.phase != REPLICA_MOVE_CANCELLED &&
	    ms.phase != REPLICA_MOVE_HANDED_ON)
		return; /* one membership driver at a time */
	for (uint32_t i = 0; i < conf->n; i++) {
		uint64_t x = conf->servers[i].id;

		if (conf->servers[i].role != RAFT_LEARNER || replica_ident_inc(x) == 0)
			continue;
		for (uint32_t k = 0; k < conf->n; k++) {
			uint64_t y = conf->servers[k].id;

			if (y == x || replica_ident_node(y) != replica_ident_node(x))
				continue;
			change(rep, RAFT_CONF_REMOVE,
			       replica_ident_inc(y) < replica_ident_inc(x) ? y : x);
			return;
		}
		change(rep, RAFT_CONF_PROMOTE, x);
		if (raft_conf_role(raft_conf(rep->raft), x) == RAFT_VOTER) {
			rep->rejoins_done++;
			log_info("replica %u: node %" PRIu64 " rejoined as incarnation %" PRIu32
				 ": a voter again", rep->id, replica_ident_node(x),
				 replica_ident_inc(x));
		}
		return;
	}
	if (rep->rejoin_id != RAFT_NONE) {
		uint64_t to = rep->rejoin_id;
		uint64_t old = replica_ident_member(conf, replica_ident_node(to), to);

		rep->rejoin_id = RAFT_NONE;
		if (old != RAFT_NONE && replica_ident_inc(old) < replica_ident_inc(to) &&
		    raft_conf_role(conf, to) == 0)
			change(rep, RAFT_CONF_ADD_LEARNER, to);
	}
}

void replica_amnesia_tick(struct replica *rep)
{
	if (rep->amnesiac)
		amnesiac_tick(rep);
	if (raft_role(rep->raft) != RAFT_LEADER) {
		rep->rejoin_id = RAFT_NONE; /* the new leader is asked again */
		return;
	}
	rejoin_drive(rep);
}
