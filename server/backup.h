/*
 * The online backup requests of the native protocol (Request.backup, see
 * proto/ringkv.proto and docs/OPERATIONS.md), served like the cluster
 * requests: the receiving core sends one message to the core that owns the
 * shard's replica (cluster/replica_backup.h does the work there), and
 * encodes the answer when it comes back. Rare administrative requests: the
 * request block and a READ's buffer (at most 1 MiB) are malloc'd.
 */
#ifndef RINGKV_SERVER_BACKUP_H
#define RINGKV_SERVER_BACKUP_H

#include <stdbool.h>

struct node_core;
struct conn;
struct frame_request;

/* Answers FRAME_OP_BACKUP (true: handled, the answer follows on `conn`);
 * false for every other op. */
bool backup_submit(struct node_core *c, struct conn *conn, const struct frame_request *fr);

#endif
