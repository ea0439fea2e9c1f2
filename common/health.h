/* health.h — a small HTTP server for a worker's /healthz, /readyz and /metrics. */
#ifndef BAKERY_HEALTH_H
#define BAKERY_HEALTH_H

#include <stdbool.h>
#include <stddef.h>

/* Answers whether the service is ready (its dependencies reachable). Must be thread-safe. */
typedef bool (*health_ready_fn)(void *arg);

struct health;

/* One answer of the health endpoints. */
struct health_reply {
	int status;
	const char *content_type;
	const char *headers; /* extra header lines, or NULL */
	char *body;          /* malloc'd: the caller frees it */
	size_t len;
};

/* Sets *r to the answer to GET path: /healthz (200 while the process runs), /readyz (200 when
 * ready, else 503 with Retry-After) or /metrics (Prometheus text). The one place these answers
 * are written: the baker's server below and the reception's routes both send them. Returns 0,
 * -ENOENT for any other path (*r untouched), or -ENOMEM. */
int health_answer(const char *path, bool ready, struct health_reply *r);

/* Starts serving GET /healthz (200 while the process runs), /readyz (200 when ready(arg),
 * else 503) and /metrics (Prometheus text) on port. Returns the server (stop it with
 * health_stop) or NULL when the port cannot be bound. Needs mg_init_library first. */
struct health *health_start(int port, health_ready_fn ready, void *arg);

/* Stops the server and frees h; accepts NULL. */
void health_stop(struct health *h);

#endif
