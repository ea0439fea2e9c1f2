/* guard.h — deadlines for slow and idle HTTP clients, enforced on civetweb's connections. */
#ifndef BAKERY_GUARD_H
#define BAKERY_GUARD_H

#include <civetweb.h>
#include <stdbool.h>

/* civetweb holds a thread for each open connection, whatever it waits for. The guard tracks
 * what each connection waits for and ends the wait when its deadline passes: a request head
 * (from when a thread took the connection up) within header_ms, a body (from its head) within
 * body_ms, and the next request's head on a keep-alive connection within keepalive_ms of the
 * previous response. While fewer than an eighth of the threads are free, a connection that has
 * waited a second or more for its head, its body or its next request is ended too.
 * A wait is ended by a signal to its thread that interrupts civetweb's poll (civetweb 1.15
 * offers nothing else to end a connection from another thread): the read fails and civetweb
 * closes the connection, after a 408 when part of a head came (guard_expired). */
struct guard_limits {
	int header_ms;
	int body_ms;
	int keepalive_ms;
	int threads; /* civetweb's num_threads */
};

/* Installs the signal handler and starts the watchdog thread. Returns 0, -EINVAL (limits),
 * -ENOMEM or -errno of pthread_create. */
int guard_start(const struct guard_limits *limits);

/* Stops the watchdog; after mg_stop. Safe when guard_start failed or never ran. */
void guard_stop(void);

/* civetweb's init_connection callback, on the connection's thread: its head is now due.
 * Sets *data to the connection's slot (NULL when none is free). Returns 0. */
int guard_open(const struct mg_connection *c, void **data);

/* civetweb's connection_close callback: forgets the connection, before its socket closes. */
void guard_close(const struct mg_connection *c);

/* The head of c's request arrived (begin_request): its body is now due. */
void guard_head_done(const struct mg_connection *c);

/* c's body was read, or will not be: no deadline until the response is sent. */
void guard_busy(const struct mg_connection *c);

/* civetweb's end_request callback: the next request's head is due within keepalive_ms. */
void guard_request_done(const struct mg_connection *c, int status);

/* Whether the guard ended c's current wait (its deadline passed, or threads ran short). */
bool guard_expired(const struct mg_connection *c);

/* The connections civetweb's threads hold now. Thread-safe. */
int guard_connections(void);

#endif
