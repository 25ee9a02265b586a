/*
 * The fixture of the replication engine's tests (test_replica*.c,
 * test_wiped_probe.c): each "node" is its own reactor group of two cores
 * (or one) with its own data dir, all in this process, talking through the
 * real peer transport on 127.X.Y.11-15 (X.Y from the pid). Jobs run on
 * every core of a node from a polling timer and record what they saw; the
 * test thread checks after the job is done (reactor threads never call
 * cmocka asserts).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cluster/peer.h"
#include "cluster/peer_msg.h"
#include "cluster/replica_internal.h" /* struct cluster_core: a frame's node */
#include "core/topology.h"
#include "replica_fixture.h"

struct tnode nodes[MAX_NODES + 1];
struct cluster_map map;
bool node_join_existing[MAX_NODES + 1];
unsigned ip_x, ip_y;
struct topology *topo;
unsigned cpus[CORES];
char root[128];
struct twrite writes[MAX_OPS];
struct tread reads[MAX_OPS];
unsigned key_space;
uint64_t memtable_size = 1u << 20;
uint64_t segment_size;
unsigned value_pad;
uint32_t proposal_timeout_ms;
uint32_t election_ms[MAX_NODES + 1];
unsigned excluded;
size_t bulk_limit[MAX_NODES + 1];
uint64_t snapshot_lag;
shard_install_hook_fn *install_hook;
atomic_int lose_chunk;
bool auto_repair;
bool no_rejoin;
deliver_fn *_Atomic deliver_filter;
/* cluster_peer_callbacks' frame handler, behind filtered_frame. */
static void (*cluster_on_frame)(void *arg, uint64_t from_node, const uint8_t *data, size_t len);

/* Every node's snapshot_chunk_hook: loses one chunk when a test asks. */
static bool chunk_hook(uint64_t to, uint64_t seq, bool last)
{
	int want = seq == 0 ? LOSE_FIRST : LOSE_LAST;

	if (to != 3)
		return true;
	if (atomic_load(&lose_chunk) == LOSE_ALL) {
		if (last)
			atomic_store(&lose_chunk, LOSE_NONE);
		return false;
	}
	want = last && atomic_load(&lose_chunk) == LOSE_LAST_THEN_ALL ? LOSE_LAST_THEN_ALL : want;
	if (want == LOSE_LAST_THEN_ALL)
		return !atomic_compare_exchange_strong(&lose_chunk, &want, LOSE_ALL);
	if (want == LOSE_LAST && !last)
		return true;
	return !atomic_compare_exchange_strong(&lose_chunk, &want, LOSE_NONE);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * Every node's frame handler: the engine's, behind deliver_filter when a
 * test set one. A Raft batch is decoded and each message the filter keeps
 * goes on in a frame of its own, encoded before the next one is decoded.
 */
static void filtered_frame(void *arg, uint64_t from, const uint8_t *data, size_t len)
{
	deliver_fn *keep = atomic_load(&deliver_filter);
	const struct cluster_core *c = arg;
	struct peer_msg_limits limits;
	struct raft_entry *scratch;
	struct peer_msg_frame f;
	struct peer_msg_buf out;
	struct raft_msg m;
	uint64_t to, group;
	bool whole;
	int rv;

	if (!keep) {
		cluster_on_frame(arg, from, data, len);
		return;
	}
	to = c->node->cfg.self_id;
	peer_msg_limits_default(&limits);
	scratch = malloc(limits.max_entries * sizeof *scratch);
	rv = scratch ? peer_msg_decode(&f, data, len, &limits, scratch, limits.max_entries)
		     : -ENOMEM;
	if (rv != 0 || f.kind != PEER_MSG_RAFT) {
		whole = rv == 0 && f.kind != PEER_MSG_HEARTBEATS ? true : keep(from, to, 0, NULL);
		free(scratch);
		if (whole)
			cluster_on_frame(arg, from, data, len);
		return;
	}
	peer_msg_buf_init(&out);
	while (peer_msg_next(&f, &group, &m) == 1) {
		struct peer_msg_item item = { group, &m };

		if (!keep(from, to, group, &m))
			continue;
		out.len = 0;
		if (peer_msg_encode_batch(&out, &limits, &item, 1) == 0)
			cluster_on_frame(arg, from, out.data + PEER_MSG_HEADER_SIZE,
					 out.len - PEER_MSG_HEADER_SIZE);
	}
	peer_msg_buf_free(&out);
	free(scratch);
}

/* ---- jobs: run on every core of a node from a polling timer ---- */

static void poll_fired(struct timer *t, void *arg)
{
	struct tcore *c = arg;
	unsigned seq = atomic_load(&c->node->job_seq);

	(void)t;
	if (seq != c->job_seen) {
		c->job_seen = seq;
		c->job_active = true;
		c->job_calls = 0;
	}
	if (c->job_active && c->node->job(c)) {
		c->job_active = false;
		atomic_fetch_add(&c->node->job_done, 1);
	} else if (c->job_active) {
		c->job_calls++;
	}
	reactor_timer_arm(c->r, &c->poll, 2000, poll_fired, c);
}

void run_job(struct tnode *n, bool (*job)(struct tcore *c))
{
	uint64_t t0 = mono_us();

	n->job = job;
	atomic_store(&n->job_done, 0);
	atomic_fetch_add(&n->job_seq, 1);
	while (atomic_load(&n->job_done) < n->ncores && mono_us() - t0 < 20000000)
		sleep_ms(1);
	assert_int_equal(atomic_load(&n->job_done), n->ncores);
}

void key_name(char *buf, size_t cap, unsigned i)
{
	snprintf(buf, cap, "k%u", i);
}

void write_done(struct shard_waiter *w, int rv, const struct shard_result *res)
{
	struct twrite *tw = (struct twrite *)w;

	(void)res;
	tw->rv = rv;
	atomic_store(&tw->done, 1);
}

int propose_write(struct replica *rep, unsigned i)
{
	struct twrite *tw = &writes[i];
	struct command cmd = { .op = COMMAND_PUT };

	memset(&tw->w, 0, sizeof tw->w);
	tw->w.done = write_done;
	atomic_store(&tw->done, 0);
	key_name(tw->key, sizeof tw->key, i % key_space);
	snprintf(tw->value, sizeof tw->value, "v%u-%0*u", i, (int)value_pad, 0u);
	cmd.key = (const uint8_t *)tw->key;
	cmd.key_len = (uint32_t)strlen(tw->key);
	cmd.value = (const uint8_t *)tw->value;
	cmd.value_len = (uint32_t)strlen(tw->value);
	return replica_propose(rep, &cmd, &tw->w);
}

/* Proposes writes[first, first+count) on job_shard if this core leads it. */
bool job_propose(struct tcore *c)
{
	struct tnode *n = c->node;
	struct replica *rep = cluster_core_replica(c->cc, n->job_shard);

	if (!rep)
		return true;
	for (unsigned i = n->job_first; i < n->job_first + n->job_count; i++)
		n->job_rv[i] = propose_write(rep, i);
	return true;
}

static bool value_is(const struct tread *tr, const void *v, size_t len)
{
	return len == strlen(tr->value) && memcmp(v, tr->value, len) == 0;
}

static void key_read_done(struct shard_read *srd, int rv, const void *value, size_t len)
{
	struct tread *tr = srd->arg;

	tr->found = rv == 0 && value_is(tr, value, len);
	atomic_store(&tr->done, 1);
}

/* Allowed to read: the key is read from the shard (memory, or its block
 * from disk when a flush moved it into an SSTable). */
static void read_done(struct replica_read *rd, int status)
{
	struct tread *tr = (struct tread *)rd;
	struct tcore *c = rd->arg;
	struct replica *rep = cluster_core_replica(c->cc, tr->shard);
	const void *v;
	size_t len;
	int rv;

	tr->status = status;
	tr->found = 0;
	if (status != 0) {
		atomic_store(&tr->done, 1);
		return;
	}
	tr->srd.done = key_read_done;
	tr->srd.arg = tr;
	rv = shard_read(replica_shard(rep), tr->key, strlen(tr->key), &tr->srd, &v, &len);
	if (rv == SHARD_READ_PENDING)
		return;
	tr->found = rv == 0 && value_is(tr, v, len);
	atomic_store(&tr->done, 1);
}

/* Reads the keys of writes[first, first+count) through ReadIndex. */
bool job_read(struct tcore *c)
{
	struct tnode *n = c->node;
	struct replica *rep = cluster_core_replica(c->cc, n->job_shard);

	if (!rep)
		return true;
	for (unsigned i = n->job_first; i < n->job_first + n->job_count; i++) {
		struct tread *tr = &reads[i];

		memset(tr, 0, sizeof *tr);
		tr->rd.done = read_done;
		tr->rd.arg = c;
		tr->key = writes[i].key;
		tr->value = writes[i].value;
		tr->shard = n->job_shard;
		n->job_rv[i] = replica_read(rep, &tr->rd);
	}
	return true;
}

static bool digest_key(void *arg, const void *key, size_t key_len, const void *value,
		       size_t value_len)
{
	struct tstatus *st = arg;
	uint64_t h = st->digest;

	for (size_t k = 0; k < key_len; k++)
		h = (h ^ ((const uint8_t *)key)[k]) * 1099511628211ull;
	h = (h ^ 0x100) * 1099511628211ull;
	for (size_t k = 0; k < value_len; k++)
		h = (h ^ ((const uint8_t *)value)[k]) * 1099511628211ull;
	st->digest = (h ^ 0x200) * 1099511628211ull;
	st->keys++;
	return true;
}

static void digest_done(void *arg, int rv, bool exhausted, const void *last, size_t last_len)
{
	struct tstatus *st = arg;

	(void)last;
	(void)last_len;
	st->scan_rv = rv != 0 ? rv : exhausted ? 0 : -EAGAIN;
	st->core->scans--;
}

/* Status of every replica on the core and a digest of its whole contents
 * (a scan: keys in SSTables are read from disk as needed). */
static bool job_status(struct tcore *c)
{
	struct tnode *n = c->node;

	if (c->job_calls == 0) {
		c->scans = 0;
		for (uint32_t s = 0; s < map.shards; s++) {
			struct replica *rep = cluster_core_replica(c->cc, s);
			struct tstatus *st = &n->status[s];

			if (!rep)
				continue;
			st->here = true;
			replica_status(rep, &st->st);
			st->digest = 1469598103934665603ull;
			st->keys = 0;
			st->core = c;
			c->scans++;
			if (shard_scan(replica_shard(rep), "", 0, false, SIZE_MAX, digest_key,
				       digest_done, st) != 0) {
				st->scan_rv = -ENOMEM;
				c->scans--;
			}
		}
		core_log_stats(cluster_core_log(c->cc), &n->log_stats[c->r->id]);
		cluster_core_stats(c->cc, &n->core_stats[c->r->id]);
	}
	return c->scans == 0;
}

void refresh(struct tnode *n)
{
	memset(n->status, 0, sizeof n->status);
	run_job(n, job_status);
}

/* ---- reactor callbacks of a test node ---- */

static int core_start(struct reactor *r, void *arg, char *err, size_t errlen)
{
	struct tnode *n = arg;
	struct tcore *c = &n->cores[r->id];
	int rv;

	c->node = n;
	c->r = r;
	c->job_seen = atomic_load(&n->job_seq);
	rv = cluster_core_start(n->cn, r, n->net, &c->cc, err, errlen);
	if (rv)
		return rv;
	reactor_timer_arm(r, &c->poll, 2000, poll_fired, c);
	return 0;
}

static void core_stop(struct reactor *r, void *arg)
{
	struct tnode *n = arg;
	struct tcore *c = &n->cores[r->id];

	reactor_timer_cancel(r, &c->poll);
	cluster_core_stop(c->cc);
}

static bool core_quiescent(struct reactor *r, void *arg)
{
	struct tnode *n = arg;

	return cluster_core_quiescent(n->cores[r->id].cc);
}

static void core_finish(struct reactor *r, void *arg)
{
	struct tnode *n = arg;
	struct tcore *c = &n->cores[r->id];

	reactor_timer_cancel(r, &c->poll);
	cluster_core_finish(c->cc);
	c->cc = NULL;
}

/* ---- nodes ---- */

void node_addr_known(unsigned id, unsigned cores, uint16_t port)
{
	struct tnode *n = &nodes[id];

	memset(n, 0, sizeof *n);
	n->id = id;
	n->ncores = cores;
	snprintf(n->ip, sizeof n->ip, "127.%u.%u.%u", ip_x, ip_y, 10 + id);
	snprintf(n->dir, sizeof n->dir, "%s/n%u", root, id);
	n->addr.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, n->ip, &n->addr.sin_addr), 1);
	n->port = port;
	n->addr.sin_port = htons(port);
}

void node_addr_cores(unsigned id, unsigned cores)
{
	struct tnode *n = &nodes[id];
	char err[256];

	node_addr_known(id, cores, 0);
	assert_int_equal(peer_listen((struct sockaddr *)&n->addr, sizeof n->addr, cores, n->fds,
				     &n->port, err, sizeof err), 0);
	n->addr.sin_port = htons(n->port);
}

void node_addr(unsigned id)
{
	node_addr_cores(id, CORES);
}

void make_map(unsigned count, uint32_t shards, uint32_t replicas)
{
	struct cluster_map_node mn[MAX_NODES];
	char err[256];

	for (unsigned i = 0; i < count; i++) {
		memset(&mn[i], 0, sizeof mn[i]);
		mn[i].id = i + 1;
		if (count > 1) {
			snprintf(mn[i].host, sizeof mn[i].host, "%s", nodes[i + 1].ip);
			mn[i].port = nodes[i + 1].port;
		}
	}
	assert_int_equal(cluster_map_init(&map, mn, count, shards, replicas, "", err, sizeof err),
			 0);
}

void node_start(unsigned id, unsigned count)
{
	struct tnode *n = &nodes[id];
	struct reactor_callbacks cb = {
		.start = core_start, .stop = core_stop, .quiescent = core_quiescent,
		.finish = core_finish, .arg = n,
	};
	struct cluster_node_config cfg = { 0 };
	char err[256];

	cfg.map = &map;
	cfg.self_id = id;
	cfg.join_existing = node_join_existing[id];
	cfg.cores = n->ncores;
	cfg.data_dir = n->dir;
	cfg.shard.memtable_size = memtable_size;
	cfg.core_log_segment_size = segment_size;
	cfg.cache_bytes = 1u << 20;
	cfg.election_timeout_ms = election_ms[id] ? election_ms[id] : ELECTION_MS;
	cfg.heartbeat_ms = HEARTBEAT_MS;
	cfg.seed = id * 7919u + 1;
	cfg.proposal_timeout_ms = proposal_timeout_ms;
	cfg.snapshot_lag = snapshot_lag;
	cfg.install_step_hook = install_hook;
	cfg.snapshot_chunk_hook = chunk_hook;
	cfg.auto_repair = auto_repair;
	cfg.amnesia_no_rejoin = no_rejoin;
	assert_int_equal(cluster_node_create(&n->cn, &cfg, err, sizeof err), 0);
	n->net = NULL;
	if (count > 1) {
		if (n->fds[0] <= 0) {
			uint16_t port;

			assert_int_equal(peer_listen((struct sockaddr *)&n->addr, sizeof n->addr,
						     n->ncores, n->fds, &port, err, sizeof err), 0);
			assert_int_equal(port, n->port);
		}
		memset(&n->pcfg, 0, sizeof n->pcfg);
		n->pcfg.self_id = id;
		memcpy(&n->pcfg.self_addr, &n->addr, sizeof n->addr);
		n->pcfg.self_addrlen = sizeof n->addr;
		for (unsigned p = 1; p <= count; p++) {
			if (p == id)
				continue;
			n->pcfg.peers[n->pcfg.npeers].id = p;
			memcpy(&n->pcfg.peers[n->pcfg.npeers].addr, &nodes[p].addr,
			       sizeof nodes[p].addr);
			n->pcfg.peers[n->pcfg.npeers].addrlen = sizeof nodes[p].addr;
			n->pcfg.npeers++;
		}
		n->pcfg.listen_fds = n->fds;
		n->pcfg.backoff_min_us = 5000;
		n->pcfg.backoff_max_us = 100000;
		n->pcfg.bulk_limit = bulk_limit[id];
		cluster_peer_callbacks(&n->pcfg.cb);
		if (!cluster_on_frame) /* set once, before any reactor reads it */
			cluster_on_frame = n->pcfg.cb.on_frame;
		n->pcfg.cb.on_frame = filtered_frame;
		assert_int_equal(peer_net_create(&n->net, &n->pcfg, n->ncores, err, sizeof err), 0);
		n->fds[0] = n->fds[1] = -1; /* taken over */
	}
	if (reactor_group_start(&n->g, n->ncores, cpus, topo, &cb, err, sizeof err) != 0)
		fail_msg("node %u: %s", id, err);
}

void node_stop(unsigned id)
{
	struct tnode *n = &nodes[id];
	uint64_t t0 = mono_us();

	if (!n->g)
		return;
	reactor_group_stop(n->g);
	reactor_group_join(n->g);
	assert_true(mono_us() - t0 < 5000000);
	n->g = NULL;
	if (n->net)
		peer_net_destroy(n->net);
	n->net = NULL;
	cluster_node_destroy(n->cn);
	n->cn = NULL;
	n->fds[0] = n->fds[1] = 0;
}

bool node_up(unsigned id)
{
	return nodes[id].g != NULL;
}

/* The leader of `shard` that every running node agrees on, 0 if none yet. */
static uint64_t agreed_leader(unsigned count, uint32_t shard)
{
	uint64_t leader = 0;

	for (unsigned id = 1; id <= count; id++) {
		if (!node_up(id) || (excluded & (1u << id)))
			continue;
		refresh(&nodes[id]);
		if (!nodes[id].status[shard].here)
			continue;
		if (nodes[id].status[shard].st.role == RAFT_LEADER) {
			if (leader && leader != id)
				return 0;
			leader = id;
		}
	}
	if (!leader)
		return 0;
	for (unsigned id = 1; id <= count; id++)
		if (node_up(id) && !(excluded & (1u << id)) && nodes[id].status[shard].here &&
		    nodes[id].status[shard].st.leader != leader)
			return 0;
	return leader;
}

uint64_t wait_leader(unsigned count, uint32_t shard, unsigned timeout_ms)
{
	uint64_t t0 = mono_us(), leader;

	while ((leader = agreed_leader(count, shard)) == 0 &&
	       mono_us() - t0 < timeout_ms * 1000ull)
		sleep_ms(10);
	return leader;
}

bool wait_writes(unsigned first, unsigned count, unsigned timeout_ms)
{
	uint64_t t0 = mono_us();

	for (unsigned i = first; i < first + count; i++)
		while (!atomic_load(&writes[i].done)) {
			if (mono_us() - t0 > timeout_ms * 1000ull)
				return false;
			sleep_ms(1);
		}
	return true;
}

/* Proposes writes[first, +count) on the leader without waiting for them:
 * they are in flight while the next membership change is made. */
void write_async(uint64_t leader, uint32_t shard, unsigned first, unsigned count)
{
	struct tnode *n = &nodes[leader];

	n->job_shard = shard;
	n->job_first = first;
	n->job_count = count;
	for (unsigned i = first; i < first + count; i++)
		n->job_rv[i] = 1;
	run_job(n, job_propose);
	for (unsigned i = first; i < first + count; i++)
		assert_int_equal(n->job_rv[i], 0);
}

/* Proposes writes[first, +count) on node `leader`, checks every one is
 * accepted and acknowledged with 0. */
void write_ok(uint64_t leader, uint32_t shard, unsigned first, unsigned count)
{
	write_async(leader, shard, first, count);
	assert_true(wait_writes(first, count, 5000));
	for (unsigned i = first; i < first + count; i++)
		assert_int_equal(writes[i].rv, 0);
}

void read_ok(uint64_t leader, uint32_t shard, unsigned first, unsigned count)
{
	struct tnode *n = &nodes[leader];
	uint64_t t0 = mono_us();

	n->job_shard = shard;
	n->job_first = first;
	n->job_count = count;
	run_job(n, job_read);
	for (unsigned i = first; i < first + count; i++) {
		assert_int_equal(n->job_rv[i], 0);
		while (!atomic_load(&reads[i].done) && mono_us() - t0 < 5000000)
			sleep_ms(1);
		assert_true(atomic_load(&reads[i].done));
		assert_int_equal(reads[i].status, 0);
	}
	/* Only the last write of each key is what a read must see. */
	for (unsigned i = first; i < first + count; i++)
		if (i + key_space >= first + count)
			assert_true(reads[i].found);
}

/* Whether the replicas' statuses `st[0..n)` (the running ones holding the
 * shard) show a converged group: a leader knows the commit index, every
 * replica applied up to it, and all hold the same contents.
 *
 * A leader knows the commit index only once it has committed an entry of
 * its own term (§5.4.2; §8: a new leader's first entry is a no-op for this
 * reason). Until then its commit index is whatever it restored or learnt:
 * right after a restart, the snapshot point (the shard's flushed index),
 * which the shard has applied by construction, while the entries after it
 * are still in the log, not yet committed again. Every leader always has an
 * entry of its term at its last index, so with nothing being proposed
 * "commit >= last_index" says its commit index is of its own term. */
bool statuses_converged(const struct tstatus *st, unsigned n)
{
	uint64_t commit = 0;

	for (unsigned i = 0; i < n; i++) {
		if (st[i].st.role != RAFT_LEADER)
			continue;
		if (st[i].st.commit < st[i].st.last_index)
			return false;
		commit = st[i].st.commit;
	}
	if (commit == 0)
		return false;
	for (unsigned i = 0; i < n; i++)
		if (st[i].st.applied < commit || st[i].scan_rv != 0 ||
		    st[i].digest != st[0].digest)
			return false;
	return true;
}

/* Every running replica of `shard` applied what its leader committed and
 * holds the same contents, key by key. */
bool converged(unsigned count, uint32_t shard, unsigned timeout_ms)
{
	uint64_t t0 = mono_us();

	for (;;) {
		struct tstatus st[MAX_NODES];
		unsigned n = 0;

		for (unsigned id = 1; id <= count; id++) {
			if (!node_up(id) || (excluded & (1u << id)))
				continue;
			refresh(&nodes[id]);
			if (nodes[id].status[shard].here)
				st[n++] = nodes[id].status[shard];
		}
		if (statuses_converged(st, n))
			return true;
		if (mono_us() - t0 > timeout_ms * 1000ull)
			return false;
		sleep_ms(20);
	}
}

bool path_exists(const char *dir, const char *name)
{
	char path[600];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return stat(path, &st) == 0;
}

uint64_t three_nodes_written(unsigned rounds, unsigned *next)
{
	uint64_t leader;

	memtable_size = 64u << 10;
	value_pad = 300;
	for (unsigned id = 1; id <= 3; id++)
		node_addr(id);
	make_map(3, 1, 3);
	key_space = 400;
	for (unsigned id = 1; id <= 3; id++)
		node_start(id, 3);
	leader = wait_leader(3, 0, 5000);
	assert_true(leader != 0);
	for (unsigned round = 0; round < rounds; round++) {
		write_ok(leader, 0, *next, 64);
		*next += 64;
	}
	assert_true(converged(3, 0, 5000));
	return leader;
}

void three_nodes_done(void)
{
	for (unsigned id = 1; id <= 3; id++)
		node_stop(id);
	for (unsigned id = 1; id <= 3; id++)
		rm_rf(nodes[id].dir);
	memtable_size = 1u << 20;
	value_pad = 0;
}

int replica_fixture_setup(void **state)
{
	pid_t pid = getpid();

	(void)state;
	return replica_fixture_setup_as((unsigned)pid, (int)pid);
}

int replica_fixture_setup_as(unsigned ip_seed, int dir_pid)
{
	ip_x = 100 + ip_seed % 100;
	ip_y = 1 + (ip_seed / 100) % 250;
	snprintf(root, sizeof root, "/tmp/test_replica.%d", dir_pid);
	mkdir(root, 0700);
	return node_cpus_pick(&topo, cpus, CORES);
}

int replica_fixture_teardown(void **state)
{
	(void)state;
	for (unsigned id = 1; id <= MAX_NODES; id++)
		node_stop(id);
	rm_rf(root);
	topology_destroy(topo);
	return 0;
}

int replica_fixture_run(const struct CMUnitTest *tests, size_t count)
{
	/* e.g. TEST_FILTER=test_move_replica: one test, by name. */
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return _cmocka_run_group_tests("tests", tests, count, replica_fixture_setup,
				       replica_fixture_teardown);
}
