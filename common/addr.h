/* addr.h — "host:port" addresses and comma-separated lists of them, as the settings give them. */
#ifndef BAKERY_ADDR_H
#define BAKERY_ADDR_H

#include <stddef.h>

#define ADDR_HOST_MAX 256
#define ADDR_LIST_MAX 8 /* the most addresses one setting may list */

/* One network address; host is a NUL-terminated name, IPv4 or IPv6 literal (no brackets). */
struct addr {
	char host[ADDR_HOST_MAX];
	int port;
};

/* Parses "host:port" or "[v6]:port" (port 1..65535) into *out. Returns 0, or -EINVAL and
 * leaves *out unchanged. */
int addr_parse(const char *s, struct addr *out);

/* Parses a comma-separated list of addresses ("a:1,b:2"; spaces around items allowed) into
 * out[0..cap). Returns how many (at least one), or -EINVAL for an empty item, a bad address or
 * more than cap of them; out may be partly written then. */
int addr_list_parse(const char *s, struct addr *out, size_t cap);

#endif
