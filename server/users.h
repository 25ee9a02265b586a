/*
 * The users file (--users FILE): who may use the client ports, with which
 * role and on which keys. One user a line, fields split by blanks:
 *
 *   # NAME ROLE KEYS HASH
 *   alice write ~app1: pbkdf2-sha256:100000:SALTHEX:HASHHEX
 *   ops   admin *      pbkdf2-sha256:200000:SALTHEX:HASHHEX
 *
 * NAME: 1 to USERS_NAME_MAX bytes of [A-Za-z0-9_.@-]. ROLE: read (reads),
 * write (reads and writes) or admin (everything, admin commands too). KEYS:
 * `*` for every key, or `~PREFIX` for the keys starting with PREFIX (1 to
 * USERS_PREFIX_MAX bytes; a byte that is not printable ASCII, a blank, '%'
 * or '#' is written %XX). HASH: PBKDF2-HMAC-SHA256 of the password with its
 * iteration count and salt, kept per user so the cost can be raised for
 * new passwords without touching the others. Blank lines and lines starting
 * with '#' are comments.
 *
 * A table is immutable once loaded. SIGHUP loads a new table and swaps
 * the pointer `current`; the data path takes no lock. Lifetime: a table
 * counts its references. The main thread holds one on the current table;
 * each reader (a core, users_reader_attach) holds one on every table
 * published since it attached, until it moves past it (users_advance): a
 * reload publishes its table with 1 + readers references already counted,
 * so a reader never takes a reference on a table that could be freed under
 * it. A session (a connection, a password check) takes its own reference
 * (users_table_ref) on the table its reader holds, and drops it when it
 * closes or moves to a newer table. The last reference dropped puts the
 * table on a free list that the main thread empties (users_collect), so a
 * core never frees (and wipes) a whole table itself.
 *
 * The KDF runs in slices (struct users_kdf) so that a reactor verifying a
 * password never stalls for the whole hash: the PBKDF2 chain is computed
 * here iteration by iteration, the same value OpenSSL's PKCS5_PBKDF2_HMAC
 * gives (a unit test holds them equal).
 *
 * Everything here that reads or writes files blocks: start-up, the main
 * thread's SIGHUP and the `ringkv user` command only.
 */
#ifndef RINGKV_SERVER_USERS_H
#define RINGKV_SERVER_USERS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define USERS_NAME_MAX 64
#define USERS_PREFIX_MAX 256
#define USERS_SALT_MAX 64
#define USERS_SALT_DEFAULT 16
#define USERS_HASH_LEN 32            /* SHA-256 */
#define USERS_PASSWORD_MAX 512       /* longer passwords are refused */
#define USERS_ITER_MIN 1000
#define USERS_ITER_MAX 100000000u
#define USERS_ITER_DEFAULT 100000    /* tens of ms of one core */
#define USERS_MAX 100000             /* users in one file */
#define USERS_LINE_MAX 2048

enum users_role {
	USERS_ROLE_READ = 1,  /* read commands */
	USERS_ROLE_WRITE = 2, /* read and write commands */
	USERS_ROLE_ADMIN = 3, /* everything */
};

struct users_entry {
	char name[USERS_NAME_MAX + 1];
	enum users_role role;
	bool has_prefix;                   /* false: every key */
	uint32_t prefix_len;
	uint8_t prefix[USERS_PREFIX_MAX];
	uint32_t prefix_end_len;           /* 0: no key is past the prefix's keys */
	uint8_t prefix_end[USERS_PREFIX_MAX]; /* the first key after them
					    * (users_table_put sets it) */
	uint32_t iterations;
	uint32_t salt_len;
	uint8_t salt[USERS_SALT_MAX];
	uint8_t hash[USERS_HASH_LEN];
};

struct users_table {
	size_t count;
	struct users_entry *entries;       /* sorted by name */
	uint64_t generation;               /* 1 for the first table, +1 a reload */
	_Atomic uint32_t refs;             /* see "Lifetime" above (live tables only) */
	_Atomic(struct users_table *) newer; /* the table published after it */
	struct users_table *dead_next;     /* on the free list */
};

struct users {
	_Atomic(struct users_table *) current;
	_Atomic uint32_t readers;          /* users_reader_attach calls */
	_Atomic(struct users_table *) dead; /* unreferenced, for users_collect */
};

/* "read", "write", "admin"; NULL for anything else. */
const char *users_role_name(enum users_role role);
/* 0 and *out, or -EINVAL. */
int users_role_parse(const char *text, enum users_role *out);

/*
 * Parses a users file. 0 and a new table (users_table_free it), or a
 * negative errno with "PATH:LINE: reason" (or "PATH: reason") in `err`.
 * A missing file is an error; an empty one a table of no users.
 */
int users_table_load(const char *path, struct users_table **out, char *err, size_t errlen);
void users_table_free(struct users_table *t);

/* The user named name[0, len), or NULL. */
const struct users_entry *users_find(const struct users_table *t, const char *name, size_t len);

/* Writes `t` in the file's format (a header comment first). */
void users_table_write(FILE *out, const struct users_table *t);

/*
 * Adds (or replaces, same name) user `e` in *t, keeping it sorted: 0 or
 * -ENOMEM. For `ringkv user add`.
 */
int users_table_put(struct users_table *t, const struct users_entry *e);
/* Removes user `name`: true when it was there. */
bool users_table_remove(struct users_table *t, const char *name);

/* Whether `name` is a valid user name (see the format above). */
bool users_name_ok(const char *name, size_t len);

/*
 * Sets e->iterations, a fresh random salt and the hash of password
 * pw[0, len) (blocking, the whole KDF). 0, or -EINVAL (length or count out
 * of range) / -EIO (no randomness).
 */
int users_set_password(struct users_entry *e, const uint8_t *pw, size_t len, uint32_t iterations);

/* The full PBKDF2-HMAC-SHA256, blocking. 0 or -EIO. */
int users_pbkdf2(const uint8_t *pw, size_t len, const uint8_t *salt, size_t salt_len,
		 uint32_t iterations, uint8_t out[USERS_HASH_LEN]);

/* ---- the sliced KDF -------------------------------------------------- */

struct evp_mac_ctx_st;

/* One PBKDF2 computation in progress (a single 32-byte block). */
struct users_kdf {
	struct evp_mac_ctx_st *mac;  /* keyed with the password */
	uint8_t u[USERS_HASH_LEN];   /* U_i */
	uint8_t t[USERS_HASH_LEN];   /* U_1 xor ... xor U_i */
	uint32_t done;               /* i */
	uint32_t iterations;
	bool failed;                 /* a MAC call failed: matches nothing */
};

/* A MAC context for users_kdf_start, reused for one computation at a time. */
struct evp_mac_ctx_st *users_kdf_mac_new(void);
void users_kdf_mac_free(struct evp_mac_ctx_st *mac);

/* Starts the KDF (its first iteration). 0 or -EIO. */
int users_kdf_start(struct users_kdf *k, struct evp_mac_ctx_st *mac, const uint8_t *pw,
		    size_t len, const uint8_t *salt, size_t salt_len, uint32_t iterations);
/* Runs up to `budget` more iterations: true once all are done (the hash
 * is then k->t, unless k->failed: a MAC call failed and the password must
 * be taken as wrong). */
bool users_kdf_step(struct users_kdf *k, uint32_t budget);

/* Constant-time comparison of two hashes. */
bool users_hash_equal(const uint8_t a[USERS_HASH_LEN], const uint8_t b[USERS_HASH_LEN]);

/* ---- the live table -------------------------------------------------- */

/*
 * Whether every key prefix of `t` fits in `max_key` bytes (the node's
 * --max-key): 0, or -EINVAL with "PATH: user NAME: ..." in `err`. A longer
 * prefix matches no key the node takes, and its range bounds would not fit
 * a scan's key buffers: the node refuses such a file rather than serve it.
 */
int users_table_check_prefixes(const struct users_table *t, uint32_t max_key, const char *path,
			       char *err, size_t errlen);

/* Loads `path` as the first table (users_table_load, then the prefixes
 * checked against max_key). 0 or as those. */
int users_create(struct users *u, const char *path, uint32_t max_key, char *err, size_t errlen);
/* Loads `path` again and swaps it in; on failure (a bad line, a prefix
 * longer than max_key) the old table stays. */
int users_reload(struct users *u, const char *path, uint32_t max_key, char *err,
		 size_t errlen);
/* After every reader detached: drops the current table, frees them all. */
void users_destroy(struct users *u);
/* Frees the tables no one refers to any more (main thread): how many. */
size_t users_collect(struct users *u);

/* The current table (the main thread's, or a reader's look). */
static inline const struct users_table *users_current(struct users *u)
{
	return atomic_load_explicit(&u->current, memory_order_acquire);
}

/*
 * A reader (a core) starts holding the current table, which it returns.
 * Only before the first users_reload can race with it: cores attach while
 * they start, and the main thread reloads only once they all have.
 */
const struct users_table *users_reader_attach(struct users *u);
/* The reader holding `held` moves to the current table (dropping its
 * references on the tables in between), which it returns. */
const struct users_table *users_advance(struct users *u, const struct users_table *held);
/* The reader holding `held` lets go of every table. */
void users_reader_detach(struct users *u, const struct users_table *held);

/* A session's reference on `t`, which its reader holds. */
void users_table_ref(const struct users_table *t);
/* Drops a reference on `t` (any thread). */
void users_table_unref(struct users *u, const struct users_table *t);

#endif
