/* emit.c — writes known spans through the tracing SDK for tests/tracing (configured by OTEL_*).
 *
 *   emit shapes    one trace (SERVER -> CLIENT with event and error, PRODUCER) and a second trace
 *                  (CONSUMER linked to the PRODUCER -> INTERNAL); prints their ids as JSON
 *   emit burst N   N root spans as fast as possible
 *
 * Both end with trace_shutdown() and print one line {"emit": {..., "stats": {...}}} on stdout
 * (the SDK's own log lines are JSON on stdout too). Exit 0, or 1 when trace_init fails. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otel/trace.h"
#include "otel_diag.h"

static json_t *ids(const trace_span *s)
{
	struct trace_context ctx;
	char tid[33], sid[17];

	trace_span_context(s, &ctx);
	tracecontext_hex(ctx.trace_id, 16, tid);
	tracecontext_hex(ctx.span_id, 8, sid);
	return json_pack("{s:s,s:s}", "trace_id", tid, "span_id", sid);
}

static json_t *shapes(void)
{
	struct trace_context producer_ctx;
	struct trace_attr ev[] = {TRACE_STR("event.str", "burnt"), TRACE_INT("event.int", 3),
	                          TRACE_DOUBLE("event.double", 1.5),
	                          TRACE_BOOL("event.bool", true)};
	json_t *out = json_object();

	trace_span *server = trace_span_start("emit-server", TRACE_KIND_SERVER, NULL);
	trace_span_set_str(server, "http.request.method", "POST");
	trace_span_set_int(server, "http.response.status_code", 202);
	trace_span_set_double(server, "emit.double", 0.25);
	trace_span_set_bool(server, "emit.bool", true);
	trace_span_set_str(server, "emit.utf8", "caf\xc3\xa9 \xff");

	trace_span *client = trace_span_start("emit-client", TRACE_KIND_CLIENT, NULL);
	trace_span_set_str(client, "db.system", "redis");
	trace_span_add_event(client, "emit-event", ev, sizeof(ev) / sizeof(ev[0]));
	trace_span_set_error(client, "emit failure");
	json_object_set_new(out, "client", ids(client));
	trace_span_end(client);

	trace_span *producer = trace_span_start("emit-publish", TRACE_KIND_PRODUCER, NULL);
	trace_span_set_str(producer, "messaging.system", "rabbitmq");
	trace_span_context(producer, &producer_ctx);
	json_object_set_new(out, "producer", ids(producer));
	trace_span_end(producer);

	json_object_set_new(out, "server", ids(server));
	trace_span_end(server);

	/* The baker's shape: a new trace whose root links to the producer. */
	trace_span *consumer = trace_span_start("emit-consume", TRACE_KIND_CONSUMER, TRACE_ROOT);
	trace_span_add_link(consumer, &producer_ctx, &TRACE_STR("link.kind", "producer"), 1);
	trace_span *internal = trace_span_start("emit-internal", TRACE_KIND_INTERNAL, NULL);
	json_object_set_new(out, "internal", ids(internal));
	trace_span_end(internal);
	json_object_set_new(out, "consumer", ids(consumer));
	trace_span_end(consumer);
	return out;
}

static json_t *burst(long n)
{
	for (long i = 0; i < n; i++) {
		trace_span *s = trace_span_start("emit-burst", TRACE_KIND_INTERNAL, NULL);
		trace_span_set_int(s, "i", i);
		trace_span_end(s);
	}
	return json_pack("{s:I}", "spans", (json_int_t)n);
}

int main(int argc, char **argv)
{
	struct trace_stats st;
	json_t *out;

	if (argc < 2 ||
	    (strcmp(argv[1], "shapes") != 0 && (strcmp(argv[1], "burst") != 0 || argc < 3))) {
		fprintf(stderr, "usage: emit shapes | emit burst N\n");
		return 2;
	}
	otel_diag_register();
	if (trace_init("emit", "0.0.1") < 0)
		return 1;
	out = strcmp(argv[1], "shapes") == 0 ? shapes() : burst(atol(argv[2]));
	trace_shutdown();
	trace_stats(&st);
	json_object_set_new(out, "stats",
	                    json_pack("{s:I,s:I,s:I}", "ended", (json_int_t)st.ended, "exported",
	                              (json_int_t)st.exported, "dropped", (json_int_t)st.dropped));
	json_t *line = json_pack("{s:o}", "emit", out);
	char *s = json_dumps(line, JSON_COMPACT);
	printf("%s\n", s);
	free(s);
	json_decref(line);
	return 0;
}
