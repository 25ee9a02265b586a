/*
 * Before ringkv-bench writes: a look at what the server already holds, so a
 * benchmark aimed at a server with someone's data says so before it
 * overwrites any of it.
 */
#ifndef RINGKV_PERF_BENCH_PREFLIGHT_H
#define RINGKV_PERF_BENCH_PREFLIGHT_H

#include "perf/bench/options.h"

/*
 * When the mix has PUTs: prints on stderr which keys the benchmark writes
 * (only "key:" + a zero-padded index), and over the native protocol warns
 * when the server holds keys outside that prefix, naming one. Never fails
 * the run: a server that cannot be asked is reported and the run goes on.
 */
void preflight_check_keys(const struct bench_options *opts);

#endif
