/* otel_diag.h — Bakery's diagnostics for the tracing SDK: its log lines and its drop metric. */
#ifndef BAKERY_OTEL_DIAG_BAKERY_H
#define BAKERY_OTEL_DIAG_BAKERY_H

/* Registers Bakery's logger and the otel_spans_dropped_total{reason} counter with the SDK
 * (trace_set_diag), and the current span's ids as every log line's context. Call after
 * log_init and before trace_init. */
void otel_diag_register(void);

#endif
