/* batch.h — the batch span processor: a bounded queue of ended spans and one export thread. */
#ifndef BAKERY_OTEL_BATCH_H
#define BAKERY_OTEL_BATCH_H

#include "exporter.h"

/* Reads OTEL_BSP_{MAX_QUEUE_SIZE, MAX_EXPORT_BATCH_SIZE, SCHEDULE_DELAY, EXPORT_TIMEOUT} for
 * otel_batch_start. Returns 0 or -EINVAL (otel_env_bad). */
int otel_batch_from_env(void);

/* Takes back n ended span records (the array is the caller's), exported or dropped. */
typedef void otel_batch_release_fn(struct otlp_span **spans, size_t n);

/* Starts the export thread posting through e under r (borrowed till stopped), handing records
 * back to release once done with them. 0 or -ENOMEM. */
int otel_batch_start(struct otlp_exporter *e, const struct otlp_resource *r,
                     otel_batch_release_fn *release);

/* Queues an ended span (owned from now on) without waiting; when the queue is full or stopped
 * the span is released at once and counted as dropped. */
void otel_batch_offer(struct otlp_span *span);

/* Flushes within min(OTEL_BSP_EXPORT_TIMEOUT, 5 s), stops, drops what is left. Safe unstarted. */
void otel_batch_stop(void);

/* Spans offered, accepted by the Collector, and dropped, since the process started. */
void otel_batch_counts(uint64_t *offered, uint64_t *exported, uint64_t *dropped);

#endif
