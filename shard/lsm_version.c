/*
 * A shard's SSTables and versions: opening and checking the tables the
 * manifest names at start-up, building the current version (table pointers
 * per level) from the manifest after every change, and the reference counts
 * that keep a table open, and on disk, while a reader of an older version
 * still walks it. Invariant: a table's refs count the versions that list it
 * plus the block reads in flight on it; it is unlinked (it left the
 * manifest: no current version lists it) only when refs drop to 0.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/log.h"
#include "shard/shard_internal.h"
#include "shard/wal_recover.h"

struct lsm_mem *lsm_mem_new(size_t arena_bytes)
{
	return lsm_mem_new_sized(arena_bytes, 0);
}

struct lsm_mem *lsm_mem_new_sized(size_t arena_bytes, size_t expected_keys)
{
	struct lsm_mem *m = calloc(1, sizeof *m);

	if (!m)
		return NULL;
	if (memtable_create_sized(&m->mt, arena_bytes, expected_keys) != 0) {
		free(m);
		return NULL;
	}
	m->refs = 1;
	return m;
}

void lsm_mem_unref(struct lsm_mem *m)
{
	if (!m || --m->refs > 0)
		return;
	memtable_destroy(m->mt);
	free(m);
}

int lsm_path(char *buf, size_t len, const struct shard *s, uint64_t number)
{
	int n = snprintf(buf, len, "%s/%06" PRIu64 ".sst", s->dir, number);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

struct lsm_table *lsm_table_new(uint64_t number, uint64_t size, int fd,
				const struct sstable_meta *meta)
{
	struct lsm_table *t = calloc(1, sizeof *t);

	if (!t)
		return NULL;
	t->number = number;
	t->size = size;
	t->fd = fd;
	t->meta = *meta;
	return t;
}

void lsm_report_corrupt(struct shard *s, uint64_t number, uint64_t offset,
			const char *reason)
{
	char path[PATH_MAX + 32];
	bool first = shard_damage_mark(s, number);

	if (lsm_path(path, sizeof path, s, number))
		snprintf(path, sizeof path, "table %" PRIu64, number);
	log_write(first ? LOG_ERROR : LOG_DEBUG,
		  "shard %u: %s: corrupt block at offset %" PRIu64 ": %s", s->id, path, offset,
		  reason ? reason : "bad data");
}

static void forget_table(struct shard *s, struct lsm_table *t)
{
	for (size_t i = 0; i < s->ntables; i++) {
		if (s->tables[i] == t) {
			s->tables[i] = s->tables[--s->ntables];
			return;
		}
	}
}

void lsm_table_destroy(struct shard *s, struct lsm_table *t)
{
	struct io_uring_sqe *sqe;
	char path[PATH_MAX + 32];

	forget_table(s, t);
	if (s->cache)
		block_cache_erase_file(s->cache, lsm_cache_file(s, t->number));
	if (s->closing) {
		if (t->fd >= 0) /* else handed to the ring (shard_close_files_async) */
			close(t->fd);
	} else {
		sqe = shard_sqe(s, &s->misc_op);
		io_uring_prep_close(sqe, t->fd);
		if (t->obsolete && lsm_path(path, sizeof path, s, t->number) == 0) {
			const char *base = strrchr(path, '/') + 1;

			/* The name is copied by the kernel at submission. */
			sqe = shard_sqe(s, &s->misc_op);
			io_uring_prep_unlinkat(sqe, s->dir_fd, base, 0);
			io_uring_submit(&s->io->ring);
		}
	}
	sstable_meta_free(&t->meta);
	free(t);
}

void lsm_table_unref(struct shard *s, struct lsm_table *t)
{
	if (--t->refs == 0)
		lsm_table_destroy(s, t);
}

void lsm_version_unref(struct shard *s, struct lsm_version *v)
{
	if (!v || --v->refs > 0)
		return;
	for (unsigned l = 0; l < MANIFEST_LEVELS; l++) {
		for (size_t i = 0; i < v->count[l]; i++)
			lsm_table_unref(s, v->files[l][i]);
		free(v->files[l]);
	}
	free(v);
}

static struct lsm_table *find_table(struct shard *s, uint64_t number)
{
	for (size_t i = 0; i < s->ntables; i++)
		if (s->tables[i]->number == number)
			return s->tables[i];
	return NULL;
}

static int add_table(struct shard *s, struct lsm_table *t)
{
	if (s->ntables == s->tables_cap) {
		size_t cap = s->tables_cap ? s->tables_cap * 2 : 16;
		struct lsm_table **grown = realloc(s->tables, cap * sizeof *grown);

		if (!grown)
			return -ENOMEM;
		s->tables = grown;
		s->tables_cap = cap;
	}
	s->tables[s->ntables++] = t;
	return 0;
}

int lsm_version_install(struct shard *s, struct lsm_table **fresh, size_t nfresh)
{
	struct lsm_version *v = calloc(1, sizeof *v);
	struct lsm_version *old = s->version;
	unsigned l;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < nfresh; i++) {
		if (add_table(s, fresh[i]) != 0)
			goto err;
	}
	v->refs = 1;
	s->stats.table_files = 0;
	s->stats.table_bytes = 0;
	for (l = 0; l < MANIFEST_LEVELS; l++) {
		const struct manifest_level *ml = &s->manifest.levels[l];

		if (ml->count == 0)
			continue;
		v->files[l] = malloc(ml->count * sizeof *v->files[l]);
		if (!v->files[l])
			goto err;
		for (size_t i = 0; i < ml->count; i++) {
			struct lsm_table *t = find_table(s, ml->files[i].number);

			/* Every file of the manifest was opened or just written. */
			if (!t)
				panic("shard %u: table %" PRIu64 " of the manifest is not open",
				      s->id, ml->files[i].number);
			t->refs++;
			v->files[l][v->count[l]++] = t;
		}
		s->stats.table_files += ml->count;
		s->stats.table_bytes += ml->bytes;
	}
	s->version = v;
	/* Tables that left the manifest go when the last reader lets go. */
	if (old)
		lsm_version_unref(s, old);
	return 0;

err:
	for (l = 0; l < MANIFEST_LEVELS; l++)
		free(v->files[l]);
	free(v);
	return -ENOMEM;
}

static int read_exact(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

int lsm_table_check_size(const char *path, const struct manifest_file *mf, uint64_t size,
			 char *err, size_t errlen)
{
	if (size != mf->size) {
		snprintf(err, errlen, "%s: size %" PRIu64 ", the manifest says %" PRIu64, path,
			 size, mf->size);
		return RKV_ECORRUPT;
	}
	if (mf->size < SSTABLE_FOOTER_SIZE) {
		snprintf(err, errlen, "%s: too short for a footer", path);
		return RKV_ECORRUPT;
	}
	return 0;
}

int lsm_table_check_footer(const char *path, const struct manifest_file *mf,
			   const uint8_t *tail, struct sstable_footer *footer, char *err,
			   size_t errlen)
{
	const char *why = NULL;
	int rv = sstable_footer_decode(footer, tail, SSTABLE_FOOTER_SIZE, mf->size, &why);

	if (rv)
		snprintf(err, errlen, "%s: corrupt footer at offset %" PRIu64 ": %s", path,
			 mf->size - SSTABLE_FOOTER_SIZE, why);
	return rv;
}

int lsm_table_check_meta(const char *path, const struct manifest_file *mf,
			 const struct sstable_footer *footer, const uint8_t *buf,
			 struct sstable_meta *meta, char *err, size_t errlen)
{
	const char *why = NULL;
	int rv = sstable_meta_load(meta, footer, buf, footer->meta_len, &why);

	if (rv) {
		snprintf(err, errlen, "%s: corrupt metadata at offset %" PRIu64 ": %s", path,
			 footer->meta_offset, why ? why : rkv_strerror(rv));
		return rv;
	}
	if (meta->entry_count != mf->entry_count ||
	    key_order_cmp(meta->smallest, meta->smallest_len, mf->smallest, mf->smallest_len) ||
	    key_order_cmp(meta->largest, meta->largest_len, mf->largest, mf->largest_len)) {
		snprintf(err, errlen, "%s: footer (offset %" PRIu64 ") and manifest disagree on "
			 "the entry count or key range", path, mf->size - SSTABLE_FOOTER_SIZE);
		sstable_meta_free(meta);
		return RKV_ECORRUPT;
	}
	return 0;
}

int lsm_table_check(int fd, const char *path, const struct manifest_file *mf,
		    struct sstable_meta *meta, char *err, size_t errlen)
{
	uint8_t tail[SSTABLE_FOOTER_SIZE];
	struct sstable_footer footer;
	uint8_t *buf = NULL;
	struct stat st;
	int rv;

	if (fstat(fd, &st) != 0) {
		rv = -errno;
		snprintf(err, errlen, "%s: stat: %s", path, strerror(errno));
		return rv;
	}
	rv = lsm_table_check_size(path, mf, (uint64_t)st.st_size, err, errlen);
	if (rv)
		return rv;
	rv = read_exact(fd, tail, sizeof tail, mf->size - SSTABLE_FOOTER_SIZE);
	if (rv) {
		snprintf(err, errlen, "%s: read footer: %s", path, strerror(-rv));
		return rv;
	}
	rv = lsm_table_check_footer(path, mf, tail, &footer, err, errlen);
	if (rv)
		return rv;
	buf = malloc(footer.meta_len ? footer.meta_len : 1);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	rv = read_exact(fd, buf, footer.meta_len, footer.meta_offset);
	if (rv)
		snprintf(err, errlen, "%s: read metadata: %s", path, strerror(-rv));
	else
		rv = lsm_table_check_meta(path, mf, &footer, buf, meta, err, errlen);
	free(buf);
	return rv;
}

int lsm_tables_adopt(struct shard *s, uint64_t number, uint64_t size, int fd,
		     const struct sstable_meta *meta)
{
	struct lsm_table *t = lsm_table_new(number, size, fd, meta);

	if (!t)
		return -ENOMEM;
	if (add_table(s, t) != 0) {
		free(t);
		return -ENOMEM;
	}
	return 0;
}

/* Opens one table and checks its footer and metadata against the manifest. */
static int open_table(struct shard *s, const struct manifest_file *mf, char *err,
		      size_t errlen)
{
	struct sstable_meta meta;
	char path[PATH_MAX + 32];
	struct lsm_table *t;
	int fd, rv;

	lsm_path(path, sizeof path, s, mf->number);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rv = -errno;
		snprintf(err, errlen, "%s: named by the manifest (level %u) but: %s; its keys "
			 "would be missing: refusing to start, nothing was deleted",
			 path, mf->level, strerror(errno));
		return rv;
	}
	rv = lsm_table_check(fd, path, mf, &meta, err, errlen);
	if (rv) {
		size_t used = strlen(err);

		if (used < errlen)
			snprintf(err + used, errlen - used, " (a table the manifest names, level "
				 "%u): refusing to start, nothing was deleted", mf->level);
		close(fd);
		return rv;
	}
	t = lsm_table_new(mf->number, mf->size, fd, &meta);
	if (!t || add_table(s, t) != 0) {
		free(t);
		sstable_meta_free(&meta);
		snprintf(err, errlen, "%s: out of memory", path);
		close(fd);
		return -ENOMEM;
	}
	return 0;
}

static bool in_manifest(const struct shard *s, uint64_t number)
{
	for (unsigned l = 0; l < MANIFEST_LEVELS; l++)
		for (size_t i = 0; i < s->manifest.levels[l].count; i++)
			if (s->manifest.levels[l].files[i].number == number)
				return true;
	return false;
}

/* A table file name as lsm_path() writes it: 0 with *number, else -1. */
static int table_name_parse(const char *name, uint64_t *number)
{
	char again[64];
	char *end;
	unsigned long long n;

	if (name[0] < '0' || name[0] > '9')
		return -1;
	errno = 0;
	n = strtoull(name, &end, 10);
	if (errno || strcmp(end, ".sst") != 0)
		return -1;
	snprintf(again, sizeof again, "%06llu.sst", n);
	if (strcmp(again, name) != 0)
		return -1;
	*number = n;
	return 0;
}

/* Names the shard writes besides its tables (the single-node mode's WAL
 * segments too: shard_open refuses those in replicated mode). */
static bool shard_file_known(const char *name)
{
	uint64_t first;

	return !strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, "MANIFEST") ||
	       !strcmp(name, "MANIFEST.tmp") || !strcmp(name, "INSTALLED") || /* install_origin.h */
	       wal_segment_name_parse(name, &first) == 0;
}

static void remove_unfinished(struct shard *s, const char *name)
{
	if (unlinkat(s->dir_fd, name, 0) == 0)
		log_warn("shard %u: removed %s/%s: its number was allocated to a flush or "
			 "compaction that never reached the manifest", s->id, s->dir, name);
	else
		log_warn("shard %u: could not remove %s/%s: %s", s->id, s->dir, name,
			 strerror(errno));
}

/*
 * One entry of the shard's directory besides the tables the manifest names.
 * Only a table the manifest proves obsolete is deleted: one numbered at or
 * above the manifest's next file number was allocated to a flush or
 * compaction whose edit never reached the manifest (a crash), so nothing
 * refers to it -- provided the manifest is the current one, which in
 * replicated mode only the log can confirm (shard_drop_unfinished, called
 * once it has), and was read whole. When its torn tail
 * was cut at this start, the cut may have taken the edit that named the
 * table: it is kept, and numbers continue above it. Anything else (a table
 * numbered below, an operator's copy, a file ringkv does not write) is
 * reported, never read, and left alone.
 */
static void dir_entry_check(struct shard *s, const char *name)
{
	uint64_t number;

	if (table_name_parse(name, &number) != 0) {
		if (!shard_file_known(name))
			log_warn("shard %u: %s/%s is not a file ringkv writes; left alone",
				 s->id, s->dir, name);
		return;
	}
	if (in_manifest(s, number))
		return;
	if (number < s->manifest.next_file_number) {
		log_warn("shard %u: %s/%s is a table the manifest does not name, numbered "
			 "below its next file number %" PRIu64 ": nothing proves it obsolete, "
			 "so it is left alone and not read (move it away once you know what it "
			 "is)", s->id, s->dir, name, s->manifest.next_file_number);
		return;
	}
	if (s->manifest_cut) {
		log_warn("shard %u: %s/%s is a table the manifest does not name, numbered at "
			 "or above its next file number %" PRIu64 ", and the manifest's tail was "
			 "cut at this start (which may have taken the edit naming it): left "
			 "alone and not read", s->id, s->dir, name, s->manifest.next_file_number);
		s->manifest.next_file_number = number + 1;
		return;
	}
	if (s->replicated) {
		/* Deleted once the log agrees the manifest is current. */
		uint64_t *grown = realloc(s->unfinished, (s->n_unfinished + 1) * sizeof *grown);

		if (grown) {
			s->unfinished = grown;
			s->unfinished[s->n_unfinished++] = number;
		}
		s->manifest.next_file_number = number + 1;
		return;
	}
	remove_unfinished(s, name);
}

void shard_drop_unfinished(struct shard *s)
{
	char name[32];

	for (size_t i = 0; i < s->n_unfinished; i++) {
		snprintf(name, sizeof name, "%06" PRIu64 ".sst", s->unfinished[i]);
		remove_unfinished(s, name);
	}
	free(s->unfinished);
	s->unfinished = NULL;
	s->n_unfinished = 0;
}

int lsm_tables_open(struct shard *s, char *err, size_t errlen)
{
	struct dirent *de;
	DIR *d;
	int rv;

	for (unsigned l = 0; l < MANIFEST_LEVELS; l++) {
		for (size_t i = 0; i < s->manifest.levels[l].count; i++) {
			rv = open_table(s, &s->manifest.levels[l].files[i], err, errlen);
			if (rv)
				return rv;
		}
	}
	d = opendir(s->dir);
	if (!d) {
		rv = -errno;
		snprintf(err, errlen, "%s: %s", s->dir, strerror(errno));
		return rv;
	}
	while ((de = readdir(d)) != NULL)
		dir_entry_check(s, de->d_name);
	closedir(d);
	return lsm_version_install(s, NULL, 0);
}

void lsm_tables_close_all(struct shard *s)
{
	s->closing = true;
	lsm_version_unref(s, s->version);
	s->version = NULL;
	while (s->ntables > 0)
		lsm_table_destroy(s, s->tables[0]);
	free(s->tables);
	s->tables = NULL;
}

int lsm_get_blocking(struct shard *s, const void *key, size_t key_len,
		     const void **value, size_t *value_len, struct block_cache_handle **pin)
{
	uint64_t hash = bloom_hash(key, key_len);
	unsigned level = 0;
	size_t file = 0;

	for (;;) {
		struct block_cache_handle *ipin = NULL;
		struct sstable_handle h;
		struct lsm_table *t;
		const char *why = NULL;
		struct sstable_block blk;
		uint8_t *buf;
		int rv;

		rv = lsm_lookup_cached(s, s->version, key, key_len, hash, &level, &file,
				       value, value_len, pin, &t, &h);
		if (rv != RKV_EAGAIN)
			return rv;
		buf = malloc(h.len);
		if (!buf)
			return -ENOMEM;
		rv = read_exact(t->fd, buf, h.len, h.offset);
		if (rv == 0 && sstable_block_open(&blk, buf, h.len, true, &why) != 0) {
			lsm_report_corrupt(s, t->number, h.offset, why);
			rv = RKV_ECORRUPT;
		}
		if (rv == 0)
			rv = block_cache_insert(s->cache, lsm_cache_file(s, t->number), h.offset, buf, h.len, &ipin);
		if (rv) {
			free(buf);
			return rv;
		}
		/* Now cached and pinned: the next lookup finds it. */
		rv = lsm_lookup_cached(s, s->version, key, key_len, hash, &level, &file,
				       value, value_len, pin, &t, &h);
		block_cache_release(s->cache, ipin);
		if (rv != RKV_EAGAIN)
			return rv;
		/* The pinned block answered "not here"; the lookup moved on. */
	}
}
