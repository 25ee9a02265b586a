/*
 * ringkvd's configuration: embedded defaults overridden by command-line flags.
 * Parsed once in main() before any reactor starts, then read-only.
 */
#ifndef RINGKV_CORE_CONFIG_H
#define RINGKV_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_ADDR_MAX 256

struct config {
	char listen_host[CONFIG_ADDR_MAX]; /* native protocol address, "127.0.0.1" */
	uint16_t listen_port;              /* 7070; 0 = any free port */
	char resp_host[CONFIG_ADDR_MAX];   /* RESP2 address; "" = off */
	uint16_t resp_port;
	char data_dir[4096];               /* "./data" */
	unsigned cores;                    /* 0 = every CPU of the process cpuset */
	unsigned shards;                   /* 0 = one per core, on first start only */
	uint64_t memtable_size;            /* per shard, bytes (64 MiB) */
	uint64_t manifest_rewrite_min;     /* rewrite a manifest past this (1 MiB) */
	uint64_t block_cache_size;         /* SSTable block cache per core, bytes (256 MiB) */
	uint32_t max_frame;                /* client frame payload limit (4 MiB) */
	uint32_t max_key;                  /* 4 KiB */
	uint32_t max_value;                /* 1 MiB */
	uint32_t max_inflight;             /* requests in flight per connection (1024) */
	uint32_t max_connections;          /* per core (4096) */
	int log_level;                     /* enum log_level */
};

void config_defaults(struct config *c);

/*
 * Parses argv into `c` (which holds defaults). Returns 0; 1 when --help was
 * asked (usage already printed to stdout); -EINVAL on a bad flag or value, with
 * the reason in `err` (the caller prints it and the usage, then exits 2).
 */
int config_parse(struct config *c, int argc, char **argv, char *err, size_t errlen);

void config_usage(FILE *out, const char *prog);

/*
 * Parses "HOST:PORT" or "[V6]:PORT". 0 or -EINVAL. Exposed for the tools.
 */
int config_parse_address(const char *text, char *host, size_t hostlen, uint16_t *port);

/* Parses "123", "64K", "64MiB", "1G"... into bytes. 0 or -EINVAL. */
int config_parse_size(const char *text, uint64_t *out);

#endif
