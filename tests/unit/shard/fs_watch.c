/* The wrappers of fs_watch.h. */
#include "fs_watch.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

bool fs_watch_on;
unsigned fs_watch_calls;
const char *fs_watch_last;

static void seen(const char *name)
{
	if (fs_watch_on) {
		fs_watch_calls++;
		fs_watch_last = name;
	}
}

/* The real calls, as the linker names them under --wrap. */
int __real_open64(const char *path, int flags, ...);
int __real_openat64(int dfd, const char *path, int flags, ...);
int __real_fsync(int fd);
int __real_fdatasync(int fd);
int __real_rename(const char *from, const char *to);
int __real_unlink(const char *path);
int __real_unlinkat(int dfd, const char *path, int flags);
int __real_mkdir(const char *path, mode_t mode);
int __real_rmdir(const char *path);
ssize_t __real_pread64(int fd, void *buf, size_t len, off_t off);
ssize_t __real_pwrite64(int fd, const void *buf, size_t len, off_t off);
int __real_fstat64(int fd, struct stat *st);
int __real_fstatat64(int dfd, const char *path, struct stat *st, int flags);
int __real_stat64(const char *path, struct stat *st);
DIR *__real_opendir(const char *path);
int __real_ftruncate64(int fd, off_t len);
int __real_fallocate64(int fd, int mode, off_t off, off_t len);
ssize_t __real_read(int fd, void *buf, size_t len);
int __real_close(int fd);

int __wrap_open64(const char *path, int flags, ...);
int __wrap_openat64(int dfd, const char *path, int flags, ...);
int __wrap_fsync(int fd);
int __wrap_fdatasync(int fd);
int __wrap_rename(const char *from, const char *to);
int __wrap_unlink(const char *path);
int __wrap_unlinkat(int dfd, const char *path, int flags);
int __wrap_mkdir(const char *path, mode_t mode);
int __wrap_rmdir(const char *path);
ssize_t __wrap_pread64(int fd, void *buf, size_t len, off_t off);
ssize_t __wrap_pwrite64(int fd, const void *buf, size_t len, off_t off);
int __wrap_fstat64(int fd, struct stat *st);
int __wrap_fstatat64(int dfd, const char *path, struct stat *st, int flags);
int __wrap_stat64(const char *path, struct stat *st);
DIR *__wrap_opendir(const char *path);
int __wrap_ftruncate64(int fd, off_t len);
int __wrap_fallocate64(int fd, int mode, off_t off, off_t len);
ssize_t __wrap_read(int fd, void *buf, size_t len);
int __wrap_close(int fd);

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

int __wrap_open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	seen("open");
	return __real_open64(path, flags, mode);
}

int __wrap_openat64(int dfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	seen("openat");
	return __real_openat64(dfd, path, flags, mode);
}

int __wrap_fsync(int fd) { seen("fsync"); return __real_fsync(fd); }
int __wrap_fdatasync(int fd) { seen("fdatasync"); return __real_fdatasync(fd); }
int __wrap_rename(const char *from, const char *to) { seen("rename"); return __real_rename(from, to); }
int __wrap_unlink(const char *path) { seen("unlink"); return __real_unlink(path); }
int __wrap_unlinkat(int dfd, const char *path, int flags)
{
	seen("unlinkat");
	return __real_unlinkat(dfd, path, flags);
}
int __wrap_mkdir(const char *path, mode_t mode) { seen("mkdir"); return __real_mkdir(path, mode); }
int __wrap_rmdir(const char *path) { seen("rmdir"); return __real_rmdir(path); }
ssize_t __wrap_pread64(int fd, void *buf, size_t len, off_t off)
{
	seen("pread");
	return __real_pread64(fd, buf, len, off);
}
ssize_t __wrap_pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	seen("pwrite");
	return __real_pwrite64(fd, buf, len, off);
}
int __wrap_fstat64(int fd, struct stat *st) { seen("fstat"); return __real_fstat64(fd, st); }
int __wrap_fstatat64(int dfd, const char *path, struct stat *st, int flags)
{
	seen("fstatat");
	return __real_fstatat64(dfd, path, st, flags);
}
int __wrap_stat64(const char *path, struct stat *st) { seen("stat"); return __real_stat64(path, st); }
DIR *__wrap_opendir(const char *path) { seen("opendir"); return __real_opendir(path); }
int __wrap_ftruncate64(int fd, off_t len) { seen("ftruncate"); return __real_ftruncate64(fd, len); }
int __wrap_fallocate64(int fd, int mode, off_t off, off_t len)
{
	seen("fallocate");
	return __real_fallocate64(fd, mode, off, len);
}
ssize_t __wrap_read(int fd, void *buf, size_t len) { seen("read"); return __real_read(fd, buf, len); }
int __wrap_close(int fd) { seen("close"); return __real_close(fd); }
