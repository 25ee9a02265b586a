/*
 * DIR/BACKUP, written and parsed: see tools/backup_manifest.h. The parser
 * takes untrusted bytes: every line is checked for its exact shape, every
 * number for range, and the checksum before anything else.
 */
#include "tools/backup_manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard/crc32c.h"

struct text {
	char *buf;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static int put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt,
			      ap);
		va_end(ap);
		if (n < 0)
			return -EINVAL;
		if (t->buf && t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return 0;
		}
		size_t cap = t->cap ? t->cap * 2 : 4096;

		while (cap <= t->len + (size_t)n)
			cap *= 2;
		char *p = realloc(t->buf, cap);

		if (!p)
			return -ENOMEM;
		t->buf = p;
		t->cap = cap;
	}
}

int backup_manifest_format(const struct backup_manifest *m, char **out, size_t *len)
{
	struct text t = { 0 };
	int rv;

	rv = put(&t, "ringkv-backup %d\ncluster-id %016" PRIx64 "\nshards %" PRIu32
		 "\ncreated %" PRIu64 "\n", BACKUP_FORMAT_VERSION, m->cluster_id, m->shard_count,
		 m->created);
	for (uint32_t s = 0; s < m->shard_count && rv == 0; s++) {
		const struct backup_shard *sh = &m->shards[s];

		rv = put(&t, "shard %" PRIu32 " index %" PRIu64 " term %" PRIu64 " files %zu\n", s,
			 sh->index, sh->term, sh->file_count);
		for (size_t i = 0; i < sh->file_count && rv == 0; i++)
			rv = put(&t, "file %s %" PRIu64 " crc32c %08" PRIx32 "\n", sh->files[i].name,
				 sh->files[i].size, sh->files[i].crc32c);
	}
	if (rv == 0)
		rv = put(&t, "checksum %08" PRIx32 "\n", crc32c(0, t.buf, t.len));
	if (rv) {
		free(t.buf);
		return rv;
	}
	*out = t.buf;
	*len = t.len;
	return 0;
}

int backup_name_ok(const char *name)
{
	size_t digits = strspn(name, "0123456789"), len = strlen(name);

	if (strcmp(name, "MANIFEST") == 0)
		return 1;
	return digits > 0 && len == digits + 4 && len < BACKUP_NAME_MAX &&
	       strcmp(name + digits, ".sst") == 0;
}

/* The next line of the text (without its newline) into line[]; 0 at the end. */
struct cursor {
	const char *p, *end;
	unsigned lineno;
	char line[256];
};

static int next_line(struct cursor *c)
{
	const char *nl;
	size_t n;

	if (c->p >= c->end)
		return 0;
	nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
	if (!nl)
		return -1; /* the last line ends with a newline */
	n = (size_t)(nl - c->p);
	if (n >= sizeof c->line || memchr(c->p, '\0', n))
		return -1;
	memcpy(c->line, c->p, n);
	c->line[n] = '\0';
	c->p = nl + 1;
	c->lineno++;
	return 1;
}

__attribute__((format(printf, 4, 5))) static int bad(char *err, size_t errlen, unsigned lineno,
						     const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(err, errlen, "BACKUP line %u: ", lineno);

	if (n >= 0 && (size_t)n < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* sscanf with %n proves the whole line matched; numbers are checked for
 * their digits so "-1" or "+1" never pass as unsigned. */
static int digits_only(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s);
}

int backup_manifest_parse(const char *text, size_t len, struct backup_manifest *m, char *err,
			  size_t errlen)
{
	struct cursor c = { .p = text, .end = text + len };
	const char *last;
	char a[64], b[64], d[64], e[64];
	unsigned version;
	uint32_t sum;
	int end = -1;

	memset(m, 0, sizeof *m);
	/* The checksum line covers everything before it. */
	if (len < 2 || text[len - 1] != '\n')
		return bad(err, errlen, 0, "does not end with a newline (cut short?)");
	for (last = text + len - 1; last > text && last[-1] != '\n'; last--)
		;
	if (sscanf(last, "checksum %8[0-9a-f]%n", a, &end) != 1 || last + end != text + len - 1 ||
	    strlen(a) != 8)
		return bad(err, errlen, 0, "no checksum line at the end (cut short?)");
	sum = (uint32_t)strtoul(a, NULL, 16);
	if (crc32c(0, text, (size_t)(last - text)) != sum)
		return bad(err, errlen, 0, "checksum mismatch: the BACKUP file is damaged");
	c.end = last;
	if (next_line(&c) != 1 || sscanf(c.line, "ringkv-backup %u%n", &version, &end) != 1 ||
	    c.line[end] || version != BACKUP_FORMAT_VERSION)
		return bad(err, errlen, 1, "not a ringkv backup of format %d",
			   BACKUP_FORMAT_VERSION);
	if (next_line(&c) != 1 || sscanf(c.line, "cluster-id %16[0-9a-f]%n", a, &end) != 1 ||
	    c.line[end])
		return bad(err, errlen, c.lineno, "expected cluster-id");
	m->cluster_id = strtoull(a, NULL, 16);
	if (next_line(&c) != 1 || sscanf(c.line, "shards %10[0-9]%n", a, &end) != 1 ||
	    c.line[end] || !digits_only(a) || strtoul(a, NULL, 10) == 0 ||
	    strtoul(a, NULL, 10) > BACKUP_MAX_SHARDS)
		return bad(err, errlen, c.lineno, "expected shards 1..%u", BACKUP_MAX_SHARDS);
	m->shard_count = (uint32_t)strtoul(a, NULL, 10);
	if (next_line(&c) != 1 || sscanf(c.line, "created %20[0-9]%n", a, &end) != 1 ||
	    c.line[end])
		return bad(err, errlen, c.lineno, "expected created");
	m->created = strtoull(a, NULL, 10);
	m->shards = calloc(m->shard_count, sizeof *m->shards);
	if (!m->shards)
		return -ENOMEM;
	for (uint32_t s = 0; s < m->shard_count; s++) {
		struct backup_shard *sh = &m->shards[s];
		unsigned long long files;

		if (next_line(&c) != 1 ||
		    sscanf(c.line, "shard %20[0-9] index %20[0-9] term %20[0-9] files %20[0-9]%n", a,
			   b, d, e, &end) != 4 || c.line[end] || strtoull(a, NULL, 10) != s)
			goto bad_shard;
		sh->index = strtoull(b, NULL, 10);
		sh->term = strtoull(d, NULL, 10);
		files = strtoull(e, NULL, 10);
		if (files == 0 || files > 1000000)
			goto bad_shard;
		sh->files = calloc(files, sizeof *sh->files);
		if (!sh->files) {
			backup_manifest_free(m);
			return -ENOMEM;
		}
		sh->file_count = files;
		for (size_t i = 0; i < files; i++) {
			struct backup_file *f = &sh->files[i];

			if (next_line(&c) != 1 ||
			    sscanf(c.line, "file %31s %20[0-9] crc32c %8[0-9a-f]%n", f->name, a, b,
				   &end) != 3 || c.line[end] || strlen(b) != 8 ||
			    !backup_name_ok(f->name)) {
				backup_manifest_free(m);
				return bad(err, errlen, c.lineno, "expected a file line of shard %u",
					   s);
			}
			f->size = strtoull(a, NULL, 10);
			f->crc32c = (uint32_t)strtoul(b, NULL, 16);
		}
		if (strcmp(sh->files[files - 1].name, "MANIFEST") != 0) {
			backup_manifest_free(m);
			return bad(err, errlen, c.lineno, "shard %u's last file is not its MANIFEST",
				   s);
		}
	}
	if (next_line(&c) != 0) {
		backup_manifest_free(m);
		return bad(err, errlen, c.lineno + 1, "unexpected text after the last shard");
	}
	return 0;

bad_shard:
	backup_manifest_free(m);
	return bad(err, errlen, c.lineno, "expected the line of the next shard");
}

void backup_manifest_free(struct backup_manifest *m)
{
	if (m->shards)
		for (uint32_t s = 0; s < m->shard_count; s++)
			free(m->shards[s].files);
	free(m->shards);
	memset(m, 0, sizeof *m);
}
