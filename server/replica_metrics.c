/*
 * Per-replica /metrics series, gathered by message from every core and
 * formatted on the origin; see server/replica_metrics.h. Invariant: a
 * core's buffer is written only by that core, between receiving its message
 * and sending it home, and read only by the origin after it came home.
 */
#include "server/replica_metrics.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/replica.h"
#include "server/node.h"

int replica_metrics_init(struct replica_metrics *rm, unsigned cores, unsigned origin)
{
	assert(origin < cores);
	memset(rm, 0, sizeof *rm);
	rm->cores = cores;
	rm->origin = origin;
	rm->msgs = calloc(cores, sizeof *rm->msgs);
	return rm->msgs ? 0 : -ENOMEM;
}

void replica_metrics_destroy(struct replica_metrics *rm)
{
	if (rm->msgs)
		for (unsigned i = 0; i < rm->cores; i++) {
			free(rm->msgs[i].rows);
			free(rm->msgs[i].followers);
		}
	free(rm->msgs);
	free(rm->order);
	memset(rm, 0, sizeof *rm);
}

/* Grows *buf (of *cap elements of `size`) to hold `need`, doubling. */
static bool grow(void **buf, uint32_t *cap, uint32_t need, size_t size)
{
	uint32_t n = *cap ? *cap : 64;
	void *grown;

	if (need <= *cap)
		return true;
	while (n < need)
		n *= 2;
	grown = realloc(*buf, (size_t)n * size);
	if (!grown)
		return false;
	*buf = grown;
	*cap = n;
	return true;
}

/* Origin core: one core's rows are home. */
static void on_rows(struct reactor *r, struct reactor_msg *msg)
{
	struct replica_metrics_msg *m = (struct replica_metrics_msg *)msg;
	struct replica_metrics *rm = m->owner;

	(void)r;
	assert(rm->pending > 0);
	if (--rm->pending == 0)
		rm->done(rm, rm->arg);
}

/* Core m->core: a row per replica it holds, then the message goes home
 * (with none once the core has finished: r->user is gone). */
static void on_gather(struct reactor *r, struct reactor_msg *msg)
{
	struct replica_metrics_msg *m = (struct replica_metrics_msg *)msg;
	struct node_core *c = r->user;
	struct replica_status st;

	assert(r->id == m->core);
	m->count = 0;
	m->n_followers = 0;
	m->failed = false;
	for (unsigned i = 0; c && i < c->node->shards && !m->failed; i++) {
		struct replica_metrics_row *row;

		if (!c->replicas[i])
			continue;
		replica_status(c->replicas[i], &st);
		if (!grow((void **)&m->rows, &m->cap, m->count + 1, sizeof *m->rows) ||
		    !grow((void **)&m->followers, &m->followers_cap,
			  m->n_followers + st.n_followers, sizeof *m->followers)) {
			m->failed = true;
			break;
		}
		row = &m->rows[m->count++];
		*row = (struct replica_metrics_row){
			.shard = st.shard,
			.core = (uint16_t)m->core,
			.role = (uint8_t)st.role,
			.n_followers = (uint8_t)st.n_followers,
			.first_follower = m->n_followers,
			.term = st.term,
			.commit = st.commit,
			.applied = st.applied,
			.leader_changes = st.leader_changes,
			.snapshots_sent = st.snap_sent,
			.snapshots_sent_bytes = st.snap_send_bytes,
			.snapshots_received = st.snap_installed,
			.snapshots_received_bytes = st.snap_recv_bytes,
		};
		for (unsigned f = 0; f < st.n_followers; f++)
			m->followers[m->n_followers++] = (struct replica_metrics_follower){
				.node = st.followers[f].node, .lag = st.followers[f].lag,
			};
	}
	m->msg.handle = on_rows;
	reactor_send(r, m->owner->origin, &m->msg);
}

void replica_metrics_start(struct reactor *r, struct replica_metrics *rm,
			   replica_metrics_done_fn *done, void *arg)
{
	assert(!replica_metrics_busy(rm) && r->id == rm->origin);
	rm->done = done;
	rm->arg = arg;
	rm->pending = rm->cores;
	for (unsigned i = 0; i < rm->cores; i++) {
		rm->msgs[i].owner = rm;
		rm->msgs[i].core = i;
		rm->msgs[i].msg.handle = on_gather;
		reactor_send(r, i, &rm->msgs[i].msg);
	}
}

uint64_t replica_metrics_count(const struct replica_metrics *rm)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < rm->cores; i++)
		n += rm->msgs[i].count;
	return n;
}

/* ---- text ---------------------------------------------------------------- */

static int by_shard(const void *a, const void *b)
{
	const struct replica_metrics_row *x = *(const struct replica_metrics_row *const *)a;
	const struct replica_metrics_row *y = *(const struct replica_metrics_row *const *)b;

	return x->shard < y->shard ? -1 : x->shard > y->shard;
}

/* The families whose value is one field of the row. */
static const struct {
	const char *name;
	bool counter;
	size_t field;
	const char *help;
} families[] = {
	{ "ringkv_replica_term", false, offsetof(struct replica_metrics_row, term),
	  "Raft term of the replica." },
	{ "ringkv_replica_commit_index", false, offsetof(struct replica_metrics_row, commit),
	  "Highest log index the replica knows committed." },
	{ "ringkv_replica_applied_index", false, offsetof(struct replica_metrics_row, applied),
	  "Highest log index applied to the replica's shard." },
	{ "ringkv_replica_leader_changes_total", true,
	  offsetof(struct replica_metrics_row, leader_changes),
	  "Times the replica learned of a leader other than the last it knew "
	  "(the first one included), since it was opened." },
	{ "ringkv_replica_snapshots_sent_total", true,
	  offsetof(struct replica_metrics_row, snapshots_sent),
	  "Snapshot streams the replica completed to a follower, as leader." },
	{ "ringkv_replica_snapshots_sent_bytes_total", true,
	  offsetof(struct replica_metrics_row, snapshots_sent_bytes),
	  "Bytes of snapshot streams the replica sent." },
	{ "ringkv_replica_snapshots_received_total", true,
	  offsetof(struct replica_metrics_row, snapshots_received),
	  "Snapshots the replica received from a leader and installed." },
	{ "ringkv_replica_snapshots_received_bytes_total", true,
	  offsetof(struct replica_metrics_row, snapshots_received_bytes),
	  "Bytes of snapshot streams the replica received." },
};

static void header(struct metrics_buf *b, const char *name, const char *type,
		   const char *help)
{
	metrics_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int replica_metrics_format(struct replica_metrics *rm, bool enabled, struct metrics_buf *out)
{
	uint32_t n = 0, i;

	header(out, "ringkv_metrics_per_replica_enabled", "gauge",
	       "1 when the ringkv_replica_ series follow (--metrics-per-replica), 0 when "
	       "they are off or the node holds more replicas than "
	       "--metrics-per-replica-max allows in auto mode.");
	metrics_buf_printf(out, "ringkv_metrics_per_replica_enabled %d\n", enabled);
	if (!enabled)
		return out->failed ? -ENOMEM : 0;
	for (unsigned c = 0; c < rm->cores; c++)
		if (rm->msgs[c].failed)
			return -ENOMEM;
	if (!grow((void **)&rm->order, &rm->order_cap, (uint32_t)replica_metrics_count(rm),
		  sizeof *rm->order))
		return -ENOMEM;
	for (unsigned c = 0; c < rm->cores; c++)
		for (i = 0; i < rm->msgs[c].count; i++)
			rm->order[n++] = &rm->msgs[c].rows[i];
	if (n)
		qsort(rm->order, n, sizeof *rm->order, by_shard);

	header(out, "ringkv_replica_role", "gauge",
	       "1 for the replica's current Raft role (follower, precandidate, "
	       "candidate, leader).");
	for (i = 0; i < n; i++)
		metrics_buf_printf(out, "ringkv_replica_role{shard=\"%" PRIu32 "\",core=\"%u\","
				   "role=\"%s\"} 1\n", rm->order[i]->shard,
				   (unsigned)rm->order[i]->core,
				   raft_role_name(rm->order[i]->role));
	for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
		header(out, families[f].name, families[f].counter ? "counter" : "gauge",
		       families[f].help);
		for (i = 0; i < n; i++) {
			const struct replica_metrics_row *row = rm->order[i];
			uint64_t v;

			memcpy(&v, (const char *)row + families[f].field, sizeof v);
			metrics_buf_printf(out, "%s{shard=\"%" PRIu32 "\",core=\"%u\"} %" PRIu64 "\n",
					   families[f].name, row->shard, (unsigned)row->core, v);
		}
	}
	header(out, "ringkv_replica_follower_lag_entries", "gauge",
	       "On a leader replica, per follower node: the leader's last log index "
	       "minus the follower's match index.");
	for (i = 0; i < n; i++) {
		const struct replica_metrics_row *row = rm->order[i];
		const struct replica_metrics_follower *fl;

		if (!row->n_followers)
			continue; /* (followers may be NULL: no offset from it) */
		fl = rm->msgs[row->core].followers + row->first_follower;
		for (unsigned f = 0; f < row->n_followers; f++)
			metrics_buf_printf(out, "ringkv_replica_follower_lag_entries{shard=\"%"
					   PRIu32 "\",core=\"%u\",follower=\"%" PRIu64 "\"} %"
					   PRIu64 "\n", row->shard, (unsigned)row->core, fl[f].node,
					   fl[f].lag);
	}
	return out->failed ? -ENOMEM : 0;
}
