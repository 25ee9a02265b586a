/*
 * raft-bench: micro-benchmarks of raft/ alone, no checker, no I/O.
 *
 *   raft-bench [--proposals N] [--groups G]
 *
 * 1. Committed proposals per second through one 3-node group: zero network
 *    delay (a FIFO of messages), disks that are durable at once (each
 *    update's entries are reported persisted right after it), proposals
 *    one at a time (each runs to commit before the next) and in batches of
 *    64, with a snapshot every 10,000 entries to bound memory.
 * 2. The cost of raft_step() per received message (time inside raft_step
 *    for RECEIVE events / their count) during that run, and for a
 *    follower handling heartbeats alone.
 * 3. Bytes per idle group: G groups of 3 members each are elected, commit
 *    their NOOP and compact; raft_footprint() of followers and leaders.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raft/raft.h"
#include "tools/version.h"

#define NODES 3

struct qmsg {
	struct raft_msg m;
	struct raft_entry *entries;
	void *data;
	struct raft_conf conf;
};

struct cluster {
	struct raft *r[NODES + 1];
	struct raft_rng rng[NODES + 1];
	struct qmsg *q;
	size_t head, tail, cap;
	uint64_t applied;
	uint64_t recv_ns;
	uint64_t recv_count;
	uint64_t last_snapshot;
	uint8_t value[16];
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "raft-bench: out of memory\n");
		exit(1);
	}
	return p;
}

static void push(struct cluster *c, const struct raft_msg *m)
{
	if (c->tail == c->cap) {
		if (c->head > 0) {
			memmove(c->q, c->q + c->head,
				(c->tail - c->head) * sizeof(*c->q));
			c->tail -= c->head;
			c->head = 0;
		} else {
			c->cap = c->cap ? c->cap * 2 : 1024;
			c->q = realloc(c->q, c->cap * sizeof(*c->q));
			if (!c->q)
				exit(1);
		}
	}
	struct qmsg *q = &c->q[c->tail++];
	q->m = *m;
	q->entries = NULL;
	q->data = NULL;
	if (m->n_entries) {
		q->entries = xmalloc(m->n_entries * sizeof(*q->entries));
		for (uint32_t i = 0; i < m->n_entries; i++) {
			q->entries[i] = m->entries[i];
			q->entries[i].data = NULL;
			if (m->entries[i].len) {
				q->entries[i].data = xmalloc(m->entries[i].len);
				memcpy(q->entries[i].data, m->entries[i].data,
				       m->entries[i].len);
			}
		}
	}
	if (m->len) {
		q->data = xmalloc(m->len);
		memcpy(q->data, m->data, m->len);
	}
	if (m->conf)
		q->conf = *m->conf;
	q->m.entries = q->entries;
	q->m.data = q->data;
	q->m.conf = m->conf ? &q->conf : NULL;
}

static void qmsg_free(struct qmsg *q)
{
	for (uint32_t i = 0; i < q->m.n_entries; i++)
		free(q->entries[i].data);
	free(q->entries);
	free(q->data);
}

static void step(struct cluster *c, uint64_t id, const struct raft_event *ev);

/* Durable at once: persist, then report; send; count applied entries. */
static void handle(struct cluster *c, uint64_t id, const struct raft_update *up)
{
	for (size_t i = 0; i < up->n_msgs; i++)
		push(c, &up->msgs[i]);
	if (id == 1)
		c->applied += up->n_apply;
	if (up->n_persist) {
		struct raft_event ev = {
			.type = RAFT_EV_PERSISTED,
			.persisted = {
				.index = up->persist_first + up->n_persist - 1,
				.term = up->persist[up->n_persist - 1].term,
				.mark = up->persist_mark}};
		step(c, id, &ev);
	}
}

static void step(struct cluster *c, uint64_t id, const struct raft_event *ev)
{
	struct raft_update up;
	uint64_t t0 = ev->type == RAFT_EV_RECEIVE ? now_ns() : 0;
	raft_step(c->r[id], ev, &up);
	if (t0) {
		c->recv_ns += now_ns() - t0;
		c->recv_count++;
	}
	handle(c, id, &up);
}

static void drain(struct cluster *c)
{
	while (c->head < c->tail) {
		struct qmsg q = c->q[c->head++];
		q.m.conf = q.m.conf ? &q.conf : NULL;
		struct raft_event ev = {.type = RAFT_EV_RECEIVE, .msg = &q.m};
		step(c, q.m.to, &ev);
		qmsg_free(&q);
	}
	c->head = c->tail = 0;
}

static void cluster_init(struct cluster *c, uint64_t seed)
{
	memset(c, 0, sizeof(*c));
	struct raft_snapshot_meta snap;
	memset(&snap, 0, sizeof(snap));
	snap.conf.n = NODES;
	for (uint32_t i = 0; i < NODES; i++) {
		snap.conf.servers[i].id = i + 1;
		snap.conf.servers[i].role = RAFT_VOTER;
	}
	struct raft_hard_state hs = {0, 0};
	for (uint64_t id = 1; id <= NODES; id++) {
		struct raft_config cfg;
		raft_config_default(&cfg);
		cfg.id = id;
		raft_rng_seed(&c->rng[id], seed + id);
		cfg.rng = &c->rng[id];
		if (raft_create(&c->r[id], &cfg) != 0 ||
		    raft_restore(c->r[id], &hs, &snap, NULL, 0, NULL, 0) != 0)
			exit(1);
	}
	struct raft_event ev = {.type = RAFT_EV_CAMPAIGN};
	step(c, 1, &ev);
	drain(c);
	if (raft_role(c->r[1]) != RAFT_LEADER) {
		fprintf(stderr, "raft-bench: no leader\n");
		exit(1);
	}
}

static void cluster_free(struct cluster *c)
{
	for (uint64_t id = 1; id <= NODES; id++)
		raft_destroy(c->r[id]);
	free(c->q);
}

static void maybe_snapshot(struct cluster *c)
{
	uint64_t index = raft_commit_index(c->r[1]);
	if (index < c->last_snapshot + 10000)
		return;
	for (uint64_t id = 1; id <= NODES; id++) {
		uint64_t at = raft_commit_index(c->r[id]);
		if (raft_persisted_index(c->r[id]) < at)
			at = raft_persisted_index(c->r[id]);
		struct raft_event ev = {.type = RAFT_EV_SNAPSHOT_TAKEN,
					.snapshot = {.index = at,
						     .data = c->value,
						     .len = sizeof(c->value)}};
		step(c, id, &ev);
	}
	c->last_snapshot = index;
}

static void throughput(uint64_t proposals, int batch)
{
	struct cluster c;
	cluster_init(&c, 7);
	uint64_t base = c.applied;
	c.recv_ns = c.recv_count = 0;
	uint64_t t0 = now_ns();
	for (uint64_t done = 0; done < proposals; done += (uint64_t)batch) {
		for (int i = 0; i < batch; i++) {
			struct raft_event ev = {
				.type = RAFT_EV_PROPOSE,
				.propose = {.data = c.value, .len = 16}};
			step(&c, 1, &ev);
		}
		drain(&c);
		maybe_snapshot(&c);
	}
	uint64_t elapsed = now_ns() - t0;
	uint64_t committed = c.applied - base;
	printf("3-node group, batch %3d: %llu proposals committed in %.3f s: "
	       "%.0f proposals/s; raft_step %.0f ns/message over %llu "
	       "messages\n",
	       batch, (unsigned long long)committed, (double)elapsed / 1e9,
	       (double)committed * 1e9 / (double)elapsed,
	       (double)c.recv_ns / (double)c.recv_count,
	       (unsigned long long)c.recv_count);
	cluster_free(&c);
}

static void heartbeat_cost(uint64_t n)
{
	struct cluster c;
	cluster_init(&c, 9);
	struct raft_msg hb = {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2,
			      .term = raft_term(c.r[1]),
			      .commit = raft_commit_index(c.r[1])};
	struct raft_event ev = {.type = RAFT_EV_RECEIVE, .msg = &hb};
	struct raft_update up;
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < n; i++) {
		hb.context = i;
		raft_step(c.r[2], &ev, &up);
	}
	uint64_t elapsed = now_ns() - t0;
	printf("follower heartbeat: %.0f ns/message\n",
	       (double)elapsed / (double)n);
	cluster_free(&c);
}

static void idle_footprint(int groups)
{
	size_t follower = 0, leader = 0;
	for (int g = 0; g < groups; g++) {
		struct cluster c;
		cluster_init(&c, (uint64_t)g * 10);
		struct raft_event tick = {.type = RAFT_EV_TICK};
		for (int t = 0; t < 3; t++) {
			for (uint64_t id = 1; id <= NODES; id++)
				step(&c, id, &tick);
			drain(&c);
		}
		for (uint64_t id = 1; id <= NODES; id++) {
			struct raft_event ev = {
				.type = RAFT_EV_SNAPSHOT_TAKEN,
				.snapshot = {.index = raft_commit_index(c.r[id])}};
			step(&c, id, &ev);
		}
		leader += raft_footprint(c.r[1]);
		follower += raft_footprint(c.r[2]) + raft_footprint(c.r[3]);
		cluster_free(&c);
	}
	printf("idle group (NOOP committed, log compacted): %zu bytes as "
	       "follower, %zu bytes as leader of 3 (mean of %d groups)\n",
	       follower / (2 * (size_t)groups), leader / (size_t)groups,
	       groups);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: raft-bench [--proposals N] [--groups G]\n"
		     "Micro-benchmarks of the Raft library alone (no I/O): proposal\n"
		     "throughput with 1 and 64 groups, heartbeat cost, idle footprint.\n\n"
		     "  --proposals N  proposals per throughput run (default 200000)\n"
		     "  --groups G     groups for the idle footprint (default 1000)\n"
		     "  -h, --help     this text\n"
		     "  -V, --version  the version\n");
}

/* A count for `flag`; false (with the one-line error printed) if not one. */
static bool parse_count(const char *flag, const char *text, uint64_t max, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || errno || *end || *out == 0 || *out > max) {
		fprintf(stderr, "raft-bench: %s takes a count from 1 to %" PRIu64
				", not '%s' (see --help)\n", flag, max, text);
		return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	uint64_t proposals = 200000, count;
	int groups = 1000;

	/* Flags come alone (--help) or with a value (--groups G). */
	for (int i = 1; i < argc; i += 2) {
		bool takes_value = !strcmp(argv[i], "--proposals") || !strcmp(argv[i], "--groups");

		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "-V") || !strcmp(argv[i], "--version")) {
			version_print(stdout, "raft-bench");
			return 0;
		}
		if (!takes_value) {
			fprintf(stderr, "raft-bench: unknown argument '%s' (see --help)\n", argv[i]);
			return 2;
		}
		if (i + 1 == argc) {
			fprintf(stderr, "raft-bench: %s needs a value (see --help)\n", argv[i]);
			return 2;
		}
		if (!strcmp(argv[i], "--proposals")) {
			if (!parse_count(argv[i], argv[i + 1], UINT64_C(1) << 40, &proposals))
				return 2;
		} else {
			if (!parse_count(argv[i], argv[i + 1], 1000000, &count))
				return 2;
			groups = (int)count;
		}
	}
	throughput(proposals, 1);
	throughput(proposals, 64);
	heartbeat_cost(proposals * 10);
	idle_footprint(groups);
	return 0;
}
