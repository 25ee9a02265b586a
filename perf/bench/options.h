/*
 * Command line of ringkv-bench. options_parse() fills a struct bench_options
 * from argv and validates it as a whole (the keyspace fits --key-size, the
 * threads do not outnumber the connections, ...).
 */
#ifndef RINGKV_PERF_BENCH_OPTIONS_H
#define RINGKV_PERF_BENCH_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "perf/bench/codec.h"

struct bench_options {
	char host[256];               /* --addr host part (brackets stripped) */
	char port[16];                /* --addr port part */
	enum bench_protocol protocol; /* --protocol */
	unsigned connections;         /* --connections, total over all threads */
	unsigned threads;             /* --threads */
	unsigned pipeline;            /* --pipeline: requests in flight per connection */
	unsigned get_weight;          /* --ratio GET part */
	unsigned put_weight;          /* --ratio PUT part */
	uint64_t keys;                /* --keys */
	unsigned key_size;            /* --key-size */
	unsigned value_size;          /* --value-size */
	double zipf_s;                /* --distribution zipf:s; 0 = uniform */
	double duration_s;            /* --duration; 0 when --requests is used */
	uint64_t requests;            /* --requests; 0 when --duration is used */
	double warmup_s;              /* --warmup */
	double rate;                  /* --rate, requests/s over all connections; 0 = closed loop */
	int json;                     /* --json */
	int no_route;                 /* --no-route: every connection to --addr */
	uint64_t seed;                /* --seed */
	const char *tls_ca;           /* --tls-ca FILE: TLS to the server, or NULL */
	const char *auth_file;        /* --auth-file FILE: user and password lines, or NULL */
	uint32_t shard_spread;        /* --shard-spread N: keys of N shards only; 0 = all */
	int print_keys;               /* --print-keys: list the keys and exit */
	char ratio_text[32];          /* --ratio as given, for reports */
	char distribution_text[32];   /* --distribution as given, for reports */
};

/* Print --help text to out. */
void options_usage(const char *argv0, void *out);

/*
 * Parse argv into opts. Returns 0; 1 when --help was given (usage already
 * printed); or -EINVAL with a message in err (size err_len).
 */
int options_parse(int argc, char **argv, struct bench_options *opts, char *err, size_t err_len);

#endif
