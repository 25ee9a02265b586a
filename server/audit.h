/*
 * The audit log: one line per failed authentication and per admin command
 * (allowed or refused), with who, from where, what and the outcome:
 *
 *   2026-12-07T10:01:02.345Z core=0 user=ops from=127.0.0.1:40112 proto=resp
 *     what="config|set" outcome=allowed
 *
 * (one line; user=- when none is known). With --audit-log FILE the lines
 * are appended to FILE through the core's ring: each core gathers them in
 * a buffer of AUDIT_BUFFER bytes and writes it out once per loop pass, one
 * write in flight at a time; a line that finds the buffer full is dropped
 * and counted, and the next written line says how many were lost. Without
 * it they go to the log (stderr) as "audit: ..." lines. The reactor never
 * waits for the file.
 */
#ifndef RINGKV_SERVER_AUDIT_H
#define RINGKV_SERVER_AUDIT_H

#include <stdbool.h>
#include <stddef.h>

#define AUDIT_BUFFER (64u << 10)

struct node_core;
struct conn;

struct node;

/*
 * SIGHUP (main thread): opens --audit-log FILE again, so that lines go to
 * a file of that name again after logrotate moved the old one away. The
 * new file takes the old descriptor's number (dup3), so a write a core
 * has queued lands in one file or the other, never in a closed or reused
 * descriptor. 0, or a negative errno with the reason in `err` (the old
 * file is still written).
 */
int audit_reopen(struct node *n, char *err, size_t errlen);

/* This core's buffers (--audit-log). 0 or -ENOMEM. */
int audit_core_init(struct node_core *c);
/* Writes out what is gathered (the core's hook). */
void audit_core_flush(struct node_core *c);
/* No write in flight (the core may finish). */
bool audit_core_idle(const struct node_core *c);
void audit_core_destroy(struct node_core *c);

/*
 * One audit line about `conn`: `user` (NULL: "-"), `what` (a command or
 * "auth"), `outcome` ("allowed", "denied", "failed: wrong password", ...).
 * Values are quoted with their control bytes escaped.
 */
void audit_line(struct conn *conn, const char *proto, const char *user, const char *what,
		const char *outcome);
/* The same for a peer known by its address (the admin port's). */
struct auth_addr;
void audit_line_from(struct node_core *c, const struct auth_addr *peer, const char *proto,
		     const char *user, const char *what, const char *outcome);

#endif
