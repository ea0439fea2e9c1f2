/* test_otlp_http.c — the SDK's HTTP/1.1 sender: response heads parsed, and POSTs against a
 * scripted server on loopback (keep-alive, closed and stale connections, 1xx, chunked,
 * malformed answers, cancel). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "otel/clock.h"
#include "otel/http.h"

/* ---- the parser ---- */

static int parse(const char *s, struct otlp_http_response *r)
{
	return otlp_http_response_parse(s, strlen(s), r);
}

static void test_parse_usual(void)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
	                         "Content-Length: 2\r\n\r\n{}";
	struct otlp_http_response r;
	size_t head = sizeof(ok) - 1 - 2;

	CHECK(parse(ok, &r) == (int)head);
	CHECK(r.status == 200 && r.content_length == 2 && r.keep_alive && !r.chunked);
	CHECK(r.retry_after_s == -1);
	for (size_t n = 0; n < head; n++) /* every prefix: more bytes needed, never an error */
		CHECK(otlp_http_response_parse(ok, n, &r) == 0);
	CHECK(parse("HTTP/1.1 204\r\n\r\n", &r) == 16 && r.status == 204);
	CHECK(r.content_length == -1);
	/* Lines may end in LF alone; a NUL inside a value is only a byte. */
	CHECK(otlp_http_response_parse("HTTP/1.1 503 Busy\nX: a\0b\nRetry-After: 7\n\n", 41, &r) ==
	      41);
	CHECK(r.status == 503 && r.retry_after_s == 7);
}

static void test_parse_connection(void)
{
	struct otlp_http_response r;

	CHECK(parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", &r) > 0 && !r.keep_alive);
	CHECK(parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n", &r) > 0 && r.keep_alive);
	CHECK(parse("HTTP/1.1 200 OK\r\nConnection: te, \tClose \r\n\r\n", &r) > 0 &&
	      !r.keep_alive);
	CHECK(parse("HTTP/1.1 200 OK\r\nConnection: closed\r\n\r\n", &r) > 0 && r.keep_alive);
	CHECK(parse("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", &r) > 0 && r.chunked);
	/* The same length twice is one length; two lengths are a malformed response. */
	CHECK(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n", &r) > 0 &&
	      r.content_length == 5);
	CHECK(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", &r) ==
	      -EPROTO);
}

static void test_parse_malformed(void)
{
	static const char *const bad[] = {
	    "SSH-2.0-OpenSSH\r\n\r\n",
	    "HTTP/2 200\r\n\r\n",
	    "HTTP/1.1 20 OK\r\n\r\n",
	    "HTTP/1.1 200OK\r\n\r\n",
	    "HTTP/1.1 099 Low\r\n\r\n",
	    "HTTP/1.1 2x0 OK\r\n\r\n",
	    "\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n",
	    "HTTP/1.1 200 OK\r\n: empty\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456789\r\n\r\n"};
	struct otlp_http_response r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(bad[i], &r);
		if (rc != -EPROTO)
			fprintf(stderr, "  %s -> %d\n", bad[i], rc);
		CHECK(rc == -EPROTO);
	}
	/* Not a response from its first bytes on: no waiting for more. */
	CHECK(otlp_http_response_parse("SSH", 3, &r) == -EPROTO);
	CHECK(otlp_http_response_parse("HTT", 3, &r) == 0);
	/* An obsolete folded line is skipped. */
	CHECK(parse("HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nContent-Length: 3\r\n\r\n", &r) > 0 &&
	      r.content_length == 3);
}

static void test_parse_limits(void)
{
	static char big[OTLP_HTTP_HEAD_MAX + 64];
	struct otlp_http_response r;
	size_t n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\n");

	while (n + 16 < sizeof(big)) /* header lines, no end: an endless head */
		n += (size_t)snprintf(big + n, sizeof(big) - n, "X-Pad: 1234567\r\n");
	CHECK(otlp_http_response_parse(big, OTLP_HTTP_HEAD_MAX - 1, &r) == 0);
	CHECK(otlp_http_response_parse(big, OTLP_HTTP_HEAD_MAX, &r) == -EPROTO);
	CHECK(otlp_http_response_parse(big, n, &r) == -EPROTO);
}

static void test_parse_retry_after(void)
{
	struct otlp_http_response r;
	char head[128], date[64];
	time_t t = time(NULL) + 100;

	CHECK(parse("HTTP/1.1 429 Slow\r\nRetry-After: 99999999\r\n\r\n", &r) > 0 &&
	      r.retry_after_s == 86400);
	CHECK(parse("HTTP/1.1 429 Slow\r\nRetry-After: soon\r\n\r\n", &r) > 0 &&
	      r.retry_after_s == -1);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime(&t));
	snprintf(head, sizeof(head), "HTTP/1.1 503 Busy\r\nRetry-After: %s\r\n\r\n", date);
	CHECK(parse(head, &r) > 0 && r.retry_after_s >= 98 && r.retry_after_s <= 100);
	CHECK(parse("HTTP/1.1 503 Busy\r\nRetry-After: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n", &r) >
	          0 &&
	      r.retry_after_s == 0);
}

/* ---- a scripted server ---- */

enum after { KEEP, CLOSE, NO_ANSWER, HANG };

struct step {
	const char *response;
	enum after after;
};

#define REQS_MAX 8

struct server {
	int lfd, port, n_steps, requests, connections;
	const struct step *steps;
	char head[REQS_MAX][512];
	size_t body_len[REQS_MAX];
	char body_first[REQS_MAX];
	int conn_of[REQS_MAX];
	pthread_t thread;
};

/* Reads one request on fd into s's record. Returns 0, or -1 when the peer closed. */
static int read_request(struct server *s, int fd)
{
	static char buf[1 << 18];
	size_t have = 0, head;
	char *end, *cl;
	long body;
	ssize_t n;

	for (;;) {
		if (have == sizeof(buf) - 1 ||
		    (n = read(fd, buf + have, sizeof(buf) - 1 - have)) <= 0)
			return -1;
		have += (size_t)n;
		buf[have] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")))
			break;
	}
	head = (size_t)(end + 4 - buf);
	cl = strcasestr(buf, "\nContent-Length: ");
	body = cl ? atol(cl + 17) : 0;
	while ((long)(have - head) < body && have < sizeof(buf) &&
	       (n = read(fd, buf + have, sizeof(buf) - have)) > 0)
		have += (size_t)n;
	snprintf(s->head[s->requests], sizeof(s->head[0]), "%.*s", (int)head, buf);
	s->body_len[s->requests] = have - head;
	s->body_first[s->requests] = have > head ? buf[head] : 0;
	s->conn_of[s->requests] = s->connections;
	return 0;
}

static void *serve(void *arg)
{
	struct server *s = arg;
	int fd = -1;

	while (s->requests < s->n_steps) {
		if (fd < 0) {
			if ((fd = accept(s->lfd, NULL, NULL)) < 0)
				return NULL;
			s->connections++;
		}
		if (read_request(s, fd) < 0) {
			close(fd);
			fd = -1;
			continue;
		}
		const struct step *st = &s->steps[s->requests++];
		if (st->after == HANG) {
			char c;
			while (read(fd, &c, 1) > 0) /* until the client gives up */
				;
		} else if (st->after != NO_ANSWER &&
		           write(fd, st->response, strlen(st->response)) < 0) {
			break;
		}
		if (st->after != KEEP) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static int server_start(struct server *s, const struct step *steps, int n)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);

	memset(s, 0, sizeof(*s));
	s->steps = steps;
	s->n_steps = n;
	if ((s->lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s->lfd, 8) < 0 ||
	    getsockname(s->lfd, (struct sockaddr *)&a, &len) < 0)
		return -1;
	s->port = ntohs(a.sin_port);
	return pthread_create(&s->thread, NULL, serve, s) == 0 ? 0 : -1;
}

static void server_stop(struct server *s)
{
	shutdown(s->lfd, SHUT_RDWR);
	pthread_join(s->thread, NULL);
	close(s->lfd);
}

static struct otlp_http *client(const struct server *s, const char *path)
{
	struct otlp_http *h = NULL;
	char url[128];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", s->port, path);
	CHECK(otlp_http_create(&h, url, NULL, "X-Extra: y\r\nContent-Type: a/b\r\n") == 0);
	return h;
}

#define OK_KEEP "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"

static void test_keep_alive(void)
{
	static const struct step steps[] = {{OK_KEEP, KEEP}, {OK_KEEP, KEEP}, {OK_KEEP, KEEP}};
	static char big[100000];
	struct otlp_http_response r;
	struct server s;
	struct otlp_http *h;
	const char *why;
	char want[64];

	CHECK(server_start(&s, steps, 3) == 0);
	if (!(h = client(&s, "/v1/traces?x=1")))
		return;
	memset(big, 'b', sizeof(big));
	CHECK(otlp_http_post(h, "a", 1, 5000, NULL, &r, &why) == 0 && r.status == 200);
	CHECK(otlp_http_post(h, big, sizeof(big), 5000, NULL, &r, &why) == 0);
	CHECK(otlp_http_post(h, "c", 1, 5000, NULL, &r, &why) == 0);
	otlp_http_free(h);
	server_stop(&s);
	CHECK(s.requests == 3 && s.connections == 1);
	snprintf(want, sizeof(want), "\r\nHost: 127.0.0.1:%d\r\n", s.port);
	CHECK(strncmp(s.head[0], "POST /v1/traces?x=1 HTTP/1.1\r\n", 30) == 0);
	CHECK(strstr(s.head[0], want) && strstr(s.head[0], "\r\nX-Extra: y\r\n"));
	CHECK(strstr(s.head[0], "\r\nContent-Type: a/b\r\n"));
	CHECK(strstr(s.head[0], "\r\nContent-Length: 1\r\n\r\n"));
	CHECK(strstr(s.head[1], "\r\nContent-Length: 100000\r\n\r\n"));
	CHECK(s.body_len[0] == 1 && s.body_first[0] == 'a');
	CHECK(s.body_len[1] == sizeof(big) && s.body_first[1] == 'b');
	CHECK(s.body_len[2] == 1 && s.body_first[2] == 'c');
}

/* A response that closes; a connection the server closes once idle; a reused connection
 * closed without an answer (sent again on a new one): every post succeeds, each once. */
static void test_reconnects(void)
{
	static const struct step steps[] = {
	    {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", KEEP},
	    {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", CLOSE},
	    {OK_KEEP, CLOSE},
	    {OK_KEEP, KEEP},
	    {NULL, NO_ANSWER},
	    {OK_KEEP, KEEP}};
	struct otlp_http_response r;
	struct server s;
	struct otlp_http *h;
	const char *why;

	CHECK(server_start(&s, steps, 6) == 0);
	if (!(h = client(&s, "/")))
		return;
	for (int i = 0; i < 4; i++) {
		CHECK(otlp_http_post(h, "x", 1, 5000, NULL, &r, &why) == 0 && r.status == 200);
		nanosleep(&(struct timespec){0, 20 * 1000000L},
		          NULL); /* the server's close lands */
	}
	CHECK(otlp_http_post(h, "y", 1, 5000, NULL, &r, &why) == 0 && r.status == 200);
	otlp_http_free(h);
	server_stop(&s);
	CHECK(s.requests == 6);
	CHECK(s.connections == 5);
	CHECK(s.conn_of[3] == 4 && s.conn_of[4] == 4 && s.conn_of[5] == 5);
	CHECK(s.body_first[4] == 'y' && s.body_first[5] == 'y');
}

static void test_interim_and_chunked(void)
{
	static const struct step steps[] = {
	    {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n"
	     "\r\n2\r\n{}\r\n0\r\n\r\n",
	     KEEP},
	    {OK_KEEP, KEEP}};
	struct otlp_http_response r;
	struct server s;
	struct otlp_http *h;
	const char *why;

	CHECK(server_start(&s, steps, 2) == 0);
	if (!(h = client(&s, "/")))
		return;
	CHECK(otlp_http_post(h, "x", 1, 5000, NULL, &r, &why) == 0 && r.status == 202);
	CHECK(otlp_http_post(h, "x", 1, 5000, NULL, &r, &why) == 0 && r.status == 200);
	otlp_http_free(h);
	server_stop(&s);
	CHECK(s.requests == 2 &&
	      s.connections == 2); /* a chunked body: not read, connection closed */
}

/* No answer on a new connection, a malformed one, a server that reads and hangs until a
 * cancel: each a failure of its own, none sent twice. */
static void test_failures(void)
{
	static const struct step steps[] = {{NULL, NO_ANSWER},
	                                    {"HTTP/1.1 2x0 OK\r\n\r\n", KEEP},
	                                    {"\x16\x03\x01 not http at all\r\n\r\n", KEEP},
	                                    {NULL, HANG}};
	struct otlp_http_response r;
	struct server s;
	struct otlp_http *h;
	const char *why;
	_Atomic uint64_t cancel = 0;
	uint64_t t0;

	CHECK(server_start(&s, steps, 4) == 0);
	if (!(h = client(&s, "/")))
		return;
	CHECK(otlp_http_post(h, "x", 1, 5000, &cancel, &r, &why) == -EAGAIN);
	CHECK(otlp_http_post(h, "x", 1, 5000, &cancel, &r, &why) == -EAGAIN);
	CHECK(strcmp(why, "malformed response head") == 0);
	CHECK(otlp_http_post(h, "x", 1, 5000, &cancel, &r, &why) == -EAGAIN);
	t0 = otel_mono_ms();
	atomic_store(&cancel, t0 + 200);
	CHECK(otlp_http_post(h, "x", 1, 10000, &cancel, &r, &why) == -ECANCELED);
	CHECK(otel_mono_ms() - t0 < 2000);
	CHECK(otlp_http_post(h, "x", 1, 10000, &cancel, &r, &why) == -ECANCELED);
	otlp_http_free(h);
	server_stop(&s);
	CHECK(s.requests == 4 && s.connections == 4);
}

/* A connect that hangs (a full accept queue drops the SYN) ends when the cancel deadline,
 * set after the post began, passes, not at the 10 s timeout. */
static void *cancel_soon(void *arg)
{
	nanosleep(&(struct timespec){0, 300 * 1000000L}, NULL);
	atomic_store((_Atomic uint64_t *)arg, otel_mono_ms());
	return NULL;
}

static void test_cancel_while_connecting(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	struct otlp_http_response r;
	struct otlp_http *h = NULL;
	_Atomic uint64_t cancel = 0;
	const char *why;
	char url[64];
	pthread_t t;
	uint64_t t0;
	int lfd = socket(AF_INET, SOCK_STREAM, 0), fill[2] = {-1, -1};

	CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(lfd, 0) == 0);
	CHECK(getsockname(lfd, (struct sockaddr *)&a, &alen) == 0);
	for (int i = 0; i < 2; i++) { /* fill the queue: the next SYN is dropped */
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		connect(fill[i], (struct sockaddr *)&a, sizeof(a));
	}
	nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(a.sin_port));
	CHECK(otlp_http_create(&h, url, NULL, "") == 0);
	t0 = otel_mono_ms();
	CHECK(pthread_create(&t, NULL, cancel_soon, &cancel) == 0);
	CHECK(otlp_http_post(h, "x", 1, 10000, &cancel, &r, &why) == -ECANCELED);
	fprintf(stderr, "  connect cancelled after %llu ms\n",
	        (unsigned long long)(otel_mono_ms() - t0));
	CHECK(otel_mono_ms() - t0 < 3000);
	pthread_join(t, NULL);
	otlp_http_free(h);
	close(fill[0]);
	close(fill[1]);
	close(lfd);
}

static void test_create(void)
{
	struct otlp_http *h = NULL;

	CHECK(otlp_http_create(&h, "http://exa mple/", NULL, "") == -EINVAL && !h);
	CHECK(otlp_http_create(&h, "not a url", NULL, "") == -EINVAL && !h);
	CHECK(otlp_http_create(&h, "https://[::1]:4318/v1/traces", "/nonexistent", "") == 0 && h);
	otlp_http_free(h);
	otlp_http_free(NULL);
}

int main(void)
{
	RUN(test_parse_usual);
	RUN(test_parse_connection);
	RUN(test_parse_malformed);
	RUN(test_parse_limits);
	RUN(test_parse_retry_after);
	RUN(test_keep_alive);
	RUN(test_reconnects);
	RUN(test_interim_and_chunked);
	RUN(test_failures);
	RUN(test_cancel_while_connecting);
	RUN(test_create);
	return CHECK_DONE();
}
