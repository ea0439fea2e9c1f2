/* config.h — the services' configuration, read from the environment once at start. */
#ifndef BAKERY_CONFIG_H
#define BAKERY_CONFIG_H

#include <stddef.h>

#include "log.h"
#include "mq.h"
#include "store.h"

/* Every setting of both services; strings are NUL-terminated copies. */
struct config {
	char service[32];
	struct store_config redis; /* DB_HOST, REDIS_SENTINELS, REDIS_SENTINEL_MASTER,
	                            * REDIS_PASSWORD, REDIS_WAIT_REPLICAS */
	struct mq_config mq; /* RABBIT_HOST, RABBIT_USERNAME, _PASSWORD, ORDERS_QUEUE, _TYPE, ... */
	int port;            /* reception's HTTP port (PORT) */
	int health_port;     /* baker's /healthz, /readyz, /metrics port (HEALTH_PORT) */
	int baker_concurrency;       /* orders baked at once (BAKER_CONCURRENCY) */
	double bake_time_scale;      /* multiplier of the simulated baking time (BAKE_TIME_SCALE) */
	int order_queue_deadline_ms; /* an order not queued by then is failed (reception) */
	/* reception's deadlines for HTTP clients (reception/guard.h) */
	int http_header_timeout_ms;    /* a request's line and headers (HTTP_HEADER_TIMEOUT_MS) */
	int http_body_timeout_ms;      /* its body, from its head (HTTP_BODY_TIMEOUT_MS) */
	int http_keepalive_timeout_ms; /* the next request's head (HTTP_KEEPALIVE_TIMEOUT_MS) */
	enum log_level log_level;
};

/* Fills *cfg with defaults, then with the environment for `service` ("reception" or "baker"),
 * and nothing else (the caller hands the queue deadline to the store). Returns 0, or
 * -EINVAL after logging, for each bad variable, an error line "invalid environment variable"
 * naming it and why (as the tracing SDK does for OTEL_*). */
int config_load(struct config *cfg, const char *service);

#endif
