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

static void json_lines(void *arg)
{
	(void)arg;
	log_set_format(LOG_JSON);
	log_set_thread_name("core \"7\"");
	log_warn("file \"a\\b\"\tline\nnext \x01 end");
	log_error("%s", "");
	log_set_format(LOG_TEXT);
	log_set_thread_name("main");
}

static void long_json_line(void *arg)
{
	char big[2000];

	(void)arg;
	memset(big, '"', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	log_set_format(LOG_JSON);
	log_warn("%s", big);
	log_set_format(LOG_TEXT);
}

static void test_json_format(void **state)
{
	char *out;
	char *second;

	(void)state;
	out = capture(json_lines, NULL);
	assert_int_equal(count_lines(out), 2);
	assert_int_equal(strncmp(out, "{\"ts\":\"", 7), 0);
	assert_non_null(strstr(out, "Z\",\"level\":\"warn\",\"thread\":\"core \\\"7\\\"\","
				    "\"msg\":\"file \\\"a\\\\b\\\"\\tline\\nnext \\u0001 end\"}\n"));
	second = strchr(out, '\n') + 1;
	assert_non_null(strstr(second, "\"level\":\"error\""));
	assert_non_null(strstr(second, "\"msg\":\"\"}\n"));

	/* Cut short inside its buffer, never mid-escape, still one object:
	 * the message is whole \" pairs, then the closing quote. */
	out = capture(long_json_line, NULL);
	assert_int_equal(count_lines(out), 1);
	assert_true(strlen(out) <= 1024);
	{
		char *body = strstr(out, "\"msg\":\"");
		size_t len;

		assert_non_null(body);
		body += 7;
		len = strlen(body);
		assert_true(len > 3 && strcmp(body + len - 3, "\"}\n") == 0);
		len -= 3;
		assert_true(len > 100 && len % 2 == 0);
		for (size_t i = 0; i < len; i += 2) {
			assert_int_equal(body[i], '\\');
			assert_int_equal(body[i + 1], '"');
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_line_per_interval),
		cmocka_unit_test(test_call_site_macro),
		cmocka_unit_test(test_json_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
