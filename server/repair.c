/*
 * `ringkvd repair --data-dir D [--dry-run] [--yes]`: the operator's way out
 * of a damaged single-node data dir (issue 14; docs/DAMAGED-DATADIR.md).
 * Offline (it takes D/LOCK, so never beside a running ringkvd), blocking.
 *
 * It reads everything first and lists exactly what it would drop:
 * - tables a shard's MANIFEST names that are missing, short, or have a
 *   footer, metadata or any data block failing its checksum (every block
 *   is read), or that the manifest marks damaged: the keys whose newest
 *   value they hold then read their previous value, or none (a deletion
 *   they held is undone) -- said in the listing;
 * - stray files (not written by ringkv, or tables no manifest names) in D
 *   and its shard and core log dirs;
 * and reports, without touching them, what it cannot mend: a damaged
 * MANIFEST or CLUSTER; a core log segment unreadable from some offset
 * (given), cut or zeroed below its durable-end mark or below where the
 * next segment's SEAL says it ends, missing from the sequence, or of a
 * format version this build does not read -- the checks of ringkvd's own
 * recovery (shard/core_log_open.c), through core_log_segment_examine() --
 * which only a backup (or, replicated, the peers) repairs.
 * Only with --yes, and only when nothing unmendable was found, it acts:
 * every file it drops is moved into D/quarantine/repair-<time>/ (same path
 * below it), never deleted; a shard's old MANIFEST is copied there, and
 * the new one (the version minus the dropped tables) replaces it
 * atomically. A node of a replicated cluster (R >= 2) is listed but never
 * changed: its repair is a rebuild from its peers.
 */
#include "server/repair.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/durable_file.h"
#include "core/errors.h"
#include "shard/install_origin.h"
#include "server/datadir.h"
#include "shard/core_log.h" /* segment names */
#include "shard/core_log_format.h"
#include "shard/manifest.h"
#include "shard/shard_internal.h" /* lsm_table_check */
#include "shard/sstable.h"

#define REPAIR_PATH_MAX 4096

/* One file to move aside; `shard` >= 0 when it is a table of that shard's
 * manifest (which then loses it). */
struct drop {
	char rel[640];          /* path below D */
	long shard;             /* index into repair.shards, or -1 */
	uint32_t level;
	uint64_t number;
};

struct repair_shard {
	char rel[256];          /* shard-<id> */
	struct manifest_version v;
	size_t ndropped;        /* tables of it to drop */
	size_t ncleared;        /* damage marks on tables that now read whole */
};

struct repair {
	const char *dir;
	struct drop *drops;
	size_t ndrops, cap;
	struct repair_shard *shards;
	size_t nshards;
	unsigned unmendable;    /* damage only a backup repairs */
};

/* `a`/`b` into out: 0, or -ENAMETOOLONG (out then unusable). */
static int join(char *out, size_t len, const char *a, const char *b)
{
	int n = snprintf(out, len, "%s/%s", a, b);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int read_whole(const char *path, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return -errno;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	if (pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		free(buf);
		close(fd);
		return -EIO;
	}
	close(fd);
	*out = buf;
	*len = (size_t)st.st_size;
	return 0;
}

static int add_drop(struct repair *r, const char *rel, long shard, uint32_t level,
		    uint64_t number)
{
	if (r->ndrops == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct drop *d = realloc(r->drops, cap * sizeof *d);

		if (!d)
			return -ENOMEM;
		r->drops = d;
		r->cap = cap;
	}
	snprintf(r->drops[r->ndrops].rel, sizeof r->drops[r->ndrops].rel, "%s", rel);
	r->drops[r->ndrops].shard = shard;
	r->drops[r->ndrops].level = level;
	r->drops[r->ndrops++].number = number;
	if (shard >= 0)
		r->shards[shard].ndropped++;
	return 0;
}

/* Every data block of the table read and checked. 0, or why not in `why`. */
static int table_verify(const char *path, const struct manifest_file *mf, char *why,
			size_t whylen)
{
	struct sstable_meta meta;
	uint8_t *buf = NULL;
	size_t cap = 0;
	int rv, fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -errno;
	}
	rv = lsm_table_check(fd, path, mf, &meta, why, whylen);
	if (rv) {
		close(fd);
		return rv;
	}
	for (uint32_t i = 0; i < meta.nblocks && rv == 0; i++) {
		uint64_t off = meta.block_start[i];
		size_t len = (size_t)(meta.block_start[i + 1] - off);
		struct sstable_block blk;
		const char *reason = NULL;

		if (len > cap) {
			uint8_t *b = realloc(buf, len);

			if (!b) {
				rv = -ENOMEM;
				snprintf(why, whylen, "out of memory");
				break;
			}
			buf = b;
			cap = len;
		}
		if (pread(fd, buf, len, (off_t)off) != (ssize_t)len) {
			rv = -EIO;
			snprintf(why, whylen, "data block %u at offset %" PRIu64 ": short read", i,
				 off);
		} else if (sstable_block_open(&blk, buf, len, true, &reason) != 0) {
			rv = RKV_ECORRUPT;
			snprintf(why, whylen, "data block %u at offset %" PRIu64 ": %s", i, off,
				 reason ? reason : "bad data");
		}
	}
	free(buf);
	sstable_meta_free(&meta);
	close(fd);
	return rv;
}

/* A name as lsm_path writes it ("%06llu.sst"): true with its number. */
static bool table_name(const char *name, uint64_t *number)
{
	size_t len = strlen(name);
	uint64_t n = 0;

	if (len < 10 || strcmp(name + len - 4, ".sst") != 0 || len - 4 > 19)
		return false;
	for (size_t i = 0; i < len - 4; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		n = n * 10 + (uint64_t)(name[i] - '0');
	}
	*number = n;
	return true;
}

/* A key as the listing shows it: printable ASCII, others as \xNN. */
static void print_key(const uint8_t *key, uint32_t len)
{
	putchar('"');
	for (uint32_t i = 0; i < len; i++) {
		if (key[i] >= 0x20 && key[i] < 0x7f && key[i] != '"' && key[i] != '\\')
			putchar(key[i]);
		else
			printf("\\x%02x", key[i]);
	}
	putchar('"');
}

static bool named(const struct manifest_version *v, uint64_t number)
{
	return manifest_version_find(v, number) != NULL;
}

/* opendir of D/`name`; NULL with errno set. */
static DIR *open_below(const struct repair *r, const char *name)
{
	char path[REPAIR_PATH_MAX];

	if (join(path, sizeof path, r->dir, name)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	return opendir(path);
}

static int examine_shard(struct repair *r, const char *name)
{
	struct repair_shard *sh;
	char path[REPAIR_PATH_MAX], rel[600], why[1024];
	struct manifest_replay rep = { 0 };
	uint8_t *buf = NULL;
	size_t len = 0;
	struct dirent *de;
	DIR *d;
	long idx;
	int rv;

	sh = realloc(r->shards, (r->nshards + 1) * sizeof *sh);
	if (!sh)
		return -ENOMEM;
	r->shards = sh;
	idx = (long)r->nshards++;
	sh = &r->shards[idx];
	memset(sh, 0, sizeof *sh);
	snprintf(sh->rel, sizeof sh->rel, "%s", name);
	manifest_version_init(&sh->v);
	snprintf(path, sizeof path, "%s/%s/MANIFEST", r->dir, name);
	rv = read_whole(path, &buf, &len);
	if (rv == 0)
		rv = manifest_replay(&sh->v, buf, len, &rep);
	free(buf);
	if (rv) {
		printf("cannot mend: %s/MANIFEST: %s%s (restore the shard from a backup)\n", name,
		       rv == RKV_ECORRUPT ? "damaged: " : strerror(-rv),
		       rv == RKV_ECORRUPT && rep.reason ? rep.reason : "");
		r->unmendable++;
		return 0;
	}
	if (rep.torn)
		printf("note: %s/MANIFEST has a torn tail at offset %zu; ringkvd cuts it itself\n",
		       name, rep.valid_len);
	for (unsigned l = 0; l < MANIFEST_LEVELS; l++) {
		for (size_t i = 0; i < sh->v.levels[l].count; i++) {
			const struct manifest_file *mf = &sh->v.levels[l].files[i];

			snprintf(rel, sizeof rel, "%s/%06" PRIu64 ".sst", name, mf->number);
			if (join(path, sizeof path, r->dir, rel))
				return -ENAMETOOLONG;
			why[0] = '\0';
			if (access(path, F_OK) != 0)
				snprintf(why, sizeof why, "missing");
			else if (table_verify(path, mf, why, sizeof why) == 0) {
				if (mf->damaged) {
					/* Every block reads whole now (a bad read,
					 * or the file put back): keep it. */
					printf("clear mark: %s is marked damaged but every block "
					       "checks out: kept, the mark removed\n", rel);
					sh->ncleared++;
				}
				continue;
			}
			printf("drop table: %s (level %u, %" PRIu64 " entries, keys ", rel, l,
			       mf->entry_count);
			print_key(mf->smallest, mf->smallest_len);
			printf(" .. ");
			print_key(mf->largest, mf->largest_len);
			printf("): %s\n", why);
			if (add_drop(r, rel, idx, l, mf->number))
				return -ENOMEM;
		}
	}
	d = open_below(r, name);
	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		uint64_t n;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, "MANIFEST") || !strcmp(de->d_name, INSTALL_ORIGIN_NAME))
			continue;
		if (table_name(de->d_name, &n) && named(&sh->v, n))
			continue;
		if (join(rel, sizeof rel, name, de->d_name) || add_drop(r, rel, -1, 0, 0)) {
			closedir(d);
			return -ENOMEM;
		}
		printf("move stray: %s (no manifest names it)\n", rel);
	}
	closedir(d);
	return 0;
}

/* What examine_core keeps of one segment for the checks of the next. */
struct seg_seen {
	uint64_t seq;
	char rel[600];
	bool parsed;        /* header good: `end` is where its records end */
	size_t end;
	bool torn;          /* a torn tail at `end` */
};

static void cannot_mend(struct repair *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void cannot_mend(struct repair *r, const char *fmt, ...)
{
	va_list ap;

	printf("cannot mend: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("; the entries there above the shards' flushed indexes are in no table "
	       "(restore the data dir from a backup, or rebuild the node from its peers)\n");
	r->unmendable++;
}

/*
 * Checks one core log segment as ringkvd's recovery would (core_log_open.c)
 * and says what it finds; never changes it. `prev` is the segment before
 * (seq - 1) when present and read, else NULL; `last` whether no segment
 * follows.
 */
static void examine_segment(struct repair *r, const char *core, uint64_t seq,
			    struct seg_seen *prev, bool last, struct seg_seen *out)
{
	struct core_log_segment_facts f;
	char path[REPAIR_PATH_MAX], name[64];
	uint8_t *buf = NULL;
	size_t len = 0, written;

	core_log_segment_name(name, sizeof name, seq);
	out->seq = seq;
	out->parsed = false;
	out->torn = false;
	if (join(out->rel, sizeof out->rel, core, name) ||
	    join(path, sizeof path, r->dir, out->rel) || read_whole(path, &buf, &len) != 0) {
		printf("cannot mend: %s: unreadable\n", out->rel);
		r->unmendable++;
		return;
	}
	core_log_segment_examine(buf, len, seq, &f);
	written = len;
	while (written > f.end && buf[written - 1] == 0)
		written--; /* preallocated space never written */
	free(buf);
	if (f.header != 0) {
		if (f.version != 0 && f.version != CORE_LOG_FORMAT_VERSION)
			printf("cannot mend: %s: core log format version %" PRIu32 ", but this "
			       "build reads version %d only (docs/cluster/core-log.md, \"Format "
			       "versions\")\n", out->rel, f.version, CORE_LOG_FORMAT_VERSION);
		else
			printf("cannot mend: %s: no whole segment header (ringkvd says whether it "
			       "may rewrite it)\n", out->rel);
		r->unmendable++;
		return;
	}
	if (f.res == CORE_LOG_SCAN_CORRUPT || (f.res == CORE_LOG_SCAN_TORN && f.cut)) {
		cannot_mend(r, "%s: unreadable from offset %zu (%zu bytes up to the last written "
			    "byte): %s", out->rel, f.end, written - f.end,
			    f.res == CORE_LOG_SCAN_CORRUPT && f.reason ? f.reason
								  : "cut inside a record");
		return;
	}
	out->parsed = true;
	out->end = f.end;
	out->torn = f.res == CORE_LOG_SCAN_TORN;
	/* A torn tail must be the log's end: a later segment with records
	 * means the bad record was followed by data. */
	if (prev && prev->parsed && prev->torn && f.records > 0)
		cannot_mend(r, "%s: offset %zu: bad record followed by valid data in %s", prev->rel,
			    prev->end, out->rel);
	/* The segment before ends where this one's SEAL says (written once
	 * all of its records were synced). */
	if (f.sealed && prev && prev->parsed && prev->seq == f.seal_seq && prev->end != f.seal_end)
		cannot_mend(r, "%s: its records end at offset %zu, but %s (begun once they were "
			    "all synced) says they end at %" PRIu64 ": the file was cut or zeroed "
			    "and the records synced after offset %zu are lost", prev->rel,
			    prev->end, out->rel, f.seal_end, prev->end);
	if (!f.marked && (f.records > 0 || !last))
		cannot_mend(r, "%s: offset %d: neither durable-end mark slot of page 0 is valid, "
			    "so whether records synced after offset %zu are lost cannot be told",
			    out->rel, CORE_LOG_MARK_SLOT0, f.end);
	else if (f.marked && f.mark.end > f.end)
		cannot_mend(r, "%s: offset %zu: its records end here, but its durable-end mark "
			    "(number %" PRIu64 ") says records were synced up to offset %" PRIu64
			    ": the file was cut or zeroed, and the %" PRIu64 " bytes of records "
			    "synced after offset %zu are lost", out->rel, f.end, f.mark.count,
			    f.mark.end, f.mark.end - f.end, f.end);
	else
		printf("checked: %s: %" PRIu64 " records up to offset %zu, synced at least up to "
		       "%" PRIu64 "%s\n", out->rel, f.records, f.end,
		       f.marked ? f.mark.end : (uint64_t)CORE_LOG_RECORDS_START,
		       f.sealed ? " (its SEAL was checked against the segment before)" : "");
	if (out->torn)
		printf("note: %s: torn tail at offset %zu (an unsynced write); ringkvd cuts it "
		       "itself\n", out->rel, f.end);
}

static int examine_core(struct repair *r, const char *name)
{
	char rel[600], path[REPAIR_PATH_MAX];
	struct seg_seen seen[2];
	struct dirent *de;
	uint64_t *seqs = NULL, seq;
	size_t n = 0;
	DIR *d;
	int rv;

	d = open_below(r, name);
	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    core_log_segment_name_parse(de->d_name, &seq) == 0)
			continue;
		if (join(rel, sizeof rel, name, de->d_name) || add_drop(r, rel, -1, 0, 0)) {
			closedir(d);
			return -ENOMEM;
		}
		printf("move stray: %s (not a log segment)\n", rel);
	}
	closedir(d);
	if (join(path, sizeof path, r->dir, name))
		return -ENAMETOOLONG;
	rv = core_log_segments_list(path, &seqs, &n);
	if (rv)
		return rv;
	/* Oldest first, as recovery reads them: each against the one before. */
	for (size_t k = 0; k < n; k++) {
		struct seg_seen *prev = k > 0 && seqs[k] == seqs[k - 1] + 1 ? &seen[(k - 1) % 2]
									   : NULL;

		if (k > 0 && !prev) {
			char missing[64];

			core_log_segment_name(missing, sizeof missing, seqs[k - 1] + 1);
			printf("cannot mend: %s/%s: segment missing (between %" PRIu64 " and %" PRIu64
			       "); the entries it held are lost (restore the data dir from a "
			       "backup, or rebuild the node from its peers)\n", name, missing,
			       seqs[k - 1], seqs[k]);
			r->unmendable++;
		}
		examine_segment(r, name, seqs[k], prev, k == n - 1, &seen[k % 2]);
	}
	free(seqs);
	return 0;
}

static bool is_known_top(const char *name)
{
	static const char *const known[] = { ".", "..", "LOCK", "CLUSTER", "PLACEMENT",
					     "OPENED", "OPENED.tmp", "quarantine", "CLUSTER.tmp",
					     "PLACEMENT.tmp", "lost+found",
					     "DATADIR-ID", "DATADIR-ID.tmp" /* cluster/replica_wiped.c */ };

	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (!strcmp(name, known[i]))
			return true;
	return false;
}

static int examine(struct repair *r)
{
	struct dirent *de;
	DIR *d = opendir(r->dir);
	int rv = 0;

	if (!d)
		return -errno;
	while (rv == 0 && (de = readdir(d)) != NULL) {
		unsigned long id;
		char extra;

		if (is_known_top(de->d_name))
			continue;
		if (sscanf(de->d_name, "shard-%lu%c", &id, &extra) == 1)
			rv = examine_shard(r, de->d_name);
		else if (sscanf(de->d_name, "core-%lu%c", &id, &extra) == 1)
			rv = examine_core(r, de->d_name);
		else {
			printf("move stray: %s (not written by ringkv)\n", de->d_name);
			rv = add_drop(r, de->d_name, -1, 0, 0);
		}
	}
	closedir(d);
	return rv;
}

/* mkdir -p of the directories of `rel` below `base`. */
static int make_parents(const char *base, const char *rel)
{
	char path[REPAIR_PATH_MAX];
	size_t n = strlen(base) + 1 + strlen(rel);

	if (join(path, sizeof path, base, rel))
		return -ENAMETOOLONG;
	for (size_t i = strlen(base) + 1; i < n; i++) {
		if (path[i] != '/')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			return -errno;
		path[i] = '/';
	}
	return 0;
}

static int copy_file(const char *from, const char *to)
{
	uint8_t *buf;
	size_t len;
	int rv = read_whole(from, &buf, &len), fd;

	if (rv)
		return rv;
	fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(buf);
		return -errno;
	}
	rv = write(fd, buf, len) == (ssize_t)len && fsync(fd) == 0 ? 0 : -EIO;
	close(fd);
	free(buf);
	return rv;
}

/* The shard's new MANIFEST: its version without the dropped tables. */
static int rewrite_manifest(struct repair *r, struct repair_shard *sh, const char *qdir)
{
	char path[REPAIR_PATH_MAX], to[REPAIR_PATH_MAX], rel[600];
	struct manifest_file_id *gone = calloc(sh->ndropped + 1, sizeof *gone);
	struct manifest_edit e = { 0 };
	struct sstable_buf out = { 0 };
	const char *why = NULL;
	size_t n = 0;
	int rv;

	if (!gone)
		return -ENOMEM;
	for (size_t i = 0; i < r->ndrops; i++)
		if (r->drops[i].shard >= 0 && &r->shards[r->drops[i].shard] == sh) {
			gone[n].level = r->drops[i].level;
			gone[n++].number = r->drops[i].number;
		}
	e.deleted = gone;
	e.ndeleted = n;
	rv = manifest_version_apply(&sh->v, &e, &why);
	/* What is left was read whole: no mark stays. */
	for (unsigned l = 0; l < MANIFEST_LEVELS; l++)
		for (size_t i = 0; i < sh->v.levels[l].count; i++)
			sh->v.levels[l].files[i].damaged = false;
	sh->v.ndamaged = 0;
	if (rv == 0)
		rv = manifest_version_snapshot(&sh->v, &out);
	free(gone);
	if (rv)
		return rv;
	snprintf(rel, sizeof rel, "%s/MANIFEST", sh->rel);
	if (join(path, sizeof path, r->dir, rel) || join(to, sizeof to, qdir, rel)) {
		sstable_buf_free(&out);
		return -ENAMETOOLONG;
	}
	rv = make_parents(qdir, rel);
	if (rv == 0)
		rv = copy_file(path, to);
	if (rv == 0) {
		rv = join(path, sizeof path, r->dir, sh->rel);
		if (rv == 0)
			rv = durable_file_replace(path, "MANIFEST", out.data, out.len);
	}
	sstable_buf_free(&out);
	if (rv == 0)
		printf("rewrote %s (old copy in quarantine)\n", rel);
	return rv;
}

static int act(struct repair *r)
{
	char qdir[REPAIR_PATH_MAX], from[REPAIR_PATH_MAX], to[REPAIR_PATH_MAX];
	time_t now = time(NULL);
	struct tm tm;
	int rv;

	gmtime_r(&now, &tm);
	snprintf(qdir, sizeof qdir, "%s/quarantine", r->dir);
	if (mkdir(qdir, 0755) != 0 && errno != EEXIST)
		return -errno;
	snprintf(qdir, sizeof qdir, "%s/quarantine/repair-%04d%02d%02dT%02d%02d%02dZ", r->dir,
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (mkdir(qdir, 0755) != 0)
		return -errno;
	/* Manifests first: a table leaves its manifest before its file moves,
	 * so a crash in between leaves a stray, never a missing table. */
	for (size_t i = 0; i < r->nshards; i++) {
		if (r->shards[i].ndropped == 0 && r->shards[i].ncleared == 0)
			continue;
		rv = rewrite_manifest(r, &r->shards[i], qdir);
		if (rv)
			return rv;
	}
	for (size_t i = 0; i < r->ndrops; i++) {
		if (join(from, sizeof from, r->dir, r->drops[i].rel) ||
		    join(to, sizeof to, qdir, r->drops[i].rel))
			return -ENAMETOOLONG;
		rv = make_parents(qdir, r->drops[i].rel);
		if (rv == 0 && rename(from, to) != 0)
			rv = -errno;
		if (rv == -ENOENT && r->drops[i].shard >= 0) {
			printf("dropped %s from its manifest (the file was missing)\n",
			       r->drops[i].rel);
			continue;
		}
		if (rv)
			return rv;
		printf("moved %s -> %s\n", r->drops[i].rel, to + strlen(r->dir) + 1);
	}
	rv = durable_dir_sync(r->dir);
	for (size_t i = 0; rv == 0 && i < r->nshards; i++) {
		rv = join(from, sizeof from, r->dir, r->shards[i].rel);
		if (rv == 0)
			rv = durable_dir_sync(from);
	}
	return rv;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: ringkvd repair --data-dir DIR [--dry-run | --yes]\n"
		"  Lists the damaged tables, stray files and unreadable log tails of a\n"
		"  stopped node's data dir; with --yes moves what it lists into\n"
		"  DIR/quarantine/ and rewrites the manifests without the dropped tables.\n"
		"  exit: 0 nothing to drop or repaired, 3 listed (nothing changed),\n"
		"  1 refused or failed, 2 usage\n");
}

int repair_main(int argc, char **argv)
{
	struct repair r = { 0 };
	struct datadir_cluster rec;
	bool yes = false, dry = false;
	char err[1024] = "";
	struct stat st;
	size_t cleared = 0;
	int lock_fd, rv, status = 1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--data-dir") && i + 1 < argc)
			r.dir = argv[++i];
		else if (!strncmp(argv[i], "--data-dir=", 11))
			r.dir = argv[i] + 11;
		else if (!strcmp(argv[i], "--yes"))
			yes = true;
		else if (!strcmp(argv[i], "--dry-run"))
			dry = true;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "ringkvd repair: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (!r.dir || (yes && dry)) {
		usage(stderr);
		return 2;
	}
	if (stat(r.dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "ringkvd repair: %s: not a directory\n", r.dir);
		return 1;
	}
	lock_fd = datadir_lock(r.dir, err, sizeof err);
	if (lock_fd < 0) {
		fprintf(stderr, "ringkvd repair: %s%s\n", err,
			lock_fd == -EBUSY ? " (stop ringkvd first)" : "");
		return 1;
	}
	rv = datadir_cluster_read(r.dir, &rec, err, sizeof err);
	if (rv <= 0) {
		fprintf(stderr, "ringkvd repair: %s: %s\n", r.dir,
			rv == 0 ? "not a ringkv data dir (no CLUSTER, no shard)" : err);
		goto out;
	}
	rv = examine(&r);
	if (rv) {
		fprintf(stderr, "ringkvd repair: %s: %s\n", r.dir, strerror(-rv));
		goto out;
	}
	for (size_t i = 0; i < r.nshards; i++)
		cleared += r.shards[i].ncleared;
	if (r.ndrops == 0 && r.unmendable == 0 && cleared == 0) {
		printf("%s: nothing to drop\n", r.dir);
		status = 0;
		goto out;
	}
	if (r.ndrops > 0)
		printf("dropping a table loses the newest value of each key it holds: such a key "
		       "then reads its previous value, or none, and a deletion the table held is "
		       "undone\n");
	if (r.unmendable > 0) {
		printf("%u problem%s above only a backup repairs: nothing changed\n", r.unmendable,
		       r.unmendable == 1 ? "" : "s");
		goto out;
	}
	if (rec.map.replicas > 1) {
		printf("this node holds replicas (R = %u): nothing changed; rebuild it from its "
		       "peers instead (docs/DAMAGED-DATADIR.md: move the dir aside, restart with "
		       "--initial-cluster-state existing)\n", rec.map.replicas);
		goto out;
	}
	if (!yes) {
		printf("nothing changed; run again with --yes to move these into %s/quarantine/\n",
		       r.dir);
		status = 3;
		goto out;
	}
	rv = act(&r);
	if (rv) {
		fprintf(stderr, "ringkvd repair: %s: %s (what was moved is in quarantine/)\n",
			r.dir, rv == RKV_ECORRUPT ? "manifest edit refused" : strerror(-rv));
		goto out;
	}
	printf("repaired: ringkvd may start on %s\n", r.dir);
	status = 0;
out:
	for (size_t i = 0; i < r.nshards; i++)
		manifest_version_destroy(&r.shards[i].v);
	free(r.shards);
	free(r.drops);
	close(lock_fd);
	return status;
}
