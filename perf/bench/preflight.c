/*
 * The pre-write look of preflight.h: two SCANs of one key each, below and
 * above the benchmark's prefix, over a libringkv connection of its own
 * (closed before any worker starts, so it is never measured).
 */
#include "perf/bench/preflight.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "perf/bench/workload.h"
#include "tools/libringkv.h"

#define PREFLIGHT_TIMEOUT_MS 2000

/* The first key of [start, end) (end_len 0: no end) into *out; true if any. */
static bool first_key(struct rkv_client *c, const char *start, const char *end,
		      size_t end_len, char *out, size_t out_len, int *rc)
{
	struct rkv_kv *pairs = NULL;
	size_t count = 0;

	*rc = rkv_scan(c, start, strlen(start), end, end_len, 1, &pairs, &count);
	if (*rc != 0 || count == 0) {
		rkv_scan_free(pairs);
		return false;
	}
	/* Printable bytes as they are, others as '?': it is only an example. */
	for (size_t i = 0; i < pairs[0].key_len && i + 1 < out_len; i++) {
		unsigned char b = ((const unsigned char *)pairs[0].key)[i];

		out[i] = b >= 0x20 && b < 0x7f ? (char)b : '?';
		out[i + 1] = '\0';
	}
	rkv_scan_free(pairs);
	return true;
}

void preflight_check_keys(const struct bench_options *opts)
{
	char address[300], example[64] = "", err[256];
	char past_prefix[WORKLOAD_KEY_PREFIX_LEN + 1] = WORKLOAD_KEY_PREFIX;
	struct rkv_client *c;
	bool other;
	int rc;

	if (opts->put_weight == 0)
		return;
	/* The first key after every prefixed key: the prefix's last byte + 1
	 * (':' is no 0xff, so no carry). */
	past_prefix[WORKLOAD_KEY_PREFIX_LEN - 1]++;
	snprintf(address, sizeof(address), strchr(opts->host, ':') ? "[%s]:%s" : "%s:%s",
		 opts->host, opts->port);
	if (opts->protocol == BENCH_PROTOCOL_NATIVE &&
	    rkv_connect_timeout(address, PREFLIGHT_TIMEOUT_MS, &c, err, sizeof(err)) != 0)
		return; /* the workers' own connect reports it */
	fprintf(stderr, "ringkv-bench: writes only keys that start with '%s' (%llu of "
			"them); other keys are never touched\n",
		WORKLOAD_KEY_PREFIX, (unsigned long long)opts->keys);
	if (opts->protocol != BENCH_PROTOCOL_NATIVE)
		return; /* RESP servers differ in how to list keys: not checked */
	rkv_set_timeout(c, PREFLIGHT_TIMEOUT_MS);
	other = first_key(c, "", WORKLOAD_KEY_PREFIX, WORKLOAD_KEY_PREFIX_LEN, example,
			  sizeof(example), &rc);
	if (!other && rc == 0)
		other = first_key(c, past_prefix, "", 0, example, sizeof(example), &rc);
	if (rc != 0)
		fprintf(stderr, "ringkv-bench: could not check the keys on %s: %s\n",
			address, rkv_last_error(c));
	else if (other)
		fprintf(stderr,
			"ringkv-bench: warning: %s holds keys outside the benchmark's "
			"prefix '%s' (e.g. '%s'): is this someone's data? The run writes "
			"only '%s' keys, and overwrites any of those\n",
			address, WORKLOAD_KEY_PREFIX, example, WORKLOAD_KEY_PREFIX);
	rkv_close(c);
}
