/*
 * Tests for core/buf.c: a buffer grows by doubling from its capacity (4096
 * from nothing) to the first size that holds what is needed, keeps the
 * bytes asked for, leaves a large enough buffer alone, and changes nothing
 * when the pool cannot give a block.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "core/buf.h"

static void test_grows_from_nothing(void **state)
{
	struct pool p;
	uint8_t *buf = NULL;
	size_t cap = 0;

	(void)state;
	assert_int_equal(pool_init(&p, 0), 0);
	assert_int_equal(buf_grow(&p, &buf, &cap, 0, 10), 0);
	assert_non_null(buf);
	assert_true(cap >= 4096);
	assert_int_equal(cap, pool_block_size(buf));
	memset(buf, 0xab, cap); /* all of it may be written */
	pool_free(&p, buf);
	pool_destroy(&p);
}

static void test_keeps_bytes_and_doubles(void **state)
{
	struct pool p;
	uint8_t *buf = NULL, *before;
	size_t cap = 0, before_cap;

	(void)state;
	assert_int_equal(pool_init(&p, 0), 0);
	assert_int_equal(buf_grow(&p, &buf, &cap, 0, 4096), 0);
	for (size_t i = 0; i < 100; i++)
		buf[i] = (uint8_t)i;
	/* Enough already: nothing moves. */
	before = buf;
	assert_int_equal(buf_grow(&p, &buf, &cap, 100, cap), 0);
	assert_ptr_equal(buf, before);
	/* Three times its capacity: doubled twice (the pool may round up). */
	before_cap = cap;
	assert_int_equal(buf_grow(&p, &buf, &cap, 100, 3 * before_cap), 0);
	assert_true(cap >= 4 * before_cap);
	for (size_t i = 0; i < 100; i++)
		assert_int_equal(buf[i], (uint8_t)i);
	/* Past the pool's classes: a mapping of its own, bytes kept. */
	assert_int_equal(buf_grow(&p, &buf, &cap, 100, (size_t)8 << 20), 0);
	assert_true(cap >= ((size_t)8 << 20));
	for (size_t i = 0; i < 100; i++)
		assert_int_equal(buf[i], (uint8_t)i);
	buf[cap - 1] = 1;
	pool_free(&p, buf);
	pool_destroy(&p);
}

static void test_no_memory_changes_nothing(void **state)
{
	struct pool p;
	uint8_t *buf = NULL, *before;
	size_t cap = 0, cap_before;

	(void)state;
	assert_int_equal(pool_init(&p, 0), 0);
	assert_int_equal(buf_grow(&p, &buf, &cap, 0, 64), 0);
	buf[0] = 7;
	before = buf;
	cap_before = cap;
	/* No mapping that large can be made. */
	assert_int_equal(buf_grow(&p, &buf, &cap, 1, SIZE_MAX / 4), -ENOMEM);
	assert_ptr_equal(buf, before);
	assert_int_equal(cap, cap_before);
	assert_int_equal(buf[0], 7);
	pool_free(&p, buf);
	pool_destroy(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grows_from_nothing),
		cmocka_unit_test(test_keeps_bytes_and_doubles),
		cmocka_unit_test(test_no_memory_changes_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
