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
 * Emptied full-size chunks go on a per-thread free list, not back to
 * malloc, and the next full-size chunk any log of the thread needs comes
 * from there. A replica's log holds what it appended since its shard's last
 * flush (tens of MiB under load) and gives it all back at the next flush,
 * to need as much again within seconds: given back to malloc, those bytes
 * were unmapped or trimmed and came back as fresh pages, a fault per 4 KiB.
 * The list keeps what this thread's logs held at most at once, until
 * raft_log_cache_release() (the core's end). Per thread because every log
 * of a core lives on its thread.
 */
static _Thread_local struct raft_log_chunk *free_chunks; /* linked through data */

static struct raft_log_chunk **free_link(struct raft_log_chunk *c)
{
	return (struct raft_log_chunk **)(void *)c->data;
}

/*
 * Faults in a new full-size chunk's pages with one call rather than one
 * fault per 4 KiB as the appends first touch them: the kernel still zeroes
 * each page, but skips 63 of 64 exception entries and exits (most of a
 * fault's cost in a VM). Advice only: a kernel without
 * MADV_POPULATE_WRITE refuses it and the pages fault in as before.
 */
static void populate(void *p, size_t len)
{
#ifdef MADV_POPULATE_WRITE
	uintptr_t lo = ((uintptr_t)p + 4095u) & ~(uintptr_t)4095u;
	uintptr_t hi = ((uintptr_t)p + len) & ~(uintptr_t)4095u;

	if (hi > lo)
		(void)madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
#else
	(void)p;
	(void)len;
#endif
}

/* A chunk of `cap` bytes, or NULL. */
static struct raft_log_chunk *chunk_new(size_t cap)
{
	struct raft_log_chunk *c;

	if (cap == CHUNK_MAX && free_chunks) {
		c = free_chunks;
		free_chunks = *free_link(c);
	} else {
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		if (cap == CHUNK_MAX)
			populate(c, sizeof(*c) + cap);
	}
	c->cap = cap;
	c->used = 0;
	return c;
}

static void chunk_free(struct raft_log_chunk *c)
{
	if (c && c->cap == CHUNK_MAX) {
		*free_link(c) = free_chunks;
		free_chunks = c;
	} else {
		free(c);
	}
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
	while (free_chunks) {
		struct raft_log_chunk *c = free_chunks;

		free_chunks = *free_link(c);
		free(c);
	}
}

void raft_log_free(struct raft_log *log)
{
	for (size_t i = 0; i < log->nchunks; i++)
		chunk_free(log->chunks[i]);
	free(log->chunks);
	chunk_free(log->spare);
	free(log->entries);
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
	if (log->n == log->cap) {
		uint64_t cap = log->cap ? log->cap * 2 : 8;
		struct raft_entry *grown =
			realloc(log->entries, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		log->entries = grown;
		log->cap = cap;
	}
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
	if (log->n == 0) {
		free(log->entries);
		log->entries = NULL;
		log->cap = 0;
	}
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
