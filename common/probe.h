/* probe.h — a background thread that keeps checking Redis and RabbitMQ for /readyz. */
#ifndef BAKERY_PROBE_H
#define BAKERY_PROBE_H

#include <stdbool.h>

#include "config.h"

struct probe;

/* Starts a thread that pings Redis, and RabbitMQ when with_mq, about once a second over its
 * own connections (cfg must outlive it). Returns the probe (free with probe_stop) or NULL on
 * failure. */
struct probe *probe_start(const struct config *cfg, bool with_mq);

/* True when the last round of checks all succeeded. Thread-safe. */
bool probe_ready(struct probe *p);

/* Stops the thread, closes its connections and frees p; accepts NULL. */
void probe_stop(struct probe *p);

#endif
