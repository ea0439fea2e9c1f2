/* tracecontext_fuzz.c — libFuzzer target for the W3C header parsers (see fuzz/README.md). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otel/tracecontext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char tp[TRACECONTEXT_TRACEPARENT_LEN + 1], state[TRACECONTEXT_STATE_MAX + 1];
	char again[TRACECONTEXT_STATE_MAX + 1];
	static char baggage[TRACECONTEXT_BAGGAGE_MAX + 1];
	struct trace_context ctx, back;

	/* A parsed traceparent formats to a version-00 header that parses to the same ids. */
	if (tracecontext_parse_traceparent(s, size, &ctx) == 0) {
		if (tracecontext_format_traceparent(&ctx, tp) != 0 ||
		    tracecontext_parse_traceparent(tp, strlen(tp), &back) != 0 ||
		    memcmp(ctx.trace_id, back.trace_id, 16) ||
		    memcmp(ctx.span_id, back.span_id, 8) || ctx.flags != back.flags)
			abort();
	} else if (tracecontext_is_valid(&ctx)) {
		abort();
	}
	/* The input as header fields split at each '\n' (an HTTP request's repeated fields). */
	struct trace_field f[8];
	size_t nf = 0, at = 0;
	for (;;) {
		const char *nl = nf < 7 ? memchr(s + at, '\n', size - at) : NULL;
		size_t len = nl ? (size_t)(nl - s) - at : size - at;
		f[nf++] = (struct trace_field){s + at, len};
		if (!nl)
			break;
		at += len + 1;
	}
	/* A normalized tracestate is within bounds and normalizes to itself. */
	if (tracecontext_parse_tracestate(f, nf, state, sizeof(state)) == 0) {
		if (strlen(state) > TRACECONTEXT_STATE_MAX ||
		    tracecontext_parse_tracestate(&(struct trace_field){state, strlen(state)}, 1,
		                                  again, sizeof(again)) != 0 ||
		    strcmp(state, again) != 0)
			abort();
	} else if (state[0]) {
		abort();
	}
	if (tracecontext_parse_baggage(f, nf, baggage, sizeof(baggage)) == 0 &&
	    strlen(baggage) > size)
		abort();
	return 0;
}
