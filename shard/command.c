/*
 * State-machine command codec. The decoder reads bytes from disk and the
 * network, so it checks every length against what is left before touching
 * it and never asserts on content.
 */
#include "shard/command.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

#include "core/errors.h"
#include "core/le.h"

#define COMMAND_OP_SIZE 1
#define COMMAND_LEN_SIZE 4

static bool op_valid(unsigned op)
{
	return op >= COMMAND_PUT && op <= COMMAND_OP_MAX;
}

/* Whether `op` has a u32 value length and value after its key. */
static bool has_value(unsigned op)
{
	return op != COMMAND_DELETE && op != COMMAND_FLUSH && op != COMMAND_EXPIRE_AT &&
	       op != COMMAND_PERSIST && op != COMMAND_EXPIRE_DELETE;
}

/* Bytes of `op`'s fixed fields after its value (after its key without one). */
static size_t trailer_size(unsigned op)
{
	switch (op) {
	case COMMAND_APPEND:
		return COMMAND_LEN_SIZE;
	case COMMAND_SETRANGE:
	case COMMAND_SETBIT:
		return 8 + COMMAND_LEN_SIZE;
	case COMMAND_PUT_AT:
	case COMMAND_EXPIRE_AT:
		return 8 + 1;
	case COMMAND_EXPIRE_DELETE:
		return 8;
	default:
		return 0;
	}
}

/* Bytes of the value field as encoded (INCRBY: the 8-byte delta). */
static uint32_t encoded_value_len(const struct command *c)
{
	return c->op == COMMAND_INCRBY ? 8 : c->value_len;
}

size_t command_encoded_size(const struct command *c)
{
	size_t n;

	assert(c != NULL);
	assert(op_valid(c->op) && c->op != COMMAND_AT_TIME);
	n = COMMAND_OP_SIZE + COMMAND_LEN_SIZE + (size_t)c->key_len;
	if (has_value(c->op))
		n += COMMAND_LEN_SIZE + (size_t)encoded_value_len(c);
	n += trailer_size(c->op);
	if (c->now != 0)
		n += COMMAND_OP_SIZE + 8;
	return n;
}

size_t command_encode(const struct command *c, uint8_t *out)
{
	uint8_t *p = out;

	assert(c != NULL && out != NULL);
	assert(op_valid(c->op) && c->op != COMMAND_AT_TIME);
	assert(c->key != NULL || c->key_len == 0);
	assert(c->op != COMMAND_FLUSH || c->key_len == 0);
	if (c->now != 0) {
		*p++ = COMMAND_AT_TIME;
		put_le64(p, c->now);
		p += 8;
	}
	*p++ = (uint8_t)c->op;
	put_le32(p, c->key_len);
	p += COMMAND_LEN_SIZE;
	if (c->key_len != 0)
		memcpy(p, c->key, c->key_len);
	p += c->key_len;
	if (c->op == COMMAND_INCRBY) {
		put_le32(p, 8);
		put_le64(p + COMMAND_LEN_SIZE, (uint64_t)c->delta);
		p += COMMAND_LEN_SIZE + 8;
	} else if (has_value(c->op)) {
		assert(c->value != NULL || c->value_len == 0);
		put_le32(p, c->value_len);
		p += COMMAND_LEN_SIZE;
		if (c->value_len != 0)
			memcpy(p, c->value, c->value_len);
		p += c->value_len;
	}
	switch (c->op) {
	case COMMAND_APPEND:
		put_le32(p, c->limit);
		break;
	case COMMAND_SETRANGE:
	case COMMAND_SETBIT:
		put_le64(p, c->offset);
		put_le32(p + 8, c->limit);
		break;
	case COMMAND_PUT_AT:
	case COMMAND_EXPIRE_AT:
		put_le64(p, c->deadline);
		p[8] = c->flags;
		break;
	case COMMAND_EXPIRE_DELETE:
		put_le64(p, c->deadline);
		break;
	default:
		break;
	}
	p += trailer_size(c->op);
	return (size_t)(p - out);
}

uint8_t *command_pair_put(uint8_t *out, const void *key, uint32_t key_len, const void *value,
			  uint32_t value_len)
{
	put_le32(out, key_len);
	if (key_len)
		memcpy(out + 4, key, key_len);
	out += 4 + key_len;
	put_le32(out, value_len);
	if (value_len)
		memcpy(out + 4, value, value_len);
	return out + 4 + value_len;
}

/* The pair at `pos` of `v`: its end, or 0 when it does not fit in len. */
static size_t pair_at(const uint8_t *v, size_t len, size_t pos, struct command_pair *out)
{
	uint32_t key_len, value_len;

	if (len - pos < 4)
		return 0;
	key_len = get_le32(v + pos);
	pos += 4;
	if (len - pos < key_len || len - pos - key_len < 4)
		return 0;
	out->key = v + pos;
	out->key_len = key_len;
	pos += key_len;
	value_len = get_le32(v + pos);
	pos += 4;
	if (len - pos < value_len)
		return 0;
	out->value = v + pos;
	out->value_len = value_len;
	return pos + value_len;
}

int command_pair_next(const struct command *c, size_t *pos, struct command_pair *out)
{
	size_t end;

	if (*pos >= c->value_len)
		return 0;
	end = pair_at(c->value, c->value_len, *pos, out);
	if (end == 0)
		return 0;
	*pos = end;
	return 1;
}

/* An MSETNX value: one or more pairs, exactly. */
static bool pairs_valid(const uint8_t *v, size_t len)
{
	struct command_pair p;
	size_t pos = 0;

	if (len == 0)
		return false;
	while (pos < len) {
		pos = pair_at(v, len, pos, &p);
		if (pos == 0)
			return false;
	}
	return true;
}

bool command_flags_valid(unsigned op, uint32_t flags, uint64_t deadline)
{
	if (flags > 0xff)
		return false;
	if (op == COMMAND_PUT_AT) {
		if (flags & ~(COMMAND_SET_NX | COMMAND_SET_XX | COMMAND_SET_KEEPTTL))
			return false;
		if ((flags & COMMAND_SET_NX) && (flags & COMMAND_SET_XX))
			return false;
		/* KEEPTTL keeps the old deadline: none of its own. */
		return !((flags & COMMAND_SET_KEEPTTL) && deadline != 0);
	}
	if (flags & ~(COMMAND_EXPIRE_NX | COMMAND_EXPIRE_XX | COMMAND_EXPIRE_GT |
		      COMMAND_EXPIRE_LT))
		return false;
	/* Redis: NX and XX, GT or LT are not compatible; nor GT with LT. */
	if ((flags & COMMAND_EXPIRE_NX) && (flags & ~COMMAND_EXPIRE_NX))
		return false;
	if ((flags & COMMAND_EXPIRE_GT) && (flags & COMMAND_EXPIRE_LT))
		return false;
	return deadline != 0;
}

/* One command's op and key length (no AT_TIME prefix): false when the
 * bytes are too few for them, the op is unknown or AT_TIME, or the key runs
 * past the end. What command_decode and command_peek_key both read first. */
static bool command_head(const uint8_t *buf, size_t len, uint8_t *op, uint32_t *key_len)
{
	if (len < COMMAND_OP_SIZE + COMMAND_LEN_SIZE || !op_valid(buf[0]) ||
	    buf[0] == COMMAND_AT_TIME)
		return false;
	*op = buf[0];
	*key_len = get_le32(buf + COMMAND_OP_SIZE);
	return *key_len <= len - COMMAND_OP_SIZE - COMMAND_LEN_SIZE;
}

/* Moves *buf and *len past an AT_TIME prefix, *now its time: 1; without
 * one, leaves them and sets *now 0: 0; -1 when the prefix is cut short. */
static int skip_at_time(const uint8_t **buf, size_t *len, uint64_t *now)
{
	*now = 0;
	if (*len < COMMAND_OP_SIZE || (*buf)[0] != COMMAND_AT_TIME)
		return 0;
	if (*len < COMMAND_OP_SIZE + 8)
		return -1;
	*now = get_le64(*buf + COMMAND_OP_SIZE);
	*buf += COMMAND_OP_SIZE + 8;
	*len -= COMMAND_OP_SIZE + 8;
	return 1;
}

static int decode_one(const uint8_t *buf, size_t len, struct command *out)
{
	size_t left = len, trailer;
	const uint8_t *p = buf;
	uint32_t key_len;
	uint32_t value_len;
	struct command c;
	uint8_t op;

	if (!command_head(buf, len, &op, &key_len))
		return RKV_ECORRUPT;
	memset(&c, 0, sizeof c);
	c.op = (enum command_op)op;
	p += COMMAND_OP_SIZE + COMMAND_LEN_SIZE;
	left -= COMMAND_OP_SIZE + COMMAND_LEN_SIZE;
	c.key = p;
	c.key_len = key_len;
	p += key_len;
	left -= key_len;
	trailer = trailer_size(op);
	if (!has_value(op)) {
		/* Nothing after the key but the fixed fields; FLUSH names no key. */
		if (left != trailer || (op == COMMAND_FLUSH && key_len != 0))
			return RKV_ECORRUPT;
		value_len = 0;
	} else {
		if (left < COMMAND_LEN_SIZE)
			return RKV_ECORRUPT;
		value_len = get_le32(p);
		p += COMMAND_LEN_SIZE;
		left -= COMMAND_LEN_SIZE;
		if (left < trailer || value_len != left - trailer)
			return RKV_ECORRUPT;
	}
	switch (op) {
	case COMMAND_APPEND:
		c.limit = get_le32(p + value_len);
		break;
	case COMMAND_SETRANGE:
	case COMMAND_SETBIT:
		c.offset = get_le64(p + value_len);
		c.limit = get_le32(p + value_len + 8);
		/* SETBIT sets one bit: 0 or 1, nothing else. */
		if (op == COMMAND_SETBIT && (value_len != 1 || p[0] > 1))
			return RKV_ECORRUPT;
		break;
	case COMMAND_PUT_AT:
	case COMMAND_EXPIRE_AT:
		c.deadline = get_le64(p + value_len);
		c.flags = p[value_len + 8];
		if (!command_flags_valid(op, c.flags, c.deadline))
			return RKV_ECORRUPT;
		break;
	case COMMAND_EXPIRE_DELETE:
		c.deadline = get_le64(p);
		if (c.deadline == 0)
			return RKV_ECORRUPT;
		break;
	default:
		break;
	}
	if (op == COMMAND_INCRBY) {
		if (value_len != 8)
			return RKV_ECORRUPT;
		c.delta = (int64_t)get_le64(p);
		*out = c;
		return 0;
	}
	/* MSETNX names its keys in its pairs, never as the key. */
	if (op == COMMAND_MSETNX && (key_len != 0 || !pairs_valid(p, value_len)))
		return RKV_ECORRUPT;
	if (has_value(op)) {
		c.value = p;
		c.value_len = value_len;
	}
	*out = c;
	return 0;
}

bool command_peek_key(const uint8_t *buf, size_t len, const uint8_t **key, uint32_t *key_len)
{
	uint64_t now;
	uint32_t n;
	uint8_t op;

	if (skip_at_time(&buf, &len, &now) < 0 || !command_head(buf, len, &op, &n) ||
	    op == COMMAND_FLUSH || op == COMMAND_MSETNX || n == 0)
		return false;
	*key = buf + COMMAND_OP_SIZE + COMMAND_LEN_SIZE;
	*key_len = n;
	return true;
}

int command_decode(const uint8_t *buf, size_t len, struct command *out)
{
	uint64_t now;
	int at, rv;

	/* *out is written only on success. */
	assert(out != NULL);
	assert(buf != NULL || len == 0);
	/* The proposer's time (never 0), then exactly one command. */
	at = skip_at_time(&buf, &len, &now);
	if (at < 0 || (at > 0 && now == 0))
		return RKV_ECORRUPT;
	rv = decode_one(buf, len, out);
	if (rv == 0)
		out->now = now;
	return rv;
}

uint64_t command_growth(const struct command *c)
{
	uint64_t end;

	switch (c->op) {
	case COMMAND_APPEND:
		return c->value_len;
	case COMMAND_SETRANGE:
		end = c->value_len ? c->offset + c->value_len : 0;
		break;
	case COMMAND_SETBIT:
		end = c->offset / 8 + 1;
		break;
	default:
		return 0;
	}
	/* One that would pass its limit fails and writes nothing. */
	return end > c->limit ? 0 : end;
}
