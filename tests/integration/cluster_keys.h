/*
 * Client helpers the cluster integration tests share: one write through
 * any node of a struct cluster (harness.h), and an acknowledged key read
 * back through any node. The tests keep their own key and value forms and
 * pass the bytes in.
 */
#ifndef RINGKV_TESTS_CLUSTER_KEYS_H
#define RINGKV_TESTS_CLUSTER_KEYS_H

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

/* Lines of node i's log (cluster_keep_logs) that contain `what`. */
unsigned cluster_log_count(const struct cluster *c, unsigned i, const char *what);

#endif
