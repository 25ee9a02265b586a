/* One-write-per-line logging to stderr; see core/log.h. */
#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int min_level = LOG_INFO;
static _Atomic int line_format = LOG_TEXT;
static _Thread_local const char *thread_name = "main";

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_set_level(enum log_level level)
{
	atomic_store(&min_level, (int)level);
}

void log_set_format(enum log_format format)
{
	atomic_store(&line_format, (int)format);
}

void log_set_thread_name(const char *name)
{
	thread_name = name;
}

/* Appends `text` as the body of a JSON string to out[*n, cap - 2); cuts it
 * short (never mid-escape) when it does not fit. */
static void json_escape(char *out, size_t cap, size_t *n, const char *text)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = *n;

	for (; *text; text++) {
		unsigned char ch = (unsigned char)*text;
		char esc = 0;

		switch (ch) {
		case '"': esc = '"'; break;
		case '\\': esc = '\\'; break;
		case '\n': esc = 'n'; break;
		case '\t': esc = 't'; break;
		case '\r': esc = 'r'; break;
		default: break;
		}
		if (esc || ch < 0x20) {
			size_t need = esc ? 2 : 6;

			if (i + need > cap - 2)
				break;
			out[i++] = '\\';
			if (esc) {
				out[i++] = esc;
			} else {
				memcpy(out + i, "u00", 3);
				out[i + 3] = hex[ch >> 4];
				out[i + 4] = hex[ch & 15];
				i += 5;
			}
			continue;
		}
		if (i + 1 > cap - 2)
			break;
		out[i++] = (char)ch;
	}
	*n = i;
}

__attribute__((format(printf, 2, 0)))
static void log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	char line[1024];
	char text[768];
	struct timespec ts;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (atomic_load_explicit(&line_format, memory_order_relaxed) == LOG_JSON) {
		size_t len;

		vsnprintf(text, sizeof text, fmt, ap);
		n = snprintf(line, sizeof line,
			     "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
			     "\"thread\":\"", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			     tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
			     level_names[level]);
		if (n < 0 || (size_t)n >= sizeof line)
			return;
		len = (size_t)n;
		json_escape(line, sizeof line - 16, &len, thread_name);
		memcpy(line + len, "\",\"msg\":\"", 9);
		len += 9;
		json_escape(line, sizeof line - 3, &len, text);
		memcpy(line + len, "\"}\n", 3);
		len += 3;
		/* A failed log write has nowhere better to be reported. */
		if (write(STDERR_FILENO, line, len) < 0)
			return;
		return;
	}
	n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %s [%s] ",
		     tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
		     level_names[level], thread_name);
	if (n < 0)
		return;
	if ((size_t)n < sizeof line) {
		int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
		if (m > 0)
			n += m;
	}
	if ((size_t)n >= sizeof line - 1)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	/* A failed log write has nowhere better to be reported. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

void log_write(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if ((int)level < atomic_load_explicit(&min_level, memory_order_relaxed))
		return;
	va_start(ap, fmt);
	log_vwrite(level, fmt, ap);
	va_end(ap);
}

void log_limited(struct log_limit *limit, enum log_level level, unsigned interval_ms,
		 const char *fmt, ...)
{
	char text[768];
	struct timespec ts;
	uint64_t now_us;
	va_list ap;

	if ((int)level < atomic_load_explicit(&min_level, memory_order_relaxed))
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	if (now_us < limit->next_us) {
		limit->suppressed++;
		return;
	}
	limit->next_us = now_us + (uint64_t)interval_ms * 1000u;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (limit->suppressed)
		log_write(level, "%s (%llu similar lines suppressed)", text,
			  (unsigned long long)limit->suppressed);
	else
		log_write(level, "%s", text);
	limit->suppressed = 0;
}

void log_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_ERROR, fmt, ap);
	va_end(ap);
	abort();
}
