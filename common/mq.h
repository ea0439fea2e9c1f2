/* mq.h — what RabbitMQ's publisher and consumer share: their settings, headers and errors. */
#ifndef BAKERY_MQ_H
#define BAKERY_MQ_H

#include <stddef.h>

#include "addr.h"

#define MQ_CRED_MAX           128
#define MQ_QUEUE_MAX          200  /* leaves room for ".dead" within AMQP's 255-byte names */
#define MQ_HEADERS_MAX        8    /* string headers kept per message (traceparent, ...) */
#define MQ_HEADER_VALUE_MAX   4096 /* longer header values are not kept */
#define MQ_HEARTBEAT_S        30
#define MQ_CONFIRM_MIN_MS     1000 /* a publish is sent only with this long left for its confirm */
#define MQ_DELIVERY_LIMIT     100  /* a quorum queue's default x-delivery-limit */
#define MQ_DELIVERY_LIMIT_MAX 1000000

/* Errors are negative errno values:
 *   -EAGAIN     unavailable: not connected, connection lost, backing off, or the broker closed
 *               the channel or refused (nacked) a publish (a message not sent, or nacked, is not
 *               queued);
 *   -EEXIST     the queue exists with other arguments (another type, say: 406 on declare);
 *   -EPROTO     the broker returned the message (unroutable): not queued;
 *   -ETIMEDOUT  sent, but no confirm in time (or the connection was lost before it): the
 *               message may or may not be on the queue.
 * The library logs only its connection's state changes ("rabbitmq unavailable" once, then
 * "rabbitmq connected"); the caller logs what a failure means. */

/* The way out of -EEXIST, for the one error line of whoever meets it. */
#define MQ_EEXIST_FIX                                                                              \
	"the queue exists with another type or arguments: delete it (and <queue>.dead) or set "    \
	"ORDERS_QUEUE_TYPE (and ORDERS_DELIVERY_LIMIT) to what it has"

/* The orders queue's kind: quorum (replicated, a majority confirms) or classic (one node). */
enum mq_queue_type { MQ_QUORUM, MQ_CLASSIC };

/* "quorum" or "classic". */
#define MQ_QUEUE_TYPE_NAME(t) ((t) == MQ_QUORUM ? "quorum" : "classic")

/* Where the broker is and what the queue is; strings are NUL-terminated copies. */
struct mq_config {
	struct addr hosts[ADDR_LIST_MAX]; /* tried in turn, from the first */
	size_t nhosts;
	char user[MQ_CRED_MAX];
	char pass[MQ_CRED_MAX];
	char queue[MQ_QUEUE_MAX]; /* dead letters: "<queue>.dlx" -> "<queue>.dead" */
	enum mq_queue_type queue_type;
	int delivery_limit; /* quorum only: x-delivery-limit */
};

/* A string header: trace context (traceparent, tracestate, baggage) travels in these. */
struct mq_header {
	const char *key;
	const char *value;
};

#endif
