/* trace.h — the tracing SDK's API: spans, the current span, W3C propagation, start and stop. */
#ifndef BAKERY_OTEL_TRACE_H
#define BAKERY_OTEL_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sampler.h"
#include "span.h"
#include "tracecontext.h"

/*
 * Usage (configuration is the standard OTEL_* environment, read once by trace_init):
 *
 *	trace_init("reception", "1.0.0");
 *	trace_span *s = trace_span_start("create-order", TRACE_KIND_CLIENT, NULL);
 *	trace_span_set_str(s, "db.system", "redis");
 *	...
 *	trace_span_end(s);
 *	trace_shutdown();
 *
 * A started span becomes the calling thread's current span (the default parent of the next
 * span, and the ids in log lines) until it ends. A span belongs to the thread that started it:
 * set its fields and end it there. Every function accepts a NULL span and then does nothing;
 * with OTEL_SDK_DISABLED=true (or before trace_init) trace_span_start returns NULL.
 * A span that the sampler drops is still returned: it carries its context to children and
 * to injected headers (flags 00), but records nothing and is never exported.
 */

typedef struct trace_span trace_span;

/* Counters since trace_init (all monotonic). */
struct trace_stats {
	uint64_t ended;    /* sampled spans ended (offered to the export queue) */
	uint64_t exported; /* spans the Collector accepted */
	uint64_t dropped;  /* spans lost: queue full, export failed, or left at shutdown */
};

/* Reads the OTEL_* environment once (OTEL_SDK_DISABLED, OTEL_SERVICE_NAME,
 * OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG], OTEL_BSP_*, OTEL_EXPORTER_OTLP_*, and
 * K8S_POD_NAME, K8S_NAMESPACE_NAME, K8S_NODE_NAME), builds the resource (service.name defaults
 * to default_service_name), the sampler and the batch processor, and starts the export
 * thread, then calls otel_diag_started. Returns 0 (also when the SDK is disabled), or -EINVAL
 * (otel_env_bad names the bad variable), or -ENOMEM/-EALREADY. */
int trace_init(const char *default_service_name, const char *service_version);

/* Stops the export thread after flushing the queue, within a bounded time (at most
 * min(OTEL_BSP_EXPORT_TIMEOUT, 5 s)); spans still unsent then are counted as dropped. Ends
 * nothing: spans still open are freed unsent when they end. Safe to call twice; trace_init
 * may follow. */
void trace_shutdown(void);

/* True between trace_init and trace_shutdown unless OTEL_SDK_DISABLED=true. */
bool trace_enabled(void);

/* A parent that means "start a new trace" (the baker's CONSUMER span: a new root that links
 * to the producer). Any invalid parent context has the same effect. */
extern const struct trace_context trace_root;
#define TRACE_ROOT (&trace_root)

/* Starts a span named name (copied) and makes it the thread's current span. parent NULL: a
 * child of the current span, or a new root when there is none; a valid parent: a child of
 * that (usually remote) context, whose tracestate and baggage it carries on; an invalid one
 * (TRACE_ROOT, a failed trace_extract): a new root. Returns the span, owned by the caller
 * until trace_span_end; NULL when the SDK is disabled or memory is short. */
trace_span *trace_span_start(const char *name, enum trace_kind kind,
                             const struct trace_context *parent);

/* Ends the span: stamps the end time, restores the thread's previous current span and hands
 * the span to the export queue (never waits for the exporter; when the queue is full the span
 * is dropped and counted). The span must not be used afterwards. */
void trace_span_end(trace_span *span);

/* Set one attribute (key and value copied; a later value for the same key replaces the
 * earlier). At most 128 attributes per span; strings longer than 4096 bytes are cut and
 * invalid UTF-8 is replaced. */
void trace_span_set_str(trace_span *span, const char *key, const char *value);
void trace_span_set_int(trace_span *span, const char *key, int64_t value);
void trace_span_set_double(trace_span *span, const char *key, double value);
void trace_span_set_bool(trace_span *span, const char *key, bool value);

/* Adds a timestamped event with n attributes (attrs may be NULL when n is 0); copied. */
void trace_span_add_event(trace_span *span, const char *name, const struct trace_attr *attrs,
                          size_t n);

/* Adds a link to another span's context (e.g. the producer of a consumed message) with n
 * attributes; copied. An invalid ctx is ignored. */
void trace_span_add_link(trace_span *span, const struct trace_context *ctx,
                         const struct trace_attr *attrs, size_t n);

/* Sets the status to ERROR with message (copied; NULL for none). */
void trace_span_set_error(trace_span *span, const char *message);

/* True when the span is sampled and records: use it to skip costly attribute work. */
bool trace_span_is_recording(const trace_span *span);

/* Fills out with the span's context (ids, flags, tracestate, baggage). Returns 0, or -EINVAL
 * for a NULL span (out is then an invalid context). */
int trace_span_context(const trace_span *span, struct trace_context *out);

/* The calling thread's current span, or NULL. */
trace_span *trace_current(void);

/* Fills the current span's ids as hex and returns 1, or returns 0 when the thread has no
 * current span (the shape of a logger's context hook). */
int trace_current_ids(char trace_id[33], char span_id[17]);

/* Header access for propagation (HTTP, AMQP). get returns the value of header name (len bytes,
 * not necessarily NUL-terminated) or NULL; set stores a copy of value under name and returns
 * 0 or a negative error. */
typedef const char *(*trace_header_get)(void *carrier, const char *name, size_t *len);
typedef int (*trace_header_set)(void *carrier, const char *name, const char *value);

/* Reads traceparent, tracestate and baggage through get into out, marked remote. Returns 0
 * when a valid traceparent was found; else -ENOENT (none) or -EINVAL (malformed), and out is
 * invalid (a parent that starts a new root) but keeps any valid baggage. */
int trace_extract(trace_header_get get, void *carrier, struct trace_context *out);

/* Writes the span's traceparent, and tracestate and baggage when not empty, through set.
 * Returns 0, the first negative result of set, or -EINVAL for a NULL span. */
int trace_inject(const trace_span *span, trace_header_set set, void *carrier);

/* Copies the counters into out. */
void trace_stats(struct trace_stats *out);

#endif
