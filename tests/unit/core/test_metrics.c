/* Tests for core/metrics.c: registration rules and the exposition text. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <stdatomic.h>
#include <time.h>

#include <cmocka.h>

#include "core/metrics.h"
#include "core/reactor.h"
#include "core/topology.h"

/* The rows a scrape would gather: each core's values, one after another. */
static uint64_t *rows_of(const struct metrics *m)
{
	uint64_t *rows = calloc((size_t)m->cores * m->values, sizeof *rows);

	assert_non_null(rows);
	for (unsigned i = 0; i < m->cores; i++)
		memcpy(rows + (size_t)i * m->values, m->core[i]->values,
		       m->values * sizeof *rows);
	return rows;
}

static char *format(const struct metrics *m)
{
	struct metrics_buf b = { 0 };
	uint64_t *rows = rows_of(m);
	char *text;

	assert_int_equal(metrics_format(m, rows, &b), 0);
	metrics_buf_printf(&b, "%s", ""); /* NUL-terminated even when empty */
	text = strndup(b.data, b.len);
	metrics_buf_free(&b);
	free(rows);
	return text;
}

static void test_counter_per_core(void **state)
{
	struct metrics m;
	int get, put;
	char *text;

	(void)state;
	assert_int_equal(metrics_init(&m, 2), 0);
	get = metrics_counter(&m, "ringkv_requests_total", "op=\"get\"", "Requests.", 0);
	put = metrics_counter(&m, "ringkv_requests_total", "op=\"put\"", "Requests.", 0);
	assert_true(get >= 0 && put >= 0);
	assert_int_equal(metrics_freeze(&m), 0);
	metrics_inc(m.core[0], get);
	metrics_add(m.core[1], get, 5);
	metrics_inc(m.core[1], put);
	text = format(&m);
	assert_string_equal(text,
		"# HELP ringkv_requests_total Requests.\n"
		"# TYPE ringkv_requests_total counter\n"
		"ringkv_requests_total{core=\"0\",op=\"get\"} 1\n"
		"ringkv_requests_total{core=\"0\",op=\"put\"} 0\n"
		"ringkv_requests_total{core=\"1\",op=\"get\"} 5\n"
		"ringkv_requests_total{core=\"1\",op=\"put\"} 1\n");
	free(text);
	metrics_destroy(&m);
}

static void test_summed_gauge_and_help_escape(void **state)
{
	struct metrics m;
	int g;
	char *text;

	(void)state;
	assert_int_equal(metrics_init(&m, 3), 0);
	g = metrics_gauge(&m, "ringkv_disk_full", NULL, "Full \\ or\nnot.", METRICS_SUM_CORES);
	assert_true(g >= 0);
	assert_int_equal(metrics_freeze(&m), 0);
	metrics_set(m.core[2], g, 1);
	text = format(&m);
	assert_string_equal(text,
		"# HELP ringkv_disk_full Full \\\\ or\\nnot.\n"
		"# TYPE ringkv_disk_full gauge\n"
		"ringkv_disk_full 1\n");
	free(text);
	metrics_destroy(&m);
}

static void test_histogram(void **state)
{
	static const uint64_t bounds[] = { 100, 1000 };
	struct metrics m;
	int h;
	char *text;

	(void)state;
	assert_int_equal(metrics_init(&m, 1), 0);
	h = metrics_histogram(&m, "ringkv_write_seconds", NULL, "Latency.", 0, bounds, 2, 1e-6);
	assert_true(h >= 0);
	assert_int_equal(metrics_freeze(&m), 0);
	metrics_observe(m.core[0], h, 50);
	metrics_observe(m.core[0], h, 100);  /* le is inclusive */
	metrics_observe(m.core[0], h, 500);
	metrics_observe(m.core[0], h, 5000);
	text = format(&m);
	assert_string_equal(text,
		"# HELP ringkv_write_seconds Latency.\n"
		"# TYPE ringkv_write_seconds histogram\n"
		"ringkv_write_seconds_bucket{core=\"0\",le=\"0.0001\"} 2\n"
		"ringkv_write_seconds_bucket{core=\"0\",le=\"0.001\"} 3\n"
		"ringkv_write_seconds_bucket{core=\"0\",le=\"+Inf\"} 4\n"
		"ringkv_write_seconds_sum{core=\"0\"} 0.00565\n"
		"ringkv_write_seconds_count{core=\"0\"} 4\n");
	free(text);
	metrics_destroy(&m);
}

/* A histogram kept elsewhere and set whole; a counter kept in
 * microseconds and shown in seconds. */
static void test_set_histogram_and_scaled_counter(void **state)
{
	static const uint64_t bounds[] = { 100, 1000 };
	static const uint64_t counts[] = { 2, 1, 1 };
	struct metrics m;
	int h, c;
	char *text;

	(void)state;
	assert_int_equal(metrics_init(&m, 1), 0);
	h = metrics_histogram(&m, "ringkv_sync_seconds", NULL, "Syncs.", 0, bounds, 2, 1e-6);
	c = metrics_counter_scaled(&m, "ringkv_busy_seconds_total", NULL, "Busy.", 0, 1e-6);
	assert_true(h >= 0 && c >= 0);
	assert_int_equal(metrics_counter_scaled(&m, "ringkv_x_total", NULL, "X.", 0, 0), -EINVAL);
	assert_int_equal(metrics_freeze(&m), 0);
	metrics_set_histogram(m.core[0], h, counts, 5650);
	metrics_set(m.core[0], c, 2500000);
	text = format(&m);
	assert_string_equal(text,
		"# HELP ringkv_sync_seconds Syncs.\n"
		"# TYPE ringkv_sync_seconds histogram\n"
		"ringkv_sync_seconds_bucket{core=\"0\",le=\"0.0001\"} 2\n"
		"ringkv_sync_seconds_bucket{core=\"0\",le=\"0.001\"} 3\n"
		"ringkv_sync_seconds_bucket{core=\"0\",le=\"+Inf\"} 4\n"
		"ringkv_sync_seconds_sum{core=\"0\"} 0.00565\n"
		"ringkv_sync_seconds_count{core=\"0\"} 4\n"
		"# HELP ringkv_busy_seconds_total Busy.\n"
		"# TYPE ringkv_busy_seconds_total counter\n"
		"ringkv_busy_seconds_total{core=\"0\"} 2.5\n");
	free(text);
	metrics_destroy(&m);
}

static void test_refusals(void **state)
{
	static const uint64_t down[] = { 10, 5 };
	struct metrics m;

	(void)state;
	assert_int_equal(metrics_init(&m, 1), 0);
	assert_int_equal(metrics_counter(&m, "9lives", NULL, "x", 0), -EINVAL);
	assert_int_equal(metrics_counter(&m, "bad-name", NULL, "x", 0), -EINVAL);
	assert_int_equal(metrics_counter(&m, "", NULL, "x", 0), -EINVAL);
	assert_int_equal(metrics_counter(&m, "a", "v=\"x\\\"\"", "x", 0), -EINVAL);
	assert_int_equal(metrics_histogram(&m, "h", NULL, "x", 0, down, 2, 1), -EINVAL);
	assert_true(metrics_counter(&m, "a", NULL, "x", 0) >= 0);
	/* A family keeps one type and one help; a series appears once. */
	assert_int_equal(metrics_gauge(&m, "a", "k=\"v\"", "x", 0), -EINVAL);
	assert_int_equal(metrics_counter(&m, "a", "k=\"v\"", "y", 0), -EINVAL);
	assert_int_equal(metrics_counter(&m, "a", NULL, "x", 0), -EINVAL);
	assert_int_equal(metrics_freeze(&m), 0);
	assert_int_equal(metrics_counter(&m, "b", NULL, "x", 0), -EINVAL);
	metrics_destroy(&m);
}

/* Families interleaved at registration still print once, grouped. */
static void test_family_grouping(void **state)
{
	struct metrics m;
	int a1, b, a2;
	char *text;

	(void)state;
	assert_int_equal(metrics_init(&m, 1), 0);
	a1 = metrics_counter(&m, "a_total", "x=\"1\"", "A.", 0);
	b = metrics_gauge(&m, "b", NULL, "B.", 0);
	a2 = metrics_counter(&m, "a_total", "x=\"2\"", "A.", 0);
	assert_true(a1 >= 0 && b >= 0 && a2 >= 0);
	assert_int_equal(metrics_freeze(&m), 0);
	metrics_set(m.core[0], b, (uint64_t)-3); /* gauges print signed */
	text = format(&m);
	assert_string_equal(text,
		"# HELP a_total A.\n# TYPE a_total counter\n"
		"a_total{core=\"0\",x=\"1\"} 0\na_total{core=\"0\",x=\"2\"} 0\n"
		"# HELP b B.\n# TYPE b gauge\nb{core=\"0\"} -3\n");
	assert_int_equal(metrics_row_sum(&m, m.core[0]->values, b), (uint64_t)-3);
	free(text);
	metrics_destroy(&m);
}

static void test_buf_grows(void **state)
{
	struct metrics_buf b = { 0 };

	(void)state;
	for (int i = 0; i < 10000; i++)
		metrics_buf_printf(&b, "%d\n", i % 10);
	assert_false(b.failed);
	assert_int_equal(b.len, 20000);
	assert_true(b.cap >= b.len);
	assert_int_equal(b.data[19998], '9');
	metrics_buf_free(&b);
}

/* ---- a scrape across real reactors ---------------------------------------- */

#define SCRAPE_CORES 3

static struct {
	struct metrics m;
	struct metrics_scrape scrape;
	int who;            /* gauge: the core's id + 10, set by its collector */
	int passes;         /* counter: loop passes, a plain increment in a hook */
	int summed;         /* SUM_CORES gauge: only core 2 writes it */
	struct timer timer;
	uint64_t rows[SCRAPE_CORES * 16];  /* a copy of the scrape's rows */
	unsigned collected_on[SCRAPE_CORES];
	atomic_int done;
	atomic_int looped[SCRAPE_CORES]; /* the core ran its hook at least once */
} sc;

static void collect(struct metrics_core *mc, void *arg)
{
	struct reactor *r = arg;

	/* Runs on the row's own core. */
	sc.collected_on[mc->id] = r->id;
	metrics_set(mc, sc.who, mc->id + 10);
	if (mc->id == 2)
		metrics_set(mc, sc.summed, 7);
}

static void count_pass(struct reactor *r, void *arg)
{
	metrics_inc(metrics_core_of(&sc.m, r->id), sc.passes);
	atomic_store(&sc.looped[r->id], 1);
}

static void scraped(struct metrics_scrape *s, void *arg)
{
	memcpy(sc.rows, s->rows, SCRAPE_CORES * sc.m.values * sizeof(uint64_t));
	atomic_store(&sc.done, 1);
}

/* Core 0: once every core has counted a pass, scrape. */
static void begin(struct timer *t, void *arg)
{
	for (unsigned i = 0; i < SCRAPE_CORES; i++)
		if (!atomic_load(&sc.looped[i])) {
			reactor_timer_arm(arg, t, 1000, begin, arg);
			return;
		}
	metrics_scrape_start(arg, &sc.scrape, scraped, NULL);
}

static int scrape_start(struct reactor *r, void *arg, char *err, size_t errlen)
{
	if (metrics_core_add_collector(metrics_core_of(&sc.m, r->id), collect, r) != 0 ||
	    reactor_add_hook(r, count_pass, NULL) != 0)
		return -1;
	if (r->id == 0)
		reactor_timer_arm(r, &sc.timer, 5000, begin, r);
	return 0;
}

static void test_scrape_across_cores(void **state)
{
	struct reactor_callbacks cb = { .start = scrape_start };
	struct reactor_group *g;
	struct topology *topo;
	unsigned cpus[SCRAPE_CORES];
	char err[256];
	int waited = 0;

	(void)state;
	assert_int_equal(metrics_init(&sc.m, SCRAPE_CORES), 0);
	sc.who = metrics_gauge(&sc.m, "who", NULL, "Core id + 10.", 0);
	sc.passes = metrics_counter(&sc.m, "passes_total", NULL, "Loop passes.", 0);
	sc.summed = metrics_gauge(&sc.m, "summed", NULL, "One core's.", METRICS_SUM_CORES);
	assert_true(sc.who >= 0 && sc.passes >= 0 && sc.summed >= 0);
	assert_int_equal(metrics_freeze(&sc.m), 0);
	assert_true(sc.m.values <= 16);
	assert_int_equal(metrics_scrape_init(&sc.scrape, &sc.m, 0), 0);
	assert_int_equal(topology_load(&topo, err, sizeof err), 0);
	assert_true(topology_cpus(topo, cpus, 1) >= 1);
	cpus[1] = cpus[2] = cpus[0];
	assert_int_equal(reactor_group_start(&g, SCRAPE_CORES, cpus, topo, &cb, err,
					     sizeof err), 0);
	while (!atomic_load(&sc.done) && waited++ < 10000)
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	reactor_group_stop(g);
	reactor_group_join(g);
	topology_destroy(topo);
	assert_true(atomic_load(&sc.done));
	for (unsigned i = 0; i < SCRAPE_CORES; i++) {
		assert_int_equal(sc.collected_on[i], i);
		const uint64_t *row = sc.rows + (size_t)i * sc.m.values;

		assert_int_equal(row[sc.m.series[sc.who].slot], i + 10);
		assert_true(row[sc.m.series[sc.passes].slot] > 0);
	}
	{
		struct metrics_buf b = { 0 };

		assert_int_equal(metrics_format(&sc.m, sc.rows, &b), 0);
		metrics_buf_printf(&b, "%s", "");
		assert_non_null(strstr(b.data, "who{core=\"2\"} 12\n"));
		assert_non_null(strstr(b.data, "\nsummed 7\n"));
		metrics_buf_free(&b);
	}
	metrics_scrape_destroy(&sc.scrape);
	metrics_destroy(&sc.m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter_per_core),
		cmocka_unit_test(test_summed_gauge_and_help_escape),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_set_histogram_and_scaled_counter),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_family_grouping),
		cmocka_unit_test(test_buf_grows),
		cmocka_unit_test(test_scrape_across_cores),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
