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
	size_t appended;                /* APPEND value bytes queued in it */
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
	size_t appended;                /* sum of both batches' APPEND bytes */
	uint64_t live_keys;             /* keys holding a value */
	uint64_t memtable_size;
	uint8_t *scratch;               /* APPEND's concatenation, grown on demand */
	size_t scratch_cap;
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
	b->appended = 0;
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

/* Parses a value holding a decimal int64 the way Redis does: no spaces, no
 * '+', no leading zeros, within range. */
static bool parse_i64(const uint8_t *p, size_t len, int64_t *out)
{
	uint64_t v = 0, limit;
	bool neg = false;
	size_t i = 0;

	if (len == 0 || len > 20)
		return false;
	if (p[0] == '-') {
		neg = true;
		i = 1;
		if (len == 1)
			return false;
	}
	if (p[i] == '0' && len > i + 1)
		return false;
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		if (v > (limit - (uint64_t)(p[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	if (neg && v == 0 && len > 1)
		return false; /* "-0" */
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

static int grow_scratch(struct shard *s, size_t need)
{
	uint8_t *buf;

	if (need <= s->scratch_cap)
		return 0;
	buf = realloc(s->scratch, need);
	if (!buf)
		return -ENOMEM;
	s->scratch = buf;
	s->scratch_cap = need;
	return 0;
}

static int set_value(struct shard *s, const struct command *c, const void *value,
		     size_t len, struct shard_result *res)
{
	int rv = memtable_put(s->mt, c->key, c->key_len, value, len);

	if (rv == 0) {
		res->applied = true;
		s->live_keys += !res->existed;
	}
	return rv;
}

/*
 * Applies one command to the memtable and says what it did. The same code
 * runs for live writes and at replay, so both reach the same state. Returns 0
 * or RKV_EFULL / -ENOMEM (memtable or scratch space); a command refused by its
 * own semantics (res->error) returns 0.
 */
static int apply_command(struct shard *s, const struct command *c, struct shard_result *res)
{
	const void *old = NULL;
	size_t old_len = 0;
	int rv;

	memset(res, 0, sizeof *res);
	res->existed = memtable_get(s->mt, c->key, c->key_len, &old, &old_len) == 0;
	if (res->existed) {
		res->old_value = old;
		res->old_len = old_len;
	}
	switch (c->op) {
	case COMMAND_PUT:
		return set_value(s, c, c->value, c->value_len, res);
	case COMMAND_PUT_NX:
		return res->existed ? 0 : set_value(s, c, c->value, c->value_len, res);
	case COMMAND_PUT_XX:
		return res->existed ? set_value(s, c, c->value, c->value_len, res) : 0;
	case COMMAND_DELETE:
		rv = memtable_delete(s->mt, c->key, c->key_len);
		if (rv == 0 && res->existed) {
			res->applied = true;
			s->live_keys--;
		}
		return rv;
	case COMMAND_INCRBY: {
		int64_t cur = 0;
		char text[24];
		int n;

		if (res->existed && !parse_i64(old, old_len, &cur)) {
			res->error = RKV_EINVAL;
			return 0;
		}
		if ((c->delta > 0 && cur > INT64_MAX - c->delta) ||
		    (c->delta < 0 && cur < INT64_MIN - c->delta)) {
			res->error = -ERANGE;
			return 0;
		}
		res->integer = cur + c->delta;
		n = snprintf(text, sizeof text, "%" PRId64, res->integer);
		return set_value(s, c, text, (size_t)n, res);
	}
	case COMMAND_APPEND: {
		size_t len = old_len + c->value_len;

		if (len > c->limit) {
			res->error = RKV_ETOOLARGE;
			return 0;
		}
		rv = grow_scratch(s, len);
		if (rv)
			return rv;
		if (old_len)
			memcpy(s->scratch, old, old_len);
		if (c->value_len)
			memcpy(s->scratch + old_len, c->value, c->value_len);
		res->integer = (int64_t)len;
		return set_value(s, c, s->scratch, len, res);
	}
	}
	return RKV_ECORRUPT;
}

static int replay_record(void *arg, const struct wal_record *rec)
{
	struct shard *s = arg;
	struct shard_result res;
	struct command c;
	int rv;

	rv = command_decode(rec->payload, rec->payload_len, &c);
	if (rv)
		return rv;
	rv = apply_command(s, &c, &res);
	if (rv == 0)
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
	s->memtable_size = cfg->memtable_size;
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
	free(s->scratch);
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
	free(s->scratch);
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

/*
 * Memtable bytes a queued command may take once applied: an upper bound,
 * reserved at queue time so that applying a durable batch cannot fail.
 */
static size_t write_cost(struct shard *s, const struct command *cmd)
{
	const void *cur;
	size_t cur_len = 0, len;

	switch (cmd->op) {
	case COMMAND_DELETE:
		return memtable_entry_cost(cmd->key_len, 0);
	case COMMAND_INCRBY:
		return memtable_entry_cost(cmd->key_len, 20);
	case COMMAND_APPEND:
		/* Whatever other APPENDs queued before it add, this key's value
		 * can grow by at most all of them. */
		memtable_get(s->mt, cmd->key, cmd->key_len, &cur, &cur_len);
		len = cur_len + s->appended + cmd->value_len;
		return memtable_entry_cost(cmd->key_len, len < cmd->limit ? len : cmd->limit);
	default:
		return memtable_entry_cost(cmd->key_len, cmd->value_len);
	}
}

int shard_write(struct shard *s, const struct command *cmd, struct shard_waiter *w)
{
	struct wal_batch *b = s->pending;
	size_t cost = write_cost(s, cmd);
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
	if (cmd->op == COMMAND_APPEND) {
		b->appended += cmd->value_len;
		s->appended += cmd->value_len;
	}
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

bool shard_scan(struct shard *s, const void *start, size_t start_len, bool after,
		size_t examine, shard_scan_fn *fn, void *arg,
		const void **last, size_t *last_len)
{
	struct memtable_iter it;
	size_t seen = 0;

	*last = NULL;
	*last_len = 0;
	memtable_iter_seek(&it, s->mt, start, start_len);
	if (after && memtable_iter_valid(&it)) {
		size_t klen;
		const void *key = memtable_iter_key(&it, &klen);

		if (klen == start_len && memcmp(key, start, klen) == 0)
			memtable_iter_next(&it);
	}
	for (; memtable_iter_valid(&it); memtable_iter_next(&it)) {
		size_t klen, vlen;
		const void *key, *value;

		if (seen == examine)
			return false;
		key = memtable_iter_key(&it, &klen);
		if (!memtable_iter_is_tombstone(&it)) {
			value = memtable_iter_value(&it, &vlen);
			if (!fn(arg, key, klen, value, vlen))
				return false;
		}
		seen++;
		*last = key;
		*last_len = klen;
	}
	return true;
}

uint64_t shard_live_keys(const struct shard *s)
{
	return s->live_keys;
}

void shard_memory(const struct shard *s, size_t *used, size_t *capacity)
{
	*used = memtable_used(s->mt);
	*capacity = s->memtable_size;
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
		w->done(w, rv, NULL);
		w = next;
	}
}

/* Applies a durable batch in index order and answers each waiter with what
 * its own command did. */
static void apply_batch(struct shard *s, struct wal_batch *b)
{
	struct shard_waiter *w = b->head;
	size_t off = 0;

	while (off < b->len) {
		uint32_t payload = load_le32(b->buf + off);
		struct shard_result res;
		struct shard_waiter *next;
		struct command c;
		int rv;

		rv = command_decode(b->buf + off + WAL_RECORD_HEADER_SIZE, payload, &c);
		if (rv == 0)
			rv = apply_command(s, &c, &res);
		/* We encoded these bytes and reserved their space ourselves. */
		if (rv)
			panic("shard %u: applying a durable record failed: %s",
			      s->id, rkv_strerror(rv));
		off += wal_record_size(payload);
		next = w->next;
		if (!w->want_prior) {
			res.old_value = NULL;
			res.old_len = 0;
		}
		w->done(w, 0, &res);
		w = next;
	}
}

/* Fails every queued write with `rv` and forgets their indexes, so the next
 * record again follows the last durable one. */
static void fail_batches(struct shard *s, struct wal_batch *inflight, int rv)
{
	struct wal_batch *pending = s->pending;

	s->next_index = inflight->first_index;
	s->reserved -= inflight->reserved + pending->reserved;
	s->appended -= inflight->appended + pending->appended;
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
		s->stats.writes += b->count;
		s->stats.batches++;
		s->stats.wal_bytes += b->len;
		apply_batch(s, b);
		s->reserved -= b->reserved;
		s->appended -= b->appended;
		s->inflight = NULL;
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
