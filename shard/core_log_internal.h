/*
 * The inside of the per-core log, shared by its files: core_log.c (staging,
 * batches, segments, retention), core_log_group.c (the group table, runs and
 * pins) and core_log_open.c (recovery and open).
 *
 * Each group keeps two views of its state: `staged` (after every record put
 * in a batch) validates new appends; `written` (after every record stored
 * into a segment) is what checkpoints copy and what a batch failed with
 * RKV_EFULL rolls the staged view back to.
 *
 * Retention bookkeeping is per group, not per record: a group's `runs` say
 * in which segment each stretch of its current log was written ((seq, first
 * index) pairs, ascending); it pins the segment of the run holding its first
 * unreleased entry, and each segment counts the groups that pin it. Segments
 * are deleted oldest first while their count is zero, so the cost is a few
 * runs per group and a counter per segment, whatever the number of groups.
 */
#ifndef RINGKV_SHARD_CORE_LOG_INTERNAL_H
#define RINGKV_SHARD_CORE_LOG_INTERNAL_H

#include <sys/uio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shard/core_log.h"
#include "shard/core_log_format.h"
#include "shard/wal_map.h"

#define CORE_LOG_NONE UINT32_MAX
/* Segment sizes are multiples of this: prepared with `prealloc` (rounded
 * up to it), grown to multiples of it, a torn tail cut to the next one.
 * Recovery refuses a segment that ends right after a record at another
 * size (it was cut). */
#define CORE_LOG_PAGE 4096u

struct core_log_run {
	uint64_t seq;         /* segment holding the stretch */
	uint64_t first_index; /* its first index */
};

struct core_log_view {
	struct raft_hard_state hs;
	uint64_t start_index; /* log starts after (start_index, start_term) */
	uint64_t start_term;
	uint64_t last_index;  /* last entry, valid when has_entries */
	uint64_t last_term;
	bool has_entries;
};

struct core_log_group {
	uint64_t id;
	bool used;            /* the table slot is taken */
	bool dead;            /* removed: out of the id table, its REMOVE staged */
	bool written_dead;    /* its REMOVE is stored (checkpoints skip it) */
	uint32_t slot;        /* its slot in the pending batch, or CORE_LOG_NONE */
	uint32_t next_free;   /* free list link while !used */
	struct core_log_view staged;
	struct core_log_view written;
	uint64_t released;    /* entries <= released are not needed */
	uint64_t pin_seq;     /* segment it pins, 0 for none */
	struct core_log_run *runs;
	uint32_t nruns;
	uint32_t runs_cap;
};

/* One group's records in a batch. */
struct core_log_slot {
	uint32_t group;       /* index into log->groups */
	bool entries;
	bool hard_state;
	bool reset;
	bool remove;
	uint64_t min_append;  /* lowest first index appended since the batch's
			       * last reset of the group; 0: none */
	uint64_t last_index;
	uint64_t last_term;
};

/* Alignment and granularity of direct writes: a page, which covers every
 * logical block size a disk reports. */
#define CORE_LOG_DIO_BLOCK 4096u

struct core_log_batch {
	uint8_t *buf;
	size_t len;
	size_t cap;
	struct core_log_slot *slots;
	size_t nslots;
	size_t slots_cap;
	uint64_t records;
	uint64_t retain;      /* a RETAIN record of this seq is in it; 0: none */
	uint64_t seq;         /* segment it was stored into */
	uint64_t end;         /* offset in the segment just past it, once stored */
	uint64_t gen;         /* its number among stored batches (from 1) */
	bool checkpoint;      /* stored behind the segment's checkpoint */
};

/* A batch's WRITE and, linked behind it, its fdatasync: the fdatasync's
 * success makes batch `gen` and every earlier one durable. */
struct core_log_sync {
	struct io_op op;       /* the fdatasync */
	struct io_op write_op; /* the WRITEV of the checkpoint and the batch */
	struct io_op mark_op;  /* the WRITE of a durable-end mark, if any */
	struct iovec iov[2];
	size_t write_len;
	int write_res;
	int mark_res;
	unsigned mark_len;     /* what its WRITE must return: the slot, or
			        * page 0 whole for a direct batch */
	bool marked;           /* the chain holds mark_op */
	unsigned writes;       /* WRITEs of the chain not yet completed */
	uint8_t mark[CORE_LOG_MARK_SIZE];
	unsigned cqes;         /* completions still to come, of the two */
	uint64_t gen;
	uint64_t start_us;     /* CLOCK_MONOTONIC at submission */
	uint64_t records;      /* the batch's records (its checkpoint not counted) */
	bool busy;
	bool direct;           /* one O_DIRECT WRITE with RWF_DSYNC, no fdatasync */
};

struct core_log_seg {
	uint64_t seq;
	uint64_t bytes;       /* bytes stored (header, checkpoint, records) */
	uint32_t pins;        /* groups whose pin_seq is this segment */
};

/* What the completions of one preallocation said (core_log_grow_verdict). */
struct core_log_grow_tally {
	int first_err;      /* the first error of the space's SQEs but -ECANCELED */
	bool cancelled;     /* one of them came back -ECANCELED */
	uint64_t zero;      /* bytes of zeros they had to write (0: a FALLOCATE) */
	uint64_t zeroed;    /* bytes they wrote */
	int sync_res;       /* the fdatasync's result */
};

enum core_log_prep {
	PREP_NONE,
	PREP_OPENING,   /* OPENAT in flight */
	PREP_WRITING,   /* the space (zeros or FALLOCATE), header WRITE, FSYNC,
			 * directory FSYNC */
	PREP_READY,
	PREP_FAILED,
};

struct core_log {
	struct core_log_config cfg;
	struct io_ring *io;
	int dir_fd;
	int failed;                 /* 0 or the error that failed the log */
	unsigned ops;               /* operations in flight */

	/* groups: a table indexed by group id, entries in `groups` */
	struct core_log_group *groups;
	uint32_t ngroups;           /* used + free entries */
	uint32_t groups_cap;
	uint32_t free_head;
	uint32_t live;              /* groups in the id table */
	uint32_t *table;            /* open addressing: index + 1, 0 = empty */
	uint32_t table_mask;

	/* segments, oldest first; the last is the active one */
	struct core_log_seg *segs;
	size_t nsegs;
	size_t segs_cap;
	int fd;                     /* active segment */
	struct wal_map map;
	uint64_t offset;            /* append offset in the active segment */
	bool active_checkpointed;   /* its checkpoint is stored */
	uint64_t sealed_seq;        /* the segment before the active one, when the
				     * switch to it happened here (0: none) */
	uint64_t sealed_end;        /* where its records end (all durable) */
	uint64_t active_batches;    /* batches stored into it */
	uint64_t checkpoint_durable;/* newest segment whose checkpoint is durable */
	uint8_t *ckpt_buf;
	size_t ckpt_len;
	uint64_t ckpt_records;
	size_t ckpt_cap;

	/* batches: a ring; from `head`, `nstored` batches stored and not yet
	 * durable (in gen order), then the pending one. */
	struct core_log_batch batches[CORE_LOG_MAX_SYNCS + 1];
	struct core_log_batch *pending;
	unsigned head;
	unsigned nstored;
	uint64_t gen_stored;        /* gen of the last batch stored */
	uint64_t gen_durable;       /* every batch up to this gen is durable */
	struct core_log_sync syncs[CORE_LOG_MAX_SYNCS];
	unsigned syncs_busy;
	bool write_inflight;        /* a batch's or a mark's WRITE has not completed */

	/* durable-end marks of the active segment (page 0 slots) */
	uint64_t durable_end;       /* its records are durable up to here */
	uint64_t mark_end;          /* the highest end in a mark submitted */
	uint64_t mark_count;        /* number of the last mark submitted */
	struct io_op mark_timer_op; /* TIMEOUT: the log went quiet */
	struct __kernel_timespec mark_delay;
	bool mark_timer_armed;
	struct io_op idle_mark_op;  /* WRITE of a mark alone, linked to: */
	struct io_op idle_sync_op;  /* its fdatasync */
	unsigned idle_cqes;
	int idle_res;
	unsigned idle_len;          /* the idle mark's WRITE length */
	uint8_t idle_mark[CORE_LOG_MARK_SIZE];

	/* Direct writes (core_log_config.buffered off, and the file system
	 * takes O_DIRECT): each batch is one O_DIRECT WRITE with RWF_DSYNC of
	 * whole blocks, the partial block at the append offset rewritten with
	 * the bytes it already holds (dio_tail) followed by the new ones. */
	bool direct;
	uint8_t *dio_buf;           /* block-aligned staging of one WRITE */
	size_t dio_cap;
	uint8_t dio_tail[CORE_LOG_DIO_BLOCK]; /* the block holding `offset` */
	uint8_t *dio_page0;         /* the active segment's page 0 (block-aligned):
				     * a mark is written as the whole page */
	/* Space ahead of the records is written with zeros, not FALLOCATEd,
	 * in direct mode (core_log_direct.c, "Zero-filled space"). */
	uint8_t *zeros;             /* CORE_LOG_ZERO_CHUNK zero bytes, block-aligned */
	struct iovec *zero_iov;     /* CORE_LOG_ZERO_IOVS times `zeros` */
	uint8_t *prep_page;         /* the next segment's page 0, block-aligned */

	/* preallocation of the active segment */
	struct io_op grow_op;       /* FALLOCATE, or the zeros' WRITEVs, linked to: */
	struct io_op grow_sync_op;  /* its fdatasync (the new size durable) */
	unsigned grow_cqes;         /* completions still to come */
	struct core_log_grow_tally grow_tally; /* its completions so far */
	bool grow_inflight;
	bool grow_failed;           /* the last one failed: grow exactly next */
	bool grow_exact;            /* the one in flight has no room ahead */
	uint64_t grow_size;

	/* the next segment, prepared ahead */
	enum core_log_prep prep;
	bool switch_waiting;        /* the pending batch waits for it */
	int prep_fd;
	int prep_err;
	unsigned prep_cqes;
	int prep_res[4];            /* [0] the space (FALLOCATE or zeros), [1] page 0,
				     * [2] the file's fsync, [3] the directory's */
	int prep_space;             /* bytes of zeros [0] writes (0: FALLOCATE) */
	uint64_t prep_zeroed;       /* bytes they wrote */
	bool prep_direct;           /* the prepared fd took O_DIRECT */
	struct io_op prep_op[4];
	uint8_t prep_header[CORE_LOG_RECORDS_START]; /* page 0 */
	char prep_name[64];

	/* retention */
	uint64_t retain_staged;     /* highest RETAIN seq put in a batch */
	uint64_t retain_durable;    /* highest RETAIN seq durable */
	bool unlink_inflight;
	bool unlink_broken;         /* an unlink failed: stop deleting */
	struct io_op unlink_op;
	char unlink_name[64];
	int *close_fds;             /* old segment fds waiting for a CLOSE */
	size_t nclose;
	size_t close_cap;
	bool close_inflight;
	struct io_op close_op;

	struct core_log_slot *scratch; /* a failed batch's slots, while called back */
	size_t scratch_cap;

	struct core_log_stats stats;
};

/* core_log_group.c */
int core_log_groups_init(struct core_log *log);
void core_log_groups_free(struct core_log *log);
/* Index of group `id`, or CORE_LOG_NONE. */
uint32_t core_log_group_find(const struct core_log *log, uint64_t id);
/* Index of group `id`, created (empty) if new; CORE_LOG_NONE on -ENOMEM. */
uint32_t core_log_group_get(struct core_log *log, uint64_t id);
/* Takes the group out of the id table (it stays in `groups` until freed). */
void core_log_group_unlink(struct core_log *log, uint32_t gi);
/* Returns the entry to the free list (unpinned, runs freed). */
void core_log_group_free(struct core_log *log, uint32_t gi);
/*
 * The group's entries from `first_index` on were written to segment `seq`
 * (after a reset if `reset`). 0 or -ENOMEM.
 */
int core_log_group_wrote(struct core_log *log, uint32_t gi, uint64_t seq, bool reset,
			 uint64_t first_index);
/* Recomputes what the group pins from released and its runs. */
void core_log_group_repin(struct core_log *log, uint32_t gi);
/* The segment record of `seq`, or NULL if it is not (any longer) there. */
struct core_log_seg *core_log_seg_find(struct core_log *log, uint64_t seq);

/* core_log.c, for core_log_direct.c */
struct io_uring_sqe *core_log_sqe(struct core_log *log, struct io_op *op);
/* Encodes the next durable-end mark into `out`; its slot offset. */
uint64_t core_log_mark_next(struct core_log *log, uint8_t *out);

/* core_log_direct.c: direct writes (see there). */
bool core_log_direct_on(struct core_log *log, int fd);
int core_log_dio_reserve(struct core_log *log, size_t len);
void core_log_store_direct(struct core_log *log, struct core_log_sync *sync, uint64_t off);
int core_log_direct_start(struct core_log *log);
/*
 * 0 when a preallocation made its space durable, else why not: its first
 * error; -ENOSPC when the zeros were cut short (a short WRITEV cancels the
 * rest of its chain without an error of its own); -ECANCELED when it was
 * cancelled (io_ring_cancel_all at exit), which is no full disk; the
 * fdatasync's error, or -ECANCELED, when that did not return 0.
 */
int core_log_grow_verdict(const struct core_log_grow_tally *t);
/* Bytes of zeros one WRITEV of core_log_zero_fill covers. */
#define CORE_LOG_ZERO_CHUNK (64u << 10)
#define CORE_LOG_ZERO_IOVS 64u
#define CORE_LOG_ZERO_MAX ((uint64_t)CORE_LOG_ZERO_CHUNK * CORE_LOG_ZERO_IOVS)
/* SQEs core_log_zero_fill queues for `len` bytes. */
unsigned core_log_zero_sqes(uint64_t len);
/*
 * Queues O_DIRECT WRITEVs of zeros over [from, to) of `fd` (block-aligned),
 * every one attached to `op` and linked to the next SQE; the caller has
 * reserved core_log_zero_sqes(to - from) SQEs and the one that follows.
 */
void core_log_zero_fill(struct core_log *log, struct io_op *op, int fd, uint64_t from,
			uint64_t to);

/* core_log_open.c: recovery (see there). */
int core_log_open_segments(struct core_log *log, char *err, size_t errlen);

#endif
