/* mq_publisher.c — confirmed publishes on one shared connection read by its own thread. */
#include "mq_publisher.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "mq_conn.h"

#define SERVICE_MS 1000  /* an idle connection is read at least this often */
#define OPEN_MS    10000 /* opening a connection for a ping, all steps together */

struct mq_publisher {
	struct mq_conn c;            /* first: the base's callbacks get it */
	pthread_mutex_t lock;        /* every field: the callers and the reader thread */
	uint64_t next_seq;           /* publisher confirm sequence of the next publish */
	struct mq_ticket *pending;   /* waiting for their confirm, newest first */
	struct mq_ticket *confirmed; /* confirmed, for the reader to pass to on_confirm */
	mq_confirm_fn *on_confirm;
	void *on_confirm_arg;
	pthread_t reader;
	int wake_fd; /* wakes the reader: a new connection, a hook to run, stopping */
	bool stopping;
};

static int drain(struct mq_publisher *p);

/* Passes the confirmed publishes to the on_confirm hook, a batch at a time, outside the lock
 * (held on entry and return: publishers go on meanwhile), then lets their callers return. */
static void run_on_confirm(struct mq_publisher *p)
{
	enum { BATCH = 64 };
	const char *ids[BATCH];
	struct mq_ticket *batch[BATCH], *q = p->confirmed;
	int rcs[BATCH];
	size_t n;

	p->confirmed = NULL;
	pthread_mutex_unlock(&p->lock);
	while (q) {
		for (n = 0; q && n < BATCH; q = q->next, n++) {
			batch[n] = q;
			ids[n] = q->message_id;
			rcs[n] = 0;
		}
		p->on_confirm(p->on_confirm_arg, ids, rcs, n);
		for (size_t i = 0; i < n; i++) {
			batch[i]->after = rcs[i];
			sem_post(&batch[i]->done); /* batch[i] may be gone from here on */
		}
	}
	pthread_mutex_lock(&p->lock);
}

/* The reader: waits on the socket (or SERVICE_MS at most), then, under the lock, reads every
 * frame that came: confirms settle their publishes, heartbeats are answered when due, a broker
 * gone silent (two heartbeat intervals) or a close drops the connection. */
static void *reader_main(void *arg)
{
	struct mq_publisher *p = arg;
	eventfd_t n;

	pthread_mutex_lock(&p->lock);
	while (!p->stopping) {
		amqp_connection_state_t conn = p->c.conn;
		struct pollfd fds[2] = {{conn ? amqp_get_sockfd(conn) : -1, POLLIN, 0},
		                        {p->wake_fd, POLLIN, 0}};
		bool buffered = conn && (amqp_frames_enqueued(conn) || amqp_data_in_buffer(conn));

		pthread_mutex_unlock(&p->lock);
		if (!buffered && poll(fds, 2, SERVICE_MS) > 0 && (fds[1].revents & POLLIN))
			eventfd_read(p->wake_fd, &n);
		pthread_mutex_lock(&p->lock);
		if (p->c.conn)
			drain(p);
		if (p->confirmed)
			run_on_confirm(p);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Settles the pending publishes that tag (and, when multiple, every earlier one) concerns with
 * rc; a confirmed publish that was returned is -EPROTO. A confirmed one goes to the reader's
 * on_confirm hook first, when there is one. */
static void settle(struct mq_publisher *p, uint64_t tag, bool multiple, int rc)
{
	for (struct mq_ticket **at = &p->pending; *at;) {
		struct mq_ticket *q = *at;

		if (q->seq != tag && !(multiple && q->seq < tag)) {
			at = &q->next;
			continue;
		}
		q->rc = rc == 0 && q->returned ? -EPROTO : rc;
		*at = q->next;
		if (q->rc == 0 && p->on_confirm) {
			q->next = p->confirmed;
			p->confirmed = q;
			/* a ping drained it: the reader has a hook to run */
			if (!pthread_equal(pthread_self(), p->reader))
				eventfd_write(p->wake_fd, 1);
		} else {
			sem_post(&q->done); /* its thread needs no lock to go on */
		}
	}
}

/* The base's on_drop: the publishes waiting on the connection learn it was lost. */
static void on_drop(struct mq_conn *c)
{
	settle((struct mq_publisher *)c, UINT64_MAX, true, -EAGAIN); /* every tag is below it */
}

/* The base's setup: publisher confirms, and the reader waits on the new socket. */
static int setup(struct mq_conn *c, long long deadline)
{
	struct mq_publisher *p = (struct mq_publisher *)c;

	mq_conn_step(c, deadline);
	amqp_confirm_select(c->conn, MQ_CONN_CHANNEL);
	if (mq_conn_rpc_ok(c, "confirm.select") < 0)
		return -EAGAIN;
	p->next_seq = 1;
	eventfd_write(p->wake_fd, 1);
	return 0;
}

struct mq_publisher *mq_publisher_new(const struct mq_config *cfg)
{
	struct mq_publisher *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	mq_conn_init(&p->c, cfg, setup, on_drop);
	pthread_mutex_init(&p->lock, NULL);
	p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->wake_fd < 0 || pthread_create(&p->reader, NULL, reader_main, p) != 0)
		goto fail;
	pthread_setname_np(p->reader, "mq-confirms");
	return p;
fail:
	if (p->wake_fd >= 0)
		close(p->wake_fd);
	pthread_mutex_destroy(&p->lock);
	free(p);
	return NULL;
}

void mq_publisher_free(struct mq_publisher *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_mutex_unlock(&p->lock);
	eventfd_write(p->wake_fd, 1);
	pthread_join(p->reader, NULL);
	pthread_mutex_lock(&p->lock);
	if (p->confirmed) /* confirmed as the reader stopped: no one else runs the hook */
		run_on_confirm(p);
	pthread_mutex_unlock(&p->lock);
	mq_conn_close(&p->c);
	close(p->wake_fd);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

void mq_publisher_on_confirm(struct mq_publisher *p, mq_confirm_fn *fn, void *arg)
{
	pthread_mutex_lock(&p->lock);
	p->on_confirm = fn;
	p->on_confirm_arg = arg;
	pthread_mutex_unlock(&p->lock);
}

/* Handles a method frame: a confirm settles its publishes, a nack settles them as not queued
 * and drops the connection (the retry goes to a fresh one), a returned message marks its
 * publish. Returns -EAGAIN when the connection was dropped. */
static int method(struct mq_conn *c, const amqp_frame_t *f)
{
	struct mq_publisher *p = (struct mq_publisher *)c;
	amqp_basic_ack_t *ack = f->payload.method.decoded;
	amqp_basic_nack_t *nack = f->payload.method.decoded;
	amqp_message_t msg;
	amqp_bytes_t id;

	switch (f->payload.method.id) {
	case AMQP_BASIC_ACK_METHOD:
		settle(p, ack->delivery_tag, ack->multiple, 0);
		return 0;
	case AMQP_BASIC_NACK_METHOD:
		for (struct mq_ticket *q = p->pending; q; q = q->next) {
			if (q->seq == nack->delivery_tag ||
			    (nack->multiple && q->seq < nack->delivery_tag))
				q->nacked = true, q->sent = false; /* refused: not queued */
		}
		settle(p, nack->delivery_tag, nack->multiple, -EAGAIN);
		return mq_conn_lost(c, "publish nacked by the broker");
	case AMQP_BASIC_RETURN_METHOD: /* then the confirm of the same publish */
		if (amqp_read_message(c->conn, f->channel, &msg, 0).reply_type !=
		    AMQP_RESPONSE_NORMAL)
			return mq_conn_lost(c, "reading a returned message");
		id = msg.properties.message_id;
		for (struct mq_ticket *q = p->pending; q; q = q->next) {
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

/* Handles the frames one read of the socket brings (confirms, heartbeats, a close), then frees
 * what they decoded (librabbitmq pools it per connection until told: else it grows forever). */
static int drain(struct mq_publisher *p)
{
	struct timeval zero = {0, 0};
	int rc;

	while ((rc = mq_conn_frame(&p->c, &zero, method)) > 0 &&
	       (amqp_frames_enqueued(p->c.conn) || amqp_data_in_buffer(p->c.conn)))
		;
	if (p->c.conn)
		amqp_maybe_release_buffers(p->c.conn);
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

int mq_publisher_send(struct mq_publisher *p, struct mq_ticket *t, const char *message_id,
                      const char *body, size_t len, const struct mq_header *headers,
                      size_t nheaders)
{
	amqp_table_entry_t entries[MQ_HEADERS_MAX];
	amqp_basic_properties_t props = {0};
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
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
	               AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	props.message_id = amqp_cstring_bytes(message_id);
	props.headers.num_entries = (int)n;
	props.headers.entries = entries;

	pthread_mutex_lock(&p->lock);
	/* Under the lock, as mq_publisher_wait's timeout: once it is near, nothing is sent (a
	 * confirm missing at the deadline drops the connection: it must have had time to come).
	 * Connecting spends only what leaves that time; connected already, it returns at once. */
	if (mq_conn_ensure(&p->c, t->deadline_ms - clock_now_ms() - MQ_CONFIRM_MIN_MS) < 0 ||
	    t->deadline_ms - clock_now_ms() < MQ_CONFIRM_MIN_MS) {
		pthread_mutex_unlock(&p->lock);
		return -EAGAIN;
	}
	rc = amqp_basic_publish(p->c.conn, MQ_CONN_CHANNEL, amqp_empty_bytes,
	                        amqp_cstring_bytes(p->c.cfg.queue), 1, 0, &props, bytes);
	if (rc != AMQP_STATUS_OK) {
		/* an incomplete message is never routed */
		rc = mq_conn_lost(&p->c, amqp_error_string2(rc));
		pthread_mutex_unlock(&p->lock);
		return rc;
	}
	t->message_id = message_id;
	t->seq = p->next_seq++;
	t->sent = true;
	t->next = p->pending;
	p->pending = t;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int mq_publisher_wait(struct mq_publisher *p, struct mq_ticket *t)
{
	struct timespec until = clock_timespec(t->deadline_ms);
	bool timed_out = false;
	int rc;

	while ((rc = sem_clockwait(&t->done, CLOCK_MONOTONIC, &until)) < 0 && errno == EINTR)
		;
	if (rc < 0) {
		pthread_mutex_lock(&p->lock);
		if ((timed_out = t->sent && t->rc == 1))
			mq_conn_drop(&p->c); /* settles t too */
		pthread_mutex_unlock(&p->lock);
		/* Posted by now, or soon: unsent, it can no longer be sent (mq_publisher_send) */
		while (sem_wait(&t->done) < 0 && errno == EINTR)
			;
	}
	return timed_out ? -ETIMEDOUT : t->rc == 0 ? t->after : t->rc;
}

int mq_publisher_retry(struct mq_publisher *p, const struct mq_ticket *first,
                       const char *message_id, const char *body, size_t len,
                       const struct mq_header *headers, size_t nheaders)
{
	bool sent = first->sent, nacked;
	struct mq_ticket t;
	int rc;

	/* The same message id twice is harmless (the consumer is idempotent), a lost message is
	 * not. */
	do {
		mq_ticket_init(&t, first->deadline_ms);
		if ((rc = mq_publisher_send(p, &t, message_id, body, len, headers, nheaders)) == 0)
			rc = mq_publisher_wait(p, &t);
		sent = sent || t.sent;
		nacked = t.nacked;
		mq_ticket_destroy(&t);
	} while (rc == -EAGAIN && nacked);
	return rc == -EAGAIN && sent ? -ETIMEDOUT : rc;
}

int mq_publisher_ping(struct mq_publisher *p)
{
	int rc;

	pthread_mutex_lock(&p->lock);
	if ((rc = mq_conn_ensure(&p->c, OPEN_MS)) < 0 || (rc = drain(p)) < 0)
		goto out;
	amqp_queue_declare(p->c.conn, MQ_CONN_CHANNEL, amqp_cstring_bytes(p->c.cfg.queue), 1, 0, 0,
	                   0, amqp_empty_table);
	if (mq_conn_rpc_ok(&p->c, "passive declare") < 0) {
		mq_conn_drop(&p->c);
		rc = -EAGAIN;
		goto out;
	}
	rc = drain(p) < 0 ? -EAGAIN : 0; /* confirms that came during the RPC */
out:
	pthread_mutex_unlock(&p->lock);
	return rc;
}
