/*
 * Command-line parsing for ringkv-bench (see options.h). Numbers are parsed
 * strictly: trailing garbage, negative counts and overflow are errors, so a
 * typo never turns silently into a default.
 */
#include "perf/bench/options.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf/bench/workload.h"
#include "tools/version.h"

#define DEFAULT_ZIPF_S 0.99

enum {
	OPT_ADDR = 256,
	OPT_PROTOCOL,
	OPT_CONNECTIONS,
	OPT_THREADS,
	OPT_PIPELINE,
	OPT_RATIO,
	OPT_KEYS,
	OPT_KEY_SIZE,
	OPT_VALUE_SIZE,
	OPT_DISTRIBUTION,
	OPT_DURATION,
	OPT_REQUESTS,
	OPT_WARMUP,
	OPT_RATE,
	OPT_JSON,
	OPT_NO_ROUTE,
	OPT_SEED,
	OPT_TLS_CA,
	OPT_AUTH_FILE,
	OPT_SHARD_SPREAD,
	OPT_PRINT_KEYS,
	OPT_HELP,
	OPT_VERSION,
};

void options_usage(const char *argv0, void *out)
{
	fprintf(out,
		"usage: %s [options]\n"
		"Load generator for ringkv (native protocol) and RESP servers, on io_uring.\n"
		"\n"
		"  --addr HOST:PORT        server address (default 127.0.0.1:6379 with resp;\n"
		"                          required with native)\n"
		"  --protocol native|resp  wire protocol (default native)\n"
		"  --connections N         connections in total (default 50)\n"
		"  --threads T             threads, each with its own io_uring ring (default 1)\n"
		"  --pipeline D            requests in flight per connection (default 1)\n"
		"  --ratio GET:PUT         operation mix, e.g. 0:1, 9:1 (default 9:1)\n"
		"  --keys N                keyspace size (default 100000)\n"
		"  --key-size B            key length, \"key:\" + zero-padded index (default 16)\n"
		"  --value-size B          PUT value length (default 100)\n"
		"  --distribution D        uniform | zipf[:s] (default uniform; s = %.2f)\n"
		"  --duration S            measure for S seconds (default 10)\n"
		"  --requests N            or: measure N requests in total\n"
		"  --warmup S              run S seconds unmeasured first (default 1)\n"
		"  --rate R                open loop: R requests/s in total on a fixed schedule;\n"
		"                          latency counts from the intended send time\n"
		"                          (default 0: closed loop)\n"
		"  --json                  print one JSON object as the last line of stdout\n"
		"  --no-route              every connection to --addr; by default, in a\n"
		"                          cluster, each connection goes to one node and\n"
		"                          gets the keys whose shard that node leads\n"
		"  --seed N                random seed (default 1)\n"
		"  --tls-ca FILE           TLS 1.3 to the server, whose certificate must\n"
		"                          chain to this CA and name the IP address\n"
		"                          connected to (handshakes before the run)\n"
		"  --auth-file FILE        authenticate each connection (ringkvd --users) with\n"
		"                          the user on the file's first line and the password\n"
		"                          on its second (default $RINGKV_AUTH_FILE, else\n"
		"                          $RINGKV_USER and $RINGKV_PASSWORD)\n"
		"  --shard-spread N        cluster: the --keys keys all fall in N of its\n"
		"                          shards, chosen round-robin over the leaders'\n"
		"                          (node, core) pairs, so N = nodes x cores puts\n"
		"                          one loaded shard on every core (default: keys\n"
		"                          over every shard)\n"
		"  --print-keys            print the keys (key, shard, leader node, core),\n"
		"                          one a line, and exit without sending any\n"
		"  --help                  this text\n"
		"  --version               the version\n",
		argv0, DEFAULT_ZIPF_S);
}

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (text[0] == '-' || text[0] == '\0')
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_unsigned(const char *text, unsigned min, unsigned max, unsigned *out)
{
	uint64_t v;
	int rv = parse_u64(text, min, max, &v);

	if (rv == 0)
		*out = (unsigned)v;
	return rv;
}

static int parse_double(const char *text, double min, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || !(v >= min) || v > 1e12)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_addr(const char *text, struct bench_options *opts)
{
	const char *colon = strrchr(text, ':');
	const char *host = text;
	size_t host_len;

	if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) >= sizeof(opts->port))
		return -EINVAL;
	host_len = (size_t)(colon - text);
	if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
		host++;
		host_len -= 2;
	}
	if (host_len == 0 || host_len >= sizeof(opts->host))
		return -EINVAL;
	memcpy(opts->host, host, host_len);
	opts->host[host_len] = '\0';
	strcpy(opts->port, colon + 1);
	/* A port is 1 to 65535 in decimal; the resolver would take 70000 or
	 * 0 and the connect fail later as "connection refused". */
	{
		char *end;
		unsigned long port;

		if (colon[1] < '0' || colon[1] > '9')
			return -ERANGE;
		errno = 0;
		port = strtoul(colon + 1, &end, 10);
		if (errno || *end || port < 1 || port > 65535)
			return -ERANGE;
	}
	return 0;
}

static int parse_ratio(const char *text, struct bench_options *opts)
{
	char buf[32];
	char *colon;

	if (strlen(text) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, text);
	colon = strchr(buf, ':');
	if (colon == NULL)
		return -EINVAL;
	*colon = '\0';
	if (parse_unsigned(buf, 0, 1000000, &opts->get_weight) != 0 ||
	    parse_unsigned(colon + 1, 0, 1000000, &opts->put_weight) != 0 ||
	    opts->get_weight + opts->put_weight == 0)
		return -EINVAL;
	strcpy(opts->ratio_text, text);
	return 0;
}

static int parse_distribution(const char *text, struct bench_options *opts)
{
	if (strlen(text) >= sizeof(opts->distribution_text))
		return -EINVAL;
	if (strcmp(text, "uniform") == 0) {
		opts->zipf_s = 0;
	} else if (strcmp(text, "zipf") == 0) {
		opts->zipf_s = DEFAULT_ZIPF_S;
	} else if (strncmp(text, "zipf:", 5) == 0) {
		if (parse_double(text + 5, 0, &opts->zipf_s) != 0 || opts->zipf_s <= 0 ||
		    opts->zipf_s > 100)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	strcpy(opts->distribution_text, text);
	return 0;
}

static void set_defaults(struct bench_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->protocol = BENCH_PROTOCOL_NATIVE;
	opts->connections = 50;
	opts->threads = 1;
	opts->pipeline = 1;
	opts->get_weight = 9;
	opts->put_weight = 1;
	opts->keys = 100000;
	opts->key_size = 16;
	opts->value_size = 100;
	opts->duration_s = 10;
	opts->warmup_s = 1;
	opts->seed = 1;
	strcpy(opts->ratio_text, "9:1");
	strcpy(opts->distribution_text, "uniform");
}

int options_parse(int argc, char **argv, struct bench_options *opts, char *err, size_t err_len)
{
	static const struct option longopts[] = {
		{ "addr", required_argument, NULL, OPT_ADDR },
		{ "protocol", required_argument, NULL, OPT_PROTOCOL },
		{ "connections", required_argument, NULL, OPT_CONNECTIONS },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "pipeline", required_argument, NULL, OPT_PIPELINE },
		{ "ratio", required_argument, NULL, OPT_RATIO },
		{ "keys", required_argument, NULL, OPT_KEYS },
		{ "key-size", required_argument, NULL, OPT_KEY_SIZE },
		{ "value-size", required_argument, NULL, OPT_VALUE_SIZE },
		{ "distribution", required_argument, NULL, OPT_DISTRIBUTION },
		{ "duration", required_argument, NULL, OPT_DURATION },
		{ "requests", required_argument, NULL, OPT_REQUESTS },
		{ "warmup", required_argument, NULL, OPT_WARMUP },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "no-route", no_argument, NULL, OPT_NO_ROUTE },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
		{ "auth-file", required_argument, NULL, OPT_AUTH_FILE },
		{ "shard-spread", required_argument, NULL, OPT_SHARD_SPREAD },
		{ "print-keys", no_argument, NULL, OPT_PRINT_KEYS },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int have_addr = 0, have_duration = 0, have_requests = 0, opt, rv = 0, index = 0;
	unsigned spread = 0;

	set_defaults(opts);
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "hV", longopts, &index)) != -1) {
		const char *arg = optarg;

		switch (opt) {
		case OPT_ADDR:
			rv = parse_addr(arg, opts);
			if (rv == -ERANGE)
				return fail(err, err_len, "--addr '%s': a port is 1 to 65535 "
					    "(see --help)", arg);
			have_addr = 1;
			break;
		case OPT_PROTOCOL:
			if (strcmp(arg, "native") == 0)
				opts->protocol = BENCH_PROTOCOL_NATIVE;
			else if (strcmp(arg, "resp") == 0)
				opts->protocol = BENCH_PROTOCOL_RESP;
			else
				rv = -EINVAL;
			break;
		case OPT_CONNECTIONS:
			rv = parse_unsigned(arg, 1, 100000, &opts->connections);
			break;
		case OPT_THREADS:
			rv = parse_unsigned(arg, 1, 1024, &opts->threads);
			break;
		case OPT_PIPELINE:
			rv = parse_unsigned(arg, 1, 65535, &opts->pipeline);
			break;
		case OPT_RATIO:
			rv = parse_ratio(arg, opts);
			break;
		case OPT_KEYS:
			rv = parse_u64(arg, 1, UINT64_C(1) << 48, &opts->keys);
			break;
		case OPT_KEY_SIZE:
			rv = parse_unsigned(arg, 1, 65536, &opts->key_size);
			break;
		case OPT_VALUE_SIZE:
			rv = parse_unsigned(arg, 0, 16u << 20, &opts->value_size);
			break;
		case OPT_DISTRIBUTION:
			rv = parse_distribution(arg, opts);
			break;
		case OPT_DURATION:
			rv = parse_double(arg, 0.001, &opts->duration_s);
			have_duration = 1;
			break;
		case OPT_REQUESTS:
			rv = parse_u64(arg, 1, UINT64_C(1) << 48, &opts->requests);
			have_requests = 1;
			break;
		case OPT_WARMUP:
			rv = parse_double(arg, 0, &opts->warmup_s);
			break;
		case OPT_RATE:
			rv = parse_double(arg, 0, &opts->rate);
			break;
		case OPT_JSON:
			opts->json = 1;
			break;
		case OPT_SEED:
			rv = parse_u64(arg, 0, UINT64_MAX, &opts->seed);
			break;
		case OPT_NO_ROUTE:
			opts->no_route = 1;
			break;
		case OPT_TLS_CA:
			opts->tls_ca = arg;
			break;
		case OPT_AUTH_FILE:
			opts->auth_file = arg;
			break;
		case OPT_SHARD_SPREAD:
			rv = parse_unsigned(arg, 1, 1u << 20, &spread);
			opts->shard_spread = spread;
			break;
		case OPT_PRINT_KEYS:
			opts->print_keys = 1;
			break;
		case 'h':
		case OPT_HELP:
			options_usage("ringkv-bench", stdout);
			return 1;
		case 'V':
		case OPT_VERSION:
			version_print(stdout, "ringkv-bench");
			return 1;
		default:
			return fail(err, err_len, "unknown or incomplete option '%s' (see --help)",
				    argv[optind - 1]);
		}
		if (rv != 0)
			return fail(err, err_len, "bad value for --%s: '%s' (see --help)",
				    longopts[index].name, arg);
	}
	if (optind < argc)
		return fail(err, err_len, "unexpected argument '%s' (see --help)", argv[optind]);
	if (have_duration && have_requests)
		return fail(err, err_len, "give --duration or --requests, not both (see --help)");
	if (have_requests)
		opts->duration_s = 0;
	if (!have_addr) {
		if (opts->protocol == BENCH_PROTOCOL_NATIVE)
			return fail(err, err_len, "--addr HOST:PORT is required with --protocol native "
				    "(see --help)");
		strcpy(opts->host, "127.0.0.1");
		strcpy(opts->port, "6379");
	}
	if (opts->key_size < workload_key_size_min(opts->keys))
		return fail(err, err_len, "--key-size %u cannot hold %llu keys (need at least %u; "
			    "see --help)",
			    opts->key_size, (unsigned long long)opts->keys,
			    workload_key_size_min(opts->keys));
	if (opts->shard_spread && (opts->no_route || opts->protocol != BENCH_PROTOCOL_NATIVE))
		return fail(err, err_len, "--shard-spread needs the cluster map: the native "
			    "protocol, without --no-route (see --help)");
	if (opts->print_keys && !opts->shard_spread)
		return fail(err, err_len, "--print-keys lists the keys of --shard-spread N "
			    "(see --help)");
	if (opts->threads > opts->connections)
		opts->threads = opts->connections;
	return 0;
}
