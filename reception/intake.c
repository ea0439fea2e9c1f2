/* intake.c — reception's order pipeline: batches of orders stored in one round trip, then
 * published together; each request waits once. */
#include "intake.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "store.h"

#define BATCH 64 /* orders per Redis round trip */

static const struct config *config;
static struct store *store;            /* the pipeline thread's */
static struct mq_publisher *publisher; /* many publishes in flight, each settled by its confirm */
static struct store *confirms;         /* the publisher's reader thread's, for orders_queued */
static pthread_t thread;
static bool started;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready = PTHREAD_COND_INITIALIZER; /* an order queued, or stopping */
static struct intake_order *head, **tail = &head;       /* the queue, oldest first */
static bool stopping;

/* How long the confirm hook keeps trying to clear queue deadlines through a Redis outage or
 * failover (Sentinel's takes a few seconds) before the orders go without a 202. */
#define QUEUED_RETRY_MS 8000

/* The publisher's mq_publisher_on_confirm hook: clears the queue deadlines of the orders whose
 * messages were just confirmed, in a round trip or so, before their requests go on: an order that
 * had turned failed is -EALREADY (no 202). A 202 needs the deadline cleared (and, with
 * REDIS_WAIT_REPLICAS, on the replicas): else a reader could fail the accepted order once its
 * deadline passes while the message waits in a long queue. So a failed clearing is tried again
 * until QUEUED_RETRY_MS; then it is -ETIMEDOUT for its request: a 503 naming the order, which
 * stays pending (its message is queued: the baker clears the deadline when it takes it). */
static void orders_queued(void *arg, const char *const *keys, int *rcs, size_t n)
{
	long long give_up = clock_now_ms() + QUEUED_RETRY_MS;
	bool failing = true;
	size_t i;

	(void)arg;
	store_orders_queued(confirms, keys, n, rcs);
	while (failing && clock_now_ms() < give_up) {
		failing = false;
		for (i = 0; i < n; i++) {
			if (rcs[i] >= 0 || rcs[i] == -EALREADY)
				continue;
			if (!failing) /* rare (an outage): one key at a time, a pause per round */
				clock_wait(clock_now_ms() + 100, NULL);
			rcs[i] = 0;
			store_orders_queued(confirms, &keys[i], 1, &rcs[i]);
			failing |= rcs[i] < 0 && rcs[i] != -EALREADY;
		}
	}
	for (i = 0; i < n; i++) {
		if (rcs[i] < 0 && rcs[i] != -EALREADY) {
			log_error("could not clear the queue deadline: no 202", "order_key",
			          keys[i], "error", store_strerror(rcs[i]));
			rcs[i] = -ETIMEDOUT;
		}
	}
}

static const char *carrier_copy(struct intake_carrier *c, const char *s)
{
	size_t len = strlen(s) + 1;
	char *p = c->buf + c->used;

	if (len > sizeof(c->buf) - c->used)
		return NULL;
	memcpy(p, s, len);
	c->used += len;
	return p;
}

static int carrier_set(void *carrier, const char *name, const char *value)
{
	struct intake_carrier *c = carrier;
	const char *k, *v;

	if (c->n == sizeof(c->headers) / sizeof(c->headers[0]) || !(k = carrier_copy(c, name)) ||
	    !(v = carrier_copy(c, value)))
		return -ENOSPC;
	c->headers[c->n++] = (struct mq_header){k, v};
	return 0;
}

/* Sends a stored order's message in its PRODUCER span publish-order, handed to the request
 * with the order; a message not sent settles the order's ticket (-EAGAIN). After a send, o
 * is its request's again (its confirm may already have come). */
static void publish(struct intake_order *o)
{
	trace_span *span = trace_span_start("publish-order", TRACE_KIND_PRODUCER,
	                                    o->parent ? o->parent : TRACE_ROOT);

	if (trace_span_is_recording(span)) {
		trace_span_set_str(span, "messaging.system", "rabbitmq");
		trace_span_set_str(span, "messaging.destination.name", config->mq.queue);
		trace_span_set_str(span, "messaging.operation.type", "publish");
		trace_span_set_str(span, "messaging.operation.name", "publish");
		trace_span_set_str(span, "messaging.message.id", o->key);
		trace_span_set_int(span, "messaging.message.body.size", (int64_t)o->len);
		if (config->mq.nhosts == 1) { /* else: which node, the connection knows */
			trace_span_set_str(span, "server.address", config->mq.hosts[0].host);
			trace_span_set_int(span, "server.port", config->mq.hosts[0].port);
		}
	}
	o->carrier.n = o->carrier.used = 0;
	if (span && trace_inject(span, carrier_set, &o->carrier) < 0)
		o->carrier.n = 0; /* cannot happen with buf's size; then publish without context */
	trace_span_detach(span);
	o->publish_span = span;
	if (mq_publisher_send(publisher, &o->ticket, o->key, o->msg, o->len, o->carrier.headers,
	                      o->carrier.n) < 0)
		mq_ticket_settle(&o->ticket, -EAGAIN);
}

/* Stores n orders in one round trip, then sends the messages of those stored; an order not
 * stored settles its ticket with the store's error. An order without time left for its
 * confirm (MQ_CONFIRM_MIN_MS: it could not be sent) is not stored: -ETIMEDOUT. */
static void run_batch(struct intake_order **batch, size_t n)
{
	const char *keys[BATCH];
	const struct order *orders[BATCH];
	int rcs[BATCH];
	size_t m = 0;
	long long now = clock_now_ms();

	for (size_t i = 0; i < n; i++) {
		if (batch[i]->ticket.deadline_ms - now < MQ_CONFIRM_MIN_MS) {
			trace_span_set_error(batch[i]->create_span, "no time left to publish it");
			trace_span_end(batch[i]->create_span);
			mq_ticket_settle(&batch[i]->ticket, -ETIMEDOUT);
			continue;
		}
		batch[m] = batch[i];
		keys[m] = batch[i]->key;
		orders[m++] = batch[i]->order;
	}
	if (m > 0)
		store_orders_create(store, keys, orders, m, rcs);
	for (size_t i = 0; i < m; i++) { /* those not stored go first: nothing to wait for */
		store_span_end(batch[i]->create_span, rcs[i]);
		if (!(batch[i]->stored = rcs[i] == 0))
			mq_ticket_settle(&batch[i]->ticket, rcs[i]);
	}
	for (size_t i = 0; i < m; i++) {
		if (rcs[i] == 0)
			publish(batch[i]);
	}
}

/* The pipeline thread: takes every order queued, BATCH at a time, until stopped with none
 * left. */
static void *intake_main(void *arg)
{
	struct intake_order *batch[BATCH];
	size_t n;

	(void)arg;
	pthread_mutex_lock(&lock);
	for (;;) {
		while (!head && !stopping)
			pthread_cond_wait(&ready, &lock);
		if (!head)
			break;
		for (n = 0; head && n < BATCH; n++) {
			batch[n] = head;
			head = head->next;
		}
		if (!head)
			tail = &head;
		pthread_mutex_unlock(&lock);
		run_batch(batch, n);
		pthread_mutex_lock(&lock);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

int intake_place(struct intake_order *o, int timeout_ms)
{
	int rc;

	o->stored = false;
	o->publish_span = NULL;
	o->next = NULL;
	mq_ticket_init(&o->ticket, clock_now_ms() + timeout_ms);
	pthread_mutex_lock(&lock);
	*tail = o;
	tail = &o->next;
	pthread_cond_signal(&ready);
	pthread_mutex_unlock(&lock);
	rc = mq_publisher_wait(publisher, &o->ticket);
	if (rc == -EAGAIN && o->stored) /* not sent, or lost before its confirm */
		rc = mq_publisher_retry(publisher, &o->ticket, o->key, o->msg, o->len,
		                        o->carrier.headers, o->carrier.n);
	mq_ticket_destroy(&o->ticket);
	return rc;
}

int intake_init(const struct config *cfg)
{
	if (started)
		return -EALREADY;
	config = cfg;
	stopping = false;
	store = store_new(&cfg->redis);
	confirms = store_new(&cfg->redis);
	publisher = mq_publisher_new(&cfg->mq);
	if (!store || !confirms || !publisher)
		goto fail;
	mq_publisher_on_confirm(publisher, orders_queued, NULL);
	if (pthread_create(&thread, NULL, intake_main, NULL) != 0)
		goto fail;
	pthread_setname_np(thread, "intake");
	started = true;
	return 0;
fail:
	intake_free();
	return -ENOMEM;
}

void intake_free(void)
{
	if (started) {
		pthread_mutex_lock(&lock);
		stopping = true;
		pthread_cond_signal(&ready);
		pthread_mutex_unlock(&lock);
		pthread_join(thread, NULL);
		started = false;
	}
	mq_publisher_free(
	    publisher); /* its reader thread runs orders_queued: before confirms goes */
	publisher = NULL;
	store_free(confirms);
	confirms = NULL;
	store_free(store);
	store = NULL;
}
