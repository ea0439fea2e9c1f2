/* health.h — a small HTTP server for a worker's /healthz, /readyz and /metrics. */
#ifndef BAKERY_HEALTH_H
#define BAKERY_HEALTH_H

#include <stdbool.h>

/* Answers whether the service is ready (its dependencies reachable). Must be thread-safe. */
typedef bool (*health_ready_fn)(void *arg);

struct health;

/* Starts serving GET /healthz (200 while the process runs), /readyz (200 when ready(arg),
 * else 503) and /metrics (Prometheus text) on port. Returns the server (stop it with
 * health_stop) or NULL when the port cannot be bound. Needs mg_init_library first. */
struct health *health_start(int port, health_ready_fn ready, void *arg);

/* Stops the server and frees h; accepts NULL. */
void health_stop(struct health *h);

#endif
