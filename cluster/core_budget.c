/*
 * The core's memtable budget (issue #18): the memtables of all the shards
 * on a core together may hold --memtable-budget bytes. Each shard keeps
 * its share of shard_mem_budget.used up to date as it applies and as its
 * memtables go (shard/shard.c, shard_budget_sync); here, from the loop's
 * every-shard sweep (every 10 ms), the core seals the largest active
 * memtable once the total is past the limit, and its flush gives the
 * memory back. One seal a sweep: a flush takes longer than that, and the
 * next sweep sees what is still held. Shards whose flush still runs are
 * passed over: their memtable cannot be sealed again yet.
 *
 * The bound is on active memtables: sealed ones (flushing, or held by a
 * damaged table) are counted apart (`flushing`) and not compared, since
 * sealing more would give nothing back sooner, only seal ever smaller
 * memtables. So a core may hold the limit plus one flushing memtable per
 * shard whose flush runs. A shard's own --memtable-size stays its
 * ceiling.
 */
#include "cluster/replica_internal.h"

#include "core/log.h"

const struct shard_mem_budget *cluster_core_mem_budget(const struct cluster_core *c)
{
	return &c->mem_budget;
}

struct replica *cluster_core_budget_check(struct cluster_core *c)
{
	struct shard_mem_budget *b = &c->mem_budget;
	struct replica *pick = NULL;
	size_t most = 0;
	int rv;

	/* Only what active memtables hold: sealing more while flushes run
	 * (or one is held by damage) would seal ever smaller memtables and
	 * give nothing back sooner. */
	if (b->limit == 0 || c->stopping || b->used - b->flushing <= b->limit)
		return NULL;
	for (size_t i = 0; i < c->nreps; i++) {
		struct replica *rep = c->reps[i];
		size_t held;

		if (!rep->shard || rep->installing || !shard_sealable(rep->shard))
			continue;
		held = shard_active_memtable(rep->shard);
		if (held > most) {
			most = held;
			pick = rep;
		}
	}
	if (!pick)
		return NULL;
	rv = shard_seal(pick->shard);
	if (rv == 1) {
		b->seals++;
		return pick;
	}
	if (rv < 0)
		log_warn("core %u: sealing shard %u's memtable for the memtable budget: %s",
			 c->index, pick->id, rkv_strerror(rv));
	return NULL;
}
