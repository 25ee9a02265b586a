/* core/strint.c: Redis' string2ll rules, at the edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
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

/*
 * What the general path makes of a length line in text[0, avail): 1 with
 * *value and *line_len when the digits before the first CR parse and an LF
 * follows it.
 */
static int general_line(const uint8_t *text, size_t avail, int64_t *value, size_t *line_len)
{
	const uint8_t *cr = memchr(text, '\r', avail);

	if (!cr || (size_t)(cr - text) + 1 >= avail || cr[1] != '\n' ||
	    strint_parse_i64(text, (size_t)(cr - text), value) != 0)
		return 0;
	*line_len = (size_t)(cr - text) + 2;
	return 1;
}

/*
 * Every text of up to 7 bytes over the bytes that matter: the short path
 * accepts only what the general path accepts, with the same value and
 * length, and accepts every line of 1-4 digits the general path does (so
 * it is the fast path for them). Each text sits at the end of its heap
 * block, so a read past avail is caught under ASan.
 */
static void test_short_line_against_general(void **state)
{
	static const uint8_t alphabet[] = { '0', '1', '5', '9', '-', '\r', '\n', 'a', '/', ':' };
	const size_t n_alpha = sizeof(alphabet), max_len = 7;
	uint8_t *block = malloc(max_len);
	unsigned long accepted = 0;

	(void)state;
	assert_non_null(block);
	for (size_t len = 0; len <= max_len; len++) {
		size_t combos = 1;

		for (size_t i = 0; i < len; i++)
			combos *= n_alpha;
		for (size_t k = 0; k < combos; k++) {
			uint8_t *text = block + max_len - len;
			size_t rest = k, fast_len = 0, general_len = 0;
			uint32_t fast_value = 0;
			int64_t general_value = 0;

			for (size_t i = 0; i < len; i++) {
				text[i] = alphabet[rest % n_alpha];
				rest /= n_alpha;
			}
			bool fast = strint_parse_short_line(text, len, &fast_value, &fast_len);
			int general = general_line(text, len, &general_value, &general_len);

			if (fast) {
				accepted++;
				if (!general || general_value != fast_value || general_len != fast_len)
					fail_msg("short path accepted \"%.*s\" (%zu bytes) as %u",
						 (int)len, text, len, fast_value);
			} else if (general && general_value >= 0 && general_len <= 6) {
				fail_msg("short path refused \"%.*s\" (%zu bytes)", (int)len,
					 text, len);
			}
		}
	}
	assert_true(accepted > 1000);
	free(block);
}

static void test_short_line_values(void **state)
{
	uint32_t v = 1;
	size_t len = 0;

	(void)state;
	assert_true(strint_parse_short_line((const uint8_t *)"9999\r\n", 6, &v, &len));
	assert_true(v == 9999 && len == 6);
	assert_true(strint_parse_short_line((const uint8_t *)"0\r\nxyz", 6, &v, &len));
	assert_true(v == 0 && len == 3);
	assert_false(strint_parse_short_line((const uint8_t *)"10000\r\n", 7, &v, &len));
	assert_false(strint_parse_short_line((const uint8_t *)"12\r\n", 3, &v, &len));
	assert_false(strint_parse_short_line((const uint8_t *)"", 0, &v, &len));
}

static void test_hex_digit(void **state)
{
	(void)state;
	for (int c = 0; c < 256; c++) {
		int want = c >= '0' && c <= '9' ? c - '0' :
			   c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			   c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;

		assert_int_equal(strint_hex_digit((uint8_t)c), want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signed),
		cmocka_unit_test(test_unsigned),
		cmocka_unit_test(test_short_line_against_general),
		cmocka_unit_test(test_short_line_values),
		cmocka_unit_test(test_hex_digit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
