/*
 * Tests for shard/route.c: slots are XXH3_64bits % 16384 (checked against
 * xxHash's published sanity vectors, not against our own output), shards
 * are contiguous near-equal slot ranges, and keys spread evenly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "shard/route.h"

/* xxHash's sanity buffer: the byte generator of its self-test. */
static void fill_sanity_buffer(uint8_t *buf, size_t len)
{
	uint64_t gen = 2654435761u;

	for (size_t i = 0; i < len; i++) {
		buf[i] = (uint8_t)(gen >> 56);
		gen *= 11400714785074694797ull;
	}
}

static void test_slot_matches_xxh3_vectors(void **state)
{
	/* XXH3_64bits(sanity buffer, len), seed 0, from xxHash's test data. */
	static const struct {
		size_t len;
		uint64_t hash;
	} vectors[] = {
		{ 0, 0x2D06800538D394C2ull },   { 1, 0xC44BDFF4074EECDBull },
		{ 6, 0x27B56A84CD2D7325ull },   { 12, 0xA713DAF0DFBB77E7ull },
		{ 24, 0xA3FE70BF9D3510EBull },  { 48, 0x397DA259ECBA1F11ull },
		{ 80, 0xBCDEFBBB2C47C90Aull },  { 195, 0xCD94217EE362EC3Aull },
	};
	uint8_t buf[256];

	(void)state;
	fill_sanity_buffer(buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
		assert_int_equal(route_slot(buf, vectors[i].len),
				 (uint32_t)(vectors[i].hash % ROUTE_SLOTS));
	assert_int_equal(route_slot(NULL, 0), 0x2D06800538D394C2ull % ROUTE_SLOTS);
}

static void test_slot_known_keys(void **state)
{
	/* Pinned: a change here moves every key of every existing cluster. */
	(void)state;
	assert_int_equal(route_slot("", 0), 5314);
	assert_int_equal(route_slot("foo", 3), 15754);
	assert_int_equal(route_slot("user:1000", 9), 3231);
	assert_int_equal(route_shard(15754, 4), 3);
	assert_int_equal(route_shard(3231, 4), 0);
}

/* route_slot_fn(2) hashes what Redis Cluster's specification says it
 * hashes ("Hash tags"): the examples of the specification, and the edges
 * of the rule (first '{', first '}' after it, non-empty between). */
static void test_hash_tag_rule(void **state)
{
	static const struct {
		const char *key, *part;
	} cases[] = {
		{ "{user1000}.following", "user1000" },
		{ "{user1000}.followers", "user1000" },
		{ "foo{}{bar}", "foo{}{bar}" },   /* the first tag is empty: whole key */
		{ "foo{{bar}}zap", "{bar" },      /* from the first '{' to the first '}' */
		{ "foo{bar}{zap}", "bar" },       /* only the first tag counts */
		{ "{}", "{}" },
		{ "{", "{" },
		{ "}", "}" },
		{ "abc{", "abc{" },
		{ "abc{def", "abc{def" },         /* no '}' after the '{' */
		{ "x}y{z}", "z" },                /* a '}' before the '{' is ignored */
		{ "{a}", "a" },
		{ "{{}}", "{" },
		{ "plain", "plain" },
		{ "", "" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t len;
		const char *part = route_hash_tag(cases[i].key, strlen(cases[i].key), &len);

		assert_int_equal(len, strlen(cases[i].part));
		assert_memory_equal(part, cases[i].part, len);
		assert_int_equal(route_slot_fn(ROUTE_SLOT_FN_HASH_TAG, cases[i].key,
					       strlen(cases[i].key)),
				 route_slot(cases[i].part, strlen(cases[i].part)));
	}
	/* Binary keys: a NUL inside or around the tag is an ordinary byte. */
	assert_int_equal(route_slot_fn(ROUTE_SLOT_FN_HASH_TAG, "\0{a\0b}\0", 7),
			 route_slot("a\0b", 3));
	/* Pinned: "{user:1000}x" lives where "user:1000" does (3231). */
	assert_int_equal(route_slot_fn(ROUTE_SLOT_FN_HASH_TAG, "{user:1000}x", 12), 3231);
	assert_int_equal(route_slot_fn(ROUTE_SLOT_FN_DEFAULT, "{user:1000}y", 12), 3231);
}

/* Function 1 is the whole key whatever it holds: directories made before
 * hash tags keep every key where it is. */
static void test_whole_key_function_unchanged(void **state)
{
	static const char *const keys[] = { "{user1000}.following", "foo{bar}", "", "foo" };

	(void)state;
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		assert_int_equal(route_slot_fn(ROUTE_SLOT_FN_WHOLE_KEY, keys[i], strlen(keys[i])),
				 route_slot(keys[i], strlen(keys[i])));
	assert_int_not_equal(route_slot_fn(ROUTE_SLOT_FN_WHOLE_KEY, "{user1000}.following", 20),
			     route_slot_fn(ROUTE_SLOT_FN_WHOLE_KEY, "{user1000}.followers", 20));
	/* Untagged keys are placed alike by both. */
	assert_int_equal(route_slot_fn(ROUTE_SLOT_FN_HASH_TAG, "user:1000", 9), 3231);
}

static void test_shard_ranges(void **state)
{
	(void)state;
	assert_int_equal(route_shard(0, 1), 0);
	assert_int_equal(route_shard(ROUTE_SLOTS - 1, 1), 0);
	assert_int_equal(route_shard(8191, 2), 0);
	assert_int_equal(route_shard(8192, 2), 1);
	assert_int_equal(route_shard(5461, 3), 0);
	assert_int_equal(route_shard(5462, 3), 1);
	assert_int_equal(route_shard(ROUTE_SLOTS - 1, ROUTE_SLOTS), ROUTE_SLOTS - 1);
	for (uint32_t n = 1; n <= 200; n++) {
		uint32_t owned[200] = { 0 };
		uint32_t prev = 0;

		for (uint32_t slot = 0; slot < ROUTE_SLOTS; slot++) {
			uint32_t shard = route_shard(slot, n);

			assert_true(shard < n);
			/* Contiguous: the shard never goes back down. */
			assert_true(shard == prev || shard == prev + 1);
			prev = shard;
			owned[shard]++;
		}
		assert_int_equal(prev, n - 1);
		for (uint32_t i = 0; i < n; i++)
			assert_true(owned[i] == ROUTE_SLOTS / n ||
				    owned[i] == ROUTE_SLOTS / n + 1);
	}
}

static void test_slot_distribution(void **state)
{
	/* 16 keys per slot on average; chi-square over 16383 degrees of
	 * freedom has mean 16383 and sd ~181: allow six sd either way. */
	static uint32_t count[ROUTE_SLOTS];
	const uint32_t keys = ROUTE_SLOTS * 16;
	uint32_t shard_keys[7] = { 0 };
	double chi2 = 0;
	char key[32];

	(void)state;
	for (uint32_t i = 0; i < keys; i++) {
		int n = snprintf(key, sizeof(key), "key:%u", i);
		uint32_t slot = route_slot(key, (size_t)n);

		count[slot]++;
		shard_keys[route_shard(slot, 7)]++;
	}
	for (uint32_t s = 0; s < ROUTE_SLOTS; s++) {
		double d = (double)count[s] - 16.0;

		chi2 += d * d / 16.0;
	}
	assert_true(chi2 > 16383 - 6 * 181 && chi2 < 16383 + 6 * 181);
	for (int i = 0; i < 7; i++)
		assert_true(shard_keys[i] > keys / 7 * 0.97 &&
			    shard_keys[i] < keys / 7 * 1.03);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slot_matches_xxh3_vectors),
		cmocka_unit_test(test_slot_known_keys),
		cmocka_unit_test(test_hash_tag_rule),
		cmocka_unit_test(test_whole_key_function_unchanged),
		cmocka_unit_test(test_shard_ranges),
		cmocka_unit_test(test_slot_distribution),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
