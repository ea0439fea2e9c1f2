/* exporter.c — the OTLP/HTTP exporter: settings from the environment, encoding, the POST. */
#include "exporter.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "env.h"
#include "http.h"

#define URL_MAX     2048
#define HEADERS_MAX 32 /* entries taken from OTEL_EXPORTER_OTLP_[TRACES_]HEADERS */

struct otlp_exporter {
	struct otlp_http *http;
	char url[URL_MAX];
	struct otlp_buf headers; /* "Name: value\r\n" lines, n_headers of them */
	int n_headers;
	bool json, gzip;
	long timeout_ms;
	char ca_file[1024];
	_Atomic uint64_t deadline_ms;
	bool curl_global; /* holds a curl_global_init reference */
};

/* OTEL_EXPORTER_OTLP_TRACES_<what> if set, else OTEL_EXPORTER_OTLP_<what> (the name used). */
static const char *env_otlp(const char *what, char *name, size_t cap)
{
	const char *v;

	snprintf(name, cap, "OTEL_EXPORTER_OTLP_TRACES_%s", what);
	if ((v = otel_env(name)))
		return v;
	snprintf(name, cap, "OTEL_EXPORTER_OTLP_%s", what);
	return otel_env(name);
}

static int add_header(void *arg, const char *key, const char *value)
{
	struct otlp_exporter *e = arg;

	if (!*key || strpbrk(key, "\r\n: \t") || strpbrk(value, "\r\n") ||
	    e->n_headers == HEADERS_MAX)
		return -EINVAL;
	otlp_buf_put(&e->headers, key, strlen(key));
	otlp_buf_put(&e->headers, ": ", 2);
	otlp_buf_put(&e->headers, value, strlen(value));
	otlp_buf_put(&e->headers, "\r\n", 3); /* and a NUL, left out of len */
	if (!e->headers.err)
		e->headers.len--;
	e->n_headers++;
	return e->headers.err;
}

/* Reads the endpoint, protocol, compression, timeout, certificate and headers into e. */
static int exporter_configure(struct otlp_exporter *e)
{
	const char *v, *path = "/v1/traces";
	char name[64];
	size_t n;
	int rc;

	if (!(v = env_otlp("ENDPOINT", name, sizeof(name))))
		v = "http://localhost:4318";
	else if (strstr(name, "_TRACES_"))
		path = ""; /* the signal's own endpoint is the whole URL */
	n = strlen(v);
	if ((strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) ||
	    n + strlen(path) >= sizeof(e->url))
		return otel_env_bad(name, v, "not an http(s) URL");
	if (*path && v[n - 1] == '/')
		n--;
	snprintf(e->url, sizeof(e->url), "%.*s%s", (int)n, v, path);

	if ((v = env_otlp("PROTOCOL", name, sizeof(name)))) {
		if (strcmp(v, "http/json") == 0)
			e->json = true;
		else if (strcmp(v, "http/protobuf") != 0)
			return otel_env_bad(name, v, "supported: http/protobuf, http/json");
	}
	if ((v = env_otlp("COMPRESSION", name, sizeof(name)))) {
		if (strcmp(v, "gzip") == 0)
			e->gzip = true;
		else if (strcmp(v, "none") != 0)
			return otel_env_bad(name, v, "supported: gzip, none");
	}
	env_otlp("TIMEOUT", name, sizeof(name)); /* names the variable read below, set or not */
	if ((rc = otel_env_long(name, 10000, 1, 3600000, "milliseconds, 1 to 3600000",
	                        &e->timeout_ms)) < 0)
		return rc;
	if ((v = env_otlp("CERTIFICATE", name, sizeof(name)))) {
		if (strlen(v) >= sizeof(e->ca_file))
			return otel_env_bad(name, v, "path too long");
		snprintf(e->ca_file, sizeof(e->ca_file), "%s", v);
	}
	if ((rc = add_header(e, "Content-Type",
	                     e->json ? "application/json" : "application/x-protobuf")) < 0 ||
	    (e->gzip && (rc = add_header(e, "Content-Encoding", "gzip")) < 0))
		return rc;
	/* Both header lists apply; for the same name the signal-specific one comes last. */
	for (int i = 0; i < 2; i++) {
		const char *var =
		    i ? "OTEL_EXPORTER_OTLP_TRACES_HEADERS" : "OTEL_EXPORTER_OTLP_HEADERS";
		if ((v = otel_env(var)) && otlp_kv_list_parse(v, add_header, e) < 0)
			return otel_env_bad(var, "(hidden)", "not a k=v,k=v list");
	}
	return 0;
}

int otlp_exporter_create(struct otlp_exporter **out)
{
	struct otlp_exporter *e = calloc(1, sizeof(*e));
	int rc;

	*out = NULL;
	if (!e)
		return -ENOMEM;
	if ((rc = exporter_configure(e)) == 0) {
		e->curl_global = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
		rc = e->curl_global
		         ? otlp_http_create(&e->http, e->url, e->ca_file[0] ? e->ca_file : NULL,
		                            (const char *)e->headers.data)
		         : -ENOMEM;
	}
	if (rc < 0)
		otlp_exporter_free(e);
	else
		*out = e;
	return rc;
}

const char *otlp_exporter_url(const struct otlp_exporter *e)
{
	return e->url;
}

int otlp_exporter_encode_span(const struct otlp_exporter *e, const struct otlp_span *s,
                              struct otlp_buf *out)
{
	return e->json ? otlp_encode_json_span(s, out) : otlp_encode_protobuf_span(s, out);
}

size_t otlp_exporter_head_room(const struct otlp_exporter *e, const struct otlp_resource *r)
{
	struct otlp_buf head = {0};
	size_t n;

	if (e->json)
		otlp_encode_json_head(r, &head);
	else
		otlp_encode_protobuf_head(r, OTLP_BODY_MAX, &head); /* the longest lengths */
	n = head.err ? 0 : head.len;
	otlp_buf_free(&head);
	return n;
}

int otlp_exporter_wrap(const struct otlp_exporter *e, const struct otlp_resource *r,
                       struct otlp_buf *spans, size_t room, struct otlp_buf *body,
                       struct otlp_buf *req)
{
	struct otlp_buf head = {0};
	size_t at = room, start;
	int rc;

	if (spans->len < room)
		return -EINVAL;
	if (e->json) {
		at += spans->len > room; /* over the first span's comma */
		rc = otlp_encode_json_head(r, &head);
		otlp_buf_put(spans, OTLP_JSON_TAIL, sizeof(OTLP_JSON_TAIL) - 1);
		if (rc == 0)
			rc = spans->err;
	} else {
		rc = otlp_encode_protobuf_head(r, spans->len - room, &head);
	}
	if (rc == 0 && head.len > at)
		rc = -ENOSPC;
	if (rc == 0) {
		start = at - head.len;
		memcpy(spans->data + start, head.data, head.len);
		*req = (struct otlp_buf){.data = spans->data + start, .len = spans->len - start};
		if (e->gzip) {
			otlp_buf_put(body, req->data, req->len);
			if ((rc = otlp_gzip(body)) == 0)
				*req = *body;
		}
	}
	otlp_buf_free(&head);
	return rc;
}

int otlp_exporter_post(struct otlp_exporter *e, const struct otlp_buf *body, long timeout_ms,
                       long *retry_after_ms)
{
	struct otlp_http_response r;
	const char *why;
	int rc;

	*retry_after_ms = -1;
	/* OTEL_EXPORTER_OTLP_TIMEOUT bounds each request; the caller's budget may cut it. */
	if (timeout_ms <= 0 || timeout_ms > e->timeout_ms)
		timeout_ms = timeout_ms <= 0 ? 1L : e->timeout_ms;
	rc = otlp_http_post(e->http, body->data, body->len, timeout_ms, &e->deadline_ms, &r, &why);
	if (rc < 0) {
		if (rc != -ECANCELED)
			otel_diag_log(TRACE_DIAG_DEBUG, "span export failed",
			              (const char *const[6]){"error", why});
		return rc == -ENOMEM ? -EAGAIN : rc;
	}
	if (r.status >= 200 && r.status < 300)
		return 0;
	if (r.status == 429 || r.status == 502 || r.status == 503 || r.status == 504) {
		if (r.retry_after_s > 0)
			*retry_after_ms =
			    r.retry_after_s > 3600 ? 3600000L : r.retry_after_s * 1000;
		return -EAGAIN;
	}
	return -EIO;
}

void otlp_exporter_set_deadline(struct otlp_exporter *e, uint64_t deadline_ms)
{
	atomic_store(&e->deadline_ms, deadline_ms);
}

void otlp_exporter_free(struct otlp_exporter *e)
{
	if (!e)
		return;
	otlp_http_free(e->http);
	otlp_buf_free(&e->headers);
	if (e->curl_global)
		curl_global_cleanup();
	free(e);
}
