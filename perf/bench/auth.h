/*
 * ringkv-bench's AUTH before the run (ringkvd --users); see perf/bench/auth.c.
 */
#ifndef RINGKV_PERF_BENCH_AUTH_H
#define RINGKV_PERF_BENCH_AUTH_H

#include <stddef.h>

#include "perf/bench/codec.h"

struct ssl_st;

/*
 * Authenticates connected socket `fd` (over `ssl` when not NULL, still
 * blocking) with libringkv's credentials, in `protocol`. 0 (done, or no
 * credentials set), or a negative code with the reason in `err`.
 */
int bench_authenticate(int fd, struct ssl_st *ssl, enum bench_protocol protocol, char *err,
		       size_t err_len);

#endif
