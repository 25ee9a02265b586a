/*
 * The install origin record: `shard-N/INSTALLED`, written by a snapshot
 * install into the staged replica before the exchange that swaps it in
 * (shard/shard_install.c), so it is part of the same atomic rename. It says
 * "this replica's state up to `index` came from a peer's snapshot whose
 * entry at `index` has term `term`" and lets a restart tell a replica killed
 * between the exchange and its core log's LOG_RESET (its flushed index F =
 * index is ahead of its log: a state a crash makes) from a log cut below F
 * (damage). cluster/cluster_core.c `restore_group` reads it; replica.c
 * removes it once the LOG_RESET is durable (docs/cluster/core-log.md,
 * "Snapshot install and the log check").
 *
 * 32 bytes, little-endian: magic "RKVORIG1" (8), index (8), term (8), CRC32C
 * of bytes 0..23 (4), reserved 0 (4).
 */
#ifndef RINGKV_SHARD_INSTALL_ORIGIN_H
#define RINGKV_SHARD_INSTALL_ORIGIN_H

#include <stddef.h>
#include <stdint.h>

#define INSTALL_ORIGIN_NAME "INSTALLED"
#define INSTALL_ORIGIN_SIZE 32u

struct install_origin {
	uint64_t index; /* the snapshot's index: the installed shard's flushed index */
	uint64_t term;  /* the term of the entry at `index` (never 0) */
};

void install_origin_encode(uint8_t out[INSTALL_ORIGIN_SIZE], const struct install_origin *o);

/* 0, or RKV_ECORRUPT for bytes that are not a whole, checked record. */
int install_origin_decode(const uint8_t *p, size_t len, struct install_origin *o);

/*
 * BLOCKING (start-up only): reads `dir`/INSTALLED. 0 with *o filled; -ENOENT
 * when there is none; RKV_ECORRUPT when it is there but not a valid record
 * (then it proves nothing); another negative errno on a read error.
 */
int install_origin_read(const char *dir, struct install_origin *o);

#endif
