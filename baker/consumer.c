/* consumer.c — the consume loop: the channel's owner thread receives and settles, workers bake. */
#include "consumer.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "bake.h"
#include "log.h"
#include "metrics.h"
#include "mq.h"
#include "order.h"
#include "store.h"
#include "trace.h"

#define ATTEMPTS_MAX    8 /* tries of a transient (Redis) failure (~16 s) before dead-lettering */
#define RETRY_FIRST_MS  250
#define RETRY_MAX_MS    4000
#define DRAIN_TIMEOUT_S 7 /* how long a stop waits for in-flight orders */

enum outcome {
	ACK,         /* done (or already done) */
	DEAD_LETTER, /* nack without requeue: to "<queue>.dead" */
	LEAVE,       /* stopping mid-retry: leave unacked; the broker redelivers it */
};

static const char *const outcome_names[] = {"ack", "dead-letter", "leave"};

/* A delivery on its way to a worker, then its outcome on its way back to the owner. */
struct job {
	struct mq_delivery d;
	unsigned generation;
	uint64_t tag;
	enum outcome outcome;
	struct trace_context trace; /* receive-order's, the parent of settle-order */
	struct job *next;
};

struct worker {
	struct consumer *c;
	pthread_t thread;
	struct store *store; /* this worker's own Redis connection */
};

struct consumer {
	struct config cfg;
	struct mq *mq; /* owned by the thread in consumer_run */
	int wake;      /* eventfd: results are ready, or stop was asked */
	atomic_bool stop;
	atomic_bool connected;
	pthread_mutex_t lock;
	pthread_cond_t work;
	struct job *queue, *queue_tail; /* deliveries waiting for a worker */
	struct job *done;               /* outcomes waiting to be settled */
	int busy;                       /* jobs being processed */
	bool quit;                      /* workers exit once the queue is empty */
	int nworkers;
	struct worker *workers;
};

static struct metric *m_baked, *m_duration, *m_dead, *m_redelivered, *m_already, *m_retries;

static void wake(struct consumer *c)
{
	uint64_t one = 1;

	while (write(c->wake, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

/* Sleeps ms milliseconds in short slices, returning early once stop is set. */
static void sleep_unless_stopped(struct consumer *c, int ms)
{
	struct timespec slice = {0, 50 * 1000000L};

	for (int waited = 0; waited < ms && !atomic_load(&c->stop); waited += 50)
		nanosleep(&slice, NULL);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double epoch_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Marks span failed with an event named what and the order key (a failure path). */
static void span_fail(trace_span *span, const char *what, const char *key)
{
	struct trace_attr a = TRACE_STR("bakery.order_key", key);

	trace_span_add_event(span, what, &a, key ? 1 : 0);
	trace_span_set_error(span, what);
}

/* One attempt at an order: skip it when finished, else baking -> bake -> finished, the bake in
 * an INTERNAL span "baking". span (processing-order) gets baker.time_to_completion_ms, the
 * time since sent_ms (the message's timeEnqueued; < 0 unknown). Returns 0 when the order is
 * finished, or a store_* error. */
static int bake_order(struct worker *w, const char *key, trace_span *span, double sent_ms)
{
	trace_span *baking;
	struct order o;
	double t0;
	char rounds[16];
	int rc, n;

	rc = store_order_get(w->store, key, &o);
	if (rc < 0)
		return rc;
	if (strcmp(o.status, "finished") == 0) {
		metrics_add(m_already, 1);
		log_info("order already finished, not baking again", "order_key", key);
		trace_span_add_event(span, "order already finished, not baking again", NULL, 0);
		return 0;
	}
	rc = store_order_set_status(w->store, key, "baking");
	if (rc == STORE_REFUSED)
		return 0; /* finished meanwhile by another delivery */
	if (rc < 0)
		return rc;
	baking = trace_span_start("baking", TRACE_KIND_INTERNAL, NULL);
	trace_span_set_str(baking, "baker.pastry", o.pastry);
	log_info("baking order", "order_key", key, "pastry", o.pastry);
	t0 = now_s();
	n = bake(o.pastry, w->c->cfg.bake_time_scale); /* mistakes: events on baking */
	metrics_add(m_duration, now_s() - t0);
	trace_span_set_int(baking, "baker.rounds", n);
	trace_span_end(baking);
	rc = store_order_set_status(w->store, key, "finished");
	if (rc < 0 && rc != STORE_REFUSED)
		return rc;
	snprintf(rounds, sizeof(rounds), "%d", n);
	metrics_add(m_baked, 1);
	if (sent_ms >= 0)
		trace_span_set_int(span, "baker.time_to_completion_ms",
		                   (int64_t)(epoch_ms() - sent_ms));
	log_info("order finished", "order_key", key, "rounds", rounds);
	return 0;
}

/* Decides what becomes of one delivery, inside span (processing-order): every failure path
 * sets its error status with an event. Transient failures are retried here with capped
 * exponential backoff (an event per retry; the failed Redis span is the error); a bad message
 * or an unknown order is dead-lettered at once. msg is the parsed message, NULL when malformed. */
static enum outcome process(struct worker *w, const struct mq_delivery *d,
                            const struct order_message *msg, trace_span *span)
{
	const char *key;
	int delay = RETRY_FIRST_MS;

	if (d->redelivered)
		metrics_add(m_redelivered, 1);
	if (!msg) {
		log_warn("malformed message, dead-lettering", "message_id", d->message_id);
		metrics_add(m_dead, 1, "malformed");
		span_fail(span, "malformed message, dead-lettered", NULL);
		return DEAD_LETTER;
	}
	key = msg->key;
	trace_span_set_str(span, "bakery.order_key", key);
	for (int attempt = 1;; attempt++) {
		int rc = bake_order(w, key, span, msg->enqueued_ms);
		if (rc == 0)
			return ACK;
		if (rc == STORE_NOT_FOUND) {
			log_warn("unknown order, dead-lettering", "order_key", key);
			metrics_add(m_dead, 1, "unknown_order");
			span_fail(span, "unknown order, dead-lettered", key);
			return DEAD_LETTER;
		}
		if (atomic_load(&w->c->stop)) {
			log_warn("stopping during a retry, leaving the order to redelivery",
			         "order_key", key);
			span_fail(span, "stopping during a retry, left to redelivery", key);
			return LEAVE;
		}
		if (attempt == ATTEMPTS_MAX) {
			log_error("redis unavailable, giving up on order", "order_key", key);
			store_order_set_status(w->store, key, "failed");
			metrics_add(m_dead, 1, "store_unavailable");
			span_fail(span, "redis unavailable, gave up, dead-lettered", key);
			return DEAD_LETTER;
		}
		metrics_add(m_retries, 1);
		trace_span_add_event(span, "redis unavailable, retrying",
		                     (struct trace_attr[]){TRACE_INT("bakery.attempt", attempt),
		                                           TRACE_INT("bakery.retry_in_ms", delay)},
		                     2);
		sleep_unless_stopped(w->c, delay);
		delay = delay * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : delay * 2;
	}
}

/* trace_extract's view of a delivery's AMQP headers. */
static const char *amqp_header_get(void *carrier, const char *name, size_t *len)
{
	const char *v = mq_delivery_header(carrier, name);

	if (v)
		*len = strlen(v);
	return v;
}

/* Handles one delivery in a CONSUMER span receive-order that starts a new trace linked to the
 * publisher's span (from the message's traceparent), with processing-order inside. The span
 * ends here, on the worker thread that made it: the ack happens later on the channel's owner
 * thread, which records it in a child span settle-order from the context kept in j->trace. */
static enum outcome handle(struct worker *w, struct job *j)
{
	const struct mq_delivery *d = &j->d;
	trace_span *span = trace_span_start("receive-order", TRACE_KIND_CONSUMER, TRACE_ROOT);
	trace_span *processing;
	struct order_message msg;
	bool parsed = order_message_parse(d->body, d->len, &msg) == 0;
	enum outcome out;

	if (trace_span_is_recording(span)) {
		struct trace_context producer;
		if (trace_extract(amqp_header_get, (void *)d, &producer) == 0)
			trace_span_add_link(span, &producer, NULL, 0);
		trace_span_set_str(span, "messaging.system", "rabbitmq");
		trace_span_set_str(span, "messaging.destination.name", w->c->cfg.orders_queue);
		trace_span_set_str(span, "messaging.operation.type", "process");
		trace_span_set_str(span, "messaging.operation.name", "receive");
		if (d->message_id)
			trace_span_set_str(span, "messaging.message.id", d->message_id);
		trace_span_set_int(span, "messaging.message.body.size", (int64_t)d->len);
		trace_span_set_int(span, "messaging.rabbitmq.message.delivery_tag",
		                   (int64_t)d->tag);
		trace_span_set_bool(span, "bakery.redelivered", d->redelivered);
		trace_span_set_str(span, "server.address", w->c->cfg.rabbit_host);
		trace_span_set_int(span, "server.port", w->c->cfg.rabbit_port);
		if (parsed && msg.enqueued_ms >= 0)
			trace_span_set_int(span, "queue.time_on_queue_ms",
			                   (int64_t)(epoch_ms() - msg.enqueued_ms));
	}
	processing = trace_span_start("processing-order", TRACE_KIND_INTERNAL, NULL);
	out = process(w, d, parsed ? &msg : NULL, processing);
	trace_span_end(processing);
	trace_span_add_event(span, "message processed",
	                     &TRACE_STR("bakery.outcome", outcome_names[out]), 1);
	if (out != ACK)
		trace_span_set_error(span,
		                     out == DEAD_LETTER ? "dead-lettered" : "left to redelivery");
	trace_span_context(span, &j->trace);
	trace_span_end(span);
	return out;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct consumer *c = w->c;
	struct job *j;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (!c->queue && !c->quit)
			pthread_cond_wait(&c->work, &c->lock);
		if (!c->queue)
			break;
		j = c->queue;
		c->queue = j->next;
		if (!c->queue)
			c->queue_tail = NULL;
		c->busy++;
		pthread_mutex_unlock(&c->lock);

		j->outcome = handle(w, j);
		mq_delivery_clear(&j->d);

		pthread_mutex_lock(&c->lock);
		c->busy--;
		j->next = c->done;
		c->done = j;
		wake(c);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* Hands a delivery (ownership moves) to the workers; on no memory it is left unacked. */
static void enqueue(struct consumer *c, struct mq_delivery *d)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j) {
		log_error("out of memory queueing a delivery");
		mq_delivery_clear(d);
		return;
	}
	j->d = *d;
	j->generation = d->generation;
	j->tag = d->tag;
	pthread_mutex_lock(&c->lock);
	if (c->queue_tail)
		c->queue_tail->next = j;
	else
		c->queue = j;
	c->queue_tail = j;
	pthread_cond_signal(&c->work);
	pthread_mutex_unlock(&c->lock);
}

/* Drops deliveries no worker has started: their connection is gone and the broker will
 * redeliver them. */
static void purge_queue(struct consumer *c)
{
	struct job *j;

	pthread_mutex_lock(&c->lock);
	j = c->queue;
	c->queue = c->queue_tail = NULL;
	pthread_mutex_unlock(&c->lock);
	while (j) {
		struct job *next = j->next;
		mq_delivery_clear(&j->d);
		free(j);
		j = next;
	}
}

/* Acks or dead-letters j in a CLIENT span settle-order, a child of j's receive-order (ended
 * by then on the worker's thread), with an event saying which. A failed settle is an error:
 * the broker redelivers the message. */
static void settle_one(struct consumer *c, struct job *j)
{
	bool dead = j->outcome == DEAD_LETTER;
	trace_span *span = NULL;
	int rc;

	if (tracecontext_is_valid(&j->trace)) {
		span = trace_span_start("settle-order", TRACE_KIND_CLIENT, &j->trace);
		trace_span_set_str(span, "messaging.system", "rabbitmq");
		trace_span_set_str(span, "messaging.destination.name", c->cfg.orders_queue);
		trace_span_set_str(span, "messaging.operation.type", "settle");
		trace_span_set_str(span, "messaging.operation.name", dead ? "nack" : "ack");
		trace_span_set_int(span, "messaging.rabbitmq.message.delivery_tag",
		                   (int64_t)j->tag);
	}
	rc = mq_settle(c->mq, j->generation, j->tag, dead);
	if (rc < 0)
		span_fail(span, "settle failed, the broker redelivers the message", NULL);
	else
		trace_span_add_event(span, dead ? "message dead-lettered" : "message acknowledged",
		                     NULL, 0);
	trace_span_end(span);
}

/* Acks or dead-letters every finished job on the owner's connection. */
static void settle(struct consumer *c)
{
	uint64_t n;
	struct job *j;

	while (read(c->wake, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&c->lock);
	j = c->done;
	c->done = NULL;
	pthread_mutex_unlock(&c->lock);
	while (j) {
		struct job *next = j->next;
		if (j->outcome != LEAVE)
			settle_one(c, j);
		free(j);
		j = next;
	}
}

static bool in_flight(struct consumer *c)
{
	bool busy;

	pthread_mutex_lock(&c->lock);
	busy = c->queue || c->busy > 0 || c->done;
	pthread_mutex_unlock(&c->lock);
	return busy;
}

static void wait_wake(struct consumer *c, int ms)
{
	struct pollfd p = {c->wake, POLLIN, 0};

	poll(&p, 1, ms);
}

int consumer_run(struct consumer *c)
{
	struct mq_delivery d;
	double deadline;

	while (!atomic_load(&c->stop)) {
		int rc = mq_next(c->mq, &d, 1000, c->wake);
		if (rc == 1)
			enqueue(c, &d);
		if (rc < 0) {
			atomic_store(&c->connected, false);
			purge_queue(c);
			wait_wake(c, 200);
		} else {
			atomic_store(&c->connected, true);
		}
		settle(c);
	}
	log_info("stopping: finishing in-flight orders");
	deadline = now_s() + DRAIN_TIMEOUT_S;
	while (in_flight(c) && now_s() < deadline) {
		wait_wake(c, 100);
		settle(c);
	}
	settle(c);
	return 0;
}

void consumer_stop(struct consumer *c)
{
	atomic_store(&c->stop, true);
	wake(c);
}

bool consumer_connected(struct consumer *c)
{
	return atomic_load(&c->connected);
}

static int register_metrics(void)
{
	static const char *const reason[] = {"reason", NULL};
	static const double bounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

	m_baked = metrics_counter("baker_orders_baked_total", "Orders baked and finished.", NULL);
	m_duration = metrics_histogram("baker_bake_duration_seconds",
	                               "Time spent baking one order, mistakes included.", NULL,
	                               bounds, sizeof(bounds) / sizeof(bounds[0]));
	m_dead = metrics_counter("baker_messages_dead_lettered_total",
	                         "Messages sent to the dead-letter queue, by reason.", reason);
	m_redelivered = metrics_counter("baker_redeliveries_total",
	                                "Deliveries flagged as redelivered by RabbitMQ.", NULL);
	m_already =
	    metrics_counter("baker_orders_already_finished_total",
	                    "Deliveries of orders that were already finished (acked).", NULL);
	m_retries = metrics_counter("baker_store_retries_total",
	                            "Retries after Redis was unavailable.", NULL);
	return m_baked && m_duration && m_dead && m_redelivered && m_already && m_retries ? 0 : -1;
}

struct consumer *consumer_new(const struct config *cfg)
{
	struct consumer *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->cfg = *cfg;
	c->wake = -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->work, NULL);
	if (register_metrics() < 0)
		goto fail;
	c->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	c->mq = mq_new(cfg, cfg->baker_concurrency);
	c->workers = calloc((size_t)cfg->baker_concurrency, sizeof(*c->workers));
	if (c->wake < 0 || !c->mq || !c->workers)
		goto fail;
	for (int i = 0; i < cfg->baker_concurrency; i++) {
		struct worker *w = &c->workers[i];
		w->c = c;
		w->store = store_new(cfg->db_host, cfg->db_port);
		if (!w->store || pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			store_free(w->store);
			goto fail;
		}
		c->nworkers++;
	}
	return c;
fail:
	consumer_free(c);
	return NULL;
}

void consumer_free(struct consumer *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->quit = true;
	pthread_cond_broadcast(&c->work);
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < c->nworkers; i++) {
		pthread_join(c->workers[i].thread, NULL);
		store_free(c->workers[i].store);
	}
	purge_queue(c);
	while (c->done) { /* outcomes after the last settle: the broker redelivers them */
		struct job *next = c->done->next;
		free(c->done);
		c->done = next;
	}
	mq_free(c->mq);
	if (c->wake >= 0)
		close(c->wake);
	free(c->workers);
	pthread_cond_destroy(&c->work);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
