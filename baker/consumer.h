/* consumer.h — the baker's consumer: one channel-owning thread, N workers, acks handed back. */
#ifndef BAKERY_CONSUMER_H
#define BAKERY_CONSUMER_H

#include <stdatomic.h>
#include <stdbool.h>

#include "config.h"

struct consumer;

/* Creates a consumer for cfg (prefetch = BAKER_CONCURRENCY) and starts its worker threads;
 * nothing connects yet. Returns it (free with consumer_free) or NULL on failure. */
struct consumer *consumer_new(const struct config *cfg);

/* Runs the loop on the calling thread until consumer_stop: receives deliveries, hands them to
 * the workers, acks or dead-letters their results, reconnects with backoff after a failure.
 * On stop it takes no new deliveries, lets the workers finish and settles their results
 * (at most about 7 s), then closes the connection. Returns 0. */
int consumer_run(struct consumer *c);

/* Asks consumer_run to stop; async-signal-safe and thread-safe. */
void consumer_stop(struct consumer *c);

/* True while the consumer holds a live RabbitMQ connection. Thread-safe. */
bool consumer_connected(struct consumer *c);

/* Stops and joins the workers and frees c; accepts NULL. Call after consumer_run returns. */
void consumer_free(struct consumer *c);

#endif
