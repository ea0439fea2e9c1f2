/* store.h — Redis access for orders (hiredis): create, read, set status; reconnects. */
#ifndef BAKERY_STORE_H
#define BAKERY_STORE_H

#include "order.h"

/* Error codes of the store_* functions (0 is success). */
enum {
	STORE_UNAVAILABLE = -1, /* Redis unreachable, timed out, or answered an error */
	STORE_NOT_FOUND = -2,   /* no such order */
	STORE_REFUSED = -3,     /* status change refused: the order is already finished */
};

/* One Redis connection. Not thread-safe: use one per thread. The order operations below are
 * traced as CLIENT spans (create-order, read-order, update-order) under the thread's current
 * span. */
struct store;

/* Returns a store for host:port that connects on first use (connect and command timeouts of
 * about 1-2 s) and reconnects with backoff after a failure, or NULL when out of memory.
 * Free it with store_free. */
struct store *store_new(const char *host, int port);

/* Closes the connection and frees s; accepts NULL. */
void store_free(struct store *s);

/* Sends PING. Returns 0 or STORE_UNAVAILABLE. */
int store_ping(struct store *s);

/* Creates order:<key> with o's customer, pastry and order_time and status "pending" in one
 * HSET. Returns 0 or STORE_UNAVAILABLE. */
int store_order_create(struct store *s, const char *key, const struct order *o);

/* Reads order:<key> into *o. Returns 0, STORE_NOT_FOUND or STORE_UNAVAILABLE. */
int store_order_get(struct store *s, const char *key, struct order *o);

/* Sets the status of an existing order atomically (a Lua script): a finished order only
 * stays finished. Returns 0, STORE_REFUSED (already finished, status unchanged),
 * STORE_NOT_FOUND or STORE_UNAVAILABLE. */
int store_order_set_status(struct store *s, const char *key, const char *status);

/* Deletes order:<key>. Returns 0 (also when it did not exist) or STORE_UNAVAILABLE. */
int store_order_delete(struct store *s, const char *key);

/* A static description of a store_* error code. */
const char *store_strerror(int rc);

#endif
