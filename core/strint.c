/* Strict decimal integer parsing; see core/strint.h. */
#include "core/strint.h"

#include <stdbool.h>

#include "core/errors.h"

/* Digits only, no leading zero unless the whole text is "0", at most `bound`. */
static int parse_magnitude(const uint8_t *s, size_t len, uint64_t bound, uint64_t *out)
{
	uint64_t magnitude = 0;
	size_t i;

	if (len == 1 && s[0] == '0') {
		*out = 0;
		return 0;
	}
	if (len == 0 || s[0] < '1' || s[0] > '9')
		return RKV_EINVAL;
	for (i = 0; i < len; i++) {
		unsigned digit;

		if (s[i] < '0' || s[i] > '9')
			return RKV_EINVAL;
		digit = (unsigned)(s[i] - '0');
		if (magnitude > (bound - digit) / 10)
			return RKV_EINVAL;
		magnitude = magnitude * 10 + digit;
	}
	*out = magnitude;
	return 0;
}

int strint_parse_i64(const void *text, size_t len, int64_t *value)
{
	const uint8_t *s = text;
	uint64_t magnitude;

	if (!s || len == 0)
		return RKV_EINVAL;
	if (s[0] != '-') {
		if (parse_magnitude(s, len, (uint64_t)INT64_MAX, &magnitude))
			return RKV_EINVAL;
		*value = (int64_t)magnitude;
		return 0;
	}
	/* "-0" is refused: after the sign the first digit must be 1-9. */
	if (len < 2 || s[1] == '0' ||
	    parse_magnitude(s + 1, len - 1, (uint64_t)INT64_MAX + 1, &magnitude))
		return RKV_EINVAL;
	*value = magnitude == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)magnitude;
	return 0;
}

int strint_parse_u64(const void *text, size_t len, uint64_t *value)
{
	if (!text)
		return RKV_EINVAL;
	return parse_magnitude(text, len, UINT64_MAX, value);
}
