/* RESP reply building into growable per-connection buffers. */
#include "server/redis_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ringkv.pb.h"
#include "server/conn.h"
#include "server/node.h"

/* ---- reply building ---------------------------------------------------- */

bool reply_reserve(struct conn *conn, struct reply *r, size_t more)
{
	size_t want = r->cap ? r->cap : 256;
	uint8_t *buf;

	if (r->len + more <= r->cap)
		return true;
	while (want < r->len + more)
		want *= 2;
	buf = pool_alloc_large(redis_pool(conn), want);
	if (!buf)
		return false;
	if (r->len)
		memcpy(buf, r->data, r->len);
	pool_free(redis_pool(conn), r->data);
	r->data = buf;
	r->cap = pool_block_size(buf);
	return true;
}


void reply_simple(struct conn *conn, struct reply *r, const char *text)
{
	REPLY_WRITE(conn, r, resp_size_simple(strlen(text)), resp_write_simple_str(&o, text));
}

void reply_error(struct conn *conn, struct reply *r, const char *text)
{
	conn->core->stats.resp_errors++;
	REPLY_WRITE(conn, r, resp_size_error(strlen(text)), resp_write_error_str(&o, text));
}

void reply_int(struct conn *conn, struct reply *r, int64_t v)
{
	REPLY_WRITE(conn, r, resp_size_integer(v), resp_write_integer(&o, v));
}

void reply_bulk(struct conn *conn, struct reply *r, const void *data, size_t len)
{
	REPLY_WRITE(conn, r, resp_size_bulk(len), resp_write_bulk(&o, data, len));
}

void reply_str(struct conn *conn, struct reply *r, const char *text)
{
	reply_bulk(conn, r, text, strlen(text));
}

void reply_null(struct conn *conn, struct reply *r)
{
	if (conn->redis->resp3)
		REPLY_WRITE(conn, r, resp_size_null3(), resp_write_null3(&o));
	else
		REPLY_WRITE(conn, r, resp_size_null_bulk(), resp_write_null_bulk(&o));
}

void reply_null_array(struct conn *conn, struct reply *r)
{
	if (conn->redis->resp3)
		REPLY_WRITE(conn, r, resp_size_null3(), resp_write_null3(&o));
	else
		REPLY_WRITE(conn, r, resp_size_null_array(), resp_write_null_array(&o));
}

void reply_aggregate3(struct conn *conn, struct reply *r, uint8_t type, size_t n)
{
	REPLY_WRITE(conn, r, resp_size_aggregate(n), resp_write_aggregate(&o, type, n));
}

void reply_map(struct conn *conn, struct reply *r, size_t pairs)
{
	if (conn->redis->resp3)
		reply_aggregate3(conn, r, RESP3_MAP, pairs);
	else
		reply_array(conn, r, 2 * pairs);
}

void reply_set(struct conn *conn, struct reply *r, size_t n)
{
	if (conn->redis->resp3)
		reply_aggregate3(conn, r, RESP3_SET, n);
	else
		reply_array(conn, r, n);
}

void reply_verbatim(struct conn *conn, struct reply *r, const void *data, size_t len)
{
	if (conn->redis->resp3)
		REPLY_WRITE(conn, r, resp_size_verbatim(len),
			    resp_write_verbatim(&o, "txt", data, len));
	else
		reply_bulk(conn, r, data, len);
}

void reply_bool(struct conn *conn, struct reply *r, bool value)
{
	if (conn->redis->resp3)
		REPLY_WRITE(conn, r, 4, resp_write_bool(&o, value));
	else
		reply_int(conn, r, value);
}

void reply_double(struct conn *conn, struct reply *r, const char *text)
{
	if (conn->redis->resp3)
		REPLY_WRITE(conn, r, resp_size_simple(strlen(text)),
			    resp_write_double(&o, text, strlen(text)));
	else
		reply_str(conn, r, text);
}

void reply_bignum(struct conn *conn, struct reply *r, const char *text)
{
	if (conn->redis->resp3)
		REPLY_WRITE(conn, r, resp_size_simple(strlen(text)),
			    resp_write_bignum(&o, text, strlen(text)));
	else
		reply_str(conn, r, text);
}

void reply_array(struct conn *conn, struct reply *r, size_t n)
{
	REPLY_WRITE(conn, r, resp_size_array(n), resp_write_array(&o, n));
}


void reply_errorf(struct conn *conn, struct reply *r, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	reply_error(conn, r, text);
}

void reply_status_error(struct conn *conn, struct reply *r, const struct kv_req *req)
{
	const char *text = req->error ? req->error : "internal error";

	if (req->status == ringkv_Status_RESOURCE_EXHAUSTED && req->error != kv_error_disk_full)
		reply_errorf(conn, r, "OOM %s", text);
	else
		reply_errorf(conn, r, "ERR %s", text);
}
