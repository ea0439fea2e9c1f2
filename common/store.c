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
#include "log.h"
#include "clock.h"
#include "otel/trace.h"

#define CONNECT_TIMEOUT_MS 1000
#define COMMAND_TIMEOUT_MS 2000
#define RETRY_MIN_MS       100
#define RETRY_MAX_MS       1000
#define WAIT_TIMEOUT_MS    1000 /* WAIT's own timeout, within the command timeout */
#define SEND_ATTEMPTS      2    /* the first, and one more on a fresh connection (run_many) */

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

/* The scripts, by their SHA1 once SCRIPT LOAD gave it (on each new connection: a restarted or
 * failed-over Redis has none; NOSCRIPT reconnects): EVALSHA sends 40 bytes, not the script. */
enum script { EXPIRE, SET_STATUS, QUEUED, N_SCRIPTS };
static const char *const scripts[N_SCRIPTS] = {expire_lua, set_status_lua, queued_lua};

static atomic_int queue_deadline_ms = STORE_QUEUE_DEADLINE_MS;
static atomic_bool refusal_logged; /* a refused password is logged once per process */

struct store {
	struct addr addr;          /* the Redis connected to, or last tried */
	struct sentinel *sentinel; /* NULL: addr is the one Redis */
	unsigned gen;              /* the sentinel generation addr came with */
	char password[SENTINEL_PASSWORD_MAX];
	int wait; /* replicas each write waits for */
	redisContext *c;
	struct backoff backoff;
	int down_logged; /* "redis unavailable" was logged: "redis connected" comes next */
	bool held;       /* store_set_held */
	char sha[N_SCRIPTS][41];
};

void store_set_held(struct store *s)
{
	s->held = true;
}

void store_set_queue_deadline_ms(int ms)
{
	atomic_store(&queue_deadline_ms, ms > 0 ? ms : 1);
}

struct store *store_new(const struct store_config *cfg)
{
	struct store *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->addr = cfg->addr;
	memcpy(s->password, cfg->password, sizeof(s->password));
	s->wait = cfg->wait_replicas;
	if (cfg->n_sentinels > 0) {
		s->addr.host[0] = '\0'; /* not known yet */
		s->sentinel =
		    sentinel_acquire(cfg->sentinels, cfg->n_sentinels, cfg->master, cfg->password);
		if (!s->sentinel) {
			free(s);
			return NULL;
		}
	}
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
	sentinel_release(s->sentinel);
	free(s);
}

/* The one log of Redis's state: it went unavailable (why), logged once until a command
 * succeeds again. Returns -EAGAIN. */
static int went_down(struct store *s, const char *why)
{
	if (!s->down_logged)
		log_warn("redis unavailable", "addr", s->addr.host, "error", why);
	s->down_logged = 1;
	return -EAGAIN;
}

/* Redis or a Sentinel refused the password (why: its error): one error line per process.
 * Returns -EAGAIN. */
static int refused(struct store *s, const char *why)
{
	if (!atomic_exchange(&refusal_logged, true))
		log_error("redis refused the password: check REDIS_PASSWORD", "error", why);
	s->down_logged = 1;
	return -EAGAIN;
}

/* True when the error reply r starts with the error code code ("READONLY", ...). */
static bool error_is(const redisReply *r, const char *code)
{
	size_t n = strlen(code);

	return r->len >= n && strncmp(r->str, code, n) == 0 && (r->len == n || r->str[n] == ' ');
}

/* True when r is an error about the password: wrong, missing, or not configured. */
static bool auth_error(const redisReply *r)
{
	return r->type == REDIS_REPLY_ERROR && (error_is(r, "WRONGPASS") || error_is(r, "NOAUTH") ||
	                                        (error_is(r, "ERR") && strstr(r->str, "AUTH")));
}

/* True when r is ROLE's reply of a primary. */
static bool role_master(const redisReply *r)
{
	return r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
	       r->element[0]->type == REDIS_REPLY_STRING &&
	       strcmp(r->element[0]->str, "master") == 0;
}

/* Prepares a new connection in one round trip: AUTH (with a password), ROLE (with Sentinels:
 * it must be the primary), then loads the scripts. Returns 0, or -EAGAIN after logging (a
 * connection error is the caller's to log: -ECONNRESET), or -ENOTCONN: not the primary. */
static int handshake(struct store *s)
{
	int n = 0, rc = 0;
	redisReply *r;

	if (s->password[0] && ++n)
		redisAppendCommandArgv(s->c, 2, (const char *[]){"AUTH", s->password}, NULL);
	if (s->sentinel && ++n)
		redisAppendCommand(s->c, "ROLE");
	for (int i = 0; i < N_SCRIPTS; i++)
		redisAppendCommand(s->c, "SCRIPT LOAD %s", scripts[i]);
	for (int i = 0; i < n + N_SCRIPTS; i++) {
		int script = i - n;

		if (redisGetReply(s->c, (void **)&r) != REDIS_OK)
			return rc < 0 ? rc : -ECONNRESET;
		if (rc < 0)
			; /* the first failure counts */
		else if (auth_error(r))
			rc = refused(s, r->str);
		else if (script < 0 && r->type != REDIS_REPLY_ARRAY && r->type != REDIS_REPLY_ERROR)
			; /* AUTH's OK */
		else if (script < 0 && r->type == REDIS_REPLY_ARRAY && !role_master(r))
			rc = -ENOTCONN;
		else if (script >= 0 && r->type == REDIS_REPLY_STRING && r->len == 40)
			memcpy(s->sha[script], r->str, 41);
		else if (script >= 0 || r->type == REDIS_REPLY_ERROR)
			rc = went_down(s, r->type == REDIS_REPLY_ERROR ? r->str : "SCRIPT LOAD");
		freeReplyObject(r);
	}
	return rc;
}

/* Drops the connection and, with Sentinels, forgets the primary it was made to. */
static void forget(struct store *s)
{
	drop(s);
	if (s->sentinel)
		sentinel_forget(s->sentinel, s->gen);
}

/* Ensures a live context to the primary (with Sentinels: the one of the current generation);
 * returns 0 or -EAGAIN (also while backing off). */
static int ensure(struct store *s)
{
	struct timeval ct = {0, CONNECT_TIMEOUT_MS * 1000};
	struct timeval rt = {COMMAND_TIMEOUT_MS / 1000, (COMMAND_TIMEOUT_MS % 1000) * 1000};
	long long now;
	char why[256];
	int rc;

	if (s->c && s->sentinel && sentinel_generation(s->sentinel) != s->gen)
		drop(s); /* the primary moved, or another store found it wrong */
	if (s->c)
		return 0;
	now = clock_now_ms();
	if (now < s->backoff.next_ms)
		return -EAGAIN;
	if (s->sentinel) {
		rc = sentinel_primary(s->sentinel, &s->addr, &s->gen, why, sizeof(why));
		if (rc < 0) {
			rc == -EACCES ? refused(s, why) : went_down(s, why);
			goto fail;
		}
	}
	s->c = redisConnectWithTimeout(s->addr.host, s->addr.port, ct);
	if (!s->c || s->c->err || redisSetTimeout(s->c, rt) != REDIS_OK) {
		went_down(s, s->c ? s->c->errstr : "out of memory");
		forget(s);
		goto fail;
	}
	rc = handshake(s);
	if (rc == 0) {
		redisEnableKeepAlive(s->c);
		backoff_reset(&s->backoff);
		return 0;
	}
	if (rc == -ECONNRESET || rc == -ENOTCONN) {
		went_down(s, rc == -ENOTCONN ? "not the primary (ROLE)" : s->c->errstr);
		forget(s);
	}
	drop(s);
fail:
	backoff_fail(&s->backoff, now, RETRY_MIN_MS, RETRY_MAX_MS);
	return -EAGAIN;
}

/* The order's fields in Redis, written by HSET and read back by HMGET in this order: adding a
 * field is one row. Each is a member of struct order (off, cap), but queueDeadline. */
#define MEMBER(m) offsetof(struct order, m), sizeof(((struct order *)0)->m) /* off, cap */
static const struct field {
	const char *name;
	size_t off, cap;
	enum {
		REQUIRED, /* an order lacks none */
		DEADLINE, /* the queue deadline: read as there or not */
		OPTIONAL, /* the creating span's context: not written when it or traceparent is "";
		           * read as "" when absent (tracing off, an older order) or too long */
	} kind;
	const char *created; /* the value HSET writes, NULL the member's */
} fields[] = {
    {"customer", MEMBER(customer), REQUIRED, NULL},
    {"pastry", MEMBER(pastry), REQUIRED, NULL},
    {"orderTime", MEMBER(order_time), REQUIRED, NULL},
    {"status", MEMBER(status), REQUIRED, "pending"},
    {"queueDeadline", 0, 0, DEADLINE, NULL},
    {"traceparent", MEMBER(traceparent), OPTIONAL, NULL},
    {"tracestate", MEMBER(tracestate), OPTIONAL, NULL},
};
#define N_FIELDS     (sizeof(fields) / sizeof(fields[0]))
#define CMD_ARGS_MAX (2 + 2 * N_FIELDS) /* HSET order:<key>, then each field's name and value */

/* One command to send, and its reply once run (caller frees; NULL after an error). */
struct cmd {
	int argc;
	const char *argv[CMD_ARGS_MAX]; /* pointing into the order, hk, deadline, or static */
	char hk[64];                    /* order:<key> */
	char deadline[24];              /* HSET's queueDeadline */
	redisReply *r;
};

/* Sends the n commands c in one write, followed by WAIT when wait, and reads their n replies
 * into c[i].r; returns 0, or -EAGAIN (connection broken, or cannot connect) with every reply
 * freed. *acked is false when WAIT's reply counts fewer replicas than s->wait. */
static int send_once(struct store *s, struct cmd *c, size_t n, bool wait, bool *acked)
{
	size_t i, got = 0;
	redisReply *w = NULL;

	*acked = true;
	if (ensure(s) < 0)
		return -EAGAIN;
	for (i = 0; i < n; i++)
		if (redisAppendCommandArgv(s->c, c[i].argc, c[i].argv, NULL) != REDIS_OK)
			break;
	if (i == n && wait && redisAppendCommand(s->c, "WAIT %d %d", s->wait, WAIT_TIMEOUT_MS))
		i = 0;
	while (i == n && got < n && redisGetReply(s->c, (void **)&c[got].r) == REDIS_OK)
		got++;
	if (got == n && (!wait || redisGetReply(s->c, (void **)&w) == REDIS_OK)) {
		*acked = !wait || (w->type == REDIS_REPLY_INTEGER && w->integer >= s->wait);
		freeReplyObject(w);
		return 0;
	}
	while (got > 0)
		freeReplyObject(c[--got].r);
	return -EAGAIN;
}

/* Runs the n commands c (NULL: out of memory, all -EAGAIN) pipelined, writes followed by WAIT
 * when s has wait replicas: rcs[i] is 0 with c[i].r set to its reply (caller frees), or -EAGAIN
 * or -EINVAL with c[i].r NULL. Every command here is idempotent, so two reasons send them once
 * more on a fresh connection: a connection found broken (Redis restarted while it sat idle),
 * and a READONLY or NOSCRIPT reply (a failover left this connection on the demoted primary, a
 * SCRIPT FLUSH). WRONGTYPE is -EINVAL; any other error reply (LOADING, BUSY, MASTERDOWN, ...)
 * -EAGAIN, connection kept; so is every reply of writes that fewer replicas than s->wait
 * acknowledged. */
static void run_many(struct store *s, struct cmd *c, size_t n, bool write, int *rcs)
{
	bool idle = s->c != NULL, acked = true;
	size_t i;

	for (int attempt = 0; c && attempt < SEND_ATTEMPTS; attempt++) {
		if (attempt > 0)
			s->backoff.next_ms = 0; /* reconnect at once, this one time */
		if (send_once(s, c, n, write && s->wait > 0, &acked) < 0) {
			if (s->c)
				went_down(s, s->c->errstr);
			drop(s);
			if (!idle)
				break; /* a fresh connection failed too: Redis is down */
			idle = false;
			continue;
		}
		for (i = 0;
		     i < n && !(c[i].r->type == REDIS_REPLY_ERROR &&
		                (error_is(c[i].r, "READONLY") || error_is(c[i].r, "NOSCRIPT")));
		     i++)
			;
		if (i == n) /* replies from the right node */
			break;
		went_down(s, c[i].r->str); /* a failover, a SCRIPT FLUSH: a new connection */
		for (i = 0; i < n; i++)
			freeReplyObject(c[i].r);
		forget(s);
		idle = false;
	}
	for (i = 0; i < n; i++) {
		if (!c || !s->c) { /* out of memory, or no replies */
			rcs[i] = -EAGAIN;
			if (c)
				c[i].r = NULL;
			continue;
		}
		rcs[i] = 0;
		if (c[i].r->type == REDIS_REPLY_ERROR)
			rcs[i] =
			    error_is(c[i].r, "WRONGTYPE") ? -EINVAL : went_down(s, c[i].r->str);
		else if (!acked)
			rcs[i] =
			    went_down(s, "fewer replicas than REDIS_WAIT_REPLICAS acknowledged "
			                 "the write (WAIT)");
		else if (s->down_logged)
			log_info("redis connected", "addr", s->addr.host);
		if (rcs[i] == 0)
			s->down_logged = 0;
		if (rcs[i] < 0) {
			freeReplyObject(c[i].r);
			c[i].r = NULL;
		}
	}
}

/* Runs one command (see run_many); returns 0 with c->r set to the reply (caller frees), or
 * -EAGAIN or -EINVAL with c->r NULL. */
static int run(struct store *s, struct cmd *c)
{
	int rc;

	run_many(s, c, 1, false, &rc);
	return rc;
}

/* Believes rc -ENOENT (an order's key is absent) only from a primary: asks ROLE on the same
 * connection; anything else drops it (and, with Sentinels, the primary's address). Returns
 * rc, or -EAGAIN. */
static int absent(struct store *s, int rc)
{
	struct cmd c = {.argc = 1, .argv = {"ROLE"}};
	bool primary;

	if (rc != -ENOENT)
		return rc;
	if (run(s, &c) < 0)
		return -EAGAIN;
	primary = role_master(c.r);
	freeReplyObject(c.r);
	if (primary)
		return -ENOENT;
	went_down(s, "not the primary (ROLE)");
	forget(s);
	return -EAGAIN;
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
		if (s->addr.host[0]) {
			trace_span_set_str(span, "server.address", s->addr.host);
			trace_span_set_int(span, "server.port", s->addr.port);
		}
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
	struct cmd c = {.argc = 1, .argv = {"PING"}};
	int rc = run(s, &c);

	freeReplyObject(c.r);
	return rc < 0 ? -EAGAIN : 0;
}

/* Fills c with the HSET creating order:<key> from o, a field of the table a name and a value. */
static void create_cmd(struct cmd *c, const char *key, const struct order *o, long long deadline_ms)
{
	*c = (struct cmd){.argc = 2, .argv = {"HSET", c->hk}};
	snprintf(c->hk, sizeof(c->hk), "order:%s", key);
	snprintf(c->deadline, sizeof(c->deadline), "%lld", deadline_ms);
	for (size_t i = 0; i < N_FIELDS; i++) {
		const struct field *f = &fields[i];
		const char *v = f->kind == DEADLINE ? c->deadline
		                : f->created        ? f->created
		                                    : (const char *)o + f->off;

		if (f->kind == OPTIONAL && (!v[0] || !o->traceparent[0]))
			continue;
		c->argv[c->argc++] = f->name;
		c->argv[c->argc++] = v;
	}
}

void store_orders_create(struct store *s, const char *const *keys,
                         const struct order *const *orders, size_t n, int *rcs)
{
	/* The wall-clock time in ms since the epoch, the queue deadline from now. */
	long long deadline_ms = clock_wall_ms() + atomic_load(&queue_deadline_ms);
	struct cmd *c = calloc(n, sizeof(*c));

	for (size_t i = 0; i < n && c; i++)
		create_cmd(&c[i], keys[i], orders[i], deadline_ms);
	run_many(s, c, n, true, rcs);
	for (size_t i = 0; i < n && c; i++)
		freeReplyObject(c[i].r); /* NULL after an error */
	free(c);
}

/* Fills c to run one of the order scripts on order:<key> with the optional argument arg (NULL:
 * none). */
static void script_cmd(const struct store *s, struct cmd *c, enum script script, const char *key,
                       const char *arg)
{
	/* s->sha: filled in on connecting */
	*c = (struct cmd){
	    .argc = 6,
	    .argv = {"EVALSHA", s->sha[script], "1", c->hk, arg ? arg : "", s->held ? "held" : ""}};
	snprintf(c->hk, sizeof(c->hk), "order:%s", key);
}

/* Runs a script answering 1 done, 0 refused, -1 no such order on the n orders keys in one
 * round trip; rcs[i] is 0, -EALREADY, -ENOENT, a store_* error, or -EAGAIN for any other
 * reply (or out of memory). */
static void run_updates(struct store *s, enum script script, const char *const *keys, size_t n,
                        const char *arg, int *rcs)
{
	struct cmd *c = calloc(n, sizeof(*c));

	for (size_t i = 0; i < n && c; i++)
		script_cmd(s, &c[i], script, keys[i], arg);
	run_many(s, c, n, true, rcs);
	for (size_t i = 0; i < n; i++) {
		if (rcs[i] < 0)
			continue;
		rcs[i] = c[i].r->type != REDIS_REPLY_INTEGER ? -EAGAIN
		         : c[i].r->integer == 1              ? 0
		         : c[i].r->integer == 0              ? -EALREADY
		                                             : -ENOENT;
		freeReplyObject(c[i].r);
	}
	free(c);
	for (size_t i = 0, checked = 0; i < n; i++) { /* one ROLE for all */
		if (rcs[i] == -ENOENT && !checked++ && absent(s, -ENOENT) < 0)
			for (size_t j = i; j < n; j++)
				rcs[j] = rcs[j] == -ENOENT ? -EAGAIN : rcs[j];
	}
}

void store_orders_queued(struct store *s, const char *const *keys, size_t n, int *rcs)
{
	run_updates(s, QUEUED, keys, n, NULL, rcs);
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
	struct cmd c;
	int rc;

	script_cmd(s, &c, EXPIRE, key, NULL);
	if ((rc = run(s, &c)) < 0)
		return rc;
	rc = copy_field(c.r, o->status, sizeof(o->status)) == 0 ? 0 : -ENOENT;
	freeReplyObject(c.r);
	return rc;
}

int store_order_get(struct store *s, const char *key, struct order *o)
{
	struct cmd c = {.argc = 2, .argv = {"HMGET", c.hk}};
	bool deadline = false;
	int rc;

	snprintf(c.hk, sizeof(c.hk), "order:%s", key);
	for (size_t i = 0; i < N_FIELDS; i++)
		c.argv[c.argc++] = fields[i].name;
	if ((rc = run(s, &c)) < 0)
		return rc;
	rc = c.r->type == REDIS_REPLY_ARRAY && c.r->elements == N_FIELDS ? 0 : -ENOENT;
	for (size_t i = 0; i < N_FIELDS && rc == 0; i++) { /* the first missing one ends it */
		if (fields[i].kind == DEADLINE)
			deadline = c.r->element[i]->type == REDIS_REPLY_STRING;
		else if (copy_field(c.r->element[i], (char *)o + fields[i].off, fields[i].cap) <
		             0 &&
		         fields[i].kind == REQUIRED)
			rc = -ENOENT;
	}
	freeReplyObject(c.r);
	if (rc == 0 && deadline && strcmp(o->status, "pending") == 0)
		rc = expire(s, key, o);
	return absent(s, rc);
}

int store_order_set_status(struct store *s, const char *key, const char *status)
{
	int rc;

	run_updates(s, SET_STATUS, &key, 1, status, &rc);
	return rc;
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
