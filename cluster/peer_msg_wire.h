/*
 * What the peer encoder (peer_msg.c) and decoder (peer_msg_decode.c) share:
 * protobuf wire types, the check that peer.proto's enums are raft.h's, and
 * the few value rules both sides apply (a receiver refuses exactly what a
 * sender refuses to write). Private to cluster/peer_msg*.c.
 */
#ifndef RINGKV_CLUSTER_PEER_MSG_WIRE_H
#define RINGKV_CLUSTER_PEER_MSG_WIRE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cluster/peer_msg.h"
#include "peer.pb.h"

/* Protobuf wire types. */
#define WT_VARINT 0u
#define WT_FIXED64 1u
#define WT_LEN 2u
#define WT_FIXED32 5u

/* The enums of peer.proto are raft.h's, value for value. */
_Static_assert((int)ringkv_peer_MessageType_MSG_PREVOTE == (int)RAFT_MSG_PREVOTE &&
	       (int)ringkv_peer_MessageType_MSG_PREVOTE_RESP == (int)RAFT_MSG_PREVOTE_RESP &&
	       (int)ringkv_peer_MessageType_MSG_VOTE == (int)RAFT_MSG_VOTE &&
	       (int)ringkv_peer_MessageType_MSG_VOTE_RESP == (int)RAFT_MSG_VOTE_RESP &&
	       (int)ringkv_peer_MessageType_MSG_APPEND == (int)RAFT_MSG_APPEND &&
	       (int)ringkv_peer_MessageType_MSG_APPEND_RESP == (int)RAFT_MSG_APPEND_RESP &&
	       (int)ringkv_peer_MessageType_MSG_HEARTBEAT == (int)RAFT_MSG_HEARTBEAT &&
	       (int)ringkv_peer_MessageType_MSG_HEARTBEAT_RESP == (int)RAFT_MSG_HEARTBEAT_RESP &&
	       (int)ringkv_peer_MessageType_MSG_SNAPSHOT == (int)RAFT_MSG_SNAPSHOT &&
	       (int)ringkv_peer_MessageType_MSG_SNAPSHOT_RESP == (int)RAFT_MSG_SNAPSHOT_RESP &&
	       (int)ringkv_peer_MessageType_MSG_TIMEOUT_NOW == (int)RAFT_MSG_TIMEOUT_NOW,
	       "peer.proto MessageType must match enum raft_msg_type");
_Static_assert((int)ringkv_peer_EntryType_ENTRY_NORMAL == (int)RAFT_ENTRY_NORMAL &&
	       (int)ringkv_peer_EntryType_ENTRY_NOOP == (int)RAFT_ENTRY_NOOP &&
	       (int)ringkv_peer_EntryType_ENTRY_CONF == (int)RAFT_ENTRY_CONF,
	       "peer.proto EntryType must match enum raft_entry_type");

#define MSG_TYPE_FIRST RAFT_MSG_PREVOTE
#define MSG_TYPE_LAST RAFT_MSG_TIMEOUT_NOW

static inline bool msg_type_known(uint64_t t)
{
	return t >= MSG_TYPE_FIRST && t <= MSG_TYPE_LAST;
}

static inline bool entry_type_known(uint64_t t)
{
	return t == RAFT_ENTRY_NORMAL || t == RAFT_ENTRY_NOOP || t == RAFT_ENTRY_CONF;
}

static inline uint32_t load_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline void store_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* A snapshot file name a receiver may create in its own directory. */
static inline bool file_name_ok(const uint8_t *name, uint32_t len)
{
	if (len == 0 || len > PEER_MSG_MAX_FILE_NAME)
		return false;
	if ((len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	return memchr(name, '/', len) == NULL && memchr(name, '\0', len) == NULL;
}

#endif
