/* http.h — HTTP/1.1 POSTs sent from the caller's memory over a libcurl connection (internal). */
#ifndef BAKERY_OTEL_HTTP_H
#define BAKERY_OTEL_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OTLP_HTTP_HEAD_MAX 16384 /* bytes of a response head, at most */

/* What a response head says that a client acts on. */
struct otlp_http_response {
	int status;             /* 100 to 999 */
	int64_t content_length; /* -1: none given */
	bool chunked;           /* a Transfer-Encoding: the body's length is not known ahead */
	bool keep_alive;        /* the connection may carry the next request */
	long retry_after_s;     /* Retry-After as seconds from now; -1: none or unreadable */
};

/* Parses the HTTP/1.x response head at buf (len bytes, no NUL needed; lines end in CRLF or
 * LF). Returns the head's length through its empty line and fills *r when the head is
 * complete; 0 when more bytes are needed; -EPROTO when it is not a valid response head, or
 * is not complete within OTLP_HTTP_HEAD_MAX bytes. */
int otlp_http_response_parse(const char *buf, size_t len, struct otlp_http_response *r);

struct otlp_http;

/* Creates a client for POSTs to url (http:// or https://; ca_file: the CA bundle for https,
 * NULL for the system's) that sends the header lines in extra (each "Name: value\r\n"; the
 * client adds Host, User-Agent and Content-Length). It connects on its first post and keeps
 * the connection while the server does. url, ca_file and extra are copied. Returns 0 and
 * *out (free with otlp_http_free), -EINVAL when libcurl cannot parse url, or -ENOMEM. */
int otlp_http_create(struct otlp_http **out, const char *url, const char *ca_file,
                     const char *extra);

/* POSTs body (len bytes, sent from that memory, not copied) and reads the response, whose
 * head is parsed into *r and whose body is read and discarded. A connection the server closed
 * while idle is replaced and the request sent again once. Gives up after timeout_ms, and as
 * soon as the CLOCK_MONOTONIC millisecond in *cancel_ms (0: none; read atomically, may be
 * set by another thread) has passed. Returns 0 with *r; -EAGAIN when a retry may succeed
 * (network error, timeout, malformed response); -EIO when it will not (bad URL, protocol or
 * certificate); -ECANCELED; -ENOMEM. *why names the failure (a static string). */
int otlp_http_post(struct otlp_http *h, const void *body, size_t len, long timeout_ms,
                   const _Atomic uint64_t *cancel_ms, struct otlp_http_response *r,
                   const char **why);

/* Closes the connection and frees h; NULL is fine. */
void otlp_http_free(struct otlp_http *h);

#endif
