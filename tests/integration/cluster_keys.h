/*
 * Client helpers the cluster integration tests share: writes through any
 * node of a struct cluster (harness.h), acknowledged keys read back through
 * any node or from one node's own replicas, and a node's own view of its
 * replicas. The tests keep their own key and value forms and pass the
 * bytes in (or the functions that make them).
 */
#ifndef RINGKV_TESTS_CLUSTER_KEYS_H
#define RINGKV_TESTS_CLUSTER_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "harness.h"

/*
 * One attempt to write key = value through node `first`, then the others
 * in order. 1 acknowledged; 0 unknown (cut off or answered an error that
 * may have applied: never to be counted as refused); -1 no node took it
 * this time (NOT_LEADER or UNAVAILABLE everywhere: not applied).
 */
int cluster_keys_put_once(struct cluster *c, const void *key, size_t key_len,
			  const void *value, size_t value_len, unsigned first);

/*
 * cluster_keys_put_once again, every 20 ms, until the write is acknowledged
 * (1), its outcome is unknown (0) or limit_ms have passed (-1: no node took
 * it).
 */
int cluster_keys_put(struct cluster *c, const void *key, size_t key_len, const void *value,
		     size_t value_len, unsigned first, long limit_ms);

/*
 * Reads key through whichever node serves it, within limit_ms: the value
 * must be `value`. A NOT_FOUND (the key is lost), a wrong value or no node
 * serving it in time fails the test (CHECK), naming key number `k`.
 */
void cluster_keys_check(struct cluster *c, const void *key, size_t key_len,
			const void *value, size_t value_len, unsigned k, long limit_ms);

/*
 * Reads key from node i's own replica (a stale read: what that replica
 * holds, wherever the leader is), within limit_ms: the value must be
 * `value`; anything else fails the test, naming key number `k`.
 */
void cluster_keys_check_own(struct cluster *c, unsigned i, const void *key, size_t key_len,
			    const void *value, size_t value_len, unsigned k, long limit_ms);

/* How a test names key number k, or its value: the bytes into buf (at
 * most len), their length returned. */
typedef size_t cluster_keys_form_fn(char *buf, size_t len, unsigned k);

/* Every key k < count with acked[k] (key_of(k) = value_of(k)) reads back
 * through whichever node serves it (cluster_keys_check), each within
 * limit_ms. */
void cluster_keys_check_acked(struct cluster *c, const bool *acked, unsigned count,
			      cluster_keys_form_fn *key_of, cluster_keys_form_fn *value_of,
			      long limit_ms);

/* The same from node i's own replicas (cluster_keys_check_own). */
void cluster_keys_check_acked_own(struct cluster *c, unsigned i, const bool *acked,
				  unsigned count, cluster_keys_form_fn *key_of,
				  cluster_keys_form_fn *value_of, long limit_ms);

/*
 * Node i's replicas of shards 0..nshards-1 as its own cluster status shows
 * them: role[s] the replica's role ("" when it holds none of shard s) and,
 * when core is not NULL, core[s] its core (-1 when none). A node that does
 * not answer fails the test (CHECK).
 */
void cluster_node_replicas(struct cluster *c, unsigned i, unsigned nshards, char (*role)[16],
			   int *core);

/* Lines of node i's log (cluster_keep_logs) that contain `what`. */
unsigned cluster_log_count(const struct cluster *c, unsigned i, const char *what);

#endif
