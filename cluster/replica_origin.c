/*
 * A snapshot install's origin record at restart and after (issue #12/#14).
 *
 * A lagging replica installs a peer's snapshot at index S into its shard
 * (the RENAME_EXCHANGE in shard/shard_install.c) before Raft is told; Raft
 * then writes the group's LOG_RESET at S into the core log. Killed in
 * between, the replica restarts with its shard's flushed index F = S above
 * everything its log holds for the group, which is what a log cut below F
 * looks like, and core_log_check_holds refuses it. The install therefore
 * writes `shard-N/INSTALLED` {S, T} into the staged replica, so the one
 * exchange brings it in with the tables. At restart a record that matches F,
 * for a group whose log neither holds entry S with term T nor starts at or
 * after S, proves that F came from that snapshot; the restart then does what
 * the LOG_RESET would have done: Raft is restored at (S, T) with the
 * group's old entries dropped and its hard state kept, and the LOG_RESET is
 * staged before anything else of the group, messages held until it is
 * durable.
 *
 * Why this is safe. The snapshot holds committed state only (a leader's
 * flushed index), so its state at S is what every future leader holds. The
 * log does not hold entry S with term T, so by Log Matching none of the
 * group's entries above S is in the leader's log, and Raft's own rule for an
 * InstallSnapshot (§7: "discard the entire log") drops them all; those below
 * S are covered by the snapshot. The hard state (term, vote) is the log's
 * own, untouched. What is not accepted: a record that does not match F
 * exactly (F moved on, or the record belongs to another state), a group with
 * no record at all in the log (its hard state would be lost: damage), and a
 * log that starts after S. Those go through the usual checks and refusals.
 *
 * Once a LOG_RESET at or past S is durable the record proves nothing more
 * and is unlinked through the ring (a crash before that leaves it: the next
 * start finds the log holding S and removes it, blocking, at start-up).
 */
#include "cluster/replica_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

static bool log_holds(const struct restore_state *rs, const struct install_origin *o)
{
	uint64_t last = rs->n ? rs->first_index + rs->n - 1 : rs->start_index;

	if (!rs->found)
		return false;
	if (rs->start_index == o->index && rs->start_term == o->term)
		return true;
	return rs->n && rs->first_index <= o->index && o->index <= last &&
	       rs->entries[o->index - rs->first_index].term == o->term;
}

bool replica_origin_restore_point(struct replica *rep, uint64_t flushed,
				  struct install_origin *o)
{
	const struct restore_state *rs = &rep->restore;
	int rv = install_origin_read(rep->dir, o);
	char path[PATH_MAX + 32];

	snprintf(path, sizeof path, "%s/%s", rep->dir, INSTALL_ORIGIN_NAME);
	if (rv == -ENOENT)
		return false;
	if (rv != 0) {
		log_warn("replica %u: %s: %s: it proves nothing; left in place", rep->id,
			 path, rkv_strerror(rv));
		return false;
	}
	if (o->index != flushed || log_holds(rs, o) ||
	    (rs->found && rs->start_index > o->index)) {
		/* The LOG_RESET was durable (or the shard moved on): done. */
		if (unlink(path) != 0 && errno != ENOENT)
			log_warn("replica %u: %s: %s", rep->id, path, strerror(errno));
		return false;
	}
	rep->origin.index = o->index; /* removed once a LOG_RESET is durable */
	if (!rs->found) {
		log_warn("replica %u: %s says the shard came from a snapshot at index %" PRIu64
			 ", but the core log has no record of the group at all (no hard "
			 "state): not taken as a restart after an install", rep->id,
			 path, o->index);
		return false;
	}
	return true;
}

int replica_origin_complete(struct replica *rep, const struct install_origin *o)
{
	struct cluster_core *c = rep->core;
	const struct restore_state *rs = &rep->restore;
	int rv = core_log_reset(c->log, rep->id, o->index, o->term);

	if (rv != 0)
		return rv;
	rep->hs_staged = true;
	rep->hs_batch = cluster_core_batches(c) + 1;
	rep->origin.reset_batch = rep->hs_batch;
	log_warn("replica %u: restarted after a snapshot install (index %" PRIu64 ", term %"
		 PRIu64 ") whose log reset was not durable yet: the log's entries of the group "
		 "(%" PRIu64 "..%" PRIu64 ") are dropped as that reset drops them, its hard "
		 "state (term %" PRIu64 ") kept, and the reset is written now", rep->id,
		 o->index, o->term, rs->n ? rs->first_index : rs->start_index,
		 rs->n ? rs->first_index + rs->n - 1 : rs->start_index, rs->hs.term);
	return 0;
}

void replica_origin_installed(struct replica *rep, uint64_t index)
{
	rep->origin.index = index;
	rep->origin.reset_batch = 0;
}

void replica_origin_reset_staged(struct replica *rep, uint64_t index)
{
	if (rep->origin.index && index >= rep->origin.index)
		rep->origin.reset_batch = cluster_core_batches(rep->core) + 1;
}

static void unlinked(struct io_op *op, int res, unsigned flags)
{
	struct replica *rep = op->data;

	(void)flags;
	rep->origin.unlinking = false;
	if (res < 0 && res != -ENOENT && res != -ECANCELED)
		log_warn("replica %u: %s/%s: %s (it goes at the next start)", rep->id,
			 rep->dir, INSTALL_ORIGIN_NAME, strerror(-res));
}

void replica_origin_persisted(struct replica *rep, const struct core_log_persisted *p)
{
	struct io_uring_sqe *sqe;

	if (!rep->origin.reset_batch || p->status != 0 || !p->reset ||
	    p->batch < rep->origin.reset_batch || rep->origin.unlinking)
		return;
	rep->origin.index = 0;
	rep->origin.reset_batch = 0;
	rep->origin.op.done = unlinked;
	rep->origin.op.data = rep;
	sqe = io_ring_get_sqe(&rep->core->r->io);
	io_op_attach(sqe, &rep->origin.op);
	snprintf(rep->origin.name, sizeof rep->origin.name, "shard-%u/%s", rep->id,
		 INSTALL_ORIGIN_NAME);
	io_uring_prep_unlinkat(sqe, rep->core->node->data_dir_fd, rep->origin.name, 0);
	rep->origin.unlinking = true;
}

bool replica_origin_idle(const struct replica *rep)
{
	return !rep->origin.unlinking;
}
