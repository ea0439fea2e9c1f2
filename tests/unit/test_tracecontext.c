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
	return tracecontext_parse_tracestate(&(struct trace_field){s, strlen(s)}, 1, out,
	                                     TRACECONTEXT_STATE_MAX + 1);
}

/* The tracestate of up to four header fields (NULL ends them). */
static int state_fields(char *out, const char *a, const char *b, const char *c, const char *d)
{
	const char *v[] = {a, b, c, d};
	struct trace_field f[4];
	size_t n = 0;

	while (n < 4 && v[n]) {
		f[n] = (struct trace_field){v[n], strlen(v[n])};
		n++;
	}
	return tracecontext_parse_tracestate(f, n, out, TRACECONTEXT_STATE_MAX + 1);
}

/* RFC 9110 5.3: several fields are one list, in order; an empty one beside others is nothing. */
static void test_tracestate_fields(void)
{
	char out[TRACECONTEXT_STATE_MAX + 1], a[2048], b[2048];
	size_t na = 0, nb = 0;

	CHECK(state_fields(out, "a=1", "b=2,c=3", NULL, NULL) == 0);
	CHECK_STR(out, "a=1,b=2,c=3");
	CHECK(state_fields(out, "", "a=1", "", NULL) == 0);
	CHECK_STR(out, "a=1");
	CHECK(state_fields(out, " \t", "a=1 ,\t", "\tb=2", NULL) == 0);
	CHECK_STR(out, "a=1,b=2");
	/* A repeated key across fields: the left-most member stays. */
	CHECK(state_fields(out, "a=1,b=2", "a=3", NULL, NULL) == 0);
	CHECK_STR(out, "a=1,b=2");
	/* A malformed member in any field makes the whole list invalid. */
	CHECK(state_fields(out, "a=1", "B=2", NULL, NULL) == -EINVAL);
	CHECK_STR(out, "");
	/* 32 members over two fields are kept; 33 are invalid. */
	for (int i = 0; i < 16; i++) {
		na += (size_t)snprintf(a + na, sizeof(a) - na, "%sa%d=v", i ? "," : "", i);
		nb += (size_t)snprintf(b + nb, sizeof(b) - nb, "%sb%d=v", i ? "," : "", i);
	}
	CHECK(state_fields(out, a, b, NULL, NULL) == 0);
	CHECK(strncmp(out, "a0=v,", 5) == 0 && strstr(out, ",b15=v") != NULL);
	CHECK(state_fields(out, a, b, "c=1", NULL) == -EINVAL);
	CHECK_STR(out, "");
}

/* Keys by W3C Trace Context Level 2: '@' anywhere after the first character, up to 256. */
static void test_tracestate_keys(void)
{
	char out[TRACECONTEXT_STATE_MAX + 1], in[600], key[258];

	CHECK(state("foo@=1,foo@@bar=2,a@b@c=3,0abc=4", out) == 0);
	CHECK_STR(out, "foo@=1,foo@@bar=2,a@b@c=3,0abc=4");
	CHECK(state("t@=v", out) == 0);
	CHECK(state("@v=1", out) == -EINVAL);
	CHECK(state("a=1,@=2", out) == -EINVAL);
	/* 256 characters, '@' inside: kept; 257: invalid. */
	memset(key, 'k', 256);
	key[0] = 't';
	key[100] = '@';
	key[101] = 'v';
	key[256] = '\0';
	snprintf(in, sizeof(in), "%s=1", key);
	CHECK(state(in, out) == 0);
	CHECK_STR(out, in);
	key[256] = 'k';
	key[257] = '\0';
	snprintf(in, sizeof(in), "%s=1", key);
	CHECK(state(in, out) == -EINVAL);
	/* A repeated key: the first member kept, the list kept. */
	CHECK(state("k=v,x=1,k=w", out) == 0);
	CHECK_STR(out, "k=v,x=1");
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
	    "Upper=1", "=v",   "k=",         "k",      "k=v=w",         "k=a,b",
	    "k=\x7f",  "@v=1", "t@Vendor=1", "k=\x01", "k=caf\xc3\xa9",
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
	CHECK(tracecontext_parse_tracestate(&(struct trace_field){"a=1,b=2", 7}, 1, out, 4) == 0);
	CHECK_STR(out, "a=1");
}

static int baggage(const char *s, char *out, size_t cap)
{
	return tracecontext_parse_baggage(&(struct trace_field){s, strlen(s)}, 1, out, cap);
}

static void test_baggage(void)
{
	char out[TRACECONTEXT_BAGGAGE_MAX + 1], big[TRACECONTEXT_BAGGAGE_MAX + 64];
	struct trace_field f[3] = {{"a=1", 3}, {"", 0}, {" b=2 , c=3", 10}};

	CHECK(baggage(" userId=alice,isProd=false ", out, sizeof(out)) == 0);
	CHECK_STR(out, "userId=alice,isProd=false");
	CHECK(baggage("k=v\r\n", out, sizeof(out)) == -EINVAL);
	CHECK_STR(out, "");
	CHECK(baggage("k=\xff", out, sizeof(out)) == -EINVAL);
	/* Several fields are one list. */
	CHECK(tracecontext_parse_baggage(f, 3, out, sizeof(out)) == 0);
	CHECK_STR(out, "a=1,b=2,c=3");
	/* Over the bound: whole members while they fit, never part of one. */
	memset(big, 'x', sizeof(big));
	memcpy(big, "a=1,long=", 9);
	memcpy(big + TRACECONTEXT_BAGGAGE_MAX + 20, ",b=2", 5);
	CHECK(baggage(big, out, sizeof(out)) == 0);
	CHECK_STR(out, "a=1,b=2");
	CHECK(baggage("a=1,b=2", out, 6) == 0);
	CHECK_STR(out, "a=1");
}

/* A context is small enough for any stack: bounded tracestate and baggage (8,732 bytes before). */
static void test_context_size(void)
{
	CHECK(sizeof(struct trace_context) <= 1056);
}

/* Lowercase hex of any bytes, NUL-terminated. */
static void test_hex(void)
{
	const uint8_t b[3] = {0x00, 0xab, 0x0f};
	char out[7];

	tracecontext_hex(b, 3, out);
	CHECK_STR(out, "00ab0f");

	/* 4 bytes a turn, then the rest one by one: every byte value at every place of a turn and
	 * of the tail, for each length up to 17 (a trace id, a span id, the flags). */
	static const char digits[] = "0123456789abcdef";
	uint8_t in[17];
	char got[35], want[35];
	for (size_t n = 0; n <= sizeof(in); n++) {
		for (size_t at = 0; at < (n ? n : 1); at++) {
			for (int v = 0; v < 256; v++) {
				for (size_t i = 0; i < n; i++)
					in[i] = (uint8_t)(i * 37 + 11);
				if (n)
					in[at] = (uint8_t)v;
				for (size_t i = 0; i < n; i++) {
					want[2 * i] = digits[in[i] >> 4];
					want[2 * i + 1] = digits[in[i] & 15];
				}
				want[2 * n] = '\0';
				memset(got, 'x', sizeof(got));
				tracecontext_hex(in, n, got);
				CHECK_STR(got, want);
			}
		}
	}
}

int main(void)
{
	RUN(test_traceparent_valid);
	RUN(test_traceparent_malformed);
	RUN(test_format_invalid);
	RUN(test_tracestate);
	RUN(test_tracestate_fields);
	RUN(test_tracestate_keys);
	RUN(test_baggage);
	RUN(test_hex);
	RUN(test_context_size);
	return CHECK_DONE();
}
