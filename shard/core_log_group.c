/*
 * The per-core log's group table and retention bookkeeping (see
 * core_log_internal.h): an open-addressing table from group id to an entry
 * of `groups` (linear probing, deletion by backward shift, so no tombstones
 * pile up as replicas come and go), each group's runs, and the per-segment
 * pin counts. Everything grows geometrically and is reused: no allocation
 * per record.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shard/core_log_internal.h"

static uint32_t hash_id(uint64_t id, uint32_t mask)
{
	return (uint32_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

int core_log_groups_init(struct core_log *log)
{
	log->table_mask = 63;
	log->table = calloc(log->table_mask + 1, sizeof *log->table);
	log->free_head = CORE_LOG_NONE;
	return log->table ? 0 : -ENOMEM;
}

void core_log_groups_free(struct core_log *log)
{
	for (uint32_t i = 0; i < log->ngroups; i++)
		free(log->groups[i].runs);
	free(log->groups);
	free(log->table);
	log->groups = NULL;
	log->table = NULL;
	log->ngroups = log->groups_cap = 0;
}

uint32_t core_log_group_find(const struct core_log *log, uint64_t id)
{
	for (uint32_t h = hash_id(id, log->table_mask);; h = (h + 1) & log->table_mask) {
		uint32_t v = log->table[h];

		if (v == 0)
			return CORE_LOG_NONE;
		if (log->groups[v - 1].id == id)
			return v - 1;
	}
}

static void table_put(uint32_t *table, uint32_t mask, const struct core_log_group *groups,
		      uint32_t gi)
{
	uint32_t h = hash_id(groups[gi].id, mask);

	while (table[h] != 0)
		h = (h + 1) & mask;
	table[h] = gi + 1;
}

/* Keeps the table at most half full. 0 or -ENOMEM. */
static int table_reserve(struct core_log *log)
{
	uint32_t cap = log->table_mask + 1;
	uint32_t *grown;

	if ((log->live + 1) * 2 <= cap)
		return 0;
	if (cap > UINT32_MAX / 2)
		return -ENOMEM;
	grown = calloc((size_t)cap * 2, sizeof *grown);
	if (!grown)
		return -ENOMEM;
	for (uint32_t h = 0; h < cap; h++)
		if (log->table[h] != 0)
			table_put(grown, cap * 2 - 1, log->groups, log->table[h] - 1);
	free(log->table);
	log->table = grown;
	log->table_mask = cap * 2 - 1;
	return 0;
}

uint32_t core_log_group_get(struct core_log *log, uint64_t id)
{
	uint32_t gi = core_log_group_find(log, id);
	struct core_log_group *g;

	if (gi != CORE_LOG_NONE)
		return gi;
	if (table_reserve(log) != 0)
		return CORE_LOG_NONE;
	if (log->free_head != CORE_LOG_NONE) {
		gi = log->free_head;
		log->free_head = log->groups[gi].next_free;
	} else {
		if (log->ngroups == log->groups_cap) {
			uint32_t cap = log->groups_cap ? log->groups_cap * 2 : 64;
			struct core_log_group *grown;

			grown = realloc(log->groups, (size_t)cap * sizeof *grown);
			if (!grown)
				return CORE_LOG_NONE;
			log->groups = grown;
			log->groups_cap = cap;
		}
		gi = log->ngroups++;
		log->groups[gi].runs = NULL;
		log->groups[gi].runs_cap = 0;
	}
	g = &log->groups[gi];
	{
		struct core_log_run *runs = g->runs;
		uint32_t runs_cap = g->runs_cap;

		memset(g, 0, sizeof *g);
		g->runs = runs; /* kept for reuse */
		g->runs_cap = runs_cap;
	}
	g->id = id;
	g->used = true;
	g->slot = CORE_LOG_NONE;
	table_put(log->table, log->table_mask, log->groups, gi);
	log->live++;
	return gi;
}

void core_log_group_unlink(struct core_log *log, uint32_t gi)
{
	uint32_t mask = log->table_mask;
	uint32_t h = hash_id(log->groups[gi].id, mask);

	while (log->table[h] != gi + 1) {
		assert(log->table[h] != 0);
		h = (h + 1) & mask;
	}
	/* Backward shift: pull later members of the probe run into the hole
	 * when their home slot is at or before it (cyclically). */
	for (uint32_t j = (h + 1) & mask;; j = (j + 1) & mask) {
		uint32_t v = log->table[j];
		uint32_t home;

		if (v == 0)
			break;
		home = hash_id(log->groups[v - 1].id, mask);
		if (((j - home) & mask) >= ((j - h) & mask)) {
			log->table[h] = v;
			h = j;
		}
	}
	log->table[h] = 0;
	log->live--;
}

struct core_log_seg *core_log_seg_find(struct core_log *log, uint64_t seq)
{
	if (log->nsegs == 0 || seq < log->segs[0].seq)
		return NULL;
	if (seq - log->segs[0].seq >= log->nsegs)
		return NULL;
	return &log->segs[seq - log->segs[0].seq];
}

static void set_pin(struct core_log *log, struct core_log_group *g, uint64_t seq)
{
	struct core_log_seg *s;

	if (g->pin_seq == seq)
		return;
	if (g->pin_seq != 0 && (s = core_log_seg_find(log, g->pin_seq)) != NULL) {
		assert(s->pins > 0);
		s->pins--;
	}
	g->pin_seq = seq;
	if (seq != 0 && (s = core_log_seg_find(log, seq)) != NULL)
		s->pins++;
}

void core_log_group_free(struct core_log *log, uint32_t gi)
{
	struct core_log_group *g = &log->groups[gi];

	set_pin(log, g, 0);
	g->nruns = 0;
	g->used = false;
	g->next_free = log->free_head;
	log->free_head = gi;
}

int core_log_group_wrote(struct core_log *log, uint32_t gi, uint64_t seq, bool reset,
			 uint64_t first_index)
{
	struct core_log_group *g = &log->groups[gi];

	if (reset)
		g->nruns = 0;
	if (first_index == 0)
		return 0;
	/* Appending at first_index drops every stretch that starts at or
	 * after it; what remains of the last one continues in `seq`. */
	while (g->nruns > 0 && g->runs[g->nruns - 1].first_index >= first_index)
		g->nruns--;
	if (g->nruns > 0 && g->runs[g->nruns - 1].seq == seq)
		return 0;
	if (g->nruns == g->runs_cap) {
		uint32_t cap = g->runs_cap ? g->runs_cap * 2 : 4;
		struct core_log_run *grown = realloc(g->runs, (size_t)cap * sizeof *grown);

		if (!grown)
			return -ENOMEM;
		g->runs = grown;
		g->runs_cap = cap;
	}
	g->runs[g->nruns].seq = seq;
	g->runs[g->nruns].first_index = first_index;
	g->nruns++;
	return 0;
}

void core_log_group_repin(struct core_log *log, uint32_t gi)
{
	struct core_log_group *g = &log->groups[gi];
	uint64_t need = g->released + 1; /* first entry still needed */
	uint32_t k;

	if (!g->written.has_entries || g->nruns == 0 || need > g->written.last_index) {
		g->nruns = 0; /* everything it wrote is released */
		set_pin(log, g, 0);
		return;
	}
	/* The last stretch starting at or before `need`; when every stretch
	 * starts above it, the entries before the first went with segments
	 * already deleted, and the first stretch is the oldest still needed. */
	for (k = g->nruns - 1; k > 0 && g->runs[k].first_index > need; k--)
		;
	if (k > 0) {
		memmove(g->runs, g->runs + k, (g->nruns - k) * sizeof *g->runs);
		g->nruns -= k;
	}
	set_pin(log, g, g->runs[0].seq);
}
