/* otlp.h — OTLP trace export: span records, protobuf and JSON encodings, the HTTP exporter. */
#ifndef BAKERY_OTLP_H
#define BAKERY_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace.h"

#define OTLP_ATTRS_MAX  128               /* per span, event, link and resource */
#define OTLP_EVENTS_MAX 128               /* per span */
#define OTLP_LINKS_MAX  128               /* per span */
#define OTLP_STRING_MAX 4096              /* bytes kept of any name or string value */
#define OTLP_BODY_MAX   (8 * 1024 * 1024) /* an encoded request larger than this is refused */

/* Span flags bits above the W3C trace flags: whether the parent (or link) is remote. */
#define OTLP_FLAG_HAS_IS_REMOTE 0x100
#define OTLP_FLAG_IS_REMOTE     0x200

/* Owned attribute list: keys and string values are private copies. */
struct otlp_attrs {
	struct trace_attr *items;
	uint32_t len, cap, dropped;
};

struct otlp_event {
	uint64_t time_ns;
	char *name;
	struct otlp_attrs attrs;
};

struct otlp_link {
	uint8_t trace_id[16], span_id[8];
	char *trace_state; /* NULL when empty */
	uint32_t flags;
	struct otlp_attrs attrs;
};

/* One ended span as exported. Every pointer is owned; otlp_span_clear frees them. */
struct otlp_span {
	uint8_t trace_id[16], span_id[8], parent_span_id[8];
	bool has_parent;
	char *trace_state; /* NULL when empty */
	uint32_t flags;    /* trace flags | OTLP_FLAG_* */
	char *name;
	enum trace_kind kind;
	uint64_t start_ns, end_ns; /* Unix epoch nanoseconds */
	struct otlp_attrs attrs;
	struct otlp_event *events;
	uint32_t n_events, dropped_events;
	struct otlp_link *links;
	uint32_t n_links, dropped_links;
	bool error;
	char *status_message; /* NULL when none */
};

/* What is said once per request: the resource and the instrumentation scope. */
struct otlp_resource {
	struct otlp_attrs attrs;
	const char *scope_name, *scope_version; /* static strings */
};

/* A byte buffer capped at OTLP_BODY_MAX; err sticks after the first failed write. */
struct otlp_buf {
	uint8_t *data;
	size_t len, cap;
	int err; /* 0, -ENOMEM or -E2BIG */
};

/* Returns a heap copy of s cut to OTLP_STRING_MAX bytes on a character boundary with invalid
 * UTF-8 replaced by '?', or NULL when memory is short. Free with free(). */
char *otlp_strdup(const char *s);

/* Sets attr (copied) in a, replacing a value with the same key. Returns 0; -ENOSPC when a
 * already holds OTLP_ATTRS_MAX (the attribute is counted in a->dropped); -ENOMEM. */
int otlp_attrs_set(struct otlp_attrs *a, const struct trace_attr *attr);

/* Frees the copies and empties a. */
void otlp_attrs_free(struct otlp_attrs *a);

/* Append an event (time, name and n attributes, copied) or a link to s. Returns 0, -ENOSPC
 * past the limit (counted as dropped), or -ENOMEM. */
int otlp_span_add_event(struct otlp_span *s, uint64_t time_ns, const char *name,
                        const struct trace_attr *attrs, size_t n);
int otlp_span_add_link(struct otlp_span *s, const struct trace_context *ctx,
                       const struct trace_attr *attrs, size_t n);

/* Frees everything s owns (not s itself) and zeroes it. */
void otlp_span_clear(struct otlp_span *s);

/* Encode an ExportTraceServiceRequest for n spans under one resource and scope, appending to
 * out (binary protobuf, or OTLP/JSON with hex ids, integer enums and 64-bit integers as
 * strings). Return 0, or -ENOMEM / -E2BIG (over OTLP_BODY_MAX). The caller frees out. */
int otlp_encode_protobuf(const struct otlp_resource *r, struct otlp_span *const *spans, size_t n,
                         struct otlp_buf *out);
int otlp_encode_json(const struct otlp_resource *r, struct otlp_span *const *spans, size_t n,
                     struct otlp_buf *out);

/* Replaces in with its gzip (RFC 1952) compression. Returns 0 or -ENOMEM / -E2BIG / -EIO. */
int otlp_gzip(struct otlp_buf *in);

/* Frees the buffer's memory and zeroes it. */
void otlp_buf_free(struct otlp_buf *b);

/* Parses the OTEL key=value list format ("k1=v1,k2=v2", percent-decoded, spaces trimmed),
 * calling fn(arg, key, value) for each pair (strings valid during the call only). Returns 0,
 * -EINVAL on a malformed list or a pair with an empty key, or fn's first negative result. */
int otlp_kv_list_parse(const char *s, int (*fn)(void *arg, const char *key, const char *value),
                       void *arg);

struct otlp_exporter;

/* Creates the OTLP/HTTP exporter from OTEL_EXPORTER_OTLP_[TRACES_]{ENDPOINT, PROTOCOL,
 * COMPRESSION, HEADERS, TIMEOUT, CERTIFICATE}. Returns 0 and *out (free with
 * otlp_exporter_free), or -EINVAL after logging an error naming the bad variable, or -ENOMEM. */
int otlp_exporter_create(struct otlp_exporter **out);

/* The URL spans are posted to (owned by e). */
const char *otlp_exporter_url(const struct otlp_exporter *e);

/* Encodes n spans as the configured protocol and compression into body (appended; the caller
 * frees it). Returns 0 or a negative error as the encoders do. */
int otlp_exporter_encode(struct otlp_exporter *e, const struct otlp_resource *r,
                         struct otlp_span *const *spans, size_t n, struct otlp_buf *body);

/* POSTs body once, waiting at most timeout_ms and at most OTEL_EXPORTER_OTLP_TIMEOUT
 * (a timeout_ms <= 0 waits 1 ms). Returns 0 on a 2xx answer; -EAGAIN when a retry
 * may succeed (network error, 429, 502, 503, 504), with *retry_after_ms set from Retry-After or
 * -1; -EIO when it will not; -ECANCELED past the deadline set by otlp_exporter_set_deadline. */
int otlp_exporter_post(struct otlp_exporter *e, const struct otlp_buf *body, long timeout_ms,
                       long *retry_after_ms);

/* Makes any post running after CLOCK_MONOTONIC time deadline_ms (milliseconds) give up with
 * -ECANCELED; 0 clears it. Thread-safe: trace_shutdown uses it to bound a slow Collector. */
void otlp_exporter_set_deadline(struct otlp_exporter *e, uint64_t deadline_ms);

/* Frees the exporter; NULL is fine. */
void otlp_exporter_free(struct otlp_exporter *e);

#endif
