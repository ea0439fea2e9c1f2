/* exporter.h — the OTLP/HTTP trace exporter: libcurl POSTs configured by OTEL_EXPORTER_OTLP_*. */
#ifndef BAKERY_OTEL_EXPORTER_H
#define BAKERY_OTEL_EXPORTER_H

#include <stdint.h>

#include "buf.h"
#include "resource.h"
#include "span.h"

struct otlp_exporter;

/* Creates the OTLP/HTTP exporter from OTEL_EXPORTER_OTLP_[TRACES_]{ENDPOINT, PROTOCOL,
 * COMPRESSION, HEADERS, TIMEOUT, CERTIFICATE}. Returns 0 and *out (free with
 * otlp_exporter_free), or -EINVAL (otel_env_bad names the bad variable), or -ENOMEM. */
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
 * -ECANCELED; 0 clears it. Thread-safe: otel_batch_stop uses it to bound a slow Collector. */
void otlp_exporter_set_deadline(struct otlp_exporter *e, uint64_t deadline_ms);

/* Frees the exporter; NULL is fine. */
void otlp_exporter_free(struct otlp_exporter *e);

#endif
