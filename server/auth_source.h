/*
 * The sources of AUTHs on a core (server/auth.h says what they are for):
 * a fixed table of AUTH_SOURCES entries, one per IPv4 address or IPv6 /64
 * (an IPv4-mapped IPv6 address counts whole), found by a hash keyed with a
 * random secret of the core, so that no one can choose addresses that
 * collide with a victim's. A source may sit in any of the AUTH_SOURCE_PROBE
 * entries from its hash on (its window). An entry is reused only when it
 * holds no connection, no AUTH and no recent failure, the stalest first; a
 * source whose window has no such entry shares the table's overflow entry.
 *
 * Entries never move: a connection and a job keep a plain pointer to
 * theirs while they count in it (what keeps it from reuse). No allocation;
 * one core's only.
 */
#ifndef RINGKV_SERVER_AUTH_SOURCE_H
#define RINGKV_SERVER_AUTH_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_SOURCES 1024u             /* source addresses remembered per core */
#define AUTH_SOURCE_PROBE 16u          /* entries a source may sit in, from its hash */
#define AUTH_SOURCE_SECRET 192u        /* bytes of the hash key (XXH3 wants 136 or more) */
#define AUTH_FAIL_FORGET_US 60000000u  /* failures forgotten after a quiet minute */

/* A peer's address. */
struct auth_addr {
	uint8_t family;                  /* AF_INET / AF_INET6 / 0 (unknown) */
	uint16_t port;
	uint8_t addr[16];
};

struct auth_source {
	uint8_t key[16];                    /* the address (an IPv6 one cut to /64) */
	uint8_t family;                     /* 0: free */
	bool busy;                          /* one of its jobs is computing */
	bool failed_mixed;                  /* its failures were against several names */
	uint16_t unauth;                    /* open unauthenticated connections */
	uint16_t jobs;                      /* its jobs queued or under way */
	uint16_t failures;                  /* consecutive failed AUTHs */
	uint64_t failed_name;               /* keyed hash of the name they were against */
	uint64_t next_try_us;               /* no verification before this */
	uint64_t last_us;                   /* last use, for reuse */
	uint64_t last_failure_us;
};

struct auth_sources {
	uint8_t secret[AUTH_SOURCE_SECRET]; /* keys the hashes: the caller fills it */
	struct auth_source entries[AUTH_SOURCES];
	struct auth_source overflow;        /* sources that found no entry */
	uint64_t overflowed;                /* lookups the overflow entry took */
};

/* An empty table (the secret left as it is). */
void auth_sources_init(struct auth_sources *t);

/*
 * The entry of `peer`'s source at time `now`, made if need be: its own, a
 * free or reusable entry of its window (the stalest), else &t->overflow.
 * NULL only when the address is unknown (family 0).
 */
struct auth_source *auth_source_of(struct auth_sources *t, const struct auth_addr *peer,
				   uint64_t now);

/* The first entry of `peer`'s window (an index into t->entries). */
unsigned auth_source_slot(const struct auth_sources *t, const struct auth_addr *peer);

/* Whether s failed lately: its entry must not be reused, or the failures
 * would be forgotten. */
bool auth_source_failing(const struct auth_source *s, uint64_t now);

/* A hash of p[0, len) keyed with the table's secret (user names). */
uint64_t auth_sources_hash(const struct auth_sources *t, const void *p, size_t len);

#endif
