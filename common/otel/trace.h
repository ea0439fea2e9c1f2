/* trace.h — the tracing SDK's public API: spans, the current span, W3C propagation, start and
 * stop, diagnostics. With tracecontext.h (which it includes) the only headers a program needs;
 * the others in this directory are the SDK's own. */
#ifndef BAKERY_OTEL_TRACE_H
#define BAKERY_OTEL_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tracecontext.h"

/* A span's kind (OTLP's values). */
enum trace_kind {
	TRACE_KIND_INTERNAL = 1,
	TRACE_KIND_SERVER = 2,
	TRACE_KIND_CLIENT = 3,
	TRACE_KIND_PRODUCER = 4,
	TRACE_KIND_CONSUMER = 5,
};

enum trace_attr_type { TRACE_ATTR_STRING, TRACE_ATTR_INT, TRACE_ATTR_DOUBLE, TRACE_ATTR_BOOL };

/* An attribute of an event or a link: build it with TRACE_STR/INT/DOUBLE/BOOL. Its strings are
 * borrowed for the call (copied). */
struct trace_attr {
	const char *key;
	enum trace_attr_type type;
	union {
		const char *s;
		int64_t i;
		double d;
		bool b;
	} v;
};

#define TRACE_STR(k, x)    ((struct trace_attr){.key = (k), .type = TRACE_ATTR_STRING, .v.s = (x)})
#define TRACE_INT(k, x)    ((struct trace_attr){.key = (k), .type = TRACE_ATTR_INT, .v.i = (x)})
#define TRACE_DOUBLE(k, x) ((struct trace_attr){.key = (k), .type = TRACE_ATTR_DOUBLE, .v.d = (x)})
#define TRACE_BOOL(k, x)   ((struct trace_attr){.key = (k), .type = TRACE_ATTR_BOOL, .v.b = (x)})

/* A started span is its thread's current span (the default parent, the ids in log lines) until
 * it ends; use and end it on that thread, or detach it (trace_span_detach) before another
 * thread uses or ends it (asserted unless NDEBUG). Every function accepts
 * a NULL span (what trace_span_start returns when disabled) and does nothing. A span the sampler
 * drops still carries its context to children and injected headers, but records and exports
 * nothing. */
typedef struct trace_span trace_span;

#define TRACE_FIELDS_MAX 32 /* header fields of one name trace_extract reads */

struct trace_stats {
	uint64_t ended;    /* sampled spans ended */
	uint64_t exported; /* spans the Collector accepted */
	uint64_t dropped;  /* queue full, export failed, or left at shutdown */
};

/* What the SDK reports that it cannot return to a caller, through callbacks the program
 * registers (any may be NULL; called from any thread, the export thread included; nothing
 * passed is retained after the call). */
enum trace_diag_level { TRACE_DIAG_DEBUG, TRACE_DIAG_INFO, TRACE_DIAG_WARN, TRACE_DIAG_ERROR };

struct trace_diag {
	/* A log line: msg and up to three (key, value) pairs in kv, ending at a NULL key; a NULL
	 * value is to be skipped. */
	void (*log)(void *arg, enum trace_diag_level level, const char *msg,
	            const char *const kv[6]);
	/* n spans were lost, for reason "queue_full", "export_failed" or "shutdown". */
	void (*dropped)(void *arg, const char *reason, uint64_t n);
	void *arg;
};

/* Registers diag (copied; NULL: the default, silent). Call before trace_init, not while the
 * SDK runs. */
void trace_set_diag(const struct trace_diag *diag);

/* Reads OTEL_* and K8S_* once, builds the resource (service.name defaults to
 * default_service_name), sampler and batch processor, starts the export thread. Returns 0
 * (also when disabled), -EINVAL (a variable named in a diag log line), -ENOMEM or -EALREADY. */
int trace_init(const char *default_service_name, const char *service_version);

/* Flushes and stops the export thread within min(OTEL_BSP_EXPORT_TIMEOUT, 5 s); what is left
 * is dropped. Open spans are freed unsent when they end. Safe twice; trace_init may follow. */
void trace_shutdown(void);

/* True between trace_init and trace_shutdown unless disabled. */
bool trace_enabled(void);

/* A parent that starts a new trace (as does any invalid context). */
extern const struct trace_context trace_root;
#define TRACE_ROOT (&trace_root)

/* Starts a span named name (copied) as the thread's current span: a child of parent when valid
 * (carrying its tracestate and baggage), of the current span when parent is NULL, else a root.
 * Returns it, the caller's until trace_span_end; NULL when disabled or out of memory. */
trace_span *trace_span_start(const char *name, enum trace_kind kind,
                             const struct trace_context *parent);

/* Ends the span (freed), restores the previous current span and queues it without waiting
 * (dropped and counted when the queue is full). */
void trace_span_end(trace_span *span);

/* Takes span off the calling thread's current spans, so that it may be used and ended on
 * another thread: a span handed over with the work it describes. Its children here then need
 * an explicit parent. */
void trace_span_detach(trace_span *span);

/* trace_span_set_str with the lengths already known: key_len is strlen(key), value_len
 * strlen(value) (both still NUL-terminated, not NULL). */
void trace_span_set_strn(trace_span *span, const char *key, size_t key_len, const char *value,
                         size_t value_len);

/* trace_span_set_int with key's length already known (key_len is strlen(key), key not NULL). */
void trace_span_set_intn(trace_span *span, const char *key, size_t key_len, int64_t value);

/* Sets one attribute (copied; a later value for the key replaces the earlier). At most 128 per
 * span; strings are cut to 4096 bytes, invalid UTF-8 replaced. trace_span_set_str and _int are
 * inline so that the lengths of a literal key or value are worked out when compiling. */
static inline void trace_span_set_str(trace_span *span, const char *key, const char *value)
{
	if (key)
		trace_span_set_strn(span, key, strlen(key), value ? value : "",
		                    value ? strlen(value) : 0);
}
static inline void trace_span_set_int(trace_span *span, const char *key, int64_t value)
{
	if (key)
		trace_span_set_intn(span, key, strlen(key), value);
}
void trace_span_set_double(trace_span *span, const char *key, double value);
void trace_span_set_bool(trace_span *span, const char *key, bool value);

/* Adds a timestamped event with n attributes (attrs may be NULL when n is 0); copied. */
void trace_span_add_event(trace_span *span, const char *name, const struct trace_attr *attrs,
                          size_t n);

/* Adds a link to ctx with n attributes; copied. An invalid ctx is ignored. */
void trace_span_add_link(trace_span *span, const struct trace_context *ctx,
                         const struct trace_attr *attrs, size_t n);

/* Sets the status to ERROR with message (copied; NULL for none). */
void trace_span_set_error(trace_span *span, const char *message);

/* True when the span records: skip costly attribute work otherwise. */
bool trace_span_is_recording(const trace_span *span);

/* Fills out with the span's context. Returns 0, or -EINVAL (out invalid) for a NULL span. */
int trace_span_context(const trace_span *span, struct trace_context *out);

/* The calling thread's current span, or NULL. */
trace_span *trace_current(void);

/* Writes the current span's ids as hex and returns 1; 0 when there is none (a log hook). */
int trace_current_ids(char trace_id[33], char span_id[17]);

/* Header access for propagation. get returns the index-th field (0 first, in the order
 * received) named name (HTTP: compare case-insensitively) as len bytes, not necessarily
 * NUL-terminated, or NULL when there is no such field; it must return every field of a name, as
 * HTTP allows a list header (tracestate, baggage) to be split over several (RFC 9110 5.3). set
 * stores a copy and returns 0 or a negative error. */
typedef const char *(*trace_header_get)(void *carrier, const char *name, size_t index, size_t *len);
typedef int (*trace_header_set)(void *carrier, const char *name, const char *value);

/* Reads traceparent, tracestate and baggage (all their fields) into out, marked remote.
 * Returns 0, or -ENOENT (no traceparent) / -EINVAL (malformed, or more than one traceparent
 * field) with out invalid but keeping any valid baggage. Of more than TRACE_FIELDS_MAX fields,
 * the tracestate is dropped (as 33 members would be) and the baggage keeps the first ones. */
int trace_extract(trace_header_get get, void *carrier, struct trace_context *out);

/* Writes traceparent, and tracestate and baggage when not empty, through set. Returns 0, set's
 * first negative result, or -EINVAL for a NULL span. */
int trace_inject(const trace_span *span, trace_header_set set, void *carrier);

/* Copies the counters since trace_init into out. */
void trace_stats(struct trace_stats *out);

#endif
