/* routes.c — reception's routes: one dispatch point, one handler per route. */
#include "routes.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "guard.h"
#include "health.h"
#include "http.h"
#include "intake.h"
#include "log.h"
#include "metrics.h"
#include "order.h"
#include "pool.h"
#include "store.h"
#include "otel/trace.h"

#define PUBLISH_TIMEOUT_MS 5000
#define RETRY_AFTER        "Retry-After: 1\r\n"
#define CONNECTION_CLOSE   "Connection: close\r\n"

/* A request as the handlers see it; everything borrowed lives only during dispatch. */
struct request {
	struct mg_connection *conn;
	const struct mg_request_info *info;
	const char *key; /* the {key} of /orders/{key} */
	char *body;      /* POST /orders: the body read before a worker was taken (read_body) */
	size_t len;
	int body_rc;                /* read_body's result */
	struct pool_worker *worker; /* NULL when none came free in time (pool_take) */
	trace_span *span;           /* the request's SERVER span; NULL when tracing is off */
};

/* A response the dispatcher sends; body is malloc'd unless body_static. */
struct response {
	int status;
	const char *content_type;
	char *body;
	size_t len;
	bool body_static;
	const char *headers; /* extra header lines or NULL */
	const char *error;   /* the error message sent, or NULL */
};

struct route {
	const char *name;   /* the path pattern, also the metrics label */
	const char *method; /* the one method it serves */
	void (*handler)(const struct request *req, struct response *res);
	bool reads_body; /* its body is read (read_body) before a worker is taken, all of it */
	bool untraced;   /* probes and scrapes: no span (they would drown the traces) */
	bool prefix;     /* name ends in "{key}": any path starting with what precedes it */
};

static const struct config *config;
static atomic_int in_flight;
static atomic_bool draining;
static struct probe *probe;
static struct metric *m_requests, *m_duration, *m_accepted, *m_published, *m_publish_failed;

static void reply_static(struct response *res, int status, const char *json)
{
	res->status = status;
	res->content_type = "application/json";
	res->body = (char *)json;
	res->len = strlen(json);
	res->body_static = true;
}

/* Sets a JSON response that takes ownership of body; a NULL body (out of memory) is a 500. */
static void reply_json(struct response *res, int status, char *body)
{
	if (!body) {
		reply_static(res, 500, "{\"error\":\"out of memory\"}");
		return;
	}
	res->status = status;
	res->content_type = "application/json";
	res->body = body;
	res->len = strlen(body);
}

/* Sets a JSON {"error":message} response with optional extra header lines. */
static void reply_error(struct response *res, int status, const char *message, const char *headers)
{
	char *body = http_json_pair("error", message);

	reply_json(res, status, body);
	if (body) {
		res->headers = headers;
		res->error = message;
	}
}

/* The 503 of an order whose message may be queued: {"error":...,"orderKey":key}. */
static void reply_unconfirmed(struct response *res, const char *key)
{
	char body[128];

	snprintf(body, sizeof(body),
	         "{\"error\":\"order queue did not confirm\",\"orderKey\":\"%s\"}", key);
	reply_json(res, 503, strdup(body));
	if (res->status == 503) {
		res->headers = RETRY_AFTER;
		res->error = "order queue did not confirm";
	}
}

static void handle_root(const struct request *req, struct response *res)
{
	(void)req;
	reply_static(res, 200, "{\"message\":\"reception is attended\"}");
}

/* /healthz, /readyz and /metrics (see health_answer); /readyz is also not ready while
 * draining for shutdown (the pod leaves the Service's endpoints). */
static void handle_health(const struct request *req, struct response *res)
{
	struct health_reply r;

	if (atomic_load(&draining) && strcmp(req->info->local_uri, "/readyz") == 0) {
		reply_error(res, 503, "shutting down", NULL);
	} else if (health_answer(req->info->local_uri, probe_ready(probe), &r) < 0) {
		reply_static(res, 500, "{\"error\":\"out of memory\"}");
	} else {
		reply_json(res, r.status, r.body);
		res->content_type = r.content_type;
		res->len = r.len;
		res->headers = r.headers;
	}
}

/* Reads the whole body into a malloc'd buffer of at most ORDER_BODY_MAX bytes: as large as
 * its Content-Length (or the limit, chunked), so that requests in flight hold no more memory
 * than their bodies need. Returns 0, -EFBIG when larger, -ETIMEDOUT when the guard ended it
 * (HTTP_BODY_TIMEOUT_MS), -EIO when the client went away, or -ENOMEM. */
static int read_body(struct mg_connection *c, long long content_length, char **out, size_t *len)
{
	size_t n = 0, cap = ORDER_BODY_MAX + 1;
	char *buf;
	int r;

	if (content_length > ORDER_BODY_MAX)
		return -EFBIG;
	if (content_length >= 0)
		cap = (size_t)content_length + 1; /* civetweb reads no further than it */
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	while ((r = mg_read(c, buf + n, cap - n)) > 0) {
		n += (size_t)r;
		if (n > ORDER_BODY_MAX) {
			free(buf);
			return -EFBIG;
		}
		if (guard_expired(c)) { /* it interrupted this read, or came between two */
			r = -1;
			break;
		}
	}
	if (r < 0) {
		free(buf);
		return guard_expired(c) ? -ETIMEDOUT : -EIO;
	}
	*out = buf;
	*len = n;
	return 0;
}

static const char *publish_strerror(int rc)
{
	return rc == -EPROTO      ? "returned"
	       : rc == -ETIMEDOUT ? "confirm timeout"
	                          : "rabbitmq unavailable";
}

static void handle_post_order(const struct request *req, struct response *res)
{
	char key[ORDER_KEY_LEN + 1], enqueued[ORDER_TIME_MAX];
	struct intake_order *placed;
	struct timespec now;
	struct order o = {0};
	const char *why;
	trace_span *span;
	char *msg;
	int rc = req->body_rc;

	if (rc == -EFBIG) {
		reply_error(res, 413, "request body is larger than 64 KiB", CONNECTION_CLOSE);
		return;
	}
	if (rc == -ETIMEDOUT) {
		reply_error(res, 408, "request body not received in time", CONNECTION_CLOSE);
		return;
	}
	if (rc < 0) {
		/* The rest of the body is unread (or garbled): the connection cannot go on. */
		reply_error(res, rc == -EIO ? 400 : 500, "could not read the request body",
		            CONNECTION_CLOSE);
		return;
	}
	rc = order_parse_request(req->body, req->len, &o, &why);
	if (rc < 0) {
		reply_error(res, 400, why, NULL);
		return;
	}
	trace_span_set_str(req->span, "bakery.customer", o.customer);
	trace_span_set_str(req->span, "bakery.pastry", o.pastry);
	if (!req->worker) {
		reply_error(res, 503, "reception busy", RETRY_AFTER);
		return;
	}
	if (order_key_new(key) < 0) {
		reply_error(res, 500, "internal error", NULL);
		return;
	}
	trace_span_set_str(req->span, "bakery.order_key", key);
	clock_gettime(CLOCK_REALTIME, &now);
	order_time_format(&now, false, o.order_time, sizeof(o.order_time));
	order_time_format(&now, true, enqueued, sizeof(enqueued));
	if (!(msg = order_message_new(key, enqueued))) {
		reply_static(res, 500, "{\"error\":\"out of memory\"}");
		return;
	}
	placed = &req->worker->order;
	placed->key = key;
	placed->order = &o;
	placed->msg = msg;
	placed->len = strlen(msg);
	placed->parent = NULL;
	/* The order keeps the context of the span creating it: GET links to it, the baker falls
	 * back to it when a message carries no trace headers, and publish-order continues it. */
	if (trace_span_context(req->span, &req->worker->order_ctx) == 0 &&
	    tracecontext_format_traceparent(&req->worker->order_ctx, o.traceparent) == 0) {
		snprintf(o.tracestate, sizeof(o.tracestate), "%s",
		         req->worker->order_ctx.tracestate);
		placed->parent = &req->worker->order_ctx;
	}
	/* create-order goes with the order: the pipeline ends it once it is stored, or not. */
	placed->create_span =
	    store_span_start(req->worker->store, "create-order", "HSET", key, NULL);
	trace_span_detach(placed->create_span);
	rc = intake_place(placed, PUBLISH_TIMEOUT_MS);
	free(msg);
	if (!placed->stored) { /* -ETIMEDOUT: its turn came too late to be published */
		reply_error(res, 503,
		            rc == -ETIMEDOUT ? "reception busy" : "order store unavailable",
		            RETRY_AFTER);
		return;
	}
	metrics_add(m_accepted, 1);
	if (rc < 0 && rc != -EALREADY) /* -EALREADY: confirmed, the order failed meanwhile */
		trace_span_set_error(placed->publish_span, publish_strerror(rc));
	trace_span_end(placed->publish_span);
	if (rc == -ETIMEDOUT) {
		/* Sent but unconfirmed: it may still be delivered and baked, so the order is not
		 * failed; it stays pending (bounded by its queue deadline) and the 503 names it. */
		metrics_add(m_publish_failed, 1);
		log_warn("publish unconfirmed, order left pending", "order_key", key);
		reply_unconfirmed(res, key);
		return;
	}
	if (rc == -EALREADY) {
		/* Confirmed, but its queue deadline had passed and a reader failed the order: it
		 * will not be baked, so no 202. */
		metrics_add(m_published, 1);
		log_warn("order failed before its publish was confirmed", "order_key", key);
		reply_error(res, 503, "order queue unavailable", RETRY_AFTER);
		return;
	}
	if (rc < 0) {
		metrics_add(m_publish_failed, 1);
		log_warn("publish failed, order marked failed", "order_key", key, "error",
		         publish_strerror(rc));
		/* No order stays pending forever: the client got no key, the order is failed. */
		span =
		    store_span_start(req->worker->store, "update-order", "EVALSHA", key, "failed");
		rc = store_order_set_status(req->worker->store, key, "failed");
		if (store_span_end(span, rc) == -EAGAIN)
			log_error("could not mark order failed", "order_key", key);
		reply_error(res, 503, "order queue unavailable", RETRY_AFTER);
		return;
	}
	metrics_add(m_published, 1);
	log_info("order accepted", "order_key", key);
	reply_json(res, 202, http_json_pair("orderKey", key));
}

/* Links the request's span to the span that created order o (its stored context), so a status
 * check leads to the order it looks at. */
static void link_order(const struct request *req, const struct order *o)
{
	struct trace_context *ctx = &req->worker->order_ctx;

	if (trace_span_is_recording(req->span) && order_trace_context(o, ctx) == 0)
		trace_span_add_link(req->span, ctx, &TRACE_STR("bakery.link", "order created"), 1);
}

static void handle_get_order(const struct request *req, struct response *res)
{
	trace_span *span;
	struct order o;
	int rc;

	if (!order_key_valid(req->key)) {
		reply_error(res, 404, "order not found", NULL);
		return;
	}
	trace_span_set_str(req->span, "bakery.order_key", req->key);
	if (!req->worker) {
		reply_error(res, 503, "reception busy", RETRY_AFTER);
		return;
	}
	span = store_span_start(req->worker->store, "read-order", "HMGET", req->key, NULL);
	rc = store_span_end(span, store_order_get(req->worker->store, req->key, &o));
	if (rc == -ENOENT || rc == -EINVAL) /* -EINVAL: the key is no order */
		reply_error(res, 404, "order not found", NULL);
	else if (rc < 0)
		reply_error(res, 503, "order store unavailable", RETRY_AFTER);
	else
		reply_json(res, 200, order_to_json(&o));
	if (rc == 0)
		link_order(req, &o);
}

static const struct route routes[] = {
    {"/", "GET", handle_root, .prefix = false},
    {"/orders", "POST", handle_post_order, .reads_body = true},
    {"/orders/{key}", "GET", handle_get_order, .prefix = true},
    {"/healthz", "GET", handle_health, .untraced = true},
    {"/readyz", "GET", handle_health, .untraced = true},
    {"/metrics", "GET", handle_health, .untraced = true},
};

/* Finds the route for path; sets *key to the rest of a prefix route's path (its {key}), NULL
 * otherwise. NULL when no route matches. */
static const struct route *match(const char *path, const char **key)
{
	for (size_t i = 0, n; i < sizeof(routes) / sizeof(routes[0]); i++) {
		n = strcspn(routes[i].name, "{");
		*key = routes[i].prefix && strncmp(routes[i].name, path, n) == 0 ? path + n : NULL;
		if (*key || strcmp(routes[i].name, path) == 0)
			return &routes[i];
	}
	return NULL;
}

/* trace_extract's view of the request headers (every field of a name: mg_get_header returns
 * only the first); carrier is the mg_connection. */
static const char *http_header_get(void *carrier, const char *name, size_t index, size_t *len)
{
	const struct mg_request_info *ri = mg_get_request_info(carrier);

	for (int i = 0; ri && i < ri->num_headers; i++) {
		if (strcasecmp(ri->http_headers[i].name, name) == 0 && index-- == 0) {
			*len = strlen(ri->http_headers[i].value);
			return ri->http_headers[i].value;
		}
	}
	return NULL;
}

/* The method as the semantic conventions know it, or NULL for anything else (_OTHER). */
static const char *known_method(const char *m)
{
	static const char *const known[] = {"GET",     "POST",    "PUT",   "DELETE", "HEAD",
	                                    "OPTIONS", "CONNECT", "PATCH", "TRACE"};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strcmp(m, known[i]) == 0)
			return known[i];
	}
	return NULL;
}

/* Starts the request's SERVER span "<method> <route>" (just "<method>" when no route
 * matched), continuing the caller's traceparent/tracestate; NULL when tracing is off or the
 * route is untraced. */
static trace_span *server_span_start(struct mg_connection *c, const struct mg_request_info *info,
                                     const struct route *route, struct pool_worker *w)
{
	const char *method = known_method(info->request_method), *ua;
	const struct trace_context *parent = TRACE_ROOT;
	char name[64];
	trace_span *span;

	if (!trace_enabled() || (route && route->untraced))
		return NULL;
	if (w) {
		parent = &w->parent;
		trace_extract(http_header_get, c, &w->parent); /* none or malformed: a new root */
	}
	if (route)
		snprintf(name, sizeof(name), "%s %s", method ? method : "HTTP", route->name);
	else
		snprintf(name, sizeof(name), "%s", method ? method : "HTTP");
	span = trace_span_start(name, TRACE_KIND_SERVER, parent);
	if (!trace_span_is_recording(span))
		return span;
	trace_span_set_str(span, "http.request.method", method ? method : "_OTHER");
	if (!method)
		trace_span_set_str(span, "http.request.method_original", info->request_method);
	if (route)
		trace_span_set_str(span, "http.route", route->name);
	trace_span_set_str(span, "url.path", info->local_uri);
	trace_span_set_str(span, "url.scheme", "http");
	trace_span_set_str(span, "network.protocol.version", info->http_version);
	trace_span_set_str(span, "client.address", info->remote_addr);
	trace_span_set_int(span, "client.port", info->remote_port);
	if ((ua = mg_get_header(c, "User-Agent")))
		trace_span_set_str(span, "user_agent.original", ua);
	return span;
}

/* Records the response on the request's span and ends it; 5xx is an error. */
static void server_span_end(trace_span *span, const struct response *res, const char *code)
{
	trace_span_set_int(span, "http.response.status_code", res->status);
	if (res->status >= 500) {
		trace_span_set_str(span, "error.type", code);
		trace_span_set_error(span, res->error);
	}
	trace_span_end(span);
}

int routes_dispatch(struct mg_connection *c, void *cbdata)
{
	struct request req = {.conn = c, .info = mg_get_request_info(c)};
	struct response res = {0};
	const struct route *route;
	double t0 = clock_now_s();
	char allow[64], code[8], headers[128];
	const char *label;
	bool body_read = false, body_pending;

	(void)cbdata;
	atomic_fetch_add(&in_flight, 1);
	route = match(req.info->local_uri, &req.key);
	label = route ? route->name : "unmatched";
	/* An order's body is read before a worker is taken: a slow upload holds its own civetweb
	 * thread, never a worker (its Redis connection) that others wait for. */
	if (route && route->reads_body && strcmp(req.info->request_method, route->method) == 0)
		req.body_rc = read_body(c, req.info->content_length, &req.body, &req.len);
	guard_busy(c); /* from here on no read of the client's is interrupted */
	/* A body that could not be read is answered without one (413, 408, 400). */
	if ((!route || !route->untraced) && req.body_rc == 0)
		req.worker = pool_take();
	req.span = server_span_start(c, req.info, route, req.worker);
	if (!route) {
		reply_error(&res, 404, "no such route", NULL);
	} else if (strcmp(req.info->request_method, route->method) != 0) {
		snprintf(allow, sizeof(allow), "Allow: %s\r\n", route->method);
		reply_error(&res, 405, "method not allowed", allow);
	} else {
		route->handler(&req, &res);
		body_read = route->reads_body; /* all of it, or a 413: closes */
	}
	/* While draining, every response still answers the request but closes the connection, so
	 * keep-alive clients reconnect, through the Service, to a pod that stays. A body nobody
	 * read closes it too: civetweb would otherwise read the upload for as long as it lasts. */
	body_pending = !body_read && (req.info->content_length > 0 ||
	                              mg_get_header(c, "Transfer-Encoding") != NULL);
	if ((atomic_load(&draining) || body_pending) &&
	    !(res.headers && strstr(res.headers, CONNECTION_CLOSE))) {
		snprintf(headers, sizeof(headers), "%s" CONNECTION_CLOSE,
		         res.headers ? res.headers : "");
		res.headers = headers;
	}
	http_send(c, res.status, res.content_type, res.body, res.len, res.headers);
	if (!res.body_static)
		free(res.body);
	free(req.body);

	snprintf(code, sizeof(code), "%d", res.status);
	/* A fixed label set: any other method is OTHER (routes are already folded). */
	metrics_add(m_requests, 1, label,
	            known_method(req.info->request_method) ? req.info->request_method : "OTHER",
	            code);
	metrics_add(m_duration, clock_now_s() - t0, label);
	if (res.status >= 500)
		log_warn("request failed", "method", req.info->request_method, "route", label,
		         "status", code);
	else
		log_debug("request", "method", req.info->request_method, "route", label, "status",
		          code);
	server_span_end(req.span, &res, code);
	if (req.worker)
		pool_give(req.worker);
	atomic_fetch_sub(&in_flight, 1);
	return res.status;
}

void routes_drain(void)
{
	atomic_store(&draining, true);
}

int routes_in_flight(void)
{
	return atomic_load(&in_flight);
}

int routes_init(const struct config *cfg, struct probe *p)
{
	static const char *const request_labels[] = {"route", "method", "code", NULL};
	static const char *const route_label[] = {"route", NULL};
	static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	                                0.1,   0.25,   0.5,   1,    2.5,   5};
	config = cfg;
	probe = p;
	m_requests =
	    metrics_counter("reception_http_requests_total",
	                    "HTTP requests by route, method and status code.", request_labels);
	m_duration = metrics_histogram("reception_http_request_duration_seconds",
	                               "HTTP request latency by route.", route_label, bounds,
	                               sizeof(bounds) / sizeof(bounds[0]));
	m_accepted = metrics_counter("reception_orders_accepted_total",
	                             "Valid orders stored as pending.", NULL);
	m_published = metrics_counter("reception_orders_published_total",
	                              "Orders published and confirmed by RabbitMQ.", NULL);
	m_publish_failed = metrics_counter("reception_publish_failures_total",
	                                   "Orders whose publish failed (answered 503).", NULL);
	if (!m_requests || !m_duration || !m_accepted || !m_published || !m_publish_failed)
		return -ENOMEM;
	/* The series that matter most exist from the start: nothing can crowd them out. */
	metrics_add(m_requests, 0, "/orders", "POST", "202");
	metrics_add(m_requests, 0, "/orders", "POST", "503");
	if (pool_init(&config->redis) < 0)
		return -ENOMEM;
	if (intake_init(config) < 0) {
		pool_free();
		return -ENOMEM;
	}
	return 0;
}

void routes_free(void)
{
	pool_free();
	intake_free();
}
