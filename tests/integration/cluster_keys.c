/* Client helpers of the cluster integration tests: see cluster_keys.h. */
#include "cluster_keys.h"

#include <stdbool.h>
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

unsigned cluster_log_count(const struct cluster *c, unsigned i, const char *what)
{
	return harness_lines_with(c->nodes[i].log, what);
}
