/* http.c — HTTP/1.1 POSTs sent from the caller's memory over a libcurl connection.
 *
 * libcurl makes the connection (name lookup, TCP, TLS, a proxy's tunnel) and moves the bytes
 * (curl_easy_send/_recv in CURLOPT_CONNECT_ONLY mode); this file writes the request head and
 * reads the response head. A POST through curl_easy_perform copies its body into libcurl's
 * upload buffer, the larger part of the export thread's cost; here the body leaves from the
 * batch it was encoded into. */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "clock.h"

#define HEAD_OUT_MAX  (64 * 1024) /* bytes of a request head: URL, extra headers, length */
#define DISCARD_MAX   (1 << 20)   /* a longer response body closes the connection instead */
#define POLL_SLICE_MS 50          /* how often a wait looks at the cancel deadline */
#define RETRY_MAX_S   86400       /* Retry-After further than this is cut to it */

struct otlp_http {
	CURL *curl;           /* the connection's handle; NULL between connections */
	curl_socket_t fd;     /* its socket */
	unsigned long used;   /* responses read on it */
	char *url, *ca_file;  /* ca_file: NULL for the system's */
	struct otlp_buf head; /* "POST ... Content-Length: ": each request adds its length */
	size_t head_fixed;    /* head's bytes before that */
	char in[OTLP_HTTP_HEAD_MAX];
};

/* ---- the response head ---- */

/* A decimal of 1 to 18 digits at v (n bytes) into *out; false when v is not one. */
static bool decimal(const char *v, size_t n, int64_t *out)
{
	int64_t x = 0;

	if (n == 0 || n > 18)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		x = x * 10 + (v[i] - '0');
	}
	*out = x;
	return true;
}

/* Whether the comma-separated list at v (n bytes) holds token, ignoring case and whitespace. */
static bool list_has(const char *v, size_t n, const char *token)
{
	const char *end = v + n, *e, *t;
	size_t tn = strlen(token);

	for (; v < end; v = e + 1) {
		if (!(e = memchr(v, ',', (size_t)(end - v))))
			e = end;
		for (t = e; t > v && (t[-1] == ' ' || t[-1] == '\t'); t--)
			;
		for (; v < t && (*v == ' ' || *v == '\t'); v++)
			;
		if ((size_t)(t - v) == tn && strncasecmp(v, token, tn) == 0)
			return true;
	}
	return false;
}

/* Retry-After's value (delay-seconds or an HTTP-date) as seconds from now, or -1. */
static long retry_after(const char *v, size_t n)
{
	char date[64];
	int64_t s;
	time_t t;

	if (decimal(v, n, &s))
		return s > RETRY_MAX_S ? RETRY_MAX_S : (long)s;
	if (n >= sizeof(date))
		return -1;
	memcpy(date, v, n);
	date[n] = '\0';
	if ((t = curl_getdate(date, NULL)) < 0)
		return -1;
	t -= time(NULL);
	return t < 0 ? 0 : t > RETRY_MAX_S ? RETRY_MAX_S : (long)t;
}

/* What the header lines said, gathered before keep_alive can be decided. */
struct head_state {
	bool http10, close, keep_alive;
};

/* Reads the header line at p (n bytes, no line end) into r and st. Returns 0 or -EPROTO. */
static int header(const char *p, size_t n, struct otlp_http_response *r, struct head_state *st)
{
	const char *colon = memchr(p, ':', n), *v, *end = p + n;
	int64_t cl;

	if (*p == ' ' || *p == '\t')
		return 0; /* an obsolete folded line: continues a header this client does not read
		           */
	if (!colon || colon == p)
		return -EPROTO;
	for (const char *c = p; c < colon; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return -EPROTO;
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	n = (size_t)(colon - p);
	if (n == 14 && strncasecmp(p, "content-length", n) == 0) {
		if (!decimal(v, (size_t)(end - v), &cl) ||
		    (r->content_length >= 0 && r->content_length != cl))
			return -EPROTO;
		r->content_length = cl;
	} else if (n == 17 && strncasecmp(p, "transfer-encoding", n) == 0) {
		r->chunked = true;
	} else if (n == 10 && strncasecmp(p, "connection", n) == 0) {
		st->close |= list_has(v, (size_t)(end - v), "close");
		st->keep_alive |= list_has(v, (size_t)(end - v), "keep-alive");
	} else if (n == 11 && strncasecmp(p, "retry-after", n) == 0) {
		r->retry_after_s = retry_after(v, (size_t)(end - v));
	}
	return 0;
}

/* "HTTP/1.x NNN" and an optional reason. Returns 0 or -EPROTO. */
static int status_line(const char *p, size_t n, struct otlp_http_response *r, struct head_state *st)
{
	if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9' || p[8] != ' ' ||
	    p[9] < '1' || p[9] > '9' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
	    (n > 12 && p[12] != ' '))
		return -EPROTO;
	st->http10 = p[7] == '0';
	r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	return 0;
}

int otlp_http_response_parse(const char *buf, size_t len, struct otlp_http_response *r)
{
	const char *p = buf, *end = buf + (len < OTLP_HTTP_HEAD_MAX ? len : OTLP_HTTP_HEAD_MAX);
	const char *nl;
	struct head_state st = {0};
	size_t n;

	*r = (struct otlp_http_response){.content_length = -1, .retry_after_s = -1};
	if (memcmp(buf, "HTTP/", len < 5 ? len : 5) != 0)
		return -EPROTO; /* not a response, whatever follows */
	for (; (nl = memchr(p, '\n', (size_t)(end - p))); p = nl + 1) {
		n = (size_t)(nl - p) - (nl > p && nl[-1] == '\r');
		if (p == buf) {
			if (status_line(p, n, r, &st) < 0)
				return -EPROTO;
		} else if (n == 0) {
			r->keep_alive = !st.close && (!st.http10 || st.keep_alive);
			return (int)(nl + 1 - buf);
		} else if (header(p, n, r, &st) < 0) {
			return -EPROTO;
		}
	}
	return len >= OTLP_HTTP_HEAD_MAX ? -EPROTO : 0;
}

/* ---- the client ---- */

#define put_literal(b, s) otlp_buf_put((b), (s), sizeof(s) - 1)

int otlp_http_create(struct otlp_http **out, const char *url, const char *ca_file,
                     const char *extra)
{
	struct otlp_http *h = calloc(1, sizeof(*h));
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *path = NULL, *query = NULL;
	int rc = -ENOMEM;

	*out = NULL;
	if (!h || !u || !(h->url = strdup(url)) || (ca_file && !(h->ca_file = strdup(ca_file))))
		goto fail;
	rc = -EINVAL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		goto fail;
	curl_url_get(u, CURLUPART_PORT, &port, 0); /* NULL when the URL gives none */
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	for (const char *s = path; *s;
	     s++) /* libcurl refuses these already; the head relies on it */
		if ((unsigned char)*s <= ' ')
			goto fail;
	put_literal(&h->head, "POST ");
	otlp_buf_put(&h->head, path, strlen(path));
	if (query) {
		put_literal(&h->head, "?");
		otlp_buf_put(&h->head, query, strlen(query));
	}
	put_literal(&h->head, " HTTP/1.1\r\nHost: ");
	otlp_buf_put(&h->head, host, strlen(host));
	if (port) {
		put_literal(&h->head, ":");
		otlp_buf_put(&h->head, port, strlen(port));
	}
	put_literal(&h->head, "\r\nUser-Agent: OTel-OTLP-Exporter-C/bakery\r\n");
	otlp_buf_put(&h->head, extra, strlen(extra));
	put_literal(&h->head, "Content-Length: ");
	h->head_fixed = h->head.len;
	rc = h->head.err ? h->head.err : h->head.len > HEAD_OUT_MAX ? -EINVAL : 0;
fail:
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(query);
	curl_url_cleanup(u);
	if (rc < 0)
		otlp_http_free(h);
	else
		*out = h;
	return rc;
}

/* Closes the connection, if any. */
static void disconnect(struct otlp_http *h)
{
	curl_easy_cleanup(h->curl);
	h->curl = NULL;
	h->used = 0;
}

/* Waits until h's socket is ready for events. Returns 0, -ETIMEDOUT past until, -ECANCELED
 * past *cancel_ms, or -errno of poll. */
static int wait_ready(struct otlp_http *h, short events, uint64_t until,
                      const _Atomic uint64_t *cancel_ms)
{
	struct pollfd p = {.fd = h->fd, .events = events};
	uint64_t now, cancel, left;

	for (;;) {
		now = otel_mono_ms();
		cancel = cancel_ms ? atomic_load(cancel_ms) : 0;
		if (cancel && now >= cancel)
			return -ECANCELED;
		if (now >= until)
			return -ETIMEDOUT;
		left = until - now;
		if (cancel_ms && left > POLL_SLICE_MS)
			left = POLL_SLICE_MS;
		int n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0; /* ready, or an error the next send or recv reports */
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

/* Whether an idle connection was closed by the server (or has bytes nobody asked for). */
static bool stale(struct otlp_http *h)
{
	struct pollfd p = {.fd = h->fd, .events = POLLIN};

	return poll(&p, 1, 0) != 0;
}

/* libcurl's progress callback while connecting: nonzero (abort) once *arg has passed. */
static int cancelled(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	const _Atomic uint64_t *cancel_ms = arg;
	uint64_t cancel = atomic_load(cancel_ms);

	(void)dt, (void)dn, (void)ut, (void)un;
	return cancel && otel_mono_ms() >= cancel;
}

/* Makes a connection within until. Returns 0, -EAGAIN, -EIO, -ECANCELED or -ENOMEM. */
static int connect_to(struct otlp_http *h, uint64_t until, const _Atomic uint64_t *cancel_ms,
                      const char **why)
{
	uint64_t now = otel_mono_ms(), cancel = cancel_ms ? atomic_load(cancel_ms) : 0;
	bool by_cancel = cancel && cancel < until;
	uint64_t end = by_cancel ? cancel : until;
	CURL *c;
	CURLcode res;

	if (now >= end)
		return by_cancel ? -ECANCELED : -EAGAIN;
	if (!(c = curl_easy_init()))
		return -ENOMEM;
	curl_easy_setopt(c, CURLOPT_URL, h->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPPROXYTUNNEL, 1L); /* a proxy passes the bytes through */
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(end - now));
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (h->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
	if (cancel_ms) { /* a cancel set while connecting */
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, cancelled);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)cancel_ms);
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	}
	res = curl_easy_perform(c);
	if (res == CURLE_OK && (curl_easy_getinfo(c, CURLINFO_ACTIVESOCKET, &h->fd) != CURLE_OK ||
	                        h->fd == CURL_SOCKET_BAD))
		res = CURLE_COULDNT_CONNECT;
	if (res == CURLE_OK) {
		h->curl = c;
		return 0;
	}
	curl_easy_cleanup(c);
	*why = curl_easy_strerror(res);
	if ((res == CURLE_OPERATION_TIMEDOUT && by_cancel) || res == CURLE_ABORTED_BY_CALLBACK)
		return -ECANCELED;
	/* A bad URL or certificate will not fix itself; a network error may. */
	return res == CURLE_UNSUPPORTED_PROTOCOL || res == CURLE_URL_MALFORMAT ||
	               res == CURLE_PEER_FAILED_VERIFICATION || res == CURLE_SSL_CACERT_BADFILE
	           ? -EIO
	           : -EAGAIN;
}

/* Sends n bytes of p. Returns 0, -ECONNRESET (the connection failed), -ETIMEDOUT or
 * -ECANCELED. */
static int send_all(struct otlp_http *h, const void *p, size_t n, uint64_t until,
                    const _Atomic uint64_t *cancel_ms, const char **why)
{
	const char *at = p;
	size_t sent;
	CURLcode res;
	int rc;

	while (n > 0) {
		res = curl_easy_send(h->curl, at, n, &sent);
		if (res == CURLE_AGAIN) {
			if ((rc = wait_ready(h, POLLOUT, until, cancel_ms)) < 0)
				return rc;
			continue;
		}
		if (res != CURLE_OK) {
			*why = curl_easy_strerror(res);
			return -ECONNRESET;
		}
		at += sent;
		n -= sent;
	}
	return 0;
}

/* Receives up to n bytes into p. Returns how many (0: the server closed), -ECONNRESET,
 * -ETIMEDOUT or -ECANCELED. */
static long receive(struct otlp_http *h, void *p, size_t n, uint64_t until,
                    const _Atomic uint64_t *cancel_ms, const char **why)
{
	size_t got;
	CURLcode res;
	int rc;

	while ((res = curl_easy_recv(h->curl, p, n, &got)) == CURLE_AGAIN)
		if ((rc = wait_ready(h, POLLIN, until, cancel_ms)) < 0)
			return rc;
	if (res != CURLE_OK) {
		*why = curl_easy_strerror(res);
		return -ECONNRESET;
	}
	return (long)got;
}

/* One request and its response on the open connection. Returns 0 with *r and *keep (whether
 * the connection can carry another request); -ECONNRESET when it failed before any byte of a
 * response (the request may be sent again on a new connection); -EAGAIN; -ETIMEDOUT;
 * -ECANCELED. */
static int exchange(struct otlp_http *h, const void *body, size_t len, uint64_t until,
                    const _Atomic uint64_t *cancel_ms, struct otlp_http_response *r, bool *keep,
                    const char **why)
{
	char digits[24];
	size_t have = 0;
	int64_t left;
	long got;
	int rc, n = 0;

	h->head.len = h->head_fixed;
	otlp_buf_put(&h->head, digits,
	             (size_t)snprintf(digits, sizeof(digits), "%zu\r\n\r\n", len));
	if (h->head.err)
		return h->head.err;
	if ((rc = send_all(h, h->head.data, h->head.len, until, cancel_ms, why)) < 0 ||
	    (rc = send_all(h, body, len, until, cancel_ms, why)) < 0)
		return rc;
	/* The head of the final response (an interim 1xx is skipped), then its body, discarded. */
	while (n == 0) {
		if ((got = receive(h, h->in + have, sizeof(h->in) - have, until, cancel_ms, why)) <=
		    0) {
			if (got < 0 && got != -ECONNRESET)
				return (int)got;
			if (got == 0)
				*why = "connection closed before the response";
			return have > 0 ? -EAGAIN : -ECONNRESET;
		}
		have += (size_t)got;
		while ((n = otlp_http_response_parse(h->in, have, r)) > 0 && r->status < 200) {
			memmove(h->in, h->in + n, have - (size_t)n);
			have -= (size_t)n;
			n = 0;
		}
		if (n < 0) {
			*why = "malformed response head";
			return -EAGAIN;
		}
	}
	if (r->status == 204 || r->status == 304)
		r->content_length = 0;
	left = r->content_length - (int64_t)(have - (size_t)n);
	*keep = r->keep_alive && !r->chunked && r->content_length >= 0 &&
	        r->content_length <= DISCARD_MAX && left >= 0;
	while (*keep && left > 0) {
		size_t want = left < (int64_t)sizeof(h->in) ? (size_t)left : sizeof(h->in);
		if ((got = receive(h, h->in, want, until, cancel_ms, why)) <= 0)
			*keep = false; /* the status is known: the body does not matter */
		left -= got;
	}
	return 0;
}

int otlp_http_post(struct otlp_http *h, const void *body, size_t len, long timeout_ms,
                   const _Atomic uint64_t *cancel_ms, struct otlp_http_response *r,
                   const char **why)
{
	uint64_t until = otel_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 1);
	bool reused, keep = false;
	int rc;

	*why = "";
	for (int attempt = 0;; attempt++) {
		if (h->curl && stale(h))
			disconnect(h);
		reused = h->curl != NULL;
		if (!h->curl && (rc = connect_to(h, until, cancel_ms, why)) < 0)
			return rc;
		rc = exchange(h, body, len, until, cancel_ms, r, &keep, why);
		if (rc == 0 && keep)
			h->used++;
		else
			disconnect(h);
		if (rc != -ECONNRESET || !reused || attempt > 0)
			break;
	}
	if (rc == -ETIMEDOUT)
		*why = "timed out";
	return rc == 0 || rc == -EIO || rc == -ECANCELED || rc == -ENOMEM ? rc : -EAGAIN;
}

void otlp_http_free(struct otlp_http *h)
{
	if (!h)
		return;
	curl_easy_cleanup(h->curl);
	free(h->url);
	free(h->ca_file);
	otlp_buf_free(&h->head);
	free(h);
}
