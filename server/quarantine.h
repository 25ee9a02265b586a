/*
 * DIR/quarantine/: files ringkv set aside instead of deleting them (a
 * damaged replica replaced by a snapshot, shard/shard_install.c; what
 * `ringkvd repair --yes` dropped, server/repair.c). ringkv never deletes
 * anything there; the operator does, once done with it.
 */
#ifndef RINGKV_SERVER_QUARANTINE_H
#define RINGKV_SERVER_QUARANTINE_H

#include <stdint.h>

struct quarantine_usage {
	unsigned entries;   /* names directly in DIR/quarantine */
	uint64_t bytes;     /* of every file below it */
	uint64_t free;      /* bytes free on its file system (0: unknown) */
	char newest[256];   /* the newest entry's name */
};

/*
 * Measures DIR/quarantine (blocking: start-up and tools only). 0 with *u
 * (all zero when there is no quarantine), or -errno.
 */
int quarantine_usage(const char *data_dir, struct quarantine_usage *u);

/*
 * At start-up: when DIR/quarantine holds anything, one warning with how
 * much, the newest entry, and how to remove it; an error-level line when
 * it takes more space than is left free (nothing is removed either way).
 */
void quarantine_report(const char *data_dir);

#endif
