/* mq_consumer.c — basic.consume with manual acks on one connection, copied deliveries. */
#include "mq_consumer.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mq_conn.h"

#define OPEN_MS 10000 /* opening a connection, all steps together */

struct mq_consumer {
	struct mq_conn c; /* first: the base's callbacks get it */
	int prefetch;
	char tag[MQ_CONN_NAME]; /* the broker's tag of our basic.consume (for basic.cancel) */
};

/* The base's setup: basic.qos, then basic.consume with manual acks. */
static int setup(struct mq_conn *c, long long deadline)
{
	struct mq_consumer *k = (struct mq_consumer *)c;
	amqp_basic_consume_ok_t *ok;

	mq_conn_step(c, deadline);
	amqp_basic_qos(c->conn, MQ_CONN_CHANNEL, 0, (uint16_t)k->prefetch, 0);
	if (mq_conn_rpc_ok(c, "basic.qos") < 0)
		return -EAGAIN;
	mq_conn_step(c, deadline);
	ok = amqp_basic_consume(c->conn, MQ_CONN_CHANNEL, amqp_cstring_bytes(c->cfg.queue),
	                        amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
	if (mq_conn_rpc_ok(c, "basic.consume") < 0 || !ok)
		return -EAGAIN;
	snprintf(k->tag, sizeof(k->tag), "%.*s", (int)ok->consumer_tag.len,
	         (char *)ok->consumer_tag.bytes);
	return 0;
}

struct mq_consumer *mq_consumer_new(const struct mq_config *cfg, int prefetch)
{
	struct mq_consumer *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	mq_conn_init(&k->c, cfg, setup, NULL);
	k->prefetch = prefetch;
	return k;
}

void mq_consumer_free(struct mq_consumer *k)
{
	if (!k)
		return;
	mq_conn_close(&k->c);
	free(k);
}

bool mq_consumer_connected(const struct mq_consumer *k)
{
	return k->c.conn != NULL;
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

int mq_consumer_next(struct mq_consumer *k, struct mq_delivery *d, int timeout_ms, int wake_fd)
{
	struct mq_conn *c = &k->c;
	struct timeval tv = mq_conn_tv(timeout_ms);
	amqp_envelope_t env;
	amqp_rpc_reply_t r;
	int rc;

	if ((rc = mq_conn_ensure(c, OPEN_MS)) < 0)
		return rc;
	amqp_maybe_release_buffers(c->conn);
	if (wake_fd >= 0 && !amqp_frames_enqueued(c->conn) && !amqp_data_in_buffer(c->conn)) {
		/* Sleep on the socket and the wake fd; then let the library read without waiting
		 * (it also sends heartbeats when due). */
		struct pollfd p[2] = {{amqp_get_sockfd(c->conn), POLLIN, 0}, {wake_fd, POLLIN, 0}};
		if (poll(p, 2, timeout_ms) < 0 && errno != EINTR)
			return mq_conn_lost(c, strerror(errno));
		tv = mq_conn_tv(0);
	}
	r = amqp_consume_message(c->conn, &env, &tv, 0);
	if (r.reply_type == AMQP_RESPONSE_NORMAL) {
		rc = copy_envelope(&env, d, c->generation);
		amqp_destroy_envelope(&env);
		if (rc < 0) {
			/* Out of memory: the broker redelivers it on the next connection. */
			mq_delivery_clear(d);
			return mq_conn_lost(c, "out of memory copying a delivery");
		}
		return 1;
	}
	if (r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION)
		return mq_conn_lost(c, "unexpected reply while consuming");
	if (r.library_error == AMQP_STATUS_TIMEOUT)
		return 0;
	if (r.library_error != AMQP_STATUS_UNEXPECTED_STATE)
		return mq_conn_lost(c, amqp_error_string2(r.library_error));
	/* A frame other than a delivery is waiting: read and handle it. */
	rc = mq_conn_frame(c, &tv, NULL);
	return rc < 0 ? rc : 0;
}

int mq_consumer_settle(struct mq_consumer *k, unsigned generation, uint64_t tag, enum mq_settle how)
{
	struct mq_conn *c = &k->c;
	int rc;

	if (!c->conn || generation != c->generation)
		return -EAGAIN;
	if (how == MQ_ACK)
		rc = amqp_basic_ack(c->conn, MQ_CONN_CHANNEL, tag, 0);
	else
		rc = amqp_basic_nack(c->conn, MQ_CONN_CHANNEL, tag, 0, how == MQ_REQUEUE);
	return rc == AMQP_STATUS_OK ? 0 : mq_conn_lost(c, amqp_error_string2(rc));
}

int mq_consumer_cancel(struct mq_consumer *k)
{
	struct mq_conn *c = &k->c;

	if (!c->conn)
		return -EAGAIN;
	amqp_basic_cancel(c->conn, MQ_CONN_CHANNEL, amqp_cstring_bytes(k->tag));
	if (mq_conn_rpc_ok(c, "basic.cancel") < 0) {
		mq_conn_drop(c);
		return -EAGAIN;
	}
	return 0;
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
