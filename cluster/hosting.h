/*
 * The hosting record: which shard replicas this node holds where the map's
 * founding placement (cluster/map.h) says otherwise, after moves
 * (docs/cluster/membership.md). One file per core, DATA/hosting-<core>,
 * written only by that core (through its ring: no two writers), text:
 *
 *   ringkv-hosting 1
 *   add SHARD CORE      this node hosts a replica of SHARD on CORE
 *   drop SHARD          this node no longer hosts the map's replica of SHARD
 *   crc XXXXXXXX        CRC32C (hex) of every byte before this line
 *
 * An `add` is in the file of the core it names; a `drop` in the file of the
 * core that held the replica. No files mean the founding placement. The
 * record is read at start-up (blocking) and each core's file rewritten
 * whole, atomically, when that core's part changes. A damaged or
 * inconsistent file is refused with the reason, never guessed around: the
 * replicas a node opens decide which data it serves.
 *
 * Invariant: at most one entry per shard, sorted by shard; an entry's core
 * is < the node's core count.
 */
#ifndef RINGKV_CLUSTER_HOSTING_H
#define RINGKV_CLUSTER_HOSTING_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/map.h"

#define CLUSTER_HOSTING_MAX 4096u     /* entries (moves in or out) per node */
#define CLUSTER_HOSTING_DROP (-1)     /* entry's core: the map's replica is gone */
#define CLUSTER_HOSTING_FILE "hosting-%u" /* printf format: the core */

struct cluster_hosting_entry {
	uint32_t shard;
	int32_t core;                 /* core of an added replica, or CLUSTER_HOSTING_DROP */
};

struct cluster_hosting {
	uint32_t n;
	struct cluster_hosting_entry e[CLUSTER_HOSTING_MAX]; /* sorted by shard */
};

/*
 * Parses a record (untrusted bytes from disk). `shards` and `cores` bound the
 * fields. 0, or RKV_ECORRUPT with the line and the reason in err: a bad
 * header, line or checksum, a shard or core out of range, a shard twice, too
 * many entries.
 */
int cluster_hosting_decode(struct cluster_hosting *h, const char *buf, size_t len,
			   uint32_t shards, unsigned cores, char *err, size_t errlen);

/* Writes the record into buf; returns its length, or 0 if cap is too small.
 * CLUSTER_HOSTING_TEXT_MAX always suffices. */
#define CLUSTER_HOSTING_TEXT_MAX (32u + CLUSTER_HOSTING_MAX * 24u + 16u)
size_t cluster_hosting_encode(const struct cluster_hosting *h, char *buf, size_t cap);

/* Sets shard's entry (core >= 0: hosted there; CLUSTER_HOSTING_DROP). 0, or
 * -ENOSPC when the table is full. */
int cluster_hosting_set(struct cluster_hosting *h, uint32_t shard, int32_t core);

/* Removes shard's entry (back to the founding placement), if any. */
void cluster_hosting_clear(struct cluster_hosting *h, uint32_t shard);

/* Shard's entry, or NULL. */
const struct cluster_hosting_entry *cluster_hosting_find(const struct cluster_hosting *h,
							 uint32_t shard);

/*
 * The core that holds this node's replica of `shard`, or -1 when the node
 * holds none: the record's entry if any, else the map's placement for node
 * index `self` on a node with `cores` cores. shard < m->shards.
 */
int cluster_hosting_core(const struct cluster_map *m, const struct cluster_hosting *h,
			 unsigned self, uint32_t shard, unsigned cores);

/*
 * Start-up only (blocking): reads every core's file DIR/hosting-<i>, i <
 * cores, into h, merged (empty when there is none). A file of a core the
 * node no longer has (started with fewer cores), an `add` in another core's
 * file or a shard in two files is refused. 0, or an error with the file
 * and the reason in err.
 */
int cluster_hosting_load(const char *dir, struct cluster_hosting *h, uint32_t shards,
			 unsigned cores, char *err, size_t errlen);

/* Start-up only (blocking): core `core`'s own file (empty if none). */
int cluster_hosting_load_core(const char *dir, unsigned core, struct cluster_hosting *h,
			      uint32_t shards, unsigned cores, char *err, size_t errlen);

#endif
