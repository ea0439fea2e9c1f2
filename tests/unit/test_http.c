/* test_http.c — the JSON of small replies. */
#include <stdlib.h>

#include "check.h"
#include "http.h"

static void test_json_pair(void)
{
	char *s = http_json_pair("error", "bad \"x\"");

	CHECK_STR(s, "{\"error\":\"bad \\\"x\\\"\"}");
	free(s);
	CHECK(http_json_pair("error", "\xff") == NULL); /* not UTF-8 */
}

int main(void)
{
	RUN(test_json_pair);
	return CHECK_DONE();
}
