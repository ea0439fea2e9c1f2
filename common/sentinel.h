/* sentinel.h — the Redis primary as Redis Sentinel names it, shared by a process's stores. */
#ifndef BAKERY_SENTINEL_H
#define BAKERY_SENTINEL_H

#include "addr.h"

#define SENTINEL_NAME_MAX     128 /* a master name, with its NUL */
#define SENTINEL_PASSWORD_MAX 128 /* a password, with its NUL */

/* One process-wide view of the primary of one master name: the address last given by a
 * Sentinel (SENTINEL get-master-addr-by-name, asked of each Sentinel in turn) and a generation
 * that changes whenever that address may be wrong. A watcher thread, subscribed to
 * +switch-master on one Sentinel at a time, moves the address on a failover. A store connected
 * at an older generation reconnects. Thread-safe. */
struct sentinel;

/* Returns a reference to the process's view of master as the n Sentinels addrs see it
 * (password: AUTH to them, "" none), starting the watcher with the first reference. Returns
 * NULL when out of memory, the thread cannot start, or another set of Sentinels or master is
 * in use in this process. Release with sentinel_release. */
struct sentinel *sentinel_acquire(const struct addr *addrs, int n, const char *master,
                                  const char *password);

/* Drops a reference; the last one stops the watcher and frees everything. Accepts NULL. */
void sentinel_release(struct sentinel *s);

/* The current generation. */
unsigned sentinel_generation(struct sentinel *s);

/* Fills *out with the primary's address and *gen with its generation, asking the Sentinels
 * when the address is not known. Returns 0; -EACCES when a Sentinel refused the password
 * (why: its error text); -EAGAIN when none answered with an address. why (cap bytes) gets a
 * reason on failure. */
int sentinel_primary(struct sentinel *s, struct addr *out, unsigned *gen, char *why, size_t cap);

/* Says the address of generation gen is wrong (unreachable, not a master, READONLY): the next
 * sentinel_primary asks the Sentinels again, starting with the next one. */
void sentinel_forget(struct sentinel *s, unsigned gen);

#endif
