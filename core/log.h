/*
 * Logging to stderr, one line per call, prefixed with the time and the core.
 * A line is formatted into a stack buffer and written with a single write(2),
 * so lines from different threads never interleave. Logging is for start-up,
 * shutdown and faults; nothing on the request path logs.
 */
#ifndef RINGKV_CORE_LOG_H
#define RINGKV_CORE_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Lines below `level` are dropped. Default LOG_INFO. */
void log_set_level(enum log_level level);

/* Names the calling thread in its log lines ("core 3"). Static string. */
void log_set_thread_name(const char *name);

void log_write(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Logs and aborts: for "the kernel did something impossible", never bad input. */
_Noreturn void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define panic(...) log_panic(__VA_ARGS__)

#endif
