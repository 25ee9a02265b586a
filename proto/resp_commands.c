/*
 * The command table of the RESP front door (see proto/resp_commands.h).
 * Arities, flags, key positions and docs are copied from Redis 7.0's
 * COMMAND INFO / COMMAND DOCS so clients that read them see what they
 * expect. A top-level name is found through an index of the table by a hash
 * of the lower-cased name (built once, on the first lookup, then read-only);
 * subcommands by a scan of their parent's few. Nothing is allocated.
 */
#include "proto/resp_commands.h"

#include <assert.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define F_W RESP_CMDF_WRITE
#define F_R RESP_CMDF_READONLY
#define F_OOM RESP_CMDF_DENYOOM
#define F_ADMIN RESP_CMDF_ADMIN
#define F_NOSCRIPT RESP_CMDF_NOSCRIPT
#define F_LOADING RESP_CMDF_LOADING
#define F_STALE RESP_CMDF_STALE
#define F_FAST RESP_CMDF_FAST
#define F_NOAUTH RESP_CMDF_NO_AUTH
#define F_BUSY RESP_CMDF_ALLOW_BUSY

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const struct resp_command_info command_subcommands[] = {
	{ RESP_CMD_COMMAND_COUNT, "command|count", 2, F_LOADING | F_STALE, 0, 0, 0,
	  "Get total number of Redis commands", "2.8.13", "server", "O(1)", NULL, 0 },
	{ RESP_CMD_COMMAND_DOCS, "command|docs", -2, F_LOADING | F_STALE, 0, 0, 0,
	  "Get array of specific Redis command documentation", "7.0.0", "server",
	  "O(N) where N is the number of commands to look up", NULL, 0 },
	{ RESP_CMD_COMMAND_INFO, "command|info", -2, F_LOADING | F_STALE, 0, 0, 0,
	  "Get array of specific Redis command details, or all when no argument is given.",
	  "2.8.13", "server", "O(N) where N is the number of commands to look up",
	  NULL, 0 },
	{ RESP_CMD_COMMAND_LIST, "command|list", -2, F_LOADING | F_STALE, 0, 0, 0,
	  "Get an array of Redis command names", "7.0.0", "server",
	  "O(N) where N is the total number of Redis commands", NULL, 0 },
};

static const struct resp_command_info config_subcommands[] = {
	{ RESP_CMD_CONFIG_GET, "config|get", -3,
	  F_ADMIN | F_NOSCRIPT | F_LOADING | F_STALE, 0, 0, 0,
	  "Get the values of configuration parameters", "2.0.0", "server",
	  "O(N) when N is the number of configuration parameters provided", NULL, 0 },
	{ RESP_CMD_CONFIG_SET, "config|set", -4,
	  F_ADMIN | F_NOSCRIPT | F_LOADING | F_STALE, 0, 0, 0,
	  "Set configuration parameters to the given values", "2.0.0", "server",
	  "O(N) when N is the number of configuration parameters provided", NULL, 0 },
	{ RESP_CMD_CONFIG_RESETSTAT, "config|resetstat", 2,
	  F_ADMIN | F_NOSCRIPT | F_LOADING | F_STALE, 0, 0, 0,
	  "Reset the stats returned by INFO", "2.0.0", "server", "O(1)", NULL, 0 },
};

static const struct resp_command_info client_subcommands[] = {
	{ RESP_CMD_CLIENT_ID, "client|id", 2, F_NOSCRIPT | F_LOADING | F_STALE, 0, 0, 0,
	  "Returns the client ID for the current connection", "5.0.0", "connection",
	  "O(1)", NULL, 0 },
	{ RESP_CMD_CLIENT_GETNAME, "client|getname", 2,
	  F_NOSCRIPT | F_LOADING | F_STALE, 0, 0, 0,
	  "Get the current connection name", "2.6.9", "connection", "O(1)", NULL, 0 },
	{ RESP_CMD_CLIENT_SETNAME, "client|setname", 3,
	  F_NOSCRIPT | F_LOADING | F_STALE, 0, 0, 0,
	  "Set the current connection name", "2.6.9", "connection", "O(1)", NULL, 0 },
	{ RESP_CMD_CLIENT_INFO, "client|info", 2, F_NOSCRIPT | F_LOADING | F_STALE,
	  0, 0, 0, "Returns information about the current client connection.",
	  "6.2.0", "connection", "O(1)", NULL, 0 },
	{ RESP_CMD_CLIENT_LIST, "client|list", -2,
	  F_ADMIN | F_NOSCRIPT | F_LOADING | F_STALE, 0, 0, 0,
	  "Get the list of client connections", "2.4.0", "connection",
	  "O(N) where N is the number of client connections", NULL, 0 },
	{ RESP_CMD_CLIENT_KILL, "client|kill", -3,
	  F_ADMIN | F_NOSCRIPT | F_LOADING | F_STALE, 0, 0, 0,
	  "Kill the connection of a client", "2.4.0", "connection",
	  "O(N) where N is the number of client connections", NULL, 0 },
};

static const struct resp_command_info commands[RESP_CMD_TOP_COUNT] = {
	{ RESP_CMD_PING, "ping", -1, F_FAST, 0, 0, 0,
	  "Ping the server", "1.0.0", "connection", "O(1)", NULL, 0 },
	{ RESP_CMD_ECHO, "echo", 2, F_LOADING | F_STALE | F_FAST, 0, 0, 0,
	  "Echo the given string", "1.0.0", "connection", "O(1)", NULL, 0 },
	{ RESP_CMD_QUIT, "quit", -1,
	  F_NOSCRIPT | F_LOADING | F_STALE | F_FAST | F_NOAUTH | F_BUSY, 0, 0, 0,
	  "Close the connection", "1.0.0", "connection", "O(1)", NULL, 0 },
	{ RESP_CMD_SELECT, "select", 2, F_LOADING | F_STALE | F_FAST, 0, 0, 0,
	  "Change the selected database for the current connection", "1.0.0",
	  "connection", "O(1)", NULL, 0 },
	{ RESP_CMD_HELLO, "hello", -1,
	  F_NOSCRIPT | F_LOADING | F_STALE | F_FAST | F_NOAUTH | F_BUSY, 0, 0, 0,
	  "Handshake with Redis", "6.0.0", "connection", "O(1)", NULL, 0 },
	{ RESP_CMD_GET, "get", 2, F_R | F_FAST, 1, 1, 1,
	  "Get the value of a key", "1.0.0", "string", "O(1)", NULL, 0 },
	{ RESP_CMD_SET, "set", -3, F_W | F_OOM, 1, 1, 1,
	  "Set the string value of a key", "1.0.0", "string", "O(1)", NULL, 0 },
	{ RESP_CMD_SETNX, "setnx", 3, F_W | F_OOM | F_FAST, 1, 1, 1,
	  "Set the value of a key, only if the key does not exist", "1.0.0",
	  "string", "O(1)", NULL, 0 },
	{ RESP_CMD_GETSET, "getset", 3, F_W | F_OOM | F_FAST, 1, 1, 1,
	  "Set the string value of a key and return its old value", "1.0.0",
	  "string", "O(1)", NULL, 0 },
	{ RESP_CMD_DEL, "del", -2, F_W, 1, -1, 1,
	  "Delete a key", "1.0.0", "generic",
	  "O(N) where N is the number of keys that will be removed.", NULL, 0 },
	{ RESP_CMD_EXISTS, "exists", -2, F_R | F_FAST, 1, -1, 1,
	  "Determine if a key exists", "1.0.0", "generic",
	  "O(N) where N is the number of keys to check.", NULL, 0 },
	{ RESP_CMD_MGET, "mget", -2, F_R | F_FAST, 1, -1, 1,
	  "Get the values of all the given keys", "1.0.0", "string",
	  "O(N) where N is the number of keys to retrieve.", NULL, 0 },
	{ RESP_CMD_MSET, "mset", -3, F_W | F_OOM, 1, -1, 2,
	  "Set multiple keys to multiple values", "1.0.1", "string",
	  "O(N) where N is the number of keys to set.", NULL, 0 },
	{ RESP_CMD_INCR, "incr", 2, F_W | F_OOM | F_FAST, 1, 1, 1,
	  "Increment the integer value of a key by one", "1.0.0", "string",
	  "O(1)", NULL, 0 },
	{ RESP_CMD_DECR, "decr", 2, F_W | F_OOM | F_FAST, 1, 1, 1,
	  "Decrement the integer value of a key by one", "1.0.0", "string",
	  "O(1)", NULL, 0 },
	{ RESP_CMD_INCRBY, "incrby", 3, F_W | F_OOM | F_FAST, 1, 1, 1,
	  "Increment the integer value of a key by the given amount", "1.0.0",
	  "string", "O(1)", NULL, 0 },
	{ RESP_CMD_DECRBY, "decrby", 3, F_W | F_OOM | F_FAST, 1, 1, 1,
	  "Decrement the integer value of a key by the given number", "1.0.0",
	  "string", "O(1)", NULL, 0 },
	{ RESP_CMD_APPEND, "append", 3, F_W | F_OOM | F_FAST, 1, 1, 1,
	  "Append a value to a key", "2.0.0", "string", "O(1)", NULL, 0 },
	{ RESP_CMD_STRLEN, "strlen", 2, F_R | F_FAST, 1, 1, 1,
	  "Get the length of the value stored in a key", "2.2.0", "string",
	  "O(1)", NULL, 0 },
	{ RESP_CMD_SCAN, "scan", -2, F_R, 0, 0, 0,
	  "Incrementally iterate the keys space", "2.8.0", "generic",
	  "O(1) for every call. O(N) for a complete iteration.", NULL, 0 },
	{ RESP_CMD_DBSIZE, "dbsize", 1, F_R | F_FAST, 0, 0, 0,
	  "Return the number of keys in the selected database", "1.0.0",
	  "server", "O(1)", NULL, 0 },
	{ RESP_CMD_INFO, "info", -1, F_LOADING | F_STALE, 0, 0, 0,
	  "Get information and statistics about the server", "1.0.0", "server",
	  "O(1)", NULL, 0 },
	{ RESP_CMD_COMMAND, "command", -1, F_LOADING | F_STALE, 0, 0, 0,
	  "Get array of Redis command details", "2.8.13", "server",
	  "O(N) where N is the total number of Redis commands",
	  command_subcommands, ARRAY_LEN(command_subcommands) },
	{ RESP_CMD_CONFIG, "config", -2, 0, 0, 0, 0,
	  "A container for server configuration commands", "2.0.0", "server",
	  "Depends on subcommand.", config_subcommands,
	  ARRAY_LEN(config_subcommands) },
	{ RESP_CMD_CLIENT, "client", -2, 0, 0, 0, 0,
	  "A container for client connection commands", "2.4.0", "connection",
	  "Depends on subcommand.", client_subcommands,
	  ARRAY_LEN(client_subcommands) },
	/* KEYS: one pass over every shard, answered whole or refused past
	 * REDIS_KEYS_MAX_REPLY bytes (server/redis.h), so the complexity below
	 * is the cost. */
	{ RESP_CMD_KEYS, "keys", 2, F_R, 0, 0, 0,
	  "Find all keys matching the given pattern", "1.0.0", "generic",
	  "O(N) with N being the number of keys in the database, under the "
	  "assumption that the key names in the database and the given pattern "
	  "have limited length.", NULL, 0 },
	{ RESP_CMD_TYPE, "type", 2, F_R | F_FAST, 1, 1, 1,
	  "Determine the type stored at key", "1.0.0", "generic", "O(1)", NULL, 0 },
	{ RESP_CMD_TIME, "time", 1, F_LOADING | F_STALE | F_FAST, 0, 0, 0,
	  "Return the current server time", "2.6.0", "server", "O(1)", NULL, 0 },
	{ RESP_CMD_FLUSHDB, "flushdb", -1, F_W, 0, 0, 0,
	  "Remove all keys from the current database", "1.0.0", "server",
	  "O(N) where N is the number of keys in the selected database", NULL, 0 },
	{ RESP_CMD_FLUSHALL, "flushall", -1, F_W, 0, 0, 0,
	  "Remove all keys from all databases", "1.0.0", "server",
	  "O(N) where N is the total number of keys in all databases", NULL, 0 },
	/* String commands of server/redis_strings.c. */
	{ RESP_CMD_GETDEL, "getdel", 2, F_W | F_FAST, 1, 1, 1,
	  "Get the value of a key and delete the key", "6.2.0", "string", "O(1)", NULL, 0 },
	{ RESP_CMD_GETRANGE, "getrange", 4, F_R, 1, 1, 1,
	  "Get a substring of the string stored at a key", "2.4.0", "string",
	  "O(N) where N is the length of the returned string. The complexity is ultimately "
	  "determined by the returned length, but because creating a substring from an "
	  "existing string is very cheap, it can be considered O(1) for small strings.",
	  NULL, 0 },
	{ RESP_CMD_SUBSTR, "substr", 4, F_R, 1, 1, 1,
	  "Get a substring of the string stored at a key", "1.0.0", "string",
	  "O(N) where N is the length of the returned string. The complexity is ultimately "
	  "determined by the returned length, but because creating a substring from an "
	  "existing string is very cheap, it can be considered O(1) for small strings.",
	  NULL, 0 },
	{ RESP_CMD_SETRANGE, "setrange", 4, F_W | F_OOM, 1, 1, 1,
	  "Overwrite part of a string at key starting at the specified offset", "2.2.0",
	  "string", "O(1), not counting the time taken to copy the new string in place. "
	  "Usually, this string is very small so the amortized complexity is O(1). "
	  "Otherwise, complexity is O(M) with M being the length of the value argument.",
	  NULL, 0 },
	{ RESP_CMD_GETBIT, "getbit", 3, F_R | F_FAST, 1, 1, 1,
	  "Returns the bit value at offset in the string value stored at key", "2.2.0",
	  "bitmap", "O(1)", NULL, 0 },
	{ RESP_CMD_SETBIT, "setbit", 4, F_W | F_OOM, 1, 1, 1,
	  "Sets or clears the bit at offset in the string value stored at key", "2.2.0",
	  "bitmap", "O(1)", NULL, 0 },
	{ RESP_CMD_BITCOUNT, "bitcount", -2, F_R, 1, 1, 1,
	  "Count set bits in a string", "2.6.0", "bitmap", "O(N)", NULL, 0 },
	{ RESP_CMD_BITPOS, "bitpos", -3, F_R, 1, 1, 1,
	  "Find first bit set or clear in a string", "2.8.7", "bitmap", "O(N)", NULL, 0 },
	{ RESP_CMD_LCS, "lcs", -3, F_R, 1, 2, 1,
	  "Find longest common substring", "7.0.0", "string",
	  "O(N*M) where N and M are the lengths of s1 and s2, respectively", NULL, 0 },
	{ RESP_CMD_INCRBYFLOAT, "incrbyfloat", 3, F_W | F_OOM | F_FAST, 1, 1, 1,
	  "Increment the float value of a key by the given amount", "2.6.0", "string",
	  "O(1)", NULL, 0 },
	/* Keyspace commands that are DEL and EXISTS here: deleting is never
	 * more than a tombstone, and ringkv keeps no access times. */
	{ RESP_CMD_UNLINK, "unlink", -2, F_W | F_FAST, 1, -1, 1,
	  "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but "
	  "non blocking.", "4.0.0", "generic",
	  "O(1) for each key removed regardless of its size. Then the command does O(N) work "
	  "in a different thread in order to reclaim memory, where N is the number of "
	  "allocations the deleted objects where composed of.", NULL, 0 },
	{ RESP_CMD_TOUCH, "touch", -2, F_R | F_FAST, 1, -1, 1,
	  "Alters the last access time of a key(s). Returns the number of existing keys "
	  "specified.", "3.2.1", "generic", "O(N) where N is the number of keys that will be "
	  "touched.", NULL, 0 },
	/* Multi-key writes of server/redis_keys.c: atomic, so all their keys
	 * must live on one shard (else CROSSSLOT, as Redis Cluster). */
	{ RESP_CMD_MSETNX, "msetnx", -3, F_W | F_OOM, 1, -1, 2,
	  "Set multiple keys to multiple values, only if none of the keys exist", "1.0.1",
	  "string", "O(N) where N is the number of keys to set.", NULL, 0 },
	{ RESP_CMD_RENAME, "rename", 3, F_W, 1, 2, 1,
	  "Rename a key", "1.0.0", "generic", "O(1)", NULL, 0 },
	{ RESP_CMD_RENAMENX, "renamenx", 3, F_W | F_FAST, 1, 2, 1,
	  "Rename a key, only if the new key does not exist", "1.0.0", "generic", "O(1)",
	  NULL, 0 },
	{ RESP_CMD_COPY, "copy", -3, F_W | F_OOM, 1, 2, 1,
	  "Copy a key", "6.2.0", "generic",
	  "O(N) worst case for collections, where N is the number of nested items. O(1) for "
	  "string values.", NULL, 0 },
	{ RESP_CMD_SETEX, "setex", 4, F_W | F_OOM, 1, 1, 1,
	  "Set the value and expiration of a key", "2.0.0", "string", "O(1)", NULL, 0 },
	{ RESP_CMD_PSETEX, "psetex", 4, F_W | F_OOM, 1, 1, 1,
	  "Set the value and expiration in milliseconds of a key", "2.6.0", "string", "O(1)",
	  NULL, 0 },
	{ RESP_CMD_GETEX, "getex", -2, F_W | F_FAST, 1, 1, 1,
	  "Get the value of a key and optionally set its expiration", "6.2.0", "string",
	  "O(1)", NULL, 0 },
	{ RESP_CMD_EXPIRE, "expire", -3, F_W | F_FAST, 1, 1, 1,
	  "Set a key's time to live in seconds", "1.0.0", "generic", "O(1)", NULL, 0 },
	{ RESP_CMD_PEXPIRE, "pexpire", -3, F_W | F_FAST, 1, 1, 1,
	  "Set a key's time to live in milliseconds", "2.6.0", "generic", "O(1)", NULL, 0 },
	{ RESP_CMD_EXPIREAT, "expireat", -3, F_W | F_FAST, 1, 1, 1,
	  "Set the expiration for a key as a UNIX timestamp", "1.2.0", "generic", "O(1)",
	  NULL, 0 },
	{ RESP_CMD_PEXPIREAT, "pexpireat", -3, F_W | F_FAST, 1, 1, 1,
	  "Set the expiration for a key as a UNIX timestamp specified in milliseconds",
	  "2.6.0", "generic", "O(1)", NULL, 0 },
	{ RESP_CMD_PERSIST, "persist", 2, F_W | F_FAST, 1, 1, 1,
	  "Remove the expiration from a key", "2.2.0", "generic", "O(1)", NULL, 0 },
	{ RESP_CMD_TTL, "ttl", 2, F_R | F_FAST, 1, 1, 1,
	  "Get the time to live for a key in seconds", "1.0.0", "generic", "O(1)", NULL, 0 },
	{ RESP_CMD_PTTL, "pttl", 2, F_R | F_FAST, 1, 1, 1,
	  "Get the time to live for a key in milliseconds", "2.6.0", "generic", "O(1)",
	  NULL, 0 },
	{ RESP_CMD_EXPIRETIME, "expiretime", 2, F_R | F_FAST, 1, 1, 1,
	  "Get the expiration Unix timestamp for a key", "7.0.0", "generic", "O(1)", NULL, 0 },
	{ RESP_CMD_PEXPIRETIME, "pexpiretime", 2, F_R | F_FAST, 1, 1, 1,
	  "Get the expiration Unix timestamp for a key in milliseconds", "7.0.0", "generic",
	  "O(1)", NULL, 0 },
	{ RESP_CMD_RANDOMKEY, "randomkey", 1, F_R, 0, 0, 0,
	  "Return a random key from the keyspace", "1.0.0", "generic", "O(1)", NULL, 0 },
	{ RESP_CMD_OBJECT, "object", -2, 0, 0, 0, 0,
	  "A container for object introspection commands", "2.2.3", "generic",
	  "Depends on subcommand.", NULL, 0 },
	{ RESP_CMD_DEBUG, "debug", -2, F_ADMIN | F_NOSCRIPT | F_LOADING | F_STALE, 0, 0, 0,
	  "A container for debugging commands", "1.0.0", "server",
	  "Depends on subcommand.", NULL, 0 },
	{ RESP_CMD_AUTH, "auth", -2,
	  F_NOSCRIPT | F_LOADING | F_STALE | F_FAST | F_NOAUTH | F_BUSY, 0, 0, 0,
	  "Authenticate to the server", "1.0.0", "connection",
	  "O(N) where N is the number of passwords defined for the user", NULL, 0 },
};

static const char *const flag_names[RESP_CMDF_COUNT] = {
	"write", "readonly", "denyoom", "admin", "noscript",
	"loading", "stale", "fast", "no_auth", "allow_busy",
};

static char to_lower(uint8_t c)
{
	return (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
}

/* Whether name[0..len) equals the lower-case `lower`, ignoring case. */
static bool name_equals(const char *lower, const uint8_t *name, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (lower[i] == '\0' || lower[i] != to_lower(name[i]))
			return false;
	}
	return lower[i] == '\0';
}

static const struct resp_command_info *
find(const struct resp_command_info *table, size_t count, size_t skip,
     const uint8_t *name, size_t len)
{
	assert(name != NULL || len == 0);
	for (size_t i = 0; i < count; i++) {
		if (name_equals(table[i].name + skip, name, len))
			return &table[i];
	}
	return NULL;
}

/* Open addressing, at most half full: a probe ends within a few slots. */
#define INDEX_SLOTS 256u
_Static_assert(ARRAY_LEN(commands) * 2 <= INDEX_SLOTS && ARRAY_LEN(commands) < 255,
	       "the command index is too small for the table");

/* index_slot[h]: 1 + the position in commands[] of the name hashed to h
 * (or probed on to it), 0 for none. Written once, by index_build. */
static uint8_t index_slot[INDEX_SLOTS];
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

static unsigned name_hash(const uint8_t *name, size_t len)
{
	uint32_t h = (uint32_t)len;

	for (size_t i = 0; i < len; i++)
		h = h * 31 + (uint8_t)to_lower(name[i]);
	return h % INDEX_SLOTS;
}

static void index_build(void)
{
	for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
		const char *n = commands[i].name;
		unsigned h = name_hash((const uint8_t *)n, strlen(n));

		while (index_slot[h])
			h = (h + 1) % INDEX_SLOTS;
		index_slot[h] = (uint8_t)(i + 1);
	}
}

const struct resp_command_info *resp_command_lookup(const uint8_t *name,
						    size_t len)
{
	assert(name != NULL || len == 0);
	pthread_once(&index_once, index_build);
	for (unsigned h = name_hash(name, len); index_slot[h]; h = (h + 1) % INDEX_SLOTS) {
		const struct resp_command_info *ci = &commands[index_slot[h] - 1];

		if (name_equals(ci->name, name, len))
			return ci;
	}
	return NULL;
}

const struct resp_command_info *
resp_subcommand_lookup(const struct resp_command_info *parent,
		       const uint8_t *name, size_t len)
{
	assert(parent != NULL);
	if (!parent->subcommands)
		return NULL;
	/* Subcommand names are "parent|sub": compare after the '|'. */
	return find(parent->subcommands, parent->subcommand_count,
		    strlen(parent->name) + 1, name, len);
}

const struct resp_command_info *resp_command_table(size_t *count)
{
	assert(count != NULL);
	*count = ARRAY_LEN(commands);
	return commands;
}

const struct resp_command_info *resp_command_by_id(enum resp_cmd_id id)
{
	if ((unsigned)id >= RESP_CMD_TOP_COUNT)
		return NULL;
	if (commands[id].id == id)
		return &commands[id];
	for (size_t i = 0; i < ARRAY_LEN(commands); i++)
		if (commands[i].id == id)
			return &commands[i];
	return NULL;
}

bool resp_command_arity_ok(const struct resp_command_info *cmd, size_t argc)
{
	assert(cmd != NULL);
	if (cmd->arity >= 0)
		return argc == (size_t)cmd->arity;
	return argc >= (size_t)-cmd->arity;
}

const char *resp_command_flag_name(uint32_t flag)
{
	for (unsigned i = 0; i < RESP_CMDF_COUNT; i++) {
		if (flag == (1u << i))
			return flag_names[i];
	}
	return NULL;
}

size_t resp_command_flag_count(uint32_t flags)
{
	size_t n = 0;

	for (unsigned i = 0; i < RESP_CMDF_COUNT; i++)
		n += (flags >> i) & 1u;
	return n;
}

/* A bounded string builder: never overflows, always NUL-terminated. */
struct text {
	char *out;
	size_t cap;
	size_t len;
};

static void text_put(struct text *t, const void *bytes, size_t len)
{
	const uint8_t *b = bytes;

	for (size_t i = 0; i < len && t->len + 1 < t->cap; i++) {
		uint8_t c = b[i];

		t->out[t->len++] = (char)(c == '\r' || c == '\n' ? ' ' : c);
	}
	if (t->cap)
		t->out[t->len] = '\0';
}

static void text_puts(struct text *t, const char *s)
{
	text_put(t, s, strlen(s));
}

/* Redis formats arguments with "%.*s", so they end at a NUL byte. */
static size_t c_string_len(const uint8_t *data, size_t len, size_t max)
{
	const uint8_t *nul = len ? memchr(data, '\0', len) : NULL;

	if (nul)
		len = (size_t)(nul - data);
	return len < max ? len : max;
}

size_t resp_format_unknown_command(char *out, size_t cap,
				   const struct resp_arg *argv, size_t argc)
{
	struct text t = { out, cap, 0 };
	size_t args_len = 0;

	assert(argv != NULL && argc >= 1);
	assert(out != NULL || cap == 0);
	if (cap)
		out[0] = '\0';
	text_puts(&t, "ERR unknown command '");
	text_put(&t, argv[0].data, c_string_len(argv[0].data, argv[0].len, 128));
	text_puts(&t, "', with args beginning with: ");
	for (size_t i = 1; i < argc && args_len < 128; i++) {
		size_t n = c_string_len(argv[i].data, argv[i].len, 128 - args_len);

		text_puts(&t, "'");
		text_put(&t, argv[i].data, n);
		text_puts(&t, "' ");
		args_len += n + 3;
	}
	return t.len;
}

size_t resp_format_wrong_arity(char *out, size_t cap,
			       const struct resp_command_info *cmd)
{
	struct text t = { out, cap, 0 };

	assert(cmd != NULL);
	assert(out != NULL || cap == 0);
	if (cap)
		out[0] = '\0';
	text_puts(&t, "ERR wrong number of arguments for '");
	text_puts(&t, cmd->name);
	text_puts(&t, "' command");
	return t.len;
}

size_t resp_format_unknown_subcommand(char *out, size_t cap,
				      const struct resp_command_info *parent,
				      const uint8_t *sub, size_t sub_len)
{
	struct text t = { out, cap, 0 };
	char upper[16];
	size_t i;

	assert(parent != NULL);
	assert(out != NULL || cap == 0);
	if (cap)
		out[0] = '\0';
	for (i = 0; parent->name[i] && i + 1 < sizeof(upper); i++) {
		char c = parent->name[i];

		upper[i] = (char)(c >= 'a' && c <= 'z' ? c - ('a' - 'A') : c);
	}
	upper[i] = '\0';
	text_puts(&t, "ERR unknown subcommand '");
	text_put(&t, sub, c_string_len(sub, sub_len, 128));
	text_puts(&t, "'. Try ");
	text_puts(&t, upper);
	text_puts(&t, " HELP.");
	return t.len;
}
