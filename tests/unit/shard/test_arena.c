/* Tests for shard/arena.c: alignment, exhaustion, reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "shard/arena.h"

static void test_alloc_aligns_and_counts(void **state)
{
	struct arena a;
	uint8_t *p;
	uint8_t *q;

	(void)state;
	assert_int_equal(arena_init(&a, 4096), 0);
	assert_int_equal(arena_remaining(&a), 4096);
	p = arena_alloc(&a, 3, 1);
	assert_non_null(p);
	assert_int_equal(a.used, 3);
	q = arena_alloc(&a, 8, 8);
	assert_non_null(q);
	assert_int_equal((uintptr_t)q % 8, 0);
	assert_ptr_equal(q, p + 8);
	assert_int_equal(a.used, 16);
	assert_int_equal(arena_remaining(&a), 4096 - 16);
	memset(q, 0xab, 8); /* the memory is writable */
	q = arena_alloc(&a, 1, 64);
	assert_int_equal((uintptr_t)q % 64, 0);
	arena_destroy(&a);
}

static void test_full_arena_fails_without_change(void **state)
{
	struct arena a;
	void *p;

	(void)state;
	assert_int_equal(arena_init(&a, 100), 0);
	assert_non_null(arena_alloc(&a, 99, 1));
	assert_null(arena_alloc(&a, 2, 1));
	assert_int_equal(a.used, 99);
	/* The padding alone would pass the end. */
	assert_null(arena_alloc(&a, 0, 128));
	assert_int_equal(a.used, 99);
	assert_null(arena_alloc(&a, SIZE_MAX, 1));
	assert_null(arena_alloc(&a, SIZE_MAX - 50, 8));
	assert_int_equal(a.used, 99);
	p = arena_alloc(&a, 1, 1);
	assert_non_null(p);
	assert_int_equal(arena_remaining(&a), 0);
	assert_null(arena_alloc(&a, 1, 1));
	arena_destroy(&a);
}

static void test_reset_reuses_memory(void **state)
{
	struct arena a;
	void *first;

	(void)state;
	assert_int_equal(arena_init(&a, 1 << 20), 0);
	first = arena_alloc(&a, 1000, 16);
	assert_non_null(arena_alloc(&a, 5000, 16));
	arena_reset(&a);
	assert_int_equal(a.used, 0);
	assert_int_equal(arena_remaining(&a), 1 << 20);
	assert_ptr_equal(arena_alloc(&a, 1000, 16), first);
	arena_destroy(&a);
	assert_null(a.base);
	arena_destroy(&a); /* twice is harmless */
}

static void test_alloc_back_shares_free_space(void **state)
{
	struct arena a;
	uint8_t *front;
	uint8_t *back;
	uint8_t *back2;

	(void)state;
	assert_int_equal(arena_init(&a, 100), 0);
	back = arena_alloc_back(&a, 10);
	assert_ptr_equal(back, a.base + 90);
	back2 = arena_alloc_back(&a, 5);
	assert_ptr_equal(back2, a.base + 85);
	assert_int_equal(a.used, 15);
	assert_int_equal(arena_remaining(&a), 85);
	front = arena_alloc(&a, 3, 1);
	assert_ptr_equal(front, a.base);
	/* Front padding counts from the front cursor, not from `used`. */
	front = arena_alloc(&a, 8, 8);
	assert_ptr_equal(front, a.base + 8);
	assert_int_equal(a.used, 31);
	memset(back, 1, 10);
	memset(back2, 2, 5);
	/* The cursors never cross, from either side. */
	assert_null(arena_alloc_back(&a, 70));
	assert_null(arena_alloc(&a, 70, 1));
	assert_null(arena_alloc_back(&a, SIZE_MAX));
	assert_int_equal(a.used, 31);
	assert_non_null(arena_alloc_back(&a, 69));
	assert_int_equal(arena_remaining(&a), 0);
	assert_non_null(arena_alloc_back(&a, 0));
	assert_null(arena_alloc(&a, 1, 1));
	assert_null(arena_alloc_back(&a, 1));
	arena_reset(&a);
	assert_int_equal(a.back, 0);
	assert_ptr_equal(arena_alloc_back(&a, 1), a.base + 99);
	arena_destroy(&a);
}

static void test_zeroed_and_empty_arenas(void **state)
{
	struct arena a;

	(void)state;
	memset(&a, 0, sizeof(a));
	arena_destroy(&a);
	assert_int_equal(arena_init(&a, 0), 0);
	assert_null(arena_alloc(&a, 1, 1));
	assert_null(arena_alloc_back(&a, 0));
	assert_int_equal(arena_remaining(&a), 0);
	arena_destroy(&a);
}

static void test_huge_mapping_fails_cleanly(void **state)
{
	struct arena a;

	(void)state;
	assert_int_equal(arena_init(&a, SIZE_MAX - 4095), -ENOMEM);
	arena_destroy(&a);
}

/*
 * Whether the mapping holding `addr` carries the MADV_HUGEPAGE advice ("hg"
 * in its VmFlags in /proc/self/smaps). -1 when no mapping holds it.
 */
static int advised_huge(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool inside = false;
	int found = -1;
	uintptr_t a = (uintptr_t)addr;

	assert_non_null(f);
	while (fgets(line, sizeof line, f) != NULL) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			inside = a >= lo && a < hi;
			continue;
		}
		if (inside && strncmp(line, "VmFlags:", 8) == 0) {
			found = strstr(line, " hg") != NULL;
			break;
		}
	}
	fclose(f);
	return found;
}

/* A large arena asks for huge pages inside and keeps small pages at its
 * ends (a quiet memtable touches only those); a small one asks for none. */
static void test_huge_pages_inside_only(void **state)
{
	struct arena a;
	size_t cap = 64u << 20;

	(void)state;
	assert_int_equal(arena_init(&a, cap), 0);
	assert_int_equal(advised_huge(a.base + cap / 2), 1);
	assert_int_equal(advised_huge(a.base), 0);
	assert_int_equal(advised_huge(a.base + cap - 1), 0);
	arena_destroy(&a);
	assert_int_equal(arena_init(&a, 1u << 20), 0);
	assert_int_equal(advised_huge(a.base + (1u << 19)), 0);
	arena_destroy(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_aligns_and_counts),
		cmocka_unit_test(test_full_arena_fails_without_change),
		cmocka_unit_test(test_reset_reuses_memory),
		cmocka_unit_test(test_alloc_back_shares_free_space),
		cmocka_unit_test(test_zeroed_and_empty_arenas),
		cmocka_unit_test(test_huge_mapping_fails_cleanly),
		cmocka_unit_test(test_huge_pages_inside_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
