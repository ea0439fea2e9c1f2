/* mq.c — one librabbitmq connection and channel: declare, publish with confirm, consume. */
#include "mq.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "log.h"

#define CHANNEL      1
#define IO_TIMEOUT_S 2
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000
#define NAME_MAX_    256
#define KEEPALIVE_MS 1000  /* how often idle publisher connections are serviced */
#define OPEN_MS      10000 /* opening a connection outside a publish, all steps together */
#define CLOSE_MS     500   /* mq_free's closing handshake: a silent broker never holds a stop */

struct mq {
	char host[CONFIG_HOST_MAX];
	int port;
	char user[CONFIG_CRED_MAX];
	char pass[CONFIG_CRED_MAX];
	char queue[NAME_MAX_];
	char dlx[NAME_MAX_];
	char dead[NAME_MAX_];
	int prefetch;                 /* > 0: consumer */
	char consumer_tag[NAME_MAX_]; /* the broker's tag of our basic.consume (for basic.cancel) */
	pthread_mutex_t lock;         /* the owner thread and the keep-alive thread (publishers) */
	struct mq *next_idle;         /* the keep-alive list */
	amqp_connection_state_t conn;
	uint64_t next_seq; /* publisher confirm sequence of the next publish */
	unsigned generation;
	struct backoff backoff;
	int down_logged; /* "rabbitmq unavailable" was logged: "connected" comes next */
};

/* Publishers' connections sit idle between orders, and librabbitmq services heartbeats only
 * inside its own calls: one thread per process visits every publisher each KEEPALIVE_MS and
 * reads what waits on its socket, which sends our heartbeat when due and notices a broker gone
 * silent (no heartbeat for two intervals) or a close, before the next publish would. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct mq *list;
	pthread_t thread;
	bool running;
} keepalive = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* When any mq of the process last connected: a broker back up ends every backoff. */
static _Atomic long long last_connected_ms;

static int drain(struct mq *m);

static struct timeval ms_tv(long long ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};

	return tv;
}

static void *keepalive_main(void *arg)
{
	struct timespec ts;

	(void)arg;
	pthread_mutex_lock(&keepalive.lock);
	for (;;) {
		for (struct mq *m = keepalive.list; m; m = m->next_idle) {
			if (pthread_mutex_trylock(&m->lock) != 0)
				continue; /* in use: its owner is reading the socket anyway */
			if (m->conn)
				drain(m);
			pthread_mutex_unlock(&m->lock);
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += KEEPALIVE_MS / 1000;
		ts.tv_nsec += (KEEPALIVE_MS % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&keepalive.wake, &keepalive.lock, &ts);
	}
	return NULL;
}

/* Puts publisher m on the keep-alive list, starting the thread (detached, for the life of the
 * process) with the first one. Without the thread (it could not start; the next publisher
 * tries again) publishes still work: they notice a dead connection and replace it. */
static void keepalive_add(struct mq *m)
{
	pthread_mutex_lock(&keepalive.lock);
	m->next_idle = keepalive.list;
	keepalive.list = m;
	if (!keepalive.running &&
	    pthread_create(&keepalive.thread, NULL, keepalive_main, NULL) == 0) {
		pthread_detach(keepalive.thread);
		keepalive.running = true;
	}
	pthread_mutex_unlock(&keepalive.lock);
}

/* Takes m off the keep-alive list: the thread no longer touches it once this returns (it
 * visits the list only under keepalive.lock). The thread stays, idle while the list is empty:
 * never stopping it leaves no window in which a new publisher could race a stop. */
static void keepalive_remove(struct mq *m)
{
	pthread_mutex_lock(&keepalive.lock);
	for (struct mq **p = &keepalive.list; *p; p = &(*p)->next_idle) {
		if (*p == m) {
			*p = m->next_idle;
			break;
		}
	}
	pthread_mutex_unlock(&keepalive.lock);
}

struct mq *mq_new(const struct config *cfg, int prefetch)
{
	struct mq *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	snprintf(m->host, sizeof(m->host), "%s", cfg->rabbit_host);
	m->port = cfg->rabbit_port;
	snprintf(m->user, sizeof(m->user), "%s", cfg->rabbit_username);
	snprintf(m->pass, sizeof(m->pass), "%s", cfg->rabbit_password);
	snprintf(m->queue, sizeof(m->queue), "%s", cfg->orders_queue);
	snprintf(m->dlx, sizeof(m->dlx), "%s.dlx", cfg->orders_queue);
	snprintf(m->dead, sizeof(m->dead), "%s.dead", cfg->orders_queue);
	m->prefetch = prefetch;
	pthread_mutex_init(&m->lock, NULL);
	if (prefetch <= 0)
		keepalive_add(m);
	return m;
}

/* Forgets the connection without a closing handshake (it is broken or refused). */
static void drop(struct mq *m)
{
	if (m->conn) {
		amqp_destroy_connection(m->conn);
		m->conn = NULL;
	}
}

void mq_free(struct mq *m)
{
	if (!m)
		return;
	if (m->prefetch <= 0)
		keepalive_remove(m);
	if (m->conn) { /* closing the connection closes its channel */
		struct timeval tv = ms_tv(CLOSE_MS);
		amqp_set_rpc_timeout(m->conn, &tv);
		amqp_connection_close(m->conn, AMQP_REPLY_SUCCESS);
	}
	drop(m);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

bool mq_connected(const struct mq *m)
{
	struct mq *w = (struct mq *)m; /* the lock only */
	bool up;

	pthread_mutex_lock(&w->lock);
	up = m->conn != NULL;
	pthread_mutex_unlock(&w->lock);
	return up;
}

/* Describes a failed RPC reply into buf for the logs. */
static const char *reply_text(amqp_rpc_reply_t r, char *buf, size_t cap)
{
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
		return amqp_error_string2(r.library_error);
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
	    r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
		amqp_channel_close_t *c = r.reply.decoded;
		snprintf(buf, cap, "channel closed %u: %.*s", c->reply_code, (int)c->reply_text.len,
		         (char *)c->reply_text.bytes);
		return buf;
	}
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
	    r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
		amqp_connection_close_t *c = r.reply.decoded;
		snprintf(buf, cap, "connection closed %u: %.*s", c->reply_code,
		         (int)c->reply_text.len, (char *)c->reply_text.bytes);
		return buf;
	}
	return "unexpected reply";
}

/* The one log of the connection's state: it went down (at step, because of why), logged once
 * until ensure logs it connected again. Returns -EAGAIN. */
static int went_down(struct mq *m, const char *step, const char *why)
{
	if (!m->down_logged)
		log_warn("rabbitmq unavailable", "addr", m->host, "step", step, "error", why);
	m->down_logged = 1;
	return -EAGAIN;
}

/* Checks the last RPC (reply r); returns 0 or -EAGAIN. */
static int reply_ok(struct mq *m, amqp_rpc_reply_t r, const char *step)
{
	char buf[300];

	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 0;
	return went_down(m, step, reply_text(r, buf, sizeof(buf)));
}

static int rpc_ok(struct mq *m, const char *step)
{
	return reply_ok(m, amqp_get_rpc_reply(m->conn), step);
}

/* Gives the next step of opening a connection what is left until deadline (monotonic ms):
 * IO_TIMEOUT_S at most, 1 ms at least (a step past the deadline then times out and says which
 * it was), as its handshake and RPC timeout; returns it for the socket's connect. */
static struct timeval step_timeout(struct mq *m, long long deadline)
{
	long long left = deadline - backoff_now_ms();
	struct timeval tv;

	if (left > IO_TIMEOUT_S * 1000)
		left = IO_TIMEOUT_S * 1000;
	tv = ms_tv(left < 1 ? 1 : left);
	amqp_set_handshake_timeout(m->conn, &tv);
	amqp_set_rpc_timeout(m->conn, &tv);
	return tv;
}

/* The same durable topology from every service: queue -> (dead letters) dlx -> dead. */
static int declare(struct mq *m, long long deadline)
{
	amqp_table_entry_t arg = {
	    .key = amqp_cstring_bytes("x-dead-letter-exchange"),
	    .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(m->dlx)}};
	amqp_table_t args = {.num_entries = 1, .entries = &arg};

	step_timeout(m, deadline);
	amqp_exchange_declare(m->conn, CHANNEL, amqp_cstring_bytes(m->dlx),
	                      amqp_cstring_bytes("fanout"), 0, 1, 0, 0, amqp_empty_table);
	if (rpc_ok(m, "declare dead-letter exchange") < 0)
		return -EAGAIN;
	step_timeout(m, deadline);
	amqp_queue_declare(m->conn, CHANNEL, amqp_cstring_bytes(m->dead), 0, 1, 0, 0,
	                   amqp_empty_table);
	if (rpc_ok(m, "declare dead-letter queue") < 0)
		return -EAGAIN;
	step_timeout(m, deadline);
	amqp_queue_bind(m->conn, CHANNEL, amqp_cstring_bytes(m->dead), amqp_cstring_bytes(m->dlx),
	                amqp_empty_bytes, amqp_empty_table);
	if (rpc_ok(m, "bind dead-letter queue") < 0)
		return -EAGAIN;
	step_timeout(m, deadline);
	amqp_queue_declare(m->conn, CHANNEL, amqp_cstring_bytes(m->queue), 0, 1, 0, 0, args);
	return rpc_ok(m, "declare queue");
}

/* Connects, logs in, opens the channel and declares the topology by deadline (monotonic ms),
 * each step waiting IO_TIMEOUT_S at most; the open connection's RPCs then wait IO_TIMEOUT_S.
 * Returns 0 or -EAGAIN (m->conn is then dropped by the caller). */
static int open_connection(struct mq *m, long long deadline)
{
	struct timeval tv;
	amqp_socket_t *sock;
	int rc;

	m->conn = amqp_new_connection();
	sock = m->conn ? amqp_tcp_socket_new(m->conn) : NULL;
	if (!sock)
		return went_down(m, "connect", "out of memory");
	tv = step_timeout(m, deadline);
	rc = amqp_socket_open_noblock(sock, m->host, m->port, &tv);
	if (rc != AMQP_STATUS_OK)
		return went_down(m, "connect", amqp_error_string2(rc));
	step_timeout(m, deadline);
	if (reply_ok(m,
	             amqp_login(m->conn, "/", 0, 131072, MQ_HEARTBEAT_S, AMQP_SASL_METHOD_PLAIN,
	                        m->user, m->pass),
	             "login") < 0)
		return -EAGAIN;
	step_timeout(m, deadline);
	amqp_channel_open(m->conn, CHANNEL);
	if (rpc_ok(m, "open channel") < 0 || declare(m, deadline) < 0)
		return -EAGAIN;
	if (m->prefetch > 0) {
		step_timeout(m, deadline);
		amqp_basic_qos(m->conn, CHANNEL, 0, (uint16_t)m->prefetch, 0);
		if (rpc_ok(m, "basic.qos") < 0)
			return -EAGAIN;
		step_timeout(m, deadline);
		amqp_basic_consume_ok_t *ok =
		    amqp_basic_consume(m->conn, CHANNEL, amqp_cstring_bytes(m->queue),
		                       amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
		if (rpc_ok(m, "basic.consume") < 0 || !ok)
			return -EAGAIN;
		snprintf(m->consumer_tag, sizeof(m->consumer_tag), "%.*s",
		         (int)ok->consumer_tag.len, (char *)ok->consumer_tag.bytes);
	} else {
		step_timeout(m, deadline);
		amqp_confirm_select(m->conn, CHANNEL);
		if (rpc_ok(m, "confirm.select") < 0)
			return -EAGAIN;
		m->next_seq = 1;
	}
	tv = ms_tv(IO_TIMEOUT_S * 1000);
	amqp_set_rpc_timeout(m->conn, &tv);
	return 0;
}

/* Ensures an open connection, spending at most about timeout_ms on opening one; returns 0 or
 * -EAGAIN (also while backing off). */
static int ensure(struct mq *m, long long timeout_ms)
{
	long long now;

	if (m->conn)
		return 0;
	now = backoff_now_ms();
	if (timeout_ms <= 0 ||
	    (now < m->backoff.next_ms && atomic_load(&last_connected_ms) < m->backoff.failed_ms))
		return -EAGAIN;
	if (open_connection(m, now + timeout_ms) == 0) {
		atomic_store(&last_connected_ms, backoff_now_ms());
		m->generation++;
		backoff_reset(&m->backoff);
		if (m->down_logged)
			log_info("rabbitmq connected", "addr", m->host);
		m->down_logged = 0;
		return 0;
	}
	drop(m);
	backoff_fail(&m->backoff, now, RETRY_MIN_MS, RETRY_MAX_MS);
	return -EAGAIN;
}

/* Drops the connection after a failure (why); returns -EAGAIN. */
static int lost(struct mq *m, const char *why)
{
	drop(m);
	return went_down(m, "connection lost", why);
}

/* Handles a method frame that is neither a delivery nor a confirm: a broker close ends the
 * connection (returns -EAGAIN); a returned message is consumed (*returned set). */
static int other_method(struct mq *m, const amqp_frame_t *f, bool *returned)
{
	amqp_message_t msg;
	amqp_rpc_reply_t r;

	switch (f->payload.method.id) {
	case AMQP_CHANNEL_CLOSE_METHOD:
	case AMQP_CONNECTION_CLOSE_METHOD:
		return lost(m, "closed by the broker");
	case AMQP_BASIC_RETURN_METHOD:
		r = amqp_read_message(m->conn, f->channel, &msg, 0);
		if (r.reply_type != AMQP_RESPONSE_NORMAL)
			return lost(m, "reading a returned message");
		amqp_destroy_message(&msg);
		if (returned)
			*returned = true;
		return 0;
	default:
		return 0;
	}
}

/* Reads and handles one frame that is not a delivery (a heartbeat, a close...), waiting up to
 * *tv. Returns 1 when one was handled, 0 when none came, or -EAGAIN (connection lost). */
static int next_frame(struct mq *m, struct timeval *tv)
{
	amqp_frame_t f;
	int rc = amqp_simple_wait_frame_noblock(m->conn, &f, tv);

	if (rc == AMQP_STATUS_TIMEOUT)
		return 0;
	if (rc != AMQP_STATUS_OK)
		return lost(m, amqp_error_string2(rc));
	if (f.frame_type == AMQP_FRAME_METHOD && other_method(m, &f, NULL) < 0)
		return -EAGAIN;
	return 1;
}

/* Frees what earlier replies decoded (librabbitmq keeps it in per-connection pools until
 * told: without this a long-lived publisher grows with every confirm and RPC), then reads
 * frames already waiting (heartbeats, a close) so a dead connection is noticed. */
static int drain(struct mq *m)
{
	struct timeval zero = {0, 0};
	int rc;

	amqp_maybe_release_buffers(m->conn);
	while ((rc = next_frame(m, &zero)) > 0)
		;
	return rc;
}

/* Publishes once on the open connection and waits for the confirm until deadline (monotonic
 * ms). *sent says whether the message was handed to the socket (from then on it may be queued
 * whatever happens next). Returns 0, -EPROTO, -ETIMEDOUT (no confirm by the deadline; the
 * connection is dropped) or -EAGAIN (the connection was lost). */
static int publish_once(struct mq *m, const char *message_id, const char *body, size_t len,
                        const struct mq_header *headers, size_t nheaders, long long deadline,
                        bool *sent)
{
	amqp_table_entry_t entries[MQ_HEADERS_MAX];
	amqp_basic_properties_t p = {0};
	amqp_bytes_t bytes = {len, (void *)body};
	bool returned = false;
	uint64_t seq;
	size_t n = 0;
	int rc;

	for (size_t i = 0; i < nheaders && n < MQ_HEADERS_MAX; i++) {
		if (!headers[i].key || !headers[i].value)
			continue;
		entries[n].key = amqp_cstring_bytes(headers[i].key);
		entries[n].value.kind = AMQP_FIELD_KIND_UTF8;
		entries[n].value.value.bytes = amqp_cstring_bytes(headers[i].value);
		n++;
	}
	p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
	           AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
	p.content_type = amqp_cstring_bytes("application/json");
	p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	p.message_id = amqp_cstring_bytes(message_id);
	p.headers.num_entries = (int)n;
	p.headers.entries = entries;

	rc = amqp_basic_publish(m->conn, CHANNEL, amqp_empty_bytes, amqp_cstring_bytes(m->queue), 1,
	                        0, &p, bytes);
	if (rc != AMQP_STATUS_OK)
		return lost(m, amqp_error_string2(rc)); /* an incomplete message is never routed */
	*sent = true;
	seq = m->next_seq++;
	for (;;) {
		long long left = deadline - backoff_now_ms();
		struct timeval tv = ms_tv(left > 0 ? left : 0);
		amqp_frame_t f;

		rc = amqp_simple_wait_frame_noblock(m->conn, &f, &tv);
		if (rc == AMQP_STATUS_TIMEOUT) {
			drop(m); /* a late confirm would confuse the sequence: start afresh */
			return -ETIMEDOUT;
		}
		if (rc != AMQP_STATUS_OK)
			return lost(m, amqp_error_string2(rc));
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue;
		if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
			amqp_basic_ack_t *a = f.payload.method.decoded;
			if (a->delivery_tag == seq || (a->multiple && a->delivery_tag > seq))
				return returned ? -EPROTO : 0;
		} else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
			amqp_basic_nack_t *a = f.payload.method.decoded;
			if (a->delivery_tag == seq || (a->multiple && a->delivery_tag > seq))
				return -EPROTO;
		} else if (other_method(m, &f, &returned) < 0) {
			return -EAGAIN;
		}
	}
}

int mq_publish(struct mq *m, const char *message_id, const char *body, size_t len,
               const struct mq_header *headers, size_t nheaders, int timeout_ms)
{
	long long deadline = backoff_now_ms() + timeout_ms;
	bool sent = false;
	int rc = -EAGAIN;

	pthread_mutex_lock(&m->lock);
	for (int attempt = 0; attempt < 2 && backoff_now_ms() < deadline; attempt++) {
		bool reused = m->conn != NULL;

		if (ensure(m, deadline - backoff_now_ms()) < 0 || drain(m) < 0) {
			if (reused)
				continue; /* the idle connection had died: try a fresh one */
			break;
		}
		/* A connection lost mid-publish is retried once on a fresh one: the same message
		 * id twice is harmless (the consumer is idempotent), a lost message is not. */
		rc = publish_once(m, message_id, body, len, headers, nheaders, deadline, &sent);
		if (rc != -EAGAIN)
			break;
	}
	pthread_mutex_unlock(&m->lock);
	if (sent && rc != 0 && rc != -EPROTO)
		rc = -ETIMEDOUT; /* it may be on the queue: only the consumer will know */
	return rc;
}

int mq_ping(struct mq *m)
{
	int rc = -EAGAIN;

	pthread_mutex_lock(&m->lock);
	if (ensure(m, OPEN_MS) < 0 || drain(m) < 0)
		goto out;
	amqp_queue_declare(m->conn, CHANNEL, amqp_cstring_bytes(m->queue), 1, 0, 0, 0,
	                   amqp_empty_table);
	if (rpc_ok(m, "passive declare") < 0) {
		drop(m);
		goto out;
	}
	rc = 0;
out:
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static char *dup_bytes(amqp_bytes_t b)
{
	char *s = malloc(b.len + 1);

	if (s) {
		if (b.len) /* an empty body may have no buffer at all */
			memcpy(s, b.bytes, b.len);
		s[b.len] = '\0';
	}
	return s;
}

/* Copies what the delivery needs out of the envelope (which the library reuses). */
static int copy_envelope(const amqp_envelope_t *e, struct mq_delivery *d, unsigned gen)
{
	const amqp_basic_properties_t *p = &e->message.properties;

	memset(d, 0, sizeof(*d));
	d->tag = e->delivery_tag;
	d->generation = gen;
	d->redelivered = e->redelivered;
	d->len = e->message.body.len;
	d->body = dup_bytes(e->message.body);
	if (!d->body)
		return -ENOMEM;
	if ((p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) && !(d->message_id = dup_bytes(p->message_id)))
		return -ENOMEM;
	if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
		return 0;
	for (int i = 0; i < p->headers.num_entries && d->nheaders < MQ_HEADERS_MAX; i++) {
		const amqp_table_entry_t *t = &p->headers.entries[i];
		struct mq_header *h = &d->headers[d->nheaders];

		if ((t->value.kind != AMQP_FIELD_KIND_UTF8 &&
		     t->value.kind != AMQP_FIELD_KIND_BYTES) ||
		    t->value.value.bytes.len > MQ_HEADER_VALUE_MAX)
			continue;
		h->key = dup_bytes(t->key);
		h->value = dup_bytes(t->value.value.bytes);
		d->nheaders++;
		if (!h->key || !h->value)
			return -ENOMEM;
	}
	return 0;
}

int mq_next(struct mq *m, struct mq_delivery *d, int timeout_ms, int wake_fd)
{
	struct timeval tv = ms_tv(timeout_ms);
	amqp_envelope_t env;
	amqp_rpc_reply_t r;
	int rc;

	if (ensure(m, OPEN_MS) < 0)
		return -EAGAIN;
	amqp_maybe_release_buffers(m->conn);
	if (wake_fd >= 0 && !amqp_frames_enqueued(m->conn) && !amqp_data_in_buffer(m->conn)) {
		/* Sleep on the socket and the wake fd; then let the library read without waiting
		 * (it also sends heartbeats when due). */
		struct pollfd p[2] = {{amqp_get_sockfd(m->conn), POLLIN, 0}, {wake_fd, POLLIN, 0}};
		if (poll(p, 2, timeout_ms) < 0 && errno != EINTR)
			return lost(m, strerror(errno));
		tv = ms_tv(0);
	}
	r = amqp_consume_message(m->conn, &env, &tv, 0);
	if (r.reply_type == AMQP_RESPONSE_NORMAL) {
		rc = copy_envelope(&env, d, m->generation);
		amqp_destroy_envelope(&env);
		if (rc < 0) {
			/* Out of memory: the broker redelivers it on the next connection. */
			mq_delivery_clear(d);
			return lost(m, "out of memory copying a delivery");
		}
		return 1;
	}
	if (r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION)
		return lost(m, "unexpected reply while consuming");
	if (r.library_error == AMQP_STATUS_TIMEOUT)
		return 0;
	if (r.library_error != AMQP_STATUS_UNEXPECTED_STATE)
		return lost(m, amqp_error_string2(r.library_error));
	/* A frame other than a delivery is waiting: read and handle it. */
	rc = next_frame(m, &tv);
	return rc < 0 ? rc : 0;
}

int mq_settle(struct mq *m, unsigned generation, uint64_t tag, enum mq_settle how)
{
	int rc;

	if (!m->conn || generation != m->generation)
		return -EAGAIN;
	if (how == MQ_ACK)
		rc = amqp_basic_ack(m->conn, CHANNEL, tag, 0);
	else
		rc = amqp_basic_nack(m->conn, CHANNEL, tag, 0, how == MQ_REQUEUE);
	return rc == AMQP_STATUS_OK ? 0 : lost(m, amqp_error_string2(rc));
}

int mq_cancel(struct mq *m)
{
	if (!m->conn || m->prefetch <= 0)
		return -EAGAIN;
	amqp_basic_cancel(m->conn, CHANNEL, amqp_cstring_bytes(m->consumer_tag));
	if (rpc_ok(m, "basic.cancel") < 0) {
		drop(m);
		return -EAGAIN;
	}
	return 0;
}

const char *mq_delivery_header(const struct mq_delivery *d, const char *key)
{
	for (size_t i = 0; i < d->nheaders; i++) {
		if (d->headers[i].key && strcmp(d->headers[i].key, key) == 0)
			return d->headers[i].value;
	}
	return NULL;
}

void mq_delivery_clear(struct mq_delivery *d)
{
	if (!d)
		return;
	free(d->body);
	free(d->message_id);
	for (size_t i = 0; i < d->nheaders; i++) {
		free((char *)d->headers[i].key);
		free((char *)d->headers[i].value);
	}
	memset(d, 0, sizeof(*d));
}
