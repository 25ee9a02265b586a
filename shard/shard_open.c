/*
 * Opening and closing a shard: everything that runs before the reactor
 * loop starts or after it ends, with plain blocking calls. Start-up refuses
 * a directory that is not whole, naming the file and deleting nothing (no
 * MANIFEST beside tables, a table the manifest names missing or short, an
 * empty MANIFEST; docs/DAMAGED-DATADIR.md), reads
 * the manifest (rewriting it when it is mostly history), opens and checks
 * every table, replays the WAL records above the flushed index, continues
 * or creates the WAL segment (mapped and preallocated, see wal_map.h), and
 * deletes the segments wholly in tables. Closing waits for every operation
 * in flight, syncs the WAL once more and frees everything.
 */
#include "shard/shard.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "core/durable_file.h"
#include "core/errors.h"
#include "core/log.h"
#include "io/ring.h"
#include "shard/shard_internal.h"
#include "shard/wal_format.h"
#include "shard/wal_map.h"
#include "shard/wal_recover.h"

int shard_add_segment(struct shard *s, uint64_t first)
{
	if (s->nsegments == s->segments_cap) {
		size_t cap = s->segments_cap ? s->segments_cap * 2 : 16;
		uint64_t *grown = realloc(s->segments, cap * sizeof *grown);

		if (!grown)
			return -ENOMEM;
		s->segments = grown;
		s->segments_cap = cap;
	}
	s->segments[s->nsegments++] = first;
	return 0;
}

/* Start-up (blocking): creates the segment that starts at `first_index`. */
static int create_segment(struct shard *s, uint64_t first_index, char *err, size_t errlen)
{
	uint8_t header[WAL_SEGMENT_HEADER_SIZE];
	char path[PATH_MAX + 64];
	int rv;

	rv = wal_segment_path(path, sizeof path, s->dir, first_index);
	if (rv) {
		snprintf(err, errlen, "shard %u: WAL path too long", s->id);
		return rv;
	}
	if (s->wal_fd >= 0)
		close(s->wal_fd);
	s->wal_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (s->wal_fd < 0) {
		rv = -errno;
		snprintf(err, errlen, "%s: create: %s", path, strerror(errno));
		return rv;
	}
	wal_segment_header_encode(header);
	if (pwrite(s->wal_fd, header, sizeof header, 0) != (ssize_t)sizeof header ||
	    fdatasync(s->wal_fd) != 0) {
		rv = errno ? -errno : -EIO;
		snprintf(err, errlen, "%s: write header: %s", path, strerror(-rv));
		return rv;
	}
	rv = durable_dir_sync(s->dir);
	if (rv) {
		snprintf(err, errlen, "%s: fsync: %s", s->dir, strerror(-rv));
		return rv;
	}
	wal_map_close(&s->wal_map);
	rv = wal_map_open(&s->wal_map, s->wal_fd, s->wal_map_min);
	if (rv) {
		snprintf(err, errlen, "%s: mmap: %s", path, strerror(-rv));
		return rv;
	}
	s->wal_offset = WAL_SEGMENT_HEADER_SIZE;
	s->next_index = first_index;
	return shard_add_segment(s, first_index);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int list_segments(struct shard *s, char *err, size_t errlen)
{
	struct dirent *de;
	DIR *d = opendir(s->dir);

	if (!d) {
		snprintf(err, errlen, "%s: %s", s->dir, strerror(errno));
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		uint64_t first;

		if (wal_segment_name_parse(de->d_name, &first) == 0 && shard_add_segment(s, first)) {
			closedir(d);
			snprintf(err, errlen, "shard %u: out of memory", s->id);
			return -ENOMEM;
		}
	}
	closedir(d);
	if (s->nsegments > 1)
		qsort(s->segments, s->nsegments, sizeof *s->segments, cmp_u64);
	return 0;
}

/*
 * Start-up (blocking): what a shard directory without a MANIFEST holds. A
 * new shard's directory is empty (the manifest is the first file a shard
 * writes; the single-node mode's first WAL segment may be there, holding
 * at most a header). A table, or a WAL segment with records, means the
 * manifest that accounted for them is gone: which tables make up the shard
 * and up to which log index they hold the state. The shard is refused,
 * naming what depends on the manifest, and nothing is deleted.
 */
static int manifest_missing_check(struct shard *s, const char *path, char *err,
				  size_t errlen)
{
	size_t tables = 0, segments = 0;
	char example[300] = "";
	struct dirent *de;
	DIR *d = opendir(s->dir);

	if (!d) {
		snprintf(err, errlen, "%s: %s", s->dir, strerror(errno));
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		uint64_t first;
		struct stat st;
		size_t len = strlen(de->d_name);

		if (len > 4 && strcmp(de->d_name + len - 4, ".sst") == 0)
			tables++;
		else if (wal_segment_name_parse(de->d_name, &first) == 0 &&
			 (fstatat(s->dir_fd, de->d_name, &st, 0) != 0 ||
			  st.st_size > WAL_SEGMENT_HEADER_SIZE))
			segments++;
		else
			continue;
		if (!example[0])
			snprintf(example, sizeof example, ", %s among them", de->d_name);
	}
	closedir(d);
	if (tables == 0 && segments == 0)
		return 0;
	snprintf(err, errlen, "%s is missing, but shard %u's directory holds %zu table%s "
		 "(*.sst)%s%s that depend on it (it says which tables make up the shard and "
		 "up to which log index they hold its state); refusing to start, nothing was "
		 "deleted (docs/DAMAGED-DATADIR.md: restore it, or rebuild the replica from its "
		 "peers)", path, s->id, tables, tables == 1 ? "" : "s",
		 segments ? " and WAL segments" : "", example);
	return RKV_ECORRUPT;
}

/*
 * Start-up (blocking): puts `whole` (a manifest_version_snapshot) in place
 * of the manifest at `path` (temp file, fdatasync, rename, directory fsync),
 * so a manifest file always holds a whole version, and opens it for
 * appends. 0 or a negative errno, with `err` filled.
 */
static int manifest_write_whole(struct shard *s, const char *path,
				const struct sstable_buf *whole, char *err, size_t errlen)
{
	int rv = durable_file_replace(s->dir, "MANIFEST", whole->data, whole->len);

	if (rv) {
		snprintf(err, errlen, "%s: write: %s", path, strerror(-rv));
		return rv;
	}
	if (s->manifest_fd >= 0)
		close(s->manifest_fd);
	s->manifest_fd = open(path, O_RDWR | O_CLOEXEC);
	if (s->manifest_fd < 0) {
		rv = -errno;
		snprintf(err, errlen, "%s: open: %s", path, strerror(errno));
		return rv;
	}
	s->manifest_len = whole->len;
	return 0;
}

/* Start-up (blocking): opens or creates the manifest and replays it
 * (rewriting it whole when it is mostly history). */
static int manifest_open(struct shard *s, char *err, size_t errlen)
{
	char path[PATH_MAX + 32];
	struct sstable_buf whole = { 0 };
	struct manifest_replay r;
	struct stat st;
	uint8_t *buf;
	int rv;

	snprintf(path, sizeof path, "%s/MANIFEST", s->dir);
	manifest_version_init(&s->manifest);
	s->manifest_fd = open(path, O_RDWR | O_CLOEXEC);
	if (s->manifest_fd < 0 && errno == ENOENT) {
		/* A new shard: the empty version, written whole. */
		rv = manifest_missing_check(s, path, err, errlen);
		if (rv)
			return rv;
		rv = manifest_version_snapshot(&s->manifest, &whole);
		if (rv == 0)
			rv = manifest_write_whole(s, path, &whole, err, errlen);
		else
			snprintf(err, errlen, "shard %u: out of memory", s->id);
		sstable_buf_free(&whole);
		if (rv)
			return rv;
	}
	if (s->manifest_fd < 0) {
		rv = -errno;
		snprintf(err, errlen, "%s: open: %s", path, strerror(errno));
		return rv;
	}
	if (fstat(s->manifest_fd, &st) != 0) {
		rv = -errno;
		snprintf(err, errlen, "%s: stat: %s", path, strerror(errno));
		return rv;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	if (pread(s->manifest_fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		free(buf);
		snprintf(err, errlen, "%s: read: %s", path, strerror(errno ? errno : EIO));
		return -EIO;
	}
	rv = manifest_replay(&s->manifest, buf, (size_t)st.st_size, &r);
	free(buf);
	if (rv == RKV_ECORRUPT) {
		snprintf(err, errlen, "%s: corrupt record at offset %zu: %s; it says which "
			 "tables make up the shard and up to which log index: refusing to "
			 "start, nothing was deleted", path, r.offset,
			 r.reason ? r.reason : "bad data");
		return rv;
	}
	if (rv) {
		snprintf(err, errlen, "%s: %s", path, rkv_strerror(rv));
		return rv;
	}
	if (r.torn) {
		s->manifest_cut = true;
		log_warn("shard %u: %s: truncated a torn tail at offset %zu", s->id, path,
			 r.valid_len);
		if (ftruncate(s->manifest_fd, (off_t)r.valid_len) != 0 ||
		    fdatasync(s->manifest_fd) != 0) {
			rv = -errno;
			snprintf(err, errlen, "%s: truncate: %s", path, strerror(errno));
			return rv;
		}
	}
	s->manifest_len = r.valid_len;
	/* Mostly the history of edits long since undone (~100 bytes per flush
	 * or compaction)? Replace it with the version it adds up to, by the
	 * rule the running shard uses (shard_manifest.c). */
	if (manifest_version_snapshot(&s->manifest, &whole) != 0) {
		snprintf(err, errlen, "shard %u: out of memory", s->id);
		return -ENOMEM;
	}
	shard_manifest_rewrite_schedule(s, whole.len);
	if (s->manifest_len >= s->manifest_rewrite_at) {
		uint64_t edits_len = s->manifest_len;

		rv = manifest_write_whole(s, path, &whole, err, errlen);
		if (rv == 0)
			log_info("shard %u: rewrote the manifest: %" PRIu64 " bytes of edits -> %zu",
				 s->id, edits_len, whole.len);
	}
	sstable_buf_free(&whole);
	return rv;
}

/*
 * Start-up (blocking): preallocates wal_step of the segment being appended
 * to. A file system without fallocate cannot hold the WAL (appends are
 * stores into preallocated space, see wal_map.h): refused here with a clear
 * error rather than failing every write later. A full disk is not refused:
 * writes get RKV_EFULL until space returns.
 */
static int wal_preallocate_blocking(struct shard *s, char *err, size_t errlen)
{
	uint64_t size = wal_map_grow_target(&s->wal_map, s->wal_offset, s->wal_step,
					    WAL_MAP_RELEASE_CHUNK);
	struct statfs fs;

	if (fstatfs(s->wal_fd, &fs) == 0 && fs.f_type == BTRFS_SUPER_MAGIC)
		log_warn("shard %u: %s is on btrfs: a copy-on-write file system may "
			 "need space when a preallocated WAL page is first written, and "
			 "on a full disk that ends the process (SIGBUS); use ext4 or XFS",
			 s->id, s->dir);
	if (size <= s->wal_map.alloc)
		return 0;
	if (fallocate(s->wal_fd, 0, (off_t)s->wal_map.alloc,
		      (off_t)(size - s->wal_map.alloc)) == 0) {
		wal_map_allocated(&s->wal_map, size);
		return 0;
	}
	if (errno == EOPNOTSUPP || errno == ENOSYS) {
		snprintf(err, errlen, "%s: the file system does not support fallocate, "
			 "which the WAL needs (use ext4, XFS or tmpfs)", s->dir);
		return -EOPNOTSUPP;
	}
	log_warn("shard %u: preallocating the WAL: %s", s->id, strerror(errno));
	return 0;
}

/* Start-up (blocking): the WAL segments wholly below the retention point go. */
static void retain_blocking(struct shard *s)
{
	size_t drop = shard_wal_droppable(s);

	for (size_t i = 0; i < drop; i++) {
		char path[PATH_MAX + 64];

		if (wal_segment_path(path, sizeof path, s->dir, s->segments[i]) != 0 ||
		    unlink(path) != 0)
			log_warn("shard %u: could not delete WAL segment %" PRIu64 ": %s",
				 s->id, s->segments[i], strerror(errno));
	}
	shard_wal_forget(s, drop);
}

/*
 * Start-up (blocking), single-node mode: replays the WAL records above the
 * flushed index, continues or creates the segment being appended to, and
 * deletes the segments wholly in tables.
 */
static int wal_open(struct shard *s, const struct shard_config *cfg, char *err,
		    size_t errlen)
{
	struct wal_recovery rec;
	int rv;

	/* Replay into room for two memtables: the WAL may hold an immutable
	 * memtable that was not flushed yet besides the active one. */
	s->mem = lsm_mem_new(2 * cfg->memtable_size);
	if (!s->mem) {
		rv = -ENOMEM;
		snprintf(err, errlen, "shard %u: memtable of %" PRIu64 " bytes: %s",
			 cfg->id, cfg->memtable_size, rkv_strerror(rv));
		return rv;
	}
	s->applied_index = s->manifest.flushed_index;
	s->replaying = true;
	rv = wal_recover(s->dir, shard_replay_record, s, &rec, err, errlen);
	s->replaying = false;
	if (rv == RKV_EFULL) {
		snprintf(err, errlen,
			 "shard %u: the WAL in %s holds more than twice --memtable-size "
			 "(%" PRIu64 " bytes) can; start with a larger --memtable-size",
			 cfg->id, s->dir, cfg->memtable_size);
		return rv;
	}
	if (rv)
		return rv;
	if (rec.torn_bytes)
		log_warn("shard %u: truncated a torn WAL tail of %" PRIu64 " bytes in %s",
			 s->id, rec.torn_bytes, rec.last_segment);
	rv = list_segments(s, err, errlen);
	if (rv)
		return rv;
	if (rec.last_segment[0]) {
		uint64_t first;
		const char *base = strrchr(rec.last_segment, '/');

		rv = wal_segment_name_parse(base ? base + 1 : rec.last_segment, &first);
		if (rv) {
			snprintf(err, errlen, "%s: unexpected segment name", rec.last_segment);
			return rv;
		}
		s->wal_fd = open(rec.last_segment, O_RDWR | O_CLOEXEC);
		if (s->wal_fd < 0) {
			rv = -errno;
			snprintf(err, errlen, "%s: open: %s", rec.last_segment, strerror(errno));
			return rv;
		}
		rv = wal_map_open(&s->wal_map, s->wal_fd, s->wal_map_min);
		if (rv) {
			snprintf(err, errlen, "%s: mmap: %s", rec.last_segment, strerror(-rv));
			return rv;
		}
		s->wal_offset = rec.append_offset;
		s->next_index = rec.last_index ? rec.last_index + 1 : first;
	} else {
		rv = create_segment(s, s->manifest.flushed_index + 1, err, errlen);
		if (rv)
			return rv;
	}
	if (s->next_index <= s->manifest.flushed_index) {
		snprintf(err, errlen, "shard %u: the WAL ends at index %" PRIu64 " but the "
			 "manifest says index %" PRIu64 " was flushed", s->id,
			 s->next_index - 1, s->manifest.flushed_index);
		rv = RKV_ECORRUPT;
		return rv;
	}
	s->applied_index = s->next_index - 1;
	s->mem->last_index = s->applied_index;
	if (memtable_used(s->mem->mt) > s->memtable_size) {
		/* More than one memtable's worth: flush it once the loop runs. */
		struct lsm_mem *fresh = lsm_mem_new(cfg->memtable_size);

		if (!fresh) {
			rv = -ENOMEM;
			snprintf(err, errlen, "shard %u: out of memory", s->id);
			return rv;
		}
		rv = create_segment(s, s->next_index, err, errlen);
		if (rv) {
			lsm_mem_unref(fresh);
			return rv;
		}
		shard_seal_memtable(s, fresh);
	}
	rv = wal_preallocate_blocking(s, err, errlen);
	if (rv)
		return rv;
	retain_blocking(s);
	return 0;
}

/*
 * Start-up (blocking), replicated mode: the state is the tables; the log,
 * kept elsewhere, supplies the entries above the flushed index again. A
 * directory with WAL segments belongs to the single-node mode: refused
 * rather than ignoring what its WAL holds.
 */
static int replicated_open(struct shard *s, const struct shard_config *cfg, bool list,
			   char *err, size_t errlen)
{
	int rv = list ? list_segments(s, err, errlen) : 0;

	if (rv)
		return rv;
	if (s->nsegments > 0) {
		snprintf(err, errlen, "shard %u: %s holds WAL segments (wal-*.log) of a "
			 "single-node shard; a replicated shard has none", s->id, s->dir);
		return RKV_EINVAL;
	}
	s->mem = lsm_mem_new(cfg->memtable_size);
	if (!s->mem) {
		snprintf(err, errlen, "shard %u: memtable of %" PRIu64 " bytes: %s",
			 cfg->id, cfg->memtable_size, rkv_strerror(-ENOMEM));
		return -ENOMEM;
	}
	s->applied_index = s->manifest.flushed_index;
	s->next_index = s->applied_index + 1;
	s->mem->last_index = s->applied_index;
	return 0;
}

/* The shard's memory and settings from `cfg`, before any file is read. */
static int shard_alloc(struct shard **out, const struct shard_config *cfg,
		       struct io_ring *io, char *err, size_t errlen)
{
	struct block_cache_options copt = { 0 };
	struct shard *s;
	int rv;

	s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "shard %u: out of memory", cfg->id);
		return -ENOMEM;
	}
	*out = s;
	s->id = cfg->id;
	s->replicated = cfg->replicated;
	s->io = io;
	s->wal_fd = -1;
	s->switch_fd = -1;
	s->dir_fd = -1;
	s->manifest_fd = -1;
	shard_manifest_init(s);
	s->manifest_rewrite_min = cfg->manifest_rewrite_min ? cfg->manifest_rewrite_min :
				  SHARD_MANIFEST_REWRITE_MIN;
	/* Room for a file name after it in PATH_MAX buffers. */
	if (strlen(cfg->dir) >= PATH_MAX - 64) {
		snprintf(err, errlen, "shard %u: directory name too long", cfg->id);
		return -ENAMETOOLONG;
	}
	s->dir = strdup(cfg->dir);
	if (!s->dir) {
		snprintf(err, errlen, "shard %u: out of memory", cfg->id);
		return -ENOMEM;
	}
	s->memtable_size = cfg->memtable_size;
	s->wal_sync_off = cfg->wal_sync_off;
	/* A segment ends at a memtable switch, so it holds about one memtable
	 * of records; four, plus two of the largest records, is ample. */
	s->wal_map_min = 4 * cfg->memtable_size + 2 * (WAL_MAX_PAYLOAD + WAL_RECORD_HEADER_SIZE);
	s->wal_step = cfg->memtable_size / 4;
	if (s->wal_step < WAL_MAP_RELEASE_CHUNK)
		s->wal_step = WAL_MAP_RELEASE_CHUNK;
	if (s->wal_step > SHARD_WAL_STEP_MAX)
		s->wal_step = SHARD_WAL_STEP_MAX;
	s->table_size = cfg->table_size ? cfg->table_size : SHARD_DEFAULT_TABLE_SIZE;
	s->stall_limit = cfg->stall_limit ? cfg->stall_limit : SHARD_DEFAULT_STALL_LIMIT;
	sstable_options_default(&s->sst_opt);
	if (cfg->block_size)
		s->sst_opt.block_size = cfg->block_size;
	compaction_options_default(&s->compact_opt);
	if (cfg->level_base)
		s->compact_opt.base_bytes = cfg->level_base;
	compaction_cursor_init(&s->cursor);
	sstable_block_iter_init(&s->get_scratch);
	shard_ops_init(s);
	s->cache = cfg->cache;
	if (!s->cache) {
		copt.capacity = 8u << 20;
		rv = block_cache_create(&s->cache, &copt);
		if (rv) {
			snprintf(err, errlen, "shard %u: out of memory", cfg->id);
			return rv;
		}
		s->own_cache = true;
	}
	return 0;
}

/*
 * What follows the files (rv 0): the shard's state machine parts, the log
 * line, *out. Or (rv != 0) the error logged and the shard closed.
 */
static int shard_ready(struct shard **out, struct shard *s, const struct shard_config *cfg,
		       int rv, const char *err, size_t errlen)
{
	if (rv) {
		/* The whole text in the log too (a core's start-up error reaches
		 * ringkvd's own message cut to 255 bytes). */
		if (errlen > 0 && err[0])
			log_error("%s", err);
		shard_close(s);
		return rv;
	}
	s->next_file = s->manifest.next_file_number;
	shard_damage_open(s);
	s->pending = &s->batches[0];
	shard_apply_init(s, cfg);
	shard_drop_init(s);
	s->budget = cfg->mem_budget;
	shard_budget_sync(s); /* what a WAL replay put in the memtable */
	shard_deadlines_open(s);
	if (s->replicated)
		log_info("shard %u: replicated, %u tables, applied index %" PRIu64, s->id,
			 (unsigned)s->stats.table_files, s->applied_index);
	else
		log_info("shard %u: %u tables, %" PRIu64 " records replayed, %zu keys in "
			 "memory, next index %" PRIu64, s->id, (unsigned)s->stats.table_files,
			 s->stats.replayed, memtable_count(s->mem->mt), s->next_index);
	*out = s;
	return 0;
}

int shard_open(struct shard **out, const struct shard_config *cfg,
	       struct io_ring *io, char *err, size_t errlen)
{
	struct shard *s = NULL;
	int rv;

	rv = shard_alloc(&s, cfg, io, err, errlen);
	if (rv)
		goto err_after_alloc;
	if (mkdir(s->dir, 0755) != 0 && errno != EEXIST) {
		rv = -errno;
		snprintf(err, errlen, "%s: mkdir: %s", s->dir, strerror(errno));
		goto err_after_alloc;
	}
	s->dir_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dir_fd < 0) {
		rv = -errno;
		snprintf(err, errlen, "%s: open: %s", s->dir, strerror(errno));
		goto err_after_alloc;
	}
	rv = manifest_open(s, err, errlen);
	if (rv)
		goto err_after_alloc;
	rv = lsm_tables_open(s, err, errlen);
	if (rv)
		goto err_after_alloc;
	rv = cfg->replicated ? replicated_open(s, cfg, true, err, errlen) :
			       wal_open(s, cfg, err, errlen);
	/* A replica holds no manifest descriptor until its first edit: a
	 * node of 10,000 replicas would need 10,000 more. (Start-up may
	 * block; an install on the ring keeps its descriptor.) */
	if (rv == 0 && cfg->replicated)
		shard_manifest_fd_release(s);
err_after_alloc:
	return shard_ready(out, s, cfg, rv, err, errlen);
}

int shard_open_installed(struct shard **out, const struct shard_config *cfg,
			 struct io_ring *io, struct shard_open_parts *p, char *err,
			 size_t errlen)
{
	struct sstable_buf whole = { 0 };
	struct shard *s = NULL;
	int rv;

	if (!cfg->replicated) {
		snprintf(err, errlen, "shard %u: only a replicated shard installs", cfg->id);
		return RKV_EINVAL;
	}
	rv = shard_alloc(&s, cfg, io, err, errlen);
	if (rv)
		goto err_after_alloc;
	s->dir_fd = p->dir_fd;
	p->dir_fd = -1;
	s->manifest_fd = p->manifest_fd;
	p->manifest_fd = -1;
	s->manifest_len = p->manifest_len;
	s->manifest = p->manifest;
	manifest_version_init(&p->manifest);
	for (size_t i = 0; i < p->ntables; i++) {
		struct shard_open_table *t = &p->tables[i];

		if (lsm_tables_adopt(s, t->number, t->size, t->fd, &t->meta) != 0) {
			rv = -ENOMEM;
			snprintf(err, errlen, "shard %u: out of memory", cfg->id);
			goto err_after_alloc;
		}
		t->fd = -1;
		t->loaded = false;
		memset(&t->meta, 0, sizeof t->meta);
	}
	rv = lsm_version_install(s, NULL, 0);
	if (rv == 0)
		rv = manifest_version_snapshot(&s->manifest, &whole);
	if (rv) {
		snprintf(err, errlen, "shard %u: out of memory", cfg->id);
		goto err_after_alloc;
	}
	/* A long history in the image is rewritten by the running shard, at
	 * its next manifest edit (shard_manifest.c), not here. */
	shard_manifest_rewrite_schedule(s, whole.len);
	sstable_buf_free(&whole);
	/* The directory was made by the install and holds the tables and the
	 * MANIFEST only: nothing to list. */
	rv = replicated_open(s, cfg, false, err, errlen);
err_after_alloc:
	return shard_ready(out, s, cfg, rv, err, errlen);
}

unsigned shard_close_files_async(struct shard *s, struct io_op *op)
{
	int *fds[] = { &s->manifest_fd, &s->dir_fd, &s->wal_fd };
	struct io_uring_sqe *sqe;
	unsigned n = 0;

	for (size_t i = 0; i < s->ntables; i++) {
		if (s->tables[i]->fd < 0)
			continue;
		sqe = io_ring_get_sqe(s->io);
		io_uring_prep_close(sqe, s->tables[i]->fd);
		io_op_attach(sqe, op);
		s->tables[i]->fd = -1;
		n++;
	}
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
		if (*fds[i] < 0)
			continue;
		sqe = io_ring_get_sqe(s->io);
		io_uring_prep_close(sqe, *fds[i]);
		io_op_attach(sqe, op);
		*fds[i] = -1;
		n++;
	}
	return n;
}

static void wait_io(struct shard *s)
{
	for (int i = 0; s->io_inflight > 0 && i < 100000; i++) {
		io_ring_submit_wait(s->io, 100000);
		io_ring_dispatch(s->io);
	}
}

void shard_close(struct shard *s)
{
	struct shard_waiter *w;

	if (!s)
		return;
	s->closing = true;
	shard_budget_sync(s); /* gives its share back */
	wait_io(s);
	for (w = s->stall_head; w; w = w->next)
		if (w->prior_pin)
			block_cache_release(s->cache, w->prior_pin);
	if (s->sync_pin)
		block_cache_release(s->cache, s->sync_pin);
	shard_apply_destroy(s);
	shard_drop_destroy(s);
	shard_jobs_destroy(s);
	shard_manifest_destroy(s);
	shard_damage_close(s);
	shard_deadlines_close(s);
	if (s->wal_fd >= 0) {
		/* Every acknowledged write was already synced (unless the
		 * benchmark-only sync-off mode); this makes sure of it. */
		if (fdatasync(s->wal_fd) != 0)
			log_warn("shard %u: final fdatasync: %s", s->id, strerror(errno));
		close(s->wal_fd);
	}
	wal_map_close(&s->wal_map);
	lsm_mem_unref(s->mem);
	lsm_mem_unref(s->imm);
	lsm_tables_close_all(s);
	if (s->own_cache)
		block_cache_destroy(s->cache);
	if (s->manifest_fd >= 0)
		close(s->manifest_fd);
	if (s->dir_fd >= 0)
		close(s->dir_fd);
	manifest_version_destroy(&s->manifest);
	compaction_cursor_destroy(&s->cursor);
	sstable_block_iter_destroy(&s->get_scratch);
	free(s->segments);
	free(s->unfinished);
	free(s->scratch);
	free(s->batches[0].buf);
	free(s->batches[1].buf);
	free(s->dir);
	free(s->jobs); /* here, not in shard_jobs_destroy: with the shard */
	free(s);
}
