/* test_order.c — order keys, request validation, JSON in and out, timestamps. */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "order.h"

static int parse(const char *body, const char **why)
{
	struct order o;

	*why = NULL;
	return order_parse_request(body, strlen(body), &o, why);
}

static void test_keys(void)
{
	char a[ORDER_KEY_LEN + 1], b[ORDER_KEY_LEN + 1];

	CHECK(order_key_new(a) == 0);
	CHECK(order_key_new(b) == 0);
	CHECK(strlen(a) == 32);
	CHECK(order_key_valid(a));
	CHECK(order_key_valid(b));
	CHECK(strcmp(a, b) != 0);
	CHECK(!order_key_valid("0123456789abcdef0123456789ABCDEF"));
	CHECK(!order_key_valid("0123456789abcdef0123456789abcde"));
	CHECK(!order_key_valid("0123456789abcdef0123456789abcdef0"));
	CHECK(!order_key_valid("0123456789abcdef0123456789abcdeg"));
	CHECK(!order_key_valid(""));
	CHECK(!order_key_valid(NULL));
}

/* 1000 keys in a row are all distinct (128 random bits each). */
static void test_keys_distinct(void)
{
	static char keys[1000][ORDER_KEY_LEN + 1];
	int dup = 0;

	for (int i = 0; i < 1000; i++)
		CHECK(order_key_new(keys[i]) == 0);
	for (int i = 0; i < 1000; i++)
		for (int j = i + 1; j < 1000; j++)
			dup += strcmp(keys[i], keys[j]) == 0;
	CHECK(dup == 0);
}

static void test_valid_request(void)
{
	struct order o;
	const char *why = NULL;
	const char *body = "{\"customer\":\"homer\",\"pastry\":\"la bombe\",\"extra\":1}";

	CHECK(order_parse_request(body, strlen(body), &o, &why) == 0);
	CHECK_STR(o.customer, "homer");
	CHECK_STR(o.pastry, "la bombe");
	/* UTF-8 and escapes are fine. */
	body = "{\"customer\":\"J\\u00fcrgen\",\"pastry\":\"cr\xc3\xa8me br\xc3\xbbl\xc3\xa9\"}";
	CHECK(order_parse_request(body, strlen(body), &o, &why) == 0);
	CHECK_STR(o.customer, "J\xc3\xbcrgen");
}

static void test_bad_requests(void)
{
	static const char *const bad[] = {
	    "",
	    "{",
	    "not json",
	    "[]",
	    "\"string\"",
	    "42",
	    "null",
	    "{}",
	    "{\"customer\":\"homer\"}",
	    "{\"pastry\":\"donut\"}",
	    "{\"customer\":\"\",\"pastry\":\"donut\"}",
	    "{\"customer\":\"homer\",\"pastry\":\"\"}",
	    "{\"customer\":1,\"pastry\":\"donut\"}",
	    "{\"customer\":\"homer\",\"pastry\":null}",
	    "{\"customer\":[\"homer\"],\"pastry\":\"donut\"}",
	    "{\"customer\":\"homer\",\"pastry\":\"donut\"} trailing",
	    "{\"customer\":\"homer\",\"pastry\":\"donut\"}{}",
	    "{\"customer\":\"ho\\u0000mer\",\"pastry\":\"donut\"}",
	    "{\"customer\":\"\xff\xfe\",\"pastry\":\"donut\"}",
	    "{\"customer\":\"\xc3\",\"pastry\":\"donut\"}",
	    "{\"customer\":\"homer\",\"customer\":\"bart\",\"pastry\":\"donut\"}",
	};
	const char *why;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(bad[i], &why);
		if (rc != -EINVAL)
			fprintf(stderr, "  accepted: %s\n", bad[i]);
		CHECK(rc == -EINVAL);
		CHECK(why != NULL && *why);
	}
	CHECK(parse("{\"customer\":\"\xff\",\"pastry\":\"x\"}", &why) == -EINVAL);
	CHECK_STR(why, "body is not valid UTF-8");
	CHECK(parse("{\"customer\":\"\",\"pastry\":\"x\"}", &why) == -EINVAL);
	CHECK_STR(why, "customer must not be empty");
}

static void test_field_limits(void)
{
	char body[1024], field[300];
	const char *why;

	memset(field, 'a', sizeof(field));
	field[256] = '\0';
	snprintf(body, sizeof(body), "{\"customer\":\"%s\",\"pastry\":\"p\"}", field);
	CHECK(parse(body, &why) == 0);
	field[256] = 'a';
	field[257] = '\0';
	snprintf(body, sizeof(body), "{\"customer\":\"c\",\"pastry\":\"%s\"}", field);
	CHECK(parse(body, &why) == -EINVAL);
	CHECK_STR(why, "pastry is longer than 256 bytes");
	/* 128 two-byte characters are 256 bytes: allowed; 129 are not. */
	for (int i = 0; i < 129; i++)
		memcpy(field + 2 * i, "\xc3\xa9", 2);
	field[256] = '\0';
	snprintf(body, sizeof(body), "{\"customer\":\"%s\",\"pastry\":\"p\"}", field);
	CHECK(parse(body, &why) == 0);
	field[256] = '\xc3';
	field[258] = '\0';
	snprintf(body, sizeof(body), "{\"customer\":\"%s\",\"pastry\":\"p\"}", field);
	CHECK(parse(body, &why) == -EINVAL);
	CHECK_STR(why, "customer is longer than 256 bytes");
}

/* Deep nesting is refused without recursing deeply, even in a large body. */
static void test_deep_nesting(void)
{
	size_t n = ORDER_BODY_MAX;
	char *body = malloc(n);
	struct order o;
	const char *why;

	memset(body, '[', n);
	CHECK(order_parse_request(body, n, &o, &why) == -EINVAL);
	CHECK_STR(why, "body is nested too deeply");
	/* Brackets inside strings do not count. */
	const char *s =
	    "{\"customer\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\",\"pastry\":\"x\"}";
	CHECK(order_parse_request(s, strlen(s), &o, &why) == 0);
	CHECK(order_parse_request(body, n + 1, &o, &why) == -EINVAL);
	free(body);
}

static void test_json_out(void)
{
	struct order o = {.customer = "ho\"mer",
	                  .pastry = "la bombe",
	                  .order_time = "2024-01-02T03:04:05Z",
	                  .status = "pending"};
	char *s = order_to_json(&o);

	CHECK_STR(s, "{\"pastry\":\"la bombe\",\"customer\":\"ho\\\"mer\","
	             "\"orderTime\":\"2024-01-02T03:04:05Z\",\"status\":\"pending\"}");
	free(s);
	/* With the creating span's context: its trace id as traceId; a bad one is left out. */
	snprintf(o.traceparent, sizeof(o.traceparent), "%s",
	         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
	s = order_to_json(&o);
	CHECK_STR(s, "{\"pastry\":\"la bombe\",\"customer\":\"ho\\\"mer\","
	             "\"orderTime\":\"2024-01-02T03:04:05Z\",\"status\":\"pending\","
	             "\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}");
	free(s);
	for (size_t i = 0; i < 3; i++) {
		static const char *const bad[] = {
		    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "00-4bf92f"};
		snprintf(o.traceparent, sizeof(o.traceparent), "%s", bad[i]);
		s = order_to_json(&o);
		CHECK(s && !strstr(s, "traceId"));
		free(s);
	}
}

static void test_message(void)
{
	const char *key = "0123456789abcdef0123456789abcdef";
	const char *bad_time;
	struct order_message out;
	char *m = order_message_new(key, "2024-01-02T03:04:05.250000006Z");

	CHECK_STR(m, "{\"orderKey\":\"0123456789abcdef0123456789abcdef\","
	             "\"timeEnqueued\":\"2024-01-02T03:04:05.250000006Z\"}");
	CHECK(order_message_parse(m, strlen(m), &out) == 0);
	CHECK_STR(out.key, key);
	CHECK(out.enqueued_ms > 1704164645249.9 && out.enqueued_ms < 1704164645250.1);
	free(m);
	bad_time = "{\"orderKey\":\"0123456789abcdef0123456789abcdef\",\"timeEnqueued\":\"now\"}";
	CHECK(order_message_parse(bad_time, strlen(bad_time), &out) == 0);
	CHECK(out.enqueued_ms == -1);
	CHECK(order_message_parse("{", 1, &out) == -EINVAL);
	CHECK(order_message_parse("{\"orderKey\":\"nope\"}", 19, &out) == -EINVAL);
	CHECK(order_message_parse("{\"orderKey\":7}", 14, &out) == -EINVAL);
	CHECK(order_message_parse("[\"0123456789abcdef0123456789abcdef\"]", 36, &out) == -EINVAL);
}

static void test_time(void)
{
	struct timespec ts = {1700000000, 5};
	char buf[ORDER_TIME_MAX];

	CHECK(order_time_format(&ts, false, buf, sizeof(buf)) == 0);
	CHECK_STR(buf, "2023-11-14T22:13:20Z");
	CHECK(order_time_format(&ts, true, buf, sizeof(buf)) == 0);
	CHECK_STR(buf, "2023-11-14T22:13:20.000000005Z");
	CHECK(order_time_format(&ts, true, buf, 20) == -ENOSPC);
}

int main(void)
{
	RUN(test_keys);
	RUN(test_keys_distinct);
	RUN(test_valid_request);
	RUN(test_bad_requests);
	RUN(test_field_limits);
	RUN(test_deep_nesting);
	RUN(test_json_out);
	RUN(test_message);
	RUN(test_time);
	return CHECK_DONE();
}
