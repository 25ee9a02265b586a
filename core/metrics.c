/*
 * The per-core metrics registry and its Prometheus text exposition; see
 * core/metrics.h for who writes what. Invariant: after metrics_freeze the
 * descriptors never change, and row `i` of a scrape is written only by core
 * i's thread before its message goes home.
 */
#include "core/metrics.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int metrics_init(struct metrics *m, unsigned cores)
{
	assert(cores > 0);
	memset(m, 0, sizeof *m);
	m->cores = cores;
	m->core = calloc(cores, sizeof *m->core);
	return m->core ? 0 : -ENOMEM;
}

void metrics_destroy(struct metrics *m)
{
	if (m->core)
		for (unsigned i = 0; i < m->cores; i++) {
			if (m->core[i])
				free(m->core[i]->values);
			free(m->core[i]);
		}
	free(m->core);
	free(m->series);
	memset(m, 0, sizeof *m);
}

static bool name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len >= METRICS_NAME_MAX || (name[0] >= '0' && name[0] <= '9'))
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789_:") == len;
}

/* The family of `name` registered before, or NULL. */
static const struct metrics_series *family_of(const struct metrics *m, const char *name)
{
	for (unsigned i = 0; i < m->count; i++)
		if (!strcmp(m->series[i].name, name))
			return &m->series[i];
	return NULL;
}

static int add(struct metrics *m, const struct metrics_series *def)
{
	const struct metrics_series *family;
	struct metrics_series *s;
	unsigned slots;

	if (m->frozen || !name_valid(def->name) || !def->help ||
	    strpbrk(def->labels, "\\\n"))
		return -EINVAL;
	family = family_of(m, def->name);
	if (family && (family->type != def->type || strcmp(family->help, def->help) ||
		       family->flags != def->flags))
		return -EINVAL;
	for (unsigned i = 0; i < m->count; i++)
		if (!strcmp(m->series[i].name, def->name) &&
		    !strcmp(m->series[i].labels, def->labels))
			return -EINVAL; /* the same series twice */
	if (m->count == m->cap) {
		unsigned cap = m->cap ? 2 * m->cap : 64;
		struct metrics_series *grown = realloc(m->series, cap * sizeof *grown);

		if (!grown)
			return -ENOMEM;
		m->series = grown;
		m->cap = cap;
	}
	slots = def->type == METRICS_HISTOGRAM ? metrics_histogram_slots(def->nbounds) : 1;
	s = &m->series[m->count];
	*s = *def;
	s->slot = m->values;
	m->values += slots;
	return (int)m->count++;
}

static int add_simple(struct metrics *m, enum metrics_type type, const char *name,
		      const char *labels, const char *help, unsigned flags)
{
	struct metrics_series def = { .type = type, .help = help, .flags = flags };

	if (strlen(name) >= sizeof def.name || strlen(labels ? labels : "") >= sizeof def.labels)
		return -EINVAL;
	strcpy(def.name, name);
	strcpy(def.labels, labels ? labels : "");
	return add(m, &def);
}

int metrics_counter(struct metrics *m, const char *name, const char *labels,
		    const char *help, unsigned flags)
{
	return add_simple(m, METRICS_COUNTER, name, labels, help, flags);
}

int metrics_counter_scaled(struct metrics *m, const char *name, const char *labels,
			   const char *help, unsigned flags, double scale)
{
	int id;

	if (!(scale > 0))
		return -EINVAL;
	id = add_simple(m, METRICS_COUNTER, name, labels, help, flags);
	if (id >= 0)
		m->series[id].scale = scale;
	return id;
}

int metrics_gauge(struct metrics *m, const char *name, const char *labels,
		  const char *help, unsigned flags)
{
	return add_simple(m, METRICS_GAUGE, name, labels, help, flags);
}

int metrics_histogram(struct metrics *m, const char *name, const char *labels,
		      const char *help, unsigned flags, const uint64_t *bounds,
		      unsigned nbounds, double scale)
{
	struct metrics_series def = { .type = METRICS_HISTOGRAM, .help = help,
				      .flags = flags, .nbounds = nbounds, .scale = scale };

	if (nbounds == 0 || nbounds > METRICS_BUCKETS_MAX || !(scale > 0) ||
	    strlen(name) >= sizeof def.name || strlen(labels ? labels : "") >= sizeof def.labels)
		return -EINVAL;
	for (unsigned i = 0; i < nbounds; i++) {
		if (i && bounds[i] <= bounds[i - 1])
			return -EINVAL;
		def.bounds[i] = bounds[i];
	}
	strcpy(def.name, name);
	strcpy(def.labels, labels ? labels : "");
	return add(m, &def);
}

int metrics_freeze(struct metrics *m)
{
	assert(!m->frozen);
	for (unsigned i = 0; i < m->cores; i++) {
		struct metrics_core *mc = calloc(1, sizeof *mc);

		if (!mc)
			return -ENOMEM;
		m->core[i] = mc;
		mc->m = m;
		mc->id = i;
		mc->values = calloc(m->values ? m->values : 1, sizeof *mc->values);
		if (!mc->values)
			return -ENOMEM;
	}
	m->frozen = true;
	return 0;
}

int metrics_core_add_collector(struct metrics_core *mc, metrics_collect_fn *fn, void *arg)
{
	if (mc->ncollectors == METRICS_COLLECTORS_MAX)
		return -ENOSPC;
	mc->collectors[mc->ncollectors].fn = fn;
	mc->collectors[mc->ncollectors].arg = arg;
	mc->ncollectors++;
	return 0;
}

void metrics_observe(struct metrics_core *mc, int id, uint64_t v)
{
	const struct metrics_series *s = &mc->m->series[id];
	uint64_t *slot = &mc->values[s->slot];
	unsigned i = 0;

	assert(s->type == METRICS_HISTOGRAM);
	/* Non-cumulative counts per bucket; cumulated when formatted. */
	while (i < s->nbounds && v > s->bounds[i])
		i++;
	slot[i]++;
	slot[s->nbounds + 1] += v;
	slot[s->nbounds + 2]++;
}

void metrics_set_histogram(struct metrics_core *mc, int id, const uint64_t *counts,
			   uint64_t sum)
{
	const struct metrics_series *s = &mc->m->series[id];
	uint64_t *slot = &mc->values[s->slot];
	uint64_t n = 0;

	assert(s->type == METRICS_HISTOGRAM);
	for (unsigned i = 0; i <= s->nbounds; i++) {
		slot[i] = counts[i];
		n += counts[i];
	}
	slot[s->nbounds + 1] = sum;
	slot[s->nbounds + 2] = n;
}

/* ---- text ---------------------------------------------------------------- */

void metrics_buf_printf(struct metrics_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->data ? b->data + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap : 4096;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *grown = realloc(b->data, cap);
		if (!grown) {
			b->failed = true;
			return;
		}
		b->data = grown;
		b->cap = cap;
	}
}

void metrics_buf_free(struct metrics_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

/* HELP text escaped as the exposition format asks: backslash and newline. */
static void print_help(struct metrics_buf *b, const struct metrics_series *s)
{
	metrics_buf_printf(b, "# HELP %s ", s->name);
	for (const char *p = s->help; *p; p++) {
		if (*p == '\\')
			metrics_buf_printf(b, "\\\\");
		else if (*p == '\n')
			metrics_buf_printf(b, "\\n");
		else
			metrics_buf_printf(b, "%c", *p);
	}
	metrics_buf_printf(b, "\n# TYPE %s %s\n", s->name,
			   s->type == METRICS_COUNTER ? "counter" :
			   s->type == METRICS_GAUGE ? "gauge" : "histogram");
}

/*
 * The label set of one sample: the core (unless summed), the series' own
 * labels, and `extra` (le="..." of a bucket), comma-separated; "" when
 * there is none.
 */
static void label_set(char *buf, size_t len, const struct metrics_series *s, int core,
		      const char *extra)
{
	size_t n = 0;

	buf[0] = '\0';
	if (core >= 0)
		n += (size_t)snprintf(buf + n, len - n, "core=\"%d\"", core);
	if (s->labels[0] && n < len)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "," : "", s->labels);
	if (extra && n < len)
		snprintf(buf + n, len - n, "%s%s", n ? "," : "", extra);
}

static void print_sample(struct metrics_buf *b, const char *name, const char *suffix,
			 const char *labels, const char *value)
{
	if (labels[0])
		metrics_buf_printf(b, "%s%s{%s} %s\n", name, suffix, labels, value);
	else
		metrics_buf_printf(b, "%s%s %s\n", name, suffix, value);
}

/* One series' value for `core` (-1: summed over every core). */
static uint64_t value_at(const struct metrics *m, const uint64_t *rows, unsigned slot,
			 int core)
{
	uint64_t v = 0;

	if (core >= 0)
		return rows[(size_t)core * m->values + slot];
	for (unsigned i = 0; i < m->cores; i++)
		v += rows[(size_t)i * m->values + slot];
	return v;
}

static void print_series(struct metrics_buf *b, const struct metrics *m,
			 const uint64_t *rows, const struct metrics_series *s, int core)
{
	char labels[METRICS_LABELS_MAX + 64], value[48], le[48];
	uint64_t cumulative = 0;

	if (s->type != METRICS_HISTOGRAM) {
		uint64_t v = value_at(m, rows, s->slot, core);

		label_set(labels, sizeof labels, s, core, NULL);
		if (s->type == METRICS_GAUGE)
			snprintf(value, sizeof value, "%" PRId64, (int64_t)v);
		else if (s->scale > 0)
			snprintf(value, sizeof value, "%.9g", (double)v * s->scale);
		else
			snprintf(value, sizeof value, "%" PRIu64, v);
		print_sample(b, s->name, "", labels, value);
		return;
	}
	for (unsigned i = 0; i <= s->nbounds; i++) {
		cumulative += value_at(m, rows, s->slot + i, core);
		if (i < s->nbounds)
			snprintf(le, sizeof le, "le=\"%.9g\"", (double)s->bounds[i] * s->scale);
		else
			snprintf(le, sizeof le, "le=\"+Inf\"");
		label_set(labels, sizeof labels, s, core, le);
		snprintf(value, sizeof value, "%" PRIu64, cumulative);
		print_sample(b, s->name, "_bucket", labels, value);
	}
	label_set(labels, sizeof labels, s, core, NULL);
	snprintf(value, sizeof value, "%.9g",
		 (double)value_at(m, rows, s->slot + s->nbounds + 1, core) * s->scale);
	print_sample(b, s->name, "_sum", labels, value);
	/* _count equals the +Inf bucket by construction. */
	snprintf(value, sizeof value, "%" PRIu64, cumulative);
	print_sample(b, s->name, "_count", labels, value);
}

int metrics_format(const struct metrics *m, const uint64_t *rows, struct metrics_buf *out)
{
	for (unsigned i = 0; i < m->count; i++) {
		const struct metrics_series *first = &m->series[i];

		if (family_of(m, first->name) != first)
			continue; /* printed with its family */
		print_help(out, first);
		/* Per core, the family's series one core after another. */
		for (int core = 0; core < (int)m->cores; core++) {
			bool summed = first->flags & METRICS_SUM_CORES;

			if (summed && core > 0)
				break;
			for (unsigned j = i; j < m->count; j++)
				if (!strcmp(m->series[j].name, first->name))
					print_series(out, m, rows, &m->series[j],
						     summed ? -1 : core);
		}
	}
	return out->failed ? -ENOMEM : 0;
}

uint64_t metrics_row_sum(const struct metrics *m, const uint64_t *rows, int id)
{
	return value_at(m, rows, m->series[id].slot, -1);
}

/* ---- scraping ------------------------------------------------------------ */

int metrics_scrape_init(struct metrics_scrape *s, const struct metrics *m, unsigned origin)
{
	assert(m->frozen && origin < m->cores);
	memset(s, 0, sizeof *s);
	s->m = m;
	s->origin = origin;
	s->rows = calloc((size_t)m->cores * (m->values ? m->values : 1), sizeof *s->rows);
	s->msgs = calloc(m->cores, sizeof *s->msgs);
	if (!s->rows || !s->msgs) {
		metrics_scrape_destroy(s);
		return -ENOMEM;
	}
	return 0;
}

void metrics_scrape_destroy(struct metrics_scrape *s)
{
	free(s->rows);
	free(s->msgs);
	s->rows = NULL;
	s->msgs = NULL;
}

/* Origin core: one row is home. */
static void on_row(struct reactor *r, struct reactor_msg *msg)
{
	struct metrics_scrape_msg *sm = (struct metrics_scrape_msg *)msg;
	struct metrics_scrape *s = sm->scrape;

	(void)r;
	assert(s->pending > 0);
	if (--s->pending == 0)
		s->done(s, s->arg);
}

/* Core sm->core: run the collectors, copy the row, send it home. */
static void on_collect(struct reactor *r, struct reactor_msg *msg)
{
	struct metrics_scrape_msg *sm = (struct metrics_scrape_msg *)msg;
	struct metrics_scrape *s = sm->scrape;
	struct metrics_core *mc = s->m->core[sm->core];

	assert(r->id == sm->core);
	for (unsigned i = 0; i < mc->ncollectors; i++)
		mc->collectors[i].fn(mc, mc->collectors[i].arg);
	memcpy(s->rows + (size_t)sm->core * s->m->values, mc->values,
	       s->m->values * sizeof *mc->values);
	sm->msg.handle = on_row;
	reactor_send(r, s->origin, &sm->msg);
}

void metrics_scrape_start(struct reactor *r, struct metrics_scrape *s,
			  metrics_scrape_done_fn *done, void *arg)
{
	assert(!metrics_scrape_busy(s) && r->id == s->origin);
	s->done = done;
	s->arg = arg;
	s->pending = s->m->cores;
	for (unsigned i = 0; i < s->m->cores; i++) {
		s->msgs[i].scrape = s;
		s->msgs[i].core = i;
		s->msgs[i].msg.handle = on_collect;
		reactor_send(r, i, &s->msgs[i].msg);
	}
}
