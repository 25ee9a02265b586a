/*
 * In-memory log: a dense array of entries after a compaction offset. Only the
 * tail changes (append, truncate on conflict); compaction drops the head.
 * Raft's Log Matching property lives on top of this in replication.c; this
 * file only keeps indexes and ownership of entry bytes straight.
 */
#include "raft/log.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void raft_log_init(struct raft_log *log)
{
	memset(log, 0, sizeof(*log));
}

static void entry_free(struct raft_entry *e)
{
	free(e->data);
	e->data = NULL;
}

void raft_log_free(struct raft_log *log)
{
	for (uint64_t i = 0; i < log->n; i++)
		entry_free(&log->entries[i]);
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
		e->data = malloc(len);
		if (!e->data)
			return -ENOMEM;
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
		log->bytes -= e->len;
		entry_free(e);
		log->n--;
	}
}

void raft_log_compact(struct raft_log *log, uint64_t index)
{
	assert(index > log->offset && index <= raft_log_last_index(log));
	uint64_t drop = index - log->offset;
	log->offset_term = log->entries[drop - 1].term;
	for (uint64_t i = 0; i < drop; i++) {
		log->bytes -= log->entries[i].len;
		entry_free(&log->entries[i]);
	}
	memmove(log->entries, log->entries + drop,
		(log->n - drop) * sizeof(*log->entries));
	log->n -= drop;
	log->offset = index;
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
	return log->cap * sizeof(*log->entries) + log->bytes;
}
