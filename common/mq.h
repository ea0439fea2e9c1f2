/* mq.h — RabbitMQ (librabbitmq): topology, confirmed publishes, consuming, ack and nack. */
#ifndef BAKERY_MQ_H
#define BAKERY_MQ_H

#include <semaphore.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define MQ_HEADERS_MAX      8    /* string headers kept per message (traceparent, ...) */
#define MQ_HEADER_VALUE_MAX 4096 /* longer header values are not kept */
#define MQ_HEARTBEAT_S      30
#define MQ_CONFIRM_MIN_MS   1000 /* a publish is sent only with this long left for its confirm */

/* Errors are negative errno values:
 *   -EAGAIN     unavailable: not connected, connection lost, backing off, or the broker closed
 *               the channel (a publish was never sent: not queued);
 *   -EPROTO     the broker refused (nack) or returned the message: not queued;
 *   -ETIMEDOUT  sent, but no confirm in time (or the connection was lost before it): the
 *               message may or may not be on the queue.
 * The library logs only its connection's state changes ("rabbitmq unavailable" once, then
 * "rabbitmq connected"); the caller logs what a failure means. */

/* A string header: trace context (traceparent, tracestate, baggage) travels in these. */
struct mq_header {
	const char *key;
	const char *value;
};

/* One received message; every pointer is owned by the delivery (mq_delivery_clear). */
struct mq_delivery {
	uint64_t tag;        /* delivery tag on the connection of `generation` */
	unsigned generation; /* which connection delivered it (see mq_ack) */
	bool redelivered;
	char *body; /* NUL-terminated copy; len excludes the NUL */
	size_t len;
	char *message_id; /* NULL when absent */
	size_t nheaders;
	struct mq_header headers[MQ_HEADERS_MAX]; /* malloc'd key and value strings */
};

/* One AMQP connection with one channel. A consumer has one owner thread; a publisher is
 * shared by any number of threads (see mq_publish). */
struct mq;

/* Returns an mq for cfg's broker and ORDERS_QUEUE that connects on first use (heartbeat
 * MQ_HEARTBEAT_S, declaring the queue, its dead-letter exchange "<queue>.dlx" and queue
 * "<queue>.dead") and reconnects with backoff after a failure; NULL when out of memory (or no
 * thread could start). A consumer (prefetch > 0) sets basic.qos and consumes with manual acks.
 * A publisher enables publisher confirms and starts a thread that reads its connection:
 * confirms settle the publishes waiting for them, and heartbeats flow while no order comes,
 * so a broker gone silent or closed is noticed before the next publish. cfg is copied. Free
 * with mq_free. */
struct mq *mq_new(const struct config *cfg, int prefetch);

/* Closes the connection politely and frees m; accepts NULL. */
void mq_free(struct mq *m);

/* Connects if needed and checks the broker with a passive declare of the queue.
 * Returns 0 or -EAGAIN. */
int mq_ping(struct mq *m);

/* True while m holds an open connection. */
bool mq_connected(const struct mq *m);

/* Publishes body (len bytes) to the orders queue, persistent, content type
 * application/json, with message_id (the consumer's key for duplicates) and the nheaders string
 * headers, and waits for the broker's confirm of this message (matched by delivery tag):
 * callers on many threads have their messages in flight together. Returns within about
 * timeout_ms whatever the network does: connecting, publishing and waiting all share that
 * budget, and nothing is sent with less than MQ_CONFIRM_MIN_MS left. A connection found dead,
 * or lost before the confirm, is replaced once (so the message may be sent twice); a confirm
 * not come by the deadline drops the connection.
 * Returns 0 once confirmed (or what the mq_on_confirm hook set); -EPROTO (refused or
 * unroutable: not queued); -EAGAIN (never sent: not queued); -ETIMEDOUT (sent but not
 * confirmed: it may still be delivered). Copies nothing it keeps. */
int mq_publish(struct mq *m, const char *message_id, const char *body, size_t len,
               const struct mq_header *headers, size_t nheaders, int timeout_ms);

/* One publish in flight, in its caller's memory from mq_ticket_init to mq_ticket_destroy: for
 * a publish split between threads, one sending (mq_publish_send) and one waiting
 * (mq_publish_wait). The fields are mq's; its users may read deadline_ms, and sent once
 * mq_publish_wait has returned. */
struct mq_ticket {
	long long deadline_ms;  /* monotonic (backoff_now_ms): nothing is sent after it */
	uint64_t seq;           /* its delivery tag */
	const char *message_id; /* matches a basic.return to it */
	bool sent, returned;
	int rc;     /* 1 while waiting; then 0 (confirmed), -EPROTO or -EAGAIN (connection lost) */
	int after;  /* confirmed: what the mq_on_confirm hook made of it (set outside the lock) */
	sem_t done; /* posted once rc (and after) are set */
	struct mq_ticket *next;
};

/* Readies t for one publish whose connecting, sending and confirm must all be done by
 * deadline_ms (monotonic ms, see backoff_now_ms). */
void mq_ticket_init(struct mq_ticket *t, long long deadline_ms);

/* Releases what mq_ticket_init set up; accepts NULL. */
void mq_ticket_destroy(struct mq_ticket *t);

/* Publishes as mq_publish does, but only sends: connects if needed and hands the message to the
 * socket, once, while at least MQ_CONFIRM_MIN_MS remain before t's deadline. Returns 0 (t is
 * in flight: mq_publish_wait it; the strings must live until then) or -EAGAIN (not sent: too
 * little time left, no connection, or it was lost while sending; t is untouched). */
int mq_publish_send(struct mq *m, struct mq_ticket *t, const char *message_id, const char *body,
                    size_t len, const struct mq_header *headers, size_t nheaders);

/* Ends a ticket that will not be sent with rc (a negative errno) for its waiter. */
void mq_ticket_settle(struct mq_ticket *t, int rc);

/* Waits for t's confirm (or mq_ticket_settle) until its deadline; a confirm not come by then
 * drops the connection. A ticket not yet sent is waited for until whoever holds it sends or
 * settles it (it can no longer be sent). Returns 0 once confirmed (or what the mq_on_confirm
 * hook set), -EPROTO (refused or unroutable), -ETIMEDOUT (no confirm by the deadline),
 * -EAGAIN (the connection was lost before its confirm: it may be queued when t->sent), or
 * what mq_ticket_settle set. */
int mq_publish_wait(struct mq *m, struct mq_ticket *t);

/* The second and last attempt of a publish whose first (ticket first, by any thread) ended
 * -EAGAIN: sends the message again by first's deadline and waits for its confirm. Returns as
 * mq_publish does; a message sent either time and not confirmed is -ETIMEDOUT. */
int mq_publish_retry(struct mq *m, const struct mq_ticket *first, const char *message_id,
                     const char *body, size_t len, const struct mq_header *headers,
                     size_t nheaders);

/* A publisher's hook on its reader thread: ids[i] (borrowed for the call) are the message ids
 * of n publishes the broker just confirmed, whose callers wait until it returns; it may set
 * rcs[i] (0 on entry) to a negative errno other than mq's own, which mq_publish (or
 * mq_publish_wait) then returns for ids[i]. It holds up the reading of the connection meanwhile,
 * and its time adds to theirs: one round trip for the batch, say. */
typedef void mq_confirm_fn(void *arg, const char *const *ids, int *rcs, size_t n);

/* Sets a publisher's hook (none by default); call before the first mq_publish. */
void mq_on_confirm(struct mq *m, mq_confirm_fn *fn, void *arg);

/* Waits up to timeout_ms for the next delivery of a consumer mq and fills *d (clear it with
 * mq_delivery_clear). When wake_fd >= 0, becoming readable ends the wait early (the caller
 * drains it). Returns 1 with a delivery, 0 on timeout or wake-up, or -EAGAIN (the
 * connection is dropped; the next call reconnects after a backoff). */
int mq_next(struct mq *m, struct mq_delivery *d, int timeout_ms, int wake_fd);

/* What becomes of a delivery (mq_settle). */
enum mq_settle {
	MQ_ACK,         /* done */
	MQ_DEAD_LETTER, /* nack without requeue: to "<queue>.dead" */
	MQ_REQUEUE,     /* nack with requeue: back on the queue for another consumer */
};

/* Settles the delivery tag of connection `generation` as how says. A tag of an older
 * connection is ignored: the broker requeues it anyway. Returns 0 or -EAGAIN. */
int mq_settle(struct mq *m, unsigned generation, uint64_t tag, enum mq_settle how);

/* Cancels a consumer mq's subscription (basic.cancel, waiting for cancel-ok): the broker
 * sends no more deliveries; those already on the way still come out of mq_next. mq_next
 * reconnects (and so consumes again) after a lost connection: once cancelled, call it only
 * while mq_connected. Returns 0 or -EAGAIN (the connection is dropped). */
int mq_cancel(struct mq *m);

/* Returns the value of header key in d, or NULL. */
const char *mq_delivery_header(const struct mq_delivery *d, const char *key);

/* Frees what d owns and zeroes it; accepts NULL. */
void mq_delivery_clear(struct mq_delivery *d);

#endif
