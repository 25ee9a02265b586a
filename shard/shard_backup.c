/*
 * Online backups, the shard's part: see shard/shard_backup.h.
 *
 * Flushing for a backup uses the path a full memtable takes (apply's
 * make_room): seal the active memtable when no immutable one is being
 * flushed. Sealing between two applied entries is what apply itself does;
 * an entry waiting at the head of the apply queue re-settles its current
 * value when the memtables changed (the generation moves), so sealing from
 * outside apply's call is as safe as from inside it.
 */
#include "shard/shard_backup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errors.h"
#include "shard/shard_internal.h"

int shard_backup_flush(struct shard *s, uint64_t target)
{
	struct lsm_mem *fresh;

	if (!s->replicated)
		return RKV_EINVAL;
	if (s->manifest.flushed_index >= target)
		return 0;
	if (s->applied_index < target || s->imm || s->closing)
		return 1; /* apply catches up, or the running flush ends first */
	fresh = lsm_mem_new(s->memtable_size);
	if (!fresh)
		return -ENOMEM;
	shard_seal_memtable(s, fresh);
	return 1;
}

int shard_backup_read_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	size_t done = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rv = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rv = -errno;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		rv = RKV_ETOOLARGE;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rv = -ENOMEM;
		goto out;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		if (n <= 0) {
			rv = n < 0 ? -errno : -EIO;
			free(buf);
			goto out;
		}
		done += (size_t)n;
	}
	buf[done] = 0;
	*out = buf;
	*len = done;
out:
	close(fd);
	return rv;
}

#define MANIFEST_FILE_MAX (64u << 20)

int shard_backup_check_dir(const char *dir, uint64_t *flushed, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct manifest_version v;
	struct manifest_replay r = { 0 };
	uint8_t *image = NULL;
	size_t len = 0;
	int rv;

	snprintf(path, sizeof path, "%s/MANIFEST", dir);
	rv = shard_backup_read_file(path, MANIFEST_FILE_MAX, &image, &len);
	if (rv) {
		snprintf(err, errlen, "%s: %s", path, rkv_strerror(rv));
		return rv;
	}
	manifest_version_init(&v);
	rv = manifest_replay(&v, image, len, &r);
	if (rv == 0 && (r.torn || r.valid_len != len))
		rv = RKV_ECORRUPT;
	if (rv) {
		snprintf(err, errlen, "%s: %s at offset %zu", path,
			 r.reason ? r.reason : rkv_strerror(rv), r.torn ? r.valid_len : r.offset);
		goto out;
	}
	for (unsigned l = 0; l < MANIFEST_LEVELS && rv == 0; l++) {
		for (size_t i = 0; i < v.levels[l].count && rv == 0; i++) {
			const struct manifest_file *mf = &v.levels[l].files[i];
			struct sstable_meta meta;
			int fd;

			snprintf(path, sizeof path, "%s/%06" PRIu64 ".sst", dir, mf->number);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				snprintf(err, errlen, "%s: named by the manifest: %s", path,
					 strerror(errno));
				rv = RKV_ECORRUPT;
				break;
			}
			rv = lsm_table_check(fd, path, mf, &meta, err, errlen);
			if (rv == 0)
				sstable_meta_free(&meta);
			else if (rv != -ENOMEM)
				rv = RKV_ECORRUPT;
			close(fd);
		}
	}
	if (rv == 0)
		*flushed = v.flushed_index;
out:
	manifest_version_destroy(&v);
	free(image);
	return rv;
}
