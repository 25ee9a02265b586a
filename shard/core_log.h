/*
 * One Raft log per core, shared by every replica (Raft group) the core owns.
 *
 * The core's log directory holds segments log-<seq>.log (format in
 * core_log_format.h and docs/cluster/core-log.md); every record carries its
 * group. Appends, hard states and log resets of every group are staged into
 * one pending batch; core_log_flush(), once per loop pass, stores that batch
 * into the mapped segment (shard/wal_map.h) and issues ONE fdatasync through
 * the core's ring for all of them: group commit across groups, so the fsync
 * rate does not grow with the number of groups. While a batch is in flight,
 * new records gather in the other one.
 *
 * Contract with a replica (raft/raft.h's update contract):
 * - update.hard_state_changed -> core_log_set_hard_state();
 *   update.snapshot -> core_log_reset(); update.persist ->
 *   core_log_append(); messages that depend on the hard state or snapshot wait
 *   for the persisted callback with hard_state / reset set;
 * - persisted callback with entries -> RAFT_EV_PERSISTED(last_index, last_term);
 * - the state machine flushed (memtable -> SSTable) up to F, and Raft
 *   compacted -> core_log_release(group, F).
 *
 * Invariants:
 * - at most one batch is in flight; batches become durable in order, and
 *   callbacks come in that order;
 * - a batch is stored only into space the file already holds (preallocated
 *   through the ring ahead of the writer: zeros written in direct mode,
 *   FALLOCATE otherwise); one that does not fit waits for the preallocation
 *   and fails whole, untouched on disk, with RKV_EFULL on a
 *   full disk (the log keeps working);
 * - a failed fdatasync fails the log for good: every later call is refused
 *   with -EIO (what was written may or may not be durable; see fsyncgate);
 * - every segment starts with a checkpoint of every group's hard state and
 *   log start, so only the active segment can hold the latest copy of one;
 * - segments are deleted oldest first, only once every group with entries in
 *   them released those entries and a RETAIN record saying so is durable.
 *
 * Single-threaded: every call on the core that owns the log.
 */
#ifndef RINGKV_SHARD_CORE_LOG_H
#define RINGKV_SHARD_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/ring.h"
#include "raft/raft.h"

#define CORE_LOG_DEFAULT_SEGMENT_SIZE (64u << 20)
#define CORE_LOG_DEFAULT_PREALLOC (4u << 20)
/* fdatasyncs of batches in flight at once, at most (see core_log_config). */
#define CORE_LOG_MAX_SYNCS 4
#define CORE_LOG_DEFAULT_SYNCS 1
#define CORE_LOG_DEFAULT_MARK_DELAY_MS 10

/* What a group had stored when the log was opened: fed to raft_restore(). */
struct core_log_group_state {
	uint64_t group;
	struct raft_hard_state hard_state; /* {0, RAFT_NONE} if never written */
	uint64_t start_index;  /* the log starts after (start_index, start_term): */
	uint64_t start_term;   /* the last LOG_RESET; 0, 0 if none */
	uint64_t first_index;  /* index of entries[0]; 0 when n_entries == 0 */
	const struct raft_entry *entries; /* consecutive indexes from first_index; */
	size_t n_entries;      /* data borrowed (read-only) until the callback returns */
};

/*
 * Called once per group found, after every segment was scanned and checked.
 * The entries may start above start_index + 1: entries the group released
 * went with their deleted segments (the caller's state machine holds them).
 * A non-zero return stops core_log_open() with it.
 */
typedef int core_log_restore_fn(void *arg, const struct core_log_group_state *state);

/* One group's part of a batch that completed. */
struct core_log_persisted {
	uint64_t group;
	int status;          /* 0: durable; RKV_EFULL: the disk is full and none of
			      * this group's records of the batch were written (its
			      * staged state is rolled back to the last stored one:
			      * append again from last_index + 1 of the previous
			      * success); -EIO (or another -errno): the log failed */
	bool entries;        /* the batch held entries of the group: */
	uint64_t last_index; /* index and term of the last one, for */
	uint64_t last_term;  /* RAFT_EV_PERSISTED */
	bool hard_state;     /* the batch held a hard state of the group */
	bool reset;          /* the batch held a LOG_RESET of the group */
	uint64_t batch;      /* the batch's number: stats.batches just after it
			      * was stored (batches are numbered from 1 in the
			      * order stored, and become durable in that order);
			      * 0 for a batch failed before it was stored */
};

/* Called for every group (not removed) with records in a completed batch. */
typedef void core_log_persisted_fn(void *arg, const struct core_log_persisted *p);

struct core_log_config {
	const char *dir;           /* this core's log directory; created if missing */
	uint64_t segment_size;     /* start a new segment past this; 0: default */
	uint64_t prealloc;         /* preallocate this far ahead (rounded up to
				    * 4 KiB; in direct mode at most a segment_size
				    * of zeros); 0: default */
	/* Batches whose fdatasyncs may be in flight together, 1 to
	 * CORE_LOG_MAX_SYNCS; 0: CORE_LOG_DEFAULT_SYNCS (1). With 1, a batch
	 * waits for the previous one's fdatasync to finish before it is
	 * stored; with more, it is stored and synced at once, so a write that
	 * arrives during an fdatasync waits one fdatasync, not up to two. On
	 * this project's test machine (one virtio disk, 3 nodes on one CPU) 2
	 * and 3 gave no gain over 1 (docs/cluster/core-log.md), so 1 it is. */
	unsigned max_syncs;
	/* Write batches through the page cache (WRITEV, then an fdatasync
	 * linked to it) instead of one O_DIRECT write with RWF_DSYNC per batch.
	 * Direct is the default: the write is durable when it completes, with
	 * no io-wq worker thread and no fdatasync (docs/cluster/core-log.md);
	 * a file system that refuses O_DIRECT gets the buffered path anyway. */
	bool buffered;
	/* Once the log has been quiet this long (no batch stored) with the
	 * end of its last durable batch not yet marked, it writes the
	 * durable-end mark alone, with one fdatasync (docs/cluster/core-log.md,
	 * "The durable-end mark"). 0: CORE_LOG_DEFAULT_MARK_DELAY_MS. */
	unsigned mark_delay_ms;
	/* Salvage (a repair from peers, cluster/core_log_repair.c): 0 for a
	 * normal open. Else segments below this seq are not read (they are
	 * damaged, or older than a damaged one, and are being moved to
	 * quarantine) and the oldest one read may be newer than the last
	 * RETAIN record allows; every other check is made. The first flush
	 * records a RETAIN of the oldest segment kept, so the next normal open
	 * accepts it. Hard states and log starts come from that segment's
	 * checkpoint and the records after it: exact, since every segment
	 * begins with a checkpoint of every group (see core-log.md). */
	uint64_t salvage_from;
	core_log_restore_fn *restore; /* may be NULL */
	void *restore_arg;
	core_log_persisted_fn *persisted; /* required */
	void *persisted_arg;
};

/*
 * Histogram bounds (upper, inclusive) of the batch statistics below: an
 * fdatasync's time in microseconds, from its WRITE's submission to its
 * completion, and the records of a batch. The arrays have one more bucket,
 * for what is above the last bound; counts are per bucket, not cumulative.
 */
#define CORE_LOG_SYNC_BUCKETS 12
#define CORE_LOG_SYNC_US_BOUNDS \
	{ 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000 }
#define CORE_LOG_BATCH_RECORD_BOUNDS { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096 }

struct core_log_stats {
	uint64_t bytes;        /* record bytes stored into segments */
	uint64_t records;      /* records stored (checkpoints included) */
	uint64_t batches;      /* batches stored */
	uint64_t fsyncs;       /* fdatasyncs of batches issued */
	uint64_t marks;        /* durable-end marks written with a batch */
	uint64_t idle_marks;   /* marks written alone (each with its own
				* fdatasync) after the log went quiet */
	uint64_t segments;     /* segment files now */
	uint64_t created;      /* segments created since open */
	uint64_t deleted;      /* segments deleted since open */
	uint64_t full;         /* batches failed with RKV_EFULL */
	uint64_t groups;       /* live groups */
	uint64_t torn_bytes;   /* bytes cut from the file at a torn tail at open
				* (the preallocated zeros after it included) */
	/* Batches made durable: time of WRITE + fdatasync, records each. */
	uint64_t sync_us[CORE_LOG_SYNC_BUCKETS + 1];
	uint64_t sync_us_sum;
	uint64_t batch_records[CORE_LOG_SYNC_BUCKETS + 1];
	uint64_t batch_records_sum;
};

struct core_log;

/*
 * Opens (creating if needed) the log in cfg->dir: blocking recovery, before
 * the loop runs. Scans the segments in order and rebuilds, per group, the
 * hard state, log start and entries (appending at index i drops the group's
 * entries >= i; LOG_RESET and REMOVE drop everything), then calls
 * cfg->restore once per group. Recovery rules (docs/cluster/core-log.md):
 * zeros after the last record are the end; a torn tail of the LAST segment
 * is truncated and logged; anything else (corruption, a record followed by
 * valid data, a gap in segment numbers, a missing first segment) refuses:
 * RKV_ECORRUPT with the file and offset in `err`. Also a negative errno for
 * I/O failures, or what restore returned. `io` must outlive the log.
 *
 * After open, every group's retention point is 0 (it pins all its entries):
 * call core_log_release() with what its state machine already flushed.
 */
int core_log_open(struct core_log **out, const struct core_log_config *cfg,
		  struct io_ring *io, char *err, size_t errlen);

/*
 * Closes the log. Precondition: core_log_idle() (run the ring until it is;
 * records still pending are not written). Blocking (munmap, close).
 */
void core_log_close(struct core_log *log);

/*
 * Stages entries[0..n) of `group` at first_index.. (n >= 1). Drops the
 * group's stored entries >= first_index (Raft's truncate-then-append).
 * No syscall; the batch buffer grows geometrically to its peak.
 * 0; RKV_EINVAL when first_index would leave a gap (above the group's last
 * index + 1, when it has entries) or is at or below its log start, or an
 * entry is larger than CORE_LOG_MAX_PAYLOAD; -ENOMEM; or the log's failure
 * (-EIO). A new group id is created on first use.
 */
int core_log_append(struct core_log *log, uint64_t group, uint64_t first_index,
		    const struct raft_entry *entries, size_t n);

/* Stages the group's hard state. 0, -ENOMEM or the log's failure. */
int core_log_set_hard_state(struct core_log *log, uint64_t group,
			    const struct raft_hard_state *hs);

/*
 * Stages a LOG_RESET: the group's log now starts after (index, term) (a
 * snapshot was installed); every stored entry of the group is dropped.
 * 0, -ENOMEM or the log's failure.
 */
int core_log_reset(struct core_log *log, uint64_t group, uint64_t index, uint64_t term);

/*
 * The group no longer needs its entries <= index (its state machine flushed
 * them and Raft compacted them): segments only they kept may be deleted.
 * Never moves backwards; unknown groups are ignored. No syscall.
 */
void core_log_release(struct core_log *log, uint64_t group, uint64_t index);

/*
 * The replica left this core: stages a REMOVE record; after it is durable
 * the group's records are garbage and it pins nothing. No callback is made
 * for the group from now on. Unknown groups are ignored. 0, -ENOMEM or the
 * log's failure.
 */
int core_log_remove_group(struct core_log *log, uint64_t group);

/*
 * Once per loop pass: when no batch is in flight, stores the pending batch
 * and issues one fdatasync for it through the ring; moves to a new segment
 * when the active one passed the size bound; deletes segments nobody needs.
 * Never blocks.
 */
void core_log_flush(struct core_log *log);

/* True when nothing is pending or in flight (the ring may be torn down). */
bool core_log_idle(const struct core_log *log);

/* 0, or the error that failed the log for good. */
int core_log_error(const struct core_log *log);

/*
 * How much log `group` keeps on disk: the segments from the oldest one that
 * holds an entry it has not released, through the active one, and their
 * bytes. 0 and 0 when it pins nothing (or is unknown).
 */
void core_log_group_pinned(const struct core_log *log, uint64_t group,
			   uint64_t *segments, uint64_t *bytes);

/*
 * The group that pins the oldest segment (the one to hand a snapshot to
 * rather than let it keep the disk), with the bytes it keeps. Returns false
 * when no group pins anything. O(groups): for a periodic check.
 */
bool core_log_oldest_pinner(const struct core_log *log, uint64_t *group, uint64_t *bytes);

/* Counters since open (see struct core_log_stats), for metrics. */
void core_log_stats(const struct core_log *log, struct core_log_stats *out);

/*
 * Start-up, after core_log_open: checks that the log still holds what the
 * group's state machine says it took from it. `index` is the state
 * machine's flushed index F (its state up to F is in its own files, e.g.
 * a shard's SSTables); the log then must hold entry F (release is only
 * ever called below F) or start at or after it (a snapshot installed at
 * F). `holder` names the file that says so, for the message. Less means
 * segments were removed or cut: the hard state and the acknowledged entries
 * after F went with them. 0, or RKV_ECORRUPT with the log, the group and
 * the entries lost in `err` (also logged: start-up errors from a core may
 * be cut short).
 */
int core_log_check_holds(const struct core_log *log, uint64_t group, uint64_t index,
			 const char *holder, char *err, size_t errlen);

/*
 * A segment file name, "log-<seq, 20 digits>.log": 0 with *seq, else -1.
 * For tools that check a data dir without opening the log.
 */
int core_log_segment_name_parse(const char *name, uint64_t *seq);
/* The segment seqs in `dir`, ascending, in a malloc'd array the caller
 * frees (other files are skipped). 0 or -errno. */
int core_log_segments_list(const char *dir, uint64_t **seqs, size_t *count);
/* The name of segment `seq` into buf: 0, or -ENAMETOOLONG. */
int core_log_segment_name(char *buf, size_t len, uint64_t seq);

#endif
