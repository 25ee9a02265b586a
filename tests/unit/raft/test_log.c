/*
 * raft/log.c: the in-memory log keeps indexes dense across append,
 * truncation of a conflicting suffix, compaction and reset, and owns the
 * bytes of its entries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "raft/log.h"

static void test_append_truncate_compact(void **state)
{
	(void)state;
	struct raft_log log;
	raft_log_init(&log);
	uint64_t term;
	assert_true(raft_log_term(&log, 0, &term));
	assert_int_equal(term, 0);
	for (uint64_t i = 1; i <= 5; i++)
		assert_int_equal(raft_log_append(&log, i < 4 ? 1 : 2,
						 RAFT_ENTRY_NORMAL, "abc", 3),
				 0);
	assert_int_equal(raft_log_last_index(&log), 5);
	assert_int_equal(raft_log_last_term(&log), 2);
	assert_int_equal(log.bytes, 15);
	raft_log_truncate(&log, 4);
	assert_int_equal(raft_log_last_index(&log), 3);
	assert_int_equal(raft_log_last_term(&log), 1);
	raft_log_compact(&log, 2);
	assert_null(raft_log_get(&log, 2));
	assert_true(raft_log_term(&log, 2, &term)); /* offset keeps its term */
	assert_int_equal(term, 1);
	assert_false(raft_log_term(&log, 1, &term));
	assert_memory_equal(raft_log_get(&log, 3)->data, "abc", 3);
	assert_false(raft_log_term(&log, 4, &term));
	raft_log_reset(&log, 10, 4);
	assert_int_equal(raft_log_last_index(&log), 10);
	assert_int_equal(raft_log_last_term(&log), 4);
	assert_int_equal(raft_log_footprint(&log), 0);
	raft_log_free(&log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_truncate_compact),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
