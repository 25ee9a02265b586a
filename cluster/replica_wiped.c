/*
 * A replica that starts empty asks its group before it takes part
 * (docs/cluster/repair-design.md, "Step 3: a wiped node"; the rule and why
 * it is safe: cluster/wiped_probe.h).
 *
 * An empty replica is either a new group's (a new cluster's first start)
 * or one that forgot what it promised: its node's data dir was wiped (same
 * node id, empty dir), or it was down since its group began. From inside
 * they look the same; the peers know. So while it asks ("probing"):
 *   - every Raft message for it is dropped (no vote, no acknowledgement)
 *     and its Raft is not ticked (no campaign): it has promised nothing
 *     since it started, and its old identity's promises are never counted
 *     by this process;
 *   - it asks each other founding member that has not answered, every
 *     tick at first, and again, at a slow pace, each one whose latest
 *     answer was that it asks too (a HEARTBEAT_RESP of term 0, routed to
 *     the core owning the group); the answer says the answerer's term,
 *     log, whether it asks too and which identity of our node its
 *     configuration names. A member that answered "asking" is answered
 *     again once we settle, and its latest answer replaces its earlier.
 * Then, once enough answered (wiped_probe.h):
 *   - a history: the marker DATA/shard-N.amnesiac is written ("incarnation
 *     K", K = 1 + the highest incarnation named) through the ring, and only
 *     then is the replica's Raft made again with identity (node, K), empty:
 *     from there the amnesiac rejoin (replica_amnesia.c) adds it as a new
 *     member, catches it up by snapshot and promotes it. Its joining marker
 *     goes (an amnesiac replica needs none);
 *   - no history: it goes on as today's empty replica (undecided, or
 *     joining with --initial-cluster-state existing; replica.c). With
 *     --initial-cluster-state bootstrap on a new data dir (kept in
 *     DATADIR-ID) it settles so once it and the members that answered,
 *     none with a history, are a majority of the group.
 * A crash while it asks leaves it empty: it asks again at the next start.
 *
 * The node part (node init, the hello's fields 11-12): every data dir has
 * an id made at random when it is created (DATA/DATADIR-ID), sent in every
 * hello; a peer answers an ask only when it carries the id of the asking
 * node's latest hello, so an ask (or answer) of an earlier life of the
 * node's data dir is never taken for this one's.
 */
#include "cluster/replica_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cluster/wiped_probe.h"
#include "core/durable_file.h"
#include "core/log.h"

#define DATADIR_ID_FILE "DATADIR-ID"
#define ASK_FAST_TICKS 40 /* asks every tick for this many ticks */
#define ASK_SLOW_TICKS 10 /* then every this many (at least an election
			   * timeout); a member that answered it was asking
			   * too is asked again at this pace only */
#define BOOTSTRAP_LINE "new-cluster\n" /* DATADIR-ID's second line */

struct replica_wiped {
	struct wiped_probe probe;
	bool probing;                /* asking; takes no part */
	bool marking;                /* the amnesia marker is being written */
	uint32_t incarnation;        /* what the marker says */
	uint64_t asks;               /* asks sent */
	uint64_t ticks;              /* ticks while probing */
	uint64_t began_us;
	struct ring_file marker;     /* DATA/shard-N.amnesiac */
	char text[AMNESIA_WHY_MAX + 32];
	struct io_op unlink_op;      /* the joining marker's removal */
	struct io_op sync_op;
	unsigned unlinking;          /* of the two, not completed yet */
	struct raft_msg vote;        /* the last vote request dropped while
				      * asking: stepped if it settles fresh */
	uint64_t skip;               /* the term the settle marker names (0:
				      * none): fresh() skips to this one */
	bool has_vote;
	uint32_t nasked;             /* members whose asks we answered while
				      * asking ourselves: answered again once
				      * we settle (asked_by) */
	struct {
		uint64_t from, context;
	} asked_by[RAFT_MAX_SERVERS];
};

/* ---- the node: its data dir's id -------------------------------------------- */

static int id_read(const char *path, uint64_t *id, bool *bootstrap)
{
	char buf[96];
	unsigned long long v;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	if (sscanf(buf, "ringkv-data-dir-id %llx", &v) != 1 || v == 0)
		return -EINVAL;
	*id = v;
	*bootstrap = strstr(buf, "\n" BOOTSTRAP_LINE) != NULL;
	return 0;
}

int replica_wiped_node_init(struct cluster_node *n, char *err, size_t errlen)
{
	char path[PATH_MAX + 32], text[96];
	uint64_t id = 0;
	bool recorded = false, bootstrap;
	int rv, len;

	snprintf(path, sizeof path, "%s/OPENED", n->data_dir);
	n->data_dir_new = access(path, F_OK) != 0;
	snprintf(path, sizeof path, "%s/" DATADIR_ID_FILE, n->data_dir);
	rv = id_read(path, &id, &recorded);
	/* Missing (a new data dir, or one made by a build before this
	 * file), or unreadable: a new id. It only pairs a node's asks with
	 * its hello; nothing is lost by a new one. */
	if (rv != 0 && rv != -ENOENT)
		log_warn("%s: %s; a new data dir id is made", path,
			 rv == -EINVAL ? "not a data dir id" : strerror(-rv));
	while (rv != 0 && id == 0)
		if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id) {
			snprintf(err, errlen, "getrandom: %s", strerror(errno));
			return -EIO;
		}
	/*
	 * --initial-cluster-state bootstrap states that this node never took
	 * part in its cluster before this data dir: a statement about the
	 * dir's making, so it is taken only when the dir is new (no OPENED)
	 * and kept in the dir, for every later start on it (a replica still
	 * asking when the node stopped asks again on the same statement). On
	 * a dir that ran without it, it is ignored: that dir may have been
	 * made by a wiped node's restart.
	 */
	bootstrap = recorded || (n->cfg.bootstrap && n->data_dir_new);
	if (n->cfg.bootstrap && !n->data_dir_new)
		log_warn("data dir %s: --initial-cluster-state bootstrap %s: it is taken only "
			 "when the node starts on a new data dir, and this one ran before; remove "
			 "it from the configuration, so that it is not given to this node once "
			 "its data dir is wiped", n->data_dir,
			 recorded ? "not needed (the data dir was made with it and keeps it)"
				  : "ignored (the data dir was made without it)");
	if (rv != 0 || bootstrap != recorded) {
		len = snprintf(text, sizeof text, "ringkv-data-dir-id %016" PRIx64 "\n%s", id,
			       bootstrap ? BOOTSTRAP_LINE : "");
		rv = durable_file_replace(n->data_dir, DATADIR_ID_FILE, text, (size_t)len);
		if (rv) {
			snprintf(err, errlen, "%s: %s", path, strerror(-rv));
			return rv;
		}
		log_info("data dir %s: id %016" PRIx64 "%s", n->data_dir, id,
			 n->data_dir_new ? " (a new data dir)" : "");
	}
	n->data_dir_id = id;
	n->data_dir_bootstrap = bootstrap;
	if (bootstrap)
		log_info("data dir %s was made for a new cluster's first start "
			 "(--initial-cluster-state bootstrap): its empty replicas take part once "
			 "they and the members that answered, none with a history, are a majority "
			 "of their group", n->data_dir);
	return 0;
}

void replica_wiped_hello(struct cluster_node *n, uint64_t node, uint64_t dir_id, bool dir_new)
{
	int idx = cluster_map_index(&n->map, node);
	uint64_t was;

	if (idx < 0 || dir_id == 0)
		return;
	was = atomic_exchange(&n->peer_dir_id[idx], dir_id);
	if (was == dir_id)
		return;
	if (was != 0)
		log_warn("node %" PRIu64 " runs on another data dir (id %016" PRIx64 ", was %016"
			 PRIx64 ")%s: its empty replicas ask whether it was a member before "
			 "taking part", node, dir_id, was, dir_new ? ", new: a wiped node?" : "");
	else if (dir_new)
		log_info("node %" PRIu64 " starts on a new data dir (id %016" PRIx64 ")", node,
			 dir_id);
}

/* ---- the replica ------------------------------------------------------------ */

bool replica_wiped_probing(const struct replica *rep)
{
	return rep->wiped && rep->wiped->probing;
}

int replica_settle_marker(char *buf, size_t cap, bool undecided, uint64_t term)
{
	const char *head = undecided ? "undecided settled" : "settled";

	return term ? snprintf(buf, cap, "%s\nterm %" PRIu64 "\n", head, term)
		    : snprintf(buf, cap, "%s", head);
}

bool replica_wiped_idle(const struct replica *rep)
{
	const struct replica_wiped *w = rep->wiped;

	return !w || (ring_file_idle(&w->marker) && w->unlinking == 0);
}

int replica_wiped_begin(struct replica *rep, const struct raft_conf *conf, char *err,
			size_t errlen)
{
	struct cluster_node *n = rep->core->node;
	struct replica_wiped *w = calloc(1, sizeof *w);

	if (!w) {
		snprintf(err, errlen, "replica %u: out of memory", rep->id);
		return -ENOMEM;
	}
	wiped_probe_init(&w->probe, n->cfg.self_id, n->data_dir_id, conf);
	w->probe.self_new = n->data_dir_bootstrap;
	w->probing = true;
	w->began_us = rep->core->r->now_us;
	rep->wiped = w;
	log_info("replica %u: started empty: asks %" PRIu32 " other member%s whether node %" PRIu64
		 " was a member (a wiped data dir?) before it votes or acknowledges anything",
		 rep->id, w->probe.nothers, w->probe.nothers == 1 ? "" : "s", n->cfg.self_id);
	return 0;
}

struct wiped_vouch {
	uint32_t n;
	struct {
		uint64_t node, dir;
	} of[];
};

void replica_wiped_free(struct replica *rep)
{
	free(rep->wiped);
	rep->wiped = NULL;
}

void replica_wiped_free_vouch(struct replica *rep)
{
	free(rep->vouch);
	rep->vouch = NULL;
}

/* Does our fresh settling vouch for `node` asking from data dir `dir`? */
static bool vouches(const struct replica *rep, uint64_t node, uint64_t dir)
{
	for (uint32_t i = 0; rep->vouch && i < rep->vouch->n; i++)
		if (rep->vouch->of[i].node == node && rep->vouch->of[i].dir == dir)
			return true;
	return false;
}

/* We answered `ask` that we were asking too: its sender is answered
 * again once we settle (the latest ask per node). */
static void note_asker(struct replica_wiped *w, const struct raft_msg *ask)
{
	uint64_t node = replica_ident_node(ask->from);
	uint32_t i = 0;

	while (i < w->nasked && replica_ident_node(w->asked_by[i].from) != node)
		i++;
	if (i == RAFT_MAX_SERVERS)
		return; /* more askers than members: it asks again anyway */
	if (i == w->nasked)
		w->nasked++;
	w->asked_by[i].from = ask->from;
	w->asked_by[i].context = ask->context;
}

/* An ask from another node's empty replica: what we know of the group. */
static void answer(struct replica *rep, const struct raft_msg *ask)
{
	struct cluster_node *n = rep->core->node;
	int idx = cluster_map_index(&n->map, replica_ident_node(ask->from));
	unsigned flags = 0;
	struct raft_msg out;
	uint64_t h = raft_term(rep->raft);

	/* Only for the data dir of the node's latest hello. */
	if (idx < 0 || atomic_load(&n->peer_dir_id[idx]) != ask->context) {
		rep->core->stats.dropped_bad++;
		return;
	}
	if (replica_wiped_probing(rep))
		flags |= WIPED_ANSWER_ASKING;
	/* A term it skipped to when it settled, with no vote, is no
	 * history: it only says what it will not vote in. */
	if (raft_term(rep->raft) > rep->term_floor || raft_vote(rep->raft) != RAFT_NONE ||
	    raft_last_index(rep->raft) > 0 || rep->amnesiac ||
	    (rep->shard && shard_flushed_index(rep->shard) > 0))
		flags |= WIPED_ANSWER_HISTORY;
	/* h: no vote of a wiped asker's old data dir can be pending in a
	 * term above it that we took part in (wiped_probe.h, "The skip").
	 * Complete only if this process saw all the replica's life here. */
	if (raft_prevote_max(rep->raft) > h)
		h = raft_prevote_max(rep->raft);
	if (rep->settled_here)
		flags |= WIPED_ANSWER_HCOMPLETE;
	/*
	 * The vouch: when we settled fresh, this very data dir of the asker
	 * had answered us that it was asking too (empty, taking no part).
	 * It asks again, so it still holds nothing durable: it never voted
	 * (a vote is durable before it is sent) nor acknowledged (that needs
	 * entries in its log). So it is a new member whatever the group did
	 * since: no history for it. Without this, a member a little later
	 * than the others to decide at a new cluster's first start found
	 * their first leader's term and came back amnesiac. A wiped asker has
	 * a new dir id, which never answered us: no vouch.
	 * A vouch is given with no history of ours too: the asker takes no
	 * h from it (we settled after its dir was made, so no pre-vote we
	 * granted is of its node's earlier dir's time), and without it a
	 * member settling a moment after the others at a new cluster's
	 * first start skipped past the first candidate's pre-vote and made
	 * the first leader step down (wiped_probe.h, "The skip").
	 */
	if (vouches(rep, replica_ident_node(ask->from), ask->context))
		flags = (flags & ~WIPED_ANSWER_HISTORY) | WIPED_ANSWER_VOUCH;
	wiped_probe_answer(ask, raft_id(rep->raft), raft_conf(rep->raft), h,
			   raft_last_index(rep->raft), flags, n->data_dir_id, &out);
	cluster_core_queue_msg(rep->core, rep->id, &out);
	if (flags & WIPED_ANSWER_ASKING)
		note_asker(rep->wiped, ask);
}

/* Once we settle, the members we told we were asking are told what we
 * are now (asked_by): they need not wait for their next ask, which comes
 * at the slow pace (replica_wiped_tick). */
static void answer_askers(struct replica *rep, uint32_t n, const struct raft_msg *asks)
{
	for (uint32_t i = 0; i < n; i++)
		answer(rep, &asks[i]);
}

static uint32_t askers(const struct replica_wiped *w, struct raft_msg *asks)
{
	for (uint32_t i = 0; i < w->nasked; i++)
		asks[i] = (struct raft_msg){ .type = RAFT_MSG_HEARTBEAT_RESP,
					     .from = w->asked_by[i].from,
					     .hint = WIPED_PROBE_ASK,
					     .context = w->asked_by[i].context };
	return w->nasked;
}

static void join_marker_unlinked(struct io_op *op, int res, unsigned flags)
{
	struct replica *rep = op->data;

	(void)flags;
	if (res < 0 && res != -ENOENT && res != -ECANCELED)
		log_warn("replica %u: removing %s: %s (harmless: it would wait to catch up "
			 "once more after a restart)", rep->id, rep->join_marker, strerror(-res));
	if (--rep->wiped->unlinking == 0)
		replica_wiped_free(rep); /* its part is done: no memory kept */
}

/* The marker is durable: the replica becomes the amnesiac identity
 * (node, K), empty, knowing the members the answers named. */
static void become_amnesiac(struct replica *rep)
{
	struct replica_wiped *w = rep->wiped;
	struct cluster_core *c = rep->core;
	uint64_t self = c->node->cfg.self_id;
	struct raft_hard_state hs = { 0, RAFT_NONE };
	struct raft_snapshot_meta snap = { 0 };
	struct raft_msg asks[RAFT_MAX_SERVERS];
	char err[256];
	bool named = false;
	int rv;

	for (uint32_t i = 0; i < w->probe.nothers; i++)
		snap.conf.servers[snap.conf.n++] = (struct raft_server){
			.id = wiped_probe_member(&w->probe, i), .role = RAFT_VOTER };
	for (uint32_t i = 0; i < w->probe.nothers; i++)
		named |= w->probe.heard[i] && (w->probe.flags[i] & WIPED_ANSWER_MEMBER);
	if (named)
		snap.conf.servers[snap.conf.n++] = (struct raft_server){
			.id = replica_ident(self, w->incarnation - 1), .role = RAFT_VOTER };
	raft_destroy(rep->raft);
	rep->raft = NULL;
	rep->incarnation = w->incarnation;
	rv = cluster_core_replica_raft(c, rep, err, sizeof err);
	if (rv == 0)
		rv = raft_restore(rep->raft, &hs, &snap, NULL, 0, NULL, 0);
	if (rv != 0)
		panic("replica %u: remaking its Raft as incarnation %" PRIu32 ": %s", rep->id,
		      w->incarnation, rv < 0 ? err : rkv_strerror(rv));
	free(rep->amnesia_why);
	rep->amnesia_why = strdup("started empty in a group with a history (a wiped data dir?)");
	rep->amnesiac = true;
	rep->undecided = false;
	rep->joining = false;
	w->probing = false;
	/* The joining marker is for an empty member of incarnation 0: it goes
	 * (a crash before leaves it; the amnesia marker rules at the next
	 * start, and after the rejoin it only costs one more catch-up). */
	w->unlinking = 2;
	replica_marker_unlink(rep, replica_file_name(rep->join_marker), &w->unlink_op, &w->sync_op,
			      join_marker_unlinked);
	log_warn("replica %u: node %" PRIu64 " was a member of this group before its data dir "
		 "was made (wiped, or down since the group began): it forgot its votes and what "
		 "it acknowledged, so it rejoins as incarnation %" PRIu32 " (amnesiac; "
		 "docs/DAMAGED-DATADIR.md, \"Amnesiac replicas\")", rep->id, self, w->incarnation);
	answer_askers(rep, askers(w, asks), asks);
}

static void marker_written(struct ring_file *f, int res)
{
	struct replica *rep = f->arg;
	struct replica_wiped *w = rep->wiped;

	w->marking = false;
	if (res < 0) {
		/* It keeps asking; the next tick tries again (a line each
		 * 10 s at most: every tick, on a full disk, of every asking
		 * replica of the core, was a flood). */
		log_every(LOG_WARN, 10000, "replica %u: writing %s: %s (it keeps asking and tries "
			  "again)", rep->id, f->name, strerror(-res));
		return;
	}
	become_amnesiac(rep);
}

static void mark_amnesiac(struct replica *rep)
{
	struct replica_wiped *w = rep->wiped;
	char name[64];
	int len;

	w->incarnation = wiped_probe_incarnation(&w->probe);
	if (w->incarnation > REPLICA_IDENT_INC_MAX) {
		log_every(LOG_ERROR, 10000, "replica %u: its group names incarnation %" PRIu32
			  " of this node, the last there is: it cannot rejoin (move the replica "
			  "away: ringkv shard move)", rep->id, w->incarnation - 1);
		return;
	}
	len = snprintf(w->text, sizeof w->text, "its data dir was new and its group has a "
		       "history (a wiped node)\nincarnation %" PRIu32 "\n", w->incarnation);
	replica_amnesia_marker_name(name, sizeof name, rep->id);
	ring_file_init(&w->marker, &rep->core->r->io, rep->core->node->data_dir_fd, name,
		       marker_written, rep);
	w->marking = true;
	ring_file_write(&w->marker, w->text, (size_t)len);
}

/* The members whose data dir showed us, before we settled, that it was
 * asking: by answering "asking too" (asking_dir), or by asking us
 * (asked_by: only a replica that asks sends an ask, and its dir id was
 * checked against the node's hello). Kept for the vouch (answer()); a few
 * words, only for replicas that settled fresh this way. */
static void record_vouch(struct replica *rep)
{
	const struct replica_wiped *w = rep->wiped;
	const struct wiped_probe *p = &w->probe;
	struct {
		uint64_t node, dir;
	} of[2 * RAFT_MAX_SERVERS];
	uint32_t k = 0;

	for (uint32_t i = 0; i < p->nothers; i++)
		if (p->heard[i] && p->asking_dir[i] != 0) {
			of[k].node = p->others[i];
			of[k++].dir = p->asking_dir[i];
		}
	for (uint32_t i = 0; i < w->nasked; i++) {
		uint64_t node = replica_ident_node(w->asked_by[i].from);
		uint32_t j = 0;

		while (j < k && !(of[j].node == node && of[j].dir == w->asked_by[i].context))
			j++;
		if (j == k) {
			of[k].node = node;
			of[k++].dir = w->asked_by[i].context;
		}
	}
	if (k == 0)
		return;
	free(rep->vouch);
	rep->vouch = malloc(sizeof *rep->vouch + k * sizeof rep->vouch->of[0]);
	if (!rep->vouch)
		return; /* no vouch: a late member comes back amnesiac (safe) */
	rep->vouch->n = k;
	for (uint32_t j = 0; j < k; j++) {
		rep->vouch->of[j].node = of[j].node;
		rep->vouch->of[j].dir = of[j].dir;
	}
}

/* A new group's member: the replica goes on as any empty member of one. */
static void fresh(struct replica *rep)
{
	struct replica_wiped *w = rep->wiped;
	struct cluster_core *c = rep->core;
	struct raft_msg vote = w->vote, asks[RAFT_MAX_SERVERS];
	bool has_vote = w->has_vote;
	uint64_t skip = w->skip;
	uint32_t nasks = askers(w, asks);

	record_vouch(rep);
	replica_wiped_free(rep); /* nothing of it in flight: no memory kept */
	rep->settled_here = true;
	/* Above every term a forgotten vote of this node may be pending in
	 * (wiped_probe.h, "The skip"), before it takes part: the marker,
	 * durable already, says the same for a restart. */
	if (skip > 0) {
		rep->term_floor = skip;
		replica_step(rep, &(struct raft_event){ .type = RAFT_EV_SKIP_TERM,
							.skip.term = skip });
		log_info("replica %u: a member answered it took part up to term %" PRIu64 ": it "
			 "starts at term %" PRIu64 ", no vote", rep->id, skip - 1, skip);
	}
	/* It asked and never took part: Raft's own vote rules, not the
	 * undecided guess at a wiped node (which asks now). With that guess
	 * groups were left with no leader: empty members took a first
	 * leader's uncommitted no-op, in a candidate's log, for a history,
	 * went joining, and no leader was left to catch them up
	 * (replica.c undecided_filter). */
	rep->asked_fresh = true;
	log_info("replica %u: no member knows a history of this group: it is a new group's "
		 "member%s", rep->id, rep->joining ? " (joining, as told)" : "");
	answer_askers(rep, nasks, asks);
	/* A new group's candidate that asked while we asked (its members
	 * settle about together): its request is taken now, as any member
	 * would take it, rather than lost for an election timeout. */
	if (has_vote && replica_amnesia_accept(rep, &vote) && replica_accept(rep, &vote))
		replica_step(rep, &(struct raft_event){ .type = RAFT_EV_RECEIVE, .msg = &vote });
	/* As cluster_core_start does for a new group: its first placed
	 * member campaigns at once, so first leaders spread as placed. */
	if (rep->joining || raft_term(rep->raft) != 0)
		return;
	if (cluster_map_first(&c->node->map, rep->id) == c->node->self_index)
		replica_step(rep, &(struct raft_event){ .type = RAFT_EV_CAMPAIGN });
	else
		rep->tick_hold = FIRST_ELECTION_HOLD * c->election_ticks;
}

/* The joining marker's rewrites from here on (this one, and replica.c's
 * undecided -> joining, which reuses the ring file). */
static void join_file_written(struct ring_file *f, int res)
{
	struct replica *rep = f->arg;

	if (res < 0)
		log_every(LOG_WARN, 10000, "replica %u: rewriting %s: %s%s", rep->id, f->name,
			  strerror(-res),
			  replica_wiped_probing(rep) ? " (it keeps asking and tries again)" : "");
	if (replica_wiped_probing(rep) && rep->wiped->marking) {
		rep->wiped->marking = false;
		/* Only once the marker says it: a replica that took part with
		 * its marker unsettled would ask again after a restart and
		 * answer HCOMPLETE having forgotten its pre-votes. */
		if (res >= 0)
			fresh(rep);
	}
}

/*
 * Settled fresh and still empty: the joining marker says so first
 * ("undecided settled", or "settled" when joining, then a line "term N"
 * when it skips to term N: fresh()), while the replica
 * still takes no part (so no other rewrite or removal of the marker can
 * race with this one), so that a restart before it holds anything does
 * not ask again. Such a replica never voted (a vote is durable before it
 * is sent) nor acknowledged anything (its log is empty), so its own dir,
 * not wiped (the marker is there), is all the proof it needs; asking again
 * could wait for ever on a member that never comes (a new cluster whose
 * third node is misconfigured). A failed write leaves it asking (the next
 * tick writes again): it takes part only once the marker is durable.
 */
static void settle(struct replica *rep, enum wiped_outcome o)
{
	struct replica_wiped *w = rep->wiped;
	struct cluster_core *c = rep->core;
	bool undecided = rep->undecided;
	uint64_t skip;
	int len;

	/* Precondition: probing. On return rep->wiped may be freed. */
	if (w->marking || o == WIPED_WAIT)
		return;
	if (o == WIPED_AMNESIAC) {
		mark_amnesiac(rep);
		return;
	}
	/* The skip is frozen here: the marker and fresh() name one term. */
	w->skip = skip = wiped_probe_skip_term(&w->probe);
	if (!undecided && !rep->joining) {
		fresh(rep); /* no marker of its own to rewrite */
		return;
	}
	if (rep->join_file_ready && !ring_file_idle(&rep->join_file))
		return; /* a write still in flight: the next tick tries again */
	len = replica_settle_marker(w->text, sizeof w->text, undecided, skip);
	ring_file_init(&rep->join_file, &c->r->io, c->node->data_dir_fd,
		       replica_file_name(rep->join_marker), join_file_written, rep);
	rep->join_file_ready = true;
	w->marking = true;
	ring_file_write(&rep->join_file, w->text, (size_t)len);
}

bool replica_wiped_filter(struct replica *rep, const struct raft_msg *m)
{
	struct replica_wiped *w = rep->wiped;

	if (wiped_probe_is_ask(m)) {
		answer(rep, m);
		return true;
	}
	if (!w || !w->probing)
		return wiped_probe_is_answer(m); /* a late answer: not Raft's */
	if (m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE ||
	    m->type == RAFT_MSG_TIMEOUT_NOW)
		rep->votes_withheld++;
	if (m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE) {
		/* A vote request has no entries, data or conf: no pointer into
		 * the receive buffer is kept. */
		w->vote = *m;
		w->vote.entries = NULL;
		w->vote.n_entries = 0;
		w->vote.data = NULL;
		w->vote.len = 0;
		w->vote.conf = NULL;
		w->has_vote = true;
	}
	settle(rep, wiped_probe_take(&w->probe, m));
	return true;
}

bool replica_wiped_tick(struct replica *rep)
{
	struct replica_wiped *w = rep->wiped;
	struct cluster_core *c = rep->core;
	uint32_t heard = 0, asking = 0, slow = ASK_SLOW_TICKS;
	bool slow_turn;

	if (!w || !w->probing)
		return false;
	if (w->marking)
		return true;
	/* Every tick at first (a new cluster's members start together), then
	 * every `slow` ticks: a member down for long is not asked thousands
	 * of times a second by every replica it shares. A member whose
	 * latest answer was that it asks too may settle (or get a history)
	 * later, so it is asked again, at the slow pace only (it answers;
	 * 10,000 waiting replicas must not make every tick a storm). The
	 * replicas of a core take turns (by group id) so that they do not
	 * all ask on the same tick. A member that answered settled is never
	 * asked again: its answer is final for what we need. */
	if (slow < c->election_ticks)
		slow = c->election_ticks;
	w->ticks++;
	slow_turn = (w->ticks + rep->id) % slow == 0;
	for (uint32_t i = 0; i < w->probe.nothers; i++) {
		struct raft_msg ask;

		heard += w->probe.heard[i];
		asking += w->probe.heard[i] && (w->probe.flags[i] & WIPED_ANSWER_ASKING);
		if (!wiped_probe_unsettled(&w->probe, i))
			continue;
		if (!slow_turn && (w->probe.heard[i] || w->ticks > ASK_FAST_TICKS))
			continue;
		wiped_probe_ask(&w->probe, raft_id(rep->raft), i, &ask);
		/* Not queued for a node that is down: a peer's queue keeps what
		 * it is sent until the node is back (or its bound refuses
		 * more), and 10,000 asking replicas filled the 64 MiB bound of
		 * a down node's in about 110 s. The next turn asks again. */
		if (!cluster_core_peer_connected(c, replica_ident_node(ask.to)))
			continue;
		cluster_core_queue_msg(c, rep->id, &ask);
		w->asks++;
	}
	if (c->r->now_us - w->began_us > 10000000u)
		log_every(LOG_WARN, 10000, "replica %u: still asking whether node %" PRIu64
			  " was a member: %" PRIu32 " of %" PRIu32 " other members answered, %"
			  PRIu32 " of them asking too; it takes no part until enough answer (a "
			  "majority of them settled, or all)", rep->id, c->node->cfg.self_id, heard,
			  w->probe.nothers, asking);
	/* A decision waiting on a failed marker write is tried again. */
	settle(rep, wiped_probe_decide(&w->probe));
	return true;
}
