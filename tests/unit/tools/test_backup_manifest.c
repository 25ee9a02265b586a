/*
 * Tests of tools/backup_manifest.c: DIR/BACKUP round-trips, and every
 * damage or malformation is refused with the line that is wrong (the
 * text is untrusted: it comes off a disk, maybe another machine's).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shard/crc32c.h"
#include "tools/backup_manifest.h"

static struct backup_file files0[] = { { "000012.sst", 65536, 0x1a2b3c4d },
				       { "MANIFEST", 310, 0x01020304 } };
static struct backup_file files1[] = { { "MANIFEST", 40, 0xffffffff } };
static struct backup_shard shards[] = { { 1234, 3, files0, 2 }, { 0, 0, files1, 1 } };
static const struct backup_manifest sample = { 0x2b0bbc7039ccba27ull, 2, 1765000000, shards };

/* A body with a correct checksum line: the parser's other checks. */
static char *with_checksum(const char *body)
{
	size_t len = strlen(body);
	char *text = malloc(len + 32);

	snprintf(text, len + 32, "%schecksum %08x\n", body, crc32c(0, body, len));
	return text;
}

static void expect_refused(const char *text, const char *why)
{
	struct backup_manifest m;
	char err[256] = "";

	assert_int_not_equal(backup_manifest_parse(text, strlen(text), &m, err, sizeof err), 0);
	if (!strstr(err, why))
		fail_msg("refusal '%s' does not say '%s'", err, why);
	assert_null(m.shards);
}

static void test_round_trip(void **state)
{
	struct backup_manifest m;
	char err[256], *text;
	size_t len;

	(void)state;
	assert_int_equal(backup_manifest_format(&sample, &text, &len), 0);
	assert_int_equal(backup_manifest_parse(text, len, &m, err, sizeof err), 0);
	assert_int_equal(m.cluster_id, sample.cluster_id);
	assert_int_equal(m.shard_count, 2);
	assert_int_equal(m.created, sample.created);
	assert_int_equal(m.shards[0].index, 1234);
	assert_int_equal(m.shards[0].term, 3);
	assert_int_equal(m.shards[0].file_count, 2);
	assert_string_equal(m.shards[0].files[0].name, "000012.sst");
	assert_int_equal(m.shards[0].files[0].size, 65536);
	assert_int_equal(m.shards[0].files[0].crc32c, 0x1a2b3c4d);
	assert_string_equal(m.shards[1].files[0].name, "MANIFEST");
	assert_int_equal(m.shards[1].files[0].crc32c, 0xffffffff);
	backup_manifest_free(&m);
	free(text);
}

static void test_damage_refused(void **state)
{
	struct backup_manifest m;
	char err[256], *text;
	size_t len;

	(void)state;
	assert_int_equal(backup_manifest_format(&sample, &text, &len), 0);
	/* Every single flipped bit, anywhere. */
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			text[i] ^= (char)(1 << bit);
			if (backup_manifest_parse(text, len, &m, err, sizeof err) == 0)
				fail_msg("bit %d of byte %zu flipped: accepted", bit, i);
			text[i] ^= (char)(1 << bit);
		}
	}
	/* Cut anywhere. */
	for (size_t cut = 0; cut < len; cut++)
		if (backup_manifest_parse(text, cut, &m, err, sizeof err) == 0)
			fail_msg("cut at %zu: accepted", cut);
	free(text);
}

static void test_malformed_refused(void **state)
{
	static const struct {
		const char *body, *why;
	} cases[] = {
		{ "ringkv-backup 2\n", "not a ringkv backup" },
		{ "ringkv-backup 1\ncluster-id x\n", "cluster-id" },
		{ "ringkv-backup 1\ncluster-id 1\nshards 0\n", "shards" },
		{ "ringkv-backup 1\ncluster-id 1\nshards 1\ncreated 5\n"
		  "shard 1 index 1 term 1 files 1\nfile MANIFEST 1 crc32c 00000000\n",
		  "next shard" },
		{ "ringkv-backup 1\ncluster-id 1\nshards 1\ncreated 5\n"
		  "shard 0 index 1 term 1 files 1\nfile ../x.sst 1 crc32c 00000000\n",
		  "file line" },
		{ "ringkv-backup 1\ncluster-id 1\nshards 1\ncreated 5\n"
		  "shard 0 index 1 term 1 files 1\nfile /etc/passwd 1 crc32c 00000000\n",
		  "file line" },
		{ "ringkv-backup 1\ncluster-id 1\nshards 1\ncreated 5\n"
		  "shard 0 index 1 term 1 files 1\nfile 000001.sst 1 crc32c 00000000\n",
		  "MANIFEST" },
		{ "ringkv-backup 1\ncluster-id 1\nshards 1\ncreated 5\n"
		  "shard 0 index 1 term 1 files 0\n", "next shard" },
		{ "ringkv-backup 1\ncluster-id 1\nshards 1\ncreated 5\n"
		  "shard 0 index 1 term 1 files 1\nfile MANIFEST -1 crc32c 00000000\n",
		  "file line" },
		{ "ringkv-backup 1\ncluster-id 1\nshards 1\ncreated 5\n"
		  "shard 0 index 1 term 1 files 1\nfile MANIFEST 1 crc32c 00000000\nmore\n",
		  "after the last shard" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *text = with_checksum(cases[i].body);

		expect_refused(text, cases[i].why);
		free(text);
	}
	expect_refused("ringkv-backup 1\n", "no checksum line");
	expect_refused("", "newline");
}

static void test_names(void **state)
{
	(void)state;
	assert_true(backup_name_ok("MANIFEST"));
	assert_true(backup_name_ok("000001.sst"));
	assert_false(backup_name_ok(".sst"));
	assert_false(backup_name_ok("1.sst/"));
	assert_false(backup_name_ok("../1.sst"));
	assert_false(backup_name_ok("MANIFEST.tmp"));
	assert_false(backup_name_ok(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_damage_refused),
		cmocka_unit_test(test_malformed_refused),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
