/*
 * Online backups, the shard's part (docs/OPERATIONS.md).
 *
 * A backup of a replicated shard is its SSTables and manifest at a flushed
 * index at or above a chosen point (every write acknowledged before the
 * backup began), pinned with shard_snapshot_begin and read with
 * shard_snapshot_read like a snapshot. Entries above the flushed index
 * live only in memtables (and the core log), so the backup first has the
 * memtables flushed up to that point: shard_backup_flush.
 *
 * The restore side checks a shard directory written from a backup before
 * anything is served from it: shard_backup_check_dir.
 */
#ifndef RINGKV_SHARD_SHARD_BACKUP_H
#define RINGKV_SHARD_SHARD_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "shard/shard.h"

/*
 * Replicated mode, on the owning core: makes the shard's flushed index
 * reach `target`. 0: it does (pin now, shard_snapshot_begin); 1: not yet:
 * the entries up to `target` are not all applied, or a flush runs (one was
 * started here if needed: the active memtable sealed, even an empty one, so
 * that the flushed index moves); call again later. RKV_EINVAL: not
 * replicated; -ENOMEM: no memory for a fresh memtable. Never blocks.
 */
int shard_backup_flush(struct shard *s, uint64_t target);

/*
 * Offline, BLOCKING: checks the shard directory `dir` as shard_open
 * would before trusting it: its MANIFEST replays whole (no torn tail),
 * every table it names exists with the named size, footer, metadata and
 * key range. *flushed gets the manifest's flushed index. 0, or
 * RKV_ECORRUPT / a negative errno with the file and reason in `err`.
 */
/* BLOCKING: the whole file at `path` (at most `max` bytes, else
 * RKV_ETOOLARGE) in a malloc'd buffer with a NUL after its end. 0 or a
 * negative errno. */
int shard_backup_read_file(const char *path, size_t max, uint8_t **out, size_t *len);

int shard_backup_check_dir(const char *dir, uint64_t *flushed, char *err, size_t errlen);

#endif
