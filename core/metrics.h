/*
 * A per-core metrics registry: counters, gauges and histograms, each core
 * writing only its own values, gathered by message when scraped.
 *
 * Shape: the registry (struct metrics) is built once at start-up, before
 * any reactor runs, by one metrics_counter/_gauge/_histogram call per series;
 * metrics_freeze() then allocates one value array per core
 * (struct metrics_core), and from then on the descriptors are read-only.
 *
 * Why messages rather than atomics: a core's values are plain uint64_t that
 * only its own thread writes, so the data path pays a plain increment and no
 * fence, and values that already live elsewhere on the core (shard_get_stats,
 * node_stats, reactor fields) are read by a collector on that same core,
 * never from another thread. A scrape (metrics_scrape_start) sends one
 * message per core over the reactor's SPSC mailboxes; each core runs its
 * collectors, copies its values into the scrape's snapshot row and sends the
 * message back. The scraping core formats the rows once all are home. The
 * cost lands on the scrape, and every row is a consistent picture of its
 * core at one instant.
 *
 * Series are either per core (the default: a `core` label is added, totals
 * are sum without(core) in PromQL) or METRICS_SUM_CORES: one series summed
 * over the cores, for values only one core writes (a shard's replica state:
 * the owner writes it, every other core holds 0).
 */
#ifndef RINGKV_CORE_METRICS_H
#define RINGKV_CORE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/reactor.h"

#define METRICS_NAME_MAX 96
#define METRICS_LABELS_MAX 128
#define METRICS_BUCKETS_MAX 24

/* Series flags. */
#define METRICS_SUM_CORES 0x1 /* one series, summed over cores, no core label */

enum metrics_type {
	METRICS_COUNTER,
	METRICS_GAUGE,
	METRICS_HISTOGRAM,
};

struct metrics_core;
typedef void metrics_collect_fn(struct metrics_core *mc, void *arg);

struct metrics_series {
	char name[METRICS_NAME_MAX];     /* family name, e.g. ringkv_requests_total */
	char labels[METRICS_LABELS_MAX]; /* 'op="get"' or "" */
	const char *help;                /* static text */
	enum metrics_type type;
	unsigned flags;
	unsigned slot;                   /* first value of the series in a core's row */
	unsigned nbounds;                /* histogram: upper bounds, +Inf not counted */
	uint64_t bounds[METRICS_BUCKETS_MAX]; /* histogram: ascending, in observed units */
	double scale;                    /* histogram: observed units -> exposed units */
};

struct metrics {
	unsigned cores;
	struct metrics_series *series;
	unsigned count;
	unsigned cap;
	unsigned values;                 /* slots per core */
	bool frozen;
	struct metrics_core **core;      /* [cores], after metrics_freeze */
};

#define METRICS_COLLECTORS_MAX 8

/* One core's values. Touched only by the owning core's thread. */
struct metrics_core {
	const struct metrics *m;
	unsigned id;
	uint64_t *values;                /* [m->values] */
	struct {
		metrics_collect_fn *fn;
		void *arg;
	} collectors[METRICS_COLLECTORS_MAX];
	unsigned ncollectors;
};

/* 0 or -ENOMEM. */
int metrics_init(struct metrics *m, unsigned cores);
void metrics_destroy(struct metrics *m);

/*
 * Registers one series and returns its id (>= 0) for the calls below, or
 * -EINVAL (a name that is not [a-zA-Z_:][a-zA-Z0-9_:]*, labels longer than
 * METRICS_LABELS_MAX, a registry already frozen, a family registered before
 * with another type or help), -ENOMEM. Series of one family (same name)
 * may differ by `labels` ('op="get",status="ok"'; label values must not
 * hold '"', '\\' or a newline). `help` must outlive the registry.
 */
int metrics_counter(struct metrics *m, const char *name, const char *labels,
		    const char *help, unsigned flags);
int metrics_gauge(struct metrics *m, const char *name, const char *labels,
		  const char *help, unsigned flags);
/* A counter kept in integer units and exposed multiplied by `scale`
 * (microseconds kept, seconds shown: 1e-6). */
int metrics_counter_scaled(struct metrics *m, const char *name, const char *labels,
			   const char *help, unsigned flags, double scale);
/*
 * A histogram observed in integer units (e.g. microseconds) with ascending
 * upper bounds `bounds` (1..METRICS_BUCKETS_MAX of them) in those units;
 * exposed multiplied by `scale` (1e-6: microseconds shown as seconds).
 */
int metrics_histogram(struct metrics *m, const char *name, const char *labels,
		      const char *help, unsigned flags, const uint64_t *bounds,
		      unsigned nbounds, double scale);

/* Allocates every core's values (zero). 0 or -ENOMEM. No registration after. */
int metrics_freeze(struct metrics *m);

/* Core `id`'s values, after metrics_freeze. */
static inline struct metrics_core *metrics_core_of(const struct metrics *m, unsigned id)
{
	return m->core[id];
}

/*
 * Adds a function that the owning core runs just before its values are
 * copied into a scrape (it sets values kept elsewhere: shard stats...).
 * Call on the owning core. 0 or -ENOSPC.
 */
int metrics_core_add_collector(struct metrics_core *mc, metrics_collect_fn *fn, void *arg);

/* The data path: plain writes to this core's row. `id` from registration. */
static inline void metrics_inc(struct metrics_core *mc, int id)
{
	mc->values[mc->m->series[id].slot]++;
}

static inline void metrics_add(struct metrics_core *mc, int id, uint64_t n)
{
	mc->values[mc->m->series[id].slot] += n;
}

/* Counters collected from elsewhere and gauges: the current value. */
static inline void metrics_set(struct metrics_core *mc, int id, uint64_t v)
{
	mc->values[mc->m->series[id].slot] = v;
}

/* Counts one observation of `v` (in the histogram's integer units). */
void metrics_observe(struct metrics_core *mc, int id, uint64_t v);

/*
 * A histogram kept elsewhere (collectors): `counts` per bucket, not
 * cumulative, one per bound and the last for +Inf; `sum` of the values.
 */
void metrics_set_histogram(struct metrics_core *mc, int id, const uint64_t *counts,
			   uint64_t sum);

/* Slots a histogram takes in a row: one per bound, +Inf, sum, count. */
static inline unsigned metrics_histogram_slots(unsigned nbounds)
{
	return nbounds + 3;
}

/*
 * A growable text buffer (grown geometrically, kept at its peak between
 * uses). `failed` is set when memory ran out; the text is then incomplete.
 */
struct metrics_buf {
	char *data;
	size_t len;
	size_t cap;
	bool failed;
};

void metrics_buf_printf(struct metrics_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void metrics_buf_free(struct metrics_buf *b);

/*
 * Appends the Prometheus text exposition (format 0.0.4) of `rows`
 * (m->cores rows of m->values each, as filled by a scrape) to `out`: for
 * each family one HELP and one TYPE line, then its series. Returns 0 or
 * -ENOMEM.
 */
int metrics_format(const struct metrics *m, const uint64_t *rows, struct metrics_buf *out);

/* A series' value summed over the rows (counters and gauges). */
uint64_t metrics_row_sum(const struct metrics *m, const uint64_t *rows, int id);

/* ---- scraping ----------------------------------------------------------- */

struct metrics_scrape;
typedef void metrics_scrape_done_fn(struct metrics_scrape *s, void *arg);

struct metrics_scrape_msg {
	struct reactor_msg msg;          /* first */
	struct metrics_scrape *scrape;
	unsigned core;
};

/*
 * One scrape at a time per struct, owned by the core that starts it (the
 * origin). `rows` is valid in the done callback and until the next start.
 */
struct metrics_scrape {
	const struct metrics *m;
	unsigned origin;
	uint64_t *rows;                  /* [cores * values] */
	struct metrics_scrape_msg *msgs; /* [cores] */
	unsigned pending;                /* cores not yet answered; 0 = idle */
	metrics_scrape_done_fn *done;
	void *arg;
};

/* 0 or -ENOMEM. `origin` is the core that will start scrapes. */
int metrics_scrape_init(struct metrics_scrape *s, const struct metrics *m, unsigned origin);
void metrics_scrape_destroy(struct metrics_scrape *s);

/* Whether a scrape is in flight. */
static inline bool metrics_scrape_busy(const struct metrics_scrape *s)
{
	return s->pending != 0;
}

/*
 * Asks every core for its row; done(s, arg) runs on the origin core once
 * all answered (never from inside this call). Precondition: not busy, and
 * `r` is the origin core's reactor.
 */
void metrics_scrape_start(struct reactor *r, struct metrics_scrape *s,
			  metrics_scrape_done_fn *done, void *arg);

#endif
