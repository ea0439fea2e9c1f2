/* json.h — OTLP/JSON encoding of an ExportTraceServiceRequest. */
#ifndef BAKERY_OTEL_JSON_H
#define BAKERY_OTEL_JSON_H

#include "buf.h"
#include "resource.h"
#include "span.h"

/* Encodes n spans under one resource and scope as OTLP/JSON (hex ids, integer enums, 64-bit
 * integers as strings), appending to out. Returns 0, or -ENOMEM / -E2BIG (over
 * OTLP_BODY_MAX). The caller frees out. */
int otlp_encode_json(const struct otlp_resource *r, struct otlp_span *const *spans, size_t n,
                     struct otlp_buf *out);

#endif
