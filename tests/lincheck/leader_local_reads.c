/*
 * DELIBERATELY BROKEN, test build only: linked into ringkvd-leader-local-reads
 * with -Wl,--wrap=replica_read_local_ok, so server/kv.c's question "may this
 * shard be read here without a ReadIndex round?" is answered "yes" whenever
 * this replica believes it leads. That is a lease read without a lease: right
 * while nothing fails, wrong exactly when a deposed leader does not know yet
 * (paused by SIGSTOP, or partitioned until check-quorum steps it down) and
 * when a new leader has not applied its predecessor's commits. The product is
 * untouched; only the cluster lincheck runs under pause and partition faults
 * link this, and must catch it.
 */
#include <stdbool.h>

#include "cluster/replica.h"

bool __wrap_replica_read_local_ok(const struct replica *rep);

bool __wrap_replica_read_local_ok(const struct replica *rep)
{
	return replica_is_leader(rep);
}
