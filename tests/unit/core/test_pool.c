/*
 * Tests for core/pool.c: reuse through the free lists, every class boundary,
 * alignment, rejected sizes, statistics, chunk-tail spill, own mappings for
 * big classes, and a random churn that fills every block with a pattern and
 * checks it on free, so two live blocks can never overlap unnoticed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "core/pool.h"

#define SMALL_CHUNK ((size_t)64 << 10)

static void test_init_rejects_bad_chunk_size(void **state)
{
	struct pool p;

	assert_int_equal(pool_init(&p, 3), -EINVAL);
	assert_int_equal(pool_init(&p, POOL_MIN_CHUNK / 2), -EINVAL);
	assert_int_equal(pool_init(&p, POOL_MIN_CHUNK * 3), -EINVAL);
	assert_int_equal(pool_init(&p, POOL_MAX_CHUNK * 2), -EINVAL);
	assert_int_equal(pool_init(&p, 0), 0);
	assert_int_equal(p.chunk_size, POOL_DEFAULT_CHUNK);
	assert_int_equal(p.stats.bytes_mapped, 0); /* maps nothing yet */
	pool_destroy(&p);
	assert_int_equal(pool_init(&p, POOL_MIN_CHUNK), 0);
	pool_destroy(&p);
}

static void test_free_then_alloc_reuses(void **state)
{
	struct pool p;
	void *a, *b, *c;

	assert_int_equal(pool_init(&p, SMALL_CHUNK), 0);
	a = pool_alloc(&p, 100);
	b = pool_alloc(&p, 100);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	pool_free(&p, a);
	assert_ptr_equal(pool_alloc(&p, 110), a); /* same class, LIFO */

	/* A smaller class does not take the freed block. */
	pool_free(&p, b);
	c = pool_alloc(&p, 40);
	assert_ptr_not_equal(c, b);
	assert_ptr_equal(pool_alloc(&p, 100), b);

	pool_free(&p, NULL); /* ignored */
	pool_destroy(&p);
}

static void test_every_class_boundary(void **state)
{
	struct pool p;

	assert_int_equal(pool_init(&p, 0), 0);
	for (unsigned shift = POOL_MIN_SHIFT; shift <= POOL_MAX_SHIFT; shift++) {
		size_t fit = ((size_t)1 << shift) - POOL_HEADER_SIZE;
		uint8_t *a = pool_alloc(&p, fit);
		uint8_t *b = pool_alloc(&p, fit + 1);

		assert_non_null(a);
		assert_int_equal(pool_block_size(a), fit);
		memset(a, 0xa5, fit); /* all usable bytes are writable */
		if (shift < POOL_MAX_SHIFT) {
			assert_non_null(b);
			assert_int_equal(pool_block_size(b), 2 * fit + POOL_HEADER_SIZE);
		} else {
			assert_null(b);
		}
		if (shift > POOL_MIN_SHIFT) {
			uint8_t *c = pool_alloc(&p, fit / 2 - POOL_HEADER_SIZE / 2 + 1);

			assert_int_equal(pool_block_size(c), fit);
			pool_free(&p, c);
		}
		pool_free(&p, a);
		pool_free(&p, b);
	}
	assert_int_equal(pool_block_size(pool_alloc(&p, 1)),
			 ((size_t)1 << POOL_MIN_SHIFT) - POOL_HEADER_SIZE);
	assert_int_equal(pool_block_size(pool_alloc(&p, POOL_MAX_ALLOC)), POOL_MAX_ALLOC);
	pool_destroy(&p);
}

static void test_alignment(void **state)
{
	struct pool p;

	assert_int_equal(pool_init(&p, SMALL_CHUNK), 0);
	for (size_t size = 1; size < 5000; size += 7) {
		void *a = pool_alloc(&p, size);

		assert_non_null(a);
		assert_int_equal((uintptr_t)a % 16, 0);
		assert_true(pool_block_size(a) >= size);
	}
	/* Own mappings too. */
	for (size_t size = SMALL_CHUNK - 100; size < 4 * SMALL_CHUNK; size *= 2)
		assert_int_equal((uintptr_t)pool_alloc(&p, size) % 16, 0);
	pool_destroy(&p);
}

static void test_rejected_sizes(void **state)
{
	struct pool p;

	assert_int_equal(pool_init(&p, SMALL_CHUNK), 0);
	assert_null(pool_alloc(&p, 0));
	assert_null(pool_alloc(&p, POOL_MAX_ALLOC + 1));
	assert_null(pool_alloc(&p, POOL_MAX_SIZE));
	assert_null(pool_alloc(&p, SIZE_MAX));
	assert_null(pool_alloc(&p, SIZE_MAX - POOL_HEADER_SIZE + 1));
	assert_int_equal(p.stats.allocs, 0);
	assert_int_equal(p.stats.bytes_mapped, 0);
	assert_int_equal(p.stats.bytes_in_use, 0);
	pool_destroy(&p);
}

static void test_stats(void **state)
{
	struct pool p;
	void *a, *b, *big;

	assert_int_equal(pool_init(&p, SMALL_CHUNK), 0);
	a = pool_alloc(&p, 1);   /* class 64 */
	b = pool_alloc(&p, 200); /* class 256 */
	assert_int_equal(p.stats.allocs, 2);
	assert_int_equal(p.stats.frees, 0);
	assert_int_equal(p.stats.bytes_in_use, 64 + 256);
	assert_int_equal(p.stats.bytes_mapped, SMALL_CHUNK);

	pool_free(&p, a);
	assert_int_equal(p.stats.frees, 1);
	assert_int_equal(p.stats.bytes_in_use, 256);

	/* A class bigger than a chunk gets a mapping of its own... */
	big = pool_alloc(&p, SMALL_CHUNK);
	assert_non_null(big);
	assert_int_equal(pool_block_size(big), 2 * SMALL_CHUNK - POOL_HEADER_SIZE);
	assert_true(p.stats.bytes_mapped > 3 * SMALL_CHUNK);
	uint64_t mapped = p.stats.bytes_mapped;
	assert_int_equal(p.stats.bytes_in_use, 256 + 2 * SMALL_CHUNK);

	/* ...which returns to the free list and is reused without mapping. */
	pool_free(&p, big);
	assert_ptr_equal(pool_alloc(&p, SMALL_CHUNK + 1), big);
	assert_int_equal(p.stats.bytes_mapped, mapped);
	pool_free(&p, big);
	pool_free(&p, b);
	assert_int_equal(p.stats.allocs, 4);
	assert_int_equal(p.stats.frees, 4);
	assert_int_equal(p.stats.bytes_in_use, 0);
	pool_destroy(&p);
}

/* The tail of a chunk too short for a class becomes free blocks of smaller classes. */
static void test_chunk_tail_spill(void **state)
{
	struct pool p;
	const size_t half = SMALL_CHUNK / 2 - POOL_HEADER_SIZE;

	assert_int_equal(pool_init(&p, SMALL_CHUNK), 0);
	assert_non_null(pool_alloc(&p, half));
	assert_int_equal(p.stats.bytes_mapped, SMALL_CHUNK);
	assert_non_null(pool_alloc(&p, half)); /* does not fit the first chunk's tail */
	assert_int_equal(p.stats.bytes_mapped, 2 * SMALL_CHUNK);
	/* The first tail was SMALL_CHUNK/2 - 64: one block of every class below half. */
	for (size_t size = SMALL_CHUNK / 4; size >= 64; size /= 2)
		assert_non_null(pool_alloc(&p, size - POOL_HEADER_SIZE));
	assert_int_equal(p.stats.bytes_mapped, 2 * SMALL_CHUNK);
	pool_destroy(&p);
}

/* --- churn --- */

#define CHURN_SLOTS 512
#define CHURN_OPS 60000

struct live {
	uint64_t *block;
	size_t size;      /* pool_block_size: the whole block is patterned */
	uint64_t pattern; /* unique per allocation */
};

/* Word-wide so sanitizer builds stay fast; block sizes are multiples of 16. */
static uint64_t pattern_word(const struct live *l, size_t i)
{
	return l->pattern * 0x9e3779b97f4a7c15ull + i;
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static size_t churn_size(uint64_t *rng)
{
	uint64_t r = rng_next(rng);
	uint64_t percent = r % 100;

	if (percent == 0)
		return (size_t)(r >> 8) % (512 << 10) + 1; /* up to 512 KiB: own mappings */
	if (percent < 10)
		return (size_t)(r >> 8) % (64 << 10) + 1;
	return (size_t)(r >> 8) % 4096 + 1;
}

static void check_pattern(const struct live *l)
{
	for (size_t i = 0; i < l->size / sizeof(uint64_t); i++)
		if (l->block[i] != pattern_word(l, i))
			fail_msg("block %p word %zu overwritten", (void *)l->block, i);
}

static void test_random_churn(void **state)
{
	static struct live live[CHURN_SLOTS];
	struct pool p;
	uint64_t rng = 0x243f6a8885a308d3ull;
	uint64_t in_use = 0, live_blocks = 0;

	memset(live, 0, sizeof(live));
	assert_int_equal(pool_init(&p, SMALL_CHUNK), 0);
	for (int op = 0; op < CHURN_OPS; op++) {
		struct live *l = &live[rng_next(&rng) % CHURN_SLOTS];

		if (l->block != NULL) {
			check_pattern(l);
			in_use -= l->size + POOL_HEADER_SIZE;
			pool_free(&p, l->block);
			l->block = NULL;
			live_blocks--;
		} else {
			size_t want = churn_size(&rng);

			l->block = pool_alloc(&p, want);
			assert_non_null(l->block);
			assert_int_equal((uintptr_t)l->block % 16, 0);
			l->size = pool_block_size(l->block);
			assert_true(l->size >= want);
			assert_true(l->size < 2 * want + 64);
			assert_int_equal(l->size % sizeof(uint64_t), 0);
			l->pattern = (uint64_t)op + 1;
			for (size_t i = 0; i < l->size / sizeof(uint64_t); i++)
				l->block[i] = pattern_word(l, i);
			in_use += l->size + POOL_HEADER_SIZE;
			live_blocks++;
		}
		assert_int_equal(p.stats.bytes_in_use, in_use);
	}
	for (int i = 0; i < CHURN_SLOTS; i++)
		if (live[i].block != NULL)
			check_pattern(&live[i]);
	assert_int_equal(p.stats.allocs - p.stats.frees, live_blocks);
	assert_true(p.stats.bytes_mapped >= in_use);
	pool_destroy(&p);
}

static void test_large_blocks(void **state)
{
	struct pool p;
	size_t big = POOL_MAX_ALLOC + 1;
	uint8_t *b, *small;

	(void)state;
	assert_int_equal(pool_init(&p, 0), 0);
	/* pool_alloc still refuses it; pool_alloc_large maps it alone. */
	assert_null(pool_alloc(&p, big));
	b = pool_alloc_large(&p, big);
	assert_non_null(b);
	assert_true(pool_block_size(b) >= big);
	memset(b, 0xab, big);
	assert_int_equal(b[big - 1], 0xab);
	assert_true(p.stats.bytes_in_use >= big);
	pool_free(&p, b);
	assert_int_equal(p.stats.bytes_in_use, 0);
	/* Small sizes come from the classes as usual. */
	small = pool_alloc_large(&p, 100);
	assert_non_null(small);
	assert_true(pool_block_size(small) < POOL_MAX_ALLOC);
	pool_free(&p, small);
	pool_destroy(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_rejects_bad_chunk_size),
		cmocka_unit_test(test_free_then_alloc_reuses),
		cmocka_unit_test(test_every_class_boundary),
		cmocka_unit_test(test_alignment),
		cmocka_unit_test(test_rejected_sizes),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_chunk_tail_spill),
		cmocka_unit_test(test_random_churn),
		cmocka_unit_test(test_large_blocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
