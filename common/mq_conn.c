/* mq_conn.c — one librabbitmq connection and channel to a list of brokers: open, declare, drop. */
#include "mq_conn.h"

#include <amqp_tcp_socket.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "log.h"

#define IO_TIMEOUT_S 2
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000
#define CLOSE_MS     500 /* mq_conn_close's handshake: a silent broker never holds a stop */

/* When any connection of the process last opened: a broker back up ends every backoff. */
static _Atomic long long last_connected_ms;

struct timeval mq_conn_tv(long long ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};

	return tv;
}

void mq_conn_init(struct mq_conn *c, const struct mq_config *cfg, mq_conn_setup_fn *setup,
                  mq_conn_drop_fn *on_drop)
{
	memset(c, 0, sizeof(*c));
	c->cfg = *cfg;
	snprintf(c->dlx, sizeof(c->dlx), "%s.dlx", cfg->queue);
	snprintf(c->dead, sizeof(c->dead), "%s.dead", cfg->queue);
	c->setup = setup;
	c->on_drop = on_drop;
}

/* Describes a failed RPC reply into buf for the logs. */
static const char *reply_text(amqp_rpc_reply_t r, char *buf, size_t cap)
{
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
		return amqp_error_string2(r.library_error);
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
	    r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
		amqp_channel_close_t *ch = r.reply.decoded;
		snprintf(buf, cap, "channel closed %u: %.*s", ch->reply_code,
		         (int)ch->reply_text.len, (char *)ch->reply_text.bytes);
		return buf;
	}
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
	    r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
		amqp_connection_close_t *co = r.reply.decoded;
		snprintf(buf, cap, "connection closed %u: %.*s", co->reply_code,
		         (int)co->reply_text.len, (char *)co->reply_text.bytes);
		return buf;
	}
	return "unexpected reply";
}

/* The one log of the connection's state: it went down (at step, because of why), logged once
 * until mq_conn_ensure logs it connected again. Returns -EAGAIN. */
static int went_down(struct mq_conn *c, const char *step, const char *why)
{
	if (!c->down_logged)
		log_warn("rabbitmq unavailable", "addr", c->cfg.hosts[c->host].host, "step", step,
		         "error", why);
	c->down_logged = true;
	return -EAGAIN;
}

static int reply_ok(struct mq_conn *c, amqp_rpc_reply_t r, const char *step)
{
	char buf[300];

	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 0;
	return went_down(c, step, reply_text(r, buf, sizeof(buf)));
}

int mq_conn_rpc_ok(struct mq_conn *c, const char *step)
{
	return reply_ok(c, amqp_get_rpc_reply(c->conn), step);
}

/* As mq_conn_rpc_ok for a declare: 406 PRECONDITION_FAILED (the queue exists with other
 * arguments) is -EEXIST, not logged: the caller says what to do about it. */
static int declare_ok(struct mq_conn *c, const char *step)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(c->conn);

	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
	    r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
	    ((amqp_channel_close_t *)r.reply.decoded)->reply_code == AMQP_PRECONDITION_FAILED)
		return -EEXIST;
	return reply_ok(c, r, step);
}

struct timeval mq_conn_step(struct mq_conn *c, long long deadline_ms)
{
	long long left = deadline_ms - clock_now_ms();
	struct timeval tv;

	if (left > IO_TIMEOUT_S * 1000)
		left = IO_TIMEOUT_S * 1000;
	tv = mq_conn_tv(left < 1 ? 1 : left);
	amqp_set_handshake_timeout(c->conn, &tv);
	amqp_set_rpc_timeout(c->conn, &tv);
	return tv;
}

size_t mq_conn_queue_args(const struct mq_config *cfg, const char *dlx, amqp_table_entry_t *args,
                          size_t cap)
{
	static const char *const quorum[][2] = {{"x-queue-type", "quorum"},
	                                        {"x-dead-letter-strategy", "at-least-once"},
	                                        {"x-overflow", "reject-publish"}};
	size_t n = 0;

	if (cap < 5)
		return 0;
	args[n++] = (amqp_table_entry_t){
	    .key = amqp_cstring_bytes("x-dead-letter-exchange"),
	    .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(dlx)}};
	if (cfg->queue_type != MQ_QUORUM)
		return n;
	for (size_t i = 0; i < 3; i++)
		args[n++] = (amqp_table_entry_t){
		    .key = amqp_cstring_bytes(quorum[i][0]),
		    .value = {.kind = AMQP_FIELD_KIND_UTF8,
		              .value.bytes = amqp_cstring_bytes(quorum[i][1])}};
	args[n++] = (amqp_table_entry_t){
	    .key = amqp_cstring_bytes("x-delivery-limit"),
	    .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = cfg->delivery_limit}};
	return n;
}

/* The same durable topology from every service: queue -> (dead letters) dlx -> dead, the dead
 * queue of the queue's type. Returns 0, -EAGAIN or -EEXIST. */
static int declare(struct mq_conn *c, long long deadline)
{
	amqp_table_entry_t args[5], type = {.key = amqp_cstring_bytes("x-queue-type"),
	                                    .value = {.kind = AMQP_FIELD_KIND_UTF8,
	                                              .value.bytes = amqp_cstring_bytes("quorum")}};
	amqp_table_t dead = {c->cfg.queue_type == MQ_QUORUM ? 1 : 0, &type};
	amqp_table_t queue = {(int)mq_conn_queue_args(&c->cfg, c->dlx, args, 5), args};
	int rc;

	mq_conn_step(c, deadline);
	amqp_exchange_declare(c->conn, MQ_CONN_CHANNEL, amqp_cstring_bytes(c->dlx),
	                      amqp_cstring_bytes("fanout"), 0, 1, 0, 0, amqp_empty_table);
	if (mq_conn_rpc_ok(c, "declare dead-letter exchange") < 0)
		return -EAGAIN;
	mq_conn_step(c, deadline);
	amqp_queue_declare(c->conn, MQ_CONN_CHANNEL, amqp_cstring_bytes(c->dead), 0, 1, 0, 0, dead);
	if ((rc = declare_ok(c, "declare dead-letter queue")) < 0)
		return rc;
	mq_conn_step(c, deadline);
	amqp_queue_bind(c->conn, MQ_CONN_CHANNEL, amqp_cstring_bytes(c->dead),
	                amqp_cstring_bytes(c->dlx), amqp_empty_bytes, amqp_empty_table);
	if (mq_conn_rpc_ok(c, "bind dead-letter queue") < 0)
		return -EAGAIN;
	mq_conn_step(c, deadline);
	amqp_queue_declare(c->conn, MQ_CONN_CHANNEL, amqp_cstring_bytes(c->cfg.queue), 0, 1, 0, 0,
	                   queue);
	return declare_ok(c, "declare queue");
}

/* Connects to the current address, logs in, opens the channel, declares the topology and runs
 * the role's setup by deadline (monotonic ms), each step waiting IO_TIMEOUT_S at most; the
 * open connection's RPCs then wait IO_TIMEOUT_S. Returns 0, -EAGAIN or -EEXIST (c->conn is
 * then dropped by the caller). */
static int open_connection(struct mq_conn *c, long long deadline)
{
	const struct addr *a = &c->cfg.hosts[c->host];
	struct timeval tv;
	amqp_socket_t *sock;
	int rc;

	c->conn = amqp_new_connection();
	sock = c->conn ? amqp_tcp_socket_new(c->conn) : NULL;
	if (!sock)
		return went_down(c, "connect", "out of memory");
	tv = mq_conn_step(c, deadline);
	rc = amqp_socket_open_noblock(sock, a->host, a->port, &tv);
	if (rc != AMQP_STATUS_OK)
		return went_down(c, "connect", amqp_error_string2(rc));
	mq_conn_step(c, deadline);
	if (reply_ok(c,
	             amqp_login(c->conn, "/", 0, 131072, MQ_HEARTBEAT_S, AMQP_SASL_METHOD_PLAIN,
	                        c->cfg.user, c->cfg.pass),
	             "login") < 0)
		return -EAGAIN;
	mq_conn_step(c, deadline);
	amqp_channel_open(c->conn, MQ_CONN_CHANNEL);
	if (mq_conn_rpc_ok(c, "open channel") < 0)
		return -EAGAIN;
	if ((rc = declare(c, deadline)) < 0 || (rc = c->setup(c, deadline)) < 0)
		return rc;
	tv = mq_conn_tv(IO_TIMEOUT_S * 1000);
	amqp_set_rpc_timeout(c->conn, &tv);
	return 0;
}

int mq_conn_ensure(struct mq_conn *c, long long timeout_ms)
{
	long long now = clock_now_ms(), deadline = now + timeout_ms;
	int rc = -EAGAIN;

	if (c->conn)
		return 0;
	if (timeout_ms <= 0 ||
	    (now < c->backoff.next_ms && atomic_load(&last_connected_ms) < c->backoff.failed_ms))
		return -EAGAIN;
	/* Each address once at most, in turn, while time is left: a dead node costs one try. */
	for (size_t tries = 0; tries < c->cfg.nhosts && clock_now_ms() < deadline; tries++) {
		if ((rc = open_connection(c, deadline)) == 0) {
			atomic_store(&last_connected_ms, clock_now_ms());
			c->generation++;
			backoff_reset(&c->backoff);
			if (c->down_logged)
				log_info("rabbitmq connected", "addr", c->cfg.hosts[c->host].host);
			c->down_logged = false;
			return 0;
		}
		mq_conn_drop(c); /* on to the next address */
		if (rc == -EEXIST)
			break; /* the same queue on every node */
	}
	backoff_fail(&c->backoff, now, RETRY_MIN_MS, RETRY_MAX_MS);
	return rc;
}

void mq_conn_drop(struct mq_conn *c)
{
	if (c->conn) {
		amqp_destroy_connection(c->conn);
		c->conn = NULL;
		c->host = (c->host + 1) % c->cfg.nhosts;
	}
	if (c->on_drop)
		c->on_drop(c);
}

int mq_conn_lost(struct mq_conn *c, const char *why)
{
	went_down(c, "connection lost", why); /* names the address before the drop moves on */
	mq_conn_drop(c);
	return -EAGAIN;
}

void mq_conn_close(struct mq_conn *c)
{
	if (c->conn) { /* closing the connection closes its channel */
		struct timeval tv = mq_conn_tv(CLOSE_MS);
		amqp_set_rpc_timeout(c->conn, &tv);
		amqp_connection_close(c->conn, AMQP_REPLY_SUCCESS);
	}
	mq_conn_drop(c);
}

int mq_conn_frame(struct mq_conn *c, struct timeval *tv,
                  int (*method)(struct mq_conn *c, const amqp_frame_t *f))
{
	amqp_frame_t f;
	int rc = amqp_simple_wait_frame_noblock(c->conn, &f, tv);

	if (rc == AMQP_STATUS_TIMEOUT)
		return 0;
	if (rc != AMQP_STATUS_OK)
		return mq_conn_lost(c, amqp_error_string2(rc));
	if (f.frame_type != AMQP_FRAME_METHOD)
		return 1;
	if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
	    f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)
		return mq_conn_lost(c, "closed by the broker");
	if (method && method(c, &f) < 0)
		return -EAGAIN;
	return 1;
}
