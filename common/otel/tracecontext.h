/* tracecontext.h — W3C traceparent, tracestate and baggage: bounded parsing and formatting. */
#ifndef BAKERY_OTEL_TRACECONTEXT_H
#define BAKERY_OTEL_TRACECONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRACECONTEXT_TRACEPARENT_LEN 55   /* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define TRACECONTEXT_STATE_MAX       512  /* tracestate kept, in characters */
#define TRACECONTEXT_STATE_ENTRIES   32   /* tracestate list-members */
#define TRACECONTEXT_BAGGAGE_MAX     8192 /* baggage passed through, in characters */
#define TRACECONTEXT_FLAG_SAMPLED    0x01

/* A span context as it travels between processes. Plain data: copy it freely. A context
 * whose trace id or span id is all zero is invalid (see tracecontext_is_valid). */
struct trace_context {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t flags; /* trace-flags; bit 0 = sampled */
	bool remote;   /* came from another process (extracted) */
	char tracestate[TRACECONTEXT_STATE_MAX + 1];
	char baggage[TRACECONTEXT_BAGGAGE_MAX + 1];
};

/* True when both ids are non-zero. */
bool tracecontext_is_valid(const struct trace_context *ctx);

/* Parses a traceparent header value of len bytes (need not be NUL-terminated) into ctx's
 * trace_id, span_id and flags (other fields untouched). Version 00 must be exactly 55 bytes;
 * a higher version is parsed by its first four fields (more must follow after a '-');
 * version ff, upper-case hex and all-zero ids are invalid. Surrounding spaces and tabs are
 * ignored. Returns 0, or -EINVAL on any malformation (ctx's ids are then zeroed). */
int tracecontext_parse_traceparent(const char *s, size_t len, struct trace_context *ctx);

/* Writes "00-<trace id>-<span id>-<flags>" and a NUL into out (56 bytes). Returns 0, or
 * -EINVAL when ctx is not valid (out is then ""). */
int tracecontext_format_traceparent(const struct trace_context *ctx,
                                    char out[TRACECONTEXT_TRACEPARENT_LEN + 1]);

/* Validates a tracestate header value of len bytes and writes its normalized form
 * ("k=v,k=v", empty members and spaces around them removed) into out (cap bytes, at most
 * TRACECONTEXT_STATE_MAX + 1 used). Over 512 characters, members longer than 128 go first,
 * then members from the end. Returns 0; or -EINVAL when a member is malformed, a key repeats
 * or there are more than 32 members: out is then "" (the header is ignored, per the spec). */
int tracecontext_parse_tracestate(const char *s, size_t len, char *out, size_t cap);

/* Copies a baggage header value of len bytes into out (cap bytes, at most
 * TRACECONTEXT_BAGGAGE_MAX + 1 used), trimmed, for passing on unchanged. Returns 0; or -EINVAL
 * when it holds control or non-ASCII bytes or is longer than TRACECONTEXT_BAGGAGE_MAX: out is
 * then "". */
int tracecontext_parse_baggage(const char *s, size_t len, char *out, size_t cap);

/* Writes n bytes as 2n lowercase hex digits and a NUL into out (2n + 1 bytes). */
void tracecontext_hex(const uint8_t *bytes, size_t n, char *out);

#endif
