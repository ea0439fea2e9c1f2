/* main.c — reception: configuration, the civetweb server, readiness probe and SIGTERM. */
#include <civetweb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "config.h"
#include "guard.h"
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
#define HTTP_THREADS     512
#define STRINGIFY_(x)    #x
#define STRINGIFY(x)     STRINGIFY_(x)
#define DRAIN_TIMEOUT_MS 8000 /* requests and connections get this long after SIGTERM */

/* civetweb's begin_request callback: the head has arrived. One that frames its body
 * ambiguously or exceeds the head limits (http_head_check) is answered here, JSON and
 * "Connection: close", before anything reads its body. Returns 0 to go on to the routes, or
 * the status sent. */
static int begin_request(struct mg_connection *c)
{
	const char *why;
	int status = http_head_check(mg_get_request_info(c), &why);

	guard_head_done(c);
	if (status == 0)
		return 0;
	http_send_error(c, status, why, "Connection: close\r\n");
	return status;
}

/* civetweb's http_error callback: a head the guard cut short is a 408. Returns as
 * http_error_callback. */
static int error_page(struct mg_connection *c, int status, const char *message)
{
	if (guard_expired(c))
		return http_error_callback(c, 408, "request head not received in time");
	return http_error_callback(c, status, message);
}

/* The graceful part of a stop: /readyz turns 503 at once, so the pod leaves the Service's
 * endpoints; requests are still served in full, but every response says "Connection: close"
 * and civetweb closes the connection after it, so keep-alive clients reconnect to another
 * pod. Returns when no request is in flight and no client connection is left open (clients
 * leave after their next response; idle keep-alive connections time out after
 * keep_alive_timeout_ms), or after DRAIN_TIMEOUT_MS. */
static void drain(void)
{
	long long until = clock_now_ms() + DRAIN_TIMEOUT_MS;
	char left[32];
	int busy;

	routes_drain();
	while ((busy = routes_in_flight() > 0 || guard_connections() > 0) && clock_now_ms() < until)
		clock_wait(clock_now_ms() + 10, NULL);
	if (busy) {
		snprintf(left, sizeof(left), "%d", guard_connections());
		log_warn("drain timed out: closing the connections left", "connections", left);
	}
}

int main(void)
{
	struct mg_callbacks callbacks = {.init_connection = guard_open,
	                                 .connection_close = guard_close,
	                                 .begin_request = begin_request,
	                                 .end_request = guard_request_done,
	                                 .http_error = error_page};
	struct mg_context *ctx = NULL;
	struct probe *probe = NULL;
	struct config cfg;
	char port[16], request_timeout[16], keepalive_timeout[16];
	sigset_t stop;
	int sig, rc = 1;

	log_init("reception",
	         LOG_LEVEL_INFO); /* until LOG_LEVEL is read: errors name the service */
	if (config_load(&cfg, "reception") < 0)
		return 2;
	log_init("reception", cfg.log_level);
	store_set_queue_deadline_ms(cfg.order_queue_deadline_ms);
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
	/* civetweb's own timeouts stay as a backstop behind the guard's deadlines: its
	 * request_timeout_ms bounds each read and write (renewed by every byte), and
	 * keep_alive_timeout_ms closes an idle connection that sent nothing. */
	snprintf(request_timeout, sizeof(request_timeout), "%d",
	         (cfg.http_header_timeout_ms > cfg.http_body_timeout_ms
	              ? cfg.http_header_timeout_ms
	              : cfg.http_body_timeout_ms) +
	             1000);
	snprintf(keepalive_timeout, sizeof(keepalive_timeout), "%d", cfg.http_keepalive_timeout_ms);
	const char *options[] = {"listening_ports",
	                         port,
	                         "num_threads",
	                         STRINGIFY(HTTP_THREADS),
	                         "request_timeout_ms",
	                         request_timeout,
	                         "enable_keep_alive",
	                         "yes",
	                         "keep_alive_timeout_ms",
	                         keepalive_timeout,
	                         "listen_backlog",
	                         "1024",
	                         "tcp_nodelay",
	                         "1",
	                         NULL};
	if (guard_start(&(struct guard_limits){cfg.http_header_timeout_ms, cfg.http_body_timeout_ms,
	                                       cfg.http_keepalive_timeout_ms, HTTP_THREADS}) < 0) {
		log_error("cannot start the connection guard");
		goto done;
	}
	ctx = mg_start(&callbacks, NULL, options);
	if (!ctx) {
		log_error("cannot listen", "port", port);
		goto done;
	}
	http_serve(ctx, routes_dispatch, NULL);
	log_info("reception listening", "port", port, "redis",
	         cfg.redis.n_sentinels ? cfg.redis.master : cfg.redis.addr.host, "rabbitmq",
	         cfg.mq.hosts[0].host, "queue", cfg.mq.queue);

	sigwait(&stop, &sig);
	log_info("stopping: not ready, draining requests and connections");
	/* civetweb's mg_stop cuts requests still reading or writing and drops keep-alive
	 * connections: drain first, then stop the server. */
	drain();
	mg_stop(ctx);
	ctx = NULL;
	guard_stop();
	rc = 0;
	log_info("reception stopped");
done:
	if (ctx)
		mg_stop(ctx);
	guard_stop();
	routes_free();
	probe_stop(probe);
	trace_shutdown(); /* flushes the spans still queued (bounded) */
	metrics_free_all();
	mg_exit_library();
	return rc;
}
