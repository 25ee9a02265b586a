/*
 * The internal encoding of forwarded requests and answers; see
 * server/forward_wire.h. Layouts (little-endian):
 *
 * request: u8 version, u8 op, u8 flags, u8 hops, u32 shard, i64 integer,
 *          u32 limit, u32 room, u32 key_len, u32 arg_len, u32 value_len,
 *          key, argument, value.
 * reply:   u8 version, u8 bits (existed 1, applied 2, done 4), u16 zero,
 *          i32 status, i32 result, i64 integer, u64 leader_hint,
 *          u32 resume_len, u32 value_len, u32 error_len,
 *          resume key, value, error text.
 */
#include "server/forward_wire.h"

#include <errno.h>
#include <string.h>

#include "core/errors.h"

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + 4;
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + 8;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint8_t *put_bytes(uint8_t *p, const uint8_t *data, uint32_t len)
{
	if (len)
		memcpy(p, data, len);
	return p + len;
}

int fwd_request_encode(struct peer_msg_buf *out, const struct fwd_request *r)
{
	size_t body = (size_t)r->key_len + r->arg_len + r->value_len;
	uint8_t *p;

	if (peer_msg_buf_reserve(out, FWD_REQUEST_HEAD + body) != 0)
		return -ENOMEM;
	p = out->data + out->len;
	*p++ = FWD_WIRE_VERSION;
	*p++ = r->op;
	*p++ = r->flags;
	*p++ = r->hops;
	p = put32(p, r->shard);
	p = put64(p, (uint64_t)r->integer);
	p = put32(p, r->limit);
	p = put32(p, r->room);
	p = put32(p, r->key_len);
	p = put32(p, r->arg_len);
	p = put32(p, r->value_len);
	p = put_bytes(p, r->data, (uint32_t)body);
	out->len = (size_t)(p - out->data);
	return 0;
}

int fwd_request_decode(const uint8_t *p, size_t len, struct fwd_request *r)
{
	uint64_t body;

	if (len < FWD_REQUEST_HEAD || p[0] != FWD_WIRE_VERSION)
		return RKV_EPROTO;
	r->op = p[1];
	r->flags = p[2];
	r->hops = p[3];
	r->shard = get32(p + 4);
	r->integer = (int64_t)get64(p + 8);
	r->limit = get32(p + 16);
	r->room = get32(p + 20);
	r->key_len = get32(p + 24);
	r->arg_len = get32(p + 28);
	r->value_len = get32(p + 32);
	body = (uint64_t)r->key_len + r->arg_len + r->value_len;
	if (body != len - FWD_REQUEST_HEAD)
		return RKV_EPROTO;
	r->data = p + FWD_REQUEST_HEAD;
	return 0;
}

int fwd_reply_encode(struct peer_msg_buf *out, const struct fwd_reply *r)
{
	size_t body = (size_t)r->resume.len + r->value.len + r->error.len;
	uint8_t *p;

	if (peer_msg_buf_reserve(out, FWD_REPLY_HEAD + body) != 0)
		return -ENOMEM;
	p = out->data + out->len;
	*p++ = FWD_WIRE_VERSION;
	*p++ = (uint8_t)((r->existed ? 1 : 0) | (r->applied ? 2 : 0) | (r->done ? 4 : 0));
	*p++ = 0;
	*p++ = 0;
	p = put32(p, (uint32_t)r->status);
	p = put32(p, (uint32_t)r->result);
	p = put64(p, (uint64_t)r->integer);
	p = put64(p, r->leader_hint);
	p = put32(p, r->resume.len);
	p = put32(p, r->value.len);
	p = put32(p, r->error.len);
	p = put_bytes(p, r->resume.data, r->resume.len);
	p = put_bytes(p, r->value.data, r->value.len);
	p = put_bytes(p, r->error.data, r->error.len);
	out->len = (size_t)(p - out->data);
	return 0;
}

int fwd_reply_decode(const uint8_t *p, size_t len, struct fwd_reply *r)
{
	const uint8_t *at;
	uint64_t body;

	if (len < FWD_REPLY_HEAD || p[0] != FWD_WIRE_VERSION || (p[1] & ~7u) != 0 || p[2] ||
	    p[3])
		return RKV_EPROTO;
	r->existed = (p[1] & 1) != 0;
	r->applied = (p[1] & 2) != 0;
	r->done = (p[1] & 4) != 0;
	r->status = (int32_t)get32(p + 4);
	r->result = (int32_t)get32(p + 8);
	r->integer = (int64_t)get64(p + 12);
	r->leader_hint = get64(p + 20);
	r->resume.len = get32(p + 28);
	r->value.len = get32(p + 32);
	r->error.len = get32(p + 36);
	if (r->status < 0)
		return RKV_EPROTO;
	body = (uint64_t)r->resume.len + r->value.len + r->error.len;
	if (body != len - FWD_REPLY_HEAD)
		return RKV_EPROTO;
	at = p + FWD_REPLY_HEAD;
	r->resume.data = at;
	r->value.data = at + r->resume.len;
	r->error.data = r->value.data + r->value.len;
	return 0;
}
