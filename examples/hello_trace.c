/* hello_trace.c — the tracing SDK on its own: a span with an attribute, its context injected into
 * outgoing headers, exported over OTLP/HTTP to the Collector at OTEL_EXPORTER_OTLP_ENDPOINT.
 *
 *   cc -Icommon/otel hello_trace.c libotel.a -lcurl -lz -lpthread   (make sdk does this)
 *   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 build/examples/hello_trace
 *
 * Prints the headers a request would carry and the trace id; exits 0 once the Collector has
 * accepted the span. */
#include <stdio.h>

#include "trace.h"

/* Where trace_inject writes: the header lines of an outgoing request. */
struct headers {
	char line[3][1024];
	int n;
};

static int header_set(void *carrier, const char *name, const char *value)
{
	struct headers *h = carrier;

	if (h->n == 3)
		return -1;
	snprintf(h->line[h->n++], sizeof(h->line[0]), "%s: %s", name, value);
	return 0;
}

/* The SDK's log lines, on stderr (by default it says nothing). */
static void print_log(void *arg, enum trace_diag_level level, const char *msg,
                      const char *const kv[6])
{
	(void)arg;
	fprintf(stderr, "otel[%d]: %s", (int)level, msg);
	for (int i = 0; i < 6 && kv[i]; i += 2)
		fprintf(stderr, " %s=%s", kv[i], kv[i + 1] ? kv[i + 1] : "");
	fputc('\n', stderr);
}

int main(void)
{
	struct headers out = {0};
	struct trace_context ctx;
	struct trace_stats stats;
	char trace_id[33];
	trace_span *span;

	trace_set_diag(&(struct trace_diag){.log = print_log});
	if (trace_init("hello-trace", "1.0.0") < 0)
		return 1;
	span = trace_span_start("say-hello", TRACE_KIND_CLIENT, TRACE_ROOT);
	trace_span_set_str(span, "greeting", "hello, world");
	trace_span_set_int(span, "attempt", 1);
	if (trace_inject(span, header_set, &out) == 0)
		for (int i = 0; i < out.n; i++)
			printf("%s\n", out.line[i]);
	trace_span_context(span, &ctx);
	tracecontext_hex(ctx.trace_id, 16, trace_id);
	trace_span_end(span);
	trace_shutdown(); /* flushes: the span is exported before this returns */
	trace_stats(&stats);
	printf("trace_id: %s exported: %llu\n", trace_id, (unsigned long long)stats.exported);
	return stats.exported == 1 ? 0 : 1;
}
