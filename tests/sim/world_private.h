/*
 * Private to tests/sim: what world.c (queue, network, disks, node life
 * cycle) and client.c (state machine, client operations) share.
 */
#ifndef RINGKV_TESTS_SIM_WORLD_PRIVATE_H
#define RINGKV_TESTS_SIM_WORLD_PRIVATE_H

#include "tests/sim/sim.h"

/* world.c */
void *world_xrealloc(void *p, size_t size);   /* aborts when out of memory */
void *world_xmemdup(const void *p, size_t len); /* NULL for len 0 */
void world_entries_free(struct raft_entry *e, uint64_t n);
uint64_t world_disk_last(const struct sim_disk *d);
/* raft_step() on n; the caller then passes the update on. */
int world_step_node(struct sim *s, struct sim_node *n,
		    const struct raft_event *ev, struct raft_update *up);
/* Carry out an update as raft.h's contract says, then run the checker. */
void world_handle_update(struct sim *s, struct sim_node *n,
			 const struct raft_update *up);
/* Create and start node id with an empty log and configuration conf. */
struct sim_node *world_node_new(struct sim *s, uint64_t id,
				const struct raft_conf *conf);

/* client.c */
void sm_restore(struct sim *s, struct sim_node *n, uint64_t index,
		const uint8_t *data, size_t len);
void sm_apply(struct sim *s, struct sim_node *n, uint64_t index,
	      const struct raft_entry *e);
/* Acknowledge or fail writes proposed to n at indexes from..to. */
void writes_settle(struct sim *s, struct sim_node *n, uint64_t from,
		   uint64_t to);
/* Complete n's confirmed reads whose index it has applied. */
void reads_poll(struct sim *s, struct sim_node *n);

#endif
