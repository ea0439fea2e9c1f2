/* routes.h — reception's HTTP routes behind one dispatch point. */
#ifndef BAKERY_ROUTES_H
#define BAKERY_ROUTES_H

#include <civetweb.h>

#include "config.h"
#include "probe.h"

/* Registers reception's metrics, remembers cfg and probe (both must outlive the server), makes
 * the pool of workers (pool_init) that requests share and starts
 * the intake pipeline (intake_init: the publisher, one RabbitMQ connection). Returns 0 or
 * -ENOMEM. */
int routes_init(const struct config *cfg, struct probe *probe);

/* The civetweb request handler for every URI: matches the route, runs its handler, sends the
 * response and records metrics and a log line. Returns the HTTP status sent. */
int routes_dispatch(struct mg_connection *c, void *cbdata);

/* Starts draining for shutdown: /readyz answers 503 from now on; every response carries
 * "Connection: close" and its connection is closed after it. Thread-safe. */
void routes_drain(void);

/* The number of requests inside routes_dispatch right now. Thread-safe. */
int routes_in_flight(void);

/* Stops the pipeline and frees the pool routes_init made; after the server stopped. */
void routes_free(void);

#endif
