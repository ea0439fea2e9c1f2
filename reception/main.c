/* main.c — reception: configuration, the civetweb server, readiness probe and SIGTERM. */
#include <civetweb.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "probe.h"
#include "routes.h"
#include "otel/trace.h"
#include "otel_diag.h"

#ifndef BAKERY_VERSION
#define BAKERY_VERSION "0.1.0" /* service.version */
#endif

/* civetweb 1.15 holds a thread for each open connection, keep-alive ones included, so this is
 * how many connections are served at once; one more waits until one closes or stays idle for
 * keep_alive_timeout_ms. A thread costs ~12 KiB of RSS idle: requests share routes.c's few
 * workers (their Redis connections) and one publisher, not one per thread. */
#define HTTP_THREADS     "512"
#define DRAIN_TIMEOUT_MS 8000 /* requests and connections get this long after SIGTERM */

/* Client connections open now (those a server thread has taken up), counted so the drain
 * can wait for keep-alive clients to be told to go. */
static atomic_int connections;
static char counted; /* the connection data of a counted connection */

static int connection_open(const struct mg_connection *c, void **data)
{
	(void)c;
	*data = &counted;
	atomic_fetch_add(&connections, 1);
	return 0;
}

static void connection_close(const struct mg_connection *c)
{
	if (mg_get_user_connection_data(c) == &counted)
		atomic_fetch_sub(&connections, 1);
}

static void sleep_ms(long ms)
{
	nanosleep(&(struct timespec){ms / 1000, ms % 1000 * 1000000L}, NULL);
}

/* The graceful part of a stop: /readyz turns 503 at once, so the pod leaves the Service's
 * endpoints; requests are still served in full, but every response says "Connection: close"
 * and civetweb closes the connection after it, so keep-alive clients reconnect to another
 * pod. Returns when no request is in flight and no client connection is left open (clients
 * leave after their next response; idle keep-alive connections time out after
 * keep_alive_timeout_ms), or after DRAIN_TIMEOUT_MS. */
static void drain(void)
{
	char left[32];
	int ms = 0;

	routes_drain();
	while (ms < DRAIN_TIMEOUT_MS && (routes_in_flight() > 0 || atomic_load(&connections) > 0)) {
		sleep_ms(10);
		ms += 10;
	}
	if (ms >= DRAIN_TIMEOUT_MS) {
		snprintf(left, sizeof(left), "%d", atomic_load(&connections));
		log_warn("drain timed out: closing the connections left", "connections", left);
	}
}

int main(void)
{
	struct mg_callbacks callbacks = {.init_connection = connection_open,
	                                 .connection_close = connection_close,
	                                 .http_error = http_error_callback};
	struct mg_context *ctx = NULL;
	struct probe *probe = NULL;
	struct config cfg;
	char port[16];
	sigset_t stop;
	int sig, rc = 1;

	if (config_load(&cfg, "reception") < 0)
		return 2;
	log_init("reception", cfg.log_level);
	signal(SIGPIPE, SIG_IGN);
	/* Every thread inherits the blocked stop signals; only sigwait below takes them. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	/* After the mask: the export thread must not take the stop signals. OTEL_* configure
	 * it; it also installs the log hook that adds trace_id and span_id to log lines. */
	otel_diag_register();
	if (trace_init("reception", BAKERY_VERSION) < 0)
		return 2;

	mg_init_library(0);
	probe = probe_start(&cfg, true);
	if (!probe || routes_init(&cfg, probe) < 0) {
		log_error("out of memory at start");
		goto done;
	}
	snprintf(port, sizeof(port), "%d", cfg.port);
	const char *options[] = {"listening_ports",
	                         port,
	                         "num_threads",
	                         HTTP_THREADS,
	                         "request_timeout_ms",
	                         "10000",
	                         "enable_keep_alive",
	                         "yes",
	                         "keep_alive_timeout_ms",
	                         "5000",
	                         "listen_backlog",
	                         "1024",
	                         "tcp_nodelay",
	                         "1",
	                         NULL};
	ctx = mg_start(&callbacks, NULL, options);
	if (!ctx) {
		log_error("cannot listen", "port", port);
		goto done;
	}
	http_serve(ctx, routes_dispatch, NULL);
	log_info("reception listening", "port", port, "redis", cfg.db_host, "rabbitmq",
	         cfg.rabbit_host, "queue", cfg.orders_queue);

	sigwait(&stop, &sig);
	log_info("stopping: not ready, draining requests and connections");
	/* civetweb's mg_stop cuts requests still reading or writing and drops keep-alive
	 * connections: drain first, then stop the server. */
	drain();
	mg_stop(ctx);
	ctx = NULL;
	rc = 0;
	log_info("reception stopped");
done:
	if (ctx)
		mg_stop(ctx);
	routes_free();
	probe_stop(probe);
	trace_shutdown(); /* flushes the spans still queued (bounded) */
	metrics_free_all();
	mg_exit_library();
	return rc;
}
