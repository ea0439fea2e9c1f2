/* mq.c — one librabbitmq connection and channel: declare, publish with confirm, consume. */
#include "mq.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "log.h"

#define CHANNEL      1
#define IO_TIMEOUT_S 2
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000
#define NAME_MAX_    256
#define SERVICE_MS   1000  /* an idle publisher's connection is read at least this often */
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
	pthread_mutex_t lock;         /* a publisher's callers and its reader thread */
	amqp_connection_state_t conn;
	uint64_t next_seq; /* publisher confirm sequence of the next publish */
	unsigned generation;
	struct backoff backoff;
	int down_logged; /* "rabbitmq unavailable" was logged: "connected" comes next */
	/* A publisher only: publishes waiting for their confirm (newest first), the thread that
	 * reads the connection, and the eventfd that wakes it (a new connection, mq_free). */
	struct mq_ticket *pending;
	struct mq_ticket *confirmed; /* confirmed, for the reader to pass to on_confirm */
	mq_confirm_fn *on_confirm;
	void *on_confirm_arg;
	pthread_t reader;
	int wake_fd;
	bool stopping;
};

/* When any mq of the process last connected: a broker back up ends every backoff. */
static _Atomic long long last_connected_ms;

static int drain(struct mq *m);

static struct timeval ms_tv(long long ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};

	return tv;
}

/* Passes the confirmed publishes to the on_confirm hook, a batch at a time, outside the lock
 * (held on entry and return: publishers go on meanwhile), then lets their callers return. */
static void run_on_confirm(struct mq *m)
{
	enum { BATCH = 64 };
	const char *ids[BATCH];
	struct mq_ticket *batch[BATCH], *q = m->confirmed;
	int rcs[BATCH];
	size_t n;

	m->confirmed = NULL;
	pthread_mutex_unlock(&m->lock);
	while (q) {
		for (n = 0; q && n < BATCH; q = q->next, n++) {
			batch[n] = q;
			ids[n] = q->message_id;
			rcs[n] = 0;
		}
		m->on_confirm(m->on_confirm_arg, ids, rcs, n);
		for (size_t i = 0; i < n; i++) {
			batch[i]->after = rcs[i];
			sem_post(&batch[i]->done); /* batch[i] may be gone from here on */
		}
	}
	pthread_mutex_lock(&m->lock);
}

/* A publisher's reader: waits on the socket (or SERVICE_MS at most), then, under the lock,
 * reads every frame that came: confirms settle their publishes, heartbeats are answered when
 * due, a broker gone silent (two heartbeat intervals) or a close drops the connection. */
static void *reader_main(void *arg)
{
	struct mq *m = arg;
	eventfd_t n;

	pthread_mutex_lock(&m->lock);
	while (!m->stopping) {
		struct pollfd p[2] = {{m->conn ? amqp_get_sockfd(m->conn) : -1, POLLIN, 0},
		                      {m->wake_fd, POLLIN, 0}};
		bool buffered =
		    m->conn && (amqp_frames_enqueued(m->conn) || amqp_data_in_buffer(m->conn));

		pthread_mutex_unlock(&m->lock);
		if (!buffered && poll(p, 2, SERVICE_MS) > 0 && (p[1].revents & POLLIN))
			eventfd_read(m->wake_fd, &n);
		pthread_mutex_lock(&m->lock);
		if (m->conn)
			drain(m);
		if (m->confirmed)
			run_on_confirm(m);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
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
	m->wake_fd = -1;
	pthread_mutex_init(&m->lock, NULL);
	if (prefetch > 0)
		return m;
	m->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (m->wake_fd < 0 || pthread_create(&m->reader, NULL, reader_main, m) != 0) {
		m->prefetch = 1; /* no reader to stop */
		mq_free(m);
		return NULL;
	}
	pthread_setname_np(m->reader, "mq-confirms");
	return m;
}

/* Settles the pending publishes that tag (and, when multiple, every earlier one) confirms,
 * with rc; a confirmed publish that was returned is -EPROTO. A confirmed one goes to the
 * reader's on_confirm hook first, when there is one. */
static void settle(struct mq *m, uint64_t tag, bool multiple, int rc)
{
	for (struct mq_ticket **p = &m->pending; *p;) {
		struct mq_ticket *q = *p;

		if (q->seq == tag || (multiple && q->seq < tag)) {
			q->rc = rc == 0 && q->returned ? -EPROTO : rc;
			*p = q->next;
			if (q->rc == 0 && m->on_confirm) {
				q->next = m->confirmed;
				m->confirmed = q;
				/* mq_ping drained it: the reader has a hook to run */
				if (!pthread_equal(pthread_self(), m->reader))
					eventfd_write(m->wake_fd, 1);
			} else {
				sem_post(&q->done); /* its thread needs no lock to go on */
			}
		} else {
			p = &q->next;
		}
	}
}

/* Forgets the connection without a closing handshake (it is broken or refused); the
 * publishes waiting on it learn it was lost. */
static void drop(struct mq *m)
{
	if (m->conn) {
		amqp_destroy_connection(m->conn);
		m->conn = NULL;
	}
	settle(m, UINT64_MAX, true, -EAGAIN); /* every tag is below it */
}

void mq_free(struct mq *m)
{
	if (!m)
		return;
	if (m->prefetch <= 0) {
		pthread_mutex_lock(&m->lock);
		m->stopping = true;
		pthread_mutex_unlock(&m->lock);
		eventfd_write(m->wake_fd, 1);
		pthread_join(m->reader, NULL);
		pthread_mutex_lock(&m->lock);
		if (m->confirmed) /* confirmed as the reader stopped: no one else runs the hook */
			run_on_confirm(m);
		pthread_mutex_unlock(&m->lock);
	}
	if (m->conn) { /* closing the connection closes its channel */
		struct timeval tv = ms_tv(CLOSE_MS);
		amqp_set_rpc_timeout(m->conn, &tv);
		amqp_connection_close(m->conn, AMQP_REPLY_SUCCESS);
	}
	drop(m);
	if (m->wake_fd >= 0)
		close(m->wake_fd);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void mq_on_confirm(struct mq *m, mq_confirm_fn *fn, void *arg)
{
	pthread_mutex_lock(&m->lock);
	m->on_confirm = fn;
	m->on_confirm_arg = arg;
	pthread_mutex_unlock(&m->lock);
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
		if (m->prefetch <= 0)
			eventfd_write(m->wake_fd, 1); /* the reader waits on the new socket now */
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

/* Handles a method frame that is not a delivery: a confirm settles its publishes, a returned
 * message marks its publish, a broker close ends the connection (returns -EAGAIN). */
static int other_method(struct mq *m, const amqp_frame_t *f)
{
	amqp_basic_ack_t *ack = f->payload.method.decoded;
	amqp_basic_nack_t *nack = f->payload.method.decoded;
	amqp_message_t msg;
	amqp_bytes_t id;

	switch (f->payload.method.id) {
	case AMQP_BASIC_ACK_METHOD:
		settle(m, ack->delivery_tag, ack->multiple, 0);
		return 0;
	case AMQP_BASIC_NACK_METHOD:
		settle(m, nack->delivery_tag, nack->multiple, -EPROTO);
		return 0;
	case AMQP_CHANNEL_CLOSE_METHOD:
	case AMQP_CONNECTION_CLOSE_METHOD:
		return lost(m, "closed by the broker");
	case AMQP_BASIC_RETURN_METHOD: /* then the confirm of the same publish */
		if (amqp_read_message(m->conn, f->channel, &msg, 0).reply_type !=
		    AMQP_RESPONSE_NORMAL)
			return lost(m, "reading a returned message");
		id = msg.properties.message_id;
		for (struct mq_ticket *q = m->pending; q; q = q->next) {
			if ((msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) &&
			    strlen(q->message_id) == id.len &&
			    memcmp(q->message_id, id.bytes, id.len) == 0)
				q->returned = true;
		}
		amqp_destroy_message(&msg);
		return 0;
	default:
		return 0;
	}
}

/* Reads and handles one frame that is not a delivery (a confirm, a heartbeat, a close...),
 * waiting up to *tv. Returns 1 when one was handled, 0 when none came, or -EAGAIN
 * (connection lost). */
static int next_frame(struct mq *m, struct timeval *tv)
{
	amqp_frame_t f;
	int rc = amqp_simple_wait_frame_noblock(m->conn, &f, tv);

	if (rc == AMQP_STATUS_TIMEOUT)
		return 0;
	if (rc != AMQP_STATUS_OK)
		return lost(m, amqp_error_string2(rc));
	if (f.frame_type == AMQP_FRAME_METHOD && other_method(m, &f) < 0)
		return -EAGAIN;
	return 1;
}

/* Handles the frames one read of the socket brings (confirms, heartbeats, a close), then frees
 * what they decoded (librabbitmq pools it per connection until told: else it grows forever). */
static int drain(struct mq *m)
{
	struct timeval zero = {0, 0};
	int rc;

	while ((rc = next_frame(m, &zero)) > 0 &&
	       (amqp_frames_enqueued(m->conn) || amqp_data_in_buffer(m->conn)))
		;
	if (m->conn)
		amqp_maybe_release_buffers(m->conn);
	return rc;
}

void mq_ticket_init(struct mq_ticket *t, long long deadline_ms)
{
	*t = (struct mq_ticket){.rc = 1, .deadline_ms = deadline_ms};
	sem_init(&t->done, 0, 0);
}

void mq_ticket_destroy(struct mq_ticket *t)
{
	if (t)
		sem_destroy(&t->done);
}

void mq_ticket_settle(struct mq_ticket *t, int rc)
{
	t->rc = rc;
	sem_post(&t->done);
}

int mq_publish_send(struct mq *m, struct mq_ticket *t, const char *message_id, const char *body,
                    size_t len, const struct mq_header *headers, size_t nheaders)
{
	amqp_table_entry_t entries[MQ_HEADERS_MAX];
	amqp_basic_properties_t p = {0};
	amqp_bytes_t bytes = {len, (void *)body};
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

	pthread_mutex_lock(&m->lock);
	/* Under the lock, as mq_publish_wait's timeout: once it is near, nothing is sent (a
	 * confirm missing at the deadline drops the connection: it must have had time to come).
	 * Connecting spends only what leaves that time; connected already, ensure returns at once.
	 */
	if (ensure(m, t->deadline_ms - backoff_now_ms() - MQ_CONFIRM_MIN_MS) < 0 ||
	    t->deadline_ms - backoff_now_ms() < MQ_CONFIRM_MIN_MS) {
		pthread_mutex_unlock(&m->lock);
		return -EAGAIN;
	}
	rc = amqp_basic_publish(m->conn, CHANNEL, amqp_empty_bytes, amqp_cstring_bytes(m->queue), 1,
	                        0, &p, bytes);
	if (rc != AMQP_STATUS_OK) {
		rc = lost(m, amqp_error_string2(rc)); /* an incomplete message is never routed */
		pthread_mutex_unlock(&m->lock);
		return rc;
	}
	t->message_id = message_id;
	t->seq = m->next_seq++;
	t->sent = true;
	t->next = m->pending;
	m->pending = t;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int mq_publish_wait(struct mq *m, struct mq_ticket *t)
{
	struct timespec until = {t->deadline_ms / 1000, (t->deadline_ms % 1000) * 1000000L};
	bool timed_out = false;
	int rc;

	while ((rc = sem_clockwait(&t->done, CLOCK_MONOTONIC, &until)) < 0 && errno == EINTR)
		;
	if (rc < 0) {
		pthread_mutex_lock(&m->lock);
		if ((timed_out = t->sent && t->rc == 1))
			drop(m); /* settles t too */
		pthread_mutex_unlock(&m->lock);
		/* Posted by now, or soon: unsent, it can no longer be sent (mq_publish_send) */
		while (sem_wait(&t->done) < 0 && errno == EINTR)
			;
	}
	return timed_out ? -ETIMEDOUT : t->rc == 0 ? t->after : t->rc;
}

int mq_publish(struct mq *m, const char *message_id, const char *body, size_t len,
               const struct mq_header *headers, size_t nheaders, int timeout_ms)
{
	struct mq_ticket t;
	int rc;

	mq_ticket_init(&t, backoff_now_ms() + timeout_ms);
	if ((rc = mq_publish_send(m, &t, message_id, body, len, headers, nheaders)) == 0)
		rc = mq_publish_wait(m, &t);
	if (rc == -EAGAIN)
		rc = mq_publish_retry(m, &t, message_id, body, len, headers, nheaders);
	mq_ticket_destroy(&t);
	return rc;
}

int mq_publish_retry(struct mq *m, const struct mq_ticket *first, const char *message_id,
                     const char *body, size_t len, const struct mq_header *headers, size_t nheaders)
{
	struct mq_ticket t;
	int rc;

	/* The same message id twice is harmless (the consumer is idempotent), a lost message is
	 * not. */
	mq_ticket_init(&t, first->deadline_ms);
	if ((rc = mq_publish_send(m, &t, message_id, body, len, headers, nheaders)) == 0)
		rc = mq_publish_wait(m, &t);
	if (rc == -EAGAIN && (first->sent || t.sent))
		rc = -ETIMEDOUT; /* it may be on the queue: only the consumer will know */
	mq_ticket_destroy(&t);
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
	rc = drain(m) < 0 ? -EAGAIN : 0; /* confirms that came during the RPC */
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
