/*
 * Data directory lock and the CLUSTER file; see server/datadir.h. The
 * recorded file is untrusted input: every field is parsed with a checked
 * error, never an assert.
 */
#include "server/datadir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/durable_file.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/strint.h"
#include "shard/core_log.h"
#include "shard/core_log_format.h"
#include "shard/route.h"

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


#define CLUSTER_FILE_MAX (96u << 10)   /* 64 nodes of 300 bytes fit many times */

static void format_nodes(const struct cluster_map *m, char *buf, size_t len)
{
	char addr[CONFIG_ADDR_MAX + 8];
	size_t used = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < m->node_count && used < len; i++) {
		config_format_address(m->nodes[i].host, m->nodes[i].port, addr, sizeof addr);
		used += (size_t)snprintf(buf + used, len - used, "%s%llu=%s", i ? "," : "",
					 (unsigned long long)m->nodes[i].id, addr);
	}
}

int datadir_cluster_format(const struct datadir_cluster *c, char *buf, size_t len)
{
	char addr[CONFIG_ADDR_MAX + 8];
	size_t used = 0;
	int n;

#define EMIT(...)                                                            \
	do {                                                                 \
		n = snprintf(buf + used, len - used, __VA_ARGS__);           \
		if (n < 0 || (size_t)n >= len - used)                        \
			return -ENOSPC;                                      \
		used += (size_t)n;                                           \
	} while (0)

	if (len == 0)
		return -ENOSPC;
	EMIT("ringkv-cluster 2\ncluster-id %016llx\nnode-id %llu\nnodes %u\n",
	     (unsigned long long)c->map.cluster_id, (unsigned long long)c->node_id,
	     c->map.node_count);
	for (unsigned i = 0; i < c->map.node_count; i++) {
		config_format_address(c->map.nodes[i].host, c->map.nodes[i].port, addr,
				      sizeof addr);
		EMIT("node %llu %s\n", (unsigned long long)c->map.nodes[i].id, addr);
	}
	EMIT("shards %u\nreplicas %u\ncores %u\n", c->map.shards, c->map.replicas, c->cores);
	if (c->token[0])
		EMIT("token %s\n", c->token);
	EMIT("map-version %llu\nplacement %016llx\n", (unsigned long long)c->map.version,
	     (unsigned long long)c->placement);
	if (c->slot_function != ROUTE_SLOT_FN_WHOLE_KEY)
		EMIT("slot-function %u\n", c->slot_function);
	EMIT("checksum %016llx\n", (unsigned long long)XXH3_64bits(buf, used));
#undef EMIT
	return (int)used;
}

/* A cursor over the lines of an untrusted text. */
struct lines {
	const char *p, *end;
	unsigned number;        /* of the line last taken, from 1 */
	char line[CONFIG_ADDR_MAX + 64];
	const char *value;      /* after "key " in line */
};

/* Takes the next line, which must start with "key "; false otherwise. */
static bool take(struct lines *l, const char *key)
{
	const char *nl = memchr(l->p, '\n', (size_t)(l->end - l->p));
	size_t len, klen = strlen(key);

	if (!nl)
		return false;
	len = (size_t)(nl - l->p);
	l->number++;
	/* Kept (cut short if need be) so that an error can quote it. */
	memcpy(l->line, l->p, len < sizeof l->line ? len : sizeof l->line - 1);
	l->line[len < sizeof l->line ? len : sizeof l->line - 1] = '\0';
	if (len >= sizeof l->line || len <= klen || memcmp(l->p, key, klen) != 0 ||
	    l->p[klen] != ' ' || memchr(l->p, '\0', len))
		return false;
	l->value = l->line + klen + 1;
	l->p = nl + 1;
	return true;
}

static bool take_u64(struct lines *l, const char *key, uint64_t min, uint64_t max,
		     uint64_t *v)
{
	return take(l, key) && strint_parse_u64(l->value, strlen(l->value), v) == 0 &&
	       *v >= min && *v <= max;
}

static bool take_hex(struct lines *l, const char *key, uint64_t *v)
{
	char *end;

	if (!take(l, key) || strlen(l->value) != 16 ||
	    strspn(l->value, "0123456789abcdef") != 16)
		return false;
	*v = strtoull(l->value, &end, 16);
	return true;
}

int datadir_cluster_parse(const char *text, size_t len, struct datadir_cluster *out,
			  char *err, size_t errlen)
{
	struct lines l = { .p = text, .end = text + len };
	const char *sum_at;
	uint64_t v, checksum;
	bool self = false;

	memset(out, 0, sizeof *out);
	if (take_u64(&l, "ringkv-cluster", 1, 1, &v)) {
		/* Version 1: a single-node ringkvd, node 1, R = 1. */
		if (!take_u64(&l, "shards", 1, CLUSTER_MAP_MAX_SHARDS, &v) || l.p != l.end)
			goto bad;
		out->file_version = 1;
		out->node_id = 1;
		out->map.node_count = 1;
		out->map.nodes[0].id = 1;
		out->map.shards = (uint32_t)v;
		out->map.replicas = 1;
		out->map.version = 1;
		out->slot_function = ROUTE_SLOT_FN_WHOLE_KEY;
		return 0;
	}
	l = (struct lines){ .p = text, .end = text + len };
	if (!take_u64(&l, "ringkv-cluster", 2, 2, &v)) {
		snprintf(err, errlen, "not a ringkv cluster file (version 1 or 2)");
		return -EINVAL;
	}
	out->file_version = 2;
	if (!take_hex(&l, "cluster-id", &out->map.cluster_id) || out->map.cluster_id == 0 ||
	    !take_u64(&l, "node-id", 1, UINT64_MAX, &out->node_id) ||
	    !take_u64(&l, "nodes", 1, CLUSTER_MAP_MAX_NODES, &v))
		goto bad;
	out->map.node_count = (uint32_t)v;
	for (unsigned i = 0; i < out->map.node_count; i++) {
		struct cluster_map_node *node = &out->map.nodes[i];
		char *space;

		if (!take(&l, "node"))
			goto bad;
		space = strchr(l.value, ' ');
		if (!space || strint_parse_u64(l.value, (size_t)(space - l.value), &node->id) ||
		    node->id == 0 || (i > 0 && node->id <= out->map.nodes[i - 1].id))
			goto bad;
		if (strcmp(space + 1, "-") != 0 &&
		    (config_parse_address(space + 1, node->host, sizeof node->host,
					  &node->port) != 0 || node->port == 0))
			goto bad;
		self |= node->id == out->node_id;
	}
	if (!self) {
		snprintf(err, errlen, "damaged: node-id %llu is not one of its nodes",
			 (unsigned long long)out->node_id);
		return -EINVAL;
	}
	if (!take_u64(&l, "shards", 1, CLUSTER_MAP_MAX_SHARDS, &v))
		goto bad;
	out->map.shards = (uint32_t)v;
	if (!take_u64(&l, "replicas", 1, out->map.node_count, &v))
		goto bad;
	out->map.replicas = (uint32_t)v;
	if (!take_u64(&l, "cores", 1, 1024, &v))
		goto bad;
	out->cores = (unsigned)v;
	if (l.p + 6 < l.end && !memcmp(l.p, "token ", 6)) {
		if (!take(&l, "token") || strlen(l.value) >= sizeof out->token || !l.value[0])
			goto bad;
		strcpy(out->token, l.value);
	}
	if (!take_u64(&l, "map-version", 1, UINT64_MAX, &out->map.version) ||
	    !take_hex(&l, "placement", &out->placement))
		goto bad;
	out->slot_function = ROUTE_SLOT_FN_WHOLE_KEY;
	if (l.p + 14 < l.end && !memcmp(l.p, "slot-function ", 14)) {
		if (!take_u64(&l, "slot-function", 1, ROUTE_SLOT_FN_MAX, &v))
			goto bad;
		out->slot_function = (unsigned)v;
	}
	sum_at = l.p;
	if (!take_hex(&l, "checksum", &checksum) || l.p != l.end)
		goto bad;
	if (checksum != XXH3_64bits(text, (size_t)(sum_at - text))) {
		snprintf(err, errlen, "damaged: its checksum does not match its contents");
		return -EINVAL;
	}
	return 0;

bad:
	for (char *c = l.line; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			*c = '?';
	snprintf(err, errlen, "damaged or not a ringkv cluster file: line %u%s%s%s", l.number,
		 l.number ? " ('" : "", l.number ? l.line : "", l.number ? "')" : "");
	return -EINVAL;
}

/* Lists the entries of `dir` only a node that ran there writes (shard-*,
 * core-*, OPENED) into buf ("shard-0, core-0, ..."); returns how many there
 * are, the shard directories among them in *shard_dirs. */
static unsigned find_node_files(const char *dir, char *buf, size_t len, unsigned *shard_dirs)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t used = 0;
	unsigned count = 0;

	buf[0] = '\0';
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "shard-", 6) != 0 && strncmp(e->d_name, "core-", 5) != 0 &&
		    strcmp(e->d_name, "OPENED") != 0)
			continue;
		*shard_dirs += strncmp(e->d_name, "shard-", 6) == 0;
		if (count < 8 && used < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%s",
						 count ? ", " : "", e->d_name);
		else if (count == 8 && used < len)
			used += (size_t)snprintf(buf + used, len - used, ", ...");
		count++;
	}
	closedir(d);
	return count;
}

int datadir_cluster_read(const char *dir, struct datadir_cluster *rec, char *err,
			 size_t errlen)
{
	char path[4200], found[256], why[512];
	char *text;
	ssize_t len;
	unsigned count, shard_dirs = 0;
	int fd, rv;

	snprintf(path, sizeof path, "%s/CLUSTER", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rv = -errno;
		if (rv != -ENOENT) {
			snprintf(err, errlen, "cannot open %s: %s", path, strerror(-rv));
			return rv;
		}
		count = find_node_files(dir, found, sizeof found, &shard_dirs);
		if (count == 0)
			return 0;
		/* The shard count, the replicas and the cores a shard lives on
		 * all come from CLUSTER: a new one made from today's flags may
		 * place the shards differently and read the wrong files. */
		snprintf(err, errlen,
			 "data dir %s holds %u shard director%s and %u other entr%s a node "
			 "writes once it has run there (%s) but no CLUSTER file; refusing to start, nothing was changed: the "
			 "placement of the shards cannot be trusted without it, and a new "
			 "cluster there would not be the one that wrote them. Restore %s from "
			 "a backup (or from a copy of the data dir), or, in a cluster of "
			 "several nodes, wipe this data dir and restart the node so its "
			 "replicas are rebuilt from its peers (docs/DAMAGED-DATADIR.md)",
			 dir, shard_dirs, shard_dirs == 1 ? "y" : "ies", count - shard_dirs,
			 count - shard_dirs == 1 ? "y" : "ies", found, path);
		return -ENOENT;
	}
	text = malloc(CLUSTER_FILE_MAX + 1);
	if (!text) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	len = read(fd, text, CLUSTER_FILE_MAX + 1);
	rv = len < 0 ? -errno : 0;
	close(fd);
	if (rv) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-rv));
	} else if ((size_t)len > CLUSTER_FILE_MAX) {
		snprintf(err, errlen, "%s is damaged: longer than %u bytes", path,
			 CLUSTER_FILE_MAX);
		rv = -EINVAL;
	} else if (datadir_cluster_parse(text, (size_t)len, rec, why, sizeof why) != 0) {
		snprintf(err, errlen, "%s is %s", path, why);
		rv = -EINVAL;
	}
	free(text);
	return rv ? rv : 1;
}

/* The readable PLACEMENT list: one line per shard. */
static int write_placement(const char *dir, const struct datadir_cluster *c, char *err,
			   size_t errlen)
{
	const struct cluster_map *m = &c->map;
	int self = cluster_map_index(m, c->node_id);
	size_t cap = 512 + (size_t)m->shards * (48 + 21 * m->replicas), used = 0;
	char *text = malloc(cap);
	uint64_t ids[CLUSTER_MAP_MAX_NODES];
	int rv;

	if (!text) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	used += (size_t)snprintf(text + used, cap - used,
		"# ringkv placement of cluster %016llx as node %llu (%u cores) sees it.\n"
		"# Derived from CLUSTER, whose \"placement\" line is its hash; for reading.\n"
		"# shard: replica node ids, preferred leader first; core on this node\n",
		(unsigned long long)m->cluster_id, (unsigned long long)c->node_id, c->cores);
	for (uint32_t s = 0; s < m->shards; s++) {
		unsigned n = cluster_map_replica_ids(m, s, ids);

		used += (size_t)snprintf(text + used, cap - used, "shard %u:", s);
		for (unsigned k = 0; k < n; k++)
			used += (size_t)snprintf(text + used, cap - used, " %llu",
						 (unsigned long long)ids[k]);
		if (self >= 0 && cluster_map_rank(m, s, (unsigned)self) >= 0)
			used += (size_t)snprintf(text + used, cap - used, "; core %u\n",
						 cluster_map_core(m, s, c->cores));
		else
			used += (size_t)snprintf(text + used, cap - used, "; not here\n");
	}
	rv = durable_file_replace(dir, "PLACEMENT", text, used);
	free(text);
	if (rv)
		snprintf(err, errlen, "cannot write %s/PLACEMENT: %s", dir, strerror(-rv));
	return rv;
}

int datadir_cluster_write(const char *dir, const struct datadir_cluster *c, char *err,
			  size_t errlen)
{
	char *text = malloc(CLUSTER_FILE_MAX);
	int len, rv;

	if (!text) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rv = write_placement(dir, c, err, errlen);
	len = rv ? rv : datadir_cluster_format(c, text, CLUSTER_FILE_MAX);
	if (rv == 0 && len < 0) {
		snprintf(err, errlen, "cluster file too long");
		rv = len;
	}
	if (rv == 0) {
		rv = durable_file_replace(dir, "CLUSTER", text, (size_t)len);
		if (rv)
			snprintf(err, errlen, "cannot write %s/CLUSTER: %s", dir, strerror(-rv));
	}
	free(text);
	return rv;
}

/* Appends one line "  what: recorded X, given Y" to the refusal. */
static void differs(char *err, size_t errlen, size_t *used, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void differs(char *err, size_t errlen, size_t *used, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*used >= errlen)
		return;
	va_start(ap, fmt);
	n = vsnprintf(err + *used, errlen - *used, fmt, ap);
	va_end(ap);
	if (n > 0)
		*used += (size_t)n;
}

/*
 * Every difference between the recorded identity and the one the flags
 * give, one line each, after a first line that says whose directory it is.
 * Returns how many there are.
 */
static unsigned compare(const char *dir, const struct datadir_cluster *rec,
			const struct datadir_cluster *given, const struct config *cfg,
			char *err, size_t errlen)
{
	static char have[CLUSTER_MAP_MAX_NODES * (CONFIG_ADDR_MAX + 32)];
	static char want[sizeof have];
	size_t used = 0;
	unsigned count = 0;
	bool same_nodes = rec->map.node_count == given->map.node_count;
	/* Without --initial-cluster the one node's id is --node-id: a changed
	 * id is said once, on the --node-id line. */
	bool ids_said = !cfg->initial_given && rec->map.node_count == 1 &&
			given->map.node_count == 1;

	if (rec->file_version == 1)
		differs(err, errlen, &used, "data dir %s was made by a single-node ringkvd "
			"(CLUSTER version 1: node 1, %u shards); refusing to start:",
			dir, rec->map.shards);
	else
		differs(err, errlen, &used, "data dir %s belongs to node %llu of cluster "
			"%016llx (%u node%s, %u shards, R=%u, %u cores); refusing to start:",
			dir, (unsigned long long)rec->node_id,
			(unsigned long long)rec->map.cluster_id, rec->map.node_count,
			rec->map.node_count == 1 ? "" : "s", rec->map.shards,
			rec->map.replicas, rec->cores);
	if (rec->node_id != given->node_id) {
		differs(err, errlen, &used, "\n  started as node %llu (--node-id); recorded "
			"node %llu", (unsigned long long)given->node_id,
			(unsigned long long)rec->node_id);
		count++;
	}
	for (unsigned i = 0; same_nodes && i < rec->map.node_count; i++) {
		const struct cluster_map_node *a = &rec->map.nodes[i], *b = &given->map.nodes[i];

		/* A version 1 file knew no address: any is accepted for node 1. */
		same_nodes = (a->id == b->id || ids_said) &&
			     (rec->file_version == 1 ||
			      (a->port == b->port && !strcmp(a->host, b->host)));
	}
	if (!same_nodes) {
		if (rec->file_version == 1)
			snprintf(have, sizeof have, "none (a one-node cluster)");
		else
			format_nodes(&rec->map, have, sizeof have);
		format_nodes(&given->map, want, sizeof want);
		differs(err, errlen, &used, "\n  --initial-cluster: recorded %s; given %s%s",
			have, want, cfg->initial_given ? "" :
			" (none given: a one-node cluster of --node-id and --peer-listen)");
		count++;
	}
	if (rec->map.shards != given->map.shards) {
		differs(err, errlen, &used, "\n  --shards: recorded %u, given %u",
			rec->map.shards, given->map.shards);
		count++;
	}
	if (rec->map.replicas != given->map.replicas) {
		differs(err, errlen, &used, "\n  --replicas: recorded %u, given %u%s",
			rec->map.replicas, given->map.replicas,
			cfg->replicas ? "" : " (the default for the nodes given)");
		count++;
	}
	if (rec->cores && rec->cores != given->cores) {
		differs(err, errlen, &used, "\n  --cores: recorded %u, given %u (a replica's "
			"Raft log lives in its core's WAL: changing the core count is not "
			"supported yet)", rec->cores, given->cores);
		count++;
	}
	if (rec->file_version == 2 && strcmp(rec->token, given->token)) {
		differs(err, errlen, &used, "\n  --cluster-token: recorded %s%s%s, given %s%s%s",
			rec->token[0] ? "'" : "", rec->token[0] ? rec->token : "none",
			rec->token[0] ? "'" : "", given->token[0] ? "'" : "",
			given->token[0] ? given->token : "none", given->token[0] ? "'" : "");
		count++;
	}
	if (count == 0 && rec->file_version == 2 &&
	    rec->map.cluster_id != given->map.cluster_id) {
		differs(err, errlen, &used, "\n  cluster id: recorded %016llx, computed %016llx "
			"from the same flags (this build derives cluster ids differently)",
			(unsigned long long)rec->map.cluster_id,
			(unsigned long long)given->map.cluster_id);
		count++;
	}
	if (count == 0 && rec->file_version == 2 && rec->placement != given->placement) {
		differs(err, errlen, &used, "\n  placement: recorded %016llx, computed %016llx "
			"from the same flags (this build places replicas differently from "
			"the one that made the data dir)", (unsigned long long)rec->placement,
			(unsigned long long)given->placement);
		count++;
	}
	return count;
}

int datadir_cluster_open(const char *dir, const struct config *cfg, unsigned cpus,
			 struct datadir_cluster *out, char *err, size_t errlen)
{
	static struct datadir_cluster rec;
	struct cluster_map_node nodes[CLUSTER_MAP_MAX_NODES];
	unsigned n = cfg->initial_count, shards, replicas;
	char path[4200];
	bool found;
	int rv;

	rv = datadir_cluster_read(dir, &rec, err, errlen);
	if (rv < 0)
		return rv;
	found = rv == 1;

	/* What the flags leave open comes from the record, else the defaults. */
	memset(out, 0, sizeof *out);
	out->node_id = cfg->node_id;
	out->cores = cfg->cores ? cfg->cores : found && rec.cores ? rec.cores : cpus;
	shards = cfg->shards ? cfg->shards : found ? rec.map.shards : out->cores * n;
	if (shards > CLUSTER_MAP_MAX_SHARDS)
		shards = CLUSTER_MAP_MAX_SHARDS;
	replicas = cfg->replicas ? cfg->replicas
		   : found && rec.map.replicas <= n ? rec.map.replicas : n < 3 ? n : 3;
	strcpy(out->token, cfg->cluster_token[0] || !found ? cfg->cluster_token : rec.token);
	for (unsigned i = 0; i < n; i++) {
		memset(&nodes[i], 0, sizeof nodes[i]);
		nodes[i].id = cfg->initial[i].id;
		strcpy(nodes[i].host, cfg->initial[i].host);
		nodes[i].port = cfg->initial[i].port;
	}
	rv = cluster_map_init(&out->map, nodes, n, shards, replicas, out->token, err, errlen);
	if (rv)
		return rv;
	out->placement = cluster_map_placement_hash(&out->map, out->cores);
	out->file_version = 2;
	/* Recorded keys stay where the recorded function put them. */
	out->slot_function = found ? rec.slot_function : ROUTE_SLOT_FN_DEFAULT;

	if (found && compare(dir, &rec, out, cfg, err, errlen) > 0)
		return -EINVAL;
	if (found && rec.file_version == 2) {
		out->map.version = rec.map.version;
		snprintf(path, sizeof path, "%s/PLACEMENT", dir);
		if (access(path, F_OK) == 0)
			return 0;
		log_warn("%s is missing: writing it again from CLUSTER", path);
		return write_placement(dir, out, err, errlen);
	}
	if (found)
		log_info("%s/CLUSTER: upgrading version 1 (single node, %u shards) to "
			 "version 2 (cluster %016llx)", dir, rec.map.shards,
			 (unsigned long long)out->map.cluster_id);
	return datadir_cluster_write(dir, out, err, errlen);
}

/* ---- the whole-directory check ------------------------------------------ */

/* Appends `name` to a short list ("a, b, ..."): at most 8 names. */
static void list_add(char *buf, size_t len, size_t *used, unsigned *count, const char *name)
{
	if (*count < 8 && *used < len)
		*used += (size_t)snprintf(buf + *used, len - *used, "%s%s", *count ? ", " : "",
					  name);
	else if (*count == 8 && *used < len)
		*used += (size_t)snprintf(buf + *used, len - *used, ", ...");
	(*count)++;
}

/* Top-level names ringkv writes (durable_file_replace's temp files too). */
static bool top_entry_known(const char *name, const struct datadir_cluster *c)
{
	static const char *const files[] = { ".", "..", "LOCK", "CLUSTER", "CLUSTER.tmp",
					     "PLACEMENT", "PLACEMENT.tmp", "OPENED",
					     "OPENED.tmp", "lost+found", "quarantine",
					     "DATADIR-ID", "DATADIR-ID.tmp" };
	uint64_t id;

	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		if (!strcmp(name, files[i]))
			return true;
	if (!strncmp(name, "shard-", 6)) {
		static const char *const suffixes[] = {
			".incoming",                      /* a snapshot's staging dir */
			".conf", ".conf.tmp",             /* the group's membership record */
			".joining", ".joining.tmp",       /* a replica not caught up yet */
			".amnesiac", ".amnesiac.tmp",     /* its core log lost a vote? */
		};
		size_t len = strlen(name + 6);

		for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
			size_t n = strlen(suffixes[i]);

			if (len > n && !strcmp(name + 6 + len - n, suffixes[i])) {
				len -= n;
				break;
			}
		}
		return strint_parse_u64(name + 6, len, &id) == 0 && id < c->map.shards;
	}
	if (!strncmp(name, "hosting-", 8)) {
		/* The replicas a core hosts beyond CLUSTER's placement. */
		size_t len = strlen(name + 8);

		if (len > 4 && !strcmp(name + 8 + len - 4, ".tmp"))
			len -= 4;
		return strint_parse_u64(name + 8, len, &id) == 0 && id < c->cores;
	}
	return !strncmp(name, "core-", 5) &&
	       strint_parse_u64(name + 5, strlen(name + 5), &id) == 0 && id < c->cores;
}

/*
 * Core `core`'s Raft log directory once the node has run: it must hold a
 * segment with at least a whole header. The log creates its first segment
 * (header, fsync) when it opens, and never deletes the newest; so no segment
 * at all, or only one shorter than a header, means segments were removed or
 * cut, and with them the hard state and every entry after the shards'
 * flushed indexes (the core log's own checks, core_log_open, cover the
 * segments that are there).
 */
static int core_log_dir_check(const char *dir, unsigned core, char *err, size_t errlen)
{
	char path[4200], short_name[300] = "";
	unsigned whole = 0;
	off_t short_size = 0;
	struct dirent *e;
	struct stat st;
	DIR *d;

	snprintf(path, sizeof path, "%s/core-%u", dir, core);
	d = opendir(path);
	if (!d) {
		snprintf(err, errlen, "%s: %s, but the node has run on data dir %s before "
			 "(%s/OPENED): core %u's Raft log was there, with the hard state (term, "
			 "vote) and every entry after the flushed index of each shard on the core; "
			 "refusing to start, nothing was changed (docs/DAMAGED-DATADIR.md: restore "
			 "it, or rebuild the node from its peers)", path,
			 errno == ENOENT ? "missing" : strerror(errno), dir, dir, core);
		return RKV_ECORRUPT;
	}
	while ((e = readdir(d))) {
		uint64_t seq;

		if (core_log_segment_name_parse(e->d_name, &seq) != 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, 0) == 0 &&
		    st.st_size >= CORE_LOG_SEGMENT_HEADER_SIZE) {
			whole++;
		} else if (!short_name[0]) {
			snprintf(short_name, sizeof short_name, "%s", e->d_name);
			short_size = st.st_size;
		}
	}
	closedir(d);
	if (whole > 0)
		return 0;
	if (short_name[0]) {
		snprintf(err, errlen, "%s/%s: %lld bytes, shorter than a segment header, and "
			 "no other segment in %s, but the node has run on data dir %s before "
			 "(%s/OPENED): core %u's Raft log held the hard state (term, vote) and "
			 "every acknowledged entry after the flushed index of each shard on the "
			 "core, and they would be gone; refusing to start, nothing was changed "
			 "(docs/DAMAGED-DATADIR.md: restore the segments, or rebuild the node from "
			 "its peers)", path, short_name, (long long)short_size, path, dir, dir,
			 core);
		return RKV_ECORRUPT;
	}
	snprintf(err, errlen, "%s: %s, but the node has run on data dir %s before (%s/OPENED): "
		 "core %u's Raft log held the hard state (term, vote) and every acknowledged "
		 "entry after the flushed index of each shard on the core, and they would be "
		 "gone; refusing to start, nothing was changed (docs/DAMAGED-DATADIR.md: restore "
		 "the segments, or rebuild the node from its peers)", path,
		 "no log segment (log-*.log)", dir, dir, core);
	return RKV_ECORRUPT;
}

int datadir_check_whole(const char *dir, const struct datadir_cluster *c, char *err,
			size_t errlen)
{
	int self = cluster_map_index(&c->map, c->node_id);
	unsigned missing = 0, strays = 0;
	char path[4200], names[256] = "", stray_names[256] = "";
	size_t used = 0, stray_used = 0;
	struct dirent *e;
	struct stat st;
	bool opened;
	DIR *d;
	int rv;

	snprintf(path, sizeof path, "%s/OPENED", dir);
	opened = access(path, F_OK) == 0;
	/* Without OPENED, a first start that stopped part way (another
	 * core's shard refused, a port in use) may have made only some of
	 * the directories: nothing is missing yet. */
	for (uint32_t s = 0; opened && self >= 0 && s < c->map.shards; s++) {
		char name[32];

		if (cluster_map_rank(&c->map, s, (unsigned)self) < 0)
			continue;
		snprintf(path, sizeof path, "%s/shard-%u", dir, s);
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			continue;
		snprintf(name, sizeof name, "shard-%u", s);
		list_add(names, sizeof names, &used, &missing, name);
	}
	if (missing > 0) {
		snprintf(err, errlen, "data dir %s: %u shard director%s missing (%s), but "
			 "CLUSTER places %s on this node and the node has run on this data dir "
			 "before (%s/OPENED): the keys %s held would be gone; refusing to start "
			 "rather than re-create %s empty, nothing was changed. Restore %s from a "
			 "backup, or rebuild the node from its peers (docs/DAMAGED-DATADIR.md)",
			 dir, missing, missing == 1 ? "y is" : "ies are", names,
			 missing == 1 ? "it" : "them", dir, missing == 1 ? "it" : "they",
			 missing == 1 ? "it" : "them", missing == 1 ? "it" : "them");
		return RKV_ECORRUPT;
	}
	for (unsigned core = 0; opened && core < c->cores; core++) {
		rv = core_log_dir_check(dir, core, err, errlen);
		if (rv)
			return rv;
	}
	d = opendir(dir);
	if (!d) {
		rv = -errno;
		snprintf(err, errlen, "cannot list %s: %s", dir, strerror(errno));
		return rv;
	}
	while ((e = readdir(d)))
		if (!top_entry_known(e->d_name, c))
			list_add(stray_names, sizeof stray_names, &stray_used, &strays, e->d_name);
	closedir(d);
	if (strays > 0)
		log_warn("data dir %s: %u entr%s ringkv does not write (or not of this cluster "
			 "of %u shards on %u cores): %s; left alone", dir, strays,
			 strays == 1 ? "y" : "ies", c->map.shards, c->cores, stray_names);
	return 0;
}

int datadir_mark_opened(const char *dir, char *err, size_t errlen)
{
	static const char text[] = "ringkv-opened 1\n";
	char path[4200];
	int rv;

	snprintf(path, sizeof path, "%s/OPENED", dir);
	if (access(path, F_OK) == 0)
		return 0;
	rv = durable_file_replace(dir, "OPENED", text, sizeof text - 1);
	if (rv)
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(-rv));
	return rv;
}
