/* Binary-safe glob matching; see core/glob.h. */
#include "core/glob.h"

#include <ctype.h>

static uint8_t fold(uint8_t c, bool nocase)
{
	return nocase ? (uint8_t)tolower(c) : c;
}

/*
 * Matches one class starting just after '[' at pattern[*i]; advances *i past
 * the closing ']' (or to the end of a class left open, which then extends to
 * the end of the pattern, as in Redis).
 */
static bool class_match(const uint8_t *p, size_t plen, size_t *i, uint8_t c, bool nocase,
			uint64_t *work)
{
	bool negate = false, hit = false;
	size_t k = *i;
	size_t start = k;

	if (k < plen && p[k] == '^') {
		negate = true;
		k++;
	}
	while (k < plen && p[k] != ']') {
		if (p[k] == '\\' && k + 1 < plen) {
			k++;
			hit |= fold(p[k], nocase) == fold(c, nocase);
			k++;
		} else if (k + 2 < plen && p[k + 1] == '-' && p[k + 2] != ']') {
			uint8_t lo = fold(p[k], nocase), hi = fold(p[k + 2], nocase);
			uint8_t x = fold(c, nocase);

			if (lo > hi) {
				uint8_t t = lo;
				lo = hi;
				hi = t;
			}
			hit |= x >= lo && x <= hi;
			k += 3;
		} else {
			hit |= fold(p[k], nocase) == fold(c, nocase);
			k++;
		}
	}
	*work += k - start;
	*i = k < plen ? k + 1 : k;
	return negate ? !hit : hit;
}

bool glob_match_counted(const uint8_t *p, size_t plen, const uint8_t *s, size_t slen,
			bool nocase, uint64_t *work)
{
	size_t pi = 0, si = 0;
	size_t star_p = SIZE_MAX, star_s = 0; /* last '*' and where it resumes */
	uint64_t steps = 0;
	bool matched;

	while (si < slen) {
		steps++;
		if (pi < plen) {
			uint8_t c = p[pi];

			if (c == '*') {
				while (pi < plen && p[pi] == '*')
					pi++;
				if (pi == plen) {
					matched = true;
					goto out;
				}
				star_p = pi;
				star_s = si;
				continue;
			}
			if (c == '?') {
				pi++;
				si++;
				continue;
			}
			if (c == '[') {
				size_t k = pi + 1;

				if (class_match(p, plen, &k, s[si], nocase, &steps)) {
					pi = k;
					si++;
					continue;
				}
			} else {
				if (c == '\\' && pi + 1 < plen)
					c = p[++pi];
				if (fold(c, nocase) == fold(s[si], nocase)) {
					pi++;
					si++;
					continue;
				}
			}
		}
		/* Mismatch: let the last '*' swallow one more byte. */
		if (star_p == SIZE_MAX) {
			matched = false;
			goto out;
		}
		pi = star_p;
		si = ++star_s;
	}
	while (pi < plen && p[pi] == '*')
		pi++;
	matched = pi == plen;
out:
	*work += steps;
	return matched;
}

bool glob_match(const uint8_t *p, size_t plen, const uint8_t *s, size_t slen, bool nocase)
{
	uint64_t work = 0;

	return glob_match_counted(p, plen, s, slen, nocase, &work);
}
