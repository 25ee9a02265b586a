/*
 * Opening the per-core log: the only code that decides which bytes on disk
 * are the log. It runs before the reactor, so it uses plain blocking calls;
 * each segment is mapped read-only while the groups are rebuilt and handed
 * to the caller, then unmapped.
 *
 * What may be thrown away. A batch is stored at the end of the active
 * segment, into preallocated zero-filled space, and then fdatasync'ed; a
 * crash leaves a prefix of the batch followed by zeros. So the only bytes
 * recovery may drop are a torn tail (core_log_format.c's rules: nothing
 * valid may follow it) of the last segment that holds records; segments
 * after it may exist only as freshly prepared, empty ones (header and zeros:
 * the writer prepares the next segment ahead of the switch), and a last
 * segment whose header is cut short or all zero was being created (if it is
 * the first segment ever, or a segment precedes it) and gets its header
 * written again. A file that ends inside a record was cut, not torn: the
 * writer stores records only into space that a preallocation (FALLOCATE, or
 * zeros written: core_log_direct.c) gave the file and an fdatasync made
 * durable first (core_log.c, grow), so after a crash zeros
 * follow the last bytes written; and segment sizes are whole pages, so a
 * file that ends right after a record at another size was cut at a record
 * boundary. A file cut or zeroed at a record boundary that is also a page
 * boundary parses whole, so each segment's page 0 holds a durable-end mark
 * (core_log.c): the records were durable up to there when it was written,
 * and a crash never leaves them ending below it; records ending below it
 * were cut. Anything else -- a bad record followed by data,
 * a record that does not fit its group's log, a gap in segment numbers, a
 * first segment newer than the last RETAIN record allows -- means data that
 * was acknowledged may be gone: open refuses, naming the file and offset.
 *
 * Replay. Segments are read oldest first; each one but a trailing empty one
 * begins with a RETAIN record and a checkpoint of every live group's hard
 * state and log start, so replay may start at any segment the writer kept.
 * Per group, a later record wins: an entry at index i drops the entries >= i,
 * LOG_RESET and REMOVE drop all of them. Entries must stay consecutive
 * (an index above the last + 1 is a hole: refused); entries below the first
 * one seen went with deleted segments, which the group had released.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/log.h"
#include "shard/core_log_internal.h"

#define NAME_PREFIX "log-"
#define NAME_SUFFIX ".log"
#define NAME_DIGITS 20

int core_log_segment_name(char *buf, size_t len, uint64_t seq)
{
	int n = snprintf(buf, len, NAME_PREFIX "%020" PRIu64 NAME_SUFFIX, seq);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int core_log_segment_name_parse(const char *name, uint64_t *seq)
{
	const size_t prefix = sizeof(NAME_PREFIX) - 1;
	const size_t suffix = sizeof(NAME_SUFFIX) - 1;
	uint64_t v = 0;

	if (strlen(name) != prefix + NAME_DIGITS + suffix ||
	    memcmp(name, NAME_PREFIX, prefix) != 0 ||
	    memcmp(name + prefix + NAME_DIGITS, NAME_SUFFIX, suffix) != 0)
		return RKV_EINVAL;
	for (size_t i = 0; i < NAME_DIGITS; i++) {
		char c = name[prefix + i];

		if (c < '0' || c > '9' || v > (UINT64_MAX - (uint64_t)(c - '0')) / 10)
			return RKV_EINVAL;
		v = v * 10 + (uint64_t)(c - '0');
	}
	if (v == 0)
		return RKV_EINVAL;
	*seq = v;
	return 0;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int make_dirs(const char *dir)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0)
		return -ENOENT;
	if (len >= sizeof path)
		return -ENAMETOOLONG;
	memcpy(path, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			return -errno;
		path[i] = dir[i];
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Segment seqs in `dir_fd`, ascending, in a malloc'd array, warning of
 * other files when `warn`. 0 or -errno. */
static int list_segments(const char *dir, int dir_fd, bool warn, uint64_t **out, size_t *count)
{
	uint64_t *seqs = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int fd = dup(dir_fd);

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	rewinddir(d);
	while ((errno = 0, de = readdir(d)) != NULL) {
		uint64_t seq;

		if (core_log_segment_name_parse(de->d_name, &seq) != 0) {
			if (warn && strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
				log_warn("core log %s: %s is not a file the log writes; left "
					 "alone and not read", dir, de->d_name);
			continue;
		}
		if (n == cap) {
			size_t c = cap ? cap * 2 : 16;
			uint64_t *grown = realloc(seqs, c * sizeof *grown);

			if (!grown) {
				free(seqs);
				closedir(d);
				return -ENOMEM;
			}
			seqs = grown;
			cap = c;
		}
		seqs[n++] = seq;
	}
	if (errno != 0) {
		int rv = -errno;

		free(seqs);
		closedir(d);
		return rv;
	}
	closedir(d);
	if (n > 1)
		qsort(seqs, n, sizeof *seqs, cmp_u64);
	*out = seqs;
	*count = n;
	return 0;
}

/* Writes a new segment's page 0 (header and initial marks), then fsync. */
int core_log_segments_list(const char *dir, uint64_t **seqs, size_t *count)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rv;

	if (fd < 0)
		return -errno;
	rv = list_segments(dir, fd, false, seqs, count);
	close(fd);
	return rv;
}

static int write_header(int fd, uint64_t seq)
{
	uint8_t header[CORE_LOG_RECORDS_START];
	ssize_t n;

	core_log_segment_page0_encode(header, seq);
	if (ftruncate(fd, 0) != 0)
		return -errno;
	do
		n = pwrite(fd, header, sizeof header, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != sizeof header)
		return -EIO;
	return fsync(fd) != 0 ? -errno : 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

/* A last segment whose creation was cut short: see the essay above. */
static bool header_torn(const uint8_t *buf, size_t len, uint64_t seq)
{
	uint8_t good[CORE_LOG_RECORDS_START];

	if (all_zero(buf, len))
		return true;
	if (len >= CORE_LOG_RECORDS_START)
		return false;
	core_log_segment_page0_encode(good, seq);
	return memcmp(buf, good, len) == 0;
}

/* Entries of one group rebuilt by replay. */
struct rec_entries {
	struct raft_entry *v;
	size_t n;
	size_t cap;
	uint64_t first; /* index of v[0] */
};

struct seg_map {
	uint64_t seq;
	int fd;
	uint8_t *base;
	size_t len;
	size_t end;         /* after the last good record */
	struct core_log_mark mark; /* its newest durable-end mark */
	bool marked;        /* `mark` is valid */
	bool checkpointed;  /* its whole checkpoint parsed (a record after it did) */
	bool records;       /* holds at least one record */
};

struct replay {
	struct core_log *log;
	struct rec_entries *recs;
	size_t nrecs;
	uint64_t retain;    /* highest RETAIN seen */
	char *err;
	size_t errlen;
	const char *dir;
};

static struct rec_entries *rec_of(struct replay *rp, uint32_t gi)
{
	if (gi >= rp->nrecs) {
		size_t n = rp->nrecs ? rp->nrecs * 2 : 64;
		struct rec_entries *grown;

		while (n <= gi)
			n *= 2;
		grown = realloc(rp->recs, n * sizeof *grown);
		if (!grown)
			return NULL;
		memset(grown + rp->nrecs, 0, (n - rp->nrecs) * sizeof *grown);
		rp->recs = grown;
		rp->nrecs = n;
	}
	return &rp->recs[gi];
}

/* Drops the group's rebuilt entries at or below `index`. */
static void rec_drop_through(struct rec_entries *rec, uint64_t index)
{
	uint64_t k;

	if (rec->n == 0 || index < rec->first)
		return;
	k = index - rec->first + 1;
	if (k >= rec->n) {
		rec->n = 0;
		return;
	}
	memmove(rec->v, rec->v + k, (size_t)(rec->n - k) * sizeof *rec->v);
	rec->n -= (size_t)k;
	rec->first = index + 1;
}

/* Applies one record; NULL, or why it does not fit (RKV_ECORRUPT). */
static const char *apply(struct replay *rp, const struct seg_map *sm,
			 const struct core_log_record *r, int *rv)
{
	struct core_log *log = rp->log;
	struct core_log_checkpoint_item it;
	struct core_log_group *g;
	struct rec_entries *rec;
	uint32_t gi;

	*rv = -ENOMEM;
	switch (r->kind) {
	case CORE_LOG_RETAIN:
		if (r->a > rp->retain)
			rp->retain = r->a;
		return NULL;
	case CORE_LOG_SEAL:
		return NULL; /* checked against the segment before, in replay_all */
	case CORE_LOG_CHECKPOINT:
		if (r->a != sm->seq) {
			*rv = RKV_ECORRUPT;
			return "checkpoint of another segment";
		}
		for (uint32_t i = 0; i < r->b; i++) {
			core_log_checkpoint_item_decode(r, i, &it);
			gi = core_log_group_get(log, it.group);
			if (gi == CORE_LOG_NONE || !(rec = rec_of(rp, gi)))
				return "out of memory";
			g = &log->groups[gi];
			g->written.hs.term = it.term;
			g->written.hs.vote = it.vote;
			g->written.start_index = it.start_index;
			g->written.start_term = it.start_term;
			if (g->written.has_entries && g->written.last_index <= it.start_index) {
				g->written.has_entries = false;
				g->written.last_index = it.start_index;
				g->written.last_term = it.start_term;
				g->nruns = 0;
			}
			rec_drop_through(rec, it.start_index);
		}
		return NULL;
	default:
		break;
	}
	gi = core_log_group_get(log, r->group);
	if (gi == CORE_LOG_NONE || !(rec = rec_of(rp, gi)))
		return "out of memory";
	g = &log->groups[gi];
	switch (r->kind) {
	case CORE_LOG_ENTRY:
		*rv = RKV_ECORRUPT;
		if (r->a <= g->written.start_index)
			return "entry at or below its group's log start";
		if (g->written.has_entries && r->a > g->written.last_index + 1)
			return "entry leaves a gap in its group's log";
		if (rec->n == 0 || r->a < rec->first) {
			rec->first = r->a;
			rec->n = 0;
		} else {
			rec->n = (size_t)(r->a - rec->first);
		}
		if (rec->n == rec->cap) {
			size_t cap = rec->cap ? rec->cap * 2 : 16;
			struct raft_entry *grown = realloc(rec->v, cap * sizeof *grown);

			if (!grown) {
				*rv = -ENOMEM;
				return "out of memory";
			}
			rec->v = grown;
			rec->cap = cap;
		}
		rec->v[rec->n].term = r->b;
		rec->v[rec->n].type = r->type;
		rec->v[rec->n].len = r->payload_len;
		/* Read-only mapping: the restore callback copies (raft_restore). */
		rec->v[rec->n].data = (void *)(uintptr_t)r->payload;
		rec->n++;
		g->written.last_index = r->a;
		g->written.last_term = r->b;
		g->written.has_entries = true;
		if (core_log_group_wrote(log, gi, sm->seq, false, r->a) != 0)
			return "out of memory";
		return NULL;
	case CORE_LOG_HARD_STATE:
		g->written.hs.term = r->a;
		g->written.hs.vote = r->b;
		return NULL;
	case CORE_LOG_RESET:
		g->written.start_index = r->a;
		g->written.start_term = r->b;
		g->written.last_index = r->a;
		g->written.last_term = r->b;
		g->written.has_entries = false;
		rec->n = 0;
		(void)core_log_group_wrote(log, gi, sm->seq, true, 0);
		return NULL;
	case CORE_LOG_REMOVE:
		rec->n = 0;
		rec->first = 0;
		core_log_group_unlink(log, gi);
		core_log_group_free(log, gi);
		return NULL;
	default:
		*rv = RKV_ECORRUPT;
		return "unknown record kind";
	}
}

static void unmap_all(struct seg_map *maps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (maps[i].base)
			munmap(maps[i].base, maps[i].len);
		if (maps[i].fd >= 0)
			close(maps[i].fd);
	}
}

/* Opens and maps segment `sm->seq`; checks or (last) repairs its header. */
static int map_segment(struct replay *rp, struct seg_map *sm, bool last, bool alone)
{
	char name[64];
	struct stat st;
	uint64_t seq;
	int rv;

	core_log_segment_name(name, sizeof name, sm->seq);
	sm->fd = openat(rp->log->dir_fd, name, O_RDWR | O_CLOEXEC);
	if (sm->fd < 0) {
		rv = -errno;
		set_err(rp->err, rp->errlen, "%s/%s: open: %s", rp->dir, name, strerror(-rv));
		return rv;
	}
	if (fstat(sm->fd, &st) != 0) {
		rv = -errno;
		set_err(rp->err, rp->errlen, "%s/%s: stat: %s", rp->dir, name, strerror(-rv));
		return rv;
	}
	sm->len = (size_t)st.st_size;
	if (sm->len > 0) {
		void *p = mmap(NULL, sm->len, PROT_READ, MAP_SHARED, sm->fd, 0);

		if (p == MAP_FAILED) {
			rv = -errno;
			sm->len = 0;
			set_err(rp->err, rp->errlen, "%s/%s: mmap: %s", rp->dir, name,
				strerror(-rv));
			return rv;
		}
		sm->base = p;
	}
	rv = core_log_segment_header_check(sm->base, sm->len, &seq);
	if (rv != 0 && core_log_segment_header_version(sm->base, sm->len) != 0 &&
	    core_log_segment_header_version(sm->base, sm->len) != CORE_LOG_FORMAT_VERSION) {
		set_err(rp->err, rp->errlen, "%s/%s: offset 8: core log format version %" PRIu32
			", but this ringkvd reads version %d only (version 1, before durable-end "
			"marks, was never released; docs/cluster/core-log.md \"Format versions\"): "
			"refusing to start, nothing was changed", rp->dir, name,
			core_log_segment_header_version(sm->base, sm->len), CORE_LOG_FORMAT_VERSION);
		return RKV_ECORRUPT;
	}
	if (rv == 0 && seq != sm->seq) {
		set_err(rp->err, rp->errlen, "%s/%s: offset 0: header names segment %" PRIu64,
			rp->dir, name, seq);
		return RKV_ECORRUPT;
	}
	if (rv == 0)
		return 0;
	/* Being created: the last segment, and either the first one ever or
	 * prepared ahead while the one before it (present) was active. */
	if (!last || !header_torn(sm->base, sm->len, sm->seq) || (alone && sm->seq > 1)) {
		set_err(rp->err, rp->errlen, "%s/%s: offset 0: %s (%zu bytes)%s", rp->dir, name,
			sm->len < CORE_LOG_SEGMENT_HEADER_SIZE ? "no whole segment header" :
								 "bad segment header",
			sm->len, alone && sm->seq > 1 ?
			": the only segment, so not one being created ahead; it was cut or "
			"overwritten, and the hard states and entries it held are lost; "
			"refusing to start, nothing was deleted" : "");
		return RKV_ECORRUPT;
	}
	log_warn("core log %s/%s: segment header cut short, written again", rp->dir, name);
	if (sm->base)
		munmap(sm->base, sm->len);
	sm->base = NULL;
	sm->len = 0;
	rv = write_header(sm->fd, sm->seq);
	if (rv != 0) {
		set_err(rp->err, rp->errlen, "%s/%s: rewriting header: %s", rp->dir, name,
			strerror(-rv));
		return rv;
	}
	rp->log->stats.torn_bytes += CORE_LOG_RECORDS_START;
	sm->len = CORE_LOG_RECORDS_START;
	sm->base = mmap(NULL, sm->len, PROT_READ, MAP_SHARED, sm->fd, 0);
	if (sm->base == MAP_FAILED) {
		rv = -errno;
		sm->base = NULL;
		sm->len = 0;
		return rv;
	}
	return 0;
}

/* Creates segment `seq` (blocking): header, fsync, directory fsync. */
static int create_segment(struct core_log *log, uint64_t seq)
{
	char name[64];
	int fd, rv;

	core_log_segment_name(name, sizeof name, seq);
	fd = openat(log->dir_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rv = write_header(fd, seq);
	if (rv == 0 && fsync(log->dir_fd) != 0)
		rv = -errno;
	close(fd);
	return rv;
}

/*
 * The segment's records, scanned up to sm->end (the end, or the start of a
 * torn tail), must reach its newest durable-end mark: the mark names bytes
 * that were durable when it was written (core_log.c, "durable-end marks"),
 * so a crash never leaves records ending below it; a file cut or zeroed
 * there does. A segment with records must hold a valid mark: page 0 was
 * written whole and synced when the segment was made, and later marks
 * rewrite one slot at a time.
 */
static int check_mark(struct replay *rp, struct seg_map *sm, const char *name, bool last)
{
	sm->marked = core_log_mark_read(sm->base, sm->len, sm->seq, &sm->mark) == 0;
	if (!sm->marked) {
		if (!sm->records && last)
			return 0; /* nothing to check; its marks start again */
		set_err(rp->err, rp->errlen,
			"%s/%s: offset %d: neither durable-end mark slot of page 0 is valid "
			"(page 0 was overwritten or zeroed), so whether records synced after "
			"offset %zu are lost cannot be told; refusing to start, nothing was "
			"deleted", rp->dir, name, CORE_LOG_MARK_SLOT0, sm->end);
		return RKV_ECORRUPT;
	}
	if (sm->mark.end <= sm->end)
		return 0;
	set_err(rp->err, rp->errlen,
		"%s/%s: offset %zu: its records end at offset %zu, but its durable-end mark "
		"(number %" PRIu64 ", written once they were synced) says records were synced "
		"up to offset %" PRIu64 ": the file was cut or zeroed, and the %" PRIu64 " bytes "
		"of records synced after offset %zu are lost; refusing to start, nothing was "
		"deleted", rp->dir, name, sm->end, sm->end, sm->mark.count, sm->mark.end,
		sm->mark.end - sm->end, sm->end);
	return RKV_ECORRUPT;
}

/* Scans every segment and replays it; see the essay at the top. */
static int replay_all(struct replay *rp, struct seg_map *maps, size_t n)
{
	const char *dir = rp->dir;
	size_t torn_at = SIZE_MAX; /* segment index with a torn tail */
	size_t torn_off = 0;
	char name[64];
	int rv;

	for (size_t k = 0; k < n; k++) {
		struct seg_map *sm = &maps[k];
		struct core_log_scanner sc;
		struct core_log_record r;
		enum core_log_scan_result res;

		rv = map_segment(rp, sm, k == n - 1, n == 1);
		if (rv != 0)
			return rv;
		core_log_segment_name(name, sizeof name, sm->seq);
		core_log_scan_init(&sc, sm->base, sm->len);
		while ((res = core_log_scan_next(&sc, &r)) == CORE_LOG_SCAN_RECORD) {
			size_t at = sc.offset - core_log_record_size(r.payload_len);
			const char *why;

			if (torn_at != SIZE_MAX) {
				char torn_name[64];

				core_log_segment_name(torn_name, sizeof torn_name,
						      maps[torn_at].seq);
				set_err(rp->err, rp->errlen,
					"%s/%s: offset %zu: bad record followed by valid data "
					"in %s", dir, torn_name, torn_off, name);
				return RKV_ECORRUPT;
			}
			if (!sm->records && r.kind != CORE_LOG_RETAIN) {
				set_err(rp->err, rp->errlen,
					"%s/%s: offset %zu: segment does not begin with its "
					"checkpoint", dir, name, at);
				return RKV_ECORRUPT;
			}
			/* Checkpointed once a record of the batch stored with
			 * the checkpoint parses: a crash can leave a prefix of
			 * that store (RETAIN and part of the items), and a
			 * segment counted as checkpointed then would never get
			 * its checkpoint again while retention deletes the older
			 * segments holding the only copy of some hard state. */
			if (sm->records && r.kind != CORE_LOG_RETAIN && r.kind != CORE_LOG_SEAL &&
			    r.kind != CORE_LOG_CHECKPOINT)
				sm->checkpointed = true;
			sm->records = true;
			if (r.kind == CORE_LOG_SEAL && k > 0 && maps[k - 1].seq == r.a &&
			    maps[k - 1].end != r.b) {
				char prev[64];

				core_log_segment_name(prev, sizeof prev, r.a);
				set_err(rp->err, rp->errlen,
					"%s/%s: offset %zu: its records end at offset %zu, but %s "
					"(begun once they were all synced) says they end at %" PRIu64
					": the file was cut or zeroed and the records synced after "
					"offset %zu are lost; refusing to start, nothing was "
					"deleted", dir, prev, maps[k - 1].end, maps[k - 1].end, name,
					r.b, maps[k - 1].end);
				return RKV_ECORRUPT;
			}
			why = apply(rp, sm, &r, &rv);
			if (why) {
				set_err(rp->err, rp->errlen, "%s/%s: offset %zu: %s (group %" PRIu64
					")", dir, name, at, why, r.group);
				return rv;
			}
		}
		sm->end = sc.offset;
		if (res == CORE_LOG_SCAN_END || (res == CORE_LOG_SCAN_TORN && !sc.cut)) {
			rv = check_mark(rp, sm, name, k == n - 1);
			if (rv != 0)
				return rv;
		}
		switch (res) {
		case CORE_LOG_SCAN_END:
			break;
		case CORE_LOG_SCAN_TORN:
			if (sc.cut) {
				set_err(rp->err, rp->errlen,
					"%s/%s: offset %zu: the file ends (at %zu bytes) inside "
					"a record, which a crash cannot do (records are stored "
					"only into space preallocated and made durable before "
					"them, so a torn write leaves zeros after it): the file "
					"was cut, and the records synced after offset %zu are "
					"lost; refusing to start, nothing was deleted", dir, name,
					sc.offset, sm->len, sc.offset);
				return RKV_ECORRUPT;
			}
			torn_at = k;
			torn_off = sc.offset;
			break;
		case CORE_LOG_SCAN_CORRUPT:
			set_err(rp->err, rp->errlen, "%s/%s: offset %zu: %s", dir, name,
				sc.offset, sc.reason);
			return RKV_ECORRUPT;
		case CORE_LOG_SCAN_RECORD:
			assert(false);
			break;
		}
	}
	for (size_t k = n; torn_at == SIZE_MAX && k-- > 0;) {
		struct seg_map *sm = &maps[k];

		if (!sm->records)
			continue;
		/* Segments are sized in whole pages (prepared with `prealloc`,
		 * grown to page multiples, a torn tail cut to the next page), so
		 * one that ends right after its last record at another size was
		 * cut at a record boundary. */
		if (sm->end == sm->len && sm->len % CORE_LOG_PAGE != 0) {
			core_log_segment_name(name, sizeof name, sm->seq);
			set_err(rp->err, rp->errlen,
				"%s/%s: offset %zu: the file ends right after a record, at a "
				"size the writer never gives a segment (not a multiple of %u "
				"bytes, no zeros after the records): it was cut at a record "
				"boundary, and the records synced after offset %zu are lost; "
				"refusing to start, nothing was deleted", dir, name, sm->len,
				CORE_LOG_PAGE, sm->len);
			return RKV_ECORRUPT;
		}
		break;
	}
	if (torn_at != SIZE_MAX) {
		struct seg_map *sm = &maps[torn_at];
		/* Zeros up to the next page: the file keeps a whole-page size. */
		off_t keep = (off_t)((torn_off + CORE_LOG_PAGE - 1) / CORE_LOG_PAGE * CORE_LOG_PAGE);

		core_log_segment_name(name, sizeof name, sm->seq);
		if (ftruncate(sm->fd, (off_t)torn_off) != 0 || ftruncate(sm->fd, keep) != 0 ||
		    fsync(sm->fd) != 0) {
			rv = -errno;
			set_err(rp->err, rp->errlen, "%s/%s: truncating torn tail at offset %zu: %s",
				dir, name, torn_off, strerror(-rv));
			return rv;
		}
		log_warn("core log %s/%s: torn tail of %zu bytes at offset %zu truncated", dir,
			 name, sm->len - torn_off, torn_off);
		rp->log->stats.torn_bytes += sm->len - torn_off;
	}
	return 0;
}

static int restore_groups(struct replay *rp)
{
	struct core_log *log = rp->log;

	for (uint32_t gi = 0; gi < log->ngroups; gi++) {
		struct core_log_group *g = &log->groups[gi];
		struct rec_entries *rec = gi < rp->nrecs ? &rp->recs[gi] : NULL;
		struct core_log_group_state st;
		int rv;

		if (!g->used)
			continue;
		g->staged = g->written;
		if (!log->cfg.restore)
			continue;
		memset(&st, 0, sizeof st);
		st.group = g->id;
		st.hard_state = g->written.hs;
		st.start_index = g->written.start_index;
		st.start_term = g->written.start_term;
		if (rec && rec->n > 0) {
			st.first_index = rec->first;
			st.entries = rec->v;
			st.n_entries = rec->n;
		}
		rv = log->cfg.restore(log->cfg.restore_arg, &st);
		if (rv != 0) {
			set_err(rp->err, rp->errlen, "%s: restoring group %" PRIu64 ": %s",
				rp->dir, g->id, rkv_strerror(rv));
			return rv;
		}
	}
	return 0;
}

/* The segments become the log's; the last one is mapped for appending. */
static int adopt(struct replay *rp, struct seg_map *maps, size_t n)
{
	struct core_log *log = rp->log;
	struct seg_map *last = &maps[n - 1];
	int rv;

	log->segs = calloc(n + 4, sizeof *log->segs);
	if (!log->segs)
		return -ENOMEM;
	log->segs_cap = n + 4;
	log->nsegs = n;
	for (size_t k = 0; k < n; k++) {
		log->segs[k].seq = maps[k].seq;
		log->segs[k].bytes = maps[k].end;
		if (maps[k].checkpointed)
			log->checkpoint_durable = maps[k].seq;
	}
	log->active_checkpointed = last->checkpointed;
	log->active_batches = last->records ? 1 : 0; /* size bound applies at once */
	log->offset = last->end;
	/* The records found are made durable before a mark may name them (a
	 * mark in page 0 may be written back before them). */
	if (fdatasync(last->fd) != 0) {
		rv = -errno;
		set_err(rp->err, rp->errlen, "%s: fdatasync of the last segment: %s", rp->dir,
			strerror(-rv));
		return rv;
	}
	log->durable_end = last->end;
	/* A trailing segment prepared ahead and never written: its checkpoint
	 * will seal the one before (synced now), as a switch at run time does. */
	if (n >= 2 && !last->records && maps[n - 2].records) {
		if (fdatasync(maps[n - 2].fd) != 0) {
			rv = -errno;
			set_err(rp->err, rp->errlen, "%s: fdatasync: %s", rp->dir, strerror(-rv));
			return rv;
		}
		log->sealed_seq = maps[n - 2].seq;
		log->sealed_end = maps[n - 2].end;
	}
	log->mark_end = last->marked ? last->mark.end : CORE_LOG_RECORDS_START;
	log->mark_count = last->marked ? last->mark.count : 1;
	rv = wal_map_open(&log->map, last->fd, log->cfg.segment_size + log->cfg.prealloc);
	if (rv != 0) {
		set_err(rp->err, rp->errlen, "%s: mapping the last segment: %s", rp->dir,
			strerror(-rv));
		return rv;
	}
	log->fd = last->fd;
	last->fd = -1;
	for (uint32_t gi = 0; gi < log->ngroups; gi++)
		if (log->groups[gi].used)
			core_log_group_repin(log, gi);
	log->retain_staged = log->retain_durable = rp->retain;
	log->stats.segments = n;
	return 0;
}

int core_log_open_segments(struct core_log *log, char *err, size_t errlen)
{
	const char *dir = log->cfg.dir;
	struct replay rp = { .log = log, .retain = 1, .err = err, .errlen = errlen, .dir = dir };
	struct seg_map *maps = NULL;
	uint64_t *seqs = NULL;
	size_t n = 0;
	int rv;

	rv = make_dirs(dir);
	if (rv != 0) {
		set_err(err, errlen, "%s: mkdir: %s", dir, strerror(-rv));
		return rv;
	}
	log->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (log->dir_fd < 0) {
		rv = -errno;
		set_err(err, errlen, "%s: open: %s", dir, strerror(-rv));
		return rv;
	}
	rv = list_segments(dir, log->dir_fd, true, &seqs, &n);
	if (rv != 0) {
		set_err(err, errlen, "%s: listing segments: %s", dir, strerror(-rv));
		return rv;
	}
	if (log->cfg.salvage_from) {
		size_t drop = 0;

		while (drop < n && seqs[drop] < log->cfg.salvage_from)
			drop++;
		memmove(seqs, seqs + drop, (n - drop) * sizeof *seqs);
		n -= drop;
		if (n == 0) {
			set_err(err, errlen, "%s: salvage: no segment from %" PRIu64 " on", dir,
				log->cfg.salvage_from);
			rv = RKV_ECORRUPT;
			goto out;
		}
	}
	if (n == 0) {
		rv = create_segment(log, 1);
		if (rv != 0) {
			set_err(err, errlen, "%s: creating the first segment: %s", dir,
				strerror(-rv));
			goto out;
		}
		free(seqs);
		seqs = malloc(sizeof *seqs);
		if (!seqs) {
			rv = -ENOMEM;
			goto out;
		}
		seqs[0] = 1;
		n = 1;
	}
	for (size_t k = 1; k < n; k++) {
		if (seqs[k] != seqs[k - 1] + 1) {
			char name[64];

			core_log_segment_name(name, sizeof name, seqs[k - 1] + 1);
			set_err(err, errlen, "%s/%s: offset 0: segment missing (between %" PRIu64
				" and %" PRIu64 ")", dir, name, seqs[k - 1], seqs[k]);
			rv = RKV_ECORRUPT;
			goto out;
		}
	}
	maps = calloc(n, sizeof *maps);
	if (!maps) {
		rv = -ENOMEM;
		goto out;
	}
	for (size_t k = 0; k < n; k++) {
		maps[k].seq = seqs[k];
		maps[k].fd = -1;
	}
	rv = replay_all(&rp, maps, n);
	if (rv != 0)
		goto out;
	if (seqs[0] > rp.retain && !log->cfg.salvage_from) {
		char name[64];

		core_log_segment_name(name, sizeof name, rp.retain);
		set_err(err, errlen, "%s/%s: offset 0: segment missing (the log keeps segments "
			"from %" PRIu64 " on, the oldest present is %" PRIu64 ")", dir, name,
			rp.retain, seqs[0]);
		rv = RKV_ECORRUPT;
		goto out;
	}
	rv = restore_groups(&rp);
	if (rv != 0)
		goto out;
	rv = adopt(&rp, maps, n);
out:
	/* Damage: the whole text in the log too (a core's start-up error
	 * reaches ringkvd's own message cut to 255 bytes). */
	if (rv == RKV_ECORRUPT)
		log_error("%s", err);
	if (maps)
		unmap_all(maps, n);
	for (size_t i = 0; i < rp.nrecs; i++)
		free(rp.recs[i].v);
	free(rp.recs);
	free(maps);
	free(seqs);
	return rv;
}

int core_log_check_holds(const struct core_log *log, uint64_t group, uint64_t index,
			 const char *holder, char *err, size_t errlen)
{
	uint32_t gi = core_log_group_find(log, group);
	const struct core_log_view *v;
	char first[64] = "", last[64] = "";

	if (index == 0)
		return 0;
	if (gi != CORE_LOG_NONE) {
		v = &log->groups[gi].written;
		if (v->start_index >= index || (v->has_entries && v->last_index >= index))
			return 0;
	}
	if (log->nsegs > 0) {
		core_log_segment_name(first, sizeof first, log->segs[0].seq);
		core_log_segment_name(last, sizeof last, log->segs[log->nsegs - 1].seq);
	}
	if (gi == CORE_LOG_NONE)
		set_err(err, errlen, "core log %s (%s..%s): no record of group %" PRIu64 ", but "
			"%s says its state up to index %" PRIu64 " came from this log, so the "
			"log held the group's hard state (term, vote), entry %" PRIu64 " and "
			"every acknowledged entry after it: they are lost (segments removed or "
			"cut); refusing to start, nothing was deleted (docs/DAMAGED-DATADIR.md)",
			log->cfg.dir, first, last, group, holder, index, index);
	else
		set_err(err, errlen, "core log %s (%s..%s): group %" PRIu64 "'s entries end at "
			"index %" PRIu64 ", but %s says its state up to index %" PRIu64 " came "
			"from this log, which always keeps that entry: entries %" PRIu64 "..%"
			PRIu64 " and every acknowledged one after them are lost (segments "
			"removed or cut); refusing to start, nothing was deleted "
			"(docs/DAMAGED-DATADIR.md)", log->cfg.dir, first, last, group,
			v->has_entries ? v->last_index : v->start_index, holder, index,
			(v->has_entries ? v->last_index : v->start_index) + 1, index);
	log_error("%s", err);
	return RKV_ECORRUPT;
}
