/*
 * Byte buffers in a core's pool (core/pool.h) that grow by doubling: a
 * connection's receive buffer, a reply buffer. Written once for the
 * client connections (server/conn.c) and the peer transport
 * (cluster/peer_in.c). Like the pool, owned by one core.
 */
#ifndef RINGKV_CORE_BUF_H
#define RINGKV_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/pool.h"

/*
 * Makes *buf hold at least `need` bytes: when *cap is smaller, a block of
 * the first power-of-two multiple of *cap (4096 when *cap is 0) that is at
 * least `need` replaces it, its first `keep` bytes (keep <= *cap) copied
 * over, the old block freed, and *cap set to the new block's usable size
 * (pool_block_size). 0, or -ENOMEM with *buf and *cap unchanged. *buf is
 * NULL or a block of `pool` (pool_alloc or pool_alloc_large).
 */
int buf_grow(struct pool *pool, uint8_t **buf, size_t *cap, size_t keep, size_t need);

#endif
