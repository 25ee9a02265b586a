/*
 * The data directory: an exclusive lock so two processes never share it,
 * and the CLUSTER file that records whose data it is. Start-up only
 * (blocking calls).
 *
 * Layout: DIR/LOCK (flock'ed, holds the owner's pid), DIR/CLUSTER (the
 * node's identity, replaced atomically), DIR/PLACEMENT (the placement as a
 * readable list, derived from CLUSTER), DIR/OPENED (written once every
 * core of the node started: from then on every shard-<id> the node holds
 * and every core-<i> log must exist), DIR/core-<i>/, DIR/shard-<id>/.
 *
 * CLUSTER version 2 (docs/cluster/placement.md), one "key value" per line in
 * this order, the last line an XXH3-64 of every byte before it:
 *
 *   ringkv-cluster 2
 *   cluster-id 2b0bbc7039ccba27
 *   node-id 2
 *   nodes 3
 *   node 1 127.0.0.11:7100          ("-" for a one-node cluster without an address)
 *   node 2 127.0.0.12:7100
 *   node 3 127.0.0.13:7100
 *   shards 16
 *   replicas 3
 *   cores 4
 *   token prod-eu                   (only when --cluster-token was given)
 *   map-version 1
 *   placement 5d0c...               (cluster_map_placement_hash with `cores`)
 *   slot-function 2                 (shard/route.h; absent = 1, see below)
 *   checksum 91aa...
 *
 * Version 1 ("ringkv-cluster 1\nshards N\n", single-node ringkvd) is read
 * as a one-node cluster (node 1, R = 1) and rewritten as version 2 once the
 * flags agree with it.
 *
 * The slot function (which bytes of a key place it) is fixed when the
 * directory is made: a new one takes ROUTE_SLOT_FN_DEFAULT (hash tags); a
 * file without the line (every directory made before hash tags, and
 * version 1) keeps function 1, the whole key, and is never rewritten to
 * another: its keys live where function 1 put them. The line is written
 * only for functions other than 1, so such a directory's file is unchanged;
 * a build that predates the line refuses a file that has it (as damaged)
 * rather than misplacing tagged keys. The invariant: a directory that holds replicas
 * (shard-*) is only ever opened by the node and cluster that made it.
 */
#ifndef RINGKV_SERVER_DATADIR_H
#define RINGKV_SERVER_DATADIR_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/map.h"
#include "core/config.h"

/* A node's identity, as CLUSTER records it or as the flags give it. */
struct datadir_cluster {
	struct cluster_map map;         /* nodes, shards, replicas, cluster id, version */
	uint64_t node_id;               /* this node, a member of map */
	unsigned cores;                 /* this node's cores; 0 = not recorded (version 1) */
	char token[CONFIG_TOKEN_MAX];   /* --cluster-token; "" = none */
	uint64_t placement;             /* cluster_map_placement_hash(&map, cores) */
	unsigned file_version;          /* of the CLUSTER file read: 1 or 2 */
	unsigned slot_function;         /* enum route_slot_fn; 1 when not recorded */
};

/*
 * Creates `dir` if needed and locks it. Returns the lock's fd (keep it open
 * for the process' life) or a negative errno, with the reason in `err`
 * (-EBUSY: another process holds it).
 */
int datadir_lock(const char *dir, char *err, size_t errlen);

/*
 * The start-up step: reads DIR/CLUSTER, settles what the flags left open
 * from it (--shards, --replicas, --cores and --cluster-token not given take
 * the recorded values; a new directory takes the defaults: shards = cores *
 * nodes, R = min(3, nodes), cores = `cpus`), compares the identity the
 * flags give with the recorded one and refuses any difference, and records
 * it when the directory is new, holds a version 1 file, or lacks PLACEMENT.
 * Call with the directory locked.
 *
 * Returns 0 with `out` set, or an error with a human message in `err`
 * (several lines when several things differ): -EINVAL the flags disagree
 * with the data dir, or a recorded file is damaged; -ENOENT the directory
 * holds shard-* directories but no CLUSTER file (never re-created: that is
 * how data is lost); another negative errno for I/O.
 */
int datadir_cluster_open(const char *dir, const struct config *cfg, unsigned cpus,
			 struct datadir_cluster *out, char *err, size_t errlen);

/*
 * Reads DIR/CLUSTER. Returns 1 with `rec` set, 0 when there is no CLUSTER
 * file and no shard-* directory (a new data dir), or an error as above.
 */
int datadir_cluster_read(const char *dir, struct datadir_cluster *rec, char *err,
			 size_t errlen);

/*
 * The CLUSTER text (version 2) of `c` into buf; returns its length, or a
 * negative errno when buf is too small. datadir_cluster_parse is its
 * inverse: 0, or -EINVAL with the line that is wrong in `err` (the text is
 * untrusted: every field is checked). Exposed for the tests.
 */
int datadir_cluster_format(const struct datadir_cluster *c, char *buf, size_t len);
int datadir_cluster_parse(const char *text, size_t len, struct datadir_cluster *out,
			  char *err, size_t errlen);

/*
 * Writes DIR/PLACEMENT, then DIR/CLUSTER (the commit point), each replaced
 * atomically. 0 or a negative errno with the reason in `err`.
 */
int datadir_cluster_write(const char *dir, const struct datadir_cluster *c, char *err,
			  size_t errlen);

/*
 * The whole-directory check, after datadir_cluster_open (which refuses
 * shard-*, core-* or OPENED without CLUSTER). Once the node has run on the
 * directory (DIR/OPENED, see datadir_mark_opened): every shard-<id> CLUSTER
 * places on this node must exist, and every core-<i> must hold a log
 * segment with a whole header; a missing one is never re-created empty,
 * since its keys (or the hard state and the entries after the shards'
 * flushed indexes) would be gone without a word. Without OPENED a first
 * start may have stopped part way, so nothing is missing yet. Entries
 * ringkv does not write are logged and left alone. 0, or RKV_ECORRUPT with
 * what is missing named in `err`; a negative errno when the directory
 * cannot be listed.
 */
int datadir_check_whole(const char *dir, const struct datadir_cluster *c, char *err,
			size_t errlen);

/*
 * Records (DIR/OPENED, durably, once) that every core of this node started
 * on the directory: from then on a missing shard directory or core log is
 * damage, not a new node. 0 or a negative errno with the reason in `err`.
 */
int datadir_mark_opened(const char *dir, char *err, size_t errlen);

#endif
