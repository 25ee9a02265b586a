/*
 * Internals shared by the RESP front door's files: server/redis.c (connection,
 * reply order, key commands), server/redis_reply.c (reply building),
 * server/redis_scan.c (SCAN) and server/redis_admin.c (INFO, DBSIZE, HELLO,
 * COMMAND, CONFIG, CLIENT). See server/redis.h for the rules they implement.
 */
#ifndef RINGKV_SERVER_REDIS_IMPL_H
#define RINGKV_SERVER_REDIS_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/pool.h"
#include "core/timer.h"
#include "proto/resp.h"
#include "proto/resp_commands.h"
#include "server/kv.h"

struct conn;
struct node_core;

#define REDIS_CURSORS 4096u          /* remembered SCAN cursors per core */
#define REDIS_SCAN_DEFAULT_COUNT 10u
#define REDIS_SCAN_MAX_COUNT 10000u
#define REDIS_GET_ROOM 1024u
#define REDIS_MGET_ROOM 192u           /* per key of MGET: larger values take one more trip */
#define REDIS_MAX_KEYS 65536u          /* keys of one MGET/MSET/DEL/EXISTS */
#define REDIS_KEYS_STEP 1000u          /* keys a KEYS round examines per shard */
#define REDIS_KEYS_MAX_REPLY (4u << 20) /* KEYS answers whole up to this, or refuses */
#define REDIS_DESYNC_CLOSE_US 1000000u /* a protocol error's connection closes by then */

#define SET_NX 0x1
#define SET_XX 0x2
#define SET_GET 0x4
/* redis_single_key's opts bits 16-23: a KV_PUT_AT's COMMAND_SET_* or a
 * KV_EXPIRE_AT's COMMAND_EXPIRE_* flags (the request's limit). */
#define REDIS_OPTS_FLAGS_SHIFT 16

/*
 * Arguments of a string read (server/redis_strings.c), parsed before the
 * key is read and kept in its slot until the value is in.
 */
struct redis_read_args {
	int64_t start;          /* GETRANGE, BITCOUNT, BITPOS: range start;
				 * GETBIT: bit offset; LCS: MINMATCHLEN */
	int64_t end;            /* range end */
	const char *error;      /* answered instead, only if the key exists */
	uint8_t bit;            /* BITPOS: the bit sought */
	bool ranged;            /* BITCOUNT, BITPOS: a range was given */
	bool end_given;         /* BITPOS: its end too */
	bool bits;              /* the range counts bits (BIT), not bytes */
	bool len, idx, with_match_len; /* LCS options */
};

/* A reply being built: grown from the core's pool, reused per connection. */
struct reply {
	uint8_t *data;
	size_t len;
	size_t cap;
	bool failed;                /* an element did not fit: never emit it */
};

struct redis_slot {
	struct redis_slot *next;
	struct conn *conn;
	enum resp_cmd_id cmd;
	unsigned opts;              /* SET_* */
	unsigned stage;             /* SCAN: 1 = finding the cursor key, 2 = scanning */
	uint32_t parts;             /* requests sent */
	uint32_t pending;           /* requests not yet answered */
	struct kv_req **reqs;       /* [parts], kept until the reply is formatted */
	struct kv_req *one;         /* reqs storage for a single request */
	uint8_t *bytes;             /* a reply built at once, waiting for its turn */
	size_t len;
	uint32_t count;             /* SCAN: COUNT */
	uint8_t *pattern;           /* SCAN: MATCH pattern copy, or NULL */
	uint32_t pattern_len;
	uint8_t *cursor_key;        /* SCAN: resume key copy, or NULL */
	uint32_t cursor_len;
	bool from_start;            /* SCAN: cursor 0 */
	uint32_t random_shard;      /* RANDOMKEY (redis_random.c): the shard, */
	uint32_t random_tried;      /* shards found empty, */
	uint8_t random_phase;       /* 0 the step starts at the cursor key, 1 after it, */
	bool random_wrapped;        /* and whether it went on from the first key */
	uint8_t *keys;              /* KEYS: the matches so far, as RESP bulk strings */
	size_t keys_len;
	size_t keys_cap;
	uint32_t keys_found;
	bool oom;                   /* a request could not be built: answer an error */
	struct redis_read_args ra;  /* string reads: their arguments */
	bool has_ra;
	uint8_t timed;              /* latency histogram: 0 none, 1 read, 2 write */
	uint64_t start_us;          /* the loop's clock when the command began */
};

struct redis_conn {
	struct resp_parser parser;
	struct redis_slot *head;    /* replies in request order */
	struct redis_slot *tail;
	struct reply scratch;
	uint64_t id;
	char name[128];
	bool has_name;
	bool resp3;                 /* HELLO 3: RESP3 replies (maps, _ nulls...) */
	time_t created;             /* for CLIENT LIST's age */
	uint64_t last_us;           /* the core's clock at its last input (CONFIG timeout) */
	struct timer desync_close;  /* after a protocol error: see redis.c */
};

struct redis_cursor {
	uint64_t seq;
	uint8_t *key;
	uint32_t len;
};

struct redis_expiry;

/* The settings CONFIG SET changes at run time, each core's own copy
 * (server/redis_config.c). */
struct redis_settings {
	uint64_t maxclients;  /* as set: CONFIG GET answers it */
	uint32_t conn_limit;  /* connections per core: ceil(maxclients / cores) */
	uint32_t max_bulk;    /* proto-max-bulk-len, at most --max-value */
	unsigned loglevel;    /* debug, verbose, notice, warning */
	uint32_t timeout_s;   /* idle RESP clients closed after this; 0 never */
	uint64_t stamps[4];   /* of the last value taken, per setting */
};

struct redis_core {
	struct redis_expiry *expiry; /* active expiry (redis_expiry.c) */
	time_t started;             /* for INFO's uptime */
	uint64_t next_seq;
	struct redis_cursor cursors[REDIS_CURSORS];
	struct redis_counts *counts; /* DBSIZE's exact counts (redis_count.c), or NULL */
	struct redis_settings settings; /* CONFIG SET's (redis_config.c) */
	struct timer idle_sweep;        /* while settings.timeout_s > 0 */
};

/* ---- reply building (redis_reply.c) ---- */

/* Grows `r` for `more` bytes from the connection's core pool. */
bool reply_reserve(struct conn *conn, struct reply *r, size_t more);

/* Appends one element; on allocation failure the reply stays shorter (and the
 * connection is closed when it is emitted). */
#define REPLY_WRITE(conn, r, size, call)                                    \
	do {                                                                \
		if (reply_reserve(conn, r, size)) {                         \
			struct resp_out o = { (r)->data, (r)->len, (r)->cap }; \
			if (call == 0)                                      \
				(r)->len = o.len;                           \
			else                                                \
				(r)->failed = true;                         \
		} else {                                                    \
			(r)->failed = true;                                 \
		}                                                           \
	} while (0)

static inline void reply_reset(struct reply *r)
{
	r->len = 0;
	r->failed = false;
}

void reply_simple(struct conn *conn, struct reply *r, const char *text);
void reply_error(struct conn *conn, struct reply *r, const char *text);
void reply_errorf(struct conn *conn, struct reply *r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void reply_int(struct conn *conn, struct reply *r, int64_t v);
void reply_bulk(struct conn *conn, struct reply *r, const void *data, size_t len);
void reply_str(struct conn *conn, struct reply *r, const char *text);
void reply_null(struct conn *conn, struct reply *r);
void reply_array(struct conn *conn, struct reply *r, size_t n);
/*
 * Replies whose form depends on the connection's protocol (HELLO 2|3), as
 * Redis 7.0 writes them: a RESP2 connection gets *-1 for a null array, an
 * array of 2n for a map, an array for a set, a bulk string for a verbatim
 * string, a double or a big number, and :1/:0 for a boolean.
 */
void reply_null_array(struct conn *conn, struct reply *r);
void reply_map(struct conn *conn, struct reply *r, size_t pairs);
void reply_set(struct conn *conn, struct reply *r, size_t n);
void reply_verbatim(struct conn *conn, struct reply *r, const void *data, size_t len);
void reply_bool(struct conn *conn, struct reply *r, bool value);
void reply_double(struct conn *conn, struct reply *r, const char *text);
void reply_bignum(struct conn *conn, struct reply *r, const char *text);
/* RESP3 only (the caller checks): an attribute's or a push's header. */
void reply_aggregate3(struct conn *conn, struct reply *r, uint8_t type, size_t n);
/* The reply for a request that failed with a status other than OK/NOT_FOUND. */
void reply_status_error(struct conn *conn, struct reply *r, const struct kv_req *req);

/* ---- reply order and requests (redis.c) ---- */

struct pool *redis_pool(struct conn *conn);
/* The reply in the connection's scratch is complete: out now, or parked. */
void redis_reply_now(struct conn *conn);
/* Appends a slot for a command that waits on `parts` requests. */
struct redis_slot *redis_slot_new(struct conn *conn, enum resp_cmd_id cmd, uint32_t parts);
void redis_send_part(struct redis_slot *slot, struct kv_req *req);
/* Completion of every request a slot sends. */
void redis_part_done(struct node_core *c, struct kv_req *req);
/*
 * Part `part` of a command fanned out to shards or cores (no key, `room`
 * answer bytes), completing into `slot`, whose pending count holds one
 * guard while parts are sent. NULL when out of memory: the guard is then
 * dropped, the slot failed and the connection closing (the caller returns).
 */
struct kv_req *redis_part_new(struct redis_slot *slot, uint32_t part, uint32_t room);
/* Writes out the finished replies at the head of the FIFO; may free conn. */
void redis_drain(struct conn *conn);
void redis_out_of_memory(struct conn *conn);
bool redis_arg_is(const struct resp_arg *a, const char *word);

/*
 * A command on single key argv[1] as request `op` (value: the request's
 * value, or NULL; opts: SET_* (SET_GET: the previous value, or a command's
 * byte answer, comes back); integer: the request's integer). With `ra`, a
 * string read whose answer redis_format_read computes from the value.
 */
void redis_single_key(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id,
		      enum kv_op op, const struct resp_arg *value, unsigned opts, int64_t integer,
		      const struct redis_read_args *ra);
/* Reads argv[1] and argv[2] (LCS) and answers with redis_format_lcs. */
void redis_two_keys(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id,
		    const struct redis_read_args *ra);

/* ---- multi-key writes (redis_multi.c) ---- */

/* Runs command `id` if it is MSETNX, RENAME, RENAMENX or COPY: true, else
 * false. Keys on different shards are answered CROSSSLOT. */
bool redis_cmd_multi(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id);
/* The reply of one of them, from its request's answer. */
void redis_format_multi(struct conn *conn, struct reply *r, enum resp_cmd_id id,
			const struct kv_req *req);

/* ---- expiry (redis_expire.c; active expiry: redis_expiry.c) ---- */

/* Starts this core's background deletion of expired keys. 0 or -1 (no memory). */
int redis_expiry_start(struct node_core *c);
/* Stops it (the core is finishing: nothing in flight any more). */
void redis_expiry_stop(struct node_core *c);

/* SET with every Redis 7.0 option. */
void redis_cmd_set(struct conn *conn, const struct resp_command *cmd);
/* Runs command `id` if it is one of redis_expire.c's: true, else false. */
bool redis_cmd_expire(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id);
/* Whether `id` reads a deadline (never answered by the memory-only fast path). */
bool redis_is_ttl_read(enum resp_cmd_id id);
/* The reply of one of them: true, else false. */
bool redis_format_expire(struct conn *conn, struct reply *r, enum resp_cmd_id id,
			 const struct kv_req *req);

/* ---- string commands (redis_strings.c) ---- */

/* Runs command `id` if it is one of redis_strings.c's: true, else false. */
bool redis_cmd_string(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id);
void redis_format_read(struct conn *conn, struct reply *r, enum resp_cmd_id id,
		       const struct redis_read_args *ra, bool found, const uint8_t *v, size_t len);
void redis_format_lcs(struct conn *conn, struct reply *r, const struct redis_read_args *ra,
		      const uint8_t *a, size_t n, const uint8_t *b, size_t m);

/* ---- SCAN (redis_scan.c) ---- */

void redis_cmd_scan(struct conn *conn, const struct resp_command *cmd);
/* Sends one step to every shard from the slot's cursor key. */
int redis_scan_start(struct redis_slot *slot);
void redis_format_scan(struct conn *conn, struct redis_slot *slot, struct reply *r);

/* ---- KEYS (redis_scan.c) ---- */

/* SCAN stages of a KEYS slot after redis_scan_start's 2 (a round out). */
enum redis_keys_stage {
	KEYS_FAILED = 3,  /* a shard's step failed: its status is the answer */
	KEYS_TOO_MANY,    /* the matches passed REDIS_KEYS_MAX_REPLY */
	KEYS_DONE,        /* every shard finished: slot->keys is the answer */
};

void redis_cmd_keys(struct conn *conn, const struct resp_command *cmd);
/* A round's steps are all back: keeps the complete keys, starts the next
 * round or lets the answer out (redis_drain; the slot may be freed). */
void redis_keys_continue(struct redis_slot *slot);

/* ---- RANDOMKEY (redis_random.c) ---- */
void redis_cmd_randomkey(struct conn *conn);
/* A step answered: the next one, or the answer (slot->stage 3: nil). */
void redis_randomkey_continue(struct redis_slot *slot);
void redis_format_randomkey(struct conn *conn, struct redis_slot *slot, struct reply *r);

/* Keys this node's active expiry deleted since start (redis_expiry.c). */
uint64_t redis_expired_keys(void);
/* DEBUG SET-ACTIVE-EXPIRE 0|1; anything else refused (redis_expiry.c). */
void redis_cmd_debug(struct conn *conn, const struct resp_command *cmd);
void redis_format_keys(struct conn *conn, struct redis_slot *slot, struct reply *r);

/* ---- server commands (redis_admin.c) ---- */

/* DBSIZE and INFO: one statistics request per core. */
void redis_all_cores(struct conn *conn, enum resp_cmd_id id, const struct resp_arg *section);
/* server/redis_flush.c: FLUSHDB / FLUSHALL (`id`) and their reply. */
void redis_cmd_flush(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id);
void redis_format_flush(struct conn *conn, struct redis_slot *slot, struct reply *r);
void redis_format_stats(struct conn *conn, struct redis_slot *slot, struct kv_core_stats *sum);
void redis_format_info(struct conn *conn, struct redis_slot *slot, struct reply *r);
/* ---- authentication (redis_auth.c) ---- */

/* HELLO [2 [AUTH user pass] [SETNAME name]] (protocol 3: NOPROTO). */
void redis_cmd_hello(struct conn *conn, const struct resp_command *cmd);
/* AUTH [user] password. */
void redis_cmd_auth(struct conn *conn, const struct resp_command *cmd);
/*
 * Whether the connection's user may run `cmd` (`ci` its entry): true, or
 * false after answering NOAUTH / NOPERM. Audits admin commands.
 */
bool redis_auth_allows(struct conn *conn, const struct resp_command *cmd,
		       const struct resp_command_info *ci);
/*
 * Whether the connection may see the keyspace's counts (INFO keyspace): not
 * when its user has a key prefix, as it may not run DBSIZE either.
 */
bool redis_auth_sees_keyspace(struct conn *conn);
/* The parser limits of an authenticated connection (redis.c). */
void redis_parser_limits(struct conn *conn, struct resp_limits *limits);
void redis_cmd_command(struct conn *conn, const struct resp_command *cmd,
		       const struct resp_command_info *parent);
/* CONFIG's run-time settings (redis_config.c): each core's copy set from
 * the flags at start (from redis_core_init). */
void redis_settings_init(struct node_core *c);
/* Stops the idle sweep (from redis_core_destroy). */
void redis_settings_stop(struct node_core *c);
/* The largest value a RESP request may carry now (proto-max-bulk-len). */
uint32_t redis_max_value(const struct node_core *c);
/* A slot waiting on cores (slot->pending 1) is answered with the scratch
 * reply; the connection's replies drain (the slot may be freed). */
void redis_slot_answer(struct conn *conn, struct redis_slot *slot);
void redis_cmd_config(struct conn *conn, const struct resp_command *cmd,
		      const struct resp_command_info *sub);
void redis_cmd_client(struct conn *conn, const struct resp_command *cmd,
		      const struct resp_command_info *sub);
/*
 * The subcommand of `parent` named by argv[1], or NULL after replying with
 * the unknown-subcommand or wrong-arity error.
 */
/* ---- CLIENT LIST / KILL over every core (redis_client.c) ---- */

/* CLIENT LIST (kill false) or CLIENT KILL (true): every core's connections. */
void redis_client_gather(struct conn *conn, const struct resp_command *cmd, bool kill);
/* The connection's CLIENT LIST line, NUL-terminated; its length. */
size_t redis_client_line(struct conn *conn, char *buf, size_t cap);

const struct resp_command_info *redis_subcommand(struct conn *conn,
						 const struct resp_command *cmd,
						 const struct resp_command_info *parent);

#endif
