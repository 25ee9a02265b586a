/*
 * Glob matching over arbitrary bytes, with Redis' pattern syntax: `*` any
 * run, `?` any byte, `[abc]`, `[^abc]`, `[a-z]` classes, and `\` to quote the
 * next byte. Binary-safe (NUL is an ordinary byte), unlike fnmatch(3).
 * Runs in O(pattern * subject) time at worst: one backtracking point per `*`.
 */
#ifndef RINGKV_CORE_GLOB_H
#define RINGKV_CORE_GLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool glob_match(const uint8_t *pattern, size_t pattern_len,
		const uint8_t *subject, size_t subject_len, bool nocase);

/*
 * glob_match(), adding the steps it took (bytes of pattern and subject
 * compared, backtracking included) to *work, so a caller matching many
 * subjects can cap the time one request holds its core.
 */
bool glob_match_counted(const uint8_t *pattern, size_t pattern_len,
			const uint8_t *subject, size_t subject_len, bool nocase,
			uint64_t *work);

#endif
