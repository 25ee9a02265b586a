/* Tests for shard/command.c: round trips and every malformed-input check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/errors.h"
#include "shard/command.h"
#include "shard/shard_strings.h"

static void test_put_round_trip(void **state)
{
	struct command c = { .op = COMMAND_PUT, .key = (const uint8_t *)"key",
			     .key_len = 3, .value = (const uint8_t *)"value",
			     .value_len = 5 };
	struct command d;
	uint8_t buf[64];
	static const uint8_t want[] = { 1, 3, 0, 0, 0, 'k', 'e', 'y',
					5, 0, 0, 0, 'v', 'a', 'l', 'u', 'e' };

	(void)state;
	assert_int_equal(command_encoded_size(&c), sizeof(want));
	assert_int_equal(command_encode(&c, buf), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(command_decode(buf, sizeof(want), &d), 0);
	assert_int_equal(d.op, COMMAND_PUT);
	assert_int_equal(d.key_len, 3);
	assert_ptr_equal(d.key, buf + 5);
	assert_int_equal(d.value_len, 5);
	assert_memory_equal(d.value, "value", 5);
}

static void test_delete_round_trip(void **state)
{
	struct command c = { .op = COMMAND_DELETE, .key = (const uint8_t *)"k",
			     .key_len = 1 };
	struct command d;
	uint8_t buf[16];

	(void)state;
	assert_int_equal(command_encoded_size(&c), 6);
	assert_int_equal(command_encode(&c, buf), 6);
	assert_int_equal(command_decode(buf, 6, &d), 0);
	assert_int_equal(d.op, COMMAND_DELETE);
	assert_int_equal(d.key_len, 1);
	assert_int_equal(d.key[0], 'k');
	assert_null(d.value);
	assert_int_equal(d.value_len, 0);
}

static void test_empty_key_and_value(void **state)
{
	struct command c = { .op = COMMAND_PUT };
	struct command d;
	uint8_t buf[16];

	(void)state;
	assert_int_equal(command_encode(&c, buf), 9);
	assert_int_equal(command_decode(buf, 9, &d), 0);
	assert_int_equal(d.key_len, 0);
	assert_int_equal(d.value_len, 0);
	assert_non_null(d.value); /* an empty value is not a delete */
}

static void test_malformed(void **state)
{
	struct command c = { .op = COMMAND_PUT, .key = (const uint8_t *)"key",
			     .key_len = 3, .value = (const uint8_t *)"value",
			     .value_len = 5 };
	struct command d = { .op = COMMAND_DELETE, .key_len = 77 };
	uint8_t buf[64];
	size_t n;

	(void)state;
	n = command_encode(&c, buf);
	/* Every truncation is refused. */
	for (size_t len = 0; len < n; len++)
		assert_int_equal(command_decode(buf, len, &d), RKV_ECORRUPT);
	/* Trailing bytes. */
	buf[n] = 0;
	assert_int_equal(command_decode(buf, n + 1, &d), RKV_ECORRUPT);
	/* Unknown ops. */
	buf[0] = 0;
	assert_int_equal(command_decode(buf, n, &d), RKV_ECORRUPT);
	buf[0] = COMMAND_OP_MAX + 1;
	assert_int_equal(command_decode(buf, n, &d), RKV_ECORRUPT);
	buf[0] = 0xff;
	assert_int_equal(command_decode(buf, n, &d), RKV_ECORRUPT);
	buf[0] = 1;
	/* Lengths past the end, including ones that would wrap a 32-bit sum. */
	buf[1] = 0xff, buf[2] = 0xff, buf[3] = 0xff, buf[4] = 0xff;
	assert_int_equal(command_decode(buf, n, &d), RKV_ECORRUPT);
	buf[1] = 3, buf[2] = 0, buf[3] = 0, buf[4] = 0;
	buf[8] = 0xfc, buf[9] = 0xff, buf[10] = 0xff, buf[11] = 0xff;
	assert_int_equal(command_decode(buf, n, &d), RKV_ECORRUPT);
	buf[8] = 4, buf[9] = 0, buf[10] = 0, buf[11] = 0;
	assert_int_equal(command_decode(buf, n, &d), RKV_ECORRUPT);
	/* A DELETE with bytes after its key. */
	buf[0] = 2;
	assert_int_equal(command_decode(buf, n, &d), RKV_ECORRUPT);
	/* The output is untouched by a failed decode. */
	assert_int_equal(d.op, COMMAND_DELETE);
	assert_int_equal(d.key_len, 77);
	assert_int_equal(command_decode(NULL, 0, &d), RKV_ECORRUPT);
}

static void test_conditional_and_read_modify_write_ops(void **state)
{
	uint8_t buf[128];
	struct command d;
	size_t n;

	(void)state;
	for (int op = COMMAND_PUT_NX; op <= COMMAND_PUT_XX; op++) {
		struct command c = { .op = (enum command_op)op, .key = (const uint8_t *)"k",
				     .key_len = 1, .value = (const uint8_t *)"vv", .value_len = 2 };
		n = command_encode(&c, buf);
		assert_int_equal(n, command_encoded_size(&c));
		assert_int_equal(command_decode(buf, n, &d), 0);
		assert_int_equal(d.op, op);
		assert_memory_equal(d.value, "vv", 2);
	}
	{
		struct command c = { .op = COMMAND_INCRBY, .key = (const uint8_t *)"n",
				     .key_len = 1, .delta = -1234567890123LL };
		n = command_encode(&c, buf);
		assert_int_equal(n, command_encoded_size(&c));
		assert_int_equal(command_decode(buf, n, &d), 0);
		assert_int_equal(d.op, COMMAND_INCRBY);
		assert_true(d.delta == -1234567890123LL);
		/* An INCRBY whose value is not 8 bytes is corrupt. */
		buf[6] = 7;
		assert_int_equal(command_decode(buf, n - 1, &d), RKV_ECORRUPT);
	}
	{
		struct command c = { .op = COMMAND_APPEND, .key = (const uint8_t *)"a",
				     .key_len = 1, .value = (const uint8_t *)"xyz",
				     .value_len = 3, .limit = 1000 };
		n = command_encode(&c, buf);
		assert_int_equal(n, command_encoded_size(&c));
		assert_int_equal(command_decode(buf, n, &d), 0);
		assert_int_equal(d.limit, 1000);
		assert_int_equal(d.value_len, 3);
		for (size_t len = 0; len < n; len++)
			assert_int_equal(command_decode(buf, len, &d), RKV_ECORRUPT);
	}
}

/* FLUSH: the op and a zero key length; a key or trailing bytes are corrupt. */
static void test_flush(void **state)
{
	struct command c = { .op = COMMAND_FLUSH };
	uint8_t buf[16];
	struct command d;
	size_t n;

	(void)state;
	n = command_encode(&c, buf);
	assert_int_equal(n, 5);
	assert_int_equal(n, command_encoded_size(&c));
	assert_int_equal(command_decode(buf, n, &d), 0);
	assert_int_equal(d.op, COMMAND_FLUSH);
	assert_int_equal(d.key_len, 0);
	for (size_t len = 0; len < n; len++)
		assert_int_equal(command_decode(buf, len, &d), RKV_ECORRUPT);
	buf[5] = 'k';
	assert_int_equal(command_decode(buf, n + 1, &d), RKV_ECORRUPT);
	buf[1] = 1; /* a one-byte key */
	assert_int_equal(command_decode(buf, n + 1, &d), RKV_ECORRUPT);
}

/* SETRANGE and SETBIT: the value, then the u64 offset and u32 limit. */
static void test_offset_ops(void **state)
{
	struct command c = { .op = COMMAND_SETRANGE, .key = (const uint8_t *)"k",
			     .key_len = 1, .value = (const uint8_t *)"ab", .value_len = 2,
			     .offset = 0x0102030405060708ull, .limit = 0x0a0b0c0d };
	static const uint8_t want[] = { 8, 1, 0, 0, 0, 'k', 2, 0, 0, 0, 'a', 'b',
					8, 7, 6, 5, 4, 3, 2, 1, 0x0d, 0x0c, 0x0b, 0x0a };
	struct command d;
	uint8_t buf[64];

	(void)state;
	assert_int_equal(command_encoded_size(&c), sizeof want);
	assert_int_equal(command_encode(&c, buf), sizeof want);
	assert_memory_equal(buf, want, sizeof want);
	assert_int_equal(command_decode(buf, sizeof want, &d), 0);
	assert_int_equal(d.op, COMMAND_SETRANGE);
	assert_int_equal(d.value_len, 2);
	assert_memory_equal(d.value, "ab", 2);
	assert_true(d.offset == 0x0102030405060708ull);
	assert_int_equal(d.limit, 0x0a0b0c0d);
	/* Short by one byte, or one byte too many: refused. */
	assert_int_equal(command_decode(buf, sizeof want - 1, &d), RKV_ECORRUPT);
	buf[sizeof want] = 0;
	assert_int_equal(command_decode(buf, sizeof want + 1, &d), RKV_ECORRUPT);

	/* SETBIT's value is one byte, 0 or 1. */
	c.op = COMMAND_SETBIT;
	c.value = (const uint8_t *)"\x01";
	c.value_len = 1;
	c.offset = 77;
	assert_int_equal(command_encode(&c, buf), command_encoded_size(&c));
	assert_int_equal(command_decode(buf, command_encoded_size(&c), &d), 0);
	assert_int_equal(d.op, COMMAND_SETBIT);
	assert_int_equal(d.value[0], 1);
	assert_true(d.offset == 77);
	buf[10] = 2;
	assert_int_equal(command_decode(buf, command_encoded_size(&c), &d), RKV_ECORRUPT);
	c.value = (const uint8_t *)"\x00\x00";
	c.value_len = 2;
	command_encode(&c, buf);
	assert_int_equal(command_decode(buf, command_encoded_size(&c), &d), RKV_ECORRUPT);

	/* What a queued command may add to a value: up to its end, nothing
	 * past its limit (it will fail), APPEND its bytes. */
	c.op = COMMAND_SETRANGE;
	c.value_len = 2;
	c.offset = 10;
	c.limit = 100;
	assert_true(command_growth(&c) == 12);
	c.offset = 99;
	assert_true(command_growth(&c) == 0);
	c.op = COMMAND_SETBIT;
	c.value_len = 1;
	c.offset = 8 * 99 + 7;
	assert_true(command_growth(&c) == 100);
	c.offset = 8 * 100;
	assert_true(command_growth(&c) == 0);
	c.op = COMMAND_APPEND;
	c.value_len = 5;
	assert_true(command_growth(&c) == 5);
}

/* INCRBYFLOAT: the increment as text, like a PUT's value. */
static void test_incrbyfloat(void **state)
{
	struct command c = { .op = COMMAND_INCRBYFLOAT, .key = (const uint8_t *)"k",
			     .key_len = 1, .value = (const uint8_t *)"-1.5e3", .value_len = 6 };
	struct command d;
	uint8_t buf[64];

	(void)state;
	assert_int_equal(command_encoded_size(&c), 1 + 4 + 1 + 4 + 6);
	command_encode(&c, buf);
	assert_int_equal(buf[0], 10);
	assert_int_equal(command_decode(buf, command_encoded_size(&c), &d), 0);
	assert_int_equal(d.op, COMMAND_INCRBYFLOAT);
	assert_memory_equal(d.value, "-1.5e3", 6);
	assert_true(command_growth(&d) == 0);
	/* Op 21 is not a command (yet): refused. */
	buf[0] = 21;
	assert_int_equal(command_decode(buf, command_encoded_size(&c), &d), RKV_ECORRUPT);
}

/* MSETNX (11): an empty key, the pairs packed as its value, byte for byte;
 * every malformed packing refused. */
static void test_msetnx(void **state)
{
	static const uint8_t want[] = {
		11, 0, 0, 0, 0,                  /* op, key_len 0 */
		21, 0, 0, 0,                     /* value_len */
		2, 0, 0, 0, 'k', '1', 1, 0, 0, 0, 'a',
		2, 0, 0, 0, 'k', '2', 0, 0, 0, 0, /* an empty value is a value */
	};
	uint8_t pairs[64], buf[64], bad[64];
	uint8_t *p = pairs;
	struct command c = { .op = COMMAND_MSETNX }, d;
	struct command_pair pr;
	size_t pos = 0, n;

	(void)state;
	p = command_pair_put(p, "k1", 2, "a", 1);
	p = command_pair_put(p, "k2", 2, "", 0);
	assert_int_equal(p - pairs, command_pair_size(2, 1) + command_pair_size(2, 0));
	c.value = pairs;
	c.value_len = (uint32_t)(p - pairs);
	n = command_encoded_size(&c);
	assert_int_equal(n, sizeof want);
	command_encode(&c, buf);
	assert_memory_equal(buf, want, sizeof want);
	assert_int_equal(command_decode(buf, n, &d), 0);
	assert_int_equal(d.op, COMMAND_MSETNX);
	assert_true(command_is_multi(d.op));
	assert_int_equal(command_pair_next(&d, &pos, &pr), 1);
	assert_int_equal(pr.key_len, 2);
	assert_memory_equal(pr.key, "k1", 2);
	assert_int_equal(pr.value_len, 1);
	assert_int_equal(command_pair_next(&d, &pos, &pr), 1);
	assert_memory_equal(pr.key, "k2", 2);
	assert_int_equal(pr.value_len, 0);
	assert_int_equal(command_pair_next(&d, &pos, &pr), 0);
	assert_true(command_growth(&d) == 0);

	/* Every shorter value (cut inside a pair, or no pair at all) and a
	 * trailing byte: refused. */
	for (uint32_t len = 0; len < 21; len++) {
		if (len == 11)
			continue; /* exactly the first pair: a valid MSETNX of one */
		memcpy(bad, buf, n);
		bad[5] = (uint8_t)len;
		assert_int_equal(command_decode(bad, 9 + len, &d), RKV_ECORRUPT);
	}
	memcpy(bad, buf, n);
	bad[5] = 11;
	assert_int_equal(command_decode(bad, 9 + 11, &d), 0);
	bad[5] = 22;
	bad[n] = 0;
	assert_int_equal(command_decode(bad, n + 1, &d), RKV_ECORRUPT);
	/* A pair's key length past the end. */
	memcpy(bad, buf, n);
	bad[9] = 200;
	assert_int_equal(command_decode(bad, n, &d), RKV_ECORRUPT);
	/* MSETNX names no key of its own. */
	c.key = (const uint8_t *)"x";
	c.key_len = 1;
	command_encode(&c, bad);
	assert_int_equal(command_decode(bad, command_encoded_size(&c), &d), RKV_ECORRUPT);
}

/* RENAME, RENAMENX, COPY, COPY_REPLACE (12-15): source as key, destination
 * as value. */
static void test_rename_copy(void **state)
{
	static const enum command_op ops[] = { COMMAND_RENAME, COMMAND_RENAMENX, COMMAND_COPY,
					       COMMAND_COPY_REPLACE };
	uint8_t buf[64];
	struct command d;

	(void)state;
	for (unsigned i = 0; i < 4; i++) {
		struct command c = { .op = ops[i], .key = (const uint8_t *)"src", .key_len = 3,
				     .value = (const uint8_t *)"{t}dst", .value_len = 6 };
		static const uint8_t want[] = { 0, 3, 0, 0, 0, 's', 'r', 'c',
						6, 0, 0, 0, '{', 't', '}', 'd', 's', 't' };

		assert_int_equal(command_encoded_size(&c), sizeof want);
		command_encode(&c, buf);
		assert_int_equal(buf[0], 12 + i);
		assert_memory_equal(buf + 1, want + 1, sizeof want - 1);
		assert_int_equal(command_decode(buf, sizeof want, &d), 0);
		assert_int_equal(d.op, ops[i]);
		assert_true(command_is_multi(d.op));
		assert_int_equal(d.key_len, 3);
		assert_memory_equal(d.value, "{t}dst", 6);
		assert_true(command_growth(&d) == 0);
		assert_int_equal(command_decode(buf, sizeof want - 1, &d), RKV_ECORRUPT);
	}
	assert_false(command_is_multi(COMMAND_INCRBYFLOAT));
}

/* Decodes `len` bytes of `buf` and checks they come out as `c` (the fields
 * the expiry ops use). */
static void assert_round_trip(const struct command *c, const uint8_t *buf, size_t len)
{
	struct command d;

	assert_int_equal(command_decode(buf, len, &d), 0);
	assert_int_equal(d.op, c->op);
	assert_int_equal(d.key_len, c->key_len);
	assert_memory_equal(d.key, c->key, c->key_len);
	assert_int_equal(d.value_len, c->value_len);
	if (c->value_len)
		assert_memory_equal(d.value, c->value, c->value_len);
	assert_true(d.deadline == c->deadline);
	assert_int_equal(d.flags, c->flags);
	assert_true(d.now == c->now);
	/* every shorter cut and one more byte refused */
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(command_decode(buf, cut, &d), RKV_ECORRUPT);
}

/* Expiry ops 16-20, byte for byte; flags and deadlines the ops forbid
 * refused. */
static void test_expiry_ops(void **state)
{
	uint8_t buf[64], bad[64];
	struct command d;
	struct command put_at = { .op = COMMAND_PUT_AT, .key = (const uint8_t *)"k", .key_len = 1,
				  .value = (const uint8_t *)"vv", .value_len = 2,
				  .deadline = 0x0102030405060708ull, .flags = COMMAND_SET_NX };
	static const uint8_t want_put_at[] = { 17, 1, 0, 0, 0, 'k', 2, 0, 0, 0, 'v', 'v',
					       8, 7, 6, 5, 4, 3, 2, 1, COMMAND_SET_NX };
	struct command expire_at = { .op = COMMAND_EXPIRE_AT, .key = (const uint8_t *)"k",
				     .key_len = 1, .deadline = 1000,
				     .flags = COMMAND_EXPIRE_XX | COMMAND_EXPIRE_GT };
	static const uint8_t want_expire_at[] = { 18, 1, 0, 0, 0, 'k', 0xe8, 3, 0, 0, 0, 0, 0, 0,
						  COMMAND_EXPIRE_XX | COMMAND_EXPIRE_GT };
	struct command persist = { .op = COMMAND_PERSIST, .key = (const uint8_t *)"k", .key_len = 1 };
	static const uint8_t want_persist[] = { 19, 1, 0, 0, 0, 'k' };
	struct command edel = { .op = COMMAND_EXPIRE_DELETE, .key = (const uint8_t *)"k",
				.key_len = 1, .deadline = 2 };
	static const uint8_t want_edel[] = { 20, 1, 0, 0, 0, 'k', 2, 0, 0, 0, 0, 0, 0, 0 };
	/* Any command with the proposer's time: the AT_TIME prefix. */
	struct command timed = { .op = COMMAND_DELETE, .key = (const uint8_t *)"k", .key_len = 1,
				 .now = 0x1122334455667788ull };
	static const uint8_t want_timed[] = { 16, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
					      2, 1, 0, 0, 0, 'k' };

	(void)state;
	assert_int_equal(command_encoded_size(&put_at), sizeof want_put_at);
	command_encode(&put_at, buf);
	assert_memory_equal(buf, want_put_at, sizeof want_put_at);
	assert_round_trip(&put_at, buf, sizeof want_put_at);
	buf[sizeof want_put_at] = 0;
	assert_int_equal(command_decode(buf, sizeof want_put_at + 1, &d), RKV_ECORRUPT);

	assert_int_equal(command_encoded_size(&expire_at), sizeof want_expire_at);
	command_encode(&expire_at, buf);
	assert_memory_equal(buf, want_expire_at, sizeof want_expire_at);
	assert_round_trip(&expire_at, buf, sizeof want_expire_at);

	assert_int_equal(command_encoded_size(&persist), sizeof want_persist);
	command_encode(&persist, buf);
	assert_memory_equal(buf, want_persist, sizeof want_persist);
	assert_round_trip(&persist, buf, sizeof want_persist);

	assert_int_equal(command_encoded_size(&edel), sizeof want_edel);
	command_encode(&edel, buf);
	assert_memory_equal(buf, want_edel, sizeof want_edel);
	assert_round_trip(&edel, buf, sizeof want_edel);

	assert_int_equal(command_encoded_size(&timed), sizeof want_timed);
	command_encode(&timed, buf);
	assert_memory_equal(buf, want_timed, sizeof want_timed);
	assert_round_trip(&timed, buf, sizeof want_timed);

	/* AT_TIME with time 0, AT_TIME twice, AT_TIME alone: refused. */
	memcpy(bad, want_timed, sizeof want_timed);
	memset(bad + 1, 0, 8);
	assert_int_equal(command_decode(bad, sizeof want_timed, &d), RKV_ECORRUPT);
	memcpy(bad, want_timed, 9);
	memcpy(bad + 9, want_timed, sizeof want_timed);
	assert_int_equal(command_decode(bad, 9 + sizeof want_timed, &d), RKV_ECORRUPT);
	assert_int_equal(command_decode(want_timed, 9, &d), RKV_ECORRUPT);

	/* PUT_AT: NX with XX, KEEPTTL with a deadline, unknown bits. */
	static const uint8_t put_bad_flags[] = { COMMAND_SET_NX | COMMAND_SET_XX,
						 COMMAND_SET_KEEPTTL, 0x8, 0x80 };
	for (unsigned i = 0; i < sizeof put_bad_flags; i++) {
		memcpy(bad, want_put_at, sizeof want_put_at);
		bad[sizeof want_put_at - 1] = put_bad_flags[i];
		assert_int_equal(command_decode(bad, sizeof want_put_at, &d), RKV_ECORRUPT);
	}
	/* KEEPTTL without a deadline, and no deadline at all, are fine. */
	memcpy(bad, want_put_at, sizeof want_put_at);
	memset(bad + 12, 0, 8);
	bad[sizeof want_put_at - 1] = COMMAND_SET_KEEPTTL | COMMAND_SET_XX;
	assert_int_equal(command_decode(bad, sizeof want_put_at, &d), 0);
	assert_true(d.deadline == 0);
	/* EXPIRE_AT: NX with any other, GT with LT, unknown bits, deadline 0. */
	static const uint8_t exp_bad_flags[] = { COMMAND_EXPIRE_NX | COMMAND_EXPIRE_XX,
						 COMMAND_EXPIRE_NX | COMMAND_EXPIRE_GT,
						 COMMAND_EXPIRE_GT | COMMAND_EXPIRE_LT, 0x10 };
	for (unsigned i = 0; i < sizeof exp_bad_flags; i++) {
		memcpy(bad, want_expire_at, sizeof want_expire_at);
		bad[sizeof want_expire_at - 1] = exp_bad_flags[i];
		assert_int_equal(command_decode(bad, sizeof want_expire_at, &d), RKV_ECORRUPT);
	}
	memcpy(bad, want_expire_at, sizeof want_expire_at);
	memset(bad + 6, 0, 8);
	assert_int_equal(command_decode(bad, sizeof want_expire_at, &d), RKV_ECORRUPT);
	/* EXPIRE_DELETE of deadline 0 */
	memcpy(bad, want_edel, sizeof want_edel);
	memset(bad + 6, 0, 8);
	assert_int_equal(command_decode(bad, sizeof want_edel, &d), RKV_ECORRUPT);
	/* An op byte of 16 is only ever a prefix. */
	assert_int_equal(command_decode(want_persist + 0, sizeof want_persist, &d), 0);
	memcpy(bad, want_persist, sizeof want_persist);
	bad[0] = 16;
	assert_int_equal(command_decode(bad, sizeof want_persist, &d), RKV_ECORRUPT);
}

/* shard/shard_strings.c's float rules, which INCRBYFLOAT applies on every
 * replica: Redis's reading and writing of a float. */
static void test_float_text(void **state)
{
	static const char *const bad[] = { "", " 1", "1 ", "nan", "-nan", "1e", "1..5",
					   "abc", "1e5000", "-1e5000", "1e-5000" };
	char out[SHARD_FLOAT_TEXT_MAX];
	long double v;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_false(shard_float_parse(bad[i], strlen(bad[i]), &v));
	assert_false(shard_float_parse("1\0", 2, &v));
	assert_true(shard_float_parse("inf", 3, &v) && v > 0);
	assert_true(shard_float_parse("0x10", 4, &v) && v == 16);
	assert_true(shard_float_parse("-1.5e3", 6, &v) && v == -1500);

	n = shard_float_format(10.5L, out);
	assert_int_equal(n, 4);
	assert_memory_equal(out, "10.5", 4);
	n = shard_float_format(10.5L + 0.1L, out);
	assert_memory_equal(out, "10.6", n);
	assert_int_equal(n, 4);
	n = shard_float_format(3.0L, out);
	assert_int_equal(n, 1);
	assert_memory_equal(out, "3", 1);
	n = shard_float_format(-0.0L, out);
	assert_int_equal(n, 1);
	assert_memory_equal(out, "0", 1);
	n = shard_float_format(-1e-30L, out); /* rounds to -0 at 17 decimals */
	assert_int_equal(n, 1);
	assert_memory_equal(out, "0", 1);
	n = shard_float_format(5200.0L, out);
	assert_memory_equal(out, "5200", n);
	assert_int_equal(n, 4);
}

/* command_peek_key finds what command_decode finds as the key, with and
 * without the proposer's time in front, and refuses what has none or lies
 * past the end; it reads no byte beyond len. */
static void test_peek_key(void **state)
{
	const struct command cmds[] = {
		{ .op = COMMAND_PUT, .key = (const uint8_t *)"key", .key_len = 3,
		  .value = (const uint8_t *)"value", .value_len = 5 },
		{ .op = COMMAND_DELETE, .key = (const uint8_t *)"gone", .key_len = 4 },
		{ .op = COMMAND_PUT, .key = (const uint8_t *)"timed", .key_len = 5,
		  .value = (const uint8_t *)"v", .value_len = 1, .now = 1700000000000ull },
		{ .op = COMMAND_INCRBY, .key = (const uint8_t *)"n", .key_len = 1, .delta = 3 },
	};
	uint8_t buf[64];
	const uint8_t *key;
	uint32_t key_len;
	struct command d, flush = { .op = COMMAND_FLUSH };
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		n = command_encode(&cmds[i], buf);
		assert_int_equal(command_decode(buf, n, &d), 0);
		assert_true(command_peek_key(buf, n, &key, &key_len));
		assert_ptr_equal(key, d.key);
		assert_int_equal(key_len, d.key_len);
		/* Cut inside the key: no key. */
		assert_false(command_peek_key(buf, (size_t)(d.key - buf) + d.key_len - 1, &key,
					      &key_len));
	}
	n = command_encode(&flush, buf);
	assert_false(command_peek_key(buf, n, &key, &key_len));
	assert_false(command_peek_key(buf, 0, &key, &key_len));
	buf[0] = 0xee; /* no such op */
	assert_false(command_peek_key(buf, 16, &key, &key_len));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_round_trip),
		cmocka_unit_test(test_delete_round_trip),
		cmocka_unit_test(test_empty_key_and_value),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_conditional_and_read_modify_write_ops),
		cmocka_unit_test(test_flush),
		cmocka_unit_test(test_offset_ops),
		cmocka_unit_test(test_incrbyfloat),
		cmocka_unit_test(test_msetnx),
		cmocka_unit_test(test_rename_copy),
		cmocka_unit_test(test_float_text),
		cmocka_unit_test(test_expiry_ops),
		cmocka_unit_test(test_peek_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
