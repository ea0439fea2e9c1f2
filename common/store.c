/* store.c — orders in Redis hashes order:<key> through one hiredis context per thread. */
#include "store.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "config.h"
#include "log.h"
#include "otel/clock.h"
#include "otel/trace.h"

#define CONNECT_TIMEOUT_MS 1000
#define COMMAND_TIMEOUT_MS 2000
#define RETRY_MIN_MS       100
#define RETRY_MAX_MS       1000

/* The Lua below reads Redis's own clock (TIME, in ms) so every reader agrees on whether a
 * queue deadline has passed. A pending order past it is failed, atomically (KEYS[1]); unless
 * ARGV[2] is "held" (a store_set_held store: its caller holds the order's message, which
 * proves it was queued): then the deadline is cleared instead. */
#define EXPIRE_LUA                                                                                 \
	"local function expire(k, cur)\n"                                                          \
	"  if cur ~= 'pending' then return cur end\n"                                              \
	"  local d = tonumber(redis.call('HGET', k, 'queueDeadline'))\n"                           \
	"  if not d then return cur end\n"                                                         \
	"  if ARGV[2] == 'held' then\n"                                                            \
	"    redis.call('HDEL', k, 'queueDeadline')\n"                                             \
	"    return cur\n"                                                                         \
	"  end\n"                                                                                  \
	"  local t = redis.call('TIME')\n"                                                         \
	"  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) < d then return cur end\n" \
	"  redis.call('HSET', k, 'status', 'failed')\n"                                            \
	"  redis.call('HDEL', k, 'queueDeadline')\n"                                               \
	"  return 'failed'\n"                                                                      \
	"end\n"                                                                                    \
	"local cur = redis.call('HGET', KEYS[1], 'status')\n"                                      \
	"if not cur then return -1 end\n"                                                          \
	"cur = expire(KEYS[1], cur)\n"

/* Returns the status after expiring the order, or -1 when there is no such order. */
static const char expire_lua[] = EXPIRE_LUA "return cur\n";

/* Sets status ARGV[1] unless finished or failed already; 1 set, 0 refused, -1 no such order. */
static const char set_status_lua[] =
    EXPIRE_LUA "if (cur == 'finished' or cur == 'failed') and ARGV[1] ~= cur then return 0 end\n"
               "redis.call('HSET', KEYS[1], 'status', ARGV[1])\n"
               "if ARGV[1] ~= 'pending' then redis.call('HDEL', KEYS[1], 'queueDeadline') end\n"
               "return 1\n";

/* Clears the queue deadline of a pending order; 1 done, 0 already failed, -1 no such order. */
static const char queued_lua[] = EXPIRE_LUA "if cur == 'failed' then return 0 end\n"
                                            "redis.call('HDEL', KEYS[1], 'queueDeadline')\n"
                                            "return 1\n";

static atomic_int queue_deadline_ms = STORE_QUEUE_DEADLINE_MS;

struct store {
	char host[CONFIG_HOST_MAX];
	int port;
	redisContext *c;
	struct backoff backoff;
	int down_logged; /* "redis unavailable" was logged: "redis connected" comes next */
	bool held;       /* store_set_held */
};

void store_set_held(struct store *s)
{
	s->held = true;
}

void store_set_queue_deadline_ms(int ms)
{
	atomic_store(&queue_deadline_ms, ms > 0 ? ms : 1);
}

struct store *store_new(const char *host, int port)
{
	struct store *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	snprintf(s->host, sizeof(s->host), "%s", host);
	s->port = port;
	return s;
}

static void drop(struct store *s)
{
	if (s->c) {
		redisFree(s->c);
		s->c = NULL;
	}
}

void store_free(struct store *s)
{
	if (!s)
		return;
	drop(s);
	free(s);
}

/* The one log of Redis's state: it went unavailable (why), logged once until a command
 * succeeds again. Returns -EAGAIN. */
static int went_down(struct store *s, const char *why)
{
	if (!s->down_logged)
		log_warn("redis unavailable", "addr", s->host, "error", why);
	s->down_logged = 1;
	return -EAGAIN;
}

/* Ensures a live context; returns 0 or -EAGAIN (also while backing off). */
static int ensure(struct store *s)
{
	struct timeval ct = {0, CONNECT_TIMEOUT_MS * 1000};
	struct timeval rt = {COMMAND_TIMEOUT_MS / 1000, (COMMAND_TIMEOUT_MS % 1000) * 1000};
	long long now;

	if (s->c)
		return 0;
	now = backoff_now_ms();
	if (now < s->backoff.next_ms)
		return -EAGAIN;
	s->c = redisConnectWithTimeout(s->host, s->port, ct);
	if (s->c && !s->c->err && redisSetTimeout(s->c, rt) == REDIS_OK) {
		redisEnableKeepAlive(s->c);
		backoff_reset(&s->backoff);
		return 0;
	}
	went_down(s, s->c ? s->c->errstr : "out of memory");
	drop(s);
	backoff_fail(&s->backoff, now, RETRY_MIN_MS, RETRY_MAX_MS);
	return -EAGAIN;
}

/* True when the error reply r starts with the error code code ("READONLY", ...). */
static bool error_is(const redisReply *r, const char *code)
{
	size_t n = strlen(code);

	return r->len >= n && strncmp(r->str, code, n) == 0 && (r->len == n || r->str[n] == ' ');
}

/* Sends one command on a live connection; returns the reply or NULL (connection broken). */
static redisReply *send_once(struct store *s, int argc, const char **argv, const size_t *lens)
{
	if (ensure(s) < 0)
		return NULL;
	return redisCommandArgv(s->c, argc, argv, lens);
}

/* Runs one command; returns 0 with *out set to the reply (caller frees; out NULL: freed here),
 * or -EAGAIN or -EINVAL with *out NULL. Every command here is idempotent, so two cases send it once
 * more on a fresh connection: a connection found broken (Redis restarted while it sat idle), and a
 * READONLY reply (a failover behind the same address left this connection on the demoted
 * replica; a new connection reaches the new primary). WRONGTYPE is -EINVAL; any other error
 * reply (LOADING, BUSY, MASTERDOWN, ...) -EAGAIN, connection kept. */
static int run(struct store *s, int argc, const char **argv, const size_t *lens, redisReply **out)
{
	int reused = s->c != NULL;
	redisReply *r;

	if (out)
		*out = NULL;
	r = send_once(s, argc, argv, lens);
	for (int again = 1; again >= 0; again--) {
		if (!r && !s->c)
			return -EAGAIN; /* backing off, or cannot connect */
		if (!r) {
			went_down(s, s->c->errstr);
			drop(s);
			if (!reused || !again)
				return -EAGAIN;
		} else if (r->type == REDIS_REPLY_ERROR && error_is(r, "READONLY")) {
			went_down(s, r->str); /* a failover: a new connection finds the primary */
			freeReplyObject(r);
			drop(s);
			if (!again)
				return -EAGAIN;
		} else if (r->type == REDIS_REPLY_ERROR) {
			int rc = error_is(r, "WRONGTYPE") ? -EINVAL : went_down(s, r->str);
			freeReplyObject(r);
			return rc;
		} else {
			if (s->down_logged)
				log_info("redis connected", "addr", s->host);
			s->down_logged = 0;
			if (out)
				*out = r;
			else
				freeReplyObject(r);
			return 0;
		}
		s->backoff.next_ms = 0; /* reconnect at once, this one time */
		reused = 0;
		r = send_once(s, argc, argv, lens);
	}
	return -EAGAIN;
}

static void hash_key(char *buf, size_t cap, const char *key)
{
	snprintf(buf, cap, "order:%s", key);
}

trace_span *store_span_start(const struct store *s, const char *name, const char *command,
                             const char *key, const char *status)
{
	trace_span *span = trace_span_start(name, TRACE_KIND_CLIENT, NULL);

	if (trace_span_is_recording(span)) {
		trace_span_set_str(span, "bakery.order_key", key);
		if (status)
			trace_span_set_str(span, "bakery.status", status);
		trace_span_set_str(span, "db.system", "redis");
		trace_span_set_str(span, "db.operation.name", command);
		trace_span_set_str(span, "server.address", s->host);
		trace_span_set_int(span, "server.port", s->port);
	}
	return span;
}

int store_span_end(trace_span *span, int rc)
{
	if (rc == -EAGAIN || rc == -EINVAL) {
		trace_span_add_event(span, store_strerror(rc), NULL, 0);
		trace_span_set_error(span, store_strerror(rc));
	}
	trace_span_end(span);
	return rc;
}

int store_ping(struct store *s)
{
	const char *argv[] = {"PING"};

	return run(s, 1, argv, NULL, NULL) < 0 ? -EAGAIN : 0;
}

int store_order_create(struct store *s, const char *key, const struct order *o)
{
	char hk[64], deadline[32];
	const char *argv[16] = {"HSET",   hk,        "customer",      o->customer,
	                        "pastry", o->pastry, "orderTime",     o->order_time,
	                        "status", "pending", "queueDeadline", deadline};
	int argc = 12;

	hash_key(hk, sizeof(hk), key);
	/* The wall-clock time in ms since the epoch, the queue deadline from now. */
	snprintf(deadline, sizeof(deadline), "%lld",
	         (long long)(otel_clock_ns(CLOCK_REALTIME) / 1000000) +
	             atomic_load(&queue_deadline_ms));
	if (o->traceparent[0]) {
		argv[argc++] = "traceparent";
		argv[argc++] = o->traceparent;
	}
	if (o->traceparent[0] && o->tracestate[0]) {
		argv[argc++] = "tracestate";
		argv[argc++] = o->tracestate;
	}
	return run(s, argc, argv, NULL, NULL);
}

/* Runs one of the order scripts on order:<key> with the optional argument arg (NULL: none).
 * Returns 0 with *out set (caller frees), or a store_* error. */
static int run_script(struct store *s, const char *script, const char *key, const char *arg,
                      redisReply **out)
{
	char hk[64];
	const char *argv[] = {"EVAL", script, "1", hk, arg ? arg : "", s->held ? "held" : ""};

	hash_key(hk, sizeof(hk), key);
	return run(s, 6, argv, NULL, out);
}

/* Runs a script answering 1 done, 0 refused, -1 no such order (as run_script); returns 0,
 * -EALREADY, -ENOENT, a store_* error, or -EAGAIN for any other reply. */
static int run_update(struct store *s, const char *script, const char *key, const char *arg)
{
	redisReply *r;
	int rc = run_script(s, script, key, arg, &r);

	if (rc < 0)
		return rc;
	rc = r->type != REDIS_REPLY_INTEGER ? -EAGAIN
	     : r->integer == 1              ? 0
	     : r->integer == 0              ? -EALREADY
	                                    : -ENOENT;
	freeReplyObject(r);
	return rc;
}

int store_order_queued(struct store *s, const char *key)
{
	return run_update(s, queued_lua, key, NULL);
}

/* Copies the string reply e into out (cap bytes). Returns 0, or -ENOENT with out "" when e is
 * not a string (absent) or too long. */
static int copy_field(const redisReply *e, char *out, size_t cap)
{
	out[0] = '\0';
	if (e->type != REDIS_REPLY_STRING || e->len >= cap)
		return -ENOENT;
	memcpy(out, e->str, e->len);
	out[e->len] = '\0';
	return 0;
}

/* Turns a pending order whose queue deadline has passed failed; updates o->status. Returns
 * 0, -ENOENT (deleted meanwhile) or an error. */
static int expire(struct store *s, const char *key, struct order *o)
{
	redisReply *r;
	int rc = run_script(s, expire_lua, key, NULL, &r);

	if (rc < 0)
		return rc;
	rc = copy_field(r, o->status, sizeof(o->status)) == 0 ? 0 : -ENOENT;
	freeReplyObject(r);
	return rc;
}

int store_order_get(struct store *s, const char *key, struct order *o)
{
	char hk[64];
	const char *argv[] = {"HMGET",     hk,       "customer",      "pastry",
	                      "orderTime", "status", "queueDeadline", "traceparent",
	                      "tracestate"};
	redisReply *r;
	bool deadline = false;
	int rc;

	hash_key(hk, sizeof(hk), key);
	rc = run(s, 9, argv, NULL, &r);
	if (rc < 0)
		return rc;
	rc = -ENOENT;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 7 &&
	    copy_field(r->element[0], o->customer, sizeof(o->customer)) == 0 &&
	    copy_field(r->element[1], o->pastry, sizeof(o->pastry)) == 0 &&
	    copy_field(r->element[2], o->order_time, sizeof(o->order_time)) == 0 &&
	    copy_field(r->element[3], o->status, sizeof(o->status)) == 0) {
		rc = 0;
		deadline = r->element[4]->type == REDIS_REPLY_STRING;
		/* Absent (tracing was off, or an older order) or too long: "". */
		copy_field(r->element[5], o->traceparent, sizeof(o->traceparent));
		copy_field(r->element[6], o->tracestate, sizeof(o->tracestate));
	}
	freeReplyObject(r);
	if (rc == 0 && deadline && strcmp(o->status, "pending") == 0)
		rc = expire(s, key, o);
	return rc;
}

int store_order_set_status(struct store *s, const char *key, const char *status)
{
	return run_update(s, set_status_lua, key, status);
}

const char *store_strerror(int rc)
{
	switch (rc) {
	case -ENOENT:
		return "not found";
	case -EALREADY:
		return "refused: order already finished or failed";
	case -EINVAL:
		return "not an order (wrong Redis type)";
	default:
		return "redis unavailable";
	}
}
