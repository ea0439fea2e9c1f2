/* log.h — structured logging: one JSON object per line on stdout. */
#ifndef BAKERY_LOG_H
#define BAKERY_LOG_H

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* Supplies the current trace context: fills trace_id (32 hex + NUL) and span_id (16 hex + NUL)
 * and returns 1, or returns 0 when the calling thread is not inside a span. */
typedef int (*log_context_fn)(char trace_id[33], char span_id[17]);

/* Sets the service name written in every line and the minimum level; call once at start. */
void log_init(const char *service, enum log_level min_level);

/* Installs (or with NULL removes) the hook that adds trace_id and span_id to each line. */
void log_set_context_hook(log_context_fn fn);

/* Parses "debug", "info", "warn" or "error" into *out. Returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

/* Writes one line {"time","level","service","msg",<key>:<value>...} with one writev(2).
 * The variadic part is pairs of strings (key, value) ended by one NULL; a NULL value is
 * skipped. Thread-safe; nothing is retained. */
void log_write(enum log_level level, const char *msg, ...);

#define log_debug(...) log_write(LOG_LEVEL_DEBUG, __VA_ARGS__, (const char *)0)
#define log_info(...)  log_write(LOG_LEVEL_INFO, __VA_ARGS__, (const char *)0)
#define log_warn(...)  log_write(LOG_LEVEL_WARN, __VA_ARGS__, (const char *)0)
#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__, (const char *)0)

#endif
