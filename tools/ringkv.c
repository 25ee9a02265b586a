/*
 * ringkv: the command-line client. Data commands (put, get, del) over
 * libringkv; one connection, one request per run.
 *
 * Exit status, for scripts: 0 success; 1 the key does not exist (get, del);
 * 2 anything else (usage, connection, server error), with a message on
 * stderr. Values are written to stdout byte for byte, then a newline.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/libringkv.h"

#define DEFAULT_ADDRESS "127.0.0.1:7070"

enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_MISSING = 1,
	CLI_EXIT_ERROR = 2,
};

struct command {
	const char *name;
	int argc;         /* arguments after the command name */
	const char *args; /* for the usage text */
	const char *help;
	int (*run)(struct rkv_client *c, char **argv);
};

static int report(struct rkv_client *c, int rc, const char *what, const char *key)
{
	if (rc == RKV_STATUS_OK)
		return CLI_EXIT_OK;
	if (rc == RKV_STATUS_NOT_FOUND) {
		fprintf(stderr, "ringkv: %s: key '%s' not found\n", what, key);
		return CLI_EXIT_MISSING;
	}
	if (rc > 0)
		fprintf(stderr, "ringkv: %s: %s: %s\n", what, rkv_status_name(rc),
			rkv_last_error(c));
	else
		fprintf(stderr, "ringkv: %s: %s\n", what, rkv_last_error(c));
	return CLI_EXIT_ERROR;
}

static int cmd_put(struct rkv_client *c, char **argv)
{
	int rc = rkv_put(c, argv[0], strlen(argv[0]), argv[1], strlen(argv[1]));

	return report(c, rc, "put", argv[0]);
}

static int cmd_get(struct rkv_client *c, char **argv)
{
	void *value = NULL;
	size_t len = 0;
	int rc = rkv_get(c, argv[0], strlen(argv[0]), &value, &len);

	if (rc == RKV_STATUS_OK) {
		int bad = fwrite(value, 1, len, stdout) != len || putchar('\n') == EOF ||
			  fflush(stdout) != 0;

		free(value);
		if (bad) {
			perror("ringkv: get: stdout");
			return CLI_EXIT_ERROR;
		}
		return CLI_EXIT_OK;
	}
	return report(c, rc, "get", argv[0]);
}

static int cmd_del(struct rkv_client *c, char **argv)
{
	int rc = rkv_del(c, argv[0], strlen(argv[0]));

	return report(c, rc, "del", argv[0]);
}

static const struct command commands[] = {
	{ "put", 2, "KEY VALUE", "store VALUE under KEY", cmd_put },
	{ "get", 1, "KEY", "print the value of KEY (exit 1 if missing)", cmd_get },
	{ "del", 1, "KEY", "delete KEY", cmd_del },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: ringkv [-a HOST:PORT] COMMAND [ARGS]\n\n"
		     "options:\n"
		     "  -a, --address HOST:PORT  server to talk to (default %s)\n"
		     "  -h, --help               show this help\n\n"
		     "commands:\n",
		DEFAULT_ADDRESS);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %s %-10s %s\n", commands[i].name, commands[i].args,
			commands[i].help);
	fprintf(out, "\nexit status: 0 ok, 1 key not found, 2 other errors\n");
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "address", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *address = DEFAULT_ADDRESS;
	const struct command *cmd = NULL;
	struct rkv_client *c;
	char err[256];
	int opt, rc;

	/* '+': stop at the command, so values may start with '-'. */
	while ((opt = getopt_long(argc, argv, "+a:h", options, NULL)) != -1) {
		switch (opt) {
		case 'a':
			address = optarg;
			break;
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		default:
			usage(stderr);
			return CLI_EXIT_ERROR;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return CLI_EXIT_ERROR;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			cmd = &commands[i];
	if (cmd == NULL || argc - optind - 1 != cmd->argc) {
		if (cmd == NULL)
			fprintf(stderr, "ringkv: unknown command '%s'\n", argv[optind]);
		else
			fprintf(stderr, "ringkv: %s takes %s\n", cmd->name, cmd->args);
		usage(stderr);
		return CLI_EXIT_ERROR;
	}

	rc = rkv_connect(address, &c, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "ringkv: %s\n", err);
		return CLI_EXIT_ERROR;
	}
	rc = cmd->run(c, argv + optind + 1);
	rkv_close(c);
	return rc;
}
