/*
 * Tests for shard/core_log_group.c: the group table (open addressing with
 * backward-shift deletion) under many insertions and removals, and runs and
 * pins (which segment a group keeps, as it appends, truncates, releases).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shard/core_log_internal.h"

static void test_table_insert_remove(void **state)
{
	struct core_log log;
	enum { N = 20000 };
	static bool present[N];
	unsigned seed = 7;

	(void)state;
	memset(&log, 0, sizeof log);
	memset(present, 0, sizeof present);
	assert_int_equal(core_log_groups_init(&log), 0);
	for (int round = 0; round < 200000; round++) {
		uint64_t id = (uint64_t)(rand_r(&seed) % N);
		/* ids spread over the u64 range too */
		uint64_t key = id * 0x100000001ull + (id & 1 ? UINT64_MAX / 3 : 0);
		uint32_t gi = core_log_group_find(&log, key);

		assert_int_equal(gi != CORE_LOG_NONE, present[id]);
		if (gi == CORE_LOG_NONE) {
			gi = core_log_group_get(&log, key);
			assert_true(gi != CORE_LOG_NONE);
			assert_int_equal(log.groups[gi].id, key);
			present[id] = true;
		} else if (rand_r(&seed) % 2) {
			core_log_group_unlink(&log, gi);
			core_log_group_free(&log, gi);
			present[id] = false;
		}
	}
	for (uint64_t id = 0; id < N; id++) {
		uint64_t key = id * 0x100000001ull + (id & 1 ? UINT64_MAX / 3 : 0);
		uint32_t gi = core_log_group_find(&log, key);

		assert_int_equal(gi != CORE_LOG_NONE, present[id]);
		if (gi != CORE_LOG_NONE)
			assert_int_equal(log.groups[gi].id, key);
	}
	core_log_groups_free(&log);
}

static void test_runs_and_pins(void **state)
{
	struct core_log log;
	struct core_log_seg segs[5];
	struct core_log_group *g;
	uint32_t gi;

	(void)state;
	memset(&log, 0, sizeof log);
	memset(segs, 0, sizeof segs);
	for (int i = 0; i < 5; i++)
		segs[i].seq = 10 + (uint64_t)i;
	log.segs = segs;
	log.nsegs = 5;
	log.segs_cap = 5;
	assert_int_equal(core_log_groups_init(&log), 0);
	gi = core_log_group_get(&log, 1);
	/* 1..10 in seg 10, 11..20 in seg 11, 21..30 in seg 12 */
	assert_int_equal(core_log_group_wrote(&log, gi, 10, false, 1), 0);
	assert_int_equal(core_log_group_wrote(&log, gi, 11, false, 11), 0);
	assert_int_equal(core_log_group_wrote(&log, gi, 12, false, 21), 0);
	g = &log.groups[gi];
	g->written.has_entries = true;
	g->written.last_index = 30;
	core_log_group_repin(&log, gi);
	assert_int_equal(g->pin_seq, 10);
	assert_int_equal(segs[0].pins, 1);
	g->released = 10; /* needs 11: seg 11 */
	core_log_group_repin(&log, gi);
	assert_int_equal(g->pin_seq, 11);
	assert_int_equal(segs[0].pins, 0);
	assert_int_equal(segs[1].pins, 1);
	/* Truncate back to 15 from seg 13: 15.. now in seg 13, 11..14 still
	 * in seg 11, which stays pinned. */
	assert_int_equal(core_log_group_wrote(&log, gi, 13, false, 15), 0);
	g->written.last_index = 16;
	core_log_group_repin(&log, gi);
	assert_int_equal(g->pin_seq, 11);
	g->released = 14;
	core_log_group_repin(&log, gi);
	assert_int_equal(g->pin_seq, 13);
	assert_int_equal(segs[1].pins, 0);
	assert_int_equal(segs[3].pins, 1);
	/* Everything released: pins nothing. */
	g->released = 16;
	core_log_group_repin(&log, gi);
	assert_int_equal(g->pin_seq, 0);
	assert_int_equal(segs[3].pins, 0);
	/* Reset then append in seg 14. */
	assert_int_equal(core_log_group_wrote(&log, gi, 14, true, 101), 0);
	g->written.last_index = 101;
	core_log_group_repin(&log, gi);
	assert_int_equal(g->pin_seq, 14);
	core_log_group_unlink(&log, gi);
	core_log_group_free(&log, gi);
	assert_int_equal(segs[4].pins, 0);
	log.segs = NULL;
	core_log_groups_free(&log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_insert_remove),
		cmocka_unit_test(test_runs_and_pins),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
