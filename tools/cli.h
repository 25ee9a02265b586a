/*
 * What the ringkv CLI's commands share (tools/ringkv.c is the dispatcher):
 * the exit statuses, the parsed global options and the connection, the
 * declaration of a command (struct cli_command, one per command, each in
 * the file of its command), and the helpers that parse options and report
 * errors the same way for every command.
 */
#ifndef RINGKV_TOOLS_CLI_H
#define RINGKV_TOOLS_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "tools/libringkv.h"

/* Exit statuses, for scripts; --help prints them too. */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_MISSING = 1,  /* the key does not exist; node health: not ready */
	CLI_EXIT_USAGE = 2,
	CLI_EXIT_ERROR = 3,
	CLI_EXIT_TIMEOUT = 4,
};

enum cli_format {
	CLI_TEXT,
	CLI_JSON,
};

/* What the global options said, and the connection once open. */
struct cli {
	const char *address;
	const char *tls_ca;   /* --tls-ca FILE: TLS, checked against this CA */
	const char *auth_file; /* --auth-file FILE: user and password lines */
	int timeout_ms;       /* connect and each request; 0 = none */
	enum cli_format format;
	struct rkv_client *client; /* NULL for a command that runs offline */
	bool no_route;        /* --no-route: talk to -a's node only */
	struct rkv_router *router; /* get/put/del of a cluster: to the leaders */
};

/* What a command's option hook returns besides 1 (taken) and 0 (not one
 * of its options). */
enum {
	CLI_OPT_MISSING = -1, /* the option's value is missing */
	CLI_OPT_BAD = -2,     /* a bad value: the usage error is printed */
};

struct cli_command {
	const char *name;
	const char *args;      /* for --help */
	const char *help;
	int min_args, max_args;
	bool routed;           /* a key's command: to the key's leader in a cluster */
	/* Optional: whether it runs without connecting to -a (NULL: never). */
	bool (*offline)(int argc, char **argv);
	/* Optional: takes argv[*i], after the command, if it is one of the
	 * command's own options (advancing *i past its value): 1, 0, or a
	 * CLI_OPT_* code. */
	int (*option)(int argc, char **argv, int *i);
	/* Optional: checks the arguments before connecting; 0 or an exit status. */
	int (*check)(const struct cli *cli, int argc, char **argv);
	int (*run)(struct cli *cli, int argc, char **argv);
};

/* The commands, in the files of their commands; --help lists them in the
 * order of ringkv.c's table. */
extern const struct cli_command cli_command_get, cli_command_put, cli_command_del,
	cli_command_scan, cli_command_ping, cli_command_cluster, cli_command_node,
	cli_command_backup, cli_command_shard, cli_command_rebalance, cli_command_user;

/* An `offline` hook for the commands that never connect to -a. */
bool cli_offline(int argc, char **argv);

/* "ringkv: MESSAGE (see ringkv --help)" on stderr; CLI_EXIT_USAGE. */
__attribute__((format(printf, 1, 2))) int cli_usage_error(const char *fmt, ...);

/* The message of a failed call on stderr ("ringkv: WHAT: ..."): its exit
 * status (CLI_EXIT_TIMEOUT or CLI_EXIT_ERROR). */
int cli_report(struct cli *cli, int rc, const char *what);

/* Flushes stdout: CLI_EXIT_OK, or CLI_EXIT_ERROR with the reason printed. */
int cli_finish_stdout(const char *what);

/* A decimal count ("0", "12"; no sign, no space): 0, or -1. */
int cli_parse_count(const char *text, uint64_t *out);

/* A decimal count at the start of text, *end set after its last digit
 * ("7:1" gives 7 and ":1"): 0, or -1 when text does not start with a digit
 * or the count passes 2^64 - 1. */
int cli_parse_leading_count(const char *text, uint64_t *out, const char **end);

/*
 * If argv[*i] is the option `long_name` (or `short_name`), takes its value
 * ("--x V", "--x=V", "-x V", and "-xV" when `attached` allows it) into
 * *value and advances *i past it. 1 matched, 0 not this option,
 * CLI_OPT_MISSING the value is missing.
 */
int cli_take_option(int argc, char **argv, int *i, const char *long_name, char short_name,
		    bool attached, const char **value);

/* Whether arg is the flag --long_name (or -short_name). */
bool cli_is_flag(const char *arg, const char *long_name, char short_name);

/* A command's flag --NAME: sets *on and returns 1 if argv[i] is it, else 0. */
int cli_flag(char **argv, int i, const char *name, bool *on);

/* A command's option --NAME VALUE (or --NAME=VALUE): cli_take_option. */
int cli_value(int argc, char **argv, int *i, const char *name, const char **value);

#endif
