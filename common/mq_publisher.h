/* mq_publisher.h — confirmed publishes to the orders queue, from any number of threads. */
#ifndef BAKERY_MQ_PUBLISHER_H
#define BAKERY_MQ_PUBLISHER_H

#include <semaphore.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mq.h"

/* One connection with publisher confirms, shared by every thread: each call takes its lock,
 * and its own thread reads the connection (confirms settle the publishes waiting for them,
 * heartbeats flow while no order comes, so a broker gone silent or closed is noticed before
 * the next publish). */
struct mq_publisher;

/* Returns a publisher for cfg (copied) that connects on first use (heartbeat MQ_HEARTBEAT_S,
 * declaring the queue, its dead-letter exchange "<queue>.dlx" and queue "<queue>.dead", going
 * through cfg's addresses in turn) and reconnects with backoff after a failure; NULL when out
 * of memory (or its thread could not start). Free with mq_publisher_free. */
struct mq_publisher *mq_publisher_new(const struct mq_config *cfg);

/* Stops the reader thread, closes the connection politely and frees p; accepts NULL. */
void mq_publisher_free(struct mq_publisher *p);

/* Connects if needed and checks the broker with a passive declare of the queue.
 * Returns 0, -EAGAIN, or -EEXIST (the queue exists with other arguments). */
int mq_publisher_ping(struct mq_publisher *p);

/* One publish in flight, in its caller's memory from mq_ticket_init to mq_ticket_destroy: for
 * a publish split between threads, one sending (mq_publisher_send) and one waiting
 * (mq_publisher_wait). The fields are the publisher's; its users may read deadline_ms, and
 * sent once mq_publisher_wait has returned. */
struct mq_ticket {
	long long deadline_ms;  /* monotonic (clock_now_ms): nothing is sent after it */
	uint64_t seq;           /* its delivery tag */
	const char *message_id; /* matches a basic.return to it */
	bool sent;              /* and not nacked: it may be queued */
	bool nacked, returned;
	int rc;     /* 1 while waiting; then 0 (confirmed), -EPROTO or -EAGAIN (lost or nacked) */
	int after;  /* confirmed: what the mq_publisher_on_confirm hook made of it */
	sem_t done; /* posted once rc (and after) are set */
	struct mq_ticket *next;
};

/* Readies t for one publish whose connecting, sending and confirm must all be done by
 * deadline_ms (monotonic ms, see clock_now_ms). */
void mq_ticket_init(struct mq_ticket *t, long long deadline_ms);

/* Releases what mq_ticket_init set up; accepts NULL. */
void mq_ticket_destroy(struct mq_ticket *t);

/* Ends a ticket that will not be sent with rc (a negative errno) for its waiter. */
void mq_ticket_settle(struct mq_ticket *t, int rc);

/* Sends body (len bytes) to the orders queue, persistent, content type application/json, with
 * message_id (the consumer's key for duplicates) and the nheaders string headers: connects if
 * needed and hands the message to the socket, once, while at least MQ_CONFIRM_MIN_MS remain
 * before t's deadline. Returns 0 (t is in flight: mq_publisher_wait it; the strings must live
 * until then) or -EAGAIN (not sent: too little time left, no connection, or it was lost while
 * sending; t is untouched). */
int mq_publisher_send(struct mq_publisher *p, struct mq_ticket *t, const char *message_id,
                      const char *body, size_t len, const struct mq_header *headers,
                      size_t nheaders);

/* Waits for t's confirm (or mq_ticket_settle) until its deadline; a confirm not come by then
 * drops the connection, and a nack (the broker could not take it: a quorum queue without its
 * leader, say) drops it too, so that the retry goes to a fresh one. A ticket not yet sent is
 * waited for until whoever holds it sends or settles it. Returns 0 once confirmed (or what the
 * on_confirm hook set), -EPROTO (returned: unroutable), -ETIMEDOUT (no confirm by the
 * deadline), -EAGAIN (nacked, or the connection was lost before its confirm: it may be queued
 * when t->sent), or what mq_ticket_settle set. */
int mq_publisher_wait(struct mq_publisher *p, struct mq_ticket *t);

/* Sends again a publish whose first attempt (ticket first, by any thread) ended -EAGAIN, by
 * first's deadline, and waits for its confirm; sends once more after each nack while time is
 * left (a nacked message is not queued). Returns as mq_publisher_wait; a message sent and not
 * confirmed either time is -ETIMEDOUT (it may be queued: only the consumer will know). */
int mq_publisher_retry(struct mq_publisher *p, const struct mq_ticket *first,
                       const char *message_id, const char *body, size_t len,
                       const struct mq_header *headers, size_t nheaders);

/* The reader thread's hook: ids[i] (borrowed for the call) are the message ids of n publishes
 * the broker just confirmed, whose callers wait until it returns; it may set rcs[i] (0 on
 * entry) to a negative errno other than the publisher's own, which mq_publisher_wait then
 * returns for ids[i]. It holds up the reading of the connection meanwhile, and its time adds
 * to theirs: one round trip for the batch, say. */
typedef void mq_confirm_fn(void *arg, const char *const *ids, int *rcs, size_t n);

/* Sets p's hook (none by default); call before the first publish. */
void mq_publisher_on_confirm(struct mq_publisher *p, mq_confirm_fn *fn, void *arg);

#endif
