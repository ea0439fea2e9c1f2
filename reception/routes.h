/* routes.h — reception's HTTP routes behind one dispatch point, and per-thread connections. */
#ifndef BAKERY_ROUTES_H
#define BAKERY_ROUTES_H

#include <civetweb.h>

#include "config.h"
#include "probe.h"

/* Registers reception's metrics and remembers cfg and probe (both must outlive the server).
 * Returns 0 or -ENOMEM. */
int routes_init(const struct config *cfg, struct probe *probe);

/* The civetweb request handler for every URI: matches the route, runs its handler, sends the
 * response and records metrics and a log line. Returns the HTTP status sent. */
int routes_dispatch(struct mg_connection *c, void *cbdata);

/* Starts draining for shutdown: /readyz answers 503 from now on; every response carries
 * "Connection: close" and its connection is closed after it. Thread-safe. */
void routes_drain(void);

/* The number of requests inside routes_dispatch right now. Thread-safe. */
int routes_in_flight(void);

/* civetweb init_thread callback: gives each worker thread (type 1) its own Redis context and
 * AMQP publisher (connected on first use). Returns the thread's state or NULL. */
void *routes_thread_init(const struct mg_context *ctx, int thread_type);

/* civetweb exit_thread callback: closes and frees what routes_thread_init made. */
void routes_thread_exit(const struct mg_context *ctx, int thread_type, void *state);

#endif
