/* http.c — writes whole HTTP responses (headers and body) through civetweb, in one write. */
#include "http.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CONNECTION_CLOSE "Connection: close\r\n"

char *http_json_pair(const char *name, const char *value)
{
	json_t *obj = json_pack("{s:s}", name, value);
	char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

	json_decref(obj);
	return s;
}

/* Whether the comma-separated header value list holds token (case-insensitive). */
static bool has_token(const char *list, const char *token)
{
	size_t n = strlen(token), len;

	while (*list) {
		list += strspn(list, " \t,");
		len = strcspn(list, ",");
		while (len && (list[len - 1] == ' ' || list[len - 1] == '\t'))
			len--;
		if (len == n && strncasecmp(list, token, n) == 0)
			return true;
		list += strcspn(list, ",");
	}
	return false;
}

/* Whether civetweb 1.15 keeps the connection open after this response (keep-alive is enabled):
 * the client's Connection header says keep-alive, or there is none and the request is
 * HTTP/1.1; and the request's body has a known length: no chunked upload, and no
 * Content-Length only where no body is expected (GET, HEAD). Wherever this says close,
 * http_send makes civetweb close, so the Connection header sent is always what happens. */
static bool keeps_alive(const struct mg_connection *c)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
	const char *connection = mg_get_header(c, "Connection");

	if (!ri || mg_get_header(c, "Transfer-Encoding") ||
	    (ri->content_length < 0 && strcmp(ri->request_method, "GET") != 0 &&
	     strcmp(ri->request_method, "HEAD") != 0))
		return false;
	if (connection)
		return has_token(connection, "keep-alive");
	return ri->http_version && strcmp(ri->http_version, "1.1") == 0;
}

int http_send(struct mg_connection *c, int status, const char *content_type, const char *body,
              size_t len, const char *extra_headers)
{
	/* Headers and a body that fit go out in one write: each write costs a segment, and a
	 * second small one would wait for the client's delayed ACK were TCP_NODELAY off. */
	char buf[2048], date[32];
	const struct mg_request_info *ri = mg_get_request_info(c);
	bool said = extra_headers && strstr(extra_headers, CONNECTION_CLOSE);
	bool keep = !said && keeps_alive(c);
	/* HEAD: the headers describe the body (its Content-Length), which is not sent. */
	size_t body_len =
	    ri && ri->request_method && strcmp(ri->request_method, "HEAD") == 0 ? 0 : len;
	time_t now = time(NULL);
	struct tm tm;
	int n;

	if (!keep)
		mg_disable_connection_keep_alive(c); /* civetweb closes after this response */
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&now, &tm));
	n = snprintf(buf, sizeof(buf),
	             "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	             "Cache-Control: no-store\r\nDate: %s\r\n%s%s\r\n",
	             status, mg_get_response_code_text(NULL, status), content_type, len, date,
	             extra_headers ? extra_headers : "",
	             keep   ? "Connection: keep-alive\r\n"
	             : said ? ""
	                    : CONNECTION_CLOSE);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -E2BIG;
	if (body_len <= sizeof(buf) - (size_t)n) {
		if (body_len)
			memcpy(buf + n, body, body_len);
		return mg_write(c, buf, (size_t)n + body_len) == n + (int)body_len ? 0 : -EIO;
	}
	if (mg_write(c, buf, (size_t)n) != n || mg_write(c, body, body_len) != (int)body_len)
		return -EIO;
	return 0;
}

int http_send_error(struct mg_connection *c, int status, const char *message,
                    const char *extra_headers)
{
	char *body = http_json_pair("error", message);
	int rc;

	if (!body)
		return http_send(c, 500, "application/json", "{\"error\":\"out of memory\"}", 25,
		                 NULL);
	rc = http_send(c, status, "application/json", body, strlen(body), extra_headers);
	free(body);
	return rc;
}

/* Parses a Content-Length value: a comma-separated list of 1*DIGIT (with optional blanks
 * around each), all the same (RFC 9112 6.3). Returns the length, or -1 when invalid. */
static long long content_length(const char *v)
{
	long long len = -1, n;
	size_t digits;

	for (;;) {
		v += strspn(v, " \t");
		digits = strspn(v, "0123456789");
		if (digits == 0 || digits > 18)
			return -1;
		for (n = 0; digits--; v++)
			n = n * 10 + (*v - '0');
		if (len >= 0 && n != len)
			return -1;
		len = n;
		v += strspn(v, " \t");
		if (*v == '\0')
			return len;
		if (*v++ != ',')
			return -1;
	}
}

int http_head_check(const struct mg_request_info *ri, const char **why)
{
	const char *name, *value;
	long long len = -1, n;
	size_t line, head;
	int hosts = 0, encodings = 0, lengths = 0;
	bool chunked = false, conflict = false;

	head = strlen(ri->request_method) + strlen(ri->request_uri) + 12;
	if (ri->query_string) /* civetweb has cut the URI at its '?' */
		head += strlen(ri->query_string) + 1;
	if (ri->num_headers > HTTP_FIELDS_MAX) {
		*why = "too many header fields";
		return 431;
	}
	for (int i = 0; i < ri->num_headers; i++) {
		name = ri->http_headers[i].name;
		value = ri->http_headers[i].value;
		line = strlen(value);
		if (line > HTTP_FIELD_VALUE_MAX) {
			*why = "header field too large";
			return 431;
		}
		head += strlen(name) + line + 4;
		if (strcasecmp(name, "Host") == 0) {
			hosts++;
		} else if (strcasecmp(name, "Transfer-Encoding") == 0) {
			encodings++;
			chunked = strcasecmp(value, "chunked") == 0;
		} else if (strcasecmp(name, "Content-Length") == 0) {
			n = content_length(value);
			conflict |= n < 0 || (lengths && n != len);
			len = n;
			lengths++;
		}
	}
	*why = head > HTTP_HEAD_MAX    ? "request head too large"
	       : conflict              ? "invalid or conflicting Content-Length"
	       : encodings && lengths  ? "Content-Length with Transfer-Encoding"
	       : encodings > 1         ? "unsupported Transfer-Encoding"
	       : encodings && !chunked ? "unsupported Transfer-Encoding"
	       : encodings && strcmp(ri->http_version, "1.1") != 0
	           ? "Transfer-Encoding in an HTTP/1.0 request"
	       : hosts > 1                                          ? "more than one Host"
	       : hosts == 0 && strcmp(ri->http_version, "1.1") == 0 ? "missing Host"
	                                                            : NULL;
	return !*why ? 0 : head > HTTP_HEAD_MAX ? 431 : 400;
}

int http_error_callback(struct mg_connection *c, int status, const char *message)
{
	if (status == 411) { /* civetweb: a Content-Length that is no number */
		status = 400;
		message = "invalid Content-Length";
	}
	/* civetweb's message may quote the client's bytes: when it is not valid UTF-8, the
	 * reason phrase says enough. */
	char *body = http_json_pair(
	    "error", message && *message ? message : mg_get_response_code_text(NULL, status));

	if (!body && !(body = http_json_pair("error", mg_get_response_code_text(NULL, status))))
		return 1;
	http_send(c, status, "application/json", body, strlen(body), CONNECTION_CLOSE);
	free(body);
	return 0;
}

/* civetweb's authorization handler: every request is allowed. */
static int allow_all(struct mg_connection *c, void *cbdata)
{
	(void)c;
	(void)cbdata;
	return 1;
}

void http_serve(struct mg_context *ctx, mg_request_handler handler, void *cbdata)
{
	mg_set_auth_handler(ctx, "/", allow_all, NULL);
	mg_set_request_handler(ctx, "/", handler, cbdata);
}
