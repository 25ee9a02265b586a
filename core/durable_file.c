/*
 * Blocking durable-file helpers: see durable_file.h.
 */
#include "core/durable_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int durable_dir_sync(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rv = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rv = -errno;
	close(fd);
	return rv;
}

void durable_parent_dir(const char *path, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(out, len, ".");
	else if (slash == path)
		snprintf(out, len, "/");
	else
		snprintf(out, len, "%.*s", (int)(slash - path), path);
}

int durable_parent_sync(const char *path)
{
	char parent[PATH_MAX];

	durable_parent_dir(path, parent, sizeof parent);
	return durable_dir_sync(parent);
}

int durable_file_replace(const char *dir, const char *name, const void *data, size_t len)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	int fd, rv = 0;

	if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path ||
	    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name) >= (int)sizeof tmp)
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	errno = 0;
	if (pwrite(fd, data, len, 0) != (ssize_t)len || fdatasync(fd) != 0)
		rv = errno ? -errno : -EIO;
	close(fd);
	if (rv == 0 && rename(tmp, path) != 0)
		rv = -errno;
	if (rv == 0)
		return durable_dir_sync(dir);
	unlink(tmp);
	return rv;
}
