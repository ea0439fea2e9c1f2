/* test_tracecontext.c — W3C traceparent, tracestate and baggage: valid and malformed headers. */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "otel/tracecontext.h"

#define TP_VALID "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static int parse(const char *s, struct trace_context *ctx)
{
	return tracecontext_parse_traceparent(s, strlen(s), ctx);
}

static void test_traceparent_valid(void)
{
	struct trace_context ctx = {0};
	char out[TRACECONTEXT_TRACEPARENT_LEN + 1];

	CHECK(parse(TP_VALID, &ctx) == 0);
	CHECK(ctx.trace_id[0] == 0x4b && ctx.trace_id[15] == 0x36);
	CHECK(ctx.span_id[0] == 0x00 && ctx.span_id[7] == 0xb7);
	CHECK(ctx.flags == 1);
	CHECK(tracecontext_is_valid(&ctx));
	CHECK(tracecontext_format_traceparent(&ctx, out) == 0);
	CHECK_STR(out, TP_VALID);

	/* Not sampled; unknown flag bits are dropped; spaces around are ignored. */
	CHECK(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &ctx) == 0);
	CHECK(ctx.flags == 0);
	CHECK(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff", &ctx) == 0);
	CHECK(ctx.flags == 1);
	CHECK(parse(" \t" TP_VALID "  ", &ctx) == 0);

	/* A future version: parsed by its first four fields, more may follow after '-'. */
	CHECK(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &ctx) == 0);
	CHECK(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever", &ctx) ==
	      0);
	CHECK(ctx.flags == 1);

	/* The length passed is honoured: no NUL needed, nothing read past it. */
	char *heap = malloc(TRACECONTEXT_TRACEPARENT_LEN);
	memcpy(heap, TP_VALID, TRACECONTEXT_TRACEPARENT_LEN);
	CHECK(tracecontext_parse_traceparent(heap, TRACECONTEXT_TRACEPARENT_LEN, &ctx) == 0);
	CHECK(tracecontext_parse_traceparent(heap, TRACECONTEXT_TRACEPARENT_LEN - 1, &ctx) ==
	      -EINVAL);
	free(heap);
}

static void test_traceparent_malformed(void)
{
	static const char *const bad[] = {
	    "",
	    "00",
	    "garbage",
	    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version ff */
	    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  /* zero trace id */
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  /* zero span id */
	    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  /* upper case */
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",  /* upper case */
	    "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* upper version */
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",  /* bad flags */
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* v00 too long */
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-010",
	    "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01", /* misplaced dash */
	    "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
	    "0-04bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
	    "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", /* future: no dash */
	    "00-4bf92f3577b34da6a3ce929d0e0e47 6-00f067aa0ba902b7-01",
	    "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	    "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	};
	struct trace_context ctx;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&ctx, 0xaa, sizeof(ctx));
		if (parse(bad[i], &ctx) != -EINVAL)
			fprintf(stderr, "  accepted: \"%s\"\n", bad[i]);
		CHECK(parse(bad[i], &ctx) == -EINVAL);
		CHECK(!tracecontext_is_valid(&ctx));
	}
	CHECK(tracecontext_parse_traceparent(NULL, 0, &ctx) == -EINVAL);
	/* An embedded NUL is just a bad byte. */
	CHECK(tracecontext_parse_traceparent(
	          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\0", 55, &ctx) == -EINVAL);
}

static void test_format_invalid(void)
{
	struct trace_context ctx = {0};
	char out[TRACECONTEXT_TRACEPARENT_LEN + 1] = "x";

	CHECK(tracecontext_format_traceparent(&ctx, out) == -EINVAL);
	CHECK_STR(out, "");
}

static int state(const char *s, char *out)
{
	return tracecontext_parse_tracestate(s, strlen(s), out, TRACECONTEXT_STATE_MAX + 1);
}

static void test_tracestate(void)
{
	char out[TRACECONTEXT_STATE_MAX + 1], in[4096];
	size_t n = 0;

	CHECK(state("congo=t61rcWkgMzE", out) == 0);
	CHECK_STR(out, "congo=t61rcWkgMzE");
	CHECK(state(" rojo=00f067aa0ba902b7 , , congo=t61rcWkgMzE\t,", out) == 0);
	CHECK_STR(out, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
	CHECK(state("tenant1@vendor=x y,a*b/c_-=1", out) == 0);
	CHECK_STR(out, "tenant1@vendor=x y,a*b/c_-=1");
	CHECK(state("", out) == 0);
	CHECK_STR(out, "");

	static const char *const bad[] = {
	    "Upper=1",    "=v",
	    "k=",         "k",
	    "k=v=w",      "k=a,b",
	    "1abc=v",     "k=\x7f",
	    "k=v,k=w", /* duplicate key */
	    "t@=v",       "@v=1",
	    "t@Vendor=1", "t@vendorwaytoolong=1",
	    "k=\x01",     "k=caf\xc3\xa9",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(out, "x");
		if (state(bad[i], out) != -EINVAL)
			fprintf(stderr, "  accepted: \"%s\"\n", bad[i]);
		CHECK(state(bad[i], out) == -EINVAL);
		CHECK_STR(out, "");
	}

	/* 32 members are fine; 33 are not. */
	for (int i = 0; i < 33; i++)
		n += (size_t)snprintf(in + n, sizeof(in) - n, "%sk%d=v", i ? "," : "", i);
	CHECK(state(in, out) == -EINVAL);
	*strrchr(in, ',') = '\0';
	CHECK(state(in, out) == 0);
	CHECK(strncmp(out, "k0=v,k1=v,", 10) == 0);

	/* Over 512: the long member goes first, then members from the end. */
	char big[200];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	n = 0;
	n += (size_t)snprintf(in + n, sizeof(in) - n, "a=1,long=%.150s", big);
	for (int i = 0; i < 3; i++)
		n += (size_t)snprintf(in + n, sizeof(in) - n, ",m%d=%.120s", i, big);
	CHECK(state(in, out) == 0);
	CHECK(strlen(out) <= TRACECONTEXT_STATE_MAX);
	CHECK(strncmp(out, "a=1,m0=", 7) == 0);
	CHECK(strstr(out, "long=") == NULL);
	CHECK(strstr(out, "m2=") != NULL);

	/* Small output buffers are never overrun. */
	CHECK(tracecontext_parse_tracestate("a=1,b=2", 7, out, 4) == 0);
	CHECK_STR(out, "a=1");
}

static void test_baggage(void)
{
	char out[TRACECONTEXT_BAGGAGE_MAX + 1];
	char *big = malloc(TRACECONTEXT_BAGGAGE_MAX + 2);

	CHECK(tracecontext_parse_baggage(" userId=alice,isProd=false ", 27, out, sizeof(out)) == 0);
	CHECK_STR(out, "userId=alice,isProd=false");
	CHECK(tracecontext_parse_baggage("k=v\r\n", 5, out, sizeof(out)) == -EINVAL);
	CHECK_STR(out, "");
	CHECK(tracecontext_parse_baggage("k=\xff", 3, out, sizeof(out)) == -EINVAL);
	memset(big, 'a', TRACECONTEXT_BAGGAGE_MAX + 1);
	big[TRACECONTEXT_BAGGAGE_MAX + 1] = '\0';
	CHECK(tracecontext_parse_baggage(big, TRACECONTEXT_BAGGAGE_MAX + 1, out, sizeof(out)) ==
	      -EINVAL);
	CHECK(tracecontext_parse_baggage(big, TRACECONTEXT_BAGGAGE_MAX, out, sizeof(out)) == 0);
	CHECK(strlen(out) == TRACECONTEXT_BAGGAGE_MAX);
	free(big);
}

static void test_hex(void)
{
	const uint8_t b[3] = {0x00, 0xab, 0x0f};
	char out[7];

	tracecontext_hex(b, 3, out);
	CHECK_STR(out, "00ab0f");
}

int main(void)
{
	RUN(test_traceparent_valid);
	RUN(test_traceparent_malformed);
	RUN(test_format_invalid);
	RUN(test_tracestate);
	RUN(test_baggage);
	RUN(test_hex);
	return CHECK_DONE();
}
