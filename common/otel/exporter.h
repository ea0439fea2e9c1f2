/* exporter.h — the OTLP/HTTP trace exporter: libcurl POSTs configured by OTEL_EXPORTER_OTLP_*. */
#ifndef BAKERY_OTEL_EXPORTER_H
#define BAKERY_OTEL_EXPORTER_H

#include "buf.h"
#include "resource.h"

struct otlp_exporter;

/* Creates the exporter from OTEL_EXPORTER_OTLP_[TRACES_]{ENDPOINT, PROTOCOL, COMPRESSION,
 * HEADERS, TIMEOUT, CERTIFICATE}. Returns 0 and *out (free with otlp_exporter_free), -EINVAL
 * (otel_env_bad names the variable) or -ENOMEM. */
int otlp_exporter_create(struct otlp_exporter **out);

/* The URL spans are posted to (owned by e). */
const char *otlp_exporter_url(const struct otlp_exporter *e);

/* The encoders (protobuf.c, json.c: hex ids, integer enums, 64-bit integers as strings). A span
 * is encoded when it ends, appended to a batch's bytes; a request wraps a batch's spans under
 * one resource and scope. The _span functions append span s to out; the _request ones append
 * the request holding the spans encoded in spans (as the _span ones wrote them) to out. The
 * caller frees out. Return out's err: 0, -ENOMEM or -E2BIG (over OTLP_BODY_MAX). */
int otlp_encode_protobuf_span(const struct otlp_span *s, struct otlp_buf *out);
int otlp_encode_protobuf_request(const struct otlp_resource *r, const struct otlp_buf *spans,
                                 struct otlp_buf *out);
int otlp_encode_json_span(const struct otlp_span *s, struct otlp_buf *out);
int otlp_encode_json_request(const struct otlp_resource *r, const struct otlp_buf *spans,
                             struct otlp_buf *out);

/* The bytes of a request before its spans: protobuf's (for spans_len bytes of spans, every
 * length known) and JSON's (through "spans":[; the request goes on with the spans, their first
 * comma left out, and OTLP_JSON_TAIL). Append to out; return out's err. */
int otlp_encode_protobuf_head(const struct otlp_resource *r, size_t spans_len,
                              struct otlp_buf *out);
int otlp_encode_json_head(const struct otlp_resource *r, struct otlp_buf *out);
#define OTLP_JSON_TAIL "]}]}]}"

/* otlp_exporter_encode_span: the configured encoder. */
int otlp_exporter_encode_span(const struct otlp_exporter *e, const struct otlp_span *s,
                              struct otlp_buf *out);

/* The room a batch leaves before its first span for otlp_exporter_wrap: the largest head. */
size_t otlp_exporter_head_room(const struct otlp_exporter *e, const struct otlp_resource *r);

/* Makes the request around the spans in spans (room bytes left free at its start, then spans
 * as otlp_exporter_encode_span wrote them) without moving them: the head goes into the room's
 * end (JSON's tail after the spans), and *req views the request inside spans' memory; gzipped,
 * it is compressed into body instead (the caller frees body; spans stays the caller's).
 * Returns 0, -ENOSPC (room too small), -ENOMEM or -E2BIG. */
int otlp_exporter_wrap(const struct otlp_exporter *e, const struct otlp_resource *r,
                       struct otlp_buf *spans, size_t room, struct otlp_buf *body,
                       struct otlp_buf *req);

/* POSTs body once within timeout_ms (<= 0: 1 ms) and OTEL_EXPORTER_OTLP_TIMEOUT. Returns 0 on
 * 2xx; -EAGAIN when a retry may succeed (network error, 429, 502, 503, 504; *retry_after_ms
 * from Retry-After, else -1); -EIO when not; -ECANCELED past otlp_exporter_set_deadline's. */
int otlp_exporter_post(struct otlp_exporter *e, const struct otlp_buf *body, long timeout_ms,
                       long *retry_after_ms);

/* Makes posts give up with -ECANCELED after CLOCK_MONOTONIC deadline_ms (0: none). Thread-safe. */
void otlp_exporter_set_deadline(struct otlp_exporter *e, uint64_t deadline_ms);

/* Frees the exporter; NULL is fine. */
void otlp_exporter_free(struct otlp_exporter *e);

#endif
