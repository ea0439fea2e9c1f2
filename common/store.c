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

/* Sends n commands in one write (argv holds them argc entries apart; command i has argcs[i]
 * arguments, or argc when argcs is NULL), followed by WAIT when wait, and reads their n replies
 * into r; returns 0, or -EAGAIN with every r[i] NULL (connection broken, or cannot connect).
 * *acked is false when WAIT's reply counts fewer replicas than s->wait. */
static int send_once(struct store *s, size_t n, int argc, const int *argcs, const char **argv,
                     bool wait, redisReply **r, bool *acked)
{
	size_t i, got = 0;
	redisReply *w = NULL;

	*acked = true;
	if (ensure(s) < 0)
		return -EAGAIN;
	for (i = 0; i < n; i++)
		if (redisAppendCommandArgv(s->c, argcs ? argcs[i] : argc, argv + i * (size_t)argc,
		                           NULL) != REDIS_OK)
			break;
	if (i == n && wait && redisAppendCommand(s->c, "WAIT %d %d", s->wait, WAIT_TIMEOUT_MS))
		i = 0;
	while (i == n && got < n && redisGetReply(s->c, (void **)&r[got]) == REDIS_OK)
		got++;
	if (got == n && (!wait || redisGetReply(s->c, (void **)&w) == REDIS_OK)) {
		*acked = !wait || (w->type == REDIS_REPLY_INTEGER && w->integer >= s->wait);
		freeReplyObject(w);
		return 0;
	}
	while (got > 0)
		freeReplyObject(r[--got]);
	return -EAGAIN;
}

/* Runs n commands (argv, argc and argcs as send_once takes them) pipelined, writes followed
 * by WAIT when s has wait replicas: rcs[i] is 0 with r[i] set to its reply (caller frees; r
 * NULL: freed here), or -EAGAIN or -EINVAL with r[i] NULL. Every command here is idempotent, so
 * two cases send them once more on a fresh connection: a connection found broken (Redis
 * restarted while it sat idle), and a READONLY reply (a failover left this connection on the
 * demoted primary; a new connection reaches the new one). WRONGTYPE is -EINVAL; any other
 * error reply (LOADING, BUSY, MASTERDOWN, ...) -EAGAIN, connection kept; so is every reply
 * of writes that fewer replicas than s->wait acknowledged. */
static void run_many(struct store *s, size_t n, int argc, const int *argcs, const char **argv,
                     bool write, redisReply **r, int *rcs)
{
	redisReply *own[1];
	int reused = s->c != NULL, again = 1;
	bool acked = true;
	size_t i;

	r = r ? r : own; /* n is 1 without r */
	for (;; again--) {
		if (send_once(s, n, argc, argcs, argv, write && s->wait > 0, r, &acked) < 0) {
			if (s->c)
				went_down(s, s->c->errstr);
			drop(s);
			if (!reused || !again)
				break;
		} else {
			for (i = 0;
			     i < n && !(r[i]->type == REDIS_REPLY_ERROR &&
			                (error_is(r[i], "READONLY") || error_is(r[i], "NOSCRIPT")));
			     i++)
				;
			if (i == n)
				break;
			went_down(s, r[i]->str); /* a failover, a SCRIPT FLUSH: a new connection */
			for (i = 0; i < n; i++)
				freeReplyObject(r[i]);
			forget(s);
			if (!again)
				break;
		}
		s->backoff.next_ms = 0; /* reconnect at once, this one time */
		reused = 0;
	}
	for (i = 0; i < n; i++) {
		if (!s->c) { /* no replies */
			rcs[i] = -EAGAIN;
			r[i] = NULL;
			continue;
		}
		rcs[i] = 0;
		if (r[i]->type == REDIS_REPLY_ERROR)
			rcs[i] = error_is(r[i], "WRONGTYPE") ? -EINVAL : went_down(s, r[i]->str);
		else if (!acked)
			rcs[i] =
			    went_down(s, "fewer replicas than REDIS_WAIT_REPLICAS acknowledged "
			                 "the write (WAIT)");
		else if (s->down_logged)
			log_info("redis connected", "addr", s->addr.host);
		if (rcs[i] == 0)
			s->down_logged = 0;
		if (rcs[i] < 0 || r == own) {
			freeReplyObject(r[i]);
			r[i] = NULL;
		}
	}
}

/* Runs one command (see run_many); returns 0 with *out set to the reply (caller frees; out
 * NULL: freed here), or -EAGAIN or -EINVAL with *out NULL. */
static int run(struct store *s, int argc, const char **argv, redisReply **out)
{
	int rc;

	run_many(s, 1, argc, NULL, argv, false, out, &rc);
	return rc;
}

/* Believes rc -ENOENT (an order's key is absent) only from a primary: asks ROLE on the same
 * connection; anything else drops it (and, with Sentinels, the primary's address). Returns
 * rc, or -EAGAIN. */
static int absent(struct store *s, int rc)
{
	const char *argv[] = {"ROLE"};
	redisReply *r;
	bool primary;

	if (rc != -ENOENT)
		return rc;
	if (run(s, 1, argv, &r) < 0)
		return -EAGAIN;
	primary = role_master(r);
	freeReplyObject(r);
	if (primary)
		return -ENOENT;
	went_down(s, "not the primary (ROLE)");
	forget(s);
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
	const char *argv[] = {"PING"};

	return run(s, 1, argv, NULL) < 0 ? -EAGAIN : 0;
}

/* Fills argv (at most CREATE_ARGS entries; names in hk, 64 bytes, and deadline, 32) with the
 * HSET creating order:<key>; returns its argument count. */
#define CREATE_ARGS 16
static int create_argv(const char **argv, char *hk, char *deadline, const char *key,
                       const struct order *o, long long deadline_ms)
{
	int argc = 12;

	hash_key(hk, 64, key);
	snprintf(deadline, 32, "%lld", deadline_ms);
	memcpy(argv,
	       (const char *[]){"HSET", hk, "customer", o->customer, "pastry", o->pastry,
	                        "orderTime", o->order_time, "status", "pending", "queueDeadline",
	                        deadline},
	       12 * sizeof(*argv));
	if (o->traceparent[0]) {
		argv[argc++] = "traceparent";
		argv[argc++] = o->traceparent;
	}
	if (o->traceparent[0] && o->tracestate[0]) {
		argv[argc++] = "tracestate";
		argv[argc++] = o->tracestate;
	}
	return argc;
}

void store_orders_create(struct store *s, const char *const *keys,
                         const struct order *const *orders, size_t n, int *rcs)
{
	/* The wall-clock time in ms since the epoch, the queue deadline from now. */
	long long deadline_ms = clock_wall_ms() + atomic_load(&queue_deadline_ms);
	const char **argv =
	    malloc(n * (CREATE_ARGS * sizeof(*argv) + sizeof(redisReply *) + sizeof(int) + 96));
	redisReply **r = (redisReply **)(argv + CREATE_ARGS * n);
	int *argcs = (int *)(r + n);
	char *hk = (char *)(argcs + n), *deadline = hk + 64 * n;

	if (!argv) {
		for (size_t i = 0; i < n; i++)
			rcs[i] = -EAGAIN;
		return;
	}
	for (size_t i = 0; i < n; i++)
		argcs[i] = create_argv(argv + CREATE_ARGS * i, hk + 64 * i, deadline + 32 * i,
		                       keys[i], orders[i], deadline_ms);
	run_many(s, n, CREATE_ARGS, argcs, argv, true, r, rcs);
	for (size_t i = 0; i < n; i++)
		freeReplyObject(r[i]); /* NULL after an error */
	free(argv);
}

/* Fills argv (6 entries) to run one of the order scripts on order:<key> (its name in hk, 64
 * bytes) with the optional argument arg (NULL: none). */
static void script_argv(const struct store *s, const char **argv, char *hk, enum script script,
                        const char *key, const char *arg)
{
	hash_key(hk, 64, key);
	argv[0] = "EVALSHA";
	argv[1] = s->sha[script]; /* filled in on connecting */
	argv[2] = "1";
	argv[3] = hk;
	argv[4] = arg ? arg : "";
	argv[5] = s->held ? "held" : "";
}

/* Runs a script answering 1 done, 0 refused, -1 no such order on the n orders keys in one
 * round trip; rcs[i] is 0, -EALREADY, -ENOENT, a store_* error, or -EAGAIN for any other
 * reply (or out of memory). */
static void run_updates(struct store *s, enum script script, const char *const *keys, size_t n,
                        const char *arg, int *rcs)
{
	const char **argv = malloc(n * (6 * sizeof(*argv) + sizeof(redisReply *) + 64));
	redisReply **r = (redisReply **)(argv + 6 * n);
	char *hk = (char *)(r + n);

	if (!argv) {
		for (size_t i = 0; i < n; i++)
			rcs[i] = -EAGAIN;
		return;
	}
	for (size_t i = 0; i < n; i++)
		script_argv(s, argv + i * 6, hk + i * 64, script, keys[i], arg);
	run_many(s, n, 6, NULL, argv, true, r, rcs);
	for (size_t i = 0; i < n; i++) {
		if (rcs[i] < 0)
			continue;
		rcs[i] = r[i]->type != REDIS_REPLY_INTEGER ? -EAGAIN
		         : r[i]->integer == 1              ? 0
		         : r[i]->integer == 0              ? -EALREADY
		                                           : -ENOENT;
		freeReplyObject(r[i]);
	}
	free(argv);
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
	const char *argv[6];
	char hk[64];
	redisReply *r;
	int rc;

	script_argv(s, argv, hk, EXPIRE, key, NULL);
	if ((rc = run(s, 6, argv, &r)) < 0)
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
	rc = run(s, 9, argv, &r);
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
