/*
 * The Redis protocol (RESP2, and RESP3 after HELLO 3) front door: redis-cli,
 * redis-benchmark and Redis client libraries talk to ringkvd unchanged.
 *
 * Every command of a connection takes a reply slot in a FIFO, so replies leave
 * in request order although the keys of consecutive commands (or of one MGET)
 * live on different cores. A slot whose command is answered at once holds the
 * reply bytes; one waiting on shards holds the returning requests and is
 * formatted when it reaches the head of the FIFO. When the FIFO is empty, an
 * immediate reply goes straight to the output buffer.
 *
 * Writes are replied to only after they are durable, as on the native port.
 * INCR/APPEND/SETNX/GETSET and SET's NX/XX/GET are executed on the key's shard
 * as logged commands, so they are atomic per key. MSET, DEL and EXISTS over
 * keys of several shards are not atomic across shards.
 *
 * SCAN cursors are key positions in the ordered keyspace: each SCAN step asks
 * every shard for the next COUNT keys after the cursor key and keeps the keys
 * up to the smallest point all shards have reached. The cursor number names a
 * slot in the issuing core's cursor table (the last 4096 cursors per core); an
 * older cursor is refused with "ERR invalid cursor".
 *
 * KEYS is that SCAN run to its end in the server, with the same completeness
 * rule: a full pass over the keyspace, O(keys stored), answered whole or, past
 * 4 MiB of matches, refused with an error pointing to SCAN. TYPE answers
 * "string" or "none" (every value is a string); TIME the node's clock.
 * FLUSHDB and FLUSHALL (one database: the same) are refused unless ringkvd
 * runs with --enable-flush; then one FLUSH entry goes through every shard's
 * Raft group and the reply is +OK once every shard applied it
 * (server/redis_flush.c).
 */
#ifndef RINGKV_SERVER_REDIS_H
#define RINGKV_SERVER_REDIS_H

#include <stddef.h>
#include <stdint.h>

struct conn;
struct node_core;

/* Per-core state (cursor table). 0 or -ENOMEM. */
int redis_core_init(struct node_core *c);
void redis_core_destroy(struct node_core *c);

/* A new RESP connection. 0 or -ENOMEM. */
int redis_conn_init(struct conn *conn);
void redis_conn_free(struct conn *conn);
/* The parser limits before authentication (server/auth.h), between
 * commands: at accept with --users, and when the user is gone. */
void redis_preauth_limits(struct conn *conn);

/* Parses and runs every complete command in the connection's buffer. */
void redis_process(struct conn *conn);

/* The key of a cursor issued by this core. 0, or -ENOENT when unknown. */
int redis_cursor_lookup(struct node_core *c, uint64_t cursor, const void **key, size_t *len);

/*
 * DBSIZE's exact count of `shard`, hosted by core `c` (server/redis_count.c):
 * finish(req, 0, visible keys, keys with a deadline not past) once known,
 * maybe before this returns, or finish(req, rv < 0 or RKV_*, 0, 0)
 * (RKV_ESHUTDOWN: the shard left the core, or the node is stopping).
 */
struct kv_req;
typedef void redis_count_fn(struct kv_req *req, int rv, uint64_t visible, uint64_t expires);
void redis_count_shard(struct node_core *c, uint32_t shard, struct kv_req *req,
		       redis_count_fn *finish);
/* Connections a core takes (both ports): CONFIG SET maxclients. */
uint32_t redis_conn_limit(const struct node_core *c);
/* Counting passes finished on this core (INFO's ringkv_dbsize_scans). */
uint64_t redis_count_passes(const struct node_core *c);
/* Frees the core's counting state (from redis_core_destroy). Passes end by
 * themselves once the node stops; one still running here (the stop's grace
 * period ran out) is dropped with its callers unanswered. */
void redis_count_stop(struct node_core *c);

#endif
