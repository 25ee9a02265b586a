/*
 * ringkv: the command-line client. This file is the dispatcher: the global
 * options, the table of commands, --help, and the connection a command
 * gets. Each command is declared in the file of its command (struct
 * cli_command, tools/cli.h): cli_data.c (get, put, del, scan, ping over
 * libringkv; one connection per run), cluster_show.c, node_cmd.c (node
 * health reads the node's admin HTTP port instead and opens no client
 * connection), backup_cmd.c, shard_move.c, rebalance.c, user.c: its name,
 * its arguments for --help and for checking, its own options and its
 * function. Global options (-a, -t, -w, --json) are taken anywhere on the
 * line; after the command, a word that is neither a global option nor one
 * of the command's is an argument whatever it starts with (`put k -v`
 * stores "-v"), and `--` ends the options altogether.
 *
 * Exit status, for scripts (CLI_EXIT_*, tools/cli.h; --help prints it too):
 * 0 success; 1 the key does not exist (get, del), or the node is alive but
 * not ready (node health); 2 usage error (one line on stderr naming the bad
 * argument); 3 any other error (cannot connect, the server answered an
 * error, stdout or stdin failed); 4 timeout.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/libringkv.h"
#include "tools/version.h"

#define DEFAULT_ADDRESS "127.0.0.1:7070"
#define ADDRESS_ENV "RINGKV_ADDR"
#define DEFAULT_TIMEOUT_MS 5000

/* Every command; --help lists them in this order. */
static const struct cli_command *const commands[] = {
	&cli_command_get,   &cli_command_put,     &cli_command_del,
	&cli_command_scan,  &cli_command_ping,    &cli_command_cluster,
	&cli_command_node,  &cli_command_backup,  &cli_command_shard,
	&cli_command_rebalance, &cli_command_user,
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

/* ---- routing: get, put and del go to the key's leader in a cluster ----- */

/*
 * When the node asked belongs to a cluster of several nodes (and --no-route
 * is not given), opens a router seeded with it. A node too old to know the
 * cluster map request, or a one-node cluster, keeps the plain connection.
 */
static void route_setup(struct cli *cli)
{
	struct rkv_cluster_map *map = NULL;
	char err[256];

	if (cli->no_route || rkv_cluster_map(cli->client, &map) != 0)
		return;
	if (map->node_count > 1 &&
	    rkv_router_open(cli->address, cli->timeout_ms, &cli->router, err, sizeof err) == 0)
		rkv_router_set_timeout(cli->router, cli->timeout_ms);
	rkv_cluster_map_free(map);
}

/* ---- the command line -------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: ringkv [OPTIONS] COMMAND [ARGS] [OPTIONS]\n\n"
		"options (before or after the command; -- ends them):\n"
		"  -a, --address HOST:PORT  server (default $" ADDRESS_ENV
		", else %s)\n"
		"  -t, --timeout SECONDS    bound on connecting and on each request\n"
		"                           (default %d; 0 = wait forever)\n"
		"  -w, --format text|json   output format (default text)\n"
		"      --json               same as -w json\n"
		"      --no-route           get/put/del through -a's node only (by\n"
		"                           default they go to the key's leader)\n"
		"      --tls-ca FILE        speak TLS, accepting only a server whose\n"
		"                           certificate chains to this CA and names the\n"
		"                           host connected to (default $RINGKV_TLS_CA;\n"
		"                           unset: plaintext)\n"
		"      --auth-file FILE     authenticate (ringkvd --users) with the user on\n"
		"                           the file's first line and the password on its\n"
		"                           second (default $RINGKV_AUTH_FILE, else\n"
		"                           $RINGKV_USER and $RINGKV_PASSWORD)\n"
		"  -h, --help               show this help\n"
		"  -V, --version            show the version\n\n"
		"commands:\n",
		DEFAULT_ADDRESS, DEFAULT_TIMEOUT_MS / 1000);
	for (size_t i = 0; i < COMMAND_COUNT; i++) {
		char synopsis[64];
		const char *line = commands[i]->help;

		snprintf(synopsis, sizeof(synopsis), "%s %s", commands[i]->name,
			 commands[i]->args);
		/* Help lines after the first are indented under the first. */
		fprintf(out, "  %-28s ", synopsis);
		for (const char *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1)
			fprintf(out, "%.*s\n  %-28s ", (int)(nl - line), line, "");
		fprintf(out, "%s\n", line);
	}
	fprintf(out, "\nexit status: 0 ok, 1 key not found (node health: not ready),\n"
		     "2 usage error, 3 other error (cannot connect), 4 timeout\n");
}

/* ---- the command line -------------------------------------------------- */


static int parse_timeout(const char *text)
{
	char *end;
	double seconds;

	errno = 0;
	seconds = strtod(text, &end);
	if (errno || end == text || *end || !(seconds >= 0) || seconds > 86400)
		return -1;
	if (seconds > 0 && seconds < 0.001)
		return 1;
	return (int)(seconds * 1000 + 0.5);
}

enum parse_result {
	PARSE_RUN,
	PARSE_HELP,
	PARSE_VERSION,
};

/*
 * Parses the whole line: global options anywhere, the command, its options
 * and its arguments (packed at the front of args, *nargs of them). Returns
 * a parse_result, or -CLI_EXIT_USAGE after printing the one-line error.
 */
static int parse(struct cli *cli, int argc, char **argv, const struct cli_command **cmd,
		 char **args, int *nargs)
{
	bool options_done = false;
	enum parse_result result = PARSE_RUN;

	*cmd = NULL;
	*nargs = 0;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value = NULL;
		int taken;

		if (options_done || arg[0] != '-' || arg[1] == '\0')
			goto positional;
		if (strcmp(arg, "--") == 0) {
			options_done = true;
			continue;
		}
		if (cli_is_flag(arg, "help", 'h')) {
			result = PARSE_HELP;
			continue;
		}
		if (cli_is_flag(arg, "version", 'V')) {
			if (result == PARSE_RUN)
				result = PARSE_VERSION;
			continue;
		}
		if (cli_is_flag(arg, "json", 0)) {
			cli->format = CLI_JSON;
			continue;
		}
		if (cli_is_flag(arg, "no-route", 0)) {
			cli->no_route = true;
			continue;
		}
		if ((taken = cli_take_option(argc, argv, &i, "address", 'a', !*cmd, &value)) != 0) {
			if (taken == CLI_OPT_MISSING)
				goto err_missing;
			cli->address = value;
			continue;
		}
		if ((taken = cli_take_option(argc, argv, &i, "tls-ca", 0, !*cmd, &value)) != 0) {
			if (taken == CLI_OPT_MISSING)
				goto err_missing;
			cli->tls_ca = value;
			continue;
		}
		if ((taken = cli_take_option(argc, argv, &i, "auth-file", 0, !*cmd, &value)) != 0) {
			if (taken == CLI_OPT_MISSING)
				goto err_missing;
			cli->auth_file = value;
			continue;
		}
		if ((taken = cli_take_option(argc, argv, &i, "timeout", 't', !*cmd, &value)) != 0) {
			if (taken == CLI_OPT_MISSING)
				goto err_missing;
			cli->timeout_ms = parse_timeout(value);
			if (cli->timeout_ms < 0)
				return -cli_usage_error("--timeout takes seconds (e.g. 5 or 0.5), "
						        "not '%s'", value);
			continue;
		}
		if ((taken = cli_take_option(argc, argv, &i, "format", 'w', !*cmd, &value)) != 0) {
			if (taken == CLI_OPT_MISSING)
				goto err_missing;
			if (strcmp(value, "json") == 0)
				cli->format = CLI_JSON;
			else if (strcmp(value, "text") == 0)
				cli->format = CLI_TEXT;
			else
				return -cli_usage_error("--format takes text or json, not '%s'",
						        value);
			continue;
		}
		if (*cmd && (*cmd)->option && (taken = (*cmd)->option(argc, argv, &i)) != 0) {
			if (taken == CLI_OPT_MISSING)
				goto err_missing;
			if (taken == CLI_OPT_BAD)
				return -CLI_EXIT_USAGE;
			continue;
		}
		if (*cmd == NULL)
			return -cli_usage_error("unknown option '%s'", arg);
		/* After the command, any other word is an argument: put k -v. */
positional:
		if (*cmd == NULL) {
			for (size_t k = 0; k < COMMAND_COUNT && !*cmd; k++)
				if (strcmp(arg, commands[k]->name) == 0)
					*cmd = commands[k];
			if (*cmd == NULL && result == PARSE_RUN)
				return -cli_usage_error("unknown command '%s'", arg);
			continue;
		}
		args[(*nargs)++] = argv[i];
		continue;
err_missing:
		return -cli_usage_error("%s needs a value", arg);
	}
	if (result != PARSE_RUN)
		return result;
	if (*cmd == NULL)
		return -cli_usage_error("no command given");
	if (*nargs > (*cmd)->max_args)
		return -cli_usage_error("%s takes %s; unexpected '%s'", (*cmd)->name,
				        (*cmd)->max_args ? (*cmd)->args : "no arguments",
				        args[(*cmd)->max_args]);
	if (*nargs < (*cmd)->min_args)
		return -cli_usage_error("%s takes %s", (*cmd)->name, (*cmd)->args);
	if ((*cmd)->check) {
		int rc = (*cmd)->check(cli, *nargs, args);

		if (rc != CLI_EXIT_OK)
			return -rc;
	}
	return PARSE_RUN;
}

int main(int argc, char **argv)
{
	struct cli cli = {
		.address = DEFAULT_ADDRESS,
		.timeout_ms = DEFAULT_TIMEOUT_MS,
		.format = CLI_TEXT,
	};
	const char *env = getenv(ADDRESS_ENV);
	const struct cli_command *cmd;
	char **args;
	char err[256];
	int nargs, rc;

	if (env && env[0])
		cli.address = env;
	args = calloc((size_t)argc + 1, sizeof(*args));
	if (args == NULL) {
		fprintf(stderr, "ringkv: out of memory\n");
		return CLI_EXIT_ERROR;
	}
	rc = parse(&cli, argc, argv, &cmd, args, &nargs);
	if (rc < 0) {
		free(args);
		return -rc;
	}
	if (rc == PARSE_HELP) {
		usage(stdout);
		free(args);
		return CLI_EXIT_OK;
	}
	if (rc == PARSE_VERSION) {
		version_print(stdout, "ringkv");
		free(args);
		return CLI_EXIT_OK;
	}

	/* Every connection of the process, the router's too (RINGKV_TLS_CA
	 * otherwise, read by libringkv at the first connect). */
	if (cli.tls_ca && rkv_tls_set_ca(cli.tls_ca, err, sizeof(err)) != 0) {
		fprintf(stderr, "ringkv: %s\n", err);
		free(args);
		return CLI_EXIT_USAGE;
	}
	if (cli.auth_file && rkv_auth_set_file(cli.auth_file, err, sizeof(err)) != 0) {
		fprintf(stderr, "ringkv: %s\n", err);
		free(args);
		return CLI_EXIT_USAGE;
	}
	/* Offline commands (a backup restore: files only): no server. */
	if (cmd->offline && cmd->offline(nargs, args)) {
		rc = cmd->run(&cli, nargs, args);
		free(args);
		return rc;
	}
	rc = rkv_connect_timeout(cli.address, cli.timeout_ms, &cli.client, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "ringkv: %s\n", err);
		free(args);
		if (rc == -EINVAL)
			return CLI_EXIT_USAGE; /* a malformed address */
		return rc == -ETIMEDOUT ? CLI_EXIT_TIMEOUT : CLI_EXIT_ERROR;
	}
	rkv_set_timeout(cli.client, cli.timeout_ms);
	if (cmd->routed)
		route_setup(&cli);
	rc = cmd->run(&cli, nargs, args);
	rkv_router_close(cli.router);
	rkv_close(cli.client);
	free(args);
	return rc;
}
