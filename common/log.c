/* log.c — JSON-lines logger: jansson builds each line, one writev(2) emits it. */
#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

static char log_service[32] = "bakery";
static atomic_int log_min = LOG_LEVEL_INFO;
static _Atomic(log_context_fn) log_hook;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *service, enum log_level min_level)
{
	snprintf(log_service, sizeof(log_service), "%s", service);
	atomic_store(&log_min, (int)min_level);
}

void log_set_context_hook(log_context_fn fn)
{
	atomic_store(&log_hook, fn);
}

int log_level_parse(const char *s, enum log_level *out)
{
	if (strcmp(s, "warning") == 0)
		s = "warn";
	for (int i = LOG_LEVEL_DEBUG; i <= LOG_LEVEL_ERROR; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* A string that is valid UTF-8 goes in as is; anything else is replaced by a marker. */
static void set_str(json_t *obj, const char *key, const char *value)
{
	json_t *s = json_string(value);

	json_object_set_new(obj, key, s ? s : json_string("<invalid utf-8>"));
}

void log_write(enum log_level level, const char *msg, ...)
{
	char stamp[40], tid[33], sid[17], *line;
	struct timespec ts;
	struct tm tm;
	log_context_fn hook;
	json_t *obj;
	va_list ap;
	size_t n;

	if ((int)level < atomic_load(&log_min))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ", ts.tv_nsec / 1000000);

	obj = json_object();
	if (!obj)
		return;
	set_str(obj, "time", stamp);
	set_str(obj, "level", level_names[level]);
	set_str(obj, "service", log_service);
	set_str(obj, "msg", msg);
	hook = atomic_load(&log_hook);
	if (hook && hook(tid, sid)) {
		set_str(obj, "trace_id", tid);
		set_str(obj, "span_id", sid);
	}
	va_start(ap, msg);
	for (const char *key; (key = va_arg(ap, const char *));) {
		const char *value = va_arg(ap, const char *);
		if (value)
			set_str(obj, key, value);
	}
	va_end(ap);

	line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	if (!line)
		return;
	/* One writev per line: lines from different threads do not interleave. */
	struct iovec iov[2] = {{line, strlen(line)}, {"\n", 1}};
	while (writev(STDOUT_FILENO, iov, 2) < 0 && errno == EINTR)
		;
	free(line);
}
