/*
 * `ringkv user add|remove`: edits a users file (server/users.h) offline.
 * The password is read from standard input (one line; with a terminal,
 * prompted for without echo), never taken from the command line. The file
 * is rewritten atomically (a temporary file of mode 0600 beside it,
 * fsynced, renamed over it, the directory fsynced), under an exclusive
 * lock on FILE.lock so two runs never lose each other's change. A running
 * ringkvd takes the change at its next SIGHUP.
 */
#ifndef RINGKV_TOOLS_USER_H
#define RINGKV_TOOLS_USER_H

#include <stdint.h>

struct user_args {
	const char *file;       /* --file */
	const char *name;
	const char *role;       /* add: read, write or admin */
	const char *prefix;     /* add: --prefix, or NULL for every key */
	uint32_t iterations;    /* add: --iterations, 0 = the default */
};

/* Exit statuses as the other ringkv commands: 0 done, 1 remove found no such
 * user, 2 usage (bad name, role, password), 3 the file could not be read or
 * written (the message names it). */
int user_add(const struct user_args *a);
int user_remove(const struct user_args *a);

/* The argument checks of both, before anything is read: 0 or 2 (message
 * printed). */
int user_check(const struct user_args *a, int add);

#endif
