/* batch.h — the batch span processor: a bounded queue of ended spans and one export thread. */
#ifndef BAKERY_OTEL_BATCH_H
#define BAKERY_OTEL_BATCH_H

#include <stdint.h>

#include "exporter.h"

struct otel_batch_settings {
	long queue_max, batch_max, delay_ms, export_timeout_ms;
};

/* Reads OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_SCHEDULE_DELAY and
 * OTEL_BSP_EXPORT_TIMEOUT into s. Returns 0 or -EINVAL (otel_env_bad). */
int otel_batch_from_env(struct otel_batch_settings *s);

/* Starts the export thread, which posts through e under r (both borrowed until otel_batch_stop
 * returns). Returns 0, or -ENOMEM when the queue or the thread cannot be made. */
int otel_batch_start(const struct otel_batch_settings *s, struct otlp_exporter *e,
                     const struct otlp_resource *r);

/* Takes an ended span (owned from now on) into the queue without waiting; when the queue is
 * full or stopped the span is freed and counted as dropped. */
void otel_batch_offer(struct otlp_span *span);

/* Flushes the queue within min(OTEL_BSP_EXPORT_TIMEOUT, 5 s), stops the thread and frees what
 * is left (counted as dropped). Safe to call when not started. */
void otel_batch_stop(void);

/* Spans the Collector accepted, and spans dropped, since the process started. */
void otel_batch_counts(uint64_t *exported, uint64_t *dropped);

#endif
