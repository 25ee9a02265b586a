/*
 * Requests on their way to the shard (or core) that executes them, for both
 * client protocols.
 *
 * A request is a struct kv_req allocated from the pool of the core where the
 * client's connection lives (the origin). It is executed on the core that
 * owns its key's shard: in place when that is the origin, else after a trip
 * over the origin -> owner SPSC ring. It comes back the same way carrying its
 * answer, and the origin runs req->complete and frees it. Only the origin ever
 * frees a request, so no core frees another core's memory.
 *
 * Answers travel inside the request: a GET value is copied into the spare
 * room after the key. A value larger than the room sends back the size it
 * needs and the origin repeats the read once with room for it (a read repeated
 * later is still linearizable: it is a new read). The previous value of a
 * write (SET ... GET, GETSET) cannot be repeated, so when it does not fit it
 * travels in a malloc'd buffer (req->big) that the origin frees: a rare path.
 *
 * Core-level requests (statistics, SCAN cursors) name a core instead of a
 * shard.
 */
#ifndef RINGKV_SERVER_KV_H
#define RINGKV_SERVER_KV_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/replica.h"
#include "core/reactor.h"
#include "shard/shard.h"

struct node_core;
struct kv_req;

enum kv_op {
	KV_GET,
	KV_PUT,
	KV_DELETE,
	KV_PUT_NX,
	KV_PUT_XX,
	KV_INCRBY,     /* integer: delta in, new value out */
	KV_APPEND,     /* limit: largest result; integer out: new length */
	KV_EXISTS,     /* existed out */
	KV_STRLEN,     /* integer out */
	KV_SCAN,       /* one shard's step of a SCAN, see kv_scan_* */
	KV_CORE_STATS, /* core-level: struct kv_core_stats in the room */
	KV_CORE_CURSOR,/* core-level: integer = cursor in; its key out */
	KV_COUNT,      /* a shard's visible keys, exact (redis_count.c), out in integer;
			* a linearizable read (DBSIZE sums it over every shard) */
	KV_FLUSH,      /* a write without a key: drop every key of the shard
			* (COMMAND_FLUSH; FLUSHDB sends one to every shard) */
	/* The RESP door's string writes (server/redis_strings.c): */
	KV_SETRANGE,   /* integer: byte offset; limit; integer out: new length */
	KV_SETBIT,     /* integer: bit offset; value: one byte 0/1; limit;
			* integer out: the old bit */
	KV_INCRBYFLOAT,/* value: the increment as text; the new value out as
			* the previous value (KV_WANT_PRIOR) */
	/* Multi-key writes on one shard (server/redis_multi.c; COMMAND_MSETNX
	 * .. COMMAND_COPY_REPLACE): applied out, result RKV_ENOTFOUND for a
	 * RENAME of a missing key. */
	KV_MSETNX,     /* no key; value: the pairs (command_pair_put) */
	KV_RENAME,     /* key: source; value: destination key */
	KV_RENAMENX,
	KV_COPY,
	KV_COPY_REPLACE,
	/* Expiry (server/redis_expire.c; shard/command.h COMMAND_PUT_AT ..
	 * COMMAND_EXPIRE_DELETE). A KV_GET answers the value's deadline in
	 * integer (Unix ms, 0 none). */
	KV_PUT_AT,        /* integer: deadline (0 none); limit: COMMAND_SET_*;
			   * applied out */
	KV_EXPIRE_AT,     /* integer: deadline; limit: COMMAND_EXPIRE_*; applied out */
	KV_PERSIST,       /* applied out */
	KV_EXPIRE_DELETE, /* integer: the deadline the leader saw pass */
};

/* Whether `op` changes the keyspace (a Raft proposal; UNKNOWN when lost). */
static inline bool kv_op_is_write(unsigned op)
{
	return op == KV_PUT || op == KV_DELETE || op == KV_PUT_NX || op == KV_PUT_XX ||
	       op == KV_INCRBY || op == KV_APPEND || op == KV_FLUSH || op == KV_SETRANGE ||
	       op == KV_SETBIT || op == KV_INCRBYFLOAT || (op >= KV_MSETNX && op <= KV_COPY_REPLACE) ||
	       (op >= KV_PUT_AT && op <= KV_EXPIRE_DELETE);
}

#define KV_WANT_PRIOR 0x1 /* writes: return the previous value */
#define KV_SCAN_AFTER 0x2 /* SCAN: start after the key, not at it */
#define KV_STALE 0x4      /* reads: any replica answers from its applied state,
			   * without ReadIndex (server/forward.h) */
#define KV_NO_FORWARD 0x8 /* a node that does not lead the shard answers
			   * NOT_LEADER with leader_hint instead of forwarding */

/*
 * Glob steps (bytes compared) one shard's SCAN step may spend on MATCH
 * before it ends early: a few milliseconds of one core. A single key costs
 * at most pattern x key bytes (both at most --max-key: 16 M steps).
 */
#define KV_SCAN_WORK_MAX (4u << 20)

/* Runs on the origin core once the answer is in. */
typedef void kv_complete_fn(struct node_core *c, struct kv_req *req);

struct kv_req {
	struct reactor_msg msg;   /* first: the cross-core envelope */
	struct shard_waiter waiter;
	struct shard_read read;   /* executing side: a GET/EXISTS/STRLEN reading blocks */
	struct replica_read rread;/* executing side: a read waiting for its read index */
	kv_complete_fn *complete; /* origin side */
	void *ctx;                /* origin side: connection or reply slot */
	struct conn *owner;       /* origin side: the client connection charged
				   * for a large value's room, or NULL */
	uint32_t charged;         /* bytes charged to owner->answer_bytes */
	uint32_t part;            /* origin side: index in a multi-key command */
	struct node_core *exec;   /* executing core, while it executes */
	uint64_t id;              /* native protocol request id */
	uint32_t shard;           /* KV_NO_SHARD for core-level requests */
	uint16_t origin;          /* core that received it */
	uint16_t target;          /* executing core */
	uint8_t op;               /* enum kv_op */
	uint8_t flags;            /* KV_WANT_PRIOR, KV_SCAN_AFTER, KV_STALE,
				   * KV_NO_FORWARD */
	uint8_t hops;             /* node-to-node forwards taken so far */
	uint64_t leader_hint;     /* out: the node believed to lead the shard
				   * (NOT_LEADER; the executing leader else), 0
				   * unknown */
	uint64_t reply_to;        /* forwarded in from this node (0: a client's) */
	uint64_t start_us;        /* origin side, native writes: decoded at (metrics) */
	bool existed;             /* out: the key held a value (before a write) */
	bool applied;             /* out: the write changed the value */
	bool done;                /* out, SCAN: the shard has nothing further */
	int status;               /* out: ringkv_Status */
	int result;               /* out: shard_result.error for RMW commands */
	const char *error;        /* out: static text for non-OK statuses */
	uint64_t hold_until_us;   /* executing side: held for a route until
				   * then (server/forward.c), 0 never held */
	int64_t integer;          /* in/out, per op */
	uint32_t limit;           /* in: APPEND limit; SCAN: keys to examine */
	uint32_t key_len;
	uint32_t arg_len;         /* in, SCAN: MATCH pattern bytes after the key */
	uint32_t value_len;       /* in: the value to write; out: the answer's */
	uint32_t cap;             /* bytes of data[] */
	uint32_t need;            /* out, GET: value bytes that did not fit */
	uint8_t *big;             /* out: oversized previous value (malloc) */
	uint8_t data[];           /* key, argument, then value / answer room */
};

#define KV_NO_SHARD UINT32_MAX

/* req->status of a GET whose value did not fit its room (req->need bytes):
 * the origin repeats it with room for the value; clients never see it. */
#define KV_STATUS_NEED_ROOM (-1)

/* Per-core figures gathered by KV_CORE_STATS. */
struct kv_core_stats {
	uint64_t live_keys;
	uint64_t shards;
	uint64_t connections;
	uint64_t requests;
	uint64_t forwarded;
	uint64_t writes;
	uint64_t wal_bytes;
	uint64_t batches;         /* log batches made durable (core logs) */
	uint64_t fsyncs;          /* fdatasyncs of the core logs */
	uint64_t memtable_used;
	uint64_t memtable_capacity;
	uint64_t damaged_tables;  /* tables with a damaged block (issue 14) */
	uint64_t writes_refused;  /* shards refusing writes for one */
	uint64_t count_scans;     /* DBSIZE's counting passes (redis_count.c) */
};

/* The error text of a write refused for lack of disk space (compared by
 * address: the RESP door says ERR, not OOM, for it). */
extern const char kv_error_disk_full[];
/* A write refused because the shard holds a damaged table (issue 14). */
extern const char kv_error_damaged[];

/* A request with room for `key_len` + `room` bytes, from this core's pool.
 * NULL when out of memory. */
struct kv_req *kv_req_new(struct node_core *c, uint32_t key_len, uint32_t room);
void kv_req_free(struct node_core *c, struct kv_req *req);

/* Where the answer value of a request is (GET value, previous value, key of
 * a cursor). */
const uint8_t *kv_answer(const struct kv_req *req, size_t *len);

/* Whether a KV_SCAN step has nothing more to give (see kv_scan_bound). */
typedef bool kv_scan_finished_fn(const struct kv_req *step, void *arg);

/*
 * The completeness rule of a SCAN fanned out as one KV_SCAN step per shard:
 * each step examined every key of its shard below its resume key (its
 * answer, req->need bytes), so every key up to the smallest resume key among
 * the steps that are not finished is complete, from every shard. Sets *key
 * and *len to that bound (pointing into the step's answer) and returns true;
 * false when every step is finished (NULL steps are skipped), and then all
 * keys the steps returned are complete.
 */
bool kv_scan_bound(struct kv_req *const *steps, uint32_t n, kv_scan_finished_fn *finished,
		   void *arg, const uint8_t **key, uint32_t *len);

/* The shard that owns `key`. */
uint32_t kv_shard_of(const struct node_core *c, const void *key, size_t key_len);

/*
 * Sends a filled-in request to where it executes: the owner of req->shard, or
 * req->target for core-level requests. Sets origin; counts it outstanding
 * until its completion runs.
 */
void kv_dispatch(struct node_core *c, struct kv_req *req);

/*
 * Executing core (or the origin, for a shard this node holds no replica
 * of): the request has its answer, send it home to its origin core.
 */
void kv_answer_home(struct node_core *c, struct kv_req *req);

/* A request server/forward.c held for want of a route, on the core that
 * held it: executed again from the start (nothing of it was done). */
void kv_route_again(struct node_core *c, struct kv_req *req);

/* Native protocol: executes or forwards one decoded request of `conn`. */
struct conn;
struct frame_request;
void kv_submit_native(struct node_core *c, struct conn *conn, const struct frame_request *req);

#endif
