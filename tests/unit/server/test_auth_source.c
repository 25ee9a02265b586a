/*
 * Tests for server/auth_source.c, the table of AUTH sources on a core: an
 * IPv4 address is one source whatever its port; an IPv6 /64 is one source
 * (an IPv4-mapped address counts whole); a window of in-use entries sends
 * a new source to the shared overflow entry; the stalest reusable entry is
 * the one reused; an entry with connections, jobs or a recent failure is
 * never reused, one whose failures are a quiet minute old is.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "server/auth_source.h"

static struct auth_sources *table;

static int setup(void **state)
{
	(void)state;
	table = calloc(1, sizeof *table);
	if (!table)
		return -1;
	for (unsigned i = 0; i < sizeof table->secret; i++)
		table->secret[i] = (uint8_t)(i * 7 + 3); /* fixed: the windows are known */
	auth_sources_init(table);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(table);
	return 0;
}

static struct auth_addr addr(const char *text, uint16_t port)
{
	struct auth_addr a = { .port = port };

	if (inet_pton(AF_INET, text, a.addr) == 1) {
		a.family = AF_INET;
	} else {
		assert_int_equal(inet_pton(AF_INET6, text, a.addr), 1);
		a.family = AF_INET6;
	}
	return a;
}

/* 10.x.y.z addresses whose windows start at the same entry: n of them. */
static void same_window(struct auth_addr *out, unsigned n)
{
	struct auth_addr first = addr("10.0.0.1", 1);
	unsigned slot = auth_source_slot(table, &first), found = 1;

	out[0] = first;
	for (uint32_t i = 2; found < n && i < 16u << 20; i++) {
		struct auth_addr a = { .family = AF_INET };
		uint32_t ip = htonl(0x0a000000u | i);

		memcpy(a.addr, &ip, 4);
		if (auth_source_slot(table, &a) == slot)
			out[found++] = a;
	}
	assert_int_equal(found, n);
}

static void test_ipv4_is_one_source_whatever_the_port(void **state)
{
	struct auth_addr a = addr("192.0.2.1", 1000), b = addr("192.0.2.1", 2000);
	struct auth_addr c = addr("192.0.2.2", 1000);
	struct auth_source *s;

	(void)state;
	s = auth_source_of(table, &a, 1);
	assert_non_null(s);
	assert_ptr_not_equal(s, &table->overflow);
	assert_ptr_equal(auth_source_of(table, &b, 2), s);
	assert_ptr_not_equal(auth_source_of(table, &c, 3), s);
	assert_null(auth_source_of(table, &(struct auth_addr){ 0 }, 4));
}

static void test_ipv6_groups_by_64(void **state)
{
	struct auth_addr a = addr("2001:db8:1:2::1", 1);
	struct auth_addr same64 = addr("2001:db8:1:2:ffff:eeee:dddd:cccc", 2);
	struct auth_addr other64 = addr("2001:db8:1:3::1", 3);
	struct auth_addr mapped1 = addr("::ffff:10.1.2.3", 4);
	struct auth_addr mapped2 = addr("::ffff:10.1.2.4", 5);
	struct auth_source *s;

	(void)state;
	s = auth_source_of(table, &a, 1);
	assert_ptr_equal(auth_source_of(table, &same64, 2), s);
	assert_ptr_not_equal(auth_source_of(table, &other64, 3), s);
	/* A v4-mapped address is one IPv4 host: not grouped with its /64. */
	assert_ptr_not_equal(auth_source_of(table, &mapped1, 4),
			     auth_source_of(table, &mapped2, 5));
	/* The entry keeps the /64, not the host. */
	assert_memory_equal(s->key, same64.addr, 8);
	for (unsigned i = 8; i < 16; i++)
		assert_int_equal(s->key[i], 0);
}

static void test_full_window_overflows(void **state)
{
	struct auth_addr a[AUTH_SOURCE_PROBE + 2];
	struct auth_source *s[AUTH_SOURCE_PROBE];

	(void)state;
	same_window(a, AUTH_SOURCE_PROBE + 2);
	for (unsigned i = 0; i < AUTH_SOURCE_PROBE; i++) {
		s[i] = auth_source_of(table, &a[i], 10 + i);
		assert_ptr_not_equal(s[i], &table->overflow);
		for (unsigned j = 0; j < i; j++)
			assert_ptr_not_equal(s[i], s[j]);
		s[i]->unauth = 1; /* a connection counts in it */
	}
	/* The 17th and 18th share the overflow entry. */
	assert_ptr_equal(auth_source_of(table, &a[AUTH_SOURCE_PROBE], 100), &table->overflow);
	assert_ptr_equal(auth_source_of(table, &a[AUTH_SOURCE_PROBE + 1], 101),
			 &table->overflow);
	assert_int_equal(table->overflowed, 2);
	/* Its members still find their own. */
	for (unsigned i = 0; i < AUTH_SOURCE_PROBE; i++)
		assert_ptr_equal(auth_source_of(table, &a[i], 102), s[i]);
}

static void test_stalest_reusable_entry_is_evicted(void **state)
{
	struct auth_addr a[AUTH_SOURCE_PROBE + 1];
	struct auth_source *s[AUTH_SOURCE_PROBE], *got;

	(void)state;
	same_window(a, AUTH_SOURCE_PROBE + 1);
	for (unsigned i = 0; i < AUTH_SOURCE_PROBE; i++) {
		s[i] = auth_source_of(table, &a[i], 10 + i);
		s[i]->jobs = 1;
	}
	/* Two reusable: the one used longest ago goes. */
	s[3]->jobs = 0;
	s[3]->last_us = 500;
	s[9]->jobs = 0;
	s[9]->last_us = 400;
	got = auth_source_of(table, &a[AUTH_SOURCE_PROBE], 1000);
	assert_ptr_equal(got, s[9]);
	assert_memory_equal(got->key, a[AUTH_SOURCE_PROBE].addr, 4);
	assert_int_equal(got->last_us, 1000);
	assert_int_equal(table->overflowed, 0);
	/* The evicted source comes back into the other reusable entry. */
	assert_ptr_equal(auth_source_of(table, &a[9], 1001), s[3]);
}

static void test_recent_failures_are_not_evicted(void **state)
{
	struct auth_addr a[AUTH_SOURCE_PROBE + 2];
	struct auth_source *s[AUTH_SOURCE_PROBE];
	uint64_t now = 10ull * AUTH_FAIL_FORGET_US;

	(void)state;
	same_window(a, AUTH_SOURCE_PROBE + 2);
	for (unsigned i = 0; i < AUTH_SOURCE_PROBE; i++) {
		s[i] = auth_source_of(table, &a[i], now);
		/* No connection, no job, but a failure a moment ago. */
		s[i]->failures = 1;
		s[i]->last_failure_us = now;
		s[i]->next_try_us = now + 250000;
	}
	assert_ptr_equal(auth_source_of(table, &a[AUTH_SOURCE_PROBE], now + 1000),
			 &table->overflow);
	/* Past the delay but within the quiet minute: still kept. */
	assert_ptr_equal(auth_source_of(table, &a[AUTH_SOURCE_PROBE], now + AUTH_FAIL_FORGET_US),
			 &table->overflow);
	/* A quiet minute later the failures are forgotten: reusable. */
	s[5]->last_failure_us = now - 2;
	assert_ptr_equal(auth_source_of(table, &a[AUTH_SOURCE_PROBE], now + AUTH_FAIL_FORGET_US),
			 s[5]);
	/* One whose hash is under way is not, failures or none. */
	s[5]->unauth = 1;
	s[6]->failures = 0;
	s[6]->busy = true;
	assert_ptr_equal(auth_source_of(table, &a[AUTH_SOURCE_PROBE + 1], now + AUTH_FAIL_FORGET_US),
			 &table->overflow);
	s[6]->busy = false;
	assert_ptr_equal(auth_source_of(table, &a[AUTH_SOURCE_PROBE + 1], now + AUTH_FAIL_FORGET_US),
			 s[6]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ipv4_is_one_source_whatever_the_port, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_groups_by_64, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_window_overflows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stalest_reusable_entry_is_evicted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recent_failures_are_not_evicted, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
