/*
 * One core's replication engine: its Raft log, its replicas, one tick timer,
 * its peer transport and the per-pass batching of Raft messages
 * (cluster/replica.h).
 *
 * Loop pass, in the reactor's order: inbound frames and cross-core messages
 * step their groups (completions, mailbox), the tick timer steps every group,
 * then this core's hook: dirty replicas hand committed entries to their
 * shards and serve ready reads, each shard runs its background slice, every
 * destination's batch frames go to the transport (whose own send hook,
 * registered after ours, puts them on the wire in the same pass), and the
 * core log stores and fdatasyncs everything staged in the pass at once.
 */
#include "cluster/replica_internal.h"
#include "cluster/leaders.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/durable_file.h"
#include "core/log.h"
#include "raft/log.h"
#include "shard/block_cache.h"

#define DEFAULT_CACHE_BYTES (8u << 20)
#define DEFAULT_ELECTION_MS 300u
#define DEFAULT_HEARTBEAT_MS 50u
#define DEFAULT_COMPACT_MARGIN 8192u
#define DEFAULT_SNAPSHOT_LAG 65536u

int cluster_msg_class(const struct raft_msg *m)
{
	return m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_SNAPSHOT ? PEER_BULK
									  : PEER_CONTROL;
}

/* ---- node ------------------------------------------------------------------ */

int cluster_node_create(struct cluster_node **out, const struct cluster_node_config *cfg,
			char *err, size_t errlen)
{
	struct cluster_node *n;
	int idx, rv;

	if (!cfg->map || cfg->cores == 0 || !cfg->data_dir) {
		snprintf(err, errlen, "cluster: no map, no cores or no data dir");
		return -EINVAL;
	}
	idx = cluster_map_index(cfg->map, cfg->self_id);
	if (idx < 0) {
		snprintf(err, errlen, "cluster: node %" PRIu64 " is not in the map", cfg->self_id);
		return -EINVAL;
	}
	if (strlen(cfg->data_dir) >= PATH_MAX - 64) {
		snprintf(err, errlen, "cluster: data dir path too long");
		return -EINVAL;
	}
	n = calloc(1, sizeof *n);
	if (!n)
		return -ENOMEM;
	n->cores = calloc(cfg->cores, sizeof *n->cores);
	if (!n->cores) {
		free(n);
		return -ENOMEM;
	}
	n->cfg = *cfg;
	n->map = *cfg->map;
	n->cfg.map = &n->map;
	snprintf(n->data_dir, sizeof n->data_dir, "%s", cfg->data_dir);
	n->cfg.data_dir = n->data_dir;
	/* The cores make what they need inside it; it may not exist yet. */
	if ((mkdir(n->data_dir, 0755) != 0 && errno != EEXIST) ||
	    (n->data_dir_fd = open(n->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		int e = errno;

		snprintf(err, errlen, "cluster: %s: %s", n->data_dir, strerror(e));
		free(n->cores);
		free(n);
		return -e;
	}
	n->self_index = (unsigned)idx;
	/* Which replicas this node holds, and on which core: the map's
	 * founding placement, changed by the moves in the hosting record. */
	n->hosting = malloc(sizeof *n->hosting);
	n->core_of = calloc(n->map.shards, sizeof *n->core_of);
	if (!n->hosting || !n->core_of) {
		cluster_node_destroy(n);
		return -ENOMEM;
	}
	rv = cluster_hosting_load(n->data_dir, n->hosting, n->map.shards, cfg->cores, err,
				  errlen);
	if (rv) {
		cluster_node_destroy(n);
		return rv;
	}
	for (uint32_t s = 0; s < n->map.shards; s++)
		n->core_of[s] = (int16_t)cluster_hosting_core(&n->map, n->hosting, n->self_index, s,
							      cfg->cores);
	rv = replica_wiped_node_init(n, err, errlen);
	/* This process's id in hellos: a peer tells our snapshot requests
	 * from those of an earlier process of this node by it. */
	while (rv == 0 && n->boot_id == 0)
		if (getrandom(&n->boot_id, sizeof n->boot_id, 0) != (ssize_t)sizeof n->boot_id) {
			snprintf(err, errlen, "getrandom: %s", strerror(errno));
			rv = -EIO;
		}
	if (rv) {
		cluster_node_destroy(n);
		return rv;
	}
	if (n->hosting->n)
		log_info("cluster: the hosting record moves %u replica%s away from the founding "
			 "placement", n->hosting->n, n->hosting->n == 1 ? "" : "s");
	if (!n->cfg.cache_bytes)
		n->cfg.cache_bytes = DEFAULT_CACHE_BYTES;
	if (!n->cfg.election_timeout_ms)
		n->cfg.election_timeout_ms = DEFAULT_ELECTION_MS;
	if (!n->cfg.heartbeat_ms)
		n->cfg.heartbeat_ms = DEFAULT_HEARTBEAT_MS;
	if (n->cfg.heartbeat_ms >= n->cfg.election_timeout_ms)
		n->cfg.heartbeat_ms = n->cfg.election_timeout_ms / 2 ? n->cfg.election_timeout_ms / 2 : 1;
	if (!n->cfg.follower_compact_margin)
		n->cfg.follower_compact_margin = DEFAULT_COMPACT_MARGIN;
	if (!n->cfg.snapshot_lag)
		n->cfg.snapshot_lag = DEFAULT_SNAPSHOT_LAG;
	if (!n->cfg.proposal_timeout_ms)
		n->cfg.proposal_timeout_ms = 2 * n->cfg.election_timeout_ms;
	if (!n->cfg.stop_grace_ms)
		n->cfg.stop_grace_ms = n->cfg.election_timeout_ms;
	if (!n->cfg.seed) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		n->cfg.seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ cfg->self_id;
	}
	*out = n;
	return 0;
}

void cluster_node_destroy(struct cluster_node *n)
{
	if (!n)
		return;
	if (n->data_dir_fd >= 0)
		close(n->data_dir_fd);
	free(n->hosting);
	free(n->core_of);
	free(n->cores);
	free(n);
}

/* ---- sending ----------------------------------------------------------------- */

void cluster_core_wake(struct cluster_core *c)
{
	if (!c->in_hook)
		reactor_poll_again(c->r);
}

uint64_t cluster_core_batches(struct cluster_core *c)
{
	struct core_log_stats st;

	core_log_stats(c->log, &st);
	return st.batches;
}

static void out_send(struct cluster_core *c, unsigned node, int cls)
{
	struct out_batch *ob = &c->out[node][cls];
	size_t len;
	int rv;

	if (!ob->open)
		return;
	len = peer_msg_batch_end(&ob->buf, &ob->batch);
	ob->open = false;
	if (len > PEER_MSG_HEADER_SIZE) {
		rv = c->pc ? peer_send(c->pc, c->node->map.nodes[node].id, (enum peer_class)cls,
				       ob->buf.data + ob->batch.start + PEER_MSG_HEADER_SIZE,
				       len - PEER_MSG_HEADER_SIZE)
			   : -ENOENT;
		if (rv == 0)
			c->stats.frames_sent++;
		else
			c->stats.send_errors++;
	}
	ob->buf.len = 0;
}

/* A heartbeat or its answer into the node's Heartbeats frame of this pass
 * (coalesced: docs/cluster/peer-protocol.md, "Heartbeats"). False when it
 * cannot travel that way. */
static bool queue_beat(struct cluster_core *c, unsigned idx, uint32_t group,
		       const struct raft_msg *m)
{
	struct beat_out *bo = &c->beats[idx];
	struct peer_msg_beat b;

	if (!atomic_load_explicit(&c->node->beats_ok[idx], memory_order_relaxed) ||
	    !peer_msg_beat_from_raft(m, group, &b))
		return false;
	if (bo->n == bo->cap) {
		uint32_t cap = bo->cap ? bo->cap * 2 : 64;
		struct peer_msg_beat *v;

		if (cap > PEER_MSG_MAX_BEATS)
			return false; /* a frame's worth this pass: the rest as RaftMessages */
		v = realloc(bo->v, cap * sizeof *v);
		if (!v)
			return false;
		bo->v = v;
		bo->cap = cap;
	}
	bo->v[bo->n++] = b;
	c->stats.msgs_sent++;
	c->out_pending = true;
	cluster_core_wake(c);
	return true;
}

void cluster_core_queue_msg(struct cluster_core *c, uint32_t group, const struct raft_msg *m)
{
	int idx = cluster_map_index(&c->node->map, replica_ident_node(m->to));
	int cls = cluster_msg_class(m);
	struct out_batch *ob;
	int rv;

	if (idx < 0 || (unsigned)idx == c->node->self_index) {
		c->stats.send_errors++;
		return;
	}
	if (queue_beat(c, (unsigned)idx, group, m))
		return;
	ob = &c->out[idx][cls];
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!ob->open) {
			if (peer_msg_batch_begin(&ob->buf, &ob->batch) != 0)
				break;
			ob->open = true;
		}
		rv = peer_msg_batch_add(&ob->buf, &ob->batch, &c->limits, group, m);
		if (rv == 0) {
			c->stats.msgs_sent++;
			c->out_pending = true;
			cluster_core_wake(c);
			return;
		}
		if (rv != RKV_ETOOLARGE || ob->batch.n_msgs == 0)
			break;
		out_send(c, (unsigned)idx, cls); /* full: send it, start another */
	}
	c->stats.send_errors++;
}

void cluster_core_send_now(struct cluster_core *c, uint64_t to, int cls, const void *data,
			   size_t len)
{
	int rv = c->pc ? peer_send(c->pc, to, (enum peer_class)cls, data, len) : -ENOENT;

	if (rv == 0)
		c->stats.frames_sent++;
	else
		c->stats.send_errors++;
}

/* The node's Heartbeats frame: its coalesced heartbeats, or an empty one
 * (the liveness beacon) once per tick. Sent first: it is what keeps
 * elections away, and it is small. Queued while the node is down too:
 * dropped then (a node down for 5 s is sent 1-2 MB at 10,000 groups), a
 * restarted node learned its leaders later and served 2-3x slower (3,000
 * replicas a node, perf/restart-storm.sh): the heartbeats of the current
 * term it reads first tell it who leads, before any group is woken. */
static void beats_send(struct cluster_core *c, unsigned node)
{
	struct beat_out *bo = &c->beats[node];
	int rv;

	if (node == c->node->self_index || (bo->n == 0 && !c->beacon_due))
		return;
	c->beat_buf.len = 0;
	rv = peer_msg_encode_heartbeats(&c->beat_buf, bo->v, bo->n);
	if (rv == 0 && c->pc)
		rv = peer_send(c->pc, c->node->map.nodes[node].id, PEER_CONTROL,
			       c->beat_buf.data + PEER_MSG_HEADER_SIZE,
			       c->beat_buf.len - PEER_MSG_HEADER_SIZE);
	else if (rv == 0)
		rv = -ENOENT;
	if (rv == 0) {
		c->stats.frames_sent++;
		c->beats_sent += bo->n;
		c->beacons_sent += bo->n == 0;
	} else {
		c->stats.send_errors++;
	}
	bo->n = 0;
}

static void send_all(struct cluster_core *c)
{
	if (!c->out_pending)
		return;
	c->out_pending = false;
	for (unsigned i = 0; i < c->node->map.node_count; i++) {
		beats_send(c, i);
		out_send(c, i, PEER_CONTROL);
		out_send(c, i, PEER_BULK);
	}
	c->beacon_due = false;
}

/* ---- the loop pass ------------------------------------------------------------- */

#define BG_SWEEP_US 10000u /* every shard's background looked at, at least */

/* Into c->bg when its shard has background work under way. */
static void bg_note(struct cluster_core *c, struct replica *rep)
{
	if (!rep->bg_busy && rep->shard && shard_background_busy(rep->shard)) {
		rep->bg_busy = true;
		c->bg[c->nbg++] = rep;
	}
}

/* Out of c->bg once its shard has nothing under way. */
static void bg_prune(struct cluster_core *c)
{
	size_t k = 0;

	for (size_t i = 0; i < c->nbg; i++) {
		struct replica *rep = c->bg[i];

		if (rep->shard && shard_background_busy(rep->shard))
			c->bg[k++] = rep;
		else
			rep->bg_busy = false;
	}
	c->nbg = k;
}

/* One shard's background looked at (the sweep). */
static void sweep_one(struct cluster_core *c, struct replica *rep)
{
	if (rep->installing)
		return;
	shard_flush(rep->shard);
	bg_note(c, rep);
	replica_repair_wake(rep);
}

static void core_hook(struct reactor *r, void *arg)
{
	struct cluster_core *c = arg;
	struct replica **list;
	bool sweep;
	size_t n;

	(void)r;
	if (c->dead)
		return;
	c->in_hook = true;
	/* Swap the dirty lists: what services marks dirty goes to the next. */
	list = c->dirty;
	n = c->ndirty;
	c->dirty = c->dirty_next;
	c->dirty_next = list;
	c->ndirty = 0;
	for (size_t i = 0; i < n; i++) {
		struct replica *rep = list[i];

		rep->dirty = false;
		replica_service(rep);
		/* Reads waiting for apply: look again next pass (apply moves
		 * from completions, which wake the loop). */
		if (rep->ready)
			replica_mark_dirty(rep);
	}
	/* Background work (flush and compaction slices, their starts): on
	 * every pass for the shards with some under way (c->bg), on all of
	 * them every BG_SWEEP_US, where a new compaction or manifest rewrite
	 * is found due. Calling shard_flush on every shard on every pass
	 * cost a third of an idle core's CPU at 1,000 replicas. A replica
	 * serviced this pass joins c->bg at once when its shard became busy
	 * (a memtable to flush after its writes). */
	for (size_t i = 0; i < n; i++)
		bg_note(c, list[i]);
	sweep = c->r->now_us >= c->bg_sweep_at;
	if (sweep) {
		/* Awake replicas every sweep; sleeping ones (nothing written
		 * since they fell asleep) a slice each sweep, each about once
		 * a second: a compaction found due starts that much later. */
		size_t slice = c->nreps / (1000000u / BG_SWEEP_US) + 1;
		struct replica *sealed;

		c->bg_sweep_at = c->r->now_us + BG_SWEEP_US;
		sealed = cluster_core_budget_check(c);
		if (sealed)
			bg_note(c, sealed); /* asleep or not, its flush starts now */
		for (size_t i = 0; i < c->nawake; i++)
			sweep_one(c, c->awake[i]);
		for (size_t k = 0; k < slice && c->nreps; k++) {
			struct replica *rep = c->reps[c->sweep_next++ % c->nreps];

			if (!rep->awake)
				sweep_one(c, rep);
		}
		c->sweep_next %= c->nreps ? c->nreps : 1;
	} else {
		for (size_t i = 0; i < c->nbg; i++)
			if (!c->bg[i]->installing)
				shard_flush(c->bg[i]->shard);
	}
	bg_prune(c);
	send_all(c);
	/* Once stopping and idle, start nothing new (a segment deletion
	 * would be cancelled when the ring goes). */
	if (!c->grace_over || !core_log_idle(c->log))
		core_log_flush(c->log);
	c->in_hook = false;
}

/*
 * Node liveness (docs/cluster/replica.md, "Sleeping groups"): a node no
 * core has heard from for an election timeout is suspected; when this core
 * first suspects it, every sleeping group of the core with a member there
 * is woken with `suspect` (a follower whose leader is there campaigns soon;
 * a leader counts its quorum again). Every node sends every core a frame at
 * least each heartbeat (the beacon), so only a dead, cut off or stalled
 * node goes silent that long.
 */
static void wake_node_groups(struct cluster_core *c, uint64_t node, bool suspect);

static void liveness_check(struct cluster_core *c)
{
	const struct cluster_map *map = &c->node->map;
	uint64_t now = c->r->now_us;
	uint64_t limit = (uint64_t)c->node->cfg.election_timeout_ms * 1000u;

	for (unsigned i = 0; i < map->node_count; i++) {
		uint64_t heard = atomic_load_explicit(&c->node->heard_us[i], memory_order_relaxed);
		uint64_t hellos = atomic_load_explicit(&c->node->hellos[i], memory_order_relaxed);
		bool silent = i != c->node->self_index && now > heard + limit;
		bool suspect = silent && !c->suspected[i];

		c->suspected[i] = silent;
		if (suspect || hellos != c->hellos_seen[i])
			wake_node_groups(c, map->nodes[i].id, suspect);
		c->hellos_seen[i] = hellos;
	}
}

/* Every sleeping group of the core with its leader (a follower) or a member
 * (a leader) on `node` wakes; with `suspect` the node is thought gone, else
 * it just connected (a restarted node's empty or lagging replicas, joining
 * ones that never campaign, need the leader awake to catch up). */
static void wake_node_groups(struct cluster_core *c, uint64_t node, bool suspect)
{
	for (size_t k = 0; k < c->nreps; k++) {
		struct replica *rep = c->reps[k];
		const struct raft_conf *conf;
		bool member = false;

		if (rep->retired || !raft_asleep(rep->raft))
			continue;
		if (raft_role(rep->raft) == RAFT_LEADER) {
			conf = raft_conf(rep->raft);
			for (uint32_t m = 0; m < conf->n; m++)
				member |= replica_ident_node(conf->servers[m].id) == node;
		} else {
			member = replica_ident_node(raft_leader(rep->raft)) == node;
		}
		if (!member)
			continue;
		c->wakes_suspect += suspect;
		replica_step(rep, &(struct raft_event){ .type = RAFT_EV_WAKE,
							.wake.suspect = suspect });
	}
}

static void tick_fired(struct timer *t, void *arg)
{
	struct cluster_core *c = arg;
	size_t n, k = 0;

	(void)t;
	c->stats.ticks++;
	liveness_check(c);
	/* Only the awake replicas tick; one that may rest leaves the list
	 * (replicas woken during the loop are appended past n: kept). */
	n = c->nawake;
	for (size_t i = 0; i < n; i++) {
		struct replica *rep = c->awake[i];

		replica_tick(rep);
		if (replica_may_rest(rep))
			rep->awake = false;
		else
			c->awake[k++] = rep;
	}
	for (size_t i = n; i < c->nawake; i++)
		c->awake[k++] = c->awake[i];
	c->nawake = k;
	c->beacon_due = true;
	c->out_pending = true;
	cluster_leaders_tick(c);
	if (c->stopping && !c->grace_over && c->r->now_us >= c->stop_deadline_us) {
		/* handled in quiescent; keep ticking until then */
	}
	reactor_timer_arm(c->r, &c->tick, (uint64_t)c->node->cfg.heartbeat_ms * 1000u,
			  tick_fired, c);
}

/* ---- inbound ------------------------------------------------------------------- */

/* A Raft message for a group of another core, as its encoded bytes. */
struct xmsg {
	struct reactor_msg base;
	struct cluster_core *to;
	uint32_t len;
	uint8_t bytes[];
};

static bool msg_ok(struct cluster_core *c, uint64_t from_node, uint64_t group,
		   const struct raft_msg *m, unsigned *core)
{
	const struct cluster_map *map = &c->node->map;
	int from_idx, from_core;

	/* Routed by the node parts; the replica's own core checks the whole
	 * identity (replica_amnesia_accept). */
	if (group >= map->shards || replica_ident_node(m->to) != c->node->cfg.self_id ||
	    replica_ident_node(m->from) != from_node)
		return false;
	/* From any node of the cluster, for a group held here: the group's
	 * configuration, not the map, says who its members are (a learner
	 * being added is in no founding placement), and Raft judges the
	 * sender (docs/cluster/membership.md). */
	from_idx = cluster_map_index(map, from_node);
	from_core = atomic_load(&c->node->core_of[group]);
	if (from_idx < 0 || (unsigned)from_idx == c->node->self_index || from_core < 0)
		return false;
	*core = (unsigned)from_core;
	return true;
}

static void step_local(struct cluster_core *c, uint64_t group, const struct raft_msg *m)
{
	struct replica *rep = c->by_shard[group];

	if (!rep || rep->retired) {
		c->stats.dropped_bad++;
		return;
	}
	c->stats.msgs_received++;
	/* Whatever the message, the replica's own work may follow (a rejoin,
	 * a repair): ticked at least once more; Raft wakes itself. */
	replica_awake(rep);
	if (replica_wiped_filter(rep, m) || !replica_amnesia_accept(rep, m) ||
	    replica_rejoin_note(rep, m))
		return;
	if (!replica_accept(rep, m))
		return;
	replica_step(rep, &(struct raft_event){ .type = RAFT_EV_RECEIVE, .msg = m });
}

static int ensure_dec(struct cluster_core *c)
{
	if (c->dec)
		return 0;
	c->dec_cap = c->limits.max_entries;
	c->dec = malloc(c->dec_cap * sizeof *c->dec);
	return c->dec ? 0 : -ENOMEM;
}

static void xmsg_handle(struct reactor *r, struct reactor_msg *base)
{
	struct xmsg *x = (struct xmsg *)base;
	struct cluster_core *c = x->to;
	struct peer_msg_frame f;
	struct raft_msg m;
	uint64_t group;

	(void)r;
	if (ensure_dec(c) == 0 &&
	    peer_msg_decode_one(&f, x->bytes, x->len, &c->limits, c->dec, c->dec_cap, &group,
				&m) == 0)
		step_local(c, group, &m);
	else
		c->stats.dropped_bad++;
	free(x);
}

/* A snapshot chunk frame for a group of another core, whole. */
struct xchunk {
	struct reactor_msg base;
	struct cluster_core *to;
	uint64_t from;
	uint32_t len;
	uint8_t bytes[];
};

/* A snapshot chunk, or a snapshot request (replica_repair.c), on the core
 * of its group. */
static void chunk_local(struct cluster_core *c, uint64_t from_node, const struct peer_msg_frame *f)
{
	uint64_t group = f->kind == PEER_MSG_SNAPSHOT_CHUNK ? f->chunk.group
							     : f->snapshot_request.group;
	struct replica *rep = c->by_shard[group];

	if (!rep || rep->retired) {
		c->stats.dropped_bad++;
		return;
	}
	replica_awake(rep);
	if (f->kind == PEER_MSG_SNAPSHOT_CHUNK)
		snapshot_recv_chunk(rep, from_node, &f->chunk);
	else if (f->snapshot_request.restart_stream != 0)
		snapshot_send_restart(rep, from_node, &f->snapshot_request);
	else
		replica_repair_request(rep, from_node, &f->snapshot_request);
}

static void xchunk_handle(struct reactor *r, struct reactor_msg *base)
{
	struct xchunk *x = (struct xchunk *)base;
	struct peer_msg_frame f;

	(void)r;
	if (peer_msg_decode(&f, x->bytes, x->len, &x->to->limits, NULL, 0) == 0 &&
	    (f.kind == PEER_MSG_SNAPSHOT_CHUNK || f.kind == PEER_MSG_SNAPSHOT_REQUEST))
		chunk_local(x->to, x->from, &f);
	else
		x->to->stats.dropped_bad++;
	free(x);
}

/* Chunks and snapshot requests only from a member of the group, for a
 * group this node holds. */
static void chunk_in(struct cluster_core *c, uint64_t from_node, uint64_t group,
		     const struct peer_msg_frame *f, const uint8_t *data, size_t len)
{
	const struct cluster_map *map = &c->node->map;
	int from_idx = cluster_map_index(map, from_node);
	int held = group < map->shards ? atomic_load(&c->node->core_of[group]) : -1;
	unsigned core;
	struct cluster_core *to;
	struct xchunk *x;

	if (group >= map->shards || from_idx < 0 ||
	    (unsigned)from_idx == c->node->self_index || held < 0) {
		if (f->kind == PEER_MSG_SNAPSHOT_REQUEST)
			log_every(LOG_WARN, 10000, "snapshot request from node %llu for group "
				  "%llu refused: not a member of it here",
				  (unsigned long long)from_node, (unsigned long long)group);
		c->stats.dropped_bad++;
		return;
	}
	core = (unsigned)held;
	if (core == c->index) {
		chunk_local(c, from_node, f);
		return;
	}
	to = atomic_load(&c->node->cores[core]);
	x = to ? malloc(sizeof *x + len) : NULL;
	if (!x) {
		c->stats.dropped_bad++;
		return;
	}
	x->base.handle = xchunk_handle;
	x->to = to;
	x->from = from_node;
	x->len = (uint32_t)len;
	memcpy(x->bytes, data, len);
	reactor_send(c->r, core, &x->base);
	c->stats.msgs_forwarded++;
}

/* A Placement frame (a replica move) for a group of another core. */
struct xplacement {
	struct reactor_msg base;
	struct cluster_core *to;
	uint64_t from;
	struct peer_msg_placement q;
};

static void xplacement_handle(struct reactor *r, struct reactor_msg *base)
{
	struct xplacement *x = (struct xplacement *)base;

	(void)r;
	replica_move_placement(x->to, x->from, &x->q);
	free(x);
}

static void placement_in(struct cluster_core *c, uint64_t from_node,
			 const struct peer_msg_placement *q)
{
	int core = replica_move_placement_core(c, q);
	struct cluster_core *to;
	struct xplacement *x;

	if (core < 0 || (unsigned)core == c->index) {
		replica_move_placement(c, from_node, q);
		return;
	}
	to = atomic_load(&c->node->cores[core]);
	x = to ? malloc(sizeof *x) : NULL;
	if (!x) {
		c->stats.dropped_bad++;
		return;
	}
	x->base.handle = xplacement_handle;
	x->to = to;
	x->from = from_node;
	x->q = *q;
	reactor_send(c->r, (unsigned)core, &x->base);
	c->stats.msgs_forwarded++;
}

/* A coalesced heartbeat for a group of another core. */
struct xbeat {
	struct reactor_msg base;
	struct cluster_core *to;
	uint64_t group;
	struct raft_msg m; /* no pointers: a heartbeat or its answer */
};

static void xbeat_handle(struct reactor *r, struct reactor_msg *base)
{
	struct xbeat *x = (struct xbeat *)base;

	(void)r;
	step_local(x->to, x->group, &x->m);
	free(x);
}

/* Each entry of a Heartbeats frame as the Raft message it stands for,
 * checked and routed as any other. */
static void beats_in(struct cluster_core *c, uint64_t from_node, const struct peer_msg_frame *f)
{
	struct peer_msg_heartbeats_iter it;
	struct peer_msg_beat b;
	struct raft_msg m;
	unsigned core;

	peer_msg_heartbeats_begin(&it, &f->heartbeats);
	while (peer_msg_heartbeats_next(&it, &b) == 1) {
		peer_msg_beat_to_raft(&b, from_node, c->node->cfg.self_id, &m);
		if (!msg_ok(c, from_node, b.group, &m, &core)) {
			c->stats.dropped_bad++;
			continue;
		}
		if (core == c->index) {
			step_local(c, b.group, &m);
			continue;
		}
		struct cluster_core *to = atomic_load(&c->node->cores[core]);
		struct xbeat *x = to ? malloc(sizeof *x) : NULL;

		if (!x) {
			c->stats.dropped_bad++;
			continue;
		}
		x->base.handle = xbeat_handle;
		x->to = to;
		x->group = b.group;
		x->m = m;
		reactor_send(c->r, core, &x->base);
		c->stats.msgs_forwarded++;
	}
}

static void on_frame(void *arg, uint64_t from_node, const uint8_t *data, size_t len)
{
	struct cluster_core *c = arg;
	int from_idx = cluster_map_index(&c->node->map, from_node);
	struct peer_msg_frame f;
	struct raft_msg m;
	uint64_t group;
	unsigned core;
	int rv;

	/* Any frame says its node is alive (node liveness, liveness_check).
	 * The shared slot is written at most once a millisecond per core: a
	 * store per frame bounced its cache line between the cores under
	 * load, for a clock that is read against an election timeout. */
	if (from_idx >= 0 && c->r->now_us - c->heard_stored[from_idx] >= 1000) {
		c->heard_stored[from_idx] = c->r->now_us;
		atomic_store_explicit(&c->node->heard_us[from_idx], c->r->now_us,
				      memory_order_relaxed);
	}
	if (ensure_dec(c) != 0 ||
	    peer_msg_decode(&f, data, len, &c->limits, c->dec, c->dec_cap) != 0) {
		c->stats.dropped_bad++;
		return;
	}
	if (f.kind == PEER_MSG_SNAPSHOT_CHUNK || f.kind == PEER_MSG_SNAPSHOT_REQUEST) {
		chunk_in(c, from_node,
			 f.kind == PEER_MSG_SNAPSHOT_CHUNK ? f.chunk.group : f.snapshot_request.group,
			 &f, data, len);
		return;
	}
	if (f.kind == PEER_MSG_PLACEMENT) {
		placement_in(c, from_node, &f.placement);
		return;
	}
	if (f.kind == PEER_MSG_LEADERS) {
		cluster_leaders_frame(c, from_node, &f, data, len, true);
		return;
	}
	if (f.kind == PEER_MSG_HEARTBEATS) {
		if (from_idx >= 0)
			atomic_store_explicit(&c->node->beats_ok[from_idx], true,
					      memory_order_relaxed);
		beats_in(c, from_node, &f);
		return;
	}
	if (f.kind != PEER_MSG_RAFT) {
		if (c->frame_fn && (f.kind == PEER_MSG_FORWARD || f.kind == PEER_MSG_FORWARD_REPLY))
			c->frame_fn(c->frame_arg, from_node, &f);
		else
			c->stats.dropped_other++;
		return;
	}
	while ((rv = peer_msg_next(&f, &group, &m)) == 1) {
		if (!msg_ok(c, from_node, group, &m, &core)) {
			c->stats.dropped_bad++;
			continue;
		}
		if (core == c->index) {
			step_local(c, group, &m);
			continue;
		}
		struct cluster_core *to = atomic_load(&c->node->cores[core]);
		struct xmsg *x = to ? malloc(sizeof *x + f.msg_bytes.len) : NULL;

		if (!x) {
			c->stats.dropped_bad++;
			continue;
		}
		x->base.handle = xmsg_handle;
		x->to = to;
		x->len = f.msg_bytes.len;
		memcpy(x->bytes, f.msg_bytes.data, f.msg_bytes.len);
		reactor_send(c->r, core, &x->base);
		c->stats.msgs_forwarded++;
	}
	if (rv < 0)
		c->stats.dropped_bad++;
}

static int hello_make(void *arg, uint64_t to_node, uint8_t *buf, size_t cap)
{
	struct cluster_core *c = arg;
	struct peer_msg_hello h = {
		.cluster_id = c->node->map.cluster_id,
		.node_id = c->node->cfg.self_id,
		.from_core = c->index,
		.to_core = c->index,
		.version = PEER_MSG_VERSION,
		.to_node_id = to_node,
		.client_address = { (const uint8_t *)c->client_addrs.self.client,
				    (uint32_t)strlen(c->client_addrs.self.client) },
		.resp_address = { (const uint8_t *)c->client_addrs.self.resp,
				  (uint32_t)strlen(c->client_addrs.self.resp) },
		.cores = c->node->cfg.cores,
		.slot_function = c->node->cfg.slot_function ? c->node->cfg.slot_function : 1,
		.data_dir_id = c->node->data_dir_id,
		.data_dir_new = c->node->data_dir_new,
		.boot_id = c->node->boot_id,
	};
	struct peer_msg_buf b;
	int len = -1;

	peer_msg_buf_init(&b);
	if (peer_msg_encode_hello(&b, &h) == 0 && b.len - PEER_MSG_HEADER_SIZE <= cap) {
		len = (int)(b.len - PEER_MSG_HEADER_SIZE);
		memcpy(buf, b.data + PEER_MSG_HEADER_SIZE, (size_t)len);
	}
	peer_msg_buf_free(&b);
	return len;
}

/* The connection comes from the node's own peer address (outbound sockets
 * bind it before connecting). A host that is a name, not an address
 * literal, is not checked here. */
static bool from_matches(const struct cluster_map_node *node, const struct sockaddr *from)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (!from)
		return true;
	if (inet_pton(AF_INET, node->host, &a4) == 1)
		return from->sa_family == AF_INET &&
		       ((const struct sockaddr_in *)from)->sin_addr.s_addr == a4.s_addr;
	if (inet_pton(AF_INET6, node->host, &a6) == 1)
		return from->sa_family == AF_INET6 &&
		       memcmp(&((const struct sockaddr_in6 *)from)->sin6_addr, &a6,
			      sizeof a6) == 0;
	return true;
}

/* Two nodes that place keys by different slot functions would send a key's
 * writes to different shards: they never talk. A hello without the field
 * comes from a build before hash tags, which knows function 1 only. */
static bool slot_function_agrees(const struct cluster_core *c, uint32_t theirs, char *err,
				 size_t errlen)
{
	unsigned ours = c->node->cfg.slot_function ? c->node->cfg.slot_function : 1;

	if (theirs == 0)
		theirs = 1;
	if (theirs == ours)
		return true;
	snprintf(err, errlen, "slot function %" PRIu32 " (its data dir's CLUSTER), ours is %u: "
		 "nodes that place keys differently must not form one cluster",
		 theirs, ours);
	return false;
}

static int hello_check(void *arg, const uint8_t *hello, size_t len,
		       const struct sockaddr *from, uint64_t *from_node,
		       unsigned *target_core, char *err, size_t errlen)
{
	struct cluster_core *c = arg;
	struct peer_msg_frame f;
	int rv;

	rv = peer_msg_decode(&f, hello, len, &c->limits, NULL, 0);
	if (rv != 0 || f.kind != PEER_MSG_HELLO) {
		snprintf(err, errlen, "not a hello");
		return -1;
	}
	if (f.hello.cluster_id != c->node->map.cluster_id) {
		snprintf(err, errlen, "cluster id %016" PRIx64 ", ours is %016" PRIx64,
			 f.hello.cluster_id, c->node->map.cluster_id);
		return -1;
	}
	if (!slot_function_agrees(c, f.hello.slot_function, err, errlen))
		return -1;
	if (f.hello.to_node_id != 0 && f.hello.to_node_id != c->node->cfg.self_id) {
		snprintf(err, errlen, "addressed to node %" PRIu64 ", this is node %" PRIu64,
			 f.hello.to_node_id, c->node->cfg.self_id);
		return -1;
	}
	if (f.hello.node_id == c->node->cfg.self_id ||
	    cluster_map_index(&c->node->map, f.hello.node_id) < 0) {
		snprintf(err, errlen, "node %" PRIu64 " is not a peer of this cluster",
			 f.hello.node_id);
		return -1;
	}
	if (!from_matches(&c->node->map.nodes[cluster_map_index(&c->node->map, f.hello.node_id)],
			  from)) {
		snprintf(err, errlen, "node %" PRIu64 " connected from an address that is not its "
			 "peer address", f.hello.node_id);
		return -1;
	}
	client_addrs_learn(&c->client_addrs.nodes[cluster_map_index(&c->node->map,
								    f.hello.node_id)],
			   f.hello.client_address, f.hello.resp_address, f.hello.cores,
			   c->r->now_us);
	replica_wiped_hello(c->node, f.hello.node_id, f.hello.data_dir_id, f.hello.data_dir_new);
	if (f.hello.boot_id != 0)
		atomic_store(&c->node->peer_boot_id[cluster_map_index(&c->node->map,
								       f.hello.node_id)],
			     f.hello.boot_id);
	*from_node = f.hello.node_id;
	*target_core = f.hello.to_core % c->node->cfg.cores;
	/* a new connection: the node (re)started or reconnected; sleeping
	 * groups with a member there wake (liveness_check). It may be an
	 * older build now: plain heartbeats until it sends a Heartbeats
	 * frame again. */
	atomic_fetch_add(&c->node->hellos[cluster_map_index(&c->node->map, f.hello.node_id)], 1);
	atomic_store_explicit(&c->node->beats_ok[cluster_map_index(&c->node->map,
								   f.hello.node_id)],
			      false, memory_order_relaxed);
	return 0;
}

void cluster_peer_callbacks(struct peer_callbacks *cb)
{
	cb->hello_make = hello_make;
	cb->hello_check = hello_check;
	cb->on_frame = on_frame;
}

/* Closes and frees what the core holds; the core itself too when
 * `free_self` (its hook, if registered, will not run again). */
static void close_all(struct cluster_core *c, bool free_self)
{
	for (size_t i = 0; i < c->nreps; i++) {
		/* No pin may outlive the shard (shard_close's precondition). */
		snapshot_send_stop(c->reps[i]);
		if (c->reps[i]->shard)
			shard_close(c->reps[i]->shard);
		replica_free(c->reps[i]);
	}
	c->nreps = 0;
	c->nbg = 0;
	replica_move_core_free(c);
	if (c->log)
		core_log_close(c->log);
	if (c->cache)
		block_cache_destroy(c->cache);
	for (unsigned i = 0; i < CLUSTER_MAP_MAX_NODES; i++)
		for (unsigned k = 0; k < 2; k++)
			peer_msg_buf_free(&c->out[i][k].buf);
	free(c->by_shard);
	free(c->reps);
	free(c->dirty);
	free(c->dirty_next);
	free(c->bg);
	free(c->awake);
	c->awake = NULL;
	c->nawake = 0;
	for (unsigned i = 0; i < CLUSTER_MAP_MAX_NODES; i++) {
		free(c->beats[i].v);
		c->beats[i] = (struct beat_out){ 0 };
	}
	peer_msg_buf_free(&c->beat_buf);
	free(c->scratch);
	free(c->dec);
	cluster_leaders_destroy(c->leaders);
	c->leaders = NULL;
	c->by_shard = NULL;
	c->reps = NULL;
	c->dirty = c->dirty_next = NULL;
	c->bg = NULL;
	c->nbg = 0;
	c->scratch = NULL;
	c->dec = NULL;
	c->log = NULL;
	c->cache = NULL;
	c->dead = true;
	if (free_self)
		free(c);
}

int cluster_core_start(struct cluster_node *n, struct reactor *r, struct peer_net *net,
		       struct cluster_core **out, char *err, size_t errlen)
{
	const struct cluster_map *map = &n->map;
	struct cluster_core *c;
	struct core_log_config lc = { 0 };
	struct block_cache_options copt = { .capacity = n->cfg.cache_bytes };
	int rv = -ENOMEM;

	c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->node = n;
	c->r = r;
	c->index = r->id;
	c->net = net;
	c->mem_budget.limit = n->cfg.memtable_budget;
	peer_msg_limits_default(&c->limits);
	raft_rng_seed(&c->rng, n->cfg.seed * 1000003u + r->id);
	c->election_ticks = n->cfg.election_timeout_ms / n->cfg.heartbeat_ms;
	if (c->election_ticks < 2)
		c->election_ticks = 2;
	c->by_shard = calloc(map->shards, sizeof *c->by_shard);
	c->reps = calloc(map->shards, sizeof *c->reps);
	c->dirty = calloc(map->shards, sizeof *c->dirty);
	c->dirty_next = calloc(map->shards, sizeof *c->dirty_next);
	c->bg = calloc(map->shards, sizeof *c->bg);
	c->awake = calloc(map->shards, sizeof *c->awake);
	peer_msg_buf_init(&c->beat_buf);
	if (!c->by_shard || !c->reps || !c->dirty || !c->dirty_next || !c->bg || !c->awake ||
	    cluster_leaders_create(&c->leaders, map->shards) != 0 ||
	    block_cache_create(&c->cache, &copt) != 0)
		goto fail;
	if (mkdir(n->data_dir, 0755) != 0 && errno != EEXIST) {
		rv = -errno;
		snprintf(err, errlen, "%s: %s", n->data_dir, strerror(errno));
		goto fail;
	}
	rv = replica_move_core_start(c, err, errlen);
	if (rv)
		goto fail;
	rv = cluster_core_open_replicas(c, err, errlen);
	if (rv)
		goto fail;
	/* The log keeps the pointer, not a copy: the path lives in c. */
	snprintf(c->log_dir, sizeof c->log_dir, "%s/core-%u", n->data_dir, c->index);
	lc.dir = c->log_dir;
	lc.segment_size = n->cfg.core_log_segment_size;
	lc.buffered = n->cfg.core_log_buffered;
	lc.restore = cluster_core_log_restore;
	lc.restore_arg = c;
	lc.persisted = cluster_core_log_persisted;
	lc.persisted_arg = c;
	rv = core_log_open(&c->log, &lc, &r->io, err, errlen);
	if (rv == RKV_ECORRUPT)
		rv = cluster_core_log_repair(c, &lc, err, errlen);
	if (rv)
		goto fail;
	replica_move_core_log_open(c);
	for (size_t i = 0; i < c->nreps; i++) {
		rv = cluster_core_restore_group(c, c->reps[i], err, errlen);
		if (rv)
			goto fail;
	}
	/* Our hook first: the transport's send hook then sends this pass's
	 * batches in the same pass. */
	rv = reactor_add_hook(r, core_hook, c);
	if (rv) {
		snprintf(err, errlen, "core %u: no room for a hook", c->index);
		goto fail;
	}
	c->hooked = true;
	if (net) {
		rv = peer_core_start(net, r, c, &c->pc, err, errlen);
		if (rv)
			goto fail;
	}
	atomic_store(&n->cores[c->index], c);
	c->stats.replicas = c->nreps;
	timer_init(&c->tick, tick_fired, c);
	reactor_timer_arm(r, &c->tick, (uint64_t)n->cfg.heartbeat_ms * 1000u, tick_fired, c);
	/* A fresh group's preferred first leader campaigns at once, so first
	 * leaders spread as placed. */
	for (size_t i = 0; i < c->nreps; i++) {
		struct replica *rep = c->reps[i];

		/* A group of one (a one-node cluster) elects itself at once,
		 * after a restart too: nobody else can, and clients should
		 * not wait an election timeout for it. */
		if (rep->amnesiac || replica_wiped_probing(rep))
			continue; /* a probing one campaigns once settled */
		if (raft_conf(rep->raft)->n == 1 &&
		    raft_conf_role(raft_conf(rep->raft), raft_id(rep->raft)) == RAFT_VOTER) {
			replica_step(rep, &(struct raft_event){ .type = RAFT_EV_CAMPAIGN });
			continue;
		}
		if (raft_term(rep->raft) != 0 || rep->joining)
			continue;
		if (cluster_map_first(map, rep->id) == n->self_index)
			replica_step(rep, &(struct raft_event){ .type = RAFT_EV_CAMPAIGN });
		else
			rep->tick_hold = FIRST_ELECTION_HOLD * c->election_ticks;
	}
	*out = c;
	return 0;
fail:
	/* A hook cannot be removed: once it is registered, the core stays
	 * allocated (marked dead, the hook returns at once) and leaks. */
	close_all(c, !c->hooked);
	return rv;
}

/* ---- stop ----------------------------------------------------------------------------- */

void cluster_core_stop(struct cluster_core *c)
{
	c->stopping = true;
	c->stop_deadline_us = c->r->now_us + (uint64_t)c->node->cfg.stop_grace_ms * 1000u;
	for (size_t i = 0; i < c->nreps; i++) {
		struct replica *rep = c->reps[i];
		uint64_t best;

		if (raft_role(rep->raft) != RAFT_LEADER || rep->retired)
			continue;
		best = replica_best_follower(rep, RAFT_NONE);
		if (best != RAFT_NONE)
			replica_step(rep, &(struct raft_event){ .type = RAFT_EV_TRANSFER,
								 .transfer = { .target = best } });
	}
	reactor_poll_again(c->r);
}

bool cluster_core_quiescent(struct cluster_core *c)
{
	bool idle = true;

	if (!c->grace_over) {
		bool pending = false;

		for (size_t i = 0; i < c->nreps; i++) {
			struct replica *rep = c->reps[i];

			if ((raft_role(rep->raft) == RAFT_LEADER && raft_conf(rep->raft)->n > 1) ||
			    !replica_idle(rep) || !shard_background_idle(rep->shard) ||
			    rep->installing)
				pending = true;
		}
		if (pending && c->r->now_us < c->stop_deadline_us)
			return false;
		c->grace_over = true;
		for (size_t i = 0; i < c->nreps; i++)
			replica_fail_all(c->reps[i], RKV_EUNKNOWN, RKV_ESHUTDOWN);
		reactor_timer_cancel(c->r, &c->tick);
		if (c->pc)
			peer_core_stop(c->pc);
	}
	for (size_t i = 0; i < c->nreps; i++) {
		if (!shard_idle(c->reps[i]->shard))
			idle = false;
		/* Streams end here: pins go, ring ops of the receiver drain. */
		if (!snapshot_send_stop(c->reps[i]) || !snapshot_recv_stop(c->reps[i]) ||
		    c->reps[i]->join_unlinking || !replica_conf_idle(c->reps[i]) ||
		    !replica_origin_idle(c->reps[i]) || !replica_wiped_idle(c->reps[i]) ||
		    (c->reps[i]->join_file_ready && !ring_file_idle(&c->reps[i]->join_file)))
			idle = false;
	}
	if (!core_log_idle(c->log) || !replica_move_idle(c))
		idle = false;
	if (c->pc && !peer_core_quiescent(c->pc))
		idle = false;
	return idle;
}

void cluster_core_finish(struct cluster_core *c)
{
	reactor_timer_cancel(c->r, &c->tick);
	atomic_store(&c->node->cores[c->index], NULL);
	if (c->pc)
		peer_core_finish(c->pc);
	c->pc = NULL;
	close_all(c, true); /* the loop has ended: the hook never runs again */
	raft_log_cache_release(); /* every log of this thread is freed */
	ring_file_forget_all();   /* and every replica's ring_file */
}

void cluster_core_on_shard_swap(struct cluster_core *c, cluster_shard_swap_fn *fn, void *arg)
{
	c->swap_fn = fn;
	c->swap_arg = arg;
}

struct replica *cluster_core_replica(struct cluster_core *c, uint32_t shard)
{
	return shard < c->node->map.shards ? c->by_shard[shard] : NULL;
}

void cluster_core_stats(const struct cluster_core *c, struct cluster_core_stats *out)
{
	*out = c->stats;
}

struct block_cache *cluster_core_cache(struct cluster_core *c)
{
	return c->cache;
}

const struct peer_core *cluster_core_peers(const struct cluster_core *c)
{
	return c->pc;
}

struct core_log *cluster_core_log(struct cluster_core *c)
{
	return c->log;
}

void cluster_core_set_frame_handler(struct cluster_core *c, cluster_frame_fn *fn, void *arg)
{
	c->frame_fn = fn;
	c->frame_arg = arg;
}

int cluster_core_send_control(struct cluster_core *c, uint64_t to, const void *payload,
			      size_t len)
{
	if (!c->pc || to == c->node->cfg.self_id || cluster_map_index(&c->node->map, to) < 0)
		return -ENOENT;
	return peer_send(c->pc, to, PEER_CONTROL, payload, len);
}

bool cluster_core_peer_connected(const struct cluster_core *c, uint64_t to)
{
	return c->pc && peer_core_connected(c->pc, to);
}

int cluster_node_shard_core(const struct cluster_node *n, uint32_t shard)
{
	int core = shard < n->map.shards ? atomic_load(&n->core_of[shard]) : -1;

	return core >= 0 ? core : -1;
}

uint32_t cluster_node_election_timeout_ms(const struct cluster_node *n)
{
	return n->cfg.election_timeout_ms; /* the default filled in at creation */
}

const struct cluster_map *cluster_core_map(const struct cluster_core *c)
{
	return &c->node->map;
}

uint64_t cluster_core_self(const struct cluster_core *c)
{
	return c->node->cfg.self_id;
}
