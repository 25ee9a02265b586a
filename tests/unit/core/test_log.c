/* tests/unit/core: rate-limited logging (core/log.c log_limited). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"

/* Runs fn with stderr sent to a temporary file; returns what it wrote. */
static char *capture(void (*fn)(void *), void *arg)
{
	static char out[8192];
	FILE *f = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t n;

	assert_non_null(f);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
	fn(arg);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(f);
	n = fread(out, 1, sizeof out - 1, f);
	out[n] = '\0';
	fclose(f);
	return out;
}

static unsigned count_lines(const char *s)
{
	unsigned n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void burst(void *arg)
{
	struct log_limit *limit = arg;

	for (int i = 0; i < 100; i++)
		log_limited(limit, LOG_WARN, 60000, "refusing client %d", i);
}

static void after_interval(void *arg)
{
	struct log_limit *limit = arg;

	limit->next_us = 0; /* as if the interval had passed */
	log_limited(limit, LOG_WARN, 60000, "refusing client %d", 100);
}

static void test_one_line_per_interval(void **state)
{
	struct log_limit limit = { 0 };
	char *out;

	(void)state;
	out = capture(burst, &limit);
	assert_int_equal(count_lines(out), 1);
	assert_non_null(strstr(out, "refusing client 0"));
	assert_null(strstr(out, "suppressed"));
	assert_int_equal(limit.suppressed, 99);

	out = capture(after_interval, &limit);
	assert_int_equal(count_lines(out), 1);
	assert_non_null(strstr(out, "refusing client 100 (99 similar lines suppressed)"));
	assert_int_equal(limit.suppressed, 0);
}

static void every_macro(void *arg)
{
	(void)arg;
	for (int i = 0; i < 50; i++)
		log_every(LOG_ERROR, 60000, "disk full on shard %d", 3);
}

static void test_call_site_macro(void **state)
{
	(void)state;
	assert_int_equal(count_lines(capture(every_macro, NULL)), 1);
	/* The same call site stays quiet within its interval. */
	assert_int_equal(count_lines(capture(every_macro, NULL)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_line_per_interval),
		cmocka_unit_test(test_call_site_macro),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
