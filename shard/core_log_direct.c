/*
 * The core log's direct writes (docs/cluster/core-log.md, "Direct writes"):
 * whether a segment takes O_DIRECT, the block-aligned staging of a batch
 * with the partial block at the append offset rewritten, and page 0 for
 * durable-end marks. The rest of the write path is in core_log.c.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "shard/core_log_internal.h"

#define BATCH_MIN_CAP (64u << 10)

/*
 * Turns O_DIRECT on for the active segment's fd. False (the buffered path
 * stays) when the configuration asks for buffered writes, when the file
 * system does not report its direct I/O alignment (statx STATX_DIOALIGN:
 * tmpfs, for one, takes O_DIRECT but reports none, and writes through the
 * page cache anyway) or needs more than CORE_LOG_DIO_BLOCK (a disk with
 * 8 KiB logical blocks), or refuses O_DIRECT.
 */
bool core_log_direct_on(struct core_log *log, int fd)
{
	struct statx st;
	int fl;

	if (log->cfg.buffered)
		return false;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &st) != 0 ||
	    !(st.stx_mask & STATX_DIOALIGN) || st.stx_dio_offset_align == 0 ||
	    st.stx_dio_offset_align > CORE_LOG_DIO_BLOCK ||
	    st.stx_dio_mem_align > CORE_LOG_DIO_BLOCK) {
		log_info("core log %s: the file system offers no direct I/O at %u-byte "
			 "alignment: batches are written through the page cache, each "
			 "with an fdatasync", log->cfg.dir, CORE_LOG_DIO_BLOCK);
		return false;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_DIRECT) != 0) {
		log_warn("core log %s: O_DIRECT refused (%s): batches are written through "
			 "the page cache, each with an fdatasync", log->cfg.dir, strerror(errno));
		return false;
	}
	return true;
}

/* Makes room for `len` bytes of block-aligned staging (grows to a peak). */
int core_log_dio_reserve(struct core_log *log, size_t len)
{
	size_t want = log->dio_cap ? log->dio_cap : BATCH_MIN_CAP;
	uint8_t *grown;

	if (len <= log->dio_cap)
		return 0;
	while (want < len) {
		if (want > SIZE_MAX / 2)
			return -ENOMEM;
		want *= 2;
	}
	grown = aligned_alloc(CORE_LOG_DIO_BLOCK, want);
	if (!grown)
		return -ENOMEM;
	free(log->dio_buf);
	log->dio_buf = grown;
	log->dio_cap = want;
	return 0;
}

/*
 * The batch (and the checkpoint before it) as one O_DIRECT WRITE with
 * RWF_DSYNC: durable when it completes, so sync->op takes its completion
 * and no fdatasync follows. It covers whole blocks from the one holding
 * `off`: that block's bytes before `off` are written again, unchanged
 * (dio_tail), and the last block is padded with zeros, which is what the
 * preallocated space past the records holds anyway. A torn write leaves
 * each sector old or new, and the old bytes of a rewritten sector equal
 * the new ones, so no earlier record is at risk.
 */
void core_log_store_direct(struct core_log *log, struct core_log_sync *sync, uint64_t off)
{
	uint64_t start = off / CORE_LOG_DIO_BLOCK * CORE_LOG_DIO_BLOCK;
	size_t head = (size_t)(off - start);
	size_t len = head + sync->write_len;
	size_t padded = (len + CORE_LOG_DIO_BLOCK - 1) / CORE_LOG_DIO_BLOCK * CORE_LOG_DIO_BLOCK;
	size_t tail_at = (len / CORE_LOG_DIO_BLOCK) * CORE_LOG_DIO_BLOCK;
	struct io_uring_sqe *sqe;
	uint8_t *p;

	assert(padded <= log->dio_cap); /* submit() reserved it */
	p = log->dio_buf;
	memcpy(p, log->dio_tail, head);
	p += head;
	for (int i = 0; i < 2 && sync->iov[i].iov_len; i++) {
		memcpy(p, sync->iov[i].iov_base, sync->iov[i].iov_len);
		p += sync->iov[i].iov_len;
	}
	memset(p, 0, padded - len);
	memcpy(log->dio_tail, log->dio_buf + tail_at, len - tail_at);
	/* sync_finished() checks the write's length against write_len. */
	sync->write_len = padded;
	sync->direct = true;
	sync->cqes = 1;
	/* write_inflight stays set until the records' WRITE (sync_done) and
	 * the mark's, if any, complete: one batch's writes at a time, as two
	 * batches could rewrite the same block in either order, and dio_buf
	 * and dio_page0 are single buffers. Its two writes never share a
	 * block (page 0 holds no record). */
	sync->writes = 1;
	io_ring_reserve(log->io, 2);
	if (sync->marked) {
		/* Page 0 whole, with the new mark in its slot, RWF_DSYNC of
		 * its own and beside the records' write, not linked before it:
		 * the mark names only batches already durable, so the two may
		 * land in either order (and page 0 is never a records block);
		 * linked, the batch paid two device writes in a row, and a
		 * device with FUA would flush only the records' write, leaving
		 * the mark in its cache. */
		uint64_t at = core_log_mark_next(log, sync->mark);

		memcpy(log->dio_page0 + at, sync->mark, CORE_LOG_MARK_SIZE);
		sync->mark_len = CORE_LOG_DIO_BLOCK;
		sync->cqes++;
		sync->writes++;
		log->stats.marks++;
		sqe = core_log_sqe(log, &sync->mark_op);
		io_uring_prep_write(sqe, log->fd, log->dio_page0, CORE_LOG_DIO_BLOCK, 0);
		sqe->rw_flags = RWF_DSYNC;
	}
	sqe = core_log_sqe(log, &sync->op);
	io_uring_prep_write(sqe, log->fd, log->dio_buf, (unsigned)padded, start);
	sqe->rw_flags = RWF_DSYNC;
}

/*
 * Zero-filled space. In direct mode the space ahead of the records is made
 * by writing zeros into it (O_DIRECT WRITEVs of one zeroed chunk, then the
 * fdatasync that makes the new size durable), not by FALLOCATE. ext4
 * allocates FALLOCATEd blocks as unwritten extents: a batch's O_DIRECT
 * WRITE into one must convert the extent, which io_uring cannot do without
 * blocking (the WRITE goes to an io-wq thread: a thread handoff and two
 * context switches more per batch), and its RWF_DSYNC then commits the
 * journal for the conversion. Into written zeros the same WRITE is a pure
 * overwrite: issued inline, durable with the device's cache flush alone.
 * Recovery sees what it saw before: zeros after the last record. The
 * price is writing the zeros once, ahead of need, off the batches' path.
 */
int core_log_grow_verdict(const struct core_log_grow_tally *t)
{
	if (t->first_err < 0)
		return t->first_err;
	if (t->zeroed != t->zero)
		return t->zeroed > 0 ? -ENOSPC : -ECANCELED;
	if (t->cancelled)
		return -ECANCELED;
	if (t->sync_res != 0)
		return t->sync_res < 0 ? t->sync_res : -EIO;
	return 0;
}

unsigned core_log_zero_sqes(uint64_t len)
{
	/* WRITEVs of whole chunks, then one WRITE for a partial chunk. */
	return (unsigned)(len / CORE_LOG_ZERO_MAX +
			  (len % CORE_LOG_ZERO_MAX >= CORE_LOG_ZERO_CHUNK) +
			  (len % CORE_LOG_ZERO_CHUNK != 0));
}

void core_log_zero_fill(struct core_log *log, struct io_op *op, int fd, uint64_t from,
			uint64_t to)
{
	struct io_uring_sqe *sqe;

	assert(log->zeros != NULL && from % CORE_LOG_DIO_BLOCK == 0 &&
	       to % CORE_LOG_DIO_BLOCK == 0 && from < to);
	while (to - from >= CORE_LOG_ZERO_CHUNK) {
		uint64_t chunks = (to - from) / CORE_LOG_ZERO_CHUNK;
		unsigned n = chunks < CORE_LOG_ZERO_IOVS ? (unsigned)chunks : CORE_LOG_ZERO_IOVS;

		sqe = core_log_sqe(log, op);
		io_uring_prep_writev(sqe, fd, log->zero_iov, n, from);
		sqe->flags |= IOSQE_IO_LINK;
		from += (uint64_t)n * CORE_LOG_ZERO_CHUNK;
	}
	if (from < to) {
		sqe = core_log_sqe(log, op);
		io_uring_prep_write(sqe, fd, log->zeros, (unsigned)(to - from), from);
		sqe->flags |= IOSQE_IO_LINK;
	}
}

/* Page 0 and the block holding the append offset, read once at open for
 * store_direct. */
int core_log_direct_start(struct core_log *log)
{
	uint64_t start = log->offset / CORE_LOG_DIO_BLOCK * CORE_LOG_DIO_BLOCK;
	size_t head = (size_t)(log->offset - start);
	ssize_t n;

	if (log->cfg.buffered)
		return 0;
	log->dio_page0 = aligned_alloc(CORE_LOG_DIO_BLOCK, CORE_LOG_DIO_BLOCK);
	log->prep_page = aligned_alloc(CORE_LOG_DIO_BLOCK, CORE_LOG_DIO_BLOCK);
	log->zeros = aligned_alloc(CORE_LOG_DIO_BLOCK, CORE_LOG_ZERO_CHUNK);
	log->zero_iov = malloc(CORE_LOG_ZERO_IOVS * sizeof *log->zero_iov);
	if (!log->dio_page0 || !log->prep_page || !log->zeros || !log->zero_iov)
		return -ENOMEM;
	memset(log->zeros, 0, CORE_LOG_ZERO_CHUNK);
	for (unsigned i = 0; i < CORE_LOG_ZERO_IOVS; i++)
		log->zero_iov[i] = (struct iovec){ log->zeros, CORE_LOG_ZERO_CHUNK };
	n = pread(log->fd, log->dio_page0, CORE_LOG_RECORDS_START, 0);
	if (n < 0 || n != CORE_LOG_RECORDS_START)
		return n < 0 ? -errno : -EIO;
	n = head ? pread(log->fd, log->dio_tail, head, (off_t)start) : 0;
	if (n < 0 || (size_t)n != head)
		return n < 0 ? -errno : -EIO;
	log->direct = core_log_direct_on(log, log->fd);
	return 0;
}

