/* otel_diag.c — Bakery's side of the tracing SDK's diagnostics: its log lines and its drop metric.
 */
#include "otel_diag.h"

#include "log.h"
#include "metrics.h"
#include "otel/trace.h"

static void diag_log(void *arg, enum trace_diag_level level, const char *msg,
                     const char *const kv[6])
{
	static const enum log_level levels[] = {LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN,
	                                        LOG_LEVEL_ERROR};

	(void)arg;
	log_write(levels[level], msg, kv[0], kv[1], kv[2], kv[3], kv[4], kv[5], (const char *)0);
}

static void diag_dropped(void *arg, const char *reason, uint64_t n)
{
	metrics_add(arg, (double)n, reason);
}

void otel_diag_register(void)
{
	struct metric *dropped =
	    metrics_counter("otel_spans_dropped_total", "Spans lost before reaching the Collector.",
	                    (const char *const[]){"reason", NULL});

	log_set_context_hook(trace_current_ids);
	trace_set_diag(&(struct trace_diag){diag_log, diag_dropped, dropped});
}
