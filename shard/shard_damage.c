/*
 * A table with a damaged block (issue 14): what the shard does once a read
 * or a compaction finds a block whose checksum fails.
 *
 * The table is marked damaged, first in memory (s->damage_new) and then in
 * the manifest (item 5, manifest.h), by an edit of its own that the
 * compaction job appends (shard_job.c, "marks"), so a restart remembers it
 * without reading the block again. While a table is damaged:
 * - no compaction takes it as an input (shard_damage_in_pick): merging past
 *   a hole would drop the newest value of the keys in the damaged block and
 *   let an older one (or a deleted one) come back, and moving it would
 *   lose its mark; compactions of other tables go on, so a shard whose
 *   damaged table lies away from the writes stays healthy around it;
 * - reads go on: a read that needs the damaged block answers RKV_ECORRUPT
 *   (DATA_LOSS to the client), every other key is served;
 * - when the compaction that is due needs the damaged table (level 0 over
 *   its range, say), it is held (s->compaction_blocked), and flushes go on
 *   until level 0 holds shard_damage_l0_limit() files; then they are held
 *   and shard_writes_refused() says so, so the node refuses new writes with
 *   a named status instead of growing level 0 without bound (57 files in
 *   15 s before this).
 * Invariant: s->damage_new lists tables of the current manifest version
 * not yet marked in it, each once; a table leaves it only when an edit
 * marking it is durable (or when the table left the version).
 * The way out is offline (`ringkvd repair`, docs/DAMAGED-DATADIR.md) or, for
 * a replica, a rebuild from its peers (docs/DAMAGED-DATADIR.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "shard/shard_internal.h"

static bool pending(const struct shard *s, uint64_t number)
{
	for (size_t i = 0; i < s->ndamage_new; i++)
		if (s->damage_new[i].number == number)
			return true;
	return false;
}

bool shard_damage_mark(struct shard *s, uint64_t number)
{
	const struct manifest_file *mf = manifest_version_find(&s->manifest, number);

	if (!mf)
		return true; /* read through an older version: nothing to mark */
	if (mf->damaged || pending(s, number))
		return false; /* known already */
	if (s->ndamage_new == s->damage_cap) {
		size_t cap = s->damage_cap ? s->damage_cap * 2 : 4;
		struct manifest_file_id *p = realloc(s->damage_new, cap * sizeof *p);

		if (!p) {
			/* Still known by compaction_broken; the mark is tried
			 * again at the next read of the block. */
			s->compaction_broken = true;
			return true;
		}
		s->damage_new = p;
		s->damage_cap = cap;
	}
	s->damage_new[s->ndamage_new].level = mf->level;
	s->damage_new[s->ndamage_new++].number = number;
	log_error("shard %u: table %06" PRIu64 ".sst (level %u) is damaged: it is never "
		  "compacted, its other blocks are still read; if level 0 fills behind it "
		  "(%u files) writes are refused (ringkvd repair, docs/DAMAGED-DATADIR.md)",
		  s->id, number, mf->level, shard_damage_l0_limit(s));
	return true;
}

size_t shard_damage_prepare(struct shard *s)
{
	size_t keep = 0;

	for (size_t i = 0; i < s->ndamage_new; i++) {
		const struct manifest_file *mf =
			manifest_version_find(&s->manifest, s->damage_new[i].number);

		if (!mf || mf->damaged)
			continue;
		s->damage_new[keep].level = mf->level;
		s->damage_new[keep++].number = mf->number;
	}
	s->ndamage_new = keep;
	return keep;
}

void shard_damage_recorded(struct shard *s, size_t n)
{
	if (n > s->ndamage_new)
		n = s->ndamage_new;
	if (n == 0)
		return;
	memmove(s->damage_new, s->damage_new + n, (s->ndamage_new - n) * sizeof *s->damage_new);
	s->ndamage_new -= n;
}

size_t shard_damaged_tables(const struct shard *s)
{
	return s->manifest.ndamaged + s->ndamage_new;
}

bool shard_compaction_stopped(const struct shard *s)
{
	return s->compaction_broken;
}

bool shard_damage_in_pick(const struct shard *s, const struct compaction *c)
{
	for (int k = 0; k < 2; k++) {
		const struct compaction_input *in = &c->inputs[k];

		for (size_t i = 0; i < in->count; i++) {
			const struct manifest_file *f =
				&s->manifest.levels[in->level].files[in->first + i];

			if (f->damaged || pending(s, f->number))
				return true;
		}
	}
	return false;
}

unsigned shard_damage_l0_limit(const struct shard *s)
{
	unsigned limit = 3 * s->compact_opt.l0_trigger;

	return limit < SHARD_DAMAGE_L0_MIN ? SHARD_DAMAGE_L0_MIN : limit;
}

bool shard_flush_held(const struct shard *s)
{
	return (s->compaction_broken || s->compaction_blocked) &&
	       s->manifest.levels[0].count >= shard_damage_l0_limit(s);
}

bool shard_writes_refused(const struct shard *s)
{
	return shard_flush_held(s);
}

uint64_t shard_damaged_table(const struct shard *s, unsigned i)
{
	if (i < s->ndamage_new)
		return s->damage_new[i].number;
	i -= (unsigned)s->ndamage_new;
	for (unsigned l = 0; l < MANIFEST_LEVELS; l++)
		for (size_t k = 0; k < s->manifest.levels[l].count; k++)
			if (s->manifest.levels[l].files[k].damaged && i-- == 0)
				return s->manifest.levels[l].files[k].number;
	return 0;
}

void shard_damage_open(struct shard *s)
{
	struct compaction c;

	/* Whether the compaction due is held is known before the first
	 * write, so a restart refuses at once what it refused before. */
	s->compaction_blocked = s->manifest.ndamaged > 0 &&
		compaction_pick(&s->manifest, &s->compact_opt, &s->cursor, &c) &&
		shard_damage_in_pick(s, &c);
	for (unsigned l = 0; l < MANIFEST_LEVELS; l++)
		for (size_t k = 0; k < s->manifest.levels[l].count; k++)
			if (s->manifest.levels[l].files[k].damaged)
				log_error("shard %u: table %06" PRIu64 ".sst (level %u) is marked "
					  "damaged in the manifest: it is never compacted%s "
					  "(ringkvd repair, docs/DAMAGED-DATADIR.md)", s->id,
					  s->manifest.levels[l].files[k].number, l,
					  shard_writes_refused(s) ? "; level 0 is full behind it: "
					  "writes are refused" : "");
}

void shard_damage_close(struct shard *s)
{
	struct manifest_edit e = { 0 };
	const char *why = NULL;
	uint8_t *buf = NULL;
	size_t len;

	struct stat st;

	/* Only onto a manifest that ends where the shard knows it ends: an
	 * append or a rewrite cut short by the close leaves it otherwise, and
	 * the marks are then found again at the next read of the blocks. */
	if (!s->manifest_busy && s->mrw_stage == 0 && s->ndamage_new > 0 && s->dir_fd >= 0 &&
	    shard_manifest_fd(s) == 0 &&
	    fstat(s->manifest_fd, &st) == 0 && (uint64_t)st.st_size == s->manifest_len &&
	    shard_damage_prepare(s) > 0) {
		e.damaged = s->damage_new;
		e.ndamaged = s->ndamage_new;
		len = manifest_edit_size(&e);
		buf = malloc(len);
	}
	if (buf) {
		manifest_edit_encode(&e, buf);
		if (pwrite(s->manifest_fd, buf, len, (off_t)s->manifest_len) != (ssize_t)len ||
		    fdatasync(s->manifest_fd) != 0) {
			log_error("shard %u: marking damaged tables in the manifest at close: %s "
				  "(they are found again when read)", s->id, strerror(errno));
			if (ftruncate(s->manifest_fd, (off_t)s->manifest_len) != 0)
				log_error("shard %u: manifest truncate: %s", s->id, strerror(errno));
		} else if (manifest_version_apply(&s->manifest, &e, &why) == 0) {
			s->manifest_len += len;
		}
		free(buf);
	}
	free(s->damage_new);
	s->damage_new = NULL;
	s->ndamage_new = s->damage_cap = 0;
}
