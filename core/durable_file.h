/*
 * Blocking helpers for files that must survive a power loss, for start-up
 * and shutdown code that runs outside the reactor loop (never on it).
 */
#ifndef RINGKV_CORE_DURABLE_FILE_H
#define RINGKV_CORE_DURABLE_FILE_H

#include <stddef.h>

/* fsync of directory `dir`, so entries created or renamed in it last.
 * 0 or a negative errno. */
int durable_dir_sync(const char *dir);

/* The directory holding `path` ("." for a bare name, "/" at the root)
 * into out. */
void durable_parent_dir(const char *path, char *out, size_t len);

/* fsync of the directory holding `path` (after a rename to `path`). */
int durable_parent_sync(const char *path);

/*
 * Replaces `dir`/`name` with `len` bytes of `data` atomically: writes
 * `dir`/`name`.tmp, fdatasyncs it, renames it over `name`, fsyncs `dir`. A
 * crash leaves the old file or the new one, never a mix. 0 or a negative
 * errno (the temp file is removed).
 */
int durable_file_replace(const char *dir, const char *name, const void *data, size_t len);

#endif
