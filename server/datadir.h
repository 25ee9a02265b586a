/*
 * The data directory: an exclusive lock so two processes never share it, and
 * the CLUSTER file that fixes the shard count when the directory is created.
 * Start-up only (blocking calls).
 *
 * Layout: DIR/LOCK (flock'ed, holds the owner's pid), DIR/CLUSTER
 * ("ringkv-cluster 1\nshards N\n", replaced atomically), DIR/shard-<id>/.
 */
#ifndef RINGKV_SERVER_DATADIR_H
#define RINGKV_SERVER_DATADIR_H

#include <stddef.h>

/*
 * Creates `dir` if needed and locks it. Returns the lock's fd (keep it open
 * for the process' life) or a negative errno, with the reason in `err`
 * (-EBUSY: another process holds it).
 */
int datadir_lock(const char *dir, char *err, size_t errlen);

/*
 * Reads the shard count from DIR/CLUSTER, or writes `wanted` there when the
 * file does not exist yet. 0 with *shards set, or an error with its reason.
 */
int datadir_shards(const char *dir, unsigned wanted, unsigned *shards,
		   char *err, size_t errlen);

#endif
