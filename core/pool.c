/*
 * Per-core size-class allocator. Every mapping (a chunk shared by many blocks,
 * or a mapping of its own for a class too big for a chunk) starts with a
 * `struct mapping` record that links it into p->chunks; blocks follow at
 * cache-line-aligned offsets. Every block starts with a 16-byte header naming
 * its class, so pool_free() needs no size. Invariant: a block is on exactly
 * one free list or in the caller's hands, never both, and its header's class
 * never changes once carved.
 *
 * When the current chunk cannot fit the requested class, its tail is cut into
 * the largest classes that fit and pushed onto their free lists, so nothing a
 * chunk holds is wasted beyond its first cache line.
 *
 * Under AddressSanitizer, memory a caller does not own (free blocks past their
 * link word, the uncarved rest of a chunk) is poisoned so use-after-free and
 * overflow into a neighbour are reported as for malloc.
 */
#include "core/pool.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ASAN 1
#endif
#endif

#ifdef POOL_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(addr, size) ASAN_POISON_MEMORY_REGION((addr), (size))
#define UNPOISON(addr, size) ASAN_UNPOISON_MEMORY_REGION((addr), (size))
#else
#define POISON(addr, size) ((void)(addr), (void)(size))
#define UNPOISON(addr, size) ((void)(addr), (void)(size))
#endif

#define MAPPING_HEADER ((size_t)64) /* keeps blocks cache-line aligned */
#define BLOCK_MAGIC_USED 0x52b10c75u
#define BLOCK_MAGIC_FREE 0x52f4ee00u

struct mapping {
	struct mapping *next; /* older mapping */
	size_t bytes;         /* length passed to mmap, for munmap */
};

struct block_header {
	uint32_t class_index; /* size class: 2^(class_index + POOL_MIN_SHIFT) bytes */
	uint32_t magic;       /* BLOCK_MAGIC_USED or BLOCK_MAGIC_FREE */
	uint64_t reserved;    /* pads the header to POOL_HEADER_SIZE */
};

_Static_assert(sizeof(struct block_header) == POOL_HEADER_SIZE,
	       "block header must keep user memory 16-byte aligned");
_Static_assert(sizeof(struct mapping) <= MAPPING_HEADER, "mapping record too big");

static size_t class_bytes(unsigned class_index)
{
	return (size_t)1 << (class_index + POOL_MIN_SHIFT);
}

/* Smallest class whose blocks hold `size` usable bytes. size <= POOL_MAX_ALLOC. */
static unsigned class_for(size_t size)
{
	size_t need = size + POOL_HEADER_SIZE;
	unsigned shift;

	if (need <= class_bytes(0))
		return 0;
	shift = 64 - (unsigned)__builtin_clzll((unsigned long long)(need - 1));
	return shift - POOL_MIN_SHIFT;
}

/* Largest class that fits in `bytes` (>= the smallest class). */
static unsigned class_fitting(size_t bytes)
{
	unsigned shift = 63 - (unsigned)__builtin_clzll((unsigned long long)bytes);

	assert(bytes >= class_bytes(0));
	if (shift > POOL_MAX_SHIFT)
		shift = POOL_MAX_SHIFT;
	return shift - POOL_MIN_SHIFT;
}

static struct block_header *header_of(const void *block)
{
	return (struct block_header *)((uintptr_t)block - POOL_HEADER_SIZE);
}

static void *user_of(struct block_header *h)
{
	return (uint8_t *)h + POOL_HEADER_SIZE;
}

/* Maps `bytes`, links the mapping, returns where blocks may start. */
static uint8_t *map_new(struct pool *p, size_t bytes)
{
	struct mapping *m;

	m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	m->next = p->chunks;
	m->bytes = bytes;
	p->chunks = m;
	p->stats.bytes_mapped += bytes;
	POISON((uint8_t *)m + MAPPING_HEADER, bytes - MAPPING_HEADER);
	return (uint8_t *)m + MAPPING_HEADER;
}

/* Writes a block header at `at`; the user area stays poisoned. */
static struct block_header *block_make(uint8_t *at, unsigned class_index)
{
	struct block_header *h = (struct block_header *)at;

	UNPOISON(h, POOL_HEADER_SIZE);
	h->class_index = class_index;
	h->magic = BLOCK_MAGIC_USED;
	h->reserved = 0;
	return h;
}

static void free_list_push(struct pool *p, struct block_header *h)
{
	void *user = user_of(h);

	assert(h->magic == BLOCK_MAGIC_USED);
	h->magic = BLOCK_MAGIC_FREE;
	UNPOISON(user, sizeof(void *));
	*(void **)user = p->free_list[h->class_index];
	POISON((uint8_t *)user + sizeof(void *),
	       class_bytes(h->class_index) - POOL_HEADER_SIZE - sizeof(void *));
	p->free_list[h->class_index] = user;
}

/* Cuts what is left of the current chunk into free blocks of the largest classes. */
static void chunk_spill(struct pool *p)
{
	while (p->chunk_left >= class_bytes(0)) {
		unsigned c = class_fitting(p->chunk_left);

		free_list_push(p, block_make(p->chunk, c));
		p->chunk += class_bytes(c);
		p->chunk_left -= class_bytes(c);
	}
	assert(p->chunk_left == 0);
}

/* A fresh block of class `c`, from the current chunk, a new chunk, or its own mapping. */
static struct block_header *block_carve(struct pool *p, unsigned c)
{
	size_t bytes = class_bytes(c);
	uint8_t *at;

	if (bytes > p->chunk_size - MAPPING_HEADER) {
		at = map_new(p, bytes + MAPPING_HEADER);
		return at ? block_make(at, c) : NULL;
	}
	if (p->chunk_left < bytes) {
		at = map_new(p, p->chunk_size);
		if (at == NULL)
			return NULL;
		chunk_spill(p);
		p->chunk = at;
		p->chunk_left = p->chunk_size - MAPPING_HEADER;
	}
	at = p->chunk;
	p->chunk += bytes;
	p->chunk_left -= bytes;
	return block_make(at, c);
}

int pool_init(struct pool *p, size_t chunk_size)
{
	assert(p != NULL);
	if (chunk_size == 0)
		chunk_size = POOL_DEFAULT_CHUNK;
	if (chunk_size < POOL_MIN_CHUNK || chunk_size > POOL_MAX_CHUNK ||
	    (chunk_size & (chunk_size - 1)) != 0)
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	p->chunk_size = chunk_size;
	return 0;
}

void pool_destroy(struct pool *p)
{
	struct mapping *m = p->chunks;

	assert(p != NULL);
	while (m != NULL) {
		struct mapping *next = m->next;
		size_t bytes = m->bytes;

		/* Stale poison would outlive the mapping and hit its next user. */
		UNPOISON(m, bytes);
		munmap(m, bytes);
		m = next;
	}
	memset(p, 0, sizeof(*p));
}

void *pool_alloc(struct pool *p, size_t size)
{
	struct block_header *h;
	unsigned c;
	void *user;

	assert(p != NULL && p->chunk_size != 0);
	if (size == 0 || size > POOL_MAX_ALLOC)
		return NULL;
	c = class_for(size);
	user = p->free_list[c];
	if (user != NULL) {
		p->free_list[c] = *(void **)user;
		h = header_of(user);
		assert(h->magic == BLOCK_MAGIC_FREE && h->class_index == c);
		h->magic = BLOCK_MAGIC_USED;
	} else {
		h = block_carve(p, c);
		if (h == NULL)
			return NULL;
		user = user_of(h);
	}
	UNPOISON(user, class_bytes(c) - POOL_HEADER_SIZE);
	p->stats.allocs++;
	p->stats.bytes_in_use += class_bytes(c);
	return user;
}

/* Class index of blocks mapped alone by pool_alloc_large (header.reserved
 * holds the mapping's length). */
#define LARGE_CLASS 0xffffffffu

void *pool_alloc_large(struct pool *p, size_t size)
{
	struct block_header *h;
	size_t len;
	void *mem;

	if (size <= POOL_MAX_ALLOC)
		return pool_alloc(p, size);
	if (size > SIZE_MAX - POOL_HEADER_SIZE - 4096)
		return NULL;
	len = (size + POOL_HEADER_SIZE + 4095) & ~(size_t)4095;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return NULL;
	h = mem;
	h->class_index = LARGE_CLASS;
	h->magic = BLOCK_MAGIC_USED;
	h->reserved = len;
	p->stats.allocs++;
	p->stats.bytes_in_use += len;
	return user_of(h);
}

void pool_free(struct pool *p, void *block)
{
	struct block_header *h;

	assert(p != NULL);
	if (block == NULL)
		return;
	h = header_of(block);
	assert(h->magic == BLOCK_MAGIC_USED && "double free or foreign pointer");
	if (h->class_index == LARGE_CLASS) {
		p->stats.frees++;
		p->stats.bytes_in_use -= h->reserved;
		munmap(h, h->reserved);
		return;
	}
	assert(h->class_index < POOL_CLASSES);
	p->stats.frees++;
	p->stats.bytes_in_use -= class_bytes(h->class_index);
	free_list_push(p, h);
}

size_t pool_block_size(const void *block)
{
	const struct block_header *h = header_of(block);

	assert(h->magic == BLOCK_MAGIC_USED);
	if (h->class_index == LARGE_CLASS)
		return h->reserved - POOL_HEADER_SIZE;
	return class_bytes(h->class_index) - POOL_HEADER_SIZE;
}
