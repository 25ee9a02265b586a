/*
 * The RESP door's string commands as state-machine effects (SETRANGE,
 * SETBIT, INCRBYFLOAT), and the float text rules they share with the
 * door's argument checks. Pure functions of the command and the key's
 * current value: every replica, and every replay, computes the same bytes.
 */
#ifndef RINGKV_SHARD_SHARD_STRINGS_H
#define RINGKV_SHARD_SHARD_STRINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shard/command.h"

struct shard_result;

/* Longest text of a float INCRBYFLOAT stores or accepts (Redis's bound). */
#define SHARD_FLOAT_TEXT_MAX 5120u

/*
 * Parses text[0..len) as Redis reads a float: the whole text, no leading
 * space, finite or infinite but not NaN, no underflow or overflow. Returns
 * true and sets *out on success.
 */
bool shard_float_parse(const void *text, size_t len, long double *out);

/*
 * Writes `v` (finite) as Redis writes an INCRBYFLOAT result: 17 decimals,
 * trailing zeros and a trailing point removed, "-0" as "0". out holds
 * SHARD_FLOAT_TEXT_MAX bytes. Returns the length, or 0 when it does not fit.
 */
size_t shard_float_format(long double v, char *out);

/* Bytes the result of `c` may need in the caller's buffer, given the key's
 * current value length. */
size_t shard_string_room(const struct command *c, size_t old_len);

/*
 * Computes the effect of SETRANGE, SETBIT or INCRBYFLOAT `c` on the current
 * value old[0..old_len) (exists: the key holds one). On success the new
 * value is in out[0..*new_len) (out holds shard_string_room bytes) and the
 * function returns true; it returns false when the value is left as it is
 * (an error in res->error, or SETRANGE of an empty value). res->integer is
 * the answer of SETRANGE (new length) and SETBIT (old bit).
 */
bool shard_string_exec(const struct command *c, bool exists, const uint8_t *old,
		       size_t old_len, uint8_t *out, size_t *new_len, struct shard_result *res);

#endif
