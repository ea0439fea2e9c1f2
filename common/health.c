/* health.c — the /healthz, /readyz and /metrics endpoint on civetweb for the baker. */
#include "health.h"

#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"
#include "metrics.h"

struct health {
	struct mg_context *ctx;
	health_ready_fn ready;
	void *arg;
};

static int send_json(struct mg_connection *c, int status, const char *json)
{
	http_send(c, status, "application/json", json, strlen(json), NULL);
	return status;
}

static int handle(struct mg_connection *c, void *cbdata)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
	struct health *h = cbdata;
	const char *path = ri->local_uri;
	char *text;
	size_t len;

	if (strcmp(path, "/healthz") != 0 && strcmp(path, "/readyz") != 0 &&
	    strcmp(path, "/metrics") != 0) {
		http_send_error(c, 404, "no such route", NULL);
		return 404;
	}
	if (strcmp(ri->request_method, "GET") != 0) {
		http_send_error(c, 405, "method not allowed", "Allow: GET\r\n");
		return 405;
	}
	if (strcmp(path, "/healthz") == 0)
		return send_json(c, 200, "{\"status\":\"ok\"}");
	if (strcmp(path, "/readyz") == 0) {
		if (h->ready(h->arg))
			return send_json(c, 200, "{\"status\":\"ready\"}");
		http_send_error(c, 503, "redis or rabbitmq unavailable", "Retry-After: 1\r\n");
		return 503;
	}
	text = metrics_render(&len);
	if (!text) {
		http_send_error(c, 500, "out of memory", NULL);
		return 500;
	}
	http_send(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL);
	free(text);
	return 200;
}

struct health *health_start(int port, health_ready_fn ready, void *arg)
{
	struct health *h = calloc(1, sizeof(*h));
	char portstr[16];

	if (!h)
		return NULL;
	h->ready = ready;
	h->arg = arg;
	snprintf(portstr, sizeof(portstr), "%d", port);
	const char *options[] = {"listening_ports",    portstr, "num_threads", "2",
	                         "request_timeout_ms", "5000",  NULL};
	struct mg_callbacks callbacks = {.http_error = http_error_callback};
	h->ctx = mg_start(&callbacks, NULL, options);
	if (!h->ctx) {
		log_error("cannot listen", "port", portstr);
		free(h);
		return NULL;
	}
	mg_set_request_handler(h->ctx, "/", handle, h);
	return h;
}

void health_stop(struct health *h)
{
	if (!h)
		return;
	mg_stop(h->ctx);
	free(h);
}
