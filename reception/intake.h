/* intake.h — reception's order pipeline: one thread stores and publishes the orders of many
 * requests together, and each request waits once, for its own order's confirm. */
#ifndef BAKERY_INTAKE_H
#define BAKERY_INTAKE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "mq_publisher.h"
#include "order.h"
#include "otel/trace.h"

/* The AMQP headers of one message: trace_inject's carrier. Names and values are copied into
 * buf, which fits a traceparent, the largest tracestate and the largest baggage. */
struct intake_carrier {
	struct mq_header headers[3];
	size_t n, used;
	char buf[TRACECONTEXT_TRACEPARENT_LEN + TRACECONTEXT_STATE_MAX + TRACECONTEXT_BAGGAGE_MAX +
	         64];
};

/* One order on its way, in its request's memory (9 KB: not for a small stack). The caller
 * sets the fields up to create_span; the pipeline owns the rest until intake_place returns. */
struct intake_order {
	const char *key;
	const struct order *order;
	const char *msg; /* the queue message */
	size_t len;
	/* The request's span context (or NULL): publish-order continues it. */
	const struct trace_context *parent;
	/* The CLIENT span create-order (or NULL), detached from the request's thread: the pipeline
	 * ends it when the order is stored, or not. */
	trace_span *create_span;
	/* The pipeline's: */
	bool stored;
	trace_span *publish_span; /* PRODUCER publish-order, started once stored */
	struct mq_ticket ticket;
	struct intake_carrier carrier;
	struct intake_order *next;
};

/* Starts the pipeline for cfg's Redis and RabbitMQ (cfg must outlive it): its thread, its
 * Redis connection and the publisher, whose reader thread also clears the queue deadlines
 * of confirmed orders (on a Redis connection of its own). Returns 0, -ENOMEM or -EALREADY. */
int intake_init(const struct config *cfg);

/* Stores o (HSET, pipelined with other requests' orders) and, once stored, publishes its
 * message in the PRODUCER span publish-order (whose context travels in the AMQP headers),
 * then waits for the broker's confirm and the clearing of the queue deadline: everything
 * within about timeout_ms, plus at most one Redis round trip's own timeouts (the batch being
 * stored when the time is up). A publish not sent, or whose connection was lost, is sent once
 * more with the time left (mq_publisher_retry): a message goes out at most twice, plus once
 * after each nack (a nacked message is not queued). Returns,
 * with o->stored false, the store's error (-EAGAIN, -EINVAL) or -ETIMEDOUT (its turn came with
 * too little time left to publish it: not stored); with o->stored true, 0 (confirmed and queued),
 * an mq_publisher_wait error or -EALREADY (confirmed, but the order had failed meanwhile). Then
 * o->publish_span (NULL unless stored and traced) is the caller's to end. Thread-safe. */
int intake_place(struct intake_order *o, int timeout_ms);

/* Stops the thread and frees what intake_init made; after the server stopped. */
void intake_free(void);

#endif
