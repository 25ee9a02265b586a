/*
 * ringkv: the command-line client. Data commands (get, put, del, scan) and
 * ping over libringkv; one connection per run. `node health` reads the
 * node's admin HTTP port instead (tools/node_health.c) and opens no client
 * connection.
 *
 * The command table below is the one place a command is declared: its
 * name, its arguments for --help and for checking, the command options it
 * takes, and its function. Global options (-a, -t, -w, --json) are taken
 * anywhere on the line; after the command, a word that is not one of the
 * known options is an argument whatever it starts with (`put k -v` stores
 * "-v"), and `--` ends the options altogether.
 *
 * Exit status, for scripts (CLI_EXIT_* below; --help prints it too):
 * 0 success; 1 the key does not exist (get, del), or the node is alive but
 * not ready (node health); 2 usage error (one line on stderr naming the bad
 * argument); 3 any other error (cannot connect, the server answered an
 * error, stdout or stdin failed); 4 timeout.
 *
 * Text output: get writes the value byte for byte, then a newline; put
 * prints OK; del prints the number of keys deleted (1, or 0 with exit 1);
 * ping prints PONG; scan writes one `key<TAB>value` line per pair, with
 * tab, newline, backslash and every byte outside printable ASCII written as
 * \xNN, so each line is one pair whatever the bytes. JSON output (-w json):
 * see print_bytes_json.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/backup.h"
#include "tools/cli_json.h"
#include "tools/libringkv.h"
#include "tools/node_health.h"
#include "tools/node_drain.h"
#include "tools/node_list.h"
#include "tools/rebalance.h"
#include "tools/shard_move.h"
#include "tools/user.h"
#include "tools/version.h"

#define DEFAULT_ADDRESS "127.0.0.1:7070"
#define ADDRESS_ENV "RINGKV_ADDR"
#define DEFAULT_TIMEOUT_MS 5000
#define SCAN_PAGE 1000u                   /* pairs asked for per request */
#define STDIN_VALUE_MAX (64u << 20)       /* far above any server's value limit */

enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_MISSING = 1,
	CLI_EXIT_USAGE = 2,
	CLI_EXIT_ERROR = 3,
	CLI_EXIT_TIMEOUT = 4,
};

enum cli_format {
	CLI_TEXT,
	CLI_JSON,
};

/* Command options, as a mask in struct command. */
enum {
	CMD_OPT_LIMIT = 1u << 0,
	CMD_OPT_PREFIX = 1u << 1,
	CMD_OPT_ADMIN = 1u << 2,   /* --admin HOST:PORT */
	CMD_OFFLINE = 1u << 3,     /* runs without connecting to -a */
	CMD_OPT_BACKUP = 1u << 4,  /* backup restore: --data-dir, ringkvd's cluster flags */
	CMD_OPT_MOVE = 1u << 5,    /* shard move: --from, --to, --wait */
	CMD_OPT_DRAIN = 1u << 6,   /* node drain: --wait, --dry-run, --rate */
	CMD_OPT_REBALANCE = 1u << 7, /* rebalance: --apply, and drain's */
	CMD_OPT_USER = 1u << 8,    /* user: --file, --role, --iterations */
};

/* What the command line said, and the connection once open. */
struct cli {
	const char *address;
	const char *tls_ca;   /* --tls-ca FILE: TLS, checked against this CA */
	const char *auth_file; /* --auth-file FILE: user and password lines */
	int timeout_ms;       /* connect and each request; 0 = none */
	enum cli_format format;
	uint64_t scan_limit;  /* scan --limit: pairs in all; 0 = every pair */
	const char *prefix;   /* scan --prefix, or NULL */
	const char *admin;    /* node health --admin: the node's admin port */
	struct backup_restore_opts restore; /* backup restore's ringkvd flags */
	struct rkv_client *client;
	bool no_route;        /* --no-route: talk to -a's node only */
	struct rkv_router *router; /* get/put/del of a cluster: to the leaders */
	const char *move_from;     /* shard move --from NODE[:CORE] */
	const char *move_to;       /* shard move --to NODE[:CORE] */
	bool move_wait;            /* shard move --wait */
	bool move_cancel;          /* shard move --cancel */
	const char *move_rate;     /* shard move --rate BYTES/s */
	bool dry_run;              /* node drain --dry-run */
	bool apply;                /* rebalance --apply */
	const char *user_file;     /* user --file */
	const char *user_role;     /* user add --role */
	const char *user_iterations; /* user add --iterations */
};

struct command {
	const char *name;
	const char *args;      /* for --help */
	const char *help;
	int min_args, max_args;
	unsigned options;      /* CMD_OPT_* it takes */
	/* Optional: checks the arguments before connecting; 0 or an exit status. */
	int (*check)(const struct cli *cli, int argc, char **argv);
	int (*run)(struct cli *cli, int argc, char **argv);
};

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("ringkv: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see ringkv --help)\n", stderr);
	return CLI_EXIT_USAGE;
}

/* Exit status and message for a failed call. */
static const char *last_error(const struct cli *cli)
{
	return cli->router ? rkv_router_last_error(cli->router) : rkv_last_error(cli->client);
}

static int report(struct cli *cli, int rc, const char *what)
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

static int finish_stdout(const char *what)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "ringkv: %s: stdout: %s\n", what, strerror(errno));
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

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
		return report(cli, rc, "put");
	puts(cli->format == CLI_JSON ? "{\"ok\":true}" : "OK");
	return finish_stdout("put");
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
		rc = finish_stdout("get");
		return rc == CLI_EXIT_OK ? CLI_EXIT_MISSING : rc;
	}
	if (rc != RKV_STATUS_OK)
		return report(cli, rc, "get");
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
	return finish_stdout("get");
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
		return report(cli, rc, "del");
	if (cli->format == CLI_JSON)
		printf("{\"deleted\":%d}\n", deleted);
	else
		printf("%d\n", deleted);
	rc = finish_stdout("del");
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
		return report(cli, rc, "ping");
	puts(cli->format == CLI_JSON ? "{\"pong\":true}" : "PONG");
	return finish_stdout("ping");
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

static int check_scan(const struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (cli->prefix && argc > 0)
		return usage_error("scan: --prefix takes the place of START and END");
	if (!cli->prefix && argc != 2)
		return usage_error("scan takes START END, or --prefix P");
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

	if (cli->prefix) {
		end_buf = malloc(strlen(cli->prefix) + 1);
		if (end_buf == NULL)
			goto err_nomem;
		start = cli->prefix;
		end = end_buf;
		end_len = prefix_end(cli->prefix, end_buf);
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

		if (cli->scan_limit && cli->scan_limit - printed < page)
			page = (uint32_t)(cli->scan_limit - printed);
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
		if (count == 0 || (cli->scan_limit && printed >= cli->scan_limit))
			break;
	}
	free(cursor);
	free(end_buf);
	if (cli->format == CLI_JSON && rc == RKV_STATUS_OK)
		puts("]");
	if (finish_stdout("scan") != CLI_EXIT_OK)
		return CLI_EXIT_ERROR;
	if (rc == RKV_STATUS_NOT_FOUND)
		rc = RKV_STATUS_INTERNAL; /* a scan never answers NOT_FOUND */
	return rc == RKV_STATUS_OK ? CLI_EXIT_OK : report(cli, rc, "scan");

err_nomem:
	free(end_buf);
	fprintf(stderr, "ringkv: scan: out of memory\n");
	return CLI_EXIT_ERROR;
}

/* ---- cluster status and map ---------------------------------------------- */

static int check_cluster(const struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	if (strcmp(argv[0], "status") != 0 && strcmp(argv[0], "map") != 0)
		return usage_error("cluster takes status or map, not '%s'", argv[0]);
	return CLI_EXIT_OK;
}

/* What one node said of itself, or why it did not. */
struct node_view {
	struct rkv_cluster_status *status; /* NULL: not reached */
	char error[300];
};

/* A JSON string of printable text (addresses, roles, errors). */
static void print_json_text(const char *s)
{
	cli_json_string(stdout, s);
}

static const struct rkv_replica_status *find_replica(const struct node_view *v, uint32_t shard)
{
	if (!v->status)
		return NULL;
	for (size_t i = 0; i < v->status->replica_count; i++)
		if (v->status->replicas[i].shard == shard)
			return &v->status->replicas[i];
	return NULL;
}

static int node_pos(const struct rkv_cluster_map *m, uint64_t id)
{
	for (size_t i = 0; i < m->node_count; i++)
		if (m->nodes[i].id == id)
			return (int)i;
	return -1;
}

/* Whether node index i is reachable from the node asked (itself: yes). */
static bool reachable_from_asked(const struct rkv_cluster_map *m, const struct node_view *views,
				 size_t i)
{
	int asked = node_pos(m, m->node_id);
	const struct rkv_cluster_status *st = asked >= 0 ? views[asked].status : NULL;

	if (m->nodes[i].id == m->node_id)
		return true;
	if (!st)
		return false;
	for (size_t k = 0; k < st->peer_count; k++)
		if (st->peers[k].node == m->nodes[i].id)
			return st->peers[k].reachable != 0;
	return false;
}

/* The shard's leader and term as the answering replicas see them: the
 * leader claimed in the highest term, else the map's. */
static void shard_leader(const struct rkv_cluster_map *m, const struct node_view *views,
			 const struct rkv_shard *sh, uint64_t *leader, uint64_t *term)
{
	*leader = sh->leader;
	*term = sh->term;
	for (unsigned k = 0; k < sh->replica_count; k++) {
		int pos = node_pos(m, sh->replicas[k].node);
		const struct rkv_replica_status *rs = pos >= 0 ? find_replica(&views[pos], sh->id)
							       : NULL;

		if (!rs || rs->term < *term)
			continue;
		if (rs->term > *term || strcmp(rs->role, "leader") == 0) {
			*term = rs->term;
			*leader = strcmp(rs->role, "leader") == 0 ? sh->replicas[k].node : rs->leader;
		}
	}
}

/* The leader and term to show for a shard (with statuses: as the replicas
 * say; else the map's), and the leader's own status, or NULL. */
static const struct rkv_replica_status *shown_leader(const struct rkv_cluster_map *m,
						      const struct node_view *views,
						      const struct rkv_shard *sh, bool status,
						      uint64_t *leader, uint64_t *term)
{
	*leader = sh->leader;
	*term = sh->term;
	if (status)
		shard_leader(m, views, sh, leader, term);
	if (*leader && node_pos(m, *leader) >= 0)
		return find_replica(&views[node_pos(m, *leader)], sh->id);
	return NULL;
}

static void print_cluster_json(const struct rkv_cluster_map *m, const struct node_view *views,
			       bool status)
{
	printf("{\"cluster_id\":\"%016llx\",\"map_version\":%llu,\"asked\":%llu,\"nodes\":[",
	       (unsigned long long)m->cluster_id, (unsigned long long)m->version,
	       (unsigned long long)m->node_id);
	for (size_t i = 0; i < m->node_count; i++) {
		const struct rkv_node *n = &m->nodes[i];

		printf("%s{\"id\":%llu,\"peer\":", i ? "," : "", (unsigned long long)n->id);
		print_json_text(n->peer);
		fputs(",\"client\":", stdout);
		print_json_text(n->client);
		fputs(",\"resp\":", stdout);
		print_json_text(n->resp);
		if (status) {
			printf(",\"reachable\":%s,\"answered\":%s",
			       reachable_from_asked(m, views, i) ? "true" : "false",
			       views[i].status ? "true" : "false");
			if (!views[i].status) {
				fputs(",\"error\":", stdout);
				print_json_text(views[i].error);
			}
		}
		putchar('}');
	}
	fputs("],\"shards\":[", stdout);
	for (size_t s = 0; s < m->shard_count; s++) {
		const struct rkv_shard *sh = &m->shards[s];
		uint64_t leader, term;
		const struct rkv_replica_status *leader_rs =
			shown_leader(m, views, sh, status, &leader, &term);

		printf("%s{\"id\":%u,\"slots\":[%u,%u],\"leader\":", s ? "," : "", sh->id,
		       sh->slot_start, sh->slot_end);
		if (leader)
			printf("%llu", (unsigned long long)leader);
		else
			fputs("null", stdout);
		printf(",\"term\":%llu,\"replicas\":[", (unsigned long long)term);
		for (unsigned k = 0; k < sh->replica_count; k++) {
			int pos = node_pos(m, sh->replicas[k].node);
			const struct rkv_replica_status *rs =
				status && pos >= 0 ? find_replica(&views[pos], sh->id) : NULL;

			printf("%s{\"node\":%llu,\"core\":", k ? "," : "",
			       (unsigned long long)sh->replicas[k].node);
			if (sh->replicas[k].core == UINT32_MAX)
				fputs("null", stdout);
			else
				printf("%u", sh->replicas[k].core);
			if (status && rs) {
				printf(",\"role\":\"%s\",\"term\":%llu,\"commit\":%llu,"
				       "\"applied\":%llu,\"last_index\":%llu",
				       rs->role, (unsigned long long)rs->term,
				       (unsigned long long)rs->commit,
				       (unsigned long long)rs->applied,
				       (unsigned long long)rs->last_index);
				printf(",\"sleeping\":%s", rs->sleeping ? "true" : "false");
				fputs(",\"snapshot\":", stdout);
				if (rs->snapshot[0])
					print_json_text(rs->snapshot);
				else
					fputs("null", stdout);
				for (unsigned f = 0; leader_rs && f < leader_rs->follower_count; f++)
					if (leader_rs->followers[f].node == sh->replicas[k].node)
						printf(",\"match\":%llu,\"lag\":%llu",
						       (unsigned long long)leader_rs->followers[f].match,
						       (unsigned long long)leader_rs->followers[f].lag);
			} else if (status) {
				fputs(",\"role\":\"unreachable\",\"commit\":null,\"applied\":null",
				      stdout);
			}
			putchar('}');
		}
		fputs("]}", stdout);
	}
	puts("]}");
}

static void print_cluster_table(const struct rkv_cluster_map *m, const struct node_view *views,
				bool status)
{
	printf("cluster %016llx, map version %llu (asked node %llu)\n\n",
	       (unsigned long long)m->cluster_id, (unsigned long long)m->version,
	       (unsigned long long)m->node_id);
	printf("+------+------------------------+------------------------+-----------+\n"
	       "| NODE | PEER                   | CLIENT                 | REACHABLE |\n"
	       "+------+------------------------+------------------------+-----------+\n");
	for (size_t i = 0; i < m->node_count; i++)
		printf("| %4llu | %-22s | %-22s | %-9s |\n", (unsigned long long)m->nodes[i].id,
		       m->nodes[i].peer, m->nodes[i].client[0] ? m->nodes[i].client : "?",
		       !status ? "-" : reachable_from_asked(m, views, i) ? "yes" : "NO");
	printf("+------+------------------------+------------------------+-----------+\n\n");
	/* The replicas column is as wide as it needs: no right border. */
	printf("+-------+--------+------+----------------------------------------------\n"
	       "| SHARD | LEADER | TERM | REPLICAS (node/core role commit/applied lag)\n"
	       "+-------+--------+------+----------------------------------------------\n");
	for (size_t s = 0; s < m->shard_count; s++) {
		const struct rkv_shard *sh = &m->shards[s];
		uint64_t leader, term;
		const struct rkv_replica_status *leader_rs =
			shown_leader(m, views, sh, status, &leader, &term);
		char line[1024] = "", leader_text[24];
		size_t used = 0;

		for (unsigned k = 0; k < sh->replica_count && used < sizeof line - 80; k++) {
			int pos = node_pos(m, sh->replicas[k].node);
			const struct rkv_replica_status *rs =
				status && pos >= 0 ? find_replica(&views[pos], sh->id) : NULL;
			long long lag = -1;

			for (unsigned f = 0; leader_rs && f < leader_rs->follower_count; f++)
				if (leader_rs->followers[f].node == sh->replicas[k].node)
					lag = (long long)leader_rs->followers[f].lag;
			used += (size_t)snprintf(line + used, sizeof line - used, "%s%llu/%d",
						 k ? ", " : "",
						 (unsigned long long)sh->replicas[k].node,
						 sh->replicas[k].core == UINT32_MAX ? -1
						 : (int)sh->replicas[k].core);
			if (rs)
				used += (size_t)snprintf(line + used, sizeof line - used,
							 " %s %llu/%llu%s%s%s", rs->role,
							 (unsigned long long)rs->commit,
							 (unsigned long long)rs->applied,
							 rs->sleeping ? " asleep" : "",
							 rs->snapshot[0] ? " snapshot " : "",
							 rs->snapshot);
			else if (status)
				used += (size_t)snprintf(line + used, sizeof line - used,
							 " unreachable");
			if (lag >= 0)
				used += (size_t)snprintf(line + used, sizeof line - used,
							 " lag %lld", lag);
		}
		if (leader)
			snprintf(leader_text, sizeof leader_text, "%llu", (unsigned long long)leader);
		else
			snprintf(leader_text, sizeof leader_text, "-");
		printf("| %5u | %6s | %4llu | %s\n", sh->id, leader_text,
		       (unsigned long long)term, line);
	}
	printf("+-------+--------+------+----------------------------------------------\n");
}

/* Asks node index i of the map for its status (the node asked: on the
 * connection already open). */
static void ask_status(struct cli *cli, const struct rkv_cluster_map *m, size_t i,
		       struct node_view *v)
{
	const char *addr = m->nodes[i].client;
	struct rkv_client *c = NULL;
	int rc;

	if (m->nodes[i].id == m->node_id) {
		c = cli->client;
	} else if (!addr[0]) {
		snprintf(v->error, sizeof v->error, "no client address known");
		return;
	} else if (rkv_connect_timeout(addr, cli->timeout_ms ? cli->timeout_ms : 2000, &c,
				       v->error, sizeof v->error) != 0) {
		return;
	}
	rkv_set_timeout(c, cli->timeout_ms);
	rc = rkv_cluster_status(c, &v->status);
	if (rc != 0)
		snprintf(v->error, sizeof v->error, "%s", rkv_last_error(c));
	if (c != cli->client)
		rkv_close(c);
}

static int cmd_cluster(struct cli *cli, int argc, char **argv)
{
	bool status = strcmp(argv[0], "status") == 0;
	struct rkv_cluster_map *m = NULL;
	struct node_view *views;
	int rc = rkv_cluster_map(cli->client, &m);

	(void)argc;
	if (rc != 0)
		return report(cli, rc, "cluster");
	views = calloc(m->node_count, sizeof *views);
	if (!views) {
		rkv_cluster_map_free(m);
		fprintf(stderr, "ringkv: cluster: out of memory\n");
		return CLI_EXIT_ERROR;
	}
	for (size_t i = 0; status && i < m->node_count; i++)
		ask_status(cli, m, i, &views[i]);
	if (cli->format == CLI_JSON)
		print_cluster_json(m, views, status);
	else
		print_cluster_table(m, views, status);
	for (size_t i = 0; i < m->node_count; i++)
		rkv_cluster_status_free(views[i].status);
	free(views);
	rkv_cluster_map_free(m);
	return finish_stdout("cluster");
}

/* ---- node health ---------------------------------------------------------- */

static int parse_count(const char *text, uint64_t *out);

static int check_node(const struct cli *cli, int argc, char **argv)
{
	uint64_t id, rate;

	if (strcmp(argv[0], "drain") == 0) {
		if (argc != 2 || parse_count(argv[1], &id) != 0 || id == 0)
			return usage_error("node drain takes ID (a node id)");
		if (cli->move_rate && shard_move_parse_rate(cli->move_rate, &rate) != 0)
			return usage_error("--rate takes bytes per second (e.g. 512k, 64M/s), "
					   "not '%s'", cli->move_rate);
		return CLI_EXIT_OK;
	}
	if (strcmp(argv[0], "health") != 0 && strcmp(argv[0], "list") != 0)
		return usage_error("node takes health, list or drain, not '%s'", argv[0]);
	if (argc != 1)
		return usage_error("node %s takes no argument", argv[0]);
	if (cli->move_wait || cli->dry_run || cli->move_rate)
		return usage_error("--wait, --dry-run and --rate are node drain's");
	return CLI_EXIT_OK;
}

/* ringkv node drain ID (tools/node_drain.c). */
static int cmd_node_drain(struct cli *cli, char **argv)
{
	struct node_drain_args a = {
		.address = cli->address, .timeout_ms = cli->timeout_ms,
		.json = cli->format == CLI_JSON, .wait = cli->move_wait,
		.dry_run = cli->dry_run,
	};

	parse_count(argv[1], &a.node);
	if (cli->move_rate)
		shard_move_parse_rate(cli->move_rate, &a.rate);
	return node_drain_run(&a);
}

/* 0 ready; 1 alive but not ready (like a key not found: the node answered
 * no); 2 a malformed --admin; 3 unreachable; 4 timeout. */
static int cmd_node(struct cli *cli, int argc, char **argv)
{
	enum node_health_result r;

	(void)argc;
	if (strcmp(argv[0], "drain") == 0)
		return cmd_node_drain(cli, argv);
	if (strcmp(argv[0], "list") == 0)
		return node_list_run(&(struct node_list_args){
			.address = cli->address,
			.timeout_ms = cli->timeout_ms ? cli->timeout_ms : 2000,
			.json = cli->format == CLI_JSON });
	r = node_health_run(cli->admin, cli->timeout_ms, cli->format == CLI_JSON);
	if (finish_stdout("node health") != CLI_EXIT_OK)
		return CLI_EXIT_ERROR;
	switch (r) {
	case NODE_HEALTH_READY: return CLI_EXIT_OK;
	case NODE_HEALTH_NOT_READY: return CLI_EXIT_MISSING;
	case NODE_HEALTH_BAD_ADDRESS: return CLI_EXIT_USAGE;
	case NODE_HEALTH_TIMEOUT: return CLI_EXIT_TIMEOUT;
	case NODE_HEALTH_UNREACHABLE: break;
	}
	return CLI_EXIT_ERROR;
}

/* ---- backups (tools/backup_*.c) ------------------------------------------ */

static int check_backup(const struct cli *cli, int argc, char **argv)
{
	(void)argc;
	if (strcmp(argv[0], "create") == 0) {
		if (cli->restore.data_dir || cli->restore.cores || cli->restore.node_id ||
		    cli->restore.initial_cluster || cli->restore.replicas ||
		    cli->restore.cluster_token)
			return usage_error("backup create takes DIR only (--data-dir and the "
					   "cluster flags are for restore)");
		return CLI_EXIT_OK;
	}
	if (strcmp(argv[0], "restore") == 0) {
		if (!cli->restore.data_dir)
			return usage_error("backup restore DIR needs --data-dir NEWDIR");
		return CLI_EXIT_OK;
	}
	return usage_error("backup takes create or restore, not '%s'", argv[0]);
}

static int cmd_backup(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	if (strcmp(argv[0], "restore") == 0)
		return backup_restore(argv[1], &cli->restore);
	return backup_create(cli->client, cli->address, cli->timeout_ms, argv[1]);
}

/* ---- shard move (tools/shard_move.c) --------------------------------------- */

static int check_shard(const struct cli *cli, int argc, char **argv)
{
	uint64_t node, shard, rate;
	uint32_t core;
	bool has_core;

	if (strcmp(argv[0], "move") != 0)
		return usage_error("shard takes move, not '%s'", argv[0]);
	if (argc != 2 || parse_count(argv[1], &shard) != 0 || shard > UINT32_MAX)
		return usage_error("shard move takes SHARD (a shard id) --from NODE[:CORE] "
				   "--to NODE[:CORE]");
	if (cli->move_rate && shard_move_parse_rate(cli->move_rate, &rate) != 0)
		return usage_error("--rate takes bytes per second (e.g. 512k, 64M/s), not '%s'",
				   cli->move_rate);
	if (cli->move_cancel) {
		if (cli->move_from || cli->move_rate)
			return usage_error("shard move --cancel takes SHARD [--to NODE] only");
		if (cli->move_to &&
		    (shard_move_parse_target(cli->move_to, &node, &core, &has_core) != 0 ||
		     has_core))
			return usage_error("--cancel --to takes NODE (the move's target), not "
					   "'%s'", cli->move_to);
		return CLI_EXIT_OK;
	}
	if (!cli->move_from || !cli->move_to)
		return usage_error("shard move needs --from NODE[:CORE] and --to NODE[:CORE]");
	if (shard_move_parse_target(cli->move_from, &node, &core, &has_core) != 0)
		return usage_error("--from takes NODE or NODE:CORE, not '%s'", cli->move_from);
	if (shard_move_parse_target(cli->move_to, &node, &core, &has_core) != 0)
		return usage_error("--to takes NODE or NODE:CORE, not '%s'", cli->move_to);
	return CLI_EXIT_OK;
}

static int cmd_shard(struct cli *cli, int argc, char **argv)
{
	struct shard_move_args a = {
		.address = cli->address, .timeout_ms = cli->timeout_ms,
		.json = cli->format == CLI_JSON, .wait = cli->move_wait,
		.cancel = cli->move_cancel,
	};
	uint64_t shard = 0;
	uint32_t core;
	bool has_core;

	(void)argc;
	parse_count(argv[1], &shard);
	a.shard = (uint32_t)shard;
	/* The source's core is not needed (a node holds at most one replica
	 * of a shard); the target's defaults to core 0. */
	if (cli->move_from)
		shard_move_parse_target(cli->move_from, &a.from, &core, &has_core);
	if (cli->move_to)
		shard_move_parse_target(cli->move_to, &a.to, &a.to_core, &has_core);
	if (cli->move_rate)
		shard_move_parse_rate(cli->move_rate, &a.rate);
	return shard_move_run(&a);
}

/* ---- rebalance (tools/rebalance.c) ----------------------------------------- */

static int check_rebalance(const struct cli *cli, int argc, char **argv)
{
	uint64_t rate;

	(void)argc;
	(void)argv;
	if (cli->apply && cli->dry_run)
		return usage_error("rebalance takes --dry-run or --apply, not both");
	if ((cli->move_wait || cli->move_rate) && !cli->apply)
		return usage_error("--wait and --rate are rebalance --apply's");
	if (cli->move_rate && shard_move_parse_rate(cli->move_rate, &rate) != 0)
		return usage_error("--rate takes bytes per second (e.g. 512k, 64M/s), not '%s'",
				   cli->move_rate);
	return CLI_EXIT_OK;
}

static int cmd_rebalance(struct cli *cli, int argc, char **argv)
{
	struct rebalance_args a = {
		.address = cli->address, .timeout_ms = cli->timeout_ms,
		.json = cli->format == CLI_JSON, .apply = cli->apply, .wait = cli->move_wait,
	};

	(void)argc;
	(void)argv;
	if (cli->move_rate)
		shard_move_parse_rate(cli->move_rate, &a.rate);
	return rebalance_run(&a);
}

/* ---- users files (tools/user.c) ------------------------------------------ */

static int user_args_of(const struct cli *cli, char **argv, struct user_args *a)
{
	uint64_t n = 0;

	memset(a, 0, sizeof *a);
	a->file = cli->user_file;
	a->name = argv[1];
	a->role = cli->user_role;
	a->prefix = cli->prefix;
	if (cli->user_iterations &&
	    (parse_count(cli->user_iterations, &n) != 0 || n == 0 || n > UINT32_MAX))
		return usage_error("--iterations takes a count, not '%s'", cli->user_iterations);
	a->iterations = (uint32_t)n;
	return CLI_EXIT_OK;
}

static int check_user(const struct cli *cli, int argc, char **argv)
{
	struct user_args a;
	bool add = strcmp(argv[0], "add") == 0;
	int rc;

	if (!add && strcmp(argv[0], "remove") != 0)
		return usage_error("user takes add or remove, not '%s'", argv[0]);
	if (argc != 2)
		return usage_error("user %s takes NAME", argv[0]);
	if (!add && (cli->user_role || cli->prefix || cli->user_iterations))
		return usage_error("user remove takes --file FILE NAME only");
	rc = user_args_of(cli, argv, &a);
	return rc != CLI_EXIT_OK ? rc : user_check(&a, add);
}

static int cmd_user(struct cli *cli, int argc, char **argv)
{
	struct user_args a;

	(void)argc;
	user_args_of(cli, argv, &a);
	return strcmp(argv[0], "add") == 0 ? user_add(&a) : user_remove(&a);
}

/* Every command; --help lists them in this order. */
static const struct command commands[] = {
	{ "get", "KEY", "print the value of KEY (exit 1 if missing)", 1, 1, 0, NULL,
	  cmd_get },
	{ "put", "KEY VALUE", "store VALUE under KEY; prints OK\n"
			      "VALUE - reads the value from stdin",
	  2, 2, 0, NULL, cmd_put },
	{ "del", "KEY", "delete KEY; prints the number deleted\n"
			"(1, or 0 with exit 1)", 1, 1, 0, NULL, cmd_del },
	{ "scan", "START END", "print key<TAB>value for keys in [START, END)\n"
			       "(END \"\" = no end); --limit N: at most N pairs;\n"
			       "scan --prefix P: the keys that start with P",
	  0, 2, CMD_OPT_LIMIT | CMD_OPT_PREFIX, check_scan, cmd_scan },
	{ "ping", "", "check that the server answers; prints PONG", 0, 0, 0, NULL,
	  cmd_ping },
	{ "cluster", "status|map", "status: every node and shard of the cluster\n"
				   "(leaders, terms, indexes, lag, reachability);\n"
				   "map: the nodes, their addresses, shards and leaders",
	  1, 1, 0, check_cluster, cmd_cluster },
	{ "node", "health|list|drain ID",
	  "list: every node, its addresses, up or\n"
	  "unreachable, its replicas and leaders in all and\n"
	  "per core (an unreachable node's: from the map);\n"
	  "health: the node's admin port /health and /ready\n"
	  "(--admin HOST:PORT, default " NODE_HEALTH_DEFAULT_ADMIN ");\n"
	  "exit 0 ready, 1 alive but not ready;\n"
	  "drain ID [--wait] [--dry-run] [--rate BYTES/s]:\n"
	  "hand node ID's leaderships to other voters, then\n"
	  "move each of its replicas to a node without the\n"
	  "shard (fewest replicas, then fewest on a core),\n"
	  "one at a time (move n of m; --wait: the phases);\n"
	  "--dry-run prints the plan and changes nothing;\n"
	  "exit 1 when no node can take a replica",
	  1, 2, CMD_OPT_ADMIN | CMD_OPT_DRAIN | CMD_OFFLINE, check_node, cmd_node },
	{ "backup", "create|restore DIR",
	  "create DIR: an online copy of every shard (each\n"
	  "at its own applied index, holding every write\n"
	  "acknowledged before it began), checksummed;\n"
	  "restore DIR --data-dir NEWDIR [--cores N]: check\n"
	  "the whole backup, then build a one-node data dir\n"
	  "that ringkvd --data-dir NEWDIR serves; with\n"
	  "--node-id N --initial-cluster ... [--replicas R]\n"
	  "[--cluster-token T]: node N's dir of a new cluster",
	  2, 2, CMD_OPT_BACKUP, check_backup, cmd_backup },
	{ "shard", "move SHARD", "move SHARD --from NODE[:CORE] --to NODE[:CORE]:\n"
				 "move one replica online (the shard's leader\n"
				 "adds it as a learner, catches it up, promotes\n"
				 "it, removes the old one); --wait shows the\n"
				 "phases (snapshot bytes of total, rate, ETA)\n"
				 "until done; --rate BYTES/s (k/M/G) caps this\n"
				 "move's snapshot stream;\n"
				 "move SHARD --cancel [--to NODE] [--wait]: roll\n"
				 "the move back (before the old replica's\n"
				 "removal): the new replica leaves, its files go;\n"
				 "exit 1 refused or failed, 2 usage or no node\n"
				 "reachable",
	  2, 2, CMD_OPT_MOVE | CMD_OFFLINE, check_shard, cmd_shard },
	{ "rebalance", "[--apply]",
	  "plan the moves and leadership transfers that\n"
	  "even out replicas (per node and per core) and\n"
	  "leaders, from every node's own view, and print\n"
	  "them (--dry-run, the default: nothing changes);\n"
	  "--apply: the moves one at a time (move n of m;\n"
	  "--wait: each move's phases; --rate BYTES/s caps\n"
	  "each), then the transfers; a stopped rebalance\n"
	  "goes on when run again; exit 1 refused or a move\n"
	  "failed, 2 usage or no node reachable",
	  0, 0, CMD_OPT_REBALANCE | CMD_OFFLINE, check_rebalance, cmd_rebalance },
	{ "user", "add|remove NAME",
	  "add NAME --file FILE --role read|write|admin:\n"
	  "add (or replace) a user of a ringkvd --users\n"
	  "file, the password read from standard input\n"
	  "(one line), hashed with PBKDF2-SHA256;\n"
	  "--iterations N: its cost (default 100000);\n"
	  "--prefix P: only keys starting with P;\n"
	  "remove NAME --file FILE (exit 1: no such user);\n"
	  "the file is rewritten atomically; send ringkvd\n"
	  "SIGHUP to load it",
	  1, 2, CMD_OPT_USER | CMD_OPT_PREFIX | CMD_OFFLINE, check_user, cmd_user },
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

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
		const char *line = commands[i].help;

		snprintf(synopsis, sizeof(synopsis), "%s %s", commands[i].name,
			 commands[i].args);
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

/* "5", "0.25", "0": seconds to milliseconds; -1 when not a duration. */
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

static int parse_count(const char *text, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

/*
 * If argv[*i] is the option `long_name` (or `short_name`), takes its value
 * ("--x V", "--x=V", "-x V", and "-xV" when `attached` allows it) into
 * *value and advances *i past it. 1 matched, 0 not this option, -1 the
 * value is missing.
 */
static int take_option(int argc, char **argv, int *i, const char *long_name,
		       char short_name, bool attached, const char **value)
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
		return -1;
	*value = argv[++*i];
	return 1;
}

static bool is_flag(const char *arg, const char *long_name, char short_name)
{
	return (arg[0] == '-' && arg[1] == '-' && strcmp(arg + 2, long_name) == 0) ||
	       (short_name && arg[0] == '-' && arg[1] == short_name && arg[2] == '\0');
}

/* backup restore's options: ringkvd's own flags, checked by its parser. */
static int take_restore_option(struct cli *cli, int argc, char **argv, int *i)
{
	struct backup_restore_opts *o = &cli->restore;
	const struct {
		const char *name;
		const char **into;
	} flags[] = {
		{ "data-dir", &o->data_dir },       { "cores", &o->cores },
		{ "node-id", &o->node_id },         { "initial-cluster", &o->initial_cluster },
		{ "replicas", &o->replicas },       { "cluster-token", &o->cluster_token },
	};

	for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) {
		int taken = take_option(argc, argv, i, flags[k].name, 0, false, flags[k].into);

		if (taken != 0)
			return taken;
	}
	return 0;
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
static int parse(struct cli *cli, int argc, char **argv, const struct command **cmd,
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
		if (is_flag(arg, "help", 'h')) {
			result = PARSE_HELP;
			continue;
		}
		if (is_flag(arg, "version", 'V')) {
			if (result == PARSE_RUN)
				result = PARSE_VERSION;
			continue;
		}
		if (is_flag(arg, "json", 0)) {
			cli->format = CLI_JSON;
			continue;
		}
		if (is_flag(arg, "no-route", 0)) {
			cli->no_route = true;
			continue;
		}
		if ((taken = take_option(argc, argv, &i, "address", 'a', !*cmd, &value)) != 0) {
			if (taken < 0)
				goto err_missing;
			cli->address = value;
			continue;
		}
		if ((taken = take_option(argc, argv, &i, "tls-ca", 0, !*cmd, &value)) != 0) {
			if (taken < 0)
				goto err_missing;
			cli->tls_ca = value;
			continue;
		}
		if ((taken = take_option(argc, argv, &i, "auth-file", 0, !*cmd, &value)) != 0) {
			if (taken < 0)
				goto err_missing;
			cli->auth_file = value;
			continue;
		}
		if ((taken = take_option(argc, argv, &i, "timeout", 't', !*cmd, &value)) != 0) {
			if (taken < 0)
				goto err_missing;
			cli->timeout_ms = parse_timeout(value);
			if (cli->timeout_ms < 0)
				return -usage_error("--timeout takes seconds (e.g. 5 or 0.5), "
						    "not '%s'", value);
			continue;
		}
		if ((taken = take_option(argc, argv, &i, "format", 'w', !*cmd, &value)) != 0) {
			if (taken < 0)
				goto err_missing;
			if (strcmp(value, "json") == 0)
				cli->format = CLI_JSON;
			else if (strcmp(value, "text") == 0)
				cli->format = CLI_TEXT;
			else
				return -usage_error("--format takes text or json, not '%s'",
						    value);
			continue;
		}
		if (*cmd && ((*cmd)->options & CMD_OPT_LIMIT) &&
		    (taken = take_option(argc, argv, &i, "limit", 0, false, &value)) != 0) {
			if (taken < 0)
				goto err_missing;
			if (parse_count(value, &cli->scan_limit) != 0)
				return -usage_error("--limit takes a count, not '%s'", value);
			continue;
		}
		if (*cmd && ((*cmd)->options & CMD_OPT_BACKUP) &&
		    (taken = take_restore_option(cli, argc, argv, &i)) != 0) {
			if (taken < 0)
				goto err_missing;
			continue;
		}
		if (*cmd && ((*cmd)->options & CMD_OPT_PREFIX) &&
		    (taken = take_option(argc, argv, &i, "prefix", 0, false, &value)) != 0) {
			if (taken < 0)
				goto err_missing;
			cli->prefix = value;
			continue;
		}
		if (*cmd && ((*cmd)->options & CMD_OPT_USER) &&
		    ((taken = take_option(argc, argv, &i, "file", 0, false, &value)) != 0)) {
			if (taken < 0)
				goto err_missing;
			cli->user_file = value;
			continue;
		}
		if (*cmd && ((*cmd)->options & CMD_OPT_USER) &&
		    ((taken = take_option(argc, argv, &i, "role", 0, false, &value)) != 0)) {
			if (taken < 0)
				goto err_missing;
			cli->user_role = value;
			continue;
		}
		if (*cmd && ((*cmd)->options & CMD_OPT_USER) &&
		    ((taken = take_option(argc, argv, &i, "iterations", 0, false, &value)) != 0)) {
			if (taken < 0)
				goto err_missing;
			cli->user_iterations = value;
			continue;
		}
		if (*cmd && ((*cmd)->options & CMD_OPT_REBALANCE) && is_flag(arg, "apply", 0)) {
			cli->apply = true;
			continue;
		}
		if (*cmd && ((*cmd)->options & (CMD_OPT_DRAIN | CMD_OPT_REBALANCE)) &&
		    is_flag(arg, "dry-run", 0)) {
			cli->dry_run = true;
			continue;
		}
		if (*cmd && ((*cmd)->options & (CMD_OPT_MOVE | CMD_OPT_DRAIN | CMD_OPT_REBALANCE)) &&
		    is_flag(arg, "wait", 0)) {
			cli->move_wait = true;
			continue;
		}
		if (*cmd && ((*cmd)->options & CMD_OPT_MOVE) && is_flag(arg, "cancel", 0)) {
			cli->move_cancel = true;
			continue;
		}
		if (*cmd && ((*cmd)->options & (CMD_OPT_MOVE | CMD_OPT_DRAIN | CMD_OPT_REBALANCE)) &&
		    (taken = take_option(argc, argv, &i, "rate", 0, false, &value)) != 0) {
			if (taken < 0)
				goto err_missing;
			cli->move_rate = value;
			continue;
		}
		if (*cmd && ((*cmd)->options & CMD_OPT_MOVE) &&
		    (taken = take_option(argc, argv, &i, "from", 0, false, &value)) != 0) {
			if (taken < 0)
				goto err_missing;
			cli->move_from = value;
			continue;
		}
		if (*cmd && ((*cmd)->options & CMD_OPT_MOVE) &&
		    (taken = take_option(argc, argv, &i, "to", 0, false, &value)) != 0) {
			if (taken < 0)
				goto err_missing;
			cli->move_to = value;
			continue;
		}
		if (*cmd && ((*cmd)->options & CMD_OPT_ADMIN) &&
		    (taken = take_option(argc, argv, &i, "admin", 0, false, &value)) != 0) {
			if (taken < 0)
				goto err_missing;
			cli->admin = value;
			continue;
		}
		if (*cmd == NULL)
			return -usage_error("unknown option '%s'", arg);
		/* After the command, any other word is an argument: put k -v. */
positional:
		if (*cmd == NULL) {
			for (size_t k = 0; k < COMMAND_COUNT && !*cmd; k++)
				if (strcmp(arg, commands[k].name) == 0)
					*cmd = &commands[k];
			if (*cmd == NULL && result == PARSE_RUN)
				return -usage_error("unknown command '%s'", arg);
			continue;
		}
		args[(*nargs)++] = argv[i];
		continue;
err_missing:
		return -usage_error("%s needs a value", arg);
	}
	if (result != PARSE_RUN)
		return result;
	if (*cmd == NULL)
		return -usage_error("no command given");
	if (*nargs > (*cmd)->max_args)
		return -usage_error("%s takes %s; unexpected '%s'", (*cmd)->name,
				    (*cmd)->max_args ? (*cmd)->args : "no arguments",
				    args[(*cmd)->max_args]);
	if (*nargs < (*cmd)->min_args)
		return -usage_error("%s takes %s", (*cmd)->name, (*cmd)->args);
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
		.admin = NODE_HEALTH_DEFAULT_ADMIN,
	};
	const char *env = getenv(ADDRESS_ENV);
	const struct command *cmd;
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
	/* Offline commands, and a backup restore (files only): no server. */
	if ((cmd->options & CMD_OFFLINE) ||
	    (cmd->run == cmd_backup && strcmp(args[0], "restore") == 0)) {
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
	if (cmd->run == cmd_get || cmd->run == cmd_put || cmd->run == cmd_del)
		route_setup(&cli);
	rc = cmd->run(&cli, nargs, args);
	rkv_router_close(cli.router);
	rkv_close(cli.client);
	free(args);
	return rc;
}
