/*
 * `ringkv backup create DIR` and `ringkv backup restore DIR --data-dir
 * NEWDIR` (docs/OPERATIONS.md). Both return a CLI exit status (0 ok,
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

/* Where a restore puts the data: ringkvd's own flags, NULL when not given. */
struct backup_restore_opts {
	const char *data_dir;         /* required: absent or empty */
	const char *cores;            /* default: the CPUs this process may use */
	const char *node_id;          /* with initial_cluster: one node of a new cluster */
	const char *initial_cluster;  /* default: a one-node cluster */
	const char *replicas;
	const char *cluster_token;
};

/* Checks every file of the backup in DIR, then builds the data dir of one
 * node of a new cluster (by default a one-node cluster) as ringkvd with
 * the same flags would make it, holding the backup's copies of the shards
 * that node holds. Nothing is written before every check passed; the data
 * dir appears whole or not at all. */
int backup_restore(const char *dir, const struct backup_restore_opts *o);

#endif
