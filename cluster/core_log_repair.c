/*
 * Repairing a damaged core log from the peers, at start-up (issue #14).
 *
 * A core log whose recovery refuses it (a segment cut or zeroed, a record
 * that fails its checksum with data after it, a SEAL or durable-end mark
 * that refuses a segment, a segment missing) used to stop the node: the
 * operator moved the data dir aside and the node rejoined empty. Here the
 * node does that itself, for the one core, when the damage leaves the hard
 * state (term, vote) of every group provably intact:
 *
 *   - every segment begins with a checkpoint of every group's hard state
 *     and log start as the records before it say (the switch to a new
 *     segment waits until every batch of the old one is durable), and the
 *     records after it update them. So when the damage lies in segments
 *     older than some whole segment S that has records (hence its
 *     checkpoint), reading from S on gives every group's hard state as it
 *     was at the crash, exactly;
 *   - when the newest segment itself is damaged, a hard state written
 *     after its checkpoint may be lost (a vote cast, then forgotten, could
 *     be cast again in the same term). So for a log whose segment after
 *     the damage has no records. Then (CORE_LOG_REPAIR_AMNESIA) every
 *     segment goes to quarantine as below, the log starts empty, and every
 *     replica of the core is marked amnesiac (replica_amnesia.c): it takes
 *     no part in its group until the group replaces it.
 *
 * What was lost are entries, possibly acknowledged ones. Every group of the
 * core is rebuilt (which groups had records in the unreadable part cannot
 * be told, and correctness comes first): its shard dir is moved whole into
 * DATA/quarantine/, its joining marker is written, its log entries are
 * dropped by a LOG_RESET to index 0, and its hard state is kept. It then
 * restarts as a wiped replica with --initial-cluster-state existing does
 * (replica.c, "a replica that started empty"): it never campaigns and
 * grants no vote until it caught up from a leader by a snapshot and an
 * entry of the leader's term applied; since its term and vote are the
 * ones it had, it never votes twice in a term, and a stale leader of an
 * older term cannot count it (its term refuses that leader's APPENDs).
 * The damaged segments, and the older ones (unreadable past the damage),
 * are moved into DATA/quarantine/core-<i>-<time>-damaged-log/; nothing is
 * deleted. The open then reads from S on (core_log_config.salvage_from),
 * and its first flush records S as the oldest segment kept.
 *
 * Not repaired here (the refusal stays, with today's message): a one-node
 * cluster, a group with a single replica (no peer to repair from), the
 * node started with --auto-repair off. A group
 * whose every replica lost its log gets no leader (no replica votes):
 * it waits, logged, and the operator acts.
 *
 * Crash safety: markers first (durable), then the shard dirs, then the
 * segments, each rename followed by its directories' fsyncs. A crash part
 * way leaves a log whose oldest segments are gone: the next start finds
 * that (the RETAIN rule), no damaged segment among those left, salvages
 * from the oldest present, and repeats the (idempotent) steps. For an
 * amnesiac core the newest segment goes last: until it is gone the next
 * start finds it damaged and repeats the steps; once every segment is gone
 * the markers (durable first) keep the replicas amnesiac.
 */
#include "cluster/replica_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/durable_file.h"
#include "core/log.h"
#include "shard/shard_backup.h"
#include "shard/core_log_format.h"

/* A segment is read whole to be examined; larger than this is unreadable. */
#define SEGMENT_READ_MAX ((size_t)1 << 40)

/* One segment's verdict, as core_log_open would give it alone and
 * against the segment before it (server/repair.c applies the same rules
 * offline). */
struct seg_verdict {
	uint64_t seq;
	bool read;           /* parsed up to `end` */
	bool torn;           /* a torn tail at `end` */
	bool bad;
	bool records;
	size_t end;
	char why[200];
};

static void examine(const char *dir, uint64_t seq, bool last, struct seg_verdict *prev,
		    struct seg_verdict *v)
{
	struct core_log_segment_facts f;
	char name[64], path[PATH_MAX + 64];
	uint8_t *buf = NULL;
	size_t len = 0;

	memset(v, 0, sizeof *v);
	v->seq = seq;
	core_log_segment_name(name, sizeof name, seq);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (shard_backup_read_file(path, SEGMENT_READ_MAX, &buf, &len) != 0) {
		v->bad = true;
		snprintf(v->why, sizeof v->why, "%s: unreadable", name);
		return;
	}
	core_log_segment_examine(buf, len, seq, &f);
	free(buf);
	v->records = f.records > 0;
	if (f.header != 0) {
		v->bad = true;
		snprintf(v->why, sizeof v->why, "%s: no valid segment header", name);
		return;
	}
	if (f.res == CORE_LOG_SCAN_CORRUPT || (f.res == CORE_LOG_SCAN_TORN && f.cut)) {
		v->bad = true;
		snprintf(v->why, sizeof v->why, "%s: unreadable from offset %zu: %s", name, f.end,
			 f.res == CORE_LOG_SCAN_CORRUPT && f.reason ? f.reason
								 : "cut inside a record");
		return;
	}
	v->read = true;
	v->end = f.end;
	v->torn = f.res == CORE_LOG_SCAN_TORN;
	if (prev && prev->read && prev->torn && f.records > 0 && !prev->bad) {
		prev->bad = true;
		snprintf(prev->why, sizeof prev->why, "offset %zu: a bad record followed by "
			 "valid data in the next segment", prev->end);
	}
	if (f.sealed && prev && prev->read && prev->seq == f.seal_seq &&
	    prev->end != f.seal_end && !prev->bad) {
		prev->bad = true;
		snprintf(prev->why, sizeof prev->why, "its records end at offset %zu, but the "
			 "next segment's SEAL says %" PRIu64 " (cut or zeroed)", prev->end,
			 f.seal_end);
	}
	if (!f.marked && (f.records > 0 || !last)) {
		v->bad = true;
		snprintf(v->why, sizeof v->why, "%s: no valid durable-end mark", name);
	} else if (f.marked && f.mark.end > f.end) {
		v->bad = true;
		snprintf(v->why, sizeof v->why, "%s: records end at offset %zu below its "
			 "durable-end mark %" PRIu64 " (cut or zeroed)", name, f.end, f.mark.end);
	}
}

/* Whether every replica of this core has a peer to repair from. */
static bool repairable_here(struct cluster_core *c, char *why, size_t whylen)
{
	const struct cluster_node *n = c->node;
	uint64_t ids[CLUSTER_MAP_MAX_NODES];

	if (!n->cfg.auto_repair) {
		snprintf(why, whylen, "automatic repair is off (--auto-repair off)");
		return false;
	}
	if (n->map.node_count < 2) {
		snprintf(why, whylen, "a one-node cluster has no peer to repair from");
		return false;
	}
	for (uint32_t s = 0; s < n->map.shards; s++) {
		if (atomic_load(&n->core_of[s]) != (int)c->index)
			continue;
		if (cluster_map_replica_ids(&n->map, s, ids) < 2) {
			snprintf(why, whylen, "shard %u has a single replica: no peer to repair "
				 "it from", s);
			return false;
		}
	}
	return true;
}

int core_log_repair_plan(struct cluster_core *c, uint64_t *salvage_from, char *why,
			 size_t whylen)
{
	struct seg_verdict *v = NULL;
	uint64_t *seqs = NULL, bad = 0;
	const char *bad_why = NULL;
	size_t n = 0;
	int rv;

	*salvage_from = 0;
	if (!repairable_here(c, why, whylen))
		return RKV_ECORRUPT;
	rv = core_log_segments_list(c->log_dir, &seqs, &n);
	if (rv != 0 || n == 0) {
		snprintf(why, whylen, "%s: no segment to repair from", c->log_dir);
		free(seqs);
		return RKV_ECORRUPT;
	}
	v = calloc(n, sizeof *v);
	if (!v) {
		free(seqs);
		return -ENOMEM;
	}
	for (size_t k = 0; k < n; k++) {
		bool gap = k > 0 && seqs[k] != seqs[k - 1] + 1;

		examine(c->log_dir, seqs[k], k == n - 1, k > 0 && !gap ? &v[k - 1] : NULL, &v[k]);
		if (gap && seqs[k] - 1 > bad) {
			bad = seqs[k] - 1;
			bad_why = "segment missing";
		}
	}
	for (size_t k = 0; k < n; k++)
		if (v[k].bad && v[k].seq >= bad) {
			bad = v[k].seq;
			bad_why = v[k].why;
		}
	rv = RKV_ECORRUPT;
	if (bad >= seqs[n - 1]) {
		/* A hard state written after its checkpoint may be lost:
		 * every replica of the core becomes amnesiac. */
		snprintf(why, whylen, "%s/%s", c->log_dir, bad_why);
		*salvage_from = seqs[n - 1] + 1;
		rv = CORE_LOG_REPAIR_AMNESIA;
		goto out;
	}
	/* The first segment kept: after the damage, or the oldest present
	 * (a missing prefix: a repair interrupted, or segments removed). */
	for (size_t k = 0; k < n; k++) {
		if (seqs[k] <= bad)
			continue;
		if (!v[k].records) {
			/* No checkpoint of the groups' hard state after the
			 * damage: as for a damaged newest segment. */
			snprintf(why, whylen, "%s/%s; the segment after it has no records, so no "
				 "checkpoint of the groups' hard state", c->log_dir, bad_why);
			*salvage_from = seqs[n - 1] + 1;
			rv = CORE_LOG_REPAIR_AMNESIA;
			goto out;
		}
		*salvage_from = seqs[k];
		break;
	}
	if (bad)
		snprintf(why, whylen, "damaged up to segment %" PRIu64 " (%s)", bad, bad_why);
	else
		snprintf(why, whylen, "segments below %" PRIu64 " are missing", *salvage_from);
	rv = 0;
out:
	free(v);
	free(seqs);
	return rv;
}

static int move_into(const char *from, const char *to_dir, const char *to_name, char *err,
		     size_t errlen)
{
	char to[2 * PATH_MAX + 256];

	snprintf(to, sizeof to, "%s/%s", to_dir, to_name);
	if (rename(from, to) != 0) {
		int rv = -errno;

		snprintf(err, errlen, "%s -> %s: %s", from, to, strerror(-rv));
		return rv;
	}
	return 0;
}

/* True when anything this core's repair would name with `stamp` exists. */
static bool stamp_taken(const struct cluster_core *c, const char *qroot, const char *stamp)
{
	const struct cluster_node *n = c->node;
	char path[PATH_MAX + 160];

	snprintf(path, sizeof path, "%s/core-%u-%s-damaged-log", qroot, c->index, stamp);
	if (access(path, F_OK) == 0)
		return true;
	for (uint32_t s = 0; s < n->map.shards; s++) {
		if (atomic_load(&n->core_of[s]) != (int)c->index)
			continue;
		snprintf(path, sizeof path, "%s/shard-%u-%s-damaged-log", qroot, s, stamp);
		if (access(path, F_OK) == 0)
			return true;
	}
	return false;
}

/* A second repair within the same second (damaged again right after a
 * restart) must not collide with the first's names: -2, -3, ... */
static void unique_stamp(const struct cluster_core *c, const char *qroot, char *stamp,
			 size_t len)
{
	char base[20]; /* YYYYmmddTHHMMSSZ */

	snprintf(base, sizeof base, "%.19s", stamp);
	for (unsigned k = 2; k < 1000 && stamp_taken(c, qroot, stamp); k++)
		snprintf(stamp, len, "%s-%u", base, k);
}

int core_log_repair_execute(struct cluster_core *c, uint64_t salvage_from, bool amnesia,
			    const char *why, char *err, size_t errlen)
{
	const struct cluster_node *n = c->node;
	char stamp[32], qroot[PATH_MAX], qcore[PATH_MAX + 128], name[128], path[PATH_MAX + 256];
	uint64_t *seqs = NULL;
	size_t nseg = 0, moved = 0, shards = 0;
	time_t now = time(NULL);
	struct tm tm;
	int rv;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
	snprintf(qroot, sizeof qroot, "%s/quarantine", n->data_dir);
	if (mkdir(qroot, 0755) != 0 && errno != EEXIST) {
		rv = -errno;
		snprintf(err, errlen, "%s: %s", qroot, strerror(-rv));
		return rv;
	}
	unique_stamp(c, qroot, stamp, sizeof stamp);
	/* 1. Every replica of the core joins: no vote until caught up.
	 * Amnesiac ones take no part at all until replaced: not "joining",
	 * whose votes come back once caught up, which a lost vote forbids. */
	for (uint32_t s = 0; s < n->map.shards; s++) {
		if (atomic_load(&n->core_of[s]) != (int)c->index)
			continue;
		if (amnesia) {
			/* Its next identity: after the one its group records
			 * AND after one an earlier amnesia already took (its
			 * record may lag: a conf entry counts in Raft once
			 * appended, the record is written once applied), so
			 * no identity that may have voted comes back. */
			uint32_t recorded, marked;

			snprintf(path, sizeof path, "%s/shard-%u.conf", n->data_dir, s);
			rv = replica_amnesia_recorded_incarnation(path, n->cfg.self_id, &recorded,
								  err, errlen);
			if (rv == 0)
				rv = replica_amnesia_marked_incarnation(n->data_dir, s, &marked,
									err, errlen);
			if (rv)
				return rv;
			rv = replica_amnesia_mark(n->data_dir, s, why,
						  (marked > recorded ? marked : recorded) + 1);
			if (rv) {
				snprintf(err, errlen, "%s/shard-%u.amnesiac: %s", n->data_dir, s,
					 strerror(-rv));
				return rv;
			}
			continue;
		}
		snprintf(name, sizeof name, "shard-%u.joining", s);
		rv = durable_file_replace(n->data_dir, name, "", 0);
		if (rv) {
			snprintf(err, errlen, "%s/%s: %s", n->data_dir, name, strerror(-rv));
			return rv;
		}
	}
	/* 2. Their shard dirs into quarantine, fresh ones in their place. */
	for (uint32_t s = 0; s < n->map.shards; s++) {
		struct stat st;

		if (atomic_load(&n->core_of[s]) != (int)c->index)
			continue;
		snprintf(path, sizeof path, "%s/shard-%u", n->data_dir, s);
		if (stat(path, &st) == 0) {
			snprintf(name, sizeof name, "shard-%u-%s-damaged-log", s, stamp);
			rv = move_into(path, qroot, name, err, errlen);
			if (rv)
				return rv;
			log_warn("core %u: shard-%u moved to %s/%s (its core log is damaged: %s); it "
				 "is rebuilt from its peers", c->index, s, qroot, name, why);
			shards++;
		}
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			rv = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(-rv));
			return rv;
		}
	}
	rv = durable_dir_sync(qroot);
	if (rv == 0)
		rv = durable_dir_sync(n->data_dir);
	if (rv) {
		snprintf(err, errlen, "%s: fsync: %s", n->data_dir, strerror(-rv));
		return rv;
	}
	/* 3. The damaged segments and the older ones. */
	rv = core_log_segments_list(c->log_dir, &seqs, &nseg);
	if (rv) {
		snprintf(err, errlen, "%s: listing: %s", c->log_dir, strerror(-rv));
		return rv;
	}
	snprintf(qcore, sizeof qcore, "%s/core-%u-%s-damaged-log", qroot, c->index, stamp);
	for (size_t k = 0; k < nseg && seqs[k] < salvage_from; k++) {
		if (moved == 0 && mkdir(qcore, 0755) != 0 && errno != EEXIST) {
			rv = -errno;
			snprintf(err, errlen, "%s: %s", qcore, strerror(-rv));
			goto out;
		}
		core_log_segment_name(name, sizeof name, seqs[k]);
		snprintf(path, sizeof path, "%s/%s", c->log_dir, name);
		rv = move_into(path, qcore, name, err, errlen);
		if (rv)
			goto out;
		moved++;
	}
	if (moved) {
		rv = durable_dir_sync(qcore);
		if (rv == 0)
			rv = durable_dir_sync(qroot);
		if (rv == 0)
			rv = durable_dir_sync(c->log_dir);
		if (rv) {
			snprintf(err, errlen, "%s: fsync: %s", c->log_dir, strerror(-rv));
			goto out;
		}
	}
	if (amnesia)
		log_error("core %u: core log %s damaged in its newest part (%s): a vote or "
			  "acknowledged entries may be lost, so every replica of the core is "
			  "amnesiac (no vote, no acknowledgement, no campaign, no read) until its "
			  "group replaces it; %zu segment%s moved to %s, %zu shard dir%s moved to "
			  "%s; nothing was deleted (docs/DAMAGED-DATADIR.md, \"Amnesiac "
			  "replicas\")", c->index, c->log_dir, why, moved, moved == 1 ? "" : "s",
			  moved ? qcore : "(none)", shards, shards == 1 ? "" : "s", qroot);
	else
		log_error("core %u: core log %s repaired from the peers: %s; %zu segment%s moved "
			  "to %s, %zu shard dir%s moved to %s; every replica of the core rejoins "
			  "(no vote until caught up from a leader); nothing was deleted "
			  "(docs/DAMAGED-DATADIR.md, \"Automatic repair of a damaged core log\")",
			  c->index, c->log_dir, why, moved, moved == 1 ? "" : "s",
			  moved ? qcore : "(none)", shards, shards == 1 ? "" : "s", qroot);
out:
	free(seqs);
	return rv;
}
