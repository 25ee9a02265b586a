/*
 * Tests of server/cluster_info.c's advertised address: what a node tells
 * clients to dial for a listener, wildcards replaced by its peer host.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "server/cluster_info.h"

static const char *adv(const char *host, uint16_t port, const char *peer_host)
{
	static char buf[300];

	cluster_info_advertised(host, port, peer_host, buf, sizeof buf);
	return buf;
}

static void test_advertised(void **state)
{
	(void)state;
	assert_string_equal(adv("127.0.2.11", 7070, "127.0.2.11"), "127.0.2.11:7070");
	assert_string_equal(adv("10.0.0.5", 7070, "192.168.1.5"), "10.0.0.5:7070");
	assert_string_equal(adv("::1", 7070, ""), "[::1]:7070");
	/* Wildcards tell a client nothing: the peer host, the client port. */
	assert_string_equal(adv("0.0.0.0", 7070, "192.168.1.5"), "192.168.1.5:7070");
	assert_string_equal(adv("::", 6379, "fd00::5"), "[fd00::5]:6379");
	assert_string_equal(adv("", 7070, "node3.example"), "node3.example:7070");
	/* No peer address (a one-node cluster): unknown, the client keeps its own. */
	assert_string_equal(adv("0.0.0.0", 7070, ""), "");
	assert_string_equal(adv("0.0.0.0", 7070, NULL), "");
	assert_string_equal(adv("0.0.0.0", 7070, "0.0.0.0"), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_advertised),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
