/*
 * The WAL segment mapping: see wal_map.h for why the WAL is appended through
 * a mapping and how that stays safe on a full disk.
 */
#include "shard/wal_map.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

static uint64_t round_up(uint64_t v, uint64_t to)
{
	return (v + to - 1) / to * to;
}

int wal_map_open(struct wal_map *m, int fd, uint64_t min_len)
{
	struct stat st;
	uint64_t len;
	void *p;

	memset(m, 0, sizeof *m);
	if (fstat(fd, &st) != 0)
		return -errno;
	if (st.st_size < 0)
		return -EINVAL;
	len = round_up((uint64_t)st.st_size + min_len / 2, WAL_MAP_RELEASE_CHUNK);
	if (len < min_len)
		len = round_up(min_len, WAL_MAP_RELEASE_CHUNK);
	if (len > SIZE_MAX)
		return -EFBIG;
	p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	m->base = p;
	m->len = len;
	m->alloc = (uint64_t)st.st_size;
	return 0;
}

void wal_map_close(struct wal_map *m)
{
	if (m->base && munmap(m->base, (size_t)m->len) != 0)
		log_warn("WAL munmap: %s", strerror(errno));
	memset(m, 0, sizeof *m);
}

void wal_map_store(struct wal_map *m, uint64_t off, const void *src, size_t len)
{
	const uint8_t *from = src;
	volatile uint8_t *to;
	volatile uint64_t *words;

	assert(m->base != NULL);
	assert(off <= m->alloc && len <= m->alloc - off);
	/* Front to back, never as memcpy: glibc's memcpy does not store in
	 * ascending order (it may save the first bytes for last, and copies
	 * large blocks several pages at a time, interleaved), so a kill in the
	 * middle could leave a hole, which recovery must call corruption. A process stops between two instructions, so ascending
	 * stores leave a prefix. volatile keeps the compiler from turning the
	 * loops back into a memcpy call or reordering them. */
	to = m->base + off;
	for (; len > 0 && ((uintptr_t)to & 7) != 0; len--)
		*to++ = *from++;
	words = (volatile uint64_t *)(uintptr_t)to;
	for (; len >= 8; len -= 8, from += 8) {
		uint64_t v;

		memcpy(&v, from, 8);
		*words++ = v;
	}
	to = (volatile uint8_t *)words;
	while (len-- > 0)
		*to++ = *from++;
}

uint64_t wal_map_grow_target(const struct wal_map *m, uint64_t need, uint64_t ahead,
			     uint64_t granule)
{
	uint64_t exact = round_up(need, 4096);
	uint64_t size;

	assert(need <= m->len);
	assert(granule > 0 && granule % 4096 == 0);
	size = round_up(need + ahead, granule);
	if (ahead == 0)
		size = exact;
	else if (size > m->len)
		size = m->len; /* page aligned, so still >= exact */
	return size < m->alloc ? m->alloc : size;
}

void wal_map_allocated(struct wal_map *m, uint64_t size)
{
	assert(size <= m->len);
	if (size > m->alloc)
		m->alloc = size;
}

void wal_map_release(struct wal_map *m, uint64_t durable_end)
{
	uint64_t end = durable_end / WAL_MAP_RELEASE_CHUNK * WAL_MAP_RELEASE_CHUNK;

	if (!m->base || end <= m->released)
		return;
	/* Best effort: failing only leaves the pages resident. */
	if (madvise(m->base + m->released, (size_t)(end - m->released), MADV_DONTNEED) != 0)
		log_warn("WAL madvise: %s", strerror(errno));
	m->released = end;
}
