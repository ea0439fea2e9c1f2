/* http.c — writes whole HTTP responses (headers and body) through civetweb. */
#include "http.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *http_json_pair(const char *name, const char *value)
{
	json_t *obj = json_pack("{s:s}", name, value);
	char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

	json_decref(obj);
	return s;
}

const char *http_reason(int status)
{
	return mg_get_response_code_text(NULL, status);
}

int http_send(struct mg_connection *c, int status, const char *content_type, const char *body,
              size_t len, const char *extra_headers)
{
	char head[1024];
	int n = snprintf(head, sizeof(head),
	                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	                 "Cache-Control: no-store\r\n%s\r\n",
	                 status, http_reason(status), content_type, len,
	                 extra_headers ? extra_headers : "");

	if (n < 0 || (size_t)n >= sizeof(head))
		return -1;
	if (mg_write(c, head, (size_t)n) != n)
		return -1;
	if (len && mg_write(c, body, len) != (int)len)
		return -1;
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

int http_error_callback(struct mg_connection *c, int status, const char *message)
{
	/* civetweb's message may quote the client's bytes: when it is not valid UTF-8, the
	 * reason phrase says enough. */
	char *body = http_json_pair("error", message && *message ? message : http_reason(status));

	if (!body && !(body = http_json_pair("error", http_reason(status))))
		return 1;
	http_send(c, status, "application/json", body, strlen(body), "Connection: close\r\n");
	free(body);
	return 0;
}
