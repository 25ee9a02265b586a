/*
 * raft/conf.c: CONF entries round-trip, and bytes from the network or disk
 * that do not describe a valid configuration are refused, never trusted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/errors.h"
#include "raft/raft.h"

static void test_round_trip(void **state)
{
	(void)state;
	struct raft_conf conf, back;
	memset(&conf, 0, sizeof(conf));
	conf.n = 3;
	conf.servers[0] = (struct raft_server){7, RAFT_VOTER};
	conf.servers[1] = (struct raft_server){9, RAFT_LEARNER};
	conf.servers[2] = (struct raft_server){1ULL << 40, RAFT_VOTER};
	uint8_t buf[RAFT_CONF_ENCODED_MAX];
	size_t len = raft_conf_encode(&conf, buf);
	assert_int_equal(len, 40);
	assert_int_equal(raft_conf_decode(buf, len, &back), 0);
	assert_memory_equal(&conf, &back, sizeof(conf));
	assert_int_equal(raft_conf_role(&back, 9), RAFT_LEARNER);
	assert_int_equal(raft_conf_role(&back, 8), 0);
}

static void test_bad_bytes_are_refused(void **state)
{
	(void)state;
	struct raft_conf conf;
	memset(&conf, 0, sizeof(conf));
	conf.n = 2;
	conf.servers[0] = (struct raft_server){1, RAFT_VOTER};
	conf.servers[1] = (struct raft_server){2, RAFT_VOTER};
	uint8_t buf[RAFT_CONF_ENCODED_MAX];
	size_t len = raft_conf_encode(&conf, buf);
	assert_int_equal(raft_conf_decode(buf, len - 1, &conf), RKV_ECORRUPT);
	assert_int_equal(raft_conf_decode(buf, 2, &conf), RKV_ECORRUPT);
	buf[16] = 1; /* duplicate id */
	assert_int_equal(raft_conf_decode(buf, len, &conf), RKV_ECORRUPT);
	buf[16] = 2;
	buf[24] = 9; /* unknown role */
	assert_int_equal(raft_conf_decode(buf, len, &conf), RKV_ECORRUPT);
	buf[24] = 1;
	buf[0] = 200; /* too many servers */
	assert_int_equal(raft_conf_decode(buf, len, &conf), RKV_ECORRUPT);
	assert_string_equal(rkv_strerror(RAFT_ENOTLEADER), "not the leader");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_bad_bytes_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
