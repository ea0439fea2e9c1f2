/* main.c — baker: configuration, the consumer, the health endpoint and SIGTERM. */
#include <civetweb.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "consumer.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "probe.h"
#include "otel/trace.h"
#include "otel_diag.h"

#ifndef BAKERY_VERSION
#define BAKERY_VERSION "0.1.0" /* service.version */
#endif

struct baker {
	struct consumer *consumer;
	struct probe *probe; /* Redis only: the consumer's connection speaks for RabbitMQ */
	sigset_t stop_signals;
};

static bool ready(void *arg)
{
	struct baker *b = arg;

	return probe_ready(b->probe) && consumer_ready(b->consumer);
}

/* Waits for SIGTERM or SIGINT and asks the consumer to stop. */
static void *signal_main(void *arg)
{
	struct baker *b = arg;
	int sig;

	sigwait(&b->stop_signals, &sig);
	log_info("stopping", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	consumer_stop(b->consumer);
	return NULL;
}

int main(void)
{
	struct baker b = {0};
	struct health *health = NULL;
	struct config cfg;
	pthread_t signals;
	char num[16];
	int rc = 1;

	log_init("baker", LOG_LEVEL_INFO); /* until LOG_LEVEL is read: errors name the service */
	if (config_load(&cfg, "baker") < 0)
		return 2;
	log_init("baker", cfg.log_level);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&b.stop_signals);
	sigaddset(&b.stop_signals, SIGTERM);
	sigaddset(&b.stop_signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &b.stop_signals, NULL);
	/* After the mask: the export thread must not take the stop signals. OTEL_* configure
	 * it; it also installs the log hook that adds trace_id and span_id to log lines. */
	otel_diag_register();
	if (trace_init("baker", BAKERY_VERSION) < 0)
		return 2;

	mg_init_library(0);
	b.consumer = consumer_new(&cfg);
	b.probe = probe_start(&cfg, false);
	if (!b.consumer || !b.probe) {
		log_error("cannot start the consumer");
		goto done;
	}
	health = health_start(cfg.health_port, ready, &b);
	if (!health) {
		snprintf(num, sizeof(num), "%d", cfg.health_port);
		log_error("cannot listen", "port", num);
		goto done;
	}
	if (pthread_create(&signals, NULL, signal_main, &b) != 0)
		goto done;
	snprintf(num, sizeof(num), "%d", cfg.baker_concurrency);
	log_info("baker consuming", "queue", cfg.mq.queue, "concurrency", num, "redis",
	         cfg.redis.n_sentinels ? cfg.redis.master : cfg.redis.addr.host, "rabbitmq",
	         cfg.mq.hosts[0].host);
	rc = consumer_run(b.consumer) == -EEXIST ? 2 : 0; /* a configuration error */
	if (rc)
		pthread_cancel(signals); /* no signal is coming */
	pthread_join(signals, NULL);
	log_info("baker stopped");
done:
	health_stop(health);
	consumer_free(b.consumer);
	probe_stop(b.probe);
	trace_shutdown(); /* flushes the spans still queued (bounded) */
	metrics_free_all();
	mg_exit_library();
	return rc;
}
