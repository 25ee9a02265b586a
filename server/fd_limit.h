/*
 * The open-file limit at start-up. Every replica holds one descriptor
 * while idle (its directory; its manifest's is opened at its first edit)
 * and one per SSTable; a node
 * of 10,000 replicas needs more than the 1,024 or 20,000 shells often give.
 * ringkvd raises its soft limit to the hard one, and refuses to start when
 * even that cannot hold its replicas, instead of failing with EMFILE at
 * the N-thousandth shard minutes later.
 */
#ifndef RINGKV_SERVER_FD_LIMIT_H
#define RINGKV_SERVER_FD_LIMIT_H

#include <stddef.h>
#include <stdint.h>

/* Descriptors the node needs besides its replicas': rings, listeners,
 * peer connections, core log segments, a few clients. */
#define FD_LIMIT_RESERVE 256u
/* Held by each idle replica. */
#define FD_LIMIT_PER_REPLICA 1u

/* What `replicas` replicas need at the least. */
uint64_t fd_limit_needed(uint64_t replicas);

/*
 * Raises RLIMIT_NOFILE's soft limit to its hard limit. 0 with the limit
 * now in force in *limit, or -1 with the reason in err when it is below
 * fd_limit_needed(replicas).
 */
int fd_limit_setup(uint64_t replicas, uint64_t *limit, char *err, size_t errlen);

#endif
