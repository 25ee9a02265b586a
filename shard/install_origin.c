/*
 * The install origin record (install_origin.h): its codec and the blocking
 * read a restart makes. Untrusted bytes: every field is checked, nothing
 * here asserts on them.
 */
#include "shard/install_origin.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/le.h"
#include "shard/crc32c.h"

static const uint8_t magic[8] = { 'R', 'K', 'V', 'O', 'R', 'I', 'G', '1' };

void install_origin_encode(uint8_t out[INSTALL_ORIGIN_SIZE], const struct install_origin *o)
{
	uint32_t crc;

	memset(out, 0, INSTALL_ORIGIN_SIZE);
	memcpy(out, magic, sizeof magic);
	put_le64(out + 8, o->index);
	put_le64(out + 16, o->term);
	crc = crc32c(0, out, 24);
	put_le32(out + 24, crc);
}

int install_origin_decode(const uint8_t *p, size_t len, struct install_origin *o)
{
	if (len != INSTALL_ORIGIN_SIZE || memcmp(p, magic, sizeof magic) != 0)
		return RKV_ECORRUPT;
	if (get_le32(p + 24) != crc32c(0, p, 24) || p[28] || p[29] || p[30] || p[31])
		return RKV_ECORRUPT;
	o->index = get_le64(p + 8);
	o->term = get_le64(p + 16);
	if (o->index == 0 || o->term == 0)
		return RKV_ECORRUPT;
	return 0;
}

int install_origin_read(const char *dir, struct install_origin *o)
{
	uint8_t buf[INSTALL_ORIGIN_SIZE + 1];
	char path[PATH_MAX];
	ssize_t n;
	int fd, e;

	if (snprintf(path, sizeof path, "%s/%s", dir, INSTALL_ORIGIN_NAME) >= (int)sizeof path)
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pread(fd, buf, sizeof buf, 0);
	e = errno;
	close(fd);
	if (n < 0)
		return -e;
	return install_origin_decode(buf, (size_t)n, o);
}
