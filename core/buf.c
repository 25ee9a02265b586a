/* Pool-backed byte buffers that grow by doubling; see core/buf.h. */
#include "core/buf.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

int buf_grow(struct pool *pool, uint8_t **buf, size_t *cap, size_t keep, size_t need)
{
	size_t want = *cap ? *cap : 4096;
	uint8_t *nbuf;

	assert(keep <= *cap);
	if (need <= *cap)
		return 0;
	while (want < need)
		want *= 2;
	nbuf = pool_alloc_large(pool, want);
	if (!nbuf)
		return -ENOMEM;
	if (keep)
		memcpy(nbuf, *buf, keep);
	pool_free(pool, *buf);
	*buf = nbuf;
	*cap = pool_block_size(nbuf);
	return 0;
}
