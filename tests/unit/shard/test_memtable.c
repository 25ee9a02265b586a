/*
 * Tests for shard/memtable.c: order, overwrite, tombstones, seek, a long run
 * of random operations checked against a plain reference model (with the
 * hash index, across its growth, and without it; prefetch hints among them
 * change nothing), the index's sizing, and the
 * RKV_EFULL contract (a failed write changes nothing; a write whose
 * memtable_entry_cost() fits in memtable_remaining() always succeeds).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/errors.h"
#include "shard/memtable.h"

static uint64_t rnd_state;

static uint64_t rnd(void)
{
	uint64_t z = (rnd_state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void put_str(struct memtable *mt, const char *k, const char *v)
{
	assert_int_equal(memtable_put(mt, k, strlen(k), v, strlen(v)), 0);
}

static void assert_value(struct memtable *mt, const char *k, const char *want)
{
	const void *v;
	size_t len;

	assert_int_equal(memtable_get(mt, k, strlen(k), &v, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(v, want, len);
}

static void test_empty(void **state)
{
	struct memtable *mt;
	struct memtable_iter it;
	const void *v;
	size_t len;

	(void)state;
	assert_int_equal(memtable_create(&mt, 1 << 16), 0);
	assert_int_equal(memtable_count(mt), 0);
	assert_int_equal(memtable_used(mt), 0);
	assert_int_equal(memtable_remaining(mt), 1 << 16);
	assert_int_equal(memtable_get(mt, "a", 1, &v, &len), RKV_ENOTFOUND);
	assert_int_equal(memtable_get(mt, "", 0, &v, &len), RKV_ENOTFOUND);
	memtable_iter_first(&it, mt);
	assert_false(memtable_iter_valid(&it));
	memtable_iter_seek(&it, mt, "a", 1);
	assert_false(memtable_iter_valid(&it));
	memtable_destroy(mt);
	memtable_destroy(NULL);
}

static void test_order(void **state)
{
	static const char *const sorted[] = { "", "a", "aa", "ab", "b", "ba", "bb\x01", "bb\xff", "c" };
	static const int insert_order[] = { 4, 8, 0, 6, 2, 1, 7, 5, 3 };
	const size_t n = sizeof(sorted) / sizeof(sorted[0]);
	struct memtable *mt;
	struct memtable_iter it;
	size_t i = 0;

	(void)state;
	assert_int_equal(memtable_create(&mt, 1 << 16), 0);
	for (size_t j = 0; j < n; j++)
		put_str(mt, sorted[insert_order[j]], sorted[insert_order[j]]);
	assert_int_equal(memtable_count(mt), n);
	for (memtable_iter_first(&it, mt); memtable_iter_valid(&it);
	     memtable_iter_next(&it), i++) {
		size_t klen;
		size_t vlen;
		const void *k = memtable_iter_key(&it, &klen);
		const void *v = memtable_iter_value(&it, &vlen);

		assert_true(i < n);
		assert_int_equal(klen, strlen(sorted[i]));
		assert_memory_equal(k, sorted[i], klen);
		assert_int_equal(vlen, klen);
		assert_non_null(v);
		assert_false(memtable_iter_is_tombstone(&it));
	}
	assert_int_equal(i, n);
	for (i = 0; i < n; i++)
		assert_value(mt, sorted[i], sorted[i]);
	memtable_destroy(mt);
}

static void test_overwrite(void **state)
{
	struct memtable *mt;
	size_t used;

	(void)state;
	assert_int_equal(memtable_create(&mt, 1 << 16), 0);
	put_str(mt, "key", "first");
	put_str(mt, "key", "second value, longer");
	assert_value(mt, "key", "second value, longer");
	used = memtable_used(mt);
	put_str(mt, "key", "3");
	assert_value(mt, "key", "3");
	/* An overwrite costs only the new value's bytes. */
	assert_int_equal(memtable_used(mt), used + 1);
	assert_int_equal(memtable_count(mt), 1);
	/* An empty value is a value, not a tombstone. */
	assert_int_equal(memtable_put(mt, "key", 3, NULL, 0), 0);
	assert_value(mt, "key", "");
	assert_int_equal(memtable_put(mt, "k2", 2, "", 0), 0);
	assert_value(mt, "k2", "");
	memtable_destroy(mt);
}

static void test_tombstone(void **state)
{
	struct memtable *mt;
	struct memtable_iter it;
	const void *v;
	size_t len;

	(void)state;
	assert_int_equal(memtable_create(&mt, 1 << 16), 0);
	put_str(mt, "a", "1");
	put_str(mt, "b", "2");
	assert_int_equal(memtable_delete(mt, "a", 1), 0);
	assert_int_equal(memtable_get(mt, "a", 1, &v, &len), RKV_EDELETED);
	/* Deleting a key never written here still records the tombstone, so it
	 * hides older versions in the SSTables below. */
	assert_int_equal(memtable_delete(mt, "z", 1), 0);
	assert_int_equal(memtable_get(mt, "z", 1, &v, &len), RKV_EDELETED);
	assert_int_equal(memtable_count(mt), 3);

	memtable_iter_first(&it, mt);
	assert_true(memtable_iter_is_tombstone(&it));
	assert_null(memtable_iter_value(&it, &len));
	assert_int_equal(len, 0);
	memtable_iter_next(&it);
	assert_false(memtable_iter_is_tombstone(&it));
	memtable_iter_next(&it);
	assert_true(memtable_iter_is_tombstone(&it));
	memtable_iter_next(&it);
	assert_false(memtable_iter_valid(&it));

	put_str(mt, "a", "again");
	assert_value(mt, "a", "again");
	assert_int_equal(memtable_delete(mt, "a", 1), 0);
	assert_int_equal(memtable_get(mt, "a", 1, &v, &len), RKV_EDELETED);
	assert_int_equal(memtable_count(mt), 3);
	memtable_destroy(mt);
}

static void test_seek(void **state)
{
	struct memtable *mt;
	struct memtable_iter it;
	size_t len;
	const char *k;
	char key[8];

	(void)state;
	assert_int_equal(memtable_create(&mt, 1 << 20), 0);
	for (int i = 0; i < 1000; i += 10) {
		snprintf(key, sizeof(key), "k%04d", i);
		put_str(mt, key, key);
	}
	memtable_iter_seek(&it, mt, "k0500", 5);
	k = memtable_iter_key(&it, &len);
	assert_memory_equal(k, "k0500", 5);
	memtable_iter_seek(&it, mt, "k0501", 5);
	k = memtable_iter_key(&it, &len);
	assert_memory_equal(k, "k0510", 5);
	memtable_iter_seek(&it, mt, "k05", 3);
	k = memtable_iter_key(&it, &len);
	assert_memory_equal(k, "k0500", 5);
	memtable_iter_seek(&it, mt, "", 0);
	k = memtable_iter_key(&it, &len);
	assert_memory_equal(k, "k0000", 5);
	memtable_iter_seek(&it, mt, "k0991", 5);
	assert_false(memtable_iter_valid(&it));
	memtable_iter_seek(&it, mt, "l", 1);
	assert_false(memtable_iter_valid(&it));
	memtable_destroy(mt);
}

/* ---- random operations against a reference model ---- */

#define MODEL_KEYS 400
#define MODEL_MAX_KEY 12
#define MODEL_MAX_VALUE 40

struct model_entry {
	uint8_t key[MODEL_MAX_KEY];
	size_t key_len;
	int state; /* 0 never written, 1 value, 2 tombstone */
	uint8_t value[MODEL_MAX_VALUE];
	size_t value_len;
};

static struct model_entry model[MODEL_KEYS];

/* Reference order written from the header's words, not from the code. */
static int model_cmp(const void *pa, const void *pb)
{
	const struct model_entry *a = pa;
	const struct model_entry *b = pb;
	size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;

	for (size_t i = 0; i < n; i++)
		if (a->key[i] != b->key[i])
			return a->key[i] < b->key[i] ? -1 : 1;
	return (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

static void model_make_keys(void)
{
	static const uint8_t alphabet[] = { 0x00, 'a', 'b', 'c', 0x7f, 0x80, 0xff };

	for (size_t i = 0; i < MODEL_KEYS; i++) {
		struct model_entry *e = &model[i];
		bool dup;

		do {
			e->key_len = (size_t)(rnd() % (MODEL_MAX_KEY + 1));
			for (size_t j = 0; j < e->key_len; j++)
				e->key[j] = alphabet[rnd() % sizeof(alphabet)];
			dup = false;
			for (size_t j = 0; j < i && !dup; j++)
				dup = model_cmp(e, &model[j]) == 0;
		} while (dup);
		e->state = 0;
	}
	/* Sorted once, so model order is iteration order. */
	qsort(model, MODEL_KEYS, sizeof(model[0]), model_cmp);
}

static void model_check_all(struct memtable *mt)
{
	struct memtable_iter it;
	size_t present = 0;
	size_t i = 0;

	memtable_iter_first(&it, mt);
	for (size_t m = 0; m < MODEL_KEYS; m++) {
		struct model_entry *e = &model[m];
		const void *v;
		size_t klen;
		size_t vlen;
		const void *k;
		int rv = memtable_get(mt, e->key, e->key_len, &v, &vlen);

		if (e->state == 0) {
			assert_int_equal(rv, RKV_ENOTFOUND);
			continue;
		}
		present++;
		assert_true(memtable_iter_valid(&it));
		k = memtable_iter_key(&it, &klen);
		assert_int_equal(klen, e->key_len);
		if (klen != 0)
			assert_memory_equal(k, e->key, klen);
		if (e->state == 2) {
			assert_int_equal(rv, RKV_EDELETED);
			assert_true(memtable_iter_is_tombstone(&it));
		} else {
			assert_int_equal(rv, 0);
			assert_int_equal(vlen, e->value_len);
			if (vlen != 0)
				assert_memory_equal(v, e->value, vlen);
			assert_false(memtable_iter_is_tombstone(&it));
		}
		memtable_iter_next(&it);
		i++;
	}
	assert_false(memtable_iter_valid(&it));
	assert_int_equal(memtable_count(mt), present);
	assert_int_equal(i, present);
}

static void model_check_seek(struct memtable *mt)
{
	struct model_entry probe;
	struct memtable_iter it;
	size_t m;

	probe.key_len = (size_t)(rnd() % (MODEL_MAX_KEY + 1));
	for (size_t j = 0; j < probe.key_len; j++)
		probe.key[j] = (uint8_t)rnd();
	memtable_iter_seek(&it, mt, probe.key, probe.key_len);
	for (m = 0; m < MODEL_KEYS; m++)
		if (model[m].state != 0 && model_cmp(&model[m], &probe) >= 0)
			break;
	if (m == MODEL_KEYS) {
		assert_false(memtable_iter_valid(&it));
	} else {
		size_t klen;
		const void *k = memtable_iter_key(&it, &klen);

		assert_int_equal(klen, model[m].key_len);
		if (klen != 0)
			assert_memory_equal(k, model[m].key, klen);
	}
}

static void test_random_against_model(void **state)
{
	struct memtable *mt;

	(void)state;
	rnd_state = 42;
	model_make_keys();
	assert_int_equal(memtable_create(&mt, 8 << 20), 0);
	for (int op = 0; op < 20000; op++) {
		struct model_entry *e = &model[rnd() % MODEL_KEYS];
		const struct model_entry *ahead = &model[rnd() % MODEL_KEYS];
		unsigned kind = (unsigned)(rnd() % 10);

		/* Hints for keys present or not, with the index or without,
		 * change nothing the model would see. */
		memtable_prefetch(mt, ahead->key, ahead->key_len, false);
		memtable_prefetch(mt, ahead->key, ahead->key_len, true);
		if (kind < 5) {
			e->value_len = (size_t)(rnd() % (MODEL_MAX_VALUE + 1));
			for (size_t j = 0; j < e->value_len; j++)
				e->value[j] = (uint8_t)rnd();
			assert_int_equal(memtable_put(mt, e->key, e->key_len,
						      e->value, e->value_len), 0);
			e->state = 1;
		} else if (kind < 7) {
			assert_int_equal(memtable_delete(mt, e->key, e->key_len), 0);
			e->state = 2;
		} else if (kind < 9) {
			const void *v;
			size_t vlen;
			int rv = memtable_get(mt, e->key, e->key_len, &v, &vlen);

			assert_int_equal(rv, e->state == 0 ? RKV_ENOTFOUND :
					 e->state == 2 ? RKV_EDELETED : 0);
			if (rv == 0) {
				assert_int_equal(vlen, e->value_len);
				if (vlen != 0)
					assert_memory_equal(v, e->value, vlen);
			}
		} else {
			model_check_seek(mt);
		}
		if (op % 2000 == 0)
			model_check_all(mt);
		/* The second half runs on the skiplist alone, as after a
		 * failed growth of the index: the same answers. */
		if (op == 10000) {
			assert_true(memtable_index_slots(mt) > 512); /* it grew */
			memtable_drop_index(mt);
			assert_int_equal(memtable_index_slots(mt), 0);
			model_check_all(mt);
		}
	}
	model_check_all(mt);
	memtable_destroy(mt);
}

/* ---- the hash index ---- */

static size_t key_of(char *buf, size_t cap, uint32_t i)
{
	return (size_t)snprintf(buf, cap, "user:%08u", i);
}

/*
 * 200,000 keys through several doublings of the index: every key found with
 * its latest value, absent keys (including ones sharing a long prefix)
 * not found, the table at most 3/4 full and not absurdly large, the
 * skiplist still complete and in order.
 */
static void test_index_grows(void **state)
{
	enum { N = 200000 };
	struct memtable *mt;
	char key[32];
	uint32_t v;
	const void *got;
	size_t len, slots, seen = 0;
	struct memtable_iter it;
	char prev[32] = "";

	(void)state;
	assert_int_equal(memtable_create(&mt, 64 << 20), 0);
	assert_int_equal(memtable_index_slots(mt), 512);
	for (uint32_t i = 0; i < N; i++) {
		size_t kl = key_of(key, sizeof key, (uint32_t)((uint64_t)i * 2654435761u % N));

		assert_int_equal(memtable_put(mt, key, kl, &i, sizeof i), 0);
	}
	assert_int_equal(memtable_count(mt), N);
	slots = memtable_index_slots(mt);
	assert_true((slots & (slots - 1)) == 0);
	assert_true(slots * 3 >= (size_t)N * 4);
	assert_true(slots <= (size_t)N * 4);
	/* Overwrite every third key; delete every seventh. */
	for (uint32_t i = 0; i < N; i += 3) {
		uint32_t nv = i + N;
		size_t kl = key_of(key, sizeof key, i);

		assert_int_equal(memtable_put(mt, key, kl, &nv, sizeof nv), 0);
	}
	for (uint32_t i = 0; i < N; i += 7)
		assert_int_equal(memtable_delete(mt, key, key_of(key, sizeof key, i)), 0);
	assert_int_equal(memtable_count(mt), N);
	assert_int_equal(memtable_index_slots(mt), slots);
	for (uint32_t i = 0; i < N; i++) {
		size_t kl = key_of(key, sizeof key, i);
		int rv = memtable_get(mt, key, kl, &got, &len);

		if (i % 7 == 0) {
			assert_int_equal(rv, RKV_EDELETED);
			continue;
		}
		assert_int_equal(rv, 0);
		assert_int_equal(len, sizeof v);
		memcpy(&v, got, sizeof v);
		if (i % 3 == 0)
			assert_int_equal(v, i + N);
		else
			assert_int_equal((uint64_t)v * 2654435761u % N, i);
	}
	for (uint32_t i = N; i < N + 20000; i++) {
		size_t kl = key_of(key, sizeof key, i);

		assert_int_equal(memtable_get(mt, key, kl, &got, &len), RKV_ENOTFOUND);
		assert_int_equal(memtable_get(mt, key, kl - 1, &got, &len), RKV_ENOTFOUND);
	}
	for (memtable_iter_first(&it, mt); memtable_iter_valid(&it); memtable_iter_next(&it)) {
		const char *k = memtable_iter_key(&it, &len);

		assert_int_equal(len, 13);
		assert_true(memcmp(prev, k, len) < 0);
		memcpy(prev, k, len);
		seen++;
	}
	assert_int_equal(seen, N);
	memtable_destroy(mt);
}

/* Sized for what its predecessor held, a memtable never doubles its index. */
static void test_index_sized(void **state)
{
	struct memtable *mt;
	char key[32];
	size_t slots;

	(void)state;
	assert_int_equal(memtable_create_sized(&mt, 4 << 20, 5000), 0);
	slots = memtable_index_slots(mt);
	assert_int_equal(slots, 8192);
	for (uint32_t i = 0; i < 5000; i++)
		assert_int_equal(memtable_put(mt, key, key_of(key, sizeof key, i), "v", 1), 0);
	assert_int_equal(memtable_index_slots(mt), slots);
	memtable_put(mt, key, key_of(key, sizeof key, 7000), "v", 1);
	assert_int_equal(memtable_index_slots(mt), 8192);
	for (uint32_t i = 5001; i < 6200; i++)
		assert_int_equal(memtable_put(mt, key, key_of(key, sizeof key, i), "v", 1), 0);
	assert_int_equal(memtable_index_slots(mt), 16384); /* past 3/4: doubled */
	memtable_destroy(mt);
	/* No index for an arena the 32-bit node numbers cannot cover, and
	 * the memtable still works (the mapping is only reserved). */
	assert_int_equal(memtable_create_sized(&mt, (size_t)40 << 30, 1000), 0);
	assert_int_equal(memtable_index_slots(mt), 0);
	put_str(mt, "big", "arena");
	assert_value(mt, "big", "arena");
	memtable_destroy(mt);
}

/* ---- the RKV_EFULL contract ---- */

static void fill_key(uint8_t *key, size_t len, uint64_t id)
{
	memset(key, 'x', len);
	for (size_t j = 0; j < len && j < 8; j++)
		key[j] = (uint8_t)(id >> (8 * (7 - j)));
}

static void test_fill_until_full(void **state)
{
	struct memtable *mt;
	uint8_t key[64];
	uint8_t value[300];
	uint64_t id = 0;
	size_t used_before;
	size_t count_before;
	int rv;

	(void)state;
	rnd_state = 7;
	memset(value, 'v', sizeof(value));
	assert_int_equal(memtable_create(&mt, 64 << 10), 0);
	for (;;) {
		size_t klen = 8 + (size_t)(rnd() % 56);
		size_t vlen = (size_t)(rnd() % sizeof(value));
		size_t cost = memtable_entry_cost(klen, vlen);
		size_t remaining = memtable_remaining(mt);

		fill_key(key, klen, id);
		used_before = memtable_used(mt);
		count_before = memtable_count(mt);
		rv = memtable_put(mt, key, klen, value, vlen);
		if (rv == RKV_EFULL) {
			/* A write that fails was not covered by its reservation. */
			assert_true(cost > remaining);
			break;
		}
		assert_int_equal(rv, 0);
		assert_true(memtable_used(mt) - used_before <= cost);
		id++;
	}
	assert_true(id > 50);
	assert_int_equal(memtable_used(mt), used_before);
	assert_int_equal(memtable_count(mt), count_before);
	assert_int_equal(memtable_count(mt), id);
	/* Tombstones for new keys need nodes too: they fill the rest and then
	 * fail the same way. */
	for (;;) {
		size_t cost = memtable_entry_cost(64, 0);
		size_t remaining = memtable_remaining(mt);

		fill_key(key, 64, id);
		used_before = memtable_used(mt);
		rv = memtable_delete(mt, key, 64);
		if (rv == RKV_EFULL) {
			assert_true(cost > remaining);
			break;
		}
		assert_int_equal(rv, 0);
		id++;
	}
	assert_int_equal(memtable_used(mt), used_before);
	assert_int_equal(memtable_count(mt), id);
	/* Every earlier key is still there, in order, with its value. */
	{
		struct memtable_iter it;
		uint64_t seen = 0;
		size_t prev_len = 0;
		uint8_t prev[64];

		for (memtable_iter_first(&it, mt); memtable_iter_valid(&it);
		     memtable_iter_next(&it), seen++) {
			size_t klen;
			const uint8_t *k = memtable_iter_key(&it, &klen);
			const void *v;
			size_t vlen;

			if (seen > 0) {
				size_t n = klen < prev_len ? klen : prev_len;
				int c = memcmp(prev, k, n);

				assert_true(c < 0 || (c == 0 && prev_len < klen));
			}
			memcpy(prev, k, klen);
			prev_len = klen;
			rv = memtable_get(mt, k, klen, &v, &vlen);
			assert_true(rv == 0 || (rv == RKV_EDELETED && klen == 64));
		}
		assert_int_equal(seen, id);
	}
	/* An overwrite that does not fit fails too and keeps the old value. */
	{
		struct memtable_iter it;
		const void *v_before;
		const void *v_after;
		size_t len_before;
		size_t len_after;
		size_t klen;
		static uint8_t big[128 << 10];
		const void *first;

		memtable_iter_first(&it, mt);
		first = memtable_iter_key(&it, &klen);
		memcpy(key, first, klen);
		assert_int_equal(memtable_get(mt, key, klen, &v_before, &len_before), 0);
		assert_int_equal(memtable_put(mt, key, klen, big, sizeof(big)), RKV_EFULL);
		assert_int_equal(memtable_get(mt, key, klen, &v_after, &len_after), 0);
		assert_ptr_equal(v_after, v_before);
		assert_int_equal(len_after, len_before);
		assert_int_equal(memtable_used(mt), used_before);
	}
	memtable_destroy(mt);
}

static void test_reserved_write_always_fits(void **state)
{
	(void)state;
	rnd_state = 99;
	for (int round = 0; round < 20; round++) {
		struct memtable *mt;
		uint8_t key[200];
		uint8_t value[500];
		uint64_t id = 0;

		memset(value, 'v', sizeof(value));
		assert_int_equal(memtable_create(&mt, 16 << 10), 0);
		for (;;) {
			/* New key, or an overwrite / delete of an earlier one. */
			uint64_t target = id > 0 && rnd() % 4 == 0 ? rnd() % id : id;
			size_t klen = 8 + (size_t)(target % (sizeof(key) - 8));
			size_t vlen = (size_t)(rnd() % sizeof(value));
			size_t cost = memtable_entry_cost(klen, vlen);
			size_t used = memtable_used(mt);

			/* The caller's reservation check. */
			if (memtable_remaining(mt) < cost)
				break;
			fill_key(key, klen, target);
			if (rnd() % 5 == 0)
				assert_int_equal(memtable_delete(mt, key, klen), 0);
			else
				assert_int_equal(memtable_put(mt, key, klen, value, vlen), 0);
			assert_true(memtable_used(mt) - used <= cost);
			if (target == id)
				id++;
		}
		/* The bound is not absurdly loose: the table did fill up. */
		assert_true(memtable_remaining(mt) < memtable_entry_cost(200, 500));
		assert_true(id > 10);
		memtable_destroy(mt);
	}
	assert_int_equal(memtable_entry_cost((size_t)UINT32_MAX + 1, 0), SIZE_MAX);
}

/*
 * A destroyed memtable's arena serves the next one of the same size (its
 * pages stay mapped: no page faults on the write path), and the new table
 * starts empty: nothing of the old one shows through.
 */
static void test_arena_reused_empty(void **state)
{
	struct memtable *mt;
	const void *first, *again;
	size_t len;

	(void)state;
	assert_int_equal(memtable_create(&mt, 1 << 18), 0);
	put_str(mt, "old", "value-1");
	put_str(mt, "older", "value-2");
	assert_int_equal(memtable_get(mt, "old", 3, &first, &len), 0);
	memtable_destroy(mt);
	assert_int_equal(memtable_create(&mt, 1 << 18), 0);
	/* The old bytes are still there: the pages were kept, not a fresh
	 * (zeroed) mapping made. */
	assert_memory_equal(first, "value-1", 7);
	assert_int_equal(memtable_count(mt), 0);
	assert_int_equal(memtable_used(mt), 0);
	assert_int_equal(memtable_remaining(mt), 1 << 18);
	assert_int_equal(memtable_get(mt, "old", 3, &again, &len), RKV_ENOTFOUND);
	put_str(mt, "new", "value-1");
	assert_int_equal(memtable_get(mt, "new", 3, &again, &len), 0);
	assert_ptr_equal(again, first); /* the same mapping, from its end */
	assert_int_equal(memtable_get(mt, "older", 5, &again, &len), RKV_ENOTFOUND);
	memtable_destroy(mt);
}

static void test_deterministic_shape(void **state)
{
	struct memtable *a;
	struct memtable *b;
	char key[16];

	(void)state;
	assert_int_equal(memtable_create(&a, 1 << 20), 0);
	assert_int_equal(memtable_create(&b, 1 << 20), 0);
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "%d", i * 7919 % 5003);
		put_str(a, key, "v");
		put_str(b, key, "v");
	}
	/* Same inserts, same heights, same arena bytes. */
	assert_int_equal(memtable_used(a), memtable_used(b));
	memtable_destroy(a);
	memtable_destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_overwrite),
		cmocka_unit_test(test_tombstone),
		cmocka_unit_test(test_seek),
		cmocka_unit_test(test_random_against_model),
		cmocka_unit_test(test_fill_until_full),
		cmocka_unit_test(test_reserved_write_always_fits),
		cmocka_unit_test(test_deterministic_shape),
		cmocka_unit_test(test_arena_reused_empty),
		cmocka_unit_test(test_index_grows),
		cmocka_unit_test(test_index_sized),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
