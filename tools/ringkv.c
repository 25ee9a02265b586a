/*
 * ringkv: the command-line client. Data commands (put, get, del, scan) over
 * libringkv; one connection per run.
 *
 * Exit status, for scripts: 0 success; 1 the key does not exist (get, del);
 * 2 anything else (usage, connection, server error), with a message on
 * stderr. A get writes the value to stdout byte for byte, then a newline. A
 * scan writes one `key<TAB>value` line per pair, with tab, newline,
 * backslash and every byte outside printable ASCII written as \xNN, so
 * each line is one pair whatever the bytes.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/libringkv.h"

#define DEFAULT_ADDRESS "127.0.0.1:7070"
#define SCAN_PAGE 1000u /* pairs asked for per request */

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

/* scan --limit: pairs to print in all; 0 = every pair of the range. */
static uint64_t scan_limit;

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

/* Writes bytes with tab, newline, backslash and non-printables as \xNN. */
static void put_escaped(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			putchar(p[i]);
		else
			printf("\\x%02x", p[i]);
	}
}

/*
 * Prints every pair of [START, END) (empty END: no bound), paging with the
 * last key plus a zero byte until an answer has no pairs or --limit pairs
 * are out.
 */
static int cmd_scan(struct rkv_client *c, char **argv)
{
	const char *end = argv[1];
	size_t end_len = strlen(end);
	uint8_t *cursor;
	size_t cursor_len = strlen(argv[0]);
	uint64_t printed = 0;
	int rc = RKV_STATUS_OK;

	cursor = malloc(cursor_len + 1);
	if (cursor == NULL) {
		perror("ringkv: scan");
		return CLI_EXIT_ERROR;
	}
	memcpy(cursor, argv[0], cursor_len);
	for (;;) {
		struct rkv_kv *pairs = NULL;
		size_t count = 0;
		uint32_t page = SCAN_PAGE;

		if (scan_limit && scan_limit - printed < page)
			page = (uint32_t)(scan_limit - printed);
		rc = rkv_scan(c, cursor, cursor_len, end, end_len, page, &pairs, &count);
		if (rc != RKV_STATUS_OK)
			break;
		for (size_t i = 0; i < count; i++) {
			put_escaped(pairs[i].key, pairs[i].key_len);
			putchar('\t');
			put_escaped(pairs[i].value, pairs[i].value_len);
			putchar('\n');
		}
		printed += count;
		if (count > 0) {
			/* The next page starts just past the last key. */
			const struct rkv_kv *last = &pairs[count - 1];
			uint8_t *next = realloc(cursor, last->key_len + 1);

			if (next == NULL) {
				rkv_scan_free(pairs);
				free(cursor);
				perror("ringkv: scan");
				return CLI_EXIT_ERROR;
			}
			cursor = next;
			if (last->key_len)
				memcpy(cursor, last->key, last->key_len);
			cursor[last->key_len] = 0;
			cursor_len = last->key_len + 1;
		}
		rkv_scan_free(pairs);
		if (count == 0 || (scan_limit && printed >= scan_limit))
			break;
	}
	free(cursor);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("ringkv: scan: stdout");
		return CLI_EXIT_ERROR;
	}
	if (rc == RKV_STATUS_NOT_FOUND)
		rc = RKV_STATUS_INTERNAL; /* a scan never answers NOT_FOUND */
	return report(c, rc, "scan", argv[0]);
}

static const struct command commands[] = {
	{ "put", 2, "KEY VALUE", "store VALUE under KEY", cmd_put },
	{ "get", 1, "KEY", "print the value of KEY (exit 1 if missing)", cmd_get },
	{ "del", 1, "KEY", "delete KEY", cmd_del },
	{ "scan", 2, "START END [--limit N]",
	  "print key<TAB>value for keys in [START, END); END \"\" = no end", cmd_scan },
};

/*
 * Takes `--limit N` / `--limit=N` out of a scan's arguments. Returns the
 * count of arguments left, or -1 on a bad limit.
 */
static int take_scan_options(int argc, char **argv)
{
	int out = 0;

	for (int i = 0; i < argc; i++) {
		const char *text = NULL;
		char *endp;
		unsigned long long v;

		if (strcmp(argv[i], "--limit") == 0) {
			if (i + 1 == argc)
				return -1;
			text = argv[++i];
		} else if (strncmp(argv[i], "--limit=", 8) == 0) {
			text = argv[i] + 8;
		} else {
			argv[out++] = argv[i];
			continue;
		}
		errno = 0;
		v = strtoull(text, &endp, 10);
		if (errno || endp == text || *endp || text[0] == '-')
			return -1;
		scan_limit = v;
	}
	return out;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: ringkv [-a HOST:PORT] COMMAND [ARGS]\n\n"
		     "options:\n"
		     "  -a, --address HOST:PORT  server to talk to (default %s)\n"
		     "  -h, --help               show this help\n\n"
		     "commands:\n",
		DEFAULT_ADDRESS);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %s %-22s %s\n", commands[i].name, commands[i].args,
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
	int opt, rc, nargs;

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
	nargs = argc - optind - 1;
	if (cmd && cmd->run == cmd_scan) {
		nargs = take_scan_options(nargs, argv + optind + 1);
		if (nargs < 0) {
			fprintf(stderr, "ringkv: scan: --limit takes a count\n");
			return CLI_EXIT_ERROR;
		}
	}
	if (cmd == NULL || nargs != cmd->argc) {
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
