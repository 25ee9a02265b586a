/*
 * The writable mapping of the WAL segment being appended to.
 *
 * Why a mapping: ext4 cannot complete a buffered write without possibly
 * blocking, so io_uring hands every WRITE of the WAL to an io-wq worker
 * thread, and a shard with one write in flight paid a thread handoff per
 * write. Records are instead copied into a MAP_SHARED mapping of the segment
 * (the bytes are then in the page cache, exactly where a completed write(2)
 * would have left them: they survive the process being killed) and, unless
 * the benchmark-only sync-off mode is on, made durable with an FSYNC through
 * the ring as before.
 *
 * The file is preallocated ahead of the writer (FALLOCATE through the ring,
 * mode 0, so the file size covers it): a store into the mapping therefore
 * never needs a block the file system might not have (no SIGBUS on a full
 * disk: a full disk is a failed FALLOCATE, answered before any byte is
 * copied), and the unwritten space reads as zeros, which recovery takes as
 * the end of the log (see wal_format.h).
 *
 * The mapping is made once per segment with a fixed, generous length (the
 * pages beyond the file size are never touched); the shard switches to a new
 * segment before a batch would run past it. Whole chunks behind the durable
 * end are handed back with MADV_DONTNEED so the process does not keep the
 * segment's pages resident (their contents stay in the page cache, dirty
 * until written back).
 */
#ifndef RINGKV_SHARD_WAL_MAP_H
#define RINGKV_SHARD_WAL_MAP_H

#include <stddef.h>
#include <stdint.h>

/* Pages behind the durable end are released in chunks of this many bytes. */
#define WAL_MAP_RELEASE_CHUNK (1u << 20)

struct wal_map {
	uint8_t *base;       /* NULL when nothing is mapped */
	uint64_t len;        /* bytes of address space mapped */
	uint64_t alloc;      /* file size: bytes that may be stored into */
	uint64_t released;   /* [0, released) was handed back (chunk aligned) */
};

/*
 * Maps `fd` (open read-write) with at least `min_len` bytes of address
 * space, and more when the file is already larger. Blocking but I/O free (an
 * fstat and an mmap). 0 or a negative errno; on error `m` maps nothing.
 */
int wal_map_open(struct wal_map *m, int fd, uint64_t min_len);

/* Unmaps (the file's contents stay in the page cache). Idempotent. */
void wal_map_close(struct wal_map *m);

/*
 * Copies `len` bytes to file offset `off`, strictly in ascending address
 * order, so a process killed during the copy leaves a prefix of the bytes in
 * the page cache and zeros after it (a torn tail), never a hole. Precondition
 * (asserted): the range lies within alloc, which FALLOCATE made real blocks.
 */
void wal_map_store(struct wal_map *m, uint64_t off, const void *src, size_t len);

/*
 * The file size to preallocate so that `need` bytes fit, with `ahead` more
 * bytes beyond them when the mapping has room, `need + ahead` rounded up to
 * `granule` (WAL_MAP_RELEASE_CHUNK where FALLOCATE makes the space, a page
 * where the space is zeros written and rounding up would write more of
 * them); `ahead` 0: exactly `need`, rounded to a page. Never below what the
 * file holds, never past the mapping. Preconditions: need <= len; granule a
 * multiple of 4096.
 */
uint64_t wal_map_grow_target(const struct wal_map *m, uint64_t need, uint64_t ahead,
			     uint64_t granule);

/* Records that the file now holds `size` bytes (a FALLOCATE completed). */
void wal_map_allocated(struct wal_map *m, uint64_t size);

/*
 * Hands back the pages of whole chunks that end at or before `durable_end`
 * (MADV_DONTNEED: unmapped from the process, kept in the page cache).
 */
void wal_map_release(struct wal_map *m, uint64_t durable_end);

#endif
