/* diag.h — the SDK's one outlet for what it cannot return to a caller: log lines, lost spans. */
#ifndef BAKERY_OTEL_DIAG_H
#define BAKERY_OTEL_DIAG_H

#include <stdint.h>

/* Defined by the program (Bakery: common/otel_diag.c); called from any thread. */

enum otel_diag_level { OTEL_DIAG_DEBUG, OTEL_DIAG_INFO, OTEL_DIAG_WARN, OTEL_DIAG_ERROR };

/* One log line: msg and up to three (key, value) pairs, ending at a NULL key; a NULL value is
 * skipped. Nothing is retained. */
void otel_diag_log(enum otel_diag_level level, const char *msg, const char *const kv[6]);

/* n spans were lost, for reason "queue_full", "export_failed" or "shutdown". */
void otel_diag_dropped(const char *reason, uint64_t n);

/* trace_init has started the SDK (not when disabled); trace_shutdown has stopped it. */
void otel_diag_started(void);
void otel_diag_stopped(void);

#endif
