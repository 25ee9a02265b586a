/*
 * The receiver's checks on snapshot chunks (cluster/snapshot_recv.c,
 * snapshot_chunk_check): what bytes from the network may ask for is
 * refused with an error, never an assert.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/replica_internal.h"

static struct peer_msg_chunk chunk(const char *name, uint64_t offset, uint32_t len, bool last)
{
	static uint8_t data[16];

	return (struct peer_msg_chunk){
		.group = 1, .index = 100, .term = 3,
		.file = { .data = (const uint8_t *)name, .len = (uint32_t)strlen(name) },
		.offset = offset, .data = { .data = data, .len = len }, .last = last,
	};
}

static int check(struct peer_msg_chunk ch, bool same_file, uint64_t expected)
{
	const char *why = NULL;
	int rv = snapshot_chunk_check(&ch, same_file, expected, &why);

	if (rv)
		assert_non_null(why);
	return rv;
}

static void test_names(void **state)
{
	(void)state;
	assert_int_equal(check(chunk("000012.sst", 0, 16, false), false, 0), 0);
	assert_int_equal(check(chunk("MANIFEST", 0, 16, true), false, 0), 0);
	assert_int_equal(check(chunk("1.sst", 0, 16, false), false, 0), 0);
	/* Only tables and the manifest: nothing else lands in the staging
	 * directory, whatever a peer sends. */
	assert_int_equal(check(chunk("MANIFEST2", 0, 16, false), false, 0), RKV_EINVAL);
	assert_int_equal(check(chunk(".sst", 0, 16, false), false, 0), RKV_EINVAL);
	assert_int_equal(check(chunk("12a.sst", 0, 16, false), false, 0), RKV_EINVAL);
	assert_int_equal(check(chunk("000012.ss", 0, 16, false), false, 0), RKV_EINVAL);
	assert_int_equal(check(chunk("CURRENT", 0, 16, false), false, 0), RKV_EINVAL);
	assert_int_equal(check(chunk("0000000000000000000000012.sst", 0, 16, false), false, 0),
			 RKV_EINVAL);
	/* The last chunk is the manifest's. */
	assert_int_equal(check(chunk("000012.sst", 0, 16, true), false, 0), RKV_EINVAL);
}

static void test_offsets(void **state)
{
	(void)state;
	/* Contiguous within a file; a new file starts at 0. */
	assert_int_equal(check(chunk("000012.sst", 16, 16, false), true, 16), 0);
	assert_int_equal(check(chunk("000012.sst", 32, 16, false), true, 16), RKV_EINVAL);
	assert_int_equal(check(chunk("000012.sst", 0, 16, false), true, 16), RKV_EINVAL);
	assert_int_equal(check(chunk("000013.sst", 16, 16, false), false, 0), RKV_EINVAL);
	assert_int_equal(check(chunk("MANIFEST", 8, 16, true), false, 0), RKV_EINVAL);
}

static void test_bounds(void **state)
{
	struct peer_msg_chunk ch;

	(void)state;
	/* Sizes: a table past 16 GiB, a manifest past 64 MiB, an offset at
	 * the end of the 64-bit range. */
	assert_int_equal(check(chunk("000012.sst", 16ull << 30, 16, false), true, 16ull << 30),
			 RKV_ETOOLARGE);
	assert_int_equal(check(chunk("MANIFEST", 64u << 20, 16, false), true, 64u << 20),
			 RKV_ETOOLARGE);
	assert_int_equal(check(chunk("000012.sst", UINT64_MAX - 4, 16, false), true,
			       UINT64_MAX - 4), RKV_ETOOLARGE);
	/* No snapshot point. */
	ch = chunk("000012.sst", 0, 16, false);
	ch.index = 0;
	assert_int_equal(check(ch, false, 0), RKV_EINVAL);
	ch = chunk("000012.sst", 0, 16, false);
	ch.term = 0;
	assert_int_equal(check(ch, false, 0), RKV_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_offsets),
		cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
