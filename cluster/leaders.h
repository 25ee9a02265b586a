/*
 * Every shard's leader, as this core knows it (docs/cluster/routing.md,
 * "Leaders of every shard"): each core announces the groups its replicas
 * lead (a Leaders peer frame: the changes at each tick, its whole table
 * every LEADERS_FULL_US) to every other node, and to the other cores of its
 * own node; a core that receives one from a peer learns it and passes a
 * copy to its node's other cores. So every core holds a whole table, written
 * only by itself: no state shared between cores.
 *
 * Invariants: an entry's term never goes down (a claim for an older term
 * than the one known is from a deposed leader and ignored); a shard's
 * conf_index (the index of the last configuration its leader applied)
 * never goes down, so the epoch, 1 + the sum of them, only grows while the
 * process lives. An entry not heard again within LEADERS_STALE_US is not
 * given out (its leader stopped announcing: dead, cut off, or deposed with
 * no successor yet).
 */
#ifndef RINGKV_CLUSTER_LEADERS_H
#define RINGKV_CLUSTER_LEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/peer_msg.h"

#define LEADERS_FULL_US 2000000ull  /* a core's whole table, this often */
#define LEADERS_STALE_US 6000000ull /* an entry not heard again: unknown */

struct cluster_core;
struct cluster_leaders;

/* A table for `shards` shards (1..CLUSTER_MAP_MAX_SHARDS). 0 or -ENOMEM. */
int cluster_leaders_create(struct cluster_leaders **out, uint32_t shards);
void cluster_leaders_destroy(struct cluster_leaders *t);

/*
 * Learns what node `from` says it leads (a decoded Leaders frame), at
 * now_us. Entries for shards past the table are counted and skipped.
 * Returns how many entries were refused that way.
 */
uint32_t cluster_leaders_learn(struct cluster_leaders *t, uint64_t from,
			       const struct peer_msg_leaders *l, uint64_t now_us);

/*
 * The leader of `shard` and its term as known at now_us: true with both
 * set when some node claimed it within LEADERS_STALE_US; false (and *term
 * the highest term heard, or 0) otherwise.
 */
bool cluster_leaders_get(const struct cluster_leaders *t, uint32_t shard, uint64_t now_us,
			 uint64_t *leader, uint64_t *term);

/* The map's epoch: 1 + the sum over shards of the highest conf_index
 * heard. Only grows. */
uint64_t cluster_leaders_epoch(const struct cluster_leaders *t);

/* The highest conf_index heard for `shard` (0: none or never changed). */
uint64_t cluster_leaders_conf_index(const struct cluster_leaders *t, uint32_t shard);

/* ---- the core's side (cluster_core.c) ---------------------------------- */

/*
 * At each tick: announces the groups this core's replicas lead whose term
 * or configuration changed since the last announcement (all of them every
 * LEADERS_FULL_US) to every other node and to this node's cores.
 */
void cluster_leaders_tick(struct cluster_core *c);

/*
 * A Leaders frame from node `from` (payload `data`, decoded as `f`):
 * learnt here; when it came from another node (`from_peer`), a copy goes to
 * this node's other cores.
 */
void cluster_leaders_frame(struct cluster_core *c, uint64_t from, const struct peer_msg_frame *f,
			   const uint8_t *data, size_t len, bool from_peer);

/* The core's table (read on the core only). */
const struct cluster_leaders *cluster_core_leaders(const struct cluster_core *c);

#endif
