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
 * A worker holds its delivery and retries for as long as Redis is unavailable (never
 * dead-letters it). On stop it cancels the subscription (basic.cancel), requeues the
 * deliveries no worker started, lets in-flight orders finish for up to 6 s, then cancels the
 * bakes still running and requeues their messages too (at most about 9 s in all); the caller
 * then closes the connection with consumer_free. Returns 0, or -EEXIST (logged, nothing
 * consumed) when the queue exists with other arguments than the configuration asks for. */
int consumer_run(struct consumer *c);

/* Asks consumer_run to stop; async-signal-safe and thread-safe. */
void consumer_stop(struct consumer *c);

/* True while connected and no worker is waiting for Redis to come back. Thread-safe. */
bool consumer_ready(struct consumer *c);

/* Stops and joins the workers and frees c; accepts NULL. Call after consumer_run returns. */
void consumer_free(struct consumer *c);

#endif
