/* Client helpers of the cluster integration tests: see cluster_keys.h. */
#include "cluster_keys.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/libringkv.h"

int cluster_keys_put_once(struct cluster *c, const void *key, size_t key_len,
			  const void *value, size_t value_len, unsigned first)
{
	for (unsigned n = 0; n < c->count; n++) {
		unsigned i = (first + n) % c->count;
		struct rkv_client *cl = cluster_client(c, i);
		int rv;

		if (!cl)
			continue;
		rv = rkv_put(cl, key, key_len, value, value_len);
		if (rv == RKV_STATUS_OK)
			return 1;
		if (rv == RKV_STATUS_NOT_LEADER || rv == RKV_STATUS_UNAVAILABLE)
			continue;
		if (rv < 0)
			cluster_drop_client(c, i);
		return 0;
	}
	return -1;
}

int cluster_keys_put(struct cluster *c, const void *key, size_t key_len, const void *value,
		     size_t value_len, unsigned first, long limit_ms)
{
	long deadline = harness_now_ms() + limit_ms;
	int rv = -1;

	while (rv != 1 && harness_now_ms() < deadline) {
		rv = cluster_keys_put_once(c, key, key_len, value, value_len, first);
		if (rv == 0) /* unknown: neither acknowledged nor refused */
			break;
		if (rv != 1)
			harness_sleep_ms(20);
	}
	return rv;
}

void cluster_keys_check(struct cluster *c, const void *key, size_t key_len,
			const void *value, size_t value_len, unsigned k, long limit_ms)
{
	long deadline = harness_now_ms() + limit_ms;

	while (harness_now_ms() < deadline) {
		for (unsigned i = 0; i < c->count; i++) {
			struct rkv_client *cl = cluster_client(c, i);
			void *got;
			size_t got_len;
			int rv;

			if (!cl)
				continue;
			rv = rkv_get(cl, key, key_len, &got, &got_len);
			if (rv == RKV_STATUS_OK) {
				bool same = got_len == value_len && memcmp(got, value, value_len) == 0;

				free(got);
				CHECK(same, "key %u reads a wrong value", k);
				return;
			}
			CHECK(rv != RKV_STATUS_NOT_FOUND,
			      "acknowledged key %u is lost (read through node %u)", k, i + 1);
			if (rv < 0)
				cluster_drop_client(c, i);
		}
		usleep(20000);
	}
	CHECK(false, "acknowledged key %u: no node served it within %ld ms", k, limit_ms);
}

void cluster_keys_check_own(struct cluster *c, unsigned i, const void *key, size_t key_len,
			    const void *value, size_t value_len, unsigned k, long limit_ms)
{
	long until = harness_now_ms() + limit_ms;
	void *got = NULL;
	size_t got_len = 0;
	int rv;

	do {
		struct rkv_client *cl = cluster_client(c, i);

		free(got);
		got = NULL;
		rv = cl ? rkv_get_stale(cl, key, key_len, &got, &got_len) : -1;
		if (rv != RKV_STATUS_OK)
			harness_sleep_ms(50);
	} while (rv != RKV_STATUS_OK && harness_now_ms() < until);
	CHECK(rv == RKV_STATUS_OK && got_len == value_len && !memcmp(got, value, value_len),
	      "key %u: node %u's own replica answers %d", k, i + 1, rv);
	free(got);
}

/* Every acknowledged key: through any node (own < 0) or node own's replicas. */
static void check_acked(struct cluster *c, int own, const bool *acked, unsigned count,
			cluster_keys_form_fn *key_of, cluster_keys_form_fn *value_of,
			long limit_ms)
{
	for (unsigned k = 0; k < count; k++) {
		char key[256], value[8192];
		size_t kl, vl;

		if (!acked[k])
			continue;
		kl = key_of(key, sizeof key, k);
		vl = value_of(value, sizeof value, k);
		CHECK(kl < sizeof key && vl < sizeof value, "key %u: longer than the check's buffers",
		      k);
		if (own < 0)
			cluster_keys_check(c, key, kl, value, vl, k, limit_ms);
		else
			cluster_keys_check_own(c, (unsigned)own, key, kl, value, vl, k, limit_ms);
	}
}

void cluster_keys_check_acked(struct cluster *c, const bool *acked, unsigned count,
			      cluster_keys_form_fn *key_of, cluster_keys_form_fn *value_of,
			      long limit_ms)
{
	check_acked(c, -1, acked, count, key_of, value_of, limit_ms);
}

void cluster_keys_check_acked_own(struct cluster *c, unsigned i, const bool *acked,
				  unsigned count, cluster_keys_form_fn *key_of,
				  cluster_keys_form_fn *value_of, long limit_ms)
{
	check_acked(c, (int)i, acked, count, key_of, value_of, limit_ms);
}

void cluster_node_replicas(struct cluster *c, unsigned i, unsigned nshards, char (*role)[16],
			   int *core)
{
	struct rkv_client *cl = cluster_client(c, i);
	struct rkv_cluster_status *st;

	for (unsigned s = 0; s < nshards; s++) {
		role[s][0] = '\0';
		if (core)
			core[s] = -1;
	}
	CHECK(cl != NULL, "node %u does not answer", i + 1);
	CHECK(rkv_cluster_status(cl, &st) == 0, "node %u: cluster status: %s", i + 1,
	      rkv_last_error(cl));
	for (size_t r = 0; r < st->replica_count; r++) {
		uint32_t s = st->replicas[r].shard;

		if (s >= nshards)
			continue;
		snprintf(role[s], sizeof role[s], "%s", st->replicas[r].role);
		if (core)
			core[s] = (int)st->replicas[r].core;
	}
	rkv_cluster_status_free(st);
}

unsigned cluster_log_count(const struct cluster *c, unsigned i, const char *what)
{
	return harness_lines_with(c->nodes[i].log, what);
}
