/*
 * `ringkv shard move`: see tools/shard_move.c.
 */
#ifndef RINGKV_TOOLS_SHARD_MOVE_H
#define RINGKV_TOOLS_SHARD_MOVE_H

#include <stdbool.h>
#include <stdint.h>

enum shard_move_exit {
	SHARD_MOVE_EXIT_OK = 0,       /* done; without --wait: started */
	SHARD_MOVE_EXIT_REFUSED = 1,  /* refused or failed, with the reason */
	SHARD_MOVE_EXIT_USAGE = 2,    /* bad arguments, or no node reachable */
};

struct shard_move_args {
	const char *address;          /* any node of the cluster */
	int timeout_ms;               /* connect and each request */
	bool json;
	bool wait;
	uint32_t shard;
	uint64_t from, to;            /* cancel: to names the target, or 0 */
	uint32_t to_core;
	bool cancel;                  /* --cancel: roll the move back */
	uint64_t rate;                /* --rate: the move's snapshot cap; 0: none */
	bool quiet;                   /* nothing on stdout (node drain's --json);
				       * the reasons still go to stderr */
	bool follow;                  /* start nothing: follow the move of the
				       * shard from `from` to `to` under way
				       * (rebalance run again after its CLI died) */
};

int shard_move_run(const struct shard_move_args *a);

/* The reason (printf FMT) on stderr ("ringkv: COMMAND: TEXT"), and with
 * json also an object {KEY: ID, "done": false, "error": TEXT} on stdout
 * (without KEY when key is NULL). */
__attribute__((format(printf, 5, 6))) void
shard_move_complain(const char *command, bool json, const char *key, uint64_t id,
		    const char *fmt, ...);

/* CLOCK_MONOTONIC in milliseconds, and a sleep of ms milliseconds: the
 * waits of the CLI's cluster commands. */
int64_t shard_move_now_ms(void);
void shard_move_sleep_ms(int ms);

/* "1048576", "512k", "64M/s", "1GiB": bytes per second (> 0). 0 or -1. */
int shard_move_parse_rate(const char *text, uint64_t *rate);

/* A --rate option's value (NULL: not given): CLI_EXIT_OK, or CLI_EXIT_USAGE
 * after saying why on stderr. */
int shard_move_check_rate(const char *text);

/* "NODE" or "NODE:CORE" (NODE >= 1). 0, or -1 when malformed. */
int shard_move_parse_target(const char *text, uint64_t *node, uint32_t *core, bool *has_core);

#endif
