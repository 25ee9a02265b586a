/*
 * The fixture of the replication engine's tests (test_replica.c,
 * test_replica_amnesia.c, test_replica_snapshot.c, test_replica_move.c,
 * test_wiped_probe.c):
 * each "node" is its own reactor group of two cores (or one) with its own
 * data dir under /tmp/test_replica.PID, all in this process, talking
 * through the real peer transport on 127.X.Y.11-15 (X.Y from the pid).
 *
 * A test drives nodes from its own thread: it starts and stops them, runs
 * jobs on every core of a node (run_job: a polling timer calls the job on
 * the reactor thread until it says it is done) and checks what the jobs
 * recorded. Reactor threads never call cmocka asserts.
 *
 * The settings below (memtable_size, snapshot_lag, install_hook, ...) are
 * read by node_start: a test that changes one sets it back at its end.
 */
#ifndef RINGKV_TESTS_REPLICA_FIXTURE_H
#define RINGKV_TESTS_REPLICA_FIXTURE_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/map.h"
#include "cluster/peer.h"
#include "cluster/replica.h"
#include "core/reactor.h"
#include "shard/core_log.h"
#include "node_util.h"

#define CORES 2
#define MAX_NODES 5
#define MAX_SHARDS 16
#define MAX_OPS 1024
#define ELECTION_MS 150
#define HEARTBEAT_MS 15

struct tnode;

/* One client write, answered on a reactor thread. */
struct twrite {
	struct shard_waiter w;
	_Atomic int done;
	int rv;
	char key[32];
	char value[512];
};

struct tread {
	struct replica_read rd;
	struct shard_read srd;      /* the read of the key, once allowed */
	_Atomic int done;
	int status;
	int found;        /* after done: the key was there with the value */
	const char *key;
	const char *value;
	struct tnode *node;
	uint32_t shard;
};

struct tcore {
	struct tnode *node;
	struct reactor *r;
	struct cluster_core *cc;
	struct timer poll;
	unsigned job_seen;
	bool job_active;
	unsigned job_calls;   /* calls of the current job so far */
	unsigned scans;       /* job_status: scans not finished */
};

struct tstatus {
	bool here;
	struct replica_status st;
	uint64_t digest;     /* of every key and value, in order */
	unsigned keys;
	int scan_rv;
	struct tcore *core;
};

struct tnode {
	uint64_t id;
	char ip[32];
	uint16_t port;
	struct sockaddr_in addr;
	int fds[CORES];
	char dir[256];
	struct peer_config pcfg;
	struct peer_net *net;
	struct cluster_node *cn;
	struct reactor_group *g;
	unsigned ncores;      /* reactors of this node: 1 or CORES */
	struct tcore cores[CORES];
	bool (*job)(struct tcore *c); /* false: not finished, call again */
	_Atomic unsigned job_seq;
	_Atomic unsigned job_done;
	/* job parameters and results */
	uint32_t job_shard;
	unsigned job_first, job_count;
	int job_rv[MAX_OPS];
	struct tstatus status[MAX_SHARDS];
	struct core_log_stats log_stats[CORES];
	struct cluster_core_stats core_stats[CORES];
};

extern struct tnode nodes[MAX_NODES + 1];  /* 1-based, by node id */
extern struct cluster_map map;
extern unsigned ip_x, ip_y;                /* nodes listen on 127.ip_x.ip_y.1<id> */
extern struct topology *topo;
extern unsigned cpus[CORES];
extern char root[128];                     /* every node's data dir is below it */
extern struct twrite writes[MAX_OPS];
extern struct tread reads[MAX_OPS];
extern unsigned key_space;      /* keys k0..k<key_space-1> are compared */
extern uint64_t memtable_size;  /* of the nodes started next; default 1 MiB */
extern uint64_t segment_size;   /* 0: the core log's default */
extern unsigned value_pad;      /* extra bytes of each value */
extern uint32_t proposal_timeout_ms; /* 0: the engine's default */
extern uint32_t election_ms[MAX_NODES + 1]; /* per node; 0: ELECTION_MS */
extern unsigned excluded;       /* bit id: node id's replicas are not looked at
				 * by agreed_leader and converged (a replica
				 * removed from its group) */
extern size_t bulk_limit[MAX_NODES + 1];    /* per node; 0: the default */
extern uint64_t snapshot_lag;   /* 0: the engine's default */
extern shard_install_hook_fn *install_hook; /* of the nodes started next */
enum lose { LOSE_NONE, LOSE_FIRST, LOSE_LAST, LOSE_LAST_THEN_ALL, LOSE_ALL };
extern atomic_int lose_chunk;   /* a chunk the next stream to node 3 loses
				 * (enum lose), then LOSE_NONE; LOSE_LAST_THEN_ALL:
				 * the last chunk of one stream, then every chunk
				 * of the next */
extern bool auto_repair;        /* cluster_node_config.auto_repair of the
				 * nodes started next */
extern bool no_rejoin;          /* cluster_node_config.amnesia_no_rejoin */
/*
 * What every node receives from its peers, message by message (tests
 * only; NULL, the default: everything). Called on the receiving node's
 * reactor thread for each Raft message of a frame from node `from` to node
 * `to`, or with m NULL for a frame of coalesced heartbeats (a leader's
 * beats) and for a frame it could not decode; false drops that message (or
 * frame). The message may be changed (a copy is delivered then); its
 * entries and data belong to the frame. Other frames (snapshots, leaders,
 * placement) always pass. A test sets it back to NULL at its end.
 */
typedef bool deliver_fn(uint64_t from, uint64_t to, uint64_t group, struct raft_msg *m);
extern deliver_fn *_Atomic deliver_filter;

void rm_rf(const char *path);
/* Whether dir/name exists. */
bool path_exists(const char *dir, const char *name);

/* ---- jobs ---- */

/* Runs `job` on every core of node n until each says it is done (20 s at
 * the most, else the test fails). */
void run_job(struct tnode *n, bool (*job)(struct tcore *c));
/* Key k<i>. */
void key_name(char *buf, size_t cap, unsigned i);
/* A struct twrite's waiter callback: records rv, then done. */
void write_done(struct shard_waiter *w, int rv, const struct shard_result *res);
/* Proposes writes[i] on `rep` (on its core's thread): key k<i % key_space>,
 * value v<i> (padded by value_pad); replica_propose's code. */
int propose_write(struct replica *rep, unsigned i);
/* Proposes writes[job_first, +job_count) on job_shard if this core holds
 * it (propose_write); each replica_propose's code in job_rv[i]. */
bool job_propose(struct tcore *c);
/* Reads the keys of writes[job_first, +job_count) through ReadIndex, into
 * reads[]; each replica_read's code in job_rv[i]. */
bool job_read(struct tcore *c);
/* Node n's status of every replica (n->status[]: Raft status and a digest
 * of the whole contents), and its cores' log and engine statistics. */
void refresh(struct tnode *n);

/* ---- nodes ---- */

/* Node id's address and data dir, with `port` (not listening). */
void node_addr_known(unsigned id, unsigned cores, uint16_t port);
/* Node id with `cores` reactors, listening on an ephemeral port: nodes with
 * different core counts place a group on different core indexes, so
 * messages cross cores. */
void node_addr_cores(unsigned id, unsigned cores);
/* node_addr_cores(id, CORES). */
void node_addr(unsigned id);
/* The map of nodes 1..count (their addresses when count > 1). */
void make_map(unsigned count, uint32_t shards, uint32_t replicas);
/* --initial-cluster-state existing, per node (false unless a test sets it). */
extern bool node_join_existing[MAX_NODES + 1];
/* Starts node id of a cluster of `count` nodes, with the settings above. */
void node_start(unsigned id, unsigned count);
/* Stops node id (within 5 s) if it runs. */
void node_stop(unsigned id);
bool node_up(unsigned id);
/* The leader of `shard` every running node agrees on, waited for; 0 if
 * none within timeout_ms. */
uint64_t wait_leader(unsigned count, uint32_t shard, unsigned timeout_ms);
/* Whether writes[first, +count) were all answered within timeout_ms. */
bool wait_writes(unsigned first, unsigned count, unsigned timeout_ms);
/* Proposes writes[first, +count) on the leader without waiting for them:
 * they are in flight while the next membership change is made. */
void write_async(uint64_t leader, uint32_t shard, unsigned first, unsigned count);
/* Proposes writes[first, +count) on node `leader`, checks every one is
 * accepted and acknowledged with 0. */
void write_ok(uint64_t leader, uint32_t shard, unsigned first, unsigned count);
/* Reads them back through ReadIndex on `leader`: the last write of each
 * key is found. */
void read_ok(uint64_t leader, uint32_t shard, unsigned first, unsigned count);
/* Whether the statuses st[0..n) show a converged group (see the .c). */
bool statuses_converged(const struct tstatus *st, unsigned n);
/* Every running replica of `shard` applied what its leader committed and
 * holds the same contents, within timeout_ms. */
bool converged(unsigned count, uint32_t shard, unsigned timeout_ms);

/* Three nodes, one group of 3 replicas, 64 KiB memtables; `rounds` x 64
 * writes of 300-byte values from *next on, applied everywhere. Returns
 * the leader. */
uint64_t three_nodes_written(unsigned rounds, unsigned *next);
/* The end of a test begun with three_nodes_written: every node stopped,
 * its data dir removed, the sizes back to their defaults. */
void three_nodes_done(void);

/* ---- the group ---- */

/* cmocka group setup: addresses and root from this process's pid. */
int replica_fixture_setup(void **state);
/* The same from another pid's: a node started in a process of its own
 * (the test's child) uses its parent's addresses and data dirs. */
int replica_fixture_setup_as(unsigned ip_seed, int dir_pid);
/* Stops every node, removes root. */
int replica_fixture_teardown(void **state);
/* Runs the tests (TEST_FILTER: one of them, by name) in the group above. */
struct CMUnitTest;
int replica_fixture_run(const struct CMUnitTest *tests, size_t count);

#endif
