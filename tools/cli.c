/*
 * The ringkv CLI's shared helpers (tools/cli.h): errors reported the same
 * way by every command, and the option parsing that the dispatcher
 * (ringkv.c) and each command's own option hook use.
 */
#include "tools/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool cli_offline(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return true;
}

int cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("ringkv: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see ringkv --help)\n", stderr);
	return CLI_EXIT_USAGE;
}

static const char *last_error(const struct cli *cli)
{
	return cli->router ? rkv_router_last_error(cli->router) : rkv_last_error(cli->client);
}

int cli_report(struct cli *cli, int rc, const char *what)
{
	if (rc == -ETIMEDOUT) {
		fprintf(stderr, "ringkv: %s: timed out: %s\n", what, last_error(cli));
		return CLI_EXIT_TIMEOUT;
	}
	if (rc > 0)
		fprintf(stderr, "ringkv: %s: %s: %s\n", what, rkv_status_name(rc),
			last_error(cli));
	else
		fprintf(stderr, "ringkv: %s: %s\n", what, last_error(cli));
	return CLI_EXIT_ERROR;
}

int cli_finish_stdout(const char *what)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "ringkv: %s: stdout: %s\n", what, strerror(errno));
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

int cli_parse_leading_count(const char *text, uint64_t *out, const char **end)
{
	char *stop;
	unsigned long long v;

	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(text, &stop, 10);
	if (errno)
		return -1;
	*out = v;
	*end = stop;
	return 0;
}

int cli_parse_count(const char *text, uint64_t *out)
{
	const char *end;
	uint64_t v;

	if (cli_parse_leading_count(text, &v, &end) != 0 || *end)
		return -1;
	*out = v;
	return 0;
}

int cli_take_option(int argc, char **argv, int *i, const char *long_name, char short_name,
		    bool attached, const char **value)
{
	const char *arg = argv[*i];
	size_t n = strlen(long_name);

	if (arg[0] != '-')
		return 0;
	if (arg[1] == '-') {
		if (strncmp(arg + 2, long_name, n) != 0)
			return 0;
		if (arg[2 + n] == '=') {
			*value = arg + 3 + n;
			return 1;
		}
		if (arg[2 + n] != '\0')
			return 0;
	} else {
		if (short_name == 0 || arg[1] != short_name)
			return 0;
		if (arg[2] != '\0') {
			if (!attached)
				return 0;
			*value = arg + 2;
			return 1;
		}
	}
	if (*i + 1 >= argc)
		return CLI_OPT_MISSING;
	*value = argv[++*i];
	return 1;
}

bool cli_is_flag(const char *arg, const char *long_name, char short_name)
{
	return (arg[0] == '-' && arg[1] == '-' && strcmp(arg + 2, long_name) == 0) ||
	       (short_name && arg[0] == '-' && arg[1] == short_name && arg[2] == '\0');
}

int cli_flag(char **argv, int i, const char *name, bool *on)
{
	if (!cli_is_flag(argv[i], name, 0))
		return 0;
	*on = true;
	return 1;
}

int cli_value(int argc, char **argv, int *i, const char *name, const char **value)
{
	return cli_take_option(argc, argv, i, name, 0, false, value);
}
