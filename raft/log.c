/*
 * In-memory log: a dense array of entries after a compaction offset, their
 * data in chunks. Only the tail changes (append, truncate on conflict);
 * compaction drops the head.
 * Raft's Log Matching property lives on top of this in replication.c; this
 * file only keeps indexes and ownership of entry bytes straight.
 */
#include "raft/log.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Chunks start small (a quiet group holds a few bytes) and double up to
 * CHUNK_MAX as the log grows; an entry larger than that gets a chunk of
 * its own size. */
#define CHUNK_MIN 1024u
#define CHUNK_MAX (256u * 1024u)
#define DATA_ALIGN 8u

struct raft_log_chunk {
	size_t cap;
	size_t used;
	uint8_t data[];
};

/*
 * Full-size chunks come from per-thread regions of huge pages and go back
 * to a per-thread free list, never to malloc. A replica's log holds what it
 * appended since its shard's last flush (tens of MiB under load) and gives
 * it back at the next flush. From malloc, every 4 KiB of it was a fresh
 * page whose fault perf put at a tenth of a replicated write's CPU (the
 * fault, not the zeroing, is what costs in a VM); a region of 2 MiB pages
 * takes one fault per 2 MiB, and a chunk on the free list none. Regions are
 * kept for the thread's life: their size is the most this thread's logs
 * ever held at once. Per thread because every log of a core lives on its
 * thread (raft_log_cache_release() unmaps them at its end).
 */
#define REGION_BYTES (32u << 20) /* 128 full-size chunks */
#define HUGE_PAGE (2u << 20)
#define REGIONS_MAX 4096u         /* 128 GiB of log per thread */

struct chunk_pool {
	struct raft_log_chunk *free; /* linked through their first bytes */
	uint8_t *next, *end;         /* the rest of the newest region */
	void *regions[REGIONS_MAX];
	unsigned nregions;
};

static _Thread_local struct chunk_pool pool;

static struct raft_log_chunk **free_link(struct raft_log_chunk *c)
{
	return (struct raft_log_chunk **)(void *)c->data;
}

/* `len` bytes (a multiple of HUGE_PAGE) of fresh memory, 2 MiB aligned
 * and advised huge pages, or NULL. */
static void *huge_map(size_t len)
{
	size_t span = len + HUGE_PAGE;
	uint8_t *p, *base;

	p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	base = (uint8_t *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
	if (base > p)
		munmap(p, (size_t)(base - p));
	if (base + len < p + span)
		munmap(base + len, (size_t)(p + span - (base + len)));
	(void)madvise(base, len, MADV_HUGEPAGE); /* advice only */
	return base;
}

static bool pool_grow(void)
{
	uint8_t *base;

	if (pool.nregions == REGIONS_MAX)
		return false;
	base = huge_map(REGION_BYTES);
	if (!base)
		return false;
	pool.regions[pool.nregions++] = base;
	pool.next = base;
	pool.end = base + REGION_BYTES;
	return true;
}

/*
 * The entry array: malloc'd while small, then (from 2 MiB) a huge-page
 * mapping of its own, for the reason the chunks are: it grows by a 4 KiB
 * fault per 170 entries otherwise. Mapped lengths are whole huge pages.
 */
static size_t entries_map_len(uint64_t cap)
{
	size_t bytes = (size_t)cap * sizeof(struct raft_entry);

	return bytes < HUGE_PAGE ? 0 : (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
}

static void entries_free(struct raft_log *log)
{
	size_t len = entries_map_len(log->cap);

	if (len)
		munmap(log->entries, len);
	else
		free(log->entries);
	log->entries = NULL;
	log->cap = 0;
}

static int entries_grow(struct raft_log *log, uint64_t cap)
{
	size_t len = entries_map_len(cap);
	struct raft_entry *grown;

	if (!len) {
		grown = realloc(log->entries, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		log->entries = grown;
		log->cap = cap;
		return 0;
	}
	grown = huge_map(len);
	if (!grown)
		return -ENOMEM;
	if (log->n)
		memcpy(grown, log->entries, log->n * sizeof(*grown));
	entries_free(log);
	log->entries = grown;
	log->cap = cap;
	return 0;
}

/* A chunk of `cap` bytes: full-size ones from the pool, others malloc'd. */
static struct raft_log_chunk *chunk_new(size_t cap)
{
	const size_t full = sizeof(struct raft_log_chunk) + CHUNK_MAX;
	struct raft_log_chunk *c;

	if (cap != CHUNK_MAX) {
		c = malloc(sizeof(*c) + cap);
	} else if (pool.free) {
		c = pool.free;
		pool.free = *free_link(c);
	} else {
		if ((size_t)(pool.end - pool.next) < full && !pool_grow())
			return NULL;
		c = (struct raft_log_chunk *)(void *)pool.next;
		pool.next += (full + DATA_ALIGN - 1) / DATA_ALIGN * DATA_ALIGN;
	}
	if (!c)
		return NULL;
	c->cap = cap;
	c->used = 0;
	return c;
}

static void chunk_free(struct raft_log_chunk *c)
{
	if (!c)
		return;
	if (c->cap != CHUNK_MAX) {
		free(c);
		return;
	}
	*free_link(c) = pool.free;
	pool.free = c;
}

void raft_log_init(struct raft_log *log)
{
	memset(log, 0, sizeof(*log));
}

static bool chunk_holds(const struct raft_log_chunk *c, const void *p)
{
	const uint8_t *b = p;

	return b >= c->data && b < c->data + c->cap;
}

/* An emptied chunk: kept as the spare if it is the larger, else freed. */
static void chunk_drop(struct raft_log *log, struct raft_log_chunk *c)
{
	if (log->spare && log->spare->cap >= c->cap) {
		log->chunk_bytes -= c->cap;
		chunk_free(c);
		return;
	}
	if (log->spare) {
		log->chunk_bytes -= log->spare->cap;
		chunk_free(log->spare);
	}
	c->used = 0;
	log->spare = c;
}

/* A chunk at the end with room for len bytes, or NULL (-ENOMEM). */
static struct raft_log_chunk *chunk_for(struct raft_log *log, size_t len)
{
	struct raft_log_chunk *last = log->nchunks ? log->chunks[log->nchunks - 1] : NULL;
	struct raft_log_chunk *c;
	size_t cap;

	if (last && last->cap - last->used >= len)
		return last;
	if (log->nchunks == log->chunks_cap) {
		size_t n = log->chunks_cap ? log->chunks_cap * 2 : 4;
		struct raft_log_chunk **grown = realloc(log->chunks, n * sizeof(*grown));

		if (!grown)
			return NULL;
		log->chunks = grown;
		log->chunks_cap = n;
	}
	if (log->spare && log->spare->cap >= len) {
		c = log->spare;
		log->spare = NULL;
	} else {
		cap = last ? last->cap * 2 : CHUNK_MIN;
		if (cap > CHUNK_MAX)
			cap = CHUNK_MAX;
		if (cap < len)
			cap = len;
		c = chunk_new(cap);
		if (!c)
			return NULL;
		log->chunk_bytes += cap;
	}
	log->chunks[log->nchunks++] = c;
	return c;
}

void raft_log_cache_release(void)
{
	for (unsigned i = 0; i < pool.nregions; i++)
		munmap(pool.regions[i], REGION_BYTES);
	memset(&pool, 0, sizeof(pool));
}

void raft_log_free(struct raft_log *log)
{
	for (size_t i = 0; i < log->nchunks; i++)
		chunk_free(log->chunks[i]);
	free(log->chunks);
	chunk_free(log->spare);
	entries_free(log);
	raft_log_init(log);
}

uint64_t raft_log_last_index(const struct raft_log *log)
{
	return log->offset + log->n;
}

uint64_t raft_log_last_term(const struct raft_log *log)
{
	return log->n ? log->entries[log->n - 1].term : log->offset_term;
}

bool raft_log_term(const struct raft_log *log, uint64_t index, uint64_t *term)
{
	if (index == log->offset) {
		*term = log->offset_term;
		return true;
	}
	if (index < log->offset || index > log->offset + log->n)
		return false;
	*term = log->entries[index - log->offset - 1].term;
	return true;
}

const struct raft_entry *raft_log_get(const struct raft_log *log,
				      uint64_t index)
{
	if (index <= log->offset || index > log->offset + log->n)
		return NULL;
	return &log->entries[index - log->offset - 1];
}

int raft_log_append(struct raft_log *log, uint64_t term, uint32_t type,
		    const void *data, uint32_t len)
{
	assert(term >= raft_log_last_term(log));
	if (log->n == log->cap && entries_grow(log, log->cap ? log->cap * 2 : 8) != 0)
		return -ENOMEM;
	struct raft_entry *e = &log->entries[log->n];
	e->term = term;
	e->type = type;
	e->len = len;
	e->data = NULL;
	if (len) {
		size_t at, need;
		struct raft_log_chunk *c;

		/* Aligned, so decoders may read fields in place. */
		need = ((size_t)len + DATA_ALIGN - 1) / DATA_ALIGN * DATA_ALIGN;
		c = chunk_for(log, need);
		if (!c)
			return -ENOMEM;
		at = c->used;
		c->used += need;
		e->data = c->data + at;
		memcpy(e->data, data, len);
	}
	log->n++;
	log->bytes += len;
	return 0;
}

void raft_log_truncate(struct raft_log *log, uint64_t index)
{
	assert(index > log->offset);
	while (raft_log_last_index(log) >= index) {
		struct raft_entry *e = &log->entries[log->n - 1];

		if (e->len) {
			/* The last data placed: in the last chunk, once the
			 * chunks emptied after it are gone. */
			while (!chunk_holds(log->chunks[log->nchunks - 1], e->data)) {
				assert(log->nchunks > 1);
				chunk_drop(log, log->chunks[--log->nchunks]);
			}
			log->chunks[log->nchunks - 1]->used =
				(size_t)((uint8_t *)e->data - log->chunks[log->nchunks - 1]->data);
		}
		log->bytes -= e->len;
		e->data = NULL;
		log->n--;
	}
}

/* Gives back the chunks before the one holding the first remaining data. */
static void chunks_compact(struct raft_log *log)
{
	const void *first = NULL;
	size_t k = 0;

	for (uint64_t i = 0; i < log->n && !first; i++)
		if (log->entries[i].len)
			first = log->entries[i].data;
	if (!first) {
		for (size_t i = 0; i < log->nchunks; i++)
			chunk_drop(log, log->chunks[i]);
		log->nchunks = 0;
		return;
	}
	while (!chunk_holds(log->chunks[k], first))
		chunk_drop(log, log->chunks[k++]);
	if (k > 0) {
		memmove(log->chunks, log->chunks + k, (log->nchunks - k) * sizeof(*log->chunks));
		log->nchunks -= k;
	}
}

void raft_log_compact(struct raft_log *log, uint64_t index)
{
	assert(index > log->offset && index <= raft_log_last_index(log));
	uint64_t drop = index - log->offset;
	log->offset_term = log->entries[drop - 1].term;
	for (uint64_t i = 0; i < drop; i++)
		log->bytes -= log->entries[i].len;
	memmove(log->entries, log->entries + drop,
		(log->n - drop) * sizeof(*log->entries));
	log->n -= drop;
	log->offset = index;
	chunks_compact(log);
	if (log->n == 0)
		entries_free(log);
}

void raft_log_reset(struct raft_log *log, uint64_t index, uint64_t term)
{
	raft_log_free(log);
	log->offset = index;
	log->offset_term = term;
}

size_t raft_log_footprint(const struct raft_log *log)
{
	return log->cap * sizeof(*log->entries) + log->chunks_cap * sizeof(*log->chunks) +
	       log->chunk_bytes;
}
