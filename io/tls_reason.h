/*
 * The reason of an OpenSSL failure as one line of text, for the server's
 * TLS (io/tls.c) and libringkv's (tools/libringkv_tls.c). Header only:
 * its includers link OpenSSL, the io library does not.
 */
#ifndef RINGKV_IO_TLS_REASON_H
#define RINGKV_IO_TLS_REASON_H

#include <stdio.h>

#include <openssl/err.h>

/* The first error queued on this thread ("wrong version number"...), into
 * buf; empties the queue. */
static inline void tls_reason(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;

	if (reason)
		snprintf(buf, len, "%s", reason);
	else if (e)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "unknown TLS error");
	ERR_clear_error();
}

#endif
