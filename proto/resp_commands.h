/*
 * The Redis commands the RESP front door serves: a static table of names,
 * arities, flags and key positions, with the data COMMAND, COMMAND INFO and
 * COMMAND DOCS answer from, and the Redis texts of the common errors.
 *
 * Arity follows Redis: it counts the command name; a positive arity is the
 * exact argc, a negative one means "at least -arity". Key positions follow
 * Redis too: first key, last key (negative: counted from the end, -1 = the
 * last argument) and step; 0, 0, 0 for a command without keys. The values
 * match Redis 7.0 so that clients which read COMMAND behave the same.
 *
 * Lookup is case-insensitive, allocates nothing and takes the name as a
 * (pointer, length) slice straight from the parser.
 */
#ifndef RINGKV_PROTO_RESP_COMMANDS_H
#define RINGKV_PROTO_RESP_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/resp.h"

/* Stable ids, for the server's dispatch switch. */
enum resp_cmd_id {
	RESP_CMD_PING,
	RESP_CMD_ECHO,
	RESP_CMD_QUIT,
	RESP_CMD_SELECT,
	RESP_CMD_HELLO,
	RESP_CMD_GET,
	RESP_CMD_SET,
	RESP_CMD_SETNX,
	RESP_CMD_GETSET,
	RESP_CMD_DEL,
	RESP_CMD_EXISTS,
	RESP_CMD_MGET,
	RESP_CMD_MSET,
	RESP_CMD_INCR,
	RESP_CMD_DECR,
	RESP_CMD_INCRBY,
	RESP_CMD_DECRBY,
	RESP_CMD_APPEND,
	RESP_CMD_STRLEN,
	RESP_CMD_SCAN,
	RESP_CMD_DBSIZE,
	RESP_CMD_INFO,
	RESP_CMD_COMMAND,
	RESP_CMD_CONFIG,
	RESP_CMD_CLIENT,
	RESP_CMD_KEYS,
	RESP_CMD_TYPE,
	RESP_CMD_TIME,
	RESP_CMD_FLUSHDB,
	RESP_CMD_FLUSHALL,
	RESP_CMD_GETDEL,
	RESP_CMD_GETRANGE,
	RESP_CMD_SUBSTR,
	RESP_CMD_SETRANGE,
	RESP_CMD_GETBIT,
	RESP_CMD_SETBIT,
	RESP_CMD_BITCOUNT,
	RESP_CMD_BITPOS,
	RESP_CMD_LCS,
	RESP_CMD_INCRBYFLOAT,
	RESP_CMD_UNLINK,
	RESP_CMD_TOUCH,
	RESP_CMD_MSETNX,
	RESP_CMD_RENAME,
	RESP_CMD_RENAMENX,
	RESP_CMD_COPY,
	RESP_CMD_SETEX,
	RESP_CMD_PSETEX,
	RESP_CMD_GETEX,
	RESP_CMD_EXPIRE,
	RESP_CMD_PEXPIRE,
	RESP_CMD_EXPIREAT,
	RESP_CMD_PEXPIREAT,
	RESP_CMD_PERSIST,
	RESP_CMD_TTL,
	RESP_CMD_PTTL,
	RESP_CMD_EXPIRETIME,
	RESP_CMD_PEXPIRETIME,
	RESP_CMD_RANDOMKEY,
	RESP_CMD_OBJECT,
	RESP_CMD_DEBUG,
	RESP_CMD_AUTH,
	RESP_CMD_TOP_COUNT, /* number of top-level commands */
	/* Subcommands, found with resp_subcommand_lookup. */
	RESP_CMD_COMMAND_COUNT = 100,
	RESP_CMD_COMMAND_DOCS,
	RESP_CMD_COMMAND_INFO,
	RESP_CMD_COMMAND_LIST,
	RESP_CMD_CONFIG_GET,
	RESP_CMD_CONFIG_SET,
	RESP_CMD_CONFIG_RESETSTAT,
	RESP_CMD_CLIENT_ID,
	RESP_CMD_CLIENT_GETNAME,
	RESP_CMD_CLIENT_SETNAME,
	RESP_CMD_CLIENT_INFO,
	RESP_CMD_CLIENT_LIST,
	RESP_CMD_CLIENT_KILL,
};

/* Command flags, as COMMAND INFO names them (resp_command_flag_name). */
#define RESP_CMDF_WRITE (1u << 0)      /* "write": may modify the keyspace */
#define RESP_CMDF_READONLY (1u << 1)   /* "readonly" */
#define RESP_CMDF_DENYOOM (1u << 2)    /* "denyoom" */
#define RESP_CMDF_ADMIN (1u << 3)      /* "admin" */
#define RESP_CMDF_NOSCRIPT (1u << 4)   /* "noscript" */
#define RESP_CMDF_LOADING (1u << 5)    /* "loading" */
#define RESP_CMDF_STALE (1u << 6)      /* "stale" */
#define RESP_CMDF_FAST (1u << 7)       /* "fast" */
#define RESP_CMDF_NO_AUTH (1u << 8)    /* "no_auth" */
#define RESP_CMDF_ALLOW_BUSY (1u << 9) /* "allow_busy" */
#define RESP_CMDF_COUNT 10

struct resp_command_info {
	enum resp_cmd_id id;
	const char *name;       /* lower case, as COMMAND replies it */
	int arity;              /* Redis convention, see above */
	uint32_t flags;         /* RESP_CMDF_* */
	int first_key;          /* 1-based argv index; 0 = no keys */
	int last_key;           /* negative: from the end */
	int key_step;
	const char *summary;    /* COMMAND DOCS fields */
	const char *since;
	const char *group;
	const char *complexity;
	/* Containers (COMMAND, CONFIG, CLIENT): their subcommands. */
	const struct resp_command_info *subcommands;
	size_t subcommand_count;
};

/*
 * Finds a top-level command by name, ignoring ASCII case. Returns NULL for an
 * unknown name. The table is static; the result is never freed.
 */
const struct resp_command_info *resp_command_lookup(const uint8_t *name,
						    size_t len);

/*
 * Finds a subcommand of a container (COMMAND, CONFIG, CLIENT) by name,
 * ignoring case. Returns NULL when `parent` has no such subcommand. The
 * subcommand's name is "parent|sub" ("config|get"), as Redis 7 names it.
 */
const struct resp_command_info *
resp_subcommand_lookup(const struct resp_command_info *parent,
		       const uint8_t *name, size_t len);

/* The top-level table, for COMMAND, COMMAND LIST and COMMAND COUNT. */
const struct resp_command_info *resp_command_table(size_t *count);

/* The top-level command `id`, or NULL (a subcommand id or out of range). */
const struct resp_command_info *resp_command_by_id(enum resp_cmd_id id);

/* Whether argc (name included) satisfies the command's arity. */
bool resp_command_arity_ok(const struct resp_command_info *cmd, size_t argc);

/* The COMMAND INFO word of one RESP_CMDF_* bit, or NULL. */
const char *resp_command_flag_name(uint32_t flag);

/* Number of RESP_CMDF_* bits set in flags (the length of the flags array). */
size_t resp_command_flag_count(uint32_t flags);

/*
 * Redis' error texts (without '-' and CR LF), for resp_write_error_str.
 * The first word is the error code clients match on.
 */
#define RESP_ERR_SYNTAX "ERR syntax error"
#define RESP_ERR_NOT_INTEGER "ERR value is not an integer or out of range"
#define RESP_ERR_OVERFLOW "ERR increment or decrement would overflow"
#define RESP_ERR_DECRBY_MIN "ERR decrement would overflow" /* DECRBY k INT64_MIN */
#define RESP_ERR_CLIENT_NAME \
	"ERR Client names cannot contain spaces, newlines or special characters."
#define RESP_ERR_DB_INDEX "ERR DB index is out of range"
#define RESP_ERR_INVALID_CURSOR "ERR invalid cursor"
#define RESP_ERR_NOPROTO "NOPROTO unsupported protocol version"
/* Authentication (ringkvd --users), Redis 7.0's texts. */
#define RESP_ERR_NOAUTH "NOAUTH Authentication required."
#define RESP_ERR_WRONGPASS "WRONGPASS invalid username-password pair or user is disabled."
#define RESP_ERR_NOPERM_KEY \
	"NOPERM this user has no permissions to access one of the keys used as arguments"
#define RESP_ERR_HELLO_NOAUTH \
	"NOAUTH HELLO must be called with the client already authenticated, otherwise the " \
	"HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and " \
	"select the RESP protocol version at the same time"
#define RESP_ERR_AUTH_NO_PASSWORD \
	"ERR AUTH <password> called without any password configured for the default user. " \
	"Are you sure your configuration is correct?"
#define RESP_ERR_FLUSH_DISABLED \
	"ERR FLUSHDB and FLUSHALL are disabled on this node: they drop every key of the " \
	"cluster; start ringkvd with --enable-flush (or enable-flush = true in its config " \
	"file) to allow them"

/*
 * Formats Redis 7's reply to an unknown command into out[0..cap), NUL
 * terminated and truncated to fit: "ERR unknown command 'foo', with args
 * beginning with: 'a' 'b' " (the name cut at 128 bytes, the arguments
 * listed while that list is under 128 bytes; CR and LF become spaces).
 * argv[0] is the command name; argc >= 1. Returns the length written
 * (without the NUL).
 */
size_t resp_format_unknown_command(char *out, size_t cap,
				   const struct resp_arg *argv, size_t argc);

/*
 * Formats "ERR wrong number of arguments for 'get' command" for a command or
 * a subcommand ('config|get'), as Redis 7 does. Returns the length written.
 */
size_t resp_format_wrong_arity(char *out, size_t cap,
			       const struct resp_command_info *cmd);

/*
 * Formats "ERR unknown subcommand 'foo'. Try CONFIG HELP." for an unknown
 * subcommand of a container. Returns the length written.
 */
size_t resp_format_unknown_subcommand(char *out, size_t cap,
				      const struct resp_command_info *parent,
				      const uint8_t *sub, size_t sub_len);

#endif
