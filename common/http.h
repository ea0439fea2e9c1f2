/* http.h — complete HTTP responses over civetweb: status, JSON errors, extra headers. */
#ifndef BAKERY_HTTP_H
#define BAKERY_HTTP_H

#include <civetweb.h>
#include <stddef.h>

/* Sends one whole response with Content-Type, Content-Length and the optional extra header
 * lines (each "Name: value\r\n", or NULL). Returns 0 or -1 when the client went away. */
int http_send(struct mg_connection *c, int status, const char *content_type, const char *body,
              size_t len, const char *extra_headers);

/* Sends {"error":"<message>"} as application/json. Returns 0 or -1. */
int http_send_error(struct mg_connection *c, int status, const char *message,
                    const char *extra_headers);

/* The standard reason phrase of status ("Not Found"), or "Unknown". */
const char *http_reason(int status);

#endif
