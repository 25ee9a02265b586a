/*
 * State-machine command codec. The decoder reads bytes from disk and the
 * network, so it checks every length against what is left before touching
 * it and never asserts on content.
 */
#include "shard/command.h"

#include <assert.h>
#include <string.h>

#include "core/errors.h"

#define COMMAND_OP_SIZE 1
#define COMMAND_LEN_SIZE 4

static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

size_t command_encoded_size(const struct command *c)
{
	size_t n;

	assert(c != NULL);
	assert(c->op == COMMAND_PUT || c->op == COMMAND_DELETE);
	n = COMMAND_OP_SIZE + COMMAND_LEN_SIZE + (size_t)c->key_len;
	if (c->op == COMMAND_PUT)
		n += COMMAND_LEN_SIZE + (size_t)c->value_len;
	return n;
}

size_t command_encode(const struct command *c, uint8_t *out)
{
	uint8_t *p = out;

	assert(c != NULL && out != NULL);
	assert(c->op == COMMAND_PUT || c->op == COMMAND_DELETE);
	assert(c->key != NULL || c->key_len == 0);
	*p++ = (uint8_t)c->op;
	put_le32(p, c->key_len);
	p += COMMAND_LEN_SIZE;
	if (c->key_len != 0)
		memcpy(p, c->key, c->key_len);
	p += c->key_len;
	if (c->op == COMMAND_PUT) {
		assert(c->value != NULL || c->value_len == 0);
		put_le32(p, c->value_len);
		p += COMMAND_LEN_SIZE;
		if (c->value_len != 0)
			memcpy(p, c->value, c->value_len);
		p += c->value_len;
	}
	return (size_t)(p - out);
}

int command_decode(const uint8_t *buf, size_t len, struct command *out)
{
	size_t left = len;
	const uint8_t *p = buf;
	uint32_t key_len;
	uint32_t value_len;
	struct command c;
	uint8_t op;

	/* *out is written only on success. */
	assert(out != NULL);
	assert(buf != NULL || len == 0);
	if (left < COMMAND_OP_SIZE + COMMAND_LEN_SIZE)
		return RKV_ECORRUPT;
	op = p[0];
	if (op != COMMAND_PUT && op != COMMAND_DELETE)
		return RKV_ECORRUPT;
	key_len = get_le32(p + COMMAND_OP_SIZE);
	p += COMMAND_OP_SIZE + COMMAND_LEN_SIZE;
	left -= COMMAND_OP_SIZE + COMMAND_LEN_SIZE;
	if (key_len > left)
		return RKV_ECORRUPT;
	c.key = p;
	c.key_len = key_len;
	p += key_len;
	left -= key_len;
	if (op == COMMAND_DELETE) {
		if (left != 0)
			return RKV_ECORRUPT;
		c.op = COMMAND_DELETE;
		c.value = NULL;
		c.value_len = 0;
		*out = c;
		return 0;
	}
	if (left < COMMAND_LEN_SIZE)
		return RKV_ECORRUPT;
	value_len = get_le32(p);
	p += COMMAND_LEN_SIZE;
	left -= COMMAND_LEN_SIZE;
	if (value_len != left)
		return RKV_ECORRUPT;
	c.op = COMMAND_PUT;
	c.value = p;
	c.value_len = value_len;
	*out = c;
	return 0;
}
