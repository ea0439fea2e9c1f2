/* store.h — Redis access for orders (hiredis): create, read, set status; reconnects. */
#ifndef BAKERY_STORE_H
#define BAKERY_STORE_H

#include "addr.h"
#include "order.h"
#include "otel/trace.h"
#include "sentinel.h"

/* Errors are negative errno values:
 *   -EAGAIN    transient: Redis unreachable, timed out, loading, read-only... (retry later);
 *   -ENOENT    no such order;
 *   -EALREADY  refused: the order is already finished or failed;
 *   -EINVAL    permanent: order:<key> is not an order hash (WRONGTYPE).
 * The library logs only Redis's state changes ("redis unavailable" once, then "redis
 * connected"); the caller logs what a failure means. */

#define STORE_QUEUE_DEADLINE_MS 60000 /* default time from create to store_orders_queued */

/* How error replies are handled: READONLY (a failover left this connection on a replica) and
 * NOSCRIPT (the order scripts run by SHA1, loaded on each new connection, were flushed) drop
 * the connection and send the command once more on a fresh one; WRONGTYPE is about the
 * order's own key and is -EINVAL at once; any other error (LOADING, BUSY, MASTERDOWN, OOM...)
 * keeps the connection and is -EAGAIN, for the caller to retry.
 *
 * An order's life: store_orders_create stamps it with a queue deadline (queueDeadline, epoch
 * ms of the creating process's clock); store_orders_queued clears it once its message is
 * confirmed on the queue. A pending order still carrying a deadline that has passed (by Redis's
 * clock) was never queued (the publisher crashed, or failed and could not say so): any
 * store_order_get or store_order_set_status then turns it failed, atomically, so every reader
 * agrees (but see store_set_held). finished and failed are final. */

/* Where Redis is and how to use it: one address, or the Sentinels that name the primary. */
struct store_config {
	struct addr addr;                     /* the one Redis (DB_HOST), without Sentinels */
	struct addr sentinels[ADDR_LIST_MAX]; /* REDIS_SENTINELS */
	int n_sentinels;                      /* 0: addr alone */
	char master[SENTINEL_NAME_MAX];       /* REDIS_SENTINEL_MASTER */
	char password[SENTINEL_PASSWORD_MAX]; /* REDIS_PASSWORD, for Redis and Sentinels; "" none */
	int wait_replicas;                    /* REDIS_WAIT_REPLICAS: writes count once this many
	                                       * replicas have them (WAIT); 0 no WAIT */
};

/* One Redis connection. Not thread-safe: use one per thread.
 *
 * With Sentinels, a store connects to the primary the Sentinels name (sentinel.h: one view per
 * process, moved by +switch-master), checks it with ROLE, and connects again when that view
 * changes (checked before each command), on a lost connection and on READONLY. A reply that
 * an order does not exist is believed only from a primary (ROLE), so a demoted node never makes
 * an order look unknown. With wait_replicas, each write (store_orders_create,
 * store_orders_queued, store_order_set_status) is followed by WAIT wait_replicas in the same
 * round trip; fewer acknowledgements make the write -EAGAIN (it may be applied, unreplicated).
 * AUTH with the password comes first on every connection; a refused password is logged once
 * per process, naming REDIS_PASSWORD, never the password. */
struct store;

/* Returns a store for cfg (copied) that connects on first use (connect and command timeouts of
 * about 1-2 s) and reconnects with backoff after a failure, or NULL when out of memory or the
 * Sentinel watcher cannot start. Free it with store_free. */
struct store *store_new(const struct store_config *cfg);

/* Marks s as held by a consumer of the orders' messages: holding a message proves the order
 * was queued, so s's store_order_get and store_order_set_status clear a pending order's queue
 * deadline instead of failing it (a failed order stays failed). Call before sharing s. */
void store_set_held(struct store *s);

/* Sets the queue deadline (ms after store_orders_create; >= 1) that this process's stores
 * stamp on new orders; STORE_QUEUE_DEADLINE_MS until called. Thread-safe. */
void store_set_queue_deadline_ms(int ms);

/* Closes the connection and frees s; accepts NULL. */
void store_free(struct store *s);

/* Sends PING. Returns 0 or -EAGAIN. */
int store_ping(struct store *s);

/* Creates the n orders order:<keys[i]> in one round trip, each with its customer, pastry and
 * order_time, status "pending", the queue deadline and, when not empty, its traceparent and
 * tracestate (the creating span's context), in one HSET. rcs[i] is 0, -EINVAL or -EAGAIN. */
void store_orders_create(struct store *s, const char *const *keys,
                         const struct order *const *orders, size_t n, int *rcs);

/* Says that the messages of the n orders keys are confirmed on the queue: clears their queue
 * deadlines, in one round trip, so they stay pending however long the queue takes. rcs[i] is
 * 0, -EALREADY (the deadline had passed: the order is failed), -ENOENT, -EINVAL or -EAGAIN. */
void store_orders_queued(struct store *s, const char *const *keys, size_t n, int *rcs);

/* Reads order:<key> into *o (traceparent and tracestate "" when the order has none); a pending
 * order past its queue deadline is turned failed first. Returns 0, -ENOENT, -EINVAL or
 * -EAGAIN. */
int store_order_get(struct store *s, const char *key, struct order *o);

/* Sets the status of an existing order atomically (a Lua script): finished and failed are
 * final (setting the same again succeeds), a pending order past its queue deadline is failed
 * first, and leaving pending clears the deadline. Returns 0, -EALREADY (finished or failed
 * already, status unchanged), -ENOENT, -EINVAL or -EAGAIN. */
int store_order_set_status(struct store *s, const char *key, const char *status);

/* Starts the CLIENT span (create-order, read-order, update-order...) of the caller's command
 * (HSET, HMGET, EVAL) on order key, with the status set when not NULL, as a child of the
 * thread's current span: like every dependency's span (RabbitMQ's too), it is made by the
 * caller around the store_* call. Returns it, or NULL when tracing is off. */
trace_span *store_span_start(const struct store *s, const char *name, const char *command,
                             const char *key, const char *status);

/* Ends span, an error with an event for rc -EAGAIN or -EINVAL (see store_strerror); accepts
 * NULL. Returns rc. */
int store_span_end(trace_span *span, int rc);

/* A static description of a store_* error ("redis unavailable" for -EAGAIN); never NULL. */
const char *store_strerror(int rc);

#endif
