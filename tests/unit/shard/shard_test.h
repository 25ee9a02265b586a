/*
 * Helpers shared by the shard tests that drive a real shard on a real ring
 * (test_shard.c, test_lsm.c): a waiter that records its answer, and a PUT
 * command from C strings. Include after <cmocka.h>.
 */
#ifndef RINGKV_TESTS_SHARD_TEST_H
#define RINGKV_TESTS_SHARD_TEST_H

#include <string.h>

#include "shard/shard.h"

struct waiter {
	struct shard_waiter w;
	int rv;
	int done;
	struct shard_result res;
	char old[64];     /* the previous value, when asked for and short */
};

static inline void on_done(struct shard_waiter *w, int rv, const struct shard_result *res)
{
	struct waiter *x = (struct waiter *)w;

	x->rv = rv;
	x->done++;
	if (res) {
		x->res = *res;
		x->old[0] = '\0';
		if (res->old_value && res->old_len < sizeof x->old) {
			memcpy(x->old, res->old_value, res->old_len);
			x->old[res->old_len] = '\0';
		}
	}
}

static inline struct command put_cmd(const char *k, const char *v)
{
	return (struct command){ .op = COMMAND_PUT, .key = (const uint8_t *)k,
				 .key_len = (uint32_t)strlen(k), .value = (const uint8_t *)v,
				 .value_len = (uint32_t)strlen(v) };
}

#endif
