/*
 * Counts the blocking file-system calls made by the code linked into a
 * test while `fs_watch_on` is set: the test links with
 * -Wl,--wrap=<each call> (tests/unit/shard/meson.build), so the shard's
 * and core's objects call the __wrap_ versions here, which count and go
 * on to the real call. Only the calls those objects make are wrapped
 * (nm -u of their libraries): open64, openat64, fsync, fdatasync, rename,
 * unlink, unlinkat, mkdir, rmdir, pread64, pwrite64, fstat64, fstatat64,
 * stat64, opendir, ftruncate64, fallocate64, read, close (write is left
 * out: the log writes to stderr).
 */
#ifndef RINGKV_TESTS_FS_WATCH_H
#define RINGKV_TESTS_FS_WATCH_H

#include <stdbool.h>

extern bool fs_watch_on;
extern unsigned fs_watch_calls;
extern const char *fs_watch_last; /* name of the last call counted */

#endif
