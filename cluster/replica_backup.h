/*
 * Online backups, the replica's part (docs/OPERATIONS.md): on the core
 * that owns a shard's replica, BEGIN takes a linearizable point (ReadIndex:
 * every write acknowledged before it was asked is at or below it), has the
 * shard flush up to it and pins that version; READ reads its files in
 * chunks through the core's ring, like the snapshot sender; END unpins.
 *
 * Pins live in a small table per core (at most REPLICA_BACKUP_MAX_PINS),
 * touched only by that core's thread. A pin unused for
 * REPLICA_BACKUP_IDLE_US is dropped (a client that died leaks nothing), and
 * every pin of a replica goes when the replica must let its shard go
 * (snapshot_send_stop: before an install or shard_close).
 */
#ifndef RINGKV_CLUSTER_REPLICA_BACKUP_H
#define RINGKV_CLUSTER_REPLICA_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/replica.h"
#include "core/timer.h"
#include "shard/shard.h"

#define REPLICA_BACKUP_MAX_PINS 8
#define REPLICA_BACKUP_IDLE_US (60u * 1000000u)
#define REPLICA_BACKUP_BEGIN_TIMEOUT_US (30u * 1000000u)

enum replica_backup_op {
	REPLICA_BACKUP_BEGIN = 1,
	REPLICA_BACKUP_READ = 2,
	REPLICA_BACKUP_END = 3,
};

struct replica_backup_call;
/* The call has its answer (status and the outputs below). */
typedef void replica_backup_done_fn(struct replica_backup_call *call);

/*
 * One BEGIN, READ or END, embedded in the caller's request; the caller sets
 * the inputs, `done` and `arg`, and keeps the call (and `buf`) alive until
 * done runs. Outputs are valid in done.
 */
struct replica_backup_call {
	replica_backup_done_fn *done;
	void *arg;
	/* in */
	int op;                   /* enum replica_backup_op */
	uint64_t backup_id;       /* READ, END */
	uint32_t file;            /* READ */
	uint64_t offset;          /* READ */
	uint32_t length;          /* READ: bytes wanted, <= room of buf */
	uint8_t *buf;             /* READ: where the bytes go */
	/* out */
	int status;               /* 0; RAFT_ENOTLEADER (leader_hint); RKV_ENOTFOUND:
				   * no such backup (expired, ended, or the replica
				   * let it go); RKV_EFULL: too many pins or a read
				   * of this pin already in flight; RKV_EINVAL: bad
				   * file or offset; RKV_ESHUTDOWN; -ETIMEDOUT:
				   * the flush took too long; a negative errno */
	uint64_t leader_hint;
	uint64_t index, term;     /* BEGIN */
	struct shard_snapshot_file *files; /* BEGIN: malloc'd (the caller frees),
				   * the tables then "MANIFEST" */
	size_t nfiles;
	uint32_t nread;           /* READ: bytes in buf */
	/* private */
	struct replica *rep;
	struct replica_read rread;
	struct timer timer;
	uint64_t target;
	uint64_t deadline_us;
	struct replica_backup_call *next; /* BEGINs waiting for their flush */
	struct shard_snapshot_chunk chunk;
	struct replica_backup_pin *pin;
};

/* Runs `call` against `rep` (owned by this core). done runs later, never
 * from inside this call. */
void replica_backup_run(struct replica *rep, struct replica_backup_call *call);

/* The replica must let its shard go: unpins every pin of it (those with a
 * read in flight once it lands) and answers its waiting BEGINs with
 * RKV_ESHUTDOWN. True when nothing of it is in flight any more. */
bool replica_backup_stop(struct replica *rep);

/* The shard a backup id belongs to (ids carry it: a READ finds its core). */
static inline uint32_t replica_backup_id_shard(uint64_t backup_id)
{
	return (uint32_t)(backup_id >> 32);
}

#endif
