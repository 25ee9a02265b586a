/* core/strint.c: Redis' string2ll rules, at the edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/errors.h"
#include "core/strint.h"

static int i64(const char *text, int64_t *v)
{
	return strint_parse_i64(text, strlen(text), v);
}

static void test_signed(void **state)
{
	int64_t v;

	(void)state;
	assert_int_equal(i64("0", &v), 0);
	assert_true(v == 0);
	assert_int_equal(i64("-42", &v), 0);
	assert_true(v == -42);
	assert_int_equal(i64("9223372036854775807", &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(i64("-9223372036854775808", &v), 0);
	assert_true(v == INT64_MIN);
	static const char *const bad[] = { "", "-", "-0", "01", "+1", " 1", "1 ", "1a",
					   "9223372036854775808", "-9223372036854775809",
					   "99999999999999999999" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(i64(bad[i], &v), RKV_EINVAL);
}

static void test_unsigned(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(strint_parse_u64("18446744073709551615", 20, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(strint_parse_u64("18446744073709551616", 20, &v), RKV_EINVAL);
	assert_int_equal(strint_parse_u64("-1", 2, &v), RKV_EINVAL);
	assert_int_equal(strint_parse_u64("007", 3, &v), RKV_EINVAL);
	assert_int_equal(strint_parse_u64(NULL, 0, &v), RKV_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signed),
		cmocka_unit_test(test_unsigned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
