/*
 * Native shard-move requests (Request.shard_move, docs/cluster/membership.md):
 * run on the core that holds this node's replica of the shard; a node that
 * holds none, or whose replica does not lead, answers NOT_LEADER with the
 * leader it knows as leader_hint (the CLI asks there).
 */
#ifndef RINGKV_SERVER_MOVE_H
#define RINGKV_SERVER_MOVE_H

#include <stdbool.h>

struct node_core;
struct conn;
struct frame_request;

/* Answers FRAME_OP_SHARD_MOVE (true: handled, the answer follows on `conn`);
 * false for every other op. */
bool move_submit(struct node_core *c, struct conn *conn, const struct frame_request *fr);

#endif
