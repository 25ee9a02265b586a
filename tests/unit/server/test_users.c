/*
 * Tests for server/users.c: the sliced KDF equals OpenSSL's PBKDF2 whatever
 * the slice size; a table written by users_table_write reads back the same;
 * each kind of bad line is refused with its line number; a reload that
 * fails keeps the old table, one that succeeds swaps in the new one, and the
 * old ones are freed once no reader or session holds them; a key
 * prefix longer than --max-key is refused at the start and at a reload.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/users.h"

static char path[64];

static void write_file(const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(path, sizeof path, "/tmp/ringkv-test-users-%d", (int)getpid());
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static void test_sliced_kdf_equals_pbkdf2(void **state)
{
	static const uint8_t salt[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	const uint8_t pw[] = "correct horse";
	uint8_t want[USERS_HASH_LEN];
	struct evp_mac_ctx_st *mac = users_kdf_mac_new();
	static const uint32_t budgets[] = { 1, 7, 1000, 5000 };

	(void)state;
	assert_non_null(mac);
	assert_int_equal(users_pbkdf2(pw, sizeof pw - 1, salt, sizeof salt, 3000, want), 0);
	for (size_t b = 0; b < sizeof budgets / sizeof budgets[0]; b++) {
		struct users_kdf k;
		unsigned steps = 0;

		assert_int_equal(users_kdf_start(&k, mac, pw, sizeof pw - 1, salt, sizeof salt,
						 3000), 0);
		while (!users_kdf_step(&k, budgets[b]))
			steps++;
		assert_false(k.failed);
		assert_true(users_hash_equal(k.t, want));
		assert_true(steps <= 3000 / budgets[b] + 1);
	}
	/* Another password gives another hash. */
	{
		struct users_kdf k;

		assert_int_equal(users_kdf_start(&k, mac, pw, sizeof pw - 2, salt, sizeof salt,
						 3000), 0);
		while (!users_kdf_step(&k, 1000))
			;
		assert_false(users_hash_equal(k.t, want));
	}
	users_kdf_mac_free(mac);
}

static void test_round_trip(void **state)
{
	struct users_table t = { 0 }, *back;
	struct users_entry e;
	char err[256];
	FILE *f;

	(void)state;
	memset(&e, 0, sizeof e);
	strcpy(e.name, "alice");
	e.role = USERS_ROLE_WRITE;
	e.has_prefix = true;
	memcpy(e.prefix, "app 1:%#\x01", 9);
	e.prefix_len = 9;
	assert_int_equal(users_set_password(&e, (const uint8_t *)"pw1", 3, 1000), 0);
	assert_int_equal(users_table_put(&t, &e), 0);
	memset(&e, 0, sizeof e);
	strcpy(e.name, "root");
	e.role = USERS_ROLE_ADMIN;
	assert_int_equal(users_set_password(&e, (const uint8_t *)"pw2", 3, 2000), 0);
	assert_int_equal(users_table_put(&t, &e), 0);
	f = fopen(path, "w");
	assert_non_null(f);
	users_table_write(f, &t);
	fclose(f);
	assert_int_equal(users_table_load(path, &back, err, sizeof err), 0);
	assert_int_equal(back->count, 2);
	for (size_t i = 0; i < 2; i++)
		assert_memory_equal(&back->entries[i], &t.entries[i], sizeof e);
	{
		const struct users_entry *a = users_find(back, "alice", 5);
		uint8_t h[USERS_HASH_LEN];

		assert_non_null(a);
		assert_int_equal(users_pbkdf2((const uint8_t *)"pw1", 3, a->salt, a->salt_len,
					      a->iterations, h), 0);
		assert_true(users_hash_equal(h, a->hash));
	}
	assert_null(users_find(back, "bob", 3));
	assert_null(users_find(back, "alic", 4));
	assert_true(users_table_remove(&t, "alice"));
	assert_false(users_table_remove(&t, "alice"));
	assert_int_equal(t.count, 1);
	users_table_free(back);
	free(t.entries);
}

static const char good_hash[] =
	"pbkdf2-sha256:1000:00112233445566778899aabbccddeeff:"
	"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

static void expect_refused(const char *line2, const char *why)
{
	char text[1024], err[256];
	struct users_table *t = NULL;

	snprintf(text, sizeof text, "# comment\n%s\n", line2);
	write_file(text);
	assert_int_equal(users_table_load(path, &t, err, sizeof err), -EINVAL);
	assert_null(t);
	if (!strstr(err, ":2: ") || !strstr(err, why))
		fail_msg("'%s': got '%s', want line 2 and '%s'", line2, err, why);
}

static void test_bad_lines(void **state)
{
	char line[1024];

	(void)state;
	expect_refused("alice", "expected NAME ROLE KEYS HASH");
	snprintf(line, sizeof line, "al/ice read * %s", good_hash);
	expect_refused(line, "bad user name");
	snprintf(line, sizeof line, "alice root * %s", good_hash);
	expect_refused(line, "bad role");
	snprintf(line, sizeof line, "alice read app %s", good_hash);
	expect_refused(line, "bad keys");
	snprintf(line, sizeof line, "alice read ~ %s", good_hash);
	expect_refused(line, "bad keys");
	snprintf(line, sizeof line, "alice read ~a%%zz %s", good_hash);
	expect_refused(line, "bad keys");
	expect_refused("alice read * md5:1000:00:00", "unknown hash scheme");
	expect_refused("alice read * pbkdf2-sha256:10:00112233445566778899:"
		       "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
		       "iterations");
	expect_refused("alice read * pbkdf2-sha256:1000:0011:"
		       "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
		       "salt");
	expect_refused("alice read * pbkdf2-sha256:1000:00112233445566778899:00ff",
		       "hash must be");
	snprintf(line, sizeof line, "alice read * %s extra", good_hash);
	expect_refused(line, "too many fields");
	snprintf(line, sizeof line, "alice read * %s\nalice write * %s", good_hash, good_hash);
	{
		char text[1100], err[256];
		struct users_table *t = NULL;

		snprintf(text, sizeof text, "%s\n", line);
		write_file(text);
		assert_int_equal(users_table_load(path, &t, err, sizeof err), -EINVAL);
		assert_non_null(strstr(err, ":2: user alice given twice"));
	}
}

static void test_reload(void **state)
{
	struct users u;
	char text[1024], err[256];
	const struct users_table *first;

	(void)state;
	snprintf(text, sizeof text, "alice read * %s\n", good_hash);
	write_file(text);
	assert_int_equal(users_create(&u, path, 1024, err, sizeof err), 0);
	first = users_current(&u);
	assert_int_equal(first->count, 1);
	write_file("garbage\n");
	assert_int_equal(users_reload(&u, path, 1024, err, sizeof err), -EINVAL);
	assert_ptr_equal(users_current(&u), first);
	snprintf(text, sizeof text, "alice read * %s\nbob admin ~b: %s\n", good_hash, good_hash);
	write_file(text);
	assert_int_equal(users_reload(&u, path, 1024, err, sizeof err), 0);
	assert_int_equal(users_current(&u)->count, 2);
	assert_int_equal(users_current(&u)->generation, 2);
	/* No reader holds the old table: it is freed at the next collect. */
	assert_int_equal(users_collect(&u), 1);
	unlink(path);
	assert_true(users_reload(&u, path, 1024, err, sizeof err) < 0);
	assert_int_equal(users_current(&u)->count, 2);
	users_destroy(&u);
}

/*
 * Tables are freed once no reader and no session holds them: a reader
 * holds every table published since it attached until it advances past
 * it, a session's reference holds its table after that.
 */
static void test_tables_freed_when_unused(void **state)
{
	struct users u;
	char text[1024], err[256];
	const struct users_table *held, *session;

	(void)state;
	snprintf(text, sizeof text, "alice read * %s\n", good_hash);
	write_file(text);
	assert_int_equal(users_create(&u, path, 1024, err, sizeof err), 0);
	held = users_reader_attach(&u);
	session = held;
	users_table_ref(session);
	assert_int_equal(users_reload(&u, path, 1024, err, sizeof err), 0);
	assert_int_equal(users_reload(&u, path, 1024, err, sizeof err), 0);
	/* The reader has not moved: nothing is freed, the first is readable. */
	assert_int_equal(users_collect(&u), 0);
	assert_non_null(users_find(held, "alice", 5));
	held = users_advance(&u, held);
	assert_ptr_equal(held, users_current(&u));
	assert_int_equal(held->generation, 3);
	/* The second is freed; the first only once its session lets go. */
	assert_int_equal(users_collect(&u), 1);
	assert_non_null(users_find(session, "alice", 5));
	users_table_unref(&u, session);
	assert_int_equal(users_collect(&u), 1);
	users_reader_detach(&u, held);
	assert_int_equal(users_collect(&u), 0); /* the main thread still holds the current */
	users_destroy(&u);
}

/* A key prefix longer than --max-key is refused at the start and at a
 * reload (naming the user), which keeps the old table. */
static void test_prefix_longer_than_max_key(void **state)
{
	struct users u;
	char text[1024], err[256];
	const struct users_table *first;

	(void)state;
	snprintf(text, sizeof text, "alice read ~abcdefgh %s\n", good_hash);
	write_file(text);
	assert_int_equal(users_create(&u, path, 7, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "user alice: its key prefix of 8 bytes is longer than "
				    "--max-key (7)"));
	assert_int_equal(users_create(&u, path, 8, err, sizeof err), 0);
	first = users_current(&u);
	snprintf(text, sizeof text, "alice read ~abcdefgh %s\nbob read ~123456789 %s\n",
		 good_hash, good_hash);
	write_file(text);
	assert_int_equal(users_reload(&u, path, 8, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "user bob: its key prefix of 9 bytes"));
	assert_ptr_equal(users_current(&u), first);
	users_destroy(&u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sliced_kdf_equals_pbkdf2),
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefix_longer_than_max_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tables_freed_when_unused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
