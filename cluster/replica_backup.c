/*
 * Online backups on the core that owns the replica: see
 * cluster/replica_backup.h and docs/OPERATIONS.md.
 *
 * BEGIN: ReadIndex (replica_read) gives a point P at or above every write
 * acknowledged before the request came (an acknowledged write is committed,
 * and the read index is the leader's commit index, confirmed by a majority
 * after the request arrived); once the shard applied up to P, its applied
 * index A >= P is the target. shard_backup_flush seals the memtables until
 * the flushed index F reaches A (polled every BEGIN_POLL_US on a core
 * timer); then the current version is pinned (shard_snapshot_begin) and
 * described: F, the term of F from Raft's log, the tables, the manifest
 * image. So the pinned files hold every acknowledged write from before the
 * BEGIN, and nothing that was not committed.
 *
 * Invariants: the pin table is this core's thread's own (thread-local: no
 * other core ever sees it); a pin holds its version from BEGIN to END,
 * expiry or replica_backup_stop, and is freed only with no read in flight
 * (`reading`; one read per pin at a time).
 */
#include "cluster/replica_backup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/replica_internal.h"
#include "core/errors.h"
#include "core/log.h"
#include "shard/shard_backup.h"

#define BEGIN_POLL_US 2000u
#define EXPIRY_TICK_US 1000000u

struct replica_backup_pin {
	bool used;
	bool reading;                 /* a chunk read is in flight */
	bool abandon;                 /* unpin when it lands */
	uint64_t id;
	uint64_t last_us;             /* last BEGIN/READ: the idle clock */
	struct replica *rep;
	struct shard_snapshot snap;
	struct replica_backup_call *reader;
};

struct backup_core {
	struct reactor *r;
	struct replica_backup_pin pins[REPLICA_BACKUP_MAX_PINS];
	struct replica_backup_call *waiting; /* BEGINs polling their flush */
	struct timer expiry;
	bool expiry_armed;
	uint32_t next_id;
};

static __thread struct backup_core core;

static struct backup_core *core_of(struct replica *rep)
{
	if (!core.r) {
		core.r = rep->core->r;
		timer_init(&core.expiry, NULL, &core);
		/* Ids differ across restarts of the node: a client holding
		 * one from before gets "no such backup", not someone else's. */
		core.next_id = (uint32_t)(core.r->now_us ^ (core.r->now_us >> 32));
	}
	return &core;
}

static void answer_later_fired(struct timer *t, void *arg)
{
	struct replica_backup_call *call = arg;

	(void)t;
	call->done(call);
}

/* done() must not run inside replica_backup_run: from the next loop pass. */
static void answer_later(struct backup_core *bc, struct replica_backup_call *call, int status)
{
	call->status = status;
	timer_init(&call->timer, NULL, call);
	reactor_timer_arm(bc->r, &call->timer, 0, answer_later_fired, call);
}

static void unpin(struct replica_backup_pin *p)
{
	shard_snapshot_end(&p->snap);
	memset(p, 0, sizeof *p);
}

static void expiry_fired(struct timer *t, void *arg)
{
	struct backup_core *bc = arg;
	bool any = false;

	(void)t;
	bc->expiry_armed = false;
	for (unsigned i = 0; i < REPLICA_BACKUP_MAX_PINS; i++) {
		struct replica_backup_pin *p = &bc->pins[i];

		if (!p->used)
			continue;
		if (!p->reading && bc->r->now_us - p->last_us > REPLICA_BACKUP_IDLE_US) {
			log_warn("replica %u: backup %016llx unused for %u s: unpinned",
				 p->rep->id, (unsigned long long)p->id,
				 REPLICA_BACKUP_IDLE_US / 1000000u);
			unpin(p);
			continue;
		}
		any = true;
	}
	if (any) {
		bc->expiry_armed = true;
		reactor_timer_arm(bc->r, &bc->expiry, EXPIRY_TICK_US, expiry_fired, bc);
	}
}

static struct replica_backup_pin *pin_find(struct backup_core *bc, uint64_t id)
{
	for (unsigned i = 0; i < REPLICA_BACKUP_MAX_PINS; i++)
		if (bc->pins[i].used && bc->pins[i].id == id)
			return &bc->pins[i];
	return NULL;
}

static void waiting_remove(struct backup_core *bc, struct replica_backup_call *call)
{
	for (struct replica_backup_call **pp = &bc->waiting; *pp; pp = &(*pp)->next) {
		if (*pp == call) {
			*pp = call->next;
			call->next = NULL;
			return;
		}
	}
}

/* The flush reached the target: pin and describe the version. */
static int pin_now(struct backup_core *bc, struct replica_backup_call *call)
{
	struct replica *rep = call->rep;
	struct replica_backup_pin *p = NULL;
	uint64_t term = 0;
	int rv;

	for (unsigned i = 0; i < REPLICA_BACKUP_MAX_PINS && !p; i++)
		if (!bc->pins[i].used)
			p = &bc->pins[i];
	if (!p)
		return RKV_EFULL;
	rv = shard_snapshot_begin(rep->shard, &p->snap);
	if (rv)
		return rv;
	if (p->snap.index > 0 && !raft_term_at(rep->raft, p->snap.index, &term)) {
		log_warn("replica %u: backup: flushed index %llu has no known term", rep->id,
			 (unsigned long long)p->snap.index);
		shard_snapshot_end(&p->snap);
		return RKV_EAGAIN;
	}
	call->files = calloc(p->snap.nfiles + 1, sizeof *call->files);
	if (!call->files) {
		shard_snapshot_end(&p->snap);
		return -ENOMEM;
	}
	memcpy(call->files, p->snap.files, p->snap.nfiles * sizeof *call->files);
	strcpy(call->files[p->snap.nfiles].name, "MANIFEST");
	call->files[p->snap.nfiles].size = p->snap.manifest_len;
	call->nfiles = p->snap.nfiles + 1;
	if (++bc->next_id == 0)
		bc->next_id = 1;
	p->used = true;
	p->id = (uint64_t)rep->id << 32 | bc->next_id;
	p->rep = rep;
	p->last_us = bc->r->now_us;
	call->backup_id = p->id;
	call->index = p->snap.index;
	call->term = term;
	log_info("replica %u: backup %016llx pinned at index %llu (%zu tables)", rep->id,
		 (unsigned long long)p->id, (unsigned long long)p->snap.index, p->snap.nfiles);
	if (!bc->expiry_armed) {
		bc->expiry_armed = true;
		reactor_timer_arm(bc->r, &bc->expiry, EXPIRY_TICK_US, expiry_fired, bc);
	}
	return 0;
}

static void poll_flush(struct timer *t, void *arg)
{
	struct replica_backup_call *call = arg;
	struct backup_core *bc = &core;
	int rv;

	(void)t;
	rv = shard_backup_flush(call->rep->shard, call->target);
	if (rv == 1 && bc->r->now_us < call->deadline_us) {
		reactor_timer_arm(bc->r, &call->timer, BEGIN_POLL_US, poll_flush, call);
		return;
	}
	waiting_remove(bc, call);
	if (rv == 1)
		rv = -ETIMEDOUT;
	if (rv == 0)
		rv = pin_now(bc, call);
	call->status = rv;
	call->done(call);
}

static void read_point(struct replica_read *rd, int status)
{
	struct replica_backup_call *call = rd->arg;
	struct backup_core *bc = &core;

	if (status != 0) {
		call->status = status;
		call->leader_hint = replica_leader(call->rep);
		call->done(call);
		return;
	}
	/* Every entry up to the read index is applied now; A >= it. */
	call->target = shard_applied_index(call->rep->shard);
	call->deadline_us = bc->r->now_us + REPLICA_BACKUP_BEGIN_TIMEOUT_US;
	call->next = bc->waiting;
	bc->waiting = call;
	timer_init(&call->timer, NULL, call);
	poll_flush(&call->timer, call);
}

static void chunk_done(struct shard_snapshot_chunk *c, int res)
{
	struct replica_backup_pin *p = c->arg;
	struct replica_backup_call *call = p->reader;

	p->reading = false;
	p->reader = NULL;
	if (p->abandon) {
		unpin(p);
		call->status = RKV_ENOTFOUND;
	} else if (res < 0) {
		call->status = res;
	} else {
		call->nread = (uint32_t)res;
		call->status = 0;
	}
	call->done(call);
}

static void do_read(struct backup_core *bc, struct replica_backup_call *call)
{
	struct replica_backup_pin *p = pin_find(bc, call->backup_id);
	uint64_t size;
	int rv;

	if (!p || p->rep != call->rep) {
		answer_later(bc, call, RKV_ENOTFOUND);
		return;
	}
	if (p->reading) {
		answer_later(bc, call, RKV_EFULL);
		return;
	}
	p->last_us = bc->r->now_us;
	if (call->file > p->snap.nfiles) {
		answer_later(bc, call, RKV_EINVAL);
		return;
	}
	size = call->file == p->snap.nfiles ? p->snap.manifest_len : p->snap.files[call->file].size;
	if (call->offset > size) {
		answer_later(bc, call, RKV_EINVAL);
		return;
	}
	if (size - call->offset < call->length)
		call->length = (uint32_t)(size - call->offset);
	call->nread = 0;
	if (call->length == 0) {
		answer_later(bc, call, 0);
		return;
	}
	if (call->file == p->snap.nfiles) {
		memcpy(call->buf, p->snap.manifest + call->offset, call->length);
		call->nread = call->length;
		answer_later(bc, call, 0);
		return;
	}
	call->chunk.done = chunk_done;
	call->chunk.arg = p;
	rv = shard_snapshot_read(&p->snap, call->file, call->offset, call->buf, call->length,
				 &call->chunk);
	if (rv) {
		answer_later(bc, call, rv);
		return;
	}
	p->reading = true;
	p->reader = call;
}

void replica_backup_run(struct replica *rep, struct replica_backup_call *call)
{
	struct backup_core *bc = core_of(rep);
	struct replica_backup_pin *p;
	int rv;

	call->rep = rep;
	call->status = 0;
	call->files = NULL;
	call->nfiles = 0;
	call->next = NULL;
	switch (call->op) {
	case REPLICA_BACKUP_BEGIN:
		if (raft_role(rep->raft) != RAFT_LEADER) {
			call->leader_hint = replica_leader(rep);
			answer_later(bc, call, RAFT_ENOTLEADER);
			return;
		}
		call->rread.done = read_point;
		call->rread.arg = call;
		rv = replica_read(rep, &call->rread);
		if (rv) {
			call->leader_hint = replica_leader(rep);
			answer_later(bc, call, rv);
		}
		return;
	case REPLICA_BACKUP_READ:
		do_read(bc, call);
		return;
	case REPLICA_BACKUP_END:
		p = pin_find(bc, call->backup_id);
		if (!p || p->rep != rep) {
			answer_later(bc, call, RKV_ENOTFOUND);
			return;
		}
		if (p->reading)
			p->abandon = true;
		else
			unpin(p);
		answer_later(bc, call, 0);
		return;
	default:
		answer_later(bc, call, RKV_EINVAL);
		return;
	}
}

bool replica_backup_stop(struct replica *rep)
{
	struct backup_core *bc = &core;
	bool quiet = true;

	if (!bc->r)
		return true; /* no backup ever ran on this core */
	for (unsigned i = 0; i < REPLICA_BACKUP_MAX_PINS; i++) {
		struct replica_backup_pin *p = &bc->pins[i];

		if (!p->used || p->rep != rep)
			continue;
		if (p->reading) {
			p->abandon = true;
			quiet = false;
		} else {
			log_info("replica %u: backup %016llx unpinned: the replica lets its "
				 "shard go", rep->id, (unsigned long long)p->id);
			unpin(p);
		}
	}
	for (struct replica_backup_call *call = bc->waiting, *next; call; call = next) {
		next = call->next;
		if (call->rep != rep)
			continue;
		waiting_remove(bc, call);
		reactor_timer_cancel(bc->r, &call->timer);
		call->status = RKV_ESHUTDOWN;
		call->done(call);
	}
	return quiet;
}
