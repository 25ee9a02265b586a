/*
 * RESP2 connections: command dispatch, ordered replies, fan-out over shards.
 * See server/redis.h for the ordering, atomicity and cursor rules.
 */
#include "server/redis.h"

#include <errno.h>
#include <stdarg.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/log.h"
#include "proto/resp.h"
#include "proto/resp_commands.h"
#include "ringkv.pb.h"
#include "server/conn.h"
#include "server/kv.h"
#include "server/node.h"

#define REDIS_CURSORS 4096u          /* remembered SCAN cursors per core */
#define REDIS_SCAN_DEFAULT_COUNT 10u
#define REDIS_SCAN_MAX_COUNT 10000u
#define REDIS_GET_ROOM 1024u

#define SET_NX 0x1
#define SET_XX 0x2
#define SET_GET 0x4

/* A reply being built: grown from the core's pool, reused per connection. */
struct reply {
	uint8_t *data;
	size_t len;
	size_t cap;
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
};

struct redis_conn {
	struct resp_parser parser;
	struct redis_slot *head;    /* replies in request order */
	struct redis_slot *tail;
	struct reply scratch;
	uint64_t id;
	char name[128];
	bool has_name;
};

struct redis_cursor {
	uint64_t seq;
	uint8_t *key;
	uint32_t len;
};

struct redis_core {
	uint64_t next_seq;
	struct redis_cursor cursors[REDIS_CURSORS];
};

static time_t start_time;

static struct pool *pool_of(struct conn *conn)
{
	return &conn->core->reactor->pool;
}

/* ---- reply building ---------------------------------------------------- */

static bool reserve(struct conn *conn, struct reply *r, size_t more)
{
	size_t want = r->cap ? r->cap : 256;
	uint8_t *buf;

	if (r->len + more <= r->cap)
		return true;
	while (want < r->len + more)
		want *= 2;
	buf = pool_alloc(pool_of(conn), want);
	if (!buf)
		return false;
	if (r->len)
		memcpy(buf, r->data, r->len);
	pool_free(pool_of(conn), r->data);
	r->data = buf;
	r->cap = pool_block_size(buf);
	return true;
}

/* Each helper appends one element; on allocation failure the reply is simply
 * shorter, and the connection is closed when it is emitted. */
#define REPLY_WRITE(conn, r, size, call)                                    \
	do {                                                                \
		if (reserve(conn, r, size)) {                               \
			struct resp_out o = { r->data, r->len, r->cap };    \
			if (call == 0)                                      \
				r->len = o.len;                             \
		}                                                           \
	} while (0)

static void r_simple(struct conn *conn, struct reply *r, const char *text)
{
	REPLY_WRITE(conn, r, resp_size_simple(strlen(text)), resp_write_simple_str(&o, text));
}

static void r_error(struct conn *conn, struct reply *r, const char *text)
{
	REPLY_WRITE(conn, r, resp_size_error(strlen(text)), resp_write_error_str(&o, text));
}

static void r_int(struct conn *conn, struct reply *r, int64_t v)
{
	REPLY_WRITE(conn, r, resp_size_integer(v), resp_write_integer(&o, v));
}

static void r_bulk(struct conn *conn, struct reply *r, const void *data, size_t len)
{
	REPLY_WRITE(conn, r, resp_size_bulk(len), resp_write_bulk(&o, data, len));
}

static void r_str(struct conn *conn, struct reply *r, const char *text)
{
	r_bulk(conn, r, text, strlen(text));
}

static void r_null(struct conn *conn, struct reply *r)
{
	REPLY_WRITE(conn, r, resp_size_null_bulk(), resp_write_null_bulk(&o));
}

static void r_array(struct conn *conn, struct reply *r, size_t n)
{
	REPLY_WRITE(conn, r, resp_size_array(n), resp_write_array(&o, n));
}

static void r_errorf(struct conn *conn, struct reply *r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void r_errorf(struct conn *conn, struct reply *r, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	r_error(conn, r, text);
}

/* The reply for a request that failed with a status other than OK/NOT_FOUND. */
static void r_status_error(struct conn *conn, struct reply *r, const struct kv_req *req)
{
	const char *text = req->error ? req->error : "internal error";

	if (req->status == ringkv_Status_RESOURCE_EXHAUSTED)
		r_errorf(conn, r, "OOM %s", text);
	else
		r_errorf(conn, r, "ERR %s", text);
}

/* ---- reply ordering ---------------------------------------------------- */

static void slot_free(struct conn *conn, struct redis_slot *slot)
{
	struct pool *p = pool_of(conn);
	uint32_t i;

	for (i = 0; i < slot->parts; i++)
		if (slot->reqs[i])
			kv_req_free(conn->core, slot->reqs[i]);
	if (slot->reqs != &slot->one)
		pool_free(p, slot->reqs);
	pool_free(p, slot->bytes);
	pool_free(p, slot->pattern);
	pool_free(p, slot->cursor_key);
	pool_free(p, slot);
}

/* Copies a finished reply to the connection's output. */
static void emit(struct conn *conn, const struct reply *r)
{
	uint8_t *out = conn_out_reserve(conn, r->len);

	if (out) {
		memcpy(out, r->data, r->len);
		conn_out_commit(conn, r->len);
	}
}

static void format_slot(struct conn *conn, struct redis_slot *slot, struct reply *r);

/* Writes out every finished reply at the head of the FIFO, in order. */
static void drain(struct conn *conn)
{
	struct redis_conn *rc = conn->redis;

	while (rc->head && rc->head->pending == 0) {
		struct redis_slot *slot = rc->head;

		if (slot->bytes) {
			struct reply r = { slot->bytes, slot->len, slot->len };
			emit(conn, &r);
		} else {
			rc->scratch.len = 0;
			format_slot(conn, slot, &rc->scratch);
			emit(conn, &rc->scratch);
		}
		rc->head = slot->next;
		if (!rc->head)
			rc->tail = NULL;
		slot_free(conn, slot);
		conn->inflight--;
	}
	/* Last: this may resume reading, or free the connection. */
	conn_poke(conn);
}

static struct redis_slot *slot_new(struct conn *conn, enum resp_cmd_id cmd, uint32_t parts)
{
	struct redis_conn *rc = conn->redis;
	struct redis_slot *slot = pool_alloc(pool_of(conn), sizeof *slot);

	if (!slot)
		return NULL;
	memset(slot, 0, sizeof *slot);
	slot->conn = conn;
	slot->cmd = cmd;
	slot->reqs = &slot->one;
	if (parts > 1) {
		slot->reqs = pool_alloc(pool_of(conn), parts * sizeof *slot->reqs);
		if (!slot->reqs) {
			pool_free(pool_of(conn), slot);
			return NULL;
		}
		memset(slot->reqs, 0, parts * sizeof *slot->reqs);
	}
	if (rc->tail)
		rc->tail->next = slot;
	else
		rc->head = slot;
	rc->tail = slot;
	conn->inflight++;
	return slot;
}

/* The reply in scratch is complete: out now if nothing waits before it,
 * else parked in a slot of its own. */
static void reply_now(struct conn *conn)
{
	struct redis_conn *rc = conn->redis;
	struct redis_slot *slot;

	if (!rc->head) {
		emit(conn, &rc->scratch);
		return;
	}
	slot = slot_new(conn, RESP_CMD_PING, 0);
	if (slot) {
		slot->bytes = pool_alloc(pool_of(conn), rc->scratch.len ? rc->scratch.len : 1);
		if (slot->bytes) {
			memcpy(slot->bytes, rc->scratch.data, rc->scratch.len);
			slot->len = rc->scratch.len;
			return;
		}
	}
	log_warn("connection %llu: out of memory queueing a reply; closing",
		 (unsigned long long)conn->serial);
	conn_close_after_reply(conn);
}

static void part_done(struct node_core *c, struct kv_req *req);

static struct kv_req *part_new(struct conn *conn, struct redis_slot *slot, uint32_t part,
			       enum kv_op op, const struct resp_arg *key, uint32_t extra,
			       uint32_t room)
{
	struct kv_req *req = kv_req_new(conn->core, key->len, extra + room);

	if (!req)
		return NULL;
	req->complete = part_done;
	req->ctx = slot;
	req->part = part;
	req->op = (uint8_t)op;
	req->shard = kv_shard_of(conn->core, key->data, key->len);
	req->key_len = key->len;
	memcpy(req->data, key->data, key->len);
	return req;
}

static bool is_write(enum kv_op op);

static void send_part(struct redis_slot *slot, struct kv_req *req)
{
	if (is_write(req->op))
		slot->conn->writes_inflight++;
	slot->pending++;
	slot->parts = req->part + 1 > slot->parts ? req->part + 1 : slot->parts;
	kv_dispatch(slot->conn->core, req);
}

/* ---- SCAN ---------------------------------------------------------------- */

static int cursor_register(struct node_core *c, const void *key, size_t len, uint64_t *out)
{
	struct redis_core *rcore = c->redis;
	struct redis_cursor *e;
	uint64_t seq = ++rcore->next_seq & ((1ull << 48) - 1);
	uint8_t *copy = pool_alloc(&c->reactor->pool, len ? len : 1);

	if (!copy)
		return -ENOMEM;
	e = &rcore->cursors[seq % REDIS_CURSORS];
	pool_free(&c->reactor->pool, e->key);
	memcpy(copy, key, len);
	e->seq = seq;
	e->key = copy;
	e->len = (uint32_t)len;
	*out = ((uint64_t)(c->reactor->id + 1) << 48) | seq;
	return 0;
}

int redis_cursor_lookup(struct node_core *c, uint64_t cursor, const void **key, size_t *len)
{
	struct redis_core *rcore = c->redis;
	uint64_t seq = cursor & ((1ull << 48) - 1);
	struct redis_cursor *e = &rcore->cursors[seq % REDIS_CURSORS];

	if ((cursor >> 48) != c->reactor->id + 1 || e->seq != seq || !e->key)
		return -ENOENT;
	*key = e->key;
	*len = e->len;
	return 0;
}

static int scan_start(struct redis_slot *slot)
{
	struct conn *conn = slot->conn;
	struct node_core *c = conn->core;
	uint32_t max_key = c->node->cfg.max_key;
	uint32_t room = 2 * max_key + 8 + slot->count * 48;
	uint32_t shards = c->node->shards;
	struct kv_req **reqs;
	uint32_t i;

	/* The cursor lookup (if any) is done with; make room for one request
	 * per shard. */
	reqs = pool_alloc(pool_of(conn), shards * sizeof *reqs);
	if (!reqs)
		return -ENOMEM;
	memset(reqs, 0, shards * sizeof *reqs);
	for (i = 0; i < slot->parts; i++)
		if (slot->reqs[i])
			kv_req_free(c, slot->reqs[i]);
	if (slot->reqs != &slot->one)
		pool_free(pool_of(conn), slot->reqs);
	slot->reqs = reqs;
	slot->parts = 0;
	slot->stage = 2;
	/* Held open until every shard's step is sent (see multi_key). */
	slot->pending++;
	for (i = 0; i < shards; i++) {
		struct kv_req *req = kv_req_new(c, slot->cursor_len,
						slot->pattern_len + room);

		if (!req) {
			slot->pending--;
			return -ENOMEM;
		}
		req->complete = part_done;
		req->ctx = slot;
		req->part = i;
		req->op = KV_SCAN;
		req->shard = i;
		req->key_len = slot->cursor_len;
		if (slot->cursor_len)
			memcpy(req->data, slot->cursor_key, slot->cursor_len);
		req->arg_len = slot->pattern_len;
		if (slot->pattern_len)
			memcpy(req->data + req->key_len, slot->pattern, slot->pattern_len);
		req->flags = slot->from_start ? 0 : KV_SCAN_AFTER;
		req->limit = slot->count;
		send_part(slot, req);
	}
	slot->pending--;
	return 0;
}

static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static void format_scan(struct conn *conn, struct redis_slot *slot, struct reply *r)
{
	uint32_t max_key = conn->core->node->cfg.max_key;
	const uint8_t *min_key = NULL;
	size_t min_len = 0, total = 0, len;
	uint64_t cursor = 0;
	char text[24];
	uint32_t i;

	/* Every shard has examined all its keys up to its own resume key; keys
	 * up to the smallest of those are therefore complete. */
	for (i = 0; i < slot->parts; i++) {
		const struct kv_req *req = slot->reqs[i];
		const uint8_t *resume = kv_answer(req, &len);

		if (req->done)
			continue;
		if (!min_key || key_cmp(resume, req->need, min_key, min_len) < 0) {
			min_key = resume;
			min_len = req->need;
		}
	}
	for (i = 0; i < slot->parts; i++) {
		const struct kv_req *req = slot->reqs[i];
		const uint8_t *p = kv_answer(req, &len) + max_key;
		const uint8_t *end = p + req->value_len;

		while (p < end) {
			uint32_t klen;

			memcpy(&klen, p, 4);
			if (!min_key || key_cmp(p + 4, klen, min_key, min_len) <= 0)
				total++;
			p += 4 + klen;
		}
	}
	if (min_key && cursor_register(conn->core, min_key, min_len, &cursor) != 0) {
		r_error(conn, r, "OOM no memory for a SCAN cursor");
		return;
	}
	r_array(conn, r, 2);
	snprintf(text, sizeof text, "%" PRIu64, cursor);
	r_str(conn, r, text);
	r_array(conn, r, total);
	for (i = 0; i < slot->parts; i++) {
		const struct kv_req *req = slot->reqs[i];
		const uint8_t *p = kv_answer(req, &len) + max_key;
		const uint8_t *end = p + req->value_len;

		while (p < end) {
			uint32_t klen;

			memcpy(&klen, p, 4);
			if (!min_key || key_cmp(p + 4, klen, min_key, min_len) <= 0)
				r_bulk(conn, r, p + 4, klen);
			p += 4 + klen;
		}
	}
}

/* ---- completion and formatting ---------------------------------------- */

static bool is_write(enum kv_op op)
{
	return op == KV_PUT || op == KV_DELETE || op == KV_PUT_NX || op == KV_PUT_XX ||
	       op == KV_INCRBY || op == KV_APPEND;
}

static void part_done(struct node_core *c, struct kv_req *req)
{
	struct redis_slot *slot = req->ctx;
	struct conn *conn = slot->conn;

	if (is_write(req->op))
		conn->writes_inflight--;
	slot->reqs[req->part] = req;
	if (--slot->pending)
		return;
	if (slot->cmd == RESP_CMD_SCAN && slot->stage == 1) {
		size_t len;
		const uint8_t *key = kv_answer(req, &len);

		if (req->status == ringkv_Status_OK) {
			slot->cursor_key = pool_alloc(pool_of(conn), len ? len : 1);
			if (slot->cursor_key) {
				memcpy(slot->cursor_key, key, len);
				slot->cursor_len = (uint32_t)len;
				if (scan_start(slot) == 0) {
					drain(conn);
					return;
				}
			}
		}
		/* Unknown cursor (or no memory): answer with the error now. */
		slot->stage = 3;
	}
	drain(conn);
}

static void format_stats(struct conn *conn, struct redis_slot *slot, struct kv_core_stats *sum)
{
	uint32_t i;

	memset(sum, 0, sizeof *sum);
	for (i = 0; i < slot->parts; i++) {
		struct kv_core_stats st;
		size_t len;
		const uint8_t *p = kv_answer(slot->reqs[i], &len);

		if (len != sizeof st)
			continue;
		memcpy(&st, p, sizeof st);
		sum->live_keys += st.live_keys;
		sum->shards += st.shards;
		sum->connections += st.connections;
		sum->requests += st.requests;
		sum->forwarded += st.forwarded;
		sum->writes += st.writes;
		sum->wal_bytes += st.wal_bytes;
		sum->batches += st.batches;
		sum->memtable_used += st.memtable_used;
		sum->memtable_capacity += st.memtable_capacity;
	}
}

static bool section_wanted(const char *section, const char *name)
{
	return !section[0] || !strcasecmp(section, name) || !strcasecmp(section, "all") ||
	       !strcasecmp(section, "everything") || !strcasecmp(section, "default");
}

static void format_info(struct conn *conn, struct redis_slot *slot, struct reply *r)
{
	struct node *n = conn->core->node;
	struct kv_core_stats st;
	char text[2048];
	const char *section = (const char *)slot->pattern;
	size_t len = 0;

	format_stats(conn, slot, &st);
	if (!section)
		section = "";
	if (section_wanted(section, "server"))
		len += (size_t)snprintf(text + len, sizeof text - len,
			"# Server\r\nredis_version:7.0.0\r\nringkv_version:%s\r\n"
			"redis_mode:standalone\r\nos:Linux\r\narch_bits:64\r\n"
			"process_id:%ld\r\ntcp_port:%u\r\nuptime_in_seconds:%ld\r\n"
			"cores:%u\r\nshards:%u\r\n\r\n",
			"0.1.0", (long)getpid(), n->resp_port,
			(long)(time(NULL) - start_time), n->cores, n->shards);
	if (section_wanted(section, "clients"))
		len += (size_t)snprintf(text + len, sizeof text - len,
			"# Clients\r\nconnected_clients:%" PRIu64 "\r\n\r\n", st.connections);
	if (section_wanted(section, "memory"))
		len += (size_t)snprintf(text + len, sizeof text - len,
			"# Memory\r\nused_memory:%" PRIu64 "\r\nmemtable_capacity:%" PRIu64
			"\r\n\r\n", st.memtable_used, st.memtable_capacity);
	if (section_wanted(section, "persistence"))
		len += (size_t)snprintf(text + len, sizeof text - len,
			"# Persistence\r\nloading:0\r\naof_enabled:1\r\n"
			"ringkv_fsync:always\r\n\r\n");
	if (section_wanted(section, "stats"))
		len += (size_t)snprintf(text + len, sizeof text - len,
			"# Stats\r\ntotal_commands_processed:%" PRIu64 "\r\n"
			"ringkv_requests_forwarded:%" PRIu64 "\r\n"
			"ringkv_writes_durable:%" PRIu64 "\r\nringkv_wal_batches:%" PRIu64 "\r\n"
			"ringkv_wal_bytes:%" PRIu64 "\r\n\r\n",
			st.requests, st.forwarded, st.writes, st.batches, st.wal_bytes);
	if (section_wanted(section, "keyspace"))
		len += (size_t)snprintf(text + len, sizeof text - len,
			"# Keyspace\r\ndb0:keys=%" PRIu64 ",expires=0,avg_ttl=0\r\n",
			st.live_keys);
	if (len >= sizeof text)
		len = sizeof text - 1;
	r_bulk(conn, r, text, len);
}

static void format_slot(struct conn *conn, struct redis_slot *slot, struct reply *r)
{
	struct kv_req *req = slot->reqs[0];
	int64_t sum = 0;
	size_t len;
	uint32_t i;

	if (slot->cmd == RESP_CMD_SCAN) {
		if (slot->stage != 2)
			r_error(conn, r, RESP_ERR_INVALID_CURSOR);
		else
			format_scan(conn, slot, r);
		return;
	}
	if (slot->cmd == RESP_CMD_INFO) {
		format_info(conn, slot, r);
		return;
	}
	if (slot->cmd == RESP_CMD_DBSIZE) {
		struct kv_core_stats st;

		format_stats(conn, slot, &st);
		r_int(conn, r, (int64_t)st.live_keys);
		return;
	}
	/* Any part that failed outright fails the command. */
	if (slot->parts == 0) {
		r_error(conn, r, "ERR out of memory");
		return;
	}
	for (i = 0; i < slot->parts; i++) {
		const struct kv_req *p = slot->reqs[i];

		if (!p) {
			r_error(conn, r, "ERR out of memory");
			return;
		}
		if (p->status != ringkv_Status_OK && p->status != ringkv_Status_NOT_FOUND) {
			r_status_error(conn, r, p);
			return;
		}
	}
	switch (slot->cmd) {
	case RESP_CMD_GET:
		if (req->status == ringkv_Status_OK) {
			const uint8_t *v = kv_answer(req, &len);
			r_bulk(conn, r, v, len);
		} else {
			r_null(conn, r);
		}
		return;
	case RESP_CMD_MGET:
		r_array(conn, r, slot->parts);
		for (i = 0; i < slot->parts; i++) {
			if (slot->reqs[i]->status == ringkv_Status_OK) {
				const uint8_t *v = kv_answer(slot->reqs[i], &len);
				r_bulk(conn, r, v, len);
			} else {
				r_null(conn, r);
			}
		}
		return;
	case RESP_CMD_SET:
		if (slot->opts & SET_GET) {
			if (req->existed) {
				const uint8_t *v = kv_answer(req, &len);
				r_bulk(conn, r, v, len);
			} else {
				r_null(conn, r);
			}
		} else if (req->applied) {
			r_simple(conn, r, "OK");
		} else {
			r_null(conn, r);
		}
		return;
	case RESP_CMD_GETSET:
		if (req->existed) {
			const uint8_t *v = kv_answer(req, &len);
			r_bulk(conn, r, v, len);
		} else {
			r_null(conn, r);
		}
		return;
	case RESP_CMD_SETNX:
		r_int(conn, r, req->applied);
		return;
	case RESP_CMD_MSET:
		r_simple(conn, r, "OK");
		return;
	case RESP_CMD_DEL:
	case RESP_CMD_EXISTS:
		for (i = 0; i < slot->parts; i++)
			sum += slot->reqs[i]->existed;
		r_int(conn, r, sum);
		return;
	case RESP_CMD_INCR:
	case RESP_CMD_DECR:
	case RESP_CMD_INCRBY:
	case RESP_CMD_DECRBY:
		if (req->result == RKV_EINVAL)
			r_error(conn, r, RESP_ERR_NOT_INTEGER);
		else if (req->result)
			r_error(conn, r, RESP_ERR_OVERFLOW);
		else
			r_int(conn, r, req->integer);
		return;
	case RESP_CMD_APPEND:
		if (req->result)
			r_errorf(conn, r, "ERR string exceeds maximum allowed size (%u bytes)",
				 conn->core->node->cfg.max_value);
		else
			r_int(conn, r, req->integer);
		return;
	case RESP_CMD_STRLEN:
		r_int(conn, r, req->integer);
		return;
	default:
		r_error(conn, r, "ERR internal error: unexpected reply");
		return;
	}
}

/* ---- commands ------------------------------------------------------------ */

static bool arg_is(const struct resp_arg *a, const char *word)
{
	size_t n = strlen(word);

	return a->len == n && strncasecmp((const char *)a->data, word, n) == 0;
}

static bool key_ok(struct conn *conn, struct reply *r, const struct resp_arg *key)
{
	if (key->len > conn->core->node->cfg.max_key) {
		r_errorf(conn, r, "ERR key too long (%u bytes, the limit is %u)",
			 key->len, conn->core->node->cfg.max_key);
		return false;
	}
	return true;
}

/* Out of memory while building a request: the connection cannot keep its
 * reply order any more, so it is closed after what is queued. */
static void out_of_memory(struct conn *conn)
{
	log_warn("connection %llu: out of memory; closing", (unsigned long long)conn->serial);
	conn_close_after_reply(conn);
	drain(conn);
}

/* A command on single key argv[1] with optional value argv[2]. */
static void single_key(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id,
		       enum kv_op op, const struct resp_arg *value, unsigned opts, int64_t integer)
{
	struct redis_conn *rc = conn->redis;
	const struct resp_arg *key = &cmd->argv[1];
	uint32_t room = value ? value->len : 0;
	struct redis_slot *slot;
	struct kv_req *req;

	rc->scratch.len = 0;
	if (!key_ok(conn, &rc->scratch, key)) {
		reply_now(conn);
		return;
	}
	if (op == KV_GET || (opts & SET_GET) || id == RESP_CMD_GETSET)
		room = room > REDIS_GET_ROOM ? room : REDIS_GET_ROOM;
	slot = slot_new(conn, id, 1);
	if (!slot) {
		out_of_memory(conn);
		return;
	}
	slot->opts = opts;
	req = part_new(conn, slot, 0, op, key, 0, room);
	if (!req) {
		out_of_memory(conn);
		return;
	}
	if (value) {
		memcpy(req->data + key->len, value->data, value->len);
		req->value_len = value->len;
	}
	req->integer = integer;
	req->limit = conn->core->node->cfg.max_value;
	if ((opts & SET_GET) || id == RESP_CMD_GETSET)
		req->flags |= KV_WANT_PRIOR;
	send_part(slot, req);
	drain(conn);
}

/* DEL, EXISTS, MGET over argv[1..]; MSET over pairs. */
static void multi_key(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id)
{
	struct redis_conn *rc = conn->redis;
	bool pairs = id == RESP_CMD_MSET;
	uint32_t n = (uint32_t)(pairs ? (cmd->argc - 1) / 2 : cmd->argc - 1);
	enum kv_op op = id == RESP_CMD_DEL ? KV_DELETE : id == RESP_CMD_EXISTS ? KV_EXISTS :
			id == RESP_CMD_MGET ? KV_GET : KV_PUT;
	struct redis_slot *slot;
	uint32_t i;

	rc->scratch.len = 0;
	for (i = 0; i < n; i++) {
		if (!key_ok(conn, &rc->scratch, &cmd->argv[1 + (pairs ? 2 * i : i)])) {
			reply_now(conn);
			return;
		}
	}
	slot = slot_new(conn, id, n);
	if (!slot) {
		out_of_memory(conn);
		return;
	}
	/* Every part is counted before any is sent: a part answered in place
	 * must not find the slot complete while others are still unsent. */
	slot->pending = 1;
	for (i = 0; i < n; i++) {
		const struct resp_arg *key = &cmd->argv[1 + (pairs ? 2 * i : i)];
		const struct resp_arg *value = pairs ? &cmd->argv[2 + 2 * i] : NULL;
		struct kv_req *req = part_new(conn, slot, i, op, key, 0,
					      value ? value->len : op == KV_GET ? REDIS_GET_ROOM : 0);

		if (!req) {
			slot->pending--;
			out_of_memory(conn);
			return;
		}
		if (value) {
			memcpy(req->data + key->len, value->data, value->len);
			req->value_len = value->len;
		}
		send_part(slot, req);
	}
	slot->pending--;
	drain(conn);
}

/* DBSIZE and INFO: one statistics request per core. */
static void all_cores(struct conn *conn, enum resp_cmd_id id, const struct resp_arg *section)
{
	struct node_core *c = conn->core;
	unsigned cores = c->node->cores;
	struct redis_slot *slot = slot_new(conn, id, cores);
	unsigned i;

	if (!slot) {
		out_of_memory(conn);
		return;
	}
	if (section && section->len < 64) {
		slot->pattern = pool_alloc(pool_of(conn), section->len + 1);
		if (slot->pattern) {
			memcpy(slot->pattern, section->data, section->len);
			slot->pattern[section->len] = '\0';
		}
	}
	slot->pending = 1;
	for (i = 0; i < cores; i++) {
		struct kv_req *req = kv_req_new(c, 0, sizeof(struct kv_core_stats));

		if (!req) {
			slot->pending--;
			out_of_memory(conn);
			return;
		}
		req->complete = part_done;
		req->ctx = slot;
		req->part = i;
		req->op = KV_CORE_STATS;
		req->target = (uint16_t)i;
		send_part(slot, req);
	}
	slot->pending--;
	drain(conn);
}

static void cmd_set(struct conn *conn, const struct resp_command *cmd)
{
	struct reply *r = &conn->redis->scratch;
	unsigned opts = 0;
	enum kv_op op = KV_PUT;
	size_t i;

	r->len = 0;
	for (i = 3; i < cmd->argc; i++) {
		const struct resp_arg *a = &cmd->argv[i];

		if (arg_is(a, "NX") && !(opts & SET_XX)) {
			opts |= SET_NX;
		} else if (arg_is(a, "XX") && !(opts & SET_NX)) {
			opts |= SET_XX;
		} else if (arg_is(a, "GET")) {
			opts |= SET_GET;
		} else if (arg_is(a, "EX") || arg_is(a, "PX") || arg_is(a, "EXAT") ||
			   arg_is(a, "PXAT") || arg_is(a, "KEEPTTL")) {
			r_error(conn, r, RESP_ERR_TTL_UNSUPPORTED);
			reply_now(conn);
			return;
		} else {
			r_error(conn, r, RESP_ERR_SYNTAX);
			reply_now(conn);
			return;
		}
	}
	if ((opts & SET_NX) && (opts & SET_GET)) {
		r_error(conn, r, RESP_ERR_SYNTAX);
		reply_now(conn);
		return;
	}
	if (opts & SET_NX)
		op = KV_PUT_NX;
	else if (opts & SET_XX)
		op = KV_PUT_XX;
	single_key(conn, cmd, RESP_CMD_SET, op, &cmd->argv[2], opts, 0);
}

static void cmd_incr(struct conn *conn, const struct resp_command *cmd, enum resp_cmd_id id)
{
	struct reply *r = &conn->redis->scratch;
	int64_t delta = id == RESP_CMD_DECR ? -1 : 1;

	r->len = 0;
	if (id == RESP_CMD_INCRBY || id == RESP_CMD_DECRBY) {
		if (resp_parse_int64(cmd->argv[2].data, cmd->argv[2].len, &delta) != 0) {
			r_error(conn, r, RESP_ERR_NOT_INTEGER);
			reply_now(conn);
			return;
		}
		if (id == RESP_CMD_DECRBY) {
			if (delta == INT64_MIN) {
				r_error(conn, r, RESP_ERR_DECRBY_MIN);
				reply_now(conn);
				return;
			}
			delta = -delta;
		}
	}
	single_key(conn, cmd, id, KV_INCRBY, NULL, 0, delta);
}

static void cmd_scan(struct conn *conn, const struct resp_command *cmd)
{
	struct node_core *c = conn->core;
	struct reply *r = &conn->redis->scratch;
	const struct resp_arg *pattern = NULL;
	uint64_t cursor, count = REDIS_SCAN_DEFAULT_COUNT;
	bool wrong_type = false;
	struct redis_slot *slot;
	size_t i;

	r->len = 0;
	if (resp_parse_uint64(cmd->argv[1].data, cmd->argv[1].len, &cursor) != 0) {
		r_error(conn, r, RESP_ERR_INVALID_CURSOR);
		reply_now(conn);
		return;
	}
	for (i = 2; i < cmd->argc; i++) {
		const struct resp_arg *a = &cmd->argv[i];
		int64_t v;

		if (i + 1 >= cmd->argc) {
			r_error(conn, r, RESP_ERR_SYNTAX);
			reply_now(conn);
			return;
		}
		if (arg_is(a, "MATCH")) {
			pattern = &cmd->argv[++i];
		} else if (arg_is(a, "COUNT")) {
			if (resp_parse_int64(cmd->argv[i + 1].data, cmd->argv[i + 1].len, &v) != 0) {
				r_error(conn, r, RESP_ERR_NOT_INTEGER);
				reply_now(conn);
				return;
			}
			if (v < 1) {
				r_error(conn, r, RESP_ERR_SYNTAX);
				reply_now(conn);
				return;
			}
			count = (uint64_t)v > REDIS_SCAN_MAX_COUNT ? REDIS_SCAN_MAX_COUNT : (uint64_t)v;
			i++;
		} else if (arg_is(a, "TYPE")) {
			wrong_type = !arg_is(&cmd->argv[++i], "string");
		} else {
			r_error(conn, r, RESP_ERR_SYNTAX);
			reply_now(conn);
			return;
		}
	}
	if (wrong_type) {
		/* Every ringkv value is a string. */
		r_array(conn, r, 2);
		r_str(conn, r, "0");
		r_array(conn, r, 0);
		reply_now(conn);
		return;
	}
	if (pattern && pattern->len > c->node->cfg.max_key) {
		r_error(conn, r, "ERR MATCH pattern too long");
		reply_now(conn);
		return;
	}
	slot = slot_new(conn, RESP_CMD_SCAN, 1);
	if (!slot) {
		out_of_memory(conn);
		return;
	}
	slot->count = (uint32_t)count;
	if (pattern) {
		slot->pattern = pool_alloc(pool_of(conn), pattern->len ? pattern->len : 1);
		if (!slot->pattern) {
			out_of_memory(conn);
			return;
		}
		memcpy(slot->pattern, pattern->data, pattern->len);
		slot->pattern_len = pattern->len;
	}
	if (cursor == 0) {
		slot->from_start = true;
		if (scan_start(slot) != 0)
			out_of_memory(conn);
		drain(conn);
		return;
	}
	/* Find the cursor's key on the core that issued it. */
	{
		unsigned owner = (unsigned)(cursor >> 48);
		struct kv_req *req;

		if (owner == 0 || owner > c->node->cores) {
			slot->stage = 3;
			drain(conn);
			return;
		}
		req = kv_req_new(c, 0, c->node->cfg.max_key);
		if (!req) {
			out_of_memory(conn);
			return;
		}
		req->complete = part_done;
		req->ctx = slot;
		req->part = 0;
		req->op = KV_CORE_CURSOR;
		req->target = (uint16_t)(owner - 1);
		req->integer = (int64_t)cursor;
		slot->stage = 1;
		send_part(slot, req);
		drain(conn);
	}
}

static void cmd_hello(struct conn *conn, const struct resp_command *cmd)
{
	struct redis_conn *rc = conn->redis;
	struct reply *r = &rc->scratch;
	int64_t proto = 2;

	r->len = 0;
	if (cmd->argc >= 2) {
		if (resp_parse_int64(cmd->argv[1].data, cmd->argv[1].len, &proto) != 0) {
			r_error(conn, r, "ERR Protocol version is not an integer or out of range");
			reply_now(conn);
			return;
		}
		if (proto != 2) {
			r_error(conn, r, RESP_ERR_NOPROTO);
			reply_now(conn);
			return;
		}
	}
	r_array(conn, r, 14);
	r_str(conn, r, "server");
	r_str(conn, r, "ringkv");
	r_str(conn, r, "version");
	r_str(conn, r, "0.1.0");
	r_str(conn, r, "proto");
	r_int(conn, r, 2);
	r_str(conn, r, "id");
	r_int(conn, r, (int64_t)rc->id);
	r_str(conn, r, "mode");
	r_str(conn, r, "standalone");
	r_str(conn, r, "role");
	r_str(conn, r, "master");
	r_str(conn, r, "modules");
	r_array(conn, r, 0);
	reply_now(conn);
}

static void command_info(struct conn *conn, struct reply *r, const struct resp_command_info *ci)
{
	uint32_t f;

	/* Redis 7's ten fields; ACL categories, tips, key specs and subcommand
	 * details are left empty. */
	r_array(conn, r, 10);
	r_str(conn, r, ci->name);
	r_int(conn, r, ci->arity);
	r_array(conn, r, resp_command_flag_count(ci->flags));
	for (f = 1; f && f <= ci->flags; f <<= 1)
		if (ci->flags & f)
			REPLY_WRITE(conn, r, resp_size_simple(strlen(resp_command_flag_name(f))),
				    resp_write_simple_str(&o, resp_command_flag_name(f)));
	r_int(conn, r, ci->first_key);
	r_int(conn, r, ci->last_key);
	r_int(conn, r, ci->key_step);
	r_array(conn, r, 0);
	r_array(conn, r, 0);
	r_array(conn, r, 0);
	r_array(conn, r, 0);
}

static void command_docs(struct conn *conn, struct reply *r, const struct resp_command_info *ci)
{
	r_str(conn, r, ci->name);
	r_array(conn, r, 8);
	r_str(conn, r, "summary");
	r_str(conn, r, ci->summary ? ci->summary : "");
	r_str(conn, r, "since");
	r_str(conn, r, ci->since ? ci->since : "");
	r_str(conn, r, "group");
	r_str(conn, r, ci->group ? ci->group : "");
	r_str(conn, r, "complexity");
	r_str(conn, r, ci->complexity ? ci->complexity : "");
}

static void cmd_command(struct conn *conn, const struct resp_command *cmd,
			const struct resp_command_info *parent)
{
	struct reply *r = &conn->redis->scratch;
	const struct resp_command_info *table, *sub;
	size_t n, i;
	char err[256];

	r->len = 0;
	table = resp_command_table(&n);
	if (cmd->argc == 1) {
		r_array(conn, r, n);
		for (i = 0; i < n; i++)
			command_info(conn, r, &table[i]);
		reply_now(conn);
		return;
	}
	sub = resp_subcommand_lookup(parent, cmd->argv[1].data, cmd->argv[1].len);
	if (!sub) {
		resp_format_unknown_subcommand(err, sizeof err, parent, cmd->argv[1].data,
					       cmd->argv[1].len);
		r_error(conn, r, err);
		reply_now(conn);
		return;
	}
	if (!resp_command_arity_ok(sub, cmd->argc)) {
		resp_format_wrong_arity(err, sizeof err, sub);
		r_error(conn, r, err);
		reply_now(conn);
		return;
	}
	switch (sub->id) {
	case RESP_CMD_COMMAND_COUNT:
		r_int(conn, r, (int64_t)n);
		break;
	case RESP_CMD_COMMAND_LIST:
		r_array(conn, r, n);
		for (i = 0; i < n; i++)
			r_str(conn, r, table[i].name);
		break;
	case RESP_CMD_COMMAND_INFO:
		r_array(conn, r, cmd->argc - 2);
		for (i = 2; i < cmd->argc; i++) {
			const struct resp_command_info *ci =
				resp_command_lookup(cmd->argv[i].data, cmd->argv[i].len);
			if (ci)
				command_info(conn, r, ci);
			else
				REPLY_WRITE(conn, r, resp_size_null_array(), resp_write_null_array(&o));
		}
		break;
	default: { /* COMMAND DOCS [name ...] */
		size_t found = 0;

		if (cmd->argc == 2) {
			r_array(conn, r, 2 * n);
			for (i = 0; i < n; i++)
				command_docs(conn, r, &table[i]);
			break;
		}
		for (i = 2; i < cmd->argc; i++)
			found += resp_command_lookup(cmd->argv[i].data, cmd->argv[i].len) != NULL;
		r_array(conn, r, 2 * found);
		for (i = 2; i < cmd->argc; i++) {
			const struct resp_command_info *ci =
				resp_command_lookup(cmd->argv[i].data, cmd->argv[i].len);
			if (ci)
				command_docs(conn, r, ci);
		}
		break;
	}
	}
	reply_now(conn);
}

static void cmd_config(struct conn *conn, const struct resp_command *cmd,
		       const struct resp_command_info *sub)
{
	struct node *n = conn->core->node;
	struct reply *r = &conn->redis->scratch;
	char maxmem[32], port[16], maxval[32];
	const char *params[][2] = {
		{ "save", "" },
		{ "appendonly", "yes" },
		{ "appendfsync", "always" },
		{ "databases", "1" },
		{ "maxmemory", maxmem },
		{ "port", port },
		{ "proto-max-bulk-len", maxval },
		{ "timeout", "0" },
	};
	const size_t nparams = sizeof params / sizeof params[0];
	size_t i, k, matched = 0;
	bool hit[sizeof params / sizeof params[0]] = { false };

	snprintf(maxmem, sizeof maxmem, "%" PRIu64, n->cfg.memtable_size * n->shards);
	snprintf(port, sizeof port, "%u", n->resp_port);
	snprintf(maxval, sizeof maxval, "%u", n->cfg.max_value);
	r->len = 0;
	if (sub->id == RESP_CMD_CONFIG_RESETSTAT) {
		r_simple(conn, r, "OK");
		reply_now(conn);
		return;
	}
	if (sub->id == RESP_CMD_CONFIG_SET) {
		r_error(conn, r, "ERR CONFIG SET is not supported: ringkvd takes its "
			"configuration from flags");
		reply_now(conn);
		return;
	}
	for (k = 2; k < cmd->argc; k++) {
		char pat[128];

		if (cmd->argv[k].len >= sizeof pat)
			continue;
		memcpy(pat, cmd->argv[k].data, cmd->argv[k].len);
		pat[cmd->argv[k].len] = '\0';
		for (i = 0; i < nparams; i++)
			if (!hit[i] && fnmatch(pat, params[i][0], FNM_CASEFOLD) == 0) {
				hit[i] = true;
				matched++;
			}
	}
	r_array(conn, r, 2 * matched);
	for (i = 0; i < nparams; i++)
		if (hit[i]) {
			r_str(conn, r, params[i][0]);
			r_str(conn, r, params[i][1]);
		}
	reply_now(conn);
}

static void client_line(struct conn *conn, char *buf, size_t len)
{
	struct redis_conn *rc = conn->redis;

	snprintf(buf, len, "id=%" PRIu64 " fd=%d name=%s db=0 cmd=client\n", rc->id,
		 conn->fd, rc->has_name ? rc->name : "");
}

static void cmd_client(struct conn *conn, const struct resp_command *cmd,
		       const struct resp_command_info *sub)
{
	struct redis_conn *rc = conn->redis;
	struct reply *r = &rc->scratch;
	char line[256];
	uint32_t i;

	r->len = 0;
	switch (sub->id) {
	case RESP_CMD_CLIENT_ID:
		r_int(conn, r, (int64_t)rc->id);
		break;
	case RESP_CMD_CLIENT_GETNAME:
		if (rc->has_name)
			r_str(conn, r, rc->name);
		else
			r_null(conn, r);
		break;
	case RESP_CMD_CLIENT_SETNAME: {
		const struct resp_arg *name = &cmd->argv[2];

		for (i = 0; i < name->len; i++)
			if (name->data[i] < '!' || name->data[i] > '~')
				break;
		if (i < name->len) {
			r_error(conn, r, RESP_ERR_CLIENT_NAME);
			break;
		}
		if (name->len >= sizeof rc->name) {
			r_error(conn, r, "ERR client name too long");
			break;
		}
		memcpy(rc->name, name->data, name->len);
		rc->name[name->len] = '\0';
		rc->has_name = name->len > 0;
		r_simple(conn, r, "OK");
		break;
	}
	default: /* INFO, LIST: this connection only */
		client_line(conn, line, sizeof line);
		r_str(conn, r, line);
		break;
	}
	reply_now(conn);
}

static void execute(struct conn *conn, const struct resp_command *cmd)
{
	struct reply *r = &conn->redis->scratch;
	const struct resp_command_info *ci;
	char err[256];
	int64_t db;

	r->len = 0;
	ci = resp_command_lookup(cmd->argv[0].data, cmd->argv[0].len);
	if (!ci) {
		resp_format_unknown_command(err, sizeof err, cmd->argv, cmd->argc);
		r_error(conn, r, err);
		reply_now(conn);
		return;
	}
	if (!resp_command_arity_ok(ci, cmd->argc) ||
	    (ci->id == RESP_CMD_MSET && cmd->argc % 2 == 0)) {
		resp_format_wrong_arity(err, sizeof err, ci);
		r_error(conn, r, err);
		reply_now(conn);
		return;
	}
	conn->core->stats.requests++;
	switch (ci->id) {
	case RESP_CMD_PING:
		if (cmd->argc == 2)
			r_bulk(conn, r, cmd->argv[1].data, cmd->argv[1].len);
		else
			r_simple(conn, r, "PONG");
		reply_now(conn);
		return;
	case RESP_CMD_ECHO:
		r_bulk(conn, r, cmd->argv[1].data, cmd->argv[1].len);
		reply_now(conn);
		return;
	case RESP_CMD_QUIT:
		r_simple(conn, r, "OK");
		reply_now(conn);
		conn_close_after_reply(conn);
		return;
	case RESP_CMD_SELECT:
		if (resp_parse_int64(cmd->argv[1].data, cmd->argv[1].len, &db) != 0)
			r_error(conn, r, RESP_ERR_NOT_INTEGER);
		else if (db != 0)
			r_error(conn, r, RESP_ERR_DB_INDEX);
		else
			r_simple(conn, r, "OK");
		reply_now(conn);
		return;
	case RESP_CMD_HELLO:
		cmd_hello(conn, cmd);
		return;
	case RESP_CMD_GET:
		single_key(conn, cmd, ci->id, KV_GET, NULL, 0, 0);
		return;
	case RESP_CMD_SET:
		cmd_set(conn, cmd);
		return;
	case RESP_CMD_SETNX:
		single_key(conn, cmd, ci->id, KV_PUT_NX, &cmd->argv[2], 0, 0);
		return;
	case RESP_CMD_GETSET:
		single_key(conn, cmd, ci->id, KV_PUT, &cmd->argv[2], 0, 0);
		return;
	case RESP_CMD_APPEND:
		single_key(conn, cmd, ci->id, KV_APPEND, &cmd->argv[2], 0, 0);
		return;
	case RESP_CMD_STRLEN:
		single_key(conn, cmd, ci->id, KV_STRLEN, NULL, 0, 0);
		return;
	case RESP_CMD_INCR:
	case RESP_CMD_DECR:
	case RESP_CMD_INCRBY:
	case RESP_CMD_DECRBY:
		cmd_incr(conn, cmd, ci->id);
		return;
	case RESP_CMD_DEL:
	case RESP_CMD_EXISTS:
	case RESP_CMD_MGET:
	case RESP_CMD_MSET:
		multi_key(conn, cmd, ci->id);
		return;
	case RESP_CMD_SCAN:
		cmd_scan(conn, cmd);
		return;
	case RESP_CMD_DBSIZE:
		all_cores(conn, ci->id, NULL);
		return;
	case RESP_CMD_INFO:
		all_cores(conn, ci->id, cmd->argc > 1 ? &cmd->argv[1] : NULL);
		return;
	case RESP_CMD_COMMAND:
		cmd_command(conn, cmd, ci);
		return;
	case RESP_CMD_CONFIG:
	case RESP_CMD_CLIENT: {
		const struct resp_command_info *sub =
			resp_subcommand_lookup(ci, cmd->argv[1].data, cmd->argv[1].len);

		if (!sub) {
			resp_format_unknown_subcommand(err, sizeof err, ci, cmd->argv[1].data,
						       cmd->argv[1].len);
			r_error(conn, r, err);
			reply_now(conn);
			return;
		}
		if (!resp_command_arity_ok(sub, cmd->argc)) {
			resp_format_wrong_arity(err, sizeof err, sub);
			r_error(conn, r, err);
			reply_now(conn);
			return;
		}
		if (ci->id == RESP_CMD_CONFIG)
			cmd_config(conn, cmd, sub);
		else
			cmd_client(conn, cmd, sub);
		return;
	}
	default:
		resp_format_unknown_command(err, sizeof err, cmd->argv, cmd->argc);
		r_error(conn, r, err);
		reply_now(conn);
		return;
	}
}

/* Commands that read the keyspace (and so must see earlier writes). */
static bool reads_keys(const struct resp_command *cmd)
{
	const struct resp_command_info *ci =
		resp_command_lookup(cmd->argv[0].data, cmd->argv[0].len);

	return ci && (ci->flags & RESP_CMDF_READONLY) != 0;
}

void redis_process(struct conn *conn)
{
	struct redis_conn *rc = conn->redis;
	size_t off = 0;

	while (!conn->closing && !conn_is_paused(conn)) {
		struct resp_command cmd;
		size_t consumed = 0;
		int rv;

		rv = resp_parse(&rc->parser, conn->rbuf + off, conn->rlen - off, &cmd, &consumed);
		off += consumed;
		if (rv == RKV_EAGAIN) {
			size_t wanted = resp_parser_wanted(&rc->parser);

			/* Make room for the whole command the parser expects. */
			if (wanted > conn->rcap - off) {
				memmove(conn->rbuf, conn->rbuf + off, conn->rlen - off);
				conn->rlen -= off;
				off = 0;
				if (wanted > conn->rcap) {
					uint8_t *nbuf = pool_alloc(pool_of(conn), wanted);

					if (!nbuf) {
						out_of_memory(conn);
						break;
					}
					memcpy(nbuf, conn->rbuf, conn->rlen);
					pool_free(pool_of(conn), conn->rbuf);
					conn->rbuf = nbuf;
					conn->rcap = pool_block_size(nbuf);
				}
			}
			break;
		}
		if (rv == 0 && conn->writes_inflight && reads_keys(&cmd)) {
			/* A read waits for this connection's earlier writes, so a
			 * pipelined SET then GET sees the SET (as with Redis). The
			 * command stays in the buffer; the last write's completion
			 * resumes decoding here. */
			off -= consumed;
			break;
		}
		if (rv != 0) {
			conn->core->stats.bad_frames++;
			rc->scratch.len = 0;
			r_error(conn, &rc->scratch, rv == RKV_EPROTO ? resp_parser_error(&rc->parser)
							  : "ERR out of memory");
			reply_now(conn);
			conn_close_after_reply(conn);
			break;
		}
		execute(conn, &cmd);
	}
	if (off) {
		memmove(conn->rbuf, conn->rbuf + off, conn->rlen - off);
		conn->rlen -= off;
	}
}

int redis_conn_init(struct conn *conn)
{
	struct redis_conn *rc = pool_alloc(pool_of(conn), sizeof *rc);
	struct resp_limits limits;

	if (!rc)
		return -ENOMEM;
	memset(rc, 0, sizeof *rc);
	resp_limits_default(&limits);
	limits.max_bulk = conn->core->node->cfg.max_value > conn->core->node->cfg.max_key ?
			  conn->core->node->cfg.max_value : conn->core->node->cfg.max_key;
	resp_parser_init(&rc->parser, &limits);
	rc->id = ((uint64_t)conn->core->reactor->id << 48) | conn->serial;
	conn->redis = rc;
	return 0;
}

void redis_conn_free(struct conn *conn)
{
	struct redis_conn *rc = conn->redis;

	while (rc->head) {
		struct redis_slot *slot = rc->head;

		rc->head = slot->next;
		slot_free(conn, slot);
	}
	resp_parser_destroy(&rc->parser);
	pool_free(pool_of(conn), rc->scratch.data);
	pool_free(pool_of(conn), rc);
	conn->redis = NULL;
}

int redis_core_init(struct node_core *c)
{
	struct redis_core *rcore = calloc(1, sizeof *rcore);

	if (!rcore)
		return -ENOMEM;
	if (!start_time)
		start_time = time(NULL);
	c->redis = rcore;
	return 0;
}

void redis_core_destroy(struct node_core *c)
{
	struct redis_core *rcore = c->redis;
	unsigned i;

	if (!rcore)
		return;
	for (i = 0; i < REDIS_CURSORS; i++)
		pool_free(&c->reactor->pool, rcore->cursors[i].key);
	free(rcore);
	c->redis = NULL;
}
