/*
 * Error codes shared by every layer. A function that can fail returns int: 0,
 * a negative errno, or a negative RKV_E* code from the table below. Codes are
 * below -1000 so they never collide with errno values.
 */
#ifndef RINGKV_CORE_ERRORS_H
#define RINGKV_CORE_ERRORS_H

#define RKV_ERRORS(X)                                                        \
	X(RKV_ENOTFOUND, -1001, "key not found")                               \
	X(RKV_EDELETED, -1002, "key deleted (tombstone)")                      \
	X(RKV_EFULL, -1003, "memtable full")                                   \
	X(RKV_ECORRUPT, -1004, "data corrupted")                               \
	X(RKV_ETOOLARGE, -1005, "too large")                                   \
	X(RKV_EINVAL, -1006, "invalid argument")                               \
	X(RKV_EPROTO, -1007, "protocol error")                                 \
	X(RKV_EAGAIN, -1008, "incomplete input, need more bytes")              \
	X(RKV_ECLOSED, -1009, "connection closed")                             \
	X(RKV_ESHUTDOWN, -1010, "shutting down")                               \
	X(RKV_ETORN, -1011, "torn record at end of log")                      \
	X(RKV_EUNKNOWN, -1012, "outcome unknown: the write may or may not have happened") \
	/* raft/ */                                                            \
	X(RAFT_ENOTLEADER, -2001, "not the leader")                            \
	X(RAFT_EBUSY, -2002, "leadership transfer or membership change pending") \
	X(RAFT_EBADCONF, -2003, "invalid membership change")                   \
	X(RAFT_ENOTREADY, -2004, "learner has not caught up")

enum rkv_error {
#define RKV_ERROR_ENUM(name, value, text) name = (value),
	RKV_ERRORS(RKV_ERROR_ENUM)
#undef RKV_ERROR_ENUM
};

/*
 * A human-readable message for 0, a negative errno or an RKV_E* code. The
 * returned string is static (errno texts come from strerrordesc_np).
 */
const char *rkv_strerror(int code);

#endif
