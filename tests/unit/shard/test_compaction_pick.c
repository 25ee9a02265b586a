/*
 * Tests for shard/compaction_pick.c: picking against hand-made versions and
 * against a brute-force model over random versions (level scores, the
 * overlapping inputs of the next level, tombstone dropping), the
 * round-robin cursor, and the k-way merge against a model that resolves
 * each key to its newest source.
 */
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
#include "shard/compaction_pick.h"

#define MiB (1ull << 20)

/* Adds a file covering ["k<lo>", "k<hi>"] (4-digit numbers). */
static void add(struct manifest_version *v, uint32_t level, unsigned lo, unsigned hi,
		uint64_t size)
{
	char s[16], l[16];
	struct manifest_file f = { .level = level, .number = v->next_file_number, .size = size,
				   .entry_count = 1 };
	struct manifest_edit e = { .has_next_file_number = true,
				   .next_file_number = v->next_file_number + 1,
				   .added = &f, .nadded = 1 };

	snprintf(s, sizeof(s), "k%04u", lo);
	snprintf(l, sizeof(l), "k%04u", hi);
	f.smallest = (const uint8_t *)s;
	f.smallest_len = 5;
	f.largest = (const uint8_t *)l;
	f.largest_len = 5;
	assert_int_equal(manifest_version_apply(v, &e, NULL), 0);
}

static bool overlaps(const struct manifest_file *f, const uint8_t *lo, size_t lo_len,
		     const uint8_t *hi, size_t hi_len)
{
	return key_order_cmp(f->largest, f->largest_len, lo, lo_len) >= 0 &&
	       key_order_cmp(f->smallest, f->smallest_len, hi, hi_len) <= 0;
}

/* Checks a pick against brute force over the version. */
static void check_pick(const struct manifest_version *v, const struct compaction_options *opt,
		       const struct compaction *c)
{
	const struct manifest_level *out = &v->levels[c->output_level];
	bool deeper = false;

	assert_int_equal(c->output_level, c->level + 1);
	assert_true(c->score >= 1.0);
	/* No level scores higher than the one picked. */
	if (v->levels[0].count != 0)
		assert_true((double)v->levels[0].count / opt->l0_trigger <= c->score);
	for (unsigned l = 1; l + 1 < MANIFEST_LEVELS; l++)
		if (v->levels[l].count != 0)
			assert_true((double)v->levels[l].bytes /
					    (double)compaction_level_target(opt, l) <= c->score);
	if (c->level == 0)
		assert_int_equal(c->inputs[0].count, v->levels[0].count);
	else
		assert_int_equal(c->inputs[0].count, 1);
	/* inputs[1] is exactly the output-level files overlapping the level-n
	 * input's range (the range picked before widening by them). */
	const struct manifest_level *in = &v->levels[c->level];
	const uint8_t *lo = NULL, *hi = NULL;
	size_t lo_len = 0, hi_len = 0;
	for (size_t i = c->inputs[0].first; i < c->inputs[0].first + c->inputs[0].count; i++) {
		const struct manifest_file *f = &in->files[i];

		if (lo == NULL || key_order_cmp(f->smallest, f->smallest_len, lo, lo_len) < 0) {
			lo = f->smallest;
			lo_len = f->smallest_len;
		}
		if (hi == NULL || key_order_cmp(f->largest, f->largest_len, hi, hi_len) > 0) {
			hi = f->largest;
			hi_len = f->largest_len;
		}
	}
	for (size_t i = 0; i < out->count; i++) {
		bool in_range = i >= c->inputs[1].first && i < c->inputs[1].first + c->inputs[1].count;

		assert_int_equal(in_range, overlaps(&out->files[i], lo, lo_len, hi, hi_len));
	}
	/* Range covers every input; tombstones droppable iff nothing deeper overlaps it. */
	for (int k = 0; k < 2; k++) {
		const struct manifest_level *lv = &v->levels[c->inputs[k].level];

		for (size_t i = c->inputs[k].first; i < c->inputs[k].first + c->inputs[k].count; i++) {
			assert_true(key_order_cmp(lv->files[i].smallest, lv->files[i].smallest_len,
						    c->smallest, c->smallest_len) >= 0);
			assert_true(key_order_cmp(lv->files[i].largest, lv->files[i].largest_len,
						    c->largest, c->largest_len) <= 0);
		}
	}
	for (unsigned l = c->output_level + 1; l < MANIFEST_LEVELS; l++)
		for (size_t i = 0; i < v->levels[l].count; i++)
			deeper |= overlaps(&v->levels[l].files[i], c->smallest, c->smallest_len,
					   c->largest, c->largest_len);
	assert_int_equal(c->drop_tombstones, !deeper);
	assert_int_equal(c->trivial_move, c->inputs[0].count == 1 && c->inputs[1].count == 0);
}

static void test_targets(void **state)
{
	struct compaction_options opt;

	(void)state;
	compaction_options_default(&opt);
	assert_int_equal(compaction_level_target(&opt, 1), 80 * MiB);
	assert_int_equal(compaction_level_target(&opt, 2), 800 * MiB);
	assert_int_equal(compaction_level_target(&opt, 3), 8000 * MiB);
	opt.base_bytes = UINT64_MAX / 20;
	assert_true(compaction_level_target(&opt, 6) == UINT64_MAX);
}

static void test_l0_trigger(void **state)
{
	struct compaction_options opt;
	struct manifest_version v;
	struct compaction c;

	(void)state;
	compaction_options_default(&opt);
	manifest_version_init(&v);
	assert_false(compaction_pick(&v, &opt, NULL, &c));
	add(&v, 1, 0, 99, MiB);
	add(&v, 1, 100, 199, MiB);
	add(&v, 1, 300, 399, MiB);
	add(&v, 1, 500, 599, MiB);
	add(&v, 3, 150, 160, MiB);
	for (unsigned i = 0; i < 3; i++)
		add(&v, 0, 120 + i, 320 + i, MiB);
	assert_false(compaction_pick(&v, &opt, NULL, &c)); /* 3 of 4 files */
	add(&v, 0, 150, 250, MiB);
	assert_true(compaction_pick(&v, &opt, NULL, &c));
	check_pick(&v, &opt, &c);
	assert_int_equal(c.level, 0);
	assert_int_equal(c.inputs[0].count, 4);
	assert_int_equal(c.inputs[1].first, 1); /* k0100-k0199 and k0300-k0399 */
	assert_int_equal(c.inputs[1].count, 2);
	assert_memory_equal(c.smallest, "k0100", 5);
	assert_memory_equal(c.largest, "k0399", 5);
	assert_false(c.drop_tombstones); /* L3 holds k0150-k0160 */
	assert_false(c.trivial_move);
	manifest_version_destroy(&v);
}

static void test_level_round_robin(void **state)
{
	struct compaction_options opt;
	struct compaction_cursor cur;
	struct manifest_version v;
	struct compaction c;

	(void)state;
	compaction_options_default(&opt);
	opt.base_bytes = MiB; /* L1 target 10 MiB */
	manifest_version_init(&v);
	for (unsigned i = 0; i < 4; i++)
		add(&v, 1, 100 * i, 100 * i + 50, 3 * MiB); /* 12 MiB: score 1.2 */
	add(&v, 2, 120, 180, MiB);
	compaction_cursor_init(&cur);
	for (unsigned round = 0; round < 9; round++) {
		assert_true(compaction_pick(&v, &opt, &cur, &c));
		check_pick(&v, &opt, &c);
		assert_int_equal(c.level, 1);
		assert_int_equal(c.inputs[0].first, round % 4);
		assert_int_equal(c.trivial_move, round % 4 != 1);
		assert_true(c.drop_tombstones);
		assert_int_equal(compaction_cursor_advance(&cur, &v, &c), 0);
	}
	compaction_cursor_destroy(&cur);
	/* Within target: nothing. */
	opt.base_bytes = 2 * MiB;
	assert_false(compaction_pick(&v, &opt, NULL, &c));
	manifest_version_destroy(&v);
}

static void test_random_versions(void **state)
{
	struct compaction_options opt;

	(void)state;
	compaction_options_default(&opt);
	opt.base_bytes = MiB;
	srand(11);
	for (int round = 0; round < 2000; round++) {
		struct manifest_version v;
		struct compaction c;
		bool any_over = false;

		manifest_version_init(&v);
		for (int i = rand() % 7; i > 0; i--) {
			unsigned lo = (unsigned)rand() % 9000;

			add(&v, 0, lo, lo + (unsigned)rand() % 1000, MiB);
		}
		for (uint32_t l = 1; l < MANIFEST_LEVELS; l++) {
			unsigned at = (unsigned)rand() % 500;
			uint64_t size = (uint64_t)(rand() % 8 + 1) * MiB * (l == 1 ? 1 : 10);

			for (int i = rand() % 5; i > 0 && at < 9000; i--) {
				unsigned len = (unsigned)rand() % 800;

				add(&v, l, at, at + len, size);
				at += len + 1 + (unsigned)rand() % 1500;
			}
		}
		if (v.levels[0].count >= opt.l0_trigger)
			any_over = true;
		for (unsigned l = 1; l + 1 < MANIFEST_LEVELS; l++)
			if (v.levels[l].bytes >= compaction_level_target(&opt, l))
				any_over = true;
		assert_int_equal(compaction_pick(&v, &opt, NULL, &c), any_over);
		if (any_over)
			check_pick(&v, &opt, &c);
		manifest_version_destroy(&v);
	}
}

/* --- merge --- */

#define UNIVERSE 200
#define MAXSRC 8

struct source {
	int n;
	int keys[UNIVERSE];
	bool tomb[UNIVERSE];
	int pos;
	char key_buf[16]; /* overwritten at every refill, like a block iterator's */
	char value_buf[32];
};

static void run_merge(int nsrc, bool drop, unsigned seed)
{
	struct source src[MAXSRC];
	uint64_t ages[MAXSRC];
	struct merge m;
	struct merge_entry e;
	size_t slot;
	int expect_next = 0;
	enum merge_result res;

	srand(seed);
	for (int s = 0; s < nsrc; s++) {
		src[s].n = 0;
		src[s].pos = 0;
		for (int k = 0; k < UNIVERSE; k++) {
			if (rand() % 3 == 0) {
				src[s].keys[src[s].n] = k;
				src[s].tomb[src[s].n++] = rand() % 4 == 0;
			}
		}
		/* Distinct ages in random order. */
		ages[s] = (uint64_t)s * 1000 + (uint64_t)(rand() % 1000);
	}
	for (int s = nsrc - 1; s > 0; s--) {
		int j = rand() % (s + 1);
		uint64_t t = ages[s];

		ages[s] = ages[j];
		ages[j] = t;
	}
	assert_int_equal(merge_init(&m, ages, (size_t)nsrc, drop), 0);
	while ((res = merge_next(&m, &e, &slot)) != MERGE_END) {
		if (res == MERGE_NEED) {
			struct source *so = &src[slot];

			if (so->pos == so->n) {
				merge_feed_end(&m, slot);
				continue;
			}
			int k = so->keys[so->pos];
			int kl = snprintf(so->key_buf, sizeof(so->key_buf), "key%03d", k);
			int vl = snprintf(so->value_buf, sizeof(so->value_buf), "src%zu-key%03d", slot, k);
			merge_feed(&m, slot, so->key_buf, (size_t)kl, so->value_buf, (size_t)vl,
				   so->tomb[so->pos] ? SSTABLE_TOMBSTONE : SSTABLE_VALUE);
			so->pos++;
			continue;
		}
		assert_int_equal(res, MERGE_ENTRY);
		/* Model: the next key present anywhere, from its newest source. */
		for (;; expect_next++) {
			int newest = -1, newest_idx = -1;

			assert_true(expect_next < UNIVERSE);
			for (int s = 0; s < nsrc; s++) {
				for (int i = 0; i < src[s].n; i++) {
					if (src[s].keys[i] == expect_next &&
					    (newest < 0 || ages[s] > ages[newest])) {
						newest = s;
						newest_idx = i;
					}
				}
			}
			if (newest < 0 || (drop && src[newest].tomb[newest_idx]))
				continue;
			char k[16], val[32];
			int kl = snprintf(k, sizeof(k), "key%03d", expect_next);
			int vl = snprintf(val, sizeof(val), "src%d-key%03d", newest, expect_next);

			assert_int_equal(e.key_len, (size_t)kl);
			assert_memory_equal(e.key, k, (size_t)kl);
			assert_int_equal(e.slot, (size_t)newest);
			if (src[newest].tomb[newest_idx]) {
				assert_int_equal(e.kind, SSTABLE_TOMBSTONE);
				assert_null(e.value);
			} else {
				assert_int_equal(e.kind, SSTABLE_VALUE);
				assert_int_equal(e.value_len, (size_t)vl);
				assert_memory_equal(e.value, val, (size_t)vl);
			}
			expect_next++;
			break;
		}
	}
	/* Nothing left in the model either. */
	for (; expect_next < UNIVERSE; expect_next++) {
		for (int s = 0; s < nsrc; s++) {
			for (int i = 0; i < src[s].n; i++) {
				if (src[s].keys[i] != expect_next)
					continue;
				assert_true(drop);
			}
		}
	}
	merge_destroy(&m);
}

static void test_merge_model(void **state)
{
	(void)state;
	for (unsigned seed = 0; seed < 300; seed++)
		run_merge(1 + (int)(seed % MAXSRC), seed % 2 == 0, seed);
}

static void test_merge_drop_stats(void **state)
{
	uint64_t ages[2] = { 2, 1 }; /* slot 0 newer */
	struct merge m;
	struct merge_entry e;
	size_t slot;

	(void)state;
	assert_int_equal(merge_init(&m, ages, 2, true), 0);
	assert_int_equal(merge_next(&m, &e, &slot), MERGE_NEED);
	assert_int_equal(slot, 0);
	merge_feed(&m, 0, "a", 1, NULL, 0, SSTABLE_TOMBSTONE);
	assert_int_equal(merge_next(&m, &e, &slot), MERGE_NEED);
	assert_int_equal(slot, 1);
	merge_feed(&m, 1, "a", 1, "old", 3, SSTABLE_VALUE);
	/* The tombstone wins, shadows "old", and is dropped; both need refills. */
	assert_int_equal(merge_next(&m, &e, &slot), MERGE_NEED);
	merge_feed(&m, slot, "b", 1, "x", 1, SSTABLE_VALUE);
	assert_int_equal(merge_next(&m, &e, &slot), MERGE_NEED);
	merge_feed_end(&m, slot);
	assert_int_equal(merge_next(&m, &e, &slot), MERGE_ENTRY);
	assert_memory_equal(e.key, "b", 1);
	assert_int_equal(m.dropped_tombstones, 1);
	assert_int_equal(m.dropped_shadowed, 1);
	assert_int_equal(merge_next(&m, &e, &slot), MERGE_NEED);
	merge_feed_end(&m, slot);
	assert_int_equal(merge_next(&m, &e, &slot), MERGE_END);
	merge_destroy(&m);
}

static void test_merge_out_of_order(void **state)
{
	uint64_t ages[1] = { 1 };
	struct merge m;
	struct merge_entry e;
	size_t slot;

	(void)state;
	assert_int_equal(merge_init(&m, ages, 1, false), 0);
	assert_int_equal(merge_next(&m, &e, &slot), MERGE_NEED);
	merge_feed(&m, 0, "b", 1, "1", 1, SSTABLE_VALUE);
	assert_int_equal(merge_next(&m, &e, &slot), MERGE_ENTRY);
	assert_int_equal(merge_next(&m, &e, &slot), MERGE_NEED);
	merge_feed(&m, 0, "a", 1, "2", 1, SSTABLE_VALUE);
	assert_int_equal(merge_next(&m, &e, &slot), MERGE_ERROR);
	assert_int_equal(m.error, RKV_ECORRUPT);
	merge_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_l0_trigger),
		cmocka_unit_test(test_level_round_robin),
		cmocka_unit_test(test_random_versions),
		cmocka_unit_test(test_merge_model),
		cmocka_unit_test(test_merge_drop_stats),
		cmocka_unit_test(test_merge_out_of_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
