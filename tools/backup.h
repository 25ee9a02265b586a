/*
 * `ringkv backup create DIR` and `ringkv backup restore DIR --data-dir
 * NEWDIR` (docs/notes/backup.md). Both return a CLI exit status (0 ok,
 * 3 error, 4 timeout) after printing what went wrong on stderr.
 */
#ifndef RINGKV_TOOLS_BACKUP_H
#define RINGKV_TOOLS_BACKUP_H

#include "tools/libringkv.h"

/* Copies every shard of the cluster `client` talks to (its leaders'
 * pinned versions) into DIR, through DIR.tmp. `address`: the address
 * `client` was opened with (used for nodes whose client address the map
 * does not know). Progress on stderr. */
int backup_create(struct rkv_client *client, const char *address, int timeout_ms,
		  const char *dir);

/* Checks every file of the backup in DIR, then builds a one-node data dir
 * at `data_dir` (absent or empty) for a node with `cores` cores (0: the
 * CPUs this process may run on). Nothing is written before every check
 * passed; the data dir appears whole or not at all. */
int backup_restore(const char *dir, const char *data_dir, unsigned cores);

#endif
