/* diag.h — the SDK's one outlet for what it cannot return to a caller (trace_set_diag's). */
#ifndef BAKERY_OTEL_DIAG_H
#define BAKERY_OTEL_DIAG_H

#include "trace.h"

/* Passes a log line (msg, up to three key/value pairs ending at a NULL key) to the registered
 * trace_diag's log; nothing when none. Any thread. */
void otel_diag_log(enum trace_diag_level level, const char *msg, const char *const kv[6]);

/* Passes n lost spans (reason "queue_full", "export_failed" or "shutdown") to the registered
 * trace_diag's dropped; nothing when none. Any thread. */
void otel_diag_dropped(const char *reason, uint64_t n);

#endif
