/* otel_diag.c — Bakery's side of the tracing SDK's hooks: its log lines and its drop metric. */
#include "otel/diag.h"

#include <stdatomic.h>

#include "log.h"
#include "metrics.h"
#include "otel/trace.h"

static _Atomic(struct metric *) dropped;

void otel_diag_log(enum otel_diag_level level, const char *msg, const char *const kv[6])
{
	static const enum log_level levels[] = {LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR};

	log_write(levels[level], msg, kv[0], kv[1], kv[2], kv[3], kv[4], kv[5], (const char *)0);
}

void otel_diag_dropped(const char *reason, uint64_t n)
{
	metrics_add(atomic_load(&dropped), (double)n, reason);
}

void otel_diag_started(void)
{
	log_set_context_hook(trace_current_ids);
	atomic_store(&dropped, metrics_counter("otel_spans_dropped_total",
	                                       "Spans lost before reaching the Collector.",
	                                       (const char *const[]){"reason", NULL}));
}

void otel_diag_stopped(void)
{
	atomic_store(&dropped, NULL);
}
