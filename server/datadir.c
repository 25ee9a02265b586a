/* Data directory lock and cluster file; see server/datadir.h. */
#include "server/datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/durable_file.h"

static int mkdir_p(const char *dir)
{
	char path[4096];
	size_t i, len = strlen(dir);

	if (len >= sizeof path)
		return -ENAMETOOLONG;
	memcpy(path, dir, len + 1);
	for (i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			return -errno;
		path[i] = i == len ? '\0' : '/';
	}
	return 0;
}

int datadir_lock(const char *dir, char *err, size_t errlen)
{
	char path[4200];
	char pid[32];
	int fd, rv;

	rv = mkdir_p(dir);
	if (rv) {
		snprintf(err, errlen, "cannot create data directory %s: %s", dir, strerror(-rv));
		return rv;
	}
	snprintf(path, sizeof path, "%s/LOCK", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		rv = -errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return rv;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		ssize_t n = pread(fd, pid, sizeof pid - 1, 0);

		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		snprintf(err, errlen,
			 "data directory %s is in use by another ringkvd (pid %s)",
			 dir, pid[0] ? pid : "unknown");
		close(fd);
		return -EBUSY;
	}
	snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, strlen(pid), 0) < 0) {
		/* The pid is informational; the flock is what protects. */
	}
	return fd;
}

static int write_cluster_file(const char *dir, unsigned shards, char *err, size_t errlen)
{
	char text[64];
	size_t len = (size_t)snprintf(text, sizeof text, "ringkv-cluster 1\nshards %u\n",
				      shards);
	int rv = durable_file_replace(dir, "CLUSTER", text, len);

	if (rv)
		snprintf(err, errlen, "cannot write %s/CLUSTER: %s", dir, strerror(-rv));
	return rv;
}

int datadir_shards(const char *dir, unsigned wanted, unsigned *shards,
		   char *err, size_t errlen)
{
	char path[4200], text[128];
	unsigned version, n;
	ssize_t len;
	int fd;

	snprintf(path, sizeof path, "%s/CLUSTER", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
			return -errno;
		}
		if (write_cluster_file(dir, wanted, err, errlen))
			return -EIO;
		*shards = wanted;
		return 0;
	}
	len = read(fd, text, sizeof text - 1);
	close(fd);
	if (len < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -EIO;
	}
	text[len] = '\0';
	if (sscanf(text, "ringkv-cluster %u\nshards %u", &version, &n) != 2 ||
	    version != 1 || n == 0 || n > 16384) {
		snprintf(err, errlen, "%s is not a ringkv cluster file (version 1)", path);
		return -EINVAL;
	}
	*shards = n;
	return 0;
}
