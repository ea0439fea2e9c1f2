/* pool.h — reception's workers: what one request at a time uses, its Redis connection above all. */
#ifndef BAKERY_POOL_H
#define BAKERY_POOL_H

#include "intake.h"
#include "store.h"
#include "otel/trace.h"

/* What one request at a time uses (taken, then given back: no lock inside). The contexts and
 * the order would not fit comfortably on civetweb's 100 KiB worker stacks (1 KB each). */
struct pool_worker {
	struct store *store;
	struct trace_context parent;    /* the request's extracted trace context */
	struct trace_context order_ctx; /* an order's creation context: stored, or linked to */
	struct intake_order order;
};

/* Makes the POOL_WORKERS workers, each with a store for cfg (connected on first use, so no more
 * Redis connections are open than requests ever ran at once). Returns 0, or -ENOMEM (nothing
 * left made). */
int pool_init(const struct store_config *cfg);

/* Takes an idle worker (the most recently given back first), waiting at most POOL_WAIT_S while
 * all are busy; NULL then. The pool owns it: give it back with pool_give. Thread-safe. */
struct pool_worker *pool_take(void);

/* Gives back a worker pool_take returned. Thread-safe. */
void pool_give(struct pool_worker *w);

/* Frees the workers and their stores; none may be taken. */
void pool_free(void);

#endif
