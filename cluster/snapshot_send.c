/*
 * Leader side of snapshot streaming (docs/cluster/snapshots.md).
 *
 * Raft's snapshot data is a small descriptor; the state itself is the
 * shard's SSTables and manifest. When Raft asks to send its SNAPSHOT
 * message to a follower, the message is held back and a stream starts: the
 * shard's current version is pinned (shard_snapshot_begin: its tables stay
 * on disk and open while compactions drop them), every table is read
 * through the core's ring in chunks and sent as SnapshotChunk frames on the
 * BULK class (behind votes and heartbeats), CRC32C per chunk, no faster
 * than --snapshot-rate, then the manifest image as the last file. The pin
 * goes when the last chunk is handed to the transport. From then on
 * Raft's SNAPSHOT message (resent by Raft on every heartbeat) passes: the
 * follower steps it once its install is done, which moves its progress
 * back to replicating. A stream the follower did not take within
 * SEND_TIMEOUT is started over on a fresh pin; one stream per follower.
 *
 * A damaged follower may ask for a stream Raft never would (a
 * SnapshotRequest, cluster/replica_repair.c): snapshot_send_force starts
 * one on the same slot, marked `forced`. Raft sends no SNAPSHOT message
 * after it (the follower's log is fine), so once SENT the slot only waits
 * out SEND_TIMEOUT before it takes another request; a SNAPSHOT message of
 * Raft's for that follower meanwhile starts over for Raft, as usual.
 *
 * A follower that lost a chunk asks for a start over (snapshot_send_restart);
 * its request carries a generation (its process's boot id, the latest
 * stream of ours it saw), and one sent before it could know of the stream
 * under way is ignored (restart_stale): a start over is one more stream.
 *
 * Invariant: a slot holds a pin exactly while STREAMING, and is freed only
 * when no read of it is in flight (`reading`).
 */
#include "cluster/replica_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/replica_backup.h"
#include "core/log.h"

#define SEND_CHUNK (256u << 10)
#define SEND_TIMEOUT_US (5u * 1000000u) /* after SENT, before starting over */
/* After SENT, how long a "whichever you finished" request that saw no
 * newer stream than the one this stream started over for is taken as sent
 * before the follower could see this one (restart_stale). */
#define RESTART_STALE_US 1000000u

static struct snap_send *slot_get(struct replica *rep, uint64_t to, bool make)
{
	struct snap_send *free_slot = NULL;

	for (unsigned i = 0; i < RAFT_MAX_SERVERS; i++) {
		if (rep->sends[i] && rep->sends[i]->to == to)
			return rep->sends[i];
		if (!rep->sends[i] && !free_slot && make) {
			struct snap_send *s = calloc(1, sizeof *s);

			if (!s)
				return NULL;
			s->buf = malloc(SEND_CHUNK);
			if (!s->buf) {
				free(s);
				return NULL;
			}
			s->rep = rep;
			s->to = to;
			peer_msg_buf_init(&s->frame);
			timer_init(&s->timer, NULL, s);
			rep->sends[i] = s;
			return s;
		}
	}
	return NULL;
}

static void unpin(struct snap_send *s)
{
	s->restart_due = false;
	if (s->state == SNAP_SEND_STREAMING)
		shard_snapshot_end(&s->snap);
	if (s->timer_armed) {
		reactor_timer_cancel(s->rep->core->r, &s->timer);
		s->timer_armed = false;
	}
	s->state = SNAP_SEND_IDLE;
}

static void pump(struct snap_send *s);
static void restart_try(struct snap_send *s);

static void timer_fired(struct timer *t, void *arg)
{
	struct snap_send *s = arg;

	(void)t;
	s->timer_armed = false;
	pump(s);
}

/* Sends one chunk of the current file; advances the position. */
static int send_chunk(struct snap_send *s, const char *name, const void *data, uint32_t len,
		      bool last)
{
	struct cluster_core *c = s->rep->core;
	uint64_t rate;
	struct peer_msg_chunk ch = {
		.group = s->rep->id, .index = s->index, .term = s->term,
		.file = { .data = (const uint8_t *)name, .len = (uint32_t)strlen(name) },
		.offset = s->offset, .data = { .data = data, .len = len }, .last = last,
		.stream = s->stream, .seq = s->seq,
	};
	int rv;

	s->frame.len = 0;
	rv = peer_msg_encode_chunk(&s->frame, &c->limits, &ch);
	if (rv == 0 && c->node->cfg.snapshot_chunk_hook &&
	    !c->node->cfg.snapshot_chunk_hook(s->to, s->seq, last))
		s->frame.len = 0; /* a test's lost chunk: as if the transport dropped it */
	else if (rv == 0)
		rv = c->pc ? peer_send(c->pc, replica_ident_node(s->to), PEER_BULK,
				       s->frame.data + PEER_MSG_HEADER_SIZE,
				       s->frame.len - PEER_MSG_HEADER_SIZE)
			   : -ENOENT;
	if (rv != 0)
		return rv;
	c->stats.frames_sent++;
	s->seq++;
	s->bytes += len;
	s->rep->snap_send_bytes += len;
	s->offset += len;
	/* The rate: this chunk's bytes buy time before the next one (a
	 * move's own cap may be lower: replica_move_send_rate). */
	rate = replica_move_send_rate(s->rep, s->to, c->node->cfg.snapshot_rate);
	if (rate)
		s->next_us = c->r->now_us + (uint64_t)len * 1000000u / rate;
	return 0;
}

static void stream_failed(struct snap_send *s, const char *what, int rv)
{
	log_warn("replica %u: snapshot stream to node %llu stopped (%s: %s); it starts over",
		 s->rep->id, (unsigned long long)s->to, what, rkv_strerror(rv));
	unpin(s);
}

static void read_done(struct shard_snapshot_chunk *rd, int res)
{
	struct snap_send *s = rd->arg;
	int rv;

	s->reading = false;
	if (s->abandon) {
		s->abandon = false;
		unpin(s);
		return;
	}
	if (s->restart_due) {
		/* This chunk belongs to the stream being started over. */
		restart_try(s);
		return;
	}
	if (res <= 0) {
		stream_failed(s, "read", res < 0 ? res : -EIO);
		return;
	}
	rv = send_chunk(s, s->snap.files[s->file].name, s->buf, (uint32_t)res, false);
	if (rv != 0) {
		stream_failed(s, "send", rv);
		return;
	}
	if (s->offset >= s->snap.files[s->file].size) {
		s->file++;
		s->offset = 0;
	}
	pump(s);
}

/* Moves the stream on: one chunk in flight at a time, at the rate. */
static void pump(struct snap_send *s)
{
	struct cluster_core *c = s->rep->core;
	uint64_t now = c->r->now_us;

	if (s->restart_due) {
		restart_try(s);
		return;
	}
	if (s->state != SNAP_SEND_STREAMING || s->reading || s->timer_armed)
		return;
	if (s->next_us > now) {
		s->timer_armed = true;
		reactor_timer_arm(c->r, &s->timer, s->next_us - now, timer_fired, s);
		return;
	}
	while (s->file < s->snap.nfiles && s->offset >= s->snap.files[s->file].size) {
		s->file++; /* an empty table (never written so) */
		s->offset = 0;
	}
	if (s->file < s->snap.nfiles) {
		uint64_t left = s->snap.files[s->file].size - s->offset;
		uint32_t len = left < SEND_CHUNK ? (uint32_t)left : SEND_CHUNK;
		int rv;

		s->rd.done = read_done;
		s->rd.arg = s;
		rv = shard_snapshot_read(&s->snap, s->file, s->offset, s->buf, len, &s->rd);
		if (rv != 0) {
			stream_failed(s, "read", rv);
			return;
		}
		s->reading = true;
		return;
	}
	/* The manifest image: the last file, last chunk flagged. */
	while (s->state == SNAP_SEND_STREAMING) {
		uint64_t left = s->snap.manifest_len - s->offset;
		uint32_t len = left < SEND_CHUNK ? (uint32_t)left : SEND_CHUNK;
		bool last = len == left;
		int rv = send_chunk(s, "MANIFEST", s->snap.manifest + s->offset, len, last);

		if (rv != 0) {
			stream_failed(s, "send", rv);
			return;
		}
		if (last) {
			shard_snapshot_end(&s->snap);
			s->state = SNAP_SEND_SENT;
			s->sent_at_us = now;
			s->rep->snap_sent++;
			log_info("replica %u: snapshot at %llu streamed to node %llu (%llu bytes)",
				 s->rep->id, (unsigned long long)s->index,
				 (unsigned long long)s->to, (unsigned long long)s->bytes);
			return;
		}
		if (s->next_us > c->r->now_us) {
			pump(s);
			return;
		}
	}
}

static void start(struct snap_send *s, uint64_t raft_index, bool forced)
{
	struct replica *rep = s->rep;
	uint64_t term = 0;
	int rv;

	rv = shard_snapshot_begin(rep->shard, &s->snap);
	if (rv != 0) {
		log_every(LOG_WARN, 10000, "replica %u: cannot pin a snapshot: %s", rep->id,
			  rkv_strerror(rv));
		return;
	}
	/* The pinned version holds the state at its flushed index F >= the
	 * Raft snapshot (compaction never passes the flushed index); F's term
	 * is in the log (entries above the Raft snapshot are kept). */
	if (s->snap.index < raft_index ||
	    (s->snap.index > 0 && !raft_term_at(rep->raft, s->snap.index, &term))) {
		log_warn("replica %u: flushed index %llu has no known term (Raft snapshot %llu)",
			 rep->id, (unsigned long long)s->snap.index, (unsigned long long)raft_index);
		shard_snapshot_end(&s->snap);
		return;
	}
	if (forced && s->snap.index == 0) {
		/* Nothing flushed yet: a receiver refuses a stream at 0. The
		 * follower asks again; by then there may be tables. */
		log_every(LOG_INFO, 10000, "replica %u: no snapshot for node %llu yet: nothing "
			  "is flushed", rep->id, (unsigned long long)s->to);
		shard_snapshot_end(&s->snap);
		return;
	}
	s->state = SNAP_SEND_STREAMING;
	s->restart_due = false;
	/* Ids only grow (the monotonic clock's microseconds, or the next):
	 * a report about an earlier stream never matches a later one, even
	 * across a restart of this process. */
	s->stream = rep->core->r->now_us > s->stream ? rep->core->r->now_us : s->stream + 1;
	s->seq = 0;
	s->asked_boot = s->asked_seen = 0; /* restart_try sets them after */
	s->raft_index = raft_index;
	s->forced = forced;
	s->index = s->snap.index;
	s->term = term;
	s->file = 0;
	s->offset = 0;
	s->bytes = 0;
	s->total = s->snap.manifest_len;
	for (size_t i = 0; i < s->snap.nfiles; i++)
		s->total += s->snap.files[i].size;
	s->next_us = 0;
	log_info("replica %u: streaming a snapshot at %llu (%zu tables) to node %llu%s",
		 rep->id, (unsigned long long)s->index, s->snap.nfiles, (unsigned long long)s->to,
		 forced ? " (it asked: repair)" : "");
	pump(s);
}

bool snapshot_send_intercept(struct replica *rep, const struct raft_msg *m)
{
	struct snap_send *s = slot_get(rep, m->to, true);
	uint64_t now = rep->core->r->now_us;

	if (!s)
		return true; /* out of memory: Raft resends later */
	switch (s->state) {
	case SNAP_SEND_IDLE:
		if (!s->reading)
			start(s, m->index, false);
		return true;
	case SNAP_SEND_STREAMING:
		return true;
	case SNAP_SEND_SENT:
		if (s->forced || s->raft_index != m->index ||
		    now - s->sent_at_us > SEND_TIMEOUT_US) {
			/* A newer Raft snapshot, the follower did not take
			 * this one (lost chunks, restart), or it was a forced
			 * one Raft knows nothing of: start over for Raft. */
			s->state = SNAP_SEND_IDLE;
			start(s, m->index, false);
			return true;
		}
		return false;
	}
	return true;
}

uint64_t snapshot_send_keep(const struct replica *rep, uint64_t to)
{
	for (unsigned i = 0; i < RAFT_MAX_SERVERS; i++) {
		const struct snap_send *s = rep->sends[i];

		if (s && s->to == to && s->state != SNAP_SEND_IDLE && !s->forced)
			return s->raft_index;
	}
	return 0;
}

bool snapshot_send_progress(const struct replica *rep, uint64_t to, uint64_t *sent,
			    uint64_t *total)
{
	for (unsigned i = 0; i < RAFT_MAX_SERVERS; i++) {
		const struct snap_send *s = rep->sends[i];

		if (s && s->to == to && s->state == SNAP_SEND_STREAMING) {
			*sent = s->bytes;
			*total = s->total;
			return true;
		}
	}
	return false;
}

uint64_t snapshot_send_chunk_gap_us(const struct cluster_core *c)
{
	uint64_t rate = c->node->cfg.snapshot_rate;

	return rate ? (uint64_t)SEND_CHUNK * 1000000u / rate : 0;
}

void snapshot_send_force(struct replica *rep, uint64_t to, uint64_t applied)
{
	struct snap_send *s = slot_get(rep, to, true);

	if (!s)
		return; /* out of memory: the follower asks again */
	if (s->state != SNAP_SEND_IDLE || s->reading) {
		log_every(LOG_DEBUG, 10000, "replica %u: snapshot request from node %llu: a "
			  "stream to it is under way", rep->id, (unsigned long long)to);
		return;
	}
	log_every(LOG_INFO, 5000, "replica %u: node %llu asks for a snapshot to repair from "
		  "(it applied %llu)", rep->id, (unsigned long long)to,
		  (unsigned long long)applied);
	/* Raft's own snapshot point is at or below the flushed index, so the
	 * pinned version covers it and the term of its index is known. */
	start(s, raft_snapshot(rep->raft)->index, true);
}

/* The least time between two starts over of one follower's stream: a
 * heartbeat, doubling with each start over that did not lead to the
 * follower taking a snapshot, up to SEND_TIMEOUT (a follower that keeps
 * failing on its side, a full disk say, costs what it did before). */
static uint64_t restart_gap_us(const struct snap_send *s)
{
	uint64_t gap = (uint64_t)s->rep->core->node->cfg.heartbeat_ms * 1000u;
	unsigned k = s->restarts_in_row < 16 ? s->restarts_in_row : 16;

	gap <<= k;
	return gap < SEND_TIMEOUT_US ? gap : SEND_TIMEOUT_US;
}

/* A start over asked for: now, or (from pump, read_done and the tick)
 * once no read is in flight and the gap since the last one has passed;
 * meanwhile the stream sends nothing more. */
static void restart_try(struct snap_send *s)
{
	struct replica *rep = s->rep;
	uint64_t now = rep->core->r->now_us;

	if (!s->restart_due || s->reading ||
	    (s->restarted_us && now - s->restarted_us < restart_gap_us(s)))
		return;
	log_info("replica %u: node %llu lost a chunk of the snapshot stream at %llu; "
		 "starting it over", rep->id, (unsigned long long)s->to,
		 (unsigned long long)s->index);
	s->restarted_us = now;
	s->restarts_in_row++;
	rep->snap_restarted++;
	unpin(s);
	start(s, s->forced ? raft_snapshot(rep->raft)->index : s->raft_index, s->forced);
	s->asked_boot = s->due_boot;
	s->asked_seen = s->due_seen;
}

/* The boot id of node `to`'s latest hello; 0: none, or an older build. */
static uint64_t peer_boot_id(const struct replica *rep, uint64_t to)
{
	const struct cluster_node *n = rep->core->node;
	int idx = cluster_map_index(&n->map, to);

	return idx < 0 ? 0 : atomic_load(&n->peer_boot_id[idx]);
}

/* A restart request the follower sent before it could know of the stream
 * under way: from an earlier process of its node (its hello's boot id
 * changed since: that process's streams are gone with it), or, naming no
 * stream, from the process this stream started over for, which had seen
 * no newer stream than when it asked (Raft's SNAPSHOT messages sent
 * behind the old stream reach it before the new stream's chunks do). */
static bool restart_stale(const struct snap_send *s, uint64_t to,
			  const struct peer_msg_snapshot_request *q)
{
	uint64_t boot = peer_boot_id(s->rep, to);

	if (q->boot_id == 0)
		return false; /* an older build: no generation to judge by */
	if (boot != 0 && q->boot_id != boot)
		return true;
	/* Such a request reaches us about as soon as the stream is all
	 * handed over; later, the same words say the whole stream was lost
	 * (nothing of it reached the follower), which SEND_TIMEOUT would
	 * otherwise be left to notice. */
	return q->restart_stream == SNAPSHOT_STREAM_ANY && q->boot_id == s->asked_boot &&
	       q->stream_seen <= s->asked_seen &&
	       s->rep->core->r->now_us - s->sent_at_us < RESTART_STALE_US;
}

void snapshot_send_restart(struct replica *rep, uint64_t to,
			   const struct peer_msg_snapshot_request *q)
{
	uint64_t stream = q->restart_stream;
	struct snap_send *s = NULL;

	/* `to` is the asking node; a slot is keyed by its replica's Raft id
	 * (the node and an incarnation: cluster/replica_ident.h). */
	for (unsigned i = 0; i < RAFT_MAX_SERVERS && !s; i++)
		if (rep->sends[i] && replica_ident_node(rep->sends[i]->to) == to &&
		    rep->sends[i]->state != SNAP_SEND_IDLE)
			s = rep->sends[i];
	if (raft_role(rep->raft) != RAFT_LEADER || !s)
		return;
	/* ANY: the follower got Raft's message, which follows the last chunk,
	 * and holds no stream from us: this one, all sent, was lost. */
	if (stream == SNAPSHOT_STREAM_ANY ? s->state != SNAP_SEND_SENT || s->forced
					  : s->stream != stream)
		return;
	if (restart_stale(s, to, q)) {
		rep->snap_restart_stale++;
		log_every(LOG_DEBUG, 10000, "replica %u: a stale snapshot restart request from "
			  "node %llu (sent before its stream under way): ignored", rep->id,
			  (unsigned long long)to);
		return;
	}
	s->restart_due = true;
	s->due_boot = q->boot_id;
	s->due_seen = stream == SNAPSHOT_STREAM_ANY ? q->stream_seen : stream;
	restart_try(s);
}

void snapshot_send_tick(struct replica *rep)
{
	bool leader = raft_role(rep->raft) == RAFT_LEADER;

	for (unsigned i = 0; i < RAFT_MAX_SERVERS; i++) {
		struct snap_send *s = rep->sends[i];
		uint64_t match;
		bool taken;

		if (!s || s->state == SNAP_SEND_IDLE)
			continue;
		taken = leader && !s->forced && raft_conf_role(raft_conf(rep->raft), s->to) != 0 &&
			raft_follower_match(rep->raft, s->to, &match) && match >= s->raft_index;
		if (leader && s->restart_due && !taken) {
			/* The gap since the last one passed? (A follower that
			 * took the snapshot meanwhile needs none: it ends
			 * below, or a start over asked for before it took
			 * one would stream it again later for nothing.) */
			restart_try(s);
			continue;
		}
		if (leader && s->forced) {
			/* No Raft message to wait for: a forced slot is done
			 * SEND_TIMEOUT after its last chunk (the follower asks
			 * again if that one did not take). */
			if (s->state == SNAP_SEND_SENT &&
			    rep->core->r->now_us - s->sent_at_us > SEND_TIMEOUT_US)
				s->state = SNAP_SEND_IDLE;
			continue;
		}
		if (leader && raft_conf_role(raft_conf(rep->raft), s->to) != 0 &&
		    !(raft_follower_match(rep->raft, s->to, &match) && match >= s->raft_index))
			continue;
		/* Done (the follower matches), no longer ours to send, or the
		 * follower left the group (a cancelled move's learner: a new
		 * move to it must not get the rest of this stream). */
		s->restarts_in_row = 0;
		if (s->reading)
			s->abandon = true;
		else
			unpin(s);
	}
}

bool snapshot_send_stop(struct replica *rep)
{
	/* Backup pins go too: whoever stops the sends lets the shard go. */
	bool quiet = replica_backup_stop(rep);

	for (unsigned i = 0; i < RAFT_MAX_SERVERS; i++) {
		struct snap_send *s = rep->sends[i];

		if (!s)
			continue;
		if (s->reading) {
			s->abandon = true;
			quiet = false;
		} else {
			unpin(s);
		}
	}
	return quiet;
}

void snapshot_send_free(struct replica *rep)
{
	for (unsigned i = 0; i < RAFT_MAX_SERVERS; i++) {
		struct snap_send *s = rep->sends[i];

		if (!s)
			continue;
		if (s->state == SNAP_SEND_STREAMING)
			shard_snapshot_end(&s->snap);
		peer_msg_buf_free(&s->frame);
		free(s->buf);
		free(s);
		rep->sends[i] = NULL;
	}
}
