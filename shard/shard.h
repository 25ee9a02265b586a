/*
 * One shard replica: its memtable and its WAL, owned by exactly one core.
 *
 * Two modes, chosen at open. Single-node (the default): the shard keeps its
 * own WAL and numbers its records, as below. Replicated
 * (shard_config.replicated): the shard is a Raft group's state machine; it
 * has no WAL, committed log entries come in through shard_apply() in index
 * order, and its state after a restart is its SSTables at the manifest's
 * flushed index. Both execute commands with the same code (shard_exec.c).
 *
 * Write path (group commit): shard_write() encodes the command as the next WAL
 * record into the pending batch and reserves its memtable space; once per loop
 * iteration shard_flush() hands the pending batch to the kernel as one write
 * linked to one fdatasync, unless a batch is already in flight (then writes
 * keep gathering behind it). When the fdatasync completes, every record of the
 * batch is applied to the memtable in index order and only then are the
 * waiters told, so an acknowledged write is durable and visible, and a read
 * never sees a write that could still be lost.
 *
 * The record is index + term + command: the layout of a Raft log entry, so the
 * WAL can become the Raft log without changing this file's format.
 *
 * Storage is an LSM tree (docs/ARCHITECTURE.md, "A shard: the LSM tree"): a
 * full memtable becomes immutable and is flushed to an L0 SSTable in slices
 * on the core's ring, a manifest log names the tables of each level, WAL
 * segments whose records are all in tables are deleted, and leveled
 * compaction runs in slices too. Reads go memtable, immutable memtable, L0
 * newest first, then one table per level, blocks through the core's cache.
 */
#ifndef RINGKV_SHARD_SHARD_H
#define RINGKV_SHARD_SHARD_H

#include <stdbool.h>
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#include "io/ring.h"
#include "shard/command.h"

struct shard;
struct shard_waiter;
struct shard_read;
struct block_cache;
struct block_cache_handle;
struct lsm_version;
struct lsm_table;

/* What applying one command did, as seen at its place in the log. */
struct shard_result {
	int error;            /* 0; RKV_EINVAL: INCRBY on a non-integer; -ERANGE:
			       * INCRBY overflow; RKV_ETOOLARGE: APPEND past its
			       * limit. The command then changed nothing. */
	bool existed;         /* the key held a value before */
	bool applied;         /* the value changed (false: NX/XX condition failed) */
	int64_t integer;      /* INCRBY: the new value; APPEND: the new length */
	const void *old_value;/* with want_prior and existed: the previous value,
			       * valid only during the done callback */
	size_t old_len;
};

/*
 * Completion of an asynchronous point read: rv 0 with the value (valid only
 * during the call), RKV_ENOTFOUND, RKV_ECORRUPT (a block failed its checks;
 * the file and offset were logged) or a negative errno (the read failed).
 */
typedef void shard_read_fn(struct shard_read *rd, int rv, const void *value, size_t len);

/*
 * A point read in progress, embedded in the caller's request. The caller
 * sets `done` and `arg`; the rest is the shard's. The key passed to
 * shard_read() must stay valid until `done` runs.
 */
struct shard_read {
	shard_read_fn *done;
	void *arg;                      /* the caller's context */
	uint64_t deadline;              /* out with a value: its expiry deadline,
					 * Unix ms, 0 for none (a value past it
					 * by this node's clock reads as absent) */
	/* private to the shard */
	struct shard *s;
	const uint8_t *key;
	size_t key_len;
	uint64_t hash;                  /* bloom_hash(key) */
	struct lsm_version *version;    /* held while the read walks it */
	unsigned level;                 /* position: level, file within it */
	size_t file;
	struct lsm_table *table;        /* table of the block being read */
	uint64_t offset;                /* that block's offset and length */
	uint32_t len;
	uint8_t *buf;                   /* the block read lands here */
	struct block_cache_handle *pin; /* block holding the answer */
	struct io_op op;
	bool warm_only;                 /* just fill the cache (write path):
					 * its value is the stored bytes ... */
	unsigned found_flags;           /* ... with these MEMTABLE_* flags */
};

/*
 * Completion of one write: rv 0 when durable and applied (then `res` says
 * what the command did); RKV_EFULL: the write could not be stored (disk full,
 * or too many writes stalled behind a flush: nothing was written);
 * RKV_ECORRUPT: the key's current value could not be read (a damaged
 * SSTable block; nothing was written); -EIO when the WAL could not be made
 * durable (the shard then refuses writes until restart).
 */
typedef void shard_done_fn(struct shard_waiter *w, int rv, const struct shard_result *res);

enum shard_prior {
	SHARD_PRIOR_UNKNOWN,  /* not looked up yet */
	SHARD_PRIOR_MEMORY,   /* the memtables decide (they hold the key, or nothing does) */
	SHARD_PRIOR_TABLE,    /* an SSTable holds the current value: prior, prior_len */
};

struct shard_waiter {
	shard_done_fn *done;
	struct shard_waiter *next; /* batch or stall list, owned by the shard until done */
	bool want_prior;           /* report the previous value in res->old_value */
	/* private to the shard */
	struct command cmd;        /* the command while it waits in the stall queue */
	uint8_t prior_state;       /* enum shard_prior */
	uint32_t prior_len;
	const void *prior;         /* into the pinned block: stored bytes ... */
	unsigned prior_flags;      /* ... with these MEMTABLE_* flags */
	struct block_cache_handle *prior_pin;
	bool warming;              /* `warm` is looking the key up in the tables */
	bool warm_done;            /* its answer: warm_rv, prior, prior_pin */
	int warm_rv;
	uint64_t warm_gen;         /* shard generation when it started */
	size_t stall_bytes;        /* counted against the stall limit */
	size_t reserved;           /* memtable bytes set aside for it while queued */
	struct shard_read warm;
};

/*
 * Replicated mode hooks (see shard_apply below). shard_flushed_fn: a flush
 * made `flushed_index` durable in SSTables (the manifest record is synced):
 * log entries up to it are no longer needed to rebuild this shard.
 * shard_apply_ready_fn: shard_apply refused an entry with RKV_EAGAIN and
 * the queue has drained to half its limit: hand entries in again. Both run
 * from within shard calls or ring completions, never re-entrantly inside
 * shard_apply's own hand-in; they may call shard_apply.
 */
typedef void shard_flushed_fn(void *arg, struct shard *s, uint64_t flushed_index);
typedef void shard_apply_ready_fn(void *arg, struct shard *s);

/*
 * What the memtables of one core's shards may hold together (issue #18: a
 * node of thousands of replicas cannot give each its own 64 MiB). Owned by
 * the core, shared by its shards, touched only on that core. Each shard
 * adds what its memtables hold as it applies and takes it back as they go;
 * the core seals the largest memtable when `used` passes `limit`
 * (shard_seal), so the bound is soft: flushes under way still hold theirs.
 */
struct shard_mem_budget {
	uint64_t limit;             /* bytes; 0 = none */
	uint64_t used;              /* held by the memtables of the core's shards */
	uint64_t flushing;          /* of used, by sealed ones (flushing, or held
				     * by damage): sealing more gives none back */
	uint64_t seals;             /* memtables sealed early to keep within it */
};

struct shard_config {
	uint32_t id;
	const char *dir;            /* the shard's directory, created if missing */
	uint64_t memtable_size;     /* arena bytes of one memtable */
	struct block_cache *cache;  /* the core's block cache (shared by its shards) */
	struct shard_mem_budget *mem_budget; /* the core's (shared); NULL = none */
	bool wal_sync_off;          /* BENCHMARK ONLY: group writes without fdatasync;
				     * acknowledged writes may be lost on power failure */
	uint64_t table_size;        /* compaction output files rotate here; 0 = 64 MiB */
	uint64_t level_base;        /* L1 target / 10; 0 = compaction default (8 MiB) */
	uint64_t stall_limit;       /* bytes of writes that may wait for a flush; 0 = 16 MiB */
	size_t block_size;          /* SSTable data block target; 0 = 4 KiB */
	uint64_t manifest_rewrite_min; /* the manifest is rewritten whole once it is
				     * 4x the version's size and at least this
				     * long; 0 = 1 MiB */
	/* Replicated mode: no WAL of its own; committed log entries come in
	 * through shard_apply (shard_write is refused). */
	bool replicated;
	uint64_t apply_limit;       /* bytes of entries that may wait to be applied
				     * before shard_apply says RKV_EAGAIN; 0 = 16 MiB */
	shard_flushed_fn *on_flushed;        /* may be NULL */
	shard_apply_ready_fn *on_apply_ready; /* may be NULL */
	void *hook_arg;
};

struct shard_stats {
	uint64_t writes;       /* records made durable */
	uint64_t batches;      /* WAL batches made durable */
	uint64_t wal_bytes;    /* bytes appended to the WAL since start */
	uint64_t reads;
	uint64_t replayed;     /* records replayed at start-up */
	uint64_t flushes;      /* memtables written to L0 */
	uint64_t compactions;  /* compactions installed (trivial moves included) */
	uint64_t compact_read; /* bytes read by compactions */
	uint64_t compact_written;
	uint64_t compact_us;   /* wall time of installed compactions, start to
			* install (they run in slices between requests) */
	uint64_t stalls;       /* writes that waited in the stall queue (replicated:
			        * times apply waited for a flush to make room) */
	uint64_t block_reads;  /* blocks read from disk for gets and scans */
	uint64_t wal_deleted;  /* WAL segments deleted */
	uint64_t manifest_rewrites; /* manifest rewritten whole while running */
	uint64_t bg_errors;    /* flush/compaction failures (retried) */
	uint64_t applied;      /* replicated: entries applied (NOOPs included) */
	uint64_t apply_skipped;/* replicated: entries at or below the applied index */
	uint64_t apply_errors; /* replicated: entries skipped as undecodable */
	uint64_t table_files;  /* SSTables in the current version */
	uint64_t table_bytes;
	uint64_t drops;        /* replicated: FLUSH entries applied (shard_drop.c) */
};

/*
 * Opens the shard (blocking I/O, before the reactor loop runs): the manifest,
 * every SSTable it names (footer and metadata checked against it), then the
 * WAL records not yet in SSTables, replayed into a fresh memtable. `io` is the
 * owning core's ring. 0, or an error with the reason (file, offset) in `err`.
 */
int shard_open(struct shard **out, const struct shard_config *cfg,
	       struct io_ring *io, char *err, size_t errlen);

/*
 * Start-up, replicated mode, once the caller has checked the shard's
 * flushed index against its log (the log holds the entries after it, so
 * the manifest is the current one): deletes the tables numbered at or above
 * the manifest's next file number, left by a flush or compaction whose edit
 * never reached it. Until then they are kept: an older MANIFEST put back by
 * hand would otherwise make the newer tables look unfinished. Blocking.
 * (Single-node mode deletes them in shard_open.)
 */
void shard_drop_unfinished(struct shard *s);

/*
 * Frees the shard. The caller ensures no foreground work is in flight
 * (shard_idle: replicated, no entry waiting to be applied; queued entries
 * are dropped unanswered) and no snapshot is pinned (shard_snapshot_end);
 * background I/O still in flight (a flush or compaction slice) is waited
 * for here, after the loop stopped, and the unfinished job is abandoned
 * (its file is removed at the next start).
 */
void shard_close(struct shard *s);

/*
 * Reads `key` from memory only: the memtables, the bloom filters and the
 * block cache. 0 with *value (valid until the next call into this shard or
 * its ring: copy it at once), RKV_ENOTFOUND, RKV_ECORRUPT, or RKV_EAGAIN when
 * a block must be read from disk (use shard_read). A value whose expiry
 * deadline this node's clock has passed is RKV_ENOTFOUND; any other comes
 * without its deadline (shard/value_deadline.h; rd->deadline of shard_read
 * gives it).
 */
int shard_get(struct shard *s, const void *key, size_t key_len,
	      const void **value, size_t *value_len);

/*
 * Reads `key`: memtable, immutable memtable, L0 newest first, then L1..Ln,
 * each table through its bloom filter and index, blocks through the block
 * cache. Returns 0 when answered synchronously from memory (rd->done is then
 * NOT called; *value as for shard_get), RKV_ENOTFOUND / RKV_ECORRUPT
 * likewise synchronous, or 1: a block is being read and rd->done will be
 * called from a completion. The key must stay valid until then.
 */
#define SHARD_READ_PENDING 1
int shard_read(struct shard *s, const void *key, size_t key_len, struct shard_read *rd,
	       const void **value, size_t *value_len);

/*
 * Queues a command. 0: w->done will be called from a later completion (or,
 * for a write that had to wait, possibly from within a later shard call).
 * RKV_EFULL: no room (disk full, or the stall queue is over its limit);
 * RKV_ETOOLARGE; -EIO: the shard's WAL failed earlier; RKV_EINVAL: the shard
 * is in replicated mode (use shard_apply). Nothing is queued on an error. The command's key and value must stay valid until done.
 *
 * Commands whose effect depends on the current value (every op but PUT, and
 * PUT with want_prior) have that value looked up before they enter the log:
 * from the memtables, or from SSTables through the block cache (reading the
 * block first when needed, while the write waits in order behind others).
 */
int shard_write(struct shard *s, const struct command *cmd, struct shard_waiter *w);

/*
 * Replicated mode: hands in the committed log entry `index`. Entries come
 * strictly in index order: `index` is the next one (the last accepted + 1),
 * or at or below the last accepted, which is skipped (the state already
 * holds it: after a restart the shard starts at its flushed index, and
 * Raft may hand in older entries again). The shard applies entries in
 * index order, asynchronously when needed: a command whose effect depends
 * on a current value that only an SSTable holds waits for its block (read
 * through the block cache on the ring), and every later entry waits behind
 * it; an entry that needs no read (PUT, a DELETE without waiter) applies
 * before shard_apply returns when nothing waits before it. The payload is
 * copied; the caller may free it on return.
 *
 * `type` SHARD_ENTRY_COMMAND: `payload` is a command as command_encode()
 * writes it (a Raft NORMAL entry). SHARD_ENTRY_NOOP: no effect; only the
 * applied index moves (Raft NOOP and configuration entries).
 *
 * `w` (may be NULL: a follower's entry) is answered once, from within this
 * call or a later shard call or completion: rv 0 with `res` (what the
 * command did at its place in the log; NOOP: all zero); -EALREADY: `index`
 * was skipped as above (nothing done, res NULL); RKV_ECORRUPT: the payload
 * does not decode, the entry was skipped, counted in stats.apply_errors and
 * logged, on every replica alike (it still advances the applied index);
 * otherwise the error that stopped apply (shard_apply_error). With
 * w->want_prior, res->old_value is the previous value (during the call).
 * Only w->done and w->want_prior are read; the rest of w is not used.
 *
 * Returns 0 (accepted: applied, skipped or queued); RKV_EAGAIN: the queue
 * of entries waiting to be applied holds apply_limit bytes or more (a
 * flush is behind): nothing was taken, `w` is not answered, hand the same
 * entry in again after on_apply_ready ran (or poll shard_apply_pending);
 * RKV_EINVAL: not in replicated mode, an unknown type, or `index` leaves a
 * gap; shard_apply_error()'s error once apply stopped; -ENOMEM.
 */
enum shard_entry_type {
	SHARD_ENTRY_COMMAND = 0,
	SHARD_ENTRY_NOOP = 1,
};
int shard_apply(struct shard *s, uint64_t index, enum shard_entry_type type,
		const void *payload, size_t len, struct shard_waiter *w);

/* shard_apply of a NOOP entry without waiter. */
int shard_apply_skip(struct shard *s, uint64_t index);

/*
 * A hint for a COMMAND entry that shard_apply will see soon (`payload` as
 * it will be handed in): brings the memory its key's write touches into
 * the cache, in two halves (memtable_prefetch's `node`). Changes nothing;
 * bytes that are not a command are ignored.
 */
void shard_prefetch(const struct shard *s, const void *payload, size_t len, bool node);

/*
 * The last index whose effect reads see (replicated mode: applied to the
 * memtables; single-node mode: the last durable record applied).
 */
uint64_t shard_applied_index(const struct shard *s);

/* The last index whose effect is in SSTables (the manifest's flushed index):
 * in replicated mode the shard's state after a restart. */
uint64_t shard_flushed_index(const struct shard *s);

/* The last index shard_apply accepted (applied or waiting). */
uint64_t shard_apply_last(const struct shard *s);

/* Entries accepted and not applied yet, and their bytes. */
size_t shard_apply_pending(const struct shard *s, size_t *bytes);

/*
 * 0, or the error that stopped apply for good: the current value a command
 * needs could not be read (RKV_ECORRUPT: a damaged block; -EIO; -ENOMEM).
 * Applying on without it would make this replica diverge, so it refuses
 * every later entry; the replica needs repair from its peers (a snapshot).
 */
int shard_apply_error(const struct shard *s);

/*
 * Snapshots (replicated mode): the state at the flushed index, shipped as
 * the SSTables of the current version plus a manifest image naming them.
 *
 * Sender: shard_snapshot_begin() pins the current version (its tables stay
 * open and on disk, even if a compaction drops them, until
 * shard_snapshot_end) and describes it: `index` (the flushed index: the
 * last log index whose effect the files hold), the manifest image (a whole
 * MANIFEST file's bytes, malloc'd, the snapshot's own) and the table files.
 * Entries above `index` (in the memtables) are not part of it: the receiver
 * gets them from the log. 0, RKV_EINVAL (not replicated), RKV_ECORRUPT (a
 * table of the shard is damaged: never shipped, shard_damaged_tables) or
 * -ENOMEM.
 */
#define SHARD_FILE_NAME_MAX 32

struct shard_snapshot_file {
	char name[SHARD_FILE_NAME_MAX]; /* "<number>.sst" in the shard directory */
	uint64_t size;
};

struct shard_snapshot {
	uint64_t index;
	uint8_t *manifest;
	size_t manifest_len;
	struct shard_snapshot_file *files;
	size_t nfiles;
	/* private to the shard */
	struct shard *s;
	struct lsm_version *version;
	struct lsm_table **tables;      /* parallel to files */
};

int shard_snapshot_begin(struct shard *s, struct shard_snapshot *snap);

/* Lets the version go (its dropped tables are then deleted) and frees the
 * description. Every chunk read must have completed. */
void shard_snapshot_end(struct shard_snapshot *snap);

/*
 * Reads `len` bytes at `offset` of file `file` of the snapshot into `buf`,
 * through the shard's ring. 0: c->done(c, rv) runs from the completion, rv
 * the bytes read (fewer only at the end of the file) or a negative errno;
 * RKV_EINVAL: no such file or offset past its end (done not called).
 */
struct shard_snapshot_chunk;
typedef void shard_snapshot_chunk_fn(struct shard_snapshot_chunk *c, int rv);
struct shard_snapshot_chunk {
	shard_snapshot_chunk_fn *done;
	void *arg;
	/* private to the shard */
	struct shard *s;
	struct io_op op;
};

int shard_snapshot_read(struct shard_snapshot *snap, size_t file, uint64_t offset,
			void *buf, uint32_t len, struct shard_snapshot_chunk *c);

/*
 * Receiver.
 *
 * shard_snapshot_staging_path(): `dir`.incoming, where a snapshot of the
 * shard at `dir` is staged. 0 or -ENAMETOOLONG.
 *
 * shard_snapshot_stage() (BLOCKING: start-up, tests, and the rare fallback
 * when a leftover holds files ringkv did not write) makes an empty staging
 * directory, a leftover one removed first, and puts its path in
 * `staging`. The caller writes each file of the snapshot there under its
 * name (shard_snapshot_file.name, size as listed). A running core stages
 * through its ring instead (cluster/snapshot_recv.c: unlinkat, rmdir,
 * mkdirat).
 *
 * shard_install_start() installs the staged snapshot on the ring (below);
 * shard_snapshot_install() is the same, BLOCKING on a private ring (tests):
 * *index gets the snapshot's flushed index; open the shard again, it
 * starts there. 0, or an error with the reason in `err` (RKV_ECORRUPT: the
 * image or the files do not match; `dir` unchanged).
 */
int shard_snapshot_staging_path(char *out, size_t len, const char *dir);
int shard_snapshot_stage(const char *dir, char *staging, size_t staging_len, char *err,
			 size_t errlen);
int shard_snapshot_install(const char *dir, const uint8_t *manifest, size_t manifest_len,
			   uint64_t *index, char *err, size_t errlen);

/*
 * Installing a staged snapshot through the core's ring (shard_install.c),
 * one operation in flight, each step continued from its completion:
 * checks the manifest image (it must decode) and every table it names
 * (staged with the size it says, footer, metadata, key range) and fsyncs
 * each, writes the image as the staged MANIFEST (fdatasync, rename),
 * fsyncs the staging directory, swaps it with `dir` in one rename
 * (RENAME_EXCHANGE; a plain rename when `dir` does not exist), fsyncs the
 * parent directory, opens the new shard from the files already open and
 * checked (no read, no blocking call), then removes the old replica (now
 * at the staging path). A crash at any point leaves `dir` as the old
 * replica or the new one, never a mix.
 */
enum shard_install_step {
	INSTALL_STRAY_UNLINK,    /* staged files the image does not name */
	INSTALL_TABLE_OPEN,      /* per table: */
	INSTALL_TABLE_STATX,
	INSTALL_TABLE_FOOTER,
	INSTALL_TABLE_META,
	INSTALL_TABLE_FSYNC,
	INSTALL_MANIFEST_OPEN,   /* MANIFEST.tmp */
	INSTALL_MANIFEST_WRITE,
	INSTALL_MANIFEST_SYNC,
	INSTALL_MANIFEST_RENAME, /* to MANIFEST */
	INSTALL_ORIGIN_OPEN,     /* with an origin term: INSTALLED (install_origin.h) */
	INSTALL_ORIGIN_WRITE,
	INSTALL_ORIGIN_SYNC,
	INSTALL_ORIGIN_CLOSE,
	INSTALL_STAGING_OPEN,
	INSTALL_STAGING_SYNC,
	INSTALL_QUARANTINE_MKDIR, /* a damaged old replica: DIR/quarantine/, */
	INSTALL_QUARANTINE_MOVE,  /* the staging directory moved into it, */
	INSTALL_QUARANTINE_OPEN,  /* which is opened (fsync'ed after the exchange) */
	INSTALL_PARENT_OPEN,
	INSTALL_EXCHANGE,        /* the commit point */
	INSTALL_PARENT_SYNC,
	INSTALL_QUARANTINE_SYNC,  /* the old replica's new name durable */
	INSTALL_PARENT_CLOSE,
	INSTALL_BUILD,           /* no I/O: the new shard; `installed` runs */
	INSTALL_OLD_UNLINK,      /* the old replica's files, at the staging path */
	INSTALL_OLD_RMDIR,
	INSTALL_CLOSE,           /* what is still open (after a failure, or no cfg) */
	INSTALL_DONE,            /* `finished` runs */
};

struct shard_install_result {
	int rv;                 /* 0: installed */
	bool swapped;           /* `dir` now holds the new replica (even when rv
				 * != 0: a failed parent fsync or building the
				 * shard); false: `dir` is unchanged */
	struct shard *fresh;    /* swapped and built (cfg given): the new shard,
				 * the caller's; NULL otherwise */
	uint64_t index;         /* the snapshot's flushed index */
	const char *err;        /* the reason when rv != 0 */
};

struct shard_install_stats {
	uint64_t steps;         /* steps taken (BUILD and DONE included) */
	uint64_t ops;           /* ring operations completed */
	bool plain_rename;      /* nothing was at `dir` */
	bool quarantined;       /* the old replica was moved into quarantine */
};

typedef void shard_install_fn(void *arg, const struct shard_install_result *res);
typedef void shard_install_finished_fn(void *arg);
typedef bool shard_install_hook_fn(void *arg, enum shard_install_step step);

struct shard_install_args {
	const struct shard_config *cfg; /* the shard to build (replicated), at
					 * cfg->dir; or NULL: build none (dir) */
	const char *dir;                /* without cfg */
	struct io_ring *io;
	const uint8_t *manifest;        /* the image: valid until finished */
	size_t manifest_len;
	const char (*staged)[SHARD_FILE_NAME_MAX]; /* names written into the
					 * staging directory (those the image does
					 * not name are removed); valid until finished */
	size_t nstaged;
	const struct shard *old;        /* the shard open at `dir` (NULL: none):
					 * its files are removed after the swap, or
					 * moved into quarantine when it is damaged
					 * (see `quarantine`). Read at start only; it
					 * may go on serving reads, but must write
					 * nothing. */
	const char *quarantine;         /* why the replica at `dir` is replaced, if
					 * it is damaged: its files are then moved
					 * into <parent of dir>/quarantine/<name of
					 * dir>-<UTC time>-<reason>, never deleted
					 * (docs/cluster/repair-design.md). NULL:
					 * "damaged-tables" when `old` has damaged
					 * tables, "apply-stopped" when its apply
					 * stopped on RKV_ECORRUPT, else removed.
					 * Letters, digits and '-' only. */
	uint64_t origin_index;          /* the snapshot's index and the term of */
	uint64_t origin_term;           /* its entry (0: none): written into the
					 * new replica as INSTALLED before the
					 * exchange (shard/install_origin.h), so a
					 * restart before the core log's LOG_RESET
					 * knows its tables came from a peer */
	shard_install_fn *installed;    /* once, from a completion: the outcome */
	shard_install_finished_fn *finished; /* once, last: nothing in flight;
					 * the installer may be freed in it */
	void *arg;
	shard_install_hook_fn *step_hook; /* tests: called before each step;
					 * false stops the installer there (as a
					 * crash would), no callback runs */
};

struct shard_install;

/*
 * Starts an install. 0: the steps run from the ring's completions; or an
 * error with the reason in `err` (the image does not decode, memory, a
 * path too long), nothing done and no callback.
 */
int shard_install_start(struct shard_install **out, const struct shard_install_args *a,
			char *err, size_t errlen);
/* An operation in flight or steps left (false once finished, or stopped by
 * the hook). */
bool shard_install_busy(const struct shard_install *in);
/* Shutdown: an install not past its exchange fails at its next step
 * (RKV_ESHUTDOWN, `dir` unchanged); one past it runs to the end. */
void shard_install_stop(struct shard_install *in);
const struct shard_install_stats *shard_install_stats(const struct shard_install *in);
const char *shard_install_step_name(enum shard_install_step step);
/* Only when !shard_install_busy (or from `finished`). */
void shard_install_free(struct shard_install *in);

/*
 * True when the shard may be closed without waiting: no ring operation of
 * it is in flight and no entry waits to be applied (a background job cut
 * between slices is abandoned by shard_close and cleaned at the next open).
 * The replica stops handing in entries and driving slices, then polls this
 * before it closes the shard to install a snapshot.
 */
bool shard_snapshot_quiet(const struct shard *s);

/*
 * For a shard about to be closed on a running core (a replaced replica,
 * quiet: shard_snapshot_quiet): hands each of its files' descriptors to
 * the ring (IORING_OP_CLOSE, every completion on `op`), so shard_close
 * then only frees memory. Returns how many closes were submitted: `op`
 * must live until that many completions ran. No damage mark is written
 * at the close (the replica is being replaced).
 */
unsigned shard_close_files_async(struct shard *s, struct io_op *op);

/*
 * Start-up recovery (BLOCKING, before shard_open): removes `dir`.incoming, a
 * staging directory left by a crash during a stage or right after the
 * exchange (see shard_snapshot_install: `dir` is then whole, old or new).
 * 0 or a negative errno with the reason in err.
 */
int shard_snapshot_recover(const char *dir, char *err, size_t errlen);

/*
 * Asynchronous scan. Visits keys in order from `start` (inclusive, or
 * exclusive with `after`) over memtables and SSTables, skipping deleted
 * ones, until `fn` returns false (that key then counts as not examined) or
 * `examine` keys (deleted ones included) were looked at. Then `done` runs
 * once, possibly before shard_scan returns: rv 0 or RKV_ECORRUPT / -errno;
 * `last` (NULL if no key was examined) is the last key examined, valid
 * during the call; `exhausted` says no key is left past it. The start key
 * must stay valid until done. Returns 0, or -ENOMEM (done not called).
 */
typedef bool shard_scan_fn(void *arg, const void *key, size_t key_len,
			   const void *value, size_t value_len);
typedef void shard_scan_done_fn(void *arg, int rv, bool exhausted,
				const void *last, size_t last_len);
int shard_scan(struct shard *s, const void *start, size_t start_len, bool after,
	       size_t examine, shard_scan_fn *fn, shard_scan_done_fn *done, void *arg);

/*
 * shard_scan that visits, instead of the live keys, the values that carry a
 * deadline (shard/value_deadline.h), with it and whether this node's clock
 * has passed it: the expired ones are what the leader proposes
 * EXPIRE_DELETE for. Every key counts towards `examine`, as for shard_scan.
 */
typedef bool shard_scan_expired_fn(void *arg, const void *key, size_t key_len,
				   uint64_t deadline, bool expired);
int shard_scan_expired(struct shard *s, const void *start, size_t start_len, bool after,
		       size_t examine, shard_scan_expired_fn *fn, shard_scan_done_fn *done,
		       void *arg);
/*
 * Both at once, for an exact count of the stored keys (DBSIZE,
 * server/redis_count.c): `expired` sees every value carrying a deadline,
 * then `fn` the live ones as shard_scan (an expired value is not shown to
 * it).
 */
int shard_scan_all(struct shard *s, const void *start, size_t start_len, bool after,
		   size_t examine, shard_scan_fn *fn, shard_scan_expired_fn *expired,
		   shard_scan_done_fn *done, void *arg);

/*
 * Keys holding a value: an ESTIMATE once SSTables exist. Each memtable and
 * table counts its values minus its tombstones, so a key overwritten in two
 * places counts twice and a delete of a key held elsewhere subtracts one,
 * until compaction merges them; exact while everything is in one memtable.
 */
uint64_t shard_live_keys(const struct shard *s);
/* Whether shard_live_keys is exact now: no SSTable holds anything (every
 * value and tombstone is in the memtables, where the count is kept by apply
 * from what each key held). */
bool shard_live_keys_exact(const struct shard *s);

/* Memtable bytes in use (both memtables) and the capacity of one. */
void shard_memory(const struct shard *s, size_t *used, size_t *capacity);
/*
 * Replicated shards: seals the active memtable now, for a flush, to give
 * its memory back (the core's memtable budget). 1 when sealed, 0 when it
 * cannot be now (empty, a flush still runs, closing), or -ENOMEM.
 */
int shard_seal(struct shard *s);
bool shard_sealable(const struct shard *s);
/* Bytes of the active memtable (what shard_seal would give back). */
size_t shard_active_memtable(const struct shard *s);

/*
 * Once per loop iteration: submits the pending WAL batch if none is in
 * flight, moves stalled writes on, and runs one bounded slice of background
 * work (memtable flush, compaction).
 */
void shard_flush(struct shard *s);

/* No write pending, stalled or in flight (replicated: no entry waiting to
 * be applied). */
bool shard_idle(const struct shard *s);
/*
 * True when shard_flush() has work it should do on this loop pass: a
 * flush or compaction under way, a memtable waiting to be flushed, entries
 * waiting for room, a FLUSH's drop, a manifest rewrite or damage mark in
 * progress. False says only that nothing is under way: whether a new
 * compaction or manifest rewrite is due is found by shard_flush(), which a
 * core with many shards therefore also calls on every shard now and then
 * (cluster_core.c: every 10 ms), not only on busy ones. A shard that is not
 * replicated is always busy (its write path runs from shard_flush).
 */
bool shard_background_busy(const struct shard *s);

/* No flush or compaction running, waiting or due (tests, benchmarks). */
bool shard_background_idle(const struct shard *s);

/* Flush and compaction are failing for lack of disk space (retrying). */
bool shard_disk_full(const struct shard *s);

uint32_t shard_id(const struct shard *s);
void shard_get_stats(const struct shard *s, struct shard_stats *out);

/*
 * Damaged tables (issue 14, shard/shard_damage.c): how many tables of the
 * shard are known damaged (a block failed its checksum; marked in the
 * manifest, or about to be), and the number of the i-th (0 past the end).
 * While there is one, compaction is stopped, and once level 0 holds its
 * limit of files flushes are held and shard_writes_refused() is true: the
 * caller refuses new writes (DATA_LOSS, naming the damage) rather than let
 * level 0 or the log grow without bound. shard_flush_held: the same test.
 */
size_t shard_damaged_tables(const struct shard *s);
uint64_t shard_damaged_table(const struct shard *s, unsigned i);
bool shard_writes_refused(const struct shard *s);
bool shard_flush_held(const struct shard *s);

/* Files per level of the current version (tests, INFO). */
void shard_level_files(const struct shard *s, unsigned counts[], unsigned nlevels);

#endif
