/*
 * One shard replica: its memtable and its WAL, owned by exactly one core.
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
 * Completion of one write: rv 0 when durable and applied (then `res` says
 * what the command did); RKV_EFULL for disk full (nothing was written); -EIO
 * when the WAL could not be made durable (the shard then refuses writes until
 * restart).
 */
typedef void shard_done_fn(struct shard_waiter *w, int rv, const struct shard_result *res);

struct shard_waiter {
	shard_done_fn *done;
	struct shard_waiter *next; /* batch list, owned by the shard until done */
	bool want_prior;           /* report the previous value in res->old_value */
};

struct shard_config {
	uint32_t id;
	const char *dir;        /* the shard's directory, created if missing */
	uint64_t memtable_size; /* arena bytes */
};

struct shard_stats {
	uint64_t writes;       /* records made durable */
	uint64_t batches;      /* write+fdatasync pairs completed */
	uint64_t wal_bytes;    /* bytes appended to the WAL since start */
	uint64_t reads;
	uint64_t replayed;     /* records replayed at start-up */
};

/*
 * Opens the shard: replays its WAL into a fresh memtable (blocking I/O, before
 * the reactor loop runs) and prepares the segment to append to. `io` is the
 * owning core's ring. 0, or an error with the reason (file, offset) in `err`.
 */
int shard_open(struct shard **out, const struct shard_config *cfg,
	       struct io_ring *io, char *err, size_t errlen);

/* Frees the shard. The caller ensures nothing is in flight (shard_idle). */
void shard_close(struct shard *s);

/*
 * Reads `key`. 0 with *value pointing at memtable bytes (valid until the next
 * write is applied: copy or use it before returning to the loop), or
 * RKV_ENOTFOUND.
 */
int shard_get(struct shard *s, const void *key, size_t key_len,
	      const void **value, size_t *value_len);

/*
 * Queues a PUT or DELETE. 0: w->done will be called from a later completion.
 * RKV_EFULL: the memtable cannot hold it (nothing queued). -EIO: the shard's
 * WAL failed earlier (nothing queued).
 */
int shard_write(struct shard *s, const struct command *cmd, struct shard_waiter *w);

/*
 * Visits keys in order from `start` (inclusive, or exclusive with `after`),
 * skipping deleted ones, until `fn` returns false (that key then counts as not
 * examined) or `examine` keys (deleted ones included) were looked at. Reads
 * applied (durable) state only. `last` and `last_len` get the last key examined
 * (NULL if none; valid until the next write is applied). Returns true when no
 * key is left past *last.
 */
typedef bool shard_scan_fn(void *arg, const void *key, size_t key_len,
			   const void *value, size_t value_len);
bool shard_scan(struct shard *s, const void *start, size_t start_len, bool after,
		size_t examine, shard_scan_fn *fn, void *arg,
		const void **last, size_t *last_len);

/* Keys holding a value (not deleted). */
uint64_t shard_live_keys(const struct shard *s);

/* Memtable bytes in use and capacity. */
void shard_memory(const struct shard *s, size_t *used, size_t *capacity);

/* Once per loop iteration: submits the pending batch if none is in flight. */
void shard_flush(struct shard *s);

/* Nothing pending and nothing in flight. */
bool shard_idle(const struct shard *s);

uint32_t shard_id(const struct shard *s);
void shard_get_stats(const struct shard *s, struct shard_stats *out);

#endif
