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
#include <unistd.h>

#include "backoff.h"
#include "bake.h"
#include "log.h"
#include "metrics.h"
#include "mq_consumer.h"
#include "order.h"
#include "store.h"
#include "clock.h"
#include "otel/trace.h"

#define RETRY_FIRST_MS    250
#define RETRY_MAX_MS      2000 /* a transient (Redis) failure is retried this often, forever */
#define RETRY_LOG_EVERY   15   /* a warning on the first retry of an order and every 15th */
#define DRAIN_TIMEOUT_S   6    /* how long a stop lets in-flight orders finish */
#define ABANDON_TIMEOUT_S 3    /* then how long cancelled bakes get to hand their jobs back */

/* A delivery's outcome: MQ_ACK when done (or already done, or failed for good),
 * MQ_DEAD_LETTER when it can never be done, MQ_REQUEUE when stopping before it was done. */
static const char *const outcome_names[] = {"ack", "dead-letter", "requeue"};

/* A delivery on its way to a worker, then its outcome on its way back to the owner. */
struct job {
	struct mq_delivery d;
	unsigned generation;
	uint64_t tag;
	enum mq_settle outcome;
	char key[ORDER_KEY_LEN + 1]; /* the order ("" when the message was malformed) */
	struct trace_context trace;  /* receive-order's, the parent of settle-order */
	struct job *next;
};

struct worker {
	struct consumer *c;
	pthread_t thread;
	struct store *store;         /* this worker's own Redis connection */
	char key[ORDER_KEY_LEN + 1]; /* the order it is processing ("": none); under c->lock */
	atomic_bool cancel; /* its bake stops: stopping, or its delivery's connection is gone */
};

struct consumer {
	struct config cfg;
	struct mq_consumer *mq; /* owned by the thread in consumer_run */
	int wake;               /* eventfd: results are ready, or stop was asked */
	atomic_bool stop;
	atomic_bool abandon; /* the drain timed out: bakes stop, their orders are requeued */
	atomic_bool connected;
	atomic_int store_waits; /* workers retrying an order while Redis is unavailable */
	pthread_mutex_t lock;
	pthread_cond_t work;
	struct job *queue, *queue_tail; /* deliveries waiting for a worker */
	struct job *done;               /* outcomes waiting to be settled */
	int busy;                       /* jobs being processed */
	bool quit;                      /* workers exit once the queue is empty */
	int nworkers;
	struct worker *workers;
};

static struct metric *m_baked, *m_duration, *m_dead, *m_redelivered, *m_already, *m_elsewhere,
    *m_retries, *m_failed, *m_requeued;

static void wake(struct consumer *c)
{
	uint64_t one = 1;

	while (write(c->wake, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

/* Marks span failed with an event named what and the order key (a failure path). */
static void span_fail(trace_span *span, const char *what, const char *key)
{
	struct trace_attr a = TRACE_STR("bakery.order_key", key);

	trace_span_add_event(span, what, &a, key ? 1 : 0);
	trace_span_set_error(span, what);
}

/* What one attempt at an order leaves to the next (process retries while Redis is away). */
struct attempt {
	int baked;            /* the bake's rounds, -1 until it is done: a retry then only writes */
	bool fresh;           /* a first delivery that has not tried to write "baking" yet */
	trace_span *unlinked; /* receive-order without trace context: linked to the order's */
};

/* Reads the order (linking a->unlinked to its stored context) and, unless it is finished, failed
 * or (a->fresh) baking in another delivery (whose message comes back should its baker die),
 * writes baking and bakes it in an INTERNAL span "baking". Returns the rounds baked (also in
 * a->baked), 0 when nothing is left to do, -ECANCELED (stopping) or a store_* error. */
static int bake_fresh(struct worker *w, const char *key, trace_span *span, struct attempt *a)
{
	trace_span *baking, *op;
	struct trace_context created; /* the context stored with the order: its creating span */
	struct order o;
	double t0;
	int rc, n;

	op = store_span_start(w->store, "read-order", "HMGET", key, NULL);
	rc = store_span_end(op, store_order_get(w->store, key, &o));
	if (rc < 0)
		return rc;
	if (a->unlinked && order_trace_context(&o, &created) == 0)
		trace_span_add_link(a->unlinked, &created,
		                    &TRACE_STR("bakery.link", "order created"), 1);
	a->unlinked = NULL;
	if (strcmp(o.status, "finished") == 0) {
		metrics_add(m_already, 1);
		log_info("order already finished, not baking again", "order_key", key);
		trace_span_add_event(span, "order already finished, not baking again", NULL, 0);
		return 0;
	}
	if (strcmp(o.status, "failed") == 0) {
		/* Failed is final (e.g. never queued by its deadline): the client was told so. */
		metrics_add(m_failed, 1);
		log_warn("order failed, not baking", "order_key", key);
		trace_span_add_event(span, "order failed, not baking", NULL, 0);
		return 0;
	}
	if (a->fresh && strcmp(o.status, "baking") == 0) {
		metrics_add(m_elsewhere, 1);
		log_info("order being baked by another delivery, not baking again", "order_key",
		         key);
		trace_span_add_event(span, "order being baked by another delivery", NULL, 0);
		return 0;
	}
	/* "baking" is ours from the moment it is sent: a write whose reply was lost may have been
	 * applied, and the retry must not take it for another delivery's (and ack unbaked). */
	a->fresh = false;
	op = store_span_start(w->store, "update-order", "EVALSHA", key, "baking");
	rc = store_span_end(op, store_order_set_status(w->store, key, "baking"));
	if (rc == -EALREADY)
		return 0; /* finished or failed meanwhile */
	if (rc < 0)
		return rc;
	baking = trace_span_start("baking", TRACE_KIND_INTERNAL, NULL);
	trace_span_set_str(baking, "bakery.order_key", key);
	trace_span_set_str(baking, "baker.pastry", o.pastry);
	log_info("baking order", "order_key", key, "pastry", o.pastry);
	t0 = clock_now_s();
	n = bake(o.pastry, w->c->cfg.bake_time_scale, &w->cancel); /* mistakes: events */
	if (n < 0) {
		trace_span_add_event(baking, "baking cancelled", NULL, 0);
		trace_span_end(baking);
		return n;
	}
	metrics_add(m_duration, clock_now_s() - t0);
	trace_span_set_int(baking, "baker.rounds", n);
	trace_span_end(baking);
	return a->baked = n;
}

/* Writes finished for an order baked in rounds; span (processing-order) gets
 * baker.time_to_completion_ms, the time since sent_ms (the message's timeEnqueued; < 0
 * unknown). Returns 0 (also when the order failed meanwhile) or a store_* error. */
static int finish(struct worker *w, const char *key, trace_span *span, double sent_ms, int n)
{
	trace_span *op;
	char rounds[16];
	int rc;

	op = store_span_start(w->store, "update-order", "EVALSHA", key, "finished");
	rc = store_span_end(op, store_order_set_status(w->store, key, "finished"));
	if (rc == -EALREADY) {
		log_warn("order failed while baking, left failed", "order_key", key);
		return 0;
	}
	if (rc < 0)
		return rc;
	snprintf(rounds, sizeof(rounds), "%d", n);
	metrics_add(m_baked, 1);
	if (sent_ms >= 0)
		trace_span_set_int(span, "baker.time_to_completion_ms",
		                   (int64_t)((double)clock_wall_ms() - sent_ms));
	log_info("order finished", "order_key", key, "rounds", rounds);
	return 0;
}

/* Makes key (NULL: none) the order w processes, unless another worker of this process is
 * processing it already (a duplicate delivery): returns false then. */
static bool claim(struct worker *w, const char *key)
{
	bool ok = true;

	pthread_mutex_lock(&w->c->lock);
	for (int i = 0; key && i < w->c->nworkers && ok; i++)
		ok = &w->c->workers[i] == w || strcmp(w->c->workers[i].key, key) != 0;
	if (ok)
		snprintf(w->key, sizeof(w->key), "%s", key ? key : "");
	pthread_mutex_unlock(&w->c->lock);
	return ok;
}

/* Decides what becomes of one delivery, inside span (processing-order): every failure path
 * sets its error status with an event. A message that can never be done (malformed, unknown
 * order, a key that is not an order) is dead-lettered at once. A transient failure (Redis
 * unavailable, loading, failing over) is never dead-lettered: the worker holds the delivery
 * and retries with capped exponential backoff for as long as it takes (an event per retry;
 * the baker is not ready meanwhile, and with every worker waiting the prefetch is full, so
 * no more deliveries come); stopping hands it back to the queue. msg is the parsed message,
 * NULL when malformed; unlinked as in struct attempt. */
static enum mq_settle process(struct worker *w, const struct mq_delivery *d,
                              const struct order_message *msg, trace_span *span,
                              trace_span *unlinked)
{
	struct backoff retry = {0};
	const char *key;
	struct attempt a = {-1, !d->redelivered, unlinked};
	int attempt;
	enum mq_settle out;

	if (d->redelivered)
		metrics_add(m_redelivered, 1);
	if (!msg) {
		log_warn("malformed message, dead-lettering", "message_id", d->message_id);
		metrics_add(m_dead, 1, "malformed");
		span_fail(span, "malformed message, dead-lettered", NULL);
		return MQ_DEAD_LETTER;
	}
	key = msg->key;
	trace_span_set_str(span, "bakery.order_key", key);
	if (!claim(w, key)) {
		/* Another worker here holds a delivery of this order. Acking this one now would be
		 * unsafe when that one's connection has gone (a Redis outage across a broker
		 * restart: its ack can no longer land, and this is the message that remains), so
		 * wait for it, then look again: normally the order is finished and this is acked.
		 */
		log_info("order held by another delivery here, waiting for it", "order_key", key);
		trace_span_add_event(span, "order held by another delivery, waiting", NULL, 0);
		while (!claim(w, key)) {
			if (atomic_load(&w->c->stop)) {
				span_fail(span, "stopping, requeued", key);
				return MQ_REQUEUE;
			}
			clock_wait(clock_now_ms() + 50, &w->c->stop);
		}
	}
	for (attempt = 1;; attempt++) {
		/* One attempt: bake (unless an earlier attempt did), then write finished. */
		int rc = a.baked >= 0 ? a.baked : bake_fresh(w, key, span, &a), delay;
		if (rc > 0)
			rc = finish(w, key, span, msg->enqueued_ms, rc);
		if (rc == 0) {
			out = MQ_ACK;
			break;
		}
		if (rc == -ENOENT || rc == -EINVAL) {
			bool unknown = rc == -ENOENT;
			log_warn(unknown ? "unknown order, dead-lettering"
			                 : "not an order in redis (wrong type), dead-lettering",
			         "order_key", key);
			metrics_add(m_dead, 1, unknown ? "unknown_order" : "invalid_order");
			span_fail(span,
			          unknown ? "unknown order, dead-lettered"
			                  : "not an order, dead-lettered",
			          key);
			out = MQ_DEAD_LETTER;
			break;
		}
		if (rc == -ECANCELED && !atomic_load(&w->c->stop)) {
			/* Its connection is gone: the broker redelivers the message, that copy
			 * bakes; this one's requeue is ignored (an older connection's tag). */
			log_warn("connection lost while baking, the redelivered copy bakes",
			         "order_key", key);
			span_fail(span, "connection lost, bake cancelled", key);
			out = MQ_REQUEUE;
			break;
		}
		if (rc == -ECANCELED || atomic_load(&w->c->stop)) {
			log_warn("stopping before the order was done, requeueing it", "order_key",
			         key);
			span_fail(span, "stopping, requeued", key);
			out = MQ_REQUEUE;
			break;
		}
		if (attempt == 1) /* waiting for Redis until the loop ends */
			atomic_fetch_add(&w->c->store_waits, 1);
		if (attempt % RETRY_LOG_EVERY == 1)
			log_warn("redis unavailable, holding the order and retrying", "order_key",
			         key, "error", store_strerror(rc));
		metrics_add(m_retries, 1);
		delay = backoff_fail(&retry, 0, RETRY_FIRST_MS, RETRY_MAX_MS);
		trace_span_add_event(span, "redis unavailable, retrying",
		                     (struct trace_attr[]){TRACE_INT("bakery.attempt", attempt),
		                                           TRACE_INT("bakery.retry_in_ms", delay)},
		                     2);
		clock_wait(clock_now_ms() + delay, &w->c->stop);
	}
	if (attempt > 1)
		atomic_fetch_sub(&w->c->store_waits, 1);
	claim(w, NULL);
	return out;
}

/* trace_extract's view of a delivery's AMQP headers (every entry of a name). */
static const char *amqp_header_get(void *carrier, const char *name, size_t index, size_t *len)
{
	const struct mq_delivery *d = carrier;

	for (size_t i = 0; i < d->nheaders; i++) {
		if (d->headers[i].key && d->headers[i].value &&
		    strcmp(d->headers[i].key, name) == 0 && index-- == 0) {
			*len = strlen(d->headers[i].value);
			return d->headers[i].value;
		}
	}
	return NULL;
}

/* Handles one delivery in a CONSUMER span receive-order that starts a new trace linked to the
 * publisher's span (from the message's traceparent; without one, to the context stored with
 * the order, once read), with processing-order inside. The span
 * ends here, on the worker thread that made it: the ack happens later on the channel's owner
 * thread, which records it in a child span settle-order from the context kept in j->trace. */
static enum mq_settle handle(struct worker *w, struct job *j)
{
	const struct mq_delivery *d = &j->d;
	trace_span *span = trace_span_start("receive-order", TRACE_KIND_CONSUMER, TRACE_ROOT);
	trace_span *processing;
	struct order_message msg;
	bool parsed = order_message_parse(d->body, d->len, &msg) == 0;
	trace_span *unlinked = NULL;
	enum mq_settle out;

	if (parsed)
		snprintf(j->key, sizeof(j->key), "%s", msg.key);
	if (trace_span_is_recording(span)) {
		struct trace_context producer;
		if (trace_extract(amqp_header_get, (void *)d, &producer) == 0)
			trace_span_add_link(span, &producer, NULL, 0);
		else
			unlinked = span;
		if (parsed)
			trace_span_set_str(span, "bakery.order_key", msg.key);
		trace_span_set_str(span, "messaging.system", "rabbitmq");
		trace_span_set_str(span, "messaging.destination.name", w->c->cfg.mq.queue);
		trace_span_set_str(span, "messaging.operation.type", "process");
		trace_span_set_str(span, "messaging.operation.name", "receive");
		if (d->message_id)
			trace_span_set_str(span, "messaging.message.id", d->message_id);
		trace_span_set_int(span, "messaging.message.body.size", (int64_t)d->len);
		trace_span_set_int(span, "messaging.rabbitmq.message.delivery_tag",
		                   (int64_t)d->tag);
		trace_span_set_bool(span, "bakery.redelivered", d->redelivered);
		if (w->c->cfg.mq.nhosts == 1) { /* else: which node, the connection knows */
			trace_span_set_str(span, "server.address", w->c->cfg.mq.hosts[0].host);
			trace_span_set_int(span, "server.port", w->c->cfg.mq.hosts[0].port);
		}
		if (parsed && msg.enqueued_ms >= 0)
			trace_span_set_int(span, "queue.time_on_queue_ms",
			                   (int64_t)((double)clock_wall_ms() - msg.enqueued_ms));
	}
	processing = trace_span_start("processing-order", TRACE_KIND_INTERNAL, NULL);
	out = process(w, d, parsed ? &msg : NULL, processing, unlinked);
	trace_span_end(processing);
	trace_span_add_event(span, "message processed",
	                     &TRACE_STR("bakery.outcome", outcome_names[out]), 1);
	if (out != MQ_ACK)
		trace_span_set_error(span, out == MQ_DEAD_LETTER ? "dead-lettered" : "requeued");
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
		atomic_store(&w->cancel, atomic_load(&c->abandon)); /* see cancel_bakes */
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

/* Hands a delivery nobody will process back to the broker (nack with requeue) and clears it;
 * on a lost connection the broker has requeued it already. */
static void requeue_delivery(struct consumer *c, struct mq_delivery *d)
{
	if (mq_consumer_settle(c->mq, d->generation, d->tag, MQ_REQUEUE) == 0)
		metrics_add(m_requeued, 1);
	mq_delivery_clear(d);
}

/* Cancels the bakes in progress: on a lost connection (the broker redelivers their messages,
 * and only those copies bake), or with abandon when stopping (then every later bake too). */
static void cancel_bakes(struct consumer *c, bool abandon)
{
	pthread_mutex_lock(&c->lock);
	if (abandon)
		atomic_store(&c->abandon, true);
	for (int i = 0; i < c->nworkers; i++)
		atomic_store(&c->workers[i].cancel, true);
	pthread_mutex_unlock(&c->lock);
}

/* Acks, dead-letters or requeues j in a CLIENT span settle-order, a child of j's
 * receive-order (ended by then on the worker's thread), with an event saying which. A failed
 * settle is an error: the broker redelivers the message. */
static void settle_one(struct consumer *c, struct job *j)
{
	static const char *const op[] = {"ack", "nack", "nack"};
	static const char *const done[] = {"message acknowledged", "message dead-lettered",
	                                   "message requeued"};
	trace_span *span = NULL;
	int rc;

	if (tracecontext_is_valid(&j->trace)) {
		span = trace_span_start("settle-order", TRACE_KIND_CLIENT, &j->trace);
		trace_span_set_str(span, "messaging.system", "rabbitmq");
		trace_span_set_str(span, "messaging.destination.name", c->cfg.mq.queue);
		trace_span_set_str(span, "messaging.operation.type", "settle");
		trace_span_set_str(span, "messaging.operation.name", op[j->outcome]);
		trace_span_set_int(span, "messaging.rabbitmq.message.delivery_tag",
		                   (int64_t)j->tag);
		if (j->key[0])
			trace_span_set_str(span, "bakery.order_key", j->key);
	}
	rc = mq_consumer_settle(c->mq, j->generation, j->tag, j->outcome);
	if (rc < 0)
		span_fail(span, "settle failed, the broker redelivers the message", NULL);
	else
		trace_span_add_event(span, done[j->outcome], NULL, 0);
	if (rc == 0 && j->outcome == MQ_REQUEUE)
		metrics_add(m_requeued, 1);
	trace_span_end(span);
}

/* What end_jobs does with each job. */
enum job_end { JOB_DROP, JOB_REQUEUE, JOB_SETTLE };

/* Takes the jobs of list (c->queue: deliveries no worker has started, or c->done: outcomes) and
 * frees them after dropping their deliveries (the connection is gone: the broker redelivers
 * them), requeueing them (stopping), or settling their outcomes on the owner's connection. */
static void end_jobs(struct consumer *c, struct job **list, enum job_end how)
{
	struct job *j;

	pthread_mutex_lock(&c->lock);
	j = *list;
	*list = NULL;
	if (list == &c->queue)
		c->queue_tail = NULL;
	pthread_mutex_unlock(&c->lock);
	while (j) {
		struct job *next = j->next;
		if (how == JOB_SETTLE)
			settle_one(c, j);
		else if (how == JOB_REQUEUE)
			requeue_delivery(c, &j->d);
		else
			mq_delivery_clear(&j->d);
		free(j);
		j = next;
	}
}

/* Settles every finished job on the owner's connection. */
static void settle(struct consumer *c)
{
	uint64_t n;

	while (read(c->wake, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	end_jobs(c, &c->done, JOB_SETTLE);
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

/* Waits up to seconds for the workers to finish, settling their results as they come; keeps
 * reading the connection (heartbeats, a close) and requeues deliveries that still arrive. */
static void drain(struct consumer *c, double seconds)
{
	double deadline = clock_now_s() + seconds;
	struct mq_delivery d;

	while (in_flight(c) && clock_now_s() < deadline) {
		if (mq_consumer_connected(c->mq)) { /* never reconnect: that would consume again */
			if (mq_consumer_next(c->mq, &d, 100, c->wake) == 1)
				requeue_delivery(c, &d);
		} else {
			wait_wake(c, 100);
		}
		settle(c);
	}
	settle(c);
}

int consumer_run(struct consumer *c)
{
	struct mq_delivery d;
	double stopped;

	while (!atomic_load(&c->stop)) {
		int rc = mq_consumer_next(c->mq, &d, 1000, c->wake);
		if (rc == 1)
			enqueue(c, &d);
		if (rc == -EEXIST) { /* nothing else to do: retrying would only loop */
			log_error("cannot declare the orders queue", "queue", c->cfg.mq.queue,
			          "ORDERS_QUEUE_TYPE", MQ_QUEUE_TYPE_NAME(c->cfg.mq.queue_type),
			          "error", MQ_EEXIST_FIX);
			return -EEXIST;
		}
		atomic_store(&c->connected, rc >= 0);
		if (rc < 0) {
			end_jobs(c, &c->queue, JOB_DROP);
			cancel_bakes(c, false); /* after the purge: no stale job starts later */
			wait_wake(c, 200);
		}
		settle(c);
	}
	/* Stop: no new deliveries (basic.cancel), back to the queue with what nobody started,
	 * in-flight orders finish within the drain timeout, then the rest are cancelled and
	 * requeued too. Nothing is left unsettled on a live connection. */
	stopped = clock_now_s(); /* the drain counts from here, the cancel's round trip included */
	log_info("stopping: consumer cancelled, finishing in-flight orders");
	atomic_store(&c->connected, false);
	if (mq_consumer_connected(c->mq) && mq_consumer_cancel(c->mq) < 0)
		log_warn("basic.cancel failed; the broker requeues on close");
	end_jobs(c, &c->queue, JOB_REQUEUE);
	drain(c, DRAIN_TIMEOUT_S - (clock_now_s() - stopped));
	if (in_flight(c)) {
		log_warn("drain timed out: requeueing the orders still baking");
		cancel_bakes(c, true);
		drain(c, ABANDON_TIMEOUT_S);
	}
	return 0;
}

void consumer_stop(struct consumer *c)
{
	atomic_store(&c->stop, true);
	wake(c);
}

bool consumer_ready(struct consumer *c)
{
	return atomic_load(&c->connected) && atomic_load(&c->store_waits) == 0;
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
	m_elsewhere = metrics_counter(
	    "baker_orders_baking_elsewhere_total",
	    "First deliveries of orders another delivery was baking (acked, not baked).", NULL);
	m_retries = metrics_counter("baker_store_retries_total",
	                            "Retries after Redis was unavailable.", NULL);
	m_failed =
	    metrics_counter("baker_orders_already_failed_total",
	                    "Deliveries of orders that were failed (acked, not baked).", NULL);
	m_requeued = metrics_counter("baker_messages_requeued_total",
	                             "Deliveries handed back to the queue when stopping.", NULL);
	return m_baked && m_duration && m_dead && m_redelivered && m_already && m_elsewhere &&
	               m_retries && m_failed && m_requeued
	           ? 0
	           : -1;
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
	c->mq = mq_consumer_new(&cfg->mq, cfg->baker_concurrency);
	c->workers = calloc((size_t)cfg->baker_concurrency, sizeof(*c->workers));
	if (c->wake < 0 || !c->mq || !c->workers)
		goto fail;
	for (int i = 0; i < cfg->baker_concurrency; i++) {
		struct worker *w = &c->workers[i];
		w->c = c;
		w->store = store_new(&cfg->redis);
		if (!w->store)
			goto fail;
		store_set_held(w->store); /* holding the delivery proves the order was queued */
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
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
	atomic_store(&c->stop, true); /* retries give up, bakes stop: nothing holds the join */
	cancel_bakes(c, true);
	pthread_mutex_lock(&c->lock);
	c->quit = true;
	pthread_cond_broadcast(&c->work);
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < c->nworkers; i++) {
		pthread_join(c->workers[i].thread, NULL);
		store_free(c->workers[i].store);
	}
	end_jobs(c, &c->queue, JOB_DROP);
	end_jobs(c, &c->done, JOB_DROP); /* outcomes after the last settle: the broker redelivers */
	mq_consumer_free(c->mq);
	if (c->wake >= 0)
		close(c->wake);
	free(c->workers);
	pthread_cond_destroy(&c->work);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
