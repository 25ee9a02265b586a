/* The open-file limit at start-up: see server/fd_limit.h. */
#include "server/fd_limit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "core/log.h"

uint64_t fd_limit_needed(uint64_t replicas)
{
	return replicas * FD_LIMIT_PER_REPLICA + FD_LIMIT_RESERVE;
}

int fd_limit_setup(uint64_t replicas, uint64_t *limit, char *err, size_t errlen)
{
	struct rlimit rl;
	uint64_t need = fd_limit_needed(replicas);

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		snprintf(err, errlen, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return -1;
	}
	if (rl.rlim_cur != rl.rlim_max) {
		rlim_t was = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			log_warn("raising the open-file limit from %ju to %ju: %s", (uintmax_t)was,
				 (uintmax_t)rl.rlim_max, strerror(errno));
			rl.rlim_cur = was;
		}
	}
	*limit = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
	if (*limit < need) {
		snprintf(err, errlen,
			 "the open-file limit is %" PRIu64 ", and this node's %" PRIu64 " replicas "
			 "need at least %" PRIu64 " (%u each while idle, one more per SSTable and "
			 "one for the manifest once written, "
			 "%u for the rest): raise it (ulimit -n; LimitNOFILE= in a systemd unit, "
			 "as packaging/ringkvd.service does)", *limit, replicas, need,
			 FD_LIMIT_PER_REPLICA, FD_LIMIT_RESERVE);
		return -1;
	}
	return 0;
}
