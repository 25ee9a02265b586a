/* Command-line flags of ringkvd; see core/config.h. */
#include "core/config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof *c);
	strcpy(c->listen_host, "127.0.0.1");
	c->listen_port = 7070;
	strcpy(c->data_dir, "./data");
	c->memtable_size = 64ull << 20;
	c->manifest_rewrite_min = 1ull << 20;
	c->block_cache_size = 256ull << 20;
	c->max_frame = 4u << 20;
	c->max_key = 4u << 10;
	c->max_value = 1u << 20;
	c->max_inflight = 1024;
	c->max_connections = 4096;
	c->log_level = LOG_INFO;
}

void config_usage(FILE *out, const char *prog)
{
	fprintf(out,
		"usage: %s [options]\n"
		"  --listen HOST:PORT       client address (default 127.0.0.1:7070; port 0 = any)\n"
		"  --resp-listen HOST:PORT  Redis protocol (RESP2) address (default: off)\n"
		"  --data-dir DIR           data directory (default ./data)\n"
		"  --cores N                reactor threads (default: every CPU of the cpuset)\n"
		"  --shards N               shards, fixed when the data dir is created\n"
		"                           (default: one per core)\n"
		"  --memtable-size BYTES    memtable per shard (default 64MiB)\n"
		"  --block-cache-size BYTES SSTable block cache per core (default 256MiB)\n"
		"  --manifest-rewrite-min BYTES  rewrite a shard's manifest whole once it\n"
		"                           is this long and 4x its version (default 1MiB)\n"
		"  --max-frame BYTES        largest client frame (default 4MiB)\n"
		"  --max-key BYTES          largest key (default 4KiB)\n"
		"  --max-value BYTES        largest value (default 1MiB)\n"
		"  --max-inflight N         requests in flight per connection (default 1024)\n"
		"  --max-connections N      connections per core (default 4096)\n"
		"  --log-level LEVEL        debug, info, warn or error (default info)\n"
		"  --help                   this text\n",
		prog);
}

int config_parse_size(const char *text, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mult = 1;

	if (!text || !*text || *text == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || end == text)
		return -EINVAL;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K':
		mult = 1ull << 10;
		end++;
		break;
	case 'm': case 'M':
		mult = 1ull << 20;
		end++;
		break;
	case 'g': case 'G':
		mult = 1ull << 30;
		end++;
		break;
	default:
		return -EINVAL;
	}
	if (*end == 'i')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0')
		return -EINVAL;
	if (v > UINT64_MAX / mult)
		return -EINVAL;
	*out = (uint64_t)v * mult;
	return 0;
}

int config_parse_address(const char *text, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon;
	const char *h = text;
	size_t hlen;
	char *end;
	unsigned long p;

	if (!text)
		return -EINVAL;
	if (*text == '[') {
		const char *close = strchr(text, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		h = text + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(text, ':');
		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - text);
	}
	if (hlen == 0 || hlen >= hostlen)
		return -EINVAL;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end != '\0' || p > 65535)
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (uint16_t)p;
	return 0;
}

static int parse_count(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;

	if (config_parse_size(text, &v) != 0 || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

enum {
	OPT_LISTEN = 256, OPT_RESP_LISTEN, OPT_DATA_DIR, OPT_CORES, OPT_SHARDS, OPT_MEMTABLE, OPT_BLOCK_CACHE, OPT_MANIFEST_REWRITE,
	OPT_MAX_FRAME, OPT_MAX_KEY, OPT_MAX_VALUE, OPT_MAX_INFLIGHT,
	OPT_MAX_CONNS, OPT_LOG_LEVEL, OPT_HELP,
};

static const struct option long_options[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "resp-listen", required_argument, NULL, OPT_RESP_LISTEN },
	{ "data-dir", required_argument, NULL, OPT_DATA_DIR },
	{ "cores", required_argument, NULL, OPT_CORES },
	{ "shards", required_argument, NULL, OPT_SHARDS },
	{ "memtable-size", required_argument, NULL, OPT_MEMTABLE },
	{ "block-cache-size", required_argument, NULL, OPT_BLOCK_CACHE },
	{ "manifest-rewrite-min", required_argument, NULL, OPT_MANIFEST_REWRITE },
	{ "max-frame", required_argument, NULL, OPT_MAX_FRAME },
	{ "max-key", required_argument, NULL, OPT_MAX_KEY },
	{ "max-value", required_argument, NULL, OPT_MAX_VALUE },
	{ "max-inflight", required_argument, NULL, OPT_MAX_INFLIGHT },
	{ "max-connections", required_argument, NULL, OPT_MAX_CONNS },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

int config_parse(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
	uint64_t v;
	int opt;
	int idx = 0;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", long_options, &idx)) != -1) {
		switch (opt) {
		case OPT_LISTEN:
			if (config_parse_address(optarg, c->listen_host,
						 sizeof c->listen_host, &c->listen_port)) {
				snprintf(err, errlen, "--listen: expected HOST:PORT, got '%s'", optarg);
				return -EINVAL;
			}
			break;
		case OPT_RESP_LISTEN:
			if (config_parse_address(optarg, c->resp_host,
						 sizeof c->resp_host, &c->resp_port)) {
				snprintf(err, errlen, "--resp-listen: expected HOST:PORT, got '%s'",
					 optarg);
				return -EINVAL;
			}
			break;
		case OPT_DATA_DIR:
			if (!*optarg || strlen(optarg) >= sizeof c->data_dir - 64) {
				snprintf(err, errlen, "--data-dir: empty or too long");
				return -EINVAL;
			}
			strcpy(c->data_dir, optarg);
			break;
		case OPT_CORES:
			if (parse_count(optarg, 1, 1024, &v))
				goto bad_value;
			c->cores = (unsigned)v;
			break;
		case OPT_SHARDS:
			if (parse_count(optarg, 1, 16384, &v))
				goto bad_value;
			c->shards = (unsigned)v;
			break;
		case OPT_MEMTABLE:
			if (parse_count(optarg, 64 << 10, 64ull << 30, &v))
				goto bad_value;
			c->memtable_size = v;
			break;
		case OPT_MANIFEST_REWRITE:
			if (parse_count(optarg, 1024, 1ull << 40, &v))
				goto bad_value;
			c->manifest_rewrite_min = v;
			break;
		case OPT_BLOCK_CACHE:
			if (parse_count(optarg, 0, 1ull << 40, &v))
				goto bad_value;
			c->block_cache_size = v;
			break;
		case OPT_MAX_FRAME:
			if (parse_count(optarg, 1024, 64u << 20, &v))
				goto bad_value;
			c->max_frame = (uint32_t)v;
			break;
		case OPT_MAX_KEY:
			if (parse_count(optarg, 1, 64u << 10, &v))
				goto bad_value;
			c->max_key = (uint32_t)v;
			break;
		case OPT_MAX_VALUE:
			if (parse_count(optarg, 0, 32u << 20, &v))
				goto bad_value;
			c->max_value = (uint32_t)v;
			break;
		case OPT_MAX_INFLIGHT:
			if (parse_count(optarg, 1, 1u << 20, &v))
				goto bad_value;
			c->max_inflight = (uint32_t)v;
			break;
		case OPT_MAX_CONNS:
			if (parse_count(optarg, 1, 1u << 20, &v))
				goto bad_value;
			c->max_connections = (uint32_t)v;
			break;
		case OPT_LOG_LEVEL:
			if (!strcmp(optarg, "debug"))
				c->log_level = LOG_DEBUG;
			else if (!strcmp(optarg, "info"))
				c->log_level = LOG_INFO;
			else if (!strcmp(optarg, "warn"))
				c->log_level = LOG_WARN;
			else if (!strcmp(optarg, "error"))
				c->log_level = LOG_ERROR;
			else
				goto bad_value;
			break;
		case OPT_HELP:
			config_usage(stdout, argv[0]);
			return 1;
		default:
			snprintf(err, errlen, "unknown option or missing value: '%s'",
				 argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	if (c->max_key + c->max_value + 64 > c->max_frame) {
		snprintf(err, errlen, "--max-frame must exceed --max-key + --max-value");
		return -EINVAL;
	}
	return 0;

bad_value:
	snprintf(err, errlen, "--%s: bad value '%s'", long_options[idx].name, optarg);
	return -EINVAL;
}
