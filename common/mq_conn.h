/* mq_conn.h — the AMQP connection the publisher and the consumer are built on (common/ only). */
#ifndef BAKERY_MQ_CONN_H
#define BAKERY_MQ_CONN_H

#include <amqp.h>
#include <amqp_framing.h>
#include <stdbool.h>
#include <sys/time.h>

#include "backoff.h"
#include "mq.h"

#define MQ_CONN_CHANNEL 1
#define MQ_CONN_NAME    256

struct mq_conn;

/* A role's last steps of opening a connection (confirm.select, basic.consume), each with
 * mq_conn_step before it; returns 0 or -EAGAIN (the connection is dropped then). */
typedef int mq_conn_setup_fn(struct mq_conn *c, long long deadline_ms);

/* Called by mq_conn_drop after the connection is gone (publishes waiting on it learn so). */
typedef void mq_conn_drop_fn(struct mq_conn *c);

/* One connection with one channel to the first broker of the list that answers; the first
 * member of mq_publisher and mq_consumer, whose thread rules it follows. */
struct mq_conn {
	struct mq_config cfg;
	char dlx[MQ_CONN_NAME];
	char dead[MQ_CONN_NAME];
	amqp_connection_state_t conn; /* NULL while not connected */
	size_t host;                  /* cfg.hosts index connected, or tried next */
	unsigned generation;          /* counts the connections opened */
	struct backoff backoff;
	bool down_logged; /* "rabbitmq unavailable" was logged: "connected" comes next */
	mq_conn_setup_fn *setup;
	mq_conn_drop_fn *on_drop; /* NULL: nothing */
};

/* Readies c for cfg (copied) and the role's setup; nothing connects yet. */
void mq_conn_init(struct mq_conn *c, const struct mq_config *cfg, mq_conn_setup_fn *setup,
                  mq_conn_drop_fn *on_drop);

/* Ensures an open connection, spending at most about timeout_ms on opening one: each attempt
 * goes to the next address of the list, and after a failure none is made before a backoff
 * (ended early by any connection of the process succeeding). Returns 0, -EAGAIN, or -EEXIST
 * (the queue exists with other arguments: not connected). */
int mq_conn_ensure(struct mq_conn *c, long long timeout_ms);

/* Gives the next step of opening the connection what is left until deadline_ms, 2 s at most,
 * as its handshake and RPC timeout; returns it. */
struct timeval mq_conn_step(struct mq_conn *c, long long deadline_ms);

/* Checks the last RPC of step; returns 0 or -EAGAIN (logged once as unavailable). */
int mq_conn_rpc_ok(struct mq_conn *c, const char *step);

/* Forgets the connection without a closing handshake, then calls on_drop. */
void mq_conn_drop(struct mq_conn *c);

/* Drops the connection after a failure (why, logged once); returns -EAGAIN. */
int mq_conn_lost(struct mq_conn *c, const char *why);

/* Closes the connection politely (500 ms at most), then drops it. */
void mq_conn_close(struct mq_conn *c);

/* Reads one frame that is not a delivery, waiting up to *tv: a close drops the connection;
 * other methods go to method (may be NULL), which returns < 0 when it dropped it. Returns 1
 * when a frame was handled, 0 when none came, or -EAGAIN (connection lost). */
int mq_conn_frame(struct mq_conn *c, struct timeval *tv,
                  int (*method)(struct mq_conn *c, const amqp_frame_t *f));

/* Fills args (cap entries, 5 suffice) with the orders queue's declare arguments for cfg and
 * the dead-letter exchange dlx (borrowed); returns how many. */
size_t mq_conn_queue_args(const struct mq_config *cfg, const char *dlx, amqp_table_entry_t *args,
                          size_t cap);

/* A timeval of ms milliseconds. */
struct timeval mq_conn_tv(long long ms);

#endif
