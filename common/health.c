/* health.c — the /healthz, /readyz and /metrics answers, and the baker's server for them. */
#include "health.h"

#include <civetweb.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "metrics.h"

struct health {
	struct mg_context *ctx;
	health_ready_fn ready;
	void *arg;
};

int health_answer(const char *path, bool ready, struct health_reply *r)
{
	const char *json = "{\"status\":\"ok\"}";

	if (strcmp(path, "/metrics") == 0) {
		*r = (struct health_reply){200, "text/plain; version=0.0.4; charset=utf-8", NULL,
		                           NULL, 0};
		r->body = metrics_render(&r->len);
		return r->body ? 0 : -ENOMEM;
	}
	*r = (struct health_reply){200, "application/json", NULL, NULL, 0};
	if (strcmp(path, "/readyz") == 0 && ready) {
		json = "{\"status\":\"ready\"}";
	} else if (strcmp(path, "/readyz") == 0) {
		*r = (struct health_reply){503, "application/json", "Retry-After: 1\r\n", NULL, 0};
		json = "{\"error\":\"redis or rabbitmq unavailable\"}";
	} else if (strcmp(path, "/healthz") != 0) {
		return -ENOENT;
	}
	r->body = strdup(json);
	r->len = strlen(json);
	return r->body ? 0 : -ENOMEM;
}

static int handle(struct mg_connection *c, void *cbdata)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
	struct health *h = cbdata;
	struct health_reply r;
	int rc = health_answer(ri->local_uri, h->ready(h->arg), &r);

	if (rc < 0) {
		r.status = rc == -ENOENT ? 404 : 500;
		http_send_error(c, r.status, rc == -ENOENT ? "no such route" : "out of memory",
		                NULL);
		return r.status;
	}
	if (strcmp(ri->request_method, "GET") != 0)
		http_send_error(c, r.status = 405, "method not allowed", "Allow: GET\r\n");
	else
		http_send(c, r.status, r.content_type, r.body, r.len, r.headers);
	free(r.body);
	return r.status;
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
		free(h);
		return NULL;
	}
	http_serve(h->ctx, handle, h);
	return h;
}

void health_stop(struct health *h)
{
	if (!h)
		return;
	mg_stop(h->ctx);
	free(h);
}
