/*
 * Logging to stderr, one line per call, prefixed with the time and the core.
 * A line is formatted into a stack buffer and written with a single write(2),
 * so lines from different threads never interleave. Logging is for start-up,
 * shutdown and faults; nothing on the request path logs.
 */
#ifndef RINGKV_CORE_LOG_H
#define RINGKV_CORE_LOG_H

#include <stdint.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/*
 * LOG_TEXT (the default): "HH:MM:SS.mmm level [thread] message".
 * LOG_JSON, for log shippers: one object per line,
 * {"ts":"2026-12-06T08:54:22.123Z","level":"warn","thread":"core 0","msg":"..."},
 * the message escaped as a JSON string (control bytes as \u00XX, bytes of
 * 0x80 and above passed through: messages are ASCII or UTF-8 file names).
 */
enum log_format { LOG_TEXT, LOG_JSON };

void log_set_format(enum log_format format);

/* Lines below `level` are dropped. Default LOG_INFO. */
void log_set_level(enum log_level level);

/* Names the calling thread in its log lines ("core 3"). Static string. */
void log_set_thread_name(const char *name);

void log_write(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Logs and aborts: for "the kernel did something impossible", never bad input. */
_Noreturn void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The state of one rate-limited call site on one thread (see log_every). */
struct log_limit {
	uint64_t next_us;    /* monotonic time before which lines are counted only */
	uint64_t suppressed; /* lines counted since the last one written */
};

/*
 * Writes the line unless one went out from the same limit less than
 * `interval_ms` ago; then only counts it. The next line written says how
 * many were suppressed ("... (41 similar lines suppressed)").
 */
void log_limited(struct log_limit *limit, enum log_level level, unsigned interval_ms,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Rate-limited logging for faults that can repeat at request rate (refused
 * clients, a full disk): at most one line per call site and thread every
 * `interval_ms`. State changes (a fault starting, then clearing) should
 * still be logged plainly.
 */
#define log_every(level, interval_ms, ...)                                   \
	do {                                                                 \
		static _Thread_local struct log_limit log_every_limit_;      \
		log_limited(&log_every_limit_, level, interval_ms, __VA_ARGS__); \
	} while (0)

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define panic(...) log_panic(__VA_ARGS__)

#endif
