/*
 * Effects of the string commands SETRANGE, SETBIT and INCRBYFLOAT (see
 * shard/shard_strings.h). They run in the apply step, so they read nothing
 * but the command and the current value, allocate nothing (the caller owns
 * the output buffer) and never assert on the value's bytes, which come from
 * disk.
 */
#include "shard/shard_strings.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "shard/shard.h"

bool shard_float_parse(const void *text, size_t len, long double *out)
{
	char buf[SHARD_FLOAT_TEXT_MAX];
	long double v;
	char *end;

	if (len == 0 || len >= sizeof buf)
		return false;
	memcpy(buf, text, len);
	buf[len] = '\0';
	/* strtold skips leading space and stops at a NUL: both refused. */
	if (isspace((unsigned char)buf[0]) || memchr(text, '\0', len))
		return false;
	errno = 0;
	v = strtold(buf, &end);
	if (*end != '\0' || isnan(v) || errno == EINVAL)
		return false;
	if (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || v == 0))
		return false;
	*out = v;
	return true;
}

size_t shard_float_format(long double v, char *out)
{
	int n = snprintf(out, SHARD_FLOAT_TEXT_MAX, "%.17Lf", v);
	size_t len;

	if (n <= 0 || (size_t)n >= SHARD_FLOAT_TEXT_MAX)
		return 0;
	len = (size_t)n;
	if (memchr(out, '.', len)) {
		while (out[len - 1] == '0')
			len--;
		if (out[len - 1] == '.')
			len--;
	}
	if (len == 2 && out[0] == '-' && out[1] == '0') {
		out[0] = '0';
		len = 1;
	}
	return len;
}

size_t shard_string_room(const struct command *c, size_t old_len)
{
	uint64_t need;

	switch (c->op) {
	case COMMAND_SETRANGE:
		need = c->offset + c->value_len;
		break;
	case COMMAND_SETBIT:
		need = c->offset / 8 + 1;
		break;
	default:
		return SHARD_FLOAT_TEXT_MAX;
	}
	/* Past the limit nothing is written: no room needed beyond it. */
	if (need > c->limit)
		need = 0;
	return need > old_len ? (size_t)need : old_len;
}

/* The current value, zero-padded to `len` bytes, into out. */
static void copy_padded(uint8_t *out, size_t len, const uint8_t *old, size_t old_len)
{
	if (old_len)
		memcpy(out, old, old_len);
	if (len > old_len)
		memset(out + old_len, 0, len - old_len);
}

static bool exec_setrange(const struct command *c, const uint8_t *old, size_t old_len,
			  uint8_t *out, size_t *new_len, struct shard_result *res)
{
	uint64_t end = c->offset + c->value_len;
	size_t len;

	if (c->value_len == 0) {
		/* Nothing to write: the length as it is, no key created. */
		res->integer = (int64_t)old_len;
		return false;
	}
	if (c->offset > c->limit || end > c->limit) {
		res->error = RKV_ETOOLARGE;
		return false;
	}
	len = end > old_len ? (size_t)end : old_len;
	copy_padded(out, len, old, old_len);
	memcpy(out + c->offset, c->value, c->value_len);
	*new_len = len;
	res->integer = (int64_t)len;
	return true;
}

static bool exec_setbit(const struct command *c, const uint8_t *old, size_t old_len,
			uint8_t *out, size_t *new_len, struct shard_result *res)
{
	uint64_t byte = c->offset / 8;
	uint8_t mask = (uint8_t)(0x80u >> (c->offset % 8));
	size_t len;

	if (byte >= c->limit) {
		res->error = RKV_ETOOLARGE;
		return false;
	}
	len = byte + 1 > old_len ? (size_t)byte + 1 : old_len;
	copy_padded(out, len, old, old_len);
	res->integer = (out[byte] & mask) != 0;
	if (c->value[0])
		out[byte] |= mask;
	else
		out[byte] &= (uint8_t)~mask;
	*new_len = len;
	return true;
}

static bool exec_incrbyfloat(const struct command *c, bool exists, const uint8_t *old,
			     size_t old_len, uint8_t *out, size_t *new_len,
			     struct shard_result *res)
{
	long double cur = 0, incr;
	size_t len;

	if ((exists && !shard_float_parse(old, old_len, &cur)) ||
	    !shard_float_parse(c->value, c->value_len, &incr)) {
		res->error = RKV_EINVAL;
		return false;
	}
	cur += incr;
	if (isnan(cur) || isinf(cur)) {
		res->error = -ERANGE;
		return false;
	}
	len = shard_float_format(cur, (char *)out);
	if (len == 0) {
		res->error = -ERANGE;
		return false;
	}
	*new_len = len;
	return true;
}

bool shard_string_exec(const struct command *c, bool exists, const uint8_t *old,
		       size_t old_len, uint8_t *out, size_t *new_len, struct shard_result *res)
{
	if (!exists)
		old_len = 0;
	switch (c->op) {
	case COMMAND_SETRANGE:
		return exec_setrange(c, old, old_len, out, new_len, res);
	case COMMAND_SETBIT:
		return exec_setbit(c, old, old_len, out, new_len, res);
	case COMMAND_INCRBYFLOAT:
		return exec_incrbyfloat(c, exists, old, old_len, out, new_len, res);
	default:
		res->error = RKV_EINVAL;
		return false;
	}
}
