/* core/glob.c against Redis' pattern rules, binary subjects included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/glob.h"

static bool m(const char *pattern, const char *subject)
{
	return glob_match((const uint8_t *)pattern, strlen(pattern),
			  (const uint8_t *)subject, strlen(subject), false);
}

static void test_wildcards(void **state)
{
	(void)state;
	assert_true(m("*", ""));
	assert_true(m("*", "anything"));
	assert_true(m("user:*", "user:1"));
	assert_false(m("user:*", "use"));
	assert_true(m("*:1", "user:1"));
	assert_true(m("a*b*c", "axxbyyc"));
	assert_false(m("a*b*c", "axxbyy"));
	assert_true(m("h?llo", "hello"));
	assert_false(m("h?llo", "hllo"));
	assert_true(m("", ""));
	assert_false(m("", "x"));
	assert_true(m("**a", "bba"));
}

static void test_classes_and_escapes(void **state)
{
	(void)state;
	assert_true(m("h[ae]llo", "hallo"));
	assert_false(m("h[ae]llo", "hillo"));
	assert_true(m("h[^e]llo", "hallo"));
	assert_false(m("h[^e]llo", "hello"));
	assert_true(m("h[a-b]llo", "hbllo"));
	assert_true(m("h[b-a]llo", "hallo"));
	assert_false(m("h[a-b]llo", "hcllo"));
	assert_true(m("h\\*llo", "h*llo"));
	assert_false(m("h\\*llo", "hello"));
	assert_true(m("[\\]]", "]"));
	assert_true(glob_match((const uint8_t *)"HeLLo", 5, (const uint8_t *)"hello", 5, true));
}

static void test_binary_subjects(void **state)
{
	const uint8_t key[] = { 'k', ':', 0, 1, 0xff, '\r', '\n' };

	(void)state;
	assert_true(glob_match((const uint8_t *)"k:*", 3, key, sizeof key, false));
	assert_true(glob_match((const uint8_t *)"k:?\x01*", 5, key, sizeof key, false));
	assert_false(glob_match((const uint8_t *)"k:x*", 4, key, sizeof key, false));
}

static void test_backtracking_is_bounded(void **state)
{
	char subject[4001];

	(void)state;
	memset(subject, 'a', 4000);
	subject[4000] = '\0';
	/* Exponential in a naive matcher; linear-ish here. */
	assert_false(m("*a*a*a*a*a*a*a*a*a*b", subject));
}

/* The work count grows with pattern x subject for the backtracking worst
 * case and stays small for a plain match, so callers can cap it. */
static void test_work_is_counted(void **state)
{
	static uint8_t subject[4000];
	static uint8_t pattern[2000];
	uint64_t plain = 0, worst = 0;
	size_t i;

	(void)state;
	/* "*aaa...ab" against "aaa...a": the star tries every start and the
	 * literal run fails only at its end. */
	memset(subject, 'a', sizeof subject);
	pattern[0] = '*';
	for (i = 1; i < sizeof pattern; i++)
		pattern[i] = 'a';
	pattern[sizeof pattern - 1] = 'b';
	assert_false(glob_match_counted(pattern, sizeof pattern, subject, sizeof subject,
					false, &worst));
	assert_true(glob_match_counted((const uint8_t *)"a*", 2, subject, sizeof subject,
				       false, &plain));
	assert_true(plain <= 2);
	assert_true(worst > (uint64_t)sizeof subject * 1000);
	/* Counting changes no answer. */
	assert_false(glob_match(pattern, sizeof pattern, subject, sizeof subject, false));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wildcards),
		cmocka_unit_test(test_classes_and_escapes),
		cmocka_unit_test(test_binary_subjects),
		cmocka_unit_test(test_backtracking_is_bounded),
		cmocka_unit_test(test_work_is_counted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
