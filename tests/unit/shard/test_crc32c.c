/* Tests for shard/crc32c.c: the check value, and hardware/table agreement. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "shard/crc32c.h"

#define CHECK_VALUE 0xE3069283u

static uint64_t rnd_state = 1;

static uint64_t rnd(void)
{
	uint64_t z = (rnd_state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void test_check_value(void **state)
{
	(void)state;
	assert_int_equal(crc32c(0, "123456789", 9), CHECK_VALUE);
	assert_int_equal(crc32c_sw(0, "123456789", 9), CHECK_VALUE);
	if (crc32c_hw_available())
		assert_int_equal(crc32c_hw(0, "123456789", 9), CHECK_VALUE);
	else
		print_message("no SSE4.2: hardware path not tested\n");
	assert_int_equal(crc32c(0, NULL, 0), 0);
	assert_int_equal(crc32c(0x1234, "", 0), 0x1234);
}

static void test_known_vectors(void **state)
{
	/* RFC 3720 (iSCSI) appendix B.4 test patterns. */
	uint8_t buf[32];

	(void)state;
	memset(buf, 0, sizeof(buf));
	assert_int_equal(crc32c(0, buf, 32), 0x8A9136AAu);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(crc32c(0, buf, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(crc32c(0, buf, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	assert_int_equal(crc32c(0, buf, 32), 0x113FDB5Cu);
}

static void test_hw_and_sw_agree(void **state)
{
	static uint8_t buf[4096 + 16];

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rnd();
	for (int round = 0; round < 2000; round++) {
		size_t off = (size_t)(rnd() % 16);      /* every misalignment */
		size_t len = (size_t)(rnd() % 4097);
		uint32_t seed = round % 3 == 0 ? 0 : (uint32_t)rnd();
		uint32_t sw = crc32c_sw(seed, buf + off, len);

		assert_int_equal(crc32c(seed, buf + off, len), sw);
		if (crc32c_hw_available())
			assert_int_equal(crc32c_hw(seed, buf + off, len), sw);
	}
	/* Every short length at every misalignment: the tail's 4-, 2- and
	 * 1-byte steps in each combination. */
	for (size_t off = 0; off < 16; off++)
		for (size_t len = 0; len <= 64; len++)
			assert_int_equal(crc32c(7, buf + off, len), crc32c_sw(7, buf + off, len));
}

static void test_chaining(void **state)
{
	uint8_t buf[1000];

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rnd();
	for (size_t split = 0; split <= sizeof(buf); split += 37) {
		uint32_t whole = crc32c(0, buf, sizeof(buf));

		assert_int_equal(crc32c(crc32c(0, buf, split), buf + split,
					sizeof(buf) - split), whole);
		assert_int_equal(crc32c_sw(crc32c_sw(0, buf, split), buf + split,
					   sizeof(buf) - split), whole);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_value),
		cmocka_unit_test(test_known_vectors),
		cmocka_unit_test(test_hw_and_sw_agree),
		cmocka_unit_test(test_chaining),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
