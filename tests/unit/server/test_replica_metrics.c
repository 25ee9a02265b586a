/* Tests for server/replica_metrics.c's text: rows of two cores as a gather
 * leaves them, formatted by shard with their labels; the gauge alone when
 * off; a core out of memory fails the whole. (The gather itself runs in the
 * admin integration tests, over real replicas.) */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "raft/raft.h"
#include "server/replica_metrics.h"

/* Puts one row on core `core`'s buffer, with `lags` follower lags. */
static void add_row(struct replica_metrics *rm, unsigned core, uint32_t shard, int role,
		    uint64_t term, const uint64_t *lags, unsigned n_lags)
{
	struct replica_metrics_msg *m = &rm->msgs[core];

	m->rows = realloc(m->rows, (m->count + 1) * sizeof *m->rows);
	m->followers = realloc(m->followers, (m->n_followers + n_lags + 1) * sizeof *m->followers);
	assert_non_null(m->rows);
	assert_non_null(m->followers);
	m->rows[m->count++] = (struct replica_metrics_row){
		.shard = shard, .core = (uint16_t)core, .role = (uint8_t)role,
		.n_followers = (uint8_t)n_lags, .first_follower = m->n_followers,
		.term = term, .commit = 10 * shard + 1, .applied = 10 * shard,
		.leader_changes = 1, .snapshots_sent = shard, .snapshots_received_bytes = 7,
	};
	for (unsigned i = 0; i < n_lags; i++)
		m->followers[m->n_followers++] = (struct replica_metrics_follower){
			.node = 2 + i, .lag = lags[i],
		};
}

static const char *after(const char *text, const char *line)
{
	const char *at = strstr(text, line);

	if (!at)
		fail_msg("missing line '%s' in:\n%s", line, text);
	return at + strlen(line);
}

static void test_rows_by_shard(void **state)
{
	struct replica_metrics rm;
	struct metrics_buf out = { 0 };
	const uint64_t lags[] = { 0, 42 };
	const char *p;

	(void)state;
	assert_int_equal(replica_metrics_init(&rm, 2, 0), 0);
	add_row(&rm, 0, 2, RAFT_FOLLOWER, 5, NULL, 0);
	add_row(&rm, 0, 0, RAFT_LEADER, 4, lags, 2);
	add_row(&rm, 1, 1, RAFT_CANDIDATE, 6, NULL, 0);
	assert_int_equal(replica_metrics_count(&rm), 3);
	assert_int_equal(replica_metrics_format(&rm, true, &out), 0);
	metrics_buf_printf(&out, "%c", '\0');
	p = after(out.data, "ringkv_metrics_per_replica_enabled 1\n");
	p = after(p, "# TYPE ringkv_replica_role gauge\n"
		  "ringkv_replica_role{shard=\"0\",core=\"0\",role=\"leader\"} 1\n"
		  "ringkv_replica_role{shard=\"1\",core=\"1\",role=\"candidate\"} 1\n"
		  "ringkv_replica_role{shard=\"2\",core=\"0\",role=\"follower\"} 1\n");
	p = after(p, "# TYPE ringkv_replica_term gauge\n"
		  "ringkv_replica_term{shard=\"0\",core=\"0\"} 4\n"
		  "ringkv_replica_term{shard=\"1\",core=\"1\"} 6\n"
		  "ringkv_replica_term{shard=\"2\",core=\"0\"} 5\n");
	p = after(p, "ringkv_replica_commit_index{shard=\"2\",core=\"0\"} 21\n");
	p = after(p, "ringkv_replica_applied_index{shard=\"2\",core=\"0\"} 20\n");
	p = after(p, "# TYPE ringkv_replica_leader_changes_total counter\n"
		  "ringkv_replica_leader_changes_total{shard=\"0\",core=\"0\"} 1\n");
	p = after(p, "ringkv_replica_snapshots_sent_total{shard=\"2\",core=\"0\"} 2\n");
	p = after(p, "ringkv_replica_snapshots_received_bytes_total{shard=\"1\",core=\"1\"} 7\n");
	p = after(p, "# TYPE ringkv_replica_follower_lag_entries gauge\n"
		  "ringkv_replica_follower_lag_entries{shard=\"0\",core=\"0\",follower=\"2\"} 0\n"
		  "ringkv_replica_follower_lag_entries{shard=\"0\",core=\"0\",follower=\"3\"} 42\n");
	assert_string_equal(p, "");
	metrics_buf_free(&out);
	replica_metrics_destroy(&rm);
}

static void test_off_is_the_gauge_alone(void **state)
{
	struct replica_metrics rm;
	struct metrics_buf out = { 0 };

	(void)state;
	assert_int_equal(replica_metrics_init(&rm, 1, 0), 0);
	add_row(&rm, 0, 0, RAFT_LEADER, 1, NULL, 0);
	assert_int_equal(replica_metrics_format(&rm, false, &out), 0);
	metrics_buf_printf(&out, "%c", '\0');
	assert_non_null(strstr(out.data, "\nringkv_metrics_per_replica_enabled 0\n"));
	assert_null(strstr(out.data, "\nringkv_replica_"));
	assert_null(strstr(out.data, "# TYPE ringkv_replica_"));
	metrics_buf_free(&out);
	replica_metrics_destroy(&rm);
}

static void test_no_replicas(void **state)
{
	struct replica_metrics rm;
	struct metrics_buf out = { 0 };

	(void)state;
	assert_int_equal(replica_metrics_init(&rm, 2, 1), 0);
	assert_int_equal(replica_metrics_format(&rm, true, &out), 0);
	metrics_buf_printf(&out, "%c", '\0');
	assert_non_null(strstr(out.data, "ringkv_metrics_per_replica_enabled 1\n"));
	assert_null(strstr(out.data, "ringkv_replica_role{"));
	metrics_buf_free(&out);
	replica_metrics_destroy(&rm);
}

static void test_core_out_of_memory_fails(void **state)
{
	struct replica_metrics rm;
	struct metrics_buf out = { 0 };

	(void)state;
	assert_int_equal(replica_metrics_init(&rm, 2, 0), 0);
	add_row(&rm, 0, 0, RAFT_LEADER, 1, NULL, 0);
	rm.msgs[1].failed = true;
	assert_int_equal(replica_metrics_format(&rm, true, &out), -ENOMEM);
	metrics_buf_free(&out);
	replica_metrics_destroy(&rm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows_by_shard),
		cmocka_unit_test(test_off_is_the_gauge_alone),
		cmocka_unit_test(test_no_replicas),
		cmocka_unit_test(test_core_out_of_memory_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
