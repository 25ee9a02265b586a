/*
 * The inside of a shard, shared by its files: shard.c (write path, memtable
 * switch, WAL segments), shard_open.c (open/close), shard_exec.c (one command
 * against the memtables, both modes), shard_apply.c (replicated mode:
 * committed entries applied in order), shard_read.c (gets and scans),
 * shard_job.c (flush, compaction, manifest appends, WAL retention) and
 * lsm_version.c (tables, versions and their reference counts).
 *
 * Ownership. A `struct lsm_table` is one open SSTable (fd + metadata). A
 * `struct lsm_version` is the set of tables of each level at one moment;
 * readers and jobs hold a reference to the version they walk, so a table
 * dropped by a compaction stays open (and on disk) until the last reader
 * of an older version lets go, and is then closed and unlinked. Memtables
 * are reference counted the same way (`struct lsm_mem`), for scans that
 * iterate them across block reads.
 */
#ifndef RINGKV_SHARD_SHARD_INTERNAL_H
#define RINGKV_SHARD_SHARD_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shard/block_cache.h"
#include "shard/compaction_pick.h"
#include "shard/deadline_index.h"
#include "shard/manifest.h"
#include "shard/memtable.h"
#include "shard/shard.h"
#include "shard/shard_multi.h"
#include "shard/sstable.h"
#include "shard/wal_format.h"
#include "shard/wal_map.h"

#define SHARD_SLICE_BYTES (256u << 10)   /* output bytes per background slice */
#define SHARD_READ_CHUNK (256u << 10)    /* compaction input read size */
#define SHARD_DEFAULT_TABLE_SIZE (64ull << 20)
/* Default shard_config.manifest_rewrite_min. */
#define SHARD_MANIFEST_REWRITE_MIN (1ull << 20)
/* Most bytes of WAL preallocated ahead of the writer at once. */
#define SHARD_WAL_STEP_MAX (16ull << 20)
#define SHARD_DEFAULT_STALL_LIMIT (16ull << 20)
#define SHARD_BACKOFF_MIN_MS 100
#define SHARD_BACKOFF_MAX_MS 5000
/* Level 0 files at which a shard with a damaged table holds its flushes
 * and refuses writes: at least this, or 3 x the L0 compaction trigger. */
#define SHARD_DAMAGE_L0_MIN 8

struct lsm_table {
	uint64_t number;          /* <number>.sst */
	uint64_t size;
	int fd;                   /* open for reads */
	unsigned refs;            /* versions and in-flight reads holding it */
	bool obsolete;            /* gone from the manifest: unlink at the last unref */
	struct sstable_meta meta; /* index, bloom, key range */
};

struct lsm_version {
	unsigned refs;
	struct lsm_table **files[MANIFEST_LEVELS]; /* as in the manifest: L0 newest first */
	size_t count[MANIFEST_LEVELS];
};

struct lsm_mem {
	struct memtable *mt;
	unsigned refs;
	uint64_t last_index;      /* highest WAL index applied to it */
	int64_t live_delta;       /* live keys added (or removed, < 0) by its writes,
				   * as far as apply could tell */
};

struct wal_batch {
	uint8_t *buf;
	size_t len;
	size_t cap;
	uint64_t first_index;
	unsigned count;
	size_t reserved;                /* memtable bytes set aside for it */
	size_t appended;                /* APPEND value bytes queued in it */
	struct shard_waiter *head;      /* waiters in index order */
	struct shard_waiter *tail;
};

/* One SSTable being written: opened, filled in slices, synced. */
struct table_writer {
	struct sstable_builder b;
	struct sstable_buf buf;         /* bytes of the write in flight */
	uint64_t number;
	int fd;                         /* -1 until the open completes */
	bool finished;                  /* builder finished, tail taken */
	uint64_t file_size;
	struct sstable_footer footer;   /* decoded from our own tail */
	struct sstable_meta meta;       /* loaded from our own tail */
	bool have_meta;
};

enum job_state {
	JOB_IDLE,
	JOB_OPEN,        /* OPENAT of an output in flight */
	JOB_RUN,         /* between slices: the next shard_flush does one */
	JOB_IO,          /* a read or write in flight */
	JOB_SYNC,        /* fsync of the outputs + directory in flight */
	JOB_MANIFEST,    /* manifest append in flight, or waiting for the manifest */
	JOB_BACKOFF,     /* failed; a timeout will restart it */
};

/* A compaction input: one table, read in chunks. */
struct compact_src {
	struct lsm_table *table;
	struct sstable_iter it;
	uint8_t *chunk;
	uint64_t chunk_off;
	size_t chunk_len;
	bool started;
};

struct bg_job {
	enum job_state state;
	bool compaction;                /* else a flush */
	int res;                        /* result of the I/O in flight */
	int res2;
	int pending_cqes;
	struct io_op op;
	struct io_op op2;
	struct io_op timer_op;
	struct __kernel_timespec ts;
	unsigned backoff_ms;
	struct table_writer out;        /* output being written */
	struct manifest_file *outputs;  /* finished outputs (keys malloc'd) */
	size_t noutputs;
	size_t outputs_cap;
	struct lsm_table **out_tables;  /* their open tables */
	uint8_t *edit_buf;
	size_t edit_len;
	/* flush */
	struct lsm_mem *mem;
	struct memtable_iter mit;
	bool mem_done;
	/* compaction */
	struct compaction pick;
	struct lsm_version *version;    /* the version the inputs come from */
	struct manifest_file_id *deleted;
	size_t ndeleted;
	struct compact_src *src;
	size_t nsrc;
	struct merge merge;
	bool merge_live;
	size_t need_slot;               /* slot whose read is in flight */
	bool merge_end;
	bool trivial;
	int io_kind;                    /* what the I/O in flight is */
	bool edit_submitted;
	struct merge_entry held;        /* entry waiting for the next output */
	bool have_held;
	uint64_t started_us;
	bool marks_only;                /* an edit that only marks tables damaged */
	bool corrupt_named;             /* its RKV_ECORRUPT came from an input
					 * table, now marked damaged */
	size_t nmarks;                  /* s->damage_new[0..nmarks) in its edit */
};

struct bg_jobs {
	struct bg_job flush;
	struct bg_job compact;
};

/*
 * Replicated mode (shard_apply.c): committed entries accepted and not yet
 * applied, in index order, each a struct apply_rec then its payload (8-byte
 * aligned) in one buffer grown geometrically to its peak and rewound when
 * it empties. Only the head is ever being worked on.
 */
/* A block read that only warms the cache for an entry queued behind the
 * head (shard_apply.c). */
struct apply_prefetch {
	struct shard_read rd;
	uint8_t *key;                   /* the read's key, grown to the largest */
	size_t key_cap;
	bool busy;
};

#define SHARD_APPLY_PREFETCH 4          /* reads in flight for queued entries */

struct apply_queue {
	uint8_t *buf;
	size_t head;                    /* offset of the oldest record */
	size_t tail;                    /* end of the newest */
	size_t cap;
	size_t count;
	uint64_t limit;                 /* bytes: beyond, shard_apply says RKV_EAGAIN */
	uint64_t last_index;            /* last index accepted (applied or queued) */
	bool refused;                   /* RKV_EAGAIN given: call on_ready once drained */
	bool draining;
	bool drain_again;
	bool waiting_room;              /* the head waits for a flush to make room */
	int error;                      /* apply stopped for good (shard_apply_error) */
	struct shard_waiter carrier;    /* settles the head's current value */
	uint8_t *key;                   /* the head's key, stable while a block is read */
	size_t key_cap;
	struct apply_prefetch *prefetch; /* SHARD_APPLY_PREFETCH, made on first use */
	struct apply_multi multi;       /* a multi-key head's progress (shard_multi.c) */
	shard_flushed_fn *on_flushed;
	shard_apply_ready_fn *on_ready;
	void *hook_arg;
};

/* A committed FLUSH at the head of the apply queue (shard_drop.c). */
enum drop_state {
	DROP_NONE,                      /* none */
	DROP_WAIT,                      /* waits for the jobs and the manifest to be free */
	DROP_IO,                        /* its manifest edit is being written and synced */
	DROP_DONE,                      /* durable and installed: the head may go */
};

struct shard_drop {
	enum drop_state state;
	uint64_t index;                 /* the FLUSH entry's log index */
	int res;                        /* the edit's WRITE */
	int res2;                       /* its FSYNC */
	int pending_cqes;
	struct io_op op;
	struct io_op op2;
	uint8_t *edit_buf;              /* the encoded edit while it is written */
	size_t edit_len;
	struct manifest_file_id *deleted; /* every table of the manifest */
	size_t ndeleted;
	struct lsm_mem *fresh;          /* the empty memtable that takes over */
	uint64_t retry_us;              /* after a failure: not before (monotonic) */
	unsigned backoff_ms;
};

struct shard {
	uint32_t id;
	bool replicated;                /* no WAL: entries come through shard_apply */
	struct apply_queue apply;
	struct shard_drop drop;         /* replicated: a FLUSH being applied */
	char *dir;                      /* exact size: a node holds thousands */
	struct shard_mem_budget *budget; /* the core's, or NULL */
	uint64_t budget_counted;        /* of budget->used, this shard's share */
	uint64_t budget_sealed;         /* of budget->flushing, this shard's */
	int dir_fd;                     /* for OPENAT/UNLINKAT and directory fsync */
	struct io_ring *io;
	struct block_cache *cache;
	bool own_cache;                 /* created here (no cache configured) */

	/* memtables */
	struct lsm_mem *mem;            /* active: takes writes */
	struct lsm_mem *imm;            /* immutable, being flushed; NULL when none */
	uint64_t imm_drop_index;        /* drop imm once applied up to here */
	bool imm_installed;             /* its table is in the manifest */
	uint64_t memtable_size;

	/* WAL */
	int wal_fd;
	uint64_t wal_offset;            /* end of the last durable record */
	uint64_t next_index;            /* index of the next record queued */
	uint64_t applied_index;         /* last index applied to a memtable */
	uint64_t *segments;             /* first index of each live segment, ascending */
	size_t nsegments;
	size_t segments_cap;
	bool wal_sync_off;

	struct wal_batch batches[2];
	struct wal_batch *pending;      /* gathering */
	struct wal_batch *inflight;     /* being written, NULL when none */
	int sync_res;                   /* result of the batch's FSYNC (or NOP) */
	struct io_op sync_op;

	/* the segment being appended to: mapped, preallocated ahead (wal_map.h) */
	struct wal_map wal_map;
	uint64_t wal_map_min;           /* address space mapped per segment */
	uint64_t wal_step;              /* bytes preallocated ahead of the writer */
	bool grow_inflight;             /* a FALLOCATE is in flight */
	bool grow_failed;               /* the last one failed: grow only on need */
	uint64_t grow_size;             /* file size the FALLOCATE in flight asks for */
	struct io_op grow_op;

	/* memtable switch: drain the batches, create the next segment, swap */
	bool switching;
	int switch_stage;               /* 0 wait for batches, 1 open, 2 header+sync */
	int switch_fd;
	int switch_res[3];
	int switch_cqes;
	struct io_op switch_op[3];
	uint8_t switch_header[16];

	/* writes waiting, in arrival order (memtable switch, prior lookups) */
	struct shard_waiter *stall_head;
	struct shard_waiter *stall_tail;
	uint64_t stall_bytes;
	uint64_t stall_limit;
	bool draining;
	bool drain_again;
	uint64_t gen;                   /* bumped when the memtables or tables change */

	size_t reserved;                /* sum of both batches' reservations */
	size_t appended;                /* sum of both batches' APPEND bytes */
	uint8_t *scratch;               /* APPEND's concatenation, grown on demand */
	size_t scratch_cap;
	int failed;                     /* 0, or the errno that stopped writes */
	bool replaying;                 /* shard_open: apply may read tables directly */
	bool closing;

	/* LSM */
	struct manifest_version manifest;
	int manifest_fd;
	uint64_t manifest_len;
	bool manifest_cut;   /* start-up: a torn tail of the manifest was cut, so
			      * an edit naming a table may be gone (lsm_tables_open
			      * keeps tables it does not name) */
	uint64_t *unfinished; /* start-up: tables numbered at or above the next
			       * file number, kept until shard_drop_unfinished */
	size_t n_unfinished;
	bool manifest_busy;             /* an append or a rewrite is in flight */
	uint64_t manifest_rewrite_min;  /* rewrite no manifest shorter than this */
	uint64_t manifest_rewrite_at;   /* rewrite once manifest_len reaches this */
	int mrw_stage;                  /* rewrite: 0 none, 1 OPENAT, 2 the chain,
					 * 3 directory fsync to retry, 4 retrying */
	int mrw_fd;                     /* the new manifest, -1 when none */
	int mrw_cqes;
	int mrw_res[4];
	struct io_op mrw_op[4];
	struct sstable_buf mrw_buf;     /* the snapshot being written */
	struct lsm_version *version;    /* current */
	struct lsm_table **tables;      /* every open table (for lookup by number) */
	size_t ntables;
	size_t tables_cap;
	struct sstable_options sst_opt;
	struct compaction_options compact_opt;
	struct compaction_cursor cursor;
	uint64_t table_size;
	uint64_t next_file;             /* next SSTable number to hand out */
	bool compaction_broken;         /* an input was corrupt (no table to name,
					 * or no memory to mark it): stop compacting */
	struct manifest_file_id *damage_new; /* found damaged, not yet marked in
					      * the manifest (shard_damage.c) */
	size_t ndamage_new;
	size_t damage_cap;
	bool compaction_blocked;        /* the compaction due takes a damaged table */
	bool disk_full;
	struct bg_jobs *jobs;           /* made when the first flush or compaction
					 * is due (an idle replica has none):
					 * shard_jobs_idle() */
	bool jobs_nomem;                /* making them failed (said once) */

	/* reads */
	struct sstable_block_iter get_scratch;
	struct shard_deadlines deadlines; /* the deadline index (shard_deadlines.c) */
	struct block_cache_handle *sync_pin; /* answer of the last shard_get */
	unsigned io_inflight;           /* every op that references this shard */
	struct io_op misc_op;           /* fire-and-forget: unlink, close */

	struct shard_stats stats;
};

/* lsm_version.c */
struct lsm_mem *lsm_mem_new(size_t arena_bytes);
/* The same, its index sized for `expected_keys` (the memtable it replaces). */
struct lsm_mem *lsm_mem_new_sized(size_t arena_bytes, size_t expected_keys);
void lsm_mem_unref(struct lsm_mem *m);
void lsm_table_unref(struct shard *s, struct lsm_table *t);
void lsm_version_unref(struct shard *s, struct lsm_version *v);
static inline struct lsm_version *lsm_version_ref(struct lsm_version *v)
{
	v->refs++;
	return v;
}
/*
 * Makes the current version from s->manifest: tables are looked up in
 * s->tables by number (`fresh` lists tables just written, added to it).
 * 0 or -ENOMEM (nothing changed).
 */
int lsm_version_install(struct shard *s, struct lsm_table **fresh, size_t nfresh);
/*
 * Checks the table open at `fd` against its manifest entry (blocking): size,
 * footer, metadata, entry count and key range. 0 with *meta loaded (the
 * caller frees it), or an error with the reason (`path`, offset) in `err`.
 */
int lsm_table_check(int fd, const char *path, const struct manifest_file *mf,
		    struct sstable_meta *meta, char *err, size_t errlen);
/*
 * The same checks, one at a time, for a caller that reads through the ring
 * (shard_install.c): the file's size against the entry (and room for a
 * footer); the footer's SSTABLE_FOOTER_SIZE bytes; the metadata
 * (footer->meta_len bytes at footer->meta_offset), loaded into *meta and
 * compared with the entry. Each: 0, or an error with the reason in `err`.
 */
int lsm_table_check_size(const char *path, const struct manifest_file *mf, uint64_t size,
			 char *err, size_t errlen);
int lsm_table_check_footer(const char *path, const struct manifest_file *mf,
			   const uint8_t *tail, struct sstable_footer *footer, char *err,
			   size_t errlen);
int lsm_table_check_meta(const char *path, const struct manifest_file *mf,
			 const struct sstable_footer *footer, const uint8_t *buf,
			 struct sstable_meta *meta, char *err, size_t errlen);
/*
 * A replicated shard's files, already opened and checked by a snapshot
 * install (shard_install.c), for shard_open_installed: the directory, the
 * MANIFEST open for appends and its replayed version, each table's fd and
 * loaded metadata. What the shard takes is cleared in `p` (fd -1, version
 * emptied); the rest stays the caller's to close and free.
 */
struct shard_open_table {
	uint64_t number, size;
	int fd;
	struct sstable_meta meta;
	bool loaded;                    /* meta holds memory */
};

struct shard_open_parts {
	int dir_fd;
	int manifest_fd;
	uint64_t manifest_len;
	struct manifest_version manifest;
	struct shard_open_table *tables;
	size_t ntables;
};

/*
 * shard_open without a read or a blocking call: builds the shard from
 * `p` (CPU and memory only). 0, or an error in `err` (the shard is not
 * made; `p` keeps what was not taken).
 */
int shard_open_installed(struct shard **out, const struct shard_config *cfg,
			 struct io_ring *io, struct shard_open_parts *p, char *err,
			 size_t errlen);
/* Adds a checked table (its fd and metadata, both taken on success) to
 * s->tables; lsm_version_install then builds the version. 0 or -ENOMEM
 * (nothing taken). */
int lsm_tables_adopt(struct shard *s, uint64_t number, uint64_t size, int fd,
		     const struct sstable_meta *meta);
/* Opens every table of s->manifest and checks it (start-up, blocking). */
int lsm_tables_open(struct shard *s, char *err, size_t errlen);
/* A table from a writer's fd and metadata (takes both). NULL on -ENOMEM. */
struct lsm_table *lsm_table_new(uint64_t number, uint64_t size, int fd,
				const struct sstable_meta *meta);
/* Start-up (blocking): the current value of `key` in the tables. */
int lsm_get_blocking(struct shard *s, const void *key, size_t key_len,
		     const void **value, size_t *value_len, struct block_cache_handle **pin);
/* Forgets a table's blocks and queues its close + unlink. */
void lsm_table_destroy(struct shard *s, struct lsm_table *t);
void lsm_tables_close_all(struct shard *s);
int lsm_path(char *buf, size_t len, const struct shard *s, uint64_t number);

/*
 * Cache-only lookup in the tables of `v`: 0 (found, *pin holds the block),
 * RKV_ENOTFOUND (absent or deleted), RKV_ECORRUPT, or RKV_EAGAIN with the
 * block to read in *t / *h.
 */
int lsm_lookup_cached(struct shard *s, struct lsm_version *v, const void *key,
		      size_t key_len, uint64_t hash, unsigned *level, size_t *file,
		      const void **value, size_t *value_len,
		      struct block_cache_handle **pin, struct lsm_table **t,
		      struct sstable_handle *h);

/*
 * The MEMTABLE_* flags of the value the last table lookup of this shard
 * found (lsm_lookup_cached or lsm_get_blocking answering 0): the kind its
 * block search left in s->get_scratch. Read it before the next lookup.
 */
static inline unsigned lsm_found_flags(const struct shard *s)
{
	return s->get_scratch.kind == SSTABLE_VALUE_DEADLINE ? MEMTABLE_DEADLINE : 0;
}

/* The SSTable kind of a memtable iterator's entry (flush, scans). */
static inline enum sstable_kind memtable_iter_kind(const struct memtable_iter *it)
{
	if (memtable_iter_is_tombstone(it))
		return SSTABLE_TOMBSTONE;
	return (memtable_iter_flags(it) & MEMTABLE_DEADLINE) ? SSTABLE_VALUE_DEADLINE :
							       SSTABLE_VALUE;
}

/*
 * The block cache's file id of table `number`: the cache is per core and
 * shared by the core's shards, whose file numbers each start at 1, so the
 * shard id is part of it (number below 2^40, shard ids below 2^24).
 */
/* No flush and no compaction under way (or none ever made). */
static inline bool shard_jobs_idle(const struct shard *s)
{
	return !s->jobs ||
	       (s->jobs->flush.state == JOB_IDLE && s->jobs->compact.state == JOB_IDLE);
}

static inline uint64_t lsm_cache_file(const struct shard *s, uint64_t number)
{
	return (uint64_t)s->id << 40 | number;
}

/* Logs a damaged block of table `number` and marks the table damaged
 * (shard_damage_mark): logged as an error the first time, then at debug. */
void lsm_report_corrupt(struct shard *s, uint64_t number, uint64_t offset,
			const char *reason);

/* shard_damage.c */
/* Marks table `number` damaged (logged once). false when it was known
 * damaged already (the caller then logs the block at debug level). */
bool shard_damage_mark(struct shard *s, uint64_t number);
/* Drops marks of tables gone from the version, fixes their levels: the
 * count of s->damage_new to put in the next edit. */
size_t shard_damage_prepare(struct shard *s);
/* The edit marking the first `n` of s->damage_new is durable. */
void shard_damage_recorded(struct shard *s, size_t n);
/* Compaction stopped for good: a corrupt merge with no table to name. */
bool shard_compaction_stopped(const struct shard *s);
/* `c` takes a damaged table as an input: it must not run. */
bool shard_damage_in_pick(const struct shard *s, const struct compaction *c);
unsigned shard_damage_l0_limit(const struct shard *s);
/* shard_open: whether the compaction due is held by a damaged table, and
 * the tables the manifest marks damaged logged. */
void shard_damage_open(struct shard *s);
/* shard_close (blocking): marks not yet in the manifest are appended to it
 * and synced, so the next start knows them; then the list is freed. */
void shard_damage_close(struct shard *s);

/* shard_read.c */
void shard_read_start(struct shard *s, struct shard_read *rd, const void *key,
		      size_t key_len);

/* The memtables' bytes into the core's budget (shard.c): after they grew
 * or one went. */
void shard_budget_sync(struct shard *s);

/* shard_job.c */
void shard_jobs_step(struct shard *s);
void shard_job_schedule_flush(struct shard *s);
/* shard.c, for shard_open.c: the completion handlers of the shard's own
 * ops; a WAL record replayed at start-up (a wal_replay_fn); the active
 * memtable made immutable, `fresh` taking writes. */
void shard_ops_init(struct shard *s);
int shard_replay_record(void *arg, const struct wal_record *rec);
void shard_seal_memtable(struct shard *s, struct lsm_mem *fresh);
/* shard_open.c: appends a segment's first index to s->segments. 0 or -ENOMEM. */
int shard_add_segment(struct shard *s, uint64_t first);
/* shard_manifest.c: rewriting the manifest while running. */
void shard_manifest_init(struct shard *s);
/* The manifest's descriptor, opened when the first edit is due (0, or
 * -errno: the edit waits, as for a failed write). */
int shard_manifest_fd(struct shard *s);
/* Closes it when nothing uses it (a replicated shard after start-up). */
void shard_manifest_fd_release(struct shard *s);
void shard_manifest_destroy(struct shard *s);
/* Rewrite once the manifest reaches 4x `written` (the size of the version as
 * last written whole) or manifest_rewrite_min, whichever is larger. */
void shard_manifest_rewrite_schedule(struct shard *s, uint64_t written);
/* Starts a rewrite when due and the manifest is free (each loop step). */
void shard_manifest_maybe_rewrite(struct shard *s);
void shard_jobs_destroy(struct shard *s);
/* The WAL index below which segments may go: one place decides it. */
uint64_t shard_wal_retention_point(const struct shard *s);
/* How many of the oldest WAL segments lie wholly below the retention point. */
size_t shard_wal_droppable(const struct shard *s);
/* Forgets the `drop` oldest segments (after deleting their files). */
void shard_wal_forget(struct shard *s, size_t drop);
/* Deletes, through the ring, the segments below the retention point. */
void shard_wal_retain(struct shard *s);
void shard_imm_maybe_drop(struct shard *s);

/*
 * shard_exec.c: one command against the memtables (both modes).
 *
 * shard_exec applies `c` to the active memtable and says what it did. The
 * current value comes from the memtables, else from the tables: read
 * directly at replay (s->replaying), else settled beforehand by
 * shard_prior_resolve in `w` (NULL: the memtables decide). 0 or RKV_EFULL
 * (the memtable has no room) / -ENOMEM / RKV_ECORRUPT; a command refused by
 * its own semantics (res->error) returns 0.
 */
int shard_exec(struct shard *s, const struct command *c, struct shard_waiter *w,
	       struct shard_result *res);
/* Memtable bytes executing w->cmd may take: a true upper bound (APPEND counts
 * s->appended, the APPEND bytes queued before it). */
size_t shard_exec_cost(struct shard *s, const struct shard_waiter *w);
/* Bytes the active memtable may still take (its arena, capped at memtable_size). */
size_t shard_mem_room(const struct shard *s);
/* The WAL path's rule: every op but a plain PUT needs the current value. */
bool shard_needs_prior(const struct shard_waiter *w);
/*
 * Settles the current value of w->cmd's key (see shard.c's invariants): the
 * memtables hold it or nothing does (SHARD_PRIOR_MEMORY), or a table holds
 * it (SHARD_PRIOR_TABLE, w->prior in a pinned block). 0; SHARD_PRIOR_WAIT: a
 * block is being read for it (shard_resume runs when it lands; call again);
 * RKV_ECORRUPT or a negative errno from the lookup. The key must stay valid
 * while the read is in flight.
 */
#define SHARD_PRIOR_WAIT 1
int shard_prior_resolve(struct shard *s, struct shard_waiter *w);
void shard_prior_release(struct shard *s, struct shard_waiter *w);

/*
 * shard_multi.c: the multi-key command `c` at the head of the apply queue
 * (entry `index`). 0: executed (res is the answer); SHARD_PRIOR_WAIT: a
 * block is being read or the memtables have no room yet (shard_resume runs
 * the head again); a negative errno or RKV_ECORRUPT: a value could not be
 * read, apply must stop. shard_multi_release frees what the queue kept.
 */
int shard_multi_step(struct shard *s, uint64_t index, const struct command *c,
		     struct shard_result *res);
void shard_multi_release(struct shard *s);
/* shard_apply.c: whether the active memtable takes `cost` bytes now,
 * sealing it for a fresh one when it is full (false: wait for a flush). */
bool shard_apply_room(struct shard *s, size_t cost);

/*
 * shard_drop.c: FLUSH, "drop every key up to this index". shard_drop_head
 * is called by apply for a FLUSH entry at the head of the queue: true once
 * the drop is durable and installed (the entry is applied), false while it
 * waits (shard_resume runs the queue again when it is done). shard_drop_poll
 * moves a waiting drop on (each loop step, from shard_jobs_step);
 * shard_drop_waiting says that one waits, so that no flush or compaction
 * starts meanwhile.
 */
bool shard_drop_head(struct shard *s, uint64_t index);
void shard_drop_poll(struct shard *s);
bool shard_drop_waiting(const struct shard *s);
void shard_drop_init(struct shard *s);
void shard_drop_destroy(struct shard *s);
/* shard_job.c: abandons the flush and compaction jobs that have no I/O in
 * flight (their unfinished files are unlinked); true when both are idle. */
bool shard_jobs_abandon(struct shard *s);

/* shard_apply.c: applies what waits at the head of the queue, in order. */
void shard_apply_drain(struct shard *s);
/* A flush installed: tells on_flushed (both modes). */
void shard_apply_flushed(struct shard *s);
/* shard_open/shard_close of the replicated state. */
void shard_apply_init(struct shard *s, const struct shard_config *cfg);
void shard_apply_destroy(struct shard *s);

/* shard.c */
void shard_stall_drain(struct shard *s);
/* Work that waited on something (a block read, a flush) may go on: the stall
 * queue (WAL mode) or the apply queue (replicated mode). */
void shard_resume(struct shard *s);
void shard_op_get(struct shard *s);
void shard_op_put(struct shard *s);
struct io_uring_sqe *shard_sqe(struct shard *s, struct io_op *op);
/*
 * Queues a WRITE of `len` bytes at `offset` of `fd` (write_op) and, when
 * sync_op is not NULL, an FSYNC(DATASYNC) of `fd` linked behind it, in one
 * submission (a link holds only within one). `extra` more SQEs are reserved
 * for the caller to link behind the returned SQE (the FSYNC, or the WRITE).
 */
struct io_uring_sqe *shard_write_chain(struct shard *s, struct io_op *write_op,
				       struct io_op *sync_op, int fd, const void *buf,
				       size_t len, uint64_t offset, unsigned extra);

#endif
