/* Messages for the error codes of core/errors.h. */
#include "core/errors.h"

#include <string.h>

const char *rkv_strerror(int code)
{
	switch (code) {
	case 0:
		return "ok";
#define RKV_ERROR_CASE(name, value, text) \
	case name:                        \
		return text;
		RKV_ERRORS(RKV_ERROR_CASE)
#undef RKV_ERROR_CASE
	default:
		break;
	}
	if (code < 0 && code > -4096) {
		const char *s = strerrordesc_np(-code);
		if (s)
			return s;
	}
	return "unknown error";
}
