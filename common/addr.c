/* addr.c — parses the "host:port" addresses and address lists the settings hold. */
#include "addr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Parses the n bytes at s as one address. */
static int parse(const char *s, size_t n, struct addr *out)
{
	const char *colon, *hstart = s, *end = s + n;
	char digits[8], *stop;
	size_t hlen, plen;
	long p;

	if (n == 0)
		return -EINVAL;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close || close + 1 == end || close[1] != ':')
			return -EINVAL;
		hstart = s + 1;
		hlen = (size_t)(close - hstart);
		colon = close + 1;
	} else {
		colon = memchr(s, ':', n);
		if (!colon || memchr(colon + 1, ':', (size_t)(end - colon - 1)))
			return -EINVAL;
		hlen = (size_t)(colon - s);
	}
	plen = (size_t)(end - colon - 1);
	if (hlen == 0 || hlen >= sizeof(out->host) || memchr(hstart, ' ', hlen) || plen == 0 ||
	    plen >= sizeof(digits))
		return -EINVAL;
	memcpy(digits, colon + 1, plen);
	digits[plen] = '\0';
	errno = 0;
	p = strtol(digits, &stop, 10);
	if (errno || *stop || digits[0] == '+' || digits[0] == '-' || p < 1 || p > 65535)
		return -EINVAL;
	memcpy(out->host, hstart, hlen);
	out->host[hlen] = '\0';
	out->port = (int)p;
	return 0;
}

int addr_parse(const char *s, struct addr *out)
{
	struct addr a;

	if (!s || parse(s, strlen(s), &a) < 0)
		return -EINVAL;
	*out = a;
	return 0;
}

int addr_list_parse(const char *s, struct addr *out, size_t cap)
{
	size_t n = 0;

	if (!s)
		return -EINVAL;
	for (;;) {
		const char *comma = strchr(s, ','), *end = comma ? comma : s + strlen(s);

		while (s < end && *s == ' ')
			s++;
		while (end > s && end[-1] == ' ')
			end--;
		if (n == cap || parse(s, (size_t)(end - s), &out[n]) < 0)
			return -EINVAL;
		n++;
		if (!comma)
			return (int)n;
		s = comma + 1;
	}
}
