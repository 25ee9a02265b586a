/*
 * The users file and password hashing; see server/users.h for the format,
 * the table's lifetime and why the KDF is computed in slices.
 */
#include "server/users.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "core/strint.h"

#define HASH_SCHEME "pbkdf2-sha256"

const char *users_role_name(enum users_role role)
{
	switch (role) {
	case USERS_ROLE_READ:
		return "read";
	case USERS_ROLE_WRITE:
		return "write";
	case USERS_ROLE_ADMIN:
		return "admin";
	}
	return NULL;
}

int users_role_parse(const char *text, enum users_role *out)
{
	if (!strcmp(text, "read"))
		*out = USERS_ROLE_READ;
	else if (!strcmp(text, "write"))
		*out = USERS_ROLE_WRITE;
	else if (!strcmp(text, "admin"))
		*out = USERS_ROLE_ADMIN;
	else
		return -EINVAL;
	return 0;
}

bool users_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > USERS_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!isalnum(c) && c != '_' && c != '.' && c != '@' && c != '-')
			return false;
	}
	return true;
}

/* Hex text[0, len) into out (max bytes): the byte count, or -1. */
static int unhex(const char *text, size_t len, uint8_t *out, size_t max)
{
	if (len % 2 || len / 2 > max)
		return -1;
	for (size_t i = 0; i < len; i += 2) {
		int hi = strint_hex_digit((uint8_t)text[i]);
		int lo = strint_hex_digit((uint8_t)text[i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (uint8_t)(hi * 16 + lo);
	}
	return (int)(len / 2);
}

/* A prefix byte written as itself in the file (else %XX). */
static bool prefix_plain(uint8_t c)
{
	return c > ' ' && c < 0x7f && c != '%' && c != '#';
}

static int parse_prefix(const char *text, struct users_entry *e)
{
	size_t n = 0;

	for (const char *p = text; *p; p++) {
		uint8_t c = (uint8_t)*p;

		if (n == USERS_PREFIX_MAX)
			return -1;
		if (c == '%') {
			int hi = strint_hex_digit((uint8_t)p[1]);
			int lo = hi < 0 ? -1 : strint_hex_digit((uint8_t)p[2]);

			if (hi < 0 || lo < 0)
				return -1;
			c = (uint8_t)(hi * 16 + lo);
			p += 2;
		}
		e->prefix[n++] = c;
	}
	if (n == 0)
		return -1;
	e->prefix_len = (uint32_t)n;
	e->has_prefix = true;
	return 0;
}

/* "pbkdf2-sha256:ITER:SALTHEX:HASHHEX" into e. NULL, or what is wrong. */
static const char *parse_hash(char *text, struct users_entry *e)
{
	char *iter, *salt, *hash, *end;
	unsigned long long n;
	int len;

	iter = strchr(text, ':');
	if (!iter)
		return "expected pbkdf2-sha256:ITERATIONS:SALT:HASH";
	*iter++ = '\0';
	if (strcmp(text, HASH_SCHEME) != 0)
		return "unknown hash scheme (expected pbkdf2-sha256)";
	salt = strchr(iter, ':');
	hash = salt ? strchr(salt + 1, ':') : NULL;
	if (!hash)
		return "expected pbkdf2-sha256:ITERATIONS:SALT:HASH";
	*salt++ = '\0';
	*hash++ = '\0';
	errno = 0;
	n = strtoull(iter, &end, 10);
	if (errno || end == iter || *end || !isdigit((unsigned char)*iter) ||
	    n < USERS_ITER_MIN || n > USERS_ITER_MAX)
		return "iterations must be a number from 1000 to 100000000";
	e->iterations = (uint32_t)n;
	len = unhex(salt, strlen(salt), e->salt, USERS_SALT_MAX);
	if (len < 8)
		return "salt must be 8 to 64 bytes in hex";
	e->salt_len = (uint32_t)len;
	if (strlen(hash) != 2 * USERS_HASH_LEN ||
	    unhex(hash, strlen(hash), e->hash, USERS_HASH_LEN) != USERS_HASH_LEN)
		return "hash must be 32 bytes in hex";
	return NULL;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct users_entry *)a)->name, ((const struct users_entry *)b)->name);
}

static int fail(char *err, size_t errlen, int rv, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rv, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rv;
}

/* One line (NUL-terminated, no newline) into e. NULL, or what is wrong. */
static const char *parse_line(char *line, struct users_entry *e)
{
	char *field[5];
	unsigned n = 0;
	char *save = NULL;

	for (char *tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (n == 4)
			return "too many fields (expected NAME ROLE KEYS HASH)";
		field[n++] = tok;
	}
	if (n != 4)
		return "expected NAME ROLE KEYS HASH";
	memset(e, 0, sizeof *e);
	if (!users_name_ok(field[0], strlen(field[0])))
		return "bad user name (1 to 64 of A-Z a-z 0-9 _ . @ -)";
	strcpy(e->name, field[0]);
	if (users_role_parse(field[1], &e->role) != 0)
		return "bad role (expected read, write or admin)";
	if (strcmp(field[2], "*") != 0 &&
	    (field[2][0] != '~' || parse_prefix(field[2] + 1, e) != 0))
		return "bad keys (expected * or ~PREFIX of 1 to 256 bytes, %XX for others)";
	return parse_hash(field[3], e);
}

int users_table_load(const char *path, struct users_table **out, char *err, size_t errlen)
{
	struct users_table *t;
	char line[USERS_LINE_MAX + 2];
	unsigned lineno = 0;
	FILE *f;
	int rv = 0;

	*out = NULL;
	f = fopen(path, "re");
	if (!f)
		return fail(err, errlen, -errno, "--users %s: %s", path, strerror(errno));
	t = calloc(1, sizeof *t);
	if (!t) {
		fclose(f);
		return fail(err, errlen, -ENOMEM, "--users %s: out of memory", path);
	}
	while (fgets(line, sizeof line, f)) {
		struct users_entry e;
		size_t len = strlen(line);
		const char *why;
		char *p = line;

		lineno++;
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(f)) {
			rv = fail(err, errlen, -EINVAL, "%s:%u: line longer than %d bytes", path,
				  lineno, USERS_LINE_MAX);
			goto out;
		}
		if (len && line[len - 1] == '\r')
			line[--len] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		why = parse_line(p, &e);
		if (why) {
			rv = fail(err, errlen, -EINVAL, "%s:%u: %s", path, lineno, why);
			goto out;
		}
		if (t->count == USERS_MAX) {
			rv = fail(err, errlen, -EINVAL, "%s:%u: more than %d users", path, lineno,
				  USERS_MAX);
			goto out;
		}
		if (users_find(t, e.name, strlen(e.name))) {
			rv = fail(err, errlen, -EINVAL, "%s:%u: user %s given twice", path, lineno,
				  e.name);
			goto out;
		}
		rv = users_table_put(t, &e);
		OPENSSL_cleanse(&e, sizeof e);
		if (rv) {
			fail(err, errlen, rv, "%s: out of memory", path);
			goto out;
		}
	}
	if (ferror(f))
		rv = fail(err, errlen, -EIO, "--users %s: read error", path);
out:
	fclose(f);
	OPENSSL_cleanse(line, sizeof line);
	if (rv) {
		users_table_free(t);
		return rv;
	}
	t->generation = 1;
	*out = t;
	return 0;
}

void users_table_free(struct users_table *t)
{
	if (!t)
		return;
	if (t->entries)
		OPENSSL_cleanse(t->entries, t->count * sizeof *t->entries);
	free(t->entries);
	free(t);
}

const struct users_entry *users_find(const struct users_table *t, const char *name, size_t len)
{
	struct users_entry key;

	if (len == 0 || len > USERS_NAME_MAX || t->count == 0)
		return NULL;
	memcpy(key.name, name, len);
	key.name[len] = '\0';
	if (strlen(key.name) != len)
		return NULL; /* a NUL inside */
	return bsearch(&key, t->entries, t->count, sizeof *t->entries, entry_cmp);
}

/* The first key after every key with e's prefix: the prefix with its
 * trailing 0xff bytes dropped and its last byte one up (none if all 0xff). */
static void set_prefix_end(struct users_entry *e)
{
	uint32_t n = e->has_prefix ? e->prefix_len : 0;

	while (n && e->prefix[n - 1] == 0xff)
		n--;
	memcpy(e->prefix_end, e->prefix, n);
	if (n)
		e->prefix_end[n - 1]++;
	e->prefix_end_len = n;
}

int users_table_put(struct users_table *t, const struct users_entry *e)
{
	struct users_entry *grown;
	size_t i;

	for (i = 0; i < t->count; i++) {
		int c = strcmp(t->entries[i].name, e->name);

		if (c == 0) {
			t->entries[i] = *e;
			set_prefix_end(&t->entries[i]);
			return 0;
		}
		if (c > 0)
			break;
	}
	grown = realloc(t->entries, (t->count + 1) * sizeof *grown);
	if (!grown)
		return -ENOMEM;
	t->entries = grown;
	memmove(&t->entries[i + 1], &t->entries[i], (t->count - i) * sizeof *grown);
	t->entries[i] = *e;
	set_prefix_end(&t->entries[i]);
	t->count++;
	return 0;
}

bool users_table_remove(struct users_table *t, const char *name)
{
	for (size_t i = 0; i < t->count; i++) {
		if (strcmp(t->entries[i].name, name) == 0) {
			memmove(&t->entries[i], &t->entries[i + 1],
				(t->count - i - 1) * sizeof *t->entries);
			t->count--;
			return true;
		}
	}
	return false;
}

static void write_hex(FILE *out, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		fprintf(out, "%02x", p[i]);
}

void users_table_write(FILE *out, const struct users_table *t)
{
	fprintf(out, "# ringkv users (ringkvd --users; managed with `ringkv user add|remove`)\n"
		     "# NAME ROLE KEYS HASH   (KEYS: * or ~PREFIX; ROLE: read, write or admin)\n");
	for (size_t i = 0; i < t->count; i++) {
		const struct users_entry *e = &t->entries[i];

		fprintf(out, "%s %s ", e->name, users_role_name(e->role));
		if (e->has_prefix) {
			fputc('~', out);
			for (uint32_t j = 0; j < e->prefix_len; j++) {
				if (prefix_plain(e->prefix[j]))
					fputc(e->prefix[j], out);
				else
					fprintf(out, "%%%02X", e->prefix[j]);
			}
		} else {
			fputc('*', out);
		}
		fprintf(out, " " HASH_SCHEME ":%u:", e->iterations);
		write_hex(out, e->salt, e->salt_len);
		fputc(':', out);
		write_hex(out, e->hash, USERS_HASH_LEN);
		fputc('\n', out);
	}
}

int users_pbkdf2(const uint8_t *pw, size_t len, const uint8_t *salt, size_t salt_len,
		 uint32_t iterations, uint8_t out[USERS_HASH_LEN])
{
	if (PKCS5_PBKDF2_HMAC((const char *)pw, (int)len, salt, (int)salt_len, (int)iterations,
			      EVP_sha256(), USERS_HASH_LEN, out) != 1)
		return -EIO;
	return 0;
}

int users_set_password(struct users_entry *e, const uint8_t *pw, size_t len, uint32_t iterations)
{
	if (len == 0 || len > USERS_PASSWORD_MAX || iterations < USERS_ITER_MIN ||
	    iterations > USERS_ITER_MAX)
		return -EINVAL;
	e->iterations = iterations;
	e->salt_len = USERS_SALT_DEFAULT;
	if (RAND_bytes(e->salt, (int)e->salt_len) != 1)
		return -EIO;
	return users_pbkdf2(pw, len, e->salt, e->salt_len, iterations, e->hash);
}

bool users_hash_equal(const uint8_t a[USERS_HASH_LEN], const uint8_t b[USERS_HASH_LEN])
{
	return CRYPTO_memcmp(a, b, USERS_HASH_LEN) == 0;
}

/* ---- the sliced KDF ---------------------------------------------------- */

struct evp_mac_ctx_st *users_kdf_mac_new(void)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;

	EVP_MAC_free(mac); /* the context keeps its own reference */
	return ctx;
}

void users_kdf_mac_free(struct evp_mac_ctx_st *mac)
{
	EVP_MAC_CTX_free(mac);
}

int users_kdf_start(struct users_kdf *k, struct evp_mac_ctx_st *mac, const uint8_t *pw,
		    size_t len, const uint8_t *salt, size_t salt_len, uint32_t iterations)
{
	static const uint8_t block_one[4] = { 0, 0, 0, 1 }; /* INT(1): one output block */
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	size_t outlen;

	memset(k, 0, sizeof *k);
	k->mac = mac;
	k->iterations = iterations;
	/* U_1 = PRF(P, S || INT(1)) */
	if (EVP_MAC_init(mac, pw, len, params) != 1 || EVP_MAC_update(mac, salt, salt_len) != 1 ||
	    EVP_MAC_update(mac, block_one, sizeof block_one) != 1 ||
	    EVP_MAC_final(mac, k->u, &outlen, sizeof k->u) != 1) {
		k->failed = true;
		return -EIO;
	}
	memcpy(k->t, k->u, sizeof k->t);
	k->done = 1;
	return 0;
}

bool users_kdf_step(struct users_kdf *k, uint32_t budget)
{
	size_t outlen;

	while (!k->failed && k->done < k->iterations && budget--) {
		/* U_i = PRF(P, U_{i-1}); a NULL key keeps the password's. */
		if (EVP_MAC_init(k->mac, NULL, 0, NULL) != 1 ||
		    EVP_MAC_update(k->mac, k->u, sizeof k->u) != 1 ||
		    EVP_MAC_final(k->mac, k->u, &outlen, sizeof k->u) != 1) {
			k->failed = true;
			break;
		}
		for (size_t j = 0; j < sizeof k->t; j++)
			k->t[j] ^= k->u[j];
		k->done++;
	}
	return k->failed || k->done >= k->iterations;
}

/* ---- the live table ---------------------------------------------------- */

int users_table_check_prefixes(const struct users_table *t, uint32_t max_key, const char *path,
			       char *err, size_t errlen)
{
	for (size_t i = 0; i < t->count; i++) {
		const struct users_entry *e = &t->entries[i];

		if (e->has_prefix && e->prefix_len > max_key)
			return fail(err, errlen, -EINVAL, "--users %s: user %s: its key prefix of "
				    "%u bytes is longer than --max-key (%u): no key could match it",
				    path, e->name, e->prefix_len, max_key);
	}
	return 0;
}

/* users_table_load, then users_table_check_prefixes. */
static int load_checked(const char *path, uint32_t max_key, struct users_table **out,
			char *err, size_t errlen)
{
	int rv = users_table_load(path, out, err, errlen);

	if (rv == 0 && (rv = users_table_check_prefixes(*out, max_key, path, err, errlen))) {
		users_table_free(*out);
		*out = NULL;
	}
	return rv;
}

int users_create(struct users *u, const char *path, uint32_t max_key, char *err, size_t errlen)
{
	struct users_table *t;
	int rv;

	memset(u, 0, sizeof *u);
	rv = load_checked(path, max_key, &t, err, errlen);
	if (rv)
		return rv;
	atomic_init(&t->refs, 1); /* the main thread's */
	atomic_init(&u->current, t);
	return 0;
}

int users_reload(struct users *u, const char *path, uint32_t max_key, char *err,
		 size_t errlen)
{
	struct users_table *t, *old;
	int rv;

	rv = load_checked(path, max_key, &t, err, errlen);
	if (rv)
		return rv;
	old = atomic_load_explicit(&u->current, memory_order_relaxed);
	t->generation = old->generation + 1;
	/* The main thread's and every reader's, counted before any can see it. */
	atomic_init(&t->refs, 1 + atomic_load(&u->readers));
	atomic_store_explicit(&old->newer, t, memory_order_release);
	atomic_store_explicit(&u->current, t, memory_order_release);
	users_table_unref(u, old);
	return 0;
}

void users_table_ref(const struct users_table *t)
{
	struct users_table *w = (struct users_table *)t; /* the count is not the table */

	atomic_fetch_add_explicit(&w->refs, 1, memory_order_relaxed);
}

void users_table_unref(struct users *u, const struct users_table *t)
{
	struct users_table *w = (struct users_table *)t;

	if (atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) != 1)
		return;
	w->dead_next = atomic_load_explicit(&u->dead, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&u->dead, &w->dead_next, w,
						      memory_order_release, memory_order_relaxed))
		;
}

const struct users_table *users_reader_attach(struct users *u)
{
	struct users_table *t = atomic_load_explicit(&u->current, memory_order_acquire);

	atomic_fetch_add(&u->readers, 1);
	users_table_ref(t);
	return t;
}

const struct users_table *users_advance(struct users *u, const struct users_table *held)
{
	const struct users_table *now = users_current(u);

	while (held != now) {
		const struct users_table *newer =
			atomic_load_explicit(&((struct users_table *)held)->newer,
					     memory_order_acquire);

		users_table_unref(u, held);
		held = newer;
	}
	return now;
}

void users_reader_detach(struct users *u, const struct users_table *held)
{
	users_table_unref(u, users_advance(u, held));
}

size_t users_collect(struct users *u)
{
	struct users_table *t = atomic_exchange_explicit(&u->dead, NULL, memory_order_acquire);
	size_t n = 0;

	while (t) {
		struct users_table *next = t->dead_next;

		users_table_free(t);
		t = next;
		n++;
	}
	return n;
}

void users_destroy(struct users *u)
{
	users_table_unref(u, atomic_load(&u->current));
	users_collect(u);
	memset(u, 0, sizeof *u);
}
