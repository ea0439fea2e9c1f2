/* http.h — complete HTTP responses over civetweb: status, JSON errors, extra headers. */
#ifndef BAKERY_HTTP_H
#define BAKERY_HTTP_H

#include <civetweb.h>
#include <stddef.h>

/* Sends one whole response with Content-Type, Content-Length, Date, Connection and the optional
 * extra header lines (each "Name: value\r\n", or NULL), in one write when it fits 2 KiB.
 * "Connection: close" among the extra lines, or a request that does not keep the connection
 * alive (its Connection header, HTTP/1.0, a body of unknown length), says "Connection: close"
 * and makes civetweb close the connection after it; otherwise "Connection: keep-alive".
 * The answer to a HEAD request has no body (Content-Length still gives its length).
 * Returns 0, -EIO when the client went away, or -E2BIG when the headers exceed 2 KiB. */
int http_send(struct mg_connection *c, int status, const char *content_type, const char *body,
              size_t len, const char *extra_headers);

/* Sends {"error":"<message>"} as application/json. Returns as http_send. */
int http_send_error(struct mg_connection *c, int status, const char *message,
                    const char *extra_headers);

/* Returns {"<name>":"<value>"} malloc'd (caller frees), or NULL when out of memory or value is
 * not UTF-8; for small JSON replies. */
char *http_json_pair(const char *name, const char *value);

/* Limits on a request head beyond civetweb's (its 16 KiB buffer, 64 fields): */
#define HTTP_FIELDS_MAX      48    /* header fields: civetweb drops any past 64 unseen */
#define HTTP_FIELD_VALUE_MAX 8192  /* one field's value: what W3C Baggage asks to carry */
#define HTTP_HEAD_MAX        12288 /* the request line and every field line */

/* Checks the framing and size of a request head civetweb has parsed, before anything reads
 * its body (RFC 9112): at most HTTP_FIELDS_MAX fields, no value over HTTP_FIELD_VALUE_MAX
 * and no head over HTTP_HEAD_MAX (431); Content-Length values that are all the same digits; no
 * Transfer-Encoding but a single "chunked" from HTTP/1.1, and never with Content-Length; one
 * Host, which HTTP/1.1 requires (400). Returns 0, or the status to answer (then the connection
 * must close) with *why set to a static reason. */
int http_head_check(const struct mg_request_info *ri, const char **why);

/* civetweb's http_error callback: sends the errors civetweb raises itself (a malformed request
 * line, an unknown method, headers too large...) as {"error":"<message>"} too, with
 * "Connection: close"; its 411 for a Content-Length that is no number is answered 400.
 * Returns 0 (handled), or 1 when out of memory (civetweb's own page). */
int http_error_callback(struct mg_connection *c, int status, const char *message);

/* Routes every request of ctx to handler (with cbdata), with no authorization step: civetweb
 * would otherwise look for a .htpasswd on disk, a stat per request. */
void http_serve(struct mg_context *ctx, mg_request_handler handler, void *cbdata);

#endif
