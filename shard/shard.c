/*
 * One shard: WAL group commit through the core's io_uring ring, and the
 * memtable it feeds. See shard/shard.h for the write path's contract.
 *
 * Invariants:
 * - at most one batch is in flight (one write linked to one fdatasync); WAL
 *   offsets and indexes therefore advance strictly in order;
 * - reserved <= memtable_remaining(): every queued record has its memtable
 *   space set aside, so applying a durable batch cannot fail;
 * - a record reaches the memtable only after its batch's fdatasync succeeded.
 */
#include "shard/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/log.h"
#include "shard/memtable.h"
#include "shard/wal_format.h"
#include "shard/wal_recover.h"

struct wal_batch {
	uint8_t *buf;
	size_t len;
	size_t cap;
	uint64_t first_index;
	unsigned count;
	size_t reserved;                /* memtable bytes set aside for it */
	struct shard_waiter *head;      /* waiters in index order */
	struct shard_waiter *tail;
};

struct shard {
	uint32_t id;
	char dir[PATH_MAX];
	struct memtable *mt;
	struct io_ring *io;

	int wal_fd;
	char wal_path[PATH_MAX];
	uint64_t wal_offset;            /* end of the last durable record */
	uint64_t next_index;            /* index of the next record queued */

	struct wal_batch batches[2];
	struct wal_batch *pending;      /* gathering */
	struct wal_batch *inflight;     /* being written, NULL when none */
	int inflight_cqes;              /* completions still expected */
	int write_res;
	int sync_res;
	struct io_op write_op;
	struct io_op sync_op;

	size_t reserved;                /* sum of both batches' reservations */
	int failed;                     /* 0, or the errno that stopped writes */
	struct shard_stats stats;
};

static uint32_t load_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void batch_reset(struct wal_batch *b)
{
	b->len = 0;
	b->count = 0;
	b->reserved = 0;
	b->head = b->tail = NULL;
}

/* Grows the batch buffer geometrically: only while the load climbs to a new
 * peak, never per request in the steady state. */
static int batch_reserve(struct wal_batch *b, size_t more)
{
	size_t need = b->len + more;
	size_t cap = b->cap ? b->cap : 64 * 1024;
	uint8_t *buf;

	if (need <= b->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	buf = realloc(b->buf, cap);
	if (!buf)
		return -ENOMEM;
	b->buf = buf;
	b->cap = cap;
	return 0;
}

static int apply_command(struct memtable *mt, const struct command *c)
{
	if (c->op == COMMAND_PUT)
		return memtable_put(mt, c->key, c->key_len, c->value, c->value_len);
	return memtable_delete(mt, c->key, c->key_len);
}

static int replay_record(void *arg, const struct wal_record *rec)
{
	struct shard *s = arg;
	struct command c;
	int rv;

	rv = command_decode(rec->payload, rec->payload_len, &c);
	if (rv)
		return rv;
	rv = apply_command(s->mt, &c);
	if (rv == RKV_EFULL)
		return rv;
	s->stats.replayed++;
	return rv;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rv = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rv = -errno;
	close(fd);
	return rv;
}

static int create_segment(struct shard *s, uint64_t first_index, char *err, size_t errlen)
{
	uint8_t header[WAL_SEGMENT_HEADER_SIZE];
	int rv;

	rv = wal_segment_path(s->wal_path, sizeof s->wal_path, s->dir, first_index);
	if (rv) {
		snprintf(err, errlen, "shard %u: WAL path too long", s->id);
		return rv;
	}
	s->wal_fd = open(s->wal_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (s->wal_fd < 0) {
		rv = -errno;
		snprintf(err, errlen, "%s: create: %s", s->wal_path, strerror(errno));
		return rv;
	}
	wal_segment_header_encode(header);
	if (pwrite(s->wal_fd, header, sizeof header, 0) != (ssize_t)sizeof header ||
	    fdatasync(s->wal_fd) != 0) {
		rv = errno ? -errno : -EIO;
		snprintf(err, errlen, "%s: write header: %s", s->wal_path, strerror(-rv));
		return rv;
	}
	rv = fsync_dir(s->dir);
	if (rv) {
		snprintf(err, errlen, "%s: fsync: %s", s->dir, strerror(-rv));
		return rv;
	}
	s->wal_offset = WAL_SEGMENT_HEADER_SIZE;
	s->next_index = first_index;
	return 0;
}

static void write_done(struct io_op *op, int res, unsigned flags);
static void sync_done(struct io_op *op, int res, unsigned flags);

int shard_open(struct shard **out, const struct shard_config *cfg,
	       struct io_ring *io, char *err, size_t errlen)
{
	struct wal_recovery rec;
	struct shard *s;
	int rv = -ENOMEM;

	s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "shard %u: out of memory", cfg->id);
		goto err;
	}
	s->id = cfg->id;
	s->io = io;
	s->wal_fd = -1;
	if (strlen(cfg->dir) >= sizeof s->dir - 64) {
		rv = -ENAMETOOLONG;
		snprintf(err, errlen, "shard %u: directory name too long", cfg->id);
		goto err_after_alloc;
	}
	strcpy(s->dir, cfg->dir);
	rv = memtable_create(&s->mt, cfg->memtable_size);
	if (rv) {
		snprintf(err, errlen, "shard %u: memtable of %" PRIu64 " bytes: %s",
			 cfg->id, cfg->memtable_size, rkv_strerror(rv));
		goto err_after_alloc;
	}
	rv = wal_recover(s->dir, replay_record, s, &rec, err, errlen);
	if (rv == RKV_EFULL) {
		snprintf(err, errlen,
			 "shard %u: the WAL in %s holds more than --memtable-size "
			 "(%" PRIu64 " bytes) can; start with a larger --memtable-size",
			 cfg->id, s->dir, cfg->memtable_size);
		goto err_after_memtable;
	}
	if (rv)
		goto err_after_memtable;
	if (rec.torn_bytes)
		log_warn("shard %u: truncated a torn WAL tail of %" PRIu64 " bytes in %s",
			 s->id, rec.torn_bytes, rec.last_segment);
	if (rec.last_segment[0]) {
		uint64_t first;

		const char *base = strrchr(rec.last_segment, '/');

		rv = wal_segment_name_parse(base ? base + 1 : rec.last_segment, &first);
		if (rv) {
			snprintf(err, errlen, "%s: unexpected segment name", rec.last_segment);
			goto err_after_memtable;
		}
		snprintf(s->wal_path, sizeof s->wal_path, "%s", rec.last_segment);
		s->wal_fd = open(s->wal_path, O_WRONLY | O_CLOEXEC);
		if (s->wal_fd < 0) {
			rv = -errno;
			snprintf(err, errlen, "%s: open: %s", s->wal_path, strerror(errno));
			goto err_after_memtable;
		}
		s->wal_offset = rec.append_offset;
		s->next_index = rec.last_index ? rec.last_index + 1 : first;
	} else {
		rv = create_segment(s, 1, err, errlen);
		if (rv)
			goto err_after_memtable;
	}
	s->pending = &s->batches[0];
	s->write_op.done = write_done;
	s->write_op.data = s;
	s->sync_op.done = sync_done;
	s->sync_op.data = s;
	log_info("shard %u: %" PRIu64 " records replayed, %zu keys, next index %" PRIu64,
		 s->id, s->stats.replayed, memtable_count(s->mt), s->next_index);
	*out = s;
	return 0;

err_after_memtable:
	if (s->wal_fd >= 0)
		close(s->wal_fd);
	memtable_destroy(s->mt);
err_after_alloc:
	free(s);
err:
	return rv;
}

void shard_close(struct shard *s)
{
	if (!s)
		return;
	if (s->wal_fd >= 0) {
		/* Every acknowledged write was already synced; this only makes
		 * sure nothing is left for the kernel to do at exit. */
		if (fdatasync(s->wal_fd) != 0)
			log_warn("shard %u: final fdatasync: %s", s->id, strerror(errno));
		close(s->wal_fd);
	}
	memtable_destroy(s->mt);
	free(s->batches[0].buf);
	free(s->batches[1].buf);
	free(s);
}

uint32_t shard_id(const struct shard *s)
{
	return s->id;
}

void shard_get_stats(const struct shard *s, struct shard_stats *out)
{
	*out = s->stats;
}

int shard_get(struct shard *s, const void *key, size_t key_len,
	      const void **value, size_t *value_len)
{
	int rv = memtable_get(s->mt, key, key_len, value, value_len);

	s->stats.reads++;
	return rv == RKV_EDELETED ? RKV_ENOTFOUND : rv;
}

int shard_write(struct shard *s, const struct command *cmd, struct shard_waiter *w)
{
	struct wal_batch *b = s->pending;
	size_t cost = memtable_entry_cost(cmd->key_len, cmd->value_len);
	size_t payload = command_encoded_size(cmd);
	size_t size = wal_record_size((uint32_t)payload);
	uint8_t *rec;

	if (s->failed)
		return -EIO;
	if (payload > WAL_MAX_PAYLOAD)
		return RKV_ETOOLARGE;
	if (memtable_remaining(s->mt) < s->reserved + cost)
		return RKV_EFULL;
	if (batch_reserve(b, size))
		return -ENOMEM;
	rec = b->buf + b->len;
	command_encode(cmd, rec + WAL_RECORD_HEADER_SIZE);
	wal_record_finish(rec, s->next_index, 0, (uint32_t)payload);
	if (b->count == 0)
		b->first_index = s->next_index;
	s->next_index++;
	b->len += size;
	b->count++;
	b->reserved += cost;
	s->reserved += cost;
	w->next = NULL;
	if (b->tail)
		b->tail->next = w;
	else
		b->head = w;
	b->tail = w;
	return 0;
}

static void submit_batch(struct shard *s)
{
	struct wal_batch *b = s->pending;
	struct io_uring_sqe *sqe;

	s->inflight = b;
	s->pending = b == &s->batches[0] ? &s->batches[1] : &s->batches[0];
	s->inflight_cqes = 2;
	s->write_res = 0;
	s->sync_res = 0;

	sqe = io_ring_get_sqe(s->io);
	io_uring_prep_write(sqe, s->wal_fd, b->buf, (unsigned)b->len, s->wal_offset);
	sqe->flags |= IOSQE_IO_LINK;
	io_op_attach(sqe, &s->write_op);
	sqe = io_ring_get_sqe(s->io);
	io_uring_prep_fsync(sqe, s->wal_fd, IORING_FSYNC_DATASYNC);
	io_op_attach(sqe, &s->sync_op);
}

void shard_flush(struct shard *s)
{
	if (!s->inflight && s->pending->count > 0)
		submit_batch(s);
}

bool shard_idle(const struct shard *s)
{
	return !s->inflight && s->pending->count == 0;
}

static void complete_waiters(struct wal_batch *b, int rv)
{
	struct shard_waiter *w = b->head;

	while (w) {
		struct shard_waiter *next = w->next;
		w->done(w, rv);
		w = next;
	}
}

static void apply_batch(struct shard *s, struct wal_batch *b)
{
	size_t off = 0;

	while (off < b->len) {
		uint32_t payload = load_le32(b->buf + off);
		struct command c;
		int rv;

		rv = command_decode(b->buf + off + WAL_RECORD_HEADER_SIZE, payload, &c);
		if (rv == 0)
			rv = apply_command(s->mt, &c);
		/* We encoded these bytes and reserved their space ourselves. */
		if (rv)
			panic("shard %u: applying a durable record failed: %s",
			      s->id, rkv_strerror(rv));
		off += wal_record_size(payload);
	}
}

/* Fails every queued write with `rv` and forgets their indexes, so the next
 * record again follows the last durable one. */
static void fail_batches(struct shard *s, struct wal_batch *inflight, int rv)
{
	struct wal_batch *pending = s->pending;

	s->next_index = inflight->first_index;
	s->reserved -= inflight->reserved + pending->reserved;
	s->inflight = NULL;
	complete_waiters(inflight, rv);
	batch_reset(inflight);
	complete_waiters(pending, rv);
	batch_reset(pending);
}

static void batch_finished(struct shard *s)
{
	struct wal_batch *b = s->inflight;

	if (s->write_res == (int)b->len && s->sync_res == 0) {
		s->wal_offset += b->len;
		apply_batch(s, b);
		s->reserved -= b->reserved;
		s->stats.writes += b->count;
		s->stats.batches++;
		s->stats.wal_bytes += b->len;
		s->inflight = NULL;
		complete_waiters(b, 0);
		batch_reset(b);
		/* Writes that gathered behind this batch go out at once. */
		shard_flush(s);
		return;
	}
	if (s->write_res == -ENOSPC ||
	    (s->write_res >= 0 && s->write_res < (int)b->len)) {
		/* Disk full: nothing, or part of the batch, reached the file.
		 * Cut it back so the WAL ends on a whole record, fail these
		 * writes, and keep serving: the next batch may find space. A
		 * rare path, so the ftruncate is a plain (blocking) call. */
		if (ftruncate(s->wal_fd, (off_t)s->wal_offset) == 0) {
			log_error("shard %u: WAL append failed (%d of %zu bytes): disk full",
				  s->id, s->write_res, b->len);
			fail_batches(s, b, RKV_EFULL);
			return;
		}
	}
	/* fdatasync failed, or a write error we cannot undo: what the kernel
	 * kept is unknown, so stop taking writes until restart replays the WAL. */
	s->failed = s->sync_res < 0 && s->sync_res != -ECANCELED ? -s->sync_res :
		    s->write_res < 0 ? -s->write_res : EIO;
	log_error("shard %u: WAL write/sync failed (write %d, sync %d); shard read-only "
		  "until restart", s->id, s->write_res, s->sync_res);
	fail_batches(s, b, -EIO);
}

static void write_done(struct io_op *op, int res, unsigned flags)
{
	struct shard *s = op->data;

	s->write_res = res;
	if (--s->inflight_cqes == 0)
		batch_finished(s);
}

static void sync_done(struct io_op *op, int res, unsigned flags)
{
	struct shard *s = op->data;

	s->sync_res = res;
	if (--s->inflight_cqes == 0)
		batch_finished(s);
}
