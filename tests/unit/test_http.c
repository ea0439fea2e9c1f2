/* test_http.c — the JSON of small replies, and the request head checks. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http.h"

static void test_json_pair(void)
{
	char *s = http_json_pair("error", "bad \"x\"");

	CHECK_STR(s, "{\"error\":\"bad \\\"x\\\"\"}");
	free(s);
	CHECK(http_json_pair("error", "\xff") == NULL); /* not UTF-8 */
}

/* Checks a head of HTTP/version with the n fields in pairs (name, value); returns the status. */
static int head(const char *version, int n, const char *const *pairs, const char **why)
{
	struct mg_request_info ri = {.request_method = "POST",
	                             .request_uri = "/orders",
	                             .http_version = version,
	                             .num_headers = n};

	for (int i = 0; i < n; i++) {
		ri.http_headers[i].name = pairs[2 * i];
		ri.http_headers[i].value = pairs[2 * i + 1];
	}
	*why = NULL;
	return http_head_check(&ri, why);
}

static void test_head_framing(void)
{
	const char *why;

	CHECK(head("1.1", 2, (const char *[]){"Host", "x", "Content-Length", "29"}, &why) == 0);
	CHECK(why == NULL);
	CHECK(head("1.1", 3,
	           (const char *[]){"Host", "x", "Content-Length", "5", "content-length", "5"},
	           &why) == 0); /* the same value twice: RFC 9112 6.3 allows it */
	CHECK(head("1.1", 2, (const char *[]){"Host", "x", "Content-Length", " 5 , 05"}, &why) ==
	      0);
	CHECK(head("1.1", 3,
	           (const char *[]){"Host", "x", "Content-Length", "29", "Content-Length", "5"},
	           &why) == 400);
	CHECK(why != NULL);
	CHECK(head("1.1", 2, (const char *[]){"Host", "x", "Content-Length", "5, 29"}, &why) ==
	      400);
	CHECK(head("1.1", 2, (const char *[]){"Host", "x", "Content-Length", "5abc"}, &why) == 400);
	CHECK(head("1.1", 2, (const char *[]){"Host", "x", "Content-Length", "+5"}, &why) == 400);
	CHECK(head("1.1", 2, (const char *[]){"Host", "x", "Content-Length", ""}, &why) == 400);
	CHECK(head("1.1", 2, (const char *[]){"Host", "x", "Content-Length", "1234567890123456789"},
	           &why) == 400);
	CHECK(head("1.1", 2, (const char *[]){"Host", "x", "Transfer-Encoding", "Chunked"}, &why) ==
	      0);
	CHECK(head("1.1", 3,
	           (const char *[]){"Host", "x", "Transfer-Encoding", "chunked", "Content-Length",
	                            "5"},
	           &why) == 400);
	CHECK(head("1.1", 2,
	           (const char *[]){"Host", "x", "Transfer-Encoding", "chunked, identity"},
	           &why) == 400);
	CHECK(head("1.1", 2, (const char *[]){"Host", "x", "Transfer-Encoding", "xchunked"},
	           &why) == 400);
	CHECK(head("1.1", 2, (const char *[]){"Host", "x", "Transfer-Encoding", "identity"},
	           &why) == 400);
	CHECK(head("1.1", 3,
	           (const char *[]){"Host", "x", "Transfer-Encoding", "chunked",
	                            "Transfer-Encoding", "chunked"},
	           &why) == 400);
	CHECK(head("1.0", 1, (const char *[]){"Transfer-Encoding", "chunked"}, &why) == 400);
	CHECK(head("1.1", 0, NULL, &why) == 400); /* no Host */
	CHECK(head("1.0", 0, NULL, &why) == 0);
	CHECK(head("1.1", 2, (const char *[]){"Host", "x", "host", "y"}, &why) == 400);
}

static void test_head_limits(void)
{
	static char big[HTTP_FIELD_VALUE_MAX + 2];
	const char *pairs[2 * MG_MAX_HEADERS], *why;

	memset(big, 'a', sizeof(big) - 1);
	CHECK(head("1.1", 2, (const char *[]){"Host", "x", "X-Big", big}, &why) == 431);
	CHECK(head("1.1", 2, (const char *[]){"Host", "x", "X-Big", big + 1}, &why) == 0);
	CHECK(head("1.1", 3, (const char *[]){"Host", "x", "X-A", big + 1000, "X-B", big + 1000},
	           &why) == 431);
	for (int i = 0; i < MG_MAX_HEADERS; i++) {
		pairs[2 * i] = i ? "X-Field" : "Host";
		pairs[2 * i + 1] = "1";
	}
	CHECK(head("1.1", HTTP_FIELDS_MAX, pairs, &why) == 0);
	CHECK(head("1.1", HTTP_FIELDS_MAX + 1, pairs, &why) == 431);
	CHECK(head("1.1", MG_MAX_HEADERS, pairs, &why) ==
	      431); /* and maybe more civetweb dropped */
}

int main(void)
{
	RUN(test_json_pair);
	RUN(test_head_framing);
	RUN(test_head_limits);
	return CHECK_DONE();
}
