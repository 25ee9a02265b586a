/*
 * The ringkv CLI's data commands over libringkv: get, put, del (to the
 * key's leader in a cluster unless --no-route), scan and ping.
 *
 * Text output: get writes the value byte for byte, then a newline; put
 * prints OK; del prints the number of keys deleted (1, or 0 with exit 1);
 * ping prints PONG; scan writes one `key<TAB>value` line per pair, with
 * tab, newline, backslash and every byte outside printable ASCII written as
 * \xNN, so each line is one pair whatever the bytes. JSON output (-w json):
 * see print_bytes_json.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli.h"

#define SCAN_PAGE 1000u                   /* pairs asked for per request */
#define STDIN_VALUE_MAX (64u << 20)       /* far above any server's value limit */

/* scan's options. */
static struct {
	uint64_t limit;       /* --limit: pairs in all; 0 = every pair */
	const char *prefix;   /* --prefix, or NULL */
} scan_opts;

/* ---- output ------------------------------------------------------------ */

/* Writes bytes with tab, newline, backslash and non-printables as \xNN. */
static void print_escaped(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			putchar(p[i]);
		else
			printf("\\x%02x", p[i]);
	}
}

/* Length of the UTF-8 sequence at p (1-4), or 0 when it is not valid
 * UTF-8 (overlong forms, surrogates and code points past U+10FFFF too). */
static size_t utf8_sequence(const uint8_t *p, size_t len)
{
	size_t n;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static bool utf8_valid(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len;) {
		size_t n = utf8_sequence(p + i, len - i);

		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

static void print_base64(const uint8_t *p, size_t len)
{
	static const char digits[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		putchar(digits[v >> 18 & 63]);
		putchar(digits[v >> 12 & 63]);
		putchar(i + 1 < len ? digits[v >> 6 & 63] : '=');
		putchar(i + 2 < len ? digits[v & 63] : '=');
	}
}

/*
 * Writes `"name":"text"` for bytes that are valid UTF-8 (quote, backslash
 * and control characters escaped), else `"name_base64":"..."`: JSON strings
 * are Unicode, keys and values are bytes, and a reader must never have to
 * guess which encoding a string is in.
 */
static void print_bytes_json(const char *name, const uint8_t *p, size_t len)
{
	if (!utf8_valid(p, len)) {
		printf("\"%s_base64\":\"", name);
		print_base64(p, len);
		putchar('"');
		return;
	}
	printf("\"%s\":\"", name);
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '"' || p[i] == '\\')
			printf("\\%c", p[i]);
		else if (p[i] == '\n')
			fputs("\\n", stdout);
		else if (p[i] == '\t')
			fputs("\\t", stdout);
		else if (p[i] < 0x20 || p[i] == 0x7f)
			printf("\\u%04x", p[i]);
		else
			putchar(p[i]);
	}
	putchar('"');
}

/* ---- commands ---------------------------------------------------------- */

/* Reads all of standard input into a malloc'd buffer. */
static int read_stdin(uint8_t **out, size_t *out_len)
{
	size_t cap = 64u << 10, len = 0;
	uint8_t *buf = malloc(cap);

	if (buf == NULL)
		goto err_nomem;
	for (;;) {
		size_t n = fread(buf + len, 1, cap - len, stdin);

		len += n;
		if (len < cap) {
			if (ferror(stdin)) {
				fprintf(stderr, "ringkv: put: stdin: %s\n", strerror(errno));
				free(buf);
				return CLI_EXIT_ERROR;
			}
			break; /* end of input */
		}
		if (cap >= STDIN_VALUE_MAX) {
			fprintf(stderr, "ringkv: put: the value on stdin exceeds %u MiB\n",
				STDIN_VALUE_MAX >> 20);
			free(buf);
			return CLI_EXIT_ERROR;
		}
		{
			uint8_t *bigger = realloc(buf, cap * 2);

			if (bigger == NULL)
				goto err_nomem;
			buf = bigger;
			cap *= 2;
		}
	}
	*out = buf;
	*out_len = len;
	return CLI_EXIT_OK;

err_nomem:
	free(buf);
	fprintf(stderr, "ringkv: put: out of memory reading stdin\n");
	return CLI_EXIT_ERROR;
}

static int cli_get(struct cli *cli, const char *key, size_t len, void **value,
		   size_t *value_len)
{
	if (cli->router)
		return rkv_router_get(cli->router, key, len, value, value_len);
	return rkv_get(cli->client, key, len, value, value_len);
}

static int cli_put(struct cli *cli, const char *key, size_t len, const void *value,
		   size_t value_len)
{
	if (cli->router)
		return rkv_router_put(cli->router, key, len, value, value_len);
	return rkv_put(cli->client, key, len, value, value_len);
}

static int cli_del(struct cli *cli, const char *key, size_t len)
{
	if (cli->router)
		return rkv_router_del(cli->router, key, len);
	return rkv_del(cli->client, key, len);
}

static int cmd_put(struct cli *cli, int argc, char **argv)
{
	const char *key = argv[0];
	uint8_t *stdin_value = NULL;
	const void *value = argv[1];
	size_t value_len = strlen(argv[1]);
	int rc;

	(void)argc;
	if (strcmp(argv[1], "-") == 0) {
		if (isatty(STDIN_FILENO))
			fputs("ringkv: put: reading the value from the terminal; end it with "
			      "Ctrl-D\n", stderr);
		rc = read_stdin(&stdin_value, &value_len);
		if (rc != CLI_EXIT_OK)
			return rc;
		value = stdin_value;
	}
	rc = cli_put(cli, key, strlen(key), value, value_len);
	free(stdin_value);
	if (rc != RKV_STATUS_OK)
		return cli_report(cli, rc, "put");
	puts(cli->format == CLI_JSON ? "{\"ok\":true}" : "OK");
	return cli_finish_stdout("put");
}

static int cmd_get(struct cli *cli, int argc, char **argv)
{
	const char *key = argv[0];
	void *value = NULL;
	size_t len = 0;
	int rc = cli_get(cli, key, strlen(key), &value, &len);

	(void)argc;
	if (rc == RKV_STATUS_NOT_FOUND) {
		if (cli->format != CLI_JSON) {
			fprintf(stderr, "ringkv: get: key '%s' not found\n", key);
			return CLI_EXIT_MISSING;
		}
		putchar('{');
		print_bytes_json("key", (const uint8_t *)key, strlen(key));
		puts(",\"found\":false}");
		rc = cli_finish_stdout("get");
		return rc == CLI_EXIT_OK ? CLI_EXIT_MISSING : rc;
	}
	if (rc != RKV_STATUS_OK)
		return cli_report(cli, rc, "get");
	if (cli->format == CLI_JSON) {
		putchar('{');
		print_bytes_json("key", (const uint8_t *)key, strlen(key));
		fputs(",\"found\":true,", stdout);
		print_bytes_json("value", value, len);
		puts("}");
	} else {
		fwrite(value, 1, len, stdout);
		putchar('\n');
	}
	free(value);
	return cli_finish_stdout("get");
}

/*
 * The native DELETE answers OK whether or not the key held a value (deletes
 * are idempotent), so the count comes from a GET first: NOT_FOUND prints 0
 * and sends no DELETE. A writer between the two calls can make the count
 * stale, never the delete wrong. A key whose stored value fails its
 * checksum (DATA_LOSS) exists and is deleted: that is how one removes it.
 */
static int cmd_del(struct cli *cli, int argc, char **argv)
{
	const char *key = argv[0];
	int rc = cli_get(cli, key, strlen(key), NULL, NULL);
	int deleted = 0;

	(void)argc;
	if (rc == RKV_STATUS_OK || rc == RKV_STATUS_DATA_LOSS) {
		rc = cli_del(cli, key, strlen(key));
		deleted = rc == RKV_STATUS_OK;
	}
	if (rc != RKV_STATUS_OK && rc != RKV_STATUS_NOT_FOUND)
		return cli_report(cli, rc, "del");
	if (cli->format == CLI_JSON)
		printf("{\"deleted\":%d}\n", deleted);
	else
		printf("%d\n", deleted);
	rc = cli_finish_stdout("del");
	if (rc == CLI_EXIT_OK && !deleted)
		return CLI_EXIT_MISSING;
	return rc;
}

static int cmd_ping(struct cli *cli, int argc, char **argv)
{
	int rc = rkv_ping(cli->client);

	(void)argc;
	(void)argv;
	if (rc != 0)
		return cli_report(cli, rc, "ping");
	puts(cli->format == CLI_JSON ? "{\"pong\":true}" : "PONG");
	return cli_finish_stdout("ping");
}

/*
 * The first key after every key that starts with `prefix`: the prefix with
 * trailing 0xff bytes dropped and its last byte incremented. 0 bytes (no
 * upper bound) when the prefix is all 0xff or empty.
 */
static size_t prefix_end(const char *prefix, char *end)
{
	size_t len = strlen(prefix);

	memcpy(end, prefix, len);
	while (len > 0 && (uint8_t)end[len - 1] == 0xff)
		len--;
	if (len > 0)
		end[len - 1] = (char)((uint8_t)end[len - 1] + 1);
	return len;
}

static void print_pair(const struct cli *cli, const struct rkv_kv *pair, bool first)
{
	if (cli->format == CLI_JSON) {
		fputs(first ? "{" : ",\n{", stdout);
		print_bytes_json("key", pair->key, pair->key_len);
		putchar(',');
		print_bytes_json("value", pair->value, pair->value_len);
		putchar('}');
		return;
	}
	print_escaped(pair->key, pair->key_len);
	putchar('\t');
	print_escaped(pair->value, pair->value_len);
	putchar('\n');
}

static int scan_option(int argc, char **argv, int *i)
{
	const char *value = NULL;
	int taken = cli_value(argc, argv, i, "limit", &value);

	if (taken == 1 && cli_parse_count(value, &scan_opts.limit) != 0) {
		cli_usage_error("--limit takes a count, not '%s'", value);
		return CLI_OPT_BAD;
	}
	if (taken == 0)
		taken = cli_value(argc, argv, i, "prefix", &scan_opts.prefix);
	return taken;
}

static int check_scan(const struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argv;
	if (scan_opts.prefix && argc > 0)
		return cli_usage_error("scan: --prefix takes the place of START and END");
	if (!scan_opts.prefix && argc != 2)
		return cli_usage_error("scan takes START END, or --prefix P");
	return CLI_EXIT_OK;
}

/*
 * Prints every pair of [START, END) (empty END: no bound), or of the keys
 * starting with --prefix, paging with the last key plus a zero byte until
 * an answer has no pairs or --limit pairs are out. JSON: one array, a pair
 * object per line.
 */
static int cmd_scan(struct cli *cli, int argc, char **argv)
{
	char *end_buf = NULL;
	const char *start, *end;
	size_t end_len;
	uint8_t *cursor;
	size_t cursor_len;
	uint64_t printed = 0;
	int rc = RKV_STATUS_OK;

	if (scan_opts.prefix) {
		end_buf = malloc(strlen(scan_opts.prefix) + 1);
		if (end_buf == NULL)
			goto err_nomem;
		start = scan_opts.prefix;
		end = end_buf;
		end_len = prefix_end(scan_opts.prefix, end_buf);
	} else {
		start = argv[0];
		end = argv[1];
		end_len = strlen(end);
	}
	cursor_len = strlen(start);
	cursor = malloc(cursor_len + 1);
	if (cursor == NULL)
		goto err_nomem;
	memcpy(cursor, start, cursor_len);
	if (cli->format == CLI_JSON)
		putchar('[');
	for (;;) {
		struct rkv_kv *pairs = NULL;
		size_t count = 0;
		uint32_t page = SCAN_PAGE;

		if (scan_opts.limit && scan_opts.limit - printed < page)
			page = (uint32_t)(scan_opts.limit - printed);
		rc = rkv_scan(cli->client, cursor, cursor_len, end, end_len, page, &pairs,
			      &count);
		if (rc != RKV_STATUS_OK)
			break;
		for (size_t i = 0; i < count; i++)
			print_pair(cli, &pairs[i], printed + i == 0);
		printed += count;
		if (count > 0) {
			/* The next page starts just past the last key. */
			const struct rkv_kv *last = &pairs[count - 1];
			uint8_t *next = realloc(cursor, last->key_len + 1);

			if (next == NULL) {
				rkv_scan_free(pairs);
				free(cursor);
				goto err_nomem;
			}
			cursor = next;
			if (last->key_len)
				memcpy(cursor, last->key, last->key_len);
			cursor[last->key_len] = 0;
			cursor_len = last->key_len + 1;
		}
		rkv_scan_free(pairs);
		if (count == 0 || (scan_opts.limit && printed >= scan_opts.limit))
			break;
	}
	free(cursor);
	free(end_buf);
	if (cli->format == CLI_JSON && rc == RKV_STATUS_OK)
		puts("]");
	if (cli_finish_stdout("scan") != CLI_EXIT_OK)
		return CLI_EXIT_ERROR;
	if (rc == RKV_STATUS_NOT_FOUND)
		rc = RKV_STATUS_INTERNAL; /* a scan never answers NOT_FOUND */
	return rc == RKV_STATUS_OK ? CLI_EXIT_OK : cli_report(cli, rc, "scan");

err_nomem:
	free(end_buf);
	fprintf(stderr, "ringkv: scan: out of memory\n");
	return CLI_EXIT_ERROR;
}

const struct cli_command cli_command_get = {
	"get", "KEY", "print the value of KEY (exit 1 if missing)", 1, 1,
	.routed = true, .run = cmd_get,
};

const struct cli_command cli_command_put = {
	"put", "KEY VALUE", "store VALUE under KEY; prints OK\n"
			    "VALUE - reads the value from stdin",
	2, 2, .routed = true, .run = cmd_put,
};

const struct cli_command cli_command_del = {
	"del", "KEY", "delete KEY; prints the number deleted\n"
		      "(1, or 0 with exit 1)",
	1, 1, .routed = true, .run = cmd_del,
};

const struct cli_command cli_command_scan = {
	"scan", "START END", "print key<TAB>value for keys in [START, END)\n"
			     "(END \"\" = no end); --limit N: at most N pairs;\n"
			     "scan --prefix P: the keys that start with P",
	0, 2, .option = scan_option, .check = check_scan, .run = cmd_scan,
};

const struct cli_command cli_command_ping = {
	"ping", "", "check that the server answers; prints PONG", 0, 0, .run = cmd_ping,
};
