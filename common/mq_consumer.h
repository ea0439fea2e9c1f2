/* mq_consumer.h — deliveries from the orders queue with manual acks, on one owner thread. */
#ifndef BAKERY_MQ_CONSUMER_H
#define BAKERY_MQ_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mq.h"

/* One connection consuming the orders queue. Every call is made from one thread, its owner:
 * nothing locks. */
struct mq_consumer;

/* One received message; every pointer is owned by the delivery (mq_delivery_clear). */
struct mq_delivery {
	uint64_t tag;        /* delivery tag on the connection of `generation` */
	unsigned generation; /* which connection delivered it (see mq_consumer_settle) */
	bool redelivered;
	char *body; /* NUL-terminated copy; len excludes the NUL */
	size_t len;
	char *message_id; /* NULL when absent */
	size_t nheaders;
	struct mq_header headers[MQ_HEADERS_MAX]; /* malloc'd key and value strings */
};

/* Returns a consumer for cfg (copied) with prefetch deliveries unacked at most, that connects
 * on first mq_consumer_next (declaring the topology as the publisher does, going through cfg's
 * addresses in turn) and reconnects with backoff after a failure; NULL when out of memory.
 * Free with mq_consumer_free. */
struct mq_consumer *mq_consumer_new(const struct mq_config *cfg, int prefetch);

/* Closes the connection politely and frees c; accepts NULL. */
void mq_consumer_free(struct mq_consumer *c);

/* True while c holds an open connection. */
bool mq_consumer_connected(const struct mq_consumer *c);

/* Waits up to timeout_ms for the next delivery and fills *d (clear it with mq_delivery_clear).
 * When wake_fd >= 0, becoming readable ends the wait early (the caller drains it). Returns 1
 * with a delivery, 0 on timeout or wake-up, -EAGAIN (the connection is dropped; the next call
 * reconnects after a backoff), or -EEXIST (the queue exists with other arguments). */
int mq_consumer_next(struct mq_consumer *c, struct mq_delivery *d, int timeout_ms, int wake_fd);

/* What becomes of a delivery (mq_consumer_settle). */
enum mq_settle {
	MQ_ACK,         /* done */
	MQ_DEAD_LETTER, /* nack without requeue: to "<queue>.dead" */
	MQ_REQUEUE,     /* nack with requeue: back on the queue for another consumer */
};

/* Settles the delivery tag of connection `generation` as how says. A tag of an older
 * connection is ignored: the broker requeues it anyway. Returns 0 or -EAGAIN. */
int mq_consumer_settle(struct mq_consumer *c, unsigned generation, uint64_t tag,
                       enum mq_settle how);

/* Cancels the subscription (basic.cancel, waiting for cancel-ok): the broker sends no more
 * deliveries; those already on the way still come out of mq_consumer_next, which reconnects
 * (and so consumes again) after a lost connection: once cancelled, call it only while
 * mq_consumer_connected. Returns 0 or -EAGAIN (the connection is dropped). */
int mq_consumer_cancel(struct mq_consumer *c);

/* Frees what d owns and zeroes it; accepts NULL. */
void mq_delivery_clear(struct mq_delivery *d);

#endif
