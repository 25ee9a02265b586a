/*
 * A core's replicas at start-up (split from cluster_core.c): each shard
 * opened, its Raft group restored from the core log (hard state, entries,
 * the recorded configuration, markers of joining, amnesiac or installed
 * replicas), and the core log repaired first when it was damaged
 * (core_log_repair.c). Blocking I/O: this runs in the core's start
 * callback, before its loop.
 */
#include "cluster/replica_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/wiped_probe.h"
#include "core/durable_file.h"
#include "core/log.h"
#include "raft/log.h"

void cluster_core_log_persisted(void *arg, const struct core_log_persisted *p)
{
	struct cluster_core *c = arg;

	if (p->group >= c->node->map.shards || !c->by_shard[p->group])
		return;
	replica_persisted(c->by_shard[p->group], p);
}

int cluster_core_log_restore(void *arg, const struct core_log_group_state *st)
{
	struct cluster_core *c = arg;
	struct replica *rep;
	struct restore_state *rs;
	size_t bytes = 0, off = 0;

	if (st->group >= c->node->map.shards || !c->by_shard[st->group])
		return 0; /* removed after open */
	rep = c->by_shard[st->group];
	rs = &rep->restore;
	rs->found = true;
	rs->hs = st->hard_state;
	rs->start_index = st->start_index;
	rs->start_term = st->start_term;
	rs->first_index = st->first_index;
	rs->n = st->n_entries;
	if (st->n_entries == 0)
		return 0;
	for (size_t i = 0; i < st->n_entries; i++)
		bytes += st->entries[i].len;
	rs->entries = malloc(st->n_entries * sizeof *rs->entries);
	rs->blob = malloc(bytes ? bytes : 1);
	if (!rs->entries || !rs->blob)
		return -ENOMEM;
	for (size_t i = 0; i < st->n_entries; i++) {
		rs->entries[i] = st->entries[i];
		rs->entries[i].data = rs->blob + off;
		if (st->entries[i].len)
			memcpy(rs->blob + off, st->entries[i].data, st->entries[i].len);
		off += st->entries[i].len;
	}
	return 0;
}

/* A replica's marker: "undecided" or empty (joining), either followed by
 * " settled" / "settled" once it asked its group and found it new
 * (replica_wiped.c), then a line "term N" if it skipped to term N then
 * (*floor; 0 without). Start-up. */
static bool marker_says(const char *path, bool *settled, uint64_t *floor)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	unsigned long long term;
	ssize_t n, head;
	int used = 0;

	*settled = false;
	*floor = 0;
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	head = (ssize_t)strcspn(buf, "\n");
	/* "term N" of a digit or more (a term Raft can reach), nothing after
	 * but the newline, the file shorter than the buffer: else the marker
	 * is taken as unsettled, which only asks again. */
	if (n == (ssize_t)sizeof buf - 1)
		return false;
	if (head < n && (sscanf(buf + head, "\nterm %llu\n%n", &term, &used) != 1 ||
			 head + used != n || buf[head + 6] < '0' || buf[head + 6] > '9' ||
			 term == 0 || term > WIPED_TERM_MAX))
		return (head == 9 || head == 17) && memcmp(buf, "undecided", 9) == 0;
	*settled = (head == 7 && memcmp(buf, "settled", 7) == 0) ||
		   (head == 17 && memcmp(buf, "undecided settled", 17) == 0);
	if (*settled && head < n)
		*floor = term;
	return head >= 9 && memcmp(buf, "undecided", 9) == 0 && (head == 9 || *settled);
}

/* Feeds raft_restore from what the log and the shard hold (see
 * docs/cluster/replica.md, "Restart"). */
int cluster_core_restore_group(struct cluster_core *c, struct replica *rep, char *err, size_t errlen)
{
	struct restore_state *rs = &rep->restore;
	uint64_t flushed = shard_flushed_index(rep->shard);
	struct raft_snapshot_meta snap = { 0 };
	struct raft_hard_state hs = { 0, RAFT_NONE };
	uint64_t ids[CLUSTER_MAP_MAX_NODES];
	unsigned r = cluster_map_replica_ids(&c->node->map, rep->id, ids);
	const struct raft_entry *entries = NULL;
	char holder[48], path[PATH_MAX + 32];
	struct raft_conf conf;
	uint64_t conf_index;
	struct install_origin origin;
	bool from_install, settled = false, asks;
	uint64_t floor = 0;
	size_t n = 0;
	int rv;

	/* Segments removed or cut below the shard's flushed index (or the
	 * group gone from the log): refused, never restored empty. Not for a
	 * replica whose joining marker is there: it started empty (a new
	 * group, a wiped node, a moved replica) and may have installed a
	 * snapshot whose LOG_RESET was not durable yet when the node died, so
	 * its tables are legitimately ahead of its log; it restarts joining
	 * (no vote until caught up from a leader), from min(F, last index). */
	snprintf(holder, sizeof holder, "shard-%u/MANIFEST", rep->id);
	/* Killed between a snapshot install's exchange and its LOG_RESET:
	 * the shard's INSTALLED record says F came from that snapshot; the
	 * reset is completed below (cluster/replica_origin.c). */
	from_install = replica_origin_restore_point(rep, flushed, &origin);
	if (!from_install && !rep->amnesiac && access(rep->join_marker, F_OK) != 0) {
		rv = core_log_check_holds(c->log, rep->id, flushed, holder, err, errlen);
		if (rv != 0)
			return rv;
	}
	/* The group's members: the last configuration it applied, as
	 * recorded (replica_conf.c); without a record, the map's founding
	 * placement, or none for a replica placed here by a move (it learns
	 * its group from the leader's snapshot). Configuration entries in the
	 * log after the restore point override either (raft_conf_reload). */
	if (!rep->hosted_added) {
		for (unsigned i = 0; i < r; i++)
			snap.conf.servers[i] = (struct raft_server){ .id = ids[i],
								     .role = RAFT_VOTER };
		snap.conf.n = r;
	}
	replica_conf_path(rep, path, sizeof path);
	rv = replica_conf_load(path, &conf_index, &conf, err, errlen);
	if (rv < 0)
		return rv;
	if (rv == 0) {
		snap.conf = conf;
		rep->conf_rec.want_index = rep->conf_rec.durable_index = conf_index;
	}
	if (c->log_repaired) {
		/* Rebuilt from the peers (core_log_repair.c): the hard state
		 * is the log's, exact; no entry is kept; it joins. */
		if (rs->found)
			hs = rs->hs;
	} else if (from_install) {
		/* What the LOG_RESET at the snapshot does: no entry kept. */
		hs = rs->hs;
		if (hs.term < origin.term)
			hs = (struct raft_hard_state){ origin.term, RAFT_NONE };
		snap.index = origin.index;
		snap.term = origin.term;
	} else if (rs->found) {
		uint64_t last = rs->n ? rs->first_index + rs->n - 1 : rs->start_index;

		hs = rs->hs;
		/* Snapshot point: the shard's flushed index F when the log
		 * knows its term, else the highest index <= F it knows (the
		 * entries in between come again from the leader and the shard
		 * skips them). */
		snap.index = rs->start_index;
		snap.term = rs->start_term;
		if (rs->n) {
			uint64_t point = flushed < last ? flushed : last;

			if (point >= rs->first_index) {
				snap.index = point;
				snap.term = rs->entries[point - rs->first_index].term;
			} else if (rs->first_index != rs->start_index + 1) {
				/* Released entries go only up to flushed - 1,
				 * so this means lost entries. */
				snprintf(err, errlen, "shard %u: flushed index %" PRIu64 " but "
					 "the log holds entries from %" PRIu64 " only", rep->id,
					 flushed, rs->first_index);
				return RKV_ECORRUPT;
			}
			if (snap.index < last) {
				entries = rs->entries + (snap.index + 1 - rs->first_index);
				n = (size_t)(last - snap.index);
			}
		}
		/* The shard's tables must reach the log's start: entries at or
		 * below it are in no file of this node any more. A shard whose
		 * tables were lost (or set aside by `ringkv repair`) would
		 * otherwise apply only the log's suffix and serve a state that
		 * never existed. It needs a snapshot from a peer (not built
		 * yet), so refuse. */
		if (flushed < snap.index) {
			snprintf(err, errlen, "shard %u: its tables hold the state up to index %" PRIu64
				 " but its Raft log starts after index %" PRIu64 ": the entries in "
				 "between are in no file of this node (tables lost or set aside?); "
				 "it needs a snapshot from a peer, which is not built yet",
				 rep->id, flushed, snap.index);
			return RKV_ECORRUPT;
		}
	}
	/* Nothing at all (a new group, or a wiped node's), or a marker left
	 * by such a start that was not settled: see join_check and
	 * undecided_filter in replica.c. The marker is durable before
	 * anything of the group is; it says "undecided" or is empty
	 * (joining). */
	/* Empty with no record of its own (not placed by a move): unless it
	 * settled at an earlier start, it asks the group whether this node
	 * was a member before it takes part (a wiped data dir;
	 * replica_wiped.c). */
	asks = r > 1 && !rep->hosted_added && !rep->amnesiac && !from_install &&
	       !c->log_repaired && !rs->found && flushed == 0;
	/* A replica placed here by a move starts empty in a group with a
	 * history: joining, whatever the flags (it must not vote before it
	 * holds what the group committed). */
	if ((r > 1 || rep->hosted_added) && !rep->amnesiac &&
	    ((!rs->found && flushed == 0) || access(rep->join_marker, F_OK) == 0)) {
		const char *base = strrchr(rep->join_marker, '/') + 1;
		bool marked = access(rep->join_marker, F_OK) == 0;
		bool existing = c->node->cfg.join_existing || rep->hosted_added;
		bool undecided = marked ? marker_says(rep->join_marker, &settled, &floor) : !existing;

		if (undecided && !existing) {
			rep->undecided = true;
			/* Asked its group at an earlier start and found it new
			 * (replica_wiped.c): Raft's own vote rules. */
			rep->asked_fresh = settled;
			if (settled)
				log_info("replica %u: started empty, and asked its group at an "
					 "earlier start: a new group's member, it votes by Raft's "
					 "rules until its first leader is heard", rep->id);
			else if (asks)
				log_info("replica %u: started empty: a new group, or a wiped "
					 "node's; it asks its group which before it votes", rep->id);
			else
				log_info("replica %u: restarted undecided (not yet settled by a "
					 "leader): no vote for a candidate with a log until a new "
					 "group's first leader is heard", rep->id);
		} else {
			rep->joining = true;
			log_info("replica %u: joining (started empty, or not caught up before a "
				 "restart): no vote until caught up from a leader", rep->id);
		}
		/* It skipped to term `floor` when it settled (undecided or
		 * joining): never below it again, though its hard state may
		 * not have held it yet (replica_wiped.c fresh()). */
		rep->term_floor = floor;
		if (hs.term < floor)
			hs = (struct raft_hard_state){ floor, RAFT_NONE };
		if (!marked || (rep->joining && undecided)) {
			char text[48] = "";
			int len = 0;

			/* Joining now (told `existing`) after it settled: the
			 * marker keeps saying so, with its term (else a later
			 * restart would lose the floor and ask again). */
			if (rep->joining && settled)
				len = replica_settle_marker(text, sizeof text, false, floor);
			rv = rep->undecided ? durable_file_replace(c->node->data_dir, base,
								   "undecided", 9)
					    : durable_file_replace(c->node->data_dir, base, text,
								   (size_t)len);
			if (rv) {
				snprintf(err, errlen, "%s: %s", rep->join_marker, strerror(-rv));
				return rv;
			}
		}
	}
	rv = raft_restore(rep->raft, &hs, &snap, NULL, 0, entries, n);
	if (rv != 0) {
		snprintf(err, errlen, "shard %u: raft_restore: %s", rep->id, rkv_strerror(rv));
		return rv;
	}
	if (asks && !settled && (rv = replica_wiped_begin(rep, &snap.conf, err, errlen)))
		return rv;
	if (c->log_repaired) {
		rv = core_log_reset(c->log, rep->id, 0, 0);
		if (rv != 0) {
			snprintf(err, errlen, "shard %u: dropping its log after a repair: %s",
				 rep->id, rkv_strerror(rv));
			return rv;
		}
		rep->hs_staged = true; /* messages wait for the reset */
		rep->hs_batch = cluster_core_batches(c) + 1;
		rep->log_repairing = true;
	}
	if (from_install && (rv = replica_origin_complete(rep, &origin)) != 0) {
		snprintf(err, errlen, "shard %u: the log reset after a snapshot install: %s",
			 rep->id, rkv_strerror(rv));
		return rv;
	}
	/* The log agrees with the manifest: a crash's unfinished tables go. */
	shard_drop_unfinished(rep->shard);
	rep->apply_next = snap.index + 1;
	rep->apply_to = snap.index;
	rep->compacted = snap.index;
	free(rs->entries);
	free(rs->blob);
	rs->entries = NULL;
	rs->blob = NULL;
	/* One entry short of the snapshot point: a restart then always finds
	 * the entry at the flushed index, hence its term. */
	if (snap.index > 1)
		core_log_release(c->log, rep->id, snap.index - 1);
	return 0;
}

struct replica *cluster_core_replica_alloc(struct cluster_core *c, uint32_t shard)
{
	struct cluster_node *n = c->node;
	struct replica *rep = calloc(1, sizeof *rep);
	struct shard_config sc = n->cfg.shard;
	int len = snprintf(NULL, 0, "%s/shard-%u", n->data_dir, shard);

	/* Exact sizes: a node holds thousands of replicas. */
	if (!rep || !(rep->dir = malloc(2 * ((size_t)len + 1) + strlen(".joining")))) {
		free(rep);
		return NULL;
	}
	rep->core = c;
	rep->id = shard;
	peer_msg_buf_init(&rep->held);
	snprintf(rep->dir, (size_t)len + 1, "%s/shard-%u", n->data_dir, shard);
	rep->join_marker = rep->dir + len + 1;
	memcpy(rep->join_marker, rep->dir, (size_t)len);
	memcpy(rep->join_marker + len, ".joining", sizeof ".joining");
	sc.id = shard;
	sc.dir = rep->dir;
	sc.cache = c->cache;
	sc.mem_budget = &c->mem_budget;
	sc.replicated = true;
	sc.on_flushed = replica_flushed;
	sc.on_apply_ready = replica_apply_ready;
	sc.hook_arg = rep;
	rep->shard_cfg = sc;
	rep->shard_cfg.dir = rep->dir;
	rep->recv.fd = -1;
	replica_conf_init(rep);
	return rep;
}

int cluster_core_replica_raft(struct cluster_core *c, struct replica *rep, char *err,
			      size_t errlen)
{
	struct raft_config rc;
	int rv;

	raft_config_default(&rc);
	rc.id = replica_ident(c->node->cfg.self_id, rep->incarnation);
	rc.rng = &c->rng;
	rc.election_ticks = c->election_ticks;
	rc.heartbeat_ticks = 1;
	rc.pre_vote = true;
	rc.check_quorum = true;
	rv = raft_create(&rep->raft, &rc);
	if (rv)
		snprintf(err, errlen, "shard %u: raft_create: %s", rep->id, rkv_strerror(rv));
	return rv;
}

static int open_replica(struct cluster_core *c, uint32_t shard, char *err, size_t errlen)
{
	struct replica *rep = cluster_core_replica_alloc(c, shard);
	int rv;

	if (!rep)
		return -ENOMEM;
	c->by_shard[shard] = rep;
	c->reps[c->nreps++] = rep;
	replica_awake(rep);
	rv = shard_snapshot_recover(rep->dir, err, errlen);
	if (rv)
		return rv;
	rv = shard_open(&rep->shard, &rep->shard_cfg, &c->r->io, err, errlen);
	if (rv)
		return rv;
	/* Its identity (an amnesiac replica rejoins as a new incarnation)
	 * before its Raft is made. */
	rv = replica_amnesia_load(rep, err, errlen);
	if (rv)
		return rv;
	return cluster_core_replica_raft(c, rep, err, errlen);
}

/* Every replica this core holds, opened (shards, Raft groups). */
int cluster_core_open_replicas(struct cluster_core *c, char *err, size_t errlen)
{
	struct cluster_node *n = c->node;

	for (uint32_t s = 0; s < n->map.shards; s++) {
		const struct cluster_hosting_entry *e = cluster_hosting_find(n->hosting, s);
		int rv;

		if (atomic_load(&n->core_of[s]) != (int)c->index)
			continue;
		rv = open_replica(c, s, err, errlen);
		if (rv)
			return rv;
		c->by_shard[s]->hosted_added = e && e->core >= 0;
	}
	return 0;
}

/*
 * The core log refused to open (RKV_ECORRUPT, reason in err): repaired
 * from the peers where core_log_repair.c can prove it safe, else the
 * refusal stands with its message. A trial open reads what will be kept
 * before anything is moved.
 */
int cluster_core_log_repair(struct cluster_core *c, struct core_log_config *lc, char *err,
		      size_t errlen)
{
	char why[512], err2[512];
	struct core_log *trial = NULL;
	uint64_t from;
	int rv = core_log_repair_plan(c, &from, why, sizeof why);
	bool amnesia = rv == CORE_LOG_REPAIR_AMNESIA;

	if (rv && !amnesia) {
		log_error("core %u: the core log is not repaired automatically: %s", c->index, why);
		return rv == -ENOMEM ? rv : RKV_ECORRUPT;
	}
	/* Amnesia keeps nothing of the log: no trial open. */
	lc->salvage_from = amnesia ? 0 : from;
	lc->restore = NULL;
	rv = amnesia ? 0 : core_log_open(&trial, lc, &c->r->io, err2, sizeof err2);
	if (rv) {
		log_error("core %u: the core log is not repaired automatically: %s, and reading "
			  "it from segment %" PRIu64 " on fails too: %s", c->index, why, from, err2);
		return RKV_ECORRUPT;
	}
	if (trial)
		core_log_close(trial);
	for (size_t i = 0; i < c->nreps; i++) {
		shard_close(c->reps[i]->shard);
		c->by_shard[c->reps[i]->id] = NULL;
		replica_free(c->reps[i]);
	}
	c->nreps = 0;
	c->nawake = 0; /* the freed ones: cluster_core_open_replicas lists the new ones */
	rv = core_log_repair_execute(c, from, amnesia, why, err, errlen);
	if (rv == 0)
		rv = cluster_core_open_replicas(c, err, errlen);
	if (rv)
		return rv;
	/* Amnesiac replicas restore empty from their markers (cluster_core_restore_group). */
	c->log_repaired = !amnesia;
	lc->restore = cluster_core_log_restore;
	return core_log_open(&c->log, lc, &c->r->io, err, errlen);
}

