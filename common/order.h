/* order.h — the order model: keys, validation limits, JSON in and out, timestamps. */
#ifndef BAKERY_ORDER_H
#define BAKERY_ORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "otel/tracecontext.h"

#define ORDER_BODY_MAX       (64 * 1024) /* largest request body accepted (bytes) */
#define ORDER_FIELD_MAX      256         /* largest customer or pastry (bytes of UTF-8) */
#define ORDER_KEY_LEN        32          /* lowercase hex digits of a 128-bit key */
#define ORDER_TIME_MAX       40          /* room for an RFC 3339 timestamp with nanoseconds */
#define ORDER_STATUS_MAX     16
#define ORDER_JSON_DEPTH_MAX 32 /* deepest nesting of arrays/objects parsed */

/* One order as stored in Redis (hash order:<key>). */
struct order {
	char customer[ORDER_FIELD_MAX + 1];
	char pastry[ORDER_FIELD_MAX + 1];
	char order_time[ORDER_TIME_MAX]; /* RFC 3339 UTC */
	char status[ORDER_STATUS_MAX];   /* pending, baking, finished or failed */
	/* The context of the span that created the order (reception's POST /orders), as W3C
	 * headers; "" when tracing was off. */
	char traceparent[TRACECONTEXT_TRACEPARENT_LEN + 1];
	char tracestate[TRACECONTEXT_STATE_MAX + 1];
};

/* Writes a new key of 128 bits from getrandom(2) as 32 lowercase hex digits plus NUL.
 * Returns 0 or a negative errno. */
int order_key_new(char key[ORDER_KEY_LEN + 1]);

/* True when s is exactly 32 lowercase hex digits. */
bool order_key_valid(const char *s);

/* Formats ts as RFC 3339 UTC: "2006-01-02T15:04:05Z", or with nanoseconds
 * ("...05.123456789Z") when with_ns. Returns 0 or -ENOSPC. */
int order_time_format(const struct timespec *ts, bool with_ns, char *buf, size_t cap);

/* Parses a POST /orders body (len bytes, not NUL-terminated) into o->customer and o->pastry.
 * Returns 0, or -EINVAL with *why set to a static message for the client. */
int order_parse_request(const char *body, size_t len, struct order *o, const char **why);

/* Returns the JSON {"pastry","customer","orderTime","status"} of o, plus "traceId" (the trace
 * id in o->traceparent) when o has a valid traceparent, malloc'd (caller frees), or NULL when
 * out of memory. */
char *order_to_json(const struct order *o);

/* Fills ctx (marked remote, no baggage) with the context stored in o: the span that created the
 * order. Returns 0, or -EINVAL (ctx invalid) when o has no valid traceparent. */
int order_trace_context(const struct order *o, struct trace_context *ctx);

/* Returns the queue message {"orderKey","timeEnqueued"}, malloc'd (caller frees), or NULL. */
char *order_message_new(const char *key, const char *time_enqueued);

/* A queue message as read back by the baker. */
struct order_message {
	char key[ORDER_KEY_LEN + 1];
	double enqueued_ms; /* timeEnqueued in ms since the epoch; -1 when missing or malformed */
};

/* Parses a queue message (len bytes) into *msg. Returns 0, or -EINVAL when the JSON is
 * malformed or orderKey is not a valid order key (a bad timeEnqueued only leaves -1). */
int order_message_parse(const char *body, size_t len, struct order_message *msg);

#endif
