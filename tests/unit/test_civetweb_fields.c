/* test_civetweb_fields.c — what civetweb 1.15 hands reception's trace getter: every field, no tab.
 */
#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

static int handler_calls;
static char seen[256];

/* Writes "name=value|" for each tracestate field, in order, as reception's getter walks them. */
static int handler(struct mg_connection *c, void *arg)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
	size_t n = 0;

	(void)arg;
	handler_calls++;
	seen[0] = '\0';
	for (int i = 0; i < ri->num_headers && n < sizeof(seen); i++)
		if (strcasecmp(ri->http_headers[i].name, "tracestate") == 0)
			n += (size_t)snprintf(seen + n, sizeof(seen) - n, "%s|",
			                      ri->http_headers[i].value);
	mg_printf(c, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
	return 204;
}

/* Sends req to port and returns the status code of the answer, or -1. */
static int roundtrip(int port, const char *req)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1;
	char buf[512];
	ssize_t n;

	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    write(fd, req, strlen(req)) == (ssize_t)strlen(req) &&
	    (n = read(fd, buf, sizeof(buf) - 1)) > 12) {
		buf[n] = '\0';
		status = atoi(buf + 9);
	}
	close(fd);
	return status;
}

static void test_fields(void)
{
	const char *opts[] = {"listening_ports", "127.0.0.1:0", "num_threads", "1", NULL};
	struct mg_server_port port;
	struct mg_context *ctx = mg_start(NULL, NULL, opts);

	CHECK(ctx != NULL);
	if (!ctx)
		return;
	mg_set_request_handler(ctx, "/", handler, NULL);
	CHECK(mg_get_server_ports(ctx, 1, &port) == 1);

	/* Repeated fields all reach the handler, in order (mg_get_header returns the first only).
	 */
	CHECK(roundtrip(port.port, "GET / HTTP/1.1\r\nHost: x\r\ntracestate: a=1\r\n"
	                           "tracestate: b=2 \r\nTraceState: c=3\r\n\r\n") == 204);
	CHECK_STR(seen, "a=1|b=2 |c=3|"); /* trailing blanks kept: the parser trims */

	/* A tab inside a field value (legal optional whitespace) is refused with 400 before any
	 * handler runs: get_http_header_len() in civetweb.c rejects every byte below 128 that is
	 * not CR, LF or isprint(). A tab after the colon is the same. Known limit (README). */
	handler_calls = 0;
	CHECK(roundtrip(port.port, "GET / HTTP/1.1\r\nHost: x\r\ntracestate: a=1,\tb=2\r\n\r\n") ==
	      400);
	CHECK(roundtrip(port.port, "GET / HTTP/1.1\r\nHost: x\r\ntracestate:\ta=1\r\n\r\n") == 400);
	CHECK(handler_calls == 0);
	mg_stop(ctx);
}

int main(void)
{
	mg_init_library(0);
	RUN(test_fields);
	mg_exit_library();
	return CHECK_DONE();
}
