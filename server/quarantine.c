/*
 * The start-up report of DIR/quarantine (quarantine.h). Quarantine grows
 * with every repair and is never emptied by ringkv, so the bound is the
 * operator's: each start says what it holds and how to remove it, loudly
 * once it outgrows the free space.
 */
#include "server/quarantine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "core/log.h"

/* nftw has no argument for its callback: the walk in progress. */
static uint64_t walk_bytes;

static int add_file(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (type == FTW_F)
		walk_bytes += (uint64_t)st->st_size;
	return 0;
}

int quarantine_usage(const char *data_dir, struct quarantine_usage *u)
{
	char path[PATH_MAX];
	struct statvfs vfs;
	struct dirent *de;
	struct stat st;
	time_t newest = 0;
	DIR *d;
	int n;

	memset(u, 0, sizeof *u);
	n = snprintf(path, sizeof path, "%s/quarantine", data_dir);
	if (n < 0 || (size_t)n >= sizeof path)
		return -ENAMETOOLONG;
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		u->entries++;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    (newest == 0 || st.st_mtime >= newest)) {
			newest = st.st_mtime;
			snprintf(u->newest, sizeof u->newest, "%s", de->d_name);
		}
	}
	closedir(d);
	walk_bytes = 0;
	if (nftw(path, add_file, 16, FTW_PHYS) != 0)
		return -errno;
	u->bytes = walk_bytes;
	if (statvfs(path, &vfs) == 0)
		u->free = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	return 0;
}

void quarantine_report(const char *data_dir)
{
	struct quarantine_usage u;
	int rv = quarantine_usage(data_dir, &u);

	if (rv != 0) {
		log_warn("%s/quarantine: cannot measure it: %s", data_dir, strerror(-rv));
		return;
	}
	if (u.entries == 0)
		return;
	log_warn("%s/quarantine holds %u entr%s, %.1f MiB (newest %s): files set aside by "
		 "repairs, never deleted by ringkvd; inspect them, then remove each with "
		 "rm -rf %s/quarantine/<name> (docs/cluster/repair-design.md, quarantine)",
		 data_dir, u.entries, u.entries == 1 ? "y" : "ies", (double)u.bytes / 1048576.0,
		 u.newest, data_dir);
	if (u.free > 0 && u.bytes > u.free)
		log_error("%s/quarantine takes %.1f MiB, more than the %.1f MiB left free on its "
			  "file system: remove what is no longer needed before the disk fills",
			  data_dir, (double)u.bytes / 1048576.0, (double)u.free / 1048576.0);
}
