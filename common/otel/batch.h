/* batch.h — the batch span processor: spans encoded as they end, batched, one export thread. */
#ifndef BAKERY_OTEL_BATCH_H
#define BAKERY_OTEL_BATCH_H

#include "exporter.h"

/* Reads OTEL_BSP_{MAX_QUEUE_SIZE, MAX_EXPORT_BATCH_SIZE, SCHEDULE_DELAY, EXPORT_TIMEOUT} for
 * otel_batch_start. Returns 0 or -EINVAL (otel_env_bad). */
int otel_batch_from_env(void);

/* Starts the export thread posting through e under r (both borrowed till stopped). 0 or
 * -ENOMEM. */
int otel_batch_start(struct otlp_exporter *e, const struct otlp_resource *r);

/* Queues an ended span, encoded at once (span stays the caller's), without waiting for the
 * export; when the queue is full or stopped, or the span cannot be encoded, it is counted as
 * dropped. */
void otel_batch_offer(const struct otlp_span *span);

/* Flushes within min(OTEL_BSP_EXPORT_TIMEOUT, 5 s), stops, drops what is left. Safe unstarted. */
void otel_batch_stop(void);

/* Spans offered, accepted by the Collector, and dropped, since the process started. */
void otel_batch_counts(uint64_t *offered, uint64_t *exported, uint64_t *dropped);

#endif
