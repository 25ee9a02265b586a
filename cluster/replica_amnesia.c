/*
 * An amnesiac replica (issue #14): a replica whose core's newest core log
 * segment was found damaged at start-up (cluster/core_log_repair.c).
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
 * So, as TiKV does, the replica takes NO part in its group: every Raft
 * message for it is dropped on arrival (votes, pre-votes, appends,
 * heartbeats, snapshots, TIMEOUT_NOW, ReadIndex answers), it does not tick
 * (never campaigns, never answers a lease), it takes no snapshot chunk and
 * answers no snapshot request, and it serves nothing (no proposal, no read,
 * not even a stale one). To its group it is a dead member. Its old identity's
 * promises end only when the group replaces it by a conf change committed
 * without it (docs/cluster/repair-design.md, "Amnesiac replicas").
 *
 * Invariant: while `rep->amnesiac`, raft_step is never called on the
 * replica's group, so Raft emits no message for it.
 *
 * Durable: the marker DATA/shard-N.amnesiac (its text: what was damaged)
 * is written before anything of the core log is moved, and read at every
 * start; only the group's replacement (or a drop of the replica) ends it.
 */
#include "cluster/replica_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/durable_file.h"
#include "core/log.h"

void replica_amnesia_marker_name(char *buf, size_t len, uint32_t shard)
{
	snprintf(buf, len, "shard-%u.amnesiac", shard);
}

int replica_amnesia_mark(const char *data_dir, uint32_t shard, const char *why)
{
	char name[64], text[AMNESIA_WHY_MAX + 1];
	int n;

	replica_amnesia_marker_name(name, sizeof name, shard);
	n = snprintf(text, sizeof text, "%s\n", why);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= sizeof text)
		n = (int)sizeof text - 1;
	return durable_file_replace(data_dir, name, text, (size_t)n);
}

int replica_amnesia_load(struct replica *rep, char *err, size_t errlen)
{
	const struct cluster_node *n = rep->core->node;
	char path[PATH_MAX + 64], name[64], buf[AMNESIA_WHY_MAX];
	ssize_t got;
	int fd;

	replica_amnesia_marker_name(name, sizeof name, rep->id);
	snprintf(path, sizeof path, "%s/%s", n->data_dir, name);
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
	/* The text is for people: bytes from disk, shown only as printable
	 * characters. Its presence alone makes the replica amnesiac. */
	for (ssize_t i = 0; i < got; i++)
		if (buf[i] == '\n' || (unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] > 0x7e)
			buf[i] = buf[i] == '\n' && i == got - 1 ? '\0' : '?';
	buf[got] = '\0';
	rep->amnesiac = true;
	snprintf(rep->amnesia_why, sizeof rep->amnesia_why, "%s",
		 buf[0] ? buf : "(the marker names no reason)");
	log_error("replica %u: amnesiac: its core log was damaged where a vote or acknowledged "
		  "entries may have been lost (%s); it takes no part in its group (no vote, no "
		  "acknowledgement, no campaign, no read) until the group replaces it (%s; "
		  "docs/DAMAGED-DATADIR.md, \"Amnesiac replicas\")", rep->id, rep->amnesia_why,
		  path);
	return 0;
}

bool replica_amnesia_accept(struct replica *rep, const struct raft_msg *m)
{
	if (!rep->amnesiac)
		return true;
	rep->amnesia_dropped++;
	/* Only a leader sends these: remembered as a routing hint (the node's
	 * front door forwards the shard's requests there), never stepped. */
	if ((m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT) &&
	    m->term >= rep->amnesia_leader_term) {
		rep->amnesia_leader = m->from;
		rep->amnesia_leader_term = m->term;
	}
	return false;
}
