/* store.c — orders in Redis hashes order:<key> through one hiredis context per thread. */
#include "store.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "trace.h"

#define CONNECT_TIMEOUT_MS 1000
#define COMMAND_TIMEOUT_MS 2000
#define RETRY_MIN_MS       100
#define RETRY_MAX_MS       1000

/* Moves status unless the order is finished; 1 set, 0 refused, -1 no such order. */
static const char set_status_lua[] =
    "local cur = redis.call('HGET', KEYS[1], 'status')\n"
    "if not cur then return -1 end\n"
    "if cur == 'finished' and ARGV[1] ~= 'finished' then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'status', ARGV[1])\n"
    "return 1\n";

struct store {
	char host[CONFIG_HOST_MAX];
	int port;
	redisContext *c;
	long long next_try_ms; /* no reconnect attempt before this monotonic time */
	int retry_ms;
	int down_logged;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct store *store_new(const char *host, int port)
{
	struct store *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	snprintf(s->host, sizeof(s->host), "%s", host);
	s->port = port;
	s->retry_ms = RETRY_MIN_MS;
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

/* Ensures a live context; returns 0 or STORE_UNAVAILABLE (also while backing off). */
static int ensure(struct store *s)
{
	struct timeval ct = {0, CONNECT_TIMEOUT_MS * 1000};
	struct timeval rt = {COMMAND_TIMEOUT_MS / 1000, (COMMAND_TIMEOUT_MS % 1000) * 1000};
	long long now;

	if (s->c)
		return 0;
	now = now_ms();
	if (now < s->next_try_ms)
		return STORE_UNAVAILABLE;
	s->c = redisConnectWithTimeout(s->host, s->port, ct);
	if (s->c && !s->c->err && redisSetTimeout(s->c, rt) == REDIS_OK) {
		redisEnableKeepAlive(s->c);
		if (s->down_logged)
			log_info("redis connected", "addr", s->host);
		s->retry_ms = RETRY_MIN_MS;
		s->down_logged = 0;
		return 0;
	}
	if (!s->down_logged) {
		log_warn("redis unavailable", "addr", s->host, "error",
		         s->c ? s->c->errstr : "out of memory");
		s->down_logged = 1;
	}
	drop(s);
	s->next_try_ms = now + s->retry_ms;
	s->retry_ms = s->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : s->retry_ms * 2;
	return STORE_UNAVAILABLE;
}

/* Runs one command; returns the reply (caller frees) or NULL after dropping a broken
 * connection. A connection found broken (Redis restarted while it sat idle) is replaced at
 * once and the command sent once more: every command here is idempotent. An error reply is
 * freed and reported as NULL too. */
static redisReply *run(struct store *s, int argc, const char **argv, const size_t *lens)
{
	redisReply *r;
	int reused = s->c != NULL;

	if (ensure(s) < 0)
		return NULL;
	r = redisCommandArgv(s->c, argc, argv, lens);
	if (!r && reused) {
		drop(s);
		s->next_try_ms = 0;
		if (ensure(s) < 0)
			return NULL;
		r = redisCommandArgv(s->c, argc, argv, lens);
	}
	if (!r) {
		log_warn("redis command failed", "command", argv[0], "error", s->c->errstr);
		drop(s);
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		log_warn("redis error reply", "command", argv[0], "error", r->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

static void hash_key(char *buf, size_t cap, const char *key)
{
	snprintf(buf, cap, "order:%s", key);
}

/* Starts the CLIENT span of one order operation (a child of the thread's current span);
 * NULL when tracing is off. */
static trace_span *span_start(const struct store *s, const char *name, const char *command)
{
	trace_span *span = trace_span_start(name, TRACE_KIND_CLIENT, NULL);

	if (trace_span_is_recording(span)) {
		trace_span_set_str(span, "db.system", "redis");
		trace_span_set_str(span, "db.operation.name", command);
		trace_span_set_str(span, "server.address", s->host);
		trace_span_set_int(span, "server.port", s->port);
	}
	return span;
}

/* Ends span; an unavailable store marks it as an error with an event. Returns rc. */
static int span_end(trace_span *span, int rc)
{
	if (rc == STORE_UNAVAILABLE) {
		trace_span_add_event(span, "redis unavailable", NULL, 0);
		trace_span_set_error(span, store_strerror(rc));
	}
	trace_span_end(span);
	return rc;
}

int store_ping(struct store *s)
{
	const char *argv[] = {"PING"};
	redisReply *r = run(s, 1, argv, NULL);

	if (!r)
		return STORE_UNAVAILABLE;
	freeReplyObject(r);
	return 0;
}

int store_order_create(struct store *s, const char *key, const struct order *o)
{
	char hk[64];
	const char *argv[] = {"HSET",    hk,          "customer",    o->customer, "pastry",
	                      o->pastry, "orderTime", o->order_time, "status",    "pending"};
	trace_span *span = span_start(s, "create-order", "HSET");
	redisReply *r;

	hash_key(hk, sizeof(hk), key);
	r = run(s, 10, argv, NULL);
	if (!r)
		return span_end(span, STORE_UNAVAILABLE);
	freeReplyObject(r);
	return span_end(span, 0);
}

static int copy_field(const redisReply *e, char *out, size_t cap)
{
	if (e->type != REDIS_REPLY_STRING || e->len >= cap)
		return -1;
	memcpy(out, e->str, e->len);
	out[e->len] = '\0';
	return 0;
}

int store_order_get(struct store *s, const char *key, struct order *o)
{
	char hk[64];
	const char *argv[] = {"HMGET", hk, "customer", "pastry", "orderTime", "status"};
	trace_span *span = span_start(s, "read-order", "HMGET");
	redisReply *r;
	int rc = STORE_NOT_FOUND;

	hash_key(hk, sizeof(hk), key);
	r = run(s, 6, argv, NULL);
	if (!r)
		return span_end(span, STORE_UNAVAILABLE);
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
	    copy_field(r->element[0], o->customer, sizeof(o->customer)) == 0 &&
	    copy_field(r->element[1], o->pastry, sizeof(o->pastry)) == 0 &&
	    copy_field(r->element[2], o->order_time, sizeof(o->order_time)) == 0 &&
	    copy_field(r->element[3], o->status, sizeof(o->status)) == 0)
		rc = 0;
	freeReplyObject(r);
	return span_end(span, rc);
}

int store_order_set_status(struct store *s, const char *key, const char *status)
{
	char hk[64];
	const char *argv[] = {"EVAL", set_status_lua, "1", hk, status};
	trace_span *span = span_start(s, "update-order", "EVAL");
	redisReply *r;
	int rc = STORE_UNAVAILABLE;

	hash_key(hk, sizeof(hk), key);
	trace_span_set_str(span, "bakery.status", status);
	r = run(s, 5, argv, NULL);
	if (!r)
		return span_end(span, STORE_UNAVAILABLE);
	if (r->type == REDIS_REPLY_INTEGER)
		rc = r->integer == 1 ? 0 : r->integer == 0 ? STORE_REFUSED : STORE_NOT_FOUND;
	freeReplyObject(r);
	return span_end(span, rc);
}

int store_order_delete(struct store *s, const char *key)
{
	char hk[64];
	const char *argv[] = {"DEL", hk};
	redisReply *r;

	hash_key(hk, sizeof(hk), key);
	r = run(s, 2, argv, NULL);
	if (!r)
		return STORE_UNAVAILABLE;
	freeReplyObject(r);
	return 0;
}

const char *store_strerror(int rc)
{
	switch (rc) {
	case 0:
		return "ok";
	case STORE_NOT_FOUND:
		return "not found";
	case STORE_REFUSED:
		return "refused: order already finished";
	default:
		return "redis unavailable";
	}
}
